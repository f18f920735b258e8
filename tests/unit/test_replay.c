/*
 * test_replay.c - `wabot-worker replay` as a user runs it, checked on the
 * meaning of its output (the golden files check the bytes): every user of
 * the sample recording reaches the end of the donations conversation, a
 * redelivered event re-emits the same replies without advancing anything, a
 * broken record is dead-lettered with its reason while the stream goes on,
 * the same recording gives the same output against a real redis-server, and
 * --expect reports differences with exit code 1.
 * WB_BINARY is the built binary, WB_REPLAY_DIR holds the recordings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "redis_server.h"
#include "run_binary.h"

#ifndef WB_BINARY
#error "WB_BINARY must name the wabot-worker binary"
#endif
#ifndef WB_REPLAY_DIR
#error "WB_REPLAY_DIR must name tests/data/replay"
#endif

#define SAMPLE WB_REPLAY_DIR "/sample.jsonl"

/* One output line, parsed. */
struct out_line {
	json_object *o;
	const char *topic;
	const char *key;
	json_object *value;
};

/* Splits r->out into parsed lines; returns their number (max cap). */
static size_t parse_lines(const struct run_result *r, struct out_line *lines, size_t cap)
{
	char *copy = strdup(r->out), *save = NULL, *s;
	size_t n = 0;

	for (s = strtok_r(copy, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(s);

		cr_assert_not_null(o, "output line is not JSON: %s", s);
		cr_assert_lt(n, cap);
		lines[n].o = o;
		lines[n].topic = json_object_get_string(json_object_object_get(o, "topic"));
		lines[n].key = json_object_get_string(json_object_object_get(o, "key"));
		lines[n].value = json_object_object_get(o, "value");
		cr_assert_not_null(lines[n].topic);
		cr_assert_not_null(lines[n].value);
		n++;
	}
	free(copy);
	return n;
}

static void free_lines(struct out_line *lines, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_object_put(lines[i].o);
}

static const char *vstr(json_object *v, const char *k)
{
	json_object *f;

	return json_object_object_get_ex(v, k, &f) ? json_object_get_string(f) : NULL;
}

/* The last conversation_step seen in a reply to key. */
static const char *last_step(struct out_line *lines, size_t n, const char *key)
{
	const char *step = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(lines[i].topic, "wa.outbound") == 0 && strcmp(lines[i].key, key) == 0)
			step = vstr(lines[i].value, "conversation_step");
	return step;
}

Test(replay, sample_conversations_complete_for_every_user, .timeout = 60)
{
	static struct out_line lines[400];
	struct run_result r;
	size_t n, i, dlq = 0, confirmations = 0;

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input " SAMPLE), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	n = parse_lines(&r, lines, 400);
	cr_assert_gt(n, 20);
	cr_assert_str_eq(last_step(lines, n, "+573001234567"), "completed");
	cr_assert_str_eq(last_step(lines, n, "+573109876543"), "completed");
	cr_assert_str_eq(last_step(lines, n, "+5215512345678"), "completed");
	cr_assert_str_eq(last_step(lines, n, "+34612345678"), "cancelled");
	for (i = 0; i < n; i++) {
		json_object *v = lines[i].value;
		const char *step;

		if (strcmp(lines[i].topic, "wa.dlq") == 0) {
			dlq++;
			cr_assert_str_eq(vstr(v, "reason"), "invalid_json");
			cr_assert_str_eq(vstr(v, "stage"), "decode");
			cr_assert(strstr(vstr(v, "payload"), "broken-record"), "the original bytes travel along");
			continue;
		}
		cr_assert_str_eq(lines[i].topic, "wa.outbound");
		cr_assert_str_eq(vstr(v, "phone"), lines[i].key);
		step = vstr(v, "conversation_step");
		if (step && strcmp(step, "waiting_for_confirmation") == 0) {
			const char *body = json_object_to_json_string(json_object_object_get(v, "request"));

			/* the confirmation repeats what is being confirmed */
			if (strcmp(lines[i].key, "+573001234567") == 0) {
				cr_assert(strstr(body, "Juan P"), "%s", body);
				cr_assert(strstr(body, "Educaci"), "%s", body);
			}
			confirmations++;
		}
	}
	cr_assert_eq(dlq, 1, "exactly the broken record is dead-lettered");
	cr_assert_geq(confirmations, 4);
	/* logs name phones only masked */
	cr_assert_null(strstr(r.err, "573001234567"));
	cr_assert_null(strstr(r.err, "34612345678"));
	free_lines(lines, n);
	run_result_fini(&r);
}

