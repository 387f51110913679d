/* test_fetch.c - the fetcher against every failure and answer it must handle: each test starts
 * tests/tools/api_server.py on a free 127.0.0.1 port (a checked fixture), steers it through
 * GET /control, and checks the outcome, the message and that every wait stayed bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define BIG_BYTES (2u * 1024u * 1024u) /* what the server sends in big modes */
#define SMALL_CAP (1024u * 1024u)      /* the cap the big tests set */

static const char *const BUNDLE1 = "{\"general\": {\"status\": \"enabled\"}, \"domains\": []}\n";
static const char *const BUNDLE2 =
    "{\"general\": {\"status\": \"enabled\"}, \"domains\": [{\"name\": \"*\", \"plugins\": []}]}\n";

/* The server of the running test, and the scratch folder of the whole run (made and removed by
 * main, so that a test ended by a failed assertion, which Check ends with _exit, leaves nothing
 * behind: its server gets SIGTERM when its process dies, PR_SET_PDEATHSIG). */
static struct {
    pid_t pid;
    int out_fd;
    int port;
    char dir[64];
    char ca[256];       /* set while the server speaks https: its certificate */
} S = {.pid = -1, .out_fd = -1};

/* vsnprintf: out of a test's sight, so usable outside tests too; 0 when it fitted. */
static int fmt(char *buf, size_t len, const char *f, va_list ap)
{
    int n = vsnprintf(buf, len, f, ap);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* snprintf that fails the test instead of truncating. */
static void say(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int rc = fmt(buf, len, f, ap);
    va_end(ap);
    ck_assert_msg(rc == 0, "text too long for its buffer: %s", buf);
}

/* DIR/name (names are short and fixed: no truncation). Also used by main, outside tests. */
static char *path_in_dir(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    size_t d = strlen(S.dir), n = strlen(name);
    if (d + 1 + n >= sizeof buf[0])
        abort();
    memcpy(p, S.dir, d);
    p[d] = '/';
    memcpy(p + d + 1, name, n + 1);
    return p;
}

static void write_file(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(path_in_dir(name), "wb");
    ck_assert_msg(f != NULL, "cannot write %s", name);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_bundle(const char *text)
{
    write_file("bundle.json", text, strlen(text));
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void srv_stop(void)
{
    if (S.pid > 0) {
        kill(S.pid, SIGTERM);
        int st;
        pid_t r = 0;
        for (int i = 0; i < 300 && (r = waitpid(S.pid, &st, WNOHANG)) == 0; i++)
            usleep(10000);
        if (r == 0) {
            kill(S.pid, SIGKILL);
            waitpid(S.pid, &st, 0);
        }
        S.pid = -1;
    }
    S.ca[0] = '\0';
    if (S.out_fd >= 0) {
        close(S.out_fd);
        S.out_fd = -1;
    }
}

/* Starts the server with --bundle DIR/bundle.json plus extra (NULL-terminated, may be NULL) and
 * reads its port from its first line of output (bounded wait). */
static void srv_start(const char *const *extra)
{
    const char *root = getenv("DC_SOURCE_DIR");
    ck_assert_msg(root != NULL, "DC_SOURCE_DIR is not set");
    char script[1024], big[32];
    say(script, sizeof script, "%s/tests/tools/api_server.py", root);
    say(big, sizeof big, "%u", BIG_BYTES);
    const char *argv[24] = {"python3", script, "--port", "0", "--bundle",
                            path_in_dir("bundle.json"), "--big-bytes", big, "--max-seconds", "60"};
    int argc = 10;
    for (int i = 0; extra && extra[i] && argc < 23; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The server ends with the test's process, whatever way that ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    S.pid = pid;
    S.out_fd = fds[0];

    char line[32] = "";
    size_t got = 0;
    double deadline = now_ms() + 15000;
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        int left = (int)(deadline - now_ms());
        ck_assert_msg(left > 0, "api_server.py printed no port in 15 s");
        struct pollfd p = {.fd = S.out_fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n = read(S.out_fd, line + got, sizeof line - 1 - got);
        ck_assert_msg(n > 0, "api_server.py ended before printing its port");
        got += (size_t)n;
        line[got] = '\0';
    }
    S.port = atoi(line);
    ck_assert_msg(S.port > 0 && S.port < 65536, "bad port line \"%s\"", line);
}

static const char *const SCRATCH[] = {"bundle.json", "exact.json", "cert.pem", "key.pem",
                                      "wrong.pem", "wrongkey.pem"};

static void remove_scratch(void)
{
    for (size_t i = 0; i < sizeof SCRATCH / sizeof SCRATCH[0]; i++)
        unlink(path_in_dir(SCRATCH[i]));
}

static void setup(void)
{
    srv_stop(); /* a previous test that failed in no-fork mode */
    remove_scratch();
    write_bundle(BUNDLE1);
    srv_start(NULL);
}

static void teardown(void)
{
    srv_stop();
}

/* ---- helpers over the fetcher ---- */

static const char *url(const char *path)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    say(p, sizeof buf[0], "%s://127.0.0.1:%d%s", S.ca[0] ? "https" : "http", S.port, path);
    return p;
}

static dc_fetcher *fetcher(const dc_fetch_config *cfg)
{
    dc_fetcher *f = NULL;
    char err[256] = "";
    ck_assert_msg(dc_fetcher_new(cfg, &f, err, sizeof err) == DC_OK, "fetcher: %s", err);
    return f;
}

static dc_fetcher *fetcher_for(const char *u)
{
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = u;
    cfg.ca_file = S.ca[0] ? S.ca : NULL;
    return fetcher(&cfg);
}

/* GET /control?query through a fetcher of its own; returns the body (free it). */
static char *ctl(const char *query)
{
    char path[512];
    say(path, sizeof path, "/control?%s", query);
    dc_fetcher *f = fetcher_for(url(path));
    dc_fetch_result r;
    ck_assert_int_eq(dc_fetcher_fetch(f, &r), DC_OK);
    ck_assert_msg(r.status == DC_FETCH_OK, "control %s: %s", query, r.error);
    char *body = r.body;
    r.body = NULL;
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
    return body;
}

static void set_mode(const char *mode)
{
    char q[300];
    say(q, sizeof q, "mode=%s", mode);
    free(ctl(q));
}

static long count_of(const char *key)
{
    char *body = ctl("count");
    char pat[64];
    say(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(body, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    long n = strtol(p + strlen(pat), NULL, 10);
    free(body);
    return n;
}

/* One fetch; the result must be released by the caller. */
static void fetch(dc_fetcher *f, dc_fetch_result *r)
{
    ck_assert_int_eq(dc_fetcher_fetch(f, r), DC_OK);
    ck_assert(r->ms >= 0);
}

static void expect(const dc_fetch_result *r, dc_fetch_status st, const char *in_error)
{
    if (getenv("DC_FETCH_TEST_VERBOSE"))
        fprintf(stderr, "fetch: status %d http %d %.0f ms error \"%s\"\n", r->status,
                r->http_status, r->ms, r->error);
    ck_assert_msg(r->status == st, "status %d (want %d), http %d, error \"%s\"", r->status, st,
                  r->http_status, r->error);
    if (in_error)
        ck_assert_msg(strstr(r->error, in_error) != NULL, "error \"%s\" lacks \"%s\"", r->error,
                      in_error);
    if (st != DC_FETCH_OK)
        ck_assert_ptr_null(r->body);
}

/* ---- success and conditional GET ---- */

START_TEST(ok_then_not_modified)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_int_eq(r.http_status, 200);
    ck_assert_str_eq(r.error, "");
    ck_assert_uint_eq(r.len, strlen(BUNDLE1));
    ck_assert_str_eq(r.body, BUNDLE1);
    ck_assert_int_eq(r.etag[0], '"');
    ck_assert_ptr_nonnull(strstr(r.last_modified, "GMT"));
    char etag[256];
    say(etag, sizeof etag, "%s", r.etag);
    dc_fetch_result_clear(&r);
    char *h = ctl("last_headers");
    ck_assert_msg(!strstr(h, "if-none-match") && !strstr(h, "if-modified-since"), "%s", h);
    ck_assert_msg(strstr(h, "\"user-agent\": \"dynacode/"), "%s", h);
    free(h);

    fetch(f, &r);
    expect(&r, DC_FETCH_NOT_MODIFIED, NULL);
    ck_assert_int_eq(r.http_status, 304);
    ck_assert_str_eq(r.etag, etag);
    ck_assert_uint_eq(r.len, 0);
    dc_fetch_result_clear(&r);
    h = ctl("last_headers");
    /* The JSON escapes the quotes: look for the tag without them. */
    etag[strlen(etag) - 1] = '\0';
    ck_assert_msg(strstr(h, "\"if-none-match\": ") && strstr(h, etag + 1), "%s", h);
    ck_assert_msg(strstr(h, "\"if-modified-since\": "), "%s", h);
    free(h);
    ck_assert_int_eq(count_of("bundle"), 2);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(changed_bundle_is_fetched_again)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    char etag[256];
    say(etag, sizeof etag, "%s", r.etag);
    dc_fetch_result_clear(&r);

    write_bundle(BUNDLE2);
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_str_eq(r.body, BUNDLE2);
    ck_assert_str_ne(r.etag, etag);
    dc_fetch_result_clear(&r);

    fetch(f, &r); /* the new validators are the ones sent now */
    expect(&r, DC_FETCH_NOT_MODIFIED, NULL);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(reset_validators_makes_it_unconditional)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    dc_fetch_result_clear(&r);
    dc_fetcher_reset_validators(f);
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_str_eq(r.body, BUNDLE1);
    dc_fetch_result_clear(&r);
    char *h = ctl("last_headers");
    ck_assert_msg(!strstr(h, "if-none-match"), "%s", h);
    free(h);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(one_connection_for_many_fetches)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            write_bundle(BUNDLE2);
        fetch(f, &r);
        ck_assert_msg(r.status == DC_FETCH_OK || r.status == DC_FETCH_NOT_MODIFIED, "%s",
                      r.error);
        dc_fetch_result_clear(&r);
    }
    ck_assert_int_eq(count_of("bundle"), 4);
    ck_assert_int_eq(count_of("connections"), 1);
    dc_fetcher_free(f);
}
END_TEST

/* ---- the API down, slow or wrong ---- */

START_TEST(refused)
{
    /* A port that was free a moment ago: bound, then closed. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    close(s);
    char u[64], want[96];
    say(u, sizeof u, "http://127.0.0.1:%d/bundle?token=secret", ntohs(a.sin_port));
    say(want, sizeof want, "http://127.0.0.1:%d/bundle: connection refused",
             ntohs(a.sin_port));
    dc_fetcher *f = fetcher_for(u);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, NULL);
    ck_assert_str_eq(r.error, want); /* and no query string (it may hold a token) */
    ck_assert_int_eq(r.http_status, 0);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(timeout_on_a_hanging_api)
{
    set_mode("hang");
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.timeout_ms = 500;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    double t0 = now_ms();
    fetch(f, &r);
    double took = now_ms() - t0;
    expect(&r, DC_FETCH_TRANSPORT_ERROR, "timed out after 500 ms");
    /* the message proves the timeout fired; it cannot fire early (no upper bound: a busy
     * machine may take longer to notice) */
    ck_assert_msg(took >= 450, "took %.0f ms", took);
    ck_assert_msg(r.ms >= 450, "ms %.0f", r.ms);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(slow_drip_is_cut)
{
    set_mode("drip:2000"); /* one byte every 2 s: under 1 byte/s */
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.timeout_ms = 20000;
    cfg.low_speed_bytes = 1;
    cfg.low_speed_seconds = 1;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    double t0 = now_ms();
    fetch(f, &r);
    double took = now_ms() - t0;
    expect(&r, DC_FETCH_TRANSPORT_ERROR, "transfer slower than 1 bytes/s for 1 s");
    ck_assert_int_eq(r.http_status, 200);
    /* the message says the low-speed cut ended it, not the 20 s timeout */
    printf("slow drip cut after %.0f ms\n", took);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(status_codes)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    set_mode("status:500");
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, NULL);
    ck_assert_int_eq(r.http_status, 500);
    ck_assert_str_eq(r.error, "answered 500");
    dc_fetch_result_clear(&r);

    set_mode("status:404");
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, "answered 404");
    ck_assert_int_eq(r.http_status, 404);
    dc_fetch_result_clear(&r);

    set_mode("status:304"); /* no validators were sent: a 304 makes no sense */
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, "unconditional");
    ck_assert_int_eq(r.http_status, 304);
    dc_fetch_result_clear(&r);

    set_mode("normal"); /* and the next poll works */
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(error_status_keeps_the_validators)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    dc_fetch_result_clear(&r);
    set_mode("status:503&times=1"); /* the server is back to normal after one answer */
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, "answered 503");
    dc_fetch_result_clear(&r);
    fetch(f, &r);
    expect(&r, DC_FETCH_NOT_MODIFIED, NULL);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(truncated_body)
{
    set_mode("truncate");
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRUNCATED, "truncated");
    ck_assert_int_eq(r.http_status, 200);
    char want[96];
    say(want, sizeof want, "after %zu of %zu bytes", strlen(BUNDLE1), strlen(BUNDLE1) + 100);
    ck_assert_msg(strstr(r.error, want), "%s", r.error);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(closed_without_an_answer)
{
    set_mode("close");
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, "without an answer");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(not_an_http_answer)
{
    set_mode("garbage");
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, url("/bundle: "));
    ck_assert_int_eq(r.http_status, 0);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* The fetcher passes any 200 body on: JSON and structure are the loader's to judge. */
START_TEST(any_body_is_passed_on)
{
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    set_mode("notjson");
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_str_eq(r.body, "this is not JSON\n");
    ck_assert_str_eq(r.etag, "");
    dc_fetch_result_clear(&r);
    set_mode("wrongstructure");
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_str_eq(r.body, "{\"domains\": []}\n");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* ---- the size cap ---- */

static void expect_too_big(const char *mode)
{
    set_mode(mode);
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.max_bytes = SMALL_CAP;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TOO_BIG, "body over the limit of 1048576 bytes");
    ck_assert_int_eq(r.http_status, 200);
    /* its validator (the server sends it before the size) is kept: the next request names
     * the oversized answer, and the API's 304 spares the download */
    char tag[64];
    say(tag, sizeof tag, "\"big-%u\"", BIG_BYTES);
    ck_assert_str_eq(r.etag, tag);
    dc_fetch_result_clear(&r);
    fetch(f, &r);
    expect(&r, DC_FETCH_NOT_MODIFIED, NULL);
    ck_assert_int_eq(r.http_status, 304);
    dc_fetch_result_clear(&r);
    char *h = ctl("last_headers");
    tag[strlen(tag) - 1] = '\0'; /* the JSON escapes the quotes: the tag without them */
    ck_assert_msg(strstr(h, "\"if-none-match\": ") && strstr(h, tag + 1), "%s", h);
    free(h);
    dc_fetcher_free(f);
}

START_TEST(too_big_by_content_length)
{
    expect_too_big("big");
}
END_TEST

START_TEST(too_big_while_receiving)
{
    expect_too_big("bigchunked"); /* no Content-Length: only the write callback can tell */
}
END_TEST

START_TEST(cap_is_inclusive)
{
    size_t n = 4096;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    memset(text, ' ', n);
    write_file("bundle.json", text, n);
    free(text);
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.max_bytes = n;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_uint_eq(r.len, n);
    ck_assert_int_eq(r.body[n], '\0');
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);

    cfg.max_bytes = n - 1;
    f = fetcher(&cfg);
    fetch(f, &r);
    expect(&r, DC_FETCH_TOO_BIG, "limit of 4095 bytes");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(file_url_is_capped_too)
{
    size_t n = 5000;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    memset(text, 'x', n);
    write_file("exact.json", text, n);
    free(text);
    char u[300];
    say(u, sizeof u, "file://%s", path_in_dir("exact.json"));
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = u;
    cfg.max_bytes = 4999;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TOO_BIG, "limit of 4999 bytes");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* ---- redirects ---- */

/* A fetcher that follows redirects. */
static dc_fetcher *following(const char *u, uint32_t max_redirects)
{
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = u;
    cfg.follow_redirects = 1;
    cfg.max_redirects = max_redirects;
    return fetcher(&cfg);
}

START_TEST(redirects_are_not_followed_by_default)
{
    /* another port of this host: where a redirect may lead without the operator knowing */
    set_mode("location:http://127.0.0.1:9/elsewhere/bundle.json?token=secret");
    dc_fetcher *f = fetcher_for(url("/bundle"));
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR,
           "answered 302, a redirect to http://127.0.0.1:9/elsewhere/bundle.json, not followed");
    ck_assert_int_eq(r.http_status, 302);
    ck_assert_ptr_null(strstr(r.error, "secret")); /* no query in messages */
    ck_assert_str_eq(r.final_url, "");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);

    set_mode("redirect:1"); /* a relative Location, shown absolute */
    f = fetcher_for(url("/bundle"));
    fetch(f, &r);
    char want[128];
    say(want, sizeof want, "a redirect to http://127.0.0.1:%d/hop/1/1, not followed", S.port);
    expect(&r, DC_FETCH_HTTP_ERROR, want);
    dc_fetch_result_clear(&r);
    ck_assert_int_eq(count_of("hops"), 0);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(redirects_within_the_limit)
{
    set_mode("redirect:3");
    dc_fetcher *f = following(url("/bundle"), 3);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_OK, NULL);
    ck_assert_str_eq(r.body, BUNDLE1);
    ck_assert_int_eq(r.http_status, 200);
    ck_assert_int_ne(r.etag[0], '\0');
    char want[128];
    say(want, sizeof want, "http://127.0.0.1:%d/hop/3/3", S.port);
    ck_assert_str_eq(r.final_url, want);
    dc_fetch_result_clear(&r);
    ck_assert_int_eq(count_of("hops"), 3);

    set_mode("normal"); /* no redirect: no final URL */
    fetch(f, &r);
    ck_assert_int_ne(r.status, DC_FETCH_TRANSPORT_ERROR);
    ck_assert_str_eq(r.final_url, "");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(redirects_over_the_limit)
{
    set_mode("redirect:4");
    dc_fetcher *f = following(url("/bundle"), 3);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, "more than 3 redirects");
    ck_assert_int_eq(r.http_status, 302);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);

    set_mode("redirect:1");
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.follow_redirects = 1;
    cfg.max_redirects = 0;
    f = fetcher(&cfg);
    fetch(f, &r);
    expect(&r, DC_FETCH_HTTP_ERROR, "more than 0 redirects");
    ck_assert_int_eq(r.http_status, 302);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

