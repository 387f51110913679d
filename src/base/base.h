/* base.h - the ground floor shared by every layer of the library: growable buffers, error
 * text, the clock, hashing, the log-line escape, the host bounds and regex helpers. Nothing
 * here is part of the public API (include/dynacode.h).
 */
#ifndef DC_BASE_H
#define DC_BASE_H

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

/* The first error of a long-lived handle (engine, poller, store) since it was last read: later
 * errors do not overwrite it, reading clears it. Any thread may write; zeroed memory is an
 * empty buffer. */
typedef struct dc_errbuf {
    atomic_flag busy;
    dc_rc rc;            /* DC_OK: empty */
    char msg[256];
} dc_errbuf;

DC_HIDDEN void dc_errbuf_note(dc_errbuf *b, dc_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The code held (DC_OK when none), its message copied into msg; empties the buffer. */
DC_HIDDEN dc_rc dc_errbuf_take(dc_errbuf *b, char *msg, size_t len);
DC_HIDDEN uint64_t dc_hash64(const void *p, size_t n); /* FNV-1a */
/* The value of a base64 digit (standard alphabet: A-Z a-z 0-9 + /), -1 for any other byte. */
DC_HIDDEN int dc_b64_value(unsigned char c);
DC_HIDDEN double dc_now_ms(void);                       /* CLOCK_MONOTONIC in ms */
/* What time quotas and the watchdog's deadlines are multiplied by: 1 on a real CPU, more under
 * Valgrind's synthetic CPU, where code runs tens of times slower than the clock. */
DC_HIDDEN double dc_quota_time_scale(void);
/* 1 under AddressSanitizer or a Valgrind tool that tracks the heap (memcheck, helgrind, drd,
 * massif, dhat; not callgrind or cachegrind): caches of freed memory are then left out, so
 * that every free reaches the checker. */
DC_HIDDEN int dc_memcheck_active(void);
/* 1 when process pid has ended: no such process, or a zombie its parent has not reaped yet (a
 * crashed nginx worker stays one until the master's SIGCHLD handler runs) (pid.c). */
DC_HIDDEN int dc_pid_gone(int32_t pid);
/* 64-bit checksum of snapshot bytes (checksum.c); detects corruption, not forgery. */
DC_HIDDEN uint64_t dc_checksum64(const void *p, size_t n);

/* Bounds on what a plugin hands to the host (header values, variables, log lines and output);
 * set by the policy, 0 means unlimited. */
/* Writes src (NULL as "") into dst (cap bytes, NUL-terminated) with control bytes as \\n, \\r,
 * \\t or \\xNN, and with quote '"' and '\\' escaped too; cut with "..." when too long. Returns
 * the length written. For log and trace lines. */
DC_HIDDEN size_t dc_log_escape(char *dst, size_t cap, const char *src, int quote);
/* One byte as dc_log_escape writes it: 1 to 4 bytes into out, their count returned. */
DC_HIDDEN size_t dc_log_escape_byte(unsigned char c, int quote, char out[4]);

typedef struct dc_bounds {
    uint32_t log_line_bytes;   /* one ngx.log/print line (longer ones are cut) */
    uint32_t output_bytes;     /* ngx.say/ngx.print output of one call */
    uint32_t value_bytes;      /* one header value or variable value set by the plugin */
    uint32_t header_values;    /* values of one header in one set */
    uint32_t header_bytes;     /* header names and values set in one call, all together */
    uint32_t log_lines;        /* ngx.log/print lines of one call (later ones are dropped) */
    uint32_t log_bytes;        /* ngx.log/print bytes of one call (later lines are dropped) */
    uint32_t sleep_ms_per_call;    /* the longest ngx.sleep (0: it may only yield, 0 s) */
    uint32_t sleep_ms_per_request; /* all the sleeps of one request's plugins together */
} dc_bounds;

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

#endif /* DC_BASE_H */
