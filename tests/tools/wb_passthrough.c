/*
 * wb_passthrough.c - wb-passthrough: the benchmark's ceiling. A consumer
 * group member that produces every inbound record's key and value, unchanged,
 * to the outbound topic: what `wabot-worker run` costs without decoding, a
 * context store, a flow or threads. tests/bench/bench_kafka.c runs it beside
 * the worker and prints the worker's figures as ratios of this one's.
 *
 * It is configured like the worker (the same config_load: KAFKA_BROKERS,
 * KAFKA_GROUP_ID, KAFKA_GROUP_INSTANCE_ID, INBOUND_TOPIC, OUTBOUND_TOPIC,
 * LOG_LEVEL, KAFKA_PROP_<name> for both clients; the rest is accepted and
 * ignored) and it is as safe as the worker, or the comparison would flatter
 * it: the same consumer settings (cooperative-sticky, auto commit of
 * explicitly stored offsets), an idempotent producer with linger.ms=5, and an
 * offset is stored only once the copy of that record and of every earlier
 * record of its partition is acknowledged. A revocation waits for the
 * acknowledgements and commits before it returns; SIGTERM/SIGINT leave the
 * group that way and exit 0.
 *
 * Threads: one. It alone polls the consumer (rd_kafka_consumer_poll) and
 * serves the producer's delivery reports (rd_kafka_poll on the producer), so
 * the partition table below needs no lock. Owns: both rd_kafka_t, and each
 * consumed message until its copy is acknowledged (the value is produced
 * without copying: librdkafka reads it from the fetch buffer the message
 * keeps alive; keys are always copied by librdkafka).
 *
 * Rejected designs: a delivery-report thread (the worker's) costs a thread
 * switch per batch and a lock per record, for nothing when one thread can
 * serve both queues; forwarding the producer's queue into the consumer's
 * (rd_kafka_queue_forward) is not documented for queues of two rd_kafka_t,
 * so it is not relied on; RD_KAFKA_MSG_F_COPY costs a copy per record. The
 * price of one thread is a poll of PT_SERVICE_MS at most while reports are
 * owed (with 1 ms the main thread spent about 1 us more CPU per event at
 * 10,000 events/s, in wake-ups).
 *
 * Exit codes: 0 clean stop, 1 Kafka failed (clients, a deadline), 2 bad
 * configuration.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "log.h"

#define PT_MAX_PARTITIONS 1024     /* of the inbound topic; PT_PART_BITS wide */
#define PT_PART_BITS 10
#define PT_RING 16384u             /* records of a partition awaiting acknowledgement */
#define PT_SERVICE_MS 5            /* offset stores at least this often... */
#define PT_SERVICE_MSGS 256        /* ...and every this many records */
#define PT_DRAIN_MS 10000          /* a revocation waits this long for reports */
#define PT_SHUTDOWN_MS 25000       /* as the worker's default shutdown deadline */

_Static_assert(sizeof(uintptr_t) >= 8, "the delivery opaque packs partition and sequence in 64 bits");
_Static_assert((1u << PT_PART_BITS) >= PT_MAX_PARTITIONS, "PT_PART_BITS too small");

enum pt_state {
	PT_PENDING = 0, /* produced, no report yet */
	PT_DONE,        /* acknowledged */
	PT_FAILED,      /* not delivered: the stored offset stays below it */
};

/* One record in flight, in consumption order. */
struct pt_slot {
	rd_kafka_message_t *m; /* the consumed message; NULL once reported */
	int64_t offset;
	enum pt_state state;
};

/* One inbound partition. Thread: the only one. */
struct pt_part {
	bool assigned;
	bool stuck;             /* a record failed: nothing past it is stored */
	struct pt_slot *ring;   /* PT_RING slots, allocated at the first assign */
	uint64_t head;          /* sequence of the oldest record not released */
	uint64_t tail;          /* sequence of the next record consumed */
	int64_t next;           /* offset to store (done prefix + 1); -1: none */
	bool dirty;             /* next advanced since the last store */
};

struct pt {
	struct wb_config cfg;
	rd_kafka_t *rk;         /* consumer */
	rd_kafka_t *prod;
	rd_kafka_topic_t *out;
	struct pt_part parts[PT_MAX_PARTITIONS];
	int32_t hi;             /* 1 + highest partition ever assigned */
	uint64_t owed;          /* records produced and not yet reported */
	bool unclean;           /* a deadline passed or Kafka failed */
	uint64_t consumed, delivered, failed, waits;
};

