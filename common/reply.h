/*
 * reply.h - outbound replies: a provider-neutral wa_reply -> the wa.outbound
 * envelope JSON with a ready-to-POST ACS or Meta body.
 *
 * The envelope and the bodies are the contract in
 * shared/reference/outbound-messages.md. WhatsApp's limits are enforced
 * here, at the last step, so nothing invalid is ever produced:
 *  - text fields over their limit (counted in Unicode code points) are cut
 *    at a code point boundary and end in "…" (U+2026), so the result has
 *    exactly the limit: text body 4096, interactive body 1024, header and
 *    footer 60, button title 20, list button 20, row title 24, row
 *    description 72, section title 24;
 *  - buttons beyond 3 and list rows beyond 10 (in total) are dropped;
 *  - ACS list rows without a description get their title as description
 *    (the ACS model requires one);
 *  - an empty body, no buttons on a button message, or no rows on a list is
 *    refused with WB_ERR_INVALID (the flow loader prevents these); so are
 *    an empty button or row title, an empty list button label, a button or
 *    row id that is empty, over its byte limit or has leading/trailing
 *    whitespace, two buttons with the same id or the same title (compared
 *    after cutting, as WhatsApp sees them), two rows with the same id, and
 *    more than REPLY_MAX_SECTIONS sections;
 *  - header, footer and description NULL or "" are omitted (on ACS a row
 *    description falls back to the row title); text replies ignore header,
 *    footer, buttons and list fields;
 *  - list sections take consecutive rows (sections[i].nrows each); rows past
 *    the 10th are dropped with the section claiming them, sections left
 *    empty are dropped, rows no section claims are WB_ERR_INVALID. With
 *    nsections 0 all rows form one section. A section title is always sent:
 *    a missing one is the list button label when there is one section, and
 *    WB_ERR_INVALID when there are several.
 * Owns nothing; pure functions writing into the caller's jbuf; any thread.
 */
#ifndef WB_REPLY_H
#define WB_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "event.h"
#include "jbuf.h"

#define REPLY_MAX_BUTTONS 3
#define REPLY_MAX_SECTIONS 10
#define REPLY_MAX_ROWS 10

/* WhatsApp limits, in code points. */
#define REPLY_LIMIT_TEXT 4096
#define REPLY_LIMIT_BODY 1024
#define REPLY_LIMIT_HEADER 60
#define REPLY_LIMIT_FOOTER 60
#define REPLY_LIMIT_BUTTON_TITLE 20
#define REPLY_LIMIT_LIST_BUTTON 20
#define REPLY_LIMIT_ROW_TITLE 24
#define REPLY_LIMIT_ROW_DESC 72
#define REPLY_LIMIT_SECTION_TITLE 24
/* Ids (bytes): button id 256, row id 200. Longer ids are refused, not cut:
 * a cut id would not match anything when it comes back. */
#define REPLY_LIMIT_BUTTON_ID 256
#define REPLY_LIMIT_ROW_ID 200

/* Default ACS api-version (the first with interactive messages). */
#define REPLY_ACS_API_VERSION "2025-01-15-preview"

enum reply_kind {
	REPLY_TEXT = 0,
	REPLY_BUTTONS,
	REPLY_LIST,
};

/* All strings are NUL-terminated UTF-8, borrowed for the call; optional ones
 * may be NULL or "". */
struct reply_button {
	const char *id;
	const char *title;
};

struct reply_row {
	const char *id;
	const char *title;
	const char *description; /* optional */
};

struct reply_section {
	const char *title;       /* optional with one section */
	unsigned nrows;          /* rows of this section: the next nrows of rows[] */
};

struct wa_reply {
	enum reply_kind kind;
	const char *body;        /* required: the text, or the interactive body */
	const char *header;      /* optional, interactive only */
	const char *footer;      /* optional, interactive only */
	struct reply_button buttons[REPLY_MAX_BUTTONS];
	unsigned nbuttons;
	const char *list_button; /* REPLY_LIST: label of the button opening the list */
	struct reply_section sections[REPLY_MAX_SECTIONS];
	unsigned nsections;
	struct reply_row rows[REPLY_MAX_ROWS];
	unsigned nrows;
	/* Optional, borrowed: the static parts of this reply encoded once (see
	 * reply_prep_new); NULL: everything is encoded per call. */
	const struct reply_prep *prep;
};

/*
 * A reply template encoded ahead of time. A flow sends the same buttons,
 * lists and often the same texts thousands of times; reply_prep_new()
 * validates and JSON-escapes them once, and reply_encode() then copies them
 * instead of escaping every id and title again (the donations list reply
 * has 30 strings). It is used for a reply only where that reply's kind,
 * buttons and list are the ones it was made from (same pointers) and, text
 * by text, where body, header or footer is the very pointer it was made
 * with, so the output is byte for byte what encoding from scratch writes.
 */
struct reply_prep;

/*
 * Prepares r (whose prep is ignored; body, header and footer may be NULL:
 * texts that change per reply are not prepared). The strings r points to
 * must stay unchanged while the result is in use. Returns NULL when out of
 * memory or when r's buttons or list would be refused (reply_encode then
 * refuses them itself). Caller owns the result: free with
 * reply_prep_destroy(). Any thread; the result is immutable and shareable.
 */
struct reply_prep *reply_prep_new(const struct wa_reply *r);
/* Frees p; NULL is allowed. */
void reply_prep_destroy(struct reply_prep *p);

/* Where a reply goes and what it answers. Borrowed for the call. */
struct reply_target {
	enum wa_provider provider;   /* ACS or META */
	const char *to;              /* conversation key: "+E.164", or a BSUID */
	struct wa_str business_id;   /* ACS channelRegistrationId / Meta phone_number_id */
	struct wa_str in_reply_to;   /* inbound event id, verbatim */
	const char *conversation_step; /* after the event; NULL or "" omits the field */
	const char *acs_api_version; /* NULL: REPLY_ACS_API_VERSION */
};

/*
 * Appends to out the envelope of reply r, the seq-th (0-based) reply to
 * t->in_reply_to. reply_id = in_reply_to + ":" + seq. On error out is
 * restored to its length before the call (and out->oom cleared when this
 * call set it) and errstr (may be NULL) says why, without phone or text.
 * Errors: WB_ERR_INVALID (see above, or a target without provider, with a
 * `to` that is neither "+" and 1-15 digits nor a BSUID of [A-Za-z0-9._-]
 * under EVENT_KEY_MAX bytes, without business id or event id, a Meta phone_number_id
 * or ACS api-version not made of [A-Za-z0-9._-]), WB_ERR_NOMEM (also when
 * out->oom is already set on entry).
 */
wb_err_t reply_encode(struct jbuf *out, const struct reply_target *t, unsigned seq, const struct wa_reply *r,
		      char *errstr, size_t errstr_size);

/* Appends the reply id of (in_reply_to, seq) to out, unquoted. */
void reply_id(struct jbuf *out, struct wa_str in_reply_to, unsigned seq);

#endif /* WB_REPLY_H */
