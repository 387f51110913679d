/* env_base.c - the base and library functions a plugin gets in place of LuaJIT's own where
 * those would leak or escape: tostring with opaque per-state ids instead of heap addresses,
 * getmetatable/setmetatable that keep the host's metatables hidden and untouchable, an
 * xpcall whose handler runs under the quota, and the library functions that call back into
 * Lua (string.format, table.sort, os.time, coroutine.resume/wrap) behind the C-stack guard.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "env.h"

#define DC_ENV_IDS "dynacode.ids"       /* registry: weak-keyed object -> id, and "n" */
#define DC_ENV_OWNMT "dynacode.own_mt"  /* registry: weak-keyed set of the plugin's metatables */
#define DC_ENV_WRAP "dynacode.wrappers" /* registry: the table the prelude returns */

/* ---- tostring ---- */

/* The opaque id of the object at idx: a counter per state, given at first sight and kept
 * while the object lives. Stack: [-0, +0] */
static unsigned long object_id(lua_State *L, int idx)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_IDS);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    unsigned long id = (unsigned long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (id == 0) {
        lua_getfield(L, -1, "n");
        id = (unsigned long)lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushinteger(L, (lua_Integer)id);
        lua_setfield(L, -2, "n");
        lua_pushvalue(L, idx);
        lua_pushinteger(L, (lua_Integer)id);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    return id;
}

/* Pushes the text of the value at idx as tostring gives it. A __tostring metamethod runs
 * behind the C-stack guard; when need_string, its result must be a string. Stack: [-0, +1] */
static void push_text(lua_State *L, int idx, int need_string)
{
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TNIL:
        lua_pushliteral(L, "nil");
        return;
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
        return;
    case LUA_TNUMBER:
    case LUA_TSTRING:
        lua_pushvalue(L, idx);
        lua_tolstring(L, -1, NULL); /* a number becomes its text, in the copy */
        return;
    default:
        break;
    }
    if (luaL_getmetafield(L, idx, "__tostring")) {
        lua_pushvalue(L, idx);
        dc_sbx_call(L, 1, 1);
        if (need_string && lua_type(L, -1) != LUA_TSTRING)
            dc_sbx_error(L, "'__tostring' must return a string");
        return;
    }
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) {
        lua_pushliteral(L, "userdata: NULL"); /* json.null */
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%08lx", object_id(L, idx));
    lua_pushfstring(L, "%s: 0x%s", lua_typename(L, t), id);
}

/* tostring(v) */
static int env_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    push_text(L, 1, 0);
    return 1;
}

/* ---- string.format ---- */

/* format's arguments made safe for LuaJIT's format: no '%p' (it prints an address, even of a
 * string), and every table, function, thread or userdata turned into its tostring text here,
 * so that LuaJIT never prints an address nor calls __tostring itself (unguarded). Returns its
 * arguments. */
static int env_format_prep(lua_State *L)
{
    size_t len;
    const char *f = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (f) {
        const char *end = f + len;
        for (const char *p = memchr(f, '%', len); p; p = memchr(p, '%', (size_t)(end - p))) {
            p++;
            if (p < end && *p == '%') {
                p++;
                continue;
            }
            while (p < end && *p && strchr("-+ #0123456789.", *p))
                p++;
            if (p < end && *p == 'p')
                return dc_sbx_error(L, "bad argument #1 to 'format' (invalid option '%%p')");
            if (p >= end)
                break;
        }
    }
    int top = lua_gettop(L);
    for (int i = 2; i <= top; i++) {
        int t = lua_type(L, i);
        if (t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA ||
            t == LUA_TLIGHTUSERDATA) {
            push_text(L, i, 1);
            lua_replace(L, i);
        }
    }
    return top;
}

/* ---- metatables ---- */

/* Whether the table at idx was set as a metatable by the plugin itself. Stack: [-0, +0] */
static int own_metatable(lua_State *L, int idx)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_OWNMT);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    int own = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return own;
}

