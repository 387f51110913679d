/* test_api_openresty.c - the OpenResty functions that need no request: ngx.quote_sql_str,
 * ngx.crc32_short, ngx.hmac_sha1, ngx.parse_http_time, ngx.cookie_time, ngx.localtime,
 * ngx.utctime, ngx.update_time, ngx.null, ngx.worker.count, ngx.worker.exiting and ngx.config.
 * Each case that matches an OpenResty test names it (lua-nginx-module's t/ file and the case's
 * title); then the arguments each refuses, every phase, the host's answers (worker count,
 * exiting, a lagging clock), and a policy that denies each name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef tu_run out;

/* A roomy quota: megabyte inputs are charged about one instruction per byte. */
static const dc_quota roomy = {20000000, 5000, 8192};

static void run_code(out *o, const char *code, const dc_quota *q)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "or.test", .quota = q},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
}

static const char *lua_ok(out *o, const char *code)
{
    run_code(o, code, &roomy);
    ck_assert_msg(o->result == DC_RESULT_OK, "plugin failed: %s\n%s", o->msg, code);
    return o->body;
}

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))

/* ---- ngx.quote_sql_str ---- */
START_TEST(quote_sql_str_openresty)
{
    out o;
    /* t/115-quote-sql-str.t: "TEST 1: \0", "TEST 2: \t", "TEST 3: \b", "TEST 4: \Z" */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.quote_sql_str('a\\0b\\0'))\n"
        "ngx.say(ngx.quote_sql_str('a\\tb\\t'))\n"
        "ngx.say(ngx.quote_sql_str('a\\bb\\b'))\n"
        "ngx.say(ngx.quote_sql_str('a\\026b\\026'))"),
        "'a\\0b\\0'\n'a\\tb\\t'\n'a\\bb\\b'\n'a\\Zb\\Z'\n");
    /* the other escapes of MySQL's rules, the empty string, a number as its string, bytes
     * above 0x7f left alone */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.quote_sql_str('\\n\\r\\\\\\'\"'))\n"
        "ngx.say(ngx.quote_sql_str(''), ngx.quote_sql_str(12), ngx.quote_sql_str('\\195\\169'))\n"
        "local s = string.rep(\"a'\", 5000)\n"
        "assert(ngx.quote_sql_str(s) == \"'\" .. string.rep(\"a\\\\'\", 5000) .. \"'\")"),
        "'\\n\\r\\\\\\'\\\"'\n'''12''\xc3\xa9'\n");
}
END_TEST

/* ---- ngx.crc32_short, ngx.hmac_sha1 ---- */
START_TEST(crc32_short_and_hmac_openresty)
{
    out o;
    /* t/042-crc32.t: "TEST 1: short sanity" (and the same value as "TEST 2: long sanity");
     * nil is the empty string, whose CRC is 0, as OpenResty's wrapper makes it */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.crc32_short('hello, world'), ' ', ngx.crc32_long('hello, world'))\n"
        "ngx.say(ngx.crc32_short(''), ' ', ngx.crc32_short(nil), ' ', ngx.crc32_short(12))\n"
        "local s = string.rep('0123456789', 1000)\n"
        "assert(ngx.crc32_short(s) == ngx.crc32_long(s))"),
        "4289425978 4289425978\n0 0 1330857165\n");
    /* t/046-hmac.t: "TEST 1: sanity"; then RFC 2202's vectors 2 and 6 (a key longer than a
     * block is hashed first) and an empty key and message */
    ck_assert_str_eq(lua_ok(&o,
        "local function hex(s) return (s:gsub('.', function(c)\n"
        "  return string.format('%02x', c:byte()) end)) end\n"
        "ngx.say(ngx.encode_base64(ngx.hmac_sha1('thisisverysecretstuff',\n"
        "                                        'some string we want to sign')))\n"
        "ngx.say(hex(ngx.hmac_sha1('Jefe', 'what do ya want for nothing?')))\n"
        "ngx.say(hex(ngx.hmac_sha1(string.rep('\\170', 80),\n"
        "  'Test Using Larger Than Block-Size Key - Hash Key First')))\n"
        "ngx.say(hex(ngx.hmac_sha1('', '')))"),
        "R/pvxzHC4NLtj7S+kXFg/NePTmk=\n"
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79\n"
        "aa4ae5e15272d00e95705637ce8a3b55ed402112\n"
        "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d\n");
}
END_TEST

