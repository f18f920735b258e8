/*
 * itest_dlq.c - records too big for a dead letter to carry: a 1.5 MiB ACS
 * event whose text is over the 64 KiB limit, a 2.5 MiB record over the
 * 2 MiB payload limit, and 900 KiB of invalid UTF-8 (whose base64 copy
 * exceeds the producer's 1 MB message limit), in the middle of a stream
 * (one `wabot-worker run`, memory store). Each must reach the DLQ with its
 * reason, key and source headers (with its bytes, or saying that they were
 * omitted), and the stream behind them must go on: every other event
 * answered in order, offsets committed to the end.
 * And a poison event (the store keeps refusing its context): dead-lettered
 * after its attempts, the partition moving on.
 * (The small malformed records are covered by itest_stream.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "itest_util.h"
#include "kafka_client.h"
#include "payloads.h"
#include "redis_server.h"
#include "test_clock.h"

#define EVENTS 400

static struct itest_harness *h;
static struct itest_stream *s;
static char *big[3];

static void teardown(void)
{
	itest_harness_destroy(h);
	itest_stream_destroy(s);
	for (int i = 0; i < 3; i++) {
		free(big[i]);
		big[i] = NULL;
	}
	h = NULL;
	s = NULL;
}

struct big_rec {
	const char *name;
	const char *reason;
	int32_t partition; /* explicit: the mock keeps at most 5 MiB per partition */
	size_t len;
};

Test(itest_dlq, oversized_records_are_dead_lettered_and_the_stream_goes_on, .fini = teardown, .timeout = 180)
{
	struct big_rec br[3] = {
		{"1.5 MiB ACS text", "text_too_long", 0, 0},
		{"2.5 MiB record", "too_big", 1, 0},
		{"900 KiB of invalid UTF-8", "invalid_utf8", 2, 0},
	};
	char err[4096] = "";
	struct itest_reply_report rep;
	struct kafka_recs *out, *in, *dlq;
	int64_t hwm[ITEST_INBOUND_PARTITIONS];
	size_t problems, i;
	int w;

	h = itest_harness_new("dlq-big", false);
	cr_assert_not_null(h, "the mock cluster did not start");
	s = itest_stream_new(40, EVENTS, 0x5eed0008, false);
	cr_assert_not_null(s);

	/* an ACS event whose content is 1.5 MiB of 'a'; 2.5 MiB of 'a'; 900 KiB of 0xff */
	for (i = 0; i < 3; i++) {
		size_t text = i == 0 ? 1536u * 1024u : i == 1 ? 2560u * 1024u : 900u * 1024u;
		const char *head = "[{\"id\":\"0b000001-1f2e-4d3c-8b4a-59687a6b7c8d\",\"eventType\":"
				   "\"Microsoft.Communication.AdvancedMessageReceived\",\"data\":{\"from\":\"";
		const char *mid = "\",\"to\":\"x\",\"messageType\":\"text\",\"content\":\"";
		const char *tail = "\"}}]";
		size_t n = 0;

		big[i] = malloc(text + 512);
		cr_assert_not_null(big[i]);
		n += (size_t)sprintf(big[i] + n, "%s%s%s", head, s->digits[i], mid);
		memset(big[i] + n, i == 2 ? 0xff : 'a', text);
		n += text;
		n += (size_t)sprintf(big[i] + n, "%s", tail);
		br[i].len = n;
	}

	w = itest_harness_worker(h, NULL);
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, EVENTS / 2, err, sizeof err) == 0, "produce: %s", err);
	for (i = 0; i < 3; i++)
		IT_ASSERT(h,
			  itest_produce_big(h->bootstrap, ITEST_INBOUND, br[i].partition, s->key[i], big[i], br[i].len,
					    err, sizeof err) == 0,
			  "produce %s: %s", br[i].name, err);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, EVENTS / 2, EVENTS, err, sizeof err) == 0, "produce: %s", err);

	out = itest_wait_replies(h->bootstrap, EVENTS, 60000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first);

	in = kafka_consume_all(h->bootstrap, ITEST_INBOUND, EVENTS + 3, 300, 20000);
	IT_ASSERT(h, in && in->n == EVENTS + 3, "inbound topic holds %zu records, %d produced", in ? in->n : 0,
		  EVENTS + 3);
	dlq = kafka_consume_all(h->bootstrap, ITEST_DLQ, 3, 1000, 20000);
	IT_ASSERT(h, dlq && dlq->n == 3, "%zu dead letters, expected 3", dlq ? dlq->n : 0);
	for (i = 0; i < 3; i++) {
		const struct kafka_msg *m = NULL, *d = NULL;
		char off[32], part[16];
		struct json_object *o, *v;
		const char *reason = NULL, *error = NULL;
		bool carried = false;

		for (size_t k = 0; k < in->n && !m; k++)
			if (in->msgs[k].partition == br[i].partition && in->msgs[k].value_len == br[i].len)
				m = &in->msgs[k];
		IT_ASSERT(h, m != NULL, "%s is not in the inbound topic", br[i].name);
		snprintf(part, sizeof part, "%d", (int)m->partition);
		snprintf(off, sizeof off, "%lld", (long long)m->offset);
		for (size_t k = 0; k < dlq->n && !d; k++) {
			const struct kafka_hdr *hp = kafka_msg_header(&dlq->msgs[k], "source_partition"),
					       *ho = kafka_msg_header(&dlq->msgs[k], "source_offset");

			if (hp && ho && hp->value && ho->value && strcmp(hp->value, part) == 0 &&
			    strcmp(ho->value, off) == 0)
				d = &dlq->msgs[k];
		}
		IT_ASSERT(h, d != NULL, "%s (p%s@%s) is not in the DLQ", br[i].name, part, off);
		IT_ASSERT(h, d->key && d->key_len == strlen(s->key[i]) && memcmp(d->key, s->key[i], d->key_len) == 0,
			  "%s: the dead letter does not keep the record's key", br[i].name);
		{
			const struct kafka_hdr *hr = kafka_msg_header(d, "reason"), *ht = kafka_msg_header(d, "source_topic"),
					       *hg = kafka_msg_header(d, "consumer_group");

			IT_ASSERT(h, hr && hr->value && strcmp(hr->value, br[i].reason) == 0, "%s: reason header %s, want %s",
				  br[i].name, hr && hr->value ? (const char *)hr->value : "(none)", br[i].reason);
			IT_ASSERT(h, ht && ht->value && strcmp(ht->value, ITEST_INBOUND) == 0 && hg && hg->value &&
					     strcmp(hg->value, h->group) == 0,
				  "%s: source_topic or consumer_group header wrong", br[i].name);
		}
		o = d->value ? json_tokener_parse(d->value) : NULL;
		IT_ASSERT(h, o != NULL, "%s: the dead letter is not JSON", br[i].name);
		if (json_object_object_get_ex(o, "reason", &v))
			reason = json_object_get_string(v);
		if (json_object_object_get_ex(o, "error", &v))
			error = json_object_get_string(v);
		if (json_object_object_get_ex(o, "payload", &v))
			carried = (size_t)json_object_get_string_len(v) == m->value_len &&
				  memcmp(json_object_get_string(v), m->value, m->value_len) == 0;
		cr_log_info("%s: %zu-byte dead letter, reason %s, %s", br[i].name, d->value_len, reason ? reason : "?",
			    carried ? "payload carried" : "payload omitted");
		IT_ASSERT(h, reason && strcmp(reason, br[i].reason) == 0, "%s: value reason %s, want %s", br[i].name,
			  reason ? reason : "(none)", br[i].reason);
		IT_ASSERT(h, carried || (error && strstr(error, "omitted")),
			  "%s: the dead letter neither carries the payload nor says it was omitted (error: %s)",
			  br[i].name, error ? error : "(none)");
		json_object_put(o);
	}
	kafka_recs_free(dlq);
	itest_high_watermarks(in, hwm);
	kafka_recs_free(in);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	IT_ASSERT(h, itest_harness_stop_worker(h, w, 30000) == 0, "the worker did not exit 0 after SIGTERM");
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}

