/*
 * fuzz_flow.c - libFuzzer target for the flow loader and the step function
 * (common/flow.c).
 *
 * Feeds the input to flow_load_json(). A loaded flow must have a name;
 * a refused one must have an error starting with "$". When it loads, runs a
 * short conversation on it with events made from the input (a text, a
 * button reply and a list reply carrying the input's first bytes, a media
 * message, a status, and the first text again as a duplicate), feeding each
 * context into the next step, and checks the result invariants: replies
 * within FLOW_MAX_REPLIES with non-empty bodies, a context that is a JSON
 * object holding conversation_step, a duplicate writing nothing.
 * An input that does not load as a flow is also tried as a stored context
 * for the default flow (text, status and duplicate steps on it), since
 * contexts come back from a store that anything may have written.
 * Seed corpus: tests/fuzz/corpus/flow (the shipped flows, variants, and
 * contexts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct flow_result *r)
{
	size_t i;

	if (r->nreplies > FLOW_MAX_REPLIES || !r->step)
		abort();
	for (i = 0; i < r->nreplies; i++)
		if (!r->replies[i].body || !r->replies[i].body[0])
			abort();
}

/* data as the stored context of the default flow. */
static void fuzz_context(const char *data, size_t size)
{
	static flow_t *def;
	static flow_session_t *ds;
	static const char *texts[] = {"si", "Juan Pérez", "ministerio de salud"};
	struct wa_event ev;
	struct flow_result r;
	int i;

	if (!def) {
		char err[256];

		if (!(def = flow_load_default(err, sizeof(err))) || !(ds = flow_session_new(def)))
			abort();
	}
	for (i = 0; i < 5; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.provider = WA_PROVIDER_ACS;
		strcpy(ev.key, "+573001234567");
		ev.id.p = i == 4 ? "e1" : (const char *[]){"e1", "e2", "e3", "st"}[i];
		ev.id.len = 2;
		if (i == 3) {
			ev.kind = WA_KIND_STATUS;
			ev.status = WA_STATUS_DELIVERED;
			ev.ref_message_id.p = "m";
			ev.ref_message_id.len = 1;
		} else {
			ev.kind = WA_KIND_TEXT;
			ev.text.p = texts[i % 3];
			ev.text.len = strlen(texts[i % 3]);
		}
		if (flow_step(ds, data, size, true, &ev, &(struct flow_pos){0, 100, 1795000000000}, 1795000000, &r) != WB_OK)
			abort();
		check(&r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char ctx[1 << 16];
	static struct json_doc doc;
	char err[256];
	flow_t *f = flow_load_json((const char *)data, size, err, sizeof(err));
	flow_session_t *s;
	struct wa_event ev;
	struct flow_result r;
	size_t ctx_len = 0, tlen = size < 64 ? size : 64;
	bool found = false;
	int i;

	if (!f) {
		if (err[0] != '$')
			abort();
		fuzz_context((const char *)data, size);
		return 0;
	}
	if (!flow_name(f) || !flow_name(f)[0])
		abort();
	if (!(s = flow_session_new(f))) {
		flow_destroy(f);
		return 0;
	}
	for (i = 0; i < 7; i++) {
		static const char *ids[] = {"e0", "e1", "e2", "e3", "e4", "e5", "e0"};
		static const char *texts[] = {"hola", NULL, NULL, NULL, "si", NULL, NULL};

		memset(&ev, 0, sizeof(ev));
		ev.provider = WA_PROVIDER_META;
		strcpy(ev.key, "+573001234567");
		ev.id.p = ids[i];
		ev.id.len = 2;
		switch (i) {
		case 1:
			ev.kind = WA_KIND_BUTTON_REPLY;
			ev.reply_id.p = (const char *)data;
			ev.reply_id.len = tlen;
			ev.reply_title = ev.reply_id;
			break;
		case 2:
			ev.kind = WA_KIND_LIST_REPLY;
			ev.reply_id.p = "yes";
			ev.reply_id.len = 3;
			ev.reply_title.p = (const char *)data;
			ev.reply_title.len = tlen;
			break;
		case 3:
			ev.kind = WA_KIND_MEDIA;
			break;
		case 5:
			ev.kind = WA_KIND_STATUS;
			ev.status = WA_STATUS_READ;
			ev.ref_message_id.p = "out";
			ev.ref_message_id.len = 3;
			break;
		default:
			ev.kind = WA_KIND_TEXT;
			ev.text.p = texts[i] ? texts[i] : (const char *)data;
			ev.text.len = texts[i] ? strlen(texts[i]) : size;
			break;
		}
		if (flow_step(s, ctx, ctx_len, found, &ev, NULL, 1795000000, &r) != WB_OK)
			abort();
		check(&r);
		if (i == 6 && (!r.duplicate || r.ctx_json))
			abort(); /* e0 again */
		if (r.ctx_json) {
			if (r.ctx_len >= sizeof(ctx))
				break;
			if (json_parse(&doc, r.ctx_json, r.ctx_len, NULL) != JSON_OK || doc.toks[0].type != JSON_OBJECT ||
			    json_get_type(&doc, 0, "conversation_step", JSON_STRING) == JSON_NONE)
				abort();
			memcpy(ctx, r.ctx_json, r.ctx_len);
			ctx_len = r.ctx_len;
			found = true;
		}
	}
	flow_session_destroy(s);
	flow_destroy(f);
	return 0;
}