/* ---- ngx.parse_http_time, ngx.cookie_time ---- */
START_TEST(http_dates_openresty)
{
    out o;
    /* t/029-http-time.t: "TEST 4: parse_http_time in content_by_lua" and "TEST 5: bad arg for
     * parse_http_time in content_by_lua"; t/021-cookie-time.t: "TEST 1: cookie_time" */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.parse_http_time('Thu, 18 Nov 2010 11:27:35 GMT'))\n"
        "ngx.say(ngx.parse_http_time('abc') or 'nil')\n"
        "ngx.say(ngx.cookie_time(1290079655))"),
        "1290079655\nnil\nThu, 18-Nov-10 11:27:35 GMT\n");
    /* the three forms nginx reads, and its leniency: the week day and the zone are not read,
     * asctime pads a one-digit day, a two-digit year below 70 is 20xx */
    ck_assert_str_eq(lua_ok(&o,
        "local function p(s) return tostring(ngx.parse_http_time(s)) end\n"
        "ngx.say(p('Thursday, 18-Nov-10 11:27:35 GMT'), ' ', p('Thu Nov 18 11:27:35 2010'))\n"
        "ngx.say(p('Sun Nov  6 08:49:37 1994'), ' ', p('Sun, 06 Nov 1994 08:49:37 GMT'))\n"
        "ngx.say(p('Xyz, 18 Nov 2010 11:27:35'), ' ', p(', 18 Nov 2010 11:27:35 PST'))\n"
        "ngx.say(p('Tue, 01-Jan-69 00:00:00 GMT'), ' ', p('Wed, 01 Jan 1969 00:00:00 GMT'), ' ',\n"
        "        p('Thu, 01-Jan-70 00:00:00 GMT'))\n"
        "ngx.say(p('Wed, 29 Feb 2012 00:00:00 GMT'), ' ', p('Tue, 29 Feb 2011 00:00:00 GMT'))\n"
        "ngx.say(p('Tue, 29 Feb 2000 00:00:00 GMT'), ' ', p('Tue, 29 Feb 1900 00:00:00 GMT'))\n"
        /* refused: out of range fields, a month nginx cannot tell, short or cut strings */
        "ngx.say(p('Thu, 18 Nov 2010 24:00:00 GMT'), p('Thu, 18 Nov 2010 11:60:00 GMT'),\n"
        "        p('Thu, 31 Nov 2010 11:27:35 GMT'), p('Thu, 18 Xov 2010 11:27:35 GMT'),\n"
        "        p('Thu, 18 Nov 2010 11:27:3'), p('Thu, 18 Nov 2010'), p(''), p(','),\n"
        "        p('Thu, 18/Nov/2010 11:27:35'), p('Thu Nov 18 11:27:35 10'))\n"
        /* before the epoch: negative, except the second nginx's error value stands for */
        "ngx.say(p('Wed, 31 Dec 1969 23:59:58 GMT'), ' ', p('Wed, 31 Dec 1969 23:59:59 GMT'))\n"
        "ngx.say(p('Fri, 31 Dec 9999 23:59:59 GMT'))"),
        "1290079655 1290079655\n"
        "784111777 784111777\n"
        "1290079655 1290079655\n"
        "3124224000 -31536000 0\n"
        "1330473600 nil\n"
        "951782400 nil\n"
        "nilnilnilnilnilnilnilnilnilnil\n"
        "-2 nil\n"
        "253402300799\n");
    /* cookie_time: a four-digit year past 2037 (nginx's rule), the epoch for a negative time,
     * a fraction cut off; round trip through parse_http_time */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.cookie_time(4102444800), '|', ngx.cookie_time(-5), '|',\n"
        "        ngx.cookie_time(1290079655.9), '|', ngx.cookie_time(2145916799))\n"
        "assert(ngx.parse_http_time(ngx.cookie_time(1290079655)) == 1290079655)\n"
        "assert(ngx.parse_http_time(ngx.http_time(1290079655)) == 1290079655)"),
        "Fri, 01-Jan-2100 00:00:00 GMT|Thu, 01-Jan-70 00:00:00 GMT|"
        "Thu, 18-Nov-10 11:27:35 GMT|Thu, 31-Dec-37 23:59:59 GMT\n");
}
END_TEST

