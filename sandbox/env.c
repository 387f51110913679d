/* env.c - the environment a plugin chunk runs in: only whitelisted names (SPEC 5 and 6), the
 * `ngx` table with its property dispatch (ngx.status, ngx.ctx), the `json` table, and a
 * string metatable that no longer leads to the real string library.
 */
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "sandbox.h"
#include "policy.h"

void (*dc_env_test_hook)(lua_State *L, int env);

static const char *const base_names[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
    "tostring", "type", "unpack", "rawequal", "rawget", "rawset", "setmetatable",
    "getmetatable", NULL,
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

/* __newindex of a read-only table; upvalue 1 is the table's name. */
static int ro_newindex(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "%s.%s: the %s table is read-only", lua_tostring(L, lua_upvalueindex(1)),
                      k, lua_tostring(L, lua_upvalueindex(1)));
}

/* Replaces the table at the top of the stack by a read-only proxy: an empty table whose
 * metatable reads through to it, refuses writes and hides itself from getmetatable. Plain
 * sub-tables (ngx.req, ngx.re, ...) become proxies too. newindex, when not NULL, replaces the
 * refusing __newindex (ngx uses it for its properties). Stack: [-1, +1] */
static void make_readonly(lua_State *L, const char *name, lua_CFunction newindex)
{
    int real = lua_gettop(L);
    luaL_checkstack(L, 8, "read-only table");
    lua_pushnil(L);
    while (lua_next(L, real) != 0) {
        int plain = lua_istable(L, -1) && lua_type(L, -2) == LUA_TSTRING;
        if (plain && lua_getmetatable(L, -1)) {
            lua_pop(L, 1); /* ngx.var, ngx.header: their metatables define their writes */
            plain = 0;
        }
        if (plain) {
            char sub[64];
            snprintf(sub, sizeof sub, "%s.%s", name, lua_tostring(L, -2));
            make_readonly(L, sub, NULL);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, real); /* replacing an existing key during lua_next is allowed */
        } else {
            lua_pop(L, 1);
        }
    }
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
    lua_replace(L, real);
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

/* ngx.__newindex(t, k, v): properties through their setter; everything else is read-only. */
static int ngx_newindex(lua_State *L)
{
    if (prop_fn(L, 2)) {
        lua_pushvalue(L, 3);
        lua_call(L, 1, 0);
        return 0;
    }
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "ngx.%s: the ngx table is read-only", k);
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
    /* Properties come through the real table's metatable; the read-only proxy made later
     * reads through to the real table. */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ngx_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* A name the policy denies: raises an error naming it and marks the call as denied. */
static int denied_fn(lua_State *L)
{
    dc_call *c = dc_sbx_current(L);
    c->denied = 1;
    return luaL_error(L, "%s is denied by policy", lua_tostring(L, lua_upvalueindex(1)));
}

/* Pushes the denial for `path`: a function, or for an API table (ngx.var, ngx.header, ngx.arg)
 * a table whose every read and write is the denial. Stack: [-0, +1] */
static void push_denial(lua_State *L, const char *path, int as_table)
{
    lua_pushstring(L, path);
    lua_pushcclosure(L, denied_fn, 1);
    if (!as_table)
        return;
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
}

/* Replaces every function and API table under the table at idx that the filter denies.
 * prefix is the table's dotted path ("" for the environment). Stack: [-0, +0] */
static void apply_denials(lua_State *L, int idx, const char *prefix,
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
        /* ngx.var, ngx.header, ngx.arg are names of their own; ngx, ngx.req... are walked */
        int api_table = t == LUA_TTABLE && dc_api_name_known(path);
        if (t == LUA_TTABLE && !api_table) {
            if (depth < 3 && strcmp(path, "_G") != 0)
                apply_denials(L, lua_gettop(L), path, api, depth + 1);
            lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        if (!dc_api_allowed(api, path)) {
            lua_pushvalue(L, -1);
            push_denial(L, path, api_table);
            lua_rawset(L, idx); /* replacing an existing key during lua_next is allowed */
        }
    }
}

/* ngx.status and ngx.ctx are properties: a denied one gets the denial as getter and setter. */
static void deny_props(lua_State *L, const struct dc_api_filter *api)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    int props = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, props) != 0) {
        lua_pop(L, 1);
        char path[96];
        snprintf(path, sizeof path, "ngx.%s", lua_tostring(L, -1));
        if (dc_api_allowed(api, path))
            continue;
        lua_pushvalue(L, -1);
        lua_createtable(L, 2, 0);
        push_denial(L, path, 0);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, 1);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, props);
    }
    lua_pop(L, 1);
}

void dc_env_push(lua_State *L, const struct dc_api_filter *api)
{
    static const char *const string_drop[] = {"dump", NULL};
    static const char *const os_keep[] = {"time", "clock", "date", NULL};
    static const char *const libs[] = {"string", "coroutine", "table", "math", "bit", "os",
                                       "json", NULL};

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

    /* 1. The real tables: copies, so nothing a plugin sees is shared with the state's own. */
    open_lib(L, luaopen_string, "string");
    copy_table(L, -1, string_drop);
    dc_api_open_strpat(L); /* find, match, gmatch, gsub whose work counts toward the quota */
    lua_setfield(L, env, "string");
    lua_pop(L, 1);
    lua_getfield(L, g, "coroutine");
    copy_table(L, -1, NULL);
    lua_setfield(L, env, "coroutine");
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

    /* 2. What the policy denies. */
    apply_denials(L, env, "", api, 0);
    deny_props(L, api);
    if (dc_env_test_hook)
        dc_env_test_hook(L, env);

    /* 3. The string metatable reads through to the sandbox's string table, so ("").dump is nil
     * and a denied string function stays denied as a method; getmetatable("") is hidden. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_getfield(L, env, "string");
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    /* 4. Every library table read-only. */
    for (int i = 0; libs[i]; i++) {
        lua_getfield(L, env, libs[i]);
        make_readonly(L, libs[i], NULL);
        lua_setfield(L, env, libs[i]);
    }
    lua_getfield(L, env, "ngx");
    make_readonly(L, "ngx", ngx_newindex);
    lua_setfield(L, env, "ngx");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");

    lua_replace(L, g);
    lua_settop(L, g);
}
