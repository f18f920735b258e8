/*
 * test_reply.c - reply_encode / reply_id against reply.h and the contract
 * (outbound-messages.md): the out-*.json fixtures are reproduced (compared
 * as JSON, key order included), every WhatsApp limit is checked at its edge
 * with multi-byte text, and refused input leaves the buffer as it was.
 * Every output is parsed with json-c's strict, UTF-8-validating tokener.
 * Fixtures are read from WB_FIXTURES (set by CMakeLists.txt).
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

#ifndef WB_FIXTURES
#error "WB_FIXTURES must name the fixtures directory"
#endif

#define CHANNEL "2f61ca04-0698-4593-be4f-58dfe3d8e392"
#define PHONE_ID "109283746501928"
#define EVENT_ID "532d4416-5982-4afb-8a19-4ab7e1133794"
#define ELLIPSIS "\xe2\x80\xa6"

/* --- helpers ------------------------------------------------------------ */

static json_object *parse_strict(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	cr_assert_not_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && tok->char_offset != (int)len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static json_object *fixture(const char *name)
{
	char path[512];
	json_object *o;

	snprintf(path, sizeof path, "%s/%s", WB_FIXTURES, name);
	o = json_object_from_file(path);
	cr_assert_not_null(o, "cannot read %s", path);
	return o;
}

/* Deep equality; object members must also come in the same order. */
static bool json_eq(json_object *a, json_object *b)
{
	if (json_object_get_type(a) != json_object_get_type(b))
		return false;
	switch (json_object_get_type(a)) {
	case json_type_null:
		return true;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_int:
		return json_object_get_int64(a) == json_object_get_int64(b);
	case json_type_double:
		return json_object_get_double(a) == json_object_get_double(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b),
			      (size_t)json_object_get_string_len(a)) == 0;
	case json_type_array: {
		size_t i, n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (i = 0; i < n; i++)
			if (!json_eq(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	}
	case json_type_object: {
		struct json_object_iterator ia = json_object_iter_begin(a), ea = json_object_iter_end(a);
		struct json_object_iterator ib = json_object_iter_begin(b), eb = json_object_iter_end(b);

		while (!json_object_iter_equal(&ia, &ea) && !json_object_iter_equal(&ib, &eb)) {
			if (strcmp(json_object_iter_peek_name(&ia), json_object_iter_peek_name(&ib)) != 0 ||
			    !json_eq(json_object_iter_peek_value(&ia), json_object_iter_peek_value(&ib)))
				return false;
			json_object_iter_next(&ia);
			json_object_iter_next(&ib);
		}
		return json_object_iter_equal(&ia, &ea) && json_object_iter_equal(&ib, &eb);
	}
	}
	return false;
}

/* Member at a dotted path ("request.body.to.0"); NULL when absent. */
static json_object *at(json_object *o, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof buf, "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(o, tok, &o))
			o = NULL;
	}
	return o;
}

static const char *str_at(json_object *o, const char *path)
{
	json_object *v = at(o, path);

	cr_assert_not_null(v, "missing %s", path);
	cr_assert(json_object_is_type(v, json_type_string), "%s is not a string", path);
	return json_object_get_string(v);
}

static size_t cp_count(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static struct reply_target target(enum wa_provider p)
{
	struct reply_target t = {
		.provider = p,
		.to = "+573001234567",
		.business_id = p == WA_PROVIDER_ACS ? (struct wa_str){CHANNEL, sizeof CHANNEL - 1}
						    : (struct wa_str){PHONE_ID, sizeof PHONE_ID - 1},
		.in_reply_to = {EVENT_ID, sizeof EVENT_ID - 1},
		.conversation_step = "waiting_for_confirmation",
		.acs_api_version = NULL,
	};
	return t;
}

/* Encodes, checks WB_OK and that the output is exactly one JSON object,
 * and returns it parsed. */
static json_object *encode(const struct reply_target *t, unsigned seq, const struct wa_reply *r)
{
	struct jbuf b;
	char err[128] = "";
	json_object *o;
	wb_err_t rc;

	jbuf_init(&b);
	rc = reply_encode(&b, t, seq, r, err, sizeof err);
	cr_assert_eq(rc, WB_OK, "reply_encode: %s (%s)", wb_err_name(rc), err);
	cr_assert(!b.oom);
	cr_assert_eq(strlen(b.p), b.len);
	o = parse_strict(b.p, b.len);
	cr_assert_not_null(o, "not valid JSON: %s", b.p);
	jbuf_fini(&b);
	return o;
}

/* reply_encode must refuse: WB_ERR_INVALID, buffer untouched, errstr set. */
static void refused(const struct reply_target *t, const struct wa_reply *r, const char *what)
{
	struct jbuf b;
	char err[128] = "";
	wb_err_t rc;

	jbuf_init(&b);
	jbuf_cstr(&b, "before");
	rc = reply_encode(&b, t, 0, r, err, sizeof err);
	cr_assert_eq(rc, WB_ERR_INVALID, "%s: got %s", what, wb_err_name(rc));
	cr_assert_neq(err[0], '\0', "%s: errstr is empty", what);
	cr_assert_eq(b.len, 6, "%s", what);
	cr_assert_str_eq(b.p, "before", "%s", what);
	cr_assert(!b.oom);
	jbuf_fini(&b);
}

static void body_matches_fixture(const struct reply_target *t, const struct wa_reply *r, const char *name)
{
	json_object *got = encode(t, 0, r);
	json_object *want = fixture(name);

	cr_assert(json_eq(at(got, "request.body"), want), "%s differs:\n%s", name,
		  json_object_to_json_string(at(got, "request.body")));
	json_object_put(got);
	json_object_put(want);
}

/* The replies of the fixtures. */
static struct wa_reply text_reply(void)
{
	struct wa_reply r = {.kind = REPLY_TEXT,
			     .body = "¡Gracias, Juan Pérez! ¿A qué ministerio quieres donar?"};
	return r;
}

static struct wa_reply buttons_reply(void)
{
	struct wa_reply r = {
		.kind = REPLY_BUTTONS,
		.header = "Confirma tu donación",
		.body = "Juan Pérez, vas a donar al Ministerio de Educación. ¿Confirmas?",
		.footer = "Donaciones a ministerios",
		.buttons = {{"yes", "Sí"}, {"no", "No"}, {"change_ministry", "Cambiar ministerio"}},
		.nbuttons = 3,
	};
	return r;
}

static struct wa_reply list_reply(void)
{
	struct wa_reply r = {
		.kind = REPLY_LIST,
		.header = "Elige un ministerio",
		.body = "Gracias, Juan Pérez. ¿A qué ministerio quieres donar?",
		.footer = "Donaciones a ministerios",
		.list_button = "Ver ministerios",
		.sections = {{"Sociales", 2}, {"Otros", 2}},
		.nsections = 2,
		.rows = {{"min_educacion", "Ministerio de Educación", "Escuelas y universidades públicas"},
			 {"min_salud", "Ministerio de Salud", "Hospitales y vacunación"},
			 {"min_cultura", "Ministerio de Cultura", "Bibliotecas y patrimonio"},
			 {"min_ambiente", "Ministerio de Ambiente", "Parques y reforestación"}},
		.nrows = 4,
	};
	return r;
}

/* --- the fixtures ------------------------------------------------------- */

Test(reply, acs_text_matches_fixture)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = text_reply();

	body_matches_fixture(&t, &r, "out-acs-text.json");
}

Test(reply, acs_buttons_match_fixture)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = buttons_reply();

	body_matches_fixture(&t, &r, "out-acs-buttons.json");
}

