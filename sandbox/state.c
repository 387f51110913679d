/* state.c - one plugin's confined lua_State: a counting allocator with a hard cap, the JIT
 * engine off, the plugin chunk loaded from bytecode only, and the per-call quota hook that
 * aborts a call (instructions, wall clock, memory, ngx.exit) in a way pcall cannot swallow.
 * The environment itself is built by env.c.
 */
#include <pthread.h> /* pthread_getattr_np: _GNU_SOURCE comes from the build */
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>

#include "sandbox.h"

/* Instructions between two hook calls: the resolution of the instruction and time quotas. */
#define DC_HOOK_STEP 1000

/* C stack a call may use below its start for nested C-to-Lua calls (gsub callbacks,
 * __tostring from print or string.format, comparators...). A level costs from a couple of
 * hundred bytes to a few KiB, so this allows a few dozen to several hundred levels: more than
 * real code needs, far less than any thread stack a host gives us, and shallow enough that
 * unwinding it (LuaJIT's unwinder is quadratic in the depth) stays in the millisecond range. */
#define DC_CSTACK_BUDGET (128 * 1024)
/* What stays free below the limit whatever the thread's stack: the frames of the last level,
 * the error unwinder, libc, a pattern match recursing to its own depth limit. */
#define DC_CSTACK_RESERVE (96 * 1024)

struct dc_sbx {
    lua_State *L;
    size_t mem_used;
    size_t mem_limit;   /* 0: none */
    int fn_ref;         /* the plugin's chunk, with the sandbox environment */
    int abort_ref;      /* preallocated strings raised by an abort (no allocation when raised) */
    dc_call *call;      /* the call being run, NULL between calls */
    const char *cstack_limit; /* lowest C stack address nested calls may reach (see cguard) */
    dc_quota quota;
};

/* The allocator: counts every byte the state holds and refuses growth past the cap. A
 * shrinking reallocation never fails (LuaJIT relies on it). */
static void *sbx_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    dc_sbx *s = ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        s->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && s->mem_limit && s->mem_used - osize + nsize > s->mem_limit) {
        if (s->call && s->call->abort == DC_ABORT_NONE)
            s->call->abort = DC_ABORT_MEMORY;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return nsize <= osize ? ptr : NULL;
    s->mem_used = s->mem_used - osize + nsize;
    return p;
}

static dc_sbx *sbx_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

static const char *abort_message(dc_abort a)
{
    switch (a) {
    case DC_ABORT_EXIT: return "dynacode: exit";
    case DC_ABORT_INSTRUCTIONS: return "instruction quota exceeded";
    case DC_ABORT_TIME: return "time quota exceeded";
    case DC_ABORT_MEMORY: return "memory quota exceeded";
    case DC_ABORT_NONE: break;
    }
    return "aborted";
}

/* Raises the abort's preallocated message. Stack: [-0, +1], does not return. */
static int raise_abort(lua_State *L, dc_sbx *s, dc_abort a)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->abort_ref);
    lua_rawgeti(L, -1, (int)a);
    lua_remove(L, -2);
    return lua_error(L);
}

/* Once aborted, the hook fires on every instruction and raises again, so a pcall, xpcall or
 * coroutine.resume in the plugin only delays the end of the call by one instruction. */
static void sbx_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    /* Also trips after a memory trip, which the allocator can only record. */
    dc_sbx_charge(L, DC_HOOK_STEP);
}

void dc_sbx_charge(lua_State *L, uint64_t units)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = s->call;
    if (!c)
        return;
    if (c->abort == DC_ABORT_NONE) {
        if (c->insn_left != UINT64_MAX) {
            if (c->insn_left <= units)
                c->abort = DC_ABORT_INSTRUCTIONS;
            else
                c->insn_left -= units;
        }
        if (c->abort == DC_ABORT_NONE && c->deadline_ms > 0 && dc_now_ms() > c->deadline_ms)
            c->abort = DC_ABORT_TIME;
        if (c->abort == DC_ABORT_NONE)
            return;
    }
    lua_sethook(L, sbx_hook, LUA_MASKCOUNT, 1);
    raise_abort(L, s, c->abort);
}

