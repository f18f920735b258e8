/*
 * test_offsets.c - the completion tracker against the contract in
 * worker/offsets.h, single-threaded (the races are in
 * tests/stress/stress_offsets.c). Each test owns one offsets_t and frees it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "offsets.h"

static offsets_t *new_or_die(uint32_t max_in_flight, int32_t max_partitions)
{
	char err[128] = "";
	offsets_t *o = offsets_new(max_in_flight, max_partitions, err, sizeof(err));

	cr_assert_not_null(o, "offsets_new: %s", err);
	return o;
}

static uint32_t assign(offsets_t *o, int32_t p)
{
	uint32_t epoch = 0;

	cr_assert_eq(offsets_assign(o, p, &epoch), WB_OK);
	cr_assert_neq(epoch, 0);
	return epoch;
}

static void track(offsets_t *o, int32_t p, int64_t offset, uint32_t want_epoch)
{
	uint32_t epoch = 0;

	cr_assert_eq(offsets_track(o, p, offset, &epoch), WB_OK, "track %lld", (long long)offset);
	cr_assert_eq(epoch, want_epoch);
}

static void expect_commit(offsets_t *o, int32_t p, int64_t want)
{
	int64_t next = -7;

	cr_assert(offsets_commit_point(o, p, &next), "no commit point, want %lld", (long long)want);
	cr_assert_eq(next, want, "commit point %lld, want %lld", (long long)next, (long long)want);
}

static void expect_no_commit(offsets_t *o, int32_t p)
{
	int64_t next = -7;

	cr_assert_not(offsets_commit_point(o, p, &next));
	cr_assert_eq(next, -7, "next written without a commit point");
}

Test(offsets, contiguous_prefix_with_out_of_order_completions)
{
	offsets_t *o = new_or_die(16, 4);
	uint32_t e = assign(o, 1);
	int64_t off;

	for (off = 10; off <= 14; off++)
		track(o, 1, off, e);
	expect_no_commit(o, 1);
	cr_assert(offsets_done(o, 1, 12, e));
	cr_assert(offsets_done(o, 1, 11, e));
	expect_no_commit(o, 1); /* 10 still running */
	cr_assert_eq(offsets_in_flight(o, 1), 5);
	cr_assert(offsets_done(o, 1, 10, e));
	expect_commit(o, 1, 13);
	cr_assert_eq(offsets_in_flight(o, 1), 2);
	cr_assert(offsets_done(o, 1, 14, e));
	expect_no_commit(o, 1); /* 13 still running */
	cr_assert(offsets_done(o, 1, 13, e));
	expect_commit(o, 1, 15);
	cr_assert_eq(offsets_in_flight(o, 1), 0);
	offsets_destroy(o);
}

Test(offsets, commit_point_only_when_advanced)
{
	offsets_t *o = new_or_die(4, 1);
	uint32_t e = assign(o, 0);

	expect_no_commit(o, 0); /* nothing tracked */
	track(o, 0, 0, e);
	track(o, 0, 1, e);
	cr_assert(offsets_done(o, 0, 0, e));
	expect_commit(o, 0, 1);
	expect_no_commit(o, 0); /* same point again: nothing new */
	expect_no_commit(o, 0);
	cr_assert(offsets_done(o, 0, 1, e));
	expect_commit(o, 0, 2);
	expect_no_commit(o, 0);
	offsets_destroy(o);
}

Test(offsets, gaps_in_offsets)
{
	offsets_t *o = new_or_die(8, 2);
	uint32_t e = assign(o, 0);

	track(o, 0, 5, e);
	track(o, 0, 9, e);   /* 6..8 compacted away */
	track(o, 0, 20, e);  /* a transaction marker and more in between */
	cr_assert_not(offsets_done(o, 0, 7, e), "7 was never tracked");
	cr_assert(offsets_done(o, 0, 9, e));
	expect_no_commit(o, 0);
	cr_assert(offsets_done(o, 0, 5, e));
	expect_commit(o, 0, 10);
	cr_assert(offsets_done(o, 0, 20, e));
	expect_commit(o, 0, 21);
	offsets_destroy(o);
}

