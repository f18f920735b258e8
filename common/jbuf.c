/*
 * jbuf.c - growable output buffer and JSON token writers (see jbuf.h).
 *
 * Owns only b->p. Capacity doubles from JBUF_MIN_CAP up to JBUF_MAX, so n
 * appends cost O(n) copies in total. Allocation failure is sticky (b->oom):
 * every later write is a no-op, so callers check once at the end.
 * jbuf_str is the hot path: bytes that need no escaping, valid UTF-8
 * included, are found with one table lookup each and copied in runs with
 * memcpy; escapes and U+FFFD are written one at a time. No snprintf.
 * Thread: one thread per jbuf; no global mutable state.
 */
#include "jbuf.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "utf8.h"

/* First allocation: enough for most keys and short envelopes. */
#define JBUF_MIN_CAP 256

void jbuf_init(struct jbuf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void jbuf_fini(struct jbuf *b)
{
	free(b->p);
	jbuf_init(b);
}

void jbuf_reset(struct jbuf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->cap > 0)
		b->p[0] = '\0';
}

bool jbuf_reserve(struct jbuf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return false;
	/* len + n + 1 <= JBUF_MAX, written so that it cannot overflow. */
	if (b->len >= JBUF_MAX || n > JBUF_MAX - 1 - b->len) {
		b->oom = true;
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap < JBUF_MIN_CAP ? JBUF_MIN_CAP : b->cap;
	while (cap < need)
		cap *= 2; /* cap <= JBUF_MAX / 2 here while < need: no overflow */
	if (cap > JBUF_MAX)
		cap = JBUF_MAX;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	if (b->cap == 0)
		p[0] = '\0';
	b->p = p;
	b->cap = cap;
	return true;
}

/* Appends n bytes, growing b as needed; a no-op once b->oom is set.
 * (cap > len whenever cap > 0, so cap - len cannot wrap.) */
static inline void jb_put(struct jbuf *b, const void *s, size_t n)
{
	if (b->oom || (n >= b->cap - b->len && !jbuf_reserve(b, n)))
		return;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jbuf_raw_grow(struct jbuf *b, const char *s, size_t len)
{
	jb_put(b, s, len);
}

/*
 * Byte classes for jbuf_str: JB_PLAIN is copied as is; JB_ESC is an ASCII
 * byte that needs a backslash escape (controls, '"', '\\'); JB_HIGH starts
 * (or wrongly continues) a multi-byte sequence and needs validating.
 */
enum { JB_PLAIN = 0, JB_ESC = 1, JB_HIGH = 2 };

#define JB_R4(v) v, v, v, v
#define JB_R16(v) JB_R4(v), JB_R4(v), JB_R4(v), JB_R4(v)
static const unsigned char jb_class[256] = {
	JB_R16(JB_ESC), JB_R16(JB_ESC),                       /* 0x00-0x1f */
	JB_PLAIN, JB_PLAIN, JB_ESC, JB_PLAIN,                 /* ' ' '!' '"' '#' */
	JB_R4(JB_PLAIN), JB_R4(JB_PLAIN), JB_R4(JB_PLAIN),    /* 0x24-0x2f */
	JB_R16(JB_PLAIN),                                     /* 0x30-0x3f */
	JB_R16(JB_PLAIN),                                     /* 0x40-0x4f */
	JB_R4(JB_PLAIN), JB_R4(JB_PLAIN), JB_R4(JB_PLAIN),    /* 0x50-0x5b */
	JB_ESC, JB_PLAIN, JB_PLAIN, JB_PLAIN,                 /* '\\' ] ^ _ */
	JB_R16(JB_PLAIN), JB_R16(JB_PLAIN),                   /* 0x60-0x7f */
	JB_R16(JB_HIGH), JB_R16(JB_HIGH), JB_R16(JB_HIGH), JB_R16(JB_HIGH),
	JB_R16(JB_HIGH), JB_R16(JB_HIGH), JB_R16(JB_HIGH), JB_R16(JB_HIGH),
};
#undef JB_R16
#undef JB_R4

static const char jb_hex[] = "0123456789abcdef";

/* Escape of an ASCII byte of class JB_ESC, into e; returns its length. */
static size_t jb_escape(unsigned char c, char e[6])
{
	e[0] = '\\';
	switch (c) {
	case '"': e[1] = '"'; return 2;
	case '\\': e[1] = '\\'; return 2;
	case '\b': e[1] = 'b'; return 2;
	case '\f': e[1] = 'f'; return 2;
	case '\n': e[1] = 'n'; return 2;
	case '\r': e[1] = 'r'; return 2;
	case '\t': e[1] = 't'; return 2;
	default:
		e[1] = 'u';
		e[2] = '0';
		e[3] = '0';
		e[4] = jb_hex[c >> 4];
		e[5] = jb_hex[c & 0xf];
		return 6;
	}
}

/*
 * Length of the well-formed UTF-8 sequence at q (avail bytes readable), or
 * 0 when it is ill-formed or U+2028/U+2029 (which jbuf_str escapes). Two-byte
 * sequences (accented Latin letters, most of the non-ASCII text here) are
 * checked inline; the rest go to utf8_seq_len().
 */
static inline size_t jb_seq_len(const unsigned char *q, size_t avail)
{
	size_t k, bad;

	if (q[0] >= 0xc2 && q[0] <= 0xdf && avail >= 2 && (q[1] & 0xc0) == 0x80)
		return 2;
	k = utf8_seq_len((const char *)q, avail, &bad);
	if (k == 3 && q[0] == 0xe2 && q[1] == 0x80 && (q[2] & 0xfe) == 0xa8)
		return 0;
	return k;
}

#if defined(__SSE2__)
/*
 * Checks s[base + from, base + to) in the 16-byte block v holding
 * s[base, base + 16) (to <= 16; bytes from `to` on are ignored). Returns
 * the offset in s of the first byte jbuf_str cannot copy as is, with *stop
 * set; or, all plain, where the next block starts: base + to, or past a
 * multi-byte sequence that runs over the block's end.
 */
static inline size_t jb_block(const unsigned char *s, size_t len, size_t base, __m128i v, unsigned from,
			      unsigned to, bool *stop)
{
	unsigned range = (to >= 16 ? 0xffffu : (1u << to) - 1u) & ~((1u << from) - 1u);
	unsigned hi = (unsigned)_mm_movemask_epi8(v) & range;
	unsigned sp = ((unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
								 _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))) |
		       ((unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))) & ~hi)) &
		      range;
	unsigned lim = sp ? (unsigned)__builtin_ctz(sp) : to;
	unsigned hm = hi & ((1u << lim) - 1u);

	if (hm) {
		/* Two-byte sequences (the accented letters of most non-ASCII
		 * text here) are checked for the whole block at once: a lead
		 * byte C2..DF with a continuation byte 80..BF next to it is a
		 * valid sequence, so the loop below sees only the other high
		 * bytes (it took ~25 instructions for each). Signed compares:
		 * bytes >= 0x80 are negative. The loop still meets them in
		 * order: what lies between its stops is ASCII or such pairs. */
		unsigned lead2 = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((char)0xc1)),
									  _mm_cmplt_epi8(v, _mm_set1_epi8((char)0xe0)))) &
				 hm;
		unsigned cont = (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8((char)0xc0))) & hm;
		unsigned pairs = lead2 & (cont >> 1);

		hm &= ~(pairs | pairs << 1);
	}
	while (hm) {
		unsigned p = (unsigned)__builtin_ctz(hm);
		size_t k = jb_seq_len(s + base + p, len - base - p);

		if (k == 0) {
			*stop = true;
			return base + p;
		}
		if (p + k >= to) {
			*stop = false;
			return base + p + k;
		}
		hm &= ~(((1u << k) - 1u) << p);
	}
	*stop = sp != 0;
	return base + lim;
}
#endif

