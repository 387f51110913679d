/* test_policy.c - the local policy (policy/README.md): the built-in and shipped files, quotas
 * against ceilings, rules by domain regex and plugin glob, allow/deny lists, and every refusal
 * message (file, key path, reason).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "api_table.h"
#include "testutil.h"

/* ---- helpers ---- */

static dc_policy *load_ok(const char *json)
{
    dc_policy *p = NULL;
    char err[512] = "";
    dc_rc rc = dc_policy_load(json, strlen(json), "t.json", &p, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "policy refused: %s (%s)", dc_strerror(rc), err);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Loads json expecting code rc and exactly the message want. */
static void load_fails(const char *json, dc_rc rc, const char *want)
{
    dc_policy *p = (dc_policy *)1;
    char err[512] = "";
    dc_rc got = dc_policy_load(json, strlen(json), "policy/x.json", &p, err, sizeof err);
    ck_assert_msg(got == rc, "rc %d (%s), wanted %d, for %s", got, err, rc, json);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err, want);
}

static char *source_path(const char *rel)
{
    const char *root = getenv("DC_SOURCE_DIR");
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    return path;
}

static dc_policy *load_source_file(const char *rel)
{
    dc_policy *p = NULL;
    char err[512] = "";
    dc_rc rc = dc_policy_load_file(source_path(rel), &p, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "%s refused: %s", rel, err);
    return p;
}

static dc_policy_eff resolve(const dc_policy *p, const char *domain, const char *plugin,
                             uint64_t ins, uint32_t ms, uint32_t kb)
{
    dc_quota asked = {ins, ms, kb};
    dc_policy_eff e;
    memset(&e, 0xa5, sizeof e);
    dc_policy_resolve(p, domain, plugin, &asked, &e);
    return e;
}

static void assert_quota(const dc_quota *q, uint64_t ins, uint32_t ms, uint32_t kb)
{
    ck_assert_uint_eq(q->instructions, ins);
    ck_assert_uint_eq(q->time_ms, ms);
    ck_assert_uint_eq(q->memory_kb, kb);
}

