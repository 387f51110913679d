/* test_status.c - the status page rendered by the library (dc_status_render) from a store with
 * a published bundle, recorded polls and calls: the key lines of the JSON and Prometheus forms
 * (the time histogram, the bundle, poll and shared zone gauges), and that text from the bundle
 * author or the fetched server (plugin names, ETag) is escaped in both.
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "testutil.h"

#define REGION (1u * 1024u * 1024u)

/* Plugin "fine", plugin w"ei\rd (quote and backslash), and a plugin whose name holds a newline
 * (the loader leaves it out, so it reaches the page as a problem whose message quotes it). */
#define BUNDLE_JSON                                                                              \
    "{\"general\":{\"status\":\"enabled\",\"version\":7},\"domains\":[{\"name\":\"*\","   \
    "\"plugins\":["                                                                           \
    "{\"name\":\"fine\",\"phase\":\"access\",\"code\":\"local x = 1\"},"                      \
    "{\"name\":\"w\\\"ei\\\\rd\",\"phase\":\"access\",\"code\":\"error('no')\"},"             \
    "{\"name\":\"new\\nline\",\"phase\":\"access\",\"code\":\"local y = 2\"}]}]}"

/* Quote, backslash and newline in a string the fetched server chose. */
#define ETAG "\"e\\t\ng\""

static void *region;
static dc_store *store;
static dc_engine *engine;
static dc_events *events;

static void setup(void)
{
    region = calloc(1, REGION);
    ck_assert_ptr_nonnull(region);
    char err[256] = "";
    ck_assert_msg(dc_store_attach(region, REGION, 1, &store, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_events_new(dc_store_event_counters(store), &events), DC_OK);

    dc_bundle *b = tu_bundle(BUNDLE_JSON);
    unsigned char *snap = NULL;
    size_t len = 0;
    ck_assert_int_eq(dc_snapshot_encode(b, &snap, &len), DC_OK);
    ck_assert_int_eq(dc_store_publish(store, snap, len, "api", ETAG, 1700000000.5), DC_OK);
    free(snap);
    dc_bundle_unref(b);
    dc_store_note_poll(store, 1, 1700000001.5);
    dc_store_note_poll(store, 0, 1700000002.5);
    dc_store_note_poll(store, 0, 1700000003.5);

    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.store = store;
    cfg.events = events;
    ck_assert_msg(dc_engine_new(&cfg, &engine, err, sizeof err) == DC_OK, "engine: %s", err);
    ck_assert_int_eq(dc_engine_sync(engine, store), 1);
    for (int i = 0; i < 3; i++) {
        dc_sim_free(tu_request(engine, "a.com", "/"));
    }
}

static void teardown(void)
{
    dc_engine_free(engine);
    engine = NULL;
    dc_events_free(events);
    events = NULL;
    dc_store_detach(store);
    store = NULL;
    free(region);
    region = NULL;
}

static char *render(dc_status_format fmt, size_t *len)
{
    dc_status_source src = {.store = store, .engine = engine, .events = events,
                            .worker_pid = 4242, .worker_id = 3};
    char *text = NULL;
    ck_assert_int_eq(dc_status_render(&src, fmt, &text, len), DC_OK);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), *len);
    return text;
}

/* (the page is cut in the message: Check refuses long ones) */
#define HAS(text, needle) ck_assert_msg(strstr(text, needle) != NULL, "missing %s in:\n%.1500s", \
                                        needle, text)

