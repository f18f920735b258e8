/*
 * test_ctx_memory.c - what only the memory backend does: bounds and LRU
 * eviction, expired-first eviction, byte accounting, the sweep thread, TTL
 * refresh rules, the eviction log line, configuration checks, and many
 * threads on the same and on different keys.
 *
 * Only public headers are used (ctx_store.h, and log.h to capture the
 * eviction line). The cross-backend contract is test_ctx_store_contract.c.
 * Each test builds its own store; bounds use shards = 1 where the order of
 * evictions must be deterministic.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "ctx_store.h"
#include "log.h"
#include "test_clock.h"

/* ---- helpers ------------------------------------------------------------- */

static void quiet_logs(void)
{
	log_set_level(LOG_ERROR);
}

TestSuite(ctx_memory, .init = quiet_logs, .timeout = 120);

/* A sweep interval long enough that only the code under test expires. */
#define NO_SWEEP_MS 600000u

static ctx_store_t *new_store(uint64_t max_entries, uint64_t max_bytes, unsigned shards, unsigned sweep_ms)
{
	struct ctx_store_config cfg = {
		.backend = CTX_BACKEND_MEMORY,
		.memory = {
			.max_entries = max_entries,
			.max_bytes = max_bytes,
			.shards = shards,
			.sweep_interval_ms = sweep_ms,
		},
	};
	char err[256] = "";
	ctx_store_t *cs = ctx_store_new(&cfg, err, sizeof(err));

	cr_assert_not_null(cs, "ctx_store_new: %s", err);
	return cs;
}

/* Sleeps until start + at_ms on the monotonic clock. */
static void sleep_until(int64_t start, int64_t at_ms)
{
	int64_t left = start + at_ms - test_now_ms();

	if (left > 0)
		test_sleep_ms((long)left);
}

static void phone(char *out, size_t size, unsigned i)
{
	snprintf(out, size, "+5730000%05u", i);
}

static wb_err_t put_ttl(ctx_store_t *cs, const char *key, const char *json, uint32_t ttl_ms)
{
	return ctx_store_put(cs, key, json, strlen(json), CTX_VERSION_ANY, ttl_ms, NULL);
}

static wb_err_t put(ctx_store_t *cs, const char *key, const char *json)
{
	return put_ttl(cs, key, json, 0);
}

static bool exists(ctx_store_t *cs, const char *key)
{
	struct ctx_value v;
	wb_err_t err;
	bool found;

	ctx_value_init(&v);
	err = ctx_store_get(cs, key, &v);
	cr_assert_eq(err, WB_OK, "get %s: %s", key, wb_err_name(err));
	found = v.found;
	ctx_value_fini(&v);
	return found;
}

static struct ctx_store_stats stats_of(ctx_store_t *cs)
{
	struct ctx_store_stats st;

	ctx_store_stats(cs, &st);
	return st;
}

/* A JSON object of exactly len bytes (len >= 12). */
static char *object_of_len(size_t len)
{
	char *s = malloc(len + 1);

	cr_assert_not_null(s);
	memcpy(s, "{\"pad\":\"", 8);
	memset(s + 8, 'x', len - 10);
	memcpy(s + len - 2, "\"}", 3);
	return s;
}

/* stats.bytes of a store holding only key -> a value of len bytes. */
static uint64_t charge_of(const char *key, size_t len)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	char *v = object_of_len(len);
	uint64_t bytes;

	cr_assert_eq(ctx_store_put(cs, key, v, len, CTX_VERSION_ANY, 0, NULL), WB_OK);
	bytes = stats_of(cs).bytes;
	free(v);
	ctx_store_destroy(cs);
	return bytes;
}

/* ---- bounds and eviction ------------------------------------------------- */

Test(ctx_memory, least_recently_used_is_evicted_at_max_entries)
{
	ctx_store_t *cs = new_store(3, 0, 1, NO_SWEEP_MS);
	struct ctx_store_stats st;

	cr_assert_eq(put(cs, "+573000000001", "{\"n\":1}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000002", "{\"n\":2}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000003", "{\"n\":3}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000004", "{\"n\":4}"), WB_OK);

	cr_assert_not(exists(cs, "+573000000001"), "the oldest entry should have been evicted");
	cr_assert(exists(cs, "+573000000002"));
	cr_assert(exists(cs, "+573000000003"));
	cr_assert(exists(cs, "+573000000004"));
	st = stats_of(cs);
	cr_assert_eq(st.entries, 3);
	cr_assert_eq(st.evicted_lru, 1);
	cr_assert_eq(st.evicted_expired, 0);
	cr_assert_eq(st.expired, 0);
	ctx_store_destroy(cs);
}

