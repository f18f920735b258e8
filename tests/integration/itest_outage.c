/*
 * itest_outage.c - the context store goes away mid-stream under one
 * `wabot-worker run` process (4 worker threads) and comes back:
 *  - redis-server stopped (SIGSTOP) for 11.5 s, then continued (SIGCONT):
 *    its data survives, so the strict checks hold: no reply while it is
 *    stopped (nothing may be answered without its context), then every
 *    event exactly one reply, in order, each conversation one step per
 *    event, nothing dead-lettered but the malformed records; past 10 s the
 *    worker logs where its records wait ("no record finished for 10 s");
 *  - redis-server killed (SIGKILL) for 5 s and started again, empty, on
 *    the same port: conversations restart from scratch, so the cycle is not
 *    checked, but no event may be lost or skipped and the order holds.
 * In both the worker resumes by itself and commits everything. And a worker
 * started while redis-server is down waits for it, then serves.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "itest_util.h"
#include "kafka_client.h"
#include "redis_server.h"
#include "test_clock.h"

#define PHONES 200
#define EVENTS 1500
#define PART (EVENTS / 3)

static struct itest_harness *h;
static struct itest_stream *s;

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	h = NULL;
	s = NULL;
}

enum outage { OUTAGE_STOP, OUTAGE_KILL };

/* Distinct replies on the outbound topic now, knowing there are at least
 * `known` records (kafka_consume_all stops early below its expectation). */
static size_t distinct_now(size_t known)
{
	struct kafka_recs *r = kafka_consume_all(h->bootstrap, ITEST_OUTBOUND, known, 1000, 15000);
	size_t d = itest_distinct_replies(r);

	kafka_recs_free(r);
	return d;
}

static void run_outage(const char *tag, enum outage kind, int outage_ms)
{
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out;
	struct itest_worker_stats st;
	int64_t hwm[ITEST_INBOUND_PARTITIONS], t0 = test_now_ms(), down;
	size_t problems, d;
	int w, rc;

	h = itest_harness_new(tag, true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(PHONES, EVENTS, 0x5eed0004 + kind, true);
	cr_assert_not_null(s);

	w = itest_harness_worker(h, NULL);
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, PART, err, sizeof err) == 0, "produce: %s", err);
	out = itest_wait_replies(h->bootstrap, PART, 60000);
	d = itest_distinct_replies(out);
	kafka_recs_free(out);
	IT_ASSERT(h, d == PART, "%zu distinct replies to the first %d events before the outage", d, PART);

	if (kind == OUTAGE_STOP)
		redis_server_pause(h->rs);
	else
		redis_server_kill(h->rs);
	down = test_now_ms();
	cr_log_info("%s: %.1f s: redis-server %s", tag, (double)(down - t0) / 1000.0,
		    kind == OUTAGE_STOP ? "stopped" : "killed");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, PART, 2 * PART, err, sizeof err) == 0, "produce: %s", err);
	test_sleep_ms((long)(outage_ms - (test_now_ms() - down)));
	d = distinct_now(PART);
	IT_ASSERT(h, d == PART, "%zu distinct replies after %d ms of outage, %d before: answered without the context?",
		  d, outage_ms, PART);
	IT_ASSERT(h, worker_proc_running(h->w[w]), "the worker exited during the outage");
	if (kind == OUTAGE_STOP) {
		redis_server_resume(h->rs);
	} else {
		IT_ASSERT(h, redis_server_restart(h->rs), "redis-server did not start again on its port");
	}
	cr_log_info("%s: %.1f s: redis-server back", tag, (double)(test_now_ms() - t0) / 1000.0);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 2 * PART, EVENTS, err, sizeof err) == 0, "produce: %s", err);

	out = itest_wait_replies(h->bootstrap, EVENTS, 90000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, kind == OUTAGE_STOP ? ITEST_STRICT : ITEST_RELAXED, &rep);
	cr_log_info("%s: %.1f s: %zu replies, %zu distinct", tag, (double)(test_now_ms() - t0) / 1000.0, rep.records,
		    rep.distinct);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first);
	IT_ASSERT(h, rep.duplicates == 0, "%zu replies emitted twice by a single worker", rep.duplicates);

	/* nothing good dead-lettered: the outage is waited out, not counted as poison */
	problems = itest_check_inbound_and_dlq(h->bootstrap, h->group, s, EVENTS, true, hwm, err, sizeof err);
	IT_ASSERT(h, problems == 0, "%zu problems with the inbound topic or the dead letters:\n%s", problems, err);

	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark while running:\n%s", err);
	rc = itest_harness_stop_worker(h, w, 30000);
	IT_ASSERT(h, rc == 0, "the worker exited with %d after SIGTERM", rc);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 5000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets after shutdown:\n%s", err);

	st = itest_log_stats(h->log[w]);
	IT_ASSERT(h, st.found, "no \"worker stopped\" line");
	IT_ASSERT(h, st.records == EVENTS + s->nbad && st.done == st.records && st.poison == 0 && st.output_failed == 0,
		  "records %llu, done %llu, poison %llu, output_failed %llu", (unsigned long long)st.records,
		  (unsigned long long)st.done, (unsigned long long)st.poison, (unsigned long long)st.output_failed);
	IT_ASSERT(h, st.store_retries > 0, "the worker never retried the store: was it down at all?");
	IT_ASSERT(h, itest_log_count(h->log[w], "context store unreachable") > 0,
		  "no \"context store unreachable\" warning in the log");
	/* an outage past 10 s: the consumer says where the records wait */
	IT_ASSERT(h, outage_ms < 11000 || itest_log_count(h->log[w], "\"msg\":\"no record finished for 10 s\"") > 0,
		  "no \"no record finished for 10 s\" warning during a %d ms outage", outage_ms);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
	cr_log_info("%s: done in %.1f s (store retries %llu)", tag, (double)(test_now_ms() - t0) / 1000.0,
		    (unsigned long long)st.store_retries);
}

