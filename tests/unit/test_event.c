/*
 * test_event.c - event_decode() against the contract in event.h and
 * shared/reference/inbound-events.md: one test per inbound fixture (copied
 * to tests/data/fixtures, path in WB_FIXTURES) checking every neutral field
 * with values worked out by hand, then crafted payloads for every error
 * code, the quirks (Q2 casing, Q3 status casing, Q5 specVersion, Q6
 * animated), phones and BSUIDs, limits, truncation and decoder reuse.
 * Each test owns its decoder and frees it.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "phone.h"

#ifndef WB_FIXTURES
#define WB_FIXTURES "tests/data/fixtures"
#endif

#define ACS_CHANNEL "2f61ca04-0698-4593-be4f-58dfe3d8e392"
#define META_PNID "109283746501928"

/* ---- helpers ---- */

static char *read_fixture(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	long sz;
	char *buf;

	snprintf(path, sizeof path, "%s/%s", WB_FIXTURES, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	cr_assert_gt(sz, 0);
	rewind(f);
	buf = malloc((size_t)sz + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
	buf[sz] = '\0';
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

/* printf into a new heap string (caller frees). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	s = malloc((size_t)n + 1);
	cr_assert_not_null(s);
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

static bool wstr_is(struct wa_str s, const char *lit)
{
	return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#define STR_EQ(s, lit)                                                                                   \
	cr_assert(wstr_is((s), (lit)), "%s: want \"%s\", got \"%.*s\"%s", #s, (lit), (int)(s).len,           \
		  (s).p ? (s).p : "", (s).p ? "" : " (absent)")
#define ABSENT(s) cr_assert_null((s).p, "%s should be absent, got \"%.*s\"", #s, (int)(s).len, (s).p)

/* Decodes s (NUL-terminated) and expects EVENT_OK with n events. */
static const struct wa_event *dec_ok(event_decoder_t *dec, const char *s, size_t want_n)
{
	const struct wa_event *evs;
	size_t n = 99;
	char errstr[256] = "";
	event_err_t e = event_decode(dec, s, strlen(s), &evs, &n, errstr, sizeof errstr);

	cr_assert_eq(e, EVENT_OK, "decode failed: %s (%s)", event_err_name(e), errstr);
	cr_assert_eq(n, want_n, "want %zu events, got %zu", want_n, n);
	return evs;
}

/* Decodes s and expects the record error want. */
static void dec_fail(event_decoder_t *dec, const char *s, size_t len, event_err_t want)
{
	const struct wa_event *evs;
	size_t n = 99;
	char errstr[256] = "";
	event_err_t e = event_decode(dec, s, len, &evs, &n, errstr, sizeof errstr);

	cr_assert_eq(e, want, "want %s, got %s (%s)", event_err_name(want), event_err_name(e), errstr);
	cr_assert_eq(n, 0);
	cr_assert_neq(errstr[0], '\0', "errstr must say why");
}

/* A one-event ACS AdvancedMessageReceived (Event Grid schema) around data. */
static char *acs_recv(const char *data)
{
	return fmt("[{\"id\":\"ev-1\",\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\","
		   "\"eventTime\":\"2026-11-20T14:03:12.4817733Z\",\"data\":%s}]",
		   data);
}

/* ACS received data with from/BSUID and extra members. */
static char *acs_text_from(const char *from_json, const char *bsuid_json)
{
	char *data = fmt("{\"messageType\":\"text\",\"content\":\"hola\",\"from\":%s,\"fromBSUID\":%s,"
			 "\"to\":\"" ACS_CHANNEL "\",\"receivedTimestamp\":\"2026-11-20T14:03:11+00:00\"}",
			 from_json, bsuid_json);
	char *s = acs_recv(data);

	free(data);
	return s;
}

/* A Meta body with one change whose value members are value_members. */
static char *meta_value(const char *value_members)
{
	return fmt("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102938475610293\",\"changes\":"
		   "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
		   "{\"display_phone_number\":\"573209990001\",\"phone_number_id\":\"" META_PNID "\"},%s}}]}]}",
		   value_members);
}

static event_decoder_t *new_dec(void)
{
	event_decoder_t *dec = event_decoder_new();

	cr_assert_not_null(dec);
	return dec;
}

/* Decodes a fixture file; the caller frees *buf after the last use. */
static const struct wa_event *dec_fixture(event_decoder_t *dec, const char *name, size_t want_n, char **buf)
{
	size_t len, n = 0;
	const struct wa_event *evs;
	char errstr[256] = "";
	event_err_t e;

	*buf = read_fixture(name, &len);
	e = event_decode(dec, *buf, len, &evs, &n, errstr, sizeof errstr);
	cr_assert_eq(e, EVENT_OK, "%s: %s (%s)", name, event_err_name(e), errstr);
	cr_assert_eq(n, want_n, "%s: want %zu events, got %zu", name, want_n, n);
	return evs;
}

/* The checks every fixture event shares: decoded, no error, index. */
static void ok_event(const struct wa_event *ev, uint32_t index)
{
	cr_assert_eq(ev->err, EVENT_OK, "event %u: %s at %s", index, event_err_name(ev->err),
		     ev->err_field ? ev->err_field : "-");
	cr_assert_null(ev->err_field);
	cr_assert_eq(ev->index, index);
}

/* ---- fixtures: ACS ---- */

Test(event_fixture, acs_eg_text)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-text.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_ACS);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	STR_EQ(ev->id, "cbae19bb-f0d4-4fc0-b103-fa210a1bfa86");
	STR_EQ(ev->type, "text");
	cr_assert_str_eq(ev->phone, "+573001234567");
	cr_assert_str_eq(ev->key, "+573001234567");
	STR_EQ(ev->user_id, "CO.1520394857610293847");
	STR_EQ(ev->business_id, ACS_CHANNEL);
	ABSENT(ev->profile_name);
	STR_EQ(ev->message_id, "4a3769ff-4470-4a03-a638-fab1756dc226");
	ABSENT(ev->ref_message_id);
	cr_assert_eq(ev->timestamp, 1795183391); /* 2026-11-20T14:03:11+00:00 */
	STR_EQ(ev->text, "Hola, quiero hacer una donaci\xc3\xb3n");
	ABSENT(ev->reply_id);
	ABSENT(ev->media_id);
	ABSENT(ev->error_code);
	cr_assert_eq(ev->status, WA_STATUS_UNKNOWN);
	cr_assert_not(ev->has_location);
	/* No escapes in the payload: strings point straight into it. */
	cr_assert(ev->text.p >= buf && ev->text.p < buf + strlen(buf));
	cr_assert(ev->id.p >= buf && ev->id.p < buf + strlen(buf));
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_batch_three_events_in_order)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *evs = dec_fixture(dec, "acs-eg-batch.json", 3, &buf);

	ok_event(&evs[0], 0);
	cr_assert_eq(evs[0].kind, WA_KIND_TEXT);
	STR_EQ(evs[0].id, "7674f2df-c8d1-4db8-ae69-eee87c1f8fa1");
	cr_assert_str_eq(evs[0].key, "+34612345678");
	STR_EQ(evs[0].user_id, "ES.1029384756473829105");
	STR_EQ(evs[0].text, "Hola, quiero hacer una donaci\xc3\xb3n");
	cr_assert_eq(evs[0].timestamp, 1795183420); /* 14:03:40Z */

	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_TEXT);
	STR_EQ(evs[1].id, "82e4f420-6983-436b-b0a2-95217a2c9443");
	cr_assert_str_eq(evs[1].phone, "+573001234567");
	STR_EQ(evs[1].text, "Juan P\xc3\xa9rez");
	STR_EQ(evs[1].message_id, "17f03eab-0892-4e94-af65-526c6fb1ac36");
	cr_assert_eq(evs[1].timestamp, 1795183442); /* 14:04:02Z */

	ok_event(&evs[2], 2);
	cr_assert_eq(evs[2].kind, WA_KIND_STATUS);
	cr_assert_eq(evs[2].status, WA_STATUS_DELIVERED);
	STR_EQ(evs[2].id, "9679c1ff-11d6-465b-a488-a60434902ff1");
	STR_EQ(evs[2].type, "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated");
	cr_assert_str_eq(evs[2].phone, "+573001234567");
	STR_EQ(evs[2].user_id, "CO.1520394857610293847");
	STR_EQ(evs[2].business_id, ACS_CHANNEL);
	STR_EQ(evs[2].message_id, "11bb2a24-8d13-4ed8-900c-73370b009001");
	STR_EQ(evs[2].ref_message_id, "11bb2a24-8d13-4ed8-900c-73370b009001");
	cr_assert_eq(evs[2].timestamp, 1795183445); /* 14:04:05Z */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_cloudevents_text)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-ce-text.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_ACS);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	STR_EQ(ev->id, "e1b0e5bc-dd67-4167-af3e-60025282cbef");
	STR_EQ(ev->text, "s\xc3\xad");
	cr_assert_str_eq(ev->phone, "+5215512345678"); /* legacy 521 kept as sent */
	cr_assert_str_eq(ev->key, "+5215512345678");
	STR_EQ(ev->user_id, "MX.1738291046572839104");
	STR_EQ(ev->business_id, ACS_CHANNEL);
	STR_EQ(ev->message_id, "a80d9e46-003e-480a-b6d5-9c52f823ad08");
	cr_assert_eq(ev->timestamp, 1795183530); /* 14:05:30+00:00 */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_button_reply)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-button-reply.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_BUTTON_REPLY);
	STR_EQ(ev->id, "d5858ada-d4fc-4266-9c4a-082bfb04745c");
	STR_EQ(ev->type, "interactive");
	STR_EQ(ev->reply_id, "yes");
	STR_EQ(ev->reply_title, "S\xc3\xad");
	ABSENT(ev->reply_description);
	STR_EQ(ev->ref_message_id, "cc7cf25e-7744-4774-b1d6-f71522955235");
	STR_EQ(ev->message_id, "6d85f8c7-2943-4f06-9951-313ad8378da1");
	cr_assert_str_eq(ev->key, "+573001234567");
	cr_assert_eq(ev->timestamp, 1795183620); /* 14:07:00 */
	ABSENT(ev->text);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_list_reply)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-list-reply.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_LIST_REPLY);
	STR_EQ(ev->id, "532d4416-5982-4afb-8a19-4ab7e1133794");
	STR_EQ(ev->reply_id, "min_educacion");
	STR_EQ(ev->reply_title, "Ministerio de Educaci\xc3\xb3n");
	STR_EQ(ev->reply_description, "Escuelas y universidades p\xc3\xba"
				      "blicas");
	STR_EQ(ev->ref_message_id, "20c8297f-bacd-4c4c-8dd3-a8cce492277f");
	cr_assert_str_eq(ev->phone, "+573001234567");
	cr_assert_eq(ev->timestamp, 1795183572); /* 14:06:12 */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_media_image)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-media-image.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_MEDIA);
	STR_EQ(ev->id, "68012048-5b58-4d98-a0a1-5f3f8129129e");
	STR_EQ(ev->media_type, "image");
	STR_EQ(ev->media_id, "fbfdf269-d0ce-4b90-a525-da0e90a2b88f");
	STR_EQ(ev->media_mime, "image/jpeg");
	STR_EQ(ev->media_caption, "Comprobante de mi donaci\xc3\xb3n");
	STR_EQ(ev->text, "Comprobante de mi donaci\xc3\xb3n");
	ABSENT(ev->media_filename);
	cr_assert_not(ev->media_animated);
	cr_assert_str_eq(ev->key, "+573001234567");
	cr_assert_eq(ev->timestamp, 1795183700); /* 14:08:20 */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_reaction_surrogate_pair_becomes_utf8)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-reaction.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_REACTION);
	STR_EQ(ev->id, "e23a9d4b-33ed-4745-96bb-b770aa408d43");
	STR_EQ(ev->reaction_emoji, "\xf0\x9f\x91\x8d");
	/* decoded into the arena, not the payload */
	cr_assert(ev->reaction_emoji.p < buf || ev->reaction_emoji.p >= buf + strlen(buf));
	STR_EQ(ev->reaction_target, "11bb2a24-8d13-4ed8-900c-73370b009001");
	cr_assert_str_eq(ev->key, "+573001234567");
	cr_assert_eq(ev->timestamp, 1795183740); /* 14:09:00 */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_status_delivered)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-status-delivered.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_ACS);
	cr_assert_eq(ev->kind, WA_KIND_STATUS);
	cr_assert_eq(ev->status, WA_STATUS_DELIVERED);
	STR_EQ(ev->id, "88a4c4af-9735-46d9-9e81-5e2d6646db6a");
	STR_EQ(ev->message_id, "cc7cf25e-7744-4774-b1d6-f71522955235");
	STR_EQ(ev->ref_message_id, "cc7cf25e-7744-4774-b1d6-f71522955235");
	STR_EQ(ev->business_id, ACS_CHANNEL);
	cr_assert_str_eq(ev->phone, "+573001234567");
	cr_assert_str_eq(ev->key, "+573001234567");
	STR_EQ(ev->user_id, "CO.1520394857610293847");
	cr_assert_eq(ev->timestamp, 1795183600); /* 14:06:40 */
	ABSENT(ev->error_code);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, acs_eg_status_failed_with_error)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "acs-eg-status-failed.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_STATUS);
	cr_assert_eq(ev->status, WA_STATUS_FAILED);
	STR_EQ(ev->id, "3c9e7b21-5d04-4f6a-8e13-9a2b0c7d4f58");
	STR_EQ(ev->message_id, "f0a4d2b6-1c83-4e7d-b95a-2e6c8d1f3a07");
	cr_assert_str_eq(ev->key, "+34612345678");
	STR_EQ(ev->user_id, "ES.1029384756473829105");
	STR_EQ(ev->error_code, "131047");
	STR_EQ(ev->error_message, "Re-engagement message");
	ABSENT(ev->error_details);
	cr_assert_eq(ev->timestamp, 1795278600); /* 2026-11-21T16:30:00 */
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, eg_subscription_validation)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "eg-subscription-validation.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_NONE);
	cr_assert_eq(ev->kind, WA_KIND_VALIDATION);
	STR_EQ(ev->id, "1820673a-a998-410e-86cd-a403d1814aec");
	STR_EQ(ev->validation_code, "b4e1c7a2-6f38-4d95-8c20-3e7a9d1b5f64");
	STR_EQ(ev->validation_url,
	       "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/wa-inbound/validate?id=B4E1C7A2-6F38-"
	       "4D95-8C20-3E7A9D1B5F64&t=2026-11-20T13:59:02.1180352Z&apiVersion=2025-02-15&token="
	       "ZmFrZS10b2tlbi1mb3ItdGVzdHM%3d");
	cr_assert_str_eq(ev->phone, "");
	cr_assert_str_eq(ev->key, "");
	cr_assert_eq(ev->timestamp, 1795183142); /* eventTime 13:59:02.1180352Z */
	free(buf);
	event_decoder_destroy(dec);
}

