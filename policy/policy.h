/* policy.h - what the engine asks of a loaded policy: the settings in force for one plugin of
 * one domain (rules applied, the plugin's asked quota capped by the ceiling), and whether an
 * API name is allowed. The loader is policy.c.
 */
#ifndef DC_POLICY_H
#define DC_POLICY_H

#include "base.h"
#include "shdict.h"

typedef struct dc_quarantine_cfg {
    uint32_t trips;        /* trips within window_s that quarantine a plugin (0: never) */
    uint32_t window_s;
    uint32_t duration_s;   /* how long it stays quarantined */
} dc_quarantine_cfg;

/* The settings for one plugin, after rules. The api filter points into the policy, which must
 * outlive it. */
typedef struct dc_policy_eff {
    dc_quota quota;              /* in force: asked (when set) capped by the ceiling, else default */
    int on_error_fail;           /* on_error: "fail" */
    dc_quarantine_cfg quarantine;
    dc_bounds bounds;
    const struct dc_api_filter *api;
    uint64_t shdicts;            /* bit d: the policy's dictionary d is this plugin's to use */
} dc_policy_eff;

/* Resolves the settings for plugin `plugin` serving a request for `host` (NULL: no host, so
 * no rule with a domain regex applies), whose bundle asked `asked` (0 fields: not asked).
 * Rules apply in file order, each overriding what it sets. A rule's domain regex is matched
 * against the host, never against a domain name written in the bundle. */
DC_HIDDEN void dc_policy_resolve(const dc_policy *p, const char *host, const char *plugin,
                                 const dc_quota *asked, dc_policy_eff *out);
/* The same, with the rules' host matches computed once (dc_policy_host_rules) for every plugin
 * of a host; hostm NULL: no host. *out is zeroed first, padding included. */
DC_HIDDEN void dc_policy_resolve_rules(const dc_policy *p, const unsigned char *hostm,
                                       const char *plugin, const dc_quota *asked,
                                       dc_policy_eff *out);
DC_HIDDEN uint32_t dc_policy_rule_count(const dc_policy *p);
/* hostm[r] (one byte per rule) = 1 when rule r applies to this host as far as its domain regex
 * goes (rules without one apply to every host). */
DC_HIDDEN void dc_policy_host_rules(const dc_policy *p, const char *host, size_t len,
                                    unsigned char *hostm);
/* 1 when a rule with a domain regex could apply to the plugin named `plugin` (by its glob):
 * that plugin's settings then depend on the request's host. */
DC_HIDDEN int dc_policy_host_dependent(const dc_policy *p, const char *plugin);
/* 1 when the dotted API name (e.g. "ngx.req.set_header") is allowed by the filter. */
DC_HIDDEN int dc_api_allowed(const struct dc_api_filter *f, const char *name);
/* "until_loaded": 1 when requests are refused (503) until a bundle was loaded. */
DC_HIDDEN int dc_policy_refuse_until_loaded(const dc_policy *p);
/* The live-state cap per worker ("states.max_per_worker"). */
DC_HIDDEN uint32_t dc_policy_max_states(const dc_policy *p);

/* The shared dictionaries the policy declares (name, bytes) into out (at most max); returns
 * how many it declares. The names point into the policy. */
DC_HIDDEN uint32_t dc_policy_shdicts(const dc_policy *p, struct dc_shdict_decl *out,
                                     uint32_t max);

/* policy_names.c: the names of the plugin API */
DC_HIDDEN int dc_api_name_covers(const char *entry, const char *name); /* "ngx.req.*" covers "ngx.req.set_header" */
DC_HIDDEN int dc_api_name_forbidden(const char *name);                 /* never allowed */
DC_HIDDEN int dc_api_name_known(const char *name);                     /* a name or "table.*" of the API */

#endif
