/* cli_util.c - reading BUNDLE arguments and quoting output for the `dynacode` command. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int read_stream(FILE *f, size_t max, char **data, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (n == cap) {
            if (cap > max) /* one byte over the limit is enough to refuse */
                break;
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return -1;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

static int follow_redirects;

void cli_follow_redirects(int on)
{
    follow_redirects = on;
}

/* A URL, fetched with the poller's code and limits (one unconditional GET). */
static int fetch_url(const char *url, size_t max, char **data, size_t *len, char *err,
                     size_t errlen)
{
    dc_fetch_config cfg;
    dc_fetch_config_default(&cfg);
    cfg.url = url;
    cfg.max_bytes = max;
    cfg.follow_redirects = follow_redirects;
    dc_fetcher *f = NULL;
    if (dc_fetcher_new(&cfg, &f, err, errlen) != DC_OK)
        return -1;
    dc_fetch_result res;
    int rc = -1;
    if (dc_fetcher_fetch(f, &res) != DC_OK) {
        snprintf(err, errlen, "%s: out of memory", url);
    } else if (res.status != DC_FETCH_OK) {
        snprintf(err, errlen, "%s", res.error);
        dc_fetch_result_clear(&res);
    } else {
        *data = res.body; /* handed over: the caller frees it */
        *len = res.len;
        res.body = NULL;
        dc_fetch_result_clear(&res);
        rc = 0;
    }
    dc_fetcher_free(f);
    return rc;
}

int cli_read_bundle(const char *arg, size_t max, char **data, size_t *len, char *err,
                    size_t errlen)
{
    if (strcmp(arg, "-") == 0) {
        if (read_stream(stdin, max, data, len) != 0) {
            snprintf(err, errlen, "cannot read standard input: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (strstr(arg, "://"))
        return fetch_url(arg, max, data, len, err, errlen);
    const char *path = arg;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = read_stream(f, max, data, len);
    if (rc != 0)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    fclose(f);
    return rc;
}

dc_policy *cli_load_policy(const char *path)
{
    dc_policy *p = NULL;
    char err[1024] = "";
    dc_rc rc = path ? dc_policy_load_file(path, &p, err, sizeof err)
                    : dc_policy_default(&p, err, sizeof err);
    if (rc != DC_OK) {
        fprintf(stderr, "dynacode: policy refused: %s\n", err);
        return NULL;
    }
    return p;
}

dc_bundle *cli_load_bundle(const char *arg, const dc_policy *policy, const cli_keys *keys)
{
    dc_limits lim;
    dc_policy_limits(policy, &lim);
    char *data = NULL;
    size_t len = 0;
    char err[1024];
    if (cli_read_bundle(arg, lim.max_bundle_bytes, &data, &len, err, sizeof err) != 0) {
        fprintf(stderr, "dynacode: %s\n", err);
        return NULL;
    }
    if (keys && keys->n > 0 && cli_verify_bundle(arg, data, len, keys) != 0) {
        free(data);
        return NULL;
    }
    dc_bundle *b = NULL;
    err[0] = '\0';
    dc_rc rc = dc_bundle_load(data, len, &lim, NULL, &b, err, sizeof err);
    free(data);
    if (rc != DC_OK) {
        fprintf(stderr, "dynacode: %s: bundle refused (%s): %s\n", arg, dc_strerror(rc), err);
        return NULL;
    }
    return b;
}

void cli_put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void cli_put_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}
