/* fetch.c - the fetcher: one GET of the bundle URL through a reused libcurl easy
 * handle, conditional on the last 200's validators, with every limit enforced while receiving,
 * redirects followed only when the configuration allows them, and each outcome classified for
 * the poller's events. Relies on libcurl and util.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base.h"

#define FETCH_DEFAULT_TIMEOUT_MS 5000u
#define FETCH_DEFAULT_MAX_BYTES (8u * 1024u * 1024u)
/* Bytes of a non-200 answer's body read (and dropped) before the transfer is cut: enough to keep
 * the connection reusable after a short error page, not enough to let one hold the poller. */
#define FETCH_ERROR_BODY_DRAIN (64u * 1024u)

struct dc_fetcher {
    CURL *curl;
    char *url;
    char *shown_url;            /* scheme://host[:port]/path: no credentials, no query */
    char *file_path;            /* file:// URLs: the decoded path, for messages */
    int is_file;
    int is_https;
    char **headers;             /* copies of the configured "Name: value" lines */
    size_t nheaders;
    dc_fetch_config cfg;        /* numbers only; the pointers above own the strings */
    char etag[256];             /* validators of the last DC_FETCH_OK answer */
    char last_modified[64];
    char errbuf[CURL_ERROR_SIZE];
};

/* What one transfer gathers; reset by every dc_fetcher_fetch. */
typedef struct fetch_ctx {
    const dc_fetcher *f;
    dc_buf body;
    long status;                /* of the latest status line seen, 0 before any */
    size_t dropped;             /* body bytes of a non-200 answer that were read and dropped */
    int too_big;
    int oom;
    int cut_on_status;          /* the write callback stopped a non-200 answer */
    char etag[256];             /* of the latest answer */
    char last_modified[64];
} fetch_ctx;

/* ---- curl's process-wide state: initialised once, never cleaned up (other users may share it) */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void dc_fetch_config_default(dc_fetch_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = FETCH_DEFAULT_TIMEOUT_MS;
    cfg->low_speed_bytes = 1;
    cfg->low_speed_seconds = 3;
    cfg->max_bytes = FETCH_DEFAULT_MAX_BYTES;
    cfg->max_redirects = 3;
}

/* ---- helpers ---- */

static const char *errno_text(int e, char *buf, size_t len)
{
    /* GNU strerror_r (we build with _GNU_SOURCE): returns the text, maybe not in buf. */
    return strerror_r(e, buf, len);
}

/* A header line we are willing to send: a token name, a colon, then no control characters
 * other than tab (no CR/LF: nothing may be smuggled into the request). */
static int header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return 0;
    }
    for (const char *p = colon + 1; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* scheme://host[:port]/path of u into out: what messages show of a URL (credentials and query
 * may hold secrets). Non-zero on ENOMEM. */
static int shown_form(CURLU *u, const char *scheme, dc_buf *out)
{
    char *host = NULL, *port = NULL, *path = NULL;
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* absent when the URL names none */
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    int bad = dc_buf_printf(out, "%s://%s%s%s%s", scheme, host ? host : "", port ? ":" : "",
                            port ? port : "", path ? path : "/");
    curl_free(host);
    curl_free(port);
    curl_free(path);
    return bad;
}

/* Splits url with curl's own parser (so we judge it as curl will), keeps the scheme, a form fit
 * for messages and, for file URLs, the path. */