/* ---- fixtures: Meta ---- */

Test(event_fixture, meta_text_with_bsuid)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-text.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_META);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	STR_EQ(ev->id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgUQTVGRTZEMjNGQTBERThDRjhGMTQA");
	STR_EQ(ev->message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgUQTVGRTZEMjNGQTBERThDRjhGMTQA");
	STR_EQ(ev->type, "text");
	cr_assert_str_eq(ev->phone, "+573001234567");
	cr_assert_str_eq(ev->key, "+573001234567");
	STR_EQ(ev->user_id, "CO.1520394857610293847");
	STR_EQ(ev->business_id, META_PNID);
	STR_EQ(ev->profile_name, "Juan P\xc3\xa9rez");
	cr_assert_eq(ev->timestamp, 1795183391);
	STR_EQ(ev->text, "Hola, quiero hacer una donaci\xc3\xb3n");
	ABSENT(ev->ref_message_id);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_button_reply)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-button-reply.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_BUTTON_REPLY);
	STR_EQ(ev->id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgUOUNENzZGMzhFNjUxRTE1Q0Q0Q0UA");
	STR_EQ(ev->reply_id, "yes");
	STR_EQ(ev->reply_title, "S\xc3\xad");
	STR_EQ(ev->ref_message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgURjdFRkUyRDM4MUI4RTRBNjUwNkIA");
	cr_assert_str_eq(ev->key, "+573001234567");
	ABSENT(ev->user_id);
	STR_EQ(ev->profile_name, "Juan P\xc3\xa9rez");
	STR_EQ(ev->business_id, META_PNID);
	cr_assert_eq(ev->timestamp, 1795183620);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_list_reply)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-list-reply.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_LIST_REPLY);
	STR_EQ(ev->id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgURkRBMjUwNUE4ODA2MEQ5QzM2OTgA");
	STR_EQ(ev->reply_id, "min_salud");
	STR_EQ(ev->reply_title, "Ministerio de Salud");
	STR_EQ(ev->reply_description, "Hospitales y vacunaci\xc3\xb3n");
	STR_EQ(ev->ref_message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgUOTIwNkJCMEEyQzk4ODNEOTQ2RDcA");
	cr_assert_str_eq(ev->key, "+573001234567");
	cr_assert_eq(ev->timestamp, 1795183572);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_image_caption)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-image-caption.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_MEDIA);
	STR_EQ(ev->id, "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBRFNkNBQ0E3Qjg1QzBEMUVGOUM4NgA=");
	STR_EQ(ev->media_type, "image");
	STR_EQ(ev->media_id, "1497283746502913");
	STR_EQ(ev->media_mime, "image/jpeg");
	STR_EQ(ev->media_caption, "Comprobante de transferencia");
	STR_EQ(ev->text, "Comprobante de transferencia");
	cr_assert_str_eq(ev->key, "+34612345678");
	STR_EQ(ev->profile_name, "Mar\xc3\xad"
				 "a Garc\xc3\xad"
				 "a");
	cr_assert_eq(ev->timestamp, 1795183700);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_location)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-location.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_LOCATION);
	STR_EQ(ev->id, "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFEU1NDZEODQxREEwQjg5MTY2NUI3AA==");
	cr_assert(ev->has_location);
	cr_assert_float_eq(ev->latitude, 19.4326077, 1e-9);
	cr_assert_float_eq(ev->longitude, -99.133208, 1e-9);
	STR_EQ(ev->location_name, "Centro de acopio de donaciones");
	STR_EQ(ev->location_address, "Av. Ejemplo 123, Centro, Ciudad de M\xc3\xa9xico");
	cr_assert_str_eq(ev->phone, "+5215512345678");
	STR_EQ(ev->profile_name, "Ana L\xc3\xb3pez");
	cr_assert_eq(ev->timestamp, 1795183530);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_multi_messages_two_users_then_status)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *evs = dec_fixture(dec, "meta-multi-messages.json", 3, &buf);

	ok_event(&evs[0], 0);
	cr_assert_eq(evs[0].kind, WA_KIND_TEXT);
	STR_EQ(evs[0].id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgURjY4QjIyN0NCRUJBMTFFRTkwODEA");
	cr_assert_str_eq(evs[0].key, "+573001234567");
	STR_EQ(evs[0].profile_name, "Juan P\xc3\xa9rez");
	STR_EQ(evs[0].text, "Juan P\xc3\xa9rez");
	cr_assert_eq(evs[0].timestamp, 1795183442);

	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_TEXT);
	STR_EQ(evs[1].id, "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQ4Njg1QkU1NjI1MURERTQ5OTVBMwA=");
	cr_assert_str_eq(evs[1].key, "+34612345678");
	STR_EQ(evs[1].profile_name, "Mar\xc3\xad"
				    "a Garc\xc3\xad"
				    "a"); /* the second contact, matched by wa_id */
	STR_EQ(evs[1].text, "s\xc3\xad");
	cr_assert_eq(evs[1].timestamp, 1795183445);

	ok_event(&evs[2], 2);
	cr_assert_eq(evs[2].kind, WA_KIND_STATUS);
	cr_assert_eq(evs[2].status, WA_STATUS_DELIVERED);
	STR_EQ(evs[2].id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgURjdFRkUyRDM4MUI4RTRBNjUwNkIA:delivered");
	STR_EQ(evs[2].message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgURjdFRkUyRDM4MUI4RTRBNjUwNkIA");
	STR_EQ(evs[2].ref_message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgURjdFRkUyRDM4MUI4RTRBNjUwNkIA");
	STR_EQ(evs[2].type, "delivered");
	cr_assert_str_eq(evs[2].key, "+573001234567");
	STR_EQ(evs[2].business_id, META_PNID);
	ABSENT(evs[2].profile_name);
	cr_assert_eq(evs[2].timestamp, 1795183445);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_status_read)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-status-read.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->provider, WA_PROVIDER_META);
	cr_assert_eq(ev->kind, WA_KIND_STATUS);
	cr_assert_eq(ev->status, WA_STATUS_READ);
	STR_EQ(ev->id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgUOTIwNkJCMEEyQzk4ODNEOTQ2RDcA:read");
	STR_EQ(ev->ref_message_id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgUOTIwNkJCMEEyQzk4ODNEOTQ2RDcA");
	cr_assert_str_eq(ev->key, "+573001234567");
	STR_EQ(ev->business_id, META_PNID);
	cr_assert_eq(ev->timestamp, 1795183560);
	ABSENT(ev->error_code);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_fixture, meta_status_failed_with_error)
{
	event_decoder_t *dec = new_dec();
	char *buf;
	const struct wa_event *ev = dec_fixture(dec, "meta-status-failed.json", 1, &buf);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_STATUS);
	cr_assert_eq(ev->status, WA_STATUS_FAILED);
	STR_EQ(ev->id, "wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBRCNEEzQkUzQjg3ODZBNTIyREQzNwA=:failed");
	cr_assert_str_eq(ev->key, "+34612345678");
	STR_EQ(ev->error_code, "131047"); /* the integer, as decimal text */
	STR_EQ(ev->error_message, "Re-engagement message");
	STR_EQ(ev->error_details, "Message failed to send because more than 24 hours have passed since the "
				  "customer last replied to this number.");
	cr_assert_eq(ev->timestamp, 1795278600);
	free(buf);
	event_decoder_destroy(dec);
}

/* ---- envelopes ---- */

Test(event_envelope, bare_object_decodes_like_the_array)
{
	event_decoder_t *dec = new_dec();
	size_t len;
	char *buf = read_fixture("acs-eg-text.json", &len);
	char *open = strchr(buf, '{'), *close = strrchr(buf, '}');
	char *bare = fmt("%.*s", (int)(close - open + 1), open);
	const struct wa_event *ev = dec_ok(dec, bare, 1);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	STR_EQ(ev->id, "cbae19bb-f0d4-4fc0-b103-fa210a1bfa86");
	cr_assert_str_eq(ev->key, "+573001234567");
	free(bare);
	free(buf);
	event_decoder_destroy(dec);
}

Test(event_envelope, cloudevents_spec_version_camel_case_and_array)
{
	event_decoder_t *dec = new_dec();
	const char *s = "[{\"id\":\"ce-1\",\"source\":\"/x\",\"type\":\"Microsoft.Communication.AdvancedMessageReceived\","
			"\"specVersion\":\"1.0\",\"time\":\"2026-11-20T14:05:31.0271946Z\",\"data\":{\"messageType\":"
			"\"text\",\"content\":\"hi\",\"from\":\"573001234567\"}},"
			"{\"id\":\"ce-2\",\"type\":\"Microsoft.Communication.AdvancedMessageReceived\","
			"\"specversion\":\"1.0\",\"data\":{\"content\":\"old\",\"from\":\"573001234567\"}}]";
	const struct wa_event *evs = dec_ok(dec, s, 2);

	ok_event(&evs[0], 0);
	STR_EQ(evs[0].id, "ce-1");
	STR_EQ(evs[0].text, "hi");
	cr_assert_eq(evs[0].timestamp, 1795183531); /* time, no receivedTimestamp */
	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_TEXT); /* no messageType: pre-2025 rule */
	STR_EQ(evs[1].text, "old");
	STR_EQ(evs[1].type, "Microsoft.Communication.AdvancedMessageReceived");
	cr_assert_eq(evs[1].timestamp, 0);
	event_decoder_destroy(dec);
}

