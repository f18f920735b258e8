/*
 * itest_shutdown.c - SIGTERM on `wabot-worker run`: finish in-flight work,
 * commit, leave the group, exit 0 within SHUTDOWN_TIMEOUT_SECONDS; so that
 * the next member of the group starts exactly where it stopped.
 *  - idle: after every reply is out, SIGTERM, then a fresh worker in the
 *    same group emits nothing in 5 s and reports 0 records at its exit;
 *  - mid-stream (Redis, a producer thread running): SIGTERM, a new worker
 *    takes over, and at the end every event has exactly one reply, not
 *    one re-emitted;
 *  - during a rebalance, and before the first assignment: exit 0, in time;
 *  - during a Redis outage (nothing can finish): the worker still exits
 *    by the deadline, and whatever it could not finish is done by the next
 *    worker once Redis is back (no loss, no conversation advanced twice).
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


static struct itest_harness *h;
static struct itest_stream *s;
static struct itest_producer *prod;

static void teardown(void)
{
	char err[512];

	if (prod)
		itest_producer_join(prod, err, sizeof err);
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	prod = NULL;
	h = NULL;
	s = NULL;
}

/* Records on topic now, knowing there are at least `known`. */
static size_t records_now(const char *topic, size_t known)
{
	struct kafka_recs *r = kafka_consume_all(h->bootstrap, topic, known, 1000, 15000);
	size_t n = r ? r->n : 0;

	kafka_recs_free(r);
	return n;
}

/* Reads the inbound topic back: its high watermarks, and checks the DLQ. */
static void check_inbound_and_dlq(size_t events, bool dlq_exactly_once, int64_t hwm[ITEST_INBOUND_PARTITIONS])
{
	char err[4096] = "";
	size_t problems = itest_check_inbound_and_dlq(h->bootstrap, h->group, s, events, dlq_exactly_once, hwm, err,
						      sizeof err);

	IT_ASSERT(h, problems == 0, "%zu problems with the inbound topic or the dead letters:\n%s", problems, err);
}

static void check_replies(size_t events, enum itest_check_mode mode, bool no_duplicates)
{
	struct itest_reply_report rep;
	struct kafka_recs *out = itest_wait_replies(h->bootstrap, events, 90000);
	size_t problems;

	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, mode, &rep);
	kafka_recs_free(out);
	cr_log_info("%zu replies, %zu distinct, %zu re-emitted", rep.records, rep.distinct, rep.duplicates);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first);
	IT_ASSERT(h, !no_duplicates || rep.duplicates == 0,
		  "%zu replies emitted twice although the only hand-over was a graceful shutdown", rep.duplicates);
}

/* SIGTERM to worker w; asserts an exit code in [lo, hi] within max_ms and
 * returns the time it took. */
static int64_t sigterm(int w, int lo, int hi, int max_ms)
{
	int64_t t = test_now_ms();
	int rc = itest_harness_stop_worker(h, w, max_ms + 5000);

	t = test_now_ms() - t;
	IT_ASSERT(h, rc >= lo && rc <= hi, "worker %d exited with %d after SIGTERM (-1: still running after %d s)", w,
		  rc, (max_ms + 5000) / 1000);
	IT_ASSERT(h, t <= max_ms, "worker %d took %lld ms to exit after SIGTERM, more than %d", w, (long long)t, max_ms);
	return t;
}

