/*
 * flow.h - the conversation engine: a flow file (JSON) compiled once, and a
 * pure step function (context, event) -> (new context, replies).
 *
 * A flow has intents (keywords and phrases, matched case- and
 * accent-insensitively), steps, slots captured from the user's text with
 * validation, reply templates with {slot} substitution, yes/no buttons,
 * global commands (cancel, restart, help), a fallback after unrecognised
 * input, and a start for users without a context (new or expired).
 * The file format is described at the top of flow.c and in README.md; the
 * shipped flows are common/flows/donations.json (the default, embedded
 * in the binary) and common/flows/faq.json.
 *
 * The step function does no I/O. The context it reads and writes is the JSON
 * object kept by ctx_store (without "version"/"updated_at"); it keeps the
 * Django bot's field names (conversation_step, last_intent, one field per
 * slot such as customer_name, ministry_name), "delivery" (the last status
 * event), "recent" (ids of the last processed events and, for the newest of
 * them, the replies they produced, so a replayed event re-emits the same
 * replies instead of advancing the conversation again), "in" (the inbound
 * position of the last applied event, so a redelivery from further back
 * than "recent" reaches is recognised too) and keeps unknown fields
 * untouched.
 *
 * Owns: a flow_t is immutable after load and shared by all threads. A
 * flow_session_t is one thread's scratch (parse buffers, output buffers),
 * reused across steps.
 */
#ifndef WB_FLOW_H
#define WB_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "reply.h"

typedef struct flow flow_t;
typedef struct flow_session flow_session_t;

/* Most replies one step produces. */
#define FLOW_MAX_REPLIES 4
/* Events remembered per context for de-duplication. */
#define FLOW_RECENT_IDS 8
/* ... of which the newest keep their replies for re-emission. */
#define FLOW_RECENT_REPLIES 4

/*
 * Loads and validates a flow. On failure returns NULL and writes to errstr
 * one line starting with the JSON path of the problem, e.g.
 * "$.steps.waiting_for_name.slot.max_length: must be a positive integer".
 * flow_load_file reads the file at path.
 */
flow_t *flow_load_file(const char *path, char *errstr, size_t errstr_size);
flow_t *flow_load_json(const char *json, size_t len, char *errstr, size_t errstr_size);

/* The embedded default flow (common/flows/donations.json). NULL only when
 * out of memory; the embedded text is validated by the tests. */
flow_t *flow_load_default(char *errstr, size_t errstr_size);

void flow_destroy(flow_t *f); /* NULL ok */
const char *flow_name(const flow_t *f);

flow_session_t *flow_session_new(const flow_t *f); /* NULL when out of memory */
void flow_session_destroy(flow_session_t *s);     /* NULL ok */

struct flow_result {
	/* The context to store; NULL/0 when nothing is to be written
	 * (duplicate event, event without effect on the context). */
	const char *ctx_json;
	size_t ctx_len;
	/* Replies to send, in order (seq = index). For a duplicate these are the
	 * stored replies of the original event (possibly 0 when they were no
	 * longer kept). */
	const struct wa_reply *replies;
	size_t nreplies;
	/* conversation_step after the event ("" when the flow has none yet). */
	const char *step;
	bool duplicate;   /* event seen before (id in "recent", or at or before
	                     "in"): nothing advanced */
	bool fresh_start; /* no usable context: the flow started over */
};

/*
 * Where an event sits in the inbound stream (Kafka partition, offset and
 * record timestamp), for de-duplication: one phone's events arrive on one
 * partition in order, so an event at or before the last applied position
 * of its partition was applied already, however far back it is.
 */
struct flow_pos {
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms; /* record timestamp; -1: unknown */
};

/*
 * Applies event ev to the context ctx_json (ctx_len bytes; found false when
 * the store had none, e.g. new user or expired TTL). Everything in *out
 * borrows from s until its next step or destroy. now_s is the wall clock
 * (Unix seconds) for the context's own time stamps. pos: where ev came from
 * (NULL when unknown, e.g. a replayed file: only "recent" de-duplicates).
 * Errors: WB_ERR_INVALID (ev has err set or no key), WB_ERR_NOMEM. A context
 * that is not valid JSON or holds fields of wrong types is not an error: the
 * unusable parts are dropped and the flow starts over where needed.
 */
wb_err_t flow_step(flow_session_t *s, const char *ctx_json, size_t ctx_len, bool found, const struct wa_event *ev,
		   const struct flow_pos *pos, int64_t now_s, struct flow_result *out);

#endif /* WB_FLOW_H */