Test(reply, acs_list_matches_fixture)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = list_reply();

	body_matches_fixture(&t, &r, "out-acs-list.json");
}

Test(reply, meta_text_matches_fixture)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = text_reply();

	body_matches_fixture(&t, &r, "out-meta-text.json");
}

Test(reply, meta_buttons_match_fixture)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = buttons_reply();

	body_matches_fixture(&t, &r, "out-meta-buttons.json");
}

Test(reply, meta_list_matches_fixture)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = list_reply();

	body_matches_fixture(&t, &r, "out-meta-list.json");
}

Test(reply, acs_envelope_matches_fixture)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = buttons_reply();
	json_object *got = encode(&t, 0, &r);
	json_object *want = fixture("out-envelope.json");

	cr_assert(json_eq(got, want), "envelope differs:\n%s", json_object_to_json_string(got));
	json_object_put(got);
	json_object_put(want);
}

Test(reply, meta_envelope_has_the_contract_fields)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = buttons_reply();
	static const char wamid[] = "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgURkRBMjUwNUE4ODA2MEQ5QzM2OTgA";
	json_object *got, *want;

	t.in_reply_to = (struct wa_str){wamid, sizeof wamid - 1};
	got = encode(&t, 2, &r);
	cr_assert_str_eq(str_at(got, "reply_id"), "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgURkRBMjUwNUE4ODA2MEQ5QzM2OTgA:2");
	cr_assert_str_eq(str_at(got, "in_reply_to"), wamid);
	cr_assert_str_eq(str_at(got, "phone"), "+573001234567");
	cr_assert_str_eq(str_at(got, "provider"), "meta");
	cr_assert_str_eq(str_at(got, "conversation_step"), "waiting_for_confirmation");
	cr_assert_eq(json_object_get_int64(at(got, "seq")), 2);
	cr_assert_str_eq(str_at(got, "request.method"), "POST");
	cr_assert_str_eq(str_at(got, "request.path"), "/" PHONE_ID "/messages");
	want = fixture("out-meta-buttons.json");
	cr_assert(json_eq(at(got, "request.body"), want));
	json_object_put(want);
	json_object_put(got);
}

Test(reply, envelope_without_step_omits_it_and_api_version_is_configurable)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = text_reply();
	json_object *got;

	t.conversation_step = NULL;
	t.acs_api_version = "2025-09-01-preview";
	got = encode(&t, 0, &r);
	cr_assert_null(at(got, "conversation_step"));
	cr_assert_str_eq(str_at(got, "request.path"), "/messages/notifications:send?api-version=2025-09-01-preview");
	json_object_put(got);

	t.conversation_step = "";
	t.acs_api_version = "";
	got = encode(&t, 0, &r);
	cr_assert_null(at(got, "conversation_step"));
	cr_assert_str_eq(str_at(got, "request.path"),
			 "/messages/notifications:send?api-version=" REPLY_ACS_API_VERSION);
	json_object_put(got);
}

