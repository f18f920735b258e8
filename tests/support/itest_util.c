/*
 * itest_util.c - shared parts of the integration tests (itest_util.h).
 *
 * The stream model: event seq is the seq-th good event produced; its id is
 * the one payload_text() derives from seq, so a reply's "in_reply_to"
 * names its event exactly. Phones are numbered; their digits are a fixed
 * permutation of the index, so every run produces the same bytes.
 * Output checks parse reply and dead-letter values with json-c and read the
 * worker's JSON log lines; they never use worker/ or common/ code.
 * Owns: the stream arrays, the producer thread of an itest_producer.
 */
#include "itest_util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>

#include "kafka_mock.h"
#include "payloads.h"
#include "redis_server.h"
#include "test_clock.h"

#ifndef WB_WORKER_BIN
#error "WB_WORKER_BIN must name the wabot-worker binary (set by CMakeLists.txt)"
#endif

#define ITEST_PAYLOAD_CAP 2048
#define ITEST_META_ID_PREFIX "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgU"
#define ITEST_ACS_ID_SUFFIX "-1f2e-4d3c-8b4a-59687a6b7c8d"

/* --- small helpers ----------------------------------------------------- */

static uint64_t it_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Appends a line to buf (cap bytes, NUL-terminated), as long as it fits. */
__attribute__((format(printf, 3, 4)))
static void it_note(char *buf, size_t cap, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	if (!buf || !cap)
		return;
	len = strlen(buf);
	if (len + 2 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
	len = strlen(buf);
	if (len + 1 < cap && (len == 0 || buf[len - 1] != '\n')) {
		buf[len] = '\n';
		buf[len + 1] = '\0';
	}
}

__attribute__((format(printf, 2, 3)))
static char *it_fmt(size_t *len, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if (len)
		*len = (size_t)n;
	return s;
}

/* --- the stream -------------------------------------------------------- */

/* ACS Event Grid text message from digits with id seq-derived and the
 * given raw JSON for "from" and "content" (for the malformed ones). */
static char *it_acs(size_t *len, const char *from_json, const char *content_json, uint64_t seq)
{
	return it_fmt(len,
		      "[{\"id\":\"%08llx-1f2e-4d3c-8b4a-59687a6b7c8d\",\"topic\":\"/subscriptions/x/resourceGroups/rg/"
		      "providers/Microsoft.Communication/communicationServices/acs\",\"subject\":\"advancedMessage/"
		      "sender/x/recipient/2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"data\":{\"channelType\":"
		      "\"whatsapp\"%s%s,\"to\":\"2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"receivedTimestamp\":"
		      "\"2026-11-20T14:03:11+00:00\",\"messageId\":\"4a3769ff-6d2c-4a8e-9c1e-%012llx\","
		      "\"messageType\":\"text\",\"content\":%s},\"eventType\":"
		      "\"Microsoft.Communication.AdvancedMessageReceived\",\"dataVersion\":\"1.0\","
		      "\"metadataVersion\":\"1\",\"eventTime\":\"2026-11-20T14:03:12.4817733Z\"}]",
		      (unsigned long long)seq, from_json ? ",\"from\":" : "", from_json ? from_json : "",
		      (unsigned long long)seq, content_json);
}

/* Meta webhook with the given raw JSON as the message's "from" and text. */
static char *it_meta(size_t *len, const char *from_json, const char *text_json, uint64_t seq)
{
	return it_fmt(len,
		      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102938475610293\",\"changes\":"
		      "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
		      "\"573209990001\",\"phone_number_id\":\"109283746501928\"},\"messages\":[{\"from\":%s,"
		      "\"id\":\"wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgU%016llx\",\"timestamp\":\"1795183391\",\"text\":"
		      "{\"body\":%s},\"type\":\"text\"}]},\"field\":\"messages\"}]}]}",
		      from_json, (unsigned long long)seq, text_json);
}

/* The malformed records; their seqs (ids) lie far above any good event's. */
static bool it_make_bad(struct itest_stream *s)
{
	enum { NBAD = 21 };
	const uint64_t base = UINT64_C(0x7000000);
	struct itest_bad *bad = calloc(NBAD, sizeof(*bad));
	char from[40], *deep, *longtext;
	size_t b = 0, i;
	bool ok = true;

	if (!bad)
		return false;
	s->bad = bad;
#define PHONE_OF(b) ((int)(((b) * 37u + 5u) % s->nphones))
#define ADD(nm, rsn, ph, expr)                                                                                         \
	do {                                                                                                           \
		bad[b].name = (nm);                                                                                    \
		bad[b].reason = (rsn);                                                                                 \
		bad[b].phone = (ph);                                                                                   \
		snprintf(from, sizeof from, "\"%s\"", bad[b].phone >= 0 ? s->digits[bad[b].phone] : "573000000000"); \
		bad[b].value = (expr);                                                                                 \
		if (!bad[b].value && strcmp((nm), "tombstone") != 0)                                                   \
			ok = false;                                                                                    \
		b++;                                                                                                   \
	} while (0)

	ADD("not JSON", "invalid_json", PHONE_OF(b), it_fmt(&bad[b].len, "this is not json"));
	ADD("truncated JSON", "invalid_json", PHONE_OF(b),
	    it_fmt(&bad[b].len, "[{\"id\":\"0700000b-1f2e-4d3c-8b4a-59687a6b7c8d\",\"data\":{\"from\":\"57"));
	ADD("trailing garbage", "invalid_json", PHONE_OF(b), it_fmt(&bad[b].len, "{\"object\":\"x\"}}"));
	ADD("empty value", "empty", PHONE_OF(b), it_fmt(&bad[b].len, "%s", ""));
	ADD("tombstone", "empty", PHONE_OF(b), NULL);
	ADD("invalid UTF-8 in the text", "invalid_utf8", PHONE_OF(b),
	    it_acs(&bad[b].len, from, "\"Hola \xff\xfe donar\"", base + b));
	ADD("invalid UTF-8, raw bytes", "invalid_json", PHONE_OF(b), it_fmt(&bad[b].len, "\xc3\x28\xa0\xa1\xf0\x28"));
	ADD("overlong UTF-8 encoding", "invalid_utf8", PHONE_OF(b),
	    it_meta(&bad[b].len, from, "\"hola \xc0\xaf\"", base + b));
	ADD("a JSON number", "not_object", PHONE_OF(b), it_fmt(&bad[b].len, "42"));
	ADD("a JSON string", "not_object", PHONE_OF(b), it_fmt(&bad[b].len, "\"hola\""));
	ADD("an unknown envelope", "unknown_envelope", PHONE_OF(b), it_fmt(&bad[b].len, "{\"hello\":\"world\"}"));
	ADD("ACS sender as a number", "wrong_type", PHONE_OF(b), it_acs(&bad[b].len, "573001234567", "\"hola\"", base + b));
	ADD("Meta sender as an object", "wrong_type", PHONE_OF(b), it_meta(&bad[b].len, "{\"n\":1}", "\"hola\"", base + b));
	ADD("Meta sender as an array", "wrong_type", PHONE_OF(b), it_meta(&bad[b].len, "[57]", "\"si\"", base + b));
	ADD("ACS without sender", "no_sender", PHONE_OF(b), it_acs(&bad[b].len, NULL, "\"hola\"", base + b));
	ADD("ACS id as a number", "wrong_type", PHONE_OF(b),
	    it_fmt(&bad[b].len,
		   "[{\"id\":7,\"data\":{\"from\":%s,\"to\":\"x\",\"messageType\":\"text\",\"content\":\"si\"},"
		   "\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\"}]",
		   from));
	deep = malloc(2 * 40 + 1);
	if (deep) {
		for (i = 0; i < 40; i++) {
			deep[i] = '[';
			deep[40 + i] = ']';
		}
		deep[80] = '\0';
	}
	ADD("nested 40 deep", "too_deep", PHONE_OF(b), deep ? it_fmt(&bad[b].len, "%s", deep) : NULL);
	free(deep);
	longtext = malloc(70 * 1024 + 3);
	if (longtext) {
		longtext[0] = '"';
		memset(longtext + 1, 'a', 70 * 1024);
		longtext[70 * 1024 + 1] = '"';
		longtext[70 * 1024 + 2] = '\0';
	}
	ADD("a 70 KiB text", "text_too_long", PHONE_OF(b),
	    longtext ? it_acs(&bad[b].len, from, longtext, base + b) : NULL);
	free(longtext);
	ADD("a NUL byte inside", "invalid_json", PHONE_OF(b), it_fmt(&bad[b].len, "{\"object\":\"wh"));
	if (bad[b - 1].value) {
		/* {"object":"wh\0atsapp"}: splice a NUL in */
		char *v = realloc(bad[b - 1].value, bad[b - 1].len + 12);

		if (v) {
			memcpy(v + bad[b - 1].len, "\0atsapp\"}", 10);
			bad[b - 1].value = v;
			bad[b - 1].len += 9;
		} else {
			ok = false;
		}
	}
	ADD("not JSON, no key", "invalid_json", -1, it_fmt(&bad[b].len, "no key and no json"));
	ADD("unknown envelope, no key", "unknown_envelope", -1, it_fmt(&bad[b].len, "{\"k\":[1,2,3]}"));
#undef ADD
#undef PHONE_OF
	s->nbad = b;
	return ok && b == NBAD;
}

struct itest_stream *itest_stream_new(uint32_t nphones, size_t n, uint64_t seed, bool with_bad)
{
	struct itest_stream *s = calloc(1, sizeof(*s));
	uint64_t r = seed ? seed : 0x2545F4914F6CDD1Dull;
	size_t i;

	if (!s || nphones == 0)
		goto fail;
	s->nphones = nphones;
	s->n = n;
	s->digits = calloc(nphones, sizeof(*s->digits));
	s->key = calloc(nphones, sizeof(*s->key));
	s->count = calloc(nphones, sizeof(*s->count));
	s->ev = calloc(n ? n : 1, sizeof(*s->ev));
	if (!s->digits || !s->key || !s->count || !s->ev)
		goto fail;
	for (uint32_t p = 0; p < nphones; p++) {
		/* 7919 is prime, so p -> p * 7919 mod 1e8 is one-to-one */
		snprintf(s->digits[p], sizeof s->digits[p], "5731%08u",
			 (unsigned)(((uint64_t)p * 7919u + 1234567u) % 100000000u));
		snprintf(s->key[p], sizeof s->key[p], "+%s", s->digits[p]);
	}
	for (i = 0; i < n; i++) {
		uint32_t p = i < nphones ? (uint32_t)i : (uint32_t)(it_rand(&r) % nphones);

		s->ev[i].phone = p;
		s->ev[i].k = s->count[p]++;
		s->ev[i].meta = (int)(it_rand(&r) & 1);
	}
	if (with_bad && !it_make_bad(s))
		goto fail;
	return s;
fail:
	itest_stream_destroy(s);
	return NULL;
}

void itest_stream_destroy(struct itest_stream *s)
{
	if (!s)
		return;
	for (size_t b = 0; b < s->nbad; b++)
		free(s->bad[b].value);
	free(s->bad);
	free(s->digits);
	free(s->key);
	free(s->count);
	free(s->ev);
	free(s);
}

void itest_event_id(const struct itest_stream *s, size_t seq, char *buf, size_t cap)
{
	if (s->ev[seq].meta)
		snprintf(buf, cap, ITEST_META_ID_PREFIX "%016llx", (unsigned long long)seq);
	else
		snprintf(buf, cap, "%08llx" ITEST_ACS_ID_SUFFIX, (unsigned long long)seq);
}

/* The seq an event id names (payload_text's two formats), or -1. */
static int64_t it_seq_of_id(const char *id)
{
	size_t len = strlen(id), pl = strlen(ITEST_META_ID_PREFIX), sl = strlen(ITEST_ACS_ID_SUFFIX);
	char hex[17], *end;
	unsigned long long v;

	if (len == pl + 16 && strncmp(id, ITEST_META_ID_PREFIX, pl) == 0) {
		memcpy(hex, id + pl, 16);
		hex[16] = '\0';
	} else if (len == 8 + sl && strcmp(id + 8, ITEST_ACS_ID_SUFFIX) == 0) {
		memcpy(hex, id, 8);
		hex[8] = '\0';
	} else {
		return -1;
	}
	errno = 0;
	v = strtoull(hex, &end, 16);
	if (errno || *end || v > INT64_MAX)
		return -1;
	return (int64_t)v;
}

/* Slot of malformed record b: it goes right before good event slot. */
static size_t it_bad_slot(const struct itest_stream *s, size_t b)
{
	return s->n ? b * s->n / s->nbad : 0;
}

/* Delivery report of itest_produce_big: the error into the opaque. */
static void it_big_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	*(rd_kafka_resp_err_t *)m->_private = m->err;
}

