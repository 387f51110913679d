/* ngx_http_dynacode_process.c - each worker's compiler spawner, engine, event hub and poller:
 * made in init_process (with the first start from the offline file and the timer that stops
 * the poller of a worker shutting down), freed in exit_process.
 */
#include <pthread.h>
#include <signal.h>

#include "ngx_http_dynacode.h"


/* How long a worker that found the store empty waits for the sibling that holds the lease to
 * publish the offline file, at start only: a first start serves the last good bundle from
 * its first request. */
#define NGX_HTTP_DYNACODE_OFFLINE_WAIT_MS  3000
/* The watchdog ends a worker whose plugin call is stuck in C this long past its time quota. */
#define NGX_HTTP_DYNACODE_WATCHDOG_GRACE_MS  2000


ngx_http_dynacode_worker_t  ngx_http_dynacode_worker;

/* Looks once a second whether the worker is shutting down (see the handler); its data is a
 * connection with no socket, as nginx's cache manager does, for the event debug log. */
static ngx_event_t       ngx_http_dynacode_exiting_ev;
static ngx_connection_t  ngx_http_dynacode_dumb;


static ngx_int_t
ngx_http_dynacode_new_poller(ngx_cycle_t *cycle, ngx_http_dynacode_main_conf_t *mcf)
{
    char                           err[512];
    dc_rc                          rc;
    ngx_str_t                     *h;
    ngx_uint_t                     i;
    dc_poller_config               pc;
    const char                   **headers, **keys;
    ngx_http_dynacode_worker_t    *w = &ngx_http_dynacode_worker;

    dc_poller_config_default(&pc);

    headers = NULL;
    if (mcf->api_headers && mcf->api_headers->nelts) {
        headers = ngx_palloc(cycle->pool, mcf->api_headers->nelts * sizeof(char *));
        if (headers == NULL) {
            return NGX_ERROR;
        }

        h = mcf->api_headers->elts;
        for (i = 0; i < mcf->api_headers->nelts; i++) {
            headers[i] = (const char *) h[i].data;
        }

        pc.fetch.headers = headers;
        pc.fetch.nheaders = mcf->api_headers->nelts;
    }

    pc.fetch.url = (const char *) mcf->api_uri.data;
    pc.fetch.timeout_ms = (uint32_t) mcf->api_timeout;
    pc.fetch.follow_redirects = mcf->api_follow_redirects ? 1 : 0;
    pc.interval_s = mcf->poll_interval / 1000.0;
    pc.jitter_s = mcf->poll_jitter / 1000.0;
    pc.poll_at_start = mcf->poll_at_init ? 1 : 0;
    pc.policy = mcf->policy;
    pc.events = w->events;
    pc.store = w->store;
    pc.offline_file = mcf->offline_file.len ? (const char *) mcf->offline_file.data
                                            : NULL;
    pc.pid = (int32_t) ngx_pid;
    pc.allow_downgrade = mcf->allow_downgrade ? 1 : 0;

    if (mcf->verify_keys && mcf->verify_keys->nelts) {
        keys = ngx_palloc(cycle->pool, mcf->verify_keys->nelts * sizeof(char *));
        if (keys == NULL) {
            return NGX_ERROR;
        }

        h = mcf->verify_keys->elts;
        for (i = 0; i < mcf->verify_keys->nelts; i++) {
            keys[i] = (const char *) h[i].data;
        }

        pc.verify_keys = keys;
        pc.nverify_keys = mcf->verify_keys->nelts;
    }
    pc.store_size_name = "dynacode_shm_size";
    pc.store_size_value = mcf->shm_size;

    err[0] = '\0';
    rc = dc_poller_new(&pc, &w->poller, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "dynacode: cannot create the poller for \"%V\": %s",
                      &mcf->api_uri, err[0] ? err : dc_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* A first start: the last good bundle (the offline file) must be in force from the first
 * request; the library decides which worker loads it and how the others wait. */
static void
ngx_http_dynacode_offline_start(ngx_cycle_t *cycle, ngx_http_dynacode_main_conf_t *mcf)
{
    dc_rc                        rc;
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    if (w->poller == NULL || mcf->offline_file.len == 0) {
        return;
    }

    rc = dc_poller_start_offline(w->poller, NGX_HTTP_DYNACODE_OFFLINE_WAIT_MS);

    if (rc == DC_EBUSY) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "dynacode: the offline file was not published within %d ms; "
                      "this worker starts without plugins until the next bundle",
                      NGX_HTTP_DYNACODE_OFFLINE_WAIT_MS);

    } else if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "dynacode: offline file \"%V\" not loaded: %s",
                      &mcf->offline_file, dc_strerror(rc));
    }
}


