/* test_cdepth.c - the bound on nested C-to-Lua calls (every path from a C function back into
 * plugin code ends in a Lua error past the bound, never in a crash, under pcall too, on the
 * main thread and on a thread with a small stack, and the bound does not shrink after
 * overflows), the metered xpcall handler, tostring's opaque per-state ids, and the API's
 * metatables hidden from plugin code in every phase.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct outcome {
    char result[32];
    char msg[512];
    char header[512]; /* X-E of the response, "" when absent */
    char header2[512]; /* X-F */
} outcome;

/* Runs code as one plugin of phase for `requests` requests; o holds the last one's outcome.
 * The run is on the heap: small_thread_stack runs this on a thread with a small stack. */
static void run_phase_code(const char *phase, const char *code, int requests, outcome *o)
{
    /* the ceilings: a sanitizer build on a busy machine is slow */
    static const dc_quota ceil = {.instructions = 10000000, .time_ms = 500};
    tu_run *r = malloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    tu_run_plugins(r, &(tu_run_opts){.host = "a.com", .seed = 42, .plugin_quota = &ceil,
                                     .requests = requests},
                   (const char *const[]){phase, code, NULL});
    memset(o, 0, sizeof *o);
    if (r->result != (dc_result)-1) {
        snprintf(o->result, sizeof o->result, "%s", dc_result_name(r->result));
        snprintf(o->msg, sizeof o->msg, "%.*s", (int)sizeof o->msg - 1, r->msg);
    }
    const char *h = dc_sim_header(r->sim, "X-E");
    snprintf(o->header, sizeof o->header, "%s", h ? h : "");
    h = dc_sim_header(r->sim, "X-F");
    snprintf(o->header2, sizeof o->header2, "%s", h ? h : "");
    dc_sim_free(r->sim);
    free(r);
}

static void run_code(const char *code, int requests, outcome *o)
{
    run_phase_code("access", code, requests, o);
}

/* Each snippet defines `go`, a function whose call recurses through C functions. */
static const char *const paths[] = {
    /* gsub, function replacement */
    "local function go() return (string.gsub('a', 'a', go)) end",
    /* gsub, table replacement whose __index calls gsub (lua_gettable in C) */
    "local t = {} setmetatable(t, {__index = function(_, k) return (k:gsub('.', t)) end})\n"
    "local function go() return (('a'):gsub('.', t)) end",
    /* __tostring from string.format */
    "local t = setmetatable({}, {__tostring = function(x) return ('%s'):format(x) end})\n"
    "local function go() return string.format('%s', t) end",
    /* __tostring from tostring */
    "local t = setmetatable({}, {__tostring = function(x) return tostring(x) end})\n"
    "local function go() return tostring(t) end",
    /* __tostring from print */
    "local t = setmetatable({}, {__tostring = function(x) print(x) return 'x' end})\n"
    "local function go() print(t) end",
    /* __tostring from ngx.log */
    "local t = setmetatable({}, {__tostring = function(x) ngx.log(ngx.ERR, x) return 'x' end})\n"
    "local function go() ngx.log(ngx.ERR, t) end",
    /* table.sort comparator */
    "local function cmp(a, b) table.sort({3, 2, 1}, cmp) return a < b end\n"
    "local function go() table.sort({3, 2, 1}, cmp) end",
    /* table.sort's __lt */
    "local mt = {} local function go() table.sort({setmetatable({}, mt), setmetatable({}, mt)}) end\n"
    "mt.__lt = function() go() return false end",
    /* os.time's lua_getfield through __index */
    "local t = {} setmetatable(t, {__index = function() return os.time(t) end})\n"
    "local function go() return os.time(t) end",
    /* nested coroutine.resume */
    "local function go() local ok, e = coroutine.resume(coroutine.create(go))\n"
    "  if not ok then error(e, 0) end end",
    /* nested coroutine.wrap */
    "local function go() return coroutine.wrap(go)() end",
    /* ngx.re.gsub and ngx.re.sub callbacks */
    "local function go() return (ngx.re.gsub('a', 'a', go)) end",
    "local function go() return (ngx.re.sub('a', 'a', go)) end",
    /* (ngx.re reads and writes ctx.pos raw: no path through ctx's metamethods, see
     * tests/abuse/re_ctx_pos_hostile.lua) */
};
#define NPATHS ((int)(sizeof paths / sizeof paths[0]))

/* Every path ends with a Lua error naming the overflow: result=error, no crash. */
START_TEST(path_errors)
{
    char code[2048];
    snprintf(code, sizeof code, "%s\ngo()\nngx.header['X-E'] = 'returned'", paths[_i]);
    outcome o;
    run_code(code, 1, &o);
    ck_assert_msg(strcmp(o.result, "error") == 0, "path %d: result %s (%s)", _i, o.result, o.msg);
    ck_assert_msg(strstr(o.msg, "C stack overflow") != NULL, "path %d: %s", _i, o.msg);
    ck_assert_str_eq(o.header, "");
}
END_TEST

