/* ngx_http_dynacode_status.c - the dynacode_status page: the event counters (shared
 * by every worker), the bundle in the shared store (generation, source, ETag, fetch time, last
 * error), the per-plugin metrics and quarantine (shared too, read through the engine), and this
 * worker's state, as JSON or, with ?format=prometheus, Prometheus text.
 */
#include "ngx_http_dynacode.h"


/* A growing output buffer in the request's pool. */
typedef struct {
    ngx_pool_t  *pool;
    u_char      *start;
    u_char      *pos;
    u_char      *end;
    ngx_uint_t   failed;
    ngx_uint_t   items;    /* JSON array items written so far */
    ngx_uint_t   pass;     /* Prometheus: the metric family being written */
} ngx_http_dynacode_out_t;


static u_char *
ngx_http_dynacode_reserve(ngx_http_dynacode_out_t *o, size_t n)
{
    size_t   size, used;
    u_char  *p;

    if (o->failed) {
        return NULL;
    }

    if ((size_t) (o->end - o->pos) >= n) {
        return o->pos;
    }

    used = o->pos - o->start;
    size = (o->end - o->start) * 2;
    if (size < used + n) {
        size = used + n + 1024;
    }

    p = ngx_pnalloc(o->pool, size);
    if (p == NULL) {
        o->failed = 1;
        return NULL;
    }

    if (used) {
        ngx_memcpy(p, o->start, used);
    }

    o->start = p;
    o->pos = p + used;
    o->end = p + size;

    return o->pos;
}


/* Appends a printf-style piece (nginx's ngx_sprintf formats), at most 1 KiB. */
static void
ngx_http_dynacode_printf(ngx_http_dynacode_out_t *o, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_http_dynacode_reserve(o, 1024);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    o->pos = ngx_vslprintf(p, o->end, fmt, args);
    va_end(args);
}


/* Appends s as the inside of a JSON string (json = 1) or a Prometheus label value. */
static void
ngx_http_dynacode_escape(ngx_http_dynacode_out_t *o, const char *s, ngx_uint_t json)
{
    u_char         *p, c;
    size_t          len;
    static u_char   hex[] = "0123456789abcdef";

    if (s == NULL) {
        return;
    }

    len = ngx_strlen(s);

    p = ngx_http_dynacode_reserve(o, len * 6);
    if (p == NULL) {
        return;
    }

    while (len--) {
        c = (u_char) *s++;

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else if (c < 0x20 || c == 0x7f) {
            if (json) {
                p = ngx_cpymem(p, "\\u00", 4);
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];

            } else {
                *p++ = ' ';
            }

        } else {
            *p++ = c;
        }
    }

    o->pos = p;
}


static void
ngx_http_dynacode_json_str(ngx_http_dynacode_out_t *o, const char *key, const char *s)
{
    ngx_http_dynacode_printf(o, "\"%s\":\"", key);
    ngx_http_dynacode_escape(o, s, 1);
    ngx_http_dynacode_printf(o, "\"");
}


/* ---- per-plugin metrics ---- */

static void
ngx_http_dynacode_json_plugin(void *ud, const dc_plugin_stats *st)
{
    ngx_http_dynacode_out_t  *o = ud;

    ngx_http_dynacode_printf(o, "%s{", o->items++ ? "," : "");
    ngx_http_dynacode_json_str(o, "domain", st->domain);
    ngx_http_dynacode_printf(o, ",");
    ngx_http_dynacode_json_str(o, "plugin", st->plugin);
    ngx_http_dynacode_printf(o, ",\"phase\":\"%s\",\"runs\":%uL,\"errors\":%uL,"
                             "\"quota\":{\"instructions\":%uL,\"time\":%uL,\"memory\":%uL},"
                             "\"total_ms\":%.3f,\"p99_ms\":%.3f,\"quarantined\":%s,"
                             "\"quarantined_until\":%.3f,\"quarantines\":%uL}",
                             dc_phase_name((dc_phase) st->phase), st->runs, st->errors,
                             st->quota_instructions, st->quota_time, st->quota_memory,
                             st->total_ms, st->p99_ms, st->quarantined ? "true" : "false",
                             st->quarantined_until, st->quarantines);
}


/* What one Prometheus pass over the plugins prints: the samples of one metric family (the
 * text format wants a family's samples together, so there is one pass per family). */
