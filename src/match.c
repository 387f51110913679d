/* match.c - which plugins run for a host (SPEC 4 rules 2-4): skip_domains first, then "*" and
 * every domain whose regex is found in the host, in bundle order, phase by phase. Results are
 * cached per bundle generation, so a host's regexes run once per bundle, not per request.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

dc_rc dc_cache_init(dc_match_cache *c, uint32_t cap)
{
    uint32_t n = 16;
    while (n < cap && n < (1u << 24))
        n <<= 1;
    c->buckets = calloc(n, sizeof *c->buckets);
    if (!c->buckets)
        return DC_ENOMEM;
    c->nbuckets = n;
    c->size = 0;
    c->cap = cap;
    return DC_OK;
}

void dc_match_release(dc_match *m)
{
    if (m && --m->refs == 0)
        free(m);
}

void dc_cache_free(dc_match_cache *c)
{
    for (uint32_t i = 0; i < c->nbuckets; i++) {
        dc_match *m = c->buckets ? c->buckets[i] : NULL;
        while (m) {
            dc_match *next = m->next;
            dc_match_release(m);
            m = next;
        }
    }
    free(c->buckets);
    c->buckets = NULL;
    c->size = 0;
}

static int host_applies(const dc_domain *d, const char *host, size_t len)
{
    return d->any || dc_re_search(d->re, host, len, NULL) == 1;
}

/* Builds the entry: counts first, then one allocation for the entry, the host and the items. */
static dc_match *build(const dc_bundle *b, const char *host, size_t len, uint64_t hash)
{
    uint32_t count[DC_PHASE_COUNT] = {0};
    int skipped = !b->enabled;
    for (uint32_t i = 0; i < b->nskip && !skipped; i++)
        skipped = dc_re_search(b->skip[i], host, len, NULL) == 1;

    /* Whether each domain applies: computed once, used by both passes. */
    unsigned char small[256];
    unsigned char *applies = b->ndomains <= sizeof small ? small : malloc(b->ndomains);
    if (!applies)
        return NULL;
    size_t total = 0;
    for (uint32_t d = 0; d < b->ndomains; d++) {
        applies[d] = !skipped && host_applies(&b->domains[d], host, len);
        if (!applies[d])
            continue;
        for (uint32_t k = 0; k < b->domains[d].nplugins; k++) {
            const dc_plugin *p = &b->plugins[b->domains[d].plugins[k]];
            if (!p->skip) {
                count[p->phase]++;
                total++;
            }
        }
    }

    size_t size = sizeof(dc_match) + total * sizeof(dc_item) + len + 1;
    dc_match *m = calloc(1, size);
    if (!m) {
        if (applies != small)
            free(applies);
        return NULL;
    }
    dc_item *items = (dc_item *)(m + 1);
    for (int ph = 0; ph < DC_PHASE_COUNT; ph++) {
        m->items[ph] = items;
        items += count[ph];
    }
    m->host = (char *)items;
    memcpy(m->host, host, len);
    m->hostlen = len;
    m->hash = hash;
    m->refs = 1;
    for (uint32_t d = 0; d < b->ndomains; d++) {
        if (!applies[d])
            continue;
        for (uint32_t k = 0; k < b->domains[d].nplugins; k++) {
            uint32_t pi = b->domains[d].plugins[k];
            const dc_plugin *p = &b->plugins[pi];
            if (!p->skip)
                m->items[p->phase][m->count[p->phase]++] = (dc_item){d, pi};
        }
    }
    if (applies != small)
        free(applies);
    return m;
}

dc_match *dc_match_host(dc_gen *gen, const char *host, size_t len)
{
    dc_match_cache *c = &gen->cache;
    uint64_t h = dc_hash64(host, len);
    dc_match **bucket = &c->buckets[h & (c->nbuckets - 1)];
    for (dc_match *m = *bucket; m; m = m->next) {
        if (m->hash == h && m->hostlen == len && memcmp(m->host, host, len) == 0) {
            m->refs++;
            return m;
        }
    }
    dc_match *m = build(gen->bundle, host, len, h);
    if (!m)
        return NULL;
    if (c->size >= c->cap) {
        /* Full: evict this bucket's chain. Entries still used by a request live on. */
        dc_match *old = *bucket;
        while (old) {
            dc_match *next = old->next;
            dc_match_release(old);
            c->size--;
            old = next;
        }
        *bucket = NULL;
    }
    if (c->size < c->cap) {
        m->next = *bucket;
        *bucket = m;
        m->refs++;
        c->size++;
    }
    return m;
}
