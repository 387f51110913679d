/* test_store.c - the shared store on anonymous shared mappings across fork(): publish and read,
 * generations, limits, a stress (1,000 snapshots, 4 reader processes, zero torn reads),
 * the poller lease with crashed, zombie and live holders, re-attach (also at another address),
 * corruption of the region, and event counters, quarantine and metrics shared by processes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "store.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* In a forked child: die with the test process, whatever happens to it. */
static void child_init(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void *region_new(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    return p;
}

static dc_store *attach(void *region, size_t size, int init)
{
    dc_store *s = NULL;
    char err[256] = "";
    dc_rc rc = dc_store_attach(region, size, init, &s, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "attach: %s", err);
    return s;
}

static const dc_store_hdr *hdr(const void *region)
{
    return region;
}

/* Reads the snapshot in force; the test fails unless that is DC_OK. Free *snap. */
static uint64_t must_read(dc_store *s, unsigned char **snap, size_t *len)
{
    uint64_t gen = 0;
    char err[256] = "";
    dc_rc rc = dc_store_read(s, &gen, snap, len, err, sizeof err);
    ck_assert_msg(rc == DC_OK, "read: %s", err);
    return gen;
}

/* Waits for pid to end within ms; kills it and fails the test otherwise. Returns its status. */
static int reap(pid_t pid, unsigned ms)
{
    double end = now_ms() + ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        ck_assert_int_eq(r, 0);
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("process %d did not end in time", (int)pid);
        }
        sleep_ms(2);
    }
}

/* ---- publish and read ---- */

START_TEST(publish_read_round_trip)
{
    size_t size = MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    unsigned char *snap = (unsigned char *)&s;
    size_t len = 99;
    uint64_t gen = 99;
    ck_assert_int_eq(dc_store_read(s, &gen, &snap, &len, NULL, 0), DC_OK); /* nothing yet */
    ck_assert_ptr_null(snap);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(gen, 0);
    ck_assert_uint_eq(dc_store_generation(s), 0);
    dc_store_info info;
    dc_store_info_get(s, &info);
    ck_assert_uint_eq(info.generation, 0);
    ck_assert_str_eq(info.source, "");

    const char *msg = "first snapshot bytes";
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)msg, strlen(msg), "api",
                                      "\"etag-1\"", 1700000000.5),
                     DC_OK);
    ck_assert_uint_eq(dc_store_generation(s), 1);
    ck_assert_uint_eq(must_read(s, &snap, &len), 1);
    ck_assert_uint_eq(len, strlen(msg));
    ck_assert_int_eq(memcmp(snap, msg, len), 0);
    free(snap);
    dc_store_info_get(s, &info);
    ck_assert_uint_eq(info.generation, 1);
    ck_assert_str_eq(info.source, "api");
    ck_assert_str_eq(info.etag, "\"etag-1\"");
    ck_assert(info.fetched_at == 1700000000.5);
    ck_assert_uint_eq(info.snapshot_bytes, strlen(msg));
    ck_assert_str_eq(info.last_error, "");

    dc_store_set_error(s, "fetch: connection refused", 1700000001.0);
    dc_store_info_get(s, &info);
    ck_assert_str_eq(info.last_error, "fetch: connection refused");
    ck_assert(info.last_error_at == 1700000001.0);
    ck_assert_str_eq(info.etag, "\"etag-1\""); /* the rest untouched */
    /* strings too long for their field are cut, never overrun */
    char longer[600];
    memset(longer, 'e', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)"x", 1, "offline-and-more",
                                      longer, 0), DC_OK);
    dc_store_set_error(s, longer, 2);
    dc_store_info_get(s, &info);
    ck_assert_str_eq(info.source, "offline-and-mor");
    ck_assert_uint_eq(strlen(info.etag), sizeof info.etag - 1);
    ck_assert_uint_eq(strlen(info.last_error), sizeof info.last_error - 1);
    dc_store_set_error(s, NULL, 3);
    dc_store_info_get(s, &info);
    ck_assert_str_eq(info.last_error, "");
    ck_assert_int_eq(dc_store_publish(s, NULL, 1, "api", "", 0), DC_EINVAL);
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)"x", 0, "api", "", 0), DC_EINVAL);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

START_TEST(generation_increments_and_limit)
{
    size_t size = 256 * 1024;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    uint64_t cap = hdr(r)->slot_cap;
    ck_assert_uint_ge(cap, (size - sizeof(dc_store_hdr)) / 2 - 64 * 1024);
    unsigned char *big = malloc(cap + 1);
    ck_assert_ptr_nonnull(big);
    for (uint64_t g = 1; g <= 5; g++) {
        memset(big, (int)g, cap);
        ck_assert_int_eq(dc_store_publish(s, big, (size_t)(cap - g), "api", "", 0), DC_OK);
        ck_assert_uint_eq(dc_store_generation(s), g);
        unsigned char *snap;
        size_t len;
        ck_assert_uint_eq(must_read(s, &snap, &len), g);
        ck_assert_uint_eq(len, cap - g);
        ck_assert_int_eq(snap[0], (int)g);
        ck_assert_int_eq(snap[len - 1], (int)g);
        free(snap);
    }
    /* one byte over a slot: refused, the snapshot in force stays */
    ck_assert_int_eq(dc_store_publish(s, big, (size_t)cap + 1, "api", "", 0), DC_ELIMIT);
    ck_assert_uint_eq(dc_store_generation(s), 5);
    unsigned char *snap;
    size_t len;
    ck_assert_uint_eq(must_read(s, &snap, &len), 5);
    ck_assert_uint_eq(len, cap - 5);
    free(snap);
    /* exactly a slot fits */
    ck_assert_int_eq(dc_store_publish(s, big, (size_t)cap, "api", "", 0), DC_OK);
    ck_assert_uint_eq(dc_store_generation(s), 6);
    free(big);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* The size a snapshot needs: a store of that size takes it, a smaller one does not. */
START_TEST(region_for_a_snapshot)
{
    const size_t lens[] = {1, 100000, 417025, 2170262, 9 * 1024 * 1024};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t need = dc_store_region_for(lens[i]);
        ck_assert_uint_ge(need, DC_STORE_MIN_SIZE);
        void *r = region_new(need);
        dc_store *s = attach(r, need, 1);
        ck_assert_uint_ge(dc_store_snapshot_room(s), lens[i]);
        dc_store_detach(s);
        munmap(r, need);
        if (need - DC_STORE_ALIGN < DC_STORE_MIN_SIZE)
            continue;
        r = region_new(need);
        s = attach(r, need - DC_STORE_ALIGN, 1);
        ck_assert_uint_lt(dc_store_snapshot_room(s), lens[i]);
        dc_store_detach(s);
        munmap(r, need);
    }
    ck_assert_uint_eq(dc_store_snapshot_room(NULL), 0);
}
END_TEST

