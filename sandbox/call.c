/* call.c - the services of the running call, for the API areas and the environment: the
 * call in force, charging its quotas (instructions, time, memory, bytes handed to the host),
 * ending it (ngx.exit, trips), phase checks, the C-stack guard, and the allocator that meters
 * the state's memory. Below every API area; knows nothing of how a state is made or run.
 */
#include <pthread.h> /* pthread_getattr_np: _GNU_SOURCE comes from the build */
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sbx_priv.h"

/* The allocator: counts every byte the state holds and refuses growth past the cap. A
 * shrinking reallocation never fails (LuaJIT relies on it). */
/* The class of a small block of n bytes (1..256), or -1 for a larger one. */
static int size_class(size_t n)
{
    return n && n <= DC_SBX_CLASS_BYTES * DC_SBX_CLASSES
               ? (int)((n + DC_SBX_CLASS_BYTES - 1) / DC_SBX_CLASS_BYTES) - 1
               : -1;
}

/* Blocks freed by the states that share this cache, by class, linked through their first
 * bytes: one state's garbage serves the next one's allocations. */
struct dc_sbx_blocks {
    void *head[DC_SBX_CLASSES];
    size_t bytes;
};

dc_sbx_blocks *dc_sbx_blocks_new(void)
{
    /* under a memory checker every free must reach it (a kept block hides a use after free) */
    return dc_memcheck_active() ? NULL : calloc(1, sizeof(dc_sbx_blocks));
}

void dc_sbx_blocks_free(dc_sbx_blocks *b)
{
    if (!b)
        return;
    for (int c = 0; c < DC_SBX_CLASSES; c++) {
        void *p = b->head[c];
        while (p) {
            void *next;
            memcpy(&next, p, sizeof next);
            free(p);
            p = next;
        }
    }
    free(b);
}

size_t dc_sbx_blocks_bytes(const dc_sbx_blocks *b)
{
    return b ? b->bytes : 0;
}

void dc_sbx_set_blocks(dc_sbx *s, dc_sbx_blocks *b)
{
    s->blocks = b;
}

static void *block_new(const dc_sbx *s, size_t n)
{
    int c = size_class(n);
    if (c < 0 || s->exact)
        return malloc(n);
    dc_sbx_blocks *b = s->blocks;
    void *p = b ? b->head[c] : NULL;
    if (p) {
        memcpy(&b->head[c], p, sizeof p);
        b->bytes -= (size_t)(c + 1) * DC_SBX_CLASS_BYTES;
        return p;
    }
    /* always the whole class, so that any block can join any cache */
    return malloc((size_t)(c + 1) * DC_SBX_CLASS_BYTES);
}

static void block_free(const dc_sbx *s, void *p, size_t n)
{
    int c = size_class(n);
    size_t bytes = (size_t)(c + 1) * DC_SBX_CLASS_BYTES;
    dc_sbx_blocks *b = s->blocks;
    if (c < 0 || s->exact || !b || b->bytes + bytes > DC_SBX_CACHE_BYTES) {
        free(p);
        return;
    }
    memcpy(p, &b->head[c], sizeof p);
    b->head[c] = p;
    b->bytes += bytes;
}

void *dc_sbx_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    dc_sbx *s = ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        if (ptr)
            block_free(s, ptr, osize);
        s->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && s->mem_limit && s->mem_used - osize + nsize > s->mem_limit) {
        if (s->call && s->call->abort == DC_ABORT_NONE)
            s->call->abort = DC_ABORT_MEMORY;
        return NULL;
    }
    void *p;
    int oc = ptr ? size_class(osize) : -1, nc = size_class(nsize);
    if (!ptr) {
        p = block_new(s, nsize);
    } else if (oc < 0 && nc < 0) {
        p = realloc(ptr, nsize);
    } else if (oc == nc) {
        p = ptr; /* the block has room for its class already */
    } else {
        /* across the small/large line or between classes: a new block, then the old one goes */
        p = block_new(s, nsize);
        if (p) {
            memcpy(p, ptr, osize < nsize ? osize : nsize);
            block_free(s, ptr, osize);
        }
    }
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

const char *dc_sbx_abort_message(dc_abort a)
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
void dc_sbx_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    /* Also trips after a memory trip, which the allocator can only record. */
    dc_sbx_charge(L, DC_HOOK_STEP);
}