void dc_sbx_charge_host(lua_State *L, size_t n)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = s->call;
    if (!c)
        return;
    c->host_bytes = n > SIZE_MAX - c->host_bytes ? SIZE_MAX : c->host_bytes + n;
    if (s->mem_limit && c->abort == DC_ABORT_NONE &&
        (c->host_bytes > s->mem_limit || s->mem_used > s->mem_limit - c->host_bytes)) {
        /* The state's count includes garbage not yet collected: only what survives a full
         * collection is held against the plugin. */
        if (c->host_bytes <= s->mem_limit)
            lua_gc(L, LUA_GCCOLLECT, 0);
        if (c->host_bytes > s->mem_limit || s->mem_used > s->mem_limit - c->host_bytes)
            c->abort = DC_ABORT_MEMORY;
    }
    if (c->abort != DC_ABORT_NONE) {
        lua_sethook(L, sbx_hook, LUA_MASKCOUNT, 1);
        raise_abort(L, s, c->abort);
    }
}

void *dc_sbx_grow(lua_State *L, void *ptr, size_t osize, size_t nsize)
{
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    if (f != sbx_alloc) /* a state of the host's own (tests, the pattern matcher alone) */
        return f(ud, ptr, osize, nsize);
    dc_sbx *s = ud;
    dc_abort before = s->call ? s->call->abort : DC_ABORT_NONE;
    void *p = sbx_alloc(s, ptr, osize, nsize);
    if (p || before != DC_ABORT_NONE || !s->mem_limit)
        return p;
    /* Buffers allocated here are invisible to the collector's pacing, so garbage may fill the
     * quota first: collect once, then hold only what survives against the plugin. */
    if (s->call)
        s->call->abort = DC_ABORT_NONE;
    lua_gc(L, LUA_GCCOLLECT, 0);
    return sbx_alloc(s, ptr, osize, nsize);
}

dc_call *dc_sbx_current(lua_State *L)
{
    dc_sbx *s = sbx_of(L);
    if (!s->call)
        luaL_error(L, "the ngx API is only available while a request is served");
    return s->call;
}

/* The lowest address of the calling thread's stack, or NULL when unknown; found once per
 * thread (for the main thread glibc reads /proc, which is too slow for every call). */
static _Thread_local const char *tls_stack_low, *tls_stack_high;
static _Thread_local int tls_stack_known;

static const char *thread_stack_low(void)
{
    if (!tls_stack_known) {
        tls_stack_known = 1;
        pthread_attr_t a;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            void *addr;
            size_t size;
            if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                tls_stack_low = addr;
                tls_stack_high = tls_stack_low + size;
            }
            pthread_attr_destroy(&a);
        }
    }
    return tls_stack_low;
}

/* The limit for nested calls made below `base` on this thread: the budget, or less when the
 * thread's stack is smaller (the stack grows down on every target we build for). */
static const char *cstack_limit_below(const char *base, size_t budget)
{
    const char *low = thread_stack_low();
    const char *limit = (uintptr_t)base > budget ? base - budget : NULL;
    if (low && (base <= low || base > tls_stack_high))
        low = NULL; /* running on a stack of the host's own (a fiber): the budget alone */
    if (low) {
        if ((size_t)(base - low) <= DC_CSTACK_RESERVE)
            return base; /* no room at all: every nested call fails */
        if (!limit || limit < low + DC_CSTACK_RESERVE)
            limit = low + DC_CSTACK_RESERVE;
    }
    return limit;
}

/* Measured, not counted: a counter around each nested call would stay raised whenever an
 * error unwinds through it, while the stack pointer always tells the truth. */
void dc_sbx_cguard(lua_State *L)
{
    void *ud = NULL;
    const char *here = __builtin_frame_address(0);
    const char *limit;
    if (lua_getallocf(L, &ud) == sbx_alloc && ((dc_sbx *)ud)->cstack_limit) {
        limit = ((dc_sbx *)ud)->cstack_limit;
    } else {
        /* a state of another kind (tests), or outside a call: the thread's own bound */
        const char *low = thread_stack_low();
        limit = low ? low + 2 * DC_CSTACK_RESERVE : NULL;
    }
    if (limit && here < limit)
        dc_sbx_error(L, "C stack overflow (too many nested calls through C functions)");
}

int dc_sbx_error(lua_State *L, const char *fmt, ...)
{
    lua_Debug ar;
    int located = 0;
    for (int level = 1; level <= 3 && !located && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            located = 1;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (located)
        lua_concat(L, 2);
    return lua_error(L);
}

void dc_sbx_call(lua_State *L, int nargs, int nresults)
{
    dc_sbx_cguard(L);
    lua_call(L, nargs, nresults);
}

int dc_sbx_exit(lua_State *L, int status)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = dc_sbx_current(L);
    c->exited = 1;
    c->exit_status = status;
    if (c->abort == DC_ABORT_NONE)
        c->abort = DC_ABORT_EXIT;
    lua_sethook(L, sbx_hook, LUA_MASKCOUNT, 1);
    return raise_abort(L, s, c->abort);
}