/* Set by the signal handler, read by the loop: the only mutable global. */
static volatile sig_atomic_t pt_stop;

static void pt_on_signal(int sig)
{
	(void)sig;
	pt_stop = 1;
}

static int64_t pt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *pt_opaque(int32_t partition, uint64_t seq)
{
	return (void *)(uintptr_t)(seq << PT_PART_BITS | (uint64_t)partition);
}

static void pt_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;

	log_at(l, "librdkafka", LOG_STR("client", rd_kafka_name(rk)), LOG_STR("facility", fac),
	       LOG_STR("message", buf));
}

/* --- delivery reports and offsets ----------------------------------- */

/* Served by rd_kafka_poll/rd_kafka_flush on the producer: this thread. */
static void pt_dr_cb(rd_kafka_t *prod, const rd_kafka_message_t *rkm, void *opaque)
{
	struct pt *pt = opaque;
	uint64_t v = (uint64_t)(uintptr_t)rkm->_private;
	uint64_t seq = v >> PT_PART_BITS;
	struct pt_part *cp = &pt->parts[v & ((1u << PT_PART_BITS) - 1)];
	struct pt_slot *s;

	(void)prod;
	pt->owed--;
	if (!cp->assigned || seq < cp->head || seq >= cp->tail) {
		/* cannot happen: a revocation waits for every report before it
		 * forgets a partition's records. Its message is left alone (its
		 * slot may hold another one by now). */
		log_at(LOG_ERROR, "report for a record no longer tracked", LOG_UINT("sequence", seq));
		return;
	}
	s = &cp->ring[seq % PT_RING];
	if (rkm->err) {
		pt->failed++;
		s->state = PT_FAILED;
		log_at(LOG_ERROR, "copy not delivered: its inbound offset will not be stored",
		       LOG_INT("partition", s->m->partition), LOG_INT("offset", s->offset),
		       LOG_STR("error", rd_kafka_err2str(rkm->err)));
	} else {
		pt->delivered++;
		s->state = PT_DONE;
	}
	rd_kafka_message_destroy(s->m); /* the producer no longer reads its value */
	s->m = NULL;
}

/* Releases the acknowledged prefix of cp; marks cp dirty when it moved. */
static void pt_advance(struct pt_part *cp)
{
	while (!cp->stuck && cp->head < cp->tail) {
		struct pt_slot *s = &cp->ring[cp->head % PT_RING];

		if (s->state == PT_PENDING)
			break;
		if (s->state == PT_FAILED) {
			cp->stuck = true;
			break;
		}
		cp->next = s->offset + 1;
		cp->dirty = true;
		cp->head++;
	}
}

/* Stores the offsets that advanced (auto commit sends them). */
static void pt_service(struct pt *pt)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_resp_err_t err;
	int32_t p;

	rd_kafka_poll(pt->prod, 0);
	for (p = 0; p < pt->hi; p++) {
		struct pt_part *cp = &pt->parts[p];

		if (!cp->assigned)
			continue;
		pt_advance(cp);
		if (!cp->dirty)
			continue;
		if (!l)
			l = rd_kafka_topic_partition_list_new(16);
		rd_kafka_topic_partition_list_add(l, pt->cfg.inbound_topic, p)->offset = cp->next;
		cp->dirty = false;
	}
	if (!l)
		return;
	if ((err = rd_kafka_offsets_store(pt->rk, l)))
		log_at(LOG_WARN, "cannot store offsets", LOG_STR("error", rd_kafka_err2str(err)));
	rd_kafka_topic_partition_list_destroy(l);
}

/* Waits until no report is owed: flush, and past the deadline purge (the
 * purged records report failure, so their offsets are not stored). */