Test(event_envelope, unknown_element_in_array_is_a_per_event_error)
{
	event_decoder_t *dec = new_dec();
	char *a = acs_text_from("\"573001234567\"", "null");
	/* [ {...}, {}, 7, [] ] */
	char *s = fmt("%.*s,{},7,[]]", (int)strlen(a) - 1, a);
	const struct wa_event *evs = dec_ok(dec, s, 4);

	ok_event(&evs[0], 0);
	for (uint32_t i = 1; i < 4; i++) {
		cr_assert_eq(evs[i].err, EVENT_E_ENVELOPE);
		cr_assert_null(evs[i].err_field);
		cr_assert_eq(evs[i].index, i);
		cr_assert_eq(evs[i].provider, WA_PROVIDER_NONE);
	}
	free(s);
	free(a);
	event_decoder_destroy(dec);
}

Test(event_envelope, unknown_top_level_object_is_a_record_error)
{
	event_decoder_t *dec = new_dec();

	static const char *const objs[] = {
		"{}",
		"{\"object\":\"page\",\"entry\":[]}",
		"{\"object\":\"whatsapp_business_account\",\"entry\":{}}",
		"{\"eventType\":\"x\"}",               /* no id */
		"{\"specversion\":1,\"type\":\"x\"}",   /* specversion not a string */
		"{\"specversion\":\"1.0\",\"id\":\"x\"}", /* no type */
	};

	for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
		dec_fail(dec, objs[i], strlen(objs[i]), EVENT_E_ENVELOPE);
	event_decoder_destroy(dec);
}

Test(event_envelope, empty_array_and_meta_without_messages_give_zero_events)
{
	event_decoder_t *dec = new_dec();
	char *m = meta_value("\"contacts\":[]");

	dec_ok(dec, "[]", 0);
	dec_ok(dec, " [ ] \n", 0);
	dec_ok(dec, m, 0);
	dec_ok(dec, "{\"object\":\"whatsapp_business_account\",\"entry\":[]}", 0);
	free(m);
	event_decoder_destroy(dec);
}

Test(event_envelope, unsupported_event_and_message_types)
{
	event_decoder_t *dec = new_dec();
	const char *analysis = "[{\"id\":\"a-1\",\"eventType\":\"Microsoft.Communication.AdvancedMessageAnalysisCompleted\","
			       "\"data\":{\"channelType\":\"whatsapp\"}},"
			       "{\"id\":\"d-1\",\"eventType\":\"Microsoft.EventGrid.SubscriptionDeletedEvent\"}]";
	const struct wa_event *evs = dec_ok(dec, analysis, 2);
	char *loc, *sys, *nfm, *unk;

	ok_event(&evs[0], 0);
	cr_assert_eq(evs[0].kind, WA_KIND_UNSUPPORTED);
	cr_assert_eq(evs[0].provider, WA_PROVIDER_ACS);
	STR_EQ(evs[0].id, "a-1");
	STR_EQ(evs[0].type, "Microsoft.Communication.AdvancedMessageAnalysisCompleted");
	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_UNSUPPORTED);
	cr_assert_eq(evs[1].provider, WA_PROVIDER_NONE);

	/* ACS messageType not in the table (U3), and media types without media */
	loc = acs_recv("{\"messageType\":\"location\",\"from\":\"573001234567\"}");
	evs = dec_ok(dec, loc, 1);
	ok_event(evs, 0);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	STR_EQ(evs->type, "location");
	cr_assert_str_eq(evs->key, "+573001234567");
	free(loc);
	loc = acs_recv("{\"messageType\":\"image\",\"from\":\"573001234567\"}");
	evs = dec_ok(dec, loc, 1);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	free(loc);
	loc = acs_recv("{\"messageType\":\"interactive\",\"interactive\":{\"type\":\"unknown\"},\"from\":\"573001234567\"}");
	evs = dec_ok(dec, loc, 1);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	free(loc);
	/* case-sensitive messageType */
	loc = acs_recv("{\"messageType\":\"Text\",\"content\":\"x\",\"from\":\"573001234567\"}");
	evs = dec_ok(dec, loc, 1);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	free(loc);

	sys = meta_value("\"messages\":[{\"from\":\"573001234567\",\"id\":\"wamid.S\",\"timestamp\":\"1795183391\","
			 "\"type\":\"system\",\"system\":{\"body\":\"changed number\"}}]");
	evs = dec_ok(dec, sys, 1);
	ok_event(evs, 0);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	STR_EQ(evs->type, "system");
	STR_EQ(evs->id, "wamid.S");
	cr_assert_str_eq(evs->key, "+573001234567");
	free(sys);

	nfm = meta_value("\"messages\":[{\"from\":\"573001234567\",\"id\":\"wamid.N\",\"timestamp\":\"1795183391\","
			 "\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":"
			 "{\"response_json\":\"{}\"}}}]");
	evs = dec_ok(dec, nfm, 1);
	ok_event(evs, 0);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	free(nfm);

	unk = meta_value("\"messages\":[{\"from\":\"573001234567\",\"id\":\"wamid.U\",\"timestamp\":\"1795183391\","
			 "\"type\":\"unsupported\",\"errors\":[{\"code\":131051,\"title\":\"Message type unknown\"}]}]");
	evs = dec_ok(dec, unk, 1);
	ok_event(evs, 0);
	cr_assert_eq(evs->kind, WA_KIND_UNSUPPORTED);
	STR_EQ(evs->error_code, "131051");
	STR_EQ(evs->error_message, "Message type unknown");
	free(unk);
	event_decoder_destroy(dec);
}