int itest_produce(const char *bootstrap, const struct itest_stream *s, size_t from, size_t to, char *errstr,
		  size_t errsz)
{
	size_t cnt = to > from ? to - from : 0, nb = 0, k = 0, seq, b;
	struct kafka_rec *recs;
	char (*buf)[ITEST_PAYLOAD_CAP];
	int rc = -1;

	for (b = 0; b < s->nbad; b++)
		if (it_bad_slot(s, b) >= from && it_bad_slot(s, b) < to)
			nb++;
	if (cnt + nb == 0)
		return 0;
	recs = calloc(cnt + nb, sizeof(*recs));
	buf = malloc((cnt ? cnt : 1) * sizeof(*buf));
	if (!recs || !buf) {
		snprintf(errstr, errsz, "out of memory");
		goto out;
	}
	b = 0;
	for (seq = from; seq < to; seq++) {
		const struct itest_event *ev = &s->ev[seq];
		int len;

		for (; b < s->nbad; b++) {
			const struct itest_bad *bad = &s->bad[b];

			if (it_bad_slot(s, b) > seq)
				break;
			if (it_bad_slot(s, b) < from)
				continue;
			recs[k].key = bad->phone >= 0 ? s->key[bad->phone] : NULL;
			recs[k].key_len = bad->phone >= 0 ? strlen(s->key[bad->phone]) : 0;
			recs[k].value = bad->value;
			recs[k].value_len = bad->len;
			recs[k].partition = KAFKA_PARTITION_BY_KEY;
			k++;
		}
		len = payload_text(buf[seq - from], ITEST_PAYLOAD_CAP, ev->meta, s->digits[ev->phone], seq,
				   payload_cycle_text[ev->k % 4]);
		if (len < 0 || len >= ITEST_PAYLOAD_CAP) {
			snprintf(errstr, errsz, "payload of event %zu does not fit", seq);
			goto out;
		}
		recs[k].key = s->key[ev->phone];
		recs[k].key_len = strlen(s->key[ev->phone]);
		recs[k].value = buf[seq - from];
		recs[k].value_len = (size_t)len;
		recs[k].partition = KAFKA_PARTITION_BY_KEY;
		k++;
	}
	rc = kafka_produce(bootstrap, ITEST_INBOUND, recs, k, errstr, errsz);
out:
	free(recs);
	free(buf);
	return rc;
}

