/*
 * ctx_store.c - what both context store backends share: argument checks,
 * the store-owned fields, update (merge) on top of compare-and-set, counters,
 * latency histogram and the "context saved / retrieved / error" log lines.
 *
 * Owns: the backend handle (through ops->destroy) and the counters below.
 * Threads: every function may be called from any thread; the counters are
 * relaxed atomics (one increment per call, not per key, where a batch allows),
 * the rest is immutable after ctx_store_new().
 * Does not: retry transport failures (the caller decides), interpret fields
 * other than "version"/"updated_at", or allocate on the hot path: a put whose
 * text carries no store-owned field goes to the backend untouched, and a
 * ctx_value buffer is reused across reads.
 *
 * Why put takes text and update parses: the worker already serialises its
 * context once; a store that re-parsed every put would double the cost of
 * the hot path (measured in tests/bench/bench_ctx_memory.c). update is the
 * convenience path (Django's update_context) and pays for one parse and one
 * serialisation per attempt.
 */
#include "ctx_store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h> /* SSE2, and AVX2 for text_scan_avx2() */
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <json-c/json.h>

#include "ctx_store_int.h"
#include "log.h"

/* How many times update re-reads and retries after losing a race, and the
 * backoff between attempts: jittered, doubling from 20 us up to 5 ms. Without
 * the backoff, four threads merging into one phone on two cores starved one
 * of them through 16 immediate retries (test_ctx_store_contract). In the
 * worker one phone belongs to one thread, so a retry is rare there. */
#define CTX_UPDATE_MAX_ATTEMPTS 64
#define CTX_UPDATE_BACKOFF_MIN_US 20
#define CTX_UPDATE_BACKOFF_MAX_US 5000

/* JSON nesting accepted in update's fields and stored contexts: the same
 * bound as the Redis reader and Redis' own cjson, so that update can read
 * every context a backend hands out. */
#define CTX_JSON_MAX_DEPTH 1000

struct ctx_store {
	const struct ctx_backend_ops *ops; /* immutable */
	void *be;                          /* backend handle, immutable */
	uint32_t default_ttl_ms;           /* immutable */
	bool audit;                        /* immutable: ctx_store_config.audit */

	/* Counters, relaxed atomics, any thread. */
	atomic_uint_fast64_t gets, hits, misses, errors, puts, conflicts, deletes;
	atomic_uint_fast64_t latency_count, latency_sum_us;
	atomic_uint_fast64_t latency_buckets[CTX_STORE_LAT_BUCKETS];
};

/* ---- time ---------------------------------------------------------------- */

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ctx_now_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t ctx_now_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* start time of a call, or 0 when this backend's calls are not timed */
/* Calls are timed for the histogram (timed backends) and for the audit. */
static uint64_t latency_start(const ctx_store_t *cs)
{
	return cs->ops->timed || cs->audit ? now_us() : 0;
}

/* The call's latency in us (0 when not timed), recorded in the histogram
 * for timed backends. */
static uint64_t latency_record(ctx_store_t *cs, uint64_t start_us)
{
	uint64_t us;
	unsigned b = 0;

	if (!start_us)
		return 0;
	us = now_us() - start_us;
	if (!cs->ops->timed)
		return us;

	/* bucket b holds [2^(b-1), 2^b) us; bucket 0 holds < 1 us */
	while (b < CTX_STORE_LAT_BUCKETS - 1 && us >= (UINT64_C(1) << b))
		b++;
	atomic_fetch_add_explicit(&cs->latency_buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&cs->latency_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&cs->latency_sum_us, us, memory_order_relaxed);
	return us;
}

/* One audit line (ctx_store_config.audit). result: "hit", "miss", "ok",
 * "conflict", or the error's name. */
