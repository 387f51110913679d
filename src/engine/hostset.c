/* hostset.c - the matcher of hostset.h. Each pattern goes to the cheapest engine that gives
 * PCRE2's answer: a plain name (anchored or not) to a hash index of names, a pattern Hyperscan
 * takes (bounded so that its compile stays short) to one Hyperscan database, the rest to PCRE2.
 */
#include <stdlib.h>
#include <string.h>

#include <hs.h>

#include "hostset.h"

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
#define HASH_MUL 0x100000001b3ull

enum { K_NONE, K_LIT, K_HS, K_PCRE };
/* where a plain name must sit in the host: anywhere, at the start, at the end, the whole */
enum { A_SUB, A_PRE, A_SUF, A_EXACT, A_COUNT };

typedef struct lit_key {
    uint64_t h;          /* poly hash of the bytes */
    uint32_t off, len;   /* in lbytes */
    uint32_t ids, nids;  /* in lids */
    uint32_t anch;
} lit_key;

struct dc_hostset {
    uint32_t n;
    unsigned char *kind;     /* per slot */
    char **text;             /* per slot, NUL-terminated copy (NULL for K_NONE) */
    size_t *tlen;
    /* the name index */
    char *lbytes;            /* unescaped names, one after the other */
    lit_key *keys;           /* distinct (anchor, name) */
    uint32_t nkeys;
    uint32_t *lids;          /* slots of each key, grouped */
    uint32_t *table;         /* key index + 1, 0 empty; open addressing */
    uint32_t tmask;
    uint32_t *lens[A_COUNT]; /* distinct name lengths per anchor, ascending */
    uint32_t nlens[A_COUNT];
    /* the names found anywhere, as an Aho-Corasick automaton: node 0 is the root */
    uint32_t ac_n;
    uint32_t *ac_fail;       /* longest proper suffix that is a node */
    uint32_t *ac_dict;       /* nearest node on the fail chain that ends a name, 0 none */
    uint32_t *ac_key;        /* key index + 1 of the name ending here, 0 none */
    uint64_t *ac_ek;         /* while building, edges: (node << 8 | byte) + 1, 0 empty */
    uint32_t *ac_ev;         /* while building, the child of each edge */
    uint32_t ac_emask;
    uint32_t ac_root[256];   /* the root's children, by byte (0 none) */
    uint32_t *ac_first;      /* per node + 1: where its children start in ac_cbyte/ac_cnode */
    unsigned char *ac_cbyte;
    uint32_t *ac_cnode;
    /* Hyperscan */
    hs_database_t *db;
    uint32_t nhs;
    /* PCRE2 */
    pcre2_code **re;
    uint32_t *reid;
    uint32_t nre;
    uint32_t nlit;
};

struct dc_hostset_scratch {
    hs_scratch_t *hs;
    uint32_t *seen;          /* per automaton node: the scan that last reported it */
    uint32_t nseen;
    uint32_t stamp;
};

/* ---- plain names ---- */

static int is_meta(unsigned char c)
{
    return c && strchr(".^$[]|()?*+{}\\", c) != NULL;
}

/* ---- plain names, and the finite sets of them ----
 * A pattern whose language is a few plain strings, each to be found anywhere, at the start, at
 * the end or as the whole host, is answered by the name index: "site1\\.example\\.com",
 * "^(www\\.)?shop\\.example\\.(com|net)$". The grammar taken, anything else being left to the
 * regex engines:
 *   pattern  "^"? seq "$"?          (the anchors only there)
 *   seq      (atom "?"?)*
 *   atom     byte that is not a metacharacter | "\" ASCII punctuation or space
 *            | "(" ("?:")? seq ("|" seq)* ")"
 * A search of such a pattern finds a match exactly when one of its strings sits where the
 * anchors say, whatever order PCRE2 tries the alternatives in. */

#define EX_MAX 32u     /* strings one pattern may expand to */
#define EX_LEN 256u    /* bytes of one string */
#define EX_DEPTH 8     /* nested groups */

typedef struct xset {
    uint32_t n;
    uint32_t len[EX_MAX];
    char s[EX_MAX][EX_LEN];
} xset;

static int ex_alt(const char *p, size_t n, size_t *i, int depth, xset *out);

