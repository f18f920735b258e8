/*
 * reply.c - wa_reply -> wa.outbound envelope JSON with an ACS or Meta body
 * (the contract: shared/reference/outbound-messages.md, sections (a)-(d)).
 *
 * Two passes, no allocation besides the caller's jbuf growth:
 *  1. reply_plan() validates the target and the reply and turns every text
 *     field into a view (bytes to copy, cut or not) within WhatsApp's
 *     limits, so nothing is written for a refused reply;
 *  2. the writers emit the envelope and the provider body in the fixtures'
 *     field order, with fixed keys written as literals.
 * A reply carrying a reply_prep (made once per flow template, the only
 * allocation here) skips planning its buttons and list and copies their
 * encoded form, and its static texts', instead of escaping them again:
 * the whole pipeline went from 29.0k to 27.1k instructions per event on
 * bench_pipeline (callgrind) with it.
 * Limits count code points the way jbuf_str() writes them: a valid UTF-8
 * sequence is one, and so is each maximal ill-formed subpart (it becomes one
 * U+FFFD), so a cut text has exactly the limit in the output.
 * Pure functions: no state, safe from any thread (one jbuf per thread).
 * Does not check templates or flows (the flow loader does) and does not send.
 */
#include "reply.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "utf8.h"

/* Appends a string literal as raw bytes. */
#define LIT(b, s) jbuf_raw((b), "" s "", sizeof(s) - 1) /* literals only */

/* U+2026 HORIZONTAL ELLIPSIS, ending every cut text. */
#define REPLY_ELLIPSIS "\xe2\x80\xa6"

/* Longest E.164 number, in digits. */
#define REPLY_E164_MAX_DIGITS 15

/* --- Planning: validation and limits ------------------------------------ */

/* A text to write: len bytes at p, then "…" when cut. */
struct rview {
	const char *p;
	size_t len;
	bool cut;
};

struct rsection {
	struct rview title;
	unsigned first; /* index of its first row in the plan */
	unsigned n;     /* rows, >= 1 */
};

/* A validated reply, every field within its limit. */
struct rplan {
	struct rview body, header, footer; /* header/footer len 0: absent */
	unsigned nbuttons;
	struct rview button_id[REPLY_MAX_BUTTONS];
	struct rview button_title[REPLY_MAX_BUTTONS];
	struct rview list_button;
	unsigned nsections;
	struct rsection sections[REPLY_MAX_SECTIONS];
	unsigned nrows;
	struct rview row_id[REPLY_MAX_ROWS];
	struct rview row_title[REPLY_MAX_ROWS];
	struct rview row_desc[REPLY_MAX_ROWS]; /* len 0: absent */
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static wb_err_t reply_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (errstr && errstr_size > 0) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return WB_ERR_INVALID;
}

/* View of s (NULL is "") cut to limit code points: limit-1 and "…". */
static struct rview text_view(const char *s, size_t limit)
{
	struct rview v = {s ? s : "", s ? strlen(s) : 0, false};

	if (v.len <= limit) /* bytes >= code points: fits, no scan */
		return v;
	/* utf8_prefix counts an ill-formed sequence as the one U+FFFD that
	 * jbuf_str() writes for it, so the cut is exact in the output. */
	if (utf8_prefix(v.p, v.len, limit) < v.len) {
		v.len = utf8_prefix(v.p, v.len, limit - 1);
		v.cut = true;
	}
	return v;
}

