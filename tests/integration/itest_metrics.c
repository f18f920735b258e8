/*
 * itest_metrics.c - the worker's /metrics, /healthz and /readyz, scraped
 * from a running `wabot-worker run` (wb-mock-kafka and a real
 * redis-server):
 *  - /metrics passes `promtool check metrics` (format and naming lint);
 *  - lag reflects reality: with Redis stopped the worker cannot finish
 *    anything, so N events produced then stay behind and
 *    wabot_consumer_total_lag reads N; once Redis is back the worker catches
 *    up and the lag returns to 0, every event answered;
 *  - /readyz turns 503 while redis-server is down (liveness stays 200: an
 *    outage is not a reason to restart the pod) and 200 when it returns;
 *  - counters move: events by provider, replies produced, context hits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "free_port.h"
#include "http_client.h"
#include "itest_util.h"
#include "kafka_client.h"
#include "redis_server.h"
#include "test_clock.h"

#define PHONES 50
#define EVENTS 300

static struct itest_harness *h;
static struct itest_stream *s;

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	h = NULL;
	s = NULL;
}

static int get_status(int port, const char *path, char *body, size_t cap)
{
	struct http_reply r;
	int status = -1;

	if (http_client_get(port, "GET", path, 5000, &r) == 0) {
		status = r.status;
		if (body)
			snprintf(body, cap, "%s", r.body);
	}
	http_reply_fini(&r);
	return status;
}

static bool wait_status(int port, const char *path, int want, int timeout_ms)
{
	int64_t until = test_now_ms() + timeout_ms;

	while (test_now_ms() < until) {
		if (get_status(port, path, NULL, 0) == want)
			return true;
		test_sleep_ms(200);
	}
	return false;
}

/* The value of the sample line starting with `series ` in a scrape, or -1. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static char *scrape(int port)
{
	struct http_reply r;
	char *text = NULL;

	if (http_client_get(port, "GET", "/metrics", 5000, &r) == 0 && r.status == 200)
		text = strdup(r.body);
	http_reply_fini(&r);
	return text;
}

static bool wait_sample(int port, const char *series, double want, int timeout_ms, double *last)
{
	int64_t until = test_now_ms() + timeout_ms;

	while (test_now_ms() < until) {
		char *text = scrape(port);

		*last = text ? sample(text, series) : -2;
		free(text);
		if (*last == want)
			return true;
		test_sleep_ms(300);
	}
	{
		/* the partitions' view, for the failure message */
		char *text = scrape(port);

		for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (strncmp(p, "wabot_consumer_", 15) == 0)
				fprintf(stderr, "%.*s\n", (int)(strchr(p, '\n') ? strchr(p, '\n') - p : (long)strlen(p)),
					p);
		free(text);
	}
	return false;
}

static void promtool_accepts(const char *text, const char *dir)
{
	char path[512], cmd[1200];
	FILE *f;
	int rc;

	snprintf(path, sizeof path, "%s/scrape.txt", dir);
	f = fopen(path, "w");
	IT_ASSERT(h, f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s/promtool.out 2>&1", path, dir);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof cmd, "cat %s/promtool.out >&2", dir);
		(void)system(cmd);
	}
	IT_ASSERT(h, rc == 0, "promtool check metrics failed on the worker's /metrics (exit %d)", rc);
}