/*
 * A poison event: the store answers but keeps refusing this one context (a
 * planted value that the reader and the compare-and-set script read
 * differently, so every write is a conflict). The worker must give up after EVENT_MAX_ATTEMPTS
 * tries, dead-letter the record (retries_exhausted, with the attempts), and
 * go on: every other event answered in order, offsets committed to the end.
 */
Test(itest_dlq, poison_event_is_dead_lettered_after_its_attempts_and_the_partition_moves_on, .fini = teardown,
     .timeout = 180)
{
	static const char *const env[] = {"EVENT_MAX_ATTEMPTS=3", NULL};
	static const char poison_digits[] = "573200000001"; /* no phone of the stream */
	char err[4096] = "", payload[2048], *planted;
	struct itest_reply_report rep;
	struct kafka_recs *out, *in, *dlq;
	struct itest_worker_stats st;
	int64_t hwm[ITEST_INBOUND_PARTITIONS];
	const struct kafka_msg *src = NULL, *d = NULL;
	size_t problems, i;
	int len, w;

	h = itest_harness_new("dlq-poison", true);
	cr_assert_not_null(h, "the mock cluster or redis-server did not start");
	s = itest_stream_new(40, EVENTS, 0x5eed000a, false);
	cr_assert_not_null(s);
	/* Redis' cjson (the compare-and-set script) takes 0x10, json-c (the
	 * reader) does not: the reader sees no context, the script version 5,
	 * and every write through the script is a conflict (the known gap
	 * documented in common/ctx_redis.c). A worker allowed to WATCH writes
	 * a batch with MULTI/EXEC instead, where the reader's view decides and
	 * the value is simply replaced; so this user may not WATCH, which also
	 * runs the script-only path (an ACL without WATCH) end to end. */
	planted = redis_server_cli(h->rs, "SET", "wabot:ctx:{+573200000001}", "{ \"version\": 5, \"n\": 0x10 }", NULL);
	IT_ASSERT(h, planted && strcmp(planted, "OK") == 0, "SET answered %s", planted ? planted : "(nothing)");
	free(planted);
	planted = redis_server_cli(h->rs, "ACL", "SETUSER", "default", "-watch", NULL);
	IT_ASSERT(h, planted && strcmp(planted, "OK") == 0, "ACL SETUSER answered %s", planted ? planted : "(nothing)");
	free(planted);
	len = payload_text(payload, sizeof payload, 0, poison_digits, 0x6000001, payload_cycle_text[0]);
	IT_ASSERT(h, len > 0 && (size_t)len < sizeof payload, "payload_text");

	w = itest_harness_worker(h, env);
	IT_ASSERT(h, w >= 0, "cannot start the worker");
	IT_ASSERT(h, itest_produce(h->bootstrap, s, 0, EVENTS / 2, err, sizeof err) == 0, "produce: %s", err);
	IT_ASSERT(h,
		  itest_produce_big(h->bootstrap, ITEST_INBOUND, 5, "+573200000001", payload, (size_t)len, err,
				    sizeof err) == 0,
		  "produce the poison event: %s", err);
	IT_ASSERT(h, itest_produce(h->bootstrap, s, EVENTS / 2, EVENTS, err, sizeof err) == 0, "produce: %s", err);

	out = itest_wait_replies(h->bootstrap, EVENTS, 60000);
	IT_ASSERT(h, out != NULL, "cannot read %s", ITEST_OUTBOUND);
	problems = itest_check_replies(s, out, ITEST_STRICT, &rep);
	kafka_recs_free(out);
	IT_ASSERT(h, problems == 0, "%zu problems with the replies (%zu records, %zu distinct, %zu missing):\n%s",
		  problems, rep.records, rep.distinct, rep.missing, rep.first);

	in = kafka_consume_all(h->bootstrap, ITEST_INBOUND, EVENTS + 1, 300, 20000);
	IT_ASSERT(h, in && in->n == EVENTS + 1, "inbound topic holds %zu records, %d produced", in ? in->n : 0,
		  EVENTS + 1);
	for (i = 0; i < in->n && !src; i++)
		if (in->msgs[i].value_len == (size_t)len && memcmp(in->msgs[i].value, payload, (size_t)len) == 0)
			src = &in->msgs[i];
	IT_ASSERT(h, src != NULL, "the poison event is not in the inbound topic");
	dlq = kafka_consume_all(h->bootstrap, ITEST_DLQ, 1, 1000, 30000);
	IT_ASSERT(h, dlq && dlq->n == 1, "%zu dead letters, expected the poison event alone", dlq ? dlq->n : 0);
	d = &dlq->msgs[0];
	{
		const struct kafka_hdr *hr = kafka_msg_header(d, "reason"), *ha = kafka_msg_header(d, "attempts"),
				       *hp = kafka_msg_header(d, "source_partition"),
				       *ho = kafka_msg_header(d, "source_offset");
		char off[32];
		struct json_object *o = d->value ? json_tokener_parse(d->value) : NULL, *v;

		snprintf(off, sizeof off, "%lld", (long long)src->offset);
		IT_ASSERT(h, hr && hr->value && strcmp(hr->value, "retries_exhausted") == 0, "reason header %s",
			  hr && hr->value ? (const char *)hr->value : "(none)");
		IT_ASSERT(h, ha && ha->value && strcmp(ha->value, "3") == 0, "attempts header %s, want 3",
			  ha && ha->value ? (const char *)ha->value : "(none)");
		IT_ASSERT(h, hp && hp->value && atoi(hp->value) == src->partition && ho && ho->value &&
				     strcmp(ho->value, off) == 0,
			  "source headers do not name p%d@%s", (int)src->partition, off);
		IT_ASSERT(h, d->key && d->key_len == 13 && memcmp(d->key, "+573200000001", 13) == 0,
			  "the dead letter does not keep the record's key");
		IT_ASSERT(h, o && json_object_object_get_ex(o, "payload", &v) &&
				     (size_t)json_object_get_string_len(v) == (size_t)len &&
				     memcmp(json_object_get_string(v), payload, (size_t)len) == 0,
			  "the dead letter does not carry the original bytes");
		json_object_put(o);
	}
	kafka_recs_free(dlq);
	itest_high_watermarks(in, hwm);
	kafka_recs_free(in);
	problems = itest_wait_committed(h->bootstrap, h->group, hwm, 20000, err, sizeof err);
	IT_ASSERT(h, problems == 0, "committed offsets short of the high watermark:\n%s", err);
	IT_ASSERT(h, itest_harness_stop_worker(h, w, 30000) == 0, "the worker did not exit 0 after SIGTERM");
	st = itest_log_stats(h->log[w]);
	IT_ASSERT(h, st.found && st.poison == 1 && st.dead_lettered == 1,
		  "final counters: poison %llu, dead_lettered %llu (want 1, 1)", (unsigned long long)st.poison,
		  (unsigned long long)st.dead_lettered);
	IT_ASSERT(h, itest_log_count(h->log[w], "redis refused WATCH") == 1, "no single warning about WATCH");
	IT_ASSERT_NO_SANITIZER_REPORTS(h);
}
