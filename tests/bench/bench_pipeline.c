/*
 * bench_pipeline.c - events per second through the whole conversation path
 * on one core: decode -> memory store get -> flow step (default donations
 * flow) -> store put -> reply envelope encoding, as pipeline_process() does
 * for every Kafka record. No Kafka.
 *
 * Every phone runs the cycle greeting-with-intent, name, ministry, "si"; each
 * reply's conversation_step is checked against the cycle, so a benchmark that
 * got faster by breaking the conversation fails instead of printing.
 *
 * It also times the stages without the reply encoding (decode + store get +
 * flow step + store put, the "decoding plus one flow step with the
 * memory store") and decoding alone, each over the same events in a fresh
 * store, so the cost of each part can be read off the differences.
 *
 *   ./build/bench_pipeline [-n events] [-p phones] [-f acs|meta|mixed]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx_store.h"
#include "event.h"
#include "flow.h"
#include "log.h"
#include "payloads.h"
#include "pipeline.h"
#include "test_clock.h"

struct bench_ctx {
	uint64_t replies;
	uint64_t bad_steps;
	uint64_t dlq;
	int expect; /* index into payload_cycle_step for the event being processed */
};

static wb_err_t bench_emit(void *opaque, const struct pipeline_output *o)
{
	struct bench_ctx *b = opaque;

	if (o->out == PIPELINE_OUT_DLQ) {
		b->dlq++;
		return WB_OK;
	}
	b->replies++;
	if (!payload_reply_has_step(o->value, o->len, payload_cycle_step[b->expect]))
		b->bad_steps++;
	return WB_OK;
}

/*
 * decode + get + step + put for every event, as pipeline.c's apply_event
 * does but without encoding the replies (which flow_step has rendered).
 * Returns the number of events whose step ended where the cycle says.
 */
static uint64_t run_core(char **payloads, size_t *lens, uint64_t n, uint64_t phones, bool decode_only)
{
	struct ctx_store_config sc = {.backend = CTX_BACKEND_MEMORY};
	char errstr[256];
	ctx_store_t *cs = ctx_store_new(&sc, errstr, sizeof(errstr));
	flow_t *flow = flow_load_default(errstr, sizeof(errstr));
	flow_session_t *fs = flow_session_new(flow);
	event_decoder_t *dec = event_decoder_new();
	struct ctx_value cv;
	uint64_t i, good = 0;

	ctx_value_init(&cv);
	for (i = 0; i < n; i++) {
		const struct wa_event *evs;
		struct flow_result res;
		size_t ne;

		if (event_decode(dec, payloads[i], lens[i], &evs, &ne, NULL, 0) != EVENT_OK || ne != 1)
			continue;
		if (decode_only) {
			good += evs[0].kind == WA_KIND_TEXT;
			continue;
		}
		if (ctx_store_get(cs, evs[0].key, &cv) != WB_OK ||
		    flow_step(fs, cv.json, cv.len, cv.found, &evs[0], NULL, 1795183391, &res) != WB_OK)
			continue;
		if (res.ctx_json && ctx_store_put(cs, evs[0].key, res.ctx_json, res.ctx_len, cv.found ? cv.version : 0,
						  0, NULL) != WB_OK)
			continue;
		good += strcmp(res.step, payload_cycle_step[(i / phones) % 4]) == 0;
	}
	ctx_value_fini(&cv);
	event_decoder_destroy(dec);
	flow_session_destroy(fs);
	flow_destroy(flow);
	ctx_store_destroy(cs);
	return good;
}

