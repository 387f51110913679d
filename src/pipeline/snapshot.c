/* snapshot.c - a loaded bundle (the model of bundle.h, bytecode included) as checksummed,
 * versioned little-endian bytes, and back (dc_snapshot_encode/decode), plus the 64-bit checksum
 * the shared store uses too. Relies on PCRE2 (skip list serialized) and on the host matcher's
 * own serialization (hostset.h), so that a worker compiles no domain regex.
 *
 * Format, version 3 (every integer little-endian; str = u32 length + bytes, no NUL; ostr = a
 * str whose length 0xFFFFFFFF means NULL):
 *   header   "DCSNAP1\0", u32 version (3), u32 flags (0), u64 total length (trailer included)
 *   bundle   u64 hash, u32 enabled, u32 nskip, u32 nplugins, u32 ndomains, u32 nproblems,
 *            u32 problems met in all, u32 has_version, i64 general.version; when nskip: u64 n + n bytes of pcre2_serialize_encode
 *            (all skips); u64 n + n bytes of dc_hostset_serialize (skips, then domains), n = 0
 *            for a bundle without a matcher (its domain regexes are then recompiled)
 *   plugin   str name, u8 phase, u8 skip, u8 has_id, u8 kept_previous, f64 sampling, i64 id,
 *            u64 quota.instructions, u32 quota.time_ms, u32 quota.memory_kb, u64 code_hash,
 *            u32 bclen + bytecode
 *   domain   str name, u32 n, n x u32 plugin index (the matcher holds its pattern)
 *   problem  u32 kind, ostr path, ostr domain, ostr plugin, ostr message
 *   trailer  u64 dc_checksum64 of every byte before it
 * Version 2 (the same without has_version and general.version) is still decoded, as a bundle
 * without a version.
 * The checksum detects corruption, not forgery: only our own processes write snapshots. Even so
 * the decoder checks every length, count and index against the buffer, so that bytes which pass
 * the checksum by accident still cannot make it read out of bounds or allocate without bound.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "store.h"

#define SNAP_MAGIC "DCSNAP1"  /* 8 bytes with the NUL */
#define SNAP_VERSION 3u
/* Still read: the same without general.version (what a zone kept across an nginx reload that
 * upgraded the module may hold). */
#define SNAP_VERSION_OLD 2u
#define SNAP_HEADER 24u
#define SNAP_TRAILER 8u
#define OSTR_NULL 0xFFFFFFFFu

/* Smallest encoding of each record: bounds a count read from the buffer before allocating. */
#define MIN_PLUGIN (4u + 4u + 8u + 8u + 8u + 4u + 4u + 8u + 4u)
#define MIN_DOMAIN (4u + 4u)
#define MIN_PROBLEM (4u + 4u * 4u)

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* ---- encoding ---- */

typedef struct enc {
    dc_buf b;
    int bad;    /* out of memory */
} enc;

static void put(enc *e, const void *p, size_t n)
{
    if (!e->bad && dc_buf_append(&e->b, p, n) != 0)
        e->bad = 1;
}

static void put_u8(enc *e, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(e, &c, 1);
}

static void put_u32(enc *e, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(e, c, 4);
}

static void put_u64(enc *e, uint64_t v)
{
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    put(e, c, 8);
}

static void put_f64(enc *e, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(e, v);
}

static void put_bytes(enc *e, const void *p, size_t n)
{
    put_u32(e, (uint32_t)n);
    put(e, p, n);
}

static void put_ostr(enc *e, const char *s)
{
    if (!s)
        put_u32(e, OSTR_NULL);
    else
        put_bytes(e, s, strlen(s));
}

/* Every length the format stores in 32 bits must fit. */
static int fits(const dc_bundle *b)
{
    for (uint32_t i = 0; i < b->nplugins; i++)
        if (!b->plugins[i].name || strlen(b->plugins[i].name) >= OSTR_NULL ||
            b->plugins[i].bclen >= OSTR_NULL || (!b->plugins[i].bc && b->plugins[i].bclen))
            return 0;
    for (uint32_t i = 0; i < b->ndomains; i++)
        if (!b->domains[i].name || strlen(b->domains[i].name) >= OSTR_NULL)
            return 0;
    return 1;
}