/* Under pcall the overflow is an ordinary error: caught, the call goes on, and after many
 * overflows legitimate nesting still works (nothing stays counted after the unwinding). */
START_TEST(path_under_pcall)
{
    char code[4096];
    snprintf(code, sizeof code,
             "%s\n"
             "local err\n"
             "for i = 1, 3 do local ok, e = pcall(go) assert(not ok) err = e end\n"
             "ngx.header['X-E'] = tostring(err)\n"
             "local function nest(d) if d == 0 then return 'x' end\n"
             "  return (string.gsub('a', 'a', function() return nest(d - 1) end)) end\n"
             "ngx.header['X-F'] = nest(20)",
             paths[_i]);
    outcome o;
    run_code(code, 2, &o);
    ck_assert_msg(strcmp(o.result, "ok") == 0, "path %d: result %s (%s)", _i, o.result, o.msg);
    ck_assert_msg(strstr(o.header, "C stack overflow") != NULL, "path %d: %s", _i, o.header);
    ck_assert_str_eq(o.header2, "x");
}
END_TEST

/* Reasonable nesting through every kind of C callback stays allowed. */
START_TEST(legit_nesting)
{
    outcome o;
    run_code("local function f(d) if d == 0 then return 'x' end\n"
             "  local t = setmetatable({}, {__tostring = function() return f(d - 1) end})\n"
             "  local s = string.format('%s', t)\n"
             "  local r = ngx.re.gsub('a', 'a', function() return s end)\n"
             "  local out\n"
             "  table.sort({2, 1}, function(a, b) out = out or r return a < b end)\n"
             "  return out end\n"
             "ngx.header['X-E'] = f(25)",
             1, &o);
    ck_assert_msg(strcmp(o.result, "ok") == 0, "%s (%s)", o.result, o.msg);
    ck_assert_str_eq(o.header, "x");
}
END_TEST

/* ---- a thread with a small stack: the bound adapts to the thread ---- */
typedef struct thread_job {
    const char *code;
    outcome o;
} thread_job;

static void *thread_run(void *arg)
{
    thread_job *j = arg;
    run_code(j->code, 1, &j->o);
    return NULL;
}

START_TEST(small_thread_stack)
{
    static const size_t sizes[] = {256 * 1024, 1024 * 1024};
    char code[2048];
    snprintf(code, sizeof code, "%s\ngo()", paths[0]);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        thread_job j;
        memset(&j, 0, sizeof j);
        j.code = code;
        pthread_attr_t a;
        pthread_attr_init(&a);
        ck_assert_int_eq(pthread_attr_setstacksize(&a, sizes[k]), 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, &a, thread_run, &j), 0);
        pthread_join(t, NULL);
        pthread_attr_destroy(&a);
        ck_assert_msg(strcmp(j.o.result, "error") == 0, "stack %zu: %s (%s)", sizes[k],
                      j.o.result, j.o.msg);
        ck_assert_msg(strstr(j.o.msg, "C stack overflow") != NULL, "%s", j.o.msg);
    }
}
END_TEST

/* ---- xpcall ---- */

START_TEST(xpcall_handler_metered)
{
    static const char *const codes[] = {
        "xpcall(function() while true do end end, function() while true do end end)",
        "xpcall(function() error('x') end, function() while true do end end)",
        "coroutine.wrap(function() xpcall(function() while true do end end,"
        " function() while true do end end) end)()",
        "for i = 1, 3 do pcall(xpcall, function() while true do end end, function() return 1 end)"
        " end",
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        outcome o;
        char code[512];
        snprintf(code, sizeof code, "%s\nngx.header['X-E'] = 'escaped'", codes[i]);
        run_code(code, 1, &o);
        ck_assert_msg(strncmp(o.result, "quota:", 6) == 0, "case %zu: %s (%s)", i, o.result,
                      o.msg);
        ck_assert_str_eq(o.header, "");
    }
}
END_TEST

START_TEST(xpcall_semantics)
{
    outcome o;
    run_code("local ok, a, b = xpcall(function(x, y) return x + y, 'z' end, error, 1, 2)\n"
             "local ok2, m = xpcall(function() error('boom', 0) end,"
             " function(e) return 'h:' .. e end)\n"
             "ngx.header['X-E'] = tostring(ok) .. a .. b .. tostring(ok2) .. m",
             1, &o);
    ck_assert_msg(strcmp(o.result, "ok") == 0, "%s (%s)", o.result, o.msg);
    ck_assert_str_eq(o.header, "true3zfalseh:boom");
}
END_TEST

/* ---- tostring ---- */

/* Ids: opaque, small, stable for an object within the state (across requests too), distinct
 * between objects, the same through string.format. */
