/* store_clock.c - the wall clock every process agrees on (CLOCK_REALTIME in ms), precise and
 * coarse: quarantine ends and metrics ages are stamped with it.
 */
#include <time.h>

#include "store.h"

static double unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double dc_unix_ms(void)
{
    return unix_ms();
}

double dc_unix_ms_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