START_TEST(snapshot_through_store)
{
    size_t size = MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    dc_bundle *b = tu_bundle("{\"general\": {\"status\": \"enabled\"}, \"domains\": ["
                             "{\"name\": \"*\", \"plugins\": [{\"name\": \"hi\", \"phase\": "
                             "\"content\", \"code\": \"ngx.say('hi')\"}]}]}");
    unsigned char *snap, *back;
    size_t len, blen;
    ck_assert_int_eq(dc_snapshot_encode(b, &snap, &len), DC_OK);
    ck_assert_int_eq(dc_store_publish(s, snap, len, "api", "", 0), DC_OK);
    must_read(s, &back, &blen);
    ck_assert_uint_eq(blen, len);
    dc_bundle *d = NULL;
    ck_assert_int_eq(dc_snapshot_decode(back, blen, &d, NULL, 0), DC_OK);
    ck_assert_str_eq(d->plugins[0].name, "hi");
    dc_engine *e = tu_engine(d);
    dc_sim *sim = tu_request(e, "any.host", "/");
    ck_assert_str_eq(dc_sim_body(sim, NULL), "hi\n");
    dc_sim_free(sim);
    dc_engine_free(e);
    dc_bundle_unref(d);
    dc_bundle_unref(b);
    free(snap);
    free(back);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* ---- stress: 1,000 snapshots, 4 readers, zero torn reads ---- */

#define STRESS_GENS 1000
#define STRESS_READERS 4
#define STRESS_PAD 32768 /* a large second plugin, so that copies take a while */

typedef struct stress_stats {
    int done;
    uint64_t reads[STRESS_READERS];
    uint64_t gens_seen[STRESS_READERS];
    uint64_t torn[STRESS_READERS];
    uint64_t backwards[STRESS_READERS];
    char why[STRESS_READERS][160];
} stress_stats;

static unsigned char pad_byte(uint64_t gen)
{
    return (unsigned char)(gen * 131u + 7u);
}

/* 0 when snap is exactly what the writer published as generation gen. */
static int verify(const unsigned char *snap, size_t len, uint64_t gen, char *why, size_t whylen)
{
    dc_bundle *b = NULL;
    char err[256] = "", want[32];
    if (dc_snapshot_decode(snap, len, &b, err, sizeof err) != DC_OK) {
        snprintf(why, whylen, "gen %llu: %s", (unsigned long long)gen, err);
        return -1;
    }
    snprintf(want, sizeof want, "gen-%llu", (unsigned long long)gen);
    int bad = b->nplugins != 2 || strcmp(b->plugins[0].name, want) != 0 ||
              b->plugins[1].bclen != STRESS_PAD;
    for (size_t i = 0; !bad && i < STRESS_PAD; i++)
        bad = b->plugins[1].bc[i] != pad_byte(gen);
    if (bad)
        snprintf(why, whylen, "gen %llu: content of another generation (%s)",
                 (unsigned long long)gen, b->nplugins ? b->plugins[0].name : "-");
    dc_bundle_unref(b);
    return bad ? -1 : 0;
}

static void reader(dc_store *s, stress_stats *st, int id)
{
    uint64_t last = 0;
    double end = now_ms() + 120000; /* bounded even should the writer fail */
    for (;;) {
        int done = __atomic_load_n(&st->done, __ATOMIC_ACQUIRE) || now_ms() > end;
        unsigned char *snap = NULL;
        size_t len = 0;
        uint64_t gen = 0;
        char err[256] = "";
        dc_rc rc = dc_store_read(s, &gen, &snap, &len, err, sizeof err);
        st->reads[id]++;
        if (rc != DC_OK) {
            st->torn[id]++;
            snprintf(st->why[id], sizeof st->why[id], "read: %.150s", err);
        } else if (gen != 0) {
            if (verify(snap, len, gen, st->why[id], sizeof st->why[id]) != 0)
                st->torn[id]++;
            if (gen < last)
                st->backwards[id]++;
            if (gen != last)
                st->gens_seen[id]++;
            last = gen;
        }
        free(snap);
        if (done)
            break;
    }
}

START_TEST(stress_no_torn_reads)
{
    size_t size = 4 * MIB;
    void *r = region_new(size);
    stress_stats *st = region_new(sizeof *st);
    memset(st, 0, sizeof *st);
    dc_store *s = attach(r, size, 1);
    /* one bundle whose first plugin's name and second plugin's bytes say the generation */
    dc_bundle *b = tu_bundle("{\"general\": {}, \"domains\": [{\"name\": \"*\", \"plugins\": ["
                             "{\"name\": \"g\", \"phase\": \"log\", \"code\": \"local a = 1\"},"
                             "{\"name\": \"pad\", \"phase\": \"log\", \"code\": \"local b = 2\"}"
                             "]}]}");
    ck_assert_uint_eq(b->nplugins, 2);
    free(b->plugins[1].bc);
    b->plugins[1].bc = malloc(STRESS_PAD);
    ck_assert_ptr_nonnull(b->plugins[1].bc);
    b->plugins[1].bclen = STRESS_PAD;

    pid_t pids[STRESS_READERS];
    for (int i = 0; i < STRESS_READERS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            child_init();
            reader(s, st, i);
            _exit(0);
        }
    }
    double t0 = now_ms();
    for (uint64_t g = 1; g <= STRESS_GENS; g++) {
        char name[32];
        snprintf(name, sizeof name, "gen-%llu", (unsigned long long)g);
        free(b->plugins[0].name);
        b->plugins[0].name = strdup(name);
        memset(b->plugins[1].bc, pad_byte(g), STRESS_PAD);
        unsigned char *snap;
        size_t len;
        ck_assert_int_eq(dc_snapshot_encode(b, &snap, &len), DC_OK);
        ck_assert_int_eq(dc_store_publish(s, snap, len, "api", name, 0), DC_OK);
        ck_assert_uint_eq(dc_store_generation(s), g);
        free(snap);
        if (g % 4 == 0)
            sleep_ms(1); /* let the readers see many generations */
    }
    double t1 = now_ms();
    __atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
    uint64_t reads = 0, torn = 0;
    for (int i = 0; i < STRESS_READERS; i++) {
        int status = reap(pids[i], 60000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader %d crashed", i);
        fprintf(stderr, "stress reader %d: %llu reads, %llu generations seen, %llu torn%s%s\n",
                i, (unsigned long long)st->reads[i], (unsigned long long)st->gens_seen[i],
                (unsigned long long)st->torn[i], st->torn[i] ? ": " : "", st->why[i]);
        reads += st->reads[i];
        torn += st->torn[i];
        ck_assert_uint_eq(st->backwards[i], 0);
        ck_assert_uint_ge(st->gens_seen[i], 20);
    }
    fprintf(stderr, "stress: %d snapshots of %d bytes published in %.0f ms, %llu reads, %llu torn\n",
            STRESS_GENS, STRESS_PAD, t1 - t0, (unsigned long long)reads,
            (unsigned long long)torn);
    ck_assert_uint_eq(torn, 0);
    dc_bundle_unref(b);
    dc_store_detach(s);
    munmap(st, sizeof *st);
    munmap(r, size);
}
END_TEST

/* ---- lease ---- */

START_TEST(lease_of_crashed_holder_taken_at_once)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    int32_t self = (int32_t)getpid();
    /* a holder that exits without releasing, reaped (as nginx's master does) */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(dc_store_lease(s, (int32_t)getpid(), 600000) == 1 ? 0 : 1);
    int status = reap(pid, 10000);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double t0 = now_ms();
    ck_assert_int_eq(dc_store_lease(s, self, 1000), 1);
    ck_assert_double_lt(now_ms() - t0, 1000); /* not the 600 s TTL */
    dc_store_lease_release(s, self);

    /* a holder that exits and is not reaped yet: a zombie holds nothing */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(dc_store_lease(s, (int32_t)getpid(), 600000) == 1 ? 0 : 1);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* ended, not reaped */
    ck_assert_int_eq(si.si_status, 0);
    ck_assert_int_eq(dc_store_lease(s, self, 1000), 1);
    reap(pid, 10000);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

START_TEST(lease_of_live_holder_refused_until_expiry)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    int32_t self = (int32_t)getpid();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        child_init();
        /* the lease's expiry lies between before + 1000 and after + 1000 (CLOCK_MONOTONIC is
         * the same clock in every process) */
        double t[3];
        t[0] = now_ms();
        t[2] = dc_store_lease(s, (int32_t)getpid(), 1000) == 1;
        t[1] = now_ms();
        if (write(fds[1], t, sizeof t) != (ssize_t)sizeof t)
            _exit(1);
        for (;;)
            pause(); /* alive, never renews */
    }
    double t[3];
    ck_assert_int_eq(read(fds[0], t, sizeof t), sizeof t);
    ck_assert(t[2] == 1);
    ck_assert_int_eq(dc_store_lease(s, self, 1000), 0);
    dc_store_lease_release(s, self); /* not ours: no effect */
    ck_assert_int_eq(dc_store_lease(s, self, 1000), 0);
    while (now_ms() < t[0] + 900) {
        ck_assert_int_eq(dc_store_lease(s, self, 1000), 0);
        sleep_ms(50);
    }
    while (now_ms() < t[1] + 1010)
        sleep_ms(10);
    ck_assert_int_eq(dc_store_lease(s, self, 200), 1); /* expired */
    /* now ours: renewed by us, refused to the (live) child */
    ck_assert_int_eq(dc_store_lease(s, self, 10000), 1);
    ck_assert_int_eq(dc_store_lease(s, (int32_t)pid, 1000), 0);
    dc_store_lease_release(s, self);
    ck_assert_int_eq(dc_store_lease(s, (int32_t)pid, 1000), 1); /* released: free at once */
    ck_assert_int_eq(dc_store_lease(s, 0, 1000), 0);               /* not a pid */
    ck_assert_int_eq(dc_store_lease(s, -5, 1000), 0);
    kill(pid, SIGKILL);
    reap(pid, 10000);
    close(fds[0]);
    close(fds[1]);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* A publisher that died holding the writer word, or mid-write, does not block the next. */
