/* compiler_spawner_main.c - the compiler spawner process (its host end and the protocol are
 * compiler_spawner.c): forked once by its host, it runs no plugin code and opens no file but
 * /dev/null. It drops the host's signal handlers and descriptors, becomes non-dumpable, then
 * waits on its control socket; for each valid request it forks one compiler helper, hands the session's
 * descriptors back, and reaps its helpers as they end, posting each one's status to its pipe.
 * At EOF on the control socket it kills and reaps the helpers left and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
    unconfined = rq->unconfined != 0 && dc_under_valgrind();
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
    int pidfd = dc_under_valgrind() ? -1 : pidfd_open(pid, 0);
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

void dc_compiler_spawner_main(int ctl, pid_t parent)
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
