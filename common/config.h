/*
 * config.h - the worker's settings: environment + command-line flags ->
 * one validated struct wb_config, or one clear error line.
 *
 * Flags override environment variables; an empty value (VAR= or --flag=)
 * means "not set" and gives the default (so --redis-url= switches a
 * REDIS_URL from the environment off), except KAFKA_PROP_ values, which pass
 * through to librdkafka as given. The context store is Redis when REDIS_URL
 * or AZURE_REDIS_CONNECTIONSTRING is set, memory otherwise (as the Django
 * bot decides); both set is an error, and so is STORE_FALLBACK=memory
 * without either.
 * Owns: every string in struct wb_config (freed by config_fini).
 * Does not: read files (except checking that REDIS_TLS_CA_FILE is readable),
 * apply anything (log level, Kafka properties), connect, or handle --help.
 * Secrets (Redis passwords, connection strings, KAFKA_PROP_ values whose
 * name mentions a password, secret, sasl.jaas, sasl.oauthbearer.config or
 * ssl.key.pem) never appear in errstr or in config_summary().
 * Threads: no shared state; a struct wb_config belongs to its caller.
 */
#ifndef WB_CONFIG_H
#define WB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctx_store.h"
#include "err.h"
#include "log.h"

/* Defaults (also printed by config_usage). */
#define CONFIG_DEFAULT_GROUP_ID "wabot-worker"
#define CONFIG_DEFAULT_INBOUND_TOPIC "wa.inbound"
#define CONFIG_DEFAULT_OUTBOUND_TOPIC "wa.outbound"
#define CONFIG_DEFAULT_DLQ_TOPIC "wa.dlq"
#define CONFIG_DEFAULT_TTL_S 3600u
#define CONFIG_DEFAULT_HTTP_PORT 9090
#define CONFIG_DEFAULT_MAX_ENTRIES 1000000u
#define CONFIG_DEFAULT_MAX_BYTES (512u * 1024u * 1024u)
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define CONFIG_DEFAULT_COMMAND_TIMEOUT_MS 1000
#define CONFIG_MAX_THREADS 256
#define CONFIG_DEFAULT_ACS_API_VERSION "2025-01-15-preview"  /* = REPLY_ACS_API_VERSION */
#define CONFIG_MAX_TTL_S 2592000u /* 30 days */
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S 25 /* under Kubernetes' 30 s grace period */
#define CONFIG_DEFAULT_DRAIN_TIMEOUT_S 10
#define CONFIG_DEFAULT_QUEUE_DEPTH 2048u
#define CONFIG_DEFAULT_MAX_IN_FLIGHT 10000u
#define CONFIG_DEFAULT_EVENT_MAX_ATTEMPTS 5
/* Largest WORKER_QUEUE_DEPTH and MAX_IN_FLIGHT_PER_PARTITION; the latter is
 * worker/offsets.h's OFFSETS_MAX_IN_FLIGHT (common/ cannot include worker/). */
#define CONFIG_MAX_QUEUE_DEPTH 1048576u
#define CONFIG_MAX_IN_FLIGHT 1048576u
/* Longest KAFKA_GROUP_INSTANCE_ID, the same limit as a topic name. */
#define CONFIG_MAX_GROUP_INSTANCE_ID 249

/*
 * What happens to contexts while Redis is configured but unreachable
 * (STORE_FALLBACK). Only meaningful with Redis: config_load rejects
 * STORE_FALLBACK_MEMORY for the memory store.
 */
enum wb_store_fallback {
	STORE_FALLBACK_NONE = 0, /* no fallback: the worker waits for Redis */
	STORE_FALLBACK_MEMORY,   /* keep contexts in this process meanwhile */
};

/*
 * Where Redis is, as read from REDIS_URL or AZURE_REDIS_CONNECTIONSTRING.
 * Owns its strings: release with config_redis_target_fini().
 */
struct wb_redis_target {
	char *host;             /* host name or IP literal, without brackets */
	int port;               /* 1..65535 */
	char *user;             /* ACL user; NULL for the default user */
	char *password;         /* NULL: no AUTH. A secret: never print it */
	int db;                 /* 0..65535, 0 when not given */
	bool tls;               /* rediss://, or ssl=True */
	char *tls_server_name;  /* Azure sslHost=; NULL when not given */
	int connect_timeout_ms; /* Azure connectTimeout=; 0 when not given */
	int command_timeout_ms; /* Azure syncTimeout=; 0 when not given */
};

