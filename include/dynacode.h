/* dynacode.h - the public API of libdynacode.
 *
 * libdynacode validates and compiles bundles of Lua plugins (the lua-resty-dynacode API format),
 * matches them to hosts and runs them per request phase in sandboxed LuaJIT states. It knows
 * nothing of nginx: a host (the nginx module, the `dynacode` command, the tests) hands it a table
 * of callbacks (dc_host) that give access to the request being served.
 *
 * Conventions: every handle is opaque and created/freed in pairs; functions that can fail return
 * a dc_rc and write the detail into a caller-provided buffer; strings passed in are copied unless
 * said otherwise; strings handed back stay owned by the object they come from.
 */
#ifndef DYNACODE_H
#define DYNACODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DC_API __attribute__((visibility("default")))
#else
#define DC_API
#endif

/* ---- error codes ----
 * Every function of the library that can fail returns one of these. The list is the only
 * place a code is defined: the enum, dc_strerror and dc_rc_name are generated from it. A value
 * is never reused: a code that goes away leaves a hole.
 *
 * X(CODE, value, name, text)
 *   DC_OK        nothing went wrong
 *   DC_ENOMEM    an allocation failed; the operation had no effect
 *   DC_EINVAL    the host passed a bad argument (NULL handle, wrong size, misuse of a call)
 *   DC_EJSON     the text is not JSON (bundle, policy)
 *   DC_EBUNDLE   JSON, but not a usable bundle: structure, types, or nothing published yet
 *   DC_ECOMPILE  a plugin does not compile
 *   DC_EIO       reading or writing a file failed (the detail names the file and errno)
 *   DC_EPOLICY   the policy is refused or unusable
 *   DC_ELIMIT    a size or count limit was exceeded (bundle limits, store slot size)
 *   DC_ELUA      the Lua runtime failed (state creation, load)
 *   DC_EBUSY     someone else holds what was needed (a lock not taken in time, or lost to
 *                another writer); trying again later may succeed
 *   DC_ECORRUPT  shared or stored data fails its checks (checksum, header, layout): not the
 *                caller's fault, and trying again reads the same bytes
 *   DC_ETHREAD   a thread could not be started
 *   DC_ESIG      a signature is missing, malformed or does not verify with any trusted key
 */
#define DC_RC_LIST(X)                                                                 \
    X(DC_OK, 0, "ok", "ok")                                                           \
    X(DC_ENOMEM, 1, "enomem", "out of memory")                                        \
    X(DC_EINVAL, 2, "einval", "invalid argument")                                     \
    X(DC_EJSON, 3, "ejson", "not JSON")                                               \
    X(DC_EBUNDLE, 4, "ebundle", "unusable bundle")                                    \
    X(DC_ECOMPILE, 5, "ecompile", "does not compile")                                 \
    X(DC_EIO, 6, "eio", "input/output error")                                         \
    X(DC_EPOLICY, 7, "epolicy", "policy error")                                       \
    X(DC_ELIMIT, 8, "elimit", "over a limit")                                         \
    X(DC_ELUA, 9, "elua", "Lua runtime error")                                        \
    X(DC_EBUSY, 10, "ebusy", "busy: held by someone else")                            \
    X(DC_ECORRUPT, 11, "ecorrupt", "corrupt data")                                    \
    X(DC_ETHREAD, 12, "ethread", "cannot start a thread")                             \
    X(DC_ESIG, 13, "esig", "signature refused")

typedef enum dc_rc {
#define DC_RC_ENUM(code, value, name, text) code = value,
    DC_RC_LIST(DC_RC_ENUM)
#undef DC_RC_ENUM
} dc_rc;

/* The text of rc ("out of memory"); "unknown error" for a value not in the list. */
DC_API const char *dc_strerror(dc_rc rc);
/* The short name of rc ("enomem"); "unknown" for a value not in the list. */
DC_API const char *dc_rc_name(dc_rc rc);

/* ---- phases ---- */
typedef enum dc_phase {
    DC_PHASE_REWRITE = 0,
    DC_PHASE_ACCESS,
    DC_PHASE_CONTENT,
    DC_PHASE_HEADER_FILTER,
    DC_PHASE_BODY_FILTER,
    DC_PHASE_LOG,
    DC_PHASE_COUNT
} dc_phase;

DC_API const char *dc_phase_name(dc_phase phase);
/* Returns 0 and sets *out when name (len bytes) is a phase name, -1 otherwise. */
DC_API int dc_phase_parse(const char *name, size_t len, dc_phase *out);

/* ---- events: the original's names, then dynacode's own ---- */
/* How much an event matters to an operator: decided by the library, mapped by a host to its own
 * log levels. DC_SEV_USUAL is only for emitters (the event's usual severity, from the list
 * below); subscribers always see one of the others. */
typedef enum dc_severity {
    DC_SEV_USUAL = 0,
    DC_SEV_DEBUG,
    DC_SEV_INFO,
    DC_SEV_NOTICE,
    DC_SEV_WARN,
    DC_SEV_ERROR
} dc_severity;

/* Every event: its id, its name (the original library's), and how much it usually matters to
 * an operator (dc_severity; an emitter may say otherwise for one occurrence). */
