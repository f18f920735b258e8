/*
 * test_flow.c - the conversation engine (flow.h) driven through the real
 * shipped flows (common/flows/donations.json, embedded as the default, and
 * common/flows/faq.json) with hand-built events, each step's context fed
 * into the next; the contract is shared/reference/default-flow.md. Also the
 * loader's errors on broken flow files, each with the JSON path it names.
 * Contexts are inspected with json-c (speed does not matter here).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "flow.h"

#ifndef WB_FLOWS_DIR
#error "WB_FLOWS_DIR must name common/flows (set by CMakeLists.txt)"
#endif

#define NOW 1795000000

/* One user's conversation: the flow, a session and the stored context. */
struct conv {
	flow_t *f;
	flow_session_t *s;
	char *ctx;  /* last context written; NULL: none stored */
	size_t len;
	bool found;
	struct flow_result r;
	wb_err_t err;
	unsigned seq;
	char id[64];
	const struct flow_pos *pos; /* the next event's inbound position; NULL: none */
};

static void conv_open(struct conv *c, const char *file)
{
	char err[512] = "";

	memset(c, 0, sizeof(*c));
	if (file) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", WB_FLOWS_DIR, file);
		c->f = flow_load_file(path, err, sizeof(err));
	} else {
		c->f = flow_load_default(err, sizeof(err));
	}
	cr_assert_not_null(c->f, "load %s: %s", file ? file : "default", err);
	c->s = flow_session_new(c->f);
	cr_assert_not_null(c->s);
}

static void conv_close(struct conv *c)
{
	flow_session_destroy(c->s);
	flow_destroy(c->f);
	free(c->ctx);
	memset(c, 0, sizeof(*c));
}

/* Replaces the stored context (found = true). */
static void conv_set_ctx(struct conv *c, const char *json)
{
	free(c->ctx);
	c->ctx = strdup(json);
	c->len = strlen(json);
	c->found = true;
}

/* The context expired: the store has none. */
static void conv_expire(struct conv *c)
{
	free(c->ctx);
	c->ctx = NULL;
	c->len = 0;
	c->found = false;
}

static struct wa_event base_event(struct conv *c, enum wa_kind kind, const char *id)
{
	struct wa_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.provider = WA_PROVIDER_ACS;
	ev.kind = kind;
	strcpy(ev.key, "+573001234567");
	strcpy(ev.phone, "+573001234567");
	ev.business_id.p = "2f61ca04";
	ev.business_id.len = 8;
	if (!id) {
		snprintf(c->id, sizeof(c->id), "ev-%u", ++c->seq);
		id = c->id;
	}
	ev.id.p = id;
	ev.id.len = strlen(id);
	ev.timestamp = NOW;
	return ev;
}

static const struct flow_result *apply(struct conv *c, const struct wa_event *ev)
{
	c->err = flow_step(c->s, c->ctx, c->len, c->found, ev, c->pos, NOW, &c->r);
	cr_assert_eq(c->err, WB_OK, "flow_step: %s", wb_err_name(c->err));
	if (c->r.ctx_json) {
		cr_assert_gt(c->r.ctx_len, 0u);
		free(c->ctx);
		c->ctx = strndup(c->r.ctx_json, c->r.ctx_len);
		c->len = c->r.ctx_len;
		c->found = true;
	}
	return &c->r;
}

static const struct flow_result *text_id(struct conv *c, const char *id, const char *t)
{
	struct wa_event ev = base_event(c, WA_KIND_TEXT, id);

	ev.text.p = t;
	ev.text.len = strlen(t);
	return apply(c, &ev);
}

static const struct flow_result *text(struct conv *c, const char *t)
{
	return text_id(c, NULL, t);
}

static const struct flow_result *tap(struct conv *c, enum wa_kind kind, const char *id, const char *title)
{
	struct wa_event ev = base_event(c, kind, NULL);

	ev.reply_id.p = id;
	ev.reply_id.len = strlen(id);
	ev.reply_title.p = title;
	ev.reply_title.len = strlen(title);
	return apply(c, &ev);
}

static const struct flow_result *button(struct conv *c, const char *id, const char *title)
{
	return tap(c, WA_KIND_BUTTON_REPLY, id, title);
}

static const struct flow_result *list(struct conv *c, const char *id, const char *title)
{
	return tap(c, WA_KIND_LIST_REPLY, id, title);
}

static const struct flow_result *status(struct conv *c, const char *eid, const char *msg, enum wa_status st)
{
	struct wa_event ev = base_event(c, WA_KIND_STATUS, eid);

	ev.ref_message_id.p = msg;
	ev.ref_message_id.len = strlen(msg);
	ev.message_id = ev.ref_message_id;
	ev.status = st;
	if (st == WA_STATUS_FAILED) {
		ev.error_code.p = "131047";
		ev.error_code.len = 6;
	}
	return apply(c, &ev);
}

/* A top-level field of the stored context: a copy of its string value, or
 * of its JSON text when not a string; NULL when absent. Caller frees. */
