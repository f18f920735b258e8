/*
 * itest_group.c - several `wabot-worker run` processes in one consumer
 * group, sharing a real redis-server:
 *  - while a producer thread keeps the stream coming (3,000 events over 300
 *    phones plus the malformed records, about 35 s), two members start, a
 *    third joins mid-stream, the first leaves with SIGTERM mid-stream, the
 *    second is killed with SIGKILL mid-stream and a replacement starts;
 *  - a crash after a burst: everything the dead member answered is
 *    redelivered to the next one.
 * Checks: no event without a reply; no conversation advanced twice (per
 * phone, the first occurrence of each reply follows the donations cycle,
 * and a re-emitted reply carries the step of the first); per-phone order of
 * replies equals the order of events; every malformed record dead-lettered;
 * committed offsets reach the high watermarks; the members stopped with
 * SIGTERM exit 0 and redid nothing unless the coordinator declared their
 * assignment lost (the 2.0.2 mock does so now and then during cooperative
 * rebalances: ILLEGAL_GENERATION on a heartbeat).
 * (Flow control across rebalances is in itest_rebalance.c.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "flow.h"
#include "itest_util.h"
#include "kafka_client.h"
#include "kafka_mock.h"
#include "redis_server.h"
#include "test_clock.h"

#define PHONES 300
#define EVENTS 3000

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

static const char *const worker_env[] = {"SHUTDOWN_TIMEOUT_SECONDS=20", "DRAIN_TIMEOUT_SECONDS=10", NULL};

static int64_t t0;
static char history[16384]; /* a failing phone's replies, for the message */

static double secs(void)
{
	return (double)(test_now_ms() - t0) / 1000.0;
}

/* Waits until the producer thread has produced at least n events. */
static void wait_produced(size_t n)
{
	int64_t deadline = test_now_ms() + 120000;

	while (itest_producer_produced(prod) < n && test_now_ms() < deadline)
		test_sleep_ms(20);
	IT_ASSERT(h, itest_producer_produced(prod) >= n, "the producer thread is stuck at %zu events",
		  itest_producer_produced(prod));
}

static int start_worker(void)
{
	int w = itest_harness_worker(h, worker_env);

	IT_ASSERT(h, w >= 0, "cannot start a worker");
	cr_log_info("%5.1f s: worker %d started (%zu events produced)", secs(), w,
		    prod ? itest_producer_produced(prod) : 0);
	return w;
}

static void wait_assigned(int w, int timeout_ms)
{
	IT_ASSERT(h, itest_log_wait_assignments(h->log[w], 1, timeout_ms), "worker %d got no partitions within %d s", w,
		  timeout_ms / 1000);
	cr_log_info("%5.1f s: worker %d has partitions", secs(), w);
}

