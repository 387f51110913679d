/* store_info.c - the status info block (source, etag, generation, last error): written under
 * an owner word and a sequence counter, read as a consistent copy, even after a writer died;
 * the poller's record of its polls (last answered poll, failures since) and the region's usage.
 */
#include <sched.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

#define INFO_TTL_MS 1000u
#define INFO_WAIT_MS 1500u

void dc_store_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    memset(dst + n, 0, cap - n);
}

uint64_t dc_store_info_begin(dc_store_info_block *ib)
{
    uint64_t me = dc_store_lock_take(&ib->lock, INFO_TTL_MS, INFO_WAIT_MS);
    if (!me)
        return 0;
    uint64_t q = LOAD_RLX(&ib->seq);
    STORE_RLX(&ib->seq, (q & 1) ? q + 2 : q + 1); /* odd; new even after a writer died */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return me;
}

void dc_store_info_end(dc_store_info_block *ib, uint64_t me)
{
    STORE_REL(&ib->seq, (LOAD_RLX(&ib->seq) | 1) + 1);
    dc_store_lock_give(&ib->lock, me);
}

void dc_store_set_error(dc_store *s, const char *msg, double at)
{
    if (!s)
        return;
    dc_store_info_block *ib = &s->hdr->info;
    uint64_t me = dc_store_info_begin(ib);
    if (!me)
        return;
    dc_store_copy_str(ib->last_error, sizeof ib->last_error, msg);
    ib->last_error_at = msg ? at : 0;
    dc_store_info_end(ib, me);
}

void dc_store_note_poll(dc_store *s, int ok, double at)
{
    if (!s)
        return;
    if (ok) {
        STORE_RLX(&s->hdr->poll_ok_ms, at > 0 ? (uint64_t)(at * 1000.0) : 0);
        STORE_RLX(&s->hdr->poll_failures, 0);
    } else {
        __atomic_fetch_add(&s->hdr->poll_failures, 1, __ATOMIC_RELAXED);
    }
}

void dc_store_usage_get(dc_store *s, dc_store_usage *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    const dc_store_hdr *h = s->hdr;
    uint64_t cur = LOAD_ACQ(&h->current);
    uint64_t snap = cur ? LOAD_RLX(&s->slot[cur & 1]->len) : 0; /* a publish may be under way:
                                                                  either size will do */
    if (snap > s->slot_cap)
        snap = s->slot_cap;
    uint64_t used = h->slot_off[0] + 2 * (sizeof(dc_store_slot) + snap);
    out->size = (size_t)h->region_bytes;
    out->used = (size_t)(used < h->region_bytes ? used : h->region_bytes);
    out->free = out->size - out->used;
    out->snapshot_capacity = (size_t)s->slot_cap;
    out->metrics_entries = s->nmet;
    for (uint32_t i = 0; i < s->nmet; i++)
        out->metrics_used += LOAD_RLX(&s->met[i].key) != 0;
}

void dc_store_info_get(dc_store *s, dc_store_info *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    const dc_store_info_block *ib = &s->hdr->info;
    dc_store_info_block c;
    uint64_t deadline = mono_ms() + INFO_WAIT_MS;
    for (unsigned i = 0;; i++) {
        uint64_t q0 = LOAD_ACQ(&ib->seq);
        memcpy(&c, ib, sizeof c);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (!(q0 & 1) && LOAD_RLX(&ib->seq) == q0)
            break;
        if (i < 64) {
            sched_yield();
            continue;
        }
        /* A writer is slow (preempted) or gone. Wait for a live one, up to INFO_WAIT_MS; take
         * a dead one's half-written fields as they are (strings are cut below): torn info is
         * harmless, and the next writer rewrites it whole. */
        uint64_t now = mono_ms();
        if (now >= deadline)
            break;
        uint64_t w = LOAD_ACQ(&ib->lock);
        if ((LOAD_ACQ(&ib->seq) & 1) && w != 0 &&
            (owner_expiry(w) <= now || dc_pid_gone(owner_pid(w)))) {
            memcpy(&c, ib, sizeof c);
            break;
        }
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    out->poll_ok_at = (double)LOAD_RLX(&s->hdr->poll_ok_ms) / 1000.0;
    out->poll_failures = LOAD_RLX(&s->hdr->poll_failures);
    out->generation = c.generation;
    out->snapshot_bytes = (size_t)c.snapshot_bytes;
    out->fetched_at = c.fetched_at;
    out->last_error_at = c.last_error_at;
    memcpy(out->source, c.source, sizeof out->source);
    memcpy(out->etag, c.etag, sizeof out->etag);
    memcpy(out->last_error, c.last_error, sizeof out->last_error);
    out->source[sizeof out->source - 1] = '\0';
    out->etag[sizeof out->etag - 1] = '\0';
    out->last_error[sizeof out->last_error - 1] = '\0';
}
