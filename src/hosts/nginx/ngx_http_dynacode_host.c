/* ngx_http_dynacode_host.c - the dc_host callbacks over ngx_http_request_t: variables (read
 * with ngx_http_get_variable, written the way lua-nginx-module does), request and response
 * headers, status, output, URI, log, clock and worker id. The hreq of every callback is r.
 */
#include "ngx_http_dynacode.h"


#define ngx_http_dynacode_req(hreq)  ((ngx_http_request_t *) (hreq))

/* variable names up to this length are lowercased on the stack */
#define NGX_HTTP_DYNACODE_NAME_LEN   128

/* what plugins may take from r->pool for the values they set, over a whole request: the pool
 * only grows, so a plugin setting a header in a loop must meet a bound */
#define NGX_HTTP_DYNACODE_HOST_BYTES  (2 * 1024 * 1024)


typedef struct {
    u_char  *data;
    size_t   cap;
} ngx_http_dynacode_owned_t;


static ngx_uint_t ngx_http_dynacode_sent(ngx_http_request_t *r);


static ngx_int_t
ngx_http_dynacode_name_eq(ngx_str_t *key, dc_str name)
{
    return key->len == name.len
           && ngx_strncasecmp(key->data, (u_char *) name.data, name.len) == 0;
}


static u_char *
ngx_http_dynacode_copy(ngx_pool_t *pool, const char *data, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, data, len);
    p[len] = '\0';

    return p;
}


/* ---- values plugins hand over: checked again here, and stored without growing the pool
 * for every superseded copy ---- */

static ngx_uint_t
ngx_http_dynacode_ctl(u_char c)
{
    return c < 0x20 || c == 0x7f;
}


/* A header name: no control byte, space, colon or non-ASCII byte (a CR/LF would split the
 * header block); a value: no control byte but tab. The API escapes both already. */
static ngx_int_t
ngx_http_dynacode_header_ok(ngx_http_request_t *r, dc_str name, const dc_str *values,
    size_t n)
{
    size_t   i, k;
    u_char   c;

    for (i = 0; i < name.len; i++) {
        c = (u_char) name.data[i];
        if (ngx_http_dynacode_ctl(c) || c == ' ' || c == ':' || c >= 0x80) {
            goto bad;
        }
    }

    for (k = 0; k < n; k++) {
        for (i = 0; i < values[k].len; i++) {
            c = (u_char) values[k].data[i];
            if (ngx_http_dynacode_ctl(c) && c != '\t') {
                goto bad;
            }
        }
    }

    return NGX_OK;

bad:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "dynacode: a plugin's header has a byte nginx refuses; not set");
    return NGX_ERROR;
}


/* As the API checks it: a path starting with '/' whose segments, %XX-decoded, are never "."
 * or "..", with no control byte, NUL or backslash, raw or encoded. */
static ngx_int_t
ngx_http_dynacode_path_ok(const u_char *p, size_t len)
{
    size_t      i, seg, dots;
    ngx_int_t   c, hi, lo;

    if (len == 0 || p[0] != '/') {
        return NGX_ERROR;
    }

    seg = 0;
    dots = 0;

    for (i = 0; i <= len; i++) {
        c = i < len ? p[i] : '/';

        if (i < len && ngx_http_dynacode_ctl((u_char) c)) {
            return NGX_ERROR;
        }

        if (c == '%' && i + 2 < len) {
            hi = ngx_hextoi((u_char *) &p[i + 1], 1);
            lo = ngx_hextoi((u_char *) &p[i + 2], 1);

            if (hi != NGX_ERROR && lo != NGX_ERROR) {
                c = hi * 16 + lo;
                i += 2;

                if (ngx_http_dynacode_ctl((u_char) c)) {
                    return NGX_ERROR;
                }
            }
        }

        if (c == '\\') {
            return NGX_ERROR;
        }

        if (c == '/') {
            if (seg > 0 && seg == dots && dots <= 2) {
                return NGX_ERROR;
            }

            seg = 0;
            dots = 0;
            continue;
        }

        seg++;
        dots += (c == '.');
    }

    return NGX_OK;
}


/* Stores data (len bytes, then a NUL) for a value that replaces old: in old's buffer when
 * that is one of ours and big enough, else in a new one counted against the request's bound.
 * A superseded buffer is never freed: a cached variable (set $a $http_x) may still point at
 * it, so it stays valid, if rewritten, for the request's life. old is only compared, never
 * read: it may be anything a module left in an element. NULL when over the bound or out of
 * memory, old being untouched then. */
