/* shdict.c - the shared dictionaries' region: its layout (a header, then per dictionary a
 * header, a bucket array and an arena of entries), each dictionary's lock (an owner word: pid
 * and expiry, taken over from a holder that died, after which the dictionary is emptied since
 * its links may be half written), and the operations. Entries are placed one after another in
 * the arena; a removed entry leaves a hole that the next compaction closes; when live entries
 * leave too little room, the least recently used ones are evicted. Offsets, never pointers:
 * every process maps the region at an address of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shdict.h"

#define SHD_MAGIC 0x3154434944534344ull   /* "DCSDICT1" */
#define SHD_VERSION 1u
#define NONE 0xffffffffu
#define LOCK_TTL_MS 10000u     /* no operation holds a lock this long: past it, taken over */
#define LOCK_WAIT_MS 1000u     /* how long a caller waits for a live holder */

typedef struct shd_hdr {
    char name[DC_SHDICT_NAME_MAX + 1];
    uint64_t lock;             /* owner word: pid << 42 | expiry (monotonic ms) */
    uint64_t dirty;            /* 1 while a holder changes links: a dead one left them torn */
    uint64_t buckets_off;      /* from the region's start */
    uint64_t arena_off;
    uint64_t cap;              /* arena bytes: what entries may take */
    uint64_t top;              /* end of the last entry placed */
    uint64_t used;             /* bytes of live entries */
    uint32_t nbuckets;
    uint32_t count;
    uint32_t lru_head;         /* most recently used */
    uint32_t lru_tail;
    uint64_t pad[2];
} shd_hdr;

typedef struct region_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t n;
    uint64_t bytes;
    uint64_t pad[5];
} region_hdr;

typedef struct ent {
    uint32_t size;             /* bytes of the entry, header included, a multiple of 8 */
    uint32_t live;
    uint32_t hnext;            /* next entry of its bucket */
    uint32_t lprev, lnext;     /* LRU neighbours (towards head, towards tail) */
    uint32_t hash;
    uint32_t klen, vlen;
    uint32_t flags;
    uint32_t vtype;
    double expires;            /* Unix ms; 0: never */
    uint32_t fwd;              /* compaction: where the entry goes */
    uint32_t pad;
} ent;                         /* then klen key bytes, vlen value bytes */

_Static_assert(sizeof(ent) % 8 == 0, "entry header: whole words");
_Static_assert(sizeof(shd_hdr) % 8 == 0, "dict header: whole words");

struct dc_shdicts {
    unsigned char *base;
    uint32_t n;
    shd_hdr *h;
};

static uint64_t up8(uint64_t v)
{
    return (v + 7) & ~(uint64_t)7;
}

static uint32_t nbuckets_for(uint64_t cap)
{
    uint32_t nb = 16;
    while (nb < (1u << 20) && (uint64_t)nb * 256 < cap)
        nb <<= 1;
    return nb;
}

uint64_t dc_shd_entry_bytes(size_t klen, size_t vlen)
{
    return up8(sizeof(ent) + klen + vlen);
}

double dc_shd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- layout and attach ---- */

size_t dc_shdicts_region_size(const dc_shdict_decl *d, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t off = up8(sizeof(region_hdr) + (uint64_t)n * sizeof(shd_hdr));
    for (uint32_t i = 0; i < n; i++)
        off += up8((uint64_t)nbuckets_for(d[i].bytes) * 4) + up8(d[i].bytes);
    return (size_t)off;
}

static void dict_reset(unsigned char *base, shd_hdr *h)
{
    uint32_t *b = (uint32_t *)(base + h->buckets_off);
    for (uint32_t k = 0; k < h->nbuckets; k++)
        b[k] = NONE;
    h->top = 0;
    h->used = 0;
    h->count = 0;
    h->lru_head = h->lru_tail = NONE;
}

