/*
 * bench_kafka.c - the end-to-end benchmark of issue 4: `wabot-worker run`
 * against its ceiling, wb-passthrough (consume and produce, nothing else),
 * both as separate processes on librdkafka's mock cluster (wb-mock-kafka),
 * the worker with the memory store or (--redis) a real redis-server.
 *
 * Each measured run gets a fresh mock cluster (wa.inbound:16,
 * wa.outbound:16, wa.dlq:4), a fresh consumer group and, for the worker
 * with --redis, a fresh redis-server; a collector thread here reads
 * wa.outbound from the beginning and stamps every reply on arrival. Events
 * are realistic text messages (tests/support/payloads.h; ACS Event Grid for
 * even phones, Meta webhooks for odd ones, -f to choose), keyed by phone,
 * event i from phone i % P, so each phone runs the donations cycle and its
 * k-th event must be answered with step payload_cycle_step[k % 4]. A reply
 * is matched to its event by the event id the payload derives from i
 * (in_reply_to for the worker; the copied event for the pass-through), and
 * the time each event was sent is kept here, per event id.
 *
 * Two kinds of run:
 *  - throughput: all N events are produced first, then the process starts.
 *    seconds = arrival of the last reply - arrival of the first reply, and
 *    events/s = (replies - 1) / seconds. Both ends are observed the same
 *    way for both programs, and the group join (3 s on the mock) and the
 *    start-up stay out of it. Latency here is reply arrival - produce time,
 *    so it measures how long the backlog took, not a per-event latency.
 *  - fixed rate (--rate R, --seconds S): the process starts, 256 warm-up
 *    events on other phones wait for the group to be joined and every
 *    partition to flow, then R events/s are produced for S seconds, paced
 *    every half millisecond, by the producer that sent the warm-up; latency = reply arrival - the producev call of its
 *    event (producer: idempotent, linger.ms=5 like the programs', the same
 *    for both). Not linger.ms=1: the mock finds a fetch offset by walking
 *    the partition's list of produced batches ("FIXME: Maintain an index"),
 *    and with about one record per batch the walk, so every latency, grew
 *    through the run (worst latency per half second 25 ms at the start,
 *    60-130 ms after 5 s, for both programs; flat with 5).
 * The mock broker answers a Fetch that finds no data only after the full
 * fetch.wait.max.ms (librdkafka's default 500 ms), even when records land
 * meanwhile (rdkafka_mock_handlers.c: "we should cut the wait short ... but
 * that is too much of a hassle"); a real broker answers as soon as
 * fetch.min.bytes are there. So both programs get
 * KAFKA_PROP_fetch.wait.max.ms=10 (--fetch-wait-ms), or the fixed-rate
 * latencies would measure the mock's idle wait (p50 about 270 ms at 1,000
 * ev/s with 500) instead of the program. The mock also returns at most one
 * produced batch per partition per Fetch, which bounds the ceiling.
 * For each: CPU time of the process under test (utime + stime of all its
 * threads, /proc/<pid>/stat, read once every reply is in, just before
 * SIGTERM) divided by the events of the run (in the rate run that includes
 * the warm-up and the idle waits, and at 10,000/s librdkafka's per-request
 * costs dominate, so CPU/event is read from the throughput runs), peak
 * RSS (VmHWM), lost events, duplicate replies, per-phone order violations
 * (a phone's replies must arrive in its events' order) and wrong steps
 * (worker only: a reply whose conversation_step is not the cycle's).
 *
 * Output: one line per run, then a summary table and the worker's figures as
 * ratios of the pass-through's (medians over --repeat rounds) beside issue
 * 4's targets. Timings never fail the program: it exits 1 only when an event
 * is lost, a phone's order is broken, a reply carries the wrong step, or a
 * process fails (cannot start, or does not exit 0 after SIGTERM); else 0.
 *
 *   ./build/bench_kafka [-n 100000] [-p 10000] [--redis] [--threads N]
 *                       [--rate 10000] [--seconds 6] [--only worker|passthrough]
 *                       [--repeat K] [-f acs|meta|mixed] [--no-rate]
 *                       [--no-throughput] [--fetch-wait-ms 10] [--env NAME=VALUE]
 *                       [--perf DIR] [--keep-logs] [-v]
 * -v adds, per run, the CPU time of each thread of the process under test,
 * of the mock broker and of redis-server, and the program's closing log line
 * (the worker's counters: pauses, duplicates, key mismatches ...).
 *
 * Owns: the child processes it starts (mock, redis-server, the program under
 * test, perf), each stopped by PID; its logs in /tmp (kept when a run fails
 * or with --keep-logs). Threads: main, plus one collector thread per run.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_util.h"
#include "kafka_client.h"
#include "kafka_mock.h"
#include "payloads.h"
#include "redis_server.h"
#include "test_clock.h"
#include "worker_proc.h"

#ifndef WB_PASSTHROUGH_BIN
#error "WB_PASSTHROUGH_BIN must name the wb-passthrough binary (re-run cmake once tests/tools/wb_passthrough.c exists)"
#endif

#define BK_IN "wa.inbound"
#define BK_OUT "wa.outbound"
#define BK_DLQ "wa.dlq"
#define BK_WARM_BASE 0xF0000000ull /* event ids of the warm-up events start here */
#define BK_WARM_N 256u
#define BK_MAX_EVENTS (BK_WARM_BASE - 1)
#define BK_PRODUCE_CHUNK 20000u    /* records per kafka_produce call */
#define BK_PAYLOAD_MAX 2048
#define BK_FIRST_REPLY_MS 60000    /* start-up plus group join, at most */
#define BK_IDLE_MS 15000           /* no new reply for this long: the rest is lost */
#define BK_STOP_MS 40000           /* SIGTERM to exit, at most */
#define BK_MAX_ENV 16              /* --env options */

/* The markers around the sequence number in payloads.c's event ids. */
static const char bk_acs_mark[] = "-1f2e-4d3c-8b4a-59687a6b7c8d";   /* after 8 hex digits */
static const char bk_meta_mark[] = "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgU"; /* before 16 */

