/* ngx_http_dynacode_phases.c - where nginx's request meets libdynacode's: the per-request
 * context (one dc_request per request, kept across internal redirects), the rewrite, access,
 * content and log handlers, the header and body filters, and the translation of what the
 * library asks (go on, exit with a status, fail, wait for a sleeping plugin: a timer, then
 * the phase taken up again) into nginx return codes.
 */
#include "ngx_http_dynacode.h"


#define NGX_HTTP_DYNACODE_BIT(phase)  ((ngx_uint_t) 1 << (phase))


static ngx_int_t ngx_http_dynacode_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_dynacode_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_dynacode_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_dynacode_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_dynacode_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_dynacode_content_end(ngx_http_request_t *r,
    ngx_http_dynacode_ctx_t *ctx, dc_action act, int status);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_dynacode_init_phases(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_dynacode_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_dynacode_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_dynacode_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_dynacode_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_dynacode_body_filter;

    return NGX_OK;
}


/* ---- the per-request context ---- */

static void
ngx_http_dynacode_cleanup(void *data)
{
    ngx_http_dynacode_ctx_t  *ctx = data;

    /* the request goes (the client left, the worker ends) while a plugin sleeps */
    if (ctx->sleep_ev.timer_set) {
        ngx_del_timer(&ctx->sleep_ev);
    }

    dc_request_end(ctx->req);
    ctx->req = NULL;
}


/* Runs plugins in this location: `dynacode on` in force, or dynacode_content here. */
static ngx_uint_t
ngx_http_dynacode_enabled(ngx_http_request_t *r)
{
    ngx_http_dynacode_loc_conf_t  *lcf;

    if (r != r->main || ngx_http_dynacode_worker.engine == NULL) {
        return 0;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_dynacode_module);

    return lcf->enable || lcf->content;
}


/* The request's context. An internal redirect clears the modules' contexts, but this one
 * lives on in the pool cleanup that ends its dc_request: found there, the request keeps its
 * bundle generation, its ngx.ctx and the record of the phases that already ran. */
ngx_http_dynacode_ctx_t *
ngx_http_dynacode_get_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    dc_rc                        rc;
    ngx_str_t                    host;
    ngx_pool_cleanup_t          *cln;
    ngx_http_dynacode_ctx_t     *ctx;
    ngx_http_core_srv_conf_t    *cscf;
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);
    if (ctx) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_dynacode_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_dynacode_module);
            return ctx;
        }
    }

    if (!create || w->engine == NULL) {
        return NULL;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_dynacode_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    /* $host: the Host header's name, else the server's */
    if (r->headers_in.server.len) {
        host = r->headers_in.server;

    } else {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = cscf->server_name;
    }

    /* a new bundle comes into force between requests, never inside one */
    if (dc_engine_sync(w->engine, w->store) < 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dynacode: the new bundle in the shared store was refused; "
                      "the plugins in force stay");
    }

    rc = dc_request_begin(w->engine, r, (const char *) host.data, host.len, &ctx->req);
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dynacode: cannot begin the request: %s", dc_strerror(rc));
        return NULL;
    }

    cln->handler = ngx_http_dynacode_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_dynacode_module);

    return ctx;
}


/* Runs the plugins of phase, once per request. */
static dc_action
ngx_http_dynacode_run(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    dc_phase phase, int *status)
{
    dc_action  act;

    *status = 0;

    if (ctx->waking && ctx->sleep_phase == phase) {
        /* the timer of a sleeping plugin fired: the phase goes on where it stopped */
        ctx->waking = 0;
        return dc_request_run(ctx->req, phase, status);
    }

    if (ctx->done & NGX_HTTP_DYNACODE_BIT(phase)) {
        return DC_ACTION_CONTINUE;
    }

    ctx->done |= NGX_HTTP_DYNACODE_BIT(phase);

    act = dc_request_run(ctx->req, phase, status);

    return act;
}


/* ---- sending what plugins produced ---- */

/* Sends the header (once) and what ngx.say kept, with the last buffer when last is set
 * (once: after an ngx.eof that went out before a sleep, the phase's end sends nothing more).
 * When the header goes out with the last buffer, the whole body is at hand: it gets a
 * Content-Length (unless a plugin set one) instead of chunked framing, as a static answer
 * would. Output sent before the end (content before an ngx.sleep) stays chunked. */