typedef enum {
    NGX_HTTP_DYNACODE_PM_RUNS = 0,
    NGX_HTTP_DYNACODE_PM_ERRORS,
    NGX_HTTP_DYNACODE_PM_QUOTA,
    NGX_HTTP_DYNACODE_PM_TIME,
    NGX_HTTP_DYNACODE_PM_QUARANTINED,
    NGX_HTTP_DYNACODE_PM_QUARANTINES,
    NGX_HTTP_DYNACODE_PM_COUNT
} ngx_http_dynacode_pm_e;


static const char  *ngx_http_dynacode_pm_head[NGX_HTTP_DYNACODE_PM_COUNT] = {
    "# HELP dynacode_plugin_runs_total Calls of the plugin in every worker.\n"
    "# TYPE dynacode_plugin_runs_total counter\n",
    "# HELP dynacode_plugin_errors_total Calls that ended in an error or a denied API.\n"
    "# TYPE dynacode_plugin_errors_total counter\n",
    "# HELP dynacode_plugin_quota_trips_total Calls stopped by a quota, by kind.\n"
    "# TYPE dynacode_plugin_quota_trips_total counter\n",
    "# HELP dynacode_plugin_time_seconds Time of the plugin's calls: the 0.99 quantile "
    "(upper bound of its bucket), the total and the count.\n"
    "# TYPE dynacode_plugin_time_seconds summary\n",
    "# HELP dynacode_plugin_quarantined 1 while the plugin is quarantined (skipped).\n"
    "# TYPE dynacode_plugin_quarantined gauge\n",
    "# HELP dynacode_plugin_quarantines_total Times the plugin was quarantined.\n"
    "# TYPE dynacode_plugin_quarantines_total counter\n",
};


static const char  *ngx_http_dynacode_pm_name[NGX_HTTP_DYNACODE_PM_COUNT] = {
    "dynacode_plugin_runs_total",
    "dynacode_plugin_errors_total",
    "dynacode_plugin_quota_trips_total",
    "dynacode_plugin_time_seconds",
    "dynacode_plugin_quarantined",
    "dynacode_plugin_quarantines_total",
};


/* name{domain="..",plugin="..",phase=".." (the caller closes the braces) */
static void
ngx_http_dynacode_prom_labels(ngx_http_dynacode_out_t *o, const char *name,
    const dc_plugin_stats *st)
{
    ngx_http_dynacode_printf(o, "%s{domain=\"", name);
    ngx_http_dynacode_escape(o, st->domain, 0);
    ngx_http_dynacode_printf(o, "\",plugin=\"");
    ngx_http_dynacode_escape(o, st->plugin, 0);
    ngx_http_dynacode_printf(o, "\",phase=\"%s\"", dc_phase_name((dc_phase) st->phase));
}


static void
ngx_http_dynacode_prom_plugin(void *ud, const dc_plugin_stats *st)
{
    ngx_uint_t                i;
    const char               *name;
    ngx_http_dynacode_out_t  *o = ud;
    static const char        *kinds[] = { "instructions", "time", "memory" };
    uint64_t                  trips[3];

    name = ngx_http_dynacode_pm_name[o->pass];

    switch (o->pass) {

    case NGX_HTTP_DYNACODE_PM_QUOTA:
        trips[0] = st->quota_instructions;
        trips[1] = st->quota_time;
        trips[2] = st->quota_memory;

        for (i = 0; i < 3; i++) {
            ngx_http_dynacode_prom_labels(o, name, st);
            ngx_http_dynacode_printf(o, ",kind=\"%s\"} %uL\n", kinds[i], trips[i]);
        }

        return;

    case NGX_HTTP_DYNACODE_PM_RUNS:
        ngx_http_dynacode_prom_labels(o, name, st);
        ngx_http_dynacode_printf(o, "} %uL\n", st->runs);
        return;

    case NGX_HTTP_DYNACODE_PM_ERRORS:
        ngx_http_dynacode_prom_labels(o, name, st);
        ngx_http_dynacode_printf(o, "} %uL\n", st->errors);
        return;

    case NGX_HTTP_DYNACODE_PM_TIME:
        ngx_http_dynacode_prom_labels(o, name, st);
        ngx_http_dynacode_printf(o, ",quantile=\"0.99\"} %.6f\n", st->p99_ms / 1000.0);
        ngx_http_dynacode_prom_labels(o, "dynacode_plugin_time_seconds_sum", st);
        ngx_http_dynacode_printf(o, "} %.6f\n", st->total_ms / 1000.0);
        ngx_http_dynacode_prom_labels(o, "dynacode_plugin_time_seconds_count", st);
        ngx_http_dynacode_printf(o, "} %uL\n", st->runs);
        return;

    case NGX_HTTP_DYNACODE_PM_QUARANTINED:
        ngx_http_dynacode_prom_labels(o, name, st);
        ngx_http_dynacode_printf(o, "} %d\n", st->quarantined ? 1 : 0);
        return;

    default:
        ngx_http_dynacode_prom_labels(o, name, st);
        ngx_http_dynacode_printf(o, "} %uL\n", st->quarantines);
        return;
    }
}


