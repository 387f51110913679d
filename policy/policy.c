/* policy.c - the local policy: loads and validates policy JSON (a file, memory, or the
 * built-in default compiled from policy/default.json) into the model of policy_model.h, and
 * answers the engine's questions about the policy as a whole (policy.h). What one plugin gets
 * on one host is policy_resolve.c's. Relies on cJSON, regex.c, fnmatch and policy_names.c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "policy_model.h"
#include "dc_default_policy.h"
#include "api_table.h"

#define DC_POLICY_MAX_FILE (1u << 20)   /* a policy is a few KiB; refuse anything absurd */
#define DC_JSON_MAX_INT 9007199254740992.0 /* 2^53: larger numbers lose precision in JSON */
#define DC_PATH_MAX 256

/* ---- built-in values ---- */

/* The default allow list: the distinct allow entries of the API table, in its order. */
#define DC_ALLOW_ENTRY(area, kind, path, field, fn, phases, allow) allow,
static const char *const table_allow[] = {DC_API_TABLE(DC_ALLOW_ENTRY)};
#undef DC_ALLOW_ENTRY
#define TABLE_NALLOW (sizeof table_allow / sizeof table_allow[0])

static const dc_names no_names = {NULL, 0};

/* Every other built-in value comes from policy/default.json, compiled in and parsed once (at
 * the first need) over zeroed settings: dc_policy_builtin() below. */

/* ---- freeing ---- */

