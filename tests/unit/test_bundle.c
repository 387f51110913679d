/* test_bundle.c - dc_bundle_load rule by rule: what refuses a bundle whole, what
 * leaves one plugin or domain out, shared plugins, unknown fields, previous versions kept.
 * JSON literals are written with ' for " (see load()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "hostset.h"
#include "testutil.h"

static char err[1024];

/* Loads json after turning every ' into "; err gets the reason on failure. */
static dc_rc load_lim(const char *qjson, const dc_limits *lim, const dc_bundle *prev,
                      dc_bundle **out)
{
    char *json = strdup(qjson);
    ck_assert_ptr_nonnull(json);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    err[0] = '\0';
    dc_rc rc = dc_bundle_load(json, strlen(json), lim, prev, out, err, sizeof err);
    free(json);
    return rc;
}

static dc_rc load(const char *qjson, dc_bundle **out)
{
    dc_limits lim;
    dc_limits_default(&lim);
    return load_lim(qjson, &lim, NULL, out);
}

/* Loads a bundle that must be accepted. */
static dc_bundle *must_load(const char *qjson)
{
    dc_bundle *b = NULL;
    dc_rc rc = load(qjson, &b);
    ck_assert_msg(rc == DC_OK, "refused: %s: %s", dc_strerror(rc), err);
    ck_assert_ptr_nonnull(b);
    return b;
}

static void must_refuse(const char *qjson, dc_rc want, const char *err_prefix)
{
    dc_bundle *b = (dc_bundle *)&err; /* must be reset to NULL */
    dc_rc rc = load(qjson, &b);
    ck_assert_msg(rc == want, "got %s (%s) for %s", dc_strerror(rc), err, qjson);
    ck_assert_ptr_null(b);
    ck_assert_msg(strncmp(err, err_prefix, strlen(err_prefix)) == 0, "err \"%s\" for %s", err,
                  qjson);
}

static const dc_problem *find_problem(const dc_bundle *b, dc_problem_kind kind, const char *path)
{
    for (uint32_t i = 0; i < dc_bundle_problem_count(b); i++) {
        const dc_problem *p = dc_bundle_problem(b, i);
        if (p->kind == kind && strcmp(p->path, path) == 0)
            return p;
    }
    return NULL;
}

static const dc_problem *must_find(const dc_bundle *b, dc_problem_kind kind, const char *path)
{
    const dc_problem *p = find_problem(b, kind, path);
    if (!p) {
        for (uint32_t i = 0; i < dc_bundle_problem_count(b); i++)
            fprintf(stderr, "problem %d %s: %s\n", dc_bundle_problem(b, i)->kind,
                    dc_bundle_problem(b, i)->path, dc_bundle_problem(b, i)->message);
    }
    ck_assert_msg(p != NULL, "no problem of kind %d at %s", kind, path);
    return p;
}

static uint32_t count_kind(const dc_bundle *b, dc_problem_kind kind)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < dc_bundle_problem_count(b); i++)
        n += dc_bundle_problem(b, i)->kind == kind;
    return n;
}

/* The plugin at position j of domain i. */
static const dc_plugin *dplug(const dc_bundle *b, uint32_t i, uint32_t j)
{
    ck_assert_uint_lt(i, b->ndomains);
    ck_assert_uint_lt(j, b->domains[i].nplugins);
    ck_assert_uint_lt(b->domains[i].plugins[j], b->nplugins);
    return &b->plugins[b->domains[i].plugins[j]];
}

#define P(name, phase, code) "{'name':'" name "','phase':'" phase "','code':'" code "'}"
#define GEN "'general':{'status':'enabled'}"

/* ---- the original library's example ---- */

START_TEST(original_readme_bundle_loads)
{
    size_t len;
    char *json = tu_read_source_file("tests/data/original-readme-bundle.json", &len);
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *b = NULL;
    ck_assert_int_eq(dc_bundle_load(json, len, &lim, NULL, &b, err, sizeof err), DC_OK);
    ck_assert_int_eq(dc_bundle_enabled(b), 1);
    ck_assert_uint_eq(dc_bundle_domain_count(b), 1);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 3);
    ck_assert_uint_eq(dc_bundle_problem_count(b), 0);
    ck_assert_uint_eq(b->nskip, 1);
    ck_assert_int_eq(dc_re_search(b->skip[0], "api.server.local.com", 20, NULL), 1);
    ck_assert_int_eq(dc_re_search(b->skip[0], "dynamic.local.com", 17, NULL), 0);
    const dc_domain *d = &b->domains[0];
    ck_assert_str_eq(d->name, "dynamic.local.com");
    ck_assert_int_eq(d->any, 0);
    /* the host matcher answers for the domain; its checking regex is not kept */
    ck_assert_ptr_null(d->re);
    ck_assert_ptr_nonnull(b->hosts);
    ck_assert_uint_eq(d->nplugins, 3);
    const dc_phase want[] = {DC_PHASE_CONTENT, DC_PHASE_HEADER_FILTER, DC_PHASE_ACCESS};
    const char *names[] = {"dynamic content", "adding cors headers", "authentication required"};
    for (uint32_t j = 0; j < 3; j++) {
        const dc_plugin *p = dplug(b, 0, j);
        ck_assert_str_eq(p->name, names[j]);
        ck_assert_int_eq(p->phase, want[j]);
        ck_assert_mem_eq(p->bc, "\033LJ", 3);
        ck_assert_int_eq(p->kept_previous, 0);
        ck_assert_int_eq(p->skip, 0);
        ck_assert(p->sampling == 1.0);
    }
    ck_assert(b->hash == dc_hash64(json, len));
    dc_bundle_unref(b);
    free(json);
}
END_TEST

