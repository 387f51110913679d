/* bench_strpat.c - the metered Lua patterns (sandbox/lpattern.c) against LuaJIT's own string
 * library on the same inputs: microseconds per call for find, match, gsub and gmatch on a 1 KiB
 * subject, and the ratio. Prints figures; asserts nothing (a timing is no test verdict).
 * Usage: bench_strpat   (run from the build directory)
 */
#include <stdint.h>
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>

#include "lpattern.h"

/* the patterns charge their work; nothing trips here */
static void charge(lua_State *L, uint64_t units)
{
    (void)L;
    (void)units;
}

static const char bench_lua[] =
    "local words = {'alpha', 'beta', 'gamma', 'delta', 'x=1', 'key: value', 'GET', '/a/v1'}\n"
    "local t = {} for i = 1, 200 do t[i] = words[i % 8 + 1] end\n"
    "local S = table.concat(t, ' '):sub(1, 1024)\n"
    "local UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '\n"
    "           .. 'Chrome/120.0 Safari/537.36'\n"
    "local cases = {\n"
    "  {'find plain', 'find', S, 'Safari', 1, true}, {'find literal', 'find', S, 'zeta'},\n"
    "  {'find %d+%s*$', 'find', S, '%d+%s*$'}, {'match kv', 'match', S, '(%w+):%s*(%w+)'},\n"
    "  {'match ua', 'match', UA, 'Chrome/([%d%.]+)'},\n"
    "  {'match trim', 'match', '  some value  ', '^%s*(.-)%s*$'},\n"
    "  {'gsub %s+', 'gsub', S, '%s+', '_'}, {'gsub fn', 'gsub', S, '%a+', string.upper},\n"
    "  {'gsub table', 'gsub', S, '%a+', {alpha = 'A'}}, {'gmatch', 'gmatch', S, '%a+'},\n"
    "}\n"
    "local N = 2000\n"
    "local function time(lib, c)\n"
    "  local f, a1, a2, a3, a4 = lib[c[2]], c[3], c[4], c[5], c[6]\n"
    "  local best = math.huge\n"
    "  for r = 1, 3 do\n"
    "    local t0 = os.clock()\n"
    "    if c[2] == 'gmatch' then\n"
    "      for i = 1, N do for w in f(a1, a2) do end end\n"
    "    else\n"
    "      for i = 1, N do f(a1, a2, a3, a4) end\n"
    "    end\n"
    "    best = math.min(best, os.clock() - t0)\n"
    "  end\n"
    "  return best\n"
    "end\n"
    "local worst = 0\n"
    "for _, c in ipairs(cases) do\n"
    "  local a, b = time(string, c), time(mystring, c)\n"
    "  local ratio = b / math.max(a, 1e-9)\n"
    "  print(string.format('%-14s luajit %8.3f us  ours %8.3f us  x%.2f',\n"
    "                      c[1], a * 1e6 / N, b * 1e6 / N, ratio))\n"
    "  if b > 1e-4 then worst = math.max(worst, ratio) end\n"
    "end\n"
    "print(string.format('strpat speed: worst ratio x%.2f', worst))\n";

int main(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return 1;
    luaL_openlibs(L);
    /* JIT off, as in the sandbox */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_newtable(L);
    dc_strpat_open(L, charge);
    lua_setglobal(L, "mystring");
    printf("# Lua patterns: LuaJIT's string library vs the metered one (best of 3 x 2,000 calls)\n");
    int rc = luaL_loadbuffer(L, bench_lua, sizeof bench_lua - 1, "=bench") || lua_pcall(L, 0, 0, 0);
    if (rc)
        fprintf(stderr, "bench_strpat: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc ? 1 : 0;
}
