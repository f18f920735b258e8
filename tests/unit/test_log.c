/*
 * test_log.c - log lines against the contract in log.h: every line is one
 * valid JSON object (checked with json-c in strict mode with UTF-8
 * validation), levels filter, phone numbers never appear in full.
 * Each test sends lines to its own unlinked temporary file via log_set_fd
 * and reads them back; criterion runs each test in its own process, so the
 * process-wide level and fd do not leak between tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MAX_LINES 2048

/* Lines written to one temporary file. */
struct capture {
	int fd;
	char *text;              /* all bytes written, NUL-terminated */
	size_t nlines;
	char *lines[MAX_LINES];  /* point into text; '\n' replaced by NUL */
	size_t lens[MAX_LINES];
};

static void capture_start(struct capture *c)
{
	char path[] = "/tmp/test_log_XXXXXX";

	memset(c, 0, sizeof *c);
	c->fd = mkstemp(path);
	cr_assert_geq(c->fd, 0);
	unlink(path);
	cr_assert_eq(fcntl(c->fd, F_SETFL, O_APPEND), 0);
	log_set_fd(c->fd);
}

/* Reads everything back and splits it into lines; every line must end in
 * '\n'. */
static void capture_read(struct capture *c)
{
	struct stat st;
	size_t off = 0, start = 0;
	char *p;

	cr_assert_eq(fstat(c->fd, &st), 0);
	c->text = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(c->text);
	while (off < (size_t)st.st_size) {
		ssize_t r = pread(c->fd, c->text + off, (size_t)st.st_size - off, (off_t)off);

		cr_assert_gt(r, 0);
		off += (size_t)r;
	}
	c->text[off] = '\0';
	for (p = c->text; (size_t)(p - c->text) < off; p++) {
		if (*p != '\n')
			continue;
		cr_assert_lt(c->nlines, MAX_LINES);
		*p = '\0';
		c->lines[c->nlines] = c->text + start;
		c->lens[c->nlines] = (size_t)(p - c->text) - start;
		c->nlines++;
		start = (size_t)(p - c->text) + 1;
	}
	cr_assert_eq(start, off, "output does not end with a newline");
}

static void capture_end(struct capture *c)
{
	log_set_fd(2);
	close(c->fd);
	free(c->text);
}

/* Strict parse of one whole line, UTF-8 validated; NULL when not valid. */
static json_object *parse_line(const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	cr_assert_not_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (o != NULL && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Parses line i of c, asserting that it is a JSON object. */
static json_object *line_json(const struct capture *c, size_t i)
{
	json_object *o;

	cr_assert_lt(i, c->nlines);
	o = parse_line(c->lines[i], c->lens[i]);
	cr_assert_not_null(o, "line %zu is not valid JSON: %s", i, c->lines[i]);
	cr_assert(json_object_is_type(o, json_type_object));
	return o;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "missing key %s", key);
	cr_assert(json_object_is_type(v, json_type_string), "%s is not a string", key);
	return json_object_get_string(v);
}

static bool has_key(json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

Test(log, line_has_time_level_and_msg)
{
	struct capture c;
	json_object *o;
	const char *t;

	capture_start(&c);
	log_write(LOG_INFO, "worker started", NULL, 0);
	capture_read(&c);
	cr_assert_eq(c.nlines, 1);
	cr_assert(strncmp(c.lines[0], "{\"time\":\"", 9) == 0, "%s", c.lines[0]);
	o = line_json(&c, 0);
	t = get_str(o, "time");
	/* 2026-11-25T04:23:26.123Z */
	cr_assert_eq(strlen(t), 24, "%s", t);
	cr_assert_eq(t[4], '-');
	cr_assert_eq(t[10], 'T');
	cr_assert_eq(t[19], '.');
	cr_assert_eq(t[23], 'Z');
	cr_assert_str_eq(get_str(o, "level"), "info");
	cr_assert_str_eq(get_str(o, "msg"), "worker started");
	cr_assert_eq(json_object_object_length(o), 3);
	json_object_put(o);
	capture_end(&c);
}

Test(log, every_field_type_is_printed)
{
	struct capture c;
	json_object *o, *v;

	capture_start(&c);
	log_at(LOG_WARN, "fields", LOG_STR("s", "text"), LOG_INT("i", -42),
	       LOG_UINT("u", UINT64_MAX), LOG_DOUBLE("d", 0.1), LOG_DOUBLE("third", 1.0 / 3.0),
	       LOG_BOOL("b", true), LOG_STR("nul", NULL), LOG_PHONE("pnul", NULL),
	       LOG_ERR("err", WB_ERR_TIMEOUT));
	capture_read(&c);
	cr_assert_eq(c.nlines, 1);
	cr_assert(strstr(c.lines[0], "\"d\":0.1,") != NULL, "short form: %s", c.lines[0]);
	cr_assert(strstr(c.lines[0], "\"u\":18446744073709551615") != NULL, "%s", c.lines[0]);
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "level"), "warn");
	cr_assert_str_eq(get_str(o, "s"), "text");
	cr_assert(json_object_object_get_ex(o, "i", &v));
	cr_assert_eq(json_object_get_int64(v), -42);
	cr_assert(json_object_object_get_ex(o, "third", &v));
	cr_assert(json_object_get_double(v) == 1.0 / 3.0, "round trip of 1/3");
	cr_assert(json_object_object_get_ex(o, "b", &v));
	cr_assert(json_object_get_boolean(v));
	cr_assert(json_object_object_get_ex(o, "nul", &v));
	cr_assert_null(v);
	cr_assert(json_object_object_get_ex(o, "pnul", &v));
	cr_assert_null(v);
	cr_assert_str_eq(get_str(o, "err"), "TIMEOUT");
	json_object_put(o);
	capture_end(&c);
}

