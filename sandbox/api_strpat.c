/* api_strpat.c - string.find, string.match, string.gmatch and string.gsub for plugins: LuaJIT's
 * results and error messages (Lua 5.1 semantics) on the metered matcher of lpattern.c, so that
 * pattern work is charged to the call's instruction and time quota (dc_sbx_charge).
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "api_util.h"
#include "lpattern.h"

/* Upvalue 1 of every function here: how to charge work. */
typedef struct strpat_env {
    dc_pat_charge_fn charge;
    uint64_t carry;         /* steps not charged yet (less than a chunk) */
} strpat_env;

/* Work units for the fixed cost of a call, and of each gsub replacement: a unit stands for a
 * VM instruction (about 3 ns with the count hook on); these cost 20-30 ns of API calls. */
#define CALL_COST 8

/* Starts a match run over s with the charge function of the running closure. */
static void pat_start(lua_State *L, dc_pat *m, const char *s, size_t len, const char *p)
{
    strpat_env *env = lua_touserdata(L, lua_upvalueindex(1));
    dc_pat_init(m, L, env->charge, &env->carry, s, len, p);
    dc_pat_work(m, CALL_COST);
}

/* find's and match's init, read as LuaJIT reads it (an int32; a number out of that range or
 * NaN becomes INT32_MIN), made a 0-based offset into a subject of len bytes, clamped. */
static size_t opt_start(lua_State *L, int idx, size_t len)
{
    int64_t init = 1;
    if (!lua_isnoneornil(L, idx)) {
        lua_Number n = luaL_checknumber(L, idx);
        init = (n > -2147483649.0 && n < 2147483648.0) ? (int32_t)n : INT32_MIN;
    }
    int64_t st = init < 0 ? init + (int64_t)len : init - 1;
    if (st < 0)
        return 0;
    return (uint64_t)st > len ? len : (size_t)st;
}

/* find (find != 0) and match. Stack: [-0, +n] */
static int find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t st = opt_start(L, 3, ls);
    dc_pat m;
    pat_start(L, &m, s, ls, p);

    if (find && (lua_toboolean(L, 4) || !dc_pat_has_magic(p, lp))) {
        const char *hit = dc_pat_find_plain(&m, s + st, ls - st, p, lp);
        dc_pat_flush(&m);
        if (!hit) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)(hit - s + 1));
        lua_pushinteger(L, (lua_Integer)(hit - s + lp));
        return 2;
    }

    int anchored = *p == '^';
    const char *start, *e = dc_pat_search(&m, s + st, p + anchored, anchored, &start);
    dc_pat_flush(&m);
    if (!e) {
        lua_pushnil(L);
        return 1;
    }
    if (!find)
        return dc_pat_push_captures(&m, start, e);
    lua_pushinteger(L, (lua_Integer)(start - s + 1));
    lua_pushinteger(L, (lua_Integer)(e - s));
    return 2 + dc_pat_push_captures(&m, NULL, NULL);
}

/* string.find(s, pattern [, init [, plain]]) */
static int sp_find(lua_State *L)
{
    return find_aux(L, 1);
}

/* string.match(s, pattern [, init]) */
static int sp_match(lua_State *L)
{
    return find_aux(L, 0);
}

/* The gmatch iterator; upvalues: env, subject, pattern, next offset. As in LuaJIT, '^' is an
 * ordinary byte here, and an empty match moves on by one. Stack: [-0, +n] */
static int sp_gmatch_step(lua_State *L)
{
    size_t ls;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tostring(L, lua_upvalueindex(3));
    size_t pos = (size_t)lua_tointeger(L, lua_upvalueindex(4));
    if (pos > ls)
        return 0;
    dc_pat m;
    pat_start(L, &m, s, ls, p);
    const char *start, *e = dc_pat_search(&m, s + pos, p, 0, &start);
    dc_pat_flush(&m);
    if (!e)
        return 0;
    lua_pushinteger(L, (lua_Integer)(e - s + (e == start)));
    lua_replace(L, lua_upvalueindex(4));
    return dc_pat_push_captures(&m, start, e);
}

/* string.gmatch(s, pattern) */
static int sp_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, sp_gmatch_step, 4);
    return 1;
}

