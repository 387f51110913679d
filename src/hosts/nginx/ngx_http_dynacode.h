/* ngx_http_dynacode.h - what the files of ngx_http_dynacode_module share: the configuration
 * structures, the per-worker state (engine, event hub, poller, store) and the per-request
 * context. The module is glue: every decision about plugins belongs to libdynacode.
 */
#ifndef NGX_HTTP_DYNACODE_H
#define NGX_HTTP_DYNACODE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "dynacode.h"


typedef struct {
    ngx_str_t                   api_uri;
    ngx_msec_t                  poll_interval;
    ngx_msec_t                  poll_jitter;
    ngx_flag_t                  poll_at_init;
    ngx_msec_t                  api_timeout;
    ngx_array_t                *api_headers;     /* of ngx_str_t, NUL-terminated */
    size_t                      shm_size;
    ngx_str_t                   policy_file;     /* full path, NUL-terminated */
    ngx_str_t                   offline_file;    /* full path, NUL-terminated */
    ngx_flag_t                  harden;
    ngx_array_t                *verify_keys;     /* of ngx_str_t, full paths, NUL-terminated */
    ngx_flag_t                  allow_downgrade;
    ngx_flag_t                  api_follow_redirects;

    ngx_uint_t                  used;            /* some dynacode directive is in the conf */
    ngx_uint_t                  run_phases;      /* `dynacode on` or dynacode_content somewhere */
    dc_policy                  *policy;          /* loaded at configuration time */
    ngx_shm_zone_t             *shm_zone;        /* its data is the dc_store */
    size_t                      shd_size;        /* the policy's shared dictionaries: the
                                                    zone's last bytes, whole pages (0: none) */
} ngx_http_dynacode_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;          /* dynacode on|off */
    ngx_flag_t                  content;         /* dynacode_content in this location */
} ngx_http_dynacode_loc_conf_t;


/* One per worker process: created in init_process, freed in exit_process. */
typedef struct {
    dc_store                   *store;
    dc_events                  *events;
    dc_engine                  *engine;
    dc_poller                  *poller;
    dc_syncer                  *syncer;
    dc_shdicts                 *shdicts;         /* ngx.shared, at the zone's end (or NULL) */
    ngx_uint_t                  rewrite_postponed;
    ngx_uint_t                  access_postponed;
} ngx_http_dynacode_worker_t;


/* Per request, found again after an internal redirect (see ngx_http_dynacode_get_ctx). */
typedef struct {
    dc_request                 *req;
    ngx_uint_t                  done;            /* bit (1 << dc_phase): that phase ran */
    ngx_chain_t                *out;             /* ngx.say output of the running phase */
    ngx_chain_t               **last_out;
    ngx_chain_t                *free;            /* body filter buffers, reused once sent */
    ngx_chain_t                *busy;
    u_char                     *scratch;         /* a chunk's data gathered in one piece */
    size_t                      host_bytes;      /* r->pool bytes taken for plugins' values */
    ngx_array_t                *owned;           /* those values' buffers still in use */
    size_t                      scratch_size;
    u_char                     *body;            /* a body in pieces gathered once (_body.c) */
    size_t                      body_len;
    unsigned                    out_started:1;   /* ngx.say ran: the header is as good as sent */
    unsigned                    filter_body:1;   /* body_filter plugins may change the body */
    unsigned                    body_ended:1;    /* last_buf sent: later data is dropped */
    unsigned                    eof:1;           /* ngx.eof ran: the answer ends with this
                                                    phase, output is refused */
    unsigned                    last_sent:1;     /* the answer's last buffer went out */
    unsigned                    body_read:1;     /* the request body is in (_body.c) */
    unsigned                    body_waiting:1;  /* a phase waits for the rest of it */
    unsigned                    body_asked:1;    /* a plugin called ngx.req.read_body */
    unsigned                    asleep:1;        /* a plugin call sleeps (ngx.sleep) */
    unsigned                    waking:1;        /* its timer fired: the phase goes on */
    unsigned                    sleep_phase:3;   /* the dc_phase it sleeps in */
    ngx_event_t                 sleep_ev;        /* its timer */
} ngx_http_dynacode_ctx_t;


extern ngx_module_t                  ngx_http_dynacode_module;
extern ngx_http_dynacode_worker_t    ngx_http_dynacode_worker;     /* _process.c */
extern ngx_command_t                 ngx_http_dynacode_commands[]; /* _directives.c */


/* ngx_http_dynacode_module.c */
/* The zone's region (after nginx's slab header) split between the store (first *store_size
 * bytes) and the shared dictionaries (the last shd_size bytes, at *shd). NGX_ERROR when the
 * store would be left too small. */
ngx_int_t ngx_http_dynacode_zone_split(ngx_shm_zone_t *zone, size_t shd_size, u_char **store,
    size_t *store_size, u_char **shd);

/* Frees a policy with the configuration that loaded it (a pool cleanup handler). */
void ngx_http_dynacode_policy_cleanup(void *data);

/* ngx_http_dynacode_process.c */
ngx_int_t ngx_http_dynacode_init_process(ngx_cycle_t *cycle);
void ngx_http_dynacode_exit_process(ngx_cycle_t *cycle);

/* ngx_http_dynacode_log.c: the library's callbacks that write the error log */
void ngx_http_dynacode_log_event(void *ud, const dc_event_info *info);
void ngx_http_dynacode_log_run(void *ud, const dc_run_info *info);
void ngx_http_dynacode_watchdog(void *ud, const dc_watchdog_info *info);

/* ngx_http_dynacode_host.c */
const dc_host *ngx_http_dynacode_host(void);

/* ngx_http_dynacode_values.c */
/* Copies src into dst (cap bytes, cap > 4) with control bytes as \n, \r, \t or \xNN, and
 * with quote '"' and '\' escaped too; cut with "..." when too long. Returns the end. */
u_char *ngx_http_dynacode_log_escape(u_char *dst, size_t cap, const u_char *src, size_t len,
    ngx_uint_t quote);

/* ngx_http_dynacode_phases.c */
ngx_int_t ngx_http_dynacode_init_phases(ngx_conf_t *cf);
ngx_int_t ngx_http_dynacode_content_handler(ngx_http_request_t *r);
ngx_http_dynacode_ctx_t *ngx_http_dynacode_get_ctx(ngx_http_request_t *r,
    ngx_uint_t create);

/* ngx_http_dynacode_status.c */
ngx_int_t ngx_http_dynacode_status_handler(ngx_http_request_t *r);

/* ngx_http_dynacode_body.c */
/* Before the plugins of phase: reads the request body when one of them uses it. NGX_OK (go
 * on), NGX_DONE (the handler runs again once the body is in) or nginx's error status. */
ngx_int_t ngx_http_dynacode_read_body(ngx_http_request_t *r, ngx_http_dynacode_ctx_t *ctx,
    dc_phase phase);


#endif /* NGX_HTTP_DYNACODE_H */
