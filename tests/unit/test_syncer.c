/* test_syncer.c - a syncer thread prepares each new store generation off the request thread:
 * dc_engine_sync then only swaps it in; a refused snapshot is reported once and the plugins in
 * force stay; a generation a request still pins when it is replaced is freed by the syncer;
 * after dc_syncer_stop the engine reads the store itself again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "testutil.h"

#define REGION (1u << 20)
/* every wait for the syncer is bounded; the bound is generous for a slow or loaded machine */
#define WAIT_ROUNDS 6000
#define WAIT_US 5000

static void *region;
static dc_store *store;
static dc_events *events;

/* The snapshots the tests publish, encoded before any syncer thread starts: loading a bundle
 * forks the compiler helper, and a fork while another thread allocates can leave the child
 * stuck on a lock that thread held (AddressSanitizer's allocator has no fork handlers). */
#define NSNAPS 5
static unsigned char *snaps[NSNAPS];
static size_t snap_len[NSNAPS];

static void encode_all(void)
{
    for (int i = 0; i < NSNAPS; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\","
                 "\"plugins\":[{\"name\":\"auth\",\"phase\":\"access\","
                 "\"code\":\"ngx.header['X-Auth'] = 'v%d'\"}]}]}",
                 i + 1);
        dc_bundle *b = tu_bundle(json);
        ck_assert_int_eq(dc_snapshot_encode(b, &snaps[i], &snap_len[i]), DC_OK);
        dc_bundle_unref(b);
    }
}

/* Publishes snapshot "vN". */
static void publish(const char *value)
{
    int i = value[1] - '1';
    ck_assert(value[0] == 'v' && i >= 0 && i < NSNAPS);
    ck_assert_int_eq(dc_store_publish(store, snaps[i], snap_len[i], "api", "", 0), DC_OK);
}

/* The syncer a test runs, stopped by the teardown when the test failed before stopping it
 * (its thread must not outlive the store). */
static dc_syncer *running;

static void setup(void)
{
    region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(region, MAP_FAILED);
    char err[256] = "";
    ck_assert_msg(dc_store_attach(region, REGION, 1, &store, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_events_new(dc_store_event_counters(store), &events), DC_OK);
    encode_all();
}

static void teardown(void)
{
    if (running) {
        dc_syncer_stop(running);
        running = NULL;
    }
    for (int i = 0; i < NSNAPS; i++)
        free(snaps[i]);
    dc_events_free(events);
    dc_store_detach(store);
    munmap(region, REGION);
}

static dc_syncer *start(dc_engine *e, dc_poller *shared)
{
    char err[256] = "";
    dc_syncer *y = NULL;
    ck_assert_msg(dc_syncer_start(e, store, shared, &y, err, sizeof err) == DC_OK, "%s", err);
    running = y;
    return y;
}

static void stop(dc_syncer *y)
{
    dc_syncer_stop(y);
    if (y == running)
        running = NULL;
}

static dc_engine *engine(void)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.seed = 42;
    cfg.events = events;
    cfg.store = store;
    dc_engine *e = NULL;
    char err[256] = "";
    ck_assert_msg(dc_engine_new(&cfg, &e, err, sizeof err) == DC_OK, "engine: %s", err);
    return e;
}

static const char *auth(dc_engine *e, char *out, size_t outlen)
{
    dc_sim *s = tu_request(e, "a.com", "/");
    const char *h = dc_sim_header(s, "X-Auth");
    snprintf(out, outlen, "%s", h ? h : "(none)");
    dc_sim_free(s);
    return out;
}

/* Calls dc_engine_sync between "requests" until it returns something other than 0. */
static int sync_until_change(dc_engine *e)
{
    for (int i = 0; i < WAIT_ROUNDS; i++) {
        int r = dc_engine_sync(e, store);
        if (r != 0)
            return r;
        usleep(WAIT_US);
    }
    return 0;
}