static dc_rc parse_url(dc_fetcher *f, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u)
        return DC_ENOMEM;
    dc_rc rc = DC_OK;
    char *scheme = NULL, *path = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, f->url, 0);
    if (uc != CURLUE_OK) {
        dc_set_err(err, errlen, "bad URL \"%s\": %s", f->url, curl_url_strerror(uc));
        rc = uc == CURLUE_OUT_OF_MEMORY ? DC_ENOMEM : DC_EINVAL;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        dc_set_err(err, errlen, "bad URL \"%s\": no scheme", f->url);
        rc = DC_EINVAL;
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0 &&
        strcasecmp(scheme, "file") != 0) {
        dc_set_err(err, errlen, "bad URL \"%s\": scheme %s is not http, https or file", f->url,
                   scheme);
        rc = DC_EINVAL;
        goto out;
    }
    f->is_file = strcasecmp(scheme, "file") == 0;
    f->is_https = strcasecmp(scheme, "https") == 0;
    curl_url_get(u, CURLUPART_PATH, &path, f->is_file ? CURLU_URLDECODE : 0);
    dc_buf shown = {0};
    int bad;
    if (f->is_file) {
        bad = dc_buf_printf(&shown, "file://%s", path ? path : "");
        if (!bad) {
            f->file_path = dc_strndup(path ? path : "", path ? strlen(path) : 0);
            bad = !f->file_path;
        }
    } else {
        bad = shown_form(u, scheme, &shown);
    }
    if (bad) {
        dc_buf_free(&shown);
        rc = DC_ENOMEM;
        goto out;
    }
    f->shown_url = shown.data;
out:
    curl_free(scheme);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

/* An http(s) URL as messages show it (no credentials, no query), in out; "(unreadable URL)"
 * when curl cannot parse it. */
static void show_url(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    dc_buf shown = {0};
    int bad = !u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
              shown_form(u, scheme, &shown) != 0;
    snprintf(out, outlen, "%s", bad ? "(unreadable URL)" : shown.data);
    dc_buf_free(&shown);
    curl_free(scheme);
    curl_url_cleanup(u);
}

/* Copies the value of a header line (after the colon) into out when it fits and is printable;
 * leaves out unchanged otherwise (a validator we cannot send back whole is no validator). */
static void take_value(const char *v, size_t n, char *out, size_t outlen)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= outlen)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Called once per header line of every answer, redirects included: a status line starts a new
 * answer, so only the last answer's status and validators remain. */
static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    fetch_ctx *c = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', n);
        long st = 0;
        if (sp) {
            for (const char *p = sp + 1; p < line + n && *p >= '0' && *p <= '9' && st < 1000; p++)
                st = st * 10 + (*p - '0');
        }
        c->status = st;
        c->etag[0] = '\0';
        c->last_modified[0] = '\0';
        c->body.len = 0;
        c->dropped = 0;
    } else if (n > 5 && strncasecmp(line, "etag:", 5) == 0) {
        take_value(line + 5, n - 5, c->etag, sizeof c->etag);
    } else if (n > 14 && strncasecmp(line, "last-modified:", 14) == 0) {
        take_value(line + 14, n - 14, c->last_modified, sizeof c->last_modified);
    }
    return n;
}

/* Keeps the body of a 200 (or of a file) up to max_bytes; returning less than n makes curl stop
 * with CURLE_WRITE_ERROR, which dc_fetcher_fetch turns into the reason recorded here. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    fetch_ctx *c = ud;
    size_t n = size * nmemb;
    if (!c->f->is_file && c->status != 200) {
        if (n > FETCH_ERROR_BODY_DRAIN - c->dropped) {
            c->cut_on_status = 1;
            return 0;
        }
        c->dropped += n;
        return n;
    }
    if (n > c->f->cfg.max_bytes - c->body.len) {
        c->too_big = 1;
        return 0;
    }
    if (c->body.cap == 0) {
        /* Size the buffer once from Content-Length (already checked against the cap). */
        curl_off_t cl = -1;
        CURL *h = c->f->curl;
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl <= (uint64_t)c->f->cfg.max_bytes &&
            dc_buf_reserve(&c->body, (size_t)cl + 1) != 0) {
            c->oom = 1;
            return 0;
        }
    }
    if (dc_buf_append(&c->body, data, n) != 0) {
        c->oom = 1;
        return 0;
    }
    return n;
}

/* ---- life cycle ---- */