Test(reply, optional_header_and_footer_are_omitted)
{
	struct wa_reply r = buttons_reply();
	struct reply_target t = target(WA_PROVIDER_META);
	json_object *got;

	r.header = NULL;
	r.footer = "";
	got = encode(&t, 0, &r);
	cr_assert_null(at(got, "request.body.interactive.header"));
	cr_assert_null(at(got, "request.body.interactive.footer"));
	cr_assert_str_eq(str_at(got, "request.body.interactive.body.text"), r.body);
	json_object_put(got);

	t = target(WA_PROVIDER_ACS);
	got = encode(&t, 0, &r);
	cr_assert_null(at(got, "request.body.interactiveMessage.header"));
	cr_assert_null(at(got, "request.body.interactiveMessage.footer"));
	json_object_put(got);
}

Test(reply, text_reply_ignores_interactive_fields)
{
	struct wa_reply r = buttons_reply();
	struct reply_target t = target(WA_PROVIDER_META);
	json_object *got, *want;

	r.kind = REPLY_TEXT;
	r.body = text_reply().body;
	got = encode(&t, 0, &r);
	want = fixture("out-meta-text.json");
	cr_assert(json_eq(at(got, "request.body"), want));
	json_object_put(want);
	json_object_put(got);
}

/* --- reply ids ---------------------------------------------------------- */

Test(reply, reply_ids_are_event_id_colon_seq)
{
	struct jbuf b;
	struct wa_str id = {"id", 2};

	jbuf_init(&b);
	reply_id(&b, id, 0);
	cr_assert_str_eq(b.p, "id:0");
	jbuf_reset(&b);
	reply_id(&b, id, 1);
	cr_assert_str_eq(b.p, "id:1");
	jbuf_reset(&b);
	reply_id(&b, id, 4294967295u);
	cr_assert_str_eq(b.p, "id:4294967295");
	jbuf_fini(&b);
}

Test(reply, encoding_is_deterministic)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = list_reply();
	struct jbuf a, b;
	json_object *o;

	jbuf_init(&a);
	jbuf_init(&b);
	cr_assert_eq(reply_encode(&a, &t, 1, &r, NULL, 0), WB_OK);
	cr_assert_eq(reply_encode(&b, &t, 1, &r, NULL, 0), WB_OK);
	cr_assert_eq(a.len, b.len);
	cr_assert_str_eq(a.p, b.p);
	o = parse_strict(a.p, a.len);
	cr_assert_str_eq(str_at(o, "reply_id"), EVENT_ID ":1");
	cr_assert_eq(json_object_get_int64(at(o, "seq")), 1);
	json_object_put(o);
	jbuf_fini(&a);
	jbuf_fini(&b);
}

/* encode() of r as raw bytes (checked WB_OK), for byte comparisons. */
static char *encode_raw(const struct reply_target *t, const struct wa_reply *r)
{
	struct jbuf b;
	char *out;

	jbuf_init(&b);
	cr_assert_eq(reply_encode(&b, t, 2, r, NULL, 0), WB_OK);
	out = strdup(b.p);
	cr_assert_not_null(out);
	jbuf_fini(&b);
	return out;
}

/* A prepared reply writes exactly what encoding from scratch writes, for
 * both providers and every kind, with its texts prepared (the same
 * pointers), replaced per reply (other pointers), or cut at their limit. */
Test(reply, prepared_reply_encodes_byte_for_byte_like_a_plain_one)
{
	static char long_body[1100];
	struct wa_reply rs[3] = {text_reply(), buttons_reply(), list_reply()};
	enum wa_provider prov[2] = {WA_PROVIDER_ACS, WA_PROVIDER_META};
	char other_body[] = "Otro texto, \"citado\" y con \\ barra.";
	size_t i, p, v;

	memset(long_body, 'x', sizeof long_body - 1);
	for (i = 0; i < 3; i++) {
		for (v = 0; v < 3; v++) {
			struct wa_reply r = rs[i], plain;
			struct reply_prep *pp;

			if (v == 2)
				r.body = long_body;
			pp = reply_prep_new(&r);
			cr_assert_not_null(pp);
			if (v == 1)
				r.body = other_body; /* prepared texts must not be used */
			plain = r;
			r.prep = pp;
			for (p = 0; p < 2; p++) {
				struct reply_target t = target(prov[p]);
				char *a = encode_raw(&t, &plain), *b = encode_raw(&t, &r);

				cr_assert_str_eq(b, a, "kind %zu, variant %zu, provider %zu", i, v, p);
				free(a);
				free(b);
			}
			reply_prep_destroy(pp);
		}
	}
	reply_prep_destroy(NULL);
}

/* A prepared reply whose buttons or list are not the ones it was made
 * from is encoded from scratch: the new buttons are sent, and still
 * validated (a duplicate title is refused). */
Test(reply, prep_of_other_buttons_is_ignored)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = buttons_reply(), plain;
	struct reply_prep *pp = reply_prep_new(&r);
	char *a, *b;

	cr_assert_not_null(pp);
	r.buttons[1].title = "Tal vez";
	plain = r;
	r.prep = pp;
	a = encode_raw(&t, &plain);
	b = encode_raw(&t, &r);
	cr_assert_str_eq(b, a);
	cr_assert_not_null(strstr(b, "Tal vez"));
	free(a);
	free(b);
	r.buttons[1].title = r.buttons[0].title;
	refused(&t, &r, "same title with a prep of other buttons");
	reply_prep_destroy(pp);
}

