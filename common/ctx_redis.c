/*
 * ctx_redis.c - the Redis backend of ctx_store: a small pool of redis_conn
 * connections, compare-and-set writes in one Lua script, pipelined batches
 * (a batch of puts is one script call per chunk of up to 64 keys, a batch
 * of gets one GETRANGE per key, each batch in one round trip).
 *
 * Held batches (get_many_held + put_many_held, the worker's per-batch
 * calls): the read sends WATCH of its keys before the GETRANGEs and keeps
 * the slot; the write of keys at the versions read is MULTI, one SET ... PX
 * each, EXEC, on that connection. EXEC runs only if no watched key changed
 * since the read, which is the script's compare-and-set without Lua:
 * measured in bench_kafka (INFO commandstats), redis-server went from 7.5
 * to 4.7 us per event; the script's Lua overhead was ~3.8 us per key, WATCH
 * and EXEC cost ~1.4 (WATCH scans the client's watched keys per key). When
 * EXEC refuses (a key changed, a SET refused when queued) or a write does
 * not match the read (another version, "any", a key not read, a read that
 * failed), the script writes and reports each key. A slot given back
 * still watching (a held read that wrote nothing) sends UNWATCH first on
 * its next use. A user whose ACL refuses WATCH gets the script only (one
 * warning).
 *
 * Layout in Redis: key "wabot:ctx:{<phone>}" (the hash tag keeps one phone
 * in one cluster slot); value a JSON object that begins with the store-owned
 * fields, exactly {"version":N,"updated_at":T,<caller's members>}
 * (T unix ms, set by the client), with a PX TTL set by every write.
 *
 * Threads and locks: any number of threads call in at once. A call takes a
 * free pool slot (cr->mu + cr->cv guard only the free list and the
 * reconnect state, never held across I/O), runs its whole batch on the
 * slot's connection (one round trip), and gives the slot back. Everything in
 * a slot belongs to the thread holding it. Counters are atomics.
 *
 * Failures: a round trip that fails breaks its connection; the next call on
 * that slot reconnects. A failed reconnect starts an exponential backoff
 * (100 ms doubling to 5 s, jittered) during which calls needing a new
 * connection fail fast with WB_ERR_UNAVAILABLE. "redis connection lost" and
 * "redis connection restored" are logged once per change of state.
 *
 * Stored values are untrusted: reads validate them with json-c and turn
 * anything that is not a JSON object into a miss, counted and logged with the
 * phone masked, never the value. Reads use GETRANGE bounded at
 * CR_MAX_STORED + 1 bytes, so an oversized value costs one bounded reply and
 * is reported as corrupt, instead of an unbounded GET reply.
 * Does not: retry failed round trips (the caller decides), talk to Redis
 * Cluster (no MOVED handling; and a put chunk's keys, one hash tag per
 * phone, would be in different slots: a cluster client must split chunks
 * per slot), or present client certificates.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "clock.h"
#include "ctx_store_int.h"
#include "json.h"
#include "log.h"
#include "redis_conn.h"

#define CR_KEY_PREFIX "wabot:ctx:{"
#define CR_KEY_PREFIX_LEN (sizeof CR_KEY_PREFIX - 1)
/* "wabot:ctx:{" + key + "}" */
#define CR_MAX_KEY_BYTES (CR_KEY_PREFIX_LEN + CTX_STORE_MAX_KEY + 1)

/* Largest stored value read back: the caller's 1 MiB plus our prefix. */
#define CR_MAX_STORED (CTX_STORE_MAX_VALUE + 128)

/* Versions are JSON numbers that Lua (doubles) holds exactly: 1..2^53-1. */
#define CR_MAX_VERSION 9007199254740991ull

/* json-c depth bound for stored values; equals Redis' cjson default
 * decode_max_depth, so the script and the reader agree on validity. */
#define CR_JSON_DEPTH 1000

#define CR_DEFAULT_POOL 4
#define CR_MAX_POOL 256
#define CR_DEFAULT_CONNECT_MS 2000
#define CR_DEFAULT_COMMAND_MS 1000
#define CR_BACKOFF_MIN_MS 100
#define CR_BACKOFF_MAX_MS 5000

/*
 * A put batch goes to Redis as one script call per chunk of at most
 * CR_PUT_CHUNK_KEYS keys (all chunks of a batch in one round trip). The
 * bound keeps one call's argument count (3 + 6 per key), its reply (one
 * element per key, under REDIS_CONN_MAX_ELEMENTS) and the time the server
 * spends in one script short; the worker's batches are at most 64
 * keys (LANE_BATCH), so they take one call. A chunk also ends before the
 * callers' members pass CR_PUT_CHUNK_BYTES (unless one item alone is larger),
 * so large contexts do not make one huge command.
 */
#define CR_PUT_CHUNK_KEYS 64
#define CR_PUT_CHUNK_BYTES (256u * 1024u)

/* Most keys a held read WATCHes; a larger read holds nothing and its write
 * takes the script. Redis' WATCH scans the client's watched keys for each
 * key it adds, so n keys cost it O(n^2): about 1 us per key at 64 keys,
 * 1.35 at 128 (bench_kafka -v), and a huge batch would stall the server. */
#define CR_WATCH_MAX_KEYS 256

/* Replies and command buffers of a slot above this are freed after use. */
#define CR_KEEP_BUF_BYTES (4u * 1024u * 1024u)

/*
 * The write script: compare-and-set plus TTL in one atomic step per key, for
 * a whole chunk of a batch in one call. KEYS[1..n] the keys; 5 ARGV per key,
 * for KEYS[i] (j = 5i - 5):
 *   ARGV[j+1] expected version ("" = any),
 *   ARGV[j+2] fast-path prefix {"version":E, (E the expected version) or ""
 *             (any, 0, or above 2^53-1: no fast path),
 *   ARGV[j+3] the new version E+1 ("" for any),
 *   ARGV[j+4] TTL ms,
 *   ARGV[j+5] the value to store, built by the client:
 *             {"version":E+1,"updated_at":T,<caller's members>} (T unix ms,
 *             ",<members>" left out when there are none); for "any" the
 *             version is 0 and the script puts the one it computes instead.
 * Returns an array of n results, the i-th for KEYS[i]: the new version (a
 * string) when written, {0, current_version} on conflict (nothing written),
 * or an error reply (the SET refused, e.g. OOM: redis.pcall, so one refused
 * key neither stops the keys after it nor hides that the keys before it
 * were written). Versions are strings (Lua numbers are doubles: never let
 * Redis truncate them). Keys are handled in order, so a key given twice
 * sees its first write. A batch of 1 uses the same script (n = 1).
 *
 * The version of a stored value is its top-level "version" member when the
 * value is a valid JSON object and the member is an integral number in
 * 1..2^53-1, else 0 (absent key, other types, foreign or corrupt values).
 * The reader in this file applies the same rule, so a client that read
 * version v can always write with expected v. Fast path (every value we
 * wrote): the value starts with {"version":v followed by ',' or '}' and the
 * caller expects v or anything: no decoding. Only a mismatch or a foreign
 * value pays for the UTF-8 check and cjson.decode, so a corrupt value that
 * still carries our prefix counts as 0 and a client that read it as a miss
 * can overwrite it. The common case of the fast path (expected v in
 * 1..2^53-1, our own value, so ',' follows) is decided by comparing the
 * first bytes of the value (GETRANGE, a short string) with ARGV[j+2]; any
 * other case runs the general code below it on the whole value, which
 * applies the rule above, fast path included. The new value then is ARGV[j+5]
 * as sent: no string is built in Lua unless the caller expects "any".
 * Why the rule and not "prefix or 0" (the first design): the reader honours
 * a foreign object's "version" member, and a script blind to it would
 * refuse every write to such a key with a conflict, forever.
 * Known gap: json-c (reader) and Redis' cjson (script) disagree on a few
 * exotic texts (json-c takes 'single quotes' and NaN, cjson takes 0x10);
 * through the script, a planted value of that kind with a "version" member
 * can only be replaced with CTX_VERSION_ANY or deleted. A held write
 * (MULTI/EXEC, below) goes by what the reader saw and replaces it. Our own
 * writes never produce one.
 * Cost, measured (INFO commandstats, loaded 2-core VM, 230-byte context,
 * server time per key written): one EVALSHA per key took 11-15 us, most of
 * it per-call setup (script lookup, KEYS/ARGV tables, reply) and the Lua
 * strings built per key (the GET reply, three concatenations, a
 * string.format, a result table); this shape takes 6-9 us per key in a
 * chunk of 50 (bench_ctx_redis, same runs: 12-13.5 us before), of which
 * redis.pcall('SET') is about 2 and the KEYS/ARGV tables about 1; a batch
 * of 1 takes 15-16 us against 21-25 us before. The slow-path code sits in a branch of the loop, not in a
 * Lua function.
 * Cluster: all keys of a chunk go to one script call; on Redis Cluster they
 * would be in different slots (one {phone} hash tag per key) and the call
 * would fail with CROSSSLOT, so a cluster client would have to split chunks
 * per slot. This file talks to a standalone server only (see the top).
 */
