/* hostset_int.h - the inside of the host matcher, shared by hostset.c (build, Hyperscan,
 * PCRE2, bytes) and hostset_names.c (the index of plain names and its automaton).
 */
#ifndef DC_HOSTSET_INT_H
#define DC_HOSTSET_INT_H

#include <hs.h>

#include "hostset.h"

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

/* One scan: the answers so far, and the slots found in the order found (when asked). */
typedef struct scan_ctx {
    const dc_hostset *s;
    unsigned char *applies;
    uint32_t *found;
    int count;
} scan_ctx;

static inline void dc_hs_found(scan_ctx *c, uint32_t id)
{
    if (!c->applies[id]) {
        c->applies[id] = 1;
        if (c->found)
            c->found[c->count] = id;
        c->count++;
    }
}

/* hostset_names.c: which slots are plain names (kind K_LIT, set on slots still K_NONE with a
 * text), their index, one scan of it, and freeing it. */
DC_HIDDEN void dc_hs_mark_names(dc_hostset *s);
DC_HIDDEN dc_rc dc_hs_index_names(dc_hostset *s);
DC_HIDDEN void dc_hs_scan_names(const dc_hostset *s, dc_hostset_scratch *scr, const char *h,
                                size_t n, scan_ctx *c);
DC_HIDDEN void dc_hs_names_free(dc_hostset *s);

#endif /* DC_HOSTSET_INT_H */
