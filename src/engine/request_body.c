/* request_body.c - whether the plugins a request would run in a phase reach for the request
 * body, so that a host reads the body before that phase only when they do (reading it makes
 * nginx wait for the whole of it, which a request without such plugins never should).
 */
#include <string.h>

#include "engine.h"

/* The names whose use needs the body read before the plugin runs. A plugin's bytecode holds
 * the names it indexes as plain string constants: one that names none of them cannot call
 * them except by building the name at run time (then read_body says the body cannot be read
 * here). */
static const char *const body_names[] = {"read_body", "get_body_data", "get_post_args"};

static int mentions(const unsigned char *bc, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (!bc || len < n)
        return 0;
    for (const unsigned char *p = bc, *end = bc + len - n + 1; p < end; p++) {
        p = memchr(p, (unsigned char)name[0], (size_t)(end - p));
        if (!p)
            return 0;
        if (memcmp(p, name, n) == 0)
            return 1;
    }
    return 0;
}

int dc_request_wants_body(const dc_request *r, dc_phase phase)
{
    if (!r || !r->gen || !r->m || (unsigned)phase >= DC_PHASE_COUNT || !r->gen->bundle->enabled)
        return 0;
    const dc_bundle *b = r->gen->bundle;
    for (uint32_t i = 0; i < r->m->count[phase]; i++) {
        const dc_plugin *p = &b->plugins[r->m->items[phase][i].plugin];
        for (size_t k = 0; k < sizeof body_names / sizeof body_names[0]; k++)
            if (mentions(p->bc, p->bclen, body_names[k]))
                return 1;
    }
    return 0;
}
