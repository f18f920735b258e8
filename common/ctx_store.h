/*
 * ctx_store.h - the conversation context store: one interface, two backends.
 *
 * A context is a JSON object kept per phone (the key). The store owns two of
 * its top-level fields, "version" (compare-and-set) and "updated_at" (unix
 * ms), and keeps a TTL per entry that every write refreshes and no read does.
 * Backends: ctx_memory.c (sharded in-process table) and ctx_redis.c (Redis
 * through hiredis' protocol layer, plain or TLS). ctx_store.c holds what is
 * common: argument checks, update (merge), counters, latency, log lines.
 *
 * Threads: a ctx_store_t is safe to use from any number of threads at once.
 * It owns its backend (memory, sockets, the memory sweep thread).
 * It does not: parse or interpret the caller's fields beyond what update
 * needs, know about flows or events, or retry transport failures (the caller
 * decides; the Redis backend reconnects with backoff on later calls).
 */
#ifndef WB_CTX_STORE_H
#define WB_CTX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ctx_store ctx_store_t;

/* Longest key accepted, in bytes: a phone ("+" and up to 15 digits) or a
 * WhatsApp business-scoped user id ("CC." and up to 128 characters). Keys
 * are 1..CTX_STORE_MAX_KEY printable ASCII bytes (no spaces or control
 * characters). */
#define CTX_STORE_MAX_KEY 160

/* Largest context JSON accepted by put/update, in bytes (1 MiB). */
#define CTX_STORE_MAX_VALUE (1024 * 1024)

/* expected_version meaning "write whatever is there" (no compare-and-set). */
#define CTX_VERSION_ANY UINT64_MAX

/* Default TTL when the configuration gives none: one hour. */
#define CTX_STORE_DEFAULT_TTL_MS (3600u * 1000u)

/* Latency histogram: bucket i counts calls that took < 2^i microseconds
 * (bucket 0: < 1 us); the last bucket also takes everything slower. */
#define CTX_STORE_LAT_BUCKETS 24

enum ctx_backend {
	CTX_BACKEND_MEMORY = 0,
	CTX_BACKEND_REDIS = 1,
};

/* Where and how to reach Redis. Filled by config from REDIS_URL or
 * AZURE_REDIS_CONNECTIONSTRING. Strings are borrowed by ctx_store_new(),
 * which copies what it keeps. password is a secret: never log it. */
struct ctx_redis_opts {
	const char *host;           /* host name or IP literal (no brackets) */
	int port;                   /* 1..65535 */
	const char *user;           /* ACL user, NULL for the default user */
	const char *password;       /* NULL for no AUTH */
	int db;                     /* SELECT index, 0 by default */
	bool tls;                   /* rediss:// or ssl=True */
	bool tls_verify;            /* verify the server certificate and name (default true) */
	const char *tls_ca_file;    /* PEM CA bundle; NULL for the system store */
	const char *tls_server_name;/* SNI and name to verify; NULL: host */
	int connect_timeout_ms;     /* TCP connect + TLS handshake + AUTH, default 2000 */
	int command_timeout_ms;     /* one round trip (a whole batch), default 1000 */
	int pool_size;              /* connections kept; calls beyond wait, default 4 */
};

struct ctx_memory_opts {
	uint64_t max_entries;      /* 0: no bound on entries */
	uint64_t max_bytes;        /* 0: no bound on bytes (keys, values, overhead) */
	unsigned shards;           /* power of two; 0: default (64) */
	unsigned sweep_interval_ms;/* periodic expiry sweep; 0: default (1000) */
};

struct ctx_store_config {
	enum ctx_backend backend;
	uint32_t default_ttl_ms;   /* 0: CTX_STORE_DEFAULT_TTL_MS */
	/* Audit: every key read, written or deleted through this store logs one
	 * line at info level, {"msg":"context audit","op":"get"|"put"|"del",
	 * "phone":<masked>,"result":"hit"|"miss"|"ok"|"conflict"|"not_found"|
	 * <error name>,"latency_us":N,"batch":N} (a batch's keys share its call's
	 * latency), so access can be reviewed without exposing numbers. */
	bool audit;
	struct ctx_memory_opts memory;
	struct ctx_redis_opts redis;
};

