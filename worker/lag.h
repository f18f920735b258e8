/*
 * lag.h - `wabot-worker lag`: the consumer group's progress on the inbound
 * topic, per partition and in total, from the brokers themselves (what
 * KEDA and Burrow see): committed offset, high watermark, lag, and the
 * member that owns each partition now.
 *
 * lag = high watermark - committed offset; a partition the group never
 * committed counts everything still retained (high - low), which is what
 * a worker would process (auto.offset.reset=earliest).
 * Exit codes: 0 ok; 3 when the total lag exceeds --max-lag (to gate
 * scripts); 1 when Kafka cannot be asked; 2 bad usage or configuration.
 *
 * Owns, for the call: one rd_kafka_t that uses the worker's group.id to
 * read its offsets but never joins the group nor commits (KAFKA_OBSERVER).
 */
#ifndef WB_LAG_H
#define WB_LAG_H

#include <stddef.h>
#include <stdint.h>

/* Owners come from the group's member assignments (ConsumerProtocol
 * bytes). Parses one: calls fn(opaque, partition) for every partition of
 * `topic` in it. Returns 0, or -1 on malformed or truncated bytes, and then
 * fn was never called (nothing is trusted: every count and length is
 * checked against the buffer before anything is reported).
 * Exposed for the tests. */
int lag_assignment_partitions(const void *buf, size_t len, const char *topic,
			      void (*fn)(void *opaque, int32_t partition), void *opaque);

int lag_main(int argc, char **argv, char **envp);

#endif /* WB_LAG_H */
