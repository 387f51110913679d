/* test_sleep.c - ngx.sleep: the call yields to its host (DC_ACTION_SLEEP) and is taken up
 * where it stopped; the simulated request really waits; the quotas carry over the sleep
 * (instructions left, time left, the time asleep not counted); the policy's bounds per call
 * and per request; the phases and the code that may sleep; many requests asleep in one
 * plugin's state at once, each with its own coroutine and ngx.ctx; a state dropped or evicted
 * while calls sleep in it; a sleeping call given up by its request; and a plugin that tries
 * to resume another request's handler.
 */
#include <string.h>
#include <time.h>

#include "testutil.h"

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* ---- driving requests by hand: an engine, requests begun and run phase by phase ---- */

typedef struct hand {
    dc_engine *e;
    dc_policy *policy;
    tu_trace trace;
} hand;

static void hand_new(hand *h, const char *policy_json, const char *const *pc)
{
    char err[256] = "";
    memset(h, 0, sizeof *h);
    if (policy_json)
        ck_assert_msg(dc_policy_load(policy_json, strlen(policy_json), "test", &h->policy, err,
                                     sizeof err) == DC_OK, "policy: %s", err);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = h->policy;
    ck_assert_msg(dc_engine_new(&cfg, &h->e, err, sizeof err) == DC_OK, "engine: %s", err);
    dc_bundle *b = tu_bundle_plugins(pc, NULL);
    dc_engine_set_bundle(h->e, b);
    dc_bundle_unref(b);
    dc_engine_on_run(h->e, tu_trace_record, &h->trace);
}

static void hand_free(hand *h)
{
    dc_engine_free(h->e);
    dc_policy_free(h->policy);
}

typedef struct req {
    dc_sim *sim;
    dc_request *r;
} req;

static void req_begin(req *q, hand *h, const char *uri)
{
    dc_sim_opts so = {.host = "test.test", .uri = uri};
    q->sim = dc_sim_new(&so);
    ck_assert_ptr_nonnull(q->sim);
    ck_assert_int_eq(dc_request_begin(h->e, q->sim, "test.test", 9, &q->r), DC_OK);
}

static void req_end(req *q)
{
    dc_request_end(q->r);
    dc_sim_free(q->sim);
}

static dc_action run(req *q, dc_phase phase)
{
    int st;
    return dc_request_run(q->r, phase, &st);
}

/* ---- the call yields, and is taken up where it stopped ---- */

