/* test_run.c - run semantics rule by rule, through the real sandbox and the simulated
 * request: matching, skip_domains, status, bundle order, skip, sampling, errors and quota trips
 * that stop one plugin only, ngx.exit, on_error=fail, generation pinning, the host match cache
 * and plugin states kept across swaps. Includes each case of the original's runner spec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "testutil.h"

/* Records "phase:plugin:result" for each plugin call, space separated. */
typedef struct trace {
    char text[4096];
    char last_msg[1200];
    void *last_hreq; /* the host's request of the last run reported */
} trace;

static void record(void *ud, const dc_run_info *i)
{
    trace *t = ud;
    size_t n = strlen(t->text);
    snprintf(t->text + n, sizeof t->text - n, "%s%s:%s:%s", n ? " " : "", dc_phase_name(i->phase),
             i->plugin, dc_result_name(i->result));
    snprintf(t->last_msg, sizeof t->last_msg, "%s", i->message ? i->message : "");
    t->last_hreq = i->hreq;
}

/* The policy of the running test, when it needs one (the engine does not own it). */
static dc_policy *test_policy;

static dc_engine *traced_p(const char *json, trace *t, dc_events *ev, const char *policy_json)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    if (policy_json) {
        char err[256] = "";
        ck_assert_msg(dc_policy_load(policy_json, strlen(policy_json), "test", &test_policy, err,
                                     sizeof err) == DC_OK, "policy: %s", err);
        cfg.policy = test_policy;
    }
    cfg.host = dc_sim_host();
    cfg.events = ev;
    cfg.seed = 7;
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    memset(t, 0, sizeof *t);
    dc_engine_on_run(e, record, t);
    if (json) {
        dc_bundle *b = tu_bundle(json);
        dc_engine_set_bundle(e, b);
        dc_bundle_unref(b);
    }
    return e;
}

static dc_engine *traced(const char *json, trace *t, dc_events *ev)
{
    return traced_p(json, t, ev, NULL);
}

/* Frees the engine and the test's policy. */
static void done(dc_engine *e)
{
    dc_engine_free(e);
    dc_policy_free(test_policy);
    test_policy = NULL;
}

#define P(name, phase, code) \
    "{\"name\":\"" name "\",\"phase\":\"" phase "\",\"code\":\"" code "\"}"
#define ENABLED "\"general\":{\"status\":\"enabled\",\"skip_domains\":[]}"

/* ---- the original runner spec's cases ---- */

START_TEST(wildcard_and_regex_domain_both_run_in_bundle_order)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":["
                          "{\"name\":\".*domain.com\",\"plugins\":[" P("re", "access", "") "]},"
                          "{\"name\":\"*\",\"plugins\":[" P("star", "access", "") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "www.domain.com", "/"));
    ck_assert_str_eq(t.text, "access:re:ok access:star:ok");
    t.text[0] = '\0';
    dc_sim_free(tu_request(e, "other.org", "/"));
    ck_assert_str_eq(t.text, "access:star:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(skipped_domain_runs_nothing)
{
    trace t;
    dc_engine *e = traced("{\"general\":{\"status\":\"enabled\",\"skip_domains\":[\"skip\\\\.me\"]},"
                          "\"domains\":[{\"name\":\"*\",\"plugins\":[" P("star", "access", "") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "api.skip.me", "/"));
    ck_assert_str_eq(t.text, "");
    dc_sim_free(tu_request(e, "api.keep.me", "/"));
    ck_assert_str_eq(t.text, "access:star:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(disabled_status_runs_nothing)
{
    trace t;
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine *e = traced("{\"general\":{\"status\":\"disabled\"},\"domains\":[{\"name\":\"*\","
                          "\"plugins\":[" P("star", "access", "ngx.exit(403)") "]}]}",
                          &t, ev);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(t.text, "");
    ck_assert_uint_gt(dc_events_count(ev, DC_EV_RT_PLUGINS_DISABLED), 0);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_STARTING), 0);
    dc_sim_free(s);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

START_TEST(unmatched_domain_runs_nothing)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"^api\\\\.example\\\\.com$\","
                          "\"plugins\":[" P("p", "access", "") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "www.example.com", "/"));
    ck_assert_str_eq(t.text, "");
    dc_sim_free(tu_request(e, "api.example.com", "/"));
    ck_assert_str_eq(t.text, "access:p:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(unmatched_phase_runs_nothing_in_other_phases)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("logger", "log", "") "]}]}",
                          &t, NULL);
    dc_request *r;
    dc_sim_opts o = {.host = "a.com"};
    dc_sim *s = dc_sim_new(&o);
    ck_assert_int_eq(dc_request_begin(e, s, "a.com", 5, &r), DC_OK);
    ck_assert_uint_eq(dc_request_plugin_count(r, DC_PHASE_ACCESS), 0);
    ck_assert_uint_eq(dc_request_plugin_count(r, DC_PHASE_LOG), 1);
    int st;
    ck_assert_int_eq(dc_request_run(r, DC_PHASE_ACCESS, &st), DC_ACTION_CONTINUE);
    ck_assert_str_eq(t.text, "");
    dc_request_run(r, DC_PHASE_LOG, &st);
    ck_assert_str_eq(t.text, "log:logger:ok");
    dc_request_end(r);
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(skipped_plugin_does_not_run)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          "{\"name\":\"off\",\"phase\":\"access\",\"code\":\"\",\"skip\":true},"
                          P("on", "access", "") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "access:on:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(failing_plugin_does_not_stop_the_others)
{
    trace t;
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("boom", "access", "error('kaboom')") ","
                          P("after", "access", "ngx.header['X-After'] = 'yes'") "]}]}",
                          &t, ev);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:boom:error access:after:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-After"), "yes");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_ERROR), 1);
    dc_sim_free(s);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

