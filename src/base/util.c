/* util.c - small shared helpers: growable buffers, error strings, hashing, base64 digits, clocks,
 * and the names of codes, phases and results. Relies on libc only.
 */
#include <errno.h>
#include <link.h> /* dl_iterate_phdr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

int dc_buf_reserve(dc_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    size_t need = b->len + extra;
    if (need < b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int dc_buf_append(dc_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (dc_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int dc_buf_printf(dc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || dc_buf_reserve(b, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void dc_buf_free(dc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void dc_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *dc_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint64_t dc_hash64(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

double dc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* a multiplication rather than a division: this is read around every plugin call, and
     * the two differ by less than a nanosecond */
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void errbuf_lock(dc_errbuf *b)
{
    while (atomic_flag_test_and_set_explicit(&b->busy, memory_order_acquire))
        ;
}

void dc_errbuf_note(dc_errbuf *b, dc_rc rc, const char *fmt, ...)
{
    if (!b || rc == DC_OK)
        return;
    errbuf_lock(b);
    if (b->rc == DC_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->msg, sizeof b->msg, fmt, ap);
        va_end(ap);
        b->rc = rc;
    }
    atomic_flag_clear_explicit(&b->busy, memory_order_release);
}

dc_rc dc_errbuf_take(dc_errbuf *b, char *msg, size_t len)
{
    if (msg && len)
        msg[0] = '\0';
    if (!b)
        return DC_EINVAL;
    errbuf_lock(b);
    dc_rc rc = b->rc;
    if (rc != DC_OK && msg && len)
        snprintf(msg, len, "%s", b->msg);
    b->rc = DC_OK;
    b->msg[0] = '\0';
    atomic_flag_clear_explicit(&b->busy, memory_order_release);
    return rc;
}

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* header only: RUNNING_ON_VALGRIND is 0 on a real CPU */
#else
#define RUNNING_ON_VALGRIND 0
#endif

double dc_quota_time_scale(void)
{
    /* Valgrind runs code some 20 to 50 times slower than the CPU while the clock keeps its
     * pace: time quotas stretched by the same factor keep the same meaning there. Asked once
     * per process (the question is a sequence of no-op instructions on a real CPU, and this
     * is on the path of every plugin call); a race only asks twice. */
    static _Atomic int scale;
    int v = atomic_load_explicit(&scale, memory_order_relaxed);
    if (!v) {
        v = RUNNING_ON_VALGRIND ? 50 : 1;
        atomic_store_explicit(&scale, v, memory_order_relaxed);
    }
    return v;
}

/* dl_iterate_phdr callback: 1 for the preload of a Valgrind tool that replaces malloc
 * (vgpreload_memcheck, _helgrind, _drd, _massif, _dhat); every tool preloads vgpreload_core */
static int heap_tool_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *n = info->dlpi_name ? strstr(info->dlpi_name, "vgpreload_") : NULL;
    return n && strncmp(n + 10, "core", 4) != 0;
}

int dc_memcheck_active(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#endif
#endif
    /* callgrind and cachegrind leave malloc alone: what they count is the product's path.
     * The loaded objects, not LD_PRELOAD, tell: nginx clears its workers' environment. */
    return RUNNING_ON_VALGRIND ? dl_iterate_phdr(heap_tool_object, NULL) != 0 : 0;
}

const char *dc_strerror(dc_rc rc)
{
    switch (rc) {
#define DC_RC_TEXT(code, value, name, text) case code: return text;
    DC_RC_LIST(DC_RC_TEXT)
#undef DC_RC_TEXT
    }
    return "unknown error";
}

const char *dc_rc_name(dc_rc rc)
{
    switch (rc) {
#define DC_RC_NAME(code, value, name, text) case code: return name;
    DC_RC_LIST(DC_RC_NAME)
#undef DC_RC_NAME
    }
    return "unknown";
}

static const char *const phase_names[DC_PHASE_COUNT] = {
    "rewrite", "access", "content", "header_filter", "body_filter", "log",
};

const char *dc_phase_name(dc_phase phase)
{
    return (unsigned)phase < DC_PHASE_COUNT ? phase_names[phase] : "unknown";
}

int dc_phase_parse(const char *name, size_t len, dc_phase *out)
{
    for (int i = 0; i < DC_PHASE_COUNT; i++) {
        if (strlen(phase_names[i]) == len && memcmp(phase_names[i], name, len) == 0) {
            *out = (dc_phase)i;
            return 0;
        }
    }
    return -1;
}

const char *dc_result_name(dc_result r)
{
    switch (r) {
    case DC_RESULT_OK: return "ok";
    case DC_RESULT_ERROR: return "error";
    case DC_RESULT_QUOTA_INSTRUCTIONS: return "quota:instructions";
    case DC_RESULT_QUOTA_TIME: return "quota:time";
    case DC_RESULT_QUOTA_MEMORY: return "quota:memory";
    case DC_RESULT_DENIED: return "denied";
    }
    return "unknown";
}

/* dc_limits_default and dc_quota_default read the built-in policy: policy/policy.c. */

int dc_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}
