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

/* *ts = the monotonic clock now + ms: a deadline for pthread_cond_timedwait
 * on a condition variable set to CLOCK_MONOTONIC (pthread_condattr_setclock). */
struct timespec;
void clock_mono_deadline(struct timespec *ts, long ms);

/* Sleeps ms milliseconds (0 or less: returns at once). */
void clock_sleep_ms(long ms);

#endif /* WB_CLOCK_H */