/* A host that asks for failures only (the nginx module, which logs them) hears of the
 * plugin that failed, and of the one that tripped its quota, not of the one that ran well;
 * asking for every call again brings that one back. */
START_TEST(run_callback_for_errors_only_skips_the_calls_that_went_well)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("boom", "access", "error('kaboom')") ","
                          "{\"name\":\"spin\",\"phase\":\"access\",\"code\":\"while true do end\","
                          "\"quota\":{\"instructions\":10000}},"
                          P("fine", "access", "local x = 1") "]}]}",
                          &t, NULL);
    dc_engine_on_run_errors(e, record, &t);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "access:boom:error access:spin:quota:instructions");
    t.text[0] = '\0';
    dc_engine_on_run(e, record, &t);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text,
                     "access:boom:error access:spin:quota:instructions access:fine:ok");
    dc_engine_free(e);
}
END_TEST

/* ---- the other rules ---- */

START_TEST(no_bundle_runs_nothing)
{
    trace t;
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine *e = traced(NULL, &t, ev);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_uint_gt(dc_events_count(ev, DC_EV_RT_PLUGINS_NOT_LOADED), 0);
    dc_sim_free(s);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

START_TEST(error_message_names_the_plugin_line)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("boom", "access", "local x = nil\\nreturn x.field") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_msg(strstr(t.last_msg, "boom:2:") != NULL, "message: %s", t.last_msg);
    dc_engine_free(e);
}
END_TEST

START_TEST(error_object_is_not_stringified_by_plugin_code)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("obj", "access",
                            "error(setmetatable({}, {__tostring = function() while true do end end}))")
                          "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "access:obj:error");
    ck_assert_str_eq(t.last_msg, "(error object is a table value)");
    dc_engine_free(e);
}
END_TEST

START_TEST(sampling_zero_never_one_always_half_sometimes)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          "{\"name\":\"never\",\"phase\":\"log\",\"code\":\"\",\"sampling\":0},"
                          "{\"name\":\"always\",\"phase\":\"log\",\"code\":\"\",\"sampling\":1},"
                          "{\"name\":\"half\",\"phase\":\"log\",\"code\":\"\",\"sampling\":0.5}]}]}",
                          &t, NULL);
    int always = 0, half = 0, never = 0;
    for (int i = 0; i < 400; i++) {
        t.text[0] = '\0';
        dc_sim_free(tu_request(e, "a.com", "/"));
        always += strstr(t.text, "always") != NULL;
        half += strstr(t.text, "half") != NULL;
        never += strstr(t.text, "never") != NULL;
    }
    ck_assert_int_eq(always, 400);
    ck_assert_int_eq(never, 0);
    ck_assert_msg(half > 120 && half < 280, "half ran %d of 400", half);
    dc_engine_free(e);
}
END_TEST

