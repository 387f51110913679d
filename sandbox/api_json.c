/* api_json.c - the `json` table: json.encode and json.decode with lua-cjson's rules (a table
 * with keys 1..n is an array, an empty table is {}, null is json.null), written here over the
 * Lua stack so that every byte counts against the plugin's memory quota. Depth limit 64.
 * Both charge the quota for the bytes and values they go through, in pieces as they go, and
 * read tables raw (no plugin metamethod runs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_cost.h"
#include "api_util.h"

#define JSON_MAX_DEPTH 64

/* ---- encode ---- */
typedef struct enc {
    dc_ubuf *b;
    dc_meter m;   /* values visited and bytes written, charged in pieces */
} enc;

static void enc_value(lua_State *L, enc *e, int idx, int depth);

/* Appends s as a JSON string, in charged pieces. Stack: [-0, +0] */
static void enc_string(lua_State *L, enc *e, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    dc_ubuf_add(L, e->b, "\"", 1);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < DC_COST_PIECE ? len - off : DC_COST_PIECE;
        const unsigned char *p = (const unsigned char *)s + off;
        dc_meter_add(L, &e->m, n);
        size_t need = n;
        for (size_t i = 0; i < n; i++)
            need += p[i] == '"' || p[i] == '\\' ? 1 : p[i] < 0x20 || p[i] == 0x7f ? 5 : 0;
        char *d = dc_ubuf_prep(L, e->b, need), *d0 = d;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = p[i];
            switch (c) {
            case '"': *d++ = '\\'; *d++ = '"'; break;
            case '\\': *d++ = '\\'; *d++ = '\\'; break;
            case '\b': *d++ = '\\'; *d++ = 'b'; break;
            case '\f': *d++ = '\\'; *d++ = 'f'; break;
            case '\n': *d++ = '\\'; *d++ = 'n'; break;
            case '\r': *d++ = '\\'; *d++ = 'r'; break;
            case '\t': *d++ = '\\'; *d++ = 't'; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    memcpy(d, "\\u00", 4);
                    d[4] = hex[c >> 4];
                    d[5] = hex[c & 0xf];
                    d += 6;
                } else {
                    *d++ = (char)c;
                }
            }
        }
        e->b->len += (size_t)(d - d0);
        off += n;
    }
    dc_ubuf_add(L, e->b, "\"", 1);
}

/* Appends a finite number (%.14g, as lua-cjson). Stack: [-0, +0] */
static void enc_number(lua_State *L, enc *e, double n)
{
    if (!isfinite(n))
        luaL_error(L, "Cannot serialise number: must not be NaN or Infinity");
    char buf[32];
    size_t len = strlen(dc_api_fmt_num(n, buf));
    dc_meter_add(L, &e->m, len);  /* formatting costs about a step per digit */
    dc_ubuf_add(L, e->b, buf, len);
}

/* Returns the array length of the table at idx (keys exactly 1..n, holes allowed as cjson
 * does for n <= 2 * count or n <= 10), 0 for {} , or -1 when it is an object. Stack: [-0, +0] */
static long array_len(lua_State *L, enc *e, int idx)
{
    double max = 0;
    long count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        dc_meter_add(L, &e->m, 1);
        double k;
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 || floor(k) != k ||
            k > 1e9) {
            lua_pop(L, 1);
            return -1;
        }
        if (k > max)
            max = k;
        count++;
    }
    if (max > 10 && max > 2.0 * (double)count)
        luaL_error(L, "Cannot serialise table: excessively sparse array");
    return (long)max;
}

