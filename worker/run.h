/*
 * run.h - `wabot-worker run`, the main job: configuration -> flow, context
 * store(s), consumer (with its producer and lanes) -> poll until SIGTERM or
 * SIGINT -> graceful shutdown -> exit code. Also the parts `demo` shares.
 * Owns nothing beyond the call.
 */
#ifndef WB_RUN_H
#define WB_RUN_H

#include <stdbool.h>

#include "config.h"
#include "consumer.h"
#include "ctx_store.h"
#include "flow.h"

/* The parts a worker needs besides Kafka. Filled by run_parts_new. */
struct run_parts {
	flow_t *flow;
	ctx_store_t *store;
	ctx_store_t *fallback; /* --store-fallback memory, else NULL */
};

/* Loads the flow and opens the store(s). Returns 0, 2 (bad flow file:
 * configuration) or 1 (store unreachable or refusing), with the reason in
 * errstr. With wait_for_store, a store that does not answer (nothing
 * listening yet, no reply in time) is tried again with backoff, logged,
 * for as long as it takes (a pod that starts before its Redis); a store
 * that refuses (wrong password, untrusted certificate) fails at once. */
int run_parts_new(const struct wb_config *cfg, bool wait_for_store, struct run_parts *parts, char *errstr,
		  size_t errstr_size);
void run_parts_fini(struct run_parts *parts);

/*
 * Runs c until SIGTERM or SIGINT (blocked in every thread by the caller with
 * run_block_signals() before any thread starts; a helper thread waits for
 * them) and returns consumer_run's result.
 */
int run_until_signal(consumer_t *c);
void run_block_signals(void);

/* Logs the settings a worker starts with. */
void run_log_start(const struct wb_config *cfg, const struct run_parts *parts);

/* Logs the end-of-run counters of c. */
void run_log_stats(consumer_t *c, double seconds);

int run_main(int argc, char **argv, char **envp);

#endif /* WB_RUN_H */
