/* sim_priv.h - the inside of the simulated request, shared by the units that handle it:
 * sim.c (its life and the walk through the phases), sim_check.c (what plugins hand over),
 * sim_headers.c (the header lists), sim_vars.c (the variables), sim_host.c (the other host
 * callbacks) and sim_response.c (the response). Nothing outside src/hosts/sim includes it.
 */
#ifndef DC_SIM_PRIV_H
#define DC_SIM_PRIV_H

#include "sim.h"
#include "bundle.h"

typedef struct sim_hdr {
    char *name;
    char *value;
} sim_hdr;

typedef struct sim_hdrs {
    sim_hdr *v;
    size_t n, cap;
} sim_hdrs;

struct dc_sim {
    char *host, *method, *request_uri, *path, *args, *remote_addr;
    sim_hdrs req, resp;
    int status;
    int headers_locked;      /* ngx.header can no longer change */
    int output_started;      /* content wrote something */
    dc_buf body;             /* response body before the body filter */
    dc_buf final_body;       /* after the body filter */
    int upstream_status;
    dc_buf upstream_body;
    dc_buf log;
    FILE *logf;
    char scratch[32];        /* numbers handed out by var_get */
    double start_time;       /* when the request was made (seconds, milliseconds kept) */
    int eof;                 /* ngx.eof ran: the body is over */
    int header_only;         /* HEAD, 304, 204: the header goes out, the body does not */
    int from_upstream;       /* the answer is the upstream's (a static answer) */
    int streamed;            /* content output went out before a sleep: chunked */
    size_t *cuts, ncuts, capcuts;   /* where each output call ended, in body */
    size_t *fcuts, nfcuts, capfcuts; /* where each body filter output ended, in final_body */
    dc_buf vbuf;             /* longer values handed out by var_get */
    dc_buf req_body;         /* the request body (--body) */
    int has_req_body;
    int req_body_read;       /* ngx.req.read_body ran */
};

/* nginx's defaults the simulation stands for: client_body_buffer_size (a body over it is kept
 * in a temporary file, out of reach of ngx.req.get_body_data) and client_max_body_size (a
 * body over it gets 413 before any phase). */
#define SIM_BODY_BUFFER_SIZE 16384
#define SIM_MAX_BODY_SIZE (1024 * 1024)

/* What plugins hand over, checked again as nginx's host does (sim_check.c). */
DC_HIDDEN int dc_sim_is_ctl(unsigned char c);
/* No control byte (tab too when !tab_ok). */
DC_HIDDEN int dc_sim_clean(dc_str v, int tab_ok);
/* A header name (no control byte, ':' or space) and its values (no control byte but tab). */
DC_HIDDEN int dc_sim_header_ok(dc_str name, const dc_str *values, size_t n);
/* A path as nginx may take it. */
DC_HIDDEN int dc_sim_path_ok(dc_str u);

/* The array p of *cap items of size bytes, with room for item n: p itself when it has, else p
 * grown (capacity doubled, first the first time); NULL when out of memory, p then unchanged
 * (sim_headers.c). */
DC_HIDDEN void *dc_sim_room(void *p, size_t *cap, size_t n, size_t size, size_t first);

/* Header lists (sim_headers.c): 0 or -1 (no memory); names compared case-insensitively. */
DC_HIDDEN int dc_sim_hdrs_add(sim_hdrs *h, const char *name, size_t nlen, const char *val,
                              size_t vlen);
/* 1 when the NUL-terminated a is the name b of blen bytes, in any case. */
DC_HIDDEN int dc_sim_name_eq(const char *a, const char *b, size_t blen);
DC_HIDDEN void dc_sim_hdrs_remove(sim_hdrs *h, const char *name, size_t nlen);
/* Replaces every value of name by the n values. */
DC_HIDDEN int dc_sim_hdrs_set(sim_hdrs *h, dc_str name, const dc_str *values, size_t n);
/* The first value of name, or NULL. */
DC_HIDDEN const char *dc_sim_hdrs_get(const sim_hdrs *h, const char *name, size_t nlen);
DC_HIDDEN void dc_sim_hdrs_free(sim_hdrs *h);

/* The variable callbacks of the host (sim_vars.c). */
DC_HIDDEN int dc_sim_var_get(void *hreq, dc_str name, dc_str *val);
DC_HIDDEN int dc_sim_var_set(void *hreq, dc_str name, dc_str val);

/* Building the response (sim_response.c): 0 or -1 (no memory). */
DC_HIDDEN int dc_sim_set_header_str(dc_sim *s, const char *name, const char *value);
/* Content-Length: len. */
DC_HIDDEN int dc_sim_set_length(dc_sim *s, size_t len);
/* The whole body so far is one chunk. */
DC_HIDDEN int dc_sim_one_chunk(dc_sim *s);
/* The response nginx sends for a request ended with status before any output. */
DC_HIDDEN int dc_sim_special_response(dc_sim *s, int status);
/* What nginx's header filters do once the plugins' header filter ran. */
DC_HIDDEN int dc_sim_after_header_filter(dc_sim *s, dc_request *r);

#endif /* DC_SIM_PRIV_H */