static const char cr_script[] =
	"local MAXV = 9007199254740991\n"
	"local n = #KEYS\n"
	"if #ARGV ~= 5 * n then return redis.error_reply('ERR wabot: 5 ARGV per key') end\n"
	"local res = {}\n"
	"for i = 1, n do\n"
	"  local a = 5 * i - 5\n"
	"  local key, pre = KEYS[i], ARGV[a + 2]\n"
	"  if pre ~= '' and redis.pcall('GETRANGE', key, '0', #pre - 1) == pre then\n"
	"    local r = redis.pcall('SET', key, ARGV[a + 5], 'PX', ARGV[a + 4])\n"
	"    if type(r) == 'table' and r.err then res[i] = r else res[i] = ARGV[a + 3] end\n"
	"  else\n"
	"    local cur = redis.pcall('GET', key)\n"
	"    local exp = ARGV[a + 1]\n"
	"    local v = '0'\n"
	"    if type(cur) == 'string' then\n"
	"      local m = string.match(cur, '^{\"version\":([1-9]%d*)[,}]')\n"
	"      if m and #m <= 16 and tonumber(m) <= MAXV and (exp == '' or exp == m) then\n"
	"        v = m\n"
	"      elseif string.find(cur, '^[ \\t\\r\\n]*{') then\n"
	"        local ok = true\n"
	"        if string.find(cur, '[\\128-\\255]') then\n"
	"          local q, len = 1, #cur\n"
	"          while ok and q <= len do\n"
	"            local c, k = string.byte(cur, q), -1\n"
	"            if c < 128 then k = 0\n"
	"            elseif c >= 192 and c < 224 then k = 1\n"
	"            elseif c >= 224 and c < 240 then k = 2\n"
	"            elseif c >= 240 and c < 248 then k = 3 end\n"
	"            if k < 0 then ok = false end\n"
	"            for j = q + 1, q + k do\n"
	"              local d = string.byte(cur, j)\n"
	"              if not d or d < 128 or d >= 192 then ok = false end\n"
	"            end\n"
	"            q = q + k + 1\n"
	"          end\n"
	"        end\n"
	"        local obj\n"
	"        if ok then ok, obj = pcall(cjson.decode, cur) end\n"
	"        if ok and type(obj) == 'table' then\n"
	"          local x = obj['version']\n"
	"          if type(x) == 'number' and x >= 1 and x <= MAXV and x == math.floor(x) then\n"
	"            v = string.format('%.0f', x)\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    if exp ~= '' and exp ~= v then\n"
	"      res[i] = {0, v}\n"
	"    else\n"
	"      local nv, body = ARGV[a + 3], ARGV[a + 5]\n"
	"      if exp == '' then\n"
	"        nv = string.format('%.0f', tonumber(v) + 1)\n"
	"        body = '{\"version\":' .. nv .. string.sub(body, 13)\n"
	"      end\n"
	"      local r = redis.pcall('SET', key, body, 'PX', ARGV[a + 4])\n"
	"      if type(r) == 'table' and r.err then res[i] = r else res[i] = nv end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return res\n";

/* One key of a held read: where its text is in slot->wkeys, and the
 * version read (0: absent or not ours to trust). ok: read without error. */
struct cr_watch {
	size_t off, len;
	uint64_t version;
	bool ok;
};

/* One script call of a put batch: the keys sent[lo..hi). */
struct cr_span {
	size_t lo, hi;
};

/* One pooled connection and the buffers of the call using it. Every field
 * belongs to the thread that took the slot from the free list. */
struct cr_slot {
	redis_conn_t *conn;          /* NULL: not connected (lazy reconnect) */
	struct redis_cmdbuf cmds;    /* commands of the current round trip */
	redisReply **replies;        /* replies of the current round trip */
	size_t replies_cap;          /* entries allocated in replies */
	size_t *sent;                /* put: item index of each key sent, in order */
	size_t sent_cap;             /* entries allocated in sent */
	struct cr_span *spans;       /* put: sent[lo..hi) of each script call */
	size_t spans_cap;            /* entries allocated in spans */
	char *args;                  /* put: text of one script call's arguments */
	size_t args_cap;             /* bytes allocated in args */
	struct json_tokener *tok;    /* reused parser, depth CR_JSON_DEPTH */
	struct json_doc doc;         /* json.h document of the fast path */
	/* A held read (get_many_held): the keys it WATCHed, in order. */
	bool watching;               /* the connection WATCHes keys that no EXEC
	                                or UNWATCH has cleared yet */
	size_t pre;                  /* commands before the caller's in cmds (an
	                                UNWATCH): their replies are dropped */
	struct cr_watch *watch;      /* n_watch keys read under WATCH */
	size_t n_watch, watch_cap;
	char *wkeys;                 /* the callers' keys of watch[], NUL-separated */
	size_t wkeys_cap;
};

struct ctx_redis {
	/* Immutable after ctx_redis_new. */
	struct redis_conn_opts opts;  /* strings point at the copies below */
	char *host;
	char *user;
	char *password;               /* secret: never logged */
	char *server_name;
	SSL_CTX *tls_ctx;             /* shared by all connections; NULL: plain */
	char sha[41];                 /* SHA1 of cr_script, lowercase hex */
	char max_stored[24];          /* CR_MAX_STORED as text, for GETRANGE */
	size_t pool_size;
	struct cr_slot *slots;        /* pool_size slots */
	int acquire_timeout_ms;       /* longest wait for a free slot */

	/* Guarded by mu. Never held across I/O or logging. */
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* signalled when a slot is returned */
	struct cr_slot **free_slots;  /* stack of free slots */
	size_t n_free;
	bool healthy;                 /* false after a lost connection until a
	                                 reconnect succeeds (for the log lines) */
	uint32_t backoff_ms;          /* delay after the next failed reconnect */
	int64_t retry_at_ms;          /* monotonic; no reconnect before it */
	uint64_t rng;                 /* xorshift state for jitter */

	/* Counters, any thread, relaxed atomics. */
	atomic_uint_fast64_t round_trips;
	atomic_uint_fast64_t reconnects;
	atomic_bool watch_refused;    /* WATCH answered an error (ACL): holds off */
	atomic_uint_fast64_t corrupt;
};

static int64_t cr_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cr_count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* "wabot:ctx:{" + key + "}" into buf (CR_MAX_KEY_BYTES + 1). Returns length. */
static size_t cr_key(char *buf, const char *key)
{
	size_t n = strlen(key);

	memcpy(buf, CR_KEY_PREFIX, CR_KEY_PREFIX_LEN);
	memcpy(buf + CR_KEY_PREFIX_LEN, key, n);
	buf[CR_KEY_PREFIX_LEN + n] = '}';
	buf[CR_KEY_PREFIX_LEN + n + 1] = '\0';
	return CR_KEY_PREFIX_LEN + n + 1;
}

