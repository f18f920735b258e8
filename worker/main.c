/*
 * main.c - the wabot-worker command line: picks the subcommand, loads the
 * configuration, builds the parts, runs, and chooses the exit code
 * (0 ok, 1 runtime failure, 2 bad usage or configuration). Nothing else in
 * the project exits.
 *
 * Mutable globals of the process (the only ones): the log level and log fd
 * (common/log.c).
 * Subcommands so far: demo. run, replay, lag and check arrive with the
 * Kafka worker, the conversation engine and the operations work.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctx_store.h"
#include "demo.h"
#include "log.h"

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f, "usage: wabot-worker <command> [flags]\n"
		   "\n"
		   "commands:\n"
		   "  demo    play a sample donations conversation of three users through the\n"
		   "          context store (memory, or Redis when REDIS_URL or\n"
		   "          AZURE_REDIS_CONNECTIONSTRING is set) and print each step\n"
		   "\n"
		   "Run 'wabot-worker <command> --help' for the flags and environment.\n");
}

static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int cmd_demo(int argc, char **argv)
{
	struct wb_config cfg;
	char errstr[512] = "";
	ctx_store_t *cs;
	wb_err_t err;

	if (wants_help(argc, argv)) {
		printf("usage: wabot-worker demo [flags]\n\n");
		config_usage(stdout);
		return 0;
	}
	if (config_load(&cfg, argc, argv, environ, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wabot-worker: %s\n", errstr);
		return 2;
	}
	log_set_level(cfg.log_level);
	log_at(LOG_INFO, "starting demo", LOG_STR("store", cfg.redis_source ? "redis" : "memory"),
	       LOG_STR("selected_by", cfg.redis_source), LOG_UINT("context_ttl_s", cfg.context_ttl_s),
	       LOG_UINT("memory_max_entries", cfg.context_max_entries),
	       LOG_UINT("memory_max_bytes", cfg.context_max_bytes), LOG_STR("log_level", log_level_name(cfg.log_level)));

	cs = ctx_store_new(&cfg.store, errstr, sizeof(errstr));
	if (!cs) {
		log_at(LOG_ERROR, "context store unavailable", LOG_STR("reason", errstr));
		config_fini(&cfg);
		return 1;
	}
	log_at(LOG_INFO, "context store ready", LOG_STR("backend", ctx_store_backend_name(cs)));
	err = demo_run(cs, stdout);
	{
		struct ctx_store_stats st;

		ctx_store_stats(cs, &st);
		log_at(LOG_INFO, "demo finished", LOG_ERR("result", err), LOG_UINT("hits", st.hits),
		       LOG_UINT("misses", st.misses), LOG_UINT("puts", st.puts), LOG_UINT("conflicts", st.conflicts),
		       LOG_UINT("errors", st.errors));
	}
	ctx_store_destroy(cs);
	config_fini(&cfg);
	return err == WB_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "demo") == 0)
		return cmd_demo(argc - 2, argv + 2);
	fprintf(stderr, "wabot-worker: unknown command \"%.40s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
