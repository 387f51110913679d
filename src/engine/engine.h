/* engine.h - private structures of the per-process engine: bundle generations pinned by
 * requests, the host match cache of each generation, and the pool of plugin states.
 */
#ifndef DC_ENGINE_H
#define DC_ENGINE_H

#include "bundle.h"
#include "store.h"
#include "ledger.h"
#include "sandbox.h"
#include "policy.h"

#include <pthread.h>
#include <stdatomic.h>

struct dc_match_cache;
struct dc_gen;

/* Generations whose last reference went while frees are deferred (dc_engine_defer_frees):
 * freed by dc_engine_reap on the thread that prepares generations, not between requests. */
typedef struct dc_grave {
    atomic_int on;
    _Atomic(struct dc_gen *) gens; /* linked by dead_next; pushed and taken without a lock */
} dc_grave;

/* A plugin's identity across bundles (its first domain and its name) with its index. */
typedef struct dc_ident {
    uint64_t id;
    uint32_t i;
} dc_ident;

/* The policy in force for one plugin on the hosts whose rules resolve alike, when rules with a
 * domain regex could apply to it (dc_gen.hostdep): made when a host is matched, shared by
 * every cached host that resolves to the same settings, freed with the last of them. */
typedef struct dc_variant {
    struct dc_variant *next;      /* the cache's variant chain */
    struct dc_match_cache *cache; /* whose table holds it */
    unsigned refs;                /* one per item pointing at it */
    uint64_t hash;
    uint32_t plugin;
    dc_policy_eff eff;            /* for the plugin */
    dc_policy_eff fb_eff;         /* for its stand-in (dc_gen.fallback), when it has one */
    uint64_t key, fb_key;         /* state identities under these settings */
} dc_variant;

/* One plugin to run: where it comes from in the bundle, and its host's settings when they
 * differ by host (else NULL: dc_gen.eff holds them). */
typedef struct dc_item {
    uint32_t domain;
    uint32_t plugin;
    dc_variant *v;
} dc_item;

/* The plugins a host runs, phase by phase: the result of matching it against a generation's
 * bundle (immutable once built). Shared by every cached host that resolves to the same items
 * (the thousands of hosts of a platform mostly match the same few domains), and freed with its
 * last reference. */
typedef struct dc_match {
    struct dc_match *next;   /* the cache's chain of results */
    unsigned refs;           /* one per host slot holding it, one per request */
    uint64_t hash;           /* of the items */
    size_t bytes;            /* the allocation's size, counted by the cache */
    struct dc_match_cache *cache; /* whose results it is among; NULL: served once, not kept */
    uint32_t count[DC_PHASE_COUNT];
    dc_item *items[DC_PHASE_COUNT];
    /* the items follow in the same allocation */
} dc_match;

/* A cached host: a slot of a fixed table, so that a host seen for the first time costs no
 * allocation and its eviction no free. Hosts longer than DC_HOST_INLINE are matched on every
 * request (the matcher's pass, and the result found among the shared ones). */
#define DC_HOST_INLINE 54
typedef struct dc_host_slot {
    dc_match *m;             /* NULL: the slot is free */
    uint16_t len;
    char host[DC_HOST_INLINE];
} dc_host_slot;

typedef struct dc_match_cache {
    uint64_t *hashes;        /* slot i's host hash, apart: a probe window reads one cache line */
    dc_host_slot *slots;
    uint32_t nslots;         /* power of two, at least cap */
    uint32_t size;           /* slots in use, at most cap */
    uint32_t cap;
    uint32_t clock;          /* which slot of a full probe window gives way */
    dc_match **rbuckets;     /* the results, by their items' hash */
    uint32_t nrbuckets;      /* power of two */
    size_t bytes;            /* of the results held */
    size_t max_bytes;        /* past it, a new result serves its request and is not kept (a
                                host's result grows with the plugins that apply to it, which
                                the bundle decides) */
    dc_item *build;          /* the items of the host being matched, before they are shared */
    uint32_t buildcap;
    dc_variant **vbuckets;   /* variants, made on first need */
    uint32_t nvbuckets;      /* power of two */
    /* Made once for the bundle's host matcher (dc_cache_bind), reused by every match: */
    dc_hostset_scratch *scratch;
    unsigned char *hits;     /* one per host pattern, all 0 between matches */
    uint32_t *found;         /* the patterns one match found */
    uint32_t *doms;          /* the domains that apply, in bundle order */
    uint32_t *anyd;          /* the "*" domains, in bundle order */
    uint32_t nany;
} dc_match_cache;

/* One plugin as the run loop sees it: the bundle's own, or a previous version standing in. */
typedef struct dc_runnable {
    const dc_plugin *plugin;
    uint64_t key;            /* identity of its state in the pool */
    uint64_t base;           /* the plugin's key whatever the host: a swap keeps the states of
                                the plugins still in force by this */
    uint64_t qkey;           /* identity for quarantine and metrics (name and code) */
    const dc_policy_eff *eff;
    dc_plugin_metrics **met; /* where its shared metrics entry is remembered (in its dc_gen or
                                dc_fallback); checked against qkey before each use */
} dc_runnable;

