/*
 * replay.c - see replay.h. Owns, for one run: the configuration, the
 * context store, the flow, one pipeline, the input line buffer and (with
 * --expect) the whole output kept in memory for the comparison.
 */
#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "clock.h"
#include "config.h"
#include "ctx_store.h"
#include "flow.h"
#include "jbuf.h"
#include "json.h"
#include "log.h"
#include "phone.h"
#include "pipeline.h"

/* A progress line on stderr every this many records (inputs this large or larger). */
#define REPLAY_PROGRESS_EVERY 5000u
/* Differences shown by --expect before "... and N more". */
#define REPLAY_MAX_DIFFS 10

enum replay_format {
	REPLAY_JSONL = 0,
	REPLAY_TEXT,
};

struct replay {
	const char *outbound_topic;
	const char *dlq_topic;
	enum replay_format format;
	FILE *out;             /* --output or stdout; NULL with --expect and no --output */
	struct jbuf line;      /* one output line */
	struct jbuf all;       /* every output line, for --expect */
	bool keep_all;
	struct json_doc doc;   /* input lines, and reply values in text format */
	char *payload;         /* decoded kcat payload */
	size_t payload_cap;
	bool write_failed;
};

/* Replay's own flags, taken out of argv before the configuration sees it. */
struct replay_args {
	const char *input;
	const char *output;
	const char *expect;
	const char *format;
};

static void replay_usage(FILE *f)
{
	fprintf(f, "usage: wabot-worker replay [--input FILE] [--output FILE] [--expect FILE]\n"
		   "                            [--format jsonl|text] [configuration flags]\n"
		   "\n"
		   "Runs a recorded topic through decode -> context store -> flow -> reply, as the\n"
		   "worker does, and writes one JSON line per output record:\n"
		   "  {\"topic\":\"wa.outbound\",\"key\":\"+57...\",\"value\":{reply envelope}}\n"
		   "  {\"topic\":\"wa.dlq\",\"key\":\"...\",\"value\":{dead-letter record with the reason}}\n"
		   "\n"
		   "  --input FILE    lines written by 'kcat -C -J' (topic, partition, offset, key,\n"
		   "                  payload) and/or plain event payloads, one per line; default stdin\n"
		   "  --output FILE   write there instead of stdout\n"
		   "  --expect FILE   compare the output with FILE (a golden file); exit 1 and show\n"
		   "                  the differences when they differ\n"
		   "  --format text   one readable line per reply instead of JSON (not with --expect)\n"
		   "\n"
		   "The context store is memory unless REDIS_URL or AZURE_REDIS_CONNECTIONSTRING is\n"
		   "set, so a recording can also be replayed against a real Redis.\n\n");
	config_usage(f);
}

/* The body text and button titles of a reply envelope, for --format text. */
static void text_of_reply(struct replay *r, const char *value, size_t len, struct jbuf *b)
{
	struct json_doc *d = &r->doc;
	uint32_t body, t, ia, act, it;
	static const char *paths[][3] = {
		{"content", NULL, NULL},          /* ACS text */
		{"text", "body", NULL},           /* Meta text */
		{"interactiveMessage", "body", "text"},
		{"interactive", "body", "text"},
	};
	size_t i, k;
	char *tmp;

	if (json_parse(d, value, len, NULL) != JSON_OK)
		return;
	body = json_get(d, json_get(d, 0, "request"), "body");
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		t = body;
		for (k = 0; k < 3 && paths[i][k] && t != JSON_NONE; k++)
			t = json_get(d, t, paths[i][k]);
		if (t != JSON_NONE && json_type_of(d, t) == JSON_STRING)
			break;
	}
	if (i == sizeof(paths) / sizeof(paths[0]))
		return;
	tmp = malloc((size_t)d->toks[t].len + 1);
	if (!tmp)
		return;
	json_str_decode(d, t, tmp, (size_t)d->toks[t].len + 1);
	for (k = 0; tmp[k]; k++)
		if (tmp[k] == '\n')
			tmp[k] = ' ';
	jbuf_cstr(b, tmp);
	free(tmp);
	/* buttons: ACS action.content.buttons[].title, Meta action.buttons[].reply.title */
	ia = json_get(d, body, "interactiveMessage");
	if (ia == JSON_NONE)
		ia = json_get(d, body, "interactive");
	act = json_get(d, ia, "action");
	t = json_get(d, json_get(d, act, "content"), "buttons");
	if (t == JSON_NONE)
		t = json_get(d, act, "buttons");
	if (t == JSON_NONE || json_type_of(d, t) != JSON_ARRAY)
		return;
	jbuf_cstr(b, "  [");
	for (i = 0, it = json_first(d, t); i < d->toks[t].count; i++, it = json_after(d, it)) {
		uint32_t title = json_get(d, it, "title");
		char buf[128];

		if (title == JSON_NONE)
			title = json_get(d, json_get(d, it, "reply"), "title");
		if (title == JSON_NONE || json_str_decode(d, title, buf, sizeof(buf)) == (size_t)-1)
			continue;
		if (i)
			jbuf_cstr(b, " | ");
		jbuf_cstr(b, buf);
	}
	jbuf_ch(b, ']');
}

