/* sim_vars.c - the variables plugins read and set through the simulated request, as nginx
 * names them: the request's fields, arguments, cookies, header variables and the core
 * variables nginx has.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sim_priv.h"

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
    if (dc_sim_name_eq("pid", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%ld", (long)getpid()) ? -1 : put_vbuf(s, val);
    if (dc_sim_name_eq("hostname", name.data, name.len)) {
        if (gethostname(t, sizeof t - 1) != 0)
            strcpy(t, "localhost");
        t[sizeof t - 1] = '\0';
        return dc_buf_printf(&s->vbuf, "%s", t) ? -1 : put_vbuf(s, val);
    }
    if (dc_sim_name_eq("nginx_version", name.data, name.len))
        return put(val, "1.22.1");
    if (dc_sim_name_eq("server_addr", name.data, name.len))
        return put(val, "127.0.0.1");
    if (dc_sim_name_eq("server_port", name.data, name.len))
        return put(val, "80");
    if (dc_sim_name_eq("remote_port", name.data, name.len))
        return put(val, "40000");
    if (dc_sim_name_eq("https", name.data, name.len))
        return put(val, "");
    if (dc_sim_name_eq("connection", name.data, name.len) ||
        dc_sim_name_eq("connection_requests", name.data, name.len))
        return put(val, "1");
    if (dc_sim_name_eq("request", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%s %s HTTP/1.1", s->method, s->request_uri)
                   ? -1 : put_vbuf(s, val);
    if (dc_sim_name_eq("request_length", name.data, name.len)) {
        size_t n = strlen(s->method) + strlen(s->request_uri) + 12;
        for (size_t i = 0; i < s->req.n; i++)
            n += strlen(s->req.v[i].name) + 2 + strlen(s->req.v[i].value) + 2;
        n += 2 + (s->has_req_body ? s->req_body.len : 0);
        return dc_buf_printf(&s->vbuf, "%zu", n) ? -1 : put_vbuf(s, val);
    }
    if (dc_sim_name_eq("body_bytes_sent", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%zu", s->header_only ? (size_t)0 : s->final_body.len)
                   ? -1 : put_vbuf(s, val);
    if (dc_sim_name_eq("request_body", name.data, name.len)) {
        if (!s->req_body_read || !s->has_req_body || s->req_body.len > SIM_BODY_BUFFER_SIZE)
            return 0;
        val->data = s->req_body.data;
        val->len = s->req_body.len;
        return 1;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    if (dc_sim_name_eq("msec", name.data, name.len))
        return dc_buf_printf(&s->vbuf, "%lld.%03ld", (long long)ts.tv_sec,
                             ts.tv_nsec / 1000000) ? -1 : put_vbuf(s, val);
    if (dc_sim_name_eq("request_time", name.data, name.len)) {
        double d = (double)ts.tv_sec + ts.tv_nsec / 1e9 - s->start_time;
        return dc_buf_printf(&s->vbuf, "%.3f", d < 0 ? 0.0 : d) ? -1 : put_vbuf(s, val);
    }
    int local = dc_sim_name_eq("time_local", name.data, name.len);
    if (local || dc_sim_name_eq("time_iso8601", name.data, name.len)) {
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

int dc_sim_var_get(void *hreq, dc_str name, dc_str *val)
{
    dc_sim *s = hreq;
    size_t pl;
    if (has_prefix(name, "arg_", &pl))
        return s->args && find_pair(s->args, '&', name.data + pl, name.len - pl, val);
    if (has_prefix(name, "cookie_", &pl)) {
        const char *c = dc_sim_hdrs_get(&s->req, "Cookie", 6);
        return c && find_pair(c, ';', name.data + pl, name.len - pl, val);
    }
    /* nginx 1.22 joins every value only for the headers it keeps as lists (the cookies and
     * X-Forwarded-For of the request; Cache-Control and Link of the response); any other
     * header variable is its first value */
    if (has_prefix(name, "http_", &pl)) {
        if (dc_sim_name_eq("http_cookie", name.data, name.len))
            return join_hdr(s, &s->req, "cookie", "; ", val);
        if (dc_sim_name_eq("http_x_forwarded_for", name.data, name.len))
            return join_hdr(s, &s->req, "x_forwarded_for", ", ", val);
        return put(val, hdr_by_var(&s->req, name.data + pl, name.len - pl));
    }
    if (has_prefix(name, "sent_http_", &pl)) {
        if (dc_sim_name_eq("sent_http_cache_control", name.data, name.len))
            return join_hdr(s, &s->resp, "cache_control", ", ", val);
        if (dc_sim_name_eq("sent_http_link", name.data, name.len))
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
        if (dc_sim_name_eq(fields[i].name, name.data, name.len))
            return put(val, *(char **)((char *)s + fields[i].off));
    if (dc_sim_name_eq("scheme", name.data, name.len))
        return put(val, "http");
    if (dc_sim_name_eq("server_protocol", name.data, name.len))
        return put(val, "HTTP/1.1");
    if (dc_sim_name_eq("is_args", name.data, name.len))
        return put(val, s->args && *s->args ? "?" : "");
    if (dc_sim_name_eq("status", name.data, name.len)) {
        snprintf(s->scratch, sizeof s->scratch, "%03d", s->status);
        return put(val, s->scratch);
    }
    if (dc_sim_name_eq("content_type", name.data, name.len))
        return put(val, dc_sim_hdrs_get(&s->req, "Content-Type", 12));
    if (dc_sim_name_eq("content_length", name.data, name.len))
        return put(val, dc_sim_hdrs_get(&s->req, "Content-Length", 14));
    return 0;
}

int dc_sim_var_set(void *hreq, dc_str name, dc_str val)
{
    dc_sim *s = hreq;
    if (!dc_sim_name_eq("args", name.data, name.len) || (val.data && !dc_sim_clean(val, 0)))
        return -1;
    char *a = val.data ? dc_strndup(val.data, val.len) : NULL;
    if (val.data && !a)
        return -1;
    free(s->args);
    s->args = a;
    return 0;
}