/*
 * Parses a Redis URL: redis://[[user]:password@]host[:port][/db] or
 * rediss://... (TLS). The scheme is case-insensitive; the port defaults to
 * 6379; user and password are percent-decoded (%XX; '+' stays '+');
 * ":password@" gives a password only; an IPv6 host is written in brackets
 * ("[::1]:6380"); db is 0..65535 digits ("/" alone means 0). The last '@'
 * ends the credentials, so a raw '@' or '/' inside a password still parses.
 * Rejected, with the part that is wrong named: other schemes, an empty host,
 * a port that is not 1..65535 digits, credentials without ':' or with an
 * empty password, bad %-escapes or %00, a db that is not 0..65535 digits,
 * anything after the db, and query options ("?..."; every option has its own
 * REDIS_* variable, so a query is an error rather than silently ignored).
 * url may be NULL (error). out is overwritten (its old contents are not
 * freed); on error it holds nothing and needs no fini. errstr (may be NULL)
 * receives the problem without any part of url: "port must be 1..65535".
 * Returns WB_OK, WB_ERR_CONFIG or WB_ERR_NOMEM.
 */
wb_err_t config_parse_redis_url(const char *url, struct wb_redis_target *out, char *errstr,
				size_t errstr_size);

/*
 * Parses a StackExchange.Redis connection string, as Azure Cache for Redis
 * shows it: "host:6380,password=...,ssl=True,abortConnect=False".
 * The first element is host[:port] (IPv6 in brackets); the port defaults to
 * 6380 with ssl=True, else 6379. The other elements are key=value, split on
 * the first '=' (a password may contain '='), keys case-insensitive, keys
 * and values trimmed of spaces, empty elements skipped, a repeated key wins
 * last. Used: password, user, ssl (true/false, any case), defaultDatabase
 * (0..65535), connectTimeout and syncTimeout (ms, 1..60000), sslHost.
 * Accepted and ignored: abortConnect, allowAdmin, asyncTimeout, channelPrefix,
 * checkCertificateRevocation, configChannel, configCheckSeconds,
 * connectRetry, heartbeatInterval, highPrioritySocketThreads, keepAlive,
 * name, protocol, proxy, resolveDns, responseTimeout, serviceName, setlib,
 * sslProtocols, tiebreaker, tunnel, version, writeBuffer.
 * Errors: missing host, a second endpoint, an unknown key (named; never its
 * value), a bad value (the key is named, the value is not echoed).
 * Ownership, out and errstr as config_parse_redis_url().
 */
wb_err_t config_parse_azure_redis(const char *cs, struct wb_redis_target *out, char *errstr,
				  size_t errstr_size);

/* Frees the strings of t (wiping the password first) and zeroes it.
 * NULL ok; safe on a zeroed struct and twice in a row. */
void config_redis_target_fini(struct wb_redis_target *t);

/* One librdkafka property, from KAFKA_PROP_<name>=value or
 * --kafka-prop name=value. Both strings owned by the wb_config. */
struct wb_kafka_prop {
	char *name;  /* non-empty */
	char *value; /* may be empty */
};

/* true when a Kafka property's value is a secret (its name contains
 * password, secret, sasl.jaas, sasl.oauthbearer.config or ssl.key.pem, any
 * case). name may be NULL (false). */
bool config_kafka_prop_is_secret(const char *name);

/*
 * The validated settings. Every string is owned (NUL-terminated, freed by
 * config_fini). Fill it with config_load(); read it from any thread once
 * loaded; it is never modified afterwards.
 */
struct wb_config {
	/* Kafka */
	char *kafka_brokers;          /* "" when none given */
	char *group_id;               /* non-empty */
	char *group_instance_id;      /* static membership id (a pod name such as
	                                 "wabot-worker-0"): 1..249 of
	                                 [A-Za-z0-9._-]; NULL when not given */
	char *inbound_topic;          /* valid Kafka topic names, all three distinct */
	char *outbound_topic;
	char *dlq_topic;
	struct wb_kafka_prop *kafka_props; /* env order, then flag order */
	size_t kafka_props_len;

