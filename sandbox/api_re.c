/* api_re.c - ngx.re.match, find, gmatch, sub and gsub with lua-nginx-module's semantics over
 * PCRE2: compiled patterns live in userdata (freed by __gc) cached per state (64 entries),
 * all PCRE2 memory comes from the state's allocator (so the memory quota counts it), and every
 * match runs under a match limit and a depth limit, reported as nil plus an error. The quota
 * is charged for PCRE2's steps, the bytes each search passes over, captures and replacements.
 * UTF-8 subjects are always validated: PCRE2 only skips its own check after ours. Option "d"
 * matches with PCRE2's DFA matcher (the longest match, no groups), under the same meters.
 */
#include <stdio.h>
#include <string.h>

#include "api_cost.h"
#include "api_util.h"

#define RE_MT "dynacode.regex"
#define RE_CACHE "dynacode.regex_cache"
#define RE_SHARED "dynacode.regex_match"
#define RE_CACHE_MAX 64
#define RE_MATCH_LIMIT 100000
#define RE_DEPTH_LIMIT 10000
#define RE_HEAP_LIMIT_KB 4096

enum { RE_JIT = 1, RE_DUPNAMES = 2, RE_DFA = 4 };

/* The DFA matcher's workspace, in ints: one per state, allocated with the match block (so
 * counted in the memory quota) and never grown; a pattern needing more fails that match. */
#define RE_DFA_WS_COUNT 1000

typedef struct re_mem {
    lua_Alloc f;
    void *ud;
} re_mem;

typedef struct dc_re {
    re_mem mem;             /* PCRE2's allocator data: lives as long as the userdata */
    pcre2_code *code;
    uint32_t ncap;          /* capture groups */
    uint32_t name_count, name_size;
    PCRE2_SPTR names;
    int flags;
    int utf;
} dc_re;

/* PCRE2 allocations through the state's allocator; a header keeps the size it needs. */
#define RE_HDR 16
static void *re_malloc(PCRE2_SIZE n, void *data)
{
    re_mem *m = data;
    if (n > ((size_t)1 << 30))
        return NULL;
    char *p = m->f(m->ud, NULL, 0, n + RE_HDR);
    if (!p)
        return NULL;
    size_t total = n + RE_HDR;
    memcpy(p, &total, sizeof total);
    return p + RE_HDR;
}

static void re_free(void *ptr, void *data)
{
    re_mem *m = data;
    if (!ptr)
        return;
    char *p = (char *)ptr - RE_HDR;
    size_t total;
    memcpy(&total, p, sizeof total);
    m->f(m->ud, p, total, 0);
}

/* One match data block and match context per state, shared by every pattern: PCRE2 keeps a
 * 20 KiB backtracking frame vector in each match data, too much to hold per pattern. Nothing
 * may run Lua between a match and the reading of its results (the next match reuses it). */
typedef struct re_shared {
    re_mem mem;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint32_t pairs;
    int *dfa_ws;            /* RE_DFA_WS_COUNT ints, made at the first DFA match */
    /* the running match: PCRE2's match limit counts per start position, so an unanchored
     * search can cost the subject's length times the limit; a callout before every pattern
     * item (PCRE2_AUTO_CALLOUT) bounds the whole search by steps and by the call's deadline */
    uint64_t steps;
    uint64_t budget;        /* instructions the call has left: more steps than that trip it */
    uint64_t pending;       /* charges not made yet: searches are charged a piece at a time */
    double deadline_ms;
} re_shared;

#define RE_STEP_LIMIT 5000000u   /* pattern items per search, whatever the quotas */
#define RE_ERROR_STEPS (-1000)   /* callout return values, passed back by pcre2_match */
#define RE_ERROR_TIME (-1001)
#define RE_ERROR_QUOTA (-1002)

/* The callout before each pattern item: bounds the work of one pcre2_match call. It never
 * raises (a longjmp out of PCRE2 would skip its cleanup): it stops the match, and re_exec
 * charges the steps, which trips the call. */
