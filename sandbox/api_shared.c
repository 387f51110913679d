/* api_shared.c - ngx.shared.NAME: the dictionaries the policy declares, each a table whose
 * methods (dict:get(k), ...) reach the shared region (src/base/shdict.c). A name the call's
 * policy does not let this plugin use on this host reads nil, as an undeclared one; a method
 * checks its self against the state's own dictionary tables, every argument's type, and the
 * call's permission again (a table kept from another request proves nothing). Values are
 * copied out into the state's scratch, outside the dictionary's lock, and charged.
 */
#include <math.h>
#include <string.h>

#include "api_util.h"
#include "shdict.h"

#define SHD_TABLES "dynacode.shd_tables"   /* registry: name -> dictionary table */
#define SHD_SELF "dynacode.shd_self"       /* registry: dictionary table -> index (weak keys) */
#define SHD_KEYS_DEFAULT 1024

/* ---- self and arguments ---- */

/* The dictionary index of self (argument 1), checked. */
static uint32_t check_self(lua_State *L, dc_call **callp)
{
    dc_call *call = dc_sbx_current(L);
    int idx = -1;
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_getfield(L, LUA_REGISTRYINDEX, SHD_SELF);
        lua_pushvalue(L, 1);
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TNUMBER)
            idx = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    if (idx < 0 || !call->shd || (uint32_t)idx >= dc_shdicts_count(call->shd))
        luaL_error(L, "bad \"zone\" argument");
    if (!(call->shd_mask >> idx & 1))
        luaL_error(L, "ngx.shared.%s: the policy does not let this plugin use it here",
                   dc_shdicts_name(call->shd, (uint32_t)idx));
    dc_sbx_charge(L, 8);
    *callp = call;
    return (uint32_t)idx;
}

/* The key at argument 2 (a string, or a number as a string). Returns NULL with the error
 * pushed (nil, msg: 2 values) when OpenResty answers with one. */
static const char *check_key(lua_State *L, size_t *len)
{
    int t = lua_type(L, 2);
    if (t == LUA_TNIL || t == LUA_TNONE) {
        lua_pushnil(L);
        lua_pushliteral(L, "nil key");
        return NULL;
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad argument #1 (string expected, got %s)", lua_typename(L, t));
    const char *k = lua_tolstring(L, 2, len);
    if (*len == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "empty key");
        return NULL;
    }
    if (*len > DC_SHDICT_KEY_MAX) {
        lua_pushnil(L);
        lua_pushliteral(L, "key too long");
        return NULL;
    }
    dc_sbx_charge(L, *len / 64 + 1);
    return k;
}

/* An optional non-negative number of seconds at idx, as Unix ms from now (0: never). */
static double check_exptime(lua_State *L, int idx, const char *what, double now)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TNONE)
        return 0;
    if (t != LUA_TNUMBER)
        luaL_error(L, "bad \"%s\" argument", what);
    double s = lua_tonumber(L, idx);
    if (!(s >= 0) || s > 1e12)
        luaL_error(L, "bad \"%s\" argument", what);
    return s == 0 ? 0 : now + s * 1e3;
}

static int busy(lua_State *L, dc_call *call, uint32_t i)
{
    return luaL_error(L, "ngx.shared.%s: the dictionary stayed locked",
                      dc_shdicts_name(call->shd, i));
}

static const char *errstr(int rc)
{
    switch (rc) {
    case DC_SHD_NOT_FOUND: return "not found";
    case DC_SHD_EXISTS: return "exists";
    case DC_SHD_NO_MEMORY: return "no memory";
    case DC_SHD_NOT_NUMBER: return "not a number";
    default: return "error";
    }
}

static void charge(lua_State *L, uint64_t steps)
{
    dc_sbx_charge(L, steps + 1);
}

/* What a keyed method works on: the dictionary (self, checked) and the key (argument 2). */
typedef struct target {
    dc_call *call;
    uint32_t i;
    const char *key;
    size_t klen;
} target;

/* Checks self and the key; 0 when OpenResty answers the key with an error (nil and the
 * message pushed). */
