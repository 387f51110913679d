/* test_api_cost.c - the codec, digest, ngx.re, json and time functions under hostile use: each
 * is charged to the instruction quota by the bytes or steps it processes (so a loop of calls
 * on a large input trips with no time quota at all), the regex U flag never lets PCRE2 read
 * past an invalid UTF-8 subject, and every argument of a foreign type or range gives a value
 * or a clear Lua error without running a plugin metamethod.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef tu_run out;

/* Runs code as the one content plugin of a request under the quotas q (0: unlimited). */
static void run_code(out *o, const char *code, const dc_quota *q)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "cost.test", .quota = q},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
}

/* ---- cost: each function in a loop on a large input meets the instruction quota ---- */

/* SETUP builds the input from N (its size in bytes, about); CALL is one call. */
typedef struct cost_case {
    const char *name, *setup, *call;
} cost_case;

static const cost_case cost_cases[] = {
    {"md5", "local s = string.rep('a', N)", "ngx.md5(s)"},
    {"md5_bin", "local s = string.rep('a', N)", "ngx.md5_bin(s)"},
    {"sha1_bin", "local s = string.rep('a', N)", "ngx.sha1_bin(s)"},
    {"crc32_long", "local s = string.rep('a', N)", "ngx.crc32_long(s)"},
    {"crc32_short", "local s = string.rep('a', N)", "ngx.crc32_short(s)"},
    {"hmac_sha1", "local s = string.rep('a', N)", "ngx.hmac_sha1('k', s)"},
    {"hmac_sha1 key", "local s = string.rep('a', N)", "ngx.hmac_sha1(s, 'x')"},
    {"quote_sql_str", "local s = string.rep(\"'\", N)", "ngx.quote_sql_str(s)"},
    {"quote_sql_str plain", "local s = string.rep('a', N)", "ngx.quote_sql_str(s)"},
    {"parse_http_time", "local s = string.rep('a', N)", "ngx.parse_http_time(s)"},
    {"parse_http_time spaces", "local s = 'Thu,' .. string.rep(' ', N)",
     "ngx.parse_http_time(s)"},
    {"encode_base64", "local s = string.rep('a', N)", "ngx.encode_base64(s)"},
    {"decode_base64", "local s = string.rep('QUFB', N / 4)", "ngx.decode_base64(s)"},
    {"decode_base64 invalid", "local s = string.rep('QUFB', N / 4) .. '!'",
     "ngx.decode_base64(s)"},
    {"escape_uri", "local s = string.rep(' ', N)", "ngx.escape_uri(s)"},
    {"escape_uri plain", "local s = string.rep('a', N)", "ngx.escape_uri(s)"},
    {"unescape_uri", "local s = string.rep('%41', N / 3)", "ngx.unescape_uri(s)"},
    {"encode_args", "local t = {a = string.rep(' ', N)}", "ngx.encode_args(t)"},
    {"decode_args", "local s = string.rep('&', N)", "ngx.decode_args(s, 0)"},
    {"decode_args value", "local s = 'a=' .. string.rep('%41', N / 3)", "ngx.decode_args(s)"},
    {"re.match", "local s = string.rep('a', N)", "ngx.re.match(s, 'b')"},
    {"re.match jit", "local s = string.rep('a', N)", "ngx.re.match(s, 'a*b', 'jo')"},
    {"re.find", "local s = string.rep('a', N)", "ngx.re.find(s, 'b')"},
    {"re.find utf8", "local s = string.rep('\\195\\169', N / 2)", "ngx.re.find(s, '^b', 'U')"},
    {"re.gmatch", "local s = string.rep('a', N)", "for m in ngx.re.gmatch(s, 'b') do end"},
    {"re.sub", "local s = string.rep('a', N)", "ngx.re.sub(s, 'b', 'c')"},
    {"re.gsub", "local s = string.rep('a', N)", "ngx.re.gsub(s, 'b', 'c')"},
    {"re.gsub template", "local s = string.rep('a', 16) local t = string.rep('$0', N / 2)",
     "ngx.re.gsub(s, 'a', t)"},
    /* no literal the subject lacks, so PCRE2 cannot give up early: it backtracks */
    {"re steps", "local s = string.rep('a', N > 16 and 24 or 3)", "ngx.re.find(s, '(a|a)*(?!)')"},
    {"json.encode", "local s = string.rep('a', N)", "json.encode(s)"},
    {"json.encode table", "local t = {} for i = 1, N / 8 do t[i] = i end", "json.encode(t)"},
    {"json.decode", "local s = '\"' .. string.rep('a', N) .. '\"'", "json.decode(s)"},
    {"json.decode array", "local s = '[' .. string.rep('1,', N / 2) .. '1]'", "json.decode(s)"},
    {"json.decode spaces", "local s = string.rep(' ', N) .. '1'", "json.decode(s)"},
};