Test(itest_shutdown, sigterm_commits_so_a_fresh_worker_in_the_group_re_emits_nothing, .fini = teardown,
     .timeout = 180)
{
	static const char *const env[] = {"SHUTDOWN_TIMEOUT_SECONDS=10", NULL};
	enum { EVENTS = 1000 };
	char err[2048] = "";
	int64_t hwm[ITEST_INBOUND_PARTITIONS], took;
	size_t outbound, dlq, problems;
	struct itest_worker_stats st;
	int w0, w1;

	h = itest_harness_new("shutdown-idle", false);
	cr_assert_not_null(h, "the mock cluster did not start");
	s = itest_stream_new(100, EVENTS, 0x5eed0005, true);
	cr_assert_not_null(s);

	w0 = itest_harness_worker(h, env);
	IT_ASSERT(h, w0 >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, EVENTS, err, sizeof err) == 0, "produce: %s", err);
	check_replies(EVENTS, ITEST_STRICT, true);
	check_inbound_and_dlq(EVENTS, true, hwm);
	outbound = records_now(ITEST_OUTBOUND, EVENTS);
	dlq = records_now(ITEST_DLQ, s->nbad);

	took = sigterm(w0, 0, 0, 10000);
	cr_log_info("worker %d stopped %lld ms after SIGTERM", w0, (long long)took);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 3000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets after SIGTERM:\n%s", err);

	w1 = itest_harness_worker(h, env);
	IT_ASSERT(h, w1 >= 0, "cannot start the second worker");
	IT_ASSERT(h, itest_log_wait_assignments(h->log[w1], 1, 30000), "the second worker got no partitions in 30 s");
	test_sleep_ms(5000);
	IT_ASSERT(h, records_now(ITEST_OUTBOUND, outbound) == outbound,
		  "the restarted worker emitted replies again (%zu records before)", outbound);
	IT_ASSERT(h, records_now(ITEST_DLQ, dlq) == dlq, "the restarted worker dead-lettered again (%zu before)", dlq);
	sigterm(w1, 0, 0, 10000);
	st = itest_log_stats(h->log[w1]);
	IT_ASSERT(h, st.found && st.records == 0 && st.replies == 0,
		  "the restarted worker's final line: found %d, records %llu, replies %llu", st.found,
		  (unsigned long long)st.records, (unsigned long long)st.replies);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 3000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets moved:\n%s", err);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}

