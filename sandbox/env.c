/* env.c - the environment a plugin chunk runs in: only whitelisted names (SPEC 5 and 6), the
 * `ngx` table with its property dispatch (ngx.status, ngx.ctx), the `json` table, and a
 * string metatable that no longer leads to the real string library.
 */
#include <string.h>

#include <lualib.h>

#include "sandbox.h"

static const char *const base_names[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
    "tostring", "type", "unpack", "rawequal", "rawget", "rawset", "setmetatable",
    "getmetatable", "coroutine", NULL,
};

/* collectgarbage("count") only: a plugin must not drive the collector. Stack: [-n, +1] */
static int env_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed; only \"count\"", opt);
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

/* Copies the fields of the table at src into a new table, leaving out the names in `drop`.
 * Stack: [-0, +1] */
static void copy_table(lua_State *L, int src, const char *const *drop)
{
    src = src < 0 ? lua_gettop(L) + src + 1 : src;
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, src) != 0) {
        int skip = 0;
        if (drop && lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            for (int i = 0; drop[i]; i++)
                skip |= strcmp(k, drop[i]) == 0;
        }
        if (skip) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Opens a standard library and leaves its table on the stack. Stack: [-0, +1] */
static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
    lua_getglobal(L, name);
}

void dc_sbx_add_prop(lua_State *L, const char *name, lua_CFunction get, lua_CFunction set)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    lua_createtable(L, 2, 0);
    if (get) {
        lua_pushcfunction(L, get);
        lua_rawseti(L, -2, 1);
    }
    if (set) {
        lua_pushcfunction(L, set);
        lua_rawseti(L, -2, 2);
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* Looks up property k (stack index 2) and pushes its getter (slot 1) or setter (slot 2), or
 * nothing. Returns 1 when pushed. */
static int prop_fn(lua_State *L, int slot)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_rawgeti(L, -1, slot);
    lua_replace(L, -3);
    lua_pop(L, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* ngx.__index(t, k): properties through their getter; other names are nil. */
static int ngx_index(lua_State *L)
{
    if (!prop_fn(L, 1))
        return 0;
    lua_call(L, 0, 1);
    return 1;
}

/* ngx.__newindex(t, k, v): properties through their setter; other names are stored. */
static int ngx_newindex(lua_State *L)
{
    if (prop_fn(L, 2)) {
        lua_pushvalue(L, 3);
        lua_call(L, 1, 0);
        return 0;
    }
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1))
            return luaL_error(L, "ngx.%s cannot be set", lua_tostring(L, 2));
        lua_pop(L, 2);
    }
    lua_rawset(L, 1);
    return 0;
}

/* Builds the `ngx` table. Stack: [-0, +1] */
static void push_ngx(lua_State *L)
{
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);

    lua_createtable(L, 0, 96);
    static void (*const areas[])(lua_State *) = {
        dc_api_open_output, dc_api_open_var, dc_api_open_header, dc_api_open_req,
        dc_api_open_ctx, dc_api_open_arg, dc_api_open_log, dc_api_open_time,
        dc_api_open_consts, dc_api_open_re, dc_api_open_codec,
    };
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        areas[i](L);
        luaL_checkstack(L, 8, "ngx");
    }
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, ngx_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ngx_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
}

void dc_env_push(lua_State *L)
{
    static const char *const string_drop[] = {"dump", NULL};
    static const char *const os_keep[] = {"time", "clock", "date", NULL};

    open_lib(L, luaopen_base, "_G");
    int g = lua_gettop(L);
    lua_createtable(L, 0, 32);
    int env = lua_gettop(L);

    for (int i = 0; base_names[i]; i++) {
        lua_getfield(L, g, base_names[i]);
        lua_setfield(L, env, base_names[i]);
    }
    lua_pushcfunction(L, dc_api_print);
    lua_setfield(L, env, "print");
    lua_pushcfunction(L, env_collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");

    /* string: a copy without dump, and the string metatable points at the copy, so that
     * ("").dump is nil too. */
    open_lib(L, luaopen_string, "string");
    copy_table(L, -1, string_drop);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "__index");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_setfield(L, env, "string");
    lua_pop(L, 1);

    open_lib(L, luaopen_table, "table");
    copy_table(L, -1, NULL);
    lua_setfield(L, env, "table");
    lua_pop(L, 1);
    open_lib(L, luaopen_math, "math");
    copy_table(L, -1, NULL);
    lua_setfield(L, env, "math");
    lua_pop(L, 1);
    open_lib(L, luaopen_bit, "bit");
    copy_table(L, -1, NULL);
    lua_setfield(L, env, "bit");
    lua_pop(L, 1);

    open_lib(L, luaopen_os, "os");
    lua_createtable(L, 0, 3);
    for (int i = 0; os_keep[i]; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    lua_setfield(L, env, "os");
    lua_pop(L, 1);

    push_ngx(L);
    lua_setfield(L, env, "ngx");
    dc_api_open_json(L);
    lua_setfield(L, env, "json");

    lua_replace(L, g);
    lua_settop(L, g);
}
