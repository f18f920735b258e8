/*
 * log.c - one JSON object per line: {"time":...,"level":...,"msg":...,<fields>}.
 *
 * Owns two process-wide atomics: the level and the output fd (the only
 * mutable globals; see log.h). Every line is built in an 8 KiB stack buffer
 * and handed to the kernel with one write(2), so concurrent lines never
 * interleave (a pipe keeps writes of up to PIPE_BUF bytes whole; a regular
 * file opened O_APPEND keeps any size whole). No locks, no allocation.
 * Does not: rotate or buffer output, rate-limit, or know about the worker.
 *
 * Every line is valid JSON whatever the input: strings are escaped (control
 * characters as \n, \r, \t or \u00XX, DEL as \u007f), invalid UTF-8 bytes
 * become U+FFFD, NaN and infinities print as null, and a line that would
 * overflow the buffer is cut (see log_write in log.h).
 *
 * The phone scrubber is a safety net, not the mechanism: callers pass phone
 * numbers as LOG_PHONE fields. Separators are only followed after a leading
 * '+' because unprefixed runs grouped by dashes are mostly dates
 * ("2026-11-25" would otherwise be scrubbed), while "+57 300 1234567" is how
 * WhatsApp itself prints a number. Digits stored in LOG_INT/LOG_UINT fields
 * are not scrubbed: numbers there are counts and ids, not phones.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "phone.h"

/* Bytes of one line, newline included. */
#define LOG_LINE_MAX 8192

/* Shortest digit run (not counting separators) the scrubber masks. */
#define LOG_SCRUB_MIN_DIGITS 7

/* Ends a cut line; its room is kept free until the end. */
#define LOG_TRUNCATED_TAIL ",\"truncated\":true"

/* The process-wide level and output fd. Any thread; relaxed order is enough
 * because each is a single independent value. */
static atomic_int log_level_g = LOG_INFO;
static atomic_int log_fd_g = 2;

void log_set_level(enum log_level level)
{
	if ((int)level < LOG_DEBUG || level > LOG_OFF)
		return;
	atomic_store_explicit(&log_level_g, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level_g, memory_order_relaxed);
}

void log_set_fd(int fd)
{
	atomic_store_explicit(&log_fd_g, fd, memory_order_relaxed);
}

wb_err_t log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{"debug", LOG_DEBUG}, {"info", LOG_INFO},   {"warn", LOG_WARN},
		{"warning", LOG_WARN}, {"error", LOG_ERROR}, {"off", LOG_OFF},
	};
	size_t i;

	if (s == NULL || out == NULL)
		return WB_ERR_INVALID;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return WB_OK;
		}
	}
	return WB_ERR_INVALID;
}

const char *log_level_name(enum log_level level)
{
	switch (level) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
		return "info";
	case LOG_WARN:
		return "warn";
	case LOG_ERROR:
		return "error";
	case LOG_OFF:
		return "off";
	}
	return "unknown";
}

/*
 * The line under construction. lim is how far content may go (the room for
 * the truncation tail and "}\n" is held back); once a put does not fit, full
 * stays set and every later put fails until the caller rolls back.
 */
struct log_buf {
	char *p;
	size_t len;
	size_t lim;
	bool full;
};

static bool log_put(struct log_buf *b, const char *s, size_t n)
{
	if (b->full || n > b->lim - b->len) {
		b->full = true;
		return false;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return true;
}

static bool log_puts(struct log_buf *b, const char *s)
{
	return log_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence starting at s (n bytes left), or 0 when
 * s[0] does not start one (overlong forms, surrogates and code points above
 * U+10FFFF are invalid, as RFC 3629 says). s[0] is 0x80 or above. */
static size_t log_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need, i;

	if (c < 0xC2)
		return 0; /* continuation byte or overlong 2-byte lead */
	else if (c < 0xE0)
		need = 2;
	else if (c < 0xF0)
		need = 3;
	else if (c < 0xF5)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	}
	if (c == 0xE0 && s[1] < 0xA0)
		return 0; /* overlong 3-byte */
	if (c == 0xED && s[1] >= 0xA0)
		return 0; /* UTF-16 surrogate */
	if (c == 0xF0 && s[1] < 0x90)
		return 0; /* overlong 4-byte */
	if (c == 0xF4 && s[1] >= 0x90)
		return 0; /* above U+10FFFF */
	return need;
}

/* Length of the phone-like run at s[0..n) (a '+' followed by a digit, or a
 * digit), and its digit count in *digits. After a '+', a single space or dash
 * between two digits continues the run. */
static size_t log_phone_run(const char *s, size_t n, size_t *digits)
{
	bool plus = s[0] == '+';
	size_t i = plus ? 1 : 0;

	*digits = 0;
	while (i < n) {
		if (s[i] >= '0' && s[i] <= '9') {
			(*digits)++;
			i++;
		} else if (plus && *digits > 0 && (s[i] == ' ' || s[i] == '-') && i + 1 < n &&
			   s[i + 1] >= '0' && s[i + 1] <= '9') {
			i++;
		} else {
			break;
		}
	}
	return i;
}

/*
 * Appends the n bytes of s as a JSON string, quotes included, escaping it
 * and (when scrub) masking phone-like runs. Output goes in units (one escape,
 * one character, one masked run) so a cut never splits one.
 * cut false: all or nothing; false means it did not fit (b is full, the
 * caller rolls back). cut true: writes as many units as fit, always closes
 * the string, and returns false when it had to stop early.
 */
