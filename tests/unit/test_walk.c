/* test_walk.c - the all-functions walk: in each phase, a plugin (tests/data/walk.lua) collects
 * every function reachable from its environment, including those of the metatables of what the
 * API returns, and calls each with hostile argument lists, in batches over many requests through
 * the real engine and the simulated request. Every call must end in a Lua error or a return;
 * a crash fails the test (Check runs it in a child). Quota trips and calls that end the request
 * (ngx.exit, ngx.redirect) are recorded, and the walk resumes after them.
 * By hand: WALK_PHASE=access walks one phase, WALK_NAMES=1 lists the functions, WALK_TRACE=1
 * prints each call before it is made (the last line names a crashing one), WALK_SLOW=MS prints
 * the calls slower than MS and each request of the walk. A quick run (DC_TEST_QUICK=1, as
 * scripts/valgrind.sh sets) walks the access phase only: every function, every argument list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "api_table.h"
#include "engine.h"
#include "sandbox.h"
#include "testutil.h"

/* Fewer functions than this means the walk lost part of the environment: 163 seen, of which 7
 * live in the metatables of ngx.var, ngx.header, ngx.arg and get_headers() tables, which a
 * plugin should not be able to reach. */
#define WALK_MIN_FUNCTIONS 140
#define BATCH_CALLS 20000
#define BATCH_BUDGET_MS 400
#define QUOTA_INSNS "5000000"

/* Quotas generous enough that a batch of calls ends by its own budget; no quarantine. */
#define POLICY_BASE                                                                          \
    "\"quota\":{\"instructions\":" QUOTA_INSNS ",\"time_ms\":30000,\"memory_kb\":262144},"  \
    "\"ceiling\":{\"instructions\":0,\"time_ms\":0,\"memory_kb\":0},"                        \
    "\"quarantine\":{\"trips\":0,\"window_s\":60,\"duration_s\":1},"                   \
    "\"shared_dicts\":[{\"name\":\"walk\",\"size_kb\":64}]"
static const char policy_json[] = "{" POLICY_BASE "}";
/* The last walk: the access phase again under a policy that denies whole areas and single
 * names, whose replacements are walked like the rest. */
static const char policy_deny_json[] =
    "{" POLICY_BASE ",\"api\":{\"allow\":[\"ngx.*\",\"json.*\",\"string.*\",\"table.*\","
    "\"math.*\",\"bit.*\",\"coroutine.*\",\"os.time\",\"os.clock\",\"os.date\",\"print\","
    "\"assert\",\"error\",\"ipairs\",\"next\",\"pairs\",\"pcall\",\"xpcall\",\"select\","
    "\"tonumber\",\"tostring\",\"type\",\"unpack\",\"rawequal\",\"rawget\",\"rawset\","
    "\"setmetatable\",\"getmetatable\",\"collectgarbage\"],"
    "\"deny\":[\"ngx.re.*\",\"ngx.say\",\"ngx.exit\",\"ngx.header\",\"string.rep\","
    "\"json.*\",\"bit.bor\",\"coroutine.wrap\"]}}";

typedef struct walk_fn {
    char *path;
    double first, count; /* its call numbers */
} walk_fn;

/* What the plugin and the driver share (one walk per test process: Check forks each test). */
static struct {
    /* the job of the current request */
    double start, limit;
    int job_taken, want_names;
    /* progress: the call about to be made */
    int at_seen, at_fn;
    double at_k;
    uint64_t at_left; /* instructions left to the call when it began */
    char at_desc[96]; /* its arguments */
    /* the batch's report */
    int done, nfuncs;
    double next, total, calls;
    double ok, err, denied; /* outcomes of every call of the walk */
    /* names of the functions */
    walk_fn *fns;
    int nfns;
    /* the plugin call's outcome (first call of the request) */
    int runs;
    dc_result result;
    char msg[1200];
} W;

static const char *fn_name(int i)
{
    return i >= 1 && i <= W.nfns ? W.fns[i - 1].path : "?";
}

/* Instructions left in the running call. */
static int w_left(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)dc_sbx_current(L)->insn_left);
    return 1;
}

