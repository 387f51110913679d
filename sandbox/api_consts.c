/* api_consts.c - the integer constants of the ngx table: OK, ERROR, AGAIN, DONE, DECLINED and
 * the HTTP_* status and method constants, with lua-nginx-module's values, from api_table.h
 * (the log levels are opened by api_log.c).
 */
#include "api_util.h"

void dc_api_open_consts(lua_State *L)
{
#define DC_CONST(name, value)  \
    lua_pushinteger(L, value); \
    lua_setfield(L, -2, #name);
    DC_API_CONSTS_AREA_CONSTS(DC_CONST)
#undef DC_CONST
}
