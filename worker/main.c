/*
 * main.c - the wabot-worker command line: picks the subcommand, loads the
 * configuration, builds the parts, runs, and chooses the exit code
 * (0 ok, 1 runtime failure, 2 bad usage or configuration). Nothing else in
 * the project exits.
 *
 * Mutable globals of the process (the only ones): the log level and log fd
 * (common/log.c).
 * Subcommands: run, demo, replay, lag, check.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "demo.h"
#include "lag.h"
#include "replay.h"
#include "run.h"

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f, "usage: wabot-worker <command> [flags]\n"
		   "\n"
		   "commands:\n"
		   "  run     the worker: consume WhatsApp events from Kafka as a consumer group,\n"
		   "          advance each conversation, produce the replies (KAFKA_BROKERS needed)\n"
		   "  demo    the worker against a Kafka of its own (librdkafka's mock cluster,\n"
		   "          in-process): plays the sample recording shipped in the binary (four\n"
		   "          users donating at once over ACS and Meta) into the inbound topic and\n"
		   "          prints each reply as it arrives on the outbound topic\n"
		   "  replay  run a recorded topic (kcat -C -J lines or event payloads) through\n"
		   "          decode, context store, flow and replies, and print the output\n"
		   "          records; --expect FILE compares them with a golden file\n"
		   "  lag     the consumer group's committed offset, high watermark, lag and owner\n"
		   "          per partition of the inbound topic, and the total (--json, --max-lag)\n"
		   "  check   diagnostics: configuration (secrets hidden), flow file, context store\n"
		   "          round trip, brokers, topics, group; ok/warn/FAIL per line\n"
		   "\n"
		   "Run 'wabot-worker <command> --help' for the flags and environment.\n");
}

/*
 * glibc's malloc returns freed memory to the kernel eagerly (heap trimming,
 * and a fresh mmap for each large block such as librdkafka's fetch
 * buffers), and the worker allocates and frees at a high rate from several
 * threads: the memory comes back as page faults and TLB shootdowns, about
 * 1 us per event in bench_kafka (perf: clear_page, smp_call_function).
 * Keeping it costs a few tens of MB of RSS at most.
 */
static void tune_malloc(void)
{
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
}

int main(int argc, char **argv)
{
	tune_malloc();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return run_main(argc - 2, argv + 2, environ);
	if (strcmp(argv[1], "demo") == 0)
		return demo_main(argc - 2, argv + 2, environ);
	if (strcmp(argv[1], "replay") == 0)
		return replay_main(argc - 2, argv + 2, environ);
	if (strcmp(argv[1], "lag") == 0)
		return lag_main(argc - 2, argv + 2, environ);
	if (strcmp(argv[1], "check") == 0)
		return check_main(argc - 2, argv + 2, environ);
	fprintf(stderr, "wabot-worker: unknown command \"%.40s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
