/* api_log.c - ngx.log, the global print (ngx.log at NOTICE, as OpenResty), the level constants
 * ngx.STDERR .. ngx.DEBUG (OpenResty's values 0..8, passed to host->log unchanged), and the
 * log line builder the other areas use. Lines are capped at the policy's bounds.log_line_bytes,
 * and never above 4 KiB.
 */
#include <stdio.h>
#include <string.h>

#include "api_util.h"
#include "api_names.h"

#define LOG_MAX 4096
#define LOG_NOTICE 6

typedef struct line {
    char buf[LOG_MAX];
    size_t len;
    size_t cap;     /* the policy's bound, at most LOG_MAX */
    int cut;
} line;

static void line_add(line *l, const char *s, size_t n)
{
    size_t room = l->cap - l->len;
    if (n > room) {
        n = room;
        l->cut = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_start(line *l, const dc_call *call)
{
    l->len = 0;
    l->cut = 0;
    l->cap = LOG_MAX;
    if (call->bounds && call->bounds->log_line_bytes && call->bounds->log_line_bytes < LOG_MAX)
        l->cap = call->bounds->log_line_bytes < 64 ? 64 : call->bounds->log_line_bytes;
    const char *name = call->plugin ? call->plugin : "?";
    line_add(l, "[dynacode] plugin \"", 19);
    line_add(l, name, strlen(name));
    line_add(l, "\": ", 3);
}

static void line_send(line *l, dc_call *call, int level)
{
    if (l->cut)
        memcpy(l->buf + l->cap - 3, "...", 3);
    if (call->host->log)
        call->host->log(call->hreq, level, l->buf, l->len);
}

void dc_api_log(lua_State *L, dc_call *call, int level, const char *msg, size_t len)
{
    (void)L;
    line l;
    line_start(&l, call);
    line_add(&l, msg, len);
    line_send(&l, call, level);
}

/* Appends the arguments from..top as ngx.log does: strings, numbers, nil, booleans, json.null,
 * tables through their __tostring. first_arg numbers the arguments in error messages.
 * Stack: [-0, +0] */
static void add_args(lua_State *L, line *l, int from, int first_arg, const char *fn)
{
    int top = lua_gettop(L);
    char num[32];
    for (int i = from; i <= top && !l->cut; i++) {
        size_t n;
        const char *s;
        switch (lua_type(L, i)) {
        case LUA_TSTRING:
            s = lua_tolstring(L, i, &n);
            line_add(l, s, n);
            break;
        case LUA_TNUMBER:
            s = dc_api_fmt_num(lua_tonumber(L, i), num);
            line_add(l, s, strlen(s));
            break;
        case LUA_TNIL:
            line_add(l, "nil", 3);
            break;
        case LUA_TBOOLEAN:
            s = lua_toboolean(L, i) ? "true" : "false";
            line_add(l, s, strlen(s));
            break;
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, i) == NULL) {
                line_add(l, "null", 4);
                break;
            }
            goto bad;
        case LUA_TTABLE:
            dc_sbx_cguard(L); /* __tostring is plugin code */
            if (!luaL_callmeta(L, i, "__tostring"))
                luaL_error(L, "bad argument #%d to '%s' (string expected, got table)",
                           i - from + first_arg, fn);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "'__tostring' must return a string");
            s = lua_tolstring(L, -1, &n);
            line_add(l, s, n);
            lua_pop(L, 1);
            break;
        default:
        bad:
            luaL_error(L, "bad argument #%d to '%s' (string, number, boolean, or nil expected, "
                       "got %s)", i - from + first_arg, fn, luaL_typename(L, i));
        }
    }
}

/* ngx.log(level, ...). Stack: [-0, +0] */
static int ngx_log(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    lua_Number lv = luaL_checknumber(L, 1);
    if (!(lv >= 0 && lv <= 8) || lv != (lua_Number)(int)lv)
        return luaL_error(L, "bad argument #1 to 'log' (bad log level: %s)", lua_tostring(L, 1));
    line l;
    line_start(&l, call);
    add_args(L, &l, 2, 2, "log");
    line_send(&l, call, (int)lv);
    return 0;
}

/* print(...): ngx.log(ngx.NOTICE, ...), as OpenResty. Stack: [-0, +0] */
int dc_api_print(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    line l;
    line_start(&l, call);
    add_args(L, &l, 1, 1, "print");
    line_send(&l, call, LOG_NOTICE);
    return 0;
}

void dc_api_open_log(lua_State *L)
{
    lua_pushcfunction(L, ngx_log);
    lua_setfield(L, -2, "log");
#define DC_LOG_LEVEL(name, value) \
    lua_pushinteger(L, value);    \
    lua_setfield(L, -2, #name);
    DC_API_LOG_LEVELS(DC_LOG_LEVEL)
#undef DC_LOG_LEVEL
}
