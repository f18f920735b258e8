/*
 * itest_lag.c - `wabot-worker lag` against librdkafka's mock cluster
 * (wb-mock-kafka) and a real worker process: events produced while no
 * worker runs show as lag, exactly, per partition and in total (JSON and
 * table); --max-lag gates with exit code 3; once a worker has answered
 * everything and committed, the lag reads 0 with committed = high. Also the
 * failures a person meets: no broker, a missing topic, bad flags.
 * The 2.0.2 mock cannot describe groups, so owners are "unknown" here with
 * the reason; the assignment parser behind owners is tested in test_lag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "itest_util.h"
#include "kafka_client.h"
#include "run_binary.h"

#define PHONES 60
#define EVENTS 600

static struct itest_harness *h;
static struct itest_stream *s;

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	h = NULL;
	s = NULL;
}

/* Runs `wabot-worker lag <args>` for the harness's group. */
static void lag(struct run_result *r, const char *brokers, const char *extra_env, const char *args)
{
	char env[512], full[256];

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s KAFKA_GROUP_ID=%s LOG_LEVEL=error %s", brokers, h->group,
		 extra_env ? extra_env : "");
	snprintf(full, sizeof full, "lag %s", args);
	IT_ASSERT(h, run_binary(r, WB_WORKER_BIN, env, full) == 0, "cannot run wabot-worker lag");
}

static int64_t get_i64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
											       : -1;
}

/* Checks `lag --json` against hwm (events per partition) and the committed
 * offsets expected (-1: none); returns the total lag it printed. */
static int64_t check_json(const int64_t hwm[ITEST_INBOUND_PARTITIONS], bool committed_at_end)
{
	struct run_result r;
	struct json_object *doc, *parts, *v;
	int64_t total = 0;
	size_t i;

	lag(&r, h->bootstrap, NULL, "--json");
	IT_ASSERT(h, r.status == 0, "lag --json exited %d: %s", r.status, r.err);
	doc = json_tokener_parse(r.out);
	IT_ASSERT(h, doc != NULL, "lag --json printed no JSON: %s", r.out);
	IT_ASSERT(h, json_object_object_get_ex(doc, "partitions", &parts) && json_object_array_length(parts) ==
									     ITEST_INBOUND_PARTITIONS,
		  "partitions missing or not %d: %s", ITEST_INBOUND_PARTITIONS, r.out);
	IT_ASSERT(h, json_object_object_get_ex(doc, "group", &v) && strcmp(json_object_get_string(v), h->group) == 0,
		  "group: %s", r.out);
	for (i = 0; i < ITEST_INBOUND_PARTITIONS; i++) {
		struct json_object *p = json_object_array_get_idx(parts, i), *c;
		int64_t want_committed = committed_at_end && hwm[i] > 0 ? hwm[i] : -1;

		IT_ASSERT(h, get_i64(p, "partition") == (int64_t)i, "partition %zu out of order", i);
		IT_ASSERT(h, get_i64(p, "high") == hwm[i], "partition %zu: high %lld, produced %lld", i,
			  (long long)get_i64(p, "high"), (long long)hwm[i]);
		IT_ASSERT(h, json_object_object_get_ex(p, "committed", &c), "partition %zu: no committed", i);
		if (want_committed < 0)
			IT_ASSERT(h, c == NULL, "partition %zu: committed %s, want null", i, json_object_get_string(c));
		else
			IT_ASSERT(h, get_i64(p, "committed") == want_committed, "partition %zu: committed %lld, want %lld",
				  i, (long long)get_i64(p, "committed"), (long long)want_committed);
		IT_ASSERT(h, get_i64(p, "lag") == (committed_at_end ? 0 : hwm[i]), "partition %zu: lag %lld", i,
			  (long long)get_i64(p, "lag"));
		total += get_i64(p, "lag");
	}
	IT_ASSERT(h, get_i64(doc, "total_lag") == total, "total_lag %lld, partitions add up to %lld",
		  (long long)get_i64(doc, "total_lag"), (long long)total);
	/* the 2.0.2 mock cannot describe groups: owners unknown, with the reason */
	IT_ASSERT(h, json_object_object_get_ex(doc, "owners_error", &v) && v != NULL, "owners_error: %s", r.out);
	json_object_put(doc);
	run_result_fini(&r);
	return total;
}

