/*
 * test_kafka_conf.c - worker/kafka.c's configurations: the worker's own
 * settings win over KAFKA_PROP_ ones it depends on, pass-through properties
 * reach librdkafka, and a fetch queue smaller than librdkafka's default is
 * warned about (it stalls fetching for a second each time the worker's
 * queues fill; see warn_small_fetch_queue).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"
#include "kafka.h"
#include "log_capture.h"

static void setup(void)
{
	cr_assert(log_capture_start());
}

TestSuite(kafka_conf, .init = setup, .fini = log_capture_stop, .timeout = 10);

/* Everything logged so far (malloc'd). */
static char *log_text(void)
{
	char *text = log_capture_text();

	cr_assert_not_null(text);
	return text;
}

/* A consumer configuration with one KAFKA_PROP_ (name NULL: none). */
static rd_kafka_conf_t *consumer_with(const char *name, const char *value, char *err, size_t n)
{
	struct wb_kafka_prop prop = {(char *)name, (char *)value};
	struct wb_config cfg = {
		.kafka_brokers = "127.0.0.1:9092",
		.group_id = "wabot-worker",
		.kafka_props = name ? &prop : NULL,
		.kafka_props_len = name ? 1 : 0,
	};

	return kafka_conf_new(&cfg, KAFKA_CONSUMER, NULL, err, n);
}

static void expect_conf(rd_kafka_conf_t *conf, const char *name, const char *want)
{
	char v[256];
	size_t n = sizeof v;

	cr_assert_eq(rd_kafka_conf_get(conf, name, v, &n), RD_KAFKA_CONF_OK, "%s", name);
	cr_assert_str_eq(v, want, "%s", name);
}

Test(kafka_conf, small_fetch_queue_is_set_and_warned_about)
{
	char err[256] = "", *log;
	rd_kafka_conf_t *conf = consumer_with("queued.max.messages.kbytes", "16384", err, sizeof err);

	cr_assert_not_null(conf, "%s", err);
	expect_conf(conf, "queued.max.messages.kbytes", "16384");
	rd_kafka_conf_destroy(conf);
	log = log_text();
	cr_assert(strstr(log, "queued.max.messages.kbytes is below librdkafka's default") != NULL, "log: %s", log);
	cr_assert(strstr(log, "\"kbytes\":16384") != NULL, "log: %s", log);
	free(log);
}

Test(kafka_conf, default_or_larger_fetch_queue_is_not_warned_about)
{
	char err[256] = "", *log;
	rd_kafka_conf_t *conf = consumer_with(NULL, NULL, err, sizeof err);

	cr_assert_not_null(conf, "%s", err);
	expect_conf(conf, "enable.auto.offset.store", "false");
	expect_conf(conf, "partition.assignment.strategy", "cooperative-sticky");
	rd_kafka_conf_destroy(conf);
	conf = consumer_with("queued.max.messages.kbytes", "131072", err, sizeof err);
	cr_assert_not_null(conf, "%s", err);
	rd_kafka_conf_destroy(conf);
	log = log_text();
	cr_assert(strstr(log, "queued.max.messages.kbytes") == NULL, "log: %s", log);
	free(log);
}

Test(kafka_conf, property_the_worker_depends_on_is_refused)
{
	char err[256] = "";

	cr_assert_null(consumer_with("enable.auto.offset.store", "true", err, sizeof err));
	cr_assert(strstr(err, "enable.auto.offset.store") != NULL, "%s", err);
}
