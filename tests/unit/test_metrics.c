/*
 * test_metrics.c - the Prometheus writer and metrics_hist against
 * metrics.h: the exact text of counters, gauges and histograms, number
 * formatting, escaping, refused names and misuse (nothing written), the
 * power-of-two microsecond layout of ctx_store converted to seconds, and
 * promtool (Debian's prometheus package) accepting a realistic exposition
 * and rejecting a broken one. Each test frees what it creates.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "run_binary.h"

/* A writer with its output, begun. */
struct fixture {
	metrics_writer_t *w;
	struct jbuf out;
};

static void fx_init(struct fixture *fx)
{
	fx->w = metrics_writer_new();
	cr_assert_not_null(fx->w);
	jbuf_init(&fx->out);
	metrics_begin(fx->w, &fx->out);
}

static void fx_fini(struct fixture *fx)
{
	metrics_writer_destroy(fx->w);
	jbuf_fini(&fx->out);
}

static const char *text(const struct fixture *fx)
{
	return fx->out.len ? fx->out.p : "";
}

Test(metrics, counter_family_is_written_exactly)
{
	struct fixture fx;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "wabot_events_consumed_total", METRICS_COUNTER, "Events read from Kafka."),
		     WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){"provider", "acs", "kind", "message", NULL}, 12), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){"provider", "meta", "kind", "status", NULL}, 0), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "wabot_up", METRICS_GAUGE, "1 while the worker runs."), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "wabot_other", METRICS_UNTYPED, ""), WB_OK);
	cr_assert_eq(metrics_sample_i64(fx.w, (const char *[]){NULL}, -3), WB_OK);
	cr_assert_eq(metrics_end(fx.w), WB_OK);
	cr_assert_str_eq(text(&fx), "# HELP wabot_events_consumed_total Events read from Kafka.\n"
				    "# TYPE wabot_events_consumed_total counter\n"
				    "wabot_events_consumed_total{provider=\"acs\",kind=\"message\"} 12\n"
				    "wabot_events_consumed_total{provider=\"meta\",kind=\"status\"} 0\n"
				    "# HELP wabot_up 1 while the worker runs.\n"
				    "# TYPE wabot_up gauge\n"
				    "wabot_up 1\n"
				    "# HELP wabot_other \n"
				    "# TYPE wabot_other untyped\n"
				    "wabot_other -3\n");
	fx_fini(&fx);
}

Test(metrics, values_are_formatted_as_prometheus_reads_them)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{0.1, "0.1"},
		{42.0, "42"},
		{-0.5, "-0.5"},
		{1.0 / 3.0, "0.3333333333333333"},   /* 16 digits read back */
		{0.1 + 0.2, "0.30000000000000004"}, /* 17 needed */
		{1e21, "1e+21"},
		{4.194304, "4.194304"},
		{1.0 / 0.0, "+Inf"},
		{-1.0 / 0.0, "-Inf"},
		{0.0 / 0.0, "NaN"},
	};
	struct fixture fx;
	char want[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fx_init(&fx);
		cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
		cr_assert_eq(metrics_sample(fx.w, NULL, cases[i].v), WB_OK);
		snprintf(want, sizeof(want), "# HELP g h\n# TYPE g gauge\ng %s\n", cases[i].want);
		cr_assert_str_eq(text(&fx), want, "value %zu", i);
		fx_fini(&fx);
	}

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, UINT64_MAX), WB_OK);
	cr_assert_eq(metrics_sample_i64(fx.w, NULL, INT64_MIN), WB_OK);
	cr_assert_str_eq(text(&fx), "# HELP g h\n# TYPE g gauge\ng 18446744073709551615\ng -9223372036854775808\n");
	fx_fini(&fx);
}

Test(metrics, label_values_are_escaped)
{
	struct fixture fx;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){"path", "C:\\dir \"x\"\nnext", "empty", "", "utf8",
							     "Educación 💙", NULL},
					1),
		     WB_OK);
	cr_assert_str_eq(text(&fx), "# HELP g h\n# TYPE g gauge\n"
				    "g{path=\"C:\\\\dir \\\"x\\\"\\nnext\",empty=\"\",utf8=\"Educación 💙\"} 1\n");
	fx_fini(&fx);
}