static int target_of(lua_State *L, target *t)
{
    t->i = check_self(L, &t->call);
    t->key = check_key(L, &t->klen);
    return t->key != NULL;
}

/* After an operation on t: charges its steps, raises when the dictionary stayed locked, and
 * for any other failure pushes nil and its text (2 values, returned); 0 when it went well. */
static int failed(lua_State *L, const target *t, int rc, uint64_t steps)
{
    charge(L, steps);
    if (rc == DC_SHD_BUSY)
        return busy(L, t->call, t->i);
    if (rc == DC_SHD_OK)
        return 0;
    lua_pushnil(L);
    lua_pushstring(L, errstr(rc));
    return 2;
}

/* ---- methods ---- */

static int shd_get(lua_State *L)
{
    target t;
    if (!target_of(L, &t))
        return 2;
    dc_ubuf *b = dc_sbx_scratch(L);
    size_t cap = 256;
    for (;;) {
        dc_ubuf_prep(L, b, cap);
        dc_shval v;
        size_t need = 0;
        uint64_t steps = 0;
        int rc = dc_shd_get(t.call->shd, t.i, t.key, t.klen, dc_shd_now_ms(), &v, b->p, cap,
                            &need, &steps);
        charge(L, steps);
        if (rc == DC_SHD_BUSY)
            return busy(L, t.call, t.i);
        if (rc == DC_SHD_TOO_SMALL) {
            cap = need;
            continue;
        }
        switch (v.type) {
        case DC_SHV_STR: lua_pushlstring(L, b->p, v.len); break;
        case DC_SHV_NUM: lua_pushnumber(L, v.num); break;
        case DC_SHV_BOOL: lua_pushboolean(L, v.num != 0); break;
        default: lua_pushnil(L); return 1;
        }
        if (v.flags) {
            lua_pushinteger(L, (lua_Integer)v.flags);
            return 2;
        }
        return 1;
    }
}

/* set, add, replace and the safe ones: (key, value, exptime, flags) -> ok, err, forcible */
static int store(lua_State *L, int op)
{
    target t;
    if (!target_of(L, &t)) {
        lua_pushboolean(L, 0);
        lua_replace(L, -3);
        return 2;
    }
    dc_shval v = {0};
    switch (lua_type(L, 3)) {
    case LUA_TNIL:
    case LUA_TNONE: v.type = DC_SHV_NIL; break;
    case LUA_TSTRING:
        v.type = DC_SHV_STR;
        v.str = lua_tolstring(L, 3, &v.len);
        break;
    case LUA_TNUMBER:
        v.type = DC_SHV_NUM;
        v.num = lua_tonumber(L, 3);
        break;
    case LUA_TBOOLEAN:
        v.type = DC_SHV_BOOL;
        v.num = lua_toboolean(L, 3);
        break;
    default:
        lua_pushnil(L);
        lua_pushliteral(L, "bad value type");
        return 2;
    }
    double now = dc_shd_now_ms();
    double exp = check_exptime(L, 4, "exptime", now);
    int ft = lua_type(L, 5);
    if (ft != LUA_TNIL && ft != LUA_TNONE) {
        if (ft != LUA_TNUMBER)
            luaL_error(L, "bad \"flags\" argument");
        double f = lua_tonumber(L, 5);
        if (!(f >= 0 && f <= 4294967295.0))
            luaL_error(L, "bad \"flags\" argument");
        v.flags = (uint32_t)f;
    }
    dc_sbx_charge(L, v.len / 64);
    int forcible = 0;
    uint64_t steps = 0;
    int rc = dc_shd_store(t.call->shd, t.i, op, t.key, t.klen, &v, exp, now, &forcible, &steps);
    charge(L, steps);
    if (rc == DC_SHD_BUSY)
        return busy(L, t.call, t.i);
    lua_pushboolean(L, rc == DC_SHD_OK);
    if (rc == DC_SHD_OK)
        lua_pushnil(L);
    else
        lua_pushstring(L, errstr(rc));
    lua_pushboolean(L, forcible);
    return 3;
}