#define DC_EVENT_LIST(X)                                                       \
    X(BG_CACHE_MISS, "bg_cache_miss", DC_SEV_NOTICE)                           \
    X(BG_CACHE_HIT, "bg_cache_hit", DC_SEV_NOTICE)                             \
    X(BG_FETCH_API_GENERIC_ERROR, "bg_fetch_api_generic_error", DC_SEV_ERROR)  \
    X(BG_FETCH_API_STATUS_CODE_ERROR, "bg_fetch_api_status_code_error", DC_SEV_ERROR) \
    X(BG_FETCH_API_SUCCESS, "bg_fetch_api_success", DC_SEV_NOTICE)             \
    X(BG_COMPILE_ERROR, "bg_compile_error", DC_SEV_WARN)                       \
    X(BG_COMPILE_SUCCESS, "bg_compile_success", DC_SEV_NOTICE)                 \
    X(BG_UPDATED_PLUGINS, "bg_updated_plugins", DC_SEV_NOTICE)                 \
    X(BG_DIDNT_UPDATE_PLUGINS, "bg_didnt_update_plugins", DC_SEV_WARN)         \
    X(RT_PLUGINS_NOT_LOADED, "rt_plugins_not_loaded", DC_SEV_NOTICE)           \
    X(RT_PLUGINS_DISABLED, "rt_plugins_disabled", DC_SEV_NOTICE)               \
    X(RT_PLUGINS_STARTING, "rt_plugins_starting", DC_SEV_NOTICE)               \
    X(RT_PLUGINS_DONE, "rt_plugins_done", DC_SEV_NOTICE)                       \
    X(RT_PLUGINS_ERROR, "rt_plugins_error", DC_SEV_NOTICE)                     \
    X(ON_ERROR, "on_error", DC_SEV_ERROR)                                      \
    X(RT_PLUGINS_QUOTA, "rt_plugins_quota", DC_SEV_NOTICE)                     \
    X(RT_PLUGINS_QUARANTINED, "rt_plugins_quarantined", DC_SEV_WARN)           \
    X(BG_FETCH_NOT_MODIFIED, "bg_fetch_not_modified", DC_SEV_NOTICE)           \
    X(BG_OFFLINE_LOADED, "bg_offline_loaded", DC_SEV_NOTICE)

typedef enum dc_event {
#define DC_EVENT_ENUM(id, name, sev) DC_EV_##id,
    DC_EVENT_LIST(DC_EVENT_ENUM)
#undef DC_EVENT_ENUM
    DC_EVENT_COUNT
} dc_event;

DC_API const char *dc_event_name(dc_event ev);

/* What an event carries. Pointers are valid for the duration of the callback only. */
typedef struct dc_event_info {
    dc_event event;
    const char *domain;   /* NULL when not about a domain */
    const char *plugin;   /* NULL when not about a plugin */
    int phase;            /* a dc_phase, or -1 */
    const char *message;  /* reason or detail, or NULL */
    int status;           /* an HTTP status where relevant (API answer, exit), else 0 */
    uint64_t count;       /* a count where relevant (plugins loaded, ...), else 0 */
    dc_severity severity; /* emitters: DC_SEV_USUAL or a severity of their own for this one */
} dc_event_info;

typedef void (*dc_event_cb)(void *ud, const dc_event_info *info);

/* An event hub: counters for every event and the callbacks a host registered. One hub can be
 * shared by an engine and a poller. counters may point at DC_EVENT_COUNT 64-bit slots that the
 * host provides (for example in shared memory, updated atomically); NULL uses the hub's own. */
typedef struct dc_events dc_events;
DC_API dc_rc dc_events_new(uint64_t *counters, dc_events **out);
DC_API void dc_events_free(dc_events *ev);
/* Registers cb for the events whose bit (1ull << ev) is set in mask. At most 16 callbacks. */
DC_API dc_rc dc_events_subscribe(dc_events *ev, uint64_t mask, dc_event_cb cb, void *ud);
DC_API void dc_events_emit(dc_events *ev, const dc_event_info *info);
DC_API uint64_t dc_events_count(const dc_events *ev, dc_event which);

/* ---- limits on bundles (policy can lower or raise them) ---- */
typedef struct dc_limits {
    size_t max_bundle_bytes;  /* whole JSON text (default 8 MiB) */
    uint32_t max_domains;     /* default 20000 */
    uint32_t max_plugins;     /* entries of every domain (objects and id references) plus the
                                 shared list (default 20000) */
    size_t max_code_bytes;    /* one plugin's source (default 64 KiB) */
    uint32_t max_name_bytes;  /* domain and plugin names (default 256) */
    /* What else a hostile bundle could make costly (each checked before it costs anything;
     * 0 in one of these, or in max_name_bytes, gets its default): */
    uint32_t max_plugins_per_domain;     /* entries of one domain's "plugins", ids included
                                            (default 1000) */
    uint32_t max_skip_domains;           /* general.skip_domains entries (default 1000) */
    uint32_t max_pattern_bytes;          /* one domain or skip_domains regex (default 256) */
    uint32_t max_pattern_compiled_bytes; /* one regex compiled, JIT code included (16 KiB) */
    size_t max_patterns_total_bytes;     /* every regex of the bundle, compiled (32 MiB) */
} dc_limits;

DC_API void dc_limits_default(dc_limits *limits);

/* ---- quotas for one plugin call ---- */
typedef struct dc_quota {
    uint64_t instructions;  /* VM instructions per call (0: unlimited) */
    uint32_t time_ms;       /* wall clock per call (0: unlimited) */
    uint32_t memory_kb;     /* the plugin state's memory, held between calls too (0: unlimited) */
} dc_quota;

DC_API void dc_quota_default(dc_quota *quota);

/* ---- policy (policy/README.md): local, authoritative over the remote bundle ---- */
typedef struct dc_policy dc_policy;

/* Loads a policy file. On failure err names the file, the JSON path of the key and the reason,
 * e.g. "policy/x.json: api.deny[2]: unknown API name \"ngx.sayy\"". */
DC_API dc_rc dc_policy_load_file(const char *path, dc_policy **out, char *err, size_t errlen);
/* Same from memory; name is used in messages in place of the file name. */
DC_API dc_rc dc_policy_load(const char *json, size_t len, const char *name, dc_policy **out,
                            char *err, size_t errlen);
/* The built-in default policy (policy/default.json, compiled in). */
DC_API dc_rc dc_policy_default(dc_policy **out, char *err, size_t errlen);
DC_API void dc_policy_free(dc_policy *p);
/* The limits on the bundle that the policy sets. */
DC_API void dc_policy_limits(const dc_policy *p, dc_limits *out);

