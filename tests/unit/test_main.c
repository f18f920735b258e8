/*
 * test_main.c - the wabot-worker binary as a user runs it: exit codes
 * (0 ok, 1 runtime failure, 2 bad usage or configuration), one clear line for
 * a bad setting, no secret in any output, and the demo (the shipped sample
 * recording through librdkafka's mock Kafka cluster and the real worker:
 * consumer group, lanes, store, flow, producer) bringing every user to the
 * end of the conversation, against memory and a real redis-server.
 * WB_BINARY is the path of the built binary (set by CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "redis_server.h"
#include "run_binary.h"

#ifndef WB_BINARY
#error "WB_BINARY must name the wabot-worker binary"
#endif

/* Runs WB_BINARY with a clean environment plus env; see run_binary.h. */
static void run(struct run_result *r, const char *env, const char *args)
{
	cr_assert_eq(run_binary(r, WB_BINARY, env, args), 0);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(main, no_command_is_a_usage_error)
{
	struct run_result r;

	run(&r, "", "");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "usage:"));
	run_result_fini(&r);
}

Test(main, unknown_command_is_a_usage_error)
{
	struct run_result r;

	run(&r, "", "frobnicate");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "unknown command"));
	run_result_fini(&r);
}

Test(main, help_exits_0_and_lists_the_settings)
{
	struct run_result r;

	run(&r, "", "demo --help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "REDIS_URL"));
	cr_assert(strstr(r.out, "CONTEXT_TTL_SECONDS"));
	run_result_fini(&r);
}

Test(main, every_command_has_help_and_the_top_usage_names_them)
{
	static const char *const cmds[] = {"run", "demo", "replay", "lag", "check"};
	struct run_result r;
	size_t i;

	run(&r, "", "--help");
	cr_assert_eq(r.status, 0);
	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char line[32];

		snprintf(line, sizeof line, "\n  %s ", cmds[i]);
		cr_assert(strstr(r.out, line), "top usage lacks %s:\n%s", cmds[i], r.out);
	}
	run_result_fini(&r);
	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char args[32];

		snprintf(args, sizeof args, "%s --help", cmds[i]);
		run(&r, "", args);
		cr_assert_eq(r.status, 0, "%s", args);
		cr_assert(strstr(r.out, "usage: wabot-worker ") && strstr(r.out, "KAFKA_BROKERS"), "%s:\n%s", args, r.out);
		run_result_fini(&r);
	}
}

Test(main, bad_setting_stops_with_2_and_one_line_naming_it)
{
	struct run_result r;

	run(&r, "CONTEXT_TTL_SECONDS=-5", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "CONTEXT_TTL_SECONDS"), "stderr: %s", r.err);
	cr_assert_eq(count_lines(r.err), 1, "stderr: %s", r.err);
	run_result_fini(&r);

	run(&r, "LOG_LEVEL=verbose", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "LOG_LEVEL"));
	run_result_fini(&r);
}

Test(main, malformed_connection_string_never_echoes_the_secret)
{
	struct run_result r;

	run(&r, "REDIS_URL=redis://:Sup3rS3cret@127.0.0.1:99999/0", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "REDIS_URL"));
	cr_assert_null(strstr(r.err, "Sup3rS3cret"), "stderr: %s", r.err);
	run_result_fini(&r);
}

Test(main, unreachable_redis_is_a_runtime_failure)
{
	struct run_result r;

	/* port 1 on loopback: nothing listens there */
	run(&r, "REDIS_URL=redis://:Sup3rS3cret@127.0.0.1:1/0 REDIS_CONNECT_TIMEOUT_MS=500", "demo");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	cr_assert_null(strstr(r.err, "Sup3rS3cret"));
	cr_assert_null(strstr(r.out, "Sup3rS3cret"));
}

/* The demo's lines ("<masked phone>  <step>  <reply text>"): every user ends
 * where the recording takes them, the confirmation repeats the name and the
 * ministry, and no full phone number appears anywhere. */
static void check_demo(const struct run_result *r)
{
	static const char *const masked[] = {"+57******4567", "+57******6543", "+52*******5678", "+34*****5678"};
	static const char *const final[] = {"completed", "completed", "completed", "cancelled"};
	static const char *const phones[] = {"573001234567", "573109876543", "5215512345678", "34612345678"};
	char *out = strdup(r->out), *save = NULL, *line;
	const char *last[4] = {NULL, NULL, NULL, NULL};
	int lines = 0, confirm = 0, summary = 0;
	size_t i;

	cr_assert_eq(r->status, 0, "stderr: %s", r->err);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "demo: ", 6) == 0) {
			summary += strstr(line, "24 replies and 1 dead letters out, every offset committed") != NULL;
			continue;
		}
		lines++;
		for (i = 0; i < 4; i++) {
			size_t ml = strlen(masked[i]);

			if (strncmp(line, masked[i], ml) != 0 || line[ml] != ' ')
				continue;
			if (strstr(line, "DEAD-LETTER"))
				break;
			last[i] = line + ml + 2;
			if (i == 0 && strncmp(last[i], "waiting_for_confirmation", 24) == 0) {
				cr_assert(strstr(line, "Juan P\xc3\xa9rez"), "%s", line);
				cr_assert(strstr(line, "Educaci\xc3\xb3n"), "%s", line);
				confirm++;
			}
		}
	}
	for (i = 0; i < 4; i++) {
		cr_assert_not_null(last[i], "no reply for %s", masked[i]);
		cr_assert_eq(strncmp(last[i], final[i], strlen(final[i])), 0, "%s ends at: %s", masked[i], last[i]);
		cr_assert_null(strstr(r->out, phones[i]), "a full phone number in the output");
		cr_assert_null(strstr(r->err, phones[i]), "a full phone number reached the logs");
	}
	cr_assert_eq(confirm, 1);
	cr_assert_eq(lines, 25, "24 replies and one dead-lettered record");
	cr_assert_eq(summary, 1, "the closing line: %s", r->out);
	free(out);
}

Test(main, demo_completes_every_conversation_in_memory)
{
	struct run_result r;

	run(&r, "LOG_LEVEL=debug", "demo");
	check_demo(&r);
	cr_assert(strstr(r.err, "\"store\":\"memory\""), "%s", r.err);
	run_result_fini(&r);
	run_result_fini(&r);
}

Test(main, demo_completes_every_conversation_against_redis, .timeout = 60)
{
	struct redis_server *rs = redis_server_start(REDIS_SERVER_PASSWORD);
	char env[512];
	struct run_result r;

	cr_assert_not_null(rs);
	snprintf(env, sizeof(env), "LOG_LEVEL=debug REDIS_URL=%s", redis_server_url(rs));
	run(&r, env, "demo");
	check_demo(&r);
	cr_assert(strstr(r.err, "\"store\":\"redis\""));
	cr_assert_null(strstr(r.err, REDIS_SERVER_PASSWORD_VALUE), "the password reached the logs");
	run_result_fini(&r);
	redis_server_stop(rs);
}
