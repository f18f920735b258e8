/*
 * consumer.c - poll loop, routing, flow control, commits, rebalances and
 * shutdown (consumer.h). Everything here runs on the consumer thread
 * except consumer_stop and consumer_get_stats.
 */
#include "consumer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "job.h"
#include "json.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "offsets.h"
#include "phone.h"
#include "pipeline.h"
#include "producer.h"

#define SERVICE_EVERY_MS 5     /* backlogs, resumes and offset stores */
#define SERVICE_EVERY_MSGS 256
#define STALL_LOG_MS 10000     /* records in flight and none done this long: log why */
#define ROOM_WAIT_MS 500       /* full queues: take no records this long before pausing */

struct cpart {
	bool assigned;
	bool paused;
	int64_t stored;            /* last offset stored for commit; -1: none */
	int64_t committed;         /* last offset the broker confirmed; -1: none */
	struct job *bl_head;       /* fetched, not yet queued (untracked) */
	struct job *bl_tail;
	/* Copies of the fields above for other threads (consumer_partitions),
	 * written by the consumer thread only (publish()). */
	atomic_bool pub_assigned, pub_paused;
	_Atomic int64_t pub_stored;
};

struct consumer {
	const struct wb_config *cfg;
	rd_kafka_t *rk;
	producer_t *prod;
	lanes_t *lanes;
	offsets_t *offs;
	event_decoder_t *dec;
	uint32_t nlanes;
	struct cpart *parts;
	int32_t hi;                /* 1 + highest partition ever assigned */
	size_t backlogged;         /* partitions with a backlog */
	int64_t room_wait_ms;      /* monotonic ms since backlogs wait unpaused (wait_for_room); 0: none */
	atomic_bool stop;
	bool shutting_down;
	bool finished;             /* consumer_finish done */
	bool unclean;              /* a deadline ran out or Kafka failed */
	int64_t shutdown_deadline; /* monotonic ms */
	int64_t drain_deadline;    /* monotonic ms: in-flight work is given up */
	struct job_counters jc;
	struct job_pool *pool;     /* memory of the jobs (job.c) */
	uint64_t watch_done;       /* jc.done at watch_ms (watch()) */
	int64_t watch_ms;
	atomic_uint_fast64_t consumed, rebalances, lost, redone, pauses, room_waits, commits;
	atomic_uint assigned, paused;
	/* For the health checks and /metrics (written here, read anywhere). */
	_Atomic int64_t poll_at_ms;         /* monotonic ms of the last poll loop turn */
	atomic_bool steady;                 /* librdkafka's group join state is "steady" */
	_Atomic int64_t unsteady_since_ms;  /* monotonic ms it stopped being steady; 0: steady */
	atomic_bool stats_seen;             /* a statistics report arrived */
	/* events decoded, by provider and kind (consumer thread increments) */
	atomic_uint_fast64_t by_kind[CONSUMER_PROVIDERS][CONSUMER_KINDS];
	struct json_doc stats_doc;          /* statistics parsing (consumer thread) */
};

_Static_assert(CONSUMER_PROVIDERS == WA_PROVIDER_META + 1, "providers");
_Static_assert(CONSUMER_KINDS == WA_KIND_UNSUPPORTED + 1, "kinds");

#define INC(c, field) atomic_fetch_add_explicit(&(c)->field, 1, memory_order_relaxed)
/* A counter only the consumer thread writes: a plain load and store, no
 * locked read-modify-write per record (readers see whole values). */
#define BUMP(x) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + 1, memory_order_relaxed)

static bool our_partition(consumer_t *c, const rd_kafka_topic_partition_t *tp);

/* Publishes partition p's state for other threads (consumer_partitions). */
static void publish(consumer_t *c, int32_t p)
{
	struct cpart *cp = &c->parts[p];

	atomic_store_explicit(&cp->pub_assigned, cp->assigned, memory_order_relaxed);
	atomic_store_explicit(&cp->pub_paused, cp->paused, memory_order_relaxed);
	atomic_store_explicit(&cp->pub_stored, cp->stored, memory_order_relaxed);
}

/* --- flow control ------------------------------------------------------ */

/*
 * Starts fetching a resumed partition now. librdkafka 2.0.2 does not wake
 * its fetcher on a resume: with every partition of a broker paused, that
 * broker's thread sleeps up to a second before it notices (seen in
 * bench_kafka with librdkafka's fetch debug: resumes acted on at whole
 * seconds; a burst that filled the queues lost ~0.9 s per round of
 * pauses, 100,000 events took 2.2 s on one worker thread instead of 0.5).
 * A seek to the partition's own position is an operation that thread
 * serves at once. Nothing is skipped or read twice: every record returned
 * before the pause has been dispatched (a partition resumes only with its
 * backlog empty), so the position is the next record to fetch; a seek
 * moves neither the stored nor the committed offset.
 */
