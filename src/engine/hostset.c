/* hostset.c - the matcher of hostset.h. Each pattern goes to the cheapest engine that gives
 * PCRE2's answer: a plain name or a few of them to the name index (hostset_names.c), a pattern
 * Hyperscan takes (bounded so that its compile stays short) to one Hyperscan database, the rest
 * to PCRE2. Also the scan over all three, and the matcher's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "hostset_int.h"

/* Hyperscan's compile is the slow part of a build (2 to 10 ms per pattern on the development
 * machine, more with counted repeats), so only a bounded share of a bundle goes to it: at most
 * this many patterns, each of bounded size and counted repeats, which keeps the compile within
 * a few hundred milliseconds whatever the bundle says. What does not fit is searched by PCRE2,
 * one by one, with the same answers (names, the common case, never reach either). */
#define HS_MAX_PATTERNS 64u
#define HS_MAX_PATTERN_BYTES 256u
#define HS_MAX_REPEAT 16u        /* any {m,n} number */
#define HS_MAX_REPEAT_TOTAL 32u  /* all of a pattern's {m,n} numbers added up */
#define HS_MAX_RETRIES 8         /* compiles after one refused a pattern we let through */

#define SER_MAGIC "DCHS"
#define SER_VERSION 1u

/* ---- Hyperscan ---- */

/* Counted repeats are what makes a Hyperscan compile long and large: "{m}", "{m,}", "{m,n}".
 * Read crudely (an escaped brace counts too): a pattern turned away here is still matched. */
static int hs_bounded(const char *p, size_t n)
{
    if (n > HS_MAX_PATTERN_BYTES || memchr(p, 0, n))
        return 0;
    unsigned total = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '{')
            continue;
        for (size_t j = i + 1; j < n && p[j] != '}'; j++) {
            if (p[j] < '0' || p[j] > '9')
                continue;
            unsigned v = 0;
            while (j < n && p[j] >= '0' && p[j] <= '9') {
                if (v > HS_MAX_REPEAT_TOTAL)
                    return 0;
                v = v * 10 + (unsigned)(p[j] - '0');
                j++;
            }
            if (v > HS_MAX_REPEAT || (total += v) > HS_MAX_REPEAT_TOTAL)
                return 0;
            j--;
        }
    }
    return 1;
}

/* Hyperscan takes it and it cannot match the empty string (Hyperscan reports those
 * differently): checked without compiling a database. */
static int hs_takes(const char *text)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    if (hs_expression_info(text, HS_FLAG_SINGLEMATCH, &info, &ce) != HS_SUCCESS) {
        hs_free_compile_error(ce);
        return 0;
    }
    int ok = info->min_width > 0;
    free(info); /* allocated with the default allocator, which is malloc */
    return ok;
}

/* Compiles the K_HS slots; a pattern refused at this stage moves to PCRE2 and the rest are
 * compiled again, a few times at most, then all of them go to PCRE2. */
static dc_rc compile_hs(dc_hostset *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->kind[i] == K_HS;
    if (!n)
        return DC_OK;
    const char **ex = malloc(n * sizeof *ex);
    unsigned *flags = malloc(n * sizeof *flags), *ids = malloc(n * sizeof *ids);
    if (!ex || !flags || !ids) {
        free(ex);
        free(flags);
        free(ids);
        return DC_ENOMEM;
    }
    for (int tries = 0;; tries++) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < s->n; i++)
            if (s->kind[i] == K_HS) {
                ex[k] = s->text[i];
                flags[k] = HS_FLAG_SINGLEMATCH;
                ids[k++] = i;
            }
        if (k == 0)
            break;
        hs_compile_error_t *ce = NULL;
        if (hs_compile_multi(ex, flags, ids, k, HS_MODE_BLOCK, NULL, &s->db, &ce) == HS_SUCCESS) {
            s->nhs = k;
            break;
        }
        int bad = ce ? ce->expression : -1;
        hs_free_compile_error(ce);
        s->db = NULL;
        if (bad >= 0 && (uint32_t)bad < k && tries < HS_MAX_RETRIES) {
            s->kind[ids[bad]] = K_PCRE;
            continue;
        }
        for (uint32_t i = 0; i < s->n; i++) /* no Hyperscan at all (a platform without it) */
            if (s->kind[i] == K_HS)
                s->kind[i] = K_PCRE;
        break;
    }
    free(ex);
    free(flags);
    free(ids);
    return DC_OK;
}