dc_rc dc_shdicts_attach(void *region, size_t size, int init, const dc_shdict_decl *d,
                        uint32_t n, dc_shdicts **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!region || n == 0 || n > DC_SHDICT_MAX || (uintptr_t)region % 8) {
        dc_set_err(err, errlen, "shared dictionaries: bad region or declarations");
        return DC_EINVAL;
    }
    size_t need = dc_shdicts_region_size(d, n);
    if (size < need) {
        dc_set_err(err, errlen, "shared dictionaries: a region of %zu bytes is too small "
                   "(%zu needed)", size, need);
        return DC_EINVAL;
    }
    unsigned char *base = region;
    region_hdr *rh = region;
    shd_hdr *hs = (shd_hdr *)(base + sizeof *rh);
    uint64_t off = up8(sizeof(region_hdr) + (uint64_t)n * sizeof(shd_hdr));
    if (init) {
        __atomic_store_n(&rh->magic, 0, __ATOMIC_RELEASE);
        memset(base, 0, (size_t)off);
    } else if (__atomic_load_n(&rh->magic, __ATOMIC_ACQUIRE) != SHD_MAGIC ||
               rh->version != SHD_VERSION || rh->n != n || rh->bytes != need) {
        dc_set_err(err, errlen, "shared dictionaries: the region is not formatted for these "
                   "declarations");
        return DC_ECORRUPT;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t nl = strlen(d[i].name);
        uint32_t nb = nbuckets_for(d[i].bytes);
        if (nl == 0 || nl > DC_SHDICT_NAME_MAX || d[i].bytes >= NONE) {
            dc_set_err(err, errlen, "shared dictionaries: bad declaration %u", (unsigned)i);
            return DC_EINVAL;
        }
        shd_hdr *h = &hs[i];
        if (init) {
            memcpy(h->name, d[i].name, nl + 1);
            h->buckets_off = off;
            h->nbuckets = nb;
            h->arena_off = off + up8((uint64_t)nb * 4);
            h->cap = d[i].bytes;
            dict_reset(base, h);
        } else if (strcmp(h->name, d[i].name) != 0 || h->cap != d[i].bytes ||
                   h->nbuckets != nb || h->buckets_off != off ||
                   h->arena_off != off + up8((uint64_t)nb * 4)) {
            dc_set_err(err, errlen, "shared dictionaries: the region is not formatted for "
                       "these declarations (dictionary \"%s\")", d[i].name);
            return DC_ECORRUPT;
        }
        off += up8((uint64_t)nb * 4) + up8(d[i].bytes);
    }
    if (init) {
        rh->version = SHD_VERSION;
        rh->n = n;
        rh->bytes = need;
        __atomic_store_n(&rh->magic, SHD_MAGIC, __ATOMIC_RELEASE);
    }
    dc_shdicts *s = calloc(1, sizeof *s);
    if (!s) {
        dc_set_err(err, errlen, "shared dictionaries: out of memory");
        return DC_ENOMEM;
    }
    s->base = base;
    s->n = n;
    s->h = hs;
    *out = s;
    return DC_OK;
}

void dc_shdicts_detach(dc_shdicts *s)
{
    free(s);
}

uint32_t dc_shdicts_count(const dc_shdicts *s)
{
    return s ? s->n : 0;
}

const char *dc_shdicts_name(const dc_shdicts *s, uint32_t i)
{
    return s && i < s->n ? s->h[i].name : NULL;
}

