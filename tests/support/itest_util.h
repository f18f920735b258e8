/*
 * itest_util.h - what the integration tests (tests/integration/itest_*.c)
 * share: a model of the inbound stream they produce (phones, events, the
 * donations cycle each phone runs through, malformed records), worker
 * processes started with the test environment, and the checks on what came
 * out (replies, dead letters, committed offsets, the worker's final
 * counters).
 *
 * Owns: what each _new returns (freed by its _destroy). Not thread-safe,
 * except itest_producer, whose thread produces while the test thread drives
 * the workers. Independent of the code under test: it reads the worker's
 * output from Kafka (kafka_client.h) and its JSON log lines, nothing else.
 * Never prints a full phone number: phones are named by their index.
 */
#ifndef WB_TEST_ITEST_UTIL_H
#define WB_TEST_ITEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_client.h"
#include "worker_proc.h"

#define ITEST_INBOUND "wa.inbound"
#define ITEST_OUTBOUND "wa.outbound"
#define ITEST_DLQ "wa.dlq"
#define ITEST_INBOUND_PARTITIONS 16
#define ITEST_TOPICS "wa.inbound:16,wa.outbound:16,wa.dlq:4"

/* --- the inbound stream ------------------------------------------------ */

/* One good event: the seq-th text message of the stream (seq is also its
 * index in itest_stream.ev and what payload_text() encodes in its id). */
struct itest_event {
	uint32_t phone; /* index into the stream's phones */
	uint32_t k;     /* index among this phone's events: cycle position k % 4 */
	int meta;       /* 1: Meta webhook, 0: ACS Event Grid */
};

/* A malformed record, to be dead-lettered. */
struct itest_bad {
	const char *name;   /* what it is, for messages */
	const char *reason; /* the dead-letter reason expected */
	char *value;        /* owned; NULL: a null value (tombstone) */
	size_t len;
	int phone;          /* its key is this phone's; -1: no key */
};

struct itest_stream {
	uint32_t nphones;
	char (*digits)[16]; /* "5731xxxxxxxx" per phone */
	char (*key)[18];    /* "+5731xxxxxxxx": the record key and reply phone */
	size_t n;           /* good events */
	struct itest_event *ev;
	uint32_t *count;    /* events per phone */
	size_t nbad;
	struct itest_bad *bad;
};

/*
 * A stream of n events over nphones phones (every phone gets at least one
 * when n >= nphones; the rest are spread pseudo-randomly from seed), ACS and
 * Meta mixed, plus, when with_bad, the fixed set of malformed records (about
 * 20; see itest_util.c). NULL on ENOMEM. Free with itest_stream_destroy.
 */
struct itest_stream *itest_stream_new(uint32_t nphones, size_t n, uint64_t seed, bool with_bad);
void itest_stream_destroy(struct itest_stream *s); /* NULL ok */

/* The event id payload_text() puts in the event of seq (what "in_reply_to"
 * must carry), into buf. */
void itest_event_id(const struct itest_stream *s, size_t seq, char *buf, size_t cap);

/*
 * Produces events [from, to) in seq order, keyed by phone, partitioned by
 * key; the malformed records whose index b satisfies
 * from <= b * s->n / s->nbad < to are slotted in among them at that place.
 * 0 or -1 with errstr.
 */
int itest_produce(const char *bootstrap, const struct itest_stream *s, size_t from, size_t to, char *errstr,
		  size_t errsz);

/*
 * Produces one record of any size (up to 8 MiB; kafka_produce's client
 * stops at librdkafka's 1 MB default) to partition (>= 0) of topic, with
 * key (NULL: none). 0 or -1 with errstr.
 */
int itest_produce_big(const char *bootstrap, const char *topic, int32_t partition, const char *key,
		      const void *value, size_t len, char *errstr, size_t errsz);

/*
 * A background thread producing events [0, s->n) in batches of `batch`,
 * one batch every period_ms (the malformed records come along as in
 * itest_produce). itest_producer_done() says whether all were produced;
 * itest_producer_join() waits for the end and returns 0 or -1 (errstr).
 */
struct itest_producer;
struct itest_producer *itest_producer_start(const char *bootstrap, const struct itest_stream *s, size_t batch,
					    int period_ms);
size_t itest_producer_produced(struct itest_producer *p); /* events produced so far */
int itest_producer_join(struct itest_producer *p, char *errstr, size_t errsz); /* frees p */

/* --- workers ----------------------------------------------------------- */

/*
 * Starts `wabot-worker run` (WB_WORKER_BIN) in group `group` against
 * bootstrap, with REDIS_URL = redis_url (NULL: memory store),
 * WORKER_THREADS=4, LOG_LEVEL=info, a 6 s session timeout and 500 ms
 * heartbeats, the sanitizer options of this process passed on, plus extra
 * ("NAME=value", NULL-terminated; may be NULL; a later entry wins over the
 * defaults). stderr is appended to log_path. NULL when fork fails.
 */
