/* policy_model.h - the loaded policy as policy.c builds it and policy_resolve.c reads it: the
 * settings a policy and its rules can set, the rules, and the API filters resolve hands out.
 * Private to policy/policy*.c.
 */
#ifndef DC_POLICY_MODEL_H
#define DC_POLICY_MODEL_H

#include <pthread.h>

#include "policy.h"

typedef struct dc_names {
    char **v;
    uint32_t n;
} dc_names;

/* Which keys a settings block sets: a rule overrides only these. */
enum {
    S_QUOTA_INS = 1u << 0, S_QUOTA_TIME = 1u << 1, S_QUOTA_MEM = 1u << 2,
    S_CEIL_INS = 1u << 3, S_CEIL_TIME = 1u << 4, S_CEIL_MEM = 1u << 5,
    S_ON_ERROR = 1u << 6,
    S_QR_TRIPS = 1u << 7, S_QR_WINDOW = 1u << 8, S_QR_DURATION = 1u << 9,
    S_BD_LOG = 1u << 12, S_BD_OUTPUT = 1u << 13, S_BD_VALUE = 1u << 14,
    S_BD_HVALUES = 1u << 15, S_BD_HBYTES = 1u << 16, S_BD_LOGLINES = 1u << 17,
    S_BD_LOGBYTES = 1u << 18, S_BD_SLEEPCALL = 1u << 19, S_BD_SLEEPREQ = 1u << 20,
    S_ALLOW = 1u << 10, S_DENY = 1u << 11,
};

/* What both the top level and a rule can set. */
typedef struct dc_settings {
    unsigned set;
    dc_quota quota;     /* defaults per call */
    dc_quota ceiling;   /* the most a bundle's "quota" gets */
    int on_error_fail;
    dc_quarantine_cfg quarantine;
    dc_bounds bounds;
    dc_names allow;
    dc_names deny;
} dc_settings;

/* settings comes first in both dc_rule and dc_policy, so that the parsers of the shared keys
 * can take either as a dc_settings. */
/* A shared dictionary the policy declares: who may use it. */
typedef struct dc_dict_pol {
    char *name;
    uint64_t bytes;
    pcre2_code **domains;   /* searched in the request's host; NULL (n 0): every domain */
    uint32_t ndomains;
    dc_names plugins;       /* globs; none: every plugin */
} dc_dict_pol;

typedef struct dc_rule {
    dc_settings s;
    char *domain;       /* regex source; NULL: any domain */
    pcre2_code *re;
    char *plugin;       /* fnmatch glob; NULL: any plugin */
} dc_rule;

/* An allow list and the deny lists that add up: the base's, then those of matching rules. */
struct dc_api_filter {
    const dc_names *allow;
    const dc_names **deny;
    uint32_t ndeny;
    struct dc_api_filter *next;   /* interned filters of a policy */
};

struct dc_policy {
    dc_settings base;
    int refuse_until_loaded;
    dc_limits limits;
    uint32_t max_states;
    dc_rule *rules;
    uint32_t nrules;
    dc_dict_pol *dicts;                 /* shared dictionaries, in file order */
    uint32_t ndicts;
    const dc_names *base_deny[1];
    struct dc_api_filter base_filter;   /* in force where no rule touches the API lists */
    pthread_mutex_t lock;               /* guards interned */
    struct dc_api_filter *interned;     /* one per combination of lists met by resolve */
};

/* The filter that allows nothing, used when memory runs out: failing closed. */
extern const struct dc_api_filter dc_policy_deny_all;
/* The built-in default policy (policy/default.json, parsed once at the first need), NULL when
 * memory ran out. */
DC_HIDDEN dc_policy *dc_policy_builtin(void);

#endif /* DC_POLICY_MODEL_H */
