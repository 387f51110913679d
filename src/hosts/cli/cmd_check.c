/* cmd_check.c - `dynacode check`: validate and compile a bundle, one line per problem (or JSON
 * with --json), exit 0 (all well), 1 (something left out) or 2 (unusable).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void check_usage(FILE *out)
{
    fputs("usage: dynacode check [--policy FILE] [--json] [--verify-key FILE]...\n"
          "                      [--follow-redirects] BUNDLE\n"
          "\n"
          "Validates BUNDLE and compiles every plugin, with the limits of the policy FILE (the\n"
          "built-in default when not given). Prints one line per problem, naming the JSON path,\n"
          "the domain, the plugin and the reason. With --verify-key (repeatable: any one key\n"
          "is enough), BUNDLE must carry a good signature from one of the public keys, in\n"
          "BUNDLE.sig (file) or at its URL plus .sig, or it is unusable. A URL's redirects are\n"
          "followed only with --follow-redirects.\n"
          "Exit status: 0 all well, 1 some plugin or domain would be left out, 2 unusable.\n",
          out);
}

static const char *kind_word(dc_problem_kind k)
{
    switch (k) {
    case DC_PROBLEM_PLUGIN_LEFT_OUT: return "plugin left out";
    case DC_PROBLEM_DOMAIN_LEFT_OUT: return "domain left out";
    case DC_PROBLEM_KEPT_PREVIOUS: return "previous version kept";
    case DC_PROBLEM_UNKNOWN_FIELD: return "warning";
    }
    return "problem";
}

static const char *kind_id(dc_problem_kind k)
{
    switch (k) {
    case DC_PROBLEM_PLUGIN_LEFT_OUT: return "plugin_left_out";
    case DC_PROBLEM_DOMAIN_LEFT_OUT: return "domain_left_out";
    case DC_PROBLEM_KEPT_PREVIOUS: return "kept_previous";
    case DC_PROBLEM_UNKNOWN_FIELD: return "unknown_field";
    }
    return "problem";
}

static void print_text(const dc_bundle *b)
{
    uint32_t n = dc_bundle_problem_count(b);
    for (uint32_t i = 0; i < n; i++) {
        const dc_problem *p = dc_bundle_problem(b, i);
        printf("%s: %s:", kind_word(p->kind), p->path ? p->path : "");
        if (p->domain) {
            fputs(" domain=", stdout);
            cli_put_quoted(stdout, p->domain);
        }
        if (p->plugin) {
            fputs(" plugin=", stdout);
            cli_put_quoted(stdout, p->plugin);
        }
        printf(" %s\n", p->message ? p->message : "");
    }
    uint32_t total = dc_bundle_problem_total(b, NULL);
    if (total > n) /* the loader keeps the first few; a flood is counted, not listed */
        printf("... and %u more problems (only the first %u are listed)\n", total - n, n);
    if (!dc_bundle_enabled(b))
        puts("warning: general.status is not \"enabled\": no plugin runs");
    printf("%u domains, %u plugins loaded\n", dc_bundle_domain_count(b), dc_bundle_plugin_count(b));
}

static void json_field(const char *key, const char *val, int comma)
{
    printf("%s\"%s\":", comma ? "," : "", key);
    if (val)
        cli_put_json_string(stdout, val);
    else
        fputs("null", stdout);
}

static void print_json(const dc_bundle *b, int failed)
{
    uint32_t n = dc_bundle_problem_count(b);
    printf("{\"ok\":%s,\"enabled\":%s,\"domains\":%u,\"plugins\":%u,"
           "\"problems_total\":%u,\"problems\":[",
           failed ? "false" : "true", dc_bundle_enabled(b) ? "true" : "false",
           dc_bundle_domain_count(b), dc_bundle_plugin_count(b), dc_bundle_problem_total(b, NULL));
    for (uint32_t i = 0; i < n; i++) {
        const dc_problem *p = dc_bundle_problem(b, i);
        printf("%s{", i ? "," : "");
        json_field("kind", kind_id(p->kind), 0);
        json_field("path", p->path, 1);
        json_field("domain", p->domain, 1);
        json_field("plugin", p->plugin, 1);
        json_field("message", p->message, 1);
        putchar('}');
    }
    puts("]}");
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"policy", required_argument, NULL, 'p'},
        {"verify-key", required_argument, NULL, 'k'},
        {"follow-redirects", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    const char *policy_path = NULL;
    cli_keys keys = {.n = 0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "jp:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (cli_keys_add(&keys, "check", optarg) != 0)
                return DC_EXIT_UNUSABLE;
            break;
        case 'j': json = 1; break;
        case 'p': policy_path = optarg; break;
        case 'R': cli_follow_redirects(1); break;
        case 'h': check_usage(stdout); return DC_EXIT_OK;
        default: check_usage(stderr); return DC_EXIT_UNUSABLE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dynacode check: expected one BUNDLE\n");
        check_usage(stderr);
        return DC_EXIT_UNUSABLE;
    }
    dc_policy *policy = cli_load_policy(policy_path);
    if (!policy)
        return DC_EXIT_UNUSABLE;
    dc_bundle *b = cli_load_bundle(argv[optind], policy, &keys);
    dc_policy_free(policy);
    if (!b)
        return DC_EXIT_UNUSABLE;
    uint32_t left_out = 0;
    (void)dc_bundle_problem_total(b, &left_out);
    int failed = left_out > 0; /* unknown fields are warnings; anything else leaves a part out */
    if (json)
        print_json(b, failed);
    else
        print_text(b);
    dc_bundle_unref(b);
    return failed ? DC_EXIT_PROBLEMS : DC_EXIT_OK;
}
