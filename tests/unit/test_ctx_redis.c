/*
 * test_ctx_redis.c - the Redis backend through the public ctx_store.h API,
 * against a real redis-server per test (tests/support/redis_server.h):
 * connecting in every mode (plain, password, ACL user, TLS) and the clear
 * failures around it, the layout in Redis (key, prefix, TTL), untrusted
 * stored values, one round trip per batch, the NOSCRIPT fallback, a killed
 * and a paused server, and compare-and-set under concurrency.
 * The cross-backend behaviour (get/put/update/delete/TTL/conflict/batch) is
 * in test_ctx_store_contract.c and is not repeated here.
 * Log lines go to an unlinked temporary file so tests can read them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ctx_store.h"
#include "log.h"
#include "log_capture.h"
#include "redis_conn.h"
#include "redis_server.h"
#include "test_clock.h"

#define PHONE "+573001234567"
#define PHONE_KEY "wabot:ctx:{" PHONE "}"

static struct redis_server *rs;
static ctx_store_t *cs;

/* ---- fixtures and helpers ------------------------------------------------ */

static void setup(void)
{
	cr_assert(log_capture_start());
}

static void teardown(void)
{
	ctx_store_destroy(cs);
	cs = NULL;
	redis_server_stop(rs);
	rs = NULL;
	log_capture_stop();
}

TestSuite(ctx_redis, .init = setup, .fini = teardown, .timeout = 30);

/* Everything logged so far (malloc'd). */
static char *log_text(void)
{
	char *text = log_capture_text();

	cr_assert_not_null(text);
	return text;
}

static int count_substr(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void start_server(enum redis_server_mode mode)
{
	rs = redis_server_start(mode);
	cr_assert_not_null(rs, "could not start redis-server");
}

/* A config with the credentials and TLS settings of the running server. */
static struct ctx_store_config config_for(enum redis_server_mode mode)
{
	struct ctx_store_config cfg = {
		.backend = CTX_BACKEND_REDIS,
		.redis = {
			.host = "127.0.0.1",
			.port = redis_server_port(rs),
			.tls_verify = true,
			.connect_timeout_ms = 2000,
			.command_timeout_ms = 2000,
			.pool_size = 2,
		},
	};

	if (mode == REDIS_SERVER_PASSWORD || mode == REDIS_SERVER_TLS)
		cfg.redis.password = REDIS_SERVER_PASSWORD_VALUE;
	if (mode == REDIS_SERVER_ACL) {
		cfg.redis.user = REDIS_SERVER_ACL_USER;
		cfg.redis.password = REDIS_SERVER_ACL_PASSWORD;
	}
	if (mode == REDIS_SERVER_TLS) {
		cfg.redis.tls = true;
		cfg.redis.host = "localhost";
		cfg.redis.tls_ca_file = redis_server_ca_file(rs);
	}
	return cfg;
}

static void open_store(const struct ctx_store_config *cfg)
{
	char err[256] = "";

	cs = ctx_store_new(cfg, err, sizeof err);
	cr_assert_not_null(cs, "ctx_store_new: %s", err);
}

/* ctx_store_new must fail; returns its errstr. */
static void expect_new_fails(const struct ctx_store_config *cfg, char *err, size_t n)
{
	err[0] = '\0';
	cs = ctx_store_new(cfg, err, n);
	cr_assert_null(cs, "ctx_store_new must fail");
	cr_assert(err[0] != '\0', "errstr must say why");
}

static wb_err_t put_str(const char *key, const char *json, uint64_t expected, uint32_t ttl_ms,
			uint64_t *version)
{
	return ctx_store_put(cs, key, json, strlen(json), expected, ttl_ms, version);
}

static void assert_round_trip(void)
{
	struct ctx_value v;
	uint64_t version = 0;

	cr_assert_eq(put_str(PHONE, "{\"customer_name\":\"Ana\"}", 0, 0, &version), WB_OK);
	cr_assert_eq(version, 1);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(v.version, 1);
	cr_assert_str_eq(v.json, "{\"customer_name\":\"Ana\"}");
	ctx_value_fini(&v);
}

static struct ctx_store_stats stats(void)
{
	struct ctx_store_stats st;

	ctx_store_stats(cs, &st);
	return st;
}

static char *cli_get(const char *key)
{
	char *out = redis_server_cli(rs, "GET", key, NULL);

	cr_assert_not_null(out, "redis-cli GET failed");
	return out;
}

static long cli_pttl(const char *key)
{
	char *out = redis_server_cli(rs, "PTTL", key, NULL);
	long v;

	cr_assert_not_null(out);
	v = strtol(out, NULL, 10);
	free(out);
	return v;
}

static void cli_ok(const char *cmd, const char *a1, const char *a2)
{
	char *out = redis_server_cli(rs, cmd, a1, a2, NULL);

	cr_assert_not_null(out, "redis-cli %s failed", cmd);
	free(out);
}

/* ---- connecting ------------------------------------------------------------- */

Test(ctx_redis, plain_put_then_get_round_trips)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_str_eq(ctx_store_backend_name(cs), "redis");
	assert_round_trip();
}

Test(ctx_redis, password_auth_round_trips)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_PASSWORD);
	cfg = config_for(REDIS_SERVER_PASSWORD);
	open_store(&cfg);
	assert_round_trip();
}

Test(ctx_redis, acl_user_round_trips)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_ACL);
	cfg = config_for(REDIS_SERVER_ACL);
	open_store(&cfg);
	assert_round_trip();
}

Test(ctx_redis, tls_with_generated_ca_round_trips)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	open_store(&cfg);
	assert_round_trip();
}

Test(ctx_redis, tls_server_name_is_verified_while_host_is_an_ip)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.host = "127.0.0.1";
	cfg.redis.tls_server_name = "localhost";
	open_store(&cfg);
	assert_round_trip();
}

Test(ctx_redis, tls_ip_host_is_verified_against_the_ip_in_the_certificate)
{
	struct ctx_store_config cfg;

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.host = "127.0.0.1";
	open_store(&cfg);
	assert_round_trip();
}

Test(ctx_redis, wrong_password_fails_with_an_auth_error_without_the_secret)
{
	struct ctx_store_config cfg;
	char err[256];

	start_server(REDIS_SERVER_PASSWORD);
	cfg = config_for(REDIS_SERVER_PASSWORD);
	cfg.redis.password = "wrong-Pa55word";
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, "authentication"), "errstr: %s", err);
	cr_assert_null(strstr(err, "wrong-Pa55word"), "errstr leaks the password: %s", err);
	cr_assert_null(strstr(err, REDIS_SERVER_PASSWORD_VALUE), "errstr: %s", err);
}

Test(ctx_redis, wrong_acl_user_fails_with_an_auth_error)
{
	struct ctx_store_config cfg;
	char err[256];

	start_server(REDIS_SERVER_ACL);
	cfg = config_for(REDIS_SERVER_ACL);
	cfg.redis.user = "mallory";
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, "authentication"), "errstr: %s", err);
	cr_assert(strstr(err, "mallory"), "errstr names the user: %s", err);
	cr_assert_null(strstr(err, REDIS_SERVER_ACL_PASSWORD), "errstr leaks the password: %s", err);
}

