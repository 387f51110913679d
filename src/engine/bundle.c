/* bundle.c - dc_bundle_load and the bundle's accessors: the JSON structure and limits (whose
 * failure refuses the bundle whole), general settings, domains, the shared top-level "plugins"
 * list and previous versions kept after a refusal. One plugin's fields: bundle_plugin.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_load.h"

static const char *const top_fields[] = {"general", "domains", "plugins", NULL};
static const char *const general_fields[] = {"status", "skip_domains", "version", NULL};
static const char *const domain_fields[] = {"name", "plugins", NULL};

/* An entry of the top-level "plugins" list, validated once whatever references it. */
typedef struct shared {
    uint32_t pos;       /* index in the list */
    int has_id;
    int64_t id;
    int ok;             /* pl is usable */
    int referenced;     /* by a domain that loads */
    int64_t index;      /* in the bundle's plugins once referenced, else -1 */
    dc_plugin pl;       /* moved into the bundle on first reference */
    dc_refusal why;     /* when !ok */
} shared;

typedef struct shared_list {
    shared *v;
    uint32_t n;
    shared **byid;      /* entries with an id, sorted by id; first of each id only */
    uint32_t nbyid;
} shared_list;

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Writes the reason the bundle is refused whole into err; returns rc. */
static dc_rc whole(dc_rc rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static dc_rc whole(dc_rc rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- freeing ---- */

static void bundle_free(dc_bundle *b)
{
    dc_hostset_free(b->hosts);
    for (uint32_t i = 0; i < b->nskip; i++)
        pcre2_code_free(b->skip[i]);
    free(b->skip);
    for (uint32_t i = 0; i < b->ndomains; i++) {
        free(b->domains[i].name);
        pcre2_code_free(b->domains[i].re);
        free(b->domains[i].plugins);
    }
    free(b->domains);
    for (uint32_t i = 0; i < b->nplugins; i++)
        dc_plugin_clear(&b->plugins[i]);
    free(b->plugins);
    for (uint32_t i = 0; i < b->nproblems; i++) {
        dc_problem *p = &b->problems[i];
        free((void *)p->path);
        free((void *)p->domain);
        free((void *)p->plugin);
        free((void *)p->message);
    }
    free(b->problems);
    free(b);
}

static void shared_free(shared_list *sl)
{
    for (uint32_t i = 0; i < sl->n; i++) {
        dc_plugin_clear(&sl->v[i].pl);
        dc_refusal_clear(&sl->v[i].why);
    }
    free(sl->v);
    free(sl->byid);
}

/* ---- JSON text and structure: failures here refuse the bundle whole ---- */

static dc_rc parse_json(const char *json, size_t len, cJSON **out, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    size_t off = end && end >= json ? (size_t)(end - json) : 0;
    if (off > len)
        off = len;
    *out = NULL;
    if (root) {
        while (off < len && (json[off] == ' ' || json[off] == '\t' || json[off] == '\r' ||
                             json[off] == '\n'))
            off++;
        if (off == len) {
            *out = root;
            return DC_OK;
        }
        cJSON_Delete(root);
        return whole(DC_EJSON, err, errlen, "not JSON: unexpected text after the value at byte %zu",
                     off);
    }
    size_t line = 1;
    for (size_t i = 0; i < off; i++)
        line += json[i] == '\n';
    return whole(DC_EJSON, err, errlen, "not JSON: syntax error at byte %zu (line %zu)", off, line);
}

/* ---- strings with a NUL byte ----
 * cJSON hands strings out NUL-terminated, so "\u0000" would silently cut a name, a phase or
 * the code a reviewer reads short of what runs. The text is scanned (it parsed already, so its
 * structure is sound) and such a string refuses the bundle, named by its JSON path. */

#define NUL_PATH_FRAMES 32

typedef struct nul_frame {
    int obj;
    uint32_t index;        /* arrays: the element's index */
    const char *key;       /* objects: the current key, raw text */
    size_t keylen;
} nul_frame;

static int hex4_zero(const char *s, size_t avail)
{
    return avail >= 4 && s[0] == '0' && s[1] == '0' && s[2] == '0' && s[3] == '0';
}

static void nul_path(const nul_frame *f, uint32_t depth, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t k = 0; k < depth && k < NUL_PATH_FRAMES && n < outlen; k++) {
        int w;
        if (f[k].obj)
            w = snprintf(out + n, outlen - n, "%s%.*s", n ? "." : "",
                         (int)(f[k].keylen > 40 ? 40 : f[k].keylen), f[k].key ? f[k].key : "");
        else
            w = snprintf(out + n, outlen - n, "[%u]", f[k].index);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n >= outlen && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

static dc_rc check_nul(const char *s, size_t len, char *err, size_t errlen)
{
    nul_frame f[NUL_PATH_FRAMES];
    uint32_t depth = 0;
    int expect_key = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        nul_frame *top = depth && depth <= NUL_PATH_FRAMES ? &f[depth - 1] : NULL;
        if (c == '{' || c == '[') {
            if (depth < NUL_PATH_FRAMES)
                f[depth] = (nul_frame){c == '{', 0, NULL, 0};
            depth++;
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            expect_key = 0;
        } else if (c == ',') {
            if (top && !top->obj)
                top->index++;
            expect_key = top ? top->obj : 0;
        } else if (c == '"') {
            size_t j = i + 1;
            int nul = 0;
            while (j < len && s[j] != '"') {
                if (s[j] == '\\') {
                    nul |= j + 1 < len && s[j + 1] == 'u' && hex4_zero(s + j + 2, len - j - 2);
                    j += 2;
                } else {
                    nul |= s[j] == '\0';
                    j++;
                }
            }
            int is_key = expect_key && top && top->obj;
            if (is_key) {
                top->key = s + i + 1;
                top->keylen = j - i - 1;
                expect_key = 0;
            }
            if (nul) {
                char path[256];
                nul_path(f, depth, path, sizeof path);
                return whole(DC_EBUNDLE, err, errlen,
                             "%s: %s contains a NUL byte (\\u0000), which would cut it short: "
                             "refused", *path ? path : "top level", is_key ? "key" : "string");
            }
            i = j;
        }
    }
    return DC_OK;
}

/* Control bytes in a name would forge log lines and confuse whoever reads a trace. */
int dc_ld_control_byte(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return *p;
    return -1;
}

/* general.version: the publisher's number for the bundle, a whole number that JSON's doubles
 * carry exactly (0 .. 2^53). */
static int version_ok(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    return d >= 0 && d <= 9007199254740992.0 && d == (double)(int64_t)d;
}

static const char *version_shape(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valuedouble < 0 ? "a negative number" : "a fraction or a number too large";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    return cJSON_IsArray(v) ? "an array" : "an object";
}

static dc_rc check_general(const cJSON *g, const dc_limits *lim, char *err, size_t errlen)
{
    if (!cJSON_IsObject(g))
        return whole(DC_EBUNDLE, err, errlen, "general: expected an object");
    const cJSON *v = get(g, "status");
    if (v && !cJSON_IsString(v))
        return whole(DC_EBUNDLE, err, errlen, "general.status: expected a string");
    v = get(g, "version");
    if (v && !version_ok(v))
        return whole(DC_EBUNDLE, err, errlen,
                     "general.version: expected a whole number from 0 to 2^53 (got %s)",
                     version_shape(v));
    v = get(g, "skip_domains");
    if (!v)
        return DC_OK;
    if (!cJSON_IsArray(v))
        return whole(DC_EBUNDLE, err, errlen, "general.skip_domains: expected an array of strings");
    int n = cJSON_GetArraySize(v);
    if ((uint64_t)n > lim->max_skip_domains)
        return whole(DC_ELIMIT, err, errlen,
                     "general.skip_domains: %d entries, over the limit of %u (max_skip_domains)",
                     n, lim->max_skip_domains);
    uint32_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e))
            return whole(DC_EBUNDLE, err, errlen, "general.skip_domains[%u]: expected a string", i);
        size_t l = strlen(e->valuestring);
        if (l > lim->max_pattern_bytes)
            return whole(DC_ELIMIT, err, errlen,
                         "general.skip_domains[%u]: pattern is %zu bytes, over the limit of %u "
                         "(max_pattern_bytes)", i, l, lim->max_pattern_bytes);
        i++;
    }
    return DC_OK;
}

