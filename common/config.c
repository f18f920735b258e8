/*
 * config.c - environment + flags -> struct wb_config (see config.h).
 *
 * Two passes. The first only collects raw values: for every setting the
 * value (borrowed from envp/argv) and the name of where it came from (the
 * variable, or the flag when a flag overrode it), plus the KAFKA_PROP_ list
 * in order. The second converts and checks every setting in table order and
 * stops at the first problem, so an error always names the variable or flag
 * the user actually wrote. Owns nothing between calls; during config_load it
 * owns the partly filled wb_config and frees it on failure.
 *
 * Numbers are parsed by hand (digits only, overflow checked) rather than with
 * strtoll, which would accept leading spaces, a sign and "0x" prefixes.
 * Values are echoed in errors only after cfg_clean() (printable ASCII, cut),
 * and never for the Redis connection settings or Kafka property values.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest value echoed in an error or summary before it is cut with "...". */
#define CFG_ECHO_MAX 64

/* Room for one cleaned echo: CFG_ECHO_MAX bytes, "...", NUL. */
#define CFG_ECHO_SIZE (CFG_ECHO_MAX + 4)

/* Room for one problem text from a parser, before it gets its prefix. */
#define CFG_PROBLEM_SIZE 256

#define CFG_KAFKA_PROP_ENV "KAFKA_PROP_"
#define CFG_KAFKA_PROP_FLAG "--kafka-prop"

enum cfg_opt {
	OPT_KAFKA_BROKERS,
	OPT_GROUP_ID,
	OPT_GROUP_INSTANCE_ID,
	OPT_INBOUND_TOPIC,
	OPT_OUTBOUND_TOPIC,
	OPT_DLQ_TOPIC,
	OPT_WORKER_THREADS,
	OPT_QUEUE_DEPTH,
	OPT_MAX_IN_FLIGHT,
	OPT_EVENT_MAX_ATTEMPTS,
	OPT_SHUTDOWN_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_REDIS_URL,
	OPT_AZURE_REDIS,
	OPT_STORE_FALLBACK,
	OPT_CONTEXT_TTL,
	OPT_FLOW_FILE,
	OPT_HTTP_PORT,
	OPT_LOG_LEVEL,
	OPT_AUDIT_LOG,
	OPT_MAX_ENTRIES,
	OPT_MAX_BYTES,
	OPT_REDIS_CA_FILE,
	OPT_REDIS_TLS_SERVER_NAME,
	OPT_REDIS_TLS_VERIFY,
	OPT_REDIS_CONNECT_TIMEOUT,
	OPT_REDIS_COMMAND_TIMEOUT,
	OPT_REDIS_POOL_SIZE,
	OPT_ACS_API_VERSION,
	OPT__COUNT
};

/* One setting: its variable, its flag, and the text config_usage prints. */
struct cfg_opt_def {
	const char *env;
	const char *flag;
	const char *def;  /* default, as shown to people */
	const char *help;
};

static const struct cfg_opt_def cfg_opts[OPT__COUNT] = {
	[OPT_KAFKA_BROKERS] = {"KAFKA_BROKERS", "--kafka-brokers", "(none)",
			       "bootstrap brokers, host:port[,host:port...]"},
	[OPT_GROUP_ID] = {"KAFKA_GROUP_ID", "--group-id", CONFIG_DEFAULT_GROUP_ID,
			  "consumer group id"},
	[OPT_GROUP_INSTANCE_ID] = {"KAFKA_GROUP_INSTANCE_ID", "--group-instance-id",
				   "(none: dynamic membership)",
				   "static membership id, e.g. the pod name; 1..249 of A-Za-z0-9._-"},
	[OPT_INBOUND_TOPIC] = {"INBOUND_TOPIC", "--inbound-topic", CONFIG_DEFAULT_INBOUND_TOPIC,
			       "topic of inbound WhatsApp events"},
	[OPT_OUTBOUND_TOPIC] = {"OUTBOUND_TOPIC", "--outbound-topic",
				CONFIG_DEFAULT_OUTBOUND_TOPIC, "topic of replies"},
	[OPT_DLQ_TOPIC] = {"DLQ_TOPIC", "--dlq-topic", CONFIG_DEFAULT_DLQ_TOPIC,
			   "topic of undecodable events"},
	[OPT_WORKER_THREADS] = {"WORKER_THREADS", "--worker-threads", "online CPUs",
				"worker threads, 1..256"},
	[OPT_QUEUE_DEPTH] = {"WORKER_QUEUE_DEPTH", "--worker-queue-depth", "2048",
			     "records queued per worker thread, 1..1048576"},
	[OPT_MAX_IN_FLIGHT] = {"MAX_IN_FLIGHT_PER_PARTITION", "--max-in-flight-per-partition",
			       "10000",
			       "records of a partition not yet committed before it pauses, 1..1048576"},
	[OPT_EVENT_MAX_ATTEMPTS] = {"EVENT_MAX_ATTEMPTS", "--event-max-attempts", "5",
				    "tries of a record the store keeps failing, then DLQ, 1..100"},
	[OPT_SHUTDOWN_TIMEOUT] = {"SHUTDOWN_TIMEOUT_SECONDS", "--shutdown-timeout-seconds", "25",
				  "stop signal to exit, seconds, 1..3600"},
	[OPT_DRAIN_TIMEOUT] = {"DRAIN_TIMEOUT_SECONDS", "--drain-timeout-seconds", "10",
			       "revocation wait for in-flight events, seconds, 1..600"},
	[OPT_REDIS_URL] = {"REDIS_URL", "--redis-url", "(none: memory store)",
			   "redis[s]://[[user]:password@]host[:port][/db]; selects Redis"},
	[OPT_AZURE_REDIS] = {"AZURE_REDIS_CONNECTIONSTRING", "--azure-redis",
			     "(none: memory store)",
			     "host:6380,password=...,ssl=True,...; selects Redis"},
	[OPT_STORE_FALLBACK] = {"STORE_FALLBACK", "--store-fallback", "none",
				"none or memory: keep contexts in memory while Redis is down (Redis only)"},
	[OPT_CONTEXT_TTL] = {"CONTEXT_TTL_SECONDS", "--context-ttl", "3600",
			     "context lifetime after the last write, seconds, 1..2592000"},
	[OPT_FLOW_FILE] = {"FLOW_FILE", "--flow-file", "(built-in flow)",
			   "conversation flow JSON file"},
	[OPT_HTTP_PORT] = {"HTTP_PORT", "--http-port", "9090",
			   "/metrics /healthz /readyz port, 0..65535, 0 = off"},
	[OPT_LOG_LEVEL] = {"LOG_LEVEL", "--log-level", "info",
			   "debug, info, warn, error or off"},
	[OPT_AUDIT_LOG] = {"AUDIT_LOG", "--audit-log", "false",
			   "one info line per context read/write/delete (masked phone, result, latency)"},
	[OPT_MAX_ENTRIES] = {"CONTEXT_MAX_ENTRIES", "--context-max-entries", "1000000",
			     "memory store: most contexts kept, 0 = unbounded"},
	[OPT_MAX_BYTES] = {"CONTEXT_MAX_BYTES", "--context-max-bytes", "512m",
			   "memory store: most bytes kept (suffix k, m, g), 0 = unbounded"},
	[OPT_REDIS_CA_FILE] = {"REDIS_TLS_CA_FILE", "--redis-ca-file", "(system CAs)",
			       "PEM CA bundle for rediss:// / ssl=True"},
	[OPT_REDIS_TLS_SERVER_NAME] = {"REDIS_TLS_SERVER_NAME", "--redis-tls-server-name",
				       "(the host)", "TLS SNI and name to verify"},
	[OPT_REDIS_TLS_VERIFY] = {"REDIS_TLS_VERIFY", "--redis-tls-verify", "true",
				  "verify the Redis certificate: true/false, yes/no, 1/0, on/off"},
	[OPT_REDIS_CONNECT_TIMEOUT] = {"REDIS_CONNECT_TIMEOUT_MS", "--redis-connect-timeout-ms",
				       "2000", "connect + TLS + AUTH, ms, 1..60000"},
	[OPT_REDIS_COMMAND_TIMEOUT] = {"REDIS_COMMAND_TIMEOUT_MS", "--redis-command-timeout-ms",
				       "1000", "one round trip, ms, 1..60000"},
	[OPT_REDIS_POOL_SIZE] = {"REDIS_POOL_SIZE", "--redis-pool-size", "worker threads",
				 "Redis connections, 1..256"},
	[OPT_ACS_API_VERSION] = {"ACS_API_VERSION", "--acs-api-version", CONFIG_DEFAULT_ACS_API_VERSION,
				 "api-version in the path of ACS replies, YYYY-MM-DD[-preview]"},
};

