/* test_shared.c - engines that share a store: per-plugin metrics added by
 * every process into one set, quarantine decided by one process and honoured by the others
 * (a previous version standing in), and "until_loaded": "refuse" (503 until a bundle was ever
 * loaded). The store lives on an anonymous shared mapping; "processes" are fork()ed children or
 * several engines in one. (The watchdog's mark in the store: test_watchdog.c.)
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "testutil.h"

#define REGION (4u * 1024u * 1024u)

#define P(name, phase, code) \
    "{\"name\":\"" name "\",\"phase\":\"" phase "\",\"code\":\"" code "\"}"
#define BUNDLE(plugins) \
    "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\",\"plugins\":[" plugins "]}]}"

static void *region;
static dc_store *store;
static dc_policy *policy;

/* A fresh store for the test (attached again in each forked child: same address there). */
static dc_store *store_new(void)
{
    region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(region != MAP_FAILED);
    char err[256] = "";
    ck_assert_msg(dc_store_attach(region, REGION, 1, &store, err, sizeof err) == DC_OK, "%s", err);
    return store;
}

static void use_policy(const char *json)
{
    char err[256] = "";
    ck_assert_msg(dc_policy_load(json, strlen(json), "test", &policy, err, sizeof err) == DC_OK,
                  "policy: %s", err);
}

/* An engine on store s (may be NULL) with the test's policy, holding json's bundle (may be
 * NULL), tracing into t (may be NULL). */
static dc_engine *engine_on(dc_store *s, const char *json, tu_trace *t)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = policy;
    cfg.store = s;
    cfg.seed = 3;
    dc_engine *e = NULL;
    char err[256] = "";
    ck_assert_msg(dc_engine_new(&cfg, &e, err, sizeof err) == DC_OK, "engine: %s", err);
    if (t) {
        memset(t, 0, sizeof *t);
        dc_engine_on_run(e, tu_trace_record, t);
    }
    if (json) {
        dc_bundle *b = tu_bundle(json);
        dc_engine_set_bundle(e, b);
        dc_bundle_unref(b);
    }
    return e;
}

static int request(dc_engine *e)
{
    dc_sim *s = tu_request(e, "a.com", "/");
    int st = dc_sim_status(s);
    dc_sim_free(s);
    return st;
}

/* The stats of the plugin named name, by dc_engine_plugin_stats. */
typedef struct find_stats {
    const char *name;
    dc_plugin_stats st;
    int found;
} find_stats;

static void on_stats(void *ud, const dc_plugin_stats *st)
{
    find_stats *f = ud;
    if (strcmp(st->plugin, f->name) == 0) {
        f->st = *st;
        f->found++;
    }
}

static dc_plugin_stats stats_of(dc_engine *e, const char *name)
{
    find_stats f = {.name = name};
    dc_engine_plugin_stats(e, on_stats, &f);
    ck_assert_msg(f.found == 1, "plugin %s: found %d times in the stats", name, f.found);
    ck_assert_str_eq(f.st.plugin, name);
    return f.st;
}

static void teardown(void)
{
    dc_store_detach(store);
    store = NULL;
    if (region)
        munmap(region, REGION);
    region = NULL;
    dc_policy_free(policy);
    policy = NULL;
}

static void reap(pid_t pid, int want)
{
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == want,
                  "child: status 0x%x, wanted exit %d", status, want);
}

/* ---- metrics ---- */

#define MIXED BUNDLE(P("fine", "access", "local x = 1") "," P("bad", "access", "error('no')") "," \
                     P("spin", "log", "while true do end"))