/* Appends the table at idx (absolute) as an array or an object. Stack: [-0, +0] */
static void enc_table(lua_State *L, enc *e, int idx, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        luaL_error(L, "Cannot serialise, excessive nesting (%d)", depth);
    luaL_checkstack(L, 4, "json");
    long n = array_len(L, e, idx);
    if (n == 0) {
        dc_ubuf_add(L, e->b, "{}", 2);
        return;
    }
    if (n > 0) {
        dc_ubuf_add(L, e->b, "[", 1);
        for (long i = 1; i <= n; i++) {
            if (i > 1)
                dc_ubuf_add(L, e->b, ",", 1);
            lua_rawgeti(L, idx, (int)i);
            enc_value(L, e, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
        dc_ubuf_add(L, e->b, "]", 1);
        return;
    }
    dc_ubuf_add(L, e->b, "{", 1);
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int top = lua_gettop(L);
        if (!first)
            dc_ubuf_add(L, e->b, ",", 1);
        first = 0;
        size_t len;
        const char *k;
        char num[32];
        if (lua_type(L, top - 1) == LUA_TSTRING) {
            k = lua_tolstring(L, top - 1, &len);
        } else if (lua_type(L, top - 1) == LUA_TNUMBER) {
            k = dc_api_fmt_num(lua_tonumber(L, top - 1), num);  /* never convert the key */
            len = strlen(k);
        } else {
            luaL_error(L, "Cannot serialise table: table key must be a number or string");
            return;
        }
        enc_string(L, e, k, len);
        dc_ubuf_add(L, e->b, ":", 1);
        enc_value(L, e, top, depth);
        lua_pop(L, 1);
    }
    dc_ubuf_add(L, e->b, "}", 1);
}

/* Appends the value at idx (absolute); depth counts the enclosing tables. Stack: [-0, +0] */
static void enc_value(lua_State *L, enc *e, int idx, int depth)
{
    dc_meter_add(L, &e->m, 1);
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        dc_ubuf_add(L, e->b, "null", 4);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            dc_ubuf_add(L, e->b, "true", 4);
        else
            dc_ubuf_add(L, e->b, "false", 5);
        return;
    case LUA_TNUMBER:
        enc_number(L, e, lua_tonumber(L, idx));
        return;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        enc_string(L, e, s, len);
        return;
    case LUA_TTABLE:
        enc_table(L, e, idx, depth + 1);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            dc_ubuf_add(L, e->b, "null", 4);
            return;
        }
        break;
    default:
        break;
    }
    luaL_error(L, "Cannot serialise %s: type not supported", luaL_typename(L, idx));
}

/* json.encode(value). Stack: [-0, +1] */
static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    enc e = {dc_ubuf_new(L), {0}};
    enc_value(L, &e, 1, 0);
    dc_meter_flush(L, &e.m);
    dc_ubuf_push(L, e.b);
    return 1;
}

/* ---- decode ---- */
typedef struct dec {
    lua_State *L;
    const char *s, *p, *end;
    const char *err;   /* static message; NULL while all is well */
    const char *at;    /* where it went wrong */
    const char *mark;  /* input up to here is charged */
    dc_meter m;        /* values and bytes, charged in pieces */
} dec;

/* Charges the input read up to `at`. Stack: [-0, +0] */
static void dec_charge(dec *d, const char *at)
{
    if (at > d->mark) {
        dc_meter_add(d->L, &d->m, (uint64_t)(at - d->mark));
        d->mark = at;
    }
}

static int dec_fail(dec *d, const char *msg, const char *at)
{
    d->err = msg;
    d->at = at;
    return -1;
}

static void skip_ws(dec *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        if (++d->p - d->mark >= DC_COST_PIECE)
            dec_charge(d, d->p);
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Pushes the string at d->p (on the opening quote). Stack: [-0, +1|+0 on error] */
static int dec_string(lua_State *L, dec *d)
{
    const char *start = ++d->p, *q = start;
    for (;;) {  /* scanned in charged pieces */
        const char *lim = d->end - q > DC_COST_PIECE ? q + DC_COST_PIECE : d->end;
        while (q < lim && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        dec_charge(d, q);
        if (q < lim || q == d->end)
            break;
    }
    if (q < d->end && *q == '"') {  /* no escapes: the common case */
        lua_pushlstring(L, start, (size_t)(q - start));
        d->p = q + 1;
        return 0;
    }
    while (q < d->end && *q != '"') {  /* the end of the string bounds the buffer */
        q += *q == '\\' ? 2 : 1;
        if (q - d->mark >= DC_COST_PIECE)
            dec_charge(d, q < d->end ? q : d->end);
    }
    if (q > d->end)
        q = d->end;
    dc_meter_add(L, &d->m, (uint64_t)(q - start));  /* the copy below */
    dc_ubuf *b = dc_ubuf_new(L);
    /* an escape never decodes to more bytes than it takes */
    char *o = dc_ubuf_prep(L, b, (size_t)(q - start) + 1), *o0 = o;
    const char *p = start;
    for (;;) {
        if (p >= d->end)
            return lua_pop(L, 1), dec_fail(d, "unexpected end of string", p);
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return lua_pop(L, 1), dec_fail(d, "invalid control character in string", p);
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (d->end - p < 2)
            return lua_pop(L, 1), dec_fail(d, "unexpected end of string", p);
        char esc = p[1];
        p += 2;
        switch (esc) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (d->end - p < 4 || hex4(p, &cp) != 0)
                return lua_pop(L, 1), dec_fail(d, "invalid unicode escape", p - 2);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (d->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return lua_pop(L, 1), dec_fail(d, "invalid unicode surrogate pair", p - 6);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return lua_pop(L, 1), dec_fail(d, "invalid unicode surrogate pair", p - 6);
            }
            o += utf8_put(o, cp);
            break;
        }
        default:
            return lua_pop(L, 1), dec_fail(d, "invalid escape in string", p - 2);
        }
    }
    b->len = (size_t)(o - o0);
    dc_ubuf_push(L, b);
    lua_remove(L, -2);
    d->p = p + 1;
    return 0;
}

