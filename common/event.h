/*
 * event.h - inbound WhatsApp events: bytes of one Kafka record -> neutral
 * wa_event values.
 *
 * Decodes ACS Advanced Messaging events (Event Grid schema and CloudEvents
 * 1.0, one object or an array), Meta WhatsApp Cloud API webhook bodies, and
 * the Event Grid subscription validation event, as described in
 * shared/reference/inbound-events.md (the contract). One record yields zero
 * or more events, in document order.
 *
 * Errors come in two levels:
 *  - the record: not JSON, invalid UTF-8, too deep, too big, no known
 *    envelope ... -> event_decode() returns an EVENT_E_* code and no events;
 *    the caller dead-letters the record;
 *  - one event inside a good record: a required field missing or of the
 *    wrong type, text over 64 KiB, neither phone nor BSUID ... -> that event
 *    has .err set and the others decode normally; the caller dead-letters
 *    that event alone.
 *
 * Envelopes: a root object that is no known envelope (Meta body,
 * CloudEvents, Event Grid event) fails the record with EVENT_E_ENVELOPE; in
 * a root array such an element (also a non-object) becomes one event with
 * err EVENT_E_ENVELOPE and err_field NULL, and the other elements decode.
 * Broken Meta structure (an entry that is no object or has no changes[], a
 * change whose value is no object, a messages[]/statuses[] element that is
 * no object) likewise becomes one event with err set. A Meta change whose
 * field is not "messages" is one event of kind unsupported, type = field,
 * no id.
 *
 * Wrong JSON types: optional fields (text, captions, titles, context, media
 * details, error details, timestamps ...) of another type than documented
 * are treated as absent. Identity and discriminating fields are strict: an
 * envelope id (missing, null, "" or not a string), data (missing or not an
 * object), eventType/type, messageType / Meta type, the phone fields
 * (from, to, recipient_id: string or null only), the BSUID fields and the
 * business id give EVENT_E_MISSING / EVENT_E_TYPE with err_field naming the
 * path ("data.from", "messages[].id", "statuses[].status"). Every string
 * is limited to EVENT_MAX_TEXT bytes after decoding (EVENT_E_TEXT_TOO_LONG).
 * Only message kinds and status need a sender (EVENT_E_NO_SENDER); the
 * first error of an event wins, and the fields decoded so far stay set.
 *
 * Meta specifics: a status's id is wamid ":" status (built in the arena);
 * a message's contact (profile_name, and phone / user_id when the message
 * lacks them) is found among the first 64 contacts[] of its change.
 * Timestamps: ISO 8601 with an offset (Z, +hh:mm, +hhmm, +hh) and 0 to 9
 * fractional digits (dropped); Meta decimal strings or JSON numbers.
 *
 * Owns: an event_decoder_t owns its parse buffers, the events array and an
 * arena for decoded strings, all reused from one call to the next: no
 * allocation per call once they have reached the size of the largest record
 * seen (at worst about 20 MB after a 2 MiB record of 10,000 events).
 * Threads: one decoder per thread.
 */
#ifndef WB_EVENT_H
#define WB_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct event_decoder event_decoder_t;

/* Largest record accepted (Event Grid batches go up to 1 MiB). */
#define EVENT_MAX_PAYLOAD (2u * 1024u * 1024u)
/* Deepest JSON nesting accepted; real payloads use about 8. */
#define EVENT_MAX_DEPTH 32
/* Longest text, caption, title ... accepted, in bytes. */
#define EVENT_MAX_TEXT (64u * 1024u)
/* Most events in one record (Event Grid: 5,000). */
#define EVENT_MAX_EVENTS 10000u
/* Room for "+" and 15 digits, or a BSUID ("CC." + up to 128 characters). */
#define EVENT_KEY_MAX 160

/* X-macro: code, name (for metrics and the dead-letter reason), text. */
#define EVENT_ERR_MAP(X)                                                                        \
	X(EVENT_OK,             "ok",               "decoded")                              \
	X(EVENT_E_EMPTY,        "empty",            "empty payload")                        \
	X(EVENT_E_TOO_BIG,      "too_big",          "payload larger than the limit")        \
	X(EVENT_E_JSON,         "invalid_json",     "payload is not valid JSON")            \
	X(EVENT_E_UTF8,         "invalid_utf8",     "payload holds invalid UTF-8")          \
	X(EVENT_E_DEPTH,        "too_deep",         "JSON nested too deeply")               \
	X(EVENT_E_NOT_CONTAINER,"not_object",       "payload is not a JSON object or array") \
	X(EVENT_E_ENVELOPE,     "unknown_envelope", "no known event envelope")              \
	X(EVENT_E_TOO_MANY,     "too_many_events",  "more events in one record than the limit") \
	X(EVENT_E_MISSING,      "missing_field",    "a required field is missing")          \
	X(EVENT_E_TYPE,         "wrong_type",       "a field has the wrong JSON type")      \
	X(EVENT_E_TEXT_TOO_LONG,"text_too_long",    "a text field is longer than 64 KiB")   \
	X(EVENT_E_NO_SENDER,    "no_sender",        "neither a phone number nor a user id") \
	X(EVENT_E_NOMEM,        "nomem",            "out of memory")

typedef enum event_err {
#define EVENT_ERR_ENUM_(code, name, text) code,
	EVENT_ERR_MAP(EVENT_ERR_ENUM_)
#undef EVENT_ERR_ENUM_
	EVENT_ERR__COUNT
} event_err_t;

const char *event_err_name(event_err_t e); /* "invalid_json"; never NULL */
const char *event_err_str(event_err_t e);  /* "payload is not valid JSON" */