Test(itest_shutdown, sigterm_mid_stream_hands_over_without_any_reply_twice, .fini = teardown, .timeout = 240)
{
	static const char *const env[] = {"SHUTDOWN_TIMEOUT_SECONDS=10", NULL};
	enum { EVENTS = 3000 };
	char err[2048] = "";
	int64_t hwm[ITEST_INBOUND_PARTITIONS], took;
	struct itest_worker_stats st;
	size_t problems, at;
	int w0, w1;

	h = itest_harness_new("shutdown-mid", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(300, EVENTS, 0x5eed0006, true);
	cr_assert_not_null(s);

	w0 = itest_harness_worker(h, env);
	IT_ASSERT(h, w0 >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_log_wait_assignments(h->log[w0], 1, 30000), "the worker got no partitions in 30 s");
	/* 100 events every 200 ms: about 6 s of stream */
	prod = itest_producer_start(h->bootstrap, s, 100, 200);
	IT_ASSERT(h, prod != NULL, "cannot start the producer thread");
	while (itest_producer_produced(prod) < EVENTS / 3)
		test_sleep_ms(10);
	at = itest_producer_produced(prod);
	took = sigterm(w0, 0, 0, 10000);
	cr_log_info("worker %d stopped %lld ms after SIGTERM at %zu events produced", w0, (long long)took, at);
	IT_ASSERT(h, itest_producer_produced(prod) < EVENTS, "the stream ended before the hand-over");
	w1 = itest_harness_worker(h, env);
	IT_ASSERT(h, w1 >= 0, "cannot start the second worker");
	IT_ASSERT(h, itest_producer_join(prod, err, sizeof err) == 0, "producer thread: %s", err);
	prod = NULL;

	check_replies(EVENTS, ITEST_STRICT, true);
	check_inbound_and_dlq(EVENTS, true, hwm);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	sigterm(w1, 0, 0, 10000);
	st = itest_log_stats(h->log[w0]);
	IT_ASSERT(h, st.found && st.redone == 0 && st.abandoned == 0 && st.output_failed == 0,
		  "first worker: found %d, redone %llu, abandoned %llu, output_failed %llu", st.found,
		  (unsigned long long)st.redone, (unsigned long long)st.abandoned, (unsigned long long)st.output_failed);
	cr_log_info("first worker: %llu records; second: %llu", (unsigned long long)st.records,
		    (unsigned long long)itest_log_stats(h->log[w1]).records);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}

Test(itest_shutdown, sigterm_during_redis_outage_exits_by_the_deadline_and_the_next_worker_loses_nothing,
     .fini = teardown, .timeout = 240)
{
	static const char *const env[] = {"SHUTDOWN_TIMEOUT_SECONDS=6", "DRAIN_TIMEOUT_SECONDS=3", NULL};
	enum { EVENTS = 900, PART = EVENTS / 3 };
	char err[2048] = "";
	int64_t hwm[ITEST_INBOUND_PARTITIONS], took;
	struct itest_worker_stats st;
	size_t problems;
	int w0, w1, rc;

	h = itest_harness_new("shutdown-outage", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(100, EVENTS, 0x5eed0007, true);
	cr_assert_not_null(s);

	w0 = itest_harness_worker(h, env);
	IT_ASSERT(h, w0 >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, PART, err, sizeof err) == 0, "produce: %s", err);
	{
		struct kafka_recs *out = itest_wait_replies(h->bootstrap, PART, 60000);
		size_t d = itest_distinct_replies(out);

		kafka_recs_free(out);
		IT_ASSERT(h, d == PART, "%zu distinct replies to the first %d events", d, PART);
	}
	redis_server_pause(h->rs);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, PART, 2 * PART, err, sizeof err) == 0, "produce: %s", err);
	test_sleep_ms(2000);

	/* 6 s shutdown deadline: exit 0 or 1 (a deadline ran out), never hang */
	took = test_now_ms();
	rc = itest_harness_stop_worker(h, w0, 20000);
	took = test_now_ms() - took;
	IT_ASSERT(h, rc == 0 || rc == 1, "worker %d exited with %d after SIGTERM during the outage (-1: still running "
		  "after 20 s)", w0, rc);
	/* the deadline, plus a Redis command timeout (1 s) a lane may be in */
	IT_ASSERT(h, took <= 8000, "worker %d took %lld ms to exit with a 6 s shutdown deadline", w0, (long long)took);
	st = itest_log_stats(h->log[w0]);
	IT_ASSERT(h, st.found, "no \"worker stopped\" line");
	cr_log_info("worker %d: exit %d after %lld ms; records %llu, done %llu, abandoned %llu, redone %llu", w0, rc,
		    (long long)took,
		    (unsigned long long)st.records, (unsigned long long)st.done, (unsigned long long)st.abandoned,
		    (unsigned long long)st.redone);

	redis_server_resume(h->rs);
	w1 = itest_harness_worker(h, env);
	IT_ASSERT(h, w1 >= 0, "cannot start the second worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 2 * PART, EVENTS, err, sizeof err) == 0, "produce: %s", err);
	check_replies(EVENTS, ITEST_STRICT, false);
	check_inbound_and_dlq(EVENTS, false, hwm);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	sigterm(w1, 0, 0, 6000);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}

/*
 * SIGTERM in the middle of group changes (librdkafka 2.0.2 can hang closing
 * while an incremental assign is pending): worker A serves alone; B starts
 * and, while the group is rebalancing for it, A gets SIGTERM; later C
 * starts, and while its join holds the group in a rebalance (the mock
 * refuses commits then), B serves a few more events; C gets SIGTERM before
 * its first assignment, B right after; D starts. Every stop must take less
 * than the deadline and exit 0, and since every hand-over was graceful, no
 * reply may be emitted twice (B must not leave before its last commits are
 * confirmed: a CI run once saw D redo 10 events B had done).
 */
