/* fuzz_snapshot.c - libFuzzer target for the snapshot decoder that workers run on the bytes in
 * shared memory. The checksum would turn away nearly every mutated input before the decoder
 * proper, so the target first writes the input's true length and checksum into its header and
 * trailer: what is fuzzed is bytes that passed the checksum. A decoded bundle must encode again
 * and decode to the same counts, and its domain regexes must run.
 * The skip count is forced to 0: skip regexes travel as PCRE2's compiled form, which PCRE2
 * itself does not validate on decode (a forged block size reads past the blob, bad code bytes
 * crash the matcher), so they can only be as trustworthy as the checksum; the bundle target's
 * round trip covers them with bytes the encoder wrote. The host matcher's length that follows
 * is forced to 0 for the same reason (a Hyperscan database is as trustworthy as the checksum):
 * the domain regexes are then compiled from their names; fuzz_hostset covers the matcher.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bundle.h"
#include "store.h"

#define TRAILER 8u
#define NSKIP_AT 36u /* header, u64 hash, u32 enabled, then u32 nskip */
#define HOSTS_AT 68u /* after the four other counts and general.version (u32 has_version,
                            i64 version), with no skip list: u64 matcher length */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("DC_PCRE2_NO_JIT", "1", 0);
    return 0;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void use(const dc_bundle *b)
{
    static const char *const hosts[] = {"api.example.com", "", "x"};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    for (uint32_t i = 0; i < b->ndomains; i++)
        for (size_t h = 0; h < sizeof hosts / sizeof *hosts; h++)
            if (b->domains[i].re)
                (void)dc_re_search(b->domains[i].re, hosts[h], strlen(hosts[h]), md);
    pcre2_match_data_free(md);

    unsigned char *snap = NULL;
    size_t len = 0;
    if (dc_snapshot_encode(b, &snap, &len) != DC_OK)
        abort(); /* it was decoded, so it fits the format */
    dc_bundle *back = NULL;
    char err[256];
    if (dc_snapshot_decode(snap, len, &back, err, sizeof err) != DC_OK ||
        back->nplugins != b->nplugins || back->ndomains != b->ndomains ||
        back->nproblems != b->nproblems || back->nskip != b->nskip)
        abort();
    dc_bundle_unref(back);
    free(snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HOSTS_AT + 8 + TRAILER)
        return 0;
    unsigned char *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memset(buf + NSKIP_AT, 0, 4);
    memset(buf + HOSTS_AT, 0, 8);
    put_le64(buf + 16, size);
    put_le64(buf + size - TRAILER, dc_checksum64(buf, size - TRAILER));
    dc_bundle *b = NULL;
    char err[256];
    if (dc_snapshot_decode(buf, size, &b, err, sizeof err) == DC_OK) {
        use(b);
        dc_bundle_unref(b);
    }
    free(buf);
    return 0;
}
