/*
 * itest_check.c - `wabot-worker check` against librdkafka's mock cluster
 * (wb-mock-kafka) and real redis-servers (one with a password, one behind
 * TLS): everything in order passes (exit 0) with one line per check and
 * the store's latency; a wrong Redis password, a broker nobody listens
 * on, a missing topic and a broken flow file each fail (exit 1) on their
 * own line with the reason, and no secret is ever printed; the test key is
 * gone afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "itest_util.h"
#include "redis_server.h"
#include "run_binary.h"

static struct itest_harness *h;
static struct redis_server *rs;

static void teardown(void)
{
	redis_server_stop(rs);
	itest_harness_destroy(h);
	rs = NULL;
	h = NULL;
}

/* The mock cluster (tag names the group) and a redis-server in mode. */
static void start(const char *tag, enum redis_server_mode mode)
{
	h = itest_harness_new(tag, false);
	cr_assert_not_null(h, "the mock cluster did not start");
	rs = redis_server_start(mode);
	cr_assert_not_null(rs, "redis-server did not start");
}

static void check(struct run_result *r, const char *env)
{
	char full[1024];

	snprintf(full, sizeof full, "KAFKA_GROUP_ID=%s %s", h->group, env);
	IT_ASSERT(h, run_binary(r, WB_WORKER_BIN, full, "check --timeout-ms 3000") == 0, "cannot run check");
}

/* The line of check `what` (e.g. "store "), or NULL. */
static const char *line_of(const char *out, const char *verdict, const char *what)
{
	char needle[64];

	snprintf(needle, sizeof needle, "\n%-5s %-6s ", verdict, what);
	return strstr(out, needle);
}

static void assert_no_secret(const struct run_result *r)
{
	IT_ASSERT(h, !strstr(r->out, REDIS_SERVER_PASSWORD_VALUE) && !strstr(r->err, REDIS_SERVER_PASSWORD_VALUE) &&
			     !strstr(r->out, "wr0ng-pass") && !strstr(r->err, "wr0ng-pass"),
		  "a password was printed:\n%s\n%s", r->out, r->err);
}

Test(itest_check, all_in_order_passes_with_one_line_per_check, .fini = teardown, .timeout = 120)
{
	struct run_result r;
	char env[1024], *keys;

	start("check", REDIS_SERVER_PASSWORD);

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s REDIS_URL=%s", h->bootstrap, redis_server_url(rs));
	check(&r, env);
	IT_ASSERT(h, r.status == 0, "check exited %d:\n%s\n%s", r.status, r.out, r.err);
	IT_ASSERT(h, strstr(r.out, "configuration (secrets hidden):\n"), "no configuration block:\n%s", r.out);
	IT_ASSERT(h, line_of(r.out, "ok", "flow"), "flow line:\n%s", r.out);
	IT_ASSERT(h, line_of(r.out, "ok", "store") && strstr(r.out, "set ") && strstr(r.out, " ms, get "),
		  "store line with its latency:\n%s", r.out);
	IT_ASSERT(h, line_of(r.out, "ok", "kafka"), "kafka line:\n%s", r.out);
	IT_ASSERT(h, strstr(r.out, "wa.inbound (inbound): 16 partitions") &&
			     strstr(r.out, "wa.outbound (outbound): 16 partitions") &&
			     strstr(r.out, "wa.dlq (dead letters): 4 partitions"),
		  "topics with their partitions:\n%s", r.out);
	/* the 2.0.2 mock cannot describe groups: a warning, not a failure */
	IT_ASSERT(h, line_of(r.out, "warn", "group") || line_of(r.out, "ok", "group"), "group line:\n%s", r.out);
	IT_ASSERT(h, line_of(r.out, "ok", "lag") && strstr(r.out, "0 records behind"), "lag line:\n%s", r.out);
	IT_ASSERT(h, strstr(r.out, "check passed: 0 failed"), "verdict:\n%s", r.out);
	assert_no_secret(&r);
	run_result_fini(&r);

	keys = redis_server_cli(rs, "KEYS", "*", NULL);
	IT_ASSERT(h, keys && !strstr(keys, "wabot-worker-check"), "the test key was left behind: %s", keys);
	free(keys);
}

