/*
 * test_ctx_store_contract.c - the context store contract, run unchanged
 * against both backends: the memory store, and a real redis-server started on
 * a free loopback port for each test (tests/support/redis_server.h).
 *
 * Each behaviour is written once as a function of a ctx_store_t and becomes
 * two criterion tests, ctx_store_memory/<name> and ctx_store_redis/<name>.
 * Only the public header ctx_store.h is used.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "ctx_store.h"
#include "log.h"
#include "redis_server.h"
#include "store_ops.h"
#include "test_clock.h"

/* ---- fixtures ------------------------------------------------------------ */

static struct redis_server *rs;
static ctx_store_t *cs;

static void quiet_logs(void)
{
	log_set_level(LOG_ERROR);
}

static void memory_setup(void)
{
	struct ctx_store_config cfg = {
		.backend = CTX_BACKEND_MEMORY,
		.memory = {.sweep_interval_ms = 50},
	};
	char err[256] = "";

	quiet_logs();
	cs = ctx_store_new(&cfg, err, sizeof(err));
	cr_assert_not_null(cs, "memory store: %s", err);
}

static void redis_setup(void)
{
	struct ctx_store_config cfg = {
		.backend = CTX_BACKEND_REDIS,
		.redis = {
			.host = "127.0.0.1",
			.tls_verify = true,
			.connect_timeout_ms = 2000,
			.command_timeout_ms = 2000,
			.pool_size = 4,
		},
	};
	char err[256] = "";

	quiet_logs();
	rs = redis_server_start(REDIS_SERVER_PLAIN);
	cr_assert_not_null(rs, "could not start redis-server");
	cfg.redis.port = redis_server_port(rs);
	cs = ctx_store_new(&cfg, err, sizeof(err));
	cr_assert_not_null(cs, "redis store: %s", err);
}

static void teardown(void)
{
	ctx_store_destroy(cs);
	cs = NULL;
	redis_server_stop(rs);
	rs = NULL;
}

TestSuite(ctx_store_memory, .init = memory_setup, .fini = teardown, .timeout = 60);
TestSuite(ctx_store_redis, .init = redis_setup, .fini = teardown, .timeout = 60);

/* One body, two tests. */
#define CONTRACT(name)                                            \
	static void name(void);                                   \
	Test(ctx_store_memory, name) { name(); }                  \
	Test(ctx_store_redis, name) { name(); }                   \
	static void name(void)

/* ---- helpers ------------------------------------------------------------- */

static wb_err_t put_str(const char *key, const char *json, uint64_t expected, uint32_t ttl_ms,
			uint64_t *version)
{
	return ctx_store_put(cs, key, json, strlen(json), expected, ttl_ms, version);
}

static wb_err_t update_str(const char *key, const char *json, uint32_t ttl_ms)
{
	return ctx_store_update(cs, key, json, strlen(json), ttl_ms, NULL);
}

/* Reads key and returns its JSON parsed (caller puts it), NULL on a miss. */
static json_object *get_obj(const char *key, uint64_t *version)
{
	struct ctx_value v;
	json_object *obj = NULL;

	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, key, &v), WB_OK);
	if (v.found) {
		obj = json_tokener_parse(v.json);
		cr_assert_not_null(obj, "stored context is not JSON: %s", v.json);
		cr_assert(json_object_is_type(obj, json_type_object));
	} else {
		cr_assert_eq(v.version, 0);
	}
	if (version)
		*version = v.version;
	ctx_value_fini(&v);
	return obj;
}

/* true when key holds a context (the parsed copy is freed). */
static bool exists(const char *key)
{
	json_object *obj = get_obj(key, NULL);

	json_object_put(obj);
	return obj != NULL;
}

static const char *field_str(json_object *obj, const char *k)
{
	json_object *f;

	if (!json_object_object_get_ex(obj, k, &f))
		return NULL;
	return json_object_get_string(f);
}

/* ---- get / put / update / delete ----------------------------------------- */

