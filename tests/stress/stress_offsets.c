/*
 * stress_offsets.c - the completion tracker's threaded paths, as a plain
 * program so that it runs under ThreadSanitizer (criterion 2.4.1 cannot start
 * under TSan, Criterion issue #274).
 *
 * One consumer thread (main) assigns 8 partitions, tracks offsets with random
 * gaps and hands {partition, offset, epoch} to a shared bag; 3 completing
 * threads take records out of the bag in random order and call
 * offsets_done(). The consumer asks for commit points as it goes, and now and
 * then revokes a partition (after draining) or loses it (without draining),
 * then reassigns it and redelivers from the last commit point, so stale
 * records of old epochs are still being completed while new ones run.
 * Checks, per partition and epoch: every commit point is above the previous
 * one, lands just after an offset tracked in that epoch, and never passes a
 * tracked offset that no completer finished in that epoch. Exit 0 when all
 * hold, 1 otherwise; prints a one-line summary.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offsets.h"

#define NPART 8
#define NCOMPLETERS 3
#define MAX_IN_FLIGHT 64
#define TRACKS 120000
#define MAX_OFFSET (1 << 17)           /* offsets per partition in the shadow arrays */
#define BAG_CAP (NPART * MAX_IN_FLIGHT * 8)
#define FORGET_EVERY 4000              /* tracks between revoke/lost rounds */

struct item {
	int32_t partition;
	int64_t offset;
	uint32_t epoch;
};

/* Records waiting for a completer; taken out at random. */
struct bag {
	pthread_mutex_t mu;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	struct item items[BAG_CAP];    /* guarded by mu */
	size_t n;                      /* guarded by mu */
	bool closed;                   /* guarded by mu */
};

struct stress {
	offsets_t *o;
	struct bag bag;
	/* done_epoch[p][off]: highest epoch in which a completer finished off,
	 * stored before offsets_done() is called. */
	_Atomic uint32_t (*done_epoch)[MAX_OFFSET];
	atomic_long done_true, done_false;
};

/* Consumer-thread-only view of one partition. */
struct part {
	uint32_t epoch;
	int64_t next_fetch;            /* next offset to fetch */
	int64_t last_commit;           /* last commit point of this epoch, or epoch start */
	int64_t committed;             /* last commit point of any epoch (redelivery start) */
	uint32_t *tracked_epoch;       /* [MAX_OFFSET]: epoch in which off was tracked */
};

static int failures;

static void fail(int32_t p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counts a failed check and prints the first few. Consumer thread only. */
static void fail(int32_t p, const char *fmt, ...)
{
	va_list ap;

	if (++failures > 10)
		return;
	fprintf(stderr, "stress_offsets: partition %d: ", p);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint32_t rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state >> 11);
}

static void bag_put(struct bag *b, struct item it)
{
	pthread_mutex_lock(&b->mu);
	while (b->n == BAG_CAP)
		pthread_cond_wait(&b->not_full, &b->mu);
	b->items[b->n++] = it;
	pthread_cond_signal(&b->not_empty);
	pthread_mutex_unlock(&b->mu);
}

/* Takes a random item; false once the bag is closed and empty. */
static bool bag_take(struct bag *b, uint64_t *rs, struct item *it)
{
	size_t i;

	pthread_mutex_lock(&b->mu);
	while (b->n == 0 && !b->closed)
		pthread_cond_wait(&b->not_empty, &b->mu);
	if (b->n == 0) {
		pthread_mutex_unlock(&b->mu);
		return false;
	}
	i = rnd(rs) % b->n;
	*it = b->items[i];
	b->items[i] = b->items[--b->n];
	pthread_cond_signal(&b->not_full);
	pthread_mutex_unlock(&b->mu);
	return true;
}

static void *complete(void *arg)
{
	struct stress *st = arg;
	static atomic_uint seed = 1;
	uint64_t rs = 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&seed, 1) + 1);
	struct item it;

	while (bag_take(&st->bag, &rs, &it)) {
		_Atomic uint32_t *de = &st->done_epoch[it.partition][it.offset];
		uint32_t cur = atomic_load(de);

		/* Keep the highest epoch, so a late stale completion never hides
		 * that the current epoch's one has not happened yet. */
		while (cur < it.epoch && !atomic_compare_exchange_weak(de, &cur, it.epoch))
			;
		if (offsets_done(st->o, it.partition, it.offset, it.epoch))
			atomic_fetch_add(&st->done_true, 1);
		else
			atomic_fetch_add(&st->done_false, 1);
	}
	return NULL;
}

/* Asks for p's commit point and checks it; returns true when it advanced. */
static bool check_commit(struct stress *st, int32_t p, struct part *pt)
{
	int64_t next, off;

	if (!offsets_commit_point(st->o, p, &next))
		return false;
	if (next <= pt->last_commit) {
		fail(p, "commit point %lld not above %lld", (long long)next, (long long)pt->last_commit);
		return true;
	}
	if (next > MAX_OFFSET || pt->tracked_epoch[next - 1] != pt->epoch)
		fail(p, "commit point %lld is not after an offset tracked in epoch %u", (long long)next,
		     pt->epoch);
	for (off = pt->last_commit; off < next && off < MAX_OFFSET; off++)
		if (pt->tracked_epoch[off] == pt->epoch &&
		    atomic_load(&st->done_epoch[p][off]) != pt->epoch)
			fail(p, "commit point %lld passes offset %lld, not done", (long long)next,
			     (long long)off);
	pt->last_commit = next;
	pt->committed = next;
	return true;
}