int itest_produce_big(const char *bootstrap, const char *topic, int32_t partition, const char *key,
		      const void *value, size_t len, char *errstr, size_t errsz)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_resp_err_t err;
	char why[512];
	int rc = -1;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof why) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "message.max.bytes", "8388608", why, sizeof why) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log.connection.close", "false", why, sizeof why) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errsz, "config: %s", why);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, it_big_dr);
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
		snprintf(errstr, errsz, "rd_kafka_new: %s", why);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	{
		rd_kafka_resp_err_t dr = RD_KAFKA_RESP_ERR__IN_PROGRESS;

		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
					RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&dr), RD_KAFKA_V_END);
		if (err) {
			snprintf(errstr, errsz, "produce %zu bytes: %s", len, rd_kafka_err2str(err));
		} else if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(errstr, errsz, "flush: not delivered in 30 s");
		} else if (dr != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(errstr, errsz, "delivery of %zu bytes: %s", len, rd_kafka_err2str(dr));
		} else {
			rc = 0;
		}
		if (rc) {
			rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
			rd_kafka_flush(rk, 1000);
		}
	}
	rd_kafka_destroy(rk);
	return rc;
}

struct itest_producer {
	pthread_t thread;
	char *bootstrap;
	const struct itest_stream *s;
	size_t batch;
	int period_ms;
	atomic_size_t produced;
	int rc;
	char err[512];
};

static void *it_producer_main(void *arg)
{
	struct itest_producer *p = arg;
	size_t from = 0;

	while (from < p->s->n) {
		int64_t t0 = test_now_ms(), left;
		size_t to = from + p->batch < p->s->n ? from + p->batch : p->s->n;

		if (itest_produce(p->bootstrap, p->s, from, to, p->err, sizeof p->err) != 0) {
			p->rc = -1;
			break;
		}
		from = to;
		atomic_store(&p->produced, from);
		left = p->period_ms - (test_now_ms() - t0);
		if (from < p->s->n && left > 0)
			test_sleep_ms((long)left);
	}
	return NULL;
}

struct itest_producer *itest_producer_start(const char *bootstrap, const struct itest_stream *s, size_t batch,
					    int period_ms)
{
	struct itest_producer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->bootstrap = strdup(bootstrap);
	p->s = s;
	p->batch = batch ? batch : 1;
	p->period_ms = period_ms;
	if (!p->bootstrap || pthread_create(&p->thread, NULL, it_producer_main, p) != 0) {
		free(p->bootstrap);
		free(p);
		return NULL;
	}
	return p;
}

size_t itest_producer_produced(struct itest_producer *p)
{
	return atomic_load(&p->produced);
}

int itest_producer_join(struct itest_producer *p, char *errstr, size_t errsz)
{
	int rc;

	if (!p) {
		snprintf(errstr, errsz, "no producer");
		return -1;
	}
	pthread_join(p->thread, NULL);
	rc = p->rc;
	if (rc)
		snprintf(errstr, errsz, "%s", p->err);
	free(p->bootstrap);
	free(p);
	return rc;
}

/* --- workers ----------------------------------------------------------- */

