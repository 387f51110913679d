/* api_names.h - the plugin API as X-macro lists: every dotted name the api_*.c files
 * register (read by the policy checker, kept in sync by tests/unit/test_api_names.c), and the
 * constants, from which api_consts.c and api_log.c register their values.
 */
#ifndef DC_API_NAMES_H
#define DC_API_NAMES_H

/* X(path): functions, tables and properties registered by the api_*.c files. */
#define DC_API_NAMES(X)                                                                    \
    /* api_var.c, api_header.c */                                                          \
    X("ngx.var") X("ngx.header") X("ngx.status")                                           \
    /* api_req.c */                                                                        \
    X("ngx.req.get_headers") X("ngx.req.set_header") X("ngx.req.clear_header")            \
    X("ngx.req.get_method") X("ngx.req.get_uri_args") X("ngx.req.set_uri_args")           \
    X("ngx.req.set_uri")                                                                   \
    /* api_output.c, api_arg.c, api_ctx.c */                                               \
    X("ngx.exit") X("ngx.redirect") X("ngx.say") X("ngx.print") X("ngx.flush")            \
    X("ngx.arg") X("ngx.ctx")                                                              \
    /* api_log.c (print is a global, opened by env.c) */                                   \
    X("ngx.log") X("print")                                                                \
    /* api_time.c */                                                                       \
    X("ngx.now") X("ngx.time") X("ngx.today") X("ngx.http_time") X("ngx.get_phase")       \
    X("ngx.worker.pid") X("ngx.worker.id")                                                 \
    /* api_re.c */                                                                         \
    X("ngx.re.match") X("ngx.re.find") X("ngx.re.gmatch") X("ngx.re.sub") X("ngx.re.gsub") \
    /* api_codec.c */                                                                      \
    X("ngx.encode_base64") X("ngx.decode_base64") X("ngx.md5") X("ngx.md5_bin")           \
    X("ngx.sha1_bin") X("ngx.crc32_long") X("ngx.escape_uri") X("ngx.unescape_uri")       \
    X("ngx.encode_args") X("ngx.decode_args")                                              \
    /* api_json.c */                                                                       \
    X("json.encode") X("json.decode") X("json.null")

/* C(NAME, value): integer constants of the ngx table, as lua-nginx-module defines them.
 * Their dotted path is "ngx." #NAME (DC_API_CONST_PATH). */
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

/* Every constant (all of them live in the ngx table). */
#define DC_API_CONSTS(C) \
    DC_API_CORE_CONSTS(C) DC_API_LOG_LEVELS(C) DC_API_METHOD_CONSTS(C) DC_API_STATUS_CONSTS(C)

#define DC_API_CONST_PATH(name, value) "ngx." #name

/* X(path): the Lua names env.c provides (base functions and libraries); "NAME.*" covers a table. */
#define DC_API_LUA_NAMES(X)                                                                \
    X("assert") X("error") X("ipairs") X("next") X("pairs") X("pcall") X("xpcall")         \
    X("select") X("tonumber") X("tostring") X("type") X("unpack") X("rawequal")            \
    X("rawget") X("rawset") X("setmetatable") X("getmetatable") X("collectgarbage")        \
    X("string.*") X("table.*") X("math.*") X("bit.*") X("coroutine.*") X("os.time")        \
    X("os.clock") X("os.date")

#endif /* DC_API_NAMES_H */
