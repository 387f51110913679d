/* test_snapshot.c - dc_snapshot_encode/decode: a round trip rebuilds the same bundle model
 * (regexes that match alike, bytecode, problems, previous versions kept), the decoded bundle
 * runs like the original, and corrupt or truncated bytes are refused cleanly. Prints the time to
 * encode and decode 10,000 plugins. JSON literals are written with ' for " (see q()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "store.h"
#include "testutil.h"

/* qjson with every ' turned into " (Lua strings in it use [[ ]]). Free it. */
static char *q(const char *qjson)
{
    char *s = strdup(qjson);
    ck_assert_ptr_nonnull(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static dc_bundle *load_q(const char *qjson, const dc_bundle *prev)
{
    char *json = q(qjson);
    dc_bundle *b = NULL;
    char err[512] = "";
    dc_rc rc = dc_bundle_load(json, strlen(json), NULL, prev, &b, err, sizeof err);
    free(json);
    ck_assert_msg(rc == DC_OK, "bundle refused: %s", err);
    return b;
}

/* Skip regexes, "*", regex domains, a shared plugin used twice, quota, sampling, skip, and
 * problems of every kind but "kept previous": a syntax error, a bad regex, unknown fields. */
static const char *const BUNDLE =
    "{'general': {'status': 'enabled', 'skip_domains': ['^skip\\\\.example\\\\.com$', 'intern']},"
    " 'domains': ["
    "  {'name': '*', 'plugins': ["
    "    {'name': 'all-hdr', 'phase': 'header_filter',"
    "     'code': 'local h = ngx.header; h[ [[X-All]] ] = [[yes]]'}]},"
    "  {'name': '^api\\\\.example\\\\.com$', 'plugins': ["
    "    {'name': 'deny', 'phase': 'access',"
    "     'code': 'if ngx.var.uri == [[/admin]] then ngx.exit(403) end'},"
    "    {'name': 'hello', 'phase': 'content', 'code': 'ngx.say([[hello from api]])',"
    "     'quota': {'instructions': 50000, 'time_ms': 5, 'memory_kb': 512}, 'sampling': 1},"
    "    {'name': 'never', 'phase': 'rewrite', 'skip': true, 'code': 'ngx.exit(500)'},"
    "    {'name': 'broken', 'phase': 'access', 'code': 'this is not lua'},"
    "    7]},"
    "  {'name': '([bad', 'plugins': []},"
    "  {'name': 'www', 'color': 'red', 'plugins': [7,"
    "    {'name': 'half', 'phase': 'log', 'sampling': 0.5, 'code': 'local x = 1'},"
    "    {'name': 'rw', 'phase': 'rewrite', 'id': 12, 'code': 'ngx.req.set_header([[X-Rw]], [[1]])'}"
    "  ]}"
    " ],"
    " 'plugins': [{'id': 7, 'name': 'shared-hdr', 'phase': 'header_filter',"
    "              'code': 'local h = ngx.header; h[ [[X-Shared]] ] = [[1]]'}]}";

/* ---- model comparison ---- */

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *const hosts[] = {
    "api.example.com", "www.example.com", "skip.example.com", "intern.example.com",
    "other.org", "api.example.com.evil", "", "wwwskip.example.com",
};

static void assert_same_model(const dc_bundle *a, const dc_bundle *b)
{
    ck_assert_int_eq(atomic_load(&b->refs), 1);
    ck_assert_int_eq(a->enabled, b->enabled);
    ck_assert_uint_eq(a->hash, b->hash);
    ck_assert_uint_eq(a->nskip, b->nskip);
    ck_assert_uint_eq(a->nplugins, b->nplugins);
    ck_assert_uint_eq(a->ndomains, b->ndomains);
    ck_assert_uint_eq(a->nproblems, b->nproblems);
    for (uint32_t i = 0; i < a->nplugins; i++) {
        const dc_plugin *x = &a->plugins[i], *y = &b->plugins[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->phase, y->phase);
        ck_assert_int_eq(x->skip, y->skip);
        ck_assert(x->sampling == y->sampling);
        ck_assert_int_eq(x->has_id, y->has_id);
        ck_assert_int_eq(x->id, y->id);
        ck_assert_uint_eq(x->quota.instructions, y->quota.instructions);
        ck_assert_uint_eq(x->quota.time_ms, y->quota.time_ms);
        ck_assert_uint_eq(x->quota.memory_kb, y->quota.memory_kb);
        ck_assert_uint_eq(x->code_hash, y->code_hash);
        ck_assert_int_eq(x->kept_previous, y->kept_previous);
        ck_assert_uint_eq(x->bclen, y->bclen);
        ck_assert_ptr_nonnull(y->bc);
        ck_assert(x->bc != y->bc);
        ck_assert_int_eq(memcmp(x->bc, y->bc, x->bclen), 0);
    }
    for (uint32_t i = 0; i < a->ndomains; i++) {
        const dc_domain *x = &a->domains[i], *y = &b->domains[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->any, y->any);
        /* a decoded bundle matches through its matcher: no domain regex is compiled */
        ck_assert_int_eq(b->hosts || x->re == NULL, y->re == NULL);
        ck_assert_uint_eq(x->nplugins, y->nplugins);
        for (uint32_t k = 0; k < x->nplugins; k++)
            ck_assert_uint_eq(x->plugins[k], y->plugins[k]);
    }
    for (uint32_t i = 0; i < a->nproblems; i++) {
        const dc_problem *x = &a->problems[i], *y = &b->problems[i];
        ck_assert_int_eq(x->kind, y->kind);
        ck_assert(str_eq(x->path, y->path));
        ck_assert(str_eq(x->domain, y->domain));
        ck_assert(str_eq(x->plugin, y->plugin));
        ck_assert(str_eq(x->message, y->message));
    }
    /* every regex matches the same hosts */
    for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++) {
        size_t n = strlen(hosts[h]);
        for (uint32_t i = 0; i < a->nskip; i++)
            ck_assert_int_eq(dc_re_search(a->skip[i], hosts[h], n, NULL),
                             dc_re_search(b->skip[i], hosts[h], n, NULL));
        for (uint32_t i = 0; i < a->ndomains; i++)
            if (a->domains[i].re && !b->hosts)
                ck_assert_int_eq(dc_re_search(a->domains[i].re, hosts[h], n, NULL),
                                 dc_re_search(b->domains[i].re, hosts[h], n, NULL));
        if (!b->hosts)
            continue;
        ck_assert_ptr_nonnull(a->hosts);
        uint32_t np = dc_hostset_count(b->hosts);
        ck_assert_uint_eq(np, a->nskip + a->ndomains);
        unsigned char *hits = malloc(np + 1);
        dc_hostset_scratch *scr = NULL;
        ck_assert_int_eq(dc_hostset_scratch_new(b->hosts, &scr), DC_OK);
        ck_assert_int_ge(dc_hostset_match(b->hosts, scr, hosts[h], n, hits), 0);
        for (uint32_t i = 0; i < a->nskip; i++)
            ck_assert_int_eq(dc_re_search(a->skip[i], hosts[h], n, NULL), hits[i]);
        for (uint32_t i = 0; i < a->ndomains; i++)
            if (a->domains[i].re)
                ck_assert_int_eq(dc_re_search(a->domains[i].re, hosts[h], n, NULL),
                                 hits[a->nskip + i]);
        dc_hostset_scratch_free(scr);
        free(hits);
    }
}

static dc_bundle *round_trip(const dc_bundle *a, size_t *len_out)
{
    unsigned char *snap = NULL;
    size_t len = 0;
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_gt(len, 32);
    ck_assert_int_eq(memcmp(snap, "DCSNAP1", 8), 0);
    dc_bundle *b = NULL;
    char err[256] = "";
    dc_rc rc = dc_snapshot_decode(snap, len, &b, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "decode: %s", err);
    free(snap);
    if (len_out)
        *len_out = len;
    return b;
}

START_TEST(round_trip_preserves_model)
{
    dc_bundle *a = load_q(BUNDLE, NULL);
    /* the fixture covers what it claims to */
    ck_assert_uint_eq(a->nskip, 2);
    ck_assert_uint_eq(a->ndomains, 3);
    ck_assert_uint_eq(a->nplugins, 7);
    ck_assert_uint_ge(a->nproblems, 3);
    dc_bundle *b = round_trip(a, NULL);
    assert_same_model(a, b);
    ck_assert_int_eq(dc_bundle_enabled(b), 1);
    dc_bundle_unref(b);
    dc_bundle_unref(a);
}
END_TEST

START_TEST(round_trip_kept_previous_and_disabled)
{
    dc_bundle *prev = load_q("{'general': {}, 'domains': [{'name': 'a', 'plugins': ["
                             "{'name': 'p', 'phase': 'access', 'code': 'local y = 2'}]}]}",
                             NULL);
    dc_bundle *a = load_q("{'general': {'status': 'off'}, 'domains': [{'name': 'a', 'plugins': ["
                          "{'name': 'p', 'phase': 'access', 'code': 'syntax error here'}]}]}",
                          prev);
    ck_assert_uint_eq(a->nplugins, 1);
    ck_assert_int_eq(a->plugins[0].kept_previous, 1);
    dc_bundle *b = round_trip(a, NULL);
    assert_same_model(a, b);
    ck_assert_int_eq(dc_bundle_enabled(b), 0);
    ck_assert_int_eq(dc_bundle_problem(b, 0)->kind, DC_PROBLEM_KEPT_PREVIOUS);
    dc_bundle_unref(b);
    dc_bundle_unref(a);
    dc_bundle_unref(prev);
}
END_TEST

START_TEST(round_trip_empty_bundle)
{
    dc_bundle *a = load_q("{'general': {}, 'domains': []}", NULL);
    dc_bundle *b = round_trip(a, NULL);
    assert_same_model(a, b);
    dc_bundle_unref(b);
    dc_bundle_unref(a);
}
END_TEST

/* ---- the decoded bundle runs like the original ---- */

static void same_response(dc_engine *e1, dc_engine *e2, const char *host, const char *uri)
{
    dc_sim *s1 = tu_request(e1, host, uri), *s2 = tu_request(e2, host, uri);
    ck_assert_int_eq(dc_sim_status(s1), dc_sim_status(s2));
    const char *names[] = {"X-All", "X-Shared"};
    for (int i = 0; i < 2; i++)
        ck_assert(str_eq(dc_sim_header(s1, names[i]), dc_sim_header(s2, names[i])));
    size_t n1, n2;
    const char *b1 = dc_sim_body(s1, &n1), *b2 = dc_sim_body(s2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(b1, b2, n1), 0);
    dc_sim_free(s1);
    dc_sim_free(s2);
}

START_TEST(decoded_bundle_runs_alike)
{
    dc_bundle *a = load_q(BUNDLE, NULL);
    dc_bundle *b = round_trip(a, NULL);
    dc_engine *e1 = tu_engine(a), *e2 = tu_engine(b);
    /* the fixture's behaviour, checked on the decoded bundle */
    dc_sim *s = tu_request(e2, "api.example.com", "/admin");
    ck_assert_int_eq(dc_sim_status(s), 403);
    dc_sim_free(s);
    s = tu_request(e2, "api.example.com", "/");
    ck_assert_int_eq(dc_sim_status(s), 200);
    ck_assert_str_eq(dc_sim_body(s, NULL), "hello from api\n");
    ck_assert_str_eq(dc_sim_header(s, "X-All"), "yes");
    ck_assert_str_eq(dc_sim_header(s, "X-Shared"), "1");
    dc_sim_free(s);
    s = tu_request(e2, "skip.example.com", "/");
    ck_assert_ptr_null(dc_sim_header(s, "X-All"));
    dc_sim_free(s);
    for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++) {
        if (!hosts[h][0])
            continue;
        same_response(e1, e2, hosts[h], "/");
        same_response(e1, e2, hosts[h], "/admin");
    }
    dc_engine_free(e1);
    dc_engine_free(e2);
    dc_bundle_unref(b);
    dc_bundle_unref(a);
}
END_TEST

