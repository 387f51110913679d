/* test_poller.c - the poller over a shared store: a poll publishes a snapshot that an
 * engine picks up; the lease keeps a second poller idle; when the lease moves, the new holder
 * starts from the store's bundle (an unchanged bundle is not published again, a refused plugin
 * keeps its previous version); offline file loading. Bundles are file:// URLs (same fetcher).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define REGION (1u << 20)

static char dir[] = "/tmp/dc-poller-XXXXXX";
static char bundle_path[256], url[300];
static void *region;
static dc_store *store;
static dc_events *events;

static void write_bundle(const char *auth_code)
{
    FILE *f = fopen(bundle_path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"general\":{\"status\":\"enabled\"},\"domains\":[{\"name\":\"*\",\"plugins\":["
               "{\"name\":\"auth\",\"phase\":\"access\",\"code\":\"%s\"}]}]}", auth_code);
    fclose(f);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(bundle_path, sizeof bundle_path, "%s/bundle.json", dir);
    snprintf(url, sizeof url, "file://%s", bundle_path);
    region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(region, MAP_FAILED);
    char err[256] = "";
    ck_assert_msg(dc_store_attach(region, REGION, 1, &store, err, sizeof err) == DC_OK, "%s", err);
    ck_assert_int_eq(dc_events_new(dc_store_event_counters(store), &events), DC_OK);
}

static void teardown(void)
{
    dc_events_free(events);
    dc_store_detach(store);
    munmap(region, REGION);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    strcpy(dir, "/tmp/dc-poller-XXXXXX");
}

static dc_poller *poller(int32_t pid, const char *offline)
{
    dc_poller_config cfg;
    dc_poller_config_default(&cfg);
    cfg.fetch.url = url;
    cfg.store = store;
    cfg.events = events;
    cfg.pid = pid;
    cfg.interval_s = 1;
    cfg.offline_file = offline;
    dc_poller *p = NULL;
    char err[256] = "";
    ck_assert_msg(dc_poller_new(&cfg, &p, err, sizeof err) == DC_OK, "%s", err);
    return p;
}

static uint64_t count(dc_event ev)
{
    return dc_events_count(events, ev);
}

/* The X-Auth header a request gets from an engine following the store. */
static const char *auth_header(dc_engine *e, char *out, size_t outlen)
{
    dc_engine_sync(e, store);
    dc_sim *s = tu_request(e, "a.com", "/");
    const char *h = dc_sim_header(s, "X-Auth");
    snprintf(out, outlen, "%s", h ? h : "(none)");
    dc_sim_free(s);
    return out;
}

START_TEST(publish_lease_and_handover)
{
    char buf[64];
    write_bundle("ngx.header['X-Auth'] = 'v1'");
    dc_poller *a = poller((int32_t)getpid(), NULL);
    dc_poller *b = poller((int32_t)getppid(), NULL); /* another live process id */
    dc_engine *e = tu_engine(NULL);

    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_uint_eq(dc_store_generation(store), 1);
    ck_assert_uint_eq(count(DC_EV_BG_UPDATED_PLUGINS), 1);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v1");

    /* a holds the lease: b does not even fetch */
    ck_assert_int_eq(dc_poller_poll(b), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_FETCH_API_SUCCESS), 1);

    /* the lease moves to b: it starts from the store's bundle, so the same bundle is not
     * published again */
    dc_store_lease_release(store, (int32_t)getpid());
    ck_assert_int_eq(dc_poller_poll(b), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_FETCH_API_SUCCESS), 2);
    ck_assert_uint_eq(count(DC_EV_BG_DIDNT_UPDATE_PLUGINS), 1);
    ck_assert_uint_eq(dc_store_generation(store), 1);

    /* a broken update: the previous version of "auth" stays in force, across the handover */
    write_bundle("if then");
    ck_assert_int_eq(dc_poller_poll(b), DC_OK);
    ck_assert_uint_eq(dc_store_generation(store), 2);
    ck_assert_uint_eq(count(DC_EV_BG_COMPILE_ERROR), 1);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v1");

    /* a fixed update goes through */
    write_bundle("ngx.header['X-Auth'] = 'v2'");
    ck_assert_int_eq(dc_poller_poll(b), DC_OK);
    ck_assert_uint_eq(dc_store_generation(store), 3);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v2");

    dc_engine_free(e);
    dc_poller_free(a);
    dc_poller_free(b);
}
END_TEST

