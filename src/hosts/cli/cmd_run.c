/* cmd_run.c - `dynacode run`: one simulated request through every phase with the same sandbox
 * and API as nginx; the response on standard output, one trace line per plugin call on
 * standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "crash.h"
#include "sim.h"

/* nginx's large_client_header_buffers default (4 8k): a header line over one buffer, or all
 * of them over the four, is refused ("Request Header Or Cookie Too Large") */
#define HEADER_LINE_MAX 8192
#define HEADERS_TOTAL_MAX (4 * 8192)
/* nginx's client_max_body_size default is 1m (413 over it); the file read is bounded above */
#define BODY_FILE_MAX (64u << 20)
#define DC_EXIT_CRASH 3 /* a plugin call crashed the process */

static void run_usage(FILE *out)
{
    fputs("usage: dynacode run [--policy FILE] [--verify-key FILE]... --host HOST\n"
          "                    [--method M] [--uri URI]\n"
          "                    [--header 'Name: value']... [--remote-addr IP]\n"
          "                    [--upstream-status N] [--upstream-body FILE] [--body FILE]\n"
          "                    [--follow-redirects] BUNDLE\n"
          "\n"
          "Takes one simulated request through rewrite, access, content, header_filter,\n"
          "body_filter and log. Prints the response (HTTP/1.1) on standard output and one line\n"
          "per plugin call on standard error:\n"
          "  plugin=\"NAME\" domain=\"D\" phase=P result=ok|error|quota:...|denied|crash ms=T\n"
          "  [msg=\"...\"]\n"
          "When no content plugin runs, the response is --upstream-status (200) with\n"
          "--upstream-body (empty). --body gives the request a body (as nginx: over 1m, 413;\n"
          "over 16k, kept out of memory). Each --header line at most 8k, all of them 32k.\n"
          "--verify-key (repeatable): BUNDLE must be signed by one of these public keys\n"
          "(BUNDLE.sig, or its URL plus .sig).\n"
          "A URL's redirects are followed only with --follow-redirects.\n"
          "Exit status: 0 simulated, 2 unusable input, 3 a plugin\n"
          "call crashed the process (after its result=crash trace line).\n",
          out);
}

static void trace(void *ud, const dc_run_info *i)
{
    FILE *out = ud;
    fputs("plugin=", out);
    cli_put_quoted(out, i->plugin);
    fputs(" domain=", out);
    cli_put_quoted(out, i->domain);
    fprintf(out, " phase=%s result=%s ms=%.3f", dc_phase_name(i->phase),
            dc_result_name(i->result), i->ms);
    if (i->message) {
        fputs(" msg=", out);
        cli_put_quoted(out, i->message);
    }
    fputc('\n', out);
}

/* A fatal signal during a plugin call (crash.c calls this in the signal handler): the trace
 * line of that call, written without stdio or malloc, then exit 3. The lines before it went
 * out already: standard error is unbuffered. */
static void crash_trace(void *ud, const dc_crash_info *i)
{
    (void)ud;
    dc_sigline l = {.len = 0};
    dc_sigline_str(&l, "plugin=");
    dc_sigline_quoted(&l, i->plugin);
    dc_sigline_str(&l, " domain=");
    dc_sigline_quoted(&l, i->domain);
    dc_sigline_str(&l, " phase=");
    dc_sigline_str(&l, dc_phase_name((dc_phase)i->phase));
    dc_sigline_str(&l, " result=crash ms=");
    dc_sigline_ms(&l, i->ms);
    dc_sigline_str(&l, " msg=\"");
    dc_sigline_str(&l, i->signame);
    dc_sigline_str(&l, ": the plugin call crashed the process\"\n");
    dc_sigline_write(&l, 2);
    _exit(DC_EXIT_CRASH);
}

struct run_opts {
    dc_sim_opts sim;
    const char **headers;
    size_t headers_bytes;
    const char *body_file;
    const char *req_body_file;
    const char *policy;
    cli_keys keys;
};

/* Parses options; returns -1 after printing why when they are unusable, 1 for --help. */
static int parse(int argc, char **argv, struct run_opts *o)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"method", required_argument, NULL, 'm'},
        {"uri", required_argument, NULL, 'u'},
        {"header", required_argument, NULL, 'e'},
        {"remote-addr", required_argument, NULL, 'r'},
        {"upstream-status", required_argument, NULL, 's'},
        {"upstream-body", required_argument, NULL, 'b'},
        {"policy", required_argument, NULL, 'p'},
        {"body", required_argument, NULL, 'B'},
        {"verify-key", required_argument, NULL, 'k'},
        {"follow-redirects", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "H:m:u:e:r:s:b:p:B:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': o->policy = optarg; break;
        case 'k':
            if (cli_keys_add(&o->keys, "run", optarg) != 0)
                return -1;
            break;
        case 'H': o->sim.host = optarg; break;
        case 'm': o->sim.method = optarg; break;
        case 'u': o->sim.uri = optarg; break;
        case 'r': o->sim.remote_addr = optarg; break;
        case 'b': o->body_file = optarg; break;
        case 'B': o->req_body_file = optarg; break;
        case 'R': cli_follow_redirects(1); break;
        case 'e': {
            size_t len = strlen(optarg) + 2; /* with its CRLF */
            if (!strchr(optarg, ':') || optarg[0] == ':') {
                fprintf(stderr, "dynacode run: --header \"%s\": expected 'Name: value'\n",
                        optarg);
                return -1;
            }
            if (len > HEADER_LINE_MAX || o->headers_bytes + len > HEADERS_TOTAL_MAX) {
                fprintf(stderr, "dynacode run: --header: request header too large (nginx's "
                        "large_client_header_buffers: at most %d bytes a line, %d in all)\n",
                        HEADER_LINE_MAX, HEADERS_TOTAL_MAX);
                return -1;
            }
            const char **h = realloc(o->headers, (o->sim.nheaders + 1) * sizeof *h);
            if (!h) {
                fprintf(stderr, "dynacode run: out of memory\n");
                return -1;
            }
            o->headers = h;
            o->headers[o->sim.nheaders++] = optarg;
            o->headers_bytes += len;
            break;
        }
        case 's':
            errno = 0;
            long st = strtol(optarg, &end, 10);
            if (errno || *end || st < 100 || st > 999) {
                fprintf(stderr, "dynacode run: --upstream-status \"%s\": expected an HTTP "
                        "status (100-999)\n", optarg);
                return -1;
            }
            o->sim.upstream_status = (int)st;
            break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (!o->sim.host || !*o->sim.host) {
        fprintf(stderr, "dynacode run: --host is required\n");
        return -1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dynacode run: expected one BUNDLE\n");
        return -1;
    }
    o->sim.headers = o->headers;
    return 0;
}

