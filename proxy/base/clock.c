/* clock.c - monotonic and wall-clock milliseconds. */
#include "clock.h"

#include <time.h>

static uint64_t clock_read_ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_mono_ms(void)
{
	return clock_read_ms(CLOCK_MONOTONIC);
}

uint64_t clock_wall_ms(void)
{
	return clock_read_ms(CLOCK_REALTIME);
}
