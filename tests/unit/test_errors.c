/* test_errors.c - the error model: the list of codes (distinct values, a name and a text each)
 * and the first-error buffers of the long-lived handles (engine, poller, store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

static const struct {
    dc_rc rc;
    int value;
    const char *name;
} codes[] = {
#define CODE(code, value, name, text) {code, value, name},
    DC_RC_LIST(CODE)
#undef CODE
};
#define NCODES (sizeof codes / sizeof codes[0])

START_TEST(every_code_has_a_distinct_value_a_name_and_a_text)
{
    ck_assert_int_eq(DC_OK, 0);
    for (size_t i = 0; i < NCODES; i++) {
        ck_assert_int_eq((int)codes[i].rc, codes[i].value);
        ck_assert_str_eq(dc_rc_name(codes[i].rc), codes[i].name);
        ck_assert_msg(codes[i].name[0] != '\0', "code %d has no name", codes[i].value);
        const char *text = dc_strerror(codes[i].rc);
        ck_assert_msg(text[0] != '\0' && strcmp(text, "unknown error") != 0,
                      "code %s has no text", codes[i].name);
        for (size_t k = 0; k < i; k++) {
            ck_assert_msg(codes[k].value != codes[i].value, "%s and %s share the value %d",
                          codes[k].name, codes[i].name, codes[i].value);
            ck_assert_msg(strcmp(codes[k].name, codes[i].name) != 0, "two codes named %s",
                          codes[i].name);
            ck_assert_msg(strcmp(dc_strerror(codes[k].rc), text) != 0, "two codes say \"%s\"",
                          text);
        }
    }
    /* the codes this library added for what used to be reported as something else */
    ck_assert_str_eq(dc_rc_name(DC_EBUSY), "ebusy");
    ck_assert_str_eq(dc_rc_name(DC_ECORRUPT), "ecorrupt");
    ck_assert_str_eq(dc_rc_name(DC_ETHREAD), "ethread");
    ck_assert_str_eq(dc_strerror((dc_rc)999), "unknown error");
    ck_assert_str_eq(dc_rc_name((dc_rc)-1), "unknown");
}
END_TEST

/* A store over a private region; the caller unmaps MIB bytes at *region. */
#define MIB (1u << 20)
static dc_store *store_new(void **region)
{
    *region = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(*region != MAP_FAILED);
    dc_store *s = NULL;
    char err[256] = "";
    ck_assert_msg(dc_store_attach(*region, MIB, 1, &s, err, sizeof err) == DC_OK, "%s", err);
    return s;
}

START_TEST(engine_keeps_its_first_error_until_read)
{
    void *region;
    dc_store *s = store_new(&region);
    dc_engine *e = tu_engine(NULL);
    char msg[256] = "x";
    ck_assert_int_eq(dc_engine_last_error(e, msg, sizeof msg), DC_OK);
    ck_assert_str_eq(msg, "");

    /* two snapshots that are not snapshots: each one refused by dc_engine_sync */
    static const unsigned char junk[] = "not a snapshot";
    ck_assert_int_eq(dc_store_publish(s, junk, sizeof junk, "api", "", 0), DC_OK);
    ck_assert_int_eq(dc_engine_sync(e, s), -1);
    ck_assert_int_eq(dc_store_publish(s, junk, sizeof junk - 1, "api", "", 0), DC_OK);
    ck_assert_int_eq(dc_engine_sync(e, s), -1);

    dc_rc rc = dc_engine_last_error(e, msg, sizeof msg);
    ck_assert_int_ne(rc, DC_OK);
    ck_assert_msg(strncmp(msg, "shared snapshot 1 refused", 25) == 0, "first wins: %s", msg);
    ck_assert_int_eq(dc_engine_last_error(e, msg, sizeof msg), DC_OK); /* read: empty */
    ck_assert_str_eq(msg, "");

    ck_assert_int_eq(dc_store_publish(s, junk, sizeof junk, "api", "", 0), DC_OK);
    ck_assert_int_eq(dc_engine_sync(e, s), -1);
    ck_assert_int_eq(dc_engine_last_error(e, msg, sizeof msg), rc);
    ck_assert_msg(strncmp(msg, "shared snapshot 3 refused", 25) == 0, "%s", msg);
    ck_assert_int_eq(dc_engine_last_error(NULL, msg, sizeof msg), DC_EINVAL);

    dc_engine_free(e);
    dc_store_detach(s);
    munmap(region, MIB);
}
END_TEST

START_TEST(poller_keeps_its_first_error_until_read)
{
    char dir[] = "/tmp/dc_errors_XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/offline.json", dir);
    dc_poller_config cfg;
    dc_poller_config_default(&cfg);
    cfg.fetch.url = "http://127.0.0.1:9/";
    cfg.offline_file = path;
    dc_poller *p = NULL;
    char err[256] = "", msg[256];
    ck_assert_msg(dc_poller_new(&cfg, &p, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_poller_last_error(p, msg, sizeof msg), DC_OK);

    dc_rc missing = dc_poller_load_offline(p); /* no file yet */
    ck_assert_int_ne(missing, DC_OK);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"general\": tru", f);
    fclose(f);
    dc_rc broken = dc_poller_load_offline(p); /* a file that is not JSON */
    ck_assert_int_ne(broken, DC_OK);

    ck_assert_int_eq(dc_poller_last_error(p, msg, sizeof msg), missing);
    ck_assert_msg(strstr(msg, path) != NULL, "the message names the file: %s", msg);
    ck_assert_int_eq(dc_poller_last_error(p, msg, sizeof msg), DC_OK);
    ck_assert_int_eq(dc_poller_load_offline(p), broken);
    ck_assert_int_eq(dc_poller_last_error(p, msg, sizeof msg), broken);

    dc_poller_free(p);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *t = tcase_create("errors");
    tcase_add_test(t, every_code_has_a_distinct_value_a_name_and_a_text);
    tcase_add_test(t, engine_keeps_its_first_error_until_read);
    tcase_add_test(t, poller_keeps_its_first_error_until_read);
    suite_add_tcase(s, t);
    return tu_run_suite(s);
}
