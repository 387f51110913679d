/* bundle_load.h - the loader shared by bundle.c (structure, domains, shared plugins, previous
 * versions) and bundle_plugin.c (one plugin's fields and compilation). Private to those two.
 */
#ifndef DC_BUNDLE_LOAD_H
#define DC_BUNDLE_LOAD_H

#include <cJSON.h>

#include "bundle.h"
#include "compiler.h"

/* A previous plugin already copied into the new bundle: a second refusal reuses the copy. */
typedef struct dc_kept {
    const dc_plugin *prev;
    uint32_t index;
} dc_kept;

/* State of one dc_bundle_load call. Out of memory is sticky: helpers set oom and carry on,
 * and the loader gives up with DC_ENOMEM at the end. */
typedef struct dc_loader {
    const dc_limits *lim;
    const dc_bundle *prev;
    dc_bundle *b;
    uint32_t plugins_cap;
    uint32_t problems_cap;
    dc_kept *kept;
    uint32_t nkept, kept_cap;
    int oom;
    size_t pattern_bytes; /* every regex compiled so far, JIT code included */
    /* The previous bundle's plugins sorted by code hash, built at the first compile: a plugin
     * whose name and code did not change takes its bytecode instead of being compiled. */
    const dc_plugin **reuse;
    uint32_t nreuse;
    int reuse_built;
    /* The confined compiler (sandbox/compiler.h), opened at the first plugin to compile. */
    dc_compiler *cc;
    dc_rc cc_rc;          /* DC_OK, or why no helper could be had */
    char cc_err[256];
} dc_loader;

/* Why a plugin is left out: the JSON path of the faulty field and the reason (both malloc'd). */
typedef struct dc_refusal {
    char *path;
    char *msg;
} dc_refusal;

/* malloc'd printf; NULL (and ld->oom) when memory runs out. */
DC_HIDDEN char *dc_ld_strf(dc_loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s as a double-quoted, escaped string, cut after 80 bytes: safe in a one-line message. */
DC_HIDDEN char *dc_ld_quote(dc_loader *ld, const char *s);
/* Records a problem. Takes ownership of path (may be NULL after OOM); msg is copied. */
DC_HIDDEN void dc_ld_problem(dc_loader *ld, dc_problem_kind kind, char *path, const char *domain,
                             const char *plugin, const char *msg);
/* Records a DC_PROBLEM_UNKNOWN_FIELD for every key of obj not in known (NULL-terminated). */
DC_HIDDEN void dc_ld_unknown_fields(dc_loader *ld, const cJSON *obj, const char *path,
                                    const char *const *known, const char *domain,
                                    const char *plugin);
/* The first control byte (below 0x20, or 0x7f) of s, or -1 when it has none. */
DC_HIDDEN int dc_ld_control_byte(const char *s);
/* 0 and *out when v is a JSON number holding an exact integer, -1 otherwise. */
DC_HIDDEN int dc_ld_json_int(const cJSON *v, int64_t *out);

/* Validates and compiles the plugin object obj found at path. Returns 0 with *out filled, or -1
 * with *why filled (or ld->oom). Either way out->name is set when the name itself was usable:
 * the caller frees *out with dc_plugin_clear and why with dc_refusal_clear. */
DC_HIDDEN int dc_ld_plugin(dc_loader *ld, const cJSON *obj, const char *path, const char *domain,
                           dc_plugin *out, dc_refusal *why);
DC_HIDDEN void dc_plugin_clear(dc_plugin *p);
DC_HIDDEN void dc_refusal_clear(dc_refusal *r);

#endif /* DC_BUNDLE_LOAD_H */
