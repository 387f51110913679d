/* test_hostset.c - the host matcher (src/engine/hostset.c): every pattern's answer is PCRE2's
 * unanchored search, differentially over tricky patterns and hosts and over random ones, before
 * and after a serialize round trip; corrupt bytes are refused; hostile patterns stay bounded.
 * Prints the build and scan figures for 10,002 domains.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "hostset.h"
#include "testutil.h"

/* Each kind of pattern: plain names (anchored or not), what Hyperscan takes, what it refuses
 * (back references, look-behind, atomic groups), what can match the empty string, options,
 * classes, bytes over 0x7f, escapes that look plain but are not. */
static const char *const patterns[] = {
    "site1\\.example\\.com", "^site1\\.example\\.com$", "^site1\\.example\\.com",
    "example\\.com$", "", "^", "$", "^$", "a*", "(a|)", "x?", "\\.", "^www\\.", "\\.com$",
    "example.com", "^(www\\.)?site\\.example\\.(com|net)$", "[a-z]+\\.test", "[^.]+\\.org$",
    "(?i)EXAMPLE\\.COM", "(?i)^Site1", "a.b", "\\bexample\\b", "\\Bxample", "foo\\d{2,3}bar",
    "\\d+", "\\w+\\.\\w+$", "\\s", "[[:alpha:]]+\\.io", "(a)\\1", "(?<=www\\.)site", "(?=site)s",
    "(?!x)site", "a++b", "(?>a+)b", "\\Aapi\\.", "host\\z", "host\\Z", "a{3}", "a{2,}",
    "(ab){2}", "x{0}y", "[\\x80-\\xff]", "\xc3\xa9t\xc3\xa9", "caf\xe9", "\\x41", "\\Qa.b\\E",
    "\\$", "a\\$b", "\\\\", "a b", "#", "a|b", "^a|b$", ":8080$", ":\\d+$", "^[^:]+$", "\\.$",
    "(?s)a.b", "(?m)^b", "(?m)a$", "(?x) a b c", "\\h", "\\v", "\\N", "a{,3}", "]", "}", "a]",
    "{", "x{", "a\\Kb", "\\R", "(?i)caf\xc9", "^\\$", "\\^a", "a\\.", "^a\\$",
    "a$$", "^^a", "\\e", "\\ ", "\\-", "site1\\.example\\.com", "(?:a|ab)(?:c|bcd)", "a{1000}",
    "(a{30}){30}", "(?|(a)|(b))", "(a)?(?(1)b|c)", "\\p{L}", "[^a]", ".", ".*", ".+", "\\z", "\\Z",
    "\\b", "(?i)^$", "^(a|b)*$", "ab$|^cd", "\\x00", "a\\x{0}b",
};

typedef struct host {
    const char *s;
    size_t len;
} host;

#define H(lit) {lit, sizeof lit - 1}
static const host hosts[] = {
    H(""), H("site1.example.com"), H("SITE1.EXAMPLE.COM"), H("www.site1.example.com"),
    H("site1.example.com:8080"), H("site1.example.com\n"), H("site1.example.com\n\n"),
    H("example.com"), H("www.site.example.net"), H("site.example.com"), H("a"), H("aa"),
    H("aaa"), H("ab"), H("abab"), H("aab"), H("abcd"), H("api.x"), H("a\nb"), H("a\rb"),
    H("host"), H("host\n"), H("xhost\n\n"), H("caf\xe9"), H("CAF\xc9"), H("\xc3\xa9t\xc3\xa9"),
    H("x y"), H("a$b"), H("a.b"), H("a\\b"), H("1234"), H("foo12bar"), H("foo1234bar"),
    H("www.site"), H("#"), H("A"), H("[::1]:443"), H("localhost"), H("\tab"), H("\n"),
    H("a\0b"), H("\0"), H("b"), H("ba"), H("$"), H("^a"), H("a^"), H("a.b.c.io"), H("x.test"),
    H("y.org"), H("y.org\n"), H("cd"), H("abc"), H("{"), H("]"), H("}"), H("a]"), H("x{"),
    H("-"), H(" "), H("\x1b"), H("a$"), H("a$$"), H("a b c"), H("abc"), H("a{,3}"),
    H("\xff\x80"),
};

