/* ngx_http_dynacode_req.c - the dc_host callbacks for the request's facts (start time, HTTP
 * version, internal or not), its method, the whole list of response headers, and the header
 * and the end of the body a plugin asks for (ngx.send_headers, ngx.eof): those two only mark
 * the request; the phase handler sends once the plugins of the phase returned.
 */
#include "ngx_http_dynacode_host.h"


/* The methods a plugin may set, with the names $request_method then gives. */
static struct {
    ngx_uint_t  method;
    ngx_str_t   name;
} ngx_http_dynacode_methods[] = {
    { NGX_HTTP_GET, ngx_string("GET") },
    { NGX_HTTP_HEAD, ngx_string("HEAD") },
    { NGX_HTTP_POST, ngx_string("POST") },
    { NGX_HTTP_PUT, ngx_string("PUT") },
    { NGX_HTTP_DELETE, ngx_string("DELETE") },
    { NGX_HTTP_MKCOL, ngx_string("MKCOL") },
    { NGX_HTTP_COPY, ngx_string("COPY") },
    { NGX_HTTP_MOVE, ngx_string("MOVE") },
    { NGX_HTTP_OPTIONS, ngx_string("OPTIONS") },
    { NGX_HTTP_PROPFIND, ngx_string("PROPFIND") },
    { NGX_HTTP_PROPPATCH, ngx_string("PROPPATCH") },
    { NGX_HTTP_LOCK, ngx_string("LOCK") },
    { NGX_HTTP_UNLOCK, ngx_string("UNLOCK") },
    { NGX_HTTP_PATCH, ngx_string("PATCH") },
    { NGX_HTTP_TRACE, ngx_string("TRACE") },
    { 0, ngx_null_string }
};


/* ---- facts ---- */

double
ngx_http_dynacode_start_time(void *hreq)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    return (double) r->start_sec + r->start_msec / 1000.0;
}


int
ngx_http_dynacode_http_version(void *hreq)
{
    return (int) ngx_http_dynacode_req(hreq)->http_version;
}


int
ngx_http_dynacode_is_internal(void *hreq)
{
    return ngx_http_dynacode_req(hreq)->internal ? 1 : 0;
}


int
ngx_http_dynacode_set_method(void *hreq, int method, dc_str name)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    ngx_uint_t  i;

    for (i = 0; ngx_http_dynacode_methods[i].method; i++) {
        if (ngx_http_dynacode_methods[i].method == (ngx_uint_t) method
            && ngx_http_dynacode_methods[i].name.len == name.len
            && ngx_strncmp(ngx_http_dynacode_methods[i].name.data, name.data, name.len)
               == 0)
        {
            r->method = ngx_http_dynacode_methods[i].method;
            r->method_name = ngx_http_dynacode_methods[i].name;
            return 0;
        }
    }

    return -1;
}


/* ---- the response headers ---- */

/* Content-Type and Content-Length apart from the list, Connection and Transfer-Encoding as
 * the header filter will write them (named in lower case, as lua-nginx-module names them),
 * then every live header of the list. The length is formatted into a buffer of the worker's:
 * the library reads it before it calls the host again, and a worker serves one call at once. */
int
ngx_http_dynacode_resp_headers(void *hreq, dc_each_header_cb each, void *arg)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    dc_str                     n, v;
    ngx_table_elt_t           *h;
    ngx_http_dynacode_iter_t   it;
    static u_char              len[NGX_OFF_T_LEN];

    if (r->headers_out.content_type.len) {
        n.data = "content-type";
        n.len = sizeof("content-type") - 1;
        v.data = (const char *) r->headers_out.content_type.data;
        v.len = r->headers_out.content_type.len;

        if (each(arg, n, v)) {
            return 0;
        }
    }

    if (r->headers_out.content_length == NULL && r->headers_out.content_length_n >= 0) {
        n.data = "content-length";
        n.len = sizeof("content-length") - 1;
        v.data = (const char *) len;
        v.len = ngx_snprintf(len, sizeof(len), "%O", r->headers_out.content_length_n) - len;

        if (each(arg, n, v)) {
            return 0;
        }
    }

    n.data = "connection";
    n.len = sizeof("connection") - 1;
    v.data = r->headers_out.status == NGX_HTTP_SWITCHING_PROTOCOLS ? "upgrade"
             : r->keepalive ? "keep-alive" : "close";
    v.len = ngx_strlen(v.data);

    if (each(arg, n, v)) {
        return 0;
    }

    if (r->chunked) {
        n.data = "transfer-encoding";
        n.len = sizeof("transfer-encoding") - 1;
        v.data = "chunked";
        v.len = sizeof("chunked") - 1;

        if (each(arg, n, v)) {
            return 0;
        }
    }

    it.part = &r->headers_out.headers.part;
    it.i = 0;

    while ((h = ngx_http_dynacode_next(&it)) != NULL) {

        if (h->hash == 0) {
            continue;
        }

        n.data = (const char *) h->key.data;
        n.len = h->key.len;
        v.data = (const char *) h->value.data;
        v.len = h->value.len;

        if (each(arg, n, v)) {
            break;
        }
    }

    return 0;
}


/* ---- the header and the end of the body ---- */

/* Marks the header as good as sent, as ngx.say does; the phase handler sends it. */
static ngx_http_dynacode_ctx_t *
ngx_http_dynacode_start_output(ngx_http_request_t *r)
{
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_dynacode_module);
    if (ctx == NULL) {
        return NULL;
    }

    if (!ctx->out_started && !r->header_sent) {
        ctx->out_started = 1;

        if (r->headers_out.status == 0) {
            r->headers_out.status = NGX_HTTP_OK;
        }
    }

    return ctx;
}


int
ngx_http_dynacode_send_headers(void *hreq)
{
    return ngx_http_dynacode_start_output(ngx_http_dynacode_req(hreq)) ? 0 : -1;
}


/* The phase handler sends the header, the output kept and the last buffer, and the request
 * ends with this phase (ngx_http_dynacode_phase, content handler). */
int
ngx_http_dynacode_eof(void *hreq)
{
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_dynacode_start_output(ngx_http_dynacode_req(hreq));
    if (ctx == NULL) {
        return -1;
    }

    ctx->eof = 1;

    return 0;
}


int
ngx_http_dynacode_eof_seen(void *hreq)
{
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(ngx_http_dynacode_req(hreq), ngx_http_dynacode_module);

    return ctx != NULL && ctx->eof;
}
