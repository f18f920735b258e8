/*
 * metrics.c - Prometheus text exposition writer and lock-free latency
 * histogram (see metrics.h).
 *
 * A writer owns one jbuf of family entries ("<type digit><name>\0" each) so
 * that a family declared twice, or colliding with a histogram's _bucket,
 * _sum or _count series, is refused: Prometheus rejects a whole scrape for
 * that, and a linear scan over the hundred or so families of one scrape
 * costs far less than the scrape itself. Every call checks all of its input
 * before writing a byte, so a refused call leaves the exposition valid.
 * Text goes to the caller's jbuf (borrowed); allocation failure is jbuf's
 * sticky oom, reported as WB_ERR_NOMEM.
 * Threads: a writer is used by one thread at a time. metrics_hist is
 * lock-free (relaxed atomics): observers never wait, and a scrape reads each
 * field once.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_store.h"
#include "utf8.h"

/* ctx_store keeps its latency in the same layout, written with the same
 * metrics_histogram_pow2_us(). */
_Static_assert(METRICS_HIST_BUCKETS == CTX_STORE_LAT_BUCKETS, "metrics_hist and ctx_store layouts differ");

/* writer->cur when no family is current (none yet, or the last refused). */
#define NO_FAMILY SIZE_MAX

/* Room for any value as text: a double in its round-trip form
 * ("-1.2345678901234567e-308") or a 64-bit integer. */
#define DOUBLE_TEXT 32

struct metrics_writer {
	struct jbuf *out;   /* borrowed from metrics_begin(); NULL before it */
	struct jbuf names;  /* owned: families of this exposition, "<type digit><name>\0" each */
	size_t cur;         /* offset in names of the current family, or NO_FAMILY */
	wb_err_t first_err; /* first error since metrics_begin(), for metrics_end() */
};

static const char *const type_names[] = {
	[METRICS_COUNTER] = "counter",
	[METRICS_GAUGE] = "gauge",
	[METRICS_HISTOGRAM] = "histogram",
	[METRICS_UNTYPED] = "untyped",
};

/* The series a histogram named h writes besides h itself. */
static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};

/* ---- names ----------------------------------------------------------- */

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool metrics_name_is_valid(const char *name)
{
	if (!name || !(is_alpha_(*name) || *name == ':'))
		return false;
	for (name++; *name; name++)
		if (!(is_alpha_(*name) || is_digit(*name) || *name == ':'))
			return false;
	return true;
}

bool metrics_label_name_is_valid(const char *name)
{
	if (!name || !is_alpha_(*name) || (name[0] == '_' && name[1] == '_'))
		return false;
	for (name++; *name; name++)
		if (!(is_alpha_(*name) || is_digit(*name)))
			return false;
	return true;
}

/* ---- text helpers ------------------------------------------------------ */

/* Writes s with '\\' and '\n' escaped, and '"' too when quoted (label
 * values); HELP text leaves '"' as it is, as the format says. */
static void put_escaped(struct jbuf *b, const char *s, bool quoted)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quoted)
			esc = "\\\"";
		if (esc) {
			jbuf_raw(b, run, (size_t)(s - run));
			jbuf_cstr(b, esc);
			run = s + 1;
		}
	}
	jbuf_raw(b, run, (size_t)(s - run));
}

/* v as Prometheus reads it: NaN, +Inf, -Inf, or the fewest significant
 * digits (15, 16 or 17) that strtod reads back as v, so 0.1 is "0.1" and
 * not %.17g's "0.10000000000000001", while no value loses a bit. */
