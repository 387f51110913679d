/* bench_match.c - what matching a host costs with 2, 1,002 and 10,002 domains: loading the
 * bundle (its host matcher built), the snapshot a worker decodes, and dc_match_host for one
 * cached host and for a new host every time (a flood of random Host headers), through the
 * matcher and, for comparison, through the domain regexes one by one. Prints figures; asserts
 * nothing. Usage: bench_match [iterations]   (run from the build directory)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sim.h"

static char *bundle_json(int ndom)
{
    dc_buf j = {0};
    dc_buf_printf(&j, "{\"general\":{\"status\":\"enabled\",\"skip_domains\":[\"^admin\\\\.\"]},"
                      "\"plugins\":[{\"id\":1,\"name\":\"p\",\"phase\":\"access\",\"code\":\"\"}],"
                      "\"domains\":[");
    for (int i = 0; i < ndom; i++)
        dc_buf_printf(&j, "%s{\"name\":\"%ssite%d\\\\.example\\\\.com%s\",\"plugins\":[1]}",
                      i ? "," : "", i % 2 ? "^" : "", i, i % 2 ? "$" : "");
    dc_buf_printf(&j, "]}");
    return j.data;
}

/* us per dc_match_host: the same host each time, or a new one each time */
static void match_costs(dc_bundle *b, int n, double *cached, double *fresh)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    dc_engine *e;
    if (dc_engine_new(&cfg, &e, NULL, 0) != DC_OK)
        exit(1);
    dc_engine_set_bundle(e, b);
    char h[96];
    double t0 = dc_now_ms();
    for (int i = 0; i < n; i++) {
        dc_match *m = dc_match_host(e->gen, "site1.example.com", 17);
        if (!m)
            exit(1);
        dc_match_release(m);
    }
    *cached = (dc_now_ms() - t0) * 1000.0 / n;
    t0 = dc_now_ms();
    for (int i = 0; i < n; i++) {
        int l = snprintf(h, sizeof h, "r%x-%d.site%d.example.com", (unsigned)rand(), i, i % 50);
        dc_match *m = dc_match_host(e->gen, h, (size_t)l);
        if (!m)
            exit(1);
        dc_match_release(m);
    }
    *fresh = (dc_now_ms() - t0) * 1000.0 / n;
    dc_engine_free(e);
}

static void bench(int ndom, int n)
{
    char *json = bundle_json(ndom);
    dc_limits lim;
    dc_limits_default(&lim);
    char err[512];
    dc_bundle *b, *lin, *dec;
    double t0 = dc_now_ms();
    if (dc_bundle_load(json, strlen(json), &lim, NULL, &b, err, sizeof err) != DC_OK) {
        fprintf(stderr, "bundle: %s\n", err);
        exit(1);
    }
    double load = dc_now_ms() - t0;
    unsigned char *snap;
    size_t len;
    t0 = dc_now_ms();
    if (dc_snapshot_encode(b, &snap, &len) != DC_OK)
        exit(1);
    double enc = dc_now_ms() - t0;
    t0 = dc_now_ms();
    if (dc_snapshot_decode(snap, len, &dec, err, sizeof err) != DC_OK) {
        fprintf(stderr, "decode: %s\n", err);
        exit(1);
    }
    double decode = dc_now_ms() - t0;
    /* the same bundle without its matcher: the regexes one by one, as before */
    if (dc_bundle_load(json, strlen(json), &lim, NULL, &lin, err, sizeof err) != DC_OK)
        exit(1);
    dc_hostset_free(lin->hosts);
    lin->hosts = NULL;
    for (uint32_t d = 0; d < lin->ndomains; d++) /* a loaded bundle keeps no domain regex */
        if (!lin->domains[d].any &&
            dc_re_compile(lin->domains[d].name, strlen(lin->domains[d].name),
                          &lin->domains[d].re, err, sizeof err) != DC_OK)
            exit(1);
    int nl = ndom > 1000 ? n / 20 : n;
    double c1, f1, c2, f2;
    match_costs(dec, n, &c1, &f1);
    match_costs(lin, nl < 100 ? 100 : nl, &c2, &f2);
    dc_hostset_info info;
    dc_hostset_info_get(b->hosts, &info);
    printf("%5d domains: load %7.1f ms, snapshot %5.0f KB (encode %5.1f ms, decode %5.1f ms); "
           "dc_match_host, cached host %6.2f us, new host %7.2f us (regex by regex: %6.2f, "
           "%8.2f us) [%u names, %u Hyperscan, %u PCRE2]\n",
           ndom, load, len / 1024.0, enc, decode, c1, f1, c2, f2, info.literals, info.hs,
           info.pcre);
    free(snap);
    free(json);
    dc_bundle_unref(b);
    dc_bundle_unref(dec);
    dc_bundle_unref(lin);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100)
        n = 100;
    printf("dynacode host match, %d matches each (regex by regex from 1,002 domains: a "
           "twentieth)\n", n);
    bench(2, n);
    bench(1002, n);
    bench(10002, n);
    return 0;
}