/* Every value of the built-in policy. */
static void assert_builtin(const dc_policy *p)
{
    dc_policy_eff e = resolve(p, "example.com", "any", 0, 0, 0);
    assert_quota(&e.quota, 1000000, 50, 4096);
    e = resolve(p, "example.com", "any", 1ull << 40, 100000, 1u << 30);
    assert_quota(&e.quota, 10000000, 500, 32768);
    ck_assert_int_eq(e.on_error_fail, 0);
    ck_assert_uint_eq(e.quarantine.trips, 5);
    ck_assert_uint_eq(e.quarantine.window_s, 60);
    ck_assert_uint_eq(e.quarantine.duration_s, 300);
    ck_assert_int_eq(dc_policy_refuse_until_loaded(p), 0);
    ck_assert_uint_eq(dc_policy_max_states(p), 1024);
    dc_limits l;
    dc_policy_limits(p, &l);
    ck_assert_uint_eq(l.max_bundle_bytes, 8388608);
    ck_assert_uint_eq(l.max_domains, 20000);
    ck_assert_uint_eq(l.max_plugins, 20000);
    ck_assert_uint_eq(l.max_code_bytes, 65536);
    ck_assert_uint_eq(l.max_name_bytes, 256);
    ck_assert_uint_eq(l.max_plugins_per_domain, 1000);
    ck_assert_uint_eq(l.max_skip_domains, 1000);
    ck_assert_uint_eq(l.max_pattern_bytes, 256);
    ck_assert_uint_eq(l.max_pattern_compiled_bytes, 16384);
    ck_assert_uint_eq(l.max_patterns_total_bytes, 33554432);
    static const char *const yes[] = {
        "ngx.say", "ngx.req.set_header", "ngx.HTTP_OK", "json.encode", "string.format",
        "table.concat", "math.floor", "bit.band", "coroutine.wrap", "os.time", "os.clock",
        "os.date", "print", "pairs", "pcall", "tostring", "setmetatable", "collectgarbage"};
    static const char *const no[] = {
        "os.execute", "os.getenv", "string.dump", "load", "loadstring", "require",
        "debug.traceback", "io.open", "ffi.cdef", "jit.off", "getfenv", "newproxy", "_G"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(dc_api_allowed(e.api, yes[i]), "%s should be allowed", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!dc_api_allowed(e.api, no[i]), "%s should be denied", no[i]);
}

/* ---- the built-in and shipped policies ---- */

START_TEST(builtin_default_has_the_documented_values)
{
    dc_policy *p = NULL;
    char err[256] = "";
    ck_assert_int_eq(dc_policy_default(&p, err, sizeof err), DC_OK);
    assert_builtin(p);
    dc_policy_free(p);
}
END_TEST

START_TEST(empty_policy_keeps_every_builtin_value)
{
    dc_policy *p = load_ok("{}");
    assert_builtin(p);
    dc_policy_free(p);
    p = load_ok(" \n{ }\n ");
    assert_builtin(p);
    dc_policy_free(p);
}
END_TEST

START_TEST(null_policy_is_the_builtin)
{
    assert_builtin(NULL);
    ck_assert(dc_api_allowed(NULL, "ngx.say"));
    ck_assert(!dc_api_allowed(NULL, "string.dump"));
    dc_policy_free(NULL);
}
END_TEST

/* The built-in allow list comes from the API table: every name of the table is allowed by it,
 * and by a policy that leaves `allow` out; a policy's own list replaces it. */
#define TABLE_PATH(area, kind, path, field, fn, phases, allow) path,
static const char *const table_paths[] = {DC_API_TABLE(TABLE_PATH)};

START_TEST(builtin_allow_list_is_drawn_from_the_api_table)
{
    dc_policy *def = NULL, *own = load_ok("{\"quota\":{\"time_ms\":7}}");
    dc_policy *narrow = load_ok("{\"api\":{\"allow\":[\"ngx.say\"]}}");
    char err[256] = "";
    ck_assert_int_eq(dc_policy_default(&def, err, sizeof err), DC_OK);
    dc_policy_eff a = resolve(def, "d", "p", 0, 0, 0), b = resolve(own, "d", "p", 0, 0, 0);
    dc_policy_eff n = resolve(narrow, "d", "p", 0, 0, 0);
    for (size_t i = 0; i < sizeof table_paths / sizeof table_paths[0]; i++) {
        const char *path = table_paths[i];
        char probe[64];
        size_t len = strlen(path);
        /* "string.*": a function of the table stands for it */
        snprintf(probe, sizeof probe, "%.*s%s", (int)len - (path[len - 1] == '*'), path,
                 path[len - 1] == '*' ? "len" : "");
        ck_assert_msg(dc_api_name_known(path), "%s is not known to the policy", path);
        ck_assert_msg(dc_api_allowed(NULL, probe), "%s: not allowed by the built-in", probe);
        ck_assert_msg(dc_api_allowed(a.api, probe), "%s: not allowed by default.json", probe);
        ck_assert_msg(dc_api_allowed(b.api, probe), "%s: not allowed without `allow`", probe);
        ck_assert_msg(dc_api_allowed(n.api, probe) == (strcmp(probe, "ngx.say") == 0),
                      "%s: a policy's own allow list must replace the built-in", probe);
    }
    ck_assert_uint_eq(b.quota.time_ms, 7);
    dc_policy_free(def);
    dc_policy_free(own);
    dc_policy_free(narrow);
}
END_TEST

START_TEST(shipped_default_json_equals_the_builtin)
{
    dc_policy *p = load_source_file("policy/default.json");
    assert_builtin(p);
    dc_policy_free(p);
}
END_TEST

START_TEST(shipped_strict_json_loads)
{
    dc_policy *p = load_source_file("policy/strict.json");
    dc_policy_eff e = resolve(p, "www.example.com", "x", 0, 0, 0);
    assert_quota(&e.quota, 200000, 10, 1024);
    e = resolve(p, "www.example.com", "x", 5000000, 50, 4096);
    assert_quota(&e.quota, 200000, 10, 1024);
    ck_assert_int_eq(e.on_error_fail, 0);
    ck_assert_uint_eq(e.quarantine.trips, 3);
    ck_assert_uint_eq(e.quarantine.window_s, 60);
    ck_assert_uint_eq(e.quarantine.duration_s, 600);
    ck_assert(!dc_api_allowed(e.api, "ngx.req.set_uri"));
    ck_assert(!dc_api_allowed(e.api, "ngx.redirect"));
    ck_assert(dc_api_allowed(e.api, "ngx.exit"));
    ck_assert(dc_api_allowed(e.api, "ngx.say"));
    e = resolve(p, "admin.example.com", "x", 0, 0, 0);
    ck_assert_int_eq(e.on_error_fail, 1);
    e = resolve(p, "www.admin.example.com", "x", 0, 0, 0);
    ck_assert_int_eq(e.on_error_fail, 0);
    dc_policy_free(p);
}
END_TEST

/* ---- quotas ---- */

START_TEST(quota_asked_is_capped_by_the_ceiling)
{
    dc_policy *p = load_ok("{\"quota\": {\"instructions\": 1000, \"time_ms\": 10, "
                           "\"memory_kb\": 100},"
                           " \"ceiling\": {\"instructions\": 5000, \"time_ms\": 20, "
                           "\"memory_kb\": 200}}");
    dc_policy_eff e = resolve(p, "d", "p", 3000, 15, 150); /* below the ceiling: as asked */
    assert_quota(&e.quota, 3000, 15, 150);
    e = resolve(p, "d", "p", 500, 5, 50);                   /* below the default too */
    assert_quota(&e.quota, 500, 5, 50);
    e = resolve(p, "d", "p", 9000, 99, 999);                /* above: the ceiling */
    assert_quota(&e.quota, 5000, 20, 200);
    e = resolve(p, "d", "p", 5000, 20, 200);                /* at: as asked */
    assert_quota(&e.quota, 5000, 20, 200);
    e = resolve(p, "d", "p", 0, 0, 0);                      /* not asked: the default */
    assert_quota(&e.quota, 1000, 10, 100);
    e = resolve(p, "d", "p", 0, 18, 0);                     /* per field */
    assert_quota(&e.quota, 1000, 18, 100);
    dc_policy_eff n;
    dc_policy_resolve(p, "d", "p", NULL, &n);               /* NULL: nothing asked */
    assert_quota(&n.quota, 1000, 10, 100);
    dc_policy_free(p);
}
END_TEST

START_TEST(zero_means_unlimited)
{
    /* ceiling 0: whatever the bundle asks; default 0 under ceiling 0: unlimited */
    dc_policy *p = load_ok("{\"quota\": {\"instructions\": 0, \"time_ms\": 10, \"memory_kb\": 0},"
                           " \"ceiling\": {\"instructions\": 0, \"time_ms\": 0, "
                           "\"memory_kb\": 0}}");
    dc_policy_eff e = resolve(p, "d", "p", 1ull << 50, 4000000000u, 4000000000u);
    assert_quota(&e.quota, 1ull << 50, 4000000000u, 4000000000u);
    e = resolve(p, "d", "p", 0, 0, 0);
    assert_quota(&e.quota, 0, 10, 0);
    dc_policy_free(p);
    /* a default above the ceiling (or unlimited) is lowered to it */
    p = load_ok("{\"quota\": {\"instructions\": 0, \"time_ms\": 100},"
                " \"ceiling\": {\"instructions\": 7, \"time_ms\": 30}}");
    e = resolve(p, "d", "p", 0, 0, 0);
    assert_quota(&e.quota, 7, 30, 4096);
    dc_policy_free(p);
}
END_TEST

/* ---- rules ---- */

static const char *rules_json =
    "{\"quota\": {\"instructions\": 1000, \"time_ms\": 10, \"memory_kb\": 100},"
    " \"ceiling\": {\"instructions\": 100000, \"time_ms\": 100, \"memory_kb\": 1000},"
    " \"rules\": ["
    "  {\"domain\": \"\\\\.example\\\\.com$\", \"quota\": {\"time_ms\": 20},"
    "   \"on_error\": \"fail\"},"
    "  {\"plugin\": \"debug *\", \"ceiling\": {\"instructions\": 2000},"
    "   \"quarantine\": {\"trips\": 0}},"
    "  {\"domain\": \"^api\\\\.\", \"plugin\": \"auth*\", \"quota\": {\"time_ms\": 30},"
    "   \"on_error\": \"continue\"},"
    "  {\"domain\": \"^\\\\*$\", \"quota\": {\"memory_kb\": 500}}"
    "]}";

START_TEST(rules_match_by_domain_regex)
{
    dc_policy *p = load_ok(rules_json);
    dc_policy_eff e = resolve(p, "www.example.com", "cors", 0, 0, 0);
    assert_quota(&e.quota, 1000, 20, 100);
    ck_assert_int_eq(e.on_error_fail, 1);
    ck_assert_uint_eq(e.quarantine.trips, 5);
    e = resolve(p, "example.org", "cors", 0, 0, 0); /* no rule */
    assert_quota(&e.quota, 1000, 10, 100);
    ck_assert_int_eq(e.on_error_fail, 0);
    e = resolve(p, "*", "cors", 0, 0, 0);           /* a host spelled "*" (none is) */
    assert_quota(&e.quota, 1000, 10, 500);
    e = resolve(p, NULL, "cors", 0, 0, 0);          /* no domain: only domain-less rules */
    assert_quota(&e.quota, 1000, 10, 100);
    dc_policy_free(p);
}
END_TEST

START_TEST(rules_match_by_plugin_glob)
{
    dc_policy *p = load_ok(rules_json);
    dc_policy_eff e = resolve(p, "example.org", "debug one user", 50000, 0, 0);
    assert_quota(&e.quota, 2000, 10, 100); /* the rule's ceiling caps what was asked */
    ck_assert_uint_eq(e.quarantine.trips, 0);
    ck_assert_uint_eq(e.quarantine.window_s, 60); /* keys the rule does not set stay */
    e = resolve(p, "example.org", "debugger", 50000, 0, 0);
    assert_quota(&e.quota, 50000, 10, 100);
    ck_assert_uint_eq(e.quarantine.trips, 5);
    dc_policy_free(p);
}
END_TEST

START_TEST(rules_need_both_domain_and_plugin_and_apply_in_order)
{
    dc_policy *p = load_ok(rules_json);
    /* rules 0 and 2 both match: 2 comes later and overrides time_ms and on_error */
    dc_policy_eff e = resolve(p, "api.example.com", "auth-basic", 0, 0, 0);
    assert_quota(&e.quota, 1000, 30, 100);
    ck_assert_int_eq(e.on_error_fail, 0);
    /* domain matches rule 2 but the plugin does not */
    e = resolve(p, "api.example.com", "cors", 0, 0, 0);
    assert_quota(&e.quota, 1000, 20, 100);
    ck_assert_int_eq(e.on_error_fail, 1);
    /* plugin matches rule 2 but the domain does not */
    e = resolve(p, "apis.example.org", "auth", 0, 0, 0);
    assert_quota(&e.quota, 1000, 10, 100);
    /* rule 1 then rule 2: plugin "debug auth" does not match "auth*" */
    e = resolve(p, "api.example.com", "debug auth", 0, 0, 0);
    assert_quota(&e.quota, 1000, 20, 100);
    ck_assert_uint_eq(e.quarantine.trips, 0);
    dc_policy_free(p);
}
END_TEST

START_TEST(later_rules_override_earlier_ones)
{
    dc_policy *p = load_ok("{\"rules\": ["
                           " {\"quota\": {\"time_ms\": 5, \"memory_kb\": 64}},"
                           " {\"plugin\": \"b\", \"quota\": {\"time_ms\": 7}},"
                           " {\"plugin\": \"b\", \"ceiling\": {\"time_ms\": 6}}]}");
    dc_policy_eff e = resolve(p, "d", "a", 0, 0, 0);
    assert_quota(&e.quota, 1000000, 5, 64);
    e = resolve(p, "d", "b", 0, 0, 0);
    assert_quota(&e.quota, 1000000, 6, 64);
    dc_policy_free(p);
}
END_TEST

START_TEST(many_rules)
{
    char json[8192] = "{\"rules\": [";
    for (int i = 0; i < 40; i++) {
        char r[128];
        snprintf(r, sizeof r, "%s{\"api\": {\"deny\": [\"ngx.re.%s\"]}, \"quota\": {\"time_ms\": %d}}",
                 i ? "," : "", i == 39 ? "gsub" : "sub", i + 1);
        strcat(json, r);
    }
    strcat(json, "]}");
    dc_policy *p = load_ok(json);
    dc_policy_eff e = resolve(p, "d", "p", 0, 0, 0);
    assert_quota(&e.quota, 1000000, 40, 4096);
    ck_assert(!dc_api_allowed(e.api, "ngx.re.sub"));
    ck_assert(!dc_api_allowed(e.api, "ngx.re.gsub"));
    ck_assert(dc_api_allowed(e.api, "ngx.re.find"));
    dc_policy_free(p);
}
END_TEST

/* ---- API lists ---- */

START_TEST(allow_exact_names_and_prefixes)
{
    dc_policy *p = load_ok("{\"api\": {\"allow\": [\"ngx.say\", \"ngx.req.*\", \"string.*\","
                           " \"ngx.var.*\", \"ngx.HTTP_OK\", \"pairs\"]}}");
    const struct dc_api_filter *f = resolve(p, "d", "p", 0, 0, 0).api;
    ck_assert(dc_api_allowed(f, "ngx.say"));
    ck_assert(dc_api_allowed(f, "ngx.req.set_header"));
    ck_assert(dc_api_allowed(f, "ngx.req.get_headers"));
    ck_assert(dc_api_allowed(f, "ngx.var"));
    ck_assert(dc_api_allowed(f, "ngx.HTTP_OK"));
    ck_assert(dc_api_allowed(f, "string.rep"));
    ck_assert(dc_api_allowed(f, "pairs"));
    ck_assert(!dc_api_allowed(f, "ngx.print"));
    ck_assert(!dc_api_allowed(f, "ngx.say2"));
    ck_assert(!dc_api_allowed(f, "ngx.request"));  /* "ngx.req.*" is not a string prefix */
    ck_assert(!dc_api_allowed(f, "ngx"));
    ck_assert(!dc_api_allowed(f, "ipairs"));
    ck_assert(!dc_api_allowed(f, "string.dump"));  /* never, whatever covers it */
    ck_assert(!dc_api_allowed(f, NULL));
    dc_policy_free(p);
}
END_TEST

START_TEST(deny_wins_over_allow)
{
    dc_policy *p = load_ok("{\"api\": {\"allow\": [\"ngx.*\", \"os.*\"],"
                           " \"deny\": [\"ngx.req.*\", \"ngx.exit\", \"debug.*\"]}}");
    const struct dc_api_filter *f = resolve(p, "d", "p", 0, 0, 0).api;
    ck_assert(dc_api_allowed(f, "ngx.say"));
    ck_assert(dc_api_allowed(f, "ngx.redirect"));
    ck_assert(!dc_api_allowed(f, "ngx.exit"));
    ck_assert(!dc_api_allowed(f, "ngx.req.set_header"));
    ck_assert(dc_api_allowed(f, "os.time"));
    ck_assert(!dc_api_allowed(f, "os.execute"));
    ck_assert(!dc_api_allowed(f, "os.exit"));
    dc_policy_free(p);
}
END_TEST

START_TEST(rule_allow_replaces_and_deny_adds)
{
    dc_policy *p = load_ok("{\"api\": {\"allow\": [\"ngx.*\", \"json.*\"], \"deny\": [\"ngx.exit\"]},"
                           " \"rules\": ["
                           "  {\"domain\": \"^a\\\\.\", \"api\": {\"deny\": [\"ngx.say\"]}},"
                           "  {\"domain\": \"^a\\\\.\", \"plugin\": \"only-json\","
                           "   \"api\": {\"allow\": [\"json.*\", \"ngx.say\"]}},"
                           "  {\"plugin\": \"no-print\", \"api\": {\"deny\": [\"ngx.print\"]}}]}");
    const struct dc_api_filter *base = resolve(p, "b.com", "x", 0, 0, 0).api;
    ck_assert(dc_api_allowed(base, "ngx.say"));
    ck_assert(!dc_api_allowed(base, "ngx.exit"));

    const struct dc_api_filter *a = resolve(p, "a.com", "x", 0, 0, 0).api;
    ck_assert(!dc_api_allowed(a, "ngx.say"));     /* added by the rule */
    ck_assert(!dc_api_allowed(a, "ngx.exit"));    /* the top level's deny stays */
    ck_assert(dc_api_allowed(a, "ngx.print"));

    const struct dc_api_filter *j = resolve(p, "a.com", "only-json", 0, 0, 0).api;
    ck_assert(dc_api_allowed(j, "json.encode"));
    ck_assert(!dc_api_allowed(j, "ngx.print"));   /* the allow list was replaced */
    ck_assert(!dc_api_allowed(j, "ngx.say"));     /* allowed again, but rule 0 denies it */

    const struct dc_api_filter *np = resolve(p, "a.com", "no-print", 0, 0, 0).api;
    ck_assert(!dc_api_allowed(np, "ngx.print"));
    ck_assert(!dc_api_allowed(np, "ngx.say"));
    ck_assert(dc_api_allowed(np, "ngx.log"));

    /* the same combination gives the same filter; it lives as long as the policy */
    ck_assert_ptr_eq(resolve(p, "x.org", "x", 0, 0, 0).api, base);
    ck_assert_ptr_eq(resolve(p, "a.net", "only-json", 0, 0, 0).api, j);
    ck_assert_ptr_ne(a, j);
    dc_policy_free(p);
}
END_TEST

START_TEST(forbidden_names_may_be_denied)
{
    dc_policy *p = load_ok("{\"api\": {\"deny\": [\"debug.*\", \"io.*\", \"loadstring\","
                           " \"os.execute\", \"string.dump\", \"ffi.*\", \"jit.*\"]}}");
    const struct dc_api_filter *f = resolve(p, "d", "p", 0, 0, 0).api;
    ck_assert(dc_api_allowed(f, "string.rep"));
    ck_assert(!dc_api_allowed(f, "string.dump"));
    dc_policy_free(p);
}
END_TEST

START_TEST(empty_allow_allows_nothing)
{
    dc_policy *p = load_ok("{\"api\": {\"allow\": []}}");
    const struct dc_api_filter *f = resolve(p, "d", "p", 0, 0, 0).api;
    ck_assert(!dc_api_allowed(f, "ngx.say"));
    ck_assert(!dc_api_allowed(f, "pairs"));
    dc_policy_free(p);
}
END_TEST

/* ---- other keys ---- */

START_TEST(limits_states_and_until_loaded)
{
    dc_policy *p = load_ok("{\"bundle\": {\"max_bytes\": 1000, \"max_domains\": 3,"
                           " \"max_plugins\": 4, \"max_code_bytes\": 500},"
                           " \"states\": {\"max_per_worker\": 7}, \"until_loaded\": \"refuse\"}");
    dc_limits l;
    dc_policy_limits(p, &l);
    ck_assert_uint_eq(l.max_bundle_bytes, 1000);
    ck_assert_uint_eq(l.max_domains, 3);
    ck_assert_uint_eq(l.max_plugins, 4);
    ck_assert_uint_eq(l.max_code_bytes, 500);
    ck_assert_uint_eq(l.max_name_bytes, 256);
    ck_assert_uint_eq(dc_policy_max_states(p), 7);
    ck_assert_int_eq(dc_policy_refuse_until_loaded(p), 1);
    dc_policy_free(p);
    p = load_ok("{\"bundle\": {\"max_domains\": 9}}"); /* the others keep their default */
    dc_policy_limits(p, &l);
    ck_assert_uint_eq(l.max_bundle_bytes, 8388608);
    ck_assert_uint_eq(l.max_domains, 9);
    ck_assert_uint_eq(l.max_code_bytes, 65536);
    dc_policy_free(p);
    dc_policy_limits(NULL, &l);
    ck_assert_uint_eq(l.max_domains, 20000);
}
END_TEST

START_TEST(bundle_limits_parse_and_are_validated)
{
    dc_policy *p = load_ok("{\"bundle\": {\"max_name_bytes\": 64, \"max_plugins_per_domain\": 5,"
                           " \"max_skip_domains\": 6, \"max_pattern_bytes\": 7,"
                           " \"max_pattern_compiled_bytes\": 8192,"
                           " \"max_patterns_total_bytes\": 9007199254740992}}");
    dc_limits l;
    dc_policy_limits(p, &l);
    ck_assert_uint_eq(l.max_name_bytes, 64);
    ck_assert_uint_eq(l.max_plugins_per_domain, 5);
    ck_assert_uint_eq(l.max_skip_domains, 6);
    ck_assert_uint_eq(l.max_pattern_bytes, 7);
    ck_assert_uint_eq(l.max_pattern_compiled_bytes, 8192);
    ck_assert_uint_eq(l.max_patterns_total_bytes, 9007199254740992ull);
    ck_assert_uint_eq(l.max_plugins, 20000); /* the others keep their default */
    dc_policy_free(p);
    static const char *const keys[] = {"max_name_bytes", "max_plugins_per_domain",
                                       "max_skip_domains", "max_pattern_bytes",
                                       "max_pattern_compiled_bytes", "max_patterns_total_bytes"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char json[128], want[160];
        snprintf(json, sizeof json, "{\"bundle\": {\"%s\": 0}}", keys[i]);
        snprintf(want, sizeof want, "policy/x.json: bundle.%s: expected a positive integer",
                 keys[i]);
        load_fails(json, DC_EPOLICY, want);
        snprintf(json, sizeof json, "{\"bundle\": {\"%s\": \"1\"}}", keys[i]);
        load_fails(json, DC_EPOLICY, want);
    }
    load_fails("{\"bundle\": {\"max_pattern_bytes\": 4294967296}}", DC_EPOLICY,
               "policy/x.json: bundle.max_pattern_bytes: expected a positive integer up to "
               "4294967295");
    load_fails("{\"bundle\": {\"max_references\": 1}}", DC_EPOLICY,
               "policy/x.json: bundle.max_references: unknown key");
}
END_TEST

START_TEST(rules_are_selected_by_the_host)
{
    dc_policy *p = load_ok("{\"rules\": ["
                           " {\"domain\": \"^admin\\\\.\", \"quota\": {\"time_ms\": 1}},"
                           " {\"plugin\": \"x*\", \"quota\": {\"memory_kb\": 7}},"
                           " {\"domain\": \"^trusted\\\\.\", \"plugin\": \"t*\","
                           "  \"quota\": {\"time_ms\": 400}}]}");
    ck_assert_uint_eq(dc_policy_rule_count(p), 3);
    /* host-dependent: a rule with a domain regex could apply to the plugin */
    ck_assert_int_eq(dc_policy_host_dependent(p, "any"), 1); /* rule 0 has no glob */
    ck_assert_int_eq(dc_policy_host_dependent(NULL, "any"), 0);
    dc_policy *q = load_ok("{\"rules\": [{\"plugin\": \"x*\", \"on_error\": \"fail\"},"
                           " {\"domain\": \"a\", \"plugin\": \"t*\", \"on_error\": \"fail\"}]}");
    ck_assert_int_eq(dc_policy_host_dependent(q, "xy"), 0);
    ck_assert_int_eq(dc_policy_host_dependent(q, "tz"), 1);
    dc_policy_free(q);
    /* the rules' regexes are searched in the host a request names */
    unsigned char hm[3];
    dc_policy_host_rules(p, "admin.corp", 10, hm);
    ck_assert(hm[0] == 1 && hm[1] == 1 && hm[2] == 0);
    dc_policy_eff e;
    dc_policy_resolve_rules(p, hm, "tool", NULL, &e);
    assert_quota(&e.quota, 1000000, 1, 4096);
    dc_policy_host_rules(p, "www.trusted.example", 19, hm);
    ck_assert(hm[0] == 0 && hm[2] == 0);
    dc_policy_resolve_rules(p, hm, "tool", NULL, &e);
    assert_quota(&e.quota, 1000000, 50, 4096);
    /* no host: only the rules without a domain regex */
    dc_policy_resolve_rules(p, NULL, "xtool", NULL, &e);
    assert_quota(&e.quota, 1000000, 50, 7);
    e = resolve(p, "trusted.example", "tool", 0, 0, 0);
    assert_quota(&e.quota, 1000000, 400, 4096);
    dc_policy_free(p);
}
END_TEST

START_TEST(text_needs_no_terminating_nul)
{
    const char *src = "{\"on_error\": \"fail\"}";
    size_t n = strlen(src);
    char *buf = malloc(n); /* exactly n bytes: reading past them is an ASan error */
    memcpy(buf, src, n);
    dc_policy *p = NULL;
    char err[256] = "";
    ck_assert_int_eq(dc_policy_load(buf, n, "mem", &p, err, sizeof err), DC_OK);
    ck_assert_int_eq(resolve(p, "d", "p", 0, 0, 0).on_error_fail, 1);
    dc_policy_free(p);
    ck_assert_int_eq(dc_policy_load(buf, n - 1, "mem", &p, err, sizeof err), DC_EPOLICY);
    ck_assert_ptr_null(p);
    free(buf);
}
END_TEST

/* ---- refusals ---- */

START_TEST(not_json_is_refused)
{
    load_fails("{\"quota\": ", DC_EPOLICY, "policy/x.json: not JSON: syntax error at line 1, column 10");
    load_fails("{\n  \"a\": tru\n}", DC_EPOLICY,
               "policy/x.json: not JSON: syntax error at line 2, column 8");
    load_fails("{} x", DC_EPOLICY,
               "policy/x.json: not JSON: unexpected text after the value at line 1, column 4");
    load_fails("", DC_EPOLICY, "policy/x.json: not JSON: the text is empty");
    load_fails(" \n ", DC_EPOLICY, "policy/x.json: not JSON: the text is empty");
    load_fails("[]", DC_EPOLICY, "policy/x.json: expected a JSON object at the top level");
}
END_TEST

START_TEST(wrong_types_and_ranges_are_refused)
{
    load_fails("{\"quota\": {\"time_ms\": -1}}", DC_EPOLICY,
               "policy/x.json: quota.time_ms: expected a non-negative integer");
    load_fails("{\"quota\": {\"time_ms\": 1.5}}", DC_EPOLICY,
               "policy/x.json: quota.time_ms: expected a non-negative integer");
    load_fails("{\"quota\": {\"time_ms\": \"50\"}}", DC_EPOLICY,
               "policy/x.json: quota.time_ms: expected a non-negative integer");
    load_fails("{\"quota\": {\"memory_kb\": 4294967296}}", DC_EPOLICY,
               "policy/x.json: quota.memory_kb: expected a non-negative integer up to 4294967295");
    load_fails("{\"ceiling\": {\"instructions\": 1e300}}", DC_EPOLICY,
               "policy/x.json: ceiling.instructions: expected a non-negative integer up to "
               "9007199254740992");
    load_fails("{\"quota\": 5}", DC_EPOLICY, "policy/x.json: quota: expected an object");
    load_fails("{\"bundle\": {\"max_plugins\": 0}}", DC_EPOLICY,
               "policy/x.json: bundle.max_plugins: expected a positive integer");
    load_fails("{\"states\": {\"max_per_worker\": true}}", DC_EPOLICY,
               "policy/x.json: states.max_per_worker: expected a positive integer");
    load_fails("{\"quarantine\": {\"trips\": null}}", DC_EPOLICY,
               "policy/x.json: quarantine.trips: expected a non-negative integer");
    load_fails("{\"api\": {\"allow\": \"ngx.*\"}}", DC_EPOLICY,
               "policy/x.json: api.allow: expected an array of API names");
    load_fails("{\"api\": {\"deny\": [\"ngx.say\", 3]}}", DC_EPOLICY,
               "policy/x.json: api.deny[1]: expected a string (an API name)");
    load_fails("{\"rules\": {}}", DC_EPOLICY, "policy/x.json: rules: expected an array of rules");
    load_fails("{\"rules\": [{}, 1]}", DC_EPOLICY, "policy/x.json: rules[1]: expected an object");
    load_fails("{\"rules\": [{\"plugin\": 1}]}", DC_EPOLICY,
               "policy/x.json: rules[0].plugin: expected a string (a glob)");
}
END_TEST

START_TEST(choices_are_refused_unless_known)
{
    load_fails("{\"on_error\": \"ignore\"}", DC_EPOLICY,
               "policy/x.json: on_error: expected \"continue\" or \"fail\"");
    load_fails("{\"rules\": [{\"on_error\": true}]}", DC_EPOLICY,
               "policy/x.json: rules[0].on_error: expected \"continue\" or \"fail\"");
    load_fails("{\"until_loaded\": \"wait\"}", DC_EPOLICY,
               "policy/x.json: until_loaded: expected \"pass\" or \"refuse\"");
}
END_TEST

START_TEST(unknown_and_duplicate_keys_are_refused)
{
    load_fails("{\"qouta\": {}}", DC_EPOLICY, "policy/x.json: qouta: unknown key");
    load_fails("{\"rules\": [{}, {\"qouta\": {}}]}", DC_EPOLICY,
               "policy/x.json: rules[1].qouta: unknown key");
    load_fails("{\"quota\": {\"time\": 5}}", DC_EPOLICY, "policy/x.json: quota.time: unknown key");
    load_fails("{\"api\": {\"allowed\": []}}", DC_EPOLICY,
               "policy/x.json: api.allowed: unknown key");
    load_fails("{\"rules\": [{\"until_loaded\": \"pass\"}]}", DC_EPOLICY,
               "policy/x.json: rules[0].until_loaded: unknown key");
    load_fails("{\"quota\": {\"time_ms\": 5, \"time_ms\": 500}}", DC_EPOLICY,
               "policy/x.json: quota.time_ms: duplicate key");
}
END_TEST

START_TEST(unknown_api_names_are_refused)
{
    load_fails("{\"api\": {\"deny\": [\"ngx.say\", \"ngx.print\", \"ngx.sayy\"]}}", DC_EPOLICY,
               "policy/x.json: api.deny[2]: unknown API name \"ngx.sayy\"");
    load_fails("{\"api\": {\"allow\": [\"ngx.nope.*\"]}}", DC_EPOLICY,
               "policy/x.json: api.allow[0]: unknown API name \"ngx.nope.*\"");
    load_fails("{\"api\": {\"allow\": [\"\"]}}", DC_EPOLICY,
               "policy/x.json: api.allow[0]: unknown API name \"\"");
    load_fails("{\"api\": {\"allow\": [\"string\"]}}", DC_EPOLICY,
               "policy/x.json: api.allow[0]: unknown API name \"string\"");
    load_fails("{\"rules\": [{\"api\": {\"allow\": [\"ngx.*\", \"*\"]}}]}", DC_EPOLICY,
               "policy/x.json: rules[0].api.allow[1]: unknown API name \"*\"");
}
END_TEST

START_TEST(forbidden_names_can_never_be_allowed)
{
    static const char *const names[] = {"load", "loadstring", "dofile", "require",
                                        "debug.*", "debug.traceback", "io.*", "os.execute",
                                        "string.dump", "ffi.*", "jit.*", "getfenv",
                                        "setfenv", "module", "newproxy", "loadfile"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char json[128], want[256];
        snprintf(json, sizeof json, "{\"api\": {\"allow\": [\"%s\"]}}", names[i]);
        snprintf(want, sizeof want,
                 "policy/x.json: api.allow[0]: \"%s\" can never be allowed: the sandbox "
                 "forbids it", names[i]);
        load_fails(json, DC_EPOLICY, want);
    }
}
END_TEST

START_TEST(bad_domain_regex_is_refused)
{
    dc_policy *p = (dc_policy *)1;
    char err[512] = "";
    const char *json = "{\"rules\": [{\"domain\": \"ok\"}, {\"domain\": \"(unclosed\"}]}";
    ck_assert_int_eq(dc_policy_load(json, strlen(json), "policy/x.json", &p, err, sizeof err),
                     DC_EPOLICY);
    ck_assert_ptr_null(p);
    ck_assert_msg(strncmp(err, "policy/x.json: rules[1].domain: regex does not compile at "
                               "offset 9: ", 66) == 0, "%s", err);
    ck_assert_msg(strstr(err, "missing closing parenthesis") != NULL, "%s", err);
    load_fails("{\"rules\": [{\"domain\": 5}]}", DC_EPOLICY,
               "policy/x.json: rules[0].domain: expected a string (a regex)");
}
END_TEST

START_TEST(files_are_named_in_messages)
{
    dc_policy *p = (dc_policy *)1;
    char err[512] = "";
    ck_assert_int_eq(dc_policy_load_file("/nonexistent/dir/p.json", &p, err, sizeof err),
                     DC_EIO);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err, "/nonexistent/dir/p.json: cannot open: No such file or directory");

    ck_assert_int_eq(dc_policy_load_file("/", &p, err, sizeof err), DC_EIO);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");

    char path[] = "/tmp/dc_policy_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "{\"rules\": [{\"qouta\": {}}]}";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ck_assert_int_eq(dc_policy_load_file(path, &p, err, sizeof err), DC_EPOLICY);
    char want[256];
    snprintf(want, sizeof want, "%s: rules[0].qouta: unknown key", path);
    ck_assert_str_eq(err, want);
    unlink(path);

    /* a policy is a few KiB: a file over 1 MiB is refused before parsing */
    char big[] = "/tmp/dc_policy_big_XXXXXX";
    fd = mkstemp(big);
    ck_assert_int_ge(fd, 0);
    static char spaces[65536];
    memset(spaces, ' ', sizeof spaces);
    for (int i = 0; i < 17; i++)
        ck_assert_int_eq(write(fd, spaces, sizeof spaces), (ssize_t)sizeof spaces);
    close(fd);
    ck_assert_int_eq(dc_policy_load_file(big, &p, err, sizeof err), DC_EPOLICY);
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes", big);
    ck_assert_str_eq(err, want);
    unlink(big);

    ck_assert_int_eq(dc_policy_load("x", 1, NULL, &p, err, sizeof err), DC_EPOLICY);
    ck_assert_str_eq(err, "policy: not JSON: syntax error at line 1, column 1");
    ck_assert_int_eq(dc_policy_load(NULL, 3, "n", &p, err, sizeof err), DC_EINVAL);
    ck_assert_int_eq(dc_policy_load_file(NULL, &p, NULL, 0), DC_EINVAL);
}
END_TEST

START_TEST(every_error_path_frees_everything)
{
    /* errors after lists, regexes and rules were built; valgrind / ASan check the frees */
    load_fails("{\"api\": {\"allow\": [\"ngx.*\"], \"deny\": [\"ngx.x\"]}}", DC_EPOLICY,
               "policy/x.json: api.deny[0]: unknown API name \"ngx.x\"");
    load_fails("{\"api\": {\"allow\": [\"ngx.*\"]}, \"rules\": [{\"domain\": \"a\","
               " \"plugin\": \"b\", \"api\": {\"allow\": [\"ngx.say\"], \"deny\": [\"ngx.print\"]}},"
               " {\"domain\": \"c\", \"quota\": {\"time_ms\": -2}}]}",
               DC_EPOLICY, "policy/x.json: rules[1].quota.time_ms: expected a non-negative integer");
    load_fails("{\"rules\": [{\"domain\": \"a\", \"domain\": \"b\"}]}", DC_EPOLICY,
               "policy/x.json: rules[0].domain: duplicate key");
}
END_TEST

START_TEST(bounds_parse_override_and_match_the_shipped_files)
{
    dc_policy *p = load_ok("{\"bounds\":{\"log_line_bytes\":100,\"output_bytes\":0},"
                           "\"rules\":[{\"plugin\":\"big*\",\"bounds\":{\"output_bytes\":9}}]}");
    dc_policy_eff e = resolve(p, "d", "small", 0, 0, 0);
    ck_assert_uint_eq(e.bounds.log_line_bytes, 100);
    ck_assert_uint_eq(e.bounds.output_bytes, 0);      /* 0: unlimited */
    ck_assert_uint_eq(e.bounds.value_bytes, 8192);    /* built-in */
    e = resolve(p, "d", "bigone", 0, 0, 0);
    ck_assert_uint_eq(e.bounds.output_bytes, 9);
    ck_assert_uint_eq(e.bounds.log_line_bytes, 100);
    dc_policy_free(p);

    dc_policy *def = load_source_file("policy/default.json"), *builtin = NULL;
    char err[256];
    ck_assert_int_eq(dc_policy_default(&builtin, err, sizeof err), DC_OK);
    dc_policy_eff a = resolve(def, "d", "p", 0, 0, 0), b = resolve(builtin, "d", "p", 0, 0, 0);
    ck_assert_int_eq(memcmp(&a.bounds, &b.bounds, sizeof a.bounds), 0);
    ck_assert_uint_eq(a.bounds.output_bytes, 1048576);
    dc_policy_free(def);
    dc_policy_free(builtin);
    dc_policy *strict = load_source_file("policy/strict.json");
    ck_assert_uint_eq(resolve(strict, "d", "p", 0, 0, 0).bounds.output_bytes, 65536);
    dc_policy_free(strict);

    load_fails("{\"bounds\":{\"output_bytes\":\"lots\"}}", DC_EPOLICY,
               "policy/x.json: bounds.output_bytes: expected a non-negative integer");
    load_fails("{\"bounds\":{\"outptu_bytes\":1}}", DC_EPOLICY,
               "policy/x.json: bounds.outptu_bytes: unknown key");
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *t = tcase_create("builtin");
    tcase_add_test(t, builtin_default_has_the_documented_values);
    tcase_add_test(t, empty_policy_keeps_every_builtin_value);
    tcase_add_test(t, null_policy_is_the_builtin);
    tcase_add_test(t, builtin_allow_list_is_drawn_from_the_api_table);
    tcase_add_test(t, shipped_default_json_equals_the_builtin);
    tcase_add_test(t, shipped_strict_json_loads);
    suite_add_tcase(s, t);

    t = tcase_create("resolve");
    tcase_add_test(t, quota_asked_is_capped_by_the_ceiling);
    tcase_add_test(t, zero_means_unlimited);
    tcase_add_test(t, rules_match_by_domain_regex);
    tcase_add_test(t, rules_match_by_plugin_glob);
    tcase_add_test(t, rules_need_both_domain_and_plugin_and_apply_in_order);
    tcase_add_test(t, later_rules_override_earlier_ones);
    tcase_add_test(t, many_rules);
    tcase_add_test(t, limits_states_and_until_loaded);
    tcase_add_test(t, text_needs_no_terminating_nul);
    tcase_add_test(t, bundle_limits_parse_and_are_validated);
    tcase_add_test(t, rules_are_selected_by_the_host);
    suite_add_tcase(s, t);

    t = tcase_create("api");
    tcase_add_test(t, allow_exact_names_and_prefixes);
    tcase_add_test(t, deny_wins_over_allow);
    tcase_add_test(t, rule_allow_replaces_and_deny_adds);
    tcase_add_test(t, forbidden_names_may_be_denied);
    tcase_add_test(t, empty_allow_allows_nothing);
    suite_add_tcase(s, t);

    t = tcase_create("refusals");
    tcase_add_test(t, not_json_is_refused);
    tcase_add_test(t, wrong_types_and_ranges_are_refused);
    tcase_add_test(t, choices_are_refused_unless_known);
    tcase_add_test(t, unknown_and_duplicate_keys_are_refused);
    tcase_add_test(t, unknown_api_names_are_refused);
    tcase_add_test(t, forbidden_names_can_never_be_allowed);
    tcase_add_test(t, bad_domain_regex_is_refused);
    tcase_add_test(t, files_are_named_in_messages);
    tcase_add_test(t, every_error_path_frees_everything);
    tcase_add_test(t, bounds_parse_override_and_match_the_shipped_files);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(policy_suite());
}