static ngx_int_t
ngx_http_dynacode_send(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    ngx_uint_t last)
{
    off_t         len;
    ngx_int_t     rc;
    ngx_chain_t  *out, *cl;

    out = ctx->out;
    ctx->out = NULL;
    ctx->last_out = &ctx->out;

    if (ctx->last_sent) {
        return NGX_OK;
    }

    if (last) {
        ctx->last_sent = 1;
    }

    if (!r->header_sent) {
        /* from here nginx knows: header filter plugins may still change the header */
        ctx->out_started = 0;

        if (r->headers_out.status == 0) {
            r->headers_out.status = NGX_HTTP_OK;
        }

        if (r->headers_out.content_type.len == 0
            && ngx_http_set_content_type(r) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (last && r->headers_out.content_length == NULL
            && r->headers_out.content_length_n < 0)
        {
            len = 0;
            for (cl = out; cl; cl = cl->next) {
                len += ngx_buf_size(cl->buf);
            }

            r->headers_out.content_length_n = len;
        }

        rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            return rc;
        }
    }

    if (out == NULL) {
        return last ? ngx_http_send_special(r, NGX_HTTP_LAST) : NGX_OK;
    }

    if (last) {
        /* the body and its end in one pass down the filters */
        for (cl = out; cl->next; cl = cl->next) { /* void */ }

        cl->buf->last_buf = 1;
        cl->buf->last_in_chain = 1;
    }

    return ngx_http_output_filter(r, out);
}


/* A plugin ended the request with status (ngx.exit, ngx.redirect, or 500 on failure). nginx
 * answers 3xx-5xx, 201 and 204 with its own special response, which still passes the header and
 * body filters, so header and body plugins see it; other 2xx get an empty body. The return value
 * is for a content handler; rewrite and access handlers go through ngx_http_dynacode_end. */