static void names_free(dc_names *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void rule_free(dc_rule *r)
{
    names_free(&r->s.allow);
    names_free(&r->s.deny);
    free(r->domain);
    free(r->plugin);
    pcre2_code_free(r->re);
}

static void dict_free(dc_dict_pol *d)
{
    free(d->name);
    for (uint32_t i = 0; i < d->ndomains; i++)
        pcre2_code_free(d->domains[i]);
    free(d->domains);
    names_free(&d->plugins);
}

void dc_policy_free(dc_policy *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->ndicts; i++)
        dict_free(&p->dicts[i]);
    free(p->dicts);
    for (uint32_t i = 0; i < p->nrules; i++)
        rule_free(&p->rules[i]);
    free(p->rules);
    names_free(&p->base.allow);
    names_free(&p->base.deny);
    for (struct dc_api_filter *f = p->interned, *next; f; f = next) {
        next = f->next;
        free(f->deny);
        free(f);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- parsing context and messages ---- */

typedef struct pctx {
    const char *name;   /* file name (or the caller's name) that starts every message */
    char *err;
    size_t errlen;
} pctx;

/* "NAME: PATH: reason" (or "NAME: reason" at the top); returns DC_EPOLICY. */
static dc_rc fail(const pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dc_rc fail(const pctx *c, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path && *path)
        dc_set_err(c->err, c->errlen, "%s: %s: %s", c->name, path, msg);
    else
        dc_set_err(c->err, c->errlen, "%s: %s", c->name, msg);
    return DC_EPOLICY;
}

static dc_rc nomem(const pctx *c)
{
    dc_set_err(c->err, c->errlen, "%s: out of memory", c->name);
    return DC_ENOMEM;
}

/* A path longer than DC_PATH_MAX is cut: it only names a place in an error message. */
static void path_key(char *out, const char *path, const char *key)
{
    if (snprintf(out, DC_PATH_MAX, "%s%s%s", path, *path ? "." : "", key) >= DC_PATH_MAX)
        out[DC_PATH_MAX - 1] = '\0';
}

static void path_index(char *out, const char *path, int i)
{
    snprintf(out, DC_PATH_MAX, "%s[%d]", path, i);
}

/* ---- generic object walk: every key known, none twice ---- */

typedef dc_rc (*field_fn)(const pctx *c, const cJSON *v, const char *path, void *target);

/* A key: its parser, or (fn NULL) a uint32 of the dc_settings target at off whose key sets
 * the bit (quarantine and bounds keys). */
typedef struct field {
    const char *key;
    field_fn fn;
    size_t off;
    unsigned bit;
} field;

#define KEY(key, fn) {key, fn, 0, 0}
#define SETTINGS_U32(key, member, bit) {key, NULL, offsetof(dc_settings, member), bit}

static dc_rc settings_u32(const pctx *c, const cJSON *v, const char *path, void *target,
                          const field *f);

static dc_rc walk(const pctx *c, const cJSON *obj, const char *path, const field *fields,
                  size_t n, void *target)
{
    if (!cJSON_IsObject(obj))
        return fail(c, path, "expected an object");
    unsigned seen = 0;
    for (const cJSON *it = obj->child; it; it = it->next) {
        char sub[DC_PATH_MAX];
        path_key(sub, path, it->string);
        size_t i = 0;
        while (i < n && strcmp(fields[i].key, it->string) != 0)
            i++;
        if (i == n)
            return fail(c, sub, "unknown key");
        if (seen & (1u << i))
            return fail(c, sub, "duplicate key");
        seen |= 1u << i;
        dc_rc rc = fields[i].fn ? fields[i].fn(c, it, sub, target)
                                : settings_u32(c, it, sub, target, &fields[i]);
        if (rc != DC_OK)
            return rc;
    }
    return DC_OK;
}

/* ---- scalars ---- */

/* An integer in [min, max] (max at most 2^53). */
static dc_rc get_uint(const pctx *c, const cJSON *v, const char *path, uint64_t min,
                      double max, uint64_t *out)
{
    const char *what = min ? "a positive integer" : "a non-negative integer";
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble != floor(v->valuedouble))
        return fail(c, path, "expected %s", what);
    if (v->valuedouble > max)
        return fail(c, path, "expected %s up to %.0f", what, max);
    *out = (uint64_t)v->valuedouble;
    return DC_OK;
}

static dc_rc get_u32(const pctx *c, const cJSON *v, const char *path, uint64_t min,
                     uint32_t *out)
{
    uint64_t x = 0;
    dc_rc rc = get_uint(c, v, path, min, (double)UINT32_MAX, &x);
    if (rc == DC_OK)
        *out = (uint32_t)x;
    return rc;
}

/* One of two words; *out gets 1 for `one`. */
static dc_rc get_choice(const pctx *c, const cJSON *v, const char *path, const char *zero,
                        const char *one, int *out)
{
    if (cJSON_IsString(v) && strcmp(v->valuestring, zero) == 0)
        *out = 0;
    else if (cJSON_IsString(v) && strcmp(v->valuestring, one) == 0)
        *out = 1;
    else
        return fail(c, path, "expected \"%s\" or \"%s\"", zero, one);
    return DC_OK;
}

/* ---- quota and ceiling ---- */

static dc_rc settings_u32(const pctx *c, const cJSON *v, const char *path, void *target,
                          const field *f)
{
    dc_settings *s = target;
    s->set |= f->bit;
    return get_u32(c, v, path, 0, (uint32_t *)(void *)((char *)s + f->off));
}

/* Which dc_quota a "quota" or "ceiling" object fills, and the set bits of its fields. */
typedef struct quota_target {
    dc_quota *q;
    unsigned *set;
    unsigned ins, time, mem;
} quota_target;

static dc_rc q_instructions(const pctx *c, const cJSON *v, const char *path, void *t)
{
    quota_target *qt = t;
    *qt->set |= qt->ins;
    return get_uint(c, v, path, 0, DC_JSON_MAX_INT, &qt->q->instructions);
}

static dc_rc q_time(const pctx *c, const cJSON *v, const char *path, void *t)
{
    quota_target *qt = t;
    *qt->set |= qt->time;
    return get_u32(c, v, path, 0, &qt->q->time_ms);
}

static dc_rc q_memory(const pctx *c, const cJSON *v, const char *path, void *t)
{
    quota_target *qt = t;
    *qt->set |= qt->mem;
    return get_u32(c, v, path, 0, &qt->q->memory_kb);
}

static const field quota_fields[] = {
    KEY("instructions", q_instructions), KEY("time_ms", q_time), KEY("memory_kb", q_memory)};

static dc_rc s_quota(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_settings *s = t;
    quota_target qt = {&s->quota, &s->set, S_QUOTA_INS, S_QUOTA_TIME, S_QUOTA_MEM};
    return walk(c, v, path, quota_fields, 3, &qt);
}

static dc_rc s_ceiling(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_settings *s = t;
    quota_target qt = {&s->ceiling, &s->set, S_CEIL_INS, S_CEIL_TIME, S_CEIL_MEM};
    return walk(c, v, path, quota_fields, 3, &qt);
}

/* ---- api lists ---- */

static dc_rc check_name(const pctx *c, const char *path, const char *name, int allow)
{
    if (dc_api_name_forbidden(name)) {
        if (allow)
            return fail(c, path, "\"%s\" can never be allowed: the sandbox forbids it",
                        name);
        return DC_OK; /* denying what is never there is harmless */
    }
    if (!dc_api_name_known(name))
        return fail(c, path, "unknown API name \"%s\"", name);
    return DC_OK;
}

/* Parses an array of API names into *out, replacing what it held. */
static dc_rc get_names(const pctx *c, const cJSON *v, const char *path, int allow, dc_names *out)
{
    if (!cJSON_IsArray(v))
        return fail(c, path, "expected an array of API names");
    dc_names l = {NULL, 0};
    int n = cJSON_GetArraySize(v);
    if (n > 0 && !(l.v = calloc((size_t)n, sizeof *l.v)))
        return nomem(c);
    dc_rc rc = DC_OK;
    int i = 0;
    for (const cJSON *it = v->child; it && rc == DC_OK; it = it->next, i++) {
        char sub[DC_PATH_MAX];
        path_index(sub, path, i);
        if (!cJSON_IsString(it))
            rc = fail(c, sub, "expected a string (an API name)");
        else if ((rc = check_name(c, sub, it->valuestring, allow)) == DC_OK &&
                 !(l.v[l.n++] = strdup(it->valuestring)))
            rc = nomem(c);
    }
    if (rc != DC_OK) {
        names_free(&l);
        return rc;
    }
    names_free(out);
    *out = l;
    return DC_OK;
}

static dc_rc a_allow(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_settings *s = t;
    s->set |= S_ALLOW;
    return get_names(c, v, path, 1, &s->allow);
}

static dc_rc a_deny(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_settings *s = t;
    s->set |= S_DENY;
    return get_names(c, v, path, 0, &s->deny);
}

static dc_rc s_api(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {KEY("allow", a_allow), KEY("deny", a_deny)};
    return walk(c, v, path, f, 2, t);
}

/* ---- on_error and quarantine ---- */

static dc_rc s_on_error(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_settings *s = t;
    s->set |= S_ON_ERROR;
    return get_choice(c, v, path, "continue", "fail", &s->on_error_fail);
}

static dc_rc s_quarantine(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {
        SETTINGS_U32("trips", quarantine.trips, S_QR_TRIPS),
        SETTINGS_U32("window_s", quarantine.window_s, S_QR_WINDOW),
        SETTINGS_U32("duration_s", quarantine.duration_s, S_QR_DURATION)};
    return walk(c, v, path, f, 3, t);
}

static dc_rc s_bounds(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {
        SETTINGS_U32("log_line_bytes", bounds.log_line_bytes, S_BD_LOG),
        SETTINGS_U32("output_bytes", bounds.output_bytes, S_BD_OUTPUT),
        SETTINGS_U32("value_bytes", bounds.value_bytes, S_BD_VALUE),
        SETTINGS_U32("header_values", bounds.header_values, S_BD_HVALUES),
        SETTINGS_U32("header_bytes", bounds.header_bytes, S_BD_HBYTES),
        SETTINGS_U32("log_lines", bounds.log_lines, S_BD_LOGLINES),
        SETTINGS_U32("log_bytes", bounds.log_bytes, S_BD_LOGBYTES),
        SETTINGS_U32("sleep_ms_per_call", bounds.sleep_ms_per_call, S_BD_SLEEPCALL),
        SETTINGS_U32("sleep_ms_per_request", bounds.sleep_ms_per_request, S_BD_SLEEPREQ)};
    return walk(c, v, path, f, sizeof f / sizeof f[0], t);
}

/* ---- rules ---- */

static dc_rc r_domain(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_rule *r = t;
    if (!cJSON_IsString(v))
        return fail(c, path, "expected a string (a regex)");
    char msg[300];
    if (dc_re_compile(v->valuestring, strlen(v->valuestring), &r->re, msg, sizeof msg) != DC_OK)
        return fail(c, path, "%s", msg);
    return (r->domain = strdup(v->valuestring)) ? DC_OK : nomem(c);
}

static dc_rc r_plugin(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_rule *r = t;
    if (!cJSON_IsString(v))
        return fail(c, path, "expected a string (a glob)");
    return (r->plugin = strdup(v->valuestring)) ? DC_OK : nomem(c);
}

static const field rule_fields[] = {
    KEY("domain", r_domain), KEY("plugin", r_plugin), KEY("quota", s_quota),
    KEY("ceiling", s_ceiling), KEY("api", s_api), KEY("on_error", s_on_error),
    KEY("quarantine", s_quarantine), KEY("bounds", s_bounds)};

static dc_rc t_rules(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_policy *p = t;
    if (!cJSON_IsArray(v))
        return fail(c, path, "expected an array of rules");
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return DC_OK;
    if (!(p->rules = calloc((size_t)n, sizeof *p->rules)))
        return nomem(c);
    p->nrules = (uint32_t)n; /* zeroed rules free cleanly if one fails */
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        char sub[DC_PATH_MAX];
        path_index(sub, path, i);
        dc_rc rc = walk(c, it, sub, rule_fields, sizeof rule_fields / sizeof rule_fields[0],
                        &p->rules[i]);
        if (rc != DC_OK)
            return rc;
    }
    return DC_OK;
}