int main(int argc, char **argv)
{
	uint64_t n = 1000000, phones = 10000, i;
	const char *fmt = "mixed";
	struct ctx_store_config sc = {.backend = CTX_BACKEND_MEMORY};
	struct pipeline_opts po = {0};
	struct bench_ctx b = {0};
	char errstr[256];
	char **payloads;
	size_t *lens;
	flow_t *flow;
	ctx_store_t *cs;
	pipeline_t *p;
	double t0, c0, dt, dc;
	size_t total_bytes = 0;
	int opt;

	while ((opt = getopt(argc, argv, "n:p:f:")) != -1) {
		switch (opt) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'p': phones = strtoull(optarg, NULL, 10); break;
		case 'f': fmt = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n events] [-p phones] [-f acs|meta|mixed]\n", argv[0]);
			return 2;
		}
	}
	if (phones == 0 || n < phones * 4) {
		fprintf(stderr, "need -n >= 4 * -p (every phone runs whole cycles)\n");
		return 2;
	}
	n -= n % (phones * 4);
	log_set_level(LOG_ERROR);
	flow = flow_load_default(errstr, sizeof(errstr));
	cs = ctx_store_new(&sc, errstr, sizeof(errstr));
	if (!flow || !cs) {
		fprintf(stderr, "setup: %s\n", errstr);
		return 1;
	}
	p = pipeline_new(flow, cs, &po);
	/* Payloads are built up front (one per event: ids must be unique, or the
	 * de-duplication would turn the run into re-emissions). */
	payloads = calloc(n, sizeof(*payloads));
	lens = calloc(n, sizeof(*lens));
	if (!p || !payloads || !lens)
		return 1;
	for (i = 0; i < n; i++) {
		char digits[32], buf[2048];
		uint64_t phone = i % phones, round = i / phones;
		int meta = strcmp(fmt, "meta") == 0 || (strcmp(fmt, "mixed") == 0 && (phone & 1));
		int len;

		snprintf(digits, sizeof(digits), "57300%07llu", (unsigned long long)phone);
		len = payload_text(buf, sizeof(buf), meta, digits, i, payload_cycle_text[round % 4]);
		payloads[i] = malloc((size_t)len + 1);
		memcpy(payloads[i], buf, (size_t)len + 1);
		lens[i] = (size_t)len;
		total_bytes += (size_t)len;
	}
	t0 = test_clock_s(CLOCK_MONOTONIC);
	c0 = test_clock_s(CLOCK_PROCESS_CPUTIME_ID);
	for (i = 0; i < n; i++) {
		b.expect = (int)((i / phones) % 4);
		if (pipeline_process(p, NULL, payloads[i], lens[i], 1795183391, bench_emit, &b) != WB_OK) {
			fprintf(stderr, "pipeline failed at event %llu\n", (unsigned long long)i);
			return 1;
		}
	}
	dt = test_clock_s(CLOCK_MONOTONIC) - t0;
	dc = test_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("bench_pipeline: %llu events (%s payloads, avg %zu bytes), %llu phones, 1 thread, memory store\n",
	       (unsigned long long)n, fmt, total_bytes / n, (unsigned long long)phones);
	printf("  whole pipeline (decode + store get + flow step + store put + reply encode):\n"
	       "      %8.0f events/s, %.2f us/event wall, %.2f CPU-us/event\n",
	       (double)n / dt, dt * 1e6 / (double)n, dc * 1e6 / (double)n);
	{
		double t1 = test_clock_s(CLOCK_MONOTONIC);
		uint64_t good = run_core(payloads, lens, n, phones, false);
		double d1 = test_clock_s(CLOCK_MONOTONIC) - t1, t2, d2;

		t2 = test_clock_s(CLOCK_MONOTONIC);
		(void)run_core(payloads, lens, n, phones, true);
		d2 = test_clock_s(CLOCK_MONOTONIC) - t2;
		printf("  decode + store get + flow step + store put (no reply encoding):\n"
		       "      %8.0f events/s, %.2f us/event%s\n",
		       (double)n / d1, d1 * 1e6 / (double)n, good == n ? "" : "  (WRONG STEPS)");
		printf("  decode only:\n      %8.0f events/s, %.2f us/event\n", (double)n / d2, d2 * 1e6 / (double)n);
		if (good != n)
			b.bad_steps += n - good;
	}
	printf("  replies %llu, wrong conversation_step %llu, dead-lettered %llu\n", (unsigned long long)b.replies,
	       (unsigned long long)b.bad_steps, (unsigned long long)b.dlq);
	for (i = 0; i < n; i++)
		free(payloads[i]);
	free(payloads);
	free(lens);
	pipeline_destroy(p);
	ctx_store_destroy(cs);
	flow_destroy(flow);
	if (b.bad_steps || b.dlq || b.replies < n) {
		fprintf(stderr, "bench_pipeline: the conversation went wrong; figures above are not valid\n");
		return 1;
	}
	return 0;
}
