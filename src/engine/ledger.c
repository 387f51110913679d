/* ledger.c - the engine's accounting: every call's metrics, quota trips counted per plugin (by
 * name and code, so a fixed version starts clean) in fixed windows, and the quarantine that
 * follows too many of them. Two backends: over the shared store, so that a plugin put in
 * quarantine by one process is skipped by all, or a private table (the command, tests).
 */
#include <stdlib.h>

#include "engine.h"

static int is_trip(dc_result res)
{
    return res == DC_RESULT_QUOTA_INSTRUCTIONS || res == DC_RESULT_QUOTA_TIME ||
           res == DC_RESULT_QUOTA_MEMORY;
}

/* ---- over the shared store ---- */

static int shared_quarantined(dc_ledger *l, uint64_t qkey)
{
    /* one probe of the table for a plugin that never tripped; the clock only for one that was
     * quarantined at some time */
    double until = dc_store_quarantine_until_ms(dc_store_quarantine(l->store, qkey, 0));
    return until > 0 && until > dc_unix_ms();
}

static double shared_until(dc_ledger *l, uint64_t qkey, uint64_t *count)
{
    *count = 0;
    dc_quarantine_slot *q = dc_store_quarantine(l->store, qkey, 0);
    if (q)
        *count = __atomic_load_n(&q->quarantines, __ATOMIC_RELAXED);
    return dc_store_quarantine_until_ms(q);
}

/* The shared metrics entry of a runnable (NULL when the table is full); looked up once, then
 * remembered while it still holds the runnable's key. An entry idle for ten minutes may be
 * handed to another key by any process: the key check catches that, and the lookup runs
 * again (rarely: once per plugin and swap). */
static dc_plugin_metrics *shared_entry(dc_ledger *l, const dc_runnable *r)
{
    dc_plugin_metrics *m = *r->met;
    if (m && __atomic_load_n(&m->key, __ATOMIC_RELAXED) == dc_store_key(r->qkey))
        return m;
    m = dc_store_metrics(l->store, r->qkey, 1);
    *r->met = m;
    return m;
}

/* Counts a call in this process, in the twin of the store's entry m (request thread). */
static void pending_note(dc_ledger *l, dc_plugin_metrics *m, dc_result res, uint64_t us)
{
    uint32_t i = (uint32_t)(m - l->met);
    dc_pending *p = &l->twins[i];
    dc_metrics_note(&p->local, res, us);
    if (!p->listed) {
        p->listed = 1;
        l->order[l->nlisted] = i;
        __atomic_store_n(&l->nlisted, l->nlisted + 1, __ATOMIC_RELEASE);
    }
}

/* Adds what entry i counted in this process to the store. Under fold_mu. */
static void pending_fold(dc_ledger *l, uint32_t i, double now_ms_unix)
{
    dc_pending *p = &l->twins[i];
    dc_metrics_fold(&l->met[i], &p->local, &p->folded, now_ms_unix);
}

static int shared_record(dc_ledger *l, const dc_runnable *run, dc_result res, uint64_t us)
{
    dc_plugin_metrics *m = shared_entry(l, run);
    if (!is_trip(res)) {
        if (l->deferred && m)
            pending_note(l, m, res, us); /* plain stores: dc_ledger_fold adds them up */
        else
            dc_metrics_record(m, res, us, dc_unix_ms_coarse()); /* relaxed atomic adds */
        return 0;
    }
    dc_metrics_record(m, res, us, dc_unix_ms_coarse());
    const dc_quarantine_cfg *cfg = &run->eff->quarantine;
    /* with quarantine off nothing is counted here: the metrics count the trip, which is what
     * shared_clean looks at too */
    if (!cfg->trips)
        return 0;
    dc_quarantine_slot *q = dc_store_quarantine(l->store, run->qkey, 1);
    return dc_store_quarantine_trip(q, cfg->trips, cfg->window_s, cfg->duration_s, dc_unix_ms());
}

