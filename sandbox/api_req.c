/* api_req.c - ngx.req.*: request headers (get_headers, set_header, clear_header), the method,
 * the query string (get_uri_args, set_uri_args) and set_uri, over host->req_headers,
 * host->req_header_set, host->var_get/var_set ("request_method", "args") and host->set_uri;
 * the header table builder ngx.resp.get_headers shares. The request's facts and set_method
 * are in api_reqinfo.c.
 */
#include <string.h>

#include "api_util.h"

#define REQ_MAX_HEADERS 100  /* lua-nginx-module's defaults */
#define REQ_MAX_ARGS 100
#define REQ_HEADERS_MT "dynacode.req_headers_mt"

typedef struct hdr_walk {
    dc_str *h;   /* name, value pairs; NULL while counting */
    size_t n;
    size_t cap;
} hdr_walk;

/* dc_each_header_cb: counts, or collects up to cap headers. */
static int walk_header(void *arg, dc_str name, dc_str value)
{
    hdr_walk *w = arg;
    if (w->h) {
        if (w->n == w->cap)
            return 1;
        w->h[2 * w->n] = name;
        w->h[2 * w->n + 1] = value;
    }
    w->n++;
    return 0;
}

static int req_headers_index(lua_State *L);

/* Pushes the metatable of header tables, made at its first use (ngx.resp.get_headers may
 * come before any ngx.req name opened this area). Stack: [-0, +1] */
static void push_headers_mt(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REQ_HEADERS_MT);
    if (lua_istable(L, -1))
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, req_headers_index);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REQ_HEADERS_MT);
}

int dc_api_opt_max(lua_State *L, int idx, int def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    lua_Number m = luaL_checknumber(L, idx);
    return !(m >= 1) ? 0 : m > INT32_MAX ? INT32_MAX : (int)m;
}

int dc_api_push_headers(lua_State *L, dc_call *call, dc_api_header_walk walk, int max, int raw)
{
    /* Two walks: the count, then the headers into Lua-owned memory (no Lua call may happen
     * inside a host callback). */
    hdr_walk w = {NULL, 0, 0};
    walk(call->hreq, walk_header, &w);
    dc_sbx_charge(L, w.n);
    int truncated = max > 0 && w.n > (size_t)max;
    w.cap = truncated ? (size_t)max : w.n;
    w.n = 0;
    if (w.cap > (size_t)INT32_MAX / (2 * sizeof(dc_str)))
        return luaL_error(L, "too many headers");
    w.h = lua_newuserdata(L, w.cap ? 2 * w.cap * sizeof(dc_str) : 1);
    if (w.cap)
        walk(call->hreq, walk_header, &w);
    lua_createtable(L, 0, (int)w.n);
    int t = lua_gettop(L);
    for (size_t i = 0; i < w.n && i < w.cap; i++) {
        dc_str name = w.h[2 * i], value = w.h[2 * i + 1];
        dc_sbx_charge(L, name.len + value.len + 8);
        if (raw)
            lua_pushlstring(L, name.data, name.len);
        else
            dc_api_push_lower(L, name.data, name.len, 0);
        lua_pushlstring(L, value.data, value.len);
        dc_api_set_multi(L, t);
    }
    if (!raw) {
        push_headers_mt(L);
        lua_setmetatable(L, t);
    }
    lua_remove(L, t - 1); /* the collected pointers */
    if (truncated) {
        lua_pushliteral(L, "truncated");
        return 2;
    }
    return 1;
}

/* ngx.req.get_headers(max?, raw?). Stack: [-0, +1|+2]: headers (and "truncated") */
static int req_get_headers(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    int max = dc_api_opt_max(L, 1, REQ_MAX_HEADERS);
    int raw = lua_toboolean(L, 2);
    DC_API_NEED(L, call, req_headers, "ngx.req.get_headers");
    return dc_api_push_headers(L, call, call->host->req_headers, max, raw);
}

/* __index of get_headers() tables: h["User-Agent"] and h.user_agent find "user-agent".
 * Stack: [-0, +1] */
static int req_headers_index(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE); /* raw reads of anything else would read memory */
    size_t len;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (!k) {
        lua_pushnil(L);
        return 1;
    }
    dc_api_push_lower(L, k, len, 1);
    if (lua_rawequal(L, -1, 2)) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawget(L, 1);
    return 1;
}

/* Replaces request header `name` (at 1) by the values at 2 (nil or {} removes).
 * Stack: [-0, +0] */