START_TEST(status_other_than_enabled_disables)
{
    const char *cases[] = {"{'general':{'status':'disabled'},'domains':[]}",
                           "{'general':{'status':'Enabled'},'domains':[]}",
                           "{'general':{},'domains':[]}"};
    for (size_t i = 0; i < 3; i++) {
        dc_bundle *b = must_load(cases[i]);
        ck_assert_int_eq(dc_bundle_enabled(b), 0);
        dc_bundle_unref(b);
    }
    dc_bundle *b = must_load("{" GEN ",'domains':[]}");
    ck_assert_int_eq(dc_bundle_enabled(b), 1);
    ck_assert_uint_eq(dc_bundle_domain_count(b), 0);
    dc_bundle_unref(b);
}
END_TEST

/* ---- refused whole ---- */

START_TEST(not_json_is_refused)
{
    must_refuse("{'general':", DC_EJSON, "not JSON");
    must_refuse("", DC_EJSON, "not JSON");
    must_refuse("{" GEN ",'domains':[]} trailing", DC_EJSON, "not JSON");
    must_refuse("{'general':{'status':'enabled'},\n'domains':[}", DC_EJSON, "not JSON");
    ck_assert_msg(strstr(err, "line 2") != NULL, "err: %s", err);
}
END_TEST

static const struct {
    const char *json;
    const char *err;
} bad_structure[] = {
    {"[]", "top level: expected an object"},
    {"{'domains':[]}", "general: expected an object"},
    {"{'general':[],'domains':[]}", "general: expected an object"},
    {"{" GEN "}", "domains: expected an array"},
    {"{" GEN ",'domains':{}}", "domains: expected an array"},
    {"{'general':{'status':1},'domains':[]}", "general.status: expected a string"},
    {"{'general':{'skip_domains':'x'},'domains':[]}", "general.skip_domains: expected"},
    {"{'general':{'skip_domains':['a',2]},'domains':[]}", "general.skip_domains[1]: expected"},
    {"{" GEN ",'domains':[{'name':'a'},{'name':'b'},{'name':'c'},{'name':4}]}",
     "domains[3].name: expected a string"},
    {"{" GEN ",'domains':[{'plugins':[]}]}", "domains[0].name: expected a string"},
    {"{" GEN ",'domains':['a.com']}", "domains[0]: expected an object"},
    {"{" GEN ",'domains':[{'name':'a','plugins':{}}]}", "domains[0].plugins: expected an array"},
    {"{" GEN ",'domains':[],'plugins':{}}", "plugins: expected an array"},
    {"{" GEN ",'domains':[],'plugins':null}", "plugins: expected an array"},
};

START_TEST(wrong_structure_is_refused_with_the_path)
{
    must_refuse(bad_structure[_i].json, DC_EBUNDLE, bad_structure[_i].err);
}
END_TEST

START_TEST(bundle_over_size_limit)
{
    dc_limits lim;
    dc_limits_default(&lim);
    const char *json = "{" GEN ",'domains':[]}";
    lim.max_bundle_bytes = strlen(json) - 1;
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim(json, &lim, NULL, &b), DC_ELIMIT);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(err, "over the limit"));
    lim.max_bundle_bytes = strlen(json);
    ck_assert_int_eq(load_lim(json, &lim, NULL, &b), DC_OK);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(too_many_domains_or_plugins)
{
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *b = NULL;
    const char *doms = "{" GEN ",'domains':[{'name':'a'},{'name':'b'},{'name':'c'}]}";
    lim.max_domains = 2;
    ck_assert_int_eq(load_lim(doms, &lim, NULL, &b), DC_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err, "domains"));
    lim.max_domains = 3;
    ck_assert_int_eq(load_lim(doms, &lim, NULL, &b), DC_OK);
    dc_bundle_unref(b);

    /* two inline plugins and one in the shared list, referenced twice: each reference costs
     * a run and a match slot like a plugin, so 2 + 1 + 2 */
    const char *pl = "{" GEN ",'domains':[{'name':'a','plugins':[" P("x", "log", "") ",2,"
                     P("y", "log", "") "]},{'name':'b','plugins':[2]}],"
                     "'plugins':[{'id':2,'name':'s','phase':'log','code':''}]}";
    lim.max_plugins = 4;
    ck_assert_int_eq(load_lim(pl, &lim, NULL, &b), DC_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err, "plugins: 5 plugins and references"));
    ck_assert_ptr_nonnull(strstr(err, "limit of 4 (max_plugins)"));
    lim.max_plugins = 5;
    ck_assert_int_eq(load_lim(pl, &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 3);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(bad_skip_regex_refuses_whole)
{
    must_refuse("{'general':{'status':'enabled','skip_domains':['ok','(']},'domains':[]}",
                DC_EBUNDLE, "general.skip_domains[1]: ");
    ck_assert_ptr_nonnull(strstr(err, "missing closing parenthesis"));
}
END_TEST

/* ---- one plugin left out, the others load ---- */

START_TEST(unknown_phase_leaves_the_plugin_out)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d.com','plugins':["
                             P("a", "access", "local x = 1") "," P("typo", "acess", "") ","
                             P("c", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 2);
    ck_assert_uint_eq(b->domains[0].nplugins, 2);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "a");
    ck_assert_str_eq(dplug(b, 0, 1)->name, "c");
    ck_assert_int_eq(dplug(b, 0, 1)->phase, DC_PHASE_LOG);
    ck_assert_uint_eq(dc_bundle_problem_count(b), 1);
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[1].phase");
    ck_assert_str_eq(p->message, "unknown phase \"acess\"");
    ck_assert_str_eq(p->domain, "d.com");
    ck_assert_str_eq(p->plugin, "typo");
    dc_bundle_unref(b);
}
END_TEST

START_TEST(syntax_error_leaves_the_plugin_out)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             P("broken", "access", "local = 1") "," P("fine", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "fine");
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].code");
    ck_assert_msg(strncmp(p->message, "broken:1:", 9) == 0, "message: %s", p->message);
    ck_assert_str_eq(p->plugin, "broken");
    dc_bundle_unref(b);
}
END_TEST

START_TEST(bytecode_is_refused)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             P("puc", "access", "\\u001bLuaQ") "," P("lj", "log", "\\u001bLJ\\u0002")
                             "," P("fine", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "fine");
    const char *paths[] = {"domains[0].plugins[0].code", "domains[0].plugins[1].code"};
    for (int i = 0; i < 2; i++) {
        const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, paths[i]);
        ck_assert_str_eq(p->message, "bytecode is refused, source only");
    }
    dc_bundle_unref(b);
}
END_TEST

