/*
 * store_ops.c - see store_ops.h.
 */
#include "store_ops.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

wb_err_t store_cas_increment(ctx_store_t *cs, const char *key, struct ctx_value *v)
{
	for (;;) {
		json_object *obj, *n;
		char json[64];
		wb_err_t err = ctx_store_get(cs, key, v);

		if (err != WB_OK)
			return err;
		obj = json_tokener_parse(v->json);
		n = json_object_object_get(obj, "n");
		snprintf(json, sizeof(json), "{\"n\":%d}", n ? json_object_get_int(n) + 1 : 1);
		json_object_put(obj);
		err = ctx_store_put(cs, key, json, strlen(json), v->found ? v->version : 0, 0, NULL);
		if (err != WB_ERR_CONFLICT)
			return err;
	}
}
