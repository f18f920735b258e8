/*
 * metrics.h - Prometheus text exposition (format 0.0.4) and a lock-free
 * latency histogram.
 *
 * The worker keeps its figures where they change (per-thread counters,
 * ctx_store_stats, librdkafka statistics, metrics_hist); at scrape time the
 * /metrics handler reads snapshots of them and renders them with a
 * metrics_writer. Nothing on the hot path touches a shared registry.
 * The writer refuses what Prometheus would refuse (bad metric or label
 * names, a family declared twice, a sample outside its family, a histogram
 * whose bounds do not increase) and escapes what needs escaping, so its
 * output always parses; a refused call writes nothing.
 * Owns: a writer owns the list of families written since metrics_begin();
 * the text goes into the caller's jbuf. A metrics_hist is caller-allocated.
 * Does not: keep values between scrapes, compute rates or quantiles, write
 * timestamps, detect two samples with the same labels, serve HTTP
 * (worker/http.c does).
 */
#ifndef WB_METRICS_H
#define WB_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "jbuf.h"

/* The Content-Type of the text format this module writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Most label pairs one sample may carry (a histogram adds "le" to these). */
#define METRICS_MAX_LABELS 16

/* Most buckets metrics_histogram_pow2_us() converts (2^63 us is beyond any
 * latency anyway). */
#define METRICS_MAX_POW2_BUCKETS 64

enum metrics_type {
	METRICS_COUNTER = 0,   /* "counter": name it with _total */
	METRICS_GAUGE = 1,     /* "gauge" */
	METRICS_HISTOGRAM = 2, /* "histogram": written by metrics_histogram*() */
	METRICS_UNTYPED = 3,   /* "untyped" */
};

/* ---- names ----------------------------------------------------------- */

/* true when name matches Prometheus' metric name grammar
 * [a-zA-Z_:][a-zA-Z0-9_:]*. NULL is not valid. Pure; any thread. */
bool metrics_name_is_valid(const char *name);

/* true when name matches the label name grammar [a-zA-Z_][a-zA-Z0-9_]* and
 * does not start with "__" (reserved for Prometheus itself). Pure. */
bool metrics_label_name_is_valid(const char *name);

/* ---- the exposition writer -------------------------------------------- */

typedef struct metrics_writer metrics_writer_t;

/* A writer, reusable for any number of expositions. NULL when out of
 * memory. Free with metrics_writer_destroy(). */
metrics_writer_t *metrics_writer_new(void);

/* Frees w (not the jbuf given to metrics_begin). NULL ok. */
void metrics_writer_destroy(metrics_writer_t *w);

/*
 * Starts an exposition appended to out (borrowed until the next
 * metrics_begin() or metrics_writer_destroy(); not reset, so the caller can
 * put its own text first). Forgets the families and the error of the
 * previous exposition, keeping memory. Cannot fail.
 * Threads: a writer and its jbuf belong to one thread at a time (the HTTP
 * server's); every function below has the same rule.
 */
void metrics_begin(metrics_writer_t *w, struct jbuf *out);

/*
 * Starts the family name: writes "# HELP name help" and "# TYPE name type".
 * The samples written next belong to it, until the next metrics_family().
 * help is UTF-8; a backslash is written as \\ and a newline as \n.
 * Errors (nothing written, and no family is current afterwards, so that
 * stray samples are refused too): WB_ERR_INVALID when there is no
 * metrics_begin(), name is not valid, help is NULL or not UTF-8, type is out
 * of range, or the family (or, for histograms, one of its _bucket, _sum and
 * _count series) collides with one already written in this exposition;
 * WB_ERR_NOMEM.
 */
wb_err_t metrics_family(metrics_writer_t *w, const char *name, enum metrics_type type, const char *help);

/*
 * Writes one sample of the current counter, gauge or untyped family:
 * "name{l1="v1",l2="v2"} value". labels: NULL for none, or name/value pairs
 * ending with a NULL name, e.g. (const char *[]){"provider", "acs", NULL};
 * values are UTF-8 and written with \\, \" and \n escaped.
 * Values: u64 and i64 exactly in decimal; doubles in the shortest form that
 * reads back as the same double (at most 17 significant digits), and +Inf,
 * -Inf, NaN as Prometheus spells them. Numbers assume the "C" LC_NUMERIC
 * locale (the worker never calls setlocale).
 * Errors (nothing written): WB_ERR_INVALID when no family is current, the
 * family is a histogram, a label name is not valid or repeated, a value is
 * NULL or not UTF-8, or there are more than METRICS_MAX_LABELS pairs;
 * WB_ERR_NOMEM.
 */
