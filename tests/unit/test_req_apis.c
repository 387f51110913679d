/* test_req_apis.c - the request-bound OpenResty functions on the simulated request:
 * ngx.req.start_time, http_version, is_internal, set_method, ngx.resp.get_headers,
 * ngx.headers_sent, ngx.send_headers and ngx.eof. What each answers (the OpenResty case it
 * matches is named above each test), the arguments each refuses, the policy denying each, and
 * the memory quota bounding the header table, and the phases OpenResty refuses them in (every
 * phase of each is walked with the rest of the table by test_api.c).
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef tu_run run;

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, \
                                         "unexpected \"%s\" in:\n%s", (needle), (hay))
#define ALL_OK(r) do { HASNT((r)->trace, ":error"); HASNT((r)->trace, ":quota"); \
                       HASNT((r)->trace, ":denied"); } while (0)

static void run_opts(run *r, const tu_run_opts *o, const char *const *pc)
{
    tu_run_opts opts = *o;
    if (!opts.host)
        opts.host = "req.test";
    opts.seed = 42;
    tu_run_plugins(r, &opts, pc);
}

#define RUN(r, ...) run_opts((r), &(tu_run_opts){0}, (const char *const[]){__VA_ARGS__, NULL})

/* t/102-req-start-time.t "TEST 1: start time": a number of seconds with the milliseconds, not
 * after ngx.now(); the same in every phase of the request. */
START_TEST(start_time_is_the_request_start_in_every_phase)
{
    run r;
    static const char check[] =
        "local t = ngx.req.start_time()\n"
        "assert(type(t) == 'number' and t > 1e9 and t <= ngx.now() + 0.001, tostring(t))\n"
        "assert(t * 1000 == math.floor(t * 1000 + 0.5), 'not in milliseconds: ' .. t)\n"
        "if ngx.ctx.t then assert(ngx.ctx.t == t, 'changed: ' .. t) end\n"
        "ngx.ctx.t = t\n";
    RUN(&r, "rewrite", check, "access", check, "content", check, "header_filter", check,
        "body_filter", check, "log", check);
    ALL_OK(&r);
    HAS(r.trace, "log:p6:ok");
    dc_sim_free(r.sim);
}
END_TEST

/* t/103-req-http-ver.t "TEST 1: HTTP 1.1" and t/137-req-misc.t "TEST 1: not internal
 * request": the simulated request is a client's HTTP/1.1 request. */
START_TEST(http_version_and_is_internal)
{
    run r;
    RUN(&r, "content", "ngx.say(ngx.req.http_version(), ' ', tostring(ngx.req.is_internal()),"
                       " ' ', type(ngx.req.http_version()))");
    ALL_OK(&r);
    ck_assert_str_eq(tu_run_body(&r), "1.1 false number\n");
    dc_sim_free(r.sim);
}
END_TEST

/* t/088-req-method.t "TEST 3: set GET to POST" and "TEST 11: set GET to WebDAV methods": the
 * method changes for the later phases and $request_method. */
START_TEST(set_method_changes_the_method)
{
    run r;
    RUN(&r, "rewrite", "ngx.req.set_method(ngx.HTTP_POST)",
        "access", "ngx.ctx.m = ngx.req.get_method() ngx.req.set_method(ngx.HTTP_PROPFIND)",
        "content", "ngx.say(ngx.ctx.m, ' ', ngx.req.get_method(), ' ', ngx.var.request_method)",
        "header_filter", "ngx.req.set_method(ngx.HTTP_DELETE)",
        "log", "assert(ngx.req.get_method() == 'DELETE')");
    ALL_OK(&r);
    ck_assert_str_eq(tu_run_body(&r), "POST PROPFIND PROPFIND\n");
    dc_sim_free(r.sim);

    /* every method constant is taken, and gives its own name */
    RUN(&r, "content",
        "for _, m in ipairs({'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE',\n"
        "    'OPTIONS', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'PATCH', 'TRACE'}) do\n"
        "  ngx.req.set_method(ngx['HTTP_' .. m])\n"
        "  assert(ngx.req.get_method() == m, m .. ' gave ' .. ngx.req.get_method())\n"
        "end");
    ALL_OK(&r);
    dc_sim_free(r.sim);
}
END_TEST

