/* test_strpat.c - the metered string.find/match/gmatch/gsub (sandbox/api_strpat.c, lpattern.c):
 * a differential test against LuaJIT's own string library (every result and error message),
 * the work meter on runaway patterns, and a quota trip inside a pattern in the real sandbox.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "lpattern.h"
#include "testutil.h"

/* ---- a plain state with LuaJIT's `string` and ours as `mystring` ---- */

/* The test's charge function: counts, and raises "trip" past meter_limit (0: never). */
static uint64_t meter_units, meter_calls, meter_max, meter_limit;

static void test_charge(lua_State *L, uint64_t units)
{
    meter_units += units;
    meter_calls++;
    if (units > meter_max)
        meter_max = units;
    if (meter_limit && meter_units > meter_limit)
        luaL_error(L, "trip");
}

static void meter_reset(uint64_t limit)
{
    meter_units = meter_calls = meter_max = 0;
    meter_limit = limit;
}

/* JIT off, as in the sandbox: LuaJIT's compiled string.find converts an out-of-range init
 * differently from its interpreter. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    ck_assert_ptr_nonnull(L);
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_newtable(L);
    dc_strpat_open(L, test_charge);
    ck_assert_int_eq(lua_gettop(L), 1);
    lua_setglobal(L, "mystring");
    meter_reset(0);
    return L;
}

/* Runs chunk; fails the test on an error. Returns the number of results. */
static int run_lua(lua_State *L, const char *chunk, int nres)
{
    int rc = luaL_loadstring(L, chunk);
    ck_assert_msg(rc == 0, "load: %s", lua_tostring(L, -1));
    rc = lua_pcall(L, 0, nres, 0);
    ck_assert_msg(rc == 0, "run: %s", lua_tostring(L, -1));
    return nres;
}

/* ---- differential ---- */