START_TEST(a_sleep_yields_to_the_host_and_goes_on)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){
        "access", "ngx.header['X-A'] = 'before' ngx.sleep(0.25) ngx.header['X-B'] = 'after'",
        "access", "ngx.header['X-C'] = 'next'", NULL});
    req q;
    req_begin(&q, &h, "/");
    ck_assert_int_eq(run(&q, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_uint_eq(dc_request_sleep_ms(q.r), 250);
    ck_assert_str_eq(dc_sim_header(q.sim, "X-A"), "before");
    ck_assert_ptr_null(dc_sim_header(q.sim, "X-B"));
    ck_assert_ptr_null(dc_sim_header(q.sim, "X-C")); /* the next plugin waits its turn */
    ck_assert_str_eq(h.trace.text, "");              /* nothing recorded yet */
    ck_assert_int_eq(run(&q, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_uint_eq(dc_request_sleep_ms(q.r), 0);
    ck_assert_str_eq(dc_sim_header(q.sim, "X-B"), "after");
    ck_assert_str_eq(dc_sim_header(q.sim, "X-C"), "next");
    ck_assert_str_eq(h.trace.text, "p1:ok p2:ok");
    req_end(&q);
    hand_free(&h);
}
END_TEST

/* The command really waits (so the time asleep is at least what was asked), and the output
 * around the sleep comes in order. */
START_TEST(the_simulated_request_really_waits)
{
    tu_run r;
    double t0 = now_ms();
    tu_run_plugins(&r, &(tu_run_opts){0}, (const char *const[]){"content",
        "ngx.say('a') ngx.sleep(0.2) ngx.say('b') ngx.sleep(0) ngx.say('c')", NULL});
    double took = now_ms() - t0;
    ck_assert_str_eq(tu_run_body(&r), "a\nb\nc\n");
    ck_assert_int_eq(r.result, DC_RESULT_OK);
    ck_assert_msg(took >= 200.0, "the request took %.1f ms, under the 200 ms asleep", took);
    dc_sim_free(r.sim);
}
END_TEST

/* ngx.ctx, locals and the plugin's globals are all there after the sleep, and ngx.exit after
 * it ends the request as it would before. */
START_TEST(the_call_keeps_its_state_over_the_sleep)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){0}, (const char *const[]){
        "rewrite", "local x = 41 ngx.ctx.v = 'kept' g = 1 ngx.sleep(0.01)\n"
                   "ngx.ctx.x = x + g",
        "access", "ngx.sleep(0.01) ngx.say(ngx.ctx.v, ' ', ngx.ctx.x) ngx.exit(200)",
        "content", "ngx.say('not reached')", NULL});
    ck_assert_str_eq(tu_run_body(&r), "kept 42\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- quotas ---- */

/* The time asleep is not the plugin's: 800 ms of sleep under a 200 ms time quota is fine
 * (the plugin itself runs for microseconds: the quota has room for a busy machine). */
START_TEST(time_asleep_is_not_quota_time)
{
    tu_run r;
    dc_quota q = {.instructions = 0, .time_ms = 200, .memory_kb = 4096};
    tu_run_plugins(&r, &(tu_run_opts){.quota = &q}, (const char *const[]){"content",
        "ngx.sleep(0.4) ngx.sleep(0.4) ngx.say('awake')", NULL});
    ck_assert_int_eq(r.result, DC_RESULT_OK);
    ck_assert_str_eq(tu_run_body(&r), "awake\n");
    dc_sim_free(r.sim);
}
END_TEST

/* After the sleep the quotas still hold: a loop after it trips on time (no instruction quota)
 * or on instructions. */
START_TEST(the_quotas_hold_after_a_sleep)
{
    tu_run r;
    dc_quota t = {.instructions = 0, .time_ms = 20, .memory_kb = 4096};
    tu_run_plugins(&r, &(tu_run_opts){.quota = &t}, (const char *const[]){"content",
        "ngx.sleep(0) while true do end", "content", "ngx.say('next')", NULL});
    HAS(r.trace, "content:p1:quota:time");
    ck_assert_str_eq(tu_run_body(&r), "next\n");
    dc_sim_free(r.sim);

    dc_quota i = {.instructions = 100000, .time_ms = 0, .memory_kb = 4096};
    tu_run_plugins(&r, &(tu_run_opts){.quota = &i}, (const char *const[]){"content",
        "ngx.sleep(0) while true do end", NULL});
    HAS(r.trace, "content:p1:quota:instructions");
    dc_sim_free(r.sim);
}
END_TEST

/* The instructions left carry over from piece to piece: sleeping often does not renew them. */
START_TEST(the_instructions_left_carry_over)
{
    tu_run r;
    dc_quota i = {.instructions = 100000, .time_ms = 0, .memory_kb = 4096};
    tu_run_plugins(&r, &(tu_run_opts){.quota = &i}, (const char *const[]){"content",
        "for n = 1, 1000000 do ngx.sleep(0) end ngx.say('done')", NULL});
    HAS(r.trace, "content:p1:quota:instructions");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- the policy's bounds ---- */

static const char *bounded =
    "{\"bounds\":{\"sleep_ms_per_call\":100,\"sleep_ms_per_request\":150}}";

START_TEST(the_policy_bounds_each_sleep)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){.policy_json = bounded}, (const char *const[]){
        "content", "ngx.sleep(0.2)", NULL});
    ck_assert_int_eq(r.result, DC_RESULT_ERROR);
    HAS(r.msg, "ngx.sleep: 0.2 s is over the policy's bound of 0.1 s per call");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(the_policy_bounds_the_sleeps_of_a_request)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){.policy_json = bounded}, (const char *const[]){
        "rewrite", "ngx.sleep(0.1)", "access", "ngx.sleep(0.06)",
        "content", "ngx.sleep(0.05) ngx.say('last fits')", NULL});
    HAS(r.trace, "rewrite:p1:ok");
    HAS(r.trace, "access:p2:error:");
    HAS(r.trace, "over what this request may still sleep (0.05 s of the policy's 150 ms per "
                 "request)");
    HAS(r.trace, "content:p3:ok");
    ck_assert_str_eq(tu_run_body(&r), "last fits\n");
    dc_sim_free(r.sim);
}
END_TEST

