/*
 * ctx_memory.c - the in-process context store backend: a sharded hash table
 * with per-entry TTL, compare-and-set versions and bounded size.
 *
 * Owns: every entry (one allocation: header, key, value), one mutex per
 * shard, and the sweep thread that removes expired entries in the background.
 * Does not: persist anything, share data between processes, or parse the
 * values (they are the caller's JSON text, stored byte for byte).
 *
 * WHY THIS EXISTS
 *
 * It replaces Django's LocMemCache, which silently drops a third of its
 * entries once it holds 300 (its "cull"). Here no live conversation is ever
 * dropped without a counter (evicted_lru) and a warn line with the masked
 * phone; expired entries go first, and a store without bounds never evicts.
 *
 * LAYOUT
 *
 *   struct ctx_mem
 *     shards[nshards]   struct ctx_mem_shard each, on its own cache lines
 *     sweep thread      wakes every sweep_interval_ms
 *
 *   struct ctx_mem_shard (all fields under shard->mu)
 *     buckets[] --> entry --hnext--> entry --> NULL     chained hash table
 *     heap[]    {key_ms, entry*}  min-heap on expiry     entry->heap_idx
 *     lru_head <-> entry <-> ... <-> lru_tail            recency order
 *
 *   struct ctx_mem_entry, one malloc:
 *     | hnext hash lens heap_idx | lru links expiry version updated_at | key NUL | value ... cap |
 *     An overwrite that fits is written in place; a larger one (or one four
 *     times smaller) moves the entry to a new allocation and repoints its
 *     chain link, LRU neighbours and heap slot (ctx_mem_replace()).
 *     History: the value was first a second allocation; inlining it removed
 *     one dependent cache miss per get on a large store.
 *
 * A key's 64-bit hash picks the shard from its HIGH bits and the bucket from
 * its LOW bits, so the two choices are independent. A shard's table doubles
 * when it holds more entries than buckets (load > 1), rehashing under the
 * shard lock (about 100 ns per entry moved: ~1.6 ms once for a 16k-entry
 * shard; tables never shrink). With max_entries set, tables start at the
 * size the bound needs (up to CTX_MEM_MAX_PRESIZE buckets).
 *
 * The hash is our own, not phone_hash()'s FNV-1a: FNV-1a takes one multiply
 * per byte and, because a multiply only carries upward, its low bits (our
 * bucket index) depend only on the low bits of each byte; phone keys differ
 * only in the low nibble of '0'..'9'. ctx_mem_hash() reads 8 bytes per step
 * and ends with murmur3's fmix64 so every output bit depends on every input
 * bit. It is seeded per store from getrandom(2) so chain lengths cannot be
 * steered by chosen keys.
 *
 * EXPIRY: HEAP AND LRU
 *
 * Reads never refresh a TTL; writes do. Expiry is found three ways:
 *   1. lazily: a get/put/del that meets an expired entry removes it;
 *   2. by the sweep thread, which pops expired entries off each shard's heap;
 *   3. by a write that needs room, which takes expired entries before any
 *      live one (evicted_expired), then the LRU tail (evicted_lru).
 * The heap makes (2) and (3) cost O(k log n) for k expired entries instead of
 * a scan. It is LAZY on refresh: a slot's key_ms may be older (smaller) than
 * its entry's real expires_at_ms, never newer. A write that pushes the expiry
 * later (the usual case) only stores the new time in the entry: no heap work,
 * not even a read of the slot, which was a cache miss per put on a 1M-entry
 * store (12% of the time of a get+put pair). When a stale slot reaches the
 * top and its entry turns out to be alive, the slot is re-keyed and sifted
 * down, at most once per refresh, mostly in the sweep thread. A write that
 * makes the expiry EARLIER (a shorter ttl_ms) sifts the slot up at once. So
 * key_ms <= expires_at_ms always, and top key > now means nothing expired.
 * Recency is a separate doubly linked list because the two orders differ: a
 * read makes an entry recent but does not extend its life. A get defers its
 * move to the front to the next list operation on the shard (see "LRU list"
 * below): exact LRU order for every eviction, one cache miss fewer per get.
 *
 * BOUNDS AND ACCOUNTING
 *
 * max_entries and max_bytes are enforced PER SHARD as max / nshards. The
 * trade-off: a shard may evict while another shard still has room (keys
 * spread evenly, so the loss is small: with 64 shards of ~15k entries the
 * fullest shard is ~2% above average), but a write never takes a second lock
 * and the total can never exceed the global bound. ctx_memory_new() refuses
 * bounds smaller than one entry or CTX_MEM_MIN_SHARD_BYTES per shard.
 *
 * Bytes charged per entry (ctx_mem_charge(); stats.bytes is their sum):
 *     sizeof(struct ctx_mem_entry) + key length + 1   (the allocation's
 *   + value capacity                                   header, key, value)
 *   + CTX_MEM_MALLOC_OVERHEAD                         (malloc's header)
 *   + sizeof(struct ctx_mem_heap_slot)                (its heap slot)
 *   + 2 * sizeof(pointer)                             (bucket slots: the table
 *                                                      doubles at load 1, so
 *                                                      1..2 per entry)
 * The per-shard bucket and heap arrays are charged through these amortised
 * terms, so stats.bytes is 0 when the store is empty. A value's capacity is
 * its length plus 1/8, rounded up to 16 (room to grow in place); a value
 * that outgrows its entry also gets room for one more step of the same
 * growth (ctx_mem_grow_room()). An entry whose charge exceeds a shard's
 * budget is refused (WB_ERR_TOO_BIG) before anything is evicted. 1M entries
 * of 150-300 byte contexts: ~380 MiB.
 *
 * SPEED
 *
 * tests/bench/bench_ctx_memory.c: get, then put with CAS on the version read.
 * Measured on the 2-vCPU dev VM (Nov 2026), calling this backend directly:
 * 267 ns per pair on a cache-resident set (of which ~105 ns are the three
 * clock reads: ctx_now_mono_ms() for get and put, ctx_now_wall_ms() for put),
 * 890 ns per pair on 1M phones picked uniformly at random. There, 400 MB are
 * touched at random: every step misses the caches and the TLB, and this VM
 * takes 150-420 ns per dependent load (pointer chase, varies with the load of
 * the host). A get needs at least two in a row (bucket slot, then entry);
 * everything else is overlapped: the rest of the entry and its LRU neighbours
 * (ctx_mem_prefetch_rest(), ctx_mem_lru_defer()), and in batches the next
 * items' bucket slots (ctx_mem_ahead()).
 *
 * LOCKS
 *
 * One mutex per shard guards everything in the shard, counters included; no
 * global lock on the hot path, and no two shard locks are ever held together.
 * sweep_mu guards only the sweeper's sleep (with sweep_cv). Nothing slow runs
 * under a shard lock: unlinked entries are collected and freed after unlock,
 * and the eviction log line is written after unlock, rate limited to one per
 * CTX_MEM_LOG_INTERVAL_MS per store with a "suppressed" count.
 * A batch keeps a shard's lock while consecutive items hit the same shard and
 * applies items strictly in order (two puts to one key apply in order).
 */
