/* sim.c - the simulated request: a dc_host over an in-memory request and response, and the walk
 * of one request through the phases as nginx takes it (rewrite, access, content or upstream,
 * header filter, body filter, log), with nginx's error pages for ngx.exit in rewrite/access.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "bundle.h"

typedef struct sim_hdr {
    char *name;
    char *value;
} sim_hdr;

typedef struct sim_hdrs {
    sim_hdr *v;
    size_t n, cap;
} sim_hdrs;

struct dc_sim {
    char *host, *method, *request_uri, *path, *args, *remote_addr;
    sim_hdrs req, resp;
    int status;
    int headers_locked;      /* ngx.header can no longer change */
    int output_started;      /* content wrote something */
    dc_buf body;             /* response body before the body filter */
    dc_buf final_body;       /* after the body filter */
    int upstream_status;
    dc_buf upstream_body;
    dc_buf log;
    FILE *logf;
    char scratch[32];        /* numbers handed out by var_get */
    double start_time;       /* when the request was made (seconds, milliseconds kept) */
    int eof;                 /* ngx.eof ran: the body is over */
    int header_only;         /* HEAD, 304, 204: the header goes out, the body does not */
    int from_upstream;       /* the answer is the upstream's (a static answer) */
    size_t *cuts, ncuts, capcuts;   /* where each output call ended, in body */
    size_t *fcuts, nfcuts, capfcuts; /* where each body filter output ended, in final_body */
    dc_buf vbuf;             /* longer values handed out by var_get */
    dc_buf req_body;         /* the request body (--body) */
    int has_req_body;
    int req_body_read;       /* ngx.req.read_body ran */
};

/* nginx's defaults the simulation stands for: client_body_buffer_size (a body over it is kept
 * in a temporary file, out of reach of ngx.req.get_body_data) and client_max_body_size (a
 * body over it gets 413 before any phase). */
#define SIM_BODY_BUFFER_SIZE 16384
#define SIM_MAX_BODY_SIZE (1024 * 1024)

/* ---- what plugins hand over, checked again as nginx's host does ---- */

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* No control byte (tab too when !tab_ok). */
static int clean(dc_str v, int tab_ok)
{
    for (size_t i = 0; i < v.len; i++)
        if (is_ctl((unsigned char)v.data[i]) && !(tab_ok && v.data[i] == '\t'))
            return 0;
    return 1;
}

static int header_ok(dc_str name, const dc_str *values, size_t n)
{
    if (name.len == 0 || !clean(name, 0) || memchr(name.data, ':', name.len) ||
        memchr(name.data, ' ', name.len))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!clean(values[i], 1))
            return 0;
    return 1;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A path as nginx may take it: starts with '/'; %XX-decoded, no "." or ".." segment, no
 * control byte, NUL or backslash. */
static int path_ok(dc_str u)
{
    if (u.len == 0 || u.data[0] != '/')
        return 0;
    size_t seg = 0, dots = 0;
    for (size_t i = 0; i <= u.len; i++) {
        int c = i < u.len ? (unsigned char)u.data[i] : '/';
        if (i < u.len && is_ctl((unsigned char)c))
            return 0;
        if (c == '%' && i + 2 < u.len && hexval((unsigned char)u.data[i + 1]) >= 0 &&
            hexval((unsigned char)u.data[i + 2]) >= 0) {
            c = hexval((unsigned char)u.data[i + 1]) * 16 + hexval((unsigned char)u.data[i + 2]);
            i += 2;
            if (is_ctl((unsigned char)c))
                return 0;
        }
        if (c == '\\')
            return 0;
        if (c == '/') {
            if (seg > 0 && seg == dots && dots <= 2)
                return 0;
            seg = dots = 0;
            continue;
        }
        seg++;
        dots += c == '.';
    }
    return 1;
}

/* ---- header lists ---- */

static int hdrs_add(sim_hdrs *h, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        sim_hdr *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    char *n = dc_strndup(name, nlen), *v = dc_strndup(val, vlen);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    h->v[h->n++] = (sim_hdr){n, v};
    return 0;
}

static int name_eq(const char *a, const char *b, size_t blen)
{
    return strlen(a) == blen && strncasecmp(a, b, blen) == 0;
}

static void hdrs_remove(sim_hdrs *h, const char *name, size_t nlen)
{
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (name_eq(h->v[i].name, name, nlen)) {
            free(h->v[i].name);
            free(h->v[i].value);
        } else {
            h->v[j++] = h->v[i];
        }
    }
    h->n = j;
}

