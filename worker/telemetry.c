/*
 * telemetry.c - /metrics, /healthz and /readyz of `wabot-worker run`
 * (telemetry.h).
 *
 * Two threads besides the worker's: the HTTP server's (renders answers from
 * counters and the snapshot; owns the metrics writer and the scratch
 * partition array) and the refresh thread (asks the brokers and the store,
 * then swaps its results into the snapshot under mu). mu is a leaf lock:
 * nothing else is taken or called while it is held but copying.
 */
#include "telemetry.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "event.h"
#include "http.h"
#include "lanes.h"
#include "log.h"
#include "metrics.h"
#include "producer.h"

#ifndef WB_VERSION
#define WB_VERSION "0.5.0"
#endif

#define QUERY_TIMEOUT_MS 2000     /* one question to the brokers */
#define POLL_STUCK_MIN_MS 30000   /* the poll loop may pause this long (a revocation drains) */
#define DEFAULT_MAX_POLL_MS 300000 /* librdkafka's max.poll.interval.ms */

/* What the brokers said of one partition at the last refresh. */
struct snap_part {
	int64_t committed; /* < 0: none committed (or unknown) */
	int64_t low, high; /* watermarks; high < 0: unknown */
};

/* Lag of one partition: as committed on the brokers (what KEDA and Burrow
 * see), done here but not yet committed, in flight, and its age. */
struct lag_view {
	int64_t committed_lag, uncommitted, in_flight;
	double seconds;
};

struct telemetry {
	const struct wb_config *cfg;
	consumer_t *c;
	ctx_store_t *store, *fallback;
	http_t *http;
	int64_t max_poll_ms;   /* max.poll.interval.ms in force */
	int64_t poll_stuck_ms; /* /healthz: the poll loop stuck this long */

	/* HTTP thread only */
	metrics_writer_t *mw;
	struct consumer_partition *scratch; /* [CONSUMER_MAX_PARTITIONS] */
	struct lag_view *views;             /* [CONSUMER_MAX_PARTITIONS] */

	/* refresh thread */
	pthread_t thread;
	bool started;
	struct snap_part *work;             /* [CONSUMER_MAX_PARTITIONS], filled then copied */

	/* guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct snap_part *snap;             /* [CONSUMER_MAX_PARTITIONS] */
	bool refreshed;                     /* snap holds a refresh */
	bool store_ok;                      /* the store answered the last probe */
	char store_err[96];                 /* why not */
	bool redis_mem_known;
	uint64_t redis_mem;
};

/* ---- the refresh thread -------------------------------------------------- */

/* offsets_for_times over list, with every partition's .offset set to
 * `which` (RD_KAFKA_OFFSET_END: the high watermark; _BEGINNING: the low):
 * one ListOffsets request per broker for all partitions. Asking one
 * partition at a time costs a round trip each, and each waits behind the
 * partition's pending long-poll Fetch (up to fetch.wait.max.ms). The
 * answer comes from the brokers: librdkafka stops refreshing its cached
 * watermark of a paused partition. */