CONTRACT(get_of_unknown_phone_is_a_miss)
{
	struct ctx_value v;

	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, "+573001234567", &v), WB_OK);
	cr_assert_not(v.found);
	cr_assert_eq(v.version, 0);
	cr_assert_str_eq(v.json, "{}");
	ctx_value_fini(&v);
}

CONTRACT(put_then_get_returns_the_context_at_version_1)
{
	const char *ctx = "{\"last_intent\":\"donations\",\"customer_name\":\"Juan Pérez\","
			  "\"conversation_step\":\"waiting_for_ministry\"}";
	struct ctx_value v;
	uint64_t version = 0;
	int64_t before = (int64_t)time(NULL) * 1000 - 1000;

	cr_assert_eq(put_str("+573001234567", ctx, CTX_VERSION_ANY, 0, &version), WB_OK);
	cr_assert_eq(version, 1);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, "+573001234567", &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(v.version, 1);
	cr_assert_str_eq(v.json, ctx, "bytes must come back as written (UTF-8 included)");
	cr_assert_eq(v.len, strlen(ctx));
	cr_assert_geq(v.updated_at_ms, before);
	cr_assert_leq(v.updated_at_ms, (int64_t)time(NULL) * 1000 + 1000);
	ctx_value_fini(&v);
}

CONTRACT(put_replaces_the_whole_context_and_bumps_the_version)
{
	json_object *obj;
	uint64_t version;

	cr_assert_eq(put_str("+573001234567", "{\"a\":1,\"b\":2}", CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(put_str("+573001234567", "{\"c\":3}", CTX_VERSION_ANY, 0, &version), WB_OK);
	cr_assert_eq(version, 2);
	obj = get_obj("+573001234567", &version);
	cr_assert_eq(version, 2);
	cr_assert_null(field_str(obj, "a"));
	cr_assert_str_eq(field_str(obj, "c"), "3");
	json_object_put(obj);
}

CONTRACT(put_ignores_the_store_owned_fields_of_the_caller)
{
	json_object *obj;
	uint64_t version;

	cr_assert_eq(put_str("+573001234567", "{\"version\":41,\"updated_at\":5,\"x\":\"y\"}", CTX_VERSION_ANY, 0,
			     &version),
		     WB_OK);
	cr_assert_eq(version, 1);
	obj = get_obj("+573001234567", &version);
	cr_assert_eq(version, 1);
	cr_assert_null(field_str(obj, "version"), "version is the store's, not part of the context text");
	cr_assert_null(field_str(obj, "updated_at"));
	cr_assert_str_eq(field_str(obj, "x"), "y");
	json_object_put(obj);
}

CONTRACT(empty_object_is_a_valid_context)
{
	struct ctx_value v;
	json_object *obj;

	cr_assert_eq(put_str("+1", "{ }", CTX_VERSION_ANY, 0, NULL), WB_OK);
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, "+1", &v), WB_OK);
	cr_assert(v.found);
	obj = json_tokener_parse(v.json);
	cr_assert_not_null(obj);
	cr_assert_eq(json_object_object_length(obj), 0);
	json_object_put(obj);
	ctx_value_fini(&v);
}

CONTRACT(update_merges_fields_into_the_existing_context)
{
	json_object *obj;
	uint64_t version;

	cr_assert_eq(put_str("+573001234567", "{\"last_intent\":\"donations\",\"customer_name\":\"Juan\"}",
			     CTX_VERSION_ANY, 0, NULL),
		     WB_OK);
	cr_assert_eq(update_str("+573001234567",
				"{\"customer_name\":\"Juan Pérez\",\"ministry_name\":\"Ministerio de Salud\"}", 0),
		     WB_OK);
	obj = get_obj("+573001234567", &version);
	cr_assert_eq(version, 2);
	cr_assert_str_eq(field_str(obj, "last_intent"), "donations", "fields not given are kept");
	cr_assert_str_eq(field_str(obj, "customer_name"), "Juan Pérez", "fields given replace");
	cr_assert_str_eq(field_str(obj, "ministry_name"), "Ministerio de Salud", "new fields are added");
	json_object_put(obj);
}

