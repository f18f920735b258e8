/*
 * event.c - decoding of one wa.inbound record into neutral wa_event values,
 * per shared/reference/inbound-events.md (cited as "contract §N").
 *
 * Steps of event_decode():
 *  1. cheap record checks (empty, too big), then one json_parse() with our
 *     limits (depth, tokens): not JSON / bad UTF-8 / too deep end here;
 *  2. size the string arena for the worst case of this payload (below), so
 *     nothing is allocated after this point unless the events array grows;
 *  3. a root array: every element goes through envelope detection (an
 *     element that is no envelope becomes one event with err
 *     EVENT_E_ENVELOPE); a root object: the same detection, but an object
 *     that is no envelope fails the whole record with EVENT_E_ENVELOPE;
 *  4. per envelope: Meta body -> entry[] -> changes[] -> messages[] then
 *     statuses[]; CloudEvents / Event Grid -> dispatch on the event type.
 *
 * Strings: a JSON string without escapes is returned as a pointer into the
 * payload (zero copy). A string with escapes is decoded into the arena.
 * Every string token is decoded at most once per call (the Meta business id
 * once per change, contacts through a per-change memo), decoding never
 * lengthens, and the only arena bytes that are not a decoded token are, per
 * event, the ':' of a Meta status id and at most 21 bytes of an error code.
 * Hence arena = len + 32 per possible event (tokens bound events) + slack
 * always suffices; it is sized before decoding and never moves during a
 * call, so pointers handed out stay valid. An arena_room() that would
 * overflow anyway reports EVENT_E_NOMEM on the event (the fuzz target
 * treats that as a bug). Rejected: a growing realloc'd arena (moves earlier
 * strings) and a chunk list (allocations in steady state).
 *
 * Speed (tests/bench/bench_event, 2-core VM): acs-eg-text.json decodes in
 * about 1.5 us, of which json_parse() is about 0.9 us; Meta bodies, with
 * more nesting, 2-2.6 us per single-message record as sent (compact), 1.4
 * us per event in a 3-event body. Objects with many wanted members are read
 * in one pass (scan_members(); json_get() per field was half the decode
 * time), small ones with json_get().
 *
 * Owns: the decoder's json_doc, events array, arena and contact memo. No
 * global state; one decoder per thread.
 */
#include "event.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "phone.h"

/* Most JSON values in one record: a 5,000-event Event Grid batch has about
 * 200,000; each token costs 20 bytes of the json_doc, kept between calls. */
#define EVENT_MAX_TOKENS 524288u
/* Contacts of one Meta change searched for a message's sender. Real bodies
 * carry one contact per sender; the cap keeps messages x contacts linear. */
#define EVENT_MAX_CONTACTS 64u
/* Arena bytes per event that are not decoded tokens: status id ':' (1) and
 * an error code printed from an integer (at most 20 digits and a sign). */
#define EVENT_ARENA_PER_EVENT 32u
/* Latest timestamp accepted: 9999-12-31T23:59:59Z. */
#define EVENT_MAX_UNIX INT64_C(253402300799)

/* A contact of the current Meta change: members found when the change
 * starts, strings decoded on first match. */
struct contact_memo {
	bool done;             /* name and user_id decoded */
	uint32_t wa_id;        /* string token of contacts[i].wa_id, or JSON_NONE */
	uint32_t user_id_tok;  /* string token of contacts[i].user_id, or JSON_NONE */
	uint32_t name_tok;     /* string token of contacts[i].profile.name, or JSON_NONE */
	struct wa_str name;    /* contacts[i].profile.name */
	struct wa_str user_id; /* contacts[i].user_id */
	event_err_t err;       /* a decoding failure of the above */
	const char *err_field;
};

/* A member name scan_members() looks for. */
struct member_key {
	const char *name;
	uint8_t len;
	bool ci; /* ASCII case-insensitive (contract Q2) */
};

#define MKEY(lit) {lit, sizeof(lit) - 1, false}
#define MKEY_CI(lit) {lit, sizeof(lit) - 1, true}

/* Buckets of a member_set's index (a power of two). */
#define MSET_BUCKETS 64u

/*
 * The member names of one kind of object (envelope, data, Meta message ...)
 * with an index: bucket[h] has bit i set when keys[i] hashes to h, so a
 * member of the object is compared with at most the one or two keys of its
 * bucket instead of every key (17 for a Meta message). Built once per
 * decoder by member_sets_init().
 */
struct member_set {
	const struct member_key *keys;
	uint32_t nkeys; /* at most 32 */
	uint32_t bucket[MSET_BUCKETS];
};

/* The sets, named by the object they describe. */
enum { SET_ENV, SET_DATA, SET_CONTACT, SET_MSG, SET_STATUS, SET_CHANGE, SET_VALUE, SET__COUNT };

struct event_decoder {
	struct json_doc doc;      /* tokens of the current payload */
	struct wa_event *evs;     /* events of the current call */
	uint32_t nevs;
	uint32_t evs_cap;
	char *arena;              /* decoded strings of the current call */
	size_t arena_cap;         /* bytes */
	size_t arena_used;        /* bytes */
	event_err_t rec_err;      /* record-level failure met while decoding */
	struct contact_memo cm[EVENT_MAX_CONTACTS];
	struct member_set sets[SET__COUNT]; /* constant once built */
};

static void member_sets_init(event_decoder_t *dec);

/* ---- names ---- */

static const char *const event_err_names[] = {
#define EVENT_ERR_NAME_(code, name, text) name,
	EVENT_ERR_MAP(EVENT_ERR_NAME_)
#undef EVENT_ERR_NAME_
};

static const char *const event_err_texts[] = {
#define EVENT_ERR_TEXT_(code, name, text) text,
	EVENT_ERR_MAP(EVENT_ERR_TEXT_)
#undef EVENT_ERR_TEXT_
};

const char *event_err_name(event_err_t e)
{
	if ((unsigned)e >= EVENT_ERR__COUNT)
		return "unknown";
	return event_err_names[e];
}

const char *event_err_str(event_err_t e)
{
	if ((unsigned)e >= EVENT_ERR__COUNT)
		return "unknown error";
	return event_err_texts[e];
}

const char *wa_provider_name(enum wa_provider p)
{
	switch (p) {
	case WA_PROVIDER_NONE: return "none";
	case WA_PROVIDER_ACS: return "acs";
	case WA_PROVIDER_META: return "meta";
	}
	return "unknown";
}