static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
    scan_ctx *c = ctx;
    if (id < c->s->n && c->s->kind[id] == K_HS)
        dc_hs_found(c, id);
    return 0;
}

/* ---- PCRE2, and the parts shared by build and deserialize ---- */

static dc_rc compile_pcre(dc_hostset *s, char *err, size_t errlen)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->kind[i] == K_PCRE;
    if (!n)
        return DC_OK;
    s->re = calloc(n, sizeof *s->re);
    s->reid = calloc(n, sizeof *s->reid);
    if (!s->re || !s->reid)
        return DC_ENOMEM;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->kind[i] != K_PCRE)
            continue;
        char rerr[200];
        if (dc_re_compile(s->text[i], s->tlen[i], &s->re[s->nre], rerr, sizeof rerr) != DC_OK) {
            dc_set_err(err, errlen, "host pattern %u: %s", i, rerr);
            return DC_EBUNDLE;
        }
        s->reid[s->nre++] = i;
    }
    return DC_OK;
}

static dc_hostset *alloc_set(uint32_t n)
{
    dc_hostset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n;
    s->kind = calloc(n ? n : 1, 1);
    s->text = calloc(n ? n : 1, sizeof *s->text);
    s->tlen = calloc(n ? n : 1, sizeof *s->tlen);
    if (!s->kind || !s->text || !s->tlen) {
        dc_hostset_free(s);
        return NULL;
    }
    return s;
}

void dc_hostset_free(dc_hostset *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->text && i < s->n; i++)
        free(s->text[i]);
    free(s->text);
    free(s->tlen);
    free(s->kind);
    dc_hs_names_free(s);
    hs_free_database(s->db);
    for (uint32_t i = 0; i < s->nre; i++)
        pcre2_code_free(s->re[i]);
    free(s->re);
    free(s->reid);
    free(s);
}

static dc_rc fail_free(dc_hostset *s, dc_rc rc, char *err, size_t errlen)
{
    if (rc == DC_ENOMEM)
        dc_set_err(err, errlen, "host patterns: out of memory");
    dc_hostset_free(s);
    return rc;
}

dc_rc dc_hostset_build(const char *const *pats, const size_t *lens, uint32_t n,
                       dc_hostset **out, char *err, size_t errlen)
{
    if (!out || (n && (!pats || !lens))) {
        dc_set_err(err, errlen, "dc_hostset_build: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    dc_hostset *s = alloc_set(n);
    if (!s)
        return fail_free(NULL, DC_ENOMEM, err, errlen);
    for (uint32_t i = 0; i < n; i++) {
        if (!pats[i])
            continue;
        if (!(s->text[i] = dc_strndup(pats[i], lens[i])))
            return fail_free(s, DC_ENOMEM, err, errlen);
        s->tlen[i] = lens[i];
    }
    dc_hs_mark_names(s);
    uint32_t nhs = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!s->text[i] || s->kind[i] == K_LIT)
            continue;
        if (nhs < HS_MAX_PATTERNS && hs_bounded(pats[i], lens[i]) && hs_takes(s->text[i])) {
            s->kind[i] = K_HS;
            nhs++;
        } else {
            s->kind[i] = K_PCRE;
        }
    }
    dc_rc rc = dc_hs_index_names(s);
    if (rc == DC_OK)
        rc = compile_hs(s);
    if (rc == DC_OK)
        rc = compile_pcre(s, err, errlen);
    if (rc != DC_OK)
        return fail_free(s, rc, err, errlen);
    *out = s;
    return DC_OK;
}

uint32_t dc_hostset_count(const dc_hostset *s)
{
    return s ? s->n : 0;
}

const char *dc_hostset_pattern(const dc_hostset *s, uint32_t i, size_t *len)
{
    if (len)
        *len = s && i < s->n ? s->tlen[i] : 0;
    return s && i < s->n ? s->text[i] : NULL;
}

