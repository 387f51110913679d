/* test_events.c - the event hub: every event named as the original names it, counters
 * in the hub or in host memory, subscriptions by mask, and the engine's runtime events.
 */
#include <string.h>

#include "bundle.h"
#include "testutil.h"

START_TEST(names_are_the_originals)
{
    ck_assert_str_eq(dc_event_name(DC_EV_BG_CACHE_MISS), "bg_cache_miss");
    ck_assert_str_eq(dc_event_name(DC_EV_BG_FETCH_API_STATUS_CODE_ERROR),
                     "bg_fetch_api_status_code_error");
    ck_assert_str_eq(dc_event_name(DC_EV_BG_DIDNT_UPDATE_PLUGINS), "bg_didnt_update_plugins");
    ck_assert_str_eq(dc_event_name(DC_EV_RT_PLUGINS_NOT_LOADED), "rt_plugins_not_loaded");
    ck_assert_str_eq(dc_event_name(DC_EV_ON_ERROR), "on_error");
    ck_assert_str_eq(dc_event_name(DC_EV_RT_PLUGINS_QUARANTINED), "rt_plugins_quarantined");
    ck_assert_str_eq(dc_event_name(DC_EV_BG_OFFLINE_LOADED), "bg_offline_loaded");
    ck_assert_str_eq(dc_event_name(DC_EVENT_COUNT), "unknown");
    ck_assert_int_eq(DC_EVENT_COUNT, 19);
}
END_TEST

typedef struct seen {
    int calls;
    dc_event last;
    dc_severity severity;
    char plugin[64];
} seen;

static void on_event(void *ud, const dc_event_info *i)
{
    seen *s = ud;
    s->calls++;
    s->last = i->event;
    s->severity = i->severity;
    snprintf(s->plugin, sizeof s->plugin, "%s", i->plugin ? i->plugin : "");
}

START_TEST(subscriptions_follow_their_mask)
{
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    seen a = {0}, b = {0};
    ck_assert_int_eq(dc_events_subscribe(ev, 1ull << DC_EV_RT_PLUGINS_ERROR, on_event, &a), DC_OK);
    ck_assert_int_eq(dc_events_subscribe(ev, ~0ull, on_event, &b), DC_OK);
    dc_event_info i = {.event = DC_EV_RT_PLUGINS_ERROR, .plugin = "p", .phase = -1};
    dc_events_emit(ev, &i);
    i.event = DC_EV_BG_COMPILE_SUCCESS;
    dc_events_emit(ev, &i);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 2);
    ck_assert_int_eq(b.last, DC_EV_BG_COMPILE_SUCCESS);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_ERROR), 1);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_BG_COMPILE_SUCCESS), 1);
    ck_assert_int_eq(dc_events_subscribe(ev, 1, NULL, NULL), DC_EINVAL);
    for (int k = 2; k < 16; k++)
        ck_assert_int_eq(dc_events_subscribe(ev, 0, on_event, &a), DC_OK);
    ck_assert_int_eq(dc_events_subscribe(ev, 0, on_event, &a), DC_ELIMIT);
    dc_events_free(ev);
}
END_TEST

/* The library says how much an event matters: the event's usual severity, unless the emitter
 * says otherwise for one occurrence (an unchanged bundle is not the news a refusal is). */