/* Arguments: ref, my, mode, seed, rounds. Returns: cases, mismatches, report. */
static const char driver_lua[] =
    "-- Runs cases through ref (LuaJIT) and my (ours); compares results and errors.\n"
    "-- Arguments: ref, my, mode ('fixed' or 'random'), seed, rounds.\n"
    "-- Returns: cases, mismatches, a report of the first ones.\n"
    "local ref, my, mode, seed, rounds = ...\n"
    "local function pack(...) return {n = select('#', ...), ...} end\n"
    "local function call(lib, f, ...) return lib[f](...) end\n"
    "local function ser(r)\n"
    "  local t = {}\n"
    "  for i = 1, r.n do\n"
    "    local v = r[i]\n"
    "    t[i] = type(v) == 'string' and string.format('%q', v)\n"
    "           or (type(v) .. ':' .. tostring(v))\n"
    "  end\n"
    "  return r.n .. '[' .. table.concat(t, ',') .. ']'\n"
    "end\n"
    "local function gm(lib, s, p)\n"
    "  local out, it = {}, lib.gmatch(s, p)\n"
    "  for i = 1, 1000 do\n"
    "    local r = pack(it())\n"
    "    if r[1] == nil then break end\n"
    "    out[#out + 1] = ser(r)\n"
    "  end\n"
    "  return table.concat(out, '|')\n"
    "end\n"
    "local function run(lib, f, ...)\n"
    "  if f == 'gmatch' then return ser(pack(pcall(gm, lib, ...))) end\n"
    "  return ser(pack(pcall(call, lib, f, ...)))\n"
    "end\n"
    "local cases, bad = 0, {}\n"
    "local function check(f, ...)\n"
    "  cases = cases + 1\n"
    "  local a, b = run(ref, f, ...), run(my, f, ...)\n"
    "  if a ~= b then\n"
    "    local args = {}\n"
    "    for i = 1, select('#', ...) do\n"
    "      local v = select(i, ...)\n"
    "      args[i] = type(v) == 'string' and string.format('%q', v) or tostring(v)\n"
    "    end\n"
    "    bad[#bad + 1] = f .. '(' .. table.concat(args, ', ') .. '): luajit ' .. a\n"
    "                    .. ' ours ' .. b\n"
    "  end\n"
    "end\n"
    "\n"
    "if mode == 'random' then\n"
    "  local pa = {'a', 'b', '%', '(', ')', '[', ']', '^', '$', '*', '+', '-', '?', '.', '1',\n"
    "              '2', 'f', 'b', 'z', 'd', 'a', 'a', 'b', '()', '%a', '%b()', '[^a]',\n"
    "              '%f[a]', '\\0'}\n"
    "  local sa = {'a', 'b', '(', ')', '\\0', '1', ' ', 'a', 'a', 'b'}\n"
    "  math.randomseed(seed)\n"
    "  for i = 1, rounds do\n"
    "    local p, s = {}, {}\n"
    "    for j = 1, math.random(1, 8) do p[j] = pa[math.random(#pa)] end\n"
    "    for j = 1, math.random(0, 10) do s[j] = sa[math.random(#sa)] end\n"
    "    p, s = table.concat(p), table.concat(s)\n"
    "    local init = math.random(-5, 12)\n"
    "    check('find', s, p, init)\n"
    "    check('match', s, p, init)\n"
    "    check('gmatch', s, p)\n"
    "    check('gsub', s, p, '<%0%1>', init)\n"
    "  end\n"
    "  return cases, #bad, table.concat(bad, '\\n', 1, math.min(#bad, 10))\n"
    "end\n"
    "\n"
    "local subjects = {\n"
    "  '', 'a', 'hello world', '  key = value  ', 'THE (quick) [brown] fox', 'aaa',\n"
    "  'abcabcabc', 'a\\0b\\0c', 'x=1, y=22, z=333', 'f(a(b)c)d', '192.168.0.1', '%d+',\n"
    "  'ab\\255\\128cd', 'one two  three', '\\n\\t x \\r', '^caret$', 'aXbXc', '(((())))',\n"
    "  '12ab34cd',\n"
    "}\n"
    "local patterns = {\n"
    "  '', 'a', '^a', 'a$', '^$', '.', '..', '%a+', '%A+', '%d+', '%D', '%l+', '%u', '%s*',\n"
    "  '%S+', '%w+', '%W', '%x+', '%p', '%P+', '%c', '%z', '%Z+', '%g+', '%G', '[abc]',\n"
    "  '[^abc]+', '[a-f]+', '[%d%.]+', '[]]', '[^]]', '[a-]', '[%a-z]', '[%]]', '[-]', 'a*',\n"
    "  'a-', 'a?', 'a+b', '.-b', '.*b', '(%a+)', '(%a+) (%a+)', '()a()', '()', '%b()',\n"
    "  '(a*(.)%w(%s*))', '(h)(e)(l)(l)(o)', '%b[]', '%bab', '%f[%a]%a+', '%f[%w]%w+',\n"
    "  '%f[%z]', '%f[%Z]', '%f[^%z]', '(.)%1', '(%a)%1', '()a%1', '(%d+)%.(%d+)', '%s*$',\n"
    "  '^(%w+)%s*=%s*(%w+)', '^%s*(.-)%s*$', 'x*$', '$', '^', 'a^', '$a', '[$^]', '%$',\n"
    "  '%^', '%%', '%.', '%-', '%(', '[%w_]+', '[%s%p]', '[^%s]+', '[\\0]', '%z+', '\\0',\n"
    "  'a\\0', '(x)?', '%x%x', '[A-Z][a-z]*', '.-$', '(a)(b)?', '[a-c-e]', '[%a%d_%-]+',\n"
    "  '()%f[%a]', '%1', '(a%1)', '(()', '%', '[a', '[%', '%b', '%ba', '%f', '%fa', '(a',\n"
    "  'a)', ')', '%0', '\\255', '[\\128-\\255]+', 'o w', '[%]', '[^%]]', '%f[]', '%bxy',\n"
    "}\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do\n"
    "    check('find', s, p)\n"
    "    check('match', s, p)\n"
    "    check('gmatch', s, p)\n"
    "    check('gsub', s, p, '<%0>')\n"
    "    check('gsub', s, p, '%1-%%', 2)\n"
    "  end\n"
    "end\n"
    "-- init, negative and past the end, fractional, huge, NaN, strings\n"
    "for _, init in ipairs({-100, -11, -3, -1, 0, 1, 2, 3, 5, 11, 12, 100, 1.5, -1.5,\n"
    "                       2^31, 2^31 - 1, 2^32 + 2, -2^40, 0/0, 1/0, '2', 'x', {}}) do\n"
    "  for _, p in ipairs({'', 'o', 'o%s', '(o)', '^h', 'l+', '$', '()', 'd$'}) do\n"
    "    check('find', 'hello world', p, init)\n"
    "    check('match', 'hello world', p, init)\n"
    "    check('find', 'hello world', p, init, true)\n"
    "  end\n"
    "end\n"
    "-- plain find, and patterns without magic bytes\n"
    "for _, p in ipairs({'', '.', '%', '[', 'o w', '(', ')', 'a\\0b', '\\0', 'world',\n"
    "                    'worlds', 'a.b%c', 'aab', 'aaaaaaab'}) do\n"
    "  for _, s in ipairs({'hello world', 'a.b%c[d(e)', 'xa\\0bx', '',\n"
    "                      string.rep('a', 100) .. 'b'}) do\n"
    "    check('find', s, p, 1, true)\n"
    "    check('find', s, p, nil, 1)\n"
    "    check('find', s, p, 3, false)\n"
    "    check('find', s, p)\n"
    "    check('match', s, p)\n"
    "    check('gsub', s, p, '#')\n"
    "  end\n"
    "end\n"
    "-- gsub replacements of every kind\n"
    "local reps = {\n"
    "  'x', '%0', '%1', '%2', '[%1|%2]', '%', 'a%', '%x', '%%', 'a\\0b', 12, 1.5, '',\n"
    "  {hello = 'HI', world = false, o = 1, l = {}, ['1'] = 'one'},\n"
    "  function(a, b) return b end, function(a) return a:upper() end,\n"
    "  function() return nil end, function() return false end, function() return {} end,\n"
    "  function(a) return #a end,\n"
    "  function() return true end, function(...) return select('#', ...) end, true,\n"
    "  setmetatable({}, {__index = function(_, k) return '<' .. k .. '>' end}),\n"
    "}\n"
    "for i = 1, #reps + 1 do\n"
    "  local r = reps[i]\n"
    "  for _, p in ipairs({'o', '(o)', '%w+', '(%w+)', '(%w)(%w*)', '', '^h', '()', 'l*',\n"
    "                      '(l)(l)', '$', '^', '(x', '^(h)(e)'}) do\n"
    "    check('gsub', 'hello world', p, r)\n"
    "    check('gsub', 'hello world', p, r, 1)\n"
    "    check('gsub', '', p, r)\n"
    "  end\n"
    "end\n"
    "for _, n in ipairs({-1, 0, 1, 2, 3, 100, 2.7, 1e10, 2^32 + 2, 0/0, '1', 'x'}) do\n"
    "  check('gsub', 'abc abc', '%w', '%0%0', n)\n"
    "  check('gsub', 'abc abc', '', '-', n)\n"
    "  check('gsub', 'abc abc', '^a', '-', n)\n"
    "end\n"
    "-- argument errors\n"
    "check('find', nil, 'a') check('find', 'a') check('find', 123, 2) check('find', {}, 'a')\n"
    "check('match', 'a', {}) check('match', 'a') check('match', 3.5, '%.')\n"
    "check('gmatch', nil, 'a') check('gmatch', 'a') check('gmatch', 12345, 3)\n"
    "check('gsub', 'abc', 'b') check('gsub', 'abc', 'b', true, 'x')\n"
    "check('gsub', 'abc', 'b', true)\n"
    "check('gsub', 12345, 3, 9) check('gsub', 'abc', 'b', 'x', 'y')\n"
    "-- nesting limit and capture limit\n"
    "for n = 195, 202 do\n"
    "  check('find', string.rep('a', n), string.rep('a?', n))\n"
    "  check('match', string.rep('a', n), string.rep('a*', n))\n"
    "  check('match', string.rep('a', n), string.rep('a-', n) .. '$')\n"
    "  check('gsub', string.rep('a', n), string.rep('a?', n), 'x')\n"
    "  check('match', string.rep('a', n),\n"
    "        string.rep('(a)', 20) .. string.rep('a?', n - 20))\n"
    "end\n"
    "for n = 30, 34 do\n"
    "  check('match', string.rep('a', 40), string.rep('(a)', n))\n"
    "  check('find', 'ab', string.rep('()', n))\n"
    "end\n"
    "check('match', 'x', string.rep('(', 40))\n"
    "-- embedded zeros: subjects anywhere, patterns end at their first zero (Lua 5.1)\n"
    "check('find', 'a\\0b\\0c', '\\0c') check('find', 'a\\0b\\0c', 'b\\0', 1, true)\n"
    "check('find', 'a\\0b%', '\\0b%') check('find', 'ab', 'a\\0c')\n"
    "check('match', 'a\\0b', 'a%zb') check('match', 'a\\0b%', '\\0b%')\n"
    "check('match', 'ab', 'a\\0c')\n"
    "check('match', 'a\\0', '[%z]') check('gmatch', 'a\\0b\\0', '%Z')\n"
    "check('gsub', 'a\\0b\\0', '%z', '0') check('gsub', 'a\\0b\\0', '\\0', '0')\n"
    "check('gsub', 'a.b', '.', '%\\0') check('gsub', 'ab', 'a\\0c', 'x')\n"
    "return cases, #bad, table.concat(bad, '\\n', 1, math.min(#bad, 10))\n";