static void set_req_header(lua_State *L, const char *api)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, req_header_set, api);
    if (lua_isnoneornil(L, 1))
        luaL_error(L, "bad 'name' argument: string expected, got nil");
    lua_settop(L, 2);
    dc_str name = dc_api_header_name(L, 1, 0, 1);
    size_t n;
    dc_str few[DC_HEADER_FEW];
    dc_str *vals = dc_api_header_values(L, 2, few, &n);
    dc_api_check_header_set(L, call, api, name, vals, n);
    if (call->host->req_header_set(call->hreq, name, vals, n) != 0)
        luaL_error(L, "failed to set header %s", name.data);
}

/* ngx.req.set_header(name, value). Stack: [-0, +0] */
static int req_set_header(lua_State *L)
{
    set_req_header(L, "ngx.req.set_header");
    return 0;
}

/* ngx.req.clear_header(name). Stack: [-0, +0] */
static int req_clear_header(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushnil(L);
    set_req_header(L, "ngx.req.clear_header");
    return 0;
}

/* Pushes variable name (a literal) or nil. Stack: [-0, +1] */
static void push_var(lua_State *L, const char *name, const char *api)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, var_get, api);
    dc_str n = {name, strlen(name)}, v = {NULL, 0};
    if (call->host->var_get(call->hreq, n, &v) == 1 && v.data) {
        dc_sbx_charge(L, v.len);
        lua_pushlstring(L, v.data, v.len);
    }
    else
        lua_pushnil(L);
}

/* ngx.req.get_method(). Stack: [-0, +1] */
static int req_get_method(lua_State *L)
{
    push_var(L, "request_method", "ngx.req.get_method");
    return 1;
}

/* ngx.req.get_uri_args(max?). Stack: [-0, +1|+2] */
static int req_get_uri_args(lua_State *L)
{
    int max = dc_api_opt_max(L, 1, REQ_MAX_ARGS);
    push_var(L, "args", "ngx.req.get_uri_args");
    size_t len = 0;
    const char *s = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &len);
    /* parsing walks every byte and may build a string per key and value */
    dc_sbx_charge(L, 2 * len);
    return dc_api_parse_args(L, s, len, max);
}

/* ngx.req.set_uri_args(args): a string (escaped as nginx does), a number or a table
 * (encoded as ngx.encode_args). Stack: [-0, +0] */
static int req_set_uri_args(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    DC_API_NEED(L, call, var_set, "ngx.req.set_uri_args");
    size_t len;
    const char *s;
    switch (lua_type(L, 1)) {
    case LUA_TNUMBER:
        lua_pushvalue(L, 1);
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, 1, &len);
        dc_api_push_escaped(L, s, len, DC_ESC_SET_ARGS);
        break;
    case LUA_TTABLE:
        dc_api_encode_args(L, 1);
        break;
    default:
        return luaL_error(L, "bad argument #1 to 'set_uri_args' (string, number, or table "
                             "expected, but got %s)", luaL_typename(L, 1));
    }
    dc_str name = {"args", 4}, val;
    val.data = lua_tolstring(L, -1, &val.len);
    dc_api_check_values(L, call, "ngx.req.set_uri_args", &val, 1);
    dc_api_check_ctl(L, "ngx.req.set_uri_args", "query string", val.data, val.len);
    dc_sbx_charge_host(L, val.len);
    if (call->host->var_set(call->hreq, name, val) != 0)
        return luaL_error(L, "ngx.req.set_uri_args: the query string cannot be changed here");
    return 0;
}

/* ngx.req.set_uri(uri, jump?): rewrite phase only; with jump the plugin ends there, as the
 * request goes on with the new URI. Stack: [-0, +0] */
static int req_set_uri(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    size_t len;
    const char *uri = luaL_checklstring(L, 1, &len);
    int jump = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TBOOLEAN);
        jump = lua_toboolean(L, 2);
    }
    dc_sbx_check_phase(L, "ngx.req.set_uri", DC_API_PHASES(req_set_uri));
    DC_API_NEED(L, call, set_uri, "ngx.req.set_uri");
    if (len == 0)
        return luaL_error(L, "attempt to use zero-length uri");
    dc_api_check_path(L, "ngx.req.set_uri", uri, len);
    dc_sbx_charge_host(L, len);
    dc_str u = {uri, len};
    if (call->host->set_uri(call->hreq, u, jump) != 0)
        return luaL_error(L, "ngx.req.set_uri: the URI cannot be changed here");
    if (jump)
        return dc_sbx_exit(L, 0);
    return 0;
}

void dc_api_open_req(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(REQ, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    lua_createtable(L, 0, 11);
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "req");
}
