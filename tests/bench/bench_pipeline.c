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
 *   ./build/bench_pipeline [-n events] [-p phones] [-f acs|meta|mixed]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx_store.h"
#include "flow.h"
#include "log.h"
#include "pipeline.h"

static const char *const cycle_text[4] = {"Hola, quiero hacer una donaci\xc3\xb3n", "Juan P\xc3\xa9rez",
					  "Ministerio de Educaci\xc3\xb3n", "si"};
static const char *const cycle_step[4] = {"waiting_for_name", "waiting_for_ministry", "waiting_for_confirmation",
					  "completed"};

struct bench_ctx {
	uint64_t replies;
	uint64_t bad_steps;
	uint64_t dlq;
	int expect; /* index into cycle_step for the event being processed */
};

static wb_err_t bench_emit(void *opaque, enum pipeline_out out, const char *key, size_t key_len, const char *value,
			   size_t len)
{
	struct bench_ctx *b = opaque;
	char want[64];

	(void)key;
	(void)key_len;
	if (out == PIPELINE_OUT_DLQ) {
		b->dlq++;
		return WB_OK;
	}
	b->replies++;
	snprintf(want, sizeof(want), "\"conversation_step\":\"%s\"", cycle_step[b->expect]);
	/* the envelope names the step near its start */
	if (!memmem(value, len < 400 ? len : 400, want, strlen(want)))
		b->bad_steps++;
	return WB_OK;
}

/* One compact event payload like the providers send. */
static int make_payload(char *buf, size_t cap, int meta, const char *phone_digits, uint64_t seq, const char *text)
{
	if (meta)
		return snprintf(buf, cap,
				"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102938475610293\","
				"\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
				"\"display_phone_number\":\"573209990001\",\"phone_number_id\":\"109283746501928\"},"
				"\"contacts\":[{\"profile\":{\"name\":\"Juan\"},\"wa_id\":\"%s\"}],\"messages\":[{"
				"\"from\":\"%s\",\"id\":\"wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgU%016llx\",\"timestamp\":"
				"\"1795183391\",\"text\":{\"body\":\"%s\"},\"type\":\"text\"}]},\"field\":\"messages\"}]}]}",
				phone_digits, phone_digits, (unsigned long long)seq, text);
	return snprintf(buf, cap,
			"[{\"id\":\"%08llx-1f2e-4d3c-8b4a-59687a6b7c8d\",\"topic\":\"/subscriptions/5a1b2c3d-0000-4000-"
			"8000-000000000001/resourceGroups/rg-donaciones/providers/Microsoft.Communication/"
			"communicationServices/acs-donaciones\",\"subject\":\"advancedMessage/sender/%s/recipient/"
			"2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"data\":{\"channelType\":\"whatsapp\",\"from\":\"%s\","
			"\"to\":\"2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"receivedTimestamp\":"
			"\"2026-11-20T14:03:11+00:00\",\"messageId\":\"4a3769ff-6d2c-4a8e-9c1e-%012llx\","
			"\"messageType\":\"text\",\"content\":\"%s\"},\"eventType\":"
			"\"Microsoft.Communication.AdvancedMessageReceived\",\"dataVersion\":\"1.0\","
			"\"metadataVersion\":\"1\",\"eventTime\":\"2026-11-20T14:03:12.4817733Z\"}]",
			(unsigned long long)seq, phone_digits, phone_digits, (unsigned long long)seq, text);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
		len = make_payload(buf, sizeof(buf), meta, digits, i, cycle_text[round % 4]);
		payloads[i] = malloc((size_t)len + 1);
		memcpy(payloads[i], buf, (size_t)len + 1);
		lens[i] = (size_t)len;
		total_bytes += (size_t)len;
	}
	t0 = now_s();
	c0 = cpu_s();
	for (i = 0; i < n; i++) {
		b.expect = (int)((i / phones) % 4);
		if (pipeline_process(p, NULL, payloads[i], lens[i], 1795183391, bench_emit, &b) != WB_OK) {
			fprintf(stderr, "pipeline failed at event %llu\n", (unsigned long long)i);
			return 1;
		}
	}
	dt = now_s() - t0;
	dc = cpu_s() - c0;
	printf("bench_pipeline: %llu events (%s payloads, avg %zu bytes), %llu phones, 1 thread, memory store\n",
	       (unsigned long long)n, fmt, total_bytes / n, (unsigned long long)phones);
	printf("  decode + store get + flow step + store put + reply encode: %.0f events/s, %.2f us/event wall, "
	       "%.2f CPU-us/event\n",
	       (double)n / dt, dt * 1e6 / (double)n, dc * 1e6 / (double)n);
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