static dc_rc setup_handle(dc_fetcher *f, char *err, size_t errlen)
{
    CURL *h = f->curl;
    const dc_fetch_config *cfg = &f->cfg;
    int https_only = f->is_https;
    CURLcode e = CURLE_OK;
#define SET(opt, val)                                   \
    do {                                                \
        if (e == CURLE_OK)                              \
            e = curl_easy_setopt(h, opt, val);          \
    } while (0)
    SET(CURLOPT_URL, f->url);
    SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0: the string forms; the bitmasks are deprecated */
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    /* A redirect never leads to a file (an API must not make us read local files), nor from
     * https down to http. */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, https_only ? "https" : "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
    SET(CURLOPT_REDIR_PROTOCOLS, https_only ? (long)CURLPROTO_HTTPS
                                            : (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (f->cfg.ca_file)
        SET(CURLOPT_CAINFO, f->cfg.ca_file);
    SET(CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    if (cfg->low_speed_bytes > 0 && cfg->low_speed_seconds > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, (long)cfg->low_speed_bytes);
        SET(CURLOPT_LOW_SPEED_TIME, (long)cfg->low_speed_seconds);
    }
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->max_bytes);
    SET(CURLOPT_FOLLOWLOCATION, cfg->follow_redirects ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, (long)cfg->max_redirects);
    SET(CURLOPT_USERAGENT, "dynacode/0.1");
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_WRITEFUNCTION, on_body);
#undef SET
    if (e != CURLE_OK) {
        dc_set_err(err, errlen, "libcurl refused an option: %s", curl_easy_strerror(e));
        return e == CURLE_OUT_OF_MEMORY ? DC_ENOMEM : DC_EINVAL;
    }
    return DC_OK;
}

dc_rc dc_fetcher_new(const dc_fetch_config *cfg, dc_fetcher **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!cfg || !out || !cfg->url || !cfg->url[0]) {
        dc_set_err(err, errlen, "fetcher: no URL");
        return DC_EINVAL;
    }
    if (cfg->nheaders > 0 && !cfg->headers) {
        dc_set_err(err, errlen, "fetcher: %zu headers announced, none given", cfg->nheaders);
        return DC_EINVAL;
    }
    for (size_t i = 0; i < cfg->nheaders; i++) {
        if (!cfg->headers[i] || !header_ok(cfg->headers[i])) {
            dc_set_err(err, errlen, "fetcher: header %zu is not a \"Name: value\" line", i + 1);
            return DC_EINVAL;
        }
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        dc_set_err(err, errlen, "libcurl initialisation failed: %s",
                   curl_easy_strerror(curl_init_rc));
        return DC_ENOMEM;
    }
    dc_fetcher *f = calloc(1, sizeof *f);
    if (!f)
        goto nomem;
    f->cfg = *cfg;
    /* Zero means "the default" where an unbounded value would be unsafe. */
    if (f->cfg.timeout_ms == 0)
        f->cfg.timeout_ms = FETCH_DEFAULT_TIMEOUT_MS;
    if (f->cfg.connect_timeout_ms == 0 || f->cfg.connect_timeout_ms > f->cfg.timeout_ms)
        f->cfg.connect_timeout_ms = f->cfg.timeout_ms;
    if (f->cfg.max_bytes == 0)
        f->cfg.max_bytes = FETCH_DEFAULT_MAX_BYTES;
    if (f->cfg.max_bytes > SIZE_MAX / 2) { /* also fits curl_off_t */
        dc_set_err(err, errlen, "fetcher: max_bytes is out of range");
        free(f);
        return DC_EINVAL;
    }
    f->cfg.url = NULL;
    f->cfg.headers = NULL;
    f->cfg.ca_file = NULL;
    f->url = dc_strndup(cfg->url, strlen(cfg->url));
    if (!f->url)
        goto nomem;
    if (cfg->ca_file) {
        f->cfg.ca_file = dc_strndup(cfg->ca_file, strlen(cfg->ca_file));
        if (!f->cfg.ca_file)
            goto nomem;
    }
    if (cfg->nheaders > 0) {
        f->headers = calloc(cfg->nheaders, sizeof *f->headers);
        if (!f->headers)
            goto nomem;
        for (size_t i = 0; i < cfg->nheaders; i++) {
            f->headers[i] = dc_strndup(cfg->headers[i], strlen(cfg->headers[i]));
            if (!f->headers[i])
                goto nomem;
            f->nheaders = i + 1;
        }
    }
    dc_rc rc = parse_url(f, err, errlen);
    if (rc != DC_OK) {
        dc_fetcher_free(f);
        return rc;
    }
    f->curl = curl_easy_init();
    if (!f->curl)
        goto nomem;
    rc = setup_handle(f, err, errlen);
    if (rc != DC_OK) {
        dc_fetcher_free(f);
        return rc;
    }
    *out = f;
    return DC_OK;
