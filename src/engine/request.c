/* request.c - one request's walk through the phases: the generation it pinned at its
 * start, its host's plugins phase by phase, sampling, one sandboxed call per plugin, errors and
 * quota trips that stop only that plugin, ngx.exit ending the phase or the request, and a call
 * asleep in ngx.sleep, kept with its place in the walk until the host takes the phase up again.
 */
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "engine.h"

static void abandon_sleeper(dc_request *r);

dc_rc dc_request_begin(dc_engine *e, void *hreq, const char *host, size_t hostlen,
                       dc_request **out)
{
    dc_request *r = e->spare;
    if (r) {
        /* one the engine kept: its buffers keep their room, emptied */
        e->spare = r->next_spare;
        e->nspare--;
        dc_buf ctx = r->ctx, chunk = r->chunk;
        memset(r, 0, sizeof *r);
        r->ctx.data = ctx.data;
        r->ctx.cap = ctx.cap;
        r->chunk.data = chunk.data;
        r->chunk.cap = chunk.cap;
    } else if (!(r = calloc(1, sizeof *r))) {
        dc_errbuf_note(&e->first_error, DC_ENOMEM, "request: out of memory");
        return DC_ENOMEM;
    }
    r->e = e;
    r->hreq = hreq;
    r->gen = e->gen;
    if (r->gen) {
        r->gen->refs++;
        if (r->gen->bundle->enabled) {
            r->m = dc_match_host(r->gen, host, hostlen);
            if (!r->m) {
                dc_request_end(r);
                dc_errbuf_note(&e->first_error, DC_ENOMEM, "request: matching: out of memory");
                return DC_ENOMEM;
            }
        }
    }
    *out = r;
    return DC_OK;
}

void dc_request_end(dc_request *r)
{
    if (!r)
        return;
    abandon_sleeper(r);
    dc_match_release(r->m);
    dc_gen_release(r->gen);
    dc_engine *e = r->e;
    /* kept for the next request, with buffers of a usual size, so that a request costs no
     * allocation of its own */
    if (r->ctx.cap > DC_SPARE_BUF_BYTES)
        dc_buf_free(&r->ctx);
    if (r->chunk.cap > DC_SPARE_BUF_BYTES)
        dc_buf_free(&r->chunk);
    if (e->nspare < DC_SPARE_REQUESTS) {
        r->next_spare = e->spare;
        e->spare = r;
        e->nspare++;
        return;
    }
    dc_buf_free(&r->ctx);
    dc_buf_free(&r->chunk);
    free(r);
}

void dc_request_spares_free(dc_engine *e)
{
    while (e->spare) {
        dc_request *r = e->spare;
        e->spare = r->next_spare;
        dc_buf_free(&r->ctx);
        dc_buf_free(&r->chunk);
        free(r);
    }
    e->nspare = 0;
}

uint32_t dc_request_plugin_count(const dc_request *r, dc_phase phase)
{
    return r->m && (unsigned)phase < DC_PHASE_COUNT ? r->m->count[phase] : 0;
}

static int sampled_out(dc_engine *e, const dc_plugin *p)
{
    return p->sampling < 1.0 && dc_engine_random(e) >= p->sampling;
}

/* Runs one plugin (the bundle's, or a previous version standing in: stand_in) for the domain
 * it was matched through, or takes up the one asleep in r->sleep; returns its result and
 * fills call (*asleep set: the call sleeps, its result is to come). *clock is the time the
 * previous call of the phase ended (0: none), and is set to the time this one ended: one clock
 * read per call, where the calls of a phase follow one another. */
