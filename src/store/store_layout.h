/* store_layout.h - the bytes of the shared store's region (store_*.c): a header with the publish,
 * lease and info words, event counters, quarantine entries, per-plugin metrics and two snapshot
 * slots. Parts are found by offsets from the region's start, never by pointers, so that every
 * process may map the region at an address of its own. Private to the library and its tests.
 *
 * region:  [dc_store_hdr][events: DC_STORE_EVENT_SLOTS x u64][quarantine_n x dc_quarantine_slot]
 *          [metrics_n x dc_plugin_metrics][slot 0: dc_store_slot + slot_cap bytes][slot 1: ...]
 * Every part starts on a DC_STORE_ALIGN boundary. All shared words are accessed with __atomic
 * builtins; the snapshot bytes and info strings are guarded by sequence counters (seqlocks).
 */
#ifndef DC_STORE_LAYOUT_H
#define DC_STORE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "dynacode.h"

#define DC_STORE_MAGIC 0x3145524F54534344ull /* "DCSTORE1" read as a little-endian u64 */
#define DC_STORE_LAYOUT_VERSION 3u
#define DC_STORE_ALIGN 64u
#define DC_STORE_EVENT_SLOTS 64u        /* DC_EVENT_COUNT of them used; room for new events */
#define DC_STORE_QUARANTINE_ENTRIES 256u
#define DC_STORE_METRICS_MAX 1024u      /* fewer in a small region: at most a quarter of it */
#define DC_STORE_LAT_BUCKETS DC_TIME_BUCKETS /* dynacode.h: bounds by dc_time_bucket_us */
#define DC_STORE_SLOT_MIN 4096u         /* a region that leaves less per slot is too small */

/* Quarantine of one plugin (key: its quarantine identity, name and code), shared by all
 * processes. window packs the current trip window: start (Unix seconds) << 32 | trips in it. */
typedef struct dc_quarantine_slot {
    uint64_t key;              /* 0: free */
    uint64_t window;
    double until_ms_unix;      /* quarantined until then (Unix ms; 0: never was) */
    uint32_t trips;            /* quota trips counted since the entry was made */
    uint32_t quarantines;      /* times put in quarantine */
} dc_quarantine_slot;

/* Latency bucket k counts calls of at most dc_time_bucket_us(k) microseconds and more than the
 * bound of bucket k - 1 (the last one: all longer). */
typedef struct dc_plugin_metrics {
    uint64_t key;              /* 0: free */
    uint64_t last_ms_unix;     /* last update, Unix ms: the stalest entry is reused when full */
    uint64_t runs;
    uint64_t errors;           /* DC_RESULT_ERROR and DC_RESULT_DENIED */
    uint64_t quota_instructions;
    uint64_t quota_time;
    uint64_t quota_memory;
    uint64_t total_us;
    uint64_t latency[DC_STORE_LAT_BUCKETS];
    uint64_t pad;              /* to whole cache lines */
} dc_plugin_metrics;

/* A snapshot slot's header; slot_cap bytes of snapshot follow it. seq is odd while a writer
 * fills the slot; generation, len and checksum describe its content once seq is even. */
typedef struct dc_store_slot {
    uint64_t seq;
    uint64_t generation;
    uint64_t len;
    uint64_t checksum;         /* dc_checksum64 of the len bytes */
    uint64_t pad[4];
} dc_store_slot;

/* What the status page shows; written under lock (an owner word) and seq (odd while written). */
typedef struct dc_store_info_block {
    uint64_t seq;
    uint64_t lock;             /* owner word: see store_owner.c */
    uint64_t generation;
    uint64_t snapshot_bytes;
    double fetched_at;         /* Unix seconds */
    double last_error_at;
    char source[16];
    char etag[256];
    char last_error[256];
} dc_store_info_block;

typedef struct dc_store_hdr {
    /* written once by dc_store_attach(init = 1), checked by init = 0 */
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_bytes;        /* sizeof(dc_store_hdr) */
    uint64_t region_bytes;     /* the size the region was formatted for */
    uint64_t events_off;
    uint64_t quarantine_off;
    uint64_t metrics_off;
    uint32_t quarantine_n;
    uint32_t metrics_n;
    uint64_t slot_off[2];      /* each a dc_store_slot followed by slot_cap bytes */
    uint64_t slot_cap;
    uint64_t quarantine_made;  /* quarantine entries ever claimed: while 0, a lookup (one per
                                  plugin call) skips the table */
    /* the poller's record (dc_store_note_poll), each word on its own: no seqlock */
    uint64_t poll_ok_ms;       /* Unix ms of the last poll the API answered (0: none yet) */
    uint64_t poll_failures;    /* polls failed since that one */
    uint64_t pad0[3];
    /* hot words, one cache line each */
    uint64_t current;          /* generation << 1 | slot in force (0: nothing published) */
    uint64_t pad1[7];
    uint64_t writer;           /* owner word of the publisher at work (0: none) */
    uint64_t pad2[7];
    uint64_t lease;            /* owner word of the poller lease (0: free) */
    uint64_t pad3[7];
    dc_store_info_block info;
} dc_store_hdr;

_Static_assert(offsetof(dc_store_hdr, current) % DC_STORE_ALIGN == 0, "current: own line");
_Static_assert(offsetof(dc_store_hdr, writer) % DC_STORE_ALIGN == 0, "writer: own line");
_Static_assert(offsetof(dc_store_hdr, lease) % DC_STORE_ALIGN == 0, "lease: own line");
_Static_assert(sizeof(dc_store_slot) == DC_STORE_ALIGN, "slot header: one line");
_Static_assert(DC_EVENT_COUNT <= DC_STORE_EVENT_SLOTS, "more events than counter slots");
_Static_assert(sizeof(dc_quarantine_slot) == 32, "quarantine entry size");
_Static_assert(sizeof(dc_plugin_metrics) % 64 == 0, "metrics entry: whole lines");

#endif /* DC_STORE_LAYOUT_H */