START_TEST(tostring_ids)
{
    outcome o;
    run_code("KEEP = KEEP or {}\n"
             "local k = tostring(KEEP)\n"
             "local t, f = {}, function() end\n"
             "assert(tostring(t) ~= tostring(KEEP) and tostring(f) ~= tostring(t))\n"
             "assert(tostring(t) == tostring(t) and ('%s'):format(t) == tostring(t))\n"
             "FIRST = FIRST or tostring(KEEP)\n"
             "assert(FIRST == tostring(KEEP), 'id changed between requests')\n"
             "ngx.header['X-E'] = tostring(KEEP)\n"
             "ngx.header['X-F'] = tostring(coroutine.create(f)) .. ' ' .. tostring(print)",
             3, &o);
    ck_assert_msg(strcmp(o.result, "ok") == 0, "%s (%s)", o.result, o.msg);
    ck_assert_str_eq(o.header, "table: 0x00000001");
    unsigned a, b;
    ck_assert_msg(sscanf(o.header2, "thread: 0x%x function: 0x%x", &a, &b) == 2, "%s",
                  o.header2);
    ck_assert_uint_lt(a, 64);
    ck_assert_uint_lt(b, 64);
}
END_TEST

START_TEST(format_p_refused)
{
    outcome o;
    run_code("string.format('%-8p', 'x')", 1, &o);
    ck_assert_str_eq(o.result, "error");
    ck_assert_msg(strstr(o.msg, "invalid option '%p'") != NULL, "%s", o.msg);
    run_code("ngx.header['X-E'] = string.format('%%p %5.2f %s', 1, 'p')", 1, &o);
    ck_assert_str_eq(o.result, "ok");
    ck_assert_str_eq(o.header, "%p  1.00 p");
}
END_TEST

/* ---- metatables ---- */

/* In every phase, no value the API hands out shows a metatable, and none can be replaced;
 * the plugin's own metatables stay visible. */
START_TEST(meta_hidden_every_phase)
{
    static const char *const phases[] = {"rewrite", "access", "content", "header_filter",
                                         "body_filter", "log"};
    static const char code[] =
        "local seen, bad = 0, {}\n"
        "local function check(name, get)\n"
        "  local ok, v = pcall(get)\n"
        "  if not ok or v == nil then return end\n"
        "  seen = seen + 1\n"
        "  if type(getmetatable(v)) == 'table' then bad[#bad + 1] = name end\n"
        "  if type(v) == 'table' and getmetatable(v) ~= nil and pcall(setmetatable, v, {}) then\n"
        "    bad[#bad + 1] = name .. '(replaced)' end\n"
        "end\n"
        "check('ngx', function() return ngx end)\n"
        "for _, k in ipairs({'var', 'header', 'arg', 'ctx', 'req', 're', 'location'}) do\n"
        "  check('ngx.' .. k, function() return ngx[k] end) end\n"
        "check('headers', function() return ngx.req.get_headers() end)\n"
        "check('uri_args', function() return ngx.req.get_uri_args() end)\n"
        "check('gmatch', function() return ngx.re.gmatch('a', 'a') end)\n"
        "check('match', function() return ngx.re.match('a', '(a)') end)\n"
        "check('json', function() return json end)\n"
        "check('json.null', function() return json.null end)\n"
        "check('decoded', function() return json.decode('{\"a\":[1]}') end)\n"
        "for _, k in ipairs({'string', 'table', 'math', 'os', 'coroutine', 'bit', '_G'}) do\n"
        "  check(k, function() return _G[k] end) end\n"
        "check('a string', function() return '' end)\n"
        "local mine = {}\n"
        "assert(getmetatable(setmetatable({}, mine)) == mine, 'own metatable hidden')\n"
        "ngx.log(ngx.ERR, 'seen=', seen, ' bad=', table.concat(bad, ','))\n"
        "if #bad > 0 then error('exposed: ' .. table.concat(bad, ','), 0) end\n"
        "if seen < 15 then error('only ' .. seen .. ' values checked', 0) end\n";
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        outcome o;
        run_phase_code(phases[i], code, 1, &o);
        ck_assert_msg(strcmp(o.result, "ok") == 0, "%s: %s (%s)", phases[i], o.result, o.msg);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cdepth");
    TCase *tc = tcase_create("cdepth");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, path_errors, 0, NPATHS);
    tcase_add_loop_test(tc, path_under_pcall, 0, NPATHS);
    tcase_add_test(tc, legit_nesting);
    tcase_add_test(tc, small_thread_stack);
    tcase_add_test(tc, xpcall_handler_metered);
    tcase_add_test(tc, xpcall_semantics);
    tcase_add_test(tc, tostring_ids);
    tcase_add_test(tc, format_p_refused);
    tcase_add_test(tc, meta_hidden_every_phase);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