/* A previous version that ran without trips, kept to run while the version in force is
 * quarantined. It holds a reference on the bundle it comes from. */
typedef struct dc_fallback {
    dc_bundle *bundle;
    dc_runnable run;         /* run.eff and run.met point at eff and met below */
    dc_policy_eff eff;
    dc_plugin_metrics *met;
} dc_fallback;

/* A bundle in force, pinned by the requests that began under it. */
typedef struct dc_gen {
    unsigned refs;
    uint64_t number;
    dc_bundle *bundle;
    uint64_t *keys;          /* per plugin: the identity of its state in the pool */
    uint64_t *qkeys;         /* per plugin: its identity for quarantine (name and code) */
    const dc_policy *policy; /* the engine's (outlives every generation) */
    dc_policy_eff *eff;      /* per plugin: the policy in force for it on a host that no rule
                                with a domain regex matches (on every host unless hostdep) */
    unsigned char *hostdep;  /* per plugin: 1 when its policy depends on the host (dc_variant) */
    const char **domain;     /* per plugin: the first domain naming it (the bundle's string) */
    dc_fallback **fallback;  /* per plugin: the previous version standing in, or NULL */
    dc_plugin_metrics **met; /* per plugin: its entry in the store's metrics, once looked up */
    dc_ident *idents;        /* per plugin, sorted: matching plugins with the next generation's */
    uint64_t *sorted_keys;   /* keys, sorted: which pool states stay at a swap */
    dc_match_cache cache;
    dc_grave *grave;         /* the engine's, once installed: where it goes when released */
    struct dc_gen *dead_next;
} dc_gen;

/* A generation prepared off the request thread for the engine to take, or why the snapshot
 * behind it was refused (gen NULL, rc and err set). */
typedef struct dc_prepared {
    dc_gen *gen;
    uint64_t store_gen;      /* the store generation it was read from */
    dc_rc rc;
    char err[512];
} dc_prepared;

/* A live plugin state in the pool, found by key, evicted least recently used first. */
typedef struct dc_slot {
    uint64_t key;
    uint64_t base;                    /* dc_runnable.base */
    dc_sbx *sbx;
    struct dc_slot *hnext;            /* hash chain */
    struct dc_slot *prev, *next;      /* LRU list, most recent first */
    int keep;                         /* marking during a swap */
} dc_slot;

struct dc_engine {
    dc_host host;
    dc_events *events;
    dc_ledger ledger;                 /* every call recorded, quarantine asked (ledger.c) */
    const dc_policy *policy;
    dc_policy *own_policy;            /* the built-in default, when the host gave none */
    uint64_t rng;
    uint32_t host_cache_size;
    dc_gen *gen;                      /* in force; NULL before the first bundle */
    uint64_t next_gen;
    uint64_t synced;                  /* the store generation last taken (dc_engine_sync) */
    _Atomic(dc_prepared *) pending;   /* posted by a preparing thread, taken between requests */
    atomic_int prepared_off_thread;   /* 1 while a thread prepares generations (dc_syncer) */
    dc_grave grave;
    dc_run_cb run_cb;
    void *run_ud;
    int run_errors_only;              /* run_cb is not called for calls that went well */
    /* state pool */
    dc_slot **slots;
    uint32_t nslots_buckets;          /* power of two */
    uint32_t live;
    uint64_t states_made;             /* ever, in this engine */
    struct dc_request *spare;         /* ended requests kept for reuse (request.c) */
    uint32_t nspare;
    uint32_t max_states;
    dc_slot *lru_head, *lru_tail;
    dc_sbx_blocks *blocks;            /* the states' freed small blocks, reused */
    struct dc_watchdog *watchdog;     /* NULL when off */
    dc_errbuf first_error;            /* dc_engine_last_error */
    dc_shdicts *shdicts;              /* ngx.shared's region (NULL: none); not owned */
};

struct dc_request {
    dc_engine *e;
    struct dc_request *next_spare;    /* in dc_engine.spare once ended */
    dc_gen *gen;                      /* pinned; NULL when no bundle */
    dc_match *m;                      /* NULL when nothing can run */
    void *hreq;
    dc_buf ctx;                       /* serialized ngx.ctx */
    dc_buf chunk;                     /* body_filter working chunk */
    int eof;
    uint32_t slept_ms;                /* what its plugins' ngx.sleep calls asked, in all */
    /* A plugin call asleep in ngx.sleep: where the walk of its phase stopped. */
    struct dc_asleep {
        int on;
        dc_phase phase;
        uint32_t i;                   /* its item in the phase */
        int stand_in;
        dc_runnable run;
        dc_sbx *s;                    /* its state, alive while the call sleeps (it may have
                                         left the pool meanwhile: dc_sbx_orphaned) */
        double ran_ms;                /* the time it ran so far, sleeps left out */
        dc_call call;
    } sleep;
};