/*
 * A context read from the store. The caller owns it: set it up with
 * ctx_value_init(), reuse it across calls (the buffer grows as needed and is
 * kept), release it with ctx_value_fini().
 * json holds the context object WITHOUT the store-owned "version" and
 * "updated_at" fields, NUL-terminated, e.g. {"conversation_step":"x"}.
 */
struct ctx_value {
	char *json;             /* owned buffer; valid when found */
	size_t len;             /* bytes of json, without the NUL */
	size_t cap;             /* allocated bytes of json */
	bool found;             /* false: no live entry (json is "{}") */
	uint64_t version;       /* 1 after the first write; 0 when !found */
	int64_t updated_at_ms;  /* unix ms of the last write; 0 when !found */
};

void ctx_value_init(struct ctx_value *v);
void ctx_value_fini(struct ctx_value *v);

/* One read of a batch. key is borrowed for the call. */
struct ctx_get_item {
	const char *key;        /* in */
	struct ctx_value value; /* out; init once, reuse */
	wb_err_t err;           /* out: WB_OK (hit or miss, see value.found) or why not */
};

/* One write of a batch: replaces the whole context. Borrowed for the call. */
struct ctx_put_item {
	const char *key;           /* in */
	const char *json;          /* in: a JSON object; top-level "version"
	                              and "updated_at" are ignored (store-owned) */
	size_t len;                /* in: bytes of json */
	uint64_t expected_version; /* in: CTX_VERSION_ANY, or the version read
	                              (0 = must not exist) */
	uint32_t ttl_ms;           /* in/out: 0 = the store's default TTL,
	                              which is written back here */
	uint64_t new_version;      /* out: version written */
	wb_err_t err;              /* out: WB_OK, WB_ERR_CONFLICT, ... */
};

/*
 * Counters since ctx_store_new(). Memory-only and Redis-only fields stay 0 on
 * the other backend. A snapshot: each field is read atomically, not the set.
 */
struct ctx_store_stats {
	uint64_t gets;             /* keys read */
	uint64_t hits;             /* ... found */
	uint64_t misses;           /* ... not found, expired, or not valid JSON */
	uint64_t errors;           /* failed keys, any operation, and corrupt values */
	uint64_t corrupt;          /* stored values that were not a JSON object */
	uint64_t puts;             /* keys written (put and update) */
	uint64_t conflicts;        /* compare-and-set refused */
	uint64_t deletes;          /* keys deleted */
	/* memory backend */
	uint64_t entries;          /* live + not yet swept entries now */
	uint64_t bytes;            /* bytes accounted now (keys, values, overhead) */
	uint64_t expired;          /* entries removed because their TTL passed */
	uint64_t evicted_expired;  /* ... of those, removed to make room */
	uint64_t evicted_lru;      /* live entries evicted (least recently used) */
	/* Redis backend */
	uint64_t round_trips;      /* network round trips (one per batch) */
	uint64_t reconnects;       /* connections (re)established */
	/* latency of each call (one per batch), microseconds; Redis backend
	 * only (memory calls take well under a microsecond: not timed) */
	uint64_t latency_count;
	uint64_t latency_sum_us;
	uint64_t latency_buckets[CTX_STORE_LAT_BUCKETS];
};

/*
 * Creates a store for cfg (borrowed; copied). Connects to Redis for the
 * Redis backend and fails when it cannot (wrong password, untrusted
 * certificate, nothing listening), writing one clear line to errstr (may be
 * NULL; never holds a secret). Returns the handle or NULL.
 */
ctx_store_t *ctx_store_new(const struct ctx_store_config *cfg, char *errstr, size_t errstr_size);

/* ctx_store_new that also says why it failed: WB_OK with *out set, or the
 * error with *out NULL. wb_err_is_retriable(error): Redis did not answer
 * (nothing listening, no reply in time), worth trying again later; other
 * errors (wrong password, untrusted certificate, bad options) are not. */
wb_err_t ctx_store_open(const struct ctx_store_config *cfg, ctx_store_t **out, char *errstr, size_t errstr_size);

/* Stops the sweep thread, closes connections, frees everything. NULL ok. */
void ctx_store_destroy(ctx_store_t *cs);

/* "memory" or "redis". */
const char *ctx_store_backend_name(const ctx_store_t *cs);