/* ---- shared dictionaries (ngx.shared.NAME): declared by the policy ("shared_dicts") ---- */
typedef struct dc_shdicts dc_shdicts;
/* The bytes of the region that holds the dictionaries p declares (0: it declares none). */
DC_API size_t dc_policy_shdicts_size(const dc_policy *p);
/* Formats (init: one process, once) or attaches a region of size bytes, 8-byte aligned, for
 * the dictionaries p declares; every process attached to the same region sees the same
 * entries. *out is NULL (and DC_OK) when p declares none. The region must outlive the handle,
 * and the engine given the handle must run under the same policy. */
DC_API dc_rc dc_shdicts_open(void *region, size_t size, int init, const dc_policy *p,
                             dc_shdicts **out, char *err, size_t errlen);
DC_API void dc_shdicts_close(dc_shdicts *s); /* frees the handle, not the region */

/* ---- bundles ---- */
typedef struct dc_bundle dc_bundle;

typedef enum dc_problem_kind {
    DC_PROBLEM_PLUGIN_LEFT_OUT = 1,  /* that plugin will not run */
    DC_PROBLEM_DOMAIN_LEFT_OUT = 2,  /* that domain (all its plugins) will not run */
    DC_PROBLEM_KEPT_PREVIOUS = 3,    /* the new version was refused; the previous one stays */
    DC_PROBLEM_UNKNOWN_FIELD = 4     /* ignored at run time; reported by `dynacode check` */
} dc_problem_kind;

typedef struct dc_problem {
    dc_problem_kind kind;
    const char *path;     /* JSON path, 0-based: "domains[3].plugins[1].phase" */
    const char *domain;   /* domain name, or NULL */
    const char *plugin;   /* plugin name, or NULL */
    const char *message;  /* the reason */
} dc_problem;

/* Parses, validates and compiles a bundle. On DC_OK, *out is a new bundle with one reference,
 * possibly with problems (plugins or domains left out). Any other code means the bundle is
 * unusable as a whole; err (errlen bytes, may be NULL) then says why, naming the JSON path.
 * previous (may be NULL) is the bundle in force: a plugin of the same domain and name that is
 * refused now keeps its previous version. */
DC_API dc_rc dc_bundle_load(const char *json, size_t len, const dc_limits *limits,
                            const dc_bundle *previous, dc_bundle **out, char *err, size_t errlen);
DC_API dc_bundle *dc_bundle_ref(dc_bundle *b);
DC_API void dc_bundle_unref(dc_bundle *b);

DC_API int dc_bundle_enabled(const dc_bundle *b);
DC_API uint32_t dc_bundle_domain_count(const dc_bundle *b);
DC_API uint32_t dc_bundle_plugin_count(const dc_bundle *b); /* plugins loaded ("skip" ones too) */
/* Problems kept in the bundle (the first DC_BUNDLE_PROBLEMS_KEPT at most). */
DC_API uint32_t dc_bundle_problem_count(const dc_bundle *b);
/* Every problem met, kept or not; *left_out (may be NULL) gets those that are not mere
 * warnings (unknown fields). */
DC_API uint32_t dc_bundle_problem_total(const dc_bundle *b, uint32_t *left_out);
/* general.version: returns 1 and sets *version when the bundle has one; 0 (and *version 0)
 * when it has none, which the rollback guard counts as version 0. */
DC_API int dc_bundle_version(const dc_bundle *b, int64_t *version);
#define DC_BUNDLE_PROBLEMS_KEPT 100
DC_API const dc_problem *dc_bundle_problem(const dc_bundle *b, uint32_t i);

/* ---- the host interface: how the library reaches the request being served ----
 * Every callback receives the host's request pointer (hreq). The library copies what a callback
 * hands it before making another call, so strings need only stay valid until the callback
 * returns (var_get) or the next callback (each_*). Return values: 0 success, -1 failure.
 * Optional callbacks may be NULL; the API that needs them then raises an error. */
typedef struct dc_str {
    const char *data;
    size_t len;
} dc_str;

typedef int (*dc_each_header_cb)(void *arg, dc_str name, dc_str value); /* nonzero stops */
typedef int (*dc_each_value_cb)(void *arg, dc_str value);               /* nonzero stops */

