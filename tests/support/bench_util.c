/*
 * bench_util.c - /proc readers and quantiles for benchmarks (bench_util.h).
 */
#include "bench_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime + stime (fields 14 and 15 of a stat line) in microseconds. The
 * command name (field 2) may hold spaces and ')', so parsing starts after
 * the last ')'. -1 when the file cannot be read or parsed. */
static int bench_stat_cpu(const char *path, uint64_t *cpu_us)
{
	char buf[1024];
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen(path, "r");
	size_t n;
	char *p;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')))
		return -1;
	/* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	if (hz <= 0)
		hz = 100;
	*cpu_us = (uint64_t)(ut + st) * 1000000u / (uint64_t)hz;
	return 0;
}

int bench_proc_read(pid_t pid, struct bench_proc *out)
{
	char path[64], line[256];
	FILE *f;
	int found = 0;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (bench_stat_cpu(path, &out->cpu_us) != 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		goto fail;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "VmHWM: %llu", &v) == 1) {
			out->hwm_kb = v;
			found++;
		} else if (sscanf(line, "VmRSS: %llu", &v) == 1) {
			out->rss_kb = v;
		} else if (sscanf(line, "Threads: %llu", &v) == 1) {
			out->threads = (uint32_t)v;
		}
	}
	fclose(f);
	if (found)
		return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

static int bench_thread_cmp(const void *a, const void *b)
{
	const struct bench_thread *x = a, *y = b;

	return x->cpu_us < y->cpu_us ? 1 : x->cpu_us > y->cpu_us ? -1 : (x->tid > y->tid) - (x->tid < y->tid);
}

size_t bench_threads_read(pid_t pid, struct bench_thread **out)
{
	char path[96];
	struct bench_thread *t = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		struct bench_thread *th;
		FILE *f;
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		if (n == cap) {
			struct bench_thread *nt = realloc(t, (cap ? cap * 2 : 16) * sizeof(*t));

			if (!nt) {
				free(t);
				closedir(d);
				return 0;
			}
			t = nt;
			cap = cap ? cap * 2 : 16;
		}
		th = &t[n];
		memset(th, 0, sizeof(*th));
		th->tid = tid;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, tid);
		if (bench_stat_cpu(path, &th->cpu_us) != 0)
			continue; /* the thread ended meanwhile */
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, tid);
		if ((f = fopen(path, "r"))) {
			char line[256];
			unsigned long long v;

			while (fgets(line, sizeof(line), f)) {
				if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
					th->vcsw = v;
				else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
					th->ivcsw = v;
			}
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, tid);
		if ((f = fopen(path, "r"))) {
			if (fgets(th->comm, sizeof(th->comm), f))
				th->comm[strcspn(th->comm, "\n")] = '\0';
			fclose(f);
		}
		n++;
	}
	closedir(d);
	if (n == 0) {
		free(t);
		return 0;
	}
	qsort(t, n, sizeof(*t), bench_thread_cmp);
	*out = t;
	return n;
}

static int bench_i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int64_t bench_quantile(int64_t *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_i64_cmp);
	if (q <= 0)
		return v[0];
	if (q >= 1)
		return v[n - 1];
	rank = (size_t)(q * (double)n + 0.999999999); /* ceil(q n), nearest rank */
	return v[rank ? rank - 1 : 0];
}

int bench_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}
