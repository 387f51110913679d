/* ngx_http_dynacode_headers_in.c - the dc_host callbacks for request headers: read the list,
 * set or remove headers in it, then point r->headers_in's well-known fields (and $host)
 * at the headers again.
 */
#include "ngx_http_dynacode_host.h"


int
ngx_http_dynacode_req_headers(void *hreq, dc_each_header_cb each, void *arg)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    dc_str            n, v;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].hash == 0) {
                continue;
            }

            n.data = (const char *) h[i].key.data;
            n.len = h[i].key.len;
            v.data = (const char *) h[i].value.data;
            v.len = h[i].value.len;

            if (each(arg, n, v)) {
                return 0;
            }
        }
    }

    return 0;
}


/* nginx keeps pointers to well-known request headers (r->headers_in.host, .cookies...) into
 * the list; after the list changed, each is pointed at its header again. */
static ngx_int_t
ngx_http_dynacode_relink_headers_in(ngx_http_request_t *r)
{
    ngx_uint_t                 is_array;
    ngx_array_t               *a;
    ngx_table_elt_t           *h, **ph, **slot;
    ngx_http_header_t         *hh;
    ngx_http_dynacode_iter_t   it;

    for (hh = ngx_http_headers_in; hh->name.len; hh++) {

        if (hh->offset == 0) {  /* the list itself: no pointer to keep */
            continue;
        }

        is_array = hh->offset == offsetof(ngx_http_headers_in_t, cookies);
#if (NGX_HTTP_X_FORWARDED_FOR)
        is_array |= hh->offset == offsetof(ngx_http_headers_in_t, x_forwarded_for);
#endif

        a = NULL;
        ph = NULL;

        if (is_array) {
            a = (ngx_array_t *) ((char *) &r->headers_in + hh->offset);
            a->nelts = 0;

        } else {
            ph = (ngx_table_elt_t **) ((char *) &r->headers_in + hh->offset);
            *ph = NULL;
        }

        it.part = &r->headers_in.headers.part;
        it.i = 0;

        while ((h = ngx_http_dynacode_next(&it)) != NULL) {

            if (h->hash == 0 || h->key.len != hh->name.len
                || ngx_strncasecmp(h->key.data, hh->name.data, hh->name.len) != 0)
            {
                continue;
            }

            if (!is_array) {
                *ph = h;
                break;
            }

            if (a->elts == NULL
                && ngx_array_init(a, r->pool, 2, sizeof(ngx_table_elt_t *))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            slot = ngx_array_push(a);
            if (slot == NULL) {
                return NGX_ERROR;
            }

            *slot = h;
        }
    }

    if (r->headers_in.content_length) {
        r->headers_in.content_length_n =
            ngx_atoof(r->headers_in.content_length->value.data,
                      r->headers_in.content_length->value.len);

    } else {
        r->headers_in.content_length_n = -1;
    }

    return NGX_OK;
}


/* $host follows a new Host header, lowercased and without its port, as nginx derives it. */
static ngx_int_t
ngx_http_dynacode_set_server(ngx_http_request_t *r, const dc_str *v)
{
    size_t   i, len;
    u_char  *p;

    len = v->len;
    for (i = 0; i < v->len; i++) {
        if (v->data[i] == ':') {
            len = i;
            break;
        }

        if (v->data[i] == '/' || v->data[i] == '\0' || v->data[i] == '\\') {
            return NGX_DECLINED;
        }
    }

    while (len && v->data[len - 1] == '.') {
        len--;
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_dynacode_strlow(p, (u_char *) v->data, len);
    r->headers_in.server.data = p;
    r->headers_in.server.len = len;

    return NGX_OK;
}


/* Takes every header named name but the first keep out of list l (their buffers, when ours,
 * are released). A part left empty is unlinked, since nginx's own loops (the proxy module's
 * among them) expect no empty part after the first. */
static ngx_int_t
ngx_http_dynacode_list_remove(ngx_http_request_t *r, ngx_list_t *l, dc_str name,
    size_t keep)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part, *prev, *next;
    ngx_table_elt_t  *h;

    prev = NULL;

    for (part = &l->part; part; part = next) {
        h = part->elts;
        i = 0;

        while (i < part->nelts) {
            if (h[i].key.len == name.len
                && ngx_strncasecmp(h[i].key.data, (u_char *) name.data, name.len) == 0
                && keep-- == 0)
            {
                keep = 0;
                ngx_http_dynacode_release(r, h[i].value.data);
                ngx_http_dynacode_release(r, h[i].key.data);
                ngx_http_dynacode_release(r, h[i].lowcase_key);
                ngx_memmove(&h[i], &h[i + 1],
                            (part->nelts - i - 1) * sizeof(ngx_table_elt_t));
                part->nelts--;
                continue;
            }

            i++;
        }

        next = part->next;

        if (part->nelts > 0 || (part == &l->part && next == NULL)) {
            prev = part;
            continue;
        }

        if (part == &l->part) {
            /* the first part lives in the list itself: the next one moves in */
            *part = *next;
            if (l->last == next) {
                l->last = part;
            }

            next = part;   /* look at it again */
            continue;
        }

        prev->next = next;
        if (l->last == part) {
            l->last = prev;
        }
    }

    return NGX_OK;
}


int
ngx_http_dynacode_req_header_set(void *hreq, dc_str name, const dc_str *values, size_t n)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    size_t                     k;
    ngx_table_elt_t           *h;
    ngx_http_dynacode_iter_t   it;

    if (name.len == 0 || ngx_http_dynacode_header_ok(r, name, values, n) != NGX_OK) {
        return -1;
    }

    /* the headers of that name take the new values in place, as many as there are; the
     * others leave the list (not a hash of 0: the proxy module would still send those),
     * then the rest of the new values are appended */
    k = 0;
    it.part = &r->headers_in.headers.part;
    it.i = 0;

    while (k < n && (h = ngx_http_dynacode_next(&it)) != NULL) {
        if (h->key.len != name.len
            || ngx_strncasecmp(h->key.data, (u_char *) name.data, name.len) != 0)
        {
            continue;
        }

        if (ngx_http_dynacode_fill(r, h, 0, name, values[k]) != NGX_OK) {
            h->hash = 0;
            return -1;
        }

        h->hash = ngx_hash_key(h->lowcase_key, name.len);
        k++;
    }

    if (ngx_http_dynacode_list_remove(r, &r->headers_in.headers, name, k) != NGX_OK) {
        return -1;
    }

    for ( /* void */ ; k < n; k++) {
        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return -1;
        }

        h->hash = 0;
        h->lowcase_key = NULL;
        h->key.len = 0;

        if (ngx_http_dynacode_fill(r, h, 1, name, values[k]) != NGX_OK) {
            return -1;
        }

        h->hash = ngx_hash_key(h->lowcase_key, name.len);
    }

    if (ngx_http_dynacode_relink_headers_in(r) != NGX_OK) {
        return -1;
    }

    if (n > 0 && name.len == 4 && ngx_strncasecmp((u_char *) name.data, (u_char *) "host", 4) == 0
        && ngx_http_dynacode_set_server(r, &values[0]) == NGX_ERROR)
    {
        return -1;
    }

    return 0;
}