/*
 * Reads one context. WB_OK with out->found telling hit or miss (an expired
 * entry or a stored value that is not a JSON object is a miss; the latter
 * also counts an error and logs). Errors: WB_ERR_INVALID (bad key),
 * WB_ERR_NOMEM, transport errors of the backend (WB_ERR_IO, WB_ERR_TIMEOUT,
 * WB_ERR_UNAVAILABLE, ...). Does not refresh the TTL.
 */
wb_err_t ctx_store_get(ctx_store_t *cs, const char *key, struct ctx_value *out);

/*
 * Replaces the context of key with json (a JSON object of len bytes) when the
 * stored version equals expected_version (CTX_VERSION_ANY: always). Sets the
 * TTL to ttl_ms (0: default). On WB_OK *new_version (may be NULL) is the
 * version written. WB_ERR_CONFLICT when the version differs (nothing
 * written), WB_ERR_INVALID (bad key, not an object), WB_ERR_TOO_BIG (over
 * CTX_STORE_MAX_VALUE, or larger than the memory bound), transport errors.
 */
wb_err_t ctx_store_put(ctx_store_t *cs, const char *key, const char *json, size_t len,
		       uint64_t expected_version, uint32_t ttl_ms, uint64_t *new_version);

/*
 * Merges the top-level fields of fields_json (a JSON object) into the stored
 * context, creating it when absent: a field given replaces the stored one,
 * others stay (Python's dict.update, as the Django bot's update_context).
 * Atomic against concurrent writers (compare-and-set, retried on conflict).
 * Refreshes the TTL. merged (may be NULL) receives the result.
 * Errors as ctx_store_put, plus WB_ERR_CONFLICT after too many lost races.
 */
wb_err_t ctx_store_update(ctx_store_t *cs, const char *key, const char *fields_json, size_t len,
			  uint32_t ttl_ms, struct ctx_value *merged);

/* Deletes key. WB_OK, WB_ERR_NOT_FOUND when there was none, or an error. */
wb_err_t ctx_store_del(ctx_store_t *cs, const char *key);

/*
 * Batch calls: one lock round per shard touched (memory) or one network round
 * trip (Redis) for all n items. Each item gets its own err; the return value
 * is WB_OK when every item is WB_OK (a miss is WB_OK), else the first item
 * error. n may be 0. Items are applied in order; two puts to one key in one
 * batch both apply, in order.
 */
wb_err_t ctx_store_get_many(ctx_store_t *cs, struct ctx_get_item *items, size_t n);
wb_err_t ctx_store_put_many(ctx_store_t *cs, struct ctx_put_item *items, size_t n);

/*
 * A read-then-write batch, the worker's per-batch pattern: read with
 * ctx_store_get_many_held, compute (no I/O), then write some of those keys,
 * each with the version read, with ctx_store_put_many_held. Results,
 * counters and guarantees are exactly those of get_many + put_many; only the
 * cost differs. Redis: the read WATCHes its keys on the connection it used
 * and keeps that connection, so the write is one MULTI/EXEC of plain SETs
 * instead of the compare-and-set script (redis-server's time for a write:
 * 2.6 us per event against the script's 5.2 in bench_kafka; see ctx_redis.c). When any key changed in between, EXEC refuses and
 * the write goes through the script, which tells the conflicts apart.
 * *hold is set (NULL when nothing is held: memory backend, invalid keys, a
 * failed read) and must be given to exactly one ctx_store_put_many_held
 * (n may be 0), which releases it. A hold keeps a pooled connection busy:
 * make no other call to the store in between (with every connection held,
 * it would wait for one until the acquire timeout).
 */
typedef struct ctx_hold ctx_hold_t;
wb_err_t ctx_store_get_many_held(ctx_store_t *cs, struct ctx_get_item *items, size_t n, ctx_hold_t **hold);
wb_err_t ctx_store_put_many_held(ctx_store_t *cs, ctx_hold_t *hold, struct ctx_put_item *items, size_t n);

/* The store server's own memory use in bytes (Redis: used_memory from INFO
 * memory), for the operators' dashboards: one round trip, so call it from a
 * background thread, not per event. WB_ERR_NOT_FOUND for the memory
 * backend (it has no server; see ctx_store_stats' bytes), or a transport
 * error. */
wb_err_t ctx_store_server_memory(ctx_store_t *cs, uint64_t *bytes);

/* Fills *out with a snapshot of the counters. Cannot fail. */
void ctx_store_stats(ctx_store_t *cs, struct ctx_store_stats *out);

#endif /* WB_CTX_STORE_H */
