/* test_watchdog.c - the last line of defence: a plugin stuck inside a C function,
 * where the quota hook never fires, makes the watchdog report it to the host and end the
 * process with DC_WATCHDOG_EXIT; a plugin that merely loops is stopped by its quota and the
 * watchdog stays quiet. With a shared store, the plugin is marked quarantined there before the
 * end, so that a fresh process skips it. The blocking C function exists only in this test.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "testutil.h"

/* block_in_c(): sleeps in C for ~10 s, out of the VM's reach. */
static int block_in_c(lua_State *L)
{
    struct timespec ts = {10, 0};
    nanosleep(&ts, NULL);
    return 0;
}

static void add_blocker(lua_State *L, int env)
{
    lua_pushcfunction(L, block_in_c);
    lua_setfield(L, env, "block_in_c");
}

/* Ends the process with 87 when the report names the stuck plugin, so the exit code proves the
 * host was told which plugin it was. */
static void on_watchdog(void *ud, const dc_watchdog_info *i)
{
    (void)ud;
    if (i->plugin && strcmp(i->plugin, "stuck") == 0 && strcmp(i->domain, "*") == 0 &&
        i->overdue_ms > 200 && i->plugin_key != 0)
        _exit(87);
}

/* compile_first: every bundle here is compiled before dc_engine_new starts the watchdog
 * thread. Compiling forks the confined helper, and under AddressSanitizer (GCC 12's runtime has
 * no fork handlers for its allocator) a fork while a thread just created still sets itself up
 * can leave the child waiting on an allocator lock forever: seen under load, a test timing out
 * in the helper's first realloc. The product's nginx workers fork their helpers from the
 * compiler spawner, started before any thread. */
static dc_engine *engine(dc_watchdog_cb cb)
{
    dc_env_test_hook = add_blocker;
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.watchdog_grace_ms = 200;
    cfg.watchdog_cb = cb;
    /* compiled (a fork) before the engine starts its watchdog thread: see compile_first */
    dc_bundle *b = tu_bundle("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                             "\"plugins\":[{\"name\":\"stuck\",\"phase\":\"access\","
                             "\"quota\":{\"time_ms\":20},\"code\":\"block_in_c()\"},"
                             "{\"name\":\"spin\",\"phase\":\"log\",\"quota\":{\"time_ms\":20},"
                             "\"code\":\"while true do end\"}]}]}");
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    return e;
}

START_TEST(stuck_in_c_ends_the_process)
{
    dc_engine *e = engine(NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_abort_msg("the request returned: the watchdog did not fire");
}
END_TEST

START_TEST(host_is_told_which_plugin)
{
    dc_engine *e = engine(on_watchdog);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_abort_msg("the request returned: the watchdog did not fire");
}
END_TEST

/* The grace is generous: the watchdog's deadline counts from before the plugin's state is
 * (re)built, so on a loaded machine a short grace could be spent by the scheduler alone (a
 * 1 s grace was once spent so, under the sanitizers beside another build). A loop
 * the quota failed to stop would still run past it, and the watchdog would end the test. */
#define LOOP_GRACE_MS 3000u

START_TEST(a_loop_stopped_by_its_quota_does_not_fire)
{
    dc_env_test_hook = NULL;
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.watchdog_grace_ms = LOOP_GRACE_MS;
    dc_bundle *b = tu_bundle("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                             "\"plugins\":[{\"name\":\"spin\",\"phase\":\"access\","
                             "\"quota\":{\"time_ms\":20},\"code\":\"while true do end\"}]}]}");
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    for (int i = 0; i < 5; i++)
        dc_sim_free(tu_request(e, "a.com", "/"));
    /* Past the grace with no call running, plus a few watchdog periods, measured on the clock
     * rather than trusted to one sleep (a sleep may end early, and the thread must get its turn
     * to misfire): a watchdog left armed by the last call would end the process here. */
    double until = dc_now_ms() + LOOP_GRACE_MS * dc_quota_time_scale() + 500;
    while (dc_now_ms() < until) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    dc_engine_free(e);
}
END_TEST

/* The stats of the plugin "stuck" (dc_engine_plugin_stats). */
static void stuck_stats(void *ud, const dc_plugin_stats *st)
{
    if (strcmp(st->plugin, "stuck") == 0)
        *(dc_plugin_stats *)ud = *st;
}

typedef struct ran {
    int stuck, fine;
} ran;

static void on_run(void *ud, const dc_run_info *i)
{
    ran *r = ud;
    if (strcmp(i->plugin, "stuck") == 0)
        r->stuck++;
    else if (strcmp(i->plugin, "fine") == 0 && i->result == DC_RESULT_OK)
        r->fine++;
}

START_TEST(the_store_knows_before_the_end)
{
    size_t size = 1u << 20;
    void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(region != MAP_FAILED);
    dc_store *store = NULL;
    ck_assert_int_eq(dc_store_attach(region, size, 1, &store, NULL, 0), DC_OK);
    const char *pj = "{\"quarantine\":{\"trips\":5,\"window_s\":60,\"duration_s\":120}}";
    dc_policy *policy = NULL;
    ck_assert_int_eq(dc_policy_load(pj, strlen(pj), "test", &policy, NULL, 0), DC_OK);
    const char *json = "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                       "\"plugins\":[{\"name\":\"stuck\",\"phase\":\"access\","
                       "\"quota\":{\"time_ms\":20},\"code\":\"block_in_c()\"},"
                       "{\"name\":\"fine\",\"phase\":\"access\",\"code\":\"local x = 1\"}]}]}";
    dc_env_test_hook = add_blocker;
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = policy;
    cfg.store = store;

    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) { /* a worker: its plugin gets stuck, the watchdog ends it */
        cfg.watchdog_grace_ms = 200;
        dc_bundle *b = tu_bundle(json);
        dc_engine *e;
        if (dc_engine_new(&cfg, &e, NULL, 0) != DC_OK)
            _exit(3);
        dc_engine_set_bundle(e, b);
        dc_sim_free(tu_request(e, "a.com", "/"));
        _exit(4); /* the request returned: the watchdog did not fire */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == DC_WATCHDOG_EXIT,
                  "child status 0x%x", status);

    /* the fresh worker: the plugin is quarantined in the store, skipped, and shown so */
    dc_bundle *b = tu_bundle(json);
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_plugin_stats st = {0};
    ck_assert_uint_eq(dc_engine_plugin_stats(e, stuck_stats, &st), 2);
    ck_assert_int_eq(st.quarantined, 1);
    ck_assert_uint_eq(st.quarantines, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ck_assert(st.quarantined_until > (double)now.tv_sec + 100 &&
              st.quarantined_until < (double)now.tv_sec + 130); /* the policy's 120 s */
    ran r = {0, 0};
    dc_engine_on_run(e, on_run, &r);
    dc_sim_free(tu_request(e, "a.com", "/")); /* would block 10 s if it ran */
    ck_assert_int_eq(r.stuck, 0);
    ck_assert_int_eq(r.fine, 1);
    dc_engine_free(e);
    dc_policy_free(policy);
    dc_store_detach(store);
    munmap(region, size);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("watchdog");
    tcase_set_timeout(tc, 30);
    tcase_add_exit_test(tc, stuck_in_c_ends_the_process, DC_WATCHDOG_EXIT);
    tcase_add_exit_test(tc, host_is_told_which_plugin, 87);
    tcase_add_test(tc, a_loop_stopped_by_its_quota_does_not_fire);
    tcase_add_test(tc, the_store_knows_before_the_end);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