Test(itest_group, members_join_leave_and_crash_mid_stream_without_loss_or_double_steps, .fini = teardown,
     .timeout = 300)
{
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out;
	int64_t hwm[ITEST_INBOUND_PARTITIONS];
	size_t problems;
	int w0, w1, w2, w3, rc;

	h = itest_harness_new("group", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(PHONES, EVENTS, 0x5eed0003, true);
	cr_assert_not_null(s);
	t0 = test_now_ms();

	w0 = start_worker();
	w1 = start_worker();
	wait_assigned(w0, 30000);
	wait_assigned(w1, 30000);
	/* 30 events every 300 ms: the stream lasts about 35 s */
	prod = itest_producer_start(h->bootstrap, s, 30, 300);
	IT_ASSERT(h, prod != NULL, "cannot start the producer thread");

	wait_produced(300);
	w2 = start_worker(); /* a member joins mid-stream */
	wait_assigned(w2, 40000);

	wait_produced(1200);
	cr_log_info("%5.1f s: SIGTERM to worker %d (%zu events produced)", secs(), w0, itest_producer_produced(prod));
	rc = itest_harness_stop_worker(h, w0, 30000);
	IT_ASSERT(h, rc == 0, "worker %d exited with %d after SIGTERM (-1: still running after 30 s)", w0, rc);
	cr_log_info("%5.1f s: worker %d left", secs(), w0);

	wait_produced(1800);
	cr_log_info("%5.1f s: SIGKILL to worker %d (%zu events produced)", secs(), w1, itest_producer_produced(prod));
	worker_proc_signal(h->w[w1], SIGKILL);
	rc = worker_proc_wait(h->w[w1], 10000);
	IT_ASSERT(h, rc == 128 + SIGKILL, "worker %d: wait gave %d after SIGKILL", w1, rc);
	w3 = start_worker(); /* its replacement */
	wait_assigned(w3, 60000);

	rc = itest_producer_join(prod, err, sizeof err);
	prod = NULL;
	IT_ASSERT(h, rc == 0, "producer thread: %s", err);
	cr_log_info("%5.1f s: all %d events produced", secs(), EVENTS);

	out = itest_wait_replies(h->bootstrap, EVENTS, 120000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	cr_log_info("%5.1f s: %zu replies, %zu distinct, %zu re-emitted", secs(), rep.records, rep.distinct,
		    rep.duplicates);
	if (problems && rep.bad_phone >= 0)
		itest_phone_history(s, out, (uint32_t)rep.bad_phone, history, sizeof history);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first, history);

	/* the killed member's uncommitted dead letters may come twice */
	problems = itest_check_inbound_and_dlq(h->bootstrap, h->group, s, EVENTS, false, hwm, err, sizeof err);
	IT_ASSERT(h, problems == 0, "%zu problems with the inbound topic or the dead letters:\n%s", problems, err);

	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark while running:\n%s", err);
	rc = itest_harness_stop_worker(h, w2, 30000);
	IT_ASSERT(h, rc == 0, "worker %d exited with %d after SIGTERM", w2, rc);
	rc = itest_harness_stop_worker(h, w3, 30000);
	IT_ASSERT(h, rc == 0, "worker %d exited with %d after SIGTERM", w3, rc);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 5000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets after shutdown:\n%s", err);

	{
		const int clean[] = {w0, w2, w3};

		for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
			struct itest_worker_stats st = itest_log_stats(h->log[clean[i]]);

			IT_ASSERT(h, st.found, "worker %d: no \"worker stopped\" line", clean[i]);
			cr_log_info("worker %d: records %llu, replies %llu, duplicates %llu, rebalances %llu", clean[i],
				    (unsigned long long)st.records, (unsigned long long)st.replies,
				    (unsigned long long)st.duplicates, (unsigned long long)st.rebalances);
			IT_ASSERT(h, st.output_failed == 0, "worker %d: output_failed %llu", clean[i],
				  (unsigned long long)st.output_failed);
			/* A member whose assignment the coordinator declared lost
			 * (the 2.0.2 mock answers some heartbeats during a
			 * cooperative rebalance with ILLEGAL_GENERATION) may redo
			 * and abandon work: that is not a clean rebalance. */
			if (itest_log_count(h->log[clean[i]], "\"msg\":\"partitions lost\"") > 0) {
				cr_log_info("worker %d: its assignment was lost once: redone %llu, abandoned %llu",
					    clean[i], (unsigned long long)st.redone, (unsigned long long)st.abandoned);
				continue;
			}
			IT_ASSERT(h, st.redone == 0 && st.abandoned == 0,
				  "worker %d (clean rebalances only): redone %llu, abandoned %llu", clean[i],
				  (unsigned long long)st.redone, (unsigned long long)st.abandoned);
		}
	}
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
	cr_log_info("%5.1f s: done", secs());
}

/*
 * A crash after a burst, before any commit of it: worker A serves alone;
 * worker B starts, so the group rebalances for some seconds, and while it
 * does the coordinator refuses commits (REBALANCE_IN_PROGRESS). A answers a
 * burst of 12 events for each of 20 phones in that window and is killed
 * with SIGKILL before the rebalance ends: its progress was never committed,
 * and B gets every record again. Each one was applied already: B must
 * recognise all of them (12 is more than the 8 ids a context remembers: the
 * older ones by the context's inbound position), re-emit the same replies
 * (same reply id and step) for the newest FLOW_RECENT_REPLIES of each phone,
 * whose replies a context keeps, and advance no conversation.
 */