static char *ctx_field(const struct conv *c, const char *key)
{
	json_object *root, *v;
	char *out = NULL;

	cr_assert_not_null(c->ctx, "no context stored");
	root = json_tokener_parse(c->ctx);
	cr_assert_not_null(root, "stored context is not JSON: %s", c->ctx);
	if (json_object_object_get_ex(root, key, &v)) {
		out = strdup(json_object_is_type(v, json_type_string) ? json_object_get_string(v)
								       : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(root);
	return out;
}

static void assert_field(const struct conv *c, const char *key, const char *want)
{
	char *got = ctx_field(c, key);

	if (!want)
		cr_assert_null(got, "%s should be absent, is \"%s\"", key, got);
	else
		cr_assert(got && strcmp(got, want) == 0, "%s: want \"%s\", got \"%s\"", key, want, got ? got : "(absent)");
	free(got);
}

static void assert_step(const struct conv *c, const char *want)
{
	cr_assert_str_eq(c->r.step, want);
	assert_field(c, "conversation_step", want);
}

static const char *body(const struct conv *c, size_t i)
{
	cr_assert_lt(i, c->r.nreplies, "reply %zu of %zu", i, c->r.nreplies);
	return c->r.replies[i].body;
}

static void assert_yes_no_buttons(const struct wa_reply *r)
{
	cr_assert_eq(r->kind, REPLY_BUTTONS);
	cr_assert_eq(r->nbuttons, 2u);
	cr_assert_str_eq(r->buttons[0].id, "yes");
	cr_assert_str_eq(r->buttons[0].title, "Sí");
	cr_assert_str_eq(r->buttons[1].id, "no");
	cr_assert_str_eq(r->buttons[1].title, "No");
}

/* A donation under way up to the confirmation question. */
static void to_confirmation(struct conv *c)
{
	text(c, "Hola, quiero hacer una donación");
	assert_step(c, "waiting_for_name");
	text(c, "Juan Pérez");
	assert_step(c, "waiting_for_ministry");
	text(c, "Ministerio de Cultura");
	assert_step(c, "waiting_for_confirmation");
}

/* ---------------------------------------------------------------------- */

Test(flow, default_flow_is_the_donations_flow)
{
	struct conv c;

	conv_open(&c, NULL);
	cr_assert_str_eq(flow_name(c.f), "donations");
	conv_close(&c);
}

Test(flow, every_shipped_flow_file_loads)
{
	DIR *d = opendir(WB_FLOWS_DIR);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "%s", WB_FLOWS_DIR);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char path[512], err[512] = "";
		flow_t *f;

		if (l < 5 || strcmp(e->d_name + l - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", WB_FLOWS_DIR, e->d_name);
		f = flow_load_file(path, err, sizeof(err));
		cr_assert_not_null(f, "%s: %s", path, err);
		flow_destroy(f);
		n++;
	}
	closedir(d);
	cr_assert_geq(n, 2, "donations.json and faq.json at least");
}

Test(flow, happy_path_follows_the_contract_table)
{
	struct conv c;
	const struct wa_reply *r;

	conv_open(&c, NULL);
	text(&c, "Hola, quiero hacer una donación");
	cr_assert(c.r.fresh_start);
	assert_step(&c, "waiting_for_name");
	assert_field(&c, "last_intent", "donations");
	assert_field(&c, "flow", "donations");
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert(strstr(body(&c, 0), "nombre completo"));

	text(&c, "Juan Pérez");
	cr_assert_not(c.r.fresh_start);
	assert_step(&c, "waiting_for_ministry");
	assert_field(&c, "customer_name", "Juan Pérez");
	cr_assert_eq(c.r.nreplies, 1u);
	r = &c.r.replies[0];
	cr_assert_eq(r->kind, REPLY_LIST);
	cr_assert(strstr(r->body, "Juan Pérez"), "greets by name: %s", r->body);
	cr_assert_eq(r->nrows, 10u);
	cr_assert_str_eq(r->rows[0].id, "min_educacion");
	cr_assert_str_eq(r->rows[0].title, "Educación");

	text(&c, "Ministerio de Cultura");
	assert_step(&c, "waiting_for_confirmation");
	assert_field(&c, "ministry_name", "Ministerio de Cultura");
	cr_assert_eq(c.r.nreplies, 1u);
	r = &c.r.replies[0];
	cr_assert(strstr(r->body, "Juan Pérez") && strstr(r->body, "Ministerio de Cultura"), "%s", r->body);
	assert_yes_no_buttons(r);

	text(&c, "si");
	assert_step(&c, "completed");
	assert_field(&c, "last_intent", "donations");
	assert_field(&c, "customer_name", "Juan Pérez");
	assert_field(&c, "ministry_name", "Ministerio de Cultura");
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert(strstr(body(&c, 0), "Gracias"));

	/* completed + a new donation intent: a new donation starts */
	text(&c, "quiero donar");
	assert_step(&c, "waiting_for_name");
	cr_assert_not(c.r.fresh_start);
	assert_field(&c, "customer_name", NULL);
	assert_field(&c, "ministry_name", NULL);
	assert_field(&c, "last_intent", "donations");
	conv_close(&c);
}

Test(flow, greeting_without_intent_gets_the_welcome_with_a_button)
{
	const char *greetings[] = {"hola", "buenas", "Buenos días 😀"};
	size_t i;

	for (i = 0; i < sizeof(greetings) / sizeof(greetings[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		text(&c, greetings[i]);
		cr_assert(c.r.fresh_start);
		assert_step(&c, "welcome");
		cr_assert_eq(c.r.nreplies, 1u);
		cr_assert_eq(c.r.replies[0].kind, REPLY_BUTTONS);
		cr_assert_str_eq(c.r.replies[0].buttons[0].id, "donations");
		cr_assert(strstr(body(&c, 0), "donar"));
		assert_field(&c, "last_intent", NULL);
		/* the button starts the donation */
		button(&c, "donations", "Quiero donar");
		assert_step(&c, "waiting_for_name");
		assert_field(&c, "last_intent", "donations");
		conv_close(&c);
	}
}

Test(flow, welcome_then_typed_intent_and_unrecognised_text)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "hola");
	assert_step(&c, "welcome");
	text(&c, "qué tal");
	assert_step(&c, "welcome");
	cr_assert_eq(c.r.nreplies, 2u, "fallback, then the welcome question");
	cr_assert(strstr(body(&c, 0), "no entendí"));
	cr_assert_eq(c.r.replies[1].kind, REPLY_BUTTONS);
	text(&c, "Quisiera donar");
	assert_step(&c, "waiting_for_name");
	conv_close(&c);
}

Test(flow, intents_match_across_case_and_accents)
{
	const char *texts[] = {"DONACION",    "donación",      "donacion",        "Quisiera donar",
			       "quiero donar", "¡QUIERO DONAR!", "Hola, quiero hacer una DONACIÓN 🙏",
			       "donacio\xcc\x81n" /* decomposed ó */};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		text(&c, texts[i]);
		cr_assert_str_eq(c.r.step, "waiting_for_name", "\"%s\"", texts[i]);
		assert_field(&c, "last_intent", "donations");
		conv_close(&c);
	}
}

Test(flow, intent_needs_a_whole_word)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "Donato"); /* not "donar" */
	assert_step(&c, "welcome");
	conv_close(&c);
}

Test(flow, typed_confirmations_complete)
{
	const char *yes[] = {"sí", "si", "Si", "SI", "SÍ", "¡Sí!", " si ", "si, confirmo", "Sí, confirmo.", "claro"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		to_confirmation(&c);
		text(&c, yes[i]);
		cr_assert_str_eq(c.r.step, "completed", "\"%s\"", yes[i]);
		conv_close(&c);
	}
}

Test(flow, button_confirmation_completes)
{
	struct conv c;

	conv_open(&c, NULL);
	to_confirmation(&c);
	button(&c, "yes", "Sí");
	assert_step(&c, "completed");
	cr_assert(strstr(body(&c, 0), "Juan Pérez"));
	conv_close(&c);
}

Test(flow, no_starts_the_data_over_keeping_last_intent)
{
	int how;

	for (how = 0; how < 3; how++) {
		struct conv c;

		conv_open(&c, NULL);
		to_confirmation(&c);
		if (how == 0)
			button(&c, "no", "No");
		else
			text(&c, how == 1 ? "no" : "No, está mal");
		assert_step(&c, "waiting_for_name");
		assert_field(&c, "last_intent", "donations");
		assert_field(&c, "customer_name", NULL);
		assert_field(&c, "ministry_name", NULL);
		cr_assert(strstr(body(&c, 0), "nombre completo"));
		conv_close(&c);
	}
}

Test(flow, anything_else_at_confirmation_asks_again_with_buttons)
{
	const char *other[] = {"quizás", "tal vez mañana", "👍", "123"};
	size_t i;

	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		to_confirmation(&c);
		text(&c, other[i]);
		assert_step(&c, "waiting_for_confirmation");
		cr_assert_eq(c.r.nreplies, 2u);
		cr_assert(strstr(body(&c, 0), "Sí"), "%s", body(&c, 0));
		assert_yes_no_buttons(&c.r.replies[1]);
		cr_assert(strstr(body(&c, 1), "Juan Pérez"));
		assert_field(&c, "customer_name", "Juan Pérez");
		conv_close(&c);
	}
}

Test(flow, unknown_button_at_confirmation_asks_again)
{
	struct conv c;

	conv_open(&c, NULL);
	to_confirmation(&c);
	button(&c, "min_salud", "Salud"); /* a stale tap */
	assert_step(&c, "waiting_for_confirmation");
	cr_assert_eq(c.r.nreplies, 2u);
	conv_close(&c);
}

Test(flow, corrections_replace_the_captured_values)
{
	struct conv c;

	conv_open(&c, NULL);
	to_confirmation(&c);
	text(&c, "no");
	assert_step(&c, "waiting_for_name");
	text(&c, "J");
	assert_step(&c, "waiting_for_name");
	text(&c, "María Fernanda López");
	assert_step(&c, "waiting_for_ministry");
	list(&c, "min_salud", "Salud");
	assert_step(&c, "waiting_for_confirmation");
	cr_assert(strstr(body(&c, 0), "María Fernanda López"));
	cr_assert(strstr(body(&c, 0), "Ministerio de Salud y Protección Social"));
	cr_assert_null(strstr(body(&c, 0), "Juan"));
	cr_assert_null(strstr(body(&c, 0), "Cultura"));
	text(&c, "si");
	assert_step(&c, "completed");
	assert_field(&c, "customer_name", "María Fernanda López");
	assert_field(&c, "ministry_name", "Ministerio de Salud y Protección Social");
	conv_close(&c);
}