static bool view_eq(const struct rview *a, const struct rview *b)
{
	return a->len == b->len && a->cut == b->cut && memcmp(a->p, b->p, a->len) == 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* An id: required, at most max bytes (never cut: it must come back
 * verbatim), no leading or trailing whitespace. NULL when good, else why. */
static const char *id_problem(const char *id, size_t max, struct rview *v)
{
	v->p = id ? id : "";
	v->len = id ? strlen(id) : 0;
	v->cut = false;
	if (v->len == 0)
		return "empty id";
	if (v->len > max)
		return "id longer than its limit";
	if (is_space(v->p[0]) || is_space(v->p[v->len - 1]))
		return "id with leading or trailing whitespace";
	return NULL;
}

static wb_err_t plan_buttons(struct rplan *pl, const struct wa_reply *r, char *errstr, size_t errstr_size)
{
	unsigned i, j;

	pl->nbuttons = r->nbuttons < REPLY_MAX_BUTTONS ? r->nbuttons : REPLY_MAX_BUTTONS;
	if (pl->nbuttons == 0)
		return reply_fail(errstr, errstr_size, "button reply without buttons");
	for (i = 0; i < pl->nbuttons; i++) {
		const struct reply_button *bt = &r->buttons[i];
		const char *why = id_problem(bt->id, REPLY_LIMIT_BUTTON_ID, &pl->button_id[i]);

		if (why)
			return reply_fail(errstr, errstr_size, "button %u: %s", i, why);
		pl->button_title[i] = text_view(bt->title, REPLY_LIMIT_BUTTON_TITLE);
		if (pl->button_title[i].len == 0)
			return reply_fail(errstr, errstr_size, "button %u: empty title", i);
		for (j = 0; j < i; j++) {
			if (view_eq(&pl->button_id[j], &pl->button_id[i]))
				return reply_fail(errstr, errstr_size, "buttons %u and %u: same id", j, i);
			/* Compared as sent: titles that differ only past the
			 * limit are the same title to WhatsApp. */
			if (view_eq(&pl->button_title[j], &pl->button_title[i]))
				return reply_fail(errstr, errstr_size, "buttons %u and %u: same title", j, i);
		}
	}
	return WB_OK;
}

static wb_err_t plan_list(struct rplan *pl, const struct wa_reply *r, char *errstr, size_t errstr_size)
{
	unsigned total, i, j, next = 0;

	pl->list_button = text_view(r->list_button, REPLY_LIMIT_LIST_BUTTON);
	if (pl->list_button.len == 0)
		return reply_fail(errstr, errstr_size, "list without a list button label");
	if (r->nsections > REPLY_MAX_SECTIONS)
		return reply_fail(errstr, errstr_size, "list with more than %d sections", REPLY_MAX_SECTIONS);
	total = r->nrows < REPLY_MAX_ROWS ? r->nrows : REPLY_MAX_ROWS;
	if (total == 0)
		return reply_fail(errstr, errstr_size, "list without rows");

	for (i = 0; i < total; i++) {
		const struct reply_row *row = &r->rows[i];
		const char *why = id_problem(row->id, REPLY_LIMIT_ROW_ID, &pl->row_id[i]);

		if (why)
			return reply_fail(errstr, errstr_size, "row %u: %s", i, why);
		for (j = 0; j < i; j++)
			if (view_eq(&pl->row_id[j], &pl->row_id[i]))
				return reply_fail(errstr, errstr_size, "rows %u and %u: same id", j, i);
		pl->row_title[i] = text_view(row->title, REPLY_LIMIT_ROW_TITLE);
		if (pl->row_title[i].len == 0)
			return reply_fail(errstr, errstr_size, "row %u: empty title", i);
		pl->row_desc[i] = text_view(row->description, REPLY_LIMIT_ROW_DESC);
	}
	pl->nrows = total;

	if (r->nsections == 0) {
		/* One implicit section. Its title is always sent (META-LIST
		 * requires it): the list button label is the nearest text. */
		pl->nsections = 1;
		pl->sections[0].title = pl->list_button;
		pl->sections[0].first = 0;
		pl->sections[0].n = total;
		return WB_OK;
	}
	/* Sections take consecutive rows; rows past the 10th are dropped
	 * with whichever section claims them, and emptied sections with them. */
	pl->nsections = 0;
	for (i = 0; i < r->nsections && next < total; i++) {
		const struct reply_section *sec = &r->sections[i];
		struct rsection *ps;
		unsigned n = sec->nrows < total - next ? sec->nrows : total - next;

		if (n == 0)
			continue;
		ps = &pl->sections[pl->nsections++];
		ps->title = text_view(sec->title, REPLY_LIMIT_SECTION_TITLE);
		ps->first = next;
		ps->n = n;
		next += n;
		if (ps->title.len == 0) {
			if (r->nsections > 1)
				return reply_fail(errstr, errstr_size, "section %u: empty title in a list of several",
						  i);
			ps->title = pl->list_button;
		}
	}
	if (next < total)
		return reply_fail(errstr, errstr_size, "sections hold %u rows of %u", next, total);
	return WB_OK;
}

/* Texts of body, header and footer, in struct rwrite and reply_prep order. */
enum { RTXT_BODY, RTXT_HEADER, RTXT_FOOTER, RTXT_N };

/* The buttons or the list of r, validated and cut (nothing for text). */
static wb_err_t plan_static(struct rplan *pl, const struct wa_reply *r, char *errstr, size_t errstr_size)
{
	pl->list_button = (struct rview){0};
	pl->nsections = 0;
	pl->nrows = 0;
	if (r->kind == REPLY_BUTTONS)
		return plan_buttons(pl, r, errstr, errstr_size);
	if (r->kind == REPLY_LIST)
		return plan_list(pl, r, errstr, errstr_size);
	return WB_OK;
}

/* Views of body, header and footer (absent ones are empty), in RTXT order. */
static wb_err_t plan_texts(struct rview v[RTXT_N], const struct wa_reply *r, char *errstr, size_t errstr_size)
{
	switch (r->kind) {
	case REPLY_TEXT:
		v[RTXT_BODY] = text_view(r->body, REPLY_LIMIT_TEXT);
		v[RTXT_HEADER] = v[RTXT_FOOTER] = (struct rview){"", 0, false};
		return WB_OK;
	case REPLY_BUTTONS:
	case REPLY_LIST:
		v[RTXT_BODY] = text_view(r->body, REPLY_LIMIT_BODY);
		v[RTXT_HEADER] = text_view(r->header, REPLY_LIMIT_HEADER);
		v[RTXT_FOOTER] = text_view(r->footer, REPLY_LIMIT_FOOTER);
		return WB_OK;
	default:
		return reply_fail(errstr, errstr_size, "unknown reply kind %d", (int)r->kind);
	}
}

/* Plans r; with static_ok, its buttons and list were validated already
 * (by reply_prep_new, for the same pointers) and are not planned again. */
static wb_err_t reply_plan(struct rplan *pl, const struct wa_reply *r, bool static_ok, char *errstr,
			   size_t errstr_size)
{
	struct rview v[RTXT_N];
	wb_err_t err = plan_texts(v, r, errstr, errstr_size);

	if (err != WB_OK)
		return err;
	pl->body = v[RTXT_BODY];
	pl->header = v[RTXT_HEADER];
	pl->footer = v[RTXT_FOOTER];
	pl->nbuttons = 0;
	if (pl->body.len == 0)
		return reply_fail(errstr, errstr_size, "empty body");
	return static_ok ? WB_OK : plan_static(pl, r, errstr, errstr_size);
}

/*
 * The target's checks run on every reply over strings of 12-20 bytes (the
 * phone, Meta's phone_number_id, the ACS api-version): 16 bytes at a time
 * with SSE2 they take 30-65 instructions each instead of 80-150 for a byte
 * loop. A string of 8 to 16 bytes is checked as its first and last 8 bytes
 * (overlapping: every byte is in the block, no other byte is); a shorter one
 * is copied into a block padded with a byte that passes the check.
 */
#if defined(__SSE2__)
static inline __m128i load_padded(const char *s, size_t len, char pad)
{
	char tmp[16];
	uint64_t lo, hi;

	if (len >= 8) {
		memcpy(&lo, s, 8);
		memcpy(&hi, s + len - 8, 8);
		return _mm_set_epi64x((long long)hi, (long long)lo);
	}
	memset(tmp, pad, sizeof(tmp));
	memcpy(tmp, s, len); /* len < 8 */
	return _mm_loadu_si128((const __m128i *)(const void *)tmp);
}

/* Nonzero when a byte of x is not '0'..'9' (bytes >= 0x80 are negative). */
static inline unsigned digit_misses(__m128i x)
{
	__m128i ok = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));

	return (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
}