Test(itest_shutdown, sigterm_during_a_rebalance_or_before_the_first_assignment_exits_cleanly, .fini = teardown,
     .timeout = 240)
{
	/* B's stop waits out two rounds of the mock's rebalance delay (5 s
	 * each with the 6 s session timeout): C died while joining, and B
	 * revokes C's share before it may leave; about 8.5 s in all */
	static const char *const env[] = {"SHUTDOWN_TIMEOUT_SECONDS=15", NULL};
	enum { EVENTS = 900, PART = EVENTS / 3, LATE = 2 * PART + 60 };
	char err[2048] = "";
	int64_t hwm[ITEST_INBOUND_PARTITIONS], took;
	size_t problems;
	int a, b, c, d;

	h = itest_harness_new("shutdown-rebalance", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(100, EVENTS, 0x5eed000b, true);
	cr_assert_not_null(s);

	a = itest_harness_worker(h, env);
	IT_ASSERT(h, a >= 0, "cannot start worker A");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, PART, err, sizeof err) == 0, "produce: %s", err);
	{
		struct kafka_recs *out = itest_wait_replies(h->bootstrap, PART, 60000);
		size_t n = itest_distinct_replies(out);

		kafka_recs_free(out);
		IT_ASSERT(h, n == PART, "%zu distinct replies to the first %d events", n, PART);
	}

	b = itest_harness_worker(h, env);
	IT_ASSERT(h, b >= 0, "cannot start worker B");
	IT_ASSERT(h, itest_log_wait(h->log[b], "\"msg\":\"worker started\"", 1, 10000), "worker B did not start");
	test_sleep_ms(1500); /* B's JoinGroup is now pending: the mock holds it for seconds */
	IT_ASSERT(h, itest_log_assignments(h->log[b]) == 0, "B was assigned partitions too early for this test");
	took = sigterm(a, 0, 0, 16000);
	cr_log_info("worker A stopped %lld ms after SIGTERM during B's join", (long long)took);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, PART, 2 * PART, err, sizeof err) == 0, "produce: %s", err);
	IT_ASSERT(h, itest_log_wait_assignments(h->log[b], 1, 30000), "worker B got no partitions within 30 s");
	{
		struct kafka_recs *out = itest_wait_replies(h->bootstrap, 2 * PART, 60000);
		size_t n = itest_distinct_replies(out);

		kafka_recs_free(out);
		IT_ASSERT(h, n == 2 * PART, "%zu distinct replies to the first %d events", n, 2 * PART);
	}

	c = itest_harness_worker(h, env);
	IT_ASSERT(h, c >= 0, "cannot start worker C");
	IT_ASSERT(h, itest_log_wait(h->log[c], "\"msg\":\"worker started\"", 1, 10000), "worker C did not start");
	test_sleep_ms(1000); /* C's JoinGroup is pending: the group is rebalancing */
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 2 * PART, LATE, err, sizeof err) == 0, "produce: %s", err);
	{
		struct kafka_recs *out = itest_wait_replies(h->bootstrap, LATE, 60000);
		size_t n = itest_distinct_replies(out);

		kafka_recs_free(out);
		IT_ASSERT(h, n == LATE, "%zu distinct replies to the first %d events", n, LATE);
	}
	IT_ASSERT(h, itest_log_assignments(h->log[c]) == 0, "C was assigned partitions too early for this test");
	took = sigterm(c, 0, 0, 16000);
	cr_log_info("worker C stopped %lld ms after SIGTERM before its first assignment (%zu assignments)",
		    (long long)took, itest_log_assignments(h->log[c]));
	took = sigterm(b, 0, 0, 16000);
	cr_log_info("worker B stopped %lld ms after SIGTERM", (long long)took);

	d = itest_harness_worker(h, env);
	IT_ASSERT(h, d >= 0, "cannot start worker D");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, LATE, EVENTS, err, sizeof err) == 0, "produce: %s", err);
	check_replies(EVENTS, ITEST_STRICT, true);
	check_inbound_and_dlq(EVENTS, true, hwm);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	sigterm(d, 0, 0, 16000);
	for (int i = 0; i < h->nw; i++) {
		struct itest_worker_stats st = itest_log_stats(h->log[i]);

		IT_ASSERT(h, st.found && st.redone == 0 && st.abandoned == 0 && st.output_failed == 0,
			  "worker %d: found %d, redone %llu, abandoned %llu, output_failed %llu", i, st.found,
			  (unsigned long long)st.redone, (unsigned long long)st.abandoned,
			  (unsigned long long)st.output_failed);
	}
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