START_TEST(refused_bundle_keeps_the_last_good_one)
{
    char buf[64];
    write_bundle("ngx.header['X-Auth'] = 'v1'");
    dc_poller *a = poller((int32_t)getpid(), NULL);
    dc_engine *e = tu_engine(NULL);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    FILE *f = fopen(bundle_path, "w");
    fputs("{\"domains\": []}", f); /* no general: refused whole */
    fclose(f);
    dc_poller_poll(a);
    ck_assert_uint_eq(count(DC_EV_BG_DIDNT_UPDATE_PLUGINS), 1);
    ck_assert_uint_eq(dc_store_generation(store), 1);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v1");
    dc_store_info info;
    dc_store_info_get(store, &info);
    ck_assert_msg(strstr(info.last_error, "general") != NULL, "last error: %s", info.last_error);
    dc_engine_free(e);
    dc_poller_free(a);
}
END_TEST

/* The messages of bg_didnt_update_plugins, in order ("|"-separated). */
static char didnt[4096];

static void on_didnt(void *ud, const dc_event_info *i)
{
    (void)ud;
    size_t n = strlen(didnt);
    snprintf(didnt + n, sizeof didnt - n, "%s|", i->message ? i->message : "");
}

static void write_text(const char *text)
{
    FILE *f = fopen(bundle_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(refused_bundle_is_not_parsed_again_and_last_error_clears)
{
    char buf[64];
    didnt[0] = '\0';
    dc_events_subscribe(events, 1ull << DC_EV_BG_DIDNT_UPDATE_PLUGINS, on_didnt, NULL);
    write_bundle("ngx.header['X-Auth'] = 'v1'");
    dc_poller *a = poller((int32_t)getpid(), NULL);
    dc_engine *e = tu_engine(NULL);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);

    /* a file has no validators: the refused bytes are known by their hash */
    write_text("{\"domains\": []}");
    ck_assert_int_ne(dc_poller_poll(a), DC_OK);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_msg(strncmp(didnt, "bundle refused (", 16) == 0, "%s", didnt);
    const char *again = strchr(didnt, '|') + 1;
    ck_assert_str_eq(again, "the refused bundle did not change: the last good bundle stays|"
                            "the refused bundle did not change: the last good bundle stays|");
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v1");
    dc_store_info info;
    dc_store_info_get(store, &info); /* still refused: still the current problem */
    ck_assert_msg(strstr(info.last_error, "bundle refused") != NULL, "%s", info.last_error);
    ck_assert(info.last_error_at > 0);
    double refused_at = info.last_error_at;

    /* a poll that fails in between, then the same refused bundle: the refusal is the last
     * error again, with its own time */
    char away[300];
    snprintf(away, sizeof away, "%s.away", bundle_path);
    ck_assert_int_eq(rename(bundle_path, away), 0);
    dc_poller_poll(a);
    dc_store_info_get(store, &info);
    ck_assert_msg(strstr(info.last_error, "cannot read") != NULL, "%s", info.last_error);
    ck_assert_int_eq(rename(away, bundle_path), 0);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    dc_store_info_get(store, &info);
    ck_assert_msg(strncmp(info.last_error, "bundle refused", 14) == 0, "%s", info.last_error);
    ck_assert(info.last_error_at == refused_at);

    /* the last good bundle again: nothing to refuse, nothing wrong now */
    write_bundle("ngx.header['X-Auth'] = 'v1'");
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    dc_store_info_get(store, &info);
    ck_assert_str_eq(info.last_error, "");
    ck_assert(info.last_error_at == 0);

    /* refused again, then a poll that fails, then a new good bundle */
    write_text("not json");
    dc_poller_poll(a);
    char missing[300];
    snprintf(missing, sizeof missing, "%s.gone", bundle_path);
    ck_assert_int_eq(rename(bundle_path, missing), 0);
    dc_poller_poll(a);
    dc_store_info_get(store, &info);
    ck_assert_msg(strstr(info.last_error, "cannot read") != NULL, "%s", info.last_error);
    write_bundle("ngx.header['X-Auth'] = 'v2'");
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "v2");
    dc_store_info_get(store, &info);
    ck_assert_str_eq(info.last_error, "");
    dc_engine_free(e);
    dc_poller_free(a);
}
END_TEST