#include "ctx_store_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* Defaults and limits of struct ctx_memory_opts. */
#define CTX_MEM_DEFAULT_SHARDS 64
#define CTX_MEM_MAX_SHARDS 65536
#define CTX_MEM_DEFAULT_SWEEP_MS 1000
/* Smallest byte budget per shard accepted (max_bytes / shards). */
#define CTX_MEM_MIN_SHARD_BYTES 1024

/* Bucket array of a new shard, and the most a bound makes us pre-size. */
#define CTX_MEM_MIN_BUCKETS 16
#define CTX_MEM_MAX_PRESIZE (1u << 16)
/* First heap allocation of a shard (slots). */
#define CTX_MEM_MIN_HEAP 16

/* Charged per allocation for malloc's own header (glibc: 8, rounded to 16). */
#define CTX_MEM_MALLOC_OVERHEAD 16

/* Expired entries the sweeper removes per lock hold, so a shard with many
 * expired entries does not stall its readers. */
#define CTX_MEM_SWEEP_BATCH 256

/* Prefetching (see ctx_mem_prefetch_rest()): lines of an entry asked for
 * before its first line arrives, most bytes of an entry asked for at all, and
 * how many items ahead a batch asks for bucket slots. */
#define CTX_MEM_BLIND_LINES 4
#define CTX_MEM_PREFETCH_MAX 1024
#define CTX_MEM_AHEAD 8

/* At most one eviction log line per this many ms per store. */
#define CTX_MEM_LOG_INTERVAL_MS 1000

#define CTX_MEM_CACHE_LINE 64

struct ctx_mem_entry {
	/* What a chain walk reads first, in the first cache line. */
	struct ctx_mem_entry *hnext;    /* bucket chain */
	uint64_t hash;                  /* ctx_mem_hash() of the key */
	uint32_t value_len;             /* bytes of JSON (no NUL kept) */
	uint32_t value_cap;             /* bytes for the value after the key */
	uint32_t heap_idx;              /* index of this entry's slot in shard->heap */
	uint8_t key_len;                /* 1..CTX_STORE_MAX_KEY */
	struct ctx_mem_entry *lru_prev; /* towards lru_head (more recent) */
	struct ctx_mem_entry *lru_next; /* towards lru_tail (less recent) */
	int64_t expires_at_ms;          /* monotonic; expired when <= now */
	uint64_t version;               /* 1 after the first write, +1 per write */
	int64_t updated_at_ms;          /* wall clock of the last write */
	char data[];                    /* key, NUL, then value_cap bytes of value */
};
/* All fields above are guarded by the lock of the shard holding the entry. */

/* One heap slot. key_ms <= e->expires_at_ms (see "EXPIRY" above). Keeping the
 * key in the slot lets comparisons run without touching the entries. */
struct ctx_mem_heap_slot {
	int64_t key_ms;
	struct ctx_mem_entry *e;
};

struct ctx_mem_shard {
	alignas(CTX_MEM_CACHE_LINE) pthread_mutex_t mu; /* own cache line(s): no false sharing */
	/* --- everything below: lock mu --- */
	struct ctx_mem_entry **buckets; /* nbuckets chains */
	size_t nbuckets;                /* power of two */
	struct ctx_mem_heap_slot *heap; /* min-heap on key_ms, heap_len used */
	size_t heap_len;
	size_t heap_cap;
	struct ctx_mem_entry *lru_head; /* most recently used */
	struct ctx_mem_entry *lru_tail; /* least recently used: evicted first */
	struct ctx_mem_entry *lru_pending; /* read, to move to the front next
	                                      (ctx_mem_lru_defer()); or NULL */
	uint64_t entries;               /* entries linked (live or not yet found expired) */
	uint64_t bytes;                 /* sum of ctx_mem_charge() of the entries */
	uint64_t expired;               /* removed because their TTL passed */
	uint64_t evicted_expired;       /* ... of those, removed to make room */
	uint64_t evicted_lru;           /* live entries evicted to make room */

	/* Copies of buckets and nbuckets - 1 for batches to prefetch bucket
	 * slots of shards they have not locked yet (ctx_mem_ahead()). Written
	 * under mu, read without it: relaxed atomics. After a grow a reader may
	 * pair an old array with a new mask: that only wastes a prefetch. */
	_Atomic(struct ctx_mem_entry **) hint_buckets;
	atomic_size_t hint_mask;
};

struct ctx_mem {
	/* Immutable after ctx_memory_new(). */
	struct ctx_mem_shard *shards;
	unsigned nshards;          /* power of two */
	unsigned shard_bits;       /* log2(nshards) */
	uint64_t seed;             /* hash seed */
	uint64_t shard_max_entries;/* max_entries / nshards; 0: unbounded */
	uint64_t shard_max_bytes;  /* max_bytes / nshards; 0: unbounded */
	unsigned sweep_interval_ms;

	/* Sweep thread: stop is written under sweep_mu and signalled on sweep_cv;
	 * it is atomic so the sweeper can also poll it between shards. */
	pthread_t sweeper;
	pthread_mutex_t sweep_mu;
	pthread_cond_t sweep_cv;
	atomic_bool stop;

	/* Eviction log rate limit, any thread (relaxed atomics). */
	atomic_int_fast64_t log_last_ms;   /* monotonic ms of the last line */
	atomic_uint_fast64_t log_suppressed;/* live evictions not logged since */
};

/*
 * What one call (a batch, a delete, one sweep round) carries between the
 * items it processes: the clocks, the entries it unlinked (freed after the
 * lock is released), and the first live eviction to log afterwards.
 * Owned by the calling thread, on its stack.
 */
struct ctx_mem_op {
	int64_t now_mono_ms;
	int64_t now_wall_ms;
	struct ctx_mem_entry *garbage; /* unlinked entries, chained by hnext */
	uint64_t lru_evictions;        /* live entries evicted in this call */
	const struct ctx_mem_entry *first_evicted; /* in garbage; logged */
	const char *first_bound;       /* "max_entries" or "max_bytes" */
	unsigned first_shard;
};

/* ---- hashing ------------------------------------------------------------- */

static uint64_t ctx_mem_fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

static uint64_t ctx_mem_hash_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 29);
}

/* See the file comment ("The hash is our own"). Keys of 8+ bytes read their
 * last word overlapping the previous one instead of a byte loop. */