static const char *
ngx_http_dynacode_problem_kind(dc_problem_kind kind)
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


static void
ngx_http_dynacode_json(ngx_http_dynacode_out_t *o, dc_store_info *si, dc_bundle *b)
{
    ngx_uint_t                   i, n;
    const dc_problem            *pr;
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    ngx_http_dynacode_printf(o, "{\"bundle\":{\"generation\":%uL,", si->generation);
    ngx_http_dynacode_json_str(o, "source", si->source);
    ngx_http_dynacode_printf(o, ",");
    ngx_http_dynacode_json_str(o, "etag", si->etag);
    ngx_http_dynacode_printf(o, ",\"fetched_at\":%.3f,", si->fetched_at);
    ngx_http_dynacode_json_str(o, "last_error", si->last_error);
    ngx_http_dynacode_printf(o, ",\"last_error_at\":%.3f,\"snapshot_bytes\":%uz",
                             si->last_error_at, si->snapshot_bytes);

    if (b) {
        ngx_http_dynacode_printf(o, ",\"enabled\":%s,\"domains\":%uD,\"plugins\":%uD,"
                                 "\"problems\":[",
                                 dc_bundle_enabled(b) ? "true" : "false",
                                 dc_bundle_domain_count(b), dc_bundle_plugin_count(b));

        n = dc_bundle_problem_count(b);
        for (i = 0; i < n; i++) {
            pr = dc_bundle_problem(b, (uint32_t) i);
            ngx_http_dynacode_printf(o, "%s{", i ? "," : "");
            ngx_http_dynacode_json_str(o, "kind", ngx_http_dynacode_problem_kind(pr->kind));
            ngx_http_dynacode_printf(o, ",");
            ngx_http_dynacode_json_str(o, "path", pr->path ? pr->path : "");
            ngx_http_dynacode_printf(o, ",");
            ngx_http_dynacode_json_str(o, "domain", pr->domain ? pr->domain : "");
            ngx_http_dynacode_printf(o, ",");
            ngx_http_dynacode_json_str(o, "plugin", pr->plugin ? pr->plugin : "");
            ngx_http_dynacode_printf(o, ",");
            ngx_http_dynacode_json_str(o, "message", pr->message ? pr->message : "");
            ngx_http_dynacode_printf(o, "}");
        }

        ngx_http_dynacode_printf(o, "]");
    }

    ngx_http_dynacode_printf(o, "},\"events\":{");

    for (i = 0; i < DC_EVENT_COUNT; i++) {
        ngx_http_dynacode_printf(o, "%s\"%s\":%uL", i ? "," : "",
                                 dc_event_name((dc_event) i),
                                 w->events ? dc_events_count(w->events, (dc_event) i) : 0);
    }

    ngx_http_dynacode_printf(o, "},\"plugins\":[");

    if (w->engine) {
        o->items = 0;
        (void) dc_engine_plugin_stats(w->engine, ngx_http_dynacode_json_plugin, o);
    }

    ngx_http_dynacode_printf(o, "],\"worker\":{\"pid\":%P,\"id\":%ui,"
                             "\"bundle_loaded\":%s,\"live_states\":%uD}}\n",
                             ngx_pid, ngx_worker, b ? "true" : "false",
                             w->engine ? dc_engine_live_states(w->engine) : 0);
}


