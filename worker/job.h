/*
 * job.h - one inbound Kafka record on its way through the worker.
 *
 * The consumer thread creates a job per fetched record and routes it to the
 * lanes (worker threads) owning its phones; each lane runs the pipeline on
 * its share of the record's events; each output (reply or dead letter) is
 * produced with the job as delivery opaque. The job counts these holders in
 * refs. When the last one lets go, the record is done: its offset is marked
 * done in the offset tracker (under the epoch of the assignment that fetched
 * it, so a result of a revoked or lost assignment never counts), unless an
 * output could not be delivered, in which case the offset stays not done and
 * the partition's commit stops there (at-least-once: a restart redelivers).
 *
 * Jobs of one record with one event (nearly all) come from a job_pool:
 * the consumer thread takes them, the report thread frees most of them, so
 * malloc would serve every one from its slow path (glibc's per-thread
 * cache never holds what another thread freed). The pool hands freed ones
 * back to the consumer through a lock-free stack.
 *
 * Owns: the librdkafka message (destroyed with the job). Borrows the
 * tracker, the counters and the pool, which outlive every job.
 * Threads: refs and failed are atomic; everything else is written before the
 * job is shared and only read afterwards.
 */
#ifndef WB_JOB_H
#define WB_JOB_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "offsets.h"

/* Counters every job updates on completion; owned by the consumer. */
struct job_counters {
	atomic_uint_fast64_t done;      /* records fully done (offset marked done) */
	atomic_uint_fast64_t abandoned; /* records whose assignment went away first */
	atomic_uint_fast64_t failed;    /* records with an undelivered output */
	/* [partition]: record timestamp (Unix ms) of the newest record done (to
	 * 100 ms: job.c), for the time lag in /metrics; NULL: not kept */
	_Atomic int64_t *done_ts;
};

/* Recycled job memory (top of the file). One thread takes (job_new), any
 * thread gives back (the last job_unref or job_discard). */
struct job_pool;

struct job_pool *job_pool_new(void);
/* After every job of the pool is gone. */
void job_pool_destroy(struct job_pool *pool);

/* Up to 256 lanes (CONFIG_MAX_THREADS). */
#define JOB_MAX_LANES 256
/* Unacknowledged-record counters a job can hold (one per lane it runs on;
 * see lanes.c, "the unacknowledged bound"). */
#define JOB_MAX_HOLDS 4

struct wa_event;

struct job {
	rd_kafka_message_t *msg;
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms;      /* the record's timestamp (Unix ms), -1: none */
	uint32_t epoch;            /* the assignment that fetched it */
	atomic_uint refs;
	atomic_bool failed;        /* an output was not delivered */
	offsets_t *offsets;
	struct job_counters *counters;
	struct job_pool *pool;     /* the pool the memory returns to; NULL: malloc'ed */
	uint32_t home;             /* home lane (pipeline_home_lane) */
	uint64_t key_hash;         /* phone_hash of the record's key (set by the
	                              consumer's routing; the lanes' bound uses it) */
	uint64_t lanes[JOB_MAX_LANES / 64]; /* lanes holding events of it */
	atomic_uint nholds;        /* slots of holds taken (may exceed JOB_MAX_HOLDS) */
	atomic_uint *holds[JOB_MAX_HOLDS]; /* counters to decrement when done */
	struct job *next;          /* consumer backlog */
	/* The record decoded by the consumer (to route it), for the lanes to
	 * apply without decoding it again: evs[0..nevs) in the job's own
	 * allocation (event_copy), valid while msg is. decoded false:
	 * undecodable (the lane's pipeline finds out
	 * and dead-letters it). */
	bool decoded;
	const struct wa_event *evs;
	size_t nevs;
};

/* New job for msg (taken over), holding one reference for the caller,
 * with `extra` bytes after it for the caller (job_extra; 8-byte aligned),
 * from pool when it fits (pool NULL: malloc). Only one thread may call it
 * for a given pool. NULL when memory runs out (msg is then NOT taken
 * over). */
struct job *job_new(struct job_pool *pool, rd_kafka_message_t *msg, uint32_t epoch, offsets_t *offsets,
		    struct job_counters *counters, size_t extra);

static inline void *job_extra(struct job *j)
{
	return j + 1;
}

static inline void job_ref(struct job *j)
{
	atomic_fetch_add_explicit(&j->refs, 1, memory_order_relaxed);
}

/* Drops one reference; the last one completes the job and frees it. */
void job_unref(struct job *j);

/* Marks that an output of j was not delivered (its offset must not count). */
static inline void job_fail(struct job *j)
{
	atomic_store_explicit(&j->failed, true, memory_order_relaxed);
}

/* Counts j in *counter until j is done (its outputs acknowledged or
 * abandoned): the counter is incremented now and decremented when j is
 * freed. false when j holds JOB_MAX_HOLDS counters already (nothing done). */
bool job_hold(struct job *j, atomic_uint *counter);

/* Frees j without marking anything done: a record that was never started
 * (dropped from a backlog on revocation, or at shutdown). */
void job_discard(struct job *j);

static inline void job_lane_set(struct job *j, uint32_t lane)
{
	j->lanes[lane / 64] |= UINT64_C(1) << (lane % 64);
}

static inline bool job_lane_has(const struct job *j, uint32_t lane)
{
	return (j->lanes[lane / 64] >> (lane % 64)) & 1u;
}

#endif /* WB_JOB_H */