static void pt_drain(struct pt *pt, int timeout_ms)
{
	if (pt->owed && rd_kafka_flush(pt->prod, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_at(LOG_WARN, "reports still owed after the deadline: purging", LOG_UINT("records", pt->owed));
		pt->unclean = true;
		rd_kafka_purge(pt->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(pt->prod, 1000);
	}
}

/* --- consuming -------------------------------------------------------- */

static void pt_handle(struct pt *pt, rd_kafka_message_t *m)
{
	struct pt_part *cp;
	struct pt_slot *s;
	rd_kafka_resp_err_t err;
	uint64_t seq;

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_at(LOG_WARN, "consumer error", LOG_STR("error", rd_kafka_message_errstr(m)));
		if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
			pt->unclean = true;
			pt_stop = 1;
		}
		rd_kafka_message_destroy(m);
		return;
	}
	if (m->partition < 0 || m->partition >= PT_MAX_PARTITIONS || !pt->parts[m->partition].assigned) {
		rd_kafka_message_destroy(m);
		return;
	}
	cp = &pt->parts[m->partition];
	pt->consumed++;
	while (cp->tail - cp->head >= PT_RING) {
		/* as many records of this partition await reports as the ring
		 * holds: wait for some (the broker is slow, or one failed) */
		pt->waits++;
		rd_kafka_poll(pt->prod, 10);
		pt_advance(cp);
		if (cp->stuck) {
			log_at(LOG_ERROR, "partition stuck behind an undelivered record: stopping",
			       LOG_INT("partition", m->partition));
			pt->unclean = true;
			pt_stop = 1;
			rd_kafka_message_destroy(m);
			return;
		}
	}
	seq = cp->tail++;
	s = &cp->ring[seq % PT_RING];
	s->m = m;
	s->offset = m->offset;
	s->state = PT_PENDING;
	pt->owed++;
	for (;;) {
		err = rd_kafka_producev(pt->prod, RD_KAFKA_V_RKT(pt->out), RD_KAFKA_V_KEY(m->key, m->key_len),
					RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(0),
					RD_KAFKA_V_OPAQUE(pt_opaque(m->partition, seq)), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		pt->waits++;
		rd_kafka_poll(pt->prod, 10);
	}
	if (err) {
		log_at(LOG_ERROR, "copy refused by the producer: its inbound offset will not be stored",
		       LOG_INT("partition", m->partition), LOG_INT("offset", m->offset),
		       LOG_STR("error", rd_kafka_err2str(err)));
		pt->owed--;
		pt->failed++;
		s->state = PT_FAILED;
		s->m = NULL;
		rd_kafka_message_destroy(m);
	}
}

/* --- rebalances ------------------------------------------------------- */

static bool pt_ours(const struct pt *pt, const rd_kafka_topic_partition_t *tp)
{
	return strcmp(tp->topic, pt->cfg.inbound_topic) == 0 && tp->partition >= 0 &&
	       tp->partition < PT_MAX_PARTITIONS;
}

static void pt_assign(struct pt *pt, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_error_t *e;
	int i;

	for (i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		struct pt_part *cp = &pt->parts[p];

		if (!pt_ours(pt, &parts->elems[i]))
			continue;
		if (!cp->ring && !(cp->ring = calloc(PT_RING, sizeof(*cp->ring)))) {
			log_at(LOG_ERROR, "out of memory for a partition: stopping", LOG_INT("partition", p));
			pt->unclean = true;
			pt_stop = 1;
			continue;
		}
		cp->assigned = true;
		cp->stuck = false;
		cp->dirty = false;
		cp->head = cp->tail = 0;
		cp->next = -1;
		if (p + 1 > pt->hi)
			pt->hi = p + 1;
	}
	if ((e = rd_kafka_incremental_assign(pt->rk, parts))) {
		log_at(LOG_ERROR, "incremental assign failed", LOG_STR("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
	log_at(LOG_INFO, "partitions assigned", LOG_INT("count", parts->cnt));
}

/* Every report arrives first (drain), so no record of a revoked partition
 * is still owed when its slots are forgotten; then, unless the partition
 * was lost, its acknowledged prefix is committed synchronously. */
static void pt_revoke(struct pt *pt, rd_kafka_topic_partition_list_t *parts)
{
	bool lost = rd_kafka_assignment_lost(pt->rk);
	rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(parts->cnt);
	rd_kafka_error_t *e;
	int i;

	pt_drain(pt, PT_DRAIN_MS);
	for (i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		struct pt_part *cp = &pt->parts[p];

		if (!pt_ours(pt, &parts->elems[i]) || !cp->assigned)
			continue;
		pt_advance(cp);
		if (!lost && cp->next >= 0)
			rd_kafka_topic_partition_list_add(commit, pt->cfg.inbound_topic, p)->offset = cp->next;
		cp->assigned = false;
	}
	if (commit->cnt > 0) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(pt->rk, commit);

		if (!err)
			err = rd_kafka_commit(pt->rk, commit, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
			log_at(LOG_WARN, "commit at revocation failed", LOG_STR("error", rd_kafka_err2str(err)));
	}
	rd_kafka_topic_partition_list_destroy(commit);
	if ((e = rd_kafka_incremental_unassign(pt->rk, parts))) {
		log_at(LOG_ERROR, "incremental unassign failed", LOG_STR("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
	log_at(lost ? LOG_WARN : LOG_INFO, lost ? "partitions lost" : "partitions revoked",
	       LOG_INT("count", parts->cnt));
}

static void pt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			    void *opaque)
{
	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		pt_assign(opaque, parts);
	else
		pt_revoke(opaque, parts);
}

/* --- construction ----------------------------------------------------- */

/* name=value pairs (NULL-terminated), then every KAFKA_PROP_. */
static rd_kafka_conf_t *pt_conf(const struct pt *pt, const char *const *kv, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[256];
	size_t i;

	rd_kafka_conf_set_log_cb(conf, pt_kafka_log);
	for (i = 0; kv[i]; i += 2)
		if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
			goto fail;
	for (i = 0; i < pt->cfg.kafka_props_len; i++) {
		const struct wb_kafka_prop *kp = &pt->cfg.kafka_props[i];

		if (rd_kafka_conf_set(conf, kp->name, kp->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			snprintf(errstr, errstr_size, "Kafka property %s: %s", kp->name,
				 config_kafka_prop_is_secret(kp->name) ? "refused by librdkafka" : why);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	return conf;
fail:
	snprintf(errstr, errstr_size, "Kafka property %s: %s", kv[i], why);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Builds both clients and subscribes. 0, or 1/2 with errstr. */
static int pt_open(struct pt *pt, char *errstr, size_t errstr_size)
{
	const char *ckv[] = {
		"bootstrap.servers", pt->cfg.kafka_brokers,
		"client.id", "wb-passthrough",
		"group.id", pt->cfg.group_id,
		"partition.assignment.strategy", "cooperative-sticky",
		"enable.auto.offset.store", "false",
		"enable.auto.commit", "true",
		"auto.commit.interval.ms", "1000",
		"auto.offset.reset", "earliest",
		pt->cfg.group_instance_id ? "group.instance.id" : NULL, pt->cfg.group_instance_id,
		NULL,
	};
	const char *pkv[] = {
		"bootstrap.servers", pt->cfg.kafka_brokers,
		"client.id", "wb-passthrough-producer",
		"enable.idempotence", "true",
		"linger.ms", "5",
		NULL,
	};
	rd_kafka_conf_t *conf;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t err;
	char why[512];

	if (!(conf = pt_conf(pt, pkv, errstr, errstr_size)))
		return 2;
	rd_kafka_conf_set_opaque(conf, pt);
	rd_kafka_conf_set_dr_msg_cb(conf, pt_dr_cb);
	if (!(pt->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the producer: %s", why);
		return 1;
	}
	if (!(pt->out = rd_kafka_topic_new(pt->prod, pt->cfg.outbound_topic, NULL))) {
		snprintf(errstr, errstr_size, "topic %s: %s", pt->cfg.outbound_topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return 1;
	}
	if (!(conf = pt_conf(pt, ckv, errstr, errstr_size)))
		return 2;
	rd_kafka_conf_set_opaque(conf, pt);
	rd_kafka_conf_set_rebalance_cb(conf, pt_rebalance_cb);
	if (!(pt->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the consumer: %s", why);
		return 1;
	}
	rd_kafka_poll_set_consumer(pt->rk);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, pt->cfg.inbound_topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(pt->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errstr, errstr_size, "cannot subscribe to %s: %s", pt->cfg.inbound_topic,
			 rd_kafka_err2str(err));
		return 1;
	}
	return 0;
}

/* Shutdown, in the worker's order: unsubscribe (the revocation drains and
 * commits), wait for an empty assignment (librdkafka 2.0.2 can hang closing
 * while an incremental assign is pending), close, flush, destroy. */
static void pt_close(struct pt *pt)
{
	int64_t deadline = pt_now_ms() + PT_SHUTDOWN_MS;
	rd_kafka_resp_err_t err;
	int32_t p;

	if (pt->rk) {
		if ((err = rd_kafka_unsubscribe(pt->rk)))
			log_at(LOG_WARN, "unsubscribe failed", LOG_STR("error", rd_kafka_err2str(err)));
		for (;;) {
			rd_kafka_topic_partition_list_t *a = NULL;
			rd_kafka_message_t *m = rd_kafka_consumer_poll(pt->rk, 20);
			bool empty;

			if (m)
				pt_handle(pt, m);
			pt_service(pt);
			empty = rd_kafka_assignment(pt->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a->cnt == 0;
			if (a)
				rd_kafka_topic_partition_list_destroy(a);
			if (empty)
				break;
			if (pt_now_ms() >= deadline) {
				log_at(LOG_WARN, "shutdown deadline passed with partitions still assigned",
				       LOG_INT("seconds", PT_SHUTDOWN_MS / 1000));
				pt->unclean = true;
				break;
			}
		}
	}
	if (pt->prod)
		pt_drain(pt, 5000); /* nothing is owed after a clean revocation */
	if (pt->rk && (err = rd_kafka_consumer_close(pt->rk)))
		log_at(LOG_WARN, "consumer close failed", LOG_STR("error", rd_kafka_err2str(err)));
	if (pt->out)
		rd_kafka_topic_destroy(pt->out);
	if (pt->prod)
		rd_kafka_destroy(pt->prod);
	/* with the producer gone nothing reads a held value any more */
	for (p = 0; p < PT_MAX_PARTITIONS; p++) {
		struct pt_part *cp = &pt->parts[p];
		uint64_t seq;

		for (seq = cp->head; cp->ring && seq < cp->tail; seq++)
			if (cp->ring[seq % PT_RING].m)
				rd_kafka_message_destroy(cp->ring[seq % PT_RING].m);
		free(cp->ring);
	}
	if (pt->rk)
		rd_kafka_destroy(pt->rk);
}

extern char **environ;

int main(int argc, char **argv)
{
	static struct pt pt; /* large (the partition table): not on the stack */
	struct sigaction sa = {.sa_handler = pt_on_signal};
	char errstr[512] = "";
	int64_t last, t0;
	unsigned since = 0;
	int rc;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: wb-passthrough [worker configuration flags]\n\n"
		       "Consumes INBOUND_TOPIC as member of KAFKA_GROUP_ID and produces every record's key\n"
		       "and value unchanged to OUTBOUND_TOPIC; offsets are stored once the copies are\n"
		       "acknowledged. The ceiling of tests/bench/bench_kafka. Configured like\n"
		       "'wabot-worker run' (KAFKA_BROKERS, KAFKA_PROP_<name>, ...). SIGTERM: exit 0.\n");
		return 0;
	}
	if (config_load(&pt.cfg, argc - 1, argv + 1, environ, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wb-passthrough: %s\n", errstr);
		return 2;
	}
	log_set_level(pt.cfg.log_level);
	if (!pt.cfg.kafka_brokers[0]) {
		fprintf(stderr, "wb-passthrough: KAFKA_BROKERS: required\n");
		config_fini(&pt.cfg);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((rc = pt_open(&pt, errstr, sizeof(errstr))) != 0) {
		fprintf(stderr, "wb-passthrough: %s\n", errstr);
		pt_close(&pt);
		config_fini(&pt.cfg);
		return rc;
	}
	log_at(LOG_INFO, "passthrough started", LOG_STR("group", pt.cfg.group_id),
	       LOG_STR("inbound", pt.cfg.inbound_topic), LOG_STR("outbound", pt.cfg.outbound_topic),
	       LOG_STR("librdkafka", rd_kafka_version_str()));
	t0 = last = pt_now_ms();
	while (!pt_stop) {
		/* short polls only while reports are owed, to store offsets soon */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(pt.rk, pt.owed ? PT_SERVICE_MS : 100);
		int64_t now;

		if (m) {
			pt_handle(&pt, m);
			since++;
		}
		now = pt_now_ms();
		if (!m || since >= PT_SERVICE_MSGS || now - last >= PT_SERVICE_MS) {
			pt_service(&pt);
			last = now;
			since = 0;
		}
	}
	log_at(LOG_INFO, "shutting down", LOG_UINT("owed", pt.owed));
	pt_close(&pt);
	log_at(LOG_INFO, "passthrough stopped", LOG_UINT("records", pt.consumed), LOG_UINT("delivered", pt.delivered),
	       LOG_UINT("failed", pt.failed), LOG_UINT("waits", pt.waits),
	       LOG_DOUBLE("seconds", (double)(pt_now_ms() - t0) / 1000.0));
	rc = pt.unclean || pt.failed ? 1 : 0;
	config_fini(&pt.cfg);
	return rc;
}
