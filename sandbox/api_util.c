/* api_util.c - helpers shared by the API areas: the userdata-owned buffer, nginx's URI escape
 * tables, query-string parsing (ngx.req.get_uri_args, ngx.decode_args) and building
 * (ngx.encode_args, ngx.req.set_uri_args), and the time check of long C loops.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api_cost.h"
#include "api_util.h"

#define UBUF_MT "dynacode.ubuf"

/* __gc of a buffer: gives its memory back through the state's allocator. Stack: [-0, +0] */
static int ubuf_gc(lua_State *L)
{
    dc_ubuf *b = luaL_checkudata(L, 1, UBUF_MT); /* never another userdata's pointers */
    if (b && b->p) {
        b->f(b->ud, b->p, b->cap, 0);
        b->p = NULL;
        b->cap = b->len = 0;
    }
    return 0;
}

dc_ubuf *dc_ubuf_new(lua_State *L)
{
    dc_ubuf *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    b->f = lua_getallocf(L, &b->ud);
    if (luaL_newmetatable(L, UBUF_MT)) {
        lua_pushcfunction(L, ubuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

char *dc_ubuf_prep(lua_State *L, dc_ubuf *b, size_t n)
{
    /* b->p is NULL until the first growth: a request for 0 bytes grows too, so that callers
     * never get NULL + 0 (undefined) to write their nothing into */
    if (b->p && n <= b->cap - b->len)
        return b->p + b->len;
    if (n > ((size_t)1 << 30) - b->len)
        luaL_error(L, "string too long");
    size_t cap = b->cap ? b->cap : 128;
    while (cap - b->len < n)
        cap *= 2;
    char *p = dc_sbx_grow(L, b->p, b->cap, cap);
    if (!p)
        luaL_error(L, "not enough memory");
    b->p = p;
    b->cap = cap;
    return b->p + b->len;
}

void dc_ubuf_add(lua_State *L, dc_ubuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(dc_ubuf_prep(L, b, n), p, n);
    b->len += n;
}

void dc_ubuf_push(lua_State *L, const dc_ubuf *b)
{
    lua_pushlstring(L, b->len ? b->p : "", b->len);
}

/* ---- escaping: one bit per byte value, set when the byte is escaped ---- */
static const uint32_t esc_tables[DC_ESC_COUNT][8] = {
    /* uri: " ", "#", "%", "?", %00-%1F, %7F-%FF */
    {0xffffffff, 0x80000029, 0x00000000, 0x80000000,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* args: " ", "#", "%", "+", "?", %00-%1F, %7F-%FF */
    {0xffffffff, 0x80000829, 0x00000000, 0x80000000,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* uri component: not ALPHA, DIGIT, "-", ".", "_", "~" */
    {0xffffffff, 0xfc00987d, 0x78000001, 0xb8000001,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* html: " ", "#", """, "%", "'", %00-%1F, %7F-%FF */
    {0xffffffff, 0x000000ad, 0x00000000, 0x80000000,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* refresh: " ", """, "%", "'", %00-%1F, %7F-%FF */
    {0xffffffff, 0x00000085, 0x00000000, 0x80000000,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* memcached: " ", "%", %00-%1F */
    {0xffffffff, 0x00000021, 0, 0, 0, 0, 0, 0},
    /* mail_auth: as memcached */
    {0xffffffff, 0x00000021, 0, 0, 0, 0, 0, 0},
    /* header name: separators, %00-%1F, %7F-%FF */
    {0xffffffff, 0xfc009305, 0x38000001, 0xa8000000,
     0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
    /* header value: %00-%08, %0A-%1F, %7F */
    {0xfffffdff, 0, 0, 0x80000000, 0, 0, 0, 0},
    /* set_uri_args string: %00-%20, %7F */
    {0xffffffff, 0x00000001, 0, 0x80000000, 0, 0, 0, 0},
};

static int esc_byte(const uint32_t *t, unsigned char c)
{
    return (t[c >> 5] >> (c & 0x1f)) & 1;
}

/* The same tables a byte per entry, for counting (built once per process). */
static uint8_t esc_bytes[DC_ESC_COUNT][256];
static pthread_once_t esc_once = PTHREAD_ONCE_INIT;

/* 1 for a byte that a header name cannot pass to the host as it is: one nginx escapes in a
 * name, or '_' (written as '-') */
static uint8_t name_work[256];

static void esc_bytes_build(void)
{
    for (int t = 0; t < DC_ESC_COUNT; t++)
        for (int c = 0; c < 256; c++)
            esc_bytes[t][c] = (uint8_t)esc_byte(esc_tables[t], (unsigned char)c);
    for (int c = 0; c < 256; c++)
        name_work[c] = (uint8_t)(esc_bytes[DC_ESC_HEADER_NAME][c] | (c == '_'));
}

int dc_api_header_name_work(const char *name, size_t len)
{
    pthread_once(&esc_once, esc_bytes_build);
    const unsigned char *s = (const unsigned char *)name;
    unsigned w = 0;
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        w |= name_work[s[i]] | name_work[s[i + 1]] | name_work[s[i + 2]] | name_work[s[i + 3]];
    for (; i < len; i++)
        w |= name_work[s[i]];
    return w != 0;
}

/* Non-zero when one of the 8 bytes in w is below 0x20 or is 0x7f (a borrow may mark a byte
 * above a true hit as well, never a word without one). */
static uint64_t word_has_ctl(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t del = w ^ (ones * 0x7f);
    return ((w - ones * 0x20) & ~w & highs) | ((del - ones) & ~del & highs);
}

size_t dc_api_escape_count(const char *src, size_t len, int type)
{
    pthread_once(&esc_once, esc_bytes_build);
    const uint8_t *t = esc_bytes[type];
    const unsigned char *s = (const unsigned char *)src;
    size_t n = 0, i = 0;
    /* header values, on every header a plugin sets: 8 bytes at a time while none is a
     * control byte (the value table escapes only those, and DEL), then byte by byte */
    if (type == DC_ESC_HEADER_VALUE) {
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_has_ctl(w))
                break;
        }
    }
    /* four at a time: header names and values go through here on every request */
    for (; i + 4 <= len; i += 4)
        n += (size_t)(t[s[i]] + t[s[i + 1]] + t[s[i + 2]] + t[s[i + 3]]);
    for (; i < len; i++)
        n += t[s[i]];
    return n;
}

/* Writes src escaped into dst (room for len + 2 * escaped bytes); returns bytes written. */
static size_t escape_into(char *dst, const char *src, size_t len, int type)
{
    static const char hex[] = "0123456789ABCDEF";
    const uint32_t *t = esc_tables[type];
    char *d = dst;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (esc_byte(t, c)) {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];
        } else {
            *d++ = (char)c;
        }
    }
    return (size_t)(d - dst);
}

void dc_api_push_escaped(lua_State *L, const char *src, size_t len, int type)
{
    size_t n = 0, off, k;
    for (off = 0; off < len; off += k) {  /* both passes in charged pieces */
        k = dc_cost_piece(L, len - off);
        n += dc_api_escape_count(src + off, k, type);
    }
    if (n == 0) {
        lua_pushlstring(L, src, len);
        return;
    }
    dc_ubuf *b = dc_ubuf_new(L);
    dc_ubuf_prep(L, b, len + 2 * n);
    for (off = 0; off < len; off += k) {
        k = dc_cost_piece(L, len - off);
        b->len += escape_into(b->p + b->len, src + off, k, type);
    }
    dc_ubuf_push(L, b);
    lua_remove(L, -2);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void dc_api_push_unescaped(lua_State *L, const char *src, size_t len)
{
    if (!memchr(src, '%', len) && !memchr(src, '+', len)) {
        lua_pushlstring(L, src, len);
        return;
    }
    dc_ubuf *b = dc_ubuf_new(L);
    char *d = dc_ubuf_prep(L, b, len), *d0 = d;
    for (size_t i = 0, mark = 0; i < len; i++) {
        if (i >= mark)  /* charged a piece ahead */
            mark = i + dc_cost_piece(L, len - i);
        unsigned char c = (unsigned char)src[i];
        if (c == '%' && i + 2 < len && hexval((unsigned char)src[i + 1]) >= 0 &&
            hexval((unsigned char)src[i + 2]) >= 0) {
            *d++ = (char)(hexval((unsigned char)src[i + 1]) * 16 +
                          hexval((unsigned char)src[i + 2]));
            i += 2;
        } else if (c == '+') {
            *d++ = ' ';
        } else {
            *d++ = (char)c;
        }
    }
    b->len = (size_t)(d - d0);
    dc_ubuf_push(L, b);
    lua_remove(L, -2);
}

void dc_api_set_multi(lua_State *L, int t)
{
    lua_pushvalue(L, -2);
    lua_rawget(L, t);               /* t k v old */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawset(L, t);
        return;
    }
    if (lua_type(L, -1) == LUA_TTABLE) {  /* already an array we made */
        lua_insert(L, -2);          /* t k old v */
        lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
        lua_pop(L, 2);
        return;
    }
    lua_createtable(L, 4, 0);       /* t k v old arr */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);          /* t k v arr */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2);          /* t k arr */
    lua_rawset(L, t);
}

int dc_api_parse_args(lua_State *L, const char *s, size_t len, int max)
{
    lua_createtable(L, 0, 4);
    int t = lua_gettop(L);
    int count = 0;
    size_t i = 0;
    dc_meter m = {0};
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        const char *eq = memchr(s + i, '=', end - i);
        size_t kend = eq ? (size_t)(eq - s) : end;
        dc_meter_add(L, &m, end - i + 1);
        if (kend > i) { /* a pair with an empty key is left out, but still counted below */
            dc_api_push_unescaped(L, s + i, kend - i);
            if (eq)
                dc_api_push_unescaped(L, eq + 1, end - kend - 1);
            else
                lua_pushboolean(L, 1);
            dc_api_set_multi(L, t);
        }
        /* as OpenResty counts: each pair ended by '&', the limit checked right after it */
        if (amp && max > 0 && ++count == max) {
            dc_meter_flush(L, &m);
            lua_pushliteral(L, "truncated");
            return 2;
        }
        i = end + 1;
    }
    dc_meter_flush(L, &m);
    return 1;
}

/* Appends key[=value] to b, escaped as a URI component, with '&' before all but the first.
 * Stack: [-0, +0] */
static void add_arg(lua_State *L, dc_ubuf *b, int *n, const char *k, size_t klen,
                    const char *v, size_t vlen)
{
    dc_sbx_charge(L, klen + vlen + 1);
    size_t ek = dc_api_escape_count(k, klen, DC_ESC_URI_COMPONENT);
    size_t ev = v ? dc_api_escape_count(v, vlen, DC_ESC_URI_COMPONENT) : 0;
    char *d = dc_ubuf_prep(L, b, 2 + klen + 2 * ek + (v ? vlen + 2 * ev : 0)), *d0 = d;
    if ((*n)++ > 0)
        *d++ = '&';
    d += escape_into(d, k, klen, DC_ESC_URI_COMPONENT);
    if (v) {
        *d++ = '=';
        d += escape_into(d, v, vlen, DC_ESC_URI_COMPONENT);
    }
    b->len += (size_t)(d - d0);
}

/* Adds one value of key k (at stack top) to b. Stack: [-0, +0] */
static void add_arg_value(lua_State *L, dc_ubuf *b, int *n, const char *k, size_t klen)
{
    size_t vlen;
    const char *v;
    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, -1))
            add_arg(L, b, n, k, klen, NULL, 0);
        return;
    case LUA_TNUMBER:
    case LUA_TSTRING:
        v = lua_tolstring(L, -1, &vlen);  /* a value slot: converting it in place is harmless */
        add_arg(L, b, n, k, klen, v, vlen);
        return;
    default:
        luaL_error(L, "attempt to use %s as query arg value", luaL_typename(L, -1));
    }
}