Test(log, nan_and_infinity_print_as_null)
{
	struct capture c;
	json_object *o, *v;

	capture_start(&c);
	log_at(LOG_INFO, "doubles", LOG_DOUBLE("nan", NAN), LOG_DOUBLE("inf", INFINITY),
	       LOG_DOUBLE("ninf", -INFINITY), LOG_DOUBLE("big", 1e300));
	capture_read(&c);
	o = line_json(&c, 0);
	cr_assert(json_object_object_get_ex(o, "nan", &v));
	cr_assert_null(v);
	cr_assert(json_object_object_get_ex(o, "inf", &v));
	cr_assert_null(v);
	cr_assert(json_object_object_get_ex(o, "ninf", &v));
	cr_assert_null(v);
	cr_assert(json_object_object_get_ex(o, "big", &v));
	cr_assert(json_object_get_double(v) == 1e300);
	json_object_put(o);
	capture_end(&c);
}

static int evaluated;

static int count_evaluation(void)
{
	return ++evaluated;
}

Test(log, level_filters_lines_and_skips_field_evaluation)
{
	struct capture c;
	json_object *o;

	capture_start(&c);
	cr_assert_eq(log_get_level(), LOG_INFO, "default level is info");
	log_write(LOG_DEBUG, "hidden by default", NULL, 0);
	log_set_level(LOG_WARN);
	cr_assert_eq(log_get_level(), LOG_WARN);
	log_at(LOG_INFO, "hidden", LOG_INT("n", count_evaluation()));
	log_at(LOG_WARN, "shown", LOG_INT("n", count_evaluation()));
	log_write(LOG_ERROR, "also shown", NULL, 0);
	log_set_level(LOG_OFF);
	log_write(LOG_ERROR, "nothing when off", NULL, 0);
	log_set_level(LOG_DEBUG);
	log_write(LOG_DEBUG, "debug now", NULL, 0);
	capture_read(&c);
	cr_assert_eq(evaluated, 1, "fields of a disabled line were evaluated");
	cr_assert_eq(c.nlines, 3);
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "msg"), "shown");
	json_object_put(o);
	o = line_json(&c, 1);
	cr_assert_str_eq(get_str(o, "level"), "error");
	json_object_put(o);
	o = line_json(&c, 2);
	cr_assert_str_eq(get_str(o, "level"), "debug");
	json_object_put(o);
	capture_end(&c);
}

Test(log, level_names_parse_in_any_case)
{
	enum log_level l = LOG_ERROR;

	cr_assert_eq(log_level_parse("DEBUG", &l), WB_OK);
	cr_assert_eq(l, LOG_DEBUG);
	cr_assert_eq(log_level_parse("Info", &l), WB_OK);
	cr_assert_eq(l, LOG_INFO);
	cr_assert_eq(log_level_parse("warning", &l), WB_OK);
	cr_assert_eq(l, LOG_WARN);
	cr_assert_eq(log_level_parse("warn", &l), WB_OK);
	cr_assert_eq(log_level_parse("error", &l), WB_OK);
	cr_assert_eq(l, LOG_ERROR);
	cr_assert_eq(log_level_parse("off", &l), WB_OK);
	cr_assert_eq(l, LOG_OFF);
	cr_assert_eq(log_level_parse("verbose", &l), WB_ERR_INVALID);
	cr_assert_eq(log_level_parse("", &l), WB_ERR_INVALID);
	cr_assert_eq(log_level_parse(NULL, &l), WB_ERR_INVALID);
	cr_assert_eq(l, LOG_OFF, "untouched on error");
	cr_assert_str_eq(log_level_name(LOG_WARN), "warn");
	cr_assert_str_eq(log_level_name(LOG_DEBUG), "debug");
}

