/*
 * json.h - a fast, validating JSON reader for untrusted input.
 *
 * json_parse() checks the whole text in one pass (RFC 8259 grammar, UTF-8,
 * a nesting limit, a token limit) and records every value as a token in a
 * flat array that the caller's struct json_doc owns and reuses from one parse
 * to the next: no allocation per value, strings are not copied. Accessors
 * then find object members, compare and decode strings, and read numbers.
 *
 * Why not json-c: on this project's 2-core VM json-c parses an 878-byte ACS
 * event in 6.8 us and cJSON in 2.9 us; the hot path (decode + one flow step)
 * has about 5 us per event in all. json-c stays in use where speed does not
 * matter (flow files, configuration).
 *
 * Token layout (document order): a container token is followed by its
 * children; an object's children alternate key (a string token) and value.
 * Every token has .next, the index just past its last descendant, so a
 * value is skipped in O(1).
 *
 * Threads: a json_doc is used by one thread at a time. The text passed to
 * json_parse() is borrowed and must outlive every use of the doc's tokens.
 */
#ifndef WB_JSON_H
#define WB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_kind {
	JSON_NULL = 0,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/* Why a parse failed. */
enum json_error {
	JSON_OK = 0,
	JSON_E_SYNTAX,     /* not JSON (grammar), or trailing bytes after the value */
	JSON_E_UTF8,       /* a string holds invalid UTF-8 or a lone surrogate escape */
	JSON_E_DEPTH,      /* nested deeper than max_depth */
	JSON_E_TOO_BIG,    /* more than max_bytes of text, or more than max_tokens values */
	JSON_E_NOMEM,      /* the token array could not grow */
};

/* A token index that names no token (member absent, end of children). */
#define JSON_NONE UINT32_MAX

/* Token flag: the string has at least one backslash escape. */
#define JSON_TOK_ESCAPED 0x01u

struct json_tok {
	uint8_t type;   /* enum json_kind */
	uint8_t flags;  /* JSON_TOK_* */
	uint32_t start; /* byte offset in the text: a string's first byte after
	                   the opening quote; otherwise the value's first byte */
	uint32_t len;   /* strings: raw bytes between the quotes (escapes not
	                   decoded); otherwise all bytes of the value, brackets
	                   of a container included */
	uint32_t count; /* arrays: elements; objects: members (key+value pairs) */
	uint32_t next;  /* index of the token after this value and its children */
};

/* Limits applied by json_parse(); zero fields take the defaults. */
struct json_limits {
	size_t max_bytes;    /* default 4 MiB */
	unsigned max_depth;  /* default 64: "[[[...]]]" nested deeper fails */
	uint32_t max_tokens; /* default 1,000,000 */
};

struct json_doc {
	const char *text;       /* borrowed: the parsed text */
	size_t text_len;
	struct json_tok *toks;  /* owned, reused; toks[0] is the root */
	uint32_t ntoks;
	uint32_t cap;
	enum json_error err;    /* of the last parse */
	size_t err_offset;      /* byte offset where the last parse failed */
};

void json_doc_init(struct json_doc *d);
void json_doc_fini(struct json_doc *d);

/*
 * Parses len bytes at text (no NUL needed) into d, replacing what d held.
 * Leading and trailing whitespace is allowed, anything else after the value
 * is JSON_E_SYNTAX. lim may be NULL (defaults). On failure d->err and
 * d->err_offset say why and where, and d holds no tokens.
 */
enum json_error json_parse(struct json_doc *d, const char *text, size_t len, const struct json_limits *lim);

/* "syntax error", "invalid UTF-8", ... for e. Never NULL. */
const char *json_error_str(enum json_error e);

/* Type of token t. t must be a valid index. */
static inline enum json_kind json_type_of(const struct json_doc *d, uint32_t t)
{
	return (enum json_kind)d->toks[t].type;
}

/*
 * Value of member key (NUL-terminated, compared byte for byte with the
 * decoded key) in object obj; JSON_NONE when obj is not an object or has no
 * such member. With duplicate keys the last one wins, as in most parsers.
 */
uint32_t json_get(const struct json_doc *d, uint32_t obj, const char *key);

/* json_get() that also requires the value's type; JSON_NONE otherwise. */
uint32_t json_get_type(const struct json_doc *d, uint32_t obj, const char *key, enum json_kind type);

/* First child of container t (for objects: the first key), or JSON_NONE. */
uint32_t json_first(const struct json_doc *d, uint32_t t);

/* The value after value t in its container: for arrays the next element,
 * for object keys pass the value token (key + 1) to reach the next key.
 * Callers count with .count; this does not know where the parent ends. */
static inline uint32_t json_after(const struct json_doc *d, uint32_t t)
{
	return d->toks[t].next;
}

/* true when string token t decodes to exactly the len bytes at s. */
bool json_str_eq(const struct json_doc *d, uint32_t t, const char *s, size_t len);

/*
 * The raw bytes of string token t (between the quotes, escapes as written)
 * through *len; when the token has no escapes this is already the decoded
 * UTF-8 value. Returns a pointer into the parsed text.
 */
const char *json_str_raw(const struct json_doc *d, uint32_t t, size_t *len);

/*
 * Decodes string token t (escapes resolved, surrogate pairs joined, output
 * UTF-8) into out, NUL-terminated. The decoded value is never longer than
 * the raw one, so cap >= toks[t].len + 1 always suffices. Returns the decoded
 * length, or (size_t)-1 when cap is too small (out then holds "").
 */
size_t json_str_decode(const struct json_doc *d, uint32_t t, char *out, size_t cap);

/*
 * Number token t as a whole number. false when t is not a number or not an
 * integer in range (fractions and exponents are refused, "1e3" too).
 */
bool json_num_i64(const struct json_doc *d, uint32_t t, int64_t *out);

/* Number token t as a double (strtod semantics). false when not a number. */
bool json_num_f64(const struct json_doc *d, uint32_t t, double *out);

/* The whole text of value t, as written, for copying it verbatim
 * (containers included). */
const char *json_raw(const struct json_doc *d, uint32_t t, size_t *len);

#endif /* WB_JSON_H */