static uint64_t ctx_mem_hash(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = seed ^ (uint64_t)len;
	uint64_t w;
	size_t i;

	if (len >= 8) {
		for (i = 0; i + 8 < len; i += 8) {
			memcpy(&w, key + i, 8);
			h = ctx_mem_hash_step(h, w);
		}
		memcpy(&w, key + len - 8, 8);
		h = ctx_mem_hash_step(h, w);
	} else {
		w = 0;
		for (i = 0; i < len; i++)
			w |= (uint64_t)(unsigned char)key[i] << (8 * i);
		h = ctx_mem_hash_step(h, w);
	}
	return ctx_mem_fmix64(h);
}

/* The shard of a hash: its top shard_bits bits. Written as two shifts so that
 * shard_bits == 0 (one shard) needs no branch and never shifts by 64. */
static struct ctx_mem_shard *ctx_mem_shard_of(struct ctx_mem *m, uint64_t h)
{
	return &m->shards[(h >> 1) >> (63 - m->shard_bits)];
}

/* ---- accounting ---------------------------------------------------------- */

#define CTX_MEM_ENTRY_FIXED                                                              \
	(sizeof(struct ctx_mem_entry) + 1 + sizeof(struct ctx_mem_heap_slot) +           \
	 2 * sizeof(struct ctx_mem_entry *) + CTX_MEM_MALLOC_OVERHEAD)

/* Bytes charged for an entry with a key of key_len and room for a value of
 * cap bytes (formula in the file comment). */
static uint64_t ctx_mem_charge(size_t key_len, size_t cap)
{
	return CTX_MEM_ENTRY_FIXED + key_len + cap;
}

/* Capacity to allocate for a value of len bytes: len plus 1/8, to 16. */
static size_t ctx_mem_cap_for(size_t len)
{
	size_t cap = len + len / 8;

	cap = (cap + 15) & ~(size_t)15;
	return cap < 32 ? 32 : cap;
}

/*
 * Extra room for a value that grows from old_len to len bytes: one more step
 * of the same size, at most len / 2 (none when it shrinks). A context grows
 * by a few similar steps (a conversation's first events add its fields and
 * recent event ids) and then levels off; each move to a larger allocation is
 * a malloc, a copy, relinking and a free (~500 instructions, most of a put's
 * backend cost). With len + 1/8 alone, bench_pipeline's contexts (172, 296,
 * 464, 576, ... 760 bytes) moved 4 times in their first 8 writes; with this,
 * 2, ending at about the same capacity (784 bytes against 816).
 */
static size_t ctx_mem_grow_room(size_t old_len, size_t len)
{
	size_t step = len > old_len ? len - old_len : 0;

	return step < len / 2 ? step : len / 2;
}

static char *ctx_mem_value(struct ctx_mem_entry *e)
{
	return e->data + e->key_len + 1;
}

/* ---- heap (lock: shard->mu) ---------------------------------------------- */

static void ctx_mem_heap_place(struct ctx_mem_shard *sh, size_t i, struct ctx_mem_heap_slot s)
{
	sh->heap[i] = s;
	s.e->heap_idx = (uint32_t)i;
}

static void ctx_mem_heap_up(struct ctx_mem_shard *sh, size_t i)
{
	struct ctx_mem_heap_slot s = sh->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (sh->heap[parent].key_ms <= s.key_ms)
			break;
		ctx_mem_heap_place(sh, i, sh->heap[parent]);
		i = parent;
	}
	ctx_mem_heap_place(sh, i, s);
}

static void ctx_mem_heap_down(struct ctx_mem_shard *sh, size_t i)
{
	struct ctx_mem_heap_slot s = sh->heap[i];
	size_t n = sh->heap_len;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && sh->heap[c + 1].key_ms < sh->heap[c].key_ms)
			c++;
		if (s.key_ms <= sh->heap[c].key_ms)
			break;
		ctx_mem_heap_place(sh, i, sh->heap[c]);
		i = c;
	}
	ctx_mem_heap_place(sh, i, s);
}

/* Makes room for one more slot. WB_OK or WB_ERR_NOMEM (heap unchanged). */
static wb_err_t ctx_mem_heap_reserve(struct ctx_mem_shard *sh)
{
	struct ctx_mem_heap_slot *h;
	size_t cap;

	if (sh->heap_len < sh->heap_cap)
		return WB_OK;
	cap = sh->heap_cap ? sh->heap_cap * 2 : CTX_MEM_MIN_HEAP;
	if (cap > UINT32_MAX)
		return WB_ERR_NOMEM; /* heap_idx is 32 bits: 4G entries per shard */
	h = realloc(sh->heap, cap * sizeof(*h));
	if (!h)
		return WB_ERR_NOMEM;
	sh->heap = h;
	sh->heap_cap = cap;
	return WB_OK;
}

/* Adds e with key e->expires_at_ms; the caller reserved the slot. */
static void ctx_mem_heap_push(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	size_t i = sh->heap_len++;

	ctx_mem_heap_place(sh, i, (struct ctx_mem_heap_slot){e->expires_at_ms, e});
	ctx_mem_heap_up(sh, i);
}

static void ctx_mem_heap_remove(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	size_t i = e->heap_idx;
	size_t last = --sh->heap_len;

	if (i == last)
		return;
	ctx_mem_heap_place(sh, i, sh->heap[last]);
	if (i > 0 && sh->heap[i].key_ms < sh->heap[(i - 1) / 2].key_ms)
		ctx_mem_heap_up(sh, i);
	else
		ctx_mem_heap_down(sh, i);
}

/*
 * Sets e's expiry after a write, keeping key_ms <= expires_at_ms. A later
 * expiry (the usual case) touches only the entry: its slot's key becomes
 * stale, which the heap allows (see "EXPIRY"); even reading the slot would be
 * a cache miss per write on a large store. An earlier one sifts the slot up.
 */
static void ctx_mem_set_expiry(struct ctx_mem_shard *sh, struct ctx_mem_entry *e, int64_t at)
{
	bool earlier = at < e->expires_at_ms;

	e->expires_at_ms = at;
	if (earlier && at < sh->heap[e->heap_idx].key_ms) {
		sh->heap[e->heap_idx].key_ms = at;
		ctx_mem_heap_up(sh, e->heap_idx);
	}
}

/*
 * Returns an entry of the shard whose TTL has passed at now, or NULL when
 * there is none. Re-keys the stale slots it meets at the top on the way.
 */
static struct ctx_mem_entry *ctx_mem_heap_expired(struct ctx_mem_shard *sh, int64_t now)
{
	while (sh->heap_len > 0 && sh->heap[0].key_ms <= now) {
		struct ctx_mem_entry *e = sh->heap[0].e;

		if (e->expires_at_ms <= now)
			return e;
		sh->heap[0].key_ms = e->expires_at_ms;
		ctx_mem_heap_down(sh, 0);
	}
	return NULL;
}

/* ---- LRU list (lock: shard->mu) ------------------------------------------ */