/* ---- the top level's own keys ---- */

static dc_rc t_until_loaded(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_policy *p = t;
    return get_choice(c, v, path, "pass", "refuse", &p->refuse_until_loaded);
}

static dc_rc b_max_bytes(const pctx *c, const cJSON *v, const char *path, void *t)
{
    uint64_t x = 0;
    dc_rc rc = get_uint(c, v, path, 1, DC_JSON_MAX_INT, &x);
    if (rc == DC_OK)
        ((dc_limits *)t)->max_bundle_bytes = (size_t)x;
    return rc;
}

static dc_rc b_max_domains(const pctx *c, const cJSON *v, const char *path, void *t)
{
    return get_u32(c, v, path, 1, &((dc_limits *)t)->max_domains);
}

static dc_rc b_max_plugins(const pctx *c, const cJSON *v, const char *path, void *t)
{
    return get_u32(c, v, path, 1, &((dc_limits *)t)->max_plugins);
}

static dc_rc b_max_code_bytes(const pctx *c, const cJSON *v, const char *path, void *t)
{
    uint64_t x = 0;
    dc_rc rc = get_uint(c, v, path, 1, DC_JSON_MAX_INT, &x);
    if (rc == DC_OK)
        ((dc_limits *)t)->max_code_bytes = (size_t)x;
    return rc;
}