/* out = out x atom (every string of out followed by every string of atom); 0 past the bounds */
static int ex_product(xset *out, const xset *atom, xset *tmp)
{
    if ((uint64_t)out->n * atom->n > EX_MAX)
        return 0;
    tmp->n = 0;
    for (uint32_t a = 0; a < out->n; a++)
        for (uint32_t b = 0; b < atom->n; b++) {
            uint32_t l = out->len[a] + atom->len[b];
            if (l > EX_LEN)
                return 0;
            memcpy(tmp->s[tmp->n], out->s[a], out->len[a]);
            memcpy(tmp->s[tmp->n] + out->len[a], atom->s[b], atom->len[b]);
            tmp->len[tmp->n++] = l;
        }
    out->n = tmp->n;
    for (uint32_t k = 0; k < tmp->n; k++) {
        memcpy(out->s[k], tmp->s[k], tmp->len[k]);
        out->len[k] = tmp->len[k];
    }
    return 1;
}

static int ex_punct(unsigned char e)
{
    return (e >= 0x21 && e <= 0x2f) || (e >= 0x3a && e <= 0x40) || (e >= 0x5b && e <= 0x60) ||
           (e >= 0x7b && e <= 0x7e) || e == ' ';
}

/* A sequence up to "|", ")" or the end; at depth 0 a "$" as the last byte ends it too. A
 * plain byte is appended to every string; groups and "?" take a product. */
static int ex_seq(const char *p, size_t n, size_t *i, int depth, xset *out)
{
    xset *atom = NULL, *tmp = NULL;
    int ok = 1;
    out->n = 1;
    out->len[0] = 0;
    while (ok && *i < n) {
        unsigned char c = (unsigned char)p[*i];
        if (c == '|' || c == ')' || (c == '$' && depth == 0 && *i == n - 1))
            break;
        char ch = 0;
        int single = 1;
        if (c == '(') {
            single = 0;
            (*i)++;
            if (*i + 1 < n && p[*i] == '?' && p[*i + 1] == ':')
                *i += 2;
            ok = depth < EX_DEPTH && (atom || (atom = malloc(sizeof *atom))) &&
                 ex_alt(p, n, i, depth + 1, atom) && *i < n && p[*i] == ')';
            (*i)++;
        } else if (c == '\\') {
            ok = *i + 1 < n && ex_punct((unsigned char)p[*i + 1]);
            ch = ok ? p[*i + 1] : 0;
            *i += 2;
        } else {
            ok = !is_meta(c);
            ch = (char)c;
            (*i)++;
        }
        int opt = ok && *i < n && p[*i] == '?';
        if (opt) { /* optional: the empty string joins (greedy only) */
            (*i)++;
            ok = !(*i < n && (p[*i] == '?' || p[*i] == '+'));
        }
        if (!ok)
            break;
        if (single && !opt) {
            for (uint32_t k = 0; ok && k < out->n; k++) {
                ok = out->len[k] < EX_LEN;
                if (ok)
                    out->s[k][out->len[k]++] = ch;
            }
            continue;
        }
        if (!atom && !(atom = malloc(sizeof *atom))) {
            ok = 0;
            break;
        }
        if (single) {
            atom->n = 1;
            atom->len[0] = 1;
            atom->s[0][0] = ch;
        }
        if (opt) {
            ok = atom->n < EX_MAX;
            if (ok)
                atom->len[atom->n++] = 0;
        }
        ok = ok && (tmp || (tmp = malloc(sizeof *tmp))) && ex_product(out, atom, tmp);
    }
    free(atom);
    free(tmp);
    return ok;
}

static int ex_alt(const char *p, size_t n, size_t *i, int depth, xset *out)
{
    if (!ex_seq(p, n, i, depth, out))
        return 0;
    xset *more = NULL;
    int ok = 1;
    while (ok && *i < n && p[*i] == '|') {
        (*i)++;
        ok = depth > 0 && (more || (more = malloc(sizeof *more))) &&
             ex_seq(p, n, i, depth, more) && out->n + more->n <= EX_MAX;
        for (uint32_t k = 0; ok && k < more->n; k++) {
            memcpy(out->s[out->n], more->s[k], more->len[k]);
            out->len[out->n++] = more->len[k];
        }
    }
    free(more);
    return ok;
}

/* The strings of a pattern of the grammar above, and where they must sit; 0 when it is not
 * one (or expands past the bounds). */
