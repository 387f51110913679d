/* test_spawner.c - the compiler spawner (dc_compiler_spawner_start): sessions opened through it
 * compile like sessions forked directly, their helpers are the spawner's children (never this
 * process's), a helper killed from outside is reaped by the spawner and its end reported, many
 * sessions in a row leave no zombie, concurrent sessions from threads work, the spawner ends
 * when its parent's socket closes (stop, or the parent's death), and a process forked from the
 * one that started it forks its own helpers, and a malformed control request (short, long, a
 * wrong field, descriptors attached) is answered "bad request" with nothing carried, after
 * which the spawner still serves. Each test runs in its own process (Check forks).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "compiler.h"
#include "compiler_wire.h"
#include "testutil.h"

#define ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)

/* A process's state letter and parent from /proc/PID/stat: 0 when it does not exist. */
static char proc_state(int pid, int *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    char st = 0;
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = pp;
    return st;
}

/* The children of pid that are zombies (Z), and all its children, in /proc. */
static void children_of(int pid, int *all, int *zombies)
{
    *all = *zombies = 0;
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int p = atoi(e->d_name);
        int pp = 0;
        char st;
        if (p <= 0 || !(st = proc_state(p, &pp)) || pp != pid)
            continue;
        (*all)++;
        if (st == 'Z')
            (*zombies)++;
    }
    closedir(d);
}