/* The uint32 limits: a positive integer each, at the offset the key names. */
#define LIMIT_U32(fn, member)                                                               \
    static dc_rc fn(const pctx *c, const cJSON *v, const char *path, void *t)               \
    {                                                                                       \
        return get_u32(c, v, path, 1, &((dc_limits *)t)->member);                          \
    }
LIMIT_U32(b_max_name_bytes, max_name_bytes)
LIMIT_U32(b_max_plugins_per_domain, max_plugins_per_domain)
LIMIT_U32(b_max_skip_domains, max_skip_domains)
LIMIT_U32(b_max_pattern_bytes, max_pattern_bytes)
LIMIT_U32(b_max_pattern_compiled_bytes, max_pattern_compiled_bytes)

static dc_rc b_max_patterns_total_bytes(const pctx *c, const cJSON *v, const char *path, void *t)
{
    uint64_t x = 0;
    dc_rc rc = get_uint(c, v, path, 1, DC_JSON_MAX_INT, &x);
    if (rc == DC_OK)
        ((dc_limits *)t)->max_patterns_total_bytes = (size_t)x;
    return rc;
}

static dc_rc t_bundle(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {
        KEY("max_bytes", b_max_bytes), KEY("max_domains", b_max_domains),
        KEY("max_plugins", b_max_plugins), KEY("max_code_bytes", b_max_code_bytes),
        KEY("max_name_bytes", b_max_name_bytes),
        KEY("max_plugins_per_domain", b_max_plugins_per_domain),
        KEY("max_skip_domains", b_max_skip_domains),
        KEY("max_pattern_bytes", b_max_pattern_bytes),
        KEY("max_pattern_compiled_bytes", b_max_pattern_compiled_bytes),
        KEY("max_patterns_total_bytes", b_max_patterns_total_bytes)};
    return walk(c, v, path, f, sizeof f / sizeof f[0], &((dc_policy *)t)->limits);
}

