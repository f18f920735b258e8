/*
 * stress_worker.c - the whole worker (consumer thread, lanes, producer
 * delivery reports, offset tracking, rebalance drain) in this process, for
 * ThreadSanitizer and valgrind, which criterion cannot host.
 *
 * Starts wb-mock-kafka (librdkafka's mock cluster, as a separate process:
 * the mock itself cannot run under TSan; WB_MOCK_KAFKA overrides the
 * program, so a TSan build can use a plain one), produces EVENTS events
 * (STRESS_WORKER_EVENTS, default 2000) over
 * PHONES phones keyed by phone, runs consumer_run on a thread with
 * WORKER_THREADS lanes over a shared memory store, waits until every record
 * is done, stops it (the shutdown drain and commit), and checks that every
 * event got its reply and that the group committed the end of every
 * partition. Meanwhile a scraper thread reads /metrics, /healthz and
 * /readyz (telemetry.c: the HTTP thread and the refresh thread reading the
 * consumer's state as it changes), and the last scrape must count every
 * record done. Exit 0 when all holds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdatomic.h>

#include "config.h"
#include "consumer.h"
#include "free_port.h"
#include "http_client.h"
#include "telemetry.h"
#include "kafka_client.h"
#include "kafka_mock.h"
#include "lanes.h"
#include "log.h"
#include "payloads.h"
#include "run.h"

#define EVENTS_DEFAULT 2000
#define PHONES 100
#define PARTITIONS 8

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run_thread(void *arg)
{
	return (void *)(intptr_t)consumer_run(arg);
}

static atomic_bool scraping = true;
static atomic_uint scrapes;

/* Scrapes the three endpoints until told to stop. */
static void *scrape_thread(void *arg)
{
	static const char *const paths[] = {"/metrics", "/healthz", "/readyz"};
	int port = (int)(intptr_t)arg;
	unsigned i = 0;

	while (atomic_load(&scraping)) {
		struct http_reply r;

		struct timespec ts = {0, 2 * 1000000L};

		if (http_client_get(port, "GET", paths[i++ % 3], 5000, &r) == 0 && r.status > 0)
			atomic_fetch_add(&scrapes, 1);
		http_reply_fini(&r);
		nanosleep(&ts, NULL); /* a scraper, not a load test */
	}
	return NULL;
}

