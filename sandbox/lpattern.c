/* lpattern.c - a backtracking matcher for Lua 5.1 patterns (reference manual 5.4.1), written
 * from the manual and checked against LuaJIT's results. Every step adds to a meter that calls
 * the charge function each DC_PAT_CHUNK steps; all working memory is on the C stack.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lpattern.h"

#define ESC '%'

/* ---- character classes: ASCII only, like LuaJIT (bytes >= 0x80 are in no class) ---- */
enum { KA = 1, KD = 2, KL = 4, KU = 8, KP = 16, KS = 32, KC = 64, KX = 128 };

static const unsigned char ctype_tab[256] = {
    KC, KC, KC, KC, KC, KC, KC, KC,
    KC, KS|KC, KS|KC, KS|KC, KS|KC, KS|KC, KC, KC,
    KC, KC, KC, KC, KC, KC, KC, KC,
    KC, KC, KC, KC, KC, KC, KC, KC,
    KS, KP, KP, KP, KP, KP, KP, KP,
    KP, KP, KP, KP, KP, KP, KP, KP,
    KD|KX, KD|KX, KD|KX, KD|KX, KD|KX, KD|KX, KD|KX, KD|KX,
    KD|KX, KD|KX, KP, KP, KP, KP, KP, KP,
    KP, KA|KU|KX, KA|KU|KX, KA|KU|KX, KA|KU|KX, KA|KU|KX, KA|KU|KX, KA|KU,
    KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU,
    KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU, KA|KU,
    KA|KU, KA|KU, KA|KU, KP, KP, KP, KP, KP,
    KP, KA|KL|KX, KA|KL|KX, KA|KL|KX, KA|KL|KX, KA|KL|KX, KA|KL|KX, KA|KL,
    KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL,
    KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL, KA|KL,
    KA|KL, KA|KL, KA|KL, KP, KP, KP, KP, KC,
};

/* Class letters: the ctype bits of %x, KNEG for the complement %X, KZ for %z (the NUL byte).
 * 0: the letter names no class and stands for itself. LuaJIT has 5.2's %g too. */
enum { KNEG = 0x100, KZ = 0x200 };
static const unsigned short class_tab[256] = {
    ['a'] = KA, ['c'] = KC, ['d'] = KD, ['g'] = KA | KD | KP, ['l'] = KL, ['p'] = KP,
    ['s'] = KS, ['u'] = KU, ['w'] = KA | KD, ['x'] = KX, ['z'] = KZ,
    ['A'] = KNEG | KA, ['C'] = KNEG | KC, ['D'] = KNEG | KD, ['G'] = KNEG | KA | KD | KP,
    ['L'] = KNEG | KL, ['P'] = KNEG | KP, ['S'] = KNEG | KS, ['U'] = KNEG | KU,
    ['W'] = KNEG | KA | KD, ['X'] = KNEG | KX, ['Z'] = KNEG | KZ,
};

/* Whether byte c is in class %cl. */
static inline int class_match(unsigned c, unsigned cl)
{
    unsigned k = class_tab[cl];
    if (!k)
        return c == cl;
    int in = (k & KZ) ? c == 0 : (ctype_tab[c] & k & 0xff) != 0;
    return (k & KNEG) ? !in : in;
}

/* ---- the meter ---- */

static void meter_refill(dc_pat *m)
{
    uint64_t used = (uint64_t)(DC_PAT_CHUNK - m->budget);
    m->budget = DC_PAT_CHUNK;
    m->charge(m->L, used);
}

#define STEP(m, n)                                      \
    do {                                                \
        if (((m)->budget -= (int64_t)(n)) <= 0)         \
            meter_refill(m);                            \
    } while (0)

void dc_pat_work(dc_pat *m, size_t units)
{
    STEP(m, units);
}

void dc_pat_flush(dc_pat *m)
{
    uint64_t used = (uint64_t)(DC_PAT_CHUNK - m->budget);
    if (used == 0)
        return;
    m->budget = DC_PAT_CHUNK;
    if (m->carry) {
        *m->carry += used;
        if (*m->carry < DC_PAT_CHUNK)
            return;
        used = *m->carry;
        *m->carry = 0;
    }
    m->charge(m->L, used);
}

/* Charges what is pending, then raises msg. */
_Noreturn static void pat_error(dc_pat *m, const char *msg)
{
    dc_pat_flush(m);
    luaL_error(m->L, "%s", msg);
    abort();    /* not reached: luaL_error longjmps */
}

