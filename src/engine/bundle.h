/* bundle.h - the engine's bundle model: plugins, domains and the bundle they form, immutable
 * once dc_bundle_load returns.
 */
#ifndef DC_BUNDLE_H
#define DC_BUNDLE_H

#include <stdatomic.h>

#include "base.h"
#include "hostset.h"

/* ---- the bundle model: immutable once dc_bundle_load returns ---- */
typedef struct dc_plugin {
    char *name;
    dc_phase phase;
    int skip;               /* "skip": true - never runs */
    double sampling;        /* share of requests that run it, 0..1 (1 when absent) */
    int has_id;
    int64_t id;             /* "id" when has_id */
    dc_quota quota;         /* the plugin's own "quota"; a 0 field means not asked */
    unsigned char *bc;      /* LuaJIT bytecode (owned) */
    size_t bclen;
    uint64_t code_hash;     /* dc_hash64 of the source: same hash, same state across bundles */
    int kept_previous;      /* 1 when this is the previous bundle's version, kept after a refusal */
} dc_plugin;

typedef struct dc_domain {
    char *name;
    int any;                /* name is "*" */
    pcre2_code *re;         /* NULL when any */
    uint32_t *plugins;      /* indices into dc_bundle.plugins, bundle order (owned) */
    uint32_t nplugins;
} dc_domain;

struct dc_bundle {
    atomic_uint refs;
    int enabled;            /* general.status == "enabled" */
    int has_version;        /* general.version was given */
    int64_t version;        /* general.version; 0 when absent */
    pcre2_code **skip;      /* general.skip_domains, compiled (owned) */
    uint32_t nskip;
    dc_domain *domains;     /* usable domains only, bundle order (owned) */
    uint32_t ndomains;
    /* Every host pattern in one matcher (owned): slots 0..nskip-1 are the skip_domains,
     * then one slot per domain (empty for "*"). NULL in a bundle made by hand: then the
     * regexes above are searched one by one. */
    dc_hostset *hosts;
    dc_plugin *plugins;     /* usable plugins only (owned); a shared plugin appears once */
    uint32_t nplugins;
    dc_problem *problems;   /* strings owned by the bundle; the first few only */
    uint32_t nproblems;
    uint32_t problems_total;    /* every problem met, kept or not */
    uint32_t problems_left_out; /* of those, the ones that are not unknown-field warnings */
    uint64_t hash;          /* dc_hash64 of the JSON text */
};

/* Deferred counting of the events each request emits (events.c): on, the emitting thread counts
 * them in the hub and dc_events_fold, from any one thread at a time, adds them to the counters;
 * off folds what is left. Set and cleared by the thread that emits. */
DC_HIDDEN void dc_events_defer(dc_events *ev, int on);
/* dc_events_emit of an event that names nothing but its phase (a request's phase starting or
 * done), without building its record when no one listens: the count alone. */
DC_HIDDEN void dc_events_note(dc_events *ev, dc_event which, int phase);
DC_HIDDEN void dc_events_fold(dc_events *ev);

#endif /* DC_BUNDLE_H */
