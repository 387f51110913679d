/* poller.c - the background pipeline: under the store's lease, fetch (conditional GET),
 * validate and compile (reusing the bytecode of unchanged plugins), encode a snapshot, publish
 * it and write the offline file; the last good bundle stays whatever the API does. Each step
 * emits its events (dc_event, dynacode.h). Runs in a thread of its own, or one poll at a
 * time (watch).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "poller_priv.h"

void dc_poller_config_default(dc_poller_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    dc_fetch_config_default(&cfg->fetch);
    cfg->interval_s = 15;
    cfg->poll_at_start = 1;
}

double dc_poller_unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void dc_poller_emit(dc_poller *p, dc_event ev, const char *domain, const char *plugin,
                    const char *msg, int status, uint64_t count)
{
    if (!p->cfg.events)
        return;
    dc_event_info info = {ev, domain, plugin, -1, msg, status, count, DC_SEV_USUAL};
    dc_events_emit(p->cfg.events, &info);
}

void dc_poller_note_error(dc_poller *p, dc_rc rc, const char *msg)
{
    p->poll_noted = 1;
    p->noted_at = dc_poller_unix_now();
    dc_errbuf_note(&p->first_error, rc, "%s", msg);
    if (p->cfg.store)
        dc_store_set_error(p->cfg.store, msg, p->noted_at);
}

static int copy_strings(dc_poller *p, const dc_poller_config *cfg)
{
    p->url = cfg->fetch.url ? strdup(cfg->fetch.url) : NULL;
    p->offline_file = cfg->offline_file ? strdup(cfg->offline_file) : NULL;
    p->ca_file = cfg->fetch.ca_file ? strdup(cfg->fetch.ca_file) : NULL;
    p->store_size_name = cfg->store_size_name ? strdup(cfg->store_size_name) : NULL;
    p->headers = calloc(cfg->fetch.nheaders + 1, sizeof *p->headers);
    if ((cfg->fetch.url && !p->url) || (cfg->offline_file && !p->offline_file) ||
        (cfg->fetch.ca_file && !p->ca_file) || !p->headers ||
        (cfg->store_size_name && !p->store_size_name))
        return -1;
    for (size_t i = 0; i < cfg->fetch.nheaders; i++)
        if (!(p->headers[i] = strdup(cfg->fetch.headers[i])))
            return -1;
    p->cfg.fetch.url = p->url;
    p->cfg.fetch.headers = (const char *const *)p->headers;
    p->cfg.fetch.ca_file = p->ca_file;
    p->cfg.offline_file = p->offline_file;
    p->cfg.store_size_name = p->store_size_name;
    return 0;
}

dc_rc dc_poller_new(const dc_poller_config *cfg, dc_poller **out, char *err, size_t errlen)
{
    if (!cfg || !cfg->fetch.url) {
        dc_set_err(err, errlen, "poller: a URL is required");
        return DC_EINVAL;
    }
    dc_poller *p = calloc(1, sizeof *p);
    if (!p)
        return DC_ENOMEM;
    p->cfg = *cfg;
    if (!p->cfg.pid)
        p->cfg.pid = (int32_t)getpid();
    if (p->cfg.interval_s <= 0)
        p->cfg.interval_s = 15;
    p->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)p;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->bmu, NULL);
    pthread_cond_init(&p->cv, NULL);
    dc_rc rc = copy_strings(p, cfg) == 0 ? DC_OK : DC_ENOMEM;
    if (rc == DC_OK && !cfg->policy) {
        rc = dc_policy_default(&p->own_policy, err, errlen);
        p->cfg.policy = p->own_policy;
    }
    if (rc == DC_OK) {
        dc_policy_limits(p->cfg.policy, &p->limits);
        rc = dc_fetcher_new(&p->cfg.fetch, &p->fetcher, err, errlen);
    }
    if (rc == DC_OK && cfg->nverify_keys > 0)
        rc = dc_poller_load_keys(p, cfg, err, errlen);
    p->cfg.verify_keys = NULL; /* the keys are read: the paths are not kept */
    p->cfg.nverify_keys = 0;
    if (rc != DC_OK) {
        dc_poller_free(p);
        return rc;
    }
    *out = p;
    return DC_OK;
}

dc_rc dc_poller_last_error(dc_poller *p, char *msg, size_t len)
{
    return dc_errbuf_take(p ? &p->first_error : NULL, msg, len);
}

