/* store.c - the shared store: the snapshot in force and its generation, the
 * poller lease, status info, event counters, quarantine entries and per-plugin metrics, all in
 * one region the host shares between its processes (layout: store_layout.h).
 *
 * No lock here can stay held by a crashed process. The snapshot is double-buffered: a publisher
 * fills the slot not in force, under that slot's sequence counter, then moves the one "current"
 * word (generation << 1 | slot) with release; a reader copies the slot current names and keeps
 * the copy only when the slot's counter did not move meanwhile, then checks the checksum. Mutual
 * exclusion (publishers, info writers, the lease) uses "owner words": the holder's pid and an
 * expiry on the monotonic clock (system-wide), taken with CAS when free, expired, or when the
 * holder is gone (kill(pid, 0) says ESRCH, or it is a zombie).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define WRITER_TTL_MS 10000u   /* a publish copies at most a slot: far less than this */
#define WRITER_WAIT_MS 12000u  /* past the TTL, so a stuck publisher is always overtaken */
#define INFO_TTL_MS 1000u
#define INFO_WAIT_MS 1500u
#define READ_TRIES 1000        /* each retry means a publish overlapped the copy */
#define QUARANTINE_PROBE 16u
#define QUARANTINE_IDLE_S 3600u
#define METRICS_PROBE 32u
#define METRICS_IDLE_MS (10.0 * 60.0 * 1000.0)

struct dc_store {
    unsigned char *base;
    dc_store_hdr *hdr;
    uint64_t *events;
    dc_quarantine_slot *quar;
    uint32_t nquar;
    dc_plugin_metrics *met;
    uint32_t nmet;
    dc_store_slot *slot[2];
    uint64_t slot_cap;
    dc_errbuf first_error;   /* this handle's, not the region's: dc_store_last_error */
};

#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define CAS(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

static unsigned char *slot_data(dc_store_slot *sl)
{
    return (unsigned char *)(sl + 1);
}

static double unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double dc_unix_ms(void)
{
    return unix_ms();
}

double dc_unix_ms_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- layout ---- */

typedef struct layout {
    uint64_t events_off, quarantine_off, metrics_off, slot_off[2], slot_cap;
    uint32_t quarantine_n, metrics_n;
} layout;

static uint64_t align_up(uint64_t v)
{
    return (v + DC_STORE_ALIGN - 1) & ~(uint64_t)(DC_STORE_ALIGN - 1);
}

/* Where everything goes in a region of size bytes; -1 when the slots would be too small. */
static int layout_compute(uint64_t size, layout *l)
{
    uint64_t off = align_up(sizeof(dc_store_hdr));
    l->events_off = off;
    off = align_up(off + DC_STORE_EVENT_SLOTS * sizeof(uint64_t));
    l->quarantine_off = off;
    l->quarantine_n = DC_STORE_QUARANTINE_ENTRIES;
    off = align_up(off + (uint64_t)l->quarantine_n * sizeof(dc_quarantine_slot));
    uint64_t mn = size / 4 / sizeof(dc_plugin_metrics);
    l->metrics_n = (uint32_t)(mn < DC_STORE_METRICS_MAX ? mn : DC_STORE_METRICS_MAX);
    l->metrics_off = off;
    off = align_up(off + (uint64_t)l->metrics_n * sizeof(dc_plugin_metrics));
    if (off >= size)
        return -1;
    uint64_t per = ((size - off) / 2) & ~(uint64_t)(DC_STORE_ALIGN - 1);
    if (per < sizeof(dc_store_slot) + DC_STORE_SLOT_MIN)
        return -1;
    l->slot_off[0] = off;
    l->slot_off[1] = off + per;
    l->slot_cap = per - sizeof(dc_store_slot);
    return 0;
}

static int layout_matches(const dc_store_hdr *h, const layout *l)
{
    return h->events_off == l->events_off && h->quarantine_off == l->quarantine_off &&
           h->metrics_off == l->metrics_off && h->quarantine_n == l->quarantine_n &&
           h->metrics_n == l->metrics_n && h->slot_off[0] == l->slot_off[0] &&
           h->slot_off[1] == l->slot_off[1] && h->slot_cap == l->slot_cap;
}

