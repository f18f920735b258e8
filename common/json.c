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

/* The string scanner's fast path is used in two places in json_parse(); a
 * call there (saving registers) costs more than the scan of a short key.
 * Its slow path stays a call, out of the way of the hot loop's registers. */
#if defined(__GNUC__)
#define JP_HOT static inline __attribute__((always_inline))
#define JP_COLD static __attribute__((noinline))
#else
#define JP_HOT static inline
#define JP_COLD static
#endif

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

#if defined(__SSE2__)
/*
 * Bit k set when byte k of the 16 at p needs a look: a quote, a backslash,
 * a control byte, or (negative as signed, so below 0x20 too) any byte
 * >= 0x80.
 */
static inline unsigned jp_special16(const unsigned char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
	__m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
	__m128i ctl = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), ctl));
}

/*
 * The same for the fewer than 16 bytes from i to the end of a text of n >= 16
 * bytes: the text's last 16 bytes are loaded (never past its end) and the
 * bits of those before i shifted out.
 */
static inline unsigned jp_special_tail(const unsigned char *s, size_t n, size_t i)
{
	return jp_special16(s + n - 16) >> (16 - (n - i));
}
#endif

/*
 * Scans the rest of a string from *ip, where jp_string() met a byte that
 * needs more than a glance (an escape, a non-ASCII or control byte), or the
 * last 15 bytes of the text. On success *ip is just past the closing quote;
 * *escaped is set when a backslash occurs.
 */
JP_COLD enum json_error jp_string_slow(const unsigned char *s, size_t n, size_t *ip, bool *escaped)
{
	size_t i = *ip;

	for (;;) {
#if defined(__SSE2__)
		/* skip plain bytes: 16 at a time, then the tail in one step */
		for (;;) {
			unsigned m;

			if (i + 16 <= n) {
				m = jp_special16(s + i);
			} else if (i < n && n >= 16) {
				m = jp_special_tail(s, n, i);
				if (m == 0) {
					i = n; /* unterminated */
					break;
				}
			} else {
				break;
			}
			if (m == 0) {
				i += 16;
				continue;
			}
			i += (size_t)__builtin_ctz(m);
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
		/* Two-byte sequences (Latin accents: most non-ASCII text here)
		 * inline; the same test as utf8_seq_len() makes for them. */
		if (c >= 0xC2 && c <= 0xDF && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
			i += 2;
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

/*
 * Scans a string whose opening quote is at *ip - 1. On success *ip is
 * just past the closing quote and *escaped tells whether a backslash
 * occurred. Inline, the common case only: 16 plain bytes at a time up to
 * the closing quote; anything else goes to jp_string_slow(), kept out of
 * json_parse() so that its registers stay free for the hot path.
 */
JP_HOT enum json_error jp_string(const unsigned char *s, size_t n, size_t *ip, bool *escaped)
{
	size_t i = *ip;

	*escaped = false;
#if defined(__SSE2__)
	unsigned m;

	for (;;) {
		if (i + 16 <= n) {
			m = jp_special16(s + i);
			if (m == 0) {
				i += 16;
				continue;
			}
		} else if (i < n && n >= 16) {
			/* the string's end is in the text's last 15 bytes */
			m = jp_special_tail(s, n, i);
			if (m == 0)
				break; /* unterminated: jp_string_slow() says so */
		} else {
			break;
		}
		i += (size_t)__builtin_ctz(m);
		if (s[i] == '"') {
			*ip = i + 1;
			return JSON_OK;
		}
		break;
	}
#endif
	*ip = i;
	return jp_string_slow(s, n, ip, escaped);
}

static inline bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * Index of the first byte after i that is not whitespace (n when none);
 * s[i] is whitespace. Callers look at one byte before calling: compact JSON,
 * which is what producers send, has no whitespace between tokens.
 * Pretty-printed JSON has single spaces (after a colon), checked first, and
 * runs of indentation, skipped 16 bytes at a time with SSE2.
 */
static size_t jp_skip_ws(const unsigned char *s, size_t n, size_t i)
{
	i++;
	if (i < n && !is_ws(s[i]))
		return i;
#if defined(__SSE2__)
	while (i + 16 <= n) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i w = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
						      _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
					 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
						      _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))));
		unsigned m = ~(unsigned)_mm_movemask_epi8(w) & 0xFFFFu;

		if (m)
			return i + (size_t)__builtin_ctz(m);
		i += 16;
	}
#endif
	while (i < n && is_ws(s[i]))
		i++;
	return i;
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
	uint32_t cnt = 0;          /* children of the innermost open container so far */
	struct json_tok *toks = d->toks;
	uint32_t nt = 0, tlim, t;
	size_t i = 0, n = len, st;
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

/* Makes room for one more token (index nt), within max_tokens. */
#define JP_ROOM()                                                                                                  \
	do {                                                                                                       \
		if (nt >= tlim && (e = jp_grow(d, max_tokens, &toks, &tlim)) != JSON_OK)                          \
			goto fail;                                                                                 \
	} while (0)
/* Stores a finished scalar token (index nt) and counts it. */
#define JP_SCALAR(ty, fl, st_, len_)                                                                               \
	do {                                                                                                       \
		t = nt++;                                                                                          \
		toks[t].type = (uint8_t)(ty);                                                                      \
		toks[t].flags = (uint8_t)(fl);                                                                     \
		toks[t].start = (uint32_t)(st_);                                                                   \
		toks[t].len = (uint32_t)(len_);                                                                    \
		toks[t].count = 0;                                                                                 \
		toks[t].next = nt;                                                                                 \
	} while (0)
/* c = the next byte that is not whitespace, at i; the end of the text here
 * is a syntax error. One compare decides in the common case (no space). */