nomem:
    dc_fetcher_free(f);
    dc_set_err(err, errlen, "fetcher: out of memory");
    return DC_ENOMEM;
}

void dc_fetcher_free(dc_fetcher *f)
{
    if (!f)
        return;
    if (f->curl)
        curl_easy_cleanup(f->curl);
    for (size_t i = 0; i < f->nheaders; i++)
        free(f->headers[i]);
    free(f->headers);
    free((char *)f->cfg.ca_file);
    free(f->url);
    free(f->shown_url);
    free(f->file_path);
    free(f);
}

void dc_fetcher_reset_validators(dc_fetcher *f)
{
    if (!f)
        return;
    f->etag[0] = '\0';
    f->last_modified[0] = '\0';
}

void dc_fetch_result_clear(dc_fetch_result *res)
{
    if (!res)
        return;
    free(res->body);
    memset(res, 0, sizeof *res);
}

/* ---- one fetch ---- */

/* The request's header list: the configured lines, then the validators. NULL on ENOMEM (or
 * when there is nothing to send: *oom says which). */
static struct curl_slist *request_headers(const dc_fetcher *f, int *oom)
{
    struct curl_slist *l = NULL, *t;
    char line[sizeof f->etag + 32];
    *oom = 0;
    for (size_t i = 0; i < f->nheaders; i++) {
        if (!(t = curl_slist_append(l, f->headers[i])))
            goto nomem;
        l = t;
    }
    if (!f->is_file && f->etag[0]) {
        snprintf(line, sizeof line, "If-None-Match: %s", f->etag);
        if (!(t = curl_slist_append(l, line)))
            goto nomem;
        l = t;
    }
    if (!f->is_file && f->last_modified[0]) {
        snprintf(line, sizeof line, "If-Modified-Since: %s", f->last_modified);
        if (!(t = curl_slist_append(l, line)))
            goto nomem;
        l = t;
    }
    return l;
nomem:
    curl_slist_free_all(l);
    *oom = 1;
    return NULL;
}