/*
 * A get does not move its entry to the front at once: it leaves it in
 * shard->lru_pending, and the next list operation on the shard (any of the
 * functions below, make_room, the sweep) moves it first. Moving means writing
 * both neighbours, a cache miss each on a large store; the get asked for them
 * (ctx_mem_prefetch_rest()), and by the next operation, typically the put of
 * the same context, they have arrived. Because every reader of the order
 * settles first, eviction always sees the exact order of last use.
 */
static void ctx_mem_lru_remove_(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		sh->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		sh->lru_tail = e->lru_prev;
}

static void ctx_mem_lru_front_(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = sh->lru_head;
	if (sh->lru_head)
		sh->lru_head->lru_prev = e;
	else
		sh->lru_tail = e;
	sh->lru_head = e;
}

/* Applies the deferred move of a get, if any. */
static void ctx_mem_lru_settle(struct ctx_mem_shard *sh)
{
	struct ctx_mem_entry *e = sh->lru_pending;

	if (!e)
		return;
	sh->lru_pending = NULL;
	if (sh->lru_head != e) {
		ctx_mem_lru_remove_(sh, e);
		ctx_mem_lru_front_(sh, e);
	}
}

static void ctx_mem_lru_unlink(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	ctx_mem_lru_settle(sh);
	ctx_mem_lru_remove_(sh, e);
}

static void ctx_mem_lru_push_front(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	ctx_mem_lru_settle(sh);
	ctx_mem_lru_front_(sh, e);
}

/* Makes e the most recently used now (writes). */
static void ctx_mem_lru_touch(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	ctx_mem_lru_settle(sh);
	if (sh->lru_head != e) {
		ctx_mem_lru_remove_(sh, e);
		ctx_mem_lru_front_(sh, e);
	}
}

/* Makes e the most recently used at the next list operation (reads). */
static void ctx_mem_lru_defer(struct ctx_mem_shard *sh, struct ctx_mem_entry *e)
{
	if (sh->lru_pending != e)
		ctx_mem_lru_settle(sh);
	sh->lru_pending = e;
}

/* ---- table (lock: shard->mu) --------------------------------------------- */

/*
 * Prefetching. On a large store every step of a lookup is a cache (and TLB)
 * miss: bucket slot, entry, value, LRU neighbours. One after the other they
 * cost four memory latencies; ctx_mem_find() overlaps them:
 *   1. an entry's first CTX_MEM_BLIND_LINES lines are asked for as soon as
 *      its address is known (header, key and the first ~200 value bytes);
 *   2. once its hash matches, the rest of a long value and the two LRU
 *      neighbours that a get rewrites are asked for too.
 * Batches also ask for the bucket slots of the next items (ctx_mem_ahead()).
 */
static void ctx_mem_prefetch_lines(const void *p, size_t from, size_t to)
{
	const char *c = p;

	for (; from < to; from += CTX_MEM_CACHE_LINE)
		__builtin_prefetch(c + from, 0);
}

static void ctx_mem_prefetch_rest(const struct ctx_mem_entry *e)
{
	size_t size = offsetof(struct ctx_mem_entry, data) + e->key_len + 1 + e->value_len;

	if (size > CTX_MEM_BLIND_LINES * CTX_MEM_CACHE_LINE)
		ctx_mem_prefetch_lines(e, CTX_MEM_BLIND_LINES * CTX_MEM_CACHE_LINE,
				       size < CTX_MEM_PREFETCH_MAX ? size : CTX_MEM_PREFETCH_MAX);
	if (e->lru_prev)
		__builtin_prefetch(e->lru_prev, 1);
	if (e->lru_next)
		__builtin_prefetch(e->lru_next, 1);
}

/* The link that points (or would point) at key's entry: *result is the entry
 * or NULL. Passing the link to ctx_mem_unlink() saves a second chain walk. */