static void differential(const char *mode, int seed, int rounds, int min_cases)
{
    lua_State *L = new_state();
    ck_assert_int_eq(luaL_loadbuffer(L, driver_lua, sizeof driver_lua - 1, "=driver"), 0);
    lua_getglobal(L, "string");
    lua_getglobal(L, "mystring");
    lua_pushstring(L, mode);
    lua_pushinteger(L, seed);
    lua_pushinteger(L, rounds);
    int rc = lua_pcall(L, 5, 3, 0);
    ck_assert_msg(rc == 0, "driver: %s", lua_tostring(L, -1));
    int cases = (int)lua_tointeger(L, -3), bad = (int)lua_tointeger(L, -2);
    ck_assert_msg(bad == 0, "%d of %d cases differ from LuaJIT:\n%s", bad, cases,
                  lua_tostring(L, -1));
    ck_assert_int_ge(cases, min_cases);
    lua_close(L);
}

START_TEST(same_as_luajit_on_fixed_cases)
{
    differential("fixed", 0, 0, 12000);
}
END_TEST

START_TEST(same_as_luajit_on_random_patterns)
{
    differential("random", 1 + _i, 5000, 20000);
}
END_TEST

/* Malformed patterns: LuaJIT's messages, raised only once the matcher gets there. */
START_TEST(malformed_patterns_raise_luajit_messages)
{
    static const struct {
        const char *fn, *subject, *pattern, *message;
    } cases[] = {
        {"find", "abc", "%", "malformed pattern (ends with '%')"},
        {"match", "abc", "[a", "malformed pattern (missing ']')"},
        {"match", "abc", "[%", "malformed pattern (missing ']')"},
        {"find", "abc", "%f", "missing '[' after '%f' in pattern"},
        {"find", "abc", "%fa", "missing '[' after '%f' in pattern"},
        {"find", "abc", "%b", "unbalanced pattern"},
        {"find", "abc", "%1", "invalid capture index"},
        {"find", "abc", "(a%1)", "invalid capture index"},
        {"find", "abc", "(a", "unfinished capture"},
        {"match", "abc", "a)", "invalid pattern capture"},
        {"gsub", "abc", "(b", NULL}, /* a string replacement without %1 never looks */
        {"match", "xyz", "a)", NULL},  /* never reached */
    };
    lua_State *L = new_state();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lua_settop(L, 0);
        lua_getglobal(L, "mystring");
        lua_getfield(L, 1, cases[i].fn);
        lua_pushstring(L, cases[i].subject);
        lua_pushstring(L, cases[i].pattern);
        if (strcmp(cases[i].fn, "gsub") == 0)
            lua_pushstring(L, "x");
        else
            lua_pushnil(L);
        int rc = lua_pcall(L, 3, 1, 0);
        if (cases[i].message) {
            ck_assert_msg(rc != 0, "%s(%s) did not fail", cases[i].fn, cases[i].pattern);
            ck_assert_str_eq(lua_tostring(L, -1), cases[i].message);
        } else {
            ck_assert_msg(rc == 0, "%s(%s): %s", cases[i].fn, cases[i].pattern,
                          lua_tostring(L, -1));
        }
    }
    /* too many captures, too deep, and the caller's position as LuaJIT gives it */
    run_lua(L, "local ok, e = pcall(mystring.find, 'a', string.rep('()', 33))\n"
               "assert(e == 'too many captures', e)\n"
               "ok, e = pcall(mystring.find, string.rep('a', 300), string.rep('a?', 300))\n"
               "assert(e == 'pattern too complex', e)\n"
               "ok, e = pcall(mystring.match, string.rep('a', 9e4), string.rep('a*', 3e4))\n"
               "assert(e == 'pattern too complex', e)\n"
               "local function f(lib) local r = lib.match('a', '[') return r end\n"
               "local _, e1 = pcall(f, string)\n"
               "local _, e2 = pcall(f, mystring)\n"
               "assert(e1 == e2 and e1:find(':7: malformed', 1, true), e2)\n",
            0);
    lua_close(L);
}
END_TEST

