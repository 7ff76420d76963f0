/* clock.h - the two clocks mqseal reads: monotonic (timers, lifetimes) and wall (announcements). */
#ifndef PX_CLOCK_H
#define PX_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ms(void); /* CLOCK_MONOTONIC, milliseconds */
uint64_t clock_wall_ms(void); /* CLOCK_REALTIME, milliseconds since the Unix epoch */

#endif
