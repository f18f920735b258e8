/*
 * test_config.c - config_load, the Redis connection-string parsers, the
 * summary and the usage text, against the contracts in config.h.
 * Every error is checked for naming its variable or flag, for being one
 * line, and for never containing the planted secret SECRET.
 * Tests pass their own environment arrays; nothing reads the real one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define SECRET "Sup3rS3cret"

/* NULL-terminated environment and argv arrays from string literals. */
#define ENV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGV(...) ((char *[]){__VA_ARGS__})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define NO_ENV ((char **)NULL)

/* Asserts err is one line, starts with "<name>: ", contains want (may be
 * NULL) and no secret. */
static void check_error_text(const char *err, const char *name, const char *want)
{
	size_t n = strlen(name);

	cr_assert(strncmp(err, name, n) == 0 && err[n] == ':' && err[n + 1] == ' ',
		  "error does not start with \"%s: \": %s", name, err);
	cr_assert_null(strchr(err, '\n'), "error is not one line: %s", err);
	cr_assert_null(strstr(err, SECRET), "secret leaked: %s", err);
	if (want != NULL)
		cr_assert_not_null(strstr(err, want), "\"%s\" not in: %s", want, err);
}

/* config_load must fail with WB_ERR_CONFIG, an error naming name, leaving
 * cfg empty. */
static void expect_load_error(char **env, int argc, char **argv, const char *name,
			      const char *want)
{
	struct wb_config cfg, zero;
	char err[512];
	wb_err_t e;

	memset(&zero, 0, sizeof zero);
	e = config_load(&cfg, argc, argv, env, err, sizeof err);
	cr_assert_eq(e, WB_ERR_CONFIG, "expected WB_ERR_CONFIG, got %s (%s)", wb_err_name(e), err);
	check_error_text(err, name, want);
	cr_assert(memcmp(&cfg, &zero, sizeof cfg) == 0, "cfg not emptied after an error");
	config_fini(&cfg);
}

/* config_load must succeed; the caller finis cfg. */
static void load_ok(struct wb_config *cfg, char **env, int argc, char **argv)
{
	char err[512] = "unset";
	wb_err_t e = config_load(cfg, argc, argv, env, err, sizeof err);

	cr_assert_eq(e, WB_OK, "config_load failed: %s: %s", wb_err_name(e), err);
	cr_assert_str_empty(err, "errstr not cleared on success");
}

/* ---- REDIS_URL ---------------------------------------------------------- */

static void url_ok(const char *url, struct wb_redis_target *t)
{
	char err[256];
	wb_err_t e = config_parse_redis_url(url, t, err, sizeof err);

	cr_assert_eq(e, WB_OK, "%s: %s", url, err);
}

Test(config, url_plain_host_gets_defaults)
{
	struct wb_redis_target t;

	url_ok("redis://cache.internal", &t);
	cr_assert_str_eq(t.host, "cache.internal");
	cr_assert_eq(t.port, 6379);
	cr_assert_eq(t.db, 0);
	cr_assert_null(t.user);
	cr_assert_null(t.password);
	cr_assert_not(t.tls);
	cr_assert_eq(t.connect_timeout_ms, 0);
	cr_assert_null(t.tls_server_name);
	config_redis_target_fini(&t);
	config_redis_target_fini(&t); /* twice is safe */
}

Test(config, url_password_only)
{
	struct wb_redis_target t;

	url_ok("redis://:" SECRET "@10.0.0.5:6390/2", &t);
	cr_assert_str_eq(t.host, "10.0.0.5");
	cr_assert_eq(t.port, 6390);
	cr_assert_eq(t.db, 2);
	cr_assert_null(t.user);
	cr_assert_str_eq(t.password, SECRET);
	config_redis_target_fini(&t);
}

Test(config, url_acl_user_and_password)
{
	struct wb_redis_target t;

	url_ok("redis://wabot:" SECRET "@cache", &t);
	cr_assert_str_eq(t.user, "wabot");
	cr_assert_str_eq(t.password, SECRET);
	cr_assert_str_eq(t.host, "cache");
	config_redis_target_fini(&t);
}

Test(config, url_credentials_are_percent_decoded)
{
	struct wb_redis_target t;

	url_ok("redis://us%40er:p%40ss%3Aw%2fd+x%25@cache", &t);
	cr_assert_str_eq(t.user, "us@er");
	cr_assert_str_eq(t.password, "p@ss:w/d+x%");
	config_redis_target_fini(&t);
}

Test(config, url_raw_at_and_slash_in_password_parse)
{
	struct wb_redis_target t;

	/* An Azure access key pasted without encoding: base64 has '/' and '+'. */
	url_ok("rediss://:ab/c+d=@e@cache:6380/1", &t);
	cr_assert_str_eq(t.password, "ab/c+d=@e");
	cr_assert_str_eq(t.host, "cache");
	cr_assert_eq(t.port, 6380);
	cr_assert_eq(t.db, 1);
	config_redis_target_fini(&t);
}

Test(config, url_ipv6_literal_in_brackets)
{
	struct wb_redis_target t;

	url_ok("redis://[::1]:6380", &t);
	cr_assert_str_eq(t.host, "::1");
	cr_assert_eq(t.port, 6380);
	config_redis_target_fini(&t);
	url_ok("redis://:" SECRET "@[2001:db8::7]/3", &t);
	cr_assert_str_eq(t.host, "2001:db8::7");
	cr_assert_eq(t.port, 6379);
	cr_assert_eq(t.db, 3);
	config_redis_target_fini(&t);
}

Test(config, url_rediss_means_tls_and_scheme_is_case_insensitive)
{
	struct wb_redis_target t;

	url_ok("rediss://wabot.redis.cache.windows.net:6380", &t);
	cr_assert(t.tls);
	cr_assert_eq(t.port, 6380);
	config_redis_target_fini(&t);
	url_ok("REDISS://h", &t);
	cr_assert(t.tls);
	cr_assert_eq(t.port, 6379, "the URL default port does not depend on TLS");
	config_redis_target_fini(&t);
	url_ok("Redis://h", &t);
	cr_assert_not(t.tls);
	config_redis_target_fini(&t);
}

Test(config, url_database_forms)
{
	struct wb_redis_target t;

	url_ok("redis://h/", &t);
	cr_assert_eq(t.db, 0);
	config_redis_target_fini(&t);
	url_ok("redis://h:1/15", &t);
	cr_assert_eq(t.port, 1);
	cr_assert_eq(t.db, 15);
	config_redis_target_fini(&t);
	url_ok("redis://h:65535/65535", &t);
	cr_assert_eq(t.port, 65535);
	cr_assert_eq(t.db, 65535);
	config_redis_target_fini(&t);
}

Test(config, url_malformed_is_rejected_without_echo)
{
	static const struct {
		const char *url;
		const char *want;
	} bad[] = {
		{"", "is empty"},
		{"http://:" SECRET "@h", "unknown scheme"},
		{"redis:/" SECRET "@h", "must start with redis://"},
		{SECRET, "must start with redis://"},
		{"redis://", "host is missing"},
		{"redis://:" SECRET "@", "host is missing"},
		{"redis://:" SECRET "@:6379", "host is missing"},
		{"redis://:" SECRET "@/0", "host is missing"},
		{"redis://h:0", "port must be 1..65535"},
		{"redis://h:65536", "port must be 1..65535"},
		{"redis://h:99999999999999999999999", "port must be 1..65535"},
		{"redis://h:abc", "port must be 1..65535"},
		{"redis://h:", "port must be 1..65535"},
		{"redis://h:-1", "port must be 1..65535"},
		{"redis://h:+80", "port must be 1..65535"},
		{"redis://h: 80", "port must be 1..65535"},
		{"redis://h/abc", "database must be"},
		{"redis://h/-1", "database must be"},
		{"redis://h/65536", "database must be"},
		{"redis://h/16x", "unexpected text after the database"},
		{"redis://h/0/extra", "unexpected text after the database"},
		{"redis://" SECRET "@h", "credentials must be"},
		{"redis://user:@h", "password is empty"},
		{"redis://:" SECRET "%zz@h", "bad %-escape"},
		{"redis://:" SECRET "%4@h", "bad %-escape"},
		{"redis://:" SECRET "%@h", "bad %-escape"},
		{"redis://:" SECRET "%00@h", "%00"},
		{"redis://u%0:" SECRET "@h", "user has a bad %-escape"},
		{"redis://h?ssl_cert_reqs=none", "query options"},
		{"redis://:" SECRET "@h:6379/0?timeout=1", "query options"},
		{"redis://h#frag", "fragment"},
		{"redis://::1:6379", "brackets"},
		{"redis://[::1", "']'"},
		{"redis://[not:an:ip]:6379", "not a valid IPv6"},
		{"redis://[]:6379", "host is missing"},
		{"redis://[::1]x", "unexpected text after the IPv6"},
		{"redis://[::1]:0", "port must be"},
		{"redis://my host", "host may only contain"},
		{"redis://h\n", "host may only contain"},
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wb_redis_target t;
		char err[256];
		wb_err_t e = config_parse_redis_url(bad[i].url, &t, err, sizeof err);

		cr_assert_eq(e, WB_ERR_CONFIG, "accepted: %s", bad[i].url);
		cr_assert_not_null(strstr(err, bad[i].want), "%s -> \"%s\", want \"%s\"",
				   bad[i].url, err, bad[i].want);
		cr_assert_null(strstr(err, SECRET), "secret leaked: %s", err);
		cr_assert_null(t.host, "out not empty after an error");
		cr_assert_null(t.password, "out not empty after an error");
	}
}