START_TEST(exit_in_rewrite_ends_the_request_and_filters_still_run)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("gone", "rewrite", "return ngx.exit(ngx.HTTP_GONE)") ","
                          P("acc", "access", "") ","
                          P("body", "content", "ngx.say('no')") ","
                          P("hf", "header_filter", "ngx.header['X-Hf'] = ngx.status") ","
                          P("lg", "log", "") "]}]}",
                          &t, NULL);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 410);
    ck_assert_str_eq(t.text, "rewrite:gone:ok header_filter:hf:ok log:lg:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-Hf"), "410");
    ck_assert_str_eq(dc_sim_header(s, "Content-Type"), "text/html");
    ck_assert_ptr_nonnull(strstr(dc_sim_body(s, NULL), "<title>410 Gone</title>"));
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(exit_ok_ends_the_phase_only)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("first", "access", "ngx.exit(ngx.OK)") ","
                          P("second", "access", "") ","
                          P("body", "content", "ngx.print('hi')") "]}]}",
                          &t, NULL);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:first:ok content:body:ok");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(dc_sim_body(s, NULL), "hi");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(pcall_cannot_swallow_exit)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("sneaky", "access",
                            "pcall(ngx.exit, 401)\\nngx.header['X-Still-Running'] = '1'") "]}]}",
                          &t, NULL);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 401);
    ck_assert_ptr_null(dc_sim_header(s, "X-Still-Running"));
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(on_error_fail_ends_with_500)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            P("boom", "access", "error('x')") ","
                            P("never", "access", "ngx.header['X-Never'] = 1") "]}]}",
                            &t, NULL, "{\"on_error\":\"fail\"}");
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 500);
    ck_assert_ptr_null(dc_sim_header(s, "X-Never"));
    ck_assert_str_eq(t.text, "access:boom:error");
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(on_error_fail_by_rule_for_one_domain_only)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":["
                            "{\"name\":\"admin\",\"plugins\":[" P("a", "access", "error('x')") "]},"
                            "{\"name\":\"www\",\"plugins\":[" P("w", "access", "error('x')") "]}]}",
                            &t, NULL,
                            "{\"rules\":[{\"domain\":\"^admin$\",\"on_error\":\"fail\"}]}");
    dc_sim *s = tu_request(e, "admin", "/");
    ck_assert_int_eq(dc_sim_status(s), 500);
    dc_sim_free(s);
    s = tu_request(e, "www", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(instruction_quota_stops_runaway_and_next_plugin_runs)
{
    trace t;
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          "{\"name\":\"spin\",\"phase\":\"access\",\"code\":\"while true do end\","
                          "\"quota\":{\"instructions\":100000,\"time_ms\":5000}},"
                          P("after", "access", "ngx.header['X-After'] = 'yes'") "]}]}",
                          &t, ev);
    for (int i = 0; i < 3; i++) {
        t.text[0] = '\0';
        dc_sim *s = tu_request(e, "a.com", "/");
        ck_assert_str_eq(t.text, "access:spin:quota:instructions access:after:ok");
        ck_assert_str_eq(dc_sim_header(s, "X-After"), "yes");
        ck_assert_ptr_eq(t.last_hreq, s); /* the simulated request is the host's request */
        dc_sim_free(s);
    }
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_QUOTA), 3);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

START_TEST(time_quota_stops_runaway)
{
    trace t;
    /* no instruction limit: only the clock can stop it */
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            "{\"name\":\"spin\",\"phase\":\"access\",\"code\":"
                            "\"while true do end\",\"quota\":{\"time_ms\":20}}]}]}",
                            &t, NULL,
                            "{\"quota\":{\"instructions\":0},\"ceiling\":{\"instructions\":0}}");
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "access:spin:quota:time");
    done(e);
}
END_TEST

START_TEST(pcall_cannot_swallow_a_quota_trip)
{
    trace t;
    /* instructions only: on a slow machine the clock must not trip first */
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            P("loop", "access",
                              "for i = 1, 1000 do pcall(function() while true do end end) end "
                              "ngx.header['X-Escaped'] = '1'") "]}]}",
                            &t, NULL, "{\"quota\":{\"time_ms\":0},\"ceiling\":{\"time_ms\":0}}");
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:loop:quota:instructions");
    ck_assert_ptr_null(dc_sim_header(s, "X-Escaped"));
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(memory_quota_stops_a_bomb)
{
    trace t;
    /* no time quota: on a loaded machine the clock must not trip first */
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            "{\"name\":\"bomb\",\"phase\":\"access\","
                            "\"quota\":{\"memory_kb\":1024},"
                            "\"code\":\"local t = {} for i = 1, 1e7 do t[i] = {i} end\"},"
                            P("after", "access", "ngx.header['X-After'] = 'yes'") "]}]}",
                            &t, NULL, "{\"quota\":{\"time_ms\":0},\"ceiling\":{\"time_ms\":0}}");
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:bomb:quota:memory access:after:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-After"), "yes");
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(repeated_trips_quarantine_the_plugin)
{
    trace t;
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            P("spin", "access", "while true do end") ","
                            P("after", "access", "ngx.header['X-After'] = 'yes'") "]}]}",
                            &t, ev,
                            "{\"quarantine\":{\"trips\":2,\"window_s\":60,\"duration_s\":60}}");
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_QUARANTINED), 0);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_QUARANTINED), 1);
    t.text[0] = '\0';
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:after:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-After"), "yes");
    dc_sim_free(s);

    /* A fixed version (new code) is a new plugin: it runs at once. */
    dc_bundle *b = tu_bundle("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                             P("spin", "access", "local x = 1") "]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    t.text[0] = '\0';
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "access:spin:ok");
    done(e);
    dc_events_free(ev);
}
END_TEST

