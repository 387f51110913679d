/* test_compat.c - plugin code written for OpenResty behaves the same here: each case runs a
 * plugin through the simulated host and checks what OpenResty's own test suite expects of the
 * same code (the comment of each case names the lua-nginx-module test it follows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef tu_run out;

static const dc_quota roomy = {20000000, 5000, 4096};

/* Runs code as the one plugin of phase under policy (NULL: the built-in one); fills o. */
static void run_in(out *o, const char *phase, const char *code, const char *policy)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "compat.test", .quota = policy ? NULL : &roomy,
                                     .policy_json = policy},
                   (const char *const[]){phase, code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
}

/* The body of a content plugin that must succeed. */
static const char *lua_ok(out *o, const char *code)
{
    run_in(o, "content", code, NULL);
    ck_assert_msg(o->result == DC_RESULT_OK, "plugin failed: %s\n%s", o->msg, code);
    return o->body;
}

/* The message of a content plugin that must fail. */
static const char *lua_err(out *o, const char *code)
{
    run_in(o, "content", code, NULL);
    ck_assert_msg(o->result == DC_RESULT_ERROR, "plugin did not fail: %s", code);
    return o->msg;
}

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, \
                                       "missing \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(strstr((hay), (needle)) == NULL, \
                                         "unexpected \"%s\" in:\n%s", (needle), (hay))

/* Counts and lists (sorted) the keys pairs() yields over an expression. */
#define COUNT_FN                                                                      \
    "local function keys(t)\n"                                                        \
    "  local n, ks = 0, {}\n"                                                         \
    "  for k, v in pairs(t) do n = n + 1 ks[#ks + 1] = tostring(k) end\n"             \
    "  table.sort(ks) return n .. ':' .. table.concat(ks, ',')\n"                     \
    "end\n"

/* OpenResty: pairs() over ngx, ngx.req, ngx.re and the libraries yields their entries
 * (t/062-count.t, "entries under ngx. (content by lua)", "entries under ngx.req (content by
 * lua)", "entries under ngx.re", "entries under coroutine. (content by lua)"). The counts
 * differ where the API leaves names out on purpose; ngx.re has the same five. */
START_TEST(pairs_over_lazy_tables)
{
    out o;
    const char *b = lua_ok(&o, COUNT_FN
        "ngx.say(keys(ngx.re))\n"
        "ngx.say(keys(string))\n"
        "ngx.say(keys(coroutine))\n"
        "local n = 0 for k in pairs(math) do n = n + 1 end ngx.say(n)\n"
        "local r = keys(ngx.req) ngx.say(r:find('get_uri_args', 1, true) ~= nil)\n"
        "local g = keys(ngx) ngx.say(g:find(',say,', 1, true) ~= nil, g:find(',HTTP_OK,', 1,"
        " true) ~= nil, g:find(',req,', 1, true) ~= nil, tonumber(g:match('^%d+')) > 80)\n"
        "local k, v = next(ngx.re) ngx.say(type(k), type(v))\n"
        "ngx.say(next(table) ~= nil, next({}) == nil)\n"
        "g = keys(_G) ngx.say(g:find(',math,', 1, true) ~= nil, g:find(',ngx,', 1, true) ~= nil)\n"
        "ngx.say(pcall(next, ngx.re, 'nope'))\n");
    ck_assert_str_eq(b,
        "5:find,gmatch,gsub,match,sub\n"
        "13:byte,char,find,format,gmatch,gsub,len,lower,match,rep,reverse,sub,upper\n"
        "7:create,isyieldable,resume,running,status,wrap,yield\n"
        "30\n"
        "true\n"
        "truetruetruetrue\n"
        "stringfunction\n"
        "truetrue\n"
        "truetrue\n"
        "falseinvalid key to 'next'\n");
    /* the walk stays read-only: what pairs hands out is the proxy, not the table behind it */
    HAS(lua_err(&o, "for k, v in pairs(ngx) do if k == 'req' then v.x = 1 end end"),
        "read-only");
    HAS(lua_err(&o, "for k, v in pairs(_G) do if k == 'string' then v.x = 1 end end"),
        "read-only");
    HAS(lua_err(&o, "pairs(nil)"), "bad argument #1 to 'pairs' (table expected, got nil)");
    HAS(lua_err(&o, "next('x')"), "bad argument #1 to 'next' (table expected, got string)");
}
END_TEST