Test(config, url_null_is_an_error)
{
	struct wb_redis_target t;

	cr_assert_eq(config_parse_redis_url(NULL, &t, NULL, 0), WB_ERR_CONFIG);
}

/* ---- AZURE_REDIS_CONNECTIONSTRING --------------------------------------- */

static void azure_ok(const char *cs, struct wb_redis_target *t)
{
	char err[256];
	wb_err_t e = config_parse_azure_redis(cs, t, err, sizeof err);

	cr_assert_eq(e, WB_OK, "%s: %s", cs, err);
}

Test(config, azure_portal_string_with_ssl)
{
	struct wb_redis_target t;

	azure_ok("wabot.redis.cache.windows.net:6380,password=" SECRET
		 ",ssl=True,abortConnect=False",
		 &t);
	cr_assert_str_eq(t.host, "wabot.redis.cache.windows.net");
	cr_assert_eq(t.port, 6380);
	cr_assert_str_eq(t.password, SECRET);
	cr_assert(t.tls);
	cr_assert_null(t.user);
	cr_assert_eq(t.db, 0);
	config_redis_target_fini(&t);
}

Test(config, azure_default_port_follows_ssl)
{
	struct wb_redis_target t;

	azure_ok("h,password=p,ssl=True", &t);
	cr_assert_eq(t.port, 6380);
	config_redis_target_fini(&t);
	azure_ok("h,ssl=True,ssl=False", &t);
	cr_assert_eq(t.port, 6379, "a repeated key wins last");
	cr_assert_not(t.tls);
	config_redis_target_fini(&t);
	azure_ok("h", &t);
	cr_assert_eq(t.port, 6379);
	cr_assert_null(t.password);
	cr_assert_not(t.tls);
	config_redis_target_fini(&t);
}

Test(config, azure_password_may_contain_equals_and_slashes)
{
	struct wb_redis_target t;

	azure_ok("h:6380,password=ab/c+d==,ssl=true", &t);
	cr_assert_str_eq(t.password, "ab/c+d==");
	config_redis_target_fini(&t);
}

Test(config, azure_keys_are_case_insensitive_and_values_trimmed)
{
	struct wb_redis_target t;

	azure_ok("  h:6380 , PASSWORD = pw=  ,\tSSL = TRUE , ABORTCONNECT=false,,", &t);
	cr_assert_str_eq(t.host, "h");
	cr_assert_eq(t.port, 6380);
	cr_assert_str_eq(t.password, "pw=");
	cr_assert(t.tls);
	config_redis_target_fini(&t);
}

Test(config, azure_optional_keys_are_read)
{
	struct wb_redis_target t;

	azure_ok("h:7000,user=wabot,password=" SECRET ",defaultDatabase=3,connectTimeout=5000,"
		 "syncTimeout=700,sslHost=wabot.redis.cache.windows.net,ssl=True",
		 &t);
	cr_assert_eq(t.port, 7000);
	cr_assert_str_eq(t.user, "wabot");
	cr_assert_eq(t.db, 3);
	cr_assert_eq(t.connect_timeout_ms, 5000);
	cr_assert_eq(t.command_timeout_ms, 700);
	cr_assert_str_eq(t.tls_server_name, "wabot.redis.cache.windows.net");
	config_redis_target_fini(&t);
}

Test(config, azure_known_stackexchange_keys_are_ignored)
{
	struct wb_redis_target t;

	azure_ok("h,abortConnect=False,allowAdmin=true,name=wabot,keepAlive=60,"
		 "connectRetry=3,sslProtocols=tls12,resolveDns=false,asyncTimeout=5000",
		 &t);
	cr_assert_str_eq(t.host, "h");
	config_redis_target_fini(&t);
}

Test(config, azure_ipv6_host)
{
	struct wb_redis_target t;

	azure_ok("[::1]:6390,ssl=True", &t);
	cr_assert_str_eq(t.host, "::1");
	cr_assert_eq(t.port, 6390);
	config_redis_target_fini(&t);
}

Test(config, azure_malformed_is_rejected_without_echo)
{
	static const struct {
		const char *cs;
		const char *want;
	} bad[] = {
		{"", "host is missing"},
		{" , ,", "host is missing"},
		{"password=" SECRET ",ssl=True", "host is missing"},
		{"password=" SECRET ",h:6380", "host is missing (the first element"},
		{":6380,password=" SECRET, "host is missing"},
		{"h:6380,passwrd=" SECRET, "unknown option \"passwrd\""},
		{"h:6380,password=" SECRET ",bogus=1", "unknown option \"bogus\""},
		{"h1:6380,h2:6380,password=" SECRET, "only one host"},
		{"h:6380,password=" SECRET ",ssl=yes", "ssl must be True or False"},
		{"h:6380,password=" SECRET ",ssl=", "ssl must be True or False"},
		{"h:99999,password=" SECRET, "port must be 1..65535"},
		{"h:0,password=" SECRET, "port must be 1..65535"},
		{"h:x,password=" SECRET, "port must be 1..65535"},
		{"h,password=" SECRET ",defaultDatabase=x", "defaultDatabase must be"},
		{"h,password=" SECRET ",defaultDatabase=70000", "defaultDatabase must be"},
		{"h,password=" SECRET ",connectTimeout=0", "connectTimeout must be"},
		{"h,password=" SECRET ",connectTimeout=60001", "connectTimeout must be"},
		{"h,password=" SECRET ",syncTimeout=abc", "syncTimeout must be"},
		{"h,password=", "password is empty"},
		{"h,password=" SECRET ",=x", "empty name"},
		{"h,password=" SECRET ",sslHost=", "sslHost is empty"},
		{"h:1:2,password=" SECRET, "brackets"},
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wb_redis_target t;
		char err[256];
		wb_err_t e = config_parse_azure_redis(bad[i].cs, &t, err, sizeof err);

		cr_assert_eq(e, WB_ERR_CONFIG, "accepted: %s", bad[i].cs);
		cr_assert_not_null(strstr(err, bad[i].want), "%s -> \"%s\", want \"%s\"",
				   bad[i].cs, err, bad[i].want);
		cr_assert_null(strstr(err, SECRET), "secret leaked: %s", err);
		cr_assert_null(t.host);
		cr_assert_null(t.password);
	}
}

/* ---- config_load: defaults and sources ---------------------------------- */

