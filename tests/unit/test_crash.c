/* test_crash.c - crash containment: a worker (a forked child) whose plugin call dies by a fatal
 * signal marks the plugin quarantined in the shared store first and still dies by that signal;
 * the next worker skips the plugin. Outside a plugin call the previous handler or the default
 * action runs as before. crash_in_c comes from crash_fn.c, linked into this test only.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef ON_VALGRIND
#define ON_VALGRIND() 0
#endif

#include "crash.h"
#include "engine.h"
#include "testutil.h"

#define REGION_BYTES (1u << 20)

static const char *bundle_json(char *buf, size_t cap, const char *kind)
{
    snprintf(buf, cap,
             "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
             "\"plugins\":[{\"name\":\"fine\",\"phase\":\"rewrite\",\"code\":\"local x = 1\"},"
             "{\"name\":\"boom\",\"phase\":\"access\",\"code\":\"crash_in_c('%s')\"},"
             "{\"name\":\"after\",\"phase\":\"access\",\"code\":\"local y = 2\"}]}]}",
             kind);
    return buf;
}

typedef struct fixture {
    void *region;
    dc_store *store;
    dc_policy *policy;
    dc_engine_config cfg;
} fixture;

static void setup(fixture *f)
{
    f->region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    ck_assert(f->region != MAP_FAILED);
    ck_assert_int_eq(dc_store_attach(f->region, REGION_BYTES, 1, &f->store, NULL, 0), DC_OK);
    const char *pj = "{\"quarantine\":{\"trips\":5,\"window_s\":60,\"duration_s\":120}}";
    ck_assert_int_eq(dc_policy_load(pj, strlen(pj), "test", &f->policy, NULL, 0), DC_OK);
    dc_engine_config_default(&f->cfg);
    f->cfg.host = dc_sim_host();
    f->cfg.policy = f->policy;
    f->cfg.store = f->store;
}

static void teardown(fixture *f)
{
    dc_policy_free(f->policy);
    dc_store_detach(f->store);
    munmap(f->region, REGION_BYTES);
}

typedef struct ran {
    int fine, boom, after;
} ran;

static void on_run(void *ud, const dc_run_info *i)
{
    ran *r = ud;
    if (strcmp(i->plugin, "fine") == 0 && i->result == DC_RESULT_OK)
        r->fine++;
    else if (strcmp(i->plugin, "boom") == 0)
        r->boom++;
    else if (strcmp(i->plugin, "after") == 0 && i->result == DC_RESULT_OK)
        r->after++;
}

static void boom_stats(void *ud, const dc_plugin_stats *st)
{
    if (strcmp(st->plugin, "boom") == 0)
        *(dc_plugin_stats *)ud = *st;
}

/* A worker: installs the guard, serves one request; returns only when the process survived. */
static int child_request(fixture *f, const char *json)
{
    if (dc_crash_guard_install(NULL, 0) != DC_OK)
        return 3;
    dc_engine *e;
    if (dc_engine_new(&f->cfg, &e, NULL, 0) != DC_OK)
        return 4;
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_sim_free(tu_request(e, "a.com", "/"));
    return 5;
}

/* Runs a worker serving one request with crash_in_c(kind) and checks it died by want_sig, the
 * store holds "boom" quarantined for the policy's 120 s, and a fresh worker skips it. */
static void crash_is_contained(const char *kind, int want_sig)
{
    fixture f;
    setup(&f);
    char json[1024];
    bundle_json(json, sizeof json, kind);

    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0)
        _exit(child_request(&f, json));
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == want_sig,
                  "%s: child status 0x%x, expected death by signal %d", kind, status, want_sig);

    /* the fresh worker: the store knows, the plugin is skipped and the others run */
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&f.cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_plugin_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, boom_stats, &st), 3);
    ck_assert_msg(st.quarantined == 1, "%s: not quarantined", kind);
    ck_assert_uint_eq(st.quarantines, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ck_assert(st.quarantined_until > (double)now.tv_sec + 100 &&
              st.quarantined_until < (double)now.tv_sec + 130);
    ran r = {0, 0, 0};
    dc_engine_on_run(e, on_run, &r);
    dc_sim_free(tu_request(e, "a.com", "/")); /* would crash this process if it ran */
    ck_assert_int_eq(r.boom, 0);
    ck_assert_int_eq(r.fine, 1);
    ck_assert_int_eq(r.after, 1);
    dc_engine_free(e);
    teardown(&f);
}