static dc_rc st_max(const pctx *c, const cJSON *v, const char *path, void *t)
{
    return get_u32(c, v, path, 1, &((dc_policy *)t)->max_states);
}

static dc_rc t_states(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {KEY("max_per_worker", st_max)};
    return walk(c, v, path, f, 1, t);
}

/* ---- shared dictionaries ---- */

static dc_rc d_name(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_dict_pol *d = t;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(c, path, "expected a non-empty string");
    size_t n = strlen(v->valuestring);
    if (n > DC_SHDICT_NAME_MAX)
        return fail(c, path, "a name of %zu bytes is longer than %u", n, DC_SHDICT_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v->valuestring[i];
        if (!(ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z')))
            return fail(c, path, "\"%s\": a name holds only letters, digits and '_'",
                        v->valuestring);
    }
    return (d->name = strdup(v->valuestring)) ? DC_OK : nomem(c);
}

static dc_rc d_size(const pctx *c, const cJSON *v, const char *path, void *t)
{
    uint64_t kb = 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < DC_SHDICT_MIN_KB ||
        v->valuedouble > DC_SHDICT_MAX_KB || v->valuedouble != floor(v->valuedouble))
        return fail(c, path, "expected an integer from %u to %u (KiB)", DC_SHDICT_MIN_KB,
                    DC_SHDICT_MAX_KB);
    kb = (uint64_t)v->valuedouble;
    ((dc_dict_pol *)t)->bytes = kb * 1024;
    return DC_OK;
}

static dc_rc d_domains(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_dict_pol *d = t;
    if (!cJSON_IsArray(v))
        return fail(c, path, "expected an array of regexes");
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return fail(c, path, "an empty list lets no domain use the dictionary: leave the key "
                    "out for every domain");
    if (!(d->domains = calloc((size_t)n, sizeof *d->domains)))
        return nomem(c);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        char sub[DC_PATH_MAX], msg[300];
        path_index(sub, path, i);
        if (!cJSON_IsString(it))
            return fail(c, sub, "expected a string (a regex)");
        if (dc_re_compile(it->valuestring, strlen(it->valuestring), &d->domains[i], msg,
                          sizeof msg) != DC_OK)
            return fail(c, sub, "%s", msg);
        d->ndomains = (uint32_t)i + 1;
    }
    return DC_OK;
}