START_TEST(code_over_the_limit_is_left_out)
{
    dc_limits lim;
    dc_limits_default(&lim);
    lim.max_code_bytes = 10;
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'d','plugins':["
                              P("long", "access", "local x = 12345") ","
                              P("short", "log", "local y=1") "]}]}", &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "short");
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].code");
    ck_assert_str_eq(p->message, "code is 15 bytes, over the limit of 10");
    dc_bundle_unref(b);
}
END_TEST

START_TEST(missing_or_mistyped_fields_leave_the_plugin_out)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             "{'phase':'log','code':''},"
                             "{'name':'nocode','phase':'log'},"
                             "{'name':'skipstr','phase':'log','code':'','skip':'yes'},"
                             "{'name':'idstr','phase':'log','code':'','id':'7'},"
                             "{'name':'q','phase':'log','code':'','quota':{'time_ms':-1}},"
                             "{'name':'qt','phase':'log','code':'','quota':5},"
                             "'a string', true, 2.5,"
                             P("fine", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "fine");
    ck_assert_str_eq(must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].name")->message,
                     "missing: a string is required");
    ck_assert_ptr_null(must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].name")->plugin);
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[1].code");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[2].skip");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[3].id");
    ck_assert_str_eq(must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT,
                               "domains[0].plugins[4].quota.time_ms")->message,
                     "expected a non-negative integer");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[5].quota");
    for (int j = 6; j <= 8; j++) {
        char path[64];
        snprintf(path, sizeof path, "domains[0].plugins[%d]", j);
        ck_assert_str_eq(must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, path)->domain, "d");
    }
    ck_assert_uint_eq(dc_bundle_problem_count(b), 9);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(long_plugin_name_is_left_out)
{
    dc_limits lim;
    dc_limits_default(&lim);
    lim.max_name_bytes = 8;
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'d','plugins':["
                              P("123456789", "log", "") "," P("12345678", "log", "") "]}]}",
                              &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "12345678");
    ck_assert_str_eq(must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].name")->message,
                     "name is 9 bytes, over the limit of 8");
    dc_bundle_unref(b);
}
END_TEST

/* ---- domains ---- */

/* Whether domain d of b applies to host, through the bundle's host matcher. */
static int domain_applies(const dc_bundle *b, uint32_t d, const char *host)
{
    uint32_t n = dc_hostset_count(b->hosts);
    unsigned char *applies = calloc(n ? n : 1, 1);
    ck_assert_ptr_nonnull(applies);
    dc_hostset_scratch *scr = NULL;
    ck_assert_int_eq(dc_hostset_scratch_new(b->hosts, &scr), DC_OK);
    ck_assert_int_ge(dc_hostset_match(b->hosts, scr, host, strlen(host), applies), 0);
    int r = applies[b->nskip + d];
    dc_hostset_scratch_free(scr);
    free(applies);
    return r;
}

START_TEST(bad_domain_regex_leaves_the_domain_out)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'(','plugins':[" P("a", "log", "")
                             "]},{'name':'ok\\\\.com','plugins':[" P("b", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_domain_count(b), 1);
    ck_assert_str_eq(b->domains[0].name, "ok\\.com");
    ck_assert_int_eq(domain_applies(b, 0, "www.ok.com"), 1);
    ck_assert_int_eq(domain_applies(b, 0, "okxcom"), 0);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "b");
    const dc_problem *p = must_find(b, DC_PROBLEM_DOMAIN_LEFT_OUT, "domains[0].name");
    ck_assert_ptr_nonnull(strstr(p->message, "missing closing parenthesis"));
    ck_assert_str_eq(p->domain, "(");
    ck_assert_ptr_null(p->plugin);
    ck_assert_uint_eq(dc_bundle_problem_count(b), 1);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(star_domain_and_long_domain_name)
{
    dc_limits lim;
    dc_limits_default(&lim);
    lim.max_name_bytes = 8;
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'*'},{'name':'longer.than8'},"
                              "{'name':'a.com','plugins':[]}]}", &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(dc_bundle_domain_count(b), 2);
    ck_assert_int_eq(b->domains[0].any, 1);
    ck_assert_ptr_null(b->domains[0].re);
    ck_assert_uint_eq(b->domains[0].nplugins, 0);
    ck_assert_str_eq(b->domains[1].name, "a.com");
    ck_assert_int_eq(b->domains[1].any, 0);
    const dc_problem *p = must_find(b, DC_PROBLEM_DOMAIN_LEFT_OUT, "domains[1].name");
    ck_assert_str_eq(p->message, "name is 12 bytes, over the limit of 8");
    dc_bundle_unref(b);
}
END_TEST

/* ---- the shared top-level list ---- */

START_TEST(shared_plugin_is_one_entry)
{
    dc_bundle *b = must_load("{" GEN ",'domains':["
                             "{'name':'a','plugins':[" P("x", "access", "") ",2]},"
                             "{'name':'b','plugins':[2]}],"
                             "'plugins':[{'id':2,'name':'shared','phase':'log','code':'local s'},"
                             "{'id':3,'name':'unused','phase':'log','code':''}]}");
    ck_assert_uint_eq(b->nplugins, 2);
    ck_assert_uint_eq(b->domains[0].nplugins, 2);
    ck_assert_uint_eq(b->domains[1].nplugins, 1);
    ck_assert_uint_eq(b->domains[0].plugins[1], b->domains[1].plugins[0]);
    const dc_plugin *s = dplug(b, 1, 0);
    ck_assert_str_eq(s->name, "shared");
    ck_assert_int_eq(s->has_id, 1);
    ck_assert_int_eq(s->id, 2);
    ck_assert_int_eq(s->phase, DC_PHASE_LOG);
    ck_assert_uint_eq(dc_bundle_problem_count(b), 0);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(unknown_id_is_a_problem)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'a','plugins':[7," P("x", "log", "")
                             "]}],'plugins':[{'id':2,'name':'s','phase':'log','code':''}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "x");
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0]");
    ck_assert_str_eq(p->message, "no plugin with id 7 in the top-level \"plugins\" list");
    ck_assert_str_eq(p->domain, "a");
    dc_bundle_unref(b);
}
END_TEST