Test(metrics, help_text_escapes_backslash_and_newline_only)
{
	struct fixture fx;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "a \\ b\nc \"quoted\""), WB_OK);
	cr_assert_str_eq(text(&fx), "# HELP g a \\\\ b\\nc \"quoted\"\n# TYPE g gauge\n");
	fx_fini(&fx);
}

Test(metrics, bad_metric_names_are_refused)
{
	static const char *const bad[] = {"", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9", "a{b}", NULL};
	static const char *const good[] = {"a", "_x", ":x", "a:b_c9", "ABC_def"};
	struct fixture fx;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx_init(&fx);
		cr_assert_not(metrics_name_is_valid(bad[i]), "%s", bad[i] ? bad[i] : "NULL");
		cr_assert_eq(metrics_family(fx.w, bad[i], METRICS_GAUGE, "h"), WB_ERR_INVALID);
		cr_assert_eq(fx.out.len, 0, "nothing written for %s", bad[i] ? bad[i] : "NULL");
		cr_assert_eq(metrics_end(fx.w), WB_ERR_INVALID);
		fx_fini(&fx);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(metrics_name_is_valid(good[i]), "%s", good[i]);
}

Test(metrics, bad_labels_are_refused_and_nothing_is_written)
{
	static const char *const bad_names[] = {"", "1a", "a-b", "a:b", "__name__", "__x", "caf\xc3\xa9"};
	const char *too_many[2 * (METRICS_MAX_LABELS + 1) + 1];
	struct fixture fx;
	size_t i;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	size_t before = fx.out.len;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		cr_assert_not(metrics_label_name_is_valid(bad_names[i]), "%s", bad_names[i]);
		cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){bad_names[i], "v", NULL}, 1), WB_ERR_INVALID,
			     "%s", bad_names[i]);
	}
	/* a name without value, a repeated name, a value that is not UTF-8 */
	cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){"a", NULL}, 1), WB_ERR_INVALID);
	cr_assert_eq(metrics_sample_u64(fx.w, (const char *[]){"a", "1", "b", "2", "a", "3", NULL}, 1),
		     WB_ERR_INVALID);
	cr_assert_eq(metrics_sample(fx.w, (const char *[]){"a", "\xff\xfe", NULL}, 1), WB_ERR_INVALID);
	cr_assert_eq(metrics_sample_i64(fx.w, (const char *[]){"a", "\xc3", NULL}, 1), WB_ERR_INVALID);
	/* one pair over the limit */
	for (i = 0; i < METRICS_MAX_LABELS + 1; i++) {
		too_many[2 * i] = (const char *[]){"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8",
						   "l9", "l10", "l11", "l12", "l13", "l14", "l15", "l16"}[i];
		too_many[2 * i + 1] = "v";
	}
	too_many[2 * (METRICS_MAX_LABELS + 1)] = NULL;
	cr_assert_eq(metrics_sample_u64(fx.w, too_many, 1), WB_ERR_INVALID);
	too_many[2 * METRICS_MAX_LABELS] = NULL; /* exactly the limit is fine */
	cr_assert_eq(metrics_sample_u64(fx.w, too_many, 1), WB_OK);
	cr_assert_eq(strncmp(fx.out.p + before, "g{l0=\"v\",", 9), 0, "only the good sample was written: %s",
		     fx.out.p + before);
	cr_assert_eq(metrics_end(fx.w), WB_ERR_INVALID, "the first error is remembered");
	fx_fini(&fx);
}

Test(metrics, family_declared_twice_is_refused)
{
	struct fixture fx;
	size_t before;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "a_total", METRICS_COUNTER, "h"), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "lat_seconds", METRICS_HISTOGRAM, "h"), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "x", METRICS_GAUGE, "h"), WB_OK);
	before = fx.out.len;
	cr_assert_eq(metrics_family(fx.w, "a_total", METRICS_GAUGE, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "lat_seconds_count", METRICS_GAUGE, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "lat_seconds_bucket", METRICS_COUNTER, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "a", METRICS_HISTOGRAM, "h"), WB_OK, "a_total is no series of a");
	cr_assert_eq(metrics_family(fx.w, "x_sum", METRICS_GAUGE, "h"), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "x", METRICS_HISTOGRAM, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "lat_seconds_total", METRICS_COUNTER, "h"), WB_OK);
	cr_assert_eq(fx.out.len - before,
		     strlen("# HELP a h\n# TYPE a histogram\n# HELP x_sum h\n# TYPE x_sum gauge\n"
			    "# HELP lat_seconds_total h\n# TYPE lat_seconds_total counter\n"));

	/* a new exposition forgets the families of the last one */
	jbuf_reset(&fx.out);
	metrics_begin(fx.w, &fx.out);
	cr_assert_eq(metrics_family(fx.w, "a_total", METRICS_COUNTER, "h"), WB_OK);
	cr_assert_eq(metrics_end(fx.w), WB_OK);
	fx_fini(&fx);
}