/* Nonzero when a byte of x is not [A-Za-z0-9._-] (x | 0x20 folds A-Z onto
 * a-z and moves no other byte into a-z). */
static inline unsigned token_misses(__m128i x)
{
	__m128i low = _mm_or_si128(x, _mm_set1_epi8(0x20));
	__m128i letter = _mm_and_si128(_mm_cmpgt_epi8(low, _mm_set1_epi8('a' - 1)),
				       _mm_cmplt_epi8(low, _mm_set1_epi8('z' + 1)));
	__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
	__m128i punct = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')),
				     _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('_')), _mm_cmpeq_epi8(x, _mm_set1_epi8('.'))));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(letter, _mm_or_si128(digit, punct))) ^ 0xffffu;
}
#endif

/* Safe inside a URL path and a JSON string without escaping. */
static bool is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
#if defined(__SSE2__)
	if (len <= 16)
		return token_misses(load_padded(s, len, 'a')) == 0;
	for (i = 0; i + 16 < len; i += 16)
		if (token_misses(_mm_loadu_si128((const __m128i *)(const void *)(s + i))))
			return false;
	return token_misses(_mm_loadu_si128((const __m128i *)(const void *)(s + len - 16))) == 0;
#else
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
#endif
}

/* len (1..16) bytes of '0'..'9'. */
static bool all_digits(const char *s, size_t len)
{
#if defined(__SSE2__)
	return digit_misses(load_padded(s, len, '0')) == 0;
#else
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
#endif
}

