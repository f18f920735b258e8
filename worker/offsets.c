/*
 * offsets.c - per-partition completion tracking (contract in offsets.h).
 *
 * A fixed table of partition slots, indexed by partition number and
 * allocated once by offsets_new(), so looking a partition up takes no lock.
 * Each slot has its own mutex, which guards every other field of it but
 * `live`, a copy of the current epoch (0: unassigned) written under the
 * mutex and read without it by offsets_current(), which the worker threads
 * ask for every record (it took the mutex that the consumer and delivery
 * threads take for every record too). Tracked
 * records sit in a ring of max_in_flight {offset, done} entries in fetch
 * order (so sorted by offset): track appends at the tail, done finds its
 * entry by binary search, commit_point pops the done prefix at the head.
 * Owns the table and the rings; nothing else.
 */
#include "offsets.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct offsets_entry {
	int64_t offset;
	bool done;
};

struct offsets_slot {
	pthread_mutex_t mu;
	_Atomic uint32_t live;        /* epoch while assigned, else 0; written under mu */
	/* All below guarded by mu. */
	bool assigned;
	uint32_t epoch;               /* grows at assign, revoke, lost; never 0 once used */
	int64_t last_tracked;         /* -1: nothing tracked in this assignment */
	struct offsets_entry *ring;   /* NULL until the first assign */
	uint32_t head;                /* index of the oldest entry */
	uint32_t count;               /* entries in the ring */
};

struct offsets {
	uint32_t max_in_flight;       /* ring size; read-only after new */
	int32_t max_partitions;       /* read-only after new */
	struct offsets_slot *slots;   /* max_partitions of them */
};

offsets_t *offsets_new(uint32_t max_in_flight, int32_t max_partitions, char *errstr,
		       size_t errstr_size)
{
	offsets_t *o;
	int32_t i;

	if (max_in_flight == 0 || max_in_flight > OFFSETS_MAX_IN_FLIGHT) {
		wb_errstr(errstr, errstr_size, "max_in_flight must be 1..%u",
			       OFFSETS_MAX_IN_FLIGHT);
		return NULL;
	}
	if (max_partitions <= 0 || max_partitions > OFFSETS_MAX_PARTITIONS) {
		wb_errstr(errstr, errstr_size, "max_partitions must be 1..%d",
			       OFFSETS_MAX_PARTITIONS);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		goto out_nomem;
	o->slots = calloc((size_t)max_partitions, sizeof(*o->slots));
	if (o->slots == NULL)
		goto out_free_o;
	for (i = 0; i < max_partitions; i++) {
		if (pthread_mutex_init(&o->slots[i].mu, NULL) != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&o->slots[i].mu);
			goto out_free_slots;
		}
		o->slots[i].last_tracked = -1;
	}
	o->max_in_flight = max_in_flight;
	o->max_partitions = max_partitions;
	return o;

out_free_slots:
	free(o->slots);
out_free_o:
	free(o);
out_nomem:
	wb_errstr(errstr, errstr_size, "out of memory");
	return NULL;
}

void offsets_destroy(offsets_t *o)
{
	int32_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->max_partitions; i++) {
		pthread_mutex_destroy(&o->slots[i].mu);
		free(o->slots[i].ring);
	}
	free(o->slots);
	free(o);
}

static struct offsets_slot *offsets_slot(offsets_t *o, int32_t partition)
{
	if (partition < 0 || partition >= o->max_partitions)
		return NULL;
	return &o->slots[partition];
}

/* Next epoch after e; skips 0 on wrap-around so 0 never names an assignment. */
static uint32_t offsets_next_epoch(uint32_t e)
{
	return e == UINT32_MAX ? 1 : e + 1;
}

/* The i-th oldest entry of s's ring (i < s->count). Caller holds s->mu. */
static struct offsets_entry *offsets_at(const offsets_t *o, struct offsets_slot *s, uint32_t i)
{
	uint32_t idx = s->head + i;

	if (idx >= o->max_in_flight)
		idx -= o->max_in_flight;
	return &s->ring[idx];
}

