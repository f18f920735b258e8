/*
 * test_main.c - the wabot-worker binary as a user runs it: exit codes
 * (0 ok, 1 runtime failure, 2 bad usage or configuration), one clear line for
 * a bad setting, no secret in any output, and the demo conversation reaching
 * its end for every user, against memory and against a real redis-server.
 * WB_BINARY is the path of the built binary (set by CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "redis_server.h"

#ifndef WB_BINARY
#error "WB_BINARY must name the wabot-worker binary"
#endif

struct run {
	int status;     /* exit code */
	char out[16384]; /* stdout */
	char err[16384]; /* stderr */
};

/* Runs "env -i <env> WB_BINARY <args>" through sh; captures both streams. */
static void run(struct run *r, const char *env, const char *args)
{
	char cmd[4096], errfile[] = "/tmp/wb_test_main_XXXXXX";
	FILE *p, *e;
	size_t n;
	int fd = mkstemp(errfile);

	cr_assert_geq(fd, 0);
	snprintf(cmd, sizeof(cmd), "env -i %s %s %s 2>%s", env, WB_BINARY, args, errfile);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(r->out, 1, sizeof(r->out) - 1, p);
	r->out[n] = '\0';
	r->status = WEXITSTATUS(pclose(p));
	e = fdopen(fd, "r");
	n = fread(r->err, 1, sizeof(r->err) - 1, e);
	r->err[n] = '\0';
	fclose(e);
	unlink(errfile);
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
	struct run r;

	run(&r, "", "");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "usage:"));
}

Test(main, unknown_command_is_a_usage_error)
{
	struct run r;

	run(&r, "", "frobnicate");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "unknown command"));
}

Test(main, help_exits_0_and_lists_the_settings)
{
	struct run r;

	run(&r, "", "demo --help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "REDIS_URL"));
	cr_assert(strstr(r.out, "CONTEXT_TTL_SECONDS"));
}

Test(main, bad_setting_stops_with_2_and_one_line_naming_it)
{
	struct run r;

	run(&r, "CONTEXT_TTL_SECONDS=-5", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "CONTEXT_TTL_SECONDS"), "stderr: %s", r.err);
	cr_assert_eq(count_lines(r.err), 1, "stderr: %s", r.err);

	run(&r, "LOG_LEVEL=verbose", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "LOG_LEVEL"));
}

Test(main, malformed_connection_string_never_echoes_the_secret)
{
	struct run r;

	run(&r, "REDIS_URL=redis://:Sup3rS3cret@127.0.0.1:99999/0", "demo");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "REDIS_URL"));
	cr_assert_null(strstr(r.err, "Sup3rS3cret"), "stderr: %s", r.err);
}

Test(main, unreachable_redis_is_a_runtime_failure)
{
	struct run r;

	/* port 1 on loopback: nothing listens there */
	run(&r, "REDIS_URL=redis://:Sup3rS3cret@127.0.0.1:1/0 REDIS_CONNECT_TIMEOUT_MS=500", "demo");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	cr_assert_null(strstr(r.err, "Sup3rS3cret"));
	cr_assert_null(strstr(r.out, "Sup3rS3cret"));
}

/* The demo's lines: every phone must end "completed" with its name and
 * ministry, and no full phone number may appear in the logs. */
static void check_demo(const struct run *r)
{
	const char *phones[] = {"+573001234567", "+573109876543", "+5215512345678"};
	const char *names[] = {"Juan Pérez", "María Fernanda López", "Ana Gómez"};
	char *out = strdup(r->out), *save = NULL, *line;
	int lines = 0, done = 0;
	size_t i;

	cr_assert_eq(r->status, 0, "stderr: %s", r->err);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line), *ctx, *f;

		cr_assert_not_null(o, "not JSON: %s", line);
		lines++;
		cr_assert(json_object_object_get_ex(o, "context", &ctx));
		cr_assert(json_object_object_get_ex(ctx, "conversation_step", &f));
		if (strcmp(json_object_get_string(f), "completed") == 0) {
			const char *phone = json_object_get_string(json_object_object_get(o, "phone"));

			for (i = 0; i < 3; i++)
				if (strcmp(phone, phones[i]) == 0)
					cr_assert_str_eq(
						json_object_get_string(json_object_object_get(ctx, "customer_name")),
						names[i]);
			cr_assert(json_object_object_get_ex(ctx, "ministry_name", &f));
			cr_assert_str_eq(json_object_get_string(json_object_object_get(ctx, "last_intent")),
					 "donations");
			cr_assert_eq(json_object_get_int(json_object_object_get(o, "version")), 4);
			done++;
		}
		json_object_put(o);
	}
	free(out);
	cr_assert_eq(lines, 12);
	cr_assert_eq(done, 3);
	for (i = 0; i < 3; i++)
		cr_assert_null(strstr(r->err, phones[i]), "a full phone number reached the logs");
}

Test(main, demo_completes_three_donations_in_memory)
{
	struct run r;

	run(&r, "LOG_LEVEL=debug", "demo");
	check_demo(&r);
	cr_assert(strstr(r.err, "\"backend\":\"memory\""));
	cr_assert(strstr(r.err, "context saved"), "debug logs carry the seed's messages");
}

Test(main, demo_completes_three_donations_against_redis, .timeout = 60)
{
	struct redis_server *rs = redis_server_start(REDIS_SERVER_PASSWORD);
	char env[512];
	struct run r;

	cr_assert_not_null(rs);
	snprintf(env, sizeof(env), "LOG_LEVEL=debug REDIS_URL=%s", redis_server_url(rs));
	run(&r, env, "demo");
	check_demo(&r);
	cr_assert(strstr(r.err, "\"backend\":\"redis\""));
	cr_assert_null(strstr(r.err, REDIS_SERVER_PASSWORD_VALUE), "the password reached the logs");
	redis_server_stop(rs);
}