Test(ctx_memory, get_makes_an_entry_recent)
{
	ctx_store_t *cs = new_store(3, 0, 1, NO_SWEEP_MS);

	cr_assert_eq(put(cs, "+573000000001", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000002", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000003", "{}"), WB_OK);
	cr_assert(exists(cs, "+573000000001")); /* 1 is now the most recent */
	cr_assert_eq(put(cs, "+573000000004", "{}"), WB_OK);

	cr_assert(exists(cs, "+573000000001"), "a read entry must not be the LRU victim");
	cr_assert_not(exists(cs, "+573000000002"), "2 was the least recently used");
	cr_assert(exists(cs, "+573000000003"));
	cr_assert(exists(cs, "+573000000004"));
	ctx_store_destroy(cs);
}

Test(ctx_memory, put_makes_an_entry_recent)
{
	ctx_store_t *cs = new_store(3, 0, 1, NO_SWEEP_MS);

	cr_assert_eq(put(cs, "+573000000001", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000002", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000003", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000001", "{\"again\":true}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000004", "{}"), WB_OK);

	cr_assert(exists(cs, "+573000000001"));
	cr_assert_not(exists(cs, "+573000000002"));
	cr_assert_eq(stats_of(cs).evicted_lru, 1);
	ctx_store_destroy(cs);
}

Test(ctx_memory, max_bytes_evicts_until_the_write_fits)
{
	const size_t len = 200;
	uint64_t charge = charge_of("+573000000001", len);
	uint64_t max = 3 * charge + charge / 2; /* room for 3 entries, not 4 */
	ctx_store_t *cs = new_store(0, max, 1, NO_SWEEP_MS);
	char *v = object_of_len(len);
	char key[32];
	struct ctx_store_stats st;
	unsigned i;

	for (i = 1; i <= 4; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(ctx_store_put(cs, key, v, len, CTX_VERSION_ANY, 0, NULL), WB_OK);
		cr_assert_leq(stats_of(cs).bytes, max);
	}
	phone(key, sizeof(key), 1);
	cr_assert_not(exists(cs, key), "the oldest entry should have made room");
	for (i = 2; i <= 4; i++) {
		phone(key, sizeof(key), i);
		cr_assert(exists(cs, key), "entry %u", i);
	}
	st = stats_of(cs);
	cr_assert_eq(st.entries, 3);
	cr_assert_eq(st.bytes, 3 * charge);
	cr_assert_eq(st.evicted_lru, 1);
	free(v);
	ctx_store_destroy(cs);
}

Test(ctx_memory, growing_value_evicts_others_but_never_itself)
{
	uint64_t small = charge_of("+573000000001", 150);
	uint64_t max = 4 * small;
	size_t big_len = (size_t)(3 * small); /* fits alone, not beside the others */
	ctx_store_t *cs = new_store(0, max, 1, NO_SWEEP_MS);
	char *v = object_of_len(150), *big = object_of_len(big_len);
	struct ctx_value got;
	uint64_t version = 0;

	cr_assert_eq(ctx_store_put(cs, "+573000000001", v, 150, CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(ctx_store_put(cs, "+573000000002", v, 150, CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(ctx_store_put(cs, "+573000000003", v, 150, CTX_VERSION_ANY, 0, NULL), WB_OK);
	/* 1 is the least recently used, and it is the one being written. */
	cr_assert_eq(ctx_store_put(cs, "+573000000001", big, big_len, 1, 0, &version), WB_OK);
	cr_assert_eq(version, 2);

	ctx_value_init(&got);
	cr_assert_eq(ctx_store_get(cs, "+573000000001", &got), WB_OK);
	cr_assert(got.found, "the entry being written must never be evicted");
	cr_assert_eq(got.len, big_len);
	cr_assert_eq(got.version, 2);
	ctx_value_fini(&got);
	cr_assert_not(exists(cs, "+573000000002"));
	cr_assert_leq(stats_of(cs).bytes, max);
	cr_assert_geq(stats_of(cs).evicted_lru, 1);
	free(v);
	free(big);
	ctx_store_destroy(cs);
}

Test(ctx_memory, expired_entries_are_evicted_before_live_ones)
{
	ctx_store_t *cs = new_store(3, 0, 1, NO_SWEEP_MS);
	struct ctx_store_stats st;

	/* LRU order oldest first: 1 (short TTL), 2 (live), 3 (short TTL). */
	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 50), WB_OK);
	cr_assert_eq(put_ttl(cs, "+573000000002", "{}", 600000), WB_OK);
	cr_assert_eq(put_ttl(cs, "+573000000003", "{}", 50), WB_OK);
	test_sleep_ms(150);
	cr_assert_eq(stats_of(cs).entries, 3, "nothing has removed them yet");
	cr_assert_eq(put(cs, "+573000000004", "{}"), WB_OK);
	cr_assert_eq(put(cs, "+573000000005", "{}"), WB_OK);

	st = stats_of(cs);
	cr_assert_eq(st.evicted_expired, 2);
	cr_assert_eq(st.expired, 2);
	cr_assert_eq(st.evicted_lru, 0, "a live entry went while expired ones were left");
	cr_assert_eq(st.entries, 3);
	cr_assert(exists(cs, "+573000000002"), "the live entry must survive although it is older");
	cr_assert(exists(cs, "+573000000004"));
	cr_assert(exists(cs, "+573000000005"));
	ctx_store_destroy(cs);
}

Test(ctx_memory, total_never_exceeds_the_bound_with_many_shards)
{
	ctx_store_t *cs = new_store(80, 0, 8, NO_SWEEP_MS);
	struct ctx_store_stats st;
	char key[32];
	unsigned i;

	for (i = 0; i < 1000; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(put(cs, key, "{\"a\":1}"), WB_OK);
		cr_assert_leq(stats_of(cs).entries, 80);
	}
	st = stats_of(cs);
	cr_assert_eq(st.puts, 1000);
	cr_assert_eq(st.entries + st.evicted_lru, 1000, "every entry is either kept or counted");
	ctx_store_destroy(cs);
}

Test(ctx_memory, value_larger_than_the_shard_budget_is_too_big)
{
	/* 4 shards of 2048 bytes: a 3000-byte value fits no shard. */
	ctx_store_t *cs = new_store(0, 4 * 2048, 4, NO_SWEEP_MS);
	char *big = object_of_len(3000);
	struct ctx_value got;
	struct ctx_store_stats st;
	char key[32];
	unsigned i;

	for (i = 0; i < 8; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(put(cs, key, "{\"small\":1}"), WB_OK);
	}
	cr_assert_eq(ctx_store_put(cs, "+573000099999", big, 3000, CTX_VERSION_ANY, 0, NULL), WB_ERR_TOO_BIG);
	phone(key, sizeof(key), 3);
	cr_assert_eq(ctx_store_put(cs, key, big, 3000, CTX_VERSION_ANY, 0, NULL), WB_ERR_TOO_BIG);

	st = stats_of(cs);
	cr_assert_eq(st.entries, 8, "nothing may be evicted for a value that cannot fit");
	cr_assert_eq(st.evicted_lru, 0);
	cr_assert_not(exists(cs, "+573000099999"));
	ctx_value_init(&got);
	cr_assert_eq(ctx_store_get(cs, key, &got), WB_OK);
	cr_assert(got.found);
	cr_assert_str_eq(got.json, "{\"small\":1}", "a refused overwrite must leave the old value");
	cr_assert_eq(got.version, 1);
	ctx_value_fini(&got);
	free(big);
	ctx_store_destroy(cs);
}

/* ---- argument checks (ctx_store.c's, exercised through this backend) ----- */

/* What ctx_store.c's put checks must decide, a byte at a time: the text may
 * hold a store-owned member (then it is parsed and rewritten). */
static bool ref_mentions_owned(const char *j, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (j[i] != '"' || (j[i + 1] != 'v' && j[i + 1] != 'u'))
			continue;
		if ((len - i > 9 && memcmp(j + i, "\"version\"", 9) == 0) ||
		    (len - i > 12 && memcmp(j + i, "\"updated_at\"", 12) == 0))
			return true;
	}
	return false;
}

Test(ctx_memory, put_text_scan_matches_a_byte_loop_at_every_offset)
{
	/* Spaces make a rewritten text differ from the one put: a text
	 * without a store-owned member must come back byte for byte. */
	static const char *const members[] = {
		"\"version\":1",  "\"updated_at\":2", "\"versio\":1",      "\"v\":1",
		"\"u\":\"version\"", "\"updated\":3",   "\"x\":\"updated_at\"", "\"uu\":\"vv\"",
	};
	ctx_store_t *cs = new_store(0, 0, 4, NO_SWEEP_MS);
	struct ctx_value v;
	char text[256];
	size_t m, k, p;

	ctx_value_init(&v);
	for (m = 0; m < sizeof members / sizeof members[0]; m++) {
		for (k = 0; k < 110; k++) {
			int n = snprintf(text, sizeof text, "{ \"a\" : \"%.*s\" , %s }", (int)k,
					 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
					 members[m]);
			bool owned = ref_mentions_owned(text, (size_t)n);

			cr_assert_eq(ctx_store_put(cs, "+573001234567", text, (size_t)n, CTX_VERSION_ANY, 0, NULL), WB_OK);
			cr_assert_eq(ctx_store_get(cs, "+573001234567", &v), WB_OK);
			if (owned) {
				cr_assert(v.len != (size_t)n || memcmp(v.json, text, v.len) != 0, "not rewritten: %s", text);
				cr_assert_null(strstr(v.json, "\"version\":"), "%s -> %s", text, v.json);
				cr_assert_null(strstr(v.json, "\"updated_at\":"), "%s -> %s", text, v.json);
			} else {
				cr_assert_eq(v.len, (size_t)n, "%s -> %s", text, v.json);
				cr_assert(memcmp(v.json, text, v.len) == 0, "%s -> %s", text, v.json);
			}
			/* A NUL anywhere makes it no JSON text. */
			for (p = 0; p < (size_t)n; p++) {
				char c = text[p];

				text[p] = '\0';
				cr_assert_eq(ctx_store_put(cs, "+573001234567", text, (size_t)n, CTX_VERSION_ANY, 0, NULL),
					     WB_ERR_INVALID, "NUL at %zu of %d", p, n);
				text[p] = c;
			}
		}
	}
	ctx_value_fini(&v);
	ctx_store_destroy(cs);
}

Test(ctx_memory, keys_are_checked_byte_for_byte_at_every_length)
{
	/* Bytes at the edges of what a key may hold: 0x21..0x7e. */
	static const unsigned char edge[] = {0x01, 0x20, 0x21, '+', '5', 'z', 0x7e, 0x7f, 0x80, 0xc3, 0xff};
	ctx_store_t *cs = new_store(0, 0, 4, NO_SWEEP_MS);
	char key[CTX_STORE_MAX_KEY + 8];
	size_t len, at, e;

	for (len = 1; len <= CTX_STORE_MAX_KEY + 2; len++) {
		memset(key, 'k', len);
		key[len] = '\0';
		cr_assert_eq(ctx_store_put(cs, key, "{}", 2, CTX_VERSION_ANY, 0, NULL),
			     len <= CTX_STORE_MAX_KEY ? WB_OK : WB_ERR_INVALID, "length %zu", len);
		if (len > 24 && len < CTX_STORE_MAX_KEY - 2)
			continue; /* every position of short keys and of the longest */
		for (at = 0; at < len; at++) {
			for (e = 0; e < sizeof edge; e++) {
				bool ok = len <= CTX_STORE_MAX_KEY && edge[e] > 0x20 && edge[e] < 0x7f;

				key[at] = (char)edge[e];
				cr_assert_eq(ctx_store_put(cs, key, "{}", 2, CTX_VERSION_ANY, 0, NULL),
					     ok ? WB_OK : WB_ERR_INVALID, "length %zu, byte 0x%02x at %zu", len, edge[e], at);
			}
			key[at] = 'k';
		}
	}
	ctx_store_destroy(cs);
}

/* ---- accounting ---------------------------------------------------------- */

Test(ctx_memory, stats_entries_and_bytes_go_up_and_down)
{
	ctx_store_t *cs = new_store(0, 0, 4, NO_SWEEP_MS);
	uint64_t charge = charge_of("+573000000000", 200);
	char *v200 = object_of_len(200), *v100 = object_of_len(100), *v1000 = object_of_len(1000);
	struct ctx_store_stats st;
	char key[32];
	unsigned i;

	cr_assert_eq(stats_of(cs).bytes, 0);
	for (i = 0; i < 10; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(ctx_store_put(cs, key, v200, 200, CTX_VERSION_ANY, 0, NULL), WB_OK);
	}
	st = stats_of(cs);
	cr_assert_eq(st.entries, 10);
	cr_assert_eq(st.bytes, 10 * charge);

	/* A smaller value reuses the buffer: same charge. A larger one grows it. */
	phone(key, sizeof(key), 0);
	cr_assert_eq(ctx_store_put(cs, key, v100, 100, CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(stats_of(cs).bytes, 10 * charge);
	cr_assert_eq(ctx_store_put(cs, key, v1000, 1000, CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_gt(stats_of(cs).bytes, 10 * charge + 700);
	cr_assert_eq(ctx_store_put(cs, key, v200, 200, CTX_VERSION_ANY, 0, NULL), WB_OK);
	cr_assert_eq(stats_of(cs).bytes, 10 * charge, "a 4x smaller value gives the memory back");

	for (i = 0; i < 5; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(ctx_store_del(cs, key), WB_OK);
	}
	st = stats_of(cs);
	cr_assert_eq(st.entries, 5);
	cr_assert_eq(st.bytes, 5 * charge);
	for (i = 5; i < 10; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(ctx_store_del(cs, key), WB_OK);
	}
	st = stats_of(cs);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.bytes, 0, "bytes must return to 0 when the store is empty");
	cr_assert_eq(st.expired + st.evicted_expired + st.evicted_lru, 0);
	free(v200);
	free(v100);
	free(v1000);
	ctx_store_destroy(cs);
}

Test(ctx_memory, table_grows_and_keeps_every_entry)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	const unsigned n = 50000;
	char key[32];
	unsigned i;

	for (i = 0; i < n; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(put(cs, key, "{\"k\":1}"), WB_OK);
	}
	cr_assert_eq(stats_of(cs).entries, n);
	for (i = 0; i < n; i++) {
		phone(key, sizeof(key), i);
		cr_assert(exists(cs, key), "entry %u lost", i);
	}
	for (i = 0; i < n; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(ctx_store_del(cs, key), WB_OK);
	}
	cr_assert_eq(stats_of(cs).entries, 0);
	cr_assert_eq(stats_of(cs).bytes, 0);
	ctx_store_destroy(cs);
}

/* ---- TTL ----------------------------------------------------------------- */

Test(ctx_memory, get_of_an_expired_entry_removes_it_and_counts_expired)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	struct ctx_store_stats st;

	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 50), WB_OK);
	test_sleep_ms(100);
	cr_assert_eq(stats_of(cs).entries, 1);
	cr_assert_not(exists(cs, "+573000000001"));
	st = stats_of(cs);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.bytes, 0);
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.evicted_expired, 0);
	cr_assert_eq(ctx_store_del(cs, "+573000000001"), WB_ERR_NOT_FOUND);
	ctx_store_destroy(cs);
}

