/* verify.c - what a bundle must prove before it goes into force: an Ed25519 signature of its
 * exact bytes by a trusted key (the keyring, the strict base64 of a detached signature, the
 * signature's URL beside the bundle's, and the key pair and signing of `dynacode keygen` and
 * `dynacode sign`), and the rollback guard on general.version. Relies on OpenSSL's libcrypto
 * (EVP API, Ed25519 signs the message itself: no digest).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "verify.h"

#define SIG_BYTES 64u
/* The base64 text of a signature is 88 characters; anything much longer is not one. */
#define SIG_TEXT_MAX 4096u

struct dc_keyring {
    EVP_PKEY **keys;
    size_t n;
};

/* The newest reason OpenSSL gave, for a message ("" when none); empties its error queue. */
static const char *ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    buf[0] = '\0';
    if (e)
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

dc_rc dc_keyring_new(dc_keyring **out)
{
    if (!out)
        return DC_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? DC_OK : DC_ENOMEM;
}

size_t dc_keyring_count(const dc_keyring *k)
{
    return k ? k->n : 0;
}

void dc_keyring_free(dc_keyring *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i]);
    free(k->keys);
    free(k);
}

dc_rc dc_keyring_add_file(dc_keyring *k, const char *path, char *err, size_t errlen)
{
    if (!k || !path) {
        dc_set_err(err, errlen, "keyring: bad argument");
        return DC_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        dc_set_err(err, errlen, "cannot open the key %s: %s", path, strerror(errno));
        return DC_EIO;
    }
    ERR_clear_error();
    EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    char why[256];
    if (!key) {
        ossl_reason(why, sizeof why);
        dc_set_err(err, errlen, "%s: not a PEM public key (a file written as NAME.pub by "
                   "dynacode keygen is expected)%s%s", path, why[0] ? ": " : "", why);
        return DC_ESIG;
    }
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        dc_set_err(err, errlen, "%s: a %s public key, not Ed25519", path,
                   OBJ_nid2sn(EVP_PKEY_get_id(key)));
        EVP_PKEY_free(key);
        return DC_ESIG;
    }
    EVP_PKEY **v = realloc(k->keys, (k->n + 1) * sizeof *v);
    if (!v) {
        EVP_PKEY_free(key);
        dc_set_err(err, errlen, "keyring: out of memory");
        return DC_ENOMEM;
    }
    k->keys = v;
    k->keys[k->n++] = key;
    return DC_OK;
}