/* Maps a Redis error reply to our code. */
static wb_err_t cr_map_server_error(const redisReply *r)
{
	static const struct {
		const char *prefix;
		wb_err_t err;
	} map[] = {
		{"LOADING", WB_ERR_UNAVAILABLE},   {"BUSY", WB_ERR_UNAVAILABLE},
		{"MASTERDOWN", WB_ERR_UNAVAILABLE}, {"TRYAGAIN", WB_ERR_UNAVAILABLE},
		{"READONLY", WB_ERR_UNAVAILABLE},  {"OOM", WB_ERR_UNAVAILABLE},
		{"CLUSTERDOWN", WB_ERR_UNAVAILABLE}, {"NOAUTH", WB_ERR_AUTH},
		{"NOPERM", WB_ERR_AUTH},           {"WRONGPASS", WB_ERR_AUTH},
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (r->str && strncmp(r->str, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].err;
	return WB_ERR_PROTOCOL;
}

static void cr_log_server_error(const char *op, const char *key, const redisReply *r)
{
	char msg[128];

	snprintf(msg, sizeof msg, "%.*s", (int)(r->len < 100 ? r->len : 100), r->str ? r->str : "");
	log_at(LOG_WARN, "redis refused a command", LOG_STR("op", op), LOG_PHONE("phone", key),
	       LOG_STR("reply", msg));
}

/* ---- pool and reconnects ------------------------------------------------ */

/* Connects one slot and loads the script. Thread: the slot's holder, no lock. */
static wb_err_t cr_slot_connect(struct ctx_redis *cr, struct cr_slot *s, char *errstr, size_t n)
{
	const char *argv[3] = {"SCRIPT", "LOAD", cr_script};
	size_t argl[3] = {6, 4, sizeof cr_script - 1};
	redis_conn_t *conn = NULL;
	redisReply *rep = NULL;
	wb_err_t err;

	err = redis_conn_connect(&cr->opts, cr->tls_ctx, &conn, errstr, n);
	if (err != WB_OK)
		return err;
	/* Preload the script so the first EVALSHA does not pay a NOSCRIPT trip.
	 * A refusal (ACL without SCRIPT) is fine: puts fall back to EVAL. */
	redis_cmdbuf_reset(&s->cmds);
	err = redis_cmdbuf_append(&s->cmds, 3, argv, argl);
	if (err == WB_OK)
		err = redis_conn_pipeline(conn, s->cmds.buf, s->cmds.len, 1, &rep, errstr, n);
	if (err != WB_OK) {
		redis_conn_destroy(conn);
		return err;
	}
	if (rep->type == REDIS_REPLY_STRING && (rep->len != 40 || memcmp(rep->str, cr->sha, 40) != 0))
		log_at(LOG_ERROR, "redis script SHA1 differs from the server's; puts will use EVAL",
		       LOG_STR("sha", cr->sha));
	freeReplyObject(rep);
	s->conn = conn;
	s->watching = false; /* a new connection watches nothing */
	cr_count(&cr->reconnects, 1);
	return WB_OK;
}

static uint32_t cr_jitter_locked(struct ctx_redis *cr, uint32_t delay)
{
	uint64_t x = cr->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	cr->rng = x;
	/* uniform in [delay/2, delay] */
	return delay / 2 + (uint32_t)(x % (delay / 2 + 1));
}

/* A round trip failed at the transport level. Logs the loss once. */
static void cr_note_lost(struct ctx_redis *cr, wb_err_t err, const char *why)
{
	bool was_healthy;

	pthread_mutex_lock(&cr->mu);
	was_healthy = cr->healthy;
	cr->healthy = false;
	pthread_mutex_unlock(&cr->mu);
	if (was_healthy)
		log_at(LOG_WARN, "redis connection lost", LOG_ERR("error", err), LOG_STR("reason", why));
}

/*
 * Makes sure s has a working connection. WB_OK, WB_ERR_UNAVAILABLE during
 * backoff, or the connect error (which starts the next backoff period).
 * Thread: the slot's holder; takes cr->mu briefly, never across connect.
 */
static wb_err_t cr_slot_ready(struct ctx_redis *cr, struct cr_slot *s)
{
	char why[256] = "";
	bool restored = false, lost = false;
	uint32_t delay = 0;
	wb_err_t err;

	if (s->conn && !redis_conn_is_broken(s->conn))
		return WB_OK;
	redis_conn_destroy(s->conn);
	s->conn = NULL;

	pthread_mutex_lock(&cr->mu);
	if (cr_mono_ms() < cr->retry_at_ms) {
		pthread_mutex_unlock(&cr->mu);
		return WB_ERR_UNAVAILABLE;
	}
	pthread_mutex_unlock(&cr->mu);

	err = cr_slot_connect(cr, s, why, sizeof why);

	pthread_mutex_lock(&cr->mu);
	if (err == WB_OK) {
		restored = !cr->healthy;
		cr->healthy = true;
		cr->backoff_ms = CR_BACKOFF_MIN_MS;
		cr->retry_at_ms = 0;
	} else {
		lost = cr->healthy;
		cr->healthy = false;
		delay = cr_jitter_locked(cr, cr->backoff_ms);
		cr->retry_at_ms = cr_mono_ms() + delay;
		cr->backoff_ms = cr->backoff_ms >= CR_BACKOFF_MAX_MS / 2 ? CR_BACKOFF_MAX_MS
									  : cr->backoff_ms * 2;
	}
	pthread_mutex_unlock(&cr->mu);

	if (restored)
		log_at(LOG_INFO, "redis connection restored", LOG_STR("peer", cr->opts.host),
		       LOG_INT("port", cr->opts.port));
	if (lost)
		log_at(LOG_WARN, "redis connection lost", LOG_ERR("error", err), LOG_STR("reason", why));
	else if (err != WB_OK)
		log_at(LOG_DEBUG, "redis reconnect failed", LOG_ERR("error", err), LOG_STR("reason", why),
		       LOG_UINT("retry_in_ms", delay));
	return err;
}

/* Takes a free slot, waiting up to acquire_timeout_ms. NULL on timeout. */
static struct cr_slot *cr_acquire(struct ctx_redis *cr)
{
	struct cr_slot *s = NULL;
	struct timespec until;

	clock_mono_deadline(&until, cr->acquire_timeout_ms);
	pthread_mutex_lock(&cr->mu);
	while (cr->n_free == 0) {
		int rc = pthread_cond_timedwait(&cr->cv, &cr->mu, &until);

		if (rc == ETIMEDOUT && cr->n_free == 0)
			break;
	}
	if (cr->n_free > 0)
		s = cr->free_slots[--cr->n_free];
	pthread_mutex_unlock(&cr->mu);
	return s;
}

/* Gives the slot back; trims buffers a huge batch left behind. */
static void cr_release(struct ctx_redis *cr, struct cr_slot *s)
{
	if (s->cmds.cap > CR_KEEP_BUF_BYTES)
		redis_cmdbuf_fini(&s->cmds);
	if (s->args_cap > CR_KEEP_BUF_BYTES) {
		free(s->args);
		s->args = NULL;
		s->args_cap = 0;
	}
	if (s->replies_cap * sizeof(*s->replies) > CR_KEEP_BUF_BYTES) {
		free(s->replies);
		s->replies = NULL;
		s->replies_cap = 0;
		free(s->sent);
		s->sent = NULL;
		s->sent_cap = 0;
		free(s->spans);
		s->spans = NULL;
		s->spans_cap = 0;
	}
	pthread_mutex_lock(&cr->mu);
	cr->free_slots[cr->n_free++] = s;
	pthread_cond_signal(&cr->cv);
	pthread_mutex_unlock(&cr->mu);
}

/*
 * Takes a slot with a working connection, or returns NULL and sets *err
 * (WB_ERR_TIMEOUT: no slot freed in time; WB_ERR_UNAVAILABLE: backoff;
 * a connect error).
 */
static struct cr_slot *cr_begin(struct ctx_redis *cr, wb_err_t *err)
{
	struct cr_slot *s = cr_acquire(cr);

	if (!s) {
		*err = WB_ERR_TIMEOUT;
		return NULL;
	}
	*err = cr_slot_ready(cr, s);
	if (*err != WB_OK) {
		cr_release(cr, s);
		return NULL;
	}
	return s;
}

/* Room for a round trip of n items: n + 3 replies (an UNWATCH before them,
 * a WATCH or a MULTI and an EXEC around them) and n of everything else. */
static wb_err_t cr_reserve(struct cr_slot *s, size_t n)
{
	if (s->replies_cap < n + 3) {
		redisReply **r = realloc(s->replies, (n + 3) * sizeof(*r));

		if (!r)
			return WB_ERR_NOMEM;
		s->replies = r;
		s->replies_cap = n + 3;
	}
	if (s->sent_cap < n) {
		size_t *x = realloc(s->sent, n * sizeof(*x));

		if (!x)
			return WB_ERR_NOMEM;
		s->sent = x;
		s->sent_cap = n;
	}
	if (s->spans_cap < n) {
		struct cr_span *x = realloc(s->spans, n * sizeof(*x));

		if (!x)
			return WB_ERR_NOMEM;
		s->spans = x;
		s->spans_cap = n;
	}
	return WB_OK;
}

/* Starts the commands of a round trip on s: an UNWATCH first when the
 * connection still watches the keys of a held read that wrote nothing. */
static wb_err_t cr_cmds_reset(struct cr_slot *s)
{
	static const char *const argv[1] = {"UNWATCH"};
	static const size_t argl[1] = {7};

	redis_cmdbuf_reset(&s->cmds);
	s->pre = 0;
	if (!s->watching)
		return WB_OK;
	s->pre = 1;
	return redis_cmdbuf_append(&s->cmds, 1, (const char **)argv, argl);
}

/* Runs the round trip in s->cmds (s->pre commands of ours, then n whose
 * replies land in s->replies[0..n)); counts it; on failure logs the loss. */
static wb_err_t cr_round_trip(struct ctx_redis *cr, struct cr_slot *s, size_t n)
{
	char why[256] = "";
	wb_err_t err;

	cr_count(&cr->round_trips, 1);
	err = redis_conn_pipeline(s->conn, s->cmds.buf, s->cmds.len, s->pre + n, s->replies, why, sizeof why);
	if (err != WB_OK) {
		cr_note_lost(cr, err, why);
		s->watching = false; /* the connection is broken and will be replaced */
		return err;
	}
	if (s->pre) {
		freeReplyObject(s->replies[0]);
		memmove(s->replies, s->replies + 1, n * sizeof(*s->replies));
		s->pre = 0;
		s->watching = false;
	}
	return WB_OK;
}

/* ---- reads ---------------------------------------------------------------- */

static bool cr_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses len bytes of text with the slot's tokener: the object, or NULL
 * with *why set. Trailing JSON whitespace is allowed, anything else not. */
static struct json_object *cr_parse(struct cr_slot *s, const char *text, size_t len, const char **why)
{
	struct json_object *obj;
	enum json_tokener_error jerr;

	json_tokener_reset(s->tok);
	obj = json_tokener_parse_ex(s->tok, text, (int)len);
	jerr = json_tokener_get_error(s->tok);
	if (!obj) {
		*why = jerr == json_tokener_continue ? "truncated JSON or not a JSON object"
						     : json_tokener_error_desc(jerr);
		return NULL;
	}
	for (size_t i = json_tokener_get_parse_end(s->tok); i < len; i++) {
		if (!cr_is_ws(text[i])) {
			json_object_put(obj);
			*why = "text after the JSON value";
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		*why = "a JSON value that is not an object";
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* The version rule shared with the script: integral number in 1..2^53-1. */
static uint64_t cr_json_version(struct json_object *v)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		return i >= 1 && (uint64_t)i <= CR_MAX_VERSION ? (uint64_t)i : 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);

		return d >= 1 && d <= (double)CR_MAX_VERSION && d == floor(d) ? (uint64_t)d : 0;
	}
	return 0;
}

/* Parses [-]digits (at most 19) at *p; advances *p. */
static bool cr_scan_int(const char **p, const char *end, int64_t *out, bool allow_minus)
{
	const char *q = *p;
	bool neg = false;
	uint64_t v = 0;
	int digits = 0;

	if (allow_minus && q < end && *q == '-') {
		neg = true;
		q++;
	}
	if (q >= end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		if (++digits > 18)
			return false;
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	*p = q;
	return true;
}

/*
 * Our own layout: {"version":N,"updated_at":T followed by ',' or '}'. On a
 * match sets *version, *updated_at and *rest (the byte after T).
 */
static bool cr_match_prefix(const char *s, size_t len, uint64_t *version, int64_t *updated_at,
			    const char **rest)
{
	static const char p1[] = "{\"version\":";
	static const char p2[] = ",\"updated_at\":";
	const char *p = s, *end = s + len;
	int64_t v;

	if (len < sizeof p1 - 1 || memcmp(p, p1, sizeof p1 - 1) != 0)
		return false;
	p += sizeof p1 - 1;
	if (!cr_scan_int(&p, end, &v, false) || v < 1 || (uint64_t)v > CR_MAX_VERSION)
		return false;
	if ((size_t)(end - p) < sizeof p2 - 1 || memcmp(p, p2, sizeof p2 - 1) != 0)
		return false;
	p += sizeof p2 - 1;
	if (!cr_scan_int(&p, end, updated_at, true))
		return false;
	if (p >= end || (*p != ',' && *p != '}'))
		return false;
	*version = (uint64_t)v;
	*rest = p;
	return true;
}

static void cr_corrupt(struct ctx_redis *cr, const char *key, const char *why, struct ctx_get_item *it)
{
	cr_count(&cr->corrupt, 1);
	log_at(LOG_WARN, "redis context is not a JSON object; treated as missing",
	       LOG_PHONE("phone", key), LOG_STR("reason", why));
	it->err = ctx_value_set_missing(&it->value);
}

static void cr_found(struct ctx_get_item *it, const char *json, size_t len, uint64_t version,
		     int64_t updated_at)
{
	it->err = ctx_value_set(&it->value, json, len);
	if (it->err != WB_OK)
		return;
	it->value.found = true;
	it->value.version = version;
	it->value.updated_at_ms = updated_at;
}

/*
 * Decodes one stored value (reply->str, which we own and may modify) into
 * it->value. Fast path for our layout: the body is the text after the
 * prefix with its ',' replaced by '{', validated by parsing that body alone
 * (it must not repeat "version"/"updated_at"). Anything else is parsed whole
 * and, when it is an object, re-serialised without the store-owned members.
 */
static void cr_decode(struct ctx_redis *cr, struct cr_slot *s, const char *key, redisReply *r,
		      struct ctx_get_item *it)
{
	struct json_object *obj, *m;
	const char *why = NULL, *rest, *text;
	uint64_t version = 0;
	int64_t updated_at = 0;

	if (r->len > CR_MAX_STORED) {
		cr_corrupt(cr, key, "value larger than the store's limit", it);
		return;
	}
	if (cr_match_prefix(r->str, r->len, &version, &updated_at, &rest)) {
		char *body = r->str + (rest - r->str);
		size_t blen = r->len - (size_t)(rest - r->str);

		if (*body == '}') {
			for (size_t i = 1; i < blen; i++) {
				if (!cr_is_ws(body[i])) {
					cr_corrupt(cr, key, "text after the JSON value", it);
					return;
				}
			}
			cr_found(it, "{}", 2, version, updated_at);
			return;
		}
		/* "...,}" would become a valid "{}": reject the empty member. */
		{
			size_t j = 1;

			while (j < blen && cr_is_ws(body[j]))
				j++;
			if (j < blen && body[j] == '}') {
				cr_corrupt(cr, key, "trailing comma", it);
				return;
			}
		}
		/* Validated with json.h, not json-c: the same strict grammar
		 * and UTF-8 check at a tenth of the cost (json-c was a fifth
		 * of the worker's CPU with Redis in bench_kafka). */
		*body = '{';
		{
			struct json_limits lim = {CR_MAX_STORED, CR_JSON_DEPTH, 0};
			enum json_error jerr = json_parse(&s->doc, body, blen, &lim);

			if (jerr != JSON_OK) {
				cr_corrupt(cr, key, jerr == JSON_E_NOMEM ? "out of memory" : json_error_str(jerr), it);
				return;
			}
		}
		if (json_get(&s->doc, 0, "version") == JSON_NONE && json_get(&s->doc, 0, "updated_at") == JSON_NONE) {
			cr_found(it, body, blen, version, updated_at);
			return;
		}
		/* Repeated store-owned members: take the general path. */
		*body = ',';
	}

	obj = cr_parse(s, r->str, r->len, &why);
	if (!obj) {
		cr_corrupt(cr, key, why, it);
		return;
	}
	version = 0;
	updated_at = 0;
	if (json_object_object_get_ex(obj, "version", &m))
		version = cr_json_version(m);
	if (json_object_object_get_ex(obj, "updated_at", &m) && json_object_is_type(m, json_type_int))
		updated_at = json_object_get_int64(m);
	json_object_object_del(obj, "version");
	json_object_object_del(obj, "updated_at");
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		it->err = WB_ERR_NOMEM;
	else
		cr_found(it, text, strlen(text), version, updated_at);
	json_object_put(obj);
}

static wb_err_t cr_first_err(const struct ctx_get_item *gets, const struct ctx_put_item *puts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		wb_err_t e = gets ? gets[i].err : puts[i].err;

		if (e != WB_OK)
			return e;
	}
	return WB_OK;
}

/* Makes s->args hold at least need bytes (its old text is not kept). */
static bool cr_args_room(struct cr_slot *s, size_t need)
{
	char *x;

	if (s->args_cap >= need)
		return true;
	x = realloc(s->args, need);
	if (!x)
		return false;
	s->args = x;
	s->args_cap = need;
	return true;
}

/* Appends WATCH of the keys of items[0..n) (their text goes to s->args). */
static wb_err_t cr_append_watch(struct cr_slot *s, const struct ctx_get_item *items, size_t n)
{
	const char **argv = malloc((n + 1) * sizeof(*argv));
	size_t *argl = malloc((n + 1) * sizeof(*argl)), used = 0;
	wb_err_t err = WB_ERR_NOMEM;

	if (!argv || !argl || !cr_args_room(s, n * (CR_MAX_KEY_BYTES + 1)))
		goto out;
	argv[0] = "WATCH";
	argl[0] = 5;
	for (size_t i = 0; i < n; i++) {
		argv[i + 1] = s->args + used;
		argl[i + 1] = cr_key(s->args + used, items[i].key);
		used += argl[i + 1] + 1;
	}
	err = redis_cmdbuf_append(&s->cmds, (int)(n + 1), argv, argl);
out:
	free(argv);
	free(argl);
	return err;
}

/* Records the keys of a held read and the versions read, for the write. */
static bool cr_note_watch(struct cr_slot *s, const struct ctx_get_item *items, size_t n)
{
	size_t bytes = 0, off = 0;

	for (size_t i = 0; i < n; i++)
		bytes += strlen(items[i].key) + 1;
	if (s->watch_cap < n) {
		struct cr_watch *w = realloc(s->watch, n * sizeof(*w));

		if (!w)
			return false;
		s->watch = w;
		s->watch_cap = n;
	}
	if (s->wkeys_cap < bytes) {
		char *k = realloc(s->wkeys, bytes);

		if (!k)
			return false;
		s->wkeys = k;
		s->wkeys_cap = bytes;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(items[i].key);

		memcpy(s->wkeys + off, items[i].key, len + 1);
		s->watch[i] = (struct cr_watch){off, len, items[i].value.found ? items[i].value.version : 0,
						items[i].err == WB_OK};
		off += len + 1;
	}
	s->n_watch = n;
	return true;
}

/*
 * Reads items[0..n) in one round trip. hold NULL: get_many. Else the reads
 * follow a WATCH of their keys and *hold keeps the slot, watching, for
 * cr_put_many_held; *hold stays NULL when the read failed or WATCH was
 * refused (the write then takes the script path like any other).
 */
static wb_err_t cr_read(struct ctx_redis *cr, struct ctx_get_item *items, size_t n, void **hold)
{
	struct cr_slot *s;
	bool watch = hold && n <= CR_WATCH_MAX_KEYS && !atomic_load_explicit(&cr->watch_refused, memory_order_relaxed);
	size_t i, w = watch;
	wb_err_t err;

	s = cr_begin(cr, &err);
	if (!s)
		goto out_all;
	err = cr_reserve(s, n);
	if (err == WB_OK)
		err = cr_cmds_reset(s);
	if (err == WB_OK && watch)
		err = cr_append_watch(s, items, n);
	for (i = 0; i < n && err == WB_OK; i++) {
		char key[CR_MAX_KEY_BYTES + 1];
		const char *argv[4] = {"GETRANGE", key, "0", cr->max_stored};
		size_t argl[4] = {8, cr_key(key, items[i].key), 1, strlen(cr->max_stored)};

		err = redis_cmdbuf_append(&s->cmds, 4, argv, argl);
	}
	if (err == WB_OK)
		err = cr_round_trip(cr, s, w + n);
	if (err != WB_OK) {
		cr_release(cr, s);
		goto out_all;
	}
	if (watch) {
		redisReply *r = s->replies[0];

		s->watching = true; /* even after a refused WATCH: UNWATCH is harmless */
		if (r->type == REDIS_REPLY_ERROR) {
			watch = false;
			if (!atomic_exchange(&cr->watch_refused, true))
				log_at(LOG_WARN, "redis refused WATCH; context writes use the script only",
				       LOG_STR("reply", r->str));
		}
		freeReplyObject(r);
		s->replies[0] = NULL;
	}
	for (i = 0; i < n; i++) {
		redisReply *r = s->replies[w + i];
		struct ctx_get_item *it = &items[i];

		it->err = WB_OK;
		if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_STRING && r->len == 0)) {
			it->err = ctx_value_set_missing(&it->value); /* absent (GETRANGE gives "") */
		} else if (r->type == REDIS_REPLY_STRING) {
			cr_decode(cr, s, it->key, r, it);
		} else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
			cr_corrupt(cr, it->key, "key holds a non-string type", it);
		} else if (r->type == REDIS_REPLY_ERROR) {
			cr_log_server_error("get", it->key, r);
			(void)ctx_value_set_missing(&it->value);
			it->err = cr_map_server_error(r);
		} else {
			(void)ctx_value_set_missing(&it->value);
			it->err = WB_ERR_PROTOCOL;
		}
		freeReplyObject(r);
		s->replies[w + i] = NULL;
	}
	if (watch && cr_note_watch(s, items, n))
		*hold = s;
	else
		cr_release(cr, s);
	return cr_first_err(items, NULL, n);

