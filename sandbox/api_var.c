/* api_var.c - ngx.var: a proxy table whose metatable reads and writes request variables
 * through host->var_get / host->var_set. Names are case-insensitive as in nginx; the host
 * resolves them (arg_*, cookie_*, http_* included); a number N reads the regex capture N of the
 * location, asked of the host as the name "N".
 */
#include "api_util.h"

/* The variable name at idx (a string) lowercased, as nginx hashes names and the host takes
 * them: the string itself when it has no capital, else a lowercase copy it pushes.
 * Stack: [-0, +0|+1] */
static dc_str var_name(lua_State *L, int idx)
{
    dc_str n;
    n.data = lua_tolstring(L, idx, &n.len);
    dc_sbx_charge(L, n.len);
    unsigned upper = 0;
    for (size_t i = 0; i < n.len; i++)
        upper |= (unsigned char)(n.data[i] - 'A') < 26u;
    if (upper) {
        dc_api_push_lower(L, n.data, n.len, 0);
        n.data = lua_tolstring(L, -1, &n.len);
    }
    return n;
}

/* ngx.var.__index(t, name). Stack: [-0, +1] */
static int var_index(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    int t = lua_type(L, 2);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "bad variable name");
    DC_API_NEED(L, call, var_get, "ngx.var");
    dc_str name, val = {NULL, 0};
    if (t == LUA_TNUMBER) {
        /* ngx.var[N], N >= 1: capture N of the location's regex, which the host reads under
         * the name "N" (no variable of nginx has a name of digits only) */
        lua_Number n = lua_tonumber(L, 2);
        if (!(n >= 1 && n <= 65535) || n != (lua_Number)(int)n) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushfstring(L, "%d", (int)n);
        name.data = lua_tolstring(L, -1, &name.len);
        dc_sbx_charge(L, name.len);
    } else {
        name = var_name(L, 2);
        size_t digits = 0;
        while (digits < name.len && name.data[digits] >= '0' && name.data[digits] <= '9')
            digits++;
        if (digits == name.len) { /* "1" is not ngx.var[1]: no such variable */
            lua_pushnil(L);
            return 1;
        }
    }
    int rc = call->host->var_get(call->hreq, name, &val);
    if (rc < 0)
        return luaL_error(L, "failed to read variable \"%s\"", name.data);
    if (rc == 0 || !val.data) {
        lua_pushnil(L);
    } else {
        dc_sbx_charge(L, val.len);
        lua_pushlstring(L, val.data, val.len);
    }
    return 1;
}

/* ngx.var.__newindex(t, name, value): a string or number sets, nil unsets. Stack: [-0, +0] */
static int var_newindex(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "bad variable name");
    DC_API_NEED(L, call, var_set, "ngx.var");
    dc_str val = {NULL, 0};
    switch (lua_type(L, 3)) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
    case LUA_TNUMBER:
        val.data = lua_tolstring(L, 3, &val.len);
        break;
    case LUA_TBOOLEAN:
        val.data = lua_toboolean(L, 3) ? "true" : "false";
        val.len = lua_toboolean(L, 3) ? 4 : 5;
        break;
    default:
        return luaL_error(L, "bad value for variable \"%s\": %s", lua_tostring(L, 2),
                          luaL_typename(L, 3));
    }
    dc_str name = var_name(L, 2);
    dc_api_check_values(L, call, "ngx.var", &val, 1);
    if (val.data) {
        /* CR/LF in $args would split the request line nginx sends upstream */
        dc_api_check_ctl(L, "ngx.var", "value", val.data, val.len);
        dc_sbx_charge_host(L, val.len);
    }
    if (call->host->var_set(call->hreq, name, val) != 0)
        return luaL_error(L, "variable \"%s\" not changeable", name.data);
    return 0;
}

void dc_api_open_var(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, var_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, var_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "var");
}
