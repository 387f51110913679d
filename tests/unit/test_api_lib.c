/* test_api_lib.c - the plugin API's pure functions end to end (a content plugin in the real
 * sandbox on the simulated request): ngx.re.* (captures, options, ctx.pos, gmatch, sub/gsub
 * templates and callbacks, bad patterns, the match limit, the cache), the codecs (base64,
 * md5, sha1, crc32 against known vectors, URI escaping, args) and json.encode/decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef tu_run out;

/* Runs code as the one content plugin of a request; fills o. */
static void run_code(out *o, const char *code, const dc_quota *q)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "lib.test", .quota = q},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
}

/* The default memory quota, with room for megabyte inputs (charged about one instruction per
 * byte) and a clock generous enough for slow runs (valgrind, sanitizers). */
static const dc_quota roomy = {20000000, 5000, 4096};

/* The body of a plugin that must succeed. */
static const char *lua_ok(out *o, const char *code)
{
    run_code(o, code, &roomy);
    ck_assert_msg(o->result == DC_RESULT_OK, "plugin failed: %s\n%s", o->msg, code);
    return o->body;
}

/* The message of a plugin that must fail. */
static const char *lua_err(out *o, const char *code)
{
    run_code(o, code, &roomy);
    ck_assert_msg(o->result == DC_RESULT_ERROR, "plugin did not fail: %s", code);
    return o->msg;
}

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))

/* ---- ngx.re ---- */
START_TEST(re_match_captures)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local m = ngx.re.match('hello 1234', '([a-z]+) (?<num>\\\\d+)')\n"
        "ngx.say(m[0], '|', m[1], '|', m[2], '|', m.num, '|', #m)\n"
        "m = ngx.re.match('a', '(a)|(b)') ngx.say(m[1], tostring(m[2]))\n"
        "ngx.say(tostring(ngx.re.match('abc', 'x')))\n"
        "ngx.say(ngx.re.match('HeLLo', 'hello', 'i')[0])\n"
        "ngx.say(tostring(ngx.re.match('xab', 'ab', 'a')), ngx.re.match('a\\nb', '^b', 'm')[0])\n"
        "ngx.say(ngx.re.match('a\\nb', 'a.b', 's')[0] == 'a\\nb', ngx.re.match('ab', 'a b', 'x')[0])\n"
        "m = ngx.re.match('ab', '(?<x>a)(?<x>b)', 'D') ngx.say(m.x[1], m.x[2])\n"
        "local res = {stale = 1} m = ngx.re.match('q', 'q', 'jo', nil, res)\n"
        "ngx.say(m == res, res[0], res.stale)\n"
        "ngx.say(ngx.re.match('h\\195\\169llo', '^h.llo$', 'u')[0])"),
        "hello 1234|hello|1234|1234|2\nafalse\nnil\nHeLLo\nnilb\ntrueab\nab\ntrueq1\nh\xc3\xa9llo\n");
}
END_TEST

START_TEST(re_find_ctx_and_nth)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local ctx = {pos = 2}\n"
        "local from, to = ngx.re.find('abab', 'ab', 'jo', ctx) ngx.say(from, to, ctx.pos)\n"
        "ngx.say(ngx.re.find('hello 1234', '([a-z]+) (\\\\d+)', 'jo', nil, 2))\n"
        "ngx.say(select('#', ngx.re.find('abc', 'x')))\n"
        "local a, b, err = ngx.re.find('ab', '(a)', nil, nil, 3) ngx.say(tostring(a), err)\n"
        "ctx = {pos = 3} ngx.say(ngx.re.match('abab', 'a', nil, ctx)[0], ctx.pos)\n"
        "ctx = {pos = 10} ngx.say(tostring(ngx.re.match('abab', 'a', nil, ctx)))"),
        "345\n710\n1\nnilnth out of bound\na4\nnil\n");
}
END_TEST