static void swap_to(dc_engine *e, const char *json)
{
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
}

#define AUTH(code) "{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":[" \
    P("auth", "access", code) "]}]}"
#define Q2 "{\"quarantine\":{\"trips\":2,\"window_s\":60,\"duration_s\":60}}"

START_TEST(previous_version_stands_in_while_the_new_one_is_quarantined)
{
    trace t;
    dc_engine *e = traced_p(AUTH("ngx.header['X-Auth'] = 'v1'"), &t, NULL, Q2);
    dc_sim *s = tu_request(e, "a.com", "/"); /* v1 runs well once */
    ck_assert_str_eq(dc_sim_header(s, "X-Auth"), "v1");
    dc_sim_free(s);

    swap_to(e, AUTH("while true do end")); /* v2 is broken */
    dc_sim_free(tu_request(e, "a.com", "/"));
    dc_sim_free(tu_request(e, "a.com", "/")); /* second trip: v2 quarantined */
    t.text[0] = '\0';
    s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-Auth"), "v1");
    ck_assert_str_eq(t.text, "access:auth:ok");
    ck_assert_str_eq(t.last_msg, "previous version (the new one is quarantined)");
    dc_sim_free(s);

    /* v3, broken too: v2 never ran well, so v1 stays the stand-in */
    swap_to(e, AUTH("while true do local x = 1 end"));
    dc_sim_free(tu_request(e, "a.com", "/"));
    dc_sim_free(tu_request(e, "a.com", "/"));
    s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-Auth"), "v1");
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(no_stand_in_without_a_clean_previous_version)
{
    trace t;
    dc_engine *e = traced_p(AUTH("ngx.header['X-Auth'] = 'v1'"), &t, NULL, Q2);
    /* v1 never ran before v2 replaced it: nothing proves it good */
    swap_to(e, AUTH("while true do end"));
    dc_sim_free(tu_request(e, "a.com", "/"));
    dc_sim_free(tu_request(e, "a.com", "/"));
    t.text[0] = '\0';
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_ptr_null(dc_sim_header(s, "X-Auth"));
    ck_assert_str_eq(t.text, "");
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(policy_bounds_output_values_and_log_lines)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":["
                            "{\"name\":\"big\",\"plugins\":[" P("wide", "content", "ngx.say(string.rep('x', 40))") "]},"
                            "{\"name\":\"*\",\"plugins\":["
                            P("value", "access", "ngx.header['X-V'] = string.rep('v', 17)") ","
                            P("short", "access", "ngx.header['X-S'] = string.rep('s', 16)") ","
                            P("logger", "access", "ngx.log(ngx.ERR, string.rep('l', 200))") ","
                            P("out", "content", "ngx.print(string.rep('o', 10)) ngx.print('!')") "]}]}",
                            &t, NULL,
                            "{\"bounds\":{\"log_line_bytes\":80,\"output_bytes\":10,"
                            "\"value_bytes\":16},\"rules\":[{\"domain\":\"^big$\","
                            "\"bounds\":{\"output_bytes\":100}}]}");
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:value:error access:short:ok access:logger:ok "
                             "content:out:error");
    ck_assert_ptr_null(dc_sim_header(s, "X-V"));
    ck_assert_str_eq(dc_sim_header(s, "X-S"), "ssssssssssssssss");
    ck_assert_msg(strstr(t.last_msg, "ngx.print: output over the policy's bound of 10 bytes") != NULL,
                  "%s", t.last_msg);
    ck_assert_str_eq(dc_sim_body(s, NULL), "oooooooooo"); /* the first print went out */
    const char *log = dc_sim_log(s);
    const char *line = strstr(log, "[dynacode] plugin \"logger\"");
    ck_assert_ptr_nonnull(line);
    size_t len = strcspn(line, "\n");
    ck_assert_uint_eq(len, 80);
    ck_assert_int_eq(strncmp(line + len - 3, "...", 3), 0);
    dc_sim_free(s);

    /* the rule raises the output bound for the domain "big" */
    t.text[0] = '\0';
    s = tu_request(e, "big", "/");
    ck_assert_msg(strstr(t.text, "content:wide:ok") != NULL, "%s", t.text);
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(denied_names_fail_with_their_name)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            P("fn", "access", "ngx.req.set_header('X-A', '1')") ","
                            P("tbl", "access", "local v = ngx.var.host") ","
                            P("prop", "access", "local s = ngx.status") ","
                            P("method", "access", "local s = ('abc'):upper()") ","
                            P("ok", "access", "ngx.header['X-Ok'] = string.lower('A')") "]}]}",
                            &t, NULL,
                            "{\"api\":{\"deny\":[\"ngx.req.set_header\",\"ngx.var\","
                            "\"ngx.status\",\"string.upper\"]}}");
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "access:fn:denied access:tbl:denied access:prop:denied "
                             "access:method:denied access:ok:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-Ok"), "a");
    dc_sim_free(s);
    done(e);
}
END_TEST