/* ---- single-character classes: `.`, %x, [set], or a literal byte ---- */

/* The end of the set that starts at p ('['). Raises when it has no ']'. */
static const char *set_end(dc_pat *m, const char *p)
{
    const char *q = p + 1;
    if (*q == '^')
        q++;
    /* The first byte of a set is always a member (so "[]]" holds ']'); %x escapes ']'. */
    do {
        if (q >= m->pat_end)
            pat_error(m, "malformed pattern (missing ']')");
        if (*q++ == ESC && q < m->pat_end)
            q++;
    } while (*q != ']');
    STEP(m, (q - p) >> 3);
    return q + 1;
}

/* The end of the class that starts at p (p < pat_end). Raises on a malformed class. */
static inline const char *class_end(dc_pat *m, const char *p)
{
    if (*p == ESC) {
        if (p + 1 >= m->pat_end)
            pat_error(m, "malformed pattern (ends with '%')");
        return p + 2;
    }
    return *p == '[' ? set_end(m, p) : p + 1;
}

/* Whether c is in the set [p, ec] (p at '[', ec at its closing ']'). */
static int set_match(unsigned c, const char *p, const char *ec)
{
    int hit = 1;
    p++;
    if (*p == '^') {
        hit = 0;
        p++;
    }
    while (p < ec) {
        if (*p == ESC) {
            if (class_match(c, (unsigned char)p[1]))
                return hit;
            p += 2;
        } else if (p[1] == '-' && p + 2 < ec) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return hit;
            p += 3;
        } else {
            if ((unsigned char)*p == c)
                return hit;
            p++;
        }
    }
    return !hit;
}

/* Whether byte c matches the class [p, ep). A long set costs in proportion to its length. */
static inline int single_match(dc_pat *m, unsigned c, const char *p, const char *ep)
{
    switch (*p) {
    case '.':
        return 1;
    case ESC:
        return class_match(c, (unsigned char)p[1]);
    case '[':
        if (ep - p >= 16)
            STEP(m, (ep - p) >> 3);
        return set_match(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

/* The end of the longest run from s of bytes in class [p, ep). Charges one unit per two bytes
 * read (a unit stands for a VM instruction, about 3 ns with the count hook on). */
static const char *class_span(dc_pat *m, const char *s, const char *p, const char *ep)
{
    const char *q = s, *end = m->src_end;
    switch (*p) {
    case '.':
        return end;     /* nothing read */
    case ESC: {
        unsigned cl = (unsigned char)p[1], k = class_tab[cl];
        if (k && !(k & KZ)) {
            unsigned bits = k & 0xff, neg = (k & KNEG) != 0;
            while (q < end && ((ctype_tab[(unsigned char)*q] & bits) == 0) == neg)
                q++;
        } else {
            while (q < end && class_match((unsigned char)*q, cl))
                q++;
        }
        break;
    }
    case '[':
        while (q < end && single_match(m, (unsigned char)*q, p, ep))
            q++;
        break;
    default: {
        char c = *p;
        while (q < end && *q == c)
            q++;
        break;
    }
    }
    STEP(m, (q - s) >> 1);
    return q;
}

/* ---- the matcher ---- */

static const char *do_match(dc_pat *m, const char *s, const char *p);

/* x* and x+ (after its first byte): as many as possible, then give back one at a time. */
static const char *match_greedy(dc_pat *m, const char *s, const char *p, const char *ep)
{
    const char *q = class_span(m, s, p, ep);
    for (;;) {
        const char *r = do_match(m, q, ep + 1);
        if (r)
            return r;
        if (q == s)
            return NULL;
        q--;
    }
}

/* x-: as few as possible, one more at a time. */
static const char *match_lazy(dc_pat *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r)
            return r;
        if (s < m->src_end && single_match(m, (unsigned char)*s, p, ep)) {
            s++;
            STEP(m, 1);
        } else {
            return NULL;
        }
    }
}

/* ( or (): opens capture `what` at s and matches the rest p. */
static const char *open_capture(dc_pat *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= DC_PAT_MAXCAPTURES)
        pat_error(m, "too many captures");
    m->cap[m->level].init = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = do_match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

/* ): closes the innermost open capture at s and matches the rest p. */
static const char *close_capture(dc_pat *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->cap[l].len != DC_PAT_CAP_OPEN)
        l--;
    if (l < 0)
        pat_error(m, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].init;
    const char *r = do_match(m, s, p);
    if (!r)
        m->cap[l].len = DC_PAT_CAP_OPEN;
    return r;
}