static dc_result run_one(dc_request *r, dc_phase phase, const char *domain, const dc_runnable *run,
                         int stand_in, int resume, dc_call *call, double *clock, int *asleep)
{
    dc_engine *e = r->e;
    const dc_plugin *p = run->plugin;
    char msg[1100];

    *asleep = 0;
    if (!resume) {
        memset(call, 0, sizeof *call);
        call->host = &e->host;
        call->hreq = r->hreq;
        call->phase = phase;
        call->plugin = p->name;
        call->domain = domain;
        call->chunk = &r->chunk;
        call->eof = &r->eof;
        call->ctx = &r->ctx;
        call->exit_status = -1;
        call->bounds = &run->eff->bounds;
        call->shd = e->shdicts;
        call->shd_mask = e->shdicts ? run->eff->shdicts : 0;
    }
    uint32_t req_cap = run->eff->bounds.sleep_ms_per_request;
    call->sleep_left_ms = req_cap > r->slept_ms ? req_cap - r->slept_ms : 0;

    double t0 = *clock > 0 ? *clock : dc_now_ms();
    uint64_t made = e->states_made;
    dc_result res;
    dc_sbx *s = resume ? r->sleep.s : dc_engine_state(e, run, msg, sizeof msg);
    /* a state that left the pool while its call slept is no one else's to drop */
    int pooled = s && !(resume && dc_sbx_orphaned(s));
    if (!s) {
        res = DC_RESULT_ERROR;
    } else {
        /* the time quota counts from here: a state just made is not the plugin's time, and
         * the clock is read again only then */
        call->start_ms = e->states_made != made ? dc_now_ms() : t0;
        uint32_t quota_ms = run->eff->quota.time_ms;
        if (e->watchdog && quota_ms) {
            double budget = resume ? call->time_left_ms : quota_ms * dc_quota_time_scale();
            dc_watchdog_arm(e->watchdog, call->start_ms + budget, domain, p->name, run->qkey,
                            run->eff->quarantine.duration_s);
        }
        /* a fatal signal while this runs quarantines the plugin (crash.c) */
        dc_crash_call cc = {.store = dc_ledger_shared(&e->ledger), .domain = domain, .plugin = p->name,
                            .qkey = run->qkey, .quarantine_s = run->eff->quarantine.duration_s,
                            .phase = (int)phase, .t0_ms = t0};
        int guarded = dc_crash_arm(&cc);
        res = resume ? dc_sbx_resume(s, call, msg, sizeof msg)
                     : dc_sbx_run(s, call, msg, sizeof msg);
        if (guarded)
            dc_crash_disarm(&cc);
        if (e->watchdog)
            dc_watchdog_disarm(e->watchdog);
    }
    *clock = dc_now_ms();
    double ms = *clock - t0 + (resume ? r->sleep.ran_ms : 0);
    if (s && call->asleep) {
        /* asleep: the rest of the call, and its record, come when the host resumes it */
        r->sleep.on = 1;
        r->sleep.phase = phase;
        r->sleep.stand_in = stand_in;
        r->sleep.run = *run;
        r->sleep.s = s;
        r->sleep.ran_ms = ms;
        r->slept_ms += call->sleep_ms;
        *asleep = 1;
        return DC_RESULT_OK;
    }
    if (resume) {
        r->sleep.on = 0;
        r->sleep.s = NULL;
    }
    /* the one record of this call: metrics, the trip and what it decided, the clean mark */
    int quarantined =
        dc_ledger_record(&e->ledger, run, res, ms > 0 ? (uint64_t)(ms * 1000.0) : 0);

    switch (res) {
    case DC_RESULT_OK:
        break;
    case DC_RESULT_QUOTA_INSTRUCTIONS:
    case DC_RESULT_QUOTA_TIME:
    case DC_RESULT_QUOTA_MEMORY:
        /* A tripped state may be mid-way through anything: rebuilt on next use. */
        if (pooled)
            dc_engine_drop_state(e, run->key);
        call->exited = 0;
        dc_engine_emit(e, DC_EV_RT_PLUGINS_QUOTA, domain, p->name, (int)phase,
                       dc_result_name(res), 0);
        if (quarantined)
            dc_engine_emit(e, DC_EV_RT_PLUGINS_QUARANTINED, domain, p->name, (int)phase,
                           dc_result_name(res), 0);
        break;
    case DC_RESULT_ERROR:
    case DC_RESULT_DENIED:
        call->exited = 0;
        dc_engine_emit(e, DC_EV_RT_PLUGINS_ERROR, domain, p->name, (int)phase, msg, 0);
        break;
    }
    if (e->run_cb && (res != DC_RESULT_OK || !e->run_errors_only)) {
        char note[160];
        const char *m = res == DC_RESULT_OK ? NULL : msg;
        if (res == DC_RESULT_OK && (call->exited || stand_in || resume)) {
            int n = 0;
            if (stand_in)
                n = snprintf(note, sizeof note, "previous version (the new one is quarantined)");
            if (resume && n < (int)sizeof note)
                n += snprintf(note + n, sizeof note - (size_t)n, "%sslept", n ? "; " : "");
            if (call->exited && n < (int)sizeof note)
                snprintf(note + n, sizeof note - (size_t)n, "%sngx.exit(%d)", n ? "; " : "",
                         call->exit_status);
            m = note;
        }
        dc_run_info info = {p->name, domain, phase, res, ms, m,
                            call->exited ? call->exit_status : -1, r->hreq};
        e->run_cb(e->run_ud, &info);
    }
    return res;
}

/* The call asleep is given up (its request ends, or its host went on without resuming it):
 * nothing of it is recorded, as of a request cut short. */
static void abandon_sleeper(dc_request *r)
{
    if (!r->sleep.on)
        return;
    r->sleep.on = 0;
    dc_sbx_abandon(r->sleep.s, &r->sleep.call);
    r->sleep.s = NULL;
}

