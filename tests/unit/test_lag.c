/*
 * test_lag.c - the part of `wabot-worker lag` that no mock broker reaches:
 * reading partition owners out of a group member's assignment bytes (Kafka's
 * ConsumerProtocolAssignment: int16 version, int32 topic count, per topic an
 * int16-length name and an int32 count of int32 partitions, then user
 * data). Real brokers hand these bytes over in DescribeGroups; librdkafka
 * 2.0.2's mock does not implement it (itest_lag covers the rest).
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lag.h"

struct enc {
	unsigned char b[256];
	size_t n;
};

static void put16(struct enc *e, int v)
{
	e->b[e->n++] = (unsigned char)((unsigned)v >> 8);
	e->b[e->n++] = (unsigned char)v;
}

static void put32(struct enc *e, int32_t v)
{
	uint32_t u = (uint32_t)v;

	e->b[e->n++] = (unsigned char)(u >> 24);
	e->b[e->n++] = (unsigned char)(u >> 16);
	e->b[e->n++] = (unsigned char)(u >> 8);
	e->b[e->n++] = (unsigned char)u;
}

static void put_topic(struct enc *e, const char *name, const int32_t *parts, int n)
{
	int i;

	put16(e, (int)strlen(name));
	memcpy(e->b + e->n, name, strlen(name));
	e->n += strlen(name);
	put32(e, n);
	for (i = 0; i < n; i++)
		put32(e, parts[i]);
}

struct seen {
	int32_t p[16];
	int n;
};

static void collect(void *opaque, int32_t partition)
{
	struct seen *s = opaque;

	if (s->n < 16)
		s->p[s->n++] = partition;
}

/* version 1, wa.outbound {0, 9}, wa.inbound {3, 7, 12}, 4 bytes of user data */
static void sample(struct enc *e)
{
	static const int32_t out[] = {0, 9}, in[] = {3, 7, 12};

	memset(e, 0, sizeof(*e));
	put16(e, 1);
	put32(e, 2);
	put_topic(e, "wa.outbound", out, 2);
	put_topic(e, "wa.inbound", in, 3);
	put32(e, 0); /* user data: empty bytes */
}

Test(lag, assignment_yields_the_partitions_of_the_named_topic_only)
{
	struct enc e;
	struct seen s = {0};

	sample(&e);
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "wa.inbound", collect, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.p[0], 3);
	cr_assert_eq(s.p[1], 7);
	cr_assert_eq(s.p[2], 12);
	s.n = 0;
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "wa.in", collect, &s), 0, "a prefix is another topic");
	cr_assert_eq(s.n, 0);
}

Test(lag, malformed_assignment_reports_nothing_even_after_a_good_topic)
{
	static const int32_t in[] = {1, 2};
	struct enc e = {0};
	struct seen s = {0};

	put16(&e, 0);
	put32(&e, 2);
	put_topic(&e, "wa.inbound", in, 2);
	put16(&e, 40); /* a second topic name longer than what is left */
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "wa.inbound", collect, &s), -1);
	cr_assert_eq(s.n, 0, "partitions of a malformed assignment were reported");
}

Test(lag, empty_assignment_has_no_partitions)
{
	struct enc e = {0};
	struct seen s = {0};

	put16(&e, 0);
	put32(&e, 0);
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "wa.inbound", collect, &s), 0);
	cr_assert_eq(s.n, 0);
}

Test(lag, truncated_assignment_is_refused_at_every_length)
{
	struct enc e;
	size_t cut;

	sample(&e);
	/* every cut inside the topic list (the user data at the end is not read) */
	for (cut = 0; cut < e.n - 4; cut++) {
		struct seen s = {0};

		cr_assert_eq(lag_assignment_partitions(e.b, cut, "wa.inbound", collect, &s), -1, "cut at %zu", cut);
	}
	cr_assert_eq(lag_assignment_partitions(NULL, 0, "wa.inbound", collect, NULL), -1);
}

Test(lag, counts_beyond_the_buffer_or_negative_are_refused)
{
	struct enc e = {0};
	struct seen s = {0};

	put16(&e, 0);
	put32(&e, 1);
	put16(&e, 2);
	memcpy(e.b + e.n, "ab", 2);
	e.n += 2;
	put32(&e, 0x7fffffff); /* claims 2^31 partitions in a few bytes */
	put32(&e, 1);
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "ab", collect, &s), -1);
	cr_assert_eq(s.n, 0, "nothing reported from a lying assignment");

	memset(&e, 0, sizeof(e));
	put16(&e, 0);
	put32(&e, -1);
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "ab", collect, &s), -1);

	memset(&e, 0, sizeof(e));
	put16(&e, 0);
	put32(&e, 1);
	put16(&e, -3);
	cr_assert_eq(lag_assignment_partitions(e.b, e.n, "ab", collect, &s), -1);
}