/* %bxy at s (p at x): the end of a balanced x...y run, or NULL. */
static const char *match_balance(dc_pat *m, const char *s, const char *p)
{
    if (p + 1 >= m->pat_end)
        pat_error(m, "unbalanced pattern");
    if (s >= m->src_end || *s != p[0])
        return NULL;
    char open = p[0], close = p[1];
    size_t depth = 1;
    const char *q = s;
    while (++q < m->src_end) {
        /* close first: with x == y the second x closes */
        if (*q == close) {
            if (--depth == 0) {
                STEP(m, q - s);
                return q + 1;
            }
        } else if (*q == open) {
            depth++;
        }
    }
    STEP(m, q - s);
    return NULL;
}

/* %1-%9 at s: the text of that (closed) capture again. A position capture never matches. */
static const char *match_backref(dc_pat *m, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == DC_PAT_CAP_OPEN)
        pat_error(m, "invalid capture index");
    ptrdiff_t len = m->cap[l].len;
    if (len < 0 || m->src_end - s < len)
        return NULL;
    STEP(m, len >> 5);
    if (memcmp(m->cap[l].init, s, (size_t)len) != 0)
        return NULL;
    return s + len;
}

/* Matches pattern p at s: the end of the match, or NULL. Recurses only where a choice is left
 * to undo (captures and quantifiers), at most DC_PAT_MAXDEPTH deep; plain items loop. */
static const char *do_match(dc_pat *m, const char *s, const char *p)
{
    if (++m->depth > DC_PAT_MAXDEPTH)
        pat_error(m, "pattern too complex");
    for (;;) {
        STEP(m, 1);
        if (p >= m->pat_end)
            break;
        switch (*p) {
        case '(':
            if (p[1] == ')')
                s = open_capture(m, s, p + 2, DC_PAT_CAP_POS);
            else
                s = open_capture(m, s, p + 1, DC_PAT_CAP_OPEN);
            goto done;
        case ')':
            s = close_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 == m->pat_end) {
                if (s != m->src_end)
                    s = NULL;
                goto done;
            }
            break;
        case ESC:
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                if (!s)
                    goto done;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (*p != '[')
                    pat_error(m, "missing '[' after '%f' in pattern");
                const char *ep = class_end(m, p);
                unsigned prev = s == m->src ? 0 : (unsigned char)s[-1];
                unsigned cur = s < m->src_end ? (unsigned char)*s : 0;
                STEP(m, (ep - p) >> 2);
                if (set_match(prev, p, ep - 1) || !set_match(cur, p, ep - 1)) {
                    s = NULL;
                    goto done;
                }
                p = ep;
                continue;
            }
            if (p[1] >= '0' && p[1] <= '9') {
                s = match_backref(m, s, p[1]);
                if (!s)
                    goto done;
                p += 2;
                continue;
            }
            break;
        default:
            break;
        }
        /* a single-character class, maybe with a quantifier */
        const char *ep = class_end(m, p);
        int ok = s < m->src_end && single_match(m, (unsigned char)*s, p, ep);
        switch (*ep) {
        case '?': {
            const char *r;
            if (ok && (r = do_match(m, s + 1, ep + 1)) != NULL) {
                s = r;
                goto done;
            }
            p = ep + 1;
            continue;
        }
        case '+':
            s = ok ? match_greedy(m, s + 1, p, ep) : NULL;
            goto done;
        case '*':
            s = match_greedy(m, s, p, ep);
            goto done;
        case '-':
            s = match_lazy(m, s, p, ep);
            goto done;
        default:
            if (!ok) {
                s = NULL;
                goto done;
            }
            s++;
            p = ep;
            continue;
        }
    }
done:
    m->depth--;
    return s;
}

/* ---- entry points ---- */

void dc_pat_init(dc_pat *m, lua_State *L, dc_pat_charge_fn charge, uint64_t *carry,
                 const char *s, size_t len, const char *p)
{
    m->L = L;
    m->charge = charge;
    m->carry = carry;
    m->src = s;
    m->src_end = s + len;
    m->pat_end = p + strlen(p);
    m->literal = -1;
    m->budget = DC_PAT_CHUNK;
    m->depth = 0;
    m->level = 0;
}

