/* watchdog.c - the last line of defence: a thread that looks at the call in progress
 * a few times a second and, when one is still running well past its deadline (stuck inside C,
 * where the quota hook cannot reach), marks the plugin quarantined in the shared store (when
 * the engine has one), reports it to the host, logs and ends the process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#define DC_WATCHDOG_PERIOD_MS 100

struct dc_watchdog {
    pthread_t thread;
    atomic_int stop;
    /* The call being watched; deadline 0 when none. The names are the bundle's strings, alive
     * while the call runs (the request pins its generation). */
    _Atomic double deadline_ms;
    _Atomic(const char *) domain;
    _Atomic(const char *) plugin;
    _Atomic uint64_t qkey;
    _Atomic uint32_t quarantine_s;
    double grace_ms;
    dc_store *store;          /* NULL: nothing to mark */
    dc_watchdog_cb cb;
    void *ud;
};

static void fire(dc_watchdog *w, double overdue)
{
    dc_watchdog_info info = {
        atomic_load(&w->domain), atomic_load(&w->plugin), atomic_load(&w->qkey), overdue,
    };
    /* First the mark, so that the fresh process skips the plugin, whatever the host does. The
     * store is plain shared memory: no lock the stuck thread could hold is needed. */
    if (w->store) {
        uint32_t secs = atomic_load(&w->quarantine_s);
        dc_store_quarantine_mark(dc_store_quarantine(w->store, info.plugin_key, 1),
                                 dc_unix_ms() + (double)(secs ? secs : 300) * 1000.0);
    }
    if (w->cb)
        w->cb(w->ud, &info);
    fprintf(stderr,
            "dynacode: watchdog: plugin \"%s\" of domain \"%s\" is still running %.0f ms past its "
            "time quota (stuck outside the VM); ending process %d\n",
            info.plugin ? info.plugin : "?", info.domain ? info.domain : "?", overdue,
            (int)getpid());
    _exit(DC_WATCHDOG_EXIT);
}

static void *watch(void *arg)
{
    dc_watchdog *w = arg;
    struct timespec period = {0, DC_WATCHDOG_PERIOD_MS * 1000000L};
    while (!atomic_load(&w->stop)) {
        nanosleep(&period, NULL);
        double d = atomic_load_explicit(&w->deadline_ms, memory_order_acquire);
        if (d > 0) {
            double overdue = dc_now_ms() - d;
            if (overdue > w->grace_ms && atomic_load(&w->deadline_ms) == d)
                fire(w, overdue);
        }
    }
    return NULL;
}

dc_rc dc_watchdog_start(const dc_engine_config *cfg, dc_watchdog **out)
{
    dc_watchdog *w = calloc(1, sizeof *w);
    if (!w)
        return DC_ENOMEM;
    w->grace_ms = cfg->watchdog_grace_ms * dc_quota_time_scale();
    w->cb = cfg->watchdog_cb;
    w->ud = cfg->watchdog_ud;
    w->store = cfg->store;
    if (pthread_create(&w->thread, NULL, watch, w) != 0) {
        free(w);
        return DC_ETHREAD;
    }
    *out = w;
    return DC_OK;
}

void dc_watchdog_stop(dc_watchdog *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    free(w);
}

void dc_watchdog_arm(dc_watchdog *w, double deadline_ms, const char *domain,
                     const char *plugin, uint64_t qkey, uint32_t quarantine_s)
{
    /* on every plugin call: plain stores, the deadline last with release so that a watcher
     * that sees it sees the names with it (no full fence on the request path) */
    atomic_store_explicit(&w->quarantine_s, quarantine_s, memory_order_relaxed);
    atomic_store_explicit(&w->domain, domain, memory_order_relaxed);
    atomic_store_explicit(&w->plugin, plugin, memory_order_relaxed);
    atomic_store_explicit(&w->qkey, qkey, memory_order_relaxed);
    atomic_store_explicit(&w->deadline_ms, deadline_ms, memory_order_release);
}

void dc_watchdog_disarm(dc_watchdog *w)
{
    atomic_store_explicit(&w->deadline_ms, 0.0, memory_order_release);
}
