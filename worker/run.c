/*
 * run.c - `wabot-worker run` (run.h).
 */
#include "run.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "telemetry.h"

/* Waiting for the store at start: 250 ms doubling to 5 s. */
#define STORE_WAIT_FIRST_MS 250
#define STORE_WAIT_MAX_MS 5000

int run_parts_new(const struct wb_config *cfg, bool wait_for_store, struct run_parts *parts, char *errstr,
		  size_t errstr_size)
{
	char why[512];
	long wait_ms = STORE_WAIT_FIRST_MS;
	unsigned attempt;
	wb_err_t err;

	memset(parts, 0, sizeof(*parts));
	parts->flow = cfg->flow_file ? flow_load_file(cfg->flow_file, why, sizeof(why))
				     : flow_load_default(why, sizeof(why));
	if (!parts->flow) {
		snprintf(errstr, errstr_size, "flow file %s: %s", cfg->flow_file ? cfg->flow_file : "(built-in)", why);
		return 2;
	}
	for (attempt = 1; (err = ctx_store_open(&cfg->store, &parts->store, why, sizeof(why))) != WB_OK; attempt++) {
		if (!wait_for_store || !wb_err_is_retriable(err)) {
			snprintf(errstr, errstr_size, "context store unavailable: %s", why);
			run_parts_fini(parts);
			return 1;
		}
		log_at(LOG_WARN, "context store unreachable at start: waiting for it", LOG_UINT("attempt", attempt),
		       LOG_INT("retry_in_ms", wait_ms), LOG_STR("reason", why));
		clock_sleep_ms(wait_ms);
		wait_ms = wait_ms * 2 > STORE_WAIT_MAX_MS ? STORE_WAIT_MAX_MS : wait_ms * 2;
	}
	if (cfg->store_fallback == STORE_FALLBACK_MEMORY) {
		struct ctx_store_config mc = {
			.backend = CTX_BACKEND_MEMORY,
			.default_ttl_ms = cfg->store.default_ttl_ms,
			.audit = cfg->store.audit,
			.memory = {.max_entries = cfg->context_max_entries, .max_bytes = cfg->context_max_bytes},
		};

		if (!(parts->fallback = ctx_store_new(&mc, why, sizeof(why)))) {
			snprintf(errstr, errstr_size, "memory fallback store: %s", why);
			run_parts_fini(parts);
			return 1;
		}
	}
	return 0;
}

void run_parts_fini(struct run_parts *parts)
{
	ctx_store_destroy(parts->fallback);
	ctx_store_destroy(parts->store);
	flow_destroy(parts->flow);
	memset(parts, 0, sizeof(*parts));
}

static void signal_set(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGINT);
}

