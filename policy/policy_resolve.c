/* policy_resolve.c - the settings in force for one plugin on one request's host: the rules
 * whose domain regex matches the host and whose glob matches the plugin, applied over the
 * policy's own settings, the bundle's quota capped by the ceilings, and the API filter (allow
 * list and the deny lists that add up), interned per policy. Also the name check a state's
 * environment asks for each API name.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "policy_model.h"

static const dc_names no_names = {NULL, 0};
const struct dc_api_filter dc_policy_deny_all = {&no_names, NULL, 0, NULL};

/* ---- resolving one plugin's settings ---- */

/* A rule's domain regex is searched in the request's host, never in the bundle's spelling of
 * a domain: a bundle could otherwise dodge a rule ("admin\\.corp" is not found by "^admin\\.")
 * or claim one (a domain named "trusted.|" is found by "trusted"). hostm[r] says whether rule
 * r's regex is found in the host (rules without one apply to every host). */
static int rule_matches(const dc_rule *r, uint32_t i, const unsigned char *hostm,
                        const char *plugin)
{
    if (r->re && !(hostm && hostm[i]))
        return 0;
    return !r->plugin || (plugin && fnmatch(r->plugin, plugin, 0) == 0);
}

/* The host matches hold one byte per rule, then one per shared dictionary. */
uint32_t dc_policy_rule_count(const dc_policy *p)
{
    return p ? p->nrules + p->ndicts : 0;
}

static int dict_plugin_ok(const dc_dict_pol *d, const char *plugin)
{
    if (d->plugins.n == 0)
        return 1;
    for (uint32_t i = 0; plugin && i < d->plugins.n; i++)
        if (fnmatch(d->plugins.v[i], plugin, 0) == 0)
            return 1;
    return 0;
}

/* The dictionaries plugin may use on a host whose matches are hostm (NULL: no host, so only
 * those open to every domain). */
static uint64_t dict_mask(const dc_policy *p, const unsigned char *hostm, const char *plugin)
{
    uint64_t m = 0;
    for (uint32_t i = 0; i < p->ndicts && i < 64; i++) {
        const dc_dict_pol *d = &p->dicts[i];
        if (d->ndomains && !(hostm && hostm[p->nrules + i]))
            continue;
        if (dict_plugin_ok(d, plugin))
            m |= 1ull << i;
    }
    return m;
}

int dc_policy_host_dependent(const dc_policy *p, const char *plugin)
{
    for (uint32_t i = 0; p && i < p->ndicts; i++)
        if (p->dicts[i].ndomains && dict_plugin_ok(&p->dicts[i], plugin))
            return 1;
    for (uint32_t i = 0; p && i < p->nrules; i++) {
        const dc_rule *r = &p->rules[i];
        if (r->re && (!r->plugin || (plugin && fnmatch(r->plugin, plugin, 0) == 0)))
            return 1;
    }
    return 0;
}

void dc_policy_host_rules(const dc_policy *p, const char *host, size_t len, unsigned char *hostm)
{
    /* A search that fails (match limit) counts as not found, as for the bundle's domains. */
    for (uint32_t i = 0; p && i < p->nrules; i++)
        hostm[i] = !p->rules[i].re ||
                   (host && dc_re_search(p->rules[i].re, host, len, NULL) == 1);
    for (uint32_t i = 0; p && i < p->ndicts; i++) {
        const dc_dict_pol *d = &p->dicts[i];
        unsigned char m = d->ndomains == 0;
        for (uint32_t k = 0; !m && host && k < d->ndomains; k++)
            m = dc_re_search(d->domains[k], host, len, NULL) == 1;
        hostm[p->nrules + i] = m;
    }
}