START_TEST(segv_is_contained) { crash_is_contained("segv", SIGSEGV); }
END_TEST
START_TEST(c_stack_overflow_is_contained) { crash_is_contained("stack", SIGSEGV); }
END_TEST
START_TEST(abort_is_contained) { crash_is_contained("abort", SIGABRT); }
END_TEST
START_TEST(fpe_is_contained) { crash_is_contained("fpe", SIGFPE); }
END_TEST
START_TEST(bus_is_contained) { crash_is_contained("bus", SIGBUS); }
END_TEST
START_TEST(ill_is_contained) { crash_is_contained("ill", SIGILL); }
END_TEST

/* A worker serving one request, the guard installed or not; returns the wait status. */
static int worker_status(fixture *f, const char *json, int with_guard)
{
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        if (!with_guard) {
            dc_engine *e;
            if (dc_engine_new(&f->cfg, &e, NULL, 0) != DC_OK)
                _exit(4);
            dc_bundle *b = tu_bundle(json);
            dc_engine_set_bundle(e, b);
            dc_sim_free(tu_request(e, "a.com", "/"));
            _exit(5);
        }
        _exit(child_request(f, json));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    return status;
}

/* A fatal signal another process sends during a plugin call is not the plugin's crash: the
 * process ends by it exactly as without the guard (the default action; under ASan, ASan's
 * report), and nothing is marked. */
START_TEST(a_signal_from_another_process_is_not_blamed)
{
    /* under valgrind, a fatal signal that another process sends during a blocking call is not
     * always delivered as the kernel does (the guarded worker slept on, unkilled, in two runs
     * of three): checked on a real CPU only */
    if (ON_VALGRIND())
        return;
    fixture f;
    setup(&f);
    char json[1024];
    bundle_json(json, sizeof json, "killed");
    int without = worker_status(&f, json, 0);
    int with = worker_status(&f, json, 1);
    ck_assert_msg(!(WIFEXITED(without) && WEXITSTATUS(without) >= 3 && WEXITSTATUS(without) <= 5),
                  "the control child was not killed: 0x%x", without);
    ck_assert_msg(with == without, "with the guard 0x%x, without 0x%x", with, without);
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&f.cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_plugin_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, boom_stats, &st), 3);
    ck_assert_int_eq(st.quarantined, 0);
    ck_assert_uint_eq(st.quarantines, 0);
    dc_engine_free(e);
    teardown(&f);
}
END_TEST

/* Without a store (the command), the crash is reported and the process still dies by it. */
static void report_and_exit(void *ud, const dc_crash_info *i)
{
    (void)ud;
    /* the exit status proves the reporter was told the right call */
    if (i->signo == SIGSEGV && strcmp(i->plugin, "boom") == 0 && strcmp(i->domain, "*") == 0 &&
        i->phase == DC_PHASE_ACCESS && !i->quarantined && i->ms >= 0)
        _exit(42);
    _exit(43);
}

START_TEST(reporter_is_told_which_call)
{
    fixture f;
    setup(&f);
    f.cfg.store = NULL;
    char json[1024];
    bundle_json(json, sizeof json, "segv");
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        dc_crash_set_reporter(report_and_exit, NULL);
        _exit(child_request(&f, json));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42, "child status 0x%x", status);
    teardown(&f);
}
END_TEST

/* Outside a plugin call: a handler installed before the guard still gets the signal. */
static void previous_handler(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    _exit(sig == SIGSEGV ? 61 : 62);
}

