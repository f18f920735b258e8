/*
 * test_json.c - the JSON reader: grammar, UTF-8, limits, token layout and
 * accessors. Every accept/reject decision here is RFC 8259 + RFC 3629.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static struct json_doc doc;

static void setup(void)
{
	json_doc_init(&doc);
}

static void teardown(void)
{
	json_doc_fini(&doc);
}

TestSuite(json, .init = setup, .fini = teardown);

static enum json_error parse(const char *s)
{
	return json_parse(&doc, s, strlen(s), NULL);
}

static enum json_error parse_n(const char *s, size_t n)
{
	return json_parse(&doc, s, n, NULL);
}

Test(json, accepts_valid_documents)
{
	static const char *ok[] = {
		"{}", "[]", " { } ", "\t[\n]\r\n", "0", "-0", "1", "-12", "1.5", "-0.25e-3", "1E+9", "2e10",
		"true", "false", "null", "\"\"", "\"a\"", "[1,2,3]", "{\"a\":1,\"b\":[true,false,null]}",
		"[[[]]]", "{\"a\":{\"b\":{\"c\":\"d\"}}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\"",
		"\"\\ud83d\\udc4d\"", "\"\xc3\xa9\"", "\"\xe2\x82\xac\"", "\"\xf0\x9f\x91\x8d\"", "\"\xf4\x8f\xbf\xbf\"",
		"[ 1 , 2 ]", "{ \"a\" : 1 }",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect_eq(parse(ok[i]), JSON_OK, "should accept %s (err %d at %zu)", ok[i], doc.err,
			     doc.err_offset);
}

Test(json, rejects_bad_grammar)
{
	static const char *bad[] = {
		"", " ", "{", "}", "[", "]", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "[1 2]", "{\"a\" 1}", "{\"a\"}",
		"{\"a\":}", "{1:2}", "{'a':1}", "tru", "nul", "falsey", "True", "01", "1.", ".5", "-", "+1", "1e",
		"1e+", "0x10", "1.2.3", "[1]]", "{}}", "1 2", "\"abc", "\"\\q\"", "\"\\u12\"", "\"\\u12G4\"",
		"\"a\nb\"", "\"\x01\"", "[\"a\",]", "NaN", "Infinity", "[-]", "{\"a\":1 \"b\":2}", "/* c */ 1",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(parse(bad[i]), JSON_E_SYNTAX, "should reject %s as syntax (got %d)", bad[i], doc.err);
		cr_expect_eq(doc.ntoks, 0u);
	}
}