/* Copies into s the scalar keys that r sets. */
static void apply_rule(dc_settings *s, const dc_settings *r)
{
    unsigned m = r->set;
    if (m & S_QUOTA_INS) s->quota.instructions = r->quota.instructions;
    if (m & S_QUOTA_TIME) s->quota.time_ms = r->quota.time_ms;
    if (m & S_QUOTA_MEM) s->quota.memory_kb = r->quota.memory_kb;
    if (m & S_CEIL_INS) s->ceiling.instructions = r->ceiling.instructions;
    if (m & S_CEIL_TIME) s->ceiling.time_ms = r->ceiling.time_ms;
    if (m & S_CEIL_MEM) s->ceiling.memory_kb = r->ceiling.memory_kb;
    if (m & S_ON_ERROR) s->on_error_fail = r->on_error_fail;
    if (m & S_QR_TRIPS) s->quarantine.trips = r->quarantine.trips;
    if (m & S_QR_WINDOW) s->quarantine.window_s = r->quarantine.window_s;
    if (m & S_QR_DURATION) s->quarantine.duration_s = r->quarantine.duration_s;
    if (m & S_BD_LOG) s->bounds.log_line_bytes = r->bounds.log_line_bytes;
    if (m & S_BD_OUTPUT) s->bounds.output_bytes = r->bounds.output_bytes;
    if (m & S_BD_VALUE) s->bounds.value_bytes = r->bounds.value_bytes;
    if (m & S_BD_HVALUES) s->bounds.header_values = r->bounds.header_values;
    if (m & S_BD_HBYTES) s->bounds.header_bytes = r->bounds.header_bytes;
    if (m & S_BD_LOGLINES) s->bounds.log_lines = r->bounds.log_lines;
    if (m & S_BD_LOGBYTES) s->bounds.log_bytes = r->bounds.log_bytes;
    if (m & S_BD_SLEEPCALL) s->bounds.sleep_ms_per_call = r->bounds.sleep_ms_per_call;
    if (m & S_BD_SLEEPREQ) s->bounds.sleep_ms_per_request = r->bounds.sleep_ms_per_request;
}

/* The field in force: asked when asked, else the default; never above a set ceiling (0 is
 * unlimited, for the default and the ceiling alike). */
static uint64_t cap(uint64_t asked, uint64_t def, uint64_t ceiling)
{
    uint64_t v = asked ? asked : def;
    if (ceiling && (v == 0 || v > ceiling))
        v = ceiling;
    return v;
}

static int same_filter(const struct dc_api_filter *f, const dc_names *allow,
                       const dc_names *const *deny, uint32_t ndeny)
{
    return f->allow == allow && f->ndeny == ndeny &&
           memcmp(f->deny, deny, ndeny * sizeof *deny) == 0;
}

/* A new filter at the head of p's interned list, or NULL when out of memory. */
static struct dc_api_filter *filter_new(const dc_names *allow, const dc_names *const *deny,
                                        uint32_t ndeny, dc_policy *p)
{
    struct dc_api_filter *f = malloc(sizeof *f);
    const dc_names **copy = malloc(ndeny * sizeof *deny);
    if (!f || !copy) {
        free(f);
        free(copy);
        return NULL;
    }
    memcpy(copy, deny, ndeny * sizeof *deny);
    *f = (struct dc_api_filter){allow, copy, ndeny, p->interned};
    p->interned = f;
    return f;
}

/* The policy's filter for these lists, made once per combination and kept until the policy
 * is freed (policy.h: the filter points into the policy). Out of memory fails closed. */
static const struct dc_api_filter *intern(const dc_policy *cp, const dc_names *allow,
                                          const dc_names *const *deny, uint32_t ndeny)
{
    if (allow == cp->base_filter.allow && ndeny == 1)
        return &cp->base_filter;
    dc_policy *p = (dc_policy *)cp; /* the cache is not part of the policy's value */
    pthread_mutex_lock(&p->lock);
    struct dc_api_filter *f = p->interned;
    while (f && !same_filter(f, allow, deny, ndeny))
        f = f->next;
    if (!f)
        f = filter_new(allow, deny, ndeny, p);
    pthread_mutex_unlock(&p->lock);
    return f ? f : &dc_policy_deny_all;
}

