/* ngx_http_dynacode_headers_out.c - the dc_host callbacks for response headers: read and set
 * them in r->headers_out, whose own fields (Content-Type, Location, Cache-Control...) are
 * kept pointing at the headers nginx sends.
 */
#include "ngx_http_dynacode_host.h"


typedef struct {
    ngx_str_t   name;
    ngx_uint_t  offset;   /* of a ngx_table_elt_t * in ngx_http_headers_out_t */
} ngx_http_dynacode_out_header_t;


/* The response headers nginx points at from r->headers_out, besides Content-Type and
 * Content-Length (handled apart): the header filter sends them from there. */
static ngx_http_dynacode_out_header_t  ngx_http_dynacode_out_headers[] = {
    { ngx_string("Server"), offsetof(ngx_http_headers_out_t, server) },
    { ngx_string("Date"), offsetof(ngx_http_headers_out_t, date) },
    { ngx_string("Content-Encoding"),
      offsetof(ngx_http_headers_out_t, content_encoding) },
    { ngx_string("Location"), offsetof(ngx_http_headers_out_t, location) },
    { ngx_string("Refresh"), offsetof(ngx_http_headers_out_t, refresh) },
    { ngx_string("Last-Modified"), offsetof(ngx_http_headers_out_t, last_modified) },
    { ngx_string("Content-Range"), offsetof(ngx_http_headers_out_t, content_range) },
    { ngx_string("Accept-Ranges"), offsetof(ngx_http_headers_out_t, accept_ranges) },
    { ngx_string("WWW-Authenticate"),
      offsetof(ngx_http_headers_out_t, www_authenticate) },
    { ngx_string("Expires"), offsetof(ngx_http_headers_out_t, expires) },
    { ngx_string("ETag"), offsetof(ngx_http_headers_out_t, etag) },
    { ngx_null_string, 0 }
};


/* Bit k set: some name above, or Content-Type, Content-Length, Cache-Control or Link, is k
 * bytes long; made at the first header set (the event loop's thread only). */
static uint64_t  ngx_http_dynacode_special_lengths;


static void
ngx_http_dynacode_special_init(void)
{
    uint64_t                         m;
    ngx_http_dynacode_out_header_t  *oh;

    m = (1ULL << (sizeof("Content-Type") - 1)) | (1ULL << (sizeof("Content-Length") - 1))
        | (1ULL << (sizeof("Cache-Control") - 1)) | (1ULL << (sizeof("Link") - 1));

    for (oh = ngx_http_dynacode_out_headers; oh->name.len; oh++) {
        m |= 1ULL << oh->name.len;
    }

    ngx_http_dynacode_special_lengths = m;
}


static ngx_int_t
ngx_http_dynacode_name_eq(ngx_str_t *key, dc_str name)
{
    return key->len == name.len
           && ngx_strncasecmp(key->data, (u_char *) name.data, name.len) == 0;
}


int
ngx_http_dynacode_resp_header_get(void *hreq, dc_str name, dc_each_value_cb each,
    void *arg)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char                    *p;
    dc_str                     v;
    ngx_str_t                  ct = ngx_string("Content-Type");
    ngx_str_t                  cl = ngx_string("Content-Length");
    ngx_table_elt_t           *h;
    ngx_http_dynacode_iter_t   it;

    if (ngx_http_dynacode_name_eq(&ct, name)) {
        if (r->headers_out.content_type.len == 0) {
            return 0;
        }

        v.data = (const char *) r->headers_out.content_type.data;
        v.len = r->headers_out.content_type.len;
        each(arg, v);
        return 0;
    }

    if (ngx_http_dynacode_name_eq(&cl, name)
        && r->headers_out.content_length == NULL
        && r->headers_out.content_length_n >= 0)
    {
        p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (p == NULL) {
            return -1;
        }

        v.data = (const char *) p;
        v.len = ngx_sprintf(p, "%O", r->headers_out.content_length_n) - p;
        each(arg, v);
        return 0;
    }

    it.part = &r->headers_out.headers.part;
    it.i = 0;

    while ((h = ngx_http_dynacode_next(&it)) != NULL) {

        if (h->hash == 0 || !ngx_http_dynacode_name_eq(&h->key, name)) {
            continue;
        }

        v.data = (const char *) h->value.data;
        v.len = h->value.len;

        if (each(arg, v)) {
            break;
        }
    }

    return 0;
}


/* Points a ngx_table_elt_t * array of r->headers_out (Cache-Control, Link) at the live
 * headers of that name, making the array on first use. */