struct worker_proc *itest_worker_start(const char *bootstrap, const char *group, const char *redis_url,
				       const char *log_path, const char *const *extra)
{
	static const char *const pass[] = {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", NULL};
	const char *env[64];
	char *own[10] = {0};
	size_t n = 0, o = 0, i;
	const char *args[] = {"run", NULL};
	struct worker_proc *w;

	own[o] = it_fmt(NULL, "KAFKA_BROKERS=%s", bootstrap);
	env[n++] = own[o++];
	own[o] = it_fmt(NULL, "KAFKA_GROUP_ID=%s", group);
	env[n++] = own[o++];
	if (redis_url) {
		own[o] = it_fmt(NULL, "REDIS_URL=%s", redis_url);
		env[n++] = own[o++];
	}
	env[n++] = "WORKER_THREADS=4";
	env[n++] = getenv("WB_ITEST_KAFKA_DEBUG") ? "LOG_LEVEL=debug" : "LOG_LEVEL=info";
	env[n++] = "HTTP_PORT=0";
	env[n++] = "KAFKA_PROP_session.timeout.ms=6000";
	env[n++] = "KAFKA_PROP_heartbeat.interval.ms=500";
	env[n++] = "KAFKA_PROP_log.connection.close=false";
	/* WB_ITEST_KAFKA_DEBUG=cgrp,... turns on librdkafka's debug contexts
	 * in every worker of a test run (to see a group's joins and commits) */
	if (getenv("WB_ITEST_KAFKA_DEBUG")) {
		own[o] = it_fmt(NULL, "KAFKA_PROP_debug=%s", getenv("WB_ITEST_KAFKA_DEBUG"));
		env[n++] = own[o++];
	}
	for (i = 0; pass[i]; i++) {
		const char *v = getenv(pass[i]);

		if (v) {
			own[o] = it_fmt(NULL, "%s=%s", pass[i], v);
			env[n++] = own[o++];
		}
	}
	/* extra last: the worker's config reads the first of a repeated name
	 * ("first wins, as getenv"), so drop defaults that extra overrides */
	for (i = 0; extra && extra[i] && n < sizeof env / sizeof env[0] - 1; i++) {
		const char *eq = strchr(extra[i], '=');
		size_t nl = eq ? (size_t)(eq - extra[i]) + 1 : strlen(extra[i]);

		for (size_t j = 0; j < n; j++) {
			if (strncmp(env[j], extra[i], nl) == 0) {
				memmove(&env[j], &env[j + 1], (n - j - 1) * sizeof env[0]);
				n--;
				break;
			}
		}
		env[n++] = extra[i];
	}
	env[n] = NULL;
	for (i = 0; i < o; i++)
		if (!own[i])
			goto out_fail;
	w = worker_proc_start(WB_WORKER_BIN, args, env, log_path);
	for (i = 0; i < o; i++)
		free(own[i]);
	return w;
out_fail:
	for (i = 0; i < o; i++)
		free(own[i]);
	return NULL;
}

/* Whole file as a NUL-terminated string (NULL if unreadable). */
static char *it_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t r;

		if (cap - n < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static uint64_t it_json_u64(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

struct itest_worker_stats itest_log_stats(const char *log_path)
{
	struct itest_worker_stats st = {0};
	char *text = it_slurp(log_path, NULL), *line = NULL, *p;
	struct json_object *o;

	if (!text)
		return st;
	for (p = strstr(text, "\"msg\":\"worker stopped\""); p; p = strstr(p + 1, "\"msg\":\"worker stopped\""))
		line = p;
	if (line) {
		char *end;

		while (line > text && line[-1] != '\n')
			line--;
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		o = json_tokener_parse(line);
		if (o) {
			st.found = true;
			st.records = it_json_u64(o, "records");
			st.done = it_json_u64(o, "done");
			st.events = it_json_u64(o, "events");
			st.replies = it_json_u64(o, "replies");
			st.dead_lettered = it_json_u64(o, "dead_lettered");
			st.duplicates = it_json_u64(o, "duplicates");
			st.redone = it_json_u64(o, "redone_after_rebalance");
			st.abandoned = it_json_u64(o, "abandoned");
			st.output_failed = it_json_u64(o, "output_failed");
			st.store_retries = it_json_u64(o, "store_retries");
			st.poison = it_json_u64(o, "poison");
			st.pauses = it_json_u64(o, "pauses");
			st.room_waits = it_json_u64(o, "room_waits");
			st.hold_waits = it_json_u64(o, "hold_waits");
			st.rebalances = it_json_u64(o, "rebalances");
			json_object_put(o);
		}
	}
	free(text);
	return st;
}

size_t itest_log_assignments(const char *log_path)
{
	static const char needle[] = "\"msg\":\"partitions assigned\"";
	char *text = it_slurp(log_path, NULL), *line, *save = NULL;
	size_t n = 0;

	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct json_object *o;

		if (!strstr(line, needle) || !(o = json_tokener_parse(line)))
			continue;
		if (it_json_u64(o, "count") > 0)
			n++;
		json_object_put(o);
	}
	free(text);
	return n;
}

bool itest_log_wait_assignments(const char *log_path, size_t n, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		if (itest_log_assignments(log_path) >= n)
			return true;
		if (test_now_ms() >= deadline)
			return false;
		test_sleep_ms(50);
	}
}

size_t itest_log_count(const char *log_path, const char *needle)
{
	char *text = it_slurp(log_path, NULL), *p;
	size_t n = 0;

	if (!text)
		return 0;
	for (p = strstr(text, needle); p; p = strstr(p + strlen(needle), needle))
		n++;
	free(text);
	return n;
}

bool itest_log_wait(const char *log_path, const char *needle, size_t n, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		if (itest_log_count(log_path, needle) >= n)
			return true;
		if (test_now_ms() >= deadline)
			return false;
		test_sleep_ms(50);
	}
}

void itest_log_tail(const char *log_path, size_t lines)
{
	size_t len = 0, seen = 0;
	char *text = it_slurp(log_path, &len), *p;

	fprintf(stderr, "----- last %zu lines of %s -----\n", lines, log_path);
	if (!text) {
		fprintf(stderr, "(cannot read it)\n");
		return;
	}
	p = text + len;
	if (p > text && p[-1] == '\n')
		p--;
	while (p > text && seen < lines) {
		p--;
		if (*p == '\n')
			seen++;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "%s%s", p, len && text[len - 1] == '\n' ? "" : "\n");
	fprintf(stderr, "----- end of %s -----\n", log_path);
	free(text);
}

size_t itest_log_unexpected(const char *log_path, const char *const *allowed, char *first, size_t cap)
{
	char *text = it_slurp(log_path, NULL), *line, *save = NULL;
	size_t n = 0;

	if (first && cap)
		first[0] = '\0';
	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool ok = false;

		if (!strstr(line, "\"level\":\"error\"") && !strstr(line, "\"level\":\"warn\""))
			continue;
		for (size_t i = 0; allowed && allowed[i] && !ok; i++)
			ok = strstr(line, allowed[i]) != NULL;
		if (ok)
			continue;
		if (n++ == 0 && first && cap)
			snprintf(first, cap, "%s", line);
	}
	free(text);
	return n;
}

/* --- checks ------------------------------------------------------------ */

