/* poller_trust.c - the poller's signatures: the verify keys and the fetcher of the signature
 * beside the bundle (its URL plus ".sig"), the check of a bundle's exact bytes before it is
 * parsed, and the signature kept beside the offline file, written with it and checked again
 * when it is loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poller_priv.h"

/* Reads the verify keys and makes the fetcher of the signature: the bundle fetch's settings
 * (headers, timeouts, TLS), its URL plus ".sig", a signature's size as the cap. */
dc_rc dc_poller_load_keys(dc_poller *p, const dc_poller_config *cfg, char *err, size_t errlen)
{
    dc_rc rc = dc_keyring_new(&p->keys);
    for (size_t i = 0; rc == DC_OK && i < cfg->nverify_keys; i++)
        rc = dc_keyring_add_file(p->keys, cfg->verify_keys[i], err, errlen);
    if (rc != DC_OK)
        return rc;
    dc_fetch_config fc = p->cfg.fetch;
    char *url = dc_sig_url(fc.url);
    if (!url)
        return DC_ENOMEM;
    fc.url = url;
    fc.max_bytes = dc_sig_text_max();
    rc = dc_fetcher_new(&fc, &p->sig_fetcher, err, errlen);
    free(url);
    return rc;
}
/* With verify keys, the offline file's signature beside it (OFFLINE.sig), written atomically
 * too, so that the file can be verified again when it is loaded. */
dc_rc dc_poller_write_offline_sig(dc_poller *p, char *err, size_t errlen)
{
    if (!p->keys || !p->sig)
        return DC_OK;
    char *path = dc_sig_path(p->offline_file);
    if (!path) {
        dc_set_err(err, errlen, "out of memory");
        return DC_ENOMEM;
    }
    dc_rc rc = dc_offline_write(path, p->sig, strlen(p->sig), err, errlen);
    free(path);
    return rc;
}
/* Fetches the signature beside the bundle (always unconditionally: it is small) into *sig;
 * on failure says why in err. */
static dc_rc fetch_signature(dc_poller *p, char **sig, size_t *len, char *err, size_t errlen)
{
    dc_fetch_result r;
    dc_fetcher_reset_validators(p->sig_fetcher);
    if (dc_fetcher_fetch(p->sig_fetcher, &r) != DC_OK) {
        dc_set_err(err, errlen, "cannot fetch the signature: out of memory");
        return DC_ENOMEM;
    }
    dc_rc rc = DC_OK;
    if (r.status == DC_FETCH_OK) {
        *sig = r.body;
        *len = r.len;
        r.body = NULL;
    } else if (r.status == DC_FETCH_HTTP_ERROR && r.http_status == 404) {
        dc_set_err(err, errlen, "no signature: the signature URL (the bundle's plus .sig) "
                   "answered 404");
        rc = DC_ESIG;
    } else {
        dc_set_err(err, errlen, "no signature: cannot fetch it (the bundle's URL plus .sig): "
                   "%s", r.error);
        rc = DC_ESIG;
    }
    dc_fetch_result_clear(&r);
    return rc;
}
/* With verify keys: the bundle's exact bytes must carry a signature by one of them. A refusal
 * keeps the last good bundle and forgets the validators, so that the next poll fetches the
 * bundle and its signature again: a signature uploaded after its bundle is then picked up
 * although the bundle itself did not change. On success p->sig holds the signature text. */
dc_rc dc_poller_check_signature(dc_poller *p, const char *body, size_t len, uint64_t hash)
{
    char err[512] = "", msg[700];
    char *sig = NULL;
    size_t siglen = 0;
    dc_rc rc = fetch_signature(p, &sig, &siglen, err, sizeof err);
    if (rc == DC_OK)
        rc = dc_keyring_verify(p->keys, body, len, sig, siglen, err, sizeof err);
    if (rc != DC_OK) {
        free(sig);
        snprintf(msg, sizeof msg, "bundle refused (%s): %s", dc_strerror(DC_ESIG), err);
        dc_poller_emit(p, DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, msg, 0, 0);
        dc_poller_note_error(p, DC_ESIG, msg);
        dc_fetcher_reset_validators(p->fetcher);
        return DC_ESIG;
    }
    free(p->sig);
    p->sig = sig;
    p->verified_hash = hash;
    return DC_OK;
}
/* With verify keys, the offline file is loaded only with a good signature beside it. */
dc_rc dc_poller_verify_offline(dc_poller *p, const char *json, size_t len, char *err,
                               size_t errlen)
{
    char *path = dc_sig_path(p->offline_file), *sig = NULL;
    size_t siglen = 0;
    char why[512] = "";
    if (!path)
        return DC_ENOMEM;
    dc_rc rc = dc_offline_read(path, dc_sig_text_max(), &sig, &siglen, why, sizeof why);
    if (rc == DC_OK)
        rc = dc_keyring_verify(p->keys, json, len, sig, siglen, why, sizeof why);
    if (rc != DC_OK) {
        dc_set_err(err, errlen, "signature %s: %s", path, why);
        free(sig);
        free(path);
        return DC_ESIG;
    }
    free(path);
    free(p->sig);
    p->sig = sig;
    p->verified_hash = dc_hash64(json, len);
    return DC_OK;
}
