/*
 * bench_util.h - figures about another process and about samples, for
 * benchmark programs: CPU time and peak RSS of a process (and CPU time per
 * thread) read from /proc, and percentiles of a latency sample.
 *
 * Pure readers: nothing here signals, waits for or changes a process.
 * Owns nothing between calls (bench_threads_read returns an array the caller
 * frees). Thread-safe (no shared state). Linux only (/proc).
 */
#ifndef WB_BENCH_UTIL_H
#define WB_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What /proc says about one process at one moment. */
struct bench_proc {
	uint64_t cpu_us;   /* utime + stime of all its threads, microseconds (clock-tick resolution) */
	uint64_t hwm_kb;   /* VmHWM: peak resident set size, KiB */
	uint64_t rss_kb;   /* VmRSS now, KiB */
	uint32_t threads;  /* Threads: */
};

/* One thread of a process. */
struct bench_thread {
	pid_t tid;
	char comm[20];     /* its name (/proc/.../comm: 15 characters at most) */
	uint64_t cpu_us;   /* utime + stime, microseconds */
	uint64_t vcsw;     /* voluntary context switches (it waited) */
	uint64_t ivcsw;    /* involuntary ones (it was preempted) */
};

/*
 * Reads /proc/<pid>/stat and /proc/<pid>/status into *out. Returns 0, or -1
 * when the process is gone or the files cannot be parsed (*out is then
 * zeroed). Read it before the process is reaped: a zombie's status has no
 * VmHWM.
 */
int bench_proc_read(pid_t pid, struct bench_proc *out);

/*
 * Every thread of pid with its CPU time, sorted by CPU time, largest first.
 * Returns the count and sets *out (caller frees with free()); 0 and *out =
 * NULL when the process is gone or memory runs out.
 */
size_t bench_threads_read(pid_t pid, struct bench_thread **out);

/*
 * The q-th quantile (0 <= q <= 1) of v[0..n), nearest rank; sorts v in place.
 * 0 when n is 0.
 */
int64_t bench_quantile(int64_t *v, size_t n, double q);

/* Online CPUs (sysconf), at least 1. */
int bench_ncpu(void);

#endif /* WB_BENCH_UTIL_H */