static dc_rc put_skip(enc *e, const dc_bundle *b)
{
    if (b->nskip == 0)
        return DC_OK;
    /* The model keeps the compiled skip regexes only, not their text: they travel as PCRE2's
     * own serialization (its header checks the library version on decode). */
    uint8_t *bytes = NULL;
    PCRE2_SIZE size = 0;
    int32_t n = pcre2_serialize_encode((const pcre2_code **)b->skip, (int32_t)b->nskip, &bytes,
                                       &size, NULL);
    if (n == PCRE2_ERROR_NOMEMORY)
        return DC_ENOMEM;
    if (n != (int32_t)b->nskip)
        return DC_EINVAL;
    put_u64(e, size);
    put(e, bytes, size);
    pcre2_serialize_free(bytes);
    return DC_OK;
}

static dc_rc put_hosts(enc *e, const dc_bundle *b)
{
    if (!b->hosts) {
        put_u64(e, 0);
        return DC_OK;
    }
    if (dc_hostset_count(b->hosts) != b->nskip + b->ndomains)
        return DC_EINVAL;
    unsigned char *bytes = NULL;
    size_t size = 0;
    dc_rc rc = dc_hostset_serialize(b->hosts, &bytes, &size);
    if (rc != DC_OK)
        return rc;
    put_u64(e, size);
    put(e, bytes, size);
    free(bytes);
    return DC_OK;
}

dc_rc dc_snapshot_encode(const dc_bundle *b, unsigned char **out, size_t *len)
{
    if (!b || !out || !len)
        return DC_EINVAL;
    *out = NULL;
    *len = 0;
    if (!fits(b))
        return DC_ELIMIT;
    enc e = {{0}, 0};
    put(&e, SNAP_MAGIC, 8);
    put_u32(&e, SNAP_VERSION);
    put_u32(&e, 0);
    put_u64(&e, 0); /* total length, patched below */
    put_u64(&e, b->hash);
    put_u32(&e, b->enabled ? 1 : 0);
    put_u32(&e, b->nskip);
    put_u32(&e, b->nplugins);
    put_u32(&e, b->ndomains);
    put_u32(&e, b->nproblems);
    put_u32(&e, b->problems_total); /* was reserved (0): older snapshots decode as before */
    put_u32(&e, b->has_version ? 1 : 0);
    put_u64(&e, (uint64_t)b->version);
    dc_rc rc = put_skip(&e, b);
    if (rc == DC_OK)
        rc = put_hosts(&e, b);
    if (rc != DC_OK) {
        dc_buf_free(&e.b);
        return rc;
    }
    for (uint32_t i = 0; i < b->nplugins; i++) {
        const dc_plugin *p = &b->plugins[i];
        put_bytes(&e, p->name, strlen(p->name));
        put_u8(&e, (unsigned)p->phase);
        put_u8(&e, p->skip ? 1 : 0);
        put_u8(&e, p->has_id ? 1 : 0);
        put_u8(&e, p->kept_previous ? 1 : 0);
        put_f64(&e, p->sampling);
        put_u64(&e, (uint64_t)p->id);
        put_u64(&e, p->quota.instructions);
        put_u32(&e, p->quota.time_ms);
        put_u32(&e, p->quota.memory_kb);
        put_u64(&e, p->code_hash);
        put_bytes(&e, p->bc, p->bclen);
    }
    for (uint32_t i = 0; i < b->ndomains; i++) {
        const dc_domain *d = &b->domains[i];
        put_bytes(&e, d->name, strlen(d->name));
        put_u32(&e, d->nplugins);
        for (uint32_t k = 0; k < d->nplugins; k++)
            put_u32(&e, d->plugins[k]);
    }
    for (uint32_t i = 0; i < b->nproblems; i++) {
        const dc_problem *p = &b->problems[i];
        put_u32(&e, (uint32_t)p->kind);
        put_ostr(&e, p->path);
        put_ostr(&e, p->domain);
        put_ostr(&e, p->plugin);
        put_ostr(&e, p->message);
    }
    put_u64(&e, 0); /* checksum, patched below */
    if (e.bad) {
        dc_buf_free(&e.b);
        return DC_ENOMEM;
    }
    unsigned char *d = (unsigned char *)e.b.data;
    uint64_t total = e.b.len;
    for (int i = 0; i < 8; i++)
        d[16 + i] = (unsigned char)(total >> (8 * i));
    uint64_t sum = dc_checksum64(d, e.b.len - SNAP_TRAILER);
    for (int i = 0; i < 8; i++)
        d[e.b.len - SNAP_TRAILER + i] = (unsigned char)(sum >> (8 * i));
    *out = d;
    *len = e.b.len;
    return DC_OK;
}