static void kick_fetch(consumer_t *c, rd_kafka_topic_partition_list_t *l)
{
	rd_kafka_error_t *e;

	if (rd_kafka_position(c->rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR || l->elems[0].offset < 0)
		return; /* nothing consumed yet: the fetch starts from the committed offset */
	if ((e = rd_kafka_seek_partitions(c->rk, l, 0)))
		rd_kafka_error_destroy(e);
}

static void set_paused(consumer_t *c, int32_t partition, bool pause)
{
	struct cpart *cp = &c->parts[partition];
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t err;

	if (cp->paused == pause)
		return;
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, c->cfg->inbound_topic, partition);
	err = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
	if (!err && !pause)
		kick_fetch(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err) {
		log_at(LOG_ERROR, pause ? "cannot pause partition" : "cannot resume partition",
		       LOG_INT("partition", partition), LOG_STR("error", rd_kafka_err2str(err)));
		return;
	}
	cp->paused = pause;
	if (pause) {
		INC(c, pauses);
		atomic_fetch_add_explicit(&c->paused, 1, memory_order_relaxed);
	} else {
		atomic_fetch_sub_explicit(&c->paused, 1, memory_order_relaxed);
	}
}

/* Routes j to the lanes of its phones (see pipeline_home_lane), from the
 * events handle() decoded into it. */
static void route(consumer_t *c, struct job *j)
{
	const rd_kafka_message_t *m = j->msg;
	size_t klen = m->key ? m->key_len : 0, i;

	/* the record key's hash, for the lanes: the decoder's when the first
	 * keyed event has the record's key (the usual case) */
	for (i = 0; i < j->nevs && !j->evs[i].key[0]; i++)
		;
	j->key_hash = i < j->nevs && event_key_len(&j->evs[i]) == klen && memcmp(j->evs[i].key, m->key, klen) == 0
			      ? event_key_hash(&j->evs[i])
			      : phone_hash(m->key ? m->key : "", klen);
	if (c->nlanes == 1) {
		job_lane_set(j, 0);
		return;
	}
	j->home = pipeline_home_lane(j->evs, j->nevs, m->key, m->key ? m->key_len : 0, c->nlanes);
	job_lane_set(j, j->home);
	for (i = 0; i < j->nevs; i++)
		job_lane_set(j, pipeline_event_lane(&j->evs[i], j->home, c->nlanes));
	/* the home lane got a share even when all events went elsewhere: it
	 * owns whole-record dead letters and simply finds nothing else to do */
}

/* Queues j when every lane it needs has room and its partition may take
 * one more record in flight. false: j stays with the caller. */
static bool try_dispatch(consumer_t *c, struct job *j)
{
	uint32_t i;
	wb_err_t err;

	for (i = 0; i < c->nlanes; i++)
		if (job_lane_has(j, i) && !lanes_room(c->lanes, i))
			return false;
	err = offsets_track(c->offs, j->partition, j->offset, &j->epoch);
	if (err == WB_ERR_TOO_BIG)
		return false;
	if (err != WB_OK) {
		/* an offset at or below one already tracked: a repeated fetch of
		 * a record that is done or running */
		log_at(LOG_WARN, "record fetched twice; the repeat is ignored", LOG_INT("partition", j->partition),
		       LOG_INT("offset", j->offset), LOG_ERR("error", err));
		job_discard(j);
		return true;
	}
	lanes_push(c->lanes, j);
	job_unref(j); /* the lanes hold it now */
	return true;
}

/* true when every lane j needs is at most half full and its partition at
 * most half its in-flight limit: a paused partition resumes only then
 * (hysteresis; see lanes_low). */
static bool low_water(consumer_t *c, const struct job *j)
{
	uint32_t i;

	for (i = 0; i < c->nlanes; i++)
		if (job_lane_has(j, i) && !lanes_low(c->lanes, i))
			return false;
	return offsets_in_flight(c->offs, j->partition) <= c->cfg->max_in_flight / 2;
}

static void backlog_add(consumer_t *c, struct cpart *cp, int32_t partition, struct job *j)
{
	j->next = NULL;
	if (cp->bl_tail)
		cp->bl_tail->next = j;
	else {
		cp->bl_head = j;
		c->backlogged++;
	}
	cp->bl_tail = j;
	if (cp->paused)
		return;
	if (c->shutting_down) {
		set_paused(c, partition, true);
	} else if (!c->room_wait_ms) {
		c->room_wait_ms = clock_mono_ms();
		INC(c, room_waits);
	}
}

static void backlog_drop(consumer_t *c, struct cpart *cp)
{
	struct job *j = cp->bl_head, *next;

	if (j)
		c->backlogged--;
	for (; j; j = next) {
		next = j->next;
		job_discard(j);
	}
	cp->bl_head = cp->bl_tail = NULL;
}

