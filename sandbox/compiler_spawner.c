/* compiler_spawner.c - owns the compiler spawner: an optional process, forked once by its host
 * (the nginx worker, in init_process, before the worker filter goes on), that forks the helper
 * of each compiler session on request. It runs no untrusted code itself: it waits on its control
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
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compiler.h"
#include "compiler_wire.h"
#include "dynacode.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define DC_HAVE_VALGRIND_H 1
#endif
#endif

#define SP_MAGIC 0x44435350u   /* "DCSP" */
#define SP_OP_SESSION 1u
#define SP_MAX_HELPERS 64      /* sessions open at once through one spawner */
#define SP_START_MS 10000.0    /* the hello is due within this */
#define SP_STOP_MS 2000.0      /* stop: time given to exit on EOF before SIGKILL */

typedef struct sp_req {
    uint32_t magic, op, seq;
    uint32_t allow_probe, unconfined; /* 0 or 1 */
} sp_req;

typedef struct sp_rep {
    uint32_t magic, seq;
    int32_t err;      /* 0, or an errno value with msg */
    int32_t pid;      /* the helper (or, in the hello, the spawner) */
    uint32_t nfds;    /* descriptors carried: 2 or 3 for a session, 0 otherwise */
    char msg[116];
} sp_rep;

static int under_valgrind(void)
{
#ifdef DC_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

/* ================================ the spawner process ================================ */

typedef struct helper_slot {
    pid_t pid;
    int status_w; /* write end of its status pipe */
} helper_slot;

typedef struct spawner {
    int ctl, sigfd;
    helper_slot kids[SP_MAX_HELPERS];
    int nkids;
} spawner;

static void sp_reply(spawner *s, uint32_t seq, int e, pid_t pid, const int *fds, unsigned nfds,
                     const char *msg)
{
    sp_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.magic = SP_MAGIC;
    rep.seq = seq;
    rep.err = e;
    rep.pid = (int32_t)pid;
    rep.nfds = nfds;
    if (msg)
        snprintf(rep.msg, sizeof rep.msg, "%s", msg);
    struct iovec iov = {&rep, sizeof rep};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&cm, 0, sizeof cm);
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t w;
    do
        w = sendmsg(s->ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    /* the host is gone or reads no replies: a helper it will never see must not linger */
    if (w != (ssize_t)sizeof rep && nfds && pid > 0)
        (void)kill(pid, SIGKILL); /* still our unreaped child: the pid cannot be reused */
}

/* Collects every helper that ended and posts its status to its pipe. */
static void sp_reap(spawner *s)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) != 0) {
            if (errno == EINTR)
                continue;
            return; /* ECHILD: none left */
        }
        if (si.si_pid == 0)
            return;
        for (int i = 0; i < s->nkids; i++) {
            if (s->kids[i].pid != si.si_pid)
                continue;
            dc_spawned_status st = {.code = si.si_code, .status = si.si_status};
            /* an empty pipe takes 8 bytes at once; a host that closed its end gets nothing */
            (void)!write(s->kids[i].status_w, &st, sizeof st);
            close(s->kids[i].status_w);
            s->kids[i] = s->kids[--s->nkids];
            break;
        }
    }
}

static void sp_close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    p[0] = p[1] = -1;
}

/* One session: a socketpair, a status pipe, a fork; the host gets its ends. */
static void sp_spawn(spawner *s, const sp_req *rq)
{
    char msg[96];
    if (s->nkids >= SP_MAX_HELPERS) {
        snprintf(msg, sizeof msg, "too many compiler sessions open at once (%d)",
                 SP_MAX_HELPERS);
        sp_reply(s, rq->seq, EAGAIN, 0, NULL, 0, msg);
        return;
    }
    int sv[2] = {-1, -1}, st[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(st, O_CLOEXEC | O_NONBLOCK) != 0) {
        int e = errno;
        snprintf(msg, sizeof msg, "%s: %s", sv[0] < 0 ? "socketpair" : "pipe", strerror(e));
        sp_close_pair(sv);
        sp_close_pair(st);
        sp_reply(s, rq->seq, e, 0, NULL, 0, msg);
        return;
    }
    /* the product honours neither flag: probes exist only in the test build, and a helper
     * runs unconfined only in the test build on valgrind's CPU (see compiler.h) */
    int allow_probe = 0, unconfined = 0;
#ifdef DC_TESTING
    allow_probe = rq->allow_probe != 0;
    unconfined = rq->unconfined != 0 && under_valgrind();
#endif
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* the helper keeps its session socket and nothing of the spawner's: not the control
         * socket, not another session's status pipe (dc_confine closes the rest too) */
        close(s->ctl);
        close(s->sigfd);
        for (int i = 0; i < s->nkids; i++)
            close(s->kids[i].status_w);
        close(sv[0]);
        close(st[0]);
        close(st[1]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dc_compiler_helper_main(sv[1], allow_probe, unconfined, self);
    }
    if (pid < 0) {
        int e = errno;
        snprintf(msg, sizeof msg, "fork: %s", strerror(e));
        sp_close_pair(sv);
        sp_close_pair(st);
        sp_reply(s, rq->seq, e, 0, NULL, 0, msg);
        return;
    }
    close(sv[1]);
    s->kids[s->nkids].pid = pid;
    s->kids[s->nkids].status_w = st[1];
    s->nkids++;
    /* made here, before the spawner could reap the helper: it names this process for good.
     * valgrind does not know the call (a warning per session): the host kills by pid there,
     * which is safe as long as the status was not posted (see compiler.c) */
    int pidfd = under_valgrind() ? -1 : pidfd_open(pid, 0);
    int fds[3] = {sv[0], st[0], pidfd};
    sp_reply(s, rq->seq, 0, pid, fds, pidfd >= 0 ? 3 : 2, NULL);
    close(sv[0]);
    close(st[0]);
    if (pidfd >= 0)
        close(pidfd);
}

