/*
 * lanes.c - worker threads with bounded FIFO queues (lanes.h).
 * Each lane: a ring of job pointers under a mutex, a condition variable the
 * consumer signals on push, a pipeline (and a second one on the fallback
 * store when --store-fallback memory is on).
 *
 * The unacknowledged bound: a lane saves a context before the broker has
 * acknowledged the replies it produced, so a crash in between leaves a
 * context that has the event but replies that were never sent. The
 * redelivered event is recognised as a duplicate and re-emits the replies
 * that "recent" keeps, for the newest FLOW_RECENT_REPLIES events of the
 * phone only. So no phone (by record key) may have more than that many
 * records started but not acknowledged: before a lane starts one, it waits
 * until the key's counter is below the bound. Counters live in one table
 * of HOLD_BUCKETS indexed by the key's hash; keys sharing a bucket only
 * wait for each other a little more. Only a burst from one phone ever
 * waits (one producer round trip per FLOW_RECENT_REPLIES records).
 *
 * A record that must wait is parked, not waited for: the lane goes on
 * with the records of other phones and tries the parked ones again at
 * every turn (every 1 ms when it has nothing else), oldest first. Every
 * later record sharing a phone or a key bucket with a parked one parks
 * behind it (the `blocked` filter of the turn), so per-phone order holds.
 * Waiting in place made one bursting phone stop its whole lane for a
 * producer round trip: with 500 phones sending 200 events each, 100,000
 * events took 7.3 s (13,600 ev/s) instead of 0.5 s.
 */
#include "lanes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "phone.h"
#include "pipeline.h"

#define LANE_BATCH 64          /* jobs taken from the queue per lock */
#define LANE_STAGE 32          /* jobs the consumer hands over per lock */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define PROBE_KEY "wabot-worker-probe"
#define PROBE_EVERY_MS 1000    /* during an outage, with the memory fallback on */
#define HOLD_BUCKETS 65536     /* unacknowledged-record counters (power of 2) */
#define BLOCKED_BITS 65536     /* the per-turn filter of parked phones and keys (power of 2) */
#define JOB_BITS_EVENTS 15     /* events of a record the filter tells apart (more: it blocks all) */

struct lane {
	struct lanes *l;
	uint32_t id;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job **ring;
	size_t head, count;    /* under mu */
	atomic_size_t depth;   /* count + nstaged, readable without the lock */
	/* Pushed by the consumer, not yet in the ring (lanes_flush); consumer
	 * thread only. Handing jobs over in groups takes the lock and wakes
	 * the thread once per group instead of once per record. */
	struct job *staged[LANE_STAGE];
	size_t nstaged;
	pipeline_t *p;
	pipeline_t *fallback_p;
	/* Lane thread only: records waiting for their phone's replies to be
	 * acknowledged, oldest first (they still count in depth), and the
	 * filter of what they block in the current turn (a bit per hash:
	 * false positives only park a record one more turn). */
	struct job **parked;
	size_t nparked;
	uint64_t blocked[BLOCKED_BITS / 64];
	bool any_blocked;
	uint64_t rand;
	bool in_outage;        /* the store did not answer; logged once per outage */
	int64_t last_probe;    /* mono ms of the last probe during an outage */
	struct ctx_value probe;
	atomic_uint_fast64_t store_retries, poison, abandoned, hold_waits;
	_Atomic int64_t alive_ms;       /* monotonic ms the lane last made a move (lanes_stalled) */
	pthread_mutex_t st_mu;          /* guards st, copied after each batch */
	struct pipeline_stats st;       /* p's and fallback_p's counters, summed */
};

struct lanes {
	const struct wb_config *cfg;
	ctx_store_t *store;
	ctx_store_t *fallback;
	producer_t *producer;
	offsets_t *offsets;
	uint32_t n;
	size_t depth;
	atomic_bool stop;
	struct lane *lane;
	atomic_uint *unacked; /* [HOLD_BUCKETS]: records started, not acknowledged */
};

/* The emit callback's view of one record being processed. */
struct emit_ctx {
	struct lane *ln;
	struct job *job;
	uint32_t attempts;
};