Test(config, defaults_without_environment)
{
	struct wb_config cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	load_ok(&cfg, NO_ENV, 0, NULL);
	cr_assert_str_eq(cfg.kafka_brokers, "");
	cr_assert_str_eq(cfg.group_id, "wabot-worker");
	cr_assert_str_eq(cfg.inbound_topic, "wa.inbound");
	cr_assert_str_eq(cfg.outbound_topic, "wa.outbound");
	cr_assert_str_eq(cfg.dlq_topic, "wa.dlq");
	cr_assert_eq(cfg.worker_threads, cpus > 256 ? 256 : (int)cpus);
	cr_assert_eq(cfg.context_ttl_s, 3600);
	cr_assert_null(cfg.flow_file);
	cr_assert_eq(cfg.http_port, 9090);
	cr_assert_eq(cfg.log_level, LOG_INFO);
	cr_assert_eq(cfg.kafka_props_len, 0);
	cr_assert_eq(cfg.context_max_entries, 1000000);
	cr_assert_eq(cfg.context_max_bytes, 512ull * 1024 * 1024);
	cr_assert_null(cfg.redis_source);
	cr_assert(cfg.redis_tls_verify);
	cr_assert_eq(cfg.redis_connect_timeout_ms, 2000);
	cr_assert_eq(cfg.redis_command_timeout_ms, 1000);
	cr_assert_eq(cfg.redis_pool_size, cfg.worker_threads);
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_MEMORY);
	cr_assert_eq(cfg.store.default_ttl_ms, 3600u * 1000u);
	cr_assert_eq(cfg.store.memory.max_entries, 1000000);
	cr_assert_eq(cfg.store.memory.max_bytes, 512ull * 1024 * 1024);
	config_fini(&cfg);
	config_fini(&cfg); /* twice is safe */
	config_fini(NULL);
}

Test(config, empty_variables_mean_defaults)
{
	struct wb_config cfg;

	load_ok(&cfg,
		ENV("KAFKA_GROUP_ID=", "INBOUND_TOPIC=", "WORKER_THREADS=", "REDIS_URL=",
		    "AZURE_REDIS_CONNECTIONSTRING=", "CONTEXT_TTL_SECONDS=", "HTTP_PORT=",
		    "LOG_LEVEL=", "CONTEXT_MAX_BYTES=", "REDIS_TLS_CA_FILE=", "REDIS_TLS_VERIFY=",
		    "REDIS_POOL_SIZE="),
		0, NULL);
	cr_assert_str_eq(cfg.group_id, "wabot-worker");
	cr_assert_str_eq(cfg.inbound_topic, "wa.inbound");
	cr_assert_eq(cfg.context_ttl_s, 3600);
	cr_assert_eq(cfg.http_port, 9090);
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_MEMORY);
	cr_assert(cfg.redis_tls_verify);
	config_fini(&cfg);
}

Test(config, every_variable_is_read)
{
	struct wb_config cfg;

	load_ok(&cfg,
		ENV("PATH=/usr/bin", "KAFKA_BROKERS=k1:9092,k2:9092", "KAFKA_GROUP_ID=g1",
		    "INBOUND_TOPIC=in", "OUTBOUND_TOPIC=out", "DLQ_TOPIC=dead", "WORKER_THREADS=12",
		    "CONTEXT_TTL_SECONDS=60", "FLOW_FILE=/etc/wabot/flow.json", "HTTP_PORT=0",
		    "LOG_LEVEL=WARN", "CONTEXT_MAX_ENTRIES=0", "CONTEXT_MAX_BYTES=64k",
		    "REDIS_TLS_SERVER_NAME=sni.example", "REDIS_TLS_VERIFY=no",
		    "REDIS_CONNECT_TIMEOUT_MS=1", "REDIS_COMMAND_TIMEOUT_MS=60000",
		    "REDIS_POOL_SIZE=3"),
		0, NULL);
	cr_assert_str_eq(cfg.kafka_brokers, "k1:9092,k2:9092");
	cr_assert_str_eq(cfg.group_id, "g1");
	cr_assert_str_eq(cfg.inbound_topic, "in");
	cr_assert_str_eq(cfg.outbound_topic, "out");
	cr_assert_str_eq(cfg.dlq_topic, "dead");
	cr_assert_eq(cfg.worker_threads, 12);
	cr_assert_eq(cfg.context_ttl_s, 60);
	cr_assert_eq(cfg.store.default_ttl_ms, 60000);
	cr_assert_str_eq(cfg.flow_file, "/etc/wabot/flow.json");
	cr_assert_eq(cfg.http_port, 0);
	cr_assert_eq(cfg.log_level, LOG_WARN);
	cr_assert_eq(cfg.context_max_entries, 0);
	cr_assert_eq(cfg.context_max_bytes, 65536);
	cr_assert_str_eq(cfg.redis_tls_server_name, "sni.example");
	cr_assert_not(cfg.redis_tls_verify);
	cr_assert_eq(cfg.redis_connect_timeout_ms, 1);
	cr_assert_eq(cfg.redis_command_timeout_ms, 60000);
	cr_assert_eq(cfg.redis_pool_size, 3);
	config_fini(&cfg);
}

Test(config, flags_override_environment_in_both_forms)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("CONTEXT_TTL_SECONDS=60", "KAFKA_GROUP_ID=env-group", "LOG_LEVEL=debug"),
		ARGC("--context-ttl", "120", "--group-id=flag-group", "--log-level", "error",
		     "--context-ttl=180"),
		ARGV("--context-ttl", "120", "--group-id=flag-group", "--log-level", "error",
		     "--context-ttl=180"));
	cr_assert_eq(cfg.context_ttl_s, 180, "the last flag wins");
	cr_assert_str_eq(cfg.group_id, "flag-group");
	cr_assert_eq(cfg.log_level, LOG_ERROR);
	config_fini(&cfg);
}

Test(config, empty_flag_value_switches_a_variable_off)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("REDIS_URL=redis://:" SECRET "@cache", "HTTP_PORT=1234"),
		ARGC("--redis-url=", "--http-port="), ARGV("--redis-url=", "--http-port="));
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_MEMORY);
	cr_assert_null(cfg.redis.password);
	cr_assert_eq(cfg.http_port, 9090);
	config_fini(&cfg);
}

Test(config, first_environment_entry_wins)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("HTTP_PORT=1000", "HTTP_PORT=2000"), 0, NULL);
	cr_assert_eq(cfg.http_port, 1000);
	config_fini(&cfg);
}

Test(config, flag_value_may_look_negative_or_contain_equals)
{
	struct wb_config cfg;

	load_ok(&cfg, NO_ENV, ARGC("--kafka-brokers", "-b:1", "--flow-file=/a=b.json"),
		ARGV("--kafka-brokers", "-b:1", "--flow-file=/a=b.json"));
	cr_assert_str_eq(cfg.kafka_brokers, "-b:1");
	cr_assert_str_eq(cfg.flow_file, "/a=b.json");
	config_fini(&cfg);
}

Test(config, kafka_props_keep_env_order_then_flags)
{
	struct wb_config cfg;

	load_ok(&cfg,
		ENV("KAFKA_PROP_security.protocol=SASL_SSL", "OTHER=x",
		    "KAFKA_PROP_session.timeout.ms=6000", "KAFKA_PROP_client.id="),
		ARGC("--kafka-prop", "session.timeout.ms=7000", "--kafka-prop=sasl.password=a=b"),
		ARGV("--kafka-prop", "session.timeout.ms=7000", "--kafka-prop=sasl.password=a=b"));
	cr_assert_eq(cfg.kafka_props_len, 5);
	cr_assert_str_eq(cfg.kafka_props[0].name, "security.protocol");
	cr_assert_str_eq(cfg.kafka_props[0].value, "SASL_SSL");
	cr_assert_str_eq(cfg.kafka_props[1].name, "session.timeout.ms");
	cr_assert_str_eq(cfg.kafka_props[1].value, "6000");
	cr_assert_str_eq(cfg.kafka_props[2].name, "client.id");
	cr_assert_str_eq(cfg.kafka_props[2].value, "", "prop values pass through, even empty");
	cr_assert_str_eq(cfg.kafka_props[3].name, "session.timeout.ms");
	cr_assert_str_eq(cfg.kafka_props[3].value, "7000");
	cr_assert_str_eq(cfg.kafka_props[4].name, "sasl.password");
	cr_assert_str_eq(cfg.kafka_props[4].value, "a=b", "split on the first '='");
	config_fini(&cfg);
}

Test(config, kafka_prop_needs_a_name)
{
	expect_load_error(ENV("KAFKA_PROP_=" SECRET), 0, NULL, "KAFKA_PROP_", "empty property name");
	expect_load_error(NO_ENV, ARGC("--kafka-prop", "=" SECRET), ARGV("--kafka-prop", "=" SECRET),
			  "--kafka-prop", "empty property name");
	expect_load_error(NO_ENV, ARGC("--kafka-prop", "sasl.password:" SECRET),
			  ARGV("--kafka-prop", "sasl.password:" SECRET), "--kafka-prop",
			  "expected name=value");
}

