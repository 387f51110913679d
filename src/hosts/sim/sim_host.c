/* sim_host.c - the dc_host callbacks of the simulated request other than the variables:
 * request and response headers, status, output, the path and method, the log, the request
 * facts, the end of the body and the request body; and the table that gathers them.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_priv.h"

/* ---- headers, status, output ---- */

static int sim_req_headers(void *hreq, dc_each_header_cb each, void *arg)
{
    dc_sim *s = hreq;
    for (size_t i = 0; i < s->req.n; i++) {
        dc_str n = {s->req.v[i].name, strlen(s->req.v[i].name)};
        dc_str v = {s->req.v[i].value, strlen(s->req.v[i].value)};
        if (each(arg, n, v))
            break;
    }
    return 0;
}

static int sim_req_header_set(void *hreq, dc_str name, const dc_str *values, size_t n)
{
    dc_sim *s = hreq;
    if (!dc_sim_header_ok(name, values, n))
        return -1;
    return dc_sim_hdrs_set(&s->req, name, values, n);
}

static int sim_resp_header_get(void *hreq, dc_str name, dc_each_value_cb each, void *arg)
{
    dc_sim *s = hreq;
    for (size_t i = 0; i < s->resp.n; i++) {
        if (dc_sim_name_eq(s->resp.v[i].name, name.data, name.len)) {
            dc_str v = {s->resp.v[i].value, strlen(s->resp.v[i].value)};
            if (each(arg, v))
                break;
        }
    }
    return 0;
}

static int sim_resp_header_set(void *hreq, dc_str name, const dc_str *values, size_t n)
{
    dc_sim *s = hreq;
    if (s->headers_locked || !dc_sim_header_ok(name, values, n))
        return -1;
    return dc_sim_hdrs_set(&s->resp, name, values, n);
}

static int sim_status_get(void *hreq)
{
    return ((dc_sim *)hreq)->status;
}

static int sim_status_set(void *hreq, int status)
{
    dc_sim *s = hreq;
    if (s->headers_locked || status < 100 || status > 999)
        return -1;
    s->status = status;
    return 0;
}

static int sim_headers_sent(void *hreq)
{
    return ((dc_sim *)hreq)->headers_locked;
}

static int sim_output(void *hreq, const char *data, size_t len)
{
    dc_sim *s = hreq;
    if (!s->output_started) {
        /* The first output sends the response header, as ngx.say does in nginx. */
        s->output_started = 1;
        if (s->status == 0)
            s->status = 200;
        /* nginx's default_type, given when the header goes out without one */
        if (!dc_sim_hdrs_get(&s->resp, "Content-Type", 12) &&
            dc_sim_hdrs_add(&s->resp, "Content-Type", 12, "text/plain", 10) != 0)
            return -1;
        s->headers_locked = 1;
    }
    /* each call that writes something is one chunk through the body filter, as each
     * ngx.say/ngx.print is one output in nginx (an empty one sends nothing) */
    if (len == 0)
        return 0;
    size_t *c = dc_sim_room(s->cuts, &s->capcuts, s->ncuts, sizeof *c, 16);
    if (!c)
        return -1;
    s->cuts = c;
    if (dc_buf_append(&s->body, data, len) != 0)
        return -1;
    s->cuts[s->ncuts++] = s->body.len;
    return 0;
}

/* *dst (NUL-terminated, owned) becomes a copy of v: 0, or -1 with *dst unchanged. */
static int replace_text(char **dst, dc_str v)
{
    char *c = dc_strndup(v.data, v.len);
    if (!c)
        return -1;
    free(*dst);
    *dst = c;
    return 0;
}

/* ngx.req.set_uri: the path part of the request changes (the query string stays). */
static int sim_set_uri(void *hreq, dc_str uri, int jump)
{
    dc_sim *s = hreq;
    (void)jump;
    return dc_sim_path_ok(uri) ? replace_text(&s->path, uri) : -1;
}

