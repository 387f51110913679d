/* api_util.h - helpers shared by the plugin API areas (api_*.c): a growable buffer held by a
 * Lua userdata (so that the state's memory quota counts it and the collector frees it after an
 * error), URI escaping as nginx does it, query-string parsing and building, and the time check
 * that long C loops make. Private to sandbox/api_*.c.
 */
#ifndef DC_API_UTIL_H
#define DC_API_UTIL_H

#include "api.h"
#include "api_table.h"

/* Raises "NAME is not available here" when the host lacks callback FIELD. */
#define DC_API_NEED(L, call, field, name)                                  \
    do {                                                                   \
        if (!(call)->host->field)                                          \
            luaL_error((L), "%s is not available here", (name));           \
    } while (0)

/* ---- a buffer in Lua-allocated memory, owned by a userdata on the stack ---- */

/* Pushes a new empty buffer. Stack: [-0, +1] */
DC_HIDDEN dc_ubuf *dc_ubuf_new(lua_State *L);
/* Makes room for n more bytes and returns where they go (len is not moved); raises on
 * failure. Stack: [-0, +0] */
DC_HIDDEN char *dc_ubuf_prep(lua_State *L, dc_ubuf *b, size_t n);
/* Stack: [-0, +0] */
DC_HIDDEN void dc_ubuf_add(lua_State *L, dc_ubuf *b, const void *p, size_t n);
/* Stack: [-0, +1] */
DC_HIDDEN void dc_ubuf_push(lua_State *L, const dc_ubuf *b);

/* ---- escaping (the same characters OpenResty's ngx.escape_uri escapes) ---- */
enum {
    DC_ESC_URI = 0,
    DC_ESC_ARGS = 1,
    DC_ESC_URI_COMPONENT = 2,
    DC_ESC_HTML = 3,
    DC_ESC_REFRESH = 4,
    DC_ESC_MEMCACHED = 5,
    DC_ESC_MAIL_AUTH = 6,
    DC_ESC_HEADER_NAME = 7,
    DC_ESC_HEADER_VALUE = 8,
    DC_ESC_SET_ARGS = 9,  /* ngx.req.set_uri_args(string): %00-%20, %7F */
    DC_ESC_COUNT
};

/* Number of bytes of src that type escapes. */
DC_HIDDEN size_t dc_api_escape_count(const char *src, size_t len, int type);
/* Pushes src escaped (each escaped byte as %XX, uppercase). Stack: [-0, +1] */
DC_HIDDEN void dc_api_push_escaped(lua_State *L, const char *src, size_t len, int type);
/* Pushes src URI-unescaped: %XX decoded, '+' as a space, a bad % kept. Stack: [-0, +1] */
DC_HIDDEN void dc_api_push_unescaped(lua_State *L, const char *src, size_t len);

/* ---- query strings ---- */
/* Pushes the table of args in s (repeated keys as arrays, a key alone as true, empty keys
 * dropped); at most max pairs when max > 0, then also "truncated". Returns the number of
 * values pushed. Stack: [-0, +1|+2] */
DC_HIDDEN int dc_api_parse_args(lua_State *L, const char *s, size_t len, int max);
/* t[k] = v for the key and value on top; a repeated key becomes an array of its values.
 * t is an absolute index. Stack: [-2, +0] */
DC_HIDDEN void dc_api_set_multi(lua_State *L, int t);
/* Pushes the query string for the table at idx (ngx.encode_args rules). Stack: [-0, +1] */
DC_HIDDEN void dc_api_encode_args(lua_State *L, int idx);

/* ---- headers (api_header.c) ---- */
/* Pushes the header name at idx (a string, or a number as a string), with '_' as '-' when
 * dash, escaped as nginx escapes header names when escape. Stack: [-0, +1] */
DC_HIDDEN dc_str dc_api_header_name(lua_State *L, int idx, int dash, int escape);
/* 1 when a header name needs dc_api_header_name's work (a '_' to write as '-', or a byte to
 * escape), 0 when it goes to the host as it is. */
DC_HIDDEN int dc_api_header_name_work(const char *name, size_t len);
/* The header value(s) at idx: nil (none), a string, number or boolean (one), or an array of
 * those; escaped as header values. A string, or an array of at most DC_HEADER_FEW strings,
 * that needs no escaping is returned in few[], its strings kept alive by the value at idx
 * (Stack: [-0, +0]); otherwise the array and strings are kept alive by a table it pushes
 * (Stack: [-0, +1]). Charges the work of building values, not their bytes: the caller
 * passes them to dc_api_check_header_set, which does. */
#define DC_HEADER_FEW 8
DC_HIDDEN dc_str *dc_api_header_values(lua_State *L, int idx, dc_str few[DC_HEADER_FEW],
                                       size_t *n);