static void audit(const char *op, const char *key, wb_err_t err, const char *ok_result, uint64_t us, size_t batch)
{
	const char *result = err == WB_OK ? ok_result : err == WB_ERR_CONFLICT ? "conflict" : wb_err_name(err);

	log_at(LOG_INFO, "context audit", LOG_STR("op", op), LOG_PHONE("phone", key), LOG_STR("result", result),
	       LOG_UINT("latency_us", us), LOG_UINT("batch", batch));
}

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
	if (n)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- values -------------------------------------------------------------- */

void ctx_value_init(struct ctx_value *v)
{
	memset(v, 0, sizeof(*v));
}

void ctx_value_fini(struct ctx_value *v)
{
	if (!v)
		return;
	free(v->json);
	memset(v, 0, sizeof(*v));
}

wb_err_t ctx_value_set(struct ctx_value *v, const char *src, size_t len)
{
	if (len + 1 > v->cap) {
		size_t cap = v->cap ? v->cap : 256;
		char *p;

		while (cap < len + 1)
			cap *= 2;
		p = realloc(v->json, cap);
		if (!p)
			return WB_ERR_NOMEM;
		v->json = p;
		v->cap = cap;
	}
	memcpy(v->json, src, len);
	v->json[len] = '\0';
	v->len = len;
	return WB_OK;
}

wb_err_t ctx_value_set_missing(struct ctx_value *v)
{
	wb_err_t err = ctx_value_set(v, "{}", 2);

	v->found = false;
	v->version = 0;
	v->updated_at_ms = 0;
	return err;
}

/* ---- argument checks ----------------------------------------------------- */

/* Nonzero when one of the 8 bytes of w is not printable ASCII other than
 * space (0x21..0x7e): a byte with its high bit set, a byte below 0x21 (w -
 * 0x21 borrows into its high bit) or 0x7f (zero after ^ 0x7f). Each test is
 * exact as a yes/no answer: a borrow only starts at a byte that matches. */
static uint64_t key_word_bad(uint64_t w)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
	uint64_t del = w ^ (ones * 0x7f);

	return (w | ((w - ones * 0x21) & ~w) | ((del - ones) & ~del)) & highs;
}

/* 1..CTX_STORE_MAX_KEY printable bytes without spaces. Runs twice per event
 * (get and put): the key is checked 8 bytes at a time (the last word
 * overlapping the one before, as ctx_mem_hash() reads it), ~70
 * instructions for a phone, strlen included, against ~120 for a byte loop
 * (callgrind). */
static bool key_is_valid(const char *key)
{
	size_t len, i;
	uint64_t w, bad = 0;

	if (!key)
		return false;
	len = strlen(key);
	if (len == 0 || len > CTX_STORE_MAX_KEY)
		return false;
	if (len < 8) {
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)key[i];

			if (c <= 0x20 || c >= 0x7f)
				return false;
		}
		return true;
	}
	for (i = 0; i + 8 < len; i += 8) {
		memcpy(&w, key + i, 8);
		bad |= key_word_bad(w);
	}
	memcpy(&w, key + len - 8, 8);
	return (bad | key_word_bad(w)) == 0;
}

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A cheap shape check: the text is one {...} after trimming JSON spaces.
 * The full syntax is the caller's (its own serialiser's); see the file top.
 * Puts check the "no NUL byte" part in text_scan() instead. */
static bool object_shape(const char *json, size_t len)
{
	size_t a = 0, b = len;

	if (!json)
		return false;
	while (a < b && is_json_space(json[a]))
		a++;
	while (b > a && is_json_space(json[b - 1]))
		b--;
	return b - a >= 2 && json[a] == '{' && json[b - 1] == '}';
}

static bool looks_like_object(const char *json, size_t len)
{
	return object_shape(json, len) && !memchr(json, '\0', len);
}

/* true when the text at p (left bytes) starts a store-owned member name. */
static bool owned_name_at(const char *p, size_t left)
{
	return (left > 9 && memcmp(p, "\"version\"", 9) == 0) ||
	       (left > 12 && memcmp(p, "\"updated_at\"", 12) == 0);
}