/* Adds the domain's plugin entries (objects and ids alike) to *nplugins. */
static dc_rc check_domain(const cJSON *d, uint32_t i, const dc_limits *lim, uint64_t *nplugins,
                          char *err, size_t errlen)
{
    if (!cJSON_IsObject(d))
        return whole(DC_EBUNDLE, err, errlen, "domains[%u]: expected an object", i);
    if (!cJSON_IsString(get(d, "name")))
        return whole(DC_EBUNDLE, err, errlen, "domains[%u].name: expected a string", i);
    const cJSON *pl = get(d, "plugins");
    if (!pl)
        return DC_OK; /* no plugins: harmless */
    if (!cJSON_IsArray(pl))
        return whole(DC_EBUNDLE, err, errlen, "domains[%u].plugins: expected an array", i);
    /* An id costs what a plugin costs where it matters (a run per request, a slot in every
     * host's match), so references count like plugin objects. */
    int n = cJSON_GetArraySize(pl);
    if ((uint64_t)n > lim->max_plugins_per_domain)
        return whole(DC_ELIMIT, err, errlen,
                     "domains[%u].plugins: %d entries, over the limit of %u "
                     "(max_plugins_per_domain)", i, n, lim->max_plugins_per_domain);
    *nplugins += (uint64_t)n;
    return DC_OK;
}