static const char *it_json_str(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Comparison of reply ids for the distinct count. */
static int it_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t itest_distinct_replies(const struct kafka_recs *recs)
{
	char **ids;
	size_t i, n = 0, distinct = 0;

	if (!recs || recs->n == 0)
		return 0;
	ids = calloc(recs->n, sizeof(*ids));
	if (!ids)
		return 0;
	for (i = 0; i < recs->n; i++) {
		struct json_object *o = recs->msgs[i].value ? json_tokener_parse(recs->msgs[i].value) : NULL;
		const char *id = o ? it_json_str(o, "in_reply_to") : NULL;

		if (id && (ids[n] = strdup(id)) != NULL)
			n++;
		json_object_put(o);
	}
	qsort(ids, n, sizeof(*ids), it_cmp_str);
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
			distinct++;
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return distinct;
}

struct kafka_recs *itest_wait_replies(const char *bootstrap, size_t want, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;
	size_t expect = want;

	for (;;) {
		int64_t left = deadline - test_now_ms();
		struct kafka_recs *r = kafka_consume_all(bootstrap, ITEST_OUTBOUND, expect, 300,
							 left > 1000 ? (int)left : 1000);
		size_t d;

		if (!r)
			return NULL;
		d = itest_distinct_replies(r);
		if (d >= want || test_now_ms() >= deadline)
			return r;
		/* duplicates filled the count: ask for as many more records as
		 * distinct ids are still missing */
		expect = r->n + (want - d);
		kafka_recs_free(r);
	}
}

/* Per event: what the outbound topic said about it. */
struct it_seen {
	uint32_t copies;
	int32_t partition;
	char step[40];
};

size_t itest_check_replies(const struct itest_stream *s, const struct kafka_recs *out, enum itest_check_mode mode,
			   struct itest_reply_report *rep)
{
	struct it_seen *seen = calloc(s->n ? s->n : 1, sizeof(*seen));
	int32_t *phone_part = malloc(s->nphones * sizeof(*phone_part));
	uint32_t *next_k = calloc(s->nphones, sizeof(*next_k)); /* first occurrences so far, per phone */
	int64_t *last_k = malloc(s->nphones * sizeof(*last_k));
	size_t i;

	memset(rep, 0, sizeof(*rep));
	rep->bad_phone = -1;
	if (!seen || !phone_part || !next_k || !last_k) {
		it_note(rep->first, sizeof rep->first, "out of memory");
		rep->problems = 1;
		goto out;
	}
	for (i = 0; i < s->nphones; i++) {
		phone_part[i] = -1;
		last_k[i] = -1;
	}
	rep->records = out ? out->n : 0;
	for (i = 0; out && i < out->n; i++) {
		const struct kafka_msg *m = &out->msgs[i];
		struct json_object *o = m->value ? json_tokener_parse(m->value) : NULL;
		const char *rid = o ? it_json_str(o, "reply_id") : NULL, *irt = o ? it_json_str(o, "in_reply_to") : NULL,
			   *phone = o ? it_json_str(o, "phone") : NULL, *step = o ? it_json_str(o, "conversation_step") : NULL;
		int64_t seq = irt ? it_seq_of_id(irt) : -1;
		const struct itest_event *ev;
		char id[80], want_rid[96];

		if (!rid || !irt || !phone || !step) {
			rep->problems++;
			it_note(rep->first, sizeof rep->first,
				"outbound p%d@%lld: not a reply envelope (reply_id, in_reply_to, phone, "
				"conversation_step)",
				(int)m->partition, (long long)m->offset);
			goto next;
		}
		if (seq < 0 || (size_t)seq >= s->n) {
			rep->problems++;
			it_note(rep->first, sizeof rep->first, "outbound p%d@%lld: reply to an event never produced (%.60s)",
				(int)m->partition, (long long)m->offset, irt);
			goto next;
		}
		ev = &s->ev[seq];
		itest_event_id(s, (size_t)seq, id, sizeof id);
		snprintf(want_rid, sizeof want_rid, "%s:0", id);
		if (mode == ITEST_RELAXED && strcmp(id, irt) == 0 && strncmp(rid, want_rid, strlen(id) + 1) == 0 &&
		    strcmp(rid, want_rid) != 0 && strspn(rid + strlen(id) + 1, "0123456789") == strlen(rid) - strlen(id) - 1) {
			/* a conversation started afresh may answer with more than
			 * one reply: only the first (":0") is followed */
			rep->extra++;
			goto next;
		}
		if (strcmp(id, irt) != 0 || strcmp(rid, want_rid) != 0) {
			rep->problems++;
			if (rep->bad_phone < 0)
				rep->bad_phone = ev->phone;
			it_note(rep->first, sizeof rep->first,
				"outbound p%d@%lld: event %lld: in_reply_to %.60s / reply_id %.64s, expected %s / %s",
				(int)m->partition, (long long)m->offset, (long long)seq, irt, rid, id, want_rid);
			goto next;
		}
		if (strcmp(phone, s->key[ev->phone]) != 0 || !m->key || m->key_len != strlen(s->key[ev->phone]) ||
		    memcmp(m->key, s->key[ev->phone], m->key_len) != 0) {
			rep->problems++;
			it_note(rep->first, sizeof rep->first,
				"outbound p%d@%lld: event %lld: key or \"phone\" is not phone #%u's", (int)m->partition,
				(long long)m->offset, (long long)seq, ev->phone);
		}
		if (phone_part[ev->phone] < 0) {
			phone_part[ev->phone] = m->partition;
		} else if (phone_part[ev->phone] != m->partition) {
			rep->problems++;
			it_note(rep->first, sizeof rep->first, "phone #%u: replies in partitions %d and %d", ev->phone,
				(int)phone_part[ev->phone], (int)m->partition);
		}
		if (seen[seq].copies++ > 0) {
			rep->duplicates++;
			if (strcmp(seen[seq].step, step) != 0) {
				rep->problems++;
				if (rep->bad_phone < 0)
					rep->bad_phone = ev->phone;
				it_note(rep->first, sizeof rep->first,
					"event %lld (phone #%u, k=%u): reply %s re-emitted with step %.40s, first %s",
					(long long)seq, ev->phone, ev->k, rid, step, seen[seq].step);
			}
			goto next;
		}
		/* first occurrence */
		rep->distinct++;
		seen[seq].partition = m->partition;
		snprintf(seen[seq].step, sizeof seen[seq].step, "%s", step);
		if ((int64_t)ev->k <= last_k[ev->phone]) {
			rep->problems++;
			if (rep->bad_phone < 0)
				rep->bad_phone = ev->phone;
			it_note(rep->first, sizeof rep->first,
				"phone #%u: reply to its event k=%u (seq %lld) came after the reply to k=%lld",
				ev->phone, ev->k, (long long)seq, (long long)last_k[ev->phone]);
		} else {
			last_k[ev->phone] = ev->k;
		}
		next_k[ev->phone]++;
		if (mode == ITEST_STRICT && strcmp(step, payload_cycle_step[ev->k % 4]) != 0) {
			rep->problems++;
			if (rep->bad_phone < 0)
				rep->bad_phone = ev->phone;
			it_note(rep->first, sizeof rep->first,
				"phone #%u: event k=%u (seq %lld) got step %.40s, the cycle says %s", ev->phone, ev->k,
				(long long)seq, step, payload_cycle_step[ev->k % 4]);
		}
next:
		json_object_put(o);
	}
	for (i = 0; i < s->n; i++) {
		if (seen[i].copies == 0) {
			if (rep->missing++ < 5)
				it_note(rep->first, sizeof rep->first, "event %zu (phone #%u, k=%u, %s) has no reply", i,
					s->ev[i].phone, s->ev[i].k, s->ev[i].meta ? "meta" : "acs");
		}
	}
	if (rep->missing > 5)
		it_note(rep->first, sizeof rep->first, "... %zu events without a reply in all", rep->missing);
	rep->problems += rep->missing;
out:
	free(seen);
	free(phone_part);
	free(next_k);
	free(last_k);
	return rep->problems;
}

void itest_phone_history(const struct itest_stream *s, const struct kafka_recs *out, uint32_t phone, char *buf,
			 size_t cap)
{
	if (buf && cap)
		buf[0] = '\0';
	if (phone >= s->nphones)
		return;
	it_note(buf, cap, "phone #%u, replies in topic order:", phone);
	for (size_t i = 0; out && i < out->n; i++) {
		const struct kafka_msg *m = &out->msgs[i];
		struct json_object *o;
		const char *irt, *rid, *step;
		int64_t seq;

		if (!m->key || m->key_len != strlen(s->key[phone]) || memcmp(m->key, s->key[phone], m->key_len) != 0)
			continue;
		o = m->value ? json_tokener_parse(m->value) : NULL;
		irt = o ? it_json_str(o, "in_reply_to") : NULL;
		rid = o ? it_json_str(o, "reply_id") : NULL;
		step = o ? it_json_str(o, "conversation_step") : NULL;
		seq = irt ? it_seq_of_id(irt) : -1;
		it_note(buf, cap, "  p%d@%lld t=%lld seq %lld k=%lld reply %s step %s", (int)m->partition,
			(long long)m->offset, (long long)m->timestamp_ms, (long long)seq,
			seq >= 0 && (size_t)seq < s->n ? (long long)s->ev[seq].k : -1LL,
			rid && strrchr(rid, ':') ? strrchr(rid, ':') : "?", step ? step : "?");
		json_object_put(o);
	}
	it_note(buf, cap, "phone #%u, events:", phone);
	for (size_t i = 0; i < s->n; i++)
		if (s->ev[i].phone == phone)
			it_note(buf, cap, "  seq %zu k=%u \"%s\"", i, s->ev[i].k, payload_cycle_text[s->ev[i].k % 4]);
}

void itest_missing_by_partition(const struct itest_stream *s, const struct kafka_recs *in, const struct kafka_recs *out,
				char *buf, size_t cap)
{
	int32_t *part = malloc(s->nphones * sizeof(*part));
	bool *answered = calloc(s->n ? s->n : 1, sizeof(*answered));
	size_t missing[ITEST_INBOUND_PARTITIONS + 1] = {0};
	size_t i;

	if (buf && cap)
		buf[0] = '\0';
	if (!part || !answered)
		goto out;
	for (i = 0; i < s->nphones; i++)
		part[i] = -1;
	for (i = 0; in && i < in->n; i++) {
		const struct kafka_msg *m = &in->msgs[i];

		for (uint32_t p = 0; m->key && p < s->nphones; p++) {
			if (m->key_len == strlen(s->key[p]) && memcmp(m->key, s->key[p], m->key_len) == 0) {
				part[p] = m->partition;
				break;
			}
		}
	}
	for (i = 0; out && i < out->n; i++) {
		struct json_object *o = out->msgs[i].value ? json_tokener_parse(out->msgs[i].value) : NULL;
		const char *irt = o ? it_json_str(o, "in_reply_to") : NULL;
		int64_t seq = irt ? it_seq_of_id(irt) : -1;

		if (seq >= 0 && (size_t)seq < s->n)
			answered[seq] = true;
		json_object_put(o);
	}
	for (i = 0; i < s->n; i++) {
		int32_t p = part[s->ev[i].phone];

		if (!answered[i])
			missing[p >= 0 && p < ITEST_INBOUND_PARTITIONS ? p : ITEST_INBOUND_PARTITIONS]++;
	}
	for (int p = 0; p <= ITEST_INBOUND_PARTITIONS; p++)
		if (missing[p])
			it_note(buf, cap, "inbound partition %s%d: %zu events without a reply",
				p == ITEST_INBOUND_PARTITIONS ? "(unknown) " : "", p, missing[p]);
out:
	free(part);
	free(answered);
}

/* hdr as a NUL-terminated string, or NULL. */
static const char *it_hdr(const struct kafka_msg *m, const char *name)
{
	const struct kafka_hdr *h = kafka_msg_header(m, name);

	return h && h->value ? h->value : NULL;
}

/* true when the dead letter's payload field carries exactly len bytes at v. */
static bool it_payload_matches(struct json_object *o, const char *v, size_t len)
{
	struct json_object *p;

	if (json_object_object_get_ex(o, "payload", &p) && json_object_is_type(p, json_type_string))
		return (size_t)json_object_get_string_len(p) == len &&
		       (len == 0 || memcmp(json_object_get_string(p), v, len) == 0);
	if (json_object_object_get_ex(o, "payload_base64", &p) && json_object_is_type(p, json_type_string)) {
		const char *b64 = json_object_get_string(p);
		size_t blen = (size_t)json_object_get_string_len(p), pad = 0, dlen;
		unsigned char *dec;
		bool same;

		if (blen % 4 != 0)
			return false;
		dec = malloc(blen / 4 * 3 + 1);
		if (!dec)
			return false;
		if (EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)blen) < 0) {
			free(dec);
			return false;
		}
		while (pad < 2 && blen > pad && b64[blen - 1 - pad] == '=')
			pad++;
		dlen = blen / 4 * 3 - pad;
		same = dlen == len && (len == 0 || memcmp(dec, v, len) == 0);
		free(dec);
		return same;
	}
	return false;
}