/* A name the policy denies stays out of the walk, and stays denied when reached. */
START_TEST(pairs_skips_denied_names)
{
    out o;
    run_in(&o, "content", COUNT_FN
           "ngx.say(keys(ngx.re)) ngx.say(keys(string))\n"
           "ngx.say((keys(ngx):find(',md5,', 1, true)))\n"
           "ngx.re.gsub('a', 'a', 'b')",
           "{\"api\":{\"deny\":[\"ngx.re.gsub\", \"string.rep\", \"ngx.md5\"]}}");
    ck_assert_int_eq(o.result, DC_RESULT_DENIED);
    ck_assert_str_eq(o.body, "4:find,gmatch,match,sub\n"
                             "12:byte,char,find,format,gmatch,gsub,len,lower,match,reverse,sub,"
                             "upper\nnil\n");
    HAS(o.msg, "ngx.re.gsub is denied by policy");
}
END_TEST

/* OpenResty: a table given to a header carried once keeps its last value (t/016-resp-header.t,
 * "set response content-type header" with {"a", "bc"}: Content-Type: bc); a header carried
 * several times keeps them all; Content-Length set to something not a number is an error
 * (t/016-resp-header.t, "set response content-type header" setting content_length to
 * "text/my-plain": 500), and "" removes it. */
START_TEST(single_valued_headers)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.header.content_type = {'a', 'bc'}\n"
        "ngx.header['X-Foo'] = {'a', 'bc'}\n"
        "ngx.header.content_length = {'5', 12}\n"
        "ngx.header.ETag = {'\"1\"', '\"2\"'}\n"
        "local cl = ngx.header.content_length\n"
        "ngx.header.content_length = ''\n"
        "local ok, err = pcall(function() ngx.header.content_length = {'1', 'x'} end)\n"
        "ngx.say(ngx.header.content_type, ' ', table.concat(ngx.header.x_foo, ','), ' ', cl,\n"
        "        ' ', ngx.header.etag, ' ', tostring(ngx.header.content_length), ' ', ok)"),
        "bc a,bc 12 \"2\" nil false\n");
    HAS(lua_err(&o, "ngx.header.content_length = 'text/my-plain'"),
        "failed to set header Content-Length: \"text/my-plain\" is not a number");
    HAS(lua_err(&o, "ngx.header['Content-Length'] = -1"), "\"-1\" is not a number");
    HAS(lua_err(&o, "ngx.header.content_length = 1.5"), "\"1.5\" is not a number");
    HAS(lua_err(&o, "ngx.header.content_length = '1\\0'"), "is not a number");
}
END_TEST

/* The body of a content plugin run for uri. */
static const char *lua_ok_uri(out *o, const char *uri, const char *code)
{
    tu_run_plugins(o, &(tu_run_opts){.host = "compat.test", .uri = uri, .quota = &roomy},
                   (const char *const[]){"content", code, NULL});
    tu_run_body(o);
    dc_sim_free(o->sim);
    o->sim = NULL;
    ck_assert_msg(o->result == DC_RESULT_OK, "plugin failed: %s\n%s", o->msg, code);
    return o->body;
}

#define SHOW_ARGS                                                                        \
    "local args, err = ngx.req.get_uri_args(2)\n"                                        \
    "if err then ngx.say('err: ', err) end\n"                                            \
    "local keys = {} for k in pairs(args) do keys[#keys + 1] = k end table.sort(keys)\n" \
    "for _, k in ipairs(keys) do ngx.say(k, ' = ', tostring(args[k])) end ngx.say('done')"

/* OpenResty counts toward max every pair that an '&' ends, an empty key included, and stops
 * right after the max-th (t/030-uri-args.t, "max args (limited after normal key=value)",
 * "max args (limited after an orphan key)", "max args (limited after an empty key, but
 * non-empty values)"; ngx.decode_args the same, "ngx.decode_args (max_args = 1)"). */
