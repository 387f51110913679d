/* cmd_watch.c - `dynacode watch`: the background pipeline in the foreground. Polls URL (first
 * poll at once), loads the offline file when the first poll brings no bundle, and prints one
 * JSON object per event, for --count polls or until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_HEADERS 32

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void watch_usage(FILE *out)
{
    fputs("usage: dynacode watch [--interval SECONDS] [--jitter SECONDS] [--count N]\n"
          "                      [--policy FILE] [--offline-file FILE] [--follow-redirects]\n"
          "                      [--header 'Name: value']... [--verify-key FILE]...\n"
          "                      [--allow-downgrade] URL\n"
          "\n"
          "Runs the background pipeline in the foreground: polls URL (http, https or file; the\n"
          "first poll at once, then every interval from a random phase within the jitter, 0\n"
          "unless given; redirects are followed only with --follow-redirects),\n"
          "validates and compiles each new bundle, keeps the last good one, and writes it to\n"
          "the offline file. When the first poll brings no bundle, the offline file is loaded.\n"
          "With --verify-key (repeatable, any one key is enough), a bundle loads only with a\n"
          "good signature at its URL plus .sig (the offline file: FILE.sig). A bundle whose\n"
          "general.version is lower than the one in force is refused unless --allow-downgrade.\n"
          "Prints one JSON object per event on standard output:\n"
          "  {\"ts\":1700000000.123,\"event\":\"bg_updated_plugins\",\"count\":3}\n"
          "Runs for --count polls, or until interrupted. Exit status: 0, or 2 on unusable\n"
          "options or policy.\n",
          out);
}

static void on_event(void *ud, const dc_event_info *i)
{
    FILE *out = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(out, "{\"ts\":%lld.%03ld,\"event\":\"%s\"", (long long)ts.tv_sec,
            ts.tv_nsec / 1000000L, dc_event_name(i->event));
    if (i->domain) {
        fputs(",\"domain\":", out);
        cli_put_json_string(out, i->domain);
    }
    if (i->plugin) {
        fputs(",\"plugin\":", out);
        cli_put_json_string(out, i->plugin);
    }
    if (i->status)
        fprintf(out, ",\"status\":%d", i->status);
    if (i->count)
        fprintf(out, ",\"count\":%llu", (unsigned long long)i->count);
    if (i->message) {
        fputs(",\"message\":", out);
        cli_put_json_string(out, i->message);
    }
    fputs("}\n", out);
    fflush(out);
}

static int parse_seconds(const char *opt, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || d < 0 || d > 86400) {
        fprintf(stderr, "dynacode watch: %s \"%s\": expected seconds (0 to 86400)\n", opt, v);
        return -1;
    }
    *out = d;
    return 0;
}

struct watch_opts {
    dc_poller_config cfg;
    const char *headers[MAX_HEADERS];
    const char *policy;
    cli_keys keys;
    long count;
};

static int parse(int argc, char **argv, struct watch_opts *o)
{
    static const struct option opts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"jitter", required_argument, NULL, 'j'},
        {"count", required_argument, NULL, 'n'},
        {"policy", required_argument, NULL, 'p'},
        {"offline-file", required_argument, NULL, 'o'},
        {"header", required_argument, NULL, 'e'},
        {"verify-key", required_argument, NULL, 'k'},
        {"allow-downgrade", no_argument, NULL, 'D'},
        {"follow-redirects", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:j:n:p:o:e:k:Dh", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (parse_seconds("--interval", optarg, &o->cfg.interval_s) != 0)
                return -1;
            if (o->cfg.interval_s < 0.05) {
                fprintf(stderr, "dynacode watch: --interval must be at least 0.05 s\n");
                return -1;
            }
            break;
        case 'j':
            if (parse_seconds("--jitter", optarg, &o->cfg.jitter_s) != 0)
                return -1;
            break;
        case 'n':
            errno = 0;
            o->count = strtol(optarg, &end, 10);
            if (errno || *end || o->count < 1) {
                fprintf(stderr, "dynacode watch: --count \"%s\": expected a positive number\n",
                        optarg);
                return -1;
            }
            break;
        case 'p': o->policy = optarg; break;
        case 'k':
            if (cli_keys_add(&o->keys, "watch", optarg) != 0)
                return -1;
            break;
        case 'D': o->cfg.allow_downgrade = 1; break;
        case 'o': o->cfg.offline_file = optarg; break;
        case 'R': o->cfg.fetch.follow_redirects = 1; break;
        case 'e':
            if (o->cfg.fetch.nheaders == MAX_HEADERS || !strchr(optarg, ':') || optarg[0] == ':') {
                fprintf(stderr, "dynacode watch: --header \"%s\": expected 'Name: value' "
                        "(at most %d headers)\n", optarg, MAX_HEADERS);
                return -1;
            }
            o->headers[o->cfg.fetch.nheaders++] = optarg;
            break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dynacode watch: expected one URL\n");
        return -1;
    }
    o->cfg.fetch.url = argv[optind];
    o->cfg.fetch.headers = o->headers;
    o->cfg.verify_keys = o->keys.paths;
    o->cfg.nverify_keys = o->keys.n;
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps ms in small steps so that a signal ends the wait promptly. */
static void nap(double ms)
{
    while (ms > 0 && !stop) {
        double step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)(step * 1e6)};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

int cmd_watch(int argc, char **argv)
{
    struct watch_opts o;
    memset(&o, 0, sizeof o);
    dc_poller_config_default(&o.cfg);
    int p = parse(argc, argv, &o);
    if (p != 0) {
        watch_usage(p > 0 ? stdout : stderr);
        return p > 0 ? DC_EXIT_OK : DC_EXIT_UNUSABLE;
    }
    dc_policy *policy = cli_load_policy(o.policy);
    if (!policy)
        return DC_EXIT_UNUSABLE;
    dc_events *ev = NULL;
    dc_poller *poller = NULL;
    char err[512] = "";
    int rc = DC_EXIT_UNUSABLE;
    o.cfg.policy = policy;
    if (dc_events_new(NULL, &ev) != DC_OK)
        goto out;
    dc_events_subscribe(ev, ~0ull, on_event, stdout);
    o.cfg.events = ev;
    if (dc_poller_new(&o.cfg, &poller, err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode watch: %s\n", err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    double start = mono_s(), due = 0;
    double phase = dc_poll_phase(o.cfg.jitter_s, (double)rand() / ((double)RAND_MAX + 1.0));
    for (long n = 0; !stop && (o.count == 0 || n < o.count); n++) {
        if (n > 0) {
            double now = mono_s() - start;
            due = dc_poll_next(o.cfg.interval_s, phase, now > due ? now : due);
            nap((due - now) * 1000.0);
            if (stop)
                break;
        }
        dc_poller_poll(poller);
        if (n == 0 && !dc_poller_bundle(poller) && o.cfg.offline_file)
            dc_poller_load_offline(poller);
    }
    rc = DC_EXIT_OK;
out:
    dc_poller_free(poller);
    dc_events_free(ev);
    dc_policy_free(policy);
    return rc;
}
