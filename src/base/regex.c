/* regex.c - PCRE2 compile (with JIT when the platform has it) and unanchored search, with the
 * semantics of ngx.re.find(subject, regex, "jo") that the original used for host matching.
 */
#include <stdlib.h>
#include <string.h>

#include "base.h"

/* Bounds a pathological pattern: a host match must never stall a request. */
#define DC_RE_MATCH_LIMIT 100000
#define DC_RE_DEPTH_LIMIT 10000

int dc_re_jit_enabled(void)
{
#ifdef DC_TESTING
    /* The test build only: DC_PCRE2_NO_JIT=1 turns PCRE2's JIT off. memcheck cannot see into
     * JIT-generated code and reports false errors from it, so the Valgrind runs set it. The
     * product reads no variable: it always tries the JIT, and a platform that refuses it
     * matches through the interpreter. */
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("DC_PCRE2_NO_JIT");
        enabled = !(v && *v && strcmp(v, "0") != 0);
    }
    return enabled;
#else
    return 1;
#endif
}

dc_rc dc_re_compile(const char *pat, size_t len, pcre2_code **out, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        dc_set_err(err, errlen, "regex does not compile at offset %zu: %s", (size_t)off,
                   (const char *)msg);
        return DC_EBUNDLE;
    }
    /* JIT is an optimisation: a platform without it still matches through the interpreter. */
    if (dc_re_jit_enabled())
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return DC_OK;
}

dc_rc dc_re_compile_bounded(const char *pat, size_t len, size_t max_bytes, pcre2_code **out,
                            size_t *bytes, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    size_t size = 0, jit = 0;
    *out = NULL;
    *bytes = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        dc_set_err(err, errlen, "regex does not compile at offset %zu: %s", (size_t)off,
                   (const char *)msg);
        return DC_EBUNDLE;
    }
    /* A short pattern can expand a lot ("(?:a|b){3000}" is some 40 KB), and every worker
     * holds its own copy: measured before JIT, so that an oversized one costs no JIT work. */
    (void)pcre2_pattern_info(re, PCRE2_INFO_SIZE, &size);
    if (max_bytes && size > max_bytes) {
        pcre2_code_free(re);
        dc_set_err(err, errlen, "regex compiles to %zu bytes, over the limit of %zu "
                   "(max_pattern_compiled_bytes)", size, max_bytes);
        return DC_ELIMIT;
    }
    if (dc_re_jit_enabled() && pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0)
        (void)pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit);
    if (max_bytes && size + jit > max_bytes) {
        pcre2_code_free(re);
        dc_set_err(err, errlen, "regex compiles to %zu bytes (%zu of them JIT code), over the "
                   "limit of %zu (max_pattern_compiled_bytes)", size + jit, jit, max_bytes);
        return DC_ELIMIT;
    }
    *out = re;
    *bytes = size + jit;
    return DC_OK;
}

static _Thread_local pcre2_match_context *tl_mctx;
static _Thread_local pcre2_match_data *tl_md;

int dc_re_search(const pcre2_code *re, const char *subj, size_t len, pcre2_match_data *md)
{
    if (!tl_mctx) {
        tl_mctx = pcre2_match_context_create(NULL);
        if (!tl_mctx)
            return -1;
        pcre2_set_match_limit(tl_mctx, DC_RE_MATCH_LIMIT);
        pcre2_set_depth_limit(tl_mctx, DC_RE_DEPTH_LIMIT);
    }
    if (!md) {
        if (!tl_md) {
            tl_md = pcre2_match_data_create(1, NULL);
            if (!tl_md)
                return -1;
        }
        md = tl_md;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, tl_mctx);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}