void dc_sbx_check_phase(lua_State *L, const char *api, unsigned mask)
{
    dc_call *c = dc_sbx_current(L);
    if (!(mask & DC_PHASE_BIT(c->phase)))
        luaL_error(L, "%s: API disabled in the context of %s", api, dc_phase_name(c->phase));
}

size_t dc_sbx_memory(const dc_sbx *s)
{
    return s->mem_used;
}

/* Implemented in env.c: builds the sandbox environment. Stack: [-0, +1]. */
DC_HIDDEN void dc_env_push(lua_State *L, const struct dc_api_filter *api);

struct init_args {
    dc_sbx *s;
    const unsigned char *bc;
    size_t bclen;
    const char *chunkname;
    const struct dc_api_filter *api;
};

/* Runs protected (lua_cpcall): every allocation failure lands here as an error, never in the
 * panic handler. */
static int sbx_init(lua_State *L)
{
    struct init_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);

    lua_createtable(L, 4, 0);
    for (int i = DC_ABORT_EXIT; i <= DC_ABORT_MEMORY; i++) {
        lua_pushstring(L, abort_message((dc_abort)i));
        lua_rawseti(L, -2, i);
    }
    a->s->abort_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if (luaL_loadbufferx(L, (const char *)a->bc, a->bclen, a->chunkname, "b") != 0)
        return lua_error(L);
    dc_env_push(L, a->api);
    lua_setfenv(L, -2);
    a->s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

dc_rc dc_sbx_new(const unsigned char *bc, size_t bclen, const char *chunkname,
                 const dc_quota *quota, const struct dc_api_filter *api, dc_sbx **out, char *err,
                 size_t errlen)
{
    dc_sbx *s = calloc(1, sizeof *s);
    if (!s)
        return DC_ENOMEM;
    s->quota = *quota;
    s->mem_limit = (size_t)quota->memory_kb * 1024;
    s->fn_ref = s->abort_ref = LUA_NOREF;
    s->L = lua_newstate(sbx_alloc, s);
    if (!s->L) {
        dc_set_err(err, errlen, "cannot create a Lua state (memory quota %u KiB)",
                   quota->memory_kb);
        free(s);
        return DC_ELUA;
    }
    /* Compiled traces never call the count hook: the JIT would void the instruction quota. */
    luaJIT_setmode(s->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);

    struct init_args a = {s, bc, bclen, chunkname, api};
    if (lua_cpcall(s->L, sbx_init, &a) != 0) {
        const char *m = lua_tostring(s->L, -1);
        dc_set_err(err, errlen, "cannot set up the plugin state: %s",
                   m ? m : "not enough memory");
        dc_sbx_free(s);
        return DC_ELUA;
    }
    *out = s;
    return DC_OK;
}

void dc_sbx_free(dc_sbx *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L);
    free(s);
}

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
    c->deadline_ms = s->quota.time_ms ? dc_now_ms() + dc_quota_time_ms(s->quota.time_ms) : 0;
    s->call = c;
    s->cstack_limit = cstack_limit_below(__builtin_frame_address(0), DC_CSTACK_BUDGET);

    int step = DC_HOOK_STEP;
    if (c->insn_left < (uint64_t)step)
        step = (int)c->insn_left;
    lua_settop(L, 0);
    lua_sethook(L, sbx_hook, LUA_MASKCOUNT, step);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->fn_ref);
    int rc = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);

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
            error_text(L, -1, msg, msglen);
        }
        break;
    }
    if (res >= DC_RESULT_QUOTA_INSTRUCTIONS && res <= DC_RESULT_QUOTA_MEMORY) {
        dc_set_err(msg, msglen, "%s", abort_message(c->abort));
        /* The state is discarded after a trip: no ctx write-back from a broken call. */
        c->ctx_ref = LUA_NOREF;
    }
    lua_settop(L, 0);

    if (c->ctx_ref != LUA_NOREF && lua_cpcall(L, ctx_flush_tramp, c) != 0) {
        if (res == DC_RESULT_OK) {
            res = DC_RESULT_ERROR;
            error_text(L, -1, msg, msglen);
        }
        lua_settop(L, 0);
    }
    s->call = NULL;
    s->cstack_limit = NULL;
    return res;
}