/* ---- ngx.localtime, ngx.utctime, ngx.update_time ---- */
START_TEST(clock_strings_openresty)
{
    out o;
    /* t/012-now.t: "TEST 1: use ngx.localtime in content_by_lua", "TEST 5: use ngx.time in
     * content_by_lua" (the shapes of localtime and utctime) and "TEST 8: use ngx.update_time &
     * ngx.now in content_by_lua"; each string is the clock's second as os.date writes it */
    ck_assert_str_eq(lua_ok(&o,
        "local pat = '^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$'\n"
        "local t1 = ngx.time()\n"
        "local l, u = ngx.localtime(), ngx.utctime()\n"
        "local t2 = ngx.time()\n"
        "assert(l:find(pat) and u:find(pat), l .. ' ' .. u)\n"
        "assert(u == os.date('!%Y-%m-%d %H:%M:%S', t1) or u == os.date('!%Y-%m-%d %H:%M:%S', t2), u)\n"
        "assert(l == os.date('%Y-%m-%d %H:%M:%S', t1) or l == os.date('%Y-%m-%d %H:%M:%S', t2), l)\n"
        "assert(select('#', ngx.update_time()) == 0)\n"
        "local now = ngx.now()\n"
        "assert(type(now) == 'number' and now >= t1, now)\n"
        "ngx.say(ngx.update_time(1, {}, 'ignored'))"),
        "\n");
}
END_TEST

/* ---- ngx.null ---- */
START_TEST(null_openresty)
{
    out o;
    /* t/069-null.t: "TEST 1: compare ngx.null with cjson.null", "TEST 2: output ngx.null",
     * "TEST 3: output ngx.null in a table", "TEST 4: log ngx.null"; and json.decode's nulls */
    tu_run_plugins(&o, &(tu_run_opts){.host = "or.test", .quota = &roomy},
                   (const char *const[]){"content",
        "ngx.say(json.null == ngx.null)\n"
        "ngx.say(json.encode(ngx.null), json.encode({ngx.null}), json.encode({a = ngx.null}))\n"
        "ngx.say('ngx.null: ', ngx.null)\n"
        "ngx.say({'ngx.null: ', ngx.null})\n"
        "print('ngx.null: ', ngx.null)\n"
        "local t = json.decode('[null, {\"k\": null}]')\n"
        "ngx.say(t[1] == ngx.null, t[2].k == ngx.null, type(ngx.null))\n"
        "ngx.say(pcall(function() ngx.null = 1 end))", NULL});
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    const char *log = dc_sim_log(o.sim);
    HAS(log, "ngx.null: null");
    tu_run_body(&o);
    dc_sim_free(o.sim);
    HAS(o.body, "true\nnull[null]{\"a\":null}\nngx.null: null\nngx.null: null\n"
                "truetrueuserdata\nfalse");
    HAS(o.body, "ngx.null: the ngx table is read-only");
}
END_TEST

/* ---- ngx.worker.count, ngx.worker.exiting, ngx.config ---- */
START_TEST(worker_and_config_openresty)
{
    out o;
    /* t/133-worker-count.t: "TEST 1: content_by_lua" (one worker: the simulated request's
     * host says 1); t/122-worker.t: "TEST 1: content_by_lua + ngx.worker.exiting";
     * t/114-config.t: "TEST 1: ngx.config.debug", "TEST 2: ngx.config.subsystem";
     * t/121-version.t: "TEST 1: nginx version", "TEST 2: ngx_lua_version" */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say('workers: ', ngx.worker.count())\n"
        "ngx.say('worker exiting: ', ngx.worker.exiting())\n"
        "ngx.say('debug: ', ngx.config.debug)\n"
        "ngx.say('subsystem: ', ngx.config.subsystem)\n"
        "ngx.say('version: ', ngx.config.nginx_version)\n"
        "ngx.say('version: ', ngx.config.ngx_lua_version)"),
        "workers: 1\nworker exiting: false\ndebug: false\nsubsystem: http\n"
        "version: 1022001\nversion: 10023\n");
    /* different on purpose (docs/compatibility.md): t/119-config-prefix.t "TEST 1:
     * content_by_lua" and t/125-configure-args.t "TEST 1: nginx configure" give paths of
     * the machine, which a plugin does not learn: both are "" */
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say('[', ngx.config.prefix(), '][', ngx.config.nginx_configure(), ']')\n"
        /* the facts are read-only */
        "local ok, err = pcall(function() ngx.config.debug = true end)\n"
        "ngx.say(ok, ' ', err:find('read-only', 1, true) ~= nil, ' ', ngx.config.debug)\n"
        "ok, err = pcall(function() ngx.worker.count = print end)\n"
        "ngx.say(ok, ' ', err:find('read-only', 1, true) ~= nil)"),
        "[][]\nfalse true false\nfalse true\n");
}
END_TEST

