/* test_host_input.c - what plugins hand to the host: set_uri paths (traversal, plain and
 * encoded), control bytes in variables, exit and status ranges, header and log bounds per call,
 * bytes charged to the memory quota, request readers charged to the instruction quota, and
 * control bytes escaped in log lines and events. Runs plugins on the simulated request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *const *test_headers;  /* request headers of the next run_with */
static size_t test_nheaders;

typedef tu_run run;

/* Runs one request to uri through plugins (phase, code, ..., NULL) named p1, p2... under the
 * policy (JSON, or NULL for the built-in one). */
static void run_with(run *r, const char *policy_json, const char *uri, const char *upstream,
                     const char *const *pc)
{
    tu_run_plugins(r, &(tu_run_opts){.host = "host.test", .uri = uri, .upstream = upstream,
                                     .headers = test_headers, .nheaders = test_nheaders,
                                     .policy_json = policy_json, .seed = 7},
                   pc);
}

#define RUN(r, ...) run_with((r), NULL, NULL, NULL, (const char *const[]){__VA_ARGS__, NULL})
#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, \
                                         "unexpected \"%s\" in:\n%s", (needle), (hay))

static const char *header(run *r, const char *name)
{
    const char *v = dc_sim_header(r->sim, name);
    return v ? v : "(none)";
}

/* ---- ngx.req.set_uri ---- */

/* Each refused path, with the reason its error must name. */
static const struct { const char *lua, *why; } bad_paths[] = {
    {"'/a/../../etc/passwd'", "\"..\" segment"},
    {"'/%2e%2e/etc/passwd'", "\"..\" segment"},
    {"'/%2E%2e%2fetc/passwd'", "\"..\" segment"},
    {"'/x/.%2E/etc'", "\"..\" segment"},
    {"'//..'", "\"..\" segment"},
    {"'/..'", "\"..\" segment"},
    {"'/a/.'", "\".\" segment"},
    {"'/a/%2e/b'", "\".\" segment"},
    {"'/a%2f..%2fb'", "\"..\" segment"},
    {"'/a\\\\b'", "backslash"},
    {"'/a%5c..%5cb'", "backslash"},
    {"'/a\\0b'", "control byte"},
    {"'/a%00b'", "encoded NUL byte"},
    {"'/a\\r\\nX-Evil: 1'", "control byte"},
    {"'/a%0d%0aX-Evil: 1'", "encoded control byte"},
    {"'/a\\tb'", "control byte"},
    {"'etc/passwd'", "does not start with \"/\""},
    {"'../etc/passwd'", "does not start with \"/\""},
};

