/* test_verify.c - signed bundles and the rollback guard: key pairs and signatures (good, wrong
 * key, one byte changed, bad base64, wrong length, two keys for a rotation), the signature's
 * URL, general.version in the bundle model and the snapshot, the version comparison, and the
 * poller with verify keys over file:// URLs (unsigned and tampered bundles refused with the
 * last good one kept, the offline file's signature written and checked, a downgrade refused
 * unless allowed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "verify.h"

static char dir[] = "/tmp/dc-verify-XXXXXX";
static char k1[300], k2[300];
static char bpath[300], burl[320], opath[300]; /* the bundle, its file:// URL, the offline file */

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(k1, sizeof k1, "%s/k1", dir);
    snprintf(k2, sizeof k2, "%s/k2", dir);
    snprintf(bpath, sizeof bpath, "%s/bundle.json", dir);
    snprintf(burl, sizeof burl, "file://%s", bpath);
    snprintf(opath, sizeof opath, "%s/offline.json", dir);
    char err[512] = "";
    ck_assert_msg(dc_sign_keygen(k1, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_msg(dc_sign_keygen(k2, err, sizeof err) == DC_OK, "%s", err);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    strcpy(dir, "/tmp/dc-verify-XXXXXX");
}

/* name.suffix under the test folder (a static buffer per call site is enough here) */
static const char *file(char *buf, size_t len, const char *name, const char *suffix)
{
    snprintf(buf, len, "%s%s", name, suffix);
    return buf;
}

static dc_keyring *ring(const char *a, const char *b)
{
    dc_keyring *k = NULL;
    char err[512] = "", path[320];
    ck_assert_int_eq(dc_keyring_new(&k), DC_OK);
    ck_assert_msg(dc_keyring_add_file(k, file(path, sizeof path, a, ".pub"), err, sizeof err) ==
                  DC_OK, "%s", err);
    if (b)
        ck_assert_msg(dc_keyring_add_file(k, file(path, sizeof path, b, ".pub"), err,
                                          sizeof err) == DC_OK, "%s", err);
    return k;
}

static char *sign(const char *key, const char *data)
{
    char *sig = NULL, err[512] = "", path[320];
    ck_assert_msg(dc_sign_data(file(path, sizeof path, key, ".key"), data, strlen(data), &sig, err,
                               sizeof err) == DC_OK, "%s", err);
    ck_assert_uint_eq(strlen(sig), 89); /* 88 characters of base64 and a newline */
    return sig;
}

static dc_rc verify(const dc_keyring *k, const char *data, const char *sig, char *err,
                    size_t errlen)
{
    return dc_keyring_verify(k, data, strlen(data), sig, strlen(sig), err, errlen);
}

static const char *const B = "{\"general\":{\"status\":\"enabled\"},\"domains\":[]}";

START_TEST(keygen_writes_a_private_key_0600_and_never_overwrites_it)
{
    char path[320], err[512] = "";
    struct stat st;
    ck_assert_int_eq(stat(file(path, sizeof path, k1, ".key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(file(path, sizeof path, k1, ".pub"), &st), 0);
    ck_assert_int_eq(dc_sign_keygen(k1, err, sizeof err), DC_EIO);
    ck_assert_ptr_nonnull(strstr(err, "never overwritten"));
}
END_TEST

START_TEST(good_signature_verifies)
{
    dc_keyring *k = ring(k1, NULL);
    char *sig = sign(k1, B), err[512] = "";
    ck_assert_uint_eq(dc_keyring_count(k), 1);
    ck_assert_msg(verify(k, B, sig, err, sizeof err) == DC_OK, "%s", err);
    free(sig);
    dc_keyring_free(k);
}
END_TEST

START_TEST(wrong_key_does_not_verify)
{
    dc_keyring *k = ring(k1, NULL);
    char *sig = sign(k2, B), err[512] = "";
    ck_assert_int_eq(verify(k, B, sig, err, sizeof err), DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "does not verify"));
    free(sig);
    dc_keyring_free(k);
}
END_TEST

START_TEST(one_byte_changed_does_not_verify)
{
    dc_keyring *k = ring(k1, NULL);
    char *sig = sign(k1, B), err[512] = "";
    char *copy = strdup(B);
    copy[5] ^= 1;
    ck_assert_int_eq(verify(k, copy, sig, err, sizeof err), DC_ESIG);
    /* one bit of the signature changed */
    copy[5] ^= 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(k, copy, sig, err, sizeof err), DC_ESIG);
    free(copy);
    free(sig);
    dc_keyring_free(k);
}
END_TEST

START_TEST(bad_base64_and_wrong_lengths_are_refused_with_a_reason)
{
    dc_keyring *k = ring(k1, NULL);
    char *sig = sign(k1, B), err[512] = "";
    char bad[100];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[3] = '!';
    ck_assert_int_eq(verify(k, B, bad, err, sizeof err), DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "not base64: character 4 is '!'"));
    ck_assert_int_eq(verify(k, B, "", err, sizeof err), DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    ck_assert_int_eq(verify(k, B, "AAAA", err, sizeof err), DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "3 bytes, an Ed25519 signature is 64"));
    ck_assert_int_eq(verify(k, B, "AAA", err, sizeof err), DC_ESIG);
    ck_assert_int_eq(verify(k, B, "A=AA", err, sizeof err), DC_ESIG);
    /* white space around the text is fine (a file ending in a newline) */
    snprintf(bad, sizeof bad, "  %.88s \r\n", sig);
    ck_assert_msg(verify(k, B, bad, err, sizeof err) == DC_OK, "%s", err);
    free(sig);
    dc_keyring_free(k);
}
END_TEST

START_TEST(base64_decodes_padding_strictly)
{
    unsigned char out[8];
    size_t n = 0;
    char err[256];
    ck_assert_int_eq(dc_sig_decode("aGk=", 4, out, sizeof out, &n, err, sizeof err), DC_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(memcmp(out, "hi", 2), 0);
    ck_assert_int_eq(dc_sig_decode("aA==", 4, out, sizeof out, &n, err, sizeof err), DC_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(dc_sig_decode("a===", 4, out, sizeof out, &n, err, sizeof err), DC_ESIG);
    ck_assert_int_eq(dc_sig_decode("aA=a", 4, out, sizeof out, &n, err, sizeof err), DC_ESIG);
    ck_assert_int_eq(dc_sig_decode("aA==aGk=", 8, out, sizeof out, &n, err, sizeof err),
                     DC_ESIG);
}
END_TEST

START_TEST(two_keys_either_one_verifies)
{
    dc_keyring *k = ring(k1, k2);
    char *s1 = sign(k1, B), *s2 = sign(k2, B), err[512] = "";
    ck_assert_msg(verify(k, B, s1, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_msg(verify(k, B, s2, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(verify(k, "{}", s2, err, sizeof err), DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "any of the verify keys"));
    free(s1);
    free(s2);
    dc_keyring_free(k);
}
END_TEST

START_TEST(key_files_that_are_not_ed25519_public_keys_are_refused)
{
    dc_keyring *k = NULL;
    char err[512] = "", path[320];
    ck_assert_int_eq(dc_keyring_new(&k), DC_OK);
    ck_assert_int_eq(dc_keyring_add_file(k, file(path, sizeof path, dir, "/none.pub"), err,
                                         sizeof err), DC_EIO);
    ck_assert_ptr_nonnull(strstr(err, "none.pub"));
    ck_assert_int_eq(dc_keyring_add_file(k, file(path, sizeof path, k1, ".key"), err, sizeof err),
                     DC_ESIG);
    ck_assert_ptr_nonnull(strstr(err, "not a PEM public key"));
    ck_assert_uint_eq(dc_keyring_count(k), 0);
    ck_assert_int_eq(dc_keyring_verify(k, "x", 1, "AAAA", 4, err, sizeof err), DC_EINVAL);
    dc_keyring_free(k);
    char *sig = NULL;
    ck_assert_int_eq(dc_sign_data(file(path, sizeof path, k1, ".pub"), "x", 1, &sig, err,
                                  sizeof err), DC_ESIG);
    ck_assert_ptr_null(sig);
}
END_TEST

START_TEST(signature_url_is_beside_the_bundle)
{
    char *u = dc_sig_url("https://cdn.test/b/bundle.json");
    ck_assert_str_eq(u, "https://cdn.test/b/bundle.json.sig");
    free(u);
    u = dc_sig_url("https://cdn.test/bundle.json?v=3#x");
    ck_assert_str_eq(u, "https://cdn.test/bundle.json.sig?v=3#x");
    free(u);
    u = dc_sig_url("file:///srv/bundle.json");
    ck_assert_str_eq(u, "file:///srv/bundle.json.sig");
    free(u);
    u = dc_sig_path("/var/lib/dc/a?b");
    ck_assert_str_eq(u, "/var/lib/dc/a?b.sig");
    free(u);
}
END_TEST

/* ---- general.version ---- */

static dc_bundle *versioned(const char *version)
{
    char json[256];
    snprintf(json, sizeof json, "{\"general\":{\"status\":\"enabled\"%s%s},\"domains\":[]}",
             version ? ",\"version\":" : "", version ? version : "");
    return tu_bundle(json);
}

START_TEST(version_is_parsed_and_bad_types_are_refused_naming_it)
{
    int64_t v = -1;
    dc_bundle *b = versioned("42");
    ck_assert_int_eq(dc_bundle_version(b, &v), 1);
    ck_assert_int_eq(v, 42);
    dc_bundle_unref(b);
    b = versioned(NULL);
    ck_assert_int_eq(dc_bundle_version(b, &v), 0);
    ck_assert_int_eq(v, 0);
    dc_bundle_unref(b);
    static const char *const bad[] = {"\"3\"", "-1", "1.5", "true", "null", "[1]", "{}",
                                      "1e300", NULL};
    for (int i = 0; bad[i]; i++) {
        char json[256], err[512] = "";
        snprintf(json, sizeof json, "{\"general\":{\"version\":%s},\"domains\":[]}", bad[i]);
        dc_bundle *x = NULL;
        ck_assert_int_eq(dc_bundle_load(json, strlen(json), NULL, NULL, &x, err, sizeof err),
                         DC_EBUNDLE);
        ck_assert_msg(strstr(err, "general.version") != NULL, "%s: %s", bad[i], err);
        ck_assert_ptr_null(x);
    }
}
END_TEST

START_TEST(version_travels_in_the_snapshot)
{
    dc_bundle *a = versioned("9007199254740992"), *b = NULL, *c = NULL;
    unsigned char *snap = NULL;
    size_t len = 0;
    char err[256] = "";
    int64_t v = 0;
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    ck_assert_msg(dc_snapshot_decode(snap, len, &b, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_bundle_version(b, &v), 1);
    ck_assert_int_eq(v, 9007199254740992LL);
    /* the format before general.version (a zone kept across a reload that upgraded the
     * module): the same without the 12 bytes of the version, read as "no version" */
    unsigned char *old = malloc(len - 12);
    ck_assert_ptr_nonnull(old);
    memcpy(old, snap, 56);
    memcpy(old + 56, snap + 68, len - 68);
    size_t olen = len - 12;
    old[8] = 2;
    for (int i = 0; i < 8; i++)
        old[16 + i] = (unsigned char)((uint64_t)olen >> (8 * i));
    uint64_t sum = dc_checksum64(old, olen - 8);
    for (int i = 0; i < 8; i++)
        old[olen - 8 + i] = (unsigned char)(sum >> (8 * i));
    dc_bundle *o = NULL;
    ck_assert_msg(dc_snapshot_decode(old, olen, &o, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_bundle_version(o, &v), 0);
    ck_assert_uint_eq(dc_bundle_domain_count(o), 0);
    dc_bundle_unref(o);
    free(old);
    free(snap);
    dc_bundle *none = versioned(NULL);
    ck_assert_int_eq(dc_snapshot_encode(none, &snap, &len), DC_OK);
    ck_assert_msg(dc_snapshot_decode(snap, len, &c, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_bundle_version(c, &v), 0);
    free(snap);
    dc_bundle_unref(a);
    dc_bundle_unref(b);
    dc_bundle_unref(c);
    dc_bundle_unref(none);
}
END_TEST

START_TEST(version_compare_refuses_lower_and_absent_after_a_version)
{
    dc_bundle *v5 = versioned("5"), *v3 = versioned("3"), *v7 = versioned("7"),
              *none = versioned(NULL), *zero = versioned("0");
    char msg[512] = "";
    ck_assert_int_eq(dc_version_refused(NULL, v3, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(dc_version_refused(v5, v7, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(dc_version_refused(v5, v5, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(dc_version_refused(v5, v3, 0, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "general.version 3 is lower than the version in force, 5"));
    ck_assert_int_eq(dc_version_refused(v5, v3, 1, msg, sizeof msg), 0);
    /* absent counts as 0: a downgrade after a version, nothing before one */
    ck_assert_int_eq(dc_version_refused(v5, none, 0, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "no general.version, which counts as 0"));
    ck_assert_int_eq(dc_version_refused(none, zero, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(dc_version_refused(zero, none, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(dc_version_refused(none, v3, 0, msg, sizeof msg), 0);
    dc_bundle_unref(v5);
    dc_bundle_unref(v3);
    dc_bundle_unref(v7);
    dc_bundle_unref(none);
    dc_bundle_unref(zero);
}
END_TEST

/* ---- the poller with verify keys (file:// URLs) ---- */

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The bundle (plugin code CODE, general.version VERSION) and, signed by key (NULL: none), its
 * .sig. */
static void publish(const char *code, int version, const char *key)
{
    char json[512], sp[320];
    snprintf(json, sizeof json, "{\"general\":{\"status\":\"enabled\",\"version\":%d},"
             "\"domains\":[{\"name\":\"*\",\"plugins\":[{\"name\":\"p\",\"phase\":\"content\","
             "\"code\":\"%s\"}]}]}", version, code);
    put(bpath, json);
    snprintf(sp, sizeof sp, "%s.sig", bpath);
    unlink(sp);
    if (key) {
        char *sig = sign(key, json);
        put(sp, sig);
        free(sig);
    }
}

static dc_poller *poller_in(dc_store *store, int32_t pid, int allow_downgrade, const char *a,
                            const char *b)
{
    static char pa[320], pb[320];
    const char *keys[2] = {file(pa, sizeof pa, a, ".pub"), b ? file(pb, sizeof pb, b, ".pub")
                                                             : NULL};
    dc_poller_config cfg;
    dc_poller_config_default(&cfg);
    cfg.fetch.url = burl;
    cfg.offline_file = opath;
    cfg.verify_keys = keys;
    cfg.nverify_keys = b ? 2 : 1;
    cfg.allow_downgrade = allow_downgrade;
    cfg.store = store;
    cfg.pid = pid;
    dc_poller *p = NULL;
    char err[512] = "";
    ck_assert_msg(dc_poller_new(&cfg, &p, err, sizeof err) == DC_OK, "%s", err);
    return p;
}

static dc_poller *poller(int allow_downgrade, const char *a, const char *b)
{
    return poller_in(NULL, 0, allow_downgrade, a, b);
}

/* general.version of the poller's bundle in force (which must exist). */
static int64_t in_force_version(dc_poller *p)
{
    int64_t v = -1;
    dc_bundle *b = dc_poller_bundle(p);
    ck_assert_ptr_nonnull(b);
    dc_bundle_version(b, &v);
    return v;
}

static void expect_error(dc_poller *p, const char *text)
{
    char msg[1024] = "";
    ck_assert_int_ne(dc_poller_last_error(p, msg, sizeof msg), DC_OK);
    ck_assert_msg(strstr(msg, text) != NULL, "\"%s\" not in \"%s\"", text, msg);
}

START_TEST(poller_refuses_unsigned_and_tampered_bundles_and_keeps_the_last_good)
{
    publish("ngx.say(1)", 1, NULL);
    dc_poller *p = poller(0, k1, NULL);
    ck_assert_int_eq(dc_poller_poll(p), DC_ESIG);
    ck_assert_ptr_null(dc_poller_bundle(p));
    expect_error(p, "no signature");

    publish("ngx.say(1)", 1, k1);
    ck_assert_int_eq(dc_poller_poll(p), DC_OK);
    ck_assert_int_eq(in_force_version(p), 1);
    dc_bundle *good = dc_poller_bundle(p);

    /* the offline file and its signature, written beside it */
    char sp[320], osp[320];
    size_t n1 = 0, n2 = 0;
    snprintf(sp, sizeof sp, "%s.sig", bpath);
    snprintf(osp, sizeof osp, "%s.sig", opath);
    char *a = tu_read_source_file(sp, &n1), *b = tu_read_source_file(osp, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(a, b, n1), 0);
    free(a);
    free(b);

    /* signed by a key the poller does not trust */
    publish("ngx.say(2)", 2, k2);
    ck_assert_int_eq(dc_poller_poll(p), DC_ESIG);
    ck_assert_ptr_eq(dc_poller_bundle(p), good);
    expect_error(p, "does not verify");

    /* signed, then one byte changed */
    publish("ngx.say(2)", 2, k1);
    char *text = tu_read_source_file(bpath, &n1);
    strstr(text, "say(2)")[4] = '3';
    put(bpath, text);
    free(text);
    ck_assert_int_eq(dc_poller_poll(p), DC_ESIG);
    ck_assert_ptr_eq(dc_poller_bundle(p), good);
    expect_error(p, "does not verify");

    /* a .sig that is not base64 */
    put(sp, "not base64!\n");
    ck_assert_int_eq(dc_poller_poll(p), DC_ESIG);
    expect_error(p, "not base64");
    ck_assert_ptr_eq(dc_poller_bundle(p), good);
    dc_poller_free(p);
}
END_TEST

START_TEST(poller_rotation_and_rollback_guard)
{
    publish("ngx.say(5)", 5, k1);
    dc_poller *p = poller(0, k1, k2);
    ck_assert_int_eq(dc_poller_poll(p), DC_OK);
    publish("ngx.say(6)", 6, k2);
    ck_assert_int_eq(dc_poller_poll(p), DC_OK);
    ck_assert_int_eq(in_force_version(p), 6);
    /* an older bundle, well signed: refused */
    publish("ngx.say(5)", 5, k1);
    ck_assert_int_eq(dc_poller_poll(p), DC_EBUNDLE);
    expect_error(p, "general.version 5 is lower than the version in force, 6");
    ck_assert_int_eq(in_force_version(p), 6);
    dc_poller_free(p);
    /* a fresh poller starts from the offline file (version 6) and refuses 5 the same */
    p = poller(0, k1, k2);
    ck_assert_int_eq(dc_poller_load_offline(p), DC_OK);
    ck_assert_int_eq(in_force_version(p), 6);
    ck_assert_int_eq(dc_poller_poll(p), DC_EBUNDLE);
    ck_assert_int_eq(in_force_version(p), 6);
    dc_poller_free(p);
    /* unless downgrades are allowed */
    p = poller(1, k1, k2);
    ck_assert_int_eq(dc_poller_load_offline(p), DC_OK);
    ck_assert_int_eq(dc_poller_poll(p), DC_OK);
    ck_assert_int_eq(in_force_version(p), 5);
    dc_poller_free(p);
}
END_TEST

START_TEST(offline_file_with_a_bad_signature_is_not_loaded)
{
    publish("ngx.say(1)", 1, k1);
    dc_poller *p = poller(0, k1, NULL);
    ck_assert_int_eq(dc_poller_poll(p), DC_OK);
    dc_poller_free(p);
    char osp[320];
    snprintf(osp, sizeof osp, "%s.sig", opath);
    char *other = sign(k1, "something else");
    put(osp, other);
    free(other);
    p = poller(0, k1, NULL);
    ck_assert_int_eq(dc_poller_load_offline(p), DC_ESIG);
    ck_assert_ptr_null(dc_poller_bundle(p));
    expect_error(p, "offline.json.sig: the signature does not verify");
    dc_poller_free(p);
    unlink(osp);
    p = poller(0, k1, NULL);
    ck_assert_int_eq(dc_poller_load_offline(p), DC_ESIG);
    expect_error(p, "cannot open");
    dc_poller_free(p);
}
END_TEST

START_TEST(a_bundle_from_the_store_is_verified_once_and_not_published_again)
{
    size_t size = 1u << 20;
    void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(region, MAP_FAILED);
    dc_store *store = NULL;
    char err[256] = "", osp[320];
    ck_assert_msg(dc_store_attach(region, size, 1, &store, err, sizeof err) == DC_OK, "%s", err);
    publish("ngx.say(1)", 1, k1);
    dc_poller *a = poller_in(store, 1001, 0, k1, NULL);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    uint64_t gen = dc_store_generation(store);
    ck_assert_uint_ne(gen, 0);
    dc_poller_free(a); /* its lease holder id is no live process: the next poller takes it */
    snprintf(osp, sizeof osp, "%s.sig", opath);
    ck_assert_int_eq(unlink(osp), 0);
    /* the next process starts from the store's bundle: it checks the signature once, writes
     * the offline file's signature it found missing, and publishes nothing new */
    dc_poller *b = poller_in(store, 1002, 0, k1, NULL);
    ck_assert_int_eq(dc_poller_poll(b), DC_OK);
    ck_assert_uint_eq(dc_store_generation(store), gen);
    ck_assert_int_eq(access(osp, R_OK), 0);
    /* the same bundle whose signature no longer verifies is refused; the bundle stays */
    dc_poller_free(b);
    char *other = sign(k2, "x");
    char sp[320];
    snprintf(sp, sizeof sp, "%s.sig", bpath);
    put(sp, other);
    free(other);
    b = poller_in(store, 1003, 0, k1, NULL);
    ck_assert_int_eq(dc_poller_poll(b), DC_ESIG);
    ck_assert_uint_eq(dc_store_generation(store), gen);
    ck_assert_int_eq(in_force_version(b), 1);
    dc_poller_free(b);
    dc_store_detach(store);
    munmap(region, size);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("verify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, keygen_writes_a_private_key_0600_and_never_overwrites_it);
    tcase_add_test(tc, good_signature_verifies);
    tcase_add_test(tc, wrong_key_does_not_verify);
    tcase_add_test(tc, one_byte_changed_does_not_verify);
    tcase_add_test(tc, bad_base64_and_wrong_lengths_are_refused_with_a_reason);
    tcase_add_test(tc, base64_decodes_padding_strictly);
    tcase_add_test(tc, two_keys_either_one_verifies);
    tcase_add_test(tc, key_files_that_are_not_ed25519_public_keys_are_refused);
    tcase_add_test(tc, signature_url_is_beside_the_bundle);
    tcase_add_test(tc, version_is_parsed_and_bad_types_are_refused_naming_it);
    tcase_add_test(tc, version_travels_in_the_snapshot);
    tcase_add_test(tc, version_compare_refuses_lower_and_absent_after_a_version);
    tcase_add_test(tc, poller_refuses_unsigned_and_tampered_bundles_and_keeps_the_last_good);
    tcase_add_test(tc, poller_rotation_and_rollback_guard);
    tcase_add_test(tc, offline_file_with_a_bad_signature_is_not_loaded);
    tcase_add_test(tc, a_bundle_from_the_store_is_verified_once_and_not_published_again);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