static int re_callout(pcre2_callout_block *cb, void *data)
{
    (void)cb;
    re_shared *sh = data;
    if ((++sh->steps & 4095) != 0)
        return 0;
    if (sh->steps >= RE_STEP_LIMIT)
        return RE_ERROR_STEPS;
    if (sh->steps >= sh->budget)
        return RE_ERROR_QUOTA;
    if (sh->deadline_ms > 0 && dc_now_ms() > sh->deadline_ms)
        return RE_ERROR_TIME;
    return 0;
}

/* __gc of a compiled pattern. Stack: [-0, +0] */
static int re_gc(lua_State *L)
{
    dc_re *re = luaL_checkudata(L, 1, RE_MT); /* a foreign userdata must not be freed */
    if (re) {
        pcre2_code_free(re->code);
        re->code = NULL;
    }
    return 0;
}

/* __gc of the shared match block. Stack: [-0, +0] */
static int shared_gc(lua_State *L)
{
    /* the one valid argument is the block the registry holds (under the metatable's name) */
    lua_getfield(L, LUA_REGISTRYINDEX, RE_SHARED);
    re_shared *sh = lua_rawequal(L, 1, -1) ? lua_touserdata(L, 1) : NULL;
    lua_pop(L, 1);
    if (sh) {
        re_free(sh->dfa_ws, &sh->mem);
        sh->dfa_ws = NULL;
        pcre2_match_data_free(sh->md);
        pcre2_match_context_free(sh->mctx);
        sh->md = NULL;
        sh->mctx = NULL;
    }
    return 0;
}

/* The state's match block with room for re's captures, made or grown now; NULL without
 * memory. Stack: [-0, +0] */
static re_shared *shared_for(lua_State *L, const dc_re *re)
{
    lua_getfield(L, LUA_REGISTRYINDEX, RE_SHARED);
    re_shared *sh = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!sh) {
        sh = lua_newuserdata(L, sizeof *sh);
        memset(sh, 0, sizeof *sh);
        sh->mem.f = lua_getallocf(L, &sh->mem.ud);
        luaL_getmetatable(L, RE_SHARED);
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, RE_SHARED);
    }
    if (sh->md && sh->pairs > re->ncap)
        return sh;
    pcre2_general_context *g = pcre2_general_context_create(re_malloc, re_free, &sh->mem);
    if (!g)
        return NULL;
    uint32_t pairs = re->ncap + 1 < 16 ? 16 : re->ncap + 1;
    pcre2_match_data *md = pcre2_match_data_create(pairs, g);
    if (!sh->mctx && (sh->mctx = pcre2_match_context_create(g)) != NULL) {
        pcre2_set_match_limit(sh->mctx, RE_MATCH_LIMIT);
        pcre2_set_depth_limit(sh->mctx, RE_DEPTH_LIMIT);
        pcre2_set_heap_limit(sh->mctx, RE_HEAP_LIMIT_KB);
        pcre2_set_callout(sh->mctx, re_callout, sh);
    }
    pcre2_general_context_free(g);
    if (!md || !sh->mctx) {
        pcre2_match_data_free(md);
        return NULL;
    }
    pcre2_match_data_free(sh->md);
    sh->md = md;
    sh->pairs = pairs;
    return sh;
}

/* Parses the options string: PCRE2 compile options into *copts, RE_* into *flags. Raises on
 * an unknown flag, as OpenResty does. */
static void parse_opts(lua_State *L, const char *o, size_t n, uint32_t *copts, int *flags)
{
    *copts = 0;
    *flags = 0;
    for (size_t i = 0; i < n; i++) {
        switch (o[i]) {
        case 'i': *copts |= PCRE2_CASELESS; break;
        case 's': *copts |= PCRE2_DOTALL; break;
        case 'm': *copts |= PCRE2_MULTILINE; break;
        case 'x': *copts |= PCRE2_EXTENDED; break;
        case 'a': *copts |= PCRE2_ANCHORED; break;
        case 'u': *copts |= PCRE2_UTF; break;
        /* OpenResty's "UTF-8, subject not checked": here the subject is checked all the
         * same (an unchecked invalid subject makes PCRE2 read past its end) */
        case 'U': *copts |= PCRE2_UTF; break;
        case 'D': *copts |= PCRE2_DUPNAMES; *flags |= RE_DUPNAMES; break;
        case 'J': *copts |= PCRE2_ALT_BSUX | PCRE2_MATCH_UNSET_BACKREF; break;
        case 'j': *flags |= RE_JIT; break;
        case 'o': break;  /* every pattern is cached */
        case 'd': *flags |= RE_DFA; break;
        default:
            luaL_error(L, "unknown flag \"%c\" (flags \"%s\")", o[i], o);
        }
    }
}