/* The schedule: a phase within the jitter chosen once, then every interval exactly. */
START_TEST(schedule_is_a_phase_then_every_interval)
{
    ck_assert(dc_poll_phase(5, 0) == 0);
    ck_assert(dc_poll_phase(5, 0.5) == 2.5);
    ck_assert(dc_poll_phase(0, 0.7) == 0);
    ck_assert(dc_poll_phase(5, 0.9999999) < 5);
    const double us[] = {0, 0.25, 0.5, 0.84, 0.9999999};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        double phase = dc_poll_phase(5, us[i]);
        ck_assert(phase >= 0 && phase < 5);
        /* the first scheduled poll: at most interval + jitter after the start */
        double t = dc_poll_next(15, phase, 0);
        ck_assert_msg(t >= 15 && t < 20, "first poll at %f", t);
        /* then phase + k * interval, whatever each poll took (fetches of 0 to 14 s) */
        for (int k = 1; k <= 20; k++) {
            ck_assert_msg(fabs(t - (phase + k * 15.0)) < 1e-9, "poll %d at %f (phase %f)", k, t,
                          phase);
            double took = (k * 7) % 15;
            double next = dc_poll_next(15, phase, t + took);
            ck_assert_msg(next - t <= 15 + 1e-9, "gap %f", next - t);
            t = next;
        }
    }
    /* a poll that ran past the next slot: that slot is skipped, the cadence kept */
    ck_assert(fabs(dc_poll_next(15, 2, 17 + 20) - 47) < 1e-9);
    /* woken at its slot exactly: the next one */
    ck_assert(fabs(dc_poll_next(15, 2, 17) - 32) < 1e-9);
    ck_assert(fabs(dc_poll_next(15, 2, 16.99) - 17) < 1e-9);
}
END_TEST

START_TEST(offline_file_written_then_loaded_when_the_api_is_gone)
{
    char offline[300], buf[64];
    snprintf(offline, sizeof offline, "%s/offline.json", dir);
    write_bundle("ngx.header['X-Auth'] = 'offline'");
    dc_poller *a = poller((int32_t)getpid(), offline);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_int_eq(access(offline, R_OK), 0);
    dc_poller_free(a);

    /* a new start on a fresh store, the API (file) gone */
    dc_store_detach(store);
    dc_events_free(events);
    memset(region, 0, REGION);
    char err[256];
    ck_assert_int_eq(dc_store_attach(region, REGION, 1, &store, err, sizeof err), DC_OK);
    ck_assert_int_eq(dc_events_new(dc_store_event_counters(store), &events), DC_OK);
    unlink(bundle_path);
    a = poller((int32_t)getpid(), offline);
    dc_poller_poll(a);
    ck_assert_uint_eq(count(DC_EV_BG_FETCH_API_GENERIC_ERROR), 1);
    ck_assert_int_eq(dc_poller_load_offline(a), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_OFFLINE_LOADED), 1);
    dc_engine *e = tu_engine(NULL);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "offline");
    dc_store_info info;
    dc_store_info_get(store, &info);
    ck_assert_str_eq(info.source, "offline");
    dc_engine_free(e);
    dc_poller_free(a);
}
END_TEST

/* An offline file that could not be written (here a directory stands in its way) is written
 * at a later poll, though the bundle did not change meanwhile. */
START_TEST(offline_file_written_again_after_a_failed_write)
{
    char offline[300], buf[4096];
    snprintf(offline, sizeof offline, "%s/offline.json", dir);
    ck_assert_int_eq(mkdir(offline, 0755), 0);
    write_bundle("ngx.header['X-Auth'] = 'kept'");
    dc_poller *a = poller((int32_t)getpid(), offline);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK); /* in force; only the copy on disk failed */
    ck_assert_uint_eq(count(DC_EV_BG_UPDATED_PLUGINS), 1);
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), 1);
    dc_store_info info;
    dc_store_info_get(store, &info);
    ck_assert_msg(strstr(info.last_error, "offline.json") != NULL, "last error: %s",
                  info.last_error);

    /* still in the way: tried again, and said again */
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), 2);

    ck_assert_int_eq(rmdir(offline), 0);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_UPDATED_PLUGINS), 1); /* the same bundle */
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), 2);
    FILE *f = fopen(offline, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "'kept'"));
    dc_store_info_get(store, &info);
    ck_assert_str_eq(info.last_error, ""); /* nothing wrong any more */

    /* written: the next unchanged poll leaves it be */
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), 2);
    dc_poller_free(a);
}
END_TEST

/* A first start of several processes on one store: the lease holder loads the offline file,
 * the others wait for its publication; one that finds nobody publishing gives up with EBUSY. */