Test(ctx_memory, sweep_removes_expired_entries_without_reads)
{
	ctx_store_t *cs = new_store(0, 0, 4, 20);
	struct ctx_store_stats st;
	int64_t start = test_now_ms();
	char key[32];
	unsigned i;

	for (i = 0; i < 100; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(put_ttl(cs, key, "{}", 50), WB_OK);
	}
	cr_assert_eq(put_ttl(cs, "+573000088888", "{}", 600000), WB_OK);
	do {
		test_sleep_ms(10);
		st = stats_of(cs);
	} while (st.entries > 1 && test_now_ms() - start < 5000);

	cr_assert_eq(st.entries, 1, "the sweep thread left %llu entries", (unsigned long long)st.entries);
	cr_assert_eq(st.expired, 100);
	cr_assert_eq(st.evicted_expired, 0);
	cr_assert_eq(st.gets, 0, "no read may have helped");
	cr_assert(exists(cs, "+573000088888"), "the sweep removed a live entry");
	ctx_store_destroy(cs);
}

Test(ctx_memory, destroy_stops_the_sweep_thread_promptly)
{
	ctx_store_t *cs = new_store(0, 0, 4, 60000);
	int64_t start = test_now_ms();

	ctx_store_destroy(cs);
	cr_assert_lt(test_now_ms() - start, 500, "destroy waited for the sweep interval");
}