void run_block_signals(void)
{
	sigset_t s;

	signal_set(&s);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void *signal_thread(void *arg)
{
	consumer_t *c = arg;
	sigset_t s;
	int sig;

	signal_set(&s);
	if (sigwait(&s, &sig) == 0) {
		log_at(LOG_INFO, "signal received: shutting down", LOG_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
		consumer_stop(c);
	}
	return NULL;
}

int run_until_signal(consumer_t *c)
{
	pthread_t t;
	bool started = pthread_create(&t, NULL, signal_thread, c) == 0;
	int rc;

	if (!started)
		log_at(LOG_WARN, "no signal thread: SIGTERM will not shut down gracefully");
	rc = consumer_run(c);
	if (started) {
		pthread_cancel(t); /* sigwait is a cancellation point */
		pthread_join(t, NULL);
	}
	return rc;
}

void run_log_start(const struct wb_config *cfg, const struct run_parts *parts)
{
	log_at(LOG_INFO, "worker started", LOG_STR("group", cfg->group_id), LOG_STR("inbound", cfg->inbound_topic),
	       LOG_STR("outbound", cfg->outbound_topic), LOG_INT("threads", cfg->worker_threads),
	       LOG_STR("store", ctx_store_backend_name(parts->store)), LOG_STR("flow", flow_name(parts->flow)),
	       LOG_BOOL("memory_fallback", parts->fallback != NULL));
}

void run_log_stats(consumer_t *c, double seconds)
{
	struct consumer_stats cs;
	struct lanes_stats ls;

	consumer_get_stats(c, &cs, &ls);
	log_at(LOG_INFO, "worker stopped", LOG_UINT("records", cs.consumed), LOG_UINT("done", cs.done),
	       LOG_UINT("events", ls.events), LOG_UINT("replies", ls.replies), LOG_UINT("dead_lettered", ls.dlq),
	       LOG_UINT("duplicates", ls.duplicates), LOG_UINT("key_mismatch", ls.key_mismatch),
	       LOG_UINT("store_retries", ls.store_retries), LOG_UINT("poison", ls.poison),
	       LOG_UINT("output_failed", cs.failed), LOG_UINT("abandoned", cs.abandoned),
	       LOG_UINT("redone_after_rebalance", cs.redone), LOG_UINT("rebalances", cs.rebalances),
	       LOG_UINT("pauses", cs.pauses), LOG_UINT("room_waits", cs.room_waits), LOG_UINT("hold_waits", ls.hold_waits),
	       LOG_DOUBLE("seconds", seconds));
}

int run_main(int argc, char **argv, char **envp)
{
	struct wb_config cfg;
	struct run_parts parts;
	consumer_t *c;
	telemetry_t *tel;
	char errstr[512] = "";
	double t0;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: wabot-worker run [configuration flags]\n\n"
			       "Consumes WhatsApp events from INBOUND_TOPIC as member of the consumer group\n"
			       "KAFKA_GROUP_ID, advances each user's conversation (context in Redis, or in\n"
			       "memory when no Redis is configured) and produces the replies to\n"
			       "OUTBOUND_TOPIC and undecodable input to DLQ_TOPIC. Offsets are committed\n"
			       "only once an event's context is saved and its replies are acknowledged.\n"
			       "SIGTERM or SIGINT: finish in-flight events, commit, leave the group, exit 0.\n\n");
			config_usage(stdout);
			return 0;
		}
	}
	if (config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wabot-worker run: %s\n", errstr);
		return 2;
	}
	log_set_level(cfg.log_level);
	if (!cfg.kafka_brokers[0]) {
		fprintf(stderr, "wabot-worker run: KAFKA_BROKERS: required (host:port[,host:port...]); "
				"'wabot-worker demo' runs with a Kafka of its own\n");
		config_fini(&cfg);
		return 2;
	}
	kafka_log_version();
	if ((rc = run_parts_new(&cfg, true, &parts, errstr, sizeof(errstr))) != 0) {
		fprintf(stderr, "wabot-worker run: %s\n", errstr);
		config_fini(&cfg);
		return rc;
	}
	run_block_signals();
	if (!(c = consumer_new(&cfg, parts.flow, parts.store, parts.fallback, NULL, errstr, sizeof(errstr)))) {
		fprintf(stderr, "wabot-worker run: %s\n", errstr);
		run_parts_fini(&parts);
		config_fini(&cfg);
		return strstr(errstr, "Kafka property") ? 2 : 1;
	}
	{
		struct telemetry_opts to = {&cfg, c, parts.store, parts.fallback, NULL};

		if (!(tel = telemetry_new(&to, errstr, sizeof(errstr)))) {
			fprintf(stderr, "wabot-worker run: HTTP_PORT %d: %s\n", cfg.http_port, errstr);
			consumer_destroy(c);
			run_parts_fini(&parts);
			config_fini(&cfg);
			return 1;
		}
	}
	run_log_start(&cfg, &parts);
	t0 = clock_mono_s();
	rc = run_until_signal(c);
	/* the endpoints answer (not ready) until the consumer has closed */
	telemetry_destroy(tel);
	consumer_finish(c);
	run_log_stats(c, clock_mono_s() - t0);
	consumer_destroy(c);
	run_parts_fini(&parts);
	config_fini(&cfg);
	return rc;
}