#if defined(__SSE2__)
/* true when the 16 bytes of v are printable ASCII other than '"' and '\\'
 * (a control byte or a byte >= 0x80, negative as signed, is < 0x20). */
static inline bool jb_ascii_block(__m128i v)
{
	return !_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
					       _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
							    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
}

static inline uint64_t jb_load8(const unsigned char *s)
{
	uint64_t w;

	memcpy(&w, s, 8);
	return w;
}
#endif

/*
 * A prefix of s made of printable ASCII other than '"' and '\\' only: len
 * when all of s is, else a multiple of 16 (where jb_plain_prefix() takes
 * over, at a character boundary). Most strings written are ids, phones,
 * steps and keys of that kind: checking them for that alone, without
 * jb_plain_prefix()'s UTF-8 bookkeeping, took jbuf_str from 144 to 74
 * instructions on a 13-byte phone, from 178 to 122 on a 36-byte event id. A string of 8 to 16 bytes is checked as its
 * first and last 8 bytes (overlapping): no byte outside it is read.
 */
static inline size_t jb_ascii_prefix(const unsigned char *s, size_t len)
{
#if defined(__SSE2__)
	size_t i;

	if (len < 16) {
		if (len < 8)
			return 0;
		return jb_ascii_block(_mm_set_epi64x((long long)jb_load8(s + len - 8), (long long)jb_load8(s)))
			       ? len
			       : 0;
	}
	for (i = 0; i + 16 <= len; i += 16)
		if (!jb_ascii_block(_mm_loadu_si128((const __m128i *)(const void *)(s + i))))
			return i;
	if (i < len && jb_ascii_block(_mm_loadu_si128((const __m128i *)(const void *)(s + len - 16))))
		return len;
	return i;
#else
	(void)s;
	(void)len;
	return 0;
#endif
}

/*
 * Length of the longest prefix of s that jbuf_str copies as it is: printable
 * ASCII other than '"' and '\\', and well-formed UTF-8 other than U+2028 and
 * U+2029. Blocks of 16 bytes are checked with SSE2, their multi-byte
 * sequences validated in place, without a pass per byte. The last partial
 * block is checked the same way (re-reading the end of the string, or a
 * copy of a short string): most strings written are short ids, phones and
 * titles, which a byte loop took about 7 instructions a byte to check.
 */
