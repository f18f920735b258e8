/*
 * log.h - structured log lines: one JSON object per line on stderr (or the fd
 * set with log_set_fd), with "time" (UTC, ms), "level", "msg" and fields.
 *
 * Phone numbers never appear in full: LOG_PHONE fields are masked with
 * phone_mask(), and as a safety net every string value and the message are
 * scrubbed of digit runs that look like phone numbers (7+ digits, optional
 * leading '+'; after a '+' the digits may be grouped by single spaces or
 * dashes, "+57 300 123-4567"). A run is replaced by its phone_mask() form,
 * so it reads like a LOG_PHONE field: "+573001234567" -> "+57******4567"
 * (first 2 and last 4 digits), 7 digits -> "*****67". Keys are not scrubbed.
 * Thread-safe: each line is formatted in a stack buffer and written with one
 * write(2). The level is the one process-wide mutable setting (atomic).
 */
#ifndef WB_LOG_H
#define WB_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO = 1,
	LOG_WARN = 2,
	LOG_ERROR = 3,
	LOG_OFF = 4,
};

enum log_field_type {
	LOG_F_STR,   /* v.s, JSON-escaped, scrubbed; NULL prints null */
	LOG_F_PHONE, /* v.s, masked with phone_mask() */
	LOG_F_INT,   /* v.i */
	LOG_F_UINT,  /* v.u */
	LOG_F_DOUBLE,/* v.d */
	LOG_F_BOOL,  /* v.b */
};

struct log_field {
	const char *key; /* a literal: not escaped, not scrubbed */
	enum log_field_type type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
		double d;
		bool b;
	} v;
};

#define LOG_STR(k, x)    ((struct log_field){.key = (k), .type = LOG_F_STR, .v.s = (x)})
#define LOG_PHONE(k, x)  ((struct log_field){.key = (k), .type = LOG_F_PHONE, .v.s = (x)})
#define LOG_INT(k, x)    ((struct log_field){.key = (k), .type = LOG_F_INT, .v.i = (int64_t)(x)})
#define LOG_UINT(k, x)   ((struct log_field){.key = (k), .type = LOG_F_UINT, .v.u = (uint64_t)(x)})
#define LOG_DOUBLE(k, x) ((struct log_field){.key = (k), .type = LOG_F_DOUBLE, .v.d = (double)(x)})
#define LOG_BOOL(k, x)   ((struct log_field){.key = (k), .type = LOG_F_BOOL, .v.b = (bool)(x)})
#define LOG_ERR(k, e)    LOG_STR((k), wb_err_name(e))

/* Sets / reads the process-wide level (default LOG_INFO). Any thread. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
static inline bool log_enabled(enum log_level level)
{
	return level >= log_get_level();
}

/* Where lines go (default 2, stderr). For tests. Any thread. */
void log_set_fd(int fd);

/* "debug" | "info" | "warn" | "warning" | "error" | "off", any case.
 * WB_OK or WB_ERR_INVALID (*out untouched). */
wb_err_t log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Writes one line when level is enabled. fields may be NULL when n is 0.
 * A line longer than the internal buffer (8 KiB) is cut at a field boundary
 * and carries "truncated":true; it is still valid JSON. Cannot fail.
 * Details: the field that does not fit and all after it are left out; a
 * message that alone does not fit is cut at a character boundary. Invalid
 * UTF-8 bytes become U+FFFD. NULL msg or string values print null. errno is
 * preserved. Write errors are ignored (there is nowhere to report them). */
void log_write(enum log_level level, const char *msg, const struct log_field *fields, size_t n);

/* log_at(LOG_INFO, "context saved", LOG_PHONE("phone", p), LOG_UINT("version", v));
 * at least one field; use log_write(level, msg, NULL, 0) for none. The fields
 * are not evaluated when the level is off. */
#define log_at(level, msg, ...)                                                          \
	do {                                                                             \
		if (log_enabled(level)) {                                                \
			const struct log_field log_f_[] = {__VA_ARGS__};                 \
			log_write((level), (msg), log_f_, sizeof log_f_ / sizeof log_f_[0]); \
		}                                                                        \
	} while (0)

#endif /* WB_LOG_H */