wb_err_t metrics_sample(metrics_writer_t *w, const char *const *labels, double value);
wb_err_t metrics_sample_u64(metrics_writer_t *w, const char *const *labels, uint64_t value);
wb_err_t metrics_sample_i64(metrics_writer_t *w, const char *const *labels, int64_t value);

/*
 * Writes one histogram of the current histogram family, with labels as for
 * metrics_sample (which must not include "le"):
 *   name_bucket{...,le="bounds[i]"} counts[0] + ... + counts[i]   (i < n)
 *   name_bucket{...,le="+Inf"}      counts[0] + ... + counts[n]
 *   name_sum{...}                   sum
 *   name_count{...}                 the same total as +Inf
 * counts are per bucket, NOT cumulative (the writer adds them up): counts[i]
 * observations fell in (bounds[i-1], bounds[i]], and counts[n] above
 * bounds[n-1]; so counts has n + 1 entries. bounds are finite and strictly
 * increasing; n may be 0 (only the +Inf bucket). _count is derived from the
 * buckets, so it always equals the +Inf bucket even when the caller's
 * snapshot was taken field by field.
 * Errors (nothing written): WB_ERR_INVALID (no histogram family current, bad
 * labels, bounds not finite or not increasing, counts NULL, bounds NULL with
 * n > 0, the counts' sum overflowing 64 bits); WB_ERR_NOMEM.
 */
wb_err_t metrics_histogram(metrics_writer_t *w, const char *const *labels, const double *bounds,
			   const uint64_t *counts, size_t n, double sum);

/*
 * metrics_histogram() for the power-of-two microsecond layout of
 * CTX_STORE_LAT_BUCKETS and struct metrics_hist: buckets[i] counts
 * observations < 2^i us (bucket 0: < 1 us) and buckets[n - 1] also takes
 * everything slower. Written in seconds, as a "_seconds" family wants:
 * le="1e-06", "2e-06", "4e-06", ... 2^(n-2) us, then "+Inf"; _sum is
 * sum_us / 1e6. (A source bucket is "< 2^i us" and Prometheus' le is
 * "<= bound": an observation of exactly 2^i us lands one bucket later than
 * Prometheus would put it, an error within the 1 us resolution.)
 * n is 1..METRICS_MAX_POW2_BUCKETS. Errors as metrics_histogram().
 */
wb_err_t metrics_histogram_pow2_us(metrics_writer_t *w, const char *const *labels, const uint64_t *buckets,
				   size_t n, uint64_t sum_us);

/*
 * Ends the exposition. Returns the first error of any call since
 * metrics_begin() (WB_OK when there was none), and WB_ERR_NOMEM when the
 * jbuf ran out of memory (its text is then incomplete). A refused call wrote
 * nothing, so after WB_ERR_INVALID the text is still a valid exposition,
 * just without what was refused; the caller decides whether to serve it.
 */
wb_err_t metrics_end(metrics_writer_t *w);

/* ---- lock-free latency histogram --------------------------------------- */

/* Buckets of a metrics_hist: the layout of CTX_STORE_LAT_BUCKETS (bucket i
 * counts observations < 2^i us; the last also takes everything slower, so
 * the last bound is 2^22 us = 4.19 s). */
#define METRICS_HIST_BUCKETS 24

/*
 * A latency histogram that any number of threads observe into at once
 * without a lock (relaxed atomic adds; no fences on the hot path). Caller-
 * allocated, e.g. inside the struct of the module that observes; no fini.
 * Read it with metrics_hist_snapshot() and write the snapshot with
 * metrics_histogram_pow2_us(). Each field is atomic on its own; a snapshot
 * taken while others observe may see a sum that is a few observations ahead
 * of or behind the buckets, never torn values.
 */
struct metrics_hist {
	atomic_uint_fast64_t buckets[METRICS_HIST_BUCKETS]; /* observations per bucket */
	atomic_uint_fast64_t sum_us;                        /* sum of observations, us */
};

/* A plain copy of a metrics_hist. */
struct metrics_hist_snapshot {
	uint64_t buckets[METRICS_HIST_BUCKETS]; /* per bucket, not cumulative */
	uint64_t count;                         /* sum of buckets */
	uint64_t sum_us;                        /* sum of observations, us */
};

/* Zeroes h. Call before any thread observes into it; not thread-safe. */
void metrics_hist_init(struct metrics_hist *h);

/* Records one observation of us microseconds. Any thread; lock-free. */
void metrics_hist_observe_us(struct metrics_hist *h, uint64_t us);

/* Copies h into *out (count computed from the buckets). Any thread. */
void metrics_hist_snapshot(const struct metrics_hist *h, struct metrics_hist_snapshot *out);

#endif /* WB_METRICS_H */