static wb_err_t replay_emit(void *opaque, const struct pipeline_output *o)
{
	enum pipeline_out kind = o->out;
	const char *key = o->key, *value = o->value;
	size_t key_len = o->key_len, len = o->len;
	struct replay *r = opaque;
	struct jbuf *b = &r->line;

	jbuf_reset(b);
	if (r->format == REPLAY_TEXT) {
		char masked[PHONE_MASK_MAX];

		phone_mask_n(key, key_len, masked, sizeof(masked));
		if (kind == PIPELINE_OUT_DLQ) {
			uint32_t t;

			/* reason and error only: the record carries the payload and
			 * the full key, which a readable line must not show */
			jbuf_cstr(b, masked);
			jbuf_cstr(b, "  DEAD-LETTER  ");
			if (json_parse(&r->doc, value, len, NULL) == JSON_OK) {
				size_t sl;
				const char *s;

				if ((t = json_get_type(&r->doc, 0, "reason", JSON_STRING)) != JSON_NONE) {
					s = json_str_raw(&r->doc, t, &sl);
					jbuf_raw(b, s, sl);
				}
				if ((t = json_get_type(&r->doc, 0, "error", JSON_STRING)) != JSON_NONE) {
					s = json_str_raw(&r->doc, t, &sl);
					jbuf_cstr(b, ": ");
					jbuf_raw(b, s, sl);
				}
			}
		} else {
			uint32_t step;

			jbuf_cstr(b, masked);
			jbuf_cstr(b, "  ");
			if (json_parse(&r->doc, value, len, NULL) == JSON_OK &&
			    (step = json_get_type(&r->doc, 0, "conversation_step", JSON_STRING)) != JSON_NONE) {
				size_t sl;
				const char *s = json_str_raw(&r->doc, step, &sl);

				jbuf_raw(b, s, sl);
				jbuf_cstr(b, "  ");
			}
			text_of_reply(r, value, len, b);
		}
	} else {
		jbuf_cstr(b, "{\"topic\":");
		jbuf_cstr_q(b, kind == PIPELINE_OUT_DLQ ? r->dlq_topic : r->outbound_topic);
		jbuf_cstr(b, ",\"key\":");
		jbuf_str(b, key, key_len);
		jbuf_cstr(b, ",\"value\":");
		jbuf_raw(b, value, len);
		jbuf_ch(b, '}');
	}
	jbuf_ch(b, '\n');
	if (b->oom)
		return WB_ERR_NOMEM;
	if (r->keep_all) {
		jbuf_raw(&r->all, b->p, b->len);
		if (r->all.oom)
			return WB_ERR_NOMEM;
	}
	if (r->out && fwrite(b->p, 1, b->len, r->out) != b->len) {
		r->write_failed = true;
		return WB_ERR_IO;
	}
	return WB_OK;
}

/*
 * Splits one input line into the record it stands for: a kcat -J object
 * (payload decoded into r->payload) or the line itself. Returns false for a
 * kcat record without payload (a tombstone: nothing to do).
 */