size_t itest_check_dlq(const struct itest_stream *s, const struct kafka_recs *in, const struct kafka_recs *dlq,
		       const char *group, bool exactly_once, char *first, size_t cap)
{
	size_t problems = 0, b, i;
	const struct kafka_msg **src = calloc(s->nbad ? s->nbad : 1, sizeof(*src));
	size_t *copies = calloc(s->nbad ? s->nbad : 1, sizeof(*copies));

	if (first && cap)
		first[0] = '\0';
	if (!src || !copies) {
		it_note(first, cap, "out of memory");
		free(src);
		free(copies);
		return 1;
	}
	/* find every malformed record in the inbound topic */
	for (b = 0; b < s->nbad; b++) {
		const struct itest_bad *bad = &s->bad[b];
		const char *key = bad->phone >= 0 ? s->key[bad->phone] : NULL;

		for (i = 0; in && i < in->n && !src[b]; i++) {
			const struct kafka_msg *m = &in->msgs[i];

			if ((key == NULL) != (m->key == NULL))
				continue;
			if (key && (m->key_len != strlen(key) || memcmp(m->key, key, m->key_len) != 0))
				continue;
			if ((bad->value == NULL) != (m->value == NULL))
				continue;
			if (bad->value && (m->value_len != bad->len || memcmp(m->value, bad->value, bad->len) != 0))
				continue;
			src[b] = m;
		}
		if (!src[b]) {
			problems++;
			it_note(first, cap, "malformed record \"%s\" is not in the inbound topic (test bug?)", bad->name);
		}
	}
	for (i = 0; dlq && i < dlq->n; i++) {
		const struct kafka_msg *d = &dlq->msgs[i];
		const char *h_reason = it_hdr(d, "reason"), *h_topic = it_hdr(d, "source_topic"),
			   *h_part = it_hdr(d, "source_partition"), *h_off = it_hdr(d, "source_offset"),
			   *h_group = it_hdr(d, "consumer_group"), *h_att = it_hdr(d, "attempts");
		struct json_object *o = d->value ? json_tokener_parse(d->value) : NULL;
		const char *v_reason = o ? it_json_str(o, "reason") : NULL;
		const struct itest_bad *bad = NULL;
		const struct kafka_msg *m = NULL;

		for (b = 0; b < s->nbad && h_part && h_off; b++) {
			if (src[b] && src[b]->partition == atoi(h_part) && src[b]->offset == atoll(h_off)) {
				bad = &s->bad[b];
				m = src[b];
				break;
			}
		}
		if (!bad) {
			problems++;
			it_note(first, cap,
				"DLQ p%d@%lld: not one of the malformed records: source %s[%s]@%s, reason %s "
				"(a good event dead-lettered?)",
				(int)d->partition, (long long)d->offset, h_topic ? h_topic : "?", h_part ? h_part : "?",
				h_off ? h_off : "?", h_reason ? h_reason : "?");
			goto next;
		}
		if (copies[b]++ > 0 && exactly_once) {
			problems++;
			it_note(first, cap, "malformed record \"%s\" is in the DLQ %zu times", bad->name, copies[b]);
		}
		if (!h_reason || !v_reason || strcmp(h_reason, v_reason) != 0 || strcmp(h_reason, bad->reason) != 0) {
			problems++;
			it_note(first, cap, "\"%s\": reason header %s, value reason %s, expected %s", bad->name,
				h_reason ? h_reason : "(none)", v_reason ? v_reason : "(none)", bad->reason);
		}
		if (!h_topic || strcmp(h_topic, ITEST_INBOUND) != 0 || !h_group || strcmp(h_group, group) != 0) {
			problems++;
			it_note(first, cap, "\"%s\": source_topic %s, consumer_group %s (expected %s, %s)", bad->name,
				h_topic ? h_topic : "(none)", h_group ? h_group : "(none)", ITEST_INBOUND, group);
		}
		if (!h_att || atoi(h_att) < 1) {
			problems++;
			it_note(first, cap, "\"%s\": attempts header %s", bad->name, h_att ? h_att : "(none)");
		}
		if (!m->key && d->key && d->key_len > 0) {
			problems++;
			it_note(first, cap, "\"%s\": the record had no key, its dead letter has one", bad->name);
		} else if (m->key && (!d->key || d->key_len != m->key_len || memcmp(d->key, m->key, m->key_len) != 0)) {
			problems++;
			it_note(first, cap, "\"%s\": the dead letter's key is not the record's", bad->name);
		}
		if (!o || !it_payload_matches(o, m->value ? m->value : "", m->value ? m->value_len : 0)) {
			problems++;
			it_note(first, cap, "\"%s\": the dead letter does not carry the original %zu bytes", bad->name,
				m->value_len);
		}
next:
		json_object_put(o);
	}
	for (b = 0; b < s->nbad; b++) {
		if (src[b] && copies[b] == 0) {
			problems++;
			it_note(first, cap, "malformed record \"%s\" (p%d@%lld) is not in the DLQ", s->bad[b].name,
				(int)src[b]->partition, (long long)src[b]->offset);
		}
	}
	free(src);
	free(copies);
	return problems;
}