CONTRACT(update_creates_a_missing_context_and_returns_the_merge)
{
	struct ctx_value merged;

	ctx_value_init(&merged);
	cr_assert_eq(ctx_store_update(cs, "+573001234567", "{\"conversation_step\":\"waiting_for_name\"}", 40, 0,
				      &merged),
		     WB_OK);
	cr_assert(merged.found);
	cr_assert_eq(merged.version, 1);
	cr_assert_str_eq(merged.json, "{\"conversation_step\":\"waiting_for_name\"}");
	ctx_value_fini(&merged);
}

CONTRACT(update_with_invalid_fields_changes_nothing)
{
	static const char *bad[] = {"not json", "[1,2]", "{\"a\":", "{\"a\":\"\xff\"}", "42", ""};
	json_object *obj;
	uint64_t version;
	size_t i;

	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 0, NULL), WB_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(update_str("+573001234567", bad[i], 0), WB_ERR_INVALID, "input %zu", i);
	obj = get_obj("+573001234567", &version);
	cr_assert_eq(version, 1);
	cr_assert_str_eq(field_str(obj, "a"), "1");
	json_object_put(obj);
}

CONTRACT(delete_removes_the_context)
{
	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(ctx_store_del(cs, "+573001234567"), WB_OK);
	cr_assert_not(exists("+573001234567"));
	cr_assert_eq(ctx_store_del(cs, "+573001234567"), WB_ERR_NOT_FOUND);
}

CONTRACT(bad_keys_and_values_are_refused_without_harm)
{
	char long_key[CTX_STORE_MAX_KEY + 2];
	char *huge;
	struct ctx_value v;

	memset(long_key, '1', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(cs, "", &v), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_get(cs, NULL, &v), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_get(cs, long_key, &v), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_get(cs, "+57 300", &v), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_get(cs, "+57\n300", &v), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_del(cs, "a}b c"), WB_ERR_INVALID);
	cr_assert_eq(put_str("+57", "[1]", CTX_VERSION_ANY, 0, NULL), WB_ERR_INVALID);
	cr_assert_eq(put_str("+57", "", CTX_VERSION_ANY, 0, NULL), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_put(cs, "+57", NULL, 0, CTX_VERSION_ANY, 0, NULL), WB_ERR_INVALID);
	cr_assert_eq(ctx_store_put(cs, "+57", "{\"a\":\0}", 7, CTX_VERSION_ANY, 0, NULL), WB_ERR_INVALID,
		     "an embedded NUL is refused");

	huge = malloc(CTX_STORE_MAX_VALUE + 16);
	cr_assert_not_null(huge);
	memset(huge, ' ', CTX_STORE_MAX_VALUE + 15);
	huge[0] = '{';
	huge[CTX_STORE_MAX_VALUE + 14] = '}';
	huge[CTX_STORE_MAX_VALUE + 15] = '\0';
	cr_assert_eq(put_str("+57", huge, CTX_VERSION_ANY, 0, NULL), WB_ERR_TOO_BIG);
	free(huge);
	cr_assert_not(exists("+57"), "nothing was written");
	ctx_value_fini(&v);
}

/* ---- TTL ----------------------------------------------------------------- */

CONTRACT(context_expires_after_its_ttl)
{
	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 300, NULL), WB_OK);
	cr_assert(exists("+573001234567"));
	test_sleep_ms(450);
	cr_assert_not(exists("+573001234567"), "expired context must be a miss");
}

CONTRACT(a_write_refreshes_the_ttl)
{
	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 500, NULL), WB_OK);
	test_sleep_ms(300);
	cr_assert_eq(update_str("+573001234567", "{\"b\":2}", 500), WB_OK);
	test_sleep_ms(300); /* 600 ms after the first write, 300 after the second */
	cr_assert(exists("+573001234567"), "the update must have refreshed the TTL");
}

CONTRACT(a_read_does_not_refresh_the_ttl)
{
	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 500, NULL), WB_OK);
	test_sleep_ms(300);
	cr_assert(exists("+573001234567"));
	test_sleep_ms(350);
	cr_assert_not(exists("+573001234567"), "a read must not extend the TTL");
}