START_TEST(no_redirect_to_a_file)
{
    write_file("exact.json", "{}", 2);
    char mode[300];
    say(mode, sizeof mode, "location:file://%s", path_in_dir("exact.json"));
    set_mode(mode);
    dc_fetcher *f = following(url("/bundle"), 3);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, "redirect to file: refused");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* ---- headers ---- */

START_TEST(extra_headers_are_sent)
{
    const char *hdrs[] = {"X-Api-Key: s3cret", "Authorization: Bearer abc.def"};
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url("/bundle");
    cfg.headers = hdrs;
    cfg.nheaders = 2;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    for (int i = 0; i < 2; i++) { /* on the first and on a conditional fetch */
        fetch(f, &r);
        expect(&r, i == 0 ? DC_FETCH_OK : DC_FETCH_NOT_MODIFIED, NULL);
        dc_fetch_result_clear(&r);
        char *h = ctl("last_headers");
        ck_assert_msg(strstr(h, "\"x-api-key\": \"s3cret\""), "%s", h);
        ck_assert_msg(strstr(h, "\"authorization\": \"Bearer abc.def\""), "%s", h);
        free(h);
    }
    dc_fetcher_free(f);
}
END_TEST

/* ---- file:// ---- */

START_TEST(file_url)
{
    char u[300];
    say(u, sizeof u, "file://%s", path_in_dir("bundle.json"));
    dc_fetcher *f = fetcher_for(u);
    dc_fetch_result r;
    for (int i = 0; i < 2; i++) { /* a file has no validators: each fetch reads it */
        fetch(f, &r);
        expect(&r, DC_FETCH_OK, NULL);
        ck_assert_int_eq(r.http_status, 200);
        ck_assert_str_eq(r.body, BUNDLE1);
        dc_fetch_result_clear(&r);
    }
    dc_fetcher_free(f);
}
END_TEST