/* "+" and 1-15 digits, or a BSUID: its length, or 0 when it is neither. */
static size_t to_len_ok(const char *to)
{
	size_t len;

	if (!to || !to[0])
		return 0;
	len = strlen(to);
	if (len >= EVENT_KEY_MAX)
		return 0;
	if (to[0] == '+') {
		if (len < 2 || len > 1 + REPLY_E164_MAX_DIGITS)
			return 0;
		return all_digits(to + 1, len - 1) ? len : 0;
	}
	/* A BSUID is "CC." and alphanumerics (inbound-events.md); allow the
	 * token set so a format tweak still goes through, nothing to escape. */
	return is_token(to, len) ? len : 0;
}

/* Checks t; sets *to_len, *api (the api-version to use) and *api_len. */
static wb_err_t target_check(const struct reply_target *t, size_t *to_len, const char **api, size_t *api_len,
			     char *errstr, size_t errstr_size)
{
	if (t->provider != WA_PROVIDER_ACS && t->provider != WA_PROVIDER_META)
		return reply_fail(errstr, errstr_size, "target: provider is not acs or meta");
	if ((*to_len = to_len_ok(t->to)) == 0)
		return reply_fail(errstr, errstr_size, "target: recipient is not +E.164 or a user id");
	if (!t->business_id.p || t->business_id.len == 0)
		return reply_fail(errstr, errstr_size, "target: no business id");
	/* Meta's phone_number_id goes into the request path. */
	if (t->provider == WA_PROVIDER_META && !is_token(t->business_id.p, t->business_id.len))
		return reply_fail(errstr, errstr_size, "target: phone_number_id is not a path segment");
	if (!t->in_reply_to.p || t->in_reply_to.len == 0)
		return reply_fail(errstr, errstr_size, "target: no inbound event id");
	*api = t->acs_api_version && t->acs_api_version[0] ? t->acs_api_version : REPLY_ACS_API_VERSION;
	*api_len = t->provider == WA_PROVIDER_ACS ? strlen(*api) : 0; /* only ACS writes it */
	if (t->provider == WA_PROVIDER_ACS && !is_token(*api, *api_len))
		return reply_fail(errstr, errstr_size, "target: bad ACS api-version");
	return WB_OK;
}

/* --- Writers ------------------------------------------------------------ */

/* n bytes that need no escaping, between quotes, with one room check. */
static void put_quoted(struct jbuf *b, const char *s, size_t n)
{
	if (n + 2 < b->cap - b->len && !b->oom) { /* as jbuf_raw() */
		char *o = b->p + b->len;

		o[0] = '"';
		memcpy(o + 1, s, n);
		o[n + 1] = '"';
		o[n + 2] = '\0';
		b->len += n + 2;
		return;
	}
	jbuf_ch(b, '"');
	jbuf_raw(b, s, n);
	jbuf_ch(b, '"');
}

