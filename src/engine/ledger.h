/* ledger.h - the one place the engine records what its plugin calls did (metrics, quota trips,
 * clean runs) and asks whether a plugin is quarantined. Two backends behind one table of
 * functions, chosen once when the engine is made: the shared store, or a private table.
 */
#ifndef DC_LEDGER_H
#define DC_LEDGER_H

#include <pthread.h>

#include "store.h"
#include "policy.h"

struct dc_runnable;
struct dc_gen;

/* Quota trips of one plugin (by name and code), and its quarantine: the private backend. */
typedef struct dc_qentry {
    struct dc_qentry *next;
    uint64_t key;
    double window_start;     /* dc_now_ms() of the window's first trip */
    double until;            /* quarantined until then (0: not) */
    uint32_t trips;          /* in the current window */
    uint32_t trips_total;
    uint32_t ok_runs;        /* calls that ended without error or trip */
    int keep;
} dc_qentry;

#define DC_QBUCKETS 256

typedef struct dc_ledger dc_ledger;

typedef struct dc_ledger_ops {
    int (*quarantined)(dc_ledger *l, uint64_t qkey);
    double (*until)(dc_ledger *l, uint64_t qkey, uint64_t *count);
    int (*record)(dc_ledger *l, const struct dc_runnable *run, dc_result res, uint64_t us);
    int (*clean)(dc_ledger *l, uint64_t qkey);
    const dc_plugin_metrics *(*metrics)(dc_ledger *l, uint64_t qkey,
                                        const dc_plugin_metrics *cached);
    void (*sweep)(dc_ledger *l, const struct dc_gen *g);
} dc_ledger_ops;

/* The calls of one metrics entry of the store, counted in this process (dc_ledger_defer). */
typedef struct dc_pending {
    dc_plugin_metrics local;          /* written by the request thread only */
    dc_plugin_metrics folded;         /* what of local the store has: under fold_mu */
    int listed;                       /* in order[] (request thread) */
} dc_pending;

struct dc_ledger {
    const dc_ledger_ops *ops;
    dc_store *store;                  /* the shared backend's; NULL: private */
    dc_qentry *tab[DC_QBUCKETS];      /* the private backend's */
    /* the shared backend's deferred counts: a twin of the store's metrics table */
    int deferred;                     /* on: calls are counted in twins (dc_ledger_defer) */
    dc_pending *twins;                /* nmet of them, made at the first turn on */
    dc_plugin_metrics *met;           /* the store's table, twins[i] counting for met[i] */
    uint32_t nmet;
    uint32_t *order;                  /* the twins in use, as first used */
    uint32_t nlisted;                 /* written by the request thread (release) */
    pthread_mutex_t fold_mu;
};

/* Picks the backend: over store when there is one (every process then sees the same trips and
 * quarantine), else in-process. */
DC_HIDDEN void dc_ledger_init(dc_ledger *l, dc_store *store);
/* Forgets everything the private backend holds (the store's entries outlive the engine). */
DC_HIDDEN void dc_ledger_free(dc_ledger *l);
/* With on, the shared backend counts the calls that did not trip a quota in this process,
 * with plain stores, instead of atomic adds on cache lines every worker writes;
 * dc_ledger_fold adds them to the store. Trips still go to the store at once: they decide
 * quarantine. Turned on and off by the request thread while no folding thread runs (off
 * folds what is left). Without memory for the counts it stays off. */
DC_HIDDEN void dc_ledger_defer(dc_ledger *l, int on);
/* Adds the calls counted in this process since the last fold to the store (any thread). */
DC_HIDDEN void dc_ledger_fold(dc_ledger *l);

/* Before a call: 1 while qkey is quarantined. */
static inline int dc_ledger_quarantined(dc_ledger *l, uint64_t qkey)
{
    return l->ops->quarantined(l, qkey);
}
/* After a call: counts it (result, time in us) and, for a quota trip, counts the trip under the
 * runnable's quarantine settings. Returns 1 when this trip put the plugin in quarantine. */
static inline int dc_ledger_record(dc_ledger *l, const struct dc_runnable *run, dc_result res,
                                   uint64_t us)
{
    return l->ops->record(l, run, res, us);
}
/* Until when qkey is quarantined, in Unix ms (0: never was); *count gets the times it was. */
static inline double dc_ledger_until(dc_ledger *l, uint64_t qkey, uint64_t *count)
{
    return l->ops->until(l, qkey, count);
}
/* 1 when the plugin has run well and never tripped: fit to stand in for a newer version. */
static inline int dc_ledger_clean(dc_ledger *l, uint64_t qkey)
{
    return l->ops->clean(l, qkey);
}
/* The counters of qkey (cached: an entry looked up before, may be stale or NULL), or NULL when
 * none are kept. */
static inline const dc_plugin_metrics *dc_ledger_metrics(dc_ledger *l, uint64_t qkey,
                                                         const dc_plugin_metrics *cached)
{
    return l->ops->metrics(l, qkey, cached);
}
/* Forgets plugins no longer in force in g nor kept as its fallbacks (NULL: all). */
static inline void dc_ledger_sweep(dc_ledger *l, const struct dc_gen *g)
{
    l->ops->sweep(l, g);
}
/* The store a fatal-signal handler or the watchdog marks a quarantine in directly (they may
 * take no lock and allocate nothing); NULL for the private backend. */
static inline dc_store *dc_ledger_shared(const dc_ledger *l)
{
    return l->store;
}

#endif /* DC_LEDGER_H */