static int pcre_answer(const pcre2_code *re, const host *h)
{
    return dc_re_search(re, h->s, h->len, NULL);
}

/* Compares every slot of s with PCRE2 on every host; the patterns' PCRE2 codes are in re. */
static void same_as_pcre(const dc_hostset *s, pcre2_code **re, uint32_t n, const host *hs,
                         size_t nh)
{
    dc_hostset_scratch *scr = NULL;
    ck_assert_int_eq(dc_hostset_scratch_new(s, &scr), DC_OK);
    unsigned char *hits = malloc(n + 1);
    ck_assert_ptr_nonnull(hits);
    unsigned char *plain = malloc(n + 1);
    ck_assert_ptr_nonnull(plain);
    for (size_t h = 0; h < nh; h++) {
        int count = dc_hostset_match(s, scr, hs[h].s, hs[h].len, hits);
        ck_assert_int_ge(count, 0);
        /* without a scratch (no Hyperscan part): the names are probed length by length
         * instead of through the automaton, with the same answers */
        if (dc_hostset_match(s, NULL, hs[h].s, hs[h].len, plain) >= 0)
            ck_assert_int_eq(memcmp(plain, hits, n), 0);
        int want = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!re[i]) {
                ck_assert_int_eq(hits[i], 0);
                continue;
            }
            int r = pcre_answer(re[i], &hs[h]);
            if (r < 0)
                continue; /* PCRE2's match limit: no answer to compare */
            size_t plen = 0;
            const char *p = dc_hostset_pattern(s, i, &plen);
            ck_assert_msg(hits[i] == r, "pattern %u /%s/ on host [%.*s] (%zu bytes): matcher %d, "
                          "PCRE2 %d", i, p, (int)hs[h].len, hs[h].s, hs[h].len, hits[i], r);
            want += r;
        }
        ck_assert_int_le(count, (int)n);
        (void)want;
    }
    free(plain);
    free(hits);
    dc_hostset_scratch_free(scr);
}

static pcre2_code **compile_all(const char *const *pats, const size_t *lens, uint32_t n)
{
    pcre2_code **re = calloc(n ? n : 1, sizeof *re);
    ck_assert_ptr_nonnull(re);
    for (uint32_t i = 0; i < n; i++) {
        char err[256];
        if (pats[i])
            ck_assert_msg(dc_re_compile(pats[i], lens[i], &re[i], err, sizeof err) == DC_OK,
                          "pattern %u: %s", i, err);
    }
    return re;
}

static void free_all(pcre2_code **re, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        pcre2_code_free(re[i]);
    free(re);
}

static dc_hostset *round_trip(const dc_hostset *s)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(dc_hostset_serialize(s, &bytes, &len), DC_OK);
    dc_hostset *back = NULL;
    char err[256] = "";
    ck_assert_msg(dc_hostset_deserialize(bytes, len, &back, err, sizeof err) == DC_OK, "%s", err);
    free(bytes);
    dc_hostset_info a, b;
    dc_hostset_info_get(s, &a);
    dc_hostset_info_get(back, &b);
    ck_assert_uint_eq(a.patterns, b.patterns);
    ck_assert_uint_eq(a.literals, b.literals);
    ck_assert_uint_eq(a.hs, b.hs);
    ck_assert_uint_eq(a.pcre, b.pcre);
    return back;
}

/* A long host: 300 bytes, and the same ending in each name above. */
static host *with_long_hosts(size_t *nh)
{
    size_t n0 = sizeof hosts / sizeof *hosts;
    host *v = calloc(n0 + 2, sizeof *v);
    ck_assert_ptr_nonnull(v);
    memcpy(v, hosts, sizeof hosts);
    static char big[400], big2[400];
    memset(big, 'a', 300);
    memcpy(big + 300, ".site1.example.com", 18);
    v[n0] = (host){big, 318};
    memset(big2, 'b', 350);
    memcpy(big2 + 350, "host\n", 5);
    v[n0 + 1] = (host){big2, 355};
    *nh = n0 + 2;
    return v;
}