/* What text_scan() found in a put's text. */
enum {
	SCAN_NUL = 1,   /* a NUL byte: not a JSON text */
	SCAN_OWNED = 2, /* may hold a "version" or "updated_at" member */
};

/*
 * The byte loop of text_scan() over s[from, len): candidates start at
 * positions p < len - 1 (a '"', then 'v' or 'u', confirmed by
 * owned_name_at()), NULs anywhere.
 */
static unsigned text_scan_bytes(const char *s, size_t from, size_t len)
{
	size_t i;

	for (i = from; i < len; i++) {
		if (s[i] == '\0')
			return SCAN_NUL;
		if (s[i] == '"' && i + 1 < len && (s[i + 1] == 'v' || s[i + 1] == 'u') &&
		    owned_name_at(s + i, len - i))
			return memchr(s + i, '\0', len - i) ? SCAN_NUL : SCAN_OWNED;
	}
	return 0;
}

/*
 * A block of text_scan(): candidates and NULs among the W bytes at s + i
 * (a: s[i, i + W), b: s[i + 1, i + W + 1)), as bit masks, one bit a byte.
 * Returns 0 to go on, or the scan's answer.
 */
static inline unsigned text_scan_hits(const char *s, size_t i, size_t len, unsigned long long cand,
				      unsigned long long nul)
{
	if (nul)
		return SCAN_NUL;
	for (; cand; cand &= cand - 1) {
		size_t p = i + (size_t)__builtin_ctzll(cand);

		if (owned_name_at(s + p, len - p))
			return memchr(s + p, '\0', len - p) ? SCAN_NUL : SCAN_OWNED;
	}
	return 0;
}

#if defined(__SSE2__) && defined(__GNUC__)
/*
 * The SIMD loops look at blocks of 16 (32) bytes: a = s[i, i + W) and
 * b = s[i + 1, i + W + 1), candidates where a is '"' and b is 'v' or 'u',
 * NULs where a is 0; one test per block for both, the bit masks only when
 * it hits. The last block overlaps the one before it instead of leaving a
 * byte loop (a byte seen twice changes nothing). Blocks cover s[0, len - 1);
 * s[len - 1] is checked alone (a candidate cannot start there).
 */
static unsigned text_scan_sse2(const char *s, size_t len)
{
	const __m128i quote = _mm_set1_epi8('"'), v = _mm_set1_epi8('v'), u = _mm_set1_epi8('u');
	const __m128i zero = _mm_setzero_si128();
	size_t i = 0, last;
	unsigned r;

	if (len < 17)
		return text_scan_bytes(s, 0, len);
	last = len - 17; /* the final block */
	for (;;) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 1));
		__m128i cand = _mm_and_si128(_mm_cmpeq_epi8(a, quote),
					     _mm_or_si128(_mm_cmpeq_epi8(b, v), _mm_cmpeq_epi8(b, u)));
		__m128i nul = _mm_cmpeq_epi8(a, zero);

		if (_mm_movemask_epi8(_mm_or_si128(cand, nul)) &&
		    (r = text_scan_hits(s, i, len, (unsigned)_mm_movemask_epi8(cand),
					(unsigned)_mm_movemask_epi8(nul))) != 0)
			return r;
		if (i == last)
			break;
		i = i + 16 < last ? i + 16 : last;
	}
	return s[len - 1] == '\0' ? SCAN_NUL : 0;
}

#if defined(__x86_64__)
#define TEXT_SCAN_AVX2 1
/* The same with 32-byte blocks, for CPUs that have AVX2 (chosen at run
 * time): half the instructions of the SSE2 loop. */
