/* api_table.h - the plugin API as one table: every name a plugin can reach, which area of the
 * environment provides it, the phases it works in and the default allow entry covering it.
 * The environment registers from it, the policy checks names against it, and the default allow
 * list is drawn from it. Pure data (no includes): it belongs below the policy layer.
 */
#ifndef DC_API_TABLE_H
#define DC_API_TABLE_H

/* Phase masks (bit p = enum dc_phase p of dynacode.h). */
#define DC_APH_ANY 0x3fu                                 /* every phase */
#define DC_APH_OUTPUT 0x07u                              /* rewrite, access, content */
#define DC_APH_EXIT (DC_APH_OUTPUT | 0x08u)              /* ... and header_filter */
#define DC_APH_BODY 0x10u                                /* body_filter */
#define DC_APH_REWRITE 0x01u                             /* rewrite */
#define DC_APH_NOBODY (DC_APH_ANY & ~DC_APH_BODY)        /* every phase but body_filter */

/* The areas of the ngx table, each opened at the first use of one of its names; the order is
 * the bit of the area in a state's open mask. A(AREA, opener suffix). */
#define DC_API_NGX_AREAS(A)                                                            \
    A(OUTPUT, output) A(VAR, var) A(HEADER, header) A(REQ, req) A(CTX, ctx) A(ARG, arg) \
    A(LOG, log) A(TIME, time) A(CONSTS, consts) A(RE, re) A(CODEC, codec) A(SHARED, shared)

/* Every area: those of the ngx table, then json, the base globals, the library tables and the
 * kept os functions (opened by the environment itself). */
#define DC_API_AREA_NAMES(A) DC_API_NGX_AREAS(A) A(JSON, json) A(BASE, base) A(LIB, lib) A(OS, os)

/* X(area, kind, path, field, fn, phases, allow)
 *   area   an ngx area above, or JSON, BASE (globals of the environment), LIB (a Lua library
 *          table opened at first use), OS (the three os functions kept); the global `print`
 *          is LOG's (api_log.c), set up by the environment with the base functions
 *   kind   FN: a function the area registers from this table under `field` (into the table it
 *          fills: ngx, ngx.req, ngx.re, json); OWN: a table, property or value the area's code
 *          sets up itself; GLOBAL: a base function copied into the environment; LIB: "T.*"
 *   fn     the C function of an FN entry, otherwise a unique tag
 *   allow  the entry of the default allow list that covers the name */