static int w_job(lua_State *L)
{
    dc_call *c = dc_sbx_current(L);
    lua_pushstring(L, dc_phase_name(c->phase));
    lua_pushnumber(L, W.start);
    lua_pushnumber(L, W.job_taken ? 0 : W.limit);
    lua_pushnumber(L, BATCH_BUDGET_MS);
    lua_pushboolean(L, W.want_names);
    W.job_taken = 1;
    return 5;
}

static int w_names(lua_State *L)
{
#define PUSH_PATH(path) lua_pushstring(L, path), lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
#define PUSH_NAME(area, kind, path, field, fn, phases, allow) PUSH_PATH(path)
#define PUSH_CONST(name, value) PUSH_PATH(DC_API_CONST_PATH(name, value))
    lua_newtable(L);
    DC_API_TABLE(PUSH_NAME)
    DC_API_CONSTS(PUSH_CONST)
    return 1;
}

static int w_fn(lua_State *L)
{
    int i = (int)luaL_checknumber(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (i != W.nfns + 1)
        return luaL_error(L, "walk: function %d out of order", i);
    W.fns = realloc(W.fns, (size_t)i * sizeof *W.fns);
    W.fns[i - 1] = (walk_fn){strdup(path), luaL_checknumber(L, 3), luaL_checknumber(L, 4)};
    W.nfns = i;
    return 0;
}

static int w_at(lua_State *L)
{
    static double last;
    static int last_fn;
    static char last_desc[96];
    static const char *slow, *trace;
    static int env_read;
    if (!env_read) {
        slow = getenv("WALK_SLOW");
        trace = getenv("WALK_TRACE");
        env_read = 1;
    }
    double now = dc_now_ms();
    if (slow && W.at_seen && now - last > atof(slow))
        fprintf(stderr, "walk: slow %.0f ms: %s (%s)\n", now - last, fn_name(last_fn), last_desc);
    W.at_seen = 1;
    W.at_k = luaL_checknumber(L, 1);
    W.at_fn = (int)luaL_checknumber(L, 2);
    W.at_left = dc_sbx_current(L)->insn_left;
    int nargs = (int)luaL_checknumber(L, 4), pos = (int)luaL_checknumber(L, 5);
    if (nargs == 0)
        snprintf(W.at_desc, sizeof W.at_desc, "no arguments");
    else
        snprintf(W.at_desc, sizeof W.at_desc, "%d args, #%d %s", nargs, pos,
                 luaL_checkstring(L, 6));
    last = now;
    last_fn = W.at_fn;
    memcpy(last_desc, W.at_desc, sizeof last_desc);
    if (trace)
        fprintf(stderr, "walk: call %.0f: %s (%s)\n", W.at_k, fn_name(W.at_fn), W.at_desc);
    return 0;
}

static int w_done(lua_State *L)
{
    W.done = 1;
    W.next = luaL_checknumber(L, 1);
    W.nfuncs = (int)luaL_checknumber(L, 2);
    W.total = luaL_checknumber(L, 3);
    W.calls = luaL_checknumber(L, 4);
    return 0;
}

/* res(returned, denied): the outcome of the call at() announced. */
static int w_res(lua_State *L)
{
    if (lua_toboolean(L, 1))
        W.ok++;
    else
        W.err++;
    W.denied += lua_toboolean(L, 2);
    return 0;
}

static int w_log(lua_State *L)
{
    if (getenv("WALK_TRACE"))
        fprintf(stderr, "walk: %.1f %s\n", dc_now_ms(), luaL_checkstring(L, 1));
    return 0;
}

/* The test hook: `__walk` in every state's environment. */
static void add_walk(lua_State *L, int env)
{
    static const luaL_Reg fns[] = {{"job", w_job}, {"names", w_names}, {"fn", w_fn},
                                   {"at", w_at}, {"done", w_done}, {"log", w_log},
                                   {"left", w_left}, {"res", w_res}, {NULL, NULL}};
    lua_createtable(L, 0, 5);
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, env, "__walk");
}

/* Every function of the API table was walked under its own name: those the areas register
 * from the table, and the functions the areas set up themselves in ngx.worker and ngx.config. */