/* ---- the meter ---- */

/* Each runaway reaches the charge function, in chunks, soon: the test's limit of 2e6 units
 * raises "trip" within a fraction of a second. */
START_TEST(runaway_patterns_are_charged_until_they_trip)
{
    static const char *const runaways[] = {
        "return mystring.find(A, '.-.-.-.-b')",
        "return mystring.find(A, 'a*a*a*a*b')",
        "return mystring.match(A, '(.-)%1b')",
        "return mystring.match(A, '(a*)(a*)(a*)%1%2%3b')",
        "return mystring.find(A, string.rep('a?', 150) .. 'b')",
        "return mystring.gsub(A, 'a-a-a-b', 'x')",
        "for w in mystring.gmatch(A, '.-.-b') do end",
        "return mystring.gsub(A, '(a-)b', '%1')",
        "return mystring.find(A, '[' .. string.rep('b', 20000) .. ']')",
        "return mystring.find(A, '%f[' .. string.rep('b', 20000) .. ']')",
        "return mystring.find(A, '[' .. string.rep('b', 20000) .. ']*c')",
        "return mystring.find(A, string.rep('a', 5000) .. 'b$')",
        "return mystring.find(string.rep('(', 20000), '%b()')",
    };
    lua_State *L = new_state();
    run_lua(L, "A = string.rep('a', 20000)", 0);
    for (size_t i = 0; i < sizeof runaways / sizeof runaways[0]; i++) {
        meter_reset(2000000);
        int rc = luaL_loadstring(L, runaways[i]);
        ck_assert_int_eq(rc, 0);
        rc = lua_pcall(L, 0, 0, 0);
        ck_assert_msg(rc != 0, "%s: ran to its end", runaways[i]);
        const char *e = lua_tostring(L, -1);
        ck_assert_msg(strstr(e, "trip") != NULL, "%s: %s", runaways[i], e);
        /* charged every chunk (a single span or set scan may charge more at once) */
        ck_assert_msg(meter_calls >= 20, "%s: %llu charges", runaways[i],
                      (unsigned long long)meter_calls);
        lua_pop(L, 1);
    }
    lua_close(L);
}
END_TEST