Test(ctx_redis, missing_password_fails_with_an_auth_error)
{
	struct ctx_store_config cfg;
	char err[256];

	start_server(REDIS_SERVER_PASSWORD);
	cfg = config_for(REDIS_SERVER_PLAIN);
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, "authentication"), "errstr: %s", err);
}

Test(ctx_redis, tls_without_the_ca_fails_certificate_verification)
{
	struct ctx_store_config cfg;
	char err[256];

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.tls_ca_file = NULL; /* system store: does not trust the test CA */
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, "certificate verify failed"), "errstr: %s", err);
	cr_assert(strstr(err, "self-signed") || strstr(err, "issuer"), "errstr carries OpenSSL's reason: %s",
		  err);
}

Test(ctx_redis, tls_with_a_wrong_server_name_fails_verification)
{
	struct ctx_store_config cfg;
	char err[256];

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.tls_server_name = "redis.example.com";
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, "certificate verify failed"), "errstr: %s", err);
	cr_assert(strstr(err, "mismatch"), "errstr: %s", err);
}

Test(ctx_redis, tls_verify_off_accepts_an_untrusted_certificate_and_warns)
{
	struct ctx_store_config cfg;
	char *log;

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.tls_ca_file = NULL;
	cfg.redis.tls_verify = false;
	open_store(&cfg);
	assert_round_trip();
	log = log_text();
	cr_assert_eq(count_substr(log, "verification is disabled"), 1, "log: %s", log);
	free(log);
}

Test(ctx_redis, plain_client_against_a_tls_port_fails_cleanly)
{
	struct ctx_store_config cfg;
	char err[256], port[16];
	int64_t t0;

	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	cfg.redis.tls = false;
	cfg.redis.connect_timeout_ms = 1000;
	snprintf(port, sizeof port, ":%d", redis_server_port(rs));
	t0 = test_now_ms();
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert_lt(test_now_ms() - t0, 10000, "bounded by the connect timeout, not hanging");
	cr_assert(strstr(err, port), "errstr names host:port: %s", err);
	cr_assert(strstr(err, "TLS port"), "errstr hints at TLS: %s", err);
}

Test(ctx_redis, tls_client_against_a_plain_port_fails_cleanly)
{
	struct ctx_store_config cfg;
	char err[256];
	int64_t t0;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.tls = true;
	cfg.redis.connect_timeout_ms = 500;
	t0 = test_now_ms();
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert_lt(test_now_ms() - t0, 10000, "bounded by the connect timeout, not hanging");
	cr_assert(strstr(err, "TLS"), "errstr: %s", err);
}

Test(ctx_redis, nothing_listening_gives_a_clear_error)
{
	struct ctx_store_config cfg;
	char err[256], where[64];

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	redis_server_kill(rs);
	snprintf(where, sizeof where, "127.0.0.1:%d", cfg.redis.port);
	expect_new_fails(&cfg, err, sizeof err);
	cr_assert(strstr(err, where), "errstr: %s", err);
	cr_assert(strstr(err, "refused"), "errstr: %s", err);
}

Test(ctx_redis, select_keeps_databases_apart)
{
	struct ctx_store_config cfg;
	ctx_store_t *other;
	struct ctx_value v;
	char err[256] = "";

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.db = 3;
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK);
	cfg.redis.db = 0;
	other = ctx_store_new(&cfg, err, sizeof err);
	cr_assert_not_null(other, "%s", err);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(other, PHONE, &v), WB_OK);
	cr_assert_not(v.found, "db 0 must not see db 3's key");
	ctx_value_fini(&v);
	ctx_store_destroy(other);
}

/* A context of exactly CTX_STORE_MAX_VALUE bytes: many TLS records and
 * many reads per reply, and the stored value (prefix included) still fits
 * the read bound. */
Test(ctx_redis, largest_context_round_trips_over_tls)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	char *json = malloc(CTX_STORE_MAX_VALUE + 1);
	size_t len = CTX_STORE_MAX_VALUE;

	cr_assert_not_null(json);
	memset(json, 'x', len);
	memcpy(json, "{\"blob\":\"", 9);
	memcpy(json + len - 2, "\"}", 2);
	json[len] = '\0';
	start_server(REDIS_SERVER_TLS);
	cfg = config_for(REDIS_SERVER_TLS);
	open_store(&cfg);
	cr_assert_eq(ctx_store_put(cs, PHONE, json, len, 0, 0, NULL), WB_OK);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(v.len, len);
	cr_assert_eq(memcmp(v.json, json, len), 0);
	ctx_value_fini(&v);
	cr_assert_eq(stats().corrupt, 0);
	free(json);
}

/* ---- layout in Redis ------------------------------------------------------- */

Test(ctx_redis, stored_value_uses_the_key_format_and_the_store_prefix)
{
	struct ctx_store_config cfg;
	char *raw;
	long long t;
	struct timespec wall;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, " { \"conversation_step\" : \"menu\" } ", 0, 0, NULL), WB_OK);
	raw = cli_get(PHONE_KEY);
	cr_assert_eq(strncmp(raw, "{\"version\":1,\"updated_at\":", 26), 0, "stored: %s", raw);
	t = strtoll(raw + 26, NULL, 10);
	clock_gettime(CLOCK_REALTIME, &wall);
	cr_assert_lt(llabs((long long)wall.tv_sec * 1000 - t), 60000, "updated_at is unix ms: %s", raw);
	cr_assert(strstr(raw, ",\"conversation_step\" : \"menu\"}"), "members verbatim: %s", raw);
	free(raw);
}

Test(ctx_redis, empty_object_is_stored_as_the_prefix_alone)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	char *raw;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{ }", 0, 0, NULL), WB_OK);
	raw = cli_get(PHONE_KEY);
	cr_assert_eq(strncmp(raw, "{\"version\":1,\"updated_at\":", 26), 0, "stored: %s", raw);
	cr_assert_eq(raw[strlen(raw) - 1], '}');
	cr_assert_null(strchr(raw + 26, ','), "no member after updated_at: %s", raw);
	free(raw);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert(v.found);
	cr_assert_str_eq(v.json, "{}");
	ctx_value_fini(&v);
}

Test(ctx_redis, ttl_is_set_and_refreshed_by_a_write_not_by_a_read)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	long set, after_read, after_write;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 60000, NULL), WB_OK);
	set = cli_pttl(PHONE_KEY);
	cr_assert(set > 50000 && set <= 60000, "PTTL %ld after a put with a 60 s TTL", set);
	test_sleep_ms(400);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert(v.found);
	ctx_value_fini(&v);
	after_read = cli_pttl(PHONE_KEY);
	cr_assert(after_read > 0 && after_read <= set - 350, "a read must not refresh the TTL: PTTL %ld then %ld",
		  set, after_read);
	cr_assert_eq(put_str(PHONE, "{\"a\":2}", 1, 60000, NULL), WB_OK);
	after_write = cli_pttl(PHONE_KEY);
	cr_assert(after_write >= after_read + 350, "a write must refresh the TTL: PTTL %ld then %ld", after_read,
		  after_write);
}

