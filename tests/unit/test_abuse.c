/* test_abuse.c - the abuse suite: one plugin per attack under tests/abuse/ (one .lua file each),
 * each run as the first access plugin of a bundle whose second plugin is a witness in a state
 * of its own. Each case's header says what must happen:
 *   -- expect: RESULT [RESULT...]   the attack's result (ok, error, quota:..., denied)
 *   -- msg: TEXT                    a text its message must contain
 *   -- requests: N                  requests to send; the expected result must come in one
 *   -- phase: NAME                  the attack's phase (access when absent)
 * For every case: the call ends within a generous bound of its quota, and the witness runs and
 * finds its libraries, globals, string metatable and ngx.ctx untouched.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "testutil.h"

#define MAX_CASES 1024
/* Not a timing goal (those live in tests/bench): a bound no machine, however slow or busy, needs,
 * that only an attack escaping its quotas altogether can reach. */
#define BOUND_MS 30000.0

static char *cases[MAX_CASES];
static int ncases;

static const char witness[] =
    "assert(leak == nil and leak2 == nil, 'globals leaked')\n"
    "assert(string.upper('a') == 'A' and string.lower('A') == 'a' and string.len('ab') == 2,"
    " 'string library changed')\n"
    "assert(getmetatable('') == false, 'string metatable reachable')\n"
    "assert(type(ngx.say) == 'function' and type(ngx.req.get_headers) == 'function',"
    " 'ngx changed')\n"
    "local t = ngx.ctx.t\n"
    "assert(t == nil or (getmetatable(t) == nil and t.b == nil), 'ctx carried a metatable')\n"
    "assert(ngx.ctx.fn == nil, 'ctx carried a function')\n"
    "ngx.header['X-Witness'] = 'ok'\n";

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_cases(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/abuse", getenv("DC_SOURCE_DIR") ? getenv("DC_SOURCE_DIR") : ".");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "test_abuse: cannot open %s\n", dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && ncases < MAX_CASES) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".lua") == 0) {
            char *p = malloc(strlen(dir) + n + 2);
            sprintf(p, "%s/%s", dir, de->d_name);
            cases[ncases++] = p;
        }
    }
    closedir(d);
    qsort(cases, (size_t)ncases, sizeof cases[0], cmp);
}

/* The value of "-- KEY: value" in the case's header, or NULL. */
static const char *header(const char *code, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "-- %s: ", key);
    const char *p = strstr(code, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), p);
    return out;
}

typedef struct outcome {
    char results[512]; /* every result of the attack, space separated */
    char msgs[4096];
    double max_ms;
    int witness_runs, witness_ok;
} outcome;

static void record(void *ud, const dc_run_info *i)
{
    outcome *o = ud;
    if (strcmp(i->plugin, "attack") == 0) {
        size_t n = strlen(o->results);
        snprintf(o->results + n, sizeof o->results - n, " %s", dc_result_name(i->result));
        n = strlen(o->msgs);
        snprintf(o->msgs + n, sizeof o->msgs - n, " | %s", i->message ? i->message : "");
        if (i->ms > o->max_ms)
            o->max_ms = i->ms;
    } else {
        o->witness_runs++;
        o->witness_ok += i->result == DC_RESULT_OK;
        if (i->result != DC_RESULT_OK)
            fprintf(stderr, "witness failed: %s\n", i->message ? i->message : "");
    }
}

/* The attack runs in the phase its "-- phase: NAME" line names (access by default), before
 * the witness (access). */
static char *bundle_for(const char *code)
{
    char phase[32];
    const char *attack_phase = header(code, "phase", phase, sizeof phase) ? phase : "access";
    cJSON *root = cJSON_CreateObject();
    cJSON *gen = cJSON_AddObjectToObject(root, "general");
    cJSON_AddStringToObject(gen, "status", "enabled");
    cJSON *dom = cJSON_CreateObject();
    cJSON_AddStringToObject(dom, "name", "*");
    cJSON *plugins = cJSON_AddArrayToObject(dom, "plugins");
    const char *names[] = {"attack", "witness"};
    const char *codes[] = {code, witness};
    for (int i = 0; i < 2; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", names[i]);
        cJSON_AddStringToObject(p, "phase", i == 0 ? attack_phase : "access");
        cJSON_AddStringToObject(p, "code", codes[i]);
        cJSON_AddItemToArray(plugins, p);
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "domains"), dom);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
}

