/* store.h - the library's own view of the shared store (store_*.c): quarantine entries and
 * per-plugin metrics in the region, updated atomically by every process, and the checksum
 * that snapshots and store slots share (snapshot.c). Nothing here is public API.
 */
#ifndef DC_STORE_H
#define DC_STORE_H

#include "base.h"
#include "store_layout.h"

/* Keys are any 64-bit values; 0, which marks a free entry, is stored as this one instead. */
#define DC_STORE_KEY_FOR_ZERO 0x9E3779B97F4A7C15ull

static inline uint64_t dc_store_key(uint64_t key)
{
    return key ? key : DC_STORE_KEY_FOR_ZERO;
}

/* CLOCK_REALTIME in ms: the clock every process agrees on (quarantine ends, metrics ages). The
 * coarse one (a few ms behind, much cheaper) is for the age of metrics. */
DC_HIDDEN double dc_unix_ms(void);
DC_HIDDEN double dc_unix_ms_coarse(void);

/* The quarantine functions below are async-signal-safe (crash.c calls them from a fatal
 * signal's handler): lock-free atomics on the region's preallocated table and clock_gettime,
 * no lock, no allocation, nothing shared with the snapshot's seqlock or the poller's lease, so
 * a process that dies anywhere, in the store's own code included, leaves nothing to wait for.
 * Keep them so. */
/* The quarantine entry of key in the region: found, else made when create (NULL when the
 * entries near key's place are all in use, or !create and none exists). The pointer stays
 * valid while the store is attached; an entry idle for an hour may be reused for another key,
 * so look it up again rather than keeping it across requests. */
DC_HIDDEN dc_quarantine_slot *dc_store_quarantine(dc_store *s, uint64_t key, int create);
/* 1 when q is quarantined at now_ms_unix. */
DC_HIDDEN int dc_store_quarantine_active(const dc_quarantine_slot *q, double now_ms_unix);
/* Counts one quota trip at now_ms_unix in windows of window_s seconds; the trips-th trip of a
 * window puts the plugin in quarantine for duration_s and returns 1 (exactly one process sees
 * 1 for a given window). trips == 0: quarantine is off, returns 0. */
DC_HIDDEN int dc_store_quarantine_trip(dc_quarantine_slot *q, uint32_t trips, uint32_t window_s,
                                       uint32_t duration_s, double now_ms_unix);
/* Quarantines q until until_ms_unix at least (the watchdog's mark). */
DC_HIDDEN void dc_store_quarantine_until(dc_quarantine_slot *q, double until_ms_unix);
/* Same, and counts one more quarantine (the watchdog ending a process for this plugin). */
DC_HIDDEN void dc_store_quarantine_mark(dc_quarantine_slot *q, double until_ms_unix);
/* Until when q is quarantined (Unix ms; 0 when it never was): one atomic load. */
DC_HIDDEN double dc_store_quarantine_until_ms(const dc_quarantine_slot *q);
/* Entry i of the table (0 <= i < *n), for the status page; its key 0 means free. */
DC_HIDDEN dc_quarantine_slot *dc_store_quarantine_at(dc_store *s, uint32_t i, uint32_t *n);

/* The metrics entry of key, found or (create) made; NULL when the table is full around key's
 * place and no entry there has been idle for ten minutes. */
DC_HIDDEN dc_plugin_metrics *dc_store_metrics(dc_store *s, uint64_t key, int create);
/* Adds one call with its result and duration. */
DC_HIDDEN void dc_metrics_record(dc_plugin_metrics *m, dc_result r, uint64_t us,
                                 double now_ms_unix);
/* The same, into a private copy that only the calling thread writes (plain stores, no atomic
 * add); another thread adds what it gained to the shared entry with dc_metrics_fold. The
 * runs count is written last, so a folder that sees it sees the rest of the call. */
DC_HIDDEN void dc_metrics_note(dc_plugin_metrics *local, dc_result r, uint64_t us);
/* Adds to m what local gained since folded, then makes folded a copy of local; stamps m with
 * now_ms_unix when a call was added. Returns the calls added. Folds of one local are to be
 * serialized by the caller. */
DC_HIDDEN uint64_t dc_metrics_fold(dc_plugin_metrics *m, const dc_plugin_metrics *local,
                                   dc_plugin_metrics *folded, double now_ms_unix);
/* The 99th percentile of the recorded calls, as the upper bound of its latency bucket in
 * microseconds (0 when no call was recorded). */
DC_HIDDEN uint64_t dc_metrics_p99_us(const dc_plugin_metrics *m);
/* Entry i of the table (0 <= i < *n), for the status page; its key 0 means free. */
DC_HIDDEN dc_plugin_metrics *dc_store_metrics_at(dc_store *s, uint32_t i, uint32_t *n);

#endif /* DC_STORE_H */
