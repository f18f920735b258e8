/*
 * test_ctx_audit.c - the context store's audit log (ctx_store_config.audit,
 * AUDIT_LOG): with it on, every key read, written or deleted writes one
 * "context audit" line with the operation, the masked phone, the result and
 * the latency, for the memory store and for a real redis-server; with it
 * off, none. A full phone number never appears.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ctx_store.h"
#include "log.h"
#include "log_capture.h"
#include "redis_server.h"

#define PHONE "+573001234567"
#define MASKED "+57******4567"

static struct redis_server *rs;

static void setup(void)
{
	cr_assert(log_capture_start());
}

static void teardown(void)
{
	log_capture_stop();
	redis_server_stop(rs);
	rs = NULL;
}

/* Everything logged so far (malloc'd). */
static char *logged(void)
{
	char *text = log_capture_text();

	cr_assert_not_null(text);
	return text;
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* get (miss), put (ok), put with a stale version (conflict), get (hit),
 * a batch get of two keys, del (ok), del again (not found). */
static void exercise(ctx_store_t *cs)
{
	struct ctx_value v;
	struct ctx_get_item items[2] = {{.key = PHONE}, {.key = "+5215512345678"}};
	uint64_t ver = 0;

	ctx_value_init(&v);
	ctx_value_init(&items[0].value);
	ctx_value_init(&items[1].value);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_eq(ctx_store_put(cs, PHONE, "{\"conversation_step\":\"x\"}", 25, 0, 0, &ver), WB_OK);
	cr_assert_eq(ctx_store_put(cs, PHONE, "{\"conversation_step\":\"y\"}", 25, ver + 5, 0, NULL), WB_ERR_CONFLICT);
	cr_assert_eq(ctx_store_get(cs, PHONE, &v), WB_OK);
	cr_assert_eq(ctx_store_get_many(cs, items, 2), WB_OK);
	cr_assert_eq(ctx_store_del(cs, PHONE), WB_OK);
	cr_assert_eq(ctx_store_del(cs, PHONE), WB_ERR_NOT_FOUND);
	ctx_value_fini(&v);
	ctx_value_fini(&items[0].value);
	ctx_value_fini(&items[1].value);
}

static void check_lines(const char *out)
{
	cr_assert_null(strstr(out, PHONE), "a full phone number was logged:\n%s", out);
	cr_assert_null(strstr(out, "+5215512345678"), "a full phone number was logged:\n%s", out);
	cr_assert_eq(count_of(out, "\"msg\":\"context audit\""), 8, "8 accesses, audit lines:\n%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"get\",\"phone\":\"" MASKED "\",\"result\":\"miss\""), 1, "%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"put\",\"phone\":\"" MASKED "\",\"result\":\"ok\""), 1, "%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"put\",\"phone\":\"" MASKED "\",\"result\":\"conflict\""), 1, "%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"get\",\"phone\":\"" MASKED "\",\"result\":\"hit\""), 2, "%s", out);
	cr_assert_eq(count_of(out, "\"result\":\"miss\",\"latency_us\":"), 2, "the batch's second key:\n%s", out);
	cr_assert_eq(count_of(out, "\"batch\":2}"), 2, "the batch get names its size:\n%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"del\",\"phone\":\"" MASKED "\",\"result\":\"ok\""), 1, "%s", out);
	cr_assert_eq(count_of(out, "\"op\":\"del\",\"phone\":\"" MASKED "\",\"result\":\"NOT_FOUND\""), 1, "%s", out);
}

Test(ctx_audit, memory_store_audits_every_access_with_masked_phone, .init = setup, .fini = teardown)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY, .audit = true};
	ctx_store_t *cs = ctx_store_new(&cfg, NULL, 0);
	char *out;

	cr_assert_not_null(cs);
	exercise(cs);
	ctx_store_destroy(cs);
	out = logged();
	check_lines(out);
	free(out);
}

Test(ctx_audit, redis_store_audits_every_access_with_masked_phone, .init = setup, .fini = teardown,
     .timeout = 60)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_REDIS, .audit = true};
	ctx_store_t *cs;
	char *out;

	rs = redis_server_start(REDIS_SERVER_PLAIN);
	cr_assert_not_null(rs, "redis-server did not start");
	cfg.redis.host = "127.0.0.1";
	cfg.redis.port = redis_server_port(rs);
	cfg.redis.tls_verify = true;
	cs = ctx_store_new(&cfg, NULL, 0);
	cr_assert_not_null(cs);
	exercise(cs);
	ctx_store_destroy(cs);
	out = logged();
	check_lines(out);
	free(out);
}

Test(ctx_audit, audit_off_writes_no_audit_line, .init = setup, .fini = teardown)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY};
	ctx_store_t *cs = ctx_store_new(&cfg, NULL, 0);
	char *out;

	cr_assert_not_null(cs);
	exercise(cs);
	ctx_store_destroy(cs);
	out = logged();
	cr_assert_null(strstr(out, "context audit"), "audit lines with the audit off:\n%s", out);
	free(out);
}
