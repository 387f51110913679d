/* offline.h - the offline file: the last good bundle's JSON text on disk (offline.c). */
#ifndef DC_OFFLINE_H
#define DC_OFFLINE_H

#include "base.h"

/* Writes json to path atomically (temporary file, fsync, rename, folder fsync). */
DC_HIDDEN dc_rc dc_offline_write(const char *path, const char *json, size_t len, char *err,
                                 size_t errlen);
/* Reads the whole file (at most max bytes) into a malloc'd, NUL-terminated buffer. */
DC_HIDDEN dc_rc dc_offline_read(const char *path, size_t max, char **json, size_t *len,
                                char *err, size_t errlen);

#endif
