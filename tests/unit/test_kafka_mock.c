/*
 * test_kafka_mock.c - the Kafka test kit against librdkafka's mock cluster:
 * wb-mock-kafka (flags, exit codes, clean stop), kafka_mock (spawn, stop)
 * and kafka_client (produce, read back, committed offsets), plus what the
 * 2.0.2 mock supports that the worker relies on: an idempotent producer,
 * offsets committed by a group, and a cooperative-sticky consumer group.
 * Every test starts its own mock and checks that it stops with exit code 0
 * (under ASan that includes LeakSanitizer's verdict on the mock process).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>

#include "kafka_client.h"
#include "kafka_mock.h"
#include "run_binary.h"
#include "test_clock.h"

#define INBOUND "wa.inbound"
#define INBOUND_PARTITIONS 16

/* Starts a mock with the default topics on `brokers` brokers, or fails the test. */
static struct kafka_mock *start_mock(int brokers)
{
	struct kafka_mock *km = kafka_mock_start(NULL, brokers);

	cr_assert_not_null(km, "wb-mock-kafka did not start");
	cr_assert(strncmp(kafka_mock_bootstrap(km), "127.0.0.1:", 10) == 0, "bootstrap %s",
		  kafka_mock_bootstrap(km));
	cr_assert_gt(kafka_mock_pid(km), 0);
	return km;
}

static void stop_mock(struct kafka_mock *km)
{
	cr_assert_eq(kafka_mock_stop(km), 0, "wb-mock-kafka did not exit cleanly");
}

static void produce_or_fail(const char *bootstrap, const char *topic, const struct kafka_rec *recs, size_t n)
{
	char err[512] = "";

	cr_assert_eq(kafka_produce(bootstrap, topic, recs, n, err, sizeof err), 0, "produce: %s", err);
}

Test(kafka_mock, records_come_back_with_keys_values_headers_in_partition_order, .timeout = 60)
{
	enum { N = 1000 };
	static char keys[N][16], values[N][32], seqs[N][16];
	static struct kafka_rec recs[N];
	static struct kafka_hdr hdrs[N][2];
	int64_t next_offset[INBOUND_PARTITIONS] = {0};
	int last_seq[INBOUND_PARTITIONS];
	bool seen[N] = {false};
	struct kafka_mock *km = start_mock(3);
	struct kafka_recs *got;

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "+5730%07d", i);
		snprintf(values[i], sizeof values[i], "{\"n\":%d}", i);
		snprintf(seqs[i], sizeof seqs[i], "%d", i);
		hdrs[i][0] = (struct kafka_hdr){.name = "seq", .value = seqs[i], .value_len = strlen(seqs[i])};
		hdrs[i][1] = (struct kafka_hdr){.name = "kind", .value = "text", .value_len = 4};
		recs[i] = (struct kafka_rec){
			.key = i % 100 == 7 ? NULL : keys[i], /* some records have no key */
			.key_len = strlen(keys[i]),
			.value = values[i],
			.value_len = strlen(values[i]),
			.partition = i % INBOUND_PARTITIONS,
			.headers = hdrs[i],
			.header_cnt = 2,
		};
		last_seq[i % INBOUND_PARTITIONS] = -1;
	}
	produce_or_fail(kafka_mock_bootstrap(km), INBOUND, recs, N);

	got = kafka_consume_all(kafka_mock_bootstrap(km), INBOUND, N, 300, 15000);
	cr_assert_not_null(got);
	cr_assert_eq(got->n, N, "read %zu of %d records", got->n, N);
	for (size_t j = 0; j < got->n; j++) {
		const struct kafka_msg *m = &got->msgs[j];
		const struct kafka_hdr *seq = kafka_msg_header(m, "seq"), *kind = kafka_msg_header(m, "kind");
		int i;

		cr_assert_str_eq(m->topic, INBOUND);
		cr_assert_not_null(seq);
		cr_assert_not_null(kind);
		cr_assert_str_eq(kind->value, "text");
		cr_assert_eq(m->header_cnt, 2);
		i = atoi(seq->value);
		cr_assert(i >= 0 && i < N && !seen[i], "seq %d twice or out of range", i);
		seen[i] = true;
		cr_assert_eq(m->partition, i % INBOUND_PARTITIONS);
		/* Per partition: offsets contiguous from 0, records in production order. */
		cr_assert_eq(m->offset, next_offset[m->partition], "partition %d offset %lld, expected %lld",
			     (int)m->partition, (long long)m->offset, (long long)next_offset[m->partition]);
		next_offset[m->partition]++;
		cr_assert_gt(i, last_seq[m->partition]);
		last_seq[m->partition] = i;
		if (i % 100 == 7) {
			cr_assert_null(m->key);
		} else {
			cr_assert_not_null(m->key);
			cr_assert_eq(m->key_len, strlen(keys[i]));
			cr_assert_str_eq(m->key, keys[i]);
		}
		cr_assert_eq(m->value_len, strlen(values[i]));
		cr_assert_str_eq(m->value, values[i]);
		cr_assert_gt(m->timestamp_ms, 0);
	}
	cr_assert_null(kafka_msg_header(&got->msgs[0], "missing"));
	kafka_recs_free(got);
	stop_mock(km);
}