static dc_rc check_structure(const cJSON *root, const dc_limits *lim, char *err, size_t errlen)
{
    if (!cJSON_IsObject(root))
        return whole(DC_EBUNDLE, err, errlen, "top level: expected an object");
    dc_rc rc = check_general(get(root, "general"), lim, err, errlen);
    if (rc != DC_OK)
        return rc;
    const cJSON *doms = get(root, "domains");
    if (!cJSON_IsArray(doms))
        return whole(DC_EBUNDLE, err, errlen, "domains: expected an array");
    const cJSON *sh = get(root, "plugins");
    if (sh && !cJSON_IsArray(sh))
        return whole(DC_EBUNDLE, err, errlen, "plugins: expected an array");
    int nd = cJSON_GetArraySize(doms);
    if ((uint64_t)nd > lim->max_domains)
        return whole(DC_ELIMIT, err, errlen, "domains: %d domains, over the limit of %u", nd,
                     lim->max_domains);
    uint64_t np = sh ? (uint64_t)cJSON_GetArraySize(sh) : 0;
    uint32_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, doms) {
        if ((rc = check_domain(d, i++, lim, &np, err, errlen)) != DC_OK)
            return rc;
    }
    if (np > lim->max_plugins)
        return whole(DC_ELIMIT, err, errlen,
                     "plugins: %llu plugins and references in the bundle, over the limit of %u "
                     "(max_plugins)", (unsigned long long)np, lim->max_plugins);
    return DC_OK;
}

/* ---- general ---- */

/* Adds one compiled pattern to the bundle's total; over the limit refuses the bundle whole. */
static dc_rc pattern_bytes(dc_loader *ld, size_t bytes, const char *what, uint32_t i, char *err,
                           size_t errlen)
{
    ld->pattern_bytes += bytes;
    if (ld->pattern_bytes <= ld->lim->max_patterns_total_bytes)
        return DC_OK;
    return whole(DC_ELIMIT, err, errlen,
                 "%s[%u]: the bundle's regexes compile to more than %zu bytes in all "
                 "(max_patterns_total_bytes)", what, i, ld->lim->max_patterns_total_bytes);
}

