/* poller_priv.h - the poller as its three units see it: poller.c (the loop, adopting and
 * publishing a bundle, the offline file), poller_trust.c (signatures: the verify keys, the
 * signature beside the bundle and beside the offline file) and poller_refusal.c (a refused
 * bundle remembered so that it is not parsed again, and the store's last error).
 */
#ifndef DC_POLLER_PRIV_H
#define DC_POLLER_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "offline.h"
#include "sync.h"
#include "verify.h"

struct dc_poller {
    dc_poller_config cfg;       /* strings below are the poller's own copies */
    dc_errbuf first_error;      /* dc_poller_last_error */
    char *url;
    char **headers;
    char *offline_file;
    char *ca_file;
    char *store_size_name;
    dc_policy *own_policy;      /* the built-in default when cfg.policy is NULL */
    dc_limits limits;
    dc_fetcher *fetcher;
    dc_keyring *keys;           /* verify keys; NULL when bundles need no signature */
    dc_fetcher *sig_fetcher;    /* the signature beside the bundle (keys only) */
    char *sig;                  /* the signature text of the bundle being adopted */
    uint64_t verified_hash;     /* dc_hash64 of the last bundle whose signature verified */
    dc_bundle *bundle;          /* the last good bundle */
    uint64_t seen_gen;          /* the store generation that bundle is (0: none) */
    int refused_kept;           /* the fetcher's validators are a refused bundle's: its 304
                                   means "still the refused one", the last good one stays */
    uint64_t refused_hash;      /* that refused body's hash (a 200 with it is not parsed) */
    char refusal[256];          /* why it was refused, and when: the current problem while */
    double refused_at;          /* the API keeps serving it */
    int offline_stale;          /* the offline file could not take the bundle in force: the
                                   next polls fetch it whole (no 304) to write it again */
    int poll_noted;             /* an error was noted during the current poll */
    double noted_at;            /* when the last one was */
    pthread_mutex_t bmu;        /* bundle and seen_gen as other threads read them: written
                                   together by the poller's thread, under it */
    uint64_t rng;
    pthread_t thread;
    int running;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* poller.c */
DC_HIDDEN double dc_poller_unix_now(void);
DC_HIDDEN void dc_poller_emit(dc_poller *p, dc_event ev, const char *domain, const char *plugin,
                              const char *msg, int status, uint64_t count);
/* Records a problem of this poll: the first error kept, the store's last error. */
DC_HIDDEN void dc_poller_note_error(dc_poller *p, dc_rc rc, const char *msg);

/* poller_trust.c */
DC_HIDDEN dc_rc dc_poller_load_keys(dc_poller *p, const dc_poller_config *cfg, char *err,
                                    size_t errlen);
DC_HIDDEN dc_rc dc_poller_write_offline_sig(dc_poller *p, char *err, size_t errlen);
DC_HIDDEN dc_rc dc_poller_check_signature(dc_poller *p, const char *body, size_t len,
                                          uint64_t hash);
DC_HIDDEN dc_rc dc_poller_verify_offline(dc_poller *p, const char *json, size_t len, char *err,
                                         size_t errlen);

/* poller_refusal.c */
DC_HIDDEN void dc_poller_unchanged(dc_poller *p, const char *msg);
DC_HIDDEN void dc_poller_forget_refusal(dc_poller *p);
DC_HIDDEN void dc_poller_remember_refusal(dc_poller *p, dc_rc rc, uint64_t hash,
                                          const char *msg);
DC_HIDDEN void dc_poller_still_refused(dc_poller *p);
DC_HIDDEN int dc_poller_same_refused_body(dc_poller *p, const dc_fetch_result *res);
DC_HIDDEN void dc_poller_clear_error(dc_poller *p);

#endif /* DC_POLLER_PRIV_H */
