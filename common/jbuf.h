/*
 * jbuf.h - a growable output buffer with JSON writing helpers.
 *
 * Used to build context JSON, reply envelopes and log-free output lines
 * without a DOM: the caller writes tokens in order. Memory errors are sticky
 * (jbuf.oom), so a sequence of writes is checked once at the end: once oom
 * is set, every write is ignored until jbuf_reset(). The buffer never grows
 * past JBUF_MAX bytes (a write that would is an oom too).
 * The buffer is owned by the struct and reused after jbuf_reset().
 * Threads: one thread per jbuf.
 */
#ifndef WB_JBUF_H
#define WB_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Largest buffer, in bytes with the NUL: a bound on runaway output. */
#define JBUF_MAX ((size_t)1 << 30)

struct jbuf {
	char *p;     /* owned; always NUL-terminated when cap > 0 */
	size_t len;  /* bytes written, without the NUL */
	size_t cap;
	bool oom;    /* an allocation failed: the content is incomplete */
};

void jbuf_init(struct jbuf *b);
void jbuf_fini(struct jbuf *b);
/* Empties b, keeping its memory and clearing oom. */
void jbuf_reset(struct jbuf *b);
/* Makes room for at least n more bytes (plus the NUL). false (and oom) on
 * failure, when len + n would pass JBUF_MAX, or when oom is already set. */
bool jbuf_reserve(struct jbuf *b, size_t n);

/* jbuf_raw() when the bytes do not fit (growth) or oom is set. */
void jbuf_raw_grow(struct jbuf *b, const char *s, size_t len);

/* Appends bytes as they are. Inline when they fit, so that the copy of a
 * literal compiles to a few moves: envelopes and contexts are written in
 * 50-odd small pieces per event, which cost ~50 instructions each through
 * a call and memcpy (about 1k per event on bench_pipeline). */
#if defined(__GNUC__)
__attribute__((always_inline)) /* gcc -O3 kept it out of line otherwise */
#endif
static inline void jbuf_raw(struct jbuf *b, const char *s, size_t len)
{
	if (len < b->cap - b->len && !b->oom) { /* cap > len when cap > 0 */
		if (len)
			memcpy(b->p + b->len, s, len);
		b->len += len;
		b->p[b->len] = '\0';
		return;
	}
	jbuf_raw_grow(b, s, len);
}

/* NUL-terminated raw; NULL writes nothing. Inline too: with a literal the
 * strlen folds away. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void jbuf_cstr(struct jbuf *b, const char *s)
{
	if (s)
		jbuf_raw(b, s, strlen(s));
}

static inline void jbuf_ch(struct jbuf *b, char c)
{
	jbuf_raw(b, &c, 1);
}

/*
 * Appends s (len bytes of UTF-8) as a quoted JSON string: '"' and '\\'
 * escaped, control characters as \n \t ... or \u00XX, U+2028/U+2029 as
 * escapes, everything else verbatim. Invalid UTF-8 sequences are written as
 * U+FFFD so the output is always valid JSON. s may be NULL when len is 0.
 */
void jbuf_str(struct jbuf *b, const char *s, size_t len);
void jbuf_cstr_q(struct jbuf *b, const char *s); /* jbuf_str of a NUL-terminated s; NULL writes "" */

/* Appends a decimal number. */
void jbuf_i64(struct jbuf *b, int64_t v);
void jbuf_u64(struct jbuf *b, uint64_t v);

/* Appends a separator if needed (jbuf_sep), then "key": with the key
 * quoted and escaped, ready for the value. */
void jbuf_key(struct jbuf *b, const char *key);

/* Appends ',' unless the last byte written is '{', '[' or ':' or b is empty:
 * call before each member or element to get separators right. */
void jbuf_sep(struct jbuf *b);

#endif /* WB_JBUF_H */