/* t/088-req-method.t: only the numeric method constants; anything else is a Lua error naming
 * the function, and the method stays as it was. */
START_TEST(set_method_refuses_what_is_not_a_method_constant)
{
    static const char *const bad[] = {
        "ngx.req.set_method('POST')", "ngx.req.set_method('8')", "ngx.req.set_method()",
        "ngx.req.set_method({})", "ngx.req.set_method(true)", "ngx.req.set_method(3)",
        "ngx.req.set_method(8.5)", "ngx.req.set_method(-8)", "ngx.req.set_method(0/0)",
        "ngx.req.set_method(2^40)", "ngx.req.set_method(ngx.HTTP_OK)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run r;
        char code[200];
        snprintf(code, sizeof code, "local ok, err = pcall(function() %s end)\n"
                                    "assert(not ok)\nngx.say(ngx.req.get_method(), ' ', err)",
                 bad[i]);
        RUN(&r, "content", code);
        ALL_OK(&r);
        const char *b = tu_run_body(&r);
        ck_assert_msg(strncmp(b, "GET ", 4) == 0, "%s: %s", bad[i], b);
        ck_assert_msg(strstr(b, "set_method") != NULL, "%s: error does not name it: %s", bad[i],
                      b);
        dc_sim_free(r.sim);
    }
    run r;
    RUN(&r, "content", "ngx.req.set_method('POST')");
    HAS(r.trace, "bad argument #1 to 'set_method' (method constant such as ngx.HTTP_GET "
                 "expected, got string)");
    dc_sim_free(r.sim);
    RUN(&r, "content", "ngx.req.set_method(3)");
    HAS(r.trace, "ngx.req.set_method: unsupported HTTP method: 3");
    dc_sim_free(r.sim);
}
END_TEST

/* t/016-resp-header.t "TEST 63: iterating through resp headers" (names in lower case, found
 * again under any case or with '_'), "TEST 64: iterating through raw resp headers", "TEST 65:
 * removed response headers", "TEST 66: built-in Content-Type header"; several values of a
 * name as a table, as ngx.req.get_headers gives them. */
START_TEST(resp_get_headers_lists_the_response_headers)
{
    run r;
    RUN(&r, "content",
        "ngx.header['Foo'] = 'bar'\n"
        "ngx.header['Gone'] = 'x'\n"
        "ngx.header['Gone'] = nil\n"
        "ngx.header['X-Multi'] = {'a', 'b'}\n"
        "local h, err = ngx.resp.get_headers()\n"
        "assert(err == nil)\n"
        "local n = 0 for _ in pairs(h) do n = n + 1 end\n"
        "ngx.say(h.foo, ' ', h.Foo, ' ', h['FOO'], ' ', tostring(h.gone), ' ',\n"
        "        table.concat(h.x_multi, ','), ' ', h['content-type'], ' ', h.content_type, ' ', n)\n"
        "local raw = ngx.resp.get_headers(nil, true)\n"
        "ngx.say(raw.Foo, ' ', tostring(raw.foo), ' ', tostring(getmetatable(raw)))",
        "header_filter",
        "local h = ngx.resp.get_headers()\n"
        "ngx.header['X-Seen'] = h.foo .. '/' .. h['Content-Type']");
    ALL_OK(&r);
    ck_assert_str_eq(tu_run_body(&r), "bar bar bar nil a,b text/plain text/plain 3\n"
                                      "bar nil nil\n");
    ck_assert_str_eq(dc_sim_header(r.sim, "X-Seen"), "bar/text/plain");
    dc_sim_free(r.sim);
}
END_TEST

