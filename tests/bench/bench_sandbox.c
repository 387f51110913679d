/* bench_sandbox.c - micro-benchmarks of the sandbox against its goals (docs/benchmarks.md):
 * creating and loading a plugin state (target <= 50 us), an idle state's size (target <= 32 KiB),
 * and the cost of a plugin call, empty and with ten API calls, both bare (dc_sbx_run) and through
 * a whole request phase (dc_request_begin/run/end over the simulated host). Prints figures;
 * asserts nothing.
 * Usage: bench_sandbox [iterations]   (run from the build directory)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "engine.h"
#include "sim.h"

static const char empty_code[] = "";
static const char ten_calls_code[] =
    "local h = ngx.var.host\n"
    "local m = ngx.req.get_method()\n"
    "local a = ngx.var.arg_token\n"
    "local t = ngx.time()\n"
    "local s = ngx.status\n"
    "local p = ngx.get_phase()\n"
    "local u = ngx.var.uri\n"
    "local x = ngx.re.find(h, 'local', 'jo')\n"
    "ngx.header['X-A'] = 'a'\n"
    "ngx.header['X-B'] = m\n";

static double per_op_us(double ms, int n)
{
    return ms * 1000.0 / n;
}

static void bench_states(const char *label, const char *code, int n)
{
    unsigned char *bc;
    size_t bclen;
    char err[256];
    if (dc_compile("bench", code, strlen(code), &bc, &bclen, err, sizeof err) != DC_OK) {
        fprintf(stderr, "compile: %s\n", err);
        exit(1);
    }
    dc_quota q;
    dc_quota_default(&q);
    dc_sbx **s = calloc((size_t)n, sizeof *s);
    double t0 = dc_now_ms();
    for (int i = 0; i < n; i++)
        if (dc_sbx_new(bc, bclen, "=bench", &q, NULL, &s[i], err, sizeof err) != DC_OK) {
            fprintf(stderr, "state: %s\n", err);
            exit(1);
        }
    double ms = dc_now_ms() - t0;
    size_t mem = dc_sbx_memory(s[0]);
    printf("state create+load (%s): %8.2f us   idle size: %6.1f KiB   [targets: 50 us, 32 KiB]\n",
           label, per_op_us(ms, n), (double)mem / 1024.0);
    t0 = dc_now_ms();
    for (int i = 0; i < n; i++)
        dc_sbx_free(s[i]);
    printf("state free            (%s): %8.2f us\n", label, per_op_us(dc_now_ms() - t0, n));
    free(s);
    free(bc);
}

static void bench_calls(const char *label, const char *code, int n)
{
    char json[4096];
    char *esc = malloc(strlen(code) * 2 + 1), *o = esc;
    for (const char *p = code; *p; p++) {
        if (*p == '\n') { *o++ = '\\'; *o++ = 'n'; continue; }
        if (*p == '"' || *p == '\\') *o++ = '\\';
        *o++ = *p;
    }
    *o = '\0';
    snprintf(json, sizeof json,
             "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\",\"plugins\":["
             "{\"name\":\"p\",\"phase\":\"access\",\"code\":\"%s\"}]}]}", esc);
    free(esc);
    dc_limits lim;
    dc_limits_default(&lim);
    dc_bundle *b;
    char err[512];
    if (dc_bundle_load(json, strlen(json), &lim, NULL, &b, err, sizeof err) != DC_OK) {
        fprintf(stderr, "bundle: %s\n", err);
        exit(1);
    }
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    dc_engine *e;
    dc_engine_new(&cfg, &e, NULL, 0);
    dc_engine_set_bundle(e, b);
    dc_sim_opts so = {.host = "bench.local", .uri = "/?token=t"};
    dc_sim *sim = dc_sim_new(&so);

    /* bare call: the state and a call record, no request around it */
    char msg[256];
    dc_runnable run = dc_gen_runnable(e->gen, 0);
    dc_sbx *s = dc_engine_state(e, &run, msg, sizeof msg);
    dc_buf ctx = {0}, chunk = {0};
    int eof = 0;
    dc_call call = {.host = dc_sim_host(), .hreq = sim, .phase = DC_PHASE_ACCESS, .plugin = "p",
                    .domain = "*", .ctx = &ctx, .chunk = &chunk, .eof = &eof};
    for (int i = 0; i < 1000; i++)
        dc_sbx_run(s, &call, msg, sizeof msg);
    double t0 = dc_now_ms();
    for (int i = 0; i < n; i++)
        if (dc_sbx_run(s, &call, msg, sizeof msg) != DC_RESULT_OK) {
            fprintf(stderr, "run: %s\n", msg);
            exit(1);
        }
    double bare = per_op_us(dc_now_ms() - t0, n);

    /* a whole phase: begin (host match from the cache), run access, end */
    t0 = dc_now_ms();
    for (int i = 0; i < n; i++) {
        dc_request *r;
        int st;
        dc_request_begin(e, sim, "bench.local", 11, &r);
        dc_request_run(r, DC_PHASE_ACCESS, &st);
        dc_request_end(r);
    }
    double phase = per_op_us(dc_now_ms() - t0, n);
    printf("plugin call (%-9s): %8.2f us bare (dc_sbx_run), %8.2f us as a request phase; "
           "state after the calls: %.1f KiB\n", label, bare, phase, dc_sbx_memory(s) / 1024.0);
    dc_buf_free(&ctx);
    dc_buf_free(&chunk);
    dc_sim_free(sim);
    dc_engine_free(e);
    dc_bundle_unref(b);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100)
        n = 100;
    printf("dynacode sandbox micro-benchmarks, %d iterations each\n", n);
    bench_states("empty", empty_code, n / 10);
    bench_states("10 calls", ten_calls_code, n / 10);
    bench_calls("empty", empty_code, n);
    bench_calls("10 calls", ten_calls_code, n);
    return 0;
}
