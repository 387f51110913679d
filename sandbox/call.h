/* call.h - the running call of a plugin as the API areas and the environment see it: the
 * call record the engine fills (dc_call) and the services that work on it (the call in force,
 * quota charges, aborts, phase checks, the C-stack guard). Implemented by call.c.
 */
#ifndef DC_CALL_H
#define DC_CALL_H

#include <lua.h>
#include <lauxlib.h>

#include "base.h"

/* Why a call is being aborted (beyond a plain Lua error). */
typedef enum dc_abort {
    DC_ABORT_NONE = 0,
    DC_ABORT_EXIT,          /* ngx.exit / ngx.redirect: ends the plugin, not an error */
    DC_ABORT_INSTRUCTIONS,
    DC_ABORT_TIME,
    DC_ABORT_MEMORY
} dc_abort;

/* One plugin call: set up by the engine, read and updated by the API. */
/* A growable byte buffer in memory the state's allocator meters (api_util.c). */
typedef struct dc_ubuf {
    char *p;
    size_t len;
    size_t cap;
    lua_Alloc f;
    void *ud;
} dc_ubuf;

typedef struct dc_call {
    const dc_host *host;
    void *hreq;
    dc_phase phase;
    const char *plugin;     /* plugin name, for log lines */
    const char *domain;
    /* ngx.exit / ngx.redirect */
    int exited;
    int exit_status;
    /* body_filter: ngx.arg[1] and ngx.arg[2]; the API may replace chunk's content */
    dc_buf *chunk;
    int *eof;
    /* ngx.ctx: the request's serialized ctx (see api_ctx.c); ctx_ref is the registry ref of
     * the table built from it in this call, LUA_NOREF until the plugin touches ngx.ctx */
    dc_buf *ctx;
    int ctx_ref;
    int denied;             /* a name the policy denies was called */
    struct dc_shdicts *shd; /* the shared dictionaries (NULL: none) */
    uint64_t shd_mask;      /* bit d: dictionary d is this plugin's to use on this request */
    const dc_bounds *bounds;/* what the policy lets this plugin hand to the host (may be NULL) */
    size_t output_len;      /* ngx.say/ngx.print bytes so far in this call */
    size_t header_len;      /* header names and values handed to the host in this call */
    size_t log_len;         /* log bytes and lines handed to the host in this call */
    uint32_t log_lines;
    int log_dropped;        /* the "lines dropped" notice was sent */
    size_t host_bytes;      /* bytes copied into the host in this call: counted against the
                               state's memory quota with what the state itself holds */
    /* quota bookkeeping (call.c, run.c) */
    dc_abort abort;
    double deadline_ms;     /* dc_now_ms() value past which the call trips, 0: none */
    double start_ms;        /* set by the caller: dc_now_ms() as the call starts (the time
                               quota counts from it), 0: read the clock here */
    uint64_t insn_left;     /* instructions left before a trip, UINT64_MAX: none */
    uint64_t since_clock;   /* units charged since the clock was last read */
    /* ngx.sleep (api_time.c, run.c): the call's entry coroutine is the one thing that may
     * sleep; a call that did is asleep until the host resumes it (dc_sbx_resume) or gives it
     * up (dc_sbx_abandon). */
    lua_State *co;          /* the entry coroutine the call runs in */
    int co_ref;             /* its registry reference while the call holds it (asleep, or
                               resumed after a sleep), LUA_NOREF otherwise */
    int asleep;             /* the call yielded in ngx.sleep */
    uint32_t sleep_ms;      /* what that ngx.sleep asked */
    uint32_t sleep_left_ms; /* set by the caller: what the request may still sleep */
    double time_left_ms;    /* the time quota left when it fell asleep */
} dc_call;

/* The state's scratch buffer, emptied: for a C function that builds bytes and hands them on
 * before it calls any other function that uses the scratch (no Lua runs in between). It needs
 * no userdata and no collection; its memory counts against the state's quota, and a call
 * that grew it past a few KiB gives that back when it ends. */
DC_HIDDEN dc_ubuf *dc_sbx_scratch(lua_State *L);

/* The call being run in L; raises a Lua error when there is none. */
DC_HIDDEN dc_call *dc_sbx_current(lua_State *L);
/* Ends the plugin for ngx.exit/ngx.redirect: records status and unwinds; pcall in the plugin
 * cannot stop it. Does not return. */
DC_HIDDEN int dc_sbx_exit(lua_State *L, int status);
/* For whitelisted C functions whose cost grows with their input (pattern matching, regexes,
 * codecs): charges `units` of work (about one VM instruction each) to the call's instruction
 * quota and checks its deadline. Trips the call exactly as the hook would (does not return
 * then). Cheap enough to call every few thousand steps. Outside a call it does nothing. */
DC_HIDDEN void dc_sbx_charge(lua_State *L, uint64_t units);
/* Counts n more bytes copied into the host by this call (headers, variables, log lines,
 * output) against the memory quota, together with the state's own memory: past the quota the
 * call trips exactly as an allocation failure would (does not return then). */
DC_HIDDEN void dc_sbx_charge_host(lua_State *L, size_t n);
/* dc_sbx_charge_host(L, n) then dc_sbx_charge(L, units), for what copies a value into the
 * host: the memory first (what the copy would take), then the work. */
DC_HIDDEN void dc_sbx_charge_copy(lua_State *L, size_t n, uint64_t units);
/* Every path from C back into plugin code (a callback, a metamethod reached through
 * lua_gettable/lua_getfield/lua_settable on a plugin's table, __tostring...) goes through
 * one of these: past a bound on the C stack used by nested calls since the call began, they
 * raise a Lua error ("C stack overflow") instead of letting the recursion overflow the
 * thread's stack. dc_sbx_cguard only checks (use it before lua_gettable and the like);
 * dc_sbx_call checks, then lua_call. */
DC_HIDDEN void dc_sbx_cguard(lua_State *L);
DC_HIDDEN void dc_sbx_call(lua_State *L, int nargs, int nresults);
/* luaL_error located at the nearest caller with line information (the plugin's line, not
 * that of a wrapper of the environment's). Does not return. */
DC_HIDDEN int dc_sbx_error(lua_State *L, const char *fmt, ...);
/* Grows (or allocates, ptr NULL) a block of the state's memory that the collector does not
 * see (buffers held by userdata): as the state's allocator, but when the quota refuses it, a
 * full collection runs first and the allocation is tried again. NULL when it still does not
 * fit (the call then trips on its memory quota). */
DC_HIDDEN void *dc_sbx_grow(lua_State *L, void *ptr, size_t osize, size_t nsize);
/* Raises "API disabled in the context of PHASE_by_lua* (API)" unless phase is in mask (bits
 * 1u << dc_phase); returns the call in progress (as dc_sbx_current). */
DC_HIDDEN dc_call *dc_sbx_check_phase(lua_State *L, const char *api, unsigned mask);

/* Registry: the entry coroutines made in this state, as keys of a weak-keyed table (run.c):
 * coroutine.resume refuses them (env_base.c), so that no call can resume another's. */
#define DC_ENTRIES_KEY "dynacode.entries"

#define DC_PHASE_BIT(p) (1u << (p))
#define DC_PHASES_ALL ((1u << DC_PHASE_COUNT) - 1)

#endif /* DC_CALL_H */