#define DC_API_TABLE(X)                                                                        \
    X(VAR, OWN, "ngx.var", var, ngx_var, DC_APH_ANY, "ngx.*")                                  \
    X(HEADER, OWN, "ngx.header", header, ngx_header, DC_APH_ANY, "ngx.*")                      \
    X(HEADER, OWN, "ngx.status", status, ngx_status, DC_APH_ANY, "ngx.*")                      \
    X(HEADER, OWN, "ngx.resp.get_headers", get_headers, resp_get_headers, DC_APH_ANY, "ngx.*") \
    X(HEADER, OWN, "ngx.headers_sent", headers_sent, ngx_headers_sent, DC_APH_OUTPUT, "ngx.*")  \
    X(REQ, FN, "ngx.req.get_headers", get_headers, req_get_headers, DC_APH_ANY, "ngx.*")       \
    X(REQ, FN, "ngx.req.set_header", set_header, req_set_header, DC_APH_ANY, "ngx.*")          \
    X(REQ, FN, "ngx.req.clear_header", clear_header, req_clear_header, DC_APH_ANY, "ngx.*")    \
    X(REQ, FN, "ngx.req.get_method", get_method, req_get_method, DC_APH_ANY, "ngx.*")          \
    X(REQ, FN, "ngx.req.get_uri_args", get_uri_args, req_get_uri_args, DC_APH_ANY, "ngx.*")    \
    X(REQ, FN, "ngx.req.set_uri_args", set_uri_args, req_set_uri_args, DC_APH_ANY, "ngx.*")    \
    X(REQ, FN, "ngx.req.set_uri", set_uri, req_set_uri, DC_APH_REWRITE, "ngx.*")               \
    X(REQ, FN, "ngx.req.start_time", start_time, req_start_time, DC_APH_ANY, "ngx.*")          \
    X(REQ, FN, "ngx.req.http_version", http_version, req_http_version, DC_APH_NOBODY, "ngx.*") \
    X(REQ, FN, "ngx.req.is_internal", is_internal, req_is_internal, DC_APH_ANY, "ngx.*")       \
    X(REQ, FN, "ngx.req.set_method", set_method, req_set_method, DC_APH_EXIT, "ngx.*")         \
    X(OUTPUT, FN, "ngx.exit", exit, ngx_exit, DC_APH_EXIT, "ngx.*")                            \
    X(OUTPUT, FN, "ngx.redirect", redirect, ngx_redirect, DC_APH_OUTPUT, "ngx.*")              \
    X(OUTPUT, FN, "ngx.say", say, ngx_say, DC_APH_OUTPUT, "ngx.*")                             \
    X(OUTPUT, FN, "ngx.print", print, ngx_print, DC_APH_OUTPUT, "ngx.*")                       \
    X(OUTPUT, FN, "ngx.flush", flush, ngx_flush, DC_APH_OUTPUT, "ngx.*")                       \
    X(OUTPUT, FN, "ngx.send_headers", send_headers, ngx_send_headers, DC_APH_OUTPUT, "ngx.*")  \
    X(OUTPUT, FN, "ngx.eof", eof, ngx_eof, DC_APH_OUTPUT, "ngx.*")                             \
    X(ARG, OWN, "ngx.arg", arg, ngx_arg, DC_APH_BODY, "ngx.*")                                 \
    X(CTX, OWN, "ngx.ctx", ctx, ngx_ctx, DC_APH_ANY, "ngx.*")                                  \
    X(LOG, FN, "ngx.log", log, ngx_log, DC_APH_ANY, "ngx.*")                                   \
    X(LOG, OWN, "print", print, print, DC_APH_ANY, "print")                                    \
    X(TIME, FN, "ngx.now", now, ngx_now, DC_APH_ANY, "ngx.*")                                  \
    X(TIME, FN, "ngx.time", time, ngx_time, DC_APH_ANY, "ngx.*")                               \
    X(TIME, FN, "ngx.today", today, ngx_today, DC_APH_ANY, "ngx.*")                            \
    X(TIME, FN, "ngx.http_time", http_time, ngx_http_time, DC_APH_ANY, "ngx.*")                \
    X(TIME, FN, "ngx.get_phase", get_phase, ngx_get_phase, DC_APH_ANY, "ngx.*")                \
    X(TIME, OWN, "ngx.worker.pid", pid, worker_pid, DC_APH_ANY, "ngx.*")                       \
    X(TIME, OWN, "ngx.worker.id", id, worker_id, DC_APH_ANY, "ngx.*")                          \
    X(TIME, FN, "ngx.localtime", localtime, ngx_localtime, DC_APH_ANY, "ngx.*")                \
    X(TIME, FN, "ngx.utctime", utctime, ngx_utctime, DC_APH_ANY, "ngx.*")                      \
    X(TIME, FN, "ngx.update_time", update_time, ngx_update_time, DC_APH_ANY, "ngx.*")          \
    X(TIME, FN, "ngx.sleep", sleep, ngx_sleep, DC_APH_OUTPUT, "ngx.*")                         \
    X(TIME, FN, "ngx.cookie_time", cookie_time, ngx_cookie_time, DC_APH_ANY, "ngx.*")          \
    X(TIME, FN, "ngx.parse_http_time", parse_http_time, ngx_parse_http_time, DC_APH_ANY, "ngx.*") \
    X(TIME, OWN, "ngx.worker.count", count, worker_count, DC_APH_ANY, "ngx.*")                 \
    X(TIME, OWN, "ngx.worker.exiting", exiting, worker_exiting, DC_APH_ANY, "ngx.*")           \
    X(TIME, OWN, "ngx.config", config, ngx_config, DC_APH_ANY, "ngx.*")                        \
    X(RE, FN, "ngx.re.match", match, re_match, DC_APH_ANY, "ngx.*")                            \
    X(RE, FN, "ngx.re.find", find, re_find, DC_APH_ANY, "ngx.*")                               \
    X(RE, FN, "ngx.re.gmatch", gmatch, re_gmatch, DC_APH_ANY, "ngx.*")                         \
    X(RE, FN, "ngx.re.sub", sub, re_sub, DC_APH_ANY, "ngx.*")                                  \
    X(RE, FN, "ngx.re.gsub", gsub, re_gsub, DC_APH_ANY, "ngx.*")                               \
    X(CODEC, FN, "ngx.encode_base64", encode_base64, ngx_encode_base64, DC_APH_ANY, "ngx.*")   \
    X(CODEC, FN, "ngx.decode_base64", decode_base64, ngx_decode_base64, DC_APH_ANY, "ngx.*")   \
    X(CODEC, FN, "ngx.md5", md5, ngx_md5, DC_APH_ANY, "ngx.*")                                 \
    X(CODEC, FN, "ngx.md5_bin", md5_bin, ngx_md5_bin, DC_APH_ANY, "ngx.*")                     \
    X(CODEC, FN, "ngx.sha1_bin", sha1_bin, ngx_sha1_bin, DC_APH_ANY, "ngx.*")                  \
    X(CODEC, FN, "ngx.crc32_long", crc32_long, ngx_crc32_long, DC_APH_ANY, "ngx.*")            \
    X(CODEC, FN, "ngx.escape_uri", escape_uri, ngx_escape_uri, DC_APH_ANY, "ngx.*")            \
    X(CODEC, FN, "ngx.unescape_uri", unescape_uri, ngx_unescape_uri, DC_APH_ANY, "ngx.*")      \
    X(CODEC, FN, "ngx.encode_args", encode_args, ngx_encode_args, DC_APH_ANY, "ngx.*")         \
    X(CODEC, FN, "ngx.decode_args", decode_args, ngx_decode_args, DC_APH_ANY, "ngx.*")         \
    X(CODEC, FN, "ngx.crc32_short", crc32_short, ngx_crc32_short, DC_APH_ANY, "ngx.*")         \
    X(CODEC, FN, "ngx.hmac_sha1", hmac_sha1, ngx_hmac_sha1, DC_APH_ANY, "ngx.*")               \
    X(CODEC, FN, "ngx.quote_sql_str", quote_sql_str, ngx_quote_sql_str, DC_APH_ANY, "ngx.*")   \
    X(CONSTS, OWN, "ngx.null", null, ngx_null, DC_APH_ANY, "ngx.*")                            \
    X(SHARED, OWN, "ngx.shared", shared, ngx_shared, DC_APH_ANY, "ngx.*")                      \
    X(JSON, FN, "json.encode", encode, json_encode, DC_APH_ANY, "json.*")                      \
    X(JSON, FN, "json.decode", decode, json_decode, DC_APH_ANY, "json.*")                      \
    X(JSON, OWN, "json.null", null, json_null, DC_APH_ANY, "json.*")                           \
    X(BASE, GLOBAL, "assert", assert, assert, DC_APH_ANY, "assert")                            \
    X(BASE, GLOBAL, "error", error, error, DC_APH_ANY, "error")                                \
    X(BASE, GLOBAL, "ipairs", ipairs, ipairs, DC_APH_ANY, "ipairs")                            \
    X(BASE, GLOBAL, "next", next, next, DC_APH_ANY, "next")                                    \
    X(BASE, GLOBAL, "pairs", pairs, pairs, DC_APH_ANY, "pairs")                                \
    X(BASE, GLOBAL, "pcall", pcall, pcall, DC_APH_ANY, "pcall")                                \
    X(BASE, GLOBAL, "xpcall", xpcall, xpcall, DC_APH_ANY, "xpcall")                            \
    X(BASE, GLOBAL, "select", select, select, DC_APH_ANY, "select")                            \
    X(BASE, GLOBAL, "tonumber", tonumber, tonumber, DC_APH_ANY, "tonumber")                    \
    X(BASE, GLOBAL, "tostring", tostring, tostring, DC_APH_ANY, "tostring")                    \
    X(BASE, GLOBAL, "type", type, type, DC_APH_ANY, "type")                                    \
    X(BASE, GLOBAL, "unpack", unpack, unpack, DC_APH_ANY, "unpack")                            \
    X(BASE, GLOBAL, "rawequal", rawequal, rawequal, DC_APH_ANY, "rawequal")                    \
    X(BASE, GLOBAL, "rawget", rawget, rawget, DC_APH_ANY, "rawget")                            \
    X(BASE, GLOBAL, "rawset", rawset, rawset, DC_APH_ANY, "rawset")                            \
    X(BASE, GLOBAL, "setmetatable", setmetatable, setmetatable, DC_APH_ANY, "setmetatable")    \
    X(BASE, GLOBAL, "getmetatable", getmetatable, getmetatable, DC_APH_ANY, "getmetatable")    \
    X(BASE, OWN, "collectgarbage", collectgarbage, collectgarbage, DC_APH_ANY, "collectgarbage") \
    X(LIB, LIB, "string.*", string, lib_string, DC_APH_ANY, "string.*")                        \
    X(LIB, LIB, "table.*", table, lib_table, DC_APH_ANY, "table.*")                            \
    X(LIB, LIB, "math.*", math, lib_math, DC_APH_ANY, "math.*")                                \
    X(LIB, LIB, "bit.*", bit, lib_bit, DC_APH_ANY, "bit.*")                                    \
    X(LIB, LIB, "coroutine.*", coroutine, lib_coroutine, DC_APH_ANY, "coroutine.*")            \
    X(OS, OWN, "os.time", time, os_time, DC_APH_ANY, "os.time")                                \
    X(OS, OWN, "os.clock", clock, os_clock, DC_APH_ANY, "os.clock")                            \
    X(OS, OWN, "os.date", date, os_date, DC_APH_ANY, "os.date")                                \
    /* the request body: read in rewrite, access and content; what was read stays readable in \
     * log as in OpenResty */                                                                  \
    X(REQ, FN, "ngx.req.read_body", read_body, req_read_body, DC_APH_OUTPUT, "ngx.*")          \
    X(REQ, FN, "ngx.req.get_body_data", get_body_data, req_get_body_data,                      \
      DC_APH_OUTPUT | 0x20u, "ngx.*")                                                          \
    X(REQ, FN, "ngx.req.get_post_args", get_post_args, req_get_post_args,                      \
      DC_APH_OUTPUT | 0x20u, "ngx.*")

