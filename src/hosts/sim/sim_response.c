/* sim_response.c - the response the simulated request ends with, as nginx makes it: its own
 * pages for a request ended early, nginx's not_modified check and header-only answers (HEAD,
 * 304, 204), what its header filters change before body filter plugins, the response as
 * read back, and the response written out as HTTP/1.1.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sim_priv.h"

/* nginx's status lines and its own pages: for each code, the status line's phrase and the
 * title of nginx's page when it differs from the phrase (302 "Found", 401 "Authorization
 * Required"). 2xx and 304 have no page. */
static const struct status_text {
    int code;
    const char *phrase, *title;
} status_texts[] = {
    {200, "OK", NULL}, {201, "Created", NULL}, {202, "Accepted", NULL},
    {204, "No Content", NULL}, {206, "Partial Content", NULL},
    {301, "Moved Permanently", NULL}, {302, "Moved Temporarily", "Found"},
    {303, "See Other", NULL}, {304, "Not Modified", NULL}, {307, "Temporary Redirect", NULL},
    {308, "Permanent Redirect", NULL}, {400, "Bad Request", NULL},
    {401, "Unauthorized", "Authorization Required"}, {402, "Payment Required", NULL},
    {403, "Forbidden", NULL}, {404, "Not Found", NULL}, {405, "Not Allowed", NULL},
    {406, "Not Acceptable", NULL}, {408, "Request Time-out", NULL}, {409, "Conflict", NULL},
    {410, "Gone", NULL}, {411, "Length Required", NULL}, {412, "Precondition Failed", NULL},
    {413, "Request Entity Too Large", NULL}, {414, "Request-URI Too Large", NULL},
    {415, "Unsupported Media Type", NULL}, {416, "Requested Range Not Satisfiable", NULL},
    {421, "Misdirected Request", NULL}, {429, "Too Many Requests", NULL},
    {500, "Internal Server Error", NULL}, {501, "Not Implemented", NULL},
    {502, "Bad Gateway", NULL}, {503, "Service Temporarily Unavailable", NULL},
    {504, "Gateway Time-out", NULL}, {505, "HTTP Version Not Supported", NULL},
    {507, "Insufficient Storage", NULL},
};

static const struct status_text *status_text(int status)
{
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
        if (status_texts[i].code == status)
            return &status_texts[i];
    return NULL;
}

/* The reason phrase of nginx's status line ("" for a code it has none for). */
static const char *reason(int status)
{
    const struct status_text *t = status_text(status);
    return t ? t->phrase : "";
}

/* The title of nginx's own page for status, or NULL when nginx has no page for it. */
static const char *page_title(int status)
{
    const struct status_text *t = status < 300 || status == 304 ? NULL : status_text(status);
    return !t ? NULL : t->title ? t->title : t->phrase;
}

int dc_sim_set_header_str(dc_sim *s, const char *name, const char *value)
{
    dc_str n = {name, strlen(name)}, v = {value, strlen(value)};
    return dc_sim_hdrs_set(&s->resp, n, &v, 1);
}

int dc_sim_set_length(dc_sim *s, size_t len)
{
    char n[32];
    snprintf(n, sizeof n, "%zu", len);
    return dc_sim_set_header_str(s, "Content-Length", n);
}

/* The whole body so far is one chunk (an answer nginx makes in one buffer). */
int dc_sim_one_chunk(dc_sim *s)
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

/* The response nginx sends for a request ended with `status` before any output: its own page
 * for the codes it has one for (as with server_tokens off, keeping the headers plugins set),
 * no body for 204 and 304, and an empty body with Content-Length 0 for any other code (under
 * 300 with nginx's default_type). */
int dc_sim_special_response(dc_sim *s, int status)
{
    s->status = status;
    s->body.len = 0;
    s->ncuts = 0;
    if (status == 204 || status == 304) {
        s->header_only = 1;
        return 0;
    }
    if (status < 300) {
        /* an empty answer: as the module sends it, with nginx's default_type */
        if (!dc_sim_hdrs_get(&s->resp, "Content-Type", 12) &&
            dc_sim_set_header_str(s, "Content-Type", "text/plain") != 0)
            return -1;
        return dc_sim_set_length(s, 0);
    }
    const char *why = page_title(status);
    if (!why)
        return dc_sim_set_length(s, 0);
    if (dc_sim_set_header_str(s, "Content-Type", "text/html") != 0 ||
        dc_buf_printf(&s->body,
                      "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                      "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n"
                      "</body>\r\n</html>\r\n",
                      status, why, status, why) != 0)
        return -1;
    return dc_sim_set_length(s, s->body.len) != 0 ? -1 : dc_sim_one_chunk(s);
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
    const char *ims = dc_sim_hdrs_get(&s->req, "If-Modified-Since", 17);
    const char *inm = dc_sim_hdrs_get(&s->req, "If-None-Match", 13);
    if (!ims && !inm)
        return 0;
    if (ims) {
        long long lm = http_date(dc_sim_hdrs_get(&s->resp, "Last-Modified", 13));
        if (lm < 0 || http_date(ims) != lm)
            return 0;
    }
    if (inm) {
        const char *etag = dc_sim_hdrs_get(&s->resp, "ETag", 4);
        if (!etag || !etag_listed(inm, etag))
            return 0;
    }
    return 1;
}

/* What nginx's header filters do once the plugins' header filter ran: the not_modified
 * check, no body for a header-only answer, and, before body filter plugins that may change
 * the body, no Content-Length and a weak ETag (as the module's header filter does). */
int dc_sim_after_header_filter(dc_sim *s, dc_request *r)
{
    if (not_modified(s)) {
        s->status = 304;
        dc_sim_hdrs_remove(&s->resp, "Content-Type", 12);
        dc_sim_hdrs_remove(&s->resp, "Content-Length", 14);
    }
    if (s->status == 304 || s->status == 204 || s->status < 200)
        s->header_only = 1;
    if (s->status == 204) /* nginx's header filter drops the length of a 204 */
        dc_sim_hdrs_remove(&s->resp, "Content-Length", 14);
    if (s->header_only || dc_request_plugin_count(r, DC_PHASE_BODY_FILTER) == 0)
        return 0;
    dc_sim_hdrs_remove(&s->resp, "Content-Length", 14);
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

/* ---- the response ---- */

int dc_sim_status(const dc_sim *s)
{
    return s->status;
}

const char *dc_sim_header(const dc_sim *s, const char *name)
{
    return dc_sim_hdrs_get(&s->resp, name, strlen(name));
}

size_t dc_sim_header_count(const dc_sim *s, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < s->resp.n; i++)
        n += dc_sim_name_eq(s->resp.v[i].name, name, strlen(name));
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
    return !s->header_only && !dc_sim_hdrs_get(&s->resp, "Content-Length", 14);
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