static const char *const level_names[] = {
    "stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

static void sim_log(void *hreq, int level, const char *msg, size_t len)
{
    dc_sim *s = hreq;
    const char *lv = level >= 0 && level <= 8 ? level_names[level] : "notice";
    /* lines come escaped from the API; a stray control byte is escaped again here */
    size_t start = s->log.len;
    int bad = 0;
    for (size_t i = 0; i < len && !bad; i++)
        bad = dc_sim_is_ctl((unsigned char)msg[i]);
    if (dc_buf_printf(&s->log, "%s ", lv) != 0)
        return;
    size_t at = s->log.len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (!bad) {
            if (dc_buf_append(&s->log, msg, len) != 0) {
                s->log.len = start;
                return;
            }
            break;
        }
        int rc = dc_sim_is_ctl(c) ? dc_buf_printf(&s->log, "\\x%02x", c)
                                  : dc_buf_append(&s->log, &msg[i], 1);
        if (rc != 0) {
            s->log.len = start;
            return;
        }
    }
    /* kept NUL-terminated (not counted): dc_sim_log is a C string */
    if (dc_buf_append(&s->log, "\n", 1) != 0 || dc_buf_reserve(&s->log, 1) != 0) {
        s->log.len = start;
        if (s->log.data)
            s->log.data[start] = '\0';
        return;
    }
    s->log.data[s->log.len] = '\0';
    if (s->logf)
        fprintf(s->logf, "[%s] %.*s", lv, (int)(s->log.len - at), s->log.data + at);
}

/* ---- request facts, method, the header and the end of the body ---- */

static double sim_start_time(void *hreq)
{
    return ((dc_sim *)hreq)->start_time;
}

static int sim_http_version(void *hreq)
{
    (void)hreq;
    return 1001; /* the request line the simulation stands for is HTTP/1.1 */
}

static int sim_is_internal(void *hreq)
{
    (void)hreq;
    return 0;
}

static int sim_set_method(void *hreq, int method, dc_str name)
{
    dc_sim *s = hreq;
    (void)method;
    return replace_text(&s->method, name);
}

/* As nginx keeps them: Content-Type apart from the others (so first, in lower case), then the
 * list in order. */
static int sim_resp_headers(void *hreq, dc_each_header_cb each, void *arg)
{
    dc_sim *s = hreq;
    const char *ct = dc_sim_hdrs_get(&s->resp, "Content-Type", 12);
    if (ct) {
        dc_str n = {"content-type", 12}, v = {ct, strlen(ct)};
        if (each(arg, n, v))
            return 0;
    }
    for (size_t i = 0; i < s->resp.n; i++) {
        if (strcasecmp(s->resp.v[i].name, "Content-Type") == 0)
            continue;
        dc_str n = {s->resp.v[i].name, strlen(s->resp.v[i].name)};
        dc_str v = {s->resp.v[i].value, strlen(s->resp.v[i].value)};
        if (each(arg, n, v))
            break;
    }
    return 0;
}

static int sim_send_headers(void *hreq)
{
    return sim_output(hreq, "", 0);
}

static int sim_eof(void *hreq)
{
    dc_sim *s = hreq;
    if (sim_output(hreq, "", 0) != 0)
        return -1;
    s->eof = 1;
    return 0;
}

static int sim_eof_seen(void *hreq)
{
    return ((dc_sim *)hreq)->eof;
}

/* ngx.worker.count(): the command and the tests are one process serving requests. */
static int sim_worker_count(void *hreq)
{
    (void)hreq;
    return 1;
}

/* ---- the request body ---- */

static int sim_read_body(void *hreq)
{
    ((dc_sim *)hreq)->req_body_read = 1;
    return 0;
}

/* -1 before read_body, 0 no body, 1 in memory, 2 kept in a temporary file as nginx does with
 * a body over client_body_buffer_size */
static int sim_req_body(void *hreq, dc_str *data)
{
    dc_sim *s = hreq;
    if (!s->req_body_read)
        return -1;
    if (!s->has_req_body)
        return 0;
    if (s->req_body.len > SIM_BODY_BUFFER_SIZE)
        return 2;
    data->data = s->req_body.data ? s->req_body.data : "";
    data->len = s->req_body.len;
    return 1;
}

static const dc_host sim_host = {
    .var_get = dc_sim_var_get,
    .var_set = dc_sim_var_set,
    .req_headers = sim_req_headers,
    .req_header_set = sim_req_header_set,
    .resp_header_get = sim_resp_header_get,
    .resp_header_set = sim_resp_header_set,
    .status_get = sim_status_get,
    .status_set = sim_status_set,
    .headers_sent = sim_headers_sent,
    .output = sim_output,
    .set_uri = sim_set_uri,
    .log = sim_log,
    .start_time = sim_start_time,
    .http_version = sim_http_version,
    .is_internal = sim_is_internal,
    .set_method = sim_set_method,
    .resp_headers = sim_resp_headers,
    .send_headers = sim_send_headers,
    .eof = sim_eof,
    .eof_seen = sim_eof_seen,
    .worker_count = sim_worker_count,
    .read_body = sim_read_body,
    .req_body = sim_req_body,
};

const dc_host *dc_sim_host(void)
{
    return &sim_host;
}
