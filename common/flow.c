/*
 * flow.c - the conversation engine (flow.h): a validating loader that
 * compiles a flow file once, and the step function run for every event.
 *
 * FLOW FILE FORMAT. One JSON object (strict JSON, UTF-8). Every object's keys
 * are checked: an unknown key is an error, so typos are caught at start.
 * TMPL strings may hold {field} placeholders (any slot field or "set" field
 * of the flow; others are errors); "{{" and "}}" are literal braces.
 *
 *   name           required; [A-Za-z0-9_.-]{1,64}; kept in the context as "flow"
 *   description, language (strings), version (integer)   optional, informative
 *   start          required step: shown when no conversation is under way
 *   fallback       required REPLY: sent after unrecognised input, before the
 *                  current question again
 *   non_text       required REPLY: sent for media, location and unsupported
 *                  messages, before the current question again
 *   confirm_words  {"yes":[TEXT..], "no":[TEXT..]}: typed answers of confirm
 *                  steps (whole answer, or its first words: "si, confirmo");
 *                  required when a step confirms
 *   intents        {NAME: {"keywords":[WORD..], "phrases":[TEXT..], "step":STEP}}
 *                  in priority order; a button/list reply whose id is NAME
 *                  also starts it
 *   commands       {"cancel":  {keywords, phrases, "step": FINAL STEP, "reply"?},
 *                   "restart": {keywords, phrases, "reply"?},
 *                   "help":    {keywords, phrases, "reply": REPLY}}
 *   steps          {NAME: STEP}; NAME ([A-Za-z0-9_.-]{1,64}) is the
 *                  context's conversation_step
 *
 *   STEP   prompt (REPLY, required); reprompt (REPLY used when asking again,
 *          default prompt); invalid (REPLY when an answer is refused, default
 *          fallback); set ({FIELD: "text"|null}, applied on entering; null
 *          removes); final (true: conversation over, the next message starts
 *          again); then (STEP entered right after this prompt, e.g. an answer
 *          then the menu); and at most one of:
 *          slot + next    capture the answer into a field, then go to next
 *          confirm        {"yes": STEP, "no": STEP}: button ids "yes"/"no" or
 *                         confirm_words
 *          options        [{"id","title","description"?,"keywords"?,"next"}]
 *                         a menu (1..10): ids of button/list replies, the
 *                         title or keywords typed, or the option number
 *   SLOT   field (required), min_length (1), max_length (256; code points of
 *          the trimmed answer, <= 1024), min_letters (0), chars (allowed
 *          classes: letter digit space apostrophe hyphen dot comma other),
 *          pattern (POSIX ERE on the trimmed answer as typed), reject_intents
 *          (an answer matching an intent is refused), values ([{"value",
 *          "id"?, "title"?, "description"?, "aliases"?}]: a list reply id, or
 *          typed text equal to a folded value/title/alias, or uniquely
 *          contained in one / containing one, stores the list's spelling and
 *          skips the other checks), restrict_to_list (false)
 *   REPLY  "TMPL" (text) | {"text": TMPL} | {"body": TMPL, "header"?: TMPL,
 *          "footer"?: TMPL, and "buttons": [{"id","title"}] (1..3) or
 *          "buttons_from": "options", or "list": {"button": TEXT, and "rows":
 *          [{"id","title","description"?}] or "sections": [{"title","rows"}]
 *          or "rows_from": "options"|"values"}}. WhatsApp's limits are
 *          checked on the static text: text 4096, body 1024, header/footer
 *          60, button title 20, list button 20, row title 24, row
 *          description 72 code points; <= 10 rows; unique ids and titles.
 *
 * ONE MESSAGE (text, button or list reply) is handled in this order:
 *  1. an event id listed in the context's "recent": the stored replies of
 *     that event again, nothing written (duplicate); else an event at or
 *     before the context's "in" position: nothing at all (duplicate);
 *  2. a button/list reply id: yes/no of a confirm step, an option id, a slot
 *     value id, an intent name; otherwise its title is taken as typed text;
 *  3. commands on the folded text (utf8_fold): cancel (slots removed ->
 *     its final step), restart (slots removed -> the first step of the
 *     intent under way, or the start step), help (its reply, then the
 *     current question; the step does not change);
 *  4. the current step: confirm -> yes/no words; slot -> the answer;
 *     options -> an option, else an intent; plain -> an intent;
 *  5. no conversation under way (no, expired or unusable context, or a final
 *     step): an intent's first step (slots removed), else the start step.
 * Unrecognised input gets "invalid" (or "fallback") and the reprompt. Media,
 * location, unsupported: non_text and the question again. Reactions and
 * validation events: nothing. Status events: the context's "delivery" only.
 * Keywords and phrases match whole words of the folded text anywhere in it.
 *
 * CONTEXT written (field names are a contract, see flow.h):
 *   {"conversation_step":S, "flow":NAME, "fv":"1a2b3c4d", <slot and set
 *    fields>, <unknown fields verbatim>, "delivery":{"message_id","status",
 *    "error_code"?,"at","event_id"}, "in":[PARTITION,OFFSET,INDEX,TS_MS],
 *    "recent":["id",..,{"id":ID,"s":STEP,"r":[REPLY,..]}]}
 * "in" is the inbound position of the last applied message (flow_pos and
 * the event's index in its record; TS_MS -1 when unknown). "recent" alone
 * forgets: a redelivery of more than FLOW_RECENT_IDS events of one phone
 * (a consumer that crashed, or whose commits a rebalance refused) would
 * advance the conversation twice. A redelivered event at or before "in"
 * on the same partition is a duplicate; one with a later record timestamp
 * than TS_MS is not (the topic was recreated or its offsets reset: the
 * user is typing now).
 * "recent" holds the last FLOW_RECENT_IDS event ids, newest last; the newest
 * FLOW_RECENT_REPLIES are objects that also keep the step index "s" and the
 * replies "r"; older ones are bare id strings. A stored REPLY is the number
 * of its template in the flow, or [number,"value",..] with the values its
 * placeholders had (body, header, footer order): rendering that again gives
 * the same text. "fv" fingerprints the flow text (FNV-1a 32): the numbers
 * mean something only under the same fv, so once the flow file changes the
 * older entries lose "s" and "r" (a duplicate of one is still recognised,
 * but gets no replies). Why not store the replies' text, which would
 * survive a flow change: the benchmark conversation's contexts grew from
 * 0.74 KB to 1.7 KB, and parsing the context (json.c, ~2 ns a byte here)
 * is the largest cost of a step: 4.7 us against 3.5 us per step, measured
 * with otherwise equal code (tests/bench/bench_flow_step.c, "cycle").
 * Status events are not listed in "recent" (three per reply would push
 * message ids out); a status whose id is delivery.event_id is a duplicate,
 * and one ranking below the stored status of the same message (sent <
 * delivered < read; failed is final) changes nothing.
 *
 * Owns: a flow_t (immutable after load: every piece lives in one pool freed
 * by flow_destroy, plus compiled regexes) shared by all threads; a
 * flow_session_t owns one thread's parse document, output buffer, string
 * arena and reply array, all kept across steps so that a step allocates
 * nothing once they have grown. Does no I/O besides flow_load_file.
 * Why json.h and not json-c for the context: json-c takes ~7 us to parse a
 * context here, the whole per-event budget is ~5 us; json-c is used only by
 * the loader.
 */
#include "flow.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* json-c (the loader) and json.h (the context) both name an enum json_kind:
 * json-c's is renamed here; this file never uses the name itself. */
#define json_type jsonc_type
#include <json-c/json.h>
#undef json_type

#include "jbuf.h"
#include "json.h"
#include "utf8.h"

#define FLOW_MAX_FILE (1024 * 1024)  /* bytes of a flow file */
#define FLOW_MAX_STEPS 256
#define FLOW_MAX_INTENTS 61           /* + 3 commands: one 64-bit keyword mask */
#define FLOW_MAX_FIELDS 64
#define FLOW_MAX_WORDS 256           /* keywords + phrases of one matcher */
#define FLOW_MAX_WORD_BYTES 200      /* one keyword or phrase, raw */
#define FLOW_MAX_NAME 64             /* flow, step, intent, field names */
#define FLOW_MAX_VALUES 256          /* allowed values of one slot */
#define FLOW_MAX_OPTIONS 10
#define FLOW_MAX_SLOT_CP 1024        /* ceiling of a slot's max_length */
#define FLOW_MAX_SET_BYTES 1024      /* a "set" value */
#define FLOW_MAX_PATTERN 512
/* A context string longer than this is not a value we wrote: ignored. */
#define FLOW_CTX_VALUE_MAX 8192
/* Context parse limits (the store accepts up to 1 MiB). */
#define FLOW_CTX_MAX_BYTES (1024u * 1024u)
#define FLOW_CTX_MAX_DEPTH 64u
/* Session arena block: enough for one step's strings in the common case. */
#define FLOW_ARENA_BLOCK 16384

/* The embedded default flow, generated by CMake from common/flows/donations.json. */
extern const unsigned char wb_flow_default_json[];
extern const size_t wb_flow_default_json_len;

/* Folded keywords or phrases, matched on word boundaries. */
struct words {
	const char **w;
	uint32_t *len;
	unsigned n;
	unsigned nkw;    /* the first nkw are single words (keywords) */
	unsigned mid1;   /* 1 + bit of this matcher in the keyword table; 0: not there */
	/* choices' candidates only (ld_starts): bit i set when a word starts at
	 * byte i of w[k], for i < 64 (choice_match); NULL elsewhere */
	uint64_t *starts;
};

/* The keywords of every intent and command in one hash table, so a
 * message's words are looked up once instead of each matcher scanning them. */
struct kw_ent {
	const char *w;   /* NULL: empty slot */
	uint32_t len;
	uint64_t mask;   /* matchers having it: bit = mid1 - 1 */
};

/* A template: literal text with placeholders cut out. seg[] lists the pieces
 * in order: literal ranges of lit (field < 0) and fields. */
struct seg {
	uint32_t off;
	uint32_t len;
	int field;
};

struct tmpl {
	const char *lit; /* NUL-terminated literal text; NULL: absent */
	size_t lit_len;
	struct seg *seg;
	unsigned nseg;
	bool dynamic;    /* has placeholders: rendered per step */
};

/* A reply template: the static parts in base, the texts as templates. */
struct treply {
	bool present;
	struct wa_reply base;
	struct tmpl body, header, footer;
	unsigned id;     /* index in flow.tr: how "recent" names it */
	unsigned nvals;  /* placeholders in body, header and footer */
	struct reply_prep *prep; /* owned; base.prep: the buttons, list and
	                            static texts encoded once; NULL: none */
};

/* A slot value or a menu option. */
struct choice {
	const char *id;          /* NULL for values without id */
	size_t id_len;
	const char *value;       /* slot values: the spelling stored */
	size_t value_len;
	const char *value_esc;   /* ... JSON-escaped, without quotes */
	size_t value_esc_len;
	const char *title;       /* list/button title (values: defaults to value) */
	const char *description;
	struct words cand;       /* folded value, title, aliases or keywords */
	int next;                /* options: step index */
};

enum step_kind {
	STEP_PLAIN = 0,
	STEP_SLOT,
	STEP_CONFIRM,
	STEP_OPTIONS,
};

/* Character classes of a slot's "chars". */
#define CH_LETTER 0x01u
#define CH_DIGIT 0x02u
#define CH_SPACE 0x04u
#define CH_APOS 0x08u
#define CH_HYPHEN 0x10u
#define CH_DOT 0x20u
#define CH_COMMA 0x40u
#define CH_OTHER 0x80u

struct slot {
	int field;
	unsigned min_len, max_len, min_letters; /* code points */
	unsigned chars;                         /* CH_* mask; 0: anything */
	bool reject_intents;
	bool has_re;
	regex_t re;
	struct choice *vals;
	unsigned nvals;
	bool restrict_list;
};

struct setf {
	int field;
	const char *val; /* NULL: remove the field */
	size_t len;
	const char *esc; /* val JSON-escaped, without quotes */
	size_t esc_len;
};

struct step {
	const char *name;
	size_t name_len;
	const char *name_json; /* "name", quoted and escaped */
	size_t name_json_len;
	enum step_kind kind;
	bool final;
	struct treply prompt, reprompt, invalid;
	struct setf *set;
	unsigned nset;
	struct slot slot;
	int next;          /* slot */
	int yes, no;       /* confirm */
	struct choice *opts;
	unsigned nopts;
	int then;          /* -1: none */
	int owner;         /* intent whose conversation reaches this step, -1 */
};

struct intent {
	const char *name;
	size_t name_len;
	struct words m;
	int step;
};

struct command {
	bool present;
	struct words m;
	int step; /* cancel */
	struct treply reply;
};

struct pool_blk {
	struct pool_blk *next;
	size_t used, cap;
	max_align_t data[];
};

struct flow {
	struct pool_blk *pool;
	const char *name;
	size_t name_len;
	int start;
	struct treply fallback, non_text;
	bool has_confirm_words;
	struct words yes, no;
	struct intent *intents;
	unsigned nintents;
	struct command cancel, restart, help;
	struct step *steps;
	unsigned nsteps;
	const char **fields;
	size_t *field_len;
	const char **field_key; /* "field": ready to write */
	size_t *field_key_len;
	unsigned nfields;
	const char *name_json;  /* "name", quoted and escaped */
	size_t name_json_len;
	char fv[9];             /* fingerprint of the flow text (FNV-1a 32, hex) */
	struct treply **tr;     /* every reply template, by id */
	unsigned ntr;
	unsigned max_vals;      /* most placeholders of one reply */
	struct kw_ent *kw;      /* open addressing, kw_mask + 1 slots */
	uint32_t kw_mask;
	bool is_slot[FLOW_MAX_FIELDS]; /* field i is some step's slot */
};

/* ------------------------------------------------------------------------
 * Flow memory: one pool, freed at once.
 */

static void *pool_alloc(flow_t *f, size_t n)
{
	struct pool_blk *b = f->pool;
	size_t a = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	char *p;

	if (!b || b->cap - b->used < a) {
		size_t cap = a > 8192 ? a : 8192;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = f->pool;
		f->pool = b;
	}
	p = (char *)b->data + b->used;
	b->used += a;
	memset(p, 0, a);
	return p;
}

