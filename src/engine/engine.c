/* engine.c - the per-process engine: bundle generations (swapped in between requests, pinned by
 * the requests that began under them) and the pool of plugin states, keyed by plugin identity
 * so that a state survives a bundle swap when its plugin's code did not change.
 */
#include <pthread.h>
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
    e->shdicts = cfg->shdicts;
    dc_ledger_init(&e->ledger, cfg->store);
    e->max_states = cfg->max_states ? cfg->max_states : dc_policy_max_states(e->policy);
    e->host_cache_size = cfg->host_cache_size ? cfg->host_cache_size : 4096;
    e->rng = cfg->seed;
    if (!e->rng) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        e->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)e;
    }
    atomic_init(&e->grave.on, 0);
    atomic_init(&e->grave.gens, NULL);
    atomic_init(&e->pending, NULL);
    e->nslots_buckets = 64;
    while (e->nslots_buckets < e->max_states * 2)
        e->nslots_buckets <<= 1;
    e->slots = calloc(e->nslots_buckets, sizeof *e->slots);
    e->blocks = dc_sbx_blocks_new(); /* NULL only means no cache */
    dc_rc rc = e->slots ? DC_OK : DC_ENOMEM;
    if (rc == DC_OK && cfg->watchdog_grace_ms)
        rc = dc_watchdog_start(cfg, &e->watchdog);
    if (rc != DC_OK) {
        free(e->slots);
        dc_sbx_blocks_free(e->blocks);
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
    e->run_errors_only = 0;
}

void dc_engine_on_run_errors(dc_engine *e, dc_run_cb cb, void *ud)
{
    dc_engine_on_run(e, cb, ud);
    e->run_errors_only = 1;
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
    free(g->idents);
    free(g->sorted_keys);
    free(g);
}

/* Frees a generation nothing points at any more, on whichever thread holds it. */
static void gen_free(dc_gen *g)
{
    dc_cache_free(&g->cache);
    dc_bundle *b = g->bundle;
    gen_free_parts(g);
    dc_bundle_unref(b);
}

void dc_gen_release(dc_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    dc_grave *yard = g->grave;
    if (yard && atomic_load_explicit(&yard->on, memory_order_acquire)) {
        /* freeing a large bundle takes milliseconds: left to the thread that reaps */
        /* a lock-free push: the thread that reaps may be descheduled at any point */
        dc_gen *head = atomic_load_explicit(&yard->gens, memory_order_relaxed);
        do
            g->dead_next = head;
        while (!atomic_compare_exchange_weak_explicit(&yard->gens, &head, g,
                                                      memory_order_release,
                                                      memory_order_relaxed));
        return;
    }
    gen_free(g);
}

void dc_engine_reap(dc_engine *e)
{
    dc_gen *g = atomic_exchange_explicit(&e->grave.gens, NULL, memory_order_acquire);
    while (g) {
        dc_gen *next = g->dead_next;
        gen_free(g);
        g = next;
    }
}

