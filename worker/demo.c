/*
 * demo.c - `wabot-worker demo`: the whole worker against a Kafka of its own.
 *
 * With no KAFKA_BROKERS it starts librdkafka's mock cluster in-process
 * (rdkafka_mock.h: the real Kafka protocol over loopback sockets), creates
 * the three topics, produces the sample recording embedded in the binary
 * into the inbound topic, runs the real worker (consumer group, lanes,
 * context store, producer, commits) and prints every reply and dead letter
 * as it arrives on the outbound and DLQ topics, one readable line each
 * (phones masked). It stops once every record is done and every output has
 * been read, shuts the worker down as SIGTERM would, and exits 0.
 * With KAFKA_BROKERS set it does the same against that cluster (the topics
 * must exist there).
 * Owns: the mock cluster and its handle, a producer for the recording, a
 * reader for the outputs, the worker.
 */
#include "demo.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "replay.h"
#include "run.h"

#define DEMO_PARTITIONS 4
#define DEMO_TIMEOUT_S 60

static int produce_one(void *opaque, const char *key, size_t key_len, const char *payload, size_t len)
{
	rd_kafka_t *rk = ((void **)opaque)[0];
	const char *topic = ((void **)opaque)[1];
	rd_kafka_resp_err_t err;

	while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? key_len : 0),
					RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(rk, 10);
	if (err)
		fprintf(stderr, "wabot-worker demo: cannot produce the recording: %s\n", rd_kafka_err2str(err));
	return err ? -1 : 0;
}

/* A plain client of the demo's cluster (producer, or reader without group). */
static rd_kafka_t *client(const struct wb_config *cfg, const char *brokers, rd_kafka_type_t type)
{
	rd_kafka_conf_t *conf;
	char errstr[512];
	rd_kafka_t *rk;

	if (!(conf = kafka_conf_new(cfg, type == RD_KAFKA_CONSUMER ? KAFKA_READER : KAFKA_PRODUCER, brokers, errstr,
				    sizeof(errstr)))) {
		fprintf(stderr, "wabot-worker demo: %s\n", errstr);
		return NULL;
	}
	if (!(rk = rd_kafka_new(type, conf, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "wabot-worker demo: %s\n", errstr);
	}
	return rk;
}

/* Assigns every partition of the outbound and DLQ topics from the start. */
static int read_outputs_from_start(rd_kafka_t *reader, const struct wb_config *cfg)
{
	const char *topics[2] = {cfg->outbound_topic, cfg->dlq_topic};
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2 * DEMO_PARTITIONS);
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	int t, i, p;

	if ((err = rd_kafka_metadata(reader, 1, NULL, &md, 10000))) {
		fprintf(stderr, "wabot-worker demo: no metadata from Kafka: %s\n", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(l);
		return -1;
	}
	for (t = 0; t < 2; t++)
		for (i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, topics[t]) == 0)
				for (p = 0; p < md->topics[i].partition_cnt; p++)
					rd_kafka_topic_partition_list_add(l, topics[t], md->topics[i].partitions[p].id)
						->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	err = rd_kafka_assign(reader, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err)
		fprintf(stderr, "wabot-worker demo: cannot read the outputs: %s\n", rd_kafka_err2str(err));
	return err ? -1 : 0;
}

static void *worker_thread(void *arg)
{
	return (void *)(intptr_t)consumer_run(arg);
}

static void usage(void)
{
	printf("usage: wabot-worker demo [configuration flags]\n\n"
	       "Runs the real worker against a Kafka of its own: librdkafka's mock cluster,\n"
	       "started in this process on loopback (unless KAFKA_BROKERS is set). Plays the\n"
	       "sample recording shipped in the binary (four users donating at once over ACS\n"
	       "and Meta, delivery statuses, a redelivered event, a broken record) into the\n"
	       "inbound topic and prints each reply and dead letter as it arrives on the\n"
	       "outbound and DLQ topics, one line each (phones masked). The context store is\n"
	       "memory unless Redis is configured.\n\n");
	config_usage(stdout);
}

