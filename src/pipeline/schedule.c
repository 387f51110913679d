/* schedule.c - when a poller polls: a phase chosen once at random within the jitter, then every
 * interval exactly from it. The cadence does not drift by the time a poll takes, so a change
 * reaches every server within one interval plus one fetch, while the phases keep a fleet from
 * polling in step.
 */
#include <math.h>

#include "base.h"

double dc_poll_phase(double jitter_s, double u)
{
    if (!(jitter_s > 0) || !(u > 0))
        return 0;
    return jitter_s * (u < 1 ? u : 0);
}

double dc_poll_next(double interval_s, double phase_s, double now_s)
{
    if (!(interval_s > 0))
        return now_s;
    /* the first slot phase + k * interval (k >= 1) strictly after now: slots missed while a
     * poll ran long are skipped, never run back to back */
    double k = floor((now_s - phase_s) / interval_s) + 1;
    if (k < 1)
        k = 1;
    return phase_s + k * interval_s;
}
