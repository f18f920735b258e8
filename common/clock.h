/*
 * clock.h - the monotonic clock and short sleeps, for deadlines, backoff and
 * durations (the worker's threads, the demo, run statistics). Owns nothing;
 * any thread.
 */
#ifndef WB_CLOCK_H
#define WB_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds / microseconds / seconds (arbitrary origin). */
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
double clock_mono_s(void);

/* Sleeps ms milliseconds (0 or less: returns at once). */
void clock_sleep_ms(long ms);

#endif /* WB_CLOCK_H */