START_TEST(re_gmatch)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "for m in ngx.re.gmatch('a1b2c3', '([a-z])(\\\\d)') do ngx.print(m[0], m[2], ' ') end\n"
        "local n = 0 for m in ngx.re.gmatch('abc', '') do n = n + 1 end ngx.say(n)\n"
        "n = 0 for m in ngx.re.gmatch('\\195\\169\\195\\169', '', 'u') do n = n + 1 end ngx.say(n)\n"
        "local it = ngx.re.gmatch('aa', 'a*') ngx.say(it()[0], '[', it()[0], ']', tostring(it()))\n"
        "local f, err = ngx.re.gmatch('x', '(') ngx.say(tostring(f), ' ', err)"),
        "a11 b22 c33 4\n3\naa[]nil\nnil pcre2_compile() failed: missing closing parenthesis in "
        "\"(\"\n");
}
END_TEST

START_TEST(re_sub_gsub)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.re.sub('hello world', 'o', '0'))\n"
        "ngx.say(ngx.re.gsub('hello world', 'o', '0'))\n"
        "ngx.say(ngx.re.gsub('a-b', '(\\\\w)', '[$0$1${1}x$$]'))\n"
        "ngx.say(ngx.re.gsub('abc', '[a-c]', function(m) return m[0]:upper() end))\n"
        "ngx.say(ngx.re.gsub('abc', 'b', function(m) return nil end))\n"
        "ngx.say(ngx.re.gsub('abc', 'x', 'y'))\n"
        "ngx.say(ngx.re.gsub('abc', '', '-'))\n"
        "ngx.say(ngx.re.sub('abc', '(b)(x)?', '<$2$9>'))\n"
        "ngx.say(ngx.re.gsub('aaa', 'a', function(m)\n"
        "  return ngx.re.gsub(m[0], 'a', 'b') end))\n"
        "ngx.say(ngx.re.gsub('ab', 'b', 5))"),
        "hell0 world1\nhell0 w0rld2\n[aaax$]-[bbbx$]2\nABC3\nanilc1\nabc0\n-a-b-c-4\na<>c1\n"
        "bbb3\na51\n");
}
END_TEST

START_TEST(re_errors)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local m, err = ngx.re.match('x', '(') ngx.say(tostring(m), ' ', err)\n"
        "local s, n, e = ngx.re.sub('x', '[', 'y') ngx.say(tostring(s), tostring(n), ' ', e)\n"
        "s, n, e = ngx.re.gsub('x', 'x', '$a') ngx.say(tostring(s), tostring(n), ' ', e)\n"
        "s, n, e = ngx.re.gsub('x', 'x', '${1') ngx.say(tostring(s), ' ', e)\n"
        "local a, b, c = ngx.re.find('x', '(?<') ngx.say(tostring(a), tostring(b), ' ', c ~= nil)\n"
        "m, err = ngx.re.match(string.rep('a', 40) .. 'b', '^(a+)+$')\n"
        "ngx.say(tostring(m), ' ', err)\n"
        "m, err = ngx.re.match(string.rep('a', 40) .. 'b', '^(a|aa)+$', 'j')\n"
        "ngx.say(tostring(m), ' ', err ~= nil)\n"
        "m, err = ngx.re.match('\\255', '.', 'u') ngx.say(tostring(m), ' ', err ~= nil)"),
        "nil pcre2_compile() failed: missing closing parenthesis in \"(\"\n"
        "nilnil pcre2_compile() failed: missing terminating ] for character class in \"[\"\n"
        "nilnil failed to compile the replacement template\n"
        "nil failed to compile the replacement template\n"
        "nilnil true\n"
        "nil pcre2_match() failed: match limit exceeded\n"
        "nil true\n"
        "nil true\n");
    HAS(lua_err(&o, "ngx.re.match('a', 'a', 'z')"), "unknown flag \"z\" (flags \"z\")");
    HAS(lua_err(&o, "ngx.re.gsub('a', 'a', {})"),
        "bad argument #3 to 'gsub' (string or function expected, got table)");
    HAS(lua_err(&o, "ngx.re.gsub('a', 'a', function() return {} end)"),
        "attempt to use a table value as a replacement");
    HAS(lua_err(&o, "ngx.re.match(nil, 'a')"), "bad argument #1");
}
END_TEST