/* The walk shared by dc_request_run and dc_request_body_filter. */
static dc_action run_phase(dc_request *r, dc_phase phase, int *status)
{
    dc_engine *e = r->e;
    *status = 0;
    /* the filters may run while a content call sleeps (its output so far went out); any
     * other phase means the host went on without taking the sleeper up */
    if (r->sleep.on && r->sleep.phase != phase && phase != DC_PHASE_HEADER_FILTER &&
        phase != DC_PHASE_BODY_FILTER)
        abandon_sleeper(r);
    if (!r->gen) {
        dc_engine_emit(e, DC_EV_RT_PLUGINS_NOT_LOADED, NULL, NULL, (int)phase, NULL, 0);
        /* No bundle was ever loaded and the policy says "until_loaded": "refuse": refuse it.
         * (A bundle unloaded later lets requests pass: something was in force once.) */
        if (e->next_gen == 0 && phase <= DC_PHASE_CONTENT &&
            dc_policy_refuse_until_loaded(e->policy)) {
            *status = 503;
            return DC_ACTION_EXIT;
        }
        return DC_ACTION_CONTINUE;
    }
    if (!r->gen->bundle->enabled) {
        dc_engine_emit(e, DC_EV_RT_PLUGINS_DISABLED, NULL, NULL, (int)phase, NULL, 0);
        return DC_ACTION_CONTINUE;
    }
    uint32_t n = r->m ? r->m->count[phase] : 0;
    if (n == 0)
        return DC_ACTION_CONTINUE;

    uint32_t first = 0;
    int resume = r->sleep.on && r->sleep.phase == phase;
    if (resume)
        first = r->sleep.i; /* taken up where it stopped: the phase has started already */
    else
        dc_events_note(e->events, DC_EV_RT_PLUGINS_STARTING, (int)phase);
    dc_action act = DC_ACTION_CONTINUE;
    const dc_bundle *b = r->gen->bundle;
    double clock = 0;
    for (uint32_t i = first; i < n; i++) {
        const dc_item *it = &r->m->items[phase][i];
        dc_runnable run;
        int stand_in;
        if (resume) {
            run = r->sleep.run;
            stand_in = r->sleep.stand_in;
        } else {
            if (sampled_out(e, &b->plugins[it->plugin]))
                continue;
            if (!dc_item_runnable(e, r->gen, it, &run, &stand_in))
                continue;
        }
        /* this host's settings for this plugin (not the stand-in's: the request's rule) */
        const dc_policy_eff *pol = it->v ? &it->v->eff : &r->gen->eff[it->plugin];
        /* a call taken up runs on in its record; a new one gets its own, kept only if it
         * falls asleep (the filters may run while it sleeps, with calls of their own) */
        dc_call fresh, *call = resume ? &r->sleep.call : &fresh;
        int asleep;
        dc_result res = run_one(r, phase, b->domains[it->domain].name, &run, stand_in, resume,
                                call, &clock, &asleep);
        resume = 0;
        if (asleep) {
            if (call != &r->sleep.call)
                r->sleep.call = *call;
            r->sleep.i = i;
            return DC_ACTION_SLEEP;
        }
        if (res != DC_RESULT_OK && pol->on_error_fail) {
            dc_engine_emit(e, DC_EV_ON_ERROR, b->domains[it->domain].name,
                           b->plugins[it->plugin].name, (int)phase, dc_result_name(res), 500);
            *status = 500;
            act = DC_ACTION_FAIL;
            break;
        }
        if (call->exited) {
            /* As in OpenResty: ngx.exit ends the phase handler; a status >= 200 (or
             * ngx.ERROR) ends the request where the phase can still answer. */
            int st = call->exit_status;
            if (phase <= DC_PHASE_CONTENT && (st >= 200 || st < 0)) {
                *status = st < 0 ? 500 : st;
                act = DC_ACTION_EXIT;
            }
            break;
        }
    }
    dc_events_note(e->events, DC_EV_RT_PLUGINS_DONE, (int)phase);
    return act;
}

uint32_t dc_request_sleep_ms(const dc_request *r)
{
    return r && r->sleep.on ? r->sleep.call.sleep_ms : 0;
}

dc_action dc_request_run(dc_request *r, dc_phase phase, int *status)
{
    int st;
    if (!status)
        status = &st;
    if ((unsigned)phase >= DC_PHASE_COUNT || phase == DC_PHASE_BODY_FILTER) {
        *status = 0;
        return DC_ACTION_CONTINUE;
    }
    return run_phase(r, phase, status);
}

dc_action dc_request_body_filter(dc_request *r, const char *in, size_t len, int eof,
                                 dc_str *out, int *out_eof)
{
    int st;
    r->chunk.len = 0;
    r->eof = eof;
    dc_action act = DC_ACTION_CONTINUE;
    if (dc_buf_append(&r->chunk, in, len) != 0) {
        /* No memory for our copy: the chunk passes unchanged rather than being lost. */
        out->data = in;
        out->len = len;
        *out_eof = eof;
        return act;
    }
    act = run_phase(r, DC_PHASE_BODY_FILTER, &st);
    out->data = r->chunk.data ? r->chunk.data : "";
    out->len = r->chunk.len;
    *out_eof = r->eof;
    return act;
}
