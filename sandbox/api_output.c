/* api_output.c - ngx.say, ngx.print, ngx.flush (response body through host->output),
 * ngx.send_headers and ngx.eof (host->send_headers, host->eof: after the end of the body, output
 * gives "seen eof"), and ngx.exit, ngx.redirect (which end the plugin through dc_sbx_exit), with
 * lua-nginx-module's argument rules and phase checks.
 */
#include <math.h>
#include <string.h>

#include "api_util.h"

_Static_assert(DC_APH_OUTPUT == (DC_PHASE_BIT(DC_PHASE_REWRITE) | DC_PHASE_BIT(DC_PHASE_ACCESS) |
                                 DC_PHASE_BIT(DC_PHASE_CONTENT)),
               "the phase masks of api_table.h follow enum dc_phase");
_Static_assert(DC_APH_ANY == (1u << DC_PHASE_COUNT) - 1, "DC_APH_ANY is every phase");
#define OUTPUT_MAX_DEPTH 100

typedef struct out {
    dc_ubuf *b;
    const char *fn;  /* "say" or "print", for messages */
    int arg;         /* the argument being written */
    unsigned steps;
} out;

static void add_value(lua_State *L, out *o, int idx, int depth);

/* Appends the elements of the array table at idx. Holes print as nil, as in OpenResty, but
 * only a few: a sparse table is refused rather than walked. Stack: [-0, +0] */
static void add_table(lua_State *L, out *o, int idx, int depth)
{
    if (depth > OUTPUT_MAX_DEPTH)
        luaL_error(L, "bad argument #%d to '%s' (table nested too deeply)", o->arg, o->fn);
    luaL_checkstack(L, 4, "nested table");
    lua_Number max = 0, count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_Number k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
        if (!(k >= 1 && k <= INT32_MAX) || k != floor(k))
            luaL_error(L, "bad argument #%d to '%s' (non-array table found)", o->arg, o->fn);
        if (k > max)
            max = k;
        count++;
        lua_pop(L, 1);
    }
    if (max > 2 * count + 16)
        luaL_error(L, "bad argument #%d to '%s' (sparse array table found)", o->arg, o->fn);
    for (int i = 1; i <= (int)max; i++) {
        lua_rawgeti(L, idx, i);
        add_value(L, o, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
}

/* Appends the value at idx as ngx.print writes it. Stack: [-0, +0] */
static void add_value(lua_State *L, out *o, int idx, int depth)
{
    size_t len;
    const char *s;
    dc_ubuf *b = o->b;
    if ((++o->steps & 1023) == 0)  /* a table may hold the same big table many times */
        dc_api_check_time(L);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
        s = lua_tolstring(L, idx, &len);
        dc_ubuf_add(L, b, s, len);
        return;
    case LUA_TNIL:
        dc_ubuf_add(L, b, "nil", 3);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            dc_ubuf_add(L, b, "true", 4);
        else
            dc_ubuf_add(L, b, "false", 5);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {  /* json.null */
            dc_ubuf_add(L, b, "null", 4);
            return;
        }
        break;
    case LUA_TTABLE:
        add_table(L, o, idx, depth);
        return;
    default:
        break;
    }
    luaL_error(L, "bad argument #%d to '%s' (string, number, boolean, nil, or array table "
               "expected, got %s)", o->arg, o->fn, luaL_typename(L, idx));
}

/* Pushes nil and "seen eof" when the response body has ended. Returns the values pushed (0
 * when it has not). Stack: [-0, +0|+2] */
static int seen_eof(lua_State *L, dc_call *call)
{
    if (!call->host->eof_seen || !call->host->eof_seen(call->hreq))
        return 0;
    lua_pushnil(L);
    lua_pushliteral(L, "seen eof");
    return 2;
}

/* ngx.say / ngx.print body. Stack: [-0, +1|+2]: 1, or nil and an error */
static int output(lua_State *L, const char *fn, int newline)
{
    const char *api = newline ? "ngx.say" : "ngx.print";
    dc_call *call = dc_sbx_check_phase(
        L, api, newline ? DC_API_PHASES(ngx_say) : DC_API_PHASES(ngx_print));
    DC_API_NEED(L, call, output, api);
    if (seen_eof(L, call))
        return 2;
    int n = lua_gettop(L);
    dc_ubuf *b = dc_sbx_scratch(L); /* add_value runs no Lua and nothing else uses it */
    if (n == 1 && lua_type(L, 1) == LUA_TSTRING) {
        /* the usual call, one string: copied as it is, with no walk */
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        dc_ubuf_add(L, b, s, len);
    } else {
        out o = {b, fn, 0, 0};
        for (o.arg = 1; o.arg <= n; o.arg++)
            add_value(L, &o, o.arg, 0);
    }
    if (newline) {
        if (b->p && b->len < b->cap)
            b->p[b->len++] = '\n'; /* most often room is there: no call for one byte */
        else
            dc_ubuf_add(L, b, "\n", 1);
    }
    if (call->bounds && call->bounds->output_bytes &&
        call->output_len + b->len > call->bounds->output_bytes)
        return luaL_error(L, "%s: output over the policy's bound of %u bytes in one call", api,
                          call->bounds->output_bytes);
    call->output_len += b->len;
    dc_sbx_charge_copy(L, b->len, b->len);
    if (b->len > 0 && call->host->output(call->hreq, b->p, b->len) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "nginx output filter error");
        return 2;
    }
    lua_pushinteger(L, 1);
    return 1;
}

