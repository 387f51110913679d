/* testutil.h - helpers shared by the unit tests: bundles from literals or (phase, code) lists,
 * engines over the simulated request, running plugins and tracing their calls, file reading.
 * Each helper fails the running Check test on error.
 */
#ifndef DC_TESTUTIL_H
#define DC_TESTUTIL_H

#include <check.h>

#include "dynacode.h"
#include "sim.h"

/* Loads json as a bundle with default limits; the test fails if that is not DC_OK. */
dc_bundle *tu_bundle(const char *json);
/* An engine over the simulated host with default config, holding b (may be NULL). */
dc_engine *tu_engine(dc_bundle *b);
/* Simulates one request for host and uri ("/" when NULL) on e; free with dc_sim_free. */
dc_sim *tu_request(dc_engine *e, const char *host, const char *uri);

/* Loads a bundle of plugins for every host ("*") from pc: phase, code, phase, code, ..., NULL.
 * They are named p1, p2, ... in that order. quota (NULL: none) is each plugin's own quota
 * request; its zero fields are left out. The test fails if the bundle is refused. */
dc_bundle *tu_bundle_plugins(const char *const *pc, const dc_quota *quota);

/* How tu_run_plugins runs its request; every field may be left zero. */
typedef struct tu_run_opts {
    const char *host;             /* the request's host ("test.test" when NULL) */
    const char *uri;              /* "/" when NULL */
    const char *const *headers;   /* request headers: name, value, name, value, ... */
    size_t nheaders;              /* pairs in headers */
    const char *upstream;         /* the upstream response body (none when NULL) */
    const char *policy_json;      /* the engine's policy (the built-in one when NULL) ... */
    const dc_quota *quota;        /* ... or one that sets this quota, with no ceilings */
    const dc_quota *plugin_quota; /* each plugin's own quota request (tu_bundle_plugins) */
    uint64_t seed;                /* the engine's seed (the config's default when 0) */
    int requests;                 /* requests to run on the same engine (1 when 0) */
    const dc_host *host_cbs;      /* the engine's host callbacks (dc_sim_host() when NULL):
                                     a copy of the simulated host's with some replaced */
    const char *body;             /* the request body (none when NULL) ... */
    size_t body_len;              /* ... of this many bytes (strlen(body) when 0) */
} tu_run_opts;

/* What tu_run_plugins saw. */
typedef struct tu_run {
    dc_sim *sim;                  /* the last request, yours to dc_sim_free */
    dc_result result;             /* the last plugin call's result, (dc_result)-1 if none */
    char msg[2048];               /* its message, "" when none */
    char trace[16384];            /* "phase:plugin:result[:message]\n" per call */
    char body[65536];             /* filled by tu_run_body */
} tu_run;

/* Runs the plugins pc (as tu_bundle_plugins) on a fresh engine for o->requests requests and
 * fills r. The test fails on any error of the set-up. */
void tu_run_plugins(tu_run *r, const tu_run_opts *o, const char *const *pc);
/* The response body of r's last request, NUL-terminated in r->body. */
const char *tu_run_body(tu_run *r);

/* The plugins that ran, "plugin:result" space separated: give dc_engine_on_run
 * tu_trace_record and a zeroed tu_trace. */
typedef struct tu_trace {
    char text[2048];
} tu_trace;
void tu_trace_record(void *ud, const dc_run_info *i);

/* Reads a whole file (path relative to the source tree when not absolute); free() it. */
char *tu_read_source_file(const char *relpath, size_t *len);
/* 1 when DC_TEST_QUICK is set to anything but "0" (scripts/valgrind.sh sets it): the few tests
 * that walk thousands of cases walk a representative part, so a run under memcheck, tens of
 * times slower, stays within minutes. Every assertion still holds on what is walked. */
int tu_quick(void);
/* Runs a suite in fork mode and returns the process exit code. */
int tu_run_suite(Suite *s);

#endif
