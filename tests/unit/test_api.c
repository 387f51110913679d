/* test_api.c - the request-facing plugin API end to end: plugin code runs in the real
 * sandbox on the simulated request. ngx.say/print/flush/exit/redirect, ngx.var, ngx.header,
 * ngx.status, ngx.req.*, ngx.ctx, ngx.arg, ngx.log/print, time, constants, and the name list
 * of api_table.h against what the environment holds. Codecs, json and ngx.re: test_api_lib.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_table.h"
#include "api_util.h"
#include "testutil.h"

/* ---- helper: a bundle of (phase, code) plugins for every host, run once ---- */
typedef tu_run run;

/* pc: phase, code, phase, code, ..., NULL. Plugins are named p1, p2, ... */
static void run_req(run *r, const char *uri, const char *const *hdrs, size_t nh,
                    const char *upstream, const char *const *pc)
{
    tu_run_plugins(r, &(tu_run_opts){.host = "api.test", .uri = uri, .headers = hdrs,
                                     .nheaders = nh, .upstream = upstream, .seed = 42},
                   pc);
}

static const char *body(run *r)
{
    return tu_run_body(r);
}

#define RUN(r, ...) run_req((r), NULL, NULL, 0, NULL, (const char *const[]){__VA_ARGS__, NULL})
#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, \
                                         "unexpected \"%s\" in:\n%s", (needle), (hay))
/* Every plugin ran ok (no error, no trip). */
#define ALL_OK(r) do { HASNT((r)->trace, ":error"); HASNT((r)->trace, ":quota"); } while (0)

