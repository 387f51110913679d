/* compiler.c - owns compiler sessions, the parent's end: one helper process per session, forked
 * (never exec'd: the library may live inside nginx or the dynacode command), confined by
 * dc_confine before it reads anything, then compiling request after request with dc_compile
 * until its socket reaches EOF. The helper's side is compiler_helper.c; what both ends share is
 * compiler_wire.h.
 *
 * Protocol on one AF_UNIX stream socketpair, host byte order (both ends are the same program):
 *   hello    helper -> parent  a reply: DC_OK once confined, else DC_ELUA and the reason
 *   request  parent -> helper  u32 op, u32 a, u32 b, then the payload
 *              op 1 compile: a = name length, b = code length; payload name then code
 *              op 2 probe:   a = a dc_probe, b = 0; no payload (test build only, see compiler.h)
 *   reply    helper -> parent  u32 dc_rc, u32 length, then length bytes: the bytecode for a
 *                              compile that gave DC_OK, else the message
 * Replies come in request order. The parent pipelines: dc_compiler_compile_many keeps sending
 * while replies come back, so both processes work at once and a wake-up carries many frames;
 * the helper reads what is there and writes its replies before it would block, or every 32
 * replies or 64 KiB. A single compile is a batch of one. Before confining itself, the helper
 * compiles one broken chunk of its own (see helper_main).
 *
 * The parent trusts nothing in a reply: unknown codes, bytecode without LuaJIT's signature,
 * lengths over the cap, silence past the deadline or EOF end the session (the helper is killed
 * and reaped, the reason kept). It never blocks without a deadline and cannot get SIGPIPE
 * (sendmsg with MSG_NOSIGNAL). The helper is killed and reaped through a pidfd where the kernel
 * has one, so a SIGKILL never reaches a recycled pid even when a host's SIGCHLD handler
 * collected the helper first (nginx's reaps every child with waitpid(-1)); the status is then
 * unknown and the message says so.
 *
 * When the process runs a compiler spawner (compiler_spawner.c), the helper is forked by it
 * instead: the session gets the same socket, a pidfd made by the spawner (its parent, so the pid
 * is the helper's for good) and a status pipe on which the spawner posts how the helper ended
 * once it reaped it. Killing uses the pidfd; without one (old kernels, valgrind) the plain pid,
 * and only while no status was posted: before that the spawner has not reaped the helper.
 *
 * Test hooks, compiled only into the test build of the library (DC_TESTING). The probe request
 * (dc_compiler_probe, or a plugin named "dc-probe:N" in a batch) is honoured only by a helper
 * whose session was opened with allow_probe; it makes the confined helper attempt open, fork,
 * execve and the like, or answer out of protocol, so that the tests observe the SIGSYS and the
 * parent's defences from outside. valgrind_unconfined (tests under valgrind) is described in
 * compiler.h. The product's helper has neither: an unknown op ends it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compiler.h"
#include "compiler_wire.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_MAX_REPLY (16u * 1024u * 1024u)
#define CLOSE_GRACE_MS 1000u  /* close: time given to exit on EOF before SIGKILL */
#define SEND_JOBS 64          /* requests per sendmsg */


struct dc_compiler {
    pid_t pid;          /* the helper, -1 once reaped */
    int pidfd;          /* -1 when the kernel has no pidfd_open (before 5.3) */
    int statusfd;       /* a spawner's helper: its status pipe; -1 for a helper forked here */
    int fd;             /* our end of the socketpair, -1 once closed */
    int broken;         /* the helper is gone: only close is left */
    int confined;       /* 0 only for valgrind_unconfined under valgrind */
    uint32_t timeout_ms;
    size_t max_reply;
    unsigned char *rbuf; /* bytes received, [roff, rlen) not yet taken as frames */
    size_t rcap, rlen, roff;
    char why[256];      /* why the session broke */
};

/* ================================ the session (parent) ================================ */

enum { IO_OK = 0, IO_GONE, IO_TIMEOUT, IO_ERROR, IO_NOMEM };

/* Waits until fd is ready for events or the deadline passes; *revents gets what happened. */
static int wait_fd(int fd, short events, double deadline, short *revents)
{
    for (;;) {
        double left = deadline - dc_now_ms();
        if (left <= 0)
            return IO_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left + 1);
        if (n > 0) {
            if (revents)
                *revents = p.revents;
            return IO_OK;
        }
        if (n < 0 && errno != EINTR)
            return IO_ERROR;
    }
}

