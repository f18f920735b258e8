/*
 * json.c - the validating single-pass JSON reader declared in json.h.
 *
 * One loop with an explicit stack of open containers (no recursion, so the
 * depth limit is the only thing deep input can reach). Strings are scanned
 * 16 bytes at a time with SSE2 where available: a block with no quote,
 * backslash, control byte or non-ASCII byte is skipped whole; the rest is
 * checked byte by byte (escapes, UTF-8 sequences per RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF).
 *
 * Owns: the token array of each json_doc (grown by doubling, kept between
 * parses, freed by json_doc_fini).
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "utf8.h"

#define JSON_DEFAULT_MAX_BYTES (4u * 1024u * 1024u)
#define JSON_DEFAULT_MAX_DEPTH 64u
#define JSON_DEFAULT_MAX_TOKENS 1000000u
/* Hard ceilings whatever the limits say: offsets are 32-bit, and the stack
 * of open containers lives on the C stack. */
#define JSON_HARD_MAX_BYTES (UINT32_MAX - 1u)
#define JSON_HARD_MAX_DEPTH 1024u

void json_doc_init(struct json_doc *d)
{
	memset(d, 0, sizeof(*d));
}

void json_doc_fini(struct json_doc *d)
{
	free(d->toks);
	memset(d, 0, sizeof(*d));
}

const char *json_error_str(enum json_error e)
{
	switch (e) {
	case JSON_OK: return "ok";
	case JSON_E_SYNTAX: return "syntax error";
	case JSON_E_UTF8: return "invalid UTF-8";
	case JSON_E_DEPTH: return "nested too deeply";
	case JSON_E_TOO_BIG: return "too large";
	case JSON_E_NOMEM: return "out of memory";
	}
	return "unknown error";
}

/*
 * Grows the token array so that at least one more token fits, within
 * max_tokens. On success *toks and *lim are the new array and the number of
 * tokens it may hold.
 */
static enum json_error jp_grow(struct json_doc *d, uint32_t max_tokens, struct json_tok **toks, uint32_t *lim)
{
	uint32_t ncap;
	struct json_tok *nt;

	if (d->cap >= max_tokens)
		return JSON_E_TOO_BIG;
	ncap = d->cap ? (d->cap > UINT32_MAX / 2 ? UINT32_MAX : d->cap * 2) : 64;
	if (ncap > max_tokens)
		ncap = max_tokens;
	nt = realloc(d->toks, (size_t)ncap * sizeof(*nt));
	if (!nt)
		return JSON_E_NOMEM;
	d->toks = nt;
	d->cap = ncap;
	*toks = nt;
	*lim = ncap;
	return JSON_OK;
}

static inline int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Four hex digits at s (the caller checked they are in bounds); -1 if not hex. */
static long hex4(const unsigned char *s)
{
	int a = hexval(s[0]), b = hexval(s[1]), c = hexval(s[2]), e = hexval(s[3]);

	if ((a | b | c | e) < 0)
		return -1;
	return (long)((a << 12) | (b << 8) | (c << 4) | e);
}

/*
 * Scans a string whose opening quote is at *ip - 1. On success *ip is
 * just past the closing quote and *escaped tells whether a backslash occurred.
 */
static inline enum json_error jp_string(const unsigned char *s, size_t n, size_t *ip, bool *escaped)
{
	size_t i = *ip;

	*escaped = false;
	for (;;) {
#if defined(__SSE2__)
		while (i + 16 <= n) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
			__m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
			__m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
			/* bytes < 0x20 (signed compare needs the high bit clear too) */
			__m128i ctl = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
			int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), ctl));

			/* ctl also flags every byte >= 0x80 (negative as signed). */
			if (m == 0) {
				i += 16;
				continue;
			}
			i += (size_t)__builtin_ctz((unsigned)m);
			break;
		}