/*
 * Commits, all of offsets stored by service() (the done prefix):
 *  - librdkafka's auto-commit (auto.commit.interval.ms=500, kafka.c) sends
 *    them while the group is steady. The worker used to send its own async
 *    commits every 500 ms, but librdkafka 2.0.2 sends a manual commit even
 *    while the member is rejoining; the broker answers it after the
 *    generation moved (ILLEGAL_GENERATION) and librdkafka then takes the
 *    whole assignment as lost (librdkafka issue #4059, PR #4908), so
 *    the next owner redid every record done since the last commit (found by
 *    itest_shutdown). The auto-commit waits rebalances out.
 *  - each rebalance callback, where the generation is current, sends what
 *    is stored and not yet confirmed (commit_unconfirmed), so a long
 *    rebalance (a member that died while joining keeps the group
 *    rebalancing for its session timeout) does not hold it back;
 *  - a revocation commits its partitions synchronously (drain_and_commit).
 * A member killed with SIGKILL has committed its progress up to about
 * 500 ms before, a short replay for its successor: contexts remember the
 * last 8 event ids, so the replay re-emits replies instead of advancing
 * conversations twice (itest_group kills one mid-stream).
 */
static void commit_unconfirmed(consumer_t *c)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_resp_err_t err;
	int32_t p;

	for (p = 0; p < c->hi; p++) {
		const struct cpart *cp = &c->parts[p];

		if (!cp->assigned || cp->stored < 0 || cp->committed >= cp->stored)
			continue;
		if (!l)
			l = rd_kafka_topic_partition_list_new(8);
		rd_kafka_topic_partition_list_add(l, c->cfg->inbound_topic, p)->offset = cp->stored;
	}
	if (!l)
		return;
	if ((err = rd_kafka_commit(c->rk, l, 1)))
		log_at(LOG_WARN, "cannot commit offsets", LOG_STR("error", rd_kafka_err2str(err)));
	rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Result of every commit (librdkafka's automatic ones and ours), served on
 * the consumer thread by rd_kafka_consumer_poll: confirmed offsets are
 * remembered (commit_unconfirmed, settle()). A refused one needs nothing:
 * the auto-commit sends the stored offset again.
 */
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	consumer_t *c = opaque;
	rd_kafka_resp_err_t why = err;
	int i, refused = 0, confirmed = 0;

	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets)
		return;
	for (i = 0; i < offsets->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
		struct cpart *cp;

		if (!our_partition(c, tp))
			continue;
		cp = &c->parts[tp->partition];
		if (!err && !tp->err) {
			if (cp->assigned && tp->offset > cp->committed)
				cp->committed = tp->offset;
			confirmed++;
			continue;
		}
		if (!why)
			why = tp->err;
		refused++;
	}
	if (confirmed)
		INC(c, commits);
	if (refused)
		log_at(LOG_INFO, "offset commit refused; the next one sends it again", LOG_INT("partitions", refused),
		       LOG_STR("error", rd_kafka_err2str(why)));
}

/*
 * Says, every STALL_LOG_MS while records are in flight and none finishes,
 * where they wait: in the lanes' queues, behind a phone's unacknowledged
 * replies (hold_waits), in the producer's queue (librdkafka retries a
 * reply silently for message.timeout.ms), or behind a store that does not
 * answer (store_retries). A CI run once saw a worker sit silent for 60 s
 * with 17 records unfinished; this line tells the next one apart.
 */
static void watch(consumer_t *c, int64_t now)
{
	uint64_t done = atomic_load_explicit(&c->jc.done, memory_order_relaxed);
	size_t in_flight = 0;
	struct lanes_stats ls;
	int32_t p;

	if (done != c->watch_done || !c->watch_ms) {
		c->watch_done = done;
		c->watch_ms = now;
		return;
	}
	if (now - c->watch_ms < STALL_LOG_MS)
		return;
	c->watch_ms = now;
	for (p = 0; p < c->hi; p++)
		if (c->parts[p].assigned)
			in_flight += offsets_in_flight(c->offs, p);
	if (!in_flight)
		return;
	lanes_get_stats(c->lanes, &ls);
	log_at(LOG_WARN, "no record finished for 10 s", LOG_UINT("in_flight", in_flight), LOG_UINT("queued", ls.queued),
	       LOG_UINT("hold_waits", ls.hold_waits), LOG_INT("producer_queue", producer_outq_len(c->prod)),
	       LOG_UINT("store_retries", ls.store_retries), LOG_UINT("paused", atomic_load(&c->paused)),
	       LOG_UINT("lanes_stalled", lanes_stalled(c->lanes, now, STALL_LOG_MS)));
}

