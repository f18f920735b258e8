/*
 * test_kafka_conf.c - worker/kafka.c's configurations: the worker's own
 * settings win over KAFKA_PROP_ ones it depends on, pass-through properties
 * reach librdkafka, and a fetch queue smaller than librdkafka's default is
 * warned about (it stalls fetching for a second each time the worker's
 * queues fill; see warn_small_fetch_queue).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "kafka.h"
#include "log.h"

static int log_fd = -1;

static void setup(void)
{
	char path[] = "/tmp/wb-test-log-XXXXXX";

	log_fd = mkstemp(path);
	cr_assert(log_fd >= 0);
	unlink(path);
	log_set_fd(log_fd);
	log_set_level(LOG_INFO);
}

static void teardown(void)
{
	log_set_fd(2);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
}

TestSuite(kafka_conf, .init = setup, .fini = teardown, .timeout = 10);

/* Everything logged so far (malloc'd). */
static char *log_text(void)
{
	off_t end = lseek(log_fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)end + 1);

	cr_assert_not_null(buf);
	cr_assert_eq(pread(log_fd, buf, (size_t)end, 0), (ssize_t)end);
	return buf;
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