Test(flow, invalid_names_are_refused_with_the_question_again)
{
	char long_name[201];
	const char *bad[] = {"12345", "J", long_name, "Juan 23", "@@@@", "quiero donar", "J.", "-- --"};
	size_t i;

	memset(long_name, 'a', 200);
	long_name[200] = '\0';
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		text(&c, "quiero donar");
		text(&c, bad[i]);
		cr_assert_str_eq(c.r.step, "waiting_for_name", "\"%.20s\"", bad[i]);
		cr_assert_eq(c.r.nreplies, 2u);
		cr_assert(strstr(body(&c, 0), "nombre completo"), "says what is expected");
		cr_assert(strstr(body(&c, 1), "nombre completo"), "asks again");
		assert_field(&c, "customer_name", NULL);
		conv_close(&c);
	}
}

Test(flow, valid_names_are_kept_as_typed_and_trimmed)
{
	const char *good[] = {"Juan Pérez", "María Fernanda López", "Ñandú O'Brien", "Jean-Luc Picard", "Zoë",
			      "  Ana María  ", "Dr. Juan Pérez"};
	const char *kept[] = {"Juan Pérez", "María Fernanda López", "Ñandú O'Brien", "Jean-Luc Picard", "Zoë",
			      "Ana María", "Dr. Juan Pérez"};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		text(&c, "quiero donar");
		text(&c, good[i]);
		cr_assert_str_eq(c.r.step, "waiting_for_ministry", "\"%s\"", good[i]);
		assert_field(&c, "customer_name", kept[i]);
		conv_close(&c);
	}
}

Test(flow, ministry_matches_keep_the_list_spelling)
{
	static const struct {
		int how; /* 0 typed, 1 list reply */
		const char *in, *title, *want;
	} cases[] = {
		{0, "ministerio de educacion", NULL, "Ministerio de Educación Nacional"},
		{0, "MINISTERIO DE EDUCACIÓN NACIONAL", NULL, "Ministerio de Educación Nacional"},
		{0, "educación", NULL, "Ministerio de Educación Nacional"},
		{0, "ministerio de salud", NULL, "Ministerio de Salud y Protección Social"},
		{0, "  Ministerio de Cultura ", NULL, "Ministerio de Cultura"},
		{0, "para el ministerio del deporte por favor", NULL, "Ministerio del Deporte"},
		{0, "mintic", NULL, "Ministerio de Tecnologías de la Información y las Comunicaciones"},
		{1, "min_educacion", "Educación", "Ministerio de Educación Nacional"},
		{1, "min_vivienda", "Vivienda", "Ministerio de Vivienda, Ciudad y Territorio"},
		{1, "stale_id", "Trabajo", "Ministerio del Trabajo"}, /* unknown id: the title still matches */
		/* not in the list: accepted as typed (trimmed) */
		{0, " Ministerio de Hacienda ", NULL, "Ministerio de Hacienda"},
		{0, "Ministerio de Minas y Energía", NULL, "Ministerio de Minas y Energía"},
		/* ambiguous ("desarrollo" is in two entries): as typed */
		{0, "desarrollo", NULL, "desarrollo"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		text(&c, "quiero donar");
		text(&c, "Juan Pérez");
		if (cases[i].how)
			list(&c, cases[i].in, cases[i].title);
		else
			text(&c, cases[i].in);
		cr_assert_str_eq(c.r.step, "waiting_for_confirmation", "\"%s\"", cases[i].in);
		assert_field(&c, "ministry_name", cases[i].want);
		cr_assert(strstr(body(&c, 0), cases[i].want));
		conv_close(&c);
	}
}

Test(flow, invalid_ministry_is_refused)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "Juan Pérez");
	text(&c, "12");
	assert_step(&c, "waiting_for_ministry");
	cr_assert_eq(c.r.nreplies, 2u);
	cr_assert_eq(c.r.replies[1].kind, REPLY_LIST, "asks again with the list");
	conv_close(&c);
}

Test(flow, cancel_and_salir_clear_the_slots_at_any_step)
{
	const char *words[] = {"cancelar", "salir", "Quiero CANCELAR", "salir por favor"};
	int at;
	size_t w;

	for (w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		for (at = 0; at < 5; at++) {
			struct conv c;

			conv_open(&c, NULL);
			if (at >= 1)
				text(&c, at == 4 ? "hola" : "quiero donar");
			if (at >= 2 && at < 4)
				text(&c, "Juan Pérez");
			if (at == 3)
				text(&c, "Ministerio de Cultura");
			text(&c, words[w]);
			assert_step(&c, "cancelled");
			assert_field(&c, "customer_name", NULL);
			assert_field(&c, "ministry_name", NULL);
			cr_assert_eq(c.r.nreplies, 1u);
			cr_assert(strstr(body(&c, 0), "cancelé"));
			/* cancelled, then a new donation */
			text(&c, "quiero donar");
			assert_step(&c, "waiting_for_name");
			conv_close(&c);
		}
	}
}

Test(flow, completed_then_greeting_gets_the_welcome_without_the_old_data)
{
	struct conv c;

	conv_open(&c, NULL);
	to_confirmation(&c);
	text(&c, "sí");
	assert_step(&c, "completed");
	text(&c, "hola");
	assert_step(&c, "welcome");
	cr_assert_not(c.r.fresh_start);
	assert_field(&c, "customer_name", NULL);
	assert_field(&c, "ministry_name", NULL);
	assert_field(&c, "last_intent", "donations");
	conv_close(&c);
}

Test(flow, cancelled_then_greeting_gets_the_welcome)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "salir");
	text(&c, "hola");
	assert_step(&c, "welcome");
	cr_assert_not(c.r.fresh_start);
	conv_close(&c);
}

Test(flow, help_keeps_the_step_and_repeats_the_question)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "Juan Pérez");
	text(&c, "ayuda");
	assert_step(&c, "waiting_for_ministry");
	cr_assert_eq(c.r.nreplies, 2u);
	cr_assert(strstr(body(&c, 0), "cancelar"), "help text first");
	cr_assert_eq(c.r.replies[1].kind, REPLY_LIST, "then the ministry question");
	assert_field(&c, "customer_name", "Juan Pérez");
	text(&c, "Ayúdame");
	assert_step(&c, "waiting_for_ministry");
	text(&c, "ministerio de salud");
	text(&c, "AYUDA");
	assert_step(&c, "waiting_for_confirmation");
	cr_assert_eq(c.r.nreplies, 2u);
	assert_yes_no_buttons(&c.r.replies[1]);
	conv_close(&c);

	/* without a context: help, then the welcome */
	conv_open(&c, NULL);
	text(&c, "ayuda");
	assert_step(&c, "welcome");
	cr_assert_eq(c.r.nreplies, 2u);
	conv_close(&c);
}

Test(flow, restart_during_a_donation_goes_back_to_the_name)
{
	const char *words[] = {"reiniciar", "empezar de nuevo", "Quiero EMPEZAR DE NUEVO"};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		to_confirmation(&c);
		text(&c, words[i]);
		assert_step(&c, "waiting_for_name");
		assert_field(&c, "customer_name", NULL);
		assert_field(&c, "ministry_name", NULL);
		assert_field(&c, "last_intent", "donations");
		cr_assert_eq(c.r.nreplies, 2u);
		cr_assert(strstr(body(&c, 1), "nombre completo"));
		conv_close(&c);
	}
}

Test(flow, restart_without_a_donation_gets_the_welcome)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "reiniciar");
	assert_step(&c, "welcome");
	text(&c, "empezar de nuevo");
	assert_step(&c, "welcome");
	conv_close(&c);

	conv_open(&c, NULL);
	to_confirmation(&c);
	text(&c, "si");
	assert_step(&c, "completed");
	text(&c, "reiniciar");
	assert_step(&c, "welcome");
	assert_field(&c, "customer_name", NULL);
	conv_close(&c);
}

Test(flow, expired_context_starts_fresh)
{
	struct conv c;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "Juan Pérez");
	assert_step(&c, "waiting_for_ministry");
	conv_expire(&c);
	text(&c, "Ministerio de Salud");
	cr_assert(c.r.fresh_start);
	assert_step(&c, "welcome");
	assert_field(&c, "customer_name", NULL);
	assert_field(&c, "last_intent", NULL);

	conv_expire(&c);
	text(&c, "quiero donar");
	cr_assert(c.r.fresh_start);
	assert_step(&c, "waiting_for_name");
	conv_close(&c);
}