/* Moves backlogs on, resumes drained partitions, stores commit points. */
static void service(consumer_t *c)
{
	rd_kafka_topic_partition_list_t *store = NULL;
	int32_t p;

	lanes_flush(c->lanes);
	for (p = 0; p < c->hi; p++) {
		struct cpart *cp = &c->parts[p];
		int64_t next;

		if (!cp->assigned)
			continue;
		/* a paused partition waits until there is room for a burst */
		while (cp->bl_head && low_water(c, cp->bl_head)) {
			struct job *j = cp->bl_head, *after = j->next;

			if (!try_dispatch(c, j))
				break;
			cp->bl_head = after;
			if (!after) {
				cp->bl_tail = NULL;
				c->backlogged--;
			}
		}
		if (!cp->bl_head && cp->paused && !c->shutting_down)
			set_paused(c, p, false);
		if (offsets_commit_point(c->offs, p, &next)) {
			if (!store)
				store = rd_kafka_topic_partition_list_new(8);
			rd_kafka_topic_partition_list_add(store, c->cfg->inbound_topic, p)->offset = next;
			cp->stored = next;
		}
		publish(c, p);
	}
	if (store) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, store);

		if (err)
			log_at(LOG_WARN, "cannot store offsets", LOG_STR("error", rd_kafka_err2str(err)));
		rd_kafka_topic_partition_list_destroy(store);
	}
	watch(c, clock_mono_ms());
}

/* --- rebalances ------------------------------------------------------- */

static bool our_partition(consumer_t *c, const rd_kafka_topic_partition_t *tp)
{
	return strcmp(tp->topic, c->cfg->inbound_topic) == 0 && tp->partition >= 0 &&
	       tp->partition < CONSUMER_MAX_PARTITIONS;
}

