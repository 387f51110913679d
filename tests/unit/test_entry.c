/* test_entry.c - plugin code runs in an entry coroutine, as OpenResty runs a handler: the
 * coroutine is there (coroutine.running()), a yield of it hands control back and the code goes
 * on, a loop of yields is stopped by the quota, and the coroutine serves call after call (one
 * that died in an error or an exit is made again).
 */
#include <string.h>

#include "testutil.h"

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))

static const char *run(tu_run *r, int requests, const char *const *pc)
{
    tu_run_opts o = {.requests = requests};
    tu_run_plugins(r, &o, pc);
    return tu_run_body(r);
}

/* OpenResty (the coroutine tests of lua-nginx-module, 091-coroutine.t): in a handler,
 * coroutine.running() is the entry coroutine, and it is running. */
START_TEST(code_runs_in_a_coroutine)
{
    tu_run r;
    const char *b = run(&r, 1, (const char *const[]){"content",
        "local co = coroutine.running()\n"
        "ngx.say(type(co), ' ', coroutine.status(co))", NULL});
    ck_assert_str_eq(b, "thread running\n");
    dc_sim_free(r.sim);
}
END_TEST

/* A yield of the entry coroutine goes back to nginx, which resumes it: the code goes on. */
START_TEST(a_yield_of_the_entry_coroutine_goes_on)
{
    tu_run r;
    const char *b = run(&r, 1, (const char *const[]){"content",
        "ngx.say('a') coroutine.yield(1, 2) ngx.say('b')\n"
        "local ok = pcall(coroutine.yield) ngx.say('c ', tostring(ok))", NULL});
    ck_assert_str_eq(b, "a\nb\nc true\n");
    ck_assert_int_eq(r.result, DC_RESULT_OK);
    dc_sim_free(r.sim);
}
END_TEST

/* Yielding forever is a loop like any other: the instruction quota ends it, the next plugin
 * runs. */
START_TEST(a_loop_of_yields_trips_the_quota)
{
    tu_run r;
    dc_quota q = {.instructions = 100000, .time_ms = 0, .memory_kb = 1024};
    tu_run_opts o = {.quota = &q};
    tu_run_plugins(&r, &o, (const char *const[]){"content", "while true do coroutine.yield() end",
                                                  "content", "ngx.say('next')", NULL});
    HAS(r.trace, "content:p1:quota:instructions");
    HAS(r.trace, "content:p2:ok");
    ck_assert_str_eq(tu_run_body(&r), "next\n");
    dc_sim_free(r.sim);
}
END_TEST

/* The coroutine serves call after call: a plugin's globals live on, and a call that died (an
 * error, an exit) leaves the next call a working one. */
START_TEST(the_coroutine_serves_call_after_call)
{
    tu_run r;
    const char *b = run(&r, 3, (const char *const[]){"content",
        "n = (n or 0) + 1\n"
        "if n == 1 then error('first') end\n"
        "if n == 2 then ngx.say('two') return ngx.exit(200) end\n"
        "ngx.say(n, ' ', type(coroutine.running()))", NULL});
    ck_assert_str_eq(b, "3 thread\n");
    HAS(r.trace, "content:p1:error");
    dc_sim_free(r.sim);
}
END_TEST

/* The entry coroutine a plugin kept cannot be resumed by the plugin: it is running, or normal
 * (it resumed the coroutine that tries). */
START_TEST(a_kept_entry_coroutine_cannot_be_resumed)
{
    tu_run r;
    const char *b = run(&r, 2, (const char *const[]){"content",
        "saved = saved or coroutine.running()\n"
        "local ok, err = coroutine.resume(saved)\n"
        "local ok2, err2 = coroutine.wrap(function() return coroutine.resume(saved) end)()\n"
        "ngx.say(tostring(ok), ' ', err, ' / ', tostring(ok2), ' ', err2)", NULL});
    ck_assert_str_eq(b, "false cannot resume running coroutine / "
                        "false cannot resume normal coroutine\n");
    dc_sim_free(r.sim);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("entry");
    TCase *tc = tcase_create("entry");
    tcase_add_test(tc, code_runs_in_a_coroutine);
    tcase_add_test(tc, a_yield_of_the_entry_coroutine_goes_on);
    tcase_add_test(tc, a_loop_of_yields_trips_the_quota);
    tcase_add_test(tc, the_coroutine_serves_call_after_call);
    tcase_add_test(tc, a_kept_entry_coroutine_cannot_be_resumed);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