typedef struct dc_host {
    /* ngx.var.NAME: 1 and *val when set, 0 when not found (nil), -1 on error; the library
     * passes the name lowercased, as nginx hashes variable names */
    int (*var_get)(void *hreq, dc_str name, dc_str *val);
    /* ngx.var.NAME = v: 0, or -1 when that variable cannot be changed; val.data NULL unsets */
    int (*var_set)(void *hreq, dc_str name, dc_str val);
    /* request headers in arrival order */
    int (*req_headers)(void *hreq, dc_each_header_cb each, void *arg);
    /* replace all values of a request header; n == 0 removes it */
    int (*req_header_set)(void *hreq, dc_str name, const dc_str *values, size_t n);
    /* response headers: each value of name (case-insensitive) */
    int (*resp_header_get)(void *hreq, dc_str name, dc_each_value_cb each, void *arg);
    /* replace all values of a response header; n == 0 removes it; -1 after headers are sent */
    int (*resp_header_set)(void *hreq, dc_str name, const dc_str *values, size_t n);
    int (*status_get)(void *hreq);
    int (*status_set)(void *hreq, int status); /* -1 after headers are sent */
    int (*headers_sent)(void *hreq);
    /* ngx.say / ngx.print: append to the response body (sending headers first) */
    int (*output)(void *hreq, const char *data, size_t len);
    /* ngx.req.set_uri(uri, jump): optional */
    int (*set_uri)(void *hreq, dc_str uri, int jump);
    /* ngx.log: level is ngx's constant, 0 (STDERR) .. 8 (DEBUG); msg is not NUL-terminated */
    void (*log)(void *hreq, int level, const char *msg, size_t len);
    /* current time in seconds (ngx.now); NULL uses the system clock */
    double (*now)(void *hreq);
    /* worker pid and id for ngx.worker.*; NULL gives getpid() and 0 */
    int (*worker_id)(void *hreq);

    /* ---- request facts and the end of the output (all optional) ---- */
    /* when the request began, seconds since the epoch with milliseconds (ngx.req.start_time);
     * NULL gives the time of the plugin call */
    double (*start_time)(void *hreq);
    /* the request's HTTP version as nginx keeps it: major * 1000 + minor (9 for 0.9, 1001 for
     * 1.1), 0 when unknown (ngx.req.http_version); NULL reads $server_protocol */
    int (*http_version)(void *hreq);
    /* 1 for a subrequest or a request after an internal redirect (ngx.req.is_internal);
     * NULL gives 0 */
    int (*is_internal)(void *hreq);
    /* ngx.req.set_method: method is nginx's NGX_HTTP_* bit (as ngx.HTTP_GET...), name its
     * upper-case name ("GET"); 0, or -1 when the host refuses */
    int (*set_method)(void *hreq, int method, dc_str name);
    /* every response header as nginx will send it, those nginx keeps apart from its list
     * first (content-type, content-length, connection, transfer-encoding, named in lower case)
     * then the list in order (ngx.resp.get_headers); the strings stay valid until the next
     * callback into the host */
    int (*resp_headers)(void *hreq, dc_each_header_cb each, void *arg);
    /* ngx.send_headers: the header is sent, or as good as sent (headers_sent then says 1);
     * 0, or -1 on failure. NULL: the API sends an empty output instead */
    int (*send_headers)(void *hreq);
    /* ngx.eof: the header and the body so far go out with the end of the body; output is
     * refused afterwards. 0, or -1 on failure. NULL: ngx.eof is not available */
    int (*eof)(void *hreq);
    /* 1 once eof ran for the request (ngx.say, ngx.print, ngx.flush then give "seen eof");
     * NULL: never */
    int (*eof_seen)(void *hreq);
    /* ngx.worker.count(): the number of worker processes; NULL (or a value below 1) gives 1 */
    int (*worker_count)(void *hreq);
    /* ngx.worker.exiting(): nonzero once this worker has begun to shut down; NULL gives 0 */
    int (*worker_exiting)(void *hreq);

    /* ---- the request body (optional: NULL makes the ngx.req body functions unavailable) ----
     * read_body: ngx.req.read_body; the body is read (a host that reads it before the phase
     * only says so); 0, or -1 when it cannot be read here.
     * req_body: the body as read: -1 not read yet, 0 no body, 1 in memory in *data (valid
     * until the next callback), 2 read but not in memory (kept in a temporary file). */
    int (*read_body)(void *hreq);
    int (*req_body)(void *hreq, dc_str *data);
} dc_host;

/* ---- engine: one per process (nginx worker, command) ---- */
typedef struct dc_engine dc_engine;
typedef struct dc_store dc_store; /* the shared store, below */

/* What one plugin call came to, reported to the host after each call (trace, metrics). */
typedef enum dc_result {
    DC_RESULT_OK = 0,
    DC_RESULT_ERROR = 1,
    DC_RESULT_QUOTA_INSTRUCTIONS = 2,
    DC_RESULT_QUOTA_TIME = 3,
    DC_RESULT_QUOTA_MEMORY = 4,
    DC_RESULT_DENIED = 5
} dc_result;

DC_API const char *dc_result_name(dc_result r); /* "ok", "error", "quota:instructions", ... */

typedef struct dc_run_info {
    const char *plugin;
    const char *domain;
    dc_phase phase;
    dc_result result;
    double ms;            /* wall time of the call */
    const char *message;  /* error message, or a note such as "ngx.exit(403)"; may be NULL */
    int exit_status;      /* status given to ngx.exit/ngx.redirect, or -1 */
    void *hreq;           /* the host's request pointer, the one its callbacks receive */
} dc_run_info;

typedef void (*dc_run_cb)(void *ud, const dc_run_info *info);

/* The watchdog (the last line of defence): a call still running watchdog_grace_ms past its
 * time quota is stuck inside C, where no hook can stop it. The engine then calls the host's
 * callback (to mark the plugin quarantined where every process sees it), logs to standard
 * error, and ends the process with DC_WATCHDOG_EXIT, so that a fresh process takes over.
 * With a store in the engine's configuration, the engine itself marks the plugin quarantined
 * there (for the policy's quarantine duration, 300 s when it sets none) before the callback. */
#define DC_WATCHDOG_EXIT 86

typedef struct dc_watchdog_info {
    const char *domain;
    const char *plugin;
    uint64_t plugin_key;  /* the plugin's quarantine identity (name and code) */
    double overdue_ms;    /* how far past the deadline */
} dc_watchdog_info;

typedef void (*dc_watchdog_cb)(void *ud, const dc_watchdog_info *info);

/* Crash containment: installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGABRT and SIGILL
 * on an alternate signal stack. A fatal signal in the thread of a running plugin call marks that
 * plugin quarantined in the engine's store (when it has one), logs a line on standard error and
 * kills the process with the same signal; outside a plugin call the previous handler (or the
 * default action) runs as before. Process-wide; call once per process that runs plugins, after
 * any fork (an nginx worker: at its start). Idempotent. */
DC_API dc_rc dc_crash_guard_install(char *err, size_t errlen);

typedef struct dc_engine_config {
    const dc_host *host;       /* required; copied */
    dc_events *events;         /* optional; not owned */
    const dc_policy *policy;   /* quotas, API lists, on_error, quarantine; NULL: the built-in
                                  default. Not owned: it must outlive the engine. */
    uint32_t max_states;       /* live plugin states kept (LRU); 0: the policy's */
    uint32_t host_cache_size;  /* host match cache entries; 0 = default 4096 */
    uint64_t seed;             /* sampling PRNG seed; 0 = from the clock */
    uint32_t watchdog_grace_ms;/* 0: no watchdog thread */
    dc_watchdog_cb watchdog_cb;/* optional, called from the watchdog thread before the end */
    void *watchdog_ud;
    dc_store *store;           /* optional; not owned, must outlive the engine. When set,
                                  per-plugin metrics and quarantine live there, shared by every
                                  process attached to it; else quarantine is kept
                                  in the engine and no per-plugin metrics are kept. */
    dc_shdicts *shdicts;       /* optional; not owned: the policy's dictionaries (ngx.shared),
                                  opened with dc_shdicts_open for the same policy */
} dc_engine_config;