static void on_assign(consumer_t *c, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_error_t *e;
	int i;

	for (i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		struct cpart *cp;

		if (!our_partition(c, &parts->elems[i])) {
			log_at(LOG_ERROR, "assigned a partition this worker cannot serve", LOG_STR("topic", parts->elems[i].topic),
			       LOG_INT("partition", p));
			continue;
		}
		cp = &c->parts[p];
		if (offsets_assign(c->offs, p, NULL) != WB_OK) {
			log_at(LOG_ERROR, "cannot track partition", LOG_INT("partition", p));
			continue;
		}
		cp->assigned = true;
		cp->paused = false;
		cp->stored = -1;
		cp->committed = -1;
		publish(c, p);
		if (p + 1 > c->hi)
			c->hi = p + 1;
		atomic_fetch_add_explicit(&c->assigned, 1, memory_order_relaxed);
	}
	if ((e = rd_kafka_incremental_assign(c->rk, parts))) {
		log_at(LOG_ERROR, "incremental assign failed", LOG_STR("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
	/* librdkafka keeps a partition's pause flag across unassign and
	 * assign: one paused for flow control, revoked, and assigned back
	 * would never be fetched again (found by itest_group) */
	rd_kafka_resume_partitions(c->rk, parts);
	if (c->shutting_down) /* nothing new is fetched while settling */
		rd_kafka_pause_partitions(c->rk, parts);
	log_at(LOG_INFO, "partitions assigned", LOG_INT("count", parts->cnt),
	       LOG_UINT("assigned", atomic_load(&c->assigned)));
}

/* Waits (bounded) until the revoked partitions have nothing in flight, then
 * commits their done prefix synchronously. */
static void drain_and_commit(consumer_t *c, rd_kafka_topic_partition_list_t *parts)
{
	int64_t deadline = clock_mono_ms() + (int64_t)c->cfg->drain_timeout_s * 1000;
	rd_kafka_topic_partition_list_t *commit;
	int i;

	if (c->shutting_down && c->drain_deadline < deadline)
		deadline = c->drain_deadline;
	lanes_flush(c->lanes);
	for (;;) {
		bool busy = false;

		for (i = 0; i < parts->cnt; i++) {
			int32_t p = parts->elems[i].partition;
			int64_t next;

			if (!our_partition(c, &parts->elems[i]) || !c->parts[p].assigned)
				continue;
			if (offsets_commit_point(c->offs, p, &next))
				c->parts[p].stored = next;
			if (offsets_in_flight(c->offs, p) > 0)
				busy = true;
		}
		if (!busy)
			break;
		if (clock_mono_ms() >= deadline) {
			log_at(LOG_WARN, "drain deadline passed: records still running are given up",
			       LOG_INT("seconds", c->cfg->drain_timeout_s));
			if (c->shutting_down)
				c->unclean = true; /* the exit code speaks of the shutdown */
			break;
		}
		clock_sleep_ms(1);
	}
	commit = rd_kafka_topic_partition_list_new(parts->cnt);
	for (i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;

		if (our_partition(c, &parts->elems[i]) && c->parts[p].assigned && c->parts[p].stored >= 0)
			rd_kafka_topic_partition_list_add(commit, c->cfg->inbound_topic, p)->offset =
				c->parts[p].stored;
	}
	if (commit->cnt > 0) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, commit);

		if (!err)
			err = rd_kafka_commit(c->rk, commit, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
			log_at(LOG_WARN, "commit at revocation failed", LOG_STR("error", rd_kafka_err2str(err)));
	}
	rd_kafka_topic_partition_list_destroy(commit);
}

static void on_revoke(consumer_t *c, rd_kafka_topic_partition_list_t *parts)
{
	bool lost = rd_kafka_assignment_lost(c->rk);
	rd_kafka_error_t *e;
	int i;

	for (i = 0; i < parts->cnt; i++)
		if (our_partition(c, &parts->elems[i]))
			backlog_drop(c, &c->parts[parts->elems[i].partition]);
	rd_kafka_resume_partitions(c->rk, parts); /* see on_assign */
	if (!lost)
		drain_and_commit(c, parts);
	for (i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		struct cpart *cp;
		size_t left;

		if (!our_partition(c, &parts->elems[i]) || !c->parts[p].assigned)
			continue;
		cp = &c->parts[p];
		left = offsets_in_flight(c->offs, p);
		if (left)
			atomic_fetch_add_explicit(&c->redone, left, memory_order_relaxed);
		if (lost) {
			offsets_lost(c->offs, p);
			INC(c, lost);
		} else {
			offsets_revoke(c->offs, p);
		}
		if (cp->paused)
			atomic_fetch_sub_explicit(&c->paused, 1, memory_order_relaxed);
		cp->assigned = false;
		cp->paused = false;
		publish(c, p);
		atomic_fetch_sub_explicit(&c->assigned, 1, memory_order_relaxed);
	}
	if ((e = rd_kafka_incremental_unassign(c->rk, parts))) {
		log_at(LOG_ERROR, "incremental unassign failed", LOG_STR("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
	log_at(lost ? LOG_WARN : LOG_INFO, lost ? "partitions lost" : "partitions revoked", LOG_INT("count", parts->cnt),
	       LOG_UINT("assigned", atomic_load(&c->assigned)));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	consumer_t *c = opaque;
	bool lost = rd_kafka_assignment_lost(rk); /* unassign clears it */

	INC(c, rebalances);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		on_assign(c, parts);
	else
		on_revoke(c, parts);
	if (!lost)
		commit_unconfirmed(c); /* the generation is current here */
}

/*
 * librdkafka's statistics (statistics.interval.ms, consumer thread): only
 * the group's join state is read, for /healthz ("not stuck in a
 * rebalance"); lag comes from the brokers themselves (telemetry.c).
 */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	static const struct json_limits lim = {.max_bytes = 16u << 20, .max_depth = 16, .max_tokens = 1u << 20};
	consumer_t *c = opaque;
	uint32_t cgrp, js;
	bool steady;

	(void)rk;
	if (json_parse(&c->stats_doc, json, len, &lim) != JSON_OK ||
	    !(cgrp = json_get_type(&c->stats_doc, 0, "cgrp", JSON_OBJECT)) ||
	    !(js = json_get_type(&c->stats_doc, cgrp, "join_state", JSON_STRING)))
		return 0;
	steady = json_str_eq(&c->stats_doc, js, "steady", 6);
	if (!steady && atomic_load_explicit(&c->steady, memory_order_relaxed))
		atomic_store_explicit(&c->unsteady_since_ms, clock_mono_ms(), memory_order_relaxed);
	else if (!steady && !atomic_load_explicit(&c->unsteady_since_ms, memory_order_relaxed))
		atomic_store_explicit(&c->unsteady_since_ms, clock_mono_ms(), memory_order_relaxed);
	if (steady)
		atomic_store_explicit(&c->unsteady_since_ms, 0, memory_order_relaxed);
	atomic_store_explicit(&c->steady, steady, memory_order_relaxed);
	atomic_store_explicit(&c->stats_seen, true, memory_order_relaxed);
	return 0; /* librdkafka frees json */
}

/* --- the loop --------------------------------------------------------- */

static void handle(consumer_t *c, rd_kafka_message_t *m)
{
	const struct wa_event *evs = NULL;
	const char *payload;
	size_t n = 0, extra = 0;
	struct cpart *cp;
	struct job *j;

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			char why[256];

			log_at(LOG_WARN, "consumer error", LOG_STR("error", rd_kafka_message_errstr(m)));
			if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
				rd_kafka_fatal_error(c->rk, why, sizeof(why));
				log_at(LOG_ERROR, "fatal Kafka error: stopping", LOG_STR("error", why));
				c->unclean = true;
				consumer_stop(c);
			}
		}
		rd_kafka_message_destroy(m);
		return;
	}
	if (m->partition < 0 || m->partition >= CONSUMER_MAX_PARTITIONS || !c->parts[m->partition].assigned) {
		rd_kafka_message_destroy(m);
		return;
	}
	cp = &c->parts[m->partition];
	BUMP(c->consumed);
	/* Decoded once, here: routing needs the payload's phones, and the lanes
	 * apply the copy in batches (a record that does not decode is left to
	 * the home lane's pipeline, which dead-letters it). */
	payload = m->payload ? m->payload : "";
	if (event_decode(c->dec, payload, m->len, &evs, &n, NULL, 0) == EVENT_OK) {
		size_t i;

		extra = event_copy_size(evs, n, payload, m->len);
		for (i = 0; i < n; i++)
			if ((unsigned)evs[i].provider < CONSUMER_PROVIDERS && (unsigned)evs[i].kind < CONSUMER_KINDS)
				BUMP(c->by_kind[evs[i].provider][evs[i].kind]);
	} else {
		evs = NULL;
	}
	if (!(j = job_new(c->pool, m, 0, c->offs, &c->jc, extra))) {
		/* Skipping the record would let its offset be committed past:
		 * stop instead, and let a restart fetch it again. */
		log_at(LOG_ERROR, "out of memory for a record: stopping", LOG_INT("partition", m->partition),
		       LOG_INT("offset", m->offset));
		rd_kafka_message_destroy(m);
		c->unclean = true;
		consumer_stop(c);
		return;
	}
	if (evs) {
		j->evs = event_copy(evs, n, payload, m->len, job_extra(j));
		j->nevs = n;
		j->decoded = true;
	}
	route(c, j);
	if (cp->bl_head || !try_dispatch(c, j))
		backlog_add(c, cp, m->partition, j);
}

/* true when no assigned partition has work fetched or running, and the
 * broker confirmed every stored offset. */
static bool settled(consumer_t *c)
{
	int32_t p;

	for (p = 0; p < c->hi; p++) {
		const struct cpart *cp = &c->parts[p];

		if (!cp->assigned)
			continue;
		if (cp->bl_head || offsets_in_flight(c->offs, p) > 0 || (cp->stored >= 0 && cp->committed < cp->stored))
			return false;
	}
	return true;
}

/*
 * Shutdown, first half, while still a member of the group: stop fetching,
 * let the lanes finish what they hold, and wait (until `until`) for the
 * broker to confirm the commit of every partition's done prefix. While the
 * group rebalances (a member joining) nothing can be committed until
 * librdkafka has rejoined, which needs this loop's polls; the rebalance
 * callbacks then commit (commit_unconfirmed). Leaving at once lost those
 * commits and the next member redid the records (seen in itest_shutdown
 * when a member joined just before the SIGTERM). Records fetched but never
 * started are let go: they are in no commit.
 */
static void settle(consumer_t *c, int64_t until)
{
	rd_kafka_topic_partition_list_t *a = NULL;
	int32_t p;

	if (rd_kafka_assignment(c->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a->cnt > 0)
		rd_kafka_pause_partitions(c->rk, a);
	if (a)
		rd_kafka_topic_partition_list_destroy(a);
	for (p = 0; p < c->hi; p++)
		backlog_drop(c, &c->parts[p]);
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 20);

		if (m)
			handle(c, m);
		service(c);
		if (settled(c))
			return;
		if (clock_mono_ms() >= until) {
			log_at(LOG_WARN, "shutting down with records unfinished or commits unconfirmed; the next member redoes them");
			return;
		}
	}
}

