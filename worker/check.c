/*
 * check.c - `wabot-worker check` (check.h).
 */
#include "check.h"

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "clock.h"
#include "config.h"
#include "ctx_store.h"
#include "flow.h"
#include "kafka.h"
#include "lag.h"
#include "log.h"

#define CHECK_DEFAULT_TIMEOUT_MS 5000
#define CHECK_KEY_TTL_MS 10000 /* the test key outlives a crashed check by this much at most */

enum verdict { CHECK_OK, CHECK_WARN, CHECK_FAIL };

struct check {
	const struct wb_config *cfg;
	int timeout_ms;
	unsigned failed;
	unsigned warned;
};

static void line(struct check *c, enum verdict v, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line(struct check *c, enum verdict v, const char *what, const char *fmt, ...)
{
	static const char *const names[] = {"ok", "warn", "FAIL"};
	va_list ap;

	if (v == CHECK_FAIL)
		c->failed++;
	else if (v == CHECK_WARN)
		c->warned++;
	printf("%-5s %-6s ", names[v], what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void check_usage(FILE *f)
{
	fprintf(f, "usage: wabot-worker check [--timeout-ms MS] [configuration flags]\n"
		   "\n"
		   "Diagnoses a worker's surroundings with the same configuration as 'run': prints\n"
		   "the settings (secrets hidden), then one line per check, ok / warn / FAIL with\n"
		   "the reason: the flow file; the context store (set, get and delete of a test key\n"
		   "with a %d s TTL, and the latency); the brokers; the inbound, outbound and\n"
		   "dead-letter topics and their partitions; the consumer group's state and lag.\n"
		   "Reads only, but for its own test key; never joins the group.\n"
		   "\n"
		   "  --timeout-ms MS how long each question to the brokers may take (default %d)\n"
		   "\n"
		   "Exit codes: 0 nothing failed, 1 a check failed, 2 bad usage or configuration.\n\n",
		CHECK_KEY_TTL_MS / 1000, CHECK_DEFAULT_TIMEOUT_MS);
	config_usage(f);
}

static void check_flow(struct check *c)
{
	char why[512];
	flow_t *f = c->cfg->flow_file ? flow_load_file(c->cfg->flow_file, why, sizeof(why))
				      : flow_load_default(why, sizeof(why));

	if (!f) {
		line(c, CHECK_FAIL, "flow", "%s: %s", c->cfg->flow_file ? c->cfg->flow_file : "(built-in)", why);
		return;
	}
	line(c, CHECK_OK, "flow", "%s (%s)", flow_name(f), c->cfg->flow_file ? c->cfg->flow_file : "built-in");
	flow_destroy(f);
}

/* "redis host:port db N (TLS, user u)" or "memory", without secrets. */
static void store_name(const struct wb_config *cfg, char *buf, size_t size)
{
	const struct wb_redis_target *r = &cfg->redis;

	if (!cfg->redis_source) {
		snprintf(buf, size, "memory (in this process: contexts die with it; no Redis configured)");
		return;
	}
	snprintf(buf, size, "redis %s:%d db %d%s%s%s (from %s)", r->host, r->port, r->db, r->tls ? ", TLS" : "",
		 r->user ? ", user " : "", r->user ? r->user : "", cfg->redis_source);
}

static double ms_since(int64_t t0_us)
{
	return (double)(clock_mono_us() - t0_us) / 1000.0;
}

/* set, get (compare), delete, get (gone) of a key of our own. */
static void check_store(struct check *c)
{
	char name[400], why[512], key[96], json[128], host[64] = "";
	struct ctx_value v;
	ctx_store_t *cs = NULL;
	double t_open, t_set, t_get, t_del;
	int64_t t0 = clock_mono_us();
	wb_err_t err;

	store_name(c->cfg, name, sizeof(name));
	if ((err = ctx_store_open(&c->cfg->store, &cs, why, sizeof(why))) != WB_OK) {
		line(c, CHECK_FAIL, "store", "%s: %s", name, why);
		return;
	}
	t_open = ms_since(t0);
	(void)gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++) /* store keys are printable ASCII without spaces */
		if (*p <= 0x20 || *p >= 0x7f)
			*p = '_';
	snprintf(key, sizeof(key), "wabot-worker-check-%s-%ld", host, (long)getpid());
	snprintf(json, sizeof(json), "{\"check\":\"%lld\"}", (long long)clock_mono_us());
	ctx_value_init(&v);

	t0 = clock_mono_us();
	err = ctx_store_put(cs, key, json, strlen(json), CTX_VERSION_ANY, CHECK_KEY_TTL_MS, NULL);
	t_set = ms_since(t0);
	if (err != WB_OK) {
		line(c, CHECK_FAIL, "store", "%s: set of a test key failed: %s", name, wb_err_str(err));
		goto out;
	}
	t0 = clock_mono_us();
	err = ctx_store_get(cs, key, &v);
	t_get = ms_since(t0);
	if (err != WB_OK || !v.found || !strstr(v.json, json + 1)) {
		line(c, CHECK_FAIL, "store", "%s: the test key just set %s", name,
		     err != WB_OK ? wb_err_str(err) : !v.found ? "is not there" : "came back different");
		goto out;
	}
	t0 = clock_mono_us();
	err = ctx_store_del(cs, key);
	t_del = ms_since(t0);
	if (err != WB_OK) {
		line(c, CHECK_FAIL, "store", "%s: delete of the test key failed: %s", name, wb_err_str(err));
		goto out;
	}
	if ((err = ctx_store_get(cs, key, &v)) != WB_OK || v.found) {
		line(c, CHECK_FAIL, "store", "%s: the deleted test key %s", name,
		     err != WB_OK ? wb_err_str(err) : "is still there");
		goto out;
	}
	if (c->cfg->redis_source)
		line(c, CHECK_OK, "store", "%s: connected (and authenticated) in %.1f ms; set %.2f ms, get %.2f ms, "
		     "delete %.2f ms", name, t_open, t_set, t_get, t_del);
	else
		line(c, CHECK_OK, "store", "%s: set, get and delete of a test key work", name);
out:
	ctx_value_fini(&v);
	ctx_store_destroy(cs);
}

static void check_kafka(struct check *c)
{
	const char *topics[] = {c->cfg->inbound_topic, c->cfg->outbound_topic, c->cfg->dlq_topic};
	const char *roles[] = {"inbound", "outbound", "dead letters"};
	char errstr[512], why[512];
	struct lag_report lr = {0};
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	int32_t n;
	int64_t t0;
	size_t i;
	bool reachable = true;

	if (!c->cfg->kafka_brokers[0]) {
		line(c, CHECK_FAIL, "kafka", "KAFKA_BROKERS is not set ('run' needs it)");
		return;
	}
	if (!(conf = kafka_conf_new(c->cfg, KAFKA_OBSERVER, NULL, errstr, sizeof(errstr)))) {
		line(c, CHECK_FAIL, "kafka", "%s", errstr);
		return;
	}
	if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
		rd_kafka_conf_destroy(conf);
		line(c, CHECK_FAIL, "kafka", "cannot create a Kafka client: %s", why);
		return;
	}
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]) && reachable; i++) {
		t0 = clock_mono_us();
		switch (lag_topic_partitions(rk, topics[i], c->timeout_ms, &n, errstr, sizeof(errstr))) {
		case 0:
			if (i == 0)
				line(c, CHECK_OK, "kafka", "%s answers (%.1f ms)", c->cfg->kafka_brokers, ms_since(t0));
			line(c, CHECK_OK, "topic", "%s (%s): %d partitions", topics[i], roles[i], (int)n);
			break;
		case -1:
			line(c, CHECK_FAIL, "kafka", "%s: %s", c->cfg->kafka_brokers, errstr);
			reachable = false;
			break;
		default:
			if (i == 0)
				line(c, CHECK_OK, "kafka", "%s answers (%.1f ms)", c->cfg->kafka_brokers, ms_since(t0));
			line(c, CHECK_FAIL, "topic", "%s (%s): %s", topics[i], roles[i], errstr);
			break;
		}
	}
	if (reachable && lag_collect(c->cfg, rk, c->timeout_ms, &lr, errstr, sizeof(errstr)) == 0) {
		if (lr.owners_error[0])
			line(c, CHECK_WARN, "group", "%s: state unknown: %s", c->cfg->group_id, lr.owners_error);
		else
			line(c, CHECK_OK, "group", "%s: %s, %d members", c->cfg->group_id,
			     lr.state && *lr.state ? lr.state : "no such group yet", lr.members);
		line(c, CHECK_OK, "lag", "%lld records behind over %d partitions ('wabot-worker lag' for each)",
		     (long long)lr.total, (int)lr.n);
	} else if (reachable && lr.n > 0) {
		line(c, CHECK_FAIL, "group", "%s: %s", c->cfg->group_id, errstr);
	}
	lag_report_fini(&lr);
	rd_kafka_destroy(rk);
}