START_TEST(json_has_the_bundle_plugins_and_worker)
{
    size_t len = 0;
    char *text = render(DC_STATUS_JSON, &len);
    ck_assert_int_eq(text[len - 1], '\n');

    cJSON *doc = cJSON_Parse(text);
    ck_assert_msg(doc != NULL, "not JSON:\n%s", text);
    cJSON *bundle = cJSON_GetObjectItem(doc, "bundle");
    ck_assert_double_eq(cJSON_GetObjectItem(bundle, "generation")->valuedouble, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(bundle, "source")->valuestring, "api");
    ck_assert_str_eq(cJSON_GetObjectItem(bundle, "etag")->valuestring, ETAG);
    ck_assert_double_eq(cJSON_GetObjectItem(bundle, "plugins")->valuedouble, 2);
    cJSON *problems = cJSON_GetObjectItem(bundle, "problems");
    ck_assert_int_eq(cJSON_GetArraySize(problems), 1);
    cJSON *pr = cJSON_GetArrayItem(problems, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(pr, "kind")->valuestring, "plugin_left_out");

    cJSON *plugins = cJSON_GetObjectItem(doc, "plugins");
    ck_assert_int_eq(cJSON_GetArraySize(plugins), 2);
    cJSON *weird = cJSON_GetArrayItem(plugins, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(weird, "plugin")->valuestring, "w\"ei\\rd");
    ck_assert_double_eq(cJSON_GetObjectItem(weird, "runs")->valuedouble, 3);
    ck_assert_double_eq(cJSON_GetObjectItem(weird, "errors")->valuedouble, 3);
    cJSON *fine = cJSON_GetArrayItem(plugins, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(fine, "plugin")->valuestring, "fine");
    ck_assert_double_eq(cJSON_GetObjectItem(fine, "runs")->valuedouble, 3);
    ck_assert_double_eq(cJSON_GetObjectItem(fine, "errors")->valuedouble, 0);

    /* the time buckets: each bucket's own count, as many as the bounds plus the last */
    cJSON *buckets = cJSON_GetObjectItem(fine, "time_buckets");
    ck_assert_int_eq(cJSON_GetArraySize(buckets), DC_TIME_BUCKETS);
    double calls = 0;
    for (int i = 0; i < cJSON_GetArraySize(buckets); i++)
        calls += cJSON_GetArrayItem(buckets, i)->valuedouble;
    ck_assert_double_eq(calls, 3);
    cJSON *bounds = cJSON_GetObjectItem(doc, "time_bucket_bounds_us");
    ck_assert_int_eq(cJSON_GetArraySize(bounds), DC_TIME_BUCKETS - 1);
    ck_assert_double_eq(cJSON_GetArrayItem(bounds, 0)->valuedouble, 1);
    ck_assert_double_eq(cJSON_GetArrayItem(bounds, DC_TIME_BUCKETS - 2)->valuedouble, 1e7);

    /* the bundle's age, the poller's record and the zone's usage */
    ck_assert(cJSON_GetObjectItem(bundle, "age_seconds")->valuedouble > 0);
    cJSON *poll = cJSON_GetObjectItem(doc, "poll");
    ck_assert_double_eq(cJSON_GetObjectItem(poll, "ok_at")->valuedouble, 1700000001.5);
    ck_assert_double_eq(cJSON_GetObjectItem(poll, "failures")->valuedouble, 2);
    cJSON *shm = cJSON_GetObjectItem(doc, "shm");
    ck_assert_double_eq(cJSON_GetObjectItem(shm, "size")->valuedouble, REGION);
    ck_assert_double_eq(cJSON_GetObjectItem(shm, "used")->valuedouble +
                            cJSON_GetObjectItem(shm, "free")->valuedouble,
                        REGION);
    ck_assert(cJSON_GetObjectItem(shm, "snapshot_capacity")->valuedouble > 0);
    ck_assert_double_eq(cJSON_GetObjectItem(shm, "metrics_used")->valuedouble, 2);

    cJSON *worker = cJSON_GetObjectItem(doc, "worker");
    ck_assert_double_eq(cJSON_GetObjectItem(worker, "pid")->valuedouble, 4242);
    ck_assert_double_eq(cJSON_GetObjectItem(worker, "id")->valuedouble, 3);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(worker, "bundle_loaded")));
    ck_assert(cJSON_GetObjectItem(doc, "events") != NULL);
    cJSON_Delete(doc);

    HAS(text, "\"version\":7,");
    /* the escapes themselves, as bytes */
    HAS(text, "\"etag\":\"\\\"e\\\\t\\ng\\\"\"");
    HAS(text, "\"plugin\":\"w\\\"ei\\\\rd\"");
    /* the loader refuses a name with a newline and quotes it in its message (whose quotes the
     * page escapes in turn); the raw name never reaches the page */
    HAS(text, "\"message\":\"name \\\"new\\\\x0aline\\\" contains");
    ck_assert_ptr_null(strstr(text, "new\nline"));
    free(text);
}
END_TEST

