/* testutil.c - see testutil.h. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

dc_bundle *tu_bundle(const char *json)
{
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *b = NULL;
    char err[512] = "";
    dc_rc rc = dc_bundle_load(json, strlen(json), &lim, NULL, &b, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "bundle refused: %s (%s)", dc_strerror(rc), err);
    return b;
}

dc_engine *tu_engine(dc_bundle *b)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.seed = 42;
    dc_engine *e = NULL;
    char err[256] = "";
    ck_assert_msg(dc_engine_new(&cfg, &e, err, sizeof err) == DC_OK, "engine: %s", err);
    if (b)
        dc_engine_set_bundle(e, b);
    return e;
}

dc_sim *tu_request(dc_engine *e, const char *host, const char *uri)
{
    dc_sim_opts o = {.host = host, .uri = uri ? uri : "/"};
    dc_sim *s = dc_sim_new(&o);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(dc_sim_run(s, e), 0);
    return s;
}

dc_bundle *tu_bundle_plugins(const char *const *pc, const dc_quota *quota)
{
    cJSON *root = cJSON_CreateObject(), *plugins = cJSON_CreateArray();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "general"), "status", "enabled");
    cJSON *dom = cJSON_CreateObject();
    cJSON_AddStringToObject(dom, "name", "*");
    cJSON_AddItemToObject(dom, "plugins", plugins);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "domains"), dom);
    for (int i = 0; pc[2 * i]; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i + 1);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", name);
        cJSON_AddStringToObject(p, "phase", pc[2 * i]);
        cJSON_AddStringToObject(p, "code", pc[2 * i + 1]);
        if (quota) {
            cJSON *q = cJSON_AddObjectToObject(p, "quota");
            if (quota->instructions)
                cJSON_AddNumberToObject(q, "instructions", (double)quota->instructions);
            if (quota->time_ms)
                cJSON_AddNumberToObject(q, "time_ms", quota->time_ms);
            if (quota->memory_kb)
                cJSON_AddNumberToObject(q, "memory_kb", quota->memory_kb);
        }
        cJSON_AddItemToArray(plugins, p);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    ck_assert_ptr_nonnull(json);
    dc_bundle *b = tu_bundle(json);
    free(json);
    return b;
}

static void tu_record(void *ud, const dc_run_info *i)
{
    tu_run *r = ud;
    r->result = i->result;
    snprintf(r->msg, sizeof r->msg, "%s", i->message ? i->message : "");
    size_t n = strlen(r->trace);
    snprintf(r->trace + n, sizeof r->trace - n, "%s:%s:%s%s%s\n", dc_phase_name(i->phase),
             i->plugin, dc_result_name(i->result), i->message ? ":" : "",
             i->message ? i->message : "");
}

void tu_run_plugins(tu_run *r, const tu_run_opts *o, const char *const *pc)
{
    ck_assert_msg(!(o->policy_json && o->quota), "tu_run_plugins: a policy or a quota, not both");
    dc_policy *policy = NULL;
    char err[256] = "";
    if (o->policy_json) {
        ck_assert_msg(dc_policy_load(o->policy_json, strlen(o->policy_json), "test", &policy,
                                     err, sizeof err) == DC_OK, "policy: %s", err);
    } else if (o->quota) { /* 0 means unlimited */
        char pj[256];
        int n = snprintf(pj, sizeof pj, "{\"quota\":{\"instructions\":%llu,\"time_ms\":%u,"
                                        "\"memory_kb\":%u},\"ceiling\":{\"instructions\":0,"
                                        "\"time_ms\":0,\"memory_kb\":0}}",
                         (unsigned long long)o->quota->instructions, o->quota->time_ms,
                         o->quota->memory_kb);
        ck_assert_msg(dc_policy_load(pj, (size_t)n, "test", &policy, err, sizeof err) == DC_OK,
                      "policy: %s", err);
    }
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = o->host_cbs ? o->host_cbs : dc_sim_host();
    cfg.policy = policy;
    if (o->seed)
        cfg.seed = o->seed;
    dc_engine *e = NULL;
    ck_assert_msg(dc_engine_new(&cfg, &e, err, sizeof err) == DC_OK, "engine: %s", err);
    dc_bundle *b = tu_bundle_plugins(pc, o->plugin_quota);
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    r->sim = NULL;
    r->result = (dc_result)-1;
    r->msg[0] = r->trace[0] = r->body[0] = '\0';
    dc_engine_on_run(e, tu_record, r);
    dc_sim_opts so = {.host = o->host ? o->host : "test.test", .uri = o->uri ? o->uri : "/",
                      .headers = o->headers, .nheaders = o->nheaders,
                      .upstream_body = o->upstream,
                      .upstream_body_len = o->upstream ? strlen(o->upstream) : 0,
                      .body = o->body,
                      .body_len = o->body && !o->body_len ? strlen(o->body) : o->body_len};
    for (int i = 0; i < (o->requests > 0 ? o->requests : 1); i++) {
        dc_sim_free(r->sim);
        r->sim = dc_sim_new(&so);
        ck_assert_ptr_nonnull(r->sim);
        ck_assert_int_eq(dc_sim_run(r->sim, e), 0);
    }
    dc_engine_free(e);
    dc_policy_free(policy);
}

const char *tu_run_body(tu_run *r)
{
    size_t len = 0;
    const char *b = dc_sim_body(r->sim, &len);
    ck_assert_uint_lt(len, sizeof r->body);
    memcpy(r->body, b ? b : "", len);
    r->body[len] = '\0';
    return r->body;
}

void tu_trace_record(void *ud, const dc_run_info *i)
{
    tu_trace *t = ud;
    size_t n = strlen(t->text);
    snprintf(t->text + n, sizeof t->text - n, "%s%s:%s", n ? " " : "", i->plugin,
             dc_result_name(i->result));
}

char *tu_read_source_file(const char *relpath, size_t *len)
{
    char path[4096];
    const char *root = getenv("DC_SOURCE_DIR");
    if (relpath[0] == '/' || !root)
        snprintf(path, sizeof path, "%s", relpath);
    else
        snprintf(path, sizeof path, "%s/%s", root, relpath);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

int tu_quick(void)
{
    const char *v = getenv("DC_TEST_QUICK");
    return v && *v && strcmp(v, "0") != 0;
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
