/*
 * kafka.h - librdkafka configuration shared by the consumer and the
 * producer: the project's baseline settings, then every KAFKA_PROP_<name>
 * the user passed (so a user can override anything), and librdkafka's own
 * log lines routed into our JSON log.
 *
 * Baseline (see issue 4 and ARCHITECTURE.md):
 *   both:     bootstrap.servers, client.id, log routed, secrets never logged
 *   consumer: group.id, group.instance.id (when configured),
 *             partition.assignment.strategy=cooperative-sticky,
 *             enable.auto.offset.store=false, enable.auto.commit=true,
 *             auto.commit.interval.ms=500, auto.offset.reset=earliest,
 *             statistics.interval.ms=5000
 *   producer: enable.idempotence=true, linger.ms=5
 *   reader:   group.id=<group>-reader, enable.auto.commit=false
 *   observer: group.id=<group>, enable.auto.commit=false
 * The baseline properties the guarantees rest on (bootstrap.servers,
 * group.id, group.instance.id, enable.auto.offset.store, enable.auto.commit,
 * enable.idempotence, partition.assignment.strategy) cannot be overridden
 * through KAFKA_PROP_: that is a configuration error naming the setting to
 * use instead.
 * Owns nothing; each rd_kafka_conf_t returned belongs to the caller until
 * rd_kafka_new() takes it.
 */
#ifndef WB_KAFKA_H
#define WB_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

enum kafka_role {
	KAFKA_CONSUMER, /* the worker's group member */
	KAFKA_PRODUCER, /* replies and dead letters */
	KAFKA_READER,   /* tools (demo): assigns partitions itself, never commits */
	KAFKA_OBSERVER, /* lag: the worker's group.id, to read its committed offsets;
	                   never subscribes (so never joins) and never commits */
};

/* The librdkafka version whose fixes the worker relies on (2.0.2, Debian 12). */
#define KAFKA_MIN_VERSION 0x020002ff

/*
 * A configuration for role built from cfg (brokers from cfg->kafka_brokers,
 * or `brokers` when not NULL). NULL on a property librdkafka refuses:
 * errstr then names the property (never its value when it is a secret).
 */
rd_kafka_conf_t *kafka_conf_new(const struct wb_config *cfg, enum kafka_role role, const char *brokers, char *errstr,
				size_t errstr_size);

/* Logs the runtime librdkafka version, with a warning when it is older than
 * KAFKA_MIN_VERSION. */
void kafka_log_version(void);

#endif /* WB_KAFKA_H */