void dc_engine_defer_frees(dc_engine *e, int on)
{
    atomic_store_explicit(&e->grave.on, on, memory_order_release);
    if (!on)
        dc_engine_reap(e);
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
    dc_ledger_fold(&e->ledger); /* this process's latest calls too */
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
            for (unsigned b = 0; b < DC_TIME_BUCKETS; b++)
                st.time_buckets[b] = __atomic_load_n(&m->latency[b], __ATOMIC_RELAXED);
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

static int by_ident(const void *a, const void *b)
{
    uint64_t x = ((const dc_ident *)a)->id, y = ((const dc_ident *)b)->id;
    if (x != y)
        return x < y ? -1 : 1;
    uint32_t i = ((const dc_ident *)a)->i, j = ((const dc_ident *)b)->i;
    return i < j ? -1 : i > j; /* the first of twins first */
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
 * new code gets old's version when that one ran without trips, else old's fallback. Both
 * identity lists are sorted already (dc_gen_prepare): one merge, linear in the two bundles.
 * Out of memory only means fewer fallbacks. */
static void link_fallbacks(dc_engine *e, dc_gen *g, const dc_gen *old)
{
    uint32_t n = old ? old->bundle->nplugins : 0, m = g->bundle->nplugins;
    uint32_t j = 0;
    for (uint32_t k = 0; k < m && j < n; k++) {
        const dc_ident *a = &g->idents[k];
        while (j < n && old->idents[j].id < a->id)
            j++;
        if (j == n || old->idents[j].id != a->id)
            continue;
        uint32_t i = a->i, oj = old->idents[j].i;
        const dc_fallback *prev = old->fallback[oj];
        if (g->bundle->plugins[i].code_hash != old->bundle->plugins[oj].code_hash &&
            dc_ledger_clean(&e->ledger, old->qkeys[oj])) {
            dc_runnable r = dc_gen_runnable(old, oj);
            g->fallback[i] = fallback_new(old->bundle, &r);
        } else if (prev) {
            g->fallback[i] = fallback_new(prev->bundle, &prev->run);
        }
    }
}

/* A plugin's state identity: its name, code, quota and API filter, and which occurrence of
 * that set it is in the bundle, so that two identical plugins never share a state. Its
 * quarantine identity is its name and code only. */
static int key_seen(uint64_t *set, uint32_t mask, uint64_t k)
{
    /* open addressing; 0 marks an empty cell, so a key of 0 is stored as 1 */
    uint64_t v = k ? k : 1;
    for (uint32_t h = (uint32_t)(v ^ (v >> 32)) & mask;; h = (h + 1) & mask) {
        if (set[h] == v)
            return 1;
        if (!set[h]) {
            set[h] = v;
            return 0;
        }
    }
}

static dc_rc compute_keys(dc_gen *g)
{
    const dc_bundle *b = g->bundle;
    uint32_t cells = 16;
    while (cells < 2u * b->nplugins)
        cells <<= 1;
    uint64_t *set = calloc(cells, sizeof *set);
    if (!set)
        return DC_ENOMEM;
    for (uint32_t i = 0; i < b->nplugins; i++) {
        const dc_plugin *p = &b->plugins[i];
        const dc_quota *q = &g->eff[i].quota;
        uint64_t parts[6] = {dc_hash64(p->name, strlen(p->name)), p->code_hash,
                             q->instructions, ((uint64_t)q->time_ms << 32) | q->memory_kb,
                             (uint64_t)(uintptr_t)g->eff[i].api, 0};
        g->qkeys[i] = dc_hash64(parts, 2 * sizeof parts[0]);
        uint64_t k = dc_hash64(parts, sizeof parts);
        while (key_seen(set, cells - 1, k)) { /* a twin: next occurrence number */
            parts[5]++;
            k = dc_hash64(parts, sizeof parts);
        }
        g->keys[i] = k;
    }
    free(set);
    return DC_OK;
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
    dc_sbx_set_blocks(sbx, e->blocks);
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
    e->states_made++;
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
    /* A plugin still in force keeps its states, one per set of host settings it ran under
     * (found by its base key in the generation's sorted keys). */
    for (dc_slot *s = e->lru_head; s; s = s->next)
        s->keep = n && bsearch(&s->base, g->sorted_keys, n, sizeof *g->sorted_keys, by_key);
    dc_slot *s = e->lru_head;
    while (s) {
        dc_slot *next = s->next;
        if (!s->keep)
            slot_remove(e, s);
        s = next;
    }
}

static void gen_free_unused(dc_gen *g)
{
    g->refs = 1;
    g->grave = NULL;
    dc_gen_release(g);
}

dc_rc dc_gen_prepare(const dc_engine *e, dc_bundle *b, dc_gen **out)
{
    *out = NULL;
    dc_gen *g = calloc(1, sizeof *g);
    if (!g)
        return DC_ENOMEM;
    uint32_t n = b->nplugins ? b->nplugins : 1;
    g->bundle = dc_bundle_ref(b);
    g->keys = calloc(n, sizeof *g->keys);
    g->qkeys = calloc(n, sizeof *g->qkeys);
    g->eff = calloc(n, sizeof *g->eff);
    g->domain = calloc(n, sizeof *g->domain);
    g->fallback = calloc(n, sizeof *g->fallback);
    g->met = calloc(n, sizeof *g->met);
    g->hostdep = calloc(n, sizeof *g->hostdep);
    g->idents = calloc(n, sizeof *g->idents);
    g->sorted_keys = calloc(n, sizeof *g->sorted_keys);
    g->policy = e->policy;
    if (!g->keys || !g->qkeys || !g->eff || !g->domain || !g->fallback || !g->met ||
        !g->hostdep || !g->idents || !g->sorted_keys ||
        dc_cache_init(&g->cache, e->host_cache_size, DC_MATCH_CACHE_BYTES) != DC_OK ||
        dc_cache_bind(&g->cache, b) != DC_OK) {
        gen_free_unused(g);
        return DC_ENOMEM;
    }
    resolve_policy(g, e->policy);
    if (compute_keys(g) != DC_OK) {
        gen_free_unused(g);
        return DC_ENOMEM;
    }
    for (uint32_t i = 0; i < b->nplugins; i++)
        g->idents[i] = (dc_ident){ident(g, i), i};
    qsort(g->idents, b->nplugins, sizeof *g->idents, by_ident);
    memcpy(g->sorted_keys, g->keys, b->nplugins * sizeof *g->keys);
    qsort(g->sorted_keys, b->nplugins, sizeof *g->sorted_keys, by_key);
    g->refs = 1;
    *out = g;
    return DC_OK;
}

void dc_gen_discard(dc_gen *g)
{
    if (g)
        gen_free_unused(g);
}

void dc_prepared_free(dc_prepared *p)
{
    if (p) {
        dc_gen_discard(p->gen);
        free(p);
    }
}

void dc_engine_post(dc_engine *e, dc_prepared *p)
{
    /* one that the request thread has not taken yet is overtaken by this one */
    dc_prepared_free(atomic_exchange_explicit(&e->pending, p, memory_order_acq_rel));
}

dc_prepared *dc_engine_take(dc_engine *e)
{
    if (!atomic_load_explicit(&e->pending, memory_order_relaxed))
        return NULL; /* the cost on every request: one load */
    return atomic_exchange_explicit(&e->pending, NULL, memory_order_acq_rel);
}

void dc_engine_install(dc_engine *e, dc_gen *g)
{
    if (g) {
        g->number = ++e->next_gen;
        g->grave = &e->grave;
        link_fallbacks(e, g, e->gen);
    }
    dc_gen *old = e->gen;
    e->gen = g;
    sweep_states(e, g);
    dc_ledger_sweep(&e->ledger, g);
    dc_gen_release(old);
}

void dc_engine_set_bundle(dc_engine *e, dc_bundle *b)
{
    dc_gen *g = NULL;
    if (b && dc_gen_prepare(e, b, &g) != DC_OK)
        return; /* out of memory: the bundle in force stays */
    dc_engine_install(e, g);
}

void dc_engine_free(dc_engine *e)
{
    if (!e)
        return;
    dc_watchdog_stop(e->watchdog);
    dc_prepared_free(atomic_exchange(&e->pending, NULL));
    atomic_store(&e->grave.on, 0);
    dc_gen_release(e->gen);
    dc_engine_reap(e);
    while (e->lru_head)
        slot_remove(e, e->lru_head);
    dc_ledger_free(&e->ledger);
    dc_request_spares_free(e);
    dc_sbx_blocks_free(e->blocks); /* after the last state */
    free(e->slots);
    dc_policy_free(e->own_policy);
    free(e);
}