DC_API void dc_engine_config_default(dc_engine_config *cfg);
DC_API dc_rc dc_engine_new(const dc_engine_config *cfg, dc_engine **out, char *err, size_t errlen);
/* Frees the engine: every request begun on it must have ended. */
DC_API void dc_engine_free(dc_engine *e);
/* The first error the engine met since this was last called (a state that could not be made,
 * a shared snapshot refused, memory that ran out in a request): its code, DC_OK when none, and
 * its message in msg. Reading empties it, so the next error is kept again. */
DC_API dc_rc dc_engine_last_error(dc_engine *e, char *msg, size_t len);
/* Puts b in force for requests that begin from now on (takes a new reference; NULL unloads).
 * Plugin states whose bytecode did not change are kept. */
DC_API void dc_engine_set_bundle(dc_engine *e, dc_bundle *b);
DC_API dc_bundle *dc_engine_bundle(const dc_engine *e); /* borrowed; NULL before the first */
DC_API void dc_engine_on_run(dc_engine *e, dc_run_cb cb, void *ud);
/* As dc_engine_on_run, for the calls whose result is not DC_RESULT_OK only: a host that logs
 * failures is not called on every call. */
DC_API void dc_engine_on_run_errors(dc_engine *e, dc_run_cb cb, void *ud);
DC_API uint32_t dc_engine_live_states(const dc_engine *e);

/* Plugin call times are counted in DC_TIME_BUCKETS buckets: bucket i counts the calls that took
 * at most dc_time_bucket_us(i) microseconds and more than bucket i - 1's bound; the bounds go
 * 1, 2, 5, 10, 20, 50... up to 10 s, and the last bucket (bound UINT64_MAX) counts all longer
 * calls. */
#define DC_TIME_BUCKETS 23u
DC_API uint64_t dc_time_bucket_us(unsigned i);

/* One plugin of the bundle in force as the status page shows it: the counts of every
 * process sharing the engine's store. Strings are the bundle's, valid during the callback. */
typedef struct dc_plugin_stats {
    const char *domain;          /* the first domain naming it ("" when none) */
    const char *plugin;
    int phase;                   /* a dc_phase */
    uint64_t runs;               /* calls, whatever their result */
    uint64_t errors;             /* errors and denied API calls */
    uint64_t quota_instructions; /* quota trips by kind */
    uint64_t quota_time;
    uint64_t quota_memory;
    double total_ms;             /* time in all calls */
    double p99_ms;               /* 99th percentile call time (upper bound of its bucket) */
    int quarantined;             /* skipped now (quarantine) */
    double quarantined_until;    /* Unix seconds; 0 when never quarantined */
    uint64_t quarantines;        /* times quarantined (trips or watchdog; store only) */
    uint64_t time_buckets[DC_TIME_BUCKETS]; /* calls per time bucket (each bucket's own) */
} dc_plugin_stats;

typedef void (*dc_plugin_stats_cb)(void *ud, const dc_plugin_stats *st);

/* Calls each for every plugin of the bundle in force, in bundle order; returns how many. Without
 * a store in the engine's configuration the counts are 0 (quarantine is the engine's own). Reads
 * shared counters only: no lock, no allocation. */
DC_API uint32_t dc_engine_plugin_stats(dc_engine *e, dc_plugin_stats_cb each, void *ud);

/* ---- requests ---- */
typedef struct dc_request dc_request;

/* What the host must do after a phase ran. */
typedef enum dc_action {
    DC_ACTION_CONTINUE = 0,  /* go on with the request as usual */
    DC_ACTION_EXIT = 1,      /* a plugin called ngx.exit/ngx.redirect: end with *status
                                (for status >= 200: that response; 0: go on to the next phase) */
    DC_ACTION_FAIL = 2,      /* a plugin failed and policy says on_error=fail: end with 500 */
    DC_ACTION_SLEEP = 3      /* a plugin called ngx.sleep (rewrite, access, content): serve other
                                requests, and after dc_request_sleep_ms(r) call dc_request_run
                                again with the same phase, which takes the walk up where it
                                stopped (running any other phase, or dc_request_end, gives
                                the sleeping call up) */
} dc_action;

/* Begins a request for host (the $host value). The request pins the bundle in force now for all
 * its phases. hreq is passed back to every dc_host callback. */
DC_API dc_rc dc_request_begin(dc_engine *e, void *hreq, const char *host, size_t hostlen,
                              dc_request **out);
/* Number of plugins that would run in phase (before sampling); lets a host skip a phase. */
DC_API uint32_t dc_request_plugin_count(const dc_request *r, dc_phase phase);
/* 1 when a plugin r would run in phase names a request body function (ngx.req.read_body,
 * get_body_data, get_post_args): a host that reads the body before the phase (nginx) does so
 * only then. */
DC_API int dc_request_wants_body(const dc_request *r, dc_phase phase);
/* Runs the plugins of phase (not body_filter). *status gets the exit status for
 * DC_ACTION_EXIT and 500 for DC_ACTION_FAIL. */
DC_API dc_action dc_request_run(dc_request *r, dc_phase phase, int *status);
/* Runs the body_filter plugins on one chunk. *out (owned by the request, valid until the next
 * call or the end) and *out_eof get the chunk after the plugins. */
DC_API dc_action dc_request_body_filter(dc_request *r, const char *in, size_t len, int eof,
                                        dc_str *out, int *out_eof);
/* How long the plugin asleep wants to wait, in milliseconds (after DC_ACTION_SLEEP). */
DC_API uint32_t dc_request_sleep_ms(const dc_request *r);
DC_API void dc_request_end(dc_request *r);

/* ---- fetcher: libcurl, one reused handle; http, https (peer verified), file ---- */
typedef struct dc_fetcher dc_fetcher;