/* A host over the simulated request that answers as an nginx with four workers would, while
 * it shuts down, its clock cached an hour behind the wall clock. */
static int four_workers(void *hreq)
{
    (void)hreq;
    return 4;
}

static int no_workers(void *hreq)
{
    (void)hreq;
    return -3;
}

static int exiting(void *hreq)
{
    (void)hreq;
    return 1;
}

static double lagging_now(void *hreq)
{
    (void)hreq;
    return 1000000000.0;
}

static void run_on_host(out *o, const dc_host *h, const char *code)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "or.test", .quota = &roomy, .host_cbs = h},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
    ck_assert_msg(o->result == DC_RESULT_OK, "plugin failed: %s", o->msg);
}

START_TEST(host_answers)
{
    out o;
    dc_host h = *dc_sim_host();
    h.worker_count = four_workers;
    h.worker_exiting = exiting;
    h.now = lagging_now;
    /* ngx.update_time makes the cached clock catch up with the wall clock, for this state */
    run_on_host(&o, &h,
        "ngx.say(ngx.worker.count(), ' ', ngx.worker.exiting())\n"
        "ngx.say(ngx.now(), ' ', ngx.utctime())\n"
        "ngx.update_time()\n"
        "ngx.say(ngx.now() > 1700000000, ' ', ngx.time() > 1700000000, ' ',\n"
        "        ngx.utctime() > '2023')");
    ck_assert_str_eq(o.body, "4 true\n1000000000 2001-09-09 01:46:40\ntrue true true\n");
    /* a host without the callbacks, or with a count below one: one worker, not exiting */
    h = *dc_sim_host();
    h.worker_count = NULL;
    run_on_host(&o, &h, "ngx.say(ngx.worker.count(), ' ', ngx.worker.exiting())");
    ck_assert_str_eq(o.body, "1 false\n");
    h.worker_count = no_workers;
    run_on_host(&o, &h, "ngx.say(ngx.worker.count())");
    ck_assert_str_eq(o.body, "1\n");
}
END_TEST

/* ---- every phase ---- */
START_TEST(every_phase)
{
    /* OpenResty allows each of these in every phase dynacode has */
    static const char all[] =
        "assert(ngx.quote_sql_str(\"a'b\") == \"'a\\\\'b'\")\n"
        "assert(ngx.crc32_short('hello, world') == 4289425978)\n"
        "assert(ngx.encode_base64(ngx.hmac_sha1('thisisverysecretstuff',\n"
        "  'some string we want to sign')) == 'R/pvxzHC4NLtj7S+kXFg/NePTmk=')\n"
        "assert(ngx.parse_http_time('Thu, 18 Nov 2010 11:27:35 GMT') == 1290079655)\n"
        "assert(ngx.cookie_time(1290079655) == 'Thu, 18-Nov-10 11:27:35 GMT')\n"
        "assert(#ngx.localtime() == 19 and #ngx.utctime() == 19)\n"
        "ngx.update_time()\n"
        "assert(ngx.null == json.null)\n"
        "assert(ngx.worker.count() == 1 and ngx.worker.exiting() == false)\n"
        "assert(ngx.config.subsystem == 'http' and ngx.config.prefix() == '')\n";
    out o;
    tu_run_plugins(&o, &(tu_run_opts){.host = "or.test", .quota = &roomy},
                   (const char *const[]){"rewrite", all, "access", all, "content", all,
                                         "header_filter", all, "body_filter", all, "log", all,
                                         NULL});
    dc_sim_free(o.sim);
    static const char *const phases[] = {"rewrite", "access", "content", "header_filter",
                                         "body_filter", "log"};
    for (size_t i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s:p%zu:ok", phases[i], i + 1);
        HAS(o.trace, want);
    }
    ck_assert_msg(strstr(o.trace, "error") == NULL, "%s", o.trace);
}
END_TEST