START_TEST(shared_list_problems)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'a','plugins':[1,2,4]}],"
                             "'plugins':[{'id':1,'name':'bad','phase':'log','code':'local ='},"
                             "{'id':2,'name':'two','phase':'log','code':''},"
                             "{'id':2,'name':'dup','phase':'log','code':''},"
                             "{'name':'noid','phase':'log','code':''},"
                             "{'id':9,'name':'unref','phase':'acess','code':''},"
                             "'junk']}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "two");
    /* referenced and refused: reported once per referencing domain, naming it */
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[0].code");
    ck_assert_str_eq(p->domain, "a");
    ck_assert_str_eq(p->plugin, "bad");
    p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[2].id");
    ck_assert_ptr_nonnull(strstr(p->message, "duplicate id 2"));
    ck_assert_ptr_null(p->domain);
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[3].id");
    p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[4].phase");
    ck_assert_str_eq(p->message, "unknown phase \"acess\"");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[5]");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[2]");
    ck_assert_uint_eq(dc_bundle_problem_count(b), 6);
    dc_bundle_unref(b);
}
END_TEST

/* ---- unknown fields ---- */

START_TEST(unknown_fields_are_reported)
{
    dc_bundle *b = must_load("{'general':{'status':'enabled','bar':1},'foo':true,"
                             "'domains':[{'name':'d','baz':[],'plugins':[{'name':'p',"
                             "'phase':'log','code':'','qux':1,'quota':{'zzz':1,'time_ms':5},"
                             "'odd key':2}]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_int_eq(dplug(b, 0, 0)->quota.time_ms, 5);
    const char *paths[] = {"foo", "general.bar", "domains[0].baz", "domains[0].plugins[0].qux",
                           "domains[0].plugins[0].quota.zzz",
                           "domains[0].plugins[0][\"odd key\"]"};
    const char *msgs[] = {"unknown field \"foo\"", "unknown field \"bar\"", "unknown field \"baz\"",
                          "unknown field \"qux\"", "unknown field \"zzz\"",
                          "unknown field \"odd key\""};
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(must_find(b, DC_PROBLEM_UNKNOWN_FIELD, paths[i])->message, msgs[i]);
    ck_assert_str_eq(must_find(b, DC_PROBLEM_UNKNOWN_FIELD, "domains[0].plugins[0].qux")->plugin,
                     "p");
    ck_assert_uint_eq(dc_bundle_problem_count(b), 6);
    ck_assert_uint_eq(count_kind(b, DC_PROBLEM_PLUGIN_LEFT_OUT), 0);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(messages_are_quoted_on_one_line)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             P("p", "ac\\\"c\\ness", "") "]}]}");
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].phase");
    ck_assert_str_eq(p->message, "unknown phase \"ac\\\"c\\x0aess\"");
    dc_bundle_unref(b);
}
END_TEST

/* ---- previous versions ---- */

START_TEST(previous_version_stays_in_force)
{
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'d','plugins':["
                              P("auth", "access", "local ok = 1") "," P("log", "log", "") "]}]}",
                              &lim, NULL, &a), DC_OK);
    const dc_plugin *old = dplug(a, 0, 0);
    size_t bclen = old->bclen;
    unsigned char *bc = malloc(bclen);
    memcpy(bc, old->bc, bclen);
    uint64_t hash = old->code_hash;

    const char *next = "{" GEN ",'domains':[{'name':'d','plugins':[" P("log", "log", "local n")
                       "," P("auth", "access", "local = broken") "]},{'name':'e','plugins':["
                       P("auth", "access", "local = broken") "]}]}";
    ck_assert_int_eq(load_lim(next, &lim, a, &b), DC_OK);
    dc_bundle_unref(a); /* b holds a copy, not a borrow */
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 2);
    const dc_plugin *kept = dplug(b, 0, 1);
    ck_assert_str_eq(kept->name, "auth");
    ck_assert_int_eq(kept->kept_previous, 1);
    ck_assert_int_eq(kept->phase, DC_PHASE_ACCESS);
    ck_assert_uint_eq(kept->bclen, bclen);
    ck_assert_mem_eq(kept->bc, bc, bclen);
    ck_assert(kept->code_hash == hash);
    ck_assert_int_eq(dplug(b, 0, 0)->kept_previous, 0);
    const dc_problem *p = must_find(b, DC_PROBLEM_KEPT_PREVIOUS, "domains[0].plugins[1].code");
    ck_assert_msg(strncmp(p->message, "auth:1:", 7) == 0, "message: %s", p->message);
    ck_assert_ptr_nonnull(strstr(p->message, "; the previous version stays in force"));
    ck_assert_str_eq(p->domain, "d");
    /* domain e had no auth before: left out */
    ck_assert_uint_eq(b->domains[1].nplugins, 0);
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[1].plugins[0].code");
    ck_assert_uint_eq(count_kind(b, DC_PROBLEM_KEPT_PREVIOUS), 1);

    /* the kept copy is kept again from b, and without previous the plugin is left out */
    ck_assert_int_eq(load_lim(next, &lim, b, &c), DC_OK);
    ck_assert_int_eq(dplug(c, 0, 1)->kept_previous, 1);
    ck_assert_mem_eq(dplug(c, 0, 1)->bc, bc, bclen);
    dc_bundle_unref(c);
    ck_assert_int_eq(load_lim(next, &lim, NULL, &c), DC_OK);
    ck_assert_uint_eq(dc_bundle_plugin_count(c), 1);
    ck_assert_uint_eq(count_kind(c, DC_PROBLEM_KEPT_PREVIOUS), 0);
    dc_bundle_unref(c);
    dc_bundle_unref(b);
    free(bc);
}
END_TEST