START_TEST(fixed_patterns_answer_as_pcre2)
{
    uint32_t n = sizeof patterns / sizeof *patterns + 1;
    const char **pats = calloc(n, sizeof *pats);
    size_t *lens = calloc(n, sizeof *lens);
    ck_assert(pats && lens);
    for (uint32_t i = 0; i + 1 < n; i++) {
        pats[i] = patterns[i];
        lens[i] = strlen(patterns[i]);
    }
    /* an empty slot ("*"), never reported; and "\x00" spelled with a real NUL: 4 bytes */
    pats[n - 1] = NULL;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (strcmp(pats[i], "a\\x{0}b") == 0) {
            pats[i] = "a\0b";
            lens[i] = 3;
        }
    pcre2_code **re = compile_all(pats, lens, n);
    dc_hostset *s = NULL;
    char err[256] = "";
    ck_assert_msg(dc_hostset_build(pats, lens, n, &s, err, sizeof err) == DC_OK, "%s", err);
    dc_hostset_info info;
    dc_hostset_info_get(s, &info);
    /* the list reaches every engine */
    ck_assert_uint_eq(info.patterns, n);
    ck_assert_uint_gt(info.literals, 10);
    ck_assert_uint_gt(info.hs, 10);
    ck_assert_uint_gt(info.pcre, 10);
    ck_assert_uint_eq(info.literals + info.hs + info.pcre, n - 1);
    ck_assert_uint_gt(info.db_bytes, 0);
    size_t nh;
    host *hv = with_long_hosts(&nh);
    same_as_pcre(s, re, n, hv, nh);
    dc_hostset *back = round_trip(s);
    same_as_pcre(back, re, n, hv, nh);
    /* each pattern alone gives the same answers as in the crowd */
    for (uint32_t i = 0; i + 1 < n; i++) {
        dc_hostset *one = NULL;
        ck_assert_int_eq(dc_hostset_build(&pats[i], &lens[i], 1, &one, err, sizeof err), DC_OK);
        same_as_pcre(one, &re[i], 1, hv, nh);
        dc_hostset_free(one);
    }
    free(hv);
    dc_hostset_free(back);
    dc_hostset_free(s);
    free_all(re, n);
    free(pats);
    free(lens);
}
END_TEST

/* Random patterns from pieces of the grammars above, and random hosts from their alphabet. */
static const char *const pieces[] = {
    "a", "b", "\\.", ".", "^", "$", "a*", "b+", "(a|b)", "[ab]", "[^a]", "\\d", "\\w",
    "(?i)", "x?", "\\b", "c{2}", "(ab)", "\\1", "-", ":", "\\$", "|", "(?:a.)", "\\n", "\\z",
    "(?=a)", "(?<=b)", "\xe9", "\\s", "c",
};
static const char host_alpha[] = "abcABC.-:1\n $\xe9x";

static uint32_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

START_TEST(random_patterns_answer_as_pcre2)
{
    rnd_state = 12345u + (uint32_t)_i * 7919u;
    int rounds = tu_quick() ? 20 : 200;
    for (int r = 0; r < rounds; r++) {
        uint32_t n = 1 + rnd() % 12;
        char bufs[12][64];
        const char *pats[12];
        size_t lens[12];
        for (uint32_t i = 0; i < n; i++) {
            size_t len = 0;
            uint32_t k = rnd() % 6;
            for (uint32_t j = 0; j < k; j++) {
                const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
                size_t pl = strlen(p);
                if (len + pl >= sizeof bufs[i])
                    break;
                memcpy(bufs[i] + len, p, pl);
                len += pl;
            }
            bufs[i][len] = 0;
            /* a pattern PCRE2 refuses is not one a bundle can hold: replace it */
            pcre2_code *re = NULL;
            char e[256];
            if (dc_re_compile(bufs[i], len, &re, e, sizeof e) != DC_OK) {
                strcpy(bufs[i], "a\\.b");
                len = 4;
            }
            pcre2_code_free(re);
            pats[i] = bufs[i];
            lens[i] = len;
        }
        pcre2_code **re = compile_all(pats, lens, n);
        dc_hostset *s = NULL;
        char err[256];
        ck_assert_msg(dc_hostset_build(pats, lens, n, &s, err, sizeof err) == DC_OK, "%s", err);
        host hv[16];
        char hb[16][24];
        for (int h = 0; h < 16; h++) {
            size_t len = rnd() % 12;
            for (size_t j = 0; j < len; j++)
                hb[h][j] = host_alpha[rnd() % (sizeof host_alpha - 1)];
            hv[h] = (host){hb[h], len};
        }
        same_as_pcre(s, re, n, hv, 16);
        dc_hostset *back = round_trip(s);
        same_as_pcre(back, re, n, hv, 16);
        dc_hostset_free(back);
        dc_hostset_free(s);
        free_all(re, n);
    }
}
END_TEST