static int shd_set(lua_State *L) { return store(L, DC_SHD_SET); }
static int shd_safe_set(lua_State *L) { return store(L, DC_SHD_SAFE_SET); }
static int shd_add(lua_State *L) { return store(L, DC_SHD_ADD); }
static int shd_safe_add(lua_State *L) { return store(L, DC_SHD_SAFE_ADD); }
static int shd_replace(lua_State *L) { return store(L, DC_SHD_REPLACE); }

static int shd_delete(lua_State *L)
{
    lua_settop(L, 2);
    int n = store(L, DC_SHD_SET);
    if (n != 3)
        return n;
    lua_pushvalue(L, -3);
    return 1;
}

static int shd_incr(lua_State *L)
{
    target t;
    if (!target_of(L, &t))
        return 2;
    if (lua_type(L, 3) != LUA_TNUMBER)
        luaL_error(L, "bad \"value\" argument: a number expected, got %s",
                   lua_typename(L, lua_type(L, 3)));
    double delta = lua_tonumber(L, 3);
    int it = lua_type(L, 4), has_init = it != LUA_TNIL && it != LUA_TNONE;
    if (has_init && it != LUA_TNUMBER)
        luaL_error(L, "bad \"init\" argument: a number expected, got %s", lua_typename(L, it));
    double init = has_init ? lua_tonumber(L, 4) : 0;
    int tt = lua_type(L, 5);
    if (tt != LUA_TNIL && tt != LUA_TNONE && !has_init)
        luaL_error(L, "must provide \"init\" when providing \"init_ttl\"");
    double now = dc_shd_now_ms();
    double exp = check_exptime(L, 5, "init_ttl", now);
    double out = 0;
    int forcible = 0;
    uint64_t steps = 0;
    int rc = dc_shd_incr(t.call->shd, t.i, t.key, t.klen, delta, has_init, init, exp, now,
                         &out, &forcible, &steps);
    int n = failed(L, &t, rc, steps);
    if (n) {
        if (has_init) {
            lua_pushboolean(L, forcible);
            return 3;
        }
        return n;
    }
    lua_pushnumber(L, out);
    if (has_init) {
        lua_pushnil(L);
        lua_pushboolean(L, forcible);
        return 3;
    }
    return 1;
}

static int shd_ttl(lua_State *L)
{
    target t;
    if (!target_of(L, &t))
        return 2;
    double ttl = 0;
    uint64_t steps = 0;
    int rc = dc_shd_ttl(t.call->shd, t.i, t.key, t.klen, dc_shd_now_ms(), &ttl, &steps);
    int n = failed(L, &t, rc, steps);
    if (n)
        return n;
    lua_pushnumber(L, ttl);
    return 1;
}

static int shd_expire(lua_State *L)
{
    target t;
    if (!target_of(L, &t))
        return 2;
    if (lua_type(L, 3) != LUA_TNUMBER)
        luaL_error(L, "bad \"exptime\" argument");
    double now = dc_shd_now_ms();
    double exp = check_exptime(L, 3, "exptime", now);
    uint64_t steps = 0;
    int rc = dc_shd_expire(t.call->shd, t.i, t.key, t.klen, exp, now, &steps);
    int n = failed(L, &t, rc, steps);
    if (n)
        return n;
    lua_pushboolean(L, 1);
    return 1;
}

static int shd_flush_all(lua_State *L)
{
    dc_call *call;
    uint32_t i = check_self(L, &call);
    uint64_t steps = 0;
    int rc = dc_shd_flush_all(call->shd, i, &steps);
    charge(L, steps);
    if (rc == DC_SHD_BUSY)
        return busy(L, call, i);
    return 0;
}