START_TEST(crashed_publisher_does_not_block)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)"one", 3, "api", "", 0), DC_OK);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    reap(pid, 10000);
    dc_store_hdr *h = r;
    /* the dead process's mark: writer word held for a minute, its slot left odd */
    uint64_t expiry = (uint64_t)now_ms() + 60000;
    __atomic_store_n(&h->writer, (uint64_t)pid << 42 | expiry, __ATOMIC_RELEASE);
    unsigned inactive = (unsigned)(h->current & 1) ^ 1;
    dc_store_slot *sl = (dc_store_slot *)((unsigned char *)r + h->slot_off[inactive]);
    sl->seq |= 1;
    double t0 = now_ms();
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)"two", 3, "api", "", 0), DC_OK);
    ck_assert_double_lt(now_ms() - t0, 2000); /* not the 60 s TTL */
    ck_assert_uint_eq(sl->seq % 2, 0);
    unsigned char *snap;
    size_t len;
    ck_assert_uint_eq(must_read(s, &snap, &len), 2);
    ck_assert_int_eq(memcmp(snap, "two", 3), 0);
    free(snap);
    /* same for the info lock */
    __atomic_store_n(&h->info.lock, (uint64_t)pid << 42 | expiry, __ATOMIC_RELEASE);
    h->info.seq |= 1;
    t0 = now_ms();
    dc_store_set_error(s, "after a crash", 1);
    ck_assert_double_lt(now_ms() - t0, 2000);
    dc_store_info info;
    dc_store_info_get(s, &info);
    ck_assert_str_eq(info.last_error, "after a crash");
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* ---- attach ---- */