Test(event_envelope, meta_other_field_is_one_unsupported_event)
{
	event_decoder_t *dec = new_dec();
	const char *s = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
			"{\"field\":\"group_lifecycle_update\",\"value\":{}},{\"value\":{}}]}]}";
	const struct wa_event *evs = dec_ok(dec, s, 2);

	ok_event(&evs[0], 0);
	cr_assert_eq(evs[0].provider, WA_PROVIDER_META);
	cr_assert_eq(evs[0].kind, WA_KIND_UNSUPPORTED);
	STR_EQ(evs[0].type, "group_lifecycle_update");
	ABSENT(evs[0].id);
	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_UNSUPPORTED);
	event_decoder_destroy(dec);
}

Test(event_envelope, meta_broken_structure_gives_event_errors)
{
	event_decoder_t *dec = new_dec();
	const char *s = "{\"object\":\"whatsapp_business_account\",\"entry\":[7,{\"id\":\"1\"},{\"changes\":[1,"
			"{\"field\":\"messages\"},{\"field\":\"messages\",\"value\":{\"messages\":[3],"
			"\"statuses\":{}}}]}]}";
	const struct wa_event *evs = dec_ok(dec, s, 6);

	cr_assert_eq(evs[0].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[0].err_field, "entry[]");
	cr_assert_eq(evs[1].err, EVENT_E_MISSING);
	cr_assert_str_eq(evs[1].err_field, "entry[].changes");
	cr_assert_eq(evs[2].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[2].err_field, "entry[].changes[]");
	cr_assert_eq(evs[3].err, EVENT_E_MISSING);
	cr_assert_str_eq(evs[3].err_field, "entry[].changes[].value");
	cr_assert_eq(evs[4].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[4].err_field, "messages[]");
	cr_assert_eq(evs[5].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[5].err_field, "value.statuses");
	for (uint32_t i = 0; i < 6; i++)
		cr_assert_eq(evs[i].provider, WA_PROVIDER_META);
	event_decoder_destroy(dec);
}

/* ---- record errors ---- */

Test(event_record, empty_and_white_space)
{
	event_decoder_t *dec = new_dec();

	dec_fail(dec, "", 0, EVENT_E_EMPTY);
	dec_fail(dec, NULL, 0, EVENT_E_EMPTY);
	dec_fail(dec, " \n\t\r ", 5, EVENT_E_EMPTY);
	event_decoder_destroy(dec);
}

Test(event_record, too_big)
{
	event_decoder_t *dec = new_dec();
	size_t len = EVENT_MAX_PAYLOAD + 1;
	char *s = malloc(len);

	cr_assert_not_null(s);
	memset(s, ' ', len);
	s[0] = '[';
	s[len - 1] = ']';
	dec_fail(dec, s, len, EVENT_E_TOO_BIG);
	/* exactly the limit is parsed */
	s[len - 2] = ']';
	{
		const struct wa_event *evs;
		size_t n;

		cr_assert_eq(event_decode(dec, s, len - 1, &evs, &n, NULL, 0), EVENT_OK);
		cr_assert_eq(n, 0);
	}
	free(s);
	event_decoder_destroy(dec);
}

Test(event_record, invalid_json)
{
	event_decoder_t *dec = new_dec();

	dec_fail(dec, "{", 1, EVENT_E_JSON);
	dec_fail(dec, "nul", 3, EVENT_E_JSON);
	dec_fail(dec, "[1,]", 4, EVENT_E_JSON);
	dec_fail(dec, "{} {}", 5, EVENT_E_JSON);
	dec_fail(dec, "[\"a\0b\"]", 7, EVENT_E_JSON);
	event_decoder_destroy(dec);
}

Test(event_record, invalid_utf8)
{
	event_decoder_t *dec = new_dec();
	const char *bad[] = {
		"[\"\xff\"]",
		"[\"\xc3\"]",             /* truncated sequence */
		"[\"\xc0\xaf\"]",         /* overlong */
		"[\"\xed\xa0\x80\"]",     /* UTF-16 surrogate */
		"[\"\\ud83d\"]",          /* lone surrogate escape */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		dec_fail(dec, bad[i], strlen(bad[i]), EVENT_E_UTF8);
	event_decoder_destroy(dec);
}

Test(event_record, too_deep)
{
	event_decoder_t *dec = new_dec();
	char s[256];
	int i;

	for (i = 0; i < 100; i++) {
		s[i] = '[';
		s[200 - 1 - i] = ']';
	}
	dec_fail(dec, s, 200, EVENT_E_DEPTH);
	/* EVENT_MAX_DEPTH levels still parse (33 does not) */
	for (i = 0; i < EVENT_MAX_DEPTH; i++) {
		s[i] = '[';
		s[2 * EVENT_MAX_DEPTH - 1 - i] = ']';
	}
	{
		const struct wa_event *evs;
		size_t n;

		cr_assert_eq(event_decode(dec, s, 2 * EVENT_MAX_DEPTH, &evs, &n, NULL, 0), EVENT_OK);
		cr_assert_eq(n, 1);
		cr_assert_eq(evs[0].err, EVENT_E_ENVELOPE);
	}
	for (i = 0; i < EVENT_MAX_DEPTH + 1; i++) {
		s[i] = '[';
		s[2 * (EVENT_MAX_DEPTH + 1) - 1 - i] = ']';
	}
	dec_fail(dec, s, 2 * (EVENT_MAX_DEPTH + 1), EVENT_E_DEPTH);
	event_decoder_destroy(dec);
}

Test(event_record, not_a_container)
{
	event_decoder_t *dec = new_dec();

	dec_fail(dec, "42", 2, EVENT_E_NOT_CONTAINER);
	dec_fail(dec, "\"x\"", 3, EVENT_E_NOT_CONTAINER);
	dec_fail(dec, "null", 4, EVENT_E_NOT_CONTAINER);
	dec_fail(dec, " true ", 6, EVENT_E_NOT_CONTAINER);
	event_decoder_destroy(dec);
}

Test(event_record, too_many_events)
{
	event_decoder_t *dec = new_dec();
	size_t cnt = EVENT_MAX_EVENTS + 1, len = 2 + cnt * 3, i, o = 0;
	char *s = malloc(len + 1);
	const struct wa_event *evs;
	size_t n;

	cr_assert_not_null(s);
	s[o++] = '[';
	for (i = 0; i < cnt; i++) {
		if (i)
			s[o++] = ',';
		s[o++] = '{';
		s[o++] = '}';
	}
	s[o++] = ']';
	dec_fail(dec, s, o, EVENT_E_TOO_MANY);
	/* EVENT_MAX_EVENTS is fine: 10,000 envelope errors */
	s[o - 4] = ']';
	cr_assert_eq(event_decode(dec, s, o - 3, &evs, &n, NULL, 0), EVENT_OK);
	cr_assert_eq(n, EVENT_MAX_EVENTS);
	cr_assert_eq(evs[EVENT_MAX_EVENTS - 1].index, EVENT_MAX_EVENTS - 1);
	cr_assert_eq(evs[EVENT_MAX_EVENTS - 1].err, EVENT_E_ENVELOPE);
	free(s);
	event_decoder_destroy(dec);
}

Test(event_record, too_many_meta_statuses)
{
	event_decoder_t *dec = new_dec();
	size_t cnt = EVENT_MAX_EVENTS + 1, cap = 96 * cnt + 1024, o, i;
	char *s = malloc(cap), *m;

	cr_assert_not_null(s);
	o = (size_t)snprintf(s, cap, "\"statuses\":[");
	for (i = 0; i < cnt; i++)
		o += (size_t)snprintf(s + o, cap - o, "%s{\"id\":\"w%zu\",\"status\":\"read\",\"recipient_id\":\"573001234567\"}",
				      i ? "," : "", i);
	snprintf(s + o, cap - o, "]");
	m = meta_value(s);
	dec_fail(dec, m, strlen(m), EVENT_E_TOO_MANY);
	free(m);
	free(s);
	event_decoder_destroy(dec);
}

Test(event_record, truncation_at_every_byte_never_decodes)
{
	static const char *const names[] = {"acs-eg-batch.json", "meta-multi-messages.json", "acs-eg-reaction.json",
					    "eg-subscription-validation.json", "meta-status-failed.json"};
	event_decoder_t *dec = new_dec();

	for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
		size_t len, end, cut;
		char *buf = read_fixture(names[f], &len);

		end = len;
		while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == ' '))
			end--;
		for (cut = 0; cut < end; cut++) {
			/* a fresh copy of exactly cut bytes, so ASan sees reads past it */
			char *p = malloc(cut ? cut : 1);
			const struct wa_event *evs;
			size_t n = 99;
			char errstr[128] = "";
			event_err_t e;

			memcpy(p, buf, cut);
			e = event_decode(dec, p, cut, &evs, &n, errstr, sizeof errstr);
			cr_assert(e == EVENT_E_JSON || e == EVENT_E_EMPTY || e == EVENT_E_UTF8, "%s cut at %zu: %s",
				  names[f], cut,
				  event_err_name(e));
			cr_assert_eq(n, 0);
			cr_assert_null(strstr(errstr, "573001234567"));
			cr_assert_null(strstr(errstr, "34612345678"));
			free(p);
		}
		free(buf);
	}
	event_decoder_destroy(dec);
}