out_all:
	for (i = 0; i < n; i++) {
		(void)ctx_value_set_missing(&items[i].value);
		items[i].err = err;
	}
	return err;
}

static wb_err_t cr_get_many(void *be, struct ctx_get_item *items, size_t n)
{
	return cr_read(be, items, n, NULL);
}

static wb_err_t cr_get_many_held(void *be, struct ctx_get_item *items, size_t n, void **hold)
{
	*hold = NULL;
	return cr_read(be, items, n, hold);
}

/* ---- writes ----------------------------------------------------------------- */

/* The caller's members: the text between the outer braces, trimmed. */
static bool cr_members(const char *json, size_t len, const char **m, size_t *mlen)
{
	size_t a = 0, b = len;

	while (a < b && cr_is_ws(json[a]))
		a++;
	while (b > a && cr_is_ws(json[b - 1]))
		b--;
	if (b - a < 2 || json[a] != '{' || json[b - 1] != '}')
		return false;
	a++;
	b--;
	while (a < b && cr_is_ws(json[a]))
		a++;
	while (b > a && cr_is_ws(json[b - 1]))
		b--;
	*m = json + a;
	*mlen = b - a;
	return true;
}

/* Bytes of one key's arguments besides the caller's members: the key, the
 * expected and new versions, the prefix, the TTL and the value's own text. */