/* Writes v as a JSON string, with "…" when it was cut. */
static void put_text(struct jbuf *b, const struct rview *v)
{
	jbuf_str(b, v->p, v->len);
	if (v->cut && !b->oom) {
		b->len--; /* reopen the string: it ends in '"' */
		LIT(b, REPLY_ELLIPSIS "\"");
	}
}

/* What the body writers write: the plan, and the pieces prepared for this
 * reply (NULL: written from the plan). */
struct rwrite {
	const struct rplan *pl;
	/* The recipient (t->to, to_len bytes) as a JSON string: to_len_ok()
	 * let through only "+" and digits or token bytes, none of which needs
	 * escaping, so it is copied between quotes (it is written twice per
	 * reply: jbuf_str's checks cost more). */
	size_t to_len;
	const char *text[RTXT_N]; /* put_text() of body, header, footer */
	size_t text_len[RTXT_N];
	const char *action;       /* the body from its "action" member to its end */
	size_t action_len;
};

/* Text f of the reply (v is its view in the plan). */
static void put_field(struct jbuf *b, const struct rwrite *w, int f, const struct rview *v)
{
	if (w->text[f])
		jbuf_raw(b, w->text[f], w->text_len[f]);
	else
		put_text(b, v);
}

/* "id":<id>,"title":<title> of a button or a list row (no braces). */
static void put_id_title(struct jbuf *b, const struct rview *id, const struct rview *title)
{
	LIT(b, "\"id\":");
	jbuf_str(b, id->p, id->len);
	LIT(b, ",\"title\":");
	put_text(b, title);
}

/* ACS {"kind":"text","text":...} */
static void acs_text_obj(struct jbuf *b, const struct rwrite *w, int f, const struct rview *v)
{
	LIT(b, "{\"kind\":\"text\",\"text\":");
	put_field(b, w, f, v);
	jbuf_ch(b, '}');
}

/* The ACS interactive body from ",\"action\"" to its end. */
static void acs_action(struct jbuf *b, const struct wa_reply *r, const struct rplan *pl)
{
	unsigned i, s;

	if (r->kind == REPLY_BUTTONS) {
		LIT(b, ",\"action\":{\"kind\":\"whatsAppButtonAction\",\"content\":{\"kind\":\"buttonSet\",\"buttons\":[");
		for (i = 0; i < pl->nbuttons; i++) {
			if (i > 0)
				jbuf_ch(b, ',');
			jbuf_ch(b, '{');
			put_id_title(b, &pl->button_id[i], &pl->button_title[i]);
			jbuf_ch(b, '}');
		}
		LIT(b, "]}}}}");
		return;
	}
	LIT(b, ",\"action\":{\"kind\":\"whatsAppListAction\",\"content\":{\"kind\":\"group\",\"title\":");
	put_text(b, &pl->list_button);
	LIT(b, ",\"groups\":[");
	for (s = 0; s < pl->nsections; s++) {
		const struct rsection *sec = &pl->sections[s];

		if (s > 0)
			jbuf_ch(b, ',');
		LIT(b, "{\"title\":");
		put_text(b, &sec->title);
		LIT(b, ",\"items\":[");
		for (i = sec->first; i < sec->first + sec->n; i++) {
			if (i > sec->first)
				jbuf_ch(b, ',');
			jbuf_ch(b, '{');
			put_id_title(b, &pl->row_id[i], &pl->row_title[i]);
			/* ACS requires a description: the title stands in. */
			LIT(b, ",\"description\":");
			put_text(b, pl->row_desc[i].len ? &pl->row_desc[i] : &pl->row_title[i]);
			jbuf_ch(b, '}');
		}
		LIT(b, "]}");
	}
	LIT(b, "]}}}}");
}