__attribute__((target("avx2"))) static unsigned text_scan_avx2(const char *s, size_t len)
{
	const __m256i quote = _mm256_set1_epi8('"'), v = _mm256_set1_epi8('v'), u = _mm256_set1_epi8('u');
	const __m256i zero = _mm256_setzero_si256();
	size_t i = 0, last;
	unsigned r;

	if (len < 33)
		return text_scan_sse2(s, len);
	last = len - 33;
	/* Two blocks per test while there are (one branch per 64 bytes). */
	for (; i + 64 <= last; i += 64) {
		__m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
		__m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 1));
		__m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 32));
		__m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 33));
		__m256i any = _mm256_or_si256(
			_mm256_or_si256(_mm256_and_si256(_mm256_cmpeq_epi8(a0, quote),
							 _mm256_or_si256(_mm256_cmpeq_epi8(b0, v), _mm256_cmpeq_epi8(b0, u))),
					_mm256_cmpeq_epi8(a0, zero)),
			_mm256_or_si256(_mm256_and_si256(_mm256_cmpeq_epi8(a1, quote),
							 _mm256_or_si256(_mm256_cmpeq_epi8(b1, v), _mm256_cmpeq_epi8(b1, u))),
					_mm256_cmpeq_epi8(a1, zero)));

		if (!_mm256_testz_si256(any, any))
			break; /* the loop below finds which block, and what */
	}
	for (;;) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 1));
		__m256i cand = _mm256_and_si256(_mm256_cmpeq_epi8(a, quote),
						_mm256_or_si256(_mm256_cmpeq_epi8(b, v), _mm256_cmpeq_epi8(b, u)));
		__m256i nul = _mm256_cmpeq_epi8(a, zero);
		__m256i any = _mm256_or_si256(cand, nul);

		if (!_mm256_testz_si256(any, any) &&
		    (r = text_scan_hits(s, i, len, (unsigned)_mm256_movemask_epi8(cand),
					(unsigned)_mm256_movemask_epi8(nul))) != 0)
			return r;
		if (i == last)
			break;
		i = i + 32 < last ? i + 32 : last;
	}
	return s[len - 1] == '\0' ? SCAN_NUL : 0;
}
#endif
#endif

/*
 * One pass over a put's text for what the store must know before it takes
 * it: a NUL byte (SCAN_NUL: not a JSON text) and whether it may hold a
 * store-owned member (SCAN_OWNED: a '"' followed by 'v' or 'u' that
 * owned_name_at() confirms; the text is then parsed and rewritten). This runs
 * on every put over the whole context, so it looks at 32 bytes at a time with
 * AVX2 where the CPU has it, else 16 with SSE2, else a byte loop. On
 * bench_pipeline's ~650-byte contexts: ~590 instructions a put as a memchr
 * and an SSE2 scan for the names, ~250 as this one AVX2 pass (callgrind).
 */
static unsigned text_scan(const char *s, size_t len)
{
#if defined(TEXT_SCAN_AVX2)
	if (__builtin_cpu_supports("avx2"))
		return text_scan_avx2(s, len);
#endif
#if defined(__SSE2__) && defined(__GNUC__)
	return text_scan_sse2(s, len);
#else
	return text_scan_bytes(s, 0, len);
#endif
}

/* Parses an untrusted JSON text; NULL when it is not valid JSON. */
static json_object *parse_json(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(CTX_JSON_MAX_DEPTH);
	json_object *obj;

	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/*
 * Rewrites a put's text without top-level "version"/"updated_at" (they are
 * the store's), for a text in which text_scan() saw SCAN_OWNED (texts
 * without it, the common case, are taken as they are). *out is a malloc'd
 * copy. WB_ERR_INVALID when the text is not a JSON object.
 */
static wb_err_t strip_owned_fields(const char *json, size_t len, char **out, size_t *out_len)
{
	json_object *obj;
	const char *s;

	*out = NULL;
	obj = parse_json(json, len);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return WB_ERR_INVALID;
	}
	json_object_object_del(obj, "version");
	json_object_object_del(obj, "updated_at");
	s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = s ? strdup(s) : NULL;
	*out_len = *out ? strlen(*out) : 0;
	json_object_put(obj);
	return *out ? WB_OK : WB_ERR_NOMEM;
}

