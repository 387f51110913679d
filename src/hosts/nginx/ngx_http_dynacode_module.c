/* ngx_http_dynacode_module.c - the directives (src/hosts/nginx/README.md; checked at
 * `nginx -t`, each message naming its directive), configuration create/merge, the shared zone
 * that holds libdynacode's store, and each worker's engine, event hub and poller (init_process
 * / exit_process).
 */
#include <pthread.h>
#include <signal.h>

#include "ngx_http_dynacode.h"


#define NGX_HTTP_DYNACODE_MIN_SHM  (2 * DC_STORE_MIN_SIZE)
/* How long a worker that found the store empty waits for the sibling that holds the lease to
 * publish the offline file, at start only: a first start serves the last good bundle from
 * its first request. */
#define NGX_HTTP_DYNACODE_OFFLINE_WAIT_MS  3000
/* The watchdog ends a worker whose plugin call is stuck in C this long past its time quota. */
#define NGX_HTTP_DYNACODE_WATCHDOG_GRACE_MS  2000


static void *ngx_http_dynacode_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_dynacode_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_dynacode_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_dynacode_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_dynacode_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_dynacode_init_process(ngx_cycle_t *cycle);
static void ngx_http_dynacode_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_dynacode_api_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_api_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_offline_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_content(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dynacode_check_positive(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_dynacode_check_shm_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_dynacode_enable_post(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_post_t  ngx_http_dynacode_positive_post =
    { ngx_http_dynacode_check_positive };
static ngx_conf_post_t  ngx_http_dynacode_shm_size_post =
    { ngx_http_dynacode_check_shm_size };
static ngx_conf_post_t  ngx_http_dynacode_enable_post_handler =
    { ngx_http_dynacode_enable_post };


static ngx_command_t  ngx_http_dynacode_commands[] = {

    { ngx_string("dynacode_api_uri"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dynacode_api_uri,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, poll_interval),
      &ngx_http_dynacode_positive_post },

    { ngx_string("dynacode_poll_jitter"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, poll_jitter),
      NULL },

    { ngx_string("dynacode_poll_at_init"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, poll_at_init),
      NULL },

    { ngx_string("dynacode_api_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, api_timeout),
      &ngx_http_dynacode_positive_post },

    { ngx_string("dynacode_api_header"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dynacode_api_header,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_shm_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, shm_size),
      &ngx_http_dynacode_shm_size_post },

    { ngx_string("dynacode_policy"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dynacode_policy,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_offline_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dynacode_offline_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_harden"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, harden),
      NULL },

    { ngx_string("dynacode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dynacode_loc_conf_t, enable),
      &ngx_http_dynacode_enable_post_handler },

    { ngx_string("dynacode_content"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dynacode_content,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dynacode_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


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


ngx_http_dynacode_worker_t  ngx_http_dynacode_worker;

/* Looks once a second whether the worker is shutting down (see the handler); its data is a
 * connection with no socket, as nginx's cache manager does, for the event debug log. */
static ngx_event_t       ngx_http_dynacode_exiting_ev;
static ngx_connection_t  ngx_http_dynacode_dumb;


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


static void
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


/* ---- directive handlers and checks ---- */

static char *
ngx_http_dynacode_check_positive(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_check_shm_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < NGX_HTTP_DYNACODE_MIN_SHM) {
        return "is too small: at least 128k";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_enable_post(ngx_conf_t *cf, void *post, void *data)
{
    ngx_flag_t                     *fp = data;
    ngx_http_dynacode_main_conf_t  *mcf;

    if (*fp) {
        mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dynacode_module);
        mcf->run_phases = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_dynacode_has_prefix(ngx_str_t *s, const char *prefix)
{
    size_t  n = ngx_strlen(prefix);

    return s->len > n && ngx_strncasecmp(s->data, (u_char *) prefix, n) == 0;
}


static char *
ngx_http_dynacode_api_uri(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (mcf->api_uri.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_dynacode_has_prefix(&value[1], "http://")
        && !ngx_http_dynacode_has_prefix(&value[1], "https://")
        && !ngx_http_dynacode_has_prefix(&value[1], "file://"))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not an http://, https:// or file:// URL",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= ' ' || value[1].data[i] == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" has a space or control character",
                               &cmd->name, &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    /* cf->args strings are NUL-terminated: the poller gets it as a C string */
    mcf->api_uri = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_api_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    u_char      *colon;
    ngx_str_t   *value, *h;
    ngx_uint_t   i;

    value = cf->args->elts;

    colon = ngx_strlchr(value[1].data, value[1].data + value[1].len, ':');

    if (colon == NULL || colon == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not a \"Name: value\" header",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        u_char  c = value[1].data[i];

        if (c == '\r' || c == '\n' || c == '\0'
            || (&value[1].data[i] < colon && (c <= ' ' || c == 0x7f)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not a \"Name: value\" header "
                               "(space or control character)", &cmd->name,
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (mcf->api_headers == NULL) {
        mcf->api_headers = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (mcf->api_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(mcf->api_headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    *h = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    dc_rc                rc;
    ngx_str_t           *value, path;
    dc_policy           *policy;
    ngx_pool_cleanup_t  *cln;
    char                 err[1024];

    if (mcf->policy_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    /* relative to the configuration's folder, as ssl_certificate */
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (access((char *) path.data, R_OK) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": cannot read the policy file \"%V\"",
                           &cmd->name, &path);
        return NGX_CONF_ERROR;
    }

    rc = dc_policy_load_file((char *) path.data, &policy, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name,
                           err[0] ? err : dc_strerror(rc));
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        dc_policy_free(policy);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_dynacode_policy_cleanup;
    cln->data = policy;

    mcf->policy_file = path;
    mcf->policy = policy;

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_offline_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    u_char           *slash;
    ngx_str_t        *value, path, dir;
    ngx_file_info_t   fi;

    if (mcf->offline_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    /* relative to the prefix, as other files nginx writes */
    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    slash = path.data + path.len;
    while (slash > path.data && slash[-1] != '/') {
        slash--;
    }

    if (slash == path.data + path.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" names a folder, not a file",
                           &cmd->name, &path);
        return NGX_CONF_ERROR;
    }

    dir.len = (slash - path.data > 1) ? (size_t) (slash - path.data - 1) : 1;
    dir.data = ngx_pnalloc(cf->pool, dir.len + 1);
    if (dir.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(dir.data, path.data, dir.len);
    dir.data[dir.len] = '\0';

    /* the poller writes the file atomically: a temporary file in the same folder, then
     * rename, so the folder must be writable */
    if (ngx_file_info(dir.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": the folder \"%V\" of \"%V\" cannot be used",
                           &cmd->name, &dir, &path);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not a folder", &cmd->name, &dir);
        return NGX_CONF_ERROR;
    }

    if (access((char *) dir.data, W_OK | X_OK) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": the folder \"%V\" is not writable",
                           &cmd->name, &dir);
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(path.data, &fi) != NGX_FILE_ERROR) {
        if (!ngx_is_file(&fi)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not a regular file",
                               &cmd->name, &path);
            return NGX_CONF_ERROR;
        }

        if (access((char *) path.data, R_OK | W_OK) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "\"%V\": cannot read and write \"%V\"",
                               &cmd->name, &path);
            return NGX_CONF_ERROR;
        }
    }

    mcf->offline_file = path;

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_content(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_dynacode_main_conf_t  *mcf;

    if (lcf->content) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_http_dynacode_content_handler;
    lcf->content = 1;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dynacode_module);
    mcf->run_phases = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_dynacode_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_dynacode_main_conf_t  *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_http_dynacode_status_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dynacode_module);
    mcf->used = 1;

    return NGX_CONF_OK;
}


/* ---- the worker ---- */

/* The library decides how much an event matters; this only names nginx's level for it. */
static ngx_uint_t
ngx_http_dynacode_event_level(const dc_event_info *info)
{
    switch (info->severity) {
    case DC_SEV_ERROR:
        return NGX_LOG_ERR;
    case DC_SEV_WARN:
        return NGX_LOG_WARN;
    case DC_SEV_INFO:
        return NGX_LOG_INFO;
    case DC_SEV_DEBUG:
        return NGX_LOG_DEBUG;
    default:
        return NGX_LOG_NOTICE;
    }
}


/* Background and notable events as error log lines. May run in the poller's thread:
 * ngx_log_error only formats on the stack and writes. */
static void
ngx_http_dynacode_log_event(void *ud, const dc_event_info *info)
{
    ngx_log_t   *log;
    ngx_uint_t   level;

    log = ngx_cycle->log;
    level = ngx_http_dynacode_event_level(info);

    if (info->event == DC_EV_BG_UPDATED_PLUGINS
        || info->event == DC_EV_BG_OFFLINE_LOADED)
    {
        ngx_log_error(level, log, 0, "dynacode: %s: %uL plugins%s%s",
                      dc_event_name(info->event), info->count,
                      info->message ? ", " : "",
                      info->message ? info->message : "");
        return;
    }

    ngx_log_error(level, log, 0,
                  "dynacode: %s%s%s%s%s%s%s: %s",
                  dc_event_name(info->event),
                  info->domain ? " domain=\"" : "",
                  info->domain ? info->domain : "",
                  info->domain ? "\"" : "",
                  info->plugin ? " plugin=\"" : "",
                  info->plugin ? info->plugin : "",
                  info->plugin ? "\"" : "",
                  info->message ? info->message : "");
}


/* A plugin call that did not end well, as a line in the error log of its request. */
static void
ngx_http_dynacode_log_run(void *ud, const dc_run_info *info)
{
    u_char               plugin[300], domain[300], msg[1200], *pe, *de, *me;
    ngx_log_t           *log;
    ngx_uint_t           level;
    ngx_http_request_t  *r;

    if (info->result == DC_RESULT_OK) {
        return;
    }

    /* names and message are the bundle author's text: no line of theirs in the log */
    pe = ngx_http_dynacode_log_escape(plugin, sizeof(plugin), (u_char *) info->plugin,
                                      ngx_strlen(info->plugin), 1);
    de = ngx_http_dynacode_log_escape(domain, sizeof(domain), (u_char *) info->domain,
                                      ngx_strlen(info->domain), 1);
    me = info->message
         ? ngx_http_dynacode_log_escape(msg, sizeof(msg), (u_char *) info->message,
                                        ngx_strlen(info->message), 0)
         : msg;

    r = info->hreq;
    log = r ? r->connection->log : ngx_cycle->log;

    /* an error is the plugin's fault; a quota trip may be the request's (and is counted) */
    level = (info->result == DC_RESULT_ERROR || info->result == DC_RESULT_DENIED)
            ? NGX_LOG_ERR : NGX_LOG_WARN;

    ngx_log_error(level, log, 0,
                  "dynacode: plugin \"%*s\" of domain \"%*s\" phase=%s result=%s "
                  "ms=%.3f: %*s", (size_t) (pe - plugin), plugin,
                  (size_t) (de - domain), domain,
                  dc_phase_name(info->phase), dc_result_name(info->result),
                  info->ms, (size_t) (me - msg), msg);
}


static void
ngx_http_dynacode_watchdog(void *ud, const dc_watchdog_info *info)
{
    u_char       plugin[300], domain[300], *pe, *de;
    const char  *p, *d;

    p = info->plugin ? info->plugin : "?";
    d = info->domain ? info->domain : "?";
    pe = ngx_http_dynacode_log_escape(plugin, sizeof(plugin), (u_char *) p, ngx_strlen(p), 1);
    de = ngx_http_dynacode_log_escape(domain, sizeof(domain), (u_char *) d, ngx_strlen(d), 1);

    /* the library has marked the plugin quarantined in the shared store already (the engine
     * has the store): the fresh worker nginx starts skips it */
    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "dynacode: watchdog: plugin \"%*s\" of domain \"%*s\" is stuck %.0f ms "
                  "past its time quota; this worker ends and nginx starts another",
                  (size_t) (pe - plugin), plugin, (size_t) (de - domain), domain,
                  info->overdue_ms);
}


static ngx_int_t
ngx_http_dynacode_new_poller(ngx_cycle_t *cycle, ngx_http_dynacode_main_conf_t *mcf)
{
    char                           err[512];
    dc_rc                          rc;
    ngx_str_t                     *h;
    ngx_uint_t                     i;
    dc_poller_config               pc;
    const char                   **headers;
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
    pc.interval_s = mcf->poll_interval / 1000.0;
    pc.jitter_s = mcf->poll_jitter / 1000.0;
    pc.poll_at_start = mcf->poll_at_init ? 1 : 0;
    pc.policy = mcf->policy;
    pc.events = w->events;
    pc.store = w->store;
    pc.offline_file = mcf->offline_file.len ? (const char *) mcf->offline_file.data
                                            : NULL;
    pc.pid = (int32_t) ngx_pid;

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


static ngx_int_t
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
    ec.watchdog_grace_ms = NGX_HTTP_DYNACODE_WATCHDOG_GRACE_MS;
    ec.watchdog_cb = ngx_http_dynacode_watchdog;

    err[0] = '\0';
    rc = dc_engine_new(&ec, &w->engine, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "dynacode: engine: %s",
                      err[0] ? err : dc_strerror(rc));
        goto done;
    }

    dc_engine_on_run(w->engine, ngx_http_dynacode_log_run, NULL);

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

    /* from now on each new bundle is decoded and prepared off the event loop; a request
     * only takes the prepared generation */
    err[0] = '\0';
    rc = dc_syncer_start(w->engine, w->store, &w->syncer, err, sizeof(err));
    if (rc != DC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dynacode: bundles are prepared between requests in this worker: %s",
                      err[0] ? err : dc_strerror(rc));

    } else {
        /* the bundle this worker's poller publishes is not decoded a second time */
        dc_syncer_share(w->syncer, w->poller);
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


static void
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

    w->store = NULL;
}
