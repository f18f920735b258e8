/*
 * lanes.h - the worker threads ("lanes") and their bounded queues.
 *
 * Lane i owns the phones with phone_hash(phone) % nlanes == i
 * (pipeline_home_lane), so one phone's events always run on one thread, in
 * the order the consumer pushed them (fetch order = offset order), while
 * other phones of the same partition run in parallel on other lanes.
 * Each lane has a FIFO of at most `depth` jobs and its own pipeline (decoder,
 * flow session, buffers); the flow and the context store are shared.
 *
 * Failure handling in a lane, per record:
 * - bad input never fails: the pipeline turns it into dead letters;
 * - the store is down (a retriable error, and a probe read fails too): the
 *   lane waits with backoff (100 ms doubling to 2 s, jittered) and tries
 *   again for as long as it takes. Its queue fills, the consumer stops
 *   taking records and, after ROOM_WAIT_MS (consumer.c), pauses the
 *   partitions feeding it; everything resumes when the store is back;
 * - the store answers but this record keeps failing (a poison record):
 *   after event_max_attempts tries with jittered backoff the whole record
 *   goes to the dead-letter topic (reason retries_exhausted), so its
 *   partition's commits move on.
 * - the record's assignment went away (revoked past the drain deadline, or
 *   lost): the lane stops retrying it; its offset is never marked done.
 *
 * Owns: the threads, queues and pipelines. Borrows flow, store, producer,
 * offsets and the config. Threads: lanes_push / lanes_flush / lanes_room
 * from the consumer thread only (single producer per queue); stats from any thread.
 */
#ifndef WB_LANES_H
#define WB_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctx_store.h"
#include "flow.h"
#include "job.h"
#include "producer.h"

typedef struct lanes lanes_t;

struct lanes_opts {
	const struct wb_config *cfg; /* threads, depth, ttl, topics, attempts */
	const flow_t *flow;
	ctx_store_t *store;
	ctx_store_t *fallback;        /* memory store while `store` is down, or NULL */
	producer_t *producer;
	offsets_t *offsets;
};

struct lanes_stats {
	uint64_t records;       /* record shares processed (one per lane per record) */
	uint64_t events;        /* events decoded */
	uint64_t replies;       /* replies emitted (re-emitted duplicates included) */
	uint64_t dlq;           /* dead letters emitted */
	uint64_t duplicates;    /* redelivered events: reply re-emitted, no step */
	uint64_t key_mismatch;  /* records whose key is missing or not their phone */
	uint64_t store_retries; /* tries repeated because the store failed */
	uint64_t poison;        /* records dead-lettered after event_max_attempts */
	uint64_t abandoned;     /* records dropped because their assignment ended */
	uint64_t hold_waits;    /* records that waited for their phone's earlier
	                           replies to be acknowledged (lanes.c) */
	uint64_t queued;        /* jobs waiting in all queues now */
};

lanes_t *lanes_new(const struct lanes_opts *o, char *errstr, size_t errstr_size);

/* Lets every queued job finish (or be abandoned when its assignment is
 * gone) and stops the threads; the counters stay readable. Idempotent;
 * NULL ok. */
void lanes_stop(lanes_t *l);

/* lanes_stop, then frees everything. NULL ok. */
void lanes_destroy(lanes_t *l);

uint32_t lanes_count(const lanes_t *l);

/* true when lane can take one more job. */
bool lanes_room(lanes_t *l, uint32_t lane);

/* true when lane's queue is at most half full: the low-water mark at which
 * the consumer resumes the partitions it paused for it. Pausing makes
 * librdkafka drop what it had fetched for the partition, so resuming at
 * the first free slot would pause again at once and refetch over and over. */
bool lanes_low(lanes_t *l, uint32_t lane);

/* Queues job on every lane marked in it (job_lane_set), taking one
 * reference per lane. Only call when lanes_room() is true for each.
 * Jobs are handed to a lane's thread in groups: a job may wait in the
 * consumer's staging area until lanes_flush, which the consumer calls
 * before it blocks or waits for the lanes. */
void lanes_push(lanes_t *l, struct job *job);

/* Hands every staged job to its lane's thread. Consumer thread. */
void lanes_flush(lanes_t *l);

void lanes_get_stats(lanes_t *l, struct lanes_stats *out);

/* Lanes with queued records that have not moved (taken a batch, tried or
 * retried a record) for more than limit_ms: a stuck thread, for /healthz.
 * A lane riding out a store outage retries and so is not stalled. Any
 * thread. */
uint32_t lanes_stalled(lanes_t *l, int64_t now_ms, int64_t limit_ms);

/* Depth of one lane's queue now. */
size_t lanes_depth(lanes_t *l, uint32_t lane);

#endif /* WB_LANES_H */
