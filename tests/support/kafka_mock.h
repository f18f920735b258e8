/*
 * kafka_mock.h - librdkafka's mock Kafka cluster for tests and benchmarks,
 * run as a child process (the wb-mock-kafka tool) and stopped by its PID.
 *
 * Owns: the child and the write end of its stdin pipe. The child runs with
 * --exit-on-stdin-eof, so it exits by itself when this process dies, however
 * it dies (the pipe's last write end closes). Not thread-safe: one thread
 * starts and stops a mock.
 *
 * What the librdkafka 2.0.2 mock serves (tests/unit/test_kafka_mock.c checks
 * what the worker relies on; the rest was observed with debug=feature,cgrp
 * and two- and three-member groups):
 *  - Produce v0..7, also idempotent (InitProducerId v0..4); Fetch v0..11.
 *  - Consumer groups: FindCoordinator, JoinGroup v0..5, SyncGroup,
 *    Heartbeat, LeaveGroup, with range and with cooperative-sticky
 *    (incremental assign/unassign; with a third member joining, the second,
 *    incremental round hands over the revoked partitions as it should).
 *  - OffsetCommit v0..7 and OffsetFetch v0..5: rd_kafka_commit and
 *    rd_kafka_committed, by subscribed members and by assign()-only ones.
 *  - ListOffsets v0..5 for BEGINNING/END (watermarks); a lookup by
 *    timestamp (rd_kafka_offsets_for_times) answers -1 even when a record
 *    matches: not implemented.
 *  - Metadata v0..2 only: no AllowAutoTopicCreation flag, so any request
 *    naming a missing topic creates it with 4 partitions, whatever
 *    allow.auto.create.topics says (librdkafka logs an AUTOCREATE warning).
 *  - Not served: CreateTopics/DeleteTopics and the other admin APIs,
 *    DescribeGroups/ListGroups, SASL.
 *  - Static membership (group.instance.id) is accepted and ignored: a
 *    restarted member joins as a new one, its old self lingers until
 *    session.timeout.ms, then everyone rebalances (about 10 s with a 6 s
 *    session timeout, where a dynamic member's LeaveGroup takes 5 s).
 * Timing (observed): a group's first join waits 3 s (the mock's
 * group.initial.rebalance.delay); each later round took session.timeout.ms
 * minus 1 s (5 s with 6 s), so a cooperative member joining a group costs
 * two such rounds. rd_kafka_mock_cluster_destroy takes 0 or 1 s, so a stop
 * can take a second.
 */
#ifndef WB_TEST_KAFKA_MOCK_H
#define WB_TEST_KAFKA_MOCK_H

#include <sys/types.h>

/* The topics wb-mock-kafka creates when given none. */
#define KAFKA_MOCK_DEFAULT_TOPICS "wa.inbound:16,wa.outbound:16,wa.dlq:4"

struct kafka_mock;

/*
 * Starts wb-mock-kafka with `brokers` brokers (1..8) and the topics in
 * topics_spec, "name:partitions" separated by commas (NULL: the defaults
 * above), and waits up to 10 s for its bootstrap line.
 * Returns NULL with a reason on stderr when it cannot (bad spec: the tool's
 * own message, which it prints before exiting with 2).
 * Caller owns the result; stop it with kafka_mock_stop().
 */
struct kafka_mock *kafka_mock_start(const char *topics_spec, int brokers);

/*
 * SIGTERM, then SIGKILL after 3 s; waits for the child and frees km.
 * Returns the child's exit code (0 after a clean stop; under ASan, LSan's
 * exit code when the mock leaked), -1 when it had to be killed, or when
 * km is NULL (allowed).
 */
int kafka_mock_stop(struct kafka_mock *km);

/* "127.0.0.1:port[,...]" for bootstrap.servers. Borrowed: valid until stop. */
const char *kafka_mock_bootstrap(const struct kafka_mock *km);

/* Sets every broker's round-trip time to ms (0: none), through the tool's
 * stdin ("rtt MS"), and gives the mock 200 ms to apply it. Holds produce
 * acknowledgements (and everything else) back. 0, or -1 when the pipe is
 * gone. */
int kafka_mock_set_rtt(struct kafka_mock *km, int ms);

/* PID of the wb-mock-kafka process (to pause it with SIGSTOP, say). */
pid_t kafka_mock_pid(const struct kafka_mock *km);

/* Path of the wb-mock-kafka binary (for tests that run it themselves). */
const char *kafka_mock_binary(void);

#endif /* WB_TEST_KAFKA_MOCK_H */