void dc_hostset_info_get(const dc_hostset *s, dc_hostset_info *info)
{
    memset(info, 0, sizeof *info);
    if (!s)
        return;
    info->patterns = s->n;
    info->literals = s->nlit;
    info->hs = s->nhs;
    info->pcre = s->nre;
    if (s->db)
        (void)hs_database_size(s->db, &info->db_bytes);
    size_t nids = 0;
    for (uint32_t i = 0; i < s->nkeys; i++)
        nids += s->keys[i].nids;
    info->index_bytes = s->nkeys * sizeof *s->keys + nids * sizeof *s->lids +
                        (s->nkeys ? (s->tmask + 1) * sizeof *s->table : 0) +
                        (s->keys ? s->keys[s->nkeys ? s->nkeys - 1 : 0].off +
                                       s->keys[s->nkeys ? s->nkeys - 1 : 0].len : 0) +
                        (size_t)s->ac_n * (5 * sizeof(uint32_t) + 1) + sizeof s->ac_root;
}

/* ---- scanning ---- */

dc_rc dc_hostset_scratch_new(const dc_hostset *s, dc_hostset_scratch **out)
{
    *out = NULL;
    dc_hostset_scratch *scr = calloc(1, sizeof *scr);
    if (!scr)
        return DC_ENOMEM;
    if ((s && s->db && hs_alloc_scratch(s->db, &scr->hs) != HS_SUCCESS) ||
        (s && s->ac_n && !(scr->seen = calloc(s->ac_n, sizeof *scr->seen)))) {
        dc_hostset_scratch_free(scr);
        return DC_ENOMEM;
    }
    scr->nseen = s ? s->ac_n : 0;
    *out = scr;
    return DC_OK;
}

void dc_hostset_scratch_free(dc_hostset_scratch *scr)
{
    if (!scr)
        return;
    hs_free_scratch(scr->hs);
    free(scr->seen);
    free(scr);
}

int dc_hostset_match_list(const dc_hostset *s, dc_hostset_scratch *scr, const char *host,
                          size_t len, unsigned char *applies, uint32_t *found_ids)
{
    if (!s || (!host && len))
        return -1;
    if (!host)
        host = "";
    scan_ctx c = {s, applies, found_ids, 0};
    if (s->nlit)
        dc_hs_scan_names(s, scr, host, len, &c);
    if (s->db && len > 0) { /* its patterns cannot match an empty host */
        if (!scr || !scr->hs || len > UINT32_MAX ||
            hs_scan(s->db, host, (unsigned)len, 0, scr->hs, on_match, &c) != HS_SUCCESS) {
            for (int i = 0; found_ids && i < c.count; i++) /* applies back to all 0 */
                applies[found_ids[i]] = 0;
            return -1;
        }
    }
    for (uint32_t i = 0; i < s->nre; i++)
        /* a search that errs (PCRE2's match limit) applies nothing, as before */
        if (!applies[s->reid[i]] && dc_re_search(s->re[i], host, len, NULL) == 1)
            dc_hs_found(&c, s->reid[i]);
    return c.count;
}

int dc_hostset_match(const dc_hostset *s, dc_hostset_scratch *scr, const char *host,
                     size_t len, unsigned char *applies)
{
    if (s && s->n)
        memset(applies, 0, s->n);
    return dc_hostset_match_list(s, scr, host, len, applies, NULL);
}

/* ---- bytes ----
 *   "DCHS", u32 version, u32 slots, u32 0, then per slot u8 kind, u32 length, the pattern,
 *   then u64 length of the Hyperscan database and its serialized bytes (0 when none).
 * Little-endian. */

static void put32(dc_buf *b, uint32_t v, int *bad)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    *bad |= dc_buf_append(b, c, 4) != 0;
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