Test(ctx_memory, reads_do_not_refresh_the_ttl)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	int64_t start = test_now_ms();

	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 300), WB_OK);
	sleep_until(start, 200);
	cr_assert(exists(cs, "+573000000001"));
	sleep_until(start, 400);
	cr_assert_not(exists(cs, "+573000000001"), "the read at 200 ms extended the TTL");
	ctx_store_destroy(cs);
}

Test(ctx_memory, writes_refresh_the_ttl)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	int64_t start = test_now_ms();

	cr_assert_eq(put_ttl(cs, "+573000000001", "{\"n\":1}", 300), WB_OK);
	sleep_until(start, 200);
	cr_assert_eq(put_ttl(cs, "+573000000001", "{\"n\":2}", 300), WB_OK);
	sleep_until(start, 400);
	cr_assert(exists(cs, "+573000000001"), "the write at 200 ms did not extend the TTL");
	sleep_until(start, 600);
	cr_assert_not(exists(cs, "+573000000001"));
	ctx_store_destroy(cs);
}

Test(ctx_memory, shorter_ttl_on_rewrite_takes_effect)
{
	ctx_store_t *cs = new_store(0, 0, 1, 20);
	int64_t start = test_now_ms();
	struct ctx_store_stats st;

	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 600000), WB_OK);
	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 50), WB_OK);
	do {
		test_sleep_ms(10);
		st = stats_of(cs);
	} while (st.entries > 0 && test_now_ms() - start < 5000);
	cr_assert_eq(st.entries, 0, "the sweep kept the entry's first, longer expiry");
	cr_assert_eq(st.expired, 1);
	ctx_store_destroy(cs);
}