START_TEST(denied_message_names_the_api)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                            P("fn", "access", "ngx.req.set_header('X-A', '1')") "]}]}",
                            &t, NULL, "{\"api\":{\"deny\":[\"ngx.req.*\"]}}");
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_msg(strstr(t.last_msg, "ngx.req.set_header is denied by policy") != NULL,
                  "message: %s", t.last_msg);
    done(e);
}
END_TEST

START_TEST(request_keeps_its_generation_across_a_swap)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                          P("old", "log", "") "]}]}",
                          &t, NULL);
    dc_sim_opts o = {.host = "a.com"};
    dc_sim *s = dc_sim_new(&o);
    dc_request *r;
    ck_assert_int_eq(dc_request_begin(e, s, "a.com", 5, &r), DC_OK);
    dc_bundle *b2 = tu_bundle("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                              P("new", "log", "") "]}]}");
    dc_engine_set_bundle(e, b2);
    dc_bundle_unref(b2);
    int st;
    dc_request_run(r, DC_PHASE_LOG, &st);
    ck_assert_str_eq(t.text, "log:old:ok");
    dc_request_end(r);
    t.text[0] = '\0';
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "log:new:ok");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(host_match_is_cached_and_dropped_on_swap)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"a\\\\.com\",\"plugins\":["
                          P("p", "log", "") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    dc_sim_free(tu_request(e, "a.com", "/"));
    dc_sim_free(tu_request(e, "b.com", "/"));
    ck_assert_uint_eq(e->gen->cache.size, 2);
    dc_bundle *b = tu_bundle("{" ENABLED ",\"domains\":[{\"name\":\"b\\\\.com\",\"plugins\":["
                             P("p", "log", "") "]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    ck_assert_uint_eq(e->gen->cache.size, 0);
    t.text[0] = '\0';
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_str_eq(t.text, "");
    dc_sim_free(tu_request(e, "b.com", "/"));
    ck_assert_str_eq(t.text, "log:p:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(host_cache_bounded)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.host_cache_size = 8;
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                             P("p", "log", "") "]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    char host[32];
    for (int i = 0; i < 200; i++) {
        snprintf(host, sizeof host, "h%d.com", i);
        dc_sim_free(tu_request(e, host, "/"));
        ck_assert_uint_le(e->gen->cache.size, 8);
    }
    dc_engine_free(e);
}
END_TEST

/* Hosts that resolve to the same plugins share one result; others get their own; a host too
 * long for a slot is matched on every request and never cached, and still runs its plugins. */
START_TEST(hosts_share_results)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":[{\"name\":\"a\\\\.com\",\"plugins\":["
                          P("pa", "log", "") "]},{\"name\":\"b\\\\.com\",\"plugins\":["
                          P("pb", "log", "") "]}]}",
                          &t, NULL);
    dc_gen *g = e->gen;
    dc_match *m1 = dc_match_host(g, "x.a.com", 7);
    dc_match *m2 = dc_match_host(g, "y.a.com", 7);
    dc_match *m3 = dc_match_host(g, "y.b.com", 7);
    ck_assert_ptr_nonnull(m1);
    ck_assert_ptr_eq(m1, m2);
    ck_assert_ptr_ne(m1, m3);
    ck_assert_uint_eq(m1->count[DC_PHASE_LOG], 1);
    ck_assert_uint_eq(g->cache.size, 3);
    char longhost[128];
    memset(longhost, 'h', sizeof longhost);
    memcpy(longhost + sizeof longhost - 6, ".b.com", 6);
    dc_match *m4 = dc_match_host(g, longhost, sizeof longhost);
    ck_assert_ptr_eq(m4, m3);
    ck_assert_uint_eq(g->cache.size, 3);
    dc_match_release(m1);
    dc_match_release(m2);
    dc_match_release(m3);
    dc_match_release(m4);
    t.text[0] = '\0';
    char host[160];
    snprintf(host, sizeof host, "%.*s", (int)sizeof longhost, longhost);
    dc_sim_free(tu_request(e, host, "/"));
    ck_assert_str_eq(t.text, "log:pb:ok");
    dc_engine_free(e);
}
END_TEST