static struct ctx_mem_entry **ctx_mem_find(struct ctx_mem_shard *sh, uint64_t h, const char *key,
					   size_t key_len)
{
	struct ctx_mem_entry **link = &sh->buckets[h & (sh->nbuckets - 1)];

	for (; *link; link = &(*link)->hnext) {
		const struct ctx_mem_entry *e = *link;

		ctx_mem_prefetch_lines(e, 0, CTX_MEM_BLIND_LINES * CTX_MEM_CACHE_LINE); /* step 1 */
		if (e->hash != h)
			continue;
		ctx_mem_prefetch_rest(e); /* step 2 */
		if (e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
			break;
	}
	return link;
}

/* The link that points at e, which is in the table. */
static struct ctx_mem_entry **ctx_mem_link_of(struct ctx_mem_shard *sh, const struct ctx_mem_entry *e)
{
	struct ctx_mem_entry **link = &sh->buckets[e->hash & (sh->nbuckets - 1)];

	while (*link != e)
		link = &(*link)->hnext;
	return link;
}

/* Doubles the bucket array. On allocation failure the table stays as it is:
 * longer chains, still correct; the next insert tries again. */
static void ctx_mem_grow(struct ctx_mem_shard *sh)
{
	size_t n = sh->nbuckets * 2, i;
	struct ctx_mem_entry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (i = 0; i < sh->nbuckets; i++) {
		struct ctx_mem_entry *e = sh->buckets[i], *next;

		for (; e; e = next) {
			size_t b = e->hash & (n - 1);

			next = e->hnext;
			e->hnext = nb[b];
			nb[b] = e;
		}
	}
	free(sh->buckets);
	sh->buckets = nb;
	sh->nbuckets = n;
	atomic_store_explicit(&sh->hint_buckets, nb, memory_order_relaxed);
	atomic_store_explicit(&sh->hint_mask, n - 1, memory_order_relaxed);
}

/*
 * Removes e from the shard (chain, LRU, heap, counters) and hands it to op's
 * garbage, freed after the lock is released. link is the chain link pointing
 * at e, or NULL to look it up.
 */
static void ctx_mem_unlink(struct ctx_mem_shard *sh, struct ctx_mem_op *op, struct ctx_mem_entry *e,
			   struct ctx_mem_entry **link)
{
	if (!link)
		link = ctx_mem_link_of(sh, e);
	*link = e->hnext;
	ctx_mem_lru_unlink(sh, e);
	ctx_mem_heap_remove(sh, e);
	sh->entries--;
	sh->bytes -= ctx_mem_charge(e->key_len, e->value_cap);
	e->hnext = op->garbage;
	op->garbage = e;
}

/* Removes an entry found expired by a get, put or del (lazy expiry). */
static void ctx_mem_expire(struct ctx_mem_shard *sh, struct ctx_mem_op *op, struct ctx_mem_entry *e,
			   struct ctx_mem_entry **link)
{
	ctx_mem_unlink(sh, op, e, link);
	sh->expired++;
}

static bool ctx_mem_over(const struct ctx_mem *m, const struct ctx_mem_shard *sh, uint64_t add_entries,
			 uint64_t add_bytes, uint64_t sub_bytes, const char **bound)
{
	if (m->shard_max_entries && sh->entries + add_entries > m->shard_max_entries) {
		*bound = "max_entries";
		return true;
	}
	if (m->shard_max_bytes && sh->bytes - sub_bytes + add_bytes > m->shard_max_bytes) {
		*bound = "max_bytes";
		return true;
	}
	return false;
}

/*
 * Makes the shard able to take add_entries more entries and add_bytes more
 * bytes, once sub_bytes (the old charge of the entry being rewritten) are
 * released. keep (may be NULL) is the entry being written: never evicted.
 *   1. while over a bound, take an expired entry off the heap (expired,
 *      evicted_expired);
 *   2. when none is left, evict the LRU tail (evicted_lru, logged later).
 * The caller checked that the new charge alone fits an empty shard, so this
 * always ends within bounds.
 */
static void ctx_mem_make_room(struct ctx_mem *m, struct ctx_mem_shard *sh, struct ctx_mem_op *op,
			      uint64_t add_entries, uint64_t add_bytes, uint64_t sub_bytes,
			      const struct ctx_mem_entry *keep)
{
	const char *bound = NULL;

	ctx_mem_lru_settle(sh); /* the tail must be the real least recently used */
	while (ctx_mem_over(m, sh, add_entries, add_bytes, sub_bytes, &bound)) {
		struct ctx_mem_entry *victim = ctx_mem_heap_expired(sh, op->now_mono_ms);

		if (victim && victim != keep) { /* step 1 */
			ctx_mem_unlink(sh, op, victim, NULL);
			sh->expired++;
			sh->evicted_expired++;
			continue;
		}
		victim = sh->lru_tail; /* step 2 */
		if (victim == keep)
			victim = victim->lru_prev;
		if (!victim)
			break; /* only keep is left: cannot happen, see above */
		ctx_mem_unlink(sh, op, victim, NULL);
		sh->evicted_lru++;
		if (op->lru_evictions++ == 0) {
			op->first_evicted = victim;
			op->first_bound = bound;
			op->first_shard = (unsigned)(sh - m->shards);
		}
	}
}

/* ---- one item (lock: shard->mu held) ------------------------------------- */

static void ctx_mem_get_one(struct ctx_mem_shard *sh, struct ctx_mem_op *op, struct ctx_get_item *it,
			    uint64_t h, size_t key_len)
{
	struct ctx_mem_entry **link = ctx_mem_find(sh, h, it->key, key_len);
	struct ctx_mem_entry *e = *link;

	if (e && e->expires_at_ms <= op->now_mono_ms) {
		ctx_mem_expire(sh, op, e, link);
		e = NULL;
	}
	if (!e) {
		it->err = ctx_value_set_missing(&it->value);
		return;
	}
	/* Copied under the lock: a writer may change the entry right after. */
	it->err = ctx_value_set(&it->value, ctx_mem_value(e), e->value_len);
	if (it->err != WB_OK)
		return;
	it->value.found = true;
	it->value.version = e->version;
	it->value.updated_at_ms = e->updated_at_ms;
	ctx_mem_lru_defer(sh, e);
}

/* Links a new entry for it (absent or just expired). */
static wb_err_t ctx_mem_insert(struct ctx_mem *m, struct ctx_mem_shard *sh, struct ctx_mem_op *op,
			       const struct ctx_put_item *it, uint64_t h, size_t key_len)
{
	size_t cap = ctx_mem_cap_for(it->len);
	uint64_t charge = ctx_mem_charge(key_len, cap);
	struct ctx_mem_entry *e, **link;

	if (m->shard_max_bytes && charge > m->shard_max_bytes) {
		cap = it->len; /* no room to grow in place: try the exact size */
		charge = ctx_mem_charge(key_len, cap);
		if (charge > m->shard_max_bytes)
			return WB_ERR_TOO_BIG;
	}
	if (ctx_mem_heap_reserve(sh) != WB_OK)
		return WB_ERR_NOMEM;
	e = malloc(sizeof(*e) + key_len + 1 + cap);
	if (!e)
		return WB_ERR_NOMEM;

	/* Allocated first, so that a failure above has evicted nothing. */
	ctx_mem_make_room(m, sh, op, 1, charge, 0, NULL);

	e->hash = h;
	e->value_len = (uint32_t)it->len;
	e->value_cap = (uint32_t)cap;
	e->key_len = (uint8_t)key_len;
	e->expires_at_ms = op->now_mono_ms + (int64_t)it->ttl_ms; /* heap key below */
	e->version = 1;
	e->updated_at_ms = op->now_wall_ms;
	memcpy(e->data, it->key, key_len);
	e->data[key_len] = '\0';
	memcpy(ctx_mem_value(e), it->json, it->len);

	/* At the head of its chain: any link found before make_room() may point
	 * into an entry it evicted. */
	link = &sh->buckets[h & (sh->nbuckets - 1)];
	e->hnext = *link;
	*link = e;
	ctx_mem_lru_push_front(sh, e);
	ctx_mem_heap_push(sh, e);
	sh->entries++;
	sh->bytes += charge;
	if (sh->entries > sh->nbuckets)
		ctx_mem_grow(sh);
	return WB_OK;
}

/*
 * Moves e into a new allocation with room for a value of cap bytes (header and
 * key copied), makes every reference point at it (chain, LRU neighbours, heap
 * slot) and hands the old one to op's garbage. Returns the new entry.
 */
static struct ctx_mem_entry *ctx_mem_replace(struct ctx_mem_shard *sh, struct ctx_mem_op *op,
					     struct ctx_mem_entry *e, struct ctx_mem_entry *ne, size_t cap)
{
	ctx_mem_lru_settle(sh); /* e may be the pending one; links are copied below */
	memcpy(ne, e, sizeof(*e) + e->key_len + 1);
	ne->value_cap = (uint32_t)cap;
	*ctx_mem_link_of(sh, e) = ne;
	if (ne->lru_prev)
		ne->lru_prev->lru_next = ne;
	else
		sh->lru_head = ne;
	if (ne->lru_next)
		ne->lru_next->lru_prev = ne;
	else
		sh->lru_tail = ne;
	sh->heap[ne->heap_idx].e = ne;
	e->hnext = op->garbage;
	op->garbage = e;
	return ne;
}

/* Rewrites e's value with it's, in place when it fits. */
static wb_err_t ctx_mem_overwrite(struct ctx_mem *m, struct ctx_mem_shard *sh, struct ctx_mem_op *op,
				  const struct ctx_put_item *it, struct ctx_mem_entry *e)
{
	/* In place unless too small, or four times too big (give memory back). */
	if (it->len > e->value_cap || (e->value_cap > 256 && it->len < e->value_cap / 4)) {
		size_t cap = ctx_mem_cap_for(it->len + ctx_mem_grow_room(e->value_len, it->len));
		uint64_t old_charge = ctx_mem_charge(e->key_len, e->value_cap);
		uint64_t charge = ctx_mem_charge(e->key_len, cap);
		struct ctx_mem_entry *ne;

		if (m->shard_max_bytes && charge > m->shard_max_bytes) {
			cap = it->len;
			charge = ctx_mem_charge(e->key_len, cap);
			if (charge > m->shard_max_bytes)
				return WB_ERR_TOO_BIG;
		}
		ne = malloc(sizeof(*ne) + e->key_len + 1 + cap);
		if (!ne)
			return WB_ERR_NOMEM;
		ctx_mem_make_room(m, sh, op, 0, charge, old_charge, e);
		e = ctx_mem_replace(sh, op, e, ne, cap);
		sh->bytes = sh->bytes - old_charge + charge;
	}
	memcpy(ctx_mem_value(e), it->json, it->len);
	e->value_len = (uint32_t)it->len;
	e->version++;
	e->updated_at_ms = op->now_wall_ms;
	ctx_mem_set_expiry(sh, e, op->now_mono_ms + (int64_t)it->ttl_ms);
	ctx_mem_lru_touch(sh, e);
	return WB_OK;
}

/* Compare-and-set write of one item: an expired entry counts as absent. */
static void ctx_mem_put_one(struct ctx_mem *m, struct ctx_mem_shard *sh, struct ctx_mem_op *op,
			    struct ctx_put_item *it, uint64_t h, size_t key_len)
{
	struct ctx_mem_entry **link = ctx_mem_find(sh, h, it->key, key_len);
	struct ctx_mem_entry *e = *link;
	uint64_t current;

	it->new_version = 0;
	if (e && e->expires_at_ms <= op->now_mono_ms) {
		ctx_mem_expire(sh, op, e, link);
		e = NULL;
	}
	current = e ? e->version : 0;
	if (it->expected_version != CTX_VERSION_ANY && it->expected_version != current) {
		it->err = WB_ERR_CONFLICT;
		return;
	}
	if (e)
		it->err = ctx_mem_overwrite(m, sh, op, it, e);
	else
		it->err = ctx_mem_insert(m, sh, op, it, h, key_len);
	if (it->err == WB_OK)
		it->new_version = current + 1;
}

/* ---- after unlock -------------------------------------------------------- */

static void ctx_mem_op_init(struct ctx_mem_op *op, bool need_wall)
{
	memset(op, 0, sizeof(*op));
	op->now_mono_ms = ctx_now_mono_ms();
	if (need_wall)
		op->now_wall_ms = ctx_now_wall_ms();
}

/*
 * Logs the call's live evictions (one line at most per CTX_MEM_LOG_INTERVAL_MS
 * per store; the others add to "suppressed") and frees the unlinked entries.
 * Lock: none held.
 */
static void ctx_mem_op_finish(struct ctx_mem *m, struct ctx_mem_op *op)
{
	struct ctx_mem_entry *e, *next;

	if (op->lru_evictions) {
		int64_t now = ctx_now_mono_ms();
		int_fast64_t last = atomic_load_explicit(&m->log_last_ms, memory_order_relaxed);

		if (now - last >= CTX_MEM_LOG_INTERVAL_MS &&
		    atomic_compare_exchange_strong_explicit(&m->log_last_ms, &last, now, memory_order_relaxed,
							    memory_order_relaxed)) {
			const struct ctx_mem_entry *v = op->first_evicted;
			uint64_t suppressed = atomic_exchange_explicit(&m->log_suppressed, 0, memory_order_relaxed);

			log_at(LOG_WARN, "memory context store full: evicted a live conversation",
			       LOG_PHONE("phone", v->data), LOG_INT("age_ms", op->now_wall_ms - v->updated_at_ms),
			       LOG_UINT("version", v->version), LOG_STR("bound", op->first_bound),
			       LOG_UINT("shard", op->first_shard),
			       LOG_UINT("suppressed", suppressed + op->lru_evictions - 1));
		} else {
			atomic_fetch_add_explicit(&m->log_suppressed, op->lru_evictions, memory_order_relaxed);
		}
	}
	for (e = op->garbage; e; e = next) {
		next = e->hnext;
		free(e);
	}
	op->garbage = NULL;
}

/* ---- backend operations -------------------------------------------------- */

/* A key's hash and length, computed CTX_MEM_AHEAD items before its turn. */
struct ctx_mem_key {
	uint64_t h;
	size_t len;
};

/*
 * Hashes key and asks for its bucket slot, without the shard lock (through
 * the hint atomics), so that a batch has the slots of its next items on the
 * way while it works on the current one. Lock: none needed.
 */
static struct ctx_mem_key ctx_mem_ahead(struct ctx_mem *m, const char *key)
{
	struct ctx_mem_key k;
	struct ctx_mem_shard *sh;
	uintptr_t slot;

	k.len = strlen(key);
	k.h = ctx_mem_hash(m->seed, key, k.len);
	sh = ctx_mem_shard_of(m, k.h);
	/* Computed as an integer: the array may be a stale one. */
	slot = (uintptr_t)atomic_load_explicit(&sh->hint_buckets, memory_order_relaxed) +
	       (k.h & atomic_load_explicit(&sh->hint_mask, memory_order_relaxed)) *
		       sizeof(struct ctx_mem_entry *);
	__builtin_prefetch((const void *)slot, 0);
	return k;
}

/*
 * A batch walks its items strictly in order, keeping a shard's lock while
 * consecutive items fall in it, with the keys of the next CTX_MEM_AHEAD items
 * already hashed and their bucket slots on the way. Caller's stack, one thread.
 */
struct ctx_mem_batch {
	struct ctx_mem *m;
	struct ctx_mem_shard *locked;         /* held, or NULL */
	struct ctx_mem_key ring[CTX_MEM_AHEAD];/* item i at ring[i % CTX_MEM_AHEAD] */
};

/* Starts a batch; the caller then fills ring[] for its first items with
 * ctx_mem_ahead(). */
static void ctx_mem_batch_init(struct ctx_mem_batch *b, struct ctx_mem *m)
{
	b->m = m;
	b->locked = NULL;
}

/*
 * For item i (whose key went through ctx_mem_ahead() earlier): returns
 * its shard, locked, and its key in *k; next_key (NULL when none) is the key
 * of item i + CTX_MEM_AHEAD, hashed and prefetched now.
 */
static struct ctx_mem_shard *ctx_mem_batch_lock(struct ctx_mem_batch *b, size_t i, const char *next_key,
						struct ctx_mem_key *k)
{
	struct ctx_mem_shard *sh;

	*k = b->ring[i % CTX_MEM_AHEAD];
	if (next_key)
		b->ring[i % CTX_MEM_AHEAD] = ctx_mem_ahead(b->m, next_key);
	sh = ctx_mem_shard_of(b->m, k->h);
	if (sh != b->locked) {
		if (b->locked)
			pthread_mutex_unlock(&b->locked->mu);
		pthread_mutex_lock(&sh->mu);
		b->locked = sh;
	}
	return sh;
}

static void ctx_mem_batch_end(struct ctx_mem_batch *b)
{
	if (b->locked)
		pthread_mutex_unlock(&b->locked->mu);
	b->locked = NULL;
}

/*
 * A batch of one item, the worker's usual call (ctx_store_get/put): no ring
 * and no look-ahead prefetch of the bucket slot it reads at once (~40
 * instructions a call). Returns the shard, locked, and the key in *k.
 */
static struct ctx_mem_shard *ctx_mem_lock_one(struct ctx_mem *m, const char *key, struct ctx_mem_key *k)
{
	struct ctx_mem_shard *sh;

	k->len = strlen(key);
	k->h = ctx_mem_hash(m->seed, key, k->len);
	sh = ctx_mem_shard_of(m, k->h);
	pthread_mutex_lock(&sh->mu);
	return sh;
}

static wb_err_t ctx_mem_get_many(void *be, struct ctx_get_item *items, size_t n)
{
	struct ctx_mem_batch b;
	struct ctx_mem_op op;
	wb_err_t first = WB_OK;
	size_t i;

	ctx_mem_op_init(&op, false);
	if (n == 1) {
		struct ctx_mem_key k;
		struct ctx_mem_shard *sh = ctx_mem_lock_one(be, items[0].key, &k);

		ctx_mem_get_one(sh, &op, &items[0], k.h, k.len);
		pthread_mutex_unlock(&sh->mu);
		ctx_mem_op_finish(be, &op);
		return items[0].err;
	}
	ctx_mem_batch_init(&b, be);
	for (i = 0; i < n && i < CTX_MEM_AHEAD; i++)
		b.ring[i] = ctx_mem_ahead(be, items[i].key);
	for (i = 0; i < n; i++) {
		struct ctx_mem_key k;
		struct ctx_mem_shard *sh =
			ctx_mem_batch_lock(&b, i, i + CTX_MEM_AHEAD < n ? items[i + CTX_MEM_AHEAD].key : NULL, &k);

		ctx_mem_get_one(sh, &op, &items[i], k.h, k.len);
		if (items[i].err != WB_OK && first == WB_OK)
			first = items[i].err;
	}
	ctx_mem_batch_end(&b);
	ctx_mem_op_finish(be, &op);
	return first;
}

static wb_err_t ctx_mem_put_many(void *be, struct ctx_put_item *items, size_t n)
{
	struct ctx_mem_batch b;
	struct ctx_mem_op op;
	wb_err_t first = WB_OK;
	size_t i;

	ctx_mem_op_init(&op, true);
	if (n == 1) {
		struct ctx_mem_key k;
		struct ctx_mem_shard *sh = ctx_mem_lock_one(be, items[0].key, &k);

		ctx_mem_put_one(be, sh, &op, &items[0], k.h, k.len);
		pthread_mutex_unlock(&sh->mu);
		ctx_mem_op_finish(be, &op);
		return items[0].err;
	}
	ctx_mem_batch_init(&b, be);
	for (i = 0; i < n && i < CTX_MEM_AHEAD; i++)
		b.ring[i] = ctx_mem_ahead(be, items[i].key);
	for (i = 0; i < n; i++) {
		struct ctx_mem_key k;
		struct ctx_mem_shard *sh =
			ctx_mem_batch_lock(&b, i, i + CTX_MEM_AHEAD < n ? items[i + CTX_MEM_AHEAD].key : NULL, &k);

		ctx_mem_put_one(be, sh, &op, &items[i], k.h, k.len);
		if (items[i].err != WB_OK && first == WB_OK)
			first = items[i].err;
	}
	ctx_mem_batch_end(&b);
	ctx_mem_op_finish(be, &op);
	return first;
}

static wb_err_t ctx_mem_del(void *be, const char *key)
{
	struct ctx_mem *m = be;
	size_t key_len = strlen(key);
	uint64_t h = ctx_mem_hash(m->seed, key, key_len);
	struct ctx_mem_shard *sh = ctx_mem_shard_of(m, h);
	struct ctx_mem_entry **link, *e;
	struct ctx_mem_op op;
	wb_err_t err = WB_ERR_NOT_FOUND;

	ctx_mem_op_init(&op, false);
	pthread_mutex_lock(&sh->mu);
	link = ctx_mem_find(sh, h, key, key_len);
	e = *link;
	if (e && e->expires_at_ms <= op.now_mono_ms) {
		ctx_mem_expire(sh, &op, e, link);
	} else if (e) {
		ctx_mem_unlink(sh, &op, e, link);
		err = WB_OK;
	}
	pthread_mutex_unlock(&sh->mu);
	ctx_mem_op_finish(m, &op);
	return err;
}

static void ctx_mem_stats(void *be, struct ctx_store_stats *out)
{
	struct ctx_mem *m = be;
	unsigned i;

	for (i = 0; i < m->nshards; i++) {
		struct ctx_mem_shard *sh = &m->shards[i];

		pthread_mutex_lock(&sh->mu);
		out->entries += sh->entries;
		out->bytes += sh->bytes;
		out->expired += sh->expired;
		out->evicted_expired += sh->evicted_expired;
		out->evicted_lru += sh->evicted_lru;
		pthread_mutex_unlock(&sh->mu);
	}
}

/* ---- sweep thread -------------------------------------------------------- */

/* Removes the shard's expired entries, CTX_MEM_SWEEP_BATCH per lock hold. */
static void ctx_mem_sweep_shard(struct ctx_mem *m, struct ctx_mem_shard *sh)
{
	for (;;) {
		struct ctx_mem_entry *e;
		struct ctx_mem_op op;
		unsigned k = 0;

		ctx_mem_op_init(&op, false);
		pthread_mutex_lock(&sh->mu);
		while (k < CTX_MEM_SWEEP_BATCH && (e = ctx_mem_heap_expired(sh, op.now_mono_ms))) {
			ctx_mem_unlink(sh, &op, e, NULL);
			sh->expired++;
			k++;
		}
		pthread_mutex_unlock(&sh->mu);
		ctx_mem_op_finish(m, &op);
		if (k < CTX_MEM_SWEEP_BATCH || atomic_load(&m->stop))
			return;
	}
}

/* Thread: the store's sweeper. Sleeps on sweep_cv (so destroy wakes it at
 * once), then sweeps every shard, one lock at a time. */
static void *ctx_mem_sweep_main(void *arg)
{
	struct ctx_mem *m = arg;

	for (;;) {
		struct timespec deadline;
		unsigned i;
		int rc = 0;

		clock_mono_deadline(&deadline, m->sweep_interval_ms);
		pthread_mutex_lock(&m->sweep_mu);
		while (!atomic_load(&m->stop) && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&m->sweep_cv, &m->sweep_mu, &deadline);
		pthread_mutex_unlock(&m->sweep_mu);

		for (i = 0; i < m->nshards && !atomic_load(&m->stop); i++)
			ctx_mem_sweep_shard(m, &m->shards[i]);
		if (atomic_load(&m->stop))
			return NULL;
	}
}

/* ---- lifecycle ----------------------------------------------------------- */

static void ctx_mem_free_shards(struct ctx_mem *m, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct ctx_mem_shard *sh = &m->shards[i];
		struct ctx_mem_entry *e, *next;
		size_t b;

		for (b = 0; b < sh->nbuckets; b++) {
			for (e = sh->buckets[b]; e; e = next) {
				next = e->hnext;
				free(e);
			}
		}
		free(sh->buckets);
		free(sh->heap);
		pthread_mutex_destroy(&sh->mu);
	}
	free(m->shards);
}

