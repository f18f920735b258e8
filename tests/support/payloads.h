/*
 * payloads.h - inbound payloads for benchmarks and stress programs: one
 * compact ACS Event Grid or Meta webhook text message, as the providers
 * send it, and the donations cycle those programs drive every phone
 * through. Pure functions, no state.
 */
#ifndef WB_PAYLOADS_H
#define WB_PAYLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cycle: greeting with the intent, a name, a ministry, "si"; and the
 * conversation_step each reply must carry after it. */
extern const char *const payload_cycle_text[4];
extern const char *const payload_cycle_step[4];

/*
 * Writes a text message from phone_digits ("573001234567") into buf: ACS
 * Event Grid when meta is 0, a Meta webhook otherwise. seq makes the event
 * id unique. Returns the length (snprintf's rule: >= cap means cut).
 */
int payload_text(char *buf, size_t cap, int meta, const char *phone_digits, uint64_t seq, const char *text);

/* true when the reply envelope value names conversation_step step. */
bool payload_reply_has_step(const char *value, size_t len, const char *step);

#endif /* WB_PAYLOADS_H */
