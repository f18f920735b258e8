/*
 * test_jbuf.c - jbuf against jbuf.h: growth, the sticky oom flag, JSON
 * string escaping (controls, quotes, U+2028/2029, invalid UTF-8 -> U+FFFD),
 * numbers and separators. Every string output is checked with json-c's
 * strict, UTF-8-validating parser. Each test frees its jbuf.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jbuf.h"
#include "utf8.h"

/* Parses text strictly, validating UTF-8; NULL when json-c refuses it. */
static json_object *parse_strict(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	cr_assert_not_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && tok->char_offset != (int)len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* jbuf_str(s, len) and returns what it wrote, in a static buffer. */
static const char *quote(const char *s, size_t len)
{
	static char out[4096];
	struct jbuf b;

	jbuf_init(&b);
	jbuf_str(&b, s, len);
	cr_assert(!b.oom);
	cr_assert_lt(b.len, sizeof out);
	cr_assert_eq(strlen(b.p), b.len, "NUL-terminated at len");
	memcpy(out, b.p, b.len + 1);
	jbuf_fini(&b);
	return out;
}

#define Q(lit) quote(lit, sizeof(lit) - 1)

/* The JSON string written for s parses, and decodes to want (wlen bytes). */
static void assert_decodes_to(const char *s, size_t len, const char *want, size_t wlen)
{
	struct jbuf b;
	json_object *o;

	jbuf_init(&b);
	jbuf_str(&b, s, len);
	o = parse_strict(b.p, b.len);
	cr_assert_not_null(o, "json-c refused %s", b.p);
	cr_assert(json_object_is_type(o, json_type_string));
	cr_assert_eq((size_t)json_object_get_string_len(o), wlen, "decoded length for %s", b.p);
	cr_assert_eq(memcmp(json_object_get_string(o), want, wlen), 0, "decoded bytes for %s", b.p);
	json_object_put(o);
	jbuf_fini(&b);
}

Test(jbuf, init_is_empty_and_fini_twice_is_harmless)
{
	struct jbuf b;

	jbuf_init(&b);
	cr_assert_null(b.p);
	cr_assert_eq(b.len, 0);
	cr_assert(!b.oom);
	jbuf_fini(&b);
	jbuf_fini(&b);
	cr_assert_null(b.p);
}

Test(jbuf, raw_cstr_ch_append_and_stay_terminated)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_raw(&b, "ab", 2);
	jbuf_cstr(&b, "cd");
	jbuf_ch(&b, 'e');
	jbuf_raw(&b, NULL, 0);
	jbuf_cstr(&b, NULL);
	cr_assert_eq(b.len, 5);
	cr_assert_str_eq(b.p, "abcde");
	jbuf_fini(&b);
}

Test(jbuf, reset_keeps_memory_and_empties)
{
	struct jbuf b;
	char *p;

	jbuf_init(&b);
	jbuf_cstr(&b, "hello");
	p = b.p;
	jbuf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.p, p);
	cr_assert_str_eq(b.p, "");
	jbuf_fini(&b);
}

Test(jbuf, grows_across_many_appends)
{
	struct jbuf b;
	size_t i;

	jbuf_init(&b);
	for (i = 0; i < 200000; i++)
		jbuf_ch(&b, (char)('a' + i % 26));
	cr_assert(!b.oom);
	cr_assert_eq(b.len, 200000);
	cr_assert_gt(b.cap, b.len);
	cr_assert_eq(b.p[b.len], '\0');
	for (i = 0; i < 200000; i++)
		cr_assert_eq(b.p[i], (char)('a' + i % 26));
	/* Doubling: capacity stays within twice what is needed. */
	cr_assert_leq(b.cap, 2 * (b.len + 1));
	jbuf_fini(&b);
}

Test(jbuf, grows_across_many_string_appends)
{
	struct jbuf b;
	size_t i;

	jbuf_init(&b);
	jbuf_ch(&b, '[');
	for (i = 0; i < 20000; i++) {
		jbuf_sep(&b);
		jbuf_cstr_q(&b, "x\"\xc3\xa9\n");
	}
	jbuf_ch(&b, ']');
	cr_assert(!b.oom);
	json_object *o = parse_strict(b.p, b.len);
	cr_assert_not_null(o);
	cr_assert_eq(json_object_array_length(o), 20000);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(o, 19999)), "x\"\xc3\xa9\n");
	json_object_put(o);
	jbuf_fini(&b);
}