START_TEST(offline_start_loads_once_and_the_others_wait)
{
    char offline[300], buf[64];
    snprintf(offline, sizeof offline, "%s/offline.json", dir);
    write_bundle("ngx.header['X-Auth'] = 'offline'");
    dc_poller *w = poller(7001, offline);
    ck_assert_int_eq(dc_poller_poll(w), DC_OK); /* writes the offline file */
    dc_poller_free(w);
    dc_store_detach(store);
    dc_events_free(events);
    memset(region, 0, REGION);
    char err[256];
    ck_assert_int_eq(dc_store_attach(region, REGION, 1, &store, err, sizeof err), DC_OK);
    ck_assert_int_eq(dc_events_new(dc_store_event_counters(store), &events), DC_OK);
    unlink(bundle_path);

    /* another (live) process holds the lease and publishes nothing: the wait ends, EBUSY */
    int32_t other = (int32_t)getppid();
    ck_assert(dc_store_lease(store, other, 60000));
    dc_poller *b = poller(7003, offline);
    ck_assert_int_eq(dc_poller_start_offline(b, 30), DC_EBUSY);
    ck_assert_uint_eq(dc_store_generation(store), 0);
    dc_store_lease_release(store, other);

    /* the first to take the lease loads the file; the next finds it in force at once */
    dc_poller *a = poller((int32_t)getpid(), offline);
    ck_assert_int_eq(dc_poller_start_offline(a, 30), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_OFFLINE_LOADED), 1);
    ck_assert_uint_ne(dc_store_generation(store), 0);
    ck_assert_int_eq(dc_poller_start_offline(b, 30), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_OFFLINE_LOADED), 1);
    dc_engine *e = tu_engine(NULL);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "offline");
    dc_engine_free(e);
    dc_poller_free(a);
    dc_poller_free(b);
}
END_TEST

START_TEST(corrupt_offline_file_is_refused_with_a_message)
{
    char offline[300];
    snprintf(offline, sizeof offline, "%s/offline.json", dir);
    FILE *f = fopen(offline, "w");
    fputs("{\"general\": tru", f);
    fclose(f);
    dc_poller *a = poller((int32_t)getpid(), offline);
    ck_assert_int_ne(dc_poller_load_offline(a), DC_OK);
    ck_assert_uint_eq(count(DC_EV_BG_OFFLINE_LOADED), 0);
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), 1);
    ck_assert_uint_eq(dc_store_generation(store), 0);
    dc_poller_free(a);
}
END_TEST

/* A corrupted shared snapshot is ignored; the worker keeps its plugins, on_error. */
START_TEST(corrupted_snapshot_keeps_the_plugins_in_force)
{
    char buf[64];
    write_bundle("ngx.header['X-Auth'] = 'good'");
    dc_poller *a = poller((int32_t)getpid(), NULL);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.events = events;
    dc_engine *e = NULL;
    ck_assert_int_eq(dc_engine_new(&cfg, &e, NULL, 0), DC_OK);
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "good");

    write_bundle("ngx.header['X-Auth'] = 'MARKER-next'");
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_uint_eq(dc_store_generation(store), 2);
    /* flip a byte of the new snapshot where it lies in the shared region */
    char *hit = memmem(region, REGION, "MARKER-next", 11);
    ck_assert_ptr_nonnull(hit);
    hit[0] ^= 0x20;
    uint64_t errors = count(DC_EV_ON_ERROR);
    ck_assert_int_eq(dc_engine_sync(e, store), -1);
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), errors + 1);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "good"); /* kept, and not retried */
    ck_assert_uint_eq(count(DC_EV_ON_ERROR), errors + 1);

    /* the next good publication is taken */
    write_bundle("ngx.header['X-Auth'] = 'fixed'");
    ck_assert_int_eq(dc_poller_poll(a), DC_OK);
    ck_assert_str_eq(auth_header(e, buf, sizeof buf), "fixed");
    dc_engine_free(e);
    dc_poller_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("poller");
    TCase *tc = tcase_create("poller");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, publish_lease_and_handover);
    tcase_add_test(tc, refused_bundle_keeps_the_last_good_one);
    tcase_add_test(tc, refused_bundle_is_not_parsed_again_and_last_error_clears);
    tcase_add_test(tc, schedule_is_a_phase_then_every_interval);
    tcase_add_test(tc, offline_file_written_then_loaded_when_the_api_is_gone);
    tcase_add_test(tc, offline_file_written_again_after_a_failed_write);
    tcase_add_test(tc, offline_start_loads_once_and_the_others_wait);
    tcase_add_test(tc, corrupt_offline_file_is_refused_with_a_message);
    tcase_add_test(tc, corrupted_snapshot_keeps_the_plugins_in_force);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
