/* ngx_http_dynacode_values.c - what the dc_host callbacks share: the checks of the values
 * plugins hand over, their storage in the request's pool under a bound, the escape of text
 * for the error log, and the walk and fill of header list elements.
 */
#include "ngx_http_dynacode_host.h"


/* what plugins may take from r->pool for the values they set, over a whole request: the pool
 * only grows, so a plugin setting a header in a loop must meet a bound */
#define NGX_HTTP_DYNACODE_HOST_BYTES  (2 * 1024 * 1024)


typedef struct {
    u_char  *data;
    size_t   cap;
} ngx_http_dynacode_owned_t;


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

/* A header name: no control byte, space, colon or non-ASCII byte (a CR/LF would split the
 * header block); a value: no control byte but tab. The API escapes both already. */
#define NGX_HTTP_DYNACODE_BAD_NAME   1
#define NGX_HTTP_DYNACODE_BAD_VALUE  2

static u_char  ngx_http_dynacode_refused[256];


static void
ngx_http_dynacode_refused_init(void)
{
    ngx_uint_t  c;

    for (c = 0; c < 256; c++) {
        if (ngx_http_dynacode_ctl((u_char) c) || c == ' ' || c == ':' || c >= 0x80) {
            ngx_http_dynacode_refused[c] |= NGX_HTTP_DYNACODE_BAD_NAME;
        }

        if (ngx_http_dynacode_ctl((u_char) c) && c != '\t') {
            ngx_http_dynacode_refused[c] |= NGX_HTTP_DYNACODE_BAD_VALUE;
        }
    }
}


/* The length of the longest prefix of p, in words of 8 bytes, with no control byte or DEL:
 * 8 bytes at a time, as header values are checked on every header a plugin sets. */
static size_t
ngx_http_dynacode_no_ctl_prefix(const u_char *p, size_t len)
{
    size_t    i;
    uint64_t  w, del;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  highs = 0x8080808080808080ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        ngx_memcpy(&w, p + i, 8);
        del = w ^ (ones * 0x7f);

        /* non-zero when a byte is below 0x20 or is 0x7f */
        if (((w - ones * 0x20) & ~w & highs) | ((del - ones) & ~del & highs)) {
            break;
        }
    }

    return i;
}


/* The same for a header name, whose refused bytes are also space, colon and non-ASCII. */
static size_t
ngx_http_dynacode_name_prefix(const u_char *p, size_t len)
{
    size_t    i;
    uint64_t  w, del, colon;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  highs = 0x8080808080808080ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        ngx_memcpy(&w, p + i, 8);
        del = w ^ (ones * 0x7f);
        colon = w ^ (ones * ':');

        /* non-zero when a byte is below 0x21, is 0x7f or ':', or is 0x80 or above */
        if (((w - ones * 0x21) & ~w & highs) | ((del - ones) & ~del & highs)
            | ((colon - ones) & ~colon & highs) | (w & highs))
        {
            break;
        }
    }

    return i;
}


/* Lowercases len bytes of src into dst (ASCII letters only), 8 bytes at a time. */
void
ngx_http_dynacode_strlow(u_char *dst, const u_char *src, size_t len)
{
    uint64_t  w, low7, ge_a, gt_z;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  highs = 0x8080808080808080ULL;

    for ( /* void */ ; len >= 8; len -= 8, src += 8, dst += 8) {
        ngx_memcpy(&w, src, 8);
        low7 = w & ~highs;

        /* per byte, without carries: the high bit set where low7 >= 'A', and where
         * low7 > 'Z'; a letter is a byte with the first, not the second, below 0x80 */
        ge_a = low7 + ones * (0x80 - 'A');
        gt_z = low7 + ones * (0x80 - 'Z' - 1);
        w |= (ge_a & ~gt_z & ~w & highs) >> 2;

        ngx_memcpy(dst, &w, 8);
    }

    while (len--) {
        *dst++ = ngx_tolower(*src);
        src++;
    }
}


ngx_int_t
ngx_http_dynacode_header_ok(ngx_http_request_t *r, dc_str name, const dc_str *values,
    size_t n)
{
    size_t         i, k;
    ngx_uint_t     bad;
    const u_char  *p;

    /* the event loop's thread only: built at the first header */
    if (ngx_http_dynacode_refused[0] == 0) {
        ngx_http_dynacode_refused_init();
    }

    /* on every header a plugin sets: 8 bytes at a time while none is refused, then one table
     * load per byte, with no early exit */
    bad = 0;
    p = (const u_char *) name.data;

    for (i = ngx_http_dynacode_name_prefix(p, name.len); i < name.len; i++) {
        bad |= ngx_http_dynacode_refused[p[i]];
    }

    bad &= NGX_HTTP_DYNACODE_BAD_NAME;

    for (k = 0; k < n; k++) {
        p = (const u_char *) values[k].data;
        i = ngx_http_dynacode_no_ctl_prefix(p, values[k].len);

        for ( /* void */ ; i < values[k].len; i++) {
            bad |= ngx_http_dynacode_refused[p[i]] & NGX_HTTP_DYNACODE_BAD_VALUE;
        }
    }

    if (!bad) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "dynacode: a plugin's header has a byte nginx refuses; not set");
    return NGX_ERROR;
}