dc_bundle *dc_poller_bundle(dc_poller *p)
{
    return p->bundle;
}

/* Puts b (taken) in force in this poller as store generation gen. */
static void set_bundle(dc_poller *p, dc_bundle *b, uint64_t gen)
{
    pthread_mutex_lock(&p->bmu);
    dc_bundle *old = p->bundle;
    p->bundle = b;
    p->seen_gen = gen;
    pthread_mutex_unlock(&p->bmu);
    dc_bundle_unref(old);
}

dc_bundle *dc_poller_bundle_of(dc_poller *p, uint64_t gen)
{
    dc_bundle *b = NULL;
    pthread_mutex_lock(&p->bmu);
    if (gen && p->seen_gen == gen && p->bundle)
        b = dc_bundle_ref(p->bundle);
    pthread_mutex_unlock(&p->bmu);
    return b;
}

/* Loading a large bundle leaves megabytes free in this thread's malloc arena (the JSON tree,
 * the compiler's replies, the matcher's build): given back to the system, so that the
 * polling worker is no larger than the others. */
static void release_garbage(void)
{
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
}

/* Reports what the loader left out: bg_compile_error per problem, then the successes. */
static void report_problems(dc_poller *p, const dc_bundle *b)
{
    uint32_t n = dc_bundle_problem_count(b), bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        const dc_problem *pr = dc_bundle_problem(b, i);
        if (pr->kind == DC_PROBLEM_UNKNOWN_FIELD)
            continue;
        bad++;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", pr->path ? pr->path : "", pr->message);
        dc_poller_emit(p, DC_EV_BG_COMPILE_ERROR, pr->domain, pr->plugin, msg, 0, 0);
    }
    dc_poller_emit(p, DC_EV_BG_COMPILE_SUCCESS, NULL, NULL, NULL, 0, dc_bundle_plugin_count(b));
}

/* The offline file (and with verify keys its signature) now holds json. */
static void write_offline(dc_poller *p, const char *json, size_t len)
{
    char err[512] = "";
    if (!p->offline_file)
        return;
    if (dc_offline_write(p->offline_file, json, len, err, sizeof err) != DC_OK ||
        dc_poller_write_offline_sig(p, err, sizeof err) != DC_OK) {
        /* The bundle is good and in force; only the copy on disk is stale. The next polls
         * fetch it whole (a 304 carries no body to write) and try again, until it is written
         * or a new bundle comes. */
        dc_poller_emit(p, DC_EV_ON_ERROR, NULL, NULL, err, 0, 0);
        dc_poller_note_error(p, DC_EIO, err);
        p->offline_stale = 1;
        dc_fetcher_reset_validators(p->fetcher);
        return;
    }
    p->offline_stale = 0;
}

/* Why a snapshot of slen bytes was not published, and what store size would take it: the
 * host's setting named (with its value raised by what the store lacks, and a margin for the
 * host's own bookkeeping, rounded up to MiB) when the host gave its name. */
static void no_room(const dc_poller *p, size_t slen, char *err, size_t errlen)
{
    size_t room = dc_store_snapshot_room(p->cfg.store);
    size_t more = dc_store_region_for(slen) - dc_store_region_for(room);
    int n = snprintf(err, errlen,
                     "the bundle's snapshot (%zu bytes) does not fit the shared store, which "
                     "holds snapshots of up to %zu bytes (two at a time: the one in force and "
                     "the next): ", slen, room);
    if (n < 0 || (size_t)n >= errlen)
        return;
    if (p->store_size_name && p->cfg.store_size_value) {
        double want = ((double)p->cfg.store_size_value + (double)more) * 1.01;
        unsigned long long mib = (unsigned long long)(want / 1048576.0) + 1;
        snprintf(err + n, errlen - (size_t)n, "%s must be at least %llum (now %zu bytes)",
                 p->store_size_name, mib, p->cfg.store_size_value);
    } else {
        snprintf(err + n, errlen - (size_t)n, "the store needs %zu bytes more", more);
    }
}