START_TEST(missing_file)
{
    char u[300], want[320];
    say(u, sizeof u, "file://%s", path_in_dir("absent.json"));
    say(want, sizeof want, "%s: cannot read: No such file or directory", u);
    dc_fetcher *f = fetcher_for(u);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, NULL);
    ck_assert_str_eq(r.error, want);
    ck_assert_int_eq(r.http_status, 0);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* ---- configuration ---- */

START_TEST(bad_configurations_are_refused)
{
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    ck_assert_uint_eq(cfg.timeout_ms, 5000);
    ck_assert_uint_eq(cfg.low_speed_bytes, 1);
    ck_assert_uint_eq(cfg.low_speed_seconds, 3);
    ck_assert_uint_eq(cfg.max_bytes, 8u * 1024 * 1024);
    ck_assert_uint_eq(cfg.max_redirects, 3);

    dc_fetcher *f = (dc_fetcher *)&cfg; /* must be set to NULL on failure */
    char err[256] = "";
    ck_assert_int_eq(dc_fetcher_new(&cfg, &f, err, sizeof err), DC_EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_str_eq(err, "fetcher: no URL");

    static const char *const bad_urls[] = {"ftp://127.0.0.1/b", "gopher://127.0.0.1/",
                                           "127.0.0.1 not a url", "ldap://x/", "dict://x/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        cfg.url = bad_urls[i];
        err[0] = '\0';
        ck_assert_int_eq(dc_fetcher_new(&cfg, &f, err, sizeof err), DC_EINVAL);
        ck_assert_msg(strstr(err, "bad URL"), "%s: %s", bad_urls[i], err);
    }

    cfg.url = "http://127.0.0.1:1/";
    static const char *const bad_headers[] = {"X-A: 1\r\nX-B: 2", "NoColon", ": novalue",
                                              "Bad Name: v", "X-A: a\nb"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        cfg.headers = &bad_headers[i];
        cfg.nheaders = 1;
        err[0] = '\0';
        ck_assert_int_eq(dc_fetcher_new(&cfg, &f, err, sizeof err), DC_EINVAL);
        ck_assert_msg(strstr(err, "Name: value"), "%s", err);
    }
    cfg.headers = NULL;
    cfg.nheaders = 1;
    ck_assert_int_eq(dc_fetcher_new(&cfg, &f, err, sizeof err), DC_EINVAL);

    /* Zeros take the safe defaults; a fetcher is freed with nothing fetched. */
    cfg.nheaders = 0;
    cfg.timeout_ms = 0;
    cfg.max_bytes = 0;
    ck_assert_int_eq(dc_fetcher_new(&cfg, &f, err, sizeof err), DC_OK);
    dc_fetcher_reset_validators(f);
    dc_fetcher_free(f);
    dc_fetcher_free(NULL);
    dc_fetch_result_clear(NULL);
    ck_assert_int_eq(dc_fetcher_fetch(NULL, NULL), DC_EINVAL);
}
END_TEST

/* ---- TLS ---- */

START_TEST(https_to_a_plain_server_fails)
{
    char u[96];
    say(u, sizeof u, "https://127.0.0.1:%d/bundle", S.port);
    dc_fetcher *f = fetcher_for(u);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, DC_FETCH_TRANSPORT_ERROR, ": TLS: ");
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}
END_TEST

