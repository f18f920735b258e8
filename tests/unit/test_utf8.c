/*
 * test_utf8.c - UTF-8 decoding, validation, counting, classification and
 * folding (utf8.h). Pure functions: no setup, nothing to free.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "utf8.h"

static const char *fold(const char *s)
{
	static char out[1024];

	utf8_fold(s, strlen(s), out, sizeof(out));
	return out;
}

Test(utf8, decode_reads_one_code_point)
{
	uint32_t cp;

	cr_assert_eq(utf8_decode("A", 1, &cp), 1u);
	cr_assert_eq(cp, 'A');
	cr_assert_eq(utf8_decode("é", 2, &cp), 2u);
	cr_assert_eq(cp, 0xE9u);
	cr_assert_eq(utf8_decode("…", 3, &cp), 3u);
	cr_assert_eq(cp, 0x2026u);
	cr_assert_eq(utf8_decode("🙏", 4, &cp), 4u);
	cr_assert_eq(cp, 0x1F64Fu);
	cr_assert_eq(utf8_decode("", 0, &cp), 0u);
}

Test(utf8, decode_refuses_malformed_sequences_one_byte_at_a_time)
{
	static const char *bad[] = {
		"\x80",             /* lone continuation */
		"\xC0\xAF",         /* overlong '/' */
		"\xC3",             /* truncated */
		"\xE2\x82",         /* truncated */
		"\xED\xA0\x80",     /* surrogate U+D800 */
		"\xE0\x80\xAF",     /* overlong */
		"\xF4\x90\x80\x80", /* above U+10FFFF */
		"\xF8\x88\x80\x80", /* 5-byte form */
		"\xFF",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t cp = 0;

		cr_assert_eq(utf8_decode(bad[i], strlen(bad[i]), &cp), 1u, "case %zu", i);
		cr_assert_eq(cp, UTF8_INVALID, "case %zu", i);
		cr_assert_not(utf8_valid(bad[i], strlen(bad[i])), "case %zu", i);
	}
}

Test(utf8, valid_accepts_well_formed_text)
{
	const char *s = "Ñandú 🙏 … 中文 a\x00b";

	cr_assert(utf8_valid(s, strlen(s)));
	cr_assert(utf8_valid("a\0b", 3), "NUL is a valid code point");
	cr_assert(utf8_valid(NULL, 0));
}

Test(utf8, count_counts_code_points)
{
	cr_assert_eq(utf8_count("", 0), 0u);
	cr_assert_eq(utf8_count("abc", 3), 3u);
	cr_assert_eq(utf8_count("Sí", strlen("Sí")), 2u);
	cr_assert_eq(utf8_count("🙏…é", strlen("🙏…é")), 3u);
	cr_assert_eq(utf8_count("a\xFF\x80z", 4), 4u, "each invalid byte counts as one");
}

Test(utf8, prefix_never_splits_a_sequence)
{
	const char *s = "aé🙏b";

	cr_assert_eq(utf8_prefix(s, strlen(s), 0), 0u);
	cr_assert_eq(utf8_prefix(s, strlen(s), 1), 1u);
	cr_assert_eq(utf8_prefix(s, strlen(s), 2), 3u);
	cr_assert_eq(utf8_prefix(s, strlen(s), 3), 7u);
	cr_assert_eq(utf8_prefix(s, strlen(s), 99), strlen(s));
}

Test(utf8, fold_lowercases_and_strips_accents)
{
	cr_assert_str_eq(fold("DONACIÓN"), "donacion");
	cr_assert_str_eq(fold("donación"), "donacion");
	cr_assert_str_eq(fold("donacion"), "donacion");
	cr_assert_str_eq(fold("ÁÉÍÓÚ áéíóú ÀÈÌÒÙ âêîôû äëïöü ãõ"), "aeiou aeiou aeiou aeiou aeiou ao");
	cr_assert_str_eq(fold("Ñandú Über Çava Ÿ"), "nandu uber cava y");
	cr_assert_str_eq(fold("Ærøskøbing straße Œuvre Þór Łódź İstanbul"), "aeroskobing strasse oeuvre thor lodz istanbul");
	cr_assert_str_eq(fold("Škoda Čapek Ğüneş Ős"), "skoda capek gunes os");
	cr_assert_str_eq(fold("Việt Nam Nguyễn"), "viet nam nguyen");
}

Test(utf8, fold_drops_combining_marks)
{
	/* "donación" with U+0301 after the o (NFD) */
	cr_assert_str_eq(fold("donacio\xCC\x81n"), "donacion");
	cr_assert_str_eq(fold("S\xCC\x81I"), "si");
}