Test(offsets, done_of_unknown_twice_or_released_offset_is_false)
{
	offsets_t *o = new_or_die(8, 2);
	uint32_t e = assign(o, 0);

	track(o, 0, 100, e);
	track(o, 0, 101, e);
	cr_assert_not(offsets_done(o, 0, 99, e));
	cr_assert_not(offsets_done(o, 0, 102, e));
	cr_assert(offsets_done(o, 0, 100, e));
	cr_assert_not(offsets_done(o, 0, 100, e), "second done");
	expect_commit(o, 0, 101);
	cr_assert_not(offsets_done(o, 0, 100, e), "released");
	cr_assert_not(offsets_done(o, 1, 100, e), "unassigned partition");
	cr_assert_not(offsets_done(o, 2, 100, e), "out of range");
	cr_assert_not(offsets_done(o, -1, 100, e), "negative partition");
	cr_assert(offsets_done(o, 0, 101, e));
	expect_commit(o, 0, 102);
	offsets_destroy(o);
}

/* revoke and lost must behave the same inside the module. */
static void stale_epoch_after(wb_err_t (*forget)(offsets_t *, int32_t))
{
	offsets_t *o = new_or_die(8, 4);
	uint32_t e1 = assign(o, 3), e2;

	track(o, 3, 40, e1);
	track(o, 3, 41, e1);
	cr_assert(offsets_done(o, 3, 41, e1));
	cr_assert_eq(forget(o, 3), WB_OK);
	cr_assert_eq(forget(o, 3), WB_ERR_NOT_FOUND, "already forgotten");
	cr_assert_not(offsets_done(o, 3, 40, e1), "done of a forgotten assignment");
	cr_assert_eq(offsets_in_flight(o, 3), 0);
	expect_no_commit(o, 3);
	cr_assert_eq(offsets_track(o, 3, 42, NULL), WB_ERR_NOT_FOUND);

	/* Reassigned: redelivered from the committed offset, under a new epoch. */
	e2 = assign(o, 3);
	cr_assert_neq(e2, e1);
	track(o, 3, 40, e2);
	track(o, 3, 41, e2);
	cr_assert_not(offsets_done(o, 3, 40, e1), "stale epoch after reassign");
	cr_assert_not(offsets_done(o, 3, 41, e1), "stale epoch after reassign");
	expect_no_commit(o, 3);
	cr_assert_eq(offsets_in_flight(o, 3), 2);
	cr_assert(offsets_done(o, 3, 40, e2));
	expect_commit(o, 3, 41);
	cr_assert(offsets_done(o, 3, 41, e2));
	expect_commit(o, 3, 42);
	offsets_destroy(o);
}

Test(offsets, stale_epoch_after_revoke_then_reassign)
{
	stale_epoch_after(offsets_revoke);
}

Test(offsets, stale_epoch_after_lost_then_reassign)
{
	stale_epoch_after(offsets_lost);
}

Test(offsets, epochs_grow_at_assign_revoke_and_lost)
{
	offsets_t *o = new_or_die(2, 1);
	uint32_t e1 = assign(o, 0), e2, e3;

	cr_assert_eq(offsets_revoke(o, 0), WB_OK);
	e2 = assign(o, 0);
	cr_assert_eq(offsets_lost(o, 0), WB_OK);
	e3 = assign(o, 0);
	cr_assert_eq(e2, e1 + 2);
	cr_assert_eq(e3, e2 + 2);
	offsets_destroy(o);
}

Test(offsets, too_big_until_commit_point_releases)
{
	offsets_t *o = new_or_die(3, 1);
	uint32_t e = assign(o, 0);

	track(o, 0, 0, e);
	track(o, 0, 1, e);
	track(o, 0, 2, e);
	cr_assert_eq(offsets_track(o, 0, 3, NULL), WB_ERR_TOO_BIG);
	cr_assert_eq(offsets_in_flight(o, 0), 3);
	cr_assert(offsets_done(o, 0, 0, e));
	cr_assert_eq(offsets_track(o, 0, 3, NULL), WB_ERR_TOO_BIG, "done but not released");
	expect_commit(o, 0, 1);
	track(o, 0, 3, e); /* the refused offset goes in once there is room */
	cr_assert_eq(offsets_track(o, 0, 4, NULL), WB_ERR_TOO_BIG);
	offsets_destroy(o);
}

