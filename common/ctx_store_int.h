/*
 * ctx_store_int.h - what ctx_store.c needs from a backend. Private to the
 * ctx_store module (ctx_store.c, ctx_memory.c, ctx_redis.c); never include it
 * from elsewhere.
 *
 * ctx_store.c checks every argument before a backend sees it: keys are valid
 * (1..CTX_STORE_MAX_KEY printable bytes), put items hold a JSON object text
 * without top-level "version"/"updated_at" members, ttl_ms is resolved (> 0),
 * n >= 1. Backends fill per-item err and return the first item error or WB_OK.
 * ctx_store.c keeps the common counters (gets, hits, misses, puts, conflicts,
 * deletes, errors, latency) from the per-item results; a backend counts only
 * what it alone can see (entries, bytes, evictions, round trips, corrupt).
 * Every backend function may be called from many threads at once.
 */
#ifndef WB_CTX_STORE_INT_H
#define WB_CTX_STORE_INT_H

#include "ctx_store.h"

struct ctx_backend_ops {
	const char *name;
	/* true: ctx_store.c times every call into the latency histogram. The
	 * memory backend says false: its calls take a fraction of a
	 * microsecond and two clock reads would cost a tenth of each. */
	bool timed;
	/* Fills items[i].value (found/json/version/updated_at) and items[i].err. */
	wb_err_t (*get_many)(void *be, struct ctx_get_item *items, size_t n);
	/* Writes with compare-and-set; fills new_version and err per item. */
	wb_err_t (*put_many)(void *be, struct ctx_put_item *items, size_t n);
	/* Optional (NULL: ctx_store.c uses get_many and put_many): get_many
	 * that may set *hold (else NULL) for one put_many_held of the same
	 * keys, which writes as put_many does and releases the hold (hold may
	 * be NULL, n may be 0). See ctx_store_get_many_held. */
	wb_err_t (*get_many_held)(void *be, struct ctx_get_item *items, size_t n, void **hold);
	wb_err_t (*put_many_held)(void *be, void *hold, struct ctx_put_item *items, size_t n);
	/* WB_OK, WB_ERR_NOT_FOUND or an error. */
	wb_err_t (*del)(void *be, const char *key);
	/* Adds the backend-only fields of *out (entries, bytes, evictions,
	 * round_trips, reconnects, corrupt); leaves the others alone. */
	void (*stats)(void *be, struct ctx_store_stats *out);
	/* The server's own memory use in bytes (Redis: INFO memory,
	 * used_memory); NULL for a backend without a server. */
	wb_err_t (*server_memory)(void *be, uint64_t *bytes);
	void (*destroy)(void *be);
};

extern const struct ctx_backend_ops ctx_memory_ops;
extern const struct ctx_backend_ops ctx_redis_ops;

/* Constructors: return the backend handle or NULL with errstr filled.
 * cfg is borrowed; default_ttl_ms is already resolved. */
void *ctx_memory_new(const struct ctx_store_config *cfg, char *errstr, size_t errstr_size);
/* NULL on failure, with *err_out saying why (wb_err_is_retriable: Redis
 * did not answer; worth trying again later). */
void *ctx_redis_new(const struct ctx_store_config *cfg, wb_err_t *err_out, char *errstr, size_t errstr_size);

/* Makes v->json hold len bytes of src plus a NUL (grows v's buffer when
 * needed, keeps it otherwise). WB_OK or WB_ERR_NOMEM (v unchanged). */
wb_err_t ctx_value_set(struct ctx_value *v, const char *src, size_t len);

/* Sets v to "not found": json "{}", found false, version 0. */
wb_err_t ctx_value_set_missing(struct ctx_value *v);

/* Milliseconds: wall clock (for updated_at) and monotonic (for TTLs). */
int64_t ctx_now_wall_ms(void);
int64_t ctx_now_mono_ms(void);

#endif /* WB_CTX_STORE_INT_H */
