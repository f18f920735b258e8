/*
 * stress_ctx_store.c - the context store's threaded paths, as a plain program
 * so that it runs under ThreadSanitizer (criterion 2.4.1 cannot start under
 * TSan: "Could not initialize inheritable arena", Criterion issue #274).
 *
 * For the memory backend and for a real redis-server (tests/support), six
 * threads at once: two increment one counter by compare-and-set, two
 * increment HELD_KEYS shared counters in held batches (get_many_held +
 * put_many_held: WATCH and MULTI/EXEC on Redis, racing each other over a
 * pool of two connections), one merges fields with update, one churns
 * through a second, tiny memory store (LRU eviction, expiry and the sweep
 * thread racing the writers) with batches.
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
#define HELD_KEYS 8
#define HELD_ROUNDS 100

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

static void held_key(char *buf, size_t n, int k)
{
	snprintf(buf, n, "+5710000000%02d", k);
}

/* Adds 1 to each of the HELD_KEYS counters HELD_ROUNDS times, a batch of
 * all keys still short of that at a time; a key whose write conflicted is
 * read again in the next batch. */
static void *held_increment(void *p)
{
	struct stress *st = p;
	struct ctx_get_item g[HELD_KEYS];
	struct ctx_put_item pi[HELD_KEYS];
	char keys[HELD_KEYS][24], json[HELD_KEYS][32];
	int left[HELD_KEYS], idx[HELD_KEYS], m, k;
	bool failed = false;

	for (k = 0; k < HELD_KEYS; k++) {
		held_key(keys[k], sizeof keys[k], k);
		left[k] = HELD_ROUNDS;
		ctx_value_init(&g[k].value);
	}
	for (;;) {
		ctx_hold_t *hold = NULL;
		wb_err_t err;

		for (k = 0, m = 0; k < HELD_KEYS; k++)
			if (left[k] > 0) {
				idx[m] = k;
				g[m++].key = keys[k];
			}
		if (m == 0)
			break;
		err = ctx_store_get_many_held(st->cs, g, (size_t)m, &hold);
		if (err != WB_OK) {
			(void)ctx_store_put_many_held(st->cs, hold, NULL, 0);
			fail(st, "held read", err);
			break;
		}
		for (int i = 0; i < m; i++) {
			const char *q = g[i].value.found ? strstr(g[i].value.json, "\"n\":") : NULL;
			long n = q ? strtol(q + 4, NULL, 10) : 0;
			int len = snprintf(json[i], sizeof json[i], "{\"n\":%ld}", n + 1);

			pi[i] = (struct ctx_put_item){.key = g[i].key, .json = json[i], .len = (size_t)len,
						      .expected_version = g[i].value.found ? g[i].value.version : 0};
		}
		(void)ctx_store_put_many_held(st->cs, hold, pi, (size_t)m);
		for (int i = 0; i < m; i++) {
			if (pi[i].err == WB_OK)
				left[idx[i]]--;
			else if (pi[i].err != WB_ERR_CONFLICT) {
				fail(st, "held write", pi[i].err);
				failed = true;
			}
		}
		if (failed)
			break;
	}
	for (k = 0; k < HELD_KEYS; k++)
		ctx_value_fini(&g[k].value);
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
	void *(*fns[6])(void *) = {increment, increment, held_increment, held_increment, merge, churn};
	struct ctx_store_stats tiny_stats;
	struct ctx_value v;
	json_object *obj;
	pthread_t th[6];
	char err[256];
	bool ok;
	int i;

	st.tiny = ctx_store_new(&tiny_cfg, err, sizeof(err));
	if (!st.tiny) {
		fprintf(stderr, "stress: tiny store: %s\n", err);
		return false;
	}
	for (i = 0; i < 6; i++)
		pthread_create(&th[i], NULL, fns[i], &st);
	for (i = 0; i < 6; i++)
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
	for (i = 0; i < HELD_KEYS; i++) {
		char key[24];

		held_key(key, sizeof key, i);
		if (ctx_store_get(cs, key, &v) != WB_OK || !v.found) {
			ok = false;
			continue;
		}
		obj = json_tokener_parse(v.json);
		if (json_object_get_int(json_object_object_get(obj, "n")) != 2 * HELD_ROUNDS ||
		    v.version != 2 * HELD_ROUNDS) {
			fprintf(stderr, "stress: %s: held counter %s: %s version %llu, want %d\n", name, key, v.json,
				(unsigned long long)v.version, 2 * HELD_ROUNDS);
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
