/* engine.c - the per-process engine: bundle generations (swapped in between requests, pinned by
 * the requests that began under them) and the pool of plugin states, keyed by plugin identity
 * so that a state survives a bundle swap when its plugin's code did not change.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

void dc_engine_config_default(dc_engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host_cache_size = 4096;
}

dc_rc dc_engine_new(const dc_engine_config *cfg, dc_engine **out, char *err, size_t errlen)
{
    if (!cfg || !cfg->host) {
        dc_set_err(err, errlen, "engine: a host interface is required");
        return DC_EINVAL;
    }
    dc_engine *e = calloc(1, sizeof *e);
    if (!e)
        return DC_ENOMEM;
    e->policy = cfg->policy;
    if (!e->policy) {
        dc_rc rc = dc_policy_default(&e->own_policy, err, errlen);
        if (rc != DC_OK) {
            free(e);
            return rc;
        }
        e->policy = e->own_policy;
    }
    e->host = *cfg->host;
    e->events = cfg->events;
    dc_ledger_init(&e->ledger, cfg->store);
    e->max_states = cfg->max_states ? cfg->max_states : dc_policy_max_states(e->policy);
    e->host_cache_size = cfg->host_cache_size ? cfg->host_cache_size : 4096;
    e->rng = cfg->seed;
    if (!e->rng) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        e->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)e;
    }
    e->nslots_buckets = 64;
    while (e->nslots_buckets < e->max_states * 2)
        e->nslots_buckets <<= 1;
    e->slots = calloc(e->nslots_buckets, sizeof *e->slots);
    dc_rc rc = e->slots ? DC_OK : DC_ENOMEM;
    if (rc == DC_OK && cfg->watchdog_grace_ms)
        rc = dc_watchdog_start(cfg, &e->watchdog);
    if (rc != DC_OK) {
        free(e->slots);
        dc_policy_free(e->own_policy);
        free(e);
        dc_set_err(err, errlen, "engine: %s", rc == DC_ETHREAD ? "cannot start the watchdog thread"
                                                               : "out of memory");
        return rc;
    }
    *out = e;
    return DC_OK;
}

double dc_engine_random(dc_engine *e)
{
    /* xorshift64*: fast, good enough for sampling */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

void dc_engine_emit(dc_engine *e, dc_event ev, const char *domain, const char *plugin,
                    int phase, const char *msg, int status)
{
    if (!e->events)
        return;
    dc_event_info info = {ev, domain, plugin, phase, msg, status, 0, DC_SEV_USUAL};
    dc_events_emit(e->events, &info);
}

void dc_engine_on_run(dc_engine *e, dc_run_cb cb, void *ud)
{
    e->run_cb = cb;
    e->run_ud = ud;
}

uint32_t dc_engine_live_states(const dc_engine *e)
{
    return e->live;
}

dc_bundle *dc_engine_bundle(const dc_engine *e)
{
    return e->gen ? e->gen->bundle : NULL;
}

/* ---- generations ---- */

static void fallback_free(dc_fallback *f)
{
    if (f) {
        dc_bundle_unref(f->bundle);
        free(f);
    }
}

/* The parts of a generation (g itself included); the bundle reference is the caller's. */
static void gen_free_parts(dc_gen *g)
{
    for (uint32_t i = 0; g->fallback && i < g->bundle->nplugins; i++)
        fallback_free(g->fallback[i]);
    free(g->fallback);
    free(g->met);
    free(g->domain);
    free(g->keys);
    free(g->qkeys);
    free(g->eff);
    free(g->hostdep);
    free(g);
}

void dc_gen_release(dc_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    dc_cache_free(&g->cache);
    dc_bundle *b = g->bundle;
    gen_free_parts(g);
    dc_bundle_unref(b);
}

dc_runnable dc_gen_runnable(const dc_gen *g, uint32_t p)
{
    return (dc_runnable){&g->bundle->plugins[p], g->keys[p], g->keys[p], g->qkeys[p], &g->eff[p],
                         &g->met[p]};
}

