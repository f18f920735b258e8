/*
 * kafka_client.h - small Kafka helpers for tests and benchmarks, built on
 * librdkafka: produce a batch and wait for every delivery report, read a
 * whole topic back from the beginning, and read a group's committed offset.
 *
 * Each call creates its own short-lived client (and destroys it before
 * returning), so calls are independent and may run from any thread; no
 * call commits anything on behalf of a group. Independent of the code under
 * test: nothing here uses worker/.
 */
#ifndef WB_TEST_KAFKA_CLIENT_H
#define WB_TEST_KAFKA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* partition of a kafka_rec: librdkafka's default partitioner decides
 * (consistent_random: CRC32 of the key; a random partition when no key). */
#define KAFKA_PARTITION_BY_KEY (-1)
/* kafka_committed(): the group has no committed offset for the partition
 * (RD_KAFKA_OFFSET_INVALID). */
#define KAFKA_OFFSET_NONE (-1001)
/* kafka_committed(): the offset could not be read (reason on stderr). */
#define KAFKA_OFFSET_ERROR INT64_MIN
/* Headers per produced record, at most. */
#define KAFKA_REC_MAX_HEADERS 32

/* One header. In a kafka_rec: borrowed for the call. In a kafka_msg: owned by
 * the kafka_recs; value is NUL-terminated past value_len (for string
 * compares), and NULL for a header whose value is null. */
struct kafka_hdr {
	const char *name;
	const void *value;
	size_t value_len;
};

/* One record to produce. All pointers are borrowed for the call (values are
 * copied). Set partition to KAFKA_PARTITION_BY_KEY to let the key decide:
 * a zero-initialised record goes to partition 0. */
struct kafka_rec {
	const void *key;        /* NULL: no key */
	size_t key_len;
	const void *value;      /* NULL: null value (a tombstone) */
	size_t value_len;
	int32_t partition;      /* >= 0, or KAFKA_PARTITION_BY_KEY */
	int64_t timestamp_ms;   /* 0: now (CreateTime set by the client) */
	const struct kafka_hdr *headers;
	size_t header_cnt;      /* <= KAFKA_REC_MAX_HEADERS */
};

/* One record read back. */
struct kafka_msg {
	const char *topic;      /* borrowed from the kafka_recs */
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms;   /* -1 when the broker gave none */
	void *key;              /* NULL when the record has no key; else NUL-terminated past key_len */
	size_t key_len;
	void *value;            /* NULL for a null value; else NUL-terminated past value_len */
	size_t value_len;
	struct kafka_hdr *headers; /* header_cnt of them, in record order */
	size_t header_cnt;
};

/* Records read by kafka_consume_all, in the order they arrived: per
 * partition by offset, partitions interleaved. */
struct kafka_recs {
	struct kafka_msg *msgs;
	size_t n;
	size_t cap;             /* allocated entries of msgs */
	char *topic;            /* what every msgs[i].topic points at */
};

/*
 * Produces recs[0..n) to topic through bootstrap (linger.ms=5, idempotent,
 * so a retried batch is neither duplicated nor reordered) and waits for the
 * delivery report of every record, up to 60 s in all. When librdkafka's
 * queue is full it serves delivery reports and retries; it never flushes
 * per record (100,000 small records: about 0.15 s against the mock, 0.2 s
 * under ASan).
 * Returns 0 when every record was acknowledged, else -1 with the reason in
 * errstr (NULL allowed; always NUL-terminated).
 */
int kafka_produce(const char *bootstrap, const char *topic, const struct kafka_rec *recs, size_t n, char *errstr,
		  size_t errsz);

/*
 * Reads topic from its beginning with a fresh consumer: every partition (from
 * metadata) assigned explicitly at offset BEGINNING, no subscription, no
 * commits (a throwaway group.id is set only because librdkafka's consumer
 * poll needs one). Returns once `expect` records were read and none arrived
 * for idle_ms, or after max_ms in any case: check ->n.
 * Returns NULL (reason on stderr) when the client cannot be created, the
 * metadata cannot be read or the topic does not exist.
 * Caller owns the result; free it with kafka_recs_free().
 */
struct kafka_recs *kafka_consume_all(const char *bootstrap, const char *topic, size_t expect, int idle_ms,
				     int max_ms);

/* Frees recs and every record, key, value and header in it. NULL ok. */
void kafka_recs_free(struct kafka_recs *recs);

/* The first header of m called name, or NULL. Borrowed from m's kafka_recs. */
const struct kafka_hdr *kafka_msg_header(const struct kafka_msg *m, const char *name);

/*
 * The offset group has committed for topic/partition (the next offset it
 * will read), read with rd_kafka_committed() by a consumer configured with
 * that group.id that never subscribes (so the group is not disturbed).
 * Returns the offset, KAFKA_OFFSET_NONE when nothing was committed, or
 * KAFKA_OFFSET_ERROR (reason on stderr).
 */
int64_t kafka_committed(const char *bootstrap, const char *group, const char *topic, int32_t partition);

#endif /* WB_TEST_KAFKA_CLIENT_H */