#define COST_LOOP "for i = 1, 100 do %s end ngx.say('done')"

static void run_cost(out *o, const cost_case *c, int n, const dc_quota *q)
{
    char code[1024];
    snprintf(code, sizeof code, "local N = %d\n%s\n" COST_LOOP, n, c->setup, c->call);
    run_code(o, code, q);
}

START_TEST(cost_trips_instruction_quota)
{
    const cost_case *c = &cost_cases[_i];
    /* no clock: only the instruction quota can end the loop */
    dc_quota q = {2000000, 0, 16384};
    out o;
    /* on 16 bytes the hundred calls fit easily: the loop itself is cheap */
    run_cost(&o, c, 16, &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s on 16 bytes: %s", c->name, o.msg);
    ck_assert_str_eq(o.body, "done\n");
    /* on 64 KiB each call is charged for its bytes: 100 of them exceed 2M */
    run_cost(&o, c, 65536, &q);
    ck_assert_msg(o.result == DC_RESULT_QUOTA_INSTRUCTIONS, "%s on 64 KiB: result %d (%s)",
                  c->name, (int)o.result, o.msg);
}
END_TEST

START_TEST(cost_not_swallowed_by_pcall)
{
    /* a trip inside a charged function cannot be caught by the plugin */
    dc_quota q = {500000, 0, 16384};
    out o;
    run_code(&o, "local s = string.rep('a', 1048576)\n"
                 "for i = 1, 50 do pcall(ngx.md5, s) pcall(ngx.re.find, s, 'b') end\n"
                 "ngx.say('escaped')", &q);
    ck_assert_int_eq(o.result, DC_RESULT_QUOTA_INSTRUCTIONS);
    ck_assert_str_eq(o.body, "");
}
END_TEST

START_TEST(cost_regex_steps_trip_in_one_search)
{
    /* one search is charged for PCRE2's steps, not only for the subject's bytes: under the
     * same small quota a cheap search passes and a backtracking one on the same subject trips */
    dc_quota q = {50000, 0, 16384};
    out o;
    run_code(&o, "local m = ngx.re.match(string.rep('a', 28), '(a|b)+$')\n"
                 "ngx.say(#m[0])", &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body, "28\n");
    run_code(&o, "local m, err = ngx.re.match(string.rep('a', 28), '(a|a)*(?!)')\n"
                 "ngx.say('escaped ', tostring(err))", &q);
    ck_assert_msg(o.result == DC_RESULT_QUOTA_INSTRUCTIONS, "result %d (%s) %s",
                  (int)o.result, o.msg, o.body);
}
END_TEST

START_TEST(cost_constant_functions_loop)
{
    /* the clock and date functions cost a constant: the loop's own instructions end it */
    dc_quota q = {300000, 0, 16384};
    out o;
    run_code(&o, "while true do ngx.now() ngx.time() ngx.today() ngx.http_time(1e9)\n"
                 "  ngx.get_phase() ngx.worker.pid() ngx.worker.id() end", &q);
    ck_assert_int_eq(o.result, DC_RESULT_QUOTA_INSTRUCTIONS);
}
END_TEST

START_TEST(cost_results_unchanged)
{
    /* pieces do not change results: digests and codecs across piece boundaries */
    dc_quota q = {100000000, 0, 65536};
    out o;
    run_code(&o,
        "local s = string.rep('0123456789abcdef', 1000) .. 'xyz'\n"  /* 16003 bytes */
        "ngx.say(ngx.md5(s), ' ', ngx.crc32_long(s))\n"
        "assert(ngx.decode_base64(ngx.encode_base64(s)) == s)\n"
        "assert(ngx.decode_base64(ngx.encode_base64(s, true)) == s)\n"
        "local u = string.rep('a %C3%A9+', 3000)\n"
        "assert(ngx.unescape_uri(ngx.escape_uri(ngx.unescape_uri(u))) == ngx.unescape_uri(u))\n"
        "assert(ngx.escape_uri(string.rep(' ', 5000)) == string.rep('%20', 5000))\n"
        "local big = string.rep('\"\\\\\\n\\1', 3000)\n"
        "assert(json.decode(json.encode(big)) == big)\n"
        "assert(json.decode(string.rep(' ', 10000) .. '[1]' .. string.rep(' ', 9000))[1] == 1)\n"
        "local r, n = ngx.re.gsub(string.rep('ab', 5000), 'b', 'c')\n"
        "assert(n == 5000 and r == string.rep('ac', 5000))\n"
        "local e = string.rep('\\195\\169', 3000)\n"
        "local r2, n2 = ngx.re.gsub(e, '.', 'x', 'U') assert(n2 == 3000 and r2 == string.rep('x', 3000))\n"
        "local k = 0 for m in ngx.re.gmatch(e, '\\\\X', 'u') do k = k + 1 end assert(k == 3000)\n",
        &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    /* md5 and crc32 of the same 16003 bytes, computed without pieces */
    char want[128];
    {
        FILE *f = popen("printf '0123456789abcdef%.0s' $(seq 1000) | { cat; printf xyz; } | "
                        "md5sum | cut -c1-32", "r");
        ck_assert_ptr_nonnull(f);
        char md5[64] = "";
        ck_assert_ptr_nonnull(fgets(md5, sizeof md5, f));
        pclose(f);
        md5[strcspn(md5, "\n")] = '\0';
        snprintf(want, sizeof want, "%s ", md5);
    }
    ck_assert_msg(strncmp(o.body, want, strlen(want)) == 0, "%s vs %s", o.body, want);
}
END_TEST

/* ---- the U flag ---- */
START_TEST(re_U_flag_checks_the_subject)
{
    dc_quota q = {100000000, 0, 16384};
    out o;
    /* truncated and invalid sequences at the very end of the subject: with the check
     * skipped, PCRE2 would read past the string (the address sanitizer build sees it) */
    run_code(&o,
        "local bad = {'\\240', 'a\\226\\130', '\\195', 'abc\\244\\143\\191', '\\237\\160\\128',\n"
        "             '\\192\\128', '\\248\\136\\128\\128\\128', 'ok\\255'}\n"
        "local n = 0\n"
        "for _, subj in ipairs(bad) do\n"
        "  for _, pat in ipairs({'.', '.$', '\\\\X', '(?<=.)', '[^a]+', '\\\\C'}) do\n"
        "    for _, opt in ipairs({'U', 'u', 'jU', 'Uo', 'ud'}) do\n"
        "      local m, err = ngx.re.match(subj, pat, opt)\n"
        "      assert(m == nil and err and err:find('^pcre_exec%(%) failed: %-%d+$'), tostring(err))\n"
        "      local a, b, ferr = ngx.re.find(subj, pat, opt)\n"
        "      assert(a == nil and ferr, 'find')\n"
        "      local r, c, gerr = ngx.re.gsub(subj, pat, 'x', opt)\n"
        "      assert(r == nil and gerr, 'gsub')\n"
        "      local v, ierr = ngx.re.gmatch(subj, pat, opt)()\n"
        "      assert(v == nil and ierr, 'gmatch')\n"
        "      n = n + 1\n"
        "    end\n"
        "  end\n"
        "end\n"
        /* a start inside a character of a valid subject is an error too */
        "local m, err = ngx.re.match('h\\195\\169llo', '.', 'U', {pos = 3})\n"
        "assert(m == nil and err:find('UTF', 1, true), err)\n"
        /* a pattern that turns UTF on itself gets the same treatment */
        "m, err = ngx.re.match('a\\226\\130', '(*UTF).$') assert(m == nil and err == 'pcre_exec() failed: -3', err)\n"
        "local r, c = ngx.re.gsub('\\195\\169\\195\\169', '(*UTF)', '-') assert(r == '-\\195\\169-\\195\\169-' and c == 3, r)\n"
        /* valid subjects still match as OpenResty's U does */
        "ngx.say(n, ' ', ngx.re.match('h\\195\\169llo', '^h(.)llo$', 'U')[1] == '\\195\\169',\n"
        "        ngx.re.match('h\\195\\169llo', 'l+', 'U', {pos = 4})[0])",
        &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body, "240 truell\n");
}
END_TEST

START_TEST(re_ctx_pos_and_limits)
{
    dc_quota q = {100000000, 0, 16384};
    out o;
    run_code(&o,
        "local out = {}\n"
        "for _, p in ipairs({0, -1, -2^53, 2^53, 1/0, -1/0, 0/0, 1e300, 4, 5, 100, 1.5, '2'}) do\n"
        "  local ctx = {pos = p}\n"
        "  local f, t = ngx.re.find('abcd', '[a-d]', '', ctx)\n"
        "  out[#out + 1] = tostring(f)\n"
        "end\n"
        "ngx.say(table.concat(out, ','))\n"
        /* ctx is read and written raw: its metamethods never run */
        "local ran\n"
        "local trap = setmetatable({}, {__index = function() ran = 1 end,\n"
        "                                __newindex = function() ran = 2 end})\n"
        "local m = ngx.re.match('abc', 'b', '', trap)\n"
        "ngx.say(m[0], rawget(trap, 'pos'), tostring(ran))\n"
        /* the match limit ends a catastrophic search with an error, within the quota */
        "local m2, err = ngx.re.match(string.rep('a', 40) .. 'b', '^(a+)+$', 'j')\n"
        "ngx.say(tostring(m2), ' ', err)",
        &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body,
                     "1,1,1,nil,nil,1,1,nil,4,nil,nil,1,2\n"
                     "b3nil\n"
                     "nil pcre2_match() failed: match limit exceeded\n");
}
END_TEST

/* ---- hostile arguments ---- */
START_TEST(hostile_arguments)
{
    /* every function of these areas, each argument in turn replaced by a hostile value (the
     * others left valid): each call returns or raises a string error; no metamethod of an
     * argument runs; nothing crashes (the address sanitizer build runs this too) */
    dc_quota q = {0, 0, 65536};
    out o;
    run_code(&o,
        "local ran = {}\n"
        "local mt = {}\n"
        "for _, k in ipairs({'__index', '__newindex', '__len', '__tostring', '__call', '__eq',\n"
        "                    '__lt', '__le', '__concat', '__unm', '__add', '__pairs', '__ipairs'}) do\n"
        "  mt[k] = function() ran[#ran + 1] = k error('metamethod ' .. k) end\n"
        "end\n"
        "local trap = setmetatable({}, mt)\n"
        "local trap_arr = setmetatable({1, 2, 'x'}, mt)\n"
        "local vals = {false, true, 0, -1, 1.5, 2^31, -2^31, 2^53, -2^63, 1e308, 1/0, -1/0, 0/0,\n"
        "  '', 'a\\0b', '\\r\\n', '%', '%zz', '$', '${', '\\255\\254', string.rep('x', 1048576),\n"
        "  string.rep('(', 5000), {}, {a = {b = {}}}, trap, trap_arr, {trap}, print,\n"
        "  function() return 'r' end, coroutine.create(print), json.null}\n"
        "local NIL = {}\n"
        "table.insert(vals, 1, NIL)\n"
        "local fns = {\n"
        "  {'md5', ngx.md5, {'a'}}, {'md5_bin', ngx.md5_bin, {'a'}},\n"
        "  {'sha1_bin', ngx.sha1_bin, {'a'}}, {'crc32_long', ngx.crc32_long, {'a'}},\n"
        "  {'encode_base64', ngx.encode_base64, {'a', true}},\n"
        "  {'decode_base64', ngx.decode_base64, {'YQ=='}},\n"
        "  {'escape_uri', ngx.escape_uri, {'a b', 2}}, {'unescape_uri', ngx.unescape_uri, {'a%20'}},\n"
        "  {'encode_args', ngx.encode_args, {{a = 1, b = {1, 2}}}},\n"
        "  {'decode_args', ngx.decode_args, {'a=1&b', 10}},\n"
        "  {'re.match', ngx.re.match, {'abc', '(b)', 'jo', {pos = 1}, {}}},\n"
        "  {'re.find', ngx.re.find, {'abc', '(b)', 'jo', {pos = 1}, 1}},\n"
        "  {'re.gmatch', ngx.re.gmatch, {'abc', '(b)', 'jo'}},\n"
        "  {'re.sub', ngx.re.sub, {'abc', '(b)', '[$1]', 'jo'}},\n"
        "  {'re.gsub', ngx.re.gsub, {'abc', '(b)', function(m) return m[1] end, 'jo'}},\n"
        "  {'json.encode', json.encode, {{1, 2}}}, {'json.decode', json.decode, {'[1]'}},\n"
        "  {'now', ngx.now, {}}, {'time', ngx.time, {}}, {'today', ngx.today, {}},\n"
        "  {'http_time', ngx.http_time, {0}}, {'get_phase', ngx.get_phase, {}},\n"
        "  {'worker.pid', ngx.worker.pid, {}}, {'worker.id', ngx.worker.id, {}},\n"
        "  {'gmatch iterator', ngx.re.gmatch('abc', '.'), {}},\n"
        "}\n"
        "local calls, errors = 0, 0\n"
        "for _, f in ipairs(fns) do\n"
        "  local name, fn, base = f[1], f[2], f[3]\n"
        "  for pos = 1, 5 do\n"
        "    for _, v in ipairs(vals) do\n"
        "      local a = {base[1], base[2], base[3], base[4], base[5]}\n"
        "      if v == NIL then a[pos] = nil else a[pos] = v end\n"
        "      local ok, err = pcall(fn, a[1], a[2], a[3], a[4], a[5])\n"
        "      calls = calls + 1\n"
        "      if not ok then\n"
        "        errors = errors + 1\n"
        "        assert(type(err) == 'string' and #err > 0, name .. ': error value ' .. type(err))\n"
        "        assert(not err:find('metamethod', 1, true), name .. ': ' .. err)\n"
        "      elseif type(err) == 'function' then\n"
        "        for _ = 1, 3 do pcall(err, v, v) end\n"
        "      end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "ngx.say(calls, ' ', errors > 0, ' ', #ran == 0 and 'clean' or table.concat(ran, ','))",
        &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body, "4125 true clean\n");
}
END_TEST

START_TEST(hostile_arguments_messages)
{
    dc_quota q = {100000000, 0, 16384};
    out o;
    static const struct {
        const char *code, *msg;
    } cases[] = {
        {"ngx.md5({})", "bad argument #1 to 'md5' (string expected, got table)"},
        {"ngx.sha1_bin(true)", "bad argument #1 to 'sha1_bin' (string expected, got boolean)"},
        {"ngx.encode_base64('x', 0)", "bad argument #2 to 'encode_base64' (boolean expected"},
        {"ngx.escape_uri('x', 0/0)", "\"type\" nan out of range"},
        {"ngx.escape_uri('x', 1/0)", "\"type\" inf out of range"},
        {"ngx.escape_uri('x', -1)", "\"type\" -1 out of range"},
        {"ngx.decode_args('a', 0/0)", "bad argument #2 to 'decode_args' (number expected, got nan)"},
        {"ngx.decode_args({})", "bad argument #1"},
        {"ngx.encode_args(setmetatable({}, {__pairs = error}))", NULL},
        {"ngx.http_time(0/0)", "bad argument #1 to 'http_time' (time out of range)"},
        {"ngx.http_time(1e300)", "bad argument #1 to 'http_time' (time out of range)"},
        {"ngx.http_time('x')", "bad argument #1 to 'http_time'"},
        {"ngx.re.match('a', {})", "bad argument #2"},
        {"ngx.re.find('a', 'a', {})", "bad argument #3"},
        {"ngx.re.gmatch({}, 'a')", "bad argument #1"},
        {"ngx.re.gsub('a', 'a', true)", "bad argument #3 to 'gsub'"},
        {"ngx.re.sub('a', 'a', 'b', 'q')", "unknown flag \"q\""},
        {"json.encode(coroutine.create(print))", "Cannot serialise thread"},
        {"json.decode(nil)", "bad argument #1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_code(&o, cases[i].code, &q);
        if (!cases[i].msg) {  /* either way, as long as it is not a crash */
            ck_assert_msg(o.result == DC_RESULT_OK || o.result == DC_RESULT_ERROR, "%s",
                          cases[i].code);
            continue;
        }
        ck_assert_msg(o.result == DC_RESULT_ERROR, "%s did not fail", cases[i].code);
        ck_assert_msg(strstr(o.msg, cases[i].msg) != NULL, "%s: \"%s\" not in \"%s\"",
                      cases[i].code, cases[i].msg, o.msg);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api_cost");
    TCase *tc = tcase_create("api_cost");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, cost_trips_instruction_quota, 0,
                        (int)(sizeof cost_cases / sizeof cost_cases[0]));
    tcase_add_test(tc, cost_not_swallowed_by_pcall);
    tcase_add_test(tc, cost_regex_steps_trip_in_one_search);
    tcase_add_test(tc, cost_constant_functions_loop);
    tcase_add_test(tc, cost_results_unchanged);
    tcase_add_test(tc, re_U_flag_checks_the_subject);
    tcase_add_test(tc, re_ctx_pos_and_limits);
    tcase_add_test(tc, hostile_arguments);
    tcase_add_test(tc, hostile_arguments_messages);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
