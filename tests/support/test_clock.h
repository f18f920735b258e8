/*
 * test_clock.h - time for tests: the monotonic clock in milliseconds and a
 * sleep that finishes its time even when a signal interrupts it.
 * Owns nothing; thread-safe.
 */
#ifndef WB_TEST_CLOCK_H
#define WB_TEST_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t test_now_ms(void);

/* Seconds on clock (CLOCK_MONOTONIC for wall time, CLOCK_THREAD_CPUTIME_ID
 * or CLOCK_PROCESS_CPUTIME_ID for CPU time), as a double: for benchmarks. */
double test_clock_s(clockid_t clock);

/* Sleeps ms milliseconds (restarting after EINTR). */
void test_sleep_ms(long ms);

#endif /* WB_TEST_CLOCK_H */