Test(flow, found_false_ignores_whatever_text_is_passed)
{
	struct conv c;

	conv_open(&c, NULL);
	conv_set_ctx(&c, "{\"conversation_step\":\"waiting_for_ministry\",\"customer_name\":\"Juan\"}");
	c.found = false;
	text(&c, "Ministerio de Salud");
	cr_assert(c.r.fresh_start);
	assert_step(&c, "welcome");
	assert_field(&c, "customer_name", NULL);
	conv_close(&c);
}

Test(flow, django_context_continues)
{
	struct conv c;

	conv_open(&c, NULL);
	conv_set_ctx(&c, "{\"last_intent\": \"donations\", \"customer_name\": \"Juan Pérez\", "
			 "\"ministry_name\": \"Ministerio de Educación\", "
			 "\"conversation_step\": \"waiting_for_confirmation\"}");
	text(&c, "Si");
	cr_assert_not(c.r.fresh_start);
	assert_step(&c, "completed");
	assert_field(&c, "ministry_name", "Ministerio de Educación");
	cr_assert(strstr(body(&c, 0), "Ministerio de Educación"));
	conv_close(&c);
}

Test(flow, duplicate_event_reemits_identical_replies_without_advancing)
{
	struct conv c;
	char *before, *bodies[FLOW_MAX_REPLIES];
	struct wa_reply saved[FLOW_MAX_REPLIES];
	size_t n, i;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "Juan Pérez");
	text_id(&c, "evt-ministry", "ministerio de salud");
	text_id(&c, "evt-maybe", "quizás"); /* two replies: text, then buttons */
	assert_step(&c, "waiting_for_confirmation");
	n = c.r.nreplies;
	cr_assert_eq(n, 2u);
	for (i = 0; i < n; i++) {
		saved[i] = c.r.replies[i];
		bodies[i] = strdup(c.r.replies[i].body);
	}
	before = strdup(c.ctx);

	text_id(&c, "evt-maybe", "quizás");
	cr_assert(c.r.duplicate);
	cr_assert_null(c.r.ctx_json);
	cr_assert_str_eq(c.r.step, "waiting_for_confirmation");
	cr_assert_eq(c.r.nreplies, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(c.r.replies[i].kind, saved[i].kind);
		cr_assert_str_eq(c.r.replies[i].body, bodies[i]);
		cr_assert_eq(c.r.replies[i].nbuttons, saved[i].nbuttons);
	}
	assert_yes_no_buttons(&c.r.replies[1]);
	cr_assert_str_eq(c.ctx, before, "nothing written");

	/* a replayed older event (the ministry) re-emits its own reply and
	 * step, and does not go back */
	text_id(&c, "evt-ministry", "ministerio de salud");
	cr_assert(c.r.duplicate);
	cr_assert_null(c.r.ctx_json);
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert_str_eq(c.r.step, "waiting_for_confirmation");
	assert_yes_no_buttons(&c.r.replies[0]);

	/* a duplicate "si" must not complete twice, nor a duplicate of the
	 * list prompt lose its rows */
	text_id(&c, "evt-yes", "sí");
	assert_step(&c, "completed");
	text_id(&c, "evt-yes", "sí");
	cr_assert(c.r.duplicate);
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert(strstr(c.r.replies[0].body, "Gracias"));
	for (i = 0; i < n; i++)
		free(bodies[i]);
	free(before);
	conv_close(&c);
}

Test(flow, duplicate_list_reply_keeps_rows_and_button)
{
	struct conv c;
	struct wa_reply a;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text_id(&c, "evt-name", "Juan Pérez");
	a = c.r.replies[0];
	cr_assert_eq(a.kind, REPLY_LIST);
	text_id(&c, "evt-name", "Juan Pérez");
	cr_assert(c.r.duplicate);
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert_eq(c.r.replies[0].kind, REPLY_LIST);
	cr_assert_eq(c.r.replies[0].nrows, 10u);
	cr_assert_str_eq(c.r.replies[0].list_button, "Ver ministerios");
	cr_assert_str_eq(c.r.replies[0].rows[9].id, "min_tic");
	cr_assert_str_eq(c.r.replies[0].rows[9].title, "Tecnologías (TIC)");
	cr_assert_str_eq(c.r.replies[0].body,
			 "Mucho gusto, Juan Pérez. 😊 ¿A qué ministerio quieres hacer tu donación? Elige uno de la "
			 "lista o escribe su nombre.");
	cr_assert_str_eq(c.r.step, "waiting_for_ministry");
	conv_close(&c);
}

Test(flow, duplicate_after_the_flow_changed_gets_no_replies)
{
	struct conv c;
	json_object *root, *recent;
	char *fv, *p;
	size_t i;

	conv_open(&c, NULL);
	text_id(&c, "a", "quiero donar");
	text_id(&c, "b", "Juan Pérez");
	fv = ctx_field(&c, "fv");
	cr_assert_not_null(fv);
	cr_assert_eq(strlen(fv), 8u);
	/* as if another version of the flow file had written it */
	p = strstr(c.ctx, fv);
	cr_assert_not_null(p);
	memcpy(p, "00000000", 8);
	free(fv);
	text_id(&c, "b", "Juan Pérez");
	cr_assert(c.r.duplicate, "still recognised");
	cr_assert_null(c.r.ctx_json);
	cr_assert_eq(c.r.nreplies, 0u, "template numbers of another flow mean nothing");
	cr_assert_str_eq(c.r.step, "waiting_for_ministry");
	/* the next event writes the old entries as bare ids */
	text_id(&c, "c", "ministerio de salud");
	assert_step(&c, "waiting_for_confirmation");
	root = json_tokener_parse(c.ctx);
	cr_assert(json_object_object_get_ex(root, "recent", &recent));
	cr_assert_eq(json_object_array_length(recent), 3u);
	for (i = 0; i < 2; i++)
		cr_assert(json_object_is_type(json_object_array_get_idx(recent, i), json_type_string));
	cr_assert(json_object_is_type(json_object_array_get_idx(recent, 2), json_type_object));
	json_object_put(root);
	conv_close(&c);
}

Test(flow, stored_replies_are_compact_references)
{
	struct conv c;
	char *r;

	conv_open(&c, NULL);
	text_id(&c, "a", "quiero donar");
	text_id(&c, "b", "Juan Pérez");
	text_id(&c, "c", "Ministerio \"Especial\" de Paz");
	r = ctx_field(&c, "recent");
	/* the list of ministries is not copied into the context */
	cr_assert_null(strstr(r, "min_educacion"), "%s", r);
	cr_assert(strstr(r, "\"Ministerio \\\"Especial\\\" de Paz\""), "the value, escaped: %s", r);
	free(r);
	cr_assert_lt(c.len, 600u, "%s", c.ctx);
	text_id(&c, "c", "Ministerio \"Especial\" de Paz");
	cr_assert(c.r.duplicate);
	cr_assert_eq(c.r.nreplies, 1u);
	cr_assert(strstr(c.r.replies[0].body, "Ministerio: Ministerio \"Especial\" de Paz"), "%s", c.r.replies[0].body);
	text_id(&c, "b", "Juan Pérez");
	cr_assert(c.r.duplicate);
	cr_assert_eq(c.r.replies[0].kind, REPLY_LIST);
	cr_assert_eq(c.r.replies[0].nrows, 10u, "rows come from the flow");
	conv_close(&c);
}

