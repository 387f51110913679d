/* run.c - one call of a plugin: arms the quotas (instruction hook, deadline, C-stack
 * bound), runs the chunk in its entry coroutine, turns an abort (instructions, wall clock,
 * memory, ngx.exit) into its result in a way pcall cannot swallow, and writes ngx.ctx back.
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
 * the next call. Stack: [-0, +0]; run protected. */
static int entry_new(lua_State *L)
{
    dc_sbx *s = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
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
    /* before the clock starts: the first call on a thread looks its stack up (slow) */
    s->cstack_limit = dc_sbx_cstack_limit_below(__builtin_frame_address(0), DC_CSTACK_BUDGET);
    if (s->quota.time_ms) {
        double start = c->start_ms > 0 ? c->start_ms : dc_now_ms();
        c->deadline_ms = start + s->quota.time_ms * dc_quota_time_scale();
    } else {
        c->deadline_ms = 0;
    }
    s->call = c;

    int step = DC_HOOK_STEP;
    if (c->insn_left < (uint64_t)step)
        step = (int)c->insn_left;
    lua_settop(L, 0);
    /* The hook stays set between calls: it does nothing without a call (dc_sbx_charge), and
     * turning it off and on again rewrites LuaJIT's dispatch table twice per call. */
    lua_sethook(L, dc_sbx_hook, LUA_MASKCOUNT, step);
    lua_State *co = s->co;
    int rc;
    if ((!co || lua_status(co) != 0) && lua_cpcall(L, entry_new, s) != 0) {
        co = L; /* no memory for it: the message is on L */
        rc = LUA_ERRMEM;
    } else {
        co = s->co;
        lua_settop(co, 0);
        lua_rawgeti(co, LUA_REGISTRYINDEX, s->fn_ref);
        rc = lua_resume(co, 0);
        /* A yield of the entry coroutine itself hands control to nginx, which resumes it
         * straight away: here, at once (each round runs under the same quotas). */
        while (rc == LUA_YIELD) {
            lua_settop(co, 0);
            rc = lua_resume(co, 0);
        }
    }

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
    lua_settop(L, 0);
    if (co != L)
        lua_settop(co, 0); /* a dead one keeps nothing alive until it is replaced */

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
    return res;
}