Test(itest_outage, redis_stopped_mid_stream_delays_replies_and_loses_or_skips_nothing, .fini = teardown,
     .timeout = 240)
{
	run_outage("outage-stop", OUTAGE_STOP, 11500);
}

Test(itest_outage, redis_killed_and_restarted_empty_mid_stream_loses_nothing, .fini = teardown, .timeout = 240)
{
	run_outage("outage-kill", OUTAGE_KILL, 5000);
}

/* A worker that starts before its Redis (a pod scheduled before the store
 * is up): it waits for redis-server, logging why, and then serves. */
Test(itest_outage, a_worker_started_before_redis_waits_for_it, .fini = teardown, .timeout = 120)
{
	enum { N = 60 };
	char err[1024] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out;
	size_t problems;
	int w, rc;

	h = itest_harness_new("outage-start", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(20, N, 0x5eed0006, false);
	cr_assert_not_null(s);
	redis_server_kill(h->rs);
	w = itest_harness_worker(h, (const char *const[]){"REDIS_CONNECT_TIMEOUT_MS=300", NULL});
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_log_wait(h->log[w], "context store unreachable at start: waiting for it", 2, 15000),
		  "the worker does not say it waits for the store");
	IT_ASSERT(h, worker_proc_running(h->w[w]), "the worker gave up instead of waiting for the store");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, N, err, sizeof err) == 0, "produce: %s", err);
	IT_ASSERT(h, redis_server_restart(h->rs), "redis-server did not start again on its port");
	IT_ASSERT(h, itest_log_wait(h->log[w], "\"msg\":\"worker started\"", 1, 20000),
		  "the worker did not start once redis-server answered");
	out = itest_wait_replies(h->bootstrap, N, 60000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies:\n%s", problems, rep.first);
	rc = itest_harness_stop_worker(h, w, 30000);
	IT_ASSERT(h, rc == 0, "the worker exited with %d after SIGTERM", rc);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