/* ---- log lines ----------------------------------------------------------- */

static void log_item_error(const char *op, const char *key, wb_err_t err)
{
	/* Transport errors are logged by the backend once per state change;
	 * a line per key would flood during an outage. */
	enum log_level lvl = wb_err_is_retriable(err) ? LOG_DEBUG : LOG_WARN;

	log_at(lvl, "context error", LOG_STR("op", op), LOG_PHONE("phone", key), LOG_ERR("error", err),
	       LOG_STR("reason", wb_err_str(err)));
}

/* ---- lifecycle ----------------------------------------------------------- */

wb_err_t ctx_store_open(const struct ctx_store_config *cfg, ctx_store_t **out, char *errstr, size_t errstr_size)
{
	struct ctx_store_config c;
	wb_err_t err = WB_ERR_CONFIG;
	ctx_store_t *cs;

	*out = NULL;
	if (!cfg) {
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "context store: no configuration");
		return WB_ERR_INVALID;
	}
	c = *cfg;
	if (!c.default_ttl_ms)
		c.default_ttl_ms = CTX_STORE_DEFAULT_TTL_MS;

	cs = calloc(1, sizeof(*cs));
	if (!cs) {
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "context store: out of memory");
		return WB_ERR_NOMEM;
	}
	cs->default_ttl_ms = c.default_ttl_ms;
	cs->audit = c.audit;
	switch (c.backend) {
	case CTX_BACKEND_MEMORY:
		cs->ops = &ctx_memory_ops;
		cs->be = ctx_memory_new(&c, errstr, errstr_size); /* fails on bad options or memory */
		break;
	case CTX_BACKEND_REDIS:
		cs->ops = &ctx_redis_ops;
		cs->be = ctx_redis_new(&c, &err, errstr, errstr_size);
		break;
	default:
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size, "context store: unknown backend %d", (int)c.backend);
		break;
	}
	if (!cs->be) {
		free(cs);
		return err;
	}
	*out = cs;
	return WB_OK;
}

ctx_store_t *ctx_store_new(const struct ctx_store_config *cfg, char *errstr, size_t errstr_size)
{
	ctx_store_t *cs;

	(void)ctx_store_open(cfg, &cs, errstr, errstr_size);
	return cs;
}

void ctx_store_destroy(ctx_store_t *cs)
{
	if (!cs)
		return;
	cs->ops->destroy(cs->be);
	free(cs);
}

const char *ctx_store_backend_name(const ctx_store_t *cs)
{
	return cs->ops->name;
}

/* ---- reads --------------------------------------------------------------- */

/* get_many, and get_many_held when hold is not NULL (*hold already NULL). */
static wb_err_t get_many_at(ctx_store_t *cs, struct ctx_get_item *items, size_t n, void **hold)
{
	uint64_t start = latency_start(cs), hits = 0, misses = 0, errors = 0, us;
	size_t i, valid = 0;
	wb_err_t first = WB_OK;

	if (n == 0)
		return WB_OK;
	for (i = 0; i < n; i++) {
		items[i].err = key_is_valid(items[i].key) ? WB_OK : WB_ERR_INVALID;
		valid += items[i].err == WB_OK;
	}
	if (valid == n && hold && cs->ops->get_many_held) {
		cs->ops->get_many_held(cs->be, items, n, hold);
	} else if (valid == n) {
		cs->ops->get_many(cs->be, items, n);
	} else if (valid > 0) {
		/* Rare: run the valid ones as their own batch, then put back. */
		for (i = 0; i < n; i++)
			if (items[i].err == WB_OK)
				cs->ops->get_many(cs->be, &items[i], 1);
	}

	for (i = 0; i < n; i++) {
		struct ctx_get_item *it = &items[i];

		if (it->err != WB_OK) {
			errors++;
			if (first == WB_OK)
				first = it->err;
			log_item_error("get", it->key, it->err);
		} else if (it->value.found) {
			hits++;
			log_at(LOG_DEBUG, "context retrieved", LOG_PHONE("phone", it->key),
			       LOG_UINT("version", it->value.version));
		} else {
			misses++;
			log_at(LOG_DEBUG, "context not found", LOG_PHONE("phone", it->key));
		}
	}
	count(&cs->gets, n);
	count(&cs->hits, hits);
	count(&cs->misses, misses);
	count(&cs->errors, errors);
	us = latency_record(cs, start);
	for (i = 0; cs->audit && i < n; i++)
		audit("get", items[i].key, items[i].err, items[i].value.found ? "hit" : "miss", us, n);
	return first;
}