static void format_double(char s[DOUBLE_TEXT], double v)
{
	int prec;

	if (isnan(v)) {
		strcpy(s, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(s, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(s, DOUBLE_TEXT, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			return;
	}
	snprintf(s, DOUBLE_TEXT, "%.17g", v);
}

/*
 * Writes "name<suffix>{l1="v1",...,le="le"} " (no braces when there are no
 * labels): everything of a sample line but the value. labels were checked.
 */
static void put_series(struct jbuf *b, const char *name, const char *suffix, const char *const *labels,
		       const char *le)
{
	size_t i;
	bool any = labels && labels[0];

	jbuf_cstr(b, name);
	if (suffix)
		jbuf_cstr(b, suffix);
	if (any || le) {
		jbuf_ch(b, '{');
		for (i = 0; any && labels[i]; i += 2) {
			if (i)
				jbuf_ch(b, ',');
			jbuf_cstr(b, labels[i]);
			jbuf_raw(b, "=\"", 2);
			put_escaped(b, labels[i + 1], true);
			jbuf_ch(b, '"');
		}
		if (le) {
			if (any)
				jbuf_ch(b, ',');
			jbuf_raw(b, "le=\"", 4);
			jbuf_cstr(b, le);
			jbuf_ch(b, '"');
		}
		jbuf_ch(b, '}');
	}
	jbuf_ch(b, ' ');
}

/* ---- the writer -------------------------------------------------------- */

metrics_writer_t *metrics_writer_new(void)
{
	metrics_writer_t *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	jbuf_init(&w->names);
	w->cur = NO_FAMILY;
	return w;
}

void metrics_writer_destroy(metrics_writer_t *w)
{
	if (!w)
		return;
	jbuf_fini(&w->names);
	free(w);
}

void metrics_begin(metrics_writer_t *w, struct jbuf *out)
{
	w->out = out;
	jbuf_reset(&w->names);
	w->cur = NO_FAMILY;
	w->first_err = WB_OK;
}

/* Records err as the exposition's first error (if it is) and returns it. */
static wb_err_t fail(metrics_writer_t *w, wb_err_t err)
{
	if (w->first_err == WB_OK)
		w->first_err = err;
	return err;
}

/* WB_OK, or WB_ERR_NOMEM (recorded) when the output ran out of memory. */
static wb_err_t written(metrics_writer_t *w)
{
	return w->out->oom ? fail(w, WB_ERR_NOMEM) : WB_OK;
}

/* true when series is hist followed by one of hist_suffixes. */
static bool is_series_of(const char *series, const char *hist)
{
	size_t len = strlen(hist), i;

	if (strncmp(series, hist, len) != 0)
		return false;
	for (i = 0; i < sizeof(hist_suffixes) / sizeof(hist_suffixes[0]); i++)
		if (strcmp(series + len, hist_suffixes[i]) == 0)
			return true;
	return false;
}

/* true when a family name of type type would share a series name with one
 * already written in this exposition. */
static bool family_collides(const metrics_writer_t *w, const char *name, enum metrics_type type)
{
	const char *e = w->names.p, *end = w->names.p + w->names.len;

	for (; e < end; e += strlen(e) + 1) {
		enum metrics_type etype = (enum metrics_type)(e[0] - '0');
		const char *ename = e + 1;

		if (strcmp(ename, name) == 0 || (etype == METRICS_HISTOGRAM && is_series_of(name, ename)) ||
		    (type == METRICS_HISTOGRAM && is_series_of(ename, name)))
			return true;
	}
	return false;
}

wb_err_t metrics_family(metrics_writer_t *w, const char *name, enum metrics_type type, const char *help)
{
	size_t at = w->names.len;
	char tag = (char)('0' + (int)type);

	w->cur = NO_FAMILY;
	if (!w->out || !metrics_name_is_valid(name) || !help || !utf8_valid(help, strlen(help)) ||
	    (unsigned)type > METRICS_UNTYPED || family_collides(w, name, type))
		return fail(w, WB_ERR_INVALID);
	jbuf_raw(&w->names, &tag, 1);
	jbuf_raw(&w->names, name, strlen(name) + 1);
	if (w->names.oom) {
		/* the entries before stay valid: cut the partial one off */
		w->names.oom = false;
		w->names.len = at;
		return fail(w, WB_ERR_NOMEM);
	}
	jbuf_raw(w->out, "# HELP ", 7);
	jbuf_cstr(w->out, name);
	jbuf_ch(w->out, ' ');
	put_escaped(w->out, help, false);
	jbuf_raw(w->out, "\n# TYPE ", 8);
	jbuf_cstr(w->out, name);
	jbuf_ch(w->out, ' ');
	jbuf_cstr(w->out, type_names[type]);
	jbuf_ch(w->out, '\n');
	w->cur = at;
	return written(w);
}

/* WB_OK when labels is NULL or well-formed pairs (see metrics.h); "le" is
 * refused for histograms, whose buckets add it. */
static wb_err_t labels_check(const char *const *labels, bool histogram)
{
	size_t i, j;

	if (!labels)
		return WB_OK;
	for (i = 0; labels[i]; i += 2) {
		if (i / 2 >= METRICS_MAX_LABELS || !metrics_label_name_is_valid(labels[i]) || !labels[i + 1] ||
		    !utf8_valid(labels[i + 1], strlen(labels[i + 1])))
			return WB_ERR_INVALID;
		if (histogram && strcmp(labels[i], "le") == 0)
			return WB_ERR_INVALID;
		for (j = 0; j < i; j += 2)
			if (strcmp(labels[j], labels[i]) == 0)
				return WB_ERR_INVALID;
	}
	return WB_OK;
}

/* The current family's name when it is of a sample type (want_histogram
 * false) or a histogram (true); NULL otherwise. */
static const char *current(const metrics_writer_t *w, bool want_histogram)
{
	const char *e;

	if (!w->out || w->cur == NO_FAMILY)
		return NULL;
	e = w->names.p + w->cur;
	if ((e[0] - '0' == METRICS_HISTOGRAM) != want_histogram)
		return NULL;
	return e + 1;
}

/* Writes one sample line of the current sample-type family with value
 * (already formatted), after checking everything; nothing when refused. */
static wb_err_t sample_line(metrics_writer_t *w, const char *const *labels, const char *value)
{
	const char *name = current(w, false);

	if (!name || labels_check(labels, false) != WB_OK)
		return fail(w, WB_ERR_INVALID);
	put_series(w->out, name, NULL, labels, NULL);
	jbuf_cstr(w->out, value);
	jbuf_ch(w->out, '\n');
	return written(w);
}

wb_err_t metrics_sample(metrics_writer_t *w, const char *const *labels, double value)
{
	char s[DOUBLE_TEXT];

	format_double(s, value);
	return sample_line(w, labels, s);
}

wb_err_t metrics_sample_u64(metrics_writer_t *w, const char *const *labels, uint64_t value)
{
	char s[DOUBLE_TEXT];

	snprintf(s, sizeof(s), "%" PRIu64, value);
	return sample_line(w, labels, s);
}

wb_err_t metrics_sample_i64(metrics_writer_t *w, const char *const *labels, int64_t value)
{
	char s[DOUBLE_TEXT];

	snprintf(s, sizeof(s), "%" PRId64, value);
	return sample_line(w, labels, s);
}

wb_err_t metrics_histogram(metrics_writer_t *w, const char *const *labels, const double *bounds,
			   const uint64_t *counts, size_t n, double sum)
{
	const char *name = current(w, true);
	char le[DOUBLE_TEXT], s[DOUBLE_TEXT];
	uint64_t total = 0;
	size_t i;

	if (!name || labels_check(labels, true) != WB_OK || !counts || (n && !bounds))
		return fail(w, WB_ERR_INVALID);
	for (i = 0; i <= n; i++) {
		if (i < n && (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))))
			return fail(w, WB_ERR_INVALID);
		if (counts[i] > UINT64_MAX - total)
			return fail(w, WB_ERR_INVALID);
		total += counts[i];
	}

	total = 0;
	for (i = 0; i <= n; i++) {
		total += counts[i];
		if (i < n)
			format_double(le, bounds[i]);
		put_series(w->out, name, "_bucket", labels, i < n ? le : "+Inf");
		jbuf_u64(w->out, total);
		jbuf_ch(w->out, '\n');
	}
	put_series(w->out, name, "_sum", labels, NULL);
	format_double(s, sum);
	jbuf_cstr(w->out, s);
	jbuf_ch(w->out, '\n');
	put_series(w->out, name, "_count", labels, NULL);
	jbuf_u64(w->out, total);
	jbuf_ch(w->out, '\n');
	return written(w);
}

wb_err_t metrics_histogram_pow2_us(metrics_writer_t *w, const char *const *labels, const uint64_t *buckets,
				   size_t n, uint64_t sum_us)
{
	double bounds[METRICS_MAX_POW2_BUCKETS];
	size_t i;

	if (n == 0 || n > METRICS_MAX_POW2_BUCKETS || !buckets)
		return fail(w, WB_ERR_INVALID);
	/* 2^i / 1e6 is the double nearest to 2^i us in seconds (one rounding),
	 * so it prints as "8e-06", not "8.0000000000000013e-06" */
	for (i = 0; i + 1 < n; i++)
		bounds[i] = ldexp(1.0, (int)i) / 1e6;
	return metrics_histogram(w, labels, bounds, buckets, n - 1, (double)sum_us / 1e6);
}

wb_err_t metrics_end(metrics_writer_t *w)
{
	if (w->out && w->out->oom)
		return fail(w, WB_ERR_NOMEM);
	return w->first_err;
}

/* ---- lock-free latency histogram --------------------------------------- */

void metrics_hist_init(struct metrics_hist *h)
{
	size_t i;

	for (i = 0; i < METRICS_HIST_BUCKETS; i++)
		atomic_init(&h->buckets[i], 0);
	atomic_init(&h->sum_us, 0);
}

void metrics_hist_observe_us(struct metrics_hist *h, uint64_t us)
{
	/* bucket b holds [2^(b-1), 2^b) us, i.e. b is the bit length of us */
	size_t b = us ? (size_t)(64 - __builtin_clzll(us)) : 0;

	if (b > METRICS_HIST_BUCKETS - 1)
		b = METRICS_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void metrics_hist_snapshot(const struct metrics_hist *h, struct metrics_hist_snapshot *out)
{
	size_t i;

	out->count = 0;
	for (i = 0; i < METRICS_HIST_BUCKETS; i++) {
		out->buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		out->count += out->buckets[i];
	}
	out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}