static dc_rc load_general(dc_loader *ld, const cJSON *g, char *err, size_t errlen)
{
    dc_bundle *b = ld->b;
    dc_ld_unknown_fields(ld, g, "general", general_fields, NULL, NULL);
    const cJSON *st = get(g, "status");
    b->enabled = st && strcmp(st->valuestring, "enabled") == 0;
    const cJSON *ver = get(g, "version");
    b->has_version = ver != NULL;
    b->version = ver ? (int64_t)ver->valuedouble : 0;
    const cJSON *sk = get(g, "skip_domains");
    int n = sk ? cJSON_GetArraySize(sk) : 0;
    if (n == 0)
        return DC_OK;
    b->skip = calloc((size_t)n, sizeof *b->skip);
    if (!b->skip)
        return whole(DC_ENOMEM, err, errlen, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, sk) {
        char rerr[256];
        size_t bytes = 0;
        /* a broken skip list must not start running plugins on hosts meant to be skipped */
        dc_rc rc = dc_re_compile_bounded(e->valuestring, strlen(e->valuestring),
                                         ld->lim->max_pattern_compiled_bytes, &b->skip[b->nskip],
                                         &bytes, rerr, sizeof rerr);
        if (rc != DC_OK)
            return whole(rc, err, errlen, "general.skip_domains[%u]: %s", b->nskip, rerr);
        b->nskip++;
        if ((rc = pattern_bytes(ld, bytes, "general.skip_domains", b->nskip - 1, err,
                                errlen)) != DC_OK)
            return rc;
    }
    return DC_OK;
}

/* ---- plugins in the bundle ---- */

/* Moves *p into the bundle (zeroing *p). Returns its index, or -1 on OOM. */
static int64_t push_plugin(dc_loader *ld, dc_plugin *p)
{
    dc_bundle *b = ld->b;
    if (ld->oom)
        return -1;
    if (b->nplugins == ld->plugins_cap) {
        uint32_t cap = ld->plugins_cap ? ld->plugins_cap * 2 : 16;
        dc_plugin *v = realloc(b->plugins, cap * sizeof *v);
        if (!v) {
            ld->oom = 1;
            return -1;
        }
        b->plugins = v;
        ld->plugins_cap = cap;
    }
    b->plugins[b->nplugins] = *p;
    memset(p, 0, sizeof *p);
    return b->nplugins++;
}

/* Room was made for every entry of the domain's plugins array, one index at most each. */
static void add_index(dc_domain *dom, int64_t idx)
{
    if (idx >= 0)
        dom->plugins[dom->nplugins++] = (uint32_t)idx;
}

/* The plugin named pname of a domain named dname in prev, or NULL. */
static const dc_plugin *find_previous(const dc_bundle *prev, const char *dname,
                                      const char *pname)
{
    for (uint32_t k = 0; prev && k < prev->ndomains; k++) {
        const dc_domain *d = &prev->domains[k];
        if (strcmp(d->name, dname) != 0)
            continue;
        for (uint32_t j = 0; j < d->nplugins; j++)
            if (strcmp(prev->plugins[d->plugins[j]].name, pname) == 0)
                return &prev->plugins[d->plugins[j]];
    }
    return NULL;
}

/* Index of a copy of prev's plugin p in the new bundle (one copy however often kept). */
static int64_t keep_previous(dc_loader *ld, const dc_plugin *p)
{
    for (uint32_t i = 0; i < ld->nkept; i++)
        if (ld->kept[i].prev == p)
            return ld->kept[i].index;
    if (ld->nkept == ld->kept_cap) {
        uint32_t cap = ld->kept_cap ? ld->kept_cap * 2 : 8;
        dc_kept *v = realloc(ld->kept, cap * sizeof *v);
        if (!v) {
            ld->oom = 1;
            return -1;
        }
        ld->kept = v;
        ld->kept_cap = cap;
    }
    dc_plugin c = *p;
    c.kept_previous = 1;
    c.name = strdup(p->name);
    c.bc = malloc(p->bclen ? p->bclen : 1);
    if (!c.name || !c.bc) {
        dc_plugin_clear(&c);
        ld->oom = 1;
        return -1;
    }
    memcpy(c.bc, p->bc, p->bclen);
    int64_t idx = push_plugin(ld, &c);
    dc_plugin_clear(&c); /* a no-op unless the push failed */
    if (idx >= 0)
        ld->kept[ld->nkept++] = (dc_kept){p, (uint32_t)idx};
    return idx;
}

