/* api_consts.c - the constants of the ngx table: OK, ERROR, AGAIN, DONE, DECLINED and the
 * HTTP_* status and method constants, with lua-nginx-module's values, from api_table.h (the
 * log levels are opened by api_log.c), and ngx.null.
 */
#include "api_util.h"

/* ngx.null: the light userdata NULL, the very value json.null is, so that json.encode writes
 * it as null, json.decode's nulls equal it and ngx.say/ngx.log print "null". A property
 * rather than a field: reads go through the getter, which a policy that denies the name
 * replaces by its denial. Stack: [-0, +1] */
static int ngx_null_get(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
    return 1;
}

void dc_api_open_consts(lua_State *L)
{
#define DC_CONST(name, value)  \
    lua_pushinteger(L, value); \
    lua_setfield(L, -2, #name);
    DC_API_CONSTS_AREA_CONSTS(DC_CONST)
#undef DC_CONST
    dc_sbx_add_prop(L, "null", ngx_null_get, NULL);
}