Test(json, rejects_invalid_utf8_and_lone_surrogates)
{
	static const char *bad[] = {
		"\"\x80\"",             /* continuation byte alone */
		"\"\xc0\x80\"",         /* overlong NUL */
		"\"\xc1\xbf\"",         /* overlong */
		"\"\xe0\x80\xaf\"",     /* overlong 3-byte */
		"\"\xed\xa0\x80\"",     /* UTF-16 surrogate encoded */
		"\"\xf0\x80\x80\xaf\"", /* overlong 4-byte */
		"\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
		"\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\xc3\"", "\"\xe2\x82\"", "\"\xc3\x28\"",
		"\"\\udc4d\"",          /* lone low surrogate */
		"\"\\ud83d\"",          /* high surrogate, no pair */
		"\"\\ud83dx\"", "\"\\ud83d\\u0041\"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse(bad[i]), JSON_E_UTF8, "case %zu should be invalid UTF-8 (got %d)", i, doc.err);
}

/* The vector scan handles 16 bytes at a time: put every kind of special
 * byte at every position of strings around that size. */
Test(json, string_scan_is_exact_at_every_position)
{
	char buf[128];
	size_t len, at;

	for (len = 1; len <= 40; len++) {
		for (at = 0; at < len; at++) {
			/* a quote inside must end the string early -> trailing garbage */
			memset(buf, 'x', sizeof(buf));
			buf[0] = '"';
			buf[1 + at] = '"';
			buf[1 + len] = '"';
			cr_assert_eq(parse_n(buf, len + 2), JSON_E_SYNTAX);
			/* an escape is accepted and flagged */
			memset(buf, 'x', sizeof(buf));
			buf[0] = '"';
			if (at + 1 < len) {
				buf[1 + at] = '\\';
				buf[2 + at] = 'n';
				buf[1 + len] = '"';
				cr_assert_eq(parse_n(buf, len + 2), JSON_OK);
				cr_assert(doc.toks[0].flags & JSON_TOK_ESCAPED);
			}
			/* a control byte is refused */
			memset(buf, 'x', sizeof(buf));
			buf[0] = '"';
			buf[1 + at] = '\t';
			buf[1 + len] = '"';
			cr_assert_eq(parse_n(buf, len + 2), JSON_E_SYNTAX);
			cr_assert_eq(doc.err_offset, 1 + at);
			/* a bad UTF-8 byte is refused, a good sequence accepted */
			memset(buf, 'x', sizeof(buf));
			buf[0] = '"';
			buf[1 + at] = (char)0xff;
			buf[1 + len] = '"';
			cr_assert_eq(parse_n(buf, len + 2), JSON_E_UTF8);
			if (at + 2 < len) {
				buf[1 + at] = (char)0xc3;
				buf[2 + at] = (char)0xa9;
				cr_assert_eq(parse_n(buf, len + 2), JSON_OK);
				cr_assert_eq(doc.toks[0].len, len);
				cr_assert_not(doc.toks[0].flags & JSON_TOK_ESCAPED);
			}
		}
		/* unterminated at every length */
		memset(buf, 'x', sizeof(buf));
		buf[0] = '"';
		cr_assert_eq(parse_n(buf, len + 1), JSON_E_SYNTAX);
	}
}

Test(json, token_layout_and_skipping)
{
	uint32_t a, b, c, it;

	cr_assert_eq(parse("{\"a\":[1,{\"x\":2},3],\"b\":\"s\",\"c\":{}}"), JSON_OK);
	cr_assert_eq(json_type_of(&doc, 0), JSON_OBJECT);
	cr_assert_eq(doc.toks[0].count, 3u);
	cr_assert_eq(doc.toks[0].next, doc.ntoks);
	a = json_get(&doc, 0, "a");
	cr_assert_eq(json_type_of(&doc, a), JSON_ARRAY);
	cr_assert_eq(doc.toks[a].count, 3u);
	it = json_first(&doc, a);
	cr_assert_eq(json_type_of(&doc, it), JSON_NUMBER);
	it = json_after(&doc, it);
	cr_assert_eq(json_type_of(&doc, it), JSON_OBJECT);
	it = json_after(&doc, it);
	int64_t v;
	cr_assert(json_num_i64(&doc, it, &v));
	cr_assert_eq(v, 3);
	b = json_get_type(&doc, 0, "b", JSON_STRING);
	cr_assert_neq(b, JSON_NONE);
	cr_assert(json_str_eq(&doc, b, "s", 1));
	cr_assert_eq(json_get_type(&doc, 0, "b", JSON_NUMBER), JSON_NONE);
	c = json_get(&doc, 0, "c");
	cr_assert_eq(doc.toks[c].count, 0u);
	cr_assert_eq(json_first(&doc, c), JSON_NONE);
	cr_assert_eq(json_get(&doc, 0, "zz"), JSON_NONE);
	cr_assert_eq(json_get(&doc, a, "a"), JSON_NONE, "not an object");

	size_t n;
	const char *raw = json_raw(&doc, a, &n);
	cr_assert_eq(n, strlen("[1,{\"x\":2},3]"));
	cr_assert_eq(memcmp(raw, "[1,{\"x\":2},3]", n), 0);
	raw = json_raw(&doc, b, &n);
	cr_assert_eq(n, 3u);
	cr_assert_eq(memcmp(raw, "\"s\"", 3), 0);
}

Test(json, keys_escaped_duplicate_and_case_sensitive)
{
	uint32_t t;

	cr_assert_eq(parse("{\"k\\u0065y\":1,\"dup\":1,\"dup\":2,\"receivedTimeStamp\":\"x\"}"), JSON_OK);
	t = json_get(&doc, 0, "key");
	cr_assert_neq(t, JSON_NONE, "escaped key compares decoded");
	t = json_get(&doc, 0, "dup");
	int64_t v;
	cr_assert(json_num_i64(&doc, t, &v));
	cr_assert_eq(v, 2, "last duplicate wins");
	cr_assert_eq(json_get(&doc, 0, "receivedTimestamp"), JSON_NONE);
}

Test(json, string_decoding)
{
	char out[64];
	size_t n;

	cr_assert_eq(parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"\\u00e9\\u20ac\\ud83d\\udc4d\",\"plain\"]"), JSON_OK);
	n = json_str_decode(&doc, 1, out, sizeof(out));
	cr_assert_eq(n, 12u);
	cr_assert_str_eq(out, "a\"b\\c/d\b\f\n\r\t");
	n = json_str_decode(&doc, 2, out, sizeof(out));
	cr_assert_eq(n, 2u + 3u + 4u);
	cr_assert_str_eq(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x91\x8d");
	cr_assert(json_str_eq(&doc, 2, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x91\x8d", 9));
	cr_assert_not(json_str_eq(&doc, 2, "\xc3\xa9\xe2\x82\xac", 5));
	cr_assert_not(json_str_eq(&doc, 2, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x91\x8d!", 10));
	n = json_str_decode(&doc, 3, out, sizeof(out));
	cr_assert_eq(n, 5u);
	cr_assert_str_eq(out, "plain");
	/* too small: refused, never overrun */
	n = json_str_decode(&doc, 3, out, 5);
	cr_assert_eq(n, (size_t)-1);
	cr_assert_str_eq(out, "");
	n = json_str_decode(&doc, 3, out, 6);
	cr_assert_eq(n, 5u);
	n = json_str_decode(&doc, 0, out, sizeof(out));
	cr_assert_eq(n, (size_t)-1, "not a string");
	size_t rl;
	const char *raw = json_str_raw(&doc, 2, &rl);
	cr_assert_eq(rl, strlen("\\u00e9\\u20ac\\ud83d\\udc4d"));
	cr_assert_eq(raw[0], '\\');
}

Test(json, numbers)
{
	int64_t v;
	double f;

	cr_assert_eq(parse("[9223372036854775807,-9223372036854775808,9223372036854775808,1.5,1e3,-0,42]"), JSON_OK);
	cr_assert(json_num_i64(&doc, 1, &v));
	cr_assert_eq(v, INT64_MAX);
	cr_assert(json_num_i64(&doc, 2, &v));
	cr_assert_eq(v, INT64_MIN);
	cr_assert_not(json_num_i64(&doc, 3, &v), "overflow");
	cr_assert_not(json_num_i64(&doc, 4, &v), "fraction");
	cr_assert_not(json_num_i64(&doc, 5, &v), "exponent");
	cr_assert(json_num_i64(&doc, 6, &v));
	cr_assert_eq(v, 0);
	cr_assert(json_num_f64(&doc, 4, &f));
	cr_assert_float_eq(f, 1.5, 1e-12);
	cr_assert(json_num_f64(&doc, 5, &f));
	cr_assert_float_eq(f, 1000.0, 1e-9);
	cr_assert_not(json_num_f64(&doc, 0, &f), "array is not a number");
}

Test(json, depth_limit_is_exact)
{
	char buf[300];
	struct json_limits lim = {.max_depth = 10};
	int i;

	for (i = 0; i < 10; i++)
		buf[i] = '[';
	for (i = 0; i < 10; i++)
		buf[10 + i] = ']';
	cr_assert_eq(json_parse(&doc, buf, 20, &lim), JSON_OK);
	for (i = 0; i < 11; i++)
		buf[i] = '[';
	for (i = 0; i < 11; i++)
		buf[11 + i] = ']';
	cr_assert_eq(json_parse(&doc, buf, 22, &lim), JSON_E_DEPTH);
	cr_assert_eq(doc.err_offset, 10u);
	/* default limit 64; a deep object chain too */
	memset(buf, '[', 200);
	cr_assert_eq(json_parse(&doc, buf, 200, NULL), JSON_E_DEPTH);
}

Test(json, size_and_token_limits)
{
	struct json_limits lim = {.max_bytes = 8};
	struct json_limits tl = {.max_tokens = 4};

	cr_assert_eq(json_parse(&doc, "[1,2,3,4]", 9, &lim), JSON_E_TOO_BIG);
	cr_assert_eq(json_parse(&doc, "[1,2,3]", 7, &lim), JSON_OK);
	cr_assert_eq(json_parse(&doc, "[1,2,3]", 7, &tl), JSON_OK);
	cr_assert_eq(json_parse(&doc, "[1,2,3,4]", 9, &tl), JSON_E_TOO_BIG);
}

Test(json, doc_is_reused_and_grows)
{
	static char big[400000];
	size_t at = 0;
	int i;

	big[at++] = '[';
	for (i = 0; i < 20000; i++) {
		at += (size_t)snprintf(big + at, sizeof(big) - at, "%s{\"i\":%d}", i ? "," : "", i);
	}
	big[at++] = ']';
	cr_assert_eq(parse_n(big, at), JSON_OK);
	cr_assert_eq(doc.toks[0].count, 20000u);
	cr_assert_eq(doc.ntoks, 1u + 20000u * 3u);
	cr_assert_eq(parse("{\"a\":1}"), JSON_OK);
	cr_assert_eq(doc.ntoks, 3u);
	cr_assert_eq(parse("[1,"), JSON_E_SYNTAX);
	cr_assert_eq(doc.ntoks, 0u, "a failed parse leaves no tokens");
}

Test(json, truncations_of_a_document_never_pass)
{
	const char *s = "{\"id\":\"e1\",\"data\":{\"content\":\"Hola \\u00e9 \xc3\xa9\",\"n\":[1,-2.5e3,true,null]}}";
	size_t n = strlen(s), i;

	cr_assert_eq(parse_n(s, n), JSON_OK);
	for (i = 0; i < n; i++) {
		enum json_error e = parse_n(s, i);

		cr_assert(e == JSON_E_SYNTAX || e == JSON_E_UTF8, "prefix of %zu bytes gave %d", i, e);
	}
}