const char *wa_kind_name(enum wa_kind k)
{
	switch (k) {
	case WA_KIND_TEXT: return "text";
	case WA_KIND_BUTTON_REPLY: return "button_reply";
	case WA_KIND_LIST_REPLY: return "list_reply";
	case WA_KIND_MEDIA: return "media";
	case WA_KIND_LOCATION: return "location";
	case WA_KIND_REACTION: return "reaction";
	case WA_KIND_STATUS: return "status";
	case WA_KIND_VALIDATION: return "validation";
	case WA_KIND_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}

const char *wa_status_name(enum wa_status s)
{
	switch (s) {
	case WA_STATUS_UNKNOWN: return "unknown";
	case WA_STATUS_SENT: return "sent";
	case WA_STATUS_DELIVERED: return "delivered";
	case WA_STATUS_READ: return "read";
	case WA_STATUS_FAILED: return "failed";
	}
	return "unknown";
}

/* ---- life cycle ---- */

event_decoder_t *event_decoder_new(void)
{
	event_decoder_t *dec = calloc(1, sizeof(*dec));

	if (!dec)
		return NULL;
	json_doc_init(&dec->doc);
	member_sets_init(dec);
	dec->evs_cap = 8;
	dec->evs = malloc(dec->evs_cap * sizeof(*dec->evs));
	if (!dec->evs) {
		free(dec);
		return NULL;
	}
	return dec;
}

void event_decoder_destroy(event_decoder_t *dec)
{
	if (!dec)
		return;
	json_doc_fini(&dec->doc);
	free(dec->evs);
	free(dec->arena);
	free(dec);
}

/* ---- small helpers ---- */

static inline bool tok_is(const struct json_doc *d, uint32_t t, enum json_kind type)
{
	return t != JSON_NONE && d->toks[t].type == type;
}

/* Absent member or JSON null. */
static inline bool tok_absent(const struct json_doc *d, uint32_t t)
{
	return t == JSON_NONE || d->toks[t].type == JSON_NULL;
}

/* json_str_eq() with its common case inline: t (JSON_NONE allowed) is a
 * string without escapes, compared by length first. */
static inline bool tok_eq(const struct json_doc *d, uint32_t t, const char *s, size_t len)
{
	const struct json_tok *k;

	if (t >= d->ntoks)
		return false;
	k = &d->toks[t];
	if (k->type != JSON_STRING)
		return false;
	if (k->flags & JSON_TOK_ESCAPED)
		return json_str_eq(d, t, s, len);
	return k->len == len && memcmp(d->text + k->start, s, len) == 0;
}

/* tok_eq() against a string literal. */
#define TOK_EQ(d, t, lit) tok_eq((d), (t), (lit), sizeof(lit) - 1)

/* The first error of an event wins. */
static void ev_fail(struct wa_event *ev, event_err_t e, const char *field)
{
	if (ev->err == EVENT_OK) {
		ev->err = e;
		ev->err_field = field;
	}
}

/* A new zeroed event (kind unsupported until decided), or NULL with
 * dec->rec_err set (too many events, out of memory). */
static struct wa_event *ev_push(event_decoder_t *dec, enum wa_provider provider)
{
	struct wa_event *ev;

	if (dec->rec_err != EVENT_OK)
		return NULL;
	if (dec->nevs >= EVENT_MAX_EVENTS) {
		dec->rec_err = EVENT_E_TOO_MANY;
		return NULL;
	}
	if (dec->nevs == dec->evs_cap) {
		uint32_t ncap = dec->evs_cap * 2;
		struct wa_event *n;

		if (ncap > EVENT_MAX_EVENTS)
			ncap = EVENT_MAX_EVENTS;
		n = realloc(dec->evs, (size_t)ncap * sizeof(*n));
		if (!n) {
			dec->rec_err = EVENT_E_NOMEM;
			return NULL;
		}
		dec->evs = n;
		dec->evs_cap = ncap;
	}
	ev = &dec->evs[dec->nevs];
	memset(ev, 0, sizeof(*ev));
	ev->index = dec->nevs++;
	ev->provider = provider;
	ev->kind = WA_KIND_UNSUPPORTED;
	return ev;
}

/* Room for n bytes at the arena's end (commit with arena_used += len), or
 * NULL. See the file comment for why this cannot fail in practice. */
static char *arena_room(event_decoder_t *dec, size_t n)
{
	if (n > dec->arena_cap - dec->arena_used)
		return NULL;
	return dec->arena + dec->arena_used;
}

/*
 * String token t -> *out: zero copy without escapes, else decoded into the
 * arena. Longer than EVENT_MAX_TEXT -> EVENT_E_TEXT_TOO_LONG on ev (path
 * names the field) and *out stays empty. Returns true on success.
 */
static bool str_take(event_decoder_t *dec, struct wa_event *ev, uint32_t t, const char *path, struct wa_str *out)
{
	const struct json_doc *d = &dec->doc;
	const struct json_tok *k = &d->toks[t];
	size_t n;
	char *p;

	if (!(k->flags & JSON_TOK_ESCAPED)) {
		if (k->len > EVENT_MAX_TEXT) {
			ev_fail(ev, EVENT_E_TEXT_TOO_LONG, path);
			return false;
		}
		out->p = d->text + k->start;
		out->len = k->len;
		return true;
	}
	p = arena_room(dec, (size_t)k->len + 1);
	if (!p) {
		ev_fail(ev, EVENT_E_NOMEM, path);
		return false;
	}
	n = json_str_decode(d, t, p, (size_t)k->len + 1);
	if (n == (size_t)-1) { /* cannot happen: decoding never lengthens */
		ev_fail(ev, EVENT_E_NOMEM, path);
		return false;
	}
	if (n > EVENT_MAX_TEXT) {
		ev_fail(ev, EVENT_E_TEXT_TOO_LONG, path);
		return false;
	}
	dec->arena_used += n;
	out->p = p;
	out->len = n;
	return true;
}

/* Optional string value t (JSON_NONE: absent): a string -> *out; absent,
 * null or any other type -> *out untouched (tolerant: contract §7 lists
 * many nullable fields). */
static void opt_str(event_decoder_t *dec, struct wa_event *ev, uint32_t t, const char *path, struct wa_str *out)
{
	if (tok_is(&dec->doc, t, JSON_STRING))
		str_take(dec, ev, t, path, out);
}

/* opt_str() of member key of obj (for small objects; big ones use
 * scan_members()). */
static void opt_member(event_decoder_t *dec, struct wa_event *ev, uint32_t obj, const char *key, const char *path,
		       struct wa_str *out)
{
	opt_str(dec, ev, json_get(&dec->doc, obj, key), path, out);
}

/*
 * Identity / discriminating string value t: a string -> t; absent or null
 * -> JSON_NONE (EVENT_E_MISSING when required, also for ""); any other
 * type -> JSON_NONE and EVENT_E_TYPE.
 */
static uint32_t id_tok(event_decoder_t *dec, struct wa_event *ev, uint32_t t, const char *path, bool required)
{
	const struct json_doc *d = &dec->doc;

	if (tok_absent(d, t)) {
		if (required)
			ev_fail(ev, EVENT_E_MISSING, path);
		return JSON_NONE;
	}
	if (d->toks[t].type != JSON_STRING) {
		ev_fail(ev, EVENT_E_TYPE, path);
		return JSON_NONE;
	}
	if (required && d->toks[t].len == 0) {
		ev_fail(ev, EVENT_E_MISSING, path);
		return JSON_NONE;
	}
	return t;
}

/* id_tok() then str_take() into *out. */
static bool id_str(event_decoder_t *dec, struct wa_event *ev, uint32_t t, const char *path, bool required,
		   struct wa_str *out)
{
	t = id_tok(dec, ev, t, path, required);
	return t != JSON_NONE && str_take(dec, ev, t, path, out);
}

/*
 * Bucket of a member name of n >= 1 bytes: its length, first and last
 * bytes. ASCII letters are folded (| 0x20) so every spelling of a
 * case-insensitive key lands in its bucket; the bucket only picks
 * candidates, the comparison after it decides.
 */
static inline unsigned member_hash(const char *s, size_t n)
{
	return ((unsigned)n * 7u + ((unsigned char)s[0] | 0x20u) * 3u + ((unsigned char)s[n - 1] | 0x20u)) &
	       (MSET_BUCKETS - 1u);
}

static void member_set_init(struct member_set *set, const struct member_key *keys, uint32_t nkeys)
{
	uint32_t i;

	set->keys = keys;
	set->nkeys = nkeys;
	memset(set->bucket, 0, sizeof(set->bucket));
	for (i = 0; i < nkeys; i++)
		set->bucket[member_hash(keys[i].name, keys[i].len)] |= 1u << i;
}

static bool eq_ci(const char *s, size_t n, const char *lit);

/*
 * a and b (n bytes each) are equal. Member names are short: overlapping
 * word loads from each side decide without the call and the setup of a
 * memcmp(), which cost more than the rest of a member's lookup.
 */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
	uint64_t a0, a1, b0, b1;
	uint32_t c0, c1, d0, d1;

	for (; n > 16; a += 8, b += 8, n -= 8) {
		memcpy(&a0, a, 8);
		memcpy(&b0, b, 8);
		if (a0 != b0)
			return false;
	}
	if (n >= 8) {
		memcpy(&a0, a, 8);
		memcpy(&a1, a + n - 8, 8);
		memcpy(&b0, b, 8);
		memcpy(&b1, b + n - 8, 8);
		return ((a0 ^ b0) | (a1 ^ b1)) == 0;
	}
	if (n >= 4) {
		memcpy(&c0, a, 4);
		memcpy(&c1, a + n - 4, 4);
		memcpy(&d0, b, 4);
		memcpy(&d1, b + n - 4, 4);
		return ((c0 ^ d0) | (c1 ^ d1)) == 0;
	}
	/* bytes 0, n/2 and n-1 cover 1 to 3 bytes */
	return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
}

/* Index in set->keys of the member name s (n bytes, decoded), or
 * UINT32_MAX. Candidates are tried in key order: the first match wins. */