Test(log, phone_field_is_masked)
{
	struct capture c;
	json_object *o;

	capture_start(&c);
	log_at(LOG_INFO, "context saved", LOG_PHONE("phone", "+573001234567"),
	       LOG_PHONE("odd", "not a phone"));
	capture_read(&c);
	cr_assert_null(strstr(c.text, "3001234567"));
	cr_assert_null(strstr(c.text, "not a phone"));
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "phone"), "+57******4567");
	cr_assert_str_eq(get_str(o, "odd"), "***");
	json_object_put(o);
	capture_end(&c);
}

Test(log, phone_numbers_in_msg_and_strings_are_scrubbed)
{
	struct capture c;
	json_object *o;

	capture_start(&c);
	log_at(LOG_WARN, "reply to +573001234567 failed",
	       LOG_STR("body", "call me at 3001234567!"),
	       LOG_STR("spaced", "+57 300 123 4567."),
	       LOG_STR("dashed", "+1-415-555-0123"),
	       LOG_STR("seven", "x1234567y"),
	       LOG_STR("short", "order 123456 ok"),
	       LOG_STR("date", "2026-11-25 04:23:26"));
	capture_read(&c);
	cr_assert_null(strstr(c.text, "3001234567"));
	cr_assert_null(strstr(c.text, "300 123"));
	cr_assert_null(strstr(c.text, "555"));
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "msg"), "reply to +57******4567 failed");
	cr_assert_str_eq(get_str(o, "body"), "call me at 30****4567!");
	cr_assert_str_eq(get_str(o, "spaced"), "+57******4567.");
	cr_assert_str_eq(get_str(o, "dashed"), "+14*****0123");
	cr_assert_str_eq(get_str(o, "seven"), "x*****67y");
	cr_assert_str_eq(get_str(o, "short"), "order 123456 ok");
	cr_assert_str_eq(get_str(o, "date"), "2026-11-25 04:23:26");
	json_object_put(o);
	capture_end(&c);
}

Test(log, quotes_backslashes_and_control_chars_are_escaped)
{
	const char *nasty = "say \"hi\"\\ \n\r\t\x01\x1f\x7f end";
	struct capture c;
	json_object *o;

	capture_start(&c);
	log_at(LOG_INFO, nasty, LOG_STR("v", nasty));
	capture_read(&c);
	cr_assert_eq(c.nlines, 1, "a newline in a value split the line");
	cr_assert(strstr(c.lines[0], "\\u0001") != NULL, "%s", c.lines[0]);
	cr_assert(strstr(c.lines[0], "\\u007f") != NULL, "%s", c.lines[0]);
	cr_assert(strstr(c.lines[0], "\\n\\r\\t") != NULL, "short escapes: %s", c.lines[0]);
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "msg"), nasty);
	cr_assert_str_eq(get_str(o, "v"), nasty);
	json_object_put(o);
	capture_end(&c);
}