#endif
		if (i >= n) {
			*ip = i;
			return JSON_E_SYNTAX; /* unterminated */
		}
		unsigned char c = s[i];

		if (c == '"') {
			*ip = i + 1;
			return JSON_OK;
		}
		if (c == '\\') {
			*escaped = true;
			if (i + 1 >= n) {
				*ip = i;
				return JSON_E_SYNTAX;
			}
			c = s[i + 1];
			if (c == 'u') {
				long cp;

				if (i + 6 > n || (cp = hex4(s + i + 2)) < 0) {
					*ip = i;
					return JSON_E_SYNTAX;
				}
				if (cp >= 0xDC00 && cp <= 0xDFFF) {
					*ip = i;
					return JSON_E_UTF8; /* lone low surrogate */
				}
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					long lo;

					if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
					    (lo = hex4(s + i + 8)) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
						*ip = i;
						return JSON_E_UTF8; /* high surrogate without its pair */
					}
					i += 12;
				} else {
					i += 6;
				}
				continue;
			}
			if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
			    c == 't') {
				i += 2;
				continue;
			}
			*ip = i;
			return JSON_E_SYNTAX;
		}
		if (c < 0x20) {
			*ip = i;
			return JSON_E_SYNTAX; /* raw control character */
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t bad, k = utf8_seq_len((const char *)s + i, n - i, &bad);

		if (k == 0) {
			*ip = i;
			return JSON_E_UTF8;
		}
		i += k;
	}
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Scans a number starting at *ip (RFC 8259 grammar). */
static inline enum json_error jp_number(const unsigned char *s, size_t n, size_t *ip)
{
	size_t i = *ip;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		goto bad;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < n && is_digit(s[i]))
			i++;
	} else {
		goto bad;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !is_digit(s[i]))
			goto bad;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			goto bad;
		while (i < n && is_digit(s[i]))
			i++;
	}
	*ip = i;
	return JSON_OK;
bad:
	*ip = i;
	return JSON_E_SYNTAX;
}

enum json_error json_parse(struct json_doc *d, const char *text, size_t len, const struct json_limits *lim)
{
	size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : JSON_DEFAULT_MAX_BYTES;
	unsigned max_depth = lim && lim->max_depth ? lim->max_depth : JSON_DEFAULT_MAX_DEPTH;
	uint32_t max_tokens = lim && lim->max_tokens ? lim->max_tokens : JSON_DEFAULT_MAX_TOKENS;
	const unsigned char *s = (const unsigned char *)text;
	uint32_t stack[JSON_HARD_MAX_DEPTH];
	unsigned depth = 0;
	bool in_obj = false;       /* the innermost open container is an object */
	struct json_tok *toks = d->toks;
	uint32_t nt = 0, tlim, t;
	size_t i = 0, n = len;
	enum json_error e = JSON_OK;
	unsigned char c;
	bool esc;

	if (max_bytes > JSON_HARD_MAX_BYTES)
		max_bytes = JSON_HARD_MAX_BYTES;
	if (max_depth > JSON_HARD_MAX_DEPTH)
		max_depth = JSON_HARD_MAX_DEPTH;
	tlim = d->cap < max_tokens ? d->cap : max_tokens;
	d->text = text;
	d->text_len = len;
	d->ntoks = 0;
	d->err = JSON_OK;
	d->err_offset = 0;
	if (len > max_bytes) {
		e = JSON_E_TOO_BIG;
		goto fail;
	}
	if (!text && len) {
		e = JSON_E_SYNTAX;
		goto fail;
	}

/* Appends a token of type ty starting at byte st; t is its index. */
#define JP_PUSH(ty, st)                                                                                            \
	do {                                                                                                       \
		if (nt >= tlim && (e = jp_grow(d, max_tokens, &toks, &tlim)) != JSON_OK)                          \
			goto fail;                                                                                 \
		t = nt++;                                                                                          \
		toks[t].type = (uint8_t)(ty);                                                                      \
		toks[t].flags = 0;                                                                                 \
		toks[t].start = (uint32_t)(st);                                                                    \
		toks[t].len = 0;                                                                                   \
		toks[t].count = 0;                                                                                 \
		toks[t].next = nt;                                                                                 \
	} while (0)
#define JP_WS()                                                                                                    \
	while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))                         \
		i++
