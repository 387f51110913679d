/* sync.c - the worker side of the shared store: before a request, an engine whose
 * store has a new generation reads and verifies the snapshot and swaps the bundle in, keeping
 * the states of plugins whose code did not change. A refused snapshot is not retried.
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

int dc_engine_sync(dc_engine *e, dc_store *s)
{
    uint64_t gen = dc_store_generation(s);
    if (gen == 0 || gen == e->synced)
        return 0;
    uint64_t got = 0;
    char err[512] = "";
    dc_bundle *b = NULL;
    dc_rc rc = dc_store_read_bundle(s, &got, &b, err, sizeof err);
    if (rc != DC_OK) {
        /* A corrupted snapshot is ignored and the worker keeps its plugins; this
         * generation is not read again, the next one will be. */
        e->synced = gen;
        char msg[600];
        snprintf(msg, sizeof msg, "shared snapshot %llu refused: %s", (unsigned long long)gen,
                 err);
        dc_engine_emit(e, DC_EV_ON_ERROR, NULL, NULL, -1, msg, 0);
        dc_errbuf_note(&e->first_error, rc, "%s", msg);
        return -1;
    }
    dc_engine_set_bundle(e, b);
    dc_bundle_unref(b);
    e->synced = got;
    return 1;
}