Test(jbuf, reserve_failure_sets_sticky_oom)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_cstr(&b, "kept");
	cr_assert(!jbuf_reserve(&b, SIZE_MAX / 2));
	cr_assert(b.oom);
	/* Sticky: later writes, even small ones, are ignored. */
	cr_assert(!jbuf_reserve(&b, 1));
	jbuf_cstr(&b, "lost");
	jbuf_ch(&b, 'x');
	jbuf_cstr_q(&b, "q");
	jbuf_i64(&b, 42);
	jbuf_key(&b, "k");
	cr_assert(b.oom);
	cr_assert_eq(b.len, 4);
	cr_assert_str_eq(b.p, "kept");
	/* reset clears it. */
	jbuf_reset(&b);
	cr_assert(!b.oom);
	jbuf_cstr(&b, "again");
	cr_assert_str_eq(b.p, "again");
	jbuf_fini(&b);
}

Test(jbuf, reserve_refuses_overflowing_and_oversized_requests)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_ch(&b, 'a');
	cr_assert(!jbuf_reserve(&b, SIZE_MAX));
	cr_assert(b.oom);
	jbuf_reset(&b);
	cr_assert(!jbuf_reserve(&b, JBUF_MAX));
	cr_assert(b.oom);
	jbuf_reset(&b);
	cr_assert(jbuf_reserve(&b, 1000));
	cr_assert_geq(b.cap, 1001);
	cr_assert_eq(b.p[0], '\0');
	jbuf_fini(&b);
}

Test(jbuf, str_of_huge_length_is_oom_not_overflow)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_str(&b, "", SIZE_MAX - 1); /* never read: refused before */
	cr_assert(b.oom);
	cr_assert_eq(b.len, 0);
	jbuf_fini(&b);
}

Test(jbuf, plain_ascii_is_quoted_verbatim)
{
	cr_assert_str_eq(Q("hello world /<>&'"), "\"hello world /<>&'\"");
	cr_assert_str_eq(Q(""), "\"\"");
	cr_assert_str_eq(quote(NULL, 0), "\"\"");
	cr_assert_str_eq(Q("\x7f"), "\"\x7f\"", "DEL needs no escape in JSON");
}

Test(jbuf, cstr_q_of_null_is_empty_string)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_cstr_q(&b, NULL);
	cr_assert_str_eq(b.p, "\"\"");
	jbuf_fini(&b);
}

Test(jbuf, quote_and_backslash_are_escaped)
{
	cr_assert_str_eq(Q("a\"b\\c"), "\"a\\\"b\\\\c\"");
	cr_assert_str_eq(Q("\"\"\\\\"), "\"\\\"\\\"\\\\\\\\\"");
}

Test(jbuf, every_control_character_is_escaped)
{
	char want[16];
	unsigned c;

	for (c = 0; c < 0x20; c++) {
		char in = (char)c;
		const char *got = quote(&in, 1);

		switch (c) {
		case '\b': strcpy(want, "\"\\b\""); break;
		case '\f': strcpy(want, "\"\\f\""); break;
		case '\n': strcpy(want, "\"\\n\""); break;
		case '\r': strcpy(want, "\"\\r\""); break;
		case '\t': strcpy(want, "\"\\t\""); break;
		default: snprintf(want, sizeof want, "\"\\u%04x\"", c); break;
		}
		cr_assert_str_eq(got, want, "control 0x%02x", c);
		assert_decodes_to(&in, 1, &in, 1);
	}
}

Test(jbuf, escapes_inside_runs_keep_the_surrounding_bytes)
{
	cr_assert_str_eq(Q("ab\ncd\x01" "ef"), "\"ab\\ncd\\u0001ef\"");
	cr_assert_str_eq(Q("\n"), "\"\\n\"");
	cr_assert_str_eq(Q("x\t"), "\"x\\t\"");
	cr_assert_str_eq(Q("\x1f" "y"), "\"\\u001fy\"");
}

Test(jbuf, line_and_paragraph_separators_are_escaped)
{
	cr_assert_str_eq(Q("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c"), "\"a\\u2028b\\u2029c\"");
	/* Their neighbours U+2027 and U+202A stay verbatim. */
	cr_assert_str_eq(Q("\xe2\x80\xa7\xe2\x80\xaa"), "\"\xe2\x80\xa7\xe2\x80\xaa\"");
	assert_decodes_to("\xe2\x80\xa8", 3, "\xe2\x80\xa8", 3);
}