START_TEST(uri_args_max_counts_empty_keys)
{
    out o;
    ck_assert_str_eq(lua_ok_uri(&o, "/lua?foo=3&bar=4&baz=2", SHOW_ARGS),
                     "err: truncated\nbar = 4\nfoo = 3\ndone\n");
    ck_assert_str_eq(lua_ok_uri(&o, "/lua?foo=3&bar&baz=2", SHOW_ARGS),
                     "err: truncated\nbar = true\nfoo = 3\ndone\n");
    ck_assert_str_eq(lua_ok_uri(&o, "/lua?foo=3&=hello&=world", SHOW_ARGS),
                     "err: truncated\nfoo = 3\ndone\n");
    ck_assert_str_eq(lua_ok_uri(&o, "/lua?foo=3&&bar=1", SHOW_ARGS),
                     "err: truncated\nfoo = 3\ndone\n");
    ck_assert_str_eq(lua_ok_uri(&o, "/lua?foo=3&bar=1", SHOW_ARGS), "bar = 1\nfoo = 3\ndone\n");
    ck_assert_str_eq(lua_ok(&o,
        "local a, err = ngx.decode_args('a=bar&b=foo', 1) ngx.say(a.a, tostring(a.b), err)\n"
        "a, err = ngx.decode_args('=x&=y&c=1', 2) ngx.say(tostring(a.c), err)\n"
        "a, err = ngx.decode_args('=x&c=1', 2) ngx.say(a.c, tostring(err))"),
        "barniltruncated\nniltruncated\n1nil\n");
}
END_TEST

/* OpenResty's texts for a resume that cannot be (t/091-coroutine.t, "bug: resume dead
 * coroutine with args": "cannot resume dead coroutine"; "infinite recursive calls of
 * coroutine.resume": "cannot resume normal coroutine"; "resume running (user) coroutines":
 * "cannot resume running coroutine"), and resume's own name in its argument error. */
START_TEST(coroutine_resume_texts)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local co = coroutine.create(function() end) coroutine.resume(co)\n"
        "ngx.say(coroutine.resume(co))\n"
        "local c1, c2\n"
        "c1 = coroutine.create(function() ngx.say(coroutine.resume(c2)) end)\n"
        "c2 = coroutine.create(function() ngx.say(coroutine.resume(c1)) end)\n"
        "coroutine.resume(c1)\n"
        "local c3 c3 = coroutine.create(function() ngx.say(coroutine.resume(c3)) end)\n"
        "ngx.say(coroutine.resume(c3))\n"
        "ngx.say(coroutine.resume(coroutine.create(function(a, b) return a + b end), 40, 2))\n"
        "local y = coroutine.create(function() coroutine.yield(1) return 2 end)\n"
        "ngx.say(coroutine.resume(y), coroutine.resume(y), coroutine.status(y))\n"
        "ngx.say(pcall(coroutine.resume, 1))"),
        "falsecannot resume dead coroutine\n"
        "falsecannot resume normal coroutine\n"
        "true\n"
        "falsecannot resume running coroutine\n"
        "true\n"
        "true42\n"
        "truetruedead\n"
        "falsebad argument #1 to 'resume' (coroutine expected)\n");
    HAS(lua_err(&o, "\ncoroutine.resume(nil)"),
        "p1:2: bad argument #1 to 'resume' (coroutine expected)");
}
END_TEST

/* OpenResty's option "d": PCRE2's DFA matcher, the longest match at the first place one
 * starts, and no group captured (t/048-match-dfa.t, "matched with d", "matched with d + j",
 * "not matched with j"; t/050-gmatch-dfa.t, "gmatch matched", "gmatched with submatch
 * captures"; t/052-sub-dfa.t, "matched with d"; t/054-gsub-dfa.t, "matched with d", "gsub
 * with d", "UTF-8 mode with UTF-8 sequence checks"). */