void itest_high_watermarks(const struct kafka_recs *in, int64_t hwm[ITEST_INBOUND_PARTITIONS])
{
	for (int p = 0; p < ITEST_INBOUND_PARTITIONS; p++)
		hwm[p] = 0;
	for (size_t i = 0; in && i < in->n; i++) {
		const struct kafka_msg *m = &in->msgs[i];

		if (m->partition >= 0 && m->partition < ITEST_INBOUND_PARTITIONS && m->offset + 1 > hwm[m->partition])
			hwm[m->partition] = m->offset + 1;
	}
}

size_t itest_wait_committed(const char *bootstrap, const char *group, const int64_t hwm[ITEST_INBOUND_PARTITIONS],
			    int timeout_ms, char *first, size_t cap)
{
	int64_t deadline = test_now_ms() + timeout_ms;
	bool ok[ITEST_INBOUND_PARTITIONS] = {false};
	int64_t got[ITEST_INBOUND_PARTITIONS];

	for (;;) {
		size_t bad = 0;

		for (int p = 0; p < ITEST_INBOUND_PARTITIONS; p++) {
			if (ok[p])
				continue;
			got[p] = kafka_committed(bootstrap, group, ITEST_INBOUND, p);
			ok[p] = got[p] == hwm[p] || (hwm[p] == 0 && got[p] == KAFKA_OFFSET_NONE);
			bad += !ok[p];
		}
		if (bad == 0 || test_now_ms() >= deadline) {
			if (first && cap)
				first[0] = '\0';
			for (int p = 0; p < ITEST_INBOUND_PARTITIONS; p++)
				if (!ok[p])
					it_note(first, cap, "partition %d: committed %lld, high watermark %lld", p,
						(long long)got[p], (long long)hwm[p]);
			return bad;
		}
		test_sleep_ms(250);
	}
}