static unsigned char *serialized(const char *const *pats, uint32_t n, size_t *len)
{
    size_t lens[16];
    for (uint32_t i = 0; i < n; i++)
        lens[i] = pats[i] ? strlen(pats[i]) : 0;
    dc_hostset *s = NULL;
    char err[256];
    ck_assert_int_eq(dc_hostset_build(pats, lens, n, &s, err, sizeof err), DC_OK);
    unsigned char *bytes = NULL;
    ck_assert_int_eq(dc_hostset_serialize(s, &bytes, len), DC_OK);
    dc_hostset_free(s);
    return bytes;
}

static void refused(const unsigned char *p, size_t len, const char *why)
{
    dc_hostset *s = NULL;
    char err[256] = "";
    ck_assert_int_eq(dc_hostset_deserialize(p, len, &s, err, sizeof err), DC_EBUNDLE);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, why) != NULL, "wanted \"%s\" in: %s", why, err);
}

START_TEST(corrupt_bytes_are_refused)
{
    const char *pats[] = {"site1\\.example\\.com", "^a[0-9]+b$", NULL, "(a)\\1", "x"};
    size_t len = 0;
    unsigned char *b = serialized(pats, 5, &len);
    unsigned char *c = malloc(len);
    ck_assert_ptr_nonnull(c);
    /* the database is the tail: walk the slots to where it starts */
    size_t db = 16;
    for (int i = 0; i < 5; i++)
        db += 5 + (size_t)(b[db + 1] | b[db + 2] << 8 | b[db + 3] << 16 | b[db + 4] << 24);
    db += 8;
    ck_assert_uint_gt(len - db, 100);

    memcpy(c, b, len);
    c[0] = 'X';
    refused(c, len, "not a serialized matcher");
    memcpy(c, b, len);
    c[4] = 9;
    refused(c, len, "version");
    refused(b, 10, "not a serialized matcher");
    /* every cut is refused */
    for (size_t cut = 16; cut < len; cut += cut < db ? 1 : 97) {
        dc_hostset *s = NULL;
        char err[256];
        ck_assert_int_eq(dc_hostset_deserialize(b, cut, &s, err, sizeof err), DC_EBUNDLE);
    }
    /* a slot kind out of range, a plain-name slot that is not one */
    memcpy(c, b, len);
    c[16] = 7;
    refused(c, len, "bad slot");
    memcpy(c, b, len);
    ck_assert_int_eq(c[16], 1); /* slot 0 is a plain name */
    c[16 + 5 + 4] = '(';
    refused(c, len, "not a plain name");
    /* the database: bytes changed in its body, or garbage, do not load */
    memcpy(c, b, len);
    for (size_t i = db + (len - db) / 2; i < db + (len - db) / 2 + 16; i++)
        c[i] ^= 0x5a;
    refused(c, len, "Hyperscan database does not load");
    memcpy(c, b, len);
    for (size_t i = db; i < len; i++)
        c[i] = (unsigned char)(i * 31);
    refused(c, len, "Hyperscan database does not load");
    free(c);
    free(b);

    /* a Hyperscan slot with no database */
    const char *plain[] = {"x"};
    b = serialized(plain, 1, &len);
    b[16] = 2;
    refused(b, len, "database length");
    free(b);
}
END_TEST

/* The engine's match through the bundle's matcher lists the same plugins, in the same order,
 * as a search of the domain regexes one by one: "*" domains between others, a skip list,
 * several domains for one host, patterns of every engine. */
static dc_engine *engine_over(dc_bundle *b)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    dc_engine_set_bundle(e, b);
    ck_assert_ptr_nonnull(e->gen);
    return e;
}

