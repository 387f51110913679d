/* sim_headers.c - the header lists of the simulated request and response: add, set, find,
 * remove, free, with names compared as HTTP does (case-insensitively); and the growth of the
 * simulated request's arrays (these lists, the output cuts).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_priv.h"

void *dc_sim_room(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : first;
    void *q = realloc(p, c * size);
    if (q)
        *cap = c;
    return q;
}

int dc_sim_hdrs_add(sim_hdrs *h, const char *name, size_t nlen, const char *val, size_t vlen)
{
    sim_hdr *hv = dc_sim_room(h->v, &h->cap, h->n, sizeof *hv, 8);
    if (!hv)
        return -1;
    h->v = hv;
    char *n = dc_strndup(name, nlen), *v = dc_strndup(val, vlen);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    h->v[h->n++] = (sim_hdr){n, v};
    return 0;
}

int dc_sim_name_eq(const char *a, const char *b, size_t blen)
{
    return strlen(a) == blen && strncasecmp(a, b, blen) == 0;
}

void dc_sim_hdrs_remove(sim_hdrs *h, const char *name, size_t nlen)
{
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (dc_sim_name_eq(h->v[i].name, name, nlen)) {
            free(h->v[i].name);
            free(h->v[i].value);
        } else {
            h->v[j++] = h->v[i];
        }
    }
    h->n = j;
}

int dc_sim_hdrs_set(sim_hdrs *h, dc_str name, const dc_str *values, size_t n)
{
    dc_sim_hdrs_remove(h, name.data, name.len);
    for (size_t i = 0; i < n; i++)
        if (dc_sim_hdrs_add(h, name.data, name.len, values[i].data, values[i].len) != 0)
            return -1;
    return 0;
}

const char *dc_sim_hdrs_get(const sim_hdrs *h, const char *name, size_t nlen)
{
    for (size_t i = 0; i < h->n; i++)
        if (dc_sim_name_eq(h->v[i].name, name, nlen))
            return h->v[i].value;
    return NULL;
}

void dc_sim_hdrs_free(sim_hdrs *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
