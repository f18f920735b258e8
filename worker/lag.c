/*
 * lag.c - `wabot-worker lag` (lag.h).
 */
#include "lag.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "config.h"
#include "jbuf.h"
#include "kafka.h"
#include "log.h"

#define LAG_DEFAULT_TIMEOUT_MS 10000

static void lag_usage(FILE *f)
{
	fprintf(f, "usage: wabot-worker lag [--json] [--max-lag N] [--timeout-ms MS] [configuration flags]\n"
		   "\n"
		   "Asks the brokers (KAFKA_BROKERS) for the progress of the consumer group\n"
		   "KAFKA_GROUP_ID on INBOUND_TOPIC: per partition the committed offset, the high\n"
		   "watermark, the lag (high - committed; everything retained when the group never\n"
		   "committed) and the member owning it now, then the total. Reads only: it never\n"
		   "joins the group and never commits.\n"
		   "\n"
		   "  --json          one JSON object instead of the table\n"
		   "  --max-lag N     exit 3 when the total lag is above N (for scripts and probes)\n"
		   "  --timeout-ms MS how long each question to the brokers may take (default 10000)\n"
		   "\n"
		   "Exit codes: 0 ok, 3 total lag above --max-lag, 1 Kafka unreachable or the topic\n"
		   "missing, 2 bad usage or configuration.\n\n");
	config_usage(f);
}

/* --- member assignments (Kafka ConsumerProtocolAssignment, big-endian) --- */

struct rd {
	const unsigned char *p;
	size_t left;
};