Test(flow, recent_ids_are_bounded_and_old_ones_lose_their_replies)
{
	struct conv c;
	json_object *root, *recent;
	int i;

	conv_open(&c, NULL);
	text_id(&c, "first", "hola");
	for (i = 0; i < FLOW_RECENT_IDS + 3; i++)
		text(&c, "hola");
	root = json_tokener_parse(c.ctx);
	cr_assert(json_object_object_get_ex(root, "recent", &recent));
	cr_assert_eq(json_object_array_length(recent), (size_t)FLOW_RECENT_IDS);
	for (i = 0; i < FLOW_RECENT_IDS; i++) {
		json_object *e = json_object_array_get_idx(recent, (size_t)i);
		bool with_r = i >= FLOW_RECENT_IDS - FLOW_RECENT_REPLIES;

		cr_assert_eq(json_object_is_type(e, json_type_object), with_r, "entry %d", i);
	}
	json_object_put(root);
	/* "first" has been forgotten: it is processed again */
	text_id(&c, "first", "hola");
	cr_assert_not(c.r.duplicate);
	cr_assert_not_null(c.r.ctx_json);
	/* an id kept without replies is still a duplicate, with no replies */
	text(&c, "hola");
	text(&c, "hola");
	text(&c, "hola");
	text(&c, "hola");
	text_id(&c, "first", "hola");
	cr_assert(c.r.duplicate);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_null(c.r.ctx_json);
	conv_close(&c);
}

Test(flow, redelivery_from_before_recent_is_recognised_by_inbound_position)
{
	struct conv c;
	struct flow_pos pos = {3, 100, 1795000000000};
	char *ctx_before;
	int i;

	conv_open(&c, NULL);
	c.pos = &pos;
	/* 12 events of one phone, offsets 100..111: more than "recent" holds */
	for (i = 0; i < FLOW_RECENT_IDS + 4; i++) {
		pos.offset = 100 + i;
		pos.timestamp_ms = 1795000000000 + i;
		text_id(&c, (char[16]){0}, "hola"); /* no id at all: only "in" can tell */
		cr_assert_not(c.r.duplicate);
	}
	cr_assert_not_null(strstr(c.ctx, "\"in\":[3,111,0,1795000000011]"), "%s", c.ctx);
	ctx_before = strdup(c.ctx);
	/* a consumer that restarts far back redelivers them: nothing advances */
	for (i = 0; i < FLOW_RECENT_IDS + 4; i++) {
		pos.offset = 100 + i;
		pos.timestamp_ms = 1795000000000 + i;
		text(&c, "1");
		cr_assert(c.r.duplicate, "offset %d", 100 + i);
		cr_assert_null(c.r.ctx_json);
		cr_assert_eq(c.r.nreplies, 0u);
	}
	cr_assert_str_eq(c.ctx, ctx_before);
	/* a later event of a record already seen (event index 1 of offset 111) is new */
	{
		struct wa_event ev = base_event(&c, WA_KIND_TEXT, NULL);

		ev.text.p = "hola";
		ev.text.len = 4;
		ev.index = 1;
		apply(&c, &ev);
		cr_assert_not(c.r.duplicate);
		cr_assert_not_null(strstr(c.ctx, "\"in\":[3,111,1,"), "%s", c.ctx);
	}
	/* the next offset is new */
	pos.offset = 112;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	cr_assert_not_null(c.r.ctx_json);
	cr_assert_not_null(strstr(c.ctx, "\"in\":[3,112,0,"), "%s", c.ctx);
	free(ctx_before);
	conv_close(&c);
}

Test(flow, inbound_position_of_another_partition_or_a_newer_record_is_not_a_duplicate)
{
	struct conv c;
	struct flow_pos pos = {3, 500, 1795000000000};

	conv_open(&c, NULL);
	c.pos = &pos;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	/* the partition count changed: another partition's offsets say nothing */
	pos.partition = 4;
	pos.offset = 10;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	cr_assert_not_null(strstr(c.ctx, "\"in\":[4,10,0,"), "%s", c.ctx);
	/* the topic was recreated: a lower offset, but a newer record */
	pos.offset = 2;
	pos.timestamp_ms = 1795000099000;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	/* no timestamp on either side: the offset decides */
	pos.offset = 1;
	pos.timestamp_ms = -1;
	text(&c, "hola");
	cr_assert(c.r.duplicate);
	/* no position (a replayed file): "recent" only, and "in" is kept */
	c.pos = NULL;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	cr_assert_not_null(strstr(c.ctx, "\"in\":[4,2,0,1795000099000]"), "%s", c.ctx);
	/* an "in" of the wrong shape is ignored */
	conv_set_ctx(&c, "{\"conversation_step\":\"welcome\",\"flow\":\"donations\",\"in\":[4,\"x\",0,-1]}");
	c.pos = &pos;
	text(&c, "hola");
	cr_assert_not(c.r.duplicate);
	conv_close(&c);
}

Test(flow, status_events_update_delivery_only)
{
	struct conv c;
	char *before, *d;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	text(&c, "Juan Pérez");
	before = ctx_field(&c, "recent");

	status(&c, "st-1", "out-1", WA_STATUS_SENT);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_not_null(c.r.ctx_json);
	cr_assert_str_eq(c.r.step, "waiting_for_ministry");
	assert_field(&c, "conversation_step", "waiting_for_ministry");
	assert_field(&c, "customer_name", "Juan Pérez");
	d = ctx_field(&c, "delivery");
	cr_assert(strstr(d, "\"message_id\":\"out-1\"") && strstr(d, "\"status\":\"sent\""), "%s", d);
	free(d);

	status(&c, "st-2", "out-1", WA_STATUS_READ);
	cr_assert_not_null(c.r.ctx_json);
	d = ctx_field(&c, "delivery");
	cr_assert(strstr(d, "\"status\":\"read\"") && strstr(d, "\"event_id\":\"st-2\""), "%s", d);
	free(d);

	/* delivered arrives late: ranks lower than read, ignored */
	status(&c, "st-3", "out-1", WA_STATUS_DELIVERED);
	cr_assert_null(c.r.ctx_json);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_not(c.r.duplicate);

	/* the same status event again: a duplicate, nothing written */
	status(&c, "st-2", "out-1", WA_STATUS_READ);
	cr_assert(c.r.duplicate);
	cr_assert_null(c.r.ctx_json);

	/* failed is final */
	status(&c, "st-4", "out-1", WA_STATUS_FAILED);
	cr_assert_not_null(c.r.ctx_json);
	d = ctx_field(&c, "delivery");
	cr_assert(strstr(d, "\"status\":\"failed\"") && strstr(d, "\"error_code\":\"131047\""), "%s", d);
	free(d);
	status(&c, "st-5", "out-1", WA_STATUS_READ);
	cr_assert_null(c.r.ctx_json);

	/* a newer message's status replaces the record */
	status(&c, "st-6", "out-2", WA_STATUS_SENT);
	cr_assert_not_null(c.r.ctx_json);
	d = ctx_field(&c, "delivery");
	cr_assert(strstr(d, "out-2"), "%s", d);
	free(d);

	/* statuses do not touch "recent" nor the conversation */
	d = ctx_field(&c, "recent");
	cr_assert_str_eq(d, before);
	free(d);
	free(before);
	text(&c, "ministerio de salud");
	assert_step(&c, "waiting_for_confirmation");
	d = ctx_field(&c, "delivery");
	cr_assert_not_null(d, "delivery survives message steps");
	free(d);
	conv_close(&c);
}

Test(flow, status_without_a_context_writes_nothing)
{
	struct conv c;

	conv_open(&c, NULL);
	status(&c, "st-1", "out-1", WA_STATUS_DELIVERED);
	cr_assert_null(c.r.ctx_json);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_str_eq(c.r.step, "");
	conv_close(&c);
}

Test(flow, reactions_and_validation_change_nothing)
{
	struct conv c;
	struct wa_event ev;

	conv_open(&c, NULL);
	text(&c, "quiero donar");
	ev = base_event(&c, WA_KIND_REACTION, NULL);
	ev.reaction_emoji.p = "👍";
	ev.reaction_emoji.len = strlen("👍");
	apply(&c, &ev);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_null(c.r.ctx_json);
	cr_assert_str_eq(c.r.step, "waiting_for_name");

	ev = base_event(&c, WA_KIND_VALIDATION, NULL);
	ev.key[0] = '\0';
	apply(&c, &ev);
	cr_assert_eq(c.r.nreplies, 0u);
	cr_assert_null(c.r.ctx_json);
	conv_close(&c);
}