Test(kafka_mock, same_key_goes_to_same_partition, .timeout = 30)
{
	enum { N = 64, KEYS = 4 };
	struct kafka_rec recs[N];
	char keys[KEYS][16];
	int32_t part_of[KEYS] = {-1, -1, -1, -1};
	struct kafka_mock *km = start_mock(1);
	struct kafka_recs *got;

	for (int k = 0; k < KEYS; k++)
		snprintf(keys[k], sizeof keys[k], "+57300%d", k);
	for (int i = 0; i < N; i++)
		recs[i] = (struct kafka_rec){.key = keys[i % KEYS], .key_len = strlen(keys[i % KEYS]),
					     .value = "x", .value_len = 1, .partition = KAFKA_PARTITION_BY_KEY};
	produce_or_fail(kafka_mock_bootstrap(km), "wa.outbound", recs, N);
	got = kafka_consume_all(kafka_mock_bootstrap(km), "wa.outbound", N, 200, 10000);
	cr_assert_not_null(got);
	cr_assert_eq(got->n, N);
	for (size_t j = 0; j < got->n; j++) {
		int k = ((const char *)got->msgs[j].key)[6] - '0';

		cr_assert(k >= 0 && k < KEYS);
		if (part_of[k] < 0)
			part_of[k] = got->msgs[j].partition;
		cr_assert_eq(got->msgs[j].partition, part_of[k]);
	}
	kafka_recs_free(got);
	stop_mock(km);
}

Test(kafka_mock, hundred_thousand_records_produce_and_read_back, .timeout = 120)
{
	enum { N = 100000 };
	struct kafka_rec *recs = calloc(N, sizeof(*recs));
	char (*vals)[16] = calloc(N, sizeof(*vals));
	struct kafka_mock *km = start_mock(1);
	struct kafka_recs *got;
	int64_t t0;

	cr_assert(recs && vals);
	for (int i = 0; i < N; i++) {
		snprintf(vals[i], sizeof vals[i], "%d", i);
		recs[i] = (struct kafka_rec){.key = vals[i], .key_len = strlen(vals[i]), .value = vals[i],
					     .value_len = strlen(vals[i]), .partition = KAFKA_PARTITION_BY_KEY};
	}
	t0 = test_now_ms();
	produce_or_fail(kafka_mock_bootstrap(km), INBOUND, recs, N);
	cr_log_info("produced %d records in %lld ms", N, (long long)(test_now_ms() - t0));
	t0 = test_now_ms();
	got = kafka_consume_all(kafka_mock_bootstrap(km), INBOUND, N, 300, 60000);
	cr_assert_not_null(got);
	cr_log_info("read %zu records in %lld ms", got->n, (long long)(test_now_ms() - t0));
	cr_assert_eq(got->n, N);
	kafka_recs_free(got);
	free(recs);
	free(vals);
	stop_mock(km);
}

Test(kafka_mock, offsets_committed_by_a_group_member_are_read_back, .timeout = 30)
{
	const char *const kv[] = {"group.id", "wb-test-simple", "enable.auto.commit", "false",
				  "log.connection.close", "false", NULL};
	struct kafka_mock *km = start_mock(1);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(2);
	char err[512];
	rd_kafka_t *rk;

	cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", kafka_mock_bootstrap(km), err, sizeof err),
		     RD_KAFKA_CONF_OK);
	for (int i = 0; kv[i]; i += 2)
		cr_assert_eq(rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err), RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	/* A member that assigned itself partitions commits without joining. */
	rd_kafka_topic_partition_list_add(offs, INBOUND, 3)->offset = 42;
	rd_kafka_topic_partition_list_add(offs, INBOUND, 15)->offset = 7;
	cr_assert_eq(rd_kafka_commit(rk, offs, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(offs);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);

	cr_assert_eq(kafka_committed(kafka_mock_bootstrap(km), "wb-test-simple", INBOUND, 3), 42);
	cr_assert_eq(kafka_committed(kafka_mock_bootstrap(km), "wb-test-simple", INBOUND, 15), 7);
	cr_assert_eq(kafka_committed(kafka_mock_bootstrap(km), "wb-test-simple", INBOUND, 4), KAFKA_OFFSET_NONE);
	cr_assert_eq(kafka_committed(kafka_mock_bootstrap(km), "wb-test-other", INBOUND, 3), KAFKA_OFFSET_NONE);
	stop_mock(km);
}