START_TEST(engine_match_is_unchanged)
{
    static const char json[] =
        "{\"general\":{\"status\":\"enabled\",\"skip_domains\":[\"^admin\\\\.\",\"(a)\\\\1x\"]},"
        "\"plugins\":[{\"id\":1,\"name\":\"p1\",\"phase\":\"access\",\"code\":\"\"},"
        "{\"id\":2,\"name\":\"p2\",\"phase\":\"content\",\"code\":\"\"},"
        "{\"id\":3,\"name\":\"p3\",\"phase\":\"access\",\"code\":\"\"}],"
        "\"domains\":[{\"name\":\"example\\\\.com$\",\"plugins\":[1]},"
        "{\"name\":\"*\",\"plugins\":[2]},"
        "{\"name\":\"^www\\\\.\",\"plugins\":[3,1]},"
        "{\"name\":\"^[a-z]+\\\\.example\\\\.(com|net)$\",\"plugins\":[2]},"
        "{\"name\":\"(\\\\w)\\\\1\",\"plugins\":[3]},"
        "{\"name\":\"*\",\"plugins\":[3]},"
        "{\"name\":\"^(www\\\\.)?shop\\\\.example\\\\.com$\",\"plugins\":[1,2,3]},"
        "{\"name\":\"\",\"plugins\":[1]}]}";
    dc_bundle *b = tu_bundle(json), *lin = tu_bundle(json);
    ck_assert_ptr_nonnull(b->hosts);
    dc_hostset_info info;
    dc_hostset_info_get(b->hosts, &info);
    ck_assert_uint_gt(info.literals, 0);
    ck_assert_uint_gt(info.hs, 0);
    ck_assert_uint_gt(info.pcre, 0);
    dc_hostset_free(lin->hosts);
    lin->hosts = NULL;
    /* the reference: each domain's own regex (a loaded bundle keeps none once its matcher is
     * built), searched one by one */
    for (uint32_t d = 0; d < lin->ndomains; d++) {
        char rerr[128];
        dc_domain *dom = &lin->domains[d];
        if (!dom->any)
            ck_assert_int_eq(dc_re_compile(dom->name, strlen(dom->name), &dom->re, rerr,
                                           sizeof rerr), DC_OK);
    }
    dc_engine *e = engine_over(b), *el = engine_over(lin);
    static const char *const hs[] = {"www.shop.example.com", "shop.example.com", "admin.x",
                                     "aax", "x.example.net", "www.example.com", "", "zz",
                                     "www.admin.example.com", "shop.example.com\n"};
    for (int round = 0; round < 2; round++) /* built, then from the cache */
        for (size_t h = 0; h < sizeof hs / sizeof *hs; h++) {
            dc_match *m = dc_match_host(e->gen, hs[h], strlen(hs[h]));
            dc_match *ml = dc_match_host(el->gen, hs[h], strlen(hs[h]));
            ck_assert(m && ml);
            for (int ph = 0; ph < DC_PHASE_COUNT; ph++) {
                ck_assert_msg(m->count[ph] == ml->count[ph], "host %s phase %d: %u vs %u",
                              hs[h], ph, m->count[ph], ml->count[ph]);
                for (uint32_t i = 0; i < m->count[ph]; i++) {
                    ck_assert_uint_eq(m->items[ph][i].domain, ml->items[ph][i].domain);
                    ck_assert_uint_eq(m->items[ph][i].plugin, ml->items[ph][i].plugin);
                }
            }
            dc_match_release(m);
            dc_match_release(ml);
        }
    /* and what they say, for a few: skipped hosts run nothing, "*" runs everywhere else */
    dc_match *m = dc_match_host(e->gen, "admin.x", 7);
    ck_assert_uint_eq(m->count[DC_PHASE_ACCESS] + m->count[DC_PHASE_CONTENT], 0);
    dc_match_release(m);
    m = dc_match_host(e->gen, "zz", 2);
    ck_assert_uint_eq(m->count[DC_PHASE_CONTENT], 1);                 /* "*": p2 */
    ck_assert_uint_eq(m->count[DC_PHASE_ACCESS], 3);                  /* (\w)\1, "*", "" */
    dc_match_release(m);
    dc_engine_free(e);
    dc_engine_free(el);
    dc_bundle_unref(b);
    dc_bundle_unref(lin);
}
END_TEST

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Patterns a bundle may hold that would make a Hyperscan compile long or large are matched by
 * PCRE2 instead, and no more than a bounded number reach Hyperscan at all. */