Test(flow, media_gets_the_text_only_reply_and_the_question_again)
{
	enum wa_kind kinds[] = {WA_KIND_MEDIA, WA_KIND_LOCATION, WA_KIND_UNSUPPORTED};
	size_t i;

	for (i = 0; i < 3; i++) {
		struct conv c;
		struct wa_event ev;

		conv_open(&c, NULL);
		text(&c, "quiero donar");
		text(&c, "Juan Pérez");
		ev = base_event(&c, kinds[i], NULL);
		apply(&c, &ev);
		assert_step(&c, "waiting_for_ministry");
		cr_assert_eq(c.r.nreplies, 2u);
		cr_assert(strstr(body(&c, 0), "texto"));
		cr_assert_eq(c.r.replies[1].kind, REPLY_LIST);
		assert_field(&c, "customer_name", "Juan Pérez");
		conv_close(&c);
	}
	{
		struct conv c;
		struct wa_event ev;

		conv_open(&c, NULL);
		ev = base_event(&c, WA_KIND_MEDIA, NULL);
		apply(&c, &ev);
		assert_step(&c, "welcome");
		cr_assert_eq(c.r.nreplies, 2u);
		conv_close(&c);
	}
}

Test(flow, unusable_events_are_invalid)
{
	struct conv c;
	struct wa_event ev;
	struct flow_result r;

	conv_open(&c, NULL);
	ev = base_event(&c, WA_KIND_TEXT, NULL);
	ev.err = EVENT_E_MISSING;
	cr_assert_eq(flow_step(c.s, NULL, 0, false, &ev, NULL, NOW, &r), WB_ERR_INVALID);
	ev = base_event(&c, WA_KIND_TEXT, NULL);
	ev.key[0] = '\0';
	cr_assert_eq(flow_step(c.s, NULL, 0, false, &ev, NULL, NOW, &r), WB_ERR_INVALID);
	conv_close(&c);
}

Test(flow, unknown_context_fields_are_preserved_verbatim)
{
	struct conv c;

	conv_open(&c, NULL);
	conv_set_ctx(&c, "{\"conversation_step\":\"waiting_for_name\",\"last_intent\":\"donations\","
			 "\"crm_id\":{\"a\":[1,2.50,\"x\\u00e9\"],\"b\":null},\"zz\":\"caf\\u00e9\",\"n\":1e3}");
	text(&c, "Juan Pérez");
	assert_step(&c, "waiting_for_ministry");
	cr_assert(strstr(c.ctx, "\"crm_id\":{\"a\":[1,2.50,\"x\\u00e9\"],\"b\":null}"), "%s", c.ctx);
	cr_assert(strstr(c.ctx, "\"zz\":\"caf\\u00e9\""), "%s", c.ctx);
	cr_assert(strstr(c.ctx, "\"n\":1e3"), "%s", c.ctx);
	status(&c, "st-1", "out-1", WA_STATUS_SENT);
	cr_assert(strstr(c.ctx, "\"crm_id\":{\"a\":[1,2.50,\"x\\u00e9\"],\"b\":null}"), "%s", c.ctx);
	cr_assert(strstr(c.ctx, "\"n\":1e3"), "%s", c.ctx);
	conv_close(&c);
}

Test(flow, garbage_contexts_start_fresh_without_error)
{
	const char *garbage[] = {
		"not json",
		"",
		"[1,2,3]",
		"\"waiting_for_name\"",
		"{\"conversation_step\":5}",
		"{\"conversation_step\":\"no_such_step\"}",
		"{\"conversation_step\":\"waiting_for_ministry\",\"flow\":\"another_flow\"}",
		"{\"conversation_step\":\"waiting_for_ministry\"",
		"{\"conversation_step\":[\"waiting_for_ministry\"]}",
		"{\"recent\":\"x\",\"delivery\":7,\"customer_name\":{}}",
	};
	size_t i;

	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		struct conv c;

		conv_open(&c, NULL);
		conv_set_ctx(&c, garbage[i]);
		text(&c, "Juan Pérez");
		cr_assert(c.r.fresh_start, "\"%s\"", garbage[i]);
		cr_assert_str_eq(c.r.step, "welcome", "\"%s\"", garbage[i]);
		assert_field(&c, "customer_name", NULL);
		conv_close(&c);

		conv_open(&c, NULL);
		conv_set_ctx(&c, garbage[i]);
		text(&c, "quiero donar");
		cr_assert_str_eq(c.r.step, "waiting_for_name", "\"%s\"", garbage[i]);
		conv_close(&c);
	}
}

Test(flow, wrong_typed_fields_are_dropped)
{
	struct conv c;

	conv_open(&c, NULL);
	conv_set_ctx(&c, "{\"conversation_step\":\"waiting_for_ministry\",\"flow\":7,\"customer_name\":42,"
			 "\"last_intent\":\"donations\",\"delivery\":\"x\",\"recent\":{\"id\":1}}");
	text(&c, "ministerio de salud");
	cr_assert_not(c.r.fresh_start, "a known step of this flow continues");
	assert_step(&c, "waiting_for_confirmation");
	assert_field(&c, "customer_name", NULL);
	assert_field(&c, "delivery", NULL);
	assert_field(&c, "flow", "donations");
	conv_close(&c);
}

/* ---------------------------------------------------------------------- */
/* The FAQ flow: different steps, a menu, answers that return to the menu. */

Test(flow_faq, menu_answers_and_callback)
{
	struct conv c;

	conv_open(&c, "faq.json");
	cr_assert_str_eq(flow_name(c.f), "faq");
	text(&c, "hola");
	assert_step(&c, "menu");
	cr_assert_eq(c.r.replies[0].kind, REPLY_LIST);
	cr_assert_eq(c.r.replies[0].nrows, 3u);
	cr_assert_str_eq(c.r.replies[0].header, "Preguntas frecuentes");

	list(&c, "faq_hours", "Horario de atención");
	assert_step(&c, "menu");
	cr_assert_eq(c.r.nreplies, 2u, "the answer, then the menu");
	cr_assert(strstr(body(&c, 0), "lunes a viernes"));
	cr_assert_eq(c.r.replies[1].kind, REPLY_LIST);
	assert_field(&c, "last_topic", "hours");

	text(&c, "2");
	assert_step(&c, "menu");
	cr_assert(strstr(body(&c, 0), "Carrera 7"));
	assert_field(&c, "last_topic", "location");

	text(&c, "¿Cuál es el HORARIO?");
	cr_assert(strstr(body(&c, 0), "lunes a viernes"));

	text(&c, "quiero hablar con un asesor");
	assert_step(&c, "ask_callback_phone");
	text(&c, "mi número es abc");
	assert_step(&c, "ask_callback_phone");
	cr_assert_eq(c.r.nreplies, 2u);
	text(&c, "+57 300 123 4567");
	assert_step(&c, "confirm_callback");
	cr_assert(strstr(body(&c, 0), "+57 300 123 4567"));
	text(&c, "no");
	assert_step(&c, "ask_callback_phone");
	text(&c, "3001234567");
	button(&c, "yes", "Sí, llámenme");
	assert_step(&c, "callback_done");
	assert_field(&c, "callback_phone", "3001234567");
	cr_assert(strstr(body(&c, 0), "3001234567"));

	text(&c, "gracias");
	assert_step(&c, "menu");
	conv_close(&c);
}

Test(flow_faq, unknown_option_and_commands)
{
	struct conv c;

	conv_open(&c, "faq.json");
	text(&c, "hola");
	text(&c, "precio de la gasolina");
	assert_step(&c, "menu");
	cr_assert_eq(c.r.nreplies, 2u);
	cr_assert(strstr(body(&c, 0), "No encontré"));
	text(&c, "9");
	assert_step(&c, "menu");
	cr_assert_eq(c.r.nreplies, 2u);
	text(&c, "ayuda");
	assert_step(&c, "menu");
	cr_assert(strstr(body(&c, 0), "horario"));
	text(&c, "chao");
	assert_step(&c, "bye");
	conv_close(&c);
}