void dc_api_encode_args(lua_State *L, int idx)
{
    idx = dc_api_absidx(L, idx);
    dc_ubuf *b = dc_ubuf_new(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "attempt to use a non-string key in the \"args\" option table");
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);
        if (lua_type(L, -1) == LUA_TTABLE) {
            size_t m = lua_objlen(L, -1);
            for (size_t i = 1; i <= m; i++) {
                if ((i & 1023) == 0)  /* holes cost a step too */
                    dc_sbx_charge(L, 1024);
                lua_rawgeti(L, -1, (int)i);
                if (!lua_isnil(L, -1))
                    add_arg_value(L, b, &n, k, klen);
                lua_pop(L, 1);
            }
        } else {
            add_arg_value(L, b, &n, k, klen);
        }
        lua_pop(L, 1);
    }
    dc_ubuf_push(L, b);
    lua_remove(L, -2);
}

const char *dc_api_fmt_num(double n, char buf[32])
{
    snprintf(buf, 32, "%.14g", n);
    return buf;
}

void dc_api_push_lower(lua_State *L, const char *s, size_t len, int dash)
{
    char small[128] = "";
    char *d = small;
    dc_ubuf *b = NULL;
    if (len > sizeof small) {
        b = dc_ubuf_new(L);
        d = dc_ubuf_prep(L, b, len);
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        else if (dash && c == '_')
            c = '-';
        d[i] = c;
    }
    lua_pushlstring(L, d, len);
    if (b)
        lua_remove(L, -2);
}