#define CR_PUT_ARG_BYTES (CR_MAX_KEY_BYTES + 256)

/* Writes the value stored for members (mlen bytes) at p (room for
 * mlen + 64): {"version":V,"updated_at":T,<members>} or, with no members,
 * {"version":V,"updated_at":T}. Returns its length (no NUL). */
static size_t cr_format_value(char *p, uint64_t version, const char *now, const char *members, size_t mlen)
{
	static const char v[] = "{\"version\":", u[] = ",\"updated_at\":";
	char *q = p;
	size_t nl = strlen(now);

	memcpy(q, v, sizeof v - 1);
	q += sizeof v - 1;
	q += redis_u64_text(q, version);
	memcpy(q, u, sizeof u - 1);
	q += sizeof u - 1;
	memcpy(q, now, nl);
	q += nl;
	if (mlen) {
		*q++ = ',';
		memcpy(q, members, mlen);
		q += mlen;
	}
	*q++ = '}';
	return (size_t)(q - p);
}

/*
 * Appends EVALSHA (or EVAL when eval) of the script for the put items
 * sent[sp.lo..sp.hi) (at most CR_PUT_CHUNK_KEYS, all object texts). The
 * arguments' text is written to s->args first (sized up front, so the
 * pointers into it stay valid), then formatted into s->cmds.
 */
static wb_err_t cr_append_chunk(struct ctx_redis *cr, struct cr_slot *s, const struct ctx_put_item *items,
				struct cr_span sp, const char *now, bool eval)
{
	const char *argv[3 + 6 * CR_PUT_CHUNK_KEYS];
	size_t argl[3 + 6 * CR_PUT_CHUNK_KEYS];
	size_t k = sp.hi - sp.lo, need = 32, used = 0;
	char *p;

