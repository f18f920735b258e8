/*
 * telemetry.h - what `wabot-worker run` shows the people who run it, on
 * HTTP_PORT (worker/http.c):
 *   /metrics  Prometheus text: records, events by provider and kind, dead
 *             letters by reason, duplicates, replies produced and failed,
 *             context hits/misses/errors, the store's latency histogram,
 *             Redis used_memory, memory-store entries and bytes, queue depth
 *             per worker thread, assigned and paused partitions, rebalances,
 *             consumer lag per partition three ways (committed as the brokers
 *             see it, done but not yet committed, in flight) plus its time
 *             lag and the total, readiness and build info;
 *   /healthz  200 while the poll loop turns, no worker thread is stalled and
 *             the group has not been out of a steady state for more than
 *             twice max.poll.interval.ms; else 503 with the reasons;
 *   /readyz   200 once the group is joined (steady) and the context store
 *             answers, and until shutdown starts; else 503 with the reasons.
 *
 * Lag comes from the brokers, not from librdkafka's statistics: a refresh
 * thread asks every TELEMETRY_REFRESH_MS for the committed offsets of the
 * assigned partitions and their watermarks (librdkafka stops refreshing the
 * high watermark of a paused partition), probes the store and reads Redis'
 * used_memory. Scrapes render from that snapshot and from counters; they
 * never wait on the network. A revoked partition's series disappear with it.
 *
 * Owns: the HTTP server, the refresh thread, the snapshot (under a mutex).
 * Borrows the config, the consumer and the stores, which must outlive it.
 */
#ifndef WB_TELEMETRY_H
#define WB_TELEMETRY_H

#include <stddef.h>

#include "config.h"
#include "consumer.h"
#include "ctx_store.h"

typedef struct telemetry telemetry_t;

/* How often the refresh thread asks the brokers and the store. */
#define TELEMETRY_REFRESH_MS 2000

struct telemetry_opts {
	const struct wb_config *cfg; /* HTTP_PORT (cfg->http_port; 0: no server), topics, limits */
	consumer_t *consumer;
	ctx_store_t *store;
	ctx_store_t *fallback;       /* --store-fallback memory, or NULL */
	const char *bind_address;    /* NULL: all addresses */
};

/*
 * Starts serving (nothing at all when cfg->http_port is 0: returns a handle
 * that does nothing). NULL with errstr when the server cannot start (the
 * port is taken) or memory runs out. Thread: any.
 */
telemetry_t *telemetry_new(const struct telemetry_opts *o, char *errstr, size_t errstr_size);

/* The port served (0: none). */
int telemetry_port(const telemetry_t *t);

/* Stops the server and the refresh thread; NULL ok. Call before the
 * consumer is finished or destroyed. */
void telemetry_destroy(telemetry_t *t);

#endif /* WB_TELEMETRY_H */