/* Pushes the number at d->p (JSON grammar, checked before strtod sees it). The scan stops at
 * the longest number accepted, so a run of digits costs no more than that. Stack: [-0, +1] */
static int dec_number(lua_State *L, dec *d)
{
    char buf[512];
    const char *p = d->p, *start = p;
    const char *end = d->end - p >= (ptrdiff_t)sizeof buf ? p + sizeof buf : d->end;
    int ok = 1;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        ok = 0;
    }
    if (ok && p < end && *p == '.') {
        p++;
        if (!(p < end && *p >= '0' && *p <= '9'))
            ok = 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (ok && p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p < end && *p >= '0' && *p <= '9'))
            ok = 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    if (n >= sizeof buf)
        return dec_fail(d, "number too long", start);
    if (!ok)
        return dec_fail(d, "invalid number", start);
    memcpy(buf, start, n);
    buf[n] = '\0';
    lua_pushnumber(L, strtod(buf, NULL));
    d->p = p;
    return 0;
}

static int dec_value(lua_State *L, dec *d, int depth);

/* Pushes the array or object at d->p (on '[' or '{'). Stack: [-0, +1|+0 on error] */
static int dec_container(lua_State *L, dec *d, int depth)
{
    int obj = *d->p == '{';
    char close = obj ? '}' : ']';
    if (depth > JSON_MAX_DEPTH)
        return dec_fail(d, "too many nested data structures", d->p);
    luaL_checkstack(L, 6, "json");
    d->p++;
    lua_createtable(L, 0, 0);
    int t = lua_gettop(L);
    int n = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return 0;
    }
    for (;;) {
        skip_ws(d);
        if (obj) {
            if (d->p >= d->end || *d->p != '"')
                return lua_settop(L, t - 1), dec_fail(d, "expected object key string", d->p);
            if (dec_string(L, d) != 0)
                return lua_settop(L, t - 1), -1;
            skip_ws(d);
            if (d->p >= d->end || *d->p != ':')
                return lua_settop(L, t - 1), dec_fail(d, "expected colon", d->p);
            d->p++;
        }
        if (dec_value(L, d, depth) != 0)
            return lua_settop(L, t - 1), -1;
        if (obj)
            lua_rawset(L, t);
        else
            lua_rawseti(L, t, ++n);
        skip_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == close) {
            d->p++;
            return 0;
        }
        return lua_settop(L, t - 1), dec_fail(d, obj ? "expected comma or object end"
                                                     : "expected comma or array end", d->p);
    }
}

/* Pushes true, false or json.null for word at d->p. Stack: [-0, +1|+0 on error] */
static int dec_literal(lua_State *L, dec *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, "invalid token", d->p);
    d->p += n;
    if (word[0] == 'n')
        lua_pushlightuserdata(L, NULL);
    else
        lua_pushboolean(L, word[0] == 't');
    return 0;
}

/* Pushes the value at d->p. Stack: [-0, +1|+0 on error] */
static int dec_value(lua_State *L, dec *d, int depth)
{
    dc_meter_add(L, &d->m, 1);
    dec_charge(d, d->p);
    skip_ws(d);
    if (d->p >= d->end)
        return dec_fail(d, "unexpected end of input", d->p);
    switch (*d->p) {
    case '{':
    case '[':
        return dec_container(L, d, depth + 1);
    case '"':
        return dec_string(L, d);
    case 't':
        return dec_literal(L, d, "true", 4);
    case 'f':
        return dec_literal(L, d, "false", 5);
    case 'n':
        return dec_literal(L, d, "null", 4);
    default:
        return dec_number(L, d);
    }
}

/* json.decode(text): the value, or nil and a message naming the character. Stack: [-0, +1|+2] */
static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    dec d = {L, s, s, s + len, NULL, NULL, s, {0}};
    if (dec_value(L, &d, 0) == 0) {
        skip_ws(&d);
        dec_charge(&d, d.p);
        dc_meter_flush(L, &d.m);
        if (d.p == d.end)
            return 1;
        lua_pop(L, 1);
        dec_fail(&d, "trailing garbage", d.p);
    }
    dec_charge(&d, d.p);
    dc_meter_flush(L, &d.m);
    lua_settop(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "Expected JSON: %s at character %d", d.err,
                    (int)(d.at - d.s) + 1);
    return 2;
}

void dc_api_open_json(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(JSON, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    lua_createtable(L, 0, 3);
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