/* t/016-resp-header.t "TEST 75: exceeding max header limit (default 100)", "TEST 76: NOT
 * exceeding max header limit (default 100)" and "TEST 77: exceeding max header limit (custom
 * limit, 3)": at most max headers, then a second value "truncated"; 0 or less: no limit. */
START_TEST(resp_get_headers_max_and_truncated)
{
    run r;
    RUN(&r, "content",
        "for i = 1, 100 do ngx.header['Foo' .. i] = 'Foo' end\n"
        "local function count(h) local n = 0 for _ in pairs(h) do n = n + 1 end return n end\n"
        "local h, err = ngx.resp.get_headers()\n"
        "ngx.say(count(h), ' ', tostring(err))\n"
        "h, err = ngx.resp.get_headers(3)\n"
        "ngx.say(count(h), ' ', tostring(err))\n"
        "h, err = ngx.resp.get_headers(101)\n"
        "ngx.say(count(h), ' ', tostring(err))\n"
        "h, err = ngx.resp.get_headers(0)\n"
        "ngx.say(count(h), ' ', tostring(err))\n"
        "h, err = ngx.resp.get_headers(-1, true)\n"
        "ngx.say(count(h), ' ', tostring(err))");
    ALL_OK(&r);
    /* 100 headers and Content-Type */
    ck_assert_str_eq(tu_run_body(&r), "100 truncated\n3 truncated\n101 nil\n101 nil\n101 nil\n");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(resp_get_headers_refuses_a_bad_max)
{
    run r;
    RUN(&r, "content", "ngx.resp.get_headers('lots')", "content", "ngx.resp.get_headers({})",
        "content", "ngx.resp.get_headers('5', 1) ngx.say('ok')");
    HAS(r.trace, "content:p1:error:");
    HAS(r.trace, "bad argument #1 to 'get_headers' (number expected, got string)");
    HAS(r.trace, "bad argument #1 to 'get_headers' (number expected, got table)");
    HAS(r.trace, "content:p3:ok"); /* a numeric string is a number, as in OpenResty */
    dc_sim_free(r.sim);
}
END_TEST

/* What the table holds is the plugin's memory: under a small memory quota, reading many large
 * headers again and again trips the quota (the process is fine, the next plugin runs). */
START_TEST(resp_get_headers_is_counted_against_the_memory_quota)
{
    run r;
    dc_quota q = {.instructions = 400000000, .time_ms = 10000, .memory_kb = 1024};
    run_opts(&r, &(tu_run_opts){.quota = &q},
             (const char *const[]){
                 "header_filter",
                 "local v = string.rep('v', 1000)\n"
                 "for i = 1, 50 do ngx.header['X-H' .. i] = v .. i end\n"
                 "local keep = {}\n"
                 "for i = 1, 100000 do keep[i] = ngx.resp.get_headers(0, i % 2 == 0) end",
                 "header_filter", "ngx.header['X-After'] = 'ran'", NULL});
    HAS(r.trace, "header_filter:p1:quota:memory");
    HAS(r.trace, "header_filter:p2:ok");
    dc_sim_free(r.sim);
}
END_TEST

/* t/002-content.t "TEST 36: headers_sent + GET": false until the header goes out, true after;
 * ngx.send_headers returns 1, again once sent; the status and headers set before it are
 * sent, those set after are not (logged). */
START_TEST(send_headers_and_headers_sent)
{
    run r;
    RUN(&r, "content",
        "ngx.header['X-Before'] = 'yes'\n"
        "ngx.status = 201\n"
        "local before = ngx.headers_sent\n"
        "local r1, e1 = ngx.send_headers()\n"
        "local after = ngx.headers_sent\n"
        "local r2 = ngx.send_headers()\n"
        "ngx.header['X-After'] = 'no'\n"
        "ngx.status = 418\n"
        "ngx.say(tostring(before), ' ', r1, ' ', tostring(e1), ' ', tostring(after), ' ', r2)");
    ALL_OK(&r);
    ck_assert_str_eq(tu_run_body(&r), "false 1 nil true 1\n");
    ck_assert_int_eq(dc_sim_status(r.sim), 201);
    ck_assert_str_eq(dc_sim_header(r.sim, "X-Before"), "yes");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-After"));
    HAS(dc_sim_log(r.sim), "attempt to set ngx.header.HEADER after sending out response headers");
    dc_sim_free(r.sim);

    /* output sends the header too; ngx.headers_sent is read-only */
    RUN(&r, "content", "local a = ngx.headers_sent ngx.say(tostring(a)) ngx.say(tostring(ngx.headers_sent))",
        "content", "ngx.headers_sent = false");
    ck_assert_str_eq(tu_run_body(&r), "false\ntrue\n");
    HAS(r.trace, "content:p2:error:");
    HAS(r.trace, "ngx.headers_sent: the ngx table is read-only");
    dc_sim_free(r.sim);
}
END_TEST

/* t/002-content.t "TEST 28: multiple eof" and "TEST 35: ngx.eof before ngx.say": after
 * ngx.eof, output and a second eof give nil and "seen eof"; the body is what came before. */
START_TEST(eof_ends_the_output)
{
    run r;
    RUN(&r, "content",
        "ngx.say('Hi')\n"
        "local ok, err = ngx.eof()\n"
        "assert(ok == 1 and err == nil)\n"
        "local a, b = ngx.eof()\n"
        "local r = {tostring(a) .. ':' .. tostring(b)}\n"
        "for _, f in ipairs({ngx.say, ngx.print, ngx.flush}) do\n"
        "  a, b = f('x')\n"
        "  r[#r + 1] = tostring(a) .. ':' .. tostring(b)\n"
        "end\n"
        "ngx.log(ngx.WARN, 'after eof ', table.concat(r, ' '))",
        "content", "local ok, err = ngx.say('other') ngx.log(ngx.WARN, 'next plugin ', tostring(ok), ':', err)");
    HASNT(r.trace, ":error");
    ck_assert_str_eq(tu_run_body(&r), "Hi\n");
    HAS(dc_sim_log(r.sim), "after eof nil:seen eof nil:seen eof nil:seen eof nil:seen eof");
    HAS(dc_sim_log(r.sim), "next plugin nil:seen eof");
    ck_assert_int_eq(dc_sim_status(r.sim), 200);
    dc_sim_free(r.sim);
}
END_TEST

/* ngx.eof takes no argument (lua-nginx-module: "no argument is expected"). */
START_TEST(eof_refuses_arguments)
{
    run r;
    RUN(&r, "content", "ngx.eof(1)", "content", "ngx.eof(nil)", "content", "ngx.say('still')");
    HAS(r.trace, "content:p1:error:");
    HAS(r.trace, "ngx.eof: no argument is expected");
    HAS(r.trace, "content:p2:error:");
    ck_assert_str_eq(tu_run_body(&r), "still\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ngx.eof in access: the answer is complete there; no content runs (no upstream body), the
 * header filter, body filter and log still do. */
START_TEST(eof_in_access_ends_the_answer)
{
    run r;
    run_opts(&r, &(tu_run_opts){.upstream = "upstream body"},
             (const char *const[]){
                 "access", "ngx.say('from access') ngx.eof()",
                 "content", "ngx.say('content ran')",
                 "header_filter", "ngx.header['X-HF'] = 'ran'",
                 "log", "ngx.log(ngx.WARN, 'log ran')", NULL});
    ALL_OK(&r);
    ck_assert_str_eq(tu_run_body(&r), "from access\n");
    HASNT(r.trace, "content:");
    ck_assert_str_eq(dc_sim_header(r.sim, "X-HF"), "ran");
    HAS(dc_sim_log(r.sim), "log ran");
    dc_sim_free(r.sim);
}
END_TEST

/* The "context:" lines of lua-nginx-module's README: http_version not in body_filter,
 * set_method not in log, the output functions and headers_sent only in rewrite, access and
 * content; refused with the API's phase error. (test_api.c walks every phase of each.) */
START_TEST(refused_in_the_phases_openresty_leaves_out)
{
    run r;
    RUN(&r, "body_filter", "ngx.req.http_version()", "log", "ngx.req.set_method(ngx.HTTP_GET)",
        "header_filter", "local s = ngx.headers_sent", "header_filter", "ngx.send_headers()",
        "log", "ngx.eof()", "body_filter", "ngx.req.start_time() ngx.req.is_internal() "
        "ngx.resp.get_headers()");
    HAS(r.trace, "body_filter:p1:error:p1:1: API disabled in the context of "
                 "body_filter_by_lua* (ngx.req.http_version)");
    HAS(r.trace, "log:p2:error:p2:1: API disabled in the context of log_by_lua* "
                 "(ngx.req.set_method)");
    HAS(r.trace, "API disabled in the context of header_filter_by_lua* (ngx.headers_sent)");
    HAS(r.trace, "API disabled in the context of header_filter_by_lua* (ngx.send_headers)");
    HAS(r.trace, "API disabled in the context of log_by_lua* (ngx.eof)");
    HAS(r.trace, "body_filter:p6:ok");
    dc_sim_free(r.sim);
}
END_TEST

/* A policy denying each name: calling it raises an error naming it, the plugin is "denied". */
START_TEST(policy_denies_each_name)
{
    static const struct {
        const char *name, *call;
    } names[] = {
        {"ngx.req.start_time", "ngx.req.start_time()"},
        {"ngx.req.http_version", "ngx.req.http_version()"},
        {"ngx.req.is_internal", "ngx.req.is_internal()"},
        {"ngx.req.set_method", "ngx.req.set_method(ngx.HTTP_POST)"},
        {"ngx.resp.get_headers", "ngx.resp.get_headers()"},
        {"ngx.headers_sent", "local s = ngx.headers_sent"},
        {"ngx.send_headers", "ngx.send_headers()"},
        {"ngx.eof", "ngx.eof()"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char policy[256], denied[128];
        snprintf(policy, sizeof policy, "{\"api\":{\"deny\":[\"%s\"]}}", names[i].name);
        snprintf(denied, sizeof denied, "%s is denied by policy", names[i].name);
        run r;
        run_opts(&r, &(tu_run_opts){.policy_json = policy},
                 (const char *const[]){"content", names[i].call, "content", "ngx.say('next')",
                                       NULL});
        HAS(r.trace, "content:p1:denied");
        HAS(r.trace, denied);
        HAS(r.trace, "content:p2:ok");
        dc_sim_free(r.sim);
        /* and the default policy lets it through */
        RUN(&r, "content", names[i].call);
        ALL_OK(&r);
        dc_sim_free(r.sim);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("req_apis");
    TCase *tc = tcase_create("req_apis");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, start_time_is_the_request_start_in_every_phase);
    tcase_add_test(tc, http_version_and_is_internal);
    tcase_add_test(tc, set_method_changes_the_method);
    tcase_add_test(tc, set_method_refuses_what_is_not_a_method_constant);
    tcase_add_test(tc, resp_get_headers_lists_the_response_headers);
    tcase_add_test(tc, resp_get_headers_max_and_truncated);
    tcase_add_test(tc, resp_get_headers_refuses_a_bad_max);
    tcase_add_test(tc, resp_get_headers_is_counted_against_the_memory_quota);
    tcase_add_test(tc, send_headers_and_headers_sent);
    tcase_add_test(tc, eof_ends_the_output);
    tcase_add_test(tc, eof_refuses_arguments);
    tcase_add_test(tc, eof_in_access_ends_the_answer);
    tcase_add_test(tc, refused_in_the_phases_openresty_leaves_out);
    tcase_add_test(tc, policy_denies_each_name);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