int dc_item_runnable(dc_engine *e, const dc_gen *g, const dc_item *it, dc_runnable *out,
                     int *stand_in)
{
    const dc_variant *v = it->v;
    *out = dc_gen_runnable(g, it->plugin);
    *stand_in = 0;
    if (v) {
        out->eff = &v->eff;
        out->key = v->key;
    }
    if (!dc_ledger_quarantined(&e->ledger, out->qkey))
        return 1;
    const dc_fallback *fb = g->fallback[it->plugin];
    if (!fb || dc_ledger_quarantined(&e->ledger, fb->run.qkey))
        return 0;
    /* The stand-in runs under this host's settings too, never under another host's. */
    *out = fb->run;
    if (v) {
        out->eff = &v->fb_eff;
        out->key = v->fb_key;
    }
    *stand_in = 1;
    return 1;
}

uint32_t dc_engine_plugin_stats(dc_engine *e, dc_plugin_stats_cb each, void *ud)
{
    const dc_gen *g = e ? e->gen : NULL;
    if (!g)
        return 0;
    double now = dc_unix_ms();
    for (uint32_t i = 0; i < g->bundle->nplugins; i++) {
        const dc_plugin *p = &g->bundle->plugins[i];
        dc_plugin_stats st = {.domain = g->domain[i] ? g->domain[i] : "",
                              .plugin = p->name,
                              .phase = (int)p->phase};
        const dc_plugin_metrics *m = dc_ledger_metrics(&e->ledger, g->qkeys[i], g->met[i]);
        if (m) {
            st.runs = __atomic_load_n(&m->runs, __ATOMIC_RELAXED);
            st.errors = __atomic_load_n(&m->errors, __ATOMIC_RELAXED);
            st.quota_instructions = __atomic_load_n(&m->quota_instructions, __ATOMIC_RELAXED);
            st.quota_time = __atomic_load_n(&m->quota_time, __ATOMIC_RELAXED);
            st.quota_memory = __atomic_load_n(&m->quota_memory, __ATOMIC_RELAXED);
            st.total_ms = (double)__atomic_load_n(&m->total_us, __ATOMIC_RELAXED) / 1000.0;
            st.p99_ms = (double)dc_metrics_p99_us(m) / 1000.0;
        }
        double until = dc_ledger_until(&e->ledger, g->qkeys[i], &st.quarantines);
        st.quarantined = until > now;
        st.quarantined_until = until / 1000.0;
        if (each)
            each(ud, &st);
    }
    return g->bundle->nplugins;
}

/* The policy in force for each plugin on a host that no rule with a domain regex matches; a
 * plugin that such a rule could apply to is marked host-dependent, and gets its settings per
 * host when a host is matched (match.c). The bundle's spelling of a domain plays no part. */
static void resolve_policy(dc_gen *g, const dc_policy *policy)
{
    const dc_bundle *b = g->bundle;
    for (uint32_t d = 0; d < b->ndomains; d++)
        for (uint32_t k = 0; k < b->domains[d].nplugins; k++)
            if (!g->domain[b->domains[d].plugins[k]])
                g->domain[b->domains[d].plugins[k]] = b->domains[d].name;
    for (uint32_t i = 0; i < b->nplugins; i++) {
        dc_policy_resolve_rules(policy, NULL, b->plugins[i].name, &b->plugins[i].quota,
                                &g->eff[i]);
        g->hostdep[i] = (unsigned char)dc_policy_host_dependent(policy, b->plugins[i].name);
    }
}

/* ---- previous versions standing in for quarantined ones ---- */

static uint64_t ident(const dc_gen *g, uint32_t i)
{
    const char *d = g->domain[i] ? g->domain[i] : "";
    uint64_t parts[2] = {dc_hash64(d, strlen(d)),
                         dc_hash64(g->bundle->plugins[i].name, strlen(g->bundle->plugins[i].name))};
    return dc_hash64(parts, sizeof parts);
}

typedef struct ident_ix {
    uint64_t id;
    uint32_t i;
} ident_ix;

static int by_ident(const void *a, const void *b)
{
    uint64_t x = ((const ident_ix *)a)->id, y = ((const ident_ix *)b)->id;
    return x < y ? -1 : x > y;
}

static dc_fallback *fallback_new(dc_bundle *b, const dc_runnable *r)
{
    dc_fallback *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->bundle = dc_bundle_ref(b);
    f->eff = *r->eff;
    f->met = *r->met;
    f->run = *r;
    f->run.eff = &f->eff;
    f->run.met = &f->met;
    return f;
}

/* For each plugin of g whose domain and name were in old: the same code keeps old's fallback;
 * new code gets old's version when that one ran without trips, else old's fallback. Out of
 * memory only means fewer fallbacks. */