static bool log_put_json_str(struct log_buf *b, const char *s, size_t n, bool scrub, bool cut)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	bool done = true;

	if (cut && b->lim - b->len < 2) {
		b->full = true;
		return false;
	}
	if (!log_put(b, "\"", 1))
		return false;
	if (cut)
		b->lim--; /* keep room for the closing quote */
	while (i < n) {
		unsigned char c = u[i];
		bool ok;

		if (scrub && ((c >= '0' && c <= '9') ||
			      (c == '+' && i + 1 < n && u[i + 1] >= '0' && u[i + 1] <= '9'))) {
			size_t digits;
			size_t run = log_phone_run(s + i, n - i, &digits);

			if (digits >= LOG_SCRUB_MIN_DIGITS) {
				char masked[PHONE_MASK_MAX];

				phone_mask_n(s + i, run, masked, sizeof masked);
				ok = log_puts(b, masked);
			} else {
				ok = log_put(b, s + i, run); /* digits, '+', ' ', '-' */
			}
			if (!ok)
				break;
			i += run;
			continue;
		}
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			ok = log_put(b, esc, 2);
			i++;
		} else if (c == '\n') {
			ok = log_put(b, "\\n", 2);
			i++;
		} else if (c == '\r') {
			ok = log_put(b, "\\r", 2);
			i++;
		} else if (c == '\t') {
			ok = log_put(b, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7F) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};

			ok = log_put(b, esc, sizeof esc);
			i++;
		} else if (c < 0x80) {
			ok = log_put(b, s + i, 1);
			i++;
		} else {
			size_t len = log_utf8_len(u + i, n - i);

			if (len == 0) {
				ok = log_put(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
				i++;
			} else {
				ok = log_put(b, s + i, len);
				i += len;
			}
		}
		if (!ok)
			break;
	}
	if (i < n)
		done = false;
	if (!cut)
		return done && log_put(b, "\"", 1);
	b->lim++;
	b->full = false;
	log_put(b, "\"", 1); /* fits: its byte was held back */
	return done;
}

/* Shortest of %.15g..%.17g that reads back as d (finite d only). */
static void log_fmt_double(double d, char *out, size_t size)
{
	int prec;
	char *comma;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	/* A locale with a decimal comma must not break the JSON. */
	comma = strchr(out, ',');
	if (comma != NULL)
		*comma = '.';
}

/* Appends the value of f (all or nothing; false when it did not fit). */
static bool log_put_value(struct log_buf *b, const struct log_field *f)
{
	char num[64];

	switch (f->type) {
	case LOG_F_STR:
		if (f->v.s == NULL)
			return log_puts(b, "null");
		return log_put_json_str(b, f->v.s, strlen(f->v.s), true, false);
	case LOG_F_PHONE: {
		char masked[PHONE_MASK_MAX];

		if (f->v.s == NULL)
			return log_puts(b, "null");
		phone_mask(f->v.s, masked, sizeof masked);
		return log_put_json_str(b, masked, strlen(masked), false, false);
	}
	case LOG_F_INT:
		snprintf(num, sizeof num, "%" PRId64, f->v.i);
		return log_puts(b, num);
	case LOG_F_UINT:
		snprintf(num, sizeof num, "%" PRIu64, f->v.u);
		return log_puts(b, num);
	case LOG_F_DOUBLE:
		if (!isfinite(f->v.d))
			return log_puts(b, "null");
		log_fmt_double(f->v.d, num, sizeof num);
		return log_puts(b, num);
	case LOG_F_BOOL:
		return log_puts(b, f->v.b ? "true" : "false");
	}
	return log_puts(b, "null");
}

/* "2026-11-25T04:23:26.123Z" (UTC, milliseconds) into out. */
static void log_fmt_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	time_t sec;

	clock_gettime(CLOCK_REALTIME, &ts);
	sec = ts.tv_sec;
	gmtime_r(&sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

/* One write(2) of the line; retried only for EINTR or a partial write. */
static void log_emit(const char *p, size_t n)
{
	int fd = atomic_load_explicit(&log_fd_g, memory_order_relaxed);

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

void log_write(enum log_level level, const char *msg, const struct log_field *fields, size_t n)
{
	char line[LOG_LINE_MAX];
	char ts[64];
	struct log_buf b = {
		.p = line,
		.len = 0,
		.lim = LOG_LINE_MAX - (sizeof LOG_TRUNCATED_TAIL - 1) - 2, /* tail + "}\n" */
		.full = false,
	};
	bool truncated = false;
	int saved_errno = errno;
	size_t i;

	if ((int)level < LOG_DEBUG || level >= LOG_OFF || !log_enabled(level))
		return;

	log_fmt_time(ts, sizeof ts);
	log_puts(&b, "{\"time\":\"");
	log_puts(&b, ts);
	log_puts(&b, "\",\"level\":\"");
	log_puts(&b, log_level_name(level));
	log_puts(&b, "\",\"msg\":");
	if (msg == NULL)
		log_puts(&b, "null");
	else if (!log_put_json_str(&b, msg, strlen(msg), true, true))
		truncated = true;

	for (i = 0; i < n && fields != NULL && !truncated; i++) {
		const struct log_field *f = &fields[i];
		const char *key = f->key != NULL ? f->key : "";
		size_t mark = b.len;

		log_put(&b, ",", 1);
		log_put_json_str(&b, key, strlen(key), false, false);
		log_put(&b, ":", 1);
		log_put_value(&b, f);
		if (b.full) {
			b.len = mark;
			b.full = false;
			truncated = true;
		}
	}

	b.lim = LOG_LINE_MAX;
	if (truncated)
		log_puts(&b, LOG_TRUNCATED_TAIL);
	log_put(&b, "}\n", 2);
	log_emit(line, b.len);
	errno = saved_errno;
}