/* One KAFKA_PROP_ entry or --kafka-prop flag, borrowed from envp/argv. */
struct cfg_raw_prop {
	const char *name;
	size_t name_len;
	const char *value;
};

/* The first pass: what was written where. Everything is borrowed. */
struct cfg_raw {
	const char *val[OPT__COUNT]; /* NULL: not written; "" counts as not set */
	const char *src[OPT__COUNT]; /* cfg_opts[i].env or .flag */
	struct cfg_raw_prop *props;
	size_t nprops;
};

/* ---- small helpers ------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static void cfg_err(char *errstr, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (errstr == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, size, fmt, ap);
	va_end(ap);
}

/* s as printable ASCII for an error or summary: other bytes become '?',
 * more than CFG_ECHO_MAX bytes are cut with "...". out has CFG_ECHO_SIZE. */
static const char *cfg_clean_n(const char *s, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n && o < CFG_ECHO_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static const char *cfg_clean(const char *s, char *out)
{
	return cfg_clean_n(s, strlen(s), out);
}

static bool cfg_is_set(const char *v)
{
	return v != NULL && v[0] != '\0';
}

static bool cfg_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits only, no sign or space, value <= max. */
static bool cfg_parse_u64_n(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		uint64_t d;

		if (!cfg_is_digit(s[i]))
			return false;
		d = (uint64_t)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool cfg_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return cfg_parse_u64_n(s, strlen(s), max, out);
}

/* A whole number in [min, max] (min >= 0). */
static bool cfg_parse_int_range(const char *s, int min, int max, int *out)
{
	uint64_t v;

	if (!cfg_parse_u64(s, (uint64_t)max, &v) || v < (uint64_t)min)
		return false;
	*out = (int)v;
	return true;
}

/* Bytes with an optional k/m/g suffix (binary units), at most INT64_MAX. */
static bool cfg_parse_size(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t mult = 1, v;

	if (n > 0) {
		switch (s[n - 1]) {
		case 'k': case 'K': mult = UINT64_C(1) << 10; n--; break;
		case 'm': case 'M': mult = UINT64_C(1) << 20; n--; break;
		case 'g': case 'G': mult = UINT64_C(1) << 30; n--; break;
		default: break;
		}
	}
	if (!cfg_parse_u64_n(s, n, INT64_MAX, &v) || v > INT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

static bool cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* 1..249 of [A-Za-z0-9._-]: a Kafka topic name without the "."/".." rule. */
static bool cfg_is_kafka_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 249)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || cfg_is_digit(c) ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Kafka's rule: 1..249 of [A-Za-z0-9._-], and not "." or "..". */
static bool cfg_topic_is_valid(const char *s)
{
	return cfg_is_kafka_name(s) && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static char *cfg_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Frees a string that may hold a secret, wiping it first. */
static void cfg_free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

bool config_kafka_prop_is_secret(const char *name)
{
	static const char *const words[] = {
		"password", "secret", "sasl.jaas", "sasl.oauthbearer.config", "ssl.key.pem",
	};
	char lower[256];
	size_t i, n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n >= sizeof lower)
		return true; /* longer than any real property: treat as secret */
	for (i = 0; i < n; i++) {
		char c = name[i];

		lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	lower[n] = '\0';
	for (i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strstr(lower, words[i]) != NULL)
			return true;
	}
	return false;
}

/* ---- Redis targets ------------------------------------------------------ */

void config_redis_target_fini(struct wb_redis_target *t)
{
	if (t == NULL)
		return;
	free(t->host);
	free(t->user);
	cfg_free_secret(t->password);
	free(t->tls_server_name);
	memset(t, 0, sizeof *t);
}

static bool cfg_is_hostname_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || cfg_is_digit(c) || c == '.' ||
	       c == '-' || c == '_';
}

/*
 * host[:port] or [ipv6][:port] in s[0..n) -> out->host, out->port.
 * Problems go to errstr without any of the text.
 */
static wb_err_t cfg_parse_host_port(const char *s, size_t n, int default_port,
				    struct wb_redis_target *out, char *errstr, size_t size)
{
	const char *host, *port = NULL;
	size_t host_len, port_len = 0, i;
	uint64_t p;

	if (n == 0) {
		cfg_err(errstr, size, "host is missing");
		return WB_ERR_CONFIG;
	}
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		char addr[INET6_ADDRSTRLEN + 1];
		unsigned char bin[16];

		if (rb == NULL) {
			cfg_err(errstr, size, "IPv6 host is missing its closing ']'");
			return WB_ERR_CONFIG;
		}
		host = s + 1;
		host_len = (size_t)(rb - host);
		if (host_len == 0) {
			cfg_err(errstr, size, "host is missing");
			return WB_ERR_CONFIG;
		}
		if (host_len >= sizeof addr) {
			cfg_err(errstr, size, "host in [] is not a valid IPv6 address");
			return WB_ERR_CONFIG;
		}
		memcpy(addr, host, host_len);
		addr[host_len] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			cfg_err(errstr, size, "host in [] is not a valid IPv6 address");
			return WB_ERR_CONFIG;
		}
		i = (size_t)(rb - s) + 1;
		if (i < n) {
			if (s[i] != ':') {
				cfg_err(errstr, size, "unexpected text after the IPv6 address");
				return WB_ERR_CONFIG;
			}
			port = s + i + 1;
			port_len = n - i - 1;
		}
	} else {
		const char *colon = memchr(s, ':', n);

		host = s;
		host_len = colon != NULL ? (size_t)(colon - s) : n;
		if (colon != NULL) {
			port = colon + 1;
			port_len = n - host_len - 1;
			if (memchr(port, ':', port_len) != NULL) {
				cfg_err(errstr, size,
					"an IPv6 host must be written in brackets, e.g. [::1]:6379");
				return WB_ERR_CONFIG;
			}
		}
		if (host_len == 0) {
			cfg_err(errstr, size, "host is missing");
			return WB_ERR_CONFIG;
		}
		for (i = 0; i < host_len; i++) {
			if (!cfg_is_hostname_char(host[i])) {
				cfg_err(errstr, size,
					"host may only contain letters, digits, '.', '-' and '_'");
				return WB_ERR_CONFIG;
			}
		}
	}

	if (port == NULL) {
		out->port = default_port;
	} else if (cfg_parse_u64_n(port, port_len, 65535, &p) && p >= 1) {
		out->port = (int)p;
	} else {
		cfg_err(errstr, size, "port must be 1..65535");
		return WB_ERR_CONFIG;
	}
	out->host = cfg_strndup(host, host_len);
	if (out->host == NULL) {
		cfg_err(errstr, size, "out of memory");
		return WB_ERR_NOMEM;
	}
	return WB_OK;
}