/* The phases of the entry whose fn is `fn` (an enum constant, usable in a phase check). */
#define DC_API_PHASE_ENUM(area, kind, path, field, fn, phases, allow) DC_APH_##fn##_ = (phases),
enum dc_api_phases { DC_API_TABLE(DC_API_PHASE_ENUM) DC_APH_END_ };
#undef DC_API_PHASE_ENUM
#define DC_API_PHASES(fn) ((unsigned)DC_APH_##fn##_)

/* DC_API_REG_IF(WANT, area, kind, field, fn): `{"field", fn},` when area is WANT and kind is
 * FN, nothing otherwise; an area builds its luaL_Reg array with it:
 *   #define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(REQ, area, kind, field, fn)
 *   static const luaL_Reg fns[] = {DC_API_TABLE(REG) {NULL, NULL}};
 * Equality of two area names works by probing: DC_API_IS_<A>_<A> expands to two tokens, any
 * other pasting to one, and the second of the arguments is the answer. */
#define DC_API_CAT_(a, b) a##b
#define DC_API_CAT(a, b) DC_API_CAT_(a, b)
#define DC_API_SECOND_(a, b, ...) b
#define DC_API_SECOND(...) DC_API_SECOND_(__VA_ARGS__)
#define DC_API_PROBE ~, 1
#define DC_API_SAME(want, area) DC_API_SECOND(DC_API_CAT(DC_API_IS_##want##_, area), 0, ~)
#define DC_API_KIND_FN(field, fn) {#field, fn},
#define DC_API_KIND_OWN(field, fn)
#define DC_API_KIND_GLOBAL(field, fn)
#define DC_API_KIND_LIB(field, fn)
#define DC_API_PICK_1(kind, field, fn) DC_API_KIND_##kind(field, fn)
#define DC_API_PICK_0(kind, field, fn)
#define DC_API_PICK_(on, kind, field, fn) DC_API_PICK_##on(kind, field, fn)
#define DC_API_PICK(on, kind, field, fn) DC_API_PICK_(on, kind, field, fn)
#define DC_API_REG_IF(want, area, kind, field, fn) \
    DC_API_PICK(DC_API_SAME(want, area), kind, field, fn)