START_TEST(hostile_patterns_stay_out_of_hyperscan)
{
    enum { N = 2000 };
    char (*buf)[48] = malloc((size_t)N * 48);
    const char **pats = malloc(N * sizeof *pats);
    size_t *lens = malloc(N * sizeof *lens);
    ck_assert(buf && pats && lens);
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], 48, i % 2 ? "a{%d}" : "(b{%d}){30}", 1000 + i);
        pats[i] = buf[i];
        lens[i] = strlen(buf[i]);
    }
    dc_hostset *s = NULL;
    char err[256];
    double t0 = now_ms();
    ck_assert_int_eq(dc_hostset_build(pats, lens, N, &s, err, sizeof err), DC_OK);
    double t1 = now_ms();
    dc_hostset_info info;
    dc_hostset_info_get(s, &info);
    ck_assert_uint_eq(info.hs, 0);
    ck_assert_uint_eq(info.pcre, N);
    dc_hostset_free(s);
    /* many patterns Hyperscan would take: a bounded share goes to it */
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], 48, "^[a-z]*s%d\\.example\\.(com|net)$", i);
        lens[i] = strlen(buf[i]);
    }
    double t2 = now_ms();
    ck_assert_int_eq(dc_hostset_build(pats, lens, N, &s, err, sizeof err), DC_OK);
    double t3 = now_ms();
    fprintf(stderr, "hostset, %d hostile counted repeats: build %.1f ms; %d regexes Hyperscan "
            "takes: build %.1f ms\n", N, t1 - t0, N, t3 - t2);
    dc_hostset_info_get(s, &info);
    ck_assert_uint_gt(info.hs, 0);
    ck_assert_uint_le(info.hs, 64);
    ck_assert_uint_eq(info.hs + info.pcre, N);
    dc_hostset_scratch *scr = NULL;
    ck_assert_int_eq(dc_hostset_scratch_new(s, &scr), DC_OK);
    unsigned char *hits = malloc(N);
    ck_assert_int_eq(dc_hostset_match(s, scr, "wwws1999.example.net", 20, hits), 1);
    ck_assert_int_eq(hits[1999], 1);
    ck_assert_int_eq(dc_hostset_match(s, scr, "s7.example.com", 14, hits), 1);
    ck_assert_int_eq(hits[7], 1);
    /* a scan without the scratch it needs fails rather than guessing */
    ck_assert_int_eq(dc_hostset_match(s, NULL, "s7.example.com", 14, hits), -1);
    free(hits);
    dc_hostset_scratch_free(scr);
    dc_hostset_free(s);
    free(buf);
    free(pats);
    free(lens);
}
END_TEST

/* Figures, no assertion on time: 10,002 domains as a hosting platform writes them. */
static void figures(const char *what, const char *fmt, int extra)
{
    enum { N = 10002 };
    char (*buf)[64] = malloc((size_t)N * 64);
    const char **pats = malloc(N * sizeof *pats);
    size_t *lens = malloc(N * sizeof *lens);
    ck_assert(buf && pats && lens);
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], 64, fmt, i);
        if (extra && i % 100 == 0) /* one in a hundred is more than a name */
            snprintf(buf[i], 64, extra == 1 ? "^(www\\.)?shop%d\\.example\\.(com|net)$"
                                            : "^[a-z0-9-]+\\.shop%d\\.example\\.com$", i);
        pats[i] = buf[i];
        lens[i] = strlen(buf[i]);
    }
    dc_hostset *s = NULL;
    char err[256];
    double t0 = now_ms();
    ck_assert_int_eq(dc_hostset_build(pats, lens, N, &s, err, sizeof err), DC_OK);
    double t1 = now_ms();
    unsigned char *bytes;
    size_t len;
    ck_assert_int_eq(dc_hostset_serialize(s, &bytes, &len), DC_OK);
    dc_hostset *back = NULL;
    double t2 = now_ms();
    ck_assert_int_eq(dc_hostset_deserialize(bytes, len, &back, err, sizeof err), DC_OK);
    double t3 = now_ms();
    dc_hostset_scratch *scr;
    ck_assert_int_eq(dc_hostset_scratch_new(back, &scr), DC_OK);
    unsigned char *hits = malloc(N);
    int rounds = tu_quick() ? 1000 : 100000, found = 0;
    char h[64];
    double t4 = now_ms();
    for (int r = 0; r < rounds; r++) {
        int hl = snprintf(h, sizeof h, "site%d.example.com", (r * 7919) % (2 * N));
        found += dc_hostset_match(back, scr, h, (size_t)hl, hits) > 0;
    }
    double t5 = now_ms();
    dc_hostset_info info;
    dc_hostset_info_get(back, &info);
    fprintf(stderr, "hostset, %d patterns %s: build %.1f ms (%u names, %u Hyperscan, %u PCRE2; "
            "database %zu bytes, name index %zu KB), serialized %zu bytes, deserialize %.1f ms, "
            "scan %.2f us a host (%d of %d found)\n", N, what, t1 - t0, info.literals, info.hs,
            info.pcre, info.db_bytes, info.index_bytes / 1024, len, t3 - t2,
            (t5 - t4) * 1e3 / rounds, found, rounds);
    free(hits);
    free(bytes);
    dc_hostset_scratch_free(scr);
    dc_hostset_free(back);
    dc_hostset_free(s);
    free(buf);
    free(pats);
    free(lens);
}