static void ctx_mem_destroy(void *be)
{
	struct ctx_mem *m = be;

	if (!m)
		return;
	pthread_mutex_lock(&m->sweep_mu);
	atomic_store(&m->stop, true);
	pthread_cond_signal(&m->sweep_cv);
	pthread_mutex_unlock(&m->sweep_mu);
	pthread_join(m->sweeper, NULL);
	pthread_cond_destroy(&m->sweep_cv);
	pthread_mutex_destroy(&m->sweep_mu);
	ctx_mem_free_shards(m, m->nshards);
	free(m);
}

static uint64_t ctx_mem_make_seed(const void *salt)
{
	uint64_t seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* No entropy yet (early boot): still differs per process and store. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ctx_mem_fmix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)salt);
}

static void ctx_mem_errstr(char *errstr, size_t errstr_size, const char *msg)
{
	if (errstr && errstr_size)
		snprintf(errstr, errstr_size, "memory context store: %s", msg);
}

/* Checks cfg->memory; fills *shards and *sweep_ms with defaults applied. */
static bool ctx_mem_check_config(const struct ctx_memory_opts *o, unsigned *shards, unsigned *sweep_ms,
				 char *errstr, size_t errstr_size)
{
	char msg[160];

	*shards = o->shards ? o->shards : CTX_MEM_DEFAULT_SHARDS;
	*sweep_ms = o->sweep_interval_ms ? o->sweep_interval_ms : CTX_MEM_DEFAULT_SWEEP_MS;
	if (*shards > CTX_MEM_MAX_SHARDS || (*shards & (*shards - 1)) != 0) {
		snprintf(msg, sizeof(msg), "shards must be a power of two from 1 to %u, not %u",
			 CTX_MEM_MAX_SHARDS, *shards);
		ctx_mem_errstr(errstr, errstr_size, msg);
		return false;
	}
	if (o->max_entries && o->max_entries < *shards) {
		snprintf(msg, sizeof(msg), "max_entries (%llu) must be 0 or at least shards (%u)",
			 (unsigned long long)o->max_entries, *shards);
		ctx_mem_errstr(errstr, errstr_size, msg);
		return false;
	}
	if (o->max_bytes && o->max_bytes / *shards < CTX_MEM_MIN_SHARD_BYTES) {
		snprintf(msg, sizeof(msg), "max_bytes (%llu) must be 0 or at least %u per shard (%u shards)",
			 (unsigned long long)o->max_bytes, CTX_MEM_MIN_SHARD_BYTES, *shards);
		ctx_mem_errstr(errstr, errstr_size, msg);
		return false;
	}
	return true;
}