struct worker_proc *itest_worker_start(const char *bootstrap, const char *group, const char *redis_url,
				       const char *log_path, const char *const *extra);

/* The counters of the last "worker stopped" line in log_path. */
struct itest_worker_stats {
	bool found;
	uint64_t records, done, events, replies, dead_lettered, duplicates, redone, abandoned, output_failed,
		store_retries, poison, pauses, room_waits, hold_waits, rebalances;
};
struct itest_worker_stats itest_log_stats(const char *log_path);

/* "partitions assigned" lines of log_path that assigned at least one
 * partition (a cooperative member's first round often assigns none). */
size_t itest_log_assignments(const char *log_path);

/* Waits up to timeout_ms until itest_log_assignments() >= n. */
bool itest_log_wait_assignments(const char *log_path, size_t n, int timeout_ms);

/* Lines of log_path containing needle (e.g. "\"msg\":\"partitions assigned\""). */
size_t itest_log_count(const char *log_path, const char *needle);

/* Waits up to timeout_ms until log_path has at least n lines with needle. */
bool itest_log_wait(const char *log_path, const char *needle, size_t n, int timeout_ms);

/* Copies the last `lines` lines of log_path to stderr under a header. */
void itest_log_tail(const char *log_path, size_t lines);

/* Lines of log_path at level "error" or "warn" whose message has none of
 * the allowed substrings (NULL-terminated list, may be NULL); the first is
 * copied to first (may be NULL). */
size_t itest_log_unexpected(const char *log_path, const char *const *allowed, char *first, size_t cap);

/* --- checks ------------------------------------------------------------ */

/* Events answered in recs: distinct "in_reply_to" values (NULL: 0). */
size_t itest_distinct_replies(const struct kafka_recs *recs);

/*
 * Reads the outbound topic until it answers at least want distinct events
 * and nothing new arrived for 300 ms, or until timeout_ms. Caller frees the
 * result (kafka_recs_free); NULL only when the topic cannot be read.
 */
struct kafka_recs *itest_wait_replies(const char *bootstrap, size_t want, int timeout_ms);

enum itest_check_mode {
	ITEST_STRICT,  /* replies follow the cycle: no conversation advanced twice or lost */
	ITEST_RELAXED, /* contexts may have been lost (Redis restarted empty): steps not
			* checked, and an event may have more replies than ":0" */
};

/* What the reply check found. */
struct itest_reply_report {
	size_t records;    /* outbound records */
	size_t distinct;   /* distinct reply ids */
	size_t duplicates; /* copies of a reply id already seen */
	size_t extra;      /* RELAXED: further replies (":1", ...) to one event, not checked */
	size_t missing;    /* good events without a reply */
	size_t problems;   /* everything wrong, missing included */
	int64_t bad_phone; /* the phone of the first problem with one, else -1 */
	char first[2048];  /* the first problems, one per line */
};

/*
 * Checks out (the whole outbound topic) against s: every record keyed by
 * its reply's phone, naming an event of s ("in_reply_to") with reply id
 * "<in_reply_to>:0"; every good event has exactly one distinct reply id;
 * every copy of a reply id carries the same event and step; all replies of
 * one phone sit in one partition; per phone, the first occurrences (in
 * partition order) follow the phone's events in order, and in STRICT mode
 * carry payload_cycle_step[k % 4]. Returns problems (0: all good).
 */
size_t itest_check_replies(const struct itest_stream *s, const struct kafka_recs *out, enum itest_check_mode mode,
			   struct itest_reply_report *rep);

/*
 * For a failure message: every outbound record of phone (its index in s),
 * in topic order, one per line: partition@offset, record time, event seq
 * and k, reply number, step; then the phone's events. Into buf.
 */
void itest_phone_history(const struct itest_stream *s, const struct kafka_recs *out, uint32_t phone, char *buf,
			 size_t cap);

/*
 * For a failure message: the events of s without a ":0" reply in out,
 * counted per inbound partition (from the keys of in), into buf.
 */
void itest_missing_by_partition(const struct itest_stream *s, const struct kafka_recs *in, const struct kafka_recs *out,
				char *buf, size_t cap);

/*
 * Checks the dead letters against the inbound topic as read back (in) and
 * the malformed records of s: each malformed record is found in `in` by its
 * bytes and key; the DLQ holds it (matched by the source_partition and
 * source_offset headers) with headers reason (= the value's "reason" = the
 * expected reason), source_topic, source_partition, source_offset,
 * consumer_group (= group), attempts (>= 1), its original key, and its
 * original bytes in "payload" (or "payload_base64"); nothing else is in
 * the DLQ; exactly_once: no malformed record is there twice. Problems are
 * appended to first (cap bytes). Returns the number of problems.
 */
size_t itest_check_dlq(const struct itest_stream *s, const struct kafka_recs *in, const struct kafka_recs *dlq,
		       const char *group, bool exactly_once, char *first, size_t cap);