/* Everything but the API filter, from the settings after rules. */
static void settle(const dc_quota *asked, const dc_settings *s, dc_policy_eff *out)
{
    out->quota.instructions = cap(asked->instructions, s->quota.instructions,
                                  s->ceiling.instructions);
    out->quota.time_ms = (uint32_t)cap(asked->time_ms, s->quota.time_ms, s->ceiling.time_ms);
    out->quota.memory_kb = (uint32_t)cap(asked->memory_kb, s->quota.memory_kb,
                                         s->ceiling.memory_kb);
    out->on_error_fail = s->on_error_fail;
    out->quarantine = s->quarantine;
    out->bounds = s->bounds;
}

void dc_policy_resolve(const dc_policy *p, const char *host, const char *plugin,
                       const dc_quota *asked, dc_policy_eff *out)
{
    /* zeroed: the optimiser cannot see that the rule match fills what it uses */
    unsigned char small[64] = {0}, *hostm = small;
    uint32_t n = dc_policy_rule_count(p);
    if (n > sizeof small && !(hostm = malloc(n))) {
        /* no memory to tell which rules apply: the strictest answer, nothing allowed */
        dc_policy_resolve_rules(p, NULL, plugin, asked, out);
        out->api = &dc_policy_deny_all;
        return;
    }
    dc_policy_host_rules(p, host, host ? strlen(host) : 0, hostm);
    dc_policy_resolve_rules(p, hostm, plugin, asked, out);
    if (hostm != small)
        free(hostm);
}

void dc_policy_resolve_rules(const dc_policy *p, const unsigned char *hostm, const char *plugin,
                             const dc_quota *asked, dc_policy_eff *out)
{
    static const dc_quota none;
    /* zeroed whole (padding too): the engine compares settings bytewise to share them */
    memset(out, 0, sizeof *out);
    if (!asked)
        asked = &none;
    if (!p && !(p = dc_policy_builtin())) {
        /* no memory for the built-in values: the least of everything, nothing allowed */
        dc_settings s;
        memset(&s, 0, sizeof s);
        s.quota = s.ceiling = (dc_quota){.instructions = 1, .time_ms = 1, .memory_kb = 1};
        settle(asked, &s, out);
        out->api = &dc_policy_deny_all;
        return;
    }
    dc_settings s = p->base; /* scalars only: the lists stay the policy's */
    const dc_names *allow = &p->base.allow;
    const dc_names *small[16], **deny = small;
    if (p->nrules + 1 > 16 && !(deny = malloc((p->nrules + 1) * sizeof *deny)))
        deny = NULL;
    uint32_t ndeny = 0;
    if (deny)
        deny[ndeny++] = &p->base.deny;
    for (uint32_t i = 0; i < p->nrules; i++) {
        const dc_rule *r = &p->rules[i];
        if (!rule_matches(r, i, hostm, plugin))
            continue;
        apply_rule(&s, &r->s);
        if (r->s.set & S_ALLOW)
            allow = &r->s.allow;
        if ((r->s.set & S_DENY) && deny)
            deny[ndeny++] = &r->s.deny;
    }
    settle(asked, &s, out);
    out->shdicts = dict_mask(p, hostm, plugin);
    out->api = deny ? intern(p, allow, deny, ndeny) : &dc_policy_deny_all;
    if (deny != small)
        free(deny);
}

/* ---- API names ---- */

static int list_covers(const dc_names *l, const char *name)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (dc_api_name_covers(l->v[i], name))
            return 1;
    return 0;
}

/* A NULL filter is the built-in default's. Names the sandbox forbids are never allowed. */
int dc_api_allowed(const struct dc_api_filter *f, const char *name)
{
    if (!name || dc_api_name_forbidden(name))
        return 0;
    if (!f) {
        const dc_policy *b = dc_policy_builtin();
        f = b ? &b->base_filter : &dc_policy_deny_all;
    }
    if (!list_covers(f->allow, name))
        return 0;
    for (uint32_t i = 0; i < f->ndeny; i++)
        if (list_covers(f->deny[i], name))
            return 0;
    return 1;
}
