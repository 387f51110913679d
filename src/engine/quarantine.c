/* quarantine.c - quota trips counted per plugin (by name and code, so a fixed version starts
 * clean) in fixed windows, and the quarantine that follows too many of them. With a
 * shared store (store.c) trips and quarantine live there, so that a plugin put in quarantine
 * by one process is skipped by all; without one (the command, tests) they live in the engine.
 */
#include <stdlib.h>

#include "engine.h"

static dc_qentry **bucket(dc_engine *e, uint64_t key)
{
    return &e->quarantine[key % DC_QBUCKETS];
}

static dc_qentry *find(dc_engine *e, uint64_t key)
{
    for (dc_qentry *q = *bucket(e, key); q; q = q->next)
        if (q->key == key)
            return q;
    return NULL;
}

int dc_quarantine_active(dc_engine *e, uint64_t qkey)
{
    if (e->store) {
        /* one probe of the table for a plugin that never tripped; the clock only for one
         * that was quarantined at some time */
        double until = dc_store_quarantine_until_ms(dc_store_quarantine(e->store, qkey, 0));
        return until > 0 && until > dc_unix_ms();
    }
    dc_qentry *q = find(e, qkey);
    return q && q->until > 0 && q->until > dc_now_ms();
}

double dc_quarantine_until(dc_engine *e, uint64_t qkey, uint64_t *count)
{
    *count = 0;
    if (e->store) {
        dc_quarantine_slot *q = dc_store_quarantine(e->store, qkey, 0);
        if (q)
            *count = __atomic_load_n(&q->quarantines, __ATOMIC_RELAXED);
        return dc_store_quarantine_until_ms(q);
    }
    dc_qentry *q = find(e, qkey);
    if (!q || q->until <= 0)
        return 0;
    return dc_unix_ms() + (q->until - dc_now_ms()); /* the engine's clock is monotonic */
}

/* The entry for qkey, created when missing; NULL without memory (then nothing is counted and
 * the plugin simply stays in service). */
static dc_qentry *entry(dc_engine *e, uint64_t qkey)
{
    dc_qentry *q = find(e, qkey);
    if (!q && (q = calloc(1, sizeof *q))) {
        q->key = qkey;
        q->next = *bucket(e, qkey);
        *bucket(e, qkey) = q;
    }
    return q;
}

void dc_quarantine_ok(dc_engine *e, uint64_t qkey)
{
    if (e->store)
        return; /* the store's metrics count the calls that ended well */
    dc_qentry *q = entry(e, qkey);
    if (q && q->ok_runs < UINT32_MAX)
        q->ok_runs++;
}

int dc_quarantine_clean(dc_engine *e, uint64_t qkey)
{
    if (e->store) {
        /* ran well in some process, never tripped in any, never marked by a watchdog */
        dc_quarantine_slot *q = dc_store_quarantine(e->store, qkey, 0);
        if (q && (__atomic_load_n(&q->trips, __ATOMIC_RELAXED) != 0 ||
                  dc_store_quarantine_until_ms(q) != 0))
            return 0;
        const dc_plugin_metrics *m = dc_store_metrics(e->store, qkey, 0);
        if (!m)
            return 0;
        uint64_t runs = __atomic_load_n(&m->runs, __ATOMIC_RELAXED);
        uint64_t bad = __atomic_load_n(&m->errors, __ATOMIC_RELAXED);
        uint64_t trips = __atomic_load_n(&m->quota_instructions, __ATOMIC_RELAXED) +
                         __atomic_load_n(&m->quota_time, __ATOMIC_RELAXED) +
                         __atomic_load_n(&m->quota_memory, __ATOMIC_RELAXED);
        return trips == 0 && runs > bad;
    }
    dc_qentry *q = find(e, qkey);
    return q && q->ok_runs > 0 && q->trips_total == 0;
}

int dc_quarantine_trip(dc_engine *e, uint64_t qkey, const dc_quarantine_cfg *cfg)
{
    if (e->store) {
        /* with quarantine off nothing is counted here: the metrics count the trip, which is
         * what dc_quarantine_clean looks at too */
        if (!cfg->trips)
            return 0;
        dc_quarantine_slot *q = dc_store_quarantine(e->store, qkey, 1);
        return dc_store_quarantine_trip(q, cfg->trips, cfg->window_s, cfg->duration_s,
                                        dc_unix_ms());
    }
    double now_ms = dc_now_ms();
    dc_qentry *q = entry(e, qkey);
    if (!q)
        return 0;
    if (!cfg->trips) {
        q->trips_total++;
        return 0;
    }
    q->trips_total++;
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

void dc_quarantine_sweep(dc_engine *e, const dc_gen *g)
{
    for (int b = 0; b < DC_QBUCKETS; b++)
        for (dc_qentry *q = e->quarantine[b]; q; q = q->next)
            q->keep = 0;
    for (uint32_t i = 0; g && i < g->bundle->nplugins; i++) {
        dc_qentry *q = find(e, g->qkeys[i]);
        if (q)
            q->keep = 1;
        if (g->fallback[i] && (q = find(e, g->fallback[i]->run.qkey)))
            q->keep = 1;
    }
    for (int b = 0; b < DC_QBUCKETS; b++) {
        dc_qentry **pp = &e->quarantine[b];
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
