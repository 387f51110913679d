/* store_metrics.c - per-plugin metrics in the region: finding or making a plugin's entry,
 * recording each call (result, duration in latency buckets), the buckets' bounds and the 99th
 * percentile.
 */
#include "store_internal.h"

#define METRICS_PROBE 32u
#define METRICS_IDLE_MS (10.0 * 60.0 * 1000.0)

static void metrics_reset(dc_plugin_metrics *m, uint64_t now)
{
    STORE_RLX(&m->runs, 0);
    STORE_RLX(&m->errors, 0);
    STORE_RLX(&m->quota_instructions, 0);
    STORE_RLX(&m->quota_time, 0);
    STORE_RLX(&m->quota_memory, 0);
    STORE_RLX(&m->total_us, 0);
    for (unsigned b = 0; b < DC_STORE_LAT_BUCKETS; b++)
        STORE_RLX(&m->latency[b], 0);
    STORE_REL(&m->last_ms_unix, now);
}

dc_plugin_metrics *dc_store_metrics(dc_store *s, uint64_t key, int create)
{
    if (!s || s->nmet == 0)
        return NULL;
    key = fix_key(key);
    uint32_t probe = s->nmet < METRICS_PROBE ? s->nmet : METRICS_PROBE;
    int made;
    int64_t i = dc_store_table_find(s->met, sizeof *s->met, s->nmet, probe, key, create, &made);
    if (i >= 0) {
        if (made)
            STORE_REL(&s->met[i].last_ms_unix, (uint64_t)dc_unix_ms());
        return &s->met[i];
    }
    if (!create)
        return NULL;
    uint64_t now = (uint64_t)dc_unix_ms();
    /* Full around key's place: reuse the entry idle the longest, if idle for ten minutes (its
     * plugin is most likely gone; a late update from it only blurs the new entry's counts). */
    dc_plugin_metrics *victim = NULL;
    uint64_t vkey = 0, vlast = UINT64_MAX;
    uint32_t h = dc_store_table_home(key, s->nmet);
    for (uint32_t k = 0; k < probe; k++) {
        dc_plugin_metrics *m = &s->met[(h + k) % s->nmet];
        uint64_t mk = LOAD_ACQ(&m->key);
        if (mk == key)
            return m;
        uint64_t last = LOAD_ACQ(&m->last_ms_unix);
        if ((double)last + METRICS_IDLE_MS < (double)now && last < vlast) {
            victim = m;
            vkey = mk;
            vlast = last;
        }
    }
    if (!victim)
        return NULL;
    if (!CAS(&victim->key, &vkey, key))
        return vkey == key ? victim : NULL;
    metrics_reset(victim, now);
    return victim;
}

/* The bucket bounds in microseconds, 1-2-5 in every decade up to 10 s; the last bucket takes
 * every longer call. */
static const uint64_t lat_bound[DC_STORE_LAT_BUCKETS - 1] = {
    1,     2,     5,      10,     20,     50,      100,     200,     500,     1000,    2000,
    5000,  10000, 20000,  50000,  100000, 200000,  500000,  1000000, 2000000, 5000000, 10000000,
};

uint64_t dc_time_bucket_us(unsigned i)
{
    return i < DC_STORE_LAT_BUCKETS - 1 ? lat_bound[i] : UINT64_MAX;
}

/* Compares from the shortest bound: most calls end in the first few buckets. */
static unsigned lat_bucket(uint64_t us)
{
    unsigned k = 0;
    while (k < DC_STORE_LAT_BUCKETS - 1 && us > lat_bound[k])
        k++;
    return k;
}

/* The counter of m that a call ending with r adds one to besides runs (NULL: none). */
static uint64_t *result_word(dc_plugin_metrics *m, dc_result r)
{
    switch (r) {
    case DC_RESULT_ERROR:
    case DC_RESULT_DENIED:
        return &m->errors;
    case DC_RESULT_QUOTA_INSTRUCTIONS:
        return &m->quota_instructions;
    case DC_RESULT_QUOTA_TIME:
        return &m->quota_time;
    case DC_RESULT_QUOTA_MEMORY:
        return &m->quota_memory;
    case DC_RESULT_OK:
        break;
    }
    return NULL;
}

