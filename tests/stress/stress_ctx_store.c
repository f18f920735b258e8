/*
 * stress_ctx_store.c - the context store's threaded paths, as a plain program
 * so that it runs under ThreadSanitizer (criterion 2.4.1 cannot start under
 * TSan: "Could not initialize inheritable arena", Criterion issue #274).
 *
 * For the memory backend and for a real redis-server (tests/support), four
 * threads at once: two increment one counter by compare-and-set, one merges
 * fields with update, one churns through a second, tiny memory store (LRU
 * eviction, expiry and the sweep thread racing the writers) with batches.
 * Checks: no increment lost, no field lost, no unexpected error. Exit 0 when
 * all hold, 1 otherwise; prints "N passed, N failed".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctx_store.h"
#include "log.h"
#include "redis_server.h"
#include "store_ops.h"

#define ROUNDS 300
#define MERGES 100
#define CHURN_KEYS 2000
#define CHURN_BATCH 16

struct stress {
	ctx_store_t *cs;    /* store under test */
	ctx_store_t *tiny;  /* memory store with tight bounds, for churn */
	int failures;       /* guarded by mu */
	pthread_mutex_t mu;
};

static void fail(struct stress *st, const char *what, wb_err_t err)
{
	pthread_mutex_lock(&st->mu);
	st->failures++;
	pthread_mutex_unlock(&st->mu);
	fprintf(stderr, "stress: %s: %s\n", what, wb_err_name(err));
}

static void *increment(void *p)
{
	struct stress *st = p;
	struct ctx_value v;
	int i;

	ctx_value_init(&v);
	for (i = 0; i < ROUNDS; i++) {
		wb_err_t err = store_cas_increment(st->cs, "+570000000001", &v);

		if (err != WB_OK)
			fail(st, "compare-and-set increment", err);
	}
	ctx_value_fini(&v);
	return NULL;
}

static void *merge(void *p)
{
	struct stress *st = p;
	int i;

	for (i = 0; i < MERGES; i++) {
		char json[64];
		wb_err_t err;

		snprintf(json, sizeof(json), "{\"f%d\":%d}", i, i);
		err = ctx_store_update(st->cs, "+570000000002", json, strlen(json), 0, NULL);
		if (err != WB_OK)
			fail(st, "update", err);
	}
	return NULL;
}

static void *churn(void *p)
{
	struct stress *st = p;
	struct ctx_put_item puts[CHURN_BATCH];
	struct ctx_get_item gets[CHURN_BATCH];
	char keys[CHURN_BATCH][32];
	int i, j;

	for (j = 0; j < CHURN_BATCH; j++)
		ctx_value_init(&gets[j].value);
	for (i = 0; i < CHURN_KEYS; i += CHURN_BATCH) {
		for (j = 0; j < CHURN_BATCH; j++) {
			snprintf(keys[j], sizeof(keys[j]), "+5731%08d", (i + j) % 700);
			puts[j] = (struct ctx_put_item){.key = keys[j], .json = "{\"step\":\"waiting_for_name\"}",
							.len = 27, .expected_version = CTX_VERSION_ANY,
							.ttl_ms = (uint32_t)(5 + (i + j) % 40)};
			gets[j].key = keys[j];
		}
		if (ctx_store_put_many(st->tiny, puts, CHURN_BATCH) != WB_OK)
			fail(st, "put_many", puts[0].err);
		if (ctx_store_get_many(st->tiny, gets, CHURN_BATCH) != WB_OK)
			fail(st, "get_many", gets[0].err);
		if (ctx_store_get_many(st->cs, gets, CHURN_BATCH) != WB_OK)
			fail(st, "get_many (store under test)", gets[0].err);
	}
	for (j = 0; j < CHURN_BATCH; j++)
		ctx_value_fini(&gets[j].value);
	return NULL;
}

/* Runs the four threads on cs; returns true when every check holds. */
static bool stress_store(const char *name, ctx_store_t *cs)
{
	struct ctx_store_config tiny_cfg = {
		.backend = CTX_BACKEND_MEMORY,
		.memory = {.max_entries = 64, .max_bytes = 64 * 1024, .shards = 4, .sweep_interval_ms = 5},
	};
	struct stress st = {.cs = cs, .mu = PTHREAD_MUTEX_INITIALIZER};
	void *(*fns[4])(void *) = {increment, increment, merge, churn};
	struct ctx_store_stats tiny_stats;
	struct ctx_value v;
	json_object *obj;
	pthread_t th[4];
	char err[256];
	bool ok;
	int i;

	st.tiny = ctx_store_new(&tiny_cfg, err, sizeof(err));
	if (!st.tiny) {
		fprintf(stderr, "stress: tiny store: %s\n", err);
		return false;
	}
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fns[i], &st);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	ctx_value_init(&v);
	ok = st.failures == 0;
	if (ctx_store_get(cs, "+570000000001", &v) != WB_OK || !v.found) {
		ok = false;
	} else {
		obj = json_tokener_parse(v.json);
		if (json_object_get_int(json_object_object_get(obj, "n")) != 2 * ROUNDS) {
			fprintf(stderr, "stress: %s: counter %s, want %d\n", name, v.json, 2 * ROUNDS);
			ok = false;
		}
		json_object_put(obj);
	}
	if (ctx_store_get(cs, "+570000000002", &v) != WB_OK || !v.found) {
		ok = false;
	} else {
		obj = json_tokener_parse(v.json);
		if (json_object_object_length(obj) != MERGES) {
			fprintf(stderr, "stress: %s: %d merged fields, want %d\n", name,
				json_object_object_length(obj), MERGES);
			ok = false;
		}
		json_object_put(obj);
	}
	ctx_store_stats(st.tiny, &tiny_stats);
	if (tiny_stats.evicted_lru == 0 || tiny_stats.entries > 64) {
		fprintf(stderr, "stress: %s: churn did not exercise eviction within bounds\n", name);
		ok = false;
	}
	ctx_value_fini(&v);
	ctx_store_destroy(st.tiny);
	printf("stress %s: %s (%d failures, %llu LRU evictions, %llu expired in the churn store)\n", name,
	       ok ? "ok" : "FAILED", st.failures, (unsigned long long)tiny_stats.evicted_lru,
	       (unsigned long long)tiny_stats.expired);
	return ok;
}

int main(void)
{
	struct ctx_store_config mem = {.backend = CTX_BACKEND_MEMORY};
	struct ctx_store_config red = {
		.backend = CTX_BACKEND_REDIS,
		.redis = {.host = "127.0.0.1", .tls_verify = true, .connect_timeout_ms = 5000,
			  .command_timeout_ms = 5000, .pool_size = 2},
	};
	struct redis_server *rs;
	ctx_store_t *cs;
	char err[256];
	int passed = 0, failed = 0;

	log_set_level(LOG_ERROR);
	cs = ctx_store_new(&mem, err, sizeof(err));
	if (cs && stress_store("memory", cs))
		passed++;
	else
		failed++;
	ctx_store_destroy(cs);

	rs = redis_server_start(REDIS_SERVER_PLAIN);
	cs = NULL;
	if (rs) {
		red.redis.port = redis_server_port(rs);
		cs = ctx_store_new(&red, err, sizeof(err));
		if (!cs)
			fprintf(stderr, "stress: redis store: %s\n", err);
	}
	if (cs && stress_store("redis", cs))
		passed++;
	else
		failed++;
	ctx_store_destroy(cs);
	redis_server_stop(rs);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