static inline uint32_t member_find(const struct member_set *set, const char *s, size_t n)
{
	uint32_t cand, i;

	if (n == 0)
		return UINT32_MAX; /* no key is empty */
	for (cand = set->bucket[member_hash(s, n)]; cand; cand &= cand - 1) {
		const struct member_key *key = &set->keys[__builtin_ctz(cand)];

		/* an exact spelling is a case-insensitive match too */
		if (key->len == n && (bytes_eq(s, key->name, n) || (key->ci && eq_ci(s, n, key->name)))) {
			i = (uint32_t)__builtin_ctz(cand);
			return i;
		}
	}
	return UINT32_MAX;
}

/* member_find() for a key token with escapes: decoded first. */
static uint32_t member_find_escaped(const struct json_doc *d, uint32_t k, const struct member_set *set)
{
	char buf[64];
	size_t n;

	if (d->toks[k].len >= sizeof(buf) || (n = json_str_decode(d, k, buf, sizeof(buf))) == (size_t)-1)
		return UINT32_MAX; /* longer than any key we want */
	return member_find(set, buf, n);
}

/*
 * One pass over the members of obj: out[i] = value token of set->keys[i],
 * or JSON_NONE (also when obj is no object). With duplicate keys the last
 * one wins, as json_get() does. Measured: json_get() per field made lookups
 * half of the decode time (one scan of the object per field, a call per key
 * comparison); one pass comparing each member with every key of the same
 * length was still a third of the decoder's own time, hence the index.
 */
static void scan_members(const struct json_doc *d, uint32_t obj, const struct member_set *set, uint32_t *out)
{
	const struct json_tok *toks = d->toks;
	uint32_t m, k, count, i;

	memset(out, 0xFF, set->nkeys * sizeof(*out)); /* every element JSON_NONE (UINT32_MAX) */
	if (!tok_is(d, obj, JSON_OBJECT))
		return;
	count = toks[obj].count;
	for (m = 0, k = obj + 1; m < count; m++, k = toks[k + 1].next) {
		if (toks[k].flags & JSON_TOK_ESCAPED)
			i = member_find_escaped(d, k, set);
		else
			i = member_find(set, d->text + toks[k].start, toks[k].len);
		if (i != UINT32_MAX)
			out[i] = k + 1;
	}
}

/* A short string's decoded bytes: the raw bytes without escapes, else
 * decoded into buf. NULL when it does not fit buf. */
static const char *str_small(const struct json_doc *d, uint32_t t, char *buf, size_t cap, size_t *len)
{
	const struct json_tok *k = &d->toks[t];
	size_t n;

	if (!(k->flags & JSON_TOK_ESCAPED)) {
		*len = k->len;
		return d->text + k->start;
	}
	if (k->len >= cap)
		return NULL;
	n = json_str_decode(d, t, buf, cap);
	if (n == (size_t)-1)
		return NULL;
	*len = n;
	return buf;
}

/* Phone string token t -> ev->phone ("" when not a phone, contract §6). A
 * 15-digit phone written with \u escapes is 96 raw bytes: 128 is enough. */
static void take_phone(const struct json_doc *d, struct wa_event *ev, uint32_t t)
{
	char buf[128];
	size_t n;
	const char *s = str_small(d, t, buf, sizeof(buf), &n);

	if (s)
		phone_normalize(s, n, ev->phone);
	else
		ev->phone[0] = '\0';
}

/* ASCII case-insensitive equality of s (n bytes) and a literal. */
static bool eq_ci(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		unsigned char l = (unsigned char)lit[i];

		if (c >= 'A' && c <= 'Z')
			c |= 0x20;
		if (l >= 'A' && l <= 'Z')
			l |= 0x20;
		if (l == '\0' || c != l)
			return false;
	}
	return lit[n] == '\0';
}

/* Status text -> enum, case-insensitively (contract Q3); else unknown. */
static enum wa_status status_of(const char *s, size_t n)
{
	if (eq_ci(s, n, "sent"))
		return WA_STATUS_SENT;
	if (eq_ci(s, n, "delivered"))
		return WA_STATUS_DELIVERED;
	if (eq_ci(s, n, "read"))
		return WA_STATUS_READ;
	if (eq_ci(s, n, "failed"))
		return WA_STATUS_FAILED;
	return WA_STATUS_UNKNOWN;
}

/* A BSUID usable as conversation key: 1..EVENT_KEY_MAX-1 bytes of printable
 * ASCII without spaces. */
static bool key_usable(const struct wa_str *s)
{
	size_t i;

	if (!s->p || s->len == 0 || s->len >= EVENT_KEY_MAX)
		return false;
	for (i = 0; i < s->len; i++) {
		if ((unsigned char)s->p[i] <= 0x20 || (unsigned char)s->p[i] >= 0x7f)
			return false;
	}
	return true;
}

/* Sets ev->key (contract §6): phone, else the BSUID, else "" and, for the
 * kinds that need a conversation, EVENT_E_NO_SENDER. */
static void finish_key(struct wa_event *ev, const char *path)
{
	size_t n = 0;

	if (ev->phone[0]) {
		n = strlen(ev->phone);
		memcpy(ev->key, ev->phone, n + 1);
	} else if (key_usable(&ev->user_id)) {
		n = ev->user_id.len;
		memcpy(ev->key, ev->user_id.p, n);
		ev->key[n] = '\0';
	}
	ev->key_len = (uint32_t)n;
	ev->key_hash = phone_hash(ev->key, n);
	if (n)
		return;
	ev->key[0] = '\0';
	if (ev->kind != WA_KIND_UNSUPPORTED && ev->kind != WA_KIND_VALIDATION)
		ev_fail(ev, EVENT_E_NO_SENDER, path);
}

uint64_t event_key_hash(const struct wa_event *ev)
{
	return ev->key_len ? ev->key_hash : phone_hash(ev->key, strlen(ev->key));
}

/* Boolean or "true"/"false" string (contract Q6); anything else false. */
static bool bool_of(const struct json_doc *d, uint32_t t)
{
	char buf[8];
	size_t n;
	const char *s;

	if (t == JSON_NONE)
		return false;
	if (d->toks[t].type == JSON_TRUE)
		return true;
	if (d->toks[t].type != JSON_STRING)
		return false;
	s = str_small(d, t, buf, sizeof(buf), &n);
	return s && eq_ci(s, n, "true");
}

/* Error code: a string as is, an integer as decimal text in the arena
 * (contract Q9); other types are ignored. */
static void take_code(event_decoder_t *dec, struct wa_event *ev, uint32_t t, const char *path)
{
	const struct json_doc *d = &dec->doc;
	int64_t v;
	char *p;
	int n;

	if (tok_is(d, t, JSON_STRING)) {
		str_take(dec, ev, t, path, &ev->error_code);
		return;
	}
	if (!tok_is(d, t, JSON_NUMBER) || !json_num_i64(d, t, &v))
		return;
	p = arena_room(dec, 24);
	if (!p) {
		ev_fail(ev, EVENT_E_NOMEM, path);
		return;
	}
	n = snprintf(p, 24, "%lld", (long long)v);
	ev->error_code.p = p;
	ev->error_code.len = (size_t)n;
	dec->arena_used += (size_t)n;
}

/* ---- timestamps ---- */

/* Two decimal digits at s, or -1 (inline: a loop and a call per field
 * were most of a timestamp's cost). */
static inline int dig2(const char *s)
{
	unsigned a = (unsigned)(unsigned char)s[0] - '0', b = (unsigned)(unsigned char)s[1] - '0';

	return a <= 9 && b <= 9 ? (int)(a * 10 + b) : -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * ISO 8601 / RFC 3339 date-time -> Unix seconds:
 * YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.f...](Z|z|+hh:mm|-hh:mm|+hhmm|+hh).
 * 1 to 9 fractional digits are accepted and dropped (the contract documents
 * up to 7; Go and Java print 9). The offset is required: a local time is
 * refused rather than guessed. Ranges are checked (month days, leap years,
 * second 60 for a leap second); results before 1970 or after 9999 fail.
 */
static bool iso8601_unix(const char *s, size_t n, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t i;
	int64_t t;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
		return false;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return false;
	y = dig2(s);
	y = y < 0 || (mo = dig2(s + 2)) < 0 ? -1 : y * 100 + mo;
	mo = dig2(s + 5);
	d = dig2(s + 8);
	h = dig2(s + 11);
	mi = dig2(s + 14);
	sec = dig2(s + 17);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return false;
	i = 19;
	if (s[i] == '.') {
		size_t f = ++i;

		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f || i - f > 9)
			return false;
	}
	if (i >= n)
		return false;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '-' ? -1 : 1;
		i++;
		if (n - i < 2 || (oh = dig2(s + i)) < 0 || oh > 23)
			return false;
		i += 2;
		if (i < n) {
			if (s[i] == ':')
				i++;
			if (n - i < 2 || (om = dig2(s + i)) < 0 || om > 59)
				return false;
			i += 2;
		}
	} else {
		return false;
	}
	if (i != n)
		return false;
	t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= (int64_t)sign * (oh * 3600 + om * 60);
	if (t < 0 || t > EVENT_MAX_UNIX)
		return false;
	*out = t;
	return true;
}