/* match.c */
/* The most a generation's host match cache holds, entries and their items (32 MiB). */
#define DC_MATCH_CACHE_BYTES ((size_t)32 << 20)
DC_HIDDEN dc_rc dc_cache_init(dc_match_cache *c, uint32_t cap, size_t max_bytes);
DC_HIDDEN void dc_cache_free(dc_match_cache *c);
/* Makes what matching a host against b needs (the matcher's scratch, a result array) once,
 * when the generation is made rather than at its first request. A cache not bound makes them
 * at its first match. */
DC_HIDDEN dc_rc dc_cache_bind(dc_match_cache *c, const dc_bundle *b);
/* The match for host under gen, from the cache or computed and cached. The caller holds one
 * reference on the returned entry (dc_match_release). NULL when out of memory. */
DC_HIDDEN dc_match *dc_match_host(dc_gen *gen, const char *host, size_t len);
DC_HIDDEN void dc_match_release(dc_match *m);

/* request.c: ended requests kept for the next ones, with their buffers up to this size */
#define DC_SPARE_REQUESTS 64
#define DC_SPARE_BUF_BYTES 4096
DC_HIDDEN void dc_request_spares_free(dc_engine *e);

/* engine.c */
DC_HIDDEN void dc_gen_release(dc_gen *g);
/* Everything a generation of b needs (policy per plugin, state keys, identities, an empty
 * host cache), built from e's read-only settings only: callable on any thread while requests
 * run. The generation holds a reference on b. */
DC_HIDDEN dc_rc dc_gen_prepare(const dc_engine *e, dc_bundle *b, dc_gen **out);
/* Frees a generation that was prepared but never installed. */
DC_HIDDEN void dc_gen_discard(dc_gen *g);
/* Puts g in force (between requests, on the request thread): links the previous versions
 * standing in, frees the states of plugins gone, releases the generation it replaces.
 * Linear in the two bundles. g NULL unloads. */
DC_HIDDEN void dc_engine_install(dc_engine *e, dc_gen *g);
/* Hands p to the request thread (replacing one not taken yet); dc_engine_take gets it. */
DC_HIDDEN void dc_engine_post(dc_engine *e, dc_prepared *p);
DC_HIDDEN dc_prepared *dc_engine_take(dc_engine *e);
DC_HIDDEN void dc_prepared_free(dc_prepared *p);
/* While on, a generation released by the last request using it is queued for dc_engine_reap
 * instead of freed there and then; turning it off reaps what is queued. */
DC_HIDDEN void dc_engine_defer_frees(dc_engine *e, int on);
DC_HIDDEN void dc_engine_reap(dc_engine *e);
/* Plugin p of gen as a runnable (the settings of a host no domain rule matches). */
DC_HIDDEN dc_runnable dc_gen_runnable(const dc_gen *g, uint32_t p);
/* An item of a host's match as a runnable, with that host's settings; *stand_in is set to 1
 * when the plugin is quarantined and its previous version runs instead. Returns 0 when
 * nothing can run (quarantined without a stand-in). */
DC_HIDDEN int dc_item_runnable(dc_engine *e, const dc_gen *g, const dc_item *it,
                               dc_runnable *out, int *stand_in);
/* The state identity of a plugin whose key is base under settings eff, when the settings the
 * key was computed for were def. */
DC_HIDDEN uint64_t dc_variant_key(uint64_t base, const dc_policy_eff *def,
                                  const dc_policy_eff *eff);
/* The state of a runnable, created on first use. NULL with err on failure. */
DC_HIDDEN dc_sbx *dc_engine_state(dc_engine *e, const dc_runnable *r, char *err, size_t errlen);
/* Drops the state with this key (after a quota trip): rebuilt on next use. */
DC_HIDDEN void dc_engine_drop_state(dc_engine *e, uint64_t key);
DC_HIDDEN double dc_engine_random(dc_engine *e); /* uniform in [0, 1) */
DC_HIDDEN void dc_engine_emit(dc_engine *e, dc_event ev, const char *domain,
                              const char *plugin, int phase, const char *msg, int status);

/* watchdog.c */
typedef struct dc_watchdog dc_watchdog;
DC_HIDDEN dc_rc dc_watchdog_start(const dc_engine_config *cfg, dc_watchdog **out);
DC_HIDDEN void dc_watchdog_stop(dc_watchdog *w);
/* Around every plugin call (cheap: a few atomic stores). deadline_ms 0: nothing to watch.
 * quarantine_s: how long the plugin is quarantined in the store when the watchdog fires. */
DC_HIDDEN void dc_watchdog_arm(dc_watchdog *w, double deadline_ms, const char *domain,
                               const char *plugin, uint64_t qkey, uint32_t quarantine_s);
DC_HIDDEN void dc_watchdog_disarm(dc_watchdog *w);

#endif /* DC_ENGINE_H */