START_TEST(state_survives_a_swap_when_code_is_unchanged)
{
    trace t;
    const char *counter = P("count", "header_filter",
                            "n = (n or 0) + 1 ngx.header['X-N'] = n");
    char json[1024];
    snprintf(json, sizeof json, "{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":[%s]}]}",
             counter);
    dc_engine *e = traced(json, &t, NULL);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-N"), "1");
    dc_sim_free(s);

    /* Same plugin plus another: the counter's state is kept. */
    snprintf(json, sizeof json, "{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":[%s,"
             P("other", "log", "") "]}]}", counter);
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-N"), "2");
    dc_sim_free(s);

    /* Changed code: a fresh state. */
    b = tu_bundle("{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                  P("count", "header_filter", "n = (n or 10) + 1 ngx.header['X-N'] = n") "]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    ck_assert_uint_eq(dc_engine_live_states(e), 0);
    s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-N"), "11");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

START_TEST(identical_plugins_do_not_share_a_state)
{
    trace t;
    dc_engine *e = traced("{" ENABLED ",\"domains\":["
                          "{\"name\":\"*\",\"plugins\":[" P("c", "log", "n = (n or 0) + 1") "]},"
                          "{\"name\":\"a.com\",\"plugins\":[" P("c", "log", "n = (n or 0) + 1") "]}]}",
                          &t, NULL);
    dc_sim_free(tu_request(e, "a.com", "/"));
    ck_assert_uint_eq(dc_engine_live_states(e), 2);
    dc_engine_free(e);
}
END_TEST

/* ---- policy rules go by the request's host, whatever the bundle writes ---- */

#define ADMIN_RULE "{\"rules\":[{\"domain\":\"^admin\\\\.\",\"api\":{\"deny\":[\"ngx.log\"]}}]}"
#define LOGS "ngx.log(ngx.INFO, 'x')"

/* The trace of one request for host on e (the trace is cleared first). */
static const char *traced_request(dc_engine *e, trace *t, const char *host)
{
    t->text[0] = '\0';
    dc_sim_free(tu_request(e, host, "/"));
    return t->text;
}

START_TEST(bundle_cannot_dodge_a_rule_by_its_spelling_of_a_domain)
{
    /* each of these is found in the host admin.corp, and none is found by "^admin\." */
    static const char *const spellings[] = {"admin\\\\.corp", "[a]dmin.corp", "*",
                                            "(?:admin).corp"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{" ENABLED ",\"domains\":[{\"name\":\"%s\",\"plugins\":["
                 P("p", "access", LOGS) "]}]}", spellings[i]);
        trace t;
        dc_engine *e = traced_p(json, &t, NULL, ADMIN_RULE);
        ck_assert_msg(strcmp(traced_request(e, &t, "admin.corp"), "access:p:denied") == 0,
                      "%s: %s", spellings[i], t.text);
        ck_assert_ptr_nonnull(strstr(t.last_msg, "ngx.log is denied by policy"));
        /* and a host the rule does not name is not held by it */
        const char *other = i == 2 ? "www.corp" : "x.admin.corp";
        ck_assert_msg(strcmp(traced_request(e, &t, other), "access:p:ok") == 0, "%s: %s",
                      spellings[i], t.text);
        done(e);
    }
}
END_TEST

START_TEST(bundle_cannot_claim_a_rule_by_its_spelling_of_a_domain)
{
    /* only hosts under trusted. get a large instruction quota (no time quota: on a loaded
     * machine the clock must not trip first) */
    const char *policy = "{\"quota\":{\"instructions\":20000,\"time_ms\":0},"
                         "\"ceiling\":{\"time_ms\":0},\"rules\":[{\"domain\":"
                         "\"^trusted\\\\.\",\"quota\":{\"instructions\":5000000}}]}";
    static const char *const spellings[] = {"trusted.|", ".*", "*", "trusted."};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{" ENABLED ",\"domains\":[{\"name\":\"%s\",\"plugins\":["
                 P("spin", "access", "for i = 1, 200000 do end") "]}]}", spellings[i]);
        trace t;
        dc_engine *e = traced_p(json, &t, NULL, policy);
        if (i < 3) /* the domain matches any host: evil.com must not get the trusted quota */
            ck_assert_msg(strcmp(traced_request(e, &t, "evil.com"),
                                 "access:spin:quota:instructions") == 0,
                          "%s: %s", spellings[i], t.text);
        else       /* "trusted." is found in evil.trusted.com, which ^trusted\. does not name */
            ck_assert_msg(strcmp(traced_request(e, &t, "evil.trusted.com"),
                                 "access:spin:quota:instructions") == 0,
                          "%s: %s", spellings[i], t.text);
        /* the host the rule names does get it, from the same bundle and engine */
        ck_assert_msg(strcmp(traced_request(e, &t, "trusted.example"), "access:spin:ok") == 0,
                      "%s: %s", spellings[i], t.text);
        done(e);
    }
}
END_TEST