START_TEST(reattach_keeps_data)
{
    size_t size = MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    ck_assert_int_eq(dc_store_publish(s, (const unsigned char *)"kept", 4, "offline", "e1", 5),
                     DC_OK);
    dc_store_set_error(s, "boom", 6);
    __atomic_fetch_add(&dc_store_event_counters(s)[DC_EV_BG_CACHE_HIT], 3, __ATOMIC_RELAXED);
    dc_plugin_metrics *m = dc_store_metrics(s, 77, 1);
    dc_metrics_record(m, DC_RESULT_OK, 10, unix_now_ms());
    ck_assert_int_eq(dc_store_lease(s, (int32_t)getpid(), 60000), 1);
    dc_store_detach(s);

    s = attach(r, size, 0); /* an nginx reload: the zone exists */
    ck_assert_uint_eq(dc_store_generation(s), 1);
    unsigned char *snap;
    size_t len;
    ck_assert_uint_eq(must_read(s, &snap, &len), 1);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(snap, "kept", 4), 0);
    free(snap);
    dc_store_info info;
    dc_store_info_get(s, &info);
    ck_assert_str_eq(info.source, "offline");
    ck_assert_str_eq(info.etag, "e1");
    ck_assert_str_eq(info.last_error, "boom");
    ck_assert_uint_eq(dc_store_event_counters(s)[DC_EV_BG_CACHE_HIT], 3);
    m = dc_store_metrics(s, 77, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->runs, 1);
    ck_assert_int_eq(dc_store_lease(s, (int32_t)getpid(), 60000), 1); /* still ours */
    /* a region smaller than it was formatted for is refused; a larger one is fine */
    dc_store *t = NULL;
    char err[256] = "";
    ck_assert_int_eq(dc_store_attach(r, size - 4096, 0, &t, err, sizeof err), DC_EINVAL);
    ck_assert_msg(strstr(err, "formatted for") != NULL, "%s", err);
    ck_assert_ptr_null(t);
    dc_store_detach(s);

    /* init = 1 starts afresh */
    s = attach(r, size, 1);
    ck_assert_uint_eq(dc_store_generation(s), 0);
    ck_assert_uint_eq(dc_store_event_counters(s)[DC_EV_BG_CACHE_HIT], 0);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* The same memory mapped at two addresses, as nginx processes may see a zone. */
