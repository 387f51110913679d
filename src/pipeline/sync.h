/* sync.h - the worker side of the pipeline: reading the snapshot in force out of the shared
 * store, for the engine of each worker and for the poller's own check.
 */
#ifndef DC_SYNC_H
#define DC_SYNC_H

#include "bundle.h"
#include "store.h"

/* sync.c: reads, verifies and decodes the snapshot in force (*gen: its generation). */
DC_HIDDEN dc_rc dc_store_read_bundle(dc_store *s, uint64_t *gen, dc_bundle **out, char *err,
                                     size_t errlen);

/* sync.c: reads the snapshot in force and prepares its generation for e, on any thread; gen
 * is the store generation seen before reading. shared (may be NULL; its reference is taken)
 * is that generation's bundle as a poller of the same process holds it: used instead of a
 * decoded copy, so that a process holds one copy of a bundle, not two. NULL only when out of memory; otherwise either
 * a generation or the reason it was refused. */
struct dc_engine;
DC_HIDDEN struct dc_prepared *dc_prepare_from_store(const struct dc_engine *e, dc_store *s,
                                                    uint64_t gen, dc_bundle *shared);

/* poller.c: a new reference on the poller's bundle when it is store generation gen (the
 * poller published it or read it), else NULL; safe while the poller's thread runs. */
DC_HIDDEN dc_bundle *dc_poller_bundle_of(dc_poller *p, uint64_t gen);

#endif /* DC_SYNC_H */