Test(config, kafka_prop_secrets_are_recognised)
{
	cr_assert(config_kafka_prop_is_secret("sasl.password"));
	cr_assert(config_kafka_prop_is_secret("SSL.KEY.PASSWORD"));
	cr_assert(config_kafka_prop_is_secret("sasl.jaas.config"));
	cr_assert(config_kafka_prop_is_secret("sasl.oauthbearer.client.secret"));
	cr_assert(config_kafka_prop_is_secret("sasl.oauthbearer.config"));
	cr_assert(config_kafka_prop_is_secret("ssl.key.pem"));
	cr_assert_not(config_kafka_prop_is_secret("security.protocol"));
	cr_assert_not(config_kafka_prop_is_secret("sasl.username"));
	cr_assert_not(config_kafka_prop_is_secret(NULL));
}

/* ---- config_load: store selection --------------------------------------- */

Test(config, redis_url_selects_redis_and_fills_the_store)
{
	struct wb_config cfg;

	load_ok(&cfg,
		ENV("REDIS_URL=rediss://wabot:" SECRET "@cache:6390/4", "WORKER_THREADS=6",
		    "CONTEXT_TTL_SECONDS=2592000"),
		0, NULL);
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_REDIS);
	cr_assert_str_eq(cfg.redis_source, "REDIS_URL");
	cr_assert_eq(cfg.store.default_ttl_ms, 2592000u * 1000u);
	cr_assert_str_eq(cfg.store.redis.host, "cache");
	cr_assert_eq(cfg.store.redis.host, cfg.redis.host, "points into cfg");
	cr_assert_eq(cfg.store.redis.port, 6390);
	cr_assert_str_eq(cfg.store.redis.user, "wabot");
	cr_assert_str_eq(cfg.store.redis.password, SECRET);
	cr_assert_eq(cfg.store.redis.db, 4);
	cr_assert(cfg.store.redis.tls);
	cr_assert(cfg.store.redis.tls_verify);
	cr_assert_null(cfg.store.redis.tls_ca_file);
	cr_assert_null(cfg.store.redis.tls_server_name);
	cr_assert_eq(cfg.store.redis.connect_timeout_ms, 2000);
	cr_assert_eq(cfg.store.redis.command_timeout_ms, 1000);
	cr_assert_eq(cfg.store.redis.pool_size, 6, "pool defaults to worker threads");
	config_fini(&cfg);
}

Test(config, azure_selects_redis_and_its_options_apply_unless_overridden)
{
	struct wb_config cfg;

	load_ok(&cfg,
		ENV("AZURE_REDIS_CONNECTIONSTRING=h.redis.cache.windows.net:6380,password=" SECRET
		    ",ssl=True,abortConnect=False,connectTimeout=4000,syncTimeout=800,sslHost=alt"),
		0, NULL);
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_REDIS);
	cr_assert_str_eq(cfg.redis_source, "AZURE_REDIS_CONNECTIONSTRING");
	cr_assert_str_eq(cfg.store.redis.host, "h.redis.cache.windows.net");
	cr_assert_eq(cfg.store.redis.port, 6380);
	cr_assert(cfg.store.redis.tls);
	cr_assert_eq(cfg.store.redis.connect_timeout_ms, 4000);
	cr_assert_eq(cfg.store.redis.command_timeout_ms, 800);
	cr_assert_str_eq(cfg.store.redis.tls_server_name, "alt");
	config_fini(&cfg);

	load_ok(&cfg,
		ENV("AZURE_REDIS_CONNECTIONSTRING=h:6380,password=" SECRET
		    ",ssl=True,connectTimeout=4000,syncTimeout=800,sslHost=alt",
		    "REDIS_CONNECT_TIMEOUT_MS=1500", "REDIS_TLS_SERVER_NAME=sni"),
		ARGC("--redis-command-timeout-ms", "900"), ARGV("--redis-command-timeout-ms", "900"));
	cr_assert_eq(cfg.store.redis.connect_timeout_ms, 1500);
	cr_assert_eq(cfg.store.redis.command_timeout_ms, 900);
	cr_assert_str_eq(cfg.store.redis.tls_server_name, "sni");
	config_fini(&cfg);
}

Test(config, redis_flag_selects_redis)
{
	struct wb_config cfg;

	load_ok(&cfg, NO_ENV, ARGC("--azure-redis", "h,password=" SECRET),
		ARGV("--azure-redis", "h,password=" SECRET));
	cr_assert_eq(cfg.store.backend, CTX_BACKEND_REDIS);
	cr_assert_str_eq(cfg.redis_source, "--azure-redis");
	config_fini(&cfg);
}

Test(config, both_redis_settings_are_an_error)
{
	expect_load_error(ENV("REDIS_URL=redis://:" SECRET "@a",
			      "AZURE_REDIS_CONNECTIONSTRING=b,password=" SECRET),
			  0, NULL, "REDIS_URL", "AZURE_REDIS_CONNECTIONSTRING");
	expect_load_error(ENV("REDIS_URL=redis://:" SECRET "@a"),
			  ARGC("--azure-redis=b,password=" SECRET),
			  ARGV("--azure-redis=b,password=" SECRET), "REDIS_URL", "--azure-redis");
}

Test(config, bad_redis_url_names_the_variable_but_not_the_value)
{
	expect_load_error(ENV("REDIS_URL=redis://:" SECRET "@myhost.example:99999"), 0, NULL,
			  "REDIS_URL", "port must be 1..65535");
	expect_load_error(ENV("REDIS_URL=redis://:" SECRET "@myhost.example?x=1"), 0, NULL,
			  "REDIS_URL", "query options");
	expect_load_error(NO_ENV, ARGC("--redis-url", "redis://" SECRET "@myhost.example"),
			  ARGV("--redis-url", "redis://" SECRET "@myhost.example"), "--redis-url",
			  "credentials");
	expect_load_error(ENV("AZURE_REDIS_CONNECTIONSTRING=myhost.example,pasword=" SECRET), 0,
			  NULL, "AZURE_REDIS_CONNECTIONSTRING", "unknown option \"pasword\"");
	{
		struct wb_config cfg;
		char err[256];

		config_load(&cfg, 0, NULL, ENV("REDIS_URL=redis://myhost.example:0"), err,
			    sizeof err);
		cr_assert_null(strstr(err, "myhost"), "echoed the URL: %s", err);
	}
}

/* ---- config_load: bad values -------------------------------------------- */

Test(config, ttl_must_be_a_whole_number_in_range)
{
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=-5"), 0, NULL, "CONTEXT_TTL_SECONDS",
			  "must be a whole number from 1 to 2592000 (got \"-5\")");
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=0"), 0, NULL, "CONTEXT_TTL_SECONDS", "(got \"0\")");
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=2592001"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=99999999999999999999999999"), 0, NULL,
			  "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=an hour"), 0, NULL, "CONTEXT_TTL_SECONDS",
			  "(got \"an hour\")");
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=1e3"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=+60"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS= 60"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=60s"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(ENV("CONTEXT_TTL_SECONDS=0x10"), 0, NULL, "CONTEXT_TTL_SECONDS", NULL);
	expect_load_error(NO_ENV, ARGC("--context-ttl=-5"), ARGV("--context-ttl=-5"),
			  "--context-ttl", "(got \"-5\")");
}

Test(config, echoed_values_are_cleaned_and_cut)
{
	struct wb_config cfg;
	char err[512];
	char env[300] = "CONTEXT_TTL_SECONDS=";
	char *envp[] = {env, NULL};

	memset(env + strlen(env), 'x', 200);
	env[sizeof env - 1] = '\0';
	cr_assert_eq(config_load(&cfg, 0, NULL, envp, err, sizeof err), WB_ERR_CONFIG);
	cr_assert_not_null(strstr(err, "xxx...\")"), "%s", err);
	cr_assert_lt(strlen(err), 200);
	expect_load_error(ENV("LOG_LEVEL=de\nbug\x01"), 0, NULL, "LOG_LEVEL", "\"de?bug?\"");
}

