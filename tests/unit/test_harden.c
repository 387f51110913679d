/* test_harden.c - the optional worker filter (dc_harden_process): once installed, execve,
 * ptrace and process_vm_readv fail with EPERM in every thread, including one started before;
 * so do fork, vfork and a clone that makes a process, while threads still start; plugins still
 * compile through the compiler spawner started before the filter, as in an nginx worker. Each test runs in its own forked process (the
 * filter cannot be removed). Skipped under Valgrind, which cannot host seccomp, and in the
 * AddressSanitizer build, whose leak check stops the process with ptrace at exit (the very
 * call the filter refuses).
 */
#define _GNU_SOURCE 1 /* clone */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "compiler.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SKIP_HARDEN 1
#else
#define SKIP_HARDEN RUNNING_ON_VALGRIND
#endif

static int exec_true(void)
{
    char *const argv[] = {"true", NULL};
    char *const envp[] = {NULL};
    return execve("/bin/true", argv, envp);
}

static volatile int go;
static int thread_rc, thread_errno;

static void *late_exec(void *arg)
{
    (void)arg;
    while (!go)
        usleep(1000);
    thread_rc = exec_true();
    thread_errno = errno;
    return NULL;
}

START_TEST(refuses_exec_ptrace_and_peeking_in_every_thread)
{
    if (SKIP_HARDEN)
        return;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, late_exec, NULL), 0); /* before the filter */
    char err[256] = "";
    ck_assert_msg(dc_harden_process(err, sizeof err) == DC_OK, "%s", err);
    errno = 0;
    ck_assert_int_eq(exec_true(), -1);
    ck_assert_int_eq(errno, EPERM);
    errno = 0;
    ck_assert_int_eq(ptrace(PTRACE_TRACEME, 0, NULL, NULL), -1);
    ck_assert_int_eq(errno, EPERM);
    char a = 0, b = 0;
    struct iovec l = {&a, 1}, r = {&b, 1};
    errno = 0;
    ck_assert_int_eq(process_vm_readv(getppid(), &l, 1, &r, 1, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    go = 1;
    pthread_join(t, NULL);
    ck_assert_int_eq(thread_rc, -1);
    ck_assert_int_eq(thread_errno, EPERM);
}
END_TEST

static void *thread_says(void *arg)
{
    *(int *)arg = 42;
    return NULL;
}

static int clone_child(void *arg)
{
    (void)arg;
    return 0;
}

START_TEST(refuses_new_processes_but_not_threads)
{
    if (SKIP_HARDEN)
        return;
    char err[256] = "";
    ck_assert_msg(dc_harden_process(err, sizeof err) == DC_OK, "%s", err);
    errno = 0;
    ck_assert_int_eq(fork(), -1);
    ck_assert_int_eq(errno, EPERM);
    errno = 0;
    ck_assert_int_eq(syscall(SYS_vfork), -1);
    ck_assert_int_eq(errno, EPERM);
    static char stack[64 * 1024];
    errno = 0;
    ck_assert_int_eq(clone(clone_child, stack + sizeof stack, SIGCHLD, NULL), -1);
    ck_assert_int_eq(errno, EPERM);
    /* threads: the C library's pthread_create (clone3 refused with ENOSYS, clone then) */
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        int said = 0;
        ck_assert_int_eq(pthread_create(&t, NULL, thread_says, &said), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(said, 42);
    }
}
END_TEST

/* A worker-like process: the spawner first, then threads and the filter; bundles compile. */
START_TEST(plugins_compile_through_the_spawner_after_hardening)
{
    if (SKIP_HARDEN)
        return;
    char err[256] = "";
    ck_assert_msg(dc_compiler_spawner_start(err, sizeof err) == DC_OK, "%s", err);
    ck_assert_msg(dc_harden_process(err, sizeof err) == DC_OK, "%s", err);
    errno = 0;
    ck_assert_int_eq(fork(), -1);
    ck_assert_int_eq(errno, EPERM);
    for (int round = 0; round < 3; round++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                 "\"plugins\":[{\"name\":\"p\",\"phase\":\"access\","
                 "\"code\":\"ngx.header['X-P'] = '%d'\"}]}]}", round);
        dc_bundle *b = tu_bundle(json);
        dc_engine *e = tu_engine(b);
        dc_bundle_unref(b);
        dc_sim *s = tu_request(e, "a.com", "/");
        char want[8];
        snprintf(want, sizeof want, "%d", round);
        ck_assert_str_eq(dc_sim_header(s, "X-P"), want);
        dc_sim_free(s);
        dc_engine_free(e);
    }
    dc_compiler_spawner_stop();
}
END_TEST

/* Without a spawner a hardened process cannot open a compiler session, and says why. */
START_TEST(without_the_spawner_sessions_fail_clearly)
{
    if (SKIP_HARDEN)
        return;
    char err[256] = "";
    ck_assert_msg(dc_harden_process(err, sizeof err) == DC_OK, "%s", err);
    dc_compiler *c = NULL;
    ck_assert_int_eq(dc_compiler_open(&c, err, sizeof err), DC_ELUA);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err, "cannot start the compiler helper: fork: Operation not permitted");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harden");
    TCase *tc = tcase_create("harden");
    tcase_add_test(tc, refuses_exec_ptrace_and_peeking_in_every_thread);
    tcase_add_test(tc, refuses_new_processes_but_not_threads);
    tcase_add_test(tc, plugins_compile_through_the_spawner_after_hardening);
    tcase_add_test(tc, without_the_spawner_sessions_fail_clearly);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