/* ---- arguments ---- */
START_TEST(bad_arguments)
{
    out o;
    /* each wrong type or count is a Lua error naming the function; no metamethod of an
     * argument runs */
    ck_assert_str_eq(lua_ok(&o,
        "local ran = false\n"
        "local trap = setmetatable({}, {__tostring = function() ran = true return 'x' end,\n"
        "  __index = function() ran = true end, __len = function() ran = true return 1 end})\n"
        "local function e(f, ...)\n"
        "  local ok, err = pcall(f, ...)\n"
        "  assert(not ok and type(err) == 'string', 'accepted')\n"
        "  return (err:gsub('^[^:]*:%d+: ', ''))\n"
        "end\n"
        "ngx.say(e(ngx.quote_sql_str, trap))\n"
        "ngx.say(e(ngx.quote_sql_str, nil))\n"
        "ngx.say(e(ngx.quote_sql_str))\n"
        "ngx.say(e(ngx.quote_sql_str, 'a', 'b'))\n"
        "ngx.say(e(ngx.crc32_short, trap))\n"
        "ngx.say(e(ngx.crc32_short, print))\n"
        "ngx.say(e(ngx.hmac_sha1, 'k'))\n"
        "ngx.say(e(ngx.hmac_sha1, trap, 's'))\n"
        "ngx.say(e(ngx.hmac_sha1, 'k', true))\n"
        "ngx.say(e(ngx.hmac_sha1, nil, 's'))\n"
        "ngx.say(e(ngx.parse_http_time, 1290079655))\n"
        "ngx.say(e(ngx.parse_http_time, trap))\n"
        "ngx.say(e(ngx.parse_http_time))\n"
        "ngx.say(e(ngx.cookie_time, '1290079655'))\n"
        "ngx.say(e(ngx.cookie_time, nil))\n"
        "ngx.say(e(ngx.cookie_time, trap))\n"
        "ngx.say(e(ngx.cookie_time, 0/0))\n"
        "ngx.say(e(ngx.cookie_time, 1/0))\n"
        "ngx.say(e(ngx.cookie_time, 253402300800))\n"
        "ngx.say(tostring(ran))"),
        "bad argument #1 to 'quote_sql_str' (string expected, got table)\n"
        "bad argument #1 to 'quote_sql_str' (string expected, got nil)\n"
        "quote_sql_str: expecting one argument, but got 0\n"
        "quote_sql_str: expecting one argument, but got 2\n"
        "bad argument #1 to 'crc32_short' (string expected, got table)\n"
        "bad argument #1 to 'crc32_short' (string expected, got function)\n"
        "hmac_sha1: expecting 2 arguments, but got 1\n"
        "bad argument #1 to 'hmac_sha1' (string expected, got table)\n"
        "bad argument #2 to 'hmac_sha1' (string expected, got boolean)\n"
        "bad argument #1 to 'hmac_sha1' (string expected, got nil)\n"
        "bad argument #1 to 'parse_http_time' (string expected, got number)\n"
        "bad argument #1 to 'parse_http_time' (string expected, got table)\n"
        "bad argument #1 to 'parse_http_time' (string expected, got no value)\n"
        "bad argument #1 to 'cookie_time' (number expected, got string)\n"
        "bad argument #1 to 'cookie_time' (number expected, got nil)\n"
        "bad argument #1 to 'cookie_time' (number expected, got table)\n"
        "bad argument #1 to 'cookie_time' (time out of range)\n"
        "bad argument #1 to 'cookie_time' (time out of range)\n"
        "bad argument #1 to 'cookie_time' (time out of range)\n"
        "false\n");
    /* hostile strings: NUL bytes, every byte value, lengths around the date's minimum */
    ck_assert_str_eq(lua_ok(&o,
        "local all = {} for i = 0, 255 do all[#all + 1] = string.char(i) end\n"
        "all = table.concat(all)\n"
        "assert(#ngx.quote_sql_str(all) == 256 + 2 + 9)\n"
        "for n = 0, 40 do\n"
        "  local s = string.sub('Sun Nov  6 08:49:37 1994 and more bytes here', 1, n)\n"
        "  local t = ngx.parse_http_time(s)\n"
        "  assert(t == nil or (n >= 24 and t == 784111777), n)\n"
        "  assert(ngx.parse_http_time(string.rep('\\0', n)) == nil)\n"
        "  assert(ngx.parse_http_time(string.rep(' ', n)) == nil)\n"
        "  assert(ngx.parse_http_time(string.rep(',', n)) == nil)\n"
        "end\n"
        "ngx.say('ok')"),
        "ok\n");
}
END_TEST