/* ---- owner words: pid (22 bits: Linux pids stay below 2^22) | expiry, monotonic ms ---- */

#define PID_BITS 22
#define TIME_BITS 42
#define TIME_MASK ((1ull << TIME_BITS) - 1)

static uint64_t mono_ms(void)
{
    return (uint64_t)dc_now_ms();
}

static int pid_ok(int32_t pid)
{
    return pid > 0 && pid < (1 << PID_BITS);
}

static uint64_t owner_make(int32_t pid, uint64_t expiry)
{
    return (uint64_t)pid << TIME_BITS | (expiry & TIME_MASK);
}

static int32_t owner_pid(uint64_t w)
{
    return (int32_t)(w >> TIME_BITS);
}

static uint64_t owner_expiry(uint64_t w)
{
    return w & TIME_MASK;
}

/* 1 when pid has ended: no such process, or a zombie its parent has not reaped yet (a crashed
 * worker stays one until the master's SIGCHLD handler runs). */
static int pid_gone(int32_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the command name may hold anything */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Takes the owner word for this process for ttl_ms, waiting up to wait_ms for a live holder.
 * Returns the word written (to give back), 0 when the wait ran out. */
static uint64_t lock_take(uint64_t *word, uint32_t ttl_ms, uint32_t wait_ms)
{
    int32_t self = (int32_t)getpid();
    uint64_t deadline = mono_ms() + wait_ms;
    for (unsigned spin = 0;; spin++) {
        uint64_t now = mono_ms();
        uint64_t w = LOAD_ACQ(word);
        int32_t holder = owner_pid(w);
        if (w == 0 || owner_expiry(w) <= now ||
            (spin % 16 == 0 && holder != self && pid_gone(holder))) {
            uint64_t mine = owner_make(self, now + ttl_ms);
            if (CAS(word, &w, mine))
                return mine;
            continue;
        }
        if (now >= deadline)
            return 0;
        if (spin < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

static void lock_give(uint64_t *word, uint64_t mine)
{
    /* fails harmlessly when the word was taken over after expiry */
    __atomic_compare_exchange_n(word, &mine, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* ---- attach ---- */

static void format_region(unsigned char *base, uint64_t size, const layout *l)
{
    dc_store_hdr *h = (dc_store_hdr *)base;
    STORE_REL(&h->magic, 0); /* an interrupted format must not look valid */
    memset(base, 0, l->slot_off[0]);
    memset(base + l->slot_off[0], 0, sizeof(dc_store_slot));
    memset(base + l->slot_off[1], 0, sizeof(dc_store_slot));
    h->version = DC_STORE_LAYOUT_VERSION;
    h->hdr_bytes = (uint32_t)sizeof *h;
    h->region_bytes = size;
    h->events_off = l->events_off;
    h->quarantine_off = l->quarantine_off;
    h->metrics_off = l->metrics_off;
    h->quarantine_n = l->quarantine_n;
    h->metrics_n = l->metrics_n;
    h->slot_off[0] = l->slot_off[0];
    h->slot_off[1] = l->slot_off[1];
    h->slot_cap = l->slot_cap;
    STORE_REL(&h->magic, DC_STORE_MAGIC);
}

dc_rc dc_store_attach(void *region, size_t size, int init, dc_store **out, char *err,
                      size_t errlen)
{
    if (!out || !region) {
        dc_set_err(err, errlen, "dc_store_attach: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    if ((uintptr_t)region % 8 != 0) {
        dc_set_err(err, errlen, "shared store: the region must be 8-byte aligned");
        return DC_EINVAL;
    }
    layout l;
    if (size < DC_STORE_MIN_SIZE || (init && layout_compute(size, &l) != 0)) {
        dc_set_err(err, errlen, "shared store: a region of %zu bytes is too small (at least %u)",
                   size, (unsigned)DC_STORE_MIN_SIZE);
        return DC_EINVAL;
    }
    unsigned char *base = region;
    dc_store_hdr *h = region;
    if (init) {
        format_region(base, size, &l);
    } else if (LOAD_ACQ(&h->magic) != DC_STORE_MAGIC) {
        dc_set_err(err, errlen, "shared store: the region is not a formatted store");
        return DC_ECORRUPT;
    } else if (h->version != DC_STORE_LAYOUT_VERSION || h->hdr_bytes != sizeof *h) {
        dc_set_err(err, errlen, "shared store: layout version %u, this library uses %u",
                   h->version, DC_STORE_LAYOUT_VERSION);
        return DC_ECORRUPT;
    } else if (h->region_bytes > size) {
        dc_set_err(err, errlen, "shared store: formatted for %llu bytes, attached with %zu",
                   (unsigned long long)h->region_bytes, size);
        return DC_EINVAL;
    } else if (h->region_bytes < DC_STORE_MIN_SIZE || layout_compute(h->region_bytes, &l) != 0 ||
               !layout_matches(h, &l)) {
        dc_set_err(err, errlen, "shared store: the layout of %llu bytes does not add up",
                   (unsigned long long)h->region_bytes);
        return DC_ECORRUPT;
    }
    dc_store *s = calloc(1, sizeof *s);
    if (!s) {
        dc_set_err(err, errlen, "shared store: out of memory");
        return DC_ENOMEM;
    }
    s->base = base;
    s->hdr = h;
    s->events = (uint64_t *)(base + l.events_off);
    s->quar = (dc_quarantine_slot *)(base + l.quarantine_off);
    s->nquar = l.quarantine_n;
    s->met = (dc_plugin_metrics *)(base + l.metrics_off);
    s->nmet = l.metrics_n;
    s->slot[0] = (dc_store_slot *)(base + l.slot_off[0]);
    s->slot[1] = (dc_store_slot *)(base + l.slot_off[1]);
    s->slot_cap = l.slot_cap;
    *out = s;
    return DC_OK;
}

dc_rc dc_store_last_error(dc_store *s, char *msg, size_t len)
{
    return dc_errbuf_take(s ? &s->first_error : NULL, msg, len);
}

void dc_store_detach(dc_store *s)
{
    free(s);
}

uint64_t *dc_store_event_counters(dc_store *s)
{
    return s ? s->events : NULL;
}

uint64_t dc_store_generation(const dc_store *s)
{
    return s ? LOAD_ACQ(&s->hdr->current) >> 1 : 0;
}

/* ---- info ---- */

/* Copies src into dst (cap bytes, NUL-terminated), cut before an incomplete UTF-8 sequence. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    memset(dst + n, 0, cap - n);
}

static uint64_t info_begin(dc_store_info_block *ib)
{
    uint64_t me = lock_take(&ib->lock, INFO_TTL_MS, INFO_WAIT_MS);
    if (!me)
        return 0;
    uint64_t q = LOAD_RLX(&ib->seq);
    STORE_RLX(&ib->seq, (q & 1) ? q + 2 : q + 1); /* odd; new even after a writer died */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return me;
}

static void info_end(dc_store_info_block *ib, uint64_t me)
{
    STORE_REL(&ib->seq, (LOAD_RLX(&ib->seq) | 1) + 1);
    lock_give(&ib->lock, me);
}

void dc_store_set_error(dc_store *s, const char *msg, double at)
{
    if (!s)
        return;
    dc_store_info_block *ib = &s->hdr->info;
    uint64_t me = info_begin(ib);
    if (!me)
        return;
    copy_str(ib->last_error, sizeof ib->last_error, msg);
    ib->last_error_at = msg ? at : 0;
    info_end(ib, me);
}

void dc_store_info_get(dc_store *s, dc_store_info *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    const dc_store_info_block *ib = &s->hdr->info;
    dc_store_info_block c;
    uint64_t deadline = mono_ms() + INFO_WAIT_MS;
    for (unsigned i = 0;; i++) {
        uint64_t q0 = LOAD_ACQ(&ib->seq);
        memcpy(&c, ib, sizeof c);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (!(q0 & 1) && LOAD_RLX(&ib->seq) == q0)
            break;
        if (i < 64) {
            sched_yield();
            continue;
        }
        /* A writer is slow (preempted) or gone. Wait for a live one, up to INFO_WAIT_MS; take
         * a dead one's half-written fields as they are (strings are cut below): torn info is
         * harmless, and the next writer rewrites it whole. */
        uint64_t now = mono_ms();
        if (now >= deadline)
            break;
        uint64_t w = LOAD_ACQ(&ib->lock);
        if ((LOAD_ACQ(&ib->seq) & 1) && w != 0 &&
            (owner_expiry(w) <= now || pid_gone(owner_pid(w)))) {
            memcpy(&c, ib, sizeof c);
            break;
        }
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    out->generation = c.generation;
    out->snapshot_bytes = (size_t)c.snapshot_bytes;
    out->fetched_at = c.fetched_at;
    out->last_error_at = c.last_error_at;
    memcpy(out->source, c.source, sizeof out->source);
    memcpy(out->etag, c.etag, sizeof out->etag);
    memcpy(out->last_error, c.last_error, sizeof out->last_error);
    out->source[sizeof out->source - 1] = '\0';
    out->etag[sizeof out->etag - 1] = '\0';
    out->last_error[sizeof out->last_error - 1] = '\0';
}

/* ---- publish and read ---- */

dc_rc dc_store_publish(dc_store *s, const unsigned char *snap, size_t len, const char *source,
                       const char *etag, double fetched_at)
{
    if (!s || !snap || len == 0)
        return DC_EINVAL;
    if (len > s->slot_cap)
        return DC_ELIMIT;
    uint64_t sum = dc_checksum64(snap, len);
    dc_store_hdr *h = s->hdr;
    uint64_t me = lock_take(&h->writer, WRITER_TTL_MS, WRITER_WAIT_MS);
    if (!me) {
        dc_errbuf_note(&s->first_error, DC_EBUSY,
                       "publish: the writer lock was not free within %d ms", WRITER_WAIT_MS);
        return DC_EBUSY;
    }
    uint64_t cur = LOAD_ACQ(&h->current);
    unsigned x = (unsigned)(cur & 1) ^ 1; /* the slot not in force */
    uint64_t gen = (cur >> 1) + 1;
    dc_store_slot *sl = s->slot[x];
    /* Odd while writing: a reader that started on this slot (before the previous publish moved
     * "current" away from it) sees the counter move and retries. */
    uint64_t q = LOAD_RLX(&sl->seq);
    q = (q & 1) ? q + 2 : q + 1;
    STORE_RLX(&sl->seq, q);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    STORE_RLX(&sl->generation, gen);
    STORE_RLX(&sl->len, (uint64_t)len);
    STORE_RLX(&sl->checksum, sum);
    memcpy(slot_data(sl), snap, len);
    STORE_REL(&sl->seq, q + 1);
    /* A CAS, not a store: should a publisher that overran its TTL wake up after another took
     * over, it must not move "current" back. */
    int ok = __atomic_compare_exchange_n(&h->current, &cur, gen << 1 | x, 0, __ATOMIC_RELEASE,
                                         __ATOMIC_RELAXED);
    if (ok) {
        dc_store_info_block *ib = &h->info;
        uint64_t ime = info_begin(ib);
        if (ime) {
            ib->generation = gen;
            ib->snapshot_bytes = len;
            ib->fetched_at = fetched_at;
            copy_str(ib->source, sizeof ib->source, source);
            copy_str(ib->etag, sizeof ib->etag, etag);
            info_end(ib, ime);
        }
    }
    lock_give(&h->writer, me);
    if (!ok) {
        dc_errbuf_note(&s->first_error, DC_EBUSY,
                       "publish: the writer lock was lost to another publisher (generation %llu)",
                       (unsigned long long)gen);
        return DC_EBUSY;
    }
    return DC_OK;
}

dc_rc dc_store_read(dc_store *s, uint64_t *gen, unsigned char **snap, size_t *len, char *err,
                    size_t errlen)
{
    if (!s || !snap || !len) {
        dc_set_err(err, errlen, "dc_store_read: bad argument");
        return DC_EINVAL;
    }
    *snap = NULL;
    *len = 0;
    if (gen)
        *gen = 0;
    dc_store_hdr *h = s->hdr;
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (int attempt = 0; attempt < READ_TRIES; attempt++) {
        if (attempt >= 4)
            sched_yield();
        uint64_t cur = LOAD_ACQ(&h->current);
        if (cur == 0) { /* nothing published yet */
            free(buf);
            return DC_OK;
        }
        dc_store_slot *sl = s->slot[cur & 1];
        uint64_t q0 = LOAD_ACQ(&sl->seq);
        if (q0 & 1)
            continue;
        uint64_t g = LOAD_RLX(&sl->generation), n = LOAD_RLX(&sl->len);
        uint64_t sum = LOAD_RLX(&sl->checksum);
        if (g != cur >> 1 || n == 0 || n > s->slot_cap) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (LOAD_RLX(&sl->seq) != q0 || LOAD_ACQ(&h->current) != cur)
                continue; /* a publish went by */
            free(buf);
            dc_set_err(err, errlen,
                       "snapshot slot header corrupt (generation %llu, slot says %llu, %llu bytes)",
                       (unsigned long long)(cur >> 1), (unsigned long long)g,
                       (unsigned long long)n);
            dc_errbuf_note(&s->first_error, DC_ECORRUPT, "%s", err ? err : "slot header corrupt");
            return DC_ECORRUPT;
        }
        if (n > cap) {
            unsigned char *nb = realloc(buf, (size_t)n);
            if (!nb) {
                free(buf);
                dc_set_err(err, errlen, "snapshot: out of memory");
                return DC_ENOMEM;
            }
            buf = nb;
            cap = (size_t)n;
        }
        memcpy(buf, slot_data(sl), (size_t)n);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD_RLX(&sl->seq) != q0)
            continue; /* overwritten while copied: never hand out a mix */
        if (dc_checksum64(buf, (size_t)n) != sum) {
            free(buf);
            dc_set_err(err, errlen, "snapshot checksum mismatch (generation %llu)",
                       (unsigned long long)g);
            dc_errbuf_note(&s->first_error, DC_ECORRUPT,
                           "snapshot checksum mismatch (generation %llu)", (unsigned long long)g);
            return DC_ECORRUPT;
        }
        *snap = buf;
        *len = (size_t)n;
        if (gen)
            *gen = g;
        return DC_OK;
    }
    free(buf);
    dc_set_err(err, errlen, "snapshot: changed %d times while being read", READ_TRIES);
    dc_errbuf_note(&s->first_error, DC_EBUSY, "snapshot: changed %d times while being read",
                   READ_TRIES);
    return DC_EBUSY;
}

/* ---- poller lease ---- */

int dc_store_lease(dc_store *s, int32_t self_pid, uint32_t ttl_ms)
{
    if (!s || !pid_ok(self_pid) || ttl_ms == 0)
        return 0;
    uint64_t *word = &s->hdr->lease;
    for (int i = 0; i < 64; i++) {
        uint64_t now = mono_ms();
        uint64_t w = LOAD_ACQ(word);
        int32_t holder = owner_pid(w);
        if (w != 0 && holder != self_pid && owner_expiry(w) > now && !pid_gone(holder))
            return 0;
        if (CAS(word, &w, owner_make(self_pid, now + ttl_ms)))
            return 1;
    }
    return 0;
}

void dc_store_lease_release(dc_store *s, int32_t self_pid)
{
    if (!s)
        return;
    uint64_t w = LOAD_ACQ(&s->hdr->lease);
    if (w != 0 && owner_pid(w) == self_pid)
        __atomic_compare_exchange_n(&s->hdr->lease, &w, 0, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
}

/* the quarantine marks run in signal handlers: their 64-bit words must never need a lock */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "lock-free 64-bit atomics");
_Static_assert(__atomic_always_lock_free(sizeof(double), 0), "lock-free double atomics");

/* ---- keyed tables: open addressing in a bounded window, entries never emptied ---- */

static uint64_t fix_key(uint64_t key)
{
    return dc_store_key(key); /* 0 marks a free entry */
}

static uint32_t home(uint64_t key, uint32_t n)
{
    uint64_t x = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)((x >> 32) % n);
}

/* Finds key in the probe window of a table whose entries start with their key, or claims the
 * first free entry there (create). *found_free tells the caller it made a new entry. Returns
 * the index, or -1. */
static int64_t table_find(void *tab, size_t esize, uint32_t n, uint32_t probe, uint64_t key,
                          int create, int *made)
{
    uint32_t h = home(key, n);
    *made = 0;
    for (uint32_t i = 0; i < probe; i++) {
        uint32_t idx = (h + i) % n;
        uint64_t *k = (uint64_t *)((unsigned char *)tab + (size_t)idx * esize);
        uint64_t cur = LOAD_ACQ(k);
        if (cur == key)
            return idx;
        if (cur != 0)
            continue;
        if (!create)
            return -1; /* entries are filled in probe order: key is not further on */
        if (CAS(k, &cur, key)) {
            *made = 1;
            return idx;
        }
        if (cur == key)
            return idx; /* another process made it just now */
    }
    return -1;
}

dc_quarantine_slot *dc_store_quarantine(dc_store *s, uint64_t key, int create)
{
    if (!s || s->nquar == 0)
        return NULL;
    key = fix_key(key);
    uint32_t probe = s->nquar < QUARANTINE_PROBE ? s->nquar : QUARANTINE_PROBE;
    int made;
    int64_t i = table_find(s->quar, sizeof *s->quar, s->nquar, probe, key, create, &made);
    if (i >= 0) {
        /* the clock is read only for a new entry: a lookup runs for every plugin call */
        if (made)
            STORE_REL(&s->quar[i].window, (uint64_t)(unix_ms() / 1000.0) << 32);
        return &s->quar[i];
    }
    if (!create)
        return NULL;
    /* Full around key's place: reuse the entry idle the longest, if any has been for an hour
     * and is not quarantined. Processes racing here pick the same victim, and one CAS wins. */
    double now_ms = unix_ms();
    uint64_t now_s = (uint64_t)(now_ms / 1000.0);
    dc_quarantine_slot *victim = NULL;
    uint64_t vkey = 0, vstart = UINT64_MAX;
    uint32_t h = home(key, s->nquar);
    for (uint32_t k = 0; k < probe; k++) {
        dc_quarantine_slot *q = &s->quar[(h + k) % s->nquar];
        uint64_t qk = LOAD_ACQ(&q->key);
        if (qk == key)
            return q;
        uint64_t start = LOAD_ACQ(&q->window) >> 32;
        double until;
        __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
        if (until < now_ms && start + QUARANTINE_IDLE_S < now_s && start < vstart) {
            victim = q;
            vkey = qk;
            vstart = start;
        }
    }
    if (!victim)
        return NULL;
    if (!CAS(&victim->key, &vkey, key))
        return vkey == key ? victim : NULL;
    double zero = 0;
    STORE_REL(&victim->window, now_s << 32);
    __atomic_store(&victim->until_ms_unix, &zero, __ATOMIC_RELEASE);
    STORE_REL(&victim->trips, 0);
    STORE_REL(&victim->quarantines, 0);
    return victim;
}

int dc_store_quarantine_active(const dc_quarantine_slot *q, double now_ms_unix)
{
    if (!q)
        return 0;
    double until;
    __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
    return until > now_ms_unix;
}

void dc_store_quarantine_until(dc_quarantine_slot *q, double until_ms_unix)
{
    if (!q)
        return;
    double cur;
    __atomic_load(&q->until_ms_unix, &cur, __ATOMIC_ACQUIRE);
    while (cur < until_ms_unix &&
           !__atomic_compare_exchange(&q->until_ms_unix, &cur, &until_ms_unix, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
}

void dc_store_quarantine_mark(dc_quarantine_slot *q, double until_ms_unix)
{
    if (!q)
        return;
    dc_store_quarantine_until(q, until_ms_unix);
    __atomic_fetch_add(&q->quarantines, 1, __ATOMIC_RELAXED);
}

double dc_store_quarantine_until_ms(const dc_quarantine_slot *q)
{
    double until = 0;
    if (q)
        __atomic_load(&q->until_ms_unix, &until, __ATOMIC_ACQUIRE);
    return until;
}

int dc_store_quarantine_trip(dc_quarantine_slot *q, uint32_t trips, uint32_t window_s,
                             uint32_t duration_s, double now_ms_unix)
{
    if (!q || trips == 0)
        return 0;
    __atomic_fetch_add(&q->trips, 1, __ATOMIC_RELAXED);
    uint64_t now_s = now_ms_unix > 0 ? (uint64_t)(now_ms_unix / 1000.0) : 0;
    uint64_t w = LOAD_ACQ(&q->window), nw;
    int tripped;
    /* start and count change together in one word, so concurrent trips are all counted and
     * exactly one of them closes the window */
    do {
        uint64_t start = w >> 32;
        uint32_t n = (uint32_t)w;
        if (n == 0 || now_s < start || now_s - start >= window_s) {
            start = now_s;
            n = 0;
        }
        n++;
        tripped = n >= trips;
        nw = start << 32 | (tripped ? 0 : n);
    } while (!CAS(&q->window, &w, nw));
    if (tripped) {
        dc_store_quarantine_until(q, now_ms_unix + (double)duration_s * 1000.0);
        __atomic_fetch_add(&q->quarantines, 1, __ATOMIC_RELAXED);
    }
    return tripped;
}

dc_quarantine_slot *dc_store_quarantine_at(dc_store *s, uint32_t i, uint32_t *n)
{
    if (n)
        *n = s ? s->nquar : 0;
    return s && i < s->nquar ? &s->quar[i] : NULL;
}

/* ---- metrics ---- */

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
    int64_t i = table_find(s->met, sizeof *s->met, s->nmet, probe, key, create, &made);
    if (i >= 0) {
        if (made)
            STORE_REL(&s->met[i].last_ms_unix, (uint64_t)unix_ms());
        return &s->met[i];
    }
    if (!create)
        return NULL;
    uint64_t now = (uint64_t)unix_ms();
    /* Full around key's place: reuse the entry idle the longest, if idle for ten minutes (its
     * plugin is most likely gone; a late update from it only blurs the new entry's counts). */
    dc_plugin_metrics *victim = NULL;
    uint64_t vkey = 0, vlast = UINT64_MAX;
    uint32_t h = home(key, s->nmet);
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

static unsigned lat_bucket(uint64_t us)
{
    unsigned k = 0;
    while (k < DC_STORE_LAT_BUCKETS - 1 && us >= (2ull << k))
        k++;
    return k;
}

void dc_metrics_record(dc_plugin_metrics *m, dc_result r, uint64_t us, double now_ms_unix)
{
    if (!m)
        return;
    __atomic_fetch_add(&m->runs, 1, __ATOMIC_RELAXED);
    switch (r) {
    case DC_RESULT_ERROR:
    case DC_RESULT_DENIED:
        __atomic_fetch_add(&m->errors, 1, __ATOMIC_RELAXED);
        break;
    case DC_RESULT_QUOTA_INSTRUCTIONS:
        __atomic_fetch_add(&m->quota_instructions, 1, __ATOMIC_RELAXED);
        break;
    case DC_RESULT_QUOTA_TIME:
        __atomic_fetch_add(&m->quota_time, 1, __ATOMIC_RELAXED);
        break;
    case DC_RESULT_QUOTA_MEMORY:
        __atomic_fetch_add(&m->quota_memory, 1, __ATOMIC_RELAXED);
        break;
    case DC_RESULT_OK:
        break;
    }
    __atomic_fetch_add(&m->total_us, us, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->latency[lat_bucket(us)], 1, __ATOMIC_RELAXED);
    STORE_RLX(&m->last_ms_unix, now_ms_unix > 0 ? (uint64_t)now_ms_unix : 0);
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
    for (unsigned b = 0; b < DC_STORE_LAT_BUCKETS; b++) {
        cum += c[b];
        if (cum >= want)
            return 2ull << b;
    }
    return 2ull << (DC_STORE_LAT_BUCKETS - 1);
}

dc_plugin_metrics *dc_store_metrics_at(dc_store *s, uint32_t i, uint32_t *n)
{
    if (n)
        *n = s ? s->nmet : 0;
    return s && i < s->nmet ? &s->met[i] : NULL;
}