const char *dc_pat_find_plain(dc_pat *m, const char *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0)
        return h;
    if (nl > hl)
        return NULL;
    const char *s = h, *stop = h + hl - nl + 1;   /* candidates are [h, stop) */
    /* memchr for the first byte and memcmp for the rest is fastest on ordinary text, but
     * quadratic on repetitive input: after a few false starts, the linear memmem. */
    for (int misses = 0; s < stop; misses++) {
        if (misses == 16) {
            STEP(m, (size_t)(h + hl - s) / 16 + nl / 16 + 1);
            return memmem(s, (size_t)(h + hl - s), n, nl);
        }
        const char *q = memchr(s, n[0], (size_t)(stop - s));
        STEP(m, ((q ? q : stop) - s) >> 6);
        if (!q)
            return NULL;
        STEP(m, 1 + (nl >> 4));
        if (memcmp(q + 1, n + 1, nl - 1) == 0)
            return q;
        s = q + 1;
    }
    return NULL;
}

const char *dc_pat_match_at(dc_pat *m, const char *s, const char *p)
{
    m->level = 0;
    m->depth = 0;
    return do_match(m, s, p);
}

/* When p starts with a class that must match one byte (no *, - or ?), returns the end of
 * that class, else NULL. Raises what the matcher would raise at its first try. */
static const char *first_class(dc_pat *m, const char *p)
{
    if (p >= m->pat_end)
        return NULL;
    switch (*p) {
    case '(': case ')': case '.':
        return NULL;
    case '$':
        if (p + 1 == m->pat_end)
            return NULL;
        break;
    case ESC:
        if (p[1] == 'b' || p[1] == 'f' || (p[1] >= '0' && p[1] <= '9'))
            return NULL;
        break;
    default:
        break;
    }
    const char *ep = class_end(m, p);
    if (*ep == '*' || *ep == '-' || *ep == '?')
        return NULL;
    return ep;
}

const char *dc_pat_search(dc_pat *m, const char *from, const char *p, int anchored,
                          const char **start)
{
    const char *s = from, *e;
    size_t plen = (size_t)(m->pat_end - p);
    if (m->literal < 0)
        m->literal = !dc_pat_has_magic(p, plen) && !memchr(p, ')', plen);
    if (m->literal && !anchored) {
        /* no capture, no class: the whole match is the first occurrence */
        s = dc_pat_find_plain(m, from, (size_t)(m->src_end - from), p, plen);
        if (!s)
            return NULL;
        m->level = 0;
        *start = s;
        return s + plen;
    }
    const char *ep = anchored ? NULL : first_class(m, p);
    if (ep) {
        /* Positions where the first class fails cannot match: skip them without a try. */
        for (;;) {
            const char *q = s;
            if (*p != ESC && *p != '[') {
                q = memchr(s, *p, (size_t)(m->src_end - s));
                STEP(m, ((q ? q : m->src_end) - s) >> 6);
            } else {
                while (q < m->src_end && !single_match(m, (unsigned char)*q, p, ep))
                    q++;
                STEP(m, (q - s) >> 1);
                if (q == m->src_end)
                    q = NULL;
            }
            if (!q)
                return NULL;
            if ((e = dc_pat_match_at(m, q, p)) != NULL) {
                *start = q;
                return e;
            }
            s = q + 1;
        }
    }
    for (;;) {
        if ((e = dc_pat_match_at(m, s, p)) != NULL) {
            *start = s;
            return e;
        }
        if (anchored || s >= m->src_end)
            return NULL;
        s++;
    }
}

void dc_pat_push_capture(dc_pat *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            pat_error(m, "invalid capture index");
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->cap[i].len;
    if (len == DC_PAT_CAP_OPEN)
        pat_error(m, "unfinished capture");
    if (len == DC_PAT_CAP_POS)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].init - m->src + 1));
    else
        lua_pushlstring(m->L, m->cap[i].init, (size_t)len);
}

int dc_pat_push_captures(dc_pat *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        dc_pat_push_capture(m, i, s, e);
    return n;
}

int dc_pat_has_magic(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (p[i]) {
        case '^': case '$': case '*': case '+': case '?':
        case '.': case '(': case '[': case '%': case '-':
            return 1;
        default:
            break;
        }
    }
    return 0;
}
