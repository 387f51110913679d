/* store_attach.c - the region's layout (where each part goes for a given size), formatting a
 * region and attaching to one (checking that its header adds up), and the handle's accessors.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* ---- layout ---- */

typedef struct layout {
    uint64_t events_off, quarantine_off, metrics_off, slot_off[2], slot_cap;
    uint32_t quarantine_n, metrics_n;
} layout;

static uint64_t align_up(uint64_t v)
{
    return (v + DC_STORE_ALIGN - 1) & ~(uint64_t)(DC_STORE_ALIGN - 1);
}

/* Where everything goes in a region of size bytes; -1 when the slots would be too small. */
static int layout_compute(uint64_t size, layout *l)
{
    uint64_t off = align_up(sizeof(dc_store_hdr));
    l->events_off = off;
    off = align_up(off + DC_STORE_EVENT_SLOTS * sizeof(uint64_t));
    l->quarantine_off = off;
    l->quarantine_n = DC_STORE_QUARANTINE_ENTRIES;
    off = align_up(off + (uint64_t)l->quarantine_n * sizeof(dc_quarantine_slot));
    uint64_t mn = size / 4 / sizeof(dc_plugin_metrics);
    l->metrics_n = (uint32_t)(mn < DC_STORE_METRICS_MAX ? mn : DC_STORE_METRICS_MAX);
    l->metrics_off = off;
    off = align_up(off + (uint64_t)l->metrics_n * sizeof(dc_plugin_metrics));
    if (off >= size)
        return -1;
    uint64_t per = ((size - off) / 2) & ~(uint64_t)(DC_STORE_ALIGN - 1);
    if (per < sizeof(dc_store_slot) + DC_STORE_SLOT_MIN)
        return -1;
    l->slot_off[0] = off;
    l->slot_off[1] = off + per;
    l->slot_cap = per - sizeof(dc_store_slot);
    return 0;
}

static int layout_matches(const dc_store_hdr *h, const layout *l)
{
    return h->events_off == l->events_off && h->quarantine_off == l->quarantine_off &&
           h->metrics_off == l->metrics_off && h->quarantine_n == l->quarantine_n &&
           h->metrics_n == l->metrics_n && h->slot_off[0] == l->slot_off[0] &&
           h->slot_off[1] == l->slot_off[1] && h->slot_cap == l->slot_cap;
}

/* ---- attach ---- */

static void format_region(unsigned char *base, uint64_t size, const layout *l)
{
    dc_store_hdr *h = (dc_store_hdr *)base;
    STORE_REL(&h->magic, 0); /* an interrupted format must not look valid */
    memset(base, 0, l->slot_off[0]);
    memset(base + l->slot_off[0], 0, sizeof(dc_store_slot));
    memset(base + l->slot_off[1], 0, sizeof(dc_store_slot));
    h->version = DC_STORE_LAYOUT_VERSION;
    h->hdr_bytes = (uint32_t)sizeof *h;
    h->region_bytes = size;
    h->events_off = l->events_off;
    h->quarantine_off = l->quarantine_off;
    h->metrics_off = l->metrics_off;
    h->quarantine_n = l->quarantine_n;
    h->metrics_n = l->metrics_n;
    h->slot_off[0] = l->slot_off[0];
    h->slot_off[1] = l->slot_off[1];
    h->slot_cap = l->slot_cap;
    STORE_REL(&h->magic, DC_STORE_MAGIC);
}

dc_rc dc_store_attach(void *region, size_t size, int init, dc_store **out, char *err,
                      size_t errlen)
{
    if (!out || !region) {
        dc_set_err(err, errlen, "dc_store_attach: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    if ((uintptr_t)region % 8 != 0) {
        dc_set_err(err, errlen, "shared store: the region must be 8-byte aligned");
        return DC_EINVAL;
    }
    layout l;
    if (size < DC_STORE_MIN_SIZE || (init && layout_compute(size, &l) != 0)) {
        dc_set_err(err, errlen, "shared store: a region of %zu bytes is too small (at least %u)",
                   size, (unsigned)DC_STORE_MIN_SIZE);
        return DC_EINVAL;
    }
    unsigned char *base = region;
    dc_store_hdr *h = region;
    if (init) {
        format_region(base, size, &l);
    } else if (LOAD_ACQ(&h->magic) != DC_STORE_MAGIC) {
        dc_set_err(err, errlen, "shared store: the region is not a formatted store");
        return DC_ECORRUPT;
    } else if (h->version != DC_STORE_LAYOUT_VERSION || h->hdr_bytes != sizeof *h) {
        dc_set_err(err, errlen, "shared store: layout version %u, this library uses %u",
                   h->version, DC_STORE_LAYOUT_VERSION);
        return DC_ECORRUPT;
    } else if (h->region_bytes > size) {
        dc_set_err(err, errlen, "shared store: formatted for %llu bytes, attached with %zu",
                   (unsigned long long)h->region_bytes, size);
        return DC_EINVAL;
    } else if (h->region_bytes < DC_STORE_MIN_SIZE || layout_compute(h->region_bytes, &l) != 0 ||
               !layout_matches(h, &l)) {
        dc_set_err(err, errlen, "shared store: the layout of %llu bytes does not add up",
                   (unsigned long long)h->region_bytes);
        return DC_ECORRUPT;
    }
    dc_store *s = calloc(1, sizeof *s);
    if (!s) {
        dc_set_err(err, errlen, "shared store: out of memory");
        return DC_ENOMEM;
    }
    s->base = base;
    s->hdr = h;
    s->events = (uint64_t *)(base + l.events_off);
    s->quar = (dc_quarantine_slot *)(base + l.quarantine_off);
    s->nquar = l.quarantine_n;
    s->met = (dc_plugin_metrics *)(base + l.metrics_off);
    s->nmet = l.metrics_n;
    s->slot[0] = (dc_store_slot *)(base + l.slot_off[0]);
    s->slot[1] = (dc_store_slot *)(base + l.slot_off[1]);
    s->slot_cap = l.slot_cap;
    *out = s;
    return DC_OK;
}

dc_rc dc_store_last_error(dc_store *s, char *msg, size_t len)
{
    return dc_errbuf_take(s ? &s->first_error : NULL, msg, len);
}

void dc_store_detach(dc_store *s)
{
    free(s);
}

uint64_t *dc_store_event_counters(dc_store *s)
{
    return s ? s->events : NULL;
}

uint64_t dc_store_generation(const dc_store *s)
{
    return s ? LOAD_ACQ(&s->hdr->current) >> 1 : 0;
}

size_t dc_store_snapshot_room(const dc_store *s)
{
    return s ? (size_t)s->slot_cap : 0;
}

size_t dc_store_region_for(size_t snapshot_len)
{
    /* the smallest region whose layout gives slots of snapshot_len bytes: the slots are about
     * half of what the header, counters and metrics leave, so a search over sizes */
    uint64_t lo = DC_STORE_MIN_SIZE, hi = lo;
    layout l;
    while (layout_compute(hi, &l) != 0 || l.slot_cap < snapshot_len) {
        if (hi > (uint64_t)SIZE_MAX / 4)
            return SIZE_MAX;
        hi *= 2;
    }
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (layout_compute(mid, &l) == 0 && l.slot_cap >= snapshot_len)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (size_t)hi;
}
