/* env_guard.c - what keeps a plugin inside its environment: read-only proxies over library
 * tables (reads pass through, writes fail, the metatable is hidden) and the policy's denials
 * (a denied name raises an error naming it and marks the call as denied).
 */
#include <stdio.h>
#include <string.h>

#include "env.h"
#include "policy.h"

/* __newindex of a read-only table; upvalue 1 is the table's name. */
static int ro_newindex(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "%s.%s: the %s table is read-only", lua_tostring(L, lua_upvalueindex(1)),
                      k, lua_tostring(L, lua_upvalueindex(1)));
}

void dc_env_readonly_children(lua_State *L, int idx, const char *name)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    luaL_checkstack(L, 8, "read-only table");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int plain = lua_istable(L, -1) && lua_type(L, -2) == LUA_TSTRING;
        if (plain && lua_getmetatable(L, -1)) {
            lua_pop(L, 1); /* ngx.var, ngx.header, proxies: their metatables define writes */
            plain = 0;
        }
        if (plain) {
            char sub[64];
            snprintf(sub, sizeof sub, "%s.%s", name, lua_tostring(L, -2));
            dc_env_readonly(L, sub, NULL);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, idx); /* replacing an existing key during lua_next is allowed */
        } else {
            lua_pop(L, 1);
        }
    }
}

void dc_env_readonly(lua_State *L, const char *name, lua_CFunction newindex)
{
    int real = lua_gettop(L);
    dc_env_readonly_children(L, real, name);
    lua_newtable(L);                 /* proxy */
    lua_createtable(L, 0, 3);        /* its metatable */
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    if (newindex) {
        lua_pushcfunction(L, newindex);
    } else {
        lua_pushstring(L, name);
        lua_pushcclosure(L, ro_newindex, 1);
    }
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    dc_env_iter_register(L, -1, name);
    lua_replace(L, real);
}

const struct dc_api_filter *dc_env_api(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_API);
    const struct dc_api_filter *f = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return f;
}

int dc_env_allowed(lua_State *L, const char *path)
{
    return dc_api_allowed(dc_env_api(L), path);
}

/* A name the policy denies: raises an error naming it and marks the call as denied. */
static int denied_fn(lua_State *L)
{
    dc_call *c = dc_sbx_current(L);
    c->denied = 1;
    return luaL_error(L, "%s is denied by policy", lua_tostring(L, lua_upvalueindex(1)));
}

void dc_env_push_denial(lua_State *L, const char *path, int as_table)
{
    lua_pushstring(L, path);
    lua_pushcclosure(L, denied_fn, 1);
    if (!as_table) {
        dc_env_iter_mark_denial(L, -1);
        return;
    }
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
    dc_env_iter_mark_denial(L, -1);
}

static void deny_walk(lua_State *L, int idx, const char *prefix,
                      const struct dc_api_filter *api, int depth)
{
    luaL_checkstack(L, 8, "policy");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int t = lua_type(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING || (t != LUA_TFUNCTION && t != LUA_TTABLE)) {
            lua_pop(L, 1);
            continue;
        }
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", lua_tostring(L, -2));
        /* ngx.var, ngx.header, ngx.arg are names of their own; ngx.req... are walked */
        int api_table = t == LUA_TTABLE && dc_api_name_known(path);
        if (t == LUA_TTABLE && !api_table) {
            if (depth < 3 && strcmp(path, "_G") != 0)
                deny_walk(L, lua_gettop(L), path, api, depth + 1);
            lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        if (!dc_api_allowed(api, path)) {
            lua_pushvalue(L, -1);
            dc_env_push_denial(L, path, api_table);
            lua_rawset(L, idx); /* replacing an existing key during lua_next is allowed */
        }
    }
}

void dc_env_deny(lua_State *L, int idx, const char *prefix)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    deny_walk(L, idx, prefix, dc_env_api(L), 0);
}