static void check_api_walked(void)
{
#define FN_PATH_FN(path) path,
#define FN_PATH_OWN(path)
#define FN_PATH_GLOBAL(path)
#define FN_PATH_LIB(path)
#define FN_PATH(area, kind, path, field, fn, phases, allow) FN_PATH_##kind(path)
    static const char *const paths[] = {
        DC_API_TABLE(FN_PATH) "ngx.worker.pid", "ngx.worker.id", "ngx.worker.count",
        "ngx.worker.exiting", "ngx.config.prefix", "ngx.config.nginx_configure"};
#undef FN_PATH
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int found = 0;
        for (int k = 0; k < W.nfns && !found; k++)
            found = strcmp(W.fns[k].path, paths[i]) == 0 && W.fns[k].count > 0;
        ck_assert_msg(found, "the walk did not call %s", paths[i]);
    }
}

static void on_run(void *ud, const dc_run_info *i)
{
    (void)ud;
    if (W.runs++ > 0)
        return;
    W.result = i->result;
    snprintf(W.msg, sizeof W.msg, "%s", i->message ? i->message : "");
}

/* The calls that tripped or ended the plugin, for the report. */
typedef struct tally {
    char text[4096];
} tally;

static void tally_add(tally *t, const char *what, const char *name, const char *args)
{
    size_t n = strlen(t->text);
    if (n < sizeof t->text - 1)
        snprintf(t->text + n, sizeof t->text - n, "%s%s %s(%s)", n ? ", " : "", what, name, args);
}

static const dc_phase phases[] = {DC_PHASE_REWRITE, DC_PHASE_ACCESS, DC_PHASE_CONTENT,
                                  DC_PHASE_HEADER_FILTER, DC_PHASE_BODY_FILTER, DC_PHASE_LOG};

