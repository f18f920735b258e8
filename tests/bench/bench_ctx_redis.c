/*
 * bench_ctx_redis.c - what batching buys with the Redis backend: contexts per
 * second and microseconds per round trip for one get + one put per context,
 * against batches of 100 (get_many + put_many, through the script, and
 * held: get_many_held + put_many_held, as the worker does), on a redis-server started
 * here on loopback (plain; "tls" as argument for TLS).
 * Prints figures and the round trips per batch taken from the store's own
 * stats, then after each phase redis-server's own cost per command (INFO
 * commandstats: calls and usec_per_call, reset before the phase; a script
 * call's usec includes the commands it runs); asserts nothing about timings. Loopback hides network latency: on a
 * real network each saved round trip is worth one RTT more.
 * Usage: bench_ctx_redis [tls] [contexts]   (default 20000 contexts)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx_store.h"
#include "log.h"
#include "redis_server.h"

#define BATCH 100

/* A context of a realistic size (about 230 bytes). */
static const char ctx_json[] =
	"{\"last_intent\":\"consulta_saldo\",\"customer_name\":\"Ana Maria Rodriguez\","
	"\"ministry_name\":\"Ministerio de Hacienda\",\"conversation_step\":\"confirmar_datos\","
	"\"recent_event_ids\":[\"wamid.HBgLNTczMDAxMjM0NTY3\",\"wamid.HBgLNTczMDAxMjM0NTY4\"]}";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t round_trips(ctx_store_t *cs)
{
	struct ctx_store_stats st;

	ctx_store_stats(cs, &st);
	return st.round_trips;
}

static struct redis_server *rs;

/* INFO commandstats since the last reset, one line per command used. */
static void print_commandstats(void)
{
	char *out = redis_server_cli(rs, "INFO", "commandstats", NULL);
	char *line, *save = NULL;

	if (!out)
		return;
	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		unsigned long calls = 0;
		double usec = 0, per = 0;
		char name[64];

		if (sscanf(line, "cmdstat_%63[^:]:calls=%lu,usec=%lf,usec_per_call=%lf", name, &calls, &usec,
			   &per) == 4 &&
		    strcmp(name, "info") != 0 && strcmp(name, "config|resetstat") != 0 &&
		    strcmp(name, "script|load") != 0)
			printf("    server %-10s %8lu calls  %7.2f usec/call  %6.1f ms total\n", name, calls, per,
			       usec / 1000.0);
	}
	free(out);
}

static void reset_commandstats(void)
{
	free(redis_server_cli(rs, "CONFIG", "RESETSTAT", NULL));
}

static void key_of(char *buf, size_t n, int i)
{
	snprintf(buf, n, "+5730%08d", i);
}

/* One get and one compare-and-set put per context: two round trips each. */
static int run_single(ctx_store_t *cs, int contexts, bool print)
{
	struct ctx_value v;
	uint64_t rt0 = round_trips(cs);
	double t0 = now_s(), dt;
	int errors = 0;

	ctx_value_init(&v);
	for (int i = 0; i < contexts; i++) {
		char key[24];

		key_of(key, sizeof key, i);
		if (ctx_store_get(cs, key, &v) != WB_OK ||
		    ctx_store_put(cs, key, ctx_json, sizeof ctx_json - 1, v.found ? v.version : 0, 0, NULL) !=
			    WB_OK)
			errors++;
	}
	dt = now_s() - t0;
	ctx_value_fini(&v);
	if (!print)
		return errors;
	printf("single   get+put  %7d contexts  %9.0f contexts/s  %7.1f us/round trip  "
	       "%.2f round trips/context\n",
	       contexts, contexts / dt, dt * 1e6 / (double)(round_trips(cs) - rt0),
	       (double)(round_trips(cs) - rt0) / contexts);
	return errors;
}

/* get_many then put_many of BATCH contexts: one round trip each. held:
 * get_many_held + put_many_held (WATCH, then MULTI/EXEC), the worker's
 * calls; else the compare-and-set script. */