START_TEST(re_dfa_longest_match)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local m = ngx.re.match('hello', '(he|hell)', 'd')\n"
        "ngx.say(m[0], ' ', tostring(m[1]), ' ', tostring(m[2]), ' ', #m)\n"
        "ngx.say(ngx.re.match('hello', '(he|hell)', 'jd')[0], ngx.re.match('hello', 'he|hell', 'do')[0])\n"
        "ngx.say(tostring(ngx.re.match('world', '(he|hell)', 'd')))\n"
        "for m in ngx.re.gmatch('hello, halo', 'h[a-z]|h[a-z][a-z]', 'd') do\n"
        "  ngx.say(m[0], ' ', tostring(m[1])) end\n"
        "ngx.say(ngx.re.sub('hello, 1234 5678', '[0-9]|[0-9][0-9]', 'world', 'd'))\n"
        "ngx.say(ngx.re.gsub('hello, 1234 5678', '[0-9]|[0-9][0-9]', 'world', 'd'))\n"
        "ngx.say(ngx.re.gsub('hello', '(he|hell)', function(m)\n"
        "  ngx.say(m[0], ' ', tostring(m[1])) return 'x' end, 'd'))\n"
        "ngx.say(ngx.re.gsub('\\228\\189\\160\\229\\165\\189', '.', 'a', 'ud'))\n"
        "ngx.say(ngx.re.find('hello', 'l|ll', 'd'))\n"
        "ngx.say(ngx.re.find('hello', '(l|ll)', 'd', nil, 1))\n"
        "ngx.say(ngx.re.match('aXbX', 'a|b', 'd', {pos = 2})[0])\n"
        "ngx.say(ngx.re.match('<a><b>', '<.*>', 'd')[0], ngx.re.match('<a><b>', '<.*?>', 'd')[0])"),
        "hell nil nil 0\n"
        "hellhell\n"
        "nil\n"
        "hel nil\n"
        "hal nil\n"
        "hello, world34 56781\n"
        "hello, worldworld worldworld4\n"
        "hell nil\n"
        "xo1\n"
        "aa2\n"
        "34\n"
        "nilnilnth out of bound\n"
        "b\n"
        "<a><b><a><b>\n");
    /* what the DFA matcher cannot do is an error of the match, not a crash */
    ck_assert_str_eq(lua_ok(&o,
        "local m, err = ngx.re.match('aa', '(a)\\\\1', 'd') ngx.say(tostring(m), ' ', err)"),
        "nil pcre2_match() failed: pattern contains an item that is not supported for DFA "
        "matching\n");
}
END_TEST

/* OpenResty's words for a subject that is not UTF-8 under "u": the code of the error alone
 * (t/034-match.t, "bad UTF-8"; t/035-gmatch.t, t/036-sub.t, t/037-gsub.t, t/120-re-find.t,
 * "bad UTF-8"). */
START_TEST(re_bad_utf8_texts)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "local s = string.sub('\\228\\189\\160\\229\\165\\189', 1, 4)\n"
        "local p = '\\228\\189\\160\\229\\165\\189'\n"
        "ngx.say(select(2, ngx.re.match(s, p, 'u')))\n"
        "ngx.say(select(2, ngx.re.gmatch(s, p, 'u')()))\n"
        "ngx.say(select(3, ngx.re.sub(s, p, 'x', 'u')))\n"
        "ngx.say(select(3, ngx.re.gsub(s, p, 'x', 'u')))\n"
        "ngx.say(select(3, ngx.re.find(s, p, 'u')))\n"
        "ngx.say(select(2, ngx.re.match(s, p, 'ud')))"),
        "pcre_exec() failed: -4\npcre_exec() failed: -4\npcre_exec() failed: -4\n"
        "pcre_exec() failed: -4\npcre_exec() failed: -4\npcre_exec() failed: -4\n");
}
END_TEST

/* Numeric ngx.var[N] asks the host for the location's capture N (the simulated request has
 * none: nil, as OpenResty for a location without captures, t/014-bugs.t, "get by-position
 * capturing variables (exceeding captures)"); 0, negative, fractional and the string "1" are
 * nil without asking; other key types are an error. */
START_TEST(var_numeric_captures)
{
    out o;
    ck_assert_str_eq(lua_ok(&o,
        "ngx.say(tostring(ngx.var[1]), tostring(ngx.var[0]), tostring(ngx.var[-1]),\n"
        "        tostring(ngx.var[1.5]), tostring(ngx.var[1e300]), tostring(ngx.var[0/0]),\n"
        "        tostring(ngx.var['1']), tostring(ngx.var['007']), ngx.var.uri)"),
        "nilnilnilnilnilnilnilnil/\n");
    HAS(lua_err(&o, "local x = ngx.var[true]"), "bad variable name");
    HAS(lua_err(&o, "local x = ngx.var[{}]"), "bad variable name");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compat");
    TCase *tc = tcase_create("compat");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pairs_over_lazy_tables);
    tcase_add_test(tc, pairs_skips_denied_names);
    tcase_add_test(tc, single_valued_headers);
    tcase_add_test(tc, uri_args_max_counts_empty_keys);
    tcase_add_test(tc, coroutine_resume_texts);
    tcase_add_test(tc, re_dfa_longest_match);
    tcase_add_test(tc, re_bad_utf8_texts);
    tcase_add_test(tc, var_numeric_captures);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