/* Waits (bounded) until pid has no child left, zombie or not. */
static int no_children_within(int pid, int seconds)
{
    int all = 0, z = 0;
    for (int i = 0; i < seconds * 100; i++) {
        children_of(pid, &all, &z);
        if (all == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int gone_within(int pid, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        char st = proc_state(pid, NULL);
        if (st == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

static void start_spawner(void)
{
    char err[256] = "";
    ck_assert_msg(dc_compiler_spawner_start(err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_gt(dc_compiler_spawner_pid(), 0);
}

static dc_compiler *open_session(int allow_probe)
{
    dc_compiler_opts o = {.timeout_ms = 60000, .allow_probe = allow_probe,
                          .valgrind_unconfined = 1};
    dc_compiler *c = NULL;
    char err[256] = "";
    dc_rc rc = dc_compiler_open_opts(&o, &c, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "open: %d %s", rc, err);
    return c;
}

static void compiles_fine(dc_compiler *c, const char *code)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[256] = "";
    dc_rc rc = dc_compiler_compile(c, "p", code, strlen(code), &bc, &n, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "compile: %d %s", rc, err);
    ck_assert_uint_gt(n, 4);
    ck_assert_mem_eq(bc, "\033LJ", 3);
    free(bc);
}

START_TEST(sessions_through_the_spawner_compile_like_direct_ones)
{
    static const char code[] = "local t = {}\nfor i = 1, 10 do t[i] = i * 2 end\nreturn t[3]";
    dc_compiler *direct = open_session(0);
    int direct_pid = dc_compiler_pid(direct);
    int ppid = 0;
    ck_assert(proc_state(direct_pid, &ppid));
    ck_assert_int_eq(ppid, getpid()); /* no spawner: our child */

    start_spawner();
    int sp = dc_compiler_spawner_pid();
    ck_assert(proc_state(sp, &ppid));
    ck_assert_int_eq(ppid, getpid());
    dc_compiler *via = open_session(0);
    int via_pid = dc_compiler_pid(via);
    ck_assert(proc_state(via_pid, &ppid));
    ck_assert_int_eq(ppid, sp); /* the spawner's child, not ours */
    ck_assert_int_eq(dc_compiler_confined(via), !ON_VALGRIND());
    if (!ON_VALGRIND()) {
        char path[64], line[128];
        int seccomp = -1;
        snprintf(path, sizeof path, "/proc/%d/status", via_pid);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f))
            sscanf(line, "Seccomp: %d", &seccomp);
        fclose(f);
        ck_assert_int_eq(seccomp, 2);
    }

    /* the same bytecode from both (no keyed table constructor: no per-state order) */
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    char err[256] = "";
    ck_assert_int_eq(dc_compiler_compile(direct, "p", code, strlen(code), &a, &alen, err,
                                         sizeof err), DC_OK);
    ck_assert_int_eq(dc_compiler_compile(via, "p", code, strlen(code), &b, &blen, err,
                                         sizeof err), DC_OK);
    ck_assert_uint_eq(alen, blen);
    ck_assert_mem_eq(a, b, alen);
    free(a);
    free(b);

    /* Lua's message for a plugin that does not compile, and the session goes on */
    ck_assert_int_eq(dc_compiler_compile(via, "bad", "return +", 8, &a, &alen, err, sizeof err),
                     DC_ECOMPILE);
    ck_assert_ptr_nonnull(strstr(err, "unexpected symbol"));
    ck_assert(!dc_compiler_broken(via));
    compiles_fine(via, "return 1");

    dc_compiler_close(via);
    dc_compiler_close(direct);
    ck_assert_msg(no_children_within(sp, 10), "the spawner kept a child after close");
    dc_compiler_spawner_stop();
    ck_assert_int_eq(dc_compiler_spawner_pid(), -1);
}
END_TEST

START_TEST(a_killed_helper_is_reaped_by_the_spawner)
{
    start_spawner();
    int sp = dc_compiler_spawner_pid();
    dc_compiler *c = open_session(0);
    int pid = dc_compiler_pid(c);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    /* not ours to reap */
    ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
    ck_assert_msg(gone_within(pid, 10), "the killed helper was not reaped");
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[256] = "";
    ck_assert_int_eq(dc_compiler_compile(c, "p", "return 1", 8, &bc, &n, err, sizeof err),
                     DC_ELUA);
    ck_assert_str_eq(err, "compiler helper killed by signal 9 (SIGKILL)");
    ck_assert(dc_compiler_broken(c));
    dc_compiler_close(c);
    /* the spawner is still there and serves the next session */
    ck_assert_int_eq(dc_compiler_spawner_pid(), sp);
    c = open_session(0);
    compiles_fine(c, "return 2");
    dc_compiler_close(c);
    dc_compiler_spawner_stop();
}
END_TEST

START_TEST(a_crash_is_reported_through_the_spawner)
{
    start_spawner();
    dc_compiler *c = open_session(1);
    char err[256] = "";
    ck_assert_int_eq(dc_compiler_probe(c, DC_PROBE_CRASH, err, sizeof err), DC_ELUA);
    ck_assert_str_eq(err, "compiler helper killed by signal 11 (SIGSEGV)");
    dc_compiler_close(c);
    c = open_session(1);
    ck_assert_int_eq(dc_compiler_probe(c, DC_PROBE_EXIT, err, sizeof err), DC_ELUA);
    ck_assert_str_eq(err, "compiler helper exited with status 3");
    dc_compiler_close(c);
    if (!ON_VALGRIND()) {
        c = open_session(1);
        ck_assert_int_eq(dc_compiler_probe(c, DC_PROBE_FORK, err, sizeof err), DC_ELUA);
        ck_assert_str_eq(err, "compiler helper killed by signal 31 (SIGSYS)");
        dc_compiler_close(c);
    }
    dc_compiler_spawner_stop();
}
END_TEST

START_TEST(a_hung_helper_is_killed_through_the_spawner)
{
    start_spawner();
    dc_compiler_opts o = {.timeout_ms = ON_VALGRIND() ? 5000 : 300, .allow_probe = 1,
                          .valgrind_unconfined = 1};
    dc_compiler *c = NULL;
    char err[256] = "";
    ck_assert_msg(dc_compiler_open_opts(&o, &c, err, sizeof err) == DC_OK, "%s", err);
    int pid = dc_compiler_pid(c);
    ck_assert_int_eq(dc_compiler_probe(c, DC_PROBE_HANG, err, sizeof err), DC_ELUA);
    ck_assert_ptr_nonnull(strstr(err, "did not answer within"));
    ck_assert_msg(gone_within(pid, 10), "the hung helper lives on");
    dc_compiler_close(c);
    dc_compiler_spawner_stop();
}
END_TEST

START_TEST(many_sessions_leave_no_zombie)
{
    start_spawner();
    int sp = dc_compiler_spawner_pid();
    int n = tu_quick() || ON_VALGRIND() ? 10 : 60;
    for (int i = 0; i < n; i++) {
        dc_compiler *c = open_session(1);
        if (i % 3 == 0) {
            compiles_fine(c, "return 3");
        } else if (i % 3 == 1) { /* a helper that dies on its own */
            char err[256] = "";
            ck_assert_int_eq(dc_compiler_probe(c, DC_PROBE_EXIT, err, sizeof err), DC_ELUA);
        }                        /* else: closed without a request */
        dc_compiler_close(c);
    }
    ck_assert_msg(no_children_within(sp, 10), "the spawner keeps children after %d sessions", n);
    int all = 0, z = 0;
    children_of(getpid(), &all, &z);
    ck_assert_int_eq(z, 0);
    ck_assert_int_eq(all, 1); /* the spawner, nothing else */
    dc_compiler_spawner_stop();
    children_of(getpid(), &all, &z);
    ck_assert_int_eq(all, 0); /* stop collected the spawner */
}
END_TEST

static void *thread_sessions(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        dc_compiler *c = open_session(0);
        compiles_fine(c, "local a, b = 1, 2\nreturn a + b");
        dc_compiler_close(c);
    }
    return NULL;
}

START_TEST(threads_open_sessions_at_once)
{
    start_spawner();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_sessions, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert(no_children_within(dc_compiler_spawner_pid(), 10));
    dc_compiler_spawner_stop();
}
END_TEST

START_TEST(stop_ends_the_spawner_and_its_sessions)
{
    start_spawner();
    int sp = dc_compiler_spawner_pid();
    char err[256] = "";
    ck_assert_int_eq(dc_compiler_spawner_start(err, sizeof err), DC_EBUSY);
    dc_compiler *c = open_session(0);
    int pid = dc_compiler_pid(c);
    dc_compiler_spawner_stop();
    ck_assert_int_eq(dc_compiler_spawner_pid(), -1);
    ck_assert_int_eq(proc_state(sp, NULL), 0); /* collected: not even a zombie */
    ck_assert_msg(gone_within(pid, 10), "a session's helper outlived the spawner");
    unsigned char *bc = NULL;
    size_t n = 0;
    ck_assert_int_eq(dc_compiler_compile(c, "p", "return 1", 8, &bc, &n, err, sizeof err),
                     DC_ELUA);
    dc_compiler_close(c);
    /* without a spawner, sessions fork their helper again */
    c = open_session(0);
    int ppid = 0;
    ck_assert(proc_state(dc_compiler_pid(c), &ppid));
    ck_assert_int_eq(ppid, getpid());
    compiles_fine(c, "return 4");
    dc_compiler_close(c);
    /* and a new spawner can be started */
    start_spawner();
    dc_compiler_spawner_stop();
}
END_TEST

/* The spawner's parent ends without stopping it: the socket closes and the spawner ends. */
START_TEST(the_spawner_ends_with_its_parent)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t mid = fork();
    ck_assert_int_ge(mid, 0);
    if (mid == 0) {
        close(pfd[0]);
        char err[256] = "";
        if (dc_compiler_spawner_start(err, sizeof err) != DC_OK)
            _exit(1);
        dc_compiler *c = open_session(0);
        int pids[2] = {dc_compiler_spawner_pid(), dc_compiler_pid(c)};
        if (write(pfd[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(2);
        _exit(0); /* neither stop nor close */
    }
    close(pfd[1]);
    int pids[2] = {0, 0};
    ck_assert_int_eq(read(pfd[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(pfd[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(mid, &st, 0), mid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* orphans are collected by init or a subreaper: gone, or at most a zombie for a moment */
    for (int k = 0; k < 2; k++) {
        int ok = 0;
        for (int i = 0; i < 1000 && !ok; i++) {
            char s = proc_state(pids[k], NULL);
            ok = s == 0 || s == 'Z';
            if (!ok)
                usleep(10000);
        }
        ck_assert_msg(ok, "%s %d still runs after its parent ended", k ? "helper" : "spawner",
                      pids[k]);
    }
}
END_TEST

/* A process forked from the one that runs the spawner does not use its parent's. */
START_TEST(a_forked_child_forks_its_own_helpers)
{
    start_spawner();
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        if (dc_compiler_spawner_pid() != -1)
            _exit(1);
        dc_compiler_opts o = {.timeout_ms = 60000, .valgrind_unconfined = 1};
        dc_compiler *c = NULL;
        char err[256] = "";
        if (dc_compiler_open_opts(&o, &c, err, sizeof err) != DC_OK)
            _exit(2);
        int ppid = 0;
        int own = proc_state(dc_compiler_pid(c), &ppid) && ppid == getpid();
        dc_compiler_close(c);
        dc_compiler_spawner_stop(); /* closes the inherited socket only */
        _exit(own ? 0 : 3);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    /* ours still works */
    dc_compiler *c = open_session(0);
    compiles_fine(c, "return 5");
    dc_compiler_close(c);
    dc_compiler_spawner_stop();
}
END_TEST

/* One control reply (bounded wait): its size, with the descriptors it carried closed and
 * counted in *nfds. */
static ssize_t ctl_reply(int fd, sp_rep *rep, int *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cb;
    struct iovec iov = {rep, sizeof *rep};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                        .msg_controllen = sizeof cb.buf};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    *nfds = 0;
    memset(rep, 0, sizeof *rep);
    if (poll(&p, 1, 60000) != 1)
        return -1;
    ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            close(got);
        }
        *nfds += (int)n;
    }
    return r;
}

/* Sends len bytes of rq on fd, with fd_along attached when it is >= 0. */
static void ctl_send(int fd, const void *rq, size_t len, int fd_along)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = {(void *)rq, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd_along >= 0) {
        mh.msg_control = cb.buf;
        mh.msg_controllen = sizeof cb.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd_along, sizeof fd_along);
    }
    ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

START_TEST(malformed_control_requests_are_refused_and_the_spawner_goes_on)
{
    /* the spawner's process on a control socket of our own, as the host would start it */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t self = getpid();
    pid_t sp = fork();
    ck_assert_int_ge(sp, 0);
    if (sp == 0) {
        close(sv[0]);
        dc_compiler_spawner_main(sv[1], self);
    }
    close(sv[1]);
    sp_rep rep;
    int nfds;
    ck_assert_int_eq(ctl_reply(sv[0], &rep, &nfds), (ssize_t)sizeof rep); /* hello */
    ck_assert_uint_eq(rep.seq, 0);
    ck_assert_int_eq(rep.pid, sp);

    uint32_t unconfined = ON_VALGRIND() ? 1 : 0; /* honoured only there, in the test build */
    const struct {
        const char *what;
        sp_req rq;
        size_t len;
        int with_fd;
        uint32_t seq; /* echoed when the message holds one */
    } bad[] = {
        {"one byte", {SP_MAGIC, SP_OP_SESSION, 21, 0, unconfined}, 1, 0, 0},
        {"no sequence number", {SP_MAGIC, SP_OP_SESSION, 22, 0, unconfined}, 8, 0, 0},
        {"a field short", {SP_MAGIC, SP_OP_SESSION, 23, 0, unconfined}, sizeof(sp_req) - 4, 0, 23},
        {"wrong magic", {0x41414141u, SP_OP_SESSION, 24, 0, unconfined}, sizeof(sp_req), 0, 24},
        {"unknown op", {SP_MAGIC, 7, 25, 0, unconfined}, sizeof(sp_req), 0, 25},
        {"sequence 0", {SP_MAGIC, SP_OP_SESSION, 0, 0, unconfined}, sizeof(sp_req), 0, 0},
        {"allow_probe 2", {SP_MAGIC, SP_OP_SESSION, 26, 2, unconfined}, sizeof(sp_req), 0, 26},
        {"unconfined 9", {SP_MAGIC, SP_OP_SESSION, 27, 0, 9}, sizeof(sp_req), 0, 27},
        {"a descriptor attached", {SP_MAGIC, SP_OP_SESSION, 28, 0, unconfined}, sizeof(sp_req), 1,
         28},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int along = bad[i].with_fd ? dup(2) : -1;
        ctl_send(sv[0], &bad[i].rq, bad[i].len, along);
        if (along >= 0)
            close(along);
        ck_assert_msg(ctl_reply(sv[0], &rep, &nfds) == (ssize_t)sizeof rep, "%s: no reply",
                      bad[i].what);
        ck_assert_msg(rep.magic == SP_MAGIC && rep.err == EINVAL && nfds == 0 && rep.nfds == 0,
                      "%s: err %d, %d descriptors", bad[i].what, rep.err, nfds);
        ck_assert_msg(rep.seq == bad[i].seq, "%s: seq %u", bad[i].what, rep.seq);
        ck_assert_str_eq(rep.msg, "bad request");
    }
    /* longer than a request: cut, and refused */
    char longer[sizeof(sp_req) + 16] = {0};
    sp_req ok = {SP_MAGIC, SP_OP_SESSION, 29, 0, unconfined};
    memcpy(longer, &ok, sizeof ok);
    ctl_send(sv[0], longer, sizeof longer, -1);
    ck_assert_int_eq(ctl_reply(sv[0], &rep, &nfds), (ssize_t)sizeof rep);
    ck_assert_int_eq(rep.err, EINVAL);
    ck_assert_int_eq(nfds, 0);

    /* still serving: a good request gets a session (its socket, status pipe, maybe a pidfd) */
    ok.seq = 30;
    ctl_send(sv[0], &ok, sizeof ok, -1);
    ck_assert_int_eq(ctl_reply(sv[0], &rep, &nfds), (ssize_t)sizeof rep);
    ck_assert_msg(rep.err == 0, "session refused: %s", rep.msg);
    ck_assert_uint_eq(rep.seq, 30);
    ck_assert_int_gt(rep.pid, 0);
    ck_assert_int_ge(nfds, 2);
    ck_assert_int_eq(nfds, (int)rep.nfds);

    /* EOF on the control socket: it ends, with its helper */
    close(sv[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(sp, &st, 0), sp);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "spawner status %d", st);
    ck_assert(gone_within(rep.pid, 30));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spawner");
    TCase *tc = tcase_create("spawner");
    tcase_add_test(tc, sessions_through_the_spawner_compile_like_direct_ones);
    tcase_add_test(tc, a_killed_helper_is_reaped_by_the_spawner);
    tcase_add_test(tc, a_crash_is_reported_through_the_spawner);
    tcase_add_test(tc, a_hung_helper_is_killed_through_the_spawner);
    tcase_add_test(tc, many_sessions_leave_no_zombie);
    tcase_add_test(tc, threads_open_sessions_at_once);
    tcase_add_test(tc, stop_ends_the_spawner_and_its_sessions);
    tcase_add_test(tc, the_spawner_ends_with_its_parent);
    tcase_add_test(tc, a_forked_child_forks_its_own_helpers);
    tcase_add_test(tc, malformed_control_requests_are_refused_and_the_spawner_goes_on);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
