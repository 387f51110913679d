/* match.c - which plugins run for a host: skip_domains first, then "*" and
 * every domain whose regex is found in the host, in bundle order, phase by phase. All the
 * patterns are matched in one pass (the bundle's hostset). Per bundle generation, hosts are
 * cached in a fixed table of slots (no allocation for a new host, no free for an evicted one),
 * and results are shared by every host that resolves to the same plugins.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define VBUCKETS 1024u
#define PROBE 4u   /* slots a host may sit in, from its hash on */

dc_rc dc_cache_init(dc_match_cache *c, uint32_t cap, size_t max_bytes)
{
    uint32_t n = 16;
    while (n < cap && n < (1u << 24))
        n <<= 1;
    memset(c, 0, sizeof *c);
    c->slots = calloc(n, sizeof *c->slots);
    c->hashes = calloc(n, sizeof *c->hashes);
    uint32_t nr = n / 4; /* results: as many as hosts at most, mostly far fewer */
    c->rbuckets = calloc(nr, sizeof *c->rbuckets);
    c->buildcap = 16; /* never NULL: a host that runs nothing has no items to copy */
    c->build = malloc(c->buildcap * sizeof *c->build);
    if (!c->slots || !c->hashes || !c->rbuckets || !c->build) {
        free(c->slots);
        free(c->hashes);
        free(c->rbuckets);
        free(c->build);
        c->slots = NULL;
        c->hashes = NULL;
        c->rbuckets = NULL;
        c->build = NULL;
        c->buildcap = 0;
        return DC_ENOMEM;
    }
    c->nslots = n;
    c->nrbuckets = nr;
    c->cap = cap < n ? cap : n;
    c->max_bytes = max_bytes;
    return DC_OK;
}

/* A hash for the cache's own tables (never stored, never compared across processes): eight
 * bytes per multiply, where dc_hash64 takes one; a new host hashes its name and its items. */