static int hdrs_set(sim_hdrs *h, dc_str name, const dc_str *values, size_t n)
{
    hdrs_remove(h, name.data, name.len);
    for (size_t i = 0; i < n; i++)
        if (hdrs_add(h, name.data, name.len, values[i].data, values[i].len) != 0)
            return -1;
    return 0;
}

static const char *hdrs_get(const sim_hdrs *h, const char *name, size_t nlen)
{
    for (size_t i = 0; i < h->n; i++)
        if (name_eq(h->v[i].name, name, nlen))
            return h->v[i].value;
    return NULL;
}

static void hdrs_free(sim_hdrs *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

/* ---- variables, as nginx names them ---- */

/* Finds key in a "k=v&k2=v2" (sep '&') or "k=v; k2=v2" (sep ';') list; raw value. */
static int find_pair(const char *list, char sep, const char *key, size_t klen, dc_str *val)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == sep)
            p++;
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        if (nlen == klen && strncasecmp(p, key, klen) == 0) {
            val->data = eq ? eq + 1 : p + len;
            val->len = eq ? len - nlen - 1 : 0;
            return 1;
        }
        p = end;
    }
    return 0;
}

/* Header name from a variable suffix: "user_agent" matches "User-Agent". */
static const char *hdr_by_var(const sim_hdrs *h, const char *suffix, size_t len)
{
    for (size_t i = 0; i < h->n; i++) {
        const char *n = h->v[i].name;
        if (strlen(n) != len)
            continue;
        size_t k = 0;
        while (k < len) {
            char a = (char)tolower((unsigned char)n[k]), b = suffix[k];
            if (a == '-')
                a = '_';
            if (a != (char)tolower((unsigned char)b))
                break;
            k++;
        }
        if (k == len)
            return h->v[i].value;
    }
    return NULL;
}

static int put(dc_str *val, const char *s);

/* Every value of the header whose variable suffix is var, joined by sep; 0 when none. */
static int join_hdr(dc_sim *s, const sim_hdrs *h, const char *var, const char *sep, dc_str *val)
{
    size_t vlen = strlen(var);
    int found = 0;
    s->vbuf.len = 0;
    for (size_t i = 0; i < h->n; i++) {
        const char *n = h->v[i].name;
        if (strlen(n) != vlen)
            continue;
        size_t k = 0;
        while (k < vlen && (n[k] == '-' ? '_' : tolower((unsigned char)n[k])) == var[k])
            k++;
        if (k < vlen)
            continue;
        if ((found && dc_buf_append(&s->vbuf, sep, strlen(sep)) != 0) ||
            dc_buf_append(&s->vbuf, h->v[i].value, strlen(h->v[i].value)) != 0)
            return -1;
        found = 1;
    }
    if (!found)
        return 0;
    val->data = s->vbuf.data ? s->vbuf.data : "";
    val->len = s->vbuf.len;
    return 1;
}

static int put_vbuf(dc_sim *s, dc_str *val)
{
    if (!s->vbuf.data)
        return -1;
    val->data = s->vbuf.data;
    val->len = s->vbuf.len;
    return 1;
}

/* The core variables nginx has that a plugin may read and the fields above do not cover:
 * 1 and *val, 0 when name is none of them, -1 on no memory. */
