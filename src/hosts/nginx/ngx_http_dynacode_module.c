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
    mcf->allow_downgrade = NGX_CONF_UNSET;
    mcf->api_follow_redirects = NGX_CONF_UNSET;

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


ngx_int_t
ngx_http_dynacode_zone_split(ngx_shm_zone_t *zone, size_t shd_size, u_char **store,
    size_t *store_size, u_char **shd)
{
    size_t            total;
    u_char           *region;
    ngx_slab_pool_t  *sp;

    sp = (ngx_slab_pool_t *) zone->shm.addr;
    region = sp->data;
    total = ((size_t) (sp->end - region)) & ~((size_t) ngx_pagesize - 1);

    if (total < shd_size + DC_STORE_MIN_SIZE) {
        return NGX_ERROR;
    }

    *store = region;
    *store_size = total - shd_size;
    *shd = region + *store_size;

    return NGX_OK;
}


/* Formats the shared dictionaries at the zone's end for the new configuration's policy, or
 * keeps them when the zone was kept and they were declared alike. */
static ngx_int_t
ngx_http_dynacode_init_shdicts(ngx_shm_zone_t *shm_zone,
    ngx_http_dynacode_main_conf_t *mcf, ngx_uint_t init)
{
    size_t       store_size;
    u_char      *store, *shd;
    dc_rc        rc;
    dc_shdicts  *s;
    char         err[256];

    if (mcf == NULL || mcf->shd_size == 0) {
        return NGX_OK;
    }

    if (ngx_http_dynacode_zone_split(shm_zone, mcf->shd_size, &store, &store_size, &shd)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "\"dynacode_shm_size\": the shared zone \"%V\" has no room for "
                      "the policy's shared dictionaries (%uz bytes)", &shm_zone->shm.name,
                      mcf->shd_size);
        return NGX_ERROR;
    }

    s = NULL;
    err[0] = '\0';
    rc = DC_EINVAL;

    if (!init) {
        rc = dc_shdicts_open(shd, mcf->shd_size, 0, mcf->policy, &s, err, sizeof(err));
    }

    if (rc != DC_OK) {
        rc = dc_shdicts_open(shd, mcf->shd_size, 1, mcf->policy, &s, err, sizeof(err));
    }

    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "dynacode: shared dictionaries: %s", err[0] ? err : dc_strerror(rc));
        return NGX_ERROR;
    }

    dc_shdicts_close(s);   /* the workers attach on their own */

    return NGX_OK;
}


static ngx_int_t
ngx_http_dynacode_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                          size;
    u_char                         *region, *shd;
    dc_rc                           rc;
    dc_store                       *store;
    ngx_uint_t                      init;
    ngx_slab_pool_t                *sp;
    ngx_http_dynacode_main_conf_t  *mcf;
    char                            err[256];

    mcf = shm_zone->data;   /* set with the zone: this configuration's */

    if (data) {
        /* a reload kept the zone (same name and size): same region, same store, and the
         * bundle in force survives */
        shm_zone->data = data;
        return ngx_http_dynacode_init_shdicts(shm_zone, mcf, 0);
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

    /* the policy's shared dictionaries take the zone's last pages; the store the rest */
    if (ngx_http_dynacode_zone_split(shm_zone, mcf ? mcf->shd_size : 0, &region, &size, &shd)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "\"dynacode_shm_size\": the shared zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    rc = dc_store_attach(region, size, (int) init, &store, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "\"dynacode_shm_size\": cannot use the shared zone \"%V\" "
                      "(%uz bytes): %s", &shm_zone->shm.name, size,
                      err[0] ? err : dc_strerror(rc));
        return NGX_ERROR;
    }

    shm_zone->data = store;

    return ngx_http_dynacode_init_shdicts(shm_zone, mcf, init);
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
    ngx_conf_init_value(mcf->allow_downgrade, 0);
    ngx_conf_init_value(mcf->api_follow_redirects, 0);

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

    /* The policy's shared dictionaries add their size to the zone, in whole pages; the
     * zone's name carries that size, so that a reload keeps a zone only when the split
     * between the store and the dictionaries stays where it was. */
    mcf->shd_size = dc_policy_shdicts_size(mcf->policy);
    if (mcf->shd_size) {
        mcf->shd_size = ngx_align(mcf->shd_size, ngx_pagesize);
        name.data = ngx_pnalloc(cf->pool, sizeof("dynacode_shd_") + NGX_SIZE_T_LEN);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }
        name.len = ngx_sprintf(name.data, "dynacode_shd_%uz", mcf->shd_size) - name.data;
    }

    mcf->shm_zone = ngx_shared_memory_add(cf, &name, mcf->shm_size + mcf->shd_size,
                                          &ngx_http_dynacode_module);
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->shm_zone->init = ngx_http_dynacode_init_zone;
    mcf->shm_zone->data = mcf;

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