START_TEST(walk_phase)
{
    int deny = _i == (int)(sizeof phases / sizeof phases[0]);
    dc_phase phase = deny ? DC_PHASE_ACCESS : phases[_i];
    const char *only = getenv("WALK_PHASE"); /* by hand: walk one phase */
    if (only && strcmp(only, dc_phase_name(phase)) != 0)
        return;
    if (!only && tu_quick() && (deny || phase != DC_PHASE_ACCESS))
        return; /* a quick run (under memcheck): the access phase's walk only */
    memset(&W, 0, sizeof W);
    dc_env_test_hook = add_walk;

    char *code = tu_read_source_file("tests/data/walk.lua", NULL);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "general"), "status", "enabled");
    cJSON *dom = cJSON_CreateObject();
    cJSON_AddStringToObject(dom, "name", "*");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", "walk");
    cJSON_AddStringToObject(p, "phase", dc_phase_name(phase));
    cJSON_AddStringToObject(p, "code", code);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(dom, "plugins"), p);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "domains"), dom);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(code);

    dc_policy *pol = NULL;
    char err[256] = "";
    const char *pj = deny ? policy_deny_json : policy_json;
    ck_assert_msg(dc_policy_load(pj, strlen(pj), "walk", &pol, err, sizeof err) == DC_OK,
                  "policy: %s", err);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = pol;
    cfg.seed = 1;
    /* the policy's dictionary, so that the walk reaches ngx.shared.walk's methods */
    size_t shd_size = dc_policy_shdicts_size(pol);
    void *shd_region = calloc(1, shd_size);
    dc_shdicts *shd = NULL;
    ck_assert_int_eq(dc_shdicts_open(shd_region, shd_size, 1, pol, &shd, err, sizeof err), DC_OK);
    cfg.shdicts = shd;
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, err, sizeof err), DC_OK);
    dc_bundle *b = tu_bundle(json);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    dc_engine_on_run(e, on_run, NULL);

    static const char *const hdrs[] = {"User-Agent: walk", "Cookie: a=1; b=2", "X-Many: 1",
                                       "X-Many: 2"};
    dc_sim_opts o = {.host = "walk.example", .uri = "/walk/path?a=1&b=2&a=3", .headers = hdrs,
                     .body = "a=1&b=2&a=3", .body_len = 11,
                     .nheaders = 4, .upstream_body = "upstream body\n",
                     .upstream_body_len = 14};

    double start = 0, total = -1, calls = 0;
    int requests = 0, trips = 0, exits = 0, solo = 0, nfuncs = -1;
    tally tripped = {""}, ended = {""};
    while (total < 0 || start < total) {
        W.start = start;
        W.limit = solo ? 1 : BATCH_CALLS;
        W.want_names = W.nfns == 0;
        W.job_taken = W.at_seen = W.done = W.runs = 0;
        dc_sim *s = dc_sim_new(&o);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(dc_sim_run(s, e), 0);
        dc_sim_free(s);
        requests++;
        if (getenv("WALK_SLOW"))
            fprintf(stderr, "walk: request %d from %.0f: %s%s, at %.0f (%s: %s), next %.0f\n",
                    requests, start, dc_result_name(W.result), W.done ? " done" : "", W.at_k,
                    fn_name(W.at_fn), W.at_desc, W.next);
        ck_assert_msg(W.runs >= 1 && W.job_taken, "request %d: the walk did not run", requests);
        int tripped_now = W.result >= DC_RESULT_QUOTA_INSTRUCTIONS &&
                          W.result <= DC_RESULT_QUOTA_MEMORY;
        if (W.done) {
            ck_assert_msg(W.result == DC_RESULT_OK, "batch at %.0f: %s (%s)", start,
                          dc_result_name(W.result), W.msg);
            ck_assert_msg(nfuncs < 0 || (nfuncs == W.nfuncs && total == W.total),
                          "the walk found %d functions, then %d", nfuncs, W.nfuncs);
            ck_assert_msg(W.next > start, "no progress at call %.0f", start);
            nfuncs = W.nfuncs;
            total = W.total;
            calls += W.calls;
            start = W.next;
            solo = 0;
        } else if (tripped_now || W.result == DC_RESULT_OK) { /* a trip, or ngx.exit and the like */
            ck_assert_msg(W.at_seen, "the walk ended (%s: %s) before its first call at %.0f",
                          dc_result_name(W.result), W.msg, start);
            if (tripped_now && !solo && W.at_left < strtoull(QUOTA_INSNS, NULL, 10) / 2) {
                /* the batch as a whole may have used the quota: the call alone decides */
                calls += W.at_k - start;
                solo = 1;
                start = W.at_k;
                continue;
            }
            calls += W.at_k - start + 1;
            if (tripped_now) {
                trips++;
                tally_add(&tripped, dc_result_name(W.result), fn_name(W.at_fn), W.at_desc);
            } else {
                exits++;
                tally_add(&ended, "", fn_name(W.at_fn), W.at_desc);
            }
            solo = 0;
            start = W.at_k + 1;
        } else {
            ck_abort_msg("batch at %.0f: %s (%s), last call %s (%s)", start,
                         dc_result_name(W.result), W.msg, W.at_seen ? fn_name(W.at_fn) : "none",
                         W.at_desc);
        }
    }
    if (getenv("WALK_NAMES"))
        for (int i = 0; i < W.nfns; i++)
            printf("  %s (%.0f calls)\n", W.fns[i].path, W.fns[i].count);
    printf("walk %s%s: %d functions, %.0f calls (%.0f returned, %.0f errors, %.0f denied), "
           "%d requests, %d quota trips, %d ended the call\n",
           dc_phase_name(phase), deny ? " (denying policy)" : "", nfuncs, calls, W.ok, W.err,
           W.denied, requests, trips, exits);
    if (trips)
        printf("  trips: %s\n", tripped.text);
    if (exits)
        printf("  ended: %s\n", ended.text);
    fflush(stdout);
    ck_assert_int_ge(nfuncs, WALK_MIN_FUNCTIONS);
    if (!deny)
        check_api_walked();
    if (deny) /* every denied name raised its error in its calls, and nothing else did */
        ck_assert_msg(W.denied > 0 && W.denied <= W.err, "%.0f denied calls", W.denied);
    else
        ck_assert_msg(W.denied == 0, "%.0f calls denied by a policy that allows all", W.denied);
    ck_assert_int_eq(W.nfns, nfuncs);
    ck_assert_msg(calls == total, "%.0f calls made of %.0f", calls, total);
    ck_assert_msg(W.ok + W.err + trips + exits == calls, "%.0f outcomes for %.0f calls",
                  W.ok + W.err + trips + exits, calls);

    dc_engine_free(e);
    dc_shdicts_close(shd);
    free(shd_region);
    dc_policy_free(pol);
    for (int i = 0; i < W.nfns; i++)
        free(W.fns[i].path);
    free(W.fns);
    free(json);
    dc_env_test_hook = NULL;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("walk");
    TCase *tc = tcase_create("walk");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, walk_phase, 0, (int)(sizeof phases / sizeof phases[0]) + 1);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