/* String token t holding an ISO 8601 date-time -> *out. */
static bool iso_tok(const struct json_doc *d, uint32_t t, int64_t *out)
{
	char buf[64];
	size_t n;
	const char *s;

	if (!tok_is(d, t, JSON_STRING))
		return false;
	s = str_small(d, t, buf, sizeof(buf), &n);
	return s && iso8601_unix(s, n, out);
}

/* Meta timestamp: a string of decimal Unix seconds, or a JSON number
 * (a fraction is dropped). */
static bool meta_ts(const struct json_doc *d, uint32_t t, int64_t *out)
{
	char buf[32];
	const char *s;
	size_t n, i;
	int64_t v = 0;
	double f;

	if (t == JSON_NONE)
		return false;
	if (d->toks[t].type == JSON_NUMBER) {
		if (json_num_i64(d, t, &v)) {
			if (v < 0 || v > EVENT_MAX_UNIX)
				return false;
			*out = v;
			return true;
		}
		if (!json_num_f64(d, t, &f) || !(f >= 0.0 && f < (double)EVENT_MAX_UNIX + 1.0))
			return false;
		*out = (int64_t)f;
		return true;
	}
	if (d->toks[t].type != JSON_STRING)
		return false;
	s = str_small(d, t, buf, sizeof(buf), &n);
	if (!s || n == 0 || n > 12)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > EVENT_MAX_UNIX)
		return false;
	*out = v;
	return true;
}

/* ---- ACS (contract §2) ---- */

/* The envelope members (Event Grid and CloudEvents, contract §2.1). */
enum {
	ENV_OBJECT, ENV_ENTRY, ENV_SPECVERSION, ENV_SPECVERSION_Q5, ENV_TYPE, ENV_EVENTTYPE, ENV_ID, ENV_TIME,
	ENV_EVENTTIME, ENV_DATA, ENV__COUNT
};
static const struct member_key env_keys[ENV__COUNT] = {
	MKEY("object"), MKEY("entry"), MKEY("specversion"), MKEY("specVersion"), MKEY("type"),
	MKEY("eventType"), MKEY("id"), MKEY("time"), MKEY("eventTime"), MKEY("data"),
};

/* The data members of every ACS event type we decode (§2.2, §2.3, §4). */
enum {
	D_MESSAGEID, D_MESSAGETYPE, D_FROM, D_FROMBSUID, D_TO, D_TOBSUID, D_RECEIVED, D_CONTENT, D_CONTEXT,
	D_ERROR, D_INTERACTIVE, D_BUTTON, D_MEDIA, D_REACTION, D_STATUS, D_VALIDATIONCODE, D_VALIDATIONURL,
	D__COUNT
};
static const struct member_key data_keys[D__COUNT] = {
	MKEY("messageId"), MKEY("messageType"), MKEY("from"), MKEY("fromBSUID"), MKEY("to"), MKEY("toBSUID"),
	MKEY_CI("receivedTimestamp"), /* Q2: receivedTimeStamp in EG-TSP and SDK-JS */
	MKEY("content"), MKEY("context"), MKEY("error"), MKEY("interactive"), MKEY("button"), MKEY("media"),
	MKEY("reaction"), MKEY("status"), MKEY("validationCode"), MKEY("validationUrl"),
};

/* The media message type named by string token t ("image", ...), or NULL. */
static const char *media_type_of(const struct json_doc *d, uint32_t t)
{
	static const char *const names[] = {"image", "video", "audio", "document", "sticker"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (tok_eq(d, t, names[i], strlen(names[i])))
			return names[i];
	}
	return NULL;
}

/* data (required object) -> its members in f[D__COUNT]; false when absent
 * or not an object (error set on ev). */
static bool acs_data(event_decoder_t *dec, struct wa_event *ev, uint32_t data, uint32_t *f)
{
	if (tok_absent(&dec->doc, data)) {
		ev_fail(ev, EVENT_E_MISSING, "data");
		return false;
	}
	if (dec->doc.toks[data].type != JSON_OBJECT) {
		ev_fail(ev, EVENT_E_TYPE, "data");
		return false;
	}
	scan_members(&dec->doc, data, &dec->sets[SET_DATA], f);
	return true;
}

/* data.error {channelCode, channelMessage} (either direction). */
static void acs_error(event_decoder_t *dec, struct wa_event *ev, uint32_t e)
{
	if (!tok_is(&dec->doc, e, JSON_OBJECT))
		return;
	take_code(dec, ev, json_get(&dec->doc, e, "channelCode"), "data.error.channelCode");
	opt_member(dec, ev, e, "channelMessage", "data.error.channelMessage", &ev->error_message);
}

/* AdvancedMessageReceived data (contract §2.2 kind table). */
static void acs_received(event_decoder_t *dec, struct wa_event *ev, uint32_t data)
{
	const struct json_doc *d = &dec->doc;
	uint32_t f[D__COUNT];
	uint32_t t, mt, o, r;
	const char *media;

	if (!acs_data(dec, ev, data, f))
		return;
	iso_tok(d, f[D_RECEIVED], &ev->timestamp); /* else eventTime/time stays */
	opt_str(dec, ev, f[D_MESSAGEID], "data.messageId", &ev->message_id);
	t = id_tok(dec, ev, f[D_FROM], "data.from", false);
	if (t != JSON_NONE)
		take_phone(d, ev, t);
	id_str(dec, ev, f[D_FROMBSUID], "data.fromBSUID", false, &ev->user_id);
	id_str(dec, ev, f[D_TO], "data.to", false, &ev->business_id);
	if (tok_is(d, f[D_CONTEXT], JSON_OBJECT))
		opt_member(dec, ev, f[D_CONTEXT], "id", "data.context.id", &ev->ref_message_id);
	acs_error(dec, ev, f[D_ERROR]);

	mt = id_tok(dec, ev, f[D_MESSAGETYPE], "data.messageType", false);
	if (mt != JSON_NONE)
		str_take(dec, ev, mt, "data.messageType", &ev->type);

	if (mt == JSON_NONE) {
		/* Pre-2025 events carry no messageType (contract §2.2). */
		t = f[D_CONTENT];
		if (tok_is(d, t, JSON_STRING) && d->toks[t].len > 0 && str_take(dec, ev, t, "data.content", &ev->text))
			ev->kind = WA_KIND_TEXT;
	} else if (TOK_EQ(d, mt, "text")) {
		ev->kind = WA_KIND_TEXT;
		opt_str(dec, ev, f[D_CONTENT], "data.content", &ev->text);
	} else if (TOK_EQ(d, mt, "interactive")) {
		o = f[D_INTERACTIVE];
		t = json_get(d, o, "type");
		if (TOK_EQ(d, t, "buttonReply")) {
			ev->kind = WA_KIND_BUTTON_REPLY;
			r = json_get_type(d, o, "buttonReply", JSON_OBJECT);
			opt_member(dec, ev, r, "id", "data.interactive.buttonReply.id", &ev->reply_id);
			opt_member(dec, ev, r, "title", "data.interactive.buttonReply.title", &ev->reply_title);
		} else if (TOK_EQ(d, t, "listReply")) {
			ev->kind = WA_KIND_LIST_REPLY;
			r = json_get_type(d, o, "listReply", JSON_OBJECT);
			opt_member(dec, ev, r, "id", "data.interactive.listReply.id", &ev->reply_id);
			opt_member(dec, ev, r, "title", "data.interactive.listReply.title", &ev->reply_title);
			opt_member(dec, ev, r, "description", "data.interactive.listReply.description",
				   &ev->reply_description);
		}
	} else if (TOK_EQ(d, mt, "button")) {
		ev->kind = WA_KIND_BUTTON_REPLY;
		o = f[D_BUTTON];
		opt_member(dec, ev, o, "payload", "data.button.payload", &ev->reply_id);
		opt_member(dec, ev, o, "text", "data.button.text", &ev->reply_title);
	} else if ((media = media_type_of(d, mt)) != NULL) {
		o = f[D_MEDIA];
		if (tok_is(d, o, JSON_OBJECT)) {
			ev->kind = WA_KIND_MEDIA;
			ev->media_type.p = media; /* static: same bytes as the type */
			ev->media_type.len = strlen(media);
			opt_member(dec, ev, o, "id", "data.media.id", &ev->media_id);
			opt_member(dec, ev, o, "mimeType", "data.media.mimeType", &ev->media_mime);
			opt_member(dec, ev, o, "caption", "data.media.caption", &ev->media_caption);
			opt_member(dec, ev, o, "fileName", "data.media.fileName", &ev->media_filename);
			ev->media_animated = bool_of(d, json_get(d, o, "animated"));
			ev->text = ev->media_caption;
		}
	} else if (TOK_EQ(d, mt, "reaction")) {
		ev->kind = WA_KIND_REACTION;
		o = f[D_REACTION];
		opt_member(dec, ev, o, "messageId", "data.reaction.messageId", &ev->reaction_target);
		opt_member(dec, ev, o, "emoji", "data.reaction.emoji", &ev->reaction_emoji);
	}
	finish_key(ev, "data.from");
}