Test(jbuf, valid_utf8_is_verbatim_at_every_length_and_edge)
{
	static const char *ok[] = {
		"\xc2\x80",             /* U+0080 */
		"\xdf\xbf",             /* U+07FF */
		"\xe0\xa0\x80",         /* U+0800 */
		"\xed\x9f\xbf",         /* U+D7FF, last before surrogates */
		"\xee\x80\x80",         /* U+E000, first after surrogates */
		"\xef\xbf\xbf",         /* U+FFFF */
		"\xf0\x90\x80\x80",     /* U+10000 */
		"\xf4\x8f\xbf\xbf",     /* U+10FFFF */
		"\xc3\xa9",             /* é */
		"\xf0\x9f\x98\x80",     /* 😀 */
		"Ministerio de Educaci\xc3\xb3n \xc2\xbf" "Confirmas?",
	};
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char want[128];

		snprintf(want, sizeof want, "\"%s\"", ok[i]);
		cr_assert_str_eq(quote(ok[i], strlen(ok[i])), want, "case %zu", i);
		assert_decodes_to(ok[i], strlen(ok[i]), ok[i], strlen(ok[i]));
	}
}

#define FFFD "\xef\xbf\xbd"

/* jbuf_str checks strings 16 bytes at a time, the last partial block by
 * re-reading the end (or a copy of a short string): each kind of byte that
 * stops a plain run must be found at every position of every length. */
