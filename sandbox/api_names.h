/* api_names.h - superseded by api_table.h (the one table of the plugin API: names, areas,
 * phases, default allow entries and the ngx constants); nothing includes it any more.
 */
#ifndef DC_API_NAMES_H
#define DC_API_NAMES_H

#include "api_table.h"

#endif /* DC_API_NAMES_H */
