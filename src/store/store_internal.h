/* store_internal.h - what the store's files share and nothing outside them sees: the handle
 * (where each part of the region is), the atomic access shorthands, owner words (the store's
 * only kind of lock), the info block's writer bracket and the keyed tables' probing.
 */
#ifndef DC_STORE_INTERNAL_H
#define DC_STORE_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "store.h"

struct dc_store {
    unsigned char *base;
    dc_store_hdr *hdr;
    uint64_t *events;
    dc_quarantine_slot *quar;
    uint32_t nquar;
    dc_plugin_metrics *met;
    uint32_t nmet;
    dc_store_slot *slot[2];
    uint64_t slot_cap;
    dc_errbuf first_error;   /* this handle's, not the region's: dc_store_last_error */
};

#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define CAS(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* ---- owner words: pid (22 bits: Linux pids stay below 2^22) | expiry, monotonic ms ---- */

#define PID_BITS 22
#define TIME_BITS 42
#define TIME_MASK ((1ull << TIME_BITS) - 1)

static inline uint64_t mono_ms(void)
{
    return (uint64_t)dc_now_ms();
}

static inline int pid_ok(int32_t pid)
{
    return pid > 0 && pid < (1 << PID_BITS);
}

static inline uint64_t owner_make(int32_t pid, uint64_t expiry)
{
    return (uint64_t)pid << TIME_BITS | (expiry & TIME_MASK);
}

static inline int32_t owner_pid(uint64_t w)
{
    return (int32_t)(w >> TIME_BITS);
}

static inline uint64_t owner_expiry(uint64_t w)
{
    return w & TIME_MASK;
}

/* Takes the owner word for this process for ttl_ms, waiting up to wait_ms for a live holder.
 * Returns the word written (to give back), 0 when the wait ran out. */
DC_HIDDEN uint64_t dc_store_lock_take(uint64_t *word, uint32_t ttl_ms, uint32_t wait_ms);
/* Frees the word if it is still mine (not taken over after expiry). */
DC_HIDDEN void dc_store_lock_give(uint64_t *word, uint64_t mine);

/* ---- the info block (store_info.c) ---- */

/* Copies src into dst (cap bytes, NUL-terminated), cut before an incomplete UTF-8 sequence. */
DC_HIDDEN void dc_store_copy_str(char *dst, size_t cap, const char *src);
/* Takes the info block's lock and makes its counter odd; returns the owner word (0: the wait
 * ran out, write nothing). dc_store_info_end makes the counter even and gives the lock back. */
DC_HIDDEN uint64_t dc_store_info_begin(dc_store_info_block *ib);
DC_HIDDEN void dc_store_info_end(dc_store_info_block *ib, uint64_t me);

/* ---- keyed tables (store_table.c) ---- */

static inline uint64_t fix_key(uint64_t key)
{
    return dc_store_key(key); /* 0 marks a free entry */
}

/* Where key's probe window starts in a table of n entries. */
DC_HIDDEN uint32_t dc_store_table_home(uint64_t key, uint32_t n);
/* Finds key in the probe window of a table whose entries start with their key, or claims the
 * first free entry there (create). *made tells the caller it made a new entry. Returns the
 * index, or -1. */
DC_HIDDEN int64_t dc_store_table_find(void *tab, size_t esize, uint32_t n, uint32_t probe,
                                      uint64_t key, int create, int *made);

#endif /* DC_STORE_INTERNAL_H */