Test(event_record, errstr_may_be_null_and_is_cut_to_size)
{
	event_decoder_t *dec = new_dec();
	const struct wa_event *evs;
	size_t n;
	char small[8];

	cr_assert_eq(event_decode(dec, "{", 1, &evs, &n, NULL, 0), EVENT_E_JSON);
	memset(small, 'x', sizeof small);
	cr_assert_eq(event_decode(dec, "{", 1, &evs, &n, small, sizeof small), EVENT_E_JSON);
	cr_assert_eq(strlen(small), sizeof small - 1);
	event_decoder_destroy(dec);
}

/* ---- per-event errors ---- */

Test(event_field, missing_and_wrong_type_identity_fields)
{
	event_decoder_t *dec = new_dec();
	const char *s = "["
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":null,"
			"\"data\":{\"messageType\":\"text\",\"content\":\"x\",\"from\":\"573001234567\"}},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":5,\"data\":{}},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":\"\",\"data\":{}},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":\"e4\"},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":\"e5\",\"data\":\"x\"},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":\"e6\","
			"\"data\":{\"messageType\":\"text\",\"from\":573001234567}},"
			"{\"eventType\":7,\"id\":\"e7\"},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"id\":\"e8\","
			"\"data\":{\"messageType\":[],\"from\":\"573001234567\"}},"
			"{\"eventType\":\"Microsoft.EventGrid.SubscriptionValidationEvent\",\"id\":\"e9\",\"data\":{}},"
			"{\"eventType\":\"Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated\",\"id\":\"e10\","
			"\"data\":{\"status\":\"read\",\"to\":\"573001234567\",\"from\":{}}}"
			"]";
	const struct wa_event *evs = dec_ok(dec, s, 10);
	static const struct {
		event_err_t err;
		const char *field;
	} want[] = {
		{EVENT_E_MISSING, "id"},        {EVENT_E_TYPE, "id"},          {EVENT_E_MISSING, "id"},
		{EVENT_E_MISSING, "data"},      {EVENT_E_TYPE, "data"},        {EVENT_E_TYPE, "data.from"},
		{EVENT_E_TYPE, "eventType"},    {EVENT_E_TYPE, "data.messageType"},
		{EVENT_E_MISSING, "data.validationCode"},                      {EVENT_E_TYPE, "data.from"},
	};

	for (size_t i = 0; i < 10; i++) {
		cr_assert_eq(evs[i].err, want[i].err, "event %zu: want %s, got %s", i, event_err_name(want[i].err),
			     event_err_name(evs[i].err));
		cr_assert_str_eq(evs[i].err_field, want[i].field, "event %zu", i);
		cr_assert_eq(evs[i].index, i);
	}
	/* fields decoded before the error stay set */
	STR_EQ(evs[5].id, "e6");
	cr_assert_eq(evs[9].status, WA_STATUS_READ);
	event_decoder_destroy(dec);
}

Test(event_field, meta_missing_message_id_and_status)
{
	event_decoder_t *dec = new_dec();
	char *s = meta_value("\"messages\":[{\"from\":\"573001234567\",\"type\":\"text\",\"text\":{\"body\":\"x\"}},"
			     "{\"from\":\"573001234567\",\"id\":\"wamid.ok\",\"type\":\"text\",\"from_user_id\":1}],"
			     "\"statuses\":[{\"id\":\"wamid.A\",\"recipient_id\":\"573001234567\"},"
			     "{\"status\":\"read\",\"recipient_id\":\"573001234567\"},"
			     "{\"id\":\"wamid.B\",\"status\":\"read\",\"recipient_id\":57}]");
	const struct wa_event *evs = dec_ok(dec, s, 5);

	cr_assert_eq(evs[0].err, EVENT_E_MISSING);
	cr_assert_str_eq(evs[0].err_field, "messages[].id");
	STR_EQ(evs[0].text, "x");
	cr_assert_eq(evs[1].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[1].err_field, "messages[].from_user_id");
	cr_assert_eq(evs[2].err, EVENT_E_MISSING);
	cr_assert_str_eq(evs[2].err_field, "statuses[].status");
	cr_assert_eq(evs[2].kind, WA_KIND_STATUS);
	cr_assert_eq(evs[3].err, EVENT_E_MISSING);
	cr_assert_str_eq(evs[3].err_field, "statuses[].id");
	cr_assert_eq(evs[4].err, EVENT_E_TYPE);
	cr_assert_str_eq(evs[4].err_field, "statuses[].recipient_id");
	free(s);
	event_decoder_destroy(dec);
}

Test(event_field, wrong_type_on_optional_field_is_absent)
{
	event_decoder_t *dec = new_dec();
	char *s = acs_recv("{\"messageType\":\"text\",\"content\":42,\"from\":\"573001234567\",\"messageId\":[],"
			   "\"context\":\"x\",\"receivedTimestamp\":1795183391,\"error\":[]}");
	const struct wa_event *ev = dec_ok(dec, s, 1);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	ABSENT(ev->text);
	ABSENT(ev->message_id);
	ABSENT(ev->ref_message_id);
	ABSENT(ev->error_code);
	cr_assert_eq(ev->timestamp, 1795183392); /* eventTime fallback, fraction dropped */
	free(s);
	event_decoder_destroy(dec);
}

static char *big_text_event(size_t n, bool escaped)
{
	/* escaped: "\u00e9" (6 raw bytes) decodes to 2 bytes; n must be even */
	size_t raw = escaped ? n / 2 * 6 : n;
	char *content = malloc(raw + 1), *data, *s;

	cr_assert_not_null(content);
	if (escaped) {
		for (size_t i = 0; i < n / 2; i++)
			memcpy(content + 6 * i, "\\u00e9", 6);
	} else {
		memset(content, 'a', n);
	}
	content[raw] = '\0';
	data = fmt("{\"messageType\":\"text\",\"from\":\"573001234567\",\"content\":\"%s\"}", content);
	s = acs_recv(data);
	free(data);
	free(content);
	return s;
}

Test(event_field, text_of_exactly_64_kib_is_accepted)
{
	event_decoder_t *dec = new_dec();
	char *s = big_text_event(EVENT_MAX_TEXT, false), *e = big_text_event(EVENT_MAX_TEXT, true);
	const struct wa_event *ev = dec_ok(dec, s, 1);

	ok_event(ev, 0);
	cr_assert_eq(ev->text.len, EVENT_MAX_TEXT);
	ev = dec_ok(dec, e, 1);
	ok_event(ev, 0);
	cr_assert_eq(ev->text.len, EVENT_MAX_TEXT);
	cr_assert_eq(memcmp(ev->text.p + EVENT_MAX_TEXT - 2, "\xc3\xa9", 2), 0);
	free(s);
	free(e);
	event_decoder_destroy(dec);
}

Test(event_field, text_of_64_kib_plus_one_is_an_event_error)
{
	event_decoder_t *dec = new_dec();
	char *s = big_text_event(EVENT_MAX_TEXT + 1, false), *e = big_text_event(EVENT_MAX_TEXT + 2, true);
	const struct wa_event *ev = dec_ok(dec, s, 1);

	cr_assert_eq(ev->err, EVENT_E_TEXT_TOO_LONG);
	cr_assert_str_eq(ev->err_field, "data.content");
	ABSENT(ev->text);
	cr_assert_str_eq(ev->key, "+573001234567");
	ev = dec_ok(dec, e, 1);
	cr_assert_eq(ev->err, EVENT_E_TEXT_TOO_LONG);
	free(s);
	free(e);
	event_decoder_destroy(dec);
}

/* ---- phones, BSUIDs, keys ---- */

Test(event_sender, bsuid_only_sender_is_the_key)
{
	event_decoder_t *dec = new_dec();
	const char *froms[] = {"\"\"", "null"};

	for (size_t i = 0; i < 2; i++) {
		char *s = acs_text_from(froms[i], "\"CO.1520394857610293847\"");
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_str_eq(ev->phone, "");
		cr_assert_str_eq(ev->key, "CO.1520394857610293847");
		STR_EQ(ev->user_id, "CO.1520394857610293847");
		free(s);
	}
	{
		/* from absent altogether */
		char *s = acs_recv("{\"messageType\":\"text\",\"content\":\"x\",\"fromBSUID\":\"CO.1\"}");
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_str_eq(ev->key, "CO.1");
		free(s);
	}
	event_decoder_destroy(dec);
}

Test(event_sender, phone_with_plus_is_accepted)
{
	event_decoder_t *dec = new_dec();
	char *s = acs_text_from("\"+573001234567\"", "null");
	const struct wa_event *ev = dec_ok(dec, s, 1);

	ok_event(ev, 0);
	cr_assert_str_eq(ev->phone, "+573001234567");
	cr_assert_str_eq(ev->key, "+573001234567");
	ABSENT(ev->user_id);
	free(s);
	event_decoder_destroy(dec);
}

