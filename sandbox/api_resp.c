/* api_resp.c - facts of the response: ngx.resp.get_headers (the response headers as nginx
 * will send them, in a table built as ngx.req.get_headers builds its own, over
 * host->resp_headers) and the ngx.headers_sent property (host->headers_sent).
 */
#include "api_util.h"

#define RESP_MAX_HEADERS 100 /* lua-nginx-module's default */

/* ngx.resp.get_headers(max?, raw?). Stack: [-0, +1|+2]: headers (and "truncated") */
static int resp_get_headers(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    int max = dc_api_opt_max(L, 1, RESP_MAX_HEADERS);
    int raw = lua_toboolean(L, 2);
    dc_sbx_check_phase(L, "ngx.resp.get_headers", DC_API_PHASES(resp_get_headers));
    DC_API_NEED(L, call, resp_headers, "ngx.resp.get_headers");
    return dc_api_push_headers(L, call, call->host->resp_headers, max, raw);
}

/* ngx.headers_sent getter: true once the header went out (or is as good as gone: output
 * started, ngx.send_headers ran). Stack: [-0, +1] */
static int ngx_headers_sent(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.headers_sent", DC_API_PHASES(ngx_headers_sent));
    lua_pushboolean(L, call->host->headers_sent && call->host->headers_sent(call->hreq) != 0);
    return 1;
}

void dc_api_open_resp(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, resp_get_headers);
    lua_setfield(L, -2, "get_headers");
    lua_setfield(L, -2, "resp");
    dc_sbx_add_prop(L, "headers_sent", ngx_headers_sent, NULL);
}