START_TEST(re_cache_is_bounded)
{
    out o;
    /* 2000 distinct patterns under the default 4 MiB: compiled ones beyond the cache are
     * collected, memory stays low (a generous clock for slow runs, valgrind) */
    dc_quota q = {10000000, 10000, 4096};
    run_code(&o, "for i = 1, 2000 do assert(ngx.re.match('k' .. i, 'k' .. i .. '$', 'j')) end\n"
                 "ngx.say(collectgarbage('count') < 2048)", &q);
    ck_assert_msg(o.result == DC_RESULT_OK, "%s", o.msg);
    ck_assert_str_eq(o.body, "true\n");
}
END_TEST

START_TEST(re_search_is_bounded)
{
    /* PCRE2's match limit counts per start position: this search would take seconds */
    out o;
    const char *code = "local s = string.rep(string.rep('a', 12) .. 'c', 20000)\n"
                       "local m, err = ngx.re.match(s, '(a+)+$', OPT)\n"
                       "ngx.say(tostring(m), ' ', err)";
    dc_quota q = {0, 10000, 0};
    char buf[512];
    snprintf(buf, sizeof buf, "local OPT = ''\n%s", code);
    run_code(&o, buf, &q);
    ck_assert_str_eq(o.body, "nil pcre2_match() failed: match limit exceeded\n");
    snprintf(buf, sizeof buf, "local OPT = 'j'\n%s", code);
    run_code(&o, buf, &q);
    ck_assert_str_eq(o.body, "nil pcre2_match() failed: match limit exceeded\n");
    q.time_ms = 10;
    run_code(&o, buf, &q);
    ck_assert_int_eq(o.result, DC_RESULT_QUOTA_TIME);
}
END_TEST

START_TEST(re_gsub_stays_in_time_quota)
{
    out o;
    dc_quota q = {0, 20, 0};  /* 20 ms, no instruction or memory limit */
    run_code(&o, "local s = string.rep('a', 4000000)\n"
                 "while true do ngx.re.gsub(s, '(a)', '$1$1') end", &q);
    ck_assert_int_eq(o.result, DC_RESULT_QUOTA_TIME);
}
END_TEST

/* ---- codecs ---- */
START_TEST(base64)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "for _, s in ipairs({'', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar'}) do\n"
        "  local e = ngx.encode_base64(s)\n"
        "  assert(ngx.decode_base64(e) == s and ngx.decode_base64(ngx.encode_base64(s, true)) == s)\n"
        "  ngx.print(e, ',', ngx.encode_base64(s, true), ' ')\n"
        "end\n"
        "ngx.say(ngx.encode_base64(nil), ngx.encode_base64(12), ' ', ngx.encode_base64('\\255\\254'))\n"
        "ngx.say(tostring(ngx.decode_base64('Zm9v!')), tostring(ngx.decode_base64('Z')),\n"
        "        ngx.decode_base64('Zg'), ngx.decode_base64('YQ==garbage'),\n"
        "        tostring(ngx.decode_base64('Zm 9')), #ngx.decode_base64(''))"),
        ", Zg==,Zg Zm8=,Zm8 Zm9v,Zm9v Zm9vYg==,Zm9vYg Zm9vYmE=,Zm9vYmE Zm9vYmFy,Zm9vYmFy "
        "MTI= //4=\nnilnilfanil0\n");
    HAS(lua_err(&o, "ngx.decode_base64(nil)"),
        "bad argument #1 to 'decode_base64' (string expected, got nil)");
    HAS(lua_err(&o, "ngx.encode_base64('x', 1)"), "bad argument #2");
}
END_TEST

#define HEX_FN "local function hex(s) return (s:gsub('.', function(c) " \
               "return string.format('%02x', c:byte()) end)) end\n"