static int plain_names(const char *p, size_t n, xset *out, uint32_t *anch)
{
    size_t i = 0;
    int pre = n > 0 && p[0] == '^';
    i = (size_t)pre;
    if (!ex_seq(p, n, &i, 0, out))
        return 0;
    int suf = i == n - 1 && n > (size_t)pre && p[i] == '$';
    if (i + (size_t)suf != n)
        return 0;
    *anch = pre && suf ? A_EXACT : pre ? A_PRE : suf ? A_SUF : A_SUB;
    return 1;
}

static uint64_t poly(const unsigned char *p, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * HASH_MUL + p[i];
    return h;
}

static uint32_t slot_of(uint64_t h, uint32_t anch, uint32_t len, uint32_t mask)
{
    uint64_t x = h ^ ((uint64_t)anch << 56) ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x & mask;
}

static const lit_key *lookup(const dc_hostset *s, uint32_t anch, const char *p, uint32_t len,
                             uint64_t h)
{
    for (uint32_t i = slot_of(h, anch, len, s->tmask);; i = (i + 1) & s->tmask) {
        uint32_t k = s->table[i];
        if (!k)
            return NULL;
        const lit_key *key = &s->keys[k - 1];
        if (key->h == h && key->len == len && key->anch == anch &&
            memcmp(s->lbytes + key->off, p, len) == 0)
            return key;
    }
}

typedef struct lit_tmp {
    uint32_t slot, off, len, anch;
    uint64_t h;
} lit_tmp;

