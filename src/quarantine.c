/* quarantine.c - quota trips counted per plugin (by name and code, so a fixed version starts
 * clean) in fixed windows, and the quarantine that follows too many of them (SPEC 5).
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

int dc_quarantine_active(dc_engine *e, uint64_t qkey, double now_ms)
{
    dc_qentry *q = find(e, qkey);
    return q && q->until > now_ms;
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
    dc_qentry *q = entry(e, qkey);
    if (q && q->ok_runs < UINT32_MAX)
        q->ok_runs++;
}

int dc_quarantine_clean(dc_engine *e, uint64_t qkey)
{
    dc_qentry *q = find(e, qkey);
    return q && q->ok_runs > 0 && q->trips_total == 0;
}

int dc_quarantine_trip(dc_engine *e, uint64_t qkey, const dc_quarantine_cfg *cfg, double now_ms)
{
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