START_TEST(two_mappings_at_different_addresses)
{
    size_t size = MIB;
    int fd = memfd_create("dc-store-test", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    void *a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(a != MAP_FAILED && b != MAP_FAILED && a != b);
    dc_store *sa = attach(a, size, 1), *sb = attach(b, size, 0);
    ck_assert_int_eq(dc_store_publish(sa, (const unsigned char *)"via a", 5, "api", "x", 1),
                     DC_OK);
    ck_assert_int_eq(dc_store_publish(sa, (const unsigned char *)"via a again", 11, "api", "y", 2),
                     DC_OK);
    unsigned char *snap;
    size_t len;
    ck_assert_uint_eq(must_read(sb, &snap, &len), 2);
    ck_assert_uint_eq(len, 11);
    ck_assert_int_eq(memcmp(snap, "via a again", 11), 0);
    free(snap);
    ck_assert_int_eq(dc_store_publish(sb, (const unsigned char *)"via b", 5, "api", "z", 3),
                     DC_OK);
    ck_assert_uint_eq(must_read(sa, &snap, &len), 3);
    ck_assert_int_eq(memcmp(snap, "via b", 5), 0);
    free(snap);
    dc_store_info info;
    dc_store_info_get(sa, &info);
    ck_assert_str_eq(info.etag, "z");
    dc_store_detach(sa);
    dc_store_detach(sb);
    munmap(a, size);
    munmap(b, size);
    close(fd);
}
END_TEST

START_TEST(bad_regions_refused)
{
    size_t size = MIB;
    unsigned char *r = region_new(size);
    dc_store *s = (dc_store *)&size;
    char err[256] = "";
    ck_assert_int_eq(dc_store_attach(r, DC_STORE_MIN_SIZE - 1, 1, &s, err, sizeof err), DC_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "too small") != NULL, "%s", err);
    ck_assert_int_eq(dc_store_attach(r, size, 0, &s, err, sizeof err), DC_ECORRUPT); /* zeroes */
    ck_assert_msg(strstr(err, "not a formatted store") != NULL, "%s", err);
    ck_assert_int_eq(dc_store_attach(NULL, size, 1, &s, err, sizeof err), DC_EINVAL);
    ck_assert_int_eq(dc_store_attach(r + 4, size - 8, 1, &s, err, sizeof err), DC_EINVAL);
    ck_assert_msg(strstr(err, "aligned") != NULL, "%s", err);
    s = attach(r, size, 1);
    dc_store_detach(s);
    ((dc_store_hdr *)r)->version = 99;
    ck_assert_int_eq(dc_store_attach(r, size, 0, &s, err, sizeof err), DC_ECORRUPT);
    ck_assert_msg(strstr(err, "version 99") != NULL, "%s", err);
    ((dc_store_hdr *)r)->version = DC_STORE_LAYOUT_VERSION;
    ((dc_store_hdr *)r)->slot_cap += 64; /* a layout that does not add up */
    ck_assert_int_eq(dc_store_attach(r, size, 0, &s, err, sizeof err), DC_ECORRUPT);
    ck_assert_msg(strstr(err, "does not add up") != NULL, "%s", err);
    ((dc_store_hdr *)r)->slot_cap -= 64;
    s = attach(r, size, 0);
    dc_store_detach(s);
    /* the smallest region works and holds a snapshot of a few KiB */
    s = attach(r, DC_STORE_MIN_SIZE, 1);
    ck_assert_uint_ge(hdr(r)->slot_cap, 16 * 1024);
    ck_assert_uint_ge(hdr(r)->metrics_n, 64);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* ---- corruption ---- */

START_TEST(corrupt_slot_refused_generation_unchanged)
{
    size_t size = MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    dc_bundle *b = tu_bundle("{\"general\": {}, \"domains\": [{\"name\": \"*\", \"plugins\": ["
                             "{\"name\": \"a\", \"phase\": \"log\", \"code\": \"local a = 1\"}]}]}");
    unsigned char *snap;
    size_t len;
    ck_assert_int_eq(dc_snapshot_encode(b, &snap, &len), DC_OK);
    ck_assert_int_eq(dc_store_publish(s, snap, len, "api", "", 0), DC_OK);
    ck_assert_int_eq(dc_store_publish(s, snap, len, "api", "", 0), DC_OK);
    dc_store_hdr *h = r;
    dc_store_slot *sl = (dc_store_slot *)((unsigned char *)r + h->slot_off[h->current & 1]);
    unsigned char *data = (unsigned char *)(sl + 1);
    char err[256] = "";
    unsigned char *got = NULL;
    size_t glen = 0;
    uint64_t gen = 0;
    for (size_t i = 0; i < len; i += 7) {
        data[i] ^= 0x20;
        err[0] = '\0';
        ck_assert_int_eq(dc_store_read(s, &gen, &got, &glen, err, sizeof err), DC_ECORRUPT);
        ck_assert_ptr_null(got);
        ck_assert_msg(strncmp(err, "snapshot checksum mismatch", 26) == 0, "%s", err);
        /* the handle keeps the first error until it is read, then the next one */
        char first[256];
        ck_assert_int_eq(dc_store_last_error(s, first, sizeof first), DC_ECORRUPT);
        ck_assert_msg(strncmp(first, "snapshot checksum mismatch", 26) == 0, "%s", first);
        ck_assert_int_eq(dc_store_last_error(s, first, sizeof first), DC_OK);
        ck_assert_str_eq(first, "");
        ck_assert_uint_eq(dc_store_generation(s), 2);
        data[i] ^= 0x20;
    }
    /* a corrupt slot header too */
    sl->len = h->slot_cap + 1;
    ck_assert_int_eq(dc_store_read(s, &gen, &got, &glen, err, sizeof err), DC_ECORRUPT);
    ck_assert_msg(strstr(err, "corrupt") != NULL, "%s", err);
    sl->len = len;
    sl->generation = 7;
    ck_assert_int_eq(dc_store_read(s, &gen, &got, &glen, err, sizeof err), DC_ECORRUPT);
    ck_assert_uint_eq(dc_store_generation(s), 2);
    /* the next publish heals it */
    ck_assert_int_eq(dc_store_publish(s, snap, len, "api", "", 0), DC_OK);
    ck_assert_uint_eq(must_read(s, &got, &glen), 3);
    ck_assert_uint_eq(glen, len);
    free(got);
    free(snap);
    dc_bundle_unref(b);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* Info strings are never seen half-written while another process rewrites them. */
START_TEST(info_never_torn)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    int *stop = region_new(sizeof *stop);
    dc_store *s = attach(r, size, 1);
    char a[200], b[120];
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memset(b, 'b', sizeof b - 1);
    b[sizeof b - 1] = '\0';
    dc_store_set_error(s, a, 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        child_init();
        double end = now_ms() + 60000;
        for (unsigned i = 0; !__atomic_load_n(stop, __ATOMIC_ACQUIRE) && now_ms() < end; i++)
            dc_store_set_error(s, i % 2 ? a : b, i % 2 ? 1 : 2);
        _exit(0);
    }
    unsigned seen_a = 0, seen_b = 0;
    double end = now_ms() + 300;
    while (now_ms() < end) {
        dc_store_info info;
        dc_store_info_get(s, &info);
        int is_a = strcmp(info.last_error, a) == 0 && info.last_error_at == 1;
        int is_b = strcmp(info.last_error, b) == 0 && info.last_error_at == 2;
        ck_assert_msg(is_a || is_b, "torn info: %zu bytes", strlen(info.last_error));
        seen_a += (unsigned)is_a;
        seen_b += (unsigned)is_b;
    }
    __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
    reap(pid, 10000);
    ck_assert_uint_gt(seen_a + seen_b, 100);
    dc_store_detach(s);
    munmap(stop, sizeof *stop);
    munmap(r, size);
}
END_TEST

/* ---- counters, quarantine, metrics shared across fork ---- */

#define FORKED 4
#define PER_PROCESS 5000

/* Runs fn(s, i) in FORKED children and waits for them all. */
static void in_children(dc_store *s, void (*fn)(dc_store *, int))
{
    pid_t pids[FORKED];
    for (int i = 0; i < FORKED; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            child_init();
            fn(s, i);
            _exit(0);
        }
    }
    for (int i = 0; i < FORKED; i++) {
        int st = reap(pids[i], 60000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

static void emit_events(dc_store *s, int i)
{
    dc_events *ev = NULL;
    if (dc_events_new(dc_store_event_counters(s), &ev) != DC_OK)
        _exit(1);
    dc_event_info info = {DC_EV_RT_PLUGINS_DONE, NULL, NULL, -1, NULL, 0, 0, DC_SEV_USUAL};
    for (int k = 0; k < PER_PROCESS; k++)
        dc_events_emit(ev, &info);
    dc_events_free(ev);
}

START_TEST(event_counters_shared)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    uint64_t *c = dc_store_event_counters(s);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq((uintptr_t)c % 8, 0);
    in_children(s, emit_events);
    dc_events *ev = NULL;
    ck_assert_int_eq(dc_events_new(c, &ev), DC_OK);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_DONE), FORKED * PER_PROCESS);
    ck_assert_uint_eq(dc_events_count(ev, DC_EV_RT_PLUGINS_ERROR), 0);
    dc_events_free(ev);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

static void trip_many(dc_store *s, int i)
{
    dc_quarantine_slot *q = dc_store_quarantine(s, 0xABCDEF, 1);
    if (!q)
        _exit(1);
    /* every other process a second behind, as processes that read the clock on either side
     * of a second's change: their trips still fall in the one window */
    double now = unix_now_ms() - (i % 2) * 1000.0;
    /* threshold 2000 in a long window: 20,000 trips close exactly 10 windows across processes */
    for (int k = 0; k < PER_PROCESS; k++)
        dc_store_quarantine_trip(q, 2000, 3600, 1, now);
}

START_TEST(quarantine_shared)
{
    size_t size = DC_STORE_MIN_SIZE;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    ck_assert_ptr_null(dc_store_quarantine(s, 42, 0));
    /* while no entry was ever made, a lookup skips the table; making one counts it */
    ck_assert_uint_eq(hdr(r)->quarantine_made, 0);
    dc_quarantine_slot *q = dc_store_quarantine(s, 42, 1);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(hdr(r)->quarantine_made, 1);
    ck_assert_ptr_eq(dc_store_quarantine(s, 42, 0), q);
    ck_assert_ptr_eq(dc_store_quarantine(s, 42, 1), q);
    ck_assert_uint_eq(hdr(r)->quarantine_made, 1);
    double now = unix_now_ms();
    ck_assert_int_eq(dc_store_quarantine_active(q, now), 0);
    /* 3 trips in a 10 s window: the third quarantines for 60 s */
    ck_assert_int_eq(dc_store_quarantine_trip(q, 3, 10, 60, now), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(q, 3, 10, 60, now + 1000), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(q, 3, 10, 60, now + 2000), 1);
    ck_assert_int_eq(dc_store_quarantine_active(q, now + 3000), 1);
    ck_assert_int_eq(dc_store_quarantine_active(q, now + 2000 + 61000), 0);
    ck_assert_uint_eq(q->quarantines, 1);
    ck_assert_uint_eq(q->trips, 3);
    /* a trip whose clock reads a moment before the window's start counts in it (two processes
     * reading the time on either side of a second's change); one a window behind starts anew */
    dc_quarantine_slot *sk = dc_store_quarantine(s, 44, 1);
    ck_assert_ptr_nonnull(sk);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 1000), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 500), 1);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 100000), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 50000), 0); /* anew */
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 50000), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(sk, 3, 10, 60, now + 50000), 1);
    /* trips spread over more than a window do not add up */
    dc_quarantine_slot *p = dc_store_quarantine(s, 43, 1);
    ck_assert_ptr_nonnull(p);
    ck_assert(p != q);
    ck_assert_int_eq(dc_store_quarantine_trip(p, 2, 10, 60, now), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(p, 2, 10, 60, now + 11000), 0);
    ck_assert_int_eq(dc_store_quarantine_trip(p, 2, 10, 60, now + 12000), 1);
    ck_assert_int_eq(dc_store_quarantine_trip(p, 0, 10, 60, now), 0); /* off */
    /* the watchdog's mark only ever extends */
    dc_store_quarantine_until(p, now + 1e6);
    dc_store_quarantine_until(p, now + 10);
    ck_assert_int_eq(dc_store_quarantine_active(p, now + 5e5), 1);
    ck_assert(dc_store_quarantine_until_ms(p) == now + 1e6);
    ck_assert(dc_store_quarantine_until_ms(NULL) == 0);
    uint32_t before = p->quarantines;
    dc_store_quarantine_mark(p, now + 2e6); /* the watchdog's: extends and counts */
    ck_assert(dc_store_quarantine_until_ms(p) == now + 2e6);
    ck_assert_uint_eq(p->quarantines, before + 1);
    /* key 0 is a key like any other */
    dc_quarantine_slot *z = dc_store_quarantine(s, 0, 1);
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_eq(dc_store_quarantine(s, 0, 0), z);

    /* processes trip one entry together: every trip counted, each window closed once */
    in_children(s, trip_many);
    dc_quarantine_slot *m = dc_store_quarantine(s, 0xABCDEF, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->trips, FORKED * PER_PROCESS);
    ck_assert_uint_eq(m->quarantines, FORKED * PER_PROCESS / 2000);

    /* filling the table: every key either gets an entry of its own or NULL, and is found again */
    uint32_t n = 0, made = 0;
    ck_assert_ptr_nonnull(dc_store_quarantine_at(s, 0, &n));
    ck_assert_uint_eq(n, DC_STORE_QUARANTINE_ENTRIES);
    for (uint64_t k = 1000; k < 1000 + 2 * n; k++) {
        dc_quarantine_slot *e = dc_store_quarantine(s, k * 7919, 1);
        if (!e)
            continue;
        made++;
        ck_assert_uint_eq(e->key, k * 7919);
        ck_assert_ptr_eq(dc_store_quarantine(s, k * 7919, 0), e);
    }
    ck_assert_uint_ge(made, n * 3 / 4);
    ck_assert_uint_le(made, n - 4);
    /* once idle for an hour (and not quarantined), an entry is reused for a new key */
    for (uint32_t i = 0; i < n; i++) {
        dc_quarantine_slot *e = dc_store_quarantine_at(s, i, NULL);
        e->window = (uint64_t)(now / 1000 - 7200) << 32;
        e->until_ms_unix = 0;
    }
    dc_quarantine_slot *fresh = dc_store_quarantine(s, 0x5555, 1);
    ck_assert_ptr_nonnull(fresh);
    ck_assert_uint_eq(fresh->key, 0x5555);
    ck_assert_uint_eq(fresh->trips, 0);
    ck_assert_int_eq(dc_store_quarantine_active(fresh, now), 0);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