static bool rd_i16(struct rd *r, int16_t *v)
{
	if (r->left < 2)
		return false;
	*v = (int16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return true;
}

static bool rd_i32(struct rd *r, int32_t *v)
{
	if (r->left < 4)
		return false;
	*v = (int32_t)((uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3]);
	r->p += 4;
	r->left -= 4;
	return true;
}

/* One pass over an assignment; fn NULL: only checks it. */
static int assignment_walk(const void *buf, size_t len, const char *topic, void (*fn)(void *opaque, int32_t partition),
			   void *opaque)
{
	struct rd r = {buf, len};
	size_t tlen = strlen(topic);
	int16_t version, name_len;
	int32_t ntopics, nparts, i, j, part;

	if (!buf || !rd_i16(&r, &version) || version < 0 || !rd_i32(&r, &ntopics) || ntopics < 0)
		return -1;
	for (i = 0; i < ntopics; i++) {
		bool ours;

		if (!rd_i16(&r, &name_len) || name_len < 0 || (size_t)name_len > r.left)
			return -1;
		ours = (size_t)name_len == tlen && memcmp(r.p, topic, tlen) == 0;
		r.p += name_len;
		r.left -= (size_t)name_len;
		/* each partition takes 4 bytes: a count beyond what is left is a lie */
		if (!rd_i32(&r, &nparts) || nparts < 0 || (size_t)nparts > r.left / 4)
			return -1;
		for (j = 0; j < nparts; j++) {
			(void)rd_i32(&r, &part);
			if (ours && fn)
				fn(opaque, part);
		}
	}
	return 0; /* user data may follow; not ours to read */
}

int lag_assignment_partitions(const void *buf, size_t len, const char *topic,
			      void (*fn)(void *opaque, int32_t partition), void *opaque)
{
	/* checked whole first, so a malformed one reports nothing */
	if (assignment_walk(buf, len, topic, NULL, NULL) != 0)
		return -1;
	return assignment_walk(buf, len, topic, fn, opaque);
}

/* --- asking the brokers ---------------------------------------------------- */

int lag_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t *n, char *errstr,
			 size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int i, rc = -2;

	/* all topics: asking for one by name makes some brokers (and the mock)
	 * create it, and a read-only tool must not create topics */
	err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "cannot reach Kafka: %s", rd_kafka_err2str(err));
		return -1;
	}
	snprintf(errstr, errstr_size, "topic %s does not exist", topic);
	for (i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *t = &md->topics[i];

		if (strcmp(t->topic, topic) != 0)
			continue;
		if (t->err)
			snprintf(errstr, errstr_size, "topic %s: %s", t->topic, rd_kafka_err2str(t->err));
		else if (t->partition_cnt <= 0)
			snprintf(errstr, errstr_size, "topic %s has no partitions", t->topic);
		else {
			*n = t->partition_cnt;
			rc = 0;
		}
		break;
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

static int fetch_offsets(struct lag_report *l, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(l->n);
	rd_kafka_resp_err_t err;
	int32_t i;
	int rc = -1;

	for (i = 0; i < l->n; i++)
		rd_kafka_topic_partition_list_add(tl, l->cfg->inbound_topic, i);
	if ((err = rd_kafka_committed(l->rk, tl, l->timeout_ms))) {
		snprintf(errstr, errstr_size, "committed offsets of group %s: %s", l->cfg->group_id,
			 rd_kafka_err2str(err));
		goto out;
	}
	for (i = 0; i < tl->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &tl->elems[i];
		struct lag_row *row = &l->rows[tp->partition];

		if (tp->err) {
			snprintf(errstr, errstr_size, "committed offset of partition %d: %s", (int)tp->partition,
				 rd_kafka_err2str(tp->err));
			goto out;
		}
		row->committed = tp->offset >= 0 ? tp->offset : RD_KAFKA_OFFSET_INVALID;
	}
	l->total = 0;
	for (i = 0; i < l->n; i++) {
		struct lag_row *row = &l->rows[i];

		err = rd_kafka_query_watermark_offsets(l->rk, l->cfg->inbound_topic, i, &row->low, &row->high,
						       l->timeout_ms);
		if (err) {
			snprintf(errstr, errstr_size, "watermarks of partition %d: %s", (int)i, rd_kafka_err2str(err));
			goto out;
		}
		/* a committed offset below the low watermark (retention removed
		 * records) resumes at the low watermark */
		row->lag = row->high - (row->committed >= row->low ? row->committed : row->low);
		if (row->lag < 0)
			row->lag = 0;
		l->total += row->lag;
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(tl);
	return rc;
}

struct owner_ctx {
	struct lag_report *l;
	const char *member;
};

static void set_owner(void *opaque, int32_t partition)
{
	struct owner_ctx *oc = opaque;

	if (partition >= 0 && partition < oc->l->n)
		oc->l->rows[partition].owner = oc->member;
}

/* Owners are a courtesy: when the brokers cannot describe the group, the
 * offsets are still right, and the reason goes into owners_error. */
static void fetch_owners(struct lag_report *l)
{
	const struct rd_kafka_group_info *g;
	rd_kafka_resp_err_t err;
	int i;

	err = rd_kafka_list_groups(l->rk, l->cfg->group_id, (const struct rd_kafka_group_list **)&l->groups,
				   l->timeout_ms);
	if (err) {
		snprintf(l->owners_error, sizeof(l->owners_error), "%s", rd_kafka_err2str(err));
		l->groups = NULL;
		return;
	}
	if (l->groups->group_cnt < 1)
		return; /* no such group: no owners */
	g = &l->groups->groups[0];
	if (g->err) {
		snprintf(l->owners_error, sizeof(l->owners_error), "%s", rd_kafka_err2str(g->err));
		return;
	}
	l->state = g->state;
	l->members = g->member_cnt;
	for (i = 0; i < g->member_cnt; i++) {
		struct owner_ctx oc = {l, g->members[i].member_id};

		if (lag_assignment_partitions(g->members[i].member_assignment,
					      (size_t)g->members[i].member_assignment_size, l->cfg->inbound_topic,
					      set_owner, &oc) != 0)
			snprintf(l->owners_error, sizeof(l->owners_error), "member %s: malformed assignment",
				 g->members[i].member_id);
	}
}

int lag_collect(const struct wb_config *cfg, rd_kafka_t *rk, int timeout_ms, struct lag_report *l, char *errstr,
		size_t errstr_size)
{
	char why[300];

	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	l->rk = rk;
	l->timeout_ms = timeout_ms;
	if (lag_topic_partitions(rk, cfg->inbound_topic, timeout_ms, &l->n, why, sizeof(why)) == -1) {
		snprintf(errstr, errstr_size, "%s (%s)", why, cfg->kafka_brokers);
		return -1;
	} else if (l->n == 0) {
		snprintf(errstr, errstr_size, "%s", why);
		return -1;
	}
	if (!(l->rows = calloc((size_t)l->n, sizeof(*l->rows)))) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (fetch_offsets(l, errstr, errstr_size) != 0)
		return -1;
	fetch_owners(l);
	return 0;
}

void lag_report_fini(struct lag_report *l)
{
	if (l->groups)
		rd_kafka_group_list_destroy(l->groups);
	free(l->rows);
	memset(l, 0, sizeof(*l));
}

/* --- output ---------------------------------------------------------------- */

static void print_table(const struct lag_report *l, FILE *f)
{
	int32_t i;

	fprintf(f, "group %s  topic %s  partitions %d  state %s\n", l->cfg->group_id, l->cfg->inbound_topic,
		(int)l->n, l->state && *l->state ? l->state : "-");
	fprintf(f, "%9s %12s %12s %10s  %s\n", "partition", "committed", "high", "lag", "owner");
	for (i = 0; i < l->n; i++) {
		const struct lag_row *row = &l->rows[i];
		char committed[24];

		if (row->committed >= 0)
			snprintf(committed, sizeof(committed), "%lld", (long long)row->committed);
		else
			snprintf(committed, sizeof(committed), "-");
		fprintf(f, "%9d %12s %12lld %10lld  %s\n", (int)i, committed, (long long)row->high,
			(long long)row->lag, row->owner ? row->owner : "-");
	}
	fprintf(f, "total lag %lld\n", (long long)l->total);
	if (l->owners_error[0])
		fprintf(f, "owners unknown: %s\n", l->owners_error);
}

/* "key":"s", or "key":null when s is NULL or empty. */
static void key_str_or_null(struct jbuf *b, const char *key, const char *s)
{
	jbuf_key(b, key);
	if (s && *s)
		jbuf_cstr_q(b, s);
	else
		jbuf_cstr(b, "null");
}

static void key_i64(struct jbuf *b, const char *key, int64_t v)
{
	jbuf_key(b, key);
	jbuf_i64(b, v);
}

static void print_json(const struct lag_report *l, FILE *f)
{
	struct jbuf b;
	int32_t i;

	jbuf_init(&b);
	jbuf_ch(&b, '{');
	key_str_or_null(&b, "group", l->cfg->group_id);
	key_str_or_null(&b, "topic", l->cfg->inbound_topic);
	key_str_or_null(&b, "state", l->state);
	key_i64(&b, "total_lag", l->total);
	key_str_or_null(&b, "owners_error", l->owners_error);
	jbuf_key(&b, "partitions");
	jbuf_ch(&b, '[');
	for (i = 0; i < l->n; i++) {
		const struct lag_row *row = &l->rows[i];

		jbuf_sep(&b);
		jbuf_ch(&b, '{');
		key_i64(&b, "partition", i);
		jbuf_key(&b, "committed");
		if (row->committed >= 0)
			jbuf_i64(&b, row->committed);
		else
			jbuf_cstr(&b, "null");
		key_i64(&b, "low", row->low);
		key_i64(&b, "high", row->high);
		key_i64(&b, "lag", row->lag);
		key_str_or_null(&b, "owner", row->owner);
		jbuf_ch(&b, '}');
	}
	jbuf_cstr(&b, "]}\n");
	if (b.len)
		fwrite(b.p, 1, b.len, f);
	jbuf_fini(&b);
}

int lag_main(int argc, char **argv, char **envp)
{
	const char *json = NULL, *max_lag_s = NULL, *timeout_s = NULL;
	const struct args_flag flags[] = {
		{"--json", false, &json},
		{"--max-lag", true, &max_lag_s},
		{"--timeout-ms", true, &timeout_s},
	};
	struct wb_config cfg;
	struct lag_report l = {0};
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	char errstr[512] = "", why[512];
	int64_t max_lag = -1, timeout = LAG_DEFAULT_TIMEOUT_MS;
	int i, rc = 1;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			lag_usage(stdout);
			return 0;
		}
	}
	if (!args_take(&argc, argv, flags, sizeof(flags) / sizeof(flags[0]), errstr, sizeof(errstr))) {
		fprintf(stderr, "wabot-worker lag: %s\n", errstr);
		return 2;
	}
	if (max_lag_s && !args_i64(max_lag_s, 0, INT64_MAX, &max_lag)) {
		fprintf(stderr, "wabot-worker lag: --max-lag: a whole number >= 0 (got \"%.20s\")\n", max_lag_s);
		return 2;
	}
	if (timeout_s && !args_i64(timeout_s, 1, 600000, &timeout)) {
		fprintf(stderr, "wabot-worker lag: --timeout-ms: 1..600000 (got \"%.20s\")\n", timeout_s);
		return 2;
	}
	if (config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wabot-worker lag: %s\n", errstr);
		return 2;
	}
	/* its own error line says what failed; librdkafka's log lines would
	 * repeat it (LOG_LEVEL=debug shows them) */
	log_set_level(cfg.log_level == LOG_DEBUG ? LOG_DEBUG : LOG_OFF);
	if (!cfg.kafka_brokers[0]) {
		fprintf(stderr, "wabot-worker lag: KAFKA_BROKERS: required (host:port[,host:port...])\n");
		config_fini(&cfg);
		return 2;
	}
	if (!(conf = kafka_conf_new(&cfg, KAFKA_OBSERVER, NULL, errstr, sizeof(errstr)))) {
		fprintf(stderr, "wabot-worker lag: %s\n", errstr);
		config_fini(&cfg);
		return 2;
	}
	if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "wabot-worker lag: cannot create the Kafka client: %s\n", why);
		config_fini(&cfg);
		return 1;
	}
	if (lag_collect(&cfg, rk, (int)timeout, &l, errstr, sizeof(errstr)) != 0)
		goto fail;
	if (json)
		print_json(&l, stdout);
	else
		print_table(&l, stdout);
	rc = max_lag >= 0 && l.total > max_lag ? 3 : 0;
	goto out;
fail:
	fprintf(stderr, "wabot-worker lag: %s\n", errstr);
out:
	lag_report_fini(&l);
	rd_kafka_destroy(rk);
	config_fini(&cfg);
	return rc;
}
