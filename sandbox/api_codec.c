/* api_codec.c - ngx.encode_base64, ngx.decode_base64 (nginx's rules), ngx.md5, ngx.md5_bin,
 * ngx.sha1_bin, ngx.hmac_sha1, ngx.crc32_long, ngx.crc32_short (api_md5.c, api_sha1.c,
 * api_crc32.c), ngx.escape_uri, ngx.unescape_uri, ngx.encode_args and ngx.decode_args
 * (api_util.c), ngx.quote_sql_str.
 */
#include <string.h>

#include "api_cost.h"
#include "api_hash.h"
#include "api_util.h"

/* The string argument of the digest and escape functions: nil or false is "", a number is
 * its string, anything else an error, as OpenResty does. Stack: [-0, +0] */
static const char *opt_str(lua_State *L, int idx, size_t *len, const char *fn)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNONE || t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx))) {
        *len = 0;
        return "";
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad argument #%d to '%s' (string expected, got %s)", idx, fn,
                   luaL_typename(L, idx));
    return lua_tolstring(L, idx, len);
}

/* ngx.encode_base64(s, no_padding?). Stack: [-0, +1] */
static int ngx_encode_base64(lua_State *L)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len;
    const char *s = opt_str(L, 1, &len, "encode_base64");
    int pad = 1;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TBOOLEAN)
            return luaL_error(L, "bad argument #2 to 'encode_base64' (boolean expected, got %s)",
                              luaL_typename(L, 2));
        pad = !lua_toboolean(L, 2);
    }
    if (len > ((size_t)1 << 30))
        return luaL_error(L, "bad argument #1 to 'encode_base64' (string too long)");
    dc_ubuf *b = dc_ubuf_new(L);
    char *d = dc_ubuf_prep(L, b, (len + 2) / 3 * 4), *d0 = d;
    const unsigned char *p = (const unsigned char *)s;
    size_t full = len / 3 * 3, i = 0;
    while (i < full) {
        /* pieces of whole triples, each charged before it is encoded */
        size_t end = i + dc_cost_piece(L, full - i > 3072 ? 3072 : full - i);
        for (; i < end; i += 3) {
            *d++ = tbl[p[i] >> 2];
            *d++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
            *d++ = tbl[((p[i + 1] & 0x0f) << 2) | (p[i + 2] >> 6)];
            *d++ = tbl[p[i + 2] & 0x3f];
        }
    }
    if (i < len) {
        *d++ = tbl[p[i] >> 2];
        if (i + 1 == len) {
            *d++ = tbl[(p[i] & 3) << 4];
            if (pad) {
                *d++ = '=';
                *d++ = '=';
            }
        } else {
            *d++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
            *d++ = tbl[(p[i + 1] & 0x0f) << 2];
            if (pad)
                *d++ = '=';
        }
    }
    b->len = (size_t)(d - d0);
    dc_ubuf_push(L, b);
    return 1;
}

/* ngx.decode_base64(s): nil when s is not base64. As nginx: decoding stops at the first '=',
 * padding may be missing, a length of 4n+1 is invalid. Stack: [-0, +1] */
static int ngx_decode_base64(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "bad argument #1 to 'decode_base64' (string expected, got %s)",
                          luaL_typename(L, 1));
    size_t len;
    const unsigned char *s = (const unsigned char *)lua_tolstring(L, 1, &len);
    size_t n = 0;
    while (n < len) {
        size_t end = n + dc_cost_piece(L, len - n);
        for (; n < end && s[n] != '='; n++)
            if (dc_b64_value(s[n]) < 0) {
                lua_pushnil(L);
                return 1;
            }
        if (n < end)
            break;  /* at the first '=' */
    }
    if (n % 4 == 1) {
        lua_pushnil(L);
        return 1;
    }
    dc_ubuf *b = dc_ubuf_new(L);
    char *d = dc_ubuf_prep(L, b, n / 4 * 3 + 3), *d0 = d;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i + dc_cost_piece(L, n - i);
        for (; i < end; i++) {
            acc = (acc << 6) | (uint32_t)dc_b64_value(s[i]);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *d++ = (char)((acc >> bits) & 0xff);
            }
        }
    }
    b->len = (size_t)(d - d0);
    dc_ubuf_push(L, b);
    return 1;
}

