/*
 * itest_stream.c - one `wabot-worker run` process (4 worker threads)
 * against librdkafka's mock cluster (wb-mock-kafka), with the memory store
 * and with a real redis-server: 3,000 text events over 300 phones, ACS and
 * Meta mixed, with 21 malformed records among them, a third produced before
 * the worker starts and the rest while it runs; and a smaller stream under
 * tight flow control (partitions pausing and resuming all along).
 * Checks, from the topics themselves: every event has exactly one reply
 * (no duplicates at all: nothing was rebalanced or redelivered); per phone
 * the replies come in event order and walk the donations cycle step by
 * step; every malformed record is in the DLQ once, with its key, its bytes
 * and the headers naming its inbound partition and offset; the group's
 * committed offsets reach the high watermark of every inbound partition;
 * SIGTERM stops the worker with exit code 0 and its final counters agree;
 * nothing unexpected is logged at warn or error level.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "itest_util.h"
#include "kafka_client.h"
#include "test_clock.h"

#define PHONES 300
#define EVENTS 3000

static struct itest_harness *h;
static struct itest_stream *s;

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	h = NULL;
	s = NULL;
}

/* Warnings a clean run may log. */
static const char *const allowed_warnings[] = {
	"\"msg\":\"dead-lettered\"",
	/* the session timeout set for the consumer is passed to the producer too */
	"CONFWARN",
	NULL,
};

static void run_stream(const char *tag, bool redis, uint32_t phones, size_t events, const char *const *extra)
{
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out;
	struct itest_worker_stats st;
	int64_t hwm[ITEST_INBOUND_PARTITIONS], t0 = test_now_ms();
	size_t problems;
	int w, rc;

	h = itest_harness_new(tag, redis);
	cr_assert_not_null(h, "the mock cluster%s did not start", redis ? " or redis-server" : "");
	s = itest_stream_new(phones, events, 0x5eed0001, true);
	cr_assert_not_null(s);

	/* a third waits before the worker starts, the rest arrives while it runs */
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, events / 3, err, sizeof err) == 0, "produce: %s", err);
	w = itest_harness_worker(h, extra);
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_log_wait_assignments(h->log[w], 1, 30000),
		  "the worker got no partitions within 30 s");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, events / 3, 2 * events / 3, err, sizeof err) == 0, "produce: %s",
		  err);
	test_sleep_ms(200);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 2 * events / 3, events, err, sizeof err) == 0, "produce: %s", err);

	out = itest_wait_replies(h->bootstrap, events, 90000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	cr_log_info("%s: %zu replies (%zu distinct) for %zu events in %.1f s", tag, rep.records, rep.distinct, events,
		    (double)(test_now_ms() - t0) / 1000.0);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first);
	IT_ASSERT(h, rep.duplicates == 0, "%zu duplicate replies without any rebalance or restart", rep.duplicates);

	problems = itest_check_inbound_and_dlq(h->bootstrap, h->group, s, events, true, hwm, err, sizeof err);
	IT_ASSERT(h, problems == 0, "%zu problems with the inbound topic or the dead letters:\n%s", problems, err);

	/* auto-commit (1 s) moves the group to the end while the worker runs */
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark while running:\n%s", err);

	rc = itest_harness_stop_worker(h, w, 30000);
	IT_ASSERT(h, rc == 0, "the worker exited with %d after SIGTERM (-1: still running after 30 s)", rc);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 5000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets after shutdown:\n%s", err);

	st = itest_log_stats(h->log[w]);
	IT_ASSERT(h, st.found, "no \"worker stopped\" line");
	IT_ASSERT(h, st.records == events + s->nbad && st.done == st.records,
		  "records %llu, done %llu; %zu were produced", (unsigned long long)st.records,
		  (unsigned long long)st.done, events + s->nbad);
	IT_ASSERT(h, st.replies == events && st.dead_lettered == s->nbad && st.duplicates == 0,
		  "replies %llu (want %zu), dead_lettered %llu (want %zu), duplicates %llu", (unsigned long long)st.replies,
		  events, (unsigned long long)st.dead_lettered, s->nbad, (unsigned long long)st.duplicates);
	IT_ASSERT(h, st.redone == 0 && st.abandoned == 0 && st.output_failed == 0 && st.poison == 0,
		  "redone %llu, abandoned %llu, output_failed %llu, poison %llu", (unsigned long long)st.redone,
		  (unsigned long long)st.abandoned, (unsigned long long)st.output_failed, (unsigned long long)st.poison);
	problems = itest_log_unexpected(h->log[w], allowed_warnings, err, sizeof err);
	IT_ASSERT(h, problems == 0, "%zu unexpected warnings or errors in the log, the first:\n%s", problems, err);
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
	cr_log_info("%s: done in %.1f s (pauses %llu)", tag, (double)(test_now_ms() - t0) / 1000.0,
		    (unsigned long long)st.pauses);
}

Test(itest_stream, memory_store_replies_once_per_event_in_phone_order_and_dead_letters_malformed,
     .fini = teardown, .timeout = 240)
{
	run_stream("stream-mem", false, PHONES, EVENTS, NULL);
}

Test(itest_stream, redis_store_replies_once_per_event_in_phone_order_and_dead_letters_malformed,
     .fini = teardown, .timeout = 240)
{
	run_stream("stream-redis", true, PHONES, EVENTS, NULL);
}

/*
 * Bursts: 12 phones with 100 events each, most of them fetched at once.
 * A phone may have only FLOW_RECENT_REPLIES records started and not
 * acknowledged (worker/lanes.c), so its later records wait, parked, while
 * the lane serves the other phones: every reply must still come, once, in
 * each phone's order.
 */
Test(itest_stream, bursts_of_one_phone_wait_for_acknowledgements_in_phone_order, .fini = teardown,
     .timeout = 240)
{
	struct itest_worker_stats st;

	run_stream("stream-bursts", false, 12, 1200, NULL);
	st = itest_log_stats(h->log[0]);
	cr_log_info("stream-bursts: %llu records waited for acknowledgements", (unsigned long long)st.hold_waits);
	IT_ASSERT(h, st.hold_waits > 0, "no record waited for its phone's acknowledgements: scenario not reached");
}

/*
 * Queues of 4 records per worker thread and 8 records in flight per
 * partition: the consumer waits for room all along (and partitions pause
 * when their in-flight limit holds them longer than that wait), and nothing
 * may be lost, repeated or reordered by it. Fewer events: every pause costs
 * a fetch round trip (up to fetch.wait.max.ms), about 10 ms per event here.
 * The pause path on its own: itest_rebalance (a stopped redis-server).
 */
Test(itest_stream, tight_flow_control_pauses_partitions_and_keeps_every_reply_in_order, .fini = teardown,
     .timeout = 240)
{
	static const char *const extra[] = {"WORKER_QUEUE_DEPTH=4", "MAX_IN_FLIGHT_PER_PARTITION=8", NULL};
	struct itest_worker_stats st;

	run_stream("stream-tight", false, 60, 600, extra);
	st = itest_log_stats(h->log[0]);
	cr_log_info("stream-tight: %llu waits for room, %llu pauses", (unsigned long long)st.room_waits,
		    (unsigned long long)st.pauses);
	IT_ASSERT(h, st.room_waits > 0, "flow control never waited for room");
}