/* ---- base64 (RFC 4648, standard alphabet, padded), strict ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

dc_rc dc_sig_decode(const char *text, size_t len, unsigned char *out, size_t outcap,
                    size_t *outlen, char *err, size_t errlen)
{
    size_t a = 0, b = len;
    while (a < b && is_space(text[a]))
        a++;
    while (b > a && is_space(text[b - 1]))
        b--;
    size_t n = b - a;
    if (n == 0) {
        dc_set_err(err, errlen, "the signature is empty");
        return DC_ESIG;
    }
    if (n % 4 != 0 || n / 4 * 3 > outcap + 2) {
        dc_set_err(err, errlen, "the signature is not base64 of an Ed25519 signature "
                   "(%zu characters where 88 are expected)", n);
        return DC_ESIG;
    }
    size_t o = 0;
    for (size_t i = a; i < b; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)text[i + (size_t)j];
            if (c == '=' && i + 4 == b && j >= 2 && (j == 3 || text[i + 3] == '=')) {
                v[j] = 0;
                pad++;
                continue;
            }
            v[j] = pad ? -1 : dc_b64_value(c);
            if (v[j] < 0) {
                size_t at = i + (size_t)j - a + 1;
                if (c > 0x20 && c < 0x7f)
                    dc_set_err(err, errlen, "the signature is not base64: character %zu is '%c'",
                               at, c);
                else
                    dc_set_err(err, errlen,
                               "the signature is not base64: character %zu is byte 0x%02x", at,
                               c);
                return DC_ESIG;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        unsigned char bytes[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
                                  (unsigned char)w};
        for (int j = 0; j < 3 - pad; j++) {
            if (o == outcap) {
                dc_set_err(err, errlen, "the signature is too long for an Ed25519 signature");
                return DC_ESIG;
            }
            out[o++] = bytes[j];
        }
    }
    *outlen = o;
    return DC_OK;
}

dc_rc dc_keyring_verify(const dc_keyring *k, const void *data, size_t len, const char *sig,
                        size_t siglen, char *err, size_t errlen)
{
    if (!k || k->n == 0 || (!data && len) || (!sig && siglen)) {
        dc_set_err(err, errlen, "keyring: no key to verify with");
        return DC_EINVAL;
    }
    unsigned char raw[SIG_BYTES + 3];
    size_t rawlen = 0;
    dc_rc rc = dc_sig_decode(sig ? sig : "", siglen, raw, sizeof raw, &rawlen, err, errlen);
    if (rc != DC_OK)
        return rc;
    if (rawlen != SIG_BYTES) {
        dc_set_err(err, errlen, "the signature is %zu bytes, an Ed25519 signature is %u",
                   rawlen, SIG_BYTES);
        return DC_ESIG;
    }
    for (size_t i = 0; i < k->n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx) {
            dc_set_err(err, errlen, "signature check: out of memory");
            return DC_ENOMEM;
        }
        int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->keys[i]) == 1 &&
                 EVP_DigestVerify(ctx, raw, rawlen, data ? data : (const void *)"", len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        if (ok)
            return DC_OK;
    }
    dc_set_err(err, errlen, "the signature does not verify with %s (signed by another key, or "
               "the bundle was changed after signing)",
               k->n == 1 ? "the verify key" : "any of the verify keys");
    return DC_ESIG;
}

/* ---- the signature's place ---- */

char *dc_sig_url(const char *url)
{
    if (!url)
        return NULL;
    size_t n = strcspn(url, "?#"), len = strlen(url);
    char *s = malloc(len + 5);
    if (!s)
        return NULL;
    memcpy(s, url, n);
    memcpy(s + n, ".sig", 4);
    memcpy(s + n + 4, url + n, len - n + 1);
    return s;
}

char *dc_sig_path(const char *path)
{
    if (!path)
        return NULL;
    size_t len = strlen(path);
    char *s = malloc(len + 5);
    if (s) {
        memcpy(s, path, len);
        memcpy(s + len, ".sig", 5);
    }
    return s;
}

/* ---- keys and signing ---- */

/* Writes key as PEM (its private or its public part) to path, created with mode (O_EXCL when
 * excl: a private key is never overwritten). */
static dc_rc write_pem(const char *path, int excl, mode_t mode, EVP_PKEY *key, int private,
                       char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (excl ? O_EXCL : 0), mode);
    if (fd < 0) {
        dc_set_err(err, errlen, "cannot create %s: %s%s", path, strerror(errno),
                   errno == EEXIST ? " (a private key is never overwritten)" : "");
        return DC_EIO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        dc_set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return DC_EIO;
    }
    int ok = private ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_PUBKEY(f, key);
    int flushed = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int closed = fclose(f) == 0;
    if (!ok || !flushed || !closed) {
        char why[256];
        dc_set_err(err, errlen, "cannot write %s: %s", path,
                   !ok ? ossl_reason(why, sizeof why) : strerror(errno));
        unlink(path);
        return DC_EIO;
    }
    return DC_OK;
}