Test(metrics, samples_outside_their_family_are_refused)
{
	const uint64_t counts[2] = {1, 2};
	const double bounds[1] = {0.5};
	metrics_writer_t *w = metrics_writer_new();
	struct fixture fx;

	/* no metrics_begin yet */
	cr_assert_not_null(w);
	cr_assert_eq(metrics_family(w, "g", METRICS_GAUGE, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_sample(w, NULL, 1), WB_ERR_INVALID);
	metrics_writer_destroy(w);
	metrics_writer_destroy(NULL);

	fx_init(&fx);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_ERR_INVALID, "no family yet");
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	cr_assert_eq(metrics_family(fx.w, "bad-name", METRICS_GAUGE, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_ERR_INVALID, "not into g after a refused family");
	cr_assert_eq(metrics_family(fx.w, "no_help", METRICS_GAUGE, NULL), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "bad_help", METRICS_GAUGE, "\xff"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "bad_type", (enum metrics_type)7, "h"), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "c_total", METRICS_COUNTER, "h"), WB_OK);
	cr_assert_eq(metrics_histogram(fx.w, NULL, bounds, counts, 1, 1.0), WB_ERR_INVALID);
	cr_assert_eq(metrics_family(fx.w, "h_seconds", METRICS_HISTOGRAM, "h"), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_ERR_INVALID);
	cr_assert_str_eq(text(&fx), "# HELP g h\n# TYPE g gauge\n# HELP c_total h\n# TYPE c_total counter\n"
				    "# HELP h_seconds h\n# TYPE h_seconds histogram\n");
	fx_fini(&fx);
}

Test(metrics, histogram_is_cumulative_with_inf_equal_to_count)
{
	const double bounds[3] = {0.005, 0.1, 2.5};
	const uint64_t counts[4] = {3, 0, 5, 2};
	struct fixture fx;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "wabot_step_seconds", METRICS_HISTOGRAM, "Flow step time."), WB_OK);
	cr_assert_eq(metrics_histogram(fx.w, (const char *[]){"thread", "0", NULL}, bounds, counts, 3, 7.25), WB_OK);
	cr_assert_eq(metrics_histogram(fx.w, NULL, NULL, (const uint64_t[]){4}, 0, 0.5), WB_OK);
	cr_assert_eq(metrics_end(fx.w), WB_OK);
	cr_assert_str_eq(text(&fx), "# HELP wabot_step_seconds Flow step time.\n"
				    "# TYPE wabot_step_seconds histogram\n"
				    "wabot_step_seconds_bucket{thread=\"0\",le=\"0.005\"} 3\n"
				    "wabot_step_seconds_bucket{thread=\"0\",le=\"0.1\"} 3\n"
				    "wabot_step_seconds_bucket{thread=\"0\",le=\"2.5\"} 8\n"
				    "wabot_step_seconds_bucket{thread=\"0\",le=\"+Inf\"} 10\n"
				    "wabot_step_seconds_sum{thread=\"0\"} 7.25\n"
				    "wabot_step_seconds_count{thread=\"0\"} 10\n"
				    "wabot_step_seconds_bucket{le=\"+Inf\"} 4\n"
				    "wabot_step_seconds_sum 0.5\n"
				    "wabot_step_seconds_count 4\n");
	fx_fini(&fx);
}

