/* ngx_http_dynacode_log.c - what libdynacode reports, as error log lines: background and
 * notable events, plugin calls that did not end well, and the watchdog ending a worker
 * whose plugin call is stuck.
 */
#include "ngx_http_dynacode.h"


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
void
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
void
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


void
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
