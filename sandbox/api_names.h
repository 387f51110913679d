/* api_names.h - kept so that existing includes still resolve: the plugin API is one table,
 * policy/api_table.h (names, areas, phases, default allow entries and the ngx constants).
 */
#ifndef DC_API_NAMES_H
#define DC_API_NAMES_H

#include "api_table.h"

#endif /* DC_API_NAMES_H */
