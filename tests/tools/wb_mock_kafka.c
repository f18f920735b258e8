/*
 * wb_mock_kafka.c - wb-mock-kafka: librdkafka's own mock Kafka cluster as a
 * standalone process, for developers (start it by hand, point the worker at
 * it) and for integration tests and benchmarks (tests/support/kafka_mock.h).
 *
 * Prints exactly one line "bootstrap=<host:port,...>" on stdout, one human
 * line on stderr, then serves until SIGTERM/SIGINT, or until stdin reaches
 * EOF with --exit-on-stdin-eof (so a harness that dies never leaves it
 * orphaned). With that option stdin also takes commands, one per line:
 * "rtt MS" sets every broker's round-trip time (rd_kafka_mock_broker_set_rtt;
 * 0 removes it), to hold acknowledgements back in tests. Exit codes: 0 clean stop, 1 the cluster could not be created,
 * 2 bad usage.
 * Owns: one producer handle (the mock's book-keeping instance, it never
 * produces) and the mock cluster on it; their threads are librdkafka's.
 * Not a Kafka of our own: everything served is rdkafka_mock (2.0.2); what
 * that mock does and does not support is in tests/support/kafka_mock.h.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MOCK_MAX_BROKERS 8
#define MOCK_MAX_TOPICS 64
#define MOCK_MAX_PARTITIONS 1024
#define MOCK_MAX_TOPIC_NAME 249 /* Kafka's own limit */
#define MOCK_POLL_MS 200        /* how often the main loop serves rd_kafka_poll */

#define MOCK_EXIT_OK 0
#define MOCK_EXIT_RUNTIME 1
#define MOCK_EXIT_USAGE 2

struct mock_topic {
	char name[MOCK_MAX_TOPIC_NAME + 1];
	int partitions;
};

struct mock_opts {
	int brokers;
	struct mock_topic topics[MOCK_MAX_TOPICS];
	int topic_cnt;
	bool exit_on_stdin_eof;
	bool quiet; /* no human line on stderr (librdkafka's own logs stay) */
};

static const struct mock_topic mock_default_topics[] = {
	{"wa.inbound", 16},
	{"wa.outbound", 16},
	{"wa.dlq", 4},
};

static void mock_usage(FILE *f)
{
	fprintf(f,
		"usage: wb-mock-kafka [--brokers N] [--topic NAME:PARTITIONS]... [--exit-on-stdin-eof] [--quiet]\n"
		"  Runs librdkafka's mock Kafka cluster until SIGTERM or SIGINT.\n"
		"  --brokers N              brokers in the cluster, 1..%d (default 1)\n"
		"  --topic NAME:PARTITIONS  create a topic (replication 1), repeatable;\n"
		"                           default: wa.inbound:16 wa.outbound:16 wa.dlq:4\n"
		"  --exit-on-stdin-eof      also stop when stdin reaches end of file, and read\n"
		"                           commands from it: \"rtt MS\" (every broker's round trip)\n"
		"  --quiet                  no startup line on stderr\n"
		"  --help                   this text\n"
		"Prints one line \"bootstrap=<host:port,...>\" on stdout once ready.\n",
		MOCK_MAX_BROKERS);
}

/* Parses a decimal int in [lo, hi]; false on anything else. */
static bool mock_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

/* "NAME:PARTITIONS" into t; a message on stderr and false when invalid. */
static bool mock_parse_topic(const char *spec, struct mock_topic *t)
{
	const char *colon = strrchr(spec, ':');
	size_t len;

	if (!colon || colon == spec) {
		fprintf(stderr, "wb-mock-kafka: --topic wants NAME:PARTITIONS, got \"%s\"\n", spec);
		return false;
	}
	len = (size_t)(colon - spec);
	if (len > MOCK_MAX_TOPIC_NAME) {
		fprintf(stderr, "wb-mock-kafka: topic name longer than %d characters\n", MOCK_MAX_TOPIC_NAME);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = spec[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-')) {
			fprintf(stderr, "wb-mock-kafka: topic name \"%.*s\" has a character Kafka refuses "
					"(allowed: A-Z a-z 0-9 . _ -)\n", (int)len, spec);
			return false;
		}
	}
	if (!mock_parse_int(colon + 1, 1, MOCK_MAX_PARTITIONS, &t->partitions)) {
		fprintf(stderr, "wb-mock-kafka: partitions of \"%.*s\" must be 1..%d, got \"%s\"\n", (int)len, spec,
			MOCK_MAX_PARTITIONS, colon + 1);
		return false;
	}
	memcpy(t->name, spec, len);
	t->name[len] = '\0';
	return true;
}

