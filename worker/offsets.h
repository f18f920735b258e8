/*
 * offsets.h - per-partition completion tracking, for safe Kafka commits.
 *
 * Records of one partition are fetched in order but finish in any order (on
 * worker threads, or in the producer's delivery reports). Committing offset N
 * tells Kafka that everything below N is done, so the worker may only commit
 * past the contiguous prefix of done records. This module tracks that prefix.
 * An offsets_t covers one topic: partitions 0..max_partitions-1.
 *
 * The contract:
 * - offsets_assign(): the consumer thread, when a partition is assigned.
 *   Tracking starts empty under a new epoch, returned to the caller. The
 *   epoch (uint32, never 0) of a partition grows at every assign, revoke and
 *   lost, so it names one assignment of it.
 * - offsets_track(): the consumer thread, for each fetched record in fetch
 *   order. Offsets of one partition strictly increase within an assignment
 *   but may have gaps (compaction, transaction markers). At most
 *   max_in_flight records of a partition are tracked at once; beyond that
 *   WB_ERR_TOO_BIG, and the caller pauses the partition until
 *   offsets_commit_point() has released some (see offsets_in_flight()).
 * - offsets_done(): any thread, when a record is fully done, with the epoch
 *   offsets_track() gave. A stale epoch (the partition was revoked or lost
 *   since) is ignored and returns false, so no result of a lost assignment is
 *   ever counted as progress.
 * - offsets_commit_point(): true and *next = the offset to commit (last
 *   offset of the contiguous done prefix + 1, Kafka's convention) when it
 *   advanced since the last call that returned true; the done prefix is
 *   released (it no longer counts as in flight).
 * - offsets_revoke() / offsets_lost(): bump the epoch and forget the state.
 *   They do the same thing here; the difference is the caller's duty:
 *   before revoke, drain (wait until offsets_in_flight() is 0 after a last
 *   offsets_commit_point(), bounded by a timeout) and commit the last commit
 *   point, because another member takes the partition over from the committed
 *   offset. On lost the partition already belongs to someone else: do not
 *   drain and do NOT commit (the commit would fail or, worse, move another
 *   member's position); records still running finish, and their done()
 *   calls are ignored.
 *
 * Threads: every function is safe from any thread. Each partition has its own
 * mutex; a call takes at most one such lock and calls nothing while holding
 * it, so there is no lock order to respect (lock order: a partition lock is a
 * leaf; never take another lock under it). assign, track, commit_point,
 * revoke and lost are meant for the consumer thread (the commit point then
 * belongs to the current assignment); done may race with all of them.
 *
 * Memory: offsets_new() allocates the partition table; the first assign of a
 * partition allocates its ring of max_in_flight entries, kept until
 * offsets_destroy() and reused by later assignments. Nothing is allocated per
 * record. Owns nothing of the caller's.
 */
#ifndef WB_OFFSETS_H
#define WB_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct offsets offsets_t;

/* Largest max_in_flight accepted by offsets_new() (16 bytes per entry). */
#define OFFSETS_MAX_IN_FLIGHT (1u << 20)

/* Largest max_partitions accepted by offsets_new() (about 100 bytes each). */
#define OFFSETS_MAX_PARTITIONS 65536

/*
 * New tracker for partitions 0..max_partitions-1, each with at most
 * max_in_flight records tracked at once. Returns NULL when max_in_flight is
 * not in 1..OFFSETS_MAX_IN_FLIGHT, max_partitions not in
 * 1..OFFSETS_MAX_PARTITIONS, or memory runs out; then errstr (may be NULL)
 * gets the reason, NUL-terminated. Caller owns the result; free with
 * offsets_destroy().
 */
offsets_t *offsets_new(uint32_t max_in_flight, int32_t max_partitions, char *errstr,
		       size_t errstr_size);

/* Frees o and every ring. o may be NULL. No other call on o may be running. */
void offsets_destroy(offsets_t *o);

/*
 * Starts tracking partition under a new epoch, stored in *epoch (may be
 * NULL). Errors: WB_ERR_INVALID (partition out of range, or already
 * assigned: revoke or lose it first), WB_ERR_NOMEM (first assign of this
 * partition could not allocate its ring; nothing changed).
 */
wb_err_t offsets_assign(offsets_t *o, int32_t partition, uint32_t *epoch);

/*
 * Records offset (>= 0) of partition as in flight and stores the current
 * epoch in *epoch (may be NULL), to pass to offsets_done(). Errors:
 * WB_ERR_NOT_FOUND (partition not assigned or out of range), WB_ERR_INVALID
 * (offset negative, or not above the last one tracked in this assignment),
 * WB_ERR_TOO_BIG (max_in_flight records already tracked: pause the
 * partition). Nothing changes on error.
 */
wb_err_t offsets_track(offsets_t *o, int32_t partition, int64_t offset, uint32_t *epoch);

/*
 * Marks offset of partition done. Returns true when it was tracked and not
 * yet done in assignment epoch; false (and changes nothing) for a stale
 * epoch, an unassigned partition, an offset never tracked or already
 * released, or a second done of the same offset.
 */
bool offsets_done(offsets_t *o, int32_t partition, int64_t offset, uint32_t epoch);

/*
 * When the contiguous done prefix of partition advanced since the last call
 * that returned true in this assignment: releases that prefix, stores the
 * offset to commit (its last offset + 1) in *next and returns true.
 * Otherwise (nothing newly done at the head, or partition not assigned)
 * returns false and leaves *next alone.
 */
bool offsets_commit_point(offsets_t *o, int32_t partition, int64_t *next);

/* true while partition is assigned under epoch (a worker asks before
 * retrying a record: a revoked or lost assignment's work is abandoned). */
bool offsets_current(offsets_t *o, int32_t partition, uint32_t epoch);

/* Records of partition tracked and not yet released (done or not); 0 when
 * the partition is not assigned. */
size_t offsets_in_flight(offsets_t *o, int32_t partition);

/*
 * The partition was revoked (after draining) / lost (without draining): bump
 * its epoch and forget its records; see the top of this file for what the
 * caller owes before each. WB_ERR_NOT_FOUND when it was not assigned.
 */
wb_err_t offsets_revoke(offsets_t *o, int32_t partition);
wb_err_t offsets_lost(offsets_t *o, int32_t partition);

#endif /* WB_OFFSETS_H */
