/* fuzz_hostset.c - libFuzzer target for the host matcher (src/engine/hostset.c): the input is a
 * host and a list of patterns, NUL-separated (host first). Every pattern PCRE2 compiles goes
 * into one matcher, whose answer for each must be PCRE2's unanchored search, on the host and on
 * the host with a newline after it; again after a serialize round trip. Any difference aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hostset.h"

#define MAX_PATTERNS 16
#define MAX_PATTERN 256

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("DC_PCRE2_NO_JIT", "1", 0);
    return 0;
}

static void check(const dc_hostset *s, pcre2_code **re, uint32_t n, const char *host,
                  size_t len)
{
    dc_hostset_scratch *scr = NULL;
    if (dc_hostset_scratch_new(s, &scr) != DC_OK)
        return; /* out of memory under the fuzzer's limit */
    unsigned char hits[MAX_PATTERNS];
    if (dc_hostset_match(s, scr, host, len, hits) < 0)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        int r = re[i] ? dc_re_search(re[i], host, len, NULL) : 0;
        if (r >= 0 && hits[i] != r)
            abort(); /* the matcher differs from PCRE2 */
    }
    dc_hostset_scratch_free(scr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *z = memchr(p, 0, size);
    if (!z)
        return 0;
    size_t hlen = (size_t)(z - p);
    char *host = malloc(hlen + 2);
    if (!host)
        return 0;
    memcpy(host, p, hlen);
    host[hlen] = '\n';
    const char *pats[MAX_PATTERNS];
    size_t lens[MAX_PATTERNS];
    pcre2_code *re[MAX_PATTERNS] = {0};
    uint32_t n = 0;
    for (const char *q = z + 1; q < end && n < MAX_PATTERNS;) {
        const char *e = memchr(q, 0, (size_t)(end - q));
        size_t l = e ? (size_t)(e - q) : (size_t)(end - q);
        char err[128];
        pats[n] = NULL;
        lens[n] = 0;
        /* a pattern PCRE2 refuses is one no bundle holds: its slot stays empty */
        if (l <= MAX_PATTERN && dc_re_compile(q, l, &re[n], err, sizeof err) == DC_OK) {
            pats[n] = q;
            lens[n] = l;
        }
        n++;
        q += l + 1;
    }
    dc_hostset *s = NULL;
    char err[256];
    dc_rc rc = dc_hostset_build(pats, lens, n, &s, err, sizeof err);
    if (rc != DC_OK && rc != DC_ENOMEM)
        abort(); /* every pattern compiled in PCRE2: the build cannot refuse one */
    if (rc == DC_OK) {
        check(s, re, n, host, hlen);
        check(s, re, n, host, hlen + 1);
        unsigned char *bytes = NULL;
        size_t blen = 0;
        if (dc_hostset_serialize(s, &bytes, &blen) == DC_OK) {
            dc_hostset *back = NULL;
            rc = dc_hostset_deserialize(bytes, blen, &back, err, sizeof err);
            if (rc != DC_OK && rc != DC_ENOMEM)
                abort(); /* its own bytes must load */
            if (back) {
                check(back, re, n, host, hlen);
                dc_hostset_free(back);
            }
            /* the same bytes cut short never load */
            if (blen > 1 && dc_hostset_deserialize(bytes, blen / 2, &back, err, sizeof err) ==
                                DC_OK)
                abort();
            free(bytes);
        }
        dc_hostset_free(s);
    }
    for (uint32_t i = 0; i < n; i++)
        pcre2_code_free(re[i]);
    free(host);
    return 0;
}
