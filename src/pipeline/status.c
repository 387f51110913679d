/* status.c - the status page as bytes (dc_status_render): the shared event counters, the bundle
 * in the store (generation, source, ETag, fetch time and age, last error), the poller's record
 * (last answered poll, failures since), the shared zone's usage, the per-plugin metrics (time
 * histogram included) and quarantine read through the engine, and the answering worker, as JSON
 * or Prometheus text (names and units as docs/metrics.md lists them).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynacode.h"

/* A growing malloc'd buffer; once an allocation failed every append is a no-op. */
typedef struct out {
    char *buf;
    size_t len;
    size_t cap;
    int failed;
    unsigned items; /* JSON array items written so far */
    unsigned pass;  /* Prometheus: the metric family being written */
} out;

static char *reserve(out *o, size_t n)
{
    if (o->failed) {
        return NULL;
    }
    if (o->cap - o->len > n) {
        return o->buf + o->len;
    }
    size_t cap = o->cap ? o->cap * 2 : 4096;
    while (cap - o->len <= n) {
        if (cap > SIZE_MAX / 2) {
            o->failed = 1;
            return NULL;
        }
        cap *= 2;
    }
    char *p = realloc(o->buf, cap);
    if (p == NULL) {
        o->failed = 1;
        return NULL;
    }
    o->buf = p;
    o->cap = cap;
    return o->buf + o->len;
}

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->failed = 1;
        return;
    }
    char *p = reserve(o, (size_t) n + 1);
    if (p == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t) n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t) n;
}

/* Appends s as the inside of a JSON string (json = 1) or of a Prometheus label value. Both
 * escape the quote, the backslash and the newline; JSON writes the other control bytes as
 * \u00XX, Prometheus (which knows no other escape) as spaces. The names are the bundle
 * author's text, so nothing of them may end the string early. */
static void escape(out *o, const char *s, int json)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL) {
        return;
    }
    size_t len = strlen(s);
    if (len > (SIZE_MAX - 1) / 6) {
        o->failed = 1;
        return;
    }
    char *p = reserve(o, len * 6 + 1);
    if (p == NULL) {
        return;
    }
    char *start = p;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;
        } else if (c == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            if (json) {
                memcpy(p, "\\u00", 4);
                p += 4;
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            } else {
                *p++ = ' ';
            }
        } else {
            *p++ = (char) c;
        }
    }
    o->len += (size_t) (p - start);
}

static void json_str(out *o, const char *key, const char *s)
{
    put(o, "\"%s\":\"", key);
    escape(o, s, 1);
    put(o, "\"");
}

/* ---- per-plugin metrics ---- */

static void json_plugin(void *ud, const dc_plugin_stats *st)
{
    out *o = ud;
    put(o, "%s{", o->items++ ? "," : "");
    json_str(o, "domain", st->domain);
    put(o, ",");
    json_str(o, "plugin", st->plugin);
    put(o,
        ",\"phase\":\"%s\",\"runs\":%" PRIu64 ",\"errors\":%" PRIu64 ","
        "\"quota\":{\"instructions\":%" PRIu64 ",\"time\":%" PRIu64 ",\"memory\":%" PRIu64 "},"
        "\"total_ms\":%.3f,\"p99_ms\":%.3f,\"quarantined\":%s,"
        "\"quarantined_until\":%.3f,\"quarantines\":%" PRIu64 ",\"time_buckets\":[",
        dc_phase_name((dc_phase) st->phase), st->runs, st->errors, st->quota_instructions,
        st->quota_time, st->quota_memory, st->total_ms, st->p99_ms,
        st->quarantined ? "true" : "false", st->quarantined_until, st->quarantines);
    for (unsigned b = 0; b < DC_TIME_BUCKETS; b++)
        put(o, "%s%" PRIu64, b ? "," : "", st->time_buckets[b]);
    put(o, "]}");
}

/* What one Prometheus pass over the plugins prints: the samples of one metric family (the text
 * format wants a family's samples together, so there is one pass per family). */
enum { PM_RUNS = 0, PM_ERRORS, PM_QUOTA, PM_TIME, PM_QUARANTINED, PM_QUARANTINES, PM_COUNT };

static const char *const pm_head[PM_COUNT] = {
    "# HELP dynacode_plugin_runs_total Calls of the plugin in every worker.\n"
    "# TYPE dynacode_plugin_runs_total counter\n",
    "# HELP dynacode_plugin_errors_total Calls that ended in an error or a denied API.\n"
    "# TYPE dynacode_plugin_errors_total counter\n",
    "# HELP dynacode_plugin_quota_trips_total Calls stopped by a quota, by kind.\n"
    "# TYPE dynacode_plugin_quota_trips_total counter\n",
    "# HELP dynacode_plugin_time_seconds Time of the plugin's calls in every worker.\n"
    "# TYPE dynacode_plugin_time_seconds histogram\n",
    "# HELP dynacode_plugin_quarantined 1 while the plugin is quarantined (skipped).\n"
    "# TYPE dynacode_plugin_quarantined gauge\n",
    "# HELP dynacode_plugin_quarantines_total Times the plugin was quarantined.\n"
    "# TYPE dynacode_plugin_quarantines_total counter\n",
};