Test(flow_faq, donations_context_is_another_flows)
{
	struct conv c;

	conv_open(&c, "faq.json");
	conv_set_ctx(&c, "{\"conversation_step\":\"waiting_for_name\",\"flow\":\"donations\",\"customer_name\":\"J\","
			 "\"last_intent\":\"donations\"}");
	text(&c, "hola");
	cr_assert(c.r.fresh_start);
	assert_step(&c, "menu");
	assert_field(&c, "flow", "faq");
	/* the other flow's fields are not ours: kept verbatim */
	assert_field(&c, "customer_name", "J");
	conv_close(&c);
}

/* ---------------------------------------------------------------------- */
/* A small flow written here: restrict_to_list, "then", patterns. */

static const char restricted_flow[] =
	"{\"name\":\"colors\",\"start\":\"ask\",\"fallback\":\"¿Qué?\",\"non_text\":\"Solo texto\","
	"\"steps\":{"
	"\"ask\":{\"prompt\":{\"body\":\"¿Color?\",\"list\":{\"button\":\"Colores\",\"rows_from\":\"values\"}},"
	"\"invalid\":\"Ese color no está en la lista.\","
	"\"slot\":{\"field\":\"color\",\"restrict_to_list\":true,\"values\":["
	"{\"id\":\"c_red\",\"value\":\"Rojo\"},{\"id\":\"c_blue\",\"value\":\"Azul\",\"aliases\":[\"celeste\"]}]},"
	"\"next\":\"done\"},"
	"\"done\":{\"prompt\":\"Elegiste {color}.\",\"final\":true}}}";

Test(flow, restrict_to_list_refuses_other_values)
{
	char err[256] = "";
	flow_t *f = flow_load_json(restricted_flow, strlen(restricted_flow), err, sizeof(err));
	struct conv c;

	cr_assert_not_null(f, "%s", err);
	memset(&c, 0, sizeof(c));
	c.f = f;
	c.s = flow_session_new(f);
	text(&c, "hola");
	assert_step(&c, "ask");
	text(&c, "verde");
	assert_step(&c, "ask");
	cr_assert_str_eq(body(&c, 0), "Ese color no está en la lista.");
	text(&c, "CELESTE");
	assert_step(&c, "done");
	assert_field(&c, "color", "Azul");
	cr_assert_str_eq(body(&c, 0), "Elegiste Azul.");
	conv_close(&c);
}

/* ---------------------------------------------------------------------- */
/* Loader errors: each names the JSON path of the problem. */

static void assert_load_error(const char *json, const char *want_prefix)
{
	char err[512] = "";
	flow_t *f = flow_load_json(json, strlen(json), err, sizeof(err));

	cr_assert_null(f, "should not load: %s", json);
	cr_assert(strncmp(err, want_prefix, strlen(want_prefix)) == 0, "want \"%s...\", got \"%s\"", want_prefix, err);
}

/* A minimal valid flow around the step object(s) s and extra top-level
 * members x. */
#define FLOW(x, s) "{\"name\":\"t\",\"start\":\"a\",\"fallback\":\"?\",\"non_text\":\"txt\"" x ",\"steps\":{" s "}}"

Test(flow_load, minimal_flow_loads)
{
	char err[256] = "";
	const char *j = FLOW("", "\"a\":{\"prompt\":\"hola\"}");
	flow_t *f = flow_load_json(j, strlen(j), err, sizeof(err));

	cr_assert_not_null(f, "%s", err);
	flow_destroy(f);
	flow_destroy(NULL);
	flow_session_destroy(NULL);
}

Test(flow_load, syntax_errors_name_the_root)
{
	assert_load_error("not json", "$: not valid JSON");
	assert_load_error("{\"name\":\"t\"", "$: not valid JSON");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"hola\"}") " x", "$: not valid JSON");
	assert_load_error("{\"name\":\"t\",}", "$: not valid JSON");
	assert_load_error("[]", "$: must be an object");
	assert_load_error("", "$: empty flow");
}

Test(flow_load, unknown_keys_are_typos)
{
	assert_load_error(FLOW(",\"nmae\":\"x\"", "\"a\":{\"prompt\":\"hola\"}"), "$.nmae: unknown key");
	assert_load_error(FLOW("", "\"a\":{\"promtp\":\"hola\"}"), "$.steps.a.promtp: unknown key");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"text\":\"x\",\"bodi\":\"y\"}}"),
			  "$.steps.a.prompt.bodi: unknown key");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"max_lenght\":3},\"next\":\"a\"}"),
			  "$.steps.a.slot.max_lenght: unknown key");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"keyword\":[\"x\"],\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i.keyword: unknown key");
}

Test(flow_load, required_members)
{
	assert_load_error("{\"start\":\"a\",\"fallback\":\"?\",\"non_text\":\"t\",\"steps\":{\"a\":{\"prompt\":\"x\"}}}",
			  "$.name: required");
	assert_load_error("{\"name\":\"t\",\"fallback\":\"?\",\"non_text\":\"t\",\"steps\":{\"a\":{\"prompt\":\"x\"}}}",
			  "$.start: required");
	assert_load_error("{\"name\":\"t\",\"start\":\"a\",\"non_text\":\"t\",\"steps\":{\"a\":{\"prompt\":\"x\"}}}",
			  "$.fallback: required");
	assert_load_error(FLOW("", "\"a\":{}"), "$.steps.a.prompt: required");
	assert_load_error(FLOW("", ""), "$.steps: must not be empty");
	assert_load_error(FLOW(",\"commands\":{\"help\":{\"keywords\":[\"ayuda\"]}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.commands.help.reply: required");
}

Test(flow_load, references_to_undefined_steps)
{
	assert_load_error("{\"name\":\"t\",\"start\":\"b\",\"fallback\":\"?\",\"non_text\":\"t\",\"steps\":{\"a\":{\"prompt\":"
			  "\"x\"}}}",
			  "$.start: unknown step \"b\"");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\"},\"next\":\"nowhere\"}"),
			  "$.steps.a.next: unknown step");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"keywords\":[\"x\"],\"step\":\"zz\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i.step: unknown step");
	assert_load_error(FLOW(",\"confirm_words\":{\"yes\":[\"si\"],\"no\":[\"no\"]}",
			       "\"a\":{\"prompt\":\"x\",\"confirm\":{\"yes\":\"a\",\"no\":\"b\"}}"),
			  "$.steps.a.confirm.no: unknown step");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"b\",\"rows_from\":\"options\"}},"
				   "\"options\":[{\"id\":\"o\",\"title\":\"O\",\"next\":\"q\"}]}"),
			  "$.steps.a.options[0].next: unknown step");
}

Test(flow_load, unknown_placeholders)
{
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"Hola {nombre}\"}"), "$.steps.a.prompt: unknown placeholder {nombre}");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"Hola {x}\",\"buttons\":[{\"id\":\"y\",\"title\":\"Y\"}]}}"),
			  "$.steps.a.prompt.body: unknown placeholder {x}");
	assert_load_error("{\"name\":\"t\",\"start\":\"a\",\"fallback\":\"oops {\",\"non_text\":\"t\",\"steps\":{\"a\":{"
			  "\"prompt\":\"x\"}}}",
			  "$.fallback: '{' at byte 5");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"{n}\",\"slot\":{\"field\":\"n\"},\"next\":\"a\"}"),
			  "$.steps.a.prompt: must contain text besides placeholders");
}