/* An invalid reply gets no prep: reply_encode refuses it itself. */
Test(reply, invalid_reply_is_not_prepared)
{
	struct wa_reply r = buttons_reply();

	r.nbuttons = 0;
	cr_assert_null(reply_prep_new(&r));
}

Test(reply, appends_after_existing_content)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = text_reply();
	struct jbuf b;
	json_object *o;

	jbuf_init(&b);
	jbuf_ch(&b, '[');
	cr_assert_eq(reply_encode(&b, &t, 0, &r, NULL, 0), WB_OK);
	jbuf_ch(&b, ',');
	cr_assert_eq(reply_encode(&b, &t, 1, &r, NULL, 0), WB_OK);
	jbuf_ch(&b, ']');
	o = parse_strict(b.p, b.len);
	cr_assert_not_null(o);
	cr_assert_eq(json_object_array_length(o), 2);
	cr_assert_str_eq(str_at(o, "1.reply_id"), EVENT_ID ":1");
	json_object_put(o);
	jbuf_fini(&b);
}

/* --- limits ------------------------------------------------------------- */

/* n copies of unit (rotating through units when several), NUL-terminated. */
static char *repeat(const char *const *units, size_t nunits, size_t n)
{
	size_t i, len = 0, cap = n * 4 + 1;
	char *s = malloc(cap);

	cr_assert_not_null(s);
	for (i = 0; i < n; i++) {
		size_t l = strlen(units[i % nunits]);

		memcpy(s + len, units[i % nunits], l);
		len += l;
	}
	s[len] = '\0';
	return s;
}

enum field { F_TEXT, F_BODY, F_HEADER, F_FOOTER, F_BUTTON, F_LIST_BUTTON, F_ROW_TITLE, F_ROW_DESC, F_SECTION };

static const struct {
	enum field f;
	size_t limit;
	const char *meta, *acs;
} fields[] = {
	{F_TEXT, REPLY_LIMIT_TEXT, "request.body.text.body", "request.body.content"},
	{F_BODY, REPLY_LIMIT_BODY, "request.body.interactive.body.text", "request.body.interactiveMessage.body.text"},
	{F_HEADER, REPLY_LIMIT_HEADER, "request.body.interactive.header.text",
	 "request.body.interactiveMessage.header.text"},
	{F_FOOTER, REPLY_LIMIT_FOOTER, "request.body.interactive.footer.text",
	 "request.body.interactiveMessage.footer.text"},
	{F_BUTTON, REPLY_LIMIT_BUTTON_TITLE, "request.body.interactive.action.buttons.0.reply.title",
	 "request.body.interactiveMessage.action.content.buttons.0.title"},
	{F_LIST_BUTTON, REPLY_LIMIT_LIST_BUTTON, "request.body.interactive.action.button",
	 "request.body.interactiveMessage.action.content.title"},
	{F_ROW_TITLE, REPLY_LIMIT_ROW_TITLE, "request.body.interactive.action.sections.0.rows.0.title",
	 "request.body.interactiveMessage.action.content.groups.0.items.0.title"},
	{F_ROW_DESC, REPLY_LIMIT_ROW_DESC, "request.body.interactive.action.sections.0.rows.0.description",
	 "request.body.interactiveMessage.action.content.groups.0.items.0.description"},
	{F_SECTION, REPLY_LIMIT_SECTION_TITLE, "request.body.interactive.action.sections.0.title",
	 "request.body.interactiveMessage.action.content.groups.0.title"},
};

/* Encodes a reply with s in field f (both providers) and returns what each
 * wrote there; caller frees. */
static void encode_field(enum field f, const char *s, char **meta_out, char **acs_out)
{
	struct wa_reply r = f == F_TEXT ? text_reply() : f == F_BUTTON ? buttons_reply() : list_reply();
	size_t i, k;

	switch (f) {
	case F_TEXT:
	case F_BODY: r.body = s; break;
	case F_HEADER: r.header = s; break;
	case F_FOOTER: r.footer = s; break;
	case F_BUTTON: r.buttons[0].title = s; break;
	case F_LIST_BUTTON: r.list_button = s; break;
	case F_ROW_TITLE: r.rows[0].title = s; break;
	case F_ROW_DESC: r.rows[0].description = s; break;
	case F_SECTION: r.sections[0].title = s; break;
	}
	for (k = 0; k < 2; k++) {
		struct reply_target t = target(k == 0 ? WA_PROVIDER_META : WA_PROVIDER_ACS);
		json_object *o = encode(&t, 0, &r);

		for (i = 0; fields[i].f != f; i++)
			;
		*(k == 0 ? meta_out : acs_out) = strdup(str_at(o, k == 0 ? fields[i].meta : fields[i].acs));
		json_object_put(o);
	}
}