#define JP_FAIL(err)                                                                                               \
	do {                                                                                                       \
		e = (err);                                                                                         \
		goto fail;                                                                                         \
	} while (0)

	/*
	 * The loop parses one value per turn, then consumes what may follow it
	 * (',' or a closing bracket), so at the top of each turn a value is due.
	 */
	for (;;) {
		JP_WS();
		if (i >= n)
			JP_FAIL(JSON_E_SYNTAX);
		c = s[i];

		/* In an object a value is preceded by its key and a colon. */
		if (in_obj) {
			if (c != '"')
				JP_FAIL(JSON_E_SYNTAX);
			JP_PUSH(JSON_STRING, i + 1);
			i++;
			if ((e = jp_string(s, n, &i, &esc)) != JSON_OK)
				goto fail;
			toks[t].len = (uint32_t)(i - 1 - toks[t].start);
			toks[t].flags = esc ? JSON_TOK_ESCAPED : 0;
			toks[stack[depth - 1]].count++;
			JP_WS();
			if (i >= n || s[i] != ':')
				JP_FAIL(JSON_E_SYNTAX);
			i++;
			JP_WS();
			if (i >= n)
				JP_FAIL(JSON_E_SYNTAX);
			c = s[i];
		} else if (depth) {
			toks[stack[depth - 1]].count++;
		}

		switch (c) {
		case '{':
		case '[':
			if (depth >= max_depth)
				JP_FAIL(JSON_E_DEPTH);
			JP_PUSH(c == '{' ? JSON_OBJECT : JSON_ARRAY, i);
			stack[depth++] = t;
			in_obj = c == '{';
			i++;
			JP_WS();
			/* An empty container closes at once; otherwise a value is due. */
			if (i < n && s[i] == (c == '{' ? '}' : ']'))
				goto close;
			continue;
		case '"':
			JP_PUSH(JSON_STRING, i + 1);
			i++;
			if ((e = jp_string(s, n, &i, &esc)) != JSON_OK)
				goto fail;
			toks[t].len = (uint32_t)(i - 1 - toks[t].start);
			toks[t].flags = esc ? JSON_TOK_ESCAPED : 0;
			break;
		case 't':
		case 'f':
		case 'n': {
			const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
			size_t ll = c == 'f' ? 5 : 4;

			if (n - i < ll || memcmp(s + i, lit, ll) != 0)
				JP_FAIL(JSON_E_SYNTAX);
			JP_PUSH(c == 't' ? JSON_TRUE : c == 'f' ? JSON_FALSE : JSON_NULL, i);
			toks[t].len = (uint32_t)ll;
			i += ll;
			break;
		}
		default:
			if (c != '-' && !is_digit(c))
				JP_FAIL(JSON_E_SYNTAX);
			JP_PUSH(JSON_NUMBER, i);
			if ((e = jp_number(s, n, &i)) != JSON_OK)
				goto fail;
			toks[t].len = (uint32_t)(i - toks[t].start);
			break;
		}

		/* A value is complete: what follows it? */
		for (;;) {
			JP_WS();
			if (depth == 0) {
				if (i != n)
					JP_FAIL(JSON_E_SYNTAX);
				d->ntoks = nt;
				return JSON_OK;
			}
			if (i >= n)
				JP_FAIL(JSON_E_SYNTAX);
			c = s[i];
			if (c == ',') {
				i++;
				break; /* the next value (or key) */
			}
			if (c != (in_obj ? '}' : ']'))
				JP_FAIL(JSON_E_SYNTAX);
close:
			t = stack[--depth];
			i++;
			toks[t].len = (uint32_t)(i - toks[t].start);
			toks[t].next = nt;
			in_obj = depth && toks[stack[depth - 1]].type == JSON_OBJECT;
		}
	}
#undef JP_PUSH
#undef JP_WS
#undef JP_FAIL

fail:
	d->err = e;
	d->err_offset = i;
	d->ntoks = 0;
	return e;
}

uint32_t json_first(const struct json_doc *d, uint32_t t)
{
	if (t >= d->ntoks)
		return JSON_NONE;
	if (d->toks[t].type != JSON_ARRAY && d->toks[t].type != JSON_OBJECT)
		return JSON_NONE;
	return d->toks[t].count ? t + 1 : JSON_NONE;
}

/*
 * Decodes one unit of a validated raw string at *sp (an escape or a run of
 * plain bytes up to the next backslash) into out (room for 4 bytes, or for a
 * plain run: the run is returned by pointer instead). Returns the number of
 * bytes produced; *plain is set to the run's start when the unit was plain.
 */
static size_t dec_unit(const unsigned char **sp, const unsigned char *end, unsigned char out[4],
		       const unsigned char **plain)
{
	const unsigned char *s = *sp;
	unsigned long cp;

	if (*s != '\\') {
		const unsigned char *q = memchr(s, '\\', (size_t)(end - s));

		if (!q)
			q = end;
		*plain = s;
		*sp = q;
		return (size_t)(q - s);
	}
	*plain = NULL;
	switch (s[1]) {
	case 'b': out[0] = '\b'; *sp = s + 2; return 1;
	case 'f': out[0] = '\f'; *sp = s + 2; return 1;
	case 'n': out[0] = '\n'; *sp = s + 2; return 1;
	case 'r': out[0] = '\r'; *sp = s + 2; return 1;
	case 't': out[0] = '\t'; *sp = s + 2; return 1;
	case 'u':
		break;
	default: out[0] = s[1]; *sp = s + 2; return 1; /* " \ / */
	}
	cp = (unsigned long)hex4(s + 2);
	*sp = s + 6;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		unsigned long lo = (unsigned long)hex4(s + 8);

		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		*sp = s + 12;
	}
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