/* Fills o from argv. Returns -1 to go on, or an exit code (0 after --help). */
static int mock_parse_args(int argc, char **argv, struct mock_opts *o)
{
	o->brokers = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			mock_usage(stdout);
			return MOCK_EXIT_OK;
		} else if (strcmp(a, "--exit-on-stdin-eof") == 0) {
			o->exit_on_stdin_eof = true;
		} else if (strcmp(a, "--quiet") == 0) {
			o->quiet = true;
		} else if (strcmp(a, "--brokers") == 0 || strcmp(a, "--topic") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "wb-mock-kafka: %s needs a value\n", a);
				return MOCK_EXIT_USAGE;
			}
			if (a[2] == 'b') {
				if (!mock_parse_int(argv[++i], 1, MOCK_MAX_BROKERS, &o->brokers)) {
					fprintf(stderr, "wb-mock-kafka: --brokers must be 1..%d, got \"%s\"\n",
						MOCK_MAX_BROKERS, argv[i]);
					return MOCK_EXIT_USAGE;
				}
				continue;
			}
			if (o->topic_cnt == MOCK_MAX_TOPICS) {
				fprintf(stderr, "wb-mock-kafka: at most %d topics\n", MOCK_MAX_TOPICS);
				return MOCK_EXIT_USAGE;
			}
			if (!mock_parse_topic(argv[++i], &o->topics[o->topic_cnt]))
				return MOCK_EXIT_USAGE;
			for (int k = 0; k < o->topic_cnt; k++) {
				if (strcmp(o->topics[k].name, o->topics[o->topic_cnt].name) == 0) {
					fprintf(stderr, "wb-mock-kafka: topic \"%s\" given twice\n", o->topics[k].name);
					return MOCK_EXIT_USAGE;
				}
			}
			o->topic_cnt++;
		} else {
			fprintf(stderr, "wb-mock-kafka: unknown argument \"%s\" (try --help)\n", a);
			return MOCK_EXIT_USAGE;
		}
	}
	if (o->topic_cnt == 0) {
		memcpy(o->topics, mock_default_topics, sizeof mock_default_topics);
		o->topic_cnt = (int)(sizeof mock_default_topics / sizeof mock_default_topics[0]);
	}
	return -1;
}

/*
 * Serves until SIGTERM/SIGINT arrive on sfd or, when watching stdin, it
 * reaches EOF. The signals are blocked in every thread (librdkafka's threads
 * inherited the mask) and read from a signalfd, so none is lost or handled
 * in a librdkafka thread. A handler with ppoll's mask would not do: when
 * stdin is readable ppoll returns without running the handler, and a stdin
 * that never stops being readable would starve the signal for good.
 */
/* Runs one command line from stdin (see the top of the file). */
static void mock_command(rd_kafka_mock_cluster_t *mc, int brokers, const char *line)
{
	int ms;

	if (strncmp(line, "rtt ", 4) == 0 && mock_parse_int(line + 4, 0, 60000, &ms)) {
		for (int id = 1; id <= brokers; id++)
			rd_kafka_mock_broker_set_rtt(mc, id, ms);
		fprintf(stderr, "wb-mock-kafka: round-trip time %d ms\n", ms);
		return;
	}
	if (line[0])
		fprintf(stderr, "wb-mock-kafka: unknown command \"%.64s\"\n", line);
}

