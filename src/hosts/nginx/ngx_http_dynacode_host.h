/* ngx_http_dynacode_host.h - what the files of the dc_host callbacks share: the request behind
 * an hreq, the helpers of ngx_http_dynacode_values.c, and each file's callbacks for the table
 * in ngx_http_dynacode_host.c.
 */
#ifndef NGX_HTTP_DYNACODE_HOST_H
#define NGX_HTTP_DYNACODE_HOST_H

#include "ngx_http_dynacode.h"


#define ngx_http_dynacode_req(hreq)  ((ngx_http_request_t *) (hreq))


/* Walks a header list, part by part (a part may be empty after a removal). */
typedef struct {
    ngx_list_part_t  *part;
    ngx_uint_t        i;
} ngx_http_dynacode_iter_t;


static ngx_inline ngx_uint_t
ngx_http_dynacode_ctl(u_char c)
{
    return c < 0x20 || c == 0x7f;
}


/* ngx_http_dynacode_values.c */
ngx_int_t ngx_http_dynacode_header_ok(ngx_http_request_t *r, dc_str name,
    const dc_str *values, size_t n);
ngx_int_t ngx_http_dynacode_path_ok(const u_char *p, size_t len);
void ngx_http_dynacode_strlow(u_char *dst, const u_char *src, size_t len);
u_char *ngx_http_dynacode_store(ngx_http_request_t *r, u_char *old, const char *data,
    size_t len);
void ngx_http_dynacode_release(ngx_http_request_t *r, u_char *old);
ngx_table_elt_t *ngx_http_dynacode_next(ngx_http_dynacode_iter_t *it);
ngx_int_t ngx_http_dynacode_fill(ngx_http_request_t *r, ngx_table_elt_t *h,
    ngx_uint_t fresh, dc_str name, dc_str value);

/* ngx_http_dynacode_vars.c */
int ngx_http_dynacode_var_get(void *hreq, dc_str name, dc_str *val);
int ngx_http_dynacode_var_set(void *hreq, dc_str name, dc_str val);

/* ngx_http_dynacode_headers_in.c */
int ngx_http_dynacode_req_headers(void *hreq, dc_each_header_cb each, void *arg);
int ngx_http_dynacode_req_header_set(void *hreq, dc_str name, const dc_str *values,
    size_t n);

/* ngx_http_dynacode_headers_out.c */
int ngx_http_dynacode_resp_header_get(void *hreq, dc_str name, dc_each_value_cb each,
    void *arg);
int ngx_http_dynacode_resp_header_set(void *hreq, dc_str name, const dc_str *values,
    size_t n);

/* ngx_http_dynacode_req.c */
double ngx_http_dynacode_start_time(void *hreq);
int ngx_http_dynacode_http_version(void *hreq);
int ngx_http_dynacode_is_internal(void *hreq);
int ngx_http_dynacode_set_method(void *hreq, int method, dc_str name);
int ngx_http_dynacode_resp_headers(void *hreq, dc_each_header_cb each, void *arg);
int ngx_http_dynacode_send_headers(void *hreq);
int ngx_http_dynacode_eof(void *hreq);
int ngx_http_dynacode_eof_seen(void *hreq);

/* ngx_http_dynacode_body.c */
int ngx_http_dynacode_read_body_cb(void *hreq);
int ngx_http_dynacode_req_body(void *hreq, dc_str *data);

/* ngx_http_dynacode_host.c */
/* Whether the response header is sent, or as good as sent (ngx.say ran). */
ngx_uint_t ngx_http_dynacode_sent(ngx_http_request_t *r);


#endif /* NGX_HTTP_DYNACODE_HOST_H */