/* Why a transfer failed, in words for an operator (res->error). */
static void transport_reason(const dc_fetcher *f, CURLcode e, size_t got,
                             dc_fetch_result *res)
{
    char eb[128];
    const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(e);
    long oserr = 0;
    curl_easy_getinfo(f->curl, CURLINFO_OS_ERRNO, &oserr);
    switch (e) {
    case CURLE_OPERATION_TIMEDOUT:
        if (strstr(f->errbuf, "too slow"))
            dc_set_err(res->error, sizeof res->error, "transfer slower than %u bytes/s for %u s",
                       f->cfg.low_speed_bytes, f->cfg.low_speed_seconds);
        else if (strstr(f->errbuf, "Resolving"))
            dc_set_err(res->error, sizeof res->error, "%s: name lookup timed out after %u ms",
                       f->shown_url, f->cfg.connect_timeout_ms);
        else if (strstr(f->errbuf, "Connection time"))
            dc_set_err(res->error, sizeof res->error, "%s: connect timed out after %u ms",
                       f->shown_url, f->cfg.connect_timeout_ms);
        else
            dc_set_err(res->error, sizeof res->error, "timed out after %u ms", f->cfg.timeout_ms);
        return;
    case CURLE_COULDNT_CONNECT:
        if (oserr == ECONNREFUSED)
            dc_set_err(res->error, sizeof res->error, "%s: connection refused", f->shown_url);
        else if (oserr != 0)
            dc_set_err(res->error, sizeof res->error, "%s: cannot connect: %s", f->shown_url,
                       errno_text((int)oserr, eb, sizeof eb));
        else
            dc_set_err(res->error, sizeof res->error, "%s: cannot connect: %s", f->shown_url,
                       detail);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        dc_set_err(res->error, sizeof res->error, "%s: host name not resolved", f->shown_url);
        return;
    case CURLE_PARTIAL_FILE: {
        curl_off_t want = -1;
        curl_easy_getinfo(f->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &want);
        if (want >= 0)
            dc_set_err(res->error, sizeof res->error,
                       "truncated: the connection closed after %zu of %" CURL_FORMAT_CURL_OFF_T
                       " bytes", got, want);
        else
            dc_set_err(res->error, sizeof res->error, "truncated: %s", detail);
        return;
    }
    case CURLE_GOT_NOTHING:
        dc_set_err(res->error, sizeof res->error, "%s: connection closed without an answer",
                   f->shown_url);
        return;
    case CURLE_WEIRD_SERVER_REPLY:
        dc_set_err(res->error, sizeof res->error, "%s: not an HTTP answer", f->shown_url);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL: {
        /* The first URL was checked by dc_fetcher_new, so this is a redirect (curl says
         * 'Protocol "file" not supported or disabled in libcurl': keep the name), or an answer
         * in HTTP/0.9, which curl refuses with the same code. */
        if (strncmp(f->errbuf, "Protocol \"", 10) != 0) {
            dc_set_err(res->error, sizeof res->error, "%s: %s", f->shown_url, detail);
            return;
        }
        const char *q1 = f->errbuf + 9, *q2 = strchr(q1 + 1, '"');
        int n = q2 && q2 - q1 < 32 ? (int)(q2 - q1 - 1) : 0;
        dc_set_err(res->error, sizeof res->error, "%s: redirect to %.*s%s refused (allowed: %s)",
                   f->shown_url, n, n ? q1 + 1 : "", n ? ":" : "another scheme",
                   f->is_https ? "https" : "http, https");
        return;
    }
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_READ_ERROR: {
        struct stat st;
        if (f->is_file && stat(f->file_path, &st) != 0)
            dc_set_err(res->error, sizeof res->error, "%s: cannot read: %s", f->shown_url,
                       errno_text(errno, eb, sizeof eb));
        else
            dc_set_err(res->error, sizeof res->error, "%s: cannot read: %s", f->shown_url, detail);
        return;
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        dc_set_err(res->error, sizeof res->error, "%s: TLS: %s", f->shown_url, detail);
        return;
    default:
        dc_set_err(res->error, sizeof res->error, "%s: %s", f->shown_url, detail);
        return;
    }
}

/* A redirect the fetcher does not follow: the status and where it led, for the operator who
 * decides whether to allow it. */
static void redirect_refused(const dc_fetcher *f, long status, dc_fetch_result *res)
{
    char *to = NULL, shown[200];
    if (curl_easy_getinfo(f->curl, CURLINFO_REDIRECT_URL, &to) == CURLE_OK && to)
        show_url(to, shown, sizeof shown);
    else
        snprintf(shown, sizeof shown, "%s", "(no Location)");
    if (f->cfg.follow_redirects) /* followed, but not to there (scheme or limit) */
        dc_set_err(res->error, sizeof res->error, "answered %ld, a redirect to %s", status,
                   shown);
    else
        dc_set_err(res->error, sizeof res->error,
                   "answered %ld, a redirect to %s, not followed (redirects are off)", status,
                   shown);
}

/* After redirects were followed: where the body came from, in res->final_url. */
static void note_final_url(const dc_fetcher *f, dc_fetch_result *res)
{
    long hops = 0;
    char *eff = NULL;
    if (curl_easy_getinfo(f->curl, CURLINFO_REDIRECT_COUNT, &hops) != CURLE_OK || hops <= 0 ||
        curl_easy_getinfo(f->curl, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || !eff)
        return;
    show_url(eff, res->final_url, sizeof res->final_url);
}

dc_rc dc_fetcher_fetch(dc_fetcher *f, dc_fetch_result *res)
{
    if (!f || !res)
        return DC_EINVAL;
    memset(res, 0, sizeof *res);
    double t0 = dc_now_ms();
    fetch_ctx c = {.f = f};
    int oom = 0;
    struct curl_slist *hdrs = request_headers(f, &oom);
    if (oom) {
        dc_set_err(res->error, sizeof res->error, "out of memory");
        return DC_ENOMEM;
    }
    f->errbuf[0] = '\0';
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &c);
    CURLcode e = curl_easy_perform(f->curl);
    /* Nothing of this transfer may outlive it in the handle. */
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, (void *)NULL);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, (void *)NULL);
    curl_slist_free_all(hdrs);
    res->ms = dc_now_ms() - t0;

    if (c.oom) {
        dc_buf_free(&c.body);
        dc_set_err(res->error, sizeof res->error, "out of memory");
        return DC_ENOMEM;
    }
    long status = f->is_file ? (e == CURLE_OK ? 200 : 0) : c.status;
    res->http_status = (int)status;
    int answered = !f->is_file && status != 0;

    if (e == CURLE_OK && status == 200) {
        if (dc_buf_reserve(&c.body, 1) != 0) {
            dc_buf_free(&c.body);
            dc_set_err(res->error, sizeof res->error, "out of memory");
            return DC_ENOMEM;
        }
        c.body.data[c.body.len] = '\0';
        res->status = DC_FETCH_OK;
        res->body = c.body.data;
        res->len = c.body.len;
        snprintf(res->etag, sizeof res->etag, "%s", c.etag);
        snprintf(res->last_modified, sizeof res->last_modified, "%s", c.last_modified);
        memcpy(f->etag, c.etag, sizeof f->etag);
        memcpy(f->last_modified, c.last_modified, sizeof f->last_modified);
        note_final_url(f, res);
        return DC_OK;
    }
    size_t got = c.body.len;
    dc_buf_free(&c.body);

    if (e == CURLE_OK && status == 304 && (f->etag[0] || f->last_modified[0])) {
        res->status = DC_FETCH_NOT_MODIFIED;
        snprintf(res->etag, sizeof res->etag, "%s", c.etag[0] ? c.etag : f->etag);
        snprintf(res->last_modified, sizeof res->last_modified, "%s",
                 c.last_modified[0] ? c.last_modified : f->last_modified);
        return DC_OK;
    }
    if (answered && (e == CURLE_OK || c.cut_on_status || e == CURLE_TOO_MANY_REDIRECTS ||
                     (e == CURLE_FILESIZE_EXCEEDED && status != 200))) {
        /* The server said no (any status but 200, or a 304 we did not ask for). The answer
         * counts, not what happened to its body afterwards. */
        res->status = DC_FETCH_HTTP_ERROR;
        if (e == CURLE_TOO_MANY_REDIRECTS)
            dc_set_err(res->error, sizeof res->error, "answered %ld: more than %u redirects",
                       status, f->cfg.max_redirects);
        else if (status >= 300 && status < 400 && status != 304)
            redirect_refused(f, status, res);
        else if (status == 304)
            dc_set_err(res->error, sizeof res->error, "answered 304 to an unconditional request");
        else
            dc_set_err(res->error, sizeof res->error, "answered %ld", status);
        return DC_OK;
    }
    if (c.too_big || e == CURLE_FILESIZE_EXCEEDED) {
        res->status = DC_FETCH_TOO_BIG;
        dc_set_err(res->error, sizeof res->error, "body over the limit of %zu bytes",
                   f->cfg.max_bytes);
        if (answered && status == 200 && (c.etag[0] || c.last_modified[0])) {
            /* The next request names this answer: while the API serves the same oversized
             * bundle it answers 304, and nothing is downloaded again up to the limit. The
             * caller learns it from res (the poller keeps it as a refusal). */
            snprintf(res->etag, sizeof res->etag, "%s", c.etag);
            snprintf(res->last_modified, sizeof res->last_modified, "%s", c.last_modified);
            memcpy(f->etag, c.etag, sizeof f->etag);
            memcpy(f->last_modified, c.last_modified, sizeof f->last_modified);
        }
        return DC_OK;
    }
    res->status = e == CURLE_PARTIAL_FILE && (f->is_file || status == 200)
                      ? DC_FETCH_TRUNCATED : DC_FETCH_TRANSPORT_ERROR;
    if (e == CURLE_OK) /* cannot happen: a file with no status; keep the outcome honest */
        dc_set_err(res->error, sizeof res->error, "%s: no answer", f->shown_url);
    else
        transport_reason(f, e, got, res);
    return DC_OK;
}