static void acs_body(struct jbuf *b, const struct reply_target *t, const struct wa_reply *r,
		     const struct rwrite *w)
{
	const struct rplan *pl = w->pl;

	LIT(b, "{\"channelRegistrationId\":");
	jbuf_str(b, t->business_id.p, t->business_id.len);
	LIT(b, ",\"to\":[");
	put_quoted(b, t->to, w->to_len);
	if (r->kind == REPLY_TEXT) {
		LIT(b, "],\"kind\":\"text\",\"content\":");
		put_field(b, w, RTXT_BODY, &pl->body);
		jbuf_ch(b, '}');
		return;
	}
	LIT(b, "],\"kind\":\"interactive\",\"interactiveMessage\":{");
	if (pl->header.len) {
		LIT(b, "\"header\":");
		acs_text_obj(b, w, RTXT_HEADER, &pl->header);
		jbuf_ch(b, ',');
	}
	LIT(b, "\"body\":");
	acs_text_obj(b, w, RTXT_BODY, &pl->body);
	if (pl->footer.len) {
		LIT(b, ",\"footer\":");
		acs_text_obj(b, w, RTXT_FOOTER, &pl->footer);
	}
	if (w->action)
		jbuf_raw(b, w->action, w->action_len);
	else
		acs_action(b, r, pl);
}

/* The Meta interactive body from ",\"action\"" to its end. */
static void meta_action(struct jbuf *b, const struct wa_reply *r, const struct rplan *pl)
{
	unsigned i, s;

	if (r->kind == REPLY_BUTTONS) {
		LIT(b, ",\"action\":{\"buttons\":[");
		for (i = 0; i < pl->nbuttons; i++) {
			if (i > 0)
				jbuf_ch(b, ',');
			LIT(b, "{\"type\":\"reply\",\"reply\":{");
			put_id_title(b, &pl->button_id[i], &pl->button_title[i]);
			LIT(b, "}}");
		}
		LIT(b, "]}}}");
		return;
	}
	LIT(b, ",\"action\":{\"button\":");
	put_text(b, &pl->list_button);
	LIT(b, ",\"sections\":[");
	for (s = 0; s < pl->nsections; s++) {
		const struct rsection *sec = &pl->sections[s];

		if (s > 0)
			jbuf_ch(b, ',');
		LIT(b, "{\"title\":");
		put_text(b, &sec->title);
		LIT(b, ",\"rows\":[");
		for (i = sec->first; i < sec->first + sec->n; i++) {
			if (i > sec->first)
				jbuf_ch(b, ',');
			jbuf_ch(b, '{');
			put_id_title(b, &pl->row_id[i], &pl->row_title[i]);
			if (pl->row_desc[i].len) {
				LIT(b, ",\"description\":");
				put_text(b, &pl->row_desc[i]);
			}
			jbuf_ch(b, '}');
		}
		LIT(b, "]}");
	}
	LIT(b, "]}}}");
}