static bool replay_record(struct replay *r, const char *line, size_t len, struct pipeline_source *src,
			  const char **payload, size_t *plen, char *keybuf, size_t keycap)
{
	struct json_doc *d = &r->doc;
	uint32_t pl, t;
	int64_t v;

	*payload = line;
	*plen = len;
	*src = (struct pipeline_source){.partition = -1, .offset = -1, .timestamp_ms = -1};
	if (json_parse(d, line, len, NULL) != JSON_OK || json_type_of(d, 0) != JSON_OBJECT)
		return true;
	pl = json_get(d, 0, "payload");
	if (pl == JSON_NONE || (json_get(d, 0, "offset") == JSON_NONE && json_get(d, 0, "topic") == JSON_NONE))
		return true; /* a plain event payload */
	if (json_type_of(d, pl) == JSON_NULL)
		return false;
	if (json_type_of(d, pl) == JSON_STRING) {
		size_t need = (size_t)d->toks[pl].len + 1;

		if (need > r->payload_cap) {
			char *np = realloc(r->payload, need);

			if (!np)
				return true; /* dead-letters as the raw line: not silent */
			r->payload = np;
			r->payload_cap = need;
		}
		*plen = json_str_decode(d, pl, r->payload, r->payload_cap);
		*payload = r->payload;
	} else {
		/* kcat -J with a JSON payload written inline (some tools do) */
		*payload = json_raw(d, pl, plen);
	}
	if ((t = json_get(d, 0, "partition")) != JSON_NONE && json_num_i64(d, t, &v) && v >= 0 && v <= INT32_MAX)
		src->partition = (int32_t)v;
	if ((t = json_get(d, 0, "offset")) != JSON_NONE && json_num_i64(d, t, &v) && v >= 0)
		src->offset = v;
	if ((t = json_get_type(d, 0, "key", JSON_STRING)) != JSON_NONE) {
		size_t kl = json_str_decode(d, t, keybuf, keycap);

		if (kl != (size_t)-1) {
			src->key = keybuf;
			src->key_len = kl;
		}
	}
	/* src->topic stays NULL: the caller names the configured inbound
	 * topic (key and payload were copied out of d above, because the
	 * output callback reuses d). */
	return true;
}

/* Compares the output with the golden file line by line. Returns the
 * number of differing lines (printed to stderr), or -1 on a read error. */
static long replay_compare(const char *path, const char *got, size_t got_len)
{
	FILE *f = fopen(path, "rb");
	char *want = NULL;
	size_t want_len = 0, gi = 0, wi = 0;
	long diffs = 0, lineno = 0;

	if (!f) {
		fprintf(stderr, "wabot-worker replay: --expect %s: %s\n", path, strerror(errno));
		return -1;
	}
	{
		char buf[65536];
		size_t n;
		struct jbuf all;

		jbuf_init(&all);
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			jbuf_raw(&all, buf, n);
		fclose(f);
		if (all.oom) {
			jbuf_fini(&all);
			return -1;
		}
		want = all.p;
		want_len = all.len;
	}
	while (gi < got_len || wi < want_len) {
		const char *g = got + gi, *w = want ? want + wi : "";
		const char *ge = gi < got_len ? memchr(g, '\n', got_len - gi) : NULL;
		const char *we = wi < want_len ? memchr(w, '\n', want_len - wi) : NULL;
		size_t gl = gi < got_len ? (ge ? (size_t)(ge - g) : got_len - gi) : 0;
		size_t wl = wi < want_len ? (we ? (size_t)(we - w) : want_len - wi) : 0;
		bool g_has = gi < got_len, w_has = wi < want_len;

		lineno++;
		if (!(g_has && w_has && gl == wl && memcmp(g, w, gl) == 0)) {
			diffs++;
			if (diffs <= REPLAY_MAX_DIFFS) {
				size_t col = 0;

				while (col < gl && col < wl && g[col] == w[col])
					col++;
				fprintf(stderr, "line %ld differs%s:\n", lineno,
					!w_has ? " (not in the expected file)" : !g_has ? " (missing from the output)" : "");
				if (w_has)
					fprintf(stderr, "  - expected: %.*s\n", (int)(wl > 2000 ? 2000 : wl), w);
				if (g_has)
					fprintf(stderr, "  + got:      %.*s\n", (int)(gl > 2000 ? 2000 : gl), g);
				if (g_has && w_has)
					fprintf(stderr, "    first difference at column %zu: expected \"%.40s\", got \"%.40s\"\n",
						col + 1, w + col, g + col);
			}
		}
		gi = g_has ? gi + gl + 1 : gi;
		wi = w_has ? wi + wl + 1 : wi;
	}
	if (diffs > REPLAY_MAX_DIFFS)
		fprintf(stderr, "... and %ld more differing lines\n", diffs - REPLAY_MAX_DIFFS);
	free(want);
	return diffs;
}

