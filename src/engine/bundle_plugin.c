/* bundle_plugin.c - one plugin object of a bundle: its fields, limits and compilation
 * through dc_compile, plus the loader's string and problem helpers. Relies on cJSON for the
 * parsed text and on bundle_load.h for the loader shared with bundle.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_load.h"

#define QUOTE_MAX 80 /* bytes of a quoted value shown in a message */

static const char *const plugin_fields[] = {"name", "skip", "id", "phase", "code",
                                            "quota", "sampling", NULL};
static const char *const quota_fields[] = {"instructions", "time_ms", "memory_kb", NULL};

/* ---- loader helpers ---- */

static char *vstrf(dc_loader *ld, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s) {
        ld->oom = 1;
        return NULL;
    }
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *dc_ld_strf(dc_loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vstrf(ld, fmt, ap);
    va_end(ap);
    return s;
}

char *dc_ld_quote(dc_loader *ld, const char *s)
{
    size_t len = strlen(s), cut = len;
    if (cut > QUOTE_MAX) {
        cut = QUOTE_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--; /* do not split a UTF-8 sequence */
    }
    dc_buf b = {0};
    int bad = dc_buf_append(&b, "\"", 1);
    for (size_t i = 0; i < cut && !bad; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            bad = dc_buf_printf(&b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            bad = dc_buf_printf(&b, "\\x%02x", c); /* a message stays on one line */
        else
            bad = dc_buf_append(&b, &s[i], 1);
    }
    if (!bad)
        bad = dc_buf_printf(&b, "\"%s", cut < len ? "..." : ""); /* also NUL-terminates */
    if (bad) {
        dc_buf_free(&b);
        ld->oom = 1;
        return NULL;
    }
    return b.data;
}

static char *dup_or_null(dc_loader *ld, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        ld->oom = 1;
    return d;
}

void dc_ld_problem(dc_loader *ld, dc_problem_kind kind, char *path, const char *domain,
                   const char *plugin, const char *msg)
{
    dc_bundle *b = ld->b;
    if (ld->oom || !path || !msg) {
        free(path);
        ld->oom = 1;
        return;
    }
    /* The bundle decides how many problems it has: past the first few only counts are kept,
     * or a flood of unknown fields would cost more than the bundle itself. */
    b->problems_total += b->problems_total < UINT32_MAX;
    b->problems_left_out += kind != DC_PROBLEM_UNKNOWN_FIELD && b->problems_left_out < UINT32_MAX;
    if (b->nproblems >= DC_BUNDLE_PROBLEMS_KEPT) {
        free(path);
        return;
    }
    if (b->nproblems == ld->problems_cap) {
        uint32_t cap = ld->problems_cap ? ld->problems_cap * 2 : 8;
        dc_problem *p = realloc(b->problems, cap * sizeof *p);
        if (!p) {
            free(path);
            ld->oom = 1;
            return;
        }
        b->problems = p;
        ld->problems_cap = cap;
    }
    dc_problem *p = &b->problems[b->nproblems++];
    p->kind = kind;
    p->path = path;
    p->domain = dup_or_null(ld, domain);
    p->plugin = dup_or_null(ld, plugin);
    p->message = dup_or_null(ld, msg);
}

static int is_ident(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9'))
        return 0;
    for (; *k; k++) {
        char c = *k;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!(c == '_' || alpha || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static int is_known(const char *const *known, const char *k)
{
    for (; *known; known++)
        if (strcmp(*known, k) == 0)
            return 1;
    return 0;
}

void dc_ld_unknown_fields(dc_loader *ld, const cJSON *obj, const char *path,
                          const char *const *known, const char *domain, const char *plugin)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, obj) {
        if (ld->oom)
            return;
        if (is_known(known, f->string))
            continue;
        if (ld->b->nproblems >= DC_BUNDLE_PROBLEMS_KEPT) { /* counted, not spelled out */
            ld->b->problems_total += ld->b->problems_total < UINT32_MAX;
            continue;
        }
        char *q = dc_ld_quote(ld, f->string);
        if (!q)
            return;
        /* jq-like: .name for plain keys, ["a key"] for the others */
        char *fp = is_ident(f->string)
                       ? dc_ld_strf(ld, "%s%s%s", path, *path ? "." : "", f->string)
                       : dc_ld_strf(ld, "%s[%s]", path, q);
        char *msg = dc_ld_strf(ld, "unknown field %s", q);
        dc_ld_problem(ld, DC_PROBLEM_UNKNOWN_FIELD, fp, domain, plugin, msg);
        free(msg);
        free(q);
    }
}

int dc_ld_json_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    /* beyond 2^53 a double no longer holds every integer: refuse rather than round */
    if (!isfinite(d) || d < -9007199254740992.0 || d > 9007199254740992.0 ||
        d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

void dc_plugin_clear(dc_plugin *p)
{
    free(p->name);
    free(p->bc);
    memset(p, 0, sizeof *p);
}

void dc_refusal_clear(dc_refusal *r)
{
    free(r->path);
    free(r->msg);
    r->path = r->msg = NULL;
}

/* ---- one plugin ---- */

typedef struct pl_parse {
    dc_loader *ld;
    const cJSON *obj;
    const char *path; /* "domains[0].plugins[1]" or "plugins[2]" */
    dc_refusal *why;
} pl_parse;

/* Records why the plugin is left out: path.field and the printf'd reason. Returns -1. */
static int refuse(pl_parse *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(pl_parse *c, const char *field, const char *fmt, ...)
{
    if (c->why->msg || c->ld->oom)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    c->why->msg = vstrf(c->ld, fmt, ap);
    va_end(ap);
    c->why->path = dc_ld_strf(c->ld, "%s.%s", c->path, field);
    return -1;
}

static const cJSON *field(const pl_parse *c, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(c->obj, key);
}

/* The string field key (required), or NULL after a refusal. */
static const char *want_string(pl_parse *c, const char *key)
{
    const cJSON *v = field(c, key);
    if (cJSON_IsString(v))
        return v->valuestring;
    if (!v)
        refuse(c, key, "missing: a string is required");
    else
        refuse(c, key, "expected a string");
    return NULL;
}

static int parse_name(pl_parse *c, dc_plugin *out)
{
    const char *name = want_string(c, "name");
    if (!name)
        return -1;
    size_t n = strlen(name);
    if (n > c->ld->lim->max_name_bytes)
        return refuse(c, "name", "name is %zu bytes, over the limit of %u", n,
                      c->ld->lim->max_name_bytes);
    int ctl = dc_ld_control_byte(name);
    if (ctl >= 0) {
        char *q = dc_ld_quote(c->ld, name);
        if (q)
            refuse(c, "name", "name %s contains the control byte 0x%02x", q, ctl);
        free(q);
        return -1;
    }
    out->name = dup_or_null(c->ld, name);
    return out->name ? 0 : -1;
}

static int parse_phase(pl_parse *c, dc_plugin *out)
{
    const char *s = want_string(c, "phase");
    if (!s)
        return -1;
    if (dc_phase_parse(s, strlen(s), &out->phase) == 0)
        return 0;
    char *q = dc_ld_quote(c->ld, s);
    if (q)
        refuse(c, "phase", "unknown phase %s", q);
    free(q);
    return -1;
}

static int parse_code(pl_parse *c, const char **code, size_t *len)
{
    *code = want_string(c, "code");
    if (!*code)
        return -1;
    *len = strlen(*code);
    size_t max = c->ld->lim->max_code_bytes;
    if (*len > max)
        return refuse(c, "code", "code is %zu bytes, over the limit of %zu", *len, max);
    return 0;
}

static int parse_skip_id(pl_parse *c, dc_plugin *out)
{
    const cJSON *v = field(c, "skip");
    if (v && !cJSON_IsBool(v))
        return refuse(c, "skip", "expected true or false");
    out->skip = cJSON_IsTrue(v);
    v = field(c, "id");
    if (v && dc_ld_json_int(v, &out->id) != 0)
        return refuse(c, "id", "expected an integer");
    out->has_id = v != NULL;
    return 0;
}

/* quota.key: absent or an integer from 0 to max. */
static int quota_field(pl_parse *c, const cJSON *q, const char *key, uint64_t max, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, key);
    char fname[32];
    int64_t n;
    if (!v)
        return 0;
    snprintf(fname, sizeof fname, "quota.%s", key);
    if (dc_ld_json_int(v, &n) != 0 || n < 0)
        return refuse(c, fname, "expected a non-negative integer");
    if ((uint64_t)n > max)
        return refuse(c, fname, "%s is %lld, over the maximum of %llu", fname, (long long)n,
                      (unsigned long long)max);
    *out = (uint64_t)n;
    return 0;
}

static int parse_quota(pl_parse *c, dc_plugin *out)
{
    const cJSON *q = field(c, "quota");
    uint64_t ins = 0, ms = 0, kb = 0;
    if (!q)
        return 0;
    if (!cJSON_IsObject(q))
        return refuse(c, "quota", "expected an object");
    if (quota_field(c, q, "instructions", UINT64_MAX, &ins) != 0 ||
        quota_field(c, q, "time_ms", UINT32_MAX, &ms) != 0 ||
        quota_field(c, q, "memory_kb", UINT32_MAX, &kb) != 0)
        return -1;
    out->quota.instructions = ins;
    out->quota.time_ms = (uint32_t)ms;
    out->quota.memory_kb = (uint32_t)kb;
    return 0;
}

static int parse_sampling(pl_parse *c, dc_plugin *out)
{
    const cJSON *v = field(c, "sampling");
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return refuse(c, "sampling", "expected a number from 0 to 1");
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= 1.0))
        return refuse(c, "sampling", "sampling is %g, expected a number from 0 to 1", d);
    out->sampling = d;
    return 0;
}

/* Untrusted source is parsed only in the confined helper. In the test build of the library
 * (DC_TESTING) only, under Valgrind (which can host no seccomp filter), the helper may run
 * unconfined when DC_VALGRIND_UNCONFINED is set too: scripts/valgrind.sh does that; on a real
 * CPU the variable has no effect. The product reads no such variable. The test build also
 * gives each compile a minute instead of the product's 5 s. */
static dc_compiler *compiler(dc_loader *ld)
{
    if (!ld->cc && ld->cc_rc == DC_OK) {
        dc_compiler_opts o = {0};
#ifdef DC_TESTING
        o.valgrind_unconfined = getenv("DC_VALGRIND_UNCONFINED") != NULL;
        /* CI runs the tests beside other builds: a helper slowed down by the load is not a
         * failure there (the tests of the timeout itself set their own) */
        o.timeout_ms = 60000;
#endif
        ld->cc_rc = dc_compiler_open_opts(&o, &ld->cc, ld->cc_err, sizeof ld->cc_err);
    }
    return ld->cc;
}

static int by_code_hash(const void *a, const void *b)
{
    uint64_t x = (*(const dc_plugin *const *)a)->code_hash;
    uint64_t y = (*(const dc_plugin *const *)b)->code_hash;
    return x < y ? -1 : x > y;
}

/* The previous version's bytecode when this plugin's name and code are unchanged, or NULL. */
static const dc_plugin *reusable(dc_loader *ld, const char *name, uint64_t hash)
{
    if (!ld->reuse_built) {
        ld->reuse_built = 1;
        if (ld->prev && ld->prev->nplugins &&
            (ld->reuse = malloc(ld->prev->nplugins * sizeof *ld->reuse))) {
            for (uint32_t i = 0; i < ld->prev->nplugins; i++)
                ld->reuse[i] = &ld->prev->plugins[i];
            ld->nreuse = ld->prev->nplugins;
            qsort(ld->reuse, ld->nreuse, sizeof *ld->reuse, by_code_hash);
        }
    }
    uint32_t lo = 0, hi = ld->nreuse;
    while (lo < hi) { /* first entry with code_hash >= hash */
        uint32_t mid = lo + (hi - lo) / 2;
        if (ld->reuse[mid]->code_hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < ld->nreuse && ld->reuse[lo]->code_hash == hash; lo++)
        if (strcmp(ld->reuse[lo]->name, name) == 0)
            return ld->reuse[lo];
    return NULL;
}

static int compile_code(pl_parse *c, dc_plugin *out, const char *code, size_t len)
{
    char msg[512] = "";
    uint64_t hash = dc_hash64(code, len);
    const dc_plugin *same = reusable(c->ld, out->name, hash);
    if (same) {
        /* unchanged: the bytecode compiled (confined) for the previous bundle is reused */
        if (!(out->bc = malloc(same->bclen))) {
            c->ld->oom = 1;
            return -1;
        }
        memcpy(out->bc, same->bc, same->bclen);
        out->bclen = same->bclen;
        out->code_hash = hash;
        return 0;
    }
    dc_compiler *cc = compiler(c->ld);
    if (!cc)
        return refuse(c, "code", "%s", c->ld->cc_err);
    dc_rc rc = dc_compiler_compile(cc, out->name, code, len, &out->bc, &out->bclen, msg,
                                   sizeof msg);
    if (dc_compiler_broken(cc)) {
        /* this plugin broke the helper (crash, hang): the next one gets a fresh helper */
        dc_compiler_close(cc);
        c->ld->cc = NULL;
    }
    if (rc == DC_ENOMEM) {
        c->ld->oom = 1;
        return -1;
    }
    if (rc != DC_OK)
        return refuse(c, "code", "%s", msg);
    out->code_hash = dc_hash64(code, len);
    return 0;
}

int dc_ld_plugin(dc_loader *ld, const cJSON *obj, const char *path, const char *domain,
                 dc_plugin *out, dc_refusal *why)
{
    memset(out, 0, sizeof *out);
    memset(why, 0, sizeof *why);
    out->sampling = 1.0;
    pl_parse c = {ld, obj, path, why};
    const char *code = NULL;
    size_t len = 0;

    int rc = parse_name(&c, out);
    /* unknown fields are reported whether or not the plugin is usable */
    dc_ld_unknown_fields(ld, obj, path, plugin_fields, domain, out->name);
    const cJSON *q = field(&c, "quota");
    if (cJSON_IsObject(q)) {
        char *qpath = dc_ld_strf(ld, "%s.quota", path);
        if (qpath)
            dc_ld_unknown_fields(ld, q, qpath, quota_fields, domain, out->name);
        free(qpath);
    }
    if (rc == 0)
        rc = parse_skip_id(&c, out);
    if (rc == 0)
        rc = parse_phase(&c, out);
    if (rc == 0)
        rc = parse_code(&c, &code, &len);
    if (rc == 0)
        rc = parse_quota(&c, out);
    if (rc == 0)
        rc = parse_sampling(&c, out);
    if (rc == 0)
        rc = compile_code(&c, out, code, len);
    return ld->oom ? -1 : rc;
}