wb_err_t ctx_store_get_many(ctx_store_t *cs, struct ctx_get_item *items, size_t n)
{
	return get_many_at(cs, items, n, NULL);
}

wb_err_t ctx_store_get_many_held(ctx_store_t *cs, struct ctx_get_item *items, size_t n, ctx_hold_t **hold)
{
	void *h = NULL;
	wb_err_t err = get_many_at(cs, items, n, &h);

	*hold = h;
	return err;
}

wb_err_t ctx_store_get(ctx_store_t *cs, const char *key, struct ctx_value *out)
{
	struct ctx_get_item it = {.key = key, .value = *out};
	wb_err_t err = ctx_store_get_many(cs, &it, 1);

	*out = it.value; /* the buffer may have grown */
	return err;
}

/* ---- writes -------------------------------------------------------------- */

/* An item whose text was rewritten by strip_owned_fields(): the caller's
 * pointer comes back after the backend call. Rare, so allocated on demand. */
struct put_swap {
	char *clean;
	const char *orig;
	size_t orig_len;
};

/* put_many, and put_many_held when hold is not NULL (which it releases). */
static wb_err_t put_many_at(ctx_store_t *cs, void *hold, struct ctx_put_item *items, size_t n)
{
	uint64_t start = latency_start(cs), puts = 0, conflicts = 0, errors = 0, us;
	struct put_swap *swaps = NULL; /* n entries, only when some item needs it */
	size_t i, valid = 0;
	wb_err_t first = WB_OK;

	if (n == 0) {
		if (hold)
			cs->ops->put_many_held(cs->be, hold, items, 0);
		return WB_OK;
	}
	for (i = 0; i < n; i++) {
		struct ctx_put_item *it = &items[i];
		char *clean = NULL;
		size_t clean_len = 0;
		unsigned scan = 0;

		it->new_version = 0;
		if (!it->ttl_ms)
			it->ttl_ms = cs->default_ttl_ms;
		if (!key_is_valid(it->key) || !object_shape(it->json, it->len) ||
		    ((scan = text_scan(it->json, it->len)) & SCAN_NUL)) {
			it->err = WB_ERR_INVALID;
			continue;
		}
		if (it->len > CTX_STORE_MAX_VALUE) {
			it->err = WB_ERR_TOO_BIG;
			continue;
		}
		it->err = scan & SCAN_OWNED ? strip_owned_fields(it->json, it->len, &clean, &clean_len) : WB_OK;
		if (it->err == WB_OK && clean) {
			if (!swaps)
				swaps = calloc(n, sizeof(*swaps));
			if (swaps) {
				swaps[i] = (struct put_swap){clean, it->json, it->len};
				it->json = clean;
				it->len = clean_len;
			} else {
				free(clean);
				it->err = WB_ERR_NOMEM;
			}
		}
		valid += it->err == WB_OK;
	}

	if (valid == n && hold) {
		cs->ops->put_many_held(cs->be, hold, items, n);
	} else if (valid == n) {
		cs->ops->put_many(cs->be, items, n);
	} else {
		/* Rare: some items were refused here; the others go one by one so
		 * that the backend never sees a refused item. */
		if (hold)
			cs->ops->put_many_held(cs->be, hold, items, 0);
		for (i = 0; i < n; i++)
			if (items[i].err == WB_OK)
				cs->ops->put_many(cs->be, &items[i], 1);
	}
	if (swaps) {
		for (i = 0; i < n; i++) {
			if (!swaps[i].clean)
				continue;
			items[i].json = swaps[i].orig;
			items[i].len = swaps[i].orig_len;
			free(swaps[i].clean);
		}
		free(swaps);
	}

	for (i = 0; i < n; i++) {
		struct ctx_put_item *it = &items[i];

		if (it->err == WB_OK) {
			puts++;
			log_at(LOG_DEBUG, "context saved", LOG_PHONE("phone", it->key),
			       LOG_UINT("version", it->new_version));
			continue;
		}
		if (first == WB_OK)
			first = it->err;
		if (it->err == WB_ERR_CONFLICT) {
			conflicts++;
			log_at(LOG_DEBUG, "context version conflict", LOG_PHONE("phone", it->key),
			       LOG_UINT("expected_version", it->expected_version));
		} else {
			errors++;
			log_item_error("put", it->key, it->err);
		}
	}
	count(&cs->puts, puts);
	count(&cs->conflicts, conflicts);
	count(&cs->errors, errors);
	us = latency_record(cs, start);
	for (i = 0; cs->audit && i < n; i++)
		audit("put", items[i].key, items[i].err, "ok", us, n);
	return first;
}