START_TEST(metrics_of_two_processes_add_up)
{
    store_new();
    use_policy("{\"quota\":{\"instructions\":100000,\"time_ms\":200},"
               "\"quarantine\":{\"trips\":0}}");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            dc_store *s = NULL;
            if (dc_store_attach(region, REGION, 0, &s, NULL, 0) != DC_OK)
                _exit(3);
            dc_engine *e = engine_on(s, MIXED, NULL);
            for (int i = 0; i < 3 + k; i++)
                request(e);
            dc_engine_free(e);
            dc_store_detach(s);
            _exit(0);
        }
    }
    reap(kids[0], 0);
    reap(kids[1], 0);

    /* a third engine, which ran nothing itself, sees 3 + 4 calls of each plugin */
    dc_engine *e = engine_on(store, MIXED, NULL);
    dc_plugin_stats fine = stats_of(e, "fine"), bad = stats_of(e, "bad"),
                    spin = stats_of(e, "spin");
    ck_assert_str_eq(fine.domain, "*");
    ck_assert_int_eq(fine.phase, DC_PHASE_ACCESS);
    ck_assert_int_eq(spin.phase, DC_PHASE_LOG);
    ck_assert_uint_eq(fine.runs, 7);
    ck_assert_uint_eq(fine.errors, 0);
    ck_assert_uint_eq(bad.runs, 7);
    ck_assert_uint_eq(bad.errors, 7);
    ck_assert_uint_eq(spin.runs, 7);
    ck_assert_uint_eq(spin.quota_instructions, 7);
    ck_assert_uint_eq(spin.quota_time + spin.quota_memory + spin.errors, 0);
    ck_assert(spin.total_ms > 0 && spin.p99_ms > 0);
    ck_assert(spin.p99_ms * 7 >= spin.total_ms / 2); /* the bucket bounds the slowest calls */
    ck_assert_int_eq(fine.quarantined + bad.quarantined + spin.quarantined, 0);

    /* its own calls add to the same entries */
    request(e);
    ck_assert_uint_eq(stats_of(e, "fine").runs, 8);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, NULL, NULL), 3);
    dc_engine_free(e);
}
END_TEST

START_TEST(without_a_store_stats_are_empty)
{
    dc_engine *e = engine_on(NULL, MIXED, NULL);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, NULL, NULL), 3);
    request(e);
    dc_plugin_stats fine = stats_of(e, "fine");
    ck_assert_uint_eq(fine.runs, 0);
    ck_assert_int_eq(fine.quarantined, 0);
    dc_engine_free(e);
    /* no bundle: nothing to show */
    e = engine_on(NULL, NULL, NULL);
    ck_assert_uint_eq(dc_engine_plugin_stats(e, on_stats, NULL), 0);
    dc_engine_free(e);
}
END_TEST

/* ---- quarantine ---- */

#define RUNAWAY BUNDLE(P("runaway", "access", "while true do end") "," \
                       P("fine", "access", "ngx.header['x-fine'] = 'yes'"))

START_TEST(quarantine_by_one_engine_holds_in_another)
{
    store_new();
    use_policy("{\"quota\":{\"instructions\":100000,\"time_ms\":0},\"ceiling\":{\"time_ms\":0},"
               "\"quarantine\":{\"trips\":2,\"window_s\":60,\"duration_s\":300}}");
    tu_trace t1, t2;
    dc_engine *e1 = engine_on(store, RUNAWAY, &t1);
    dc_engine *e2 = engine_on(store, RUNAWAY, &t2);

    ck_assert_int_eq(request(e1), 200);
    ck_assert_str_eq(t1.text, "runaway:quota:instructions fine:ok");
    ck_assert_int_eq(stats_of(e2, "runaway").quarantined, 0);
    /* one trip in each engine: the second puts the plugin in quarantine for both */
    ck_assert_int_eq(request(e2), 200);
    ck_assert_str_eq(t2.text, "runaway:quota:instructions fine:ok");

    t1.text[0] = '\0';
    ck_assert_int_eq(request(e1), 200);
    ck_assert_str_eq(t1.text, "fine:ok");

    dc_plugin_stats st = stats_of(e1, "runaway");
    ck_assert_int_eq(st.quarantined, 1);
    ck_assert_uint_eq(st.quarantines, 1);
    ck_assert_uint_eq(st.runs, 2);
    ck_assert_uint_eq(st.quota_instructions, 2);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ck_assert(st.quarantined_until > (double)now.tv_sec + 290 &&
              st.quarantined_until < (double)now.tv_sec + 310);
    ck_assert_int_eq(stats_of(e1, "fine").quarantined, 0);
    dc_engine_free(e1);
    dc_engine_free(e2);

    /* an engine started later (a fresh worker) skips it too */
    tu_trace t3;
    dc_engine *e3 = engine_on(store, RUNAWAY, &t3);
    request(e3);
    ck_assert_str_eq(t3.text, "fine:ok");
    dc_engine_free(e3);
}
END_TEST