Test(flow_load, whatsapp_limits)
{
	char big[5000 + 200];
	int n;

	/* > 3 buttons */
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[{\"id\":\"1\",\"title\":\"1\"},{\"id\":\"2\","
				   "\"title\":\"2\"},{\"id\":\"3\",\"title\":\"3\"},{\"id\":\"4\",\"title\":\"4\"}]}}"),
			  "$.steps.a.prompt.buttons: more than 3 buttons");
	/* a button title of 21 code points (accented: bytes would be 22) */
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[{\"id\":\"1\",\"title\":"
				   "\"ééééééééééééééééééééé\"}]}}"),
			  "$.steps.a.prompt.buttons[0].title: longer than 20 characters");
	/* 20 code points are fine */
	{
		const char *j = FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[{\"id\":\"1\",\"title\":"
					 "\"éééééééééééééééééééé\"}]}}");
		char err[256];
		flow_t *f = flow_load_json(j, strlen(j), err, sizeof(err));

		cr_assert_not_null(f, "%s", err);
		flow_destroy(f);
	}
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[{\"id\":\"1\",\"title\":\"A\"},{\"id\":"
				   "\"1\",\"title\":\"B\"}]}}"),
			  "$.steps.a.prompt.buttons[1].id: duplicate button id");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[]}}"),
			  "$.steps.a.prompt.buttons: must not be empty");
	/* > 10 rows */
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"Ver\",\"rows\":["
				   "{\"id\":\"1\",\"title\":\"1\"},{\"id\":\"2\",\"title\":\"2\"},{\"id\":\"3\",\"title\":\"3\"},"
				   "{\"id\":\"4\",\"title\":\"4\"},{\"id\":\"5\",\"title\":\"5\"},{\"id\":\"6\",\"title\":\"6\"},"
				   "{\"id\":\"7\",\"title\":\"7\"},{\"id\":\"8\",\"title\":\"8\"},{\"id\":\"9\",\"title\":\"9\"},"
				   "{\"id\":\"10\",\"title\":\"10\"},{\"id\":\"11\",\"title\":\"11\"}]}}}"),
			  "$.steps.a.prompt.list.rows: more than 10 rows");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"Ver\",\"rows\":["
				   "{\"id\":\"1\",\"title\":\"Ministerio de Educación Nacional\"}]}}}"),
			  "$.steps.a.prompt.list.rows[0].title: longer than 24 characters");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"Ver\",\"rows\":["
				   "{\"id\":\"1\",\"title\":\"A\"},{\"id\":\"1\",\"title\":\"B\"}]}}}"),
			  "$.steps.a.prompt.list.rows[1].id: duplicate row id");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"Un botón demasiado largo\","
				   "\"rows\":[{\"id\":\"1\",\"title\":\"A\"}]}}}"),
			  "$.steps.a.prompt.list.button: longer than 20 characters");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"header\":\"0123456789012345678901234567890123456789"
				   "012345678901234567890\",\"buttons\":[{\"id\":\"1\",\"title\":\"1\"}]}}"),
			  "$.steps.a.prompt.header: longer than 60 characters");
	/* interactive body over 1024 code points */
	n = snprintf(big, sizeof(big), "{\"name\":\"t\",\"start\":\"a\",\"fallback\":\"?\",\"non_text\":\"t\",\"steps\":{\"a\":"
				       "{\"prompt\":{\"body\":\"");
	memset(big + n, 'x', 1025);
	n += 1025;
	snprintf(big + n, sizeof(big) - (size_t)n, "\",\"buttons\":[{\"id\":\"1\",\"title\":\"1\"}]}}}}");
	assert_load_error(big, "$.steps.a.prompt.body: longer than 1024 characters");
	/* text over 4096 code points */
	n = snprintf(big, sizeof(big), "{\"name\":\"t\",\"start\":\"a\",\"fallback\":\"?\",\"non_text\":\"t\",\"steps\":{\"a\":"
				       "{\"prompt\":\"");
	memset(big + n, 'x', 4097);
	n += 4097;
	snprintf(big + n, sizeof(big) - (size_t)n, "\"}}}");
	assert_load_error(big, "$.steps.a.prompt: longer than 4096 characters");
	/* rows_from on a step without values */
	assert_load_error(FLOW("", "\"a\":{\"prompt\":{\"body\":\"x\",\"list\":{\"button\":\"b\",\"rows_from\":\"values\"}}}"),
			  "$.steps.a.prompt.list.rows_from: must be");
}

Test(flow_load, slot_and_step_rules)
{
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"max_length\":\"80\"},\"next\":\"a\"}"),
			  "$.steps.a.slot.max_length: must be an integer");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"max_length\":0},\"next\":\"a\"}"),
			  "$.steps.a.slot.max_length: must be an integer from 1 to 1024");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"min_length\":9,\"max_length\":3},"
				   "\"next\":\"a\"}"),
			  "$.steps.a.slot.min_length: greater than max_length");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"pattern\":\"([a-z\"},\"next\":\"a\"}"),
			  "$.steps.a.slot.pattern: not a POSIX extended regular expression");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"conversation_step\"},\"next\":\"a\"}"),
			  "$.steps.a.slot.field: \"conversation_step\" is not a usable field name");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"chars\":[\"letters\"]},\"next\":\"a\"}"),
			  "$.steps.a.slot.chars[0]: unknown class");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"restrict_to_list\":true},\"next\":\"a\"}"),
			  "$.steps.a.slot.restrict_to_list: needs \"values\"");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\",\"values\":[{\"value\":\"A\",\"id\":\"1\"},"
				   "{\"value\":\"B\",\"id\":\"1\"}]},\"next\":\"a\"}"),
			  "$.steps.a.slot.values[1].id: duplicate id");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"slot\":{\"field\":\"n\"}}"), "$.steps.a.next: required");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"next\":\"a\"}"), "$.steps.a.next: only with \"slot\"");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"then\":\"b\"},\"b\":{\"prompt\":\"y\",\"then\":\"a\"}"),
			  "$.steps.a.then: step \"b\" has a \"then\" itself");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"final\":true}"), "$.start: must not be a final step");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"set\":{\"flow\":\"y\"}}"),
			  "$.steps.a.set.flow: not a usable field name");
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"invalid\":\"no\"}"),
			  "$.steps.a.invalid: only on a step with slot, confirm or options");
	assert_load_error(FLOW("", "\"a b\":{\"prompt\":\"x\"}"), "$.steps.a b: step names are");
}

Test(flow_load, confirm_and_commands)
{
	assert_load_error(FLOW("", "\"a\":{\"prompt\":\"x\",\"confirm\":{\"yes\":\"a\",\"no\":\"a\"}}"),
			  "$.confirm_words: required: step \"a\" confirms");
	assert_load_error(FLOW(",\"confirm_words\":{\"yes\":[\"si\"],\"no\":[\"no\"]}",
			       "\"a\":{\"prompt\":{\"body\":\"x\",\"buttons\":[{\"id\":\"ok\",\"title\":\"OK\"}]},"
			       "\"confirm\":{\"yes\":\"a\",\"no\":\"a\"}}"),
			  "$.steps.a.prompt.buttons: a confirm step's buttons are exactly the ids \"yes\" and \"no\"");
	assert_load_error(FLOW(",\"commands\":{\"cancel\":{\"keywords\":[\"salir\"],\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.commands.cancel.step: must be a final step");
	assert_load_error(FLOW(",\"commands\":{\"stop\":{\"keywords\":[\"x\"]}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.commands.stop: unknown key");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"keywords\":[\"quiero donar\"],\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i.keywords[0]: must be one word");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"phrases\":[\"¡¿?!\"],\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i.phrases[0]: has no letters or digits");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i: needs \"keywords\" or \"phrases\"");
	assert_load_error(FLOW(",\"intents\":{\"i\":{\"keywords\":[5],\"step\":\"a\"}}", "\"a\":{\"prompt\":\"x\"}"),
			  "$.intents.i.keywords[0]: must be a string, not a number");
}

Test(flow_load, file_errors)
{
	char err[256] = "";

	cr_assert_null(flow_load_file("/nonexistent/flow.json", err, sizeof(err)));
	cr_assert(strstr(err, "/nonexistent/flow.json"), "%s", err);
	cr_assert_null(flow_load_json("{}", 2, NULL, 0), "no errstr is fine");
}