/* Compiles the pattern at pidx with copts/flags into a new userdata. Stack: [-0, +1]: the
 * userdata, or an error message (returns NULL) */
static dc_re *re_compile(lua_State *L, int pidx, uint32_t copts, int flags)
{
    size_t plen;
    const char *pat = lua_tolstring(L, pidx, &plen);
    dc_re *re = lua_newuserdata(L, sizeof *re);
    memset(re, 0, sizeof *re);
    re->mem.f = lua_getallocf(L, &re->mem.ud);
    re->flags = flags;
    re->utf = (copts & PCRE2_UTF) != 0;
    luaL_getmetatable(L, RE_MT);
    lua_setmetatable(L, -2);

    pcre2_general_context *g = pcre2_general_context_create(re_malloc, re_free, &re->mem);
    pcre2_compile_context *cc = g ? pcre2_compile_context_create(g) : NULL;
    if (!cc) {
        pcre2_general_context_free(g);
        lua_pop(L, 1);
        lua_pushliteral(L, "pcre2_compile() failed: no memory");
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    re->code = pcre2_compile((PCRE2_SPTR)pat, plen, copts | PCRE2_AUTO_CALLOUT, &ec, &off, cc);
    if (re->code && (flags & RE_JIT) && !(flags & RE_DFA)) /* DFA matching has no JIT */
        if (dc_re_jit_enabled())
            (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  /* an optimisation */
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(g);
    if (!re->code) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        lua_pop(L, 1);
        if (off >= plen)
            lua_pushfstring(L, "pcre2_compile() failed: %s in \"%s\"", (const char *)msg, pat);
        else
            lua_pushfstring(L, "pcre2_compile() failed: %s in \"%s\" at \"%s\"",
                            (const char *)msg, pat, pat + off);
        return NULL;
    }
    /* The collector sees only the userdata: tell it about the pattern's memory, so that
     * patterns dropped from the cache are freed before they add up. */
    size_t size = 0, jsize = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_SIZE, &size);
    pcre2_pattern_info(re->code, PCRE2_INFO_JITSIZE, &jsize);
    lua_gc(L, LUA_GCSTEP, (int)((size + jsize) >> 10) + 1);
    dc_sbx_charge(L, plen + size + jsize);
    /* UTF also when the pattern asks for it itself, with (*UTF) */
    uint32_t all = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_ALLOPTIONS, &all);
    re->utf = (all & PCRE2_UTF) != 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->ncap);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &re->name_count);
    if (re->name_count) {
        pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &re->name_size);
        pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &re->names);
    }
    if (flags & RE_DFA) /* the DFA matcher reports the whole match only, no group */
        re->ncap = re->name_count = 0;
    return re;
}

/* The compiled form of the pattern at pidx with the options at oidx (may be none), from the
 * cache or compiled now. Stack: [-0, +1]: the userdata, or an error message (returns NULL) */
