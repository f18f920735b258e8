/*
 * itest_rebalance.c - flow control across a rebalance: a partition paused
 * for flow control when it is revoked, and assigned back to the same
 * worker later, must be consumed again (librdkafka 2.0.2 keeps an
 * application pause across incremental unassign and assign; the worker
 * resumes its partitions on assign and revoke since this test found it).
 * Two `wabot-worker run` processes, a real redis-server, the mock cluster.
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
static int64_t t0;

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	h = NULL;
	s = NULL;
}

static double secs(void)
{
	return (double)(test_now_ms() - t0) / 1000.0;
}

static void wait_assigned(int w, int timeout_ms)
{
	IT_ASSERT(h, itest_log_wait_assignments(h->log[w], 1, timeout_ms), "worker %d got no partitions within %d s", w,
		  timeout_ms / 1000);
	cr_log_info("%5.1f s: worker %d has partitions", secs(), w);
}

/*
 * Flow control across rebalances: worker A alone, queues of 8 records per
 * thread; redis-server is stopped so that A's queues fill and its
 * partitions pause; B joins, and takes half of them
 * (A gives up what it cannot drain in 2 s); redis-server continues; B
 * leaves with SIGTERM, so its partitions come back to A, some of which A
 * had paused when they were taken from it. The rest of the stream must be
 * served: a partition assigned again must not stay paused.
 */
Test(itest_rebalance, partitions_paused_when_revoked_are_consumed_again_when_assigned_back, .fini = teardown,
     .timeout = 240)
{
	static const char *const env[] = {"WORKER_QUEUE_DEPTH=8", "DRAIN_TIMEOUT_SECONDS=2",
					  "SHUTDOWN_TIMEOUT_SECONDS=10", NULL};
	enum { N = 600, Q = N / 3 };
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out, *in;
	int64_t hwm[ITEST_INBOUND_PARTITIONS];
	size_t problems, assigned_a;
	int a, b, rc;

	h = itest_harness_new("group-paused", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(100, N, 0x5eed0009, false);
	cr_assert_not_null(s);
	t0 = test_now_ms();

	a = itest_harness_worker(h, env);
	IT_ASSERT(h, a >= 0, "cannot start worker A");
	wait_assigned(a, 30000);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, Q, err, sizeof err) == 0, "produce: %s", err);
	out = itest_wait_replies(h->bootstrap, Q, 60000);
	IT_ASSERT(h, itest_distinct_replies(out) == Q, "%zu replies to the first %d events", itest_distinct_replies(out),
		  Q);
	kafka_recs_free(out);

	/* B starts (a worker does not start while Redis is unreachable), and
	 * redis-server stops before B joins the group, which takes seconds */
	assigned_a = itest_log_assignments(h->log[a]);
	b = itest_harness_worker(h, env);
	IT_ASSERT(h, b >= 0, "cannot start worker B");
	IT_ASSERT(h, itest_log_wait(h->log[b], "\"msg\":\"worker started\"", 1, 10000), "worker B did not start");
	redis_server_pause(h->rs);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, Q, 2 * Q, err, sizeof err) == 0, "produce: %s", err);
	cr_log_info("%5.1f s: redis-server stopped, %d events waiting", secs(), Q);
	wait_assigned(b, 40000);
	redis_server_resume(h->rs);
	cr_log_info("%5.1f s: redis-server continued", secs());
	out = itest_wait_replies(h->bootstrap, 2 * Q, 60000);
	IT_ASSERT(h, itest_distinct_replies(out) == 2 * Q, "%zu replies to the first %d events",
		  itest_distinct_replies(out), 2 * Q);
	kafka_recs_free(out);

	rc = itest_harness_stop_worker(h, b, 20000);
	IT_ASSERT(h, rc == 0, "worker B exited with %d after SIGTERM", rc);
	IT_ASSERT(h, itest_log_wait_assignments(h->log[a], assigned_a + 1, 30000),
		  "worker A got no partitions back within 30 s of B leaving");
	cr_log_info("%5.1f s: B left, A has its partitions back", secs());
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 2 * Q, N, err, sizeof err) == 0, "produce: %s", err);

	out = itest_wait_replies(h->bootstrap, N, 30000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	cr_log_info("%5.1f s: %zu replies, %zu distinct, %zu re-emitted", secs(), rep.records, rep.distinct,
		    rep.duplicates);
	in = kafka_consume_all(h->bootstrap, ITEST_INBOUND, N, 300, 20000);
	IT_ASSERT(h, in && in->n == N, "inbound topic holds %zu records, %d produced", in ? in->n : 0, N);
	itest_missing_by_partition(s, in, out, err, sizeof err);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first, err);
	itest_high_watermarks(in, hwm);
	kafka_recs_free(in);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	rc = itest_harness_stop_worker(h, a, 20000);
	IT_ASSERT(h, rc == 0, "worker A exited with %d after SIGTERM", rc);
	/* the scenario itself: A paused partitions, and gave some up while stuck */
	IT_ASSERT(h, itest_log_stats(h->log[a]).pauses > 0, "worker A never paused a partition: scenario not reached");
	IT_ASSERT(h, itest_log_count(h->log[a], "drain deadline passed") > 0,
		  "worker A's revocation did not happen during the outage: scenario not reached");
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