dc_rc dc_sign_keygen(const char *name, char *err, size_t errlen)
{
    if (!name || !name[0]) {
        dc_set_err(err, errlen, "keygen: no output name");
        return DC_EINVAL;
    }
    size_t n = strlen(name);
    char *priv = malloc(n + 5), *pub = malloc(n + 5);
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    dc_rc rc = DC_ENOMEM;
    if (!priv || !pub)
        goto out;
    snprintf(priv, n + 5, "%s.key", name);
    snprintf(pub, n + 5, "%s.pub", name);
    ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
        char why[256];
        dc_set_err(err, errlen, "keygen: libcrypto cannot make an Ed25519 key: %s",
                   ossl_reason(why, sizeof why));
        rc = DC_ESIG;
        goto out;
    }
    rc = write_pem(priv, 1, 0600, key, 1, err, errlen);
    if (rc == DC_OK) {
        rc = write_pem(pub, 0, 0644, key, 0, err, errlen);
        if (rc != DC_OK)
            unlink(priv); /* a pair or nothing */
    }
out:
    if (rc == DC_ENOMEM)
        dc_set_err(err, errlen, "keygen: out of memory");
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    free(priv);
    free(pub);
    return rc;
}

dc_rc dc_sign_data(const char *key_file, const void *data, size_t len, char **sig, char *err,
                   size_t errlen)
{
    if (!key_file || !sig || (!data && len)) {
        dc_set_err(err, errlen, "sign: bad argument");
        return DC_EINVAL;
    }
    *sig = NULL;
    FILE *f = fopen(key_file, "r");
    if (!f) {
        dc_set_err(err, errlen, "cannot open the key %s: %s", key_file, strerror(errno));
        return DC_EIO;
    }
    ERR_clear_error();
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    char why[256];
    if (!key) {
        ossl_reason(why, sizeof why);
        dc_set_err(err, errlen, "%s: not a PEM private key (a file written as NAME.key by "
                   "dynacode keygen is expected)%s%s", key_file, why[0] ? ": " : "", why);
        return DC_ESIG;
    }
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        dc_set_err(err, errlen, "%s: a %s key, not Ed25519", key_file,
                   OBJ_nid2sn(EVP_PKEY_get_id(key)));
        EVP_PKEY_free(key);
        return DC_ESIG;
    }
    unsigned char raw[SIG_BYTES];
    size_t rawlen = sizeof raw;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, raw, &rawlen, data ? data : (const void *)"", len) == 1 &&
             rawlen == SIG_BYTES;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    if (!ok) {
        dc_set_err(err, errlen, "sign: libcrypto failed: %s", ossl_reason(why, sizeof why));
        return DC_ESIG;
    }
    /* EVP_EncodeBlock writes 4 characters per 3 bytes and a NUL: 88 + 1; one more for "\n" */
    char *text = malloc(4 * ((SIG_BYTES + 2) / 3) + 2);
    if (!text) {
        dc_set_err(err, errlen, "sign: out of memory");
        return DC_ENOMEM;
    }
    int n = EVP_EncodeBlock((unsigned char *)text, raw, (int)rawlen);
    text[n] = '\n';
    text[n + 1] = '\0';
    *sig = text;
    return DC_OK;
}

/* ---- the rollback guard ---- */

int dc_version_refused(const dc_bundle *in_force, const dc_bundle *next, int allow_downgrade,
                       char *msg, size_t len)
{
    if (!in_force || !next || allow_downgrade)
        return 0;
    int64_t now = in_force->has_version ? in_force->version : 0;
    int64_t v = next->has_version ? next->version : 0;
    if (v >= now)
        return 0;
    if (next->has_version)
        dc_set_err(msg, len, "general.version %lld is lower than the version in force, %lld "
                   "(a downgrade: allow it with dynacode_allow_downgrade on or "
                   "--allow-downgrade)", (long long)v, (long long)now);
    else
        dc_set_err(msg, len, "the bundle has no general.version, which counts as 0, lower than "
                   "the version in force, %lld (a downgrade: allow it with "
                   "dynacode_allow_downgrade on or --allow-downgrade)", (long long)now);
    return 1;
}

/* ---- sizes ---- */

size_t dc_sig_text_max(void)
{
    return SIG_TEXT_MAX;
}