static char *pool_strndup(flow_t *f, const char *s, size_t n)
{
	char *p = pool_alloc(f, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ------------------------------------------------------------------------
 * Loader (json-c; speed does not matter here). Errors name the JSON path.
 */

struct ld {
	flow_t *f;
	char path[512];
	size_t plen;
	char *err;
	size_t errsz;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static bool ld_fail(struct ld *ld, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	if (ld->failed)
		return false;
	ld->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errsz)
		snprintf(ld->err, ld->errsz, "%s: %s", ld->path, msg);
	return false;
}

static bool ld_nomem(struct ld *ld)
{
	return ld_fail(ld, "out of memory");
}

static size_t ld_push(struct ld *ld, const char *key)
{
	size_t old = ld->plen;
	int n = snprintf(ld->path + ld->plen, sizeof(ld->path) - ld->plen, ".%s", key);

	if (n > 0)
		ld->plen += (size_t)n < sizeof(ld->path) - ld->plen ? (size_t)n : sizeof(ld->path) - 1 - ld->plen;
	return old;
}

static size_t ld_push_idx(struct ld *ld, size_t i)
{
	size_t old = ld->plen;
	int n = snprintf(ld->path + ld->plen, sizeof(ld->path) - ld->plen, "[%zu]", i);

	if (n > 0)
		ld->plen += (size_t)n < sizeof(ld->path) - ld->plen ? (size_t)n : sizeof(ld->path) - 1 - ld->plen;
	return old;
}

static void ld_pop(struct ld *ld, size_t old)
{
	ld->plen = old;
	ld->path[old] = '\0';
}

static const char *jtype_name(json_object *j)
{
	switch (json_object_get_type(j)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double:
	case json_type_int: return "a number";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "?";
}

/* Checks that obj is an object whose keys are all in allowed (NULL-ended). */
static bool ld_object(struct ld *ld, json_object *obj, const char *const *allowed)
{
	struct json_object_iterator it, end;

	if (!json_object_is_type(obj, json_type_object))
		return ld_fail(ld, "must be an object, not %s", jtype_name(obj));
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *k = json_object_iter_peek_name(&it);
		const char *const *a;

		for (a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				break;
		if (!*a) {
			ld_push(ld, k);
			return ld_fail(ld, "unknown key");
		}
	}
	return true;
}

static json_object *ld_get(json_object *obj, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

/* j must be a string of valid UTF-8 without NUL, 1.. (or 0.. when
 * allow_empty) bytes and at most max_cp code points. The path is j's. */
static bool ld_text(struct ld *ld, json_object *j, bool allow_empty, size_t max_cp, const char **s, size_t *len)
{
	const char *p;
	size_t n;

	if (!json_object_is_type(j, json_type_string))
		return ld_fail(ld, "must be a string, not %s", jtype_name(j));
	p = json_object_get_string(j);
	n = (size_t)json_object_get_string_len(j);
	if (strlen(p) != n)
		return ld_fail(ld, "must not contain NUL characters");
	if (!utf8_valid(p, n))
		return ld_fail(ld, "must be valid UTF-8");
	if (n == 0 && !allow_empty)
		return ld_fail(ld, "must not be empty");
	if (max_cp && utf8_count(p, n) > max_cp)
		return ld_fail(ld, "longer than %zu characters", max_cp);
	*s = p;
	*len = n;
	return true;
}

/* As ld_text for member key of obj; copies into the pool. Absent: *out NULL
 * and true unless required. */
static bool ld_str(struct ld *ld, json_object *obj, const char *key, bool required, size_t max_cp,
		   const char **out, size_t *out_len)
{
	json_object *j = ld_get(obj, key);
	size_t old = ld_push(ld, key), n = 0;
	const char *s;
	char *c;

	*out = NULL;
	if (out_len)
		*out_len = 0;
	if (!j) {
		if (required)
			return ld_fail(ld, "required");
		ld_pop(ld, old);
		return true;
	}
	if (!ld_text(ld, j, false, max_cp, &s, &n))
		return false;
	if (!(c = pool_strndup(ld->f, s, n)))
		return ld_nomem(ld);
	*out = c;
	if (out_len)
		*out_len = n;
	ld_pop(ld, old);
	return true;
}

static bool ld_int(struct ld *ld, json_object *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
	json_object *j = ld_get(obj, key);
	size_t old;
	int64_t v;

	if (!j)
		return true;
	old = ld_push(ld, key);
	if (!json_object_is_type(j, json_type_int))
		return ld_fail(ld, "must be an integer, not %s", jtype_name(j));
	errno = 0;
	v = json_object_get_int64(j);
	if (errno || v < min || v > max)
		return ld_fail(ld, "must be an integer from %lld to %lld", (long long)min, (long long)max);
	*out = v;
	ld_pop(ld, old);
	return true;
}

static bool ld_bool(struct ld *ld, json_object *obj, const char *key, bool *out)
{
	json_object *j = ld_get(obj, key);
	size_t old;

	if (!j)
		return true;
	old = ld_push(ld, key);
	if (!json_object_is_type(j, json_type_boolean))
		return ld_fail(ld, "must be true or false, not %s", jtype_name(j));
	*out = json_object_get_boolean(j);
	ld_pop(ld, old);
	return true;
}

static bool name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > FLOW_MAX_NAME)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool field_name_ok(const char *s)
{
	static const char *const reserved[] = {"conversation_step", "flow", "fv", "delivery", "in", "recent",
					       "version", "updated_at", NULL};
	size_t n = strlen(s), i;
	const char *const *r;

	if (n == 0 || n > FLOW_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_'))
			return false;
	for (r = reserved; *r; r++)
		if (strcmp(*r, s) == 0)
			return false;
	return true;
}

static int find_step(const flow_t *f, const char *name, size_t len)
{
	unsigned i;

	for (i = 0; i < f->nsteps; i++)
		if (f->steps[i].name_len == len && memcmp(f->steps[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

static int find_field(const flow_t *f, const char *name, size_t len)
{
	unsigned i;

	for (i = 0; i < f->nfields; i++)
		if (f->field_len[i] == len && memcmp(f->fields[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* A reference to a step in member key of obj. */
static bool ld_stepref(struct ld *ld, json_object *obj, const char *key, bool required, int *out)
{
	json_object *j = ld_get(obj, key);
	size_t old = ld_push(ld, key);
	const char *s;
	size_t n;

	*out = -1;
	if (!j) {
		if (required)
			return ld_fail(ld, "required");
		ld_pop(ld, old);
		return true;
	}
	if (!ld_text(ld, j, false, 0, &s, &n))
		return false;
	if ((*out = find_step(ld->f, s, n)) < 0)
		return ld_fail(ld, "unknown step \"%.64s\"", s);
	ld_pop(ld, old);
	return true;
}

/* Appends the folded strings of array member key of obj to w. one_word:
 * each must fold to a single word. */
static bool ld_words(struct ld *ld, json_object *obj, const char *key, bool one_word, struct words *w)
{
	json_object *arr = ld_get(obj, key);
	size_t old, i, n;
	const char **nw;
	uint32_t *nl;

	if (!arr)
		return true;
	old = ld_push(ld, key);
	if (!json_object_is_type(arr, json_type_array))
		return ld_fail(ld, "must be an array of strings, not %s", jtype_name(arr));
	n = json_object_array_length(arr);
	if (n == 0)
		return ld_fail(ld, "must not be empty");
	if (w->n + n > FLOW_MAX_WORDS)
		return ld_fail(ld, "more than %d entries", FLOW_MAX_WORDS);
	nw = pool_alloc(ld->f, (w->n + n) * sizeof(*nw));
	nl = pool_alloc(ld->f, (w->n + n) * sizeof(*nl));
	if (!nw || !nl)
		return ld_nomem(ld);
	if (w->n) {
		memcpy(nw, w->w, w->n * sizeof(*nw));
		memcpy(nl, w->len, w->n * sizeof(*nl));
	}
	w->w = nw;
	w->len = nl;
	for (i = 0; i < n; i++) {
		size_t o2 = ld_push_idx(ld, i), len, flen;
		const char *s;
		char *buf;

		if (!ld_text(ld, json_object_array_get_idx(arr, i), false, 0, &s, &len))
			return false;
		if (len > FLOW_MAX_WORD_BYTES)
			return ld_fail(ld, "longer than %d bytes", FLOW_MAX_WORD_BYTES);
		if (!(buf = pool_alloc(ld->f, len + 1)))
			return ld_nomem(ld);
		flen = utf8_fold(s, len, buf, len + 1);
		if (flen == 0)
			return ld_fail(ld, "has no letters or digits");
		if (one_word && memchr(buf, ' ', flen))
			return ld_fail(ld, "must be one word (use \"phrases\" for several)");
		w->w[w->n] = buf;
		w->len[w->n] = (uint32_t)flen;
		w->n++;
		ld_pop(ld, o2);
	}
	ld_pop(ld, old);
	return true;
}

/* "keywords" and "phrases" of obj into w; at least one entry. */
static bool ld_matcher(struct ld *ld, json_object *obj, struct words *w)
{
	if (!ld_words(ld, obj, "keywords", true, w))
		return false;
	w->nkw = w->n;
	if (!ld_words(ld, obj, "phrases", false, w))
		return false;
	if (w->n == 0)
		return ld_fail(ld, "needs \"keywords\" or \"phrases\"");
	return true;
}

/*
 * Compiles template text s (path already pushed). max_cp bounds the static
 * text (placeholders count as nothing). need_text: there must be visible
 * literal text, so the rendered value is never empty.
 */
static bool ld_tmpl(struct ld *ld, const char *s, size_t n, size_t max_cp, bool need_text, struct tmpl *t)
{
	char *lit = pool_alloc(ld->f, n + 1);
	struct seg *seg;
	size_t i = 0, o = 0, nseg = 0, cap = 1, start;
	bool visible = false;

	if (!lit)
		return ld_nomem(ld);
	for (i = 0; i < n; i++)
		if (s[i] == '{')
			cap += 2;
	if (!(seg = pool_alloc(ld->f, cap * sizeof(*seg))))
		return ld_nomem(ld);
	start = 0;
	i = 0;
	while (i < n) {
		if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') {
			lit[o++] = '{';
			i += 2;
			visible = true;
			continue;
		}
		if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
			lit[o++] = '}';
			i += 2;
			visible = true;
			continue;
		}
		if (s[i] == '{') {
			size_t j = i + 1;
			int fi;

			while (j < n && s[j] != '}' && s[j] != '{' && j - i <= FLOW_MAX_NAME + 1)
				j++;
			if (j >= n || s[j] != '}')
				return ld_fail(ld, "'{' at byte %zu does not start a {field} (write {{ for a brace)", i);
			if ((fi = find_field(ld->f, s + i + 1, j - i - 1)) < 0)
				return ld_fail(ld, "unknown placeholder {%.*s}", (int)(j - i - 1), s + i + 1);
			if (o > start) {
				seg[nseg].off = (uint32_t)start;
				seg[nseg].len = (uint32_t)(o - start);
				seg[nseg++].field = -1;
			}
			seg[nseg].off = 0;
			seg[nseg].len = 0;
			seg[nseg++].field = fi;
			start = o;
			t->dynamic = true;
			i = j + 1;
			continue;
		}
		if (!(s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
			visible = true;
		lit[o++] = s[i++];
	}
	if (o > start) {
		seg[nseg].off = (uint32_t)start;
		seg[nseg].len = (uint32_t)(o - start);
		seg[nseg++].field = -1;
	}
	lit[o] = '\0';
	if (need_text && !visible)
		return ld_fail(ld, "must contain text besides placeholders");
	if (max_cp && utf8_count(lit, o) > max_cp)
		return ld_fail(ld, "longer than %zu characters (WhatsApp's limit)", max_cp);
	t->lit = lit;
	t->lit_len = o;
	t->seg = seg;
	t->nseg = (unsigned)nseg;
	return true;
}

/* Template member key of obj. */
static bool ld_tmpl_member(struct ld *ld, json_object *obj, const char *key, bool required, size_t max_cp,
			   bool need_text, struct tmpl *t)
{
	json_object *j = ld_get(obj, key);
	size_t old, n;
	const char *s;

	if (!j) {
		if (!required)
			return true;
		old = ld_push(ld, key);
		return ld_fail(ld, "required");
	}
	old = ld_push(ld, key);
	if (!ld_text(ld, j, false, 0, &s, &n) || !ld_tmpl(ld, s, n, max_cp, need_text, t))
		return false;
	ld_pop(ld, old);
	return true;
}

static bool dup_str(const char *const *v, unsigned n, const char *s)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* Buttons array j (path pushed) into r->base. */
static bool ld_buttons(struct ld *ld, json_object *j, struct treply *r)
{
	static const char *const keys[] = {"id", "title", NULL};
	const char *ids[REPLY_MAX_BUTTONS], *titles[REPLY_MAX_BUTTONS];
	size_t n, i;

	if (!json_object_is_type(j, json_type_array))
		return ld_fail(ld, "must be an array, not %s", jtype_name(j));
	n = json_object_array_length(j);
	if (n == 0)
		return ld_fail(ld, "must not be empty");
	if (n > REPLY_MAX_BUTTONS)
		return ld_fail(ld, "more than %d buttons", REPLY_MAX_BUTTONS);
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(j, i);
		size_t old = ld_push_idx(ld, i), idlen;
		struct reply_button *rb = &r->base.buttons[i];

		if (!ld_object(ld, b, keys) || !ld_str(ld, b, "id", true, 0, &rb->id, &idlen) ||
		    !ld_str(ld, b, "title", true, REPLY_LIMIT_BUTTON_TITLE, &rb->title, NULL))
			return false;
		if (idlen > REPLY_LIMIT_BUTTON_ID) {
			ld_push(ld, "id");
			return ld_fail(ld, "longer than %d bytes", REPLY_LIMIT_BUTTON_ID);
		}
		if (dup_str(ids, (unsigned)i, rb->id)) {
			ld_push(ld, "id");
			return ld_fail(ld, "duplicate button id \"%s\"", rb->id);
		}
		if (dup_str(titles, (unsigned)i, rb->title)) {
			ld_push(ld, "title");
			return ld_fail(ld, "duplicate button title");
		}
		ids[i] = rb->id;
		titles[i] = rb->title;
		ld_pop(ld, old);
	}
	r->base.nbuttons = (unsigned)n;
	return true;
}

/* Rows array j (path pushed) appended to r->base.rows. */
static bool ld_rows(struct ld *ld, json_object *j, struct treply *r, unsigned *count)
{
	static const char *const keys[] = {"id", "title", "description", NULL};
	size_t n, i;

	if (!json_object_is_type(j, json_type_array))
		return ld_fail(ld, "must be an array, not %s", jtype_name(j));
	n = json_object_array_length(j);
	if (n == 0)
		return ld_fail(ld, "must not be empty");
	if (r->base.nrows + n > REPLY_MAX_ROWS)
		return ld_fail(ld, "more than %d rows in the list", REPLY_MAX_ROWS);
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(j, i);
		size_t old = ld_push_idx(ld, i), idlen;
		struct reply_row *row = &r->base.rows[r->base.nrows];
		unsigned k;

		if (!ld_object(ld, o, keys) || !ld_str(ld, o, "id", true, 0, &row->id, &idlen) ||
		    !ld_str(ld, o, "title", true, REPLY_LIMIT_ROW_TITLE, &row->title, NULL) ||
		    !ld_str(ld, o, "description", false, REPLY_LIMIT_ROW_DESC, &row->description, NULL))
			return false;
		if (idlen > REPLY_LIMIT_ROW_ID) {
			ld_push(ld, "id");
			return ld_fail(ld, "longer than %d bytes", REPLY_LIMIT_ROW_ID);
		}
		for (k = 0; k < r->base.nrows; k++)
			if (strcmp(r->base.rows[k].id, row->id) == 0) {
				ld_push(ld, "id");
				return ld_fail(ld, "duplicate row id \"%s\"", row->id);
			}
		r->base.nrows++;
		ld_pop(ld, old);
	}
	*count = (unsigned)n;
	return true;
}

/* Rows or buttons generated from the step's options or slot values. */
static bool ld_rows_from(struct ld *ld, json_object *j, struct treply *r, const struct step *st, bool buttons)
{
	const char *s;
	size_t n, i, nch;
	const struct choice *ch;

	if (!ld_text(ld, j, false, 0, &s, &n))
		return false;
	if (strcmp(s, "options") == 0 && st && st->kind == STEP_OPTIONS) {
		ch = st->opts;
		nch = st->nopts;
	} else if (!buttons && strcmp(s, "values") == 0 && st && st->kind == STEP_SLOT && st->slot.nvals) {
		ch = st->slot.vals;
		nch = st->slot.nvals;
	} else {
		return ld_fail(ld, buttons ? "must be \"options\" on a step with options"
					   : "must be \"options\" on a step with options or \"values\" on a "
					     "step whose slot has values");
	}
	if (nch > (buttons ? REPLY_MAX_BUTTONS : REPLY_MAX_ROWS))
		return ld_fail(ld, "%zu entries, more than the %d %s allowed", nch,
			       buttons ? REPLY_MAX_BUTTONS : REPLY_MAX_ROWS, buttons ? "buttons" : "rows");
	for (i = 0; i < nch; i++) {
		const char *title = ch[i].title ? ch[i].title : ch[i].value;
		size_t max = buttons ? REPLY_LIMIT_BUTTON_TITLE : REPLY_LIMIT_ROW_TITLE;

		if (!ch[i].id)
			return ld_fail(ld, "entry %zu has no \"id\"", i);
		if (utf8_count(title, strlen(title)) > max)
			return ld_fail(ld, "title of entry %zu is longer than %zu characters", i, max);
		if (ch[i].id_len > (buttons ? REPLY_LIMIT_BUTTON_ID : REPLY_LIMIT_ROW_ID))
			return ld_fail(ld, "id of entry %zu is too long", i);
		if (buttons) {
			r->base.buttons[i].id = ch[i].id;
			r->base.buttons[i].title = title;
		} else {
			if (ch[i].description && utf8_count(ch[i].description, strlen(ch[i].description)) >
							 REPLY_LIMIT_ROW_DESC)
				return ld_fail(ld, "description of entry %zu is longer than %d characters", i,
					       REPLY_LIMIT_ROW_DESC);
			r->base.rows[i].id = ch[i].id;
			r->base.rows[i].title = title;
			r->base.rows[i].description = ch[i].description;
		}
	}
	if (buttons) {
		for (i = 0; i < nch; i++)
			for (size_t k = 0; k < i; k++)
				if (strcmp(r->base.buttons[i].title, r->base.buttons[k].title) == 0)
					return ld_fail(ld, "duplicate button title");
		r->base.nbuttons = (unsigned)nch;
	} else {
		r->base.nrows = (unsigned)nch;
	}
	return true;
}

static bool ld_list(struct ld *ld, json_object *j, struct treply *r, const struct step *st)
{
	static const char *const keys[] = {"button", "rows", "sections", "rows_from", NULL};
	static const char *const skeys[] = {"title", "rows", NULL};
	json_object *rows = ld_get(j, "rows"), *secs = ld_get(j, "sections"), *from = ld_get(j, "rows_from");
	size_t old;
	unsigned cnt;

	if (!ld_object(ld, j, keys) ||
	    !ld_str(ld, j, "button", true, REPLY_LIMIT_LIST_BUTTON, &r->base.list_button, NULL))
		return false;
	if (!!rows + !!secs + !!from != 1)
		return ld_fail(ld, "needs exactly one of \"rows\", \"sections\" or \"rows_from\"");
	if (rows) {
		old = ld_push(ld, "rows");
		if (!ld_rows(ld, rows, r, &cnt))
			return false;
		ld_pop(ld, old);
		return true;
	}
	if (from) {
		old = ld_push(ld, "rows_from");
		if (!ld_rows_from(ld, from, r, st, false))
			return false;
		ld_pop(ld, old);
		return true;
	}
	old = ld_push(ld, "sections");
	if (!json_object_is_type(secs, json_type_array))
		return ld_fail(ld, "must be an array, not %s", jtype_name(secs));
	if (json_object_array_length(secs) == 0)
		return ld_fail(ld, "must not be empty");
	if (json_object_array_length(secs) > REPLY_MAX_SECTIONS)
		return ld_fail(ld, "more than %d sections", REPLY_MAX_SECTIONS);
	for (size_t i = 0; i < json_object_array_length(secs); i++) {
		json_object *sj = json_object_array_get_idx(secs, i);
		struct reply_section *sec = &r->base.sections[i];
		size_t o2 = ld_push_idx(ld, i), o3;

		if (!ld_object(ld, sj, skeys) ||
		    !ld_str(ld, sj, "title", json_object_array_length(secs) > 1, REPLY_LIMIT_SECTION_TITLE,
			    &sec->title, NULL))
			return false;
		if (!ld_get(sj, "rows")) {
			ld_push(ld, "rows");
			return ld_fail(ld, "required");
		}
		o3 = ld_push(ld, "rows");
		if (!ld_rows(ld, ld_get(sj, "rows"), r, &cnt))
			return false;
		sec->nrows = cnt;
		ld_pop(ld, o3);
		ld_pop(ld, o2);
	}
	r->base.nsections = (unsigned)json_object_array_length(secs);
	ld_pop(ld, old);
	return true;
}

/* A REPLY at the current path. st: the step it belongs to (for rows_from),
 * or NULL. */
static bool ld_reply(struct ld *ld, json_object *j, struct treply *r, const struct step *st)
{
	static const char *const keys[] = {"text", "body", "header", "footer", "buttons", "buttons_from", "list", NULL};
	json_object *b, *bf, *l;
	size_t old;

	r->present = true;
	if (json_object_is_type(j, json_type_string)) {
		const char *s;
		size_t n;

		r->base.kind = REPLY_TEXT;
		return ld_text(ld, j, false, 0, &s, &n) && ld_tmpl(ld, s, n, REPLY_LIMIT_TEXT, true, &r->body);
	}
	if (!ld_object(ld, j, keys))
		return false;
	if (ld_get(j, "text")) {
		if (ld_get(j, "body") || ld_get(j, "header") || ld_get(j, "footer") || ld_get(j, "buttons") ||
		    ld_get(j, "buttons_from") || ld_get(j, "list"))
			return ld_fail(ld, "\"text\" cannot be combined with body, header, footer, buttons or list");
		r->base.kind = REPLY_TEXT;
		return ld_tmpl_member(ld, j, "text", true, REPLY_LIMIT_TEXT, true, &r->body);
	}
	b = ld_get(j, "buttons");
	bf = ld_get(j, "buttons_from");
	l = ld_get(j, "list");
	if (!!b + !!bf + !!l != 1)
		return ld_fail(ld, "needs \"text\", or \"body\" with exactly one of \"buttons\", \"buttons_from\" "
				   "or \"list\"");
	if (!ld_tmpl_member(ld, j, "body", true, REPLY_LIMIT_BODY, true, &r->body) ||
	    !ld_tmpl_member(ld, j, "header", false, REPLY_LIMIT_HEADER, false, &r->header) ||
	    !ld_tmpl_member(ld, j, "footer", false, REPLY_LIMIT_FOOTER, false, &r->footer))
		return false;
	if (b) {
		r->base.kind = REPLY_BUTTONS;
		old = ld_push(ld, "buttons");
		if (!ld_buttons(ld, b, r))
			return false;
	} else if (bf) {
		r->base.kind = REPLY_BUTTONS;
		old = ld_push(ld, "buttons_from");
		if (!ld_rows_from(ld, bf, r, st, true))
			return false;
	} else {
		r->base.kind = REPLY_LIST;
		old = ld_push(ld, "list");
		if (!ld_list(ld, l, r, st))
			return false;
	}
	ld_pop(ld, old);
	return true;
}

static bool ld_reply_member(struct ld *ld, json_object *obj, const char *key, bool required, struct treply *r,
			    const struct step *st)
{
	json_object *j = ld_get(obj, key);
	size_t old = ld_push(ld, key);

	if (!j) {
		if (required)
			return ld_fail(ld, "required");
		ld_pop(ld, old);
		return true;
	}
	if (!ld_reply(ld, j, r, st))
		return false;
	ld_pop(ld, old);
	return true;
}

/* Adds the folded form of s to w (no path: s was checked already). */
static bool words_add(struct ld *ld, struct words *w, const char *s, unsigned cap)
{
	size_t n = strlen(s), fl;
	char *buf;

	if (!w->w) {
		w->w = pool_alloc(ld->f, cap * sizeof(*w->w));
		w->len = pool_alloc(ld->f, cap * sizeof(*w->len));
		if (!w->w || !w->len)
			return ld_nomem(ld);
	}
	if (!(buf = pool_alloc(ld->f, n + 1)))
		return ld_nomem(ld);
	fl = utf8_fold(s, n, buf, n + 1);
	if (fl == 0 || w->n >= cap)
		return true;
	w->w[w->n] = buf;
	w->len[w->n++] = (uint32_t)fl;
	return true;
}

/*
 * The checks every list of choices (slot values, menu options) shares: arr
 * is an array of 1..max elements (what names them in the message); room for
 * them is allocated into *out.
 */
static bool ld_choice_array(struct ld *ld, json_object *arr, size_t max, const char *what, struct choice **out,
			    size_t *n)
{
	if (!json_object_is_type(arr, json_type_array))
		return ld_fail(ld, "must be an array, not %s", jtype_name(arr));
	*n = json_object_array_length(arr);
	if (*n == 0)
		return ld_fail(ld, "must not be empty");
	if (*n > max)
		return ld_fail(ld, "more than %zu %s", max, what);
	if (!(*out = pool_alloc(ld->f, *n * sizeof(**out))))
		return ld_nomem(ld);
	return true;
}

/* Fails at "id" when choice i repeats the id of an earlier one. */
static bool ld_unique_id(struct ld *ld, const struct choice *all, size_t i)
{
	size_t k;

	for (k = 0; k < i; k++) {
		if (all[i].id && all[k].id && strcmp(all[i].id, all[k].id) == 0) {
			ld_push(ld, "id");
			return ld_fail(ld, "duplicate id \"%s\"", all[i].id);
		}
	}
	return true;
}

/* Slot values (path at "values"). */
static bool ld_values(struct ld *ld, json_object *arr, struct slot *sl)
{
	static const char *const keys[] = {"value", "id", "title", "description", "aliases", NULL};
	size_t n, i;

	if (!ld_choice_array(ld, arr, FLOW_MAX_VALUES, "values", &sl->vals, &n))
		return false;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct choice *c = &sl->vals[i];
		size_t old = ld_push_idx(ld, i);
		json_object *al;

		c->next = -1;
		if (!ld_object(ld, o, keys) ||
		    !ld_str(ld, o, "value", true, sl->max_len, &c->value, &c->value_len) ||
		    !ld_str(ld, o, "id", false, 0, &c->id, &c->id_len) ||
		    !ld_str(ld, o, "title", false, 0, &c->title, NULL) ||
		    !ld_str(ld, o, "description", false, 0, &c->description, NULL))
			return false;
		if (!ld_unique_id(ld, sl->vals, i))
			return false;
		al = ld_get(o, "aliases");
		if (!words_add(ld, &c->cand, c->value, 2 + (al ? (unsigned)json_object_array_length(al) : 0)))
			return false;
		if (c->title && !words_add(ld, &c->cand, c->title, 2 + (al ? (unsigned)json_object_array_length(al) : 0)))
			return false;
		if (!ld_words(ld, o, "aliases", false, &c->cand))
			return false;
		if (c->cand.n == 0) {
			ld_push(ld, "value");
			return ld_fail(ld, "has no letters or digits");
		}
		ld_pop(ld, old);
	}
	sl->nvals = (unsigned)n;
	return true;
}

static bool ld_chars(struct ld *ld, json_object *arr, unsigned *mask)
{
	static const struct {
		const char *name;
		unsigned bit;
	} cls[] = {{"letter", CH_LETTER}, {"digit", CH_DIGIT},   {"space", CH_SPACE}, {"apostrophe", CH_APOS},
		   {"hyphen", CH_HYPHEN}, {"dot", CH_DOT},       {"comma", CH_COMMA}, {"other", CH_OTHER}};
	size_t i, k;

	if (!json_object_is_type(arr, json_type_array))
		return ld_fail(ld, "must be an array, not %s", jtype_name(arr));
	if (json_object_array_length(arr) == 0)
		return ld_fail(ld, "must not be empty");
	for (i = 0; i < json_object_array_length(arr); i++) {
		size_t old = ld_push_idx(ld, i), n;
		const char *s;

		if (!ld_text(ld, json_object_array_get_idx(arr, i), false, 0, &s, &n))
			return false;
		for (k = 0; k < sizeof(cls) / sizeof(cls[0]); k++)
			if (strcmp(cls[k].name, s) == 0)
				break;
		if (k == sizeof(cls) / sizeof(cls[0]))
			return ld_fail(ld, "unknown class \"%.32s\" (letter, digit, space, apostrophe, hyphen, dot, "
					   "comma, other)",
				       s);
		*mask |= cls[k].bit;
		ld_pop(ld, old);
	}
	return true;
}

static bool ld_slot(struct ld *ld, json_object *j, struct step *st)
{
	static const char *const keys[] = {"field",  "min_length", "max_length",     "min_letters",      "chars",
					   "pattern", "values",    "reject_intents", "restrict_to_list", NULL};
	struct slot *sl = &st->slot;
	int64_t v;
	const char *field, *pat;
	size_t old;
	json_object *x;

	if (!ld_object(ld, j, keys) || !ld_str(ld, j, "field", true, 0, &field, NULL))
		return false;
	if (!field_name_ok(field)) {
		ld_push(ld, "field");
		return ld_fail(ld, "\"%.64s\" is not a usable field name ([A-Za-z_][A-Za-z0-9_]{0,63}, not a "
				   "reserved one)",
			       field);
	}
	sl->field = find_field(ld->f, field, strlen(field));
	v = 1;
	if (!ld_int(ld, j, "min_length", 0, FLOW_MAX_SLOT_CP, &v))
		return false;
	sl->min_len = (unsigned)v;
	v = 256;
	if (!ld_int(ld, j, "max_length", 1, FLOW_MAX_SLOT_CP, &v))
		return false;
	sl->max_len = (unsigned)v;
	if (sl->min_len > sl->max_len) {
		ld_push(ld, "min_length");
		return ld_fail(ld, "greater than max_length");
	}
	v = 0;
	if (!ld_int(ld, j, "min_letters", 0, FLOW_MAX_SLOT_CP, &v))
		return false;
	sl->min_letters = (unsigned)v;
	if ((x = ld_get(j, "chars"))) {
		old = ld_push(ld, "chars");
		if (!ld_chars(ld, x, &sl->chars))
			return false;
		ld_pop(ld, old);
	}
	if (!ld_bool(ld, j, "reject_intents", &sl->reject_intents) ||
	    !ld_bool(ld, j, "restrict_to_list", &sl->restrict_list) ||
	    !ld_str(ld, j, "pattern", false, FLOW_MAX_PATTERN, &pat, NULL))
		return false;
	if (pat) {
		int rc = regcomp(&sl->re, pat, REG_EXTENDED | REG_NOSUB);

		if (rc != 0) {
			char msg[160];

			regerror(rc, &sl->re, msg, sizeof(msg));
			regfree(&sl->re);
			ld_push(ld, "pattern");
			return ld_fail(ld, "not a POSIX extended regular expression: %s", msg);
		}
		sl->has_re = true;
	}
	if ((x = ld_get(j, "values"))) {
		old = ld_push(ld, "values");
		if (!ld_values(ld, x, sl))
			return false;
		ld_pop(ld, old);
	}
	if (sl->restrict_list && !sl->nvals) {
		ld_push(ld, "restrict_to_list");
		return ld_fail(ld, "needs \"values\"");
	}
	return true;
}

static bool ld_options(struct ld *ld, json_object *arr, struct step *st)
{
	static const char *const keys[] = {"id", "title", "description", "keywords", "next", NULL};
	size_t n, i;

	if (!ld_choice_array(ld, arr, FLOW_MAX_OPTIONS, "options", &st->opts, &n))
		return false;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct choice *c = &st->opts[i];
		size_t old = ld_push_idx(ld, i);
		json_object *kw;

		if (!ld_object(ld, o, keys) || !ld_str(ld, o, "id", true, 0, &c->id, &c->id_len) ||
		    !ld_str(ld, o, "title", true, 0, &c->title, NULL) ||
		    !ld_str(ld, o, "description", false, 0, &c->description, NULL) ||
		    !ld_stepref(ld, o, "next", true, &c->next))
			return false;
		if (!ld_unique_id(ld, st->opts, i))
			return false;
		kw = ld_get(o, "keywords");
		if (!words_add(ld, &c->cand, c->title, 1 + (kw ? (unsigned)json_object_array_length(kw) : 0)) ||
		    !ld_words(ld, o, "keywords", false, &c->cand))
			return false;
		ld_pop(ld, old);
	}
	st->nopts = (unsigned)n;
	return true;
}

static bool ld_set(struct ld *ld, json_object *j, struct step *st)
{
	struct json_object_iterator it, end;
	unsigned n = 0;

	if (!json_object_is_type(j, json_type_object))
		return ld_fail(ld, "must be an object, not %s", jtype_name(j));
	if (!(st->set = pool_alloc(ld->f, (size_t)json_object_object_length(j) * sizeof(*st->set) + 1)))
		return ld_nomem(ld);
	it = json_object_iter_begin(j);
	end = json_object_iter_end(j);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *k = json_object_iter_peek_name(&it);
		json_object *v = json_object_iter_peek_value(&it);
		size_t old = ld_push(ld, k), len;
		struct setf *sf = &st->set[n];
		const char *s;

		if (!field_name_ok(k))
			return ld_fail(ld, "not a usable field name ([A-Za-z_][A-Za-z0-9_]{0,63}, not a reserved "
					   "one)");
		sf->field = find_field(ld->f, k, strlen(k));
		if (v) {
			if (!ld_text(ld, v, false, 0, &s, &len))
				return false;
			if (len > FLOW_MAX_SET_BYTES)
				return ld_fail(ld, "longer than %d bytes", FLOW_MAX_SET_BYTES);
			if (!(sf->val = pool_strndup(ld->f, s, len)))
				return ld_nomem(ld);
			sf->len = len;
		}
		n++;
		ld_pop(ld, old);
	}
	st->nset = n;
	return true;
}

static bool ld_step(struct ld *ld, json_object *j, struct step *st)
{
	static const char *const keys[] = {"prompt", "reprompt", "invalid", "set",     "final", "then",
					   "slot",   "next",     "confirm", "options", NULL};
	static const char *const ckeys[] = {"yes", "no", NULL};
	json_object *x;
	size_t old;
	int kinds;

	if (!ld_object(ld, j, keys))
		return false;
	if ((x = ld_get(j, "set"))) {
		old = ld_push(ld, "set");
		if (!ld_set(ld, x, st))
			return false;
		ld_pop(ld, old);
	}
	if (!ld_bool(ld, j, "final", &st->final) || !ld_stepref(ld, j, "then", false, &st->then))
		return false;
	kinds = !!ld_get(j, "slot") + !!ld_get(j, "confirm") + !!ld_get(j, "options");
	if (kinds > 1)
		return ld_fail(ld, "at most one of \"slot\", \"confirm\" and \"options\"");
	if (st->final && (kinds || st->then >= 0))
		return ld_fail(ld, "a final step has no slot, confirm, options or then");
	if (st->then >= 0 && kinds)
		return ld_fail(ld, "\"then\" only on a step that waits for no answer");
	if (ld_get(j, "next") && !ld_get(j, "slot")) {
		ld_push(ld, "next");
		return ld_fail(ld, "only with \"slot\"");
	}
	if ((x = ld_get(j, "slot"))) {
		st->kind = STEP_SLOT;
		old = ld_push(ld, "slot");
		if (!ld_slot(ld, x, st))
			return false;
		ld_pop(ld, old);
		if (!ld_stepref(ld, j, "next", true, &st->next))
			return false;
	} else if ((x = ld_get(j, "confirm"))) {
		st->kind = STEP_CONFIRM;
		old = ld_push(ld, "confirm");
		if (!ld_object(ld, x, ckeys) || !ld_stepref(ld, x, "yes", true, &st->yes) ||
		    !ld_stepref(ld, x, "no", true, &st->no))
			return false;
		ld_pop(ld, old);
	} else if ((x = ld_get(j, "options"))) {
		st->kind = STEP_OPTIONS;
		old = ld_push(ld, "options");
		if (!ld_options(ld, x, st))
			return false;
		ld_pop(ld, old);
	}
	if (!ld_reply_member(ld, j, "prompt", true, &st->prompt, st) ||
	    !ld_reply_member(ld, j, "reprompt", false, &st->reprompt, st) ||
	    !ld_reply_member(ld, j, "invalid", false, &st->invalid, st))
		return false;
	if (st->invalid.present && st->kind == STEP_PLAIN) {
		ld_push(ld, "invalid");
		return ld_fail(ld, "only on a step with slot, confirm or options");
	}
	if (st->kind == STEP_CONFIRM && st->prompt.base.kind == REPLY_BUTTONS) {
		const struct wa_reply *r = &st->prompt.base;
		bool yes = false, no = false;
		unsigned i;

		for (i = 0; i < r->nbuttons; i++) {
			if (strcmp(r->buttons[i].id, "yes") == 0)
				yes = true;
			else if (strcmp(r->buttons[i].id, "no") == 0)
				no = true;
		}
		if (!yes || !no || r->nbuttons != 2) {
			ld_push(ld, "prompt");
			ld_push(ld, "buttons");
			return ld_fail(ld, "a confirm step's buttons are exactly the ids \"yes\" and \"no\"");
		}
	}
	return true;
}

/* Pass 1: the names of steps and of fields, so references and placeholders
 * can be checked wherever they appear. Only well-formed names are taken;
 * pass 2 reports the others where they are. */
static bool ld_names(struct ld *ld, json_object *steps)
{
	struct json_object_iterator it, end;
	flow_t *f = ld->f;
	size_t n = (size_t)json_object_object_length(steps);
	unsigned i = 0;

	if (n == 0)
		return ld_fail(ld, "must not be empty");
	if (n > FLOW_MAX_STEPS)
		return ld_fail(ld, "more than %d steps", FLOW_MAX_STEPS);
	f->steps = pool_alloc(f, n * sizeof(*f->steps));
	f->fields = pool_alloc(f, FLOW_MAX_FIELDS * sizeof(*f->fields));
	f->field_len = pool_alloc(f, FLOW_MAX_FIELDS * sizeof(*f->field_len));
	if (!f->steps || !f->fields || !f->field_len)
		return ld_nomem(ld);
	it = json_object_iter_begin(steps);
	end = json_object_iter_end(steps);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), i++) {
		const char *k = json_object_iter_peek_name(&it);
		json_object *v = json_object_iter_peek_value(&it), *slot, *set, *fld;
		struct step *st = &f->steps[i];
		const char *cand[FLOW_MAX_FIELDS + 1];
		unsigned nc = 0, c;

		if (!name_ok(k, strlen(k))) {
			ld_push(ld, k);
			return ld_fail(ld, "step names are 1 to %d of A-Z a-z 0-9 _ . -", FLOW_MAX_NAME);
		}
		st->name = pool_strndup(f, k, strlen(k));
		if (!st->name)
			return ld_nomem(ld);
		st->name_len = strlen(k);
		st->then = st->next = st->yes = st->no = st->owner = -1;
		st->slot.field = -1;
		if (!json_object_is_type(v, json_type_object))
			continue;
		if ((slot = ld_get(v, "slot")) && json_object_is_type(slot, json_type_object) &&
		    (fld = ld_get(slot, "field")) && json_object_is_type(fld, json_type_string))
			cand[nc++] = json_object_get_string(fld);
		if ((set = ld_get(v, "set")) && json_object_is_type(set, json_type_object)) {
			struct json_object_iterator si = json_object_iter_begin(set), se = json_object_iter_end(set);

			for (; !json_object_iter_equal(&si, &se) && nc < FLOW_MAX_FIELDS; json_object_iter_next(&si))
				cand[nc++] = json_object_iter_peek_name(&si);
		}
		for (c = 0; c < nc; c++) {
			if (!field_name_ok(cand[c]) || find_field(f, cand[c], strlen(cand[c])) >= 0)
				continue;
			if (f->nfields == FLOW_MAX_FIELDS)
				return ld_fail(ld, "more than %d fields", FLOW_MAX_FIELDS);
			if (!(f->fields[f->nfields] = pool_strndup(f, cand[c], strlen(cand[c]))))
				return ld_nomem(ld);
			f->field_len[f->nfields++] = strlen(cand[c]);
		}
	}
	f->nsteps = i;
	return true;
}

static bool ld_command(struct ld *ld, json_object *cmds, const char *key, struct command *c)
{
	static const char *const keys[] = {"keywords", "phrases", "step", "reply", NULL};
	json_object *j = ld_get(cmds, key);
	size_t old;

	if (!j)
		return true;
	old = ld_push(ld, key);
	c->present = true;
	c->step = -1;
	if (!ld_object(ld, j, keys) || !ld_matcher(ld, j, &c->m))
		return false;
	if (strcmp(key, "cancel") == 0) {
		if (!ld_stepref(ld, j, "step", true, &c->step))
			return false;
		if (!ld->f->steps[c->step].final) {
			ld_push(ld, "step");
			return ld_fail(ld, "must be a final step");
		}
	} else if (ld_get(j, "step")) {
		ld_push(ld, "step");
		return ld_fail(ld, "only the cancel command has a step");
	}
	if (!ld_reply_member(ld, j, "reply", strcmp(key, "help") == 0, &c->reply, NULL))
		return false;
	ld_pop(ld, old);
	return true;
}

/* Marks every step reachable from the intent's step (next, confirm, options,
 * then) as owned by the intent, unless an earlier intent owns it. */
static void mark_owner(flow_t *f, int intent)
{
	int stack[FLOW_MAX_STEPS * 16];
	unsigned sp = 0;

	stack[sp++] = f->intents[intent].step;
	while (sp) {
		struct step *st = &f->steps[stack[--sp]];
		unsigned i;

		if (st->owner >= 0)
			continue;
		st->owner = intent;
		if (st->then >= 0)
			stack[sp++] = st->then;
		if (st->next >= 0)
			stack[sp++] = st->next;
		if (st->kind == STEP_CONFIRM) {
			stack[sp++] = st->yes;
			stack[sp++] = st->no;
		}
		for (i = 0; i < st->nopts; i++)
			stack[sp++] = st->opts[i].next;
	}
}

static bool ld_flow(struct ld *ld, json_object *root)
{
	static const char *const keys[] = {"name",          "description", "version", "language", "start",
					   "fallback",      "non_text",    "intents", "commands", "steps",
					   "confirm_words", NULL};
	static const char *const ikeys[] = {"keywords", "phrases", "step", NULL};
	static const char *const cmdkeys[] = {"cancel", "restart", "help", NULL};
	static const char *const cwkeys[] = {"yes", "no", NULL};
	flow_t *f = ld->f;
	json_object *steps, *x;
	struct json_object_iterator it, end;
	const char *s;
	int64_t ver = 0;
	size_t old;
	unsigned i;

	if (!ld_object(ld, root, keys) || !ld_str(ld, root, "name", true, 0, &f->name, &f->name_len))
		return false;
	if (!name_ok(f->name, f->name_len)) {
		ld_push(ld, "name");
		return ld_fail(ld, "1 to %d of A-Z a-z 0-9 _ . -", FLOW_MAX_NAME);
	}
	if (!ld_str(ld, root, "description", false, 0, &s, NULL) || !ld_str(ld, root, "language", false, 0, &s, NULL) ||
	    !ld_int(ld, root, "version", 0, INT32_MAX, &ver))
		return false;
	if (!(steps = ld_get(root, "steps"))) {
		ld_push(ld, "steps");
		return ld_fail(ld, "required");
	}
	old = ld_push(ld, "steps");
	if (!json_object_is_type(steps, json_type_object))
		return ld_fail(ld, "must be an object, not %s", jtype_name(steps));
	if (!ld_names(ld, steps))
		return false;
	ld_pop(ld, old);

	if (!ld_stepref(ld, root, "start", true, &f->start))
		return false;
	if ((x = ld_get(root, "confirm_words"))) {
		old = ld_push(ld, "confirm_words");
		if (!ld_object(ld, x, cwkeys) || !ld_words(ld, x, "yes", false, &f->yes) ||
		    !ld_words(ld, x, "no", false, &f->no))
			return false;
		if (!f->yes.n || !f->no.n)
			return ld_fail(ld, "needs \"yes\" and \"no\"");
		f->has_confirm_words = true;
		ld_pop(ld, old);
	}

	/* the steps themselves */
	old = ld_push(ld, "steps");
	it = json_object_iter_begin(steps);
	end = json_object_iter_end(steps);
	for (i = 0; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), i++) {
		size_t o2 = ld_push(ld, json_object_iter_peek_name(&it));
		struct step *st = &f->steps[i];

		if (!ld_step(ld, json_object_iter_peek_value(&it), st))
			return false;
		if (st->kind == STEP_SLOT && st->slot.field >= 0)
			f->is_slot[st->slot.field] = true;
		if (st->kind == STEP_CONFIRM && !f->has_confirm_words) {
			ld_pop(ld, old);
			ld_push(ld, "confirm_words");
			return ld_fail(ld, "required: step \"%s\" confirms", st->name);
		}
		ld_pop(ld, o2);
	}
	ld_pop(ld, old);
	for (i = 0; i < f->nsteps; i++) {
		struct step *st = &f->steps[i];

		if (st->then >= 0 && f->steps[st->then].then >= 0) {
			old = ld_push(ld, "steps");
			ld_push(ld, st->name);
			ld_push(ld, "then");
			return ld_fail(ld, "step \"%s\" has a \"then\" itself (one level only)", f->steps[st->then].name);
		}
	}
	if (f->steps[f->start].final) {
		ld_push(ld, "start");
		return ld_fail(ld, "must not be a final step");
	}

	if (!ld_reply_member(ld, root, "fallback", true, &f->fallback, NULL) ||
	    !ld_reply_member(ld, root, "non_text", true, &f->non_text, NULL))
		return false;

	if ((x = ld_get(root, "intents"))) {
		old = ld_push(ld, "intents");
		if (!json_object_is_type(x, json_type_object))
			return ld_fail(ld, "must be an object, not %s", jtype_name(x));
		if (json_object_object_length(x) > FLOW_MAX_INTENTS)
			return ld_fail(ld, "more than %d intents", FLOW_MAX_INTENTS);
		f->intents = pool_alloc(f, ((size_t)json_object_object_length(x) + 1) * sizeof(*f->intents));
		if (!f->intents)
			return ld_nomem(ld);
		it = json_object_iter_begin(x);
		end = json_object_iter_end(x);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *k = json_object_iter_peek_name(&it);
			json_object *v = json_object_iter_peek_value(&it);
			struct intent *in = &f->intents[f->nintents];
			size_t o2 = ld_push(ld, k);

			if (!name_ok(k, strlen(k)))
				return ld_fail(ld, "intent names are 1 to %d of A-Z a-z 0-9 _ . -", FLOW_MAX_NAME);
			if (!(in->name = pool_strndup(f, k, strlen(k))))
				return ld_nomem(ld);
			in->name_len = strlen(k);
			if (!ld_object(ld, v, ikeys) || !ld_matcher(ld, v, &in->m) ||
			    !ld_stepref(ld, v, "step", true, &in->step))
				return false;
			if (f->steps[in->step].final) {
				ld_push(ld, "step");
				return ld_fail(ld, "must not be a final step");
			}
			f->nintents++;
			ld_pop(ld, o2);
		}
		ld_pop(ld, old);
	}
	if ((x = ld_get(root, "commands"))) {
		old = ld_push(ld, "commands");
		if (!ld_object(ld, x, cmdkeys) || !ld_command(ld, x, "cancel", &f->cancel) ||
		    !ld_command(ld, x, "restart", &f->restart) || !ld_command(ld, x, "help", &f->help))
			return false;
		ld_pop(ld, old);
	}
	for (i = 0; i < f->nintents; i++)
		mark_owner(f, (int)i);
	return true;
}

/* ------------------------------------------------------------------------
 * Pre-escaping: everything static that a step writes into a context is
 * JSON-escaped once here, so that steps copy bytes instead of escaping
 * them (jbuf_str costs ~2 ns a byte on the target VM).
 */

/* s (n bytes) JSON-escaped into the pool, with or without the quotes. */
static const char *ld_escape(struct ld *ld, const char *s, size_t n, bool quoted, size_t *out_len)
{
	struct jbuf b;
	char *c = NULL;

	jbuf_init(&b);
	jbuf_str(&b, s, n);
	if (!b.oom && b.len >= 2) {
		*out_len = quoted ? b.len : b.len - 2;
		c = pool_strndup(ld->f, quoted ? b.p : b.p + 1, *out_len);
	}
	jbuf_fini(&b);
	if (!c)
		ld_nomem(ld);
	return c;
}

static unsigned tmpl_nvals(const struct tmpl *t)
{
	unsigned i, n = 0;

	for (i = 0; t->lit && i < t->nseg; i++)
		n += t->seg[i].field >= 0;
	return n;
}

/* Numbers reply template r (the order is fixed by the flow text, which the
 * fingerprint covers). */
static bool ld_prep_reply(struct ld *ld, struct treply *r)
{
	flow_t *f = ld->f;

	if (!r->present)
		return true;
	r->id = f->ntr;
	f->tr[f->ntr++] = r;
	r->nvals = tmpl_nvals(&r->body) + tmpl_nvals(&r->header) + tmpl_nvals(&r->footer);
	if (r->nvals > f->max_vals)
		f->max_vals = r->nvals;
	{
		/* Static texts are the very pointers render() returns, so the
		 * encoder knows them; rendered ones are escaped per reply.
		 * Encoding the donations replies took 5.2k instructions per
		 * event, of which escaping ids and titles of the same buttons
		 * and list was the largest part. No prep (out of memory) only
		 * costs speed. */
		struct wa_reply w = r->base;

		w.body = r->body.dynamic ? NULL : r->body.lit;
		w.header = r->header.dynamic ? NULL : r->header.lit;
		w.footer = r->footer.dynamic ? NULL : r->footer.lit;
		r->prep = reply_prep_new(&w);
		r->base.prep = r->prep;
	}
	return true;
}

static uint32_t kw_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static bool kw_add(flow_t *f, struct words *w, unsigned bit)
{
	unsigned i;

	w->mid1 = bit + 1;
	for (i = 0; i < w->nkw; i++) {
		uint32_t h = kw_hash(w->w[i], w->len[i]) & f->kw_mask;

		while (f->kw[h].w && !(f->kw[h].len == w->len[i] && memcmp(f->kw[h].w, w->w[i], w->len[i]) == 0))
			h = (h + 1) & f->kw_mask;
		f->kw[h].w = w->w[i];
		f->kw[h].len = w->len[i];
		f->kw[h].mask |= (uint64_t)1 << bit;
	}
	return true;
}

/* Builds the keyword table: intents take bits 0.., the commands 61-63. */
static bool ld_keywords(struct ld *ld)
{
	flow_t *f = ld->f;
	unsigned i, n = f->cancel.m.nkw + f->restart.m.nkw + f->help.m.nkw, size = 16;

	for (i = 0; i < f->nintents; i++)
		n += f->intents[i].m.nkw;
	while (size < 2 * n)
		size *= 2;
	if (!(f->kw = pool_alloc(f, size * sizeof(*f->kw))))
		return ld_nomem(ld);
	f->kw_mask = size - 1;
	for (i = 0; i < f->nintents; i++)
		kw_add(f, &f->intents[i].m, i);
	kw_add(f, &f->cancel.m, 61);
	kw_add(f, &f->restart.m, 62);
	kw_add(f, &f->help.m, 63);
	return true;
}

/* The word starts of every candidate of ch[0..n) (struct words). */
static bool ld_starts(struct ld *ld, struct choice *ch, unsigned n)
{
	unsigned i, k;
	uint32_t b;

	for (i = 0; i < n; i++) {
		struct words *w = &ch[i].cand;

		if (!w->n)
			continue;
		if (!(w->starts = pool_alloc(ld->f, w->n * sizeof(*w->starts))))
			return ld_nomem(ld);
		for (k = 0; k < w->n; k++) {
			w->starts[k] = 1;
			for (b = 1; b < w->len[k] && b < 64; b++)
				if (w->w[k][b - 1] == ' ')
					w->starts[k] |= 1ull << b;
		}
	}
	return true;
}

static bool ld_prep(struct ld *ld)
{
	flow_t *f = ld->f;
	unsigned i, k;

	if (!ld_keywords(ld))
		return false;

	if (!(f->name_json = ld_escape(ld, f->name, f->name_len, true, &f->name_json_len)))
		return false;
	if (!(f->tr = pool_alloc(f, (5 + 3 * (size_t)f->nsteps) * sizeof(*f->tr))))
		return ld_nomem(ld);
	f->field_key = pool_alloc(f, (f->nfields + 1) * sizeof(*f->field_key));
	f->field_key_len = pool_alloc(f, (f->nfields + 1) * sizeof(*f->field_key_len));
	if (!f->field_key || !f->field_key_len)
		return ld_nomem(ld);
	for (i = 0; i < f->nfields; i++) {
		char *key = pool_alloc(f, f->field_len[i] + 4);

		if (!key)
			return ld_nomem(ld);
		/* field names are [A-Za-z0-9_]: nothing to escape */
		snprintf(key, f->field_len[i] + 4, "\"%s\":", f->fields[i]);
		f->field_key[i] = key;
		f->field_key_len[i] = f->field_len[i] + 3;
	}
	for (i = 0; i < f->nsteps; i++) {
		struct step *st = &f->steps[i];

		if (!(st->name_json = ld_escape(ld, st->name, st->name_len, true, &st->name_json_len)))
			return false;
		for (k = 0; k < st->nset; k++)
			if (st->set[k].val &&
			    !(st->set[k].esc = ld_escape(ld, st->set[k].val, st->set[k].len, false, &st->set[k].esc_len)))
				return false;
		if (!ld_starts(ld, st->slot.vals, st->slot.nvals) || !ld_starts(ld, st->opts, st->nopts))
			return false;
		for (k = 0; k < st->slot.nvals; k++) {
			struct choice *c = &st->slot.vals[k];

			if (!(c->value_esc = ld_escape(ld, c->value, c->value_len, false, &c->value_esc_len)))
				return false;
		}
		if (!ld_prep_reply(ld, &st->prompt) || !ld_prep_reply(ld, &st->reprompt) ||
		    !ld_prep_reply(ld, &st->invalid))
			return false;
	}
	return ld_prep_reply(ld, &f->fallback) && ld_prep_reply(ld, &f->non_text) &&
	       ld_prep_reply(ld, &f->cancel.reply) && ld_prep_reply(ld, &f->restart.reply) &&
	       ld_prep_reply(ld, &f->help.reply);
}

flow_t *flow_load_json(const char *json, size_t len, char *errstr, size_t errstr_size)
{
	struct ld ld;
	struct json_tokener *tok;
	json_object *root;
	flow_t *f;
	size_t i;

	memset(&ld, 0, sizeof(ld));
	ld.err = errstr;
	ld.errsz = errstr_size;
	strcpy(ld.path, "$");
	ld.plen = 1;
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (!json || len == 0) {
		ld_fail(&ld, "empty flow");
		return NULL;
	}
	if (len > FLOW_MAX_FILE || len > INT32_MAX) {
		ld_fail(&ld, "larger than %d bytes", FLOW_MAX_FILE);
		return NULL;
	}
	if (!(tok = json_tokener_new_ex(32))) {
		ld_fail(&ld, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		ld_fail(&ld, "not valid JSON: %s at byte %zu",
			je == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(je),
			json_tokener_get_parse_end(tok));
		json_object_put(root);
		json_tokener_free(tok);
		return NULL;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (json[i] != ' ' && json[i] != '\n' && json[i] != '\r' && json[i] != '\t') {
			ld_fail(&ld, "not valid JSON: trailing bytes at byte %zu", i);
			json_object_put(root);
			json_tokener_free(tok);
			return NULL;
		}
	}
	json_tokener_free(tok);
	if (!(f = calloc(1, sizeof(*f)))) {
		ld_fail(&ld, "out of memory");
		json_object_put(root);
		return NULL;
	}
	f->start = -1;
	ld.f = f;
	{
		uint32_t h = 2166136261u; /* FNV-1a 32 of the flow text */

		for (i = 0; i < len; i++)
			h = (h ^ (unsigned char)json[i]) * 16777619u;
		snprintf(f->fv, sizeof(f->fv), "%08x", (unsigned)h);
	}
	if (!ld_flow(&ld, root) || !ld_prep(&ld)) {
		json_object_put(root);
		flow_destroy(f);
		return NULL;
	}
	json_object_put(root);
	return f;
}

flow_t *flow_load_file(const char *path, char *errstr, size_t errstr_size)
{
	FILE *fp;
	char *buf;
	size_t n;
	flow_t *f;

	if (!(fp = fopen(path, "rb"))) {
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "$: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!(buf = malloc(FLOW_MAX_FILE + 1))) {
		fclose(fp);
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "$: out of memory");
		return NULL;
	}
	n = fread(buf, 1, FLOW_MAX_FILE + 1, fp);
	if (ferror(fp)) {
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "$: cannot read %s: %s", path, strerror(errno));
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	f = flow_load_json(buf, n, errstr, errstr_size);
	free(buf);
	return f;
}

flow_t *flow_load_default(char *errstr, size_t errstr_size)
{
	return flow_load_json((const char *)wb_flow_default_json, wb_flow_default_json_len, errstr, errstr_size);
}

void flow_destroy(flow_t *f)
{
	struct pool_blk *b, *next;
	unsigned i;

	if (!f)
		return;
	for (i = 0; f->steps && i < f->nsteps; i++)
		if (f->steps[i].slot.has_re)
			regfree(&f->steps[i].slot.re);
	for (i = 0; f->tr && i < f->ntr; i++)
		reply_prep_destroy(f->tr[i]->prep);
	for (b = f->pool; b; b = next) {
		next = b->next;
		free(b);
	}
	free(f);
}

const char *flow_name(const flow_t *f)
{
	return f->name;
}

/* ------------------------------------------------------------------------
 * Matching on folded text (single spaces between words, none at the ends).
 */

/* Is w (wlen bytes) in f at a word start; whole_end: also ending a word.
 * Walks word starts (texts are a few words) rather than calling memmem,
 * whose setup cost dominated with short keywords. */
static bool has_phrase(const char *f, size_t flen, const char *w, size_t wlen, bool whole_end)
{
	size_t i = 0;
	const char *sp;

	if (wlen == 0 || wlen > flen)
		return false;
	for (;;) {
		if (flen - i < wlen)
			return false;
		if (f[i] == w[0] && memcmp(f + i, w, wlen) == 0 &&
		    (!whole_end || i + wlen == flen || f[i + wlen] == ' '))
			return true;
		if (!(sp = memchr(f + i, ' ', flen - i)))
			return false;
		i = (size_t)(sp - f) + 1;
	}
}

/* Most words of a message indexed for keyword lookups; longer messages
 * take the slower phrase search for the rest. */
#define FLOW_INDEX_WORDS 48

struct word_index {
	unsigned n;
	bool more;       /* the text has more words than indexed */
	uint64_t hits;   /* keyword-table matchers some indexed word names */
	uint32_t off[FLOW_INDEX_WORDS];
	uint32_t len[FLOW_INDEX_WORDS];
};

static void index_words(const flow_t *fl, struct word_index *wi, const char *f, size_t flen)
{
	size_t i = 0;

	wi->n = 0;
	wi->more = false;
	wi->hits = 0;
	while (i < flen) {
		const char *sp = memchr(f + i, ' ', flen - i);
		size_t e = sp ? (size_t)(sp - f) : flen;
		uint32_t h = kw_hash(f + i, e - i) & fl->kw_mask;

		if (wi->n == FLOW_INDEX_WORDS) {
			wi->more = true;
			return;
		}
		wi->off[wi->n] = (uint32_t)i;
		wi->len[wi->n++] = (uint32_t)(e - i);
		for (; fl->kw[h].w; h = (h + 1) & fl->kw_mask) {
			if (fl->kw[h].len == e - i && memcmp(fl->kw[h].w, f + i, e - i) == 0) {
				wi->hits |= fl->kw[h].mask;
				break;
			}
		}
		i = e + 1;
	}
}

/* Does any keyword or phrase of w occur in the folded text f (indexed in
 * wi) as whole words? Keywords are compared with the indexed words (length
 * first), phrases searched. */
static bool words_any(const struct word_index *wi, const struct words *w, const char *f, size_t flen)
{
	unsigned i = 0, k;

	if (w->mid1 && !wi->more) {
		if (wi->hits >> (w->mid1 - 1) & 1)
			return true;
		i = w->nkw; /* keywords done: only phrases left */
	}
	for (; i < w->nkw; i++) {
		uint32_t l = w->len[i];

		for (k = 0; k < wi->n; k++)
			if (wi->len[k] == l && f[wi->off[k]] == w->w[i][0] && memcmp(f + wi->off[k], w->w[i], l) == 0)
				return true;
		if (wi->more && has_phrase(f, flen, w->w[i], l, true))
			return true;
	}
	for (; i < w->n; i++)
		if (has_phrase(f, flen, w->w[i], w->len[i], true))
			return true;
	return false;
}

/* Longest entry of w that is f or the first words of f; 0: none. */
static size_t words_lead(const struct words *w, const char *f, size_t flen)
{
	size_t best = 0;
	unsigned i;

	for (i = 0; i < w->n; i++) {
		size_t n = w->len[i];

		if (n <= flen && memcmp(f, w->w[i], n) == 0 && (n == flen || f[n] == ' ') && n > best)
			best = n;
	}
	return best;
}

/*
 * The choice the folded text f names: an exact match of a candidate (value,
 * title, alias, keyword) first; else, when numbers, "1".."n"; else the one
 * choice (unique, or none) whose candidate contains f at a word start (f of
 * 3 bytes at least) or appears in f as whole words (3 bytes at least).
 */
#define FLOW_MATCH_WORDS 32

static int choice_match(const struct choice *ch, unsigned n, const char *f, size_t flen, bool numbers)
{
	int found = -1;
	unsigned i, k, nws, w;
	size_t ws[FLOW_MATCH_WORDS], o;

	if (flen == 0)
		return -1;
	for (i = 0; i < n; i++)
		for (k = 0; k < ch[i].cand.n; k++)
			if (ch[i].cand.len[k] == flen && memcmp(ch[i].cand.w[k], f, flen) == 0)
				return (int)i;
	if (numbers && flen <= 2 && f[0] >= '1' && f[0] <= '9' && (flen == 1 || (f[1] >= '0' && f[1] <= '9'))) {
		unsigned v = (unsigned)(f[0] - '0');

		if (flen == 2)
			v = v * 10 + (unsigned)(f[1] - '0');
		if (v >= 1 && v <= n)
			return (int)v - 1;
	}
	/* f's word starts, found once for all candidates (has_phrase would
	 * search them again for each); nws 0: too many words, search */
	nws = 0;
	for (o = 0; o < flen && nws < FLOW_MATCH_WORDS; nws++) {
		const char *sp = memchr(f + o, ' ', flen - o);

		ws[nws] = o;
		o = sp ? (size_t)(sp - f) + 1 : flen;
	}
	if (o < flen)
		nws = 0;
	for (i = 0; i < n; i++) {
		bool hit = false;

		for (k = 0; k < ch[i].cand.n && !hit; k++) {
			const char *c = ch[i].cand.w[k];
			size_t cl = ch[i].cand.len[k];

			if (flen >= 3 && cl >= flen && cl <= 64 && ch[i].cand.starts) {
				/* the word starts where f still fits */
				uint64_t m = ch[i].cand.starts[k];

				if (cl - flen < 63)
					m &= (2ull << (cl - flen)) - 1;
				for (; m && !hit; m &= m - 1) {
					size_t at = (size_t)__builtin_ctzll(m);

					hit = c[at] == f[0] && memcmp(c + at, f, flen) == 0;
				}
			} else if (flen >= 3 && has_phrase(c, cl, f, flen, false)) {
				hit = true;
			}
			if (hit || cl < 3) {
				/* decided, or too short to look for in f */
			} else if (nws) {
				for (w = 0; w < nws && flen - ws[w] >= cl && !hit; w++)
					hit = f[ws[w]] == c[0] && memcmp(f + ws[w], c, cl) == 0 &&
					      (ws[w] + cl == flen || f[ws[w] + cl] == ' ');
			} else {
				hit = has_phrase(f, flen, c, cl, true);
			}
		}
		if (hit) {
			if (found >= 0)
				return -1; /* ambiguous */
			found = (int)i;
		}
	}
	return found;
}

static int match_intent(const flow_t *f, const struct word_index *wi, const char *t, size_t tlen)
{
	unsigned i;

	for (i = 0; i < f->nintents; i++)
		if (words_any(wi, &f->intents[i].m, t, tlen))
			return (int)i;
	return -1;
}

static int intent_by_id(const flow_t *f, const struct wa_str *id)
{
	unsigned i;

	for (i = 0; i < f->nintents; i++)
		if (f->intents[i].name_len == id->len && memcmp(f->intents[i].name, id->p, id->len) == 0)
			return (int)i;
	return -1;
}

static int choice_by_id(const struct choice *ch, unsigned n, const struct wa_str *id)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (ch[i].id && ch[i].id_len == id->len && memcmp(ch[i].id, id->p, id->len) == 0)
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------------------
 * Session: per-thread buffers, reused.
 */

struct arena_blk {
	struct arena_blk *next;
	size_t cap;
	max_align_t data[];
};

struct arena {
	struct arena_blk *head, *cur;
	size_t used;
	bool oom;
};

/* A field's value during a step: borrowed from the context text, the event,
 * the flow or the arena. */
struct fval {
	const char *p;
	size_t len;
	const char *esc;      /* the value JSON-escaped without quotes, or NULL */
	size_t esc_len;
	bool set;
};

struct flow_session {
	const flow_t *f;
	struct json_doc doc;
	struct jbuf out;      /* the new context */
	struct arena ar;      /* rendered and decoded strings of one step */
	struct wa_reply rep[FLOW_MAX_REPLIES];
	unsigned nrep;
	struct jbuf rj;       /* this step's replies in stored form, comma-separated */
	struct fval *val;     /* [f->nfields] */
	struct fval *pos;     /* [f->max_vals]: stored values of a replayed reply */
	uint32_t *unk;        /* key tokens of context members we do not know */
	size_t nunk, unk_cap;
	char *fold;           /* folded input text */
	size_t fold_cap;
	struct word_index wi; /* its words */
	/* the parsed context of the current step */
	bool ctx_ok;          /* a JSON object was parsed */
	uint32_t t_step, t_flow, t_delivery, t_recent, t_fv, t_in;
	bool fv_ok;           /* the context's "fv" is this flow's: its stored
	                         replies name our templates */
	int cur;              /* current step, -1: none */
};

static char *arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b;
	char *p;

	if (a->oom)
		return NULL;
	n = n ? n : 1;
	while (a->cur) {
		if (a->cur->cap - a->used >= n) {
			p = (char *)a->cur->data + a->used;
			a->used += n;
			return p;
		}
		if (!a->cur->next)
			break;
		a->cur = a->cur->next;
		a->used = 0;
	}
	{
		size_t cap = n > FLOW_ARENA_BLOCK ? n : FLOW_ARENA_BLOCK;

		if (!(b = malloc(sizeof(*b) + cap))) {
			a->oom = true;
			return NULL;
		}
		b->cap = cap;
		b->next = NULL;
		if (a->cur)
			a->cur->next = b;
		else
			a->head = b;
		a->cur = b;
		a->used = n;
		return (char *)b->data;
	}
}

static void arena_reset(struct arena *a)
{
	a->cur = a->head;
	a->used = 0;
	a->oom = false;
}

static void arena_fini(struct arena *a)
{
	struct arena_blk *b, *next;

	for (b = a->head; b; b = next) {
		next = b->next;
		free(b);
	}
	memset(a, 0, sizeof(*a));
}

flow_session_t *flow_session_new(const flow_t *f)
{
	flow_session_t *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->f = f;
	json_doc_init(&s->doc);
	jbuf_init(&s->out);
	jbuf_init(&s->rj);
	s->val = calloc(f->nfields ? f->nfields : 1, sizeof(*s->val));
	s->pos = calloc(f->max_vals ? f->max_vals : 1, sizeof(*s->pos));
	s->unk_cap = 16;
	s->unk = malloc(s->unk_cap * sizeof(*s->unk));
	s->fold_cap = 1024;
	s->fold = malloc(s->fold_cap);
	if (!s->val || !s->pos || !s->unk || !s->fold || !jbuf_reserve(&s->out, 2048) || !jbuf_reserve(&s->rj, 1024) ||
	    !arena_alloc(&s->ar, 1)) {
		flow_session_destroy(s);
		return NULL;
	}
	arena_reset(&s->ar);
	return s;
}

void flow_session_destroy(flow_session_t *s)
{
	if (!s)
		return;
	json_doc_fini(&s->doc);
	jbuf_fini(&s->out);
	jbuf_fini(&s->rj);
	arena_fini(&s->ar);
	free(s->val);
	free(s->pos);
	free(s->unk);
	free(s->fold);
	free(s);
}

/* ------------------------------------------------------------------------
 * Reading the context.
 */

/* A string token's value (decoded into the arena when escaped). */
static bool tok_str(flow_session_t *s, uint32_t t, const char **p, size_t *len)
{
	const struct json_doc *d = &s->doc;
	char *buf;
	size_t n;

	if (t == JSON_NONE || json_type_of(d, t) != JSON_STRING)
		return false;
	if (!(d->toks[t].flags & JSON_TOK_ESCAPED)) {
		*p = json_str_raw(d, t, len);
		return true;
	}
	if (!(buf = arena_alloc(&s->ar, d->toks[t].len + 1)))
		return false;
	n = json_str_decode(d, t, buf, d->toks[t].len + 1);
	if (n == (size_t)-1)
		return false;
	*p = buf;
	*len = n;
	return true;
}

/* Copies a string token into the arena, NUL-terminated ("" when absent). */
static const char *tok_cstr(flow_session_t *s, uint32_t t)
{
	const char *p;
	size_t n;
	char *c;

	if (!tok_str(s, t, &p, &n))
		return "";
	if (p >= s->doc.text && p < s->doc.text + s->doc.text_len) {
		if (!(c = arena_alloc(&s->ar, n + 1)))
			return "";
		memcpy(c, p, n);
		c[n] = '\0';
		return c;
	}
	return p; /* decoded into the arena already, NUL-terminated */
}

/* Inline, so that the memcmp of a constant name compiles to a compare or
 * two (a call to memcmp per key and per "recent" entry cost ~300
 * instructions per event). */
static inline bool key_is(const struct json_doc *d, uint32_t k, const char *name, size_t len)
{
	const struct json_tok *t = &d->toks[k];

	if (!(t->flags & JSON_TOK_ESCAPED))
		return t->len == len && memcmp(d->text + t->start, name, len) == 0;
	return json_str_eq(d, k, name, len);
}

/* Parses the context and sorts its members: the four we own, the flow's
 * fields (into s->val) and the unknown ones. Leaves s->ctx_ok false when
 * there is no usable object. */
static wb_err_t ctx_read(flow_session_t *s, const char *ctx, size_t len, bool found)
{
	const flow_t *f = s->f;
	const struct json_doc *d = &s->doc;
	struct json_limits lim = {FLOW_CTX_MAX_BYTES, FLOW_CTX_MAX_DEPTH, 0};
	uint32_t k, n, i;
	unsigned j;

	s->ctx_ok = false;
	s->t_step = s->t_flow = s->t_delivery = s->t_recent = s->t_fv = s->t_in = JSON_NONE;
	s->fv_ok = false;
	s->nunk = 0;
	for (j = 0; j < f->nfields; j++)
		s->val[j].set = false;
	if (!found || !ctx || len == 0)
		return WB_OK;
	if (json_parse(&s->doc, ctx, len, &lim) != JSON_OK) {
		if (s->doc.err == JSON_E_NOMEM)
			return WB_ERR_NOMEM;
		return WB_OK;
	}
	if (json_type_of(d, 0) != JSON_OBJECT)
		return WB_OK;
	s->ctx_ok = true;
	n = d->toks[0].count;
	for (i = 0, k = json_first(d, 0); i < n; i++, k = json_after(d, k + 1)) {
		const struct json_tok *kt = &d->toks[k];
		bool known = false;

		switch (kt->flags & JSON_TOK_ESCAPED ? 0 : kt->len) {
		case 2:
			if (key_is(d, k, "fv", 2)) {
				s->t_fv = k + 1;
				known = true;
			} else if (key_is(d, k, "in", 2)) {
				s->t_in = k + 1;
				known = true;
			}
			break;
		case 4:
			if (key_is(d, k, "flow", 4)) {
				s->t_flow = k + 1;
				known = true;
			}
			break;
		case 6:
			if (key_is(d, k, "recent", 6)) {
				s->t_recent = k + 1;
				known = true;
			}
			break;
		case 8:
			if (key_is(d, k, "delivery", 8)) {
				s->t_delivery = k + 1;
				known = true;
			}
			break;
		case 17:
			if (key_is(d, k, "conversation_step", 17)) {
				s->t_step = k + 1;
				known = true;
			}
			break;
		default:
			break;
		}
		if (!known && (kt->flags & JSON_TOK_ESCAPED)) {
			/* a key written with escapes: rare, compared slowly */
			known = true;
			if (key_is(d, k, "flow", 4))
				s->t_flow = k + 1;
			else if (key_is(d, k, "fv", 2))
				s->t_fv = k + 1;
			else if (key_is(d, k, "in", 2))
				s->t_in = k + 1;
			else if (key_is(d, k, "recent", 6))
				s->t_recent = k + 1;
			else if (key_is(d, k, "delivery", 8))
				s->t_delivery = k + 1;
			else if (key_is(d, k, "conversation_step", 17))
				s->t_step = k + 1;
			else
				known = false;
		}
		if (!known) {
			for (j = 0; j < f->nfields; j++) {
				if (key_is(d, k, f->fields[j], f->field_len[j])) {
					const char *p;
					size_t vl;

					known = true;
					if (tok_str(s, k + 1, &p, &vl) && vl <= FLOW_CTX_VALUE_MAX) {
						s->val[j].p = p;
						s->val[j].len = vl;
						/* the raw token is valid escaped JSON text */
						s->val[j].esc = json_str_raw(d, k + 1, &s->val[j].esc_len);
						s->val[j].set = true;
					} else {
						s->val[j].set = false; /* wrong type: absent */
					}
					break;
				}
			}
		}
		if (!known) {
			if (s->nunk == s->unk_cap) {
				size_t cap = s->unk_cap * 2;
				uint32_t *u = realloc(s->unk, cap * sizeof(*u));

				if (!u)
					return WB_ERR_NOMEM;
				s->unk = u;
				s->unk_cap = cap;
			}
			s->unk[s->nunk++] = k;
		}
	}
	s->fv_ok = s->t_fv != JSON_NONE && json_str_eq(d, s->t_fv, f->fv, 8);
	return WB_OK;
}

/* ------------------------------------------------------------------------
 * Replies: rendering templates, and the compact stored form.
 */

/* The value of placeholder segment g: the field's now, or with pos the
 * next of the stored values pos[*pi]. */
static const struct fval *seg_val(flow_session_t *s, const struct seg *g, const struct fval *pos, unsigned *pi)
{
	return pos ? &pos[(*pi)++] : &s->val[g->field];
}

/* Template t rendered into the arena (or the flow's text when static). */
static const char *render(flow_session_t *s, const struct tmpl *t, const struct fval *pos, unsigned *pi)
{
	size_t n = 0;
	unsigned i, p0 = pi ? *pi : 0;
	char *out, *o;

	if (!t->lit)
		return NULL;
	if (!t->dynamic)
		return t->lit;
	for (i = 0; i < t->nseg; i++) {
		const struct seg *g = &t->seg[i];
		const struct fval *v;

		if (g->field < 0) {
			n += g->len;
		} else {
			v = seg_val(s, g, pos, pi);
			n += v->set ? v->len : 0;
		}
	}
	if (pi)
		*pi = p0;
	if (!(out = arena_alloc(&s->ar, n + 1)))
		return "";
	o = out;
	for (i = 0; i < t->nseg; i++) {
		const struct seg *g = &t->seg[i];
		const struct fval *v;

		if (g->field < 0) {
			memcpy(o, t->lit + g->off, g->len);
			o += g->len;
		} else if ((v = seg_val(s, g, pos, pi))->set) {
			memcpy(o, v->p, v->len);
			o += v->len;
		}
	}
	*o = '\0';
	return out;
}

/* Appends p (n bytes) JSON-escaped, without quotes. */
static void put_escaped(struct jbuf *b, const char *p, size_t n)
{
	size_t at = b->len;

	jbuf_str(b, p, n);
	if (b->oom)
		return;
	memmove(b->p + at, b->p + at + 1, b->len - at - 2);
	b->len -= 2;
	b->p[b->len] = '\0';
}

static void put_value(struct jbuf *b, const struct fval *v)
{
	if (v->esc)
		jbuf_raw(b, v->esc, v->esc_len);
	else
		put_escaped(b, v->p, v->len);
}

/* The values of t's placeholders now, as stored: ,"v1","v2" */
static void put_vals(flow_session_t *s, struct jbuf *b, const struct tmpl *t)
{
	unsigned i;

	for (i = 0; t->lit && i < t->nseg; i++) {
		const struct seg *g = &t->seg[i];

		if (g->field < 0)
			continue;
		jbuf_cstr(b, ",\"");
		if (s->val[g->field].set)
			put_value(b, &s->val[g->field]);
		jbuf_ch(b, '"');
	}
}

/* Adds reply r to this step's replies, rendered with the values of now, and
 * its stored form to s->rj: the template id, or [id,"value",...] with the
 * values of its placeholders in order (body, header, footer). */
static void emit(flow_session_t *s, const struct treply *r)
{
	struct wa_reply *w;
	struct jbuf *b = &s->rj;

	if (!r->present || s->nrep >= FLOW_MAX_REPLIES)
		return;
	w = &s->rep[s->nrep++];
	*w = r->base;
	w->body = render(s, &r->body, NULL, NULL);
	w->header = render(s, &r->header, NULL, NULL);
	w->footer = render(s, &r->footer, NULL, NULL);
	jbuf_sep(b);
	if (!r->nvals) {
		jbuf_u64(b, r->id);
		return;
	}
	jbuf_ch(b, '[');
	jbuf_u64(b, r->id);
	put_vals(s, b, &r->body);
	put_vals(s, b, &r->header);
	put_vals(s, b, &r->footer);
	jbuf_ch(b, ']');
}

/* A stored reply (see emit) rendered again; false when it is not usable. */
static bool replay_reply(flow_session_t *s, uint32_t e)
{
	const struct json_doc *d = &s->doc;
	const struct treply *r;
	struct wa_reply *w;
	uint32_t x = e, k, n = 0;
	unsigned pi = 0;
	int64_t id;

	if (json_type_of(d, e) == JSON_ARRAY) {
		x = json_first(d, e);
		if (x == JSON_NONE)
			return false;
		n = d->toks[e].count - 1;
	}
	if (!json_num_i64(d, x, &id) || id < 0 || id >= (int64_t)s->f->ntr)
		return false;
	r = s->f->tr[id];
	if (n != r->nvals)
		return false;
	for (k = 0, x = json_after(d, x); k < n; k++, x = json_after(d, x)) {
		if (!tok_str(s, x, &s->pos[k].p, &s->pos[k].len))
			return false;
		s->pos[k].set = true;
	}
	w = &s->rep[s->nrep++];
	*w = r->base;
	w->body = render(s, &r->body, s->pos, &pi);
	w->header = render(s, &r->header, s->pos, &pi);
	w->footer = render(s, &r->footer, s->pos, &pi);
	return true;
}

/* The id token of a "recent" entry (a string, or an object's "id"), or
 * JSON_NONE when the entry is not usable. */
static uint32_t recent_id(const struct json_doc *d, uint32_t e)
{
	uint32_t k;

	if (json_type_of(d, e) == JSON_STRING)
		return e;
	if (json_type_of(d, e) != JSON_OBJECT)
		return JSON_NONE;
	/* we write "id" first: take it without scanning every member */
	k = json_first(d, e);
	if (k != JSON_NONE && key_is(d, k, "id", 2) && json_type_of(d, k + 1) == JSON_STRING)
		return k + 1;
	return json_get_type(d, e, "id", JSON_STRING);
}

/* ------------------------------------------------------------------------
 * Writing the context.
 */

static void write_unknown(flow_session_t *s)
{
	const struct json_doc *d = &s->doc;
	struct jbuf *b = &s->out;
	size_t i, n;

	for (i = 0; i < s->nunk; i++) {
		uint32_t k = s->unk[i];
		const char *p;

		jbuf_sep(b);
		jbuf_ch(b, '"');
		p = json_str_raw(d, k, &n);
		jbuf_raw(b, p, n);
		jbuf_cstr(b, "\":");
		p = json_raw(d, k + 1, &n);
		jbuf_raw(b, p, n);
	}
}

static void write_raw_member(flow_session_t *s, const char *key, uint32_t t)
{
	const char *p;
	size_t n;

	jbuf_key(&s->out, key);
	p = json_raw(&s->doc, t, &n);
	jbuf_raw(&s->out, p, n);
}

/* "recent": the kept entries of the context, then this event's. */
static void write_recent(flow_session_t *s, const struct wa_event *ev, const struct step *step)
{
	const struct json_doc *d = &s->doc;
	struct jbuf *b = &s->out;
	uint32_t keep[FLOW_RECENT_IDS];    /* entries kept, oldest first */
	uint32_t keep_id[FLOW_RECENT_IDS]; /* ... their id tokens */
	unsigned nkeep = 0, room = ev->id.len ? FLOW_RECENT_IDS - 1 : FLOW_RECENT_IDS, i;

	unsigned with_r = ev->id.len ? FLOW_RECENT_REPLIES - 1 : FLOW_RECENT_REPLIES;

	jbuf_key(b, "recent");
	jbuf_ch(b, '[');
	if (s->ctx_ok && s->t_recent != JSON_NONE && json_type_of(d, s->t_recent) == JSON_ARRAY) {
		uint32_t e = json_first(d, s->t_recent), n = d->toks[s->t_recent].count, c;

		/* a ring of the last `room` usable entries */
		for (c = 0; c < n; c++, e = json_after(d, e)) {
			uint32_t id = recent_id(d, e);

			if (id == JSON_NONE)
				continue;
			if (nkeep < room) {
				keep_id[nkeep] = id;
				keep[nkeep++] = e;
			} else {
				memmove(keep, keep + 1, (room - 1) * sizeof(keep[0]));
				memmove(keep_id, keep_id + 1, (room - 1) * sizeof(keep_id[0]));
				keep[room - 1] = e;
				keep_id[room - 1] = id;
			}
		}
	}
	for (i = 0; i < nkeep; i++) {
		uint32_t e = keep[i], id = keep_id[i];
		const char *p;
		size_t n;

		jbuf_sep(b);
		if (nkeep - i <= with_r && s->fv_ok && json_type_of(d, e) == JSON_OBJECT) {
			p = json_raw(d, e, &n);
			jbuf_raw(b, p, n);
		} else {
			jbuf_ch(b, '"');
			p = json_str_raw(d, id, &n);
			jbuf_raw(b, p, n);
			jbuf_ch(b, '"');
		}
	}
	if (ev->id.len) {
		jbuf_sep(b);
		jbuf_cstr(b, "{\"id\":");
		jbuf_str(b, ev->id.p, ev->id.len);
		jbuf_cstr(b, ",\"s\":");
		jbuf_u64(b, (uint64_t)(step - s->f->steps));
		jbuf_cstr(b, ",\"r\":[");
		jbuf_raw(b, s->rj.p, s->rj.len);
		jbuf_cstr(b, "]}");
	}
	jbuf_ch(b, ']');
}

/* "in": this event's position, else the context's (a replayed file). */
static void write_in(flow_session_t *s, const struct wa_event *ev, const struct flow_pos *pos)
{
	struct jbuf *b = &s->out;

	if (pos && pos->partition >= 0 && pos->offset >= 0) {
		jbuf_key(b, "in");
		jbuf_ch(b, '[');
		jbuf_i64(b, pos->partition);
		jbuf_ch(b, ',');
		jbuf_i64(b, pos->offset);
		jbuf_ch(b, ',');
		jbuf_u64(b, ev->index);
		jbuf_ch(b, ',');
		jbuf_i64(b, pos->timestamp_ms >= 0 ? pos->timestamp_ms : -1);
		jbuf_ch(b, ']');
	} else if (s->ctx_ok && s->t_in != JSON_NONE) {
		write_raw_member(s, "in", s->t_in);
	}
}

static void write_context(flow_session_t *s, const struct wa_event *ev, const struct flow_pos *pos)
{
	const flow_t *f = s->f;
	const struct step *step = &f->steps[s->cur];
	struct jbuf *b = &s->out;
	unsigned j;

	jbuf_reset(b);
	jbuf_cstr(b, "{\"conversation_step\":");
	jbuf_raw(b, step->name_json, step->name_json_len);
	jbuf_cstr(b, ",\"flow\":");
	jbuf_raw(b, f->name_json, f->name_json_len);
	jbuf_cstr(b, ",\"fv\":\"");
	jbuf_raw(b, f->fv, 8);
	jbuf_ch(b, '"');
	for (j = 0; j < f->nfields; j++) {
		if (!s->val[j].set)
			continue;
		jbuf_ch(b, ',');
		jbuf_raw(b, f->field_key[j], f->field_key_len[j]);
		jbuf_ch(b, '"');
		put_value(b, &s->val[j]);
		jbuf_ch(b, '"');
	}
	if (s->ctx_ok) {
		write_unknown(s);
		if (s->t_delivery != JSON_NONE && json_type_of(&s->doc, s->t_delivery) == JSON_OBJECT)
			write_raw_member(s, "delivery", s->t_delivery);
	}
	write_in(s, ev, pos);
	write_recent(s, ev, step);
	jbuf_ch(b, '}');
}

/* ------------------------------------------------------------------------
 * The machine.
 */

/* esc: p JSON-escaped without quotes, or NULL when unknown. p NULL
 * removes the field. */
static void set_field(flow_session_t *s, int field, const char *p, size_t len, const char *esc, size_t esc_len)
{
	if (field < 0)
		return;
	s->val[field].p = p;
	s->val[field].len = len;
	s->val[field].esc = esc;
	s->val[field].esc_len = esc_len;
	s->val[field].set = p != NULL;
}

static void clear_slots(flow_session_t *s)
{
	unsigned j;

	for (j = 0; j < s->f->nfields; j++)
		if (s->f->is_slot[j])
			s->val[j].set = false;
}

static void apply_set(flow_session_t *s, const struct step *st)
{
	unsigned i;

	for (i = 0; i < st->nset; i++)
		set_field(s, st->set[i].field, st->set[i].val, st->set[i].len, st->set[i].esc, st->set[i].esc_len);
}

/* Enters step i: its "set", its prompt, and its "then" step likewise. */
static void enter(flow_session_t *s, int i)
{
	const struct step *st = &s->f->steps[i];

	apply_set(s, st);
	s->cur = i;
	emit(s, &st->prompt);
	if (st->then >= 0) { /* the loader allows one level only */
		s->cur = st->then;
		st = &s->f->steps[st->then];
		apply_set(s, st);
		emit(s, &st->prompt);
	}
}

/* The question of the current step again (after an error or help). */
static void ask_again(flow_session_t *s)
{
	const struct step *st = &s->f->steps[s->cur];

	emit(s, st->reprompt.present ? &st->reprompt : &st->prompt);
}

static void refuse(flow_session_t *s)
{
	const struct step *st = &s->f->steps[s->cur];

	emit(s, st->invalid.present ? &st->invalid : &s->f->fallback);
	ask_again(s);
}

static bool is_apos(uint32_t cp)
{
	return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x02BC || cp == 0x00B4 || cp == '`';
}

static bool is_hyphen(uint32_t cp)
{
	return cp == '-' || (cp >= 0x2010 && cp <= 0x2013) || cp == 0x00AD;
}

/* Validates a typed answer p (trimmed, len bytes) against the slot's length,
 * character classes, letters and pattern. */
static bool slot_ok(flow_session_t *s, const struct slot *sl, const char *p, size_t len)
{
	size_t i = 0, ncp = 0, letters = 0;

	while (i < len) {
		uint32_t cp;
		size_t k = utf8_decode(p + i, len - i, &cp);
		enum utf8_class c = utf8_classify(cp);
		unsigned bit;

		i += k;
		ncp++;
		if (c == UTF8_LETTER) {
			letters++;
			bit = CH_LETTER;
		} else if (c == UTF8_MARK) {
			bit = CH_LETTER; /* combining accents ride on letters */
		} else if (c == UTF8_DIGIT) {
			bit = CH_DIGIT;
		} else if (c == UTF8_SPACE) {
			bit = cp == ' ' || cp == 0xA0 ? CH_SPACE : CH_OTHER;
		} else if (is_apos(cp)) {
			bit = CH_APOS;
		} else if (is_hyphen(cp)) {
			bit = CH_HYPHEN;
		} else if (cp == '.') {
			bit = CH_DOT;
		} else if (cp == ',') {
			bit = CH_COMMA;
		} else {
			bit = CH_OTHER;
		}
		if (cp == UTF8_INVALID)
			return false;
		if (sl->chars && !(sl->chars & bit))
			return false;
	}
	if (ncp < sl->min_len || ncp > sl->max_len || letters < sl->min_letters)
		return false;
	if (sl->has_re) {
		char *z = arena_alloc(&s->ar, len + 1);

		if (!z)
			return false;
		memcpy(z, p, len);
		z[len] = '\0';
		if (regexec(&sl->re, z, 0, NULL, 0) != 0)
			return false;
	}
	return true;
}

/* The current step is a slot step: takes the answer (text t of tlen bytes,
 * folded f, or a list/button id). */
static void on_slot(flow_session_t *s, const struct wa_str *id, const char *t, size_t tlen, const char *f,
		    size_t flen)
{
	const struct step *st = &s->f->steps[s->cur];
	const struct slot *sl = &st->slot;
	int c = -1;
	size_t b;

	if (sl->nvals) {
		if (id && id->len)
			c = choice_by_id(sl->vals, sl->nvals, id);
		if (c < 0)
			c = choice_match(sl->vals, sl->nvals, f, flen, false);
		if (c >= 0) {
			set_field(s, sl->field, sl->vals[c].value, sl->vals[c].value_len, sl->vals[c].value_esc,
				  sl->vals[c].value_esc_len);
			enter(s, st->next);
			return;
		}
		if (sl->restrict_list) {
			refuse(s);
			return;
		}
	}
	tlen = utf8_trim(t, tlen, &b);
	t += b;
	if ((sl->reject_intents && match_intent(s->f, &s->wi, f, flen) >= 0) || !slot_ok(s, sl, t, tlen)) {
		refuse(s);
		return;
	}
	set_field(s, sl->field, t, tlen, NULL, 0);
	enter(s, st->next);
}

/* Enters an intent's first step with the slots emptied. */
static void start_intent(flow_session_t *s, int in)
{
	clear_slots(s);
	enter(s, s->f->intents[in].step);
}

/* A text, button or list reply. id: the reply id, or NULL for typed text. */
static void on_message(flow_session_t *s, const struct wa_str *id, const char *t, size_t tlen)
{
	const flow_t *f = s->f;
	const struct step *st = s->cur >= 0 ? &f->steps[s->cur] : NULL;
	bool under_way = st && !st->final;
	size_t flen, y, n;
	int c;

	if (tlen + 1 > s->fold_cap) {
		size_t cap = s->fold_cap;
		char *nb;

		while (cap < tlen + 1)
			cap *= 2;
		if (!(nb = realloc(s->fold, cap))) {
			s->ar.oom = true;
			return;
		}
		s->fold = nb;
		s->fold_cap = cap;
	}
	flen = utf8_fold(t, tlen, s->fold, s->fold_cap);
	index_words(f, &s->wi, s->fold, flen);

	/* 2. reply ids */
	if (id && id->len) {
		if (under_way && st->kind == STEP_CONFIRM) {
			if (id->len == 3 && memcmp(id->p, "yes", 3) == 0) {
				enter(s, st->yes);
				return;
			}
			if (id->len == 2 && memcmp(id->p, "no", 2) == 0) {
				enter(s, st->no);
				return;
			}
		}
		if (under_way && st->kind == STEP_OPTIONS && (c = choice_by_id(st->opts, st->nopts, id)) >= 0) {
			enter(s, st->opts[c].next);
			return;
		}
		if (under_way && st->kind == STEP_SLOT && choice_by_id(st->slot.vals, st->slot.nvals, id) >= 0) {
			on_slot(s, id, t, tlen, s->fold, flen);
			return;
		}
		if ((c = intent_by_id(f, id)) >= 0) {
			start_intent(s, c);
			return;
		}
	}

	/* 3. commands */
	if (f->cancel.present && words_any(&s->wi, &f->cancel.m, s->fold, flen)) {
		clear_slots(s);
		emit(s, &f->cancel.reply);
		enter(s, f->cancel.step);
		return;
	}
	if (f->restart.present && words_any(&s->wi, &f->restart.m, s->fold, flen)) {
		clear_slots(s);
		emit(s, &f->restart.reply);
		if (under_way && st->owner >= 0)
			enter(s, f->intents[st->owner].step);
		else
			enter(s, f->start);
		return;
	}
	if (f->help.present && words_any(&s->wi, &f->help.m, s->fold, flen)) {
		emit(s, &f->help.reply);
		if (under_way)
			ask_again(s);
		else if (!st)
			enter(s, f->start);
		return;
	}

	/* 4. the step under way */
	if (under_way) {
		switch (st->kind) {
		case STEP_CONFIRM:
			y = words_lead(&f->yes, s->fold, flen);
			n = words_lead(&f->no, s->fold, flen);
			if (y && y >= n)
				enter(s, st->yes);
			else if (n)
				enter(s, st->no);
			else
				refuse(s);
			return;
		case STEP_SLOT:
			on_slot(s, NULL, t, tlen, s->fold, flen);
			return;
		case STEP_OPTIONS:
			if ((c = choice_match(st->opts, st->nopts, s->fold, flen, true)) >= 0) {
				enter(s, st->opts[c].next);
				return;
			}
			if ((c = match_intent(f, &s->wi, s->fold, flen)) >= 0) {
				start_intent(s, c);
				return;
			}
			refuse(s);
			return;
		case STEP_PLAIN:
			if ((c = match_intent(f, &s->wi, s->fold, flen)) >= 0) {
				start_intent(s, c);
				return;
			}
			refuse(s);
			return;
		}
	}

	/* 5. nothing under way */
	if ((c = match_intent(f, &s->wi, s->fold, flen)) >= 0) {
		start_intent(s, c);
		return;
	}
	clear_slots(s);
	enter(s, f->start);
}

/* ------------------------------------------------------------------------
 * Status events.
 */

_Static_assert(WA_STATUS_SENT == 1 && WA_STATUS_DELIVERED == 2 && WA_STATUS_READ == 3 && WA_STATUS_FAILED == 4,
	       "status ranks follow enum wa_status");

/* Status names as stored in delivery.status, by enum wa_status (= rank). */
static const char *const status_names[] = {"", "sent", "delivered", "read", "failed"};

static int status_rank(const char *p, size_t n)
{
	if (n == 4 && memcmp(p, "sent", 4) == 0)
		return 1;
	if (n == 9 && memcmp(p, "delivered", 9) == 0)
		return 2;
	if (n == 4 && memcmp(p, "read", 4) == 0)
		return 3;
	if (n == 6 && memcmp(p, "failed", 6) == 0)
		return 4;
	return 0;
}

static wb_err_t on_status(flow_session_t *s, const struct wa_event *ev, int64_t now_s, struct flow_result *out)
{
	const struct json_doc *d = &s->doc;
	struct jbuf *b = &s->out;
	struct wa_str mid = ev->ref_message_id.len ? ev->ref_message_id : ev->message_id;
	int rank = ev->status > WA_STATUS_UNKNOWN && ev->status <= WA_STATUS_FAILED ? (int)ev->status : 0;
	const char *name = status_names[rank];
	uint32_t i, k, n;

	if (!s->ctx_ok || rank == 0 || mid.len == 0)
		return WB_OK; /* nothing to attach it to, or nothing we rank */
	if (s->t_delivery != JSON_NONE && json_type_of(d, s->t_delivery) == JSON_OBJECT) {
		uint32_t dl = s->t_delivery;
		uint32_t eid = json_get_type(d, dl, "event_id", JSON_STRING);
		uint32_t sm = json_get_type(d, dl, "message_id", JSON_STRING);
		uint32_t st = json_get_type(d, dl, "status", JSON_STRING);

		if (ev->id.len && eid != JSON_NONE && json_str_eq(d, eid, ev->id.p, ev->id.len)) {
			out->duplicate = true;
			return WB_OK;
		}
		if (sm != JSON_NONE && st != JSON_NONE && json_str_eq(d, sm, mid.p, mid.len)) {
			size_t sl;
			const char *sp = json_str_raw(d, st, &sl);
			int old = status_rank(sp, sl);

			if (old == 4 || old >= rank)
				return WB_OK; /* older news, or the message already failed */
		}
	}
	jbuf_reset(b);
	jbuf_ch(b, '{');
	n = d->toks[0].count;
	for (i = 0, k = json_first(d, 0); i < n; i++, k = json_after(d, k + 1)) {
		const char *p;
		size_t len;

		if (k + 1 == s->t_delivery || key_is(d, k, "delivery", 8))
			continue;
		jbuf_sep(b);
		jbuf_ch(b, '"');
		p = json_str_raw(d, k, &len);
		jbuf_raw(b, p, len);
		jbuf_cstr(b, "\":");
		p = json_raw(d, k + 1, &len);
		jbuf_raw(b, p, len);
	}
	jbuf_key(b, "delivery");
	jbuf_ch(b, '{');
	jbuf_key(b, "message_id");
	jbuf_str(b, mid.p, mid.len);
	jbuf_key(b, "status");
	jbuf_cstr_q(b, name);
	if (ev->error_code.len) {
		jbuf_key(b, "error_code");
		jbuf_str(b, ev->error_code.p, ev->error_code.len);
	}
	jbuf_key(b, "at");
	jbuf_i64(b, ev->timestamp > 0 ? ev->timestamp : now_s);
	if (ev->id.len) {
		jbuf_key(b, "event_id");
		jbuf_str(b, ev->id.p, ev->id.len);
	}
	jbuf_ch(b, '}');
	jbuf_ch(b, '}');
	if (b->oom)
		return WB_ERR_NOMEM;
	out->ctx_json = b->p;
	out->ctx_len = b->len;
	return WB_OK;
}

/* ------------------------------------------------------------------------
 * flow_step
 */

/* Finds ev's id in "recent"; on a hit fills out with the stored replies. */
static bool find_duplicate(flow_session_t *s, const struct wa_event *ev, struct flow_result *out)
{
	const struct json_doc *d = &s->doc;
	uint32_t e, n, c, id;

	if (!s->ctx_ok || !ev->id.len || s->t_recent == JSON_NONE || json_type_of(d, s->t_recent) != JSON_ARRAY)
		return false;
	n = d->toks[s->t_recent].count;
	for (c = 0, e = json_first(d, s->t_recent); c < n; c++, e = json_after(d, e)) {
		id = recent_id(d, e);
		if (id == JSON_NONE || (!(d->toks[id].flags & JSON_TOK_ESCAPED) && d->toks[id].len != ev->id.len) ||
		    !json_str_eq(d, id, ev->id.p, ev->id.len))
			continue;
		out->duplicate = true;
		if (json_type_of(d, e) == JSON_OBJECT) {
			uint32_t st = json_get_type(d, e, "s", JSON_NUMBER);
			uint32_t r = json_get_type(d, e, "r", JSON_ARRAY);
			int64_t si;

			if (s->fv_ok && st != JSON_NONE && json_num_i64(d, st, &si) && si >= 0 && si < (int64_t)s->f->nsteps)
				out->step = s->f->steps[si].name;
			if (r != JSON_NONE && s->fv_ok) {
				uint32_t x = json_first(d, r), m = d->toks[r].count, q;

				for (q = 0; q < m && s->nrep < FLOW_MAX_REPLIES; q++, x = json_after(d, x))
					(void)replay_reply(s, x);
			}
		}
		return true;
	}
	return false;
}

/* true when ev (at pos) is at or before the context's "in" on the same
 * partition, and not from a newer record (see "in" above). */
static bool behind_in(flow_session_t *s, const struct wa_event *ev, const struct flow_pos *pos)
{
	const struct json_doc *d = &s->doc;
	int64_t v[4];
	uint32_t e, i;

	if (!pos || pos->partition < 0 || pos->offset < 0 || !s->ctx_ok || s->t_in == JSON_NONE ||
	    json_type_of(d, s->t_in) != JSON_ARRAY || d->toks[s->t_in].count != 4)
		return false;
	for (i = 0, e = json_first(d, s->t_in); i < 4; i++, e = json_after(d, e))
		if (json_type_of(d, e) != JSON_NUMBER || !json_num_i64(d, e, &v[i]))
			return false;
	if (v[0] != pos->partition || pos->offset > v[1] || (pos->offset == v[1] && (int64_t)ev->index > v[2]))
		return false;
	return pos->timestamp_ms < 0 || v[3] < 0 || pos->timestamp_ms <= v[3];
}

wb_err_t flow_step(flow_session_t *s, const char *ctx_json, size_t ctx_len, bool found, const struct wa_event *ev,
		   const struct flow_pos *pos, int64_t now_s, struct flow_result *out)
{
	const flow_t *f;
	wb_err_t err;

	memset(out, 0, sizeof(*out));
	out->step = "";
	if (!s || !ev || ev->err != EVENT_OK)
		return WB_ERR_INVALID;
	if (ev->kind == WA_KIND_VALIDATION)
		return WB_OK;
	if (!ev->key[0])
		return WB_ERR_INVALID;
	f = s->f;
	arena_reset(&s->ar);
	jbuf_reset(&s->rj);
	s->nrep = 0;
	s->cur = -1;
	out->replies = s->rep;
	if ((err = ctx_read(s, ctx_json, ctx_len, found)) != WB_OK)
		return err;
	if (s->ctx_ok && s->t_step != JSON_NONE)
		out->step = tok_cstr(s, s->t_step);

	if (ev->kind == WA_KIND_REACTION)
		return WB_OK;
	if (ev->kind == WA_KIND_STATUS) {
		err = on_status(s, ev, now_s, out);
		return err == WB_OK && s->ar.oom ? WB_ERR_NOMEM : err;
	}
	if (find_duplicate(s, ev, out)) {
		out->nreplies = s->nrep;
		return s->ar.oom ? WB_ERR_NOMEM : WB_OK;
	}
	if (behind_in(s, ev, pos)) {
		out->duplicate = true;
		return WB_OK;
	}

	/* where the conversation is */
	if (s->ctx_ok && s->t_step != JSON_NONE && json_type_of(&s->doc, s->t_step) == JSON_STRING) {
		const char *p;
		size_t n;

		if (tok_str(s, s->t_step, &p, &n))
			s->cur = find_step(f, p, n);
		/* another flow's context (a "flow" of another type counts as absent) */
		if (s->cur >= 0 && tok_str(s, s->t_flow, &p, &n) && (n != f->name_len || memcmp(p, f->name, n) != 0))
			s->cur = -1;
	}
	if (s->cur < 0) {
		unsigned j;

		out->fresh_start = true;
		for (j = 0; j < f->nfields; j++)
			s->val[j].set = false;
	}

	switch (ev->kind) {
	case WA_KIND_TEXT:
		on_message(s, NULL, ev->text.p ? ev->text.p : "", ev->text.len);
		break;
	case WA_KIND_BUTTON_REPLY:
	case WA_KIND_LIST_REPLY:
		on_message(s, &ev->reply_id, ev->reply_title.p ? ev->reply_title.p : "", ev->reply_title.len);
		break;
	default: /* media, location, unsupported */
		emit(s, &f->non_text);
		if (s->cur >= 0 && !f->steps[s->cur].final)
			ask_again(s);
		else
			enter(s, f->start);
		break;
	}
	if (s->ar.oom)
		return WB_ERR_NOMEM;
	write_context(s, ev, pos);
	if (s->out.oom || s->rj.oom || s->ar.oom)
		return WB_ERR_NOMEM;
	out->ctx_json = s->out.p;
	out->ctx_len = s->out.len;
	out->replies = s->rep;
	out->nreplies = s->nrep;
	out->step = f->steps[s->cur].name;
	return WB_OK;
}