/* ---- untrusted stored values ---------------------------------------------- */

/* Plants value under PHONE's key, reads it through the store: a miss, one
 * corrupt, one error, a warning with the masked phone and never the value. */
static void assert_planted_is_corrupt(const char *value, const char *reason_part)
{
	struct ctx_store_config cfg;
	struct ctx_store_stats st;
	struct ctx_value v;
	char *log;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	if (value)
		cli_ok("SET", PHONE_KEY, value);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK, "a corrupt value is a miss, not an error code");
	cr_assert_not(v.found);
	cr_assert_eq(v.version, 0);
	cr_assert_str_eq(v.json, "{}");
	ctx_value_fini(&v);
	st = stats();
	cr_assert_eq(st.corrupt, 1);
	cr_assert_eq(st.errors, 1);
	cr_assert_eq(st.misses, 1);
	log = log_text();
	cr_assert(strstr(log, "not a JSON object"), "log: %s", log);
	cr_assert(strstr(log, "+57******4567"), "phone masked in the log: %s", log);
	cr_assert_null(strstr(log, PHONE), "full phone in the log: %s", log);
	if (reason_part)
		cr_assert(strstr(log, reason_part), "reason in the log: %s", log);
	if (value && strlen(value) > 8)
		cr_assert_null(strstr(log, value), "the value itself must not be logged: %s", log);
	free(log);
	/* the connection is still fine */
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK, "a miss can be overwritten");
}

Test(ctx_redis, planted_non_json_is_a_counted_miss)
{
	assert_planted_is_corrupt("not json at all", NULL);
}

Test(ctx_redis, planted_invalid_utf8_is_a_counted_miss)
{
	assert_planted_is_corrupt("{\"customer_name\":\"\xff\xfe\"}", "utf-8");
}

Test(ctx_redis, planted_json_array_is_a_counted_miss)
{
	assert_planted_is_corrupt("[{\"a\":1}]", "not an object");
}

Test(ctx_redis, planted_json_number_is_a_counted_miss)
{
	assert_planted_is_corrupt("12345", NULL);
}

Test(ctx_redis, truncated_value_with_the_store_prefix_is_a_counted_miss)
{
	assert_planted_is_corrupt("{\"version\":7,\"updated_at\":1,\"a\":", NULL);
}

Test(ctx_redis, trailing_comma_after_the_store_prefix_is_a_counted_miss)
{
	assert_planted_is_corrupt("{\"version\":7,\"updated_at\":1,}", "trailing comma");
}

Test(ctx_redis, hash_under_the_key_is_a_counted_miss)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	char *out;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	out = redis_server_cli(rs, "HSET", PHONE_KEY, "f", "v", NULL);
	cr_assert_not_null(out);
	free(out);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_not(v.found);
	ctx_value_fini(&v);
	cr_assert_eq(stats().corrupt, 1);
	cr_assert_eq(stats().errors, 1);
	/* a write replaces the foreign type */
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK);
}

Test(ctx_redis, oversized_value_is_a_counted_miss_and_the_connection_survives)
{
	struct ctx_store_config cfg;
	struct ctx_value v;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	{
		char *out = redis_server_cli(rs, "SETRANGE", PHONE_KEY, "3000000", "x", NULL);

		cr_assert_not_null(out);
		free(out);
	}
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_not(v.found);
	cr_assert_eq(stats().corrupt, 1);
	cr_assert_eq(ctx_store_get(cs, "+573009999999", &v), WB_OK, "same connection still works");
	ctx_value_fini(&v);
	cr_assert_eq(stats().reconnects, 1, "no reconnect was needed");
}

Test(ctx_redis, planted_foreign_object_is_read_without_the_store_fields)
{
	struct ctx_store_config cfg;
	struct ctx_value v;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cli_ok("SET", PHONE_KEY,
	       "{ \"customer_name\": \"Ana\", \"version\": 7, \"updated_at\": 1700000000000, "
	       "\"last_intent\": \"menu\" }");
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(v.version, 7);
	cr_assert_eq(v.updated_at_ms, 1700000000000);
	cr_assert_str_eq(v.json, "{\"customer_name\":\"Ana\",\"last_intent\":\"menu\"}");
	ctx_value_fini(&v);
	cr_assert_eq(stats().corrupt, 0);
}

Test(ctx_redis, foreign_object_version_is_honoured_by_compare_and_set)
{
	struct ctx_store_config cfg;
	uint64_t version = 0;
	char *raw;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cli_ok("SET", PHONE_KEY, "{\"last_intent\":\"menu\",\"version\":7}");
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_ERR_CONFLICT);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 6, 0, NULL), WB_ERR_CONFLICT);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 7, 0, &version), WB_OK);
	cr_assert_eq(version, 8);
	raw = cli_get(PHONE_KEY);
	cr_assert_eq(strncmp(raw, "{\"version\":8,\"updated_at\":", 26), 0, "stored: %s", raw);
	free(raw);
}

Test(ctx_redis, corrupt_value_with_the_store_prefix_can_be_replaced_after_a_miss)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	uint64_t version = 0;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cli_ok("SET", PHONE_KEY, "{\"version\":7,\"updated_at\":1,\"a\":\"\xff\"}");
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_not(v.found);
	ctx_value_fini(&v);
	/* the reader said version 0; the script must agree or the key is stuck */
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, &version), WB_OK);
	cr_assert_eq(version, 1);
}

/* ---- batches ---------------------------------------------------------------- */

#define BATCH 100

Test(ctx_redis, batch_of_100_puts_and_of_100_gets_each_take_one_round_trip)
{
	struct ctx_store_config cfg;
	struct ctx_put_item puts[BATCH];
	struct ctx_get_item gets[BATCH];
	char keys[BATCH][24], json[BATCH][32];
	uint64_t before;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	for (int i = 0; i < BATCH; i++) {
		snprintf(keys[i], sizeof keys[i], "+5730000%05d", i);
		snprintf(json[i], sizeof json[i], "{\"n\":%d}", i);
		puts[i] = (struct ctx_put_item){.key = keys[i], .json = json[i], .len = strlen(json[i]),
						.expected_version = 0};
		gets[i] = (struct ctx_get_item){.key = keys[i]};
		ctx_value_init(&gets[i].value);
	}
	before = stats().round_trips;
	cr_assert_eq(ctx_store_put_many(cs, puts, BATCH), WB_OK);
	cr_assert_eq(stats().round_trips - before, 1, "100 puts: one round trip");
	before = stats().round_trips;
	cr_assert_eq(ctx_store_get_many(cs, gets, BATCH), WB_OK);
	cr_assert_eq(stats().round_trips - before, 1, "100 gets: one round trip");
	for (int i = 0; i < BATCH; i++) {
		cr_assert_eq(puts[i].err, WB_OK);
		cr_assert_eq(puts[i].new_version, 1);
		cr_assert(gets[i].value.found);
		cr_assert_str_eq(gets[i].value.json, json[i]);
		ctx_value_fini(&gets[i].value);
	}
}