wb_err_t ctx_store_put_many(ctx_store_t *cs, struct ctx_put_item *items, size_t n)
{
	return put_many_at(cs, NULL, items, n);
}

wb_err_t ctx_store_put_many_held(ctx_store_t *cs, ctx_hold_t *hold, struct ctx_put_item *items, size_t n)
{
	return put_many_at(cs, hold, items, n);
}

wb_err_t ctx_store_put(ctx_store_t *cs, const char *key, const char *json, size_t len,
		       uint64_t expected_version, uint32_t ttl_ms, uint64_t *new_version)
{
	struct ctx_put_item it = {
		.key = key, .json = json, .len = len, .expected_version = expected_version, .ttl_ms = ttl_ms,
	};
	wb_err_t err = ctx_store_put_many(cs, &it, 1);

	if (new_version)
		*new_version = it.new_version;
	return err;
}

/* ---- update (merge) ------------------------------------------------------ */

/* Sleeps a random time in [cap/2, cap) us, cap = min(max, min << attempt). */
static void update_backoff(int attempt, uint64_t *seed)
{
	uint64_t cap = CTX_UPDATE_BACKOFF_MIN_US << (attempt < 8 ? attempt : 8);
	struct timespec ts;
	uint64_t us;

	if (cap > CTX_UPDATE_BACKOFF_MAX_US)
		cap = CTX_UPDATE_BACKOFF_MAX_US;
	*seed ^= *seed << 13; /* xorshift64: jitter only, not security */
	*seed ^= *seed >> 7;
	*seed ^= *seed << 17;
	us = cap / 2 + *seed % (cap / 2);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(us * 1000);
	nanosleep(&ts, NULL);
}

/*
 * Merge loop:
 *   1. parse fields once (untrusted: strict, UTF-8 checked, depth bounded);
 *   2. read the current context (a miss is an empty object, version 0);
 *   3. copy each field of (1) over it, except the store-owned ones;
 *   4. put with expected_version = the version read in (2);
 *   5. on WB_ERR_CONFLICT someone wrote in between: back to (2).
 */
