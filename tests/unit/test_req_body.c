/* test_req_body.c - the request body functions on the simulated request: ngx.req.read_body,
 * ngx.req.get_body_data and ngx.req.get_post_args. What each answers (the OpenResty behaviour
 * it matches is named above each test), the body nginx keeps out of memory, the arguments each
 * refuses, the phases, the policy denying each, and the quota charged for the bytes parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef tu_run run;

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, \
                                         "unexpected \"%s\" in:\n%s", (needle), (hay))
#define ALL_OK(r) do { HASNT((r)->trace, ":error"); HASNT((r)->trace, ":quota"); \
                       HASNT((r)->trace, ":denied"); } while (0)

static void run_body(run *r, const char *body, size_t len, const char *const *pc)
{
    tu_run_opts o = {.host = "body.test", .seed = 42, .body = body, .body_len = len};
    tu_run_plugins(r, &o, pc);
}

#define RUN_BODY(r, body, ...) \
    run_body((r), (body), 0, (const char *const[]){__VA_ARGS__, NULL})

/* t/044-req-body.t (read_body then get_body_data): nil before the body is read, the bytes
 * after, at most max_bytes of them when given; the same in access and content, and in log. */
START_TEST(read_then_data)
{
    run r;
    static const char check[] =
        "ngx.req.read_body()\n"
        "assert(ngx.req.get_body_data() == 'hello=world&a=1', tostring(ngx.req.get_body_data()))\n"
        "assert(ngx.req.get_body_data(5) == 'hello')\n"
        "assert(ngx.req.get_body_data(1e300) == 'hello=world&a=1')\n";
    RUN_BODY(&r, "hello=world&a=1",
             "rewrite", "assert(ngx.req.get_body_data() == nil) ngx.ctx.r = 1",
             "rewrite", check, "access", check, "content", check,
             "log", "assert(ngx.req.get_body_data() == 'hello=world&a=1')");
    ALL_OK(&r);
    HAS(r.trace, "log:p5:ok");
    ck_assert_str_eq(dc_sim_header(r.sim, "Transfer-Encoding") ? "" : "none", "none");
    dc_sim_free(r.sim);
}
END_TEST

/* t/031-post-args.t "TEST 1: sanity" and its siblings: the urlencoded body as a table (repeated
 * keys as arrays, a key without '=' true, '+' and %XX decoded, empty keys left out), at most
 * max arguments then "truncated", 0 for any number. */
START_TEST(post_args_table)
{
    run r;
    RUN_BODY(&r, "a=1&b&a=2&c=%20x+y&=z&d=",
             "access",
             "ngx.req.read_body()\n"
             "local t = ngx.req.get_post_args()\n"
             "assert(t.a[1] == '1' and t.a[2] == '2' and t.b == true and t.c == ' x y'"
             " and t.d == '' and t[''] == nil)\n"
             "local t2, err = ngx.req.get_post_args(2)\n"
             "assert(err == 'truncated' and t2.b == true and t2.a == '1', tostring(err))\n"
             "local n = 0 for _ in pairs(ngx.req.get_post_args(0)) do n = n + 1 end\n"
             "assert(n == 4, n)\n"
             "ngx.say('ok')");
    ALL_OK(&r);
    dc_sim_free(r.sim);
}
END_TEST

/* OpenResty: get_post_args before the body was read is an error; with no body, an empty table
 * and get_body_data nil. */
START_TEST(not_read_and_no_body)
{
    run r;
    RUN_BODY(&r, "x=1", "access", "ngx.req.get_post_args()");
    HAS(r.trace, "access:p1:error:");
    HAS(r.trace, "call ngx.req.read_body() first");
    dc_sim_free(r.sim);
    tu_run_plugins(&r, &(tu_run_opts){.seed = 42}, (const char *const[]){
        "access", "ngx.req.read_body() assert(ngx.req.get_body_data() == nil)"
                  " assert(next(ngx.req.get_post_args()) == nil)", NULL});
    ALL_OK(&r);
    dc_sim_free(r.sim);
}
END_TEST

/* A body over client_body_buffer_size goes to a temporary file in nginx: get_body_data nil,
 * get_post_args nil and why (OpenResty answers the same for a body in a file). */
START_TEST(body_out_of_memory)
{
    size_t n = 20000;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    big[n] = '\0';
    run r;
    RUN_BODY(&r, big,
             "access",
             "ngx.req.read_body() assert(ngx.req.get_body_data() == nil)\n"
             "local t, err = ngx.req.get_post_args()\n"
             "assert(t == nil and err:find('temporary file'), tostring(err))");
    ALL_OK(&r);
    dc_sim_free(r.sim);
    free(big);
}
END_TEST