wb_err_t offsets_assign(offsets_t *o, int32_t partition, uint32_t *epoch)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	struct offsets_entry *ring = NULL;
	bool need_ring;

	if (s == NULL)
		return WB_ERR_INVALID;
	/* Only the consumer thread assigns, so the ring found missing here is
	 * still missing after the allocation (done() never allocates). */
	pthread_mutex_lock(&s->mu);
	need_ring = s->ring == NULL;
	pthread_mutex_unlock(&s->mu);
	if (need_ring) {
		ring = calloc(o->max_in_flight, sizeof(*ring));
		if (ring == NULL)
			return WB_ERR_NOMEM;
	}

	pthread_mutex_lock(&s->mu);
	if (s->assigned) {
		pthread_mutex_unlock(&s->mu);
		free(ring);
		return WB_ERR_INVALID;
	}
	if (s->ring == NULL) {
		s->ring = ring;
		ring = NULL;
	}
	s->assigned = true;
	s->epoch = offsets_next_epoch(s->epoch);
	atomic_store_explicit(&s->live, s->epoch, memory_order_release);
	s->last_tracked = -1;
	s->head = 0;
	s->count = 0;
	if (epoch != NULL)
		*epoch = s->epoch;
	pthread_mutex_unlock(&s->mu);
	free(ring); /* only if two threads assigned at once, against the contract */
	return WB_OK;
}

wb_err_t offsets_track(offsets_t *o, int32_t partition, int64_t offset, uint32_t *epoch)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	struct offsets_entry *e;
	wb_err_t err = WB_OK;

	if (s == NULL)
		return WB_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->mu);
	if (!s->assigned) {
		err = WB_ERR_NOT_FOUND;
	} else if (offset < 0 || offset <= s->last_tracked) {
		err = WB_ERR_INVALID;
	} else if (s->count == o->max_in_flight) {
		err = WB_ERR_TOO_BIG;
	} else {
		e = offsets_at(o, s, s->count);
		e->offset = offset;
		e->done = false;
		s->count++;
		s->last_tracked = offset;
		if (epoch != NULL)
			*epoch = s->epoch;
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

bool offsets_done(offsets_t *o, int32_t partition, int64_t offset, uint32_t epoch)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	struct offsets_entry *e;
	uint32_t lo, hi, mid;
	bool marked = false;

	if (s == NULL)
		return false;
	pthread_mutex_lock(&s->mu);
	if (!s->assigned || s->epoch != epoch)
		goto out;
	/* Entries are sorted by offset: find the first one >= offset. */
	lo = 0;
	hi = s->count;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (offsets_at(o, s, mid)->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->count)
		goto out;
	e = offsets_at(o, s, lo);
	if (e->offset == offset && !e->done) {
		e->done = true;
		marked = true;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return marked;
}

bool offsets_commit_point(offsets_t *o, int32_t partition, int64_t *next)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	struct offsets_entry *e;
	int64_t last = -1;
	bool advanced = false;

	if (s == NULL)
		return false;
	pthread_mutex_lock(&s->mu);
	while (s->assigned && s->count > 0) {
		e = offsets_at(o, s, 0);
		if (!e->done)
			break;
		last = e->offset;
		advanced = true;
		s->head = s->head + 1 == o->max_in_flight ? 0 : s->head + 1;
		s->count--;
	}
	pthread_mutex_unlock(&s->mu);
	if (advanced) {
		assert(last >= 0);
		*next = last + 1;
	}
	return advanced;
}

bool offsets_current(offsets_t *o, int32_t partition, uint32_t epoch)
{
	struct offsets_slot *s = offsets_slot(o, partition);

	/* epoch 0 names no assignment, so an unassigned slot (live 0) never
	 * matches */
	return s != NULL && epoch != 0 && atomic_load_explicit(&s->live, memory_order_acquire) == epoch;
}

size_t offsets_in_flight(offsets_t *o, int32_t partition)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	size_t n;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	n = s->assigned ? s->count : 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* revoke and lost: the module forgets the same way; only the caller's duties
 * differ (offsets.h). */
static wb_err_t offsets_forget(offsets_t *o, int32_t partition)
{
	struct offsets_slot *s = offsets_slot(o, partition);
	wb_err_t err = WB_OK;

	if (s == NULL)
		return WB_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->mu);
	if (!s->assigned) {
		err = WB_ERR_NOT_FOUND;
	} else {
		s->assigned = false;
		s->epoch = offsets_next_epoch(s->epoch);
		atomic_store_explicit(&s->live, 0, memory_order_release);
		s->count = 0;
		s->head = 0;
		s->last_tracked = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

wb_err_t offsets_revoke(offsets_t *o, int32_t partition)
{
	return offsets_forget(o, partition);
}

wb_err_t offsets_lost(offsets_t *o, int32_t partition)
{
	return offsets_forget(o, partition);
}