static ngx_int_t
ngx_http_dynacode_exit(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    ngx_int_t status)
{
    if (r->header_sent || ctx->out_started) {
        /* the answer has begun: it ends here, whatever the status */
        return ngx_http_dynacode_send(r, ctx, 1);
    }

    if (status >= NGX_HTTP_SPECIAL_RESPONSE || status == NGX_HTTP_CREATED
        || status == NGX_HTTP_NO_CONTENT || status < NGX_HTTP_OK)
    {
        return status < NGX_HTTP_OK ? NGX_HTTP_INTERNAL_SERVER_ERROR : status;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;

    return ngx_http_dynacode_send(r, ctx, 1);
}


/* In rewrite and access: a special response is left to the phase checker; a response the
 * module sent is finalized here (the access checker would take NGX_OK for "allowed"). */
static ngx_int_t
ngx_http_dynacode_end(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    ngx_int_t status)
{
    ngx_int_t   rc;
    ngx_uint_t  sends;

    sends = r->header_sent || ctx->out_started
            || (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE
                && status != NGX_HTTP_CREATED && status != NGX_HTTP_NO_CONTENT);

    rc = ngx_http_dynacode_exit(r, ctx, status);

    if (!sends) {
        return rc;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* ---- ngx.sleep: a timer, then the phase taken up again ---- */

/* The timer of a sleeping plugin fired: rewrite and access go on through the phase engine,
 * which calls the same handler again; content goes on here and ends the request. */
static void
ngx_http_dynacode_wake(ngx_event_t *ev)
{
    int                       status;
    ngx_int_t                 rc;
    dc_action                 act;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_dynacode_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL || !ctx->asleep) {
        return;
    }

    ngx_http_set_log_request(c->log, r);

    ctx->asleep = 0;
    ctx->waking = 1;
    r->read_event_handler = ngx_http_block_reading;

    if (ctx->sleep_phase == DC_PHASE_CONTENT) {
        act = ngx_http_dynacode_run(r, ctx, DC_PHASE_CONTENT, &status);
        rc = ngx_http_dynacode_content_end(r, ctx, act, status);

        /* NGX_DONE (asleep again) gives back the reference the sleep took */
        ngx_http_finalize_request(r, rc);

    } else {
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }

    ngx_http_run_posted_requests(c);
}


/* A plugin of phase sleeps: the worker serves others until its timer fires. Meanwhile a
 * client that goes away ends the request (its cleanup stops the timer and gives the call
 * up), and no event of the request runs the phase early. In content, what the plugins wrote
 * so far goes out first, and the request keeps a reference until the phase ends. After
 * ngx.eof, in any phase, the answer goes out whole: the client has it while the plugin
 * sleeps, and may leave without cutting the plugin's work short (as in OpenResty). */
static ngx_int_t
ngx_http_dynacode_sleep(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    dc_phase phase)
{
    ngx_int_t  rc;

    if (ctx->eof || (phase == DC_PHASE_CONTENT && ctx->out != NULL)) {
        rc = ngx_http_dynacode_send(r, ctx, ctx->eof);
        if (rc == NGX_ERROR || rc > NGX_OK) {
            return rc;
        }
    }

    ctx->sleep_ev.handler = ngx_http_dynacode_wake;
    ctx->sleep_ev.data = r;
    ctx->sleep_ev.log = r->connection->log;

    ngx_add_timer(&ctx->sleep_ev, (ngx_msec_t) dc_request_sleep_ms(ctx->req));

    ctx->asleep = 1;
    ctx->sleep_phase = phase;

    if (!ctx->eof && !r->discard_body && !r->reading_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (phase == DC_PHASE_CONTENT) {
        r->main->count++;
    }

    return NGX_DONE;
}


/* ---- phase handlers ---- */

/* Moves this handler to the end of its phase, once per worker, as lua-nginx-module does:
 * plugins then see what `set`, `rewrite` and `allow`/`deny` did. Returns NGX_DECLINED when
 * the handler moved (the checker then calls the one now in its place). */
static ngx_int_t
ngx_http_dynacode_postpone(ngx_http_request_t *r, ngx_uint_t *done)
{
    ngx_http_phase_handler_t    tmp, *ph, *cur, *last;
    ngx_http_core_main_conf_t  *cmcf;

    if (*done) {
        return NGX_OK;
    }

    *done = 1;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    ph = cmcf->phase_engine.handlers;
    cur = &ph[r->phase_handler];
    last = &ph[cur->next - 1];

    if (cur >= last) {
        return NGX_OK;
    }

    tmp = *cur;
    ngx_memmove(cur, cur + 1, (last - cur) * sizeof(ngx_http_phase_handler_t));
    *last = tmp;

    r->phase_handler--;

    return NGX_DECLINED;
}


/* Rewrite and access: plugins of phase, then what the library asks. */
static ngx_int_t
ngx_http_dynacode_phase(ngx_http_request_t *r, dc_phase phase)
{
    int                       status;
    ngx_int_t                 rc;
    dc_action                 act;
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_dynacode_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (ctx->asleep) {
        /* an event of the request while its plugin sleeps: the timer takes it up */
        return NGX_DONE;
    }

    if (!(ctx->done & NGX_HTTP_DYNACODE_BIT(phase))) {
        /* the body first, when these plugins use it */
        rc = ngx_http_dynacode_read_body(r, ctx, phase);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    act = ngx_http_dynacode_run(r, ctx, phase, &status);

    if (act == DC_ACTION_SLEEP) {
        return ngx_http_dynacode_sleep(r, ctx, phase);
    }

    if (act == DC_ACTION_CONTINUE
        && (ctx->eof || ctx->out_started || r->header_sent))
    {
        /* ngx.eof, or output (ngx.say, ngx.send_headers) without ngx.exit: the answer has
         * begun, and a later phase could only start another one; as OpenResty does, what
         * was written goes out and the request ends here */
        return ngx_http_dynacode_end(r, ctx, NGX_HTTP_OK);
    }

    if (act == DC_ACTION_CONTINUE) {
        return NGX_DECLINED;
    }

    return ngx_http_dynacode_end(r, ctx, status);
}


/* The request's plugin sleeps, or its timer just fired: its phase is to be taken up. */
static ngx_uint_t
ngx_http_dynacode_sleeping(ngx_http_request_t *r)
{
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);

    return ctx != NULL && (ctx->asleep || ctx->waking);
}


static ngx_int_t
ngx_http_dynacode_rewrite_handler(ngx_http_request_t *r)
{
    if (!ngx_http_dynacode_enabled(r)) {
        return NGX_DECLINED;
    }

    if (ngx_http_dynacode_postpone(r, &ngx_http_dynacode_worker.rewrite_postponed)
        == NGX_DECLINED)
    {
        return NGX_DECLINED;
    }

    if (r->uri_changed && !ngx_http_dynacode_sleeping(r)) {
        /* `rewrite ... last`: the plugins run in the location the request ends in */
        return NGX_DECLINED;
    }

    return ngx_http_dynacode_phase(r, DC_PHASE_REWRITE);
}


static ngx_int_t
ngx_http_dynacode_access_handler(ngx_http_request_t *r)
{
    if (!ngx_http_dynacode_enabled(r)) {
        return NGX_DECLINED;
    }

    if (ngx_http_dynacode_postpone(r, &ngx_http_dynacode_worker.access_postponed)
        == NGX_DECLINED)
    {
        return NGX_DECLINED;
    }

    return ngx_http_dynacode_phase(r, DC_PHASE_ACCESS);
}


/* dynacode_content. Where no content plugin applies to the host, the location answers as
 * if the directive were not there (NGX_DECLINED: static files, index...). */
ngx_int_t
ngx_http_dynacode_content_handler(ngx_http_request_t *r)
{
    int                       status;
    ngx_int_t                 rc;
    dc_action                 act;
    ngx_http_dynacode_ctx_t  *ctx;

    if (!ngx_http_dynacode_enabled(r)) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_dynacode_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((ctx->done & NGX_HTTP_DYNACODE_BIT(DC_PHASE_CONTENT))
        || dc_request_plugin_count(ctx->req, DC_PHASE_CONTENT) == 0)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    act = ngx_http_dynacode_run(r, ctx, DC_PHASE_CONTENT, &status);

    return ngx_http_dynacode_content_end(r, ctx, act, status);
}


/* What the content plugins asked, as a content handler's return value. */
static ngx_int_t
ngx_http_dynacode_content_end(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    dc_action act, int status)
{
    if (act == DC_ACTION_SLEEP) {
        return ngx_http_dynacode_sleep(r, ctx, DC_PHASE_CONTENT);
    }

    if (act != DC_ACTION_CONTINUE) {
        return ngx_http_dynacode_exit(r, ctx, status);
    }

    /* no output and no exit: an empty 200 (or the status a plugin set), as OpenResty */
    return ngx_http_dynacode_send(r, ctx, 1);
}


static ngx_int_t
ngx_http_dynacode_log_handler(ngx_http_request_t *r)
{
    int                       status;
    ngx_http_dynacode_ctx_t  *ctx;

    if (!ngx_http_dynacode_enabled(r)) {
        return NGX_OK;
    }

    ctx = ngx_http_dynacode_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_OK;
    }

    (void) ngx_http_dynacode_run(r, ctx, DC_PHASE_LOG, &status);

    return NGX_OK;
}


/* ---- filters ---- */

static ngx_int_t
ngx_http_dynacode_header_filter(ngx_http_request_t *r)
{
    int                       status;
    dc_action                 act;
    ngx_http_dynacode_ctx_t  *ctx;

    if (!ngx_http_dynacode_enabled(r)) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_dynacode_get_ctx(r, 1);
    if (ctx == NULL || (ctx->done & NGX_HTTP_DYNACODE_BIT(DC_PHASE_HEADER_FILTER))) {
        return ngx_http_next_header_filter(r);
    }

    act = ngx_http_dynacode_run(r, ctx, DC_PHASE_HEADER_FILTER, &status);

    if (act == DC_ACTION_FAIL) {
        /* on_error = fail: nginx's 500 page instead (it passes this filter again) */
        return ngx_http_filter_finalize_request(r, &ngx_http_dynacode_module,
                                                NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (!r->header_only
        && dc_request_plugin_count(ctx->req, DC_PHASE_BODY_FILTER) > 0)
    {
        /* a body filter plugin may change the body: its length is unknown, ranges cannot
         * be served, and the copy filter hands us the body in memory */
        ctx->filter_body = 1;
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_weak_etag(r);
        r->filter_need_in_memory = 1;
    }

    return ngx_http_next_header_filter(r);
}


/* Marks every buffer of in as sent, so that whoever produced it can reuse it. */
static void
ngx_http_dynacode_consume(ngx_chain_t *in)
{
    for ( /* void */ ; in; in = in->next) {
        if (ngx_buf_in_memory(in->buf)) {
            in->buf->pos = in->buf->last;
        }

        if (in->buf->in_file) {
            in->buf->file_pos = in->buf->file_last;
        }
    }
}


/* The chunk's in-memory data in one piece: the buffer itself when there is one, else a
 * copy in the context's scratch buffer (reused: a long body does not grow the pool). */
static u_char *
ngx_http_dynacode_gather(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    ngx_chain_t *in, size_t len)
{
    u_char       *p;
    ngx_chain_t  *cl, *one;

    one = NULL;
    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf) && cl->buf->last > cl->buf->pos) {
            if (one) {
                one = NULL;
                break;
            }
            one = cl;
        }
    }

    if (one && (size_t) (one->buf->last - one->buf->pos) == len) {
        return one->buf->pos;
    }

    if (ctx->scratch_size < len) {
        if (ctx->scratch) {
            ngx_pfree(r->pool, ctx->scratch);
        }

        ctx->scratch_size = ngx_max(len, (size_t) ngx_pagesize);
        ctx->scratch = ngx_palloc(r->pool, ctx->scratch_size);
        if (ctx->scratch == NULL) {
            ctx->scratch_size = 0;
            return NULL;
        }
    }

    p = ctx->scratch;
    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf)) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return ctx->scratch;
}


