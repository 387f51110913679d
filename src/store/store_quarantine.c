/* store_quarantine.c - quarantine entries in the region: finding or making a plugin's entry,
 * counting quota trips in windows, marking and reading quarantine ends. Async-signal-safe.
 */
#include "store_internal.h"

#define QUARANTINE_PROBE 16u
#define QUARANTINE_IDLE_S 3600u

/* the quarantine marks run in signal handlers: their 64-bit words must never need a lock */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "lock-free 64-bit atomics");
_Static_assert(__atomic_always_lock_free(sizeof(double), 0), "lock-free double atomics");

dc_quarantine_slot *dc_store_quarantine(dc_store *s, uint64_t key, int create)
{
    if (!s || s->nquar == 0 || (!create && LOAD_ACQ(&s->hdr->quarantine_made) == 0))
        return NULL;
    key = fix_key(key);
    uint32_t probe = s->nquar < QUARANTINE_PROBE ? s->nquar : QUARANTINE_PROBE;
    int made;
    int64_t i = dc_store_table_find(s->quar, sizeof *s->quar, s->nquar, probe, key, create, &made);
    if (i >= 0) {
        /* the clock is read only for a new entry: a lookup runs for every plugin call */
        if (made) {
            STORE_REL(&s->quar[i].window, (uint64_t)(dc_unix_ms() / 1000.0) << 32);
            __atomic_fetch_add(&s->hdr->quarantine_made, 1, __ATOMIC_RELEASE);
        }
        return &s->quar[i];
    }
    if (!create)
        return NULL;
    /* Full around key's place: reuse the entry idle the longest, if any has been for an hour
     * and is not quarantined. Processes racing here pick the same victim, and one CAS wins. */
    double now_ms = dc_unix_ms();
    uint64_t now_s = (uint64_t)(now_ms / 1000.0);
    dc_quarantine_slot *victim = NULL;
    uint64_t vkey = 0, vstart = UINT64_MAX;
    uint32_t h = dc_store_table_home(key, s->nquar);
    for (uint32_t k = 0; k < probe; k++) {
        dc_quarantine_slot *q = &s->quar[(h + k) % s->nquar];
        uint64_t qk = LOAD_ACQ(&q->key);
        if (qk == key)
            return q;
        uint64_t start = LOAD_ACQ(&q->window) >> 32;
        double until;
        __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
        if (until < now_ms && start + QUARANTINE_IDLE_S < now_s && start < vstart) {
            victim = q;
            vkey = qk;
            vstart = start;
        }
    }
    if (!victim)
        return NULL;
    if (!CAS(&victim->key, &vkey, key))
        return vkey == key ? victim : NULL;
    double zero = 0;
    STORE_REL(&victim->window, now_s << 32);
    __atomic_store(&victim->until_ms_unix, &zero, __ATOMIC_RELEASE);
    STORE_REL(&victim->trips, 0);
    STORE_REL(&victim->quarantines, 0);
    return victim;
}

int dc_store_quarantine_active(const dc_quarantine_slot *q, double now_ms_unix)
{
    if (!q)
        return 0;
    double until;
    __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
    return until > now_ms_unix;
}

void dc_store_quarantine_until(dc_quarantine_slot *q, double until_ms_unix)
{
    if (!q)
        return;
    double cur;
    __atomic_load(&q->until_ms_unix, &cur, __ATOMIC_ACQUIRE);
    while (cur < until_ms_unix &&
           !__atomic_compare_exchange(&q->until_ms_unix, &cur, &until_ms_unix, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
}

void dc_store_quarantine_mark(dc_quarantine_slot *q, double until_ms_unix)
{
    if (!q)
        return;
    dc_store_quarantine_until(q, until_ms_unix);
    __atomic_fetch_add(&q->quarantines, 1, __ATOMIC_RELAXED);
}

double dc_store_quarantine_until_ms(const dc_quarantine_slot *q)
{
    double until = 0;
    if (q)
        __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
    return until;
}

int dc_store_quarantine_trip(dc_quarantine_slot *q, uint32_t trips, uint32_t window_s,
                             uint32_t duration_s, double now_ms_unix)
{
    if (!q || trips == 0)
        return 0;
    __atomic_fetch_add(&q->trips, 1, __ATOMIC_RELAXED);
    uint64_t now_s = now_ms_unix > 0 ? (uint64_t)(now_ms_unix / 1000.0) : 0;
    uint64_t w = LOAD_ACQ(&q->window), nw;
    int tripped;
    /* start and count change together in one word, so concurrent trips are all counted and
     * exactly one of them closes the window. A trip whose clock reads a little before the
     * window's start (another process read the time a moment later and opened the window)
     * belongs to that window; only a clock gone back by more than a window starts a new one. */
    do {
        uint64_t start = w >> 32;
        uint32_t n = (uint32_t)w;
        int behind = now_s < start;
        if (n == 0 || (behind && start - now_s >= window_s) ||
            (!behind && now_s - start >= window_s)) {
            start = now_s;
            n = 0;
        }
        n++;
        tripped = n >= trips;
        nw = start << 32 | (tripped ? 0 : n);
    } while (!CAS(&q->window, &w, nw));
    if (tripped) {
        dc_store_quarantine_until(q, now_ms_unix + (double)duration_s * 1000.0);
        __atomic_fetch_add(&q->quarantines, 1, __ATOMIC_RELAXED);
    }
    return tripped;
}

dc_quarantine_slot *dc_store_quarantine_at(dc_store *s, uint32_t i, uint32_t *n)
{
    if (n)
        *n = s ? s->nquar : 0;
    return s && i < s->nquar ? &s->quar[i] : NULL;
}