/* Publishes b (the store and the offline file) and puts it in force here. Takes b. */
static dc_rc adopt(dc_poller *p, dc_bundle *b, const char *json, size_t len, const char *source,
                   const char *etag)
{
    char err[512] = "";
    uint64_t gen = p->seen_gen;
    if (p->cfg.store) {
        unsigned char *snap = NULL;
        size_t slen = 0;
        dc_rc rc = dc_snapshot_encode(b, &snap, &slen);
        if (rc == DC_OK)
            rc = dc_store_publish(p->cfg.store, snap, slen, source, etag ? etag : "",
                                  dc_poller_unix_now());
        free(snap);
        if (rc == DC_ELIMIT) {
            no_room(p, slen, err, sizeof err);
        } else if (rc != DC_OK) {
            snprintf(err, sizeof err, "cannot publish the bundle (%zu bytes): %s", slen,
                     dc_strerror(rc));
        }
        if (rc != DC_OK) {
            dc_poller_emit(p, DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, err, 0, 0);
            dc_poller_note_error(p, rc, err);
            dc_bundle_unref(b);
            /* not in force: the next poll fetches it again (a 304 would hide it) */
            dc_poller_forget_refusal(p);
            return rc;
        }
        gen = dc_store_generation(p->cfg.store);
    }
    set_bundle(p, b, gen);
    if (strcmp(source, "api") == 0)
        write_offline(p, json, len);
    return DC_OK;
}

static dc_rc take_body(dc_poller *p, dc_fetch_result *res)
{
    char err[1024] = "";
    uint64_t hash = dc_hash64(res->body, res->len);
    int same = p->bundle && p->bundle->hash == hash;
    if (same && (!p->keys || p->verified_hash == hash)) {
        /* the copy on disk a failed write left stale, written now */
        if (p->offline_stale)
            write_offline(p, res->body, res->len);
        /* said at every poll of an unchanged bundle: only a refusal is news */
        dc_poller_unchanged(p, "the bundle did not change");
        return DC_OK;
    }
    /* With verify keys, a bundle this poller has not verified yet (a new one, or the one in
     * force when another process published it) must show its signature. */
    if (p->keys && dc_poller_check_signature(p, res->body, res->len, hash) != DC_OK)
        return DC_ESIG;
    if (same) {
        /* verified only now (verify keys added by a reload): the offline file gets the
         * signature it lacked */
        write_offline(p, res->body, res->len);
        dc_poller_unchanged(p, "the bundle did not change");
        return DC_OK;
    }
    dc_bundle *b = NULL;
    dc_rc rc = dc_bundle_load(res->body, res->len, &p->limits, p->bundle, &b, err, sizeof err);
    if (rc == DC_OK && dc_version_refused(p->bundle, b, p->cfg.allow_downgrade, err,
                                          sizeof err)) {
        dc_bundle_unref(b);
        b = NULL;
        rc = DC_EBUNDLE;
    }
    if (rc != DC_OK) {
        /* Refused whole: the last good bundle stays. */
        char msg[1100];
        snprintf(msg, sizeof msg, "bundle refused (%s): %s", dc_strerror(rc), err);
        dc_poller_emit(p, DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, msg, 0, 0);
        dc_poller_note_error(p, rc, msg);
        dc_poller_remember_refusal(p, rc, hash, msg);
        return rc;
    }
    report_problems(p, b);
    uint32_t n = dc_bundle_plugin_count(b);
    rc = adopt(p, b, res->body, res->len, "api", res->etag);
    release_garbage();
    char msg[300];
    if (res->final_url[0]) /* a bundle from elsewhere than the configured URL is news */
        snprintf(msg, sizeof msg, "redirected to %s", res->final_url);
    if (rc == DC_OK)
        dc_poller_emit(p, DC_EV_BG_UPDATED_PLUGINS, NULL, NULL, res->final_url[0] ? msg : NULL, 0,
                       n);
    return rc;
}

/* When another process published since this poller's bundle (the lease moved), the store's
 * bundle becomes this poller's previous one: unchanged plugins keep their bytecode, refused
 * ones their previous version, and an unchanged bundle is not published again. */
static void catch_up(dc_poller *p)
{
    uint64_t gen = dc_store_generation(p->cfg.store);
    if (gen == 0 || gen == p->seen_gen)
        return;
    uint64_t got = 0;
    char err[512] = "";
    dc_bundle *b = NULL;
    if (dc_store_read_bundle(p->cfg.store, &got, &b, err, sizeof err) != DC_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "shared snapshot refused: %s", err);
        dc_poller_emit(p, DC_EV_ON_ERROR, NULL, NULL, msg, 0, 0);
        return;
    }
    set_bundle(p, b, got);
    dc_poller_forget_refusal(p); /* its validators may be another bundle's */
}