/* Orders (anchor, length, bytes, slot); ctx is the bytes the offsets point into. */
static int tmp_cmp(const void *a, const void *b, void *ctx)
{
    const lit_tmp *x = a, *y = b;
    const char *tmp_bytes = ctx;
    if (x->anch != y->anch)
        return x->anch < y->anch ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(tmp_bytes + x->off, tmp_bytes + y->off, x->len);
    if (c)
        return c;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the automaton of the names found anywhere ----
 * Probing every window of every distinct name length costs the host's length times the number
 * of lengths (64 lengths and a 4 KB host: 2 ms); the automaton reads each host byte once and
 * reports each name once per scan, whatever the names. */

static uint64_t edge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static uint32_t ac_child(const dc_hostset *s, uint32_t node, unsigned char c)
{
    uint64_t k = ((uint64_t)node << 8 | c) + 1;
    for (uint32_t i = (uint32_t)edge_hash(k) & s->ac_emask;; i = (i + 1) & s->ac_emask) {
        if (s->ac_ek[i] == k)
            return s->ac_ev[i];
        if (!s->ac_ek[i])
            return 0;
    }
}

/* The child of node by byte c once built, 0 when none. */
static uint32_t ac_next(const dc_hostset *s, uint32_t node, unsigned char c)
{
    if (node == 0)
        return s->ac_root[c];
    for (uint32_t e = s->ac_first[node]; e < s->ac_first[node + 1]; e++)
        if (s->ac_cbyte[e] == c)
            return s->ac_cnode[e];
    return 0;
}

static void ac_add_edge(dc_hostset *s, uint32_t node, unsigned char c, uint32_t child)
{
    uint64_t k = ((uint64_t)node << 8 | c) + 1;
    uint32_t i = (uint32_t)edge_hash(k) & s->ac_emask;
    while (s->ac_ek[i])
        i = (i + 1) & s->ac_emask;
    s->ac_ek[i] = k;
    s->ac_ev[i] = child;
}

/* Builds the automaton from the keys anchored nowhere (sorted first: A_SUB is 0). */
static dc_rc ac_build(dc_hostset *s)
{
    uint32_t nsub = 0;
    size_t bytes = 0;
    while (nsub < s->nkeys && s->keys[nsub].anch == A_SUB)
        bytes += s->keys[nsub++].len;
    if (nsub == 0)
        return DC_OK;
    if (bytes >= UINT32_MAX / 4)
        return DC_ENOMEM;
    uint32_t max = (uint32_t)bytes + 1, cap = 16;
    while (cap < max + max / 2)
        cap <<= 1;
    uint32_t *parent = malloc(max * sizeof *parent), *depth = malloc(max * sizeof *depth);
    uint32_t *order = malloc(max * sizeof *order), *bydepth = NULL;
    unsigned char *pbyte = malloc(max);
    s->ac_fail = calloc(max, sizeof *s->ac_fail);
    s->ac_dict = calloc(max, sizeof *s->ac_dict);
    s->ac_key = calloc(max, sizeof *s->ac_key);
    s->ac_ek = calloc(cap, sizeof *s->ac_ek);
    s->ac_ev = malloc(cap * sizeof *s->ac_ev);
    s->ac_emask = cap - 1;
    dc_rc rc = DC_ENOMEM;
    if (!parent || !depth || !order || !pbyte || !s->ac_fail || !s->ac_dict || !s->ac_key ||
        !s->ac_ek || !s->ac_ev)
        goto out;
    uint32_t n = 1, maxdepth = 0;
    depth[0] = 0;
    for (uint32_t k = 0; k < nsub; k++) {
        const unsigned char *p = (const unsigned char *)s->lbytes + s->keys[k].off;
        uint32_t node = 0;
        for (uint32_t j = 0; j < s->keys[k].len; j++) {
            uint32_t ch = ac_child(s, node, p[j]);
            if (!ch) {
                ch = n++;
                parent[ch] = node;
                pbyte[ch] = p[j];
                depth[ch] = depth[node] + 1;
                if (depth[ch] > maxdepth)
                    maxdepth = depth[ch];
                ac_add_edge(s, node, p[j], ch);
            }
            node = ch;
        }
        s->ac_key[node] = k + 1;
    }
    s->ac_n = n;
    /* breadth first: nodes by depth (a counting sort) */
    if (!(bydepth = calloc((size_t)maxdepth + 2, sizeof *bydepth)))
        goto out;
    for (uint32_t v = 0; v < n; v++)
        bydepth[depth[v] + 1]++;
    for (uint32_t d = 1; d <= maxdepth + 1; d++)
        bydepth[d] += bydepth[d - 1];
    for (uint32_t v = 0; v < n; v++)
        order[bydepth[depth[v]]++] = v;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = order[i], p = parent[v], f = 0;
        if (p != 0) {
            for (f = s->ac_fail[p];; f = s->ac_fail[f]) {
                uint32_t ch = ac_child(s, f, pbyte[v]);
                if (ch) {
                    f = ch;
                    break;
                }
                if (f == 0)
                    break;
            }
        }
        s->ac_fail[v] = f;
        s->ac_dict[v] = f && s->ac_key[f] ? f : s->ac_dict[f];
    }
    /* the edges as arrays per node (a third of the hash table's memory); the root's by byte */
    s->ac_first = calloc((size_t)n + 1, sizeof *s->ac_first);
    s->ac_cbyte = malloc(n);
    s->ac_cnode = malloc((size_t)n * sizeof *s->ac_cnode);
    if (!s->ac_first || !s->ac_cbyte || !s->ac_cnode)
        goto out;
    for (uint32_t v = 1; v < n; v++)
        s->ac_first[parent[v] + 1]++;
    for (uint32_t v = 0; v < n; v++)
        s->ac_first[v + 1] += s->ac_first[v];
    for (uint32_t v = 0; v < n; v++) /* order[] is free again: a fill cursor per node */
        order[v] = s->ac_first[v];
    for (uint32_t v = 1; v < n; v++) {
        uint32_t e = order[parent[v]]++;
        s->ac_cbyte[e] = pbyte[v];
        s->ac_cnode[e] = v;
        if (parent[v] == 0)
            s->ac_root[pbyte[v]] = v;
    }
    free(s->ac_ek);
    free(s->ac_ev);
    s->ac_ek = NULL;
    s->ac_ev = NULL;
    rc = DC_OK;
out:
    free(parent);
    free(depth);
    free(order);
    free(pbyte);
    free(bydepth);
    return rc;
}