static const char *const pm_name[PM_COUNT] = {
    "dynacode_plugin_runs_total",        "dynacode_plugin_errors_total",
    "dynacode_plugin_quota_trips_total", "dynacode_plugin_time_seconds",
    "dynacode_plugin_quarantined",       "dynacode_plugin_quarantines_total",
};

/* name{domain="..",plugin="..",phase=".." (the caller closes the braces) */
static void prom_labels(out *o, const char *name, const dc_plugin_stats *st)
{
    put(o, "%s{domain=\"", name);
    escape(o, st->domain, 0);
    put(o, "\",plugin=\"");
    escape(o, st->plugin, 0);
    put(o, "\",phase=\"%s\"", dc_phase_name((dc_phase) st->phase));
}

/* A bucket bound in microseconds as seconds, exactly ("0.0005", "2", "+Inf"): no float. */
static const char *le_text(char buf[32], uint64_t us)
{
    if (us == UINT64_MAX)
        return "+Inf";
    uint64_t sec = us / 1000000u, frac = us % 1000000u;
    if (frac == 0) {
        snprintf(buf, 32, "%" PRIu64, sec);
        return buf;
    }
    unsigned digits = 6;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf, 32, "%" PRIu64 ".%0*" PRIu64, sec, (int) digits, frac);
    return buf;
}

static void prom_plugin(void *ud, const dc_plugin_stats *st)
{
    static const char *const kinds[] = { "instructions", "time", "memory" };
    out *o = ud;
    const char *name = pm_name[o->pass];

    switch (o->pass) {
    case PM_QUOTA: {
        uint64_t trips[3] = { st->quota_instructions, st->quota_time, st->quota_memory };
        for (int i = 0; i < 3; i++) {
            prom_labels(o, name, st);
            put(o, ",kind=\"%s\"} %" PRIu64 "\n", kinds[i], trips[i]);
        }
        return;
    }
    case PM_RUNS:
        prom_labels(o, name, st);
        put(o, "} %" PRIu64 "\n", st->runs);
        return;
    case PM_ERRORS:
        prom_labels(o, name, st);
        put(o, "} %" PRIu64 "\n", st->errors);
        return;
    case PM_TIME: {
        /* cumulative buckets; the count is their sum (runs is a counter of its own, which a
         * call in progress may have bumped already) */
        uint64_t cum = 0;
        char le[32];
        for (unsigned b = 0; b < DC_TIME_BUCKETS; b++) {
            cum += st->time_buckets[b];
            prom_labels(o, "dynacode_plugin_time_seconds_bucket", st);
            put(o, ",le=\"%s\"} %" PRIu64 "\n", le_text(le, dc_time_bucket_us(b)), cum);
        }
        prom_labels(o, "dynacode_plugin_time_seconds_sum", st);
        put(o, "} %.6f\n", st->total_ms / 1000.0);
        prom_labels(o, "dynacode_plugin_time_seconds_count", st);
        put(o, "} %" PRIu64 "\n", cum);
        return;
    }
    case PM_QUARANTINED:
        prom_labels(o, name, st);
        put(o, "} %d\n", st->quarantined ? 1 : 0);
        return;
    default:
        prom_labels(o, name, st);
        put(o, "} %" PRIu64 "\n", st->quarantines);
        return;
    }
}

static const char *problem_kind(dc_problem_kind kind)
{
    switch (kind) {
    case DC_PROBLEM_PLUGIN_LEFT_OUT:
        return "plugin_left_out";
    case DC_PROBLEM_DOMAIN_LEFT_OUT:
        return "domain_left_out";
    case DC_PROBLEM_KEPT_PREVIOUS:
        return "kept_previous";
    case DC_PROBLEM_UNKNOWN_FIELD:
        return "unknown_field";
    }
    return "unknown";
}

static uint64_t event_count(const dc_status_source *src, unsigned i)
{
    return src->events ? dc_events_count(src->events, (dc_event) i) : 0;
}

/* What the page draws besides the bundle: the store's facts, and the bundle's age then. */
typedef struct facts {
    dc_store_info si;
    dc_store_usage use;
    double age_s; /* of the bundle in force (0: none) */
} facts;

