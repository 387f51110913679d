/* lpattern.h - Lua 5.1 pattern matching (manual section 5.4.1) with a work meter: the matcher
 * counts its steps and hands them to a charge function every DC_PAT_CHUNK steps, so a pattern
 * that backtracks for ever trips the call's quota instead of hanging the worker. Used by
 * api_strpat.c; relies only on the Lua C API (errors are raised with luaL_error).
 */
#ifndef DC_LPATTERN_H
#define DC_LPATTERN_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "base.h"

#define DC_PAT_MAXCAPTURES 32
#define DC_PAT_MAXDEPTH 200    /* nested matcher calls before "pattern too complex" (LuaJIT's) */
#define DC_PAT_CHUNK 1024      /* steps between two calls of the charge function */

/* Charges units of work to the running call; may raise (longjmp) and not return. */
typedef void (*dc_pat_charge_fn)(lua_State *L, uint64_t units);

/* One match run over one subject. Lives on the C stack: nothing in it needs freeing, so a
 * charge or an error may unwind through the matcher at any point. */
typedef struct dc_pat {
    lua_State *L;
    dc_pat_charge_fn charge;
    const char *src;        /* subject */
    const char *src_end;
    const char *pat_end;    /* first NUL of the pattern: patterns end there, as in Lua 5.1 */
    int literal;            /* the pattern is a plain string (no magic byte, no ')'), -1: unknown */
    int64_t budget;         /* steps left before the next charge */
    uint64_t *carry;        /* steps charged late, across calls (NULL: none) */
    int depth;
    int level;              /* captures opened so far */
    struct {
        const char *init;
        ptrdiff_t len;      /* >= 0, or DC_PAT_CAP_OPEN / DC_PAT_CAP_POS */
    } cap[DC_PAT_MAXCAPTURES];
} dc_pat;

#define DC_PAT_CAP_OPEN (-1)
#define DC_PAT_CAP_POS (-2)

/* p must be NUL-terminated (every Lua string is); it ends at its first NUL. When carry is
 * not NULL, dc_pat_flush adds small remainders there and charges only once it holds a chunk,
 * so that short calls do not each pay for a charge (which reads the clock). */
DC_HIDDEN void dc_pat_init(dc_pat *m, lua_State *L, dc_pat_charge_fn charge, uint64_t *carry,
                           const char *s, size_t len, const char *p);
/* Tries p at s only. Returns the end of the match or NULL; captures are left in m. */
DC_HIDDEN const char *dc_pat_match_at(dc_pat *m, const char *s, const char *p);
/* Tries p at from, from+1, ... up to the end of the subject (only at from when anchored).
 * Returns the end of the first match and sets *start, or NULL. */
DC_HIDDEN const char *dc_pat_search(dc_pat *m, const char *from, const char *p, int anchored,
                                    const char **start);
/* The first occurrence of the nl bytes at n in the hl bytes at h, or NULL; charged. */
DC_HIDDEN const char *dc_pat_find_plain(dc_pat *m, const char *h, size_t hl, const char *n,
                                        size_t nl);
/* Adds units of work done outside the matcher (a memmem, a copy). May raise. */
DC_HIDDEN void dc_pat_work(dc_pat *m, size_t units);
/* Charges the steps not charged yet; call before returning to Lua. May raise. */
DC_HIDDEN void dc_pat_flush(dc_pat *m);
/* Pushes capture i of the match [s, e) (the whole match when there are no captures and i is
 * 0); raises "invalid capture index" / "unfinished capture". Stack: [-0, +1] */
DC_HIDDEN void dc_pat_push_capture(dc_pat *m, int i, const char *s, const char *e);
/* Pushes every capture, or the whole match when there is none and s is not NULL. Returns the
 * number pushed. Stack: [-0, +n] */
DC_HIDDEN int dc_pat_push_captures(dc_pat *m, const char *s, const char *e);
/* Whether p (all len bytes) holds a magic character, as LuaJIT decides that find is plain. */
DC_HIDDEN int dc_pat_has_magic(const char *p, size_t len);

/* ---- the Lua functions (api_strpat.c) ---- */
/* Sets find, match, gmatch and gsub into the table at the top of the stack, metered with
 * dc_sbx_charge (the sandbox's string table). Stack: [-0, +0] */
DC_HIDDEN void dc_api_open_strpat(lua_State *L);
/* The same with another charge function (tests). Stack: [-0, +0] */
DC_HIDDEN void dc_strpat_open(lua_State *L, dc_pat_charge_fn charge);

#endif /* DC_LPATTERN_H */
