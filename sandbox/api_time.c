/* api_time.c - ngx.now, ngx.time, ngx.today, ngx.http_time, ngx.get_phase and ngx.worker.*:
 * the clock comes from host->now when the host has one (nginx's cached time), else from
 * CLOCK_REALTIME; dates are formatted without the C locale's help.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "api_util.h"

/* Seconds since the epoch, millisecond resolution. Stack: [-0, +0] */
static double now_s(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    double t;
    if (call->host->now) {
        t = call->host->now(call->hreq);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
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
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
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

void dc_api_open_time(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(TIME, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, worker_pid);
    lua_setfield(L, -2, "pid");
    lua_pushcfunction(L, worker_id);
    lua_setfield(L, -2, "id");
    lua_setfield(L, -2, "worker");
}