Test(offsets, invalid_offsets)
{
	offsets_t *o = new_or_die(4, 1);
	uint32_t e = assign(o, 0);

	cr_assert_eq(offsets_track(o, 0, -1, NULL), WB_ERR_INVALID);
	track(o, 0, 10, e);
	cr_assert_eq(offsets_track(o, 0, 10, NULL), WB_ERR_INVALID, "same offset");
	cr_assert_eq(offsets_track(o, 0, 9, NULL), WB_ERR_INVALID, "going back");
	cr_assert(offsets_done(o, 0, 10, e));
	expect_commit(o, 0, 11);
	cr_assert_eq(offsets_track(o, 0, 10, NULL), WB_ERR_INVALID, "below a released offset");
	cr_assert_eq(offsets_in_flight(o, 0), 0);
	track(o, 0, 11, e);
	offsets_destroy(o);
}

Test(offsets, not_found_and_bad_partitions)
{
	offsets_t *o = new_or_die(4, 8);
	int64_t next;

	cr_assert_eq(offsets_track(o, 0, 1, NULL), WB_ERR_NOT_FOUND, "never assigned");
	cr_assert_eq(offsets_track(o, 8, 1, NULL), WB_ERR_NOT_FOUND, "out of range");
	cr_assert_eq(offsets_track(o, -1, 1, NULL), WB_ERR_NOT_FOUND);
	cr_assert_eq(offsets_assign(o, 8, NULL), WB_ERR_INVALID);
	cr_assert_eq(offsets_assign(o, -1, NULL), WB_ERR_INVALID);
	cr_assert_eq(offsets_revoke(o, 0), WB_ERR_NOT_FOUND);
	cr_assert_eq(offsets_lost(o, 8), WB_ERR_NOT_FOUND);
	cr_assert_not(offsets_commit_point(o, 8, &next));
	cr_assert_eq(offsets_in_flight(o, 8), 0);
	cr_assert_eq(offsets_assign(o, 7, NULL), WB_OK);
	cr_assert_eq(offsets_assign(o, 7, NULL), WB_ERR_INVALID, "already assigned");
	offsets_destroy(o);
}

Test(offsets, new_rejects_bad_bounds_and_destroy_takes_null)
{
	char err[128] = "";

	cr_assert_null(offsets_new(0, 1, err, sizeof(err)));
	cr_assert_str_neq(err, "");
	err[0] = '\0';
	cr_assert_null(offsets_new(OFFSETS_MAX_IN_FLIGHT + 1, 1, err, sizeof(err)));
	cr_assert_str_neq(err, "");
	cr_assert_null(offsets_new(1, 0, NULL, 0));
	cr_assert_null(offsets_new(1, OFFSETS_MAX_PARTITIONS + 1, NULL, 0));
	offsets_destroy(NULL);
}

/* Bursts of random size and gaps through a ring of 7, completed in reverse
 * (and sometimes partly), over many laps: the commit point must always be the
 * last offset of the done prefix + 1. */