CONTRACT(an_expired_context_starts_again_at_version_1)
{
	uint64_t version;

	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", CTX_VERSION_ANY, 200, NULL), WB_OK);
	cr_assert_eq(put_str("+573001234567", "{\"a\":2}", CTX_VERSION_ANY, 200, NULL), WB_OK);
	test_sleep_ms(350);
	cr_assert_eq(put_str("+573001234567", "{\"a\":3}", 0, 0, &version), WB_OK,
		     "an expired entry is absent: expected version 0 must succeed");
	cr_assert_eq(version, 1);
}

/* ---- compare-and-set ----------------------------------------------------- */

CONTRACT(compare_and_set_refuses_a_stale_version)
{
	struct ctx_store_stats st;
	json_object *obj;
	uint64_t version;

	cr_assert_eq(put_str("+573001234567", "{\"step\":\"a\"}", 0, 0, &version), WB_OK);
	cr_assert_eq(version, 1);
	cr_assert_eq(put_str("+573001234567", "{\"step\":\"b\"}", 0, 0, NULL), WB_ERR_CONFLICT,
		     "expected 0 means 'must not exist'");
	cr_assert_eq(put_str("+573001234567", "{\"step\":\"c\"}", 1, 0, &version), WB_OK);
	cr_assert_eq(version, 2);
	cr_assert_eq(put_str("+573001234567", "{\"step\":\"d\"}", 1, 0, NULL), WB_ERR_CONFLICT);
	cr_assert_eq(put_str("+573001234567", "{\"step\":\"e\"}", 7, 0, NULL), WB_ERR_CONFLICT);
	obj = get_obj("+573001234567", &version);
	cr_assert_eq(version, 2);
	cr_assert_str_eq(field_str(obj, "step"), "c", "a refused write changes nothing");
	json_object_put(obj);
	cr_assert_eq(put_str("+573001234567", "{\"step\":\"f\"}", CTX_VERSION_ANY, 0, &version), WB_OK);
	cr_assert_eq(version, 3);
	ctx_store_stats(cs, &st);
	cr_assert_eq(st.conflicts, 3);
}

CONTRACT(compare_and_set_on_a_missing_context)
{
	cr_assert_eq(put_str("+573001234567", "{\"a\":1}", 3, 0, NULL), WB_ERR_CONFLICT);
	cr_assert_not(exists("+573001234567"));
}

/* ---- batches ------------------------------------------------------------- */

#define BATCH 100

CONTRACT(batch_get_reports_each_key)
{
	struct ctx_get_item items[BATCH];
	char keys[BATCH][24];
	int i;

	for (i = 0; i < BATCH; i++) {
		snprintf(keys[i], sizeof(keys[i]), "+5730000%05d", i);
		if (i % 2 == 0) {
			char json[64];

			snprintf(json, sizeof(json), "{\"i\":%d}", i);
			cr_assert_eq(put_str(keys[i], json, CTX_VERSION_ANY, 0, NULL), WB_OK);
		}
	}
	for (i = 0; i < BATCH; i++) {
		items[i].key = keys[i];
		ctx_value_init(&items[i].value);
	}
	cr_assert_eq(ctx_store_get_many(cs, items, BATCH), WB_OK);
	for (i = 0; i < BATCH; i++) {
		cr_assert_eq(items[i].err, WB_OK);
		cr_assert_eq(items[i].value.found, i % 2 == 0, "key %d", i);
		if (items[i].value.found) {
			char json[64];

			snprintf(json, sizeof(json), "{\"i\":%d}", i);
			cr_assert_str_eq(items[i].value.json, json);
			cr_assert_eq(items[i].value.version, 1);
		}
		ctx_value_fini(&items[i].value);
	}
}