static int cfg_hex_value(char c)
{
	if (cfg_is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into a new string *out; what names the part. */
static wb_err_t cfg_pct_decode(const char *s, size_t n, const char *what, char **out,
			       char *errstr, size_t size)
{
	char *d = malloc(n + 1);
	size_t i, o = 0;

	if (d == NULL) {
		cfg_err(errstr, size, "out of memory");
		return WB_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? cfg_hex_value(s[i + 1]) : -1;
			int lo = i + 2 < n ? cfg_hex_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				cfg_err(errstr, size, "%s has a bad %%-escape (use %%XX)", what);
				explicit_bzero(d, o);
				free(d);
				return WB_ERR_CONFIG;
			}
			if (hi == 0 && lo == 0) {
				cfg_err(errstr, size, "%s must not contain %%00", what);
				explicit_bzero(d, o);
				free(d);
				return WB_ERR_CONFIG;
			}
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[o++] = s[i];
		}
	}
	d[o] = '\0';
	*out = d;
	return WB_OK;
}

wb_err_t config_parse_redis_url(const char *url, struct wb_redis_target *out, char *errstr,
				size_t errstr_size)
{
	struct wb_redis_target t;
	const char *rest, *at, *hostport, *slash, *end;
	wb_err_t err;

	memset(&t, 0, sizeof t);
	if (errstr != NULL && errstr_size > 0)
		errstr[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (url == NULL || url[0] == '\0') {
		cfg_err(errstr, errstr_size, "is empty");
		return WB_ERR_CONFIG;
	}
	if (strncasecmp(url, "redis://", 8) == 0) {
		rest = url + 8;
	} else if (strncasecmp(url, "rediss://", 9) == 0) {
		rest = url + 9;
		t.tls = true;
	} else if (strstr(url, "://") != NULL) {
		cfg_err(errstr, errstr_size, "unknown scheme (use redis:// or rediss:// for TLS)");
		return WB_ERR_CONFIG;
	} else {
		cfg_err(errstr, errstr_size, "must start with redis:// or rediss:// (TLS)");
		return WB_ERR_CONFIG;
	}
	end = rest + strlen(rest);

	/* Credentials end at the last '@': host, port and db cannot hold one. */
	at = strrchr(rest, '@');
	hostport = at != NULL ? at + 1 : rest;
	if (strchr(hostport, '?') != NULL) {
		cfg_err(errstr, errstr_size,
			"query options (?...) are not supported; use the REDIS_* variables");
		return WB_ERR_CONFIG;
	}
	if (strchr(hostport, '#') != NULL) {
		cfg_err(errstr, errstr_size, "a fragment (#...) is not allowed");
		return WB_ERR_CONFIG;
	}
	if (at != NULL) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));

		if (colon == NULL) {
			cfg_err(errstr, errstr_size,
				"credentials must be user:password@ or :password@ (no ':' before '@')");
			return WB_ERR_CONFIG;
		}
		if (colon + 1 == at) {
			cfg_err(errstr, errstr_size, "password is empty");
			return WB_ERR_CONFIG;
		}
		if (colon > rest) {
			err = cfg_pct_decode(rest, (size_t)(colon - rest), "user", &t.user, errstr,
					     errstr_size);
			if (err != WB_OK)
				goto fail;
		}
		err = cfg_pct_decode(colon + 1, (size_t)(at - colon - 1), "password", &t.password,
				     errstr, errstr_size);
		if (err != WB_OK)
			goto fail;
	}

	slash = strchr(hostport, '/');
	err = cfg_parse_host_port(hostport, (size_t)((slash != NULL ? slash : end) - hostport), 6379,
				  &t, errstr, errstr_size);
	if (err != WB_OK)
		goto fail;
	if (slash != NULL && slash[1] != '\0') {
		const char *db = slash + 1;
		size_t ndigits = strspn(db, "0123456789");
		uint64_t v;

		if (ndigits == 0 || !cfg_parse_u64_n(db, ndigits, 65535, &v)) {
			cfg_err(errstr, errstr_size, "database must be a number from 0 to 65535");
			err = WB_ERR_CONFIG;
			goto fail;
		}
		if (db[ndigits] != '\0') {
			cfg_err(errstr, errstr_size, "unexpected text after the database number");
			err = WB_ERR_CONFIG;
			goto fail;
		}
		t.db = (int)v;
	}
	if (out == NULL) {
		config_redis_target_fini(&t);
		return WB_OK;
	}
	*out = t;
	return WB_OK;

fail:
	config_redis_target_fini(&t);
	return err;
}

/* The StackExchange.Redis options accepted and ignored. */
static const char *const cfg_azure_ignored[] = {
	"abortConnect", "allowAdmin", "asyncTimeout", "channelPrefix",
	"checkCertificateRevocation", "configChannel", "configCheckSeconds", "connectRetry",
	"heartbeatInterval", "highPrioritySocketThreads", "keepAlive", "name", "protocol",
	"proxy", "resolveDns", "responseTimeout", "serviceName", "setlib", "sslProtocols",
	"tiebreaker", "tunnel", "version", "writeBuffer",
};

static bool cfg_key_is(const char *key, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(key, name, n) == 0;
}

static bool cfg_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends of s[0..*n). */
static const char *cfg_trim(const char *s, size_t *n)
{
	while (*n > 0 && cfg_is_space(s[0])) {
		s++;
		(*n)--;
	}
	while (*n > 0 && cfg_is_space(s[*n - 1]))
		(*n)--;
	return s;
}

/* One key=value option of an Azure connection string into t. */
static wb_err_t cfg_azure_option(const char *key, size_t klen, const char *val, size_t vlen,
				 struct wb_redis_target *t, char *errstr, size_t size)
{
	char **dst = NULL;
	const char *what = NULL;
	uint64_t v;
	size_t i;