START_TEST(digests)
{
    out o;
    ck_assert_str_eq(lua_ok(&o, HEX_FN
        "ngx.say(ngx.md5(''), ' ', ngx.md5('abc'), ' ', ngx.md5(nil))\n"
        "ngx.say(ngx.md5('The quick brown fox jumps over the lazy dog'))\n"
        "ngx.say(ngx.md5(string.rep('1234567890', 8)))\n"
        "ngx.say(ngx.md5(string.rep('a', 55)), ' ', ngx.md5(string.rep('a', 56)))\n"
        "ngx.say(#ngx.md5_bin('x'), ' ', hex(ngx.md5_bin('abc')) == ngx.md5('abc'))\n"
        "ngx.say(hex(ngx.sha1_bin('')), ' ', hex(ngx.sha1_bin('abc')))\n"
        "ngx.say(hex(ngx.sha1_bin('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))\n"
        "ngx.say(hex(ngx.sha1_bin(string.rep('a', 1000000))))\n"
        "ngx.say(ngx.crc32_long('hello'), ' ', ngx.crc32_long(''), ' ',\n"
        "        ngx.crc32_long('The quick brown fox jumps over the lazy dog'))"),
        "d41d8cd98f00b204e9800998ecf8427e 900150983cd24fb0d6963f7d28e17f72 "
        "d41d8cd98f00b204e9800998ecf8427e\n"
        "9e107d9d372bb6826bd81d3542a419d6\n"
        "57edf4a22be3c955ac49da2e2107b67a\n"
        "ef1772b6dff9a122358552954ad0df65 3b0c8ac703f828b04c6c197006d17218\n"
        "16 true\n"
        "da39a3ee5e6b4b0d3255bfef95601890afd80709 a9993e364706816aba3e25717850c26c9cd0d89d\n"
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1\n"
        "34aa973cd4c4daa4f61eeb2bdbad27316534016f\n"
        "907060870 0 1095738169\n");
    HAS(lua_err(&o, "ngx.md5({})"), "bad argument #1 to 'md5' (string expected, got table)");
}
END_TEST

START_TEST(uri_escaping)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.escape_uri('a b&c=d/\\195\\169~-._*'), ' ', ngx.escape_uri(nil))\n"
        "ngx.say(ngx.escape_uri(\"-_.!~*'()\"), ngx.escape_uri(',$@|`'))\n"
        "ngx.say(ngx.escape_uri('a b/c?#%', 0), ' ', ngx.escape_uri('a+b c', 1))\n"
        "ngx.say(ngx.unescape_uri('a%20b+c%zz%4'), ' ', ngx.unescape_uri('%C3%A9%2f'))"),
        "a%20b%26c%3Dd%2F%C3%A9~-._* \n"
        "-_.!~*'()%2C%24%40%7C%60\n"
        "a%20b/c%3F%23%25 a%2Bb%20c\n"
        "a b c%zz%4 \xc3\xa9/\n");
    HAS(lua_err(&o, "ngx.escape_uri('x', 7)"), "\"type\" 7 out of range");
    HAS(lua_err(&o, "ngx.escape_uri('x', 'y')"), "\"type\" is not a number");
}
END_TEST

START_TEST(args_codec)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(ngx.encode_args({a = 1}), ' ', ngx.encode_args({a = true}), ' [',\n"
        "        ngx.encode_args({a = false}), '] ', ngx.encode_args({a = {1, true, 'x y'}}), ' ',\n"
        "        ngx.encode_args({['k&'] = 'v='}), ' [', ngx.encode_args({}), ']')\n"
        "local t = ngx.decode_args('a=1&b=2&b=3&c&d=%41+B')\n"
        "ngx.say(t.a, #t.b, t.b[2], tostring(t.c), t.d)\n"
        "local u, more = ngx.decode_args('a=1&b=2&c=3', 2) local n = 0\n"
        "for _ in pairs(u) do n = n + 1 end ngx.say(n, more)\n"
        "local all = ngx.decode_args(string.rep('x=1&', 300), 0) ngx.say(#all.x)"),
        "a=1 a [] a=1&a&a=x%20y k%26=v%3D []\n123trueA B\n2truncated\n300\n");
    HAS(lua_err(&o, "ngx.encode_args({[1] = 2})"),
        "attempt to use a non-string key in the \"args\" option table");
    HAS(lua_err(&o, "ngx.encode_args({a = print})"), "attempt to use function as query arg value");
    HAS(lua_err(&o, "ngx.encode_args('a')"), "bad argument #1 to 'encode_args'");
}
END_TEST