CONTRACT(batch_put_applies_each_item_with_its_own_result)
{
	struct ctx_put_item items[BATCH];
	char keys[BATCH][24], json[BATCH][48];
	uint64_t version;
	int i;

	cr_assert_eq(put_str("+573000000007", "{\"old\":true}", CTX_VERSION_ANY, 0, NULL), WB_OK);
	for (i = 0; i < BATCH; i++) {
		snprintf(keys[i], sizeof(keys[i]), "+5730000%05d", i);
		snprintf(json[i], sizeof(json[i]), "{\"i\":%d}", i);
		items[i] = (struct ctx_put_item){
			.key = keys[i], .json = json[i], .len = strlen(json[i]), .expected_version = 0,
		};
	}
	/* item 7 exists (version 1), so "expected 0" must fail for it alone */
	cr_assert_eq(ctx_store_put_many(cs, items, BATCH), WB_ERR_CONFLICT);
	for (i = 0; i < BATCH; i++) {
		json_object *obj = get_obj(keys[i], &version);

		if (i == 7) {
			cr_assert_eq(items[i].err, WB_ERR_CONFLICT);
			cr_assert_eq(version, 1);
			cr_assert_not_null(json_object_object_get(obj, "old"));
		} else {
			cr_assert_eq(items[i].err, WB_OK, "item %d: %s", i, wb_err_name(items[i].err));
			cr_assert_eq(items[i].new_version, 1);
			cr_assert_eq(json_object_get_int(json_object_object_get(obj, "i")), i);
			cr_assert_eq(items[i].ttl_ms, CTX_STORE_DEFAULT_TTL_MS, "ttl 0 resolves to the default");
		}
		json_object_put(obj);
	}
}

CONTRACT(batch_put_to_one_phone_applies_in_order)
{
	struct ctx_put_item items[3] = {
		{.key = "+57", .json = "{\"n\":1}", .len = 7, .expected_version = 0},
		{.key = "+57", .json = "{\"n\":2}", .len = 7, .expected_version = 1},
		{.key = "+57", .json = "{\"n\":3}", .len = 7, .expected_version = 2},
	};
	json_object *obj;
	uint64_t version;

	cr_assert_eq(ctx_store_put_many(cs, items, 3), WB_OK);
	cr_assert_eq(items[2].new_version, 3);
	obj = get_obj("+57", &version);
	cr_assert_eq(version, 3);
	cr_assert_str_eq(field_str(obj, "n"), "3");
	json_object_put(obj);
}

CONTRACT(batch_with_a_bad_item_still_serves_the_others)
{
	struct ctx_get_item gets[3] = {{.key = "+571"}, {.key = "bad key"}, {.key = "+573"}};
	struct ctx_put_item puts[3] = {
		{.key = "+571", .json = "{}", .len = 2, .expected_version = CTX_VERSION_ANY},
		{.key = "+572", .json = "nope", .len = 4, .expected_version = CTX_VERSION_ANY},
		{.key = "+573", .json = "{\"version\":9,\"z\":1}", .len = 19, .expected_version = CTX_VERSION_ANY},
	};
	int i;

	cr_assert_eq(ctx_store_put_many(cs, puts, 3), WB_ERR_INVALID);
	cr_assert_eq(puts[0].err, WB_OK);
	cr_assert_eq(puts[1].err, WB_ERR_INVALID);
	cr_assert_eq(puts[2].err, WB_OK);
	cr_assert_str_eq(puts[2].json, "{\"version\":9,\"z\":1}", "the caller's text is given back untouched");
	for (i = 0; i < 3; i++)
		ctx_value_init(&gets[i].value);
	cr_assert_eq(ctx_store_get_many(cs, gets, 3), WB_ERR_INVALID);
	cr_assert(gets[0].value.found);
	cr_assert_eq(gets[1].err, WB_ERR_INVALID);
	cr_assert(gets[2].value.found);
	cr_assert_str_eq(gets[2].value.json, "{\"z\":1}");
	for (i = 0; i < 3; i++)
		ctx_value_fini(&gets[i].value);
	cr_assert_eq(ctx_store_get_many(cs, gets, 0), WB_OK, "an empty batch is fine");
}

/* ---- counters ------------------------------------------------------------ */