typedef struct dc_fetch_config {
    const char *url;                 /* required; copied */
    const char *const *headers;      /* "Name: value" strings sent with every request; copied */
    size_t nheaders;
    uint32_t timeout_ms;             /* the whole fetch (default 5000) */
    uint32_t connect_timeout_ms;     /* default: timeout_ms */
    uint32_t low_speed_bytes;        /* abort when slower than this many bytes/s ... */
    uint32_t low_speed_seconds;      /* ... for this long (defaults 1 byte/s, 3 s; 0: off) */
    size_t max_bytes;                /* body cap, enforced while receiving (default 8 MiB) */
    uint32_t max_redirects;          /* default 3 */
    const char *ca_file;             /* optional CA bundle for https; copied */
    int follow_redirects;            /* 0 (default): a redirect is an answer like any non-200
                                        (DC_FETCH_HTTP_ERROR, its Location in error); 1: followed,
                                        up to max_redirects, never to file: nor https -> http */
} dc_fetch_config;

typedef enum dc_fetch_status {
    DC_FETCH_OK = 0,                 /* 200 with a body */
    DC_FETCH_NOT_MODIFIED = 1,       /* 304: the validators still match */
    DC_FETCH_HTTP_ERROR = 2,         /* an answer other than 200/304 (http_status says which) */
    DC_FETCH_TRANSPORT_ERROR = 3,    /* down, refused, timeout, slow drip, TLS */
    DC_FETCH_TOO_BIG = 4,            /* body over max_bytes */
    DC_FETCH_TRUNCATED = 5           /* a 200 whose body ended before its announced length */
} dc_fetch_status;

typedef struct dc_fetch_result {
    dc_fetch_status status;
    int http_status;                 /* 0 when no HTTP answer */
    char *body;                      /* DC_FETCH_OK: malloc'd, NUL-terminated; else NULL */
    size_t len;
    char etag[256];                  /* validators of this answer ("" when none) */
    char last_modified[64];
    char error[256];                 /* what went wrong, for events and logs */
    double ms;                       /* duration */
    char final_url[256];             /* where the answer came from after redirects (shown
                                        without credentials or query); "" when none followed */
} dc_fetch_result;

DC_API void dc_fetch_config_default(dc_fetch_config *cfg);
DC_API dc_rc dc_fetcher_new(const dc_fetch_config *cfg, dc_fetcher **out, char *err, size_t errlen);
/* One GET, conditional on the validators of the last DC_FETCH_OK answer (If-None-Match,
 * If-Modified-Since). Returns DC_OK when an outcome is in *res (whatever the status), DC_ENOMEM
 * otherwise. Release the result with dc_fetch_result_clear. */
DC_API dc_rc dc_fetcher_fetch(dc_fetcher *f, dc_fetch_result *res);
/* Forgets the validators (the next fetch is unconditional). */
DC_API void dc_fetcher_reset_validators(dc_fetcher *f);
DC_API void dc_fetch_result_clear(dc_fetch_result *res);
DC_API void dc_fetcher_free(dc_fetcher *f);

/* ---- signatures: Ed25519 over a bundle's exact bytes, detached, as base64 text ----
 * Keys are PEM files (a private key: PKCS#8; a public key: SubjectPublicKeyInfo). A signed
 * bundle's signature is served at the bundle's URL with ".sig" added to its path. */
typedef struct dc_keyring dc_keyring;

DC_API dc_rc dc_keyring_new(dc_keyring **out);
/* Adds the Ed25519 public key of a PEM file. DC_EIO when the file cannot be read, DC_ESIG when
 * it holds no Ed25519 public key (err names the file and says why). */
DC_API dc_rc dc_keyring_add_file(dc_keyring *k, const char *path, char *err, size_t errlen);
DC_API size_t dc_keyring_count(const dc_keyring *k);
/* DC_OK when sig (siglen bytes of base64 text, white space around it ignored) is a signature
 * of data by one of the keys; DC_ESIG otherwise, err saying why (not base64, wrong length,
 * verifies with none of the keys). */
DC_API dc_rc dc_keyring_verify(const dc_keyring *k, const void *data, size_t len,
                               const char *sig, size_t siglen, char *err, size_t errlen);
DC_API void dc_keyring_free(dc_keyring *k);
/* Makes a new key pair: NAME.key (private, mode 0600, never overwritten) and NAME.pub. */
DC_API dc_rc dc_sign_keygen(const char *name, char *err, size_t errlen);
/* Signs data with the private key of key_file; *sig gets malloc'd base64 text ending in a
 * newline (free it). */
DC_API dc_rc dc_sign_data(const char *key_file, const void *data, size_t len, char **sig,
                          char *err, size_t errlen);

/* ---- snapshots: a validated bundle with its bytecode, as bytes (checksummed) ----
 * Workers load plugins only from snapshots, never from source. */
DC_API dc_rc dc_snapshot_encode(const dc_bundle *b, unsigned char **out, size_t *len);
/* Verifies the checksum and rebuilds the bundle (regexes recompiled, bytecode as is). */
DC_API dc_rc dc_snapshot_decode(const unsigned char *data, size_t len, dc_bundle **out,
                                char *err, size_t errlen);

/* ---- shared store: memory the host shares between its processes ---- */
typedef struct dc_store dc_store;

/* What the store says about the bundle in force (for metrics and the status page). */
typedef struct dc_store_info {
    uint64_t generation;         /* 0: nothing published yet */
    char source[16];             /* "api" or "offline" */
    char etag[256];
    double fetched_at;           /* Unix time of the fetch that produced it */
    char last_error[256];        /* the last fetch or load problem, "" when none */
    double last_error_at;
    size_t snapshot_bytes;
    double poll_ok_at;           /* Unix time of the last poll the API answered (0: none yet) */
    uint64_t poll_failures;      /* polls failed since then */
} dc_store_info;

