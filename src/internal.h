/* internal.h - types shared by the library's own files: the immutable bundle model, growable
 * buffers, regex helpers. Nothing here is part of the public API (include/dynacode.h).
 */
#ifndef DC_INTERNAL_H
#define DC_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dynacode.h"

#define DC_HIDDEN __attribute__((visibility("hidden")))

/* ---- growable byte buffer ---- */
typedef struct dc_buf {
    char *data;
    size_t len;
    size_t cap;
} dc_buf;

DC_HIDDEN int dc_buf_reserve(dc_buf *b, size_t extra);           /* 0 or -1 (ENOMEM) */
DC_HIDDEN int dc_buf_append(dc_buf *b, const void *p, size_t n); /* 0 or -1 */
DC_HIDDEN int dc_buf_printf(dc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
DC_HIDDEN void dc_buf_free(dc_buf *b);

/* snprintf into err when err != NULL (first error wins is the caller's concern) */
DC_HIDDEN void dc_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
DC_HIDDEN char *dc_strndup(const char *s, size_t n);
DC_HIDDEN uint64_t dc_hash64(const void *p, size_t n); /* FNV-1a */
DC_HIDDEN double dc_now_ms(void);                       /* CLOCK_MONOTONIC in ms */
/* The wall-clock room a call with time quota ms gets. The product gives exactly ms. The test
 * build (DC_TESTING) multiplies it by DC_TEST_TIME_SCALE (an integer, 1 when unset): under
 * Valgrind every call runs tens of times slower, and a race between the time quota and another
 * quota must end as on a real CPU. */
#ifdef DC_TESTING
DC_HIDDEN uint32_t dc_quota_time_ms(uint32_t ms);
#else
static inline uint32_t dc_quota_time_ms(uint32_t ms)
{
    return ms;
}
#endif

/* Bounds on what a plugin hands to the host (header values, variables, log lines and output);
 * set by the policy, 0 means unlimited. */
/* Writes src (NULL as "") into dst (cap bytes, NUL-terminated) with control bytes as \\n, \\r,
 * \\t or \\xNN, and with quote '"' and '\\' escaped too; cut with "..." when too long. Returns
 * the length written. For log and trace lines. */
DC_HIDDEN size_t dc_log_escape(char *dst, size_t cap, const char *src, int quote);

typedef struct dc_bounds {
    uint32_t log_line_bytes;   /* one ngx.log/print line (longer ones are cut) */
    uint32_t output_bytes;     /* ngx.say/ngx.print output of one call */
    uint32_t value_bytes;      /* one header value or variable value set by the plugin */
    uint32_t header_values;    /* values of one header in one set */
    uint32_t header_bytes;     /* header names and values set in one call, all together */
    uint32_t log_lines;        /* ngx.log/print lines of one call (later ones are dropped) */
    uint32_t log_bytes;        /* ngx.log/print bytes of one call (later lines are dropped) */
} dc_bounds;

/* ---- compile: Lua source (never bytecode) to LuaJIT bytecode, in the calling process ----
 * Not public: it parses untrusted code unconfined. The library calls it only inside the
 * confined compiler helper (sandbox/compiler.c); tests and benchmarks call it on their own
 * trusted sources. *bc is malloc'd, freed with free(). */
DC_HIDDEN dc_rc dc_compile(const char *name, const char *code, size_t len, unsigned char **bc,
                           size_t *bclen, char *err, size_t errlen);

/* ---- regex (PCRE2, JIT where available), unanchored search as ngx.re.find ---- */
DC_HIDDEN dc_rc dc_re_compile(const char *pat, size_t len, pcre2_code **out, char *err,
                              size_t errlen);
/* The same, refused (DC_ELIMIT, err naming the limit) when the compiled pattern plus its JIT
 * code is over max_bytes (0: no bound); *bytes gets that size. */
DC_HIDDEN dc_rc dc_re_compile_bounded(const char *pat, size_t len, size_t max_bytes,
                                      pcre2_code **out, size_t *bytes, char *err,
                                      size_t errlen);
/* 1 in the product; in the test build, 0 when DC_PCRE2_NO_JIT is set (for Valgrind, which
 * cannot follow JIT code). */
DC_HIDDEN int dc_re_jit_enabled(void);
/* 1 match, 0 no match, -1 error (match limit hit and the like). md may be NULL. */
DC_HIDDEN int dc_re_search(const pcre2_code *re, const char *subj, size_t len,
                           pcre2_match_data *md);

/* ---- the bundle model: immutable once dc_bundle_load returns ---- */
typedef struct dc_plugin {
    char *name;
    dc_phase phase;
    int skip;               /* "skip": true - never runs */
    double sampling;        /* share of requests that run it, 0..1 (1 when absent) */
    int has_id;
    int64_t id;             /* "id" when has_id */
    dc_quota quota;         /* the plugin's own "quota"; a 0 field means not asked */
    unsigned char *bc;      /* LuaJIT bytecode (owned) */
    size_t bclen;
    uint64_t code_hash;     /* dc_hash64 of the source: same hash, same state across bundles */
    int kept_previous;      /* 1 when this is the previous bundle's version, kept after a refusal */
} dc_plugin;

typedef struct dc_domain {
    char *name;
    int any;                /* name is "*" */
    pcre2_code *re;         /* NULL when any */
    uint32_t *plugins;      /* indices into dc_bundle.plugins, bundle order (owned) */
    uint32_t nplugins;
} dc_domain;

struct dc_bundle {
    atomic_uint refs;
    int enabled;            /* general.status == "enabled" */
    pcre2_code **skip;      /* general.skip_domains, compiled (owned) */
    uint32_t nskip;
    dc_domain *domains;     /* usable domains only, bundle order (owned) */
    uint32_t ndomains;
    dc_plugin *plugins;     /* usable plugins only (owned); a shared plugin appears once */
    uint32_t nplugins;
    dc_problem *problems;   /* strings owned by the bundle; the first few only */
    uint32_t nproblems;
    uint32_t problems_total;    /* every problem met, kept or not */
    uint32_t problems_left_out; /* of those, the ones that are not unknown-field warnings */
    uint64_t hash;          /* dc_hash64 of the JSON text */
};

/* sync.c: reads, verifies and decodes the snapshot in force (*gen: its generation). */
DC_HIDDEN dc_rc dc_store_read_bundle(dc_store *s, uint64_t *gen, dc_bundle **out, char *err,
                                     size_t errlen);

#endif /* DC_INTERNAL_H */