#define DC_API_IS_OUTPUT_OUTPUT DC_API_PROBE
#define DC_API_IS_VAR_VAR DC_API_PROBE
#define DC_API_IS_HEADER_HEADER DC_API_PROBE
#define DC_API_IS_REQ_REQ DC_API_PROBE
#define DC_API_IS_CTX_CTX DC_API_PROBE
#define DC_API_IS_ARG_ARG DC_API_PROBE
#define DC_API_IS_LOG_LOG DC_API_PROBE
#define DC_API_IS_TIME_TIME DC_API_PROBE
#define DC_API_IS_CONSTS_CONSTS DC_API_PROBE
#define DC_API_IS_RE_RE DC_API_PROBE
#define DC_API_IS_CODEC_CODEC DC_API_PROBE
#define DC_API_IS_SHARED_SHARED DC_API_PROBE
#define DC_API_IS_JSON_JSON DC_API_PROBE
#define DC_API_IS_BASE_BASE DC_API_PROBE
#define DC_API_IS_LIB_LIB DC_API_PROBE
#define DC_API_IS_OS_OS DC_API_PROBE

/* DC_API_WHEN(WANT, area, tokens...): the tokens when area is WANT, nothing otherwise. */
#define DC_API_WHEN_1(...) __VA_ARGS__
#define DC_API_WHEN_0(...)
#define DC_API_WHEN__(on, ...) DC_API_WHEN_##on(__VA_ARGS__)
#define DC_API_WHEN_(on, ...) DC_API_WHEN__(on, __VA_ARGS__)
#define DC_API_WHEN(want, area, ...) DC_API_WHEN_(DC_API_SAME(want, area), __VA_ARGS__)