	if (k == 0 || k > CR_PUT_CHUNK_KEYS)
		return WB_ERR_INVALID;
	for (size_t j = sp.lo; j < sp.hi; j++)
		need += CR_PUT_ARG_BYTES + items[s->sent[j]].len;
	if (!cr_args_room(s, need))
		return WB_ERR_NOMEM;
	argv[0] = eval ? "EVAL" : "EVALSHA";
	argl[0] = strlen(argv[0]);
	argv[1] = eval ? cr_script : cr->sha;
	argl[1] = eval ? sizeof cr_script - 1 : 40;
	argv[2] = s->args;
	argl[2] = (size_t)snprintf(s->args, need, "%zu", k);
	used = argl[2] + 1;
	for (size_t j = 0; j < k; j++) {
		const struct ctx_put_item *it = &items[s->sent[sp.lo + j]];
		uint64_t e = it->expected_version;
		bool any = e == CTX_VERSION_ANY;
		/* the prefix test only where the script's rule takes the fast path */
		bool fast = !any && e >= 1 && e <= CR_MAX_VERSION;
		size_t ka = 3 + j, aa = 3 + k + 5 * j;
		const char *members;
		size_t mlen;

		if (!cr_members(it->json, it->len, &members, &mlen))
			return WB_ERR_INVALID;
		/* each text is NUL-terminated by snprintf: used counts it */
		p = s->args + used;
		argv[ka] = p;
		argl[ka] = cr_key(p, it->key);
		used += argl[ka] + 1;
		p = s->args + used; /* ARGV[j+1]: E */
		argv[aa] = p;
		argl[aa] = any ? 0 : (size_t)snprintf(p, need - used, "%" PRIu64, e);
		used += argl[aa] + 1;
		p = s->args + used; /* ARGV[j+2]: {"version":E, */
		argv[aa + 1] = p;
		argl[aa + 1] = fast ? (size_t)snprintf(p, need - used, "{\"version\":%" PRIu64 ",", e) : 0;
		used += argl[aa + 1] + 1;
		p = s->args + used; /* ARGV[j+3]: E+1 (no overflow: E < CTX_VERSION_ANY) */
		argv[aa + 2] = p;
		argl[aa + 2] = any ? 0 : (size_t)snprintf(p, need - used, "%" PRIu64, e + 1);
		used += argl[aa + 2] + 1;
		p = s->args + used; /* ARGV[j+4]: TTL */
		argv[aa + 3] = p;
		argl[aa + 3] = (size_t)snprintf(p, need - used, "%" PRIu32, it->ttl_ms);
		used += argl[aa + 3] + 1;
		p = s->args + used; /* ARGV[j+5]: the value; version 0 stands for "any" */
		argv[aa + 4] = p;
		argl[aa + 4] = cr_format_value(p, any ? 0 : e + 1, now, members, mlen);
		used += argl[aa + 4];
	}
	return redis_cmdbuf_append(&s->cmds, (int)(3 + 6 * k), argv, argl);
}

/*
 * Splits the valid items of a batch into script calls: fills s->sent with
 * their indices (in order) and s->spans with the calls, each at most
 * CR_PUT_CHUNK_KEYS keys and, unless one item alone is larger, at most
 * CR_PUT_CHUNK_BYTES of the callers' members. Items that are not object
 * texts get WB_ERR_INVALID and are not sent. Returns the number of spans.
 */
static size_t cr_plan_puts(struct cr_slot *s, struct ctx_put_item *items, size_t n)
{
	size_t n_sent = 0, n_spans = 0, bytes = 0;

	for (size_t i = 0; i < n; i++) {
		const char *members;
		size_t mlen;

		if (!cr_members(items[i].json, items[i].len, &members, &mlen)) {
			items[i].err = WB_ERR_INVALID;
			continue;
		}
		if (n_spans == 0 || s->spans[n_spans - 1].hi - s->spans[n_spans - 1].lo >= CR_PUT_CHUNK_KEYS ||
		    bytes + mlen > CR_PUT_CHUNK_BYTES) {
			s->spans[n_spans++] = (struct cr_span){n_sent, n_sent};
			bytes = 0;
		}
		bytes += mlen;
		s->sent[n_sent++] = i;
		s->spans[n_spans - 1].hi = n_sent;
	}
	return n_spans;
}

/* Reads a version element of the script's reply (a string, or an integer
 * from an older script shape). */
static bool cr_reply_version(const redisReply *r, uint64_t *out)
{
	char buf[24];
	char *end;
	unsigned long long v;

	if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
		*out = (uint64_t)r->integer;
		return true;
	}
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof buf)
		return false;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || *end || v > CR_MAX_VERSION)
		return false;
	*out = v;
	return true;
}

/* Fills it from its element of the script's reply: the new version (a
 * string) when written, {0, current_version} on conflict, or an error. */
static void cr_put_result(const redisReply *r, struct ctx_put_item *it)
{
	uint64_t v;

	if (r->type == REDIS_REPLY_ERROR) {
		cr_log_server_error("put", it->key, r);
		it->err = cr_map_server_error(r);
	} else if (r->type == REDIS_REPLY_STRING && cr_reply_version(r, &v)) {
		it->new_version = v;
		it->err = WB_OK;
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		   r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 0 &&
		   cr_reply_version(r->element[1], &v)) {
		it->err = WB_ERR_CONFLICT;
	} else {
		it->err = WB_ERR_PROTOCOL;
	}
}

/* Fills the items of span sp from the reply of its script call. Returns
 * true when the call must be re-run with EVAL (NOSCRIPT), items untouched. */
static bool cr_chunk_result(const redisReply *r, struct ctx_put_item *items, const size_t *sent,
			    struct cr_span sp)
{
	size_t k = sp.hi - sp.lo;

	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
		return true;
	for (size_t j = 0; j < k; j++) {
		struct ctx_put_item *it = &items[sent[sp.lo + j]];

		if (r->type == REDIS_REPLY_ERROR) {
			/* the whole call refused (BUSY, NOPERM, ...): every key */
			cr_log_server_error("put", it->key, r);
			it->err = cr_map_server_error(r);
		} else if (r->type != REDIS_REPLY_ARRAY || r->elements != k) {
			it->err = WB_ERR_PROTOCOL;
		} else {
			cr_put_result(r->element[j], it);
		}
	}
	return false;
}

/*
 * The compare-and-set write of items[0..n) through the script, on the held
 * slot s (connected). Fills every item's err; returns a transport or
 * memory error that failed the whole batch (items already marked), else
 * WB_OK.
 */
static wb_err_t cr_put_script(struct ctx_redis *cr, struct cr_slot *s, struct ctx_put_item *items, size_t n,
			      const char *now)
{
	size_t i, k, n_spans = 0, n_retry = 0;
	wb_err_t err;

	err = cr_reserve(s, n);
	if (err == WB_OK)
		err = cr_cmds_reset(s);
	/* Items that are not object texts never reach Redis (ctx_store.c checks
	 * them, this is belt and braces); sent[] and spans[] map replies to
	 * items: one script call (one reply) per span. */
	if (err == WB_OK)
		n_spans = cr_plan_puts(s, items, n);
	for (k = 0; k < n_spans && err == WB_OK; k++)
		err = cr_append_chunk(cr, s, items, s->spans[k], now, false);
	if (err == WB_OK && n_spans > 0)
		err = cr_round_trip(cr, s, n_spans);
	if (err != WB_OK)
		goto out_all;
	for (k = 0; k < n_spans; k++) {
		if (cr_chunk_result(s->replies[k], items, s->sent, s->spans[k]))
			s->spans[n_retry++] = s->spans[k]; /* n_retry <= k: in place */
		freeReplyObject(s->replies[k]);
		s->replies[k] = NULL;
	}
	if (n_retry > 0) {
		/* The script cache was flushed (SCRIPT FLUSH, restart, failover):
		 * EVAL loads it again. Same order, second round trip. */
		err = cr_cmds_reset(s);
		for (k = 0; k < n_retry && err == WB_OK; k++)
			err = cr_append_chunk(cr, s, items, s->spans[k], now, true);
		if (err == WB_OK)
			err = cr_round_trip(cr, s, n_retry);
		for (k = 0; k < n_retry; k++) {
			struct cr_span sp = s->spans[k];

			if (err != WB_OK) {
				for (i = sp.lo; i < sp.hi; i++)
					items[s->sent[i]].err = err;
				continue;
			}
			if (cr_chunk_result(s->replies[k], items, s->sent, sp)) /* NOSCRIPT after EVAL */
				for (i = sp.lo; i < sp.hi; i++)
					items[s->sent[i]].err = WB_ERR_PROTOCOL;
			freeReplyObject(s->replies[k]);
			s->replies[k] = NULL;
		}
	}
	return WB_OK;

out_all:
	for (i = 0; i < n; i++)
		if (items[i].err != WB_ERR_INVALID)
			items[i].err = err;
	return err;
}

