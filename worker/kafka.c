/*
 * kafka.c - librdkafka configuration and log routing (kafka.h).
 */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* librdkafka's syslog levels onto ours. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;

	log_at(l, "librdkafka", LOG_STR("client", rd_kafka_name(rk)), LOG_STR("facility", fac),
	       LOG_STR("message", buf));
}

/* Properties the worker's guarantees rest on: set from our own settings,
 * never from KAFKA_PROP_ (with the setting to use instead, if any). */
static const char *const managed[][2] = {
	{"bootstrap.servers", "KAFKA_BROKERS"},
	{"group.id", "KAFKA_GROUP_ID"},
	{"group.instance.id", "KAFKA_GROUP_INSTANCE_ID"},
	{"enable.auto.offset.store", NULL},
	{"enable.auto.commit", NULL},
	{"enable.idempotence", NULL},
	{"partition.assignment.strategy", NULL},
};

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr, size_t errstr_size)
{
	char why[256];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
		return 0;
	if (config_kafka_prop_is_secret(name))
		snprintf(errstr, errstr_size, "Kafka property %s: refused by librdkafka", name);
	else
		snprintf(errstr, errstr_size, "Kafka property %s: %s", name, why);
	return -1;
}

/* librdkafka's default queued.max.messages.kbytes (64 MiB). */
#define KAFKA_FETCH_QUEUE_KB_DEFAULT 65536

/*
 * Warns when queued.max.messages.kbytes is set below librdkafka's default.
 * Whenever the fetched records it holds for the application reach that size
 * it backs a partition's fetching off for a whole second, and the worker
 * fills it each time its queues are full and it stops taking records
 * (consumer.c, wait_for_room). bench_kafka, memory store: 186,000-202,000
 * ev/s at 65536, 83,000-89,000 at 16384, 32,000 at 8192.
 */
static void warn_small_fetch_queue(rd_kafka_conf_t *conf)
{
	char v[32];
	size_t n = sizeof v;
	long kb;

	if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", v, &n) != RD_KAFKA_CONF_OK)
		return;
	kb = strtol(v, NULL, 10);
	if (kb < KAFKA_FETCH_QUEUE_KB_DEFAULT)
		log_at(LOG_WARN,
		       "queued.max.messages.kbytes is below librdkafka's default: fetching stops for a second "
		       "each time the worker's queues fill, and throughput drops (16384 measured 0.4x)",
		       LOG_INT("kbytes", kb), LOG_INT("default", KAFKA_FETCH_QUEUE_KB_DEFAULT));
}

rd_kafka_conf_t *kafka_conf_new(const struct wb_config *cfg, enum kafka_role role, const char *brokers, char *errstr,
				size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *base[][2] = {
		{"bootstrap.servers", brokers ? brokers : cfg->kafka_brokers},
		{"client.id", role == KAFKA_CONSUMER   ? "wabot-worker"
			      : role == KAFKA_PRODUCER ? "wabot-worker-producer"
			      : role == KAFKA_READER   ? "wabot-worker-reader"
						       : "wabot-worker-observer"},
	};
	char reader_group[300];
	const char *consumer[][2] = {
		{"group.id", cfg->group_id},
		{"partition.assignment.strategy", "cooperative-sticky"},
		{"enable.auto.offset.store", "false"},
		{"enable.auto.commit", "true"},
		{"auto.commit.interval.ms", "500"},
		{"auto.offset.reset", "earliest"},
		/* the group's join state for /healthz (consumer.c, stats_cb) */
		{"statistics.interval.ms", "5000"},
	};
	const char *producer[][2] = {
		{"enable.idempotence", "true"},
		{"linger.ms", "5"},
	};
	size_t i;

	if (!conf) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (set(conf, base[i][0], base[i][1], errstr, errstr_size))
			goto fail;
	if (role == KAFKA_CONSUMER) {
		for (i = 0; i < sizeof(consumer) / sizeof(consumer[0]); i++)
			if (set(conf, consumer[i][0], consumer[i][1], errstr, errstr_size))
				goto fail;
		if (cfg->group_instance_id &&
		    set(conf, "group.instance.id", cfg->group_instance_id, errstr, errstr_size))
			goto fail;
	} else if (role == KAFKA_READER || role == KAFKA_OBSERVER) {
		snprintf(reader_group, sizeof(reader_group), role == KAFKA_READER ? "%s-reader" : "%s", cfg->group_id);
		if (set(conf, "group.id", reader_group, errstr, errstr_size) ||
		    set(conf, "enable.auto.commit", "false", errstr, errstr_size))
			goto fail;
	} else {
		for (i = 0; i < sizeof(producer) / sizeof(producer[0]); i++)
			if (set(conf, producer[i][0], producer[i][1], errstr, errstr_size))
				goto fail;
	}
	for (i = 0; i < cfg->kafka_props_len; i++) {
		const char *name = cfg->kafka_props[i].name;
		size_t k;

		for (k = 0; k < sizeof(managed) / sizeof(managed[0]); k++)
			if (strcmp(name, managed[k][0]) == 0) {
				snprintf(errstr, errstr_size,
					 "Kafka property %s: set by the worker itself (safe commits and per-user order "
					 "depend on it)%s%s",
					 name, managed[k][1] ? "; use " : "", managed[k][1] ? managed[k][1] : "");
				goto fail;
			}
		if (set(conf, name, cfg->kafka_props[i].value, errstr, errstr_size))
			goto fail;
	}
	if (role == KAFKA_CONSUMER)
		warn_small_fetch_queue(conf);
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

void kafka_log_version(void)
{
	int v = rd_kafka_version();

	if (v < KAFKA_MIN_VERSION)
		log_at(LOG_WARN, "librdkafka is older than 2.0.2: cooperative rebalancing and pause/resume fixes "
				 "the worker relies on may be missing",
		       LOG_STR("version", rd_kafka_version_str()));
	else
		log_at(LOG_INFO, "librdkafka", LOG_STR("version", rd_kafka_version_str()));
}