/* AdvancedMessageDeliveryStatusUpdated data (contract §2.3). */
static void acs_status(event_decoder_t *dec, struct wa_event *ev, uint32_t data)
{
	const struct json_doc *d = &dec->doc;
	uint32_t f[D__COUNT];
	uint32_t t;

	ev->kind = WA_KIND_STATUS;
	if (!acs_data(dec, ev, data, f))
		return;
	iso_tok(d, f[D_RECEIVED], &ev->timestamp);
	opt_str(dec, ev, f[D_MESSAGEID], "data.messageId", &ev->message_id);
	ev->ref_message_id = ev->message_id;
	t = f[D_STATUS];
	if (tok_is(d, t, JSON_STRING)) {
		char buf[16];
		size_t n;
		const char *s = str_small(d, t, buf, sizeof(buf), &n);

		ev->status = s ? status_of(s, n) : WA_STATUS_UNKNOWN;
	}
	id_str(dec, ev, f[D_FROM], "data.from", false, &ev->business_id);
	t = id_tok(dec, ev, f[D_TO], "data.to", false);
	if (t != JSON_NONE)
		take_phone(d, ev, t);
	id_str(dec, ev, f[D_TOBSUID], "data.toBSUID", false, &ev->user_id);
	acs_error(dec, ev, f[D_ERROR]);
	finish_key(ev, "data.to");
}

/* Microsoft.EventGrid.SubscriptionValidationEvent (contract §4). */
static void acs_validation(event_decoder_t *dec, struct wa_event *ev, uint32_t data)
{
	uint32_t f[D__COUNT];

	ev->provider = WA_PROVIDER_NONE;
	ev->kind = WA_KIND_VALIDATION;
	if (!acs_data(dec, ev, data, f))
		return;
	id_str(dec, ev, f[D_VALIDATIONCODE], "data.validationCode", true, &ev->validation_code);
	opt_str(dec, ev, f[D_VALIDATIONURL], "data.validationUrl", &ev->validation_url);
}

/* One CloudEvents (ce) or Event Grid schema event; env = its members. */
static void acs_envelope(event_decoder_t *dec, const uint32_t *env, bool ce)
{
	const struct json_doc *d = &dec->doc;
	const char *type_path = ce ? "type" : "eventType";
	struct wa_event *ev = ev_push(dec, WA_PROVIDER_ACS);
	uint32_t type;

	if (!ev)
		return;
	id_str(dec, ev, env[ENV_ID], "id", true, &ev->id);
	iso_tok(d, env[ce ? ENV_TIME : ENV_EVENTTIME], &ev->timestamp);
	type = id_tok(dec, ev, env[ce ? ENV_TYPE : ENV_EVENTTYPE], type_path, true);
	if (type == JSON_NONE)
		return;
	str_take(dec, ev, type, type_path, &ev->type);
	if (TOK_EQ(d, type, "Microsoft.Communication.AdvancedMessageReceived"))
		acs_received(dec, ev, env[ENV_DATA]);
	else if (TOK_EQ(d, type, "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated"))
		acs_status(dec, ev, env[ENV_DATA]);
	else if (TOK_EQ(d, type, "Microsoft.EventGrid.SubscriptionValidationEvent"))
		acs_validation(dec, ev, env[ENV_DATA]);
	else if (!(ev->type.len >= 24 && memcmp(ev->type.p, "Microsoft.Communication.", 24) == 0))
		ev->provider = WA_PROVIDER_NONE; /* e.g. SubscriptionDeletedEvent */
}

/* ---- Meta (contract §3) ---- */

/* What every event of one changes[] element shares. */
struct meta_change {
	uint32_t value;
	uint32_t ncontacts;     /* in dec->cm: at most EVENT_MAX_CONTACTS */
	struct wa_str business_id;
	event_err_t bid_err;    /* a bad metadata.phone_number_id */
	const char *bid_field;
};

enum { K_WA_ID, K_USER_ID, K_PROFILE, K__COUNT };
static const struct member_key contact_keys[K__COUNT] = {MKEY("wa_id"), MKEY("user_id"), MKEY("profile")};

/* Contact i of the change, decoded on first use. */
static struct contact_memo *meta_contact_memo(event_decoder_t *dec, uint32_t i)
{
	struct contact_memo *m = &dec->cm[i];
	struct wa_event scratch;

	if (m->done)
		return m;
	memset(&scratch, 0, sizeof(scratch));
	m->done = true;
	m->name.p = NULL;
	m->name.len = 0;
	m->user_id = m->name;
	if (m->name_tok != JSON_NONE)
		str_take(dec, &scratch, m->name_tok, "contacts[].profile.name", &m->name);
	if (m->user_id_tok != JSON_NONE)
		str_take(dec, &scratch, m->user_id_tok, "contacts[].user_id", &m->user_id);
	m->err = scratch.err;
	m->err_field = scratch.err_field;
	return m;
}

/* The contact whose wa_id is from (from_len bytes, may be NULL) or whose
 * user_id is uid (may be empty), or NULL. */
static struct contact_memo *meta_contact(event_decoder_t *dec, const struct meta_change *ch, const char *from,
					 size_t from_len, const struct wa_str *uid)
{
	const struct json_doc *d = &dec->doc;
	uint32_t i;

	if (!from && !uid->p)
		return NULL;
	for (i = 0; i < ch->ncontacts; i++) {
		const struct contact_memo *m = &dec->cm[i];

		if ((from && tok_eq(d, m->wa_id, from, from_len)) ||
		    (uid->p && tok_eq(d, m->user_id_tok, uid->p, uid->len)))
			return meta_contact_memo(dec, i);
	}
	return NULL;
}

/* errors[0] {code, title (else message), error_data.details} (§3.3, Q10). */
static void meta_errors(event_decoder_t *dec, struct wa_event *ev, uint32_t errors, bool status)
{
	const struct json_doc *d = &dec->doc;
	uint32_t e = tok_is(d, errors, JSON_ARRAY) ? json_first(d, errors) : JSON_NONE;

	if (!tok_is(d, e, JSON_OBJECT))
		return;
	take_code(dec, ev, json_get(d, e, "code"), status ? "statuses[].errors[].code" : "messages[].errors[].code");
	opt_member(dec, ev, e, "title", status ? "statuses[].errors[].title" : "messages[].errors[].title",
		&ev->error_message);
	if (!ev->error_message.p)
		opt_member(dec, ev, e, "message", status ? "statuses[].errors[].message" : "messages[].errors[].message",
			&ev->error_message);
	opt_member(dec, ev, json_get_type(d, e, "error_data", JSON_OBJECT), "details",
		status ? "statuses[].errors[].error_data.details" : "messages[].errors[].error_data.details",
		&ev->error_details);
}

/* A new Meta event carrying what its change shares, or NULL. */
static struct wa_event *meta_push(event_decoder_t *dec, const struct meta_change *ch)
{
	struct wa_event *ev = ev_push(dec, WA_PROVIDER_META);

	if (!ev)
		return NULL;
	ev->business_id = ch->business_id;
	if (ch->bid_err != EVENT_OK)
		ev_fail(ev, ch->bid_err, ch->bid_field);
	return ev;
}