static dc_re *re_get(lua_State *L, int pidx, int oidx)
{
    size_t olen, plen;
    const char *o = luaL_optlstring(L, oidx, "", &olen);
    const char *p = luaL_checklstring(L, pidx, &plen);
    uint32_t copts;
    int flags;
    dc_sbx_charge(L, olen + plen + 1);  /* the options, and the cache key below */
    parse_opts(L, o, olen, &copts, &flags);

    lua_getfield(L, LUA_REGISTRYINDEX, RE_CACHE);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 8);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, RE_CACHE);
    }
    int cache = lua_gettop(L);
    /* key: the options (their meaning, not their spelling) then the pattern */
    char kb[32];
    int kn = snprintf(kb, sizeof kb, "%x/%x:", (unsigned)copts, (unsigned)flags);
    lua_pushlstring(L, kb, (size_t)kn);
    lua_pushlstring(L, p, plen);
    lua_concat(L, 2);
    lua_pushvalue(L, -1);
    lua_rawget(L, cache);                 /* cache key hit? */
    if (lua_type(L, -1) == LUA_TUSERDATA) {
        dc_re *re = lua_touserdata(L, -1);
        lua_replace(L, cache);
        lua_settop(L, cache);
        return re;
    }
    lua_pop(L, 1);
    dc_re *re = re_compile(L, pidx, copts, flags);  /* cache key re|err */
    if (re) {
        lua_rawgeti(L, cache, 0);
        lua_Integer n = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (n >= RE_CACHE_MAX) {          /* full: start a new cache, the old one is garbage */
            lua_createtable(L, 0, 8);
            lua_replace(L, cache);
            lua_pushvalue(L, cache);
            lua_setfield(L, LUA_REGISTRYINDEX, RE_CACHE);
            n = 0;
        }
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, cache);
        lua_pushinteger(L, n + 1);
        lua_rawseti(L, cache, 0);
    }
    lua_replace(L, cache);
    lua_settop(L, cache);
    return re;
}

/* Whether s is well-formed UTF-8 as PCRE2 defines it (no overlong forms, no surrogates,
 * nothing past U+10FFFF, no truncated sequence), charged as it goes. Stricter never hurts:
 * a subject refused here is matched with PCRE2's own check, which reports the error. */
