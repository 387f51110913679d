/* sim.h - a simulated HTTP request: a dc_host over an in-memory request and response, and the
 * walk of one request through every phase as nginx would do it. Used by `dynacode run` and by
 * the tests, so that they exercise the same library code as the nginx module.
 */
#ifndef DC_SIM_H
#define DC_SIM_H

#include <stdio.h>

#include "dynacode.h"

typedef struct dc_sim dc_sim;

typedef struct dc_sim_opts {
    const char *host;            /* Host header / $host (required) */
    const char *method;          /* default "GET" */
    const char *uri;             /* path with optional ?query, default "/" */
    const char *const *headers;  /* "Name: value" strings */
    size_t nheaders;
    const char *remote_addr;     /* default "127.0.0.1" */
    int upstream_status;         /* response when no content plugin runs, default 200 */
    const char *upstream_body;   /* may be NULL */
    size_t upstream_body_len;
    const char *body;            /* the request body; NULL: none */
    size_t body_len;
} dc_sim_opts;

dc_sim *dc_sim_new(const dc_sim_opts *opts); /* NULL on bad options or no memory */
void dc_sim_free(dc_sim *s);

/* The callbacks; the hreq they expect is a dc_sim *. */
const dc_host *dc_sim_host(void);

/* Takes the request through rewrite, access, content, header_filter, body_filter and log on
 * engine e. Returns 0, or -1 when the request could not be simulated (no memory). */
int dc_sim_run(dc_sim *s, dc_engine *e);

/* The response. */
int dc_sim_status(const dc_sim *s);
const char *dc_sim_header(const dc_sim *s, const char *name); /* first value, or NULL */
size_t dc_sim_header_count(const dc_sim *s, const char *name);
const char *dc_sim_body(const dc_sim *s, size_t *len); /* NUL-terminated too */
/* How many non-empty chunks the body filter let out (each one a chunk when chunked). */
size_t dc_sim_body_chunks(const dc_sim *s);
/* 1 when the response goes out chunked (a body of unknown length). */
int dc_sim_chunked(const dc_sim *s);
/* Status line, headers, blank line, body, as HTTP/1.1 with CRLF line ends. */
int dc_sim_write_response(const dc_sim *s, FILE *out);
/* Everything plugins logged, one line per ngx.log call: "LEVEL message\n". */
const char *dc_sim_log(const dc_sim *s);
/* When set, log lines are also written there as they come (the command sets stderr). */
void dc_sim_set_log_stream(dc_sim *s, FILE *f);

#endif /* DC_SIM_H */