dc_rc dc_hostset_serialize(const dc_hostset *s, unsigned char **out, size_t *len)
{
    if (!s || !out || !len)
        return DC_EINVAL;
    *out = NULL;
    *len = 0;
    char *db = NULL;
    size_t dblen = 0;
    if (s->db && hs_serialize_database(s->db, &db, &dblen) != HS_SUCCESS)
        return DC_ENOMEM;
    dc_buf b = {0};
    int bad = dc_buf_append(&b, SER_MAGIC, 4) != 0;
    put32(&b, SER_VERSION, &bad);
    put32(&b, s->n, &bad);
    put32(&b, 0, &bad);
    for (uint32_t i = 0; i < s->n; i++) {
        unsigned char k = s->kind[i];
        bad |= dc_buf_append(&b, &k, 1) != 0;
        put32(&b, (uint32_t)s->tlen[i], &bad);
        if (s->tlen[i])
            bad |= dc_buf_append(&b, s->text[i], s->tlen[i]) != 0;
    }
    put32(&b, (uint32_t)dblen, &bad);
    put32(&b, (uint32_t)((uint64_t)dblen >> 32), &bad);
    if (dblen)
        bad |= dc_buf_append(&b, db, dblen) != 0;
    free(db);
    if (bad) {
        dc_buf_free(&b);
        return DC_ENOMEM;
    }
    *out = (unsigned char *)b.data;
    *len = b.len;
    return DC_OK;
}

static dc_rc refuse(dc_hostset *s, char *err, size_t errlen, const char *why)
{
    dc_set_err(err, errlen, "host patterns: %s", why);
    dc_hostset_free(s);
    return DC_EBUNDLE;
}

dc_rc dc_hostset_deserialize(const unsigned char *p, size_t len, dc_hostset **out, char *err,
                             size_t errlen)
{
    if (!out || (!p && len)) {
        dc_set_err(err, errlen, "dc_hostset_deserialize: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    if (len < 16 || memcmp(p, SER_MAGIC, 4) != 0)
        return refuse(NULL, err, errlen, "not a serialized matcher");
    if (get_le(p + 4, 4) != SER_VERSION)
        return refuse(NULL, err, errlen, "format version not read by this library");
    uint64_t n = get_le(p + 8, 4);
    size_t off = 16;
    if (n > (len - off) / 5) /* every slot takes 5 bytes at least */
        return refuse(NULL, err, errlen, "slot count past the end");
    dc_hostset *s = alloc_set((uint32_t)n);
    if (!s)
        return fail_free(NULL, DC_ENOMEM, err, errlen);
    uint32_t nhs = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 5)
            return refuse(s, err, errlen, "truncated");
        unsigned k = p[off];
        uint64_t tl = get_le(p + off + 1, 4);
        off += 5;
        if (k > K_PCRE || tl > len - off || (k == K_NONE && tl != 0))
            return refuse(s, err, errlen, "bad slot");
        s->kind[i] = (unsigned char)k;
        nhs += k == K_HS;
        if (k == K_NONE)
            continue;
        if (!(s->text[i] = dc_strndup((const char *)p + off, tl)))
            return fail_free(s, DC_ENOMEM, err, errlen);
        s->tlen[i] = tl;
        off += tl;
        if (k == K_HS && (memchr(s->text[i], 0, tl) || !hs_bounded(s->text[i], tl)))
            return refuse(s, err, errlen, "bad Hyperscan pattern");
    }
    if (len - off < 8)
        return refuse(s, err, errlen, "truncated");
    uint64_t dblen = get_le(p + off, 8);
    off += 8;
    if (dblen != len - off || (dblen == 0) != (nhs == 0) || nhs > HS_MAX_PATTERNS)
        return refuse(s, err, errlen, "database length does not fit");
    if (dblen) {
        if (hs_deserialize_database((const char *)p + off, dblen, &s->db) != HS_SUCCESS) {
            s->db = NULL;
            return refuse(s, err, errlen, "the Hyperscan database does not load (corrupt, or "
                                          "built by another Hyperscan version or CPU)");
        }
        s->nhs = nhs;
    }
    dc_rc rc = dc_hs_index_names(s);
    if (rc == DC_EBUNDLE)
        return refuse(s, err, errlen, "a plain-name slot is not a plain name");
    if (rc == DC_OK)
        rc = compile_pcre(s, err, errlen);
    if (rc != DC_OK)
        return fail_free(s, rc, err, errlen);
    *out = s;
    return DC_OK;
}