/* ---- output ---- */
START_TEST(say_and_print_write_the_body)
{
    run r;
    RUN(&r, "content", "local ok = ngx.say('a', 1, nil, true, false, {'x', {'y', 2}}, 1.5)\n"
                       "ngx.print('[', ok, ']', ngx.flush())");
    ALL_OK(&r);
    ck_assert_str_eq(body(&r), "a1niltruefalsexy21.5\n[1]1");
    ck_assert_int_eq(dc_sim_status(r.sim), 200);
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(say_refuses_bad_arguments)
{
    run r;
    RUN(&r, "content", "ngx.say('x', function() end)", "content", "ngx.print({a = 1})",
        "content", "ngx.say(ngx.ctx)");
    HAS(r.trace, "content:p1:error:");
    HAS(r.trace, "bad argument #2 to 'say' (string, number, boolean, nil, or array table "
                 "expected, got function)");
    HAS(r.trace, "bad argument #1 to 'print' (non-array table found)");
    HAS(r.trace, "content:p3:ok");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(say_is_disabled_in_filters)
{
    run r;
    RUN(&r, "header_filter", "ngx.say('x')", "log", "ngx.print('x')");
    HAS(r.trace, "API disabled in the context of header_filter");
    HAS(r.trace, "API disabled in the context of log");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(exit_ends_the_request_in_access)
{
    run r;
    RUN(&r, "access", "ngx.exit(ngx.HTTP_FORBIDDEN) error('not reached')",
        "content", "ngx.say('not reached')", "log", "ngx.exit(200)");
    HAS(r.trace, "access:p1:ok:ngx.exit(403)");
    HASNT(r.trace, "content:p2");
    HAS(r.trace, "log:p3:error:");
    HAS(r.trace, "API disabled in the context of log");
    ck_assert_int_eq(dc_sim_status(r.sim), 403);
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(exit_survives_pcall_and_wants_a_number)
{
    run r;
    RUN(&r, "access", "pcall(ngx.exit, 401) error('not reached')");
    ck_assert_int_eq(dc_sim_status(r.sim), 401);
    dc_sim_free(r.sim);
    RUN(&r, "access", "ngx.exit('x')");
    HAS(r.trace, "access:p1:error:");
    HAS(r.trace, "bad argument #1 to 'exit'");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(redirect_sets_location)
{
    run r;
    RUN(&r, "rewrite", "ngx.redirect('/new')");
    ck_assert_int_eq(dc_sim_status(r.sim), 302);
    ck_assert_str_eq(dc_sim_header(r.sim, "Location"), "/new");
    dc_sim_free(r.sim);
    RUN(&r, "access", "return ngx.redirect('https://x.test/', ngx.HTTP_MOVED_PERMANENTLY)");
    ck_assert_int_eq(dc_sim_status(r.sim), 301);
    ck_assert_str_eq(dc_sim_header(r.sim, "Location"), "https://x.test/");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(redirect_refuses_bad_status_and_unsafe_uri)
{
    run r;
    RUN(&r, "access", "ngx.redirect('/a', 200)", "access", "ngx.redirect('/a\\r\\nX-Evil: 1')",
        "header_filter", "ngx.redirect('/a')");
    HAS(r.trace, "only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, "
                 "ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and "
                 "ngx.HTTP_TEMPORARY_REDIRECT are allowed");
    HAS(r.trace, "unsafe byte \"0x0d\" in redirect uri \"/a\\x0d\\x0aX-Evil: 1\"");
    HAS(r.trace, "API disabled in the context of header_filter");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Evil"));
    ck_assert_int_eq(dc_sim_status(r.sim), 200);
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.var ---- */
START_TEST(var_reads_and_writes)
{
    run r;
    const char *h[] = {"User-Agent: ua/1", "Cookie: a=1; superstition=token"};
    run_req(&r, "/p?token=tok&x=1", h, 2, NULL, (const char *const[]){
        "content", "ngx.say(ngx.var.arg_token, ' ', ngx.var.cookie_superstition, ' ',\n"
                   "  ngx.var.HTTP_USER_AGENT, ' ', ngx.var.uri, ' ', tostring(ngx.var.nope),\n"
                   "  ' ', tostring(ngx.var[1]))\n"
                   "ngx.var.args = 'a=2' ngx.say(ngx.var.args, ' ', ngx.var.arg_a)",
        "content", "ngx.var.uri = '/x'",
        "content", "ngx.var[{}] = 1", NULL});
    ck_assert_str_eq(body(&r), "tok token ua/1 /p nil nil\na=2 2\n");
    HAS(r.trace, "content:p2:error:");
    HAS(r.trace, "variable \"uri\" not changeable");
    HAS(r.trace, "bad variable name");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.header, ngx.status ---- */
START_TEST(header_set_get_and_remove)
{
    run r;
    RUN(&r, "access", "ngx.header.content_type = 'text/html'\n"
                      "ngx.header['X-Multi'] = {'a', 2}\n"
                      "ngx.header.x_num = 7 ngx.header.x_gone = 'y' ngx.header.X_GONE = nil\n"
                      "ngx.header['Set-Cookie'] = {'superstition=token'}",
        "header_filter",
        "local m = ngx.header.x_multi\n"
        "assert(type(m) == 'table' and m[1] == 'a' and m[2] == '2', 'multi')\n"
        "assert(ngx.header['x-num'] == '7' and ngx.header.X_GONE == nil, 'one')\n"
        "assert(ngx.header['Content-Type'] == 'text/html', 'ct')\n"
        "ngx.header['X-Inject'] = 'a\\r\\nX-Evil: 1' ngx.header['Bad\\nName'] = 1");
    ALL_OK(&r);
    ck_assert_str_eq(dc_sim_header(r.sim, "Content-Type"), "text/html");
    ck_assert_int_eq(dc_sim_header_count(r.sim, "X-Multi"), 2);
    ck_assert_str_eq(dc_sim_header(r.sim, "X-Num"), "7");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Gone"));
    ck_assert_str_eq(dc_sim_header(r.sim, "Set-Cookie"), "superstition=token");
    ck_assert_str_eq(dc_sim_header(r.sim, "X-Inject"), "a%0D%0AX-Evil: 1");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Evil"));
    ck_assert_str_eq(dc_sim_header(r.sim, "Bad%0AName"), "1");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(header_value_escape_count_matches_bytes)
{
    /* the count of bytes a header value escapes (8 at a time while none is a control byte)
     * against the rule byte by byte: every byte value, at every place of values that span
     * one word, several and a tail, with a tab (kept) before it or not */
    char v[40];
    for (size_t len = 1; len <= sizeof v; len += 3) {
        for (size_t at = 0; at < len; at++) {
            for (int c = 0; c < 256; c++) {
                for (int tab = 0; tab < 2; tab++) {
                    memset(v, 'a' + (int)(len % 26), len);
                    if (tab && at > 0)
                        v[at - 1] = '\t';
                    v[at] = (char)c;
                    size_t want = (c < 0x20 && c != '\t') || c == 0x7f;
                    ck_assert_uint_eq(dc_api_escape_count(v, len, DC_ESC_HEADER_VALUE), want);
                }
            }
        }
    }
    /* two in one value, far apart */
    memset(v, 'x', sizeof v);
    v[3] = '\r';
    v[37] = 0x7f;
    ck_assert_uint_eq(dc_api_escape_count(v, sizeof v, DC_ESC_HEADER_VALUE), 2);
}
END_TEST

START_TEST(header_name_work_matches_the_rule_for_every_byte)
{
    /* a name read in place (no work) must be one that dc_api_header_name would leave as it
     * is: every byte value, at every place of names that span the 4-byte steps and a tail */
    char n[23];
    for (size_t len = 1; len <= sizeof n; len += 2) {
        for (size_t at = 0; at < len; at++) {
            for (int c = 0; c < 256; c++) {
                memset(n, 'A' + (int)(len % 26), len);
                n[at] = (char)c;
                int want = c == '_' || dc_api_escape_count(n + at, 1, DC_ESC_HEADER_NAME) > 0;
                ck_assert_int_eq(dc_api_header_name_work(n, len), want);
            }
        }
    }
    ck_assert_int_eq(dc_api_header_name_work("Access-Control-Allow-Origin", 27), 0);
    ck_assert_int_eq(dc_api_header_name_work("", 0), 0);
}
END_TEST

START_TEST(header_and_status_after_headers_sent_log_an_error)
{
    run r;
    RUN(&r, "content", "ngx.say('hi') ngx.header.x_late = '1' ngx.status = 500 ngx.say('still')",
        "body_filter", "ngx.header.x_later = '1' ngx.status = 404",
        "header_filter", "ngx.header.x_bad = function() end");
    HAS(r.trace, "content:p1:ok");
    HAS(r.trace, "body_filter:p2:ok");
    HAS(r.trace, "header_filter:p3:error:");
    HAS(r.trace, "bad header value: string, number, boolean or table expected, got function");
    const char *log = dc_sim_log(r.sim);
    HAS(log, "error [dynacode] plugin \"p1\": attempt to set ngx.header.HEADER after sending "
             "out response headers");
    HAS(log, "error [dynacode] plugin \"p1\": attempt to set ngx.status after sending out "
             "response headers");
    HAS(log, "error [dynacode] plugin \"p2\": attempt to set ngx.header.HEADER");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Late"));
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Later"));
    ck_assert_int_eq(dc_sim_status(r.sim), 200);
    ck_assert_str_eq(body(&r), "hi\nstill\n");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(status_get_and_set)
{
    run r;
    RUN(&r, "content", "assert(ngx.status == 0) ngx.status = 201 ngx.say(ngx.status)",
        "header_filter", "assert(ngx.status == 201, 'status ' .. ngx.status) ngx.status = 202",
        "log", "assert(ngx.status == 202) ngx.status = 'x'");
    HAS(r.trace, "header_filter:p2:ok");
    HAS(r.trace, "log:p3:error:");
    HAS(r.trace, "ngx.status must be a number, got string");
    ck_assert_int_eq(dc_sim_status(r.sim), 202);
    dc_sim_free(r.sim);
    RUN(&r, "access", "ngx.status = 99");
    HAS(dc_sim_log(r.sim), "invalid HTTP status code 99");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.req ---- */
START_TEST(req_get_headers)
{
    run r;
    const char *h[] = {"User-Agent: ua", "X-A: 1", "x-a: 2", "Accept: */*"};
    run_req(&r, "/", h, 4, NULL, (const char *const[]){"content",
        "local h = ngx.req.get_headers()\n"
        "ngx.say(h['user-agent'], h.user_agent, h['User-Agent'], h.USER_AGENT, #h['x-a'],\n"
        "        h['x-a'][1], h['x-a'][2], tostring(h.missing), tostring(h[1]))\n"
        "local raw = ngx.req.get_headers(nil, true)\n"
        "ngx.say(raw['User-Agent'], tostring(raw['user-agent']), tostring(getmetatable(raw)))\n"
        "local t, more = ngx.req.get_headers(2)\n"
        "local n = 0 for _ in pairs(t) do n = n + 1 end\n"
        "ngx.say(n, more, ' ', select('#', ngx.req.get_headers(5)))\n"
        "ngx.say(ngx.req.get_method())", NULL});
    ALL_OK(&r);
    ck_assert_str_eq(body(&r), "uauauaua212nilnil\nuanilnil\n2truncated 1\nGET\n");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(req_set_and_clear_header_reach_later_phases)
{
    run r;
    const char *h[] = {"X-Drop: 1", "X-Keep: k"};
    run_req(&r, "/", h, 2, NULL, (const char *const[]){
        "access", "ngx.req.set_header('X-Foo', 'bar') ngx.req.set_header('X-Two', {'1', 2})\n"
                  "ngx.req.clear_header('x-drop') ngx.req.set_header('X-Keep', nil)",
        "content", "local h = ngx.req.get_headers()\n"
                   "ngx.say(ngx.var.http_x_foo, ' ', #h['x-two'], ' ', tostring(h['x-drop']),"
                   " ' ', tostring(h['x-keep']))",
        "content", "ngx.req.set_header()", NULL});
    ck_assert_str_eq(body(&r), "bar 2 nil nil\n");
    HAS(r.trace, "content:p3:error:");
    HAS(r.trace, "bad 'name' argument: string expected, got nil");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(req_uri_args)
{
    run r;
    run_req(&r, "/?a=1&a=2&b&c=%20x+y&=skip&&d=", NULL, 0, NULL, (const char *const[]){
        "content", "local a = ngx.req.get_uri_args()\n"
                   "ngx.say(#a.a, a.a[1], a.a[2], ' ', tostring(a.b), ' [', a.c, '] [', a.d, ']')\n"
                   "local _, more = ngx.req.get_uri_args(1) ngx.say(more)\n"
                   "ngx.req.set_uri_args({x = 'a b'}) ngx.say(ngx.var.args)\n"
                   "ngx.req.set_uri_args('p=a b&q=\\1') ngx.say(ngx.var.args)\n"
                   "ngx.req.set_uri_args(5) ngx.say(ngx.var.args)",
        "content", "ngx.req.set_uri_args(true)", NULL});
    ck_assert_str_eq(body(&r), "212 true [ x y] []\ntruncated\nx=a%20b\np=a%20b&q=%01\n5\n");
    HAS(r.trace, "string, number, or table expected, but got boolean");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(req_set_uri_rewrite_only)
{
    run r;
    RUN(&r, "rewrite", "ngx.req.set_uri('/x')", "access", "ngx.req.set_uri('/x')",
        "content", "ngx.say(ngx.var.uri)");
    HAS(r.trace, "rewrite:p1:ok");
    ck_assert_str_eq(body(&r), "/x\n");
    HAS(r.trace, "access:p2:error:");
    HAS(r.trace, "API disabled in the context of access");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.ctx ---- */
START_TEST(ctx_is_shared_across_plugins_and_phases)
{
    run r;
    RUN(&r, "rewrite", "ngx.ctx.user = {name = 'bob', n = 3, list = {1, 2, 'x'}, ok = true}\n"
                       "ngx.ctx[5] = 'five' ngx.ctx.null = json.null",
        "access", "local c = ngx.ctx assert(c == ngx.ctx) c.user.n = c.user.n + 1",
        "content", "local u = ngx.ctx.user\n"
                   "ngx.say(u.name, u.n, #u.list, u.list[3], tostring(u.ok), ngx.ctx[5],"
                   " tostring(ngx.ctx.null == json.null))\n"
                   "ngx.ctx = {replaced = 1}",
        "log", "assert(ngx.ctx.replaced == 1 and ngx.ctx.user == nil, 'replaced')");
    ALL_OK(&r);
    ck_assert_str_eq(body(&r), "bob43xtruefivetrue\n");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(ctx_refuses_what_is_not_plain)
{
    run r;
    RUN(&r, "rewrite", "ngx.ctx.a = 1",
        "rewrite", "ngx.ctx.b = {c = {f = print}}",
        "rewrite", "local t = {} t.self = t ngx.ctx.t = t",
        "rewrite", "local t = ngx.ctx for i = 1, 16 do t.n = {} t = t.n end",
        "rewrite", "ngx.ctx.big = string.rep('x', 70000)",
        "rewrite", "ngx.ctx[true] = 1",
        "rewrite", "ngx.ctx = 5",
        "content", "ngx.say(ngx.ctx.a, tostring(ngx.ctx.b))");
    HAS(r.trace, "rewrite:p1:ok");
    HAS(r.trace, "rewrite:p2:error:ngx.ctx holds only plain values (nil, boolean, number, "
                 "string, table): got function at ctx.b.c.f");
    HAS(r.trace, "rewrite:p3:error:ngx.ctx holds only plain values (nil, boolean, number, "
                 "string, table): got a cycle at ctx.t.self");
    HAS(r.trace, "rewrite:p4:error:ngx.ctx is nested too deeply (over 16 levels) at "
                 "ctx.n.n.n.n.n.n.n.n.n.n.n.n.n.n.n");
    HAS(r.trace, "rewrite:p5:error:ngx.ctx is too large");
    HAS(r.trace, "got a boolean key at ctx[boolean key]");
    HAS(r.trace, "ctx should be a table while getting a number");
    ck_assert_str_eq(body(&r), "1nil\n");  /* failed write-backs left the ctx as it was */
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(ctx_write_back_runs_no_metamethod)
{
    run r;
    RUN(&r, "access",
        "local mt = {__index = function() error('index') end,\n"
        "            __newindex = function() error('newindex') end,\n"
        "            __len = function() error('len') end, __tostring = function() error('ts') end}\n"
        "ngx.ctx.t = setmetatable({1, x = 2.5}, mt) ngx.ctx.n = 1e300 ngx.ctx[1.5] = -0.25",
        "content", "ngx.say(ngx.ctx.t[1], ngx.ctx.t.x, getmetatable(ngx.ctx.t) == nil,"
                   " ngx.ctx.n, ngx.ctx[1.5])");
    ALL_OK(&r);
    ck_assert_str_eq(body(&r), "12.5true1e+300-0.25\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.arg ---- */
START_TEST(arg_rewrites_the_body)
{
    run r;
    run_req(&r, "/", NULL, 0, "hello", (const char *const[]){
        "body_filter", "assert(ngx.arg[3] == nil)\n"
                       "ngx.arg[1] = string.upper(ngx.arg[1])",
        /* as in nginx: the print is one call, then an empty one with eof */
        "body_filter", "if ngx.arg[2] then ngx.arg[1] = {ngx.arg[1], '-', 1} end",
        "content", "ngx.print('hello') local x = ngx.arg[1]", NULL});
    HAS(r.trace, "body_filter:p1:ok");
    HAS(r.trace, "body_filter:p2:ok");
    HAS(r.trace, "content:p3:error:");
    HAS(r.trace, "API disabled in the context of content_by_lua* (ngx.arg)");
    ck_assert_str_eq(body(&r), "HELLO-1");
    dc_sim_free(r.sim);
    run_req(&r, "/", NULL, 0, "hello", (const char *const[]){
        "body_filter", "ngx.arg[1] = nil",
        "body_filter", "ngx.arg[1] = true",
        "access", "ngx.arg[1] = 'x'", NULL});
    ck_assert_str_eq(body(&r), "");
    HAS(r.trace, "body_filter:p2:error:");
    HAS(r.trace, "bad chunk data type: boolean");
    HAS(r.trace, "API disabled in the context of access");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.log, print ---- */
START_TEST(log_and_print)
{
    run r;
    RUN(&r, "log", "ngx.log(ngx.ERR, 'a', 1, nil, true, 2.5, json.null)\n"
                   "print('x', 'y', 3)\n"
                   "ngx.log(ngx.WARN, setmetatable({}, {__tostring = function() return 'T' end}))\n"
                   "ngx.log(ngx.INFO, string.rep('z', 5000))",
        "log", "ngx.log(ngx.ERR, {})", "log", "ngx.log(9, 'x')", "log", "ngx.log(ngx.ERR, print)");
    const char *log = dc_sim_log(r.sim);
    HAS(log, "error [dynacode] plugin \"p1\": a1niltrue2.5null\n");
    HAS(log, "notice [dynacode] plugin \"p1\": xy3\n");
    HAS(log, "warn [dynacode] plugin \"p1\": T\n");
    const char *z = strstr(log, "info [dynacode]");
    ck_assert_ptr_nonnull(z);
    const char *nl = strchr(z, '\n');
    ck_assert_int_eq(nl - z, 5 + 4096);  /* "info " then a line of 4 KiB ending in "..." */
    ck_assert(strncmp(nl - 4, "z...", 4) == 0);
    HAS(r.trace, "bad argument #2 to 'log' (string expected, got table)");
    HAS(r.trace, "bad log level");
    HAS(r.trace, "bad argument #2 to 'log' (string, number, boolean, or nil expected, got "
                 "function)");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- time, phase, worker, constants ---- */
START_TEST(time_phase_worker)
{
    run r;
    RUN(&r, "access", "assert(ngx.get_phase() == 'access')",
        "content",
        "local now, t = ngx.now(), ngx.time()\n"
        "assert(math.abs(now - os.time()) < 2 and t == math.floor(t) and t <= now + 1)\n"
        "assert(math.floor(now * 1000 + 0.5) / 1000 == now)\n"
        "assert(ngx.today() == os.date('%Y-%m-%d'), ngx.today())\n"
        "assert(ngx.worker.pid() > 0 and ngx.worker.id() == 0)\n"
        "ngx.say(ngx.http_time(1290079655), '|', ngx.http_time(0), '|', ngx.get_phase())",
        "header_filter", "assert(ngx.get_phase() == 'header_filter')",
        "body_filter", "assert(ngx.get_phase() == 'body_filter')",
        "log", "assert(ngx.get_phase() == 'log') ngx.http_time('x')");
    HAS(r.trace, "access:p1:ok");
    HAS(r.trace, "content:p2:ok");
    HAS(r.trace, "header_filter:p3:ok");
    HAS(r.trace, "body_filter:p4:ok");
    ck_assert_str_eq(body(&r), "Thu, 18 Nov 2010 11:27:35 GMT|Thu, 01 Jan 1970 00:00:00 GMT|"
                               "content\n");
    HAS(r.trace, "log:p5:error:");
    HAS(r.trace, "bad argument #1 to 'http_time'");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(constants)
{
    run r;
    RUN(&r, "content",
        "ngx.say(ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED, ' ',\n"
        "  ngx.HTTP_OK, ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_FORBIDDEN, ngx.HTTP_CLOSE,\n"
        "  ngx.HTTP_ILLEGAL, ngx.HTTP_INTERNAL_SERVER_ERROR, ngx.HTTP_SERVICE_UNAVAILABLE, ' ',\n"
        "  ngx.HTTP_GET, ngx.HTTP_POST, ngx.HTTP_OPTIONS, ngx.HTTP_TRACE, ' ',\n"
        "  ngx.STDERR, ngx.EMERG, ngx.ERR, ngx.NOTICE, ngx.DEBUG)");
    ALL_OK(&r);
    ck_assert_str_eq(body(&r), "0-1-2-4-5 200302403444451500503 2851232768 01468\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- api_table.h against the environment ---- */
#define NAME_STR_FN(path) "'" path "', "
#define NAME_STR_OWN(path) "'" path "', "
#define NAME_STR_GLOBAL(path) "'" path "', "
#define NAME_STR_LIB(path) /* "T.*": a library table, walked by test_walk.c */
#define NAME_STR(area, kind, path, field, fn, phases, allow) NAME_STR_##kind(path)
#define CONST_STR(name, value) "'" #name "', "

START_TEST(every_listed_name_exists_and_every_ngx_name_is_listed)
{
    run r;
    RUN(&r, "content",
        "local names = {" DC_API_TABLE(NAME_STR) "}\n"
        "local consts = {" DC_API_CONSTS(CONST_STR) "}\n"
        "local listed = {}\n"
        "for _, p in ipairs(names) do\n"
        "  local v = _G\n"
        "  for part in p:gmatch('[^.]+') do v = v[part] end\n"
        "  assert(v ~= nil or p == 'json.null', 'missing ' .. p)\n"
        "  listed[p] = true\n"
        "end\n"
        "for _, c in ipairs(consts) do\n"
        "  assert(type(ngx[c]) == 'number', 'missing ngx.' .. c) listed['ngx.' .. c] = true\n"
        "end\n"
        "local function walk(prefix, t)\n"
        "  for k, v in pairs(t) do\n"
        "    local p = prefix .. '.' .. k\n"
        "    if type(v) == 'table' and not listed[p] then walk(p, v)\n"
        "    else assert(listed[p], 'not listed in api_table.h: ' .. p) end\n"
        "  end\n"
        "end\n"
        "walk('ngx', ngx) walk('json', json)\n"
        "ngx.say(#names + #consts, ' ', collectgarbage('count'))");
    ALL_OK(&r);
    fprintf(stderr, "api names + constants, and KiB in use by the plugin state: %s", body(&r));
    dc_sim_free(r.sim);
}
END_TEST

/* The phases column of the table is what the functions enforce: each name restricted to some
 * phases is called in every phase, and refused exactly where the table says. */
static const struct {
    const char *path, *call;
} phase_calls[] = {
    {"ngx.req.set_uri", "ngx.req.set_uri('/x')"}, {"ngx.exit", "ngx.exit(200)"},
    {"ngx.redirect", "ngx.redirect('/x')"},       {"ngx.say", "ngx.say('x')"},
    {"ngx.print", "ngx.print('x')"},              {"ngx.flush", "ngx.flush()"},
    {"ngx.arg", "local a = ngx.arg[1]"},
    {"ngx.req.http_version", "ngx.req.http_version()"},
    {"ngx.req.set_method", "ngx.req.set_method(ngx.HTTP_GET)"},
    {"ngx.headers_sent", "local s = ngx.headers_sent"},
    {"ngx.send_headers", "ngx.send_headers()"},
    {"ngx.eof", "ngx.eof()"},
    {"ngx.req.read_body", "ngx.req.read_body()"},
    {"ngx.req.get_body_data", "ngx.req.get_body_data()"},
    {"ngx.req.get_post_args", "ngx.req.get_post_args()"},
    {"ngx.sleep", "ngx.sleep(0)"},
};

START_TEST(restricted_names_are_refused_in_the_phases_the_table_leaves_out)
{
    static const struct {
        const char *path;
        unsigned phases;
    } restricted[] = {
#define RESTRICTED(area, kind, path, field, fn, phases, allow) {path, phases},
        DC_API_TABLE(RESTRICTED)
#undef RESTRICTED
    };
    size_t checked = 0;
    for (size_t i = 0; i < sizeof restricted / sizeof restricted[0]; i++) {
        if (restricted[i].phases == DC_APH_ANY)
            continue;
        const char *call = NULL;
        for (size_t k = 0; k < sizeof phase_calls / sizeof phase_calls[0]; k++)
            if (strcmp(phase_calls[k].path, restricted[i].path) == 0)
                call = phase_calls[k].call;
        ck_assert_msg(call != NULL, "%s is restricted: give this test a call of it",
                      restricted[i].path);
        for (int ph = 0; ph < DC_PHASE_COUNT; ph++) {
            run r;
            char refused[128];
            snprintf(refused, sizeof refused, "API disabled in the context of %s_by_lua* (%s)",
                     dc_phase_name((dc_phase)ph), restricted[i].path);
            RUN(&r, dc_phase_name((dc_phase)ph), call);
            if (restricted[i].phases & (1u << ph))
                HASNT(r.trace, refused);
            else
                HAS(r.trace, refused);
            dc_sim_free(r.sim);
        }
        checked++;
    }
    ck_assert_uint_eq(checked, sizeof phase_calls / sizeof phase_calls[0]);
}
END_TEST

/* The example bundle of lua-resty-dynacode's README (the same as usage/response.json without
 * its "*" domain), through the API areas it uses. */
static const char readme_bundle[] =
    "{\"general\":{\"status\":\"enabled\",\"skip_domains\":"
    "[\"[\\\\w\\\\d\\\\.\\\\-]*server.local.com\"]},"
    "\"domains\":[{\"name\":\"dynamic.local.com\",\"plugins\":["
    "{\"name\":\"dynamic content\",\"code\":\"ngx.say(\\\"ol\u00e1 mundo!\\\")\\r\\n"
    "ngx.say(\\\"hello world!\\\")\",\"phase\":\"content\"},"
    "{\"name\":\"adding cors headers\",\"code\":\"ngx.header[\\\"Access-Control-Allow-Origin"
    "\\\"] = \\\"http://dynamic.local.com\\\"\",\"phase\":\"header_filter\"},"
    "{\"name\":\"authentication required\",\"code\":\"local token = ngx.var.arg_token or "
    "ngx.var.cookie_superstition\\r\\n\\r\\nif token ~= 'token' then\\r\\n  return "
    "ngx.exit(ngx.HTTP_FORBIDDEN)\\r\\nelse\\r\\n  ngx.header['Set-Cookie'] = "
    "{'superstition=token'}\\r\\nend\",\"phase\":\"access\"}]}]}";

START_TEST(original_readme_bundle)
{
    size_t len;
    dc_bundle *b = tu_bundle(readme_bundle);
    dc_engine *e = tu_engine(b);
    dc_bundle_unref(b);
    dc_sim *s = tu_request(e, "dynamic.local.com", "/?token=token");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(dc_sim_header(s, "Access-Control-Allow-Origin"), "http://dynamic.local.com");
    ck_assert_str_eq(dc_sim_header(s, "Set-Cookie"), "superstition=token");
    const char *text = dc_sim_body(s, &len);
    ck_assert_int_eq(len, strlen("ol\u00e1 mundo!\nhello world!\n"));
    ck_assert(memcmp(text, "ol\u00e1 mundo!\nhello world!\n", len) == 0);
    dc_sim_free(s);
    const char *h[] = {"Cookie: superstition=token"};
    dc_sim_opts o = {.host = "dynamic.local.com", .uri = "/", .headers = h, .nheaders = 1};
    s = dc_sim_new(&o);
    ck_assert_int_eq(dc_sim_run(s, e), 0);
    ck_assert_int_eq(dc_sim_status(s), 200);
    dc_sim_free(s);
    s = tu_request(e, "dynamic.local.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 403);
    ck_assert_ptr_null(dc_sim_header(s, "Set-Cookie"));
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_test(tc, say_and_print_write_the_body);
    tcase_add_test(tc, say_refuses_bad_arguments);
    tcase_add_test(tc, say_is_disabled_in_filters);
    tcase_add_test(tc, exit_ends_the_request_in_access);
    tcase_add_test(tc, exit_survives_pcall_and_wants_a_number);
    tcase_add_test(tc, redirect_sets_location);
    tcase_add_test(tc, redirect_refuses_bad_status_and_unsafe_uri);
    tcase_add_test(tc, var_reads_and_writes);
    tcase_add_test(tc, header_set_get_and_remove);
    tcase_add_test(tc, header_value_escape_count_matches_bytes);
    tcase_add_test(tc, header_name_work_matches_the_rule_for_every_byte);
    tcase_add_test(tc, header_and_status_after_headers_sent_log_an_error);
    tcase_add_test(tc, status_get_and_set);
    tcase_add_test(tc, req_get_headers);
    tcase_add_test(tc, req_set_and_clear_header_reach_later_phases);
    tcase_add_test(tc, req_uri_args);
    tcase_add_test(tc, req_set_uri_rewrite_only);
    tcase_add_test(tc, ctx_is_shared_across_plugins_and_phases);
    tcase_add_test(tc, ctx_refuses_what_is_not_plain);
    tcase_add_test(tc, ctx_write_back_runs_no_metamethod);
    tcase_add_test(tc, arg_rewrites_the_body);
    tcase_add_test(tc, log_and_print);
    tcase_add_test(tc, time_phase_worker);
    tcase_add_test(tc, constants);
    tcase_add_test(tc, every_listed_name_exists_and_every_ngx_name_is_listed);
    tcase_add_test(tc, restricted_names_are_refused_in_the_phases_the_table_leaves_out);
    tcase_add_test(tc, original_readme_bundle);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
