/* testutil.c - see testutil.h. */
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