static void check_limit(enum field f, size_t limit, const char *const *units, size_t nunits)
{
	char *exact = repeat(units, nunits, limit);
	char *over = repeat(units, nunits, limit + 1);
	char *far = repeat(units, nunits, limit * 3);
	char *cut = repeat(units, nunits, limit - 1);
	char *want_cut = malloc(strlen(cut) + sizeof ELLIPSIS);
	char *m, *a;

	strcpy(want_cut, cut);
	strcat(want_cut, ELLIPSIS);

	encode_field(f, exact, &m, &a);
	cr_assert_str_eq(m, exact, "field %d at its limit %zu (meta)", f, limit);
	cr_assert_str_eq(a, exact, "field %d at its limit %zu (acs)", f, limit);
	free(m);
	free(a);

	encode_field(f, over, &m, &a);
	cr_assert_eq(cp_count(m), limit, "field %d: limit + 1 is cut to the limit", f);
	cr_assert_str_eq(m, want_cut, "field %d: limit + 1 (meta)", f);
	cr_assert_str_eq(a, want_cut, "field %d: limit + 1 (acs)", f);
	free(m);
	free(a);

	encode_field(f, far, &m, &a);
	cr_assert_str_eq(m, want_cut, "field %d: 3 x limit (meta)", f);
	cr_assert_str_eq(a, want_cut, "field %d: 3 x limit (acs)", f);
	free(m);
	free(a);

	free(exact);
	free(over);
	free(far);
	free(cut);
	free(want_cut);
}

static const char *const ascii[] = {"a"};
static const char *const e_acute[] = {"\xc3\xa9"};               /* é: 2 bytes */
static const char *const emoji[] = {"\xf0\x9f\x98\x80"};         /* 😀: 4 bytes */
static const char *const mixed[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}; /* 1-4 bytes */

Test(reply, every_limit_holds_exactly_at_the_edge_in_ascii)
{
	size_t i;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
		check_limit(fields[i].f, fields[i].limit, ascii, 1);
}

Test(reply, every_limit_counts_code_points_not_bytes)
{
	size_t i;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		check_limit(fields[i].f, fields[i].limit, e_acute, 1);
		check_limit(fields[i].f, fields[i].limit, emoji, 1);
		check_limit(fields[i].f, fields[i].limit, mixed, 4);
	}
}

Test(reply, long_text_body_is_cut_to_4096)
{
	char *m, *a, *s = repeat(ascii, 1, 5000);

	encode_field(F_TEXT, s, &m, &a);
	cr_assert_eq(cp_count(m), 4096);
	cr_assert_eq(strlen(m), 4095 + 3);
	cr_assert_str_eq(m + 4095, ELLIPSIS);
	free(m);
	free(a);
	free(s);
}

Test(reply, long_interactive_body_is_cut_to_1024_for_buttons_and_lists)
{
	char *m, *a, *s = repeat(e_acute, 1, 1500);
	struct wa_reply r = buttons_reply();
	struct reply_target t = target(WA_PROVIDER_META);
	json_object *o;

	r.body = s;
	o = encode(&t, 0, &r);
	cr_assert_eq(cp_count(str_at(o, "request.body.interactive.body.text")), 1024);
	json_object_put(o);

	encode_field(F_BODY, s, &m, &a); /* a list */
	cr_assert_eq(cp_count(m), 1024);
	cr_assert_eq(cp_count(a), 1024);
	free(m);
	free(a);
	free(s);
}

Test(reply, invalid_utf8_counts_one_code_point_per_replacement)
{
	char *m, *a, s[64];

	/* 21 ill-formed bytes: 21 U+FFFD, one over the 20 of a button title. */
	memset(s, 0xff, 21);
	s[21] = '\0';
	encode_field(F_BUTTON, s, &m, &a);
	cr_assert_eq(cp_count(m), 20);
	cr_assert_eq(strncmp(m + 19 * 3, ELLIPSIS, 4), 0);
	free(m);
	free(a);

	/* 20 fit exactly. */
	s[20] = '\0';
	encode_field(F_BUTTON, s, &m, &a);
	cr_assert_eq(cp_count(m), 20);
	cr_assert_eq(strstr(m, ELLIPSIS), NULL);
	free(m);
	free(a);
}

Test(reply, fourth_button_is_dropped)
{
	struct wa_reply r = buttons_reply();
	struct reply_target t = target(WA_PROVIDER_META);
	json_object *o;

	r.nbuttons = 4;
	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.buttons")), 3);
	json_object_put(o);
	t = target(WA_PROVIDER_ACS);
	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactiveMessage.action.content.buttons")), 3);
	json_object_put(o);
}

/* A list of n rows ("r0".."r9", titles "Row 0"..) in the given sections. */
static struct wa_reply many_rows(unsigned n, const unsigned *secs, unsigned nsecs)
{
	static const char *ids[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"};
	static const char *titles[] = {"Row 0", "Row 1", "Row 2", "Row 3", "Row 4",
				       "Row 5", "Row 6", "Row 7", "Row 8", "Row 9"};
	static const char *names[] = {"S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"};
	struct wa_reply r = {.kind = REPLY_LIST, .body = "Elige", .list_button = "Ver"};
	unsigned i;

	for (i = 0; i < REPLY_MAX_ROWS; i++)
		r.rows[i] = (struct reply_row){ids[i], titles[i], NULL};
	r.nrows = n;
	for (i = 0; i < nsecs; i++)
		r.sections[i] = (struct reply_section){names[i], secs[i]};
	r.nsections = nsecs;
	return r;
}

Test(reply, eleventh_row_is_dropped)
{
	struct reply_target t = target(WA_PROVIDER_META);
	unsigned one[] = {11}, two[] = {6, 5}, three[] = {5, 5, 1};
	struct wa_reply r = many_rows(11, one, 1);
	json_object *o;

	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.sections.0.rows")), 10);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.sections.0.rows.9.id"), "r9");
	json_object_put(o);

	r = many_rows(11, two, 2);
	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.sections.0.rows")), 6);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.sections.1.rows")), 4);
	json_object_put(o);

	/* A section left without rows goes too. */
	r = many_rows(11, three, 3);
	t = target(WA_PROVIDER_ACS);
	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactiveMessage.action.content.groups")), 2);
	json_object_put(o);
}