static int run_batches(ctx_store_t *cs, int contexts, bool held)
{
	static struct ctx_get_item gets[BATCH];
	static struct ctx_put_item puts[BATCH];
	static char keys[BATCH][24];
	int batches = contexts / BATCH, errors = 0;
	uint64_t rt0 = round_trips(cs);
	double t0, dt, t_get = 0, t_put = 0, t1;

	for (int i = 0; i < BATCH; i++)
		ctx_value_init(&gets[i].value);
	t0 = now_s();
	for (int b = 0; b < batches; b++) {
		for (int i = 0; i < BATCH; i++) {
			key_of(keys[i], sizeof keys[i], b * BATCH + i);
			gets[i].key = keys[i];
		}
		ctx_hold_t *hold = NULL;

		t1 = now_s();
		if ((held ? ctx_store_get_many_held(cs, gets, BATCH, &hold) : ctx_store_get_many(cs, gets, BATCH)) !=
		    WB_OK)
			errors++;
		t_get += now_s() - t1;
		for (int i = 0; i < BATCH; i++)
			puts[i] = (struct ctx_put_item){
				.key = keys[i],
				.json = ctx_json,
				.len = sizeof ctx_json - 1,
				.expected_version = gets[i].value.found ? gets[i].value.version : 0,
			};
		t1 = now_s();
		if ((held ? ctx_store_put_many_held(cs, hold, puts, BATCH) : ctx_store_put_many(cs, puts, BATCH)) !=
		    WB_OK)
			errors++;
		t_put += now_s() - t1;
	}
	dt = now_s() - t0;
	for (int i = 0; i < BATCH; i++)
		ctx_value_fini(&gets[i].value);
	printf("batch%-3d get+put%s  %7d contexts  %9.0f contexts/s  %7.1f us/round trip  "
	       "%.2f round trips/batch call\n",
	       BATCH, held ? " (held: WATCH + MULTI/EXEC)" : " (script)", batches * BATCH, batches * BATCH / dt, dt * 1e6 / (double)(round_trips(cs) - rt0),
	       (double)(round_trips(cs) - rt0) / (2.0 * batches));
	printf("    get_many %6.2f us/context, put_many %6.2f us/context (client wall time)\n",
	       t_get * 1e6 / (batches * BATCH), t_put * 1e6 / (batches * BATCH));
	return errors;
}

int main(int argc, char **argv)
{
	bool tls = argc > 1 && strcmp(argv[1], "tls") == 0;
	int contexts = argc > 1 + tls ? atoi(argv[1 + tls]) : 20000;
	struct ctx_store_config cfg = {
		.backend = CTX_BACKEND_REDIS,
		.redis = {
			.host = tls ? "localhost" : "127.0.0.1",
			.tls = tls,
			.tls_verify = true,
			.pool_size = 1,
		},
	};
	ctx_store_t *cs;
	char err[256] = "";
	int errors = 0;

	if (contexts < BATCH)
		contexts = BATCH;
	log_set_level(LOG_WARN);
	rs = redis_server_start(tls ? REDIS_SERVER_TLS : REDIS_SERVER_PLAIN);
	if (!rs) {
		fprintf(stderr, "bench_ctx_redis: cannot start redis-server\n");
		return 1;
	}
	cfg.redis.port = redis_server_port(rs);
	if (tls) {
		cfg.redis.password = REDIS_SERVER_PASSWORD_VALUE;
		cfg.redis.tls_ca_file = redis_server_ca_file(rs);
	}
	cs = ctx_store_new(&cfg, err, sizeof err);
	if (!cs) {
		fprintf(stderr, "bench_ctx_redis: %s\n", err);
		redis_server_stop(rs);
		return 1;
	}
	printf("redis-server on loopback (%s), one connection, context %zu bytes\n", tls ? "TLS" : "plain",
	       sizeof ctx_json - 1);
	errors += run_single(cs, 1000, false); /* warm-up */
	reset_commandstats();
	errors += run_single(cs, contexts, true);
	print_commandstats();
	reset_commandstats();
	errors += run_batches(cs, contexts, false);
	print_commandstats();
	reset_commandstats();
	errors += run_batches(cs, contexts, true);
	print_commandstats();
	if (errors)
		printf("errors: %d\n", errors);
	ctx_store_destroy(cs);
	redis_server_stop(rs);
	return errors ? 1 : 0;
}