static dc_rc d_plugins(const pctx *c, const cJSON *v, const char *path, void *t)
{
    dc_dict_pol *d = t;
    if (!cJSON_IsArray(v))
        return fail(c, path, "expected an array of globs");
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return fail(c, path, "an empty list lets no plugin use the dictionary: leave the key "
                    "out for every plugin");
    if (!(d->plugins.v = calloc((size_t)n, sizeof(char *))))
        return nomem(c);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        char sub[DC_PATH_MAX];
        path_index(sub, path, i);
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return fail(c, sub, "expected a non-empty string (a glob)");
        if (!(d->plugins.v[d->plugins.n++] = strdup(it->valuestring)))
            return nomem(c);
    }
    return DC_OK;
}

static dc_rc t_shared_dicts(const pctx *c, const cJSON *v, const char *path, void *t)
{
    static const field f[] = {KEY("name", d_name), KEY("size_kb", d_size),
                              KEY("domains", d_domains), KEY("plugins", d_plugins)};
    dc_policy *p = t;
    if (!cJSON_IsArray(v))
        return fail(c, path, "expected an array of dictionaries");
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return DC_OK;
    if (n > DC_SHDICT_MAX)
        return fail(c, path, "%d dictionaries, at most %u", n, DC_SHDICT_MAX);
    if (!(p->dicts = calloc((size_t)n, sizeof *p->dicts)))
        return nomem(c);
    p->ndicts = (uint32_t)n; /* zeroed entries free cleanly if one fails */
    uint64_t total = 0;
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        char sub[DC_PATH_MAX];
        path_index(sub, path, i);
        dc_dict_pol *d = &p->dicts[i];
        dc_rc rc = walk(c, it, sub, f, sizeof f / sizeof f[0], d);
        if (rc != DC_OK)
            return rc;
        if (!d->name)
            return fail(c, sub, "missing key \"name\"");
        if (!d->bytes)
            return fail(c, sub, "missing key \"size_kb\"");
        for (int k = 0; k < i; k++)
            if (strcmp(p->dicts[k].name, d->name) == 0)
                return fail(c, sub, "duplicate dictionary name \"%s\" (also %s[%d])", d->name,
                            path, k);
        total += d->bytes;
    }
    if (total > (uint64_t)DC_SHDICT_MAX_KB * 1024)
        return fail(c, path, "the dictionaries add up to %llu KiB, at most %u",
                    (unsigned long long)(total / 1024), DC_SHDICT_MAX_KB);
    return DC_OK;
}

uint32_t dc_policy_shdicts(const dc_policy *p, struct dc_shdict_decl *out, uint32_t max)
{
    if (!p)
        return 0;
    for (uint32_t i = 0; i < p->ndicts && i < max; i++)
        out[i] = (dc_shdict_decl){p->dicts[i].name, p->dicts[i].bytes};
    return p->ndicts;
}

size_t dc_policy_shdicts_size(const dc_policy *p)
{
    dc_shdict_decl d[DC_SHDICT_MAX];
    uint32_t n = dc_policy_shdicts(p, d, DC_SHDICT_MAX);
    return dc_shdicts_region_size(d, n);
}

dc_rc dc_shdicts_open(void *region, size_t size, int init, const dc_policy *p, dc_shdicts **out,
                      char *err, size_t errlen)
{
    if (!out) {
        dc_set_err(err, errlen, "dc_shdicts_open: bad argument");
        return DC_EINVAL;
    }
    *out = NULL;
    dc_shdict_decl d[DC_SHDICT_MAX];
    uint32_t n = dc_policy_shdicts(p, d, DC_SHDICT_MAX);
    if (n == 0)
        return DC_OK;
    return dc_shdicts_attach(region, size, init, d, n, out, err, errlen);
}

void dc_shdicts_close(dc_shdicts *s)
{
    dc_shdicts_detach(s);
}

static const field top_fields[] = {
    KEY("quota", s_quota), KEY("ceiling", s_ceiling), KEY("api", s_api),
    KEY("on_error", s_on_error), KEY("quarantine", s_quarantine), KEY("bounds", s_bounds),
    KEY("until_loaded", t_until_loaded),
    KEY("bundle", t_bundle), KEY("states", t_states), KEY("rules", t_rules),
    KEY("shared_dicts", t_shared_dicts)};