Test(config, other_numbers_are_range_checked)
{
	expect_load_error(ENV("WORKER_THREADS=0"), 0, NULL, "WORKER_THREADS", "from 1 to 256");
	expect_load_error(ENV("WORKER_THREADS=257"), 0, NULL, "WORKER_THREADS", NULL);
	expect_load_error(ENV("HTTP_PORT=65536"), 0, NULL, "HTTP_PORT", "from 0 to 65535");
	expect_load_error(ENV("HTTP_PORT=-1"), 0, NULL, "HTTP_PORT", NULL);
	expect_load_error(ENV("REDIS_CONNECT_TIMEOUT_MS=0"), 0, NULL, "REDIS_CONNECT_TIMEOUT_MS",
			  "from 1 to 60000");
	expect_load_error(ENV("REDIS_COMMAND_TIMEOUT_MS=60001"), 0, NULL,
			  "REDIS_COMMAND_TIMEOUT_MS", NULL);
	expect_load_error(ENV("REDIS_POOL_SIZE=300"), 0, NULL, "REDIS_POOL_SIZE", NULL);
	expect_load_error(ENV("CONTEXT_MAX_ENTRIES=-1"), 0, NULL, "CONTEXT_MAX_ENTRIES", NULL);
	expect_load_error(ENV("CONTEXT_MAX_ENTRIES=lots"), 0, NULL, "CONTEXT_MAX_ENTRIES", NULL);
}

Test(config, memory_bytes_accept_binary_suffixes)
{
	static const struct {
		const char *env;
		uint64_t bytes;
	} ok[] = {
		{"CONTEXT_MAX_BYTES=0", 0},
		{"CONTEXT_MAX_BYTES=1000", 1000},
		{"CONTEXT_MAX_BYTES=64k", 64ull << 10},
		{"CONTEXT_MAX_BYTES=64K", 64ull << 10},
		{"CONTEXT_MAX_BYTES=2m", 2ull << 20},
		{"CONTEXT_MAX_BYTES=2M", 2ull << 20},
		{"CONTEXT_MAX_BYTES=3g", 3ull << 30},
		{"CONTEXT_MAX_BYTES=3G", 3ull << 30},
	};
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct wb_config cfg;
		char *envp[] = {(char *)ok[i].env, NULL};

		load_ok(&cfg, envp, 0, NULL);
		cr_assert_eq(cfg.context_max_bytes, ok[i].bytes, "%s", ok[i].env);
		cr_assert_eq(cfg.store.memory.max_bytes, ok[i].bytes);
		config_fini(&cfg);
	}
	expect_load_error(ENV("CONTEXT_MAX_BYTES=12x"), 0, NULL, "CONTEXT_MAX_BYTES", "(got \"12x\")");
	expect_load_error(ENV("CONTEXT_MAX_BYTES=1kb"), 0, NULL, "CONTEXT_MAX_BYTES", NULL);
	expect_load_error(ENV("CONTEXT_MAX_BYTES=k"), 0, NULL, "CONTEXT_MAX_BYTES", NULL);
	expect_load_error(ENV("CONTEXT_MAX_BYTES=-1m"), 0, NULL, "CONTEXT_MAX_BYTES", NULL);
	expect_load_error(ENV("CONTEXT_MAX_BYTES=99999999999g"), 0, NULL, "CONTEXT_MAX_BYTES", NULL);
}

Test(config, unknown_log_level_lists_the_choices)
{
	struct wb_config cfg;
	char err[256];

	cr_assert_eq(config_load(&cfg, 0, NULL, ENV("LOG_LEVEL=verbose"), err, sizeof err),
		     WB_ERR_CONFIG);
	cr_assert_str_eq(err,
			 "LOG_LEVEL: unknown level \"verbose\" (use debug, info, warn, error or off)");
}

Test(config, tls_verify_is_a_strict_boolean)
{
	static const char *const yes[] = {"true", "TRUE", "yes", "1", "on"};
	static const char *const no[] = {"false", "False", "no", "0", "off"};
	size_t i;

	for (i = 0; i < 5; i++) {
		struct wb_config cfg;
		char *a[] = {"--redis-tls-verify", (char *)yes[i]};

		load_ok(&cfg, NO_ENV, 2, a);
		cr_assert(cfg.redis_tls_verify, "%s", yes[i]);
		config_fini(&cfg);
		a[1] = (char *)no[i];
		load_ok(&cfg, NO_ENV, 2, a);
		cr_assert_not(cfg.redis_tls_verify, "%s", no[i]);
		config_fini(&cfg);
	}
	expect_load_error(ENV("REDIS_TLS_VERIFY=maybe"), 0, NULL, "REDIS_TLS_VERIFY",
			  "must be true, false, yes, no, 1 or 0 (got \"maybe\")");
	expect_load_error(ENV("REDIS_TLS_VERIFY=2"), 0, NULL, "REDIS_TLS_VERIFY", NULL);
}

Test(config, audit_log_is_off_by_default_and_reaches_the_store_config)
{
	struct wb_config cfg;

	load_ok(&cfg, NO_ENV, 0, NULL);
	cr_assert_not(cfg.audit_log);
	cr_assert_not(cfg.store.audit);
	config_fini(&cfg);
	load_ok(&cfg, ENV("AUDIT_LOG=true"), 0, NULL);
	cr_assert(cfg.audit_log && cfg.store.audit);
	config_fini(&cfg);
	load_ok(&cfg, ENV("AUDIT_LOG=true"), 2, ARGV("--audit-log", "no"));
	cr_assert_not(cfg.store.audit, "the flag overrides the variable");
	config_fini(&cfg);
	load_ok(&cfg, ENV("AUDIT_LOG=1", "REDIS_URL=redis://127.0.0.1:6379/0"), 0, NULL);
	cr_assert(cfg.store.audit, "Redis store audited too");
	config_fini(&cfg);
	expect_load_error(ENV("AUDIT_LOG=loud"), 0, NULL, "AUDIT_LOG",
			  "must be true, false, yes, no, 1 or 0 (got \"loud\")");
}

Test(config, ca_file_must_exist_and_be_a_file)
{
	char path[] = "/tmp/test_config_ca_XXXXXX";
	char env[64];
	struct wb_config cfg;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(env, sizeof env, "REDIS_TLS_CA_FILE=%s", path);
	load_ok(&cfg, ENV(env), 0, NULL);
	cr_assert_str_eq(cfg.redis_ca_file, path);
	config_fini(&cfg);
	unlink(path);

	expect_load_error(ENV(env), 0, NULL, "REDIS_TLS_CA_FILE", "No such file or directory");
	expect_load_error(ENV(env), 0, NULL, "REDIS_TLS_CA_FILE", path);
	expect_load_error(ENV("REDIS_TLS_CA_FILE=/tmp"), 0, NULL, "REDIS_TLS_CA_FILE",
			  "not a regular file");
	expect_load_error(NO_ENV, ARGC("--redis-ca-file", "/nonexistent/ca.pem"),
			  ARGV("--redis-ca-file", "/nonexistent/ca.pem"), "--redis-ca-file", NULL);
}

Test(config, topics_must_be_valid_and_distinct)
{
	expect_load_error(ENV("INBOUND_TOPIC=wa inbound"), 0, NULL, "INBOUND_TOPIC",
			  "not a Kafka topic name");
	expect_load_error(ENV("DLQ_TOPIC=.."), 0, NULL, "DLQ_TOPIC", NULL);
	expect_load_error(ENV("OUTBOUND_TOPIC=wa.inbound"), 0, NULL, "OUTBOUND_TOPIC",
			  "must differ from INBOUND_TOPIC");
	expect_load_error(ENV("INBOUND_TOPIC=wa.dlq"), 0, NULL, "INBOUND_TOPIC",
			  "must differ from DLQ_TOPIC");
	expect_load_error(NO_ENV, ARGC("--dlq-topic=wa.outbound"), ARGV("--dlq-topic=wa.outbound"),
			  "--dlq-topic", "must differ from OUTBOUND_TOPIC");
}

/* ---- config_load: flags ------------------------------------------------- */

Test(config, unknown_flag_is_named_without_its_value)
{
	expect_load_error(NO_ENV, ARGC("--redis-ur=redis://:" SECRET "@h"),
			  ARGV("--redis-ur=redis://:" SECRET "@h"), "--redis-ur", "unknown flag");
	expect_load_error(NO_ENV, ARGC("--help"), ARGV("--help"), "--help", "unknown flag");
}

Test(config, flag_without_value_is_an_error)
{
	expect_load_error(NO_ENV, ARGC("--context-ttl"), ARGV("--context-ttl"), "--context-ttl",
			  "needs a value");
	expect_load_error(NO_ENV, ARGC("--redis-url", "--context-ttl=5"),
			  ARGV("--redis-url", "--context-ttl=5"), "--redis-url", "needs a value");
	expect_load_error(NO_ENV, ARGC("--kafka-prop"), ARGV("--kafka-prop"), "--kafka-prop",
			  "needs a value");
}

