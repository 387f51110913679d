/* api_time.c - ngx.now, time, today, http_time, cookie_time, localtime, utctime, update_time,
 * parse_http_time (reader in api_date.c), ngx.sleep, get_phase, ngx.worker.* and ngx.config's facts; the
 * clock is host->now when the host has one (nginx's cached time), else CLOCK_REALTIME.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "api_date.h"
#include "api_util.h"

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The version of nginx whose behaviour the API follows (NGINX_VERSION_NUM's form: 1.22.1 is
 * 1022001): the nginx the module is built and tested against. ngx_lua_version: the
 * lua-nginx-module release (0.10.23) installed beside that nginx, against which the
 * compatibility of this API is measured; plugins that test it pick the code paths of that
 * release, which are the ones written here. */
#define DC_NGINX_VERSION_NUM 1022001
#define DC_NGX_LUA_VERSION 10023

/* Registry: the wall clock as ngx.update_time last read it (a number), in this state. */
#define DC_TIME_FRESH "dynacode.time_fresh"

static double realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

/* Seconds since the epoch, millisecond resolution. The host's clock is a cache (nginx's,
 * refreshed once per event); after ngx.update_time in this state it is never older than what
 * that call read. Stack: [-0, +0] */
static double now_s(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    double t;
    if (call->host->now) {
        t = call->host->now(call->hreq);
        lua_getfield(L, LUA_REGISTRYINDEX, DC_TIME_FRESH);
        double fresh = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (fresh > t)
            t = fresh;
    } else {
        t = realtime_s();
    }
    return floor(t * 1000.0 + 1e-4) / 1000.0;  /* truncated to the millisecond */
}

/* ngx.now(). Stack: [-0, +1] */
static int ngx_now(lua_State *L)
{
    lua_pushnumber(L, now_s(L));
    return 1;
}

/* ngx.time(). Stack: [-0, +1] */
static int ngx_time(lua_State *L)
{
    lua_pushnumber(L, floor(now_s(L)));
    return 1;
}

/* ngx.today(): "yyyy-mm-dd" in local time. Stack: [-0, +1] */
static int ngx_today(lua_State *L)
{
    time_t t = (time_t)floor(now_s(L));
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return luaL_error(L, "ngx.today: the clock is out of range");
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* ngx.http_time(sec): "Thu, 18 Nov 2010 11:27:35 GMT". Stack: [-0, +1] */
static int ngx_http_time(lua_State *L)
{
    lua_Number sec = luaL_checknumber(L, 1);
    /* gmtime_r fails past year 2^31; years past 9999 are not HTTP dates anyway */
    if (!(sec >= -62167219200.0 && sec < 253402300800.0))
        return luaL_error(L, "bad argument #1 to 'http_time' (time out of range)");
    time_t t = (time_t)floor(sec);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return luaL_error(L, "bad argument #1 to 'http_time' (time out of range)");
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday],
                     tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* ngx.localtime() and ngx.utctime(): "yyyy-mm-dd hh:mm:ss" of the clock, local or UTC.
 * Stack: [-0, +1] */
static int push_datetime(lua_State *L, int local, const char *api)
{
    time_t t = (time_t)floor(now_s(L));
    struct tm tm;
    if (!(local ? localtime_r(&t, &tm) : gmtime_r(&t, &tm)))
        return luaL_error(L, "%s: the clock is out of range", api);
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int ngx_localtime(lua_State *L)
{
    return push_datetime(L, 1, "ngx.localtime");
}

static int ngx_utctime(lua_State *L)
{
    return push_datetime(L, 0, "ngx.utctime");
}

/* ngx.update_time(): nginx refreshes its time cache; here the state reads the wall clock,
 * and its ngx.now, ngx.time and the dates above never report an older time than that (the
 * host's cache takes over again once it passes it). Costs one clock read. Stack: [-0, +0] */
static int ngx_update_time(lua_State *L)
{
    dc_sbx_charge(L, 16);
    lua_pushnumber(L, realtime_s());
    lua_setfield(L, LUA_REGISTRYINDEX, DC_TIME_FRESH);
    return 0;
}

/* ngx.cookie_time(sec): "Thu, 18-Nov-10 11:27:35 GMT", as nginx writes an Expires attribute:
 * a two-digit year up to 2037, four digits after; a time before the epoch is the epoch (as
 * nginx's own date conversion). Years past 9999 are refused. Stack: [-0, +1] */
static int ngx_cookie_time(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L, "bad argument #1 to 'cookie_time' (number expected, got %s)",
                          luaL_typename(L, 1));
    lua_Number sec = lua_tonumber(L, 1);
    if (!(sec < 253402300800.0))
        return luaL_error(L, "bad argument #1 to 'cookie_time' (time out of range)");
    time_t t = sec > 0 ? (time_t)floor(sec) : 0;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return luaL_error(L, "bad argument #1 to 'cookie_time' (time out of range)");
    int year = tm.tm_year + 1900;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s, %02d-%s-%02d %02d:%02d:%02d GMT", wday[tm.tm_wday],
                     tm.tm_mday, mon[tm.tm_mon], year > 2037 ? year : year % 100, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* ngx.parse_http_time(str): the seconds of an HTTP date, nil when str is not one. Charged
 * for every byte, which bounds what the reader may scan. Stack: [-0, +1] */
static int ngx_parse_http_time(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "bad argument #1 to 'parse_http_time' (string expected, got %s)",
                          luaL_typename(L, 1));
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    dc_sbx_charge(L, len + 16);
    int64_t t;
    /* OpenResty hands nginx's error value on as nil: one second before the epoch, which
     * nginx computes as -1, is nil there too */
    if (dc_http_date_parse(s, len, &t) != 0 || t == -1)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)t);
    return 1;
}