static int shared_clean(dc_ledger *l, uint64_t qkey)
{
    /* ran well in some process, never tripped in any, never marked by a watchdog */
    dc_quarantine_slot *q = dc_store_quarantine(l->store, qkey, 0);
    if (q && (__atomic_load_n(&q->trips, __ATOMIC_RELAXED) != 0 ||
              dc_store_quarantine_until_ms(q) != 0))
        return 0;
    const dc_plugin_metrics *m = dc_store_metrics(l->store, qkey, 0);
    if (!m)
        return 0;
    if (l->deferred) { /* with this process's latest calls */
        pthread_mutex_lock(&l->fold_mu);
        pending_fold(l, (uint32_t)(m - l->met), dc_unix_ms_coarse());
        pthread_mutex_unlock(&l->fold_mu);
    }
    uint64_t runs = __atomic_load_n(&m->runs, __ATOMIC_RELAXED);
    uint64_t bad = __atomic_load_n(&m->errors, __ATOMIC_RELAXED);
    uint64_t trips = __atomic_load_n(&m->quota_instructions, __ATOMIC_RELAXED) +
                     __atomic_load_n(&m->quota_time, __ATOMIC_RELAXED) +
                     __atomic_load_n(&m->quota_memory, __ATOMIC_RELAXED);
    return trips == 0 && runs > bad;
}

static const dc_plugin_metrics *shared_metrics(dc_ledger *l, uint64_t qkey,
                                               const dc_plugin_metrics *cached)
{
    if (cached && __atomic_load_n(&cached->key, __ATOMIC_RELAXED) == dc_store_key(qkey))
        return cached;
    return dc_store_metrics(l->store, qkey, 0);
}

static void shared_sweep(dc_ledger *l, const dc_gen *g)
{
    (void)l; /* the store's entries age out on their own, shared by every process */
    (void)g;
}

static const dc_ledger_ops shared_ops = {shared_quarantined, shared_until, shared_record,
                                         shared_clean, shared_metrics, shared_sweep};

/* ---- private, in this process ---- */

static dc_qentry **bucket(dc_ledger *l, uint64_t key)
{
    return &l->tab[key % DC_QBUCKETS];
}

static dc_qentry *find(dc_ledger *l, uint64_t key)
{
    for (dc_qentry *q = *bucket(l, key); q; q = q->next)
        if (q->key == key)
            return q;
    return NULL;
}

/* The entry for qkey, created when missing; NULL without memory (then nothing is counted and
 * the plugin simply stays in service). */
static dc_qentry *entry(dc_ledger *l, uint64_t qkey)
{
    dc_qentry *q = find(l, qkey);
    if (!q && (q = calloc(1, sizeof *q))) {
        q->key = qkey;
        q->next = *bucket(l, qkey);
        *bucket(l, qkey) = q;
    }
    return q;
}

static int private_quarantined(dc_ledger *l, uint64_t qkey)
{
    dc_qentry *q = find(l, qkey);
    return q && q->until > 0 && q->until > dc_now_ms();
}

static double private_until(dc_ledger *l, uint64_t qkey, uint64_t *count)
{
    *count = 0;
    dc_qentry *q = find(l, qkey);
    if (!q || q->until <= 0)
        return 0;
    return dc_unix_ms() + (q->until - dc_now_ms()); /* this table's clock is monotonic */
}

static int private_trip(dc_ledger *l, uint64_t qkey, const dc_quarantine_cfg *cfg)
{
    double now_ms = dc_now_ms();
    dc_qentry *q = entry(l, qkey);
    if (!q)
        return 0;
    q->trips_total++;
    if (!cfg->trips)
        return 0;
    if (q->trips == 0 || now_ms - q->window_start > (double)cfg->window_s * 1000.0) {
        q->window_start = now_ms;
        q->trips = 0;
    }
    if (++q->trips < cfg->trips)
        return 0;
    q->trips = 0;
    q->until = now_ms + (double)cfg->duration_s * 1000.0;
    return 1;
}