enum wa_provider {
	WA_PROVIDER_NONE = 0, /* validation events: not a messaging provider */
	WA_PROVIDER_ACS,
	WA_PROVIDER_META,
};

enum wa_kind {
	WA_KIND_TEXT = 0,
	WA_KIND_BUTTON_REPLY,
	WA_KIND_LIST_REPLY,
	WA_KIND_MEDIA,
	WA_KIND_LOCATION,
	WA_KIND_REACTION,
	WA_KIND_STATUS,
	WA_KIND_VALIDATION,
	WA_KIND_UNSUPPORTED,
};

enum wa_status {
	WA_STATUS_UNKNOWN = 0,
	WA_STATUS_SENT,
	WA_STATUS_DELIVERED,
	WA_STATUS_READ,
	WA_STATUS_FAILED,
};

const char *wa_provider_name(enum wa_provider p); /* "acs", "meta", "none" */
const char *wa_kind_name(enum wa_kind k);         /* "text", "button_reply", ... */
const char *wa_status_name(enum wa_status s);     /* "sent", ..., "unknown" */

/* A borrowed UTF-8 string: p points into the record's payload or into the
 * decoder's arena; not NUL-terminated. Absent fields have p NULL, len 0. */
struct wa_str {
	const char *p;
	size_t len;
};

struct wa_event {
	event_err_t err;            /* EVENT_OK, or why this event is unusable */
	const char *err_field;      /* static: the field err is about ("data.from"), or NULL */
	enum wa_provider provider;
	enum wa_kind kind;
	uint32_t index;             /* position in the record, 0-based */

	struct wa_str id;           /* de-duplication key (section 5 of the contract); Meta
	                               status: wamid ":" status, built in the arena */
	struct wa_str type;         /* as sent, for logs of unsupported: ACS messageType, else
	                               eventType; Meta messages[].type, statuses[].status,
	                               or the change's field */
	char phone[20];             /* "+E.164" or "" when absent or not a phone */
	struct wa_str user_id;      /* BSUID, when sent */
	char key[EVENT_KEY_MAX];    /* conversation key: phone, else user_id verbatim, else "" */
	uint32_t key_len;           /* strlen(key), set with it by the decoder; 0 also for an
	                               event built by hand: see event_key_len/event_key_hash */
	uint64_t key_hash;          /* phone_hash(key), when key_len is set: the lanes route
	                               on it several times per event */
	struct wa_str business_id;  /* ACS channel registration id / Meta phone_number_id */
	struct wa_str profile_name; /* Meta contacts[].profile.name */
	struct wa_str message_id;   /* provider message id (ACS data.messageId, Meta wamid) */
	struct wa_str ref_message_id; /* context.id; status: our outbound message id */
	int64_t timestamp;          /* Unix seconds, UTC; 0 when absent or unparsable (ACS:
	                               receivedTimestamp, else eventTime/time) */

	struct wa_str text;         /* text: the message; media: also the caption */
	struct wa_str reply_id;     /* button_reply / list_reply */
	struct wa_str reply_title;
	struct wa_str reply_description;

	struct wa_str media_type;   /* "image", "document", ... */
	struct wa_str media_id;
	struct wa_str media_mime;
	struct wa_str media_caption;
	struct wa_str media_filename;

	bool media_animated;        /* media.animated: true or "true" (any case) */

	bool has_location;          /* latitude/longitude both numbers in range */
	double latitude, longitude;
	struct wa_str location_name;
	struct wa_str location_address;

	struct wa_str reaction_emoji;  /* absent when a reaction is removed (Meta) */
	struct wa_str reaction_target; /* message reacted to */

	enum wa_status status;
	struct wa_str error_code;      /* WhatsApp code as decimal text ("131047") */
	struct wa_str error_message;
	struct wa_str error_details;

	struct wa_str validation_code;
	struct wa_str validation_url;
};

/* A decoder with its own buffers; NULL when out of memory. */
event_decoder_t *event_decoder_new(void);
void event_decoder_destroy(event_decoder_t *dec); /* NULL ok */

/*
 * Decodes the len bytes at payload (one Kafka record value; no NUL needed).
 * On EVENT_OK *events points at *n events (n may be 0: an empty array, a
 * Meta body without messages or statuses). They borrow from payload and
 * from dec: valid until the next event_decode() on dec or its destroy, and
 * only while payload stays unchanged. On another code *n is 0 and errstr
 * (may be NULL) holds one line saying what and where ("at byte 41"), never
 * a phone number or message text.
 */
event_err_t event_decode(event_decoder_t *dec, const char *payload, size_t len, const struct wa_event **events,
			 size_t *n, char *errstr, size_t errstr_size);

/*
 * Decoded events that outlive their decoder (the worker decodes a record on
 * its consumer thread to route it, and applies it on another thread).
 * event_copy_size: the bytes a copy of evs[0..n) needs. event_copy writes
 * it to buf (aligned for struct wa_event) and returns the events at its
 * start: strings that lie inside payload keep pointing there (the caller
 * keeps payload alive and unchanged as long as the copy), the others (the
 * decoder's arena) are copied after the events.
 */
size_t event_copy_size(const struct wa_event *evs, size_t n, const char *payload, size_t len);
struct wa_event *event_copy(const struct wa_event *evs, size_t n, const char *payload, size_t len, void *buf);

/* key's length and phone_hash, from the decoder's copies when it set them
 * (an event built by hand has key_len 0: computed then). */
static inline size_t event_key_len(const struct wa_event *ev)
{
	return ev->key_len ? ev->key_len : strlen(ev->key);
}

uint64_t event_key_hash(const struct wa_event *ev);

#endif /* WB_EVENT_H */
