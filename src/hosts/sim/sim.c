/* sim.c - the simulated request's life (made from the options, freed) and the walk of one
 * request through the phases as nginx takes it (rewrite, access, content or upstream, header
 * filter, body filter, log). The callbacks plugins reach, the header lists and the response
 * are in the other sim_*.c files.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sim_priv.h"

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
    return dc_sim_hdrs_add(&s->req, line, (size_t)(colon - line), v, strlen(v));
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
    if (!bad && !dc_sim_hdrs_get(&s->req, "Host", 4))
        bad = dc_sim_hdrs_add(&s->req, "Host", 4, o->host, strlen(o->host)) != 0;
    for (size_t i = 0; !bad && i < o->nheaders; i++) {
        if (strncasecmp(o->headers[i], "Host:", 5) == 0)
            dc_sim_hdrs_remove(&s->req, "Host", 4);
        bad = add_header_line(s, o->headers[i]) != 0;
    }
    /* a body comes with its length, as a client sends it */
    if (!bad && s->has_req_body && !dc_sim_hdrs_get(&s->req, "Content-Length", 14)) {
        char n[32];
        snprintf(n, sizeof n, "%zu", s->req_body.len);
        bad = dc_sim_hdrs_add(&s->req, "Content-Length", 14, n, strlen(n)) != 0;
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
    dc_sim_hdrs_free(&s->req);
    dc_sim_hdrs_free(&s->resp);
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

/* Runs the plugins of phase; a plugin asleep in ngx.sleep is waited for, really (the command
 * serves one request, so nothing else could run meanwhile), then taken up again. */
static dc_action run_phase(dc_sim *s, dc_request *r, dc_phase phase, int *st)
{
    dc_action a = dc_request_run(r, phase, st);
    while (a == DC_ACTION_SLEEP) {
        /* nginx sends what content wrote so far before it sleeps: the length is unknown,
         * unless ngx.eof ended the body (then it goes out whole, with its length) */
        if (phase == DC_PHASE_CONTENT && s->body.len > 0 && !s->eof)
            s->streamed = 1;
        uint32_t ms = dc_request_sleep_ms(r);
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        a = dc_request_run(r, phase, st);
    }
    return a;
}

/* An answer the plugins wrote: 200 unless they set a status, and, as the module sends the
 * header with the whole body when nothing went out before, its length instead of chunked
 * framing (unless a plugin set one). */
static int plugin_answer(dc_sim *s)
{
    if (s->status == 0)
        s->status = 200;
    if (s->streamed || dc_sim_hdrs_get(&s->resp, "Content-Length", 14))
        return 0;
    return dc_sim_set_length(s, s->body.len);
}

static int content(dc_sim *s, dc_request *r)
{
    int st;
    if (dc_request_plugin_count(r, DC_PHASE_CONTENT) == 0) {
        /* the upstream's (static) answer: its own length, in one buffer */
        s->status = s->upstream_status;
        s->from_upstream = 1;
        if (!dc_sim_hdrs_get(&s->resp, "Content-Type", 12) &&
            dc_sim_set_header_str(s, "Content-Type", "text/plain") != 0)
            return -1;
        if (dc_buf_append(&s->body, s->upstream_body.data, s->upstream_body.len) != 0 ||
            dc_sim_set_length(s, s->upstream_body.len) != 0)
            return -1;
        return dc_sim_one_chunk(s);
    }
    /* nginx's built-in default_type */
    if (!dc_sim_hdrs_get(&s->resp, "Content-Type", 12) &&
        dc_sim_set_header_str(s, "Content-Type", "text/plain") != 0)
        return -1;
    dc_action a = run_phase(s, r, DC_PHASE_CONTENT, &st);
    if (a != DC_ACTION_CONTINUE && !s->output_started)
        return dc_sim_special_response(s, st);
    return plugin_answer(s);
}

static int add_final(dc_sim *s, dc_str out)
{
    if (out.len == 0)
        return 0;
    size_t *c = dc_sim_room(s->fcuts, &s->capfcuts, s->nfcuts, sizeof *c, 16);
    if (!c)
        return -1;
    s->fcuts = c;
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
        rc = dc_sim_special_response(s, 413);
        last_apart = 0;
    } else {
        a = run_phase(s, r, DC_PHASE_REWRITE, &st);
        /* Output in rewrite or access ends the request after that phase, as in OpenResty:
         * what was written is the answer, whatever ngx.exit says after it. */
        if (a == DC_ACTION_CONTINUE && !s->eof && !s->output_started)
            a = run_phase(s, r, DC_PHASE_ACCESS, &st);
        if (s->output_started || s->eof) {
            rc = plugin_answer(s);
        } else if (a != DC_ACTION_CONTINUE) {
            rc = dc_sim_special_response(s, st);
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
        rc = dc_sim_after_header_filter(s, r);
    if (rc == 0)
        rc = body_filter(s, r, last_apart);
    if (rc == 0)
        dc_request_run(r, DC_PHASE_LOG, &st);
    dc_request_end(r);
    return rc;
}