START_TEST(prometheus_has_the_families_and_escapes_labels)
{
    size_t len = 0;
    char *text = render(DC_STATUS_PROMETHEUS, &len);
    HAS(text, "# TYPE dynacode_events_total counter\n");
    HAS(text, "\ndynacode_bundle_generation 1\n");
    HAS(text, "\ndynacode_bundle_info{source=\"api\",etag=\"\\\"e\\\\t\\ng\\\"\"} 1\n");
    HAS(text, "\ndynacode_bundle_fetched_timestamp_seconds 1700000000.500\n");
    HAS(text, "\ndynacode_bundle_version 7\n");
    HAS(text, "\ndynacode_poll_last_success_timestamp_seconds 1700000001.500\n");
    HAS(text, "\ndynacode_poll_consecutive_failures 2\n");
    HAS(text, "\ndynacode_shm_size_bytes 1048576\n");
    HAS(text, "\ndynacode_shm_metrics_entries_used 2\n");
    HAS(text, "# TYPE dynacode_bundle_age_seconds gauge\n");
    HAS(text, "\ndynacode_bundle_plugins 2\n");
    HAS(text, "\ndynacode_bundle_problems 1\n");
    HAS(text, "\ndynacode_plugin_runs_total{domain=\"*\",plugin=\"fine\",phase=\"access\"} 3\n");
    HAS(text, "\ndynacode_plugin_errors_total{domain=\"*\",plugin=\"w\\\"ei\\\\rd\","
              "phase=\"access\"} 3\n");
    HAS(text, "\ndynacode_plugin_quota_trips_total{domain=\"*\",plugin=\"fine\","
              "phase=\"access\",kind=\"memory\"} 0\n");
    HAS(text, "# TYPE dynacode_plugin_time_seconds histogram\n");
    HAS(text, "\ndynacode_plugin_time_seconds_count{domain=\"*\",plugin=\"fine\","
              "phase=\"access\"} 3\n");
    HAS(text, "\ndynacode_plugin_time_seconds_bucket{domain=\"*\",plugin=\"fine\","
              "phase=\"access\",le=\"+Inf\"} 3\n");
    HAS(text, "\ndynacode_plugin_time_seconds_bucket{domain=\"*\",plugin=\"fine\","
              "phase=\"access\",le=\"0.0005\"} ");
    HAS(text, "\ndynacode_plugin_time_seconds_bucket{domain=\"*\",plugin=\"fine\","
              "phase=\"access\",le=\"10\"} ");

    /* the buckets of "fine": one per bound, in order, counts never falling, +Inf last */
    const char *prefix = "\ndynacode_plugin_time_seconds_bucket{domain=\"*\",plugin=\"fine\","
                         "phase=\"access\",le=\"";
    const char *at = text;
    unsigned seen = 0;
    unsigned long long prev = 0;
    while ((at = strstr(at, prefix)) != NULL) {
        at += strlen(prefix);
        char le[32];
        unsigned long long count = 0;
        ck_assert_int_eq(sscanf(at, "%31[^\"]\"} %llu", le, &count), 2);
        ck_assert_uint_ge(count, prev);
        prev = count;
        ck_assert_str_eq(le, seen + 1 < DC_TIME_BUCKETS ? (seen == 0 ? "0.000001" : le) : "+Inf");
        seen++;
    }
    ck_assert_uint_eq(seen, DC_TIME_BUCKETS);
    ck_assert_uint_eq(prev, 3);
    HAS(text, "\ndynacode_worker_live_states{pid=\"4242\",worker=\"3\"} ");
    ck_assert_int_eq(text[len - 1], '\n');

    /* every line is a comment or a sample: no label value broke a line */
    char *line = text;
    while (*line) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_msg(line[0] == '#' || strncmp(line, "dynacode_", 9) == 0, "line: %.*s",
                      (int) (nl - line), line);
        line = nl + 1;
    }
    free(text);
}
END_TEST

START_TEST(without_engine_or_events_the_store_facts_remain)
{
    dc_status_source src = {.store = store};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(dc_status_render(&src, DC_STATUS_JSON, &text, &len), DC_OK);
    HAS(text, "\"plugins\":[]");
    HAS(text, "\"bundle_loaded\":false");
    HAS(text, "\"generation\":1,");
    free(text);
    ck_assert_int_eq(dc_status_render(&src, DC_STATUS_PROMETHEUS, &text, &len), DC_OK);
    ck_assert_ptr_null(strstr(text, "dynacode_plugin_runs_total"));
    HAS(text, "dynacode_events_total{event=");
    HAS(text, "\ndynacode_bundle_plugins 0\n"); /* no engine: no bundle loaded here */
    HAS(text, "\ndynacode_shm_size_bytes 1048576\n");
    free(text);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    dc_status_source src = {.store = store};
    dc_status_source none = {0};
    char *text = (char *) "x";
    size_t len = 7;
    ck_assert_int_eq(dc_status_render(NULL, DC_STATUS_JSON, &text, &len), DC_EINVAL);
    ck_assert_ptr_null(text);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(dc_status_render(&none, DC_STATUS_JSON, &text, &len), DC_EINVAL);
    ck_assert_int_eq(dc_status_render(&src, (dc_status_format) 9, &text, &len), DC_EINVAL);
    ck_assert_int_eq(dc_status_render(&src, DC_STATUS_JSON, NULL, &len), DC_EINVAL);
    ck_assert_int_eq(dc_status_render(&src, DC_STATUS_JSON, &text, NULL), DC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_has_the_bundle_plugins_and_worker);
    tcase_add_test(tc, prometheus_has_the_families_and_escapes_labels);
    tcase_add_test(tc, without_engine_or_events_the_store_facts_remain);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