	if (cfg_key_is(key, klen, "password")) {
		dst = &t->password;
		what = "password";
	} else if (cfg_key_is(key, klen, "user")) {
		dst = &t->user;
		what = "user";
	} else if (cfg_key_is(key, klen, "sslHost")) {
		dst = &t->tls_server_name;
		what = "sslHost";
	}
	if (dst != NULL) {
		if (vlen == 0) {
			cfg_err(errstr, size, "%s is empty", what);
			return WB_ERR_CONFIG;
		}
		if (dst == &t->password)
			cfg_free_secret(*dst);
		else
			free(*dst);
		*dst = cfg_strndup(val, vlen);
		if (*dst == NULL) {
			cfg_err(errstr, size, "out of memory");
			return WB_ERR_NOMEM;
		}
		return WB_OK;
	}
	if (cfg_key_is(key, klen, "ssl")) {
		if (vlen == 4 && strncasecmp(val, "true", 4) == 0) {
			t->tls = true;
		} else if (vlen == 5 && strncasecmp(val, "false", 5) == 0) {
			t->tls = false;
		} else {
			cfg_err(errstr, size, "ssl must be True or False");
			return WB_ERR_CONFIG;
		}
		return WB_OK;
	}
	if (cfg_key_is(key, klen, "defaultDatabase")) {
		if (!cfg_parse_u64_n(val, vlen, 65535, &v)) {
			cfg_err(errstr, size, "defaultDatabase must be a number from 0 to 65535");
			return WB_ERR_CONFIG;
		}
		t->db = (int)v;
		return WB_OK;
	}
	if (cfg_key_is(key, klen, "connectTimeout") || cfg_key_is(key, klen, "syncTimeout")) {
		bool connect = cfg_key_is(key, klen, "connectTimeout");

		if (!cfg_parse_u64_n(val, vlen, 60000, &v) || v < 1) {
			cfg_err(errstr, size, "%s must be a number of milliseconds from 1 to 60000",
				connect ? "connectTimeout" : "syncTimeout");
			return WB_ERR_CONFIG;
		}
		if (connect)
			t->connect_timeout_ms = (int)v;
		else
			t->command_timeout_ms = (int)v;
		return WB_OK;
	}
	for (i = 0; i < sizeof cfg_azure_ignored / sizeof cfg_azure_ignored[0]; i++) {
		if (cfg_key_is(key, klen, cfg_azure_ignored[i]))
			return WB_OK;
	}
	{
		char clean[CFG_ECHO_SIZE];

		cfg_err(errstr, size, "unknown option \"%s\"", cfg_clean_n(key, klen, clean));
	}
	return WB_ERR_CONFIG;
}