/* The members of a messages[] or statuses[] element (contract §3.2, §3.3). */
enum {
	M_ID, M_TIMESTAMP, M_FROM, M_FROM_USER_ID, M_TYPE, M_CONTEXT, M_ERRORS, M_TEXT, M_INTERACTIVE, M_BUTTON,
	M_LOCATION, M_REACTION, M_IMAGE, M_VIDEO, M_AUDIO, M_DOCUMENT, M_STICKER, M__COUNT
};
static const struct member_key msg_keys[M__COUNT] = {
	MKEY("id"), MKEY("timestamp"), MKEY("from"), MKEY("from_user_id"), MKEY("type"), MKEY("context"),
	MKEY("errors"), MKEY("text"), MKEY("interactive"), MKEY("button"), MKEY("location"), MKEY("reaction"),
	MKEY("image"), MKEY("video"), MKEY("audio"), MKEY("document"), MKEY("sticker"),
};
enum { S_ID, S_STATUS, S_TIMESTAMP, S_RECIPIENT_ID, S_RECIPIENT_USER_ID, S_ERRORS, S__COUNT };
static const struct member_key status_keys[S__COUNT] = {
	MKEY("id"), MKEY("status"), MKEY("timestamp"), MKEY("recipient_id"), MKEY("recipient_user_id"),
	MKEY("errors"),
};

/* One messages[] element (contract §3.2). */
static void meta_message(event_decoder_t *dec, struct meta_change *ch, uint32_t msg)
{
	const struct json_doc *d = &dec->doc;
	struct wa_event *ev = meta_push(dec, ch);
	struct contact_memo *cm;
	uint32_t f[M__COUNT];
	uint32_t t, mt, o, r, from;
	char buf[128];
	const char *from_s = NULL, *media;
	size_t from_len = 0;

	if (!ev)
		return;
	if (!tok_is(d, msg, JSON_OBJECT)) {
		ev_fail(ev, EVENT_E_TYPE, "messages[]");
		return;
	}
	scan_members(d, msg, &dec->sets[SET_MSG], f);
	id_str(dec, ev, f[M_ID], "messages[].id", true, &ev->id);
	ev->message_id = ev->id;
	meta_ts(d, f[M_TIMESTAMP], &ev->timestamp);
	from = id_tok(dec, ev, f[M_FROM], "messages[].from", false);
	if (from != JSON_NONE) {
		take_phone(d, ev, from);
		from_s = str_small(d, from, buf, sizeof(buf), &from_len);
	}
	id_str(dec, ev, f[M_FROM_USER_ID], "messages[].from_user_id", false, &ev->user_id);
	cm = meta_contact(dec, ch, from_s, from_len, &ev->user_id);
	if (cm) {
		if (cm->err != EVENT_OK)
			ev_fail(ev, cm->err, cm->err_field);
		ev->profile_name = cm->name;
		if (!ev->user_id.p)
			ev->user_id = cm->user_id;
		if (from == JSON_NONE && cm->wa_id != JSON_NONE)
			take_phone(d, ev, cm->wa_id);
	}
	if (tok_is(d, f[M_CONTEXT], JSON_OBJECT))
		opt_member(dec, ev, f[M_CONTEXT], "id", "messages[].context.id", &ev->ref_message_id);
	meta_errors(dec, ev, f[M_ERRORS], false);

	mt = id_tok(dec, ev, f[M_TYPE], "messages[].type", false);
	if (mt != JSON_NONE)
		str_take(dec, ev, mt, "messages[].type", &ev->type);
	if (mt == JSON_NONE) {
		/* unsupported */
	} else if (TOK_EQ(d, mt, "text")) {
		ev->kind = WA_KIND_TEXT;
		opt_member(dec, ev, f[M_TEXT], "body", "messages[].text.body", &ev->text);
	} else if (TOK_EQ(d, mt, "interactive")) {
		o = f[M_INTERACTIVE];
		t = json_get(d, o, "type");
		if (TOK_EQ(d, t, "button_reply")) {
			ev->kind = WA_KIND_BUTTON_REPLY;
			r = json_get_type(d, o, "button_reply", JSON_OBJECT);
			opt_member(dec, ev, r, "id", "messages[].interactive.button_reply.id", &ev->reply_id);
			opt_member(dec, ev, r, "title", "messages[].interactive.button_reply.title", &ev->reply_title);
		} else if (TOK_EQ(d, t, "list_reply")) {
			ev->kind = WA_KIND_LIST_REPLY;
			r = json_get_type(d, o, "list_reply", JSON_OBJECT);
			opt_member(dec, ev, r, "id", "messages[].interactive.list_reply.id", &ev->reply_id);
			opt_member(dec, ev, r, "title", "messages[].interactive.list_reply.title", &ev->reply_title);
			opt_member(dec, ev, r, "description", "messages[].interactive.list_reply.description",
				   &ev->reply_description);
		}
	} else if (TOK_EQ(d, mt, "button")) {
		ev->kind = WA_KIND_BUTTON_REPLY;
		o = f[M_BUTTON];
		opt_member(dec, ev, o, "payload", "messages[].button.payload", &ev->reply_id);
		opt_member(dec, ev, o, "text", "messages[].button.text", &ev->reply_title);
	} else if ((media = media_type_of(d, mt)) != NULL) {
		/* The content object is named after the type: "image": {...}. */
		o = media[0] == 'i' ? f[M_IMAGE] : media[0] == 'v' ? f[M_VIDEO] : media[0] == 'a' ? f[M_AUDIO] :
		    media[0] == 'd' ? f[M_DOCUMENT] : f[M_STICKER];
		if (tok_is(d, o, JSON_OBJECT)) {
			ev->kind = WA_KIND_MEDIA;
			ev->media_type.p = media;
			ev->media_type.len = strlen(media);
			opt_member(dec, ev, o, "id", "messages[].<media>.id", &ev->media_id);
			opt_member(dec, ev, o, "mime_type", "messages[].<media>.mime_type", &ev->media_mime);
			opt_member(dec, ev, o, "caption", "messages[].<media>.caption", &ev->media_caption);
			opt_member(dec, ev, o, "filename", "messages[].<media>.filename", &ev->media_filename);
			ev->media_animated = bool_of(d, json_get(d, o, "animated"));
			ev->text = ev->media_caption;
		}
	} else if (TOK_EQ(d, mt, "location")) {
		double lat, lon;

		ev->kind = WA_KIND_LOCATION;
		o = f[M_LOCATION];
		if (json_num_f64(d, json_get(d, o, "latitude"), &lat) &&
		    json_num_f64(d, json_get(d, o, "longitude"), &lon) && isfinite(lat) && isfinite(lon) &&
		    lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0) {
			ev->has_location = true;
			ev->latitude = lat;
			ev->longitude = lon;
		}
		opt_member(dec, ev, o, "name", "messages[].location.name", &ev->location_name);
		opt_member(dec, ev, o, "address", "messages[].location.address", &ev->location_address);
	} else if (TOK_EQ(d, mt, "reaction")) {
		ev->kind = WA_KIND_REACTION;
		o = f[M_REACTION];
		opt_member(dec, ev, o, "message_id", "messages[].reaction.message_id", &ev->reaction_target);
		opt_member(dec, ev, o, "emoji", "messages[].reaction.emoji", &ev->reaction_emoji);
	}
	finish_key(ev, "messages[].from");
}