START_TEST(previous_version_of_a_shared_plugin)
{
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *a = NULL, *b = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'x','plugins':[1]},"
                              "{'name':'y','plugins':[1]}],"
                              "'plugins':[{'id':1,'name':'s','phase':'log','code':'local v'}]}",
                              &lim, NULL, &a), DC_OK);
    ck_assert_uint_eq(a->nplugins, 1);
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'x','plugins':[1]},"
                              "{'name':'y','plugins':[1]},{'name':'z','plugins':[1]}],"
                              "'plugins':[{'id':1,'name':'s','phase':'lg','code':'local v'}]}",
                              &lim, a, &b), DC_OK);
    /* x and y keep the one previous entry; z never had it */
    ck_assert_uint_eq(b->nplugins, 1);
    ck_assert_uint_eq(b->domains[0].nplugins, 1);
    ck_assert_uint_eq(b->domains[1].nplugins, 1);
    ck_assert_uint_eq(b->domains[2].nplugins, 0);
    ck_assert_uint_eq(b->domains[0].plugins[0], b->domains[1].plugins[0]);
    ck_assert_int_eq(dplug(b, 0, 0)->kept_previous, 1);
    ck_assert_uint_eq(count_kind(b, DC_PROBLEM_KEPT_PREVIOUS), 2);
    ck_assert_uint_eq(count_kind(b, DC_PROBLEM_PLUGIN_LEFT_OUT), 1);
    dc_bundle_unref(a);
    dc_bundle_unref(b);
}
END_TEST

/* ---- optional fields ---- */

START_TEST(quota_sampling_skip_id_parsed)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             "{'name':'cors','phase':'header_filter','code':'local c',"
                             "'quota':{'instructions':50000,'time_ms':5,'memory_kb':512},"
                             "'sampling':0.25,'id':12},"
                             "{'name':'off','phase':'log','code':'','skip':true,'sampling':0},"
                             P("plain", "rewrite", "") "]}]}");
    ck_assert_uint_eq(b->nplugins, 3);
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 3); /* loaded, the skipped one too */
    const dc_plugin *p = dplug(b, 0, 0);
    ck_assert(p->quota.instructions == 50000);
    ck_assert_uint_eq(p->quota.time_ms, 5);
    ck_assert_uint_eq(p->quota.memory_kb, 512);
    ck_assert(p->sampling == 0.25);
    ck_assert_int_eq(p->has_id, 1);
    ck_assert_int_eq(p->id, 12);
    ck_assert_int_eq(p->skip, 0);
    ck_assert(p->code_hash == dc_hash64("local c", 7));
    p = dplug(b, 0, 1);
    ck_assert_int_eq(p->skip, 1);
    ck_assert(p->sampling == 0.0);
    p = dplug(b, 0, 2);
    ck_assert(p->quota.instructions == 0 && p->quota.time_ms == 0 && p->quota.memory_kb == 0);
    ck_assert(p->sampling == 1.0);
    ck_assert_int_eq(p->has_id, 0);
    ck_assert_int_eq(p->phase, DC_PHASE_REWRITE);
    ck_assert_uint_eq(dc_bundle_problem_count(b), 0);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(bad_sampling_leaves_the_plugin_out)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'d','plugins':["
                             "{'name':'a','phase':'log','code':'','sampling':1.5},"
                             "{'name':'b','phase':'log','code':'','sampling':-0.1},"
                             "{'name':'c','phase':'log','code':'','sampling':'half'},"
                             "{'name':'d','phase':'log','code':'','sampling':1}]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(dplug(b, 0, 0)->name, "d");
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].sampling");
    ck_assert_str_eq(p->message, "sampling is 1.5, expected a number from 0 to 1");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[1].sampling");
    must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[2].sampling");
    dc_bundle_unref(b);
}
END_TEST

/* ---- references ---- */

START_TEST(refcounting)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[]}");
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    ck_assert_ptr_eq(dc_bundle_ref(b), b);
    ck_assert_uint_eq(atomic_load(&b->refs), 2);
    dc_bundle_unref(b);
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    ck_assert_int_eq(dc_bundle_enabled(b), 1); /* still alive */
    dc_bundle_unref(b);
    /* NULL is harmless everywhere */
    dc_bundle_unref(NULL);
    ck_assert_ptr_null(dc_bundle_ref(NULL));
    ck_assert_uint_eq(dc_bundle_plugin_count(NULL), 0);
    ck_assert_ptr_null(dc_bundle_problem(NULL, 0));
}
END_TEST

START_TEST(bad_arguments)
{
    dc_bundle *b = NULL;
    ck_assert_int_eq(dc_bundle_load(NULL, 4, NULL, NULL, &b, err, sizeof err), DC_EINVAL);
    ck_assert_int_eq(dc_bundle_load("{}", 2, NULL, NULL, NULL, err, sizeof err), DC_EINVAL);
    /* NULL limits: the defaults */
    const char *json = "{\"general\":{},\"domains\":[]}";
    ck_assert_int_eq(dc_bundle_load(json, strlen(json), NULL, NULL, &b, NULL, 0), DC_OK);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(dc_bundle_problem(b, 0));
    dc_bundle_unref(b);
}
END_TEST

/* Unchanged plugins take the previous bundle's bytecode instead of being compiled again. The
 * proof: LuaJIT orders constant table keys differently in each state, so compiling this plugin
 * five times almost never gives the same bytes five times; reuse always does. */
