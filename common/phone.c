/*
 * phone.c - masking of phone numbers for logs, and the dispatch hash.
 *
 * Pure functions over the caller's buffers: no state, no allocation, safe
 * from any thread. phone_normalize() turns the digit strings providers send
 * into E.164; it does not decide what is a phone number inside free text
 * (log.c's scrubber does, then calls phone_mask_n()).
 */
#include "phone.h"

#include <stdbool.h>
#include <string.h>

/* Most digits whose masked form ('+', digits, NUL) fits PHONE_MASK_MAX. */
#define PHONE_MASK_MAX_DIGITS (PHONE_MASK_MAX - 2)

/* Copies s (NUL-terminated) into out, cut to fit; always terminates when
 * out_size > 0. */
static char *phone_put(char *out, size_t out_size, const char *s)
{
	size_t n;

	if (out_size == 0)
		return out;
	n = strlen(s);
	if (n >= out_size)
		n = out_size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static bool phone_is_separator(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')';
}

char *phone_mask_n(const char *phone, size_t len, char *out, size_t out_size)
{
	char digits[PHONE_MASK_MAX_DIGITS];
	char masked[PHONE_MASK_MAX];
	size_t ndigits = 0;
	size_t visible_head, visible_tail, i, o = 0;
	bool plus = false;

	for (i = 0; i < len; i++) {
		char c = phone[i];

		if (c >= '0' && c <= '9') {
			if (ndigits == sizeof digits)
				return phone_put(out, out_size, "***");
			digits[ndigits++] = c;
		} else if (c == '+' && ndigits == 0 && !plus) {
			plus = true;
		} else if (!phone_is_separator(c)) {
			return phone_put(out, out_size, "***");
		}
	}
	if (ndigits == 0)
		return phone_put(out, out_size, "***");

	if (ndigits >= 8) {
		visible_head = 2;
		visible_tail = 4;
	} else {
		visible_head = 0;
		visible_tail = ndigits > 2 ? 2 : 0;
	}

	if (plus)
		masked[o++] = '+';
	for (i = 0; i < ndigits; i++) {
		bool show = i < visible_head || i >= ndigits - visible_tail;

		masked[o++] = show ? digits[i] : '*';
	}
	masked[o] = '\0';
	return phone_put(out, out_size, masked);
}

char *phone_mask(const char *phone, char *out, size_t out_size)
{
	if (phone == NULL)
		return phone_put(out, out_size, "null");
	return phone_mask_n(phone, strlen(phone), out, out_size);
}

uint64_t phone_hash(const char *phone, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a 64 offset basis */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)phone[i];
		h *= UINT64_C(0x100000001b3); /* FNV-1a 64 prime */
	}
	return h;
}

bool phone_normalize(const char *s, size_t len, char out[PHONE_E164_MAX])
{
	size_t i = 0, ndigits;

	out[0] = '\0';
	if (len > 0 && s[0] == '+')
		i = 1;
	ndigits = len - i;
	if (ndigits < 7 || ndigits > 15 || s[i] == '0')
		return false;
	for (size_t k = i; k < len; k++) {
		if (s[k] < '0' || s[k] > '9')
			return false;
	}
	out[0] = '+';
	memcpy(out + 1, s + i, ndigits);
	out[1 + ndigits] = '\0';
	return true;
}
