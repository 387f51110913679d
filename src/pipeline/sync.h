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

#endif /* DC_SYNC_H */
