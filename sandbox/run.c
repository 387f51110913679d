/* run.c - one call of a plugin: arms the quotas (instruction hook, deadline, C-stack
 * bound), runs the chunk in its entry coroutine, turns an abort (instructions, wall clock,
 * memory, ngx.exit) into its result in a way pcall cannot swallow, and writes ngx.ctx back.
 * A call that sleeps (ngx.sleep) leaves with its entry coroutine suspended and is taken up
 * again later, in pieces that each run under what is left of its quotas.
 */
#include <stdint.h>
#include <stdio.h>

#include "api.h"
#include "sbx_priv.h"

/* Copies the error value of a failed call into msg without running any metamethod: an error
 * object whose __tostring loops must not hang the host. Stack: [-0, +0]. */
static void error_text(lua_State *L, int idx, char *msg, size_t msglen)
{
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING) {
        size_t n;
        const char *p = lua_tolstring(L, idx, &n);
        dc_set_err(msg, msglen, "%.*s", (int)(n > 1024 ? 1024 : n), p);
    } else if (t == LUA_TNUMBER) {
        dc_set_err(msg, msglen, "%.14g", lua_tonumber(L, idx));
    } else {
        dc_set_err(msg, msglen, "(error object is a %s value)", lua_typename(L, t));
    }
}

/* Makes the state's entry coroutine: plugin code runs in a coroutine as in OpenResty, where
 * coroutine.running() in a handler is a coroutine. One serves call after call while they end
 * well; one that ended in an error (an exit or a trip is one) is dead, and made again here at
 * the next call, as is one taken by a call that fell asleep. Each is recorded in the state's
 * set of entry coroutines, which coroutine.resume refuses. Stack: [-0, +0]; run protected. */
static int entry_new(lua_State *L)
{
    dc_sbx *s = lua_touserdata(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, DC_ENTRIES_KEY);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, DC_ENTRIES_KEY);
    }
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
    if (s->co_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, s->co_ref);
    s->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->co = co;
    return 0;
}

static int ctx_flush_tramp(lua_State *L)
{
    dc_call *c = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (dc_api_ctx_flush(L, c) != 0)
        return lua_error(L);
    return 0;
}

/* Empties L's stack: most often empty already, and the check is cheaper than the call. */
static void clear(lua_State *L)
{
    if (lua_gettop(L) != 0)
        lua_settop(L, 0);
}

/* Arms what guards one piece of a call: the C-stack bound, the call in force, the hook. */
static void piece_begin(dc_sbx *s, dc_call *c)
{
    /* before the clock starts: the first call on a thread looks its stack up (slow); calls
     * made from the same depth (a plugin runs in one phase) share the answer */
    const char *base = __builtin_frame_address(0);
    if (base != s->cs_base) {
        s->cs_limit = dc_sbx_cstack_limit_below(base, DC_CSTACK_BUDGET);
        s->cs_base = base;
    }
    s->cstack_limit = s->cs_limit;
    s->call = c;
    int step = DC_HOOK_STEP;
    if (c->insn_left < (uint64_t)step)
        step = (int)c->insn_left;
    clear(s->L);
    /* The hook stays set between calls: it does nothing without a call (dc_sbx_charge), and
     * turning it off and on again rewrites LuaJIT's dispatch table twice per call. It is set
     * again only when its step changes (an abort sets 1); its count then runs on from the
     * last call, which moves at most one step's charge between two calls of the state. */
    if (step != s->hook_step) {
        lua_sethook(s->L, dc_sbx_hook, LUA_MASKCOUNT, step);
        s->hook_step = step;
    }
}

/* Resumes co until it ends or sleeps. A yield of the entry coroutine itself (not ngx.sleep)
 * hands control to nginx, which resumes it straight away: here, at once (each round runs
 * under the same quotas). */
static int pump(dc_call *c, lua_State *co, int rc)
{
    while (rc == LUA_YIELD && !c->asleep) {
        lua_settop(co, 0);
        rc = lua_resume(co, 0);
    }
    return rc;
}

/* The state lets go of a call's own entry coroutine (it slept): back as the state's idle one
 * when that place is free and the coroutine can serve again, else dropped; and the state
 * goes when its owner freed it meanwhile and no call sleeps in it any more. Returns 1 when s
 * was freed. */
static int give_back(dc_sbx *s, dc_call *c, int reusable)
{
    if (c->co_ref == LUA_NOREF)
        return 0;
    lua_State *L = s->L;
    if (reusable && !s->co && c->co && lua_status(c->co) == 0) {
        lua_settop(c->co, 0);
        s->co = c->co;
        s->co_ref = c->co_ref;
    } else {
        if (c->co)
            lua_settop(c->co, 0);
        luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
    }
    c->co_ref = LUA_NOREF;
    s->asleep--;
    if (s->orphan && s->asleep == 0) {
        s->orphan = 0;
        dc_sbx_free(s);
        return 1;
    }
    return 0;
}

/* Ends one piece of a call: a sleep keeps the coroutine for later; anything else is the
 * call's result. */