Test(reply, list_without_sections_is_one_section_titled_by_the_button)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = many_rows(3, NULL, 0);
	json_object *o = encode(&t, 0, &r);

	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.sections")), 1);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.sections.0.title"), "Ver");
	cr_assert_eq(json_object_array_length(at(o, "request.body.interactive.action.sections.0.rows")), 3);
	json_object_put(o);

	/* One section without a title: the same. */
	r.sections[0] = (struct reply_section){NULL, 3};
	r.nsections = 1;
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.sections.0.title"), "Ver");
	json_object_put(o);
}

Test(reply, missing_row_description_is_the_title_on_acs_and_absent_on_meta)
{
	struct wa_reply r = list_reply();
	struct reply_target t = target(WA_PROVIDER_ACS);
	json_object *o;

	r.rows[1].description = NULL;
	r.rows[2].description = "";
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactiveMessage.action.content.groups.0.items.1.description"),
			 "Ministerio de Salud");
	cr_assert_str_eq(str_at(o, "request.body.interactiveMessage.action.content.groups.1.items.0.description"),
			 "Ministerio de Cultura");
	cr_assert_str_eq(str_at(o, "request.body.interactiveMessage.action.content.groups.0.items.0.description"),
			 "Escuelas y universidades públicas");
	json_object_put(o);

	t = target(WA_PROVIDER_META);
	o = encode(&t, 0, &r);
	cr_assert_null(at(o, "request.body.interactive.action.sections.0.rows.1.description"));
	cr_assert_null(at(o, "request.body.interactive.action.sections.1.rows.0.description"));
	cr_assert_not_null(at(o, "request.body.interactive.action.sections.0.rows.0.description"));
	json_object_put(o);
}

Test(reply, ids_at_their_byte_limit_pass_and_over_it_are_refused)
{
	struct reply_target t = target(WA_PROVIDER_META);
	char *id256 = repeat(ascii, 1, 256), *id257 = repeat(ascii, 1, 257);
	char *id200 = repeat(ascii, 1, 200), *id201 = repeat(ascii, 1, 201);
	char *e128 = repeat(e_acute, 1, 128), *e129 = repeat(e_acute, 1, 129); /* 256, 258 bytes */
	struct wa_reply r = buttons_reply();
	json_object *o;

	r.buttons[0].id = id256;
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.buttons.0.reply.id"), id256);
	json_object_put(o);
	r.buttons[0].id = e128;
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.buttons.0.reply.id"), e128);
	json_object_put(o);
	r.buttons[0].id = id257;
	refused(&t, &r, "button id of 257 bytes");
	r.buttons[0].id = e129;
	refused(&t, &r, "button id of 258 bytes");

	r = list_reply();
	r.rows[0].id = id200;
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.sections.0.rows.0.id"), id200);
	json_object_put(o);
	r.rows[0].id = id201;
	refused(&t, &r, "row id of 201 bytes");

	free(id256);
	free(id257);
	free(id200);
	free(id201);
	free(e128);
	free(e129);
}

/* --- recipients and targets --------------------------------------------- */

Test(reply, bsuid_recipient_is_sent_verbatim)
{
	static const char bsuid[] = "US.13491208655302741918";
	struct wa_reply r = text_reply();
	struct reply_target t = target(WA_PROVIDER_ACS);
	json_object *o;

	t.to = bsuid;
	o = encode(&t, 0, &r);
	cr_assert_eq(json_object_array_length(at(o, "request.body.to")), 1);
	cr_assert_str_eq(str_at(o, "request.body.to.0"), bsuid);
	cr_assert_str_eq(str_at(o, "phone"), bsuid);
	json_object_put(o);

	t = target(WA_PROVIDER_META);
	t.to = bsuid;
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.to"), bsuid);
	json_object_put(o);
}