/*
 * Whether items[0..n) can be written with plain SETs under the held read's
 * WATCH: each key was read there without error, with the version it now
 * expects, and is an object text; no "any" writes. Items usually come in the
 * order of the read (a subsequence), so the search starts after the last
 * match.
 */
static bool cr_all_watched(const struct cr_slot *s, const struct ctx_put_item *items, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		const struct ctx_put_item *it = &items[i];
		size_t len = strlen(it->key), j, tries;
		const char *members;
		size_t mlen;

		if (it->expected_version == CTX_VERSION_ANY || !cr_members(it->json, it->len, &members, &mlen))
			return false;
		for (j = c, tries = 0; tries < s->n_watch; tries++, j = j + 1 < s->n_watch ? j + 1 : 0) {
			const struct cr_watch *w = &s->watch[j];

			if (w->len == len && memcmp(s->wkeys + w->off, it->key, len) == 0)
				break;
		}
		if (tries == s->n_watch || !s->watch[j].ok || s->watch[j].version != it->expected_version)
			return false;
		c = j + 1 < s->n_watch ? j + 1 : 0;
	}
	return true;
}

/*
 * The write of a held read whose keys all qualify (cr_all_watched): MULTI,
 * one SET ... PX per item, EXEC, in one round trip. The server runs the
 * SETs only if no watched key changed since the read, so each item's
 * version is still the one expected: the same guarantee as the script's
 * compare-and-set at a third of its cost. Returns WB_OK with every item
 * filled, or WB_ERR_CONFLICT when EXEC refused (a key changed, or a SET was
 * refused when queued): nothing was written and the caller runs the script,
 * which reports each item. Any other error failed the whole batch (items
 * already marked).
 */
static wb_err_t cr_put_exec(struct ctx_redis *cr, struct cr_slot *s, struct ctx_put_item *items, size_t n,
			    const char *now)
{
	static const char *const multi[1] = {"MULTI"}, *const exec[1] = {"EXEC"};
	static const size_t multi_l[1] = {5}, exec_l[1] = {4};
	size_t i, need = 0, used = 0;
	redisReply *x;
	wb_err_t err;

	for (i = 0; i < n; i++)
		need += CR_PUT_ARG_BYTES + items[i].len;
	err = cr_reserve(s, n + 2);
	if (err == WB_OK && !cr_args_room(s, need))
		err = WB_ERR_NOMEM;
	redis_cmdbuf_reset(&s->cmds); /* the watch must stay: no UNWATCH here */
	s->pre = 0;
	if (err == WB_OK)
		err = redis_cmdbuf_append(&s->cmds, 1, (const char **)multi, multi_l);
	for (i = 0; i < n && err == WB_OK; i++) {
		const struct ctx_put_item *it = &items[i];
		char *key = s->args + used, *ttl, *val;
		const char *members, *argv[5];
		size_t mlen, argl[5];

		(void)cr_members(it->json, it->len, &members, &mlen); /* checked by cr_all_watched */
		argl[1] = cr_key(key, it->key);
		ttl = key + argl[1] + 1;
		argl[4] = redis_u64_text(ttl, it->ttl_ms);
		val = ttl + argl[4] + 1;
		argl[2] = cr_format_value(val, it->expected_version + 1, now, members, mlen);
		used += argl[1] + argl[4] + argl[2] + 2;
		argv[0] = "SET";
		argl[0] = 3;
		argv[1] = key;
		argv[2] = val;
		argv[3] = "PX";
		argl[3] = 2;
		argv[4] = ttl;
		err = redis_cmdbuf_append(&s->cmds, 5, argv, argl);
	}
	if (err == WB_OK)
		err = redis_cmdbuf_append(&s->cmds, 1, (const char **)exec, exec_l);
	if (err == WB_OK)
		err = cr_round_trip(cr, s, n + 2);
	if (err != WB_OK) {
		for (i = 0; i < n; i++)
			items[i].err = err;
		return err;
	}
	s->watching = false; /* EXEC ends the watch, whatever it answered */
	x = s->replies[n + 1];
	if (x->type == REDIS_REPLY_ARRAY && x->elements == n) {
		for (i = 0; i < n; i++) {
			const redisReply *r = x->element[i];

			if (r->type == REDIS_REPLY_STATUS) {
				items[i].new_version = items[i].expected_version + 1;
				items[i].err = WB_OK;
			} else if (r->type == REDIS_REPLY_ERROR) {
				cr_log_server_error("put", items[i].key, r);
				items[i].err = cr_map_server_error(r);
			} else {
				items[i].err = WB_ERR_PROTOCOL;
			}
		}
	} else {
		/* NIL: a watched key changed; EXECABORT: a SET refused when
		 * queued (OOM, ACL); anything else: let the script decide */
		err = WB_ERR_CONFLICT;
	}
	for (i = 0; i < n + 2; i++) {
		freeReplyObject(s->replies[i]);
		s->replies[i] = NULL;
	}
	return err;
}

/* Writes items on the slot of a held read (NULL: one from the pool), and
 * gives the slot back. */
static wb_err_t cr_put_on(struct ctx_redis *cr, struct cr_slot *s, struct ctx_put_item *items, size_t n)
{
	bool held = s != NULL;
	char now[24];
	wb_err_t err = WB_OK;
	size_t i;

	snprintf(now, sizeof now, "%" PRId64, ctx_now_wall_ms());
	for (i = 0; i < n; i++)
		items[i].err = WB_OK;
	if (!s && !(s = cr_begin(cr, &err))) {
		for (i = 0; i < n; i++)
			if (items[i].err != WB_ERR_INVALID)
				items[i].err = err;
		return cr_first_err(NULL, items, n);
	}
	/* EXEC answers for the whole batch: done, or failed, or refused (then
	 * the script tells each item's result) */
	if (held && s->watching && cr_all_watched(s, items, n) &&
	    cr_put_exec(cr, s, items, n, now) != WB_ERR_CONFLICT)
		goto out;
	(void)cr_put_script(cr, s, items, n, now);
out:
	cr_release(cr, s);
	return cr_first_err(NULL, items, n);
}

static wb_err_t cr_put_many(void *be, struct ctx_put_item *items, size_t n)
{
	return cr_put_on(be, NULL, items, n);
}

static wb_err_t cr_put_many_held(void *be, void *hold, struct ctx_put_item *items, size_t n)
{
	if (hold && n == 0) {
		cr_release(be, hold); /* still watching: its next user sends UNWATCH */
		return WB_OK;
	}
	return cr_put_on(be, hold, items, n);
}

/* One command in a round trip of its own: *reply (free with
 * freeReplyObject) on WB_OK, else the transport error. */
static wb_err_t cr_command(struct ctx_redis *cr, int argc, const char **argv, const size_t *argl, redisReply **reply)
{
	struct cr_slot *s;
	wb_err_t err;

	s = cr_begin(cr, &err);
	if (!s)
		return err;
	err = cr_reserve(s, 1);
	if (err == WB_OK)
		err = cr_cmds_reset(s);
	if (err == WB_OK)
		err = redis_cmdbuf_append(&s->cmds, argc, argv, argl);
	if (err == WB_OK)
		err = cr_round_trip(cr, s, 1);
	if (err == WB_OK) {
		*reply = s->replies[0];
		s->replies[0] = NULL;
	}
	cr_release(cr, s);
	return err;
}

static wb_err_t cr_del(void *be, const char *key)
{
	struct ctx_redis *cr = be;
	char k[CR_MAX_KEY_BYTES + 1];
	const char *argv[2] = {"DEL", k};
	size_t argl[2] = {3, cr_key(k, key)};
	redisReply *r;
	wb_err_t err = cr_command(cr, 2, argv, argl, &r);

	if (err != WB_OK)
		return err;
	if (r->type == REDIS_REPLY_INTEGER)
		err = r->integer > 0 ? WB_OK : WB_ERR_NOT_FOUND;
	else if (r->type == REDIS_REPLY_ERROR) {
		cr_log_server_error("del", key, r);
		err = cr_map_server_error(r);
	} else
		err = WB_ERR_PROTOCOL;
	freeReplyObject(r);
	return err;
}