/* Ordinary work is charged too, and short calls pay once they add up to a chunk. */
START_TEST(ordinary_work_is_charged)
{
    lua_State *L = new_state();
    run_lua(L, "A = string.rep('a', 100000)", 0);
    meter_reset(0);
    run_lua(L, "assert(mystring.find(A, '%d') == nil)", 0);
    ck_assert_uint_ge(meter_units, 50000 - DC_PAT_CHUNK);
    meter_reset(0);
    run_lua(L, "assert(select(2, mystring.gsub(A, 'a', 'b')) == 100000)", 0);
    ck_assert_uint_ge(meter_units, 100000);
    meter_reset(0);
    run_lua(L, "for i = 1, 5000 do mystring.find('abc', 'c') end", 0);
    ck_assert_uint_ge(meter_units, 5000 * 8 - DC_PAT_CHUNK);
    ck_assert_uint_le(meter_calls, meter_units / DC_PAT_CHUNK + 1);
    lua_close(L);
}
END_TEST


/* ---- through the sandbox ---- */

static dc_engine *traced(const char *plugins, tu_trace *t)
{
    char json[8192];
    snprintf(json, sizeof json,
             "{\"general\":{\"status\":\"enabled\",\"skip_domains\":[]},"
             "\"domains\":[{\"name\":\"*\",\"plugins\":[%s]}]}", plugins);
    dc_bundle *b = tu_bundle(json);
    dc_engine *e = tu_engine(b);
    dc_bundle_unref(b);
    memset(t, 0, sizeof *t);
    dc_engine_on_run(e, tu_trace_record, t);
    return e;
}

#define HOG(code)                                                                        \
    "{\"name\":\"hog\",\"phase\":\"access\",\"code\":\"" code "\","                        \
    "\"quota\":{\"instructions\":200000,\"time_ms\":50}},"                                 \
    "{\"name\":\"after\",\"phase\":\"access\",\"code\":\"ngx.header['X-After'] = 'yes'\"}"

/* Fails at once unless the sandbox's string functions are these (LuaJIT's builtins would
 * spin in C for ever on the runaway patterns below). The metered ones charge the quota for
 * the bytes they scan, the builtins charge nothing: 64 scans of 128 KiB under a quota of
 * 100,000 instructions trip with the first and end normally with the second. */
