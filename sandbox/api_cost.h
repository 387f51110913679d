/* api_cost.h - how the API areas that own codecs, digests, regexes and JSON charge the quota
 * for work that grows with their input: about one unit per byte or step, charged in pieces
 * of a few KiB so that a long input meets the instruction quota and the clock as it goes.
 */
#ifndef DC_API_COST_H
#define DC_API_COST_H

#include <stdint.h>

#include "call.h"

/* Bytes or steps between two charges. */
#define DC_COST_PIECE 4096

/* The next piece of a byte loop with `left` bytes to go: charged now, before the work, so a
 * loop over a long input trips as soon as the quota is spent. */
static inline size_t dc_cost_piece(lua_State *L, size_t left)
{
    size_t n = left < DC_COST_PIECE ? left : DC_COST_PIECE;
    dc_sbx_charge(L, n);
    return n;
}

/* Work counted in small amounts (nodes, matches, pairs), charged once it adds up. */
typedef struct dc_meter {
    uint64_t pending;
} dc_meter;

static inline void dc_meter_flush(lua_State *L, dc_meter *m)
{
    uint64_t u = m->pending;
    m->pending = 0;
    if (u)
        dc_sbx_charge(L, u);
}

static inline void dc_meter_add(lua_State *L, dc_meter *m, uint64_t units)
{
    m->pending += units;
    if (m->pending >= DC_COST_PIECE)
        dc_meter_flush(L, m);
}

#endif /* DC_API_COST_H */