static void render_json(out *o, const dc_status_source *src, const facts *f, dc_bundle *b)
{
    const dc_store_info *si = &f->si;
    put(o, "{\"bundle\":{\"generation\":%" PRIu64 ",", si->generation);
    json_str(o, "source", si->source);
    put(o, ",");
    json_str(o, "etag", si->etag);
    put(o, ",\"fetched_at\":%.3f,", si->fetched_at);
    json_str(o, "last_error", si->last_error);
    put(o, ",\"last_error_at\":%.3f,\"snapshot_bytes\":%zu,\"age_seconds\":%.3f",
        si->last_error_at, si->snapshot_bytes, f->age_s);

    if (b) {
        int64_t version = 0;
        (void)dc_bundle_version(b, &version);
        put(o, ",\"version\":%" PRId64 ",\"enabled\":%s,\"domains\":%" PRIu32
               ",\"plugins\":%" PRIu32 ",\"problems\":[",
            version, dc_bundle_enabled(b) ? "true" : "false", dc_bundle_domain_count(b),
            dc_bundle_plugin_count(b));
        uint32_t n = dc_bundle_problem_count(b);
        for (uint32_t i = 0; i < n; i++) {
            const dc_problem *pr = dc_bundle_problem(b, i);
            put(o, "%s{", i ? "," : "");
            json_str(o, "kind", problem_kind(pr->kind));
            put(o, ",");
            json_str(o, "path", pr->path ? pr->path : "");
            put(o, ",");
            json_str(o, "domain", pr->domain ? pr->domain : "");
            put(o, ",");
            json_str(o, "plugin", pr->plugin ? pr->plugin : "");
            put(o, ",");
            json_str(o, "message", pr->message ? pr->message : "");
            put(o, "}");
        }
        put(o, "]");
    }

    put(o, "},\"poll\":{\"ok_at\":%.3f,\"failures\":%" PRIu64 "}", si->poll_ok_at,
        si->poll_failures);
    put(o,
        ",\"shm\":{\"size\":%zu,\"used\":%zu,\"free\":%zu,\"snapshot_capacity\":%zu,"
        "\"metrics_entries\":%" PRIu32 ",\"metrics_used\":%" PRIu32 "}",
        f->use.size, f->use.used, f->use.free, f->use.snapshot_capacity,
        f->use.metrics_entries, f->use.metrics_used);
    put(o, ",\"time_bucket_bounds_us\":[");
    for (unsigned i = 0; i + 1 < DC_TIME_BUCKETS; i++)
        put(o, "%s%" PRIu64, i ? "," : "", dc_time_bucket_us(i));
    put(o, "],\"events\":{");
    for (unsigned i = 0; i < DC_EVENT_COUNT; i++) {
        put(o, "%s\"%s\":%" PRIu64, i ? "," : "", dc_event_name((dc_event) i),
            event_count(src, i));
    }

    put(o, "},\"plugins\":[");
    if (src->engine) {
        o->items = 0;
        (void) dc_engine_plugin_stats(src->engine, json_plugin, o);
    }

    put(o,
        "],\"worker\":{\"pid\":%" PRId64 ",\"id\":%" PRIu32 ",\"bundle_loaded\":%s,"
        "\"live_states\":%" PRIu32 "}}\n",
        src->worker_pid, src->worker_id, b ? "true" : "false",
        src->engine ? dc_engine_live_states(src->engine) : 0);
}