START_TEST(abuse_case)
{
    ck_assert_int_lt(_i, ncases);
    const char *path = cases[_i];
    char *code = tu_read_source_file(path, NULL);
    char expect[256], msg[256], reqs[16];
    ck_assert_msg(header(code, "expect", expect, sizeof expect), "%s: no expect line", path);
    int nreq = header(code, "requests", reqs, sizeof reqs) ? atoi(reqs) : 1;

    char *json = bundle_for(code);
    dc_bundle *b = tu_bundle(json);
    /* The default quotas but time: on a slow or busy machine (ASan, a loaded CI) a case that
     * does its legitimate work could meet 50 ms of wall clock, and the verdict would depend on
     * the machine. Every case that must end ends on instructions or memory (each one that lists
     * quota:time lists quota:instructions too); BOUND_MS still catches one that escapes both. */
    static const char policy_json[] =
        "{\"quota\":{\"instructions\":1000000,\"time_ms\":60000,\"memory_kb\":4096},"
        "\"ceiling\":{\"instructions\":0,\"time_ms\":0,\"memory_kb\":0},"
        "\"shared_dicts\":[{\"name\":\"d\",\"size_kb\":1024}]}";
    dc_policy *policy = NULL;
    char err[256] = "";
    ck_assert_msg(dc_policy_load(policy_json, strlen(policy_json), "abuse", &policy, err,
                                 sizeof err) == DC_OK, "policy: %s", err);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = policy;
    cfg.seed = 42;
    /* ngx.shared.d, for the cases that attack the shared dictionaries */
    size_t shd_size = dc_policy_shdicts_size(policy);
    void *shd_region = calloc(1, shd_size);
    dc_shdicts *shd = NULL;
    ck_assert_msg(dc_shdicts_open(shd_region, shd_size, 1, policy, &shd, err, sizeof err) == DC_OK,
                  "shared dictionaries: %s", err);
    cfg.shdicts = shd;
    dc_engine *e = NULL;
    ck_assert_msg(dc_engine_new(&cfg, &e, err, sizeof err) == DC_OK, "engine: %s", err);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    outcome o = {0};
    dc_engine_on_run(e, record, &o);
    for (int i = 0; i < nreq; i++) {
        dc_sim *s = tu_request(e, "a.com", "/");
        ck_assert_msg(dc_sim_header(s, "X-Witness") != NULL, "%s: witness did not run to the end",
                      path);
        ck_assert_msg(dc_sim_header(s, "X-Escaped") == NULL, "%s: the attack went on after a trip",
                      path);
        dc_sim_free(s);
    }
    /* the attack's results: every one must be expected, and for several requests the first
     * expected one that is not "ok" must come at least once */
    int seen_expected = 0;
    char results[512];
    snprintf(results, sizeof results, "%s", o.results);
    for (char *tok = strtok(results, " "); tok; tok = strtok(NULL, " ")) {
        char want[300];
        snprintf(want, sizeof want, " %s ", expect);
        char got[64];
        snprintf(got, sizeof got, " %s ", tok);
        if (strstr(want, got))
            seen_expected = 1;
        else
            ck_assert_msg(nreq > 1 && strcmp(tok, "ok") == 0, "%s: result %s, expected one of: %s (msgs%s)",
                          path, tok, expect, o.msgs);
    }
    ck_assert_msg(seen_expected, "%s: none of %s in%s", path, expect, o.results);
    if (header(code, "msg", msg, sizeof msg))
        ck_assert_msg(strstr(o.msgs, msg) != NULL, "%s: \"%s\" not in messages%s", path, msg, o.msgs);
    ck_assert_msg(o.max_ms < BOUND_MS, "%s: the attack ran %.0f ms", path, o.max_ms);
    ck_assert_int_eq(o.witness_runs, nreq);
    ck_assert_int_eq(o.witness_ok, nreq);
    dc_engine_free(e);
    dc_shdicts_close(shd);
    free(shd_region);
    dc_policy_free(policy);
    free(json);
    free(code);
}
END_TEST

int main(void)
{
    list_cases();
    if (ncases == 0)
        return 1;
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("abuse");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, abuse_case, 0, ncases);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    for (int i = 0; i < ncases; i++)
        free(cases[i]);
    return rc;
}
