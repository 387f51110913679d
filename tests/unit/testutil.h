/* testutil.h - helpers shared by the unit tests: bundles from literals, engines over the
 * simulated request, file reading. Each helper fails the running Check test on error.
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
/* Reads a whole file (path relative to the source tree when not absolute); free() it. */
char *tu_read_source_file(const char *relpath, size_t *len);
/* 1 when DC_TEST_QUICK is set to anything but "0" (scripts/valgrind.sh sets it): the few tests
 * that walk thousands of cases walk a representative part, so a run under memcheck, tens of
 * times slower, stays within minutes. Every assertion still holds on what is walked. */
int tu_quick(void);
/* Runs a suite in fork mode and returns the process exit code. */
int tu_run_suite(Suite *s);

#endif