/* One message on the control socket: 1 to go on, 0 at EOF or on a socket error. */
static int sp_request(spawner *s)
{
    sp_req rq;
    struct iovec iov = {&rq, sizeof rq};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1}; /* no control: passed fds dropped */
    ssize_t r = recvmsg(s->ctl, &mh, MSG_DONTWAIT);
    if (r < 0)
        return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    if (r == 0)
        return 0;
    if (r != (ssize_t)sizeof rq || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        rq.magic != SP_MAGIC || rq.op != SP_OP_SESSION || rq.seq == 0 || rq.allow_probe > 1 ||
        rq.unconfined > 1) {
        sp_reply(s, r >= (ssize_t)(3 * sizeof(uint32_t)) ? rq.seq : 0, EINVAL, 0, NULL, 0,
                 "bad request");
        return 1;
    }
    sp_spawn(s, &rq);
    return 1;
}

/* Closes every descriptor but keep, then puts /dev/null on 0, 1 and 2 (so that no session
 * socket of a helper is ever descriptor 1 or 2, where a stray write would land). Returns the
 * number keep moved to, or -1. */
static int sp_descriptors(int keep)
{
    int fd = fcntl(keep, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -1;
    unsigned k = (unsigned)fd;
    if (close_range(0, k - 1, 0) != 0 || close_range(k + 1, ~0U, 0) != 0) {
        struct rlimit rl;
        long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (long)rl.rlim_cur
                       : 65536;
        for (long i = 0; i < max; i++)
            if (i != fd)
                close((int)i);
    }
    for (int i = 0; i < 3; i++)
        if (open("/dev/null", O_RDWR) != i)
            return -1;
    return fd;
}

__attribute__((noreturn)) static void spawner_main(int ctl, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        _exit(1);
    /* Not dumpable: without CAP_SYS_PTRACE, code that took over the host (same user, the
     * spawner's parent) cannot write into this process through /proc/PID/mem and make it fork
     * what the host's filter refuses. The helpers inherit it. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        _exit(1);
    /* the host's handlers must not run here; SIGCHLD comes through a signalfd */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        sa.sa_handler = sig == SIGPIPE ? SIG_IGN : SIG_DFL;
        (void)sigaction(sig, &sa, NULL);
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_SETMASK, &chld, NULL);

    spawner s = {.ctl = sp_descriptors(ctl), .sigfd = -1};
    if (s.ctl < 0)
        _exit(1);
    s.sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.sigfd < 0) {
        sp_reply(&s, 0, errno, 0, NULL, 0, "signalfd failed");
        _exit(1);
    }
    sp_reply(&s, 0, 0, getpid(), NULL, 0, NULL); /* hello */
    for (;;) {
        struct pollfd p[2] = {{.fd = s.ctl, .events = POLLIN}, {.fd = s.sigfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(s.sigfd, &si, sizeof si) > 0)
                ;
            sp_reap(&s);
        }
        if (p[0].revents && !sp_request(&s))
            break;
    }
    /* the host is gone: so are its sessions */
    for (int i = 0; i < s.nkids; i++)
        (void)kill(s.kids[i].pid, SIGKILL);
    while (s.nkids > 0) {
        siginfo_t si;
        if (waitid(P_ALL, 0, &si, WEXITED) != 0 && errno != EINTR)
            break;
        sp_reap(&s);
    }
    _exit(0);
}

/* ================================ the host's end ================================ */

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
        spawner_main(sv[1], parent);
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