Test(reply, invalid_targets_are_refused)
{
	struct wa_reply r = text_reply();
	struct reply_target t;
	char long_key[EVENT_KEY_MAX + 1];

	memset(long_key, 'A', EVENT_KEY_MAX);
	long_key[EVENT_KEY_MAX] = '\0';

	t = target(WA_PROVIDER_NONE);
	refused(&t, &r, "provider none");
	t = target((enum wa_provider)7);
	refused(&t, &r, "unknown provider");
#define BAD_TO(v)                                   \
	do {                                        \
		t = target(WA_PROVIDER_ACS);        \
		t.to = (v);                         \
		refused(&t, &r, "to " #v);          \
	} while (0)
	BAD_TO(NULL);
	BAD_TO("");
	BAD_TO("+");
	BAD_TO("+57300abc4567");
	BAD_TO("+1234567890123456"); /* 16 digits */
	BAD_TO("+57 3001234567");
	BAD_TO("US.1 2");
	BAD_TO("US.\"x");
	BAD_TO("US.\xc3\xa9");
	BAD_TO(long_key);
#undef BAD_TO
	t = target(WA_PROVIDER_ACS);
	t.business_id = (struct wa_str){NULL, 0};
	refused(&t, &r, "no channel id");
	t = target(WA_PROVIDER_META);
	t.business_id = (struct wa_str){"123/../x", 8};
	refused(&t, &r, "phone_number_id outside a path segment");
	t = target(WA_PROVIDER_META);
	t.business_id = (struct wa_str){"123?a=b", 7};
	refused(&t, &r, "phone_number_id with a query");
	t = target(WA_PROVIDER_ACS);
	t.in_reply_to = (struct wa_str){"", 0};
	refused(&t, &r, "no event id");
	t = target(WA_PROVIDER_ACS);
	t.acs_api_version = "2025-01-15-preview&x=1";
	refused(&t, &r, "api-version with &");
	cr_assert_eq(reply_encode(NULL, &t, 0, &r, NULL, 0), WB_ERR_INVALID);
}

/* The byte-at-a-time rules the target checks must keep (they run 16 bytes
 * at a time): every byte value at every position of every length. */
static bool ref_token_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
	       c == '.';
}

static bool accepted(const struct reply_target *t, const struct wa_reply *r)
{
	struct jbuf b;
	wb_err_t rc;

	jbuf_init(&b);
	rc = reply_encode(&b, t, 0, r, NULL, 0);
	jbuf_fini(&b);
	cr_assert(rc == WB_OK || rc == WB_ERR_INVALID);
	return rc == WB_OK;
}

Test(reply, target_checks_take_every_byte_at_every_position_as_a_byte_loop)
{
	struct wa_reply r = text_reply();
	struct reply_target t;
	char s[40];
	size_t len, at;
	unsigned c;

	for (len = 1; len <= 34; len++) {
		for (at = 0; at < len; at++) {
			for (c = 1; c < 256; c++) {
				bool tok = ref_token_byte((unsigned char)c);

				/* phone: "+" and digits (up to 15) */
				if (len >= 2 && at >= 1 && len <= 17) {
					memset(s, '7', len);
					s[0] = '+';
					s[at] = (char)c;
					s[len] = '\0';
					t = target(WA_PROVIDER_META);
					t.to = s;
					cr_assert_eq(accepted(&t, &r), len <= 16 && c >= '0' && c <= '9',
						     "to length %zu, byte 0x%02x at %zu", len, c, at);
				}
				/* BSUID recipient, Meta phone_number_id, ACS api-version */
				memset(s, 'b', len);
				s[0] = 'U';
				s[at] = (char)c;
				s[len] = '\0';
				if (s[0] != '+') {
					t = target(WA_PROVIDER_ACS);
					t.to = s;
					cr_assert_eq(accepted(&t, &r), tok, "bsuid length %zu, byte 0x%02x at %zu", len, c, at);
				}
				t = target(WA_PROVIDER_META);
				t.business_id = (struct wa_str){s, len};
				cr_assert_eq(accepted(&t, &r), tok, "phone_number_id length %zu, byte 0x%02x at %zu", len, c,
					     at);
				t = target(WA_PROVIDER_ACS);
				t.acs_api_version = s;
				cr_assert_eq(accepted(&t, &r), tok, "api-version length %zu, byte 0x%02x at %zu", len, c, at);
			}
		}
	}
}

Test(reply, fifteen_digit_phone_and_unusual_channel_ids_pass)
{
	struct wa_reply r = text_reply();
	struct reply_target t = target(WA_PROVIDER_ACS);
	static const char odd[] = "chan\"nel\\id";
	json_object *o;

	t.to = "+123456789012345";
	t.business_id = (struct wa_str){odd, sizeof odd - 1};
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.channelRegistrationId"), odd);
	cr_assert_str_eq(str_at(o, "request.body.to.0"), "+123456789012345");
	json_object_put(o);
}

/* --- refused replies ---------------------------------------------------- */

