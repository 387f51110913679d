/* api_log.c - ngx.log, the global print (ngx.log at NOTICE, as OpenResty), the level constants
 * ngx.STDERR .. ngx.DEBUG (OpenResty's values 0..8, passed to host->log unchanged), and the
 * log line builder the other areas use. Lines are capped at the policy's bounds.log_line_bytes
 * (never above 4 KiB), control bytes escaped, and a call's lines and bytes bounded.
 */
#include <stdio.h>
#include <string.h>

#include "api_util.h"

#define LOG_MAX 4096
#define LOG_NOTICE 6
#define LOG_ERR 4

/* A line being built, in a buffer the state owns (the collector frees it after an error):
 * a __tostring reached from ngx.log may log in turn, so nothing large sits on the C stack. */
typedef struct line {
    dc_ubuf *b;
    size_t cap;     /* the policy's bound, at most LOG_MAX */
    int cut;
} line;

/* Appends s, every control byte written as \n, \r, \t or \xNN so that no message can start
 * a line of its own in the log or hide text behind terminal escapes; with quote also '"' and
 * '\' (for the plugin name, shown between quotes). Stops at the cap. Stack: [-0, +0] */
static void line_add_esc(lua_State *L, line *l, const char *s, size_t n, int quote)
{
    for (size_t i = 0; i < n && !l->cut; i++) {
        char e[4];
        size_t k = dc_log_escape_byte((unsigned char)s[i], quote, e);
        if (k > l->cap - l->b->len) {
            l->cut = 1;
            break;
        }
        if (k == 1) {
            /* a run of plain bytes goes in one copy */
            size_t j = i + 1, room = l->cap - l->b->len;
            while (j < n && j - i < room && dc_log_escape_byte((unsigned char)s[j], quote, e) == 1)
                j++;
            dc_ubuf_add(L, l->b, s + i, j - i);
            i = j - 1;
            continue;
        }
        dc_ubuf_add(L, l->b, e, k);
    }
}

/* Pushes the line's buffer and writes its prefix. Stack: [-0, +1] */
static void line_start(lua_State *L, line *l, const dc_call *call)
{
    l->b = dc_ubuf_new(L);
    l->cut = 0;
    l->cap = LOG_MAX;
    if (call->bounds && call->bounds->log_line_bytes && call->bounds->log_line_bytes < LOG_MAX)
        l->cap = call->bounds->log_line_bytes < 64 ? 64 : call->bounds->log_line_bytes;
    const char *name = call->plugin ? call->plugin : "?";
    dc_ubuf_add(L, l->b, "[dynacode] plugin \"", 19);
    line_add_esc(L, l, name, strlen(name), 1);
    if (l->cap - l->b->len < 3)
        l->cut = 1;
    else
        dc_ubuf_add(L, l->b, "\": ", 3);
}

/* Hands the line to the host unless the call has logged as much as the policy lets it; the
 * first line over says so, later ones are dropped. Pops the buffer. Stack: [-1, +0] */
static void line_send(lua_State *L, line *l, dc_call *call, int level)
{
    if (l->cut)
        memcpy(l->b->p + l->b->len - 3, "...", 3);
    const dc_bounds *bd = call->bounds;
    size_t len = l->b->len;
    int over = bd && ((bd->log_lines && call->log_lines >= bd->log_lines) ||
                      (bd->log_bytes && (len > bd->log_bytes ||
                                         call->log_len > bd->log_bytes - len)));
    if (over) {
        if (!call->log_dropped && call->host->log) {
            char msg[160];
            int n = snprintf(msg, sizeof msg, "further log lines of this call dropped (over the "
                             "policy's bound of %u lines or %u bytes in one call)",
                             bd->log_lines, bd->log_bytes);
            line nl;
            line_start(L, &nl, call);
            line_add_esc(L, &nl, msg, (size_t)n, 0);
            call->host->log(call->hreq, LOG_ERR, nl.b->p, nl.b->len);
            lua_pop(L, 1);
        }
        call->log_dropped = 1;
        lua_pop(L, 1);
        return;
    }
    call->log_lines++;
    call->log_len += len;
    dc_sbx_charge(L, len);
    dc_sbx_charge_host(L, len);
    if (call->host->log)
        call->host->log(call->hreq, level, l->b->p, len);
    lua_pop(L, 1);
}

void dc_api_log(lua_State *L, dc_call *call, int level, const char *msg, size_t len)
{
    line l;
    line_start(L, &l, call);
    line_add_esc(L, &l, msg, len, 0);
    line_send(L, &l, call, level);
}

/* Appends the arguments from..top as ngx.log does: strings, numbers, nil, booleans, json.null,
 * tables through their __tostring. first_arg numbers the arguments in error messages.
 * Stack: [-0, +0] */
static void add_args(lua_State *L, line *l, int from, int top, int first_arg, const char *fn)
{
    char num[32];
    for (int i = from; i <= top && !l->cut; i++) {
        size_t n;
        const char *s;
        switch (lua_type(L, i)) {
        case LUA_TSTRING:
            s = lua_tolstring(L, i, &n);
            line_add_esc(L, l, s, n, 0);
            break;
        case LUA_TNUMBER:
            s = dc_api_fmt_num(lua_tonumber(L, i), num);
            line_add_esc(L, l, s, strlen(s), 0);
            break;
        case LUA_TNIL:
            line_add_esc(L, l, "nil", 3, 0);
            break;
        case LUA_TBOOLEAN:
            s = lua_toboolean(L, i) ? "true" : "false";
            line_add_esc(L, l, s, strlen(s), 0);
            break;
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, i) == NULL) {
                line_add_esc(L, l, "null", 4, 0);
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
            line_add_esc(L, l, s, n, 0);
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
    if (call->log_dropped)  /* over the call's bounds: nothing more is built */
        return 0;
    int top = lua_gettop(L);
    line l;
    line_start(L, &l, call);
    add_args(L, &l, 2, top, 2, "log");
    line_send(L, &l, call, (int)lv);
    return 0;
}

/* print(...): ngx.log(ngx.NOTICE, ...), as OpenResty. Stack: [-0, +0] */
int dc_api_print(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (call->log_dropped)
        return 0;
    int top = lua_gettop(L);
    line l;
    line_start(L, &l, call);
    add_args(L, &l, 1, top, 1, "print");
    line_send(L, &l, call, LOG_NOTICE);
    return 0;
}

void dc_api_open_log(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(LOG, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
#define DC_LOG_LEVEL(name, value) \
    lua_pushinteger(L, value);    \
    lua_setfield(L, -2, #name);
    DC_API_LOG_LEVELS(DC_LOG_LEVEL)
#undef DC_LOG_LEVEL
}