static int simulate(dc_bundle *b, const dc_policy *policy, dc_sim *s)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = policy;
    dc_engine *e = NULL;
    char err[256];
    /* the policy's dictionaries live in this process, empty at start */
    size_t shd_size = dc_policy_shdicts_size(policy);
    void *shd_region = shd_size ? calloc(1, shd_size) : NULL;
    dc_shdicts *shd = NULL;
    if (shd_size && (!shd_region || dc_shdicts_open(shd_region, shd_size, 1, policy, &shd, err,
                                                    sizeof err) != DC_OK)) {
        fprintf(stderr, "dynacode run: %s\n", shd_region ? err : "out of memory");
        free(shd_region);
        return DC_EXIT_UNUSABLE;
    }
    cfg.shdicts = shd;
    if (dc_engine_new(&cfg, &e, err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode run: %s\n", err);
        dc_shdicts_close(shd);
        free(shd_region);
        return DC_EXIT_UNUSABLE;
    }
    dc_engine_on_run(e, trace, stderr);
    dc_crash_set_reporter(crash_trace, NULL);
    if (dc_crash_guard_install(err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode run: %s\n", err);
        dc_engine_free(e);
        dc_shdicts_close(shd);
        free(shd_region);
        return DC_EXIT_UNUSABLE;
    }
    dc_engine_set_bundle(e, b);
    dc_sim_set_log_stream(s, stderr);
    int rc = dc_sim_run(s, e);
    dc_engine_free(e);
    dc_shdicts_close(shd);
    free(shd_region);
    if (rc != 0) {
        fprintf(stderr, "dynacode run: the request could not be simulated (out of memory)\n");
        return DC_EXIT_UNUSABLE;
    }
    fflush(stderr);
    return dc_sim_write_response(s, stdout) == 0 ? DC_EXIT_OK : DC_EXIT_UNUSABLE;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o;
    memset(&o, 0, sizeof o);
    int p = parse(argc, argv, &o);
    if (p != 0) {
        free(o.headers);
        run_usage(p > 0 ? stdout : stderr);
        return p > 0 ? DC_EXIT_OK : DC_EXIT_UNUSABLE;
    }
    char *body = NULL, *rbody = NULL;
    size_t blen = 0, rblen = 0;
    char err[1024];
    if (o.body_file && cli_read_bundle(o.body_file, BODY_FILE_MAX, &body, &blen, err,
                                       sizeof err) != 0) {
        fprintf(stderr, "dynacode run: --upstream-body: %s\n", err);
        free(o.headers);
        return DC_EXIT_UNUSABLE;
    }
    if (o.req_body_file && cli_read_bundle(o.req_body_file, BODY_FILE_MAX, &rbody, &rblen, err,
                                           sizeof err) != 0) {
        fprintf(stderr, "dynacode run: --body: %s\n", err);
        free(body);
        free(o.headers);
        return DC_EXIT_UNUSABLE;
    }
    o.sim.upstream_body = body;
    o.sim.upstream_body_len = blen;
    o.sim.body = o.req_body_file ? (rbody ? rbody : "") : NULL;
    o.sim.body_len = rblen;

    dc_policy *policy = cli_load_policy(o.policy);
    dc_bundle *b = policy ? cli_load_bundle(argv[optind], policy, &o.keys) : NULL;
    if (!b) {
        dc_policy_free(policy);
        free(body);
        free(rbody);
        free(o.headers);
        return DC_EXIT_UNUSABLE;
    }
    for (uint32_t i = 0; i < dc_bundle_problem_count(b); i++) {
        const dc_problem *pr = dc_bundle_problem(b, i);
        if (pr->kind != DC_PROBLEM_UNKNOWN_FIELD)
            fprintf(stderr, "dynacode run: left out: %s: %s\n", pr->path, pr->message);
    }
    int rc = DC_EXIT_UNUSABLE;
    dc_sim *s = dc_sim_new(&o.sim);
    if (!s)
        fprintf(stderr, "dynacode run: cannot set up the simulated request\n");
    else
        rc = simulate(b, policy, s);
    dc_sim_free(s);
    dc_bundle_unref(b);
    dc_policy_free(policy);
    free(body);
    free(rbody);
    free(o.headers);
    return rc;
}