Test(log, invalid_utf8_becomes_replacement_character)
{
	struct capture c;
	json_object *o;

	capture_start(&c);
	log_at(LOG_INFO, "bad \xff bytes",
	       LOG_STR("lone_continuation", "a\x80z"),
	       LOG_STR("truncated_seq", "a\xe2\x82"),
	       LOG_STR("overlong", "\xc0\xaf"),
	       LOG_STR("surrogate", "\xed\xa0\x80"),
	       LOG_STR("too_big", "\xf4\x90\x80\x80"),
	       LOG_STR("valid", "ni\xc3\xb1o \xe2\x82\xac \xf0\x9f\x98\x80"));
	capture_read(&c);
	o = line_json(&c, 0);
	cr_assert_str_eq(get_str(o, "msg"), "bad \xef\xbf\xbd bytes");
	cr_assert_str_eq(get_str(o, "lone_continuation"), "a\xef\xbf\xbdz");
	cr_assert_str_eq(get_str(o, "truncated_seq"), "a\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(get_str(o, "overlong"), "\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(get_str(o, "surrogate"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(get_str(o, "too_big"),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(get_str(o, "valid"), "ni\xc3\xb1o \xe2\x82\xac \xf0\x9f\x98\x80");
	json_object_put(o);
	capture_end(&c);
}

Test(log, huge_field_is_cut_at_a_field_boundary)
{
	size_t n = 20000;
	char *big = malloc(n + 1);
	struct capture c;
	json_object *o;

	cr_assert_not_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	capture_start(&c);
	log_at(LOG_INFO, "big", LOG_INT("before", 1), LOG_STR("body", big), LOG_INT("after", 2));
	capture_read(&c);
	cr_assert_eq(c.nlines, 1);
	cr_assert_leq(c.lens[0] + 1, 8192);
	o = line_json(&c, 0);
	cr_assert(has_key(o, "before"));
	cr_assert_not(has_key(o, "body"));
	cr_assert_not(has_key(o, "after"));
	cr_assert(json_object_get_boolean(json_object_object_get(o, "truncated")));
	json_object_put(o);
	capture_end(&c);
	free(big);
}

/* Bytes of a line with msg "fits" and one string field "body" of n bytes:
 * {"time":"<24>","level":"info","msg":"fits","body":"<n>"}\n */
#define FITS_LINE_OVERHEAD 74
/* Room kept free for ,"truncated":true while fields are added. */
#define TRUNCATED_TAIL_LEN 17

static void log_body_of(size_t n, struct capture *c)
{
	char *big = malloc(n + 1);

	cr_assert_not_null(big);
	memset(big, 'b', n);
	big[n] = '\0';
	log_at(LOG_INFO, "fits", LOG_STR("body", big));
	free(big);
	capture_read(c);
}

Test(log, field_up_to_the_limit_is_kept_and_one_byte_more_is_not)
{
	size_t n = 8192 - FITS_LINE_OVERHEAD - TRUNCATED_TAIL_LEN;
	struct capture c;
	json_object *o;

	capture_start(&c);
	log_body_of(n, &c);
	cr_assert_eq(c.lens[0] + 1, n + FITS_LINE_OVERHEAD);
	o = line_json(&c, 0);
	cr_assert_eq(strlen(get_str(o, "body")), n);
	cr_assert_not(has_key(o, "truncated"));
	json_object_put(o);
	capture_end(&c);

	capture_start(&c);
	log_body_of(n + 1, &c);
	o = line_json(&c, 0);
	cr_assert_not(has_key(o, "body"));
	cr_assert(has_key(o, "truncated"));
	json_object_put(o);
	capture_end(&c);
}

Test(log, huge_msg_of_escapes_and_multibyte_is_cut_validly)
{
	/* Units of 1, 2, 3, 4 and 6 output bytes, so some cut point lands in
	 * the middle of one of them for every alignment. */
	const char *unit = "a\"\xc3\xb1\xe2\x82\xac\xf0\x9f\x98\x80\x01";
	size_t ulen = strlen(unit), reps = 3000, i;
	char *msg = malloc(ulen * reps + 1);
	struct capture c;
	json_object *o;

	cr_assert_not_null(msg);
	for (i = 0; i < reps; i++)
		memcpy(msg + i * ulen, unit, ulen);
	msg[ulen * reps] = '\0';
	capture_start(&c);
	for (i = 0; i < ulen; i++) {
		/* shift the alignment by one byte each time */
		log_at(LOG_INFO, msg + i, LOG_INT("i", i));
		log_write(LOG_INFO, msg + i, NULL, 0);
	}
	capture_read(&c);
	cr_assert_eq(c.nlines, 2 * ulen);
	for (i = 0; i < c.nlines; i++) {
		cr_assert_leq(c.lens[i] + 1, 8192);
		o = line_json(&c, i);
		cr_assert(json_object_get_boolean(json_object_object_get(o, "truncated")));
		cr_assert_gt(strlen(get_str(o, "msg")), 4000);
		json_object_put(o);
	}
	capture_end(&c);
	free(msg);
}

Test(log, null_msg_and_null_key_stay_valid)
{
	struct capture c;
	json_object *o, *v;

	capture_start(&c);
	log_at(LOG_INFO, NULL, LOG_INT(NULL, 5));
	capture_read(&c);
	o = line_json(&c, 0);
	cr_assert(json_object_object_get_ex(o, "msg", &v));
	cr_assert_null(v);
	json_object_put(o);
	capture_end(&c);
}

Test(log, errno_is_preserved_even_when_the_write_fails)
{
	struct capture c;

	capture_start(&c);
	errno = ECONNRESET;
	log_write(LOG_ERROR, "lost connection", NULL, 0);
	cr_assert_eq(errno, ECONNRESET);
	log_set_fd(-1); /* write(2) fails with EBADF */
	log_write(LOG_ERROR, "nowhere to go", NULL, 0);
	cr_assert_eq(errno, ECONNRESET);
	capture_end(&c);
}

struct writer_arg {
	int id;
};

static void *writer_main(void *p)
{
	const struct writer_arg *a = p;
	char pad[600];
	int i;

	memset(pad, 'p', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	for (i = 0; i < 200; i++)
		log_at(LOG_INFO, "concurrent", LOG_INT("thread", a->id), LOG_INT("i", i),
		       LOG_STR("pad", pad));
	return NULL;
}

Test(log, concurrent_lines_never_interleave)
{
	pthread_t th[4];
	struct writer_arg args[4];
	struct capture c;
	size_t i;

	capture_start(&c);
	for (i = 0; i < 4; i++) {
		args[i].id = (int)i;
		cr_assert_eq(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	capture_read(&c);
	cr_assert_eq(c.nlines, 800);
	for (i = 0; i < c.nlines; i++)
		json_object_put(line_json(&c, i));
	capture_end(&c);
}