Test(replay, a_redelivered_event_reemits_its_replies_and_advances_nothing, .timeout = 60)
{
	static struct out_line lines[400];
	struct run_result r;
	size_t n, i, j, repeated = 0;

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input " WB_REPLAY_DIR "/duplicates.jsonl"), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	n = parse_lines(&r, lines, 400);
	/* every reply id that appears twice carries the same reply, byte for byte */
	for (i = 0; i < n; i++) {
		const char *id = vstr(lines[i].value, "reply_id");

		for (j = i + 1; id && j < n; j++) {
			const char *id2 = vstr(lines[j].value, "reply_id");

			if (id2 && strcmp(id, id2) == 0) {
				cr_assert_str_eq(json_object_to_json_string(lines[i].value),
						 json_object_to_json_string(lines[j].value));
				repeated++;
			}
		}
	}
	cr_assert_geq(repeated, 4, "the duplicates re-emit their replies");
	/* the conversation advanced once per distinct event: the first
	 * appearance of each reply id, in order, walks the flow exactly once
	 * (a re-emitted reply keeps the step it was first sent with) */
	{
		static const char *walk[] = {"waiting_for_name", "waiting_for_ministry", "waiting_for_confirmation",
					     "completed"};
		size_t k = 0;

		for (i = 0; i < n; i++) {
			const char *id = vstr(lines[i].value, "reply_id");
			bool first = true;

			if (!id || strcmp(lines[i].key, "+573001234567") != 0)
				continue;
			for (j = 0; j < i && first; j++)
				first = !vstr(lines[j].value, "reply_id") ||
					strcmp(vstr(lines[j].value, "reply_id"), id) != 0;
			if (!first)
				continue;
			cr_assert_lt(k, 4u, "more distinct replies than steps: %s", id);
			cr_assert_str_eq(vstr(lines[i].value, "conversation_step"), walk[k]);
			k++;
		}
		cr_assert_eq(k, 4u);
	}
	cr_assert_str_eq(last_step(lines, n, "+573109876543"), "waiting_for_name");
	free_lines(lines, n);
	run_result_fini(&r);
}

Test(replay, malformed_records_are_dead_lettered_and_the_stream_goes_on, .timeout = 60)
{
	static struct out_line lines[400];
	static const char *want[] = {"invalid_json", "too_deep", "unknown_envelope", "not_object", "empty",
				     "no_sender", "wrong_type", "missing_field", "text_too_long", "invalid_utf8"};
	struct run_result r;
	size_t n, i, k;

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input " WB_REPLAY_DIR "/malformed.jsonl"), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	n = parse_lines(&r, lines, 400);
	for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		bool seen = false;

		for (i = 0; i < n && !seen; i++)
			seen = strcmp(lines[i].topic, "wa.dlq") == 0 && strcmp(vstr(lines[i].value, "reason"), want[k]) == 0;
		cr_assert(seen, "no dead-letter record with reason %s", want[k]);
	}
	for (i = 0; i < n; i++) {
		if (strcmp(lines[i].topic, "wa.dlq") != 0)
			continue;
		cr_assert(vstr(lines[i].value, "payload") || vstr(lines[i].value, "payload_base64"),
			  "a dead-letter record carries the original bytes");
		cr_assert(vstr(lines[i].value, "error"));
	}
	cr_assert_str_eq(last_step(lines, n, "+573001234567"), "completed");
	cr_assert_str_eq(last_step(lines, n, "+573109876543"), "completed");
	free_lines(lines, n);
	run_result_fini(&r);
}

Test(replay, same_output_against_a_real_redis, .timeout = 90)
{
	struct redis_server *rs = redis_server_start(REDIS_SERVER_PASSWORD);
	struct run_result mem, red;
	char env[512];

	cr_assert_not_null(rs);
	cr_assert_eq(run_binary(&mem, WB_BINARY, "", "replay --input " SAMPLE), 0);
	snprintf(env, sizeof(env), "REDIS_URL=%s", redis_server_url(rs));
	cr_assert_eq(run_binary(&red, WB_BINARY, env, "replay --input " SAMPLE), 0);
	cr_assert_eq(red.status, 0, "stderr: %s", red.err);
	cr_assert(strstr(red.err, "\"store\":\"redis\""), "%s", red.err);
	cr_assert_str_eq(red.out, mem.out);
	cr_assert_null(strstr(red.err, REDIS_SERVER_PASSWORD_VALUE));
	run_result_fini(&mem);
	run_result_fini(&red);
	redis_server_stop(rs);
}