/* getmetatable(v): the plugin sees only the metatables it set (honouring __metatable as Lua
 * does); any other (the API's values, strings, proxies) reads as false, so no host
 * metamethod can be taken and called with a foreign argument. */
static int env_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    int mt = lua_gettop(L);
    if (!own_metatable(L, mt)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushliteral(L, "__metatable");
    lua_rawget(L, mt);
    if (lua_isnil(L, -1))
        lua_pop(L, 1);
    return 1;
}

/* setmetatable(t, mt): as Lua's, and a metatable the plugin did not set is protected. */
static int env_setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int t = lua_type(L, 2);
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table expected");
    lua_settop(L, 2);
    if (lua_getmetatable(L, 1)) {
        int locked = !own_metatable(L, 3);
        if (!locked) {
            lua_pushliteral(L, "__metatable");
            lua_rawget(L, 3);
            locked = !lua_isnil(L, -1);
        }
        if (locked)
            return luaL_error(L, "cannot change a protected metatable");
        lua_settop(L, 2);
    }
    if (t == LUA_TTABLE) {
        lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_OWNMT);
        lua_pushvalue(L, 2);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    lua_setmetatable(L, 1);
    return 1;
}

/* ---- the prelude: Lua wrappers, so that LuaJIT's functions are still called from Lua (their
 * error messages keep their names) but only after the guard ---- */

static const char prelude_src[] =
    "local guard, prep, pcall, corun = ...\n"
    "local error, type = error, type\n"
    "local W = {}\n"
    /* The handler runs after the failed call has unwound, as ordinary code under the count
     * hook: LuaJIT runs an xpcall handler with hooks off when the error came from the hook
     * itself, so a handler that loops would never be stopped. An abort caught here is raised
     * again by the hook at the next instruction. */
    "local function finish(h, ok, ...)\n"
    "  if ok then return true, ... end\n"
    "  local _, r = pcall(h, (...))\n"
    "  return false, r\n"
    "end\n"
    "function W.xpcall(f, h, ...)\n"
    "  if h == nil then error(\"bad argument #2 to 'xpcall' (value expected)\", 2) end\n"
    "  return finish(h, pcall(f, ...))\n"
    "end\n"
    "function W.guarded(fn) return function(...) guard() return fn(...) end end\n"
    "function W.resume(resume) return function(co, ...)\n"
    "  local e = corun(co)\n"
    "  if e then return false, e end\n"
    "  return resume(co, ...)\n"
    "end end\n"
    "function W.format(format) return function(...) return format(prep(...)) end end\n"
    "function W.wrap(wrap) return function(f, ...)\n"
    "  if type(f) ~= 'function' then return wrap(f, ...) end\n" /* its own error message */
    "  local co = wrap(f, ...)\n"
    "  return function(...) guard() return co(...) end\n"
    "end end\n"
    "return W\n";

static unsigned char *prelude_bc;
static size_t prelude_bclen;
static pthread_once_t prelude_once = PTHREAD_ONCE_INIT;

/* Compiles the prelude once per process, in a scratch state, without debug information: an
 * error raised in a wrapper then carries no position of its own. */
static int compile_prelude_in(lua_State *L)
{
    lua_pushcfunction(L, luaopen_string);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "dump");
    if (luaL_loadbuffer(L, prelude_src, sizeof prelude_src - 1, "=dynacode") != 0)
        return lua_error(L);
    lua_pushboolean(L, 1);
    lua_call(L, 2, 1);
    size_t n;
    const char *bc = lua_tolstring(L, -1, &n);
    prelude_bc = bc ? malloc(n) : NULL;
    if (prelude_bc) {
        memcpy(prelude_bc, bc, n);
        prelude_bclen = n;
    }
    return 0;
}

static void compile_prelude(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    lua_cpcall(L, compile_prelude_in, NULL);
    lua_close(L);
}