#define JP_NEXT()                                                                                                  \
	do {                                                                                                       \
		if (i >= n)                                                                                        \
			JP_FAIL(JSON_E_SYNTAX);                                                                    \
		c = s[i];                                                                                          \
		if (c <= ' ' && is_ws(c)) {                                                                        \
			i = jp_skip_ws(s, n, i);                                                                   \
			if (i >= n)                                                                                \
				JP_FAIL(JSON_E_SYNTAX);                                                            \
			c = s[i];                                                                                  \
		}                                                                                                  \
	} while (0)
#define JP_FAIL(err)                                                                                               \
	do {                                                                                                       \
		e = (err);                                                                                         \
		goto fail;                                                                                         \
	} while (0)

	/*
	 * A state machine on labels: "value" parses the value starting with
	 * byte c at i, "key" the key at c (then its colon, then goes to
	 * "value"), "after" what follows a complete value (',' or a closing
	 * bracket). A container's child count is kept in cnt while it is the
	 * innermost one (parked in its .count while a child container is open),
	 * not read and written back through the token for every child.
	 */
	JP_NEXT();
value:
	cnt++;
	switch (c) {
	case '{':
	case '[':
		if (depth >= max_depth)
			JP_FAIL(JSON_E_DEPTH);
		JP_ROOM();
		t = nt++;
		toks[t].type = (uint8_t)(c == '{' ? JSON_OBJECT : JSON_ARRAY);
		toks[t].flags = 0;
		toks[t].start = (uint32_t)i;
		if (depth)
			toks[stack[depth - 1]].count = cnt;
		stack[depth++] = t;
		cnt = 0;
		in_obj = c == '{';
		i++;
		JP_NEXT();
		/* An empty container closes at once; otherwise a value (or key) is due. */
		if (c == (in_obj ? '}' : ']'))
			goto close;
		if (in_obj)
			goto key;
		goto value;
	case '"':
		JP_ROOM();
		st = ++i;
		if ((e = jp_string(s, n, &i, &esc)) != JSON_OK)
			goto fail;
		JP_SCALAR(JSON_STRING, esc ? JSON_TOK_ESCAPED : 0, st, i - 1 - st);
		goto after;
	case 't':
		if (n - i < 4 || memcmp(s + i, "true", 4) != 0)
			JP_FAIL(JSON_E_SYNTAX);
		JP_ROOM();
		JP_SCALAR(JSON_TRUE, 0, i, 4);
		i += 4;
		goto after;
	case 'f':
		if (n - i < 5 || memcmp(s + i, "false", 5) != 0)
			JP_FAIL(JSON_E_SYNTAX);
		JP_ROOM();
		JP_SCALAR(JSON_FALSE, 0, i, 5);
		i += 5;
		goto after;
	case 'n':
		if (n - i < 4 || memcmp(s + i, "null", 4) != 0)
			JP_FAIL(JSON_E_SYNTAX);
		JP_ROOM();
		JP_SCALAR(JSON_NULL, 0, i, 4);
		i += 4;
		goto after;
	default:
		if (c != '-' && !is_digit(c))
			JP_FAIL(JSON_E_SYNTAX);
		JP_ROOM();
		st = i;
		if ((e = jp_number(s, n, &i)) != JSON_OK)
			goto fail;
		JP_SCALAR(JSON_NUMBER, 0, st, i - st);
		goto after;
	}

key:
	/* In an object a value is preceded by its key and a colon. */
	if (c != '"')
		JP_FAIL(JSON_E_SYNTAX);
	JP_ROOM();
	st = ++i;
	if ((e = jp_string(s, n, &i, &esc)) != JSON_OK)
		goto fail;
	JP_SCALAR(JSON_STRING, esc ? JSON_TOK_ESCAPED : 0, st, i - 1 - st);
	/* compact JSON: colon and value right after the key (no byte above
	 * ' ' is whitespace); the general steps below give the same result */
	if (i + 1 < n && s[i] == ':' && s[i + 1] > ' ') {
		c = s[++i];
		goto value;
	}
	JP_NEXT();
	if (c != ':')
		JP_FAIL(JSON_E_SYNTAX);
	i++;
	JP_NEXT();
	goto value;

after:
	/* A value is complete: what follows it? */
	if (depth == 0) {
		if (i < n && is_ws(s[i]))
			i = jp_skip_ws(s, n, i);
		if (i != n)
			JP_FAIL(JSON_E_SYNTAX);
		d->ntoks = nt;
		return JSON_OK;
	}
	if (i + 1 < n && s[i] == ',' && s[i + 1] > ' ') { /* compact, as above */
		c = s[++i];
		if (in_obj)
			goto key;
		goto value;
	}
	JP_NEXT();
	if (c == ',') {
		i++;
		JP_NEXT();
		if (in_obj)
			goto key;
		goto value;
	}
	if (c != (in_obj ? '}' : ']'))
		JP_FAIL(JSON_E_SYNTAX);
close:
	t = stack[--depth];
	i++;
	toks[t].len = (uint32_t)(i - toks[t].start);
	toks[t].count = cnt;
	toks[t].next = nt;
	if (depth) {
		uint32_t p = stack[depth - 1];

		cnt = toks[p].count;
		in_obj = toks[p].type == JSON_OBJECT;
	}
	goto after;
#undef JP_ROOM
#undef JP_SCALAR
#undef JP_NEXT
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
		const struct json_tok *k = &d->toks[c];

		/* keys without escapes (nearly all) compared here, not through
		 * a json_str_eq() call per member */
		if (k->flags & JSON_TOK_ESCAPED ? json_str_eq(d, c, key, klen)
						 : k->len == klen && memcmp(d->text + k->start, key, klen) == 0)
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