	/* Process */
	int worker_threads;           /* 1..CONFIG_MAX_THREADS */
	char *flow_file;              /* NULL when not given; not opened here */
	char *acs_api_version;        /* for ACS reply paths; validated shape */
	int http_port;                /* 0..65535; 0 = no HTTP server */
	enum log_level log_level;     /* not applied by config_load */
	bool audit_log;               /* AUDIT_LOG: an audit line per context
	                                 read/write/delete (ctx_store_config.audit) */
	int shutdown_timeout_s;       /* seconds from the stop signal to exit, 1..3600 */
	int drain_timeout_s;          /* seconds a partition revocation waits for its
	                                 in-flight events before giving up on them, 1..600 */

	/* Flow control and retries */
	uint32_t queue_depth;         /* records queued per worker thread before the
	                                 partitions feeding it are paused,
	                                 1..CONFIG_MAX_QUEUE_DEPTH */
	uint32_t max_in_flight;       /* records of one partition fetched but not yet
	                                 committed before it is paused,
	                                 1..CONFIG_MAX_IN_FLIGHT */
	int event_max_attempts;       /* tries of one record while the store answers
	                                 but keeps failing for it, before it is
	                                 dead-lettered; 1..100 */

	/* Context store */
	uint32_t context_ttl_s;       /* 1..CONFIG_MAX_TTL_S */
	uint64_t context_max_entries; /* memory store; 0 = unbounded */
	uint64_t context_max_bytes;   /* memory store; 0 = unbounded */
	const char *redis_source;     /* static text: the variable or flag that
	                                 selected Redis; NULL for memory */
	struct wb_redis_target redis; /* parsed target; zeroed for memory */
	char *redis_ca_file;          /* NULL: system store; checked readable */
	char *redis_tls_server_name;  /* REDIS_TLS_SERVER_NAME, else sslHost=, else NULL */
	bool redis_tls_verify;
	int redis_connect_timeout_ms; /* variable/flag, else connectTimeout=, else 2000 */
	int redis_command_timeout_ms; /* variable/flag, else syncTimeout=, else 1000 */
	int redis_pool_size;          /* 1..256; default worker_threads */
	enum wb_store_fallback store_fallback; /* NONE unless Redis is configured */

	/* Ready for ctx_store_new(): its strings point into this struct (valid
	 * until config_fini; do not keep a copy beyond that). */
	struct ctx_store_config store;
};

/*
 * Builds *cfg from the environment and flags. argv[0..argc) are the flags
 * after the subcommand ("--name value" or "--name=value"; every flag takes a
 * value; a value that starts with "--" must use the '=' form). envp is a
 * NULL-terminated "NAME=value" array (NULL: empty environment); the first
 * entry of a name wins, as getenv does.
 * On WB_OK *cfg owns its settings; release with config_fini().
 * On error *cfg holds nothing (config_fini is still safe) and errstr (may be
 * NULL) holds one line "<VARIABLE or --flag>: <problem>", e.g.
 * "CONTEXT_TTL_SECONDS: must be a whole number from 1 to 2592000 (got \"-5\")";
 * values are echoed sanitised (printable ASCII, cut at 64 bytes), never for
 * secrets. Returns WB_OK, WB_ERR_CONFIG or WB_ERR_NOMEM.
 * Thread: any (reads nothing global except the CPU count and the CA file).
 */
wb_err_t config_load(struct wb_config *cfg, int argc, char **argv, char **envp, char *errstr,
		     size_t errstr_size);

/* Frees everything cfg owns and zeroes it. NULL ok; safe twice. */
void config_fini(struct wb_config *cfg);

/*
 * Writes a human summary of cfg (one setting per line, about 20 lines) to
 * buf, with every secret shown as "***". Always NUL-terminates when size > 0.
 * Returns the length the whole summary needs (without the NUL), as snprintf
 * does: a result >= size means it was cut.
 */
size_t config_summary(const struct wb_config *cfg, char *buf, size_t size);

/* Prints every flag with its variable, default and range to out. */
void config_usage(FILE *out);

#endif /* WB_CONFIG_H */