/* strict.json allows no sleep; 0 is only a yield, which it still allows. */
START_TEST(a_bound_of_zero_allows_only_a_yield)
{
    tu_run r;
    const char *none = "{\"bounds\":{\"sleep_ms_per_call\":0,\"sleep_ms_per_request\":0}}";
    tu_run_plugins(&r, &(tu_run_opts){.policy_json = none}, (const char *const[]){
        "content", "ngx.sleep(0) ngx.say('yielded') ngx.sleep(0.001)", NULL});
    ck_assert_int_eq(r.result, DC_RESULT_ERROR);
    HAS(r.msg, "0.001 s is over the policy's bound of 0 s per call");
    ck_assert_str_eq(tu_run_body(&r), "yielded\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- where it may be called, and with what ---- */

START_TEST(only_rewrite_access_and_content_may_sleep)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){0}, (const char *const[]){
        "header_filter", "ngx.sleep(0)", "body_filter", "ngx.sleep(0)", "log", "ngx.sleep(0)",
        NULL});
    HAS(r.trace, "header_filter:p1:error:");
    HAS(r.trace, "API disabled in the context of header_filter_by_lua* (ngx.sleep)");
    HAS(r.trace, "API disabled in the context of body_filter_by_lua* (ngx.sleep)");
    HAS(r.trace, "API disabled in the context of log_by_lua* (ngx.sleep)");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    static const char *const cases[][2] = {
        {"ngx.sleep()", "attempt to pass 0 arguments, but accepted 1"},
        {"ngx.sleep(1, 2)", "attempt to pass 2 arguments, but accepted 1"},
        {"ngx.sleep('soon')", "number expected, got string"},
        {"ngx.sleep({})", "number expected, got table"},
        {"ngx.sleep(-1)", "ngx.sleep: invalid duration -1"},
        {"ngx.sleep(0/0)", "ngx.sleep: invalid duration"},
        {"ngx.sleep(math.huge)", "is over the policy's bound of 5 s per call"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run r;
        tu_run_plugins(&r, &(tu_run_opts){0}, (const char *const[]){"content", cases[i][0], NULL});
        ck_assert_msg(r.result == DC_RESULT_ERROR, "%s: result %d", cases[i][0], (int)r.result);
        HAS(r.msg, cases[i][1]);
        dc_sim_free(r.sim);
    }
}
END_TEST

/* Under pcall the sleep works as at the top; inside a coroutine the plugin made it is
 * refused (the yield would go to the plugin's own resume). */
