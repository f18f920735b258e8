/*
 * job.c - lifetime of one inbound record (job.h), and the pool of job
 * memory: slots of JOB_SLOT bytes (a job with one decoded event and some
 * room for strings), at most JOB_POOL_MAX of them kept free (8 MiB); a
 * bigger job is malloc'ed as before. Under AddressSanitizer a free slot is
 * poisoned, so a job used after its end is still caught.
 */
#include "job.h"

#include <stdlib.h>
#include <string.h>

#include "event.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define JOB_SLOT ((sizeof(struct job) + sizeof(struct wa_event) + 256 + 63) & ~(size_t)63)
#define JOB_POOL_MAX 8192

/* A free slot: its first bytes link it (the job is over). */
struct slot {
	struct slot *next;
};

struct job_pool {
	_Atomic(struct slot *) given;  /* given back by any thread (a stack) */
	struct slot *mine;             /* taken over by the taking thread */
	size_t taken;                  /* taken since the last exchange (taking thread) */
	atomic_size_t nfree;           /* slots in both lists, plus up to `taken` */
};

struct job_pool *job_pool_new(void)
{
	struct job_pool *pool = calloc(1, sizeof(*pool));

	if (pool) {
		atomic_init(&pool->given, NULL);
		atomic_init(&pool->nfree, 0);
	}
	return pool;
}

static void free_list(struct slot *s)
{
	struct slot *next;

	for (; s; s = next) {
		UNPOISON(s, JOB_SLOT);
		next = s->next;
		free(s);
	}
}

void job_pool_destroy(struct job_pool *pool)
{
	if (!pool)
		return;
	free_list(pool->mine);
	free_list(atomic_load(&pool->given));
	free(pool);
}

/* A slot from the pool, else a new one. */
static void *pool_take(struct job_pool *pool)
{
	struct slot *s = pool->mine;

	if (!s) {
		/* all at once: no other thread pops, so no ABA problem; the
		 * count drops here, once per exchange, not per slot (a shared
		 * line the givers write too) */
		s = atomic_exchange_explicit(&pool->given, NULL, memory_order_acquire);
		atomic_fetch_sub_explicit(&pool->nfree, pool->taken, memory_order_relaxed);
		pool->taken = 0;
		if (!s)
			return malloc(JOB_SLOT);
	}
	UNPOISON(s, JOB_SLOT);
	pool->mine = s->next;
	pool->taken++;
	return s;
}

/* Back to the pool, unless it keeps JOB_POOL_MAX already. */
static void pool_give(struct job_pool *pool, void *mem)
{
	struct slot *s = mem, *head;

	if (atomic_fetch_add_explicit(&pool->nfree, 1, memory_order_relaxed) >= JOB_POOL_MAX) {
		atomic_fetch_sub_explicit(&pool->nfree, 1, memory_order_relaxed);
		free(mem);
		return;
	}
	/* before it is published: the taker may have it the moment after
	 * (the link stays readable) */
	POISON((char *)s + sizeof(*s), JOB_SLOT - sizeof(*s));
	head = atomic_load_explicit(&pool->given, memory_order_relaxed);
	do
		s->next = head;
	while (!atomic_compare_exchange_weak_explicit(&pool->given, &head, s, memory_order_release,
						      memory_order_relaxed));
}

struct job *job_new(struct job_pool *pool, rd_kafka_message_t *msg, uint32_t epoch, offsets_t *offsets,
		    struct job_counters *counters, size_t extra)
{
	bool pooled = pool && sizeof(struct job) + extra <= JOB_SLOT;
	struct job *j = pooled ? pool_take(pool) : malloc(sizeof(*j) + extra);

	if (!j)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->pool = pooled ? pool : NULL;
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
	if (j->pool)
		pool_give(j->pool, j);
	else
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
