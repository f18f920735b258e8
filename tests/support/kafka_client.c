/*
 * kafka_client.c - produce, read back and read committed offsets for tests
 * and benchmarks (see kafka_client.h).
 *
 * Every function builds its own rd_kafka_t and destroys it before it
 * returns, in librdkafka's order (messages, topic handles, consumer close,
 * destroy). Delivery reports are served by the calling thread (rd_kafka_poll
 * and rd_kafka_flush), so the report counters need no lock.
 * Owns: nothing beyond a call, except the kafka_recs it returns.
 */
#include "kafka_client.h"
#include "test_clock.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#define KC_PRODUCE_TIMEOUT_MS 60000   /* enqueue plus every delivery report */
#define KC_METADATA_TIMEOUT_MS 10000
#define KC_COMMITTED_TIMEOUT_MS 10000
#define KC_POLL_MS 100
/* Fixed: the reader never joins this group nor commits to it (assign only). */
#define KC_READER_GROUP "wb-test-support-reader"

/* Delivery-report tally of one kafka_produce call. Thread: the caller's. */
struct kc_dr {
	size_t acked;
	size_t failed;
	rd_kafka_resp_err_t first_err;
};

__attribute__((format(printf, 3, 4)))
static void kc_err(char *errstr, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!errstr || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, errsz, fmt, ap);
	va_end(ap);
}

/* Sets name=value pairs (NULL-terminated list) on conf. false with errstr. */
static bool kc_conf_set(rd_kafka_conf_t *conf, const char *const *kv, char *errstr, size_t errsz)
{
	char why[256];

	for (size_t i = 0; kv[i]; i += 2) {
		if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], why, sizeof why) != RD_KAFKA_CONF_OK) {
			kc_err(errstr, errsz, "config: %s: %s", kv[i], why);
			return false;
		}
	}
	return true;
}

/* A new client of type from kv, or NULL with errstr. Always takes conf. */
static rd_kafka_t *kc_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *const *kv, char *errstr,
			  size_t errsz)
{
	char why[512];
	rd_kafka_t *rk;

	if (!kc_conf_set(conf, kv, errstr, errsz)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(type, conf, why, sizeof why);
	if (!rk) {
		kc_err(errstr, errsz, "rd_kafka_new: %s", why);
		rd_kafka_conf_destroy(conf); /* rd_kafka_new takes conf only on success */
	}
	return rk;
}

static void kc_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	struct kc_dr *dr = opaque;

	if (rkm->err) {
		if (dr->failed++ == 0)
			dr->first_err = rkm->err;
	} else {
		dr->acked++;
	}
}

