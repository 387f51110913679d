/* syncer.c - a worker's thread that follows the shared store: when the store has a new
 * generation it reads, verifies and decodes the snapshot and prepares the generation (regexes
 * compiled, policy per plugin, state keys) and posts it to the engine, so that the request
 * thread only swaps a pointer. It also frees the generations the requests let go of, and adds
 * the counts of the events every request emits, and of every plugin call, to the shared
 * counters (dc_events_defer, dc_ledger_defer).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "sync.h"

/* how often the store's generation is looked at: one load from shared memory */
#define DC_SYNCER_PERIOD_MS 20

struct dc_syncer {
    dc_engine *e;
    dc_store *s;
    dc_poller *poller;        /* under pmu: a poller of this process whose bundle is shared */
    pthread_mutex_t pmu;
    uint64_t seen;            /* the store generation last prepared or refused */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                 /* under mu */
};

static void *run(void *arg)
{
    dc_syncer *y = arg;
    /* a low priority (nice 10: about a tenth of a core against a busy event loop, so a 10,000
     * plugin bundle still comes into force within a fraction of a second): decoding must not
     * take the core from the loop (Linux sets a thread's nice value by its thread id) */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&y->mu);
    while (!y->stop) {
        pthread_mutex_unlock(&y->mu);
        uint64_t gen = dc_store_generation(y->s);
        if (gen && gen != y->seen) {
            pthread_mutex_lock(&y->pmu); /* the poller stays while used: detaching waits */
            dc_bundle *shared = y->poller ? dc_poller_bundle_of(y->poller, gen) : NULL;
            pthread_mutex_unlock(&y->pmu);
            dc_prepared *p = dc_prepare_from_store(y->e, y->s, gen, shared);
            if (p) {
                y->seen = p->store_gen;
                dc_engine_post(y->e, p);
            } /* out of memory: tried again next round */
        }
        dc_engine_reap(y->e);
        dc_events_fold(y->e->events);
        dc_ledger_fold(&y->e->ledger);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += DC_SYNCER_PERIOD_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&y->mu);
        while (!y->stop && pthread_cond_timedwait(&y->cv, &y->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&y->mu);
    return NULL;
}

dc_rc dc_syncer_start(dc_engine *e, dc_store *s, dc_poller *shared, dc_syncer **out,
                      char *err, size_t errlen)
{
    if (!e || !s || !out) {
        dc_set_err(err, errlen, "dc_syncer_start: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    if (atomic_load(&e->prepared_off_thread)) {
        dc_set_err(err, errlen, "dc_syncer_start: the engine has a syncer already");
        return DC_EBUSY;
    }
    dc_syncer *y = calloc(1, sizeof *y);
    if (!y) {
        dc_set_err(err, errlen, "out of memory");
        return DC_ENOMEM;
    }
    y->e = e;
    y->s = s;
    y->poller = shared; /* before the thread starts: its first look may be at its bundle */
    y->seen = e->synced;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&y->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&y->mu, NULL);
    pthread_mutex_init(&y->pmu, NULL);
    atomic_store(&e->prepared_off_thread, 1);
    dc_engine_defer_frees(e, 1);
    dc_events_defer(e->events, 1); /* the thread folds the request path's counts */
    dc_ledger_defer(&e->ledger, 1);
    if (pthread_create(&y->thread, NULL, run, y) != 0) {
        atomic_store(&e->prepared_off_thread, 0);
        dc_engine_defer_frees(e, 0);
        dc_events_defer(e->events, 0);
        dc_ledger_defer(&e->ledger, 0);
        pthread_cond_destroy(&y->cv);
        pthread_mutex_destroy(&y->mu);
        pthread_mutex_destroy(&y->pmu);
        free(y);
        dc_set_err(err, errlen, "cannot start the syncer thread");
        return DC_ETHREAD;
    }
    *out = y;
    return DC_OK;
}

void dc_syncer_share(dc_syncer *y, dc_poller *p)
{
    if (!y)
        return;
    pthread_mutex_lock(&y->pmu);
    y->poller = p;
    pthread_mutex_unlock(&y->pmu);
}

void dc_syncer_stop(dc_syncer *y)
{
    if (!y)
        return;
    pthread_mutex_lock(&y->mu);
    y->stop = 1;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->thread, NULL);
    dc_engine *e = y->e;
    /* back to preparing on the request thread; what was posted and not taken is dropped (the
     * store is read again at the next dc_engine_sync) */
    atomic_store(&e->prepared_off_thread, 0);
    dc_prepared_free(dc_engine_take(e));
    dc_engine_defer_frees(e, 0);
    dc_events_defer(e->events, 0);
    dc_ledger_defer(&e->ledger, 0);
    pthread_cond_destroy(&y->cv);
    pthread_mutex_destroy(&y->mu);
    pthread_mutex_destroy(&y->pmu);
    free(y);
}
