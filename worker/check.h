/*
 * check.h - `wabot-worker check`: the diagnostics a person runs when
 * something is wrong. Prints the configuration with secrets hidden, then one
 * line per check, "ok", "warn" or "FAIL" with the reason:
 *   flow    the flow file loads and validates
 *   store   a set/get/delete round trip of a test key with a short TTL, with
 *           its latency (Redis: connect, TLS and AUTH included)
 *   kafka   the brokers answer
 *   topic   inbound, outbound and dead-letter topics exist (partitions)
 *   group   the group's state and members (warn when the brokers cannot say)
 *   lag     the group's total lag on the inbound topic
 * Exit codes: 0 when nothing failed (warnings allowed), 1 when a check
 * failed, 2 bad usage or configuration.
 * Owns, for the call: a context store and one observer Kafka client that
 * never joins the group and never commits. Writes only its own test key.
 */
#ifndef WB_CHECK_H
#define WB_CHECK_H

int check_main(int argc, char **argv, char **envp);

#endif /* WB_CHECK_H */
