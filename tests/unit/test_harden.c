/* test_harden.c - the optional worker filter (dc_harden_process): once installed, execve,
 * ptrace and process_vm_readv fail with EPERM in every thread, including one started before;
 * fork and the confined compiler still work. Each test runs in its own forked process (the
 * filter cannot be removed). Skipped under Valgrind, which cannot host seccomp, and in the
 * AddressSanitizer build, whose leak check stops the process with ptrace at exit (the very
 * call the filter refuses).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

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

START_TEST(fork_and_the_confined_compiler_still_work)
{
    if (SKIP_HARDEN)
        return;
    char err[256] = "";
    ck_assert_msg(dc_harden_process(err, sizeof err) == DC_OK, "%s", err);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    dc_bundle *b = tu_bundle("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                             "\"plugins\":[{\"name\":\"p\",\"phase\":\"access\","
                             "\"code\":\"ngx.header['X-P'] = '1'\"}]}]}");
    dc_engine *e = tu_engine(b);
    dc_bundle_unref(b);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-P"), "1");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harden");
    TCase *tc = tcase_create("harden");
    tcase_add_test(tc, refuses_exec_ptrace_and_peeking_in_every_thread);
    tcase_add_test(tc, fork_and_the_confined_compiler_still_work);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