/*
 * Queues full, records waiting in backlogs: the consumer takes no more
 * records for a while (up to ROOM_WAIT_MS) instead of pausing partitions
 * at once. librdkafka drops what it prefetched for a paused partition and
 * fetches it again on resume, so a burst that filled the queues paid for
 * its records twice; meanwhile its prefetch limit
 * (queued.max.messages.kbytes) holds its fetchers back. This is what lets
 * the queues be short (WORKER_QUEUE_DEPTH 2048; it was 16384 to make
 * pauses rare): fewer records in memory at once (bench_kafka: peak RSS
 * 130-143 -> 103-118 MB, pauses per burst 7-16 -> 0; its CPU per event
 * did not change beyond the VM's noise). After ROOM_WAIT_MS (a
 * stuck store, a poison record) the backlogged partitions are paused as
 * before and polling goes on, for rebalances and the other partitions.
 * librdkafka's heartbeats do not depend on polling; rebalance callbacks
 * wait at most ROOM_WAIT_MS. true: it waited (do not poll yet).
 */
static bool wait_for_room(consumer_t *c)
{
	int32_t p;

	if (c->backlogged && clock_mono_ms() - c->room_wait_ms >= ROOM_WAIT_MS) {
		for (p = 0; p < c->hi; p++)
			if (c->parts[p].assigned && c->parts[p].bl_head)
				set_paused(c, p, true);
		c->room_wait_ms = 0;
		return false;
	}
	if (c->backlogged) {
		lanes_flush(c->lanes);
		clock_sleep_ms(1);
		service(c); /* moves the backlogs on once the queues are half empty */
		atomic_store_explicit(&c->poll_at_ms, clock_mono_ms(), memory_order_relaxed);
	}
	if (c->backlogged)
		return true;
	c->room_wait_ms = 0;
	return false;
}