static void mock_serve(rd_kafka_t *rk, rd_kafka_mock_cluster_t *mc, int brokers, int sfd, bool watch_stdin)
{
	char line[128];
	size_t used = 0;

	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = sfd, .events = POLLIN},
			{.fd = STDIN_FILENO, .events = POLLIN},
		};
		int r = poll(pfd, watch_stdin ? 2 : 1, MOCK_POLL_MS);

		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "wb-mock-kafka: poll: %s\n", strerror(errno));
			return;
		}
		if (r > 0 && pfd[0].revents)
			return; /* SIGTERM or SIGINT: nothing to read, just stop */
		if (r > 0 && watch_stdin && pfd[1].revents) {
			char buf[512];
			ssize_t n = read(STDIN_FILENO, buf, sizeof buf);

			/* EOF (or a dead pipe) means the harness is gone. */
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				return;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] != '\n') {
					if (used < sizeof line - 1)
						line[used++] = buf[i];
					continue;
				}
				line[used] = '\0';
				mock_command(mc, brokers, line);
				used = 0;
			}
		}
		rd_kafka_poll(rk, 0); /* serve logs and errors of the book-keeping handle */
	}
}

int main(int argc, char **argv)
{
	struct mock_opts o = {0};
	sigset_t stop_set;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap;
	char errstr[512];
	int sfd, rc = mock_parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;

	/* Block the stop signals before librdkafka starts its threads. */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	sfd = signalfd(-1, &stop_set, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "wb-mock-kafka: signalfd: %s\n", strerror(errno));
		return MOCK_EXIT_RUNTIME;
	}
	signal(SIGPIPE, SIG_IGN); /* a reader that closed stdout must not kill us */

	/*
	 * No bootstrap.servers: this handle never connects anywhere. log_level 4
	 * (warning) hides the notice that says so, which would only mislead;
	 * the mock's warnings and errors, logged through this handle, still show.
	 */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log.connection.close", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "wb-mock-kafka: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		close(sfd);
		return MOCK_EXIT_RUNTIME;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!rk) {
		fprintf(stderr, "wb-mock-kafka: rd_kafka_new: %s\n", errstr);
		rd_kafka_conf_destroy(conf); /* rd_kafka_new takes conf only on success */
		close(sfd);
		return MOCK_EXIT_RUNTIME;
	}
	mc = rd_kafka_mock_cluster_new(rk, o.brokers);
	if (!mc) {
		fprintf(stderr, "wb-mock-kafka: rd_kafka_mock_cluster_new failed\n");
		rc = MOCK_EXIT_RUNTIME;
		goto out_destroy_rk;
	}
	for (int i = 0; i < o.topic_cnt; i++) {
		rd_kafka_resp_err_t err =
			rd_kafka_mock_topic_create(mc, o.topics[i].name, o.topics[i].partitions, 1);

		if (err) {
			fprintf(stderr, "wb-mock-kafka: creating topic %s: %s\n", o.topics[i].name,
				rd_kafka_err2str(err));
			rc = MOCK_EXIT_RUNTIME;
			goto out_destroy_mc;
		}
	}
	bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	if (printf("bootstrap=%s\n", bootstrap) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "wb-mock-kafka: cannot write to stdout: %s\n", strerror(errno));
		rc = MOCK_EXIT_RUNTIME;
		goto out_destroy_mc;
	}
	if (!o.quiet) {
		fprintf(stderr, "wb-mock-kafka: librdkafka %s mock, %d broker%s at %s, topics", rd_kafka_version_str(),
			o.brokers, o.brokers == 1 ? "" : "s", bootstrap);
		for (int i = 0; i < o.topic_cnt; i++)
			fprintf(stderr, "%s %s:%d", i ? "," : "", o.topics[i].name, o.topics[i].partitions);
		fprintf(stderr, "; pid %ld, stop with SIGTERM or Ctrl-C%s\n", (long)getpid(),
			o.exit_on_stdin_eof ? " or by closing stdin" : "");
	}
	mock_serve(rk, mc, o.brokers, sfd, o.exit_on_stdin_eof);
	rc = MOCK_EXIT_OK;
out_destroy_mc:
	rd_kafka_mock_cluster_destroy(mc);
out_destroy_rk:
	rd_kafka_destroy(rk);
	close(sfd);
	return rc;
}