START_TEST(pcall_may_sleep_a_plugin_coroutine_may_not)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){0}, (const char *const[]){"content",
        "local ok = pcall(ngx.sleep, 0.01) ngx.say('pcall ', tostring(ok))\n"
        "local co = coroutine.create(function() ngx.sleep(0.01) end)\n"
        "local ok2, err = coroutine.resume(co) ngx.say(tostring(ok2), ' ', err)", NULL});
    ck_assert_str_eq(tu_run_body(&r),
                     "pcall true\nfalse p1:2: ngx.sleep: only the plugin's own code can sleep, "
                     "not a "
                     "coroutine it made\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- many requests asleep in one state ---- */

/* Two requests asleep in the same plugin's state, taken up in the other order: each has its
 * coroutine, its ngx.ctx and its locals. */
START_TEST(requests_asleep_in_one_state_keep_apart)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){"access",
        "local me = ngx.var.arg_id ngx.ctx.me = me local co = coroutine.running()\n"
        "ngx.sleep(0.01)\n"
        "ngx.header['X-Me'] = me .. '/' .. ngx.ctx.me .. '/' ..\n"
        "  tostring(co == coroutine.running())", NULL});
    req a, b;
    req_begin(&a, &h, "/?id=a");
    req_begin(&b, &h, "/?id=b");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_uint_eq(dc_engine_live_states(h.e), 1);
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(a.sim, "X-Me"), "a/a/true");
    ck_assert_str_eq(dc_sim_header(b.sim, "X-Me"), "b/b/true");
    /* a third request after them runs as usual */
    req c;
    req_begin(&c, &h, "/?id=c");
    ck_assert_int_eq(run(&c, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_int_eq(run(&c, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(c.sim, "X-Me"), "c/c/true");
    req_end(&a);
    req_end(&b);
    req_end(&c);
    hand_free(&h);
}
END_TEST

/* A trip of another call drops the state while a call sleeps in it: the sleeper still ends
 * well in it, and the next request gets a fresh state. */
START_TEST(a_state_dropped_while_a_call_sleeps_in_it)
{
    hand h;
    hand_new(&h, "{\"quota\":{\"instructions\":100000}}", (const char *const[]){"access",
        "if ngx.var.arg_loop then while true do end end\n"
        "n = (n or 0) + 1 ngx.sleep(0.01) ngx.header['X-N'] = n", NULL});
    req a, b, c;
    req_begin(&a, &h, "/");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    req_begin(&b, &h, "/?loop=1");
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    HAS(h.trace.text, "p1:quota:instructions");
    ck_assert_uint_eq(dc_engine_live_states(h.e), 0); /* out of the pool, alive for a */
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(a.sim, "X-N"), "1");
    req_begin(&c, &h, "/");
    ck_assert_int_eq(run(&c, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_int_eq(run(&c, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(c.sim, "X-N"), "1"); /* a fresh state */
    req_end(&a);
    req_end(&b);
    req_end(&c);
    hand_free(&h);
}
END_TEST

/* With room for one state, a second plugin evicts the first while a call sleeps in it. */
START_TEST(a_state_evicted_while_a_call_sleeps_in_it)
{
    hand h;
    hand_new(&h, "{\"states\":{\"max_per_worker\":1}}", (const char *const[]){
        "access", "if ngx.var.arg_first then ngx.sleep(0.01) ngx.header['X-1'] = 'woke' end",
        "content", "ngx.say('two')", NULL});
    req a, b;
    req_begin(&a, &h, "/?first=1");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    req_begin(&b, &h, "/");
    ck_assert_int_eq(run(&b, DC_PHASE_CONTENT), DC_ACTION_CONTINUE);
    ck_assert_uint_eq(dc_engine_live_states(h.e), 1);
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(a.sim, "X-1"), "woke");
    req_end(&a);
    req_end(&b);
    hand_free(&h);
}
END_TEST

/* A request that ends (the client went away) while its call sleeps gives the call up: no
 * record of it, nothing kept, and the state serves the next request. Another phase run
 * without taking the sleeper up gives it up too. */
START_TEST(a_sleeping_call_given_up)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){"access",
        "ngx.ctx.big = string.rep('x', 100000) ngx.sleep(1) ngx.header['X-W'] = 'woke'",
        "log", "ngx.log(ngx.INFO, 'log ran')", NULL});
    for (int i = 0; i < 50; i++) {
        req a;
        req_begin(&a, &h, "/");
        ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
        if (i % 2)
            ck_assert_int_eq(run(&a, DC_PHASE_LOG), DC_ACTION_CONTINUE);
        req_end(&a);
    }
    ck_assert_int_eq((int)strlen(h.trace.text), (int)strlen("p2:ok ") * 25 - 1);
    req b;
    req_begin(&b, &h, "/");
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(b.sim, "X-W"), "woke");
    req_end(&b);
    hand_free(&h);
}
END_TEST

/* The filters may run while a content call sleeps (its output so far was sent): the sleeper
 * stays, and is taken up after them. */
