/* api.h - the plugin API areas (api_*.c) as the environment (env*.c) and the run loop see
 * them: one opener per area, the ngx property registry, the ngx.ctx write-back.
 */
#ifndef DC_API_H
#define DC_API_H

#include "call.h"

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
DC_HIDDEN void dc_api_open_shared(lua_State *L);   /* ngx.shared */
DC_HIDDEN void dc_api_open_strpat(lua_State *L);   /* string.find/match/gmatch/gsub, metered */
/* `print` for the base environment: logs at NOTICE */
DC_HIDDEN int dc_api_print(lua_State *L);

/* ngx.ctx bridge (api_ctx.c): writes the table of call->ctx_ref back into call->ctx.
 * Called by run.c after every call, protected; returns 0 or -1 with a message pushed. */
DC_HIDDEN int dc_api_ctx_flush(lua_State *L, dc_call *call);

/* ngx's metatable dispatch: `ngx.status`, `ngx.ctx` and the like are properties. An area that
 * owns a property registers getter/setter C functions under these names in the registry table
 * DC_NGX_PROPS (created by env.c before the areas open); env.c's __index/__newindex call them. */
#define DC_NGX_PROPS "dynacode.ngx_props"
DC_HIDDEN void dc_sbx_add_prop(lua_State *L, const char *name, lua_CFunction get,
                               lua_CFunction set);

#endif /* DC_API_H */