Test(reply, invalid_replies_are_refused)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r;

	r = text_reply(), r.body = NULL;
	refused(&t, &r, "NULL body");
	r = text_reply(), r.body = "";
	refused(&t, &r, "empty body");
	r = buttons_reply(), r.body = "";
	refused(&t, &r, "empty interactive body");
	r = text_reply(), r.kind = (enum reply_kind)9;
	refused(&t, &r, "unknown kind");

	r = buttons_reply(), r.nbuttons = 0;
	refused(&t, &r, "no buttons");
	r = buttons_reply(), r.buttons[1].title = "";
	refused(&t, &r, "empty button title");
	r = buttons_reply(), r.buttons[1].title = NULL;
	refused(&t, &r, "NULL button title");
	r = buttons_reply(), r.buttons[2].id = NULL;
	refused(&t, &r, "NULL button id");
	r = buttons_reply(), r.buttons[2].id = "";
	refused(&t, &r, "empty button id");
	r = buttons_reply(), r.buttons[2].id = " yes";
	refused(&t, &r, "button id with a leading space");
	r = buttons_reply(), r.buttons[2].id = "yes ";
	refused(&t, &r, "button id with a trailing space");
	r = buttons_reply(), r.buttons[2].id = "yes";
	refused(&t, &r, "duplicate button id");
	r = buttons_reply(), r.buttons[2].title = "Sí";
	refused(&t, &r, "duplicate button title");
	r = buttons_reply();
	r.buttons[1].title = "Confirmar la donación ya"; /* both cut to the same 20 */
	r.buttons[2].title = "Confirmar la donación ahora";
	refused(&t, &r, "button titles equal once cut");

	r = list_reply(), r.list_button = NULL;
	refused(&t, &r, "no list button label");
	r = list_reply(), r.nrows = 0, r.nsections = 0;
	refused(&t, &r, "no rows");
	r = list_reply(), r.rows[3].id = "min_salud";
	refused(&t, &r, "duplicate row id");
	r = list_reply(), r.rows[0].title = "";
	refused(&t, &r, "empty row title");
	r = list_reply(), r.rows[0].id = NULL;
	refused(&t, &r, "NULL row id");
	r = list_reply(), r.nsections = REPLY_MAX_SECTIONS + 1;
	refused(&t, &r, "11 sections");
	r = list_reply(), r.sections[1].nrows = 1; /* 2 + 1 of 4 rows */
	refused(&t, &r, "sections that do not hold every row");
	r = list_reply(), r.sections[1].title = NULL;
	refused(&t, &r, "untitled section among several");
}

Test(reply, duplicate_button_titles_differing_before_the_cut_pass)
{
	struct reply_target t = target(WA_PROVIDER_META);
	struct wa_reply r = buttons_reply();
	json_object *o;

	r.buttons[1].title = "Confirmar donación A"; /* 20: not cut */
	r.buttons[2].title = "Confirmar donación B";
	o = encode(&t, 0, &r);
	cr_assert_str_eq(str_at(o, "request.body.interactive.action.buttons.2.reply.title"), "Confirmar donación B");
	json_object_put(o);
}

/* --- buffer state on failure -------------------------------------------- */

Test(reply, out_of_memory_restores_the_buffer)
{
	struct reply_target t = target(WA_PROVIDER_ACS);
	struct wa_reply r = text_reply();
	struct jbuf b;
	char err[64] = "";

	jbuf_init(&b);
	jbuf_cstr(&b, "[kept");
	/* An event id as long as JBUF_MAX: jbuf refuses it before reading a
	 * byte, so the encoder runs out of memory half way. */
	t.in_reply_to = (struct wa_str){"x", JBUF_MAX};
	cr_assert_eq(reply_encode(&b, &t, 0, &r, err, sizeof err), WB_ERR_NOMEM);
	cr_assert_str_eq(err, "out of memory");
	cr_assert(!b.oom);
	cr_assert_eq(b.len, 5);
	cr_assert_str_eq(b.p, "[kept");

	/* The buffer is usable again. */
	t = target(WA_PROVIDER_ACS);
	cr_assert_eq(reply_encode(&b, &t, 0, &r, NULL, 0), WB_OK);
	cr_assert_eq(strncmp(b.p, "[kept{\"reply_id\":", 17), 0);

	/* A buffer already out of memory is refused as it is. */
	jbuf_reset(&b);
	b.oom = true;
	cr_assert_eq(reply_encode(&b, &t, 0, &r, NULL, 0), WB_ERR_NOMEM);
	cr_assert(b.oom);
	cr_assert_eq(b.len, 0);
	jbuf_fini(&b);
}

/* --- always JSON -------------------------------------------------------- */

Test(reply, invalid_utf8_and_control_characters_still_give_valid_json)
{
	static const char bad_id[] = "ev\xff\"\\\n";
	struct reply_target t;
	struct wa_reply r = list_reply();
	size_t k;

	r.header = "\xc0\x80 head \xed\xa0\x80";
	r.body = "line1\nline2\t\"quoted\" \\ \x01 \xe2\x80\xa8 \xf4\x90\x80\x80 \xe2\x82";
	r.footer = "\xf0\x9f\x98";
	r.list_button = "\xff\xfe\xfd";
	r.sections[0].title = "\x80\x80";
	r.rows[0].title = "T\xc3";
	r.rows[0].id = "id\xff\"";
	r.rows[1].description = "\x1f\x7f";
	for (k = 0; k < 2; k++) {
		json_object *o;

		t = target(k == 0 ? WA_PROVIDER_ACS : WA_PROVIDER_META);
		t.conversation_step = "step\xff\n";
		t.in_reply_to = (struct wa_str){bad_id, sizeof bad_id - 1};
		o = encode(&t, 3, &r); /* parses strictly, UTF-8 validated */
		cr_assert_str_eq(str_at(o, "reply_id"), "ev\xef\xbf\xbd\"\\\n:3");
		cr_assert_str_eq(str_at(o, "in_reply_to"), "ev\xef\xbf\xbd\"\\\n");
		json_object_put(o);
	}

	r = buttons_reply();
	r.buttons[0].title = "\xe2\x80\xa8\xe2\x80\xa9";
	t = target(WA_PROVIDER_META);
	json_object_put(encode(&t, 0, &r));
}