/*
 * High watermark of each inbound partition, from the inbound topic as read
 * back (in): hwm[p] = last offset + 1, 0 for an empty partition.
 */
void itest_high_watermarks(const struct kafka_recs *in, int64_t hwm[ITEST_INBOUND_PARTITIONS]);

/*
 * Reads the inbound topic back (it must hold the stream's `events` good
 * records and all its malformed ones) and the DLQ, checks the DLQ with
 * itest_check_dlq, and fills hwm with the inbound high watermarks. Returns
 * the number of problems (an inbound topic that cannot be read or holds
 * another count is one), described in first.
 */
size_t itest_check_inbound_and_dlq(const char *bootstrap, const char *group, const struct itest_stream *s,
				   size_t events, bool dlq_exactly_once, int64_t hwm[ITEST_INBOUND_PARTITIONS],
				   char *first, size_t cap);

/*
 * Waits up to timeout_ms until group's committed offset of every inbound
 * partition equals hwm (an empty partition may also have none). Returns
 * the number of partitions that differ at the end, described in first.
 */
size_t itest_wait_committed(const char *bootstrap, const char *group, const int64_t hwm[ITEST_INBOUND_PARTITIONS],
			    int timeout_ms, char *first, size_t cap);

/* --- scratch directory ------------------------------------------------- */

/* mkdtemp under $TMPDIR (or /tmp) named after tag; NULL on failure.
 * itest_dir_path(dir, "w1.log") gives a path inside it (static buffer per
 * call site is NOT used: the result is malloc'd; free it). */
char *itest_dir_new(const char *tag);
char *itest_dir_path(const char *dir, const char *name);
/* Removes the directory and its files (flat). NULL ok. */
void itest_dir_remove(char *dir);

/* --- the harness: one mock cluster, maybe a redis-server, workers ------ */

#define ITEST_MAX_WORKERS 8

struct redis_server;
struct kafka_mock;

/* Everything one integration test starts; itest_harness_destroy stops it. */
struct itest_harness {
	char *dir;                 /* scratch directory: worker logs */
	struct kafka_mock *km;
	struct redis_server *rs;   /* NULL: memory store */
	const char *bootstrap;     /* borrowed from km */
	char group[80];            /* a group id of its own */
	struct worker_proc *w[ITEST_MAX_WORKERS];
	char *log[ITEST_MAX_WORKERS];
	int nw;                    /* workers started so far (w[i] NULL once reaped and freed) */
	bool failed;               /* set by itest_harness_dump: keep the directory */
};

/* Starts a mock cluster with ITEST_TOPICS and, when with_redis, a
 * redis-server; the group id and directory are named after tag. NULL (and
 * a reason on stderr) when something does not start. */
struct itest_harness *itest_harness_new(const char *tag, bool with_redis);

/* Starts worker number h->nw (log "w<n>.log") with itest_worker_start;
 * returns its index, or -1. */
int itest_harness_worker(struct itest_harness *h, const char *const *extra);

/* Sends SIGTERM to worker i and waits up to timeout_ms: its exit code,
 * 128+signal, or -1 when still running. */
int itest_harness_stop_worker(struct itest_harness *h, int i, int timeout_ms);

/* Worker logs holding a sanitizer report (AddressSanitizer, LeakSanitizer,
 * UBSan "runtime error:", ThreadSanitizer); the first such line is copied
 * to first. A SIGKILLed worker cannot report leaks; the others can. */
size_t itest_harness_sanitizer_reports(struct itest_harness *h, char *first, size_t cap);

/* Prints the tail of every worker log (and the redis-server log) to stderr
 * and marks the harness failed (the directory is kept). */
void itest_harness_dump(struct itest_harness *h);

/* SIGKILLs what still runs, stops redis-server and the mock, removes the
 * directory unless a dump marked a failure or ITEST_KEEP is set in the
 * environment. NULL ok. */
void itest_harness_destroy(struct itest_harness *h);

/*
 * Criterion assertion that first prints the logs: use in test files
 * (which include criterion) as IT_ASSERT(h, cond, "fmt", ...).
 */
#define IT_ASSERT(h, cond, ...)                                                                                        \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			itest_harness_dump(h);                                                                         \
			cr_assert_fail(__VA_ARGS__);                                                                   \
		}                                                                                                      \
	} while (0)

/* Fails the test when a worker log holds a sanitizer report. */
#define IT_ASSERT_NO_SANITIZER_REPORTS(h)                                                                             \
	do {                                                                                                           \
		char it_first_[512];                                                                                   \
		size_t it_n_ = itest_harness_sanitizer_reports(h, it_first_, sizeof it_first_);                        \
		IT_ASSERT(h, it_n_ == 0, "sanitizer reports in %zu worker logs, the first:\n%s", it_n_, it_first_);   \
	} while (0)

#endif /* WB_TEST_ITEST_UTIL_H */