/* Makes a self-signed certificate for subject alternative name san; 0 when openssl is absent. */
static int make_cert(const char *cert, const char *key, const char *san)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        return 0;
    char cmd[1024];
    say(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=dynacode-test -addext subjectAltName=%s -keyout %s -out %s "
             ">/dev/null 2>&1",
             san, path_in_dir(key), path_in_dir(cert));
    ck_assert_msg(system(cmd) == 0, "openssl failed: %s", cmd);
    return 1;
}

static void https_fetch(const char *ca, dc_fetch_status want, const char *in_error)
{
    char u[96];
    say(u, sizeof u, "https://127.0.0.1:%d/bundle", S.port);
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = u;
    cfg.ca_file = ca;
    cfg.follow_redirects = 1;
    dc_fetcher *f = fetcher(&cfg);
    dc_fetch_result r;
    fetch(f, &r);
    expect(&r, want, in_error);
    if (want == DC_FETCH_OK)
        ck_assert_str_eq(r.body, BUNDLE1);
    dc_fetch_result_clear(&r);
    dc_fetcher_free(f);
}

START_TEST(https_peer_and_host_are_verified)
{
    if (!make_cert("cert.pem", "key.pem", "IP:127.0.0.1") ||
        !make_cert("wrong.pem", "wrongkey.pem", "DNS:elsewhere.invalid")) {
        fprintf(stderr, "test_fetch: openssl not found, TLS verification not tested\n");
        return;
    }
    srv_stop();
    const char *tls[] = {"--tls-cert", path_in_dir("cert.pem"), "--tls-key",
                         path_in_dir("key.pem"), NULL};
    srv_start(tls);
    https_fetch(NULL, DC_FETCH_TRANSPORT_ERROR, ": TLS: ");               /* unknown issuer */
    https_fetch(path_in_dir("cert.pem"), DC_FETCH_OK, NULL);              /* trusted */
    https_fetch(path_in_dir("absent.pem"), DC_FETCH_TRANSPORT_ERROR, ": TLS: ");

    /* No redirect from https down to http. */
    say(S.ca, sizeof S.ca, "%s", path_in_dir("cert.pem"));
    char mode[128];
    say(mode, sizeof mode, "location:http://127.0.0.1:%d/bundle", S.port);
    set_mode(mode);
    https_fetch(path_in_dir("cert.pem"), DC_FETCH_TRANSPORT_ERROR,
                "redirect to http: refused (allowed: https)");
    set_mode("redirect:2"); /* https to https is fine */
    https_fetch(path_in_dir("cert.pem"), DC_FETCH_OK, NULL);
    ck_assert_int_eq(count_of("hops"), 2);

    srv_stop();
    const char *wrong[] = {"--tls-cert", path_in_dir("wrong.pem"), "--tls-key",
                           path_in_dir("wrongkey.pem"), NULL};
    srv_start(wrong);
    /* Trusted issuer, but the certificate names another host. */
    https_fetch(path_in_dir("wrong.pem"), DC_FETCH_TRANSPORT_ERROR, ": TLS: ");
}
END_TEST