Test(ctx_memory, expired_entry_restarts_at_version_one)
{
	ctx_store_t *cs = new_store(0, 0, 1, NO_SWEEP_MS);
	uint64_t version = 0;

	cr_assert_eq(put_ttl(cs, "+573000000001", "{}", 50), WB_OK);
	cr_assert_eq(ctx_store_put(cs, "+573000000001", "{}", 2, 1, 50, &version), WB_OK);
	cr_assert_eq(version, 2);
	test_sleep_ms(100);
	cr_assert_eq(ctx_store_put(cs, "+573000000001", "{}", 2, 2, 0, &version), WB_ERR_CONFLICT,
		     "an expired entry must count as version 0");
	cr_assert_eq(ctx_store_put(cs, "+573000000001", "{}", 2, 0, 0, &version), WB_OK);
	cr_assert_eq(version, 1);
	ctx_store_destroy(cs);
}

/* ---- the eviction log line ----------------------------------------------- */

/* Reads the log lines written to fd since offset 0; calls fn per line. */
static unsigned for_each_line(int fd, void (*fn)(json_object *line, void *arg), void *arg)
{
	char buf[1 << 16];
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
	unsigned lines = 0;
	char *p, *nl;

	cr_assert_geq(got, 0);
	buf[got] = '\0';
	for (p = buf; (nl = strchr(p, '\n')); p = nl + 1) {
		json_object *obj;

		*nl = '\0';
		obj = json_tokener_parse(p);
		cr_assert_not_null(obj, "log line is not JSON: %s", p);
		fn(obj, arg);
		json_object_put(obj);
		lines++;
	}
	return lines;
}