/* ---- cost ---- */
START_TEST(constant_cost_functions_loop)
{
    /* the functions without a size to charge cost a constant: with no clock, the loop's own
     * instructions end it */
    dc_quota q = {300000, 0, 16384};
    out o;
    run_code(&o, "while true do ngx.localtime() ngx.utctime() ngx.update_time()\n"
                 "  ngx.cookie_time(1e9) ngx.worker.count() ngx.worker.exiting()\n"
                 "  ngx.config.prefix() ngx.config.nginx_configure() local _ = ngx.null end", &q);
    ck_assert_int_eq(o.result, DC_RESULT_QUOTA_INSTRUCTIONS);
}
END_TEST

/* ---- policy ---- */
typedef struct deny_case {
    const char *name, *code;
} deny_case;

static const deny_case deny_cases[] = {
    {"ngx.quote_sql_str", "ngx.quote_sql_str('a')"},
    {"ngx.crc32_short", "ngx.crc32_short('a')"},
    {"ngx.hmac_sha1", "ngx.hmac_sha1('k', 's')"},
    {"ngx.parse_http_time", "ngx.parse_http_time('x')"},
    {"ngx.cookie_time", "ngx.cookie_time(0)"},
    {"ngx.localtime", "ngx.localtime()"},
    {"ngx.utctime", "ngx.utctime()"},
    {"ngx.update_time", "ngx.update_time()"},
    {"ngx.null", "local x = ngx.null"},
    {"ngx.worker.count", "ngx.worker.count()"},
    {"ngx.worker.exiting", "ngx.worker.exiting()"},
    {"ngx.config", "local x = ngx.config.subsystem"},
};

START_TEST(policy_denies_each_name)
{
    /* a policy that denies the name: using it is a Lua error naming it, while the rest of
     * the API still works in the same plugin */
    const deny_case *c = &deny_cases[_i];
    char policy[256], code[512];
    snprintf(policy, sizeof policy, "{\"api\":{\"deny\":[\"%s\"]}}", c->name);
    snprintf(code, sizeof code,
             "assert(ngx.crc32_long('a') == 3904355907)\n"
             "local ok, err = pcall(function() %s end)\n"
             "assert(not ok)\n"
             "ngx.say(err)\n"
             "%s", c->code, c->code);
    out o;
    tu_run_plugins(&o, &(tu_run_opts){.host = "or.test", .policy_json = policy},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(&o);
    dc_sim_free(o.sim);
    char want[128];
    snprintf(want, sizeof want, "%s is denied by policy", c->name);
    HAS(o.body, want);
    HAS(o.msg, want);
    ck_assert_msg(o.result == DC_RESULT_DENIED, "%s: result %d (%s)", c->name, (int)o.result,
                  o.msg);
}
END_TEST

START_TEST(default_policy_allows_them)
{
    /* the default allow list covers every new name (it is drawn from the API table) */
    out o;
    tu_run_plugins(&o, &(tu_run_opts){.host = "or.test"},
                   (const char *const[]){"content",
        "local x = ngx.null\n"
        "ngx.say(ngx.quote_sql_str('a'), ngx.crc32_short('a'), #ngx.hmac_sha1('k', 's'),\n"
        "  ngx.parse_http_time('Thu, 18 Nov 2010 11:27:35 GMT'), ngx.cookie_time(0),\n"
        "  #ngx.localtime(), #ngx.utctime(), ngx.worker.count(), ngx.worker.exiting(),\n"
        "  ngx.config.subsystem, x == json.null)\n"
        "ngx.update_time()", NULL});
    tu_run_body(&o);
    dc_sim_free(o.sim);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body, "'a'390435590720"
                             "1290079655Thu, 01-Jan-70 00:00:00 GMT19191falsehttptrue\n");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("api_openresty");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, quote_sql_str_openresty);
    tcase_add_test(tc, crc32_short_and_hmac_openresty);
    tcase_add_test(tc, http_dates_openresty);
    tcase_add_test(tc, clock_strings_openresty);
    tcase_add_test(tc, null_openresty);
    tcase_add_test(tc, worker_and_config_openresty);
    tcase_add_test(tc, host_answers);
    tcase_add_test(tc, every_phase);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, constant_cost_functions_loop);
    tcase_add_loop_test(tc, policy_denies_each_name, 0,
                        (int)(sizeof deny_cases / sizeof deny_cases[0]));
    tcase_add_test(tc, default_policy_allows_them);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
