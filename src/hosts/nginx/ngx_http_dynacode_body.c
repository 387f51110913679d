/* ngx_http_dynacode_body.c - the request body for plugins: read before the rewrite or access
 * plugins that use it run (ngx_http_read_client_request_body, the phase resumed when it is
 * all in), and the dc_host callbacks ngx.req.read_body, get_body_data and get_post_args reach
 * it through. Only a body nginx kept in memory (client_body_buffer_size) is handed over.
 */
#include "ngx_http_dynacode_host.h"


/* nginx calls this once the whole body is in: at once from the read, or later from the
 * event loop, where the phase the read stopped is taken up again. */
static void
ngx_http_dynacode_body_in(ngx_http_request_t *r)
{
    ngx_http_dynacode_ctx_t  *ctx;

    /* the read took a reference on the request; the phase handler no longer waits on it */
    r->main->count--;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL) {
        return;
    }

    ctx->body_read = 1;

    if (ctx->body_waiting) {
        ctx->body_waiting = 0;
        ngx_http_core_run_phases(r);
    }
}


ngx_int_t
ngx_http_dynacode_read_body(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    dc_phase phase)
{
    ngx_int_t  rc;

    if (ctx->body_read
        || (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked)
        || !dc_request_wants_body(ctx->req, phase))
    {
        return NGX_OK;
    }

    /* in one buffer when it fits client_body_buffer_size, else in a temporary file */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_dynacode_body_in);

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    if (ctx->body_read) {
        return NGX_OK;
    }

    /* the rest comes later: this handler runs again once it is in */
    ctx->body_waiting = 1;

    return NGX_DONE;
}


int
ngx_http_dynacode_read_body_cb(void *hreq)
{
    ngx_http_request_t       *r = hreq;
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL) {
        return -1;
    }

    /* a request without a body, or one read before this phase, can say it is read */
    if (!ctx->body_read && (r->headers_in.content_length_n > 0 || r->headers_in.chunked)) {
        return -1;
    }

    ctx->body_asked = 1;

    return 0;
}


int
ngx_http_dynacode_req_body(void *hreq, dc_str *data)
{
    size_t                    len;
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_request_t       *r = hreq;
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL || !ctx->body_asked) {
        return -1;
    }

    if (r->request_body == NULL) {
        return 0;
    }

    if (r->request_body->temp_file) {
        return 2;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            return 2;
        }

        len += b->last - b->pos;
    }

    if (len == 0) {
        return 0;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        data->data = (const char *) cl->buf->pos;
        data->len = len;
        return 1;
    }

    /* in pieces: gathered once into the pool (at most client_body_buffer_size), kept for
     * the later calls */
    if (ctx->body != NULL && ctx->body_len == len) {
        data->data = (const char *) ctx->body;
        data->len = len;
        return 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return -1;
    }

    ctx->body = p;
    ctx->body_len = len;

    data->data = (const char *) p;
    data->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return 1;
}
