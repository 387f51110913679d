/* compiler_spawner.c - owns the host's end of the compiler spawner (the process itself is
 * compiler_spawner_main.c): an optional process, forked once by its host (the nginx worker, in
 * init_process, before the worker filter goes on), that forks the helper of each compiler
 * session on request. It runs no untrusted code itself: it waits on its control
 * socket, and for each valid request forks a child that closes everything but its session socket
 * and becomes a helper (compiler_helper.c: warm-up, dc_confine, then requests until EOF). The
 * session's descriptors go back to the host over the control socket; the helpers are the
 * spawner's children, so the host's own SIGCHLD handling (nginx's waitpid(-1)) never sees them,
 * and the host itself needs no fork once the spawner runs. Without a spawner, compiler.c forks
 * the helper itself, as the command and the tests do.
 *
 * Control protocol: one AF_UNIX SOCK_SEQPACKET socketpair, one message per request or reply.
 *   request  host -> spawner  sp_req, exactly; anything else is answered "bad request"
 *   reply    spawner -> host  sp_rep, exactly; a session carries in SCM_RIGHTS, in order: the
 *                             host's end of the session socket, the read end of a status pipe,
 *                             and (where the kernel has it) a pidfd of the helper
 *   hello    spawner -> host  a reply with seq 0, once ready
 * The spawner keeps the write end of each status pipe: when it reaps a helper it writes its
 * dc_spawned_status there and closes it, which is how the host learns how the helper ended.
 * The host trusts the spawner (it is its own fork and never runs plugin code) but still checks
 * each reply's size, sequence number and descriptors, and never waits past a deadline.
 *
 * The spawner ends when its control socket reaches EOF (the host stopped it or ended): it kills
 * and reaps the helpers still running, then exits. PR_SET_PDEATHSIG is the backstop; it fires
 * when the thread that started the spawner ends, so start it from a thread that lives as long as
 * the process (nginx's main thread).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "compiler_wire.h"
#include "dynacode.h"

#define SP_START_MS 10000.0    /* the hello is due within this */
#define SP_STOP_MS 2000.0      /* stop: time given to exit on EOF before SIGKILL */

static struct {
    pthread_mutex_t mu;
    int fd;        /* control socket, -1 without a spawner */
    pid_t pid;     /* the spawner */
    pid_t owner;   /* the process that started it: a fork of it has no spawner */
    uint32_t seq;
    int ended;     /* EOF on the control socket: the spawner died */
} sp = {PTHREAD_MUTEX_INITIALIZER, -1, -1, -1, 0, 0};