/* Counts units of work against c's quotas: c->abort says whether they trip it. */
static void count_units(dc_call *c, uint64_t units)
{
    if (c->insn_left != UINT64_MAX) {
        if (c->insn_left <= units)
            c->abort = DC_ABORT_INSTRUCTIONS;
        else
            c->insn_left -= units;
    }
    /* the clock is read once per hook step of work, not on every small charge: the API
     * functions charge a few units per call, and a clock read costs more than they do */
    if (c->abort == DC_ABORT_NONE && c->deadline_ms > 0) {
        c->since_clock += units;
        if (c->since_clock >= DC_HOOK_STEP) {
            c->since_clock = 0;
            if (dc_now_ms() > c->deadline_ms)
                c->abort = DC_ABORT_TIME;
        }
    }
}

/* Counts n bytes copied into the host against s's memory quota. */
static void count_host(lua_State *L, dc_sbx *s, dc_call *c, size_t n)
{
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
}

/* Raises c's abort, if any, arming the hook so that no pcall can keep the call going. */
static void trip_if_aborted(lua_State *L, dc_sbx *s, dc_call *c)
{
    if (c->abort == DC_ABORT_NONE)
        return;
    lua_sethook(L, dc_sbx_hook, LUA_MASKCOUNT, 1);
    s->hook_step = 1;
    raise_abort(L, s, c->abort);
}

void dc_sbx_charge(lua_State *L, uint64_t units)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = s->call;
    if (!c)
        return;
    if (c->abort == DC_ABORT_NONE)
        count_units(c, units);
    trip_if_aborted(L, s, c); /* also after a memory trip, which the allocator only records */
}

dc_ubuf *dc_sbx_scratch(lua_State *L)
{
    dc_sbx *s = sbx_of(L);
    s->scratch.len = 0;
    s->scratch.f = dc_sbx_alloc;
    s->scratch.ud = s;
    return &s->scratch;
}

void dc_sbx_scratch_free(dc_sbx *s)
{
    if (s->scratch.p)
        dc_sbx_alloc(s, s->scratch.p, s->scratch.cap, 0);
    s->scratch.p = NULL;
    s->scratch.len = s->scratch.cap = 0;
}

void dc_sbx_charge_host(lua_State *L, size_t n)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = s->call;
    if (!c)
        return;
    count_host(L, s, c, n);
    trip_if_aborted(L, s, c);
}

void dc_sbx_charge_copy(lua_State *L, size_t n, uint64_t units)
{
    dc_sbx *s = sbx_of(L);
    dc_call *c = s->call;
    if (!c)
        return;
    count_host(L, s, c, n);
    if (c->abort == DC_ABORT_NONE)
        count_units(c, units);
    trip_if_aborted(L, s, c);
}

void *dc_sbx_grow(lua_State *L, void *ptr, size_t osize, size_t nsize)
{
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    if (f != dc_sbx_alloc) /* a state of the host's own (tests, the pattern matcher alone) */
        return f(ud, ptr, osize, nsize);
    dc_sbx *s = ud;
    dc_abort before = s->call ? s->call->abort : DC_ABORT_NONE;
    void *p = dc_sbx_alloc(s, ptr, osize, nsize);
    if (p || before != DC_ABORT_NONE || !s->mem_limit)
        return p;
    /* Buffers allocated here are invisible to the collector's pacing, so garbage may fill the
     * quota first: collect once, then hold only what survives against the plugin. */
    if (s->call)
        s->call->abort = DC_ABORT_NONE;
    lua_gc(L, LUA_GCCOLLECT, 0);
    return dc_sbx_alloc(s, ptr, osize, nsize);
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
const char *dc_sbx_cstack_limit_below(const char *base, size_t budget)
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
    if (lua_getallocf(L, &ud) == dc_sbx_alloc && ((dc_sbx *)ud)->cstack_limit) {
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
    lua_sethook(L, dc_sbx_hook, LUA_MASKCOUNT, 1);
    s->hook_step = 1;
    return raise_abort(L, s, c->abort);
}

dc_call *dc_sbx_check_phase(lua_State *L, const char *api, unsigned mask)
{
    dc_call *c = dc_sbx_current(L);
    if (!(mask & DC_PHASE_BIT(c->phase)))
        /* OpenResty's words (its handlers are the *_by_lua* directives), then the name */
        luaL_error(L, "API disabled in the context of %s_by_lua* (%s)", dc_phase_name(c->phase),
                   api);
    return c;
}
