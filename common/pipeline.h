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

/* One output record. Every pointer is borrowed for the emit call. */
struct pipeline_output {
	enum pipeline_out out;
	const char *key;    /* the phone (reply); the record key, else the event's phone (DLQ) */
	size_t key_len;
	const char *value;  /* JSON, len bytes, NUL-terminated */
	size_t len;
	const char *reason; /* DLQ: the stable reason ("invalid_json", ...); reply: NULL */
};

/*
 * Receives each output record. Returns WB_OK, or an error that stops the
 * processing of the current record (pipeline_process returns it).
 */
typedef wb_err_t (*pipeline_emit_fn)(void *opaque, const struct pipeline_output *o);

/* Where a record came from, for the dead-letter envelope. Borrowed. */
struct pipeline_source {
	const char *topic;   /* NULL: unknown */
	int32_t partition;   /* -1: unknown */
	int64_t offset;      /* -1: unknown */
	int64_t timestamp_ms; /* the record's timestamp; -1: unknown */
	const char *key;     /* record key; may be NULL */
	size_t key_len;
	/* Lanes (worker threads; see pipeline_home_lane): with nlanes > 1 only
	 * the events of lane `lane` are applied, and whole-record dead letters
	 * are emitted by the home lane only. nlanes 0 or 1: everything. */
	uint32_t lane;
	uint32_t nlanes;
};

/*
 * Lanes: the worker splits records over nlanes threads by phone, so that
 * one phone's events always run on one thread, in order. An event's lane is
 * phone_hash(its key) % nlanes; an event without a key (and a record that
 * does not decode) belongs to the record's home lane: the lane of its first
 * event with a key, else of the record key, else 0. The consumer routes a
 * record to every lane among its events with these two functions; the
 * pipeline of each lane applies only its own events.
 */
struct wa_event;
uint32_t pipeline_home_lane(const struct wa_event *evs, size_t n, const char *key, size_t key_len, uint32_t nlanes);
uint32_t pipeline_event_lane(const struct wa_event *ev, uint32_t home, uint32_t nlanes);

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
	uint64_t key_mismatch; /* records whose key is missing or not their first phone */
};

pipeline_t *pipeline_new(const flow_t *flow, ctx_store_t *cs, const struct pipeline_opts *opts);
void pipeline_destroy(pipeline_t *p); /* NULL ok */

/*
 * Processes one record value (len bytes at payload). Bad input never fails
 * the call: it becomes dead-letter output. Returns WB_OK when everything was
 * emitted; a store error that is worth retrying (the store is down:
 * wb_err_is_retriable) or an emit error is returned as is, and then the
 * record must be processed again later (events already applied are
 * recognised as duplicates and re-emit their replies; the counters count
 * a record only when it succeeds). now_s: wall clock.
 */
wb_err_t pipeline_process(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			  int64_t now_s, pipeline_emit_fn emit, void *opaque);

/*
 * pipeline_process for a record already decoded (event_decode on payload,
 * or an event_copy of that): the same, without decoding it again. evs and
 * payload are borrowed for the call.
 */
wb_err_t pipeline_process_decoded(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
				  const struct wa_event *evs, size_t n, int64_t now_s, pipeline_emit_fn emit,
				  void *opaque);

/* One record of a batch. */
struct pipeline_rec {
	struct pipeline_source src;   /* in */
	const char *payload;          /* in */
	size_t len;                   /* in */
	const struct wa_event *evs;   /* in: decoded (event_decode/event_copy); NULL: not
	                                 decoded, or undecodable (always falls back) */
	size_t nevs;                  /* in */
	void *opaque;                 /* in: emit's first argument for this record's outputs */
	bool fallback;                /* out: not done; process it with pipeline_process */
	wb_err_t err;                 /* out: why, when known (WB_OK otherwise) */
};

/*
 * Processes recs[0..n) like pipeline_process on each in order, with two
 * store calls for all of them (ctx_store_get_many of every phone, then
 * ctx_store_put_many of each phone's last context) instead of two per
 * event; each record's outputs are emitted once its contexts are saved.
 * What the batch cannot finish (a store error or conflict, an emit error,
 * an undecoded record, more than 256 phones or 256 records) is marked
 * fallback, and so is every later record of the same phones: the caller
 * processes those with pipeline_process, in order, after this returns.
 * Events a fallback record already had saved are recognised then as
 * duplicates. A fallback record leaves the counters (pipeline_stats) as
 * if the batch had not seen it.
 */
void pipeline_process_batch(pipeline_t *p, struct pipeline_rec *recs, size_t n, int64_t now_s,
			    pipeline_emit_fn emit);

/*
 * Emits the whole record to the dead-letter topic with reason (a stable
 * name), stage and error (one line, no phone or message text): for a
 * record the caller gives up on (retries exhausted). Honours src's lane
 * like pipeline_process (only the home lane emits). WB_OK or the emit's
 * error / WB_ERR_NOMEM.
 */
wb_err_t pipeline_dead_letter(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			      const char *reason, const char *stage, const char *error, pipeline_emit_fn emit,
			      void *opaque);

void pipeline_stats(const pipeline_t *p, struct pipeline_stats *out);

#endif /* WB_PIPELINE_H */