static ngx_int_t
ngx_http_dynacode_relink_out_array(ngx_http_request_t *r, ngx_array_t *a, dc_str name)
{
    ngx_table_elt_t           *h, **slot;
    ngx_http_dynacode_iter_t   it;

    if (a->elts == NULL) {
        /* never used yet: $sent_http_cache_control and $sent_http_link read this array */
        if (ngx_array_init(a, r->pool, 2, sizeof(ngx_table_elt_t *)) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    a->nelts = 0;

    it.part = &r->headers_out.headers.part;
    it.i = 0;

    while ((h = ngx_http_dynacode_next(&it)) != NULL) {

        if (h->hash == 0 || !ngx_http_dynacode_name_eq(&h->key, name)) {
            continue;
        }

        slot = ngx_array_push(a);
        if (slot == NULL) {
            return NGX_ERROR;
        }

        *slot = h;
    }

    return NGX_OK;
}


int
ngx_http_dynacode_resp_header_set(void *hreq, dc_str name, const dc_str *values, size_t n)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    off_t                            len;
    size_t                           k;
    ngx_str_t                        ct = ngx_string("Content-Type");
    ngx_str_t                        cl = ngx_string("Content-Length");
    ngx_str_t                        cc = ngx_string("Cache-Control");
    ngx_str_t                        link = ngx_string("Link");
    ngx_uint_t                       special;
    ngx_table_elt_t                 *h, *first, **ph;
    ngx_http_dynacode_iter_t         it;
    ngx_http_dynacode_out_header_t  *oh;

    if (ngx_http_dynacode_sent(r) || name.len == 0
        || ngx_http_dynacode_header_ok(r, name, values, n) != NGX_OK)
    {
        return -1;
    }

    /* a name of no length nginx keeps apart (most: X-..., Set-Cookie, Access-Control-...)
     * goes to the list without comparing it with each of them */
    if (ngx_http_dynacode_special_lengths == 0) {
        ngx_http_dynacode_special_init();
    }

    special = name.len < 64
              && (ngx_http_dynacode_special_lengths & ((uint64_t) 1 << name.len));

    if (special && ngx_http_dynacode_name_eq(&ct, name)) {
        /* nginx sends Content-Type from r->headers_out.content_type (with the charset) */
        r->headers_out.content_type_lowcase = NULL;
        r->headers_out.content_type_hash = 0;

        if (n == 0) {
            r->headers_out.content_type.len = 0;
            r->headers_out.content_type.data = NULL;
            r->headers_out.content_type_len = 0;
            return 0;
        }

        r->headers_out.content_type.data =
            ngx_http_dynacode_store(r, NULL, values[0].data, values[0].len);
        if (r->headers_out.content_type.data == NULL) {
            return -1;
        }

        r->headers_out.content_type.len = values[0].len;
        r->headers_out.content_type_len = values[0].len;
        return 0;
    }

    len = -1;
    if (special && ngx_http_dynacode_name_eq(&cl, name) && n > 0) {
        len = ngx_atoof((u_char *) values[0].data, values[0].len);
        if (len == NGX_ERROR) {
            return -1;
        }
    }

    /* the elements of that name (live, or left by an earlier change) take the new values in
     * place, so that setting a header in a loop does not grow the list; the others get a hash
     * of 0, which makes the header filter skip them */
    first = NULL;
    k = 0;
    it.part = &r->headers_out.headers.part;
    it.i = 0;

    while ((h = ngx_http_dynacode_next(&it)) != NULL) {

        if (!ngx_http_dynacode_name_eq(&h->key, name)) {
            continue;
        }

        if (k == n) {
            if (h->hash != 0) {
                h->hash = 0;
                ngx_http_dynacode_release(r, h->value.data);
            }
            continue;
        }

        h->hash = 0;
        if (ngx_http_dynacode_fill(r, h, 0, name, values[k]) != NGX_OK) {
            return -1;
        }

        h->hash = 1;
        k++;

        if (first == NULL) {
            first = h;
        }
    }

    for ( /* void */ ; k < n; k++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return -1;
        }

        h->hash = 0;
        h->lowcase_key = NULL;
        h->key.len = 0;

        if (ngx_http_dynacode_fill(r, h, 1, name, values[k]) != NGX_OK) {
            return -1;
        }

        h->hash = 1;

        if (first == NULL) {
            first = h;
        }
    }

    if (!special) {
        return 0;
    }

    if (ngx_http_dynacode_name_eq(&cl, name)) {
        r->headers_out.content_length = first;
        r->headers_out.content_length_n = len;
        return 0;
    }

    for (oh = ngx_http_dynacode_out_headers; oh->name.len; oh++) {
        if (!ngx_http_dynacode_name_eq(&oh->name, name)) {
            continue;
        }

        ph = (ngx_table_elt_t **) ((char *) &r->headers_out + oh->offset);
        *ph = first;

        if (oh->offset == offsetof(ngx_http_headers_out_t, location)) {
            /* not pointed at: nginx would make a relative Location absolute with the
             * request's Host; the list sends it as the plugin wrote it */
            *ph = NULL;
        }

        if (oh->offset == offsetof(ngx_http_headers_out_t, last_modified)) {
            r->headers_out.last_modified_time =
                first ? ngx_parse_http_time(first->value.data, first->value.len) : -1;
        }

        if (oh->offset == offsetof(ngx_http_headers_out_t, accept_ranges)
            && first == NULL)
        {
            r->allow_ranges = 0;
        }

        return 0;
    }

    if (ngx_http_dynacode_name_eq(&cc, name)) {
        return ngx_http_dynacode_relink_out_array(r, &r->headers_out.cache_control,
                                                  name) == NGX_OK ? 0 : -1;
    }

    if (ngx_http_dynacode_name_eq(&link, name)) {
        return ngx_http_dynacode_relink_out_array(r, &r->headers_out.link, name)
               == NGX_OK ? 0 : -1;
    }

    return 0;
}
