/* events.c - the event hub: a counter per event of dc_event (dynacode.h), in the hub or in memory
 * the host provides (such as a shared zone), and the callbacks hosts subscribe to. Subscribers get
 * the names and message with control bytes escaped, ready for a log line.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

#define DC_MAX_SUBSCRIBERS 16

/* The events every request emits, once per phase: with dc_events_defer on, the thread that
 * emits them (the request thread: nothing else emits these) counts them in the hub with a
 * plain increment, and dc_events_fold adds them to the counters every few milliseconds from
 * another thread, instead of an atomic add on a cache line every worker writes. */
#define DEFERRABLE                                                                      \
    ((1ull << DC_EV_RT_PLUGINS_STARTING) | (1ull << DC_EV_RT_PLUGINS_DONE) |            \
     (1ull << DC_EV_RT_PLUGINS_NOT_LOADED) | (1ull << DC_EV_RT_PLUGINS_DISABLED))

struct dc_events {
    uint64_t own[DC_EVENT_COUNT];
    uint64_t *counters;
    int deferred;                     /* set and cleared by the emitting thread */
    uint64_t local[DC_EVENT_COUNT];   /* deferred counts: written by the emitting thread only */
    uint64_t folded[DC_EVENT_COUNT];  /* what dc_events_fold has added of them, under fold_mu */
    pthread_mutex_t fold_mu;
    struct {
        uint64_t mask;
        dc_event_cb cb;
        void *ud;
    } subs[DC_MAX_SUBSCRIBERS];
    unsigned nsubs;
    uint64_t subscribed;     /* every subscriber's mask together */
};

static const char *const event_names[DC_EVENT_COUNT] = {
#define DC_EVENT_NAME(id, name, sev) name,
    DC_EVENT_LIST(DC_EVENT_NAME)
#undef DC_EVENT_NAME
};

static const dc_severity event_severity[DC_EVENT_COUNT] = {
#define DC_EVENT_SEV(id, name, sev) sev,
    DC_EVENT_LIST(DC_EVENT_SEV)
#undef DC_EVENT_SEV
};

const char *dc_event_name(dc_event ev)
{
    return (unsigned)ev < DC_EVENT_COUNT ? event_names[ev] : "unknown";
}

dc_rc dc_events_new(uint64_t *counters, dc_events **out)
{
    dc_events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return DC_ENOMEM;
    ev->counters = counters ? counters : ev->own;
    pthread_mutex_init(&ev->fold_mu, NULL);
    *out = ev;
    return DC_OK;
}

void dc_events_free(dc_events *ev)
{
    if (!ev)
        return;
    dc_events_fold(ev);
    pthread_mutex_destroy(&ev->fold_mu);
    free(ev);
}

void dc_events_defer(dc_events *ev, int on)
{
    if (!ev)
        return;
    if (!on)
        dc_events_fold(ev);
    ev->deferred = on;
}

void dc_events_fold(dc_events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->fold_mu);
    for (unsigned i = 0; i < DC_EVENT_COUNT; i++) {
        if (!(DEFERRABLE & (1ull << i)))
            continue;
        uint64_t cur = __atomic_load_n(&ev->local[i], __ATOMIC_ACQUIRE);
        uint64_t done = __atomic_load_n(&ev->folded[i], __ATOMIC_RELAXED);
        if (cur == done)
            continue;
        /* what is folded first, then the count (release): a reader (dc_events_count) that
         * sees the count sees the fold, so it may miss these for an instant, never count
         * them twice */
        __atomic_store_n(&ev->folded[i], cur, __ATOMIC_RELAXED);
        __atomic_fetch_add(&ev->counters[i], cur - done, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ev->fold_mu);
}

dc_rc dc_events_subscribe(dc_events *ev, uint64_t mask, dc_event_cb cb, void *ud)
{
    if (!cb)
        return DC_EINVAL;
    if (ev->nsubs == DC_MAX_SUBSCRIBERS)
        return DC_ELIMIT;
    ev->subs[ev->nsubs].mask = mask;
    ev->subs[ev->nsubs].cb = cb;
    ev->subs[ev->nsubs].ud = ud;
    ev->nsubs++;
    ev->subscribed |= mask;
    return DC_OK;
}

/* Whether s needs dc_log_escape (quote: for a quoted name). */
static int needs_escape(const char *s, int quote)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f || (quote && (*p == '"' || *p == '\\')))
            return 1;
    return 0;
}

void dc_events_note(dc_events *ev, dc_event which, int phase)
{
    if (!ev || (unsigned)which >= DC_EVENT_COUNT)
        return;
    uint64_t bit = 1ull << which;
    if (!(ev->subscribed & bit) && ev->deferred && (DEFERRABLE & bit)) {
        uint64_t *c = &ev->local[which];
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
        return;
    }
    dc_event_info info = {which, NULL, NULL, phase, NULL, 0, 0, DC_SEV_USUAL};
    dc_events_emit(ev, &info);
}

void dc_events_emit(dc_events *ev, const dc_event_info *info)
{
    if (!ev || (unsigned)info->event >= DC_EVENT_COUNT)
        return;
    uint64_t bit = 1ull << info->event;
    if (!(ev->subscribed & bit)) {
        /* nobody listens (the events of every request, mostly): only the count */
        if (ev->deferred && (DEFERRABLE & bit)) {
            uint64_t *c = &ev->local[info->event];
            __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
        } else {
            __atomic_fetch_add(&ev->counters[info->event], 1, __ATOMIC_RELAXED);
        }
        return;
    }
    dc_event_info safe = *info;
    if (safe.severity == DC_SEV_USUAL || (unsigned)safe.severity > DC_SEV_ERROR)
        safe.severity = event_severity[info->event];
    /* A plugin's name, a bundle's domain and an error message are the bundle author's text:
     * a line feed in one of them must not start a forged line in the host's log. */
    char dom[300], plug[300], msg[1200];
    if (needs_escape(info->domain, 1) || needs_escape(info->plugin, 1) ||
        needs_escape(info->message, 0)) {
        if (info->domain) {
            dc_log_escape(dom, sizeof dom, info->domain, 1);
            safe.domain = dom;
        }
        if (info->plugin) {
            dc_log_escape(plug, sizeof plug, info->plugin, 1);
            safe.plugin = plug;
        }
        if (info->message) {
            dc_log_escape(msg, sizeof msg, info->message, 0);
            safe.message = msg;
        }
    }
    info = &safe;
    /* Atomic so that counters in shared memory stay exact across processes. */
    __atomic_fetch_add(&ev->counters[info->event], 1, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < ev->nsubs; i++)
        if (ev->subs[i].mask & bit)
            ev->subs[i].cb(ev->subs[i].ud, info);
}

uint64_t dc_events_count(const dc_events *ev, dc_event which)
{
    if ((unsigned)which >= DC_EVENT_COUNT)
        return 0;
    /* with what this hub has not folded yet (in this order: see dc_events_fold) */
    uint64_t n = __atomic_load_n(&ev->counters[which], __ATOMIC_ACQUIRE);
    uint64_t cur = __atomic_load_n(&ev->local[which], __ATOMIC_ACQUIRE);
    uint64_t done = __atomic_load_n(&ev->folded[which], __ATOMIC_ACQUIRE);
    return n + (cur > done ? cur - done : 0);
}
