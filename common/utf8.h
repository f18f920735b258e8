/*
 * utf8.h - UTF-8 helpers: validation, code point counting and cutting, a
 * coarse character classification, and folding of text for matching.
 *
 * utf8_fold() turns user text into a canonical form on which keywords and
 * phrases are compared as whole words: "¡Quiero hacer una DONACIÓN! 🙏"
 * becomes "quiero hacer una donacion". It lower-cases and strips accents
 * (Latin-1, Latin Extended-A/B/Additional, Greek, Cyrillic), drops combining
 * marks (so decomposed "o" + U+0301 folds like "ó"), turns punctuation,
 * symbols, emoji, controls and invalid bytes into word separators, and
 * collapses runs of separators into one space with none at the ends.
 *
 * Pure functions over the caller's buffers: no state, no allocation, safe
 * from any thread. No locale is consulted. This is not Unicode
 * normalisation or full case folding: scripts outside the ranges above are
 * kept as they are (still split on their punctuation).
 */
#ifndef WB_UTF8_H
#define WB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Code point reported for a byte that does not start a valid sequence. */
#define UTF8_INVALID 0xFFFFFFFFu

/* Coarse classes, enough for matching and for validating names. */
enum utf8_class {
	UTF8_LETTER = 0, /* letters, and code points we know nothing about */
	UTF8_DIGIT,      /* decimal digits of any script, superscripts 1-3 */
	UTF8_SPACE,      /* white space, controls, line/paragraph separators */
	UTF8_PUNCT,      /* punctuation, symbols, emoji, private use, invalid */
	UTF8_MARK,       /* combining marks, format characters (ZWJ, BOM,
	                    variation selectors): invisible, dropped by fold */
};

/*
 * Decodes the code point at s (len > 0 bytes available). Returns the bytes it
 * uses (1-4) and sets *cp. An invalid, overlong, surrogate or truncated
 * sequence uses 1 byte and sets *cp to UTF8_INVALID. len 0 returns 0.
 */
size_t utf8_decode(const char *s, size_t len, uint32_t *cp);

/*
 * Length of the well-formed UTF-8 sequence (Unicode table 3-7) that starts
 * at s[0] >= 0x80, n >= 1 bytes available; 0 when it is ill-formed, with
 * *bad = the length of its maximal subpart (>= 1), which a writer replaces
 * by one U+FFFD (the W3C/WHATWG "maximal subpart" practice). Rejects
 * overlongs (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF), code points
 * over U+10FFFF (F4 90-BF, F5-FF), lone continuation bytes and truncated
 * sequences. The one sequence check shared by json.c, jbuf.c and reply.c.
 */
size_t utf8_seq_len(const char *s, size_t n, size_t *bad);

/* true when the len bytes at s are well-formed UTF-8 (RFC 3629). */
bool utf8_valid(const char *s, size_t len);

/* Code points in the len bytes at s; each invalid byte counts as one. */
size_t utf8_count(const char *s, size_t len);

/* Bytes of the longest prefix of s holding at most max_cp code points
 * (never splits a sequence). An ill-formed sequence counts as one code
 * point over its maximal subpart, as jbuf_str() writes it: one U+FFFD. */
size_t utf8_prefix(const char *s, size_t len, size_t max_cp);

/* Class of code point cp (UTF8_INVALID is UTF8_PUNCT). */
enum utf8_class utf8_classify(uint32_t cp);

/*
 * Writes the folded form of the len bytes at s into out (cap bytes) and
 * NUL-terminates it. The folded form is never longer than the input, so
 * cap >= len + 1 always suffices. Returns the folded length; when cap is too
 * small the output is cut at a whole code point (and still terminated) and
 * the length written is returned. s may be NULL when len is 0.
 * Output: lower-case ASCII letters and digits for Latin text, other scripts
 * verbatim (lower-cased for Greek and Cyrillic), words separated by single
 * spaces, no leading or trailing space.
 */
size_t utf8_fold(const char *s, size_t len, char *out, size_t cap);

/* Length in bytes of s without leading and trailing white space (ASCII
 * white space and U+00A0, U+2000-U+200B, U+202F, U+205F, U+3000, U+FEFF);
 * *start receives the offset of the first kept byte. */
size_t utf8_trim(const char *s, size_t len, size_t *start);

#endif /* WB_UTF8_H */