/* The lane is moving (lanes_stalled): called at every batch and retry. */
static void alive(struct lane *ln)
{
	atomic_store_explicit(&ln->alive_ms, clock_mono_ms(), memory_order_relaxed);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Backoff before attempt `attempt` (1-based): 100 ms doubling to 2 s, with
 * the upper half jittered so lanes that failed together retry apart. */
static long backoff_ms(struct lane *ln, uint32_t attempt)
{
	long ms = BACKOFF_FIRST_MS;

	while (attempt-- > 1 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	return ms / 2 + (long)(next_rand(&ln->rand) % (uint64_t)(ms / 2 + 1));
}

static wb_err_t lane_emit(void *opaque, const struct pipeline_output *o)
{
	struct emit_ctx *ec = opaque;
	wb_err_t err = producer_send(ec->ln->l->producer, o, ec->job, ec->attempts);

	if (err == WB_ERR_TOO_BIG && o->out == PIPELINE_OUT_DLQ) {
		/* A dead letter bigger than the topic accepts: send it without
		 * the payload rather than lose the record's trace. */
		char v[512];
		struct pipeline_output small = *o;
		int n = snprintf(v, sizeof(v),
				 "{\"reason\":\"%s\",\"error\":\"dead letter too large for the topic; payload "
				 "omitted\",\"stage\":\"produce\",\"source\":{\"partition\":%d,\"offset\":%lld}}",
				 o->reason ? o->reason : "unknown", (int)ec->job->partition, (long long)ec->job->offset);

		small.value = v;
		small.len = (size_t)n;
		err = producer_send(ec->ln->l->producer, &small, ec->job, ec->attempts);
	}
	return err;
}

/* true when the store answers a read: the failure was this record's. */
static bool store_answers(struct lane *ln)
{
	return ctx_store_get(ln->l->store, PROBE_KEY, &ln->probe) == WB_OK;
}

/* The unacknowledged-record counter of job's key (top of the file). */
static atomic_uint *hold_counter(struct lane *ln, const struct job *job)
{
	return &ln->l->unacked[job->key_hash & (HOLD_BUCKETS - 1)];
}

/* The unacknowledged bound (top of the file): counts job unless its key
 * has FLOW_RECENT_REPLIES records unacknowledged already (false: nothing
 * counted, the record must wait). */
static bool hold_now(struct lane *ln, struct job *job)
{
	atomic_uint *c = hold_counter(ln, job);

	if (atomic_load_explicit(c, memory_order_acquire) >= FLOW_RECENT_REPLIES)
		return false;
	(void)job_hold(job, c);
	return true;
}

static struct pipeline_source job_source(struct lane *ln, const struct job *job)
{
	const rd_kafka_message_t *m = job->msg;

	return (struct pipeline_source){
		.topic = ln->l->cfg->inbound_topic,
		.partition = job->partition,
		.offset = job->offset,
		.timestamp_ms = job->timestamp_ms,
		.key = m->key,
		.key_len = m->key ? m->key_len : 0,
		.lane = ln->id,
		.nlanes = ln->l->n,
	};
}

/* Drops a job the lane will not run: its assignment ended (the next owner
 * has it; offsets_done refuses the stale epoch), or the worker stops. */
static void abandon(struct lane *ln, struct job *job)
{
	if (!atomic_load_explicit(&job->failed, memory_order_relaxed))
		atomic_fetch_add_explicit(&ln->abandoned, 1, memory_order_relaxed);
	job_unref(job);
}

/* One record on its own (counted by hold already): retries, outage
 * handling and the poison limit; then lets the job go. */
static void run(struct lane *ln, struct job *job)
{
	struct lanes *l = ln->l;
	rd_kafka_message_t *m = job->msg;
	struct pipeline_source src = job_source(ln, job);
	struct emit_ctx ec = {ln, job, 1};
	const char *payload = m->payload ? m->payload : "";
	uint32_t failures = 0;
	wb_err_t err;

	for (;;) {
		pipeline_t *p = ln->p;

		alive(ln);
		if (ln->in_outage) {
			int64_t now = clock_mono_ms();

			if (now - ln->last_probe >= PROBE_EVERY_MS) {
				ln->last_probe = now;
				if (store_answers(ln)) {
					ln->in_outage = false;
					log_at(LOG_INFO, "context store answers again", LOG_UINT("lane", ln->id));
				}
			}
			if (ln->in_outage && ln->fallback_p)
				p = ln->fallback_p;
		}
		if (job->decoded)
			err = pipeline_process_decoded(p, &src, payload, m->len, job->evs, job->nevs, (int64_t)time(NULL),
						       lane_emit, &ec);
		else
			err = pipeline_process(p, &src, payload, m->len, (int64_t)time(NULL), lane_emit, &ec);
		if (err == WB_OK) {
			if (ln->in_outage && p == ln->p) {
				ln->in_outage = false;
				log_at(LOG_INFO, "context store answers again", LOG_UINT("lane", ln->id));
			}
			break;
		}
		atomic_fetch_add_explicit(&ln->store_retries, 1, memory_order_relaxed);
		if (!offsets_current(l->offsets, job->partition, job->epoch)) {
			/* the assignment ended while we retried: not ours any more */
			atomic_fetch_add_explicit(&ln->abandoned, 1, memory_order_relaxed);
			break;
		}
		if (atomic_load_explicit(&l->stop, memory_order_relaxed)) {
			job_fail(job); /* shutting down past the deadline: never counts as done */
			break;
		}
		if (wb_err_is_retriable(err) && p == ln->p && !store_answers(ln)) {
			/* an outage: wait for the store (or use the fallback),
			 * without counting tries against the record */
			if (!ln->in_outage) {
				ln->in_outage = true;
				ln->last_probe = clock_mono_ms();
				log_at(LOG_WARN,
				       ln->fallback_p ? "context store unreachable: replying from the memory fallback"
						      : "context store unreachable: waiting for it, consumption pauses",
				       LOG_UINT("lane", ln->id), LOG_ERR("error", err));
			}
			if (!ln->fallback_p)
				clock_sleep_ms(backoff_ms(ln, failures < 5 ? ++failures : failures));
			continue;
		}
		if (++ec.attempts > (uint32_t)l->cfg->event_max_attempts) {
			char line[160];

			snprintf(line, sizeof(line), "gave up after %d attempts: %s", l->cfg->event_max_attempts,
				 wb_err_str(err));
			ec.attempts--;
			atomic_fetch_add_explicit(&ln->poison, 1, memory_order_relaxed);
			if (pipeline_dead_letter(ln->p, &src, payload, m->len, "retries_exhausted", "store", line,
						 lane_emit, &ec) != WB_OK)
				job_fail(job);
			break;
		}
		clock_sleep_ms(backoff_ms(ln, ec.attempts - 1));
	}
	job_unref(job);
}

static void add_stats(struct pipeline_stats *to, const struct pipeline_stats *s)
{
	to->records += s->records;
	to->events += s->events;
	to->replies += s->replies;
	to->dlq += s->dlq;
	to->duplicates += s->duplicates;
	to->key_mismatch += s->key_mismatch;
}

static void publish_stats(struct lane *ln)
{
	struct pipeline_stats a, b = {0};

	pipeline_stats(ln->p, &a);
	if (ln->fallback_p)
		pipeline_stats(ln->fallback_p, &b);
	add_stats(&a, &b);
	pthread_mutex_lock(&ln->st_mu);
	ln->st = a;
	pthread_mutex_unlock(&ln->st_mu);
}

/*
 * Runs jobs[0..n) (each counted by hold): as one pipeline batch (two store
 * calls for all of them) when the store answers, then one by one whatever
 * the batch handed back; one by one during an outage.
 */
static void run_batch(struct lane *ln, struct job **jobs, size_t n)
{
	struct pipeline_rec recs[LANE_BATCH];
	struct emit_ctx ec[LANE_BATCH];
	size_t i;

	if (n > 1 && !ln->in_outage) {
		for (i = 0; i < n; i++) {
			const rd_kafka_message_t *m = jobs[i]->msg;

			ec[i] = (struct emit_ctx){ln, jobs[i], 1};
			recs[i] = (struct pipeline_rec){
				.src = job_source(ln, jobs[i]),
				.payload = m->payload ? m->payload : "",
				.len = m->len,
				.evs = jobs[i]->decoded ? jobs[i]->evs : NULL,
				.nevs = jobs[i]->nevs,
				.opaque = &ec[i],
			};
		}
		pipeline_process_batch(ln->p, recs, n, (int64_t)time(NULL), lane_emit);
		for (i = 0; i < n; i++) {
			if (recs[i].fallback)
				run(ln, jobs[i]);
			else
				job_unref(jobs[i]);
		}
	} else {
		for (i = 0; i < n; i++)
			run(ln, jobs[i]);
	}
	atomic_fetch_sub_explicit(&ln->depth, n, memory_order_release);
}

/* Bits of the blocked filter for job: its record key's bucket and the
 * conversation keys of its events. */
static size_t blocked_bits(struct lane *ln, const struct job *job, uint32_t bits[1 + JOB_BITS_EVENTS])
{
	size_t n = 0, i;

	bits[n++] = (uint32_t)(hold_counter(ln, job) - ln->l->unacked) & (BLOCKED_BITS - 1);
	for (i = 0; i < job->nevs && n < 1 + JOB_BITS_EVENTS; i++)
		if (job->evs[i].key[0])
			bits[n++] = (uint32_t)event_key_hash(&job->evs[i]) & (BLOCKED_BITS - 1);
	return n;
}

/* true when job shares a phone or key bucket with a record parked before
 * it in this turn; with `block`, also marks job's own as blocked. A record
 * with more events than JOB_BITS_EVENTS blocks everything after it. */
static bool check_blocked(struct lane *ln, const struct job *job, bool block)
{
	uint32_t bits[1 + JOB_BITS_EVENTS];
	size_t n = blocked_bits(ln, job, bits), i;
	bool hit;

	/* events past JOB_BITS_EVENTS are not in bits: any parked record may
	 * share a phone with them */
	hit = job->nevs > JOB_BITS_EVENTS && ln->any_blocked;
	for (i = 0; i < n; i++)
		hit |= (ln->blocked[bits[i] / 64] >> (bits[i] % 64)) & 1u;
	if (block) {
		if (job->nevs > JOB_BITS_EVENTS)
			memset(ln->blocked, 0xFF, sizeof(ln->blocked));
		for (i = 0; i < n; i++)
			ln->blocked[bits[i] / 64] |= UINT64_C(1) << (bits[i] % 64);
		ln->any_blocked = true;
	}
	return hit;
}

enum admit { ADMIT_READY, ADMIT_PARKED, ADMIT_DROPPED };

/* Whether job runs in this turn (counted by the unacknowledged bound),
 * waits in the parked list, or is let go (its assignment ended, or the
 * worker stops and it cannot start). */
static enum admit admit(struct lane *ln, struct job *job, bool was_parked)
{
	struct lanes *l = ln->l;

	if (!offsets_current(l->offsets, job->partition, job->epoch)) {
		abandon(ln, job);
		atomic_fetch_sub_explicit(&ln->depth, 1, memory_order_release);
		return ADMIT_DROPPED;
	}
	if (!(ln->any_blocked && check_blocked(ln, job, false)) && hold_now(ln, job))
		return ADMIT_READY;
	if (atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		job_fail(job); /* stopping past the deadline: never counts as done */
		abandon(ln, job);
		atomic_fetch_sub_explicit(&ln->depth, 1, memory_order_release);
		return ADMIT_DROPPED;
	}
	if (!was_parked)
		atomic_fetch_add_explicit(&ln->hold_waits, 1, memory_order_relaxed);
	(void)check_blocked(ln, job, true);
	ln->parked[ln->nparked++] = job;
	return ADMIT_PARKED;
}

static void *lane_main(void *arg)
{
	struct lane *ln = arg;
	struct lanes *l = ln->l;
	struct job *batch[LANE_BATCH], *ready[LANE_BATCH];

	for (;;) {
		size_t n = 0, nready = 0, nold, i;

		pthread_mutex_lock(&ln->mu);
		while (ln->count == 0 && ln->nparked == 0 && !atomic_load_explicit(&l->stop, memory_order_relaxed))
			pthread_cond_wait(&ln->cv, &ln->mu);
		if (ln->count == 0 && ln->nparked == 0) {
			pthread_mutex_unlock(&ln->mu);
			break; /* stopping, and nothing left */
		}
		while (n < LANE_BATCH && ln->count > 0) {
			batch[n++] = ln->ring[ln->head];
			ln->head = (ln->head + 1) % l->depth;
			ln->count--;
		}
		pthread_mutex_unlock(&ln->mu);
		if (n == 0)
			clock_sleep_ms(1); /* only parked records: an acknowledgement takes a round trip */
		alive(ln);
		if (ln->any_blocked) {
			memset(ln->blocked, 0, sizeof(ln->blocked));
			ln->any_blocked = false;
		}
		/* the parked records first, oldest first, then the new ones; a
		 * turn runs at most LANE_BATCH (the rest stay parked) */
		nold = ln->nparked;
		ln->nparked = 0;
		for (i = 0; i < nold; i++) {
			struct job *job = ln->parked[i];

			if (nready == LANE_BATCH) {
				(void)check_blocked(ln, job, true);
				ln->parked[ln->nparked++] = job;
			} else if (admit(ln, job, true) == ADMIT_READY) {
				ready[nready++] = job;
			}
		}
		for (i = 0; i < n; i++) {
			if (nready == LANE_BATCH) {
				run_batch(ln, ready, nready);
				nready = 0;
			}
			if (admit(ln, batch[i], false) == ADMIT_READY)
				ready[nready++] = batch[i];
		}
		run_batch(ln, ready, nready);
		publish_stats(ln);
	}
	return NULL;
}

lanes_t *lanes_new(const struct lanes_opts *o, char *errstr, size_t errstr_size)
{
	lanes_t *l = calloc(1, sizeof(*l));
	struct pipeline_opts po = {0};
	uint32_t i;

	if (!l) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	l->cfg = o->cfg;
	l->store = o->store;
	l->fallback = o->fallback;
	l->producer = o->producer;
	l->offsets = o->offsets;
	l->n = (uint32_t)o->cfg->worker_threads;
	l->depth = o->cfg->queue_depth;
	if (!(l->unacked = calloc(HOLD_BUCKETS, sizeof(*l->unacked))))
		goto nomem;
	po.acs_api_version = o->cfg->acs_api_version;
	po.ttl_ms = o->cfg->context_ttl_s * 1000u;
	if (!(l->lane = calloc(l->n, sizeof(*l->lane))))
		goto nomem;
	for (i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		ln->l = l;
		ln->id = i;
		ln->rand = 0x9E3779B97F4A7C15ull ^ ((uint64_t)i << 32 | (uint64_t)time(NULL));
		pthread_mutex_init(&ln->mu, NULL);
		pthread_cond_init(&ln->cv, NULL);
		pthread_mutex_init(&ln->st_mu, NULL);
		ctx_value_init(&ln->probe);
		atomic_init(&ln->alive_ms, clock_mono_ms());
		if (!(ln->ring = calloc(l->depth, sizeof(*ln->ring))) ||
		    !(ln->parked = calloc(l->depth, sizeof(*ln->parked))) || !(ln->p = pipeline_new(o->flow, o->store, &po)))
			goto nomem;
		if (o->fallback && !(ln->fallback_p = pipeline_new(o->flow, o->fallback, &po)))
			goto nomem;
	}
	for (i = 0; i < l->n; i++) {
		if (pthread_create(&l->lane[i].thread, NULL, lane_main, &l->lane[i]) != 0) {
			snprintf(errstr, errstr_size, "cannot start worker thread %u", i);
			lanes_destroy(l);
			return NULL;
		}
		l->lane[i].started = true;
	}
	return l;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	lanes_destroy(l);
	return NULL;
}

void lanes_stop(lanes_t *l)
{
	uint32_t i;

	if (!l)
		return;
	if (l->lane)
		lanes_flush(l); /* the consumer has stopped: its thread is done */
	atomic_store(&l->stop, true);
	for (i = 0; l->lane && i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		pthread_mutex_lock(&ln->mu);
		pthread_cond_signal(&ln->cv);
		pthread_mutex_unlock(&ln->mu);
		if (ln->started)
			pthread_join(ln->thread, NULL);
		ln->started = false;
	}
}

void lanes_destroy(lanes_t *l)
{
	uint32_t i;

	if (!l)
		return;
	lanes_stop(l);
	for (i = 0; l->lane && i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		pipeline_destroy(ln->p);
		pipeline_destroy(ln->fallback_p);
		ctx_value_fini(&ln->probe);
		free(ln->ring);
		free(ln->parked);
		pthread_mutex_destroy(&ln->mu);
		pthread_cond_destroy(&ln->cv);
		pthread_mutex_destroy(&ln->st_mu);
	}
	free(l->lane);
	free(l->unacked);
	free(l);
}

uint32_t lanes_count(const lanes_t *l)
{
	return l->n;
}

bool lanes_room(lanes_t *l, uint32_t lane)
{
	return atomic_load_explicit(&l->lane[lane].depth, memory_order_acquire) < l->depth;
}

bool lanes_low(lanes_t *l, uint32_t lane)
{
	return atomic_load_explicit(&l->lane[lane].depth, memory_order_acquire) <= l->depth / 2;
}

uint32_t lanes_stalled(lanes_t *l, int64_t now_ms, int64_t limit_ms)
{
	uint32_t i, n = 0;

	for (i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		/* an idle lane waits on its condition variable: not stalled */
		if (atomic_load_explicit(&ln->depth, memory_order_relaxed) > 0 &&
		    now_ms - atomic_load_explicit(&ln->alive_ms, memory_order_relaxed) > limit_ms)
			n++;
	}
	return n;
}

size_t lanes_depth(lanes_t *l, uint32_t lane)
{
	return atomic_load_explicit(&l->lane[lane].depth, memory_order_relaxed);
}

/* Moves ln's staged jobs into its ring, waking the thread if it idles. */
static void flush_lane(lanes_t *l, struct lane *ln)
{
	size_t i, n = ln->nstaged;
	bool wake;

	if (n == 0)
		return;
	pthread_mutex_lock(&ln->mu);
	wake = ln->count == 0;
	for (i = 0; i < n; i++)
		ln->ring[(ln->head + ln->count + i) % l->depth] = ln->staged[i];
	ln->count += n;
	pthread_mutex_unlock(&ln->mu);
	ln->nstaged = 0;
	if (wake)
		pthread_cond_signal(&ln->cv);
}

void lanes_push(lanes_t *l, struct job *job)
{
	uint32_t i;

	for (i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		if (!job_lane_has(job, i))
			continue;
		job_ref(job);
		atomic_fetch_add_explicit(&ln->depth, 1, memory_order_relaxed);
		ln->staged[ln->nstaged++] = job;
		if (ln->nstaged == LANE_STAGE)
			flush_lane(l, ln);
	}
}

void lanes_flush(lanes_t *l)
{
	uint32_t i;

	for (i = 0; i < l->n; i++)
		flush_lane(l, &l->lane[i]);
}

void lanes_get_stats(lanes_t *l, struct lanes_stats *out)
{
	uint32_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		out->store_retries += atomic_load_explicit(&ln->store_retries, memory_order_relaxed);
		out->poison += atomic_load_explicit(&ln->poison, memory_order_relaxed);
		out->abandoned += atomic_load_explicit(&ln->abandoned, memory_order_relaxed);
		out->hold_waits += atomic_load_explicit(&ln->hold_waits, memory_order_relaxed);
		out->queued += atomic_load_explicit(&ln->depth, memory_order_relaxed);
		pthread_mutex_lock(&ln->st_mu);
		out->records += ln->st.records;
		out->events += ln->st.events;
		out->replies += ln->st.replies;
		out->dlq += ln->st.dlq;
		out->duplicates += ln->st.duplicates;
		out->key_mismatch += ln->st.key_mismatch;
		pthread_mutex_unlock(&ln->st_mu);
	}
}