START_TEST(the_filters_may_run_while_content_sleeps)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){
        "content", "ngx.sleep(0.01) ngx.header['X-Late'] = 'content woke'",
        "header_filter", "ngx.header['X-H'] = 'filtered'", NULL});
    req a;
    req_begin(&a, &h, "/");
    ck_assert_int_eq(run(&a, DC_PHASE_CONTENT), DC_ACTION_SLEEP);
    ck_assert_int_eq(run(&a, DC_PHASE_HEADER_FILTER), DC_ACTION_CONTINUE);
    ck_assert_str_eq(h.trace.text, "p2:ok");
    ck_assert_uint_eq(dc_request_sleep_ms(a.r), 10);
    ck_assert_int_eq(run(&a, DC_PHASE_CONTENT), DC_ACTION_CONTINUE);
    ck_assert_str_eq(h.trace.text, "p2:ok p1:ok");
    ck_assert_str_eq(dc_sim_header(a.sim, "X-Late"), "content woke");
    req_end(&a);
    hand_free(&h);
}
END_TEST

/* A new bundle comes into force while a call sleeps: the sleeper ends in the code it began
 * with (its request pinned that bundle), the next request runs the new code. */
START_TEST(a_new_bundle_while_a_call_sleeps)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){"access",
        "ngx.sleep(0.01) ngx.header['X-V'] = 'old'", NULL});
    req a, b;
    req_begin(&a, &h, "/");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    dc_bundle *nb = tu_bundle_plugins((const char *const[]){"access",
        "ngx.header['X-V'] = 'new'", NULL}, NULL);
    dc_engine_set_bundle(h.e, nb);
    dc_bundle_unref(nb);
    req_begin(&b, &h, "/");
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(b.sim, "X-V"), "new");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(a.sim, "X-V"), "old");
    req_end(&a);
    req_end(&b);
    hand_free(&h);
}
END_TEST

/* A plugin keeps a sleeping request's handler coroutine (coroutine.running() hands it out)
 * and tries to resume it from another request: refused, and the sleeper is unharmed. */
START_TEST(another_request_cannot_resume_a_sleeper)
{
    hand h;
    hand_new(&h, NULL, (const char *const[]){"access",
        "if ngx.var.arg_thief then\n"
        "  local ok, err = coroutine.resume(kept)\n"
        "  ngx.header['X-Thief'] = tostring(ok) .. ' ' .. tostring(err)\n"
        "  return\n"
        "end\n"
        "kept = coroutine.running() ngx.sleep(0.01) ngx.header['X-W'] = 'woke'", NULL});
    req a, b;
    req_begin(&a, &h, "/");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_SLEEP);
    req_begin(&b, &h, "/?thief=1");
    ck_assert_int_eq(run(&b, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(b.sim, "X-Thief"),
                     "false cannot resume a request handler's own coroutine");
    ck_assert_int_eq(run(&a, DC_PHASE_ACCESS), DC_ACTION_CONTINUE);
    ck_assert_str_eq(dc_sim_header(a.sim, "X-W"), "woke");
    req_end(&a);
    req_end(&b);
    hand_free(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sleep");
    TCase *tc = tcase_create("sleep");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_sleep_yields_to_the_host_and_goes_on);
    tcase_add_test(tc, the_simulated_request_really_waits);
    tcase_add_test(tc, the_call_keeps_its_state_over_the_sleep);
    tcase_add_test(tc, time_asleep_is_not_quota_time);
    tcase_add_test(tc, the_quotas_hold_after_a_sleep);
    tcase_add_test(tc, the_instructions_left_carry_over);
    tcase_add_test(tc, the_policy_bounds_each_sleep);
    tcase_add_test(tc, the_policy_bounds_the_sleeps_of_a_request);
    tcase_add_test(tc, a_bound_of_zero_allows_only_a_yield);
    tcase_add_test(tc, only_rewrite_access_and_content_may_sleep);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, pcall_may_sleep_a_plugin_coroutine_may_not);
    tcase_add_test(tc, requests_asleep_in_one_state_keep_apart);
    tcase_add_test(tc, a_state_dropped_while_a_call_sleeps_in_it);
    tcase_add_test(tc, a_state_evicted_while_a_call_sleeps_in_it);
    tcase_add_test(tc, a_sleeping_call_given_up);
    tcase_add_test(tc, another_request_cannot_resume_a_sleeper);
    tcase_add_test(tc, the_filters_may_run_while_content_sleeps);
    tcase_add_test(tc, a_new_bundle_while_a_call_sleeps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