START_TEST(prepared_off_thread_then_swapped)
{
    char buf[64];
    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1); /* the first one, on this thread */
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v1");

    dc_syncer *y = NULL;
    char err[256] = "";
    y = start(e, NULL);
    /* a second syncer on the same engine is refused */
    dc_syncer *y2 = NULL;
    ck_assert_int_eq(dc_syncer_start(e, store, NULL, &y2, err, sizeof err), DC_EBUSY);
    ck_assert_ptr_null(y2);
    ck_assert_int_eq(dc_engine_sync(e, store), 0); /* nothing new */

    publish("v2");
    ck_assert_int_eq(sync_until_change(e), 1);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v2");
    ck_assert_uint_eq(e->synced, dc_store_generation(store));

    /* several generations published before the request thread looks: it lands on the last */
    publish("v3");
    publish("v4");
    int r = sync_until_change(e);
    ck_assert_int_eq(r, 1);
    /* v3 may have been taken on its own before v4 came: then v4 follows */
    if (strcmp(auth(e, buf, sizeof buf), "v4") != 0) {
        ck_assert_str_eq(buf, "v3");
        ck_assert_int_eq(sync_until_change(e), 1);
    }
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v4");

    stop(y);
    /* stopped: the engine reads the store itself again, at once */
    publish("v5");
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v5");
    dc_engine_free(e);
}
END_TEST

START_TEST(refused_snapshot_reported_once_plugins_stay)
{
    char buf[64];
    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    dc_syncer *y = NULL;
    y = start(e, NULL);

    /* bytes that pass the store's checksum but are no snapshot */
    static const unsigned char junk[] = "this is not a snapshot";
    ck_assert_int_eq(dc_store_publish(store, junk, sizeof junk, "api", "", 0), DC_OK);
    uint64_t errors = dc_events_count(events, DC_EV_ON_ERROR);
    ck_assert_int_eq(sync_until_change(e), -1);
    ck_assert_uint_eq(dc_events_count(events, DC_EV_ON_ERROR), errors + 1);
    char msg[256];
    ck_assert_int_ne(dc_engine_last_error(e, msg, sizeof msg), DC_OK);
    ck_assert_msg(strstr(msg, "refused") != NULL, "last error: %s", msg);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v1");
    /* not read again */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(dc_engine_sync(e, store), 0);
        usleep(WAIT_US);
    }
    ck_assert_uint_eq(dc_events_count(events, DC_EV_ON_ERROR), errors + 1);

    /* the next good one goes through */
    publish("v2");
    ck_assert_int_eq(sync_until_change(e), 1);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v2");
    stop(y);
    dc_engine_free(e);
}
END_TEST

START_TEST(pinned_generation_freed_by_the_syncer)
{
    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    dc_bundle *b1 = dc_bundle_ref(dc_engine_bundle(e)); /* to watch it go */
    dc_syncer *y = NULL;
    y = start(e, NULL);

    dc_request *r = NULL;
    ck_assert_int_eq(dc_request_begin(e, NULL, "a.com", 5, &r), DC_OK);
    publish("v2");
    ck_assert_int_eq(sync_until_change(e), 1);
    ck_assert_ptr_ne(dc_engine_bundle(e), b1);
    /* the request still holds v1's generation */
    ck_assert_uint_gt(atomic_load(&b1->refs), 1);
    dc_request_end(r); /* its last reference: queued, not freed here */
    int freed = 0;
    for (int i = 0; i < WAIT_ROUNDS && !freed; i++) {
        freed = atomic_load(&b1->refs) == 1;
        if (!freed)
            usleep(WAIT_US);
    }
    ck_assert_msg(freed, "the replaced generation was never freed");
    dc_bundle_unref(b1);
    stop(y);
    dc_engine_free(e);
}
END_TEST

START_TEST(stop_with_a_generation_pending)
{
    char buf[64];
    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    dc_syncer *y = NULL;
    y = start(e, NULL);
    publish("v2");
    /* wait until it is prepared, without taking it */
    for (int i = 0; i < WAIT_ROUNDS && !atomic_load(&e->pending); i++)
        usleep(WAIT_US);
    ck_assert_ptr_nonnull(atomic_load(&e->pending));
    stop(y); /* drops it; the store is read again on this thread */
    ck_assert_ptr_null(atomic_load(&e->pending));
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v2");
    /* and freeing the engine with a syncer's leftovers queued frees them (valgrind) */
    y = start(e, NULL);
    publish("v3");
    for (int i = 0; i < WAIT_ROUNDS && !atomic_load(&e->pending); i++)
        usleep(WAIT_US);
    stop(y);
    dc_engine_free(e);
}
END_TEST

static void sum_runs(void *ud, const dc_plugin_stats *st)
{
    *(uint64_t *)ud += st->runs;
}