Test(ctx_redis, put_after_script_flush_falls_back_to_eval)
{
	struct ctx_store_config cfg;
	uint64_t version = 0, before;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK);
	cli_ok("SCRIPT", "FLUSH", NULL);
	before = stats().round_trips;
	cr_assert_eq(put_str(PHONE, "{\"a\":2}", 1, 0, &version), WB_OK);
	cr_assert_eq(version, 2);
	cr_assert_eq(stats().round_trips - before, 2, "EVALSHA refused, then EVAL");
	before = stats().round_trips;
	cr_assert_eq(put_str(PHONE, "{\"a\":3}", 2, 0, &version), WB_OK);
	cr_assert_eq(version, 3);
	cr_assert_eq(stats().round_trips - before, 1, "EVAL loaded the script again");
}

Test(ctx_redis, batch_put_after_script_flush_applies_every_item_in_order)
{
	struct ctx_store_config cfg;
	struct ctx_put_item items[3] = {
		{.key = PHONE, .json = "{\"a\":1}", .len = 7, .expected_version = CTX_VERSION_ANY},
		{.key = PHONE, .json = "{\"a\":2}", .len = 7, .expected_version = 1},
		{.key = "+573009999999", .json = "{}", .len = 2, .expected_version = 0},
	};
	struct ctx_value v;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cli_ok("SCRIPT", "FLUSH", NULL);
	cr_assert_eq(ctx_store_put_many(cs, items, 3), WB_OK);
	cr_assert_eq(items[0].new_version, 1);
	cr_assert_eq(items[1].new_version, 2);
	cr_assert_eq(items[2].new_version, 1);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_str_eq(v.json, "{\"a\":2}");
	ctx_value_fini(&v);
}

/* The stored value of key must be ours at version v with exactly members. */
static void assert_stored(const char *key, uint64_t v, const char *members)
{
	char rkey[64], want[64], *raw;
	const char *rest;

	snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", key);
	snprintf(want, sizeof want, "{\"version\":%llu,\"updated_at\":", (unsigned long long)v);
	raw = cli_get(rkey);
	cr_assert_eq(strncmp(raw, want, strlen(want)), 0, "%s stored: %s", key, raw);
	rest = raw + strlen(want);
	while (*rest >= '0' && *rest <= '9')
		rest++;
	if (members[0])
		cr_assert(rest[0] == ',' && strncmp(rest + 1, members, strlen(members)) == 0 &&
				  strcmp(rest + 1 + strlen(members), "}") == 0,
			  "%s stored: %s", key, raw);
	else
		cr_assert_str_eq(rest, "}", "%s stored: %s", key, raw);
	free(raw);
}

/*
 * One put_many whose keys take every path of the script in one call:
 * fresh keys, our own values (matching, stale, "any"), foreign objects
 * (with and without a usable "version"), a corrupt value with our prefix,
 * a non-string type, a key given twice. Each key gets exactly the result a
 * put of its own would give; conflicting keys keep value and TTL.
 */
Test(ctx_redis, mixed_batch_reports_each_key_as_a_single_put_would)
{
	enum { N = 14 };
	struct ctx_store_config cfg;
	struct ctx_put_item it[N];
	struct ctx_store_stats st0, st1;
	static const struct {
		const char *key, *plant, *json;
		uint64_t expected;
		wb_err_t err;
		uint64_t new_version;
	} c[N] = {
		/* 0 fresh key, expected absent */
		{"+570000000000", NULL, "{\"a\":0}", 0, WB_OK, 1},
		/* 1 our value at 1, expected 1 (the fast path) */
		{"+570000000001", "", "{\"a\":1}", 1, WB_OK, 2},
		/* 2 our value at 2 (written twice below), expected 1: conflict */
		{"+570000000002", "", "{\"a\":2}", 1, WB_ERR_CONFLICT, 0},
		/* 3 foreign object with version 7, expected 7 */
		{"+570000000003", "{\"last_intent\":\"menu\",\"version\":7}", "{\"a\":3}", 7, WB_OK, 8},
		/* 4 foreign object with version 7, expected absent: conflict */
		{"+570000000004", "{\"last_intent\":\"menu\",\"version\":7}", "{\"a\":4}", 0, WB_ERR_CONFLICT, 0},
		/* 5 corrupt value with our prefix: version 0, as the reader says */
		{"+570000000005", "{\"version\":7,\"updated_at\":1,\"a\":\"\xff\"}", "{\"a\":5}", 0, WB_OK, 1},
		/* 6 a hash under the key: version 0, replaced */
		{"+570000000006", "hash", "{}", 0, WB_OK, 1},
		/* 7 fresh key, "any" */
		{"+570000000007", NULL, "{\"a\":7}", CTX_VERSION_ANY, WB_OK, 1},
		/* 8 our value at 1, "any" */
		{"+570000000008", "", "{\"a\":8}", CTX_VERSION_ANY, WB_OK, 2},
		/* 9 fresh key, expected 5: conflict */
		{"+570000000009", NULL, "{\"a\":9}", 5, WB_ERR_CONFLICT, 0},
		/* 10 key 0 again: sees the write of item 0 */
		{"+570000000000", NULL, "{\"a\":10}", 1, WB_OK, 2},
		/* 11 our layout with '}' right after the version, expected 3 */
		{"+570000000011", "{\"version\":3}", "{\"a\":11}", 3, WB_OK, 4},
		/* 12 foreign object with leading space and version 2.0, expected 2 */
		{"+570000000012", " {\"x\":1,\"version\":2.0}", "{ }", 2, WB_OK, 3},
		/* 13 foreign object with version 7, "any" */
		{"+570000000013", "{\"version\":7,\"last_intent\":\"menu\"}", "{\"a\":13}", CTX_VERSION_ANY, WB_OK, 8},
	};
	uint64_t before;
	long pttl2;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	for (int i = 0; i < N; i++) {
		char rkey[64];

		if (!c[i].plant || i == 10)
			continue;
		snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", c[i].key);
		if (strcmp(c[i].plant, "hash") == 0) {
			char *out = redis_server_cli(rs, "HSET", rkey, "f", "v", NULL);

			cr_assert_not_null(out);
			free(out);
		} else if (c[i].plant[0]) {
			cli_ok("SET", rkey, c[i].plant);
		} else {
			cr_assert_eq(put_str(c[i].key, "{\"old\":1}", 0, 60000, NULL), WB_OK);
		}
	}
	cr_assert_eq(put_str(c[2].key, "{\"old\":2}", 1, 60000, NULL), WB_OK); /* now at 2 */
	pttl2 = cli_pttl("wabot:ctx:{+570000000002}");
	for (int i = 0; i < N; i++)
		it[i] = (struct ctx_put_item){.key = c[i].key, .json = c[i].json, .len = strlen(c[i].json),
					      .expected_version = c[i].expected, .ttl_ms = 120000};
	ctx_store_stats(cs, &st0);
	before = st0.round_trips;
	cr_assert_eq(ctx_store_put_many(cs, it, N), WB_ERR_CONFLICT, "the first item error");
	ctx_store_stats(cs, &st1);
	cr_assert_eq(st1.round_trips - before, 1, "one round trip");
	cr_assert_eq(st1.conflicts - st0.conflicts, 3);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(it[i].err, c[i].err, "item %d: %s", i, wb_err_name(it[i].err));
		if (c[i].err == WB_OK)
			cr_assert_eq(it[i].new_version, c[i].new_version, "item %d: version %llu", i,
				     (unsigned long long)it[i].new_version);
	}
	/* written keys: our layout, the caller's members, the batch's TTL */
	assert_stored(c[1].key, 2, "\"a\":1");
	assert_stored(c[3].key, 8, "\"a\":3");
	assert_stored(c[5].key, 1, "\"a\":5");
	assert_stored(c[6].key, 1, "");
	assert_stored(c[7].key, 1, "\"a\":7");
	assert_stored(c[8].key, 2, "\"a\":8");
	assert_stored(c[0].key, 2, "\"a\":10");
	assert_stored(c[11].key, 4, "\"a\":11");
	assert_stored(c[12].key, 3, "");
	assert_stored(c[13].key, 8, "\"a\":13");
	for (int i = 0; i < N; i++) {
		char rkey[64];
		long t;

		snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", c[i].key);
		t = cli_pttl(rkey);
		if (c[i].err == WB_OK)
			cr_assert(t > 110000 && t <= 120000, "item %d: PTTL %ld", i, t);
	}
	/* conflicting keys: untouched */
	assert_stored(c[2].key, 2, "\"old\":2");
	cr_assert_leq(cli_pttl("wabot:ctx:{+570000000002}"), pttl2, "TTL not refreshed by a conflict");
	{
		char *raw = cli_get("wabot:ctx:{+570000000004}");

		cr_assert_str_eq(raw, c[4].plant);
		free(raw);
		raw = cli_get("wabot:ctx:{+570000000009}");
		cr_assert_str_eq(raw, "", "a conflicting fresh key stays absent");
		free(raw);
	}
}

