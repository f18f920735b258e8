/*
 * bench_ctx_memory.c - throughput of the memory context store through the
 * public API, the way the worker uses it: read a context, write it back with
 * compare-and-set on the version read. Prints figures; asserts nothing.
 *
 *   bench_ctx_memory [-n pairs] [-k keys] [-t threads] [-b batch] [-s shards]
 *                    [-e] (start empty: no pre-population)
 *
 * Keys are Colombian-style phones (+57300xxxxxxx), picked uniformly at random
 * (so most accesses miss the CPU caches, as 1M live conversations would);
 * values are 150-300 byte context JSON. Runs, in order: populate, 1 thread
 * singly, 1 thread in batches, N threads singly (N = -t, default 2).
 * Owns only its own buffers; single process, threads joined before exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx_store.h"
#include "log.h"
#include "test_clock.h"

#define BENCH_TEMPLATES 64
#define BENCH_KEY_SIZE 16

struct bench_opts {
	unsigned long pairs;   /* get+put pairs per measured run */
	unsigned long keys;    /* distinct phones */
	unsigned threads;      /* threads of the multi-thread run */
	unsigned batch;        /* items per get_many/put_many */
	unsigned shards;       /* memory.shards, 0: default */
	int populate;          /* write every key before measuring */
};

struct bench_data {
	char *templates[BENCH_TEMPLATES];
	size_t template_len[BENCH_TEMPLATES];
};

struct bench_thread {
	ctx_store_t *cs;
	const struct bench_data *d;
	unsigned long keys;
	unsigned long pairs;
	unsigned batch;        /* 1: ctx_store_get + ctx_store_put */
	uint64_t seed;
	unsigned long conflicts;
	unsigned long errors;
	double seconds;        /* wall clock */
	double cpu_seconds;    /* this thread's CPU time */
};