int replay_main(int argc, char **argv, char **envp)
{
	struct replay_args ra = {0};
	const struct args_flag flags[] = {
		{"--input", true, &ra.input},
		{"--output", true, &ra.output},
		{"--expect", true, &ra.expect},
		{"--format", true, &ra.format},
	};
	struct wb_config cfg;
	struct replay r;
	char errstr[512] = "";
	flow_t *flow = NULL;
	ctx_store_t *cs = NULL;
	pipeline_t *p = NULL;
	FILE *in = stdin;
	char *line = NULL;
	size_t line_cap = 0;
	ssize_t n;
	int rc = 1, i;
	uint64_t lines = 0, tombstones = 0;
	double t0 = clock_mono_s();
	bool cfg_loaded = false;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			replay_usage(stdout);
			return 0;
		}
	}
	memset(&r, 0, sizeof(r));
	jbuf_init(&r.line);
	jbuf_init(&r.all);
	json_doc_init(&r.doc);
	if (!args_take(&argc, argv, flags, sizeof(flags) / sizeof(flags[0]), errstr, sizeof(errstr))) {
		fprintf(stderr, "wabot-worker replay: %s\n", errstr);
		rc = 2;
		goto out;
	}
	if (ra.format && strcmp(ra.format, "jsonl") != 0 && strcmp(ra.format, "text") != 0) {
		fprintf(stderr, "wabot-worker replay: --format: use jsonl or text (got \"%.20s\")\n", ra.format);
		rc = 2;
		goto out;
	}
	r.format = ra.format && strcmp(ra.format, "text") == 0 ? REPLAY_TEXT : REPLAY_JSONL;
	if (r.format == REPLAY_TEXT && ra.expect) {
		fprintf(stderr, "wabot-worker replay: --expect compares JSON lines; drop --format text\n");
		rc = 2;
		goto out;
	}
	if (config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr)) != WB_OK) {
		fprintf(stderr, "wabot-worker replay: %s\n", errstr);
		rc = 2;
		goto out;
	}
	cfg_loaded = true;
	log_set_level(cfg.log_level);
	r.outbound_topic = cfg.outbound_topic;
	r.dlq_topic = cfg.dlq_topic;

	flow = cfg.flow_file ? flow_load_file(cfg.flow_file, errstr, sizeof(errstr))
			     : flow_load_default(errstr, sizeof(errstr));
	if (!flow) {
		fprintf(stderr, "wabot-worker replay: flow file %s: %s\n", cfg.flow_file ? cfg.flow_file : "(built-in)",
			errstr);
		rc = 2;
		goto out;
	}
	if (ra.input && !(in = fopen(ra.input, "rb"))) {
		fprintf(stderr, "wabot-worker replay: --input %s: %s\n", ra.input, strerror(errno));
		rc = 2;
		goto out;
	}
	if (ra.output) {
		if (!(r.out = fopen(ra.output, "wb"))) {
			fprintf(stderr, "wabot-worker replay: --output %s: %s\n", ra.output, strerror(errno));
			rc = 2;
			goto out;
		}
	} else if (!ra.expect) {
		r.out = stdout;
	}
	r.keep_all = ra.expect != NULL;

	cs = ctx_store_new(&cfg.store, errstr, sizeof(errstr));
	if (!cs) {
		log_at(LOG_ERROR, "context store unavailable", LOG_STR("reason", errstr));
		goto out;
	}
	{
		struct pipeline_opts po = {.acs_api_version = cfg.acs_api_version,
					   .ttl_ms = cfg.context_ttl_s * 1000u};

		p = pipeline_new(flow, cs, &po);
	}
	if (!p) {
		log_at(LOG_ERROR, "out of memory");
		goto out;
	}
	log_at(LOG_INFO, "replay started", LOG_STR("input", ra.input ? ra.input : "stdin"),
	       LOG_STR("flow", flow_name(flow)), LOG_STR("store", ctx_store_backend_name(cs)));

	while ((n = getline(&line, &line_cap, in)) >= 0) {
		struct pipeline_source src;
		const char *payload;
		size_t plen, len = (size_t)n;
		char key[256];
		wb_err_t err;

		lines++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		if (!replay_record(&r, line, len, &src, &payload, &plen, key, sizeof(key))) {
			tombstones++;
			continue;
		}
		src.topic = cfg.inbound_topic;
		err = pipeline_process(p, &src, payload, plen, (int64_t)time(NULL), replay_emit, &r);
		if (err != WB_OK) {
			log_at(LOG_ERROR, "replay stopped", LOG_ERR("error", err), LOG_UINT("line", lines));
			goto out;
		}
		if (lines % REPLAY_PROGRESS_EVERY == 0) {
			struct pipeline_stats st;
			double dt = clock_mono_s() - t0;

			pipeline_stats(p, &st);
			fprintf(stderr, "replay: %llu lines, %llu events, %llu replies, %llu dead-lettered, %.0f events/s\n",
				(unsigned long long)lines, (unsigned long long)st.events,
				(unsigned long long)st.replies, (unsigned long long)st.dlq,
				dt > 0 ? (double)st.events / dt : 0.0);
		}
	}
	if (ferror(in)) {
		log_at(LOG_ERROR, "reading the input failed", LOG_STR("input", ra.input ? ra.input : "stdin"));
		goto out;
	}
	if (r.out && fflush(r.out) != 0) {
		log_at(LOG_ERROR, "writing the output failed");
		goto out;
	}
	{
		struct pipeline_stats st;

		pipeline_stats(p, &st);
		log_at(LOG_INFO, "replay finished", LOG_UINT("lines", lines), LOG_UINT("records", st.records),
		       LOG_UINT("events", st.events), LOG_UINT("replies", st.replies), LOG_UINT("dead_lettered", st.dlq),
		       LOG_UINT("duplicates", st.duplicates), LOG_UINT("statuses", st.statuses),
		       LOG_UINT("ignored", st.ignored), LOG_UINT("tombstones", tombstones),
		       LOG_DOUBLE("seconds", clock_mono_s() - t0));
	}
	rc = 0;
	if (ra.expect) {
		long diffs = replay_compare(ra.expect, r.all.p ? r.all.p : "", r.all.len);

		if (diffs < 0) {
			rc = 2;
		} else if (diffs > 0) {
			fprintf(stderr, "wabot-worker replay: output differs from %s in %ld lines\n", ra.expect, diffs);
			rc = 1;
		} else {
			fprintf(stderr, "wabot-worker replay: output matches %s\n", ra.expect);
		}
	}