void dc_api_check_values(lua_State *L, const dc_call *call, const char *api,
                         const dc_str *vals, size_t n)
{
    uint32_t bound = call->bounds ? call->bounds->value_bytes : 0;
    for (size_t i = 0; bound && i < n; i++)
        if (vals[i].len > bound)
            luaL_error(L, "%s: value of %f bytes over the policy's bound of %u", api,
                       (lua_Number)vals[i].len, bound);
}

void dc_api_check_time(lua_State *L)
{
    /* Checks the deadline (and any pending abort) without charging instructions; a trip
     * re-arms the hook, so a pcall cannot keep the call going. */
    dc_sbx_charge(L, 0);
}

/* ---- values handed to the host ---- */

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

void dc_api_push_visible(lua_State *L, const char *s, size_t len, size_t max, int quote)
{
    static const char hex[] = "0123456789abcdef";
    int cut = len > max;
    if (cut)
        len = max;
    dc_ubuf *b = dc_ubuf_new(L);
    char *d = dc_ubuf_prep(L, b, 4 * len + 3), *d0 = d;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            *d++ = '\\'; *d++ = 'n';
        } else if (c == '\r') {
            *d++ = '\\'; *d++ = 'r';
        } else if (c == '\t') {
            *d++ = '\\'; *d++ = 't';
        } else if (c == '\\' || (quote && c == '"')) {
            *d++ = '\\'; *d++ = (char)c;
        } else if (is_ctl(c)) {
            *d++ = '\\'; *d++ = 'x'; *d++ = hex[c >> 4]; *d++ = hex[c & 0xf];
        } else {
            *d++ = (char)c;
        }
    }
    if (cut) {
        memcpy(d, "...", 3);
        d += 3;
    }
    b->len = (size_t)(d - d0);
    dc_ubuf_push(L, b);
    lua_remove(L, -2);
}