Test(config, stray_argument_is_not_echoed)
{
	expect_load_error(NO_ENV, ARGC("--azure-redis", "h,", "password=" SECRET),
			  ARGV("--azure-redis", "h,", "password=" SECRET), "argument #3",
			  "not a --flag");
	expect_load_error(NO_ENV, ARGC("--"), ARGV("--"), "argument #1", NULL);
}

/* ---- config_load: Kafka worker settings --------------------------------- */

/* One whole-number setting of the Kafka worker: its names, range, default,
 * a valid value other than the default, and how to read it back. */
struct num_setting {
	const char *env;
	const char *flag;
	long long lo, hi, def, sample;
	long long (*get)(const struct wb_config *cfg);
};

static long long get_shutdown(const struct wb_config *cfg)
{
	return cfg->shutdown_timeout_s;
}

static long long get_drain(const struct wb_config *cfg)
{
	return cfg->drain_timeout_s;
}

static long long get_queue_depth(const struct wb_config *cfg)
{
	return cfg->queue_depth;
}

static long long get_max_in_flight(const struct wb_config *cfg)
{
	return cfg->max_in_flight;
}

static long long get_attempts(const struct wb_config *cfg)
{
	return cfg->event_max_attempts;
}

static const struct num_setting num_settings[] = {
	{"SHUTDOWN_TIMEOUT_SECONDS", "--shutdown-timeout-seconds", 1, 3600,
	 CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S, 28, get_shutdown},
	{"DRAIN_TIMEOUT_SECONDS", "--drain-timeout-seconds", 1, 600, CONFIG_DEFAULT_DRAIN_TIMEOUT_S,
	 12, get_drain},
	{"WORKER_QUEUE_DEPTH", "--worker-queue-depth", 1, 1048576, CONFIG_DEFAULT_QUEUE_DEPTH, 4096,
	 get_queue_depth},
	{"MAX_IN_FLIGHT_PER_PARTITION", "--max-in-flight-per-partition", 1, 1048576,
	 CONFIG_DEFAULT_MAX_IN_FLIGHT, 20000, get_max_in_flight},
	{"EVENT_MAX_ATTEMPTS", "--event-max-attempts", 1, 100, CONFIG_DEFAULT_EVENT_MAX_ATTEMPTS, 7,
	 get_attempts},
};

#define NUM_SETTINGS (sizeof num_settings / sizeof num_settings[0])

/* Loads with "<env>=<env_val>" (NULL: empty environment) and
 * "<flag>=<flag_val>" (NULL: no flag); the setting must come out as want. */
static void num_expect(const struct num_setting *s, const char *env_val, const char *flag_val,
		       long long want)
{
	char env[128], flag[128];
	char *envp[] = {env, NULL};
	char *argv[] = {flag};
	struct wb_config cfg;

	snprintf(env, sizeof env, "%s=%s", s->env, env_val != NULL ? env_val : "");
	snprintf(flag, sizeof flag, "%s=%s", s->flag, flag_val != NULL ? flag_val : "");
	load_ok(&cfg, env_val != NULL ? envp : NO_ENV, flag_val != NULL ? 1 : 0, argv);
	cr_assert_eq(s->get(&cfg), want, "%s (env %s, flag %s): got %lld, want %lld", s->env,
		     env_val ? env_val : "-", flag_val ? flag_val : "-", s->get(&cfg), want);
	config_fini(&cfg);
}

/* value must be refused, through the variable or the flag, with the range
 * and the value in the error. */
static void num_reject(const struct num_setting *s, bool via_flag, const char *value)
{
	char arg[128], want[256];
	char *envp[] = {arg, NULL};
	char *argv[] = {arg};

	snprintf(arg, sizeof arg, "%s=%s", via_flag ? s->flag : s->env, value);
	snprintf(want, sizeof want, "must be a whole number from %lld to %lld (got \"%s\")", s->lo,
		 s->hi, value);
	if (via_flag)
		expect_load_error(NO_ENV, 1, argv, s->flag, want);
	else
		expect_load_error(envp, 0, NULL, s->env, want);
}

static void num_str(long long v, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", v);
}

Test(config, worker_numbers_have_their_defaults)
{
	struct wb_config cfg;
	size_t i;

	cr_assert_eq(CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S, 25);
	cr_assert_eq(CONFIG_DEFAULT_DRAIN_TIMEOUT_S, 10);
	cr_assert_eq(CONFIG_DEFAULT_QUEUE_DEPTH, 2048);
	cr_assert_eq(CONFIG_DEFAULT_MAX_IN_FLIGHT, 10000);
	cr_assert_eq(CONFIG_DEFAULT_EVENT_MAX_ATTEMPTS, 5);
	load_ok(&cfg, NO_ENV, 0, NULL);
	for (i = 0; i < NUM_SETTINGS; i++)
		cr_assert_eq(num_settings[i].get(&cfg), num_settings[i].def, "%s",
			     num_settings[i].env);
	config_fini(&cfg);
}

Test(config, worker_numbers_are_read_from_the_environment)
{
	size_t i;

	for (i = 0; i < NUM_SETTINGS; i++) {
		char v[32];

		num_str(num_settings[i].sample, v, sizeof v);
		num_expect(&num_settings[i], v, NULL, num_settings[i].sample);
	}
}

Test(config, worker_number_flags_override_the_environment)
{
	size_t i;

	for (i = 0; i < NUM_SETTINGS; i++) {
		const struct num_setting *s = &num_settings[i];
		char v[32], env[128];
		struct wb_config cfg;

		num_str(s->sample, v, sizeof v);
		num_expect(s, "1", v, s->sample);                          /* --flag=value */
		snprintf(env, sizeof env, "%s=%lld", s->env, s->sample);
		load_ok(&cfg, ENV(env), 2, ARGV((char *)s->flag, "2"));    /* --flag value */
		cr_assert_eq(s->get(&cfg), 2, "%s", s->flag);
		config_fini(&cfg);
	}
}

Test(config, worker_numbers_accept_both_ends_of_their_range)
{
	size_t i;

	for (i = 0; i < NUM_SETTINGS; i++) {
		const struct num_setting *s = &num_settings[i];
		char lo[32], hi[32];

		num_str(s->lo, lo, sizeof lo);
		num_str(s->hi, hi, sizeof hi);
		num_expect(s, lo, NULL, s->lo);
		num_expect(s, hi, NULL, s->hi);
		num_expect(s, NULL, lo, s->lo);
		num_expect(s, NULL, hi, s->hi);
	}
}

Test(config, worker_numbers_reject_one_beyond_their_range)
{
	size_t i;

	for (i = 0; i < NUM_SETTINGS; i++) {
		const struct num_setting *s = &num_settings[i];
		char below[32], above[32];

		num_str(s->lo - 1, below, sizeof below);
		num_str(s->hi + 1, above, sizeof above);
		num_reject(s, false, below);
		num_reject(s, false, above);
		num_reject(s, true, below);
		num_reject(s, true, above);
	}
}

Test(config, worker_numbers_reject_garbage)
{
	static const char *const garbage[] = {
		"ten", "-1", "+5", " 5", "5 ", "5s", "0x10", "1e3", "5.0", "99999999999999999999999",
	};
	size_t i, g;

	for (i = 0; i < NUM_SETTINGS; i++)
		for (g = 0; g < sizeof garbage / sizeof garbage[0]; g++)
			num_reject(&num_settings[i], g % 2 == 1, garbage[g]);
}

Test(config, worker_numbers_empty_value_means_default)
{
	size_t i;

	for (i = 0; i < NUM_SETTINGS; i++) {
		const struct num_setting *s = &num_settings[i];
		char v[32];

		num_str(s->sample, v, sizeof v);
		num_expect(s, "", NULL, s->def);  /* VAR= */
		num_expect(s, NULL, "", s->def);  /* --flag= */
		num_expect(s, v, "", s->def);     /* --flag= switches VAR=value off */
	}
}