/* Builds the name index from the K_LIT slots. DC_EBUNDLE when one is not of the grammar. */
static dc_rc index_names(dc_hostset *s)
{
    uint32_t nl = 0, cap = 0;
    for (uint32_t i = 0; i < s->n; i++)
        nl += s->kind[i] == K_LIT;
    s->nlit = nl;
    if (nl == 0)
        return DC_OK;
    xset *x = malloc(sizeof *x);
    dc_buf bytes = {0};
    lit_tmp *t = NULL;
    uint32_t k = 0;
    dc_rc rc = x ? DC_OK : DC_ENOMEM;
    for (uint32_t i = 0; i < s->n && rc == DC_OK; i++) {
        uint32_t anch = 0;
        if (s->kind[i] != K_LIT)
            continue;
        if (!plain_names(s->text[i], s->tlen[i], x, &anch)) {
            rc = DC_EBUNDLE;
            break;
        }
        if (k + x->n > cap) {
            uint32_t nc = cap ? cap * 2 : 64;
            while (nc < k + x->n)
                nc *= 2;
            lit_tmp *v = realloc(t, nc * sizeof *v);
            if (!v) {
                rc = DC_ENOMEM;
                break;
            }
            t = v;
            cap = nc;
        }
        for (uint32_t j = 0; j < x->n; j++) {
            t[k++] = (lit_tmp){i, (uint32_t)bytes.len, x->len[j], anch,
                               poly((const unsigned char *)x->s[j], x->len[j])};
            if (dc_buf_append(&bytes, x->s[j], x->len[j]) != 0 || bytes.len > UINT32_MAX) {
                rc = DC_ENOMEM;
                break;
            }
        }
    }
    free(x);
    s->lbytes = bytes.data;
    uint32_t tcap = 16;
    while (rc == DC_OK && tcap < 2 * k)
        tcap <<= 1;
    if (rc == DC_OK) {
        if (!s->lbytes && !(s->lbytes = malloc(1)))
            rc = DC_ENOMEM;
        s->lids = calloc(k, sizeof *s->lids);
        s->keys = calloc(k, sizeof *s->keys);
        s->table = calloc(tcap, sizeof *s->table);
        s->tmask = tcap - 1;
        if (!s->lids || !s->keys || !s->table)
            rc = DC_ENOMEM;
    }
    if (rc != DC_OK) {
        free(t);
        return rc;
    }
    qsort_r(t, k, sizeof *t, tmp_cmp, s->lbytes);
    uint32_t nk = 0;
    for (uint32_t i = 0; i < k; i++) {
        const lit_tmp *y = &t[i];
        if (i == 0 || tmp_cmp(&(lit_tmp){0, y->off, y->len, y->anch, 0},
                              &(lit_tmp){0, t[i - 1].off, t[i - 1].len, t[i - 1].anch, 0},
                              s->lbytes)) {
            s->keys[nk++] = (lit_key){y->h, y->off, y->len, i, 0, y->anch};
        }
        s->keys[nk - 1].nids++;
        s->lids[i] = y->slot;
    }
    s->nkeys = nk;
    free(t);
    for (uint32_t i = 0; i < nk; i++) {
        const lit_key *key = &s->keys[i];
        uint32_t j = slot_of(key->h, key->anch, key->len, s->tmask);
        while (s->table[j])
            j = (j + 1) & s->tmask;
        s->table[j] = i + 1;
    }
    /* distinct lengths per anchor: keys are sorted by anchor, then length */
    for (uint32_t a = 0; a < A_COUNT; a++) {
        uint32_t c = 0;
        for (uint32_t i = 0; i < nk; i++)
            c += s->keys[i].anch == a && (i == 0 || s->keys[i - 1].anch != a ||
                                          s->keys[i - 1].len != s->keys[i].len);
        if (!c)
            continue;
        if (!(s->lens[a] = malloc(c * sizeof *s->lens[a])))
            return DC_ENOMEM;
        for (uint32_t i = 0; i < nk; i++)
            if (s->keys[i].anch == a && (i == 0 || s->keys[i - 1].anch != a ||
                                         s->keys[i - 1].len != s->keys[i].len))
                s->lens[a][s->nlens[a]++] = s->keys[i].len;
        qsort(s->lens[a], s->nlens[a], sizeof *s->lens[a], u32_cmp);
    }
    return ac_build(s);
}

/* One scan: the answers so far, and the slots found in the order found (when asked). */
typedef struct scan_ctx {
    const dc_hostset *s;
    unsigned char *applies;
    uint32_t *found;
    int count;
} scan_ctx;

static void found(scan_ctx *c, uint32_t id)
{
    if (!c->applies[id]) {
        c->applies[id] = 1;
        if (c->found)
            c->found[c->count] = id;
        c->count++;
    }
}

static void hit(scan_ctx *c, const lit_key *key)
{
    if (!key)
        return;
    for (uint32_t i = 0; i < key->nids; i++)
        found(c, c->s->lids[key->ids + i]);
}

static const lit_key *probe(const dc_hostset *s, uint32_t anch, const char *p, uint32_t len)
{
    return lookup(s, anch, p, len, poly((const unsigned char *)p, len));
}

/* "$" matches at the end and before a newline that ends the subject: a host ending in "\n"
 * has two ends. Costs one probe per distinct name length per anchor, and for names that may
 * sit anywhere one probe per position and distinct length (a rolling hash). */