START_TEST(set_uri_refuses_traversal_and_control_bytes)
{
    size_t n = sizeof bad_paths / sizeof bad_paths[0];
    char code[512];
    snprintf(code, sizeof code, "ngx.req.set_uri(%s)", bad_paths[_i % n].lua);
    run r;
    RUN(&r, "rewrite", code, "content", "ngx.say(ngx.var.uri)");
    HAS(r.trace, "rewrite:p1:error:");
    HAS(r.trace, "ngx.req.set_uri: bad uri");
    HAS(r.trace, bad_paths[_i % n].why);
    /* the message shows the uri with no raw control byte: one trace line per call */
    const char *line = strstr(r.trace, "rewrite:p1:error:");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_eq(strchr(line, '\n'), strstr(line, "\ncontent:"));
    size_t len;
    ck_assert_str_eq(dc_sim_body(r.sim, &len), "/\n");  /* the request kept its URI */
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(set_uri_takes_plain_paths)
{
    run r;
    RUN(&r, "rewrite",
        "local out = {}\n"
        "for _, u in ipairs({'/a/b', '//a//b/', '/a/...', '/a/.b', '/a/b..', '/%252e%252e/x',\n"
        "                    '/a%20b'}) do\n"
        "  local ok, err = pcall(ngx.req.set_uri, u)\n"
        "  out[#out + 1] = ok and 'ok' or err\n"
        "end\n"
        "ngx.req.set_uri('/final')\n"
        "ngx.header['X-R'] = table.concat(out, ',')",
        "content", "ngx.say(ngx.var.uri)");
    ck_assert_str_eq(header(&r, "X-R"), "ok,ok,ok,ok,ok,ok,ok");
    ck_assert_str_eq(dc_sim_body(r.sim, NULL), "/final\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.var, set_uri_args ---- */

START_TEST(var_writes_refuse_control_bytes)
{
    run r;
    run_with(&r, NULL, "/?a=1", NULL, (const char *const[]){
        "access", "ngx.var.args = 'a=1 HTTP/1.1\\r\\nHost: evil\\r\\n\\r\\nGET /smuggled'",
        "access", "ngx.var.args = 'b=\\0'",
        "access", "ngx.var.args = 'c=\\27[31m'",
        "access", "ngx.req.set_uri_args('d=1\\r\\n')  ngx.header['X-D'] = ngx.var.args",
        "access", "ngx.var.args = 'e=2\\t3'",
        "content", "ngx.say(ngx.var.args)", NULL});
    HAS(r.trace, "access:p1:error:");
    HAS(r.trace, "ngx.var: control byte 0x0d in value \"a=1 HTTP/1.1\\r\\nHost: evil");
    HAS(r.trace, "access:p2:error:p2:1: ngx.var: control byte 0x00 in value \"b=\\x00\"");
    HAS(r.trace, "access:p3:error:p3:1: ngx.var: control byte 0x1b");
    HAS(r.trace, "access:p4:ok");          /* a string is escaped as nginx does */
    ck_assert_str_eq(header(&r, "X-D"), "d=1%0D%0A");
    HAS(r.trace, "access:p5:error:p5:1: ngx.var: control byte 0x09");
    ck_assert_str_eq(dc_sim_body(r.sim, NULL), "d=1%0D%0A\n");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- ngx.exit, ngx.status ---- */

START_TEST(exit_takes_statuses_and_nginx_codes_only)
{
    static const char *const bad[] = {"2147483647", "1000", "-3", "-6", "-2147483648", "0/0",
                                      "200.5", "1e300"};
    char code[128];
    snprintf(code, sizeof code, "ngx.exit(%s)", bad[_i]);
    run r;
    RUN(&r, "access", code);
    HAS(r.trace, "access:p1:error:");
    HAS(r.trace, "bad argument #1 to 'exit' (status code 0 to 999");
    ck_assert_int_eq(dc_sim_status(r.sim), 200);  /* the request went on */
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(exit_keeps_nginx_codes_and_edges)
{
    run r;
    RUN(&r, "access", "ngx.exit(999)");
    ck_assert_int_eq(dc_sim_status(r.sim), 999);
    dc_sim_free(r.sim);
    RUN(&r, "access", "ngx.exit(ngx.ERROR)");
    ck_assert_int_eq(dc_sim_status(r.sim), 500);
    dc_sim_free(r.sim);
    RUN(&r, "access", "ngx.exit(ngx.OK)", "content", "ngx.say('on')");
    HAS(r.trace, "content:p2:ok");
    dc_sim_free(r.sim);
    RUN(&r, "access", "ngx.exit(ngx.DECLINED)", "content", "ngx.say('on')");
    ck_assert_int_eq(dc_sim_status(r.sim), 500);  /* a negative code ends the request */
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(status_takes_100_to_999_only)
{
    run r;
    RUN(&r, "access",
        "for _, s in ipairs({2147483647, 1000, 99, -1, 0/0, 200.5}) do ngx.status = s end\n"
        "ngx.header['X-S'] = tostring(ngx.status)",
        "header_filter", "ngx.status = 999");
    ck_assert_str_eq(header(&r, "X-S"), "0");
    ck_assert_int_eq(dc_sim_status(r.sim), 999);
    HAS(dc_sim_log(r.sim), "invalid HTTP status code 2147483647");
    HAS(dc_sim_log(r.sim), "invalid HTTP status code 200.5");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- headers: bounds and the memory quota ---- */

START_TEST(header_of_40000_values_is_refused)
{
    run r;
    RUN(&r, "access",
        "local s, t = string.rep('x', 8000), {}\n"
        "for i = 1, 40000 do t[i] = s end\n"
        "ngx.header['X-Big'] = t",
        "access",
        "local s, t = string.rep('x', 8000), {}\n"
        "for i = 1, 40000 do t[i] = s end\n"
        "ngx.req.set_header('X-Big', t)");
    HAS(r.trace, "access:p1:error:");
    HAS(r.trace, "40000 values for one header, over the policy's bound of 100");
    HAS(r.trace, "access:p2:error:");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Big"));
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(header_bytes_count_against_the_memory_quota)
{
    /* no bound on values or header bytes: the memory quota is what stops the copy */
    run r;
    run_with(&r, "{\"bounds\":{\"header_values\":0,\"header_bytes\":0}}", NULL, NULL,
             (const char *const[]){
        "access",
        "local s, t = string.rep('x', 8000), {}\n"
        "for i = 1, 40000 do t[i] = s end\n"
        "ngx.header['X-Big'] = t",
        "access",
        "local s, t = string.rep('x', 8000), {}\n"
        "for i = 1, 40000 do t[i] = s end\n"
        "ngx.req.set_header('X-Big', t)",
        "access", "ngx.header['X-Small'] = {'a', 'b'}", NULL});
    HAS(r.trace, "access:p1:quota:memory");
    HAS(r.trace, "access:p2:quota:memory");
    HAS(r.trace, "access:p3:ok");
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-Big"));
    ck_assert_uint_eq(dc_sim_header_count(r.sim, "X-Small"), 2);
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(header_bytes_per_call_are_bounded)
{
    run r;
    run_with(&r, "{\"bounds\":{\"header_bytes\":1000}}", NULL, NULL, (const char *const[]){
        "access", "for i = 1, 100 do ngx.header['X-' .. i] = string.rep('v', 20) end",
        "access", "for i = 1, 20 do ngx.header['X-A'] = string.rep('v', 20) end", NULL});
    HAS(r.trace, "access:p1:error:p1:1: ngx.header: headers over the policy's bound of 1000 bytes "
                 "in one call");
    HAS(r.trace, "access:p2:ok");  /* a call of its own: its own count */
    ck_assert_ptr_nonnull(dc_sim_header(r.sim, "X-1"));
    ck_assert_ptr_null(dc_sim_header(r.sim, "X-100"));
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(header_values_stay_on_one_line)
{
    run r;
    RUN(&r, "access",
        "ngx.header['X-A'] = 'a\\r\\nSet-Cookie: evil=1'\n"
        "ngx.header['X-B\\r\\nSet-Cookie'] = 'evil=1'\n"
        "ngx.req.set_header('X-C', 'c\\0\\n')\n"
        "ngx.header['X-C'] = ngx.var.http_x_c");
    HAS(r.trace, "access:p1:ok");
    ck_assert_str_eq(header(&r, "X-A"), "a%0D%0ASet-Cookie: evil=1");
    ck_assert_ptr_null(dc_sim_header(r.sim, "Set-Cookie"));
    ck_assert_str_eq(header(&r, "X-C"), "c%00%0A");
    dc_sim_free(r.sim);
}
END_TEST

/* ---- logs ---- */

START_TEST(log_lines_per_call_are_bounded)
{
    run r;
    RUN(&r, "log", "for i = 1, 10000 do ngx.log(ngx.ERR, 'line ', i) end",
        "log", "ngx.log(ngx.ERR, 'next call')");
    HAS(r.trace, "log:p1:ok");
    const char *log = dc_sim_log(r.sim);
    int lines = 0;
    for (const char *p = strstr(log, "\": line "); p; p = strstr(p + 1, "\": line "))
        lines++;
    ck_assert_int_eq(lines, 200);
    HAS(log, "\": line 200\n");
    HASNT(log, "\": line 201\n");
    HAS(log, "further log lines of this call dropped (over the policy's bound of 200 lines");
    HAS(log, "[dynacode] plugin \"p2\": next call\n");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(log_bytes_per_call_are_bounded)
{
    run r;
    run_with(&r, "{\"bounds\":{\"log_bytes\":10000,\"log_lines\":0}}", NULL, NULL,
             (const char *const[]){
        "log", "for i = 1, 1000 do print(string.rep('y', 4000)) end", NULL});
    HAS(r.trace, "log:p1:ok");
    const char *log = dc_sim_log(r.sim);
    ck_assert_uint_lt(strlen(log), 10000 + 400);
    HAS(log, "over the policy's bound of 0 lines or 10000 bytes in one call");
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(log_lines_escape_control_bytes)
{
    run r;
    RUN(&r, "log",
        "ngx.log(ngx.ERR, 'a\\n[dynacode] plugin \"admin\": forged\\r\\0\\27[2J\\127')\n"
        "print(setmetatable({}, {__tostring = function() return 'x\\ny' end}))\n"
        "ngx.log(ngx.ERR, 'back\\\\slash \"q\"')");
    const char *log = dc_sim_log(r.sim);
    HAS(log, "error [dynacode] plugin \"p1\": a\\n[dynacode] plugin \"admin\": forged\\r\\x00"
             "\\x1b[2J\\x7f\n");
    HAS(log, "notice [dynacode] plugin \"p1\": x\\ny\n");
    HAS(log, "error [dynacode] plugin \"p1\": back\\slash \"q\"\n");
    /* exactly three lines */
    int n = 0;
    for (const char *p = log; *p; p++)
        n += *p == '\n';
    ck_assert_int_eq(n, 3);
    dc_sim_free(r.sim);
}
END_TEST

START_TEST(log_prefix_escapes_the_plugin_name)
{
    /* a name with a quote, as the bundle may spell it, cannot close the quoted name */
    const char *json = "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                       "\"plugins\":[{\"name\":\"a\\\" forged=\\\"1\",\"phase\":\"access\","
                       "\"code\":\"ngx.log(ngx.ERR, 'm')\"}]}]}";
    dc_bundle *b = tu_bundle(json);
    dc_engine *e = tu_engine(b);
    dc_bundle_unref(b);
    dc_sim *s = tu_request(e, "a.com", "/");
    HAS(dc_sim_log(s), "[dynacode] plugin \"a\\\" forged=\\\"1\": m\n");
    dc_sim_free(s);
    dc_engine_free(e);
}
END_TEST

typedef struct seen {
    char text[2048];
} seen;

static void on_event(void *ud, const dc_event_info *info)
{
    seen *s = ud;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "[%s|%s|%s]", info->domain ? info->domain : "-",
             info->plugin ? info->plugin : "-", info->message ? info->message : "-");
}

START_TEST(events_carry_escaped_names_and_messages)
{
    dc_events *ev = NULL;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    seen s = {""};
    ck_assert_int_eq(dc_events_subscribe(ev, ~0ull, on_event, &s), DC_OK);
    dc_event_info info = {DC_EV_RT_PLUGINS_ERROR, "d\"om\\", "p\nlugin", DC_PHASE_ACCESS,
                          "boom\r\n2026/01/01 [emerg] forged\x1b", 0, 0, DC_SEV_USUAL};
    dc_events_emit(ev, &info);
    ck_assert_str_eq(s.text, "[d\\\"om\\\\|p\\nlugin|boom\\r\\n2026/01/01 [emerg] forged\\x1b]");
    /* plain text passes as it is */
    s.text[0] = '\0';
    dc_event_info plain = {DC_EV_RT_PLUGINS_ERROR, "a.com", "p", DC_PHASE_ACCESS, "m", 0, 0,
                           DC_SEV_USUAL};
    dc_events_emit(ev, &plain);
    ck_assert_str_eq(s.text, "[a.com|p|m]");
    dc_events_free(ev);
}
END_TEST

START_TEST(error_messages_in_events_are_escaped)
{
    dc_events *ev = NULL;
    ck_assert_int_eq(dc_events_new(NULL, &ev), DC_OK);
    seen s = {""};
    ck_assert_int_eq(dc_events_subscribe(ev, 1ull << DC_EV_RT_PLUGINS_ERROR, on_event, &s),
                     DC_OK);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.events = ev;
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_bundle *b = tu_bundle("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                             "\"plugins\":[{\"name\":\"p\",\"phase\":\"access\",\"code\":"
                             "\"error('x\\\\n[emerg] forged', 0)\"}]}]}");
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_sim_free(tu_request(e, "a.com", "/"));
    HAS(s.text, "|p|x\\n[emerg] forged]");
    HASNT(s.text, "\n");
    dc_engine_free(e);
    dc_events_free(ev);
}
END_TEST

/* ---- request readers are charged by what they read ---- */

START_TEST(readers_are_charged_by_bytes)
{
    static const char *const loops[] = {
        "for i = 1, 200 do ngx.req.get_uri_args() end",
        "for i = 1, 200 do local _ = ngx.var.args end",
        "for i = 1, 200 do local _ = ngx.var.request_uri end",
        "for i = 1, 200 do ngx.req.get_headers() end",
        "for i = 1, 200 do local _ = ngx.var.http_x_big end",
    };
    /* 60 KB of query string and of one header: 200 reads are about 12 million bytes, far over
     * the quota of 1 million instructions, while the loop itself is a few thousand */
    enum { BIG = 60 * 1024 };
    char *uri = malloc(BIG + 8), *hdr = malloc(BIG + 16);
    strcpy(uri, "/?");
    for (int i = 0; i < BIG / 4; i++)
        memcpy(uri + 2 + i * 4, "a=b&", 4);
    uri[2 + BIG] = '\0';
    strcpy(hdr, "X-Big: ");
    memset(hdr + 7, 'h', BIG);
    hdr[7 + BIG] = '\0';
    const char *hdrs[] = {hdr};
    test_headers = hdrs;
    test_nheaders = 1;
    run r;
    run_with(&r, "{\"quota\":{\"instructions\":1000000,\"time_ms\":0}}", uri, NULL,
             (const char *const[]){"access", loops[_i], NULL});
    test_headers = NULL;
    test_nheaders = 0;
    HAS(r.trace, "access:p1:quota:instructions");
    dc_sim_free(r.sim);
    free(uri);
    free(hdr);
}
END_TEST

START_TEST(ctx_and_chunk_reads_are_charged)
{
    enum { BIG = 60 * 1024 };
    char *body = malloc(BIG + 1);
    memset(body, 'b', BIG);
    body[BIG] = '\0';
    run r;
    run_with(&r, "{\"quota\":{\"instructions\":50000,\"time_ms\":0}}", NULL, body,
             (const char *const[]){
        "access", "local t = {} for i = 1, 500 do t[i] = 'c' .. i .. string.rep('c', 96) end "
                  "ngx.ctx.t = t",
        "header_filter", "local c = ngx.ctx",
        "body_filter", "for i = 1, 200 do local _ = ngx.arg[1] end", NULL});
    HAS(r.trace, "access:p1:ok");
    HAS(r.trace, "header_filter:p2:quota:instructions");
    HAS(r.trace, "body_filter:p3:quota:instructions");
    dc_sim_free(r.sim);
    free(body);
}
END_TEST

/* ---- the simulated host checks again, whatever the API let through ---- */

START_TEST(sim_host_checks_again)
{
    const dc_host *h = dc_sim_host();
    dc_sim_opts o = {.host = "a.com", .uri = "/start?q=1"};
    dc_sim *s = dc_sim_new(&o);
    ck_assert_ptr_nonnull(s);
    static const char *const bad[] = {"/a/../b", "/%2e%2E/b", "/a%2f..%2fb", "//..", "/a/.",
                                      "/a\\b", "/a%5cb", "/a%00b", "/a\r\nb", "a/b", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_str u = {bad[i], strlen(bad[i])};
        ck_assert_msg(h->set_uri(s, u, 0) == -1, "set_uri took \"%s\"", bad[i]);
    }
    dc_str good = {"/a/b..c/.d", 10};
    ck_assert_int_eq(h->set_uri(s, good, 0), 0);

    dc_str args = {"args", 4}, crlf = {"a=1\r\nX: y", 10}, nul = {"a\0b", 3};
    ck_assert_int_eq(h->var_set(s, args, crlf), -1);
    ck_assert_int_eq(h->var_set(s, args, nul), -1);
    dc_str name = {"X-A", 3}, bad_name = {"X-A\r\nX-B", 8}, v_cr = {"v\rw", 3};
    dc_str v_tab = {"v\tw", 3};
    ck_assert_int_eq(h->resp_header_set(s, name, &v_cr, 1), -1);
    ck_assert_int_eq(h->req_header_set(s, name, &v_cr, 1), -1);
    ck_assert_int_eq(h->resp_header_set(s, bad_name, &v_tab, 1), -1);
    ck_assert_int_eq(h->resp_header_set(s, name, &v_tab, 1), 0);
    ck_assert_int_eq(h->status_set(s, 1000), -1);
    ck_assert_int_eq(h->status_set(s, 2147483647), -1);
    ck_assert_int_eq(h->status_set(s, 99), -1);
    ck_assert_int_eq(h->status_set(s, 999), 0);
    h->log(s, 4, "x\ny\0z", 5);
    ck_assert_str_eq(dc_sim_log(s), "error x\\x0ay\\x00z\n");
    dc_sim_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host_input");
    TCase *tc = tcase_create("host_input");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, set_uri_refuses_traversal_and_control_bytes, 0,
                        sizeof bad_paths / sizeof bad_paths[0]);
    tcase_add_test(tc, set_uri_takes_plain_paths);
    tcase_add_test(tc, var_writes_refuse_control_bytes);
    tcase_add_loop_test(tc, exit_takes_statuses_and_nginx_codes_only, 0, 8);
    tcase_add_test(tc, exit_keeps_nginx_codes_and_edges);
    tcase_add_test(tc, status_takes_100_to_999_only);
    tcase_add_test(tc, header_of_40000_values_is_refused);
    tcase_add_test(tc, header_bytes_count_against_the_memory_quota);
    tcase_add_test(tc, header_bytes_per_call_are_bounded);
    tcase_add_test(tc, header_values_stay_on_one_line);
    tcase_add_test(tc, log_lines_per_call_are_bounded);
    tcase_add_test(tc, log_bytes_per_call_are_bounded);
    tcase_add_test(tc, log_lines_escape_control_bytes);
    tcase_add_test(tc, log_prefix_escapes_the_plugin_name);
    tcase_add_test(tc, events_carry_escaped_names_and_messages);
    tcase_add_test(tc, error_messages_in_events_are_escaped);
    tcase_add_loop_test(tc, readers_are_charged_by_bytes, 0, 5);
    tcase_add_test(tc, ctx_and_chunk_reads_are_charged);
    tcase_add_test(tc, sim_host_checks_again);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