static int env_guard(lua_State *L)
{
    dc_sbx_cguard(L);
    return 0;
}

/* The guard of coroutine.resume(co): LuaJIT calls a coroutine that is resuming another one
 * "running"; OpenResty, as Lua, calls it "normal". Returns that error text for such a
 * coroutine, or for an entry coroutine, nothing otherwise (resume then judges, with its own messages); anything but a coroutine is an error. */
static int env_corun(lua_State *L)
{
    dc_sbx_cguard(L);
    if (lua_type(L, 1) != LUA_TTHREAD) { /* the wrapper has no name for resume to report */
        luaL_where(L, 2);                /* the caller of the wrapper */
        lua_pushliteral(L, "bad argument #1 to 'resume' (coroutine expected)");
        lua_concat(L, 2);
        return lua_error(L);
    }
    lua_State *co = lua_tothread(L, 1);
    lua_Debug ar;
    if (co != L && lua_status(co) == 0 && lua_getstack(co, 0, &ar) > 0) {
        lua_pushliteral(L, "cannot resume normal coroutine");
        return 1;
    }
    /* a handler's entry coroutine (coroutine.running() gives it out) belongs to its call: one
     * asleep in ngx.sleep is resumed by its host only, never by another call's code */
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENTRIES_KEY);
    if (co != L && lua_istable(L, -1)) {
        lua_pushvalue(L, 1);
        lua_rawget(L, -2);
        if (lua_toboolean(L, -1)) {
            lua_pushliteral(L, "cannot resume a request handler's own coroutine");
            return 1;
        }
    }
    return 0;
}

/* Replaces t[name] (t at idx) by the prelude's maker(t[name]). Stack: [-0, +0] */
static void wrap_field(lua_State *L, int idx, const char *name, const char *maker)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENV_WRAP);
    lua_getfield(L, -1, maker);
    lua_getfield(L, idx, name);
    lua_call(L, 1, 1);
    lua_setfield(L, idx, name);
    lua_pop(L, 1);
}

void dc_env_base_open(lua_State *L, int env)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -3);
    lua_newtable(L);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_ENV_OWNMT);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_ENV_IDS);

    pthread_once(&prelude_once, compile_prelude);
    int rc = prelude_bc ? luaL_loadbufferx(L, (const char *)prelude_bc, prelude_bclen,
                                           "=dynacode", "b")
                        : luaL_loadbuffer(L, prelude_src, sizeof prelude_src - 1, "=dynacode");
    if (rc != 0)
        lua_error(L);
    lua_pushcfunction(L, env_guard);
    lua_pushcfunction(L, env_format_prep);
    lua_getfield(L, env, "pcall");
    lua_pushcfunction(L, env_corun);
    lua_call(L, 4, 1);
    lua_getfield(L, -1, "xpcall");
    lua_setfield(L, env, "xpcall");
    lua_setfield(L, LUA_REGISTRYINDEX, DC_ENV_WRAP);

    lua_pushcfunction(L, env_tostring);
    lua_setfield(L, env, "tostring");
    lua_pushcfunction(L, env_getmetatable);
    lua_setfield(L, env, "getmetatable");
    lua_pushcfunction(L, env_setmetatable);
    lua_setfield(L, env, "setmetatable");
}

void dc_env_guard_lib(lua_State *L, int idx, const char *name)
{
    if (strcmp(name, "string") == 0) {
        wrap_field(L, idx, "format", "format");
    } else if (strcmp(name, "table") == 0) {
        wrap_field(L, idx, "sort", "guarded");
    } else if (strcmp(name, "os") == 0) {
        wrap_field(L, idx, "time", "guarded");
    } else if (strcmp(name, "coroutine") == 0) {
        wrap_field(L, idx, "resume", "resume");
        wrap_field(L, idx, "wrap", "wrap");
    }
}