static int utf8_valid(lua_State *L, const unsigned char *s, size_t len)
{
    size_t i = 0, mark = 0;
    while (i < len) {
        if (i >= mark)
            mark = i + dc_cost_piece(L, len - i);
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

/* For a UTF pattern: whether the subject was found valid (then PCRE2 need not check it again
 * on every search of a loop). 0 for other patterns. Stack: [-0, +0] */
static int subject_checked(lua_State *L, const dc_re *re, const char *subj, size_t len)
{
    return re->utf && utf8_valid(L, (const unsigned char *)subj, len);
}

/* Runs the pattern on subj from byte pos; *ov gets the offsets. checked: the subject is known
 * to be valid UTF-8 (subject_checked). Charges PCRE2's steps and the bytes the search passed
 * over. Returns pcre2_match's code (> 0 match). Stack: [-0, +0] */
static int re_exec(lua_State *L, dc_re *re, const char *subj, size_t len, size_t pos,
                   int checked, PCRE2_SIZE **ov)
{
    if (pos > len)
        return PCRE2_ERROR_NOMATCH;
    re_shared *sh = shared_for(L, re);
    if (!sh)
        return PCRE2_ERROR_NOMEMORY;
    /* PCRE2 skips its check only for a subject validated here and a start on a character
     * boundary; anything else it checks itself and refuses with an error */
    uint32_t mo = 0;
    if (re->utf && checked && (pos == len || ((unsigned char)subj[pos] & 0xc0) != 0x80))
        mo = PCRE2_NO_UTF_CHECK;
    dc_call *call = dc_sbx_current(L);
    *ov = pcre2_get_ovector_pointer(sh->md);
    sh->steps = 0;
    sh->budget = call->insn_left > sh->pending ? call->insn_left - sh->pending : 0;
    sh->deadline_ms = call->deadline_ms;
    int rc;
    if (re->flags & RE_DFA) {
        if (!sh->dfa_ws)
            sh->dfa_ws = re_malloc(RE_DFA_WS_COUNT * sizeof(int), &sh->mem);
        if (!sh->dfa_ws)
            return PCRE2_ERROR_NOMEMORY;
        /* every match that ends at a different place, the longest first; more than the
         * ovector holds is 0, and the longest is there all the same */
        rc = pcre2_dfa_match(re->code, (PCRE2_SPTR)subj, len, pos, mo, sh->md, sh->mctx,
                             sh->dfa_ws, RE_DFA_WS_COUNT);
        if (rc >= 0)
            rc = 1;
    } else {
        rc = pcre2_match(re->code, (PCRE2_SPTR)subj, len, pos, mo, sh->md, sh->mctx);
    }
    size_t end = len;  /* no match: the search passed over the rest of the subject */
    if (rc > 0)
        end = (*ov)[1] < pos ? pos : (*ov)[1] > len ? len : (*ov)[1];
    /* a piece at a time (each charge reads the clock); at once when the steps used the call's
     * budget up (RE_ERROR_QUOTA: trips the instruction quota) or the deadline is past
     * (RE_ERROR_TIME: trips the time quota) */
    sh->pending += sh->steps + (end - pos) + 1;
    if (sh->pending >= DC_COST_PIECE || rc == RE_ERROR_QUOTA || rc == RE_ERROR_TIME) {
        uint64_t units = sh->pending;
        sh->pending = 0;
        dc_sbx_charge(L, units);
    }
    if (rc == RE_ERROR_TIME)
        dc_api_check_time(L);
    return rc;
}

/* Pushes "pcre2_match() failed: REASON" for a negative code. Stack: [-0, +1] */
static void push_exec_error(lua_State *L, int rc)
{
    PCRE2_UCHAR msg[128];
    if (rc == 0)
        memcpy(msg, "capture size too small", 23);
    else if (rc == RE_ERROR_STEPS || rc == RE_ERROR_TIME || rc == RE_ERROR_QUOTA)
        memcpy(msg, "match limit exceeded", 21);
    else if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) {
        /* a subject that is not UTF-8: OpenResty's words, the code alone */
        lua_pushfstring(L, "pcre_exec() failed: %d", rc);
        return;
    } else
        pcre2_get_error_message(rc, msg, sizeof msg);
    lua_pushfstring(L, "pcre2_match() failed: %s", (const char *)msg);
}

/* Where the next search starts after a match [s, e): e, or one character further after an
 * empty match. */
static size_t next_pos(const dc_re *re, const char *subj, size_t len, size_t s, size_t e)
{
    if (e != s)
        return e;
    e++;
    if (re->utf)
        while (e < len && ((unsigned char)subj[e] & 0xc0) == 0x80)
            e++;
    return e;
}

/* Pushes the captures table of the last match (into the table at res_idx when nonzero):
 * [0] the match, [1..n] the groups (false when unset), and named groups. Stack: [-0, +1] */
static void push_captures(lua_State *L, const dc_re *re, const PCRE2_SIZE *ov,
                          const char *subj, int rc, int res_idx)
{
    if (res_idx)
        lua_pushvalue(L, res_idx);
    else
        lua_createtable(L, (int)re->ncap, (int)re->name_count);
    int t = lua_gettop(L);
    dc_meter m = {re->name_count};
    for (uint32_t i = 0; i <= re->ncap; i++) {
        if ((int)i < rc && ov[2 * i] != PCRE2_UNSET && ov[2 * i + 1] >= ov[2 * i]) {
            /* each capture is copied (or compared with an equal string): charged by size */
            dc_meter_add(L, &m, ov[2 * i + 1] - ov[2 * i] + 1);
            lua_pushlstring(L, subj + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        } else {
            dc_meter_add(L, &m, 1);
            lua_pushboolean(L, 0);
        }
        lua_rawseti(L, t, (int)i);
    }
    dc_meter_flush(L, &m);
    int dup = (re->flags & RE_DUPNAMES) != 0;
    for (int pass = dup ? 0 : 1; pass < 2; pass++) {
        for (uint32_t i = 0; i < re->name_count; i++) {
            PCRE2_SPTR e = re->names + (size_t)i * re->name_size;
            int n = (e[0] << 8) | e[1];
            lua_pushstring(L, (const char *)e + 2);
            if (pass == 0) {           /* duplicate names: start from empty arrays */
                lua_pushnil(L);
                lua_rawset(L, t);
                continue;
            }
            lua_rawgeti(L, t, n);
            if (!dup) {
                lua_rawset(L, t);
                continue;
            }
            if (!lua_toboolean(L, -1)) {  /* unmatched groups are not collected */
                lua_pop(L, 2);
                continue;
            }
            lua_pushvalue(L, -2);
            lua_rawget(L, t);             /* name cap arr|nil */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_createtable(L, 2, 0);
                lua_pushvalue(L, -3);
                lua_pushvalue(L, -2);
                lua_rawset(L, t);         /* t[name] = arr */
            }
            lua_insert(L, -2);            /* name arr cap */
            lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
            lua_pop(L, 2);
        }
    }
}

/* The search start from ctx.pos (1-based) when ctx (at idx) is a table. Stack: [-0, +0] */
static size_t ctx_pos(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    lua_pushliteral(L, "pos");
    lua_rawget(L, idx);  /* raw: no plugin metamethod runs between here and the match */
    lua_Number p = lua_tonumber(L, -1);  /* a number, a numeric string, else 0 */
    lua_pop(L, 1);
    /* NaN, negative, fractional, past the end: nothing below 1, at most 2^50 */
    return !(p > 1) ? 0 : p > 1e15 ? (size_t)1e15 : (size_t)p - 1;
}

/* ctx.pos = end + 1 when ctx (at idx) is a table. Stack: [-0, +0] */
static void set_ctx_pos(lua_State *L, int idx, size_t end)
{
    if (!lua_istable(L, idx))
        return;
    lua_pushliteral(L, "pos");
    lua_pushnumber(L, (lua_Number)end + 1);
    lua_rawset(L, idx);
}

/* ngx.re.match(subject, regex, options?, ctx?, res?). Stack: [-0, +1|+2] */
static int re_match(lua_State *L)
{
    size_t len;
    const char *subj = luaL_checklstring(L, 1, &len);
    lua_settop(L, 5);
    dc_re *re = re_get(L, 2, 3);
    if (!re) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    PCRE2_SIZE *ov;
    size_t pos = ctx_pos(L, 4);
    int rc = re_exec(L, re, subj, len, pos, pos <= len && subject_checked(L, re, subj, len),
                     &ov);
    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushnil(L);
        return 1;
    }
    if (rc <= 0) {
        lua_pushnil(L);
        push_exec_error(L, rc);
        return 2;
    }
    /* the captures first: they read the shared match data */
    size_t end = ov[1];
    push_captures(L, re, ov, subj, rc, lua_istable(L, 5) ? 5 : 0);
    set_ctx_pos(L, 4, end);
    return 1;
}