static dc_result piece_end(dc_sbx *s, dc_call *c, lua_State *co, int rc, char *msg,
                           size_t msglen)
{
    lua_State *L = s->L;
    if (rc == LUA_YIELD && c->asleep && c->abort == DC_ABORT_NONE) {
        if (c->co_ref == LUA_NOREF) {
            /* the call takes the state's entry coroutine with it; the next call makes one */
            c->co_ref = s->co_ref;
            s->co = NULL;
            s->co_ref = LUA_NOREF;
            s->asleep++;
        }
        c->time_left_ms = 0;
        if (c->deadline_ms > 0) {
            double left = c->deadline_ms - dc_now_ms();
            c->time_left_ms = left > 0 ? left : 0;
        }
        lua_settop(L, 0);
        s->call = NULL;
        s->cstack_limit = NULL;
        return DC_RESULT_OK;
    }
    c->asleep = 0;

    dc_result res = DC_RESULT_OK;
    switch (c->abort) {
    case DC_ABORT_INSTRUCTIONS:
        res = DC_RESULT_QUOTA_INSTRUCTIONS;
        break;
    case DC_ABORT_TIME:
        res = DC_RESULT_QUOTA_TIME;
        break;
    case DC_ABORT_MEMORY:
        res = DC_RESULT_QUOTA_MEMORY;
        break;
    case DC_ABORT_EXIT:
    case DC_ABORT_NONE:
        if (rc != 0 && !c->exited) {
            res = c->denied ? DC_RESULT_DENIED : DC_RESULT_ERROR;
            error_text(co, -1, msg, msglen);
        }
        break;
    }
    if (res >= DC_RESULT_QUOTA_INSTRUCTIONS && res <= DC_RESULT_QUOTA_MEMORY) {
        dc_set_err(msg, msglen, "%s", dc_sbx_abort_message(c->abort));
        /* The state is discarded after a trip: no ctx write-back from a broken call. */
        c->ctx_ref = LUA_NOREF;
    }
    clear(L);
    if (co != L)
        clear(co); /* a dead one keeps nothing alive until it is replaced */

    if (c->ctx_ref != LUA_NOREF && lua_cpcall(L, ctx_flush_tramp, c) != 0) {
        if (res == DC_RESULT_OK) {
            res = DC_RESULT_ERROR;
            error_text(L, -1, msg, msglen);
        }
        lua_settop(L, 0);
    }
    s->call = NULL;
    s->cstack_limit = NULL;
    if (s->scratch.cap > DC_SCRATCH_KEEP)
        dc_sbx_scratch_free(s);
    give_back(s, c, rc == 0);
    return res;
}

dc_result dc_sbx_run(dc_sbx *s, dc_call *c, char *msg, size_t msglen)
{
    lua_State *L = s->L;
    if (msglen)
        msg[0] = '\0';
    c->abort = DC_ABORT_NONE;
    c->exited = 0;
    c->exit_status = -1;
    c->denied = 0;
    c->host_bytes = 0;
    c->header_len = c->log_len = 0;
    c->log_lines = 0;
    c->log_dropped = 0;
    c->ctx_ref = LUA_NOREF;
    c->insn_left = s->quota.instructions ? s->quota.instructions : UINT64_MAX;
    c->since_clock = 0;
    c->co = NULL;
    c->co_ref = LUA_NOREF;
    c->asleep = 0;
    c->sleep_ms = 0;
    if (s->quota.time_ms) {
        double start = c->start_ms > 0 ? c->start_ms : dc_now_ms();
        c->deadline_ms = start + s->quota.time_ms * dc_quota_time_scale();
    } else {
        c->deadline_ms = 0;
    }
    piece_begin(s, c);

    lua_State *co = s->co;
    int rc;
    if ((!co || lua_status(co) != 0) && lua_cpcall(L, entry_new, s) != 0) {
        co = L; /* no memory for it: the message is on L */
        rc = LUA_ERRMEM;
    } else {
        co = c->co = s->co;
        clear(co);
        lua_rawgeti(co, LUA_REGISTRYINDEX, s->fn_ref);
        rc = pump(c, co, lua_resume(co, 0));
    }
    return piece_end(s, c, co, rc, msg, msglen);
}

dc_result dc_sbx_resume(dc_sbx *s, dc_call *c, char *msg, size_t msglen)
{
    if (msglen)
        msg[0] = '\0';
    c->asleep = 0;
    if (c->deadline_ms > 0) {
        /* the time asleep is not the plugin's: what was left counts from now */
        double start = c->start_ms > 0 ? c->start_ms : dc_now_ms();
        c->deadline_ms = start + (c->time_left_ms > 0 ? c->time_left_ms : 0.001);
    }
    piece_begin(s, c);
    lua_State *co = c->co;
    lua_settop(co, 0);
    int rc = pump(c, co, lua_resume(co, 0));
    return piece_end(s, c, co, rc, msg, msglen);
}

void dc_sbx_abandon(dc_sbx *s, dc_call *c)
{
    if (!c->asleep)
        return;
    c->asleep = 0;
    if (c->ctx_ref != LUA_NOREF && c->ctx_ref != LUA_REFNIL)
        luaL_unref(s->L, LUA_REGISTRYINDEX, c->ctx_ref);
    c->ctx_ref = LUA_NOREF;
    give_back(s, c, 0);
}

int dc_sbx_orphaned(const dc_sbx *s)
{
    return s->orphan;
}
