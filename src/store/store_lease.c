/* store_lease.c - the poller lease: one process at a time holds it (an owner word with the
 * caller's ttl), and takes it over at once from a holder that has expired or is gone.
 */
#include "store_internal.h"

int dc_store_lease(dc_store *s, int32_t self_pid, uint32_t ttl_ms)
{
    if (!s || !pid_ok(self_pid) || ttl_ms == 0)
        return 0;
    uint64_t *word = &s->hdr->lease;
    for (int i = 0; i < 64; i++) {
        uint64_t now = mono_ms();
        uint64_t w = LOAD_ACQ(word);
        int32_t holder = owner_pid(w);
        if (w != 0 && holder != self_pid && owner_expiry(w) > now && !dc_pid_gone(holder))
            return 0;
        if (CAS(word, &w, owner_make(self_pid, now + ttl_ms)))
            return 1;
    }
    return 0;
}

void dc_store_lease_release(dc_store *s, int32_t self_pid)
{
    if (!s)
        return;
    uint64_t w = LOAD_ACQ(&s->hdr->lease);
    if (w != 0 && owner_pid(w) == self_pid)
        __atomic_compare_exchange_n(&s->hdr->lease, &w, 0, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
}
