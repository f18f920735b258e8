/*
 * test_pipeline.c - pipeline_process_batch against pipeline_process: the
 * same records give the same outputs, byte for byte and in the same
 * per-phone order; what a batch cannot finish falls back together with
 * every later record of its phones, and processing those one by one
 * afterwards completes the stream without advancing anything twice.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_store.h"
#include "event.h"
#include "flow.h"
#include "payloads.h"
#include "pipeline.h"

#define PHONES 40
#define RECS 400
#define NOW 1795000000

/* What one pipeline emitted, in emission order. */
struct sink {
	char **key, **value;
	size_t n, cap;
	int fail_rec; /* emit fails once for this record (its opaque), -1: never */
};

/* The opaque of each record's outputs: the sink and the record's index. */
struct recref {
	struct sink *s;
	int rec;
};

static wb_err_t sink_emit(void *opaque, const struct pipeline_output *o)
{
	struct recref *rr = opaque;
	struct sink *s = rr->s;

	if (rr->rec == s->fail_rec) {
		s->fail_rec = -1;
		return WB_ERR_IO;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->key = realloc(s->key, s->cap * sizeof(*s->key));
		s->value = realloc(s->value, s->cap * sizeof(*s->value));
		cr_assert(s->key && s->value);
	}
	s->key[s->n] = strndup(o->key, o->key_len);
	s->value[s->n] = strndup(o->value, o->len);
	cr_assert_eq(o->value[o->len], '\0', "output values are NUL-terminated");
	s->n++;
	return WB_OK;
}

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->key[i]);
		free(s->value[i]);
	}
	free(s->key);
	free(s->value);
}

/* The outputs of one phone (by key), in order, joined with newlines. */
static char *phone_outputs(const struct sink *s, const char *key)
{
	size_t len = 0, i;
	char *out;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->key[i], key) == 0)
			len += strlen(s->value[i]) + 1;
	out = calloc(1, len + 1);
	cr_assert_not_null(out);
	for (i = 0; i < s->n; i++)
		if (strcmp(s->key[i], key) == 0) {
			strcat(out, s->value[i]);
			strcat(out, "\n");
		}
	return out;
}

struct stream {
	char *payload[RECS];
	size_t len[RECS];
	char key[RECS][20];
	char digits[PHONES][16];
};

/* RECS text messages over PHONES phones, each phone going through the
 * donations cycle; phone i's records cluster so that batches hold several
 * records of one phone. ACS and Meta alternate. */
static void stream_make(struct stream *st)
{
	unsigned k[PHONES] = {0};
	char buf[4096];

	for (int p = 0; p < PHONES; p++)
		snprintf(st->digits[p], sizeof st->digits[p], "5730%08d", 1000 + p);
	for (int r = 0; r < RECS; r++) {
		int p = (r * 7 + r / 50) % PHONES;
		int n = payload_text(buf, sizeof buf, r % 2, st->digits[p], (uint64_t)r + 1,
				     payload_cycle_text[k[p]++ % 4]);

		cr_assert(n > 0 && (size_t)n < sizeof buf);
		st->payload[r] = strdup(buf);
		st->len[r] = (size_t)n;
		snprintf(st->key[r], sizeof st->key[r], "+%s", st->digits[p]);
	}
}

static void stream_free(struct stream *st)
{
	for (int r = 0; r < RECS; r++)
		free(st->payload[r]);
}

static ctx_store_t *memory_store(void)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY};
	char err[256] = "";
	ctx_store_t *cs = ctx_store_new(&cfg, err, sizeof err);

	cr_assert_not_null(cs, "%s", err);
	return cs;
}

static struct pipeline_source source(const struct stream *st, int r)
{
	return (struct pipeline_source){.topic = "wa.inbound",
					.partition = 0,
					.offset = r,
					.timestamp_ms = -1,
					.key = st->key[r],
					.key_len = strlen(st->key[r])};
}

/* Runs the stream one record at a time into s; the counters into *ps. */
static void run_sequential(const flow_t *f, const struct stream *st, struct sink *s, struct pipeline_stats *ps)
{
	ctx_store_t *cs = memory_store();
	pipeline_t *p = pipeline_new(f, cs, NULL);
	struct recref rr[RECS];

	cr_assert_not_null(p);
	for (int r = 0; r < RECS; r++) {
		struct pipeline_source src = source(st, r);

		rr[r] = (struct recref){s, r};
		cr_assert_eq(pipeline_process(p, &src, st->payload[r], st->len[r], NOW, sink_emit, &rr[r]), WB_OK);
	}
	pipeline_stats(p, ps);
	pipeline_destroy(p);
	ctx_store_destroy(cs);
}

/* Runs the stream in batches of `batch` (decoded and copied as the worker
 * does), then the fallbacks of each batch one by one; returns how many
 * records fell back; the counters into *ps. */