static void close_fds(const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Receives one reply within the deadline: 1 with *rep and fds (*nfds of them), 0 at EOF, -1
 * on timeout or error (reason in err). A reply that is not whole closes what it carried. */
static int recv_reply(double deadline, sp_rep *rep, int fds[3], unsigned *nfds, char *err,
                      size_t errlen)
{
    for (;;) {
        double left = deadline - dc_now_ms();
        if (left <= 0) {
            dc_set_err(err, errlen, "the compiler spawner did not answer in time");
            return -1;
        }
        struct pollfd p = {.fd = sp.fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left + 1);
        if (n < 0 && errno != EINTR) {
            dc_set_err(err, errlen, "compiler spawner socket: %s", strerror(errno));
            return -1;
        }
        if (n <= 0)
            continue;
        union {
            char buf[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct iovec iov = {rep, sizeof *rep};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                            .msg_controllen = sizeof cm.buf};
        ssize_t r = recvmsg(sp.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (r < 0) {
            if (errno == ECONNRESET)
                return 0;
            dc_set_err(err, errlen, "compiler spawner socket: %s", strerror(errno));
            return -1;
        }
        if (r == 0)
            return 0;
        *nfds = 0;
        int extra = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (*nfds < 3)
                    fds[(*nfds)++] = fd;
                else
                    close(fd), extra = 1;
            }
        }
        if (r != (ssize_t)sizeof *rep || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || extra ||
            rep->magic != SP_MAGIC || *nfds != rep->nfds) {
            close_fds(fds, *nfds);
            dc_set_err(err, errlen, "the compiler spawner answered out of protocol");
            return -1;
        }
        return 1;
    }
}

int dc_spawner_session(int allow_probe, int unconfined, uint32_t timeout_ms, dc_spawned *out,
                       char *err, size_t errlen)
{
    pthread_mutex_lock(&sp.mu);
    if (sp.fd < 0 || sp.owner != getpid() || sp.ended) {
        int ended = sp.fd >= 0 && sp.owner == getpid() && sp.ended;
        pthread_mutex_unlock(&sp.mu);
        if (ended)
            dc_set_err(err, errlen, "the compiler spawner has ended");
        return 0;
    }
    if (++sp.seq == 0)
        sp.seq = 1;
    sp_req rq = {.magic = SP_MAGIC, .op = SP_OP_SESSION, .seq = sp.seq,
                 .allow_probe = allow_probe != 0, .unconfined = unconfined != 0};
    int rc = -1;
    ssize_t w;
    do
        w = send(sp.fd, &rq, sizeof rq, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        sp.ended = 1;
        dc_set_err(err, errlen, "the compiler spawner has ended");
        rc = 0;
    } else if (w != (ssize_t)sizeof rq) {
        dc_set_err(err, errlen, "compiler spawner socket: %s",
                   w < 0 ? strerror(errno) : "short send");
    } else {
        double deadline = dc_now_ms() + timeout_ms;
        for (;;) {
            sp_rep rep;
            int fds[3] = {-1, -1, -1};
            unsigned nfds = 0;
            int got = recv_reply(deadline, &rep, fds, &nfds, err, errlen);
            if (got == 0) {
                sp.ended = 1;
                dc_set_err(err, errlen, "the compiler spawner has ended");
                rc = 0;
                break;
            }
            if (got < 0)
                break;
            if (rep.seq != rq.seq) { /* the late answer to a request that timed out */
                close_fds(fds, nfds);
                continue;
            }
            rep.msg[sizeof rep.msg - 1] = '\0';
            if (rep.err != 0) {
                close_fds(fds, nfds);
                dc_set_err(err, errlen, "compiler spawner: %s",
                           rep.msg[0] ? rep.msg : strerror(rep.err));
            } else if ((nfds != 2 && nfds != 3) || rep.pid <= 0) {
                close_fds(fds, nfds);
                dc_set_err(err, errlen, "the compiler spawner answered out of protocol");
            } else {
                out->fd = fds[0];
                out->statusfd = fds[1];
                out->pidfd = nfds == 3 ? fds[2] : -1;
                out->pid = (pid_t)rep.pid;
                rc = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&sp.mu);
    return rc;
}

int dc_compiler_spawner_pid(void)
{
    pthread_mutex_lock(&sp.mu);
    int pid = sp.fd >= 0 && sp.owner == getpid() && !sp.ended ? (int)sp.pid : -1;
    pthread_mutex_unlock(&sp.mu);
    return pid;
}

/* Ends the spawner (EOF, then SIGKILL past SP_STOP_MS) and reaps it with SIGCHLD blocked in
 * this thread, then takes the SIGCHLD it raised: a host whose handler reaps every child
 * (nginx) neither sees it nor finds nothing to wait for. Called with sp.mu held. */
static void stop_locked(void)
{
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    close(sp.fd);
    sp.fd = -1;
    double deadline = dc_now_ms() + SP_STOP_MS;
    int reaped = 0;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)sp.pid, &si, WEXITED | WNOHANG) != 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: someone else collected it */
        }
        if (si.si_pid == sp.pid) {
            reaped = 1;
            break;
        }
        if (dc_now_ms() >= deadline) {
            /* not yet collected, so the pid is still the spawner's */
            (void)kill(sp.pid, SIGKILL);
            while (waitid(P_PID, (id_t)sp.pid, &si, WEXITED) != 0 && errno == EINTR)
                ;
            reaped = 1;
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (reaped && !sigismember(&old, SIGCHLD)) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&chld, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sp.pid = -1;
    sp.owner = -1;
    sp.ended = 0;
}

dc_rc dc_compiler_spawner_start(char *err, size_t errlen)
{
    pthread_mutex_lock(&sp.mu);
    if (sp.fd >= 0 && sp.owner == getpid()) {
        pthread_mutex_unlock(&sp.mu);
        dc_set_err(err, errlen, "the compiler spawner is already running");
        return DC_EBUSY;
    }
    if (sp.fd >= 0) { /* inherited from the process this one was forked from: not ours */
        close(sp.fd);
        sp.fd = -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pthread_mutex_unlock(&sp.mu);
        dc_set_err(err, errlen, "cannot start the compiler spawner: socketpair: %s",
                   strerror(errno));
        return DC_ELUA;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        dc_compiler_spawner_main(sv[1], parent);
    }
    int fork_errno = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        pthread_mutex_unlock(&sp.mu);
        dc_set_err(err, errlen, "cannot start the compiler spawner: fork: %s",
                   strerror(fork_errno));
        return DC_ELUA;
    }
    sp.fd = sv[0];
    sp.pid = pid;
    sp.owner = parent;
    sp.ended = 0;
    sp.seq = 0;

    sp_rep rep;
    int fds[3];
    unsigned nfds = 0;
    char why[160] = "";
    int got = recv_reply(dc_now_ms() + SP_START_MS, &rep, fds, &nfds, why, sizeof why);
    if (got == 1 && (rep.seq != 0 || rep.err != 0 || nfds != 0 || rep.pid != pid)) {
        close_fds(fds, nfds);
        rep.msg[sizeof rep.msg - 1] = '\0';
        snprintf(why, sizeof why, "%s", rep.err && rep.msg[0] ? rep.msg : "a bad hello");
        got = -1;
    } else if (got == 0) {
        snprintf(why, sizeof why, "it ended at once");
    }
    if (got != 1) {
        stop_locked();
        pthread_mutex_unlock(&sp.mu);
        dc_set_err(err, errlen, "cannot start the compiler spawner: %s", why);
        return DC_ELUA;
    }
    pthread_mutex_unlock(&sp.mu);
    return DC_OK;
}

void dc_compiler_spawner_stop(void)
{
    pthread_mutex_lock(&sp.mu);
    if (sp.fd >= 0 && sp.owner == getpid()) {
        stop_locked();
    } else if (sp.fd >= 0) {
        close(sp.fd); /* a fork's copy: the spawner belongs to the parent */
        sp.fd = -1;
    }
    pthread_mutex_unlock(&sp.mu);
}