/* X(NAME, value): integer constants of the ngx table, as lua-nginx-module defines them; the
 * dotted path is "ngx." #NAME. Core constants, HTTP methods and statuses: the CONSTS area;
 * log levels: the LOG area. */
#define DC_API_CORE_CONSTS(C) \
    C(OK, 0) C(ERROR, -1) C(AGAIN, -2) C(DONE, -4) C(DECLINED, -5)

#define DC_API_LOG_LEVELS(C)                                                        \
    C(STDERR, 0) C(EMERG, 1) C(ALERT, 2) C(CRIT, 3) C(ERR, 4) C(WARN, 5) C(NOTICE, 6) \
    C(INFO, 7) C(DEBUG, 8)

#define DC_API_METHOD_CONSTS(C)                                                        \
    C(HTTP_GET, 2) C(HTTP_HEAD, 4) C(HTTP_POST, 8) C(HTTP_PUT, 16) C(HTTP_DELETE, 32)  \
    C(HTTP_MKCOL, 64) C(HTTP_COPY, 128) C(HTTP_MOVE, 256) C(HTTP_OPTIONS, 512)         \
    C(HTTP_PROPFIND, 1024) C(HTTP_PROPPATCH, 2048) C(HTTP_LOCK, 4096)                  \
    C(HTTP_UNLOCK, 8192) C(HTTP_PATCH, 16384) C(HTTP_TRACE, 32768)

#define DC_API_STATUS_CONSTS(C)                                                          \
    C(HTTP_CONTINUE, 100) C(HTTP_SWITCHING_PROTOCOLS, 101) C(HTTP_OK, 200)               \
    C(HTTP_CREATED, 201) C(HTTP_ACCEPTED, 202) C(HTTP_NO_CONTENT, 204)                   \
    C(HTTP_PARTIAL_CONTENT, 206) C(HTTP_SPECIAL_RESPONSE, 300)                           \
    C(HTTP_MOVED_PERMANENTLY, 301) C(HTTP_MOVED_TEMPORARILY, 302) C(HTTP_SEE_OTHER, 303) \
    C(HTTP_NOT_MODIFIED, 304) C(HTTP_TEMPORARY_REDIRECT, 307)                            \
    C(HTTP_PERMANENT_REDIRECT, 308) C(HTTP_BAD_REQUEST, 400) C(HTTP_UNAUTHORIZED, 401)   \
    C(HTTP_PAYMENT_REQUIRED, 402) C(HTTP_FORBIDDEN, 403) C(HTTP_NOT_FOUND, 404)          \
    C(HTTP_NOT_ALLOWED, 405) C(HTTP_NOT_ACCEPTABLE, 406) C(HTTP_REQUEST_TIMEOUT, 408)    \
    C(HTTP_CONFLICT, 409) C(HTTP_GONE, 410) C(HTTP_UPGRADE_REQUIRED, 426)                \
    C(HTTP_TOO_MANY_REQUESTS, 429) C(HTTP_CLOSE, 444) C(HTTP_ILLEGAL, 451)               \
    C(HTTP_INTERNAL_SERVER_ERROR, 500) C(HTTP_NOT_IMPLEMENTED, 501)                      \
    C(HTTP_METHOD_NOT_IMPLEMENTED, 501) C(HTTP_BAD_GATEWAY, 502)                         \
    C(HTTP_SERVICE_UNAVAILABLE, 503) C(HTTP_GATEWAY_TIMEOUT, 504)                        \
    C(HTTP_VERSION_NOT_SUPPORTED, 505) C(HTTP_INSUFFICIENT_STORAGE, 507)

/* Constants by area. */
#define DC_API_CONSTS_AREA_CONSTS(C) \
    DC_API_CORE_CONSTS(C) DC_API_METHOD_CONSTS(C) DC_API_STATUS_CONSTS(C)
#define DC_API_CONSTS(C) DC_API_CONSTS_AREA_CONSTS(C) DC_API_LOG_LEVELS(C)

#define DC_API_CONST_PATH(name, value) "ngx." #name

#endif /* DC_API_TABLE_H */
