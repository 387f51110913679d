/* api_header.c - response headers: ngx.header (a proxy table over host->resp_header_get/set,
 * `_` read as `-` in names, several values as an array) and the ngx.status property. Setting
 * either after the headers went out logs an error, as OpenResty does, and changes nothing.
 * The area also opens ngx.resp and ngx.headers_sent (api_resp.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_util.h"

#define HEADER_MAX_VALUES 100  /* OpenResty's bound on the values of one header */

typedef struct values {
    dc_str v[HEADER_MAX_VALUES];
    size_t n;
} values;

/* dc_each_value_cb: collects up to HEADER_MAX_VALUES values (no Lua call in a host callback). */
static int collect(void *arg, dc_str value)
{
    values *vs = arg;
    vs->v[vs->n++] = value;
    return vs->n == HEADER_MAX_VALUES;
}

dc_str dc_api_header_name(lua_State *L, int idx, int dash, int escape)
{
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad header name: string expected, got %s", luaL_typename(L, idx));
    lua_pushvalue(L, idx);
    dc_str n;
    n.data = lua_tolstring(L, -1, &n.len);
    if (dash && memchr(n.data, '_', n.len)) {
        dc_ubuf *b = dc_ubuf_new(L);
        char *d = dc_ubuf_prep(L, b, n.len);
        for (size_t i = 0; i < n.len; i++)
            d[i] = n.data[i] == '_' ? '-' : n.data[i];
        b->len = n.len;
        dc_ubuf_push(L, b);           /* name ubuf new */
        lua_replace(L, -3);
        lua_pop(L, 1);
        n.data = lua_tolstring(L, -1, &n.len);
    }
    if (escape && dc_api_escape_count(n.data, n.len, DC_ESC_HEADER_NAME) > 0) {
        dc_api_push_escaped(L, n.data, n.len, DC_ESC_HEADER_NAME);
        lua_remove(L, -2);
        n.data = lua_tolstring(L, -1, &n.len);
    }
    return n;
}

/* ngx.header.__index(t, name): nil, a string, or an array of strings. Stack: [-0, +1] */
static int header_index(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, resp_header_get, "ngx.header");
    dc_str name = dc_api_header_name(L, 2, 1, 0);
    values vs;
    vs.n = 0;
    if (call->host->resp_header_get(call->hreq, name, collect, &vs) != 0 || vs.n == 0) {
        lua_pushnil(L);
        return 1;
    }
    size_t bytes = vs.n;
    for (size_t i = 0; i < vs.n; i++)
        bytes += vs.v[i].len;
    dc_sbx_charge(L, bytes);
    if (vs.n == 1) {
        lua_pushlstring(L, vs.v[0].data, vs.v[0].len);
        return 1;
    }
    lua_createtable(L, (int)vs.n, 0);
    for (size_t i = 0; i < vs.n; i++) {
        lua_pushlstring(L, vs.v[i].data, vs.v[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* Sets *out to the value at idx as a header value (string, number or boolean), escaped and
 * kept alive in the table at anchor under slot. Stack: [-0, +0] */
static void header_value(lua_State *L, int idx, int anchor, int slot, dc_str *out)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
        lua_pushvalue(L, idx);
        s = lua_tolstring(L, -1, &len);
        break;
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
        s = lua_tolstring(L, -1, &len);
        break;
    default:
        luaL_error(L, "bad header value: string, number, boolean or table expected, got %s",
                   luaL_typename(L, idx));
        return;
    }
    if (dc_api_escape_count(s, len, DC_ESC_HEADER_VALUE) > 0) {
        dc_api_push_escaped(L, s, len, DC_ESC_HEADER_VALUE);
        lua_remove(L, -2);
    }
    out->data = lua_tolstring(L, -1, &out->len);
    lua_rawseti(L, anchor, slot);
}

/* Whether the array of count strings at idx needs nothing built: each a string that needs no
 * escaping, then in few[] (kept alive by the array). Stack: [-0, +0] */
static int few_strings(lua_State *L, int idx, size_t count, dc_str *few)
{
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        int plain = lua_type(L, -1) == LUA_TSTRING;
        if (plain) {
            few[i].data = lua_tolstring(L, -1, &few[i].len);
            plain = dc_api_escape_count(few[i].data, few[i].len, DC_ESC_HEADER_VALUE) == 0;
        }
        lua_pop(L, 1);
        if (!plain)
            return 0;
    }
    return 1;
}

dc_str *dc_api_header_values(lua_State *L, int idx, dc_str few[DC_HEADER_FEW], size_t *n)
{
    idx = dc_api_absidx(L, idx);
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING) {
        /* the usual case, one string to pass as it is: it stays alive at idx, and nothing is
         * built for it */
        few[0].data = lua_tolstring(L, idx, &few[0].len);
        if (dc_api_escape_count(few[0].data, few[0].len, DC_ESC_HEADER_VALUE) == 0) {
            *n = 1; /* charged with its bytes by dc_api_check_header_set, which follows */
            return few;
        }
    }
    size_t count = 0;
    if (t == LUA_TTABLE)
        count = lua_objlen(L, idx);
    else if (t != LUA_TNIL)
        count = 1;
    /* refused before anything is built for them */
    const dc_call *call = dc_sbx_current(L);
    if (call->bounds && call->bounds->header_values && count > call->bounds->header_values)
        luaL_error(L, "%f values for one header, over the policy's bound of %u", (lua_Number)count,
                   call->bounds->header_values);
    if (count > (size_t)INT32_MAX / sizeof(dc_str))
        luaL_error(L, "too many header values");
    /* a few plain strings, such as Set-Cookie = {"a=1", "b=2"}: nothing to build either (a
     * walk of at most DC_HEADER_FEW entries, charged with their bytes as every value is) */
    if (t == LUA_TTABLE && count <= DC_HEADER_FEW && few_strings(L, idx, count, few)) {
        *n = count;
        return few;
    }
    dc_sbx_charge(L, count);
    lua_createtable(L, (int)count, 1);
    int anchor = lua_gettop(L);
    dc_str *vals = NULL;
    if (count) {
        vals = lua_newuserdata(L, count * sizeof(dc_str));
        lua_rawseti(L, anchor, 0);
    }
    if (t == LUA_TTABLE) {
        for (size_t i = 0; i < count; i++) {
            lua_rawgeti(L, idx, (int)i + 1);
            header_value(L, lua_gettop(L), anchor, (int)i + 1, &vals[i]);
            lua_pop(L, 1);
        }
    } else if (count == 1) {
        header_value(L, idx, anchor, 1, &vals[0]);
    }
    *n = count;
    return vals;
}

