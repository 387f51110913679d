/* api_reqinfo.c - facts of the request and its method: ngx.req.start_time, http_version,
 * is_internal and set_method, over host->start_time, http_version, is_internal and set_method
 * (each optional: a fallback stands in where one makes sense). Registered by api_req.c.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "api_util.h"

/* The method constants ngx.req.set_method takes, with the names nginx gives them. */
static const struct {
    int id;
    const char *name;
} methods[] = {
#define METHOD(name, value) {value, &#name[5]},
    DC_API_METHOD_CONSTS(METHOD)
#undef METHOD
};

/* ngx.req.start_time(): seconds since the epoch, with the milliseconds. Stack: [-0, +1] */
int req_start_time(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.req.start_time", DC_API_PHASES(req_start_time));
    double t;
    if (call->host->start_time) {
        t = call->host->start_time(call->hreq);
    } else if (call->host->now) {
        t = call->host->now(call->hreq);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
    }
    if (!(t >= 0 && t < 1e12)) /* a host's garbage is not handed on */
        t = 0;
    lua_pushnumber(L, floor(t * 1000.0 + 1e-4) / 1000.0);
    return 1;
}

/* nginx's version number (major * 1000 + minor) from "HTTP/M.m", 9 for "HTTP/0.9", 0 when
 * it is none of those. */
static int version_of(dc_str p)
{
    if (p.len != 8 || memcmp(p.data, "HTTP/", 5) != 0 || p.data[6] != '.' ||
        p.data[5] < '0' || p.data[5] > '9' || p.data[7] < '0' || p.data[7] > '9')
        return 0;
    return (p.data[5] - '0') * 1000 + (p.data[7] - '0');
}

/* ngx.req.http_version(): 0.9, 1.0, 1.1, 2.0, 3.0, or nil for any other. Stack: [-0, +1] */
int req_http_version(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.req.http_version", DC_API_PHASES(req_http_version));
    int v = 0;
    if (call->host->http_version) {
        v = call->host->http_version(call->hreq);
    } else if (call->host->var_get) {
        dc_str name = {"server_protocol", 15}, val = {NULL, 0};
        if (call->host->var_get(call->hreq, name, &val) == 1 && val.data)
            v = version_of(val);
    }
    switch (v) {
    case 9:
        lua_pushnumber(L, 0.9);
        break;
    case 1000:
    case 1001:
    case 2000:
    case 3000:
        lua_pushnumber(L, v / 1000 + (v % 1000) / 10.0);
        break;
    default:
        lua_pushnil(L);
        break;
    }
    return 1;
}

/* ngx.req.is_internal(): true for a subrequest or after an internal redirect.
 * Stack: [-0, +1] */
int req_is_internal(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.req.is_internal", DC_API_PHASES(req_is_internal));
    lua_pushboolean(L, call->host->is_internal && call->host->is_internal(call->hreq) == 1);
    return 1;
}

/* ngx.req.set_method(ngx.HTTP_*): only the method constants, as numbers. Stack: [-0, +0] */
int req_set_method(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L, "bad argument #1 to 'set_method' (method constant such as "
                             "ngx.HTTP_GET expected, got %s)", luaL_typename(L, 1));
    dc_sbx_check_phase(L, "ngx.req.set_method", DC_API_PHASES(req_set_method));
    lua_Number n = lua_tonumber(L, 1);
    const char *name = NULL;
    int id = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0] && !name; i++) {
        if (n == (lua_Number)methods[i].id) {
            name = methods[i].name;
            id = methods[i].id;
        }
    }
    if (!name)
        return luaL_error(L, "ngx.req.set_method: unsupported HTTP method: %s",
                          lua_tostring(L, 1));
    DC_API_NEED(L, call, set_method, "ngx.req.set_method");
    dc_str s = {name, strlen(name)};
    dc_sbx_charge(L, 1);
    if (call->host->set_method(call->hreq, id, s) != 0)
        return luaL_error(L, "ngx.req.set_method: the method cannot be changed here");
    return 0;
}