Test(jbuf, stop_bytes_are_found_at_every_position_of_every_length)
{
	static const struct {
		const char *in, *out;
	} stop[] = {
		{"\"", "\\\""},           {"\\", "\\\\"},       {"\n", "\\n"},
		{"\x01", "\\u0001"},      {"\xff", FFFD},       {"\xc3", FFFD},
		{"\xe2\x80\xa8", "\\u2028"}, {"\xc3\xa9", "\xc3\xa9"}, {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
	};
	size_t k, len, pos;

	for (k = 0; k < sizeof stop / sizeof stop[0]; k++) {
		size_t sl = strlen(stop[k].in);

		for (len = sl; len <= 40; len++) {
			for (pos = 0; pos + sl <= len; pos++) {
				char in[64], want[128];

				memset(in, 'a', len);
				memcpy(in + pos, stop[k].in, sl);
				want[0] = '"';
				memset(want + 1, 'a', pos);
				snprintf(want + 1 + pos, sizeof want - 1 - pos, "%s%.*s\"", stop[k].out,
					 (int)(len - pos - sl), in + pos + sl);
				cr_assert_str_eq(quote(in, len), want, "stop %zu, length %zu, at %zu", k, len, pos);
			}
		}
	}
}

Test(jbuf, invalid_utf8_becomes_replacement_characters)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"\x80", FFFD},                                /* lone continuation */
		{"a\xbf" "b", "a" FFFD "b"},
		{"\xc0\x80", FFFD FFFD},                       /* overlong NUL */
		{"\xc1\xbf", FFFD FFFD},                       /* overlong 2-byte */
		{"\xe0\x80\x80", FFFD FFFD FFFD},              /* overlong 3-byte */
		{"\xe0\x9f\xbf", FFFD FFFD FFFD},
		{"\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD},     /* overlong 4-byte */
		{"\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD},
		{"\xed\xa0\x80", FFFD FFFD FFFD},              /* surrogate D800 */
		{"\xed\xbf\xbf", FFFD FFFD FFFD},              /* surrogate DFFF */
		{"\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD}, /* CESU-8 pair */
		{"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},     /* U+110000 */
		{"\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD},
		{"\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD}, /* 5-byte form */
		{"\xfe", FFFD},
		{"\xff", FFFD},
		{"\xc3", FFFD},                                /* truncated at end */
		{"\xe2\x82", FFFD},
		{"\xf0\x9f\x98", FFFD},
		{"\xe2\x82" "A", FFFD "A"},                    /* truncated mid-string */
		{"\xf0\x9f\x98" "\xc3\xa9", FFFD "\xc3\xa9"},
		{"\xc3\xc3\xa9", FFFD "\xc3\xa9"},
		{"ok\xe2\x82\"", "ok" FFFD "\\\""},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[128];
		const char *got = quote(cases[i].in, strlen(cases[i].in));

		snprintf(want, sizeof want, "\"%s\"", cases[i].out);
		json_object *o;

		cr_assert_str_eq(got, want, "case %zu", i);
		o = parse_strict(got, strlen(got));
		cr_assert_not_null(o, "case %zu parses", i);
		json_object_put(o);
	}
}

Test(jbuf, embedded_nul_is_escaped_and_round_trips)
{
	cr_assert_str_eq(quote("a\0b", 3), "\"a\\u0000b\"");
	assert_decodes_to("a\0b", 3, "a\0b", 3);
}

/* xorshift64: deterministic pseudo-random bytes. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Appends the UTF-8 encoding of code point cp to out; returns its length. */
static size_t utf8_put(char *out, uint32_t cp)
{
	unsigned char *o = (unsigned char *)out;

	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

Test(jbuf, random_valid_utf8_round_trips_through_json_c)
{
	uint64_t seed = 0x9e3779b97f4a7c15u;
	char in[1024];
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		size_t len = 0;
		unsigned n = (unsigned)(rng_next(&seed) % 60);

		while (n-- > 0) {
			uint64_t r = rng_next(&seed);
			uint32_t cp;

			switch (r % 4) {
			case 0: cp = (uint32_t)(r >> 8) % 0x80; break;          /* ASCII, controls too */
			case 1: cp = 0x80 + (uint32_t)(r >> 8) % 0x780; break;  /* 2 bytes */
			case 2: cp = 0x800 + (uint32_t)(r >> 8) % 0xf800; break; /* 3 bytes */
			default: cp = 0x10000 + (uint32_t)(r >> 8) % 0x100000; break;
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0x2028 + (cp & 1); /* no surrogates; exercise the separators */
			len += utf8_put(in + len, cp);
		}
		assert_decodes_to(in, len, in, len);
	}
}

Test(jbuf, random_bytes_always_give_valid_json)
{
	uint64_t seed = 0x1234567887654321u;
	unsigned char in[256];
	int iter;

	for (iter = 0; iter < 5000; iter++) {
		size_t len = (size_t)(rng_next(&seed) % sizeof in), i;
		struct jbuf b;
		json_object *o;

		for (i = 0; i < len; i++) {
			uint64_t r = rng_next(&seed);
			/* Favour the interesting high bytes. */
			in[i] = (unsigned char)(r % 3 ? 0x80 | (r >> 8) : r >> 8);
		}
		jbuf_init(&b);
		jbuf_str(&b, (const char *)in, len);
		o = parse_strict(b.p, b.len);
		cr_assert_not_null(o, "iteration %d", iter);
		json_object_put(o);
		jbuf_fini(&b);
	}
}

/*
 * jbuf_str as the spec says it, one byte or sequence at a time: what the
 * SIMD paths (16-byte blocks, two-byte sequences checked per block, runs
 * between escapes) must write byte for byte.
 */
static void str_reference(struct jbuf *b, const unsigned char *s, size_t len)
{
	size_t i = 0;

	jbuf_ch(b, '"');
	while (i < len) {
		unsigned char c = s[i];
		size_t n, bad = 0;

		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};

			jbuf_raw(b, e, 2);
			i++;
		} else if (c < 0x20) {
			char e[8];
			const char *named = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
						 : c == '\t' ? "\\t" : NULL;

			if (named)
				jbuf_cstr(b, named);
			else {
				snprintf(e, sizeof e, "\\u%04x", c);
				jbuf_cstr(b, e);
			}
			i++;
		} else if (c < 0x80) {
			jbuf_ch(b, (char)c);
			i++;
		} else if ((n = utf8_seq_len((const char *)s + i, len - i, &bad)) == 3 && c == 0xe2 && s[i + 1] == 0x80 &&
			   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
			jbuf_cstr(b, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
			i += 3;
		} else if (n > 0) {
			jbuf_raw(b, (const char *)s + i, n);
			i += n;
		} else {
			jbuf_cstr(b, "\xef\xbf\xbd");
			i += bad;
		}
	}
	jbuf_ch(b, '"');
}

Test(jbuf, str_matches_a_byte_at_a_time_reference)
{
	/* Mostly text (ASCII, accented letters, emoji, separators), with
	 * escapes and broken sequences mixed in at every offset and length. */
	static const char *const pieces[] = {
		"a", "b", " ", "0", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xc3\xb1",
		"\xc2\xbf", "\xdf\xbf", "\xe2\x80\xa6", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xef\xb8\x8f",
		"\xf0\x9f\x92\x99", "\xf4\x8f\xbf\xbf", "\xc3", "\xa9", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
		"\xed\xa0\x80", "\xf0\x9f\x92", "\xf5\x80\x80\x80", "\xff", "\xc3\xc3\xa9", "\xe2\x80",
	};
	uint64_t seed = 0x5deece66du;
	char in[400];
	int iter;

	for (iter = 0; iter < 20000; iter++) {
		size_t len = 0, want_len = (size_t)(rng_next(&seed) % 120);
		struct jbuf got, want;

		while (len < want_len) {
			uint64_t r = rng_next(&seed);
			/* runs of plain ASCII make the 16-byte blocks matter */
			const char *p = r % 3 == 0 ? "abcdefghij" : pieces[(r >> 8) % (sizeof pieces / sizeof pieces[0])];
			size_t n = strlen(p);

			memcpy(in + len, p, n);
			len += n;
		}
		jbuf_init(&got);
		jbuf_init(&want);
		jbuf_str(&got, in, len);
		str_reference(&want, (const unsigned char *)in, len);
		cr_assert(!got.oom && !want.oom);
		cr_assert_eq(got.len, want.len, "iteration %d: length %zu, want %zu", iter, got.len, want.len);
		cr_assert(memcmp(got.p, want.p, got.len) == 0, "iteration %d: %s", iter, want.p);
		jbuf_fini(&got);
		jbuf_fini(&want);
	}
}

Test(jbuf, numbers_in_decimal)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_i64(&b, 0);
	jbuf_ch(&b, ' ');
	jbuf_i64(&b, -1);
	jbuf_ch(&b, ' ');
	jbuf_i64(&b, INT64_MIN);
	jbuf_ch(&b, ' ');
	jbuf_i64(&b, INT64_MAX);
	jbuf_ch(&b, ' ');
	jbuf_u64(&b, 0);
	jbuf_ch(&b, ' ');
	jbuf_u64(&b, 10);
	jbuf_ch(&b, ' ');
	jbuf_u64(&b, UINT64_MAX);
	cr_assert_str_eq(b.p, "0 -1 -9223372036854775808 9223372036854775807 0 10 18446744073709551615");
	jbuf_fini(&b);
}

Test(jbuf, every_number_below_a_thousand_and_around_powers_of_ten)
{
	struct jbuf b;
	char want[32];
	uint64_t v, p;

	jbuf_init(&b);
	for (v = 0; v < 1000; v++) {
		jbuf_reset(&b);
		jbuf_u64(&b, v);
		snprintf(want, sizeof want, "%llu", (unsigned long long)v);
		cr_assert_str_eq(b.p, want);
		jbuf_reset(&b);
		jbuf_i64(&b, -(int64_t)v);
		snprintf(want, sizeof want, "%lld", -(long long)v);
		cr_assert_str_eq(b.p, want);
	}
	for (p = 10; p <= UINT64_C(10000000000000000000); p *= 10) {
		for (v = p - 1; v <= p + 1; v++) {
			jbuf_reset(&b);
			jbuf_u64(&b, v);
			snprintf(want, sizeof want, "%llu", (unsigned long long)v);
			cr_assert_str_eq(b.p, want);
		}
		if (p > UINT64_MAX / 10)
			break;
	}
	jbuf_fini(&b);
}

Test(jbuf, sep_and_key_place_commas_correctly)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_sep(&b); /* empty: nothing */
	cr_assert_eq(b.len, 0);
	jbuf_ch(&b, '{');
	jbuf_key(&b, "a");
	jbuf_i64(&b, 1);
	jbuf_key(&b, "b");
	jbuf_ch(&b, '[');
	jbuf_sep(&b);
	jbuf_i64(&b, 1);
	jbuf_sep(&b);
	jbuf_i64(&b, 2);
	jbuf_ch(&b, ']');
	jbuf_key(&b, "c\"q");
	jbuf_ch(&b, '{');
	jbuf_ch(&b, '}');
	jbuf_key(&b, "d");
	jbuf_sep(&b); /* after ':': nothing, a value may always call it */
	jbuf_cstr_q(&b, "x");
	jbuf_ch(&b, '}');
	cr_assert_str_eq(b.p, "{\"a\":1,\"b\":[1,2],\"c\\\"q\":{},\"d\":\"x\"}");
	json_object *o = parse_strict(b.p, b.len);
	cr_assert_not_null(o);
	json_object_put(o);
	jbuf_fini(&b);
}