static void scan_names(const dc_hostset *s, dc_hostset_scratch *scr, const char *h, size_t n,
                       scan_ctx *c)
{
    int nl = n > 0 && h[n - 1] == '\n';
    if (s->nlens[A_EXACT]) {
        if (n <= UINT32_MAX)
            hit(c, probe(s, A_EXACT, h, (uint32_t)n));
        if (nl)
            hit(c, probe(s, A_EXACT, h, (uint32_t)(n - 1)));
    }
    for (uint32_t i = 0; i < s->nlens[A_PRE] && s->lens[A_PRE][i] <= n; i++)
        hit(c, probe(s, A_PRE, h, s->lens[A_PRE][i]));
    for (uint32_t i = 0; i < s->nlens[A_SUF]; i++) {
        uint32_t l = s->lens[A_SUF][i];
        if (l <= n)
            hit(c, probe(s, A_SUF, h + n - l, l));
        if (nl && l <= n - 1)
            hit(c, probe(s, A_SUF, h + n - 1 - l, l));
    }
    const unsigned char *u = (const unsigned char *)h;
    if (s->ac_n && scr && scr->seen && scr->nseen == s->ac_n) {
        if (++scr->stamp == 0) { /* wrapped: no node may look seen */
            memset(scr->seen, 0, scr->nseen * sizeof *scr->seen);
            scr->stamp = 1;
        }
        if (s->ac_key[0]) /* the empty name */
            hit(c, &s->keys[s->ac_key[0] - 1]);
        uint32_t node = 0;
        for (size_t at = 0; at < n; at++) {
            for (;;) {
                uint32_t ch = ac_next(s, node, u[at]);
                if (ch || node == 0) {
                    node = ch;
                    break;
                }
                node = s->ac_fail[node];
            }
            /* this node's names and those on its fail chain, each once per scan: a name seen
             * already had the rest of its chain seen with it */
            for (uint32_t t = s->ac_key[node] ? node : s->ac_dict[node];
                 t && scr->seen[t] != scr->stamp; t = s->ac_dict[t]) {
                scr->seen[t] = scr->stamp;
                hit(c, &s->keys[s->ac_key[t] - 1]);
            }
        }
        return;
    }
    for (uint32_t i = 0; i < s->nlens[A_SUB] && s->lens[A_SUB][i] <= n; i++) {
        uint32_t l = s->lens[A_SUB][i];
        uint64_t x = poly(u, l), top = 1;
        for (uint32_t j = 0; j < l; j++)
            top *= HASH_MUL;
        for (size_t at = 0;; at++) {
            hit(c, lookup(s, A_SUB, h + at, l, x));
            if (l == 0 || at + l >= n)
                break;
            x = x * HASH_MUL - top * u[at] + u[at + l];
        }
    }
}

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
        found(c, id);
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
    free(s->lbytes);
    free(s->keys);
    free(s->lids);
    free(s->table);
    for (int a = 0; a < A_COUNT; a++)
        free(s->lens[a]);
    free(s->ac_fail);
    free(s->ac_dict);
    free(s->ac_key);
    free(s->ac_ek);
    free(s->ac_ev);
    free(s->ac_first);
    free(s->ac_cbyte);
    free(s->ac_cnode);
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
    xset *names = malloc(sizeof *names);
    if (!names)
        return fail_free(s, DC_ENOMEM, err, errlen);
    uint32_t nhs = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!pats[i])
            continue;
        if (!(s->text[i] = dc_strndup(pats[i], lens[i]))) {
            free(names);
            return fail_free(s, DC_ENOMEM, err, errlen);
        }
        s->tlen[i] = lens[i];
        uint32_t a;
        if (plain_names(pats[i], lens[i], names, &a))
            s->kind[i] = K_LIT;
        else if (nhs < HS_MAX_PATTERNS && hs_bounded(pats[i], lens[i]) && hs_takes(s->text[i])) {
            s->kind[i] = K_HS;
            nhs++;
        } else {
            s->kind[i] = K_PCRE;
        }
    }
    free(names);
    dc_rc rc = index_names(s);
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
        scan_names(s, scr, host, len, &c);
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
            found(&c, s->reid[i]);
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
    dc_rc rc = index_names(s);
    if (rc == DC_EBUNDLE)
        return refuse(s, err, errlen, "a plain-name slot is not a plain name");
    if (rc == DC_OK)
        rc = compile_pcre(s, err, errlen);
    if (rc != DC_OK)
        return fail_free(s, rc, err, errlen);
    *out = s;
    return DC_OK;
}
