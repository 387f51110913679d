/* sandbox.h - the confined Lua state of one plugin (state.c, env.c) and the contract between it
 * and the plugin API areas (api_*.c). An API function finds the running call with
 * dc_sbx_current(L); everything it needs from the request goes through call->host.
 */
#ifndef DC_SANDBOX_H
#define DC_SANDBOX_H

#include <lua.h>
#include <lauxlib.h>

#include "../src/internal.h"

/* Why a call is being aborted (beyond a plain Lua error). */
typedef enum dc_abort {
    DC_ABORT_NONE = 0,
    DC_ABORT_EXIT,          /* ngx.exit / ngx.redirect: ends the plugin, not an error */
    DC_ABORT_INSTRUCTIONS,
    DC_ABORT_TIME,
    DC_ABORT_MEMORY
} dc_abort;

/* One plugin call: set up by the engine, read and updated by the API. */
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
    const dc_bounds *bounds;/* what the policy lets this plugin hand to the host (may be NULL) */
    size_t output_len;      /* ngx.say/ngx.print bytes so far in this call */
    size_t header_len;      /* header names and values handed to the host in this call */
    size_t log_len;         /* log bytes and lines handed to the host in this call */
    uint32_t log_lines;
    int log_dropped;        /* the "lines dropped" notice was sent */
    size_t host_bytes;      /* bytes copied into the host in this call: counted against the
                               state's memory quota with what the state itself holds */
    /* quota bookkeeping (state.c) */
    dc_abort abort;
    double deadline_ms;     /* dc_now_ms() value past which the call trips, 0: none */
    uint64_t insn_left;     /* instructions left before a trip, UINT64_MAX: none */
} dc_call;

typedef struct dc_sbx dc_sbx;

struct dc_api_filter;

/* Creates a plugin state from bytecode: whitelisted environment (names the api filter denies
 * raise an error naming them), JIT off, allocator capped at quota->memory_kb. chunkname is used
 * in error messages. api may be NULL (the built-in default policy's lists). */
DC_HIDDEN dc_rc dc_sbx_new(const unsigned char *bc, size_t bclen, const char *chunkname,
                           const dc_quota *quota, const struct dc_api_filter *api, dc_sbx **out,
                           char *err, size_t errlen);
DC_HIDDEN void dc_sbx_free(dc_sbx *s);
/* Runs the plugin once for call. msg gets the error or trip message. The state must be
 * discarded (dc_sbx_free) after a quota result. */
DC_HIDDEN dc_result dc_sbx_run(dc_sbx *s, dc_call *call, char *msg, size_t msglen);
DC_HIDDEN size_t dc_sbx_memory(const dc_sbx *s);

/* ---- for API functions ---- */
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
/* Raises "API disabled in the context of PHASE" unless phase is in mask (bits 1u << dc_phase). */
DC_HIDDEN void dc_sbx_check_phase(lua_State *L, const char *api, unsigned mask);

#define DC_PHASE_BIT(p) (1u << (p))
#define DC_PHASES_ALL ((1u << DC_PHASE_COUNT) - 1)

/* ---- API areas: each opens its names into the table at the top of the stack (the `ngx`
 * table, except json which pushes its own table). Stack: [-0, +0] (json: [-0, +1]). ---- */
DC_HIDDEN void dc_api_open_output(lua_State *L);   /* say, print, exit, redirect, flush */
DC_HIDDEN void dc_api_open_var(lua_State *L);      /* ngx.var */
DC_HIDDEN void dc_api_open_header(lua_State *L);   /* ngx.header, ngx.status (via ngx's metatable) */
DC_HIDDEN void dc_api_open_req(lua_State *L);      /* ngx.req.* */
DC_HIDDEN void dc_api_open_ctx(lua_State *L);      /* ngx.ctx (via ngx's metatable) */
DC_HIDDEN void dc_api_open_arg(lua_State *L);      /* ngx.arg */
DC_HIDDEN void dc_api_open_log(lua_State *L);      /* ngx.log, level constants */
DC_HIDDEN void dc_api_open_time(lua_State *L);     /* now, time, today, http_time, get_phase, worker */
DC_HIDDEN void dc_api_open_consts(lua_State *L);   /* HTTP_* status and method constants, OK, ERROR */
DC_HIDDEN void dc_api_open_re(lua_State *L);       /* ngx.re.* */
DC_HIDDEN void dc_api_open_codec(lua_State *L);    /* base64, md5, sha1, crc32, uri and args codecs */
DC_HIDDEN void dc_api_open_json(lua_State *L);     /* pushes the `json` table */
DC_HIDDEN void dc_api_open_strpat(lua_State *L);   /* string.find/match/gmatch/gsub, metered */
/* `print` for the base environment: logs at NOTICE */
DC_HIDDEN int dc_api_print(lua_State *L);

/* ngx.ctx bridge (api_ctx.c): writes the table of call->ctx_ref back into call->ctx.
 * Called by state.c after every call, protected; returns 0 or -1 with a message pushed. */
DC_HIDDEN int dc_api_ctx_flush(lua_State *L, dc_call *call);

/* ngx's metatable dispatch: `ngx.status`, `ngx.ctx` and the like are properties. An area that
 * owns a property registers getter/setter C functions under these names in the registry table
 * DC_NGX_PROPS (created by env.c before the areas open); env.c's __index/__newindex call them. */
#define DC_NGX_PROPS "dynacode.ngx_props"
DC_HIDDEN void dc_sbx_add_prop(lua_State *L, const char *name, lua_CFunction get,
                               lua_CFunction set);

#ifdef DC_TESTING
/* The test build of the library only (DC_TESTING; the product has no such symbol): when set,
 * called while a state's environment is built (table at env) so a test can add names, such as
 * a C function that blocks to exercise the watchdog. */
DC_HIDDEN extern void (*dc_env_test_hook)(lua_State *L, int env);
#endif

#endif /* DC_SANDBOX_H */