/* More keys than one script call takes: the chunks of one batch run in
 * order in one round trip, also when a key's puts span two chunks, and
 * again after the script cache was flushed (EVAL, chunk by chunk). */
Test(ctx_redis, batch_larger_than_a_chunk_applies_in_order_even_after_script_flush)
{
	enum { N = 150 };
	struct ctx_store_config cfg;
	struct ctx_put_item *it = calloc(N, sizeof(*it));
	char (*json)[32] = calloc(N, sizeof(*json));
	struct ctx_value v;
	uint64_t before;

	cr_assert(it && json);
	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			cli_ok("SCRIPT", "FLUSH", NULL);
		/* two keys alternating: each expects the version its previous
		 * put in this batch wrote */
		for (int i = 0; i < N; i++) {
			snprintf(json[i], sizeof json[i], "{\"n\":%d}", i);
			it[i] = (struct ctx_put_item){.key = i % 2 ? "+570000000001" : "+570000000002",
						      .json = json[i], .len = strlen(json[i]),
						      .expected_version = (uint64_t)(round * N / 2 + i / 2)};
		}
		before = stats().round_trips;
		cr_assert_eq(ctx_store_put_many(cs, it, N), WB_OK, "round %d", round);
		cr_assert_eq(stats().round_trips - before, round == 0 ? 1 : 2, "round %d", round);
		for (int i = 0; i < N; i++)
			cr_assert_eq(it[i].new_version, (uint64_t)(round * N / 2 + i / 2 + 1), "round %d item %d", round,
				     i);
	}
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, "+570000000001", &v), WB_OK);
	cr_assert_eq(v.version, N);
	cr_assert_str_eq(v.json, "{\"n\":149}");
	ctx_value_fini(&v);
	free(it);
	free(json);
}

/* A write the server refuses (OOM under maxmemory) fails its own key with
 * the mapped error; a conflicting key in the same call still says conflict,
 * and the store works again once memory is available. */
Test(ctx_redis, refused_writes_fail_per_key_and_conflicts_are_still_reported)
{
	struct ctx_store_config cfg;
	struct ctx_put_item it[3] = {
		{.key = "+570000000001", .json = "{\"a\":1}", .len = 7, .expected_version = 1},
		{.key = "+570000000002", .json = "{\"a\":2}", .len = 7, .expected_version = 5},
		{.key = "+570000000003", .json = "{\"a\":3}", .len = 7, .expected_version = 0},
	};
	char *log, *out;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_eq(put_str("+570000000001", "{}", 0, 0, NULL), WB_OK);
	cr_assert_eq(put_str("+570000000002", "{}", 0, 0, NULL), WB_OK);
	out = redis_server_cli(rs, "CONFIG", "SET", "maxmemory", "1", NULL);
	cr_assert_not_null(out);
	free(out);
	cr_assert_eq(ctx_store_put_many(cs, it, 3), WB_ERR_UNAVAILABLE);
	cr_assert_eq(it[0].err, WB_ERR_UNAVAILABLE, "%s", wb_err_name(it[0].err));
	cr_assert_eq(it[1].err, WB_ERR_CONFLICT, "%s", wb_err_name(it[1].err));
	cr_assert_eq(it[2].err, WB_ERR_UNAVAILABLE, "%s", wb_err_name(it[2].err));
	log = log_text();
	cr_assert_eq(count_substr(log, "redis refused a command"), 2, "log: %s", log);
	cr_assert(strstr(log, "OOM"), "log: %s", log);
	free(log);
	out = redis_server_cli(rs, "CONFIG", "SET", "maxmemory", "0", NULL);
	cr_assert_not_null(out);
	free(out);
	cr_assert_eq(ctx_store_put_many(cs, it, 3), WB_ERR_CONFLICT);
	cr_assert_eq(it[0].err, WB_OK);
	cr_assert_eq(it[0].new_version, 2);
	cr_assert_eq(it[2].err, WB_OK);
	cr_assert_eq(it[2].new_version, 1);
}

/* ---- command framing --------------------------------------------------------- */

/* redis_cmdbuf_append frames commands itself (hiredis' formatter was slow):
 * byte for byte what redisFormatCommandArgv writes, empty and binary
 * arguments and multi-digit lengths included. */
Test(ctx_redis, command_framing_is_what_hiredis_writes)
{
	static char big[100000];
	const char *argv[5] = {"SET", "", "a\r\n\0b", big, "PX"};
	size_t argl[5] = {3, 0, 5, sizeof big, 2};
	struct redis_cmdbuf b;
	char *want = NULL;
	size_t off = 0;

	memset(big, 'x', sizeof big);
	redis_cmdbuf_init(&b);
	for (int argc = 1; argc <= 5; argc++) {
		int len = redisFormatCommandArgv(&want, argc, argv, argl);

		cr_assert_eq(redis_cmdbuf_append(&b, argc, argv, argl), WB_OK);
		cr_assert_eq(b.len - off, (size_t)len, "argc %d", argc);
		cr_assert_eq(memcmp(b.buf + off, want, (size_t)len), 0, "argc %d", argc);
		off = b.len;
		redisFreeCommand(want);
	}
	redis_cmdbuf_fini(&b);
	cr_assert_eq(redis_u64_text(big, 0), 1);
	cr_assert_eq(redis_u64_text(big, UINT64_MAX), 20);
	cr_assert_eq(memcmp(big, "18446744073709551615", 20), 0);
}

