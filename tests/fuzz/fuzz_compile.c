/* fuzz_compile.c - for the fuzz targets only: the confined compiler session, swapped at link time
 * (ld --wrap) for LuaJIT's parser in this very process. Forking and confining a helper for every
 * input would cost more than everything else an input does; the parse itself is the same code.
 */
#include <stdio.h>
#include <string.h>

#include "compiler.h"
#include "fuzz.h"

size_t fuzz_max_code = 4096;

/* One sentinel stands for every session: nothing in it is ever read. */
static char session_token;

dc_rc __wrap_dc_compiler_open_opts(const void *opts, void **out, char *err, size_t errlen);
dc_rc __wrap_dc_compiler_compile(void *c, const char *name, const char *code, size_t len,
                                 unsigned char **bc, size_t *bclen, char *err, size_t errlen);
int __wrap_dc_compiler_broken(const void *c);
void __wrap_dc_compiler_close(void *c);

dc_rc __wrap_dc_compiler_open_opts(const void *opts, void **out, char *err, size_t errlen)
{
    (void)opts;
    (void)err;
    (void)errlen;
    *out = &session_token;
    return DC_OK;
}

dc_rc __wrap_dc_compiler_compile(void *c, const char *name, const char *code, size_t len,
                                 unsigned char **bc, size_t *bclen, char *err, size_t errlen)
{
    (void)c;
    *bc = NULL;
    *bclen = 0;
    /* a small budget per input: long sources test LuaJIT's parser more than our loader */
    if (len > fuzz_max_code) {
        snprintf(err, errlen, "fuzz: source of %zu bytes not compiled", len);
        return DC_ECOMPILE;
    }
    return dc_compile(name, code, len, bc, bclen, err, errlen);
}

int __wrap_dc_compiler_broken(const void *c)
{
    (void)c;
    return 0;
}

void __wrap_dc_compiler_close(void *c)
{
    (void)c;
}