/* Arguments: read_body takes none, get_body_data a non-negative number, get_post_args a
 * number; anything else is a Lua error naming the function or the argument. */
START_TEST(bad_arguments)
{
    run r;
    RUN_BODY(&r, "a=1",
             "access", "ngx.req.read_body(1)",
             "access", "ngx.req.get_body_data('x')",
             "access", "ngx.req.get_body_data(-1)",
             "access", "ngx.req.get_post_args({})",
             "access", "ngx.req.get_post_args(1, 2)");
    HAS(r.trace, "access:p1:error:p1:1: ngx.req.read_body: expecting at most 0 arguments");
    HAS(r.trace, "access:p2:error:p2:1: bad argument #1 to 'get_body_data' (number expected");
    HAS(r.trace, "access:p3:error:p3:1: bad argument #1 to 'get_body_data' (max_bytes");
    HAS(r.trace, "access:p4:error:");
    HAS(r.trace, "access:p5:error:p5:1: ngx.req.get_post_args: expecting at most 1 argument");
    dc_sim_free(r.sim);
}
END_TEST

/* The phases OpenResty refuses them in: read_body outside rewrite/access/content, the other
 * two in the filters. */
START_TEST(refused_in_other_phases)
{
    run r;
    RUN_BODY(&r, "a=1", "header_filter", "ngx.req.read_body()",
             "body_filter", "ngx.req.get_body_data()", "log", "ngx.req.read_body()",
             "header_filter", "ngx.req.get_post_args()");
    HAS(r.trace, "API disabled in the context of header_filter_by_lua* (ngx.req.read_body)");
    HAS(r.trace, "API disabled in the context of body_filter_by_lua* (ngx.req.get_body_data)");
    HAS(r.trace, "API disabled in the context of log_by_lua* (ngx.req.read_body)");
    HAS(r.trace, "API disabled in the context of header_filter_by_lua* (ngx.req.get_post_args)");
    dc_sim_free(r.sim);
}
END_TEST

/* A policy denying each name: the call raises an error naming it, the plugin is "denied". */
START_TEST(policy_denies_each_name)
{
    static const char *const names[][2] = {
        {"ngx.req.read_body", "ngx.req.read_body()"},
        {"ngx.req.get_body_data", "ngx.req.get_body_data()"},
        {"ngx.req.get_post_args", "ngx.req.get_post_args()"},
    };
    for (size_t i = 0; i < 3; i++) {
        char policy[256], denied[128];
        snprintf(policy, sizeof policy, "{\"api\":{\"deny\":[\"%s\"]}}", names[i][0]);
        snprintf(denied, sizeof denied, "%s is denied by policy", names[i][0]);
        run r;
        tu_run_plugins(&r, &(tu_run_opts){.policy_json = policy, .body = "a=1"},
                       (const char *const[]){"content", names[i][1], "content",
                                             "ngx.say('next')", NULL});
        HAS(r.trace, "content:p1:denied");
        HAS(r.trace, denied);
        HAS(r.trace, "content:p2:ok");
        dc_sim_free(r.sim);
    }
}
END_TEST

/* The parse is charged by the bytes of the body: the same single call that fits the quota on
 * a short body trips it on a long one. */
START_TEST(charged_by_the_bytes)
{
    size_t n = 16000;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i += 4)
        memcpy(big + i, "a=1&", 4);
    big[n] = '\0';
    dc_quota q = {.instructions = 20000};
    static const char *const pc[] = {
        "access", "ngx.req.read_body() local t = ngx.req.get_post_args(1)", NULL};
    run r;
    tu_run_plugins(&r, &(tu_run_opts){.quota = &q, .body = "a=1&b=2"}, pc);
    ALL_OK(&r);
    dc_sim_free(r.sim);
    tu_run_plugins(&r, &(tu_run_opts){.quota = &q, .body = big}, pc);
    HAS(r.trace, "access:p1:quota:instructions");
    dc_sim_free(r.sim);
    free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("req_body");
    TCase *tc = tcase_create("req_body");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, read_then_data);
    tcase_add_test(tc, post_args_table);
    tcase_add_test(tc, not_read_and_no_body);
    tcase_add_test(tc, body_out_of_memory);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, refused_in_other_phases);
    tcase_add_test(tc, policy_denies_each_name);
    tcase_add_test(tc, charged_by_the_bytes);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