/* --- scratch directory ------------------------------------------------- */

char *itest_dir_new(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *path = it_fmt(NULL, "%s/wb-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);

	if (path && !mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

char *itest_dir_path(const char *dir, const char *name)
{
	return it_fmt(NULL, "%s/%s", dir, name);
}

void itest_dir_remove(char *dir)
{
	DIR *d;
	struct dirent *e;

	if (!dir)
		return;
	d = opendir(dir);
	while (d && (e = readdir(d)) != NULL) {
		char *p;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((p = itest_dir_path(dir, e->d_name)) != NULL) {
			unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

/* --- the harness ------------------------------------------------------- */

struct itest_harness *itest_harness_new(const char *tag, bool with_redis)
{
	struct itest_harness *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	snprintf(h->group, sizeof h->group, "itest-%s-%ld", tag, (long)getpid());
	if (!(h->dir = itest_dir_new(tag))) {
		fprintf(stderr, "itest: cannot make a scratch directory: %s\n", strerror(errno));
		goto fail;
	}
	if (!(h->km = kafka_mock_start(ITEST_TOPICS, 1))) {
		fprintf(stderr, "itest: wb-mock-kafka did not start\n");
		goto fail;
	}
	h->bootstrap = kafka_mock_bootstrap(h->km);
	if (with_redis && !(h->rs = redis_server_start(REDIS_SERVER_PLAIN))) {
		fprintf(stderr, "itest: redis-server did not start\n");
		goto fail;
	}
	return h;
fail:
	itest_harness_destroy(h);
	return NULL;
}

int itest_harness_worker(struct itest_harness *h, const char *const *extra)
{
	char name[32];
	int i = h->nw;

	if (i >= ITEST_MAX_WORKERS)
		return -1;
	snprintf(name, sizeof name, "w%d.log", i);
	if (!(h->log[i] = itest_dir_path(h->dir, name)))
		return -1;
	h->w[i] = itest_worker_start(h->bootstrap, h->group, h->rs ? redis_server_url(h->rs) : NULL, h->log[i], extra);
	if (!h->w[i]) {
		free(h->log[i]);
		h->log[i] = NULL;
		return -1;
	}
	h->nw++;
	return i;
}

int itest_harness_stop_worker(struct itest_harness *h, int i, int timeout_ms)
{
	if (i < 0 || i >= h->nw || !h->w[i])
		return -1;
	worker_proc_signal(h->w[i], SIGTERM);
	return worker_proc_wait(h->w[i], timeout_ms);
}

size_t itest_harness_sanitizer_reports(struct itest_harness *h, char *first, size_t cap)
{
	static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
					    "WARNING: ThreadSanitizer", NULL};
	size_t n = 0;

	if (first && cap)
		first[0] = '\0';
	for (int i = 0; i < h->nw; i++) {
		char *text = h->log[i] ? it_slurp(h->log[i], NULL) : NULL;

		for (size_t k = 0; text && marks[k]; k++) {
			char *at = strstr(text, marks[k]), *end;

			if (!at)
				continue;
			if (n++ == 0 && first && cap) {
				while (at > text && at[-1] != '\n')
					at--;
				end = strchr(at, '\n');
				snprintf(first, cap, "worker %d: %.*s", i, end ? (int)(end - at) : (int)strlen(at), at);
			}
			break;
		}
		free(text);
	}
	return n;
}

void itest_harness_dump(struct itest_harness *h)
{
	if (!h)
		return;
	h->failed = true;
	for (int i = 0; i < h->nw; i++)
		if (h->log[i])
			itest_log_tail(h->log[i], 40);
	if (h->rs) {
		char *p = itest_dir_path(redis_server_dir(h->rs), "redis.log");

		if (p)
			itest_log_tail(p, 15);
		free(p);
	}
	fprintf(stderr, "itest: the logs stay in %s\n", h->dir ? h->dir : "(none)");
}

void itest_harness_destroy(struct itest_harness *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nw; i++) {
		worker_proc_destroy(h->w[i]);
		free(h->log[i]);
	}
	redis_server_stop(h->rs);
	if (h->km) {
		int rc = kafka_mock_stop(h->km);

		/* not the code under test, but under ASan a leak shows here */
		if (rc != 0)
			fprintf(stderr, "itest: wb-mock-kafka exited with %d\n", rc);
	}
	if (h->failed || getenv("ITEST_KEEP")) {
		if (!h->failed)
			fprintf(stderr, "itest: ITEST_KEEP: the logs stay in %s\n", h->dir ? h->dir : "(none)");
		free(h->dir);
	} else {
		itest_dir_remove(h->dir);
	}
	free(h);
}

size_t itest_check_inbound_and_dlq(const char *bootstrap, const char *group, const struct itest_stream *s,
				   size_t events, bool dlq_exactly_once, int64_t hwm[ITEST_INBOUND_PARTITIONS],
				   char *first, size_t cap)
{
	struct kafka_recs *in = kafka_consume_all(bootstrap, ITEST_INBOUND, events + s->nbad, 300, 20000);
	struct kafka_recs *dlq;
	size_t problems;

	if (!in || in->n != events + s->nbad) {
		snprintf(first, cap, "inbound topic holds %zu records, %zu produced\n", in ? in->n : 0, events + s->nbad);
		kafka_recs_free(in);
		return 1;
	}
	dlq = kafka_consume_all(bootstrap, ITEST_DLQ, s->nbad, 500, 20000);
	if (!dlq) {
		snprintf(first, cap, "cannot read %s\n", ITEST_DLQ);
		kafka_recs_free(in);
		return 1;
	}
	problems = itest_check_dlq(s, in, dlq, group, dlq_exactly_once, first, cap);
	kafka_recs_free(dlq);
	itest_high_watermarks(in, hwm);
	kafka_recs_free(in);
	return problems;
}
