/*
 * producer.h - replies and dead letters out to Kafka, from an idempotent
 * producer shared by every lane, with delivery reports closing the jobs.
 *
 * Replies go to the outbound topic keyed by phone; dead letters to the DLQ
 * topic with the original key and bytes in the value (pipeline.h) and these
 * headers: reason, source_topic, source_partition, source_offset,
 * consumer_group, attempts.
 * Each produced record holds a reference on its job (job.h) until its
 * delivery report: success lets go; a permanent failure (after librdkafka's
 * own retries, up to message.timeout.ms) is logged, counted and marks the
 * job failed, so its offset is never committed.
 * A full local queue is waited out (the report thread drains it), never
 * dropped.
 *
 * Owns: the rd_kafka_t producer, its topic handles and the delivery-report
 * thread. Threads: producer_send from any thread.
 */
#ifndef WB_PRODUCER_H
#define WB_PRODUCER_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "pipeline.h"

typedef struct producer producer_t;

struct producer_stats {
	uint64_t replies;   /* replies delivered */
	uint64_t dlq;       /* dead letters delivered */
	uint64_t failed;    /* outputs not delivered (permanent failure) */
	uint64_t queue_full;/* waits for room in the local queue */
};

/* brokers: NULL for cfg->kafka_brokers. NULL on failure, with errstr. */
producer_t *producer_new(const struct wb_config *cfg, const char *brokers, char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for every delivery report, stops the report
 * thread and frees everything. NULL ok. */
void producer_destroy(producer_t *p, int timeout_ms);

/*
 * Produces o for job (a reference is taken for the record until its
 * delivery report). attempts goes into the DLQ header. Returns WB_OK, or
 * WB_ERR_INVALID / WB_ERR_NOMEM when librdkafka refuses the record at once
 * (then no reference is kept and the caller decides).
 */
wb_err_t producer_send(producer_t *p, const struct pipeline_output *o, struct job *job, uint32_t attempts);

/* Records handed over but not yet reported. */
int producer_outq_len(producer_t *p);

void producer_get_stats(producer_t *p, struct producer_stats *out);

/* Dead letters handed to librdkafka, by reason: fills names[i] (static
 * strings) and counts[i] for up to cap reasons, the last being "other"
 * (a reason outside the known set); returns how many. Any thread. */
#define PRODUCER_MAX_REASONS 64
size_t producer_dlq_reasons(producer_t *p, const char **names, uint64_t *counts, size_t cap);

#endif /* WB_PRODUCER_H */