START_TEST(unchanged_plugins_reuse_the_previous_bytecode)
{
    const char *json = "{" GEN ",'domains':[{'name':'d','plugins':["
                       P("keyed", "access", "local t = {a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8}") "]}]}";
    dc_bundle *a = must_load(json);
    dc_limits lim;
    dc_limits_default(&lim);
    for (int i = 0; i < 5; i++) {
        dc_bundle *b = NULL;
        ck_assert_int_eq(load_lim(json, &lim, a, &b), DC_OK);
        ck_assert_uint_eq(b->plugins[0].bclen, a->plugins[0].bclen);
        ck_assert_int_eq(memcmp(b->plugins[0].bc, a->plugins[0].bc, a->plugins[0].bclen), 0);
        ck_assert_ptr_ne(b->plugins[0].bc, a->plugins[0].bc); /* a copy of its own */
        dc_bundle_unref(b);
    }
    /* Same code under another name: compiled again (the name is in the bytecode). */
    dc_bundle *c = NULL;
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'d','plugins':["
                              P("renamed", "access", "local t = {a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8}")
                              "]}]}", &lim, a, &c), DC_OK);
    ck_assert_ptr_nonnull(memmem(c->plugins[0].bc, c->plugins[0].bclen, "renamed", 7));
    dc_bundle_unref(c);
    dc_bundle_unref(a);
}
END_TEST

/* ---- the bundle is hostile too: every count and size it controls is bounded ---- */

#define GOOD                                                                        \
    "{" GEN ",'domains':[{'name':'*','plugins':[{'name':'good','phase':'header_filter'," \
    "'code':'ngx.header[\\'X-Good\\'] = \\'1\\''}]}]}"

/* The bundle bad (with limits lim) is refused whole, with a message holding both what and
 * limit, and the last good bundle stays in force: an engine running it still answers with its
 * header, and loading bad with the good one as previous changes nothing of it. */
static void refused_keeping_last_good(const char *bad, const dc_limits *lim, dc_rc want,
                                      const char *what, const char *limit)
{
    dc_bundle *good = NULL, *b = (dc_bundle *)&err;
    ck_assert_int_eq(load_lim(GOOD, lim, NULL, &good), DC_OK);
    dc_engine *e = tu_engine(good);
    ck_assert_int_eq(load_lim(bad, lim, good, &b), want);
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(err, what) != NULL, "\"%s\" not in \"%s\"", what, err);
    ck_assert_msg(strstr(err, limit) != NULL, "\"%s\" not in \"%s\"", limit, err);
    dc_sim *s = tu_request(e, "a.com", "/");
    ck_assert_str_eq(dc_sim_header(s, "X-Good"), "1");
    dc_sim_free(s);
    dc_engine_free(e);
    ck_assert_uint_eq(dc_bundle_plugin_count(good), 1);
    dc_bundle_unref(good);
}

/* A domain whose plugins are n references to the shared plugin 1. */
static char *refs_bundle(unsigned n)
{
    dc_buf t = {0};
    ck_assert_int_eq(dc_buf_printf(&t, "{" GEN ",'domains':[{'name':'a','plugins':["), 0);
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(dc_buf_printf(&t, "%s1", i ? "," : ""), 0);
    ck_assert_int_eq(dc_buf_printf(&t, "]}],'plugins':[{'id':1,'name':'s','phase':'log',"
                                       "'code':''}]}"), 0);
    return t.data;
}

