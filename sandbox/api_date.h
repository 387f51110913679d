/* api_date.h - HTTP dates as nginx reads them, for ngx.parse_http_time (api_date.c). Pure C,
 * no Lua: the caller charges the quota for the bytes it hands over.
 */
#ifndef DC_API_DATE_H
#define DC_API_DATE_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* Reads s (len bytes, not NUL-terminated) as an HTTP date in one of the three forms nginx
 * accepts (RFC 1123 "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37
 * GMT", asctime "Sun Nov  6 08:49:37 1994") with nginx's leniency; *t is the seconds since the
 * epoch (negative before 1970). Returns 0, or -1 when s is not such a date. Never reads past
 * s + len. */
DC_HIDDEN int dc_http_date_parse(const char *s, size_t len, int64_t *t);

#endif /* DC_API_DATE_H */