Test(itest_check, wrong_redis_password_fails_the_store_line_and_exits_1, .fini = teardown, .timeout = 120)
{
	struct run_result r;
	char env[1024];

	start("check-pass", REDIS_SERVER_PASSWORD);

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s REDIS_URL=redis://:wr0ng-pass@127.0.0.1:%d/0", h->bootstrap,
		 redis_server_port(rs));
	check(&r, env);
	IT_ASSERT(h, r.status == 1, "check with a wrong password exited %d:\n%s", r.status, r.out);
	IT_ASSERT(h, line_of(r.out, "FAIL", "store") && strstr(r.out, "WRONGPASS"),
		  "no failed store line naming the refusal:\n%s", r.out);
	/* the rest is still checked */
	IT_ASSERT(h, line_of(r.out, "ok", "kafka"), "kafka not checked after the store failed:\n%s", r.out);
	IT_ASSERT(h, strstr(r.out, "check failed: 1 failed"), "verdict:\n%s", r.out);
	assert_no_secret(&r);
	run_result_fini(&r);
}

Test(itest_check, tls_redis_with_its_ca_passes, .fini = teardown, .timeout = 120)
{
	struct run_result r;
	char env[1024];

	start("check-tls", REDIS_SERVER_TLS);

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s REDIS_URL=%s REDIS_TLS_CA_FILE=%s", h->bootstrap,
		 redis_server_url(rs), redis_server_ca_file(rs));
	check(&r, env);
	IT_ASSERT(h, r.status == 0 && line_of(r.out, "ok", "store") && strstr(r.out, ", TLS"),
		  "TLS store check exited %d:\n%s\n%s", r.status, r.out, r.err);
	run_result_fini(&r);

	/* without the CA the certificate is not trusted: a failure that says so */
	snprintf(env, sizeof env, "KAFKA_BROKERS=%s REDIS_URL=%s", h->bootstrap, redis_server_url(rs));
	check(&r, env);
	IT_ASSERT(h, r.status == 1 && line_of(r.out, "FAIL", "store") && strstr(r.out, "certificate"),
		  "untrusted certificate: exit %d:\n%s", r.status, r.out);
	run_result_fini(&r);
}

Test(itest_check, unreachable_broker_missing_topic_and_bad_flow_each_fail_on_their_line, .fini = teardown,
     .timeout = 120)
{
	struct run_result r;
	char env[1024];

	h = itest_harness_new("check-kafka", false);
	cr_assert_not_null(h, "the mock cluster did not start");

	check(&r, "KAFKA_BROKERS=127.0.0.1:1");
	IT_ASSERT(h, r.status == 1 && line_of(r.out, "FAIL", "kafka") && strstr(r.out, "127.0.0.1:1"),
		  "unreachable broker: exit %d:\n%s", r.status, r.out);
	IT_ASSERT(h, line_of(r.out, "ok", "store"), "memory store line missing:\n%s", r.out);
	run_result_fini(&r);

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s DLQ_TOPIC=no.such.dlq", h->bootstrap);
	check(&r, env);
	IT_ASSERT(h, r.status == 1 && line_of(r.out, "FAIL", "topic") && strstr(r.out, "no.such.dlq") &&
			     strstr(r.out, "does not exist"),
		  "missing topic: exit %d:\n%s", r.status, r.out);
	run_result_fini(&r);

	snprintf(env, sizeof env, "KAFKA_BROKERS=%s FLOW_FILE=/nonexistent/flow.json", h->bootstrap);
	check(&r, env);
	IT_ASSERT(h, (r.status == 1 && line_of(r.out, "FAIL", "flow")) || r.status == 2,
		  "missing flow file: exit %d:\n%s", r.status, r.out);
	run_result_fini(&r);

	check(&r, "KAFKA_BROKERS=x CONTEXT_TTL_SECONDS=-5");
	IT_ASSERT(h, r.status == 2 && strstr(r.out, "FAIL  config CONTEXT_TTL_SECONDS"), "bad setting: exit %d:\n%s",
		  r.status, r.out);
	run_result_fini(&r);
}