/* One statuses[] element (contract §3.3); id = wamid ":" status (§3.4). */
static void meta_status(event_decoder_t *dec, struct meta_change *ch, uint32_t st)
{
	const struct json_doc *d = &dec->doc;
	struct wa_event *ev = meta_push(dec, ch);
	uint32_t f[S__COUNT];
	uint32_t id, status, t;
	size_t room;
	char *p;
	size_t n, m;

	if (!ev)
		return;
	ev->kind = WA_KIND_STATUS;
	if (!tok_is(d, st, JSON_OBJECT)) {
		ev_fail(ev, EVENT_E_TYPE, "statuses[]");
		return;
	}
	scan_members(d, st, &dec->sets[SET_STATUS], f);
	meta_ts(d, f[S_TIMESTAMP], &ev->timestamp);
	t = id_tok(dec, ev, f[S_RECIPIENT_ID], "statuses[].recipient_id", false);
	if (t != JSON_NONE)
		take_phone(d, ev, t);
	id_str(dec, ev, f[S_RECIPIENT_USER_ID], "statuses[].recipient_user_id", false, &ev->user_id);
	meta_errors(dec, ev, f[S_ERRORS], true);

	id = id_tok(dec, ev, f[S_ID], "statuses[].id", true);
	status = id_tok(dec, ev, f[S_STATUS], "statuses[].status", true);
	if (id != JSON_NONE && status != JSON_NONE) {
		room = (size_t)d->toks[id].len + 1 + (size_t)d->toks[status].len + 1;
		p = arena_room(dec, room);
		if (!p) {
			ev_fail(ev, EVENT_E_NOMEM, "statuses[].id");
		} else {
			n = json_str_decode(d, id, p, d->toks[id].len + 1);
			m = n == (size_t)-1 ? n : json_str_decode(d, status, p + n + 1, d->toks[status].len + 1);
			if (m == (size_t)-1) { /* cannot happen: decoding never lengthens */
				ev_fail(ev, EVENT_E_NOMEM, "statuses[].id");
			} else if (n > EVENT_MAX_TEXT) {
				ev_fail(ev, EVENT_E_TEXT_TOO_LONG, "statuses[].id");
			} else if (m > EVENT_MAX_TEXT) {
				ev_fail(ev, EVENT_E_TEXT_TOO_LONG, "statuses[].status");
			} else {
				p[n] = ':';
				dec->arena_used += n + 1 + m;
				ev->id.p = p;
				ev->id.len = n + 1 + m;
				ev->message_id.p = p;
				ev->message_id.len = n;
				ev->ref_message_id = ev->message_id;
				ev->type.p = p + n + 1;
				ev->type.len = m;
				ev->status = status_of(ev->type.p, ev->type.len);
			}
		}
	}
	finish_key(ev, "statuses[].recipient_id");
}

enum { C_VALUE, C_FIELD, C__COUNT };
static const struct member_key change_keys[C__COUNT] = {MKEY("value"), MKEY("field")};
enum { V_METADATA, V_CONTACTS, V_MESSAGES, V_STATUSES, V__COUNT };
static const struct member_key value_keys[V__COUNT] = {
	MKEY("metadata"), MKEY("contacts"), MKEY("messages"), MKEY("statuses"),
};

/* The indexes of every member_set (all key arrays are defined above). */
static void member_sets_init(event_decoder_t *dec)
{
	member_set_init(&dec->sets[SET_ENV], env_keys, ENV__COUNT);
	member_set_init(&dec->sets[SET_DATA], data_keys, D__COUNT);
	member_set_init(&dec->sets[SET_CONTACT], contact_keys, K__COUNT);
	member_set_init(&dec->sets[SET_MSG], msg_keys, M__COUNT);
	member_set_init(&dec->sets[SET_STATUS], status_keys, S__COUNT);
	member_set_init(&dec->sets[SET_CHANGE], change_keys, C__COUNT);
	member_set_init(&dec->sets[SET_VALUE], value_keys, V__COUNT);
}

/* One entry[].changes[] element: its messages[] then its statuses[]; a
 * field other than "messages" is one unsupported event. */
static void meta_change(event_decoder_t *dec, uint32_t change)
{
	const struct json_doc *d = &dec->doc;
	struct meta_change ch;
	struct wa_event *ev;
	uint32_t cf[C__COUNT], vf[V__COUNT];
	uint32_t field, arr, i, k;

	memset(&ch, 0, sizeof(ch));
	if (!tok_is(d, change, JSON_OBJECT)) {
		if ((ev = meta_push(dec, &ch)))
			ev_fail(ev, EVENT_E_TYPE, "entry[].changes[]");
		return;
	}
	scan_members(d, change, &dec->sets[SET_CHANGE], cf);
	ch.value = cf[C_VALUE];
	field = cf[C_FIELD];
	if (!TOK_EQ(d, field, "messages")) {
		/* Group updates and other fields: one unsupported event. */
		if ((ev = meta_push(dec, &ch)) && tok_is(d, field, JSON_STRING))
			str_take(dec, ev, field, "entry[].changes[].field", &ev->type);
		return;
	}
	if (!tok_is(d, ch.value, JSON_OBJECT)) {
		if ((ev = meta_push(dec, &ch)))
			ev_fail(ev, tok_absent(d, ch.value) ? EVENT_E_MISSING : EVENT_E_TYPE, "entry[].changes[].value");
		return;
	}
	scan_members(d, ch.value, &dec->sets[SET_VALUE], vf);
	k = json_get(d, vf[V_METADATA], "phone_number_id");
	if (tok_is(d, k, JSON_STRING)) {
		struct wa_event scratch;

		memset(&scratch, 0, sizeof(scratch));
		str_take(dec, &scratch, k, "value.metadata.phone_number_id", &ch.business_id);
		ch.bid_err = scratch.err;
		ch.bid_field = scratch.err_field;
	} else if (!tok_absent(d, k)) {
		ch.bid_err = EVENT_E_TYPE;
		ch.bid_field = "value.metadata.phone_number_id";
	}
	arr = vf[V_CONTACTS];
	if (tok_is(d, arr, JSON_ARRAY)) {
		ch.ncontacts = d->toks[arr].count;
		if (ch.ncontacts > EVENT_MAX_CONTACTS)
			ch.ncontacts = EVENT_MAX_CONTACTS;
		for (i = 0, k = json_first(d, arr); i < ch.ncontacts; i++, k = json_after(d, k)) {
			struct contact_memo *m = &dec->cm[i];
			uint32_t kf[K__COUNT];

			scan_members(d, k, &dec->sets[SET_CONTACT], kf);
			m->done = false;
			m->wa_id = tok_is(d, kf[K_WA_ID], JSON_STRING) ? kf[K_WA_ID] : JSON_NONE;
			m->user_id_tok = tok_is(d, kf[K_USER_ID], JSON_STRING) ? kf[K_USER_ID] : JSON_NONE;
			m->name_tok = json_get_type(d, kf[K_PROFILE], "name", JSON_STRING);
		}
	}

	arr = vf[V_MESSAGES];
	if (tok_is(d, arr, JSON_ARRAY)) {
		for (i = 0, k = json_first(d, arr); i < d->toks[arr].count && !dec->rec_err; i++, k = json_after(d, k))
			meta_message(dec, &ch, k);
	} else if (!tok_absent(d, arr) && (ev = meta_push(dec, &ch))) {
		ev_fail(ev, EVENT_E_TYPE, "value.messages");
	}
	arr = vf[V_STATUSES];
	if (tok_is(d, arr, JSON_ARRAY)) {
		for (i = 0, k = json_first(d, arr); i < d->toks[arr].count && !dec->rec_err; i++, k = json_after(d, k))
			meta_status(dec, &ch, k);
	} else if (!tok_absent(d, arr) && (ev = meta_push(dec, &ch))) {
		ev->kind = WA_KIND_STATUS;
		ev_fail(ev, EVENT_E_TYPE, "value.statuses");
	}
}

/* A Meta webhook body's entry[] -> changes[] (contract §3.1). */
static void meta_body(event_decoder_t *dec, uint32_t entries)
{
	const struct json_doc *d = &dec->doc;
	uint32_t i, e, j, c, changes;
	struct meta_change none;
	struct wa_event *ev;

	memset(&none, 0, sizeof(none));
	for (i = 0, e = json_first(d, entries); i < d->toks[entries].count && !dec->rec_err; i++, e = json_after(d, e)) {
		changes = json_get(d, e, "changes");
		if (!tok_is(d, e, JSON_OBJECT) || !tok_is(d, changes, JSON_ARRAY)) {
			if ((ev = meta_push(dec, &none))) {
				if (!tok_is(d, e, JSON_OBJECT))
					ev_fail(ev, EVENT_E_TYPE, "entry[]");
				else
					ev_fail(ev, tok_absent(d, changes) ? EVENT_E_MISSING : EVENT_E_TYPE,
						"entry[].changes");
			}
			continue;
		}
		for (j = 0, c = json_first(d, changes); j < d->toks[changes].count && !dec->rec_err;
		     j++, c = json_after(d, c))
			meta_change(dec, c);
	}
}

/* ---- envelopes (contract §1) ---- */

/* Decodes the envelope object obj into events; false when obj is no known
 * envelope (nothing was added). */
