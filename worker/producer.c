/*
 * producer.c - idempotent producer for replies and dead letters, and the
 * thread that serves its delivery reports (producer.h).
 */
#include "producer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "kafka.h"
#include "log.h"

struct producer {
	rd_kafka_t *rk;
	rd_kafka_topic_t *out_rkt;
	rd_kafka_topic_t *dlq_rkt;
	const char *inbound_topic; /* borrowed from the config */
	const char *group_id;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	atomic_uint_fast64_t replies, dlq, failed, queue_full;
	/* Dead letters sent, by reason: the names a dead letter can carry
	 * (event_err names, wb_err names, "retries_exhausted"), then "other",
	 * so the label set stays bounded. Names immutable after producer_new. */
	const char *reasons[PRODUCER_MAX_REASONS];
	size_t nreasons;
	atomic_uint_fast64_t by_reason[PRODUCER_MAX_REASONS];
};

static void add_reason(producer_t *p, const char *name)
{
	if (p->nreasons < PRODUCER_MAX_REASONS - 1)
		p->reasons[p->nreasons++] = name;
}

static void count_reason(producer_t *p, const char *reason)
{
	size_t i;

	for (i = 0; reason && i < p->nreasons - 1; i++)
		if (strcmp(p->reasons[i], reason) == 0)
			break;
	if (!reason)
		i = p->nreasons - 1;
	atomic_fetch_add_explicit(&p->by_reason[i], 1, memory_order_relaxed);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	producer_t *p = opaque;
	struct job *job = m->_private;

	(void)rk;
	if (m->err) {
		atomic_fetch_add_explicit(&p->failed, 1, memory_order_relaxed);
		log_at(LOG_ERROR, "output not delivered: its inbound offset will not be committed",
		       LOG_STR("topic", rd_kafka_topic_name(m->rkt)), LOG_STR("error", rd_kafka_err2str(m->err)),
		       LOG_INT("source_partition", job ? job->partition : -1),
		       LOG_INT("source_offset", job ? job->offset : -1));
		if (job)
			job_fail(job);
	} else if (m->rkt == p->dlq_rkt) {
		atomic_fetch_add_explicit(&p->dlq, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&p->replies, 1, memory_order_relaxed);
	}
	if (job)
		job_unref(job);
}

static void *report_thread(void *arg)
{
	producer_t *p = arg;

	while (!atomic_load_explicit(&p->stop, memory_order_acquire))
		rd_kafka_poll(p->rk, 100);
	return NULL;
}