/* How long the store's lease lasts without renewal: three intervals, plus the longest a fetch
 * may take (the fetcher's default when 0). */
static uint32_t lease_ttl_ms(const dc_poller *p)
{
    return (uint32_t)((p->cfg.interval_s + p->cfg.jitter_s) * 3000.0) +
           (p->cfg.fetch.timeout_ms ? p->cfg.fetch.timeout_ms : 5000);
}

dc_rc dc_poller_poll(dc_poller *p)
{
    dc_store *st = p->cfg.store;
    if (st && !dc_store_lease(st, p->cfg.pid, lease_ttl_ms(p)))
        return DC_OK; /* another process polls this time */
    if (st)
        catch_up(p);
    p->poll_noted = 0;
    dc_fetch_result res;
    dc_rc rc = dc_fetcher_fetch(p->fetcher, &res);
    if (rc != DC_OK)
        return rc;
    char msg[300];
    switch (res.status) {
    case DC_FETCH_OK:
        if (res.final_url[0])
            snprintf(msg, sizeof msg, "redirected to %s", res.final_url);
        dc_poller_emit(p, DC_EV_BG_FETCH_API_SUCCESS, NULL, NULL, res.final_url[0] ? msg : NULL,
                       res.http_status, res.len);
        if (!dc_poller_same_refused_body(p, &res))
            rc = take_body(p, &res);
        break;
    case DC_FETCH_NOT_MODIFIED:
        dc_poller_emit(p, DC_EV_BG_FETCH_NOT_MODIFIED, NULL, NULL, NULL, res.http_status, 0);
        if (p->refused_kept)
            dc_poller_still_refused(p);
        break;
    case DC_FETCH_TRUNCATED:
        snprintf(msg, sizeof msg, "bundle refused: %s", res.error);
        dc_poller_emit(p, DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, msg, res.http_status, 0);
        dc_poller_note_error(p, DC_EIO, msg);
        break;
    case DC_FETCH_HTTP_ERROR:
        dc_poller_emit(p, DC_EV_BG_FETCH_API_STATUS_CODE_ERROR, NULL, NULL, res.error,
                       res.http_status, 0);
        dc_poller_note_error(p, DC_EIO, res.error);
        break;
    case DC_FETCH_TOO_BIG:
        dc_poller_emit(p, DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, res.error, res.http_status, 0);
        dc_poller_note_error(p, DC_ELIMIT, res.error);
        /* with validators the fetcher now names this answer: its 304 means the same oversized
         * bundle, refused again without a download (no hash: its bytes were never all read) */
        if (res.etag[0] || res.last_modified[0])
            dc_poller_remember_refusal(p, DC_ELIMIT, 0, res.error);
        break;
    case DC_FETCH_TRANSPORT_ERROR:
        dc_poller_emit(p, DC_EV_BG_FETCH_API_GENERIC_ERROR, NULL, NULL, res.error,
                       res.http_status, 0);
        dc_poller_note_error(p, DC_EIO, res.error);
        break;
    }
    if (st) /* for the status page: when the API last answered, and the failures since */
        dc_store_note_poll(st, res.status == DC_FETCH_OK || res.status == DC_FETCH_NOT_MODIFIED,
                           dc_poller_unix_now());
    if (!p->poll_noted && !p->refused_kept &&
        (res.status == DC_FETCH_OK || res.status == DC_FETCH_NOT_MODIFIED))
        dc_poller_clear_error(p);
    dc_fetch_result_clear(&res);
    return rc;
}