/* ---- corruption ---- */

static void must_refuse(const unsigned char *p, size_t len, const char *what, size_t at)
{
    static char dummy;
    dc_bundle *b = (dc_bundle *)&dummy; /* must be reset */
    char err[256] = "";
    dc_rc rc = dc_snapshot_decode(p, len, &b, err, sizeof err);
    ck_assert_msg(rc == DC_EBUNDLE, "%s at %zu: got %s", what, at, dc_strerror(rc));
    ck_assert_ptr_null(b);
    ck_assert_msg(err[0] != '\0', "%s at %zu: no message", what, at);
}

START_TEST(every_flip_and_truncation_refused)
{
    dc_bundle *a = load_q(BUNDLE, NULL);
    unsigned char *snap;
    size_t len;
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    unsigned char *c = malloc(len + 1);
    ck_assert_ptr_nonnull(c);
    static const unsigned char masks[] = {0x01, 0x80, 0xFF};
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(c, snap, len);
            c[i] ^= masks[m];
            must_refuse(c, len, "flip", i);
        }
    }
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes, so that ASan/Valgrind see any read past the end */
        unsigned char *t = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(t);
        memcpy(t, snap, n);
        must_refuse(t, n, "truncation", n);
        free(t);
    }
    memcpy(c, snap, len);
    c[len] = 0;
    must_refuse(c, len + 1, "extra byte", len);
    char err[256] = "";
    dc_bundle *b = NULL;
    memcpy(c, snap, len);
    c[len / 2] ^= 0x10;
    ck_assert_int_eq(dc_snapshot_decode(c, len, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_str_eq(err, "snapshot checksum mismatch");
    ck_assert_int_eq(dc_snapshot_decode(NULL, 0, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_int_eq(dc_snapshot_decode(snap, len, NULL, err, sizeof err), DC_EINVAL);
    free(c);
    free(snap);
    dc_bundle_unref(a);
}
END_TEST

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the length field and the checksum so that only the parser stands in the way. */
static void reseal(unsigned char *p, size_t len)
{
    put_le64(p + 16, len);
    put_le64(p + len - 8, dc_checksum64(p, len - 8));
}

/* Decodes mutated bytes that pass the checksum: refused or accepted, never a crash or a leak. */
static int decode_any(const unsigned char *p, size_t len)
{
    dc_bundle *b = NULL;
    char err[256] = "";
    dc_rc rc = dc_snapshot_decode(p, len, &b, err, sizeof err);
    ck_assert_msg(rc == DC_OK || rc == DC_EBUNDLE, "got %s", dc_strerror(rc));
    if (rc == DC_OK) {
        ck_assert_ptr_nonnull(b);
        /* whatever was accepted is a consistent model */
        for (uint32_t d = 0; d < b->ndomains; d++)
            for (uint32_t k = 0; k < b->domains[d].nplugins; k++)
                ck_assert_uint_lt(b->domains[d].plugins[k], b->nplugins);
        dc_bundle_unref(b);
        return 1;
    }
    ck_assert_ptr_null(b);
    ck_assert(err[0] != '\0');
    return 0;
}

/* The skip list travels as PCRE2's own serialization, which trusts its input: the parser
 * fuzz uses a bundle without one (the checksum guards it in real snapshots). */
static const char *const NOSKIP =
    "{'general': {'status': 'enabled'}, 'domains': ["
    "  {'name': '*', 'plugins': [{'name': 'a', 'phase': 'access', 'code': 'local a = 1'}]},"
    "  {'name': 'b\\\\.c', 'plugins': [7, {'name': 'x', 'phase': 'log', 'code': 'local x = 1',"
    "   'sampling': 0.5, 'quota': {'time_ms': 3}}]}],"
    " 'plugins': [{'id': 7, 'name': 's', 'phase': 'content', 'code': 'ngx.say(1)'}],"
    " 'extra': 1}";

START_TEST(parser_fuzz_behind_the_checksum)
{
    dc_bundle *a = load_q(NOSKIP, NULL);
    ck_assert_uint_ge(a->nproblems, 1);
    unsigned char *snap;
    size_t len;
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    unsigned char *c = malloc(len);
    ck_assert_ptr_nonnull(c);
    static const unsigned char masks[] = {0x01, 0x80, 0xFF};
    unsigned accepted = 0, runs = 0;
    for (size_t i = 24; i < len - 8; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(c, snap, len);
            c[i] ^= masks[m];
            reseal(c, len);
            accepted += (unsigned)decode_any(c, len);
            runs++;
        }
    }
    /* truncated bodies, resealed: every cut point fails cleanly */
    for (size_t n = 32; n < len; n++) {
        unsigned char *t = malloc(n);
        ck_assert_ptr_nonnull(t);
        memcpy(t, snap, n - 8);
        reseal(t, n);
        ck_assert_int_eq(decode_any(t, n), 0);
        free(t);
    }
    /* random multi-byte damage, seeded */
    uint64_t x = 0x12345678u;
    for (int r = 0; r < 3000; r++) {
        memcpy(c, snap, len);
        for (int k = 0; k < 4; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = 24 + (size_t)(x % (len - 32));
            c[at] = (unsigned char)(x >> 32);
        }
        reseal(c, len);
        accepted += (unsigned)decode_any(c, len);
        runs++;
    }
    fprintf(stderr, "snapshot parser fuzz: %u resealed mutations of a %zu-byte snapshot, %u "
                    "accepted (a changed name or number), the rest refused\n",
            runs, len, accepted);
    free(c);
    free(snap);
    dc_bundle_unref(a);
}
END_TEST

START_TEST(header_errors_say_why)
{
    dc_bundle *a = load_q(NOSKIP, NULL);
    unsigned char *snap;
    size_t len;
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    char err[256];
    dc_bundle *b = NULL;
    snap[8] = 4; /* version */
    reseal(snap, len);
    ck_assert_int_eq(dc_snapshot_decode(snap, len, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_msg(strstr(err, "version 4") != NULL, "%s", err);
    snap[8] = 3;
    snap[0] = 'X';
    ck_assert_int_eq(dc_snapshot_decode(snap, len, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_msg(strstr(err, "magic") != NULL, "%s", err);
    snap[0] = 'D';
    ck_assert_int_eq(dc_snapshot_decode(snap, len - 1, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
    /* a count that cannot fit is refused before anything is allocated for it */
    put_le64(snap + 40, 0xFFFFFFFFull | (uint64_t)1 << 32); /* nplugins = 2^32-1, ndomains 1 */
    reseal(snap, len);
    ck_assert_int_eq(dc_snapshot_decode(snap, len, &b, err, sizeof err), DC_EBUNDLE);
    ck_assert_msg(strstr(err, "plugin count") != NULL, "%s", err);
    free(snap);
    dc_bundle_unref(a);
}
END_TEST

/* ---- speed ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A bundle of nplug plugins spread over ndom regex domains, built straight into the model with
 * real bytecode (loading 10,000 plugins would time the compiler, not the snapshot). */
static dc_bundle *big_bundle(uint32_t ndom, uint32_t nplug)
{
    dc_bundle *proto = load_q("{'general': {}, 'domains': [{'name': '*', 'plugins': ["
                              "{'name': 'p', 'phase': 'access', 'code': "
                              "'if ngx.var.uri == [[/blocked]] then ngx.exit(403) end "
                              "ngx.req.set_header([[X-Seen]], [[1]])'}]}]}",
                              NULL);
    const dc_plugin *pp = &proto->plugins[0];
    dc_bundle *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    atomic_init(&b->refs, 1);
    b->enabled = 1;
    b->hash = 42;
    b->plugins = calloc(nplug, sizeof *b->plugins);
    b->domains = calloc(ndom, sizeof *b->domains);
    ck_assert(b->plugins && b->domains);
    b->nplugins = nplug;
    b->ndomains = ndom;
    for (uint32_t i = 0; i < nplug; i++) {
        dc_plugin *p = &b->plugins[i];
        char name[64];
        snprintf(name, sizeof name, "plugin number %u", i);
        p->name = strdup(name);
        p->phase = (dc_phase)(i % DC_PHASE_COUNT);
        p->sampling = 1;
        p->quota.time_ms = 5;
        p->code_hash = pp->code_hash + i;
        p->bc = malloc(pp->bclen);
        ck_assert(p->name && p->bc);
        memcpy(p->bc, pp->bc, pp->bclen);
        p->bclen = pp->bclen;
    }
    for (uint32_t d = 0; d < ndom; d++) {
        dc_domain *dom = &b->domains[d];
        char name[64], err[128];
        snprintf(name, sizeof name, "^site%u\\.example\\.com$", d);
        dom->name = strdup(name);
        ck_assert_int_eq(dc_re_compile(name, strlen(name), &dom->re, err, sizeof err), DC_OK);
        uint32_t from = (uint32_t)((uint64_t)nplug * d / ndom);
        uint32_t to = (uint32_t)((uint64_t)nplug * (d + 1) / ndom);
        dom->plugins = malloc((to - from + 1) * sizeof *dom->plugins);
        ck_assert(dom->name && dom->plugins);
        for (uint32_t k = from; k < to; k++)
            dom->plugins[dom->nplugins++] = k;
    }
    /* the matcher, as dc_bundle_load builds it */
    const char **pats = malloc(ndom * sizeof *pats);
    size_t *lens = malloc(ndom * sizeof *lens);
    ck_assert(pats && lens);
    for (uint32_t d = 0; d < ndom; d++) {
        pats[d] = b->domains[d].name;
        lens[d] = strlen(pats[d]);
    }
    char herr[256];
    ck_assert_int_eq(dc_hostset_build(pats, lens, ndom, &b->hosts, herr, sizeof herr), DC_OK);
    free(pats);
    free(lens);
    dc_bundle_unref(proto);
    return b;
}

static void time_round_trip(uint32_t ndom, uint32_t nplug)
{
    dc_bundle *a = big_bundle(ndom, nplug);
    unsigned char *snap;
    size_t len;
    double t0 = now_ms();
    ck_assert_int_eq(dc_snapshot_encode(a, &snap, &len), DC_OK);
    double t1 = now_ms();
    dc_bundle *b = NULL;
    char err[256] = "";
    ck_assert_msg(dc_snapshot_decode(snap, len, &b, err, sizeof err) == DC_OK, "%s", err);
    double t2 = now_ms();
    uint64_t sum = dc_checksum64(snap, len);
    double t3 = now_ms();
    fprintf(stderr,
            "snapshot of %u plugins in %u domains: %.2f MB, encode %.1f ms, decode %.1f ms "
            "(checksum alone %.2f ms)\n",
            nplug, ndom, (double)len / 1e6, t1 - t0, t2 - t1, t3 - t2);
    (void)sum;
    assert_same_model(a, b);
    dc_bundle_unref(b);
    dc_bundle_unref(a);
    free(snap);
}

START_TEST(ten_thousand_plugins)
{
    time_round_trip(100, 10000);
    time_round_trip(10000, 10000);
}
END_TEST

Suite *snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("round trip");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_preserves_model);
    tcase_add_test(tc, round_trip_kept_previous_and_disabled);
    tcase_add_test(tc, round_trip_empty_bundle);
    tcase_add_test(tc, decoded_bundle_runs_alike);
    suite_add_tcase(s, tc);
    tc = tcase_create("corruption");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_flip_and_truncation_refused);
    tcase_add_test(tc, parser_fuzz_behind_the_checksum);
    tcase_add_test(tc, header_errors_say_why);
    suite_add_tcase(s, tc);
    tc = tcase_create("speed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ten_thousand_plugins);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(snapshot_suite());
}