/* How the region is used. It holds a fixed part (header, counters, quarantine and metrics
 * tables) and two snapshot slots of snapshot_capacity bytes each: the slot in force and the one
 * the next bundle is written into. used counts the fixed part and the snapshot in force twice
 * (a bundle of the same size needs as much again in the other slot); free is size - used, so a
 * snapshot may grow by about free / 2 before publishing it fails. */
typedef struct dc_store_usage {
    size_t size;
    size_t used;
    size_t free;
    size_t snapshot_capacity;    /* the largest snapshot a slot holds */
    uint32_t metrics_entries;    /* per-plugin metrics entries in the region */
    uint32_t metrics_used;       /* of which in use */
} dc_store_usage;

/* The smallest region dc_store_attach accepts. */
#define DC_STORE_MIN_SIZE (64u * 1024u)

/* Attaches to a region of size bytes shared by every process (an mmap(MAP_SHARED) area or an
 * nginx shared zone), at the same or different addresses. init = 1 formats it (the first
 * process, once); init = 0 attaches to a formatted region and checks its layout. */
DC_API dc_rc dc_store_attach(void *region, size_t size, int init, dc_store **out, char *err,
                             size_t errlen);
DC_API void dc_store_detach(dc_store *s); /* frees the handle, not the region */
/* The first error this handle met since this was last called (DC_EBUSY: a lock not taken or
 * lost; DC_ECORRUPT: a snapshot failing its checks), DC_OK when none; reading empties it. */
DC_API dc_rc dc_store_last_error(dc_store *s, char *msg, size_t len);
/* DC_EVENT_COUNT counters in the region, to hand to dc_events_new so that every process adds
 * to one set. */
DC_API uint64_t *dc_store_event_counters(dc_store *s);
/* Publishes a snapshot atomically (a reader sees the old one or the new one, never a mix) and
 * bumps the generation. DC_ELIMIT when it does not fit, DC_EBUSY when the writer lock was not
 * taken in time or was lost to another publisher. source: "api" or "offline". */
DC_API dc_rc dc_store_publish(dc_store *s, const unsigned char *snap, size_t len,
                              const char *source, const char *etag, double fetched_at);
/* The generation in force: one atomic load, cheap enough for every request. */
DC_API uint64_t dc_store_generation(const dc_store *s);
/* Copies the snapshot in force into a malloc'd buffer and verifies it; *gen gets its
 * generation. DC_ECORRUPT (err says why) for a snapshot that fails its checks, DC_EBUSY when
 * it kept changing while being read. */
DC_API dc_rc dc_store_read(dc_store *s, uint64_t *gen, unsigned char **snap, size_t *len,
                           char *err, size_t errlen);
DC_API void dc_store_info_get(dc_store *s, dc_store_info *out);
/* The largest snapshot the store can publish (it keeps two: the one in force and the next). */
DC_API size_t dc_store_snapshot_room(const dc_store *s);
/* The smallest region size (for dc_store_attach) whose store publishes a snapshot of len bytes. */
DC_API size_t dc_store_region_for(size_t len);
DC_API void dc_store_set_error(dc_store *s, const char *msg, double at);
/* Records one poll at Unix time at: ok (the API answered with a bundle or "not modified") sets
 * poll_ok_at and clears poll_failures; a failed poll adds one to poll_failures. */
DC_API void dc_store_note_poll(dc_store *s, int ok, double at);
DC_API void dc_store_usage_get(dc_store *s, dc_store_usage *out);
/* The poller lease: one process at a time polls. Returns 1 when self now holds it (taken, or
 * renewed, for ttl_ms); a lease whose holder died or let it expire can be taken. */
DC_API int dc_store_lease(dc_store *s, int32_t self_pid, uint32_t ttl_ms);
DC_API void dc_store_lease_release(dc_store *s, int32_t self_pid);

/* ---- poller: fetch, validate, compile, publish, in one process at a time ---- */
typedef struct dc_poller dc_poller;

typedef struct dc_poller_config {
    dc_fetch_config fetch;          /* where and how to fetch */
    double interval_s;              /* between polls (default 15) */
    double jitter_s;                /* polls at a phase in [0, jitter_s) chosen once at random,
                                       then every interval (default 0) */
    int poll_at_start;              /* first poll at once (default 1) */
    const dc_policy *policy;        /* limits for bundles; NULL: built-in default; not owned */
    dc_events *events;              /* not owned; may be NULL */
    dc_store *store;                /* publish there, under the lease; may be NULL */
    const char *offline_file;       /* last good bundle, written atomically; may be NULL */
    int32_t pid;                    /* lease holder id (getpid() when 0) */
    /* Public key files (PEM, Ed25519; read by dc_poller_new, not kept): when any, a bundle loads
     * only with a signature from one of them, fetched from the URL plus ".sig" (the offline file
     * keeps its own beside it, and is verified again when loaded). */
    const char *const *verify_keys;
    size_t nverify_keys;
    int allow_downgrade;            /* accept a general.version lower than the one in force */
    const char *store_size_name;    /* the host's setting for the store's size (a directive),
                                       named when a bundle does not fit; NULL: none; copied */
    size_t store_size_value;        /* that setting's value now, in bytes */
} dc_poller_config;

DC_API void dc_poller_config_default(dc_poller_config *cfg);
/* The poll schedule, for hosts that run their own loop as the poller's thread does: a phase
 * chosen once, jitter_s * u for a random u in [0, 1), then a poll at phase + k * interval_s
 * (k = 1, 2, ...) seconds after the start. dc_poll_next gives the first of those times
 * strictly after now_s (seconds since the start): a poll that ran long skips the slots it
 * missed, and the cadence never drifts by the time polls take. */
DC_API double dc_poll_phase(double jitter_s, double u);
DC_API double dc_poll_next(double interval_s, double phase_s, double now_s);
DC_API dc_rc dc_poller_new(const dc_poller_config *cfg, dc_poller **out, char *err,
                           size_t errlen);
/* One poll in the calling thread: fetch, and on a new bundle validate, compile (only plugins
 * whose code changed), publish and write the offline file. Emits the poll's events (dc_event). */
