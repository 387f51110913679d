/* ngx_http_dynacode_directives.c - the table of the directives (src/hosts/nginx/README.md),
 * their handlers, and the checks of their values at `nginx -t`, each message naming its
 * directive.
 */
#include "ngx_http_dynacode.h"


#define NGX_HTTP_DYNACODE_MIN_SHM  (2 * DC_STORE_MIN_SIZE)


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
static char *ngx_http_dynacode_verify_key(ngx_conf_t *cf, ngx_command_t *cmd,
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


ngx_command_t  ngx_http_dynacode_commands[] = {

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

    { ngx_string("dynacode_verify_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dynacode_verify_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dynacode_allow_downgrade"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, allow_downgrade),
      NULL },

    { ngx_string("dynacode_api_follow_redirects"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dynacode_main_conf_t, api_follow_redirects),
      NULL },

      ngx_null_command
};


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


/* A public key bundles must be signed with (repeatable: any one of them is enough). The file
 * is read now, so that a missing or unusable key fails `nginx -t`; the poller of each worker
 * reads it again. */
static char *
ngx_http_dynacode_verify_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dynacode_main_conf_t *mcf = conf;

    dc_rc         rc;
    ngx_str_t    *value, path, *k;
    dc_keyring   *ring;
    char          err[1024];

    value = cf->args->elts;
    path = value[1];

    /* relative to the configuration's folder, as ssl_certificate */
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (dc_keyring_new(&ring) != DC_OK) {
        return NGX_CONF_ERROR;
    }

    err[0] = '\0';
    rc = dc_keyring_add_file(ring, (char *) path.data, err, sizeof(err));
    dc_keyring_free(ring);

    if (rc != DC_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name,
                           err[0] ? err : dc_strerror(rc));
        return NGX_CONF_ERROR;
    }

    if (mcf->verify_keys == NULL) {
        mcf->verify_keys = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (mcf->verify_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    k = ngx_array_push(mcf->verify_keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    *k = path;

    return NGX_CONF_OK;
}
