/* engine.h - private structures of the per-process engine: bundle generations pinned by
 * requests, the host match cache of each generation, and the pool of plugin states.
 */
#ifndef DC_ENGINE_H
#define DC_ENGINE_H

#include "internal.h"
#include "../sandbox/sandbox.h"

/* One plugin to run: where it comes from in the bundle. */
typedef struct dc_item {
    uint32_t domain;
    uint32_t plugin;
} dc_item;

/* The result of matching one host against a generation's bundle (immutable once built). An
 * entry evicted from the cache lives on until the last request using it ends. */
typedef struct dc_match {
    struct dc_match *next;   /* cache bucket chain */
    unsigned refs;           /* the cache's own reference plus one per request */
    uint64_t hash;
    size_t hostlen;
    char *host;
    uint32_t count[DC_PHASE_COUNT];
    dc_item *items[DC_PHASE_COUNT];
    /* host and items follow in the same allocation */
} dc_match;

typedef struct dc_match_cache {
    dc_match **buckets;
    uint32_t nbuckets;       /* power of two */
    uint32_t size;
    uint32_t cap;
} dc_match_cache;

/* A bundle in force, pinned by the requests that began under it. */
typedef struct dc_gen {
    unsigned refs;
    uint64_t number;
    dc_bundle *bundle;
    uint64_t *keys;          /* per plugin: the identity of its state in the pool */
    dc_quota *quotas;        /* per plugin: the quota in force */
    dc_match_cache cache;
} dc_gen;

/* A live plugin state in the pool, found by key, evicted least recently used first. */
typedef struct dc_slot {
    uint64_t key;
    dc_sbx *sbx;
    struct dc_slot *hnext;            /* hash chain */
    struct dc_slot *prev, *next;      /* LRU list, most recent first */
    int keep;                         /* marking during a swap */
} dc_slot;

struct dc_engine {
    dc_host host;
    dc_events *events;
    dc_quota quota;
    int on_error_fail;
    uint64_t rng;
    uint32_t host_cache_size;
    dc_gen *gen;                      /* in force; NULL before the first bundle */
    uint64_t next_gen;
    dc_run_cb run_cb;
    void *run_ud;
    /* state pool */
    dc_slot **slots;
    uint32_t nslots_buckets;          /* power of two */
    uint32_t live;
    uint32_t max_states;
    dc_slot *lru_head, *lru_tail;
};

struct dc_request {
    dc_engine *e;
    dc_gen *gen;                      /* pinned; NULL when no bundle */
    dc_match *m;                      /* NULL when nothing can run */
    void *hreq;
    dc_buf ctx;                       /* serialized ngx.ctx */
    dc_buf chunk;                     /* body_filter working chunk */
    int eof;
};

/* match.c */
DC_HIDDEN dc_rc dc_cache_init(dc_match_cache *c, uint32_t cap);
DC_HIDDEN void dc_cache_free(dc_match_cache *c);
/* The match for host under gen, from the cache or computed and cached. The caller holds one
 * reference on the returned entry (dc_match_release). NULL when out of memory. */
DC_HIDDEN dc_match *dc_match_host(dc_gen *gen, const char *host, size_t len);
DC_HIDDEN void dc_match_release(dc_match *m);

/* engine.c */
DC_HIDDEN void dc_gen_release(dc_gen *g);
/* The state of plugin p of gen, created on first use. NULL with err on failure. */
DC_HIDDEN dc_sbx *dc_engine_state(dc_engine *e, dc_gen *g, uint32_t p, char *err, size_t errlen);
/* Drops the state of plugin p (after a quota trip): rebuilt on next use. */
DC_HIDDEN void dc_engine_drop_state(dc_engine *e, dc_gen *g, uint32_t p);
DC_HIDDEN double dc_engine_random(dc_engine *e); /* uniform in [0, 1) */
DC_HIDDEN void dc_engine_emit(dc_engine *e, dc_event ev, const char *domain,
                              const char *plugin, int phase, const char *msg, int status);

#endif /* DC_ENGINE_H */