/* The digests over s, fed in charged pieces. Stack: [-0, +0] */
static void md5_of(lua_State *L, const char *s, size_t len, unsigned char out[16])
{
    dc_md5_ctx c;
    dc_md5_init(&c);
    for (size_t off = 0; off < len;) {
        size_t n = dc_cost_piece(L, len - off);
        dc_md5_update(&c, s + off, n);
        off += n;
    }
    dc_md5_final(&c, out);
}

static void sha1_of(lua_State *L, const char *s, size_t len, unsigned char out[20])
{
    dc_sha1_ctx c;
    dc_sha1_init(&c);
    for (size_t off = 0; off < len;) {
        size_t n = dc_cost_piece(L, len - off);
        dc_sha1_update(&c, s + off, n);
        off += n;
    }
    dc_sha1_final(&c, out);
}

static uint32_t crc32_of(lua_State *L, const char *s, size_t len)
{
    uint32_t crc = 0;
    for (size_t off = 0; off < len;) {
        size_t n = dc_cost_piece(L, len - off);
        crc = dc_crc32_update(crc, s + off, n);
        off += n;
    }
    return crc;
}

/* ngx.md5(s): lowercase hex. Stack: [-0, +1] */
static int ngx_md5(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    size_t len;
    const char *s = opt_str(L, 1, &len, "md5");
    unsigned char d[16];
    char out[32];
    md5_of(L, s, len, d);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 0xf];
    }
    lua_pushlstring(L, out, 32);
    return 1;
}

/* ngx.md5_bin(s). Stack: [-0, +1] */
static int ngx_md5_bin(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "md5_bin");
    unsigned char d[16];
    md5_of(L, s, len, d);
    lua_pushlstring(L, (const char *)d, 16);
    return 1;
}

/* ngx.sha1_bin(s). Stack: [-0, +1] */
static int ngx_sha1_bin(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "sha1_bin");
    unsigned char d[20];
    sha1_of(L, s, len, d);
    lua_pushlstring(L, (const char *)d, 20);
    return 1;
}

/* ngx.crc32_long(s). Stack: [-0, +1] */
static int ngx_crc32_long(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "crc32_long");
    lua_pushnumber(L, (lua_Number)crc32_of(L, s, len));
    return 1;
}

/* ngx.crc32_short(s): the same CRC-32 as crc32_long (nginx's two differ in speed only).
 * Stack: [-0, +1] */
static int ngx_crc32_short(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "crc32_short");
    lua_pushnumber(L, (lua_Number)crc32_of(L, s, len));
    return 1;
}

/* Argument idx of a function that takes exactly a string (a number is its string, as
 * lua-nginx-module's C functions take it). Stack: [-0, +0] */
static const char *str_arg(lua_State *L, int idx, size_t *len, const char *fn)
{
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad argument #%d to '%s' (string expected, got %s)", idx, fn,
                   luaL_typename(L, idx));
    return lua_tolstring(L, idx, len);
}

/* ngx.hmac_sha1(key, s): the 20-byte digest. Charged for the bytes of both (a key longer than
 * a block is hashed first, as HMAC says) and the two blocks of pads. Stack: [-0, +1] */
static int ngx_hmac_sha1(lua_State *L)
{
    if (lua_gettop(L) != 2)
        return luaL_error(L, "hmac_sha1: expecting 2 arguments, but got %d", lua_gettop(L));
    size_t klen, len;
    const char *key = str_arg(L, 1, &klen, "hmac_sha1");
    const char *s = str_arg(L, 2, &len, "hmac_sha1");
    unsigned char kd[20], d[20];
    if (klen > 64) {
        sha1_of(L, key, klen, kd);
        key = (const char *)kd;
        klen = sizeof kd;
    }
    dc_sbx_charge(L, 192);
    dc_hmac_sha1_ctx c;
    dc_hmac_sha1_init(&c, key, klen);
    for (size_t off = 0; off < len;) {
        size_t n = dc_cost_piece(L, len - off);
        dc_hmac_sha1_update(&c, s + off, n);
        off += n;
    }
    dc_hmac_sha1_final(&c, d);
    lua_pushlstring(L, (const char *)d, sizeof d);
    return 1;
}

