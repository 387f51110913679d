/* sbx_priv.h - the inside of a plugin state, shared by the three units that handle it:
 * call.c (the services of the running call, the allocator that meters it), state.c (creation)
 * and run.c (one call). Nothing outside sandbox/ includes it.
 */
#ifndef DC_SBX_PRIV_H
#define DC_SBX_PRIV_H

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

/* Small blocks the states free are kept (dc_sbx_blocks, one per engine) for the next
 * allocations of the same class, so that the objects plugins make and drop on every request
 * do not go back and forth to malloc: classes of 16 bytes up to 256, DC_SBX_CACHE_BYTES at
 * most per cache. */
#define DC_SBX_CLASS_BYTES 16
#define DC_SBX_CLASSES 16
#define DC_SBX_CACHE_BYTES (256 * 1024)

/* A scratch buffer (dc_sbx_scratch) larger than this is given back when its call ends. */
#define DC_SCRATCH_KEEP 4096

struct dc_sbx {
    lua_State *L;
    size_t mem_used;    /* what the state asked for and holds (its quota counts this) */
    size_t mem_limit;   /* 0: none */
    dc_sbx_blocks *blocks; /* where freed small blocks go, NULL: back to malloc */
    int exact;          /* under a memory checker: blocks of the size asked, never kept */
    int fn_ref;         /* the plugin's chunk, with the sandbox environment */
    lua_State *co;      /* the entry coroutine the chunk runs in (run.c), NULL: none yet */
    int co_ref;         /* its registry reference, LUA_NOREF: none */
    int abort_ref;      /* preallocated strings raised by an abort (no allocation when raised) */
    dc_call *call;      /* the call being run, NULL between calls */
    int asleep;         /* calls asleep in this state (each holds its own entry coroutine) */
    int orphan;         /* freed by its owner while calls slept in it: the last to end frees it */
    const char *cstack_limit; /* lowest C stack address nested calls may reach (see cguard) */
    const char *cs_base, *cs_limit; /* the last call's start and its limit: the next call from
                                       the same depth of the same thread reuses them */
    int hook_step;      /* the count hook's step as last set (0: unknown, set it again) */
    dc_quota quota;
    dc_ubuf scratch;    /* dc_sbx_scratch */
};

/* The state's allocator (call.c): counts every byte the state holds and refuses growth past
 * the cap, recording a memory trip on the running call. */
DC_HIDDEN void *dc_sbx_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* The count hook (call.c): charges a step of instructions to the running call. */
DC_HIDDEN void dc_sbx_hook(lua_State *L, lua_Debug *ar);
/* Gives the scratch buffer's memory back (call.c). */
DC_HIDDEN void dc_sbx_scratch_free(dc_sbx *s);
/* The message an abort raises (call.c). */
DC_HIDDEN const char *dc_sbx_abort_message(dc_abort a);
/* The limit for nested C calls made below base on this thread (call.c). */
DC_HIDDEN const char *dc_sbx_cstack_limit_below(const char *base, size_t budget);

#endif /* DC_SBX_PRIV_H */