/* ---- held reads: WATCH, then MULTI/EXEC ------------------------------------ */

/* Calls of one command so far, from the server's INFO commandstats. */
static unsigned long long cmd_calls(const char *cmd)
{
	char *info = redis_server_cli(rs, "INFO", "commandstats", NULL), want[64];
	const char *p;
	unsigned long long n = 0;

	cr_assert_not_null(info);
	snprintf(want, sizeof want, "cmdstat_%s:calls=", cmd);
	if ((p = strstr(info, want)) != NULL)
		n = strtoull(p + strlen(want), NULL, 10);
	free(info);
	return n;
}

/* Reads keys[0..n) held; versions read go to the put items' expectations. */
static ctx_hold_t *held_read(const char **keys, struct ctx_get_item *g, struct ctx_put_item *pi, size_t n)
{
	ctx_hold_t *hold = NULL;

	for (size_t i = 0; i < n; i++) {
		g[i].key = keys[i];
		ctx_value_init(&g[i].value);
	}
	cr_assert_eq(ctx_store_get_many_held(cs, g, n, &hold), WB_OK);
	for (size_t i = 0; i < n; i++)
		pi[i] = (struct ctx_put_item){.key = keys[i], .json = "{\"step\":\"b\"}", .len = 12,
					      .expected_version = g[i].value.found ? g[i].value.version : 0};
	return hold;
}

static void fini_gets(struct ctx_get_item *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ctx_value_fini(&g[i].value);
}

Test(ctx_redis, held_read_then_write_is_two_round_trips_without_the_script)
{
	const char *keys[3] = {"+570000000001", "+570000000002", "+570000000003"};
	struct ctx_store_config cfg;
	struct ctx_get_item g[3];
	struct ctx_put_item pi[3];
	unsigned long long evalsha, exec;
	uint64_t before;
	ctx_hold_t *hold;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	cr_assert_eq(put_str(keys[0], "{\"step\":\"a\"}", 0, 0, NULL), WB_OK);
	cr_assert_eq(put_str(keys[1], "{}", 0, 0, NULL), WB_OK);
	cr_assert_eq(put_str(keys[1], "{\"step\":\"a\"}", 1, 0, NULL), WB_OK); /* version 2 */
	evalsha = cmd_calls("evalsha");
	exec = cmd_calls("exec");
	before = stats().round_trips;
	hold = held_read(keys, g, pi, 3);
	cr_assert_not_null(hold, "a Redis read holds its connection");
	cr_assert(g[0].value.found && g[1].value.found && !g[2].value.found);
	cr_assert_eq(pi[1].expected_version, 2);
	pi[0].ttl_ms = 50000;
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 3), WB_OK);
	cr_assert_eq(stats().round_trips - before, 2, "one read, one write");
	cr_assert_eq(cmd_calls("evalsha"), evalsha, "no script call");
	cr_assert_eq(cmd_calls("exec"), exec + 1, "one transaction");
	cr_assert_eq(pi[0].new_version, 2);
	cr_assert_eq(pi[1].new_version, 3);
	cr_assert_eq(pi[2].new_version, 1);
	assert_stored(keys[0], 2, "\"step\":\"b\"");
	assert_stored(keys[1], 3, "\"step\":\"b\"");
	assert_stored(keys[2], 1, "\"step\":\"b\"");
	{
		char rkey[64];
		long ttl;

		snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", keys[0]);
		ttl = cli_pttl(rkey);
		cr_assert(ttl > 40000 && ttl <= 50000, "PX set by the write: %ld", ttl);
	}
	cr_assert_eq(stats().puts, 3 + 3);
	fini_gets(g, 3);
}

/* A key written by someone else between the read and the write: EXEC
 * refuses the whole batch, the script then writes the keys still at the
 * version read and reports the changed one as a conflict. Also a key
 * deleted meanwhile, and an item expecting another version than read. */
Test(ctx_redis, held_write_after_another_writer_reports_that_key_as_a_conflict_and_writes_the_rest)
{
	const char *keys[4] = {"+570000000001", "+570000000002", "+570000000003", "+570000000004"};
	struct ctx_store_config cfg;
	struct ctx_get_item g[4];
	struct ctx_put_item pi[4];
	unsigned long long exec;
	uint64_t before;
	ctx_hold_t *hold;
	char rkey[64];

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(put_str(keys[i], "{\"step\":\"a\"}", 0, 0, NULL), WB_OK);
	hold = held_read(keys, g, pi, 4);
	cr_assert_not_null(hold);
	/* another writer (the pool's other connection) takes key 0 to version 2 */
	cr_assert_eq(put_str(keys[0], "{\"step\":\"other\"}", 1, 0, NULL), WB_OK);
	snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", keys[3]);
	cli_ok("DEL", rkey, NULL);
	exec = cmd_calls("exec");
	before = stats().round_trips;
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 4), WB_ERR_CONFLICT);
	cr_assert_eq(cmd_calls("exec"), exec + 1, "EXEC tried");
	cr_assert_eq(stats().round_trips - before, 2, "EXEC refused, then the script");
	cr_assert_eq(pi[0].err, WB_ERR_CONFLICT, "%s", wb_err_name(pi[0].err));
	cr_assert_eq(pi[1].err, WB_OK);
	cr_assert_eq(pi[2].err, WB_OK);
	cr_assert_eq(pi[3].err, WB_ERR_CONFLICT, "deleted meanwhile: %s", wb_err_name(pi[3].err));
	assert_stored(keys[0], 2, "\"step\":\"other\"");
	assert_stored(keys[1], 2, "\"step\":\"b\"");
	assert_stored(keys[2], 2, "\"step\":\"b\"");
	fini_gets(g, 4);

	/* nobody else wrote, but one item expects another version than read */
	hold = held_read(keys + 1, g, pi, 2);
	pi[0].expected_version = 7;
	exec = cmd_calls("exec");
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 2), WB_ERR_CONFLICT);
	cr_assert_eq(cmd_calls("exec"), exec, "the script's compare-and-set, no transaction");
	cr_assert_eq(pi[0].err, WB_ERR_CONFLICT);
	cr_assert_eq(pi[1].err, WB_OK);
	cr_assert_eq(pi[1].new_version, 3);
	fini_gets(g, 2);
}

/* A held read released without a write must not leave its WATCH on the
 * connection: a later transaction on it would be refused for a key it
 * never read. One connection, so the later read reuses it. */
Test(ctx_redis, held_read_released_without_a_write_leaves_no_watch_behind)
{
	const char *a = "+570000000001", *b = "+570000000002";
	struct ctx_store_config cfg;
	struct ctx_get_item g[1];
	struct ctx_put_item pi[1];
	uint64_t before;
	ctx_hold_t *hold;
	char rkey[64];

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	cr_assert_eq(put_str(a, "{}", 0, 0, NULL), WB_OK);
	cr_assert_eq(put_str(b, "{}", 0, 0, NULL), WB_OK);
	hold = held_read(&a, g, pi, 1);
	cr_assert_not_null(hold);
	cr_assert_eq(ctx_store_put_many_held(cs, hold, NULL, 0), WB_OK);
	fini_gets(g, 1);
	snprintf(rkey, sizeof rkey, "wabot:ctx:{%s}", a);
	cli_ok("SET", rkey, "{\"version\":9,\"updated_at\":1}");
	hold = held_read(&b, g, pi, 1);
	before = stats().round_trips;
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 1), WB_OK);
	cr_assert_eq(stats().round_trips - before, 1, "EXEC not refused for the released key");
	cr_assert_eq(cmd_calls("unwatch"), 1);
	cr_assert_eq(pi[0].new_version, 2);
	fini_gets(g, 1);
}