START_TEST(subscribers_see_a_severity)
{
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    seen s = {0};
    ck_assert_int_eq(dc_events_subscribe(ev, ~0ull, on_event, &s), DC_OK);
    static const struct {
        dc_event e;
        dc_severity usual;
    } cases[] = {
        {DC_EV_BG_FETCH_API_GENERIC_ERROR, DC_SEV_ERROR},
        {DC_EV_ON_ERROR, DC_SEV_ERROR},
        {DC_EV_BG_COMPILE_ERROR, DC_SEV_WARN},
        {DC_EV_BG_DIDNT_UPDATE_PLUGINS, DC_SEV_WARN},
        {DC_EV_RT_PLUGINS_QUARANTINED, DC_SEV_WARN},
        {DC_EV_BG_UPDATED_PLUGINS, DC_SEV_NOTICE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dc_event_info i = {.event = cases[k].e, .phase = -1};
        dc_events_emit(ev, &i);
        ck_assert_int_eq(s.severity, cases[k].usual);
    }
    dc_event_info quiet = {.event = DC_EV_BG_DIDNT_UPDATE_PLUGINS, .phase = -1,
                           .severity = DC_SEV_INFO};
    dc_events_emit(ev, &quiet);
    ck_assert_int_eq(s.severity, DC_SEV_INFO);
    dc_event_info bogus = {.event = DC_EV_ON_ERROR, .phase = -1, .severity = (dc_severity)99};
    dc_events_emit(ev, &bogus);
    ck_assert_int_eq(s.severity, DC_SEV_ERROR);
    dc_events_free(ev);
}
END_TEST

START_TEST(counters_can_live_in_host_memory)
{
    uint64_t slots[DC_EVENT_COUNT] = {0};
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(slots, &ev), DC_OK);
    dc_event_info i = {.event = DC_EV_BG_UPDATED_PLUGINS, .phase = -1};
    dc_events_emit(ev, &i);
    dc_events_emit(ev, &i);
    ck_assert_uint_eq(slots[DC_EV_BG_UPDATED_PLUGINS], 2);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_BG_UPDATED_PLUGINS), 2);
    dc_events_free(ev);
}
END_TEST

/* Deferred: the request path's per-phase events are counted in the hub (no atomic add on the
 * shared line) and reach the host's counters when folded; the hub's own count includes them at
 * once; other events go straight to the counters; turning deferral off folds the rest. */
START_TEST(deferred_counts_reach_the_counters_when_folded)
{
    uint64_t slots[DC_EVENT_COUNT] = {0};
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(slots, &ev), DC_OK);
    dc_events_defer(ev, 1);
    dc_event_info start = {.event = DC_EV_RT_PLUGINS_STARTING, .phase = 1};
    dc_event_info err = {.event = DC_EV_RT_PLUGINS_ERROR, .phase = 1, .message = "x"};
    for (int i = 0; i < 3; i++)
        dc_events_emit(ev, &start);
    dc_events_emit(ev, &err);
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_STARTING], 0);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_STARTING), 3);
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_ERROR], 1);
    dc_events_fold(ev);
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_STARTING], 3);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_STARTING), 3);
    dc_events_fold(ev); /* nothing new: nothing added twice */
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_STARTING], 3);
    dc_events_emit(ev, &start);
    dc_events_defer(ev, 0);
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_STARTING], 4);
    dc_events_emit(ev, &start); /* not deferred any more: straight to the counter */
    ck_assert_uint_eq(slots[DC_EV_RT_PLUGINS_STARTING], 5);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_STARTING), 5);
    dc_events_free(ev);
}
END_TEST

START_TEST(engine_emits_runtime_events_with_the_plugin)
{
    dc_events *ev;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    seen err = {0};
    dc_events_subscribe(ev, 1ull << DC_EV_RT_PLUGINS_ERROR, on_event, &err);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.events = ev;
    dc_engine *e;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                             "\"plugins\":[{\"name\":\"bad\",\"phase\":\"log\",\"code\":\"error(1)\"}]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_sim_free(tu_request(e, "x.org", "/"));
    ck_assert_int_eq(err.calls, 1);
    ck_assert_str_eq(err.plugin, "bad");
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_STARTING), 1);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_DONE), 1);
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_add_test(tc, names_are_the_originals);
    tcase_add_test(tc, subscriptions_follow_their_mask);
    tcase_add_test(tc, subscribers_see_a_severity);
    tcase_add_test(tc, counters_can_live_in_host_memory);
    tcase_add_test(tc, deferred_counts_reach_the_counters_when_folded);
    tcase_add_test(tc, engine_emits_runtime_events_with_the_plugin);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