Test(config, group_instance_id_is_unset_by_default_and_when_empty)
{
	struct wb_config cfg;

	load_ok(&cfg, NO_ENV, 0, NULL);
	cr_assert_null(cfg.group_instance_id);
	config_fini(&cfg);
	load_ok(&cfg, ENV("KAFKA_GROUP_INSTANCE_ID="), 0, NULL);
	cr_assert_null(cfg.group_instance_id);
	config_fini(&cfg);
	load_ok(&cfg, ENV("KAFKA_GROUP_INSTANCE_ID=wabot-worker-0"),
		ARGC("--group-instance-id="), ARGV("--group-instance-id="));
	cr_assert_null(cfg.group_instance_id, "an empty flag switches the variable off");
	config_fini(&cfg);
}

Test(config, group_instance_id_from_environment_and_flag)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("KAFKA_GROUP_INSTANCE_ID=wabot-worker-0"), 0, NULL);
	cr_assert_str_eq(cfg.group_instance_id, "wabot-worker-0");
	config_fini(&cfg);
	load_ok(&cfg, ENV("KAFKA_GROUP_INSTANCE_ID=wabot-worker-0"),
		ARGC("--group-instance-id", "wabot-worker-1"),
		ARGV("--group-instance-id", "wabot-worker-1"));
	cr_assert_str_eq(cfg.group_instance_id, "wabot-worker-1");
	config_fini(&cfg);
	load_ok(&cfg, ENV("KAFKA_GROUP_INSTANCE_ID=wabot-worker-0"),
		ARGC("--group-instance-id=wabot-worker-2"), ARGV("--group-instance-id=wabot-worker-2"));
	cr_assert_str_eq(cfg.group_instance_id, "wabot-worker-2");
	config_fini(&cfg);
}

Test(config, group_instance_id_accepts_pod_name_characters)
{
	static const char *const ok[] = {
		"a", "0", "wabot-worker-0", "Wabot.Worker_7", "pod.ns.svc-cluster.local", "x-_.9",
	};
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct wb_config cfg;

		load_ok(&cfg, NO_ENV, 2, ARGV("--group-instance-id", (char *)ok[i]));
		cr_assert_str_eq(cfg.group_instance_id, ok[i]);
		config_fini(&cfg);
	}
}

Test(config, group_instance_id_rejects_other_characters)
{
	static const struct {
		const char *value;
		const char *echo;
	} bad[] = {
		{"pod 0", "pod 0"},         {"pod/0", "pod/0"},
		{"pod:0", "pod:0"},         {"\"wabot-worker-0\"", "\"wabot-worker-0\""},
		{"pod\n0", "pod?0"},        {"p\xc3\xb8" "d", "p??d"},
		{"pod,0", "pod,0"},         {"pod@0", "pod@0"},
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char env[128], want[160];
		char *envp[] = {env, NULL};

		snprintf(env, sizeof env, "KAFKA_GROUP_INSTANCE_ID=%s", bad[i].value);
		snprintf(want, sizeof want,
			 "may only contain letters, digits, '.', '_' and '-', like a pod name "
			 "(got \"%s\")",
			 bad[i].echo);
		expect_load_error(envp, 0, NULL, "KAFKA_GROUP_INSTANCE_ID", want);
	}
	expect_load_error(NO_ENV, ARGC("--group-instance-id=pod 0"),
			  ARGV("--group-instance-id=pod 0"), "--group-instance-id", "(got \"pod 0\")");
}

Test(config, group_instance_id_is_at_most_249_bytes)
{
	char env[400] = "KAFKA_GROUP_INSTANCE_ID=";
	size_t prefix = strlen(env);
	char *envp[] = {env, NULL};
	struct wb_config cfg;

	memset(env + prefix, 'a', 249);
	env[prefix + 249] = '\0';
	load_ok(&cfg, envp, 0, NULL);
	cr_assert_eq(strlen(cfg.group_instance_id), 249);
	config_fini(&cfg);

	memset(env + prefix, 'a', 250);
	env[prefix + 250] = '\0';
	expect_load_error(envp, 0, NULL, "KAFKA_GROUP_INSTANCE_ID",
			  "must be at most 249 bytes long (got 250 bytes)");
	{
		char err[512];

		config_load(&cfg, 0, NULL, envp, err, sizeof err);
		cr_assert_lt(strlen(err), 200, "the long value is not echoed: %s", err);
	}
}

Test(config, store_fallback_defaults_to_none)
{
	struct wb_config cfg;

	load_ok(&cfg, NO_ENV, 0, NULL);
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	cr_assert_eq(STORE_FALLBACK_NONE, 0, "a zeroed config means no fallback");
	config_fini(&cfg);
	load_ok(&cfg, ENV("REDIS_URL=redis://cache"), 0, NULL);
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
}

Test(config, store_fallback_is_case_insensitive)
{
	static const struct {
		const char *value;
		enum wb_store_fallback want;
	} ok[] = {
		{"none", STORE_FALLBACK_NONE},     {"NONE", STORE_FALLBACK_NONE},
		{"None", STORE_FALLBACK_NONE},     {"memory", STORE_FALLBACK_MEMORY},
		{"MEMORY", STORE_FALLBACK_MEMORY}, {"Memory", STORE_FALLBACK_MEMORY},
	};
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct wb_config cfg;
		char env[64];

		snprintf(env, sizeof env, "STORE_FALLBACK=%s", ok[i].value);
		load_ok(&cfg, ENV("REDIS_URL=redis://cache", env), 0, NULL);
		cr_assert_eq(cfg.store_fallback, ok[i].want, "%s", ok[i].value);
		config_fini(&cfg);
	}
}

Test(config, store_fallback_flag_overrides_the_environment)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("AZURE_REDIS_CONNECTIONSTRING=h,password=" SECRET, "STORE_FALLBACK=memory"),
		ARGC("--store-fallback", "none"), ARGV("--store-fallback", "none"));
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
	load_ok(&cfg, ENV("REDIS_URL=redis://cache", "STORE_FALLBACK=none"),
		ARGC("--store-fallback=memory"), ARGV("--store-fallback=memory"));
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_MEMORY);
	config_fini(&cfg);
	load_ok(&cfg, ENV("REDIS_URL=redis://cache", "STORE_FALLBACK=memory"),
		ARGC("--store-fallback="), ARGV("--store-fallback="));
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE, "--store-fallback= means the default");
	config_fini(&cfg);
}

Test(config, store_fallback_empty_value_means_none)
{
	struct wb_config cfg;

	load_ok(&cfg, ENV("REDIS_URL=redis://cache", "STORE_FALLBACK="), 0, NULL);
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
	/* Empty is "not set", so it is no error without Redis either. */
	load_ok(&cfg, ENV("STORE_FALLBACK="), 0, NULL);
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
	load_ok(&cfg, ENV("STORE_FALLBACK=memory"), ARGC("--store-fallback="),
		ARGV("--store-fallback="));
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
}

Test(config, store_fallback_rejects_other_words)
{
	static const char *const bad[] = {"mem", "redis", "true", "1", "memory ", " none", "memoryy"};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char env[64], want[96];

		snprintf(env, sizeof env, "STORE_FALLBACK=%s", bad[i]);
		snprintf(want, sizeof want, "must be none or memory (got \"%s\")", bad[i]);
		expect_load_error(ENV("REDIS_URL=redis://cache", env), 0, NULL, "STORE_FALLBACK", want);
	}
	expect_load_error(ENV("REDIS_URL=redis://cache"), ARGC("--store-fallback", "disk"),
			  ARGV("--store-fallback", "disk"), "--store-fallback",
			  "must be none or memory (got \"disk\")");
}

Test(config, store_fallback_memory_needs_redis)
{
	struct wb_config cfg;
	char err[512];

	cr_assert_eq(config_load(&cfg, 0, NULL, ENV("STORE_FALLBACK=memory"), err, sizeof err),
		     WB_ERR_CONFIG);
	cr_assert_str_eq(err, "STORE_FALLBACK: memory only applies when Redis is configured "
			      "(REDIS_URL or AZURE_REDIS_CONNECTIONSTRING)");
	expect_load_error(ENV("STORE_FALLBACK=Memory"), 0, NULL, "STORE_FALLBACK",
			  "only applies when Redis is configured");
	expect_load_error(NO_ENV, ARGC("--store-fallback=memory"), ARGV("--store-fallback=memory"),
			  "--store-fallback", "only applies when Redis is configured");
	/* Redis switched off by an empty flag: memory has nothing to fall back from. */
	expect_load_error(ENV("REDIS_URL=redis://:" SECRET "@cache", "STORE_FALLBACK=memory"),
			  ARGC("--redis-url="), ARGV("--redis-url="), "STORE_FALLBACK",
			  "only applies when Redis is configured");
	/* "none" needs nothing. */
	load_ok(&cfg, ENV("STORE_FALLBACK=none"), 0, NULL);
	cr_assert_eq(cfg.store_fallback, STORE_FALLBACK_NONE);
	config_fini(&cfg);
}