static uint64_t table_hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    uint64_t w;
    for (; n >= 8; n -= 8, s += 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    w = 0;
    if (n)
        memcpy(&w, s, n);
    h = (h ^ w ^ (uint64_t)n << 56) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

static void variant_release(dc_variant *v)
{
    if (!v || --v->refs > 0)
        return;
    dc_match_cache *c = v->cache;
    for (dc_variant **pp = &c->vbuckets[v->hash & (c->nvbuckets - 1)]; *pp; pp = &(*pp)->next) {
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    }
    free(v);
}

static void items_release(const dc_item *items, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        variant_release(items[i].v);
}

static uint32_t match_total(const dc_match *m)
{
    uint32_t n = 0;
    for (int ph = 0; ph < DC_PHASE_COUNT; ph++)
        n += m->count[ph];
    return n;
}

void dc_match_release(dc_match *m)
{
    if (!m || --m->refs > 0)
        return;
    dc_match_cache *c = m->cache;
    if (c) {
        for (dc_match **pp = &c->rbuckets[m->hash & (c->nrbuckets - 1)]; *pp;
             pp = &(*pp)->next) {
            if (*pp == m) {
                *pp = m->next;
                break;
            }
        }
        c->bytes -= m->bytes;
    }
    items_release(m->items[0], match_total(m)); /* the phases' items are one array */
    free(m);
}

void dc_cache_free(dc_match_cache *c)
{
    for (uint32_t i = 0; c->slots && i < c->nslots; i++)
        dc_match_release(c->slots[i].m);
    free(c->slots);
    free(c->hashes);
    c->slots = NULL;
    c->hashes = NULL;
    c->size = 0;
    /* every result and variant went with the last slot pointing at it: the generation is
     * freed once no request uses it */
    free(c->rbuckets);
    c->rbuckets = NULL;
    c->bytes = 0;
    free(c->vbuckets);
    c->vbuckets = NULL;
    free(c->build);
    c->build = NULL;
    c->buildcap = 0;
    dc_hostset_scratch_free(c->scratch);
    c->scratch = NULL;
    free(c->hits);
    free(c->found);
    free(c->doms);
    free(c->anyd);
    c->hits = NULL;
    c->found = c->doms = c->anyd = NULL;
    c->nany = 0;
}

dc_rc dc_cache_bind(dc_match_cache *c, const dc_bundle *b)
{
    if (!b->hosts || c->scratch)
        return DC_OK;
    uint32_t n = dc_hostset_count(b->hosts), nd = b->ndomains ? b->ndomains : 1;
    c->hits = calloc(n ? n : 1, 1);
    c->found = malloc((n ? n : 1) * sizeof *c->found);
    c->doms = malloc(nd * sizeof *c->doms);
    c->anyd = malloc(nd * sizeof *c->anyd);
    if (c->hits && c->found && c->doms && c->anyd &&
        dc_hostset_scratch_new(b->hosts, &c->scratch) == DC_OK) {
        c->nany = 0;
        for (uint32_t d = 0; d < b->ndomains; d++)
            if (b->domains[d].any)
                c->anyd[c->nany++] = d;
        return DC_OK;
    }
    free(c->hits);
    free(c->found);
    free(c->doms);
    free(c->anyd);
    c->hits = NULL;
    c->found = c->doms = c->anyd = NULL;
    return DC_ENOMEM;
}

/* ---- settings per (host, plugin) ---- */

uint64_t dc_variant_key(uint64_t base, const dc_policy_eff *def, const dc_policy_eff *eff)
{
    /* A state is made for a quota and an API filter: the same ones share the plugin's state. */
    if (memcmp(&def->quota, &eff->quota, sizeof eff->quota) == 0 && def->api == eff->api)
        return base;
    uint64_t parts[5] = {base, eff->quota.instructions,
                         ((uint64_t)eff->quota.time_ms << 32) | eff->quota.memory_kb,
                         (uint64_t)(uintptr_t)eff->api, 0x76617269616e74ull};
    return dc_hash64(parts, sizeof parts);
}

/* The variant of plugin pi for a host whose rule matches are hostm, with one more reference:
 * found among those made already (same plugin, same settings) or made now. NULL: no memory. */
static dc_variant *variant_get(dc_gen *g, uint32_t pi, const unsigned char *hostm)
{
    dc_match_cache *c = &g->cache;
    const dc_plugin *p = &g->bundle->plugins[pi];
    const dc_fallback *fb = g->fallback[pi];
    dc_variant probe;
    memset(&probe, 0, sizeof probe);
    probe.plugin = pi;
    dc_policy_resolve_rules(g->policy, hostm, p->name, &p->quota, &probe.eff);
    if (fb)
        dc_policy_resolve_rules(g->policy, hostm, fb->run.plugin->name, &fb->run.plugin->quota,
                                &probe.fb_eff);
    /* both settings were zeroed whole before being filled, so bytes compare */
    uint64_t parts[3] = {pi, dc_hash64(&probe.eff, sizeof probe.eff),
                         dc_hash64(&probe.fb_eff, sizeof probe.fb_eff)};
    probe.hash = dc_hash64(parts, sizeof parts);
    if (!c->vbuckets) {
        if (!(c->vbuckets = calloc(VBUCKETS, sizeof *c->vbuckets)))
            return NULL;
        c->nvbuckets = VBUCKETS;
    }
    dc_variant **bucket = &c->vbuckets[probe.hash & (c->nvbuckets - 1)];
    for (dc_variant *v = *bucket; v; v = v->next) {
        if (v->hash == probe.hash && v->plugin == pi &&
            memcmp(&v->eff, &probe.eff, sizeof v->eff) == 0 &&
            memcmp(&v->fb_eff, &probe.fb_eff, sizeof v->fb_eff) == 0) {
            v->refs++;
            return v;
        }
    }
    dc_variant *v = malloc(sizeof *v);
    if (!v)
        return NULL;
    *v = probe;
    v->cache = c;
    v->refs = 1;
    v->key = dc_variant_key(g->keys[pi], &g->eff[pi], &v->eff);
    v->fb_key = fb ? dc_variant_key(fb->run.key, fb->run.eff, &v->fb_eff) : 0;
    v->next = *bucket;
    *bucket = v;
    return v;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The domains that apply to the host, in bundle order (none when it is skipped), into *out and
 * *n. Through the bundle's matcher the cost is what the host matches, not the number of
 * domains: the patterns found are sorted and merged with the "*" domains, into the cache's own
 * array. A bundle made without a matcher (by hand) has its regexes searched one by one, into
 * small or an allocation (*owned). -1 when out of memory. */
static int domains_applying(dc_gen *g, const char *host, size_t len, uint32_t *small,
                            size_t nsmall, const uint32_t **out, uint32_t *n, int *owned)
{
    const dc_bundle *b = g->bundle;
    dc_match_cache *c = &g->cache;
    *owned = 0;
    *n = 0;
    *out = small;
    if (!b->enabled)
        return 0;
    if (b->hosts) {
        if (!c->scratch && dc_cache_bind(c, b) != DC_OK)
            return -1;
        int k = dc_hostset_match_list(b->hosts, c->scratch, host, len, c->hits, c->found);
        if (k < 0)
            return -1;
        int skipped = 0;
        uint32_t nf = 0;
        for (int i = 0; i < k; i++) {
            uint32_t id = c->found[i];
            c->hits[id] = 0;
            if (id < b->nskip)
                skipped = 1;
            else
                c->found[nf++] = id - b->nskip;
        }
        if (skipped)
            return 0;
        qsort(c->found, nf, sizeof *c->found, u32_cmp);
        uint32_t i = 0, j = 0, m = 0;
        while (i < nf || j < c->nany)
            c->doms[m++] = j >= c->nany || (i < nf && c->found[i] < c->anyd[j]) ? c->found[i++]
                                                                             : c->anyd[j++];
        *out = c->doms;
        *n = m;
        return 0;
    }
    for (uint32_t i = 0; i < b->nskip; i++)
        if (dc_re_search(b->skip[i], host, len, NULL) == 1)
            return 0;
    uint32_t *v = b->ndomains <= nsmall ? small : malloc(b->ndomains * sizeof *v);
    if (!v)
        return -1;
    *owned = v != small;
    for (uint32_t d = 0; d < b->ndomains; d++)
        if (b->domains[d].any ||
            (b->domains[d].re && dc_re_search(b->domains[d].re, host, len, NULL) == 1))
            v[(*n)++] = d;
    *out = v;
    return 0;
}

/* The result for these items (count[] per phase, the phases' items one after the other in
 * c->build, each holding a reference on its variant): one already shared, or a new one. Either
 * way with a reference for the caller. NULL: no memory (the items' references are released). */
static dc_match *share(dc_match_cache *c, const uint32_t *count, uint32_t total)
{
    uint64_t h = table_hash(c->build, total * sizeof *c->build,
                            table_hash(count, DC_PHASE_COUNT * sizeof *count, 0));
    for (dc_match *m = c->rbuckets[h & (c->nrbuckets - 1)]; m; m = m->next) {
        if (m->hash == h && memcmp(m->count, count, sizeof m->count) == 0 &&
            memcmp(m->items[0], c->build, total * sizeof *c->build) == 0) {
            items_release(c->build, total); /* the shared result holds its own */
            m->refs++;
            return m;
        }
    }
    size_t size = sizeof(dc_match) + (total ? total : 1) * sizeof(dc_item);
    dc_match *m = calloc(1, size);
    if (!m) {
        items_release(c->build, total);
        return NULL;
    }
    dc_item *items = (dc_item *)(m + 1);
    memcpy(items, c->build, total * sizeof *items);
    for (int ph = 0; ph < DC_PHASE_COUNT; ph++) {
        m->items[ph] = items;
        m->count[ph] = count[ph];
        items += count[ph];
    }
    m->hash = h;
    m->bytes = size;
    m->refs = 1;
    if (c->bytes + size <= c->max_bytes) {
        m->cache = c;
        m->next = c->rbuckets[h & (c->nrbuckets - 1)];
        c->rbuckets[h & (c->nrbuckets - 1)] = m;
        c->bytes += size;
    }
    return m;
}

/* Matches the host: its items, phase by phase in bundle order, then the result they share.
 * The policy rules' host matches are computed once, when the first plugin whose settings
 * depend on the host is met. */
static dc_match *resolve(dc_gen *g, const char *host, size_t len)
{
    const dc_bundle *b = g->bundle;
    dc_match_cache *c = &g->cache;
    uint32_t count[DC_PHASE_COUNT] = {0};

    /* The domains that apply: computed once, used by both passes. */
    uint32_t small[64], nd = 0;
    const uint32_t *doms = NULL;
    int owned = 0;
    if (domains_applying(g, host, len, small, sizeof small / sizeof *small, &doms, &nd,
                         &owned) != 0)
        return NULL;
    uint32_t total = 0;
    for (uint32_t j = 0; j < nd; j++) {
        uint32_t d = doms[j];
        for (uint32_t k = 0; k < b->domains[d].nplugins; k++) {
            const dc_plugin *p = &b->plugins[b->domains[d].plugins[k]];
            if (!p->skip) {
                count[p->phase]++;
                total++;
            }
        }
    }
    if (total > c->buildcap) {
        dc_item *nb = realloc(c->build, total * sizeof *nb);
        if (!nb) {
            if (owned)
                free((void *)doms);
            return NULL;
        }
        c->build = nb;
        c->buildcap = total;
    }
    uint32_t at[DC_PHASE_COUNT], fill = 0;
    for (int ph = 0; ph < DC_PHASE_COUNT; ph++) {
        at[ph] = fill;
        fill += count[ph];
    }
    unsigned char hsmall[64], *hostm = NULL;
    uint32_t nrules = dc_policy_rule_count(g->policy);
    int failed = 0;
    for (uint32_t j = 0; j < nd && !failed; j++) {
        uint32_t d = doms[j];
        for (uint32_t k = 0; k < b->domains[d].nplugins; k++) {
            uint32_t pi = b->domains[d].plugins[k];
            const dc_plugin *p = &b->plugins[pi];
            if (p->skip)
                continue;
            dc_variant *v = NULL;
            if (g->hostdep[pi]) {
                if (!hostm) {
                    hostm = nrules <= sizeof hsmall ? hsmall : malloc(nrules);
                    if (!hostm) {
                        failed = 1;
                        break;
                    }
                    dc_policy_host_rules(g->policy, host, len, hostm);
                }
                if (!(v = variant_get(g, pi, hostm))) {
                    failed = 1;
                    break;
                }
            }
            c->build[at[p->phase]++] = (dc_item){d, pi, v};
        }
    }
    if (hostm != hsmall)
        free(hostm);
    if (owned)
        free((void *)doms);
    if (failed) {
        /* the variants taken so far: the items made, wherever their phase put them */
        for (int ph = 0, start = 0; ph < DC_PHASE_COUNT; start += (int)count[ph], ph++)
            items_release(c->build + start, at[ph] - (uint32_t)start);
        return NULL;
    }
    return share(c, count, total);
}

dc_match *dc_match_host(dc_gen *gen, const char *host, size_t len)
{
    dc_match_cache *c = &gen->cache;
    uint64_t h = table_hash(host, len, 0);
    uint32_t mask = c->nslots - 1, home = (uint32_t)h & mask;
    if (len <= DC_HOST_INLINE) {
        for (uint32_t k = 0; k < PROBE; k++) {
            uint32_t i = (home + k) & mask;
            if (c->hashes[i] != h)
                continue;
            dc_host_slot *s = &c->slots[i];
            if (s->m && s->len == len && memcmp(s->host, host, len) == 0) {
                s->m->refs++;
                return s->m;
            }
        }
    }
    dc_match *m = resolve(gen, host, len);
    if (!m || len > DC_HOST_INLINE || !m->cache)
        return m; /* not kept: it serves this request */
    /* a free slot of the window while the table has room, else one of its slots gives way */
    uint32_t i = UINT32_MAX;
    for (uint32_t k = 0; k < PROBE && c->size < c->cap && i == UINT32_MAX; k++)
        if (!c->slots[(home + k) & mask].m)
            i = (home + k) & mask;
    if (i == UINT32_MAX) {
        i = (home + c->clock++ % PROBE) & mask;
        if (c->slots[i].m) {
            dc_match_release(c->slots[i].m);
            c->size--;
        } else if (c->size >= c->cap) {
            return m; /* full, and this window has no slot to give: not kept */
        }
    }
    dc_host_slot *s = &c->slots[i];
    c->hashes[i] = h;
    s->len = (uint16_t)len;
    memcpy(s->host, host, len);
    s->m = m;
    m->refs++;
    c->size++;
    return m;
}