/* ngx.re.find(subject, regex, options?, ctx?, nth?): from, to. Stack: [-0, +1|+2|+3] */
static int re_find(lua_State *L)
{
    size_t len;
    const char *subj = luaL_checklstring(L, 1, &len);
    lua_settop(L, 5);
    lua_Number nth = luaL_optnumber(L, 5, 0);
    dc_re *re = re_get(L, 2, 3);
    if (!re) {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushvalue(L, -3);
        return 3;
    }
    PCRE2_SIZE *ov;
    size_t pos = ctx_pos(L, 4);
    int rc = re_exec(L, re, subj, len, pos, pos <= len && subject_checked(L, re, subj, len),
                     &ov);
    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushnil(L);
        return 1;
    }
    if (rc <= 0) {
        lua_pushnil(L);
        lua_pushnil(L);
        push_exec_error(L, rc);
        return 3;
    }
    size_t end = ov[1];
    size_t k = !(nth > 0) ? 0 : nth > re->ncap ? (size_t)re->ncap + 1 : (size_t)nth;
    int found = k <= re->ncap && (int)k < rc && ov[2 * k] != PCRE2_UNSET;
    lua_Number from = found ? (lua_Number)ov[2 * k] + 1 : 0;
    lua_Number to = found ? (lua_Number)ov[2 * k + 1] : 0;
    set_ctx_pos(L, 4, end);
    if (k > re->ncap) {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushliteral(L, "nth out of bound");
        return 3;
    }
    if (!found) {
        lua_pushnil(L);
        lua_pushnil(L);
        return 2;
    }
    lua_pushnumber(L, from);
    lua_pushnumber(L, to);
    return 2;
}