/* ---- header tables (api_req.c) ---- */
typedef int (*dc_api_header_walk)(void *hreq, dc_each_header_cb each, void *arg);
/* Optional integer limit at idx (ngx.req.get_headers' max): def when nil, none (0) when
 * <= 0; a non-number raises. Stack: [-0, +0] */
DC_HIDDEN int dc_api_opt_max(lua_State *L, int idx, int def);
/* Pushes the table of the headers walk hands over, as ngx.req.get_headers builds it: names
 * lower-cased with the lookup metatable unless raw, repeated names as arrays, at most max
 * headers when max > 0 (then also "truncated"). Charged by the headers and bytes read; what
 * it builds lives in the state's memory. Returns the values pushed. Stack: [-0, +1|+2] */
DC_HIDDEN int dc_api_push_headers(lua_State *L, dc_call *call, dc_api_header_walk walk, int max,
                                  int raw);

/* ---- request facts (api_reqinfo.c), registered with the rest of ngx.req ---- */
DC_HIDDEN int req_start_time(lua_State *L);
DC_HIDDEN int req_http_version(lua_State *L);
DC_HIDDEN int req_is_internal(lua_State *L);
DC_HIDDEN int req_set_method(lua_State *L);
/* the request body (api_body.c) */
DC_HIDDEN int req_read_body(lua_State *L);
DC_HIDDEN int req_get_body_data(lua_State *L);
DC_HIDDEN int req_get_post_args(lua_State *L);

/* ---- response facts (api_resp.c), opened with the HEADER area ---- */
/* Sets ngx.resp (get_headers) into the table at the top and registers the headers_sent
 * property. Stack: [-0, +0] */
DC_HIDDEN void dc_api_open_resp(lua_State *L);

/* ---- misc ---- */
/* Sends msg to host->log at level (OpenResty's 0..8) as "[dynacode] plugin "NAME": msg",
 * capped at 4 KiB (api_log.c). Stack: [-0, +0] */
DC_HIDDEN void dc_api_log(lua_State *L, dc_call *call, int level, const char *msg, size_t len);
/* Raises "API: bad uri \"...\": WHY" unless uri is a path nginx may take as a request URI:
 * it starts with '/', and once %XX-decoded has no NUL, control byte or backslash and no "."
 * or ".." segment (empty segments, as in "//", are harmless). Charges its length.
 * Stack: [-0, +0] */
DC_HIDDEN void dc_api_check_path(lua_State *L, const char *api, const char *uri, size_t len);
/* The reason uri is refused by dc_api_check_path, or NULL when it is fine. */
DC_HIDDEN const char *dc_api_path_problem(const char *uri, size_t len);
/* Raises "API: control byte 0xNN in WHAT \"...\"" when s holds a byte below 0x20 or 0x7f.
 * Stack: [-0, +0] */
DC_HIDDEN void dc_api_check_ctl(lua_State *L, const char *api, const char *what, const char *s,
                                size_t len);
/* Pushes s with every control byte, backslash (and double quote when quote) written as \n,
 * \r, \t, \\, \" or \xNN; at most max bytes of s are read. Stack: [-0, +1] */
DC_HIDDEN void dc_api_push_visible(lua_State *L, const char *s, size_t len, size_t max,
                                   int quote);
/* Bounds what one header change hands to the host (values, bytes per value, bytes in the
 * whole call) and charges it to the call's instruction and memory quotas. Raises a Lua error
 * naming api and the bound; a memory trip when the host copies would pass the memory quota.
 * Stack: [-0, +0] */
DC_HIDDEN void dc_api_check_header_set(lua_State *L, dc_call *call, const char *api, dc_str name,
                                       const dc_str *vals, size_t n);
/* Formats a number as Lua does (%.14g); returns buf. */
DC_HIDDEN const char *dc_api_fmt_num(double n, char buf[32]);
/* Pushes s lowercased, with '_' as '-' when dash. Stack: [-0, +1] */
DC_HIDDEN void dc_api_push_lower(lua_State *L, const char *s, size_t len, int dash);
/* Raises "API: value of N bytes over the policy's bound of M" when a header or variable value
 * the plugin hands to the host is longer than the policy allows. Stack: [-0, +0] */
DC_HIDDEN void dc_api_check_values(lua_State *L, const dc_call *call, const char *api,
                                   const dc_str *vals, size_t n);
/* Trips the time quota when the running call is past its deadline: for C loops whose
 * iterations are each bounded but whose count depends on the input. Stack: [-0, +0] */
DC_HIDDEN void dc_api_check_time(lua_State *L);
/* Index idx as an absolute stack index. */
static inline int dc_api_absidx(lua_State *L, int idx)
{
    return (idx < 0 && idx > LUA_REGISTRYINDEX) ? lua_gettop(L) + idx + 1 : idx;
}

#endif /* DC_API_UTIL_H */
