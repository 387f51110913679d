/* shdict.h - shared dictionaries (ngx.shared.NAME): one memory region holding every dictionary
 * a policy declares, formatted by one process and attached by every other, so that all of them
 * read and write the same entries. It knows nothing of Lua or nginx: the sandbox's API area
 * calls it, the hosts give it its region. Implemented by shdict.c.
 */
#ifndef DC_SHDICT_H
#define DC_SHDICT_H

#include "base.h"

#define DC_SHDICT_NAME_MAX 63          /* bytes of a dictionary's name */
#define DC_SHDICT_MAX 64               /* dictionaries in one region (a bit mask says which) */
#define DC_SHDICT_KEY_MAX 65535        /* bytes of a key */
#define DC_SHDICT_MIN_KB 8             /* the sizes a policy may declare */
#define DC_SHDICT_MAX_KB (1024u * 1024u)

typedef struct dc_shdicts dc_shdicts;

/* One declaration: the name and the bytes its entries may take. */
typedef struct dc_shdict_decl {
    const char *name;
    uint64_t bytes;
} dc_shdict_decl;

/* The bytes a region for these declarations needs (0 when n == 0). */
DC_HIDDEN size_t dc_shdicts_region_size(const dc_shdict_decl *d, uint32_t n);
/* Formats (init) or attaches a region of size bytes, 8-byte aligned, laid out for d[0..n).
 * Attaching checks that the region was formatted for the same declarations. The handle is
 * the caller's (dc_shdicts_detach), the region too. */
DC_HIDDEN dc_rc dc_shdicts_attach(void *region, size_t size, int init, const dc_shdict_decl *d,
                                  uint32_t n, dc_shdicts **out, char *err, size_t errlen);
DC_HIDDEN void dc_shdicts_detach(dc_shdicts *s);
/* The index of the dictionary named name, or -1. */
DC_HIDDEN int dc_shdicts_find(const dc_shdicts *s, const char *name, size_t len);
DC_HIDDEN uint32_t dc_shdicts_count(const dc_shdicts *s);
DC_HIDDEN const char *dc_shdicts_name(const dc_shdicts *s, uint32_t i);

/* A value: nil (absent), a string, a number or a boolean. */
enum { DC_SHV_NIL = 0, DC_SHV_STR = 1, DC_SHV_NUM = 2, DC_SHV_BOOL = 3 };
typedef struct dc_shval {
    int type;
    double num;          /* DC_SHV_NUM; DC_SHV_BOOL: 0 or 1 */
    const char *str;     /* DC_SHV_STR: in, the bytes to store; out, NULL (copied into buf) */
    size_t len;          /* DC_SHV_STR: the string's length */
    uint32_t flags;
} dc_shval;

/* What an operation answers. */
enum {
    DC_SHD_OK = 0,
    DC_SHD_NOT_FOUND,    /* replace, incr without init, ttl, expire: no such key */
    DC_SHD_EXISTS,       /* add: the key is there */
    DC_SHD_NO_MEMORY,    /* does not fit even after evicting (or safe_*: without evicting) */
    DC_SHD_NOT_NUMBER,   /* incr of a value that is not a number */
    DC_SHD_BUSY,         /* the dictionary's lock stayed held by a live process */
    DC_SHD_TOO_SMALL     /* the caller's buffer is too small: *need says how much */
};

/* How a write treats the key's presence and a full dictionary. */
enum { DC_SHD_SET = 0, DC_SHD_ADD, DC_SHD_REPLACE, DC_SHD_SAFE_SET, DC_SHD_SAFE_ADD };

/* Every operation takes now_ms (the wall clock, Unix ms) for expiry and adds to *steps the
 * entries it walked and bytes it copied (for the caller to charge). */

/* Finds key: v->type NIL when absent or expired; a string value is copied into buf (cap
 * bytes): DC_SHD_TOO_SMALL with *need when it does not fit. */
DC_HIDDEN int dc_shd_get(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double now_ms,
                         dc_shval *v, char *buf, size_t cap, size_t *need, uint64_t *steps);
/* Writes v (DC_SHV_NIL deletes) under op, expiring at exp_ms (Unix ms; 0: never). *forcible
 * is 1 when live entries were evicted to make room. */
DC_HIDDEN int dc_shd_store(dc_shdicts *s, uint32_t i, int op, const char *key, size_t klen,
                           const dc_shval *v, double exp_ms, double now_ms, int *forcible,
                           uint64_t *steps);
/* Adds delta to the number at key; when absent and has_init, stores init + delta (expiring at
 * init_exp_ms, 0: never). */
DC_HIDDEN int dc_shd_incr(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double delta,
                          int has_init, double init, double init_exp_ms, double now_ms,
                          double *out, int *forcible, uint64_t *steps);
/* The seconds key has left (*ttl_s; 0: it never expires). */
DC_HIDDEN int dc_shd_ttl(dc_shdicts *s, uint32_t i, const char *key, size_t klen, double now_ms,
                         double *ttl_s, uint64_t *steps);
/* Sets when key expires (exp_ms 0: never). */
DC_HIDDEN int dc_shd_expire(dc_shdicts *s, uint32_t i, const char *key, size_t klen,
                            double exp_ms, double now_ms, uint64_t *steps);
/* Removes every entry. */
DC_HIDDEN int dc_shd_flush_all(dc_shdicts *s, uint32_t i, uint64_t *steps);
/* Copies at most max (0: all) keys that have not expired into buf as records (u32 length,
 * then the bytes); *nkeys says how many. DC_SHD_TOO_SMALL with *need when they do not fit. */
DC_HIDDEN int dc_shd_get_keys(dc_shdicts *s, uint32_t i, uint32_t max, double now_ms, char *buf,
                              size_t cap, size_t *need, uint32_t *nkeys, uint64_t *steps);
/* Bytes still free for entries; the capacity. */
DC_HIDDEN uint64_t dc_shd_free_space(dc_shdicts *s, uint32_t i);
DC_HIDDEN uint64_t dc_shd_capacity(const dc_shdicts *s, uint32_t i);
/* The bytes one entry of these sizes takes from its dictionary. */
DC_HIDDEN uint64_t dc_shd_entry_bytes(size_t klen, size_t vlen);
/* The wall clock (CLOCK_REALTIME) in ms, which expiry is measured against. */
DC_HIDDEN double dc_shd_now_ms(void);

#ifdef DC_TESTING
/* Tests only: takes dictionary i's lock and never gives it back (to play a holder that dies). */
DC_HIDDEN void dc_shd_test_hold_lock(dc_shdicts *s, uint32_t i);
#endif

#endif /* DC_SHDICT_H */
