/* poller_refusal.c - what the poller remembers of a refused bundle (its validators kept, so
 * that the API answers 304 and nothing is parsed again while it serves the same bundle; its
 * hash, for an API that ignores validators; why, for the store's last error) and the store's
 * last error cleared by a poll that ended well.
 */
#include <string.h>

#include "poller_priv.h"

/* bg_didnt_update_plugins as news of no importance (said at every poll of the same bundle). */
void dc_poller_unchanged(dc_poller *p, const char *msg)
{
    if (p->cfg.events) {
        dc_event_info info = {DC_EV_BG_DIDNT_UPDATE_PLUGINS, NULL, NULL, -1, msg, 0, 0,
                              DC_SEV_INFO};
        dc_events_emit(p->cfg.events, &info);
    }
}
/* The next fetch is unconditional, and no body is taken for a refused one. */
void dc_poller_forget_refusal(dc_poller *p)
{
    p->refused_kept = 0;
    p->refused_hash = 0;
    dc_fetcher_reset_validators(p->fetcher);
}
/* A bundle refused for what it is (its bytes, under this policy): the fetcher keeps its
 * validators, so the API answers 304 while it stays the same and nothing is parsed again. Out
 * of memory says nothing of the bundle: then it is fetched whole again. */
void dc_poller_remember_refusal(dc_poller *p, dc_rc rc, uint64_t hash, const char *msg)
{
    if (rc == DC_ENOMEM) {
        dc_poller_forget_refusal(p);
        return;
    }
    p->refused_kept = 1;
    p->refused_hash = hash;
    size_t n = strlen(msg) < sizeof p->refusal ? strlen(msg) : sizeof p->refusal - 1;
    memcpy(p->refusal, msg, n); /* as much as the store shows */
    p->refusal[n] = '\0';
    p->refused_at = p->noted_at; /* as the store says it */
}
/* The refused bundle is still what the API serves: its refusal is the store's last error
 * again, when a passing problem (a failed poll in between) took its place. */
void dc_poller_still_refused(dc_poller *p)
{
    dc_poller_unchanged(p, "the refused bundle did not change: the last good bundle stays");
    if (!p->cfg.store)
        return;
    dc_store_info si;
    dc_store_info_get(p->cfg.store, &si);
    if (strncmp(si.last_error, p->refusal, sizeof si.last_error - 1) != 0)
        dc_store_set_error(p->cfg.store, p->refusal, p->refused_at);
}
/* A 200 came: the fetcher's validators are now this answer's, so a refusal remembered holds
 * only for the very same bytes (an API that ignored the validators): those are still refused,
 * not parsed again (returns 1). Any other answer ends the refusal, whatever is then done with
 * it. */
int dc_poller_same_refused_body(dc_poller *p, const dc_fetch_result *res)
{
    if (!p->refused_kept)
        return 0;
    if (p->refused_hash == dc_hash64(res->body, res->len)) {
        dc_poller_still_refused(p);
        return 1;
    }
    p->refused_kept = 0;
    return 0;
}
/* A poll that ended well with the last good bundle in force: the store's last_error is a
 * past problem, no longer shown (the events and the log keep it). */
void dc_poller_clear_error(dc_poller *p)
{
    if (!p->cfg.store)
        return;
    dc_store_info si;
    dc_store_info_get(p->cfg.store, &si);
    if (si.last_error[0] || si.last_error_at != 0)
        dc_store_set_error(p->cfg.store, NULL, 0);
}