static void assign(struct stress *st, int32_t p, struct part *pt)
{
	if (offsets_assign(st->o, p, &pt->epoch) != WB_OK)
		fail(p, "assign failed");
	pt->next_fetch = pt->committed; /* redeliver from the committed offset */
	pt->last_commit = pt->committed;
}

int main(void)
{
	static struct part parts[NPART];
	struct stress *st;
	pthread_t th[NCOMPLETERS];
	uint64_t rs = 42;
	long tracked = 0, too_big = 0, commits = 0, revokes = 0, losts = 0;
	int32_t p;
	int i;

	st = calloc(1, sizeof(*st));
	st->done_epoch = calloc(NPART, sizeof(*st->done_epoch));
	st->o = offsets_new(MAX_IN_FLIGHT, NPART, NULL, 0);
	if (st->o == NULL || st->done_epoch == NULL) {
		fprintf(stderr, "stress_offsets: setup failed\n");
		return 1;
	}
	pthread_mutex_init(&st->bag.mu, NULL);
	pthread_cond_init(&st->bag.not_empty, NULL);
	pthread_cond_init(&st->bag.not_full, NULL);
	for (p = 0; p < NPART; p++) {
		parts[p].tracked_epoch = calloc(MAX_OFFSET, sizeof(uint32_t));
		if (parts[p].tracked_epoch == NULL)
			return 1;
		assign(st, p, &parts[p]);
	}
	for (i = 0; i < NCOMPLETERS; i++)
		pthread_create(&th[i], NULL, complete, st);

	/* Bounded by iterations too, in case tracking stalls (counted as a failure). */
	for (i = 0; tracked < TRACKS && i < 100 * TRACKS; i++) {
		struct part *pt;
		uint32_t epoch;
		int64_t off;
		wb_err_t err;

		p = (int32_t)(rnd(&rs) % NPART);
		pt = &parts[p];
		off = pt->next_fetch + (rnd(&rs) % 5 == 0 ? rnd(&rs) % 3 : 0);
		if (off >= MAX_OFFSET)
			continue;
		err = offsets_track(st->o, p, off, &epoch);
		if (err == WB_ERR_TOO_BIG) { /* "pause": release what is done */
			too_big++;
			commits += check_commit(st, p, pt);
			sched_yield();
			continue;
		}
		if (err != WB_OK || epoch != pt->epoch) {
			fail(p, "track %lld: %s", (long long)off, wb_err_name(err));
			continue;
		}
		tracked++;
		pt->tracked_epoch[off] = epoch;
		pt->next_fetch = off + 1;
		bag_put(&st->bag, (struct item){.partition = p, .offset = off, .epoch = epoch});

		if (tracked % 32 == 0)
			for (p = 0; p < NPART; p++)
				commits += check_commit(st, p, &parts[p]);
		if (tracked % FORGET_EVERY == 0) {
			p = (int32_t)(rnd(&rs) % NPART);
			pt = &parts[p];
			if (rnd(&rs) % 2 == 0) { /* revoke: drain first */
				for (;;) {
					commits += check_commit(st, p, pt);
					if (offsets_in_flight(st->o, p) == 0)
						break;
					sched_yield();
				}
				if (pt->committed != pt->next_fetch)
					fail(p, "drained at %lld, fetched up to %lld",
					     (long long)pt->committed, (long long)pt->next_fetch);
				if (offsets_revoke(st->o, p) != WB_OK)
					fail(p, "revoke failed");
				revokes++;
			} else { /* lost: records still running are ignored */
				if (offsets_lost(st->o, p) != WB_OK)
					fail(p, "lost failed");
				losts++;
			}
			assign(st, p, pt);
		}
	}

	if (tracked < TRACKS)
		fail(-1, "tracked only %ld records", tracked);

	/* Close the bag, wait for the completers, take the last commit points. */
	pthread_mutex_lock(&st->bag.mu);
	st->bag.closed = true;
	pthread_cond_broadcast(&st->bag.not_empty);
	pthread_mutex_unlock(&st->bag.mu);
	for (i = 0; i < NCOMPLETERS; i++)
		pthread_join(th[i], NULL);
	for (p = 0; p < NPART; p++) {
		commits += check_commit(st, p, &parts[p]);
		if (offsets_in_flight(st->o, p) != 0)
			fail(p, "%zu still in flight after all done", offsets_in_flight(st->o, p));
		if (parts[p].next_fetch > parts[p].last_commit)
			fail(p, "last commit point %lld, fetched up to %lld",
			     (long long)parts[p].last_commit, (long long)parts[p].next_fetch);
	}

	if (atomic_load(&st->done_true) + atomic_load(&st->done_false) != tracked)
		fail(-1, "%ld completions for %ld records",
		     atomic_load(&st->done_true) + atomic_load(&st->done_false), tracked);

	printf("stress_offsets: %ld tracked, %ld done, %ld stale ignored, %ld commits, "
	       "%ld pauses, %ld revokes, %ld lost; %d failures\n",
	       tracked, atomic_load(&st->done_true), atomic_load(&st->done_false), commits,
	       too_big, revokes, losts, failures);

	offsets_destroy(st->o);
	for (p = 0; p < NPART; p++)
		free(parts[p].tracked_epoch);
	pthread_mutex_destroy(&st->bag.mu);
	pthread_cond_destroy(&st->bag.not_empty);
	pthread_cond_destroy(&st->bag.not_full);
	free(st->done_epoch);
	free(st);
	return failures == 0 && tracked > 0 ? 0 : 1;
}