static void meta_body(struct jbuf *b, const struct reply_target *t, const struct wa_reply *r,
		      const struct rwrite *w)
{
	const struct rplan *pl = w->pl;

	LIT(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":");
	put_quoted(b, t->to, w->to_len);
	if (r->kind == REPLY_TEXT) {
		LIT(b, ",\"type\":\"text\",\"text\":{\"preview_url\":false,\"body\":");
		put_field(b, w, RTXT_BODY, &pl->body);
		LIT(b, "}}");
		return;
	}
	if (r->kind == REPLY_BUTTONS)
		LIT(b, ",\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",");
	else
		LIT(b, ",\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",");
	if (pl->header.len) {
		LIT(b, "\"header\":{\"type\":\"text\",\"text\":");
		put_field(b, w, RTXT_HEADER, &pl->header);
		LIT(b, "},");
	}
	LIT(b, "\"body\":{\"text\":");
	put_field(b, w, RTXT_BODY, &pl->body);
	jbuf_ch(b, '}');
	if (pl->footer.len) {
		LIT(b, ",\"footer\":{\"text\":");
		put_field(b, w, RTXT_FOOTER, &pl->footer);
		jbuf_ch(b, '}');
	}
	if (w->action)
		jbuf_raw(b, w->action, w->action_len);
	else
		meta_action(b, r, pl);
}

/* --- Prepared replies --------------------------------------------------- */

/* A prepared piece of output: len bytes at off in reply_prep.out. */
struct rpiece {
	size_t off;
	size_t len; /* 0: not prepared */
};

struct reply_prep {
	struct wa_reply src;        /* what it was made from (src.prep NULL) */
	struct jbuf out;            /* the pieces, back to back */
	struct rpiece text[RTXT_N]; /* put_text() of body, header, footer */
	struct rpiece action[2];    /* acs_action(), meta_action() */
};

struct reply_prep *reply_prep_new(const struct wa_reply *r)
{
	struct reply_prep *pp = calloc(1, sizeof(*pp));
	const char *src[RTXT_N] = {r->body, r->header, r->footer};
	struct rview v[RTXT_N];
	struct rplan pl;
	int f;

	if (!pp)
		return NULL;
	pp->src = *r;
	pp->src.prep = NULL;
	jbuf_init(&pp->out);
	if (plan_texts(v, r, NULL, 0) != WB_OK || plan_static(&pl, r, NULL, 0) != WB_OK)
		goto fail;
	for (f = 0; f < RTXT_N; f++) {
		if (!src[f] || v[f].len == 0)
			continue; /* per reply, or not written */
		pp->text[f].off = pp->out.len;
		put_text(&pp->out, &v[f]);
		pp->text[f].len = pp->out.len - pp->text[f].off;
	}
	if (r->kind != REPLY_TEXT) {
		pp->action[0].off = pp->out.len;
		acs_action(&pp->out, r, &pl);
		pp->action[0].len = pp->out.len - pp->action[0].off;
		pp->action[1].off = pp->out.len;
		meta_action(&pp->out, r, &pl);
		pp->action[1].len = pp->out.len - pp->action[1].off;
	}
	if (pp->out.oom)
		goto fail;
	return pp;
fail:
	reply_prep_destroy(pp);
	return NULL;
}

void reply_prep_destroy(struct reply_prep *pp)
{
	if (!pp)
		return;
	jbuf_fini(&pp->out);
	free(pp);
}

/* true when r has the kind, buttons and list pp was made from (the same
 * pointers), which is what makes pp's action right for r. */
static bool prep_fits(const struct reply_prep *pp, const struct wa_reply *r)
{
	const struct wa_reply *s = &pp->src;
	unsigned i;

	if (r->kind != s->kind)
		return false;
	if (r->kind == REPLY_BUTTONS) {
		if (r->nbuttons != s->nbuttons)
			return false;
		for (i = 0; i < r->nbuttons && i < REPLY_MAX_BUTTONS; i++)
			if (r->buttons[i].id != s->buttons[i].id || r->buttons[i].title != s->buttons[i].title)
				return false;
	} else if (r->kind == REPLY_LIST) {
		if (r->list_button != s->list_button || r->nsections != s->nsections || r->nrows != s->nrows)
			return false;
		for (i = 0; i < r->nsections && i < REPLY_MAX_SECTIONS; i++)
			if (r->sections[i].title != s->sections[i].title || r->sections[i].nrows != s->sections[i].nrows)
				return false;
		for (i = 0; i < r->nrows && i < REPLY_MAX_ROWS; i++)
			if (r->rows[i].id != s->rows[i].id || r->rows[i].title != s->rows[i].title ||
			    r->rows[i].description != s->rows[i].description)
				return false;
	}
	return true;
}

/* What to write for r: pp's pieces where they apply (pp may be NULL). */
static void rwrite_init(struct rwrite *w, const struct rplan *pl, const struct wa_reply *r,
			const struct reply_prep *pp, enum wa_provider provider)
{
	const char *now[RTXT_N] = {r->body, r->header, r->footer};
	const char *then[RTXT_N];
	int f;

	memset(w, 0, sizeof(*w));
	w->pl = pl;
	if (!pp)
		return;
	then[RTXT_BODY] = pp->src.body;
	then[RTXT_HEADER] = pp->src.header;
	then[RTXT_FOOTER] = pp->src.footer;
	for (f = 0; f < RTXT_N; f++) {
		if (pp->text[f].len && now[f] == then[f]) {
			w->text[f] = pp->out.p + pp->text[f].off;
			w->text_len[f] = pp->text[f].len;
		}
	}
	if (r->kind != REPLY_TEXT) {
		const struct rpiece *a = &pp->action[provider == WA_PROVIDER_ACS ? 0 : 1];

		w->action = pp->out.p + a->off;
		w->action_len = a->len;
	}
}

void reply_id(struct jbuf *out, struct wa_str in_reply_to, unsigned seq)
{
	jbuf_raw(out, in_reply_to.p, in_reply_to.len);
	jbuf_ch(out, ':');
	jbuf_u64(out, seq);
}

wb_err_t reply_encode(struct jbuf *out, const struct reply_target *t, unsigned seq, const struct wa_reply *r,
		      char *errstr, size_t errstr_size)
{
	struct rplan pl;
	struct rwrite w;
	const struct reply_prep *pp;
	const char *api = NULL;
	size_t len0, id_at, id_len, to_len = 0, api_len = 0;
	wb_err_t err;

	if (!out || !t || !r)
		return reply_fail(errstr, errstr_size, "NULL argument");
	if (out->oom) {
		if (errstr && errstr_size > 0)
			snprintf(errstr, errstr_size, "output buffer already out of memory");
		return WB_ERR_NOMEM;
	}
	pp = r->prep && prep_fits(r->prep, r) ? r->prep : NULL;
	err = target_check(t, &to_len, &api, &api_len, errstr, errstr_size);
	if (err == WB_OK)
		err = reply_plan(&pl, r, pp != NULL, errstr, errstr_size);
	if (err != WB_OK)
		return err; /* nothing written */
	rwrite_init(&w, &pl, r, pp, t->provider);
	w.to_len = to_len;

	len0 = out->len;
	/* reply_id is in_reply_to ":" seq, written inside one JSON string. */
	LIT(out, "{\"reply_id\":");
	id_at = out->len;
	jbuf_str(out, t->in_reply_to.p, t->in_reply_to.len);
	id_len = out->len - id_at; /* quotes included */
	if (!out->oom) {
		out->len--; /* reopen the string */
		jbuf_ch(out, ':');
		jbuf_u64(out, seq);
		jbuf_ch(out, '"');
	}
	LIT(out, ",\"in_reply_to\":");
	/* the same escaped id again, copied rather than escaped twice (its
	 * closing quote was overwritten by ":seq") */
	if (!out->oom && jbuf_reserve(out, id_len))
		jbuf_raw(out, out->p + id_at, id_len - 1);
	jbuf_ch(out, '"');
	LIT(out, ",\"phone\":");
	put_quoted(out, t->to, to_len);
	if (t->provider == WA_PROVIDER_ACS)
		LIT(out, ",\"provider\":\"acs\"");
	else
		LIT(out, ",\"provider\":\"meta\"");
	if (t->conversation_step && t->conversation_step[0]) {
		LIT(out, ",\"conversation_step\":");
		jbuf_cstr_q(out, t->conversation_step);
	}
	LIT(out, ",\"seq\":");
	jbuf_u64(out, seq);
	if (t->provider == WA_PROVIDER_ACS) {
		LIT(out, ",\"request\":{\"method\":\"POST\",\"path\":\"/messages/notifications:send?api-version=");
		jbuf_raw(out, api, api_len); /* a token: nothing to escape */
		LIT(out, "\",\"body\":");
		acs_body(out, t, r, &w);
	} else {
		LIT(out, ",\"request\":{\"method\":\"POST\",\"path\":\"/");
		jbuf_raw(out, t->business_id.p, t->business_id.len); /* a token */
		LIT(out, "/messages\",\"body\":");
		meta_body(out, t, r, &w);
	}
	LIT(out, "}}");

	if (out->oom) {
		out->len = len0;
		if (out->cap > 0)
			out->p[len0] = '\0';
		out->oom = false; /* it was clear on entry; the content is whole again */
		if (errstr && errstr_size > 0)
			snprintf(errstr, errstr_size, "out of memory");
		return WB_ERR_NOMEM;
	}
	return WB_OK;
}