static u_char *
ngx_http_dynacode_store(ngx_http_request_t *r, u_char *old, const char *data, size_t len)
{
    u_char                     *p;
    ngx_uint_t                  i, found;
    ngx_http_dynacode_ctx_t    *ctx;
    ngx_http_dynacode_owned_t  *o;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL) {
        return ngx_http_dynacode_copy(r->pool, data, len);
    }

    if (ctx->owned == NULL) {
        ctx->owned = ngx_array_create(r->pool, 8, sizeof(ngx_http_dynacode_owned_t));
        if (ctx->owned == NULL) {
            return NULL;
        }
    }

    o = ctx->owned->elts;
    found = 0;

    for (i = 0; old != NULL && i < ctx->owned->nelts; i++) {
        if (o[i].data == old) {
            found = 1;
            break;
        }
    }

    if (found && o[i].cap > len) {
        ngx_memmove(old, data, len);
        old[len] = '\0';
        return old;
    }

    if (len >= NGX_HTTP_DYNACODE_HOST_BYTES
        || ctx->host_bytes > NGX_HTTP_DYNACODE_HOST_BYTES - len - 1)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dynacode: plugins set over %uz bytes of values in this request; "
                      "not set", (size_t) NGX_HTTP_DYNACODE_HOST_BYTES);
        return NULL;
    }

    p = ngx_http_dynacode_copy(r->pool, data, len);
    if (p == NULL) {
        return NULL;
    }

    if (found) {   /* too small: no longer reused, still counted */
        o[i] = o[--ctx->owned->nelts];
    }

    o = ngx_array_push(ctx->owned);
    if (o == NULL) {
        return NULL;
    }

    o->data = p;
    o->cap = len + 1;
    ctx->host_bytes += len + 1;

    return p;
}


/* A value of ours that its element no longer holds: not reused any more (the list of
 * reusable buffers stays as short as the headers plugins set). */
static void
ngx_http_dynacode_release(ngx_http_request_t *r, u_char *old)
{
    ngx_uint_t                  i;
    ngx_http_dynacode_ctx_t    *ctx;
    ngx_http_dynacode_owned_t  *o;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL || ctx->owned == NULL || old == NULL) {
        return;
    }

    o = ctx->owned->elts;

    for (i = 0; i < ctx->owned->nelts; i++) {
        if (o[i].data == old) {
            o[i] = o[--ctx->owned->nelts];
            return;
        }
    }
}


u_char *
ngx_http_dynacode_log_escape(u_char *dst, size_t cap, const u_char *src, size_t len,
    ngx_uint_t quote)
{
    static const u_char  hex[] = "0123456789abcdef";

    u_char   e[4], c;
    size_t   i, k, n;

    n = 0;

    for (i = 0; i < len; i++) {
        c = src[i];
        k = 0;

        if (c == '\n' || c == '\r' || c == '\t') {
            e[k++] = '\\';
            e[k++] = c == '\n' ? 'n' : (c == '\r' ? 'r' : 't');

        } else if (ngx_http_dynacode_ctl(c)) {
            e[k++] = '\\';
            e[k++] = 'x';
            e[k++] = hex[c >> 4];
            e[k++] = hex[c & 0xf];

        } else if (quote && (c == '"' || c == '\\')) {
            e[k++] = '\\';
            e[k++] = c;

        } else {
            e[k++] = c;
        }

        if (k > cap - 3 - n) {      /* room is kept for the "..." */
            return ngx_cpymem(dst + n, "...", 3);
        }

        ngx_memcpy(dst + n, e, k);
        n += k;
    }

    return dst + n;
}


/* Walks a header list, part by part (a part may be empty after a removal). */
typedef struct {
    ngx_list_part_t  *part;
    ngx_uint_t        i;
} ngx_http_dynacode_iter_t;


static ngx_table_elt_t *
ngx_http_dynacode_next(ngx_http_dynacode_iter_t *it)
{
    ngx_table_elt_t  *h;

    while (it->part) {
        if (it->i < it->part->nelts) {
            h = it->part->elts;
            return &h[it->i++];
        }

        it->part = it->part->next;
        it->i = 0;
    }

    return NULL;
}


/* ---- variables ---- */

static int
ngx_http_dynacode_var_get(void *hreq, dc_str name, dc_str *val)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char                      low[NGX_HTTP_DYNACODE_NAME_LEN];
    ngx_str_t                   n;
    ngx_uint_t                  key;
    ngx_http_variable_value_t  *vv;

    if (name.len == 0) {
        return 0;
    }

    /* a plugin may read variables in a loop: short names are lowercased on the stack, not
     * in the request's pool (nginx reads the name during the call only) */
    n.len = name.len;
    n.data = name.len <= sizeof(low) ? low : ngx_pnalloc(r->pool, name.len);
    if (n.data == NULL) {
        return -1;
    }

    key = ngx_hash_strlow(n.data, (u_char *) name.data, name.len);

    /* every nginx variable, arg_*, cookie_*, http_*, sent_http_* included */
    vv = ngx_http_get_variable(r, &n, key);
    if (vv == NULL) {
        return -1;
    }

    if (vv->not_found) {
        return 0;
    }

    val->data = (const char *) vv->data;
    val->len = vv->len;

    return 1;
}


/* As lua-nginx-module: a variable with a set handler (such as $args, $limit_rate) or an
 * indexed one declared with `set`, if nginx says it is changeable. */
