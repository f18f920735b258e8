/*
 * fuzz_event.c - libFuzzer target for event_decode(): any bytes in, no
 * crash, no out-of-bounds read, and the decoder's own invariants hold.
 * Every byte of every returned string is read (so ASan sees a string that
 * points past the payload or the arena), and the input is copied to a
 * buffer of exactly its size first. Seeds: tests/fuzz/corpus/event.
 * One decoder for the whole run, as a worker thread keeps one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static event_decoder_t *dec;

static volatile unsigned sink;

static void touch(const struct wa_str *s)
{
	unsigned acc = 0;
	size_t i;

	if (!s->p) {
		if (s->len != 0)
			abort();
		return;
	}
	if (s->len > EVENT_MAX_TEXT + EVENT_KEY_MAX + 1)
		abort();
	for (i = 0; i < s->len; i++)
		acc += (unsigned char)s->p[i];
	sink += acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct wa_event *evs;
	size_t n, i;
	char errstr[160];
	char *copy;
	event_err_t e;

	if (!dec && !(dec = event_decoder_new()))
		abort();
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	e = event_decode(dec, copy, size, &evs, &n, errstr, sizeof errstr);
	if (e != EVENT_OK) {
		if (n != 0 || strlen(errstr) >= sizeof errstr || e == EVENT_E_NOMEM)
			abort();
	}
	if (n > EVENT_MAX_EVENTS)
		abort();
	for (i = 0; i < n; i++) {
		const struct wa_event *ev = &evs[i];

		/* the arena is sized so that it never runs out */
		if (ev->err == EVENT_E_NOMEM || ev->index != i || (unsigned)ev->err >= EVENT_ERR__COUNT)
			abort();
		if (memchr(ev->phone, '\0', sizeof ev->phone) == NULL || memchr(ev->key, '\0', sizeof ev->key) == NULL)
			abort();
		if (ev->phone[0] && strcmp(ev->phone, ev->key) != 0)
			abort();
		if (ev->err == EVENT_OK && !ev->key[0] && ev->kind != WA_KIND_UNSUPPORTED &&
		    ev->kind != WA_KIND_VALIDATION)
			abort();
		if (ev->err_field)
			sink += (unsigned)strlen(ev->err_field);
		sink += (unsigned)strlen(event_err_name(ev->err)) + (unsigned)strlen(wa_kind_name(ev->kind)) +
			(unsigned)strlen(wa_provider_name(ev->provider)) + (unsigned)strlen(wa_status_name(ev->status));
		touch(&ev->id);
		touch(&ev->type);
		touch(&ev->user_id);
		touch(&ev->business_id);
		touch(&ev->profile_name);
		touch(&ev->message_id);
		touch(&ev->ref_message_id);
		touch(&ev->text);
		touch(&ev->reply_id);
		touch(&ev->reply_title);
		touch(&ev->reply_description);
		touch(&ev->media_type);
		touch(&ev->media_id);
		touch(&ev->media_mime);
		touch(&ev->media_caption);
		touch(&ev->media_filename);
		touch(&ev->location_name);
		touch(&ev->location_address);
		touch(&ev->reaction_emoji);
		touch(&ev->reaction_target);
		touch(&ev->error_code);
		touch(&ev->error_message);
		touch(&ev->error_details);
		touch(&ev->validation_code);
		touch(&ev->validation_url);
	}
	free(copy);
	return 0;
}