START_TEST(shared_plugin_gets_the_policy_of_each_requests_host)
{
    trace t;
    dc_engine *e = traced_p("{" ENABLED ",\"domains\":["
                            "{\"name\":\"corp$\",\"plugins\":[1]},"
                            "{\"name\":\"*\",\"plugins\":[1]}],"
                            "\"plugins\":[{\"id\":1,\"name\":\"s\",\"phase\":\"access\","
                            "\"code\":\"" LOGS "\"}]}", &t, NULL, ADMIN_RULE);
    for (int round = 0; round < 3; round++) { /* the cached matches keep their own settings */
        ck_assert_str_eq(traced_request(e, &t, "admin.corp"), "access:s:denied access:s:denied");
        ck_assert_str_eq(traced_request(e, &t, "www.corp"), "access:s:ok access:s:ok");
        ck_assert_str_eq(traced_request(e, &t, "admin.org"), "access:s:denied");
        ck_assert_str_eq(traced_request(e, &t, "www.org"), "access:s:ok");
    }
    /* two sets of settings, two states; a plugin no domain rule can reach has none per host */
    ck_assert_uint_eq(dc_engine_live_states(e), 2);
    done(e);
}
END_TEST

START_TEST(per_host_settings_survive_cache_eviction_and_swaps)
{
    char err[256] = "";
    dc_policy *pol = NULL;
    ck_assert_int_eq(dc_policy_load(ADMIN_RULE, strlen(ADMIN_RULE), "test", &pol, err,
                                    sizeof err), DC_OK);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = pol;
    cfg.host_cache_size = 4;
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    trace t;
    memset(&t, 0, sizeof t);
    dc_engine_on_run(e, record, &t);
    const char *json = "{" ENABLED ",\"domains\":[{\"name\":\"*\",\"plugins\":["
                       P("p", "access", "n = (n or 0) + 1 " LOGS) "]}]}";
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    char host[32];
    for (int i = 0; i < 60; i++) {
        snprintf(host, sizeof host, "%s%d.x", i % 2 ? "admin." : "www.", i);
        ck_assert_str_eq(traced_request(e, &t, host), i % 2 ? "access:p:denied"
                                                            : "access:p:ok");
        ck_assert_uint_le(e->gen->cache.size, 4);
        if (i == 30) { /* same code: the swap keeps both states, per-host ones included */
            b = tu_bundle(json);
            dc_engine_set_bundle(e, b);
            dc_bundle_unref(b);
            ck_assert_uint_eq(dc_engine_live_states(e), 2);
        }
    }
    dc_engine_free(e);
    dc_policy_free(pol);
}
END_TEST

START_TEST(stand_in_runs_under_the_settings_of_the_requests_host)
{
    trace t;
    dc_engine *e = traced_p(AUTH(LOGS " ngx.header['X-Auth'] = 'v1'"), &t, NULL,
                            "{\"quarantine\":{\"trips\":2,\"window_s\":60,\"duration_s\":60},"
                            "\"rules\":[{\"domain\":\"^admin\\\\.\","
                            "\"api\":{\"deny\":[\"ngx.log\"]}}]}");
    ck_assert_str_eq(traced_request(e, &t, "www.corp"), "access:auth:ok"); /* v1 is clean */
    swap_to(e, AUTH("while true do end"));
    traced_request(e, &t, "www.corp");
    traced_request(e, &t, "www.corp"); /* second trip: the new version is quarantined */
    ck_assert_str_eq(traced_request(e, &t, "www.corp"), "access:auth:ok");
    ck_assert_str_eq(t.last_msg, "previous version (the new one is quarantined)");
    /* the stand-in on admin.corp: the rule for admin.corp holds for it too */
    ck_assert_str_eq(traced_request(e, &t, "admin.corp"), "access:auth:denied");
    ck_assert_ptr_nonnull(strstr(t.last_msg, "ngx.log is denied by policy"));
    done(e);
}
END_TEST