Test(metrics, histogram_with_bad_shape_is_refused)
{
	const uint64_t counts[4] = {1, 1, 1, 1};
	struct fixture fx;

	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "h_seconds", METRICS_HISTOGRAM, "h"), WB_OK);
	size_t before = fx.out.len;

	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){1, 1, 2}, counts, 3, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){2, 1, 3}, counts, 3, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){1, 0.0 / 0.0, 3}, counts, 3, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){1, 2, 1.0 / 0.0}, counts, 3, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, NULL, counts, 3, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){1}, NULL, 1, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, (const char *[]){"le", "1", NULL}, (const double[]){1}, counts, 1, 0),
		     WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram(fx.w, NULL, (const double[]){1}, (const uint64_t[]){UINT64_MAX, 1}, 1, 0),
		     WB_ERR_INVALID, "the total does not fit 64 bits");
	cr_assert_eq(metrics_histogram_pow2_us(fx.w, NULL, counts, 0, 0), WB_ERR_INVALID);
	cr_assert_eq(metrics_histogram_pow2_us(fx.w, NULL, counts, METRICS_MAX_POW2_BUCKETS + 1, 0), WB_ERR_INVALID);
	cr_assert_eq(fx.out.len, before, "nothing written: %s", text(&fx));
	fx_fini(&fx);
}

/* The layout ctx_store_stats.latency_buckets has (CTX_STORE_LAT_BUCKETS =
 * METRICS_HIST_BUCKETS): bucket i counts calls < 2^i us, the last the rest. */
Test(metrics, ctx_store_latency_histogram_converts_to_seconds)
{
	uint64_t buckets[METRICS_HIST_BUCKETS] = {0};
	struct fixture fx;
	char line[128];
	const char *p;
	size_t i;

	buckets[0] = 1;  /* < 1 us */
	buckets[4] = 2;  /* [8, 16) us */
	buckets[10] = 3; /* [512, 1024) us */
	buckets[METRICS_HIST_BUCKETS - 1] = 4; /* >= 2^22 us */
	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "wabot_store_latency_seconds", METRICS_HISTOGRAM, "Store call time."),
		     WB_OK);
	cr_assert_eq(metrics_histogram_pow2_us(fx.w, (const char *[]){"backend", "redis", NULL}, buckets,
					       METRICS_HIST_BUCKETS, 1500000),
		     WB_OK);
	cr_assert_eq(metrics_end(fx.w), WB_OK);

	/* 23 finite bounds 2^i us in seconds, cumulative counts, +Inf = count = 10 */
	static const char *const want[] = {
		"le=\"1e-06\"} 1",    "le=\"2e-06\"} 1",    "le=\"4e-06\"} 1",   "le=\"8e-06\"} 1",
		"le=\"1.6e-05\"} 3",  "le=\"3.2e-05\"} 3",  "le=\"6.4e-05\"} 3", "le=\"0.000128\"} 3",
		"le=\"0.000256\"} 3", "le=\"0.000512\"} 3", "le=\"0.001024\"} 6", "le=\"0.002048\"} 6",
		"le=\"0.004096\"} 6", "le=\"0.008192\"} 6", "le=\"0.016384\"} 6", "le=\"0.032768\"} 6",
		"le=\"0.065536\"} 6", "le=\"0.131072\"} 6", "le=\"0.262144\"} 6", "le=\"0.524288\"} 6",
		"le=\"1.048576\"} 6", "le=\"2.097152\"} 6", "le=\"4.194304\"} 6", "le=\"+Inf\"} 10",
	};
	p = strstr(text(&fx), "# TYPE wabot_store_latency_seconds histogram\n");
	cr_assert_not_null(p);
	p = strchr(p, '\n') + 1;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line), "wabot_store_latency_seconds_bucket{backend=\"redis\",%s\n", want[i]);
		cr_assert_eq(strncmp(p, line, strlen(line)), 0, "bucket %zu: want %sgot %.80s", i, line, p);
		p += strlen(line);
	}
	cr_assert_str_eq(p, "wabot_store_latency_seconds_sum{backend=\"redis\"} 1.5\n"
			    "wabot_store_latency_seconds_count{backend=\"redis\"} 10\n");
	fx_fini(&fx);
}