/* ---- json ---- */
START_TEST(json_encode)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(json.encode({1, 2, 3}), json.encode({}), json.encode({a = 1}),\n"
        "        json.encode({1, nil, 3}), json.encode('x\"\\\\\\n\\1/'), json.encode(json.null),\n"
        "        json.encode(1.5), json.encode(true), json.encode(nil), json.encode({[1.5] = 'f'}))\n"
        "ngx.say(json.encode({a = {b = {json.null, false}}}))\n"
        "local d = {} for i = 1, 63 do d = {d} end ngx.say(#json.encode(d))"),
        "[1,2,3]{}{\"a\":1}[1,null,3]\"x\\\"\\\\\\n\\u0001/\"null1.5truenull{\"1.5\":\"f\"}\n"
        "{\"a\":{\"b\":[null,false]}}\n128\n");
    HAS(lua_err(&o, "json.encode({f = print})"), "Cannot serialise function: type not supported");
    HAS(lua_err(&o, "json.encode(math.huge)"), "must not be NaN or Infinity");
    HAS(lua_err(&o, "json.encode(0/0)"), "must not be NaN or Infinity");
    HAS(lua_err(&o, "local d = {} for i = 1, 64 do d = {d} end json.encode(d)"),
        "Cannot serialise, excessive nesting (65)");
    HAS(lua_err(&o, "local t = {} t[1] = t json.encode(t)"), "excessive nesting");
    HAS(lua_err(&o, "json.encode({[1] = 1, [100] = 2})"), "excessively sparse array");
    HAS(lua_err(&o, "json.encode({[true] = 1})"), "table key must be a number or string");
    HAS(lua_err(&o, "json.encode()"), "bad argument #1");
}
END_TEST

START_TEST(json_decode)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local v = json.decode(' {\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\\\\ud83d\\\\ude00\\\\n\","
        "\"d\":-1.5e2,\"e\":true,\"f\":{}} ')\n"
        "ngx.say(#v.a, v.a[3].b == json.null, v.c, v.d, tostring(v.e), next(v.f) == nil)\n"
        "ngx.say(json.decode('\"abc\"'), json.decode('0'), json.decode('[]')[1] == nil,\n"
        "        json.decode('null') == json.null)\n"
        "local t = {a = {1, 2, {x = 'y'}}, b = 'z'}\n"
        "local back = json.decode(json.encode(t)) ngx.say(back.a[3].x, back.b)\n"
        "for _, bad in ipairs({'[1,2', 'tru', '01', '{\"a\" 1}', '\"\\\\x\"', '', '[1,]',\n"
        "                      '\"\\\\ud800\"', '1 2', '\"a\\nb\"', '-', '{1:2}'}) do\n"
        "  local r, err = json.decode(bad) assert(r == nil and err, bad)\n"
        "end\n"
        "ngx.say(select(2, json.decode('[1,2')))\n"
        "ngx.say(select(2, json.decode(string.rep('[', 65) .. string.rep(']', 65))))\n"
        "ngx.say(type(json.decode(string.rep('[', 64) .. string.rep(']', 64))))"),
        "3true\xc3\xa9\xf0\x9f\x98\x80\n-150truetrue\n"
        "abc0truetrue\n"
        "yz\n"
        "Expected JSON: expected comma or array end at character 5\n"
        "Expected JSON: too many nested data structures at character 65\n"
        "table\n");
    HAS(lua_err(&o, "json.decode({})"), "bad argument #1");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api_lib");
    TCase *tc = tcase_create("api_lib");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, re_match_captures);
    tcase_add_test(tc, re_find_ctx_and_nth);
    tcase_add_test(tc, re_gmatch);
    tcase_add_test(tc, re_sub_gsub);
    tcase_add_test(tc, re_errors);
    tcase_add_test(tc, re_cache_is_bounded);
    tcase_add_test(tc, re_search_is_bounded);
    tcase_add_test(tc, re_gsub_stays_in_time_quota);
    tcase_add_test(tc, base64);
    tcase_add_test(tc, digests);
    tcase_add_test(tc, uri_escaping);
    tcase_add_test(tc, args_codec);
    tcase_add_test(tc, json_encode);
    tcase_add_test(tc, json_decode);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