START_TEST(original_example_bundle)
{
    size_t len;
    char *json = tu_read_source_file("usage/response.json", &len);
    dc_bundle *b = tu_bundle(json);
    free(json);
    dc_engine *e = tu_engine(b);
    dc_bundle_unref(b);

    dc_sim *s = tu_request(e, "dynamic.local.com", "/?token=token");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(dc_sim_body(s, NULL), "olá mundo!\nhello world!\n");
    ck_assert_str_eq(dc_sim_header(s, "Access-Control-Allow-Origin"), "http://dynamic.local.com");
    ck_assert_str_eq(dc_sim_header(s, "Set-Cookie"), "superstition=token");
    dc_sim_free(s);

    const char *cookie[] = {"Cookie: superstition=token"};
    dc_sim_opts o = {.host = "dynamic.local.com", .uri = "/", .headers = cookie, .nheaders = 1};
    s = dc_sim_new(&o);
    ck_assert_int_eq(dc_sim_run(s, e), 0);
    ck_assert_int_eq(dc_sim_status(s), 200);
    dc_sim_free(s);

    s = tu_request(e, "dynamic.local.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 403);
    ck_assert_ptr_null(dc_sim_header(s, "Set-Cookie"));
    dc_sim_free(s);

    s = tu_request(e, "metrics.server.local.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_ptr_null(dc_sim_header(s, "X-Served-By"));
    dc_sim_free(s);

    s = tu_request(e, "clock.local.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-Served-By"), "dynacode");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("run");
    TCase *orig = tcase_create("original_runner_spec");
    /* Check's default of 4 s: a loaded machine spent more on one test's bundle swaps */
    tcase_set_timeout(orig, 60);
    tcase_add_test(orig, wildcard_and_regex_domain_both_run_in_bundle_order);
    tcase_add_test(orig, skipped_domain_runs_nothing);
    tcase_add_test(orig, disabled_status_runs_nothing);
    tcase_add_test(orig, unmatched_domain_runs_nothing);
    tcase_add_test(orig, unmatched_phase_runs_nothing_in_other_phases);
    tcase_add_test(orig, skipped_plugin_does_not_run);
    tcase_add_test(orig, failing_plugin_does_not_stop_the_others);
    tcase_add_test(orig, run_callback_for_errors_only_skips_the_calls_that_went_well);
    tcase_add_test(orig, original_example_bundle);
    tcase_add_test(orig, bundle_cannot_dodge_a_rule_by_its_spelling_of_a_domain);
    tcase_add_test(orig, bundle_cannot_claim_a_rule_by_its_spelling_of_a_domain);
    tcase_add_test(orig, shared_plugin_gets_the_policy_of_each_requests_host);
    tcase_add_test(orig, per_host_settings_survive_cache_eviction_and_swaps);
    tcase_add_test(orig, stand_in_runs_under_the_settings_of_the_requests_host);
    suite_add_tcase(s, orig);

    TCase *rules = tcase_create("rules");
    tcase_set_timeout(rules, 60);
    tcase_add_test(rules, no_bundle_runs_nothing);
    tcase_add_test(rules, error_message_names_the_plugin_line);
    tcase_add_test(rules, error_object_is_not_stringified_by_plugin_code);
    tcase_add_test(rules, sampling_zero_never_one_always_half_sometimes);
    tcase_add_test(rules, exit_in_rewrite_ends_the_request_and_filters_still_run);
    tcase_add_test(rules, exit_ok_ends_the_phase_only);
    tcase_add_test(rules, pcall_cannot_swallow_exit);
    tcase_add_test(rules, on_error_fail_ends_with_500);
    tcase_add_test(rules, on_error_fail_by_rule_for_one_domain_only);
    tcase_add_test(rules, instruction_quota_stops_runaway_and_next_plugin_runs);
    tcase_add_test(rules, time_quota_stops_runaway);
    tcase_add_test(rules, pcall_cannot_swallow_a_quota_trip);
    tcase_add_test(rules, memory_quota_stops_a_bomb);
    tcase_add_test(rules, repeated_trips_quarantine_the_plugin);
    tcase_add_test(rules, previous_version_stands_in_while_the_new_one_is_quarantined);
    tcase_add_test(rules, no_stand_in_without_a_clean_previous_version);
    tcase_add_test(rules, policy_bounds_output_values_and_log_lines);
    tcase_add_test(rules, denied_names_fail_with_their_name);
    tcase_add_test(rules, denied_message_names_the_api);
    tcase_add_test(rules, request_keeps_its_generation_across_a_swap);
    tcase_add_test(rules, host_match_is_cached_and_dropped_on_swap);
    tcase_add_test(rules, host_cache_bounded);
    tcase_add_test(rules, hosts_share_results);
    tcase_add_test(rules, state_survives_a_swap_when_code_is_unchanged);
    tcase_add_test(rules, identical_plugins_do_not_share_a_state);
    suite_add_tcase(s, rules);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