/* The produceva arguments of rec in vu; returns their count. */
static size_t kc_rec_vu(const char *topic, const struct kafka_rec *rec, rd_kafka_vu_t *vu)
{
	size_t k = 0;

	vu[k].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[k++].u.cstr = topic;
	vu[k].vtype = RD_KAFKA_VTYPE_PARTITION;
	vu[k++].u.i32 = rec->partition < 0 ? RD_KAFKA_PARTITION_UA : rec->partition;
	vu[k].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[k++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[k].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[k].u.mem.ptr = (void *)rec->value;
	vu[k++].u.mem.size = rec->value ? rec->value_len : 0;
	if (rec->key) {
		vu[k].vtype = RD_KAFKA_VTYPE_KEY;
		vu[k].u.mem.ptr = (void *)rec->key;
		vu[k++].u.mem.size = rec->key_len;
	}
	if (rec->timestamp_ms) {
		vu[k].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
		vu[k++].u.i64 = rec->timestamp_ms;
	}
	for (size_t h = 0; h < rec->header_cnt; h++) {
		vu[k].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[k].u.header.name = rec->headers[h].name;
		vu[k].u.header.val = rec->headers[h].value;
		vu[k++].u.header.size = rec->headers[h].value ? (ssize_t)rec->headers[h].value_len : 0;
	}
	return k;
}

int kafka_produce(const char *bootstrap, const char *topic, const struct kafka_rec *recs, size_t n, char *errstr,
		  size_t errsz)
{
	const char *const kv[] = {
		"bootstrap.servers", bootstrap,
		"linger.ms", "5",
		/* Retried batches are neither duplicated nor reordered. */
		"enable.idempotence", "true",
		"message.timeout.ms", "30000",
		"log.connection.close", "false",
		NULL,
	};
	struct kc_dr dr = {0};
	int64_t deadline = test_now_ms() + KC_PRODUCE_TIMEOUT_MS;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char fatal[512];
	int rc = -1;

	rd_kafka_conf_set_dr_msg_cb(conf, kc_dr_cb);
	rd_kafka_conf_set_opaque(conf, &dr);
	rk = kc_new(RD_KAFKA_PRODUCER, conf, kv, errstr, errsz);
	if (!rk)
		return -1;
	for (size_t i = 0; i < n; i++) {
		rd_kafka_vu_t vu[6 + KAFKA_REC_MAX_HEADERS];
		rd_kafka_error_t *error;

		if (recs[i].header_cnt > KAFKA_REC_MAX_HEADERS) {
			kc_err(errstr, errsz, "record %zu has more than %d headers", i, KAFKA_REC_MAX_HEADERS);
			goto out_purge;
		}
		while ((error = rd_kafka_produceva(rk, vu, kc_rec_vu(topic, &recs[i], vu))) != NULL) {
			if (rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				kc_err(errstr, errsz, "produce record %zu: %s", i, rd_kafka_error_string(error));
				rd_kafka_error_destroy(error);
				goto out_purge;
			}
			rd_kafka_error_destroy(error);
			if (test_now_ms() >= deadline) {
				kc_err(errstr, errsz, "produce: queue still full after %d ms", KC_PRODUCE_TIMEOUT_MS);
				goto out_purge;
			}
			rd_kafka_poll(rk, KC_POLL_MS); /* serve delivery reports to make room */
		}
		if (dr.failed)
			break;
	}
	{
		int64_t left = deadline - test_now_ms();

		if (rd_kafka_flush(rk, left > 0 ? (int)left : 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			kc_err(errstr, errsz, "flush: %d records still undelivered after %d ms", rd_kafka_outq_len(rk),
			       KC_PRODUCE_TIMEOUT_MS);
			goto out_purge;
		}
	}
	if (rd_kafka_fatal_error(rk, fatal, sizeof fatal)) {
		kc_err(errstr, errsz, "fatal producer error: %s", fatal);
		goto out_destroy;
	}
	if (dr.failed) {
		kc_err(errstr, errsz, "delivery of %zu records failed, first: %s", dr.failed,
		       rd_kafka_err2str(dr.first_err));
		goto out_destroy;
	}
	if (dr.acked != n) {
		kc_err(errstr, errsz, "%zu delivery reports for %zu records", dr.acked, n);
		goto out_destroy;
	}
	rc = 0;
	goto out_destroy;
out_purge:
	/* Drop what is still queued so destroy does not wait for it. */
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(rk, 1000);
out_destroy:
	rd_kafka_destroy(rk);
	return rc;
}

/* A copy of len bytes plus a NUL, or NULL when p is NULL (or on ENOMEM,
 * which *oom then says). */
static void *kc_dup(const void *p, size_t len, bool *oom)
{
	char *c;

	if (!p)
		return NULL;
	c = malloc(len + 1);
	if (!c) {
		*oom = true;
		return NULL;
	}
	memcpy(c, p, len);
	c[len] = '\0';
	return c;
}

static void kc_msg_fini(struct kafka_msg *m)
{
	for (size_t h = 0; h < m->header_cnt; h++) {
		free((void *)m->headers[h].name);
		free((void *)m->headers[h].value);
	}
	free(m->headers);
	free(m->key);
	free(m->value);
}

/* Copies rkm into recs. false on ENOMEM (recs unchanged). */
static bool kc_recs_add(struct kafka_recs *recs, const rd_kafka_message_t *rkm)
{
	struct kafka_msg m = {0};
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	bool oom = false;

	if (recs->n == recs->cap) {
		size_t cap = recs->cap ? recs->cap * 2 : 1024;
		struct kafka_msg *v = realloc(recs->msgs, cap * sizeof(*v));

		if (!v)
			return false;
		recs->msgs = v;
		recs->cap = cap;
	}
	m.topic = recs->topic;
	m.partition = rkm->partition;
	m.offset = rkm->offset;
	m.timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
	m.key = kc_dup(rkm->key, rkm->key_len, &oom);
	m.key_len = rkm->key ? rkm->key_len : 0;
	m.value = kc_dup(rkm->payload, rkm->len, &oom);
	m.value_len = rkm->payload ? rkm->len : 0;
	if (!oom && rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		size_t cnt = rd_kafka_header_cnt(hdrs);

		m.headers = calloc(cnt ? cnt : 1, sizeof(*m.headers));
		oom = m.headers == NULL;
		for (size_t h = 0; !oom && h < cnt; h++) {
			const char *name;
			const void *val;
			size_t size;

			if (rd_kafka_header_get_all(hdrs, h, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			m.headers[h].name = kc_dup(name, strlen(name), &oom);
			m.headers[h].value = kc_dup(val, size, &oom);
			m.headers[h].value_len = val ? size : 0;
			m.header_cnt = h + 1;
		}
	}
	if (oom) {
		kc_msg_fini(&m);
		return false;
	}
	recs->msgs[recs->n++] = m;
	return true;
}

/*
 * Assigns every partition of topic at BEGINNING. false with a reason on
 * stderr. Asks for the metadata of all topics: the 2.0.2 mock speaks only
 * Metadata v0..2, which cannot carry AllowAutoTopicCreation=false, so a
 * request naming a missing topic would create it (with 4 partitions).
 */
static bool kc_assign_all(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	const struct rd_kafka_metadata_topic *mt = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err;
	bool ok = false;

	err = rd_kafka_metadata(rk, 1, NULL, &md, KC_METADATA_TIMEOUT_MS);
	if (err) {
		fprintf(stderr, "kafka_consume_all: metadata: %s\n", rd_kafka_err2str(err));
		return false;
	}
	for (int i = 0; i < md->topic_cnt && !mt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0)
			mt = &md->topics[i];
	if (!mt || mt->err || mt->partition_cnt <= 0) {
		fprintf(stderr, "kafka_consume_all: topic %s: %s\n", topic,
			mt ? rd_kafka_err2str(mt->err) : "does not exist");
		goto out;
	}
	parts = rd_kafka_topic_partition_list_new(mt->partition_cnt);
	for (int i = 0; i < mt->partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, mt->partitions[i].id)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	err = rd_kafka_assign(rk, parts);
	if (err) {
		fprintf(stderr, "kafka_consume_all: assign %s: %s\n", topic, rd_kafka_err2str(err));
		goto out;
	}
	ok = true;
out:
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_metadata_destroy(md);
	return ok;
}

struct kafka_recs *kafka_consume_all(const char *bootstrap, const char *topic, size_t expect, int idle_ms,
				     int max_ms)
{
	const char *const kv[] = {
		"bootstrap.servers", bootstrap,
		"group.id", KC_READER_GROUP,
		"enable.auto.commit", "false",
		"enable.auto.offset.store", "false",
		"enable.partition.eof", "false",
		"log.connection.close", "false",
		NULL,
	};
	struct kafka_recs *recs = calloc(1, sizeof(*recs));
	char errstr[512];
	int64_t start = test_now_ms(), last = start;
	rd_kafka_t *rk;

	if (!recs || !(recs->topic = strdup(topic))) {
		fprintf(stderr, "kafka_consume_all: out of memory\n");
		free(recs);
		return NULL;
	}
	rk = kc_new(RD_KAFKA_CONSUMER, rd_kafka_conf_new(), kv, errstr, sizeof errstr);
	if (!rk) {
		fprintf(stderr, "kafka_consume_all: %s\n", errstr);
		kafka_recs_free(recs);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk); /* client errors come through consumer_poll too */
	if (!kc_assign_all(rk, topic)) {
		kafka_recs_free(recs);
		recs = NULL;
		goto out;
	}
	for (;;) {
		int64_t now = test_now_ms();
		rd_kafka_message_t *rkm;

		if (now - start >= max_ms || (recs->n >= expect && now - last >= idle_ms))
			break;
		rkm = rd_kafka_consumer_poll(rk, KC_POLL_MS);
		if (!rkm)
			continue;
		if (rkm->err) {
			/* In-band and transient (a broker coming and going): report, go on. */
			fprintf(stderr, "kafka_consume_all: %s: %s\n", topic, rd_kafka_message_errstr(rkm));
		} else if (!kc_recs_add(recs, rkm)) {
			fprintf(stderr, "kafka_consume_all: out of memory after %zu records\n", recs->n);
			rd_kafka_message_destroy(rkm);
			kafka_recs_free(recs);
			recs = NULL;
			goto out;
		} else {
			last = test_now_ms();
		}
		rd_kafka_message_destroy(rkm);
	}
out:
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return recs;
}

void kafka_recs_free(struct kafka_recs *recs)
{
	if (!recs)
		return;
	for (size_t i = 0; i < recs->n; i++)
		kc_msg_fini(&recs->msgs[i]);
	free(recs->msgs);
	free(recs->topic);
	free(recs);
}

const struct kafka_hdr *kafka_msg_header(const struct kafka_msg *m, const char *name)
{
	for (size_t h = 0; h < m->header_cnt; h++)
		if (strcmp(m->headers[h].name, name) == 0)
			return &m->headers[h];
	return NULL;
}

int64_t kafka_committed(const char *bootstrap, const char *group, const char *topic, int32_t partition)
{
	const char *const kv[] = {
		"bootstrap.servers", bootstrap,
		"group.id", group,
		"enable.auto.commit", "false",
		"log.connection.close", "false",
		NULL,
	};
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	char errstr[512];
	int64_t off = KAFKA_OFFSET_ERROR;
	rd_kafka_t *rk = kc_new(RD_KAFKA_CONSUMER, rd_kafka_conf_new(), kv, errstr, sizeof errstr);

	if (!rk) {
		fprintf(stderr, "kafka_committed: %s\n", errstr);
		return KAFKA_OFFSET_ERROR;
	}
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition);
	err = rd_kafka_committed(rk, parts, KC_COMMITTED_TIMEOUT_MS);
	if (!err)
		err = parts->elems[0].err;
	if (err)
		fprintf(stderr, "kafka_committed: %s %s [%d]: %s\n", group, topic, (int)partition,
			rd_kafka_err2str(err));
	else
		off = parts->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return off;
}
