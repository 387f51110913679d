/* env.c - the environment a plugin chunk runs in: only whitelisted names (docs/security.md). The
 * base functions and `string` are there from the start (the string metatable needs its table);
 * the other libraries, `json` and `ngx` are built at their first use, each with the policy's
 * denials applied and behind a read-only proxy, so an idle state stays small.
 */
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "env.h"
#include "api_table.h"

#ifdef DC_TESTING
void (*dc_env_test_hook)(lua_State *L, int env);
#endif

/* The base functions copied as they are (GLOBAL entries of the API table). */
#define BASE_GLOBAL(path) path,
#define BASE_FN(path)
#define BASE_OWN(path)
#define BASE_LIB(path)
#define BASE_NAME(area, kind, path, field, fn, phases, allow) BASE_##kind(path)
static const char *const base_names[] = {DC_API_TABLE(BASE_NAME) NULL};
#undef BASE_NAME

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

/* Opens a standard library; its table (the state's own: no other code sees it) on top.
 * Stack: [-0, +1] */
static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
    lua_getfield(L, LUA_GLOBALSINDEX, name);
}

/* table.insert(t, pos, v): LuaJIT shifts t[#t..pos] up in C, where no hook runs; a position
 * below 1 (2^31 becomes one once made an int) would loop up to 2^31 times. Checks the position
 * and charges the shift, then calls LuaJIT's (upvalue 1). */
static int env_table_insert(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_gettop(L) == 3) {
        lua_Number pos = luaL_checknumber(L, 2), n = (lua_Number)lua_objlen(L, 1);
        if (!(pos >= 1 && pos < 2147483648.0))
            return luaL_argerror(L, 2, "position out of bounds");
        dc_sbx_charge(L, pos <= n ? (uint64_t)(n - pos) + 1 : 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* Builds the library `name`, or pushes nothing and returns 0 for any other name. */
static int build_lib(lua_State *L, const char *name)
{
    if (strcmp(name, "table") == 0) {
        open_lib(L, luaopen_table, "table");
        dc_env_guard_lib(L, -1, name);
    } else if (strcmp(name, "math") == 0) {
        open_lib(L, luaopen_math, "math");
    } else if (strcmp(name, "bit") == 0) {
        open_lib(L, luaopen_bit, "bit");
    } else if (strcmp(name, "coroutine") == 0) {
        lua_getfield(L, LUA_GLOBALSINDEX, "coroutine"); /* opened with the base library */
        dc_env_guard_lib(L, -1, name);
    } else if (strcmp(name, "os") == 0) {
#define OS_KEEP(area, kind, path, field, fn, phases, allow) DC_API_WHEN(OS, area, #field, )
        static const char *const keep[] = {DC_API_TABLE(OS_KEEP) NULL};
#undef OS_KEEP
        open_lib(L, luaopen_os, "os");
        lua_createtable(L, 0, 3);
        for (int i = 0; keep[i]; i++) {
            lua_getfield(L, -2, keep[i]);
            lua_setfield(L, -2, keep[i]);
        }
        lua_remove(L, -2);
        dc_env_guard_lib(L, -1, name);
    } else if (strcmp(name, "json") == 0) {
        dc_api_open_json(L);
    } else if (strcmp(name, "ngx") == 0) {
        dc_env_push_ngx(L); /* read-only already, its areas open lazily */
        return 1;
    } else {
        return 0;
    }
    if (strcmp(name, "table") == 0) {
        lua_getfield(L, -1, "insert");
        lua_pushcclosure(L, env_table_insert, 1);
        lua_setfield(L, -2, "insert");
    }
    dc_env_deny(L, -1, name);
    dc_env_readonly(L, name, NULL);
    return 1;
}

/* env.__index(env, k): a library's first use builds it and keeps it in the environment; any
 * other missing global is nil. */
static int env_index(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) != LUA_TSTRING || !build_lib(L, lua_tostring(L, 2)))
        return 0;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

void dc_env_open_libs(lua_State *L, int env)
{
    static const char *const libs[] = {"table", "math", "bit", "coroutine", "os", "json", "ngx"};
    env = env < 0 ? lua_gettop(L) + env + 1 : env;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        lua_getfield(L, env, libs[i]); /* a library not there yet is built by env_index */
        lua_pop(L, 1);
    }
}

void dc_env_push(lua_State *L, const struct dc_api_filter *api)
{
    lua_pushlightuserdata(L, (void *)api);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_ENV_API);

    open_lib(L, luaopen_base, "_G");
    int g = lua_gettop(L);
    lua_createtable(L, 0, 24);
    int env = lua_gettop(L);
    for (int i = 0; base_names[i]; i++) {
        lua_getfield(L, g, base_names[i]);
        lua_setfield(L, env, base_names[i]);
    }
    dc_env_base_open(L, env);
    dc_env_iter_open(L, env);
    lua_pushcfunction(L, dc_api_print);
    lua_setfield(L, env, "print");
    lua_pushcfunction(L, env_collectgarbage);
    lua_setfield(L, env, "collectgarbage");

    /* string: the state's own table, without dump, with metered patterns */
    open_lib(L, luaopen_string, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    dc_api_open_strpat(L);
    dc_env_guard_lib(L, -1, "string");
    lua_setfield(L, env, "string");

    dc_env_deny(L, env, "");

    /* The string metatable reads through to that table (denials included), so ("").dump is
     * nil and a denied string function stays denied as a method; getmetatable("") is hidden. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_getfield(L, env, "string");
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, env, "string");
    dc_env_readonly(L, "string", NULL);
    lua_setfield(L, env, "string");

    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, env_index);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, env);

#ifdef DC_TESTING
    if (dc_env_test_hook)
        dc_env_test_hook(L, env);
#endif
    lua_replace(L, g);
    lua_settop(L, g);
}