int demo_main(int argc, char **argv, char **envp)
{
	struct wb_config cfg;
	struct run_parts parts = {0};
	rd_kafka_t *mock_rk = NULL, *prod = NULL, *reader = NULL;
	rd_kafka_mock_cluster_t *mc = NULL;
	consumer_t *c = NULL;
	pthread_t wt;
	bool worker_started = false;
	char errstr[512];
	const char *brokers;
	void *prod_args[2];
	long records;
	uint64_t outputs = 0, replies = 0, dlq = 0;
	double t0 = clock_mono_s(), quiet_since = 0;
	int rc = 1, i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		}
	if (config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wabot-worker demo: %s\n", errstr);
		return 2;
	}
	log_set_level(cfg.log_level);
	if ((rc = run_parts_new(&cfg, false, &parts, errstr, sizeof(errstr))) != 0) {
		fprintf(stderr, "wabot-worker demo: %s\n", errstr);
		config_fini(&cfg);
		return rc;
	}
	rc = 1;
	run_block_signals();
	brokers = cfg.kafka_brokers;
	if (!brokers[0]) {
		rd_kafka_conf_t *conf = rd_kafka_conf_new();

		rd_kafka_conf_set_log_cb(conf, NULL);
		if (!(mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) ||
		    !(mc = rd_kafka_mock_cluster_new(mock_rk, 1))) {
			fprintf(stderr, "wabot-worker demo: cannot start the mock Kafka cluster\n");
			goto out;
		}
		brokers = rd_kafka_mock_cluster_bootstraps(mc);
		rd_kafka_mock_topic_create(mc, cfg.inbound_topic, DEMO_PARTITIONS, 1);
		rd_kafka_mock_topic_create(mc, cfg.outbound_topic, DEMO_PARTITIONS, 1);
		rd_kafka_mock_topic_create(mc, cfg.dlq_topic, 1, 1);
		log_at(LOG_INFO, "mock Kafka cluster started", LOG_STR("bootstrap", brokers));
	}

	/* the recording, into the inbound topic */
	if (!(prod = client(&cfg, brokers, RD_KAFKA_PRODUCER)))
		goto out;
	prod_args[0] = prod;
	prod_args[1] = cfg.inbound_topic;
	if ((records = replay_each_demo_record(produce_one, prod_args)) < 0)
		goto out;
	if (rd_kafka_flush(prod, 10000)) {
		fprintf(stderr, "wabot-worker demo: the recording was not acknowledged by Kafka\n");
		goto out;
	}
	printf("demo: %ld recorded events produced to %s (Kafka at %s)\n", records, cfg.inbound_topic, brokers);
	fflush(stdout);

	/* the worker, on its own thread as in `run` */
	if (!(c = consumer_new(&cfg, parts.flow, parts.store, parts.fallback, brokers, errstr, sizeof(errstr)))) {
		fprintf(stderr, "wabot-worker demo: %s\n", errstr);
		goto out;
	}
	run_log_start(&cfg, &parts);
	if (pthread_create(&wt, NULL, worker_thread, c) != 0)
		goto out;
	worker_started = true;

	/* the outputs, as they arrive */
	if (!(reader = client(&cfg, brokers, RD_KAFKA_CONSUMER)) || read_outputs_from_start(reader, &cfg) != 0)
		goto out;
	while (clock_mono_s() - t0 < DEMO_TIMEOUT_S) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 100);
		struct consumer_stats cs;
		struct lanes_stats ls;

		if (m && !m->err) {
			bool is_dlq = strcmp(rd_kafka_topic_name(m->rkt), cfg.dlq_topic) == 0;
			struct pipeline_output o = {is_dlq ? PIPELINE_OUT_DLQ : PIPELINE_OUT_REPLY,
						    m->key ? m->key : "", m->key ? m->key_len : 0, m->payload,
						    m->len, NULL};

			replay_print_text(stdout, &o);
			fflush(stdout);
			outputs++;
			if (is_dlq)
				dlq++;
			else
				replies++;
			quiet_since = clock_mono_s();
		}
		if (m)
			rd_kafka_message_destroy(m);
		consumer_get_stats(c, &cs, &ls);
		if (cs.done + cs.failed >= (uint64_t)records && outputs >= ls.replies + ls.dlq &&
		    clock_mono_s() - quiet_since > 0.3) {
			rc = cs.failed ? 1 : 0;
			break;
		}
	}
	if (rc != 0)
		fprintf(stderr, "wabot-worker demo: not every record was done within %d s\n", DEMO_TIMEOUT_S);
out:
	if (worker_started) {
		void *wrc;

		consumer_stop(c);
		pthread_join(wt, &wrc);
		if ((intptr_t)wrc != 0)
			rc = 1;
		consumer_finish(c);
		run_log_stats(c, clock_mono_s() - t0);
	}
	if (rc == 0)
		printf("demo: %ld events in, %llu replies and %llu dead letters out, every offset committed, "
		       "worker shut down cleanly\n",
		       records, (unsigned long long)replies, (unsigned long long)dlq);
	consumer_destroy(c);
	if (reader) {
		rd_kafka_consumer_close(reader);
		rd_kafka_destroy(reader);
	}
	if (prod)
		rd_kafka_destroy(prod);
	if (mc)
		rd_kafka_mock_cluster_destroy(mc);
	if (mock_rk)
		rd_kafka_destroy(mock_rk);
	run_parts_fini(&parts);
	config_fini(&cfg);
	return rc;
}