static int
ngx_http_dynacode_var_set(void *hreq, dc_str name, dc_str val)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char                      buf[NGX_HTTP_DYNACODE_NAME_LEN], *low, *p;
    u_char                      shown[4 * NGX_HTTP_DYNACODE_NAME_LEN + 8], *end;
    ngx_uint_t                  key;
    ngx_http_variable_t        *v;
    ngx_http_variable_value_t  *vv;
    ngx_http_core_main_conf_t  *cmcf;

    if (name.len == 0 || name.len > sizeof(buf)) {
        return -1;
    }

    low = buf;

    /* the name is the plugin's text: escaped in the lines below */
    end = ngx_http_dynacode_log_escape(shown, sizeof(shown), (u_char *) name.data, name.len,
                                       1);

    /* CR/LF in $args would end up in the request line sent upstream */
    for (key = 0; val.data && key < val.len; key++) {
        if (ngx_http_dynacode_ctl((u_char) val.data[key])) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "dynacode: a plugin's value for $%*s has a control byte; not set",
                          (size_t) (end - shown), shown);
            return -1;
        }
    }

    key = ngx_hash_strlow(low, (u_char *) name.data, name.len);

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    v = ngx_hash_find(&cmcf->variables_hash, key, low, name.len);

    if (v == NULL || !(v->flags & NGX_HTTP_VAR_CHANGEABLE)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dynacode: variable \"%*s\" is not changeable (declare it "
                      "with \"set $%*s '';\" to let plugins write it)",
                      (size_t) (end - shown), shown, (size_t) (end - shown), shown);
        return -1;
    }

    if (!v->set_handler && !(v->flags & NGX_HTTP_VAR_INDEXED)) {
        return -1;
    }

    /* a new buffer each time (counted): `set $a $b` shares $b's buffer, which must not
     * change under $a */
    p = NULL;
    if (val.data) {
        p = ngx_http_dynacode_store(r, NULL, val.data, val.len);
        if (p == NULL) {
            return -1;
        }
    }

    if (v->set_handler) {
        vv = ngx_palloc(r->pool, sizeof(ngx_http_variable_value_t));
        if (vv == NULL) {
            return -1;
        }

    } else {
        vv = &r->variables[v->index];
    }

    vv->valid = val.data ? 1 : 0;
    vv->not_found = val.data ? 0 : 1;
    vv->no_cacheable = 0;
    vv->escape = 0;
    vv->data = p;
    vv->len = val.data ? val.len : 0;

    if (v->set_handler) {
        v->set_handler(r, vv, v->data);
    }

    return 0;
}


/* ---- request headers ---- */

static int
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

    ngx_strlow(p, (u_char *) v->data, len);
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


/* Sets one header element to name and value, reusing its buffers where they are ours. */
static ngx_int_t
ngx_http_dynacode_fill(ngx_http_request_t *r, ngx_table_elt_t *h, ngx_uint_t fresh,
    dc_str name, dc_str value)
{
    u_char  *key, *val, *low;

    if (fresh || h->key.len != name.len
        || ngx_strncmp(h->key.data, (u_char *) name.data, name.len) != 0)
    {
        key = ngx_http_dynacode_store(r, fresh ? NULL : h->key.data, name.data, name.len);
        if (key == NULL) {
            return NGX_ERROR;
        }

        h->key.data = key;
        h->key.len = name.len;
    }

    /* always ours: a module may leave lowcase_key unset in the elements it adds */
    low = ngx_http_dynacode_store(r, fresh ? NULL : h->lowcase_key, name.data, name.len);
    if (low == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(low, h->key.data, name.len);
    h->lowcase_key = low;

    val = ngx_http_dynacode_store(r, fresh ? NULL : h->value.data, value.data, value.len);
    if (val == NULL) {
        return NGX_ERROR;
    }

    h->value.data = val;
    h->value.len = value.len;

    return NGX_OK;
}


static int
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


/* ---- response headers ---- */

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


static int
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
 * headers of that name. */
static ngx_int_t
ngx_http_dynacode_relink_out_array(ngx_http_request_t *r, ngx_array_t *a, dc_str name)
{
    ngx_table_elt_t           *h, **slot;
    ngx_http_dynacode_iter_t   it;

    if (a->elts == NULL) {
        return NGX_OK;
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


static int
ngx_http_dynacode_resp_header_set(void *hreq, dc_str name, const dc_str *values, size_t n)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    off_t                            len;
    size_t                           k;
    ngx_str_t                        ct = ngx_string("Content-Type");
    ngx_str_t                        cl = ngx_string("Content-Length");
    ngx_str_t                        cc = ngx_string("Cache-Control");
    ngx_str_t                        link = ngx_string("Link");
    ngx_table_elt_t                 *h, *first, **ph;
    ngx_http_dynacode_iter_t         it;
    ngx_http_dynacode_out_header_t  *oh;

    if (ngx_http_dynacode_sent(r) || name.len == 0
        || ngx_http_dynacode_header_ok(r, name, values, n) != NGX_OK)
    {
        return -1;
    }

    if (ngx_http_dynacode_name_eq(&ct, name)) {
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
    if (ngx_http_dynacode_name_eq(&cl, name) && n > 0) {
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
static ngx_uint_t
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

    b = ngx_create_temp_buf(r->pool, len);
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
};


const dc_host *
ngx_http_dynacode_host(void)
{
    return &ngx_http_dynacode_host_cbs;
}
