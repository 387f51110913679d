/* util.c - small shared helpers: growable buffers, error strings, hashing, clocks, and the
 * names of codes, phases and results. Relies on libc only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

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
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#ifdef DC_TESTING
uint32_t dc_quota_time_ms(uint32_t ms)
{
    static _Atomic unsigned long scale; /* 0: not read yet (threads may read it at once) */
    unsigned long k = atomic_load_explicit(&scale, memory_order_relaxed);
    if (!k) {
        const char *v = getenv("DC_TEST_TIME_SCALE");
        unsigned long s = v ? strtoul(v, NULL, 10) : 1;
        k = s >= 1 && s <= 1000 ? s : 1;
        atomic_store_explicit(&scale, k, memory_order_relaxed);
    }
    uint64_t r = (uint64_t)ms * k;
    return r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}
#endif

const char *dc_strerror(dc_rc rc)
{
    switch (rc) {
    case DC_OK: return "ok";
    case DC_ENOMEM: return "out of memory";
    case DC_EINVAL: return "invalid argument";
    case DC_EJSON: return "not JSON";
    case DC_EBUNDLE: return "unusable bundle";
    case DC_ECOMPILE: return "does not compile";
    case DC_EIO: return "input/output error";
    case DC_EPOLICY: return "policy error";
    case DC_ELIMIT: return "over a limit";
    case DC_ELUA: return "Lua runtime error";
    }
    return "unknown error";
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

void dc_limits_default(dc_limits *l)
{
    l->max_bundle_bytes = 8u << 20;
    l->max_domains = 20000;
    l->max_plugins = 20000;
    l->max_code_bytes = 64u << 10;
    l->max_name_bytes = 256;
    l->max_plugins_per_domain = 1000;
    l->max_skip_domains = 1000;
    l->max_pattern_bytes = 256;
    l->max_pattern_compiled_bytes = 16u << 10;
    l->max_patterns_total_bytes = 32u << 20;
}

void dc_quota_default(dc_quota *q)
{
    q->instructions = 1000000;
    q->time_ms = 50;
    q->memory_kb = 4096;
}