/* What the rebalance callback saw. Thread: the test's (callbacks are served
 * by rd_kafka_consumer_poll). */
struct rebalance_log {
	int assigned;       /* partitions currently assigned */
	int assign_events;
	int revoke_events;
	bool cooperative;   /* rd_kafka_rebalance_protocol() said COOPERATIVE */
	bool failed;        /* an (incremental_)assign call failed */
};

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	struct rebalance_log *log = opaque;
	rd_kafka_error_t *error = NULL;

	log->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		log->assign_events++;
		if (log->cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			log->failed |= rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR;
		log->assigned += parts->cnt;
	} else {
		log->revoke_events++;
		if (log->cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			log->failed |= rd_kafka_assign(rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR;
		log->assigned -= log->cooperative ? parts->cnt : log->assigned;
	}
	if (error) {
		log->failed = true;
		rd_kafka_error_destroy(error);
	}
}

/*
 * One cooperative-sticky member gets all 16 partitions through an
 * incremental assignment, reads what was produced, commits synchronously,
 * and kafka_committed sees the commit. The mock delays a group's first
 * join by about 3 s.
 */
Test(kafka_mock, cooperative_sticky_member_gets_every_partition_and_commits, .timeout = 60)
{
	enum { PER_PARTITION = 2, N = INBOUND_PARTITIONS * PER_PARTITION };
	const char *const kv[] = {"group.id", "wb-test-coop", "partition.assignment.strategy", "cooperative-sticky",
				  "enable.auto.commit", "false", "auto.offset.reset", "earliest",
				  "session.timeout.ms", "6000", "log.connection.close", "false", NULL};
	struct kafka_rec recs[N];
	struct rebalance_log log = {0};
	struct kafka_mock *km = start_mock(3);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	int64_t deadline = test_now_ms() + 20000;
	char err[512];
	rd_kafka_t *rk;
	int got = 0;

	for (int i = 0; i < N; i++)
		recs[i] = (struct kafka_rec){.value = "m", .value_len = 1, .partition = i % INBOUND_PARTITIONS};
	produce_or_fail(kafka_mock_bootstrap(km), INBOUND, recs, N);

	cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", kafka_mock_bootstrap(km), err, sizeof err),
		     RD_KAFKA_CONF_OK);
	for (int i = 0; kv[i]; i += 2)
		cr_assert_eq(rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	rd_kafka_conf_set_opaque(conf, &log);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_add(topics, INBOUND, RD_KAFKA_PARTITION_UA);
	cr_assert_eq(rd_kafka_subscribe(rk, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(topics);

	while ((got < N || log.assigned < INBOUND_PARTITIONS) && test_now_ms() < deadline) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

		if (!rkm)
			continue;
		if (!rkm->err)
			got++;
		else
			cr_log_warn("consumer: %s", rd_kafka_message_errstr(rkm));
		rd_kafka_message_destroy(rkm);
	}
	cr_assert(log.cooperative, "rebalance protocol %s", rd_kafka_rebalance_protocol(rk));
	cr_assert_not(log.failed, "incremental assign/unassign failed");
	cr_assert_eq(log.assigned, INBOUND_PARTITIONS, "assigned %d partitions", log.assigned);
	cr_assert_geq(log.assign_events, 1);
	cr_assert_eq(got, N, "read %d of %d records", got, N);
	cr_assert_eq(rd_kafka_commit(rk, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);

	for (int32_t p = 0; p < INBOUND_PARTITIONS; p++)
		cr_assert_eq(kafka_committed(kafka_mock_bootstrap(km), "wb-test-coop", INBOUND, p), PER_PARTITION,
			     "partition %d", (int)p);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	stop_mock(km);
}

Test(kafka_mock, bad_flags_exit_2_with_a_message, .timeout = 30)
{
	static const char *const bad[] = {
		"--brokers 0", "--brokers 9", "--brokers x", "--brokers", "--topic wa.inbound",
		"--topic wa.inbound:0", "--topic 'bad name:4'", "--topic :4", "--topic a:1 --topic a:2", "--nope",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct run_result r;

		cr_assert_eq(run_binary(&r, kafka_mock_binary(), "", bad[i]), 0);
		cr_assert_eq(r.status, 2, "%s: exit %d", bad[i], r.status);
		cr_assert_eq(r.out_len, 0, "%s: stdout %s", bad[i], r.out);
		cr_assert(strstr(r.err, "wb-mock-kafka: ") != NULL, "%s: stderr %s", bad[i], r.err);
		run_result_fini(&r);
	}
	cr_assert_null(kafka_mock_start("wa.inbound:0", 1));
	cr_assert_null(kafka_mock_start("wa.inbound:4", 0));
}

Test(kafka_mock, help_and_stdin_eof_exit_0, .timeout = 30)
{
	struct run_result r;

	cr_assert_eq(run_binary(&r, kafka_mock_binary(), "", "--help"), 0);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "--topic NAME:PARTITIONS") != NULL);
	run_result_fini(&r);

	/* stdin at EOF from the start: ready, prints its line, stops cleanly. */
	cr_assert_eq(run_binary(&r, kafka_mock_binary(), "", "--exit-on-stdin-eof --brokers 2 </dev/null"), 0);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_assert(strncmp(r.out, "bootstrap=127.0.0.1:", 20) == 0, "stdout %s", r.out);
	cr_assert(strchr(r.out, ',') != NULL, "two brokers: %s", r.out);
	cr_assert_eq(strchr(r.out, '\n') - r.out + 1, (long)r.out_len, "exactly one line: %s", r.out);
	run_result_fini(&r);
}

Test(kafka_mock, custom_topics_exist_with_their_partition_counts, .timeout = 30)
{
	struct kafka_mock *km = kafka_mock_start("t.one:3,t.two:1", 2);
	struct kafka_rec rec = {.value = "v", .value_len = 1, .partition = 2};
	struct kafka_recs *got;
	char err[256];

	cr_assert_not_null(km);
	produce_or_fail(kafka_mock_bootstrap(km), "t.one", &rec, 1);
	rec.partition = 3; /* t.one has partitions 0..2 only */
	cr_assert_eq(kafka_produce(kafka_mock_bootstrap(km), "t.one", &rec, 1, err, sizeof err), -1);
	cr_log_info("partition 3 of a 3-partition topic: %s", err);
	got = kafka_consume_all(kafka_mock_bootstrap(km), "t.one", 1, 100, 5000);
	cr_assert_not_null(got);
	cr_assert_eq(got->n, 1);
	cr_assert_eq(got->msgs[0].partition, 2);
	kafka_recs_free(got);
	/* Readers do not auto-create topics. */
	cr_assert_null(kafka_consume_all(kafka_mock_bootstrap(km), "no.such.topic", 0, 100, 5000));
	stop_mock(km);
}

/* true while pid exists and is not a zombie waiting for a reaper. */
static bool process_alive(pid_t pid)
{
	char path[64], stat[256] = "";
	const char *state;
	FILE *f;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(stat, sizeof stat, f))
		stat[0] = '\0';
	fclose(f);
	state = strrchr(stat, ')'); /* "pid (comm) S ..." */
	return !(state && state[1] == ' ' && state[2] == 'Z');
}

/* A harness that dies without stopping its mock does not leave it behind:
 * the mock sees EOF on stdin and exits. */
Test(kafka_mock, mock_exits_when_the_process_that_started_it_dies, .timeout = 30)
{
	int fds[2];
	pid_t child, mock = 0;
	int64_t deadline;
	int st;

	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct kafka_mock *km = kafka_mock_start(NULL, 1);
		pid_t pid = km ? kafka_mock_pid(km) : 0;

		close(fds[0]);
		if (write(fds[1], &pid, sizeof pid) != sizeof pid)
			_exit(1);
		for (;;)
			pause(); /* until the SIGKILL below: no kafka_mock_stop, no cleanup */
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &mock, sizeof mock), (ssize_t)sizeof mock);
	close(fds[0]);
	kill(child, SIGKILL);
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert_gt(mock, 0);
	deadline = test_now_ms() + 5000;
	while (process_alive(mock) && test_now_ms() < deadline)
		test_sleep_ms(20);
	if (process_alive(mock)) {
		kill(mock, SIGKILL);
		cr_assert_fail("wb-mock-kafka pid %ld outlived its parent", (long)mock);
	}
}
