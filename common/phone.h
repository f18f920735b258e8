/*
 * phone.h - phone numbers: masking for logs, and a stable hash.
 *
 * Pure functions, no state, thread-safe. Also the E.164 normalisation of the
 * digit strings WhatsApp providers send (contract section 6).
 */
#ifndef WB_PHONE_H
#define WB_PHONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest masked output including the NUL. */
#define PHONE_MASK_MAX 40

/*
 * Writes a masked form of phone into out (size out_size, always
 * NUL-terminated when out_size > 0): the '+' if any, the first 2 digits, one
 * '*' per hidden digit, the last 4 digits: "+573001234567" -> "+57******4567".
 * Numbers of fewer than 8 digits keep only their last 2 digits visible.
 * Anything that is not [+]digits (after dropping spaces, dashes, dots and
 * parentheses) becomes "***" so nothing unknown leaks; NULL becomes "null".
 * Returns out.
 * Edge cases: 1 or 2 digits are all hidden ("**"); more than 38 digits (the
 * most that fits PHONE_MASK_MAX) is not a phone number and becomes "***". A
 * too small out receives a cut (never longer) prefix of the masked form.
 */
char *phone_mask(const char *phone, char *out, size_t out_size);

/* phone_mask() of the len bytes at phone (no NUL needed; phone may be NULL
 * only when len is 0, which gives "***"). Used by the log scrubber to mask a
 * digit run inside a longer string. Returns out. */
char *phone_mask_n(const char *phone, size_t len, char *out, size_t out_size);

/* Size of phone_normalize()'s output: '+', 15 digits, NUL, with room. */
#define PHONE_E164_MAX 20

/*
 * Normalises a provider phone (the len bytes at s, no NUL needed; s may be
 * NULL only when len is 0) to E.164 with a leading '+': an optional leading
 * '+', then 7 to 15 ASCII digits, the first not '0' -> out = "+digits",
 * true. Anything else (spaces, dashes, letters, too short or long, a second
 * '+') -> out = "", false. Does not touch country-specific digits (Mexican
 * "521...", Argentine "549..." stay as sent).
 */
bool phone_normalize(const char *s, size_t len, char out[PHONE_E164_MAX]);

/* 64-bit FNV-1a of the bytes of phone; stable across runs and machines. */
uint64_t phone_hash(const char *phone, size_t len);

#endif /* WB_PHONE_H */