/* Logs the refusal of a header change after the headers went out. Stack: [-0, +0] */
static void log_sent(lua_State *L, dc_call *call, const char *what)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "attempt to set %s after sending out response headers",
                     what);
    dc_api_log(L, call, 4 /* ERR */, msg, (size_t)n);
}

static int headers_sent(dc_call *call)
{
    return call->host->headers_sent && call->host->headers_sent(call->hreq);
}

/* Whether name (any case) is a header a response carries once: given several values, the
 * last one is kept, as OpenResty sets them one after the other, each replacing the previous. */
static int single_valued(dc_str name)
{
    static const char *const names[] = {
        "Server", "Date", "Content-Encoding", "Location", "Refresh", "Last-Modified",
        "Content-Range", "Accept-Ranges", "Expires", "ETag", "E-Tag", "Content-Length",
        "Content-Type", NULL};
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == name.len && strncasecmp(names[i], name.data, name.len) == 0)
            return 1;
    return 0;
}

/* Content-Length takes only a decimal count of bytes (empty removes it): anything else is an
 * error, as nginx would not parse it. Stack: [-0, +0] */
static void check_content_length(lua_State *L, dc_str name, const dc_str *vals, size_t n)
{
    if (name.len != 14 || strncasecmp(name.data, "Content-Length", 14) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        int ok = vals[i].len <= 18; /* beyond, it could overflow an off_t */
        for (size_t k = 0; ok && k < vals[i].len; k++)
            ok = vals[i].data[k] >= '0' && vals[i].data[k] <= '9';
        if (!ok) {
            dc_api_push_visible(L, vals[i].data, vals[i].len, 64, 1);
            luaL_error(L, "failed to set header Content-Length: \"%s\" is not a number",
                       lua_tostring(L, -1));
        }
    }
}

/* ngx.header.__newindex(t, name, value): string/number/boolean sets one value, an array sets
 * several, nil or {} removes. Stack: [-0, +0] */
static int header_newindex(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, resp_header_set, "ngx.header");
    lua_settop(L, 3);
    /* the usual name, a string to pass as it is, is read in place (the argument keeps it
     * alive); any other is converted and pushed */
    dc_str name = {NULL, 0};
    if (lua_type(L, 2) == LUA_TSTRING)
        name.data = lua_tolstring(L, 2, &name.len);
    if (!name.data || dc_api_header_name_work(name.data, name.len))
        name = dc_api_header_name(L, 2, 1, 1);
    size_t count;
    dc_str few[DC_HEADER_FEW];
    dc_str *vals = dc_api_header_values(L, 3, few, &count);
    check_content_length(L, name, vals, count);
    if (count > 1 && single_valued(name)) {
        vals += count - 1;
        count = 1;
    }
    if (count == 1 && vals[0].len == 0)
        count = 0; /* an empty value removes the header, as in OpenResty */
    dc_api_check_header_set(L, call, "ngx.header", name, vals, count);
    if (headers_sent(call)) {
        log_sent(L, call, "ngx.header.HEADER");
        return 0;
    }
    if (call->host->resp_header_set(call->hreq, name, vals, count) != 0) {
        /* sent meanwhile, or refused by the host (a byte it refuses, its own bounds) */
        if (headers_sent(call))
            log_sent(L, call, "ngx.header.HEADER");
        else
            return luaL_error(L, "ngx.header: the host refused header \"%s\"", name.data);
    }
    return 0;
}

/* ngx.status getter. Stack: [-0, +1] */
static int status_get(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, status_get, "ngx.status");
    lua_pushinteger(L, call->host->status_get(call->hreq));
    return 1;
}

/* ngx.status setter (value at 1). Stack: [-0, +0] */
static int status_set(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, status_set, "ngx.status");
    if (!lua_isnumber(L, 1))
        return luaL_error(L, "ngx.status must be a number, got %s", luaL_typename(L, 1));
    lua_Number v = lua_tonumber(L, 1);
    if (headers_sent(call)) {
        log_sent(L, call, "ngx.status");
        return 0;
    }
    if (!(v >= 100 && v <= 999) || v != (lua_Number)(int)v) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "invalid HTTP status code %.14g", v);
        dc_api_log(L, call, 4 /* ERR */, msg, (size_t)n);
        return 0;
    }
    if (call->host->status_set(call->hreq, (int)v) != 0)
        log_sent(L, call, "ngx.status");
    return 0;
}

void dc_api_open_header(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, header_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, header_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "header");
    dc_sbx_add_prop(L, "status", status_get, status_set);
    dc_api_open_resp(L);
}