/* ngx.say(...). Stack: [-0, +1|+2] */
static int ngx_say(lua_State *L)
{
    return output(L, "say", 1);
}

/* ngx.print(...). Stack: [-0, +1|+2] */
static int ngx_print(lua_State *L)
{
    return output(L, "print", 0);
}

/* ngx.flush(wait?): output is never buffered here. Stack: [-0, +1] */
static int ngx_flush(lua_State *L)
{
    dc_sbx_check_phase(L, "ngx.flush", DC_API_PHASES(ngx_flush));
    if (seen_eof(L, dc_sbx_current(L)))
        return 2;
    lua_pushinteger(L, 1);
    return 1;
}

/* ngx.send_headers(): the header goes out now (here: as good as out, which ngx.headers_sent
 * then says); again once sent is no error. Stack: [-0, +1|+2]: 1, or nil and an error */
static int ngx_send_headers(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.send_headers", DC_API_PHASES(ngx_send_headers));
    if (call->host->headers_sent && call->host->headers_sent(call->hreq)) {
        lua_pushinteger(L, 1);
        return 1;
    }
    int rc;
    if (call->host->send_headers) {
        rc = call->host->send_headers(call->hreq);
    } else {
        /* an empty output sends the header first, and nothing else */
        DC_API_NEED(L, call, output, "ngx.send_headers");
        rc = call->host->output(call->hreq, "", 0);
    }
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "nginx output filter error");
        return 2;
    }
    lua_pushinteger(L, 1);
    return 1;
}

/* ngx.eof(): the body ends with what was written so far (the header first if need be); a
 * second call, and any later output, gives nil and "seen eof". Stack: [-0, +1|+2] */
static int ngx_eof(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (lua_gettop(L) != 0)
        return luaL_error(L, "ngx.eof: no argument is expected");
    if (seen_eof(L, call))
        return 2;
    dc_sbx_check_phase(L, "ngx.eof", DC_API_PHASES(ngx_eof));
    DC_API_NEED(L, call, eof, "ngx.eof");
    if (call->host->eof(call->hreq) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "nginx output filter error");
        return 2;
    }
    lua_pushinteger(L, 1);
    return 1;
}

/* ngx.exit(status). Stack: does not return */
static int ngx_exit(lua_State *L)
{
    dc_sbx_check_phase(L, "ngx.exit", DC_API_PHASES(ngx_exit));
    lua_Number n = luaL_checknumber(L, 1);
    /* an HTTP status, or one of nginx's own codes (ngx.OK 0, ngx.ERROR -1, ngx.AGAIN -2,
     * ngx.DONE -4, ngx.DECLINED -5): nothing else reaches the status line */
    if (!(n >= -5 && n <= 999) || n != floor(n) || n == -3)
        return luaL_error(L, "bad argument #1 to 'exit' (status code 0 to 999, or ngx.OK, "
                             "ngx.ERROR, ngx.AGAIN, ngx.DONE or ngx.DECLINED expected, got "
                             "%s)", lua_tostring(L, 1));
    return dc_sbx_exit(L, (int)n);
}

/* %00-%08, %0A-%1F and %7F may not appear in a Location (header splitting). */
static int unsafe_uri_byte(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Raises the error for an unsafe byte at uri[at], showing the uri with non-printable bytes
 * as \xNN. Does not return. */
static int unsafe_uri_error(lua_State *L, const char *what, const char *uri, size_t len,
                            size_t at)
{
    static const char hex[] = "0123456789abcdef";
    dc_ubuf *b = dc_ubuf_new(L);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 0xf]};
            dc_ubuf_add(L, b, e, 4);
        } else {
            dc_ubuf_add(L, b, &uri[i], 1);
        }
    }
    dc_ubuf_add(L, b, "", 1);
    return luaL_error(L, "unsafe byte \"0x%02x\" in %s \"%s\"", (unsigned char)uri[at], what,
                      b->p);
}

/* ngx.redirect(uri, status?). Stack: does not return */
static int ngx_redirect(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    size_t len;
    const char *uri = luaL_checklstring(L, 1, &len);
    int status = 302;
    if (lua_gettop(L) >= 2) {
        lua_Number st = luaL_checknumber(L, 2);
        status = st >= 300 && st <= 308 ? (int)st : 0;
        if (st != status || !(status == 301 || status == 302 || status == 303 ||
                              status == 307 || status == 308))
            return luaL_error(L, "only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, "
                                 "ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and "
                                 "ngx.HTTP_TEMPORARY_REDIRECT are allowed");
    }
    dc_sbx_check_phase(L, "ngx.redirect", DC_API_PHASES(ngx_redirect));
    DC_API_NEED(L, call, resp_header_set, "ngx.redirect");
    if (call->host->headers_sent && call->host->headers_sent(call->hreq))
        return luaL_error(L, "attempt to call ngx.redirect after sending out the headers");
    for (size_t i = 0; i < len; i++)
        if (unsafe_uri_byte((unsigned char)uri[i]))
            return unsafe_uri_error(L, "redirect uri", uri, len, i);
    dc_str name = {"Location", 8}, value = {uri, len};
    dc_api_check_header_set(L, call, "ngx.redirect", name, &value, 1);
    if (call->host->resp_header_set(call->hreq, name, &value, 1) != 0)
        return luaL_error(L, "attempt to call ngx.redirect after sending out the headers");
    return dc_sbx_exit(L, status);
}

void dc_api_open_output(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(OUTPUT, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
}
