/*
 * bench_flow_step.c - cost of one flow_step() (parse the context, step,
 * write the new context and the replies) with the default donations flow.
 * Prints figures; asserts nothing beyond flow_step() succeeding.
 *
 *   bench_flow_step [-n steps] [-f flow.json]
 *
 * Runs, single thread, after a warm-up:
 *  1. "cycle": the load generator's conversation, greeting-with-intent,
 *     name, ministry, "si", over and over, each step reading the context
 *     the previous one wrote (the contexts carry "recent" with replies);
 *  2. "fixed": the same context (waiting_for_name after a greeting, the
 *     intent and a status: ~450 bytes) and a name, every time;
 *  3. "duplicate": an event already in "recent" (re-emission, no write);
 *  4. "status": a delivery status on a cycle context.
 * Owns only its own buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flow.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void text_event(struct wa_event *ev, const char *id, const char *t)
{
	memset(ev, 0, sizeof(*ev));
	ev->provider = WA_PROVIDER_ACS;
	ev->kind = WA_KIND_TEXT;
	strcpy(ev->key, "+573001234567");
	ev->id.p = id;
	ev->id.len = strlen(id);
	ev->text.p = t;
	ev->text.len = strlen(t);
	ev->timestamp = 1795000000;
}

static void step_or_die(flow_session_t *s, const char *ctx, size_t len, bool found, const struct wa_event *ev,
			struct flow_result *r)
{
	wb_err_t err = flow_step(s, ctx, len, found, ev, NULL, 1795000000, r);

	if (err != WB_OK) {
		fprintf(stderr, "flow_step: %s\n", wb_err_name(err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const char *cycle[] = {"Hola, quiero hacer una donación", "María Fernanda López", "ministerio de salud",
				      "si"};
	unsigned long n = 1000000, i;
	const char *file = NULL;
	char err[512], ids[16][48], *ctx = malloc(1 << 20), *fixed, *cyc;
	size_t ctx_len = 0, fixed_len, cyc_len, bytes = 0, maxlen = 0;
	flow_t *f;
	flow_session_t *s;
	struct wa_event ev;
	struct flow_result r;
	double t0 = 0, t;
	int opt;

	while ((opt = getopt(argc, argv, "n:f:")) != -1) {
		if (opt == 'n')
			n = strtoul(optarg, NULL, 10);
		else if (opt == 'f')
			file = optarg;
		else {
			fprintf(stderr, "usage: %s [-n steps] [-f flow.json]\n", argv[0]);
			return 2;
		}
	}
	f = file ? flow_load_file(file, err, sizeof(err)) : flow_load_default(err, sizeof(err));
	if (!f || !ctx) {
		fprintf(stderr, "flow: %s\n", err);
		return 2;
	}
	s = flow_session_new(f);
	for (i = 0; i < 16; i++)
		snprintf(ids[i], sizeof(ids[i]), "6b1e4a8e-%04lu-4f0e-9a6e-1c2d3e4f5a6b", i);

	/* 1. the cycle */
	for (i = 0; i < n / 10 + n; i++) {
		if (i == n / 10) {
			t0 = now_s();
			bytes = 0;
		}
		text_event(&ev, ids[i % 16], cycle[i % 4]);
		step_or_die(s, ctx, ctx_len, ctx_len > 0, &ev, &r);
		if (r.ctx_json) {
			memcpy(ctx, r.ctx_json, r.ctx_len);
			ctx_len = r.ctx_len;
			bytes += ctx_len;
			if (ctx_len > maxlen)
				maxlen = ctx_len;
		}
	}
	t = now_s() - t0;
	printf("cycle:     %8.0f ns/step  %9.0f steps/s  context mean %zu B, max %zu B\n", t * 1e9 / (double)n,
	       (double)n / t, bytes / n, maxlen);
	cyc = strndup(ctx, ctx_len);
	cyc_len = ctx_len;

	/* 2. a fixed context: a fresh conversation after a greeting, the
	 * intent and a delivery status (waiting_for_name, two entries in
	 * "recent"), then the name, every time */
	text_event(&ev, ids[10], "hola");
	step_or_die(s, NULL, 0, false, &ev, &r);
	memcpy(ctx, r.ctx_json, r.ctx_len);
	ctx_len = r.ctx_len;
	text_event(&ev, ids[11], "Quiero hacer una donación");
	step_or_die(s, ctx, ctx_len, true, &ev, &r);
	memcpy(ctx, r.ctx_json, r.ctx_len);
	ctx_len = r.ctx_len;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WA_KIND_STATUS;
	strcpy(ev.key, "+573001234567");
	ev.id.p = "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0";
	ev.id.len = strlen(ev.id.p);
	ev.status = WA_STATUS_READ;
	ev.ref_message_id.p = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
	ev.ref_message_id.len = strlen(ev.ref_message_id.p);
	step_or_die(s, ctx, ctx_len, true, &ev, &r);
	fixed = strndup(r.ctx_json, r.ctx_len);
	fixed_len = r.ctx_len;
	text_event(&ev, ids[12], "María Fernanda López");
	for (i = 0; i < n / 10 + n; i++) {
		if (i == n / 10)
			t0 = now_s();
		step_or_die(s, fixed, fixed_len, true, &ev, &r);
	}
	t = now_s() - t0;
	printf("fixed:     %8.0f ns/step  %9.0f steps/s  context in %zu B, out %zu B\n", t * 1e9 / (double)n,
	       (double)n / t, fixed_len, r.ctx_len);
	if (getenv("BENCH_SHOW"))
		printf("  in:  %s\n  out: %.*s\n", fixed, (int)r.ctx_len, r.ctx_json);

	/* 3. duplicate: the last event of the fixed context again */
	text_event(&ev, ids[11], "Quiero hacer una donación");
	for (i = 0; i < n / 10 + n; i++) {
		if (i == n / 10)
			t0 = now_s();
		step_or_die(s, fixed, fixed_len, true, &ev, &r);
	}
	t = now_s() - t0;
	printf("duplicate: %8.0f ns/step  (%zu replies re-emitted)\n", t * 1e9 / (double)n, r.nreplies);

	/* 4. status on the last cycle context */
	memset(&ev, 0, sizeof(ev));
	ev.kind = WA_KIND_STATUS;
	strcpy(ev.key, "+573001234567");
	ev.id.p = "st-1";
	ev.id.len = 4;
	ev.status = WA_STATUS_DELIVERED;
	ev.ref_message_id.p = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1";
	ev.ref_message_id.len = strlen(ev.ref_message_id.p);
	for (i = 0; i < n / 10 + n; i++) {
		if (i == n / 10)
			t0 = now_s();
		step_or_die(s, cyc, cyc_len, true, &ev, &r);
	}
	t = now_s() - t0;
	printf("status:    %8.0f ns/step  context %zu B\n", t * 1e9 / (double)n, cyc_len);

	free(cyc);
	free(fixed);
	free(ctx);
	flow_session_destroy(s);
	flow_destroy(f);
	return 0;
}