/* One gauge family of a single sample. */
static void gauge(out *o, const char *name, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void gauge(out *o, const char *name, const char *help, const char *fmt, ...)
{
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s ", name, help, name, name);
    va_list ap;
    va_start(ap, fmt);
    char num[64];
    vsnprintf(num, sizeof num, fmt, ap);
    va_end(ap);
    put(o, "%s\n", num);
}

static void render_prometheus(out *o, const dc_status_source *src, const facts *f,
                              dc_bundle *b)
{
    const dc_store_info *si = &f->si;
    put(o, "# HELP dynacode_events_total Events of every worker since the shared zone was "
           "created.\n# TYPE dynacode_events_total counter\n");
    for (unsigned i = 0; i < DC_EVENT_COUNT; i++) {
        put(o, "dynacode_events_total{event=\"%s\"} %" PRIu64 "\n", dc_event_name((dc_event) i),
            event_count(src, i));
    }

    gauge(o, "dynacode_bundle_generation",
          "Generation of the bundle in the shared store (0: none yet).", "%" PRIu64,
          si->generation);
    int64_t version = 0;
    if (b)
        (void)dc_bundle_version(b, &version);
    gauge(o, "dynacode_bundle_version",
          "general.version of the bundle in force (0: none declared).", "%" PRId64, version);

    put(o, "# HELP dynacode_bundle_info Where the bundle in force came from.\n"
           "# TYPE dynacode_bundle_info gauge\ndynacode_bundle_info{source=\"");
    escape(o, si->source, 0);
    put(o, "\",etag=\"");
    escape(o, si->etag, 0);
    put(o, "\"} 1\n");

    gauge(o, "dynacode_bundle_fetched_timestamp_seconds",
          "Unix time of the fetch (or offline load) that produced the bundle in force (0: none).",
          "%.3f", si->fetched_at);
    gauge(o, "dynacode_bundle_age_seconds",
          "Seconds since the bundle in force was fetched or loaded (0: none).", "%.3f",
          f->age_s);
    gauge(o, "dynacode_bundle_plugins", "Plugins loaded from the bundle in force.",
          "%" PRIu32, b ? dc_bundle_plugin_count(b) : 0);
    gauge(o, "dynacode_bundle_domains", "Domains in the bundle in force.", "%" PRIu32,
          b ? dc_bundle_domain_count(b) : 0);
    gauge(o, "dynacode_bundle_problems",
          "Problems the loader reported for the bundle in force (plugins or domains left "
          "out...).",
          "%" PRIu32, b ? dc_bundle_problem_count(b) : 0);
    gauge(o, "dynacode_last_error_timestamp_seconds",
          "Unix time of the last fetch or load problem (0: none).", "%.3f", si->last_error_at);
    gauge(o, "dynacode_poll_last_success_timestamp_seconds",
          "Unix time of the last poll the API answered, with a bundle or not modified (0: none "
          "yet).",
          "%.3f", si->poll_ok_at);
    gauge(o, "dynacode_poll_consecutive_failures",
          "Polls failed since the API last answered.", "%" PRIu64, si->poll_failures);

    gauge(o, "dynacode_snapshot_bytes", "Size of the snapshot in force in the shared zone.",
          "%zu", si->snapshot_bytes);
    gauge(o, "dynacode_shm_size_bytes", "Size of the shared zone.", "%zu", f->use.size);
    gauge(o, "dynacode_shm_used_bytes",
          "Bytes of the shared zone the bundle in force needs: tables, and its snapshot twice "
          "(in force, and the slot the next bundle is written into).",
          "%zu", f->use.used);
    gauge(o, "dynacode_shm_free_bytes",
          "Shared zone bytes left: a snapshot may grow by about half of them.", "%zu",
          f->use.free);
    gauge(o, "dynacode_shm_snapshot_capacity_bytes",
          "The largest snapshot the shared zone holds.", "%zu", f->use.snapshot_capacity);
    gauge(o, "dynacode_shm_metrics_entries", "Per-plugin metrics entries in the shared zone.",
          "%" PRIu32, f->use.metrics_entries);
    gauge(o, "dynacode_shm_metrics_entries_used",
          "Per-plugin metrics entries in use (when all are, new plugins go uncounted).",
          "%" PRIu32, f->use.metrics_used);

    if (src->engine && b) {
        for (unsigned i = 0; i < PM_COUNT; i++) {
            put(o, "%s", pm_head[i]);
            o->pass = i;
            (void) dc_engine_plugin_stats(src->engine, prom_plugin, o);
        }
    }

    put(o,
        "# HELP dynacode_worker_live_states Plugin states alive in the worker that "
        "answered.\n# TYPE dynacode_worker_live_states gauge\n"
        "dynacode_worker_live_states{pid=\"%" PRId64 "\",worker=\"%" PRIu32 "\"} %" PRIu32 "\n",
        src->worker_pid, src->worker_id,
        src->engine ? dc_engine_live_states(src->engine) : 0);
}

dc_rc dc_status_render(const dc_status_source *src, dc_status_format fmt, char **text,
                       size_t *len)
{
    if (text) {
        *text = NULL;
    }
    if (len) {
        *len = 0;
    }
    if (src == NULL || src->store == NULL || text == NULL || len == NULL
        || (fmt != DC_STATUS_JSON && fmt != DC_STATUS_PROMETHEUS)) {
        return DC_EINVAL;
    }

    facts f;
    memset(&f, 0, sizeof f);
    dc_store_info_get(src->store, &f.si);
    dc_store_usage_get(src->store, &f.use);
    if (f.si.generation != 0 && f.si.fetched_at > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double now = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
        f.age_s = now > f.si.fetched_at ? now - f.si.fetched_at : 0;
    }

    /* The page shows the bundle the store holds now, not the one the engine last saw. */
    dc_bundle *b = NULL;
    if (src->engine) {
        (void) dc_engine_sync(src->engine, src->store);
        b = dc_engine_bundle(src->engine);
    }

    out o;
    memset(&o, 0, sizeof o);
    if (fmt == DC_STATUS_PROMETHEUS) {
        render_prometheus(&o, src, &f, b);
    } else {
        render_json(&o, src, &f, b);
    }
    if (o.failed || reserve(&o, 1) == NULL) {
        free(o.buf);
        return DC_ENOMEM;
    }
    o.buf[o.len] = '\0';
    *text = o.buf;
    *len = o.len;
    return DC_OK;
}