Test(event_sender, escaped_phone_is_decoded)
{
	event_decoder_t *dec = new_dec();
	char *s = acs_text_from("\"\\u0035\\u0037300123456\\u0037\"", "null");
	const struct wa_event *ev = dec_ok(dec, s, 1);

	ok_event(ev, 0);
	cr_assert_str_eq(ev->phone, "+573001234567");
	free(s);
	event_decoder_destroy(dec);
}

Test(event_sender, invalid_phone_falls_back_to_bsuid_or_no_sender)
{
	static const char *const bad[] = {"\"12\"", "\"0123456789\"", "\"+57abc\"", "\"1234567890123456\"",
					  "\"+\"", "\"57 300 123 4567\"", "\"++573001234567\"", "\"123456\""};
	event_decoder_t *dec = new_dec();

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *s = acs_text_from(bad[i], "\"CO.1520394857610293847\"");
		char *t = acs_text_from(bad[i], "null");
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_str_eq(ev->phone, "", "%s", bad[i]);
		cr_assert_str_eq(ev->key, "CO.1520394857610293847");
		ev = dec_ok(dec, t, 1);
		cr_assert_eq(ev->err, EVENT_E_NO_SENDER, "%s", bad[i]);
		cr_assert_str_eq(ev->err_field, "data.from");
		cr_assert_str_eq(ev->phone, "");
		cr_assert_str_eq(ev->key, "");
		free(s);
		free(t);
	}
	event_decoder_destroy(dec);
}

Test(event_sender, unusable_bsuid_is_no_key)
{
	event_decoder_t *dec = new_dec();
	char *sp = acs_text_from("null", "\"CO 1\"");
	char *longb;
	char b[EVENT_KEY_MAX + 8];
	const struct wa_event *ev;

	ev = dec_ok(dec, sp, 1);
	cr_assert_eq(ev->err, EVENT_E_NO_SENDER);
	STR_EQ(ev->user_id, "CO 1");
	/* EVENT_KEY_MAX - 1 bytes fit, EVENT_KEY_MAX do not */
	memset(b, 'A', sizeof b);
	b[0] = '"';
	b[EVENT_KEY_MAX] = '"';
	b[EVENT_KEY_MAX + 1] = '\0';
	longb = acs_text_from("null", b);
	ev = dec_ok(dec, longb, 1);
	ok_event(ev, 0);
	cr_assert_eq(strlen(ev->key), EVENT_KEY_MAX - 1);
	free(longb);
	b[EVENT_KEY_MAX + 1] = '"';
	b[EVENT_KEY_MAX + 2] = '\0';
	b[EVENT_KEY_MAX] = 'A';
	longb = acs_text_from("null", b);
	ev = dec_ok(dec, longb, 1);
	cr_assert_eq(ev->err, EVENT_E_NO_SENDER);
	cr_assert_str_eq(ev->key, "");
	free(longb);
	free(sp);
	event_decoder_destroy(dec);
}

Test(event_sender, status_without_recipient_is_no_sender)
{
	event_decoder_t *dec = new_dec();
	const char *s = "[{\"id\":\"s1\",\"eventType\":\"Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated\","
			"\"data\":{\"status\":\"Sent\",\"to\":\"\",\"toBSUID\":\"ES.1\"}},"
			"{\"id\":\"s2\",\"eventType\":\"Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated\","
			"\"data\":{\"status\":\"Sent\",\"to\":\"\"}}]";
	const struct wa_event *evs = dec_ok(dec, s, 2);
	char *m;

	ok_event(&evs[0], 0);
	cr_assert_str_eq(evs[0].key, "ES.1");
	cr_assert_eq(evs[0].status, WA_STATUS_SENT);
	cr_assert_eq(evs[1].err, EVENT_E_NO_SENDER);
	cr_assert_str_eq(evs[1].err_field, "data.to");

	m = meta_value("\"statuses\":[{\"id\":\"w\",\"status\":\"sent\"},"
		       "{\"id\":\"w\",\"status\":\"sent\",\"recipient_user_id\":\"CO.9\"}]");
	evs = dec_ok(dec, m, 2);
	cr_assert_eq(evs[0].err, EVENT_E_NO_SENDER);
	cr_assert_str_eq(evs[0].err_field, "statuses[].recipient_id");
	ok_event(&evs[1], 1);
	cr_assert_str_eq(evs[1].key, "CO.9");
	free(m);
	event_decoder_destroy(dec);
}

Test(event_sender, meta_from_missing_uses_contact)
{
	event_decoder_t *dec = new_dec();
	char *s = meta_value("\"contacts\":[{\"profile\":{\"name\":\"Otro\"},\"wa_id\":\"34612345678\"},"
			     "{\"profile\":{\"name\":\"Juan P\\u00e9rez\"},\"wa_id\":\"573001234567\","
			     "\"user_id\":\"CO.1520394857610293847\"},"
			     "{\"profile\":{\"name\":\"Sin tel\"},\"user_id\":\"CO.77\"}],"
			     "\"messages\":[{\"from_user_id\":\"CO.1520394857610293847\",\"id\":\"wamid.1\","
			     "\"timestamp\":1795183391,\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
			     "{\"from\":\"573001234567\",\"id\":\"wamid.2\",\"timestamp\":\"1795183392\","
			     "\"type\":\"text\",\"text\":{\"body\":\"b\"}},"
			     "{\"from_user_id\":\"CO.77\",\"id\":\"wamid.3\",\"type\":\"text\",\"text\":{\"body\":\"c\"}},"
			     "{\"id\":\"wamid.4\",\"type\":\"text\",\"text\":{\"body\":\"d\"}}]");
	const struct wa_event *evs = dec_ok(dec, s, 4);

	ok_event(&evs[0], 0);
	cr_assert_str_eq(evs[0].phone, "+573001234567"); /* contacts[].wa_id */
	cr_assert_str_eq(evs[0].key, "+573001234567");
	STR_EQ(evs[0].profile_name, "Juan P\xc3\xa9rez");
	cr_assert_eq(evs[0].timestamp, 1795183391); /* a JSON number */
	ok_event(&evs[1], 1);
	STR_EQ(evs[1].user_id, "CO.1520394857610293847"); /* contacts[].user_id */
	cr_assert(evs[1].profile_name.p == evs[0].profile_name.p, "a contact is decoded once");
	cr_assert_eq(evs[1].timestamp, 1795183392);
	ok_event(&evs[2], 2);
	cr_assert_str_eq(evs[2].phone, "");
	cr_assert_str_eq(evs[2].key, "CO.77");
	STR_EQ(evs[2].profile_name, "Sin tel");
	cr_assert_eq(evs[3].err, EVENT_E_NO_SENDER);
	cr_assert_str_eq(evs[3].err_field, "messages[].from");
	ABSENT(evs[3].profile_name);
	free(s);
	event_decoder_destroy(dec);
}

/* ---- quirks and details ---- */

Test(event_quirk, received_timestamp_key_any_case)
{
	event_decoder_t *dec = new_dec();
	const char *keys[] = {"receivedTimeStamp", "RECEIVEDTIMESTAMP", "receivedtimestamp"};

	for (size_t i = 0; i < 3; i++) {
		char *data = fmt("{\"messageType\":\"text\",\"from\":\"573001234567\",\"%s\":\"2026-11-20T14:03:11+00:00\"}",
				 keys[i]);
		char *s = acs_recv(data);
		const struct wa_event *ev = dec_ok(dec, s, 1);

		cr_assert_eq(ev->timestamp, 1795183391, "%s", keys[i]);
		free(s);
		free(data);
	}
	event_decoder_destroy(dec);
}

Test(event_quirk, status_compared_case_insensitively)
{
	static const struct {
		const char *text;
		enum wa_status st;
	} cases[] = {
		{"Delivered", WA_STATUS_DELIVERED}, {"delivered", WA_STATUS_DELIVERED}, {"DELIVERED", WA_STATUS_DELIVERED},
		{"sent", WA_STATUS_SENT},           {"READ", WA_STATUS_READ},           {"Failed", WA_STATUS_FAILED},
		{"Warning", WA_STATUS_UNKNOWN},     {"Unknown", WA_STATUS_UNKNOWN},     {"", WA_STATUS_UNKNOWN},
		{"deliveredx", WA_STATUS_UNKNOWN},  {"rea", WA_STATUS_UNKNOWN},
	};
	event_decoder_t *dec = new_dec();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = fmt("{\"id\":\"s\",\"eventType\":\"Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated\","
			      "\"data\":{\"status\":\"%s\",\"to\":\"573001234567\"}}",
			      cases[i].text);
		char *m;
		char *m2 = fmt("\"statuses\":[{\"id\":\"w\",\"status\":\"%s\",\"recipient_id\":\"573001234567\"}]",
			       cases[i].text);
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_eq(ev->status, cases[i].st, "ACS %s", cases[i].text);
		m = meta_value(m2);
		ev = dec_ok(dec, m, 1);
		cr_assert_eq(ev->status, cases[i].st, "Meta %s", cases[i].text);
		free(m);
		free(m2);
		free(s);
	}
	{
		/* ACS status absent: unknown, still an event */
		const char *s = "{\"id\":\"s\",\"eventType\":\"Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated\","
				"\"data\":{\"to\":\"573001234567\"}}";
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_eq(ev->status, WA_STATUS_UNKNOWN);
	}
	event_decoder_destroy(dec);
}

