/* env_ngx.c - the `ngx` table. It starts empty: each API area (api_*.c) opens at the first
 * access to one of its names, so a state pays only for the areas its plugin uses (small idle
 * states, fast creation: docs/benchmarks.md). A per-process map, built once from the API table
 * (api_table.h), says which area owns which name; properties (ngx.status, ngx.ctx) go through
 * getters and setters the areas register.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "api_table.h"

#define DC_NGX_REAL "dynacode.ngx_real"   /* registry: the real ngx table behind the proxy */
#define DC_NGX_OPEN "dynacode.ngx_open"   /* registry: bit mask of the areas opened */

/* Every area of the API table; those of the ngx table come first, in the order of their bit. */
enum {
#define AREA_ID(A, opener) AREA_##A,
    DC_API_AREA_NAMES(AREA_ID)
#undef AREA_ID
};

static void (*const areas[])(lua_State *) = {
#define AREA_OPEN(A, opener) dc_api_open_##opener,
    DC_API_NGX_AREAS(AREA_OPEN)
#undef AREA_OPEN
};
#define NAREAS (sizeof areas / sizeof areas[0])

/* ---- the name -> area map, built once per process from the API table ---- */

/* Every dotted name with its area: the table's entries, then the ngx constants. */
static const struct {
    const char *path;
    unsigned char area;
} api_paths[] = {
#define API_PATH(area, kind, path, field, fn, phases, allow) {path, AREA_##area},
#define CONST_PATH(name, value) {DC_API_CONST_PATH(name, value), AREA_CONSTS},
#define LEVEL_PATH(name, value) {DC_API_CONST_PATH(name, value), AREA_LOG},
    DC_API_TABLE(API_PATH) DC_API_CONSTS_AREA_CONSTS(CONST_PATH) DC_API_LOG_LEVELS(LEVEL_PATH)
#undef API_PATH
#undef CONST_PATH
#undef LEVEL_PATH
};

typedef struct keyent {
    const char *key;
    unsigned char area;
} keyent;

#define KEYMAP_MAX 256
#define KEYPOOL_BYTES 4096
static keyent keymap[KEYMAP_MAX];
static size_t nkeys;
static char keypool[KEYPOOL_BYTES];
static int keymap_ok;
static pthread_once_t keymap_once = PTHREAD_ONCE_INIT;

static int keycmp(const void *a, const void *b)
{
    return strcmp(((const keyent *)a)->key, ((const keyent *)b)->key);
}

/* The key of the ngx table an area fills for each of its names ("ngx.req.set_uri": "req"). */
static void build_keymap(void)
{
    size_t pool = 0;
    for (size_t i = 0; i < sizeof api_paths / sizeof api_paths[0]; i++) {
        const char *p = api_paths[i].path;
        if (api_paths[i].area >= NAREAS || strncmp(p, "ngx.", 4) != 0)
            continue;
        p += 4;
        size_t n = strcspn(p, ".");
        int seen = 0;
        for (size_t k = 0; k < nkeys && !seen; k++)
            seen = strncmp(keymap[k].key, p, n) == 0 && keymap[k].key[n] == '\0';
        if (seen)
            continue;
        if (nkeys == KEYMAP_MAX || pool + n + 1 > KEYPOOL_BYTES)
            return; /* keymap_ok stays 0: every area opens at once */
        memcpy(keypool + pool, p, n);
        keypool[pool + n] = '\0';
        keymap[nkeys++] = (keyent){keypool + pool, api_paths[i].area};
        pool += n + 1;
    }
    qsort(keymap, nkeys, sizeof keymap[0], keycmp);
    keymap_ok = 1;
}

/* The area owning key, or -1. */
static int area_of(const char *key)
{
    keyent probe = {key, 0};
    const keyent *e = bsearch(&probe, keymap, nkeys, sizeof keymap[0], keycmp);
    return e ? e->area : -1;
}

/* ---- opening areas ---- */

/* Denies what the policy denies among the registered properties. */
static void deny_props(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    int props = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, props) != 0) {
        lua_pop(L, 1);
        char path[96];
        snprintf(path, sizeof path, "ngx.%s", lua_tostring(L, -1));
        if (dc_env_allowed(L, path))
            continue;
        lua_pushvalue(L, -1);
        lua_createtable(L, 2, 0);
        dc_env_push_denial(L, path, 0);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, 1);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, props);
    }
    lua_pop(L, 1);
}

/* Opens the areas in mask not yet open into the real table, then applies the policy and the
 * read-only proxies to what they added. Stack: [-0, +0] */
static void open_areas(lua_State *L, unsigned mask)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_OPEN);
    unsigned open = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 1);
    mask &= ~open;
    if (!mask)
        return;
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_REAL);
    int real = lua_gettop(L);
    for (size_t a = 0; a < NAREAS; a++) {
        if (mask & (1u << a)) {
            areas[a](L);
            luaL_checkstack(L, 8, "ngx");
        }
    }
    lua_pushinteger(L, (lua_Integer)(open | mask));
    lua_setfield(L, LUA_REGISTRYINDEX, DC_NGX_OPEN);
    dc_env_deny(L, real, "ngx");
    deny_props(L);
    dc_env_readonly_children(L, real, "ngx");
    lua_settop(L, real - 1);
}

/* Opens the area owning the key at stack index k, if any. Returns 1 when something opened. */
static int open_for_key(lua_State *L, int k)
{
    if (lua_type(L, k) != LUA_TSTRING)
        return 0;
    int a = area_of(lua_tostring(L, k));
    if (a < 0)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, DC_NGX_OPEN);
    unsigned open = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (open & (1u << a))
        return 0;
    open_areas(L, 1u << a);
    return 1;
}

/* Pushes the getter (slot 1) or setter (slot 2) of property key (stack index 2). Returns 1
 * when pushed. */
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

/* real.__index(real, k): properties through their getter; otherwise the owning area opens
 * and the name is looked up again. */
static int ngx_index(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!prop_fn(L, 1)) {
        if (!open_for_key(L, 2))
            return 0;
        if (!prop_fn(L, 1)) {
            lua_pushvalue(L, 2);
            lua_rawget(L, 1);
            return 1;
        }
    }
    dc_sbx_call(L, 0, 1);
    return 1;
}

/* proxy.__newindex(proxy, k, v): properties through their setter; all else is read-only. */
static int ngx_newindex(lua_State *L)
{
    if (prop_fn(L, 2) || (open_for_key(L, 2) && prop_fn(L, 2))) {
        lua_pushvalue(L, 3);
        dc_sbx_call(L, 1, 0);
        return 0;
    }
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "ngx.%s: the ngx table is read-only", k);
}

void dc_env_ngx_open_all(lua_State *L)
{
    open_areas(L, (1u << NAREAS) - 1);
}

void dc_env_push_ngx(lua_State *L)
{
    pthread_once(&keymap_once, build_keymap);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_NGX_PROPS);
    lua_pushinteger(L, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_NGX_OPEN);

    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DC_NGX_REAL);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, ngx_index);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    if (!keymap_ok) /* no map (out of memory at its making): every area at once */
        open_areas(L, (1u << NAREAS) - 1);
    dc_env_readonly(L, "ngx", ngx_newindex);
}