/* The held connection dropped between the read and the write: every item
 * fails with a transport error and nothing is written; the next held batch
 * reconnects and writes through EXEC. */
Test(ctx_redis, held_connection_lost_before_the_write_fails_every_item_then_recovers)
{
	const char *keys[2] = {"+570000000001", "+570000000002"};
	struct ctx_store_config cfg;
	struct ctx_get_item g[2];
	struct ctx_put_item pi[2];
	unsigned long long exec;
	ctx_hold_t *hold;
	char *out;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	open_store(&cfg);
	cr_assert_eq(put_str(keys[0], "{}", 0, 0, NULL), WB_OK);
	hold = held_read(keys, g, pi, 2);
	cr_assert_not_null(hold);
	out = redis_server_cli(rs, "CLIENT", "KILL", "TYPE", "normal", NULL);
	cr_assert_not_null(out);
	cr_assert_eq(strtol(out, NULL, 10), 1, "the store's one connection killed: %s", out);
	free(out);
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 2), WB_ERR_IO);
	cr_assert_eq(pi[0].err, WB_ERR_IO);
	cr_assert_eq(pi[1].err, WB_ERR_IO);
	assert_stored(keys[0], 1, "");
	fini_gets(g, 2);

	exec = cmd_calls("exec");
	hold = held_read(keys, g, pi, 2);
	cr_assert_not_null(hold, "reconnected");
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 2), WB_OK);
	cr_assert_eq(cmd_calls("exec"), exec + 1);
	assert_stored(keys[0], 2, "\"step\":\"b\"");
	assert_stored(keys[1], 1, "\"step\":\"b\"");
	fini_gets(g, 2);
}

/* A read of more keys than a held read WATCHes (WATCH costs Redis O(n^2))
 * holds nothing: the write goes through the script, and still applies. */
Test(ctx_redis, held_read_of_too_many_keys_holds_nothing_and_writes_through_the_script)
{
	enum { N = 300 };
	static struct ctx_get_item g[N];
	static struct ctx_put_item pi[N];
	static char keys[N][24];
	const char *kp[N];
	struct ctx_store_config cfg;
	ctx_hold_t *hold;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	open_store(&cfg);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "+5711%08d", i);
		kp[i] = keys[i];
	}
	hold = held_read(kp, g, pi, N);
	cr_assert_null(hold, "no hold for %d keys", N);
	cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, N), WB_OK);
	cr_assert_eq(cmd_calls("watch"), 0);
	cr_assert_eq(cmd_calls("exec"), 0);
	cr_assert_gt(cmd_calls("evalsha"), 0);
	assert_stored(keys[N - 1], 1, "\"step\":\"b\"");
	fini_gets(g, N);
}

/* A user whose ACL forbids WATCH still gets every write, through the
 * script; one warning says so. */
Test(ctx_redis, watch_refused_by_the_acl_falls_back_to_the_script)
{
	const char *keys[2] = {"+570000000001", "+570000000002"};
	struct ctx_store_config cfg;
	struct ctx_get_item g[2];
	struct ctx_put_item pi[2];
	ctx_hold_t *hold;
	char *out, *log;

	start_server(REDIS_SERVER_PLAIN);
	out = redis_server_cli(rs, "ACL", "SETUSER", "nowatch", "on", ">pw", "~*", "&*", "+@all", "-watch", NULL);
	cr_assert_not_null(out);
	free(out);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.user = "nowatch";
	cfg.redis.password = "pw";
	open_store(&cfg);
	for (int round = 0; round < 2; round++) {
		hold = held_read(keys, g, pi, 2);
		cr_assert_eq(ctx_store_put_many_held(cs, hold, pi, 2), WB_OK, "round %d", round);
		cr_assert_eq(pi[0].new_version, (uint64_t)round + 1);
		fini_gets(g, 2);
	}
	cr_assert_eq(cmd_calls("exec"), 0);
	cr_assert_eq(cmd_calls("evalsha"), 2);
	log = log_text();
	cr_assert_eq(count_substr(log, "redis refused WATCH"), 1, "log: %s", log);
	free(log);
}

/* ---- a failing server ------------------------------------------------------- */

Test(ctx_redis, killed_server_fails_with_io_error_then_recovers_after_restart)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	uint64_t reconnects;
	wb_err_t err;
	int64_t deadline;
	char *log;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	cfg.redis.connect_timeout_ms = 500;
	cfg.redis.command_timeout_ms = 500;
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK);
	reconnects = stats().reconnects;

	redis_server_kill(rs);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_ERR_IO);
	err = ctx_store_get(cs, PHONE, &v);
	cr_assert(err == WB_ERR_UNAVAILABLE || err == WB_ERR_IO, "got %s", wb_err_name(err));
	cr_assert_eq(put_str(PHONE, "{\"a\":2}", 1, 0, NULL), WB_ERR_UNAVAILABLE, "fails fast in backoff");
	/* Keep calling through several backoff periods (100, 200, 400 ms):
	 * every call fails fast, and the loss is logged once, not per attempt. */
	for (int64_t until = test_now_ms() + 700; test_now_ms() < until; test_sleep_ms(20)) {
		int64_t t0 = test_now_ms();

		err = ctx_store_get(cs, PHONE, &v);
		cr_assert(err == WB_ERR_UNAVAILABLE || err == WB_ERR_IO, "got %s", wb_err_name(err));
		cr_assert_lt(test_now_ms() - t0, 400, "a call while the server is down must not hang");
	}

	cr_assert(redis_server_restart(rs));
	deadline = test_now_ms() + 8000;
	do {
		err = ctx_store_get(cs, PHONE, &v);
		if (err != WB_OK)
			test_sleep_ms(20);
	} while (err != WB_OK && test_now_ms() < deadline);
	cr_assert_eq(err, WB_OK, "recovered after the restart: %s", wb_err_name(err));
	cr_assert_not(v.found, "a restarted server without persistence is empty");
	ctx_value_fini(&v);
	cr_assert_eq(put_str(PHONE, "{\"a\":3}", 0, 0, NULL), WB_OK, "script reloaded");
	cr_assert_gt(stats().reconnects, reconnects);

	log = log_text();
	cr_assert_eq(count_substr(log, "redis connection lost"), 1, "log: %s", log);
	cr_assert_eq(count_substr(log, "redis connection restored"), 1, "log: %s", log);
	free(log);
}

struct batch_call {
	struct ctx_put_item items[BATCH];
	char keys[BATCH][24];
	wb_err_t err;
	int64_t took_ms;
};