struct log_check {
	unsigned lines;
	uint64_t accounted; /* sum over lines of 1 + suppressed */
};

static void check_eviction_line(json_object *line, void *arg)
{
	struct log_check *c = arg;
	const char *text = json_object_to_json_string(line);
	const char *ph;
	json_object *f;

	cr_assert(json_object_object_get_ex(line, "level", &f));
	cr_assert_str_eq(json_object_get_string(f), "warn");
	cr_assert(json_object_object_get_ex(line, "phone", &f), "no phone in %s", text);
	ph = json_object_get_string(f);
	/* The first victim is key 0, the least recently written. */
	if (c->lines == 0)
		cr_assert_str_eq(ph, "+57******0000", "phone not masked: %s", text);
	cr_assert_eq(strncmp(ph, "+57******", 9), 0, "phone not masked: %s", text);
	cr_assert_null(strstr(text, "+5730000"), "full phone leaked: %s", text);
	cr_assert(json_object_object_get_ex(line, "age_ms", &f), "no age in %s", text);
	cr_assert_geq(json_object_get_int64(f), 0);
	cr_assert(json_object_object_get_ex(line, "suppressed", &f), "no suppressed count in %s", text);
	c->accounted += 1 + (uint64_t)json_object_get_int64(f);
	c->lines++;
}

Test(ctx_memory, live_evictions_are_logged_masked_and_rate_limited)
{
	FILE *tmp = tmpfile();
	struct log_check c = {0};
	ctx_store_t *cs;
	int64_t start;
	uint64_t evicted;
	unsigned i;
	char key[32];

	cr_assert_not_null(tmp);
	log_set_fd(fileno(tmp));
	log_set_level(LOG_WARN);
	cs = new_store(16, 0, 1, NO_SWEEP_MS);
	start = test_now_ms();
	for (i = 0; i < 500; i++) {
		phone(key, sizeof(key), i);
		cr_assert_eq(put(cs, key, "{}"), WB_OK);
	}
	for_each_line(fileno(tmp), check_eviction_line, &c);
	cr_assert_geq(c.lines, 1, "no eviction line");
	cr_assert_leq(c.lines, 2 + (test_now_ms() - start) / 1000, "%u lines: not rate limited", c.lines);

	/* A second later the next eviction is logged with the suppressed count. */
	test_sleep_ms(1100);
	phone(key, sizeof(key), 99999);
	cr_assert_eq(put(cs, key, "{}"), WB_OK);
	log_set_fd(2);
	quiet_logs();

	evicted = stats_of(cs).evicted_lru;
	cr_assert_eq(evicted, 500 + 1 - 16);
	memset(&c, 0, sizeof(c));
	for_each_line(fileno(tmp), check_eviction_line, &c);
	cr_assert_geq(c.lines, 2);
	cr_assert_eq(c.accounted, evicted, "every eviction is logged or counted as suppressed");
	ctx_store_destroy(cs);
	fclose(tmp);
}

/* ---- configuration ------------------------------------------------------- */

static void assert_rejected(struct ctx_memory_opts memory, const char *word)
{
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY, .memory = memory};
	char err[256] = "";
	ctx_store_t *cs = ctx_store_new(&cfg, err, sizeof(err));

	cr_assert_null(cs, "accepted shards=%u max_entries=%llu max_bytes=%llu", memory.shards,
		       (unsigned long long)memory.max_entries, (unsigned long long)memory.max_bytes);
	cr_assert_neq(err[0], '\0', "no errstr");
	cr_assert_not_null(strstr(err, word), "errstr \"%s\" does not mention %s", err, word);
}

Test(ctx_memory, bad_shard_count_is_rejected_with_errstr)
{
	assert_rejected((struct ctx_memory_opts){.shards = 3}, "shards");
	assert_rejected((struct ctx_memory_opts){.shards = 48}, "shards");
	assert_rejected((struct ctx_memory_opts){.shards = 1u << 20}, "shards");
	/* errstr may be NULL */
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY, .memory = {.shards = 5}};
	cr_assert_null(ctx_store_new(&cfg, NULL, 0));
}

Test(ctx_memory, bounds_smaller_than_one_entry_per_shard_are_rejected)
{
	assert_rejected((struct ctx_memory_opts){.shards = 64, .max_entries = 10}, "max_entries");
	assert_rejected((struct ctx_memory_opts){.shards = 64, .max_bytes = 64 * 100}, "max_bytes");
}

