/* fuzz_lpattern.c - libFuzzer target for the metered Lua pattern matcher (sandbox/lpattern.c
 * through the string.find/match/gmatch/gsub of api_strpat.c). Input: a mode byte (function,
 * replacement kind, init), a pattern length byte, the pattern, then the subject. Runs under a
 * step budget; when ours finishes within it, LuaJIT's own string library must give the same
 * results and the same error (a differential check, as the unit test does on fixed cases).
 */
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lpattern.h"

#define BUDGET 2000000u

static uint64_t spent;
static int tripped;
static lua_State *L;
static int driver_ref;

static void charge(lua_State *Ls, uint64_t units)
{
    spent += units;
    if (spent > BUDGET) {
        tripped = 1;
        luaL_error(Ls, "fuzz budget");
    }
}

/* Arguments: lib, pattern, subject, mode, init, repl index. Returns one string that spells out
 * every result (or the error) so that two libraries can be compared byte for byte. */
static const char driver[] =
    "local lib, p, s, mode, init, ri = ...\n"
    "local repls = {'%0%0', '[%1]', '%2', 'x', '%%', '', '%', '%9',\n"
    "  {a = 'A', b = true, c = false}, function(...) return select('#', ...) .. '' end,\n"
    "  function(a) if a == 'q' then return {} end end}\n"
    "local function pack(ok, ...)\n"
    "  local t = {ok and 'ok' or 'err', select('#', ...)}\n"
    "  for i = 1, select('#', ...) do t[#t + 1] = type((select(i, ...))) .. ':' ..\n"
    "    tostring((select(i, ...))) end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "if mode == 0 then return pack(pcall(lib.find, s, p, init))\n"
    "elseif mode == 1 then return pack(pcall(lib.find, s, p, init, true))\n"
    "elseif mode == 2 then return pack(pcall(lib.match, s, p, init))\n"
    "elseif mode == 3 then\n"
    "  local out = {}\n"
    "  local ok, e = pcall(function()\n"
    "    for a, b in lib.gmatch(s, p) do\n"
    "      out[#out + 1] = tostring(a) .. ',' .. tostring(b)\n"
    "      if #out > 200 then break end\n"
    "    end\n"
    "  end)\n"
    "  return (ok and 'ok' or 'err:' .. tostring(e)) .. '|' .. table.concat(out, ';')\n"
    "else return pack(pcall(lib.gsub, s, p, repls[ri], init > 0 and init or nil)) end\n";

static lua_State *new_state(void)
{
    lua_State *Ls = luaL_newstate();
    if (!Ls)
        abort();
    luaL_openlibs(Ls);
    luaJIT_setmode(Ls, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_newtable(Ls);
    dc_strpat_open(Ls, charge);
    lua_setglobal(Ls, "mystring");
    if (luaL_loadbuffer(Ls, driver, sizeof driver - 1, "=driver") != 0)
        abort();
    driver_ref = luaL_ref(Ls, LUA_REGISTRYINDEX);
    return Ls;
}

/* Runs the driver with lib (a global's name); the result string is left on the stack. */
static void run(const char *lib, const char *p, size_t pl, const char *s, size_t sl, int mode,
                int init, int ri)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    lua_getglobal(L, lib);
    lua_pushlstring(L, p, pl);
    lua_pushlstring(L, s, sl);
    lua_pushinteger(L, mode);
    lua_pushinteger(L, init);
    lua_pushinteger(L, ri);
    if (lua_pcall(L, 6, 1, 0) != 0 || !lua_isstring(L, -1)) {
        lua_settop(L, 0);
        lua_pushliteral(L, "driver failed");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!L)
        L = new_state();
    int mode = data[0] % 5;
    int ri = 1 + (data[0] / 5) % 11;
    int init = (int)(signed char)data[1] / 8;
    size_t pl = data[1] % 64;
    if (pl > size - 2)
        pl = size - 2;
    const char *p = (const char *)data + 2, *s = p + pl;
    size_t sl = size - 2 - pl;

    spent = 0;
    tripped = 0;
    run("mystring", p, pl, s, sl, mode, init, ri);
    if (!tripped) {
        run("string", p, pl, s, sl, mode, init, ri);
        size_t la, lb;
        const char *a = lua_tolstring(L, -2, &la), *b = lua_tolstring(L, -1, &lb);
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "lpattern differs from LuaJIT:\n ours:   %.*s\n LuaJIT: %.*s\n",
                    (int)la, a, (int)lb, b);
            abort();
        }
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