/* ---- summary and usage -------------------------------------------------- */

Test(config, summary_hides_every_secret)
{
	struct wb_config cfg;
	char buf[4096];
	size_t n;

	load_ok(&cfg,
		ENV("REDIS_URL=rediss://wabot:" SECRET "@cache:6380/2",
		    "KAFKA_PROP_sasl.password=" SECRET, "KAFKA_PROP_sasl.jaas.config=x " SECRET,
		    "KAFKA_PROP_security.protocol=SASL_SSL"),
		ARGC("--kafka-prop", "sasl.oauthbearer.client.secret=" SECRET),
		ARGV("--kafka-prop", "sasl.oauthbearer.client.secret=" SECRET));
	n = config_summary(&cfg, buf, sizeof buf);
	cr_assert_eq(n, strlen(buf));
	cr_assert_null(strstr(buf, SECRET), "secret in summary:\n%s", buf);
	cr_assert_not_null(strstr(buf, "rediss://wabot:***@cache:6380/2"), "%s", buf);
	cr_assert_not_null(strstr(buf, "sasl.password=***"), "%s", buf);
	cr_assert_not_null(strstr(buf, "sasl.jaas.config=***"), "%s", buf);
	cr_assert_not_null(strstr(buf, "sasl.oauthbearer.client.secret=***"), "%s", buf);
	cr_assert_not_null(strstr(buf, "security.protocol=SASL_SSL"), "%s", buf);
	cr_assert_not_null(strstr(buf, "REDIS_URL"), "%s", buf);
	config_fini(&cfg);

	load_ok(&cfg, ENV("AZURE_REDIS_CONNECTIONSTRING=[::1]:6390,password=" SECRET ",ssl=True"),
		0, NULL);
	config_summary(&cfg, buf, sizeof buf);
	cr_assert_null(strstr(buf, SECRET), "secret in summary:\n%s", buf);
	cr_assert_not_null(strstr(buf, "rediss://:***@[::1]:6390/0"), "%s", buf);
	config_fini(&cfg);
}

Test(config, summary_shows_the_worker_settings)
{
	struct wb_config cfg;
	char buf[4096];

	load_ok(&cfg,
		ENV("REDIS_URL=redis://:" SECRET "@cache", "KAFKA_GROUP_INSTANCE_ID=wabot-worker-3",
		    "SHUTDOWN_TIMEOUT_SECONDS=28", "DRAIN_TIMEOUT_SECONDS=12",
		    "WORKER_QUEUE_DEPTH=4096", "MAX_IN_FLIGHT_PER_PARTITION=20000",
		    "EVENT_MAX_ATTEMPTS=7", "STORE_FALLBACK=memory"),
		0, NULL);
	config_summary(&cfg, buf, sizeof buf);
	cr_assert_null(strstr(buf, SECRET), "secret in summary:\n%s", buf);
	cr_assert_not_null(strstr(buf, "kafka instance id:  wabot-worker-3 (static membership)\n"),
			   "%s", buf);
	cr_assert_not_null(
		strstr(buf, "flow control:       queue depth 4096 per worker, 20000 in flight per "
			    "partition\n"),
		"%s", buf);
	cr_assert_not_null(strstr(buf, "event attempts:     7, then the dead-letter topic\n"), "%s",
			   buf);
	cr_assert_not_null(
		strstr(buf, "shutdown:           timeout 28 s, revocation drain timeout 12 s\n"), "%s",
		buf);
	cr_assert_not_null(strstr(buf, "store fallback:     memory"), "%s", buf);
	config_fini(&cfg);

	load_ok(&cfg, ENV("REDIS_URL=redis://cache"), 0, NULL);
	config_summary(&cfg, buf, sizeof buf);
	cr_assert_not_null(strstr(buf, "store fallback:     none\n"), "%s", buf);
	config_fini(&cfg);

	load_ok(&cfg, NO_ENV, 0, NULL);
	config_summary(&cfg, buf, sizeof buf);
	cr_assert_not_null(strstr(buf, "kafka instance id:  (none: dynamic membership)\n"), "%s",
			   buf);
	cr_assert_not_null(strstr(buf, "queue depth 2048 per worker, 10000 in flight"), "%s", buf);
	cr_assert_not_null(strstr(buf, "event attempts:     5,"), "%s", buf);
	cr_assert_not_null(strstr(buf, "timeout 25 s, revocation drain timeout 10 s"), "%s", buf);
	cr_assert_null(strstr(buf, "store fallback"), "no fallback line for the memory store:\n%s",
		       buf);
	config_fini(&cfg);
}

Test(config, summary_of_memory_store_and_small_buffer)
{
	struct wb_config cfg;
	char buf[4096], small[16];
	size_t n;

	load_ok(&cfg, NO_ENV, 0, NULL);
	n = config_summary(&cfg, buf, sizeof buf);
	cr_assert_not_null(strstr(buf, "memory"), "%s", buf);
	cr_assert_not_null(strstr(buf, "wa.inbound"), "%s", buf);
	cr_assert_not_null(strstr(buf, "3600"), "%s", buf);
	cr_assert_lt(n, 2000, "one screen");
	cr_assert_eq(config_summary(&cfg, small, sizeof small), n);
	cr_assert_eq(strlen(small), sizeof small - 1);
	cr_assert(strncmp(small, buf, sizeof small - 1) == 0);
	cr_assert_eq(config_summary(&cfg, NULL, 0), n);
	config_fini(&cfg);
}

Test(config, usage_lists_every_flag_and_variable)
{
	static const char *const names[] = {
		"KAFKA_BROKERS", "--kafka-brokers", "KAFKA_GROUP_ID", "--group-id", "wabot-worker",
		"INBOUND_TOPIC", "--inbound-topic", "wa.inbound", "OUTBOUND_TOPIC",
		"--outbound-topic", "wa.outbound", "DLQ_TOPIC", "--dlq-topic", "wa.dlq",
		"WORKER_THREADS", "--worker-threads", "REDIS_URL", "--redis-url",
		"AZURE_REDIS_CONNECTIONSTRING", "--azure-redis", "CONTEXT_TTL_SECONDS",
		"--context-ttl", "3600", "FLOW_FILE", "--flow-file", "HTTP_PORT", "--http-port",
		"9090", "LOG_LEVEL", "--log-level", "KAFKA_PROP_", "--kafka-prop",
		"CONTEXT_MAX_ENTRIES", "--context-max-entries", "1000000", "CONTEXT_MAX_BYTES",
		"--context-max-bytes", "512m", "REDIS_TLS_CA_FILE", "--redis-ca-file",
		"REDIS_TLS_SERVER_NAME", "--redis-tls-server-name", "REDIS_TLS_VERIFY",
		"--redis-tls-verify", "REDIS_CONNECT_TIMEOUT_MS", "--redis-connect-timeout-ms",
		"2000", "REDIS_COMMAND_TIMEOUT_MS", "--redis-command-timeout-ms", "1000",
		"REDIS_POOL_SIZE", "--redis-pool-size", "KAFKA_GROUP_INSTANCE_ID",
		"--group-instance-id", "1..249", "SHUTDOWN_TIMEOUT_SECONDS",
		"--shutdown-timeout-seconds", "default: 25", "1..3600", "DRAIN_TIMEOUT_SECONDS",
		"--drain-timeout-seconds", "default: 10\n", "1..600", "WORKER_QUEUE_DEPTH",
		"--worker-queue-depth", "default: 2048\n", "MAX_IN_FLIGHT_PER_PARTITION",
		"--max-in-flight-per-partition", "default: 10000\n", "1..1048576",
		"EVENT_MAX_ATTEMPTS", "--event-max-attempts", "default: 5\n", "1..100",
		"STORE_FALLBACK", "--store-fallback", "none or memory", "default: none\n",
		"AUDIT_LOG", "--audit-log",
	};
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	config_usage(f);
	fclose(f);
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		cr_assert_not_null(strstr(text, names[i]), "usage lacks %s", names[i]);
	free(text);
}
