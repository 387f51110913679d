/* hostset.h - every host pattern of a bundle matched in one pass over a host: an index of the
 * plain names, one Hyperscan database for the other patterns it takes, PCRE2 one by one for the
 * few left. Same answers as an unanchored PCRE2 search of each pattern (default options).
 */
#ifndef DC_HOSTSET_H
#define DC_HOSTSET_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct dc_hostset dc_hostset;
/* Hyperscan's working memory for one scan: one per thread that scans (an engine makes one per
 * bundle generation), never shared by two scans at once. */
typedef struct dc_hostset_scratch dc_hostset_scratch;

/* How the patterns were split, for tests and figures. */
typedef struct dc_hostset_info {
    uint32_t patterns;    /* slots, NULL ones included */
    uint32_t literals;    /* in the name index */
    uint32_t hs;          /* in the Hyperscan database */
    uint32_t pcre;        /* searched one by one */
    size_t db_bytes;      /* the Hyperscan database, serialized */
    size_t index_bytes;   /* the name index and its automaton, in memory */
} dc_hostset_info;

/* Builds the matcher of n patterns (pats[i], lens[i] bytes, no NUL needed); a NULL pats[i] is
 * a slot never reported (a "*" domain, which the caller handles). A pattern PCRE2 refuses
 * fails the build (DC_EBUNDLE, err naming its index). */
DC_HIDDEN dc_rc dc_hostset_build(const char *const *pats, const size_t *lens, uint32_t n,
                                 dc_hostset **out, char *err, size_t errlen);
DC_HIDDEN void dc_hostset_free(dc_hostset *s);
DC_HIDDEN uint32_t dc_hostset_count(const dc_hostset *s);
/* The text of slot i (NULL for an empty slot); *len gets its length. */
DC_HIDDEN const char *dc_hostset_pattern(const dc_hostset *s, uint32_t i, size_t *len);
DC_HIDDEN void dc_hostset_info_get(const dc_hostset *s, dc_hostset_info *info);

/* Scratch for scans of s (NULL scratch is fine for a set with no Hyperscan part). */
DC_HIDDEN dc_rc dc_hostset_scratch_new(const dc_hostset *s, dc_hostset_scratch **out);
DC_HIDDEN void dc_hostset_scratch_free(dc_hostset_scratch *scr);

/* Sets applies[i] to 1 when pattern i is found in host, else 0, for every slot. Returns the
 * number found, or -1 when the scan failed (a scratch not made for s, no memory): then
 * applies says nothing. */
DC_HIDDEN int dc_hostset_match(const dc_hostset *s, dc_hostset_scratch *scr, const char *host,
                               size_t len, unsigned char *applies);

/* The same for a caller that keeps applies zeroed between scans: applies must be all 0 on
 * entry; the slots found are set in it and written to found (room for every slot), in the
 * order found. The caller clears those entries after use: a scan costs what it finds, not the
 * number of slots. */
DC_HIDDEN int dc_hostset_match_list(const dc_hostset *s, dc_hostset_scratch *scr,
                                    const char *host, size_t len, unsigned char *applies,
                                    uint32_t *found);

/* Versioned bytes (malloc'd) carrying the patterns and the compiled database, and back.
 * Deserializing compiles nothing but the few PCRE2 patterns; bytes that do not describe a
 * matcher, or a database this library cannot load, are refused (DC_EBUNDLE, err says why). */
DC_HIDDEN dc_rc dc_hostset_serialize(const dc_hostset *s, unsigned char **out, size_t *len);
DC_HIDDEN dc_rc dc_hostset_deserialize(const unsigned char *p, size_t len, dc_hostset **out,
                                       char *err, size_t errlen);

#endif /* DC_HOSTSET_H */
