/* env.h - private to the environment builder: env.c (globals and lazy libraries), env_ngx.c
 * (the lazy ngx table and its properties), env_guard.c (read-only proxies, policy denials),
 * env_iter.c (next and pairs through the proxies).
 */
#ifndef DC_ENV_H
#define DC_ENV_H

#include "api.h"
#include "sandbox.h"

struct dc_api_filter;

/* Registry keys */
#define DC_ENV_API "dynacode.api"     /* lightuserdata: the state's API filter (may be NULL) */

/* The state's API filter. Stack: [-0, +0] */
DC_HIDDEN const struct dc_api_filter *dc_env_api(lua_State *L);

/* env_guard.c */
/* Replaces the table at the top by a read-only proxy (plain sub-tables too). newindex, when not
 * NULL, replaces the refusing __newindex. Stack: [-1, +1] */
DC_HIDDEN void dc_env_readonly(lua_State *L, const char *name, lua_CFunction newindex);
/* Plain sub-tables of the table at idx become read-only proxies. Stack: [-0, +0] */
DC_HIDDEN void dc_env_readonly_children(lua_State *L, int idx, const char *name);
/* Replaces every function and API table under the table at idx that the state's filter
 * denies; prefix is the table's dotted path ("" for the environment). Stack: [-0, +0] */
DC_HIDDEN void dc_env_deny(lua_State *L, int idx, const char *prefix);
/* 1 when the state's filter allows path. */
DC_HIDDEN int dc_env_allowed(lua_State *L, const char *path);
/* Pushes the denial of path: a function, or a table whose reads and writes are the denial.
 * Stack: [-0, +1] */
DC_HIDDEN void dc_env_push_denial(lua_State *L, const char *path, int as_table);

/* env_base.c */
/* Puts tostring, getmetatable, setmetatable and xpcall into the environment table at env
 * (after the base names are there) and sets up what the library wrappers need.
 * Stack: [-0, +0] */
DC_HIDDEN void dc_env_base_open(lua_State *L, int env);
/* Puts the library `name` (table at idx) functions that call back into Lua behind the C-stack
 * guard. Stack: [-0, +0] */
DC_HIDDEN void dc_env_guard_lib(lua_State *L, int idx, const char *name);

/* env_iter.c */
/* Sets up the walk of proxies and puts `next` and `pairs` that walk them into the environment
 * at env (after the base names are there). Stack: [-0, +0] */
DC_HIDDEN void dc_env_iter_open(lua_State *L, int env);
/* Records that next/pairs over the proxy at idx walk the table behind it, opening what is
 * lazy for name ("ngx...": every area; "_G": every library). Stack: [-0, +0] */
DC_HIDDEN void dc_env_iter_register(lua_State *L, int idx, const char *name);
/* Records that the value at idx is a denial, which next/pairs skip. Stack: [-0, +0] */
DC_HIDDEN void dc_env_iter_mark_denial(lua_State *L, int idx);

/* env.c: builds every library not yet in the environment at env. Stack: [-0, +0] */
DC_HIDDEN void dc_env_open_libs(lua_State *L, int env);

/* env_ngx.c: opens every area of the ngx table not open yet. Stack: [-0, +0] */
DC_HIDDEN void dc_env_ngx_open_all(lua_State *L);

/* env_ngx.c: pushes the `ngx` proxy; its API areas open at the first access to one of their
 * names. Stack: [-0, +1] */
DC_HIDDEN void dc_env_push_ngx(lua_State *L);

#endif
