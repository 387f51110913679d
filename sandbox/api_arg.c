/* api_arg.c - ngx.arg in body_filter: ngx.arg[1] is the current chunk (call->chunk), which a
 * plugin may replace (string, number, nil or an array of those), ngx.arg[2] the eof flag
 * (*call->eof). Elsewhere ngx.arg raises "API disabled in the context of PHASE_by_lua*".
 */
#include "api_util.h"


/* ngx.arg.__index(t, i). Stack: [-0, +1] */
static int arg_index(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.arg", DC_API_PHASES(ngx_arg));
    lua_Number i = lua_type(L, 2) == LUA_TNUMBER ? lua_tonumber(L, 2) : 0;
    if (i == 1 && call->chunk) {
        dc_sbx_charge(L, call->chunk->len);
        lua_pushlstring(L, call->chunk->len ? call->chunk->data : "", call->chunk->len);
    }
    else if (i == 2 && call->eof)
        lua_pushboolean(L, *call->eof);
    else
        lua_pushnil(L);
    return 1;
}

/* Appends the string or number at idx to b. Stack: [-0, +0] */
static void add_piece(lua_State *L, dc_ubuf *b, int idx)
{
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad chunk data type: %s", luaL_typename(L, idx));
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    dc_ubuf_add(L, b, s, len);
}

/* ngx.arg.__newindex(t, i, v). Stack: [-0, +0] */
static int arg_newindex(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.arg", DC_API_PHASES(ngx_arg));
    lua_Number i = lua_type(L, 2) == LUA_TNUMBER ? lua_tonumber(L, 2) : 0;
    if (i == 2) {
        if (call->eof)
            *call->eof = lua_toboolean(L, 3);
        return 0;
    }
    if (i != 1)
        return luaL_error(L, "attempt to write to ngx.arg with a bad index");
    if (!call->chunk)
        return luaL_error(L, "ngx.arg[1] is not available here");
    dc_ubuf *b = dc_ubuf_new(L);
    if (lua_type(L, 3) == LUA_TTABLE) {
        size_t n = lua_objlen(L, 3);
        for (size_t k = 1; k <= n; k++) {
            lua_rawgeti(L, 3, (int)k);
            add_piece(L, b, lua_gettop(L));
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, 3)) {
        add_piece(L, b, 3);
    }
    dc_sbx_charge(L, b->len);
    dc_sbx_charge_host(L, b->len);
    call->chunk->len = 0;
    if (dc_buf_append(call->chunk, b->p, b->len) != 0)
        return luaL_error(L, "not enough memory");
    return 0;
}

void dc_api_open_arg(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, arg_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, arg_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "arg");
}
