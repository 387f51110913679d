/* events.c - the event hub of SPEC 8: a counter per event (in the hub, or in memory the host
 * provides, such as a shared zone) and the callbacks hosts subscribe to.
 */
#include <stdlib.h>

#include "internal.h"

#define DC_MAX_SUBSCRIBERS 16

struct dc_events {
    uint64_t own[DC_EVENT_COUNT];
    uint64_t *counters;
    struct {
        uint64_t mask;
        dc_event_cb cb;
        void *ud;
    } subs[DC_MAX_SUBSCRIBERS];
    unsigned nsubs;
};

static const char *const event_names[DC_EVENT_COUNT] = {
#define DC_EVENT_NAME(id, name) name,
    DC_EVENT_LIST(DC_EVENT_NAME)
#undef DC_EVENT_NAME
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
    *out = ev;
    return DC_OK;
}

void dc_events_free(dc_events *ev)
{
    free(ev);
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
    return DC_OK;
}

void dc_events_emit(dc_events *ev, const dc_event_info *info)
{
    if (!ev || (unsigned)info->event >= DC_EVENT_COUNT)
        return;
    /* Atomic so that counters in shared memory stay exact across processes. */
    __atomic_fetch_add(&ev->counters[info->event], 1, __ATOMIC_RELAXED);
    uint64_t bit = 1ull << info->event;
    for (unsigned i = 0; i < ev->nsubs; i++)
        if (ev->subs[i].mask & bit)
            ev->subs[i].cb(ev->subs[i].ud, info);
}

uint64_t dc_events_count(const dc_events *ev, dc_event which)
{
    if ((unsigned)which >= DC_EVENT_COUNT)
        return 0;
    return __atomic_load_n(&ev->counters[which], __ATOMIC_RELAXED);
}