/* A buffer for len bytes, from those the next filters are done with when possible. */
static ngx_chain_t *
ngx_http_dynacode_out_buf(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx, size_t len)
{
    u_char       *start, *end;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;
    start = b->start;
    end = b->end;

    if (len && (start == NULL || (size_t) (end - start) < len)) {
        if (start) {
            ngx_pfree(r->pool, start);
        }

        start = ngx_palloc(r->pool, len);
        if (start == NULL) {
            return NULL;
        }

        end = start + len;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));
    b->start = start;
    b->end = end;
    b->pos = start;
    b->last = start;
    b->temporary = len ? 1 : 0;
    b->tag = (ngx_buf_tag_t) &ngx_http_dynacode_module;

    return cl;
}


static ngx_int_t
ngx_http_dynacode_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    int                       out_eof;
    u_char                   *data;
    size_t                    len;
    dc_str                    out;
    ngx_int_t                 rc;
    dc_action                 act;
    ngx_buf_t                *b;
    ngx_uint_t                eof, flush;
    ngx_chain_t              *cl;
    ngx_http_dynacode_ctx_t  *ctx;

    if (in == NULL || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);
    if (ctx == NULL || !ctx->filter_body) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->body_ended) {
        /* a plugin set ngx.arg[2] = true: the rest of the body is dropped */
        ngx_http_dynacode_consume(in);
        return NGX_OK;
    }

    len = 0;
    eof = 0;
    flush = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!ngx_buf_in_memory(b) && ngx_buf_size(b) > 0) {
            /* a buffer still in a file: the header filter asked the copy filter for the
             * body in memory, so this does not happen with nginx's own modules; such a
             * chunk passes unchanged rather than being read here, on the event loop */
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "dynacode: a body chunk in a file passed the body filter "
                          "plugins unchanged");
            return ngx_http_next_body_filter(r, in);
        }

        if (ngx_buf_in_memory(b)) {
            len += b->last - b->pos;
        }

        eof |= b->last_buf;
        flush |= b->flush;
    }

    data = NULL;
    if (len) {
        data = ngx_http_dynacode_gather(r, ctx, in, len);
        if (data == NULL) {
            return NGX_ERROR;
        }
    }

    act = dc_request_body_filter(ctx->req, data ? (const char *) data : "", len,
                                 (int) eof, &out, &out_eof);

    /* the library copied the chunk: the buffers go back to whoever produced them */
    ngx_http_dynacode_consume(in);

    if (act == DC_ACTION_FAIL) {
        /* on_error = fail: the header is gone already, the connection is cut */
        return NGX_ERROR;
    }

    if (out_eof) {
        eof = 1;
    }

    if (out.len == 0 && !eof && !flush) {
        return ngx_http_next_body_filter(r, NULL);
    }

    /* out belongs to the request until the next call: a copy goes down the chain */
    cl = ngx_http_dynacode_out_buf(r, ctx, out.len);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;
    b->last = ngx_cpymem(b->pos, out.data, out.len);

    if (eof) {
        b->last_buf = 1;
        ctx->body_ended = 1;
    }

    b->flush = flush;
    cl->next = NULL;

    rc = ngx_http_next_body_filter(r, cl);

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &cl,
                            (ngx_buf_tag_t) &ngx_http_dynacode_module);

    return rc;
}