START_TEST(without_a_store_engines_count_their_own_trips)
{
    use_policy("{\"quota\":{\"instructions\":100000,\"time_ms\":0},\"ceiling\":{\"time_ms\":0},"
               "\"quarantine\":{\"trips\":2,\"window_s\":60,\"duration_s\":300}}");
    tu_trace t1, t2;
    dc_engine *e1 = engine_on(NULL, RUNAWAY, &t1);
    dc_engine *e2 = engine_on(NULL, RUNAWAY, &t2);
    request(e1);
    request(e2);
    t1.text[0] = t2.text[0] = '\0';
    request(e1);
    ck_assert_str_eq(t1.text, "runaway:quota:instructions fine:ok"); /* only its 2nd trip */
    t1.text[0] = '\0';
    request(e1);
    ck_assert_str_eq(t1.text, "fine:ok");
    ck_assert_int_eq(stats_of(e1, "runaway").quarantined, 1);
    ck_assert_int_eq(stats_of(e2, "runaway").quarantined, 0);
    dc_engine_free(e1);
    dc_engine_free(e2);
}
END_TEST

/* A version that ran well in one process stands in, in another, for its quarantined
 * successor: "ran well" and "quarantined" both come from the store. */
START_TEST(previous_version_stands_in_across_processes)
{
    store_new();
    use_policy("{\"quota\":{\"instructions\":100000,\"time_ms\":0},\"ceiling\":{\"time_ms\":0},"
               "\"quarantine\":{\"trips\":1,\"window_s\":60,\"duration_s\":300}}");
    const char *v1 = BUNDLE(P("p", "access", "ngx.header['x-v'] = '1'"));
    const char *v2 = BUNDLE(P("p", "access", "while true do end"));
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        dc_store *s = NULL;
        if (dc_store_attach(region, REGION, 0, &s, NULL, 0) != DC_OK)
            _exit(3);
        dc_engine *e = engine_on(s, v1, NULL);
        int st = request(e);
        dc_engine_free(e);
        dc_store_detach(s);
        _exit(st == 200 ? 0 : 4);
    }
    reap(kid, 0);

    /* this engine never ran v1 itself */
    tu_trace t;
    dc_engine *e = engine_on(store, v1, &t);
    dc_bundle *b2 = tu_bundle(v2);
    dc_engine_set_bundle(e, b2);
    dc_bundle_unref(b2);
    request(e);
    ck_assert_str_eq(t.text, "p:quota:instructions");
    t.text[0] = '\0';
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "p:ok");
    ck_assert_str_eq(dc_sim_header(s, "x-v"), "1");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

/* ---- until_loaded ---- */

START_TEST(until_loaded_refuse_answers_503_until_a_bundle)
{
    use_policy("{\"until_loaded\":\"refuse\"}");
    dc_events *ev = NULL;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = policy;
    cfg.events = ev;
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);

    ck_assert_int_eq(request(e), 503);
    ck_assert_uint_ge(dc_events_count(ev, DC_EV_RT_PLUGINS_NOT_LOADED), 1);
    /* the phases one by one: rewrite, access and content refuse; the others pass */
    static const struct {
        dc_phase phase;
        dc_action act;
        int status;
    } want[] = {{DC_PHASE_REWRITE, DC_ACTION_EXIT, 503},
                {DC_PHASE_ACCESS, DC_ACTION_EXIT, 503},
                {DC_PHASE_CONTENT, DC_ACTION_EXIT, 503},
                {DC_PHASE_HEADER_FILTER, DC_ACTION_CONTINUE, 0},
                {DC_PHASE_LOG, DC_ACTION_CONTINUE, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        dc_request *r = NULL;
        ck_assert_int_eq(dc_request_begin(e, NULL, "a.com", 5, &r), DC_OK);
        int st = -1;
        ck_assert_int_eq(dc_request_run(r, want[i].phase, &st), want[i].act);
        ck_assert_int_eq(st, want[i].status);
        dc_request_end(r);
    }

    dc_bundle *b = tu_bundle(BUNDLE(P("hello", "content", "ngx.say('hi')")));
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(dc_sim_body(s, NULL), "hi\n");
    dc_sim_free(s);
    /* unloaded after a bundle was in force: requests pass without plugins */
    dc_engine_set_bundle(e, NULL);
    ck_assert_int_eq(request(e), 200);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

START_TEST(until_loaded_pass_by_default)
{
    dc_engine *e = engine_on(NULL, NULL, NULL);
    ck_assert_int_eq(request(e), 200);
    dc_engine_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shared");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, metrics_of_two_processes_add_up);
    tcase_add_test(tc, without_a_store_stats_are_empty);
    tcase_add_test(tc, quarantine_by_one_engine_holds_in_another);
    tcase_add_test(tc, without_a_store_engines_count_their_own_trips);
    tcase_add_test(tc, previous_version_stands_in_across_processes);
    tcase_add_test(tc, until_loaded_refuse_answers_503_until_a_bundle);
    tcase_add_test(tc, until_loaded_pass_by_default);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