DC_API dc_rc dc_poller_poll(dc_poller *p);
/* Loads the offline file when nothing is in force (bg_offline_loaded); DC_EIO/DC_EBUNDLE when
 * it is missing or refused (the start goes on). */
DC_API dc_rc dc_poller_load_offline(dc_poller *p);
/* A process's start when nothing may be in force yet: when the store has no bundle and an
 * offline file is readable, the process that takes the store's lease loads it (as
 * dc_poller_load_offline) and the others wait for that publication, at most wait_ms (DC_EBUSY
 * when it did not come). DC_OK when a bundle is in force or there is nothing to load. Without a
 * store: dc_poller_load_offline when an offline file is configured. */
DC_API dc_rc dc_poller_start_offline(dc_poller *p, uint32_t wait_ms);
/* Polls in a thread of its own until dc_poller_stop: at once when poll_at_start, then on the
 * schedule of dc_poll_next (a random phase within the jitter, then every interval). */
DC_API dc_rc dc_poller_start(dc_poller *p);
DC_API void dc_poller_stop(dc_poller *p);
/* The bundle in force in this poller (borrowed), NULL before the first. */
DC_API dc_bundle *dc_poller_bundle(dc_poller *p);
DC_API void dc_poller_free(dc_poller *p);
/* The first error the poller met since this was last called (fetch, bundle refused, publish,
 * offline file, its thread), DC_OK when none; reading empties it. */
DC_API dc_rc dc_poller_last_error(dc_poller *p, char *msg, size_t len);

/* ---- worker side: an engine follows a store ---- */
/* When the store's generation differs from the engine's, reads, verifies and decodes the
 * snapshot and swaps it in (between requests: call it before dc_request_begin). Returns 1
 * when swapped, 0 when nothing changed, -1 when the snapshot was refused (the engine keeps
 * its plugins; on_error is emitted). */
DC_API int dc_engine_sync(dc_engine *e, dc_store *s);

/* A thread that follows the store for one engine: each new generation is read, verified,
 * decoded and prepared there (regexes compiled, policy resolved for every plugin, state keys
 * computed), and from then on dc_engine_sync on the request thread only takes the prepared
 * generation and swaps it in. Generations the requests let go of are freed there too. Start it
 * after the first dc_engine_sync; stop it (on the request thread) before freeing the engine or
 * the store. shared (may be NULL) is the poller of the same process, when there is one: a
 * generation that poller published or read is taken from it instead of being decoded again,
 * so the process holds one copy of the bundle. */
typedef struct dc_syncer dc_syncer;
DC_API dc_rc dc_syncer_start(dc_engine *e, dc_store *s, dc_poller *shared, dc_syncer **out,
                             char *err, size_t errlen);
DC_API void dc_syncer_stop(dc_syncer *y);
/* Stops sharing the poller's bundles (or shares another's): call it with NULL before freeing
 * the poller given to dc_syncer_start. */
DC_API void dc_syncer_share(dc_syncer *y, dc_poller *p);

/* ---- status page: what a host serves to operators ---- */
typedef enum dc_status_format {
    DC_STATUS_JSON = 0,       /* one JSON object, newline-terminated */
    DC_STATUS_PROMETHEUS = 1  /* Prometheus text exposition format 0.0.4 */
} dc_status_format;

/* What the page is drawn from. Handles are borrowed. */
typedef struct dc_status_source {
    dc_store *store;         /* the bundle facts (required) */
    dc_engine *engine;       /* per-plugin metrics and live states; may be NULL */
    const dc_events *events; /* event counters (the store's, for every process); may be NULL */
    int64_t worker_pid;      /* the answering process, shown as is */
    uint32_t worker_id;
} dc_status_source;

/* Renders the status page: the event counters, the bundle in the store (generation, source,
 * ETag, fetch time, last error, size), the loaded bundle's counts and problems, the per-plugin
 * runs, errors, quota trips, time, p99 and quarantine, and the answering worker. Syncs the
 * engine with the store first. Every string from the bundle or the store is escaped (JSON
 * string or Prometheus label value). *text is malloc'd and NUL-terminated (*len excludes the
 * NUL): release it with free(). DC_EINVAL for a NULL argument or an unknown format, DC_ENOMEM
 * when memory ran out (*text is then NULL). */
DC_API dc_rc dc_status_render(const dc_status_source *src, dc_status_format fmt, char **text,
                              size_t *len);

/* ---- the compiler spawner (optional; docs/architecture.md) ----
 * Each compiler session runs in a confined helper process. By default the library forks it
 * from the calling process. A host that must not see those processes (their exits reach its
 * SIGCHLD handling) or that wants to refuse new processes altogether (dc_harden_process) starts
 * a spawner first: one process, forked here, that runs no plugin code and forks each helper on
 * the library's request; from then on sessions are opened through it (from any thread) and
 * their helpers are its children, never this process's. Start it early, while the process is
 * single-threaded if possible, from a thread that lives as long as the process (the spawner
 * gets SIGKILL when that thread ends), and before dc_harden_process. DC_EBUSY if one runs
 * already, DC_ELUA (err says why) when it could not be started. A process forked from this one
 * has no spawner (its sessions fork their helper). */
DC_API dc_rc dc_compiler_spawner_start(char *err, size_t errlen);
/* Ends the spawner and the helpers of sessions still open (they fail as with a dead helper),
 * and collects its exit so that the host's SIGCHLD handling never sees it. No-op without a
 * spawner. */
DC_API void dc_compiler_spawner_stop(void);

/* ---- worker hardening (optional; docs/security.md) ----
 * Installs a seccomp filter on every thread of the calling process that refuses execve,
 * execveat, ptrace, process_vm_readv/writev and the creation of new processes (fork, vfork,
 * clone without CLONE_THREAD) with EPERM; threads can still be started (clone3, whose flags a
 * filter cannot see, fails with ENOSYS and the C library falls back to clone). Compiler
 * sessions then need the spawner: start it before. Irreversible. */
DC_API dc_rc dc_harden_process(char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* DYNACODE_H */
