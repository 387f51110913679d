/* ngx_http_dynacode_host.c - the dc_host table over ngx_http_request_t (the hreq of every
 * callback is r), and its callbacks for status, output, URI, log, clock and worker facts; the
 * others are in the _vars, _headers_in, _headers_out and _req files.
 */
#include "ngx_http_dynacode_host.h"


/* the least room of an output buffer: the next pieces of the phase go into it */
#define NGX_HTTP_DYNACODE_OUT_BUF  512


/* ---- status and output ---- */

static int
ngx_http_dynacode_status_get(void *hreq)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    if (r->err_status) {
        return (int) r->err_status;
    }

    return (int) r->headers_out.status;
}


/* After ngx.say, the header counts as sent: the module sends it when the plugins of the
 * phase are done (see ngx_http_dynacode_output). */
ngx_uint_t
ngx_http_dynacode_sent(ngx_http_request_t *r)
{
    ngx_http_dynacode_ctx_t  *ctx;

    if (r->header_sent) {
        return 1;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);

    return ctx != NULL && ctx->out_started;
}


static int
ngx_http_dynacode_status_set(void *hreq, int status)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    if (ngx_http_dynacode_sent(r) || status < 100 || status > 999) {
        return -1;
    }

    r->headers_out.status = (ngx_uint_t) status;
    r->headers_out.status_line.len = 0;
    r->err_status = 0;

    return 0;
}


static int
ngx_http_dynacode_headers_sent(void *hreq)
{
    return (int) ngx_http_dynacode_sent(ngx_http_dynacode_req(hreq));
}


/* ngx.say / ngx.print. The output is kept in the request's context and sent (header first)
 * by the phase handler once the plugins of the phase returned: sending from here would run
 * the header and body filter plugins inside the call of this one. */
static int
ngx_http_dynacode_output(void *hreq, const char *data, size_t len)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);
    if (ctx == NULL) {
        return -1;
    }

    if (!ctx->out_started && !r->header_sent) {
        ctx->out_started = 1;

        if (r->headers_out.status == 0) {
            r->headers_out.status = NGX_HTTP_OK;
        }
    }

    if (r->header_only || len == 0) {
        return 0;
    }

    /* the chain waits here until the phase ends (or a sleep or eof sends it): a piece goes
     * into the last buffer when it fits, so that several ngx.say make one buffer */
    if (ctx->out != NULL) {
        cl = (ngx_chain_t *) ((u_char *) ctx->last_out - offsetof(ngx_chain_t, next));
        b = cl->buf;

        if ((size_t) (b->end - b->last) >= len) {
            b->last = ngx_cpymem(b->last, data, len);
            return 0;
        }
    }

    b = ngx_create_temp_buf(r->pool, ngx_max(len, NGX_HTTP_DYNACODE_OUT_BUF));
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return -1;
    }

    b->last = ngx_cpymem(b->last, data, len);
    b->tag = (ngx_buf_tag_t) &ngx_http_dynacode_module;

    cl->buf = b;
    cl->next = NULL;

    if (ctx->out == NULL) {
        ctx->last_out = &ctx->out;
    }

    *ctx->last_out = cl;
    ctx->last_out = &cl->next;

    return 0;
}


/* ngx.req.set_uri (rewrite phase): as lua-nginx-module; with jump, nginx looks for the
 * location again once the rewrite phase is over. */
static int
ngx_http_dynacode_set_uri(void *hreq, dc_str uri, int jump)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char  *p;

    if (ngx_http_dynacode_path_ok((u_char *) uri.data, uri.len) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dynacode: a plugin's new URI is not a plain path; not set");
        return -1;
    }

    p = ngx_http_dynacode_store(r, NULL, uri.data, uri.len);
    if (p == NULL) {
        return -1;
    }

    r->uri.data = p;
    r->uri.len = uri.len;
    r->internal = 1;
    r->valid_unparsed_uri = 0;

    ngx_http_set_exten(r);

    if (jump) {
        r->uri_changed = 1;

    } else {
        r->valid_location = 0;
        r->uri_changed = 0;
    }

    return 0;
}


/* ---- log, time, worker ---- */

static void
ngx_http_dynacode_log(void *hreq, int level, const char *msg, size_t len)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char      buf[4200], *end;
    ngx_uint_t  lv;

    /* OpenResty's ngx.STDERR .. ngx.DEBUG are nginx's NGX_LOG_STDERR .. NGX_LOG_DEBUG */
    if (level < NGX_LOG_STDERR) {
        lv = NGX_LOG_ERR;

    } else if (level > NGX_LOG_DEBUG) {
        lv = NGX_LOG_DEBUG;

    } else {
        lv = (ngx_uint_t) level;
    }

    /* the API sends escaped lines already; a stray control byte is escaped again here */
    end = ngx_http_dynacode_log_escape(buf, sizeof(buf), (u_char *) msg, len, 0);

    ngx_log_error(lv, r->connection->log, 0, "%*s", (size_t) (end - buf), buf);
}


static double
ngx_http_dynacode_now(void *hreq)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (double) tp->sec + tp->msec / 1000.0;
}


static int
ngx_http_dynacode_worker_id(void *hreq)
{
    return (int) ngx_worker;
}


static int
ngx_http_dynacode_worker_count(void *hreq)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx, ngx_core_module);

    return (int) ccf->worker_processes;
}


static int
ngx_http_dynacode_worker_exiting(void *hreq)
{
    /* a graceful stop or a reload: the worker finishes its requests and ends */
    return ngx_exiting || ngx_quit;
}


static const dc_host  ngx_http_dynacode_host_cbs = {
    .var_get = ngx_http_dynacode_var_get,
    .var_set = ngx_http_dynacode_var_set,
    .req_headers = ngx_http_dynacode_req_headers,
    .req_header_set = ngx_http_dynacode_req_header_set,
    .resp_header_get = ngx_http_dynacode_resp_header_get,
    .resp_header_set = ngx_http_dynacode_resp_header_set,
    .status_get = ngx_http_dynacode_status_get,
    .status_set = ngx_http_dynacode_status_set,
    .headers_sent = ngx_http_dynacode_headers_sent,
    .output = ngx_http_dynacode_output,
    .set_uri = ngx_http_dynacode_set_uri,
    .log = ngx_http_dynacode_log,
    .now = ngx_http_dynacode_now,
    .worker_id = ngx_http_dynacode_worker_id,
    .start_time = ngx_http_dynacode_start_time,
    .http_version = ngx_http_dynacode_http_version,
    .is_internal = ngx_http_dynacode_is_internal,
    .set_method = ngx_http_dynacode_set_method,
    .resp_headers = ngx_http_dynacode_resp_headers,
    .send_headers = ngx_http_dynacode_send_headers,
    .eof = ngx_http_dynacode_eof,
    .eof_seen = ngx_http_dynacode_eof_seen,
    .worker_count = ngx_http_dynacode_worker_count,
    .worker_exiting = ngx_http_dynacode_worker_exiting,
    .read_body = ngx_http_dynacode_read_body_cb,
    .req_body = ngx_http_dynacode_req_body,
};


const dc_host *
ngx_http_dynacode_host(void)
{
    return &ngx_http_dynacode_host_cbs;
}
