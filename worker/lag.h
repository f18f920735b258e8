/*
 * lag.h - `wabot-worker lag`: the consumer group's progress on the inbound
 * topic, per partition and in total, from the brokers themselves (what
 * KEDA and Burrow see): committed offset, high watermark, lag, and the
 * member that owns each partition now.
 *
 * lag = high watermark - committed offset; a partition the group never
 * committed counts everything still retained (high - low), which is what
 * a worker would process (auto.offset.reset=earliest).
 * Exit codes: 0 ok; 3 when the total lag exceeds --max-lag (to gate
 * scripts); 1 when Kafka cannot be asked; 2 bad usage or configuration.
 *
 * Owns, for the call: one rd_kafka_t that uses the worker's group.id to
 * read its offsets but never joins the group nor commits (KAFKA_OBSERVER).
 */
#ifndef WB_LAG_H
#define WB_LAG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* One partition's row. */
struct lag_row {
	int64_t committed; /* RD_KAFKA_OFFSET_INVALID: the group never committed */
	int64_t low, high; /* watermarks */
	int64_t lag;       /* records behind */
	const char *owner; /* member id (borrowed from groups); NULL: none or unknown */
};

/* The group's progress on the inbound topic, filled by lag_collect. */
struct lag_report {
	const struct wb_config *cfg;        /* borrowed */
	rd_kafka_t *rk;                     /* borrowed */
	int timeout_ms;                     /* per question to the brokers */
	int32_t n;                          /* partitions of the inbound topic */
	struct lag_row *rows;               /* [n], owned */
	int64_t total;                      /* records behind, all partitions */
	struct rd_kafka_group_list *groups; /* owned; NULL when the brokers could not describe the group */
	const char *state;                  /* group state ("Stable", "Empty" ...; borrowed from groups) or NULL */
	int members;                        /* members of the group now (0 when unknown) */
	char owners_error[256];             /* why owners are unknown; "" when known */
};

/*
 * The partition count of topic into *n, from the metadata of all topics
 * (never creates it). 0; -1 Kafka did not answer; -2 the topic is missing
 * or broken; errstr says which.
 */
int lag_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t *n, char *errstr,
			 size_t errstr_size);

/*
 * Fills *out (set up from scratch) for cfg's group and inbound topic with
 * rk, a consumer client built for KAFKA_OBSERVER. 0, or -1 with errstr
 * (Kafka unreachable, topic missing, offsets unreadable); the owners are
 * a courtesy (out->owners_error says why they are missing). Release with
 * lag_report_fini, also after a failure. Thread: the caller's.
 */
int lag_collect(const struct wb_config *cfg, rd_kafka_t *rk, int timeout_ms, struct lag_report *out, char *errstr,
		size_t errstr_size);
void lag_report_fini(struct lag_report *l);

/* Owners come from the group's member assignments (ConsumerProtocol
 * bytes). Parses one: calls fn(opaque, partition) for every partition of
 * `topic` in it. Returns 0, or -1 on malformed or truncated bytes, and then
 * fn was never called (nothing is trusted: every count and length is
 * checked against the buffer before anything is reported).
 * Exposed for the tests. */
int lag_assignment_partitions(const void *buf, size_t len, const char *topic,
			      void (*fn)(void *opaque, int32_t partition), void *opaque);

int lag_main(int argc, char **argv, char **envp);

#endif /* WB_LAG_H */