static bool decode_envelope(event_decoder_t *dec, uint32_t obj)
{
	const struct json_doc *d = &dec->doc;
	uint32_t env[ENV__COUNT];

	if (!tok_is(d, obj, JSON_OBJECT))
		return false;
	scan_members(d, obj, &dec->sets[SET_ENV], env);
	if (TOK_EQ(d, env[ENV_OBJECT], "whatsapp_business_account") && tok_is(d, env[ENV_ENTRY], JSON_ARRAY)) {
		meta_body(dec, env[ENV_ENTRY]);
		return true;
	}
	if ((tok_is(d, env[ENV_SPECVERSION], JSON_STRING) || tok_is(d, env[ENV_SPECVERSION_Q5], JSON_STRING)) &&
	    env[ENV_TYPE] != JSON_NONE) {
		acs_envelope(dec, env, true);
		return true;
	}
	if (env[ENV_EVENTTYPE] != JSON_NONE && env[ENV_ID] != JSON_NONE) {
		acs_envelope(dec, env, false);
		return true;
	}
	return false;
}

static event_err_t fail(event_decoder_t *dec, event_err_t e, char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Record-level failure: no events, errstr gets one line. */
static event_err_t fail(event_decoder_t *dec, event_err_t e, char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	dec->nevs = 0;
	if (errstr && errstr_size) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return e;
}

static const char *json_type_word(enum json_kind t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_FALSE:
	case JSON_TRUE: return "a boolean";
	case JSON_NUMBER: return "a number";
	case JSON_STRING: return "a string";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "an object";
	}
	return "unknown";
}

event_err_t event_decode(event_decoder_t *dec, const char *payload, size_t len, const struct wa_event **events,
			 size_t *n, char *errstr, size_t errstr_size)
{
	struct json_limits lim = {EVENT_MAX_PAYLOAD, EVENT_MAX_DEPTH, EVENT_MAX_TOKENS};
	const struct json_doc *d = &dec->doc;
	enum json_error je;
	size_t i, need, maxev;
	uint32_t t;
	event_err_t e;

	*events = dec->evs;
	*n = 0;
	dec->nevs = 0;
	dec->arena_used = 0;
	dec->rec_err = EVENT_OK;

	/* 1. record checks and parse */
	if (len > EVENT_MAX_PAYLOAD)
		return fail(dec, EVENT_E_TOO_BIG, errstr, errstr_size, "payload of %zu bytes is over the limit of %u",
			    len, EVENT_MAX_PAYLOAD);
	for (i = 0; payload && i < len; i++) {
		if (payload[i] != ' ' && payload[i] != '\t' && payload[i] != '\n' && payload[i] != '\r')
			break;
	}
	if (!payload || i == len)
		return fail(dec, EVENT_E_EMPTY, errstr, errstr_size, "empty payload (%zu bytes of white space)", len);
	je = json_parse(&dec->doc, payload, len, &lim);
	switch (je) {
	case JSON_OK:
		break;
	case JSON_E_UTF8:
		return fail(dec, EVENT_E_UTF8, errstr, errstr_size, "invalid UTF-8 at byte %zu", d->err_offset);
	case JSON_E_DEPTH:
		return fail(dec, EVENT_E_DEPTH, errstr, errstr_size, "JSON nested deeper than %d levels at byte %zu",
			    EVENT_MAX_DEPTH, d->err_offset);
	case JSON_E_TOO_BIG:
		return fail(dec, EVENT_E_TOO_BIG, errstr, errstr_size, "more than %u JSON values (at byte %zu)",
			    EVENT_MAX_TOKENS, d->err_offset);
	case JSON_E_NOMEM:
		return fail(dec, EVENT_E_NOMEM, errstr, errstr_size, "out of memory parsing JSON");
	case JSON_E_SYNTAX:
	default:
		return fail(dec, EVENT_E_JSON, errstr, errstr_size, "invalid JSON at byte %zu", d->err_offset);
	}
	if (d->toks[0].type != JSON_OBJECT && d->toks[0].type != JSON_ARRAY)
		return fail(dec, EVENT_E_NOT_CONTAINER, errstr, errstr_size,
			    "payload is %s, not a JSON object or array", json_type_word(d->toks[0].type));

	/* 2. arena: see the file comment for the bound */
	maxev = d->ntoks < EVENT_MAX_EVENTS ? d->ntoks : EVENT_MAX_EVENTS;
	need = len + 64 + maxev * EVENT_ARENA_PER_EVENT;
	if (need > dec->arena_cap) {
		char *a = malloc(need);

		if (!a)
			return fail(dec, EVENT_E_NOMEM, errstr, errstr_size, "out of memory for %zu arena bytes",
				    need);
		free(dec->arena);
		dec->arena = a;
		dec->arena_cap = need;
	}

	/* 3, 4. envelopes */
	if (d->toks[0].type == JSON_ARRAY) {
		for (i = 0, t = json_first(d, 0); i < d->toks[0].count && !dec->rec_err; i++, t = json_after(d, t)) {
			if (!decode_envelope(dec, t)) {
				struct wa_event *ev = ev_push(dec, WA_PROVIDER_NONE);

				if (ev)
					ev_fail(ev, EVENT_E_ENVELOPE, NULL);
			}
		}
	} else if (!decode_envelope(dec, 0)) {
		return fail(dec, EVENT_E_ENVELOPE, errstr, errstr_size,
			    "object is no Meta, CloudEvents or Event Grid envelope");
	}
	e = dec->rec_err;
	if (e == EVENT_E_TOO_MANY)
		return fail(dec, e, errstr, errstr_size, "more than %u events in one record", EVENT_MAX_EVENTS);
	if (e != EVENT_OK)
		return fail(dec, e, errstr, errstr_size, "out of memory for %u events", dec->nevs);
	*events = dec->evs;
	*n = dec->nevs;
	return EVENT_OK;
}

/* ------------------------------------------------------------------------
 * Copies that outlive the decoder.
 */

/* Every struct wa_str member of struct wa_event. */
static const size_t wa_str_members[] = {
	offsetof(struct wa_event, id),
	offsetof(struct wa_event, type),
	offsetof(struct wa_event, user_id),
	offsetof(struct wa_event, business_id),
	offsetof(struct wa_event, profile_name),
	offsetof(struct wa_event, message_id),
	offsetof(struct wa_event, ref_message_id),
	offsetof(struct wa_event, text),
	offsetof(struct wa_event, reply_id),
	offsetof(struct wa_event, reply_title),
	offsetof(struct wa_event, reply_description),
	offsetof(struct wa_event, media_type),
	offsetof(struct wa_event, media_id),
	offsetof(struct wa_event, media_mime),
	offsetof(struct wa_event, media_caption),
	offsetof(struct wa_event, media_filename),
	offsetof(struct wa_event, location_name),
	offsetof(struct wa_event, location_address),
	offsetof(struct wa_event, reaction_emoji),
	offsetof(struct wa_event, reaction_target),
	offsetof(struct wa_event, error_code),
	offsetof(struct wa_event, error_message),
	offsetof(struct wa_event, error_details),
	offsetof(struct wa_event, validation_code),
	offsetof(struct wa_event, validation_url),
};
#define WA_STR_MEMBERS (sizeof(wa_str_members) / sizeof(wa_str_members[0]))

static bool in_payload(const struct wa_str *w, const char *payload, size_t len)
{
	return (uintptr_t)w->p >= (uintptr_t)payload && (uintptr_t)w->p + w->len <= (uintptr_t)payload + len;
}

size_t event_copy_size(const struct wa_event *evs, size_t n, const char *payload, size_t len)
{
	size_t bytes = n * sizeof(*evs), i, f;

	for (i = 0; i < n; i++)
		for (f = 0; f < WA_STR_MEMBERS; f++) {
			const struct wa_str *w = (const struct wa_str *)((const char *)&evs[i] + wa_str_members[f]);

			if (w->p && !in_payload(w, payload, len))
				bytes += w->len;
		}
	return bytes;
}

struct wa_event *event_copy(const struct wa_event *evs, size_t n, const char *payload, size_t len, void *buf)
{
	struct wa_event *out = buf;
	char *strs = (char *)buf + n * sizeof(*evs);
	size_t i, f;

	memcpy(out, evs, n * sizeof(*evs));
	for (i = 0; i < n; i++)
		for (f = 0; f < WA_STR_MEMBERS; f++) {
			struct wa_str *w = (struct wa_str *)((char *)&out[i] + wa_str_members[f]);

			if (!w->p || in_payload(w, payload, len))
				continue;
			memcpy(strs, w->p, w->len);
			w->p = strs;
			strs += w->len;
		}
	return out;
}