void *ctx_memory_new(const struct ctx_store_config *cfg, char *errstr, size_t errstr_size)
{
	struct ctx_mem *m;
	unsigned nshards, sweep_ms, i;
	size_t nbuckets = CTX_MEM_MIN_BUCKETS;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	if (!ctx_mem_check_config(&cfg->memory, &nshards, &sweep_ms, errstr, errstr_size))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto out_nomem;
	m->nshards = nshards;
	while ((1u << m->shard_bits) < nshards)
		m->shard_bits++;
	m->shard_max_entries = cfg->memory.max_entries / nshards;
	m->shard_max_bytes = cfg->memory.max_bytes / nshards;
	m->sweep_interval_ms = sweep_ms;
	m->seed = ctx_mem_make_seed(m);
	atomic_init(&m->stop, false);
	atomic_init(&m->log_last_ms, INT64_MIN / 2);
	atomic_init(&m->log_suppressed, 0);

	/* A bounded shard never needs more buckets than its bound. */
	while (m->shard_max_entries && nbuckets < m->shard_max_entries && nbuckets < CTX_MEM_MAX_PRESIZE)
		nbuckets *= 2;
	m->shards = aligned_alloc(CTX_MEM_CACHE_LINE, nshards * sizeof(*m->shards));
	if (!m->shards)
		goto out_free_m;
	memset(m->shards, 0, nshards * sizeof(*m->shards));
	for (i = 0; i < nshards; i++) {
		struct ctx_mem_shard *sh = &m->shards[i];

		sh->buckets = calloc(nbuckets, sizeof(*sh->buckets));
		if (!sh->buckets || pthread_mutex_init(&sh->mu, NULL) != 0) {
			free(sh->buckets);
			ctx_mem_free_shards(m, i);
			goto out_free_m;
		}
		sh->nbuckets = nbuckets;
		atomic_init(&sh->hint_buckets, sh->buckets);
		atomic_init(&sh->hint_mask, nbuckets - 1);
	}

	if (pthread_mutex_init(&m->sweep_mu, NULL) != 0)
		goto out_free_shards;
	if (pthread_condattr_init(&ca) != 0)
		goto out_free_sweep_mu;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&m->sweep_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto out_free_sweep_mu;

	/* The sweeper blocks every signal: they belong to the threads that
	 * handle them (worker/main.c). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->sweeper, NULL, ctx_mem_sweep_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		char msg[96];

		snprintf(msg, sizeof(msg), "cannot start the sweep thread: %s", strerror(rc));
		ctx_mem_errstr(errstr, errstr_size, msg);
		pthread_cond_destroy(&m->sweep_cv);
		pthread_mutex_destroy(&m->sweep_mu);
		ctx_mem_free_shards(m, nshards);
		free(m);
		return NULL;
	}
	return m;

out_free_sweep_mu:
	pthread_mutex_destroy(&m->sweep_mu);
out_free_shards:
	ctx_mem_free_shards(m, nshards);
	free(m);
	goto out_nomem;
out_free_m:
	free(m);
out_nomem:
	ctx_mem_errstr(errstr, errstr_size, "out of memory");
	return NULL;
}

const struct ctx_backend_ops ctx_memory_ops = {
	.name = "memory",
	.timed = false, /* a call takes well under a microsecond: see ctx_store_int.h */
	.get_many = ctx_mem_get_many,
	.put_many = ctx_mem_put_many,
	.del = ctx_mem_del,
	.stats = ctx_mem_stats,
	.destroy = ctx_mem_destroy,
};
