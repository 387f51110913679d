/* state.c - making and freeing one plugin's confined lua_State: the counting allocator with a
 * hard cap (call.c), the JIT engine off, the plugin chunk loaded from bytecode only. The
 * environment itself is built by env.c; a call is run by run.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>

#include "sbx_priv.h"

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
        lua_pushstring(L, dc_sbx_abort_message((dc_abort)i));
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
    s->fn_ref = s->abort_ref = s->co_ref = LUA_NOREF;
    s->exact = dc_memcheck_active();
    s->L = lua_newstate(dc_sbx_alloc, s);
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
    if (s->asleep > 0) {
        /* calls sleep in it: the last of them to end frees it (run.c) */
        s->orphan = 1;
        return;
    }
    dc_sbx_scratch_free(s);
    if (s->L)
        lua_close(s->L);
    free(s);
}
