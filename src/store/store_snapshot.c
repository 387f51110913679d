/* store_snapshot.c - publishing and reading the snapshot in force. It is double-buffered: a
 * publisher fills the slot not in force, under that slot's sequence counter, then moves the one
 * "current" word (generation << 1 | slot) with release; a reader copies the slot current names
 * and keeps the copy only when the slot's counter did not move meanwhile, then checks the
 * checksum. Publishers exclude each other with an owner word (store_owner.c).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define WRITER_TTL_MS 10000u   /* a publish copies at most a slot: far less than this */
#define WRITER_WAIT_MS 12000u  /* past the TTL, so a stuck publisher is always overtaken */
#define READ_TRIES 1000        /* each retry means a publish overlapped the copy */

static unsigned char *slot_data(dc_store_slot *sl)
{
    return (unsigned char *)(sl + 1);
}

dc_rc dc_store_publish(dc_store *s, const unsigned char *snap, size_t len, const char *source,
                       const char *etag, double fetched_at)
{
    if (!s || !snap || len == 0)
        return DC_EINVAL;
    if (len > s->slot_cap)
        return DC_ELIMIT;
    uint64_t sum = dc_checksum64(snap, len);
    dc_store_hdr *h = s->hdr;
    uint64_t me = dc_store_lock_take(&h->writer, WRITER_TTL_MS, WRITER_WAIT_MS);
    if (!me) {
        dc_errbuf_note(&s->first_error, DC_EBUSY,
                       "publish: the writer lock was not free within %d ms", WRITER_WAIT_MS);
        return DC_EBUSY;
    }
    uint64_t cur = LOAD_ACQ(&h->current);
    unsigned x = (unsigned)(cur & 1) ^ 1; /* the slot not in force */
    uint64_t gen = (cur >> 1) + 1;
    dc_store_slot *sl = s->slot[x];
    /* Odd while writing: a reader that started on this slot (before the previous publish moved
     * "current" away from it) sees the counter move and retries. */
    uint64_t q = LOAD_RLX(&sl->seq);
    q = (q & 1) ? q + 2 : q + 1;
    STORE_RLX(&sl->seq, q);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    STORE_RLX(&sl->generation, gen);
    STORE_RLX(&sl->len, (uint64_t)len);
    STORE_RLX(&sl->checksum, sum);
    memcpy(slot_data(sl), snap, len);
    STORE_REL(&sl->seq, q + 1);
    /* A CAS, not a store: should a publisher that overran its TTL wake up after another took
     * over, it must not move "current" back. */
    int ok = __atomic_compare_exchange_n(&h->current, &cur, gen << 1 | x, 0, __ATOMIC_RELEASE,
                                         __ATOMIC_RELAXED);
    if (ok) {
        dc_store_info_block *ib = &h->info;
        uint64_t ime = dc_store_info_begin(ib);
        if (ime) {
            ib->generation = gen;
            ib->snapshot_bytes = len;
            ib->fetched_at = fetched_at;
            dc_store_copy_str(ib->source, sizeof ib->source, source);
            dc_store_copy_str(ib->etag, sizeof ib->etag, etag);
            dc_store_info_end(ib, ime);
        }
    }
    dc_store_lock_give(&h->writer, me);
    if (!ok) {
        dc_errbuf_note(&s->first_error, DC_EBUSY,
                       "publish: the writer lock was lost to another publisher (generation %llu)",
                       (unsigned long long)gen);
        return DC_EBUSY;
    }
    return DC_OK;
}

dc_rc dc_store_read(dc_store *s, uint64_t *gen, unsigned char **snap, size_t *len, char *err,
                    size_t errlen)
{
    if (!s || !snap || !len) {
        dc_set_err(err, errlen, "dc_store_read: bad argument");
        return DC_EINVAL;
    }
    *snap = NULL;
    *len = 0;
    if (gen)
        *gen = 0;
    dc_store_hdr *h = s->hdr;
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (int attempt = 0; attempt < READ_TRIES; attempt++) {
        if (attempt >= 4)
            sched_yield();
        uint64_t cur = LOAD_ACQ(&h->current);
        if (cur == 0) { /* nothing published yet */
            free(buf);
            return DC_OK;
        }
        dc_store_slot *sl = s->slot[cur & 1];
        uint64_t q0 = LOAD_ACQ(&sl->seq);
        if (q0 & 1)
            continue;
        uint64_t g = LOAD_RLX(&sl->generation), n = LOAD_RLX(&sl->len);
        uint64_t sum = LOAD_RLX(&sl->checksum);
        if (g != cur >> 1 || n == 0 || n > s->slot_cap) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (LOAD_RLX(&sl->seq) != q0 || LOAD_ACQ(&h->current) != cur)
                continue; /* a publish went by */
            free(buf);
            dc_set_err(err, errlen,
                       "snapshot slot header corrupt (generation %llu, slot says %llu, %llu bytes)",
                       (unsigned long long)(cur >> 1), (unsigned long long)g,
                       (unsigned long long)n);
            dc_errbuf_note(&s->first_error, DC_ECORRUPT, "%s", err ? err : "slot header corrupt");
            return DC_ECORRUPT;
        }
        if (n > cap) {
            unsigned char *nb = realloc(buf, (size_t)n);
            if (!nb) {
                free(buf);
                dc_set_err(err, errlen, "snapshot: out of memory");
                return DC_ENOMEM;
            }
            buf = nb;
            cap = (size_t)n;
        }
        memcpy(buf, slot_data(sl), (size_t)n);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD_RLX(&sl->seq) != q0)
            continue; /* overwritten while copied: never hand out a mix */
        if (dc_checksum64(buf, (size_t)n) != sum) {
            free(buf);
            dc_set_err(err, errlen, "snapshot checksum mismatch (generation %llu)",
                       (unsigned long long)g);
            dc_errbuf_note(&s->first_error, DC_ECORRUPT,
                           "snapshot checksum mismatch (generation %llu)", (unsigned long long)g);
            return DC_ECORRUPT;
        }
        *snap = buf;
        *len = (size_t)n;
        if (gen)
            *gen = g;
        return DC_OK;
    }
    free(buf);
    dc_set_err(err, errlen, "snapshot: changed %d times while being read", READ_TRIES);
    dc_errbuf_note(&s->first_error, DC_EBUSY, "snapshot: changed %d times while being read",
                   READ_TRIES);
    return DC_EBUSY;
}