START_TEST(outside_a_call_the_previous_handler_runs)
{
    fixture f;
    setup(&f);
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = previous_handler;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        if (dc_crash_guard_install(NULL, 0) != DC_OK)
            _exit(3);
        dc_engine *e; /* plugins ran and ended: nothing is armed any more */
        if (dc_engine_new(&f.cfg, &e, NULL, 0) != DC_OK)
            _exit(4);
        dc_bundle *b = tu_bundle(bundle_json((char[1024]){0}, 1024, "none"));
        dc_engine_set_bundle(e, b);
        dc_sim_free(tu_request(e, "a.com", "/"));
        raise(SIGSEGV);
        _exit(5);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 61, "child status 0x%x", status);
    teardown(&f);
}
END_TEST

/* A worker that serves a request, then crashes in the host's own code (not in a plugin call);
 * with_guard: the guard installed first. Returns the wait status. */
static int host_crash_status(fixture *f, const char *json, int with_guard)
{
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        if (with_guard && dc_crash_guard_install(NULL, 0) != DC_OK)
            _exit(3);
        dc_engine *e;
        if (dc_engine_new(&f->cfg, &e, NULL, 0) != DC_OK)
            _exit(4);
        dc_bundle *b = tu_bundle(json);
        dc_engine_set_bundle(e, b);
        dc_sim_free(tu_request(e, "a.com", "/"));
        volatile uintptr_t addr = 8;
        *(volatile int *)addr = 1; /* the host's own crash */
        _exit(5);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    return status;
}

/* Outside a plugin call with no handler of ours before: the process ends exactly as it does
 * without the guard (the default action; under ASan, ASan's own report), and nothing is
 * marked. */
START_TEST(outside_a_call_the_process_ends_as_before_and_no_mark)
{
    fixture f;
    setup(&f);
    char json[1024];
    bundle_json(json, sizeof json, "none"); /* boom only raises a Lua error */
    int without = host_crash_status(&f, json, 0);
    int with = host_crash_status(&f, json, 1);
    ck_assert_msg(!(WIFEXITED(without) && WEXITSTATUS(without) >= 3 && WEXITSTATUS(without) <= 5),
                  "the control child did not crash: 0x%x", without);
    ck_assert_msg(with == without, "with the guard 0x%x, without 0x%x", with, without);
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&f.cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_plugin_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, boom_stats, &st), 3);
    ck_assert_int_eq(st.quarantined, 0);
    ck_assert_uint_eq(st.quarantines, 0);
    dc_engine_free(e);
    teardown(&f);
}
END_TEST

/* The async-signal-safe line builder escapes what a hostile name could forge lines with. */
START_TEST(sigline_escapes_and_formats)
{
    dc_sigline l = {.len = 0};
    dc_sigline_quoted(&l, "a\"b\\c\nd\x01");
    dc_sigline_str(&l, " ");
    dc_sigline_ms(&l, 12.3456);
    dc_sigline_str(&l, " ");
    dc_sigline_uint(&l, 0);
    dc_sigline_str(&l, " ");
    dc_sigline_ms(&l, -1);
    ck_assert_int_eq((int)l.len, (int)strlen("\"a\\\"b\\\\c\\nd\\x01\" 12.346 0 0.000"));
    ck_assert(memcmp(l.buf, "\"a\\\"b\\\\c\\nd\\x01\" 12.346 0 0.000", l.len) == 0);
    dc_sigline big = {.len = 0};
    for (int i = 0; i < 1000; i++)
        dc_sigline_str(&big, "0123456789");
    ck_assert_uint_eq(big.len, sizeof big.buf); /* bounded, never past the buffer */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, segv_is_contained);
    tcase_add_test(tc, c_stack_overflow_is_contained);
    tcase_add_test(tc, abort_is_contained);
    tcase_add_test(tc, fpe_is_contained);
    tcase_add_test(tc, bus_is_contained);
    tcase_add_test(tc, ill_is_contained);
    tcase_add_test(tc, a_signal_from_another_process_is_not_blamed);
    tcase_add_test(tc, reporter_is_told_which_call);
    tcase_add_test(tc, outside_a_call_the_previous_handler_runs);
    tcase_add_test(tc, outside_a_call_the_process_ends_as_before_and_no_mark);
    tcase_add_test(tc, sigline_escapes_and_formats);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
