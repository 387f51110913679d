/* env_iter.c - `next` and `pairs` that walk through the environment's read-only proxies to the
 * tables behind them (opening what is still lazy: the ngx areas, the libraries of `_G`), so
 * that iterating `ngx`, `string`... yields their entries; names the policy denies are skipped.
 */
#include <string.h>

#include "env.h"

#define DC_ENV_ITER "dynacode.iter"     /* registry: weak-keyed proxy (or env) -> its name */
#define DC_ENV_DENIED "dynacode.denied" /* registry: weak-keyed set of the denial values */

/* What opening every lazy part costs, in instructions: about what building the areas runs. */
#define ITER_OPEN_COST 2000

/* A weak-keyed table in the registry under key. Stack: [-0, +0] */
static void new_weak_set(lua_State *L, const char *key)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

/* Marks the value at idx as belonging to the registry set key, with v (a string, or true when
 * NULL). Stack: [-0, +0] */
static void mark(lua_State *L, const char *key, int idx, const char *v)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    if (!lua_istable(L, -1)) { /* before dc_env_iter_open: nothing to walk through yet */
        lua_pop(L, 1);
        return;
    }
    lua_pushvalue(L, idx);
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

void dc_env_iter_register(lua_State *L, int idx, const char *name)
{
    mark(L, DC_ENV_ITER, idx, name);
}

void dc_env_iter_mark_denial(lua_State *L, int idx)
{
    mark(L, DC_ENV_DENIED, idx, NULL);
}

/* Pushes the table that next(t, k) walks for t at index 1 and k at index 2: t itself, or the
 * real table behind a proxy, after opening what is lazy. Returns 1 when denials are to be
 * skipped (a table of the environment). Stack: [-0, +1] */
static int push_walked(lua_State *L)
{
    if (!lua_getmetatable(L, 1)) {
        lua_pushvalue(L, 1);
        return 0;
    }
    int mt = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_ITER);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    const char *name = lua_tostring(L, -1);
    if (!name) {
        lua_settop(L, mt - 1);
        lua_pushvalue(L, 1);
        return 0;
    }
    int start = lua_isnil(L, 2);
    if (strcmp(name, "_G") == 0) {
        if (start) {
            dc_sbx_charge(L, ITER_OPEN_COST);
            dc_env_open_libs(L, 1);
        }
        lua_settop(L, mt - 1);
        lua_pushvalue(L, 1);
        return 1;
    }
    if (start && strncmp(name, "ngx", 3) == 0 && (name[3] == '\0' || name[3] == '.')) {
        dc_sbx_charge(L, ITER_OPEN_COST);
        dc_env_ngx_open_all(L);
    }
    lua_pushliteral(L, "__index");
    lua_rawget(L, mt);
    if (!lua_istable(L, -1)) {
        lua_settop(L, mt - 1);
        lua_pushvalue(L, 1);
        return 0;
    }
    lua_replace(L, mt);
    lua_settop(L, mt);
    return 1;
}

/* next(t [, k]) */
static int env_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    int skip = push_walked(L);
    int walked = lua_gettop(L);
    if (skip)
        lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_DENIED);
    int denied = lua_gettop(L);
    lua_pushvalue(L, 2);
    while (lua_next(L, walked)) {
        if (skip) {
            lua_pushvalue(L, -1);
            lua_rawget(L, denied);
            int is_denial = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (is_denial) {
                lua_pop(L, 1); /* the key stays for the next step */
                continue;
            }
        }
        return 2;
    }
    lua_pushnil(L);
    return 1;
}

/* pairs(t): LuaJIT's own next for a plain table (its fast path), ours for the rest. */
static int env_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int plain = !lua_getmetatable(L, 1);
    if (!plain)
        lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(plain ? 1 : 2));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void dc_env_iter_open(lua_State *L, int env)
{
    new_weak_set(L, DC_ENV_ITER);
    new_weak_set(L, DC_ENV_DENIED);
    dc_env_iter_register(L, env, "_G");
    lua_getfield(L, env, "next"); /* LuaJIT's, copied with the base names */
    lua_pushcfunction(L, env_next);
    lua_pushvalue(L, -1);
    lua_setfield(L, env, "next");
    lua_pushcclosure(L, env_pairs, 2);
    lua_setfield(L, env, "pairs");
}