static uint64_t bench_rand(uint64_t *s)
{
	/* xorshift64*: cheap and good enough to pick keys */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* A realistic context: a flow step, a name, a small cart, ids; padded with a
 * notes field so the templates span 150..300 bytes. */
static char *bench_template(unsigned i, size_t *len)
{
	size_t target = 150 + (size_t)i * 150 / (BENCH_TEMPLATES - 1);
	char *s = malloc(512);
	int n;

	if (!s)
		return NULL;
	n = snprintf(s, 512,
		     "{\"conversation_step\":\"awaiting_address\",\"name\":\"Mar\\u00eda Jos\\u00e9\","
		     "\"lang\":\"es\",\"cart\":[{\"sku\":\"A%03u\",\"qty\":%u}],\"last_msg_id\":"
		     "\"wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgg%04u\",\"notes\":\"",
		     i, i % 5 + 1, i);
	for (; (size_t)n < target - 2; n++)
		s[n] = (char)('a' + n % 26);
	s[n++] = '"';
	s[n++] = '}';
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

/* Writes the phone of key number k, "+57300" and 7 digits, into out. The
 * worker has its key in the event it is handling (in cache), so keys are
 * formatted on the fly rather than read from a 16 MB table, which would add
 * a cache miss per call that the store is not responsible for. */
static const char *bench_key(char out[BENCH_KEY_SIZE], unsigned long k)
{
	int i;

	memcpy(out, "+57300", 6);
	for (i = 12; i >= 6; i--) {
		out[i] = (char)('0' + k % 10);
		k /= 10;
	}
	out[13] = '\0';
	return out;
}

static int bench_data_init(struct bench_data *d)
{
	unsigned t;

	memset(d, 0, sizeof(*d));
	for (t = 0; t < BENCH_TEMPLATES; t++) {
		d->templates[t] = bench_template(t, &d->template_len[t]);
		if (!d->templates[t])
			return -1;
	}
	return 0;
}

static void bench_data_fini(struct bench_data *d)
{
	unsigned t;

	for (t = 0; t < BENCH_TEMPLATES; t++)
		free(d->templates[t]);
}

/* One get, then one put with compare-and-set on the version read. */
static void bench_pairs_single(struct bench_thread *b)
{
	struct ctx_value v;
	char key[BENCH_KEY_SIZE];
	unsigned long i;

	ctx_value_init(&v);
	for (i = 0; i < b->pairs; i++) {
		unsigned long k = (unsigned long)(bench_rand(&b->seed) % b->keys);
		unsigned t = (unsigned)(k % BENCH_TEMPLATES);
		wb_err_t err = ctx_store_get(b->cs, bench_key(key, k), &v);

		if (err != WB_OK) {
			b->errors++;
			continue;
		}
		err = ctx_store_put(b->cs, key, b->d->templates[t], b->d->template_len[t],
				    v.found ? v.version : 0, 0, NULL);
		if (err == WB_ERR_CONFLICT)
			b->conflicts++;
		else if (err != WB_OK)
			b->errors++;
	}
	ctx_value_fini(&v);
}

/* get_many of batch keys, then put_many of the same keys with their versions. */
static void bench_pairs_batch(struct bench_thread *b)
{
	struct ctx_get_item *gets = calloc(b->batch, sizeof(*gets));
	struct ctx_put_item *puts = calloc(b->batch, sizeof(*puts));
	unsigned *tmpl = calloc(b->batch, sizeof(*tmpl));
	char (*keys)[BENCH_KEY_SIZE] = calloc(b->batch, sizeof(*keys));
	unsigned long done = 0;
	unsigned j;

	if (!gets || !puts || !tmpl || !keys) {
		b->errors++;
		goto out;
	}
	for (j = 0; j < b->batch; j++)
		ctx_value_init(&gets[j].value);
	while (done < b->pairs) {
		unsigned n = b->pairs - done < b->batch ? (unsigned)(b->pairs - done) : b->batch;

		for (j = 0; j < n; j++) {
			unsigned long k = (unsigned long)(bench_rand(&b->seed) % b->keys);

			gets[j].key = bench_key(keys[j], k);
			tmpl[j] = (unsigned)(k % BENCH_TEMPLATES);
		}
		ctx_store_get_many(b->cs, gets, n);
		for (j = 0; j < n; j++) {
			unsigned t = tmpl[j];

			puts[j] = (struct ctx_put_item){
				.key = gets[j].key,
				.json = b->d->templates[t],
				.len = b->d->template_len[t],
				.expected_version = gets[j].value.found ? gets[j].value.version : 0,
			};
			if (gets[j].err != WB_OK)
				b->errors++;
		}
		ctx_store_put_many(b->cs, puts, n);
		for (j = 0; j < n; j++) {
			/* A batch may hold one key twice: the second put of it
			 * conflicts, as it would for the caller. */
			if (puts[j].err == WB_ERR_CONFLICT)
				b->conflicts++;
			else if (puts[j].err != WB_OK)
				b->errors++;
		}
		done += n;
	}
	for (j = 0; j < b->batch; j++)
		ctx_value_fini(&gets[j].value);
out:
	free(keys);
	free(tmpl);
	free(gets);
	free(puts);
}

static void *bench_thread_main(void *p)
{
	struct bench_thread *b = p;
	double t0 = test_clock_s(CLOCK_MONOTONIC), c0 = test_clock_s(CLOCK_THREAD_CPUTIME_ID);

	if (b->batch > 1)
		bench_pairs_batch(b);
	else
		bench_pairs_single(b);
	b->seconds = test_clock_s(CLOCK_MONOTONIC) - t0;
	b->cpu_seconds = test_clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	return NULL;
}

/* Runs threads x pairs and prints one line. */
static void bench_run(ctx_store_t *cs, const struct bench_data *d, const struct bench_opts *o,
		      unsigned threads, unsigned batch, const char *label)
{
	struct bench_thread b[64];
	pthread_t t[64];
	unsigned long conflicts = 0, errors = 0, total = 0;
	double t0, secs, cpu = 0;
	unsigned i;

	if (threads > 64)
		threads = 64;
	for (i = 0; i < threads; i++)
		b[i] = (struct bench_thread){
			.cs = cs, .d = d, .keys = o->keys, .pairs = o->pairs, .batch = batch,
			.seed = UINT64_C(0x9e3779b97f4a7c15) * (i + 1) + (uint64_t)batch,
		};
	t0 = test_clock_s(CLOCK_MONOTONIC);
	for (i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, bench_thread_main, &b[i]);
	for (i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		conflicts += b[i].conflicts;
		errors += b[i].errors;
		total += b[i].pairs;
		cpu += b[i].cpu_seconds;
	}
	secs = test_clock_s(CLOCK_MONOTONIC) - t0;
	printf("memory store: %.0f get+put pairs/s on %u thread%s%s (%.0f ns/pair)", (double)total / secs,
	       threads, threads == 1 ? "" : "s", label, secs * 1e9 / (double)total * threads);
	/* CPU time per pair: what the wall clock would say on an idle machine. */
	printf("  [%lu pairs, %.2f s, %.0f ns CPU/pair, %lu conflicts, %lu errors]\n", total, secs,
	       cpu * 1e9 / (double)total, conflicts, errors);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n pairs] [-k keys] [-t threads] [-b batch] [-s shards] [-e]\n"
		"  -n  get+put pairs per thread and run (default 2000000)\n"
		"  -k  distinct keys (default 1000000)\n"
		"  -t  threads of the multi-thread run (default 2, at most 64)\n"
		"  -b  batch size of the batch run (default 100)\n"
		"  -s  memory shards (default: the store's, 64)\n"
		"  -e  start empty instead of writing every key first\n",
		argv0);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.pairs = 2000000, .keys = 1000000, .threads = 2, .batch = 100, .populate = 1};
	struct ctx_store_config cfg = {.backend = CTX_BACKEND_MEMORY};
	struct ctx_store_stats st;
	struct bench_data d;
	char err[256] = "", label[64];
	ctx_store_t *cs;
	int c;

	while ((c = getopt(argc, argv, "n:k:t:b:s:eh")) != -1) {
		switch (c) {
		case 'n': o.pairs = strtoul(optarg, NULL, 10); break;
		case 'k': o.keys = strtoul(optarg, NULL, 10); break;
		case 't': o.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': o.batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': o.shards = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': o.populate = 0; break;
		default: usage(argv[0]); return 2;
		}
	}
	if (!o.pairs || !o.keys || !o.threads || !o.batch) {
		usage(argv[0]);
		return 2;
	}
	log_set_level(LOG_WARN);
	if (o.keys > 10000000) {
		fprintf(stderr, "at most 10000000 keys\n");
		return 2;
	}
	if (bench_data_init(&d) != 0) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	cfg.memory.shards = o.shards;
	cs = ctx_store_new(&cfg, err, sizeof(err));
	if (!cs) {
		fprintf(stderr, "ctx_store_new: %s\n", err);
		bench_data_fini(&d);
		return 1;
	}

	if (o.populate) {
		double t0 = test_clock_s(CLOCK_MONOTONIC), secs;
		char key[BENCH_KEY_SIZE];
		unsigned long i;

		for (i = 0; i < o.keys; i++) {
			unsigned t = (unsigned)(i % BENCH_TEMPLATES);

			ctx_store_put(cs, bench_key(key, i), d.templates[t], d.template_len[t], 0, 0, NULL);
		}
		secs = test_clock_s(CLOCK_MONOTONIC) - t0;
		ctx_store_stats(cs, &st);
		printf("memory store: populated %lu keys in %.2f s (%.0f puts/s); %llu entries, %.1f MiB accounted\n",
		       o.keys, secs, (double)o.keys / secs, (unsigned long long)st.entries,
		       (double)st.bytes / (1024.0 * 1024.0));
	}

	bench_run(cs, &d, &o, 1, 1, "");
	snprintf(label, sizeof(label), ", batches of %u", o.batch);
	bench_run(cs, &d, &o, 1, o.batch, label);
	bench_run(cs, &d, &o, o.threads, 1, "");

	ctx_store_stats(cs, &st);
	printf("memory store: %llu entries, %.1f MiB accounted, %llu evicted, %llu expired\n",
	       (unsigned long long)st.entries, (double)st.bytes / (1024.0 * 1024.0),
	       (unsigned long long)st.evicted_lru, (unsigned long long)st.expired);
	ctx_store_destroy(cs);
	bench_data_fini(&d);
	return 0;
}
