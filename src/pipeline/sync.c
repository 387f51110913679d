/* sync.c - the worker side of the shared store: an engine whose store has a new generation
 * reads and verifies the snapshot, prepares its generation and swaps it in, keeping the states
 * of plugins whose code did not change. A refused snapshot is not retried. The reading and
 * preparing run either here, between requests, or on a syncer thread (syncer.c), which leaves
 * the request thread only the swap.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "sync.h"

dc_rc dc_store_read_bundle(dc_store *s, uint64_t *gen, dc_bundle **out, char *err,
                           size_t errlen)
{
    unsigned char *snap = NULL;
    size_t len = 0;
    dc_rc rc = dc_store_read(s, gen, &snap, &len, err, errlen);
    if (rc == DC_OK && !snap) {
        dc_set_err(err, errlen, "nothing published");
        rc = DC_EBUNDLE;
    }
    if (rc == DC_OK)
        rc = dc_snapshot_decode(snap, len, out, err, errlen);
    free(snap);
    return rc;
}

dc_prepared *dc_prepare_from_store(const dc_engine *e, dc_store *s, uint64_t gen,
                                   dc_bundle *shared)
{
    dc_prepared *p = calloc(1, sizeof *p);
    if (!p) {
        dc_bundle_unref(shared);
        return NULL;
    }
    uint64_t got = gen;
    dc_bundle *b = shared;
    p->rc = b ? DC_OK : dc_store_read_bundle(s, &got, &b, p->err, sizeof p->err);
    if (p->rc == DC_OK) {
        p->rc = dc_gen_prepare(e, b, &p->gen);
        if (p->rc != DC_OK)
            snprintf(p->err, sizeof p->err, "out of memory preparing it");
        dc_bundle_unref(b); /* the generation holds its own reference */
    }
    /* a refused generation is not read again, the next one will be */
    p->store_gen = p->rc == DC_OK ? got : gen;
    return p;
}

int dc_engine_sync(dc_engine *e, dc_store *s)
{
    dc_prepared *p;
    if (atomic_load_explicit(&e->prepared_off_thread, memory_order_relaxed)) {
        if (!(p = dc_engine_take(e)))
            return 0;
    } else {
        uint64_t gen = dc_store_generation(s);
        if (gen == 0 || gen == e->synced)
            return 0;
        if (!(p = dc_prepare_from_store(e, s, gen, NULL))) {
            dc_errbuf_note(&e->first_error, DC_ENOMEM, "shared snapshot %llu: out of memory",
                           (unsigned long long)gen);
            return -1;
        }
    }
    e->synced = p->store_gen;
    if (p->gen) {
        dc_engine_install(e, p->gen);
        p->gen = NULL;
        dc_prepared_free(p);
        return 1;
    }
    /* A refused snapshot is ignored and the worker keeps its plugins. */
    char msg[600];
    snprintf(msg, sizeof msg, "shared snapshot %llu refused: %s",
             (unsigned long long)p->store_gen, p->err);
    dc_engine_emit(e, DC_EV_ON_ERROR, NULL, NULL, -1, msg, 0);
    dc_errbuf_note(&e->first_error, p->rc, "%s", msg);
    dc_prepared_free(p);
    return -1;
}