static void *run_batch(void *arg)
{
	struct batch_call *b = arg;
	int64_t t0 = test_now_ms();

	b->err = ctx_store_put_many(cs, b->items, BATCH);
	b->took_ms = test_now_ms() - t0;
	return NULL;
}

Test(ctx_redis, server_killed_during_a_batch_fails_every_item_with_io_error)
{
	struct ctx_store_config cfg;
	struct batch_call *b = calloc(1, sizeof(*b));
	pthread_t th;

	cr_assert_not_null(b);
	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	cfg.redis.command_timeout_ms = 5000;
	open_store(&cfg);
	for (int i = 0; i < BATCH; i++) {
		snprintf(b->keys[i], sizeof b->keys[i], "+5730000%05d", i);
		b->items[i] = (struct ctx_put_item){.key = b->keys[i], .json = "{\"a\":1}", .len = 7,
						    .expected_version = CTX_VERSION_ANY};
	}
	/* Paused, the server takes the batch into its socket buffer but never
	 * answers; killed, it resets the connection under the waiting call. */
	redis_server_pause(rs);
	cr_assert_eq(pthread_create(&th, NULL, run_batch, b), 0);
	test_sleep_ms(200);
	redis_server_kill(rs);
	pthread_join(th, NULL);
	cr_assert_eq(b->err, WB_ERR_IO, "got %s", wb_err_name(b->err));
	cr_assert_lt(b->took_ms, 4000, "the reset ends the wait, not the 5 s timeout");
	for (int i = 0; i < BATCH; i++)
		cr_assert_eq(b->items[i].err, WB_ERR_IO, "item %d: %s", i, wb_err_name(b->items[i].err));
	cr_assert_eq(stats().errors, BATCH);
	free(b);
}

Test(ctx_redis, paused_server_times_out_within_the_command_timeout)
{
	struct ctx_store_config cfg;
	struct ctx_value v;
	int64_t t0, took;
	wb_err_t err;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 1;
	cfg.redis.connect_timeout_ms = 300;
	cfg.redis.command_timeout_ms = 300;
	open_store(&cfg);
	cr_assert_eq(put_str(PHONE, "{\"a\":1}", 0, 0, NULL), WB_OK);

	redis_server_pause(rs);
	ctx_value_init(&v);
	t0 = test_now_ms();
	err = ctx_store_get(cs, PHONE, &v);
	took = test_now_ms() - t0;
	cr_assert_eq(err, WB_ERR_TIMEOUT, "got %s", wb_err_name(err));
	cr_assert(took >= 250 && took < 1500, "took %lld ms for a 300 ms timeout", (long long)took);
	redis_server_resume(rs);

	err = WB_ERR_TIMEOUT;
	for (int64_t deadline = test_now_ms() + 8000; err != WB_OK && test_now_ms() < deadline;) {
		err = ctx_store_get(cs, PHONE, &v);
		if (err != WB_OK)
			test_sleep_ms(20);
	}
	cr_assert_eq(err, WB_OK, "recovered after resume");
	cr_assert(v.found);
	ctx_value_fini(&v);
}

/* ---- concurrency ------------------------------------------------------------ */

#define CAS_THREADS 8
#define CAS_INCREMENTS 25

static void *cas_worker(void *arg)
{
	struct ctx_value v;
	long failures = 0;

	(void)arg;
	ctx_value_init(&v);
	for (int done = 0; done < CAS_INCREMENTS;) {
		char json[64];
		const char *p;
		long n = 0;
		wb_err_t err;

		if (ctx_store_get(cs, PHONE, &v) != WB_OK) {
			failures++;
			break;
		}
		if (v.found && (p = strstr(v.json, "\"n\":")) != NULL)
			n = strtol(p + 4, NULL, 10);
		snprintf(json, sizeof json, "{\"n\":%ld}", n + 1);
		err = put_str(PHONE, json, v.found ? v.version : 0, 0, NULL);
		if (err == WB_OK)
			done++;
		else if (err != WB_ERR_CONFLICT) {
			failures++;
			break;
		}
	}
	ctx_value_fini(&v);
	return (void *)failures;
}

Test(ctx_redis, concurrent_cas_increments_over_a_small_pool_lose_no_update)
{
	struct ctx_store_config cfg;
	pthread_t th[CAS_THREADS];
	struct ctx_value v;
	const char *p;

	start_server(REDIS_SERVER_PLAIN);
	cfg = config_for(REDIS_SERVER_PLAIN);
	cfg.redis.pool_size = 2;
	open_store(&cfg);
	for (int i = 0; i < CAS_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, cas_worker, NULL), 0);
	for (int i = 0; i < CAS_THREADS; i++) {
		void *failures;

		pthread_join(th[i], &failures);
		cr_assert_eq((long)failures, 0, "thread %d saw an error", i);
	}
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	p = strstr(v.json, "\"n\":");
	cr_assert_not_null(p, "%s", v.json);
	cr_assert_eq(strtol(p + 4, NULL, 10), CAS_THREADS * CAS_INCREMENTS, "lost updates: %s", v.json);
	cr_assert_eq(v.version, CAS_THREADS * CAS_INCREMENTS);
	ctx_value_fini(&v);
	cr_assert_eq(stats().reconnects, 2, "the pool never needed a reconnect");
}

/* ---- server memory (for /metrics) ------------------------------------------ */

Test(ctx_redis, server_memory_is_what_info_memory_says_and_grows_with_data)
{
	struct ctx_store_config cfg;
	uint64_t before = 0, after = 0, info;
	char *out, *line, big[4096];
	int i;

	start_server(REDIS_SERVER_PASSWORD);
	cfg = config_for(REDIS_SERVER_PASSWORD);
	open_store(&cfg);
	cr_assert_eq(ctx_store_server_memory(cs, &before), WB_OK);
	out = redis_server_cli(rs, "INFO", "memory", NULL);
	cr_assert_not_null(out);
	line = strstr(out, "used_memory:");
	cr_assert_not_null(line);
	info = strtoull(line + 12, NULL, 10);
	free(out);
	/* the same figure, give or take what the client connections use */
	cr_assert(before > 100000 && info > before / 2 && info < before * 2, "store %llu, INFO %llu",
		  (unsigned long long)before, (unsigned long long)info);
	memset(big, 'x', sizeof big);
	memcpy(big, "{\"pad\":\"", 8);
	memcpy(big + sizeof big - 3, "\"}", 3);
	for (i = 0; i < 200; i++) {
		char key[32];

		snprintf(key, sizeof key, "+5730000%05d", i);
		cr_assert_eq(ctx_store_put(cs, key, big, strlen(big), CTX_VERSION_ANY, 0, NULL), WB_OK);
	}
	cr_assert_eq(ctx_store_server_memory(cs, &after), WB_OK);
	cr_assert(after > before + 200 * 4000, "200 x 4 KB stored, used_memory %llu -> %llu",
		  (unsigned long long)before, (unsigned long long)after);
}

Test(ctx_redis, server_memory_of_the_memory_backend_is_not_found)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY};
	uint64_t b = 7;

	open_store(&cfg);
	cr_assert_eq(ctx_store_server_memory(cs, &b), WB_ERR_NOT_FOUND);
	cr_assert_eq(b, 7);
}