/* As the API checks it: a path starting with '/' whose segments, %XX-decoded, are never "."
 * or "..", with no control byte, NUL or backslash, raw or encoded. */
ngx_int_t
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
/* len + 1 bytes of r->pool, counted against the request's bound. */
static u_char *
ngx_http_dynacode_take(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx, size_t len)
{
    if (len >= NGX_HTTP_DYNACODE_HOST_BYTES
        || ctx->host_bytes > NGX_HTTP_DYNACODE_HOST_BYTES - len - 1)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dynacode: plugins set over %uz bytes of values in this request; "
                      "not set", (size_t) NGX_HTTP_DYNACODE_HOST_BYTES);
        return NULL;
    }

    ctx->host_bytes += len + 1;

    return ngx_pnalloc(r->pool, len + 1);
}


/* Counts data (cap bytes) among the value buffers that may be rewritten in place. */
static ngx_int_t
ngx_http_dynacode_own(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx, u_char *data,
    size_t cap)
{
    ngx_http_dynacode_owned_t  *o;

    if (ctx->owned == NULL) {
        ctx->owned = ngx_array_create(r->pool, 8, sizeof(ngx_http_dynacode_owned_t));
        if (ctx->owned == NULL) {
            return NGX_ERROR;
        }
    }

    o = ngx_array_push(ctx->owned);
    if (o == NULL) {
        return NGX_ERROR;
    }

    o->data = data;
    o->cap = cap;

    return NGX_OK;
}


u_char *
ngx_http_dynacode_store(ngx_http_request_t *r, u_char *old, const char *data, size_t len)
{
    u_char                     *p;
    ngx_uint_t                  i, n, found;
    ngx_http_dynacode_ctx_t    *ctx;
    ngx_http_dynacode_owned_t  *o;

    ctx = ngx_http_dynacode_get_ctx(r, 0);
    if (ctx == NULL) {
        return ngx_http_dynacode_copy(r->pool, data, len);
    }

    o = ctx->owned ? ctx->owned->elts : NULL;
    n = ctx->owned ? ctx->owned->nelts : 0;
    found = 0;

    for (i = 0; old != NULL && i < n; i++) {
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

    p = ngx_http_dynacode_take(r, ctx, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, data, len);
    p[len] = '\0';

    if (found) {   /* too small: no longer reused, still counted */
        o[i] = o[--ctx->owned->nelts];
    }

    return ngx_http_dynacode_own(r, ctx, p, len + 1) == NGX_OK ? p : NULL;
}


/* A value of ours that its element no longer holds: not reused any more (the list of
 * reusable buffers stays as short as the headers plugins set). */
void
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


ngx_table_elt_t *
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


/* Sets one header element to name and value, reusing its buffers where they are ours. */
ngx_int_t
ngx_http_dynacode_fill(ngx_http_request_t *r, ngx_table_elt_t *h, ngx_uint_t fresh,
    dc_str name, dc_str value)
{
    u_char                   *key, *val, *low;
    ngx_http_dynacode_ctx_t  *ctx;

    ctx = fresh ? ngx_http_dynacode_get_ctx(r, 0) : NULL;

    if (ctx != NULL) {
        /* a new element: its name, the name's lowercase form and its value in one piece;
         * only the value is ever rewritten in place (when set again), so only it is
         * among the buffers kept for that. The lengths are a Lua string's (below 4 GiB):
         * the sum cannot wrap, and take() refuses it past the request's bound. */
        key = ngx_http_dynacode_take(r, ctx, 2 * name.len + value.len + 2);
        if (key == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(key, name.data, name.len);
        key[name.len] = '\0';
        low = key + name.len + 1;
        ngx_http_dynacode_strlow(low, key, name.len);
        low[name.len] = '\0';

        val = low + name.len + 1;
        ngx_memcpy(val, value.data, value.len);
        val[value.len] = '\0';

        if (ngx_http_dynacode_own(r, ctx, val, value.len + 1) != NGX_OK) {
            return NGX_ERROR;
        }

        h->key.data = key;
        h->key.len = name.len;
        h->lowcase_key = low;
        h->value.data = val;
        h->value.len = value.len;

        return NGX_OK;
    }

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

    ngx_http_dynacode_strlow(low, h->key.data, name.len);
    h->lowcase_key = low;

    val = ngx_http_dynacode_store(r, fresh ? NULL : h->value.data, value.data, value.len);
    if (val == NULL) {
        return NGX_ERROR;
    }

    h->value.data = val;
    h->value.len = value.len;

    return NGX_OK;
}