out:
	free(line);
	free(r.payload);
	if (in && in != stdin)
		fclose(in);
	if (r.out && r.out != stdout)
		fclose(r.out);
	pipeline_destroy(p);
	ctx_store_destroy(cs);
	flow_destroy(flow);
	json_doc_fini(&r.doc);
	jbuf_fini(&r.line);
	jbuf_fini(&r.all);
	if (cfg_loaded)
		config_fini(&cfg);
	return rc;
}


/* tests/data/replay/sample.jsonl, embedded by CMakeLists.txt. */
extern const unsigned char wb_demo_recording[];
extern const size_t wb_demo_recording_len;

long replay_each_demo_record(replay_record_fn fn, void *opaque)
{
	struct replay r;
	const char *p = (const char *)wb_demo_recording, *end = p + wb_demo_recording_len;
	char key[256];
	long n = 0;

	memset(&r, 0, sizeof(r));
	json_doc_init(&r.doc);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *line = p;
		size_t len = (size_t)((nl ? nl : end) - p);
		struct pipeline_source src;
		const char *payload;
		size_t plen;

		p = nl ? nl + 1 : end;
		while (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0 || !replay_record(&r, line, len, &src, &payload, &plen, key, sizeof(key)))
			continue;
		if (fn(opaque, src.key, src.key_len, payload, plen) != 0) {
			n = -1;
			break;
		}
		n++;
	}
	json_doc_fini(&r.doc);
	free(r.payload);
	return n;
}

void replay_print_text(FILE *f, const struct pipeline_output *o)
{
	struct replay r;

	memset(&r, 0, sizeof(r));
	jbuf_init(&r.line);
	json_doc_init(&r.doc);
	r.format = REPLAY_TEXT;
	r.out = f;
	replay_emit(&r, o);
	jbuf_fini(&r.line);
	json_doc_fini(&r.doc);
}