Test(metrics, hist_observations_land_in_power_of_two_buckets)
{
	struct metrics_hist h;
	struct metrics_hist_snapshot s;
	size_t i;

	metrics_hist_init(&h);
	metrics_hist_snapshot(&h, &s);
	cr_assert_eq(s.count, 0);
	cr_assert_eq(s.sum_us, 0);

	metrics_hist_observe_us(&h, 0);                /* < 1 us: bucket 0 */
	metrics_hist_observe_us(&h, 1);                /* [1, 2): bucket 1 */
	metrics_hist_observe_us(&h, 3);                /* [2, 4): bucket 2 */
	metrics_hist_observe_us(&h, 4);                /* [4, 8): bucket 3 */
	metrics_hist_observe_us(&h, 1023);             /* bucket 10 */
	metrics_hist_observe_us(&h, 1024);             /* bucket 11 */
	metrics_hist_observe_us(&h, (1u << 22) - 1);   /* bucket 22 */
	metrics_hist_observe_us(&h, 1u << 22);         /* the last bucket */
	metrics_hist_observe_us(&h, 3600u * 1000000u); /* an hour: the last bucket */
	metrics_hist_snapshot(&h, &s);

	uint64_t want[METRICS_HIST_BUCKETS] = {0};

	want[0] = want[1] = want[2] = want[3] = want[10] = want[11] = want[22] = 1;
	want[23] = 2;
	for (i = 0; i < METRICS_HIST_BUCKETS; i++)
		cr_assert_eq(s.buckets[i], want[i], "bucket %zu: %llu", i, (unsigned long long)s.buckets[i]);
	cr_assert_eq(s.count, 9);
	cr_assert_eq(s.sum_us, 0 + 1 + 3 + 4 + 1023 + 1024 + ((1u << 22) - 1) + (1u << 22) + 3600ull * 1000000u);
}

#define HIST_THREADS 4
#define HIST_PER_THREAD 20000

static void *observe_many(void *arg)
{
	struct metrics_hist *h = arg;
	uint64_t i;

	for (i = 0; i < HIST_PER_THREAD; i++)
		metrics_hist_observe_us(h, i % 5000);
	return NULL;
}

Test(metrics, hist_counts_every_observation_of_concurrent_threads)
{
	pthread_t t[HIST_THREADS];
	struct metrics_hist h;
	struct metrics_hist_snapshot s;
	uint64_t sum = 0, i;

	metrics_hist_init(&h);
	for (i = 0; i < HIST_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, observe_many, &h), 0);
	for (i = 0; i < HIST_THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < HIST_PER_THREAD; i++)
		sum += i % 5000;
	metrics_hist_snapshot(&h, &s);
	cr_assert_eq(s.count, HIST_THREADS * HIST_PER_THREAD);
	cr_assert_eq(s.sum_us, HIST_THREADS * sum);
}

Test(metrics, end_reports_out_of_memory_of_the_output)
{
	struct fixture fx;

	/* a write that runs out of memory */
	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	fx.out.oom = true; /* as jbuf leaves it after a failed allocation */
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_ERR_NOMEM);
	cr_assert_eq(metrics_end(fx.w), WB_ERR_NOMEM);
	fx_fini(&fx);

	/* the caller's own write to the jbuf, after the last call */
	fx_init(&fx);
	cr_assert_eq(metrics_family(fx.w, "g", METRICS_GAUGE, "h"), WB_OK);
	cr_assert_eq(metrics_sample_u64(fx.w, NULL, 1), WB_OK);
	fx.out.oom = true;
	cr_assert_eq(metrics_end(fx.w), WB_ERR_NOMEM);
	fx_fini(&fx);
}

/* --- promtool ---------------------------------------------------------- */

/* Writes text to a temporary file and runs "promtool check metrics" on it;
 * returns its exit code, with its stderr in err (cap bytes). */
static int promtool_check(const char *text_, char *err, size_t cap)
{
	char path[] = "/tmp/wb_metrics_XXXXXX";
	char args[128];
	struct run_result r;
	int fd = mkstemp(path), status;
	size_t len = strlen(text_);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text_, len), (ssize_t)len);
	close(fd);
	snprintf(args, sizeof(args), "check metrics < %s", path);
	cr_assert_eq(run_binary(&r, "promtool", "PATH=/usr/bin:/bin", args), 0);
	unlink(path);
	snprintf(err, cap, "%s", r.err);
	status = r.status;
	run_result_fini(&r);
	return status;
}

/* What /metrics will look like: every kind of family, labels that need
 * escaping, special values, and the store latency in ctx_store's layout. */
