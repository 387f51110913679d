/* ngx_http_dynacode_module.c - the module itself: its definition and context, the main and
 * location configurations (create, init, merge), the shared zone that holds libdynacode's
 * store, and the postconfiguration that installs the phase handlers.
 */
#include "ngx_http_dynacode.h"


static void *ngx_http_dynacode_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_dynacode_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_dynacode_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_dynacode_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_dynacode_postconfiguration(ngx_conf_t *cf);


static ngx_http_module_t  ngx_http_dynacode_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_dynacode_postconfiguration,   /* postconfiguration */

    ngx_http_dynacode_create_main_conf,    /* create main configuration */
    ngx_http_dynacode_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_dynacode_create_loc_conf,     /* create location configuration */
    ngx_http_dynacode_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_dynacode_module = {
    NGX_MODULE_V1,
    &ngx_http_dynacode_module_ctx,         /* module context */
    ngx_http_dynacode_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_dynacode_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_dynacode_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* ---- configuration ---- */

static void *
ngx_http_dynacode_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_dynacode_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dynacode_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /* ngx_pcalloc: api_uri, policy_file, offline_file, api_headers, used, run_phases,
     * policy and shm_zone are empty */
    mcf->poll_interval = NGX_CONF_UNSET_MSEC;
    mcf->poll_jitter = NGX_CONF_UNSET_MSEC;
    mcf->poll_at_init = NGX_CONF_UNSET;
    mcf->api_timeout = NGX_CONF_UNSET_MSEC;
    mcf->shm_size = NGX_CONF_UNSET_SIZE;
    mcf->harden = NGX_CONF_UNSET;

    return mcf;
}


void
ngx_http_dynacode_policy_cleanup(void *data)
{
    /* With master_process off, a reload keeps the process's engine, which still uses the
     * old policy: it is left alive there (a debugging setup) rather than freed under it. */
    if (ngx_process == NGX_PROCESS_SINGLE) {
        return;
    }

    dc_policy_free(data);
}


static ngx_int_t
ngx_http_dynacode_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t            size;
    u_char           *region;
    dc_rc             rc;
    dc_store         *store;
    ngx_uint_t        init;
    ngx_slab_pool_t  *sp;
    char              err[256];

    if (data) {
        /* a reload kept the zone (same name and size): same region, same store, and the
         * bundle in force survives */
        shm_zone->data = data;
        return NGX_OK;
    }

    sp = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        region = sp->data;
        init = 0;

    } else {
        /* the store takes every free page of the zone, in one block */
        region = ngx_slab_alloc(sp, sp->pfree << ngx_pagesize_shift);
        if (region == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "\"dynacode_shm_size\": cannot allocate the store in "
                          "the shared zone \"%V\"", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        sp->data = region;
        init = 1;
    }

    size = ((size_t) (sp->end - region)) & ~((size_t) ngx_pagesize - 1);

    rc = dc_store_attach(region, size, (int) init, &store, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "\"dynacode_shm_size\": cannot use the shared zone \"%V\" "
                      "(%uz bytes): %s", &shm_zone->shm.name, size,
                      err[0] ? err : dc_strerror(rc));
        return NGX_ERROR;
    }

    shm_zone->data = store;

    return NGX_OK;
}


static char *
ngx_http_dynacode_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    dc_rc                rc;
    ngx_str_t            name = ngx_string("dynacode");
    ngx_pool_cleanup_t  *cln;
    char                 err[1024];

    ngx_conf_init_msec_value(mcf->poll_interval, 15000);
    ngx_conf_init_msec_value(mcf->poll_jitter, 5000);
    ngx_conf_init_value(mcf->poll_at_init, 1);
    ngx_conf_init_msec_value(mcf->api_timeout, 5000);
    ngx_conf_init_size_value(mcf->shm_size, 16 * 1024 * 1024);
    ngx_conf_init_value(mcf->harden, 0);

    if (mcf->run_phases || mcf->api_uri.len) {
        mcf->used = 1;
    }

    if (!mcf->used) {
        return NGX_CONF_OK;
    }

    if (mcf->offline_file.len && mcf->api_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dynacode_offline_file\" needs \"dynacode_api_uri\": "
                           "it keeps the last good bundle from the API (for a static "
                           "bundle, use dynacode_api_uri file:///path/bundle.json)");
        return NGX_CONF_ERROR;
    }

    if (mcf->api_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "dynacode: no \"dynacode_api_uri\": no bundle will be "
                           "loaded and requests pass without plugins");
    }

    if (mcf->policy == NULL) {
        rc = dc_policy_default(&mcf->policy, err, sizeof(err));
        if (rc != DC_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"dynacode_policy\": built-in policy: %s", err);
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            dc_policy_free(mcf->policy);
            mcf->policy = NULL;
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_dynacode_policy_cleanup;
        cln->data = mcf->policy;
    }

    mcf->shm_zone = ngx_shared_memory_add(cf, &name, mcf->shm_size,
                                          &ngx_http_dynacode_module);
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->shm_zone->init = ngx_http_dynacode_init_zone;

    return NGX_CONF_OK;
}


static void *
ngx_http_dynacode_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_dynacode_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dynacode_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->enable = NGX_CONF_UNSET;
    lcf->content = 0;

    return lcf;
}


static char *
ngx_http_dynacode_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_dynacode_loc_conf_t *prev = parent;
    ngx_http_dynacode_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_dynacode_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_dynacode_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dynacode_module);

    if (!mcf->run_phases) {
        return NGX_OK;
    }

    return ngx_http_dynacode_init_phases(cf);
}
