/*
 * demo.c - see demo.h. The script is data (three users' messages,
 * interleaved); what each message does is decided from the context read back
 * from the store, so a lost or stale context shows up as a wrong step.
 */
#include "demo.h"

#include <string.h>

#include <json-c/json.h>

#include "log.h"

struct demo_msg {
	const char *phone;
	const char *text;
};

/* Three citizens donating at once, interleaved as they would arrive. */
static const struct demo_msg demo_script[] = {
	{"+573001234567", "Hola, quiero hacer una donación"},
	{"+573109876543", "quiero donar"},
	{"+573001234567", "Juan Pérez"},
	{"+5215512345678", "DONACION"},
	{"+573109876543", "María Fernanda López"},
	{"+573001234567", "Ministerio de Educación"},
	{"+5215512345678", "Ana Gómez"},
	{"+573109876543", "Ministerio de Salud"},
	{"+573001234567", "sí"},
	{"+5215512345678", "Ministerio de Cultura"},
	{"+573109876543", "si, confirmo"},
	{"+5215512345678", "SI"},
};

/* The fields to merge for text given the stored step (the donations flow of
 * shared/reference/default-flow.md, reduced to its happy path). */
static json_object *demo_next(const char *step, const char *text)
{
	json_object *f = json_object_new_object();

	if (!f)
		return NULL;
	if (!step || strcmp(step, "completed") == 0) {
		json_object_object_add(f, "last_intent", json_object_new_string("donations"));
		json_object_object_add(f, "conversation_step", json_object_new_string("waiting_for_name"));
	} else if (strcmp(step, "waiting_for_name") == 0) {
		json_object_object_add(f, "customer_name", json_object_new_string(text));
		json_object_object_add(f, "conversation_step", json_object_new_string("waiting_for_ministry"));
	} else if (strcmp(step, "waiting_for_ministry") == 0) {
		json_object_object_add(f, "ministry_name", json_object_new_string(text));
		json_object_object_add(f, "conversation_step", json_object_new_string("waiting_for_confirmation"));
	} else {
		json_object_object_add(f, "conversation_step", json_object_new_string("completed"));
	}
	return f;
}

static const char *str_field(json_object *obj, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(obj, k, &v) ? json_object_get_string(v) : NULL;
}

wb_err_t demo_run(ctx_store_t *cs, FILE *out)
{
	struct ctx_value cur, merged;
	wb_err_t err = WB_OK;
	size_t i;

	ctx_value_init(&cur);
	ctx_value_init(&merged);
	for (i = 0; i < sizeof(demo_script) / sizeof(demo_script[0]); i++) {
		const struct demo_msg *m = &demo_script[i];
		json_object *ctx, *fields, *line;
		const char *text;

		err = ctx_store_get(cs, m->phone, &cur);
		if (err != WB_OK)
			break;
		ctx = json_tokener_parse(cur.json);
		fields = demo_next(ctx ? str_field(ctx, "conversation_step") : NULL, m->text);
		json_object_put(ctx);
		if (!fields) {
			err = WB_ERR_NOMEM;
			break;
		}
		text = json_object_to_json_string_ext(fields, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		err = ctx_store_update(cs, m->phone, text, strlen(text), 0, &merged);
		json_object_put(fields);
		if (err != WB_OK)
			break;

		ctx = json_tokener_parse(merged.json);
		line = json_object_new_object();
		json_object_object_add(line, "phone", json_object_new_string(m->phone));
		json_object_object_add(line, "user_says", json_object_new_string(m->text));
		json_object_object_add(line, "conversation_step",
				       json_object_new_string(str_field(ctx, "conversation_step")));
		json_object_object_add(line, "version", json_object_new_int64((int64_t)merged.version));
		json_object_object_add(line, "context", ctx);
		fprintf(out, "%s\n",
			json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(line);
	}
	if (err != WB_OK)
		log_at(LOG_ERROR, "demo stopped", LOG_UINT("message", i), LOG_ERR("error", err),
		       LOG_STR("reason", wb_err_str(err)));
	fflush(out);
	ctx_value_fini(&cur);
	ctx_value_fini(&merged);
	return err;
}