const char *dc_api_path_problem(const char *uri, size_t len)
{
    if (len == 0)
        return "empty";
    if (uri[0] != '/')
        return "it does not start with \"/\"";
    size_t seg = 0, dots = 0;  /* bytes of the current segment, and how many are dots */
    for (size_t i = 0; i <= len; i++) {
        int c = i < len ? (unsigned char)uri[i] : '/';
        if (i < len && is_ctl((unsigned char)c))
            return "control byte";
        if (c == '%' && i + 2 < len && hexval((unsigned char)uri[i + 1]) >= 0 &&
            hexval((unsigned char)uri[i + 2]) >= 0) {
            c = hexval((unsigned char)uri[i + 1]) * 16 + hexval((unsigned char)uri[i + 2]);
            i += 2;
            if (c == 0)
                return "encoded NUL byte";
            if (is_ctl((unsigned char)c))
                return "encoded control byte";
        }
        if (c == '\\')
            return "backslash";
        if (c == '/') {
            if (seg > 0 && seg == dots && dots <= 2)
                return dots == 1 ? "\".\" segment" : "\"..\" segment";
            seg = dots = 0;
            continue;
        }
        seg++;
        dots += c == '.';
    }
    return NULL;
}

void dc_api_check_path(lua_State *L, const char *api, const char *uri, size_t len)
{
    dc_sbx_charge(L, len);
    const char *why = dc_api_path_problem(uri, len);
    if (!why)
        return;
    dc_api_push_visible(L, uri, len, 256, 1);
    luaL_error(L, "%s: bad uri \"%s\": %s", api, lua_tostring(L, -1), why);
}

void dc_api_check_ctl(lua_State *L, const char *api, const char *what, const char *s,
                      size_t len)
{
    dc_sbx_charge(L, len);
    for (size_t i = 0; i < len; i++) {
        if (is_ctl((unsigned char)s[i])) {
            dc_api_push_visible(L, s, len, 256, 1);
            luaL_error(L, "%s: control byte 0x%02x in %s \"%s\"", api, (unsigned char)s[i],
                       what, lua_tostring(L, -1));
        }
    }
}

void dc_api_check_header_set(lua_State *L, dc_call *call, const char *api, dc_str name,
                             const dc_str *vals, size_t n)
{
    const dc_bounds *bd = call->bounds;
    if (bd && bd->header_values && n > bd->header_values)
        luaL_error(L, "%s: %f values for one header, over the policy's bound of %u", api,
                   (lua_Number)n,
                   bd->header_values);
    dc_api_check_values(L, call, api, vals, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += name.len + vals[i].len + 4;  /* as a header line: "name: value\r\n" */
    if (bd && bd->header_bytes && (total > bd->header_bytes ||
                                   call->header_len > bd->header_bytes - total))
        luaL_error(L, "%s: headers over the policy's bound of %u bytes in one call", api,
                   bd->header_bytes);
    dc_sbx_charge_copy(L, total, total + n);
    call->header_len += total;
}

/* Registers a property of ngx (see api.h) in the registry table env_ngx.c made. */
void dc_sbx_add_prop(lua_State *L, const char *name, lua_CFunction get, lua_CFunction set)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    lua_createtable(L, 2, 0);
    if (get) {
        lua_pushcfunction(L, get);
        lua_rawseti(L, -2, 1);
    }
    if (set) {
        lua_pushcfunction(L, set);
        lua_rawseti(L, -2, 2);
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}