bool json_str_eq(const struct json_doc *d, uint32_t t, const char *s, size_t len)
{
	const struct json_tok *k;
	const unsigned char *p, *end;
	size_t at = 0;

	if (t >= d->ntoks || d->toks[t].type != JSON_STRING)
		return false;
	k = &d->toks[t];
	p = (const unsigned char *)d->text + k->start;
	if (!(k->flags & JSON_TOK_ESCAPED))
		return k->len == len && memcmp(p, s, len) == 0;
	if (len > k->len)
		return false; /* decoding never lengthens */
	end = p + k->len;
	while (p < end) {
		unsigned char buf[4];
		const unsigned char *plain;
		size_t n = dec_unit(&p, end, buf, &plain);

		if (n > len - at || memcmp(s + at, plain ? plain : buf, n) != 0)
			return false;
		at += n;
	}
	return at == len;
}

const char *json_str_raw(const struct json_doc *d, uint32_t t, size_t *len)
{
	*len = d->toks[t].len;
	return d->text + d->toks[t].start;
}

size_t json_str_decode(const struct json_doc *d, uint32_t t, char *out, size_t cap)
{
	const struct json_tok *k = &d->toks[t];
	const unsigned char *p = (const unsigned char *)d->text + k->start, *end = p + k->len;
	size_t at = 0;

	if (cap == 0)
		return (size_t)-1;
	if (k->type != JSON_STRING) {
		out[0] = '\0';
		return (size_t)-1;
	}
	while (p < end) {
		unsigned char buf[4];
		const unsigned char *plain;
		size_t n = dec_unit(&p, end, buf, &plain);

		if (n >= cap - at) {
			out[0] = '\0';
			return (size_t)-1;
		}
		memcpy(out + at, plain ? plain : buf, n);
		at += n;
	}
	out[at] = '\0';
	return at;
}

static uint32_t get_member(const struct json_doc *d, uint32_t obj, const char *key)
{
	size_t klen = strlen(key);
	uint32_t i, c, found = JSON_NONE;

	if (obj >= d->ntoks || d->toks[obj].type != JSON_OBJECT)
		return JSON_NONE;
	c = obj + 1;
	for (i = 0; i < d->toks[obj].count; i++) {
		if (json_str_eq(d, c, key, klen))
			found = c + 1;
		c = d->toks[c + 1].next;
	}
	return found;
}

uint32_t json_get(const struct json_doc *d, uint32_t obj, const char *key)
{
	return get_member(d, obj, key);
}

uint32_t json_get_type(const struct json_doc *d, uint32_t obj, const char *key, enum json_kind type)
{
	uint32_t v = get_member(d, obj, key);

	if (v == JSON_NONE || d->toks[v].type != type)
		return JSON_NONE;
	return v;
}

bool json_num_i64(const struct json_doc *d, uint32_t t, int64_t *out)
{
	const struct json_tok *k;
	const char *s;
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0, lim;

	if (t >= d->ntoks || d->toks[t].type != JSON_NUMBER)
		return false;
	k = &d->toks[t];
	s = d->text + k->start;
	if (s[0] == '-') {
		neg = true;
		i = 1;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
	for (; i < k->len; i++) {
		unsigned dg;

		if (!is_digit((unsigned char)s[i]))
			return false; /* fraction or exponent */
		dg = (unsigned)(s[i] - '0');
		if (v > (lim - dg) / 10)
			return false;
		v = v * 10 + dg;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return true;
}

bool json_num_f64(const struct json_doc *d, uint32_t t, double *out)
{
	char buf[128];
	const struct json_tok *k;

	if (t >= d->ntoks || d->toks[t].type != JSON_NUMBER)
		return false;
	k = &d->toks[t];
	if (k->len >= sizeof(buf))
		return false;
	memcpy(buf, d->text + k->start, k->len);
	buf[k->len] = '\0';
	*out = strtod(buf, NULL);
	return true;
}

const char *json_raw(const struct json_doc *d, uint32_t t, size_t *len)
{
	const struct json_tok *k = &d->toks[t];

	if (k->type == JSON_STRING) {
		*len = (size_t)k->len + 2;
		return d->text + k->start - 1;
	}
	*len = k->len;
	return d->text + k->start;
}
