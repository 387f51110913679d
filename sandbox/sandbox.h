/* sandbox.h - the confined Lua state of one plugin as the engine sees it: made by state.c
 * (its environment by env.c), run once per call by run.c. The call record and the services
 * the API areas use live in call.h: an API function finds the running call with
 * dc_sbx_current(L); everything it needs from the request goes through call->host.
 */
#ifndef DC_SANDBOX_H
#define DC_SANDBOX_H

#include "call.h"

typedef struct dc_sbx dc_sbx;

struct dc_api_filter;

/* Creates a plugin state from bytecode: whitelisted environment (names the api filter denies
 * raise an error naming them), JIT off, allocator capped at quota->memory_kb. chunkname is used
 * in error messages. api may be NULL (the built-in default policy's lists). */
DC_HIDDEN dc_rc dc_sbx_new(const unsigned char *bc, size_t bclen, const char *chunkname,
                           const dc_quota *quota, const struct dc_api_filter *api, dc_sbx **out,
                           char *err, size_t errlen);
DC_HIDDEN void dc_sbx_free(dc_sbx *s);
/* A cache of the small blocks states free, shared by the states of one thread (an engine's):
 * NULL under a memory checker (no cache then). Free it after every state using it. */
typedef struct dc_sbx_blocks dc_sbx_blocks;
DC_HIDDEN dc_sbx_blocks *dc_sbx_blocks_new(void);
DC_HIDDEN void dc_sbx_blocks_free(dc_sbx_blocks *b);
DC_HIDDEN size_t dc_sbx_blocks_bytes(const dc_sbx_blocks *b);
/* s frees its small blocks into b from now on (b NULL: into malloc). */
DC_HIDDEN void dc_sbx_set_blocks(dc_sbx *s, dc_sbx_blocks *b);
/* Runs the plugin once for call. msg gets the error or trip message. The state must be
 * discarded (dc_sbx_free) after a quota result. */
DC_HIDDEN dc_result dc_sbx_run(dc_sbx *s, dc_call *call, char *msg, size_t msglen);
/* A call that returns with call->asleep set yielded in ngx.sleep (its result says nothing yet):
 * it keeps its own entry coroutine, the state runs other calls meanwhile, and the caller
 * resumes it after call->sleep_ms with dc_sbx_resume (the time quota left then counts from
 * call->start_ms, set by the caller; the instructions left carry over) or gives it up with
 * dc_sbx_abandon. Either may free s, when its owner freed it meanwhile (dc_sbx_free of a
 * state with calls asleep only marks it: dc_sbx_orphaned). */
DC_HIDDEN dc_result dc_sbx_resume(dc_sbx *s, dc_call *call, char *msg, size_t msglen);
DC_HIDDEN void dc_sbx_abandon(dc_sbx *s, dc_call *call);
DC_HIDDEN int dc_sbx_orphaned(const dc_sbx *s);
DC_HIDDEN size_t dc_sbx_memory(const dc_sbx *s);

#ifdef DC_TESTING
/* The test build of the library only (DC_TESTING; the product has no such symbol): when set,
 * called while a state's environment is built (table at env) so a test can add names, such as
 * a C function that blocks to exercise the watchdog. */
DC_HIDDEN extern void (*dc_env_test_hook)(lua_State *L, int env);
#endif

#endif /* DC_SANDBOX_H */