Test(itest_group, redelivery_after_a_crash_never_advances_a_conversation_twice, .fini = teardown, .timeout = 180)
{
	enum { BURST_PHONES = 20, N = 240 };
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out, *in;
	int64_t hwm[ITEST_INBOUND_PARTITIONS], joined;
	struct itest_worker_stats st;
	size_t problems;
	int a, b, rc;

	h = itest_harness_new("group-redelivery", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(BURST_PHONES, N, 0x5eed000c, false);
	cr_assert_not_null(s);
	t0 = test_now_ms();

	a = itest_harness_worker(h, NULL);
	IT_ASSERT(h, a >= 0, "cannot start worker A");
	wait_assigned(a, 30000);
	b = itest_harness_worker(h, NULL);
	IT_ASSERT(h, b >= 0, "cannot start worker B");
	IT_ASSERT(h, itest_log_wait(h->log[b], "\"msg\":\"worker started\"", 1, 10000), "worker B did not start");
	joined = test_now_ms();
	test_sleep_ms(700); /* B's JoinGroup has reached the coordinator: the group is rebalancing */
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, N, err, sizeof err) == 0, "produce: %s", err);
	out = itest_wait_replies(h->bootstrap, N, 20000);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "before the crash: %zu problems:\n%s", problems, rep.first);
	IT_ASSERT(h, itest_log_assignments(h->log[b]) == 0 && test_now_ms() - joined < 4500,
		  "the rebalance for B ended before A could be killed (%lld ms): the scenario was not reached",
		  (long long)(test_now_ms() - joined));
	worker_proc_signal(h->w[a], SIGKILL);
	rc = worker_proc_wait(h->w[a], 10000);
	IT_ASSERT(h, rc == 128 + SIGKILL, "worker A: wait gave %d after SIGKILL", rc);
	cr_log_info("%5.1f s: worker A killed %lld ms into the rebalance, after answering all %d events", secs(),
		    (long long)(test_now_ms() - joined), N);

	wait_assigned(b, 40000);
	/* B has every record again: wait until it has re-emitted them */
	{
		int64_t deadline = test_now_ms() + 60000;
		size_t n = 0;

		do {
			out = kafka_consume_all(h->bootstrap, ITEST_OUTBOUND, 2 * N, 1000, 5000);
			n = out ? out->n : 0;
			kafka_recs_free(out);
		} while (n < 2 * N && test_now_ms() < deadline);
		cr_log_info("%5.1f s: %zu outbound records after the redelivery", secs(), n);
	}
	out = itest_wait_replies(h->bootstrap, N, 30000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	if (problems && rep.bad_phone >= 0)
		itest_phone_history(s, out, (uint32_t)rep.bad_phone, history, sizeof history);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0,
		  "%zu problems after the redelivery (%zu records, %zu distinct, %zu re-emitted):\n%s%s", problems,
		  rep.records, rep.distinct, rep.duplicates, rep.first, history);
	IT_ASSERT(h, rep.duplicates == BURST_PHONES * FLOW_RECENT_REPLIES,
		  "%zu replies re-emitted for %d redelivered events of %d phones (want %d)", rep.duplicates, N,
		  BURST_PHONES, BURST_PHONES * FLOW_RECENT_REPLIES);

	in = kafka_consume_all(h->bootstrap, ITEST_INBOUND, N, 300, 20000);
	IT_ASSERT(h, in && in->n == N, "inbound topic holds %zu records, %d produced", in ? in->n : 0, N);
	itest_high_watermarks(in, hwm);
	kafka_recs_free(in);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	rc = itest_harness_stop_worker(h, b, 20000);
	IT_ASSERT(h, rc == 0, "worker B exited with %d after SIGTERM", rc);
	st = itest_log_stats(h->log[b]);
	IT_ASSERT(h, st.found && st.records == N && st.duplicates == N,
		  "worker B: records %llu, duplicates %llu (want %d, %d)", (unsigned long long)st.records,
		  (unsigned long long)st.duplicates, N, N);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}