static void link_fallbacks(dc_engine *e, dc_gen *g, const dc_gen *old)
{
    uint32_t n = old ? old->bundle->nplugins : 0;
    ident_ix *ix = n ? malloc(n * sizeof *ix) : NULL;
    if (!ix)
        return;
    for (uint32_t j = 0; j < n; j++)
        ix[j] = (ident_ix){ident(old, j), j};
    qsort(ix, n, sizeof *ix, by_ident);
    for (uint32_t i = 0; i < g->bundle->nplugins; i++) {
        ident_ix probe = {ident(g, i), 0};
        const ident_ix *hit = bsearch(&probe, ix, n, sizeof *ix, by_ident);
        if (!hit)
            continue;
        uint32_t j = hit->i;
        const dc_fallback *prev = old->fallback[j];
        if (g->bundle->plugins[i].code_hash != old->bundle->plugins[j].code_hash &&
            dc_ledger_clean(&e->ledger, old->qkeys[j])) {
            dc_runnable r = dc_gen_runnable(old, j);
            g->fallback[i] = fallback_new(old->bundle, &r);
        } else if (prev) {
            g->fallback[i] = fallback_new(prev->bundle, &prev->run);
        }
    }
    free(ix);
}

/* A plugin's state identity: its name, code, quota and API filter, and which occurrence of
 * that set it is in the bundle, so that two identical plugins never share a state. Its
 * quarantine identity is its name and code only. */
static void compute_keys(dc_gen *g)
{
    const dc_bundle *b = g->bundle;
    for (uint32_t i = 0; i < b->nplugins; i++) {
        const dc_plugin *p = &b->plugins[i];
        const dc_quota *q = &g->eff[i].quota;
        uint64_t parts[6] = {dc_hash64(p->name, strlen(p->name)), p->code_hash,
                             q->instructions, ((uint64_t)q->time_ms << 32) | q->memory_kb,
                             (uint64_t)(uintptr_t)g->eff[i].api, 0};
        g->qkeys[i] = dc_hash64(parts, 2 * sizeof parts[0]);
        uint64_t k = dc_hash64(parts, sizeof parts);
        for (uint32_t j = 0; j < i; j++) {
            if (g->keys[j] == k) { /* a twin: next occurrence number, then look again */
                parts[5]++;
                k = dc_hash64(parts, sizeof parts);
                j = (uint32_t)-1;
            }
        }
        g->keys[i] = k;
    }
}

static dc_slot **slot_bucket(dc_engine *e, uint64_t key)
{
    return &e->slots[key & (e->nslots_buckets - 1)];
}

static void lru_unlink(dc_engine *e, dc_slot *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        e->lru_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        e->lru_tail = s->prev;
    s->prev = s->next = NULL;
}

static void lru_push_front(dc_engine *e, dc_slot *s)
{
    s->prev = NULL;
    s->next = e->lru_head;
    if (e->lru_head)
        e->lru_head->prev = s;
    e->lru_head = s;
    if (!e->lru_tail)
        e->lru_tail = s;
}

static void slot_remove(dc_engine *e, dc_slot *s)
{
    for (dc_slot **pp = slot_bucket(e, s->key); *pp; pp = &(*pp)->hnext) {
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    }
    lru_unlink(e, s);
    dc_sbx_free(s->sbx);
    free(s);
    e->live--;
}

static dc_slot *slot_find(dc_engine *e, uint64_t key)
{
    for (dc_slot *s = *slot_bucket(e, key); s; s = s->hnext)
        if (s->key == key)
            return s;
    return NULL;
}