static size_t jb_plain_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0;
#if defined(__SSE2__)
	bool stop;

	while (i + 16 <= len) {
		i = jb_block(s, len, i, _mm_loadu_si128((const __m128i *)(const void *)(s + i)), 0, 16, &stop);
		if (stop)
			return i;
	}
	if (i >= len)
		return len;
	if (len >= 16) {
		size_t base = len - 16;

		i = jb_block(s, len, base, _mm_loadu_si128((const __m128i *)(const void *)(s + base)),
			     (unsigned)(i - base), 16, &stop);
	} else {
		unsigned char tmp[16] = {0};

		memcpy(tmp, s, len);
		i = jb_block(s, len, 0, _mm_loadu_si128((const __m128i *)(const void *)tmp), 0, (unsigned)len, &stop);
	}
	return stop ? i : len;
#else
	while (i < len) {
		size_t k;

		if (s[i] < 0x80) {
			if (jb_class[s[i]] != JB_PLAIN)
				return i;
			i++;
			continue;
		}
		if ((k = jb_seq_len(s + i, len - i)) == 0)
			return i;
		i += k;
	}
	return len;
#endif
}

void jbuf_str(struct jbuf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0; /* s[run, i) is pending, to copy as is */

	/* Optimistic: most strings need no escape at all. */
	if (len > JBUF_MAX) {
		b->oom = true;
		return;
	}
	/* room for len + 2 as jbuf_raw() checks it; else jbuf_reserve() */
	if ((len + 2 >= b->cap - b->len || b->oom) && !jbuf_reserve(b, len + 2))
		return;
	i = jb_ascii_prefix(s, len);
	if (i < len)
		i += jb_plain_prefix(s + i, len - i);
	if (i == len) {
		/* the common case: nothing to escape or replace */
		char *o = b->p + b->len;

		o[0] = '"';
		if (len)
			memcpy(o + 1, s, len);
		o[len + 1] = '"';
		o[len + 2] = '\0';
		b->len += len + 2;
		return;
	}
	/* Something to escape or replace at s[i]. Runs in between go through
	 * jb_plain_prefix() too: texts with a line break are mostly accented
	 * letters and emoji, which a byte loop sent to utf8_seq_len() one
	 * sequence at a time (a 246-byte reply text with "\n\n": 1235 -> 1056
	 * instructions, callgrind). */
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
	while (i < len) {
		unsigned char c = s[i];
		char e[6];
		size_t n, bad;

		if (c < 0x80) {
			if (jb_class[c] == JB_ESC) { /* always, from jb_plain_prefix() */
				jb_put(b, s + run, i - run);
				jb_put(b, e, jb_escape(c, e));
				run = i + 1;
			}
			if (++i < len && s[i] < 0x80 && jb_class[s[i]] == JB_ESC)
				continue; /* "\n\n": no scan for an empty run */
		} else {
			n = utf8_seq_len((const char *)s + i, len - i, &bad);
			/* U+2028 and U+2029 are valid JSON but end lines in
			 * JavaScript: escape them like json-c and others do. */
			if (n == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
				jb_put(b, s + run, i - run);
				jb_put(b, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
				i += 3;
				run = i;
			} else if (n > 0) {
				i += n; /* valid: jb_plain_prefix() stops before it only at its block's end */
			} else {
				jb_put(b, s + run, i - run);
				jb_put(b, "\xef\xbf\xbd", 3); /* U+FFFD */
				i += bad;
				run = i;
			}
		}
		i += jb_plain_prefix(s + i, len - i);
	}
	jb_put(b, s + run, i - run);
	jb_put(b, "\"", 1);
}

void jbuf_cstr_q(struct jbuf *b, const char *s)
{
	jbuf_str(b, s, s ? strlen(s) : 0);
}

void jbuf_u64(struct jbuf *b, uint64_t v)
{
	char d[20]; /* UINT64_MAX has 20 digits */
	size_t i = sizeof d;

	/* Most numbers written are small (reply seq, step and reply indexes):
	 * one or two digits inline, without the loop and a memcpy call. */
	if (v < 10) {
		jbuf_ch(b, (char)('0' + v));
		return;
	}
	if (v < 100) {
		char two[2] = {(char)('0' + v / 10), (char)('0' + v % 10)};

		jbuf_raw(b, two, 2);
		return;
	}

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	jbuf_raw(b, d + i, sizeof d - i);
}

void jbuf_i64(struct jbuf *b, int64_t v)
{
	if (v < 0) {
		jbuf_ch(b, '-');
		/* Unsigned negation: also right for INT64_MIN. */
		jbuf_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		jbuf_u64(b, (uint64_t)v);
	}
}

void jbuf_sep(struct jbuf *b)
{
	char last;

	if (b->len == 0)
		return;
	last = b->p[b->len - 1];
	if (last != '{' && last != '[' && last != ':')
		jbuf_ch(b, ',');
}

void jbuf_key(struct jbuf *b, const char *key)
{
	jbuf_sep(b);
	jbuf_cstr_q(b, key);
	jbuf_ch(b, ':');
}