static void require_metered_functions(void)
{
    static const char *const fns[] = {"find(s, '%d')", "match(s, '%d')", "gmatch(s, '%d')",
                                      "gsub(s, '%d', '')"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        char plugin[512];
        snprintf(plugin, sizeof plugin,
                 "{\"name\":\"probe\",\"phase\":\"access\",\"code\":\""
                 "local s = 'a' for i = 1, 17 do s = s .. s end "
                 "for i = 1, 64 do local r = string.%s if type(r) == 'function' then r() end end\","
                 "\"quota\":{\"instructions\":100000}}", fns[i]);
        tu_trace t;
        dc_engine *e = traced(plugin, &t);
        dc_sim_free(tu_request(e, "a.com", "/"));
        ck_assert_msg(strncmp(t.text, "probe:quota:", 12) == 0,
                      "string.%s is not metered (%s): env.c must call dc_api_open_strpat",
                      fns[i], t.text);
        dc_engine_free(e);
    }
}

/* The hog trips, the next plugin runs (X-After), and the hog's header `absent` is not set. */
static void expect_trip(const char *plugins, const char *absent)
{
    require_metered_functions();
    tu_trace t;
    dc_engine *e = traced(plugins, &t);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_msg(strcmp(t.text, "hog:quota:instructions after:ok") == 0 ||
                      strcmp(t.text, "hog:quota:time after:ok") == 0,
                  "runs: %s (is dc_api_open_strpat called from env.c?)", t.text);
    ck_assert_str_eq(dc_sim_header(s, "X-After"), "yes");
    if (absent)
        ck_assert_ptr_null(dc_sim_header(s, absent));
    dc_sim_free(s);
    dc_engine_free(e);
}

START_TEST(sandbox_trips_a_runaway_pattern)
{
    expect_trip(HOG("string.find(string.rep('a', 20000), '.-.-.-.-b') "
                    "ngx.header['X-Hog'] = '1'"),
                "X-Hog");
}
END_TEST

START_TEST(sandbox_trip_survives_pcall_and_method_calls)
{
    expect_trip(HOG("for i = 1, 5 do pcall(function() return ('a'):rep(20000):match("
                    "'(.-)(.-)(.-)%1%2%3b') end) end ngx.header['X-Escaped'] = '1'"),
                "X-Escaped");
    expect_trip(HOG("local s = string.rep('ab ', 20000) "
                    "for i = 1, 3 do s:gsub('%w+', function(w) return w:upper() end) end "
                    "s:gsub('a-a-a-a-c', 'x') ngx.header['X-Hog'] = '1'"),
                "X-Hog");
}
END_TEST

START_TEST(sandbox_plugins_use_patterns_normally)
{
    tu_trace t;
    dc_engine *e = traced(
        "{\"name\":\"p\",\"phase\":\"access\",\"code\":\""
        "local k, v = ('key = value'):match('^(%w+)%s*=%s*(%w+)$') "
        "local n = 0 for w in string.gmatch('one two three', '%a+') do n = n + 1 end "
        "local g = string.gsub('a-b-c', '%-', function(c) return '+' end) "
        "local i, j = string.find('hello world', 'o w', 1, true) "
        "ngx.header['X-Res'] = k .. ':' .. v .. ':' .. n .. ':' .. g .. ':' .. i .. j\"}",
        &t);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(t.text, "p:ok");
    ck_assert_str_eq(dc_sim_header(s, "X-Res"), "key:value:3:a+b+c:57");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

static Suite *strpat_suite(void)
{
    Suite *s = suite_create("strpat");
    TCase *diff = tcase_create("differential");
    tcase_set_timeout(diff, 120);
    tcase_add_test(diff, same_as_luajit_on_fixed_cases);
    tcase_add_loop_test(diff, same_as_luajit_on_random_patterns, 0, 3);
    tcase_add_test(diff, malformed_patterns_raise_luajit_messages);
    suite_add_tcase(s, diff);

    TCase *meter = tcase_create("meter");
    tcase_set_timeout(meter, 60);
    tcase_add_test(meter, runaway_patterns_are_charged_until_they_trip);
    tcase_add_test(meter, ordinary_work_is_charged);
    suite_add_tcase(s, meter);

    TCase *sbx = tcase_create("sandbox");
    tcase_set_timeout(sbx, 20);
    tcase_add_test(sbx, sandbox_trips_a_runaway_pattern);
    tcase_add_test(sbx, sandbox_trip_survives_pcall_and_method_calls);
    tcase_add_test(sbx, sandbox_plugins_use_patterns_normally);
    suite_add_tcase(s, sbx);
    return s;
}

int main(void)
{
    return tu_run_suite(strpat_suite());
}