static void list_offsets(telemetry_t *t, rd_kafka_topic_partition_list_t *list, int64_t which)
{
	int i;

	for (i = 0; i < list->cnt; i++)
		list->elems[i].offset = which;
	if (rd_kafka_offsets_for_times(consumer_kafka(t->c), list, QUERY_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	for (i = 0; i < list->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &list->elems[i];

		if (tp->partition < 0 || tp->partition >= CONSUMER_MAX_PARTITIONS || tp->err)
			continue;
		if (which == RD_KAFKA_OFFSET_END)
			t->work[tp->partition].high = tp->offset;
		else
			t->work[tp->partition].low = tp->offset;
	}
}

static void refresh_kafka(telemetry_t *t)
{
	rd_kafka_t *rk = consumer_kafka(t->c);
	rd_kafka_topic_partition_list_t *a = NULL, *q;
	bool need_low = true; /* unless every partition has a committed offset */
	int i;

	for (i = 0; i < CONSUMER_MAX_PARTITIONS; i++)
		t->work[i] = (struct snap_part){-1, -1, -1};
	if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
		return;
	if (a->cnt == 0 || !(q = rd_kafka_topic_partition_list_copy(a))) {
		rd_kafka_topic_partition_list_destroy(a);
		return;
	}
	if (rd_kafka_committed(rk, a, QUERY_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		need_low = false;
		for (i = 0; i < a->cnt; i++) {
			const rd_kafka_topic_partition_t *tp = &a->elems[i];

			if (tp->partition >= 0 && tp->partition < CONSUMER_MAX_PARTITIONS && !tp->err)
				t->work[tp->partition].committed = tp->offset >= 0 ? tp->offset : -1;
			need_low |= tp->err || tp->offset < 0;
		}
	}
	list_offsets(t, q, RD_KAFKA_OFFSET_END);
	/* the low watermark matters only where nothing is committed (or the
	 * committed offsets could not be read) */
	if (need_low)
		list_offsets(t, q, RD_KAFKA_OFFSET_BEGINNING);
	rd_kafka_topic_partition_list_destroy(q);
	rd_kafka_topic_partition_list_destroy(a);
}

static void refresh(telemetry_t *t)
{
	uint64_t mem = 0;
	/* one round trip to Redis (INFO memory) is the readiness probe too: no
	 * context read, so the hit/miss counters stay the users' own; the
	 * memory store has no server and always answers */
	wb_err_t serr = ctx_store_server_memory(t->store, &mem);
	bool mem_ok = serr == WB_OK;

	if (serr == WB_ERR_NOT_FOUND)
		serr = WB_OK;

	refresh_kafka(t);
	pthread_mutex_lock(&t->mu);
	memcpy(t->snap, t->work, CONSUMER_MAX_PARTITIONS * sizeof(*t->snap));
	t->refreshed = true;
	t->store_ok = serr == WB_OK;
	snprintf(t->store_err, sizeof(t->store_err), "%s", serr == WB_OK ? "" : wb_err_str(serr));
	t->redis_mem_known = mem_ok;
	if (mem_ok)
		t->redis_mem = mem;
	pthread_mutex_unlock(&t->mu);
}

static void *refresh_main(void *arg)
{
	telemetry_t *t = arg;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		struct timespec until;

		pthread_mutex_unlock(&t->mu);
		refresh(t);
		clock_mono_deadline(&until, TELEMETRY_REFRESH_MS);
		pthread_mutex_lock(&t->mu);
		while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* ---- /healthz and /readyz ------------------------------------------------ */

/* Appends "reason\n"; returns false (not healthy / not ready). */
static bool reason(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool reason(struct jbuf *b, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	jbuf_cstr(b, line);
	jbuf_ch(b, '\n');
	return false;
}

static bool healthy(telemetry_t *t, struct jbuf *b)
{
	struct consumer_health h;
	bool ok = true;

	consumer_health(t->c, &h);
	if (h.poll_age_ms > t->poll_stuck_ms)
		ok = reason(b, "poll loop has not turned for %lld ms", (long long)h.poll_age_ms);
	if (h.lanes_stalled)
		ok = reason(b, "%u worker threads have queued records and made no progress for %d s", h.lanes_stalled,
			    CONSUMER_LANE_STALL_MS / 1000);
	if (h.unsteady_ms > 2 * t->max_poll_ms)
		ok = reason(b, "consumer group not steady (joined and assigned) for %lld s, over twice "
			       "max.poll.interval.ms",
			    (long long)(h.unsteady_ms / 1000));
	return ok;
}

static bool ready(telemetry_t *t, struct jbuf *b)
{
	struct consumer_health h;
	bool ok = true, refreshed, store_ok;
	char store_err[sizeof(t->store_err)];

	consumer_health(t->c, &h);
	pthread_mutex_lock(&t->mu);
	refreshed = t->refreshed;
	store_ok = t->store_ok;
	memcpy(store_err, t->store_err, sizeof(store_err));
	pthread_mutex_unlock(&t->mu);
	if (h.shutting_down)
		ok = reason(b, "shutting down");
	if (!h.stats_seen || !h.steady)
		ok = reason(b, "not (yet) a steady member of consumer group %s", t->cfg->group_id);
	if (!refreshed)
		ok = reason(b, "context store not checked yet");
	else if (!store_ok)
		ok = reason(b, "context store (%s) does not answer: %s", ctx_store_backend_name(t->store), store_err);
	return ok;
}

/* 200 with ok_text, or 503 with the reasons the check wrote. */
static wb_err_t probe_answer(bool ok, struct jbuf *body, int *status, const char *ok_text)
{
	if (ok)
		jbuf_cstr(body, ok_text);
	else
		*status = 503;
	return WB_OK;
}

static wb_err_t on_healthz(void *opaque, struct jbuf *body, int *status, const char **content_type)
{
	(void)content_type;
	return probe_answer(healthy(opaque, body), body, status, "ok\n");
}

static wb_err_t on_readyz(void *opaque, struct jbuf *body, int *status, const char **content_type)
{
	(void)content_type;
	return probe_answer(ready(opaque, body), body, status, "ready\n");
}

/* ---- /metrics -------------------------------------------------------------- */

static void counter(metrics_writer_t *w, const char *name, const char *help, uint64_t v)
{
	metrics_family(w, name, METRICS_COUNTER, help);
	metrics_sample_u64(w, NULL, v);
}

static void gauge(metrics_writer_t *w, const char *name, const char *help, double v)
{
	metrics_family(w, name, METRICS_GAUGE, help);
	metrics_sample(w, NULL, v);
}

static void write_pipeline(telemetry_t *t, metrics_writer_t *w)
{
	struct consumer_stats cs;
	struct lanes_stats ls;
	producer_t *prod = consumer_producer(t->c);
	unsigned p, k;

	consumer_get_stats(t->c, &cs, &ls);
	counter(w, "wabot_records_consumed_total", "Kafka records fetched from the inbound topic.", cs.consumed);
	counter(w, "wabot_records_done_total",
		"Records fully done: context saved and every output acknowledged by the broker.", cs.done);
	metrics_family(w, "wabot_events_processed_total", METRICS_COUNTER,
		       "WhatsApp events decoded from inbound records, by provider and kind.");
	for (p = 0; p < CONSUMER_PROVIDERS; p++)
		for (k = 0; k < CONSUMER_KINDS; k++)
			metrics_sample_u64(w,
					   (const char *[]){"provider", wa_provider_name((enum wa_provider)p), "kind",
							    wa_kind_name((enum wa_kind)k), NULL},
					   consumer_events(t->c, p, k));
	counter(w, "wabot_events_duplicate_total",
		"Redelivered events recognised as seen: replies re-emitted, nothing advanced.", ls.duplicates);
	counter(w, "wabot_replies_emitted_total", "Replies handed to the producer (re-emitted ones included).",
		ls.replies);
	if (prod) {
		struct producer_stats ps;
		const char *names[PRODUCER_MAX_REASONS];
		uint64_t counts[PRODUCER_MAX_REASONS];
		size_t n = producer_dlq_reasons(prod, names, counts, PRODUCER_MAX_REASONS), i;

		producer_get_stats(prod, &ps);
		counter(w, "wabot_replies_produced_total", "Replies acknowledged by the broker.", ps.replies);
		counter(w, "wabot_replies_failed_total",
			"Outputs (replies or dead letters) the broker never acknowledged; their offsets are not committed.",
			ps.failed);
		metrics_family(w, "wabot_events_dead_lettered_total", METRICS_COUNTER,
			       "Records or events sent to the dead-letter topic, by reason.");
		for (i = 0; i < n; i++)
			metrics_sample_u64(w, (const char *[]){"reason", names[i], NULL}, counts[i]);
	}
	counter(w, "wabot_key_mismatch_total", "Records whose key was missing or not the payload's phone.",
		ls.key_mismatch);
	counter(w, "wabot_store_retries_total", "Store calls retried (outages and failures).", ls.store_retries);
	counter(w, "wabot_rebalances_total", "Partition assignments and revocations.", cs.rebalances);
	counter(w, "wabot_events_redone_after_rebalance_total",
		"In-flight records given up at a revocation or loss (their next owner redoes them).", cs.redone);
	counter(w, "wabot_partition_pauses_total", "Partitions paused for flow control.", cs.pauses);
	counter(w, "wabot_consumer_room_waits_total",
		"Times the consumer stopped taking records until the worker threads' queues had room.",
		cs.room_waits);
	gauge(w, "wabot_partitions_assigned", "Inbound partitions assigned to this worker.", cs.assigned);
	gauge(w, "wabot_partitions_paused", "Assigned partitions paused for flow control.", cs.paused);
}

static void write_lanes(telemetry_t *t, metrics_writer_t *w)
{
	lanes_t *l = consumer_lanes(t->c);
	uint32_t i, n = lanes_count(l);

	metrics_family(w, "wabot_worker_queue_depth", METRICS_GAUGE, "Records queued per worker thread.");
	for (i = 0; i < n; i++) {
		char id[16];

		snprintf(id, sizeof(id), "%u", i);
		metrics_sample_u64(w, (const char *[]){"thread", id, NULL}, lanes_depth(l, i));
	}
}

static void write_store(telemetry_t *t, metrics_writer_t *w, const struct ctx_store_stats *st)
{
	const char *backend[] = {"backend", ctx_store_backend_name(t->store), NULL};
	bool mem_known;
	uint64_t mem;

	metrics_family(w, "wabot_context_hits_total", METRICS_COUNTER, "Context reads that found a live context.");
	metrics_sample_u64(w, backend, st->hits);
	metrics_family(w, "wabot_context_misses_total", METRICS_COUNTER,
		       "Context reads that found none (new user, expired TTL, unreadable value).");
	metrics_sample_u64(w, backend, st->misses);
	metrics_family(w, "wabot_context_errors_total", METRICS_COUNTER,
		       "Context store operations that failed (per key).");
	metrics_sample_u64(w, backend, st->errors);
	metrics_family(w, "wabot_context_conflicts_total", METRICS_COUNTER, "Compare-and-set writes refused.");
	metrics_sample_u64(w, backend, st->conflicts);
	metrics_family(w, "wabot_store_latency_seconds", METRICS_HISTOGRAM,
		       "Context store call latency (Redis response time; one call per batch).");
	metrics_histogram_pow2_us(w, backend, st->latency_buckets, CTX_STORE_LAT_BUCKETS, st->latency_sum_us);
	pthread_mutex_lock(&t->mu);
	mem_known = t->redis_mem_known;
	mem = t->redis_mem;
	pthread_mutex_unlock(&t->mu);
	if (mem_known)
		gauge(w, "wabot_redis_used_memory_bytes", "Redis used_memory (INFO memory), polled.", (double)mem);
}

static void write_memory_stores(telemetry_t *t, metrics_writer_t *w)
{
	struct {
		ctx_store_t *cs;
		const char *role;
		struct ctx_store_stats st;
	} m[2] = {{.cs = strcmp(ctx_store_backend_name(t->store), "memory") == 0 ? t->store : NULL, .role = "primary"},
		  {.cs = t->fallback, .role = "fallback"}};
	size_t i;

	if (!m[0].cs && !m[1].cs)
		return;
	for (i = 0; i < 2; i++)
		if (m[i].cs)
			ctx_store_stats(m[i].cs, &m[i].st);
	metrics_family(w, "wabot_memory_store_entries", METRICS_GAUGE, "Contexts held in process memory.");
	for (i = 0; i < 2; i++)
		if (m[i].cs)
			metrics_sample_u64(w, (const char *[]){"store", m[i].role, NULL}, m[i].st.entries);
	metrics_family(w, "wabot_memory_store_bytes", METRICS_GAUGE,
		       "Bytes accounted by the in-process store (keys, values, overhead).");
	for (i = 0; i < 2; i++)
		if (m[i].cs)
			metrics_sample_u64(w, (const char *[]){"store", m[i].role, NULL}, m[i].st.bytes);
}


static struct lag_view lag_of(const struct consumer_partition *cp, const struct snap_part *sp, int64_t now_ms)
{
	struct lag_view v = {0, 0, (int64_t)cp->in_flight, 0};
	int64_t from;

	if (sp->high < 0)
		return v; /* no watermark yet */
	/* from the committed offset, or where retention starts (a committed
	 * offset below it resumes there), or 0 when neither is known */
	from = sp->committed > sp->low ? sp->committed : sp->low;
	if (from < 0)
		from = 0;
	v.committed_lag = sp->high > from ? sp->high - from : 0;
	if (cp->stored > from)
		v.uncommitted = cp->stored - from;
	/* time lag: how old the newest finished record is while others wait */
	if (v.committed_lag > v.uncommitted && cp->done_ts_ms > 0 && now_ms > cp->done_ts_ms)
		v.seconds = (double)(now_ms - cp->done_ts_ms) / 1000.0;
	return v;
}

static void write_lag(telemetry_t *t, metrics_writer_t *w)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{"wabot_consumer_lag", "Records behind per partition: high watermark - committed offset (brokers' view)."},
		{"wabot_consumer_lag_uncommitted", "Records done here whose offsets are not committed yet."},
		{"wabot_consumer_in_flight", "Records fetched and not yet released by a commit point."},
		{"wabot_consumer_lag_seconds",
		 "Age of the newest finished record while records remain behind it (0 when caught up)."},
	};
	size_t n = consumer_partitions(t->c, t->scratch, CONSUMER_MAX_PARTITIONS), i, f;
	struct lag_view *views = t->views;
	int64_t total = 0, now_ms = (int64_t)time(NULL) * 1000;
	bool known;

	pthread_mutex_lock(&t->mu);
	known = t->refreshed;
	for (i = 0; i < n; i++) {
		views[i] = lag_of(&t->scratch[i], &t->snap[t->scratch[i].partition], now_ms);
		total += views[i].committed_lag;
	}
	pthread_mutex_unlock(&t->mu);
	for (f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		metrics_family(w, fam[f].name, METRICS_GAUGE, fam[f].help);
		for (i = 0; i < n; i++) {
			char part[16];
			const char *labels[] = {"topic", t->cfg->inbound_topic, "partition", part, NULL};

			snprintf(part, sizeof(part), "%d", (int)t->scratch[i].partition);
			if (f == 0)
				metrics_sample_i64(w, labels, views[i].committed_lag);
			else if (f == 1)
				metrics_sample_i64(w, labels, views[i].uncommitted);
			else if (f == 2)
				metrics_sample_i64(w, labels, views[i].in_flight);
			else
				metrics_sample(w, labels, views[i].seconds);
		}
	}
	if (known)
		gauge(w, "wabot_consumer_total_lag", "Records behind over the partitions assigned here.", (double)total);
}

static wb_err_t on_metrics(void *opaque, struct jbuf *body, int *status, const char **content_type)
{
	telemetry_t *t = opaque;
	metrics_writer_t *w = t->mw;
	struct ctx_store_stats st;
	struct jbuf scratch;
	wb_err_t err;
	char ver[32];

	(void)status;
	*content_type = METRICS_CONTENT_TYPE;
	metrics_begin(w, body);
	write_pipeline(t, w);
	write_lanes(t, w);
	ctx_store_stats(t->store, &st);
	write_store(t, w, &st);
	write_memory_stores(t, w);
	write_lag(t, w);
	jbuf_init(&scratch);
	gauge(w, "wabot_up", "1 when ready (/readyz), else 0.", ready(t, &scratch) ? 1 : 0);
	jbuf_fini(&scratch);
	snprintf(ver, sizeof(ver), "%s", rd_kafka_version_str());
	metrics_family(w, "wabot_build_info", METRICS_GAUGE, "Versions of the worker and of librdkafka at run time.");
	metrics_sample(w, (const char *[]){"version", WB_VERSION, "librdkafka", ver, NULL}, 1);
	err = metrics_end(w);
	if (err != WB_OK)
		log_at(LOG_WARN, "metrics exposition incomplete", LOG_ERR("error", err));
	return err == WB_ERR_NOMEM ? err : WB_OK;
}

/* ---- life -------------------------------------------------------------------- */

/* max.poll.interval.ms as configured through KAFKA_PROP_, else librdkafka's default. */
static int64_t max_poll_ms(const struct wb_config *cfg)
{
	int64_t v = DEFAULT_MAX_POLL_MS;
	size_t i;

	for (i = 0; i < cfg->kafka_props_len; i++)
		if (strcmp(cfg->kafka_props[i].name, "max.poll.interval.ms") == 0)
			v = strtoll(cfg->kafka_props[i].value, NULL, 10);
	return v > 0 ? v : DEFAULT_MAX_POLL_MS;
}

telemetry_t *telemetry_new(const struct telemetry_opts *o, char *errstr, size_t errstr_size)
{
	telemetry_t *t = calloc(1, sizeof(*t));
	struct http_route routes[] = {
		{"/metrics", on_metrics, t},
		{"/healthz", on_healthz, t},
		{"/readyz", on_readyz, t},
	};
	struct http_opts ho = {.bind_address = o->bind_address, .port = o->cfg->http_port, .routes = routes,
			       .nroutes = sizeof(routes) / sizeof(routes[0])};
	pthread_condattr_t ca;

	if (!t) {
		wb_errstr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	t->cfg = o->cfg;
	t->c = o->consumer;
	t->store = o->store;
	t->fallback = o->fallback;
	t->max_poll_ms = max_poll_ms(o->cfg);
	t->poll_stuck_ms = (int64_t)o->cfg->drain_timeout_s * 1000 + 10000;
	if (t->poll_stuck_ms < POLL_STUCK_MIN_MS)
		t->poll_stuck_ms = POLL_STUCK_MIN_MS;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (o->cfg->http_port == 0)
		return t; /* HTTP_PORT=0: no server */
	if (!(t->mw = metrics_writer_new()) || !(t->scratch = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*t->scratch))) ||
	    !(t->views = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*t->views))) ||
	    !(t->snap = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*t->snap))) ||
	    !(t->work = calloc(CONSUMER_MAX_PARTITIONS, sizeof(*t->work)))) {
		wb_errstr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (pthread_create(&t->thread, NULL, refresh_main, t) != 0) {
		wb_errstr(errstr, errstr_size, "cannot start the telemetry refresh thread");
		goto fail;
	}
	t->started = true;
	if (!(t->http = http_new(&ho, errstr, errstr_size)))
		goto fail;
	log_at(LOG_INFO, "serving /metrics /healthz /readyz", LOG_INT("port", http_port(t->http)));
	return t;
fail:
	telemetry_destroy(t);
	return NULL;
}

int telemetry_port(const telemetry_t *t)
{
	return t && t->http ? http_port(t->http) : 0;
}

void telemetry_destroy(telemetry_t *t)
{
	if (!t)
		return;
	http_destroy(t->http); /* no handler runs after this */
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->started)
		pthread_join(t->thread, NULL);
	metrics_writer_destroy(t->mw);
	free(t->scratch);
	free(t->views);
	free(t->snap);
	free(t->work);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