/* ---- loading ---- */

/* line:column (1-based) of offset off in text. */
static void line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Parses exactly len bytes (no NUL needed); anything but whitespace after the value fails. */
static dc_rc parse_json(const pctx *c, const char *json, size_t len, cJSON **out)
{
    size_t lead = 0;
    while (lead < len && is_space(json[lead]))
        lead++;
    if (lead == len)
        return fail(c, NULL, "not JSON: the text is empty");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    size_t off = end && end >= json ? (size_t)(end - json) : 0;
    while (root && off < len && is_space(json[off]))
        off++;
    if (root && off == len) {
        *out = root;
        return DC_OK;
    }
    cJSON_Delete(root);
    unsigned line, col;
    line_col(json, off > len ? len : off, &line, &col);
    if (root)
        return fail(c, NULL, "not JSON: unexpected text after the value at line %u, column %u",
                    line, col);
    return fail(c, NULL, "not JSON: syntax error at line %u, column %u", line, col);
}

/* A policy holding the values of base (its scalars: the lists stay empty), or zeroes. */
static dc_policy *policy_new(const dc_policy *base)
{
    dc_policy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (base) {
        p->base = base->base;
        p->base.set = 0;
        p->base.allow = no_names;
        p->base.deny = no_names;
        p->refuse_until_loaded = base->refuse_until_loaded;
        p->limits = base->limits;
        p->max_states = base->max_states;
    }
    return p;
}

/* The table's allow list as the policy's own copy, unless the file set one. */
static dc_rc fill_builtin_allow(const pctx *c, dc_policy *p)
{
    if (p->base.set & S_ALLOW)
        return DC_OK;
    if (!(p->base.allow.v = calloc(TABLE_NALLOW, sizeof(char *))))
        return nomem(c);
    for (size_t i = 0; i < TABLE_NALLOW; i++) {
        int dup = 0;
        for (uint32_t k = 0; k < p->base.allow.n && !dup; k++)
            dup = strcmp(p->base.allow.v[k], table_allow[i]) == 0;
        if (!dup && !(p->base.allow.v[p->base.allow.n++] = strdup(table_allow[i])))
            return nomem(c);
    }
    return DC_OK;
}

static void finish(dc_policy *p)
{
    p->base_deny[0] = &p->base.deny;
    p->base_filter = (struct dc_api_filter){&p->base.allow, p->base_deny, 1, NULL};
}

/* Loads json over the values of base (NULL: over zeroes). */
static dc_rc load_over(const dc_policy *base, const char *json, size_t len, const char *name,
                       dc_policy **out, char *err, size_t errlen)
{
    pctx c = {name ? name : "policy", err, errlen};
    if (!out || (!json && len)) {
        dc_set_err(err, errlen, "%s: invalid argument", c.name);
        return DC_EINVAL;
    }
    *out = NULL;
    cJSON *root = NULL;
    dc_rc rc = parse_json(&c, json ? json : "", len, &root);
    if (rc != DC_OK)
        return rc;
    dc_policy *p = policy_new(base);
    if (!p)
        rc = nomem(&c);
    else if (!cJSON_IsObject(root))
        rc = fail(&c, NULL, "expected a JSON object at the top level");
    else
        rc = walk(&c, root, "", top_fields, sizeof top_fields / sizeof top_fields[0], p);
    if (rc == DC_OK)
        rc = fill_builtin_allow(&c, p);
    cJSON_Delete(root);
    if (rc != DC_OK) {
        dc_policy_free(p);
        return rc;
    }
    finish(p);
    *out = p;
    return DC_OK;
}

#define BUILTIN_NAME "built-in policy (policy/default.json)"

/* policy/default.json parsed once and kept for the process; NULL while it cannot be (out of
 * memory: the next call tries again). */
static pthread_mutex_t builtin_lock = PTHREAD_MUTEX_INITIALIZER;
static dc_policy *builtin;   /* set once, never freed: read without the lock once set */

