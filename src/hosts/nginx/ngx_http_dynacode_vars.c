/* ngx_http_dynacode_vars.c - the dc_host callbacks for nginx variables: read with
 * ngx_http_get_variable (a name of digits: the location's regex capture), written the way
 * lua-nginx-module does (changeable ones only).
 */
#include "ngx_http_dynacode_host.h"


/* variable names up to this length are lowercased on the stack */
#define NGX_HTTP_DYNACODE_NAME_LEN   128


/* The regex capture N (name: its decimal digits) of the location the request matched, as
 * nginx's own $N reads it: 1 and *val, or 0 when there is no such capture. */
static int
ngx_http_dynacode_capture_get(ngx_http_request_t *r, dc_str name, dc_str *val)
{
#if (NGX_PCRE)
    size_t      i;
    ngx_uint_t  n;

    n = 0;

    for (i = 0; i < name.len; i++) {
        if (name.data[i] < '0' || name.data[i] > '9' || n > 65535) {
            return 0;
        }

        n = n * 10 + (ngx_uint_t) (name.data[i] - '0');
    }

    n *= 2;

    if (n == 0 || r->captures == NULL || r->captures_data == NULL || n + 1 >= r->ncaptures
        || r->captures[n] < 0 || r->captures[n + 1] < r->captures[n])
    {
        return 0;
    }

    val->data = (const char *) r->captures_data + r->captures[n];
    val->len = (size_t) (r->captures[n + 1] - r->captures[n]);

    return 1;
#else
    (void) r;
    (void) name;
    (void) val;

    return 0;
#endif
}


int
ngx_http_dynacode_var_get(void *hreq, dc_str name, dc_str *val)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    ngx_str_t                   n;
    ngx_uint_t                  key;
    ngx_http_variable_value_t  *vv;

    if (name.len == 0) {
        return 0;
    }

    if (name.data[0] >= '0' && name.data[0] <= '9') {
        return ngx_http_dynacode_capture_get(r, name, val);
    }

    /* the name comes lowercased (dc_host), as nginx hashes it; nginx reads it during the
     * call only */
    n.len = name.len;
    n.data = (u_char *) name.data;
    key = ngx_hash_key(n.data, n.len);

    /* every nginx variable, arg_*, cookie_*, http_*, sent_http_* included */
    vv = ngx_http_get_variable(r, &n, key);
    if (vv == NULL) {
        return -1;
    }

    if (vv->not_found) {
        return 0;
    }

    val->data = (const char *) vv->data;
    val->len = vv->len;

    return 1;
}


/* As lua-nginx-module: a variable with a set handler (such as $args, $limit_rate) or an
 * indexed one declared with `set`, if nginx says it is changeable. */
int
ngx_http_dynacode_var_set(void *hreq, dc_str name, dc_str val)
{
    ngx_http_request_t *r = ngx_http_dynacode_req(hreq);

    u_char                      buf[NGX_HTTP_DYNACODE_NAME_LEN], *low, *p;
    u_char                      shown[4 * NGX_HTTP_DYNACODE_NAME_LEN + 8], *end;
    ngx_uint_t                  key;
    ngx_http_variable_t        *v;
    ngx_http_variable_value_t  *vv;
    ngx_http_core_main_conf_t  *cmcf;

    if (name.len == 0 || name.len > sizeof(buf)) {
        return -1;
    }

    low = buf;

    /* the name is the plugin's text: escaped in the lines below */
    end = ngx_http_dynacode_log_escape(shown, sizeof(shown), (u_char *) name.data, name.len,
                                       1);

    /* CR/LF in $args would end up in the request line sent upstream */
    for (key = 0; val.data && key < val.len; key++) {
        if (ngx_http_dynacode_ctl((u_char) val.data[key])) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "dynacode: a plugin's value for $%*s has a control byte; not set",
                          (size_t) (end - shown), shown);
            return -1;
        }
    }

    key = ngx_hash_strlow(low, (u_char *) name.data, name.len);

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    v = ngx_hash_find(&cmcf->variables_hash, key, low, name.len);

    if (v == NULL || !(v->flags & NGX_HTTP_VAR_CHANGEABLE)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dynacode: variable \"%*s\" is not changeable (declare it "
                      "with \"set $%*s '';\" to let plugins write it)",
                      (size_t) (end - shown), shown, (size_t) (end - shown), shown);
        return -1;
    }

    if (!v->set_handler && !(v->flags & NGX_HTTP_VAR_INDEXED)) {
        return -1;
    }

    /* a new buffer each time (counted): `set $a $b` shares $b's buffer, which must not
     * change under $a */
    p = NULL;
    if (val.data) {
        p = ngx_http_dynacode_store(r, NULL, val.data, val.len);
        if (p == NULL) {
            return -1;
        }
    }

    if (v->set_handler) {
        vv = ngx_palloc(r->pool, sizeof(ngx_http_variable_value_t));
        if (vv == NULL) {
            return -1;
        }

    } else {
        vv = &r->variables[v->index];
    }

    vv->valid = val.data ? 1 : 0;
    vv->not_found = val.data ? 0 : 1;
    vv->no_cacheable = 0;
    vv->escape = 0;
    vv->data = p;
    vv->len = val.data ? val.len : 0;

    if (v->set_handler) {
        v->set_handler(r, vv, v->data);
    }

    return 0;
}