int dc_shdicts_find(const dc_shdicts *s, const char *name, size_t len)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        if (strlen(s->h[i].name) == len && memcmp(s->h[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* ---- the lock ---- */

#define TIME_BITS 42
#define TIME_MASK ((1ull << TIME_BITS) - 1)

static uint64_t mono_ms(void)
{
    return (uint64_t)dc_now_ms();
}

/* Takes h's lock; returns the word to give back, 0 when a live holder kept it. A holder that
 * died mid-change leaves dirty set: the dictionary is emptied, its links may be torn. */
static uint64_t lock_take(dc_shdicts *s, shd_hdr *h)
{
    int32_t self = (int32_t)getpid();
    uint64_t deadline = mono_ms() + LOCK_WAIT_MS;
    for (unsigned spin = 0;; spin++) {
        uint64_t now = mono_ms();
        uint64_t w = __atomic_load_n(&h->lock, __ATOMIC_ACQUIRE);
        int32_t holder = (int32_t)(w >> TIME_BITS);
        if (w == 0 || (w & TIME_MASK) <= now ||
            (spin % 16 == 0 && holder != self && dc_pid_gone(holder))) {
            uint64_t mine = (uint64_t)self << TIME_BITS | ((now + LOCK_TTL_MS) & TIME_MASK);
            if (__atomic_compare_exchange_n(&h->lock, &w, mine, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                if (__atomic_load_n(&h->dirty, __ATOMIC_ACQUIRE))
                    dict_reset(s->base, h);
                __atomic_store_n(&h->dirty, 1, __ATOMIC_RELEASE);
                return mine;
            }
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

static void lock_give(shd_hdr *h, uint64_t mine)
{
    __atomic_store_n(&h->dirty, 0, __ATOMIC_RELEASE);
    __atomic_compare_exchange_n(&h->lock, &mine, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

#ifdef DC_TESTING
void dc_shd_test_hold_lock(dc_shdicts *s, uint32_t i)
{
    if (s && i < s->n)
        (void)lock_take(s, &s->h[i]);
}
#endif

/* ---- entries ---- */

typedef struct dict {
    unsigned char *arena;
    uint32_t *buckets;
    shd_hdr *h;
    uint64_t *steps;
} dict;

static ent *at(const dict *d, uint32_t off)
{
    return (ent *)(d->arena + off);
}

static unsigned char *key_of(ent *e)
{
    return (unsigned char *)(e + 1);
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint64_t x = dc_hash64(k, n);
    return (uint32_t)(x ^ (x >> 32));
}

static void lru_unlink(dict *d, uint32_t off)
{
    ent *e = at(d, off);
    if (e->lprev != NONE)
        at(d, e->lprev)->lnext = e->lnext;
    else
        d->h->lru_head = e->lnext;
    if (e->lnext != NONE)
        at(d, e->lnext)->lprev = e->lprev;
    else
        d->h->lru_tail = e->lprev;
    e->lprev = e->lnext = NONE;
}

static void lru_front(dict *d, uint32_t off)
{
    ent *e = at(d, off);
    e->lprev = NONE;
    e->lnext = d->h->lru_head;
    if (d->h->lru_head != NONE)
        at(d, d->h->lru_head)->lprev = off;
    d->h->lru_head = off;
    if (d->h->lru_tail == NONE)
        d->h->lru_tail = off;
}

/* The offset of key's entry (expired ones too), NONE when absent; *prevp its bucket link. */
static uint32_t lookup(dict *d, const char *key, size_t klen, uint32_t hash, uint32_t **linkp)
{
    uint32_t *link = &d->buckets[hash & (d->h->nbuckets - 1)];
    while (*link != NONE) {
        ent *e = at(d, *link);
        (*d->steps)++;
        if (e->hash == hash && e->klen == klen && memcmp(key_of(e), key, klen) == 0) {
            if (linkp)
                *linkp = link;
            return *link;
        }
        link = &e->hnext;
    }
    return NONE;
}

static void remove_at(dict *d, uint32_t off)
{
    ent *e = at(d, off);
    uint32_t *link = &d->buckets[e->hash & (d->h->nbuckets - 1)];
    while (*link != NONE && *link != off)
        link = &at(d, *link)->hnext;
    if (*link == off)
        *link = e->hnext;
    lru_unlink(d, off);
    e->live = 0;
    d->h->used -= e->size;
    d->h->count--;
    if (off + e->size == d->h->top)
        d->h->top = off; /* the last one placed: its room is free again at once */
}

static int expired(const ent *e, double now_ms)
{
    return e->expires != 0 && e->expires <= now_ms;
}

/* Closes the holes: live entries slide down in arena order, links follow them. */
static void compact(dict *d)
{
    uint64_t top = d->h->top, w = 0;
    for (uint64_t off = 0; off < top;) {
        ent *e = at(d, (uint32_t)off);
        if (e->live) {
            e->fwd = (uint32_t)w;
            w += e->size;
        }
        off += e->size;
        (*d->steps)++;
    }
#define FWD(x) ((x) == NONE ? NONE : at(d, (x))->fwd)
    for (uint32_t k = 0; k < d->h->nbuckets; k++)
        d->buckets[k] = FWD(d->buckets[k]);
    d->h->lru_head = FWD(d->h->lru_head);
    d->h->lru_tail = FWD(d->h->lru_tail);
    for (uint64_t off = 0; off < top;) {
        ent *e = at(d, (uint32_t)off);
        if (e->live) {
            e->hnext = FWD(e->hnext);
            e->lprev = FWD(e->lprev);
            e->lnext = FWD(e->lnext);
        }
        off += e->size;
    }
#undef FWD
    for (uint64_t off = 0; off < top;) {
        ent *e = at(d, (uint32_t)off);
        uint32_t size = e->size;
        if (e->live && e->fwd != off)
            memmove(d->arena + e->fwd, e, size);
        off += size;
    }
    d->h->top = w;
    *d->steps += w / 64;
}

/* Makes room for need bytes at top: expired entries go first, then (unless safe) the least
 * recently used. Returns 0, or -1 when it cannot. */
static int make_room(dict *d, uint64_t need, int safe, double now_ms, int *forcible)
{
    if (need > d->h->cap) {
        /* cannot fit at all: OpenResty still evicts a few of the oldest entries trying (and
         * says so in forcible); so does this, that much and no more */
        for (int k = 0; k < 30 && !safe && d->h->lru_tail != NONE; k++) {
            remove_at(d, d->h->lru_tail);
            *forcible = 1;
        }
        return -1;
    }
    if (d->h->top + need <= d->h->cap)
        return 0;
    if (d->h->used + need > d->h->cap) {
        for (uint32_t off = d->h->lru_tail; off != NONE;) {
            uint32_t prev = at(d, off)->lprev;
            if (expired(at(d, off), now_ms))
                remove_at(d, off);
            off = prev;
            (*d->steps)++;
        }
    }
    while (d->h->used + need > d->h->cap) {
        if (safe || d->h->lru_tail == NONE)
            return -1;
        remove_at(d, d->h->lru_tail);
        *forcible = 1;
        (*d->steps)++;
    }
    if (d->h->top + need > d->h->cap)
        compact(d);
    return 0;
}

static void value_bytes(const dc_shval *v, const void **p, size_t *n, unsigned char *tmp)
{
    if (v->type == DC_SHV_STR) {
        *p = v->str;
        *n = v->len;
    } else if (v->type == DC_SHV_NUM) {
        memcpy(tmp, &v->num, sizeof v->num);
        *p = tmp;
        *n = sizeof v->num;
    } else {
        tmp[0] = v->num != 0;
        *p = tmp;
        *n = 1;
    }
}

/* Places a new entry (room made by the caller). */
static uint32_t place(dict *d, const char *key, size_t klen, uint32_t hash, const dc_shval *v,
                      double exp_ms)
{
    unsigned char tmp[8];
    const void *vp;
    size_t vn;
    value_bytes(v, &vp, &vn, tmp);
    uint32_t off = (uint32_t)d->h->top;
    ent *e = at(d, off);
    e->size = (uint32_t)dc_shd_entry_bytes(klen, vn);
    e->live = 1;
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vn;
    e->flags = v->flags;
    e->vtype = (uint32_t)v->type;
    e->expires = exp_ms;
    memcpy(key_of(e), key, klen);
    memcpy(key_of(e) + klen, vp, vn);
    uint32_t *b = &d->buckets[hash & (d->h->nbuckets - 1)];
    e->hnext = *b;
    *b = off;
    lru_front(d, off);
    d->h->top += e->size;
    d->h->used += e->size;
    d->h->count++;
    *d->steps += (klen + vn) / 64 + 1;
    return off;
}

/* ---- operations ---- */

/* Opens dictionary i under its lock; returns the word, 0 when busy. */
static uint64_t open_dict(dc_shdicts *s, uint32_t i, dict *d, uint64_t *steps)
{
    shd_hdr *h = &s->h[i];
    d->h = h;
    d->arena = s->base + h->arena_off;
    d->buckets = (uint32_t *)(s->base + h->buckets_off);
    d->steps = steps;
    return lock_take(s, h);
}

#define OPEN(s, i, d, steps, mine)                          \
    dict d;                                                 \
    if (!(s) || (i) >= (s)->n)                              \
        return DC_SHD_NOT_FOUND;                            \
    uint64_t mine = open_dict((s), (i), &d, (steps));       \
    if (!mine)                                              \
        return DC_SHD_BUSY

int dc_shd_get(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double now_ms,
               dc_shval *v, char *buf, size_t cap, size_t *need, uint64_t *steps)
{
    OPEN(s, i, d, steps, mine);
    memset(v, 0, sizeof *v);
    int rc = DC_SHD_OK;
    uint32_t off = lookup(&d, key, klen, hash_key(key, klen), NULL);
    if (off != NONE && expired(at(&d, off), now_ms)) {
        remove_at(&d, off);
        off = NONE;
    }
    if (off != NONE) {
        ent *e = at(&d, off);
        const unsigned char *vp = key_of(e) + e->klen;
        v->type = (int)e->vtype;
        v->flags = e->flags;
        if (e->vtype == DC_SHV_STR) {
            v->len = e->vlen;
            if (e->vlen > cap) {
                *need = e->vlen;
                rc = DC_SHD_TOO_SMALL;
            } else {
                memcpy(buf, vp, e->vlen);
                *steps += e->vlen / 64;
            }
        } else if (e->vtype == DC_SHV_NUM) {
            memcpy(&v->num, vp, sizeof v->num);
        } else {
            v->num = vp[0];
        }
        if (rc == DC_SHD_OK) {
            lru_unlink(&d, off);
            lru_front(&d, off);
        }
    }
    lock_give(d.h, mine);
    return rc;
}

int dc_shd_store(dc_shdicts *s, uint32_t i, int op, const char *key, size_t klen,
                 const dc_shval *v, double exp_ms, double now_ms, int *forcible, uint64_t *steps)
{
    *forcible = 0;
    OPEN(s, i, d, steps, mine);
    uint32_t hash = hash_key(key, klen);
    uint32_t off = lookup(&d, key, klen, hash, NULL);
    int rc = DC_SHD_OK;
    int live = off != NONE && !expired(at(&d, off), now_ms);
    if ((op == DC_SHD_ADD || op == DC_SHD_SAFE_ADD) && live && v->type != DC_SHV_NIL)
        rc = DC_SHD_EXISTS;
    else if (op == DC_SHD_REPLACE && !live)
        rc = DC_SHD_NOT_FOUND;
    if (rc == DC_SHD_OK) {
        if (off != NONE)
            remove_at(&d, off);
        if (v->type != DC_SHV_NIL) {
            size_t vn = v->type == DC_SHV_STR ? v->len : v->type == DC_SHV_NUM ? 8 : 1;
            int safe = op == DC_SHD_SAFE_SET || op == DC_SHD_SAFE_ADD;
            if (make_room(&d, dc_shd_entry_bytes(klen, vn), safe, now_ms, forcible) != 0)
                rc = DC_SHD_NO_MEMORY;
            else
                place(&d, key, klen, hash, v, exp_ms);
        }
    }
    lock_give(d.h, mine);
    return rc;
}

int dc_shd_incr(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double delta,
                int has_init, double init, double init_exp_ms, double now_ms, double *out,
                int *forcible, uint64_t *steps)
{
    *forcible = 0;
    OPEN(s, i, d, steps, mine);
    uint32_t hash = hash_key(key, klen);
    uint32_t off = lookup(&d, key, klen, hash, NULL);
    int rc = DC_SHD_OK;
    if (off != NONE && expired(at(&d, off), now_ms)) {
        remove_at(&d, off);
        off = NONE;
    }
    if (off == NONE) {
        if (!has_init) {
            rc = DC_SHD_NOT_FOUND;
        } else {
            dc_shval v = {.type = DC_SHV_NUM, .num = init + delta};
            if (make_room(&d, dc_shd_entry_bytes(klen, 8), 0, now_ms, forcible) != 0)
                rc = DC_SHD_NO_MEMORY;
            else
                place(&d, key, klen, hash, &v, init_exp_ms);
            *out = v.num;
        }
    } else if (at(&d, off)->vtype != DC_SHV_NUM) {
        rc = DC_SHD_NOT_NUMBER;
    } else {
        ent *e = at(&d, off);
        double x;
        memcpy(&x, key_of(e) + e->klen, sizeof x);
        x += delta;
        memcpy(key_of(e) + e->klen, &x, sizeof x);
        lru_unlink(&d, off);
        lru_front(&d, off);
        *out = x;
    }
    lock_give(d.h, mine);
    return rc;
}

int dc_shd_ttl(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double now_ms,
               double *ttl_s, uint64_t *steps)
{
    OPEN(s, i, d, steps, mine);
    uint32_t off = lookup(&d, key, klen, hash_key(key, klen), NULL);
    int rc = DC_SHD_OK;
    if (off == NONE || expired(at(&d, off), now_ms)) {
        rc = DC_SHD_NOT_FOUND;
    } else {
        double ex = at(&d, off)->expires;
        *ttl_s = ex == 0 ? 0 : (ex - now_ms) / 1e3;
    }
    lock_give(d.h, mine);
    return rc;
}

int dc_shd_expire(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double exp_ms,
                  double now_ms, uint64_t *steps)
{
    OPEN(s, i, d, steps, mine);
    uint32_t off = lookup(&d, key, klen, hash_key(key, klen), NULL);
    int rc = DC_SHD_OK;
    if (off == NONE || expired(at(&d, off), now_ms))
        rc = DC_SHD_NOT_FOUND;
    else
        at(&d, off)->expires = exp_ms;
    lock_give(d.h, mine);
    return rc;
}

int dc_shd_flush_all(dc_shdicts *s, uint32_t i, uint64_t *steps)
{
    OPEN(s, i, d, steps, mine);
    *steps += d.h->nbuckets / 64 + 1;
    dict_reset(s->base, d.h);
    lock_give(d.h, mine);
    return DC_SHD_OK;
}

int dc_shd_get_keys(dc_shdicts *s, uint32_t i, uint32_t max, double now_ms, char *buf,
                    size_t cap, size_t *need, uint32_t *nkeys, uint64_t *steps)
{
    OPEN(s, i, d, steps, mine);
    size_t len = 0;
    uint32_t n = 0;
    for (uint32_t off = d.h->lru_head; off != NONE && (max == 0 || n < max);) {
        ent *e = at(&d, off);
        (*steps)++;
        if (!expired(e, now_ms)) {
            if (len + 4 + e->klen <= cap) {
                uint32_t kl = e->klen;
                memcpy(buf + len, &kl, 4);
                memcpy(buf + len + 4, key_of(e), e->klen);
            }
            len += 4 + e->klen;
            *steps += e->klen / 64;
            n++;
        }
        off = e->lnext;
    }
    lock_give(d.h, mine);
    *nkeys = n;
    if (len > cap) {
        *need = len;
        return DC_SHD_TOO_SMALL;
    }
    *need = len;
    return DC_SHD_OK;
}

uint64_t dc_shd_free_space(dc_shdicts *s, uint32_t i)
{
    if (!s || i >= s->n)
        return 0;
    uint64_t used = __atomic_load_n(&s->h[i].used, __ATOMIC_RELAXED);
    return used < s->h[i].cap ? s->h[i].cap - used : 0;
}

uint64_t dc_shd_capacity(const dc_shdicts *s, uint32_t i)
{
    return s && i < s->n ? s->h[i].cap : 0;
}
