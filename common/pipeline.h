/*
 * pipeline.h - one inbound record through the whole conversation path:
 * decode -> context store get -> flow step -> context store put ->
 * encode replies, plus the dead-letter records for what cannot be used.
 *
 * This is what a worker thread does with each Kafka record, and what
 * `wabot-worker replay` does with each recorded line, so both behave the
 * same by construction. Output leaves through a callback as finished
 * records (topic kind, key, JSON value); the caller produces them to Kafka
 * or writes them out.
 *
 * Dead-letter record value (this project's contract, topic wa.dlq):
 *   {"reason":"invalid_json","error":"<one line>","stage":"decode"|"event"|"store"|"flow"|"reply",
 *    "event_index":N (only for one event of a good record),"event_id":"..." (when known),
 *    "source":{"topic":..,"partition":..,"offset":..,"key":..} (what is known),
 *    "payload":"<the original record value>"}  -- or "payload_base64" when the
 *    value is not valid UTF-8, so it is carried byte for byte either way.
 *
 * Owns: a pipeline_t owns one decoder, one flow session and its buffers; it
 * borrows the flow and the store (both shared between threads). One thread
 * per pipeline_t.
 */
#ifndef WB_PIPELINE_H
#define WB_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx_store.h"
#include "err.h"
#include "flow.h"

typedef struct pipeline pipeline_t;

enum pipeline_out {
	PIPELINE_OUT_REPLY = 0, /* to the outbound topic */
	PIPELINE_OUT_DLQ,       /* to the dead-letter topic */
};

/*
 * Receives each output record. key/value are borrowed for the call (value is
 * JSON, len bytes, NUL-terminated). Returns WB_OK, or an error that stops
 * the processing of the current record (pipeline_process returns it).
 */
typedef wb_err_t (*pipeline_emit_fn)(void *opaque, enum pipeline_out out, const char *key, size_t key_len,
				     const char *value, size_t len);

/* Where a record came from, for the dead-letter envelope. Borrowed. */
struct pipeline_source {
	const char *topic;   /* NULL: unknown */
	int32_t partition;   /* -1: unknown */
	int64_t offset;      /* -1: unknown */
	const char *key;     /* record key; may be NULL */
	size_t key_len;
};

struct pipeline_opts {
	const char *acs_api_version; /* NULL: REPLY_ACS_API_VERSION */
	uint32_t ttl_ms;             /* context TTL; 0: the store's default */
};

/* Counters since pipeline_new(); plain fields (one thread). */
struct pipeline_stats {
	uint64_t records;      /* records processed */
	uint64_t events;       /* events decoded (including dead-lettered ones) */
	uint64_t replies;      /* replies emitted (re-emitted ones included) */
	uint64_t dlq;          /* dead-letter records emitted */
	uint64_t duplicates;   /* events seen before: not applied again */
	uint64_t statuses;     /* status events applied */
	uint64_t ignored;      /* validation and other events with nothing to do */
	uint64_t conflicts;    /* compare-and-set retries */
	uint64_t fresh_starts; /* events that found no usable context */
};

pipeline_t *pipeline_new(const flow_t *flow, ctx_store_t *cs, const struct pipeline_opts *opts);
void pipeline_destroy(pipeline_t *p); /* NULL ok */

/*
 * Processes one record value (len bytes at payload). Bad input never fails
 * the call: it becomes dead-letter output. Returns WB_OK when everything was
 * emitted; a store error that is worth retrying (the store is down:
 * wb_err_is_retriable) or an emit error is returned as is, and then the
 * record must be processed again later (events already applied are
 * recognised as duplicates and re-emit their replies). now_s: wall clock.
 */
wb_err_t pipeline_process(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			  int64_t now_s, pipeline_emit_fn emit, void *opaque);

void pipeline_stats(const pipeline_t *p, struct pipeline_stats *out);

#endif /* WB_PIPELINE_H */