static Suite *fetch_suite(void)
{
    Suite *s = suite_create("fetch");
    TCase *tc = tcase_create("fetch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, ok_then_not_modified);
    tcase_add_test(tc, changed_bundle_is_fetched_again);
    tcase_add_test(tc, reset_validators_makes_it_unconditional);
    tcase_add_test(tc, one_connection_for_many_fetches);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, timeout_on_a_hanging_api);
    tcase_add_test(tc, slow_drip_is_cut);
    tcase_add_test(tc, status_codes);
    tcase_add_test(tc, error_status_keeps_the_validators);
    tcase_add_test(tc, truncated_body);
    tcase_add_test(tc, closed_without_an_answer);
    tcase_add_test(tc, not_an_http_answer);
    tcase_add_test(tc, any_body_is_passed_on);
    tcase_add_test(tc, too_big_by_content_length);
    tcase_add_test(tc, too_big_while_receiving);
    tcase_add_test(tc, cap_is_inclusive);
    tcase_add_test(tc, file_url_is_capped_too);
    tcase_add_test(tc, redirects_are_not_followed_by_default);
    tcase_add_test(tc, redirects_within_the_limit);
    tcase_add_test(tc, redirects_over_the_limit);
    tcase_add_test(tc, no_redirect_to_a_file);
    tcase_add_test(tc, extra_headers_are_sent);
    tcase_add_test(tc, file_url);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, bad_configurations_are_refused);
    tcase_add_test(tc, https_to_a_plain_server_fails);
    tcase_add_test(tc, https_peer_and_host_are_verified);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(S.dir, sizeof S.dir, "/tmp/dc_fetch_XXXXXX");
    if (!mkdtemp(S.dir)) {
        perror("test_fetch: mkdtemp");
        return 1;
    }
    int rc = tu_run_suite(fetch_suite());
    srv_stop();
    remove_scratch();
    rmdir(S.dir);
    return rc;
}