int main(void)
{
	const char *ev = getenv("STRESS_WORKER_EVENTS");
	const size_t EVENTS = (size_t)(ev && atoi(ev) > 0 && atoi(ev) <= 100000 ? atoi(ev) : EVENTS_DEFAULT);
	char (*payloads)[1024] = calloc((size_t)EVENTS, sizeof(*payloads));
	char (*keys)[24] = calloc((size_t)EVENTS, sizeof(*keys));
	struct kafka_rec *recs = calloc((size_t)EVENTS, sizeof(*recs));
	struct kafka_mock *km;
	struct wb_config cfg;
	struct run_parts parts;
	struct consumer_stats cs;
	struct lanes_stats ls;
	struct kafka_recs *out;
	consumer_t *c;
	pthread_t t;
	void *rc;
	char errstr[512];
	char port[16];
	char *argv[] = {"--worker-threads", "3", "--log-level", "warn", "--http-port", port};
	struct telemetry_opts to;
	telemetry_t *tel;
	pthread_t scraper;
	struct http_reply last;
	double t0;
	int i, failures = 0;
	size_t committed_ok = 0;

	km = kafka_mock_start("wa.inbound:8,wa.outbound:8,wa.dlq:1", 1);
	if (!km || !recs || !payloads || !keys) {
		fprintf(stderr, "stress_worker: cannot start the mock cluster\n");
		return 1;
	}
	for (i = 0; i < (int)EVENTS; i++) {
		int phone = i % PHONES, k = i / PHONES;
		char digits[16];
		int len;

		snprintf(digits, sizeof(digits), "5730000%05d", phone);
		snprintf(keys[i], sizeof(keys[i]), "+%s", digits);
		len = payload_text(payloads[i], sizeof(payloads[i]), i & 1, digits, (uint64_t)i + 1,
				   payload_cycle_text[k % 4]);
		recs[i] = (struct kafka_rec){.key = keys[i], .key_len = strlen(keys[i]), .value = payloads[i],
					     .value_len = (size_t)len, .partition = KAFKA_PARTITION_BY_KEY};
	}
	if (kafka_produce(kafka_mock_bootstrap(km), "wa.inbound", recs, EVENTS, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "stress_worker: produce: %s\n", errstr);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", free_port());
	if (config_load(&cfg, 6, argv, NULL, errstr, sizeof(errstr)) != WB_OK ||
	    run_parts_new(&cfg, false, &parts, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "stress_worker: %s\n", errstr);
		return 1;
	}
	log_set_level(cfg.log_level);
	c = consumer_new(&cfg, parts.flow, parts.store, NULL, kafka_mock_bootstrap(km), errstr, sizeof(errstr));
	to = (struct telemetry_opts){&cfg, c, parts.store, NULL, "127.0.0.1"};
	if (!c || !(tel = telemetry_new(&to, errstr, sizeof(errstr))) || pthread_create(&t, NULL, run_thread, c) != 0 ||
	    pthread_create(&scraper, NULL, scrape_thread, (void *)(intptr_t)telemetry_port(tel)) != 0) {
		fprintf(stderr, "stress_worker: %s\n", errstr);
		return 1;
	}
	t0 = mono_s();
	do {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
		consumer_get_stats(c, &cs, &ls);
	} while (cs.done < EVENTS && mono_s() - t0 < 120);
	/* Progress must be committed while the worker runs, not only at its
	 * shutdown: a member killed with SIGKILL leaves only what it committed
	 * (the end offset of each partition, summed, is EVENTS). */
	{
		double t1 = mono_s();
		int64_t sum = 0;

		while (mono_s() - t1 < 5) {
			sum = 0;
			for (i = 0; i < PARTITIONS; i++) {
				int64_t o = kafka_committed(kafka_mock_bootstrap(km), cfg.group_id, "wa.inbound", i);

				sum += o > 0 ? o : 0;
			}
			if (sum == (int64_t)EVENTS)
				break;
		}
		if (sum != (int64_t)EVENTS) {
			fprintf(stderr, "stress_worker: %lld of %d offsets committed 5 s after the last record was done\n",
				(long long)sum, (int)EVENTS);
			failures++;
		}
	}
	atomic_store(&scraping, false);
	pthread_join(scraper, NULL);
	if (http_client_get(telemetry_port(tel), "GET", "/metrics", 5000, &last) != 0 || last.status != 200 ||
	    !strstr(last.body, "\nwabot_records_done_total ") ||
	    strtoull(strstr(last.body, "\nwabot_records_done_total ") + strlen("\nwabot_records_done_total "), NULL, 10) !=
		    EVENTS) {
		fprintf(stderr, "stress_worker: /metrics does not count %d records done (%u scrapes before)\n",
			(int)EVENTS, atomic_load(&scrapes));
		failures++;
	}
	http_reply_fini(&last);
	consumer_stop(c);
	pthread_join(t, &rc);
	telemetry_destroy(tel);
	consumer_get_stats(c, &cs, &ls);
	consumer_destroy(c);
	if ((intptr_t)rc != 0 || cs.done != EVENTS || ls.replies < EVENTS || ls.dlq != 0) {
		fprintf(stderr, "stress_worker: run %ld, done %llu, replies %llu, dead letters %llu (want %d/%d/0)\n",
			(long)(intptr_t)rc, (unsigned long long)cs.done, (unsigned long long)ls.replies,
			(unsigned long long)ls.dlq, (int)EVENTS, (int)EVENTS);
		failures++;
	}
	out = kafka_consume_all(kafka_mock_bootstrap(km), "wa.outbound", EVENTS, 500, 30000);
	if (!out || out->n != EVENTS) {
		fprintf(stderr, "stress_worker: %zu replies on the outbound topic, want %d\n", out ? out->n : 0, (int)EVENTS);
		failures++;
	}
	kafka_recs_free(out);
	out = kafka_consume_all(kafka_mock_bootstrap(km), "wa.inbound", EVENTS, 200, 30000);
	for (i = 0; out && i < PARTITIONS; i++) {
		int64_t end = -1;
		size_t j;

		for (j = 0; j < out->n; j++)
			if (out->msgs[j].partition == i && out->msgs[j].offset + 1 > end)
				end = out->msgs[j].offset + 1;
		if (end < 0 || kafka_committed(kafka_mock_bootstrap(km), cfg.group_id, "wa.inbound", i) == end)
			committed_ok++;
		else
			fprintf(stderr, "stress_worker: partition %d committed %lld, end %lld\n", i,
				(long long)kafka_committed(kafka_mock_bootstrap(km), cfg.group_id, "wa.inbound", i),
				(long long)end);
	}
	if (committed_ok != PARTITIONS)
		failures++;
	kafka_recs_free(out);
	free(payloads);
	free(keys);
	run_parts_fini(&parts);
	config_fini(&cfg);
	kafka_mock_stop(km);
	free(recs);
	if (failures)
		return 1;
	printf("stress_worker: %d events, every reply produced and every offset committed in %.1f s (%u scrapes)\n",
	       (int)EVENTS, mono_s() - t0, atomic_load(&scrapes));
	return 0;
}