int consumer_run(consumer_t *c)
{
	int64_t last = clock_mono_ms();
	unsigned since = 0;
	rd_kafka_resp_err_t err;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		rd_kafka_message_t *m;
		int64_t now;

		if (c->room_wait_ms && wait_for_room(c))
			continue;
		m = rd_kafka_consumer_poll(c->rk, 0);

		if (!m) {
			/* nothing fetched is waiting: hand the staged records
			 * to the lanes before blocking */
			lanes_flush(c->lanes);
			m = rd_kafka_consumer_poll(c->rk, c->backlogged ? 2 : 50);
		}

		if (m) {
			handle(c, m);
			since++;
		}
		now = clock_mono_ms();
		atomic_store_explicit(&c->poll_at_ms, now, memory_order_relaxed);
		if (!m || since >= SERVICE_EVERY_MSGS || now - last >= SERVICE_EVERY_MS) {
			service(c);
			last = now;
			since = 0;
		}
	}

	/* Shutdown: finish and commit as a member (settle, up to the drain
	 * timeout or two thirds of the deadline, whichever comes first), then
	 * leave through the revocation path, which commits whatever is left
	 * (its drain shares the settle's deadline: work that could not finish
	 * there is not waited for twice), then close (librdkafka 2.0.2 can
	 * hang closing while an incremental assign is pending, hence the wait
	 * for an empty one). */
	c->shutting_down = true;
	{
		int64_t now = clock_mono_ms(), drain = (int64_t)c->cfg->drain_timeout_s * 1000,
			most = (int64_t)c->cfg->shutdown_timeout_s * 2000 / 3;

		c->shutdown_deadline = now + (int64_t)c->cfg->shutdown_timeout_s * 1000;
		c->drain_deadline = now + (drain < most ? drain : most);
	}
	log_at(LOG_INFO, "shutting down: finishing in-flight records", LOG_INT("deadline_seconds", c->cfg->shutdown_timeout_s));
	settle(c, c->drain_deadline);
	if ((err = rd_kafka_unsubscribe(c->rk)))
		log_at(LOG_WARN, "unsubscribe failed", LOG_STR("error", rd_kafka_err2str(err)));
	for (;;) {
		rd_kafka_topic_partition_list_t *a = NULL;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 20);
		bool empty;

		if (m)
			handle(c, m);
		service(c);
		empty = rd_kafka_assignment(c->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a->cnt == 0;
		if (a)
			rd_kafka_topic_partition_list_destroy(a);
		if (empty && atomic_load(&c->assigned) == 0)
			break;
		if (clock_mono_ms() >= c->shutdown_deadline) {
			log_at(LOG_WARN, "shutdown deadline passed with partitions still assigned");
			c->unclean = true;
			break;
		}
	}
	if ((err = rd_kafka_consumer_close(c->rk)))
		log_at(LOG_WARN, "consumer close failed", LOG_STR("error", rd_kafka_err2str(err)));
	return c->unclean ? 1 : 0;
}

void consumer_stop(consumer_t *c)
{
	atomic_store(&c->stop, true);
}

/* --- construction ----------------------------------------------------- */

consumer_t *consumer_new(const struct wb_config *cfg, const flow_t *flow, ctx_store_t *store, ctx_store_t *fallback,
			 const char *brokers, char *errstr, size_t errstr_size)
{
	consumer_t *c = calloc(1, sizeof(*c));
	rd_kafka_conf_t *conf;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t err;
	char why[512];

	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	c->cfg = cfg;
	c->nlanes = (uint32_t)cfg->worker_threads;
	json_doc_init(&c->stats_doc);
	atomic_store(&c->poll_at_ms, clock_mono_ms());
	atomic_store(&c->unsteady_since_ms, clock_mono_ms());
	if (!(c->parts = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*c->parts))) || !(c->dec = event_decoder_new()) ||
	    !(c->jc.done_ts = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*c->jc.done_ts))) ||
	    !(c->pool = job_pool_new())) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (!(c->offs = offsets_new(cfg->max_in_flight, CONSUMER_MAX_PARTITIONS, errstr, errstr_size)))
		goto fail;
	if (!(c->prod = producer_new(cfg, brokers, errstr, errstr_size)))
		goto fail;
	{
		struct lanes_opts lo = {cfg, flow, store, fallback, c->prod, c->offs};

		if (!(c->lanes = lanes_new(&lo, errstr, errstr_size)))
			goto fail;
	}
	if (!(conf = kafka_conf_new(cfg, KAFKA_CONSUMER, brokers, errstr, errstr_size)))
		goto fail;
	rd_kafka_conf_set_opaque(conf, c);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the Kafka consumer: %s", why);
		goto fail;
	}
	rd_kafka_poll_set_consumer(c->rk);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, cfg->inbound_topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errstr, errstr_size, "cannot subscribe to %s: %s", cfg->inbound_topic, rd_kafka_err2str(err));
		goto fail;
	}
	return c;