static void
ngx_http_dynacode_prometheus(ngx_http_dynacode_out_t *o, dc_store_info *si, dc_bundle *b)
{
    ngx_uint_t                   i;
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_events_total Events of every worker since the shared zone was "
        "created.\n# TYPE dynacode_events_total counter\n");

    for (i = 0; i < DC_EVENT_COUNT; i++) {
        ngx_http_dynacode_printf(o, "dynacode_events_total{event=\"%s\"} %uL\n",
                                 dc_event_name((dc_event) i),
                                 w->events ? dc_events_count(w->events, (dc_event) i) : 0);
    }

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_bundle_generation Generation of the bundle in the shared store "
        "(0: none yet).\n# TYPE dynacode_bundle_generation gauge\n"
        "dynacode_bundle_generation %uL\n", si->generation);

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_bundle_info Where the bundle in force came from.\n"
        "# TYPE dynacode_bundle_info gauge\ndynacode_bundle_info{source=\"");
    ngx_http_dynacode_escape(o, si->source, 0);
    ngx_http_dynacode_printf(o, "\",etag=\"");
    ngx_http_dynacode_escape(o, si->etag, 0);
    ngx_http_dynacode_printf(o, "\"} 1\n");

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_bundle_fetched_at_seconds Unix time of the fetch that produced "
        "the bundle.\n# TYPE dynacode_bundle_fetched_at_seconds gauge\n"
        "dynacode_bundle_fetched_at_seconds %.3f\n", si->fetched_at);

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_last_error_at_seconds Unix time of the last fetch or load "
        "problem (0: none).\n# TYPE dynacode_last_error_at_seconds gauge\n"
        "dynacode_last_error_at_seconds %.3f\n", si->last_error_at);

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_snapshot_bytes Size of the snapshot in the shared store.\n"
        "# TYPE dynacode_snapshot_bytes gauge\ndynacode_snapshot_bytes %uz\n",
        si->snapshot_bytes);

    if (b) {
        ngx_http_dynacode_printf(o,
            "# HELP dynacode_bundle_plugins Plugins loaded in the bundle in force.\n"
            "# TYPE dynacode_bundle_plugins gauge\ndynacode_bundle_plugins %uD\n"
            "# HELP dynacode_bundle_domains Domains in the bundle in force.\n"
            "# TYPE dynacode_bundle_domains gauge\ndynacode_bundle_domains %uD\n"
            "# HELP dynacode_bundle_problems Problems the loader reported (plugins or "
            "domains left out...).\n# TYPE dynacode_bundle_problems gauge\n"
            "dynacode_bundle_problems %uD\n",
            dc_bundle_plugin_count(b), dc_bundle_domain_count(b),
            dc_bundle_problem_count(b));
    }

    if (w->engine && b) {
        for (i = 0; i < NGX_HTTP_DYNACODE_PM_COUNT; i++) {
            ngx_http_dynacode_printf(o, "%s", ngx_http_dynacode_pm_head[i]);
            o->pass = i;
            (void) dc_engine_plugin_stats(w->engine, ngx_http_dynacode_prom_plugin, o);
        }
    }

    ngx_http_dynacode_printf(o,
        "# HELP dynacode_worker_live_states Plugin states alive in the worker that "
        "answered.\n# TYPE dynacode_worker_live_states gauge\n"
        "dynacode_worker_live_states{pid=\"%P\",worker=\"%ui\"} %uD\n",
        ngx_pid, ngx_worker, w->engine ? dc_engine_live_states(w->engine) : 0);
}


ngx_int_t
ngx_http_dynacode_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    format;
    ngx_buf_t                   *b;
    dc_bundle                   *bundle;
    ngx_uint_t                   prometheus;
    ngx_chain_t                  out;
    dc_store_info                si;
    ngx_http_dynacode_out_t      o;
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (w->store == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    prometheus = ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
                 && format.len == 10
                 && ngx_strncmp(format.data, "prometheus", 10) == 0;

    ngx_memzero(&si, sizeof(dc_store_info));
    dc_store_info_get(w->store, &si);

    bundle = NULL;
    if (w->engine) {
        (void) dc_engine_sync(w->engine, w->store);
        bundle = dc_engine_bundle(w->engine);
    }

    ngx_memzero(&o, sizeof(ngx_http_dynacode_out_t));
    o.pool = r->pool;

    if (prometheus) {
        ngx_http_dynacode_prometheus(&o, &si, bundle);
        ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");

    } else {
        ngx_http_dynacode_json(&o, &si, bundle);
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = o.pos - o.start;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->start = o.start;
    b->pos = o.start;
    b->last = o.pos;
    b->end = o.pos;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