producer_t *producer_new(const struct wb_config *cfg, const char *brokers, char *errstr, size_t errstr_size)
{
	producer_t *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf;
	char why[512];

	if (!p) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	p->inbound_topic = cfg->inbound_topic;
	p->group_id = cfg->group_id;
	for (int e = 1; e < EVENT_ERR__COUNT; e++)
		add_reason(p, event_err_name((event_err_t)e));
	for (int e = 1; e < WB_ERR__COUNT; e++)
		add_reason(p, wb_err_name((wb_err_t)e));
	add_reason(p, "retries_exhausted");
	p->reasons[p->nreasons++] = "other";
	if (!(conf = kafka_conf_new(cfg, KAFKA_PRODUCER, brokers, errstr, errstr_size)))
		goto fail;
	rd_kafka_conf_set_opaque(conf, p);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the Kafka producer: %s", why);
		goto fail;
	}
	p->out_rkt = rd_kafka_topic_new(p->rk, cfg->outbound_topic, NULL);
	p->dlq_rkt = rd_kafka_topic_new(p->rk, cfg->dlq_topic, NULL);
	if (!p->out_rkt || !p->dlq_rkt) {
		snprintf(errstr, errstr_size, "cannot create topic handles: %s", rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	if (pthread_create(&p->thread, NULL, report_thread, p) != 0) {
		snprintf(errstr, errstr_size, "cannot start the delivery report thread");
		goto fail;
	}
	p->thread_started = true;
	return p;
fail:
	producer_destroy(p, 0);
	return NULL;
}

void producer_destroy(producer_t *p, int timeout_ms)
{
	if (!p)
		return;
	if (p->rk && rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_at(LOG_ERROR, "producer closed with outputs not delivered", LOG_INT("records", rd_kafka_outq_len(p->rk)));
	atomic_store_explicit(&p->stop, true, memory_order_release);
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	if (p->rk) {
		/* Reports still owed fire here and release their jobs. */
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 0);
	}
	if (p->out_rkt)
		rd_kafka_topic_destroy(p->out_rkt);
	if (p->dlq_rkt)
		rd_kafka_topic_destroy(p->dlq_rkt);
	if (p->rk)
		rd_kafka_destroy(p->rk);
	free(p);
}

wb_err_t producer_send(producer_t *p, const struct pipeline_output *o, struct job *job, uint32_t attempts)
{
	rd_kafka_resp_err_t err;
	rd_kafka_headers_t *hdrs = NULL;

	for (;;) {
		if (o->out == PIPELINE_OUT_DLQ) {
			char part[16], off[24], att[16];

			hdrs = rd_kafka_headers_new(6);
			snprintf(part, sizeof(part), "%d", job ? (int)job->partition : -1);
			snprintf(off, sizeof(off), "%lld", job ? (long long)job->offset : -1LL);
			snprintf(att, sizeof(att), "%u", attempts);
			rd_kafka_header_add(hdrs, "reason", -1, o->reason ? o->reason : "unknown", -1);
			rd_kafka_header_add(hdrs, "source_topic", -1, p->inbound_topic, -1);
			rd_kafka_header_add(hdrs, "source_partition", -1, part, -1);
			rd_kafka_header_add(hdrs, "source_offset", -1, off, -1);
			rd_kafka_header_add(hdrs, "consumer_group", -1, p->group_id, -1);
			rd_kafka_header_add(hdrs, "attempts", -1, att, -1);
		}
		if (job)
			job_ref(job);
		if (hdrs)
			err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->dlq_rkt), RD_KAFKA_V_KEY(o->key, o->key_len),
						RD_KAFKA_V_VALUE((void *)o->value, o->len),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(job),
						RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
		else
			err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->out_rkt), RD_KAFKA_V_KEY(o->key, o->key_len),
						RD_KAFKA_V_VALUE((void *)o->value, o->len),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(job),
						RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (o->out == PIPELINE_OUT_DLQ)
				count_reason(p, o->reason);
			return WB_OK; /* the headers now belong to librdkafka */
		}
		if (job)
			job_unref(job);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		hdrs = NULL;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		atomic_fetch_add_explicit(&p->queue_full, 1, memory_order_relaxed);
		clock_sleep_ms(1); /* the report thread makes room */
	}
	log_at(LOG_ERROR, "output refused by the producer", LOG_STR("error", rd_kafka_err2str(err)));
	return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
		       ? WB_ERR_TOO_BIG
		       : WB_ERR_INVALID;
}

int producer_outq_len(producer_t *p)
{
	return rd_kafka_outq_len(p->rk);
}

void producer_get_stats(producer_t *p, struct producer_stats *out)
{
	out->replies = atomic_load_explicit(&p->replies, memory_order_relaxed);
	out->dlq = atomic_load_explicit(&p->dlq, memory_order_relaxed);
	out->failed = atomic_load_explicit(&p->failed, memory_order_relaxed);
	out->queue_full = atomic_load_explicit(&p->queue_full, memory_order_relaxed);
}

size_t producer_dlq_reasons(producer_t *p, const char **names, uint64_t *counts, size_t cap)
{
	size_t i;

	for (i = 0; i < p->nreasons && i < cap; i++) {
		names[i] = p->reasons[i];
		counts[i] = atomic_load_explicit(&p->by_reason[i], memory_order_relaxed);
	}
	return i;
}