wb_err_t ctx_store_update(ctx_store_t *cs, const char *key, const char *fields_json, size_t len,
			  uint32_t ttl_ms, struct ctx_value *merged)
{
	struct ctx_value cur;
	json_object *fields;
	wb_err_t err = WB_ERR_CONFLICT;
	uint64_t seed = now_us() ^ (uintptr_t)&cur; /* differs per thread and call */
	int attempt;

	if (!key_is_valid(key) || !fields_json || !looks_like_object(fields_json, len))
		return WB_ERR_INVALID;
	if (len > CTX_STORE_MAX_VALUE)
		return WB_ERR_TOO_BIG;
	fields = parse_json(fields_json, len);
	if (!fields || !json_object_is_type(fields, json_type_object)) {
		json_object_put(fields);
		log_item_error("update", key, WB_ERR_INVALID);
		return WB_ERR_INVALID;
	}

	ctx_value_init(&cur);
	for (attempt = 0; attempt < CTX_UPDATE_MAX_ATTEMPTS; attempt++) {
		json_object *obj;
		const char *text;
		uint64_t version = 0;

		if (attempt > 0)
			update_backoff(attempt - 1, &seed);
		err = ctx_store_get(cs, key, &cur);
		if (err != WB_OK)
			break;
		obj = parse_json(cur.json, cur.len);
		if (!obj || !json_object_is_type(obj, json_type_object)) {
			/* Backends hand out objects only; should one not parse
			 * here, merging into {} would overwrite it: refuse. */
			json_object_put(obj);
			err = WB_ERR_CORRUPT;
			log_item_error("update", key, err);
			break;
		}
		json_object_object_foreach(fields, k, v) {
			if (strcmp(k, "version") == 0 || strcmp(k, "updated_at") == 0)
				continue;
			json_object_object_add(obj, k, json_object_get(v));
		}
		text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!text) {
			json_object_put(obj);
			err = WB_ERR_NOMEM;
			break;
		}
		err = ctx_store_put(cs, key, text, strlen(text), cur.found ? cur.version : 0, ttl_ms, &version);
		if (err == WB_OK && merged) {
			err = ctx_value_set(merged, text, strlen(text));
			merged->found = true;
			merged->version = version;
			merged->updated_at_ms = ctx_now_wall_ms();
		}
		json_object_put(obj);
		if (err != WB_ERR_CONFLICT)
			break;
	}
	ctx_value_fini(&cur);
	json_object_put(fields);
	return err;
}

/* ---- delete and stats ---------------------------------------------------- */

wb_err_t ctx_store_del(ctx_store_t *cs, const char *key)
{
	uint64_t start = latency_start(cs), us;
	wb_err_t err;

	if (!key_is_valid(key))
		err = WB_ERR_INVALID;
	else
		err = cs->ops->del(cs->be, key);
	if (err == WB_OK) {
		count(&cs->deletes, 1);
		log_at(LOG_DEBUG, "context deleted", LOG_PHONE("phone", key));
	} else if (err != WB_ERR_NOT_FOUND) {
		count(&cs->errors, 1);
		log_item_error("delete", key, err);
	}
	us = latency_record(cs, start);
	if (cs->audit)
		audit("del", key, err, "ok", us, 1);
	return err;
}

wb_err_t ctx_store_server_memory(ctx_store_t *cs, uint64_t *bytes)
{
	if (!cs->ops->server_memory)
		return WB_ERR_NOT_FOUND;
	return cs->ops->server_memory(cs->be, bytes);
}

static uint64_t load(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void ctx_store_stats(ctx_store_t *cs, struct ctx_store_stats *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	out->gets = load(&cs->gets);
	out->hits = load(&cs->hits);
	out->misses = load(&cs->misses);
	out->errors = load(&cs->errors);
	out->puts = load(&cs->puts);
	out->conflicts = load(&cs->conflicts);
	out->deletes = load(&cs->deletes);
	out->latency_count = load(&cs->latency_count);
	out->latency_sum_us = load(&cs->latency_sum_us);
	for (i = 0; i < CTX_STORE_LAT_BUCKETS; i++)
		out->latency_buckets[i] = load(&cs->latency_buckets[i]);
	cs->ops->stats(cs->be, out);
	out->errors += out->corrupt; /* a corrupt value is a miss and an error */
}