/* 1 when the spawner posted the helper's status (it is reaped, its pid may be reused). */
static int status_posted(const dc_compiler *c)
{
    struct pollfd p = {.fd = c->statusfd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

static void kill_helper(dc_compiler *c)
{
    if (c->pid <= 0)
        return;
    if (c->pidfd < 0 && c->statusfd >= 0 && status_posted(c))
        return;
    if (c->pidfd >= 0)
        (void)pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
    else
        (void)kill(c->pid, SIGKILL);
}

/* A spawner's helper: its status, as the spawner posts it once it reaped the helper (which
 * was killed or told to end: a bounded wait). 0 with *si filled, else -1. */
static int spawned_status(dc_compiler *c, siginfo_t *si)
{
    uint32_t wait_ms = c->timeout_ms > CLOSE_GRACE_MS ? c->timeout_ms : CLOSE_GRACE_MS;
    dc_spawned_status st;
    size_t got = 0;
    double deadline = dc_now_ms() + wait_ms;
    while (got < sizeof st) {
        if (wait_fd(c->statusfd, POLLIN, deadline, NULL) != IO_OK) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = read(c->statusfd, (char *)&st + got, sizeof st - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0) {
            errno = EPIPE; /* the spawner ended first */
            return -1;
        } else if (errno != EINTR && errno != EAGAIN) {
            return -1;
        }
    }
    si->si_code = st.code;
    si->si_status = st.status;
    return 0;
}

/* Waits for the helper to end and describes how it did into msg (may be NULL). */
static void reap(dc_compiler *c, char *msg, size_t msglen)
{
    if (c->pid <= 0)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    const char *lost = "its status was collected elsewhere";
    if (c->statusfd >= 0) {
        r = spawned_status(c, &si);
        lost = "its status is unknown";
        close(c->statusfd);
        c->statusfd = -1;
    } else {
        do {
            memset(&si, 0, sizeof si);
            r = c->pidfd >= 0 ? waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) : -1;
            if (r != 0 && (c->pidfd < 0 || errno == EINVAL)) /* EINVAL: P_PIDFD before 5.4 */
                r = waitid(P_PID, (id_t)c->pid, &si, WEXITED);
        } while (r != 0 && errno == EINTR);
    }
    if (r != 0) {
        dc_set_err(msg, msglen, "compiler helper ended; %s (%s)", lost, strerror(errno));
    } else if (si.si_code == CLD_EXITED) {
        dc_set_err(msg, msglen, "compiler helper exited with status %d", si.si_status);
    } else {
        const char *abbrev = sigabbrev_np(si.si_status);
        dc_set_err(msg, msglen, "compiler helper killed by signal %d (SIG%s)", si.si_status,
                   abbrev ? abbrev : "?");
    }
    c->pid = -1;
    if (c->pidfd >= 0)
        close(c->pidfd);
    c->pidfd = -1;
}

/* Ends a session that cannot go on: kills and reaps the helper and keeps the reason in c->why,
 * which is what (the parent's finding) or, when what is NULL (the helper hung up), how the
 * helper ended. */
static void breaks(dc_compiler *c, const char *what)
{
    char status[160] = "";
    kill_helper(c); /* a helper that already died keeps its own status */
    reap(c, status, sizeof status);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->broken = 1;
    snprintf(c->why, sizeof c->why, "%s", what ? what : status);
}

static void io_breaks(dc_compiler *c, int io)
{
    char what[160];
    if (io == IO_GONE) {
        breaks(c, NULL);
        return;
    }
    if (io == IO_TIMEOUT)
        snprintf(what, sizeof what, "compiler helper did not answer within %u ms; killed",
                 c->timeout_ms);
    else if (io == IO_NOMEM)
        snprintf(what, sizeof what, "out of memory receiving from the compiler helper");
    else
        snprintf(what, sizeof what, "compiler helper socket: %s", strerror(errno));
    breaks(c, what);
}

static int known_rc(uint32_t rc)
{
    return rc == DC_OK || rc == DC_ENOMEM || rc == DC_EINVAL || rc == DC_ECOMPILE ||
           rc == DC_ELUA;
}

/* One reply frame taken out of the receive buffer. payload is malloc'd and NUL-terminated, or
 * NULL when memory ran out (the frame is consumed all the same). */
typedef struct frame {
    dc_rc code;
    char *payload;
    size_t len;
} frame;

/* 1 with *f filled, 0 when the frame is not complete yet, -1 for a frame the parent refuses
 * (reason in what). */
static int take_frame(dc_compiler *c, frame *f, char *what, size_t whatlen)
{
    size_t avail = c->rlen - c->roff;
    uint32_t hdr[2];
    if (avail < sizeof hdr)
        return 0;
    memcpy(hdr, c->rbuf + c->roff, sizeof hdr);
    if (!known_rc(hdr[0])) {
        snprintf(what, whatlen, "compiler helper answered an unknown result code %u", hdr[0]);
        return -1;
    }
    if (hdr[1] > c->max_reply) {
        snprintf(what, whatlen, "compiler helper reply of %u bytes is over the cap of %zu",
                 hdr[1], c->max_reply);
        return -1;
    }
    if (avail - sizeof hdr < hdr[1])
        return 0;
    f->code = (dc_rc)hdr[0];
    f->len = hdr[1];
    f->payload = malloc((size_t)hdr[1] + 1);
    if (f->payload) {
        memcpy(f->payload, c->rbuf + c->roff + sizeof hdr, hdr[1]);
        f->payload[hdr[1]] = '\0';
    }
    c->roff += sizeof hdr + hdr[1];
    if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
    return 1;
}

/* Reads what the socket holds without blocking, making room for the frame being received. */
static int recv_some(dc_compiler *c)
{
    for (;;) {
        size_t avail = c->rlen - c->roff;
        size_t need = 8;
        if (avail >= 8) {
            uint32_t hdr[2];
            memcpy(hdr, c->rbuf + c->roff, sizeof hdr);
            if (!known_rc(hdr[0]) || hdr[1] > c->max_reply)
                return IO_OK; /* take_frame refuses it */
            need = 8 + (size_t)hdr[1];
        }
        if (c->roff > 0 && c->rcap - c->rlen < BUF_CHUNK / 4) {
            memmove(c->rbuf, c->rbuf + c->roff, avail);
            c->rlen = avail;
            c->roff = 0;
        }
        if (c->rcap - c->roff < need || c->rcap - c->rlen < BUF_CHUNK / 4) {
            size_t cap = c->roff + (need > avail + BUF_CHUNK ? need : avail + BUF_CHUNK);
            unsigned char *p = realloc(c->rbuf, cap);
            if (!p)
                return IO_NOMEM;
            c->rbuf = p;
            c->rcap = cap;
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (r > 0) {
            c->rlen += (size_t)r;
            /* go on only for the rest of an incomplete first frame: memory stays bounded by
             * the frame size, whatever the helper sends */
            avail = c->rlen - c->roff;
            if (c->rlen < c->rcap || avail >= need)
                return IO_OK;
        } else if (r == 0) {
            return IO_GONE;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return IO_OK;
        } else if (errno != EINTR) {
            return errno == ECONNRESET ? IO_GONE : IO_ERROR;
        }
    }
}

/* Waits for one frame (the hello). */
static int await_frame(dc_compiler *c, double deadline, frame *f, char *what, size_t whatlen)
{
    for (;;) {
        int t = take_frame(c, f, what, whatlen);
        if (t != 0)
            return t > 0 ? IO_OK : IO_ERROR;
        int io = wait_fd(c->fd, POLLIN, deadline, NULL);
        if (io == IO_OK)
            io = recv_some(c);
        if (io != IO_OK)
            return io;
    }
}

/* ---- batches ---- */

/* A job that was refused before sending (over the limits) keeps rc DC_ELIMIT and is skipped. */
static size_t next_job(const dc_compile_job *jobs, size_t n, size_t i)
{
    while (i < n && jobs[i].rc == DC_ELIMIT)
        i++;
    return i;
}

static size_t request_size(uint32_t op, const dc_compile_job *j)
{
    return op == OP_COMPILE ? 12 + strlen(j->name) + j->len : 12;
}

/* Sends what the socket takes without blocking, from job *s (*soff bytes of it already sent),
 * up to SEND_JOBS requests per sendmsg. */
static int send_some(dc_compiler *c, uint32_t op, const dc_compile_job *jobs, size_t n,
                     size_t *s, size_t *soff)
{
    while (*s < n) {
        uint32_t hdr[SEND_JOBS][3];
        struct iovec iov[3 * SEND_JOBS];
        int cnt = 0;
        size_t skip = *soff;
        for (size_t j = *s, k = 0; j < n && k < SEND_JOBS; j = next_job(jobs, n, j + 1), k++) {
            const dc_compile_job *jb = &jobs[j];
            size_t nlen = op == OP_COMPILE ? strlen(jb->name) : 0;
            hdr[k][0] = op;
            hdr[k][1] = op == OP_COMPILE ? (uint32_t)nlen : (uint32_t)jb->len;
            hdr[k][2] = op == OP_COMPILE ? (uint32_t)jb->len : 0;
            const struct iovec seg[3] = {{hdr[k], sizeof hdr[k]},
                                         {(void *)jb->name, nlen},
                                         {(void *)jb->code, op == OP_COMPILE ? jb->len : 0}};
            for (int g = 0; g < 3; g++) {
                if (skip >= seg[g].iov_len) {
                    skip -= seg[g].iov_len;
                    continue;
                }
                iov[cnt].iov_base = (char *)seg[g].iov_base + skip;
                iov[cnt].iov_len = seg[g].iov_len - skip;
                cnt++;
                skip = 0;
            }
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return IO_OK;
            return errno == EPIPE || errno == ECONNRESET ? IO_GONE : IO_ERROR;
        }
        size_t left = *soff + (size_t)w;
        while (*s < n) {
            size_t sz = request_size(op, &jobs[*s]);
            if (left < sz)
                break;
            left -= sz;
            *s = next_job(jobs, n, *s + 1);
        }
        *soff = left;
    }
    return IO_OK;
}

static char *dup_msg(const char *prefix, const char *msg)
{
    size_t a = strlen(prefix), b = strlen(msg);
    char *p = malloc(a + b + 1);
    if (p) {
        memcpy(p, prefix, a);
        memcpy(p + a, msg, b + 1);
    }
    return p;
}

/* The session broke while job r was awaited: r gets the reason, the jobs after it are not
 * compiled. */
static void fail_from(const char *prefix, const char *why, dc_compile_job *jobs, size_t n,
                      size_t r)
{
    if (r < n) {
        jobs[r].rc = DC_ELUA;
        jobs[r].msg = dup_msg(prefix, why);
    }
    for (size_t i = next_job(jobs, n, r + 1); i < n; i = next_job(jobs, n, i + 1)) {
        jobs[i].rc = DC_ELUA;
        jobs[i].msg = dup_msg("not compiled: the compiler helper ended on an earlier plugin: ",
                              why);
    }
}

/* Fills job j from its reply; -1 (reason in what) when the reply is refused. */
static int take_reply(uint32_t op, dc_compile_job *j, frame *f, char *what, size_t whatlen)
{
    if (!f->payload) {
        j->rc = DC_ENOMEM;
        return 0;
    }
    if (f->code == DC_OK && op == OP_COMPILE) {
        /* what the workers will load must at least be LuaJIT bytecode */
        if (f->len < 4 || memcmp(f->payload, "\033LJ", 3) != 0) {
            free(f->payload);
            snprintf(what, whatlen,
                     "compiler helper answered something that is not LuaJIT bytecode");
            return -1;
        }
        j->rc = DC_OK;
        j->bc = (unsigned char *)f->payload;
        j->bclen = f->len;
        return 0;
    }
    j->rc = f->code;
    j->msg = f->payload;
    return 0;
}

static dc_rc run_batch(dc_compiler *c, uint32_t op, dc_compile_job *jobs, size_t n,
                       size_t *failed_at)
{
    for (size_t i = 0; i < n; i++) {
        dc_compile_job *j = &jobs[i];
        j->rc = DC_OK;
        j->bc = NULL;
        j->bclen = 0;
        j->msg = NULL;
        size_t nlen = op == OP_COMPILE ? strlen(j->name) : 0;
        if (op == OP_COMPILE && (nlen > DC_COMPILER_MAX_NAME || j->len > DC_COMPILER_MAX_CODE)) {
            char m[128];
            snprintf(m, sizeof m, "plugin %s is over the compiler's limit of %u bytes",
                     nlen > DC_COMPILER_MAX_NAME ? "name" : "source",
                     nlen > DC_COMPILER_MAX_NAME ? DC_COMPILER_MAX_NAME : DC_COMPILER_MAX_CODE);
            j->rc = DC_ELIMIT;
            j->msg = dup_msg("", m);
        }
    }
    size_t r = next_job(jobs, n, 0), s = r, soff = 0;
    if (failed_at)
        *failed_at = n;
    if (c->broken) {
        fail_from("compiler session is broken: ", c->why, jobs, n, r);
        if (failed_at)
            *failed_at = r;
        return DC_ELUA;
    }
    double deadline = dc_now_ms() + c->timeout_ms;
    int send_closed = 0, gone = 0;
    char what[160];
    for (;;) {
        frame f;
        int t = 0;
        while (r < n && (t = take_frame(c, &f, what, sizeof what)) == 1) {
            if (take_reply(op, &jobs[r], &f, what, sizeof what) != 0) {
                t = -1;
                break;
            }
            r = next_job(jobs, n, r + 1);
            deadline = dc_now_ms() + c->timeout_ms; /* each job gets the whole timeout */
        }
        if (r >= n)
            return DC_OK;
        if (t < 0 || gone) {
            if (t < 0)
                breaks(c, what);
            else
                io_breaks(c, IO_GONE);
            break;
        }
        int io = IO_OK;
        if (s < n && !send_closed) {
            io = send_some(c, op, jobs, n, &s, &soff);
            if (io == IO_GONE) { /* replies already written come first, then EOF */
                send_closed = 1;
                io = IO_OK;
            }
        }
        short ev = POLLIN, rev = 0;
        if (s < n && !send_closed)
            ev |= POLLOUT;
        if (io == IO_OK)
            io = wait_fd(c->fd, ev, deadline, &rev);
        if (io == IO_OK && (rev & (POLLIN | POLLHUP | POLLERR))) {
            io = recv_some(c);
            if (io == IO_GONE) {
                gone = 1;
                io = IO_OK;
            }
        }
        if (io != IO_OK) {
            io_breaks(c, io);
            break;
        }
    }
    fail_from("", c->why, jobs, n, r);
    if (failed_at)
        *failed_at = r;
    return DC_ELUA;
}

/* ---- public ---- */

/* Forks the helper from this process (no spawner here). why: the spawner that ended, if any,
 * for the message. 0, or -1 with err set. */
static int fork_helper(dc_compiler *c, int allow_probe, int unconfined, const char *why,
                       char *err, size_t errlen)
{
    /* CLOEXEC: an exec elsewhere in the host must not carry our end along (the helper would
     * never see EOF). */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        dc_set_err(err, errlen, "cannot start the compiler helper: socketpair: %s",
                   strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        dc_compiler_helper_main(sv[1], allow_probe, unconfined, parent);
        _exit(1); /* not reached */
    }
    int fork_errno = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        dc_set_err(err, errlen, "cannot start the compiler helper: %s%sfork: %s", why,
                   why[0] ? "; " : "", strerror(fork_errno));
        return -1;
    }
    c->pid = pid;
    c->fd = sv[0];
    /* -1 before Linux 5.3: plain pid then. valgrind does not know the call (it would print a
     * warning for every session), so there the plain pid is used from the start. */
    c->pidfd = dc_under_valgrind() ? -1 : pidfd_open(pid, 0);
    return 0;
}

dc_rc dc_compiler_open_opts(const dc_compiler_opts *opts, dc_compiler **out, char *err,
                            size_t errlen)
{
    if (!out) {
        dc_set_err(err, errlen, "dc_compiler_open: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    dc_compiler *c = calloc(1, sizeof *c);
    if (!c) {
        dc_set_err(err, errlen, "out of memory");
        return DC_ENOMEM;
    }
    c->pid = -1;
    c->pidfd = -1;
    c->statusfd = -1;
    c->fd = -1;
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_reply = opts && opts->max_reply ? opts->max_reply : DEFAULT_MAX_REPLY;
    if (c->max_reply > UINT32_MAX)
        c->max_reply = UINT32_MAX;
    int allow_probe = 0, unconfined = 0;
#ifdef DC_TESTING
    allow_probe = opts ? opts->allow_probe : 0;
    /* valgrind implements neither seccomp nor an RLIMIT_NOFILE of 0, and its own calls in the
     * helper would not pass the filter: a test that asked for it gets an unconfined helper
     * there; everyone else (and the product always) fails to open, as without seccomp. */
    unconfined = opts && opts->valgrind_unconfined && dc_under_valgrind();
#endif
    c->confined = !unconfined;

    char why[192] = "";
    dc_spawned sp;
    int via = dc_spawner_session(allow_probe, unconfined, c->timeout_ms, &sp, why, sizeof why);
    if (via < 0) {
        dc_set_err(err, errlen, "cannot start the compiler helper: %s", why);
        free(c);
        return DC_ELUA;
    }
    if (via > 0) {
        c->pid = sp.pid;
        c->fd = sp.fd;
        c->pidfd = sp.pidfd;
        c->statusfd = sp.statusfd;
    } else if (fork_helper(c, allow_probe, unconfined, why, err, errlen) != 0) {
        free(c);
        return DC_ELUA;
    }

    frame f = {0};
    char what[160] = "";
    int io = await_frame(c, dc_now_ms() + c->timeout_ms, &f, what, sizeof what);
    if (io == IO_ERROR && what[0])
        breaks(c, what);
    else if (io != IO_OK)
        io_breaks(c, io);
    else if (f.code != DC_OK || !f.payload)
        breaks(c, f.payload ? f.payload : "out of memory");
    free(f.payload);
    if (c->broken) {
        dc_set_err(err, errlen, "cannot start the compiler helper: %s", c->why);
        dc_compiler_close(c);
        return DC_ELUA;
    }
    *out = c;
    return DC_OK;
}

dc_rc dc_compiler_open(dc_compiler **out, char *err, size_t errlen)
{
    return dc_compiler_open_opts(NULL, out, err, errlen);
}

dc_rc dc_compiler_compile_many(dc_compiler *c, dc_compile_job *jobs, size_t n,
                               size_t *failed_at)
{
    if (!c || (!jobs && n)) {
        if (failed_at)
            *failed_at = 0;
        return DC_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].name || (!jobs[i].code && jobs[i].len)) {
            if (failed_at)
                *failed_at = i;
            return DC_EINVAL;
        }
    }
    return run_batch(c, OP_COMPILE, jobs, n, failed_at);
}

dc_rc dc_compiler_compile(dc_compiler *c, const char *name, const char *code, size_t len,
                          unsigned char **bc, size_t *bclen, char *err, size_t errlen)
{
    if (!c || !name || (!code && len) || !bc || !bclen) {
        dc_set_err(err, errlen, "dc_compiler_compile: bad argument");
        return DC_EINVAL;
    }
    dc_compile_job j = {.name = name, .code = code, .len = len};
    run_batch(c, OP_COMPILE, &j, 1, NULL);
    *bc = j.bc;
    *bclen = j.bclen;
    if (j.rc != DC_OK)
        dc_set_err(err, errlen, "%s", j.msg ? j.msg : dc_strerror(j.rc));
    free(j.msg);
    return j.rc;
}

#ifdef DC_TESTING
dc_rc dc_compiler_probe(dc_compiler *c, dc_probe probe, char *err, size_t errlen)
{
    if (!c) {
        dc_set_err(err, errlen, "dc_compiler_probe: bad argument");
        return DC_EINVAL;
    }
    dc_compile_job j = {.len = (size_t)probe};
    run_batch(c, OP_PROBE, &j, 1, NULL);
    dc_set_err(err, errlen, "%s", j.msg ? j.msg : dc_strerror(j.rc));
    free(j.msg);
    return j.rc;
}
#endif /* DC_TESTING */

int dc_compiler_broken(const dc_compiler *c)
{
    return !c || c->broken;
}

int dc_compiler_confined(const dc_compiler *c)
{
    return c && c->confined;
}

int dc_compiler_pid(const dc_compiler *c)
{
    return c && c->pid > 0 ? (int)c->pid : -1;
}

void dc_compiler_close(dc_compiler *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd); /* EOF: the helper exits */
    c->fd = -1;
    if (c->pid > 0) {
        int exited = 0;
        /* a spawner's helper has ended once its status is posted */
        int ended_fd = c->statusfd >= 0 ? c->statusfd : c->pidfd;
        if (ended_fd >= 0) {
            uint32_t grace = c->timeout_ms < CLOSE_GRACE_MS ? c->timeout_ms : CLOSE_GRACE_MS;
            exited = wait_fd(ended_fd, POLLIN, dc_now_ms() + grace, NULL) == IO_OK;
        }
        if (!exited)
            kill_helper(c);
        reap(c, NULL, 0);
    }
    free(c->rbuf);
    free(c);
}