/* Seconds as text for the sleep messages: "0.25 s", "6 s". */
static void put_seconds(char *out, size_t len, double ms)
{
    snprintf(out, len, "%.10g s", ms / 1000.0);
}

/* ngx.sleep(seconds), in rewrite, access and content: the call yields; its host resumes it
 * once the time is up and serves other requests meanwhile (a host that cannot wait resumes
 * it at once). Bounded by the policy per call and per request; 0 only gives the worker to
 * others for a moment. Only the plugin's own code sleeps: a coroutine the plugin made would
 * hand the yield to its resumer. Stack: [-1, +0] */
static int ngx_sleep(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    dc_sbx_check_phase(L, "ngx.sleep", DC_API_PHASES(ngx_sleep));
    if (lua_gettop(L) != 1)
        return luaL_error(L, "attempt to pass %d arguments, but accepted 1", lua_gettop(L));
    double sec = luaL_checknumber(L, 1);
    if (!(sec >= 0)) /* NaN too */
        return luaL_error(L, "ngx.sleep: invalid duration %f (seconds, 0 or more)", sec);
    dc_sbx_charge(L, 16); /* an abort already under way is raised here, before any yield */
    double ms = sec * 1000.0;
    const dc_bounds *b = call->bounds;
    char want[48], cap[48];
    if (b && ms > (double)b->sleep_ms_per_call) {
        put_seconds(want, sizeof want, ms);
        put_seconds(cap, sizeof cap, (double)b->sleep_ms_per_call);
        return luaL_error(L, "ngx.sleep: %s is over the policy's bound of %s per call", want, cap);
    }
    if (b && ms > (double)call->sleep_left_ms) {
        put_seconds(want, sizeof want, ms);
        put_seconds(cap, sizeof cap, (double)call->sleep_left_ms);
        return luaL_error(L, "ngx.sleep: %s is over what this request may still sleep (%s of "
                             "the policy's %u ms per request)",
                          want, cap, b->sleep_ms_per_request);
    }
    if (L != call->co)
        return luaL_error(L, "ngx.sleep: only the plugin's own code can sleep, not a "
                             "coroutine it made");
    call->sleep_ms = ms < 4294967295.0 ? (uint32_t)ms : UINT32_MAX;
    call->asleep = 1;
    return lua_yield(L, 0);
}

/* ngx.get_phase(). Stack: [-0, +1] */
static int ngx_get_phase(lua_State *L)
{
    lua_pushstring(L, dc_phase_name(dc_sbx_current(L)->phase));
    return 1;
}

/* ngx.worker.pid(). Stack: [-0, +1] */
static int worker_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* ngx.worker.id(). Stack: [-0, +1] */
static int worker_id(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    lua_pushinteger(L, call->host->worker_id ? call->host->worker_id(call->hreq) : 0);
    return 1;
}

/* ngx.worker.count(): the host's number of worker processes, 1 when it does not say.
 * Stack: [-0, +1] */
static int worker_count(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    int n = call->host->worker_count ? call->host->worker_count(call->hreq) : 1;
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

/* ngx.worker.exiting(): true once the host's worker has begun shutting down (a reload or a
 * stop); false when the host does not say. Stack: [-0, +1] */
static int worker_exiting(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    lua_pushboolean(L, call->host->worker_exiting && call->host->worker_exiting(call->hreq));
    return 1;
}

/* ngx.config.prefix() and ngx.config.nginx_configure(): nginx's prefix directory and the
 * arguments it was configured with. Both name paths of the machine, which a plugin has no
 * business knowing (and could not use: it opens no files): "" (docs/compatibility.md).
 * Stack: [-0, +1] */
static int config_empty(lua_State *L)
{
    lua_pushliteral(L, "");
    return 1;
}

/* Pushes the ngx.config table (made read-only when the area opens). Stack: [-0, +1] */
static void push_config(lua_State *L)
{
    lua_createtable(L, 0, 6);
    lua_pushliteral(L, "http");
    lua_setfield(L, -2, "subsystem");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "debug");
    lua_pushinteger(L, DC_NGINX_VERSION_NUM);
    lua_setfield(L, -2, "nginx_version");
    lua_pushinteger(L, DC_NGX_LUA_VERSION);
    lua_setfield(L, -2, "ngx_lua_version");
    lua_pushcfunction(L, config_empty);
    lua_setfield(L, -2, "prefix");
    lua_pushcfunction(L, config_empty);
    lua_setfield(L, -2, "nginx_configure");
}

void dc_api_open_time(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(TIME, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, worker_pid);
    lua_setfield(L, -2, "pid");
    lua_pushcfunction(L, worker_id);
    lua_setfield(L, -2, "id");
    lua_pushcfunction(L, worker_count);
    lua_setfield(L, -2, "count");
    lua_pushcfunction(L, worker_exiting);
    lua_setfield(L, -2, "exiting");
    lua_setfield(L, -2, "worker");
    push_config(L);
    lua_setfield(L, -2, "config");
}