enum bk_mode { BK_PASSTHROUGH = 0, BK_WORKER = 1 };
enum bk_kind { BK_THROUGHPUT = 0, BK_RATE = 1 };
enum bk_format { BK_ACS = 0, BK_META = 1, BK_MIXED = 2 };

static const char *const bk_mode_name[] = {"passthrough", "worker"};
static const char *const bk_kind_name[] = {"throughput", "rate"};

struct bk_opts {
	uint64_t n;           /* events of a throughput run */
	uint64_t phones;
	bool redis;
	int threads;          /* WORKER_THREADS */
	double rate;          /* events/s of the fixed-rate run */
	double seconds;       /* its length */
	int only;             /* -1: both programs, else a bk_mode */
	int repeat;           /* rounds */
	enum bk_format format;
	bool do_throughput;
	bool do_rate;
	bool keep_logs;
	bool verbose;         /* per-thread CPU of the process under test */
	const char *perf_dir; /* perf record the process under test into here */
	const char *worker_bin; /* the worker to run (default: this build's) */
	int fetch_wait_ms;    /* fetch.wait.max.ms of the process under test; -1: librdkafka's */
	const char *env[BK_MAX_ENV + 1]; /* --env NAME=VALUE, for both programs; borrowed from argv */
	int nenv;
};

/* One measured run. */
struct bk_result {
	enum bk_mode mode;
	enum bk_kind kind;
	int round;
	bool done;            /* the run happened (else the row is empty) */
	uint64_t events;      /* main events sent */
	uint64_t replied;     /* of them, answered */
	double seconds;       /* first to last reply */
	double eps;
	double p50_ms, p99_ms, max_ms;
	uint64_t hwm_kb;
	double cpu_us_ev;
	uint64_t cpu_us;
	uint64_t lost, dups, order, wrong, unknown;
	int exit_code;        /* of the process under test; -1: never exited */
	bool failed;          /* lost, order, wrong, or the process failed */
};

/* --- clocks ----------------------------------------------------------- */

static int64_t bk_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void bk_sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

	nanosleep(&ts, NULL);
}

/* --- events ----------------------------------------------------------- */

static bool bk_is_meta(const struct bk_opts *o, uint64_t phone)
{
	return o->format == BK_META || (o->format == BK_MIXED && (phone & 1));
}

/* Event seq: its phone's digits and key, and its payload. Warm-up events
 * (seq >= BK_WARM_BASE) come from the 574... range, the others from 573...
 * Returns the payload length, or -1 when it does not fit. */
static int bk_event(const struct bk_opts *o, uint64_t seq, char *key, size_t keycap, char *buf, size_t cap)
{
	bool warm = seq >= BK_WARM_BASE;
	uint64_t phone = warm ? seq - BK_WARM_BASE : seq % o->phones;
	uint64_t k = warm ? 0 : seq / o->phones;
	char digits[24];
	int n;

	snprintf(digits, sizeof(digits), "%s%09llu", warm ? "574" : "573", (unsigned long long)phone);
	snprintf(key, keycap, "+%s", digits);
	n = payload_text(buf, cap, bk_is_meta(o, phone), digits, seq, payload_cycle_text[k % 4]);
	return n > 0 && (size_t)n < cap ? n : -1;
}

static int bk_hex(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* The event seq a reply (or a copied event) belongs to: from the first
 * event id in it. false when there is none. */
static bool bk_reply_seq(const char *v, size_t len, uint64_t *seq)
{
	const char *a = memmem(v, len, bk_acs_mark, sizeof(bk_acs_mark) - 1);

	if (a && a - v >= 8)
		return bk_hex(a - 8, 8, seq) == 0;
	a = memmem(v, len, bk_meta_mark, sizeof(bk_meta_mark) - 1);
	if (a && (size_t)(v + len - a) >= sizeof(bk_meta_mark) - 1 + 16)
		return bk_hex(a + sizeof(bk_meta_mark) - 1, 16, seq) == 0;
	return false;
}

/* --- the collector: reads every reply as it arrives --------------------- */

struct bk_collector {
	const char *bootstrap;
	uint64_t n;           /* main events: seq 0..n-1 */
	uint64_t phones;
	bool check_steps;
	pthread_t thread;
	atomic_bool stop;
	atomic_bool failed;   /* the thread could not start its consumer */
	/* written by the collector thread only; read by main after join, or
	 * through the atomics meanwhile */
	int64_t *first_us;    /* n: arrival of seq's first reply, 0: none yet */
	uint16_t *count;      /* n: replies to seq */
	int64_t *last_seq;    /* phones: highest seq answered so far, -1 none */
	uint8_t *warm_seen;   /* BK_WARM_N */
	uint64_t dups, order, wrong, unknown;
	atomic_uint_fast64_t distinct;  /* main events answered */
	atomic_uint_fast64_t warm;      /* warm-up events answered */
	atomic_int_fast64_t first_at;   /* us, first main reply */
	atomic_int_fast64_t last_at;    /* us, latest new main reply */
};

static void bk_collect(struct bk_collector *c, const rd_kafka_message_t *m, int64_t now)
{
	uint64_t seq, phone;

	if (!m->payload || !bk_reply_seq(m->payload, m->len, &seq)) {
		c->unknown++;
		return;
	}
	if (seq >= BK_WARM_BASE) {
		if (seq - BK_WARM_BASE < BK_WARM_N && !c->warm_seen[seq - BK_WARM_BASE]++)
			atomic_fetch_add(&c->warm, 1);
		return;
	}
	if (seq >= c->n) {
		c->unknown++;
		return;
	}
	if (c->count[seq]++ > 0) {
		c->dups++;
		return;
	}
	c->first_us[seq] = now;
	phone = seq % c->phones;
	if ((int64_t)seq < c->last_seq[phone])
		c->order++;
	else
		c->last_seq[phone] = (int64_t)seq;
	if (c->check_steps && !payload_reply_has_step(m->payload, m->len, payload_cycle_step[(seq / c->phones) % 4]))
		c->wrong++;
	if (atomic_load(&c->first_at) == 0)
		atomic_store(&c->first_at, now);
	atomic_store(&c->last_at, now);
	atomic_fetch_add(&c->distinct, 1);
}

static void *bk_collector_main(void *arg)
{
	struct bk_collector *c = arg;
	const char *kv[] = {
		"bootstrap.servers", c->bootstrap,
		"group.id", "bench-kafka-collector", /* assign() only: never joins, never commits */
		"enable.auto.commit", "false",
		"enable.partition.eof", "false",
		"fetch.wait.max.ms", "5",  /* stamp replies soon after they land */
		"log.connection.close", "false",
		NULL,
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_topic_t *rkt;
	rd_kafka_t *rk;
	char why[512];
	int i;

	for (i = 0; kv[i]; i += 2)
		if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
			goto fail_conf;
	if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why))))
		goto fail_conf;
	rkt = rd_kafka_topic_new(rk, BK_OUT, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
	    md->topics[0].partition_cnt <= 0) {
		fprintf(stderr, "bench_kafka: collector: no metadata for %s\n", BK_OUT);
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
		rd_kafka_destroy(rk);
		atomic_store(&c->failed, true);
		return NULL;
	}
	l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, BK_OUT, md->topics[0].partitions[i].id)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	while (!atomic_load(&c->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);

		if (!m)
			continue;
		if (!m->err)
			bk_collect(c, m, bk_now_us());
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
fail_conf:
	fprintf(stderr, "bench_kafka: collector: %s\n", why);
	rd_kafka_conf_destroy(conf);
	atomic_store(&c->failed, true);
	return NULL;
}