/* INFO memory: its used_memory line. */
static wb_err_t cr_server_memory(void *be, uint64_t *bytes)
{
	const char *argv[2] = {"INFO", "memory"}, *line;
	size_t argl[2] = {4, 6};
	redisReply *r;
	char *end;
	wb_err_t err = cr_command(be, 2, argv, argl, &r);

	if (err != WB_OK)
		return err;
	err = WB_ERR_PROTOCOL;
	if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str &&
	    (line = strstr(r->str, "\nused_memory:")) != NULL) {
		unsigned long long v = strtoull(line + 13, &end, 10);

		if (end != line + 13) {
			*bytes = v;
			err = WB_OK;
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		err = cr_map_server_error(r);
	}
	freeReplyObject(r);
	return err;
}

static void cr_stats(void *be, struct ctx_store_stats *out)
{
	struct ctx_redis *cr = be;

	out->round_trips += atomic_load_explicit(&cr->round_trips, memory_order_relaxed);
	out->reconnects += atomic_load_explicit(&cr->reconnects, memory_order_relaxed);
	out->corrupt += atomic_load_explicit(&cr->corrupt, memory_order_relaxed);
}

/* ---- life cycle ------------------------------------------------------------- */

static void cr_destroy(void *be)
{
	struct ctx_redis *cr = be;

	if (!cr)
		return;
	for (size_t i = 0; cr->slots && i < cr->pool_size; i++) {
		struct cr_slot *s = &cr->slots[i];

		redis_conn_destroy(s->conn);
		redis_cmdbuf_fini(&s->cmds);
		free(s->replies);
		free(s->sent);
		free(s->spans);
		free(s->args);
		free(s->watch);
		free(s->wkeys);
		if (s->tok)
			json_tokener_free(s->tok);
		json_doc_fini(&s->doc);
	}
	free(cr->slots);
	free(cr->free_slots);
	redis_conn_tls_free(cr->tls_ctx);
	pthread_cond_destroy(&cr->cv);
	pthread_mutex_destroy(&cr->mu);
	if (cr->password)
		explicit_bzero(cr->password, strlen(cr->password));
	free(cr->password);
	free(cr->host);
	free(cr->user);
	free(cr->server_name);
	free(cr);
}

static bool cr_sha1_hex(const char *s, size_t len, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(s, len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
		return false;
	for (unsigned i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return true;
}

/* strdup that keeps NULL and reports failure through *ok. */
static char *cr_dup(const char *s, bool *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static bool cr_init_sync(struct ctx_redis *cr)
{
	pthread_condattr_t ca;

	if (pthread_mutex_init(&cr->mu, NULL) != 0)
		return false;
	if (pthread_condattr_init(&ca) != 0)
		goto out_mu;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 || pthread_cond_init(&cr->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_mu;
	}
	pthread_condattr_destroy(&ca);
	return true;

out_mu:
	pthread_mutex_destroy(&cr->mu);
	return false;
}

void *ctx_redis_new(const struct ctx_store_config *cfg, wb_err_t *err_out, char *errstr, size_t errstr_size)
{
	const struct ctx_redis_opts *o = &cfg->redis;
	struct ctx_redis *cr;
	char why[256] = "";
	bool ok = true;
	size_t connected = 0;
	wb_err_t err;

	if (!o->host || !o->host[0] || o->port < 1 || o->port > 65535 || o->db < 0 ||
	    o->pool_size < 0 || o->pool_size > CR_MAX_POOL || o->connect_timeout_ms < 0 ||
	    o->command_timeout_ms < 0) {
		if (errstr && errstr_size)
			snprintf(errstr, errstr_size,
				 "redis: invalid options (host, port 1..65535, db >= 0, pool_size 0..%d, "
				 "timeouts >= 0)",
				 CR_MAX_POOL);
		*err_out = WB_ERR_CONFIG;
		return NULL;
	}
	cr = calloc(1, sizeof(*cr));
	if (!cr)
		goto out_nomem_early;
	if (!cr_init_sync(cr)) {
		free(cr);
		goto out_nomem_early;
	}
	cr->host = cr_dup(o->host, &ok);
	cr->user = o->user && o->user[0] ? cr_dup(o->user, &ok) : NULL;
	cr->password = o->password && o->password[0] ? cr_dup(o->password, &ok) : NULL;
	cr->server_name = o->tls_server_name && o->tls_server_name[0] ? cr_dup(o->tls_server_name, &ok) : NULL;
	cr->pool_size = o->pool_size ? (size_t)o->pool_size : CR_DEFAULT_POOL;
	cr->slots = calloc(cr->pool_size, sizeof(*cr->slots));
	cr->free_slots = calloc(cr->pool_size, sizeof(*cr->free_slots));
	if (!ok || !cr->slots || !cr->free_slots)
		goto out_nomem;
	cr->opts = (struct redis_conn_opts){
		.host = cr->host,
		.port = o->port,
		.user = cr->user,
		.password = cr->password,
		.db = o->db,
		.tls = o->tls,
		.tls_verify = o->tls_verify,
		.tls_server_name = cr->server_name,
		.connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : CR_DEFAULT_CONNECT_MS,
		.command_timeout_ms = o->command_timeout_ms ? o->command_timeout_ms : CR_DEFAULT_COMMAND_MS,
		.max_reply_bytes = 0,
	};
	cr->acquire_timeout_ms = cr->opts.connect_timeout_ms + 2 * cr->opts.command_timeout_ms;
	cr->healthy = true;
	cr->backoff_ms = CR_BACKOFF_MIN_MS;
	cr->rng = (uint64_t)cr_mono_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() ^ (uintptr_t)cr;
	if (cr->rng == 0)
		cr->rng = 1;
	snprintf(cr->max_stored, sizeof cr->max_stored, "%u", (unsigned)CR_MAX_STORED);
	if (!cr_sha1_hex(cr_script, sizeof cr_script - 1, cr->sha)) {
		snprintf(why, sizeof why, "redis: SHA1 not available from OpenSSL");
		err = WB_ERR_SYSTEM;
		goto out_fail;
	}
	for (size_t i = 0; i < cr->pool_size; i++) {
		struct cr_slot *s = &cr->slots[i];

		redis_cmdbuf_init(&s->cmds);
		json_doc_init(&s->doc);
		s->tok = json_tokener_new_ex(CR_JSON_DEPTH);
		if (!s->tok)
			goto out_nomem;
		json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		cr->free_slots[cr->n_free++] = s;
	}
	if (o->tls) {
		cr->tls_ctx = redis_conn_tls_new(o->tls_verify, o->tls_ca_file, why, sizeof why);
		err = WB_ERR_TLS;
		if (!cr->tls_ctx)
			goto out_fail;
		if (!o->tls_verify)
			log_at(LOG_WARN, "redis TLS certificate verification is disabled",
			       LOG_STR("host", cr->host), LOG_INT("port", o->port));
	}
	/* Connect the whole pool now so bad credentials or certificates fail at
	 * start. The first failure is fatal; later ones (e.g. maxclients) leave
	 * the slot to connect lazily. */
	for (size_t i = 0; i < cr->pool_size; i++) {
		char later[256];

		err = cr_slot_connect(cr, &cr->slots[i], i == 0 ? why : later, i == 0 ? sizeof why : sizeof later);
		if (err != WB_OK && i == 0)
			goto out_fail;
		if (err != WB_OK) {
			log_at(LOG_WARN, "redis pool connection failed at start; will retry",
			       LOG_ERR("error", err), LOG_STR("reason", later));
			continue;
		}
		connected++;
	}
	log_at(LOG_INFO, "redis context store ready", LOG_STR("host", cr->host),
	       LOG_INT("port", o->port), LOG_BOOL("tls", o->tls), LOG_UINT("connections", connected));
	return cr;

out_nomem:
	snprintf(why, sizeof why, "redis: out of memory");
	err = WB_ERR_NOMEM;
out_fail:
	if (errstr && errstr_size)
		snprintf(errstr, errstr_size, "%s", why);
	*err_out = err;
	cr_destroy(cr);
	return NULL;

out_nomem_early:
	if (errstr && errstr_size)
		snprintf(errstr, errstr_size, "redis: out of memory");
	*err_out = WB_ERR_NOMEM;
	return NULL;
}

const struct ctx_backend_ops ctx_redis_ops = {
	.name = "redis",
	.timed = true,
	.get_many = cr_get_many,
	.put_many = cr_put_many,
	.get_many_held = cr_get_many_held,
	.put_many_held = cr_put_many_held,
	.del = cr_del,
	.stats = cr_stats,
	.server_memory = cr_server_memory,
	.destroy = cr_destroy,
};