START_TEST(references_count_like_plugins_in_all)
{
    dc_limits lim;
    dc_limits_default(&lim);
    lim.max_plugins = 50;
    /* 49 references and the shared entry itself: 50, at the limit */
    char *ok = refs_bundle(49), *bad = refs_bundle(50);
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim(ok, &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(b->domains[0].nplugins, 49);
    dc_bundle_unref(b);
    refused_keeping_last_good(bad, &lim, DC_ELIMIT, "51 plugins and references",
                              "limit of 50 (max_plugins)");
    free(ok);
    free(bad);
}
END_TEST

START_TEST(references_count_per_domain)
{
    dc_limits lim;
    dc_limits_default(&lim);
    ck_assert_uint_eq(lim.max_plugins_per_domain, 1000);
    lim.max_plugins_per_domain = 10;
    char *bad = refs_bundle(11);
    refused_keeping_last_good(bad, &lim, DC_ELIMIT, "domains[0].plugins: 11 entries",
                              "limit of 10 (max_plugins_per_domain)");
    free(bad);
    /* inline objects count the same way */
    refused_keeping_last_good("{" GEN ",'domains':[{'name':'a','plugins':[" P("x", "log", "") ","
                              P("y", "log", "") "]},{'name':'b','plugins':[" P("z", "log", "")
                              "]}]}", &(dc_limits){.max_bundle_bytes = 1 << 20,
                              .max_domains = 10, .max_plugins = 10, .max_code_bytes = 100,
                              .max_name_bytes = 10, .max_plugins_per_domain = 1,
                              .max_skip_domains = 1, .max_pattern_bytes = 10,
                              .max_pattern_compiled_bytes = 4096,
                              .max_patterns_total_bytes = 1 << 20},
                              DC_ELIMIT, "domains[0].plugins: 2 entries",
                              "limit of 1 (max_plugins_per_domain)");
}
END_TEST

START_TEST(skip_domains_bounded_in_count)
{
    dc_limits lim;
    dc_limits_default(&lim);
    ck_assert_uint_eq(lim.max_skip_domains, 1000);
    lim.max_skip_domains = 2;
    dc_bundle *b = NULL;
    ck_assert_int_eq(load_lim("{'general':{'status':'enabled','skip_domains':['a','b']},"
                              "'domains':[]}", &lim, NULL, &b), DC_OK);
    dc_bundle_unref(b);
    refused_keeping_last_good("{'general':{'status':'enabled','skip_domains':['a','b','c']},"
                              "'domains':[]}", &lim, DC_ELIMIT,
                              "general.skip_domains: 3 entries",
                              "limit of 2 (max_skip_domains)");
}
END_TEST

START_TEST(skip_domains_bounded_in_pattern_length)
{
    dc_limits lim;
    dc_limits_default(&lim);
    ck_assert_uint_eq(lim.max_pattern_bytes, 256);
    lim.max_pattern_bytes = 8;
    refused_keeping_last_good("{'general':{'status':'enabled','skip_domains':['12345678',"
                              "'123456789']},'domains':[]}", &lim, DC_ELIMIT,
                              "general.skip_domains[1]: pattern is 9 bytes",
                              "limit of 8 (max_pattern_bytes)");
}
END_TEST

START_TEST(skip_pattern_bounded_in_compiled_size)
{
    dc_limits lim;
    dc_limits_default(&lim);
    ck_assert_uint_eq(lim.max_pattern_compiled_bytes, 16384);
    /* 17 bytes that compile to some 40 KB */
    refused_keeping_last_good("{'general':{'status':'enabled','skip_domains':["
                              "'(?:a|b){3000}0']},'domains':[]}", &lim, DC_ELIMIT,
                              "general.skip_domains[0]: regex compiles to",
                              "limit of 16384 (max_pattern_compiled_bytes)");
}
END_TEST

START_TEST(domain_pattern_bounded_in_length_and_compiled_size)
{
    dc_limits lim;
    dc_limits_default(&lim);
    lim.max_pattern_bytes = 20;
    dc_bundle *b = NULL;
    /* a domain is left out alone, as one whose regex does not compile; the others load */
    ck_assert_int_eq(load_lim("{" GEN ",'domains':[{'name':'(?:a|b){3000}0','plugins':["
                              P("x", "log", "") "]},{'name':'abcdefghijabcdefghijk'},"
                              "{'name':'ok.com','plugins':[" P("y", "log", "") "]}]}",
                              &lim, NULL, &b), DC_OK);
    ck_assert_uint_eq(dc_bundle_domain_count(b), 1);
    ck_assert_str_eq(b->domains[0].name, "ok.com");
    const dc_problem *p = must_find(b, DC_PROBLEM_DOMAIN_LEFT_OUT, "domains[0].name");
    ck_assert_ptr_nonnull(strstr(p->message, "regex compiles to"));
    ck_assert_ptr_nonnull(strstr(p->message, "limit of 16384 (max_pattern_compiled_bytes)"));
    p = must_find(b, DC_PROBLEM_DOMAIN_LEFT_OUT, "domains[1].name");
    ck_assert_ptr_nonnull(strstr(p->message, "pattern is 21 bytes, over the limit of 20 "
                                             "(max_pattern_bytes)"));
    dc_bundle_unref(b);
}
END_TEST

START_TEST(patterns_bounded_in_total)
{
    dc_limits lim;
    dc_limits_default(&lim);
    ck_assert_uint_eq(lim.max_patterns_total_bytes, 32u << 20);
    lim.max_patterns_total_bytes = 1000;
    /* each of these compiles to more than 100 bytes (JIT code aside): 10 are over 1000 */
    dc_buf t = {0};
    ck_assert_int_eq(dc_buf_printf(&t, "{" GEN ",'domains':["), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(dc_buf_printf(&t, "%s{'name':'^host%d\\\\.example\\\\.com$'}",
                                       i ? "," : "", i), 0);
    ck_assert_int_eq(dc_buf_printf(&t, "]}"), 0);
    refused_keeping_last_good(t.data, &lim, DC_ELIMIT, "domains[",
                              "more than 1000 bytes in all (max_patterns_total_bytes)");
    dc_buf_free(&t);
}
END_TEST

START_TEST(strings_with_nul_are_refused)
{
    static const struct {
        const char *json, *path;
    } cases[] = {
        {"{" GEN ",'domains':[{'name':'a','plugins':[{'name':'p','phase':'log',"
         "'code':'return\\u0000 os.exit()'}]}]}", "domains[0].plugins[0].code: string"},
        {"{" GEN ",'domains':[{'name':'a','plugins':[{'name':'p\\u0000q','phase':'log',"
         "'code':''}]}]}", "domains[0].plugins[0].name: string"},
        {"{" GEN ",'domains':[{'name':'a','plugins':[{'name':'p','phase':'log\\u0000x',"
         "'code':''}]}]}", "domains[0].plugins[0].phase: string"},
        {"{" GEN ",'domains':[{'name':'a\\u0000.*','plugins':[]}]}", "domains[0].name: string"},
        {"{'general':{'status':'enabled','skip_domains':['x','a\\u0000']},'domains':[]}",
         "general.skip_domains[1]: string"},
        {"{" GEN ",'domains':[],'x\\u0000':1}", "x\\u0000: key"},
    };
    dc_limits lim;
    dc_limits_default(&lim);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused_keeping_last_good(cases[i].json, &lim, DC_EBUNDLE, cases[i].path,
                                  "contains a NUL byte (\\u0000)");
    /* an escaped backslash before "u0000" is six ordinary characters */
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'a','plugins':[{'name':'p',"
                             "'phase':'log','code':'local s = \\'\\\\\\\\u0000\\''}]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    dc_bundle_unref(b);
}
END_TEST

START_TEST(problems_kept_are_the_first_few_and_counted)
{
    dc_buf t = {0};
    ck_assert_int_eq(dc_buf_printf(&t, "{" GEN ",'domains':[{'name':'a','plugins':[" P("bad",
                                       "nophase", "") "]}]"), 0);
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(dc_buf_printf(&t, ",'u%d':%d", i, i), 0);
    ck_assert_int_eq(dc_buf_printf(&t, "}"), 0);
    dc_bundle *b = must_load(t.data);
    ck_assert_uint_eq(dc_bundle_problem_count(b), DC_BUNDLE_PROBLEMS_KEPT);
    uint32_t left_out = 0;
    ck_assert_uint_eq(dc_bundle_problem_total(b, &left_out), 3001);
    /* the plugin left out comes after every unknown field of the top level: not listed, but
     * counted, so `dynacode check` still exits 1 */
    ck_assert_uint_eq(left_out, 1);
    ck_assert_uint_eq(count_kind(b, DC_PROBLEM_UNKNOWN_FIELD), DC_BUNDLE_PROBLEMS_KEPT);
    ck_assert_str_eq(dc_bundle_problem(b, 0)->path, "u0");
    /* a worker's copy (the snapshot) keeps the count, and reads those not kept as left out */
    unsigned char *snap = NULL;
    size_t slen = 0;
    ck_assert_int_eq(dc_snapshot_encode(b, &snap, &slen), DC_OK);
    ck_assert_uint_lt(slen, t.len); /* no longer a multiple of the bundle */
    dc_bundle *w = NULL;
    ck_assert_int_eq(dc_snapshot_decode(snap, slen, &w, err, sizeof err), DC_OK);
    ck_assert_uint_eq(dc_bundle_problem_count(w), DC_BUNDLE_PROBLEMS_KEPT);
    ck_assert_uint_eq(dc_bundle_problem_total(w, &left_out), 3001);
    ck_assert_uint_eq(left_out, 2901);
    dc_bundle_unref(w);
    free(snap);
    dc_bundle_unref(b);
    dc_buf_free(&t);
}
END_TEST

START_TEST(names_with_control_bytes_are_refused)
{
    dc_bundle *b = must_load("{" GEN ",'domains':[{'name':'a','plugins':["
                             "{'name':'evil\\nplugin=\\'x\\'','phase':'log','code':''},"
                             P("fine", "log", "") "]},{'name':'b\\t.com','plugins':["
                             P("z", "log", "") "]}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 1);
    ck_assert_str_eq(b->plugins[0].name, "fine");
    ck_assert_uint_eq(dc_bundle_domain_count(b), 1);
    const dc_problem *p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "domains[0].plugins[0].name");
    ck_assert_str_eq(p->message,
                     "name \"evil\\x0aplugin=\\\"x\\\"\" contains the control byte 0x0a");
    p = must_find(b, DC_PROBLEM_DOMAIN_LEFT_OUT, "domains[1].name");
    ck_assert_str_eq(p->message, "name \"b\\x09.com\" contains the control byte 0x09");
    ck_assert_ptr_null(p->domain); /* the raw name is not handed on */
    dc_bundle_unref(b);
    /* shared plugins too */
    b = must_load("{" GEN ",'domains':[{'name':'a','plugins':[1]}],'plugins':[{'id':1,"
                  "'name':'x\\u007f','phase':'log','code':''}]}");
    ck_assert_uint_eq(dc_bundle_plugin_count(b), 0);
    p = must_find(b, DC_PROBLEM_PLUGIN_LEFT_OUT, "plugins[0].name");
    ck_assert_ptr_nonnull(strstr(p->message, "control byte 0x7f"));
    dc_bundle_unref(b);
}
END_TEST

START_TEST(original_bundle_loads_under_default_and_strict_policy)
{
    size_t len;
    char *json = tu_read_source_file("tests/data/original-readme-bundle.json", &len);
    const char *files[] = {"policy/default.json", "policy/strict.json"};
    for (int i = 0; i < 2; i++) {
        size_t plen;
        char *pj = tu_read_source_file(files[i], &plen);
        dc_policy *pol = NULL;
        ck_assert_int_eq(dc_policy_load(pj, plen, files[i], &pol, err, sizeof err), DC_OK);
        dc_limits lim;
        dc_policy_limits(pol, &lim);
        dc_bundle *b = NULL;
        ck_assert_msg(dc_bundle_load(json, len, &lim, NULL, &b, err, sizeof err) == DC_OK,
                      "%s: %s", files[i], err);
        ck_assert_uint_eq(dc_bundle_plugin_count(b), 3);
        ck_assert_uint_eq(dc_bundle_problem_total(b, NULL), 0);
        dc_bundle_unref(b);
        dc_policy_free(pol);
        free(pj);
    }
    free(json);
}
END_TEST

static Suite *bundle_suite(void)
{
    Suite *s = suite_create("bundle");
    TCase *tc = tcase_create("bundle");
    tcase_add_test(tc, original_readme_bundle_loads);
    tcase_add_test(tc, status_other_than_enabled_disables);
    tcase_add_test(tc, not_json_is_refused);
    tcase_add_loop_test(tc, wrong_structure_is_refused_with_the_path, 0,
                        sizeof bad_structure / sizeof bad_structure[0]);
    tcase_add_test(tc, bundle_over_size_limit);
    tcase_add_test(tc, too_many_domains_or_plugins);
    tcase_add_test(tc, bad_skip_regex_refuses_whole);
    tcase_add_test(tc, unknown_phase_leaves_the_plugin_out);
    tcase_add_test(tc, syntax_error_leaves_the_plugin_out);
    tcase_add_test(tc, bytecode_is_refused);
    tcase_add_test(tc, code_over_the_limit_is_left_out);
    tcase_add_test(tc, missing_or_mistyped_fields_leave_the_plugin_out);
    tcase_add_test(tc, long_plugin_name_is_left_out);
    tcase_add_test(tc, bad_domain_regex_leaves_the_domain_out);
    tcase_add_test(tc, star_domain_and_long_domain_name);
    tcase_add_test(tc, shared_plugin_is_one_entry);
    tcase_add_test(tc, unknown_id_is_a_problem);
    tcase_add_test(tc, shared_list_problems);
    tcase_add_test(tc, unknown_fields_are_reported);
    tcase_add_test(tc, messages_are_quoted_on_one_line);
    tcase_add_test(tc, previous_version_stays_in_force);
    tcase_add_test(tc, previous_version_of_a_shared_plugin);
    tcase_add_test(tc, quota_sampling_skip_id_parsed);
    tcase_add_test(tc, bad_sampling_leaves_the_plugin_out);
    tcase_add_test(tc, unchanged_plugins_reuse_the_previous_bytecode);
    tcase_add_test(tc, refcounting);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, references_count_like_plugins_in_all);
    tcase_add_test(tc, references_count_per_domain);
    tcase_add_test(tc, skip_domains_bounded_in_count);
    tcase_add_test(tc, skip_domains_bounded_in_pattern_length);
    tcase_add_test(tc, skip_pattern_bounded_in_compiled_size);
    tcase_add_test(tc, domain_pattern_bounded_in_length_and_compiled_size);
    tcase_add_test(tc, patterns_bounded_in_total);
    tcase_add_test(tc, strings_with_nul_are_refused);
    tcase_add_test(tc, problems_kept_are_the_first_few_and_counted);
    tcase_add_test(tc, names_with_control_bytes_are_refused);
    tcase_add_test(tc, original_bundle_loads_under_default_and_strict_policy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(bundle_suite());
}