static int bk_collector_start(struct bk_collector *c, const char *bootstrap, uint64_t n, uint64_t phones,
			      bool check_steps)
{
	uint64_t i;

	memset(c, 0, sizeof(*c));
	c->bootstrap = bootstrap;
	c->n = n;
	c->phones = phones;
	c->check_steps = check_steps;
	c->first_us = calloc(n, sizeof(*c->first_us));
	c->count = calloc(n, sizeof(*c->count));
	c->last_seq = malloc(phones * sizeof(*c->last_seq));
	c->warm_seen = calloc(BK_WARM_N, 1);
	if (!c->first_us || !c->count || !c->last_seq || !c->warm_seen)
		return -1;
	for (i = 0; i < phones; i++)
		c->last_seq[i] = -1;
	if (pthread_create(&c->thread, NULL, bk_collector_main, c) != 0)
		return -1;
	return 0;
}

static void bk_collector_stop(struct bk_collector *c)
{
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
}

static void bk_collector_free(struct bk_collector *c)
{
	free(c->first_us);
	free(c->count);
	free(c->last_seq);
	free(c->warm_seen);
}

/* --- producing -------------------------------------------------------- */

/* Produces events [from, to) (or the warm-up ones) in chunks with
 * kafka_produce; sent_us[seq] = the start of the chunk's call. */
static int bk_produce_range(const struct bk_opts *o, const char *bootstrap, uint64_t from, uint64_t to,
			    int64_t *sent_us)
{
	size_t chunk = BK_PRODUCE_CHUNK, i;
	struct kafka_rec *recs = calloc(chunk, sizeof(*recs));
	char *bufs = malloc(chunk * BK_PAYLOAD_MAX);
	char (*keys)[24] = calloc(chunk, sizeof(*keys));
	char errstr[512];
	int rc = -1;

	if (!recs || !bufs || !keys)
		goto out;
	while (from < to) {
		size_t n = to - from < chunk ? (size_t)(to - from) : chunk;
		int64_t t;

		for (i = 0; i < n; i++) {
			int len = bk_event(o, from + i, keys[i], sizeof(keys[i]), bufs + i * BK_PAYLOAD_MAX,
					   BK_PAYLOAD_MAX);

			if (len < 0)
				goto out;
			recs[i] = (struct kafka_rec){.key = keys[i], .key_len = strlen(keys[i]),
						     .value = bufs + i * BK_PAYLOAD_MAX, .value_len = (size_t)len,
						     .partition = KAFKA_PARTITION_BY_KEY};
		}
		t = bk_now_us();
		if (kafka_produce(bootstrap, BK_IN, recs, n, errstr, sizeof(errstr)) != 0) {
			fprintf(stderr, "bench_kafka: produce: %s\n", errstr);
			goto out;
		}
		if (sent_us)
			for (i = 0; i < n; i++)
				sent_us[from + i] = t;
		from += n;
	}
	rc = 0;
out:
	free(recs);
	free(bufs);
	free(keys);
	return rc;
}

/* 0 when every partition of the inbound topic still starts at offset 0. The
 * mock broker keeps only the newest few MB of each partition's log and
 * drops older records as new ones come: a throughput run that produces
 * more than that before the worker starts would report the dropped events
 * as lost. */
static int bk_check_kept(const char *bootstrap)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_t *rk;
	char why[512];
	int i, rc = -1;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof(why)) != RD_KAFKA_CONF_OK ||
	    !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "bench_kafka: watermarks: %s\n", why);
		return -1;
	}
	rkt = rd_kafka_topic_new(rk, BK_IN, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
		fprintf(stderr, "bench_kafka: watermarks: no metadata for %s\n", BK_IN);
		goto out;
	}
	rc = 0;
	for (i = 0; i < md->topics[0].partition_cnt && rc == 0; i++) {
		int64_t lo = 0, hi = 0;
		int32_t p = md->topics[0].partitions[i].id;

		if (rd_kafka_query_watermark_offsets(rk, BK_IN, p, &lo, &hi, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "bench_kafka: watermarks of %s [%d] unknown\n", BK_IN, (int)p);
			rc = -1;
		} else if (lo > 0) {
			fprintf(stderr,
				"bench_kafka: the mock broker dropped the oldest %lld of %lld records of %s [%d] (it "
				"keeps a few MB per partition): use fewer events (-n)\n",
				(long long)lo, (long long)hi, BK_IN, (int)p);
			rc = -1;
		}
	}
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return rc;
}