wb_err_t config_parse_azure_redis(const char *cs, struct wb_redis_target *out, char *errstr,
				  size_t errstr_size)
{
	struct wb_redis_target t;
	const char *host = NULL, *p;
	size_t host_len = 0;
	wb_err_t err;

	memset(&t, 0, sizeof t);
	if (errstr != NULL && errstr_size > 0)
		errstr[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (cs == NULL) {
		cfg_err(errstr, errstr_size, "is empty");
		return WB_ERR_CONFIG;
	}

	for (p = cs;;) {
		size_t n = strcspn(p, ",");
		const char *next = p[n] == ',' ? p + n + 1 : p + n;
		const char *elem = cfg_trim(p, &n);
		const char *eq = memchr(elem, '=', n);

		if (n == 0) {
			/* empty element: skipped */
		} else if (eq == NULL) {
			if (host != NULL) {
				cfg_err(errstr, errstr_size,
					"only one host[:port] is supported (an element without '=' follows it)");
				err = WB_ERR_CONFIG;
				goto fail;
			}
			host = elem;
			host_len = n;
		} else {
			size_t klen = (size_t)(eq - elem), vlen = n - klen - 1;
			const char *key = cfg_trim(elem, &klen);
			const char *val = cfg_trim(eq + 1, &vlen);

			if (host == NULL) {
				cfg_err(errstr, errstr_size,
					"host is missing (the first element must be host[:port])");
				err = WB_ERR_CONFIG;
				goto fail;
			}
			if (klen == 0) {
				cfg_err(errstr, errstr_size, "an option has an empty name before '='");
				err = WB_ERR_CONFIG;
				goto fail;
			}
			err = cfg_azure_option(key, klen, val, vlen, &t, errstr, errstr_size);
			if (err != WB_OK)
				goto fail;
		}
		if (*next == '\0')
			break;
		p = next;
	}
	if (host == NULL) {
		cfg_err(errstr, errstr_size, "host is missing");
		err = WB_ERR_CONFIG;
		goto fail;
	}
	err = cfg_parse_host_port(host, host_len, t.tls ? 6380 : 6379, &t, errstr, errstr_size);
	if (err != WB_OK)
		goto fail;
	if (out == NULL) {
		config_redis_target_fini(&t);
		return WB_OK;
	}
	*out = t;
	return WB_OK;

fail:
	config_redis_target_fini(&t);
	return err;
}

/* ---- pass 1: collect ---------------------------------------------------- */

/* KAFKA_PROP_<name>=value or a non-prop variable of the table into raw. */
static wb_err_t cfg_collect_env(struct cfg_raw *raw, char **envp, char *errstr, size_t size)
{
	size_t i, k, plen = strlen(CFG_KAFKA_PROP_ENV);

	for (i = 0; envp != NULL && envp[i] != NULL; i++) {
		const char *e = envp[i];
		const char *eq = strchr(e, '=');

		if (eq == NULL)
			continue;
		if (strncmp(e, CFG_KAFKA_PROP_ENV, plen) == 0) {
			if (eq == e + plen) {
				cfg_err(errstr, size, "%s: empty property name (use %s<name>=value)",
					CFG_KAFKA_PROP_ENV, CFG_KAFKA_PROP_ENV);
				return WB_ERR_CONFIG;
			}
			raw->props[raw->nprops].name = e + plen;
			raw->props[raw->nprops].name_len = (size_t)(eq - e) - plen;
			raw->props[raw->nprops].value = eq + 1;
			raw->nprops++;
			continue;
		}
		for (k = 0; k < OPT__COUNT; k++) {
			size_t n = strlen(cfg_opts[k].env);

			if ((size_t)(eq - e) == n && strncmp(e, cfg_opts[k].env, n) == 0) {
				if (raw->val[k] == NULL) { /* first wins, as getenv */
					raw->val[k] = eq + 1;
					raw->src[k] = cfg_opts[k].env;
				}
				break;
			}
		}
	}
	return WB_OK;
}

static wb_err_t cfg_collect_flags(struct cfg_raw *raw, int argc, char **argv, char *errstr,
				  size_t size)
{
	int i;

	for (i = 0; i < argc && argv[i] != NULL; i++) {
		const char *a = argv[i];
		size_t name_len = strcspn(a, "=");
		const char *value;
		const char *flag = NULL;
		size_t k;
		int opt = -1;

		if (strncmp(a, "--", 2) != 0 || name_len == 2) {
			cfg_err(errstr, size,
				"argument #%d: not a --flag (a value with spaces needs quotes)",
				i + 1);
			return WB_ERR_CONFIG;
		}
		if (name_len == strlen(CFG_KAFKA_PROP_FLAG) &&
		    strncmp(a, CFG_KAFKA_PROP_FLAG, name_len) == 0) {
			flag = CFG_KAFKA_PROP_FLAG;
		} else {
			for (k = 0; k < OPT__COUNT; k++) {
				if (strlen(cfg_opts[k].flag) == name_len &&
				    strncmp(a, cfg_opts[k].flag, name_len) == 0) {
					flag = cfg_opts[k].flag;
					opt = (int)k;
					break;
				}
			}
		}
		if (flag == NULL) {
			char clean[CFG_ECHO_SIZE];

			cfg_err(errstr, size, "%s: unknown flag (see --help)",
				cfg_clean_n(a, name_len, clean));
			return WB_ERR_CONFIG;
		}
		if (a[name_len] == '=') {
			value = a + name_len + 1;
		} else if (i + 1 < argc && argv[i + 1] != NULL && strncmp(argv[i + 1], "--", 2) != 0) {
			value = argv[++i];
		} else {
			cfg_err(errstr, size, "%s: needs a value (%s VALUE or %s=VALUE)", flag, flag,
				flag);
			return WB_ERR_CONFIG;
		}

		if (opt >= 0) {
			raw->val[opt] = value;
			raw->src[opt] = flag;
			continue;
		}
		{
			const char *eq = strchr(value, '=');

			if (eq == NULL) {
				cfg_err(errstr, size, "%s: expected name=value", flag);
				return WB_ERR_CONFIG;
			}
			if (eq == value) {
				cfg_err(errstr, size, "%s: empty property name (use name=value)", flag);
				return WB_ERR_CONFIG;
			}
			raw->props[raw->nprops].name = value;
			raw->props[raw->nprops].name_len = (size_t)(eq - value);
			raw->props[raw->nprops].value = eq + 1;
			raw->nprops++;
		}
	}
	return WB_OK;
}

/* ---- pass 2: convert and check ------------------------------------------ */

/* "<src>: must be a whole number from lo to hi (got "v")" when not. */
static wb_err_t cfg_int(const struct cfg_raw *raw, enum cfg_opt k, int lo, int hi, int def,
			int *out, char *errstr, size_t size)
{
	char clean[CFG_ECHO_SIZE];

	if (!cfg_is_set(raw->val[k])) {
		*out = def;
		return WB_OK;
	}
	if (cfg_parse_int_range(raw->val[k], lo, hi, out))
		return WB_OK;
	cfg_err(errstr, size, "%s: must be a whole number from %d to %d (got \"%s\")", raw->src[k],
		lo, hi, cfg_clean(raw->val[k], clean));
	return WB_ERR_CONFIG;
}

/* "<src>: must be true, false, ... (got "v")" when not a boolean. */
static wb_err_t cfg_bool(const struct cfg_raw *raw, enum cfg_opt k, bool def, bool *out, char *errstr, size_t size)
{
	char clean[CFG_ECHO_SIZE];

	*out = def;
	if (!cfg_is_set(raw->val[k]) || cfg_parse_bool(raw->val[k], out))
		return WB_OK;
	cfg_err(errstr, size, "%s: must be true, false, yes, no, 1 or 0 (got \"%s\")", raw->src[k],
		cfg_clean(raw->val[k], clean));
	return WB_ERR_CONFIG;
}

/* A copy of the value, or of def when not set (def may be NULL). */
static wb_err_t cfg_str(const struct cfg_raw *raw, enum cfg_opt k, const char *def, char **out,
			char *errstr, size_t size)
{
	const char *v = cfg_is_set(raw->val[k]) ? raw->val[k] : def;

	*out = NULL;
	if (v == NULL)
		return WB_OK;
	*out = strdup(v);
	if (*out == NULL) {
		cfg_err(errstr, size, "out of memory");
		return WB_ERR_NOMEM;
	}
	return WB_OK;
}

/* "YYYY-MM-DD" optionally followed by "-" and 1..20 letters or digits. */
static bool cfg_api_version_is_valid(const char *v)
{
	size_t i, n = strlen(v);

	if (n < 10 || n > 31)
		return false;
	for (i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? v[i] != '-' : (v[i] < '0' || v[i] > '9'))
			return false;
	if (n == 10)
		return true;
	if (v[10] != '-' || n == 11)
		return false;
	for (i = 11; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9')))
			return false;
	return true;
}

static wb_err_t cfg_topic(const struct cfg_raw *raw, enum cfg_opt k, const char *def, char **out,
			  char *errstr, size_t size)
{
	char clean[CFG_ECHO_SIZE];
	wb_err_t err = cfg_str(raw, k, def, out, errstr, size);

	if (err != WB_OK)
		return err;
	if (cfg_topic_is_valid(*out))
		return WB_OK;
	cfg_err(errstr, size,
		"%s: not a Kafka topic name (1 to 249 letters, digits, '.', '_' or '-') (got \"%s\")",
		raw->src[k], cfg_clean(*out, clean));
	return WB_ERR_CONFIG;
}

/* Topics a and b must differ; names b's source if b was written, else a's. */
static wb_err_t cfg_topics_differ(const struct cfg_raw *raw, enum cfg_opt a, const char *ta,
				  enum cfg_opt b, const char *tb, const char *why, char *errstr,
				  size_t size)
{
	enum cfg_opt named = cfg_is_set(raw->val[b]) ? b : a;
	enum cfg_opt other = named == b ? a : b;

	if (strcmp(ta, tb) != 0)
		return WB_OK;
	cfg_err(errstr, size, "%s: must differ from %s (%s)", raw->src[named], raw->src[other],
		why);
	return WB_ERR_CONFIG;
}

/*
 * KAFKA_GROUP_INSTANCE_ID: a checked copy, or NULL when not set. Kafka
 * accepts any string up to 249 bytes as a static member id; we keep to what a
 * Kubernetes pod name can be (within the topic charset), so a stray space or
 * quote from a manifest stops the worker at startup instead of reaching the
 * broker.
 */
static wb_err_t cfg_instance_id(const struct cfg_raw *raw, char **out, char *errstr, size_t size)
{
	const char *v = raw->val[OPT_GROUP_INSTANCE_ID];
	const char *src = raw->src[OPT_GROUP_INSTANCE_ID];
	char clean[CFG_ECHO_SIZE];
	size_t n;

	*out = NULL;
	if (!cfg_is_set(v))
		return WB_OK;
	n = strlen(v);
	if (n > CONFIG_MAX_GROUP_INSTANCE_ID) {
		cfg_err(errstr, size, "%s: must be at most %d bytes long (got %zu bytes)", src,
			CONFIG_MAX_GROUP_INSTANCE_ID, n);
		return WB_ERR_CONFIG;
	}
	if (!cfg_is_kafka_name(v)) {
		cfg_err(errstr, size,
			"%s: may only contain letters, digits, '.', '_' and '-', like a pod name "
			"(got \"%s\")",
			src, cfg_clean(v, clean));
		return WB_ERR_CONFIG;
	}
	return cfg_str(raw, OPT_GROUP_INSTANCE_ID, NULL, out, errstr, size);
}

static wb_err_t cfg_ca_file(const struct cfg_raw *raw, char **out, char *errstr, size_t size)
{
	const char *path = raw->val[OPT_REDIS_CA_FILE];
	const char *src = raw->src[OPT_REDIS_CA_FILE];
	char clean[CFG_ECHO_SIZE];
	struct stat st;
	int fd;

	*out = NULL;
	if (!cfg_is_set(path))
		return WB_OK;
	if (stat(path, &st) != 0) {
		cfg_err(errstr, size, "%s: cannot read \"%s\": %s", src, cfg_clean(path, clean),
			strerror(errno));
		return WB_ERR_CONFIG;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_err(errstr, size, "%s: \"%s\" is not a regular file", src,
			cfg_clean(path, clean));
		return WB_ERR_CONFIG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cfg_err(errstr, size, "%s: cannot read \"%s\": %s", src, cfg_clean(path, clean),
			strerror(errno));
		return WB_ERR_CONFIG;
	}
	close(fd);
	return cfg_str(raw, OPT_REDIS_CA_FILE, NULL, out, errstr, size);
}

static wb_err_t cfg_redis(struct wb_config *cfg, const struct cfg_raw *raw, char *errstr,
			  size_t size)
{
	bool url = cfg_is_set(raw->val[OPT_REDIS_URL]);
	bool azure = cfg_is_set(raw->val[OPT_AZURE_REDIS]);
	enum cfg_opt k = url ? OPT_REDIS_URL : OPT_AZURE_REDIS;
	char problem[CFG_PROBLEM_SIZE];
	wb_err_t err;

	if (url && azure) {
		cfg_err(errstr, size, "%s: cannot be used together with %s (set only one)",
			raw->src[OPT_REDIS_URL], raw->src[OPT_AZURE_REDIS]);
		return WB_ERR_CONFIG;
	}
	if (!url && !azure)
		return WB_OK;
	if (url)
		err = config_parse_redis_url(raw->val[k], &cfg->redis, problem, sizeof problem);
	else
		err = config_parse_azure_redis(raw->val[k], &cfg->redis, problem, sizeof problem);
	if (err != WB_OK) {
		cfg_err(errstr, size, "%s: %s", raw->src[k], problem);
		return err;
	}
	cfg->redis_source = raw->src[k];
	return WB_OK;
}

/* STORE_FALLBACK: "none" or "memory", any case; memory needs Redis, so this
 * runs after cfg_redis. */
static wb_err_t cfg_store_fallback(struct wb_config *cfg, const struct cfg_raw *raw,
				   char *errstr, size_t size)
{
	const char *v = raw->val[OPT_STORE_FALLBACK];
	const char *src = raw->src[OPT_STORE_FALLBACK];
	char clean[CFG_ECHO_SIZE];

	cfg->store_fallback = STORE_FALLBACK_NONE;
	if (!cfg_is_set(v) || strcasecmp(v, "none") == 0)
		return WB_OK;
	if (strcasecmp(v, "memory") != 0) {
		cfg_err(errstr, size, "%s: must be none or memory (got \"%s\")", src,
			cfg_clean(v, clean));
		return WB_ERR_CONFIG;
	}
	if (cfg->redis_source == NULL) {
		cfg_err(errstr, size,
			"%s: memory only applies when Redis is configured "
			"(REDIS_URL or AZURE_REDIS_CONNECTIONSTRING)",
			src);
		return WB_ERR_CONFIG;
	}
	cfg->store_fallback = STORE_FALLBACK_MEMORY;
	return WB_OK;
}

static wb_err_t cfg_props(struct wb_config *cfg, const struct cfg_raw *raw, char *errstr,
			  size_t size)
{
	size_t i;

	if (raw->nprops == 0)
		return WB_OK;
	cfg->kafka_props = calloc(raw->nprops, sizeof *cfg->kafka_props);
	if (cfg->kafka_props == NULL)
		goto nomem;
	for (i = 0; i < raw->nprops; i++) {
		struct wb_kafka_prop *p = &cfg->kafka_props[i];

		p->name = cfg_strndup(raw->props[i].name, raw->props[i].name_len);
		cfg->kafka_props_len = i + 1; /* so config_fini frees a half-made entry */
		if (p->name == NULL)
			goto nomem;
		p->value = strdup(raw->props[i].value);
		if (p->value == NULL)
			goto nomem;
	}
	return WB_OK;
nomem:
	cfg_err(errstr, size, "out of memory");
	return WB_ERR_NOMEM;
}

/* Every check and conversion, in table order; stops at the first problem. */
static wb_err_t cfg_resolve(struct wb_config *cfg, const struct cfg_raw *raw, char *errstr,
			    size_t size)
{
	char clean[CFG_ECHO_SIZE];
	const char *v;
	long cpus;
	int ttl, n;
	wb_err_t err;

	if ((err = cfg_str(raw, OPT_KAFKA_BROKERS, "", &cfg->kafka_brokers, errstr, size)) ||
	    (err = cfg_str(raw, OPT_GROUP_ID, CONFIG_DEFAULT_GROUP_ID, &cfg->group_id, errstr,
			   size)) ||
	    (err = cfg_instance_id(raw, &cfg->group_instance_id, errstr, size)) ||
	    (err = cfg_topic(raw, OPT_INBOUND_TOPIC, CONFIG_DEFAULT_INBOUND_TOPIC,
			     &cfg->inbound_topic, errstr, size)) ||
	    (err = cfg_topic(raw, OPT_OUTBOUND_TOPIC, CONFIG_DEFAULT_OUTBOUND_TOPIC,
			     &cfg->outbound_topic, errstr, size)) ||
	    (err = cfg_topic(raw, OPT_DLQ_TOPIC, CONFIG_DEFAULT_DLQ_TOPIC, &cfg->dlq_topic, errstr,
			     size)))
		return err;
	if ((err = cfg_topics_differ(raw, OPT_INBOUND_TOPIC, cfg->inbound_topic,
				     OPT_OUTBOUND_TOPIC, cfg->outbound_topic,
				     "replies would be consumed as events", errstr, size)) ||
	    (err = cfg_topics_differ(raw, OPT_INBOUND_TOPIC, cfg->inbound_topic, OPT_DLQ_TOPIC,
				     cfg->dlq_topic, "dead letters would be consumed again",
				     errstr, size)) ||
	    (err = cfg_topics_differ(raw, OPT_OUTBOUND_TOPIC, cfg->outbound_topic, OPT_DLQ_TOPIC,
				     cfg->dlq_topic, "dead letters would be sent as replies",
				     errstr, size)))
		return err;

	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		cpus = 1;
	if (cpus > CONFIG_MAX_THREADS)
		cpus = CONFIG_MAX_THREADS;
	if ((err = cfg_int(raw, OPT_WORKER_THREADS, 1, CONFIG_MAX_THREADS, (int)cpus,
			   &cfg->worker_threads, errstr, size)))
		return err;
	if ((err = cfg_int(raw, OPT_QUEUE_DEPTH, 1, (int)CONFIG_MAX_QUEUE_DEPTH,
			   (int)CONFIG_DEFAULT_QUEUE_DEPTH, &n, errstr, size)))
		return err;
	cfg->queue_depth = (uint32_t)n;
	if ((err = cfg_int(raw, OPT_MAX_IN_FLIGHT, 1, (int)CONFIG_MAX_IN_FLIGHT,
			   (int)CONFIG_DEFAULT_MAX_IN_FLIGHT, &n, errstr, size)))
		return err;
	cfg->max_in_flight = (uint32_t)n;
	if ((err = cfg_int(raw, OPT_EVENT_MAX_ATTEMPTS, 1, 100, CONFIG_DEFAULT_EVENT_MAX_ATTEMPTS,
			   &cfg->event_max_attempts, errstr, size)) ||
	    (err = cfg_int(raw, OPT_SHUTDOWN_TIMEOUT, 1, 3600, CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S,
			   &cfg->shutdown_timeout_s, errstr, size)) ||
	    (err = cfg_int(raw, OPT_DRAIN_TIMEOUT, 1, 600, CONFIG_DEFAULT_DRAIN_TIMEOUT_S,
			   &cfg->drain_timeout_s, errstr, size)))
		return err;
	if ((err = cfg_redis(cfg, raw, errstr, size)) ||
	    (err = cfg_store_fallback(cfg, raw, errstr, size)))
		return err;
	if ((err = cfg_int(raw, OPT_CONTEXT_TTL, 1, (int)CONFIG_MAX_TTL_S, (int)CONFIG_DEFAULT_TTL_S,
			   &ttl, errstr, size)))
		return err;
	cfg->context_ttl_s = (uint32_t)ttl;
	if ((err = cfg_str(raw, OPT_ACS_API_VERSION, CONFIG_DEFAULT_ACS_API_VERSION, &cfg->acs_api_version,
			   errstr, size)))
		return err;
	if (!cfg_api_version_is_valid(cfg->acs_api_version)) {
		cfg_err(errstr, size, "%s: not an api-version like 2025-01-15-preview (got \"%s\")",
			raw->src[OPT_ACS_API_VERSION], cfg_clean(cfg->acs_api_version, clean));
		return WB_ERR_CONFIG;
	}
	if ((err = cfg_str(raw, OPT_FLOW_FILE, NULL, &cfg->flow_file, errstr, size)) ||
	    (err = cfg_int(raw, OPT_HTTP_PORT, 0, 65535, CONFIG_DEFAULT_HTTP_PORT, &cfg->http_port,
			   errstr, size)))
		return err;

	cfg->log_level = LOG_INFO;
	v = raw->val[OPT_LOG_LEVEL];
	if (cfg_is_set(v) && log_level_parse(v, &cfg->log_level) != WB_OK) {
		cfg_err(errstr, size,
			"%s: unknown level \"%s\" (use debug, info, warn, error or off)",
			raw->src[OPT_LOG_LEVEL], cfg_clean(v, clean));
		return WB_ERR_CONFIG;
	}

	if ((err = cfg_bool(raw, OPT_AUDIT_LOG, false, &cfg->audit_log, errstr, size)))
		return err;

	cfg->context_max_entries = CONFIG_DEFAULT_MAX_ENTRIES;
	v = raw->val[OPT_MAX_ENTRIES];
	if (cfg_is_set(v) && !cfg_parse_u64(v, INT64_MAX, &cfg->context_max_entries)) {
		cfg_err(errstr, size, "%s: must be a whole number, 0 for no limit (got \"%s\")",
			raw->src[OPT_MAX_ENTRIES], cfg_clean(v, clean));
		return WB_ERR_CONFIG;
	}
	cfg->context_max_bytes = CONFIG_DEFAULT_MAX_BYTES;
	v = raw->val[OPT_MAX_BYTES];
	if (cfg_is_set(v) && !cfg_parse_size(v, &cfg->context_max_bytes)) {
		cfg_err(errstr, size,
			"%s: must be a whole number of bytes, optionally followed by k, m or g "
			"(KiB, MiB, GiB), 0 for no limit (got \"%s\")",
			raw->src[OPT_MAX_BYTES], cfg_clean(v, clean));
		return WB_ERR_CONFIG;
	}

	if ((err = cfg_ca_file(raw, &cfg->redis_ca_file, errstr, size)))
		return err;
	if (cfg_is_set(raw->val[OPT_REDIS_TLS_SERVER_NAME]))
		err = cfg_str(raw, OPT_REDIS_TLS_SERVER_NAME, NULL, &cfg->redis_tls_server_name,
			      errstr, size);
	else if (cfg->redis.tls_server_name != NULL &&
		 (cfg->redis_tls_server_name = strdup(cfg->redis.tls_server_name)) == NULL) {
		cfg_err(errstr, size, "out of memory");
		err = WB_ERR_NOMEM;
	}
	if (err != WB_OK)
		return err;

	if ((err = cfg_bool(raw, OPT_REDIS_TLS_VERIFY, true, &cfg->redis_tls_verify, errstr, size)))
		return err;

	if ((err = cfg_int(raw, OPT_REDIS_CONNECT_TIMEOUT, 1, 60000,
			   cfg->redis.connect_timeout_ms > 0 ? cfg->redis.connect_timeout_ms
							     : CONFIG_DEFAULT_CONNECT_TIMEOUT_MS,
			   &cfg->redis_connect_timeout_ms, errstr, size)) ||
	    (err = cfg_int(raw, OPT_REDIS_COMMAND_TIMEOUT, 1, 60000,
			   cfg->redis.command_timeout_ms > 0 ? cfg->redis.command_timeout_ms
							     : CONFIG_DEFAULT_COMMAND_TIMEOUT_MS,
			   &cfg->redis_command_timeout_ms, errstr, size)) ||
	    (err = cfg_int(raw, OPT_REDIS_POOL_SIZE, 1, CONFIG_MAX_THREADS, cfg->worker_threads,
			   &cfg->redis_pool_size, errstr, size)))
		return err;

	return cfg_props(cfg, raw, errstr, size);
}

/* Points cfg->store at the resolved settings. */
static void cfg_fill_store(struct wb_config *cfg)
{
	struct ctx_store_config *s = &cfg->store;

	memset(s, 0, sizeof *s);
	s->backend = cfg->redis_source != NULL ? CTX_BACKEND_REDIS : CTX_BACKEND_MEMORY;
	s->default_ttl_ms = cfg->context_ttl_s * 1000u;
	s->memory.max_entries = cfg->context_max_entries;
	s->memory.max_bytes = cfg->context_max_bytes;
	s->audit = cfg->audit_log;
	if (s->backend != CTX_BACKEND_REDIS)
		return;
	s->redis.host = cfg->redis.host;
	s->redis.port = cfg->redis.port;
	s->redis.user = cfg->redis.user;
	s->redis.password = cfg->redis.password;
	s->redis.db = cfg->redis.db;
	s->redis.tls = cfg->redis.tls;
	s->redis.tls_verify = cfg->redis_tls_verify;
	s->redis.tls_ca_file = cfg->redis_ca_file;
	s->redis.tls_server_name = cfg->redis_tls_server_name;
	s->redis.connect_timeout_ms = cfg->redis_connect_timeout_ms;
	s->redis.command_timeout_ms = cfg->redis_command_timeout_ms;
	s->redis.pool_size = cfg->redis_pool_size;
}

wb_err_t config_load(struct wb_config *cfg, int argc, char **argv, char **envp, char *errstr,
		     size_t errstr_size)
{
	struct cfg_raw raw;
	size_t nenv = 0;
	wb_err_t err;

	if (errstr != NULL && errstr_size > 0)
		errstr[0] = '\0';
	if (cfg == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
		cfg_err(errstr, errstr_size, "config_load: invalid arguments");
		return WB_ERR_INVALID;
	}
	memset(cfg, 0, sizeof *cfg);
	memset(&raw, 0, sizeof raw);
	while (envp != NULL && envp[nenv] != NULL)
		nenv++;
	/* At most one property per variable and per flag. */
	raw.props = calloc(nenv + (size_t)argc + 1, sizeof *raw.props);
	if (raw.props == NULL) {
		cfg_err(errstr, errstr_size, "out of memory");
		return WB_ERR_NOMEM;
	}
	for (size_t k = 0; k < OPT__COUNT; k++)
		raw.src[k] = cfg_opts[k].env;

	err = cfg_collect_env(&raw, envp, errstr, errstr_size);
	if (err == WB_OK)
		err = cfg_collect_flags(&raw, argc, argv, errstr, errstr_size);
	if (err == WB_OK)
		err = cfg_resolve(cfg, &raw, errstr, errstr_size);
	free(raw.props);
	if (err != WB_OK) {
		config_fini(cfg);
		return err;
	}
	cfg_fill_store(cfg);
	return WB_OK;
}

void config_fini(struct wb_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->kafka_brokers);
	free(cfg->group_id);
	free(cfg->group_instance_id);
	free(cfg->inbound_topic);
	free(cfg->outbound_topic);
	free(cfg->dlq_topic);
	for (i = 0; i < cfg->kafka_props_len; i++) {
		free(cfg->kafka_props[i].name);
		cfg_free_secret(cfg->kafka_props[i].value);
	}
	free(cfg->kafka_props);
	free(cfg->flow_file);
	free(cfg->acs_api_version);
	config_redis_target_fini(&cfg->redis);
	free(cfg->redis_ca_file);
	free(cfg->redis_tls_server_name);
	memset(cfg, 0, sizeof *cfg);
}

/* ---- summary and usage -------------------------------------------------- */

/* snprintf-style appender: len counts what the whole text needs. */
struct cfg_sbuf {
	char *p;
	size_t size;
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void cfg_sb(struct cfg_sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *dst = sb->len < sb->size ? sb->p + sb->len : NULL;
	size_t room = sb->len < sb->size ? sb->size - sb->len : 0;

	va_start(ap, fmt);
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len += (size_t)n;
}

/* Bytes as the largest exact binary unit: "512 MiB", "1000 bytes". */
static void cfg_sb_bytes(struct cfg_sbuf *sb, uint64_t bytes)
{
	static const char *const units[] = {"GiB", "MiB", "KiB"};
	int i;

	for (i = 0; i < 3 && bytes > 0; i++) {
		unsigned shift = (unsigned)(30 - 10 * i);

		if (bytes % (UINT64_C(1) << shift) == 0) {
			cfg_sb(sb, "%llu %s", (unsigned long long)(bytes >> shift), units[i]);
			return;
		}
	}
	cfg_sb(sb, "%llu bytes", (unsigned long long)bytes);
}

size_t config_summary(const struct wb_config *cfg, char *buf, size_t size)
{
	struct cfg_sbuf sb = {.p = buf, .size = size, .len = 0};
	char c1[CFG_ECHO_SIZE], c2[CFG_ECHO_SIZE];
	size_t i;

	if (buf != NULL && size > 0)
		buf[0] = '\0';
	if (buf == NULL)
		sb.size = 0;
	if (cfg == NULL)
		return 0;

	cfg_sb(&sb, "kafka brokers:      %s\n",
	       cfg_is_set(cfg->kafka_brokers) ? cfg_clean(cfg->kafka_brokers, c1) : "(none)");
	cfg_sb(&sb, "kafka group id:     %s\n", cfg->group_id ? cfg_clean(cfg->group_id, c1) : "");
	if (cfg->group_instance_id != NULL)
		cfg_sb(&sb, "kafka instance id:  %s (static membership)\n",
		       cfg_clean(cfg->group_instance_id, c1));
	else
		cfg_sb(&sb, "kafka instance id:  (none: dynamic membership)\n");
	cfg_sb(&sb, "topics:             inbound=%s outbound=%s dlq=%s\n",
	       cfg->inbound_topic ? cfg->inbound_topic : "", cfg->outbound_topic ? cfg->outbound_topic : "",
	       cfg->dlq_topic ? cfg->dlq_topic : "");
	cfg_sb(&sb, "kafka properties:   ");
	if (cfg->kafka_props_len == 0)
		cfg_sb(&sb, "(none)");
	for (i = 0; i < cfg->kafka_props_len; i++) {
		const struct wb_kafka_prop *p = &cfg->kafka_props[i];

		cfg_sb(&sb, "%s%s=%s", i > 0 ? ", " : "", cfg_clean(p->name, c1),
		       config_kafka_prop_is_secret(p->name) ? "***" : cfg_clean(p->value, c2));
	}
	cfg_sb(&sb, "\n");
	cfg_sb(&sb, "worker threads:     %d\n", cfg->worker_threads);
	cfg_sb(&sb, "flow control:       queue depth %u per worker, %u in flight per partition\n",
	       (unsigned)cfg->queue_depth, (unsigned)cfg->max_in_flight);
	cfg_sb(&sb, "event attempts:     %d, then the dead-letter topic\n", cfg->event_max_attempts);
	cfg_sb(&sb, "shutdown:           timeout %d s, revocation drain timeout %d s\n",
	       cfg->shutdown_timeout_s, cfg->drain_timeout_s);
	cfg_sb(&sb, "flow file:          %s\n",
	       cfg->flow_file ? cfg_clean(cfg->flow_file, c1) : "(built-in)");
	if (cfg->http_port > 0)
		cfg_sb(&sb, "http port:          %d\n", cfg->http_port);
	else
		cfg_sb(&sb, "http port:          0 (off)\n");
	cfg_sb(&sb, "log level:          %s\n", log_level_name(cfg->log_level));
	cfg_sb(&sb, "audit log:          %s\n", cfg->audit_log ? "on (context reads, writes, deletes)" : "off");
	cfg_sb(&sb, "acs api-version:    %s\n", cfg_clean(cfg->acs_api_version, c1));
	cfg_sb(&sb, "context ttl:        %u s\n", (unsigned)cfg->context_ttl_s);

	if (cfg->redis_source == NULL) {
		cfg_sb(&sb, "context store:      memory (context is lost when the process exits)\n");
		cfg_sb(&sb, "memory limits:      %llu entries, ",
		       (unsigned long long)cfg->context_max_entries);
		cfg_sb_bytes(&sb, cfg->context_max_bytes);
		cfg_sb(&sb, " (0 = unbounded)\n");
		return sb.len;
	}
	{
		const struct wb_redis_target *t = &cfg->redis;
		bool v6 = t->host != NULL && strchr(t->host, ':') != NULL;

		cfg_sb(&sb, "context store:      redis from %s: %s://", cfg->redis_source,
		       t->tls ? "rediss" : "redis");
		if (t->user != NULL || t->password != NULL)
			cfg_sb(&sb, "%s:%s@", t->user ? cfg_clean(t->user, c1) : "",
			       t->password ? "***" : "");
		cfg_sb(&sb, "%s%s%s:%d/%d\n", v6 ? "[" : "", t->host ? cfg_clean(t->host, c2) : "",
		       v6 ? "]" : "", t->port, t->db);
	}
	if (cfg->redis.tls)
		cfg_sb(&sb, "redis tls:          verify %s, ca %s, server name %s\n",
		       cfg->redis_tls_verify ? "on" : "OFF",
		       cfg->redis_ca_file ? cfg_clean(cfg->redis_ca_file, c1) : "(system)",
		       cfg->redis_tls_server_name ? cfg_clean(cfg->redis_tls_server_name, c2)
						  : "(host)");
	else
		cfg_sb(&sb, "redis tls:          off\n");
	cfg_sb(&sb, "redis connections:  pool %d, connect timeout %d ms, command timeout %d ms\n",
	       cfg->redis_pool_size, cfg->redis_connect_timeout_ms, cfg->redis_command_timeout_ms);
	cfg_sb(&sb, "store fallback:     %s\n",
	       cfg->store_fallback == STORE_FALLBACK_MEMORY
		       ? "memory (contexts kept in this process while Redis is down)"
		       : "none");
	return sb.len;
}

void config_usage(FILE *out)
{
	size_t k;

	if (out == NULL)
		return;
	fputs("Settings (a flag overrides its environment variable; an empty value means the default):\n",
	      out);
	for (k = 0; k < OPT__COUNT; k++) {
		const struct cfg_opt_def *d = &cfg_opts[k];

		fprintf(out, "  %-30s %-29s %s\n  %30s %-29s default: %s\n", d->flag, d->env, d->help,
			"", "", d->def);
	}
	fprintf(out, "  %-30s %-29s %s\n  %30s %-29s default: %s\n", CFG_KAFKA_PROP_FLAG " name=value",
		CFG_KAFKA_PROP_ENV "<name>=value",
		"any librdkafka property, repeatable; flags apply after variables", "", "",
		"(none)");
	fputs("Flags take a value as \"--name value\" or \"--name=value\".\n"
	      "Redis is used when REDIS_URL or AZURE_REDIS_CONNECTIONSTRING is set (not both);\n"
	      "otherwise contexts live in memory and are lost when the process exits;\n"
	      "STORE_FALLBACK=memory is accepted only with Redis.\n"
	      "Azure connectTimeout=/syncTimeout=/sslHost= apply unless the REDIS_* setting is given.\n",
	      out);
}