/* ---- decoding ---- */

typedef struct dec {
    const unsigned char *p;
    size_t off;
    size_t end;        /* the trailer's offset: nothing past it is read as content */
    char *err;
    size_t errlen;
    int failed;        /* first error wins */
    dc_rc rc;
    uint32_t format;   /* the snapshot's format version */
} dec;

static void fail(dec *d, dc_rc rc, const char *what)
{
    if (d->failed)
        return;
    d->failed = 1;
    d->rc = rc;
    if (rc == DC_ENOMEM)
        dc_set_err(d->err, d->errlen, "snapshot: out of memory");
    else
        dc_set_err(d->err, d->errlen, "snapshot: truncated or corrupt at byte %zu (%s)", d->off,
                   what);
}

/* The next n bytes, or NULL (and the decoder failed) when they are not all there. */
static const unsigned char *take(dec *d, size_t n, const char *what)
{
    if (d->failed)
        return NULL;
    if (n > d->end - d->off) {
        fail(d, DC_EBUNDLE, what);
        return NULL;
    }
    const unsigned char *r = d->p + d->off;
    d->off += n;
    return r;
}

static uint32_t get_u32(dec *d, const char *what)
{
    const unsigned char *c = take(d, 4, what);
    if (!c)
        return 0;
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

static uint64_t get_u64(dec *d, const char *what)
{
    const unsigned char *c = take(d, 8, what);
    return c ? load_le64(c) : 0;
}

static unsigned get_u8(dec *d, const char *what)
{
    const unsigned char *c = take(d, 1, what);
    return c ? c[0] : 0;
}

static double get_f64(dec *d, const char *what)
{
    uint64_t v = get_u64(d, what);
    double r;
    memcpy(&r, &v, 8);
    return r;
}

/* A str (never NULL) or ostr (may_null) as a new C string; NULL with *ok = 0 on failure. */
static char *get_str(dec *d, int may_null, const char *what, int *ok)
{
    uint32_t n = get_u32(d, what);
    *ok = !d->failed;
    if (d->failed)
        return NULL;
    if (n == OSTR_NULL && may_null)
        return NULL;
    const unsigned char *c = take(d, n, what);
    if (!c) {
        *ok = 0;
        return NULL;
    }
    char *s = dc_strndup((const char *)c, n);
    if (!s) {
        fail(d, DC_ENOMEM, what);
        *ok = 0;
    }
    return s;
}

/* A count of records of at least min bytes each: refused when they cannot all be there. */
static uint32_t get_count(dec *d, size_t min, const char *what)
{
    uint32_t n = get_u32(d, what);
    if (!d->failed && (uint64_t)n * min > d->end - d->off) {
        fail(d, DC_EBUNDLE, what);
        return 0;
    }
    return n;
}

static void *alloc_array(dec *d, uint32_t n, size_t size)
{
    if (d->failed || n == 0)
        return NULL;
    void *v = calloc(n, size);
    if (!v)
        fail(d, DC_ENOMEM, "arrays");
    return v;
}

static void dec_skip(dec *d, dc_bundle *b, uint32_t nskip)
{
    if (nskip == 0 || d->failed)
        return;
    uint64_t n = get_u64(d, "skip_domains length");
    if (d->failed)
        return;
    /* PCRE2's serialized form has a 16-byte header (magic, version, config, count) and the
     * character tables, then at least one code block per regex. */
    if (n < 16 || n > d->end - d->off) {
        fail(d, DC_EBUNDLE, "skip_domains length");
        return;
    }
    /* PCRE2 reads its header as a struct: give it an aligned copy. */
    const unsigned char *at = take(d, (size_t)n, "skip_domains");
    uint8_t *blob = malloc((size_t)n);
    if (!blob) {
        fail(d, DC_ENOMEM, "skip_domains");
        return;
    }
    memcpy(blob, at, (size_t)n);
    int32_t got = PCRE2_ERROR_BADSERIALIZEDDATA;
    if (pcre2_serialize_get_number_of_codes(blob) == (int32_t)nskip &&
        (b->skip = alloc_array(d, nskip, sizeof *b->skip)))
        got = pcre2_serialize_decode(b->skip, (int32_t)nskip, blob, NULL);
    free(blob);
    if (d->failed)
        return;
    if (got != (int32_t)nskip) {
        /* pcre2_serialize_decode frees what it decoded before failing */
        if (b->skip)
            memset(b->skip, 0, nskip * sizeof *b->skip);
        fail(d, got == PCRE2_ERROR_NOMEMORY ? DC_ENOMEM : DC_EBUNDLE, "skip_domains regexes");
        return;
    }
    b->nskip = nskip;
    if (dc_re_jit_enabled())
        for (uint32_t i = 0; i < nskip; i++)
            (void)pcre2_jit_compile(b->skip[i], PCRE2_JIT_COMPLETE);
}

static void dec_hosts(dec *d, dc_bundle *b)
{
    uint64_t n = get_u64(d, "host matcher length");
    if (d->failed || n == 0)
        return;
    if (n > d->end - d->off) {
        fail(d, DC_EBUNDLE, "host matcher length");
        return;
    }
    const unsigned char *at = take(d, (size_t)n, "host matcher");
    char herr[200];
    dc_rc rc = dc_hostset_deserialize(at, (size_t)n, &b->hosts, herr, sizeof herr);
    if (rc != DC_OK) {
        b->hosts = NULL;
        d->failed = 1;
        d->rc = rc == DC_ENOMEM ? DC_ENOMEM : DC_EBUNDLE;
        dc_set_err(d->err, d->errlen, "snapshot: %s", herr);
    }
}

/* The matcher's slots must be the skip list's and the domains': one per skip, then one per
 * domain holding its name ("*" none). */
static void check_hosts(dec *d, const dc_bundle *b)
{
    if (d->failed || !b->hosts)
        return;
    if (dc_hostset_count(b->hosts) != b->nskip + b->ndomains) {
        fail(d, DC_EBUNDLE, "host matcher slot count");
        return;
    }
    for (uint32_t i = 0; i < b->nskip + b->ndomains; i++) {
        size_t len = 0;
        const char *pat = dc_hostset_pattern(b->hosts, i, &len);
        const dc_domain *dom = i >= b->nskip ? &b->domains[i - b->nskip] : NULL;
        int ok = dom ? (dom->any ? !pat
                                 : pat && len == strlen(dom->name) &&
                                       memcmp(pat, dom->name, len) == 0)
                     : pat != NULL;
        if (!ok) {
            fail(d, DC_EBUNDLE, "host matcher slot does not fit its pattern");
            return;
        }
    }
}

static void dec_plugin(dec *d, dc_plugin *p)
{
    int ok;
    p->name = get_str(d, 0, "plugin name", &ok);
    unsigned phase = get_u8(d, "plugin phase");
    unsigned skip = get_u8(d, "plugin skip");
    unsigned has_id = get_u8(d, "plugin id flag");
    unsigned kept = get_u8(d, "plugin kept_previous");
    p->sampling = get_f64(d, "plugin sampling");
    p->id = (int64_t)get_u64(d, "plugin id");
    p->quota.instructions = get_u64(d, "plugin quota");
    p->quota.time_ms = get_u32(d, "plugin quota");
    p->quota.memory_kb = get_u32(d, "plugin quota");
    p->code_hash = get_u64(d, "plugin code hash");
    if (d->failed)
        return;
    if (phase >= DC_PHASE_COUNT || skip > 1 || has_id > 1 || kept > 1 ||
        !(p->sampling >= 0.0 && p->sampling <= 1.0)) {
        fail(d, DC_EBUNDLE, "plugin fields out of range");
        return;
    }
    p->phase = (dc_phase)phase;
    p->skip = (int)skip;
    p->has_id = (int)has_id;
    p->kept_previous = (int)kept;
    uint32_t n = get_u32(d, "plugin bytecode length");
    const unsigned char *bc = take(d, n, "plugin bytecode");
    if (!bc)
        return;
    p->bc = malloc(n ? n : 1); /* never NULL, as the loader makes it */
    if (!p->bc) {
        fail(d, DC_ENOMEM, "plugin bytecode");
        return;
    }
    memcpy(p->bc, bc, n);
    p->bclen = n;
}

static void dec_domain(dec *d, dc_domain *dom, uint32_t nplugins, int matched)
{
    int ok;
    dom->name = get_str(d, 0, "domain name", &ok);
    if (!ok)
        return;
    dom->nplugins = 0;
    uint32_t n = get_count(d, 4, "domain plugin count");
    dom->plugins = alloc_array(d, n, sizeof *dom->plugins);
    for (uint32_t k = 0; k < n && !d->failed; k++) {
        uint32_t idx = get_u32(d, "domain plugin index");
        if (!d->failed && idx >= nplugins)
            fail(d, DC_EBUNDLE, "domain plugin index out of range");
        else if (!d->failed)
            dom->plugins[dom->nplugins++] = idx;
    }
    if (d->failed)
        return;
    dom->any = strcmp(dom->name, "*") == 0;
    if (!dom->any && !matched) {
        char rerr[256];
        dc_rc rc = dc_re_compile(dom->name, strlen(dom->name), &dom->re, rerr, sizeof rerr);
        if (rc != DC_OK) {
            dom->re = NULL;
            d->failed = 1;
            d->rc = DC_EBUNDLE;
            dc_set_err(d->err, d->errlen, "snapshot: domain regex: %s", rerr);
        }
    }
}

static void dec_problem(dec *d, dc_problem *p)
{
    int ok;
    uint32_t kind = get_u32(d, "problem kind");
    if (!d->failed && (kind < DC_PROBLEM_PLUGIN_LEFT_OUT || kind > DC_PROBLEM_UNKNOWN_FIELD)) {
        fail(d, DC_EBUNDLE, "problem kind out of range");
        return;
    }
    p->kind = (dc_problem_kind)kind;
    p->path = get_str(d, 1, "problem path", &ok);
    p->domain = get_str(d, 1, "problem domain", &ok);
    p->plugin = get_str(d, 1, "problem plugin", &ok);
    p->message = get_str(d, 1, "problem message", &ok);
}

/* Header and checksum; on success d->off is at the body and d->end at the trailer. */
static int dec_envelope(dec *d, size_t len)
{
    if (len < SNAP_HEADER + SNAP_TRAILER) {
        dc_set_err(d->err, d->errlen, "snapshot: %zu bytes, too short to be one", len);
        return -1;
    }
    if (memcmp(d->p, SNAP_MAGIC, 8) != 0) {
        dc_set_err(d->err, d->errlen, "snapshot: bad magic (not a dynacode snapshot)");
        return -1;
    }
    uint32_t version = (uint32_t)(load_le64(d->p + 8) & 0xFFFFFFFFu);
    uint64_t total = load_le64(d->p + 16);
    if (version != SNAP_VERSION && version != SNAP_VERSION_OLD) {
        dc_set_err(d->err, d->errlen, "snapshot: format version %u, this library reads %u "
                   "and %u", version, SNAP_VERSION_OLD, SNAP_VERSION);
        return -1;
    }
    d->format = version;
    if (total != len) {
        dc_set_err(d->err, d->errlen, "snapshot: %zu bytes where its header says %llu%s", len,
                   (unsigned long long)total, total > len ? " (truncated)" : "");
        return -1;
    }
    if (dc_checksum64(d->p, len - SNAP_TRAILER) != load_le64(d->p + len - SNAP_TRAILER)) {
        dc_set_err(d->err, d->errlen, "snapshot checksum mismatch");
        return -1;
    }
    d->off = SNAP_HEADER;
    d->end = len - SNAP_TRAILER;
    return 0;
}

dc_rc dc_snapshot_decode(const unsigned char *data, size_t len, dc_bundle **out, char *err,
                         size_t errlen)
{
    if (!out || (!data && len)) {
        dc_set_err(err, errlen, "dc_snapshot_decode: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    dec d = {.p = data, .err = err, .errlen = errlen, .rc = DC_OK};
    if (dec_envelope(&d, len) != 0)
        return DC_EBUNDLE;
    dc_bundle *b = calloc(1, sizeof *b);
    if (!b) {
        dc_set_err(err, errlen, "snapshot: out of memory");
        return DC_ENOMEM;
    }
    atomic_init(&b->refs, 1);
    b->hash = get_u64(&d, "bundle hash");
    uint32_t enabled = get_u32(&d, "enabled");
    uint32_t nskip = get_count(&d, 1, "skip count");
    uint32_t np = get_count(&d, MIN_PLUGIN, "plugin count");
    uint32_t nd = get_count(&d, MIN_DOMAIN, "domain count");
    uint32_t nq = get_count(&d, MIN_PROBLEM, "problem count");
    uint32_t total = get_u32(&d, "problem total");
    uint32_t has_version = d.format >= 3 ? get_u32(&d, "has_version") : 0;
    uint64_t version = d.format >= 3 ? get_u64(&d, "version") : 0;
    if (!d.failed && (enabled > 1 || has_version > 1 || version > (1ull << 53) || (uint64_t)np * MIN_PLUGIN + (uint64_t)nd * MIN_DOMAIN +
                                         (uint64_t)nq * MIN_PROBLEM > d.end - d.off))
        fail(&d, DC_EBUNDLE, "counts");
    b->enabled = (int)enabled;
    b->has_version = (int)has_version;
    b->version = (int64_t)version;
    dec_skip(&d, b, nskip);
    dec_hosts(&d, b);
    /* The arrays are zeroed and counted in full at once, so that dc_bundle_unref frees a
     * partly decoded bundle whatever the point of failure. */
    if ((b->plugins = alloc_array(&d, np, sizeof *b->plugins)))
        b->nplugins = np;
    for (uint32_t i = 0; i < np && !d.failed; i++)
        dec_plugin(&d, &b->plugins[i]);
    if ((b->domains = alloc_array(&d, nd, sizeof *b->domains)))
        b->ndomains = nd;
    for (uint32_t i = 0; i < nd && !d.failed; i++)
        dec_domain(&d, &b->domains[i], np, b->hosts != NULL);
    check_hosts(&d, b);
    if ((b->problems = alloc_array(&d, nq, sizeof *b->problems)))
        b->nproblems = nq;
    for (uint32_t i = 0; i < nq && !d.failed; i++) {
        dec_problem(&d, &b->problems[i]);
        b->problems_left_out += b->problems[i].kind != DC_PROBLEM_UNKNOWN_FIELD;
    }
    /* Those past the ones kept are counted as left out: the cautious reading. */
    b->problems_total = total > nq ? total : nq;
    b->problems_left_out += b->problems_total - nq;
    if (!d.failed && d.off != d.end)
        fail(&d, DC_EBUNDLE, "unexpected bytes after the last record");
    if (d.failed) {
        dc_bundle_unref(b);
        return d.rc;
    }
    *out = b;
    return DC_OK;
}