/* The name index's worst case: names of many lengths, a long host (each window of each length
 * is probed). */
static void long_host_figure(void)
{
    enum { N = 10002 };
    char (*buf)[128] = malloc((size_t)N * 128);
    const char **pats = malloc(N * sizeof *pats);
    size_t *lens = malloc(N * sizeof *lens);
    ck_assert(buf && pats && lens);
    for (int i = 0; i < N; i++) {
        int pad = i % 64;
        memset(buf[i], 'w', (size_t)pad);
        snprintf(buf[i] + pad, 128 - (size_t)pad, "s%d\\.example\\.com", i);
        pats[i] = buf[i];
        lens[i] = strlen(buf[i]);
    }
    dc_hostset *s = NULL;
    char err[256];
    ck_assert_int_eq(dc_hostset_build(pats, lens, N, &s, err, sizeof err), DC_OK);
    dc_hostset_scratch *scr;
    ck_assert_int_eq(dc_hostset_scratch_new(s, &scr), DC_OK);
    unsigned char *hits = malloc(N);
    static char longhost[4096];
    for (size_t i = 0; i < sizeof longhost; i++)
        longhost[i] = "ws.example.com"[i % 14];
    int rounds = tu_quick() ? 10 : 200;
    double t0 = now_ms();
    for (int r = 0; r < rounds; r++)
        (void)dc_hostset_match(s, scr, longhost, sizeof longhost, hits);
    double t1 = now_ms();
    fprintf(stderr, "hostset, %d names of 64 lengths, a %zu-byte host: scan %.1f us\n", N,
            sizeof longhost, (t1 - t0) * 1e3 / rounds);
    free(hits);
    dc_hostset_scratch_free(scr);
    dc_hostset_free(s);
    free(buf);
    free(pats);
    free(lens);
}

START_TEST(print_figures)
{
    long_host_figure();
    figures("like site123\\.example\\.com", "site%d\\.example\\.com", 0);
    figures("like ^site123\\.example\\.com$", "^site%d\\.example\\.com$", 0);
    figures("anchored, 1% alternations", "^site%d\\.example\\.com$", 1);
    figures("anchored, 1% classes", "^site%d\\.example\\.com$", 2);
}
END_TEST

static Suite *hostset_suite(void)
{
    Suite *s = suite_create("hostset");
    TCase *diff = tcase_create("differential");
    tcase_set_timeout(diff, 120);
    tcase_add_test(diff, fixed_patterns_answer_as_pcre2);
    tcase_add_loop_test(diff, random_patterns_answer_as_pcre2, 0, 4);
    suite_add_tcase(s, diff);
    TCase *eng = tcase_create("engine");
    tcase_add_test(eng, engine_match_is_unchanged);
    suite_add_tcase(s, eng);
    TCase *bytes = tcase_create("bytes");
    tcase_add_test(bytes, corrupt_bytes_are_refused);
    suite_add_tcase(s, bytes);
    TCase *bound = tcase_create("bounds");
    tcase_set_timeout(bound, 120);
    tcase_add_test(bound, hostile_patterns_stay_out_of_hyperscan);
    tcase_add_test(bound, print_figures);
    suite_add_tcase(s, bound);
    return s;
}

int main(void)
{
    return tu_run_suite(hostset_suite());
}