Test(itest_lag, backlog_shows_as_lag_per_partition_and_drops_to_zero_once_a_worker_committed, .fini = teardown,
     .timeout = 180)
{
	char err[4096] = "";
	struct run_result r;
	struct kafka_recs *out;
	int64_t hwm[ITEST_INBOUND_PARTITIONS];
	size_t problems;
	int w;

	h = itest_harness_new("lag", false);
	cr_assert_not_null(h, "the mock cluster did not start");
	s = itest_stream_new(PHONES, EVENTS, 0x1a9, false);
	cr_assert_not_null(s);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, EVENTS, err, sizeof err) == 0, "produce: %s", err);
	problems = itest_check_inbound_and_dlq(h->bootstrap, h->group, s, EVENTS, true, hwm, err, sizeof err);
	IT_ASSERT(h, problems == 0, "inbound topic: %s", err);

	/* no worker yet: everything is lag */
	IT_ASSERT(h, check_json(hwm, false) == EVENTS, "total lag is not the %d events produced", EVENTS);

	/* the gate: above --max-lag is exit 3, at it is 0; the table says the same */
	lag(&r, h->bootstrap, NULL, "--max-lag 599");
	IT_ASSERT(h, r.status == 3, "--max-lag 599 with 600 behind exited %d: %s", r.status, r.err);
	IT_ASSERT(h, strstr(r.out, "total lag 600\n") != NULL, "table: %s", r.out);
	IT_ASSERT(h, strstr(r.out, "owners unknown: ") != NULL, "table without the owners line: %s", r.out);
	run_result_fini(&r);
	lag(&r, h->bootstrap, NULL, "--max-lag 600");
	IT_ASSERT(h, r.status == 0, "--max-lag 600 with 600 behind exited %d: %s", r.status, r.err);
	run_result_fini(&r);

	/* a worker answers everything and commits: no lag left */
	w = itest_harness_worker(h, NULL);
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	out = itest_wait_replies(h->bootstrap, EVENTS, 90000);
	IT_ASSERT(h, out != NULL && itest_distinct_replies(out) == EVENTS, "replies: %zu of %d",
		  out ? itest_distinct_replies(out) : 0, EVENTS);
	kafka_recs_free(out);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	IT_ASSERT(h, check_json(hwm, true) == 0, "lag is not 0 once everything is committed");
	lag(&r, h->bootstrap, NULL, "--max-lag 0");
	IT_ASSERT(h, r.status == 0, "--max-lag 0 with nothing behind exited %d: %s", r.status, r.out);
	run_result_fini(&r);
	IT_ASSERT(h, itest_harness_stop_worker(h, w, 30000) == 0, "the worker did not stop cleanly");
}

Test(itest_lag, unreachable_broker_missing_topic_and_bad_flags_fail_with_a_reason, .fini = teardown,
     .timeout = 120)
{
	struct run_result r;

	h = itest_harness_new("lag-fail", false);
	cr_assert_not_null(h, "the mock cluster did not start");

	lag(&r, "127.0.0.1:1", NULL, "--timeout-ms 2000");
	IT_ASSERT(h, r.status == 1 && strstr(r.err, "cannot reach Kafka") && strstr(r.err, "(127.0.0.1:1)"), "exit %d, stderr: %s",
		  r.status, r.err);
	IT_ASSERT(h, r.out_len == 0, "printed a table without Kafka: %s", r.out);
	run_result_fini(&r);

	lag(&r, h->bootstrap, "INBOUND_TOPIC=no.such.topic", "");
	IT_ASSERT(h, r.status == 1 && strstr(r.err, "topic no.such.topic does not exist"), "exit %d, stderr: %s",
		  r.status, r.err);
	run_result_fini(&r);
	/* asking did not create it */
	lag(&r, h->bootstrap, "INBOUND_TOPIC=no.such.topic", "");
	IT_ASSERT(h, r.status == 1, "the missing topic appeared after being asked for (exit %d)", r.status);
	run_result_fini(&r);

	lag(&r, h->bootstrap, NULL, "--max-lag -5");
	IT_ASSERT(h, r.status == 2 && strstr(r.err, "--max-lag"), "exit %d, stderr: %s", r.status, r.err);
	run_result_fini(&r);
	lag(&r, h->bootstrap, NULL, "--json=yes");
	IT_ASSERT(h, r.status == 2 && strstr(r.err, "--json: takes no value"), "exit %d, stderr: %s", r.status, r.err);
	run_result_fini(&r);
	lag(&r, h->bootstrap, NULL, "--max-lag");
	IT_ASSERT(h, r.status == 2 && strstr(r.err, "--max-lag: needs a value"), "exit %d, stderr: %s", r.status,
		  r.err);
	run_result_fini(&r);
}
