/*
 * test_phone.c - phone_mask / phone_mask_n / phone_hash against the contract
 * in phone.h. Pure functions: no setup, nothing to free.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "phone.h"

static const char *mask(const char *phone)
{
	static char out[PHONE_MASK_MAX];

	return phone_mask(phone, out, sizeof out);
}

Test(phone, e164_keeps_plus_first_two_and_last_four_digits)
{
	cr_assert_str_eq(mask("+573001234567"), "+57******4567");
	cr_assert_str_eq(mask("573001234567"), "57******4567");
	cr_assert_str_eq(mask("+14155550123"), "+14*****0123");
}

Test(phone, eight_digits_is_the_shortest_full_form)
{
	cr_assert_str_eq(mask("12345678"), "12**5678");
}

Test(phone, short_numbers_keep_only_last_two_digits)
{
	cr_assert_str_eq(mask("1234567"), "*****67");
	cr_assert_str_eq(mask("+123"), "+*23");
	cr_assert_str_eq(mask("12"), "**");
	cr_assert_str_eq(mask("7"), "*");
}

Test(phone, separators_are_dropped)
{
	cr_assert_str_eq(mask("+57 (300) 123-45.67"), "+57******4567");
}

Test(phone, garbage_becomes_three_stars)
{
	cr_assert_str_eq(mask(""), "***");
	cr_assert_str_eq(mask("+"), "***");
	cr_assert_str_eq(mask("abc"), "***");
	cr_assert_str_eq(mask("+57300x1234567"), "***");
	cr_assert_str_eq(mask("57+3001234567"), "***");
	cr_assert_str_eq(mask("++573001234567"), "***");
	cr_assert_str_eq(mask("whatsapp:+573001234567"), "***");
	cr_assert_str_eq(mask("+57:3001234567"), "***");
}

Test(phone, null_becomes_null_text)
{
	cr_assert_str_eq(mask(NULL), "null");
}

Test(phone, more_digits_than_fit_becomes_three_stars)
{
	char digits[64];
	char out[PHONE_MASK_MAX];

	memset(digits, '9', 38);
	digits[38] = '\0';
	phone_mask(digits, out, sizeof out);
	cr_assert_eq(strlen(out), 38);
	cr_assert_str_eq(out + 34, "9999");
	memset(digits, '9', 39);
	digits[39] = '\0';
	cr_assert_str_eq(phone_mask(digits, out, sizeof out), "***");
}

Test(phone, small_output_buffer_gets_a_terminated_prefix)
{
	char out[6];

	memset(out, 'x', sizeof out);
	phone_mask("+573001234567", out, sizeof out);
	cr_assert_str_eq(out, "+57**");
	cr_assert_eq(phone_mask("+573001234567", out, 0), out);
	cr_assert_str_eq(out, "+57**"); /* size 0: untouched */
}

Test(phone, mask_n_masks_only_the_given_bytes)
{
	char out[PHONE_MASK_MAX];
	const char *text = "+573001234567 and more";

	cr_assert_str_eq(phone_mask_n(text, 13, out, sizeof out), "+57******4567");
	cr_assert_str_eq(phone_mask_n(NULL, 0, out, sizeof out), "***");
}

Test(phone, hash_is_fnv1a_64)
{
	/* Published FNV-1a 64 test vectors, and one phone pinned forever:
	 * dispatch (hash % threads) must not change between releases. */
	cr_assert_eq(phone_hash("", 0), UINT64_C(0xcbf29ce484222325));
	cr_assert_eq(phone_hash("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
	cr_assert_eq(phone_hash("foobar", 6), UINT64_C(0x85944171f73967e8));
	cr_assert_eq(phone_hash("+573001234567", 13), UINT64_C(0xacda5a7f04ff16ad));
}

Test(phone, hash_uses_exactly_len_bytes)
{
	cr_assert_eq(phone_hash("+573001234567xyz", 13), phone_hash("+573001234567", 13));
	cr_assert_neq(phone_hash("+573001234567", 13), phone_hash("+573001234568", 13));
	cr_assert_neq(phone_hash("a\0b", 3), phone_hash("a", 1), "stops at NUL");
}

static const char *norm(const char *s)
{
	static char out[PHONE_E164_MAX];

	phone_normalize(s, strlen(s), out);
	return out;
}

Test(phone, normalize_adds_plus_to_provider_digits)
{
	char out[PHONE_E164_MAX];

	cr_assert(phone_normalize("573001234567", 12, out));
	cr_assert_str_eq(out, "+573001234567");
	cr_assert_str_eq(norm("+573001234567"), "+573001234567");
	cr_assert_str_eq(norm("5215512345678"), "+5215512345678"); /* legacy 521 kept */
	cr_assert_str_eq(norm("1234567"), "+1234567");             /* 7 digits: shortest */
	cr_assert_str_eq(norm("123456789012345"), "+123456789012345"); /* 15: longest */
}

Test(phone, normalize_refuses_what_is_not_e164)
{
	static const char *const bad[] = {"",        "+",           "12",        "123456",   "0123456789",
					  "+0123456789", "+57abc",  "1234567890123456", "++573001234567",
					  "57 3001234567", "57-300-123", "573001234567+", " 573001234567",
					  "+57300123456\n", "\xd9\xa5\xd9\xa7\xd9\xa3\xd9\xa0\xd9\xa0\xd9\xa1\xd9\xa2"};
	char out[PHONE_E164_MAX];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(out, 'x', sizeof out);
		cr_assert_not(phone_normalize(bad[i], strlen(bad[i]), out), "%s", bad[i]);
		cr_assert_str_eq(out, "", "%s", bad[i]);
	}
	cr_assert_not(phone_normalize(NULL, 0, out));
	cr_assert_str_eq(out, "");
}

Test(phone, normalize_reads_exactly_len_bytes)
{
	char out[PHONE_E164_MAX];

	cr_assert(phone_normalize("573001234567xyz", 12, out));
	cr_assert_str_eq(out, "+573001234567");
	cr_assert_not(phone_normalize("573001234567", 6, out));
}