/* The escape of byte c inside a MySQL string literal ('\0' for NUL...), or 0 when c stands as
 * it is: NUL, backspace, newline, carriage return, tab, Ctrl-Z (MySQL's end of file on
 * Windows), backslash and both quotes. */
static char sql_escape(unsigned char c)
{
    switch (c) {
    case '\0':
        return '0';
    case '\b':
        return 'b';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case 26:
        return 'Z';
    case '\\':
    case '\'':
    case '"':
        return (char)c;
    default:
        return 0;
    }
}

/* ngx.quote_sql_str(s): s between single quotes, escaped as MySQL reads string literals
 * (each escaped byte as a backslash and a letter or itself). At most twice the input and two
 * bytes, in the state's own memory; both passes are charged. Stack: [-0, +1] */
static int ngx_quote_sql_str(lua_State *L)
{
    if (lua_gettop(L) != 1)
        return luaL_error(L, "quote_sql_str: expecting one argument, but got %d", lua_gettop(L));
    size_t len;
    const unsigned char *s = (const unsigned char *)str_arg(L, 1, &len, "quote_sql_str");
    if (len > ((size_t)1 << 30))
        return luaL_error(L, "bad argument #1 to 'quote_sql_str' (string too long)");
    size_t n = 0, off, k;
    for (off = 0; off < len; off += k) {
        k = dc_cost_piece(L, len - off);
        for (size_t i = off; i < off + k; i++)
            n += sql_escape(s[i]) != 0;
    }
    dc_ubuf *b = dc_ubuf_new(L);
    char *d = dc_ubuf_prep(L, b, len + n + 2), *d0 = d;
    *d++ = '\'';
    for (off = 0; off < len; off += k) {
        k = dc_cost_piece(L, len - off);
        for (size_t i = off; i < off + k; i++) {
            char e = sql_escape(s[i]);
            if (e) {
                *d++ = '\\';
                *d++ = e;
            } else {
                *d++ = (char)s[i];
            }
        }
    }
    *d++ = '\'';
    b->len = (size_t)(d - d0);
    dc_ubuf_push(L, b);
    return 1;
}

/* ngx.escape_uri(s, type?): type 2 (URI component) by default, 0..6 as nginx's escapes.
 * Stack: [-0, +1] */
static int ngx_escape_uri(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "escape_uri");
    int type = DC_ESC_URI_COMPONENT;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TNUMBER)
            return luaL_error(L, "\"type\" is not a number");
        lua_Number t = lua_tonumber(L, 2);
        if (!(t >= DC_ESC_URI && t <= DC_ESC_MAIL_AUTH))
            return luaL_error(L, "\"type\" %s out of range", lua_tostring(L, 2));
        type = (int)t;
    }
    dc_api_push_escaped(L, s, len, type);
    return 1;
}

/* ngx.unescape_uri(s). Stack: [-0, +1] */
static int ngx_unescape_uri(lua_State *L)
{
    size_t len;
    const char *s = opt_str(L, 1, &len, "unescape_uri");
    dc_api_push_unescaped(L, s, len);
    return 1;
}

/* ngx.encode_args(t). Stack: [-0, +1] */
static int ngx_encode_args(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    dc_api_encode_args(L, 1);
    return 1;
}

/* ngx.decode_args(s, max?): max 100 by default, 0 for no limit. Stack: [-0, +1|+2] */
static int ngx_decode_args(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Number max = luaL_optnumber(L, 2, 100);
    if (max != max)
        return luaL_error(L, "bad argument #2 to 'decode_args' (number expected, got nan)");
    int m = !(max >= 1) ? 0 : max > INT32_MAX ? INT32_MAX : (int)max;
    return dc_api_parse_args(L, s, len, m);
}

void dc_api_open_codec(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(CODEC, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
}