static int core_var(dc_sim *s, dc_str name, dc_str *val)
{
    struct timespec ts;
    struct tm tm;
    char t[64];
    s->vbuf.len = 0;
    if (name_eq("pid", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%ld", (long)getpid()) ? -1 : put_vbuf(s, val);
    if (name_eq("hostname", name.data, name.len)) {
        if (gethostname(t, sizeof t - 1) != 0)
            strcpy(t, "localhost");
        t[sizeof t - 1] = '\0';
        return dc_buf_printf(&s->vbuf, "%s", t) ? -1 : put_vbuf(s, val);
    }
    if (name_eq("nginx_version", name.data, name.len))
        return put(val, "1.22.1");
    if (name_eq("server_addr", name.data, name.len))
        return put(val, "127.0.0.1");
    if (name_eq("server_port", name.data, name.len))
        return put(val, "80");
    if (name_eq("remote_port", name.data, name.len))
        return put(val, "40000");
    if (name_eq("https", name.data, name.len))
        return put(val, "");
    if (name_eq("connection", name.data, name.len) ||
        name_eq("connection_requests", name.data, name.len))
        return put(val, "1");
    if (name_eq("request", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%s %s HTTP/1.1", s->method, s->request_uri)
                   ? -1 : put_vbuf(s, val);
    if (name_eq("request_length", name.data, name.len)) {
        size_t n = strlen(s->method) + strlen(s->request_uri) + 12;
        for (size_t i = 0; i < s->req.n; i++)
            n += strlen(s->req.v[i].name) + 2 + strlen(s->req.v[i].value) + 2;
        n += 2 + (s->has_req_body ? s->req_body.len : 0);
        return dc_buf_printf(&s->vbuf, "%zu", n) ? -1 : put_vbuf(s, val);
    }
    if (name_eq("body_bytes_sent", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%zu", s->header_only ? (size_t)0 : s->final_body.len)
                   ? -1 : put_vbuf(s, val);
    if (name_eq("request_body", name.data, name.len)) {
        if (!s->req_body_read || !s->has_req_body || s->req_body.len > SIM_BODY_BUFFER_SIZE)
            return 0;
        val->data = s->req_body.data;
        val->len = s->req_body.len;
        return 1;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    if (name_eq("msec", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%lld.%03ld", (long long)ts.tv_sec,
                             ts.tv_nsec / 1000000) ? -1 : put_vbuf(s, val);
    if (name_eq("request_time", name.data, name.len)) {
        double d = (double)ts.tv_sec + ts.tv_nsec / 1e9 - s->start_time;
        return dc_buf_printf(&s->vbuf, "%.3f", d < 0 ? 0.0 : d) ? -1 : put_vbuf(s, val);
    }
    int local = name_eq("time_local", name.data, name.len);
    if (local || name_eq("time_iso8601", name.data, name.len)) {
        localtime_r(&ts.tv_sec, &tm);
        if (!strftime(t, sizeof t, local ? "%d/%b/%Y:%H:%M:%S %z" : "%Y-%m-%dT%H:%M:%S%z",
                      &tm))
            return 0;
        if (!local) { /* nginx writes the offset as +hh:mm */
            size_t l = strlen(t);
            memmove(t + l - 1, t + l - 2, 3);
            t[l - 2] = ':';
        }
        return dc_buf_printf(&s->vbuf, "%s", t) ? -1 : put_vbuf(s, val);
    }
    return 0;
}

static int has_prefix(dc_str s, const char *pre, size_t *plen)
{
    *plen = strlen(pre);
    return s.len > *plen && memcmp(s.data, pre, *plen) == 0;
}

static int put(dc_str *val, const char *s)
{
    if (!s)
        return 0;
    val->data = s;
    val->len = strlen(s);
    return 1;
}

static int sim_var_get(void *hreq, dc_str name, dc_str *val)
{
    dc_sim *s = hreq;
    size_t pl;
    if (has_prefix(name, "arg_", &pl))
        return s->args && find_pair(s->args, '&', name.data + pl, name.len - pl, val);
    if (has_prefix(name, "cookie_", &pl)) {
        const char *c = hdrs_get(&s->req, "Cookie", 6);
        return c && find_pair(c, ';', name.data + pl, name.len - pl, val);
    }
    /* nginx 1.22 joins every value only for the headers it keeps as lists (the cookies and
     * X-Forwarded-For of the request; Cache-Control and Link of the response); any other
     * header variable is its first value */
    if (has_prefix(name, "http_", &pl)) {
        if (name_eq("http_cookie", name.data, name.len))
            return join_hdr(s, &s->req, "cookie", "; ", val);
        if (name_eq("http_x_forwarded_for", name.data, name.len))
            return join_hdr(s, &s->req, "x_forwarded_for", ", ", val);
        return put(val, hdr_by_var(&s->req, name.data + pl, name.len - pl));
    }
    if (has_prefix(name, "sent_http_", &pl)) {
        if (name_eq("sent_http_cache_control", name.data, name.len))
            return join_hdr(s, &s->resp, "cache_control", ", ", val);
        if (name_eq("sent_http_link", name.data, name.len))
            return join_hdr(s, &s->resp, "link", ", ", val);
        return put(val, hdr_by_var(&s->resp, name.data + pl, name.len - pl));
    }
    int core = core_var(s, name, val);
    if (core != 0)
        return core;

    static const struct { const char *name; size_t off; } fields[] = {
        {"host", offsetof(dc_sim, host)},
        {"server_name", offsetof(dc_sim, host)},
        {"request_method", offsetof(dc_sim, method)},
        {"request_uri", offsetof(dc_sim, request_uri)},
        {"uri", offsetof(dc_sim, path)},
        {"document_uri", offsetof(dc_sim, path)},
        {"args", offsetof(dc_sim, args)},
        {"query_string", offsetof(dc_sim, args)},
        {"remote_addr", offsetof(dc_sim, remote_addr)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (name_eq(fields[i].name, name.data, name.len))
            return put(val, *(char **)((char *)s + fields[i].off));
    if (name_eq("scheme", name.data, name.len))
        return put(val, "http");
    if (name_eq("server_protocol", name.data, name.len))
        return put(val, "HTTP/1.1");
    if (name_eq("is_args", name.data, name.len))
        return put(val, s->args && *s->args ? "?" : "");
    if (name_eq("status", name.data, name.len)) {
        snprintf(s->scratch, sizeof s->scratch, "%03d", s->status);
        return put(val, s->scratch);
    }
    if (name_eq("content_type", name.data, name.len))
        return put(val, hdrs_get(&s->req, "Content-Type", 12));
    if (name_eq("content_length", name.data, name.len))
        return put(val, hdrs_get(&s->req, "Content-Length", 14));
    return 0;
}

static int sim_var_set(void *hreq, dc_str name, dc_str val)
{
    dc_sim *s = hreq;
    if (!name_eq("args", name.data, name.len) || (val.data && !clean(val, 0)))
        return -1;
    char *a = val.data ? dc_strndup(val.data, val.len) : NULL;
    if (val.data && !a)
        return -1;
    free(s->args);
    s->args = a;
    return 0;
}

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
    if (!header_ok(name, values, n))
        return -1;
    return hdrs_set(&s->req, name, values, n);
}

static int sim_resp_header_get(void *hreq, dc_str name, dc_each_value_cb each, void *arg)
{
    dc_sim *s = hreq;
    for (size_t i = 0; i < s->resp.n; i++) {
        if (name_eq(s->resp.v[i].name, name.data, name.len)) {
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
    if (s->headers_locked || !header_ok(name, values, n))
        return -1;
    return hdrs_set(&s->resp, name, values, n);
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
        if (!hdrs_get(&s->resp, "Content-Type", 12) &&
            hdrs_add(&s->resp, "Content-Type", 12, "text/plain", 10) != 0)
            return -1;
        s->headers_locked = 1;
    }
    /* each call that writes something is one chunk through the body filter, as each
     * ngx.say/ngx.print is one output in nginx (an empty one sends nothing) */
    if (len == 0)
        return 0;
    if (s->ncuts == s->capcuts) {
        size_t cap = s->capcuts ? s->capcuts * 2 : 16;
        size_t *c = realloc(s->cuts, cap * sizeof *c);
        if (!c)
            return -1;
        s->cuts = c;
        s->capcuts = cap;
    }
    if (dc_buf_append(&s->body, data, len) != 0)
        return -1;
    s->cuts[s->ncuts++] = s->body.len;
    return 0;
}

/* ngx.req.set_uri: the path part of the request changes (the query string stays). */
static int sim_set_uri(void *hreq, dc_str uri, int jump)
{
    dc_sim *s = hreq;
    (void)jump;
    if (!path_ok(uri))
        return -1;
    char *p = dc_strndup(uri.data, uri.len);
    if (!p)
        return -1;
    free(s->path);
    s->path = p;
    return 0;
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
        bad = is_ctl((unsigned char)msg[i]);
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
        int rc = is_ctl(c) ? dc_buf_printf(&s->log, "\\x%02x", c)
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
    char *m = dc_strndup(name.data, name.len);
    if (!m)
        return -1;
    free(s->method);
    s->method = m;
    return 0;
}

/* As nginx keeps them: Content-Type apart from the others (so first, in lower case), then the
 * list in order. */
static int sim_resp_headers(void *hreq, dc_each_header_cb each, void *arg)
{
    dc_sim *s = hreq;
    const char *ct = hdrs_get(&s->resp, "Content-Type", 12);
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
    .var_get = sim_var_get,
    .var_set = sim_var_set,
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

/* ---- construction ---- */

static char *lower_host(const char *h)
{
    /* $host: lower case, without the port */
    size_t n = strcspn(h, ":");
    char *p = dc_strndup(h, n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (char)tolower((unsigned char)p[i]);
    return p;
}

static int add_header_line(dc_sim *s, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return -1;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return hdrs_add(&s->req, line, (size_t)(colon - line), v, strlen(v));
}

dc_sim *dc_sim_new(const dc_sim_opts *o)
{
    if (!o || !o->host || !*o->host)
        return NULL;
    dc_sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const char *uri = o->uri && *o->uri ? o->uri : "/";
    const char *q = strchr(uri, '?');
    s->host = lower_host(o->host);
    s->method = strdup(o->method ? o->method : "GET");
    s->request_uri = strdup(uri);
    s->path = q ? dc_strndup(uri, (size_t)(q - uri)) : strdup(uri);
    s->args = q ? strdup(q + 1) : NULL;
    s->remote_addr = strdup(o->remote_addr ? o->remote_addr : "127.0.0.1");
    s->upstream_status = o->upstream_status ? o->upstream_status : 200;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->start_time = (double)ts.tv_sec + floor((double)ts.tv_nsec / 1e6) / 1000.0;
    int bad = !s->host || !s->method || !s->request_uri || !s->path || (q && !s->args) ||
              !s->remote_addr;
    s->header_only = strcmp(s->method ? s->method : "", "HEAD") == 0;
    if (!bad && o->body) {
        s->has_req_body = 1;
        if (o->body_len)
            bad = dc_buf_append(&s->req_body, o->body, o->body_len) != 0;
    }
    if (!bad && o->upstream_body)
        bad = dc_buf_append(&s->upstream_body, o->upstream_body, o->upstream_body_len) != 0;
    if (!bad && !hdrs_get(&s->req, "Host", 4))
        bad = hdrs_add(&s->req, "Host", 4, o->host, strlen(o->host)) != 0;
    for (size_t i = 0; !bad && i < o->nheaders; i++) {
        if (strncasecmp(o->headers[i], "Host:", 5) == 0)
            hdrs_remove(&s->req, "Host", 4);
        bad = add_header_line(s, o->headers[i]) != 0;
    }
    /* a body comes with its length, as a client sends it */
    if (!bad && s->has_req_body && !hdrs_get(&s->req, "Content-Length", 14)) {
        char n[32];
        snprintf(n, sizeof n, "%zu", s->req_body.len);
        bad = hdrs_add(&s->req, "Content-Length", 14, n, strlen(n)) != 0;
    }
    if (bad) {
        dc_sim_free(s);
        return NULL;
    }
    return s;
}

void dc_sim_free(dc_sim *s)
{
    if (!s)
        return;
    free(s->host);
    free(s->method);
    free(s->request_uri);
    free(s->path);
    free(s->args);
    free(s->remote_addr);
    hdrs_free(&s->req);
    hdrs_free(&s->resp);
    dc_buf_free(&s->body);
    dc_buf_free(&s->final_body);
    dc_buf_free(&s->upstream_body);
    dc_buf_free(&s->log);
    dc_buf_free(&s->vbuf);
    dc_buf_free(&s->req_body);
    free(s->cuts);
    free(s->fcuts);
    free(s);
}

void dc_sim_set_log_stream(dc_sim *s, FILE *f)
{
    s->logf = f;
}

/* ---- the walk ---- */

/* The reason phrase of nginx's status line ("" for a code it has none for). */
static const char *reason(int status)
{
    static const struct { int code; const char *text; } r[] = {
        {200, "OK"}, {201, "Created"}, {202, "Accepted"}, {204, "No Content"},
        {206, "Partial Content"}, {301, "Moved Permanently"}, {302, "Moved Temporarily"},
        {303, "See Other"}, {304, "Not Modified"}, {307, "Temporary Redirect"},
        {308, "Permanent Redirect"}, {400, "Bad Request"}, {401, "Unauthorized"},
        {402, "Payment Required"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Not Allowed"}, {406, "Not Acceptable"}, {408, "Request Time-out"},
        {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
        {412, "Precondition Failed"}, {413, "Request Entity Too Large"},
        {414, "Request-URI Too Large"}, {415, "Unsupported Media Type"},
        {416, "Requested Range Not Satisfiable"}, {421, "Misdirected Request"},
        {429, "Too Many Requests"}, {500, "Internal Server Error"},
        {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Temporarily Unavailable"},
        {504, "Gateway Time-out"}, {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].code == status)
            return r[i].text;
    return "";
}

/* The title of nginx's own page for status, or NULL when nginx has no page for it. The titles
 * are not always the status line's phrase (302 "Found", 401 "Authorization Required"). */
static const char *page_title(int status)
{
    static const struct { int code; const char *text; } p[] = {
        {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
        {307, "Temporary Redirect"}, {308, "Permanent Redirect"}, {400, "Bad Request"},
        {401, "Authorization Required"}, {402, "Payment Required"}, {403, "Forbidden"},
        {404, "Not Found"}, {405, "Not Allowed"}, {406, "Not Acceptable"},
        {408, "Request Time-out"}, {409, "Conflict"}, {410, "Gone"},
        {411, "Length Required"}, {412, "Precondition Failed"},
        {413, "Request Entity Too Large"}, {414, "Request-URI Too Large"},
        {415, "Unsupported Media Type"}, {416, "Requested Range Not Satisfiable"},
        {421, "Misdirected Request"}, {429, "Too Many Requests"},
        {500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
        {503, "Service Temporarily Unavailable"}, {504, "Gateway Time-out"},
        {505, "HTTP Version Not Supported"}, {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i].code == status)
            return p[i].text;
    return NULL;
}

static int set_header_str(dc_sim *s, const char *name, const char *value)
{
    dc_str n = {name, strlen(name)}, v = {value, strlen(value)};
    return hdrs_set(&s->resp, n, &v, 1);
}

static int set_length(dc_sim *s, size_t len)
{
    char n[32];
    snprintf(n, sizeof n, "%zu", len);
    return set_header_str(s, "Content-Length", n);
}

/* The whole body so far is one chunk (an answer nginx makes in one buffer). */
static int one_chunk(dc_sim *s)
{
    s->ncuts = 0;
    if (s->body.len == 0)
        return 0;
    if (!s->cuts) {
        s->cuts = malloc(16 * sizeof *s->cuts);
        if (!s->cuts)
            return -1;
        s->capcuts = 16;
    }
    s->cuts[s->ncuts++] = s->body.len;
    return 0;
}

/* Runs the plugins of phase; a plugin asleep in ngx.sleep is waited for, really (the command
 * serves one request, so nothing else could run meanwhile), then taken up again. */
static dc_action run_phase(dc_request *r, dc_phase phase, int *st)
{
    dc_action a = dc_request_run(r, phase, st);
    while (a == DC_ACTION_SLEEP) {
        uint32_t ms = dc_request_sleep_ms(r);
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        a = dc_request_run(r, phase, st);
    }
    return a;
}

/* The response nginx sends for a request ended with `status` before any output: its own page
 * for the codes it has one for (as with server_tokens off, keeping the headers plugins set),
 * an empty body with Content-Length 0 for another code from 300, no body for 204, and for
 * another code under 300 the empty answer OpenResty sends. */
static int special_response(dc_sim *s, int status)
{
    s->status = status;
    s->body.len = 0;
    s->ncuts = 0;
    if (status == 204) {
        s->header_only = 1;
        return 0;
    }
    if (status < 300)
        return 0;
    if (status == 304) {
        s->header_only = 1;
        return 0;
    }
    const char *why = page_title(status);
    if (!why)
        return set_length(s, 0);
    if (set_header_str(s, "Content-Type", "text/html") != 0 ||
        dc_buf_printf(&s->body,
                      "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                      "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n"
                      "</body>\r\n</html>\r\n",
                      status, why, status, why) != 0)
        return -1;
    return set_length(s, s->body.len) != 0 ? -1 : one_chunk(s);
}

static int content(dc_sim *s, dc_request *r)
{
    int st;
    if (dc_request_plugin_count(r, DC_PHASE_CONTENT) == 0) {
        /* the upstream's (static) answer: its own length, in one buffer */
        s->status = s->upstream_status;
        s->from_upstream = 1;
        if (!hdrs_get(&s->resp, "Content-Type", 12) &&
            set_header_str(s, "Content-Type", "text/plain") != 0)
            return -1;
        if (dc_buf_append(&s->body, s->upstream_body.data, s->upstream_body.len) != 0 ||
            set_length(s, s->upstream_body.len) != 0)
            return -1;
        return one_chunk(s);
    }
    /* nginx's built-in default_type */
    if (!hdrs_get(&s->resp, "Content-Type", 12) &&
        set_header_str(s, "Content-Type", "text/plain") != 0)
        return -1;
    dc_action a = run_phase(r, DC_PHASE_CONTENT, &st);
    if (a != DC_ACTION_CONTINUE && !s->output_started)
        return special_response(s, st);
    if (s->status == 0)
        s->status = 200;
    return 0;
}

/* An HTTP date (the RFC 1123 form nginx writes) as seconds, or -1. */
static long long http_date(const char *v)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = v ? strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (long long)timegm(&tm);
}

/* One entity tag of a list against etag, weakly (W/ ignored on both sides), as nginx does
 * for If-None-Match. */
static int etag_listed(const char *list, const char *etag)
{
    if (strncmp(etag, "W/", 2) == 0)
        etag += 2;
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == elen && memcmp(p, etag, n) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

/* nginx's not_modified filter on a static answer: 304 when every condition the request
 * sends holds (If-Modified-Since equal to Last-Modified, If-None-Match listing the ETag). */
static int not_modified(const dc_sim *s)
{
    if (!s->from_upstream || s->status != 200)
        return 0;
    const char *ims = hdrs_get(&s->req, "If-Modified-Since", 17);
    const char *inm = hdrs_get(&s->req, "If-None-Match", 13);
    if (!ims && !inm)
        return 0;
    if (ims) {
        long long lm = http_date(hdrs_get(&s->resp, "Last-Modified", 13));
        if (lm < 0 || http_date(ims) != lm)
            return 0;
    }
    if (inm) {
        const char *etag = hdrs_get(&s->resp, "ETag", 4);
        if (!etag || !etag_listed(inm, etag))
            return 0;
    }
    return 1;
}

/* What nginx's header filters do once the plugins' header filter ran: the not_modified
 * check, no body for a header-only answer, and, before body filter plugins that may change
 * the body, no Content-Length and a weak ETag (as the module's header filter does). */
static int after_header_filter(dc_sim *s, dc_request *r)
{
    if (not_modified(s)) {
        s->status = 304;
        hdrs_remove(&s->resp, "Content-Type", 12);
        hdrs_remove(&s->resp, "Content-Length", 14);
    }
    if (s->status == 304 || s->status == 204 || s->status < 200)
        s->header_only = 1;
    if (s->header_only || dc_request_plugin_count(r, DC_PHASE_BODY_FILTER) == 0)
        return 0;
    hdrs_remove(&s->resp, "Content-Length", 14);
    for (size_t i = 0; i < s->resp.n; i++) {
        char *v = s->resp.v[i].value;
        if (strcasecmp(s->resp.v[i].name, "ETag") == 0 && v[0] == '"') {
            size_t n = strlen(v);
            char *w = malloc(n + 3);
            if (!w)
                return -1;
            memcpy(w, "W/", 2);
            memcpy(w + 2, v, n + 1);
            free(v);
            s->resp.v[i].value = w;
        }
    }
    return 0;
}

static int add_final(dc_sim *s, dc_str out)
{
    if (out.len == 0)
        return 0;
    if (s->nfcuts == s->capfcuts) {
        size_t cap = s->capfcuts ? s->capfcuts * 2 : 16;
        size_t *c = realloc(s->fcuts, cap * sizeof *c);
        if (!c)
            return -1;
        s->fcuts = c;
        s->capfcuts = cap;
    }
    if (dc_buf_append(&s->final_body, out.data, out.len) != 0)
        return -1;
    s->fcuts[s->nfcuts++] = s->final_body.len;
    return 0;
}

/* The body filter as nginx calls it: once per output buffer. An answer made in one buffer
 * (upstream, nginx's page) is one call with eof; plugin output is one call per ngx.say or
 * ngx.print, then an empty last call with eof. Nothing when the answer has no body. */
static int body_filter(dc_sim *s, dc_request *r, int last_apart)
{
    int rc = 0, eof = 0;
    if (!s->header_only) {
        size_t from = 0;
        for (size_t i = 0; i < s->ncuts && !eof && rc == 0; i++) {
            dc_str out;
            int last = !last_apart && i + 1 == s->ncuts;
            dc_request_body_filter(r, s->body.data + from, s->cuts[i] - from, last, &out, &eof);
            from = s->cuts[i];
            rc = add_final(s, out);
        }
        if (!eof && rc == 0) {
            dc_str out;
            dc_request_body_filter(r, "", 0, 1, &out, &eof);
            rc = add_final(s, out);
        }
    }
    /* kept NUL-terminated (not counted) so that dc_sim_body is also a C string */
    if (rc == 0)
        rc = dc_buf_reserve(&s->final_body, 1);
    if (rc == 0)
        s->final_body.data[s->final_body.len] = '\0';
    return rc;
}

int dc_sim_run(dc_sim *s, dc_engine *e)
{
    dc_request *r = NULL;
    if (dc_request_begin(e, s, s->host, strlen(s->host), &r) != DC_OK)
        return -1;
    int st, rc = 0, last_apart = 1;
    dc_action a = DC_ACTION_CONTINUE;
    if (s->has_req_body && s->req_body.len > SIM_MAX_BODY_SIZE) {
        /* nginx refuses the body by its Content-Length before the rewrite phase */
        rc = special_response(s, 413);
        last_apart = 0;
    } else {
        a = run_phase(r, DC_PHASE_REWRITE, &st);
        /* Output in rewrite or access ends the request after that phase, as in OpenResty:
         * what was written is the answer, whatever ngx.exit says after it. */
        if (a == DC_ACTION_CONTINUE && !s->eof && !s->output_started)
            a = run_phase(r, DC_PHASE_ACCESS, &st);
        if (s->output_started || s->eof) {
            if (s->status == 0)
                s->status = 200;
        } else if (a != DC_ACTION_CONTINUE) {
            rc = special_response(s, st);
            last_apart = 0;
        } else {
            rc = content(s, r);
            last_apart = !s->from_upstream;
        }
    }

    /* Header filter: plugins may still change status and headers; then they are sent. */
    s->headers_locked = 0;
    if (rc == 0)
        dc_request_run(r, DC_PHASE_HEADER_FILTER, &st);
    s->headers_locked = 1;
    if (rc == 0)
        rc = after_header_filter(s, r);
    if (rc == 0)
        rc = body_filter(s, r, last_apart);
    if (rc == 0)
        dc_request_run(r, DC_PHASE_LOG, &st);
    dc_request_end(r);
    return rc;
}

/* ---- the response ---- */

int dc_sim_status(const dc_sim *s)
{
    return s->status;
}

const char *dc_sim_header(const dc_sim *s, const char *name)
{
    return hdrs_get(&s->resp, name, strlen(name));
}

size_t dc_sim_header_count(const dc_sim *s, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < s->resp.n; i++)
        n += name_eq(s->resp.v[i].name, name, strlen(name));
    return n;
}

const char *dc_sim_body(const dc_sim *s, size_t *len)
{
    if (len)
        *len = s->final_body.len;
    return s->final_body.data ? s->final_body.data : "";
}

size_t dc_sim_body_chunks(const dc_sim *s)
{
    return s->nfcuts;
}

int dc_sim_chunked(const dc_sim *s)
{
    return !s->header_only && !hdrs_get(&s->resp, "Content-Length", 14);
}

const char *dc_sim_log(const dc_sim *s)
{
    return s->log.data ? s->log.data : "";
}

/* As nginx frames it: the headers it keeps apart first (Content-Type, Content-Length,
 * Last-Modified, Location), then Transfer-Encoding when the length is not known, then the
 * others in order; the body in chunks when chunked, none when header-only. */
int dc_sim_write_response(const dc_sim *s, FILE *out)
{
    static const char *const first[] = {"Content-Type", "Content-Length", "Last-Modified",
                                         "Location"};
    fprintf(out, "HTTP/1.1 %d %s\r\n", s->status, reason(s->status));
    for (size_t f = 0; f < sizeof first / sizeof first[0]; f++)
        for (size_t i = 0; i < s->resp.n; i++)
            if (strcasecmp(s->resp.v[i].name, first[f]) == 0) /* nginx writes these names */
                fprintf(out, "%s: %s\r\n", first[f], s->resp.v[i].value);
    int chunked = dc_sim_chunked(s);
    if (chunked)
        fputs("Transfer-Encoding: chunked\r\n", out);
    for (size_t i = 0; i < s->resp.n; i++) {
        size_t f = 0;
        while (f < sizeof first / sizeof first[0] && strcasecmp(s->resp.v[i].name, first[f]))
            f++;
        if (f == sizeof first / sizeof first[0])
            fprintf(out, "%s: %s\r\n", s->resp.v[i].name, s->resp.v[i].value);
    }
    fputs("\r\n", out);
    if (s->header_only)
        return ferror(out) ? -1 : 0;
    if (!chunked) {
        if (s->final_body.len)
            fwrite(s->final_body.data, 1, s->final_body.len, out);
        return ferror(out) ? -1 : 0;
    }
    size_t from = 0;
    for (size_t i = 0; i < s->nfcuts; i++) {
        fprintf(out, "%zx\r\n", s->fcuts[i] - from);
        fwrite(s->final_body.data + from, 1, s->fcuts[i] - from, out);
        fputs("\r\n", out);
        from = s->fcuts[i];
    }
    fputs("0\r\n\r\n", out);
    return ferror(out) ? -1 : 0;
}
