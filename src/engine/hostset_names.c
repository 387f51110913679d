/* hostset_names.c - the host matcher's index of plain names: which patterns are a finite set
 * of plain strings, a hash table of them by anchor, and an Aho-Corasick automaton for those
 * found anywhere in the host.
 */
#include <stdlib.h>
#include <string.h>

#include "hostset_int.h"

#define HASH_MUL 0x100000001b3ull

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
dc_rc dc_hs_index_names(dc_hostset *s)
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

static void hit(scan_ctx *c, const lit_key *key)
{
    if (!key)
        return;
    for (uint32_t i = 0; i < key->nids; i++)
        dc_hs_found(c, c->s->lids[key->ids + i]);
}

static const lit_key *probe(const dc_hostset *s, uint32_t anch, const char *p, uint32_t len)
{
    return lookup(s, anch, p, len, poly((const unsigned char *)p, len));
}

/* "$" matches at the end and before a newline that ends the subject: a host ending in "\n"
 * has two ends. Costs one probe per distinct name length per anchor, and for names that may
 * sit anywhere one probe per position and distinct length (a rolling hash). */
void dc_hs_scan_names(const dc_hostset *s, dc_hostset_scratch *scr, const char *h, size_t n,
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

/* Without memory for the work set no slot is marked: the regex engines answer the same. */
void dc_hs_mark_names(dc_hostset *s)
{
    xset *x = malloc(sizeof *x);
    uint32_t anch;
    for (uint32_t i = 0; x && i < s->n; i++)
        if (s->text[i] && s->kind[i] == K_NONE && plain_names(s->text[i], s->tlen[i], x, &anch))
            s->kind[i] = K_LIT;
    free(x);
}

void dc_hs_names_free(dc_hostset *s)
{
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
}