/* The fixed-rate run's producer (idempotent, linger.ms=5), or NULL. It
 * sends the warm-up events first, so that it is connected and has its
 * producer id before the first timed event (with a fresh producer, 3 of 6
 * rate runs began with a 1-2 s stall, for both programs alike; none of 6
 * since). */
static rd_kafka_t *bk_rate_producer_new(const char *bootstrap)
{
	const char *kv[] = {
		"bootstrap.servers", bootstrap,
		"enable.idempotence", "true",
		"linger.ms", "5",
		"log.connection.close", "false",
		NULL,
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char why[512];
	int k;

	for (k = 0; kv[k]; k += 2)
		if (rd_kafka_conf_set(conf, kv[k], kv[k + 1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
			goto fail;
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why))))
		return rk;
fail:
	fprintf(stderr, "bench_kafka: producer: %s\n", why);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Produces event seq; *sent_us (NULL: not wanted) = the producev call. */
static int bk_produce_one(rd_kafka_t *rk, const struct bk_opts *o, uint64_t seq, int64_t *sent_us)
{
	char key[24], buf[BK_PAYLOAD_MAX];
	int len = bk_event(o, seq, key, sizeof(key), buf, sizeof(buf));
	rd_kafka_resp_err_t err;

	if (len < 0)
		return -1;
	for (;;) {
		if (sent_us)
			*sent_us = bk_now_us();
		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(BK_IN), RD_KAFKA_V_KEY(key, strlen(key)),
					RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(rk, 1);
	}
	if (err) {
		fprintf(stderr, "bench_kafka: produce: %s\n", rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

static int bk_flush(rd_kafka_t *rk)
{
	if (rd_kafka_flush(rk, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	fprintf(stderr, "bench_kafka: %d events not delivered\n", rd_kafka_outq_len(rk));
	return -1;
}

/* Produces events 0..n-1 at o->rate per second, paced every half
 * millisecond, stamping each with the time of its producev call. */
static int bk_produce_paced(rd_kafka_t *rk, const struct bk_opts *o, uint64_t n, int64_t *sent_us)
{
	int64_t t0 = bk_now_us();
	uint64_t i = 0;

	while (i < n) {
		uint64_t due = (uint64_t)((double)(bk_now_us() - t0) * o->rate / 1e6) + 1;

		if (due > n)
			due = n;
		for (; i < due; i++)
			if (bk_produce_one(rk, o, i, &sent_us[i]) != 0)
				return -1;
		rd_kafka_poll(rk, 0);
		bk_sleep_us(500);
	}
	return bk_flush(rk);
}

/* --- one run ---------------------------------------------------------- */

/* true when --env gave a value for the variable of entry ("NAME=..."). */
static bool bk_env_given(const struct bk_opts *o, const char *entry)
{
	size_t len = strcspn(entry, "=") + 1;
	int i;

	for (i = 0; i < o->nenv; i++)
		if (strncmp(o->env[i], entry, len) == 0)
			return true;
	return false;
}

static struct worker_proc *bk_start_process(const struct bk_opts *o, enum bk_mode mode, const char *bootstrap,
					    const struct redis_server *rs, const char *log_path)
{
	char brokers[1100], threads[48], redis[300], fetch_wait[64];
	const char *ours[16], *env[16 + BK_MAX_ENV];
	const char *worker_args[] = {"run", NULL};
	size_t n = 0, k = 0, i;

	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", bootstrap);
	snprintf(threads, sizeof(threads), "WORKER_THREADS=%d", o->threads);
	snprintf(fetch_wait, sizeof(fetch_wait), "KAFKA_PROP_fetch.wait.max.ms=%d", o->fetch_wait_ms);
	ours[n++] = brokers;
	ours[n++] = mode == BK_WORKER ? "KAFKA_GROUP_ID=bench-worker" : "KAFKA_GROUP_ID=bench-passthrough";
	ours[n++] = "INBOUND_TOPIC=" BK_IN;
	ours[n++] = "OUTBOUND_TOPIC=" BK_OUT;
	ours[n++] = "DLQ_TOPIC=" BK_DLQ;
	ours[n++] = "LOG_LEVEL=info";
	ours[n++] = "HTTP_PORT=0";
	ours[n++] = "KAFKA_PROP_log.connection.close=false";
	if (o->fetch_wait_ms >= 0)
		ours[n++] = fetch_wait;
	if (mode == BK_WORKER) {
		ours[n++] = threads;
		if (rs) {
			snprintf(redis, sizeof(redis), "REDIS_URL=%s", redis_server_url(rs));
			ours[n++] = redis;
		}
	}
	/* --env first, and ours only where --env named no such variable */
	for (i = 0; i < (size_t)o->nenv; i++)
		env[k++] = o->env[i];
	for (i = 0; i < n; i++)
		if (!bk_env_given(o, ours[i]))
			env[k++] = ours[i];
	env[k] = NULL;
	return worker_proc_start(mode == BK_WORKER ? o->worker_bin : WB_PASSTHROUGH_BIN,
				 mode == BK_WORKER ? worker_args : NULL, env, log_path);
}

static struct worker_proc *bk_perf_start(const struct bk_opts *o, pid_t pid, const char *name)
{
	char file[1024], spid[24];
	const char *args[] = {"record", "-q", "--call-graph", "dwarf,16384", "-F", "1999", "-o", file, "-p", spid, NULL};

	snprintf(file, sizeof(file), "%s/perf-%s.data", o->perf_dir, name);
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	/* perf record -p follows only the threads there when it attaches: let
	 * the process start its lanes and librdkafka's threads first (its group
	 * join takes the mock's 3 s, so no record is missed). */
	test_sleep_ms(1000);
	fprintf(stderr, "bench_kafka: perf record into %s\n", file);
	return worker_proc_start("/usr/bin/perf", args, NULL, NULL);
}

/* Waits until every main event is answered, or no new reply came for
 * BK_IDLE_MS (after the first), or none at all for BK_FIRST_REPLY_MS, or the
 * process died. */
static void bk_wait_replies(struct bk_collector *c, struct worker_proc *w, uint64_t n)
{
	int64_t start = test_now_ms(), last_change = start;
	uint64_t seen = 0;

	for (;;) {
		uint64_t d = atomic_load(&c->distinct);
		int64_t now = test_now_ms();

		if (d >= n || atomic_load(&c->failed) || !worker_proc_running(w))
			return;
		if (d != seen) {
			seen = d;
			last_change = now;
		}
		if (seen ? now - last_change > BK_IDLE_MS : now - start > BK_FIRST_REPLY_MS)
			return;
		test_sleep_ms(5);
	}
}

/* redis-server's own account of its time per command (INFO commandstats):
 * calls and microseconds per event of the run, busiest first as listed. */
static void bk_print_commandstats(const struct redis_server *rs, uint64_t n)
{
	char *info = redis_server_cli(rs, "INFO", "commandstats", NULL);
	char *line, *save = NULL;

	if (!info)
		return;
	for (line = strtok_r(info, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char name[64];
		unsigned long long calls, usec;

		if (sscanf(line, "cmdstat_%63[^:]:calls=%llu,usec=%llu", name, &calls, &usec) == 3)
			fprintf(stderr, "      %-14s %9llu calls %6.2f us/event %6.2f us/call\n", name, calls,
				(double)usec / (double)n, calls ? (double)usec / (double)calls : 0.0);
	}
	free(info);
}

static void bk_print_threads(pid_t pid, uint64_t events)
{
	struct bench_thread *t;
	size_t n = bench_threads_read(pid, &t), i;

	for (i = 0; i < n; i++)
		if (t[i].cpu_us > 0)
			fprintf(stderr, "    thread %-7d %-16s %8.1f ms  %6.2f us/event  %8llu waits %6llu preempted%s\n",
				(int)t[i].tid, t[i].comm, (double)t[i].cpu_us / 1000.0,
				events ? (double)t[i].cpu_us / (double)events : 0.0, (unsigned long long)t[i].vcsw,
				(unsigned long long)t[i].ivcsw, t[i].tid == pid ? "  (main)" : "");
	free(t);
}

/* The program's own closing log line (its counters), for -v. */
static void bk_print_stop_line(const char *log_path)
{
	char line[4096], last[4096] = "";
	FILE *f = fopen(log_path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"worker stopped\"") || strstr(line, "\"passthrough stopped\""))
			memcpy(last, line, sizeof(last));
	fclose(f);
	if (last[0])
		fprintf(stderr, "    %s", last);
}

/* For -v on a rate run: the worst latency of the events sent in each
 * half second, to tell a stall (start-up, a rebalance) from a steady tail. */
static void bk_print_timeline(const int64_t *first_us, const int64_t *sent_us, uint64_t n)
{
	int64_t worst[128] = {0};
	int nb = 0, b;
	uint64_t i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		b = (int)((sent_us[i] - sent_us[0]) / 500000);
		if (b < 0 || b >= 128 || !first_us[i])
			continue;
		if (first_us[i] - sent_us[i] > worst[b])
			worst[b] = first_us[i] - sent_us[i];
		if (b + 1 > nb)
			nb = b + 1;
	}
	fprintf(stderr, "    worst latency per 0.5 s of sending (ms):");
	for (b = 0; b < nb; b++)
		fprintf(stderr, " %.0f", (double)worst[b] / 1000.0);
	fprintf(stderr, "\n");
}

static void bk_print_result(const struct bk_result *r)
{
	printf("%-11s %-10s events=%llu seconds=%.3f events/s=%.0f p50=%.1fms p99=%.1fms max=%.1fms "
	       "rss=%.1fMB cpu/event=%.2fus lost=%llu duplicates=%llu order_violations=%llu wrong_step=%llu "
	       "exit=%d%s\n",
	       bk_mode_name[r->mode], bk_kind_name[r->kind], (unsigned long long)r->events, r->seconds, r->eps,
	       r->p50_ms, r->p99_ms, r->max_ms, (double)r->hwm_kb / 1024.0, r->cpu_us_ev,
	       (unsigned long long)r->lost, (unsigned long long)r->dups, (unsigned long long)r->order,
	       (unsigned long long)r->wrong, r->exit_code, r->failed ? "  FAILED" : "");
	fflush(stdout);
}

static void bk_run(const struct bk_opts *o, enum bk_mode mode, enum bk_kind kind, int round, struct bk_result *r)
{
	uint64_t n = kind == BK_THROUGHPUT ? o->n : (uint64_t)(o->rate * o->seconds + 0.5);
	struct kafka_mock *km = NULL;
	struct redis_server *rs = NULL;
	struct worker_proc *w = NULL, *perf = NULL;
	rd_kafka_t *rate_rk = NULL;
	struct bk_collector c;
	bool c_init = false, collector = false; /* c's arrays / c's thread */
	int64_t *sent_us = calloc(n ? n : 1, sizeof(*sent_us)), *lat = NULL;
	char log_path[256], name[64];
	struct bench_proc pr;
	uint64_t i, k = 0;

	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->kind = kind;
	r->round = round;
	r->events = n;
	r->exit_code = -1;
	r->failed = true;
	snprintf(name, sizeof(name), "%s-%s-%d", bk_mode_name[mode], bk_kind_name[kind], round);
	snprintf(log_path, sizeof(log_path), "/tmp/bench_kafka-%d-%s.log", (int)getpid(), name);
	unlink(log_path);
	if (!sent_us)
		goto out;
	if (!(km = kafka_mock_start(KAFKA_MOCK_DEFAULT_TOPICS, 1)))
		goto out;
	if (mode == BK_WORKER && o->redis && !(rs = redis_server_start(REDIS_SERVER_PLAIN)))
		goto out;
	c_init = true;
	if (bk_collector_start(&c, kafka_mock_bootstrap(km), n, o->phones, mode == BK_WORKER) != 0) {
		fprintf(stderr, "bench_kafka: cannot start the collector\n");
		goto out;
	}
	collector = true;
	if (kind == BK_THROUGHPUT && (bk_produce_range(o, kafka_mock_bootstrap(km), 0, n, sent_us) != 0 ||
				      bk_check_kept(kafka_mock_bootstrap(km)) != 0))
		goto out;
	if (!(w = bk_start_process(o, mode, kafka_mock_bootstrap(km), rs, log_path))) {
		fprintf(stderr, "bench_kafka: cannot start %s\n", bk_mode_name[mode]);
		goto out;
	}
	if (o->perf_dir)
		perf = bk_perf_start(o, worker_proc_pid(w), name);
	if (kind == BK_RATE) {
		int64_t deadline = test_now_ms() + BK_FIRST_REPLY_MS;

		if (!(rate_rk = bk_rate_producer_new(kafka_mock_bootstrap(km))))
			goto out;
		for (i = 0; i < BK_WARM_N; i++)
			if (bk_produce_one(rate_rk, o, BK_WARM_BASE + i, NULL) != 0)
				goto out;
		if (bk_flush(rate_rk) != 0)
			goto out;
		while (atomic_load(&c.warm) < BK_WARM_N && test_now_ms() < deadline && worker_proc_running(w))
			test_sleep_ms(5);
		if (atomic_load(&c.warm) < BK_WARM_N) {
			fprintf(stderr, "bench_kafka: %s: warm-up not answered (%llu of %u)\n", name,
				(unsigned long long)atomic_load(&c.warm), BK_WARM_N);
			goto out;
		}
		if (bk_produce_paced(rate_rk, o, n, sent_us) != 0)
			goto out;
	}
	bk_wait_replies(&c, w, n);
	/* every reply is in: read the process's figures before stopping it */
	if (bench_proc_read(worker_proc_pid(w), &pr) == 0) {
		r->cpu_us = pr.cpu_us;
		r->hwm_kb = pr.hwm_kb;
	}
	if (o->verbose) {
		struct bench_proc other;

		bk_print_threads(worker_proc_pid(w), n);
		if (bench_proc_read(kafka_mock_pid(km), &other) == 0)
			fprintf(stderr, "    wb-mock-kafka    %8.1f ms  %6.2f us/event (the broker, whole run)\n",
				(double)other.cpu_us / 1000.0, (double)other.cpu_us / (double)n);
		if (rs && bench_proc_read(redis_server_pid(rs), &other) == 0)
			fprintf(stderr, "    redis-server     %8.1f ms  %6.2f us/event\n",
				(double)other.cpu_us / 1000.0, (double)other.cpu_us / (double)n);
		if (rs)
			bk_print_commandstats(rs, n);
	}
	if (perf) {
		worker_proc_signal(perf, SIGINT);
		worker_proc_wait(perf, 30000);
	}
	worker_proc_signal(w, SIGTERM);
	r->exit_code = worker_proc_wait(w, BK_STOP_MS);
	if (o->verbose)
		bk_print_stop_line(log_path);
	bk_collector_stop(&c);
	collector = false;

	/* figures */
	r->replied = atomic_load(&c.distinct);
	r->lost = n - r->replied;
	r->dups = c.dups;
	r->order = c.order;
	r->wrong = c.wrong;
	r->unknown = c.unknown;
	if (r->replied > 1) {
		r->seconds = (double)(atomic_load(&c.last_at) - atomic_load(&c.first_at)) / 1e6;
		r->eps = r->seconds > 0 ? (double)(r->replied - 1) / r->seconds : 0;
	}
	r->cpu_us_ev = n ? (double)r->cpu_us / (double)n : 0;
	if ((lat = malloc((r->replied ? r->replied : 1) * sizeof(*lat)))) {
		for (i = 0; i < n; i++)
			if (c.first_us[i])
				lat[k++] = c.first_us[i] - sent_us[i];
		r->p50_ms = (double)bench_quantile(lat, k, 0.50) / 1000.0;
		r->p99_ms = (double)bench_quantile(lat, k, 0.99) / 1000.0;
		r->max_ms = (double)bench_quantile(lat, k, 1.0) / 1000.0;
	}
	if (o->verbose && kind == BK_RATE)
		bk_print_timeline(c.first_us, sent_us, n);
	r->done = true;
	r->failed = r->lost || r->order || r->wrong || r->exit_code != 0;
	if (c.unknown)
		fprintf(stderr, "bench_kafka: %s: %llu replies named no known event\n", name,
			(unsigned long long)c.unknown);
out:
	if (collector)
		bk_collector_stop(&c);
	if (perf) {
		worker_proc_signal(perf, SIGINT);
		worker_proc_wait(perf, 30000);
		worker_proc_destroy(perf);
	}
	if (w && worker_proc_running(w)) {
		worker_proc_signal(w, SIGTERM);
		worker_proc_wait(w, BK_STOP_MS);
	}
	worker_proc_destroy(w);
	if (rate_rk)
		rd_kafka_destroy(rate_rk);
	if (c_init)
		bk_collector_free(&c);
	redis_server_stop(rs);
	kafka_mock_stop(km);
	free(sent_us);
	free(lat);
	bk_print_result(r);
	if (r->failed || o->keep_logs)
		fprintf(stderr, "bench_kafka: log of the %s: %s\n", bk_mode_name[mode], log_path);
	else
		unlink(log_path);
}

/* --- summary ---------------------------------------------------------- */

static int bk_dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of field (an offset into bk_result holding a double) over the
 * completed runs of mode and kind; -1 when there is none. */
static double bk_median(const struct bk_result *rs, size_t n, enum bk_mode mode, enum bk_kind kind, size_t field)
{
	double v[64];
	size_t k = 0, i;

	for (i = 0; i < n && k < 64; i++)
		if (rs[i].done && rs[i].mode == mode && rs[i].kind == kind)
			v[k++] = *(const double *)((const char *)&rs[i] + field);
	if (k == 0)
		return -1;
	qsort(v, k, sizeof(v[0]), bk_dbl_cmp);
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

static void bk_ratio_line(const char *what, double worker, double ceiling, const char *unit, double target,
			  bool at_most, bool applies)
{
	double ratio;

	if (worker < 0 || ceiling <= 0) {
		printf("  %-34s n/a\n", what);
		return;
	}
	ratio = worker / ceiling;
	printf("  %-34s worker %9.2f %-5s ceiling %9.2f %-5s ratio %5.2f  target %s %.2f: %s\n", what, worker, unit,
	       ceiling, unit, ratio, at_most ? "<=" : ">=", target,
	       !applies ? "(not a target here)" : (at_most ? ratio <= target : ratio >= target) ? "met" : "MISSED");
}

static void bk_summary(const struct bk_opts *o, const struct bk_result *rs, size_t n)
{
	size_t i;

	printf("\nsummary (%llu events over %llu phones, 16 partitions, %s store, WORKER_THREADS=%d, %d CPUs)\n",
	       (unsigned long long)o->n, (unsigned long long)o->phones, o->redis ? "redis" : "memory", o->threads,
	       bench_ncpu());
	printf("  %-5s %-11s %-10s %8s %8s %9s %8s %8s %8s %7s %8s %5s %4s %5s %5s %4s\n", "round", "program", "run",
	       "events", "seconds", "events/s", "p50 ms", "p99 ms", "max ms", "rss MB", "cpu us/e", "lost", "dup",
	       "order", "wrong", "exit");
	for (i = 0; i < n; i++) {
		const struct bk_result *r = &rs[i];

		if (!r->done) {
			printf("  %-5d %-11s %-10s (did not run to the end)\n", r->round, bk_mode_name[r->mode],
			       bk_kind_name[r->kind]);
			continue;
		}
		printf("  %-5d %-11s %-10s %8llu %8.3f %9.0f %8.1f %8.1f %8.1f %7.1f %8.2f %5llu %4llu %5llu %5llu "
		       "%4d\n",
		       r->round, bk_mode_name[r->mode], bk_kind_name[r->kind], (unsigned long long)r->events,
		       r->seconds, r->eps, r->p50_ms, r->p99_ms, r->max_ms, (double)r->hwm_kb / 1024.0, r->cpu_us_ev,
		       (unsigned long long)r->lost, (unsigned long long)r->dups, (unsigned long long)r->order,
		       (unsigned long long)r->wrong, r->exit_code);
	}
	if (o->only >= 0)
		return;
	printf("\nworker against the pass-through (medians over %d round%s):\n", o->repeat, o->repeat > 1 ? "s" : "");
	if (o->do_throughput) {
		bk_ratio_line(o->redis ? "throughput (redis store)" : "throughput (memory store)",
			      bk_median(rs, n, BK_WORKER, BK_THROUGHPUT, offsetof(struct bk_result, eps)),
			      bk_median(rs, n, BK_PASSTHROUGH, BK_THROUGHPUT, offsetof(struct bk_result, eps)), "ev/s",
			      o->redis ? 0.50 : 0.75, false, true);
		bk_ratio_line("CPU per event (throughput run)",
			      bk_median(rs, n, BK_WORKER, BK_THROUGHPUT, offsetof(struct bk_result, cpu_us_ev)),
			      bk_median(rs, n, BK_PASSTHROUGH, BK_THROUGHPUT, offsetof(struct bk_result, cpu_us_ev)),
			      "us", 2.5, true, !o->redis);
	}
	if (o->do_rate) {
		char what[64];

		snprintf(what, sizeof(what), "p99 latency at %.0f ev/s", o->rate);
		bk_ratio_line(what, bk_median(rs, n, BK_WORKER, BK_RATE, offsetof(struct bk_result, p99_ms)),
			      bk_median(rs, n, BK_PASSTHROUGH, BK_RATE, offsetof(struct bk_result, p99_ms)), "ms", 1.5,
			      true, true);
		bk_ratio_line("CPU per event (rate run)",
			      bk_median(rs, n, BK_WORKER, BK_RATE, offsetof(struct bk_result, cpu_us_ev)),
			      bk_median(rs, n, BK_PASSTHROUGH, BK_RATE, offsetof(struct bk_result, cpu_us_ev)), "us",
			      2.5, true, false);
	}
}

/* --- main ------------------------------------------------------------- */

static void bk_usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [options]\n"
		"  -n N                events of a throughput run (default 100000)\n"
		"  -p P                phones (default 10000)\n"
		"  --redis             the worker keeps contexts in a fresh redis-server (default: memory)\n"
		"  --threads N         WORKER_THREADS (default: online CPUs)\n"
		"  --rate R            events/s of the fixed-rate run (default 10000)\n"
		"  --seconds S         length of the fixed-rate run (default 6)\n"
		"  --only PROGRAM      worker or passthrough (default: both, pass-through first)\n"
		"  --repeat K          rounds (default 1); ratios use the medians\n"
		"  -f acs|meta|mixed   payload format (default mixed: ACS for even phones, Meta for odd)\n"
		"  --no-rate           throughput runs only\n"
		"  --no-throughput     fixed-rate runs only\n"
		"  --perf DIR          perf record -g each process under test into DIR/perf-<run>.data\n"
		"  --worker-bin PATH   the wabot-worker to run (default: this build's), e.g. an older\n"
		"                      commit's built in a git worktree, to compare the two\n"
		"  --fetch-wait-ms N   fetch.wait.max.ms of the process under test (default 10; -1:\n"
		"                      librdkafka's 500, which the mock waits out in full; see the top)\n"
		"  --env NAME=VALUE    extra environment for both programs (repeatable), e.g.\n"
		"                      WORKER_QUEUE_DEPTH=4096 or KAFKA_PROP_linger.ms=20\n"
		"  --keep-logs         keep the logs of the processes under test (/tmp/bench_kafka-*.log)\n"
		"  -v                  CPU time per thread of the process under test\n",
		argv0);
}

int main(int argc, char **argv)
{
	enum { OPT_REDIS = 256, OPT_THREADS, OPT_RATE, OPT_SECONDS, OPT_ONLY, OPT_REPEAT, OPT_NO_RATE,
	       OPT_NO_THROUGHPUT, OPT_PERF, OPT_KEEP_LOGS, OPT_FETCH_WAIT, OPT_ENV,
	       OPT_WORKER_BIN };
	static const struct option lopts[] = {
		{"redis", no_argument, NULL, OPT_REDIS},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"rate", required_argument, NULL, OPT_RATE},
		{"seconds", required_argument, NULL, OPT_SECONDS},
		{"only", required_argument, NULL, OPT_ONLY},
		{"repeat", required_argument, NULL, OPT_REPEAT},
		{"no-rate", no_argument, NULL, OPT_NO_RATE},
		{"no-throughput", no_argument, NULL, OPT_NO_THROUGHPUT},
		{"perf", required_argument, NULL, OPT_PERF},
		{"worker-bin", required_argument, NULL, OPT_WORKER_BIN},
		{"keep-logs", no_argument, NULL, OPT_KEEP_LOGS},
		{"fetch-wait-ms", required_argument, NULL, OPT_FETCH_WAIT},
		{"env", required_argument, NULL, OPT_ENV},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bk_opts o = {
		.n = 100000, .phones = 10000, .threads = bench_ncpu(), .rate = 10000, .seconds = 6, .only = -1,
		.repeat = 1, .format = BK_MIXED, .do_throughput = true, .do_rate = true, .fetch_wait_ms = 10,
		.worker_bin = WB_WORKER_BIN,
	};
	struct bk_result *rs;
	size_t nr = 0, i;
	int opt, round, m, failed = 0;

	while ((opt = getopt_long(argc, argv, "n:p:f:vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'n': o.n = strtoull(optarg, NULL, 10); break;
		case 'p': o.phones = strtoull(optarg, NULL, 10); break;
		case 'f':
			if (strcmp(optarg, "acs") == 0)
				o.format = BK_ACS;
			else if (strcmp(optarg, "meta") == 0)
				o.format = BK_META;
			else
				o.format = BK_MIXED;
			break;
		case 'v': o.verbose = true; break;
		case OPT_REDIS: o.redis = true; break;
		case OPT_THREADS: o.threads = atoi(optarg); break;
		case OPT_RATE: o.rate = atof(optarg); break;
		case OPT_SECONDS: o.seconds = atof(optarg); break;
		case OPT_ONLY:
			if (strcmp(optarg, "worker") == 0)
				o.only = BK_WORKER;
			else if (strcmp(optarg, "passthrough") == 0)
				o.only = BK_PASSTHROUGH;
			else {
				bk_usage(stderr, argv[0]);
				return 2;
			}
			break;
		case OPT_REPEAT: o.repeat = atoi(optarg); break;
		case OPT_NO_RATE: o.do_rate = false; break;
		case OPT_NO_THROUGHPUT: o.do_throughput = false; break;
		case OPT_PERF: o.perf_dir = optarg; break;
		case OPT_WORKER_BIN: o.worker_bin = optarg; break;
		case OPT_KEEP_LOGS: o.keep_logs = true; break;
		case OPT_FETCH_WAIT: o.fetch_wait_ms = atoi(optarg); break;
		case OPT_ENV:
			if (o.nenv == BK_MAX_ENV || !strchr(optarg, '=')) {
				fprintf(stderr, "bench_kafka: --env NAME=VALUE, at most %d\n", BK_MAX_ENV);
				return 2;
			}
			o.env[o.nenv++] = optarg;
			break;
		case 'h': bk_usage(stdout, argv[0]); return 0;
		default: bk_usage(stderr, argv[0]); return 2;
		}
	}
	if (o.n < 2 || o.n > BK_MAX_EVENTS || o.phones < 1 || o.phones > 999999999 || o.threads < 1 ||
	    o.threads > 256 || o.rate <= 0 || o.seconds <= 0 || o.rate * o.seconds > (double)BK_MAX_EVENTS ||
	    o.repeat < 1 || o.repeat > 16 || (!o.do_rate && !o.do_throughput)) {
		fprintf(stderr, "bench_kafka: an option is out of range\n");
		bk_usage(stderr, argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!(rs = calloc((size_t)o.repeat * 4, sizeof(*rs))))
		return 1;
	printf("bench_kafka: librdkafka %s, %d CPUs, %s store, WORKER_THREADS=%d, %llu events over %llu phones, "
	       "fixed rate %.0f ev/s for %.0f s, fetch.wait.max.ms=%d\n",
	       rd_kafka_version_str(), bench_ncpu(), o.redis ? "redis" : "memory", o.threads,
	       (unsigned long long)o.n, (unsigned long long)o.phones, o.rate, o.seconds, o.fetch_wait_ms);
	fflush(stdout);
	for (round = 1; round <= o.repeat; round++)
		for (int kind = BK_THROUGHPUT; kind <= BK_RATE; kind++) {
			if ((kind == BK_THROUGHPUT && !o.do_throughput) || (kind == BK_RATE && !o.do_rate))
				continue;
			for (m = BK_PASSTHROUGH; m <= BK_WORKER; m++) {
				if (o.only >= 0 && o.only != m)
					continue;
				bk_run(&o, (enum bk_mode)m, (enum bk_kind)kind, round, &rs[nr]);
				failed |= rs[nr].failed;
				nr++;
			}
		}
	bk_summary(&o, rs, nr);
	for (i = 0; i < nr; i++)
		if (rs[i].failed)
			printf("FAILED: round %d %s %s: lost %llu, order violations %llu, wrong steps %llu, exit %d\n",
			       rs[i].round, bk_mode_name[rs[i].mode], bk_kind_name[rs[i].kind],
			       (unsigned long long)rs[i].lost, (unsigned long long)rs[i].order,
			       (unsigned long long)rs[i].wrong, rs[i].exit_code);
	free(rs);
	return failed ? 1 : 0;
}
