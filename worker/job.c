/*
 * job.c - lifetime of one inbound record (job.h).
 */
#include "job.h"

#include <stdlib.h>
#include <string.h>

struct job *job_new(rd_kafka_message_t *msg, uint32_t epoch, offsets_t *offsets, struct job_counters *counters,
		    size_t extra)
{
	struct job *j = malloc(sizeof(*j) + extra);

	if (!j)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->msg = msg;
	j->partition = msg->partition;
	j->offset = msg->offset;
	j->timestamp_ms = rd_kafka_message_timestamp(msg, NULL);
	j->epoch = epoch;
	j->offsets = offsets;
	j->counters = counters;
	atomic_init(&j->refs, 1);
	atomic_init(&j->failed, false);
	atomic_init(&j->nholds, 0);
	return j;
}

_Static_assert(sizeof(struct job) % 8 == 0, "job_extra must stay 8-byte aligned");

bool job_hold(struct job *j, atomic_uint *counter)
{
	unsigned slot = atomic_fetch_add_explicit(&j->nholds, 1, memory_order_relaxed);

	if (slot >= JOB_MAX_HOLDS)
		return false;
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	j->holds[slot] = counter; /* read by the last unref, after an acq_rel */
	return true;
}

void job_discard(struct job *j)
{
	unsigned i, n;

	if (!j)
		return;
	n = atomic_load_explicit(&j->nholds, memory_order_relaxed);
	for (i = 0; i < n && i < JOB_MAX_HOLDS; i++)
		atomic_fetch_sub_explicit(j->holds[i], 1, memory_order_release);
	rd_kafka_message_destroy(j->msg);
	free(j);
}

/* Resolution of the done timestamps: a metric in seconds needs no more,
 * and it spares the hot path a contended compare-and-swap per record (one
 * per partition per DONE_TS_GRAIN_MS at most). */
#define DONE_TS_GRAIN_MS 100

/* *at = max(*at, ts) to DONE_TS_GRAIN_MS: lanes and the report thread
 * finish records of one partition concurrently. */
static void note_done_ts(_Atomic int64_t *at, int64_t ts)
{
	int64_t cur = atomic_load_explicit(at, memory_order_relaxed);

	while (ts >= cur + DONE_TS_GRAIN_MS &&
	       !atomic_compare_exchange_weak_explicit(at, &cur, ts, memory_order_relaxed, memory_order_relaxed))
		;
}

void job_unref(struct job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (atomic_load_explicit(&j->failed, memory_order_relaxed))
		atomic_fetch_add_explicit(&j->counters->failed, 1, memory_order_relaxed);
	else if (offsets_done(j->offsets, j->partition, j->offset, j->epoch)) {
		atomic_fetch_add_explicit(&j->counters->done, 1, memory_order_relaxed);
		if (j->counters->done_ts)
			note_done_ts(&j->counters->done_ts[j->partition], j->timestamp_ms);
	}
	else
		atomic_fetch_add_explicit(&j->counters->abandoned, 1, memory_order_relaxed);
	job_discard(j);
}