static void record_many(dc_store *s, int i)
{
    dc_plugin_metrics *m = dc_store_metrics(s, 0x1234, 1);
    if (!m)
        _exit(1);
    double now = unix_now_ms();
    for (int k = 0; k < PER_PROCESS; k++)
        dc_metrics_record(m, k % 10 == 0 ? DC_RESULT_ERROR : DC_RESULT_OK, (uint64_t)(k % 50),
                          now);
    dc_metrics_record(m, DC_RESULT_QUOTA_TIME, 5000, now);
    dc_metrics_record(m, DC_RESULT_QUOTA_MEMORY, 10, now);
    dc_metrics_record(m, DC_RESULT_QUOTA_INSTRUCTIONS, 10, now);
}

START_TEST(metrics_shared)
{
    size_t size = 16 * MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    uint32_t n = 0;
    dc_store_metrics_at(s, 0, &n);
    ck_assert_uint_eq(n, DC_STORE_METRICS_MAX);
    ck_assert_ptr_null(dc_store_metrics(s, 0x1234, 0));
    in_children(s, record_many);
    dc_plugin_metrics *m = dc_store_metrics(s, 0x1234, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->runs, FORKED * (PER_PROCESS + 3));
    ck_assert_uint_eq(m->errors, FORKED * PER_PROCESS / 10);
    ck_assert_uint_eq(m->quota_time, FORKED);
    ck_assert_uint_eq(m->quota_memory, FORKED);
    ck_assert_uint_eq(m->quota_instructions, FORKED);
    uint64_t hist = 0;
    for (unsigned b = 0; b < DC_STORE_LAT_BUCKETS; b++)
        hist += m->latency[b];
    ck_assert_uint_eq(hist, m->runs);
    ck_assert_uint_eq(dc_metrics_p99_us(m), 50); /* k % 50 <= 50 */

    /* p99 by hand: 99 fast calls and 1 slow: the fast bucket; 2 slow: the slow one */
    dc_plugin_metrics *p = dc_store_metrics(s, 99, 1);
    ck_assert_uint_eq(dc_metrics_p99_us(p), 0);
    for (int k = 0; k < 99; k++)
        dc_metrics_record(p, DC_RESULT_OK, 10, 1);
    dc_metrics_record(p, DC_RESULT_OK, 5000, 1);
    ck_assert_uint_eq(dc_metrics_p99_us(p), 10);
    dc_metrics_record(p, DC_RESULT_OK, 5000, 1);
    dc_metrics_record(p, DC_RESULT_OK, 1u << 30, 1); /* very slow: the last bucket */
    ck_assert_uint_eq(dc_metrics_p99_us(p), 5000);
    ck_assert_uint_eq(p->latency[DC_STORE_LAT_BUCKETS - 1], 1);
    ck_assert_uint_eq(p->latency[0], 0);
    dc_metrics_record(p, DC_RESULT_OK, 0, 1);
    dc_metrics_record(p, DC_RESULT_OK, 1, 1);
    ck_assert_uint_eq(p->latency[0], 2);

    /* a bucket counts the calls up to its bound, the bound included; the last has no bound */
    dc_plugin_metrics *q = dc_store_metrics(s, 98, 1);
    ck_assert_uint_eq(dc_time_bucket_us(0), 1);
    ck_assert_uint_eq(dc_time_bucket_us(DC_TIME_BUCKETS - 2), 10000000);
    ck_assert_uint_eq(dc_time_bucket_us(DC_TIME_BUCKETS - 1), UINT64_MAX);
    ck_assert_uint_eq(dc_time_bucket_us(DC_TIME_BUCKETS), UINT64_MAX);
    for (unsigned b = 0; b + 1 < DC_TIME_BUCKETS; b++) {
        uint64_t bound = dc_time_bucket_us(b);
        ck_assert_uint_lt(bound, dc_time_bucket_us(b + 1));
        dc_metrics_record(q, DC_RESULT_OK, bound, 1);     /* in b */
        dc_metrics_record(q, DC_RESULT_OK, bound + 1, 1); /* in b + 1 */
    }
    ck_assert_uint_eq(q->latency[0], 1);
    for (unsigned b = 1; b + 1 < DC_TIME_BUCKETS; b++)
        ck_assert_uint_eq(q->latency[b], 2);
    ck_assert_uint_eq(q->latency[DC_TIME_BUCKETS - 1], 1);

    /* full around a key's place: NULL, unless an entry there has been idle for ten minutes */
    for (uint32_t i = 0; i < n; i++) {
        dc_plugin_metrics *e = dc_store_metrics_at(s, i, NULL);
        if (e->key == 0)
            e->key = 0xF00D0000u + i;
        e->last_ms_unix = (uint64_t)unix_now_ms();
    }
    ck_assert_ptr_null(dc_store_metrics(s, 0xBEEF, 1));
    for (uint32_t i = 0; i < n; i++)
        dc_store_metrics_at(s, i, NULL)->last_ms_unix = (uint64_t)unix_now_ms() - 3600 * 1000;
    dc_plugin_metrics *fresh = dc_store_metrics(s, 0xBEEF, 1);
    ck_assert_ptr_nonnull(fresh);
    ck_assert_uint_eq(fresh->runs, 0);
    ck_assert_ptr_eq(dc_store_metrics(s, 0xBEEF, 0), fresh);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* Calls counted in a private copy (dc_metrics_note) and folded into the store's entry give
 * the same counts as calls recorded there at once; a second fold adds nothing twice. */
START_TEST(metrics_noted_then_folded)
{
    size_t size = 16 * MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    dc_plugin_metrics *direct = dc_store_metrics(s, 0x51, 1);
    dc_plugin_metrics *folded_to = dc_store_metrics(s, 0x52, 1);
    ck_assert_ptr_nonnull(direct);
    ck_assert_ptr_nonnull(folded_to);
    static const dc_result results[] = {DC_RESULT_OK, DC_RESULT_ERROR, DC_RESULT_DENIED,
                                        DC_RESULT_QUOTA_TIME, DC_RESULT_QUOTA_MEMORY,
                                        DC_RESULT_QUOTA_INSTRUCTIONS};
    dc_plugin_metrics local, folded;
    memset(&local, 0, sizeof local);
    memset(&folded, 0, sizeof folded);
    uint64_t calls = 0;
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 40; k++) {
            dc_result res = results[k % 6];
            uint64_t us = (uint64_t)k * k * 1000u; /* over several buckets */
            dc_metrics_record(direct, res, us, 1);
            dc_metrics_note(&local, res, us);
            calls++;
        }
        ck_assert_uint_eq(folded_to->runs, calls - 40); /* nothing before the fold */
        ck_assert_uint_eq(dc_metrics_fold(folded_to, &local, &folded, 12345), 40);
        ck_assert_uint_eq(dc_metrics_fold(folded_to, &local, &folded, 12345), 0);
        ck_assert_uint_eq(folded_to->runs, calls);
        ck_assert_uint_eq(folded_to->last_ms_unix, 12345);
        ck_assert_mem_eq(&folded_to->runs, &direct->runs,
                         sizeof *direct - offsetof(dc_plugin_metrics, runs));
    }
    ck_assert_uint_eq(direct->quota_memory, 18); /* k % 6 == 4: six a round */
    ck_assert_uint_eq(direct->errors, 42);       /* errors and denials: 14 a round */
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* ---- a large snapshot: the time a worker spends reading it ---- */