static size_t run_batched(const flow_t *f, const struct stream *st, size_t batch, struct sink *s,
			  struct pipeline_stats *ps)
{
	ctx_store_t *cs = memory_store();
	pipeline_t *p = pipeline_new(f, cs, NULL);
	event_decoder_t *dec = event_decoder_new();
	struct pipeline_rec recs[64];
	struct recref rr[RECS];
	void *copies[64];
	size_t fallbacks = 0;

	cr_assert(p && dec && batch <= 64);
	for (int first = 0; first < RECS; first += (int)batch) {
		size_t n = RECS - first < (int)batch ? (size_t)(RECS - first) : batch;

		for (size_t i = 0; i < n; i++) {
			int r = first + (int)i;
			const struct wa_event *evs;
			size_t nevs;

			cr_assert_eq(event_decode(dec, st->payload[r], st->len[r], &evs, &nevs, NULL, 0), EVENT_OK);
			copies[i] = malloc(event_copy_size(evs, nevs, st->payload[r], st->len[r]));
			rr[r] = (struct recref){s, r};
			recs[i] = (struct pipeline_rec){
				.src = source(st, r),
				.payload = st->payload[r],
				.len = st->len[r],
				.evs = event_copy(evs, nevs, st->payload[r], st->len[r], copies[i]),
				.nevs = nevs,
				.opaque = &rr[r],
			};
		}
		pipeline_process_batch(p, recs, n, NOW, sink_emit);
		for (size_t i = 0; i < n; i++) {
			if (recs[i].fallback) {
				fallbacks++;
				cr_assert_eq(pipeline_process(p, &recs[i].src, recs[i].payload, recs[i].len, NOW,
							      sink_emit, recs[i].opaque),
					     WB_OK);
			}
			free(copies[i]);
		}
	}
	event_decoder_destroy(dec);
	pipeline_stats(p, ps);
	pipeline_destroy(p);
	ctx_store_destroy(cs);
	return fallbacks;
}

static flow_t *load_flow(void)
{
	char err[256] = "";
	flow_t *f = flow_load_default(err, sizeof err);

	cr_assert_not_null(f, "%s", err);
	return f;
}

/* Per phone, bat emitted exactly what seq emitted, in the same order. */
static void assert_same_per_phone(const struct stream *st, const struct sink *seq, const struct sink *bat)
{
	for (int p = 0; p < PHONES; p++) {
		char key[20];
		char *a, *b;

		snprintf(key, sizeof key, "+%s", st->digits[p]);
		a = phone_outputs(seq, key);
		b = phone_outputs(bat, key);
		cr_assert_str_eq(b, a, "phone %d", p);
		free(a);
		free(b);
	}
}

Test(pipeline_batch, same_outputs_in_the_same_per_phone_order_as_one_by_one)
{
	flow_t *f = load_flow();
	struct stream st;
	struct sink seq = {.fail_rec = -1}, bat = {.fail_rec = -1};
	struct pipeline_stats ss, bs;

	stream_make(&st);
	run_sequential(f, &st, &seq, &ss);
	cr_assert_eq(run_batched(f, &st, 64, &bat, &bs), 0u, "nothing fails here: nothing falls back");
	cr_assert_eq(memcmp(&ss, &bs, sizeof ss), 0, "the same counters");
	cr_assert_eq(seq.n, (size_t)RECS, "one reply per text message");
	cr_assert_eq(bat.n, seq.n);
	assert_same_per_phone(&st, &seq, &bat);
	sink_free(&seq);
	sink_free(&bat);
	stream_free(&st);
	flow_destroy(f);
}

Test(pipeline_batch, a_failed_record_falls_back_with_the_later_records_of_its_phone)
{
	flow_t *f = load_flow();
	struct stream st;
	struct sink seq = {.fail_rec = -1}, bat = {.fail_rec = 3};
	size_t fallbacks, later_same_phone = 0;
	struct pipeline_stats ss, bs;

	stream_make(&st);
	/* record 3's first emit fails inside the first batch */
	for (int r = 4; r < 64; r++)
		later_same_phone += strcmp(st.key[r], st.key[3]) == 0;
	cr_assert_gt(later_same_phone, 0u, "the stream must repeat record 3's phone in its batch");
	run_sequential(f, &st, &seq, &ss);
	fallbacks = run_batched(f, &st, 64, &bat, &bs);
	cr_assert_eq(fallbacks, 1 + later_same_phone, "record 3 and the %zu later records of its phone",
		     later_same_phone);
	/* counted once each, though the batch saw them first; the fallbacks
	 * found their events saved (duplicates), nothing else differs */
	cr_assert_eq(bs.records, ss.records);
	cr_assert_eq(bs.events, ss.events);
	cr_assert_eq(bs.replies, ss.replies);
	cr_assert_eq(bs.duplicates, ss.duplicates + fallbacks);
	/* the fallbacks found their events saved: the same replies again, in
	 * order, and no conversation advanced twice */
	assert_same_per_phone(&st, &seq, &bat);
	sink_free(&seq);
	sink_free(&bat);
	stream_free(&st);
	flow_destroy(f);
}