void dc_metrics_record(dc_plugin_metrics *m, dc_result r, uint64_t us, double now_ms_unix)
{
    if (!m)
        return;
    __atomic_fetch_add(&m->runs, 1, __ATOMIC_RELAXED);
    uint64_t *w = result_word(m, r);
    if (w)
        __atomic_fetch_add(w, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->total_us, us, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->latency[lat_bucket(us)], 1, __ATOMIC_RELAXED);
    STORE_RLX(&m->last_ms_unix, now_ms_unix > 0 ? (uint64_t)now_ms_unix : 0);
}

/* the counters of an entry, in order: every word from runs to the end (pad never moves) */
#define COUNTER_WORDS ((sizeof(dc_plugin_metrics) - offsetof(dc_plugin_metrics, runs)) / 8)

static uint64_t *counter_words(dc_plugin_metrics *m)
{
    return &m->runs;
}

static void bump(uint64_t *w, uint64_t by)
{
    STORE_RLX(w, LOAD_RLX(w) + by);
}

void dc_metrics_note(dc_plugin_metrics *local, dc_result r, uint64_t us)
{
    uint64_t *w = result_word(local, r);
    if (w)
        bump(w, 1);
    bump(&local->total_us, us);
    bump(&local->latency[lat_bucket(us)], 1);
    STORE_REL(&local->runs, LOAD_RLX(&local->runs) + 1);
}

uint64_t dc_metrics_fold(dc_plugin_metrics *m, const dc_plugin_metrics *local,
                         dc_plugin_metrics *folded, double now_ms_unix)
{
    uint64_t runs = LOAD_ACQ(&local->runs); /* first: what the call wrote before it is seen */
    if (runs == folded->runs)
        return 0;
    const uint64_t *cur = counter_words((dc_plugin_metrics *)local);
    uint64_t *done = counter_words(folded), *to = counter_words(m);
    for (size_t i = 1; i < COUNTER_WORDS; i++) {
        uint64_t v = LOAD_RLX(&cur[i]);
        if (v != done[i]) {
            __atomic_fetch_add(&to[i], v - done[i], __ATOMIC_RELAXED);
            done[i] = v;
        }
    }
    __atomic_fetch_add(&m->runs, runs - folded->runs, __ATOMIC_RELAXED);
    STORE_RLX(&m->last_ms_unix, now_ms_unix > 0 ? (uint64_t)now_ms_unix : 0);
    uint64_t added = runs - folded->runs;
    folded->runs = runs;
    return added;
}

uint64_t dc_metrics_p99_us(const dc_plugin_metrics *m)
{
    if (!m)
        return 0;
    uint64_t c[DC_STORE_LAT_BUCKETS], total = 0;
    for (unsigned b = 0; b < DC_STORE_LAT_BUCKETS; b++)
        total += c[b] = LOAD_RLX(&m->latency[b]);
    if (total == 0)
        return 0;
    uint64_t want = total - total / 100; /* calls at or under the 99th percentile */
    uint64_t cum = 0;
    unsigned b = 0;
    for (; b < DC_STORE_LAT_BUCKETS; b++) {
        cum += c[b];
        if (cum >= want)
            break;
    }
    /* the last bucket has no upper bound: its lower one stands for it */
    return lat_bound[b < DC_STORE_LAT_BUCKETS - 1 ? b : DC_STORE_LAT_BUCKETS - 2];
}

dc_plugin_metrics *dc_store_metrics_at(dc_store *s, uint32_t i, uint32_t *n)
{
    if (n)
        *n = s ? s->nmet : 0;
    return s && i < s->nmet ? &s->met[i] : NULL;
}
