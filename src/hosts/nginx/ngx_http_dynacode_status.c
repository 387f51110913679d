/* ngx_http_dynacode_status.c - the dynacode_status handler: picks the format from ?format,
 * has the library render the page (dc_status_render) and sends its bytes.
 */
#include "ngx_http_dynacode.h"


/* The library's malloc'd page, released with the request's pool. */
static void
ngx_http_dynacode_status_free(void *data)
{
    free(data);
}


ngx_int_t
ngx_http_dynacode_status_handler(ngx_http_request_t *r)
{
    char                        *text;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_str_t                    format;
    ngx_buf_t                   *b;
    ngx_chain_t                  out;
    dc_status_format             fmt;
    dc_status_source             src;
    ngx_pool_cleanup_t          *cln;
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

    fmt = DC_STATUS_JSON;
    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 10
        && ngx_strncmp(format.data, "prometheus", 10) == 0)
    {
        fmt = DC_STATUS_PROMETHEUS;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&src, sizeof(dc_status_source));
    src.store = w->store;
    src.engine = w->engine;
    src.events = w->events;
    src.worker_pid = (int64_t) ngx_pid;
    src.worker_id = (uint32_t) ngx_worker;

    if (dc_status_render(&src, fmt, &text, &len) != DC_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_dynacode_status_free;
    cln->data = text;

    if (fmt == DC_STATUS_PROMETHEUS) {
        ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->start = (u_char *) text;
    b->pos = (u_char *) text;
    b->last = (u_char *) text + len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