dc_policy *dc_policy_builtin(void)
{
    dc_policy *b = __atomic_load_n(&builtin, __ATOMIC_ACQUIRE);
    if (b)
        return b;
    pthread_mutex_lock(&builtin_lock);
    if (!builtin) {
        char err[256];
        dc_policy *p = NULL;
        if (load_over(NULL, dc_default_policy_json, strlen(dc_default_policy_json), BUILTIN_NAME,
                      &p, err, sizeof err) == DC_OK)
            __atomic_store_n(&builtin, p, __ATOMIC_RELEASE);
    }
    b = builtin;
    pthread_mutex_unlock(&builtin_lock);
    return b;
}

dc_rc dc_policy_load(const char *json, size_t len, const char *name, dc_policy **out,
                     char *err, size_t errlen)
{
    const dc_policy *base = dc_policy_builtin();
    if (!base) {
        dc_set_err(err, errlen, "%s: out of memory", name ? name : "policy");
        if (out)
            *out = NULL;
        return DC_ENOMEM;
    }
    return load_over(base, json, len, name, out, err, errlen);
}

/* Reads the whole file into b; DC_EIO with strerror, DC_EPOLICY when absurdly large. */
static dc_rc read_file(const char *path, dc_buf *b, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dc_set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return DC_EIO;
    }
    dc_rc rc = DC_OK;
    while (rc == DC_OK && !feof(f) && b->len <= DC_POLICY_MAX_FILE) {
        if (dc_buf_reserve(b, 16384) != 0) {
            dc_set_err(err, errlen, "%s: out of memory", path);
            rc = DC_ENOMEM;
        } else {
            b->len += fread(b->data + b->len, 1, b->cap - b->len, f);
            if (ferror(f)) {
                dc_set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
                rc = DC_EIO;
            }
        }
    }
    fclose(f);
    if (rc == DC_OK && b->len > DC_POLICY_MAX_FILE) {
        dc_set_err(err, errlen, "%s: larger than %u bytes", path, DC_POLICY_MAX_FILE);
        rc = DC_EPOLICY;
    }
    return rc;
}

dc_rc dc_policy_load_file(const char *path, dc_policy **out, char *err, size_t errlen)
{
    if (!path || !out) {
        dc_set_err(err, errlen, "policy: invalid argument");
        return DC_EINVAL;
    }
    *out = NULL;
    dc_buf b = {NULL, 0, 0};
    dc_rc rc = read_file(path, &b, err, errlen);
    if (rc == DC_OK)
        rc = dc_policy_load(b.data ? b.data : "", b.len, path, out, err, errlen);
    dc_buf_free(&b);
    return rc;
}

dc_rc dc_policy_default(dc_policy **out, char *err, size_t errlen)
{
    return load_over(NULL, dc_default_policy_json, strlen(dc_default_policy_json), BUILTIN_NAME,
                     out, err, errlen);
}

void dc_limits_default(dc_limits *l)
{
    const dc_policy *b = dc_policy_builtin();
    if (b) {
        *l = b->limits;
        return;
    }
    /* no memory to read the built-in values: the smallest limits, failing closed */
    memset(l, 0, sizeof *l);
}

void dc_quota_default(dc_quota *q)
{
    const dc_policy *b = dc_policy_builtin();
    if (b) {
        *q = b->base.quota;
        return;
    }
    /* no memory to read the built-in values: 0 would mean unlimited; the least instead */
    *q = (dc_quota){.instructions = 1, .time_ms = 1, .memory_kb = 1};
}

void dc_policy_limits(const dc_policy *p, dc_limits *out)
{
    if (p)
        *out = p->limits;
    else
        dc_limits_default(out);
}

int dc_policy_refuse_until_loaded(const dc_policy *p)
{
    if (!p && !(p = dc_policy_builtin()))
        return 1;
    return p->refuse_until_loaded;
}

uint32_t dc_policy_max_states(const dc_policy *p)
{
    if (!p && !(p = dc_policy_builtin()))
        return 1;
    return p->max_states;
}