Test(offsets, ring_wrap_around_over_many_cycles)
{
	enum { CAP = 7, CYCLES = 20000 };
	offsets_t *o = new_or_die(CAP, 1);
	uint32_t e = assign(o, 0);
	int64_t pending[CAP], offset = 0;
	int npending = 0, cycle, i;

	srand(12345);
	for (cycle = 0; cycle < CYCLES; cycle++) {
		int burst = CAP - npending;

		for (i = 0; i < burst; i++) {
			offset += 1 + (rand() % 4 == 0 ? rand() % 5 : 0);
			track(o, 0, offset, e);
			pending[npending++] = offset;
		}
		cr_assert_eq(offsets_track(o, 0, offset + 1, NULL), WB_ERR_TOO_BIG);
		/* Complete all but the first k, newest first, then the first k
		 * except the oldest kept back for the next cycle (or not). */
		int keep = rand() % 3; /* 0: complete all */
		for (i = npending - 1; i >= keep; i--)
			cr_assert(offsets_done(o, 0, pending[i], e));
		if (keep == 0) {
			expect_commit(o, 0, pending[npending - 1] + 1);
			npending = 0;
		} else {
			expect_no_commit(o, 0);
			/* Finish the kept ones next: complete 1..keep-1, hold 0. */
			for (i = keep - 1; i >= 1; i--)
				cr_assert(offsets_done(o, 0, pending[i], e));
			expect_no_commit(o, 0);
			cr_assert(offsets_done(o, 0, pending[0], e));
			expect_commit(o, 0, pending[npending - 1] + 1);
			npending = 0;
		}
		cr_assert_eq(offsets_in_flight(o, 0), 0);
	}
	offsets_destroy(o);
}

/* Many partitions at once, each with its own offsets and epoch. */
Test(offsets, many_partitions)
{
	enum { NP = 4096, PER = 3 };
	offsets_t *o = new_or_die(PER, NP);
	static uint32_t epochs[NP];
	int32_t p;
	int i;

	for (p = 0; p < NP; p++) {
		epochs[p] = assign(o, p);
		for (i = 0; i < PER; i++)
			track(o, p, (int64_t)p * 1000 + i * 2, epochs[p]);
	}
	cr_assert_eq(offsets_assign(o, NP, NULL), WB_ERR_INVALID);
	/* Complete everything but the first record of the odd partitions. */
	for (p = NP - 1; p >= 0; p--)
		for (i = PER - 1; i >= (p % 2); i--)
			cr_assert(offsets_done(o, p, (int64_t)p * 1000 + i * 2, epochs[p]));
	for (p = 0; p < NP; p++) {
		if (p % 2 == 0) {
			expect_commit(o, p, (int64_t)p * 1000 + (PER - 1) * 2 + 1);
			cr_assert_eq(offsets_in_flight(o, p), 0);
		} else {
			expect_no_commit(o, p);
			cr_assert_eq(offsets_in_flight(o, p), PER);
		}
	}
	/* Losing one partition leaves the others alone. */
	cr_assert_eq(offsets_lost(o, 1), WB_OK);
	cr_assert_not(offsets_done(o, 1, 1000, epochs[1]));
	cr_assert(offsets_done(o, 3, 3000, epochs[3]));
	expect_commit(o, 3, 3005);
	offsets_destroy(o);
}

/* offsets_current (read without the slot's lock) follows every change of
 * assignment: only the epoch of the live assignment is current. */
Test(offsets, current_is_true_only_for_the_live_assignment_epoch)
{
	offsets_t *o = new_or_die(8, 4);
	uint32_t e1, e2, e3;

	cr_assert_not(offsets_current(o, 1, 0), "never assigned");
	cr_assert_not(offsets_current(o, 1, 1), "never assigned");
	cr_assert_not(offsets_current(o, 9, 1), "no such partition");
	e1 = assign(o, 1);
	cr_assert(offsets_current(o, 1, e1));
	cr_assert_not(offsets_current(o, 1, e1 + 1));
	cr_assert_not(offsets_current(o, 1, 0), "epoch 0 names no assignment");
	cr_assert_not(offsets_current(o, 2, e1), "another partition");
	cr_assert_eq(offsets_revoke(o, 1), WB_OK);
	cr_assert_not(offsets_current(o, 1, e1), "revoked");
	e2 = assign(o, 1);
	cr_assert_neq(e2, e1);
	cr_assert(offsets_current(o, 1, e2));
	cr_assert_not(offsets_current(o, 1, e1), "an older assignment");
	cr_assert_eq(offsets_lost(o, 1), WB_OK);
	cr_assert_not(offsets_current(o, 1, e2), "lost");
	e3 = assign(o, 1);
	cr_assert(offsets_current(o, 1, e3));
	offsets_destroy(o);
}
