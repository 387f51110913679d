/* fuzz_policy.c - libFuzzer target for the policy loader: bytes as a policy file's JSON, then
 * what the engine asks of a loaded policy (limits, the settings resolved for a few domain and
 * plugin names, API names allowed or not).
 */
#include <stdlib.h>

#include "fuzz.h"
#include "policy.h"

static const char *const names[] = {
    "ngx.say", "ngx.req.set_header", "ngx.re.match", "json.decode", "print", "ngx.var",
    "ngx.exit", "string.rep", "", "ngx.req.*",
};

static const char *const hosts[] = {"", "admin.corp", "www.example.com", "*", "a\nb"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_policy *p = NULL;
    char err[512];
    if (dc_policy_load((const char *)data, size, "fuzz", &p, err, sizeof err) != DC_OK)
        return 0;
    dc_limits lim;
    dc_policy_limits(p, &lim);
    (void)dc_policy_refuse_until_loaded(p);
    (void)dc_policy_max_states(p);
    const dc_quota asked[] = {{0, 0, 0}, {1, 1, 1}, {UINT64_MAX, UINT32_MAX, UINT32_MAX}};
    for (size_t h = 0; h < sizeof hosts / sizeof *hosts; h++) {
        dc_policy_eff eff;
        dc_policy_resolve(p, hosts[h], "plugin", &asked[h % 3], &eff);
        for (size_t n = 0; n < sizeof names / sizeof *names; n++)
            (void)dc_api_allowed(eff.api, names[n]);
    }
    dc_policy_free(p);
    return 0;
}