/* The offset in the context's "in" (the last applied event), or -1. */
static int64_t context_offset(const char *key)
{
	char rkey[64];
	char *v;
	const char *in;
	long long off = -1;

	snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", key);
	v = redis_server_cli(h->rs, "GET", rkey, NULL);
	if (v && (in = strstr(v, "\"in\":[")) != NULL && sscanf(in + 6, "%*d,%lld", &off) != 1)
		off = -1;
	free(v);
	return off;
}

/*
 * A crash before the broker acknowledged the replies: the mock answers
 * every request 3 s late, one phone sends 12 messages in a row, and the
 * worker is killed with SIGKILL as soon as the first context is saved. Its
 * replies were never acknowledged, so the next worker must send them. It
 * re-emits what the context keeps (the newest FLOW_RECENT_REPLIES events);
 * this holds only because a worker never has more than that many records
 * of one phone unacknowledged (the bound in worker/lanes.c): without it the
 * first worker applies all 12 at once and 8 replies are lost for good.
 */
Test(itest_group, a_crash_before_replies_are_acknowledged_loses_no_reply, .fini = teardown, .timeout = 180)
{
	enum { N = 12 };
	char err[1024] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out, *in;
	int64_t first = -1, applied = -1, deadline;
	int a, b, rc;

	h = itest_harness_new("group-unacked", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(1, N, 0x5eed000d, false);
	cr_assert_not_null(s);
	t0 = test_now_ms();

	a = itest_harness_worker(h, NULL);
	IT_ASSERT(h, a >= 0, "cannot start worker A");
	wait_assigned(a, 30000);
	IT_ASSERT(h, kafka_mock_set_rtt(h->km, 3000) == 0, "cannot slow the mock down");
	/* returns when acknowledged, 3 s later: about when A's fetch returns them */
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, N, err, sizeof err) == 0, "produce: %s", err);
	deadline = test_now_ms() + 30000;
	while ((applied = context_offset(s->key[0])) < 0 && test_now_ms() < deadline)
		test_sleep_ms(10);
	IT_ASSERT(h, applied >= 0, "worker A saved no context within 30 s");
	test_sleep_ms(300); /* let the lane run into the bound (or through all 12 without it) */
	applied = context_offset(s->key[0]);
	worker_proc_signal(h->w[a], SIGKILL);
	rc = worker_proc_wait(h->w[a], 10000);
	IT_ASSERT(h, rc == 128 + SIGKILL, "worker A: wait gave %d after SIGKILL", rc);
	IT_ASSERT(h, kafka_mock_set_rtt(h->km, 0) == 0, "cannot speed the mock up");
	in = kafka_consume_all(h->bootstrap, ITEST_INBOUND, N, 300, 20000);
	IT_ASSERT(h, in && in->n == N, "inbound topic holds %zu records, %d produced", in ? in->n : 0, N);
	first = in->msgs[0].offset;
	kafka_recs_free(in);
	cr_log_info("%5.1f s: worker A killed with events up to offset %lld applied (first %lld)", secs(),
		    (long long)applied, (long long)first);
	IT_ASSERT(h, applied - first + 1 <= FLOW_RECENT_REPLIES,
		  "worker A applied %lld events of one phone before any reply was acknowledged (bound %d)",
		  (long long)(applied - first + 1), FLOW_RECENT_REPLIES);

	b = itest_harness_worker(h, NULL);
	IT_ASSERT(h, b >= 0, "cannot start worker B");
	out = itest_wait_replies(h->bootstrap, N, 60000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	rc = (int)itest_check_replies(s, out, ITEST_STRICT, &rep);
	if (rc)
		itest_phone_history(s, out, 0, history, sizeof history);
	kafka_recs_free(out);
	IT_ASSERT(h, rc == 0, "%d problems after the crash (%zu records, %zu distinct):\n%s%s", rc, rep.records,
		  rep.distinct, rep.first, history);
	rc = itest_harness_stop_worker(h, b, 20000);
	IT_ASSERT(h, rc == 0, "worker B exited with %d after SIGTERM", rc);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