/* Moves the string or number on top of the stack into b. Stack: [-1, +0] */
static void add_top(lua_State *L, dc_ubuf *b)
{
    size_t l;
    const char *v = lua_tolstring(L, -1, &l);
    dc_ubuf_add(L, b, v, l);
    lua_pop(L, 1);
}

/* Adds the string replacement (stack index 3) for the match [s, e): %0-%9 are captures, '%'
 * before anything else stands for that byte (a final '%' for a NUL, as in LuaJIT). */
static void add_repl_string(dc_pat *m, dc_ubuf *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t l;
    const char *r = lua_tolstring(L, 3, &l), *end = r + l;
    dc_pat_work(m, 1 + l / 32);
    while (r < end) {
        const char *pc = memchr(r, '%', (size_t)(end - r));
        if (!pc) {
            dc_ubuf_add(L, b, r, (size_t)(end - r));
            break;
        }
        dc_ubuf_add(L, b, r, (size_t)(pc - r));
        char c = pc + 1 < end ? pc[1] : '\0';
        r = pc + 2;
        if (c < '0' || c > '9') {
            dc_ubuf_add(L, b, &c, 1);
        } else if (c == '0') {
            dc_pat_work(m, (size_t)(e - s) / 64);
            dc_ubuf_add(L, b, s, (size_t)(e - s));
        } else {
            dc_pat_push_capture(m, c - '1', s, e);
            dc_pat_work(m, lua_objlen(L, -1) / 64);
            add_top(L, b);
        }
    }
}

/* Adds the replacement for the match [s, e) by repl (stack index 3) of type tr. */
static void add_value(dc_pat *m, dc_ubuf *b, const char *s, const char *e, int tr)
{
    lua_State *L = m->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = dc_pat_push_captures(m, s, e);
        dc_sbx_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        dc_pat_push_capture(m, 0, s, e);
        dc_sbx_cguard(L); /* the table's __index may be plugin code */
        lua_gettable(L, 3);
    } else {
        add_repl_string(m, b, s, e);
        return;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        dc_pat_flush(m);
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    add_top(L, b);
}

/* string.gsub(s, pattern, repl [, n]) */
static int sp_gsub(lua_State *L)
{
    size_t ls;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checkstring(L, 2);
    int tr = lua_type(L, 3);
    int max_n = luaL_optint(L, 4, (int)(ls + 1));
    if (tr != LUA_TNUMBER && tr != LUA_TSTRING && tr != LUA_TFUNCTION && tr != LUA_TTABLE)
        luaL_argerror(L, 3, "string/function/table expected");
    int anchored = *p == '^';
    p += anchored;

    dc_pat m;
    pat_start(L, &m, src, ls, p);
    /* the result grows in Lua-allocated memory, not in a buffer on the C stack: callbacks can
     * nest gsub calls */
    dc_ubuf *b = dc_ubuf_new(L);
    const char *s = src;
    int n = 0;
    while (n < max_n) {
        const char *start, *e = dc_pat_search(&m, s, p, anchored, &start);
        if (!e)
            break;
        dc_ubuf_add(L, b, s, (size_t)(start - s));
        n++;
        dc_pat_work(&m, CALL_COST);
        add_value(&m, b, start, e, tr);
        if (e > start) {
            s = e;
        } else if (start < m.src_end) {
            dc_ubuf_add(L, b, start, 1);
            s = start + 1;
        } else {
            s = start;
            break;
        }
        if (anchored)
            break;
    }
    dc_ubuf_add(L, b, s, (size_t)(m.src_end - s));
    dc_pat_flush(&m);
    dc_ubuf_push(L, b);
    lua_pushinteger(L, n);
    return 2;
}

void dc_strpat_open(lua_State *L, dc_pat_charge_fn charge)
{
    static const luaL_Reg fns[] = {
        {"find", sp_find}, {"match", sp_match}, {"gmatch", sp_gmatch}, {"gsub", sp_gsub},
        {NULL, NULL},
    };
    strpat_env *env = lua_newuserdata(L, sizeof *env);
    env->charge = charge;
    env->carry = 0;
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -3, f->name);
    }
    lua_pop(L, 1);
}

void dc_api_open_strpat(lua_State *L)
{
    dc_strpat_open(L, dc_sbx_charge);
}