Test(event_quirk, media_animated_bool_or_string)
{
	static const struct {
		const char *json;
		bool want;
	} cases[] = {{"true", true}, {"\"true\"", true}, {"\"TRUE\"", true}, {"false", false},
		     {"\"false\"", false}, {"1", false}, {"null", false}};
	event_decoder_t *dec = new_dec();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *data = fmt("{\"messageType\":\"sticker\",\"from\":\"573001234567\",\"media\":{\"id\":\"m\","
				 "\"mimeType\":\"image/webp\",\"animated\":%s}}",
				 cases[i].json);
		char *s = acs_recv(data);
		char *mv = fmt("\"messages\":[{\"from\":\"573001234567\",\"id\":\"wamid.1\",\"type\":\"sticker\","
			       "\"sticker\":{\"id\":\"99\",\"mime_type\":\"image/webp\",\"animated\":%s}}]",
			       cases[i].json);
		char *m = meta_value(mv);
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_eq(ev->kind, WA_KIND_MEDIA);
		STR_EQ(ev->media_type, "sticker");
		cr_assert_eq(ev->media_animated, cases[i].want, "ACS %s", cases[i].json);
		ev = dec_ok(dec, m, 1);
		ok_event(ev, 0);
		cr_assert_eq(ev->kind, WA_KIND_MEDIA);
		STR_EQ(ev->media_id, "99");
		cr_assert_eq(ev->media_animated, cases[i].want, "Meta %s", cases[i].json);
		free(m);
		free(mv);
		free(s);
		free(data);
	}
	event_decoder_destroy(dec);
}

Test(event_quirk, iso8601_offsets_fractions_and_ranges)
{
	static const struct {
		const char *ts;
		int64_t want; /* 0: unparsable, falls back to eventTime */
	} cases[] = {
		{"2026-11-20T14:03:11+00:00", 1795183391},
		{"2026-11-20T14:03:11Z", 1795183391},
		{"2026-11-20T14:03:11z", 1795183391},
		{"2026-11-20 14:03:11Z", 1795183391},
		{"2026-11-20T14:03:11.2610383+00:00", 1795183391},
		{"2026-11-20T14:03:11.2+00:00", 1795183391},
		{"2026-11-20T14:03:11.123456789Z", 1795183391},
		{"2026-11-20T14:03:11+05:30", 1795163591},
		{"2026-11-20T14:03:11+0530", 1795163591},
		{"2026-11-20T14:03:11-03:00", 1795194191},
		{"2026-11-20T14:03:11-03", 1795194191},
		{"2000-02-29T00:00:00Z", 951782400},
		{"2024-02-29T23:59:59Z", 1709251199},
		{"1970-01-01T00:00:00Z", -1}, /* 0 itself: indistinguishable, see below */
		{"2026-11-20T14:03:11", 0},   /* no offset */
		{"2026-11-20T14:03:11.+00:00", 0},
		{"2026-11-20T14:03:11.1234567890Z", 0},
		{"2026-02-30T00:00:00Z", 0},
		{"2025-02-29T00:00:00Z", 0},
		{"2026-13-01T00:00:00Z", 0},
		{"2026-11-20T24:00:00Z", 0},
		{"2026-11-20T14:60:00Z", 0},
		{"2026-11-20T14:03:11+24:00", 0},
		{"2026-11-20T14:03:11+05:60", 0},
		{"2026-11-20T14:03:11+05:3", 0},
		{"2026-11-20T14:03:11Zjunk", 0},
		{"1969-12-31T23:59:59Z", 0},
		{"2026-1-20T14:03:11Z", 0},
		{"", 0},
	};
	event_decoder_t *dec = new_dec();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* no eventTime, so an unparsable receivedTimestamp gives 0 */
		char *s = fmt("{\"id\":\"t\",\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"data\":"
			      "{\"messageType\":\"text\",\"from\":\"573001234567\",\"receivedTimestamp\":\"%s\"}}",
			      cases[i].ts);
		const struct wa_event *ev = dec_ok(dec, s, 1);

		ok_event(ev, 0);
		cr_assert_eq(ev->timestamp, cases[i].want < 0 ? 0 : cases[i].want, "%s -> %lld", cases[i].ts,
			     (long long)ev->timestamp);
		free(s);
	}
	event_decoder_destroy(dec);
}

Test(event_quirk, meta_timestamps_string_or_number)
{
	static const struct {
		const char *json;
		int64_t want;
	} cases[] = {{"\"1795183391\"", 1795183391}, {"1795183391", 1795183391}, {"1795183391.9", 1795183391},
		     {"\"\"", 0},   {"\"-1\"", 0},   {"\"17951x\"", 0},  {"-5", 0},  {"\"1795183391 \"", 0},
		     {"\"9999999999999\"", 0},       {"true", 0},        {"1e400", 0}};
	event_decoder_t *dec = new_dec();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *mv = fmt("\"messages\":[{\"from\":\"573001234567\",\"id\":\"wamid.1\",\"timestamp\":%s,"
			       "\"type\":\"text\",\"text\":{\"body\":\"x\"}}]",
			       cases[i].json);
		char *m = meta_value(mv);
		const struct wa_event *ev = dec_ok(dec, m, 1);

		ok_event(ev, 0);
		cr_assert_eq(ev->timestamp, cases[i].want, "%s", cases[i].json);
		free(m);
		free(mv);
	}
	event_decoder_destroy(dec);
}

Test(event_quirk, meta_reaction_without_emoji_and_button_and_document)
{
	event_decoder_t *dec = new_dec();
	char *m = meta_value("\"messages\":["
			     "{\"from\":\"573001234567\",\"id\":\"wamid.r\",\"type\":\"reaction\","
			     "\"reaction\":{\"message_id\":\"wamid.target\"}},"
			     "{\"from\":\"573001234567\",\"id\":\"wamid.b\",\"type\":\"button\","
			     "\"button\":{\"payload\":\"YES_PAYLOAD\",\"text\":\"S\\u00ed\"}},"
			     "{\"from\":\"573001234567\",\"id\":\"wamid.d\",\"type\":\"document\",\"document\":"
			     "{\"id\":\"555\",\"mime_type\":\"application/pdf\",\"filename\":\"recibo.pdf\"}},"
			     "{\"from\":\"573001234567\",\"id\":\"wamid.l\",\"type\":\"location\","
			     "\"location\":{\"latitude\":\"19.4\",\"longitude\":-99.1}}]");
	const struct wa_event *evs = dec_ok(dec, m, 4);

	ok_event(&evs[0], 0);
	cr_assert_eq(evs[0].kind, WA_KIND_REACTION);
	ABSENT(evs[0].reaction_emoji);
	STR_EQ(evs[0].reaction_target, "wamid.target");
	ok_event(&evs[1], 1);
	cr_assert_eq(evs[1].kind, WA_KIND_BUTTON_REPLY);
	STR_EQ(evs[1].reply_id, "YES_PAYLOAD");
	STR_EQ(evs[1].reply_title, "S\xc3\xad");
	ok_event(&evs[2], 2);
	cr_assert_eq(evs[2].kind, WA_KIND_MEDIA);
	STR_EQ(evs[2].media_type, "document");
	STR_EQ(evs[2].media_filename, "recibo.pdf");
	ABSENT(evs[2].media_caption);
	ABSENT(evs[2].text);
	ok_event(&evs[3], 3);
	cr_assert_eq(evs[3].kind, WA_KIND_LOCATION);
	cr_assert_not(evs[3].has_location, "latitude as a string is not a number");
	free(m);
	event_decoder_destroy(dec);
}

Test(event_quirk, acs_button_and_reaction_without_emoji_and_error_code_number)
{
	event_decoder_t *dec = new_dec();
	char *s = acs_recv("{\"messageType\":\"button\",\"from\":\"573001234567\",\"button\":{\"text\":\"Yes\","
			   "\"payload\":\"p1\"},\"error\":{\"channelCode\":131026,\"channelMessage\":\"m\"}}");
	char *r = acs_recv("{\"messageType\":\"reaction\",\"from\":\"573001234567\",\"reaction\":{\"messageId\":\"t\","
			   "\"emoji\":null}}");
	const struct wa_event *ev = dec_ok(dec, s, 1);

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_BUTTON_REPLY);
	STR_EQ(ev->reply_id, "p1");
	STR_EQ(ev->reply_title, "Yes");
	STR_EQ(ev->error_code, "131026");
	STR_EQ(ev->error_message, "m");
	ev = dec_ok(dec, r, 1);
	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_REACTION);
	ABSENT(ev->reaction_emoji);
	STR_EQ(ev->reaction_target, "t");
	free(s);
	free(r);
	event_decoder_destroy(dec);
}

Test(event_quirk, escaped_strings_and_keys_decode)
{
	event_decoder_t *dec = new_dec();
	/* escaped key "\u0063ontent" = "content"; escaped id; escaped type */
	const char *s = "{\"id\":\"a\\/b\",\"eventType\":\"Microsoft.Communication.AdvancedMessageReceived\",\"data\":"
			"{\"messageType\":\"te\\u0078t\",\"\\u0063ontent\":\"l\\u00ednea\\n2 \\\"q\\\"\","
			"\"from\":\"573001234567\"}}";
	const struct wa_event *ev = dec_ok(dec, s, 1);
	char *m;

	ok_event(ev, 0);
	cr_assert_eq(ev->kind, WA_KIND_TEXT);
	STR_EQ(ev->id, "a/b");
	STR_EQ(ev->type, "text");
	STR_EQ(ev->text, "l\xc3\xadnea\n2 \"q\"");

	m = meta_value("\"statuses\":[{\"id\":\"wamid.\\u0041\",\"status\":\"re\\u0061d\","
		       "\"recipient_id\":\"573001234567\",\"errors\":[{\"code\":-7,\"message\":\"only message\"}]}]");
	ev = dec_ok(dec, m, 1);
	ok_event(ev, 0);
	STR_EQ(ev->id, "wamid.A:read");
	STR_EQ(ev->message_id, "wamid.A");
	cr_assert_eq(ev->status, WA_STATUS_READ);
	STR_EQ(ev->error_code, "-7");
	STR_EQ(ev->error_message, "only message");
	free(m);
	event_decoder_destroy(dec);
}