/* The gmatch iterator; upvalues: regex, subject, next position (nil when done), whether the
 * subject was found valid UTF-8. Stack: [-0, +1|+2] */
static int gmatch_iter(lua_State *L)
{
    if (lua_isnil(L, lua_upvalueindex(3))) {
        lua_pushnil(L);
        return 1;
    }
    dc_re *re = lua_touserdata(L, lua_upvalueindex(1));
    size_t len;
    const char *subj = lua_tolstring(L, lua_upvalueindex(2), &len);
    size_t pos = (size_t)lua_tonumber(L, lua_upvalueindex(3));
    PCRE2_SIZE *ov;
    int rc = re_exec(L, re, subj, len, pos, lua_toboolean(L, lua_upvalueindex(4)), &ov);
    if (rc <= 0) {
        lua_pushnil(L);
        lua_replace(L, lua_upvalueindex(3));
        lua_pushnil(L);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 1;
        push_exec_error(L, rc);
        return 2;
    }
    size_t next = next_pos(re, subj, len, ov[0], ov[1]);
    if (next > len && ov[0] == ov[1])
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)next);
    lua_replace(L, lua_upvalueindex(3));
    push_captures(L, re, ov, subj, rc, 0);
    return 1;
}

/* ngx.re.gmatch(subject, regex, options?): an iterator, or nil and an error.
 * Stack: [-0, +1|+2] */
static int re_gmatch(lua_State *L)
{
    size_t len;
    const char *subj = luaL_checklstring(L, 1, &len);
    lua_settop(L, 3);
    dc_re *re = re_get(L, 2, 3);
    if (!re) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    lua_pushboolean(L, subject_checked(L, re, subj, len));
    lua_pushcclosure(L, gmatch_iter, 4);
    return 1;
}

/* Walks the replacement template t ($0, $1, ${12}, $$); with b, appends its expansion for the
 * match in ov, else only checks it. Returns -1 when the template is invalid.
 * Stack: [-0, +0] */
static int tpl_walk(lua_State *L, dc_ubuf *b, const char *t, size_t n, const dc_re *re,
                    const PCRE2_SIZE *ov, const char *subj, int rc)
{
    size_t i = 0;
    while (i < n) {
        if (t[i] != '$') {
            const char *d = memchr(t + i, '$', n - i);
            size_t j = d ? (size_t)(d - t) : n;
            if (b)
                dc_ubuf_add(L, b, t + i, j - i);
            i = j;
            continue;
        }
        if (++i == n)
            return -1;
        if (t[i] == '$') {
            if (b)
                dc_ubuf_add(L, b, "$", 1);
            i++;
            continue;
        }
        int bracket = t[i] == '{';
        if (bracket && ++i == n)
            return -1;
        if (t[i] < '0' || t[i] > '9')
            return -1;  /* named captures are not supported, as in lua-nginx-module */
        size_t k = 0;
        while (i < n && t[i] >= '0' && t[i] <= '9') {
            if (k < 1000000)
                k = k * 10 + (size_t)(t[i] - '0');
            i++;
        }
        if (bracket) {
            if (i == n || t[i] != '}')
                return -1;
            i++;
        }
        if (b && (int)k < rc && k <= re->ncap && ov[2 * k] != PCRE2_UNSET)
            dc_ubuf_add(L, b, subj + ov[2 * k], ov[2 * k + 1] - ov[2 * k]);
    }
    return 0;
}

/* Appends the replacement function's result (at the top, popped) as tostring would.
 * Stack: [-1, +0] */