Test(replay, expect_reports_differences_with_exit_1)
{
	char path[] = "/tmp/wb_golden_XXXXXX", args[512];
	struct run_result r;
	FILE *f;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input " WB_REPLAY_DIR "/plain.jsonl"), 0);
	cr_assert_eq(r.status, 0);
	/* the real output with one reply's text changed */
	f = fdopen(fd, "w");
	{
		char *at = strstr(r.out, "waiting_for_name");

		cr_assert_not_null(at);
		memcpy(at, "waiting_for_nome", 16);
		fwrite(r.out, 1, r.out_len, f);
	}
	fclose(f);
	run_result_fini(&r);
	snprintf(args, sizeof(args), "replay --input %s/plain.jsonl --expect %s", WB_REPLAY_DIR, path);
	cr_assert_eq(run_binary(&r, WB_BINARY, "", args), 0);
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "differs"), "%s", r.err);
	cr_assert(strstr(r.err, "expected:"));
	cr_assert(strstr(r.err, "waiting_for_nome"));
	cr_assert(strstr(r.err, "in 1 lines"), "%s", r.err);
	cr_assert_str_eq(r.out, "", "--expect without --output prints no records");
	run_result_fini(&r);
	unlink(path);
}

Test(replay, text_format_masks_phones_and_shows_the_steps)
{
	struct run_result r;

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --format text --input " SAMPLE), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "+57******4567"), "%s", r.out);
	cr_assert(strstr(r.out, "waiting_for_confirmation"));
	cr_assert(strstr(r.out, "DEAD-LETTER"));
	cr_assert_null(strstr(r.out, "+573001234567"), "text output masks phones");
	run_result_fini(&r);
}

Test(replay, usage_and_configuration_errors_exit_2)
{
	struct run_result r;
	char path[] = "/tmp/wb_flow_XXXXXX", args[256];
	int fd;

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --help"), 0);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "--expect"));
	run_result_fini(&r);

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --format yaml --input " SAMPLE), 0);
	cr_assert_eq(r.status, 2);
	run_result_fini(&r);

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input /nonexistent/recording.jsonl"), 0);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "/nonexistent/recording.jsonl"));
	run_result_fini(&r);

	cr_assert_eq(run_binary(&r, WB_BINARY, "", "replay --input"), 0);
	cr_assert_eq(r.status, 2);
	run_result_fini(&r);

	/* an invalid flow file names the JSON path of the problem */
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "{\"name\": 5}", 11), 11);
	close(fd);
	snprintf(args, sizeof(args), "FLOW_FILE=%s", path);
	cr_assert_eq(run_binary(&r, WB_BINARY, args, "replay --input " SAMPLE), 0);
	cr_assert_eq(r.status, 2, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "$."), "%s", r.err);
	cr_assert_eq(r.out_len, 0u);
	run_result_fini(&r);
	unlink(path);
}

Test(replay, large_inputs_report_progress, .timeout = 120)
{
	char path[] = "/tmp/wb_big_XXXXXX", args[256];
	struct run_result r;
	FILE *f;
	int fd = mkstemp(path), i;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	for (i = 0; i < 6000; i++)
		fprintf(f,
			"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":"
			"\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"109283746501928\"},\"messages\":"
			"[{\"from\":\"5730%08d\",\"id\":\"wamid.%d\",\"timestamp\":\"1795183391\",\"type\":\"text\","
			"\"text\":{\"body\":\"quiero donar\"}}]}}]}]}\n",
			i, i);
	fclose(f);
	snprintf(args, sizeof(args), "replay --input %s --output /dev/null", path);
	cr_assert_eq(run_binary(&r, WB_BINARY, "", args), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "replay: 5000 lines, 5000 events"), "%s", r.err);
	cr_assert(strstr(r.err, "\"replies\":"), "a summary closes the run");
	run_result_fini(&r);
	unlink(path);
}