CONTRACT(counters_and_latency_are_kept)
{
	struct ctx_store_stats st;

	cr_assert_not(exists("+571"));
	cr_assert_eq(put_str("+571", "{}", CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert(exists("+571"));
	cr_assert_eq(ctx_store_del(cs, "+571"), WB_OK);
	ctx_store_stats(cs, &st);
	cr_assert_eq(st.gets, 2);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 1);
	cr_assert_eq(st.puts, 1);
	cr_assert_eq(st.deletes, 1);
	cr_assert_eq(st.errors, 0);
	if (strcmp(ctx_store_backend_name(cs), "memory") == 0) {
		cr_assert_eq(st.latency_count, 0, "memory calls are not timed");
		return;
	}
	cr_assert_eq(st.latency_count, 4);
	{
		uint64_t sum = 0;
		unsigned i;

		for (i = 0; i < CTX_STORE_LAT_BUCKETS; i++)
			sum += st.latency_buckets[i];
		cr_assert_eq(sum, 4);
	}
}

/* ---- concurrency --------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 150

struct worker_arg {
	int id;
	int failures;
};

/* Every thread increments one shared counter with a compare-and-set loop. */
static void *increment_shared(void *p)
{
	struct worker_arg *a = p;
	struct ctx_value v;
	int i;

	ctx_value_init(&v);
	for (i = 0; i < ROUNDS; i++)
		if (store_cas_increment(cs, "+570000000001", &v) != WB_OK)
			a->failures++;
	ctx_value_fini(&v);
	return NULL;
}

/* Every thread merges its own fields into one shared context with update. */
static void *merge_shared(void *p)
{
	struct worker_arg *a = p;
	int i;

	for (i = 0; i < ROUNDS / 3; i++) {
		char json[64];

		snprintf(json, sizeof(json), "{\"t%d_%d\":%d}", a->id, i, i);
		if (update_str("+570000000002", json, 0) != WB_OK)
			a->failures++;
	}
	return NULL;
}

/* Every thread owns its phones: what it reads back is what it wrote. */
static void *own_phones(void *p)
{
	struct worker_arg *a = p;
	struct ctx_value v;
	int i;

	ctx_value_init(&v);
	for (i = 0; i < ROUNDS; i++) {
		char key[32], json[64];

		snprintf(key, sizeof(key), "+57%d%07d", a->id + 1, i % 20);
		snprintf(json, sizeof(json), "{\"owner\":%d,\"i\":%d}", a->id, i);
		if (put_str(key, json, CTX_VERSION_ANY, 0, NULL) != WB_OK ||
		    ctx_store_get(cs, key, &v) != WB_OK || !v.found || strcmp(v.json, json) != 0)
			a->failures++;
	}
	ctx_value_fini(&v);
	return NULL;
}

static void run_threads(void *(*fn)(void *))
{
	pthread_t th[THREADS];
	struct worker_arg args[THREADS];
	int i;

	for (i = 0; i < THREADS; i++) {
		args[i] = (struct worker_arg){.id = i};
		cr_assert_eq(pthread_create(&th[i], NULL, fn, &args[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].failures, 0, "thread %d had %d failures", i, args[i].failures);
	}
}

CONTRACT(concurrent_compare_and_set_loses_no_increment)
{
	json_object *obj;
	uint64_t version;

	run_threads(increment_shared);
	obj = get_obj("+570000000001", &version);
	cr_assert_eq(json_object_get_int(json_object_object_get(obj, "n")), THREADS * ROUNDS);
	cr_assert_eq(version, THREADS * ROUNDS);
	json_object_put(obj);
}

CONTRACT(concurrent_updates_lose_no_field)
{
	json_object *obj;

	run_threads(merge_shared);
	obj = get_obj("+570000000002", NULL);
	cr_assert_eq(json_object_object_length(obj), THREADS * (ROUNDS / 3));
	json_object_put(obj);
}

CONTRACT(concurrent_threads_on_different_phones_see_their_own_writes)
{
	run_threads(own_phones);
}