dc_sbx *dc_engine_state(dc_engine *e, const dc_runnable *r, char *err, size_t errlen)
{
    dc_slot *s = slot_find(e, r->key);
    if (s) {
        if (s != e->lru_head) {
            lru_unlink(e, s);
            lru_push_front(e, s);
        }
        return s->sbx;
    }
    char chunk[300];
    snprintf(chunk, sizeof chunk, "=%s", r->plugin->name);
    dc_sbx *sbx = NULL;
    dc_rc rc = dc_sbx_new(r->plugin->bc, r->plugin->bclen, chunk, &r->eff->quota, r->eff->api,
                          &sbx, err, errlen);
    if (rc != DC_OK) {
        dc_errbuf_note(&e->first_error, rc, "plugin %s: no state: %s", r->plugin->name,
                       err ? err : dc_strerror(rc));
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        dc_sbx_free(sbx);
        dc_set_err(err, errlen, "out of memory");
        dc_errbuf_note(&e->first_error, DC_ENOMEM, "plugin %s: no state: out of memory",
                       r->plugin->name);
        return NULL;
    }
    if (e->live >= e->max_states && e->lru_tail)
        slot_remove(e, e->lru_tail);
    s->key = r->key;
    s->base = r->base;
    s->sbx = sbx;
    dc_slot **b = slot_bucket(e, r->key);
    s->hnext = *b;
    *b = s;
    lru_push_front(e, s);
    e->live++;
    return sbx;
}

dc_rc dc_engine_last_error(dc_engine *e, char *msg, size_t len)
{
    return dc_errbuf_take(e ? &e->first_error : NULL, msg, len);
}

void dc_engine_drop_state(dc_engine *e, uint64_t key)
{
    dc_slot *s = slot_find(e, key);
    if (s)
        slot_remove(e, s);
}

/* After a swap, states of plugins that are no longer in force are freed at once: a removed
 * plugin's memory must not linger until LRU eviction. A previous version kept as a stand-in
 * gets a state again only if it has to run. */
static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sweep_states(dc_engine *e, const dc_gen *g)
{
    uint32_t n = g ? g->bundle->nplugins : 0;
    uint64_t *keys = n ? malloc(n * sizeof *keys) : NULL;
    if (keys) {
        memcpy(keys, g->keys, n * sizeof *keys);
        qsort(keys, n, sizeof *keys, by_key);
    }
    /* A plugin still in force keeps its states, one per set of host settings it ran under
     * (found by its base key). Without memory for the sorted keys, only exact keys stay. */
    for (dc_slot *s = e->lru_head; s; s = s->next)
        s->keep = keys && bsearch(&s->base, keys, n, sizeof *keys, by_key) != NULL;
    for (uint32_t i = 0; !keys && i < n; i++) {
        dc_slot *s = slot_find(e, g->keys[i]);
        if (s)
            s->keep = 1;
    }
    free(keys);
    dc_slot *s = e->lru_head;
    while (s) {
        dc_slot *next = s->next;
        if (!s->keep)
            slot_remove(e, s);
        s = next;
    }
}

void dc_engine_set_bundle(dc_engine *e, dc_bundle *b)
{
    dc_gen *g = NULL;
    if (b) {
        g = calloc(1, sizeof *g);
        if (!g)
            return; /* out of memory: the bundle in force stays */
        uint32_t n = b->nplugins ? b->nplugins : 1;
        g->bundle = b;
        g->keys = calloc(n, sizeof *g->keys);
        g->qkeys = calloc(n, sizeof *g->qkeys);
        g->eff = calloc(n, sizeof *g->eff);
        g->domain = calloc(n, sizeof *g->domain);
        g->fallback = calloc(n, sizeof *g->fallback);
        g->met = calloc(n, sizeof *g->met);
        g->hostdep = calloc(n, sizeof *g->hostdep);
        g->policy = e->policy;
        if (!g->keys || !g->qkeys || !g->eff || !g->domain || !g->fallback || !g->met ||
            !g->hostdep ||
            dc_cache_init(&g->cache, e->host_cache_size, DC_MATCH_CACHE_BYTES) != DC_OK ||
            dc_cache_bind(&g->cache, b) != DC_OK) {
            gen_free_parts(g);
            return;
        }
        g->refs = 1;
        g->number = ++e->next_gen;
        dc_bundle_ref(b);
        resolve_policy(g, e->policy);
        compute_keys(g);
        link_fallbacks(e, g, e->gen);
    }
    dc_gen *old = e->gen;
    e->gen = g;
    sweep_states(e, g);
    dc_ledger_sweep(&e->ledger, g);
    dc_gen_release(old);
}

void dc_engine_free(dc_engine *e)
{
    if (!e)
        return;
    dc_watchdog_stop(e->watchdog);
    dc_gen_release(e->gen);
    while (e->lru_head)
        slot_remove(e, e->lru_head);
    dc_ledger_free(&e->ledger);
    free(e->slots);
    dc_policy_free(e->own_policy);
    free(e);
}