Test(ctx_memory, default_and_power_of_two_shard_counts_are_accepted)
{
	unsigned shards[] = {0, 1, 2, 64, 1024};
	size_t i;

	for (i = 0; i < sizeof(shards) / sizeof(shards[0]); i++) {
		ctx_store_t *cs = new_store(0, 0, shards[i], 0);

		cr_assert_eq(put(cs, "+573000000001", "{}"), WB_OK);
		cr_assert(exists(cs, "+573000000001"));
		ctx_store_destroy(cs);
	}
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 4
#define INCREMENTS 2000

struct worker {
	ctx_store_t *cs;
	unsigned id;
	unsigned retries;
	bool failed;
	char why[160];
};

static void run_workers(struct worker *w, void *(*fn)(void *))
{
	pthread_t t[THREADS];
	unsigned i;

	for (i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fn, &w[i]), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < THREADS; i++)
		cr_assert_not(w[i].failed, "thread %u: %s", i, w[i].why);
}

static int64_t counter_of(const char *json)
{
	json_object *obj = json_tokener_parse(json), *c;
	int64_t n = -1;

	if (obj && json_object_object_get_ex(obj, "counter", &c))
		n = json_object_get_int64(c);
	json_object_put(obj);
	return n;
}

/* get, add one, put with the version read; on conflict read again. */
static void *cas_increment(void *p)
{
	struct worker *w = p;
	struct ctx_value v;
	unsigned i;

	ctx_value_init(&v);
	for (i = 0; i < INCREMENTS && !w->failed; i++) {
		for (;;) {
			char json[64];
			int64_t n = 0;
			wb_err_t err = ctx_store_get(w->cs, "+573000000777", &v);

			if (err == WB_OK && v.found)
				n = counter_of(v.json);
			if (err != WB_OK || n < 0) {
				w->failed = true;
				snprintf(w->why, sizeof(w->why), "get: %s, counter %lld", wb_err_name(err),
					 (long long)n);
				break;
			}
			snprintf(json, sizeof(json), "{\"counter\":%lld}", (long long)n + 1);
			err = ctx_store_put(w->cs, "+573000000777", json, strlen(json),
					    v.found ? v.version : 0, 0, NULL);
			if (err == WB_OK)
				break;
			if (err != WB_ERR_CONFLICT) {
				w->failed = true;
				snprintf(w->why, sizeof(w->why), "put: %s", wb_err_name(err));
				break;
			}
			w->retries++;
		}
	}
	ctx_value_fini(&v);
	return NULL;
}