/* The store's count of calls of every plugin together. */
static uint64_t store_runs(void)
{
    uint32_t n = 0;
    uint64_t runs = 0;
    dc_store_metrics_at(store, 0, &n);
    for (uint32_t i = 0; i < n; i++)
        runs += __atomic_load_n(&dc_store_metrics_at(store, i, NULL)->runs, __ATOMIC_RELAXED);
    return runs;
}

/* With a syncer, the calls a request thread makes are counted in-process and the syncer adds
 * them to the store: every call is there, once, while it runs and after it stops; the stats
 * of this process count its latest calls at once. */
START_TEST(call_counts_folded_by_the_syncer)
{
    char buf[64];
    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    dc_syncer *y = start(e, NULL);
    for (int i = 0; i < 25; i++)
        ck_assert_str_eq(auth(e, buf, sizeof buf), "v1");
    uint64_t runs = 0;
    dc_engine_plugin_stats(e, sum_runs, &runs);
    ck_assert_uint_eq(runs, 25);
    for (int i = 0; i < 25; i++)
        auth(e, buf, sizeof buf);
    int seen = 0;
    for (int i = 0; i < WAIT_ROUNDS && !seen; i++) {
        seen = store_runs() == 50;
        if (!seen)
            usleep(WAIT_US);
    }
    ck_assert_msg(seen, "the syncer did not add the calls to the store: %llu",
                  (unsigned long long)store_runs());
    for (int i = 0; i < 7; i++)
        auth(e, buf, sizeof buf);
    stop(y); /* adds what is left */
    ck_assert_uint_eq(store_runs(), 57);
    auth(e, buf, sizeof buf); /* without a syncer: straight to the store */
    ck_assert_uint_eq(store_runs(), 58);
    runs = 0;
    dc_engine_plugin_stats(e, sum_runs, &runs);
    ck_assert_uint_eq(runs, 58);
    dc_engine_free(e);
}
END_TEST

/* In the worker whose poller published the generation, the engine runs the poller's bundle
 * itself rather than a decoded second copy; detached, it decodes its own. */
START_TEST(poller_bundle_shared_not_copied)
{
    char dir[] = "/tmp/dc-syncer-XXXXXX", path[300], url[320];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bundle.json", dir);
    snprintf(url, sizeof url, "file://%s", path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\",\"plugins\":["
          "{\"name\":\"auth\",\"phase\":\"access\",\"code\":\"ngx.header['X-Auth'] = 'p1'\"}]}]}",
          f);
    fclose(f);
    dc_poller_config cfg;
    dc_poller_config_default(&cfg);
    cfg.fetch.url = url;
    cfg.store = store;
    cfg.events = events;
    dc_poller *pl = NULL;
    char err[256] = "";
    ck_assert_msg(dc_poller_new(&cfg, &pl, err, sizeof err) == DC_OK, "%s", err);

    publish("v1");
    dc_engine *e = engine();
    ck_assert_int_eq(dc_engine_sync(e, store), 1);
    /* the poller publishes first: its poll forks the compiler helper, never beside the
     * syncer's thread */
    ck_assert_int_eq(dc_poller_poll(pl), DC_OK);
    dc_syncer *y = NULL;
    y = start(e, pl);
    ck_assert_int_eq(sync_until_change(e), 1);
    char buf[64];
    ck_assert_str_eq(auth(e, buf, sizeof buf), "p1");
    ck_assert_ptr_eq(dc_engine_bundle(e), dc_poller_bundle(pl)); /* one copy */

    /* detached: a generation is decoded from the store */
    dc_syncer_share(y, NULL);
    publish("v2");
    ck_assert_int_eq(sync_until_change(e), 1);
    ck_assert_str_eq(auth(e, buf, sizeof buf), "v2");
    ck_assert_ptr_ne(dc_engine_bundle(e), dc_poller_bundle(pl));
    stop(y);
    dc_poller_free(pl);
    dc_engine_free(e);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("syncer");
    TCase *tc = tcase_create("syncer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, prepared_off_thread_then_swapped);
    tcase_add_test(tc, refused_snapshot_reported_once_plugins_stay);
    tcase_add_test(tc, pinned_generation_freed_by_the_syncer);
    tcase_add_test(tc, stop_with_a_generation_pending);
    tcase_add_test(tc, poller_bundle_shared_not_copied);
    tcase_add_test(tc, call_counts_folded_by_the_syncer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