static void add_func_result(lua_State *L, dc_ubuf *b)
{
    size_t len;
    const char *s;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
        s = lua_tolstring(L, -1, &len);
        dc_ubuf_add(L, b, s, len);
        break;
    case LUA_TNIL:
        dc_ubuf_add(L, b, "nil", 3);
        break;
    case LUA_TBOOLEAN:
        s = lua_toboolean(L, -1) ? "true" : "false";
        dc_ubuf_add(L, b, s, strlen(s));
        break;
    default:
        luaL_error(L, "attempt to use a %s value as a replacement", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

/* ngx.re.sub / gsub(subject, regex, replace, options?): new string and count, or nil, nil and
 * an error. Stack: [-0, +2|+3] */
static int re_substitute(lua_State *L, int global)
{
    size_t len, tlen = 0;
    const char *subj = luaL_checklstring(L, 1, &len);
    const char *tpl = NULL;
    int func = lua_type(L, 3) == LUA_TFUNCTION;
    if (!func) {
        if (lua_type(L, 3) != LUA_TSTRING && lua_type(L, 3) != LUA_TNUMBER)
            return luaL_error(L, "bad argument #3 to '%s' (string or function expected, got "
                              "%s)", global ? "gsub" : "sub", luaL_typename(L, 3));
        tpl = lua_tolstring(L, 3, &tlen);
    }
    lua_settop(L, 4);
    dc_re *re = re_get(L, 2, 4);  /* at 5 */
    dc_sbx_charge(L, tlen);  /* the template's check */
    if (!re || (!func && tpl_walk(L, NULL, tpl, tlen, re, NULL, subj, 0) != 0)) {
        if (re)
            lua_pushliteral(L, "failed to compile the replacement template");
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushvalue(L, -3);
        return 3;
    }
    dc_ubuf *b = dc_ubuf_new(L);  /* at 6 */
    size_t pos = 0, cp = 0;
    lua_Integer count = 0;
    int checked = subject_checked(L, re, subj, len);
    dc_meter m = {0};
    while (pos <= len) {
        size_t before = b->len;
        PCRE2_SIZE *ov;
        int rc = re_exec(L, re, subj, len, pos, checked, &ov);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc <= 0) {
            lua_pushnil(L);
            lua_pushnil(L);
            push_exec_error(L, rc);
            return 3;
        }
        count++;
        size_t s = ov[0], e = ov[1];  /* the callback may match again and reuse ov */
        if (s < cp || e < s || e > len)
            return luaL_error(L, "%s: match outside the subject", global ? "gsub" : "sub");
        if (func) {
            push_captures(L, re, ov, subj, rc, 0);
            dc_ubuf_add(L, b, subj + cp, s - cp);
            lua_pushvalue(L, 3);
            lua_insert(L, -2);
            dc_sbx_call(L, 1, 1);
            add_func_result(L, b);
        } else {
            dc_ubuf_add(L, b, subj + cp, s - cp);
            tpl_walk(L, b, tpl, tlen, re, ov, subj, rc);
        }
        /* the replacement built for this match: the template walked, the bytes written */
        dc_meter_add(L, &m, (func ? 0 : tlen) + (b->len - before) + 1);
        cp = e;
        pos = next_pos(re, subj, len, s, e);
        if (!global)
            break;
    }
    dc_meter_flush(L, &m);
    if (count == 0) {
        lua_pushvalue(L, 1);
    } else {
        dc_sbx_charge(L, len - cp);
        dc_ubuf_add(L, b, subj + cp, len - cp);
        dc_ubuf_push(L, b);
    }
    lua_pushinteger(L, count);
    return 2;
}

/* ngx.re.sub. Stack: [-0, +2|+3] */
static int re_sub(lua_State *L)
{
    return re_substitute(L, 0);
}

/* ngx.re.gsub. Stack: [-0, +2|+3] */
static int re_gsub(lua_State *L)
{
    return re_substitute(L, 1);
}

void dc_api_open_re(lua_State *L)
{
#define REG(area, kind, path, field, fn, ph, allow) DC_API_REG_IF(RE, area, kind, field, fn)
    static const luaL_Reg fns[] = {DC_API_TABLE(REG){NULL, NULL}};
#undef REG
    lua_createtable(L, 0, 5);
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "re");
    luaL_newmetatable(L, RE_MT);
    lua_pushcfunction(L, re_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, RE_SHARED);
    lua_pushcfunction(L, shared_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