/* ---- decoder reuse, names ---- */

Test(event_decoder, reuse_across_many_calls_and_sizes)
{
	static const char *const names[] = {
		"acs-eg-text.json",        "acs-eg-batch.json",         "acs-ce-text.json",
		"acs-eg-button-reply.json", "acs-eg-list-reply.json",    "acs-eg-media-image.json",
		"acs-eg-reaction.json",     "acs-eg-status-delivered.json", "acs-eg-status-failed.json",
		"eg-subscription-validation.json", "meta-text.json",     "meta-button-reply.json",
		"meta-list-reply.json",     "meta-image-caption.json",   "meta-location.json",
		"meta-multi-messages.json", "meta-status-read.json",     "meta-status-failed.json",
	};
	static const size_t counts[] = {1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1};
	enum { NF = sizeof names / sizeof names[0] };
	event_decoder_t *dec = new_dec();
	char *bufs[NF];
	size_t lens[NF];
	char *big = big_text_event(EVENT_MAX_TEXT, true);

	for (size_t f = 0; f < NF; f++)
		bufs[f] = read_fixture(names[f], &lens[f]);
	for (int round = 0; round < 200; round++) {
		for (size_t f = 0; f < NF; f++) {
			const struct wa_event *evs;
			size_t n;

			cr_assert_eq(event_decode(dec, bufs[f], lens[f], &evs, &n, NULL, 0), EVENT_OK);
			cr_assert_eq(n, counts[f]);
			for (size_t i = 0; i < n; i++) {
				cr_assert_eq(evs[i].err, EVENT_OK, "%s", names[f]);
				cr_assert_gt(evs[i].id.len, 0);
			}
			if (f == 6)
				STR_EQ(evs[0].reaction_emoji, "\xf0\x9f\x91\x8d");
			if (f == 16)
				STR_EQ(evs[0].id, "wamid.HBgMNTczMDAxMjM0NTY3FQIAERgUOTIwNkJCMEEyQzk4ODNEOTQ2RDcA:read");
		}
		if (round % 50 == 0) {
			const struct wa_event *ev = dec_ok(dec, big, 1);

			cr_assert_eq(ev->text.len, EVENT_MAX_TEXT);
			dec_fail(dec, "{", 1, EVENT_E_JSON);
		}
	}
	for (size_t f = 0; f < NF; f++)
		free(bufs[f]);
	free(big);
	event_decoder_destroy(dec);
}

Test(event_decoder, destroy_accepts_null)
{
	event_decoder_destroy(NULL);
}

Test(event_names, every_code_and_enum_has_a_name)
{
	cr_assert_str_eq(event_err_name(EVENT_OK), "ok");
	cr_assert_str_eq(event_err_name(EVENT_E_JSON), "invalid_json");
	cr_assert_str_eq(event_err_name(EVENT_E_NO_SENDER), "no_sender");
	cr_assert_str_eq(event_err_str(EVENT_E_JSON), "payload is not valid JSON");
	for (int e = 0; e < EVENT_ERR__COUNT; e++) {
		cr_assert_not_null(event_err_name((event_err_t)e));
		cr_assert_not_null(event_err_str((event_err_t)e));
	}
	cr_assert_str_eq(event_err_name(EVENT_ERR__COUNT), "unknown");
	cr_assert_str_eq(event_err_str((event_err_t)-1), "unknown error");
	cr_assert_str_eq(wa_provider_name(WA_PROVIDER_ACS), "acs");
	cr_assert_str_eq(wa_provider_name(WA_PROVIDER_META), "meta");
	cr_assert_str_eq(wa_provider_name(WA_PROVIDER_NONE), "none");
	cr_assert_str_eq(wa_kind_name(WA_KIND_TEXT), "text");
	cr_assert_str_eq(wa_kind_name(WA_KIND_BUTTON_REPLY), "button_reply");
	cr_assert_str_eq(wa_kind_name(WA_KIND_LIST_REPLY), "list_reply");
	cr_assert_str_eq(wa_kind_name(WA_KIND_MEDIA), "media");
	cr_assert_str_eq(wa_kind_name(WA_KIND_LOCATION), "location");
	cr_assert_str_eq(wa_kind_name(WA_KIND_REACTION), "reaction");
	cr_assert_str_eq(wa_kind_name(WA_KIND_STATUS), "status");
	cr_assert_str_eq(wa_kind_name(WA_KIND_VALIDATION), "validation");
	cr_assert_str_eq(wa_kind_name(WA_KIND_UNSUPPORTED), "unsupported");
	cr_assert_str_eq(wa_status_name(WA_STATUS_SENT), "sent");
	cr_assert_str_eq(wa_status_name(WA_STATUS_DELIVERED), "delivered");
	cr_assert_str_eq(wa_status_name(WA_STATUS_READ), "read");
	cr_assert_str_eq(wa_status_name(WA_STATUS_FAILED), "failed");
	cr_assert_str_eq(wa_status_name(WA_STATUS_UNKNOWN), "unknown");
}

/* ---- event_copy: decoded events that outlive their decoder ---- */

static void same_str(struct wa_str a, struct wa_str b, const char *what, const char *fixture, size_t i)
{
	cr_assert_eq(a.len, b.len, "%s event %zu: %s length %zu, want %zu", fixture, i, what, a.len, b.len);
	cr_assert_eq(a.p == NULL, b.p == NULL, "%s event %zu: %s presence", fixture, i, what);
	if (a.len)
		cr_assert(memcmp(a.p, b.p, a.len) == 0, "%s event %zu: %s differs", fixture, i, what);
}

Test(event_copy, copies_outlive_the_decoder_and_equal_a_fresh_decode)
{
	static const char *const fixtures[] = {
		"acs-eg-text.json",          "acs-eg-batch.json",          "acs-ce-text.json",
		"acs-eg-button-reply.json",  "acs-eg-list-reply.json",     "acs-eg-media-image.json",
		"acs-eg-reaction.json",      "acs-eg-status-delivered.json", "acs-eg-status-failed.json",
		"eg-subscription-validation.json", "meta-text.json",       "meta-button-reply.json",
		"meta-list-reply.json",      "meta-image-caption.json",    "meta-location.json",
		"meta-multi-messages.json",  "meta-status-read.json",      "meta-status-failed.json",
	};
	size_t f;

	for (f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
		event_decoder_t *dec = new_dec(), *fresh;
		const struct wa_event *evs, *want;
		struct wa_event *copy;
		char *buf, *other;
		size_t len, n, i, size;
		void *mem;

		buf = read_fixture(fixtures[f], &len);
		cr_assert_eq(event_decode(dec, buf, len, &evs, &n, NULL, 0), EVENT_OK, "%s", fixtures[f]);
		size = event_copy_size(evs, n, buf, len);
		cr_assert_geq(size, n * sizeof(struct wa_event));
		mem = malloc(size);
		cr_assert_not_null(mem);
		copy = event_copy(evs, n, buf, len, mem);
		cr_assert_eq((void *)copy, mem);
		/* the decoder's arena is reused, then freed: the copy must not care */
		other = read_fixture("meta-multi-messages.json", &len);
		(void)event_decode(dec, other, strlen(other), &evs, &i, NULL, 0);
		event_decoder_destroy(dec);
		free(other);

		fresh = new_dec();
		cr_assert_eq(event_decode(fresh, buf, strlen(buf), &want, &i, NULL, 0), EVENT_OK);
		cr_assert_eq(i, n);
		for (i = 0; i < n; i++) {
			const struct wa_event *a = &copy[i], *b = &want[i];

			cr_assert_eq(a->err, b->err);
			cr_assert_eq(a->provider, b->provider);
			cr_assert_eq(a->kind, b->kind);
			cr_assert_eq(a->index, b->index);
			cr_assert_eq(a->status, b->status);
			cr_assert_eq(a->timestamp, b->timestamp);
			cr_assert_str_eq(a->key, b->key);
			cr_assert_str_eq(a->phone, b->phone);
			same_str(a->id, b->id, "id", fixtures[f], i);
			same_str(a->type, b->type, "type", fixtures[f], i);
			same_str(a->user_id, b->user_id, "user_id", fixtures[f], i);
			same_str(a->business_id, b->business_id, "business_id", fixtures[f], i);
			same_str(a->profile_name, b->profile_name, "profile_name", fixtures[f], i);
			same_str(a->message_id, b->message_id, "message_id", fixtures[f], i);
			same_str(a->ref_message_id, b->ref_message_id, "ref_message_id", fixtures[f], i);
			same_str(a->text, b->text, "text", fixtures[f], i);
			same_str(a->reply_id, b->reply_id, "reply_id", fixtures[f], i);
			same_str(a->reply_title, b->reply_title, "reply_title", fixtures[f], i);
			same_str(a->media_caption, b->media_caption, "media_caption", fixtures[f], i);
			same_str(a->location_name, b->location_name, "location_name", fixtures[f], i);
			same_str(a->reaction_emoji, b->reaction_emoji, "reaction_emoji", fixtures[f], i);
			same_str(a->error_code, b->error_code, "error_code", fixtures[f], i);
			same_str(a->error_message, b->error_message, "error_message", fixtures[f], i);
			same_str(a->validation_url, b->validation_url, "validation_url", fixtures[f], i);
		}
		event_decoder_destroy(fresh);
		free(mem);
		free(buf);
	}
}