Test(utf8, fold_turns_punctuation_and_emoji_into_single_spaces)
{
	cr_assert_str_eq(fold("¡Sí!"), "si");
	cr_assert_str_eq(fold("  si  "), "si");
	cr_assert_str_eq(fold("si, confirmo."), "si confirmo");
	cr_assert_str_eq(fold("¿Quiero hacer una DONACIÓN? 🙏🏽"), "quiero hacer una donacion");
	cr_assert_str_eq(fold("❤️ Gracias… «mucho» — “de verdad”"), "gracias mucho de verdad");
	cr_assert_str_eq(fold("María-José O'Brien"), "maria jose o brien");
	cr_assert_str_eq(fold("a\tb\r\nc\u00A0d\u2003e"), "a b c d e");
	cr_assert_str_eq(fold("(1) 2; 3: 4\"5'"), "1 2 3 4 5");
	cr_assert_str_eq(fold("👨‍👩‍👧"), "");
	cr_assert_str_eq(fold(""), "");
	cr_assert_str_eq(fold("!!!"), "");
}

Test(utf8, fold_handles_other_scripts_and_fullwidth)
{
	cr_assert_str_eq(fold("ＤＯＮＡＲ"), "donar");
	cr_assert_str_eq(fold("Привет, МИР!"), "привет мир");
	cr_assert_str_eq(fold("ΆΛΦΑ"), "αλφα");
	cr_assert_str_eq(fold("中文。日本"), "中文 日本");
	cr_assert_str_eq(fold("ª º ²"), "a o 2");
}

Test(utf8, fold_turns_invalid_bytes_into_separators)
{
	cr_assert_str_eq(fold("si\xFFno"), "si no");
	cr_assert_str_eq(fold("\xC3"), "");
	cr_assert_str_eq(fold("a\xED\xA0\x80z"), "a z");
}

Test(utf8, fold_output_is_never_longer_than_input)
{
	static const char *in[] = {"ß", "Æ", "Þ", "Œ", "ĳ", "a!b!c!d", "é é é", "¡a!¡b!", "ＡＢ", "ẞ"};
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char out[64];
		size_t n = utf8_fold(in[i], strlen(in[i]), out, strlen(in[i]) + 1);

		cr_assert_leq(n, strlen(in[i]), "%s", in[i]);
		cr_assert_eq(strlen(out), n);
	}
}

Test(utf8, fold_into_a_small_buffer_cuts_at_a_whole_unit)
{
	char out[6];
	size_t n = utf8_fold("hola mundo", 10, out, sizeof(out));

	cr_assert_eq(n, 4u, "no trailing space either");
	cr_assert_str_eq(out, "hola");
	n = utf8_fold("ab ΑΒΓ", strlen("ab ΑΒΓ"), out, sizeof(out));
	cr_assert_str_eq(out, "ab α", "no half Greek letter");
	cr_assert_eq(n, strlen("ab α"));
	cr_assert_eq(utf8_fold("abc", 3, out, 0), 0u);
	n = utf8_fold("abc", 3, out, 1);
	cr_assert_eq(n, 0u);
	cr_assert_str_eq(out, "");
}

Test(utf8, classify_letters_digits_spaces_punctuation_marks)
{
	cr_assert_eq(utf8_classify('a'), UTF8_LETTER);
	cr_assert_eq(utf8_classify(0xD1), UTF8_LETTER);   /* Ñ */
	cr_assert_eq(utf8_classify(0x0416), UTF8_LETTER); /* Ж */
	cr_assert_eq(utf8_classify(0x4E2D), UTF8_LETTER); /* 中 */
	cr_assert_eq(utf8_classify('7'), UTF8_DIGIT);
	cr_assert_eq(utf8_classify(0x0663), UTF8_DIGIT); /* Arabic-Indic 3 */
	cr_assert_eq(utf8_classify(' '), UTF8_SPACE);
	cr_assert_eq(utf8_classify(0xA0), UTF8_SPACE);
	cr_assert_eq(utf8_classify(0x3000), UTF8_SPACE);
	cr_assert_eq(utf8_classify('!'), UTF8_PUNCT);
	cr_assert_eq(utf8_classify(0xA1), UTF8_PUNCT);    /* ¡ */
	cr_assert_eq(utf8_classify(0x2026), UTF8_PUNCT);  /* … */
	cr_assert_eq(utf8_classify(0x1F64F), UTF8_PUNCT); /* 🙏 */
	cr_assert_eq(utf8_classify(0x2764), UTF8_PUNCT);  /* ❤ */
	cr_assert_eq(utf8_classify(UTF8_INVALID), UTF8_PUNCT);
	cr_assert_eq(utf8_classify(0x0301), UTF8_MARK);
	cr_assert_eq(utf8_classify(0xFE0F), UTF8_MARK);
	cr_assert_eq(utf8_classify(0x200D), UTF8_MARK);
}

Test(utf8, trim_removes_unicode_white_space_at_both_ends)
{
	size_t start, n;
	const char *s = " \t\u00A0Juan Pérez\u2003\n";

	n = utf8_trim(s, strlen(s), &start);
	cr_assert_eq(n, strlen("Juan Pérez"));
	cr_assert(memcmp(s + start, "Juan Pérez", n) == 0);
	cr_assert_eq(utf8_trim("   ", 3, &start), 0u);
	cr_assert_eq(utf8_trim("", 0, NULL), 0u);
	n = utf8_trim("ab\xFF", 3, &start);
	cr_assert_eq(n, 3u, "an invalid byte is not white space");
}
