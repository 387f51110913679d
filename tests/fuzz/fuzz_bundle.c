/* fuzz_bundle.c - libFuzzer target for the bundle loader: bytes as the JSON text that
 * `dynacode check` and the poller hand to dc_bundle_load (structure, limits, plugins, compile),
 * then what is done with a loaded bundle: its problems read, a snapshot round trip, and a second
 * load under tight limits with the first as the previous version (plugins refused there keep
 * their previous version, unchanged ones reuse its bytecode).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("DC_PCRE2_NO_JIT", "1", 0); /* JIT code is opaque to the sanitizers */
    return 0;
}

/* Every string a problem hands out is readable to its end (ASan checks that). */
static void read_problems(const dc_bundle *b)
{
    size_t sum = 0;
    for (uint32_t i = 0; i < dc_bundle_problem_count(b); i++) {
        const dc_problem *p = dc_bundle_problem(b, i);
        if (!p || !p->path || !p->message)
            abort();
        sum += strlen(p->path) + strlen(p->message);
        sum += p->domain ? strlen(p->domain) : 0;
        sum += p->plugin ? strlen(p->plugin) : 0;
    }
    (void)sum;
}

/* A loaded bundle survives encode and decode with the same counts. */
static void round_trip(const dc_bundle *b)
{
    unsigned char *snap = NULL;
    size_t len = 0;
    if (dc_snapshot_encode(b, &snap, &len) != DC_OK)
        return; /* too large for the format: refused, not a crash */
    dc_bundle *back = NULL;
    char err[256];
    if (dc_snapshot_decode(snap, len, &back, err, sizeof err) != DC_OK)
        abort();
    if (dc_bundle_plugin_count(back) != dc_bundle_plugin_count(b) ||
        dc_bundle_domain_count(back) != dc_bundle_domain_count(b) ||
        dc_bundle_problem_count(back) != dc_bundle_problem_count(b))
        abort();
    dc_bundle_unref(back);
    free(snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_limits lim;
    dc_limits_default(&lim);
    char err[512];
    dc_bundle *b = NULL;
    if (dc_bundle_load((const char *)data, size, &lim, NULL, &b, err, sizeof err) != DC_OK)
        return 0;
    read_problems(b);
    round_trip(b);
    dc_limits tight = {.max_bundle_bytes = size, .max_domains = 3, .max_plugins = 4,
                       .max_code_bytes = 64, .max_name_bytes = 16};
    dc_bundle *again = NULL;
    if (dc_bundle_load((const char *)data, size, &tight, b, &again, err, sizeof err) == DC_OK) {
        read_problems(again);
        dc_bundle_unref(again);
    }
    dc_bundle_unref(b);
    return 0;
}