static int shd_get_keys(lua_State *L)
{
    dc_call *call;
    uint32_t i = check_self(L, &call);
    int t = lua_type(L, 2);
    double m = SHD_KEYS_DEFAULT;
    if (t != LUA_TNIL && t != LUA_TNONE) {
        if (t != LUA_TNUMBER)
            luaL_error(L, "bad \"max_count\" argument");
        m = lua_tonumber(L, 2);
        if (!(m >= 0))
            luaL_error(L, "bad \"max_count\" argument");
    }
    uint32_t max = m >= 4294967295.0 ? 0 : (uint32_t)m;
    dc_ubuf *b = dc_sbx_scratch(L);
    size_t cap = 4096;
    size_t need = 0;
    uint32_t n = 0;
    for (;;) {
        dc_ubuf_prep(L, b, cap);
        uint64_t steps = 0;
        int rc = dc_shd_get_keys(call->shd, i, max, dc_shd_now_ms(), b->p, cap, &need, &n,
                                 &steps);
        charge(L, steps);
        if (rc == DC_SHD_BUSY)
            return busy(L, call, i);
        if (rc == DC_SHD_TOO_SMALL) {
            cap = need;
            continue;
        }
        break;
    }
    /* the table and its strings are the state's memory: the allocator meters them */
    lua_createtable(L, (int)(n < 1u << 20 ? n : 1u << 20), 0);
    size_t off = 0;
    for (uint32_t k = 1; k <= n && off + 4 <= need; k++) {
        uint32_t kl;
        memcpy(&kl, b->p + off, 4);
        lua_pushlstring(L, b->p + off + 4, kl);
        lua_rawseti(L, -2, (int)k);
        off += 4 + kl;
        if (k % 256 == 0)
            dc_api_check_time(L);
    }
    return 1;
}

static int shd_free_space(lua_State *L)
{
    dc_call *call;
    uint32_t i = check_self(L, &call);
    lua_pushnumber(L, (lua_Number)dc_shd_free_space(call->shd, i));
    return 1;
}

static int shd_capacity(lua_State *L)
{
    dc_call *call;
    uint32_t i = check_self(L, &call);
    lua_pushnumber(L, (lua_Number)dc_shd_capacity(call->shd, i));
    return 1;
}

static const luaL_Reg methods[] = {
    {"get", shd_get}, {"set", shd_set}, {"safe_set", shd_safe_set}, {"add", shd_add},
    {"safe_add", shd_safe_add}, {"replace", shd_replace}, {"delete", shd_delete},
    {"incr", shd_incr}, {"ttl", shd_ttl}, {"expire", shd_expire},
    {"flush_all", shd_flush_all}, {"get_keys", shd_get_keys}, {"free_space", shd_free_space},
    {"capacity", shd_capacity}, {NULL, NULL}};

/* ---- ngx.shared ---- */

static int ro_write(lua_State *L)
{
    return luaL_error(L, "ngx.shared: the table is read-only");
}

/* Pushes a table whose reads go to the table at the top (popped) and whose writes fail. */
static void push_readonly(lua_State *L)
{
    int real = lua_gettop(L);
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_write);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, real);
}

/* shared.__index(shared, name): the dictionary's table when this plugin may use it here. */
static int shared_index(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_charge(L, 8);
    if (lua_type(L, 2) != LUA_TSTRING || !call->shd)
        return 0;
    size_t len;
    const char *name = lua_tolstring(L, 2, &len);
    int idx = dc_shdicts_find(call->shd, name, len);
    if (idx < 0 || !(call->shd_mask >> idx & 1))
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, SHD_TABLES);
    lua_rawgeti(L, -1, idx + 1);
    if (lua_istable(L, -1))
        return 1;
    lua_pop(L, 1);
    lua_newtable(L); /* the methods: each dictionary's table reads them */
    luaL_register(L, NULL, methods);
    push_readonly(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, idx + 1);
    lua_getfield(L, LUA_REGISTRYINDEX, SHD_SELF);
    lua_pushvalue(L, -2);
    lua_pushinteger(L, idx);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

void dc_api_open_shared(lua_State *L)
{
    int ngx = lua_gettop(L);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, SHD_TABLES);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, SHD_SELF);

    lua_newtable(L); /* ngx.shared: empty, names looked up by shared_index */
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, shared_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_write);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, ngx, "shared");
}
