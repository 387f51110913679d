/* cli_sign.c - signed bundles in the `dynacode` command: `keygen` (a key pair), `sign` (a
 * bundle's detached signature, BUNDLE.sig) and the --verify-key check that check, run and watch
 * share.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "offline.h"
#include "verify.h"

int cli_keys_add(cli_keys *k, const char *cmd, const char *path)
{
    if (k->n == CLI_MAX_VERIFY_KEYS) {
        fprintf(stderr, "dynacode %s: --verify-key: at most %d keys\n", cmd,
                CLI_MAX_VERIFY_KEYS);
        return -1;
    }
    k->paths[k->n++] = path;
    return 0;
}

int cli_verify_bundle(const char *arg, const char *data, size_t len, const cli_keys *k)
{
    char err[1024] = "";
    if (strcmp(arg, "-") == 0) {
        fprintf(stderr, "dynacode: --verify-key: a bundle read from standard input has no "
                "signature beside it; give its file or URL (the signature is FILE.sig)\n");
        return -1;
    }
    dc_keyring *ring = NULL;
    if (dc_keyring_new(&ring) != DC_OK) {
        fprintf(stderr, "dynacode: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < k->n; i++) {
        if (dc_keyring_add_file(ring, k->paths[i], err, sizeof err) != DC_OK) {
            fprintf(stderr, "dynacode: --verify-key: %s\n", err);
            dc_keyring_free(ring);
            return -1;
        }
    }
    char *where = strstr(arg, "://") ? dc_sig_url(arg) : dc_sig_path(arg), *sig = NULL;
    size_t siglen = 0;
    int rc = -1;
    if (!where) {
        fprintf(stderr, "dynacode: out of memory\n");
    } else if (cli_read_bundle(where, dc_sig_text_max(), &sig, &siglen, err, sizeof err) != 0) {
        fprintf(stderr, "dynacode: %s: bundle refused (%s): no signature: %s\n", arg,
                dc_strerror(DC_ESIG), err);
    } else if (siglen > dc_sig_text_max()) {
        fprintf(stderr, "dynacode: %s: bundle refused (%s): %s is over %zu bytes, not a "
                "signature\n", arg, dc_strerror(DC_ESIG), where, dc_sig_text_max());
    } else if (dc_keyring_verify(ring, data, len, sig, siglen, err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode: %s: bundle refused (%s): %s: %s\n", arg,
                dc_strerror(DC_ESIG), where, err);
    } else {
        rc = 0;
    }
    free(sig);
    free(where);
    dc_keyring_free(ring);
    return rc;
}

static void keygen_usage(FILE *out)
{
    fputs("usage: dynacode keygen --out NAME\n"
          "\n"
          "Makes an Ed25519 key pair for signing bundles: NAME.key, the private key (PEM, mode\n"
          "0600; an existing one is never overwritten), and NAME.pub, the public key that\n"
          "servers are given (dynacode_verify_key, --verify-key).\n"
          "Exit status: 0, or 2 when the files cannot be written.\n",
          out);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': name = optarg; break;
        case 'h': keygen_usage(stdout); return DC_EXIT_OK;
        default: keygen_usage(stderr); return DC_EXIT_UNUSABLE;
        }
    }
    if (!name || !name[0] || optind != argc) {
        fprintf(stderr, "dynacode keygen: expected --out NAME and nothing else\n");
        keygen_usage(stderr);
        return DC_EXIT_UNUSABLE;
    }
    char err[1024] = "";
    if (dc_sign_keygen(name, err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode keygen: %s\n", err);
        return DC_EXIT_UNUSABLE;
    }
    printf("wrote %s.key (private: keep it off the servers) and %s.pub (public)\n", name,
           name);
    return DC_EXIT_OK;
}

static void sign_usage(FILE *out)
{
    fputs("usage: dynacode sign --key NAME.key BUNDLE\n"
          "\n"
          "Signs the exact bytes of the file BUNDLE with the private key and writes the\n"
          "signature (base64 text) to BUNDLE.sig. Publish both: the servers fetch the\n"
          "signature from the bundle's URL plus .sig. Any change to BUNDLE after signing,\n"
          "one byte or white space, makes the signature fail.\n"
          "Exit status: 0, or 2 when the key or BUNDLE is unusable.\n",
          out);
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'h': sign_usage(stdout); return DC_EXIT_OK;
        default: sign_usage(stderr); return DC_EXIT_UNUSABLE;
        }
    }
    if (!key || optind != argc - 1 || strcmp(argv[optind], "-") == 0 ||
        strstr(argv[optind], "://")) {
        fprintf(stderr, "dynacode sign: expected --key FILE and one BUNDLE file\n");
        sign_usage(stderr);
        return DC_EXIT_UNUSABLE;
    }
    const char *path = argv[optind];
    char err[1024] = "";
    char *data = NULL, *sig = NULL, *out = NULL;
    size_t len = 0;
    int rc = DC_EXIT_UNUSABLE;
    /* the signature is of the bytes as they are, whatever they hold: no size or JSON check */
    if (cli_read_bundle(path, (size_t)1 << 31, &data, &len, err, sizeof err) != 0) {
        fprintf(stderr, "dynacode sign: %s\n", err);
        return DC_EXIT_UNUSABLE;
    }
    if (dc_sign_data(key, data, len, &sig, err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode sign: %s\n", err);
        goto out;
    }
    out = dc_sig_path(path);
    if (!out) {
        fprintf(stderr, "dynacode sign: out of memory\n");
        goto out;
    }
    /* atomically, as the offline file: an upload running at the same time sees the old
     * signature or the new one */
    if (dc_offline_write(out, sig, strlen(sig), err, sizeof err) != DC_OK) {
        fprintf(stderr, "dynacode sign: %s\n", err);
        goto out;
    }
    printf("wrote %s\n", out);
    rc = DC_EXIT_OK;
out:
    free(data);
    free(sig);
    free(out);
    return rc;
}
