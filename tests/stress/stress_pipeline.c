/*
 * stress_pipeline.c - several threads, each with its own pipeline, sharing
 * one flow and one context store, as the worker's threads will: plain
 * program (no criterion) so that it runs under ThreadSanitizer.
 *
 * Each thread drives its own phones through the donations cycle and checks
 * every reply's step; all threads also hammer a few shared phones at once,
 * which forces compare-and-set conflicts and retries in the pipeline. Exits
 * 1 on a wrong step on an own phone, a dead-letter or a pipeline error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_store.h"
#include "flow.h"
#include "log.h"
#include "payloads.h"
#include "pipeline.h"

#define THREADS 4
#define OWN_PHONES 50
#define ROUNDS 8 /* donation cycles per phone */
#define SHARED_PHONES 3

static const flow_t *g_flow;
static ctx_store_t *g_store;

struct worker {
	int id;
	int expect;          /* cycle step expected for the current own-phone event */
	bool shared;         /* the current event is for a shared phone */
	unsigned long replies, wrong, dlq, errors, conflicts;
};

static wb_err_t check_emit(void *opaque, const struct pipeline_output *o)
{
	struct worker *w = opaque;

	if (o->out == PIPELINE_OUT_DLQ) {
		w->dlq++;
		return WB_OK;
	}
	w->replies++;
	if (!w->shared && !payload_reply_has_step(o->value, o->len, payload_cycle_step[w->expect]))
		w->wrong++;
	return WB_OK;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct pipeline_opts po = {0};
	pipeline_t *p = pipeline_new(g_flow, g_store, &po);
	struct pipeline_stats st;
	char buf[2048], digits[32];
	int round, k;
	uint64_t seq = (uint64_t)w->id << 40;

	if (!p) {
		w->errors++;
		return NULL;
	}
	for (round = 0; round < ROUNDS * 4; round++) {
		for (k = 0; k < OWN_PHONES + SHARED_PHONES; k++) {
			bool shared = k >= OWN_PHONES;
			int len;

			if (shared)
				snprintf(digits, sizeof(digits), "5799900000%02d", k - OWN_PHONES);
			else
				snprintf(digits, sizeof(digits), "573%02d%07d", w->id, k);
			len = payload_text(buf, sizeof(buf), (k + w->id) & 1, digits, seq++,
					   payload_cycle_text[round % 4]);
			w->expect = round % 4;
			w->shared = shared;
			if (pipeline_process(p, NULL, buf, (size_t)len, 1795183391, check_emit, w) != WB_OK)
				w->errors++;
		}
	}
	pipeline_stats(p, &st);
	w->conflicts = st.conflicts;
	pipeline_destroy(p);
	return NULL;
}

int main(void)
{
	struct ctx_store_config sc = {.backend = CTX_BACKEND_MEMORY};
	struct worker w[THREADS];
	pthread_t th[THREADS];
	char errstr[256];
	unsigned long wrong = 0, dlq = 0, errors = 0, replies = 0, conflicts = 0;
	flow_t *flow;
	int i;

	log_set_level(LOG_ERROR);
	flow = flow_load_default(errstr, sizeof(errstr));
	g_store = ctx_store_new(&sc, errstr, sizeof(errstr));
	if (!flow || !g_store) {
		fprintf(stderr, "stress_pipeline: setup: %s\n", errstr);
		return 1;
	}
	g_flow = flow;
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i;
		if (pthread_create(&th[i], NULL, run, &w[i]) != 0)
			return 1;
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		wrong += w[i].wrong;
		dlq += w[i].dlq;
		errors += w[i].errors;
		replies += w[i].replies;
		conflicts += w[i].conflicts;
	}
	ctx_store_destroy(g_store);
	flow_destroy(flow);
	printf("stress_pipeline: %d threads, %lu replies, %lu compare-and-set retries, %lu wrong steps, "
	       "%lu dead-lettered, %lu errors\n",
	       THREADS, replies, conflicts, wrong, dlq, errors);
	return wrong || dlq || errors || replies < (unsigned long)(THREADS * OWN_PHONES * ROUNDS * 4) ? 1 : 0;
}
