/* api_body.c - the request body: ngx.req.read_body, ngx.req.get_body_data and
 * ngx.req.get_post_args, over host->read_body and host->req_body (optional: a host without
 * them makes the three unavailable). Registered with the rest of ngx.req by api_req.c.
 */
#include <string.h>

#include "api_util.h"

#define BODY_MAX_ARGS 100 /* lua-nginx-module's default for get_post_args */

/* Refuses any argument past the n the function takes. */
static void at_most(lua_State *L, int n, const char *api)
{
    int got = lua_gettop(L);
    if (got > n)
        luaL_error(L, "%s: expecting at most %d argument%s, but got %d", api, n,
                   n == 1 ? "" : "s", got);
}

/* ngx.req.read_body(): the body is read (the host may have read it before the phase: then
 * this only says so). Stack: [-0, +0] */
int req_read_body(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    at_most(L, 0, "ngx.req.read_body");
    dc_sbx_check_phase(L, "ngx.req.read_body", DC_API_PHASES(req_read_body));
    DC_API_NEED(L, call, read_body, "ngx.req.read_body");
    DC_API_NEED(L, call, req_body, "ngx.req.read_body");
    dc_sbx_charge(L, 1);
    if (call->host->read_body(call->hreq) != 0)
        return luaL_error(L, "ngx.req.read_body: the request body cannot be read here");
    return 0;
}

/* The body as the host holds it: its answer (-1 not read, 0 none, 1 in *d, 2 not in
 * memory), a host's other answer taken as "not read". */
static int body_of(lua_State *L, dc_call *call, const char *api, dc_str *d)
{
    DC_API_NEED(L, call, req_body, api);
    d->data = NULL;
    d->len = 0;
    int rc = call->host->req_body(call->hreq, d);
    if (rc == 1 && !d->data)
        rc = 0;
    return rc >= 0 && rc <= 2 ? rc : -1;
}

/* ngx.req.get_body_data(max_bytes?): the body read into memory (at most max_bytes of it), or
 * nil when it was not read, is empty or went to a temporary file, as in OpenResty.
 * Stack: [-0, +1] */
int req_get_body_data(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    at_most(L, 1, "ngx.req.get_body_data");
    size_t max = (size_t)-1;
    if (!lua_isnoneornil(L, 1)) {
        if (lua_type(L, 1) != LUA_TNUMBER)
            return luaL_error(L, "bad argument #1 to 'get_body_data' (number expected, got %s)",
                              luaL_typename(L, 1));
        lua_Number m = lua_tonumber(L, 1);
        if (!(m >= 0))
            return luaL_error(L, "bad argument #1 to 'get_body_data' (max_bytes must not be "
                                 "negative)");
        if (m < 9e15)
            max = (size_t)m;
    }
    dc_sbx_check_phase(L, "ngx.req.get_body_data", DC_API_PHASES(req_get_body_data));
    dc_str d;
    if (body_of(L, call, "ngx.req.get_body_data", &d) != 1 || d.len == 0) {
        lua_pushnil(L);
        return 1;
    }
    size_t n = d.len < max ? d.len : max;
    dc_sbx_charge(L, n); /* the copy into the state */
    lua_pushlstring(L, d.data, n);
    return 1;
}

/* ngx.req.get_post_args(max?): the urlencoded body as ngx.req.get_uri_args makes a table of
 * a query string, at most max arguments (100 when not given, any number for 0), then
 * "truncated". Not read: an error; in a temporary file: nil and why. Stack: [-0, +1|+2] */
int req_get_post_args(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    at_most(L, 1, "ngx.req.get_post_args");
    int max = dc_api_opt_max(L, 1, BODY_MAX_ARGS);
    dc_sbx_check_phase(L, "ngx.req.get_post_args", DC_API_PHASES(req_get_post_args));
    dc_str d;
    switch (body_of(L, call, "ngx.req.get_post_args", &d)) {
    case -1:
        return luaL_error(L, "ngx.req.get_post_args: the request body was not read (call "
                             "ngx.req.read_body() first)");
    case 0:
        lua_newtable(L);
        return 1;
    case 2:
        lua_pushnil(L);
        lua_pushliteral(L, "the request body is in a temporary file, not in memory");
        return 2;
    default:
        break;
    }
    /* parsing walks every byte and may build a string per key and value */
    dc_sbx_charge(L, 2 * d.len);
    return dc_api_parse_args(L, d.data, d.len, max);
}