Test(ctx_memory, concurrent_cas_increments_lose_nothing)
{
	struct worker w[THREADS];
	struct ctx_value v;
	unsigned i;

	memset(w, 0, sizeof(w));
	w[0].cs = new_store(0, 0, 0, 0);
	for (i = 0; i < THREADS; i++) {
		w[i].cs = w[0].cs;
		w[i].id = i;
	}
	run_workers(w, cas_increment);

	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(w[0].cs, "+573000000777", &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(counter_of(v.json), THREADS * INCREMENTS, "lost updates: %s", v.json);
	cr_assert_eq(v.version, THREADS * INCREMENTS);
	ctx_value_fini(&v);
	ctx_store_destroy(w[0].cs);
}

/*
 * Each thread sets its own field "tN" to 1, 2, ... INCREMENTS through
 * ctx_store_update, and checks in every merged result that no other thread's
 * field went backwards (a write based on a stale read would do that).
 */
static void *update_own_field(void *p)
{
	struct worker *w = p;
	int64_t seen[THREADS] = {0};
	struct ctx_value merged;
	unsigned i, j;

	ctx_value_init(&merged);
	for (i = 1; i <= INCREMENTS && !w->failed; i++) {
		char fields[64];
		json_object *obj;
		wb_err_t err;

		snprintf(fields, sizeof(fields), "{\"t%u\":%u}", w->id, i);
		/* update retries lost races itself, and gives up with CONFLICT
		 * after many; nothing is written then, so trying again is safe. */
		do
			err = ctx_store_update(w->cs, "+573000000778", fields, strlen(fields), 0, &merged);
		while (err == WB_ERR_CONFLICT && ++w->retries < 1000000);
		if (err != WB_OK) {
			w->failed = true;
			snprintf(w->why, sizeof(w->why), "update: %s", wb_err_name(err));
			break;
		}
		obj = json_tokener_parse(merged.json);
		for (j = 0; j < THREADS && obj; j++) {
			char name[8];
			json_object *f;
			int64_t n = 0;

			snprintf(name, sizeof(name), "t%u", j);
			if (json_object_object_get_ex(obj, name, &f))
				n = json_object_get_int64(f);
			if (n < seen[j]) {
				w->failed = true;
				snprintf(w->why, sizeof(w->why), "t%u went back from %lld to %lld", j,
					 (long long)seen[j], (long long)n);
			}
			seen[j] = n;
		}
		json_object_put(obj);
	}
	ctx_value_fini(&merged);
	return NULL;
}

Test(ctx_memory, concurrent_updates_lose_nothing)
{
	struct worker w[THREADS];
	struct ctx_value v;
	json_object *obj, *f;
	unsigned i;

	memset(w, 0, sizeof(w));
	w[0].cs = new_store(0, 0, 0, 0);
	for (i = 0; i < THREADS; i++) {
		w[i].cs = w[0].cs;
		w[i].id = i;
	}
	run_workers(w, update_own_field);

	ctx_value_init(&v);
	cr_assert_eq(ctx_store_get(w[0].cs, "+573000000778", &v), WB_OK);
	cr_assert(v.found);
	cr_assert_eq(v.version, THREADS * INCREMENTS);
	obj = json_tokener_parse(v.json);
	cr_assert_not_null(obj);
	for (i = 0; i < THREADS; i++) {
		char name[8];

		snprintf(name, sizeof(name), "t%u", i);
		cr_assert(json_object_object_get_ex(obj, name, &f), "%s lost: %s", name, v.json);
		cr_assert_eq(json_object_get_int64(f), INCREMENTS, "%s: %s", name, v.json);
	}
	json_object_put(obj);
	ctx_value_fini(&v);
	ctx_store_destroy(w[0].cs);
}

#define OWN_KEYS 300

/* Puts, reads, rewrites and deletes this thread's keys, singly and in
 * batches, while the bound makes every shard evict and the sweep thread and
 * lazy expiry remove the short-lived quarter of the entries. */
static void *churn_own_keys(void *p)
{
	struct worker *w = p;
	struct ctx_put_item puts[8];
	struct ctx_get_item gets[8];
	char keys[8][32];
	unsigned round, i;

	memset(gets, 0, sizeof(gets));
	for (i = 0; i < 8; i++)
		ctx_value_init(&gets[i].value);
	for (round = 0; round < 1000 && !w->failed; round++) {
		wb_err_t err;

		for (i = 0; i < 8; i++) {
			phone(keys[i], sizeof(keys[i]), w->id * OWN_KEYS + (round * 8 + i) % OWN_KEYS);
			puts[i] = (struct ctx_put_item){
				.key = keys[i], .json = "{\"x\":1}", .len = 7,
				.expected_version = CTX_VERSION_ANY,
				.ttl_ms = i % 4 == 0 ? 10 : 0,
			};
			gets[i].key = keys[i];
		}
		err = ctx_store_put_many(w->cs, puts, 8);
		if (err == WB_OK)
			err = ctx_store_get_many(w->cs, gets, 8);
		if (err == WB_OK) {
			/* the shared hot key, concurrently with the others */
			err = ctx_store_put(w->cs, "+573000000779", "{\"hot\":1}", 9, CTX_VERSION_ANY, 0, NULL);
		}
		if (err == WB_OK && round % 3 == 0) {
			err = ctx_store_del(w->cs, keys[round % 8]);
			if (err == WB_ERR_NOT_FOUND) /* evicted by another thread's write */
				err = WB_OK;
		}
		if (err != WB_OK) {
			w->failed = true;
			snprintf(w->why, sizeof(w->why), "round %u: %s", round, wb_err_name(err));
		}
	}
	for (i = 0; i < 8; i++)
		ctx_value_fini(&gets[i].value);
	return NULL;
}

Test(ctx_memory, threads_on_shared_and_own_keys_keep_counts_consistent)
{
	struct worker w[THREADS];
	struct ctx_store_stats st;
	uint64_t found = 0;
	char key[32];
	unsigned i;

	memset(w, 0, sizeof(w));
	w[0].cs = new_store(4 * 100, 0, 4, 5);
	for (i = 0; i < THREADS; i++) {
		w[i].cs = w[0].cs;
		w[i].id = i;
	}
	run_workers(w, churn_own_keys);
	test_sleep_ms(200); /* the sweep (every 5 ms) removes the short-lived ones */

	st = stats_of(w[0].cs);
	cr_assert_gt(st.expired, 0);
	cr_assert_leq(st.entries, 400);
	cr_assert_gt(st.evicted_lru, 0);
	for (i = 0; i < THREADS * OWN_KEYS; i++) {
		phone(key, sizeof(key), i);
		if (exists(w[0].cs, key)) {
			found++;
			cr_assert_eq(ctx_store_del(w[0].cs, key), WB_OK);
		}
	}
	if (exists(w[0].cs, "+573000000779")) { /* the hot key may have been evicted too */
		found++;
		cr_assert_eq(ctx_store_del(w[0].cs, "+573000000779"), WB_OK);
	}
	cr_assert_eq(found, st.entries, "stats say %llu entries, %llu found",
		     (unsigned long long)st.entries, (unsigned long long)found);
	st = stats_of(w[0].cs);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.bytes, 0);
	ctx_store_destroy(w[0].cs);
}