dc_rc dc_poller_start_offline(dc_poller *p, uint32_t wait_ms)
{
    dc_store *st = p->cfg.store;
    if (!st)
        return p->offline_file ? dc_poller_load_offline(p) : DC_OK;
    if (dc_store_generation(st) != 0 || !p->offline_file || access(p->offline_file, R_OK) != 0)
        return DC_OK; /* a bundle in force already, or none to offer: the first poll decides */
    if (dc_store_lease(st, p->cfg.pid, lease_ttl_ms(p)))
        return dc_poller_load_offline(p);
    /* a sibling holds the lease and is loading it: wait for its publication, a bounded time */
    for (uint32_t waited = 0; waited < wait_ms; waited += 10) {
        if (dc_store_generation(st) != 0)
            return DC_OK;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return dc_store_generation(st) != 0 ? DC_OK : DC_EBUSY;
}

dc_rc dc_poller_load_offline(dc_poller *p)
{
    if (p->bundle)
        return DC_OK;
    if (!p->offline_file)
        return DC_EINVAL;
    char err[1024] = "", msg[1200];
    char *json = NULL;
    size_t len = 0;
    dc_bundle *b = NULL;
    dc_rc rc = dc_offline_read(p->offline_file, p->limits.max_bundle_bytes, &json, &len, err,
                               sizeof err);
    if (rc == DC_OK && p->keys)
        rc = dc_poller_verify_offline(p, json, len, err, sizeof err);
    /* Loaded only when nothing is in force: its general.version becomes the version in force,
     * which the first poll's bundle is then held to. */
    if (rc == DC_OK)
        rc = dc_bundle_load(json, len, &p->limits, NULL, &b, err, sizeof err);
    if (rc != DC_OK) {
        snprintf(msg, sizeof msg, "offline file %s refused: %s", p->offline_file, err);
        dc_poller_emit(p, DC_EV_ON_ERROR, NULL, NULL, msg, 0, 0);
        dc_poller_note_error(p, rc, msg);
        free(json);
        return rc;
    }
    report_problems(p, b);
    uint32_t n = dc_bundle_plugin_count(b);
    rc = adopt(p, b, json, len, "offline", "");
    free(json);
    if (rc == DC_OK) {
        snprintf(msg, sizeof msg, "loaded from %s", p->offline_file);
        dc_poller_emit(p, DC_EV_BG_OFFLINE_LOADED, NULL, NULL, msg, 0, n);
    }
    return rc;
}

/* Waits up to ms; returns 1 when asked to stop. */
static int wait_ms(dc_poller *p, double ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = (long long)(ms * 1e6);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec += (long)(ns % 1000000000LL);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stop))
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->stop);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A number in [0, 1) from the poller's own generator (seeded by time, pid and address, so the
 * workers and servers of a fleet draw different phases). */
static double draw(dc_poller *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return (double)(p->rng >> 11) / 9007199254740992.0;
}

static void *run(void *arg)
{
    dc_poller *p = arg;
    for (int i = 0; i < 8; i++) /* seeds that differ in a few bits give different phases */
        draw(p);
    double start = mono_s(), due = 0;
    double phase = dc_poll_phase(p->cfg.jitter_s, draw(p));
    if (p->cfg.poll_at_start)
        dc_poller_poll(p);
    for (;;) {
        /* after the slot just polled, even when the wait ended a little early */
        double now = mono_s() - start;
        due = dc_poll_next(p->cfg.interval_s, phase, now > due ? now : due);
        if (wait_ms(p, (due - now) * 1000.0))
            break;
        dc_poller_poll(p);
    }
    return NULL;
}

dc_rc dc_poller_start(dc_poller *p)
{
    if (p->running)
        return DC_EINVAL;
    atomic_store(&p->stop, 0);
    int e = pthread_create(&p->thread, NULL, run, p);
    if (e != 0) {
        dc_errbuf_note(&p->first_error, DC_ETHREAD, "poller: cannot start its thread: %s",
                       strerror(e));
        return DC_ETHREAD;
    }
    p->running = 1;
    return DC_OK;
}

void dc_poller_stop(dc_poller *p)
{
    if (!p || !p->running)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = 0;
    if (p->cfg.store)
        dc_store_lease_release(p->cfg.store, p->cfg.pid);
}

void dc_poller_free(dc_poller *p)
{
    if (!p)
        return;
    dc_poller_stop(p);
    dc_fetcher_free(p->fetcher);
    dc_fetcher_free(p->sig_fetcher);
    dc_keyring_free(p->keys);
    free(p->sig);
    dc_bundle_unref(p->bundle);
    dc_policy_free(p->own_policy);
    for (size_t i = 0; p->headers && p->headers[i]; i++)
        free(p->headers[i]);
    free(p->headers);
    free(p->url);
    free(p->offline_file);
    free(p->ca_file);
    free(p->store_size_name);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->bmu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