fail:
	consumer_destroy(c);
	return NULL;
}

void consumer_finish(consumer_t *c)
{
	int32_t p;

	if (!c || c->finished)
		return;
	c->finished = true;
	/* lanes first (they finish or abandon their jobs), then the producer
	 * (its reports release the jobs' last references), then the records
	 * never started */
	lanes_stop(c->lanes);
	producer_destroy(c->prod, c->shutting_down ? (int)(c->shutdown_deadline - clock_mono_ms() > 1000
								  ? c->shutdown_deadline - clock_mono_ms()
								  : 1000)
						     : 1000);
	c->prod = NULL;
	for (p = 0; c->parts && p < c->hi; p++)
		backlog_drop(c, &c->parts[p]);
}

void consumer_destroy(consumer_t *c)
{
	if (!c)
		return;
	/* and only then the consumer their messages belong to */
	consumer_finish(c);
	lanes_destroy(c->lanes);
	if (c->rk)
		rd_kafka_destroy(c->rk);
	offsets_destroy(c->offs);
	event_decoder_destroy(c->dec);
	json_doc_fini(&c->stats_doc);
	free(c->jc.done_ts);
	job_pool_destroy(c->pool); /* every job is gone (consumer_finish) */
	free(c->parts);
	free(c);
}

void consumer_get_stats(consumer_t *c, struct consumer_stats *out, struct lanes_stats *lanes)
{
	if (lanes)
		lanes_get_stats(c->lanes, lanes);
	memset(out, 0, sizeof(*out));
	out->consumed = atomic_load_explicit(&c->consumed, memory_order_relaxed);
	out->done = atomic_load_explicit(&c->jc.done, memory_order_relaxed);
	out->failed = atomic_load_explicit(&c->jc.failed, memory_order_relaxed);
	out->abandoned = atomic_load_explicit(&c->jc.abandoned, memory_order_relaxed);
	out->rebalances = atomic_load_explicit(&c->rebalances, memory_order_relaxed);
	out->lost = atomic_load_explicit(&c->lost, memory_order_relaxed);
	out->redone = atomic_load_explicit(&c->redone, memory_order_relaxed);
	out->pauses = atomic_load_explicit(&c->pauses, memory_order_relaxed);
	out->room_waits = atomic_load_explicit(&c->room_waits, memory_order_relaxed);
	out->commits = atomic_load_explicit(&c->commits, memory_order_relaxed);
	out->assigned = atomic_load_explicit(&c->assigned, memory_order_relaxed);
	out->paused = atomic_load_explicit(&c->paused, memory_order_relaxed);
}

rd_kafka_t *consumer_kafka(consumer_t *c)
{
	return c->rk;
}

size_t consumer_partitions(consumer_t *c, struct consumer_partition *out, size_t cap)
{
	size_t n = 0;
	int32_t p;

	for (p = 0; p < CONSUMER_MAX_PARTITIONS && n < cap; p++) {
		struct cpart *cp = &c->parts[p];

		if (!atomic_load_explicit(&cp->pub_assigned, memory_order_relaxed))
			continue;
		out[n].partition = p;
		out[n].paused = atomic_load_explicit(&cp->pub_paused, memory_order_relaxed);
		out[n].stored = atomic_load_explicit(&cp->pub_stored, memory_order_relaxed);
		out[n].in_flight = offsets_in_flight(c->offs, p);
		out[n].done_ts_ms = atomic_load_explicit(&c->jc.done_ts[p], memory_order_relaxed);
		n++;
	}
	return n;
}

void consumer_health(consumer_t *c, struct consumer_health *out)
{
	int64_t now = clock_mono_ms(), since = atomic_load_explicit(&c->unsteady_since_ms, memory_order_relaxed);

	out->poll_age_ms = now - atomic_load_explicit(&c->poll_at_ms, memory_order_relaxed);
	out->stats_seen = atomic_load_explicit(&c->stats_seen, memory_order_relaxed);
	out->steady = atomic_load_explicit(&c->steady, memory_order_relaxed);
	out->unsteady_ms = out->steady || !since ? 0 : now - since;
	out->lanes_stalled = lanes_stalled(c->lanes, now, CONSUMER_LANE_STALL_MS);
	out->shutting_down = atomic_load_explicit(&c->stop, memory_order_relaxed);
}

uint64_t consumer_events(consumer_t *c, unsigned provider, unsigned kind)
{
	if (provider >= CONSUMER_PROVIDERS || kind >= CONSUMER_KINDS)
		return 0;
	return atomic_load_explicit(&c->by_kind[provider][kind], memory_order_relaxed);
}

lanes_t *consumer_lanes(consumer_t *c)
{
	return c->lanes;
}

producer_t *consumer_producer(consumer_t *c)
{
	return c->prod;
}