START_TEST(large_read_time)
{
    size_t size = 16 * MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    size_t len = 4 * MIB;
    unsigned char *big = malloc(len);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (unsigned char)(i * 2654435761u >> 13);
    double t0 = now_ms();
    ck_assert_int_eq(dc_store_publish(s, big, len, "api", "", 0), DC_OK);
    double t1 = now_ms();
    unsigned char *snap;
    size_t got;
    double best = 1e9;
    for (int k = 0; k < 5; k++) {
        double a = now_ms();
        must_read(s, &snap, &got);
        double d = now_ms() - a;
        best = d < best ? d : best;
        ck_assert_uint_eq(got, len);
        ck_assert_int_eq(memcmp(snap, big, len), 0);
        free(snap);
    }
    fprintf(stderr, "store: publish of 4 MiB %.2f ms, read (copy + checksum) %.2f ms; "
                    "slot capacity %.1f MiB in a 16 MiB region\n",
            t1 - t0, best, (double)hdr(r)->slot_cap / MIB);
    free(big);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

/* The poller's record and the region's usage, as the status page reads them. */
START_TEST(polls_and_usage)
{
    size_t size = 4 * MIB;
    void *r = region_new(size);
    dc_store *s = attach(r, size, 1);
    dc_store_info si;
    dc_store_info_get(s, &si);
    ck_assert(si.poll_ok_at == 0);
    ck_assert_uint_eq(si.poll_failures, 0);
    dc_store_note_poll(s, 0, 100.0);
    dc_store_note_poll(s, 0, 101.0);
    dc_store_info_get(s, &si);
    ck_assert(si.poll_ok_at == 0);
    ck_assert_uint_eq(si.poll_failures, 2);
    dc_store_note_poll(s, 1, 1700000000.25);
    dc_store_info_get(s, &si);
    ck_assert_double_eq_tol(si.poll_ok_at, 1700000000.25, 0.0015);
    ck_assert_uint_eq(si.poll_failures, 0);
    dc_store_note_poll(s, 0, 1700000001.0);
    dc_store_info_get(s, &si);
    ck_assert_double_eq_tol(si.poll_ok_at, 1700000000.25, 0.0015); /* kept */
    ck_assert_uint_eq(si.poll_failures, 1);

    dc_store_usage u;
    dc_store_usage_get(s, &u);
    ck_assert_uint_eq(u.size, size);
    ck_assert_uint_eq(u.used + u.free, size);
    ck_assert_uint_gt(u.snapshot_capacity, size / 2 - size / 4);
    ck_assert_uint_lt(u.snapshot_capacity, size / 2);
    ck_assert_uint_eq(u.metrics_entries, DC_STORE_METRICS_MAX);
    ck_assert_uint_eq(u.metrics_used, 0);
    size_t empty = u.used;

    unsigned char *snap = calloc(1, 100000);
    ck_assert_int_eq(dc_store_publish(s, snap, 100000, "api", "e", 1.0), DC_OK);
    ck_assert_ptr_nonnull(dc_store_metrics(s, 7, 1));
    dc_store_usage_get(s, &u);
    ck_assert_uint_eq(u.used, empty + 2 * 100000); /* the snapshot, twice */
    ck_assert_uint_eq(u.used + u.free, size);
    ck_assert_uint_eq(u.metrics_used, 1);
    free(snap);

    /* a snapshot that fills a slot leaves (almost) nothing free */
    snap = calloc(1, u.snapshot_capacity);
    ck_assert_int_eq(dc_store_publish(s, snap, u.snapshot_capacity, "api", "e", 1.0), DC_OK);
    dc_store_usage_get(s, &u);
    ck_assert_uint_lt(u.free, 2 * DC_STORE_ALIGN);
    free(snap);

    dc_store_usage_get(NULL, &u);
    ck_assert_uint_eq(u.size, 0);
    dc_store_note_poll(NULL, 1, 1.0);
    dc_store_detach(s);
    munmap(r, size);
}
END_TEST

Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("publish");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, publish_read_round_trip);
    tcase_add_test(tc, generation_increments_and_limit);
    tcase_add_test(tc, region_for_a_snapshot);
    tcase_add_test(tc, snapshot_through_store);
    tcase_add_test(tc, large_read_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("stress");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stress_no_torn_reads);
    tcase_add_test(tc, info_never_torn);
    suite_add_tcase(s, tc);
    tc = tcase_create("lease");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lease_of_crashed_holder_taken_at_once);
    tcase_add_test(tc, lease_of_live_holder_refused_until_expiry);
    tcase_add_test(tc, crashed_publisher_does_not_block);
    suite_add_tcase(s, tc);
    tc = tcase_create("attach");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, reattach_keeps_data);
    tcase_add_test(tc, two_mappings_at_different_addresses);
    tcase_add_test(tc, bad_regions_refused);
    tcase_add_test(tc, corrupt_slot_refused_generation_unchanged);
    suite_add_tcase(s, tc);
    tc = tcase_create("shared tables");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, event_counters_shared);
    tcase_add_test(tc, quarantine_shared);
    tcase_add_test(tc, metrics_shared);
    tcase_add_test(tc, metrics_noted_then_folded);
    tcase_add_test(tc, polls_and_usage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(store_suite());
}