static void realistic_exposition(struct jbuf *out)
{
	metrics_writer_t *w = metrics_writer_new();
	uint64_t lat[METRICS_HIST_BUCKETS] = {0};
	struct metrics_hist step;
	struct metrics_hist_snapshot snap;

	cr_assert_not_null(w);
	metrics_begin(w, out);
	metrics_family(w, "wabot_build_info", METRICS_GAUGE, "Build of this worker; the value is always 1.");
	metrics_sample_u64(w, (const char *[]){"version", "0.5.0", "librdkafka", "2.0.2", NULL}, 1);
	metrics_family(w, "wabot_events_consumed_total", METRICS_COUNTER, "Events read from the inbound topic.");
	metrics_sample_u64(w, (const char *[]){"provider", "acs", "kind", "message", NULL}, 1234);
	metrics_sample_u64(w, (const char *[]){"provider", "meta", "kind", "status", NULL}, 99);
	metrics_family(w, "wabot_events_dead_lettered_total", METRICS_COUNTER,
		       "Records sent to the dead-letter topic, by reason.\nSee README \\ Bad input.");
	metrics_sample_u64(w, (const char *[]){"reason", "invalid_json", NULL}, 3);
	metrics_sample_u64(w, (const char *[]){"reason", "odd \"reason\"\\with\nnewline", NULL}, 1);
	metrics_family(w, "wabot_consumer_lag_messages", METRICS_GAUGE, "Committed offset behind the high watermark.");
	metrics_sample_i64(w, (const char *[]){"topic", "wa.inbound", "partition", "0", NULL}, 0);
	metrics_sample_i64(w, (const char *[]){"topic", "wa.inbound", "partition", "1", NULL}, 42);
	metrics_family(w, "wabot_consumer_time_lag_seconds", METRICS_GAUGE, "Age of the oldest unfinished record.");
	metrics_sample(w, (const char *[]){"partition", "0", NULL}, 0.25);
	metrics_sample(w, (const char *[]){"partition", "1", NULL}, 0.0 / 0.0);
	metrics_family(w, "wabot_redis_used_memory_bytes", METRICS_GAUGE, "Redis INFO used_memory.");
	metrics_sample_u64(w, NULL, 1048576);
	lat[3] = 10;
	lat[9] = 250;
	lat[12] = 7;
	lat[METRICS_HIST_BUCKETS - 1] = 1;
	metrics_family(w, "wabot_store_latency_seconds", METRICS_HISTOGRAM, "Context store call time.");
	metrics_histogram_pow2_us(w, (const char *[]){"backend", "redis", NULL}, lat, METRICS_HIST_BUCKETS, 5000123);
	metrics_hist_init(&step);
	metrics_hist_observe_us(&step, 40);
	metrics_hist_observe_us(&step, 900);
	metrics_hist_snapshot(&step, &snap);
	metrics_family(w, "wabot_step_seconds", METRICS_HISTOGRAM, "Flow step time.");
	metrics_histogram_pow2_us(w, NULL, snap.buckets, METRICS_HIST_BUCKETS, snap.sum_us);
	cr_assert_eq(metrics_end(w), WB_OK);
	metrics_writer_destroy(w);
}

Test(metrics, promtool_accepts_a_realistic_exposition)
{
	struct jbuf out;
	char err[1024];
	int status;

	jbuf_init(&out);
	realistic_exposition(&out);
	status = promtool_check(out.p, err, sizeof(err));
	cr_assert_eq(status, 0, "promtool exit %d: %s\n%s", status, err, out.p);
	jbuf_fini(&out);
}

/* Proves the check above is live: promtool refuses a line it cannot parse. */
Test(metrics, promtool_rejects_a_broken_exposition)
{
	struct jbuf out;
	char err[1024];
	int status;

	jbuf_init(&out);
	realistic_exposition(&out);
	jbuf_cstr(&out, "wabot_broken{partition=\"0} 1\n");
	status = promtool_check(out.p, err, sizeof(err));
	/* 1 is promtool's parse failure (lint findings give 3, a missing
	 * promtool 127): anything else would not prove the parser ran */
	cr_assert_eq(status, 1, "promtool exit %d: %s", status, err);
	cr_assert_not_null(strstr(err, "error while linting"), "%s", err);
	jbuf_fini(&out);
}