Test(itest_metrics, metrics_pass_promtool_lag_follows_an_outage_and_readiness_follows_redis, .fini = teardown,
     .timeout = 240)
{
	char err[4096] = "", extra_port[32], body[1024];
	const char *extra[] = {extra_port, NULL};
	struct kafka_recs *out;
	double v;
	char *text;
	int port = free_port(), w;

	cr_assert_gt(port, 0, "no free loopback port");
	h = itest_harness_new("metrics", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(PHONES, EVENTS, 0x3e7, false);
	cr_assert_not_null(s);
	snprintf(extra_port, sizeof extra_port, "HTTP_PORT=%d", port);
	w = itest_harness_worker(h, extra);
	IT_ASSERT(h, w >= 0, "cannot start the worker");

	/* ready once it has joined the group and Redis answers */
	IT_ASSERT(h, wait_status(port, "/readyz", 200, 30000), "/readyz never 200");
	IT_ASSERT(h, get_status(port, "/healthz", body, sizeof body) == 200, "/healthz: %s", body);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, EVENTS / 2, err, sizeof err) == 0, "produce: %s", err);
	out = itest_wait_replies(h->bootstrap, EVENTS / 2, 60000);
	IT_ASSERT(h, out && itest_distinct_replies(out) == EVENTS / 2, "first half not answered");
	kafka_recs_free(out);
	IT_ASSERT(h, wait_sample(port, "wabot_consumer_total_lag", 0, 20000, &v), "lag %g after the first half", v);

	text = scrape(port);
	IT_ASSERT(h, text != NULL, "no /metrics");
	promtool_accepts(text, h->dir);
	IT_ASSERT(h, sample(text, "wabot_records_done_total") == EVENTS / 2, "records done %g",
		  sample(text, "wabot_records_done_total"));
	IT_ASSERT(h, sample(text, "wabot_replies_produced_total") == EVENTS / 2, "replies produced %g",
		  sample(text, "wabot_replies_produced_total"));
	IT_ASSERT(h, sample(text, "wabot_events_processed_total{provider=\"acs\",kind=\"text\"}") +
				     sample(text, "wabot_events_processed_total{provider=\"meta\",kind=\"text\"}") ==
			     EVENTS / 2,
		  "events by provider do not add up");
	IT_ASSERT(h, sample(text, "wabot_partitions_assigned") == ITEST_INBOUND_PARTITIONS, "assigned %g",
		  sample(text, "wabot_partitions_assigned"));
	IT_ASSERT(h, sample(text, "wabot_context_misses_total{backend=\"redis\"}") >= PHONES, "misses %g",
		  sample(text, "wabot_context_misses_total{backend=\"redis\"}"));
	IT_ASSERT(h, sample(text, "wabot_redis_used_memory_bytes") > 100000, "redis used memory %g",
		  sample(text, "wabot_redis_used_memory_bytes"));
	IT_ASSERT(h, sample(text, "wabot_store_latency_seconds_count{backend=\"redis\"}") > 0, "no store latency");
	IT_ASSERT(h, sample(text, "wabot_up") == 1, "wabot_up %g", sample(text, "wabot_up"));
	free(text);

	/* Redis goes away: not ready, still alive; what arrives now is lag */
	redis_server_kill(h->rs);
	IT_ASSERT(h, wait_status(port, "/readyz", 503, 20000), "/readyz still 200 with Redis down");
	IT_ASSERT(h, get_status(port, "/readyz", body, sizeof body) == 503 && strstr(body, "context store"),
		  "/readyz does not say why: %s", body);
	IT_ASSERT(h, get_status(port, "/healthz", body, sizeof body) == 200, "/healthz with Redis down: %s", body);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, EVENTS / 2, EVENTS, err, sizeof err) == 0, "produce: %s", err);
	IT_ASSERT(h, wait_sample(port, "wabot_consumer_total_lag", EVENTS - EVENTS / 2, 30000, &v),
		  "lag %g with %d events waiting for Redis", v, EVENTS - EVENTS / 2);
	text = scrape(port);
	IT_ASSERT(h, text && sample(text, "wabot_up") == 0, "wabot_up not 0 while not ready");
	free(text);

	/* Redis is back: ready again, and the backlog drains to 0 */
	IT_ASSERT(h, redis_server_restart(h->rs), "redis-server did not restart");
	IT_ASSERT(h, wait_status(port, "/readyz", 200, 30000), "/readyz not 200 after Redis returned");
	IT_ASSERT(h, wait_sample(port, "wabot_consumer_total_lag", 0, 60000, &v), "lag %g after the outage", v);
	out = itest_wait_replies(h->bootstrap, EVENTS, 60000);
	IT_ASSERT(h, out && itest_distinct_replies(out) == EVENTS, "replies %zu of %d",
		  out ? itest_distinct_replies(out) : 0, EVENTS);
	kafka_recs_free(out);

	IT_ASSERT(h, get_status(port, "/nope", NULL, 0) == 404, "unknown path not 404");
	IT_ASSERT(h, itest_harness_stop_worker(h, w, 30000) == 0, "the worker did not stop cleanly");
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