int check_main(int argc, char **argv, char **envp)
{
	const char *timeout_s = NULL;
	const struct args_flag flags[] = {{"--timeout-ms", true, &timeout_s}};
	struct wb_config cfg;
	struct check c = {0};
	char errstr[512] = "";
	char summary[4096];
	int64_t timeout = CHECK_DEFAULT_TIMEOUT_MS;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			check_usage(stdout);
			return 0;
		}
	}
	if (!args_take(&argc, argv, flags, 1, errstr, sizeof(errstr))) {
		fprintf(stderr, "wabot-worker check: %s\n", errstr);
		return 2;
	}
	if (timeout_s && !args_i64(timeout_s, 1, 600000, &timeout)) {
		fprintf(stderr, "wabot-worker check: --timeout-ms: 1..600000 (got \"%.20s\")\n", timeout_s);
		return 2;
	}
	if (config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr)) != WB_OK) {
		/* a bad setting is the first thing check reports, in the same words */
		printf("FAIL  config %s\n", errstr);
		return 2;
	}
	/* the lines say what failed; librdkafka's and the store's own log lines
	 * would repeat it on stderr (LOG_LEVEL=debug shows them) */
	log_set_level(cfg.log_level == LOG_DEBUG ? LOG_DEBUG : LOG_OFF);
	c.cfg = &cfg;
	c.timeout_ms = (int)timeout;
	config_summary(&cfg, summary, sizeof(summary));
	printf("configuration (secrets hidden):\n");
	for (char *p = summary, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		printf("  %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
		if (!nl)
			break;
	}
	check_flow(&c);
	check_store(&c);
	check_kafka(&c);
	printf("%s: %u failed, %u warnings\n", c.failed ? "check failed" : "check passed", c.failed, c.warned);
	config_fini(&cfg);
	return c.failed ? 1 : 0;
}