static int private_record(dc_ledger *l, const dc_runnable *run, dc_result res, uint64_t us)
{
    (void)us; /* no per-call metrics are kept in-process */
    if (res == DC_RESULT_OK) {
        dc_qentry *q = entry(l, run->qkey);
        if (q && q->ok_runs < UINT32_MAX)
            q->ok_runs++;
        return 0;
    }
    return is_trip(res) ? private_trip(l, run->qkey, &run->eff->quarantine) : 0;
}

static int private_clean(dc_ledger *l, uint64_t qkey)
{
    dc_qentry *q = find(l, qkey);
    return q && q->ok_runs > 0 && q->trips_total == 0;
}

static const dc_plugin_metrics *private_metrics(dc_ledger *l, uint64_t qkey,
                                                const dc_plugin_metrics *cached)
{
    (void)l;
    (void)qkey;
    (void)cached;
    return NULL;
}

static void private_sweep(dc_ledger *l, const dc_gen *g)
{
    for (int b = 0; b < DC_QBUCKETS; b++)
        for (dc_qentry *q = l->tab[b]; q; q = q->next)
            q->keep = 0;
    for (uint32_t i = 0; g && i < g->bundle->nplugins; i++) {
        dc_qentry *q = find(l, g->qkeys[i]);
        if (q)
            q->keep = 1;
        if (g->fallback[i] && (q = find(l, g->fallback[i]->run.qkey)))
            q->keep = 1;
    }
    for (int b = 0; b < DC_QBUCKETS; b++) {
        dc_qentry **pp = &l->tab[b];
        while (*pp) {
            dc_qentry *q = *pp;
            if (q->keep) {
                pp = &q->next;
            } else {
                *pp = q->next;
                free(q);
            }
        }
    }
}

static const dc_ledger_ops private_ops = {private_quarantined, private_until, private_record,
                                          private_clean, private_metrics, private_sweep};

void dc_ledger_init(dc_ledger *l, dc_store *store)
{
    l->store = store;
    l->ops = store ? &shared_ops : &private_ops;
    pthread_mutex_init(&l->fold_mu, NULL);
}

void dc_ledger_free(dc_ledger *l)
{
    dc_ledger_defer(l, 0);
    free(l->twins);
    free(l->order);
    l->twins = NULL;
    l->order = NULL;
    pthread_mutex_destroy(&l->fold_mu);
    private_sweep(l, NULL); /* the private table, empty with the shared backend */
}

void dc_ledger_defer(dc_ledger *l, int on)
{
    if (!on) {
        dc_ledger_fold(l);
        l->deferred = 0; /* the twins stay (with their folded counts) for the next turn on */
        return;
    }
    if (!l->store || l->deferred)
        return;
    if (!l->order) {
        dc_plugin_metrics *met = dc_store_metrics_at(l->store, 0, &l->nmet);
        if (!met || !l->nmet)
            return;
        /* a twin per entry of the store (1,024 at most): calloc maps them untouched, and a
         * page only becomes memory when a plugin of it runs */
        dc_pending *twins = calloc(l->nmet, sizeof *twins);
        uint32_t *order = calloc(l->nmet, sizeof *order);
        if (!twins || !order) {
            free(twins);
            free(order);
            return;
        }
        l->met = met;
        l->twins = twins;
        l->order = order;
    }
    l->deferred = 1;
}

void dc_ledger_fold(dc_ledger *l)
{
    if (!l->deferred)
        return; /* off: nothing was counted here since the fold that turned it off */
    uint32_t n = __atomic_load_n(&l->nlisted, __ATOMIC_ACQUIRE);
    double now = dc_unix_ms_coarse();
    pthread_mutex_lock(&l->fold_mu);
    for (uint32_t k = 0; k < n; k++)
        pending_fold(l, l->order[k], now);
    pthread_mutex_unlock(&l->fold_mu);
}
