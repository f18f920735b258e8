/*
 * consumer.h - the Kafka side of `wabot-worker run`: group membership,
 * the poll loop, routing records to lanes, flow control, safe commits,
 * rebalances and shutdown.
 *
 * One thread (the caller of consumer_run) owns the rd_kafka_t consumer and
 * calls rd_kafka_consumer_poll() continuously, also while partitions are
 * paused. For every record it:
 *   1. decodes it once to learn its phones, and routes it to the lanes
 *      owning them (pipeline_home_lane; a record key that is missing or
 *      disagrees with the payload's phone is counted, the payload wins);
 *   2. tracks its offset (offsets.h) and queues it on those lanes; when a
 *      lane's queue is full, or the partition has max_in_flight records
 *      not yet committed, the record waits in its partition's backlog and
 *      the partition is paused, to be resumed once the backlog has drained;
 *   3. stores the contiguous done prefix of each partition as its offset
 *      (enable.auto.offset.store=false; librdkafka's auto-commit sends it
 *      while the group is steady, each rebalance callback sends what is
 *      not confirmed yet; see commit_unconfirmed in consumer.c).
 * Rebalances are cooperative (incremental assign/unassign). On revocation
 * the revoked partitions' backlogs are dropped (never started), their
 * in-flight records are drained up to DRAIN_TIMEOUT_SECONDS, the done
 * prefix is committed synchronously, and only then are they unassigned;
 * records still running past the deadline are abandoned and counted
 * (redone by the next owner; 0 on a clean rebalance). On a lost assignment
 * nothing is drained or committed: the epoch bump fences every late result.
 * consumer_stop() (signal-safe) starts the shutdown: pause every partition,
 * finish what the lanes hold and wait until the broker confirmed its commit
 * (still a member: a rebalance going on is waited out), then unsubscribe,
 * drain through the revocation path, wait for an empty assignment, close,
 * within SHUTDOWN_TIMEOUT_SECONDS.
 *
 * Owns: the rd_kafka_t consumer, the producer, the lanes, the offset
 * tracker. Borrows the config, the flow and the stores.
 */
#ifndef WB_CONSUMER_H
#define WB_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctx_store.h"
#include "flow.h"

typedef struct consumer consumer_t;

/* Partitions 0..CONSUMER_MAX_PARTITIONS-1 of the inbound topic are served. */
#define CONSUMER_MAX_PARTITIONS 4096

struct consumer_stats {
	uint64_t consumed;        /* records fetched */
	uint64_t done;            /* records fully done (outputs delivered) */
	uint64_t failed;          /* records with an undelivered output */
	uint64_t abandoned;       /* records whose assignment ended first */
	uint64_t rebalances;      /* assign + revoke callbacks */
	uint64_t lost;            /* partitions lost (not revoked cleanly) */
	uint64_t redone;          /* in-flight records given up at a revocation or loss */
	uint64_t pauses;          /* partitions paused for flow control */
	uint64_t room_waits;      /* times the consumer stopped taking records until the
	                             queues had room (consumer.c, wait_for_room) */
	uint64_t commits;         /* offset commits the broker confirmed */
	uint32_t assigned;        /* partitions assigned now */
	uint32_t paused;          /* ... of which paused now */
};

/*
 * Builds the consumer, producer and lanes (WORKER_THREADS threads) and
 * subscribes to the inbound topic. brokers: NULL for cfg->kafka_brokers.
 * fallback: the memory store used while `store` is down
 * (--store-fallback memory), or NULL. NULL on failure with errstr.
 */
consumer_t *consumer_new(const struct wb_config *cfg, const flow_t *flow, ctx_store_t *store, ctx_store_t *fallback,
			 const char *brokers, char *errstr, size_t errstr_size);

/* Polls until consumer_stop(), then shuts down as described above.
 * Returns 0 after a clean shutdown, 1 when a deadline ran out or Kafka
 * reported a fatal error. Call once. */
int consumer_run(consumer_t *c);

/* Asks consumer_run to shut down. Async-signal-safe; any thread. */
void consumer_stop(consumer_t *c);

/* After consumer_run returned: lets the lanes finish, flushes the producer
 * (its delivery reports complete the last jobs) and drops what was never
 * started, so that the counters are final. Idempotent. */
void consumer_finish(consumer_t *c);

/* consumer_finish, then frees everything (after consumer_run returned, or
 * instead of it). */
void consumer_destroy(consumer_t *c);

/* A snapshot of the counters; any thread. lanes (may be NULL) gets the
 * lanes' counters (events, replies, dead letters, key mismatches ...). */
struct lanes_stats;
void consumer_get_stats(consumer_t *c, struct consumer_stats *out, struct lanes_stats *lanes);

/* --- for telemetry (any thread; each field read atomically, not the set) --- */

/* The consumer's rd_kafka_t, borrowed, for thread-safe queries of the
 * brokers (committed offsets, watermarks); never poll it. */
rd_kafka_t *consumer_kafka(consumer_t *c);

/* The lanes and the producer, borrowed, for their counters; the producer is
 * NULL once consumer_finish ran. */
typedef struct lanes lanes_t;
typedef struct producer producer_t;
lanes_t *consumer_lanes(consumer_t *c);
producer_t *consumer_producer(consumer_t *c);

/* One assigned partition as the consumer thread last published it. */
struct consumer_partition {
	int32_t partition;
	bool paused;
	int64_t stored;     /* next offset to commit (the done prefix); -1: none yet */
	size_t in_flight;   /* records fetched and not yet released by a commit point */
	int64_t done_ts_ms; /* record timestamp (Unix ms) of the newest record done; 0: none */
};

/* Fills out[0..cap) with the assigned partitions in order; returns how many. */
size_t consumer_partitions(consumer_t *c, struct consumer_partition *out, size_t cap);

/* A lane with queued records that has not moved for this long is stalled. */
#define CONSUMER_LANE_STALL_MS 60000

struct consumer_health {
	int64_t poll_age_ms;    /* since the poll loop last turned */
	bool stats_seen;        /* librdkafka reported statistics at least once */
	bool steady;            /* the group join state is "steady" (joined, assigned) */
	int64_t unsteady_ms;    /* how long it has not been steady (0 when steady) */
	uint32_t lanes_stalled; /* lanes with work and no progress for CONSUMER_LANE_STALL_MS */
	bool shutting_down;     /* consumer_stop was called */
};
void consumer_health(consumer_t *c, struct consumer_health *out);

/* Events decoded by the consumer, by provider (enum wa_provider) and kind
 * (enum wa_kind); 0 out of range. */
#define CONSUMER_PROVIDERS 3
#define CONSUMER_KINDS 9
uint64_t consumer_events(consumer_t *c, unsigned provider, unsigned kind);

#endif /* WB_CONSUMER_H */