/* A plugin of dom was refused (why): its previous version stays, else it is left out. */
static void refused(dc_loader *ld, dc_domain *dom, const char *pname, const dc_refusal *why)
{
    if (ld->oom)
        return;
    const dc_plugin *p = pname ? find_previous(ld->prev, dom->name, pname) : NULL;
    char *path = dc_ld_strf(ld, "%s", why->path);
    if (!p) {
        dc_ld_problem(ld, DC_PROBLEM_PLUGIN_LEFT_OUT, path, dom->name, pname, why->msg);
        return;
    }
    add_index(dom, keep_previous(ld, p));
    char *msg = dc_ld_strf(ld, "%s; the previous version stays in force", why->msg);
    dc_ld_problem(ld, DC_PROBLEM_KEPT_PREVIOUS, path, dom->name, pname, msg);
    free(msg);
}

/* ---- the shared top-level list ---- */

static int cmp_id(const void *a, const void *b)
{
    const shared *x = *(const shared *const *)a, *y = *(const shared *const *)b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorts the entries with an id; a later entry repeating an id is refused. */
static void index_ids(dc_loader *ld, shared_list *sl)
{
    if (sl->n == 0)
        return;
    sl->byid = malloc(sl->n * sizeof *sl->byid);
    if (!sl->byid) {
        ld->oom = 1;
        return;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < sl->n; i++)
        if (sl->v[i].has_id)
            sl->byid[n++] = &sl->v[i];
    qsort(sl->byid, n, sizeof *sl->byid, cmp_id);
    sl->nbyid = 0;
    for (uint32_t i = 0; i < n; i++) {
        shared *s = sl->byid[i];
        if (sl->nbyid == 0 || sl->byid[sl->nbyid - 1]->id != s->id) {
            sl->byid[sl->nbyid++] = s;
            continue;
        }
        s->ok = 0;
        dc_refusal_clear(&s->why);
        s->why.path = dc_ld_strf(ld, "plugins[%u].id", s->pos);
        s->why.msg = dc_ld_strf(ld, "duplicate id %lld: plugins[%u] has it already",
                                (long long)s->id, sl->byid[sl->nbyid - 1]->pos);
    }
}

static shared *find_shared(const shared_list *sl, int64_t id)
{
    uint32_t lo = 0, hi = sl->nbyid;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sl->byid[mid]->id == id)
            return sl->byid[mid];
        if (sl->byid[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void load_shared_entry(dc_loader *ld, shared *s, const cJSON *e)
{
    char path[32];
    snprintf(path, sizeof path, "plugins[%u]", s->pos);
    s->index = -1;
    if (!cJSON_IsObject(e)) {
        s->why.path = dc_ld_strf(ld, "%s", path);
        s->why.msg = dc_ld_strf(ld, "expected a plugin object");
        return;
    }
    s->has_id = dc_ld_json_int(get(e, "id"), &s->id) == 0;
    s->ok = dc_ld_plugin(ld, e, path, NULL, &s->pl, &s->why) == 0;
    if (s->ok && !s->has_id) {
        s->ok = 0;
        s->why.path = dc_ld_strf(ld, "%s.id", path);
        s->why.msg = dc_ld_strf(ld, "missing: domains refer to a plugin of this list by its id");
    }
}

static void load_shared(dc_loader *ld, const cJSON *arr, shared_list *sl)
{
    int n = arr ? cJSON_GetArraySize(arr) : 0;
    if (n == 0)
        return;
    sl->v = calloc((size_t)n, sizeof *sl->v);
    if (!sl->v) {
        ld->oom = 1;
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (ld->oom)
            return;
        sl->v[sl->n].pos = sl->n;
        load_shared_entry(ld, &sl->v[sl->n++], e);
    }
    index_ids(ld, sl);
}

/* Shared entries no loaded domain refers to: their problems are reported all the same. */
static void report_unreferenced(dc_loader *ld, shared_list *sl)
{
    for (uint32_t i = 0; i < sl->n && !ld->oom; i++) {
        shared *s = &sl->v[i];
        if (s->referenced || s->ok)
            continue;
        dc_ld_problem(ld, DC_PROBLEM_PLUGIN_LEFT_OUT, s->why.path, NULL, s->pl.name, s->why.msg);
        s->why.path = NULL; /* now the problem's */
    }
}

/* ---- domains ---- */

static void load_ref(dc_loader *ld, shared_list *sl, dc_domain *dom, int64_t id,
                     const char *path)
{
    shared *s = find_shared(sl, id);
    if (!s) {
        char *msg = dc_ld_strf(ld, "no plugin with id %lld in the top-level \"plugins\" list",
                               (long long)id);
        dc_ld_problem(ld, DC_PROBLEM_PLUGIN_LEFT_OUT, dc_ld_strf(ld, "%s", path), dom->name,
                      NULL, msg);
        free(msg);
        return;
    }
    s->referenced = 1;
    if (!s->ok) {
        refused(ld, dom, s->pl.name, &s->why);
        return;
    }
    if (s->index < 0)
        s->index = push_plugin(ld, &s->pl);
    add_index(dom, s->index);
}

static void load_entry(dc_loader *ld, shared_list *sl, dc_domain *dom, const cJSON *e,
                       uint32_t i, uint32_t j)
{
    char path[64];
    int64_t id;
    snprintf(path, sizeof path, "domains[%u].plugins[%u]", i, j);
    if (cJSON_IsObject(e)) {
        dc_plugin pl;
        dc_refusal why;
        if (dc_ld_plugin(ld, e, path, dom->name, &pl, &why) == 0)
            add_index(dom, push_plugin(ld, &pl));
        else
            refused(ld, dom, pl.name, &why);
        dc_plugin_clear(&pl);
        dc_refusal_clear(&why);
    } else if (dc_ld_json_int(e, &id) == 0) {
        load_ref(ld, sl, dom, id, path);
    } else {
        dc_ld_problem(ld, DC_PROBLEM_PLUGIN_LEFT_OUT, dc_ld_strf(ld, "%s", path), dom->name, NULL,
                      "expected a plugin object or the integer id of an entry of the top-level "
                      "\"plugins\" list");
    }
}

static void domain_left_out(dc_loader *ld, uint32_t i, const char *name, const char *msg)
{
    dc_ld_problem(ld, DC_PROBLEM_DOMAIN_LEFT_OUT, dc_ld_strf(ld, "domains[%u].name", i), name,
                  NULL, msg);
}

/* Fills the next domain slot from d; a name that is too long, has a control byte, or does not
 * compile (or compiles too large) leaves the domain out. Past the bundle's total of compiled
 * regex bytes the bundle is refused whole. */
static dc_rc load_domain(dc_loader *ld, shared_list *sl, const cJSON *d, uint32_t i, char *err,
                         size_t errlen)
{
    char path[32], rerr[256];
    const char *name = get(d, "name")->valuestring;
    size_t nlen = strlen(name), bytes = 0;
    pcre2_code *re = NULL;
    int ctl = dc_ld_control_byte(name);
    snprintf(path, sizeof path, "domains[%u]", i);
    dc_ld_unknown_fields(ld, d, path, domain_fields, ctl >= 0 ? NULL : name, NULL);
    if (nlen > ld->lim->max_name_bytes || nlen > ld->lim->max_pattern_bytes || ctl >= 0) {
        int by_name = nlen > ld->lim->max_name_bytes;
        char *q = ctl >= 0 ? dc_ld_quote(ld, name) : NULL;
        char *msg = ctl >= 0 ? dc_ld_strf(ld, "name %s contains the control byte 0x%02x",
                                          q ? q : "", ctl)
                    : by_name ? dc_ld_strf(ld, "name is %zu bytes, over the limit of %u", nlen,
                                           ld->lim->max_name_bytes)
                              : dc_ld_strf(ld, "pattern is %zu bytes, over the limit of %u "
                                           "(max_pattern_bytes)", nlen,
                                           ld->lim->max_pattern_bytes);
        /* the raw name is not handed on where it could reach a log line */
        domain_left_out(ld, i, ctl >= 0 ? NULL : name, msg);
        free(msg);
        free(q);
        return DC_OK;
    }
    int any = strcmp(name, "*") == 0;
    if (!any && dc_re_compile_bounded(name, nlen, ld->lim->max_pattern_compiled_bytes, &re,
                                      &bytes, rerr, sizeof rerr) != DC_OK) {
        domain_left_out(ld, i, name, rerr);
        return DC_OK;
    }
    dc_rc rc = pattern_bytes(ld, bytes, "domains", i, err, errlen);
    if (rc != DC_OK) {
        pcre2_code_free(re);
        return rc;
    }
    const cJSON *pls = get(d, "plugins");
    int np = pls ? cJSON_GetArraySize(pls) : 0;
    dc_domain *dom = &ld->b->domains[ld->b->ndomains];
    *dom = (dc_domain){.name = strdup(name), .any = any, .re = re};
    dom->plugins = np ? malloc((size_t)np * sizeof *dom->plugins) : NULL;
    ld->b->ndomains++; /* freed with the bundle from here on */
    if (!dom->name || (np && !dom->plugins)) {
        ld->oom = 1;
        return DC_OK;
    }
    uint32_t j = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, pls) {
        if (ld->oom)
            break;
        load_entry(ld, sl, dom, e, i, j++);
    }
    return DC_OK;
}

static dc_rc load_all(dc_loader *ld, shared_list *sl, const cJSON *root, char *err,
                      size_t errlen)
{
    dc_ld_unknown_fields(ld, root, "", top_fields, NULL, NULL);
    dc_rc rc = load_general(ld, get(root, "general"), err, errlen);
    if (rc != DC_OK)
        return rc;
    const cJSON *doms = get(root, "domains");
    int nd = cJSON_GetArraySize(doms);
    if (nd > 0 && !(ld->b->domains = calloc((size_t)nd, sizeof *ld->b->domains)))
        ld->oom = 1;
    load_shared(ld, get(root, "plugins"), sl);
    uint32_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, doms) {
        if (ld->oom)
            break;
        if ((rc = load_domain(ld, sl, d, i++, err, errlen)) != DC_OK)
            return rc;
    }
    report_unreferenced(ld, sl);
    return DC_OK;
}

/* The bundle's host patterns, skip_domains first (every one compiled, or the bundle was
 * refused), then the domains, in one matcher. */
static dc_rc build_hosts(const cJSON *root, dc_bundle *b, char *err, size_t errlen)
{
    uint32_t n = b->nskip + b->ndomains;
    const char **pats = calloc(n ? n : 1, sizeof *pats);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (!pats || !lens) {
        free(pats);
        free(lens);
        return whole(DC_ENOMEM, err, errlen, "out of memory");
    }
    const cJSON *g = get(root, "general"), *sk = g ? get(g, "skip_domains") : NULL, *e;
    uint32_t i = 0;
    cJSON_ArrayForEach(e, sk) {
        if (i < b->nskip) {
            pats[i] = e->valuestring;
            lens[i] = strlen(e->valuestring);
        }
        i++;
    }
    for (uint32_t d = 0; d < b->ndomains; d++) {
        if (!b->domains[d].any) {
            pats[b->nskip + d] = b->domains[d].name;
            lens[b->nskip + d] = strlen(b->domains[d].name);
        }
    }
    char herr[256];
    dc_rc rc = i == b->nskip ? dc_hostset_build(pats, lens, n, &b->hosts, herr, sizeof herr)
                             : DC_EINVAL;
    free(pats);
    free(lens);
    if (rc != DC_OK)
        return whole(rc, err, errlen, "host patterns: %s", rc == DC_EINVAL ? "skip list" : herr);
    /* the matcher answers for every domain from now on: the regexes compiled to check the
     * patterns are not kept (a poller would hold 10,000 of them, with their JIT code, for
     * nothing) */
    for (uint32_t d = 0; d < b->ndomains; d++) {
        pcre2_code_free(b->domains[d].re);
        b->domains[d].re = NULL;
    }
    return DC_OK;
}

static dc_rc build(const cJSON *root, const char *json, size_t len, const dc_limits *lim,
                   const dc_bundle *previous, dc_bundle **out, char *err, size_t errlen)
{
    dc_bundle *b = calloc(1, sizeof *b);
    if (!b)
        return whole(DC_ENOMEM, err, errlen, "out of memory");
    atomic_init(&b->refs, 1);
    b->hash = dc_hash64(json, len);
    dc_loader ld = {.lim = lim, .prev = previous, .b = b};
    shared_list sl = {0};
    dc_rc rc = load_all(&ld, &sl, root, err, errlen);
    dc_compiler_close(ld.cc);
    if (rc == DC_OK && ld.cc_rc != DC_OK) /* never compile unconfined instead */
        rc = whole(DC_ELUA, err, errlen, "%s", ld.cc_err);
    shared_free(&sl);
    free(ld.kept);
    free(ld.reuse);
    if (rc == DC_OK && ld.oom)
        rc = whole(DC_ENOMEM, err, errlen, "out of memory while loading the bundle");
    if (rc == DC_OK)
        rc = build_hosts(root, b, err, errlen);
    if (rc != DC_OK) {
        bundle_free(b);
        return rc;
    }
    *out = b;
    return DC_OK;
}

dc_rc dc_bundle_load(const char *json, size_t len, const dc_limits *limits,
                     const dc_bundle *previous, dc_bundle **out, char *err, size_t errlen)
{
    dc_limits def, own;
    if (!out || (!json && len))
        return whole(DC_EINVAL, err, errlen, "dc_bundle_load: bad argument");
    *out = NULL;
    dc_limits_default(&def);
    if (!limits) {
        limits = &def;
    } else {
        /* A caller that filled the older fields only leaves the newer ones 0, which no bound
         * means: they get their default rather than refusing every domain. */
        own = *limits;
        if (!own.max_name_bytes) own.max_name_bytes = def.max_name_bytes;
        if (!own.max_plugins_per_domain) own.max_plugins_per_domain = def.max_plugins_per_domain;
        if (!own.max_skip_domains) own.max_skip_domains = def.max_skip_domains;
        if (!own.max_pattern_bytes) own.max_pattern_bytes = def.max_pattern_bytes;
        if (!own.max_pattern_compiled_bytes)
            own.max_pattern_compiled_bytes = def.max_pattern_compiled_bytes;
        if (!own.max_patterns_total_bytes)
            own.max_patterns_total_bytes = def.max_patterns_total_bytes;
        limits = &own;
    }
    if (len > limits->max_bundle_bytes)
        return whole(DC_ELIMIT, err, errlen, "bundle is %zu bytes, over the limit of %zu", len,
                     limits->max_bundle_bytes);
    cJSON *root = NULL;
    dc_rc rc = parse_json(json ? json : "", len, &root, err, errlen);
    if (rc == DC_OK)
        rc = check_nul(json ? json : "", len, err, errlen);
    if (rc == DC_OK)
        rc = check_structure(root, limits, err, errlen);
    if (rc == DC_OK)
        rc = build(root, json ? json : "", len, limits, previous, out, err, errlen);
    cJSON_Delete(root);
    return rc;
}

/* ---- accessors ---- */

dc_bundle *dc_bundle_ref(dc_bundle *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void dc_bundle_unref(dc_bundle *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        bundle_free(b);
}

int dc_bundle_enabled(const dc_bundle *b)
{
    return b && b->enabled;
}

uint32_t dc_bundle_domain_count(const dc_bundle *b)
{
    return b ? b->ndomains : 0;
}

uint32_t dc_bundle_plugin_count(const dc_bundle *b)
{
    return b ? b->nplugins : 0;
}

uint32_t dc_bundle_problem_count(const dc_bundle *b)
{
    return b ? b->nproblems : 0;
}

uint32_t dc_bundle_problem_total(const dc_bundle *b, uint32_t *left_out)
{
    if (left_out)
        *left_out = b ? b->problems_left_out : 0;
    return b ? b->problems_total : 0;
}

const dc_problem *dc_bundle_problem(const dc_bundle *b, uint32_t i)
{
    return b && i < b->nproblems ? &b->problems[i] : NULL;
}

int dc_bundle_version(const dc_bundle *b, int64_t *version)
{
    if (version)
        *version = b && b->has_version ? b->version : 0;
    return b && b->has_version;
}