/* A worker shutting down gracefully (reload, quit) may serve its last requests for long: its
 * poller, with the old configuration, stops at once and gives the lease to the new workers. */
static void
ngx_http_dynacode_exiting(ngx_event_t *ev)
{
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, 1000);
        return;
    }

    if (w->poller) {
        dc_syncer_share(w->syncer, NULL);
        dc_poller_free(w->poller);   /* stops its thread, gives the lease back */
        w->poller = NULL;
    }
}


ngx_int_t
ngx_http_dynacode_init_process(ngx_cycle_t *cycle)
{
    char                            err[512];
    dc_rc                           rc;
    sigset_t                        all, old;
    ngx_int_t                       ret;
    dc_engine_config                ec;
    ngx_http_dynacode_worker_t     *w = &ngx_http_dynacode_worker;
    ngx_http_dynacode_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_dynacode_module);
    if (mcf == NULL || !mcf->used || mcf->shm_zone == NULL) {
        return NGX_OK;
    }

    ngx_memzero(w, sizeof(ngx_http_dynacode_worker_t));
    w->store = mcf->shm_zone->data;

    /* First, while the worker has no thread of ours: the process that forks the compiler
     * helpers, so that nginx never reaps one and dynacode_harden can refuse new processes. */
    err[0] = '\0';
    rc = dc_compiler_spawner_start(err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dynacode: compiler spawner: %s; this worker forks each compiler "
                      "helper itself%s", err[0] ? err : dc_strerror(rc),
                      mcf->harden ? ", which \"dynacode_harden\" refuses: no bundle "
                                    "compiles here" : "");
    }

    /* The library's threads (poller, watchdog) must never take nginx's signals: a SIGQUIT
     * handled there would not wake the event loop. They inherit this mask. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    ret = NGX_ERROR;

    rc = dc_events_new(dc_store_event_counters(w->store), &w->events);
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "dynacode: events: %s",
                      dc_strerror(rc));
        goto done;
    }

    dc_events_subscribe(w->events,
                        (1ull << DC_EV_BG_FETCH_API_GENERIC_ERROR)
                        | (1ull << DC_EV_BG_FETCH_API_STATUS_CODE_ERROR)
                        | (1ull << DC_EV_BG_COMPILE_ERROR)
                        | (1ull << DC_EV_BG_UPDATED_PLUGINS)
                        | (1ull << DC_EV_BG_DIDNT_UPDATE_PLUGINS)
                        | (1ull << DC_EV_ON_ERROR)
                        | (1ull << DC_EV_RT_PLUGINS_QUARANTINED)
                        | (1ull << DC_EV_BG_OFFLINE_LOADED),
                        ngx_http_dynacode_log_event, NULL);

    dc_engine_config_default(&ec);
    ec.host = ngx_http_dynacode_host();
    ec.events = w->events;
    ec.store = w->store;
    ec.policy = mcf->policy;

    if (mcf->shd_size) {
        size_t   store_size;
        u_char  *store_at, *shd_at;

        err[0] = '\0';
        rc = DC_EINVAL;
        if (ngx_http_dynacode_zone_split(mcf->shm_zone, mcf->shd_size, &store_at,
                                         &store_size, &shd_at) == NGX_OK)
        {
            rc = dc_shdicts_open(shd_at, mcf->shd_size, 0, mcf->policy, &w->shdicts, err,
                                 sizeof(err));
        }

        if (rc != DC_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "dynacode: shared dictionaries: %s",
                          err[0] ? err : dc_strerror(rc));
            goto done;
        }
    }

    ec.shdicts = w->shdicts;
    ec.watchdog_grace_ms = NGX_HTTP_DYNACODE_WATCHDOG_GRACE_MS;
    ec.watchdog_cb = ngx_http_dynacode_watchdog;

    err[0] = '\0';
    rc = dc_engine_new(&ec, &w->engine, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "dynacode: engine: %s",
                      err[0] ? err : dc_strerror(rc));
        goto done;
    }

    dc_engine_on_run_errors(w->engine, ngx_http_dynacode_log_run, NULL);

    /* A plugin call that dies by a fatal signal marks the plugin quarantined in the store
     * before this worker dies by that signal; nginx starts another worker, which skips it.
     * nginx itself handles none of these signals: outside plugin calls they keep their
     * previous action. Only workers install it (this runs after the fork). */
    err[0] = '\0';
    rc = dc_crash_guard_install(err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dynacode: crash containment is off in this worker: %s",
                      err[0] ? err : dc_strerror(rc));
    }

    if (mcf->api_uri.len) {
        if (ngx_http_dynacode_new_poller(cycle, mcf) != NGX_OK) {
            goto done;
        }

        ngx_http_dynacode_offline_start(cycle, mcf);
    }

    /* the last good bundle in force before the first request */
    if (dc_engine_sync(w->engine, w->store) < 0) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "dynacode: the bundle in the shared store was refused");
    }

    /* from now on each new bundle is decoded and prepared off the event loop (a request only
     * takes the prepared generation), and the bundle this worker's poller publishes is not
     * decoded a second time */
    err[0] = '\0';
    rc = dc_syncer_start(w->engine, w->store, w->poller, &w->syncer, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dynacode: bundles are prepared between requests in this worker: %s",
                      err[0] ? err : dc_strerror(rc));
    }

    if (w->poller) {
        /* every worker runs a poller; the store's lease lets one of them poll at a time */
        rc = dc_poller_start(w->poller);
        if (rc != DC_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "dynacode: poller: %s",
                          dc_strerror(rc));
            goto done;
        }

        /* cancelable: it never holds up the end of a worker */
        ngx_http_dynacode_exiting_ev.handler = ngx_http_dynacode_exiting;
        ngx_http_dynacode_exiting_ev.log = cycle->log;
        ngx_http_dynacode_dumb.fd = (ngx_socket_t) -1;
        ngx_http_dynacode_exiting_ev.data = &ngx_http_dynacode_dumb;
        ngx_http_dynacode_exiting_ev.cancelable = 1;
        ngx_add_timer(&ngx_http_dynacode_exiting_ev, 1000);
    }

    if (mcf->harden) {
        /* after the threads started: the filter covers them too; a worker that cannot be
         * hardened does not serve (nginx does not respawn it) */
        err[0] = '\0';
        rc = dc_harden_process(err, sizeof(err));
        if (rc != DC_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "dynacode: \"dynacode_harden\": %s",
                          err[0] ? err : dc_strerror(rc));
            goto done;
        }
    }

    ret = NGX_OK;

done:

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (ret != NGX_OK) {
        ngx_http_dynacode_exit_process(cycle);
        /* the worker goes on serving, without plugins, rather than looping on restarts */
        ret = NGX_OK;
    }

    return ret;
}


void
ngx_http_dynacode_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_dynacode_worker_t  *w = &ngx_http_dynacode_worker;

    if (w->poller) {
        dc_syncer_share(w->syncer, NULL);
        dc_poller_free(w->poller);   /* stops its thread, gives the lease back */
        w->poller = NULL;
    }

    if (w->syncer) {
        dc_syncer_stop(w->syncer);
        w->syncer = NULL;
    }

    if (w->engine) {
        dc_engine_free(w->engine);
        w->engine = NULL;
    }

    if (w->events) {
        dc_events_free(w->events);
        w->events = NULL;
    }

    dc_shdicts_close(w->shdicts);
    w->shdicts = NULL;
    w->store = NULL;

    /* last: nothing compiles any more; the spawner is reaped here, not by nginx */
    dc_compiler_spawner_stop();
}
