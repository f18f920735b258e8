/*
 * pipeline.c - one record through decode, store, flow and reply encoding
 * (pipeline.h). Owns its decoder, flow session, context buffer and two
 * output buffers; borrows the flow and the store.
 */
#include "pipeline.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "jbuf.h"
#include "log.h"
#include "phone.h"
#include "reply.h"
#include "utf8.h"

/* Compare-and-set retries for one event before giving up on it for now. */
#define PIPELINE_CAS_ATTEMPTS 16

/* Phones of one batch (pipeline_process_batch); records beyond fall back. */
#define BATCH_KEYS 256
/* Records of one batch; beyond, they fall back. */
#define BATCH_RECS 256
#define BATCH_SLOTS 512 /* hash slots, a power of 2 above BATCH_KEYS */

/* One phone of a batch: its context as read, then as the batch's steps
 * left it. */
struct bkey {
	struct jbuf cur;         /* the context after this batch's steps */
	bool stepped;            /* cur is to be written */
	bool failed;             /* read, write or an emit failed: its records fall back */
};

/* One output of a batch, held until its context is saved. */
struct bout {
	size_t rec;
	enum pipeline_out out;
	const char *reason;      /* static */
	size_t key_off, key_len, val_off, val_len; /* in batch.blob */
};

struct batch {
	struct bkey keys[BATCH_KEYS];
	size_t nkeys;
	int16_t slot[BATCH_SLOTS]; /* -1 or an index into keys */
	struct ctx_get_item gets[BATCH_KEYS];
	struct ctx_put_item puts[BATCH_KEYS];
	struct bout *outs;
	size_t nouts, outs_cap;
	struct jbuf blob;        /* keys and values of outs */
	/* what each record added to the pipeline's counters, taken back when
	 * it falls back (pipeline_process counts it again) */
	struct pipeline_stats counted[BATCH_RECS];
};

struct pipeline {
	const flow_t *flow;
	ctx_store_t *cs;
	char acs_api_version[64];
	uint32_t ttl_ms;
	event_decoder_t *dec;
	flow_session_t *fs;
	struct ctx_value ctx;
	struct jbuf out;  /* one reply envelope */
	struct jbuf dlq;  /* one dead-letter record */
	struct pipeline_stats st;
	struct batch *b;  /* pipeline_process_batch's state, made on first use */
	bool in_batch;    /* apply_events steps on b's contexts */
};

pipeline_t *pipeline_new(const flow_t *flow, ctx_store_t *cs, const struct pipeline_opts *opts)
{
	pipeline_t *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->flow = flow;
	p->cs = cs;
	snprintf(p->acs_api_version, sizeof(p->acs_api_version), "%s",
		 opts && opts->acs_api_version ? opts->acs_api_version : REPLY_ACS_API_VERSION);
	p->ttl_ms = opts ? opts->ttl_ms : 0;
	ctx_value_init(&p->ctx);
	jbuf_init(&p->out);
	jbuf_init(&p->dlq);
	p->dec = event_decoder_new();
	p->fs = flow_session_new(flow);
	if (!p->dec || !p->fs) {
		pipeline_destroy(p);
		return NULL;
	}
	return p;
}

void pipeline_destroy(pipeline_t *p)
{
	if (!p)
		return;
	if (p->b) {
		size_t i;

		for (i = 0; i < BATCH_KEYS; i++) {
			ctx_value_fini(&p->b->gets[i].value);
			jbuf_fini(&p->b->keys[i].cur);
		}
		free(p->b->outs);
		jbuf_fini(&p->b->blob);
		free(p->b);
	}
	event_decoder_destroy(p->dec);
	flow_session_destroy(p->fs);
	ctx_value_fini(&p->ctx);
	jbuf_fini(&p->out);
	jbuf_fini(&p->dlq);
	free(p);
}

void pipeline_stats(const pipeline_t *p, struct pipeline_stats *out)
{
	*out = p->st;
}

/* Appends the record value: as a JSON string when it is UTF-8, else base64. */
static void dlq_payload(struct jbuf *b, const char *payload, size_t len)
{
	size_t need;

	if (utf8_valid(payload, len)) {
		jbuf_key(b, "payload");
		jbuf_str(b, payload, len);
		return;
	}
	jbuf_key(b, "payload_base64");
	need = 4 * ((len + 2) / 3);
	jbuf_ch(b, '"');
	if (jbuf_reserve(b, need + 1)) {
		/* EVP_EncodeBlock takes an int length: payloads are bounded far below. */
		int n = EVP_EncodeBlock((unsigned char *)b->p + b->len, (const unsigned char *)payload, (int)len);

		b->len += (size_t)n;
		b->p[b->len] = '\0';
	}
	jbuf_ch(b, '"');
}

struct dlq_info {
	const char *reason; /* stable name: event_err_name() or a wb_err name */
	const char *stage;
	const char *error;  /* one line, no phone numbers or message text */
	const struct wa_event *ev; /* NULL for a whole record */
};

static wb_err_t emit_dlq(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			 const struct dlq_info *di, pipeline_emit_fn emit, void *opaque)
{
	struct jbuf *b = &p->dlq;
	const char *key = src && src->key ? src->key : "";
	size_t key_len = src && src->key ? src->key_len : 0;
	struct pipeline_output o = {PIPELINE_OUT_DLQ, NULL, 0, NULL, 0, di->reason};

	jbuf_reset(b);
	jbuf_ch(b, '{');
	jbuf_key(b, "reason");
	jbuf_cstr_q(b, di->reason);
	jbuf_key(b, "error");
	jbuf_cstr_q(b, di->error);
	jbuf_key(b, "stage");
	jbuf_cstr_q(b, di->stage);
	if (di->ev) {
		jbuf_key(b, "event_index");
		jbuf_u64(b, di->ev->index);
		if (di->ev->id.len) {
			jbuf_key(b, "event_id");
			jbuf_str(b, di->ev->id.p, di->ev->id.len);
		}
		if (di->ev->provider != WA_PROVIDER_NONE) {
			jbuf_key(b, "provider");
			jbuf_cstr_q(b, wa_provider_name(di->ev->provider));
		}
		if (!key_len && di->ev->key[0]) {
			key = di->ev->key;
			key_len = strlen(key);
		}
	}
	jbuf_key(b, "source");
	jbuf_ch(b, '{');
	if (src && src->topic) {
		jbuf_key(b, "topic");
		jbuf_cstr_q(b, src->topic);
	}
	if (src && src->partition >= 0) {
		jbuf_key(b, "partition");
		jbuf_i64(b, src->partition);
	}
	if (src && src->offset >= 0) {
		jbuf_key(b, "offset");
		jbuf_i64(b, src->offset);
	}
	if (src && src->key) {
		jbuf_key(b, "key");
		jbuf_str(b, src->key, src->key_len);
	}
	jbuf_ch(b, '}');
	dlq_payload(b, payload, len);
	jbuf_ch(b, '}');
	if (b->oom)
		return WB_ERR_NOMEM;
	p->st.dlq++;
	log_at(LOG_WARN, "dead-lettered", LOG_STR("reason", di->reason), LOG_STR("stage", di->stage),
	       LOG_STR("error", di->error), LOG_PHONE("key", key_len ? key : ""),
	       LOG_INT("offset", src ? src->offset : -1));
	o.key = key;
	o.key_len = key_len;
	o.value = b->p;
	o.len = b->len;
	return emit(opaque, &o);
}

/* Encodes and emits the replies of one applied (or duplicate) event. */
static wb_err_t emit_replies(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			     const struct wa_event *ev, const struct flow_result *res, pipeline_emit_fn emit,
			     void *opaque)
{
	struct reply_target t = {
		.provider = ev->provider,
		.to = ev->key,
		.business_id = ev->business_id,
		.in_reply_to = ev->id,
		.conversation_step = res->step,
		.acs_api_version = p->acs_api_version,
	};
	struct pipeline_output o = {PIPELINE_OUT_REPLY, ev->key, event_key_len(ev), NULL, 0, NULL};
	size_t i;
	wb_err_t err;

	for (i = 0; i < res->nreplies; i++) {
		char errstr[160];

		jbuf_reset(&p->out);
		err = reply_encode(&p->out, &t, (unsigned)i, &res->replies[i], errstr, sizeof(errstr));
		if (err == WB_ERR_NOMEM)
			return err;
		if (err != WB_OK) {
			struct dlq_info di = {wb_err_name(err), "reply", errstr, ev};

			if ((err = emit_dlq(p, src, payload, len, &di, emit, opaque)) != WB_OK)
				return err;
			continue;
		}
		o.value = p->out.p;
		o.len = p->out.len;
		err = emit(opaque, &o);
		if (err != WB_OK)
			return err;
		p->st.replies++;
	}
	return WB_OK;
}

/* The counters of one flow step's outcome. */
static void count_step(pipeline_t *p, const struct wa_event *ev, const struct flow_result *res)
{
	if (res->duplicate)
		p->st.duplicates++;
	else if (ev->kind == WA_KIND_STATUS)
		p->st.statuses++;
	if (res->fresh_start)
		p->st.fresh_starts++;
}

/* A flow step that failed: out of memory is returned, anything else
 * dead-letters the event. */
static wb_err_t step_failed(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			    const struct wa_event *ev, wb_err_t err, pipeline_emit_fn emit, void *opaque)
{
	struct dlq_info di = {wb_err_name(err), "flow", wb_err_str(err), ev};

	return err == WB_ERR_NOMEM ? err : emit_dlq(p, src, payload, len, &di, emit, opaque);
}

/* Applies one decoded, usable event: read, step, write (retrying lost
 * compare-and-set races), then emit. */
static wb_err_t apply_event(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			    const struct wa_event *ev, int64_t now_s, pipeline_emit_fn emit, void *opaque)
{
	struct flow_pos pos = {src ? src->partition : -1, src ? src->offset : -1, src ? src->timestamp_ms : -1};
	struct flow_result res;
	wb_err_t err;
	int attempt;

	for (attempt = 0;; attempt++) {
		err = ctx_store_get(p->cs, ev->key, &p->ctx);
		if (err != WB_OK)
			break;
		err = flow_step(p->fs, p->ctx.json, p->ctx.len, p->ctx.found, ev, &pos, now_s, &res);
		if (err != WB_OK)
			return step_failed(p, src, payload, len, ev, err, emit, opaque);
		if (!res.ctx_json)
			break;
		err = ctx_store_put(p->cs, ev->key, res.ctx_json, res.ctx_len, p->ctx.found ? p->ctx.version : 0,
				    p->ttl_ms, NULL);
		if (err != WB_ERR_CONFLICT || attempt + 1 >= PIPELINE_CAS_ATTEMPTS)
			break;
		p->st.conflicts++;
	}
	if (err != WB_OK) {
		char line[160];
		struct dlq_info di = {wb_err_name(err), "store", line, ev};

		if (wb_err_is_retriable(err))
			return err; /* the store is down or busy: try the record again later */
		snprintf(line, sizeof(line), "context store refused the context: %s", wb_err_str(err));
		return emit_dlq(p, src, payload, len, &di, emit, opaque);
	}
	count_step(p, ev, &res);
	return emit_replies(p, src, payload, len, ev, &res, emit, opaque);
}

wb_err_t pipeline_dead_letter(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			      const char *reason, const char *stage, const char *error, pipeline_emit_fn emit,
			      void *opaque)
{
	struct dlq_info di = {reason, stage, error, NULL};

	if (src && src->nlanes > 1) {
		const struct wa_event *evs = NULL;
		size_t n = 0;

		if (event_decode(p->dec, payload, len, &evs, &n, NULL, 0) != EVENT_OK)
			n = 0;
		if (pipeline_home_lane(evs, n, src->key, src->key_len, src->nlanes) != src->lane)
			return WB_OK;
	}
	return emit_dlq(p, src, payload, len, &di, emit, opaque);
}

uint32_t pipeline_home_lane(const struct wa_event *evs, size_t n, const char *key, size_t key_len, uint32_t nlanes)
{
	size_t i;

	if (nlanes <= 1)
		return 0;
	for (i = 0; i < n; i++)
		if (evs[i].key[0])
			return (uint32_t)(event_key_hash(&evs[i]) % nlanes);
	if (key && key_len)
		return (uint32_t)(phone_hash(key, key_len) % nlanes);
	return 0;
}

uint32_t pipeline_event_lane(const struct wa_event *ev, uint32_t home, uint32_t nlanes)
{
	if (nlanes <= 1)
		return 0;
	return ev->key[0] ? (uint32_t)(event_key_hash(ev) % nlanes) : home;
}

/* ------------------------------------------------------------------------
 * Batches (pipeline_process_batch): read every phone's context in one
 * store call, step the records in order on those contexts, write each
 * phone's final context in one more call, then emit what the records of
 * saved contexts produced. A record the batch cannot finish falls back to
 * the caller, and so does every later record of its phones: per-phone
 * order holds because they are then processed one by one, in order.
 */

static struct batch *batch_begin(pipeline_t *p)
{
	struct batch *b = p->b;
	size_t i;

	if (!b) {
		if (!(b = p->b = calloc(1, sizeof(*b))))
			return NULL;
		for (i = 0; i < BATCH_KEYS; i++) {
			ctx_value_init(&b->gets[i].value);
			jbuf_init(&b->keys[i].cur);
		}
		jbuf_init(&b->blob);
	}
	b->nkeys = 0;
	memset(b->slot, 0xff, sizeof(b->slot));
	b->nouts = 0;
	jbuf_reset(&b->blob);
	return b;
}

/* The counters of a record: d = after - before, and taking d back from st. */
#define PIPELINE_STATS_FIELDS(X)                                                                                       \
	X(records) X(events) X(replies) X(dlq) X(duplicates) X(statuses) X(ignored) X(conflicts) X(fresh_starts)   \
	X(key_mismatch)

static void stats_diff(struct pipeline_stats *d, const struct pipeline_stats *after,
		       const struct pipeline_stats *before)
{
#define STATS_DIFF_(f) d->f = after->f - before->f;
	PIPELINE_STATS_FIELDS(STATS_DIFF_)
#undef STATS_DIFF_
}

static void stats_take_back(struct pipeline_stats *st, const struct pipeline_stats *d)
{
#define STATS_SUB_(f) st->f -= d->f;
	PIPELINE_STATS_FIELDS(STATS_SUB_)
#undef STATS_SUB_
}

/* The index of key in the batch; added when add (and there is room), else -1. */
static int batch_key(struct batch *b, const char *key, bool add)
{
	size_t len = strlen(key);
	uint32_t h = (uint32_t)phone_hash(key, len) & (BATCH_SLOTS - 1);
	int k;

	for (;; h = (h + 1) & (BATCH_SLOTS - 1)) {
		if ((k = b->slot[h]) < 0)
			break;
		if (strcmp(b->gets[k].key, key) == 0)
			return k;
	}
	if (!add || b->nkeys >= BATCH_KEYS)
		return -1;
	k = (int)b->nkeys++;
	b->slot[h] = (int16_t)k;
	b->gets[k].key = key;
	b->keys[k].stepped = false;
	b->keys[k].failed = false;
	return k;
}

/* true for an event that reads and writes its phone's context (the events
 * apply_events hands to apply_event / step_event). */
static bool batch_event(const struct wa_event *ev)
{
	return ev->err == EVENT_OK && ev->kind != WA_KIND_VALIDATION && ev->key[0];
}

/* Whether a key of rec's own events failed; with mark, marks them all failed. */
static bool rec_keys(pipeline_t *p, const struct pipeline_rec *r, bool mark)
{
	uint32_t home = r->src.nlanes > 1 ? pipeline_home_lane(r->evs, r->nevs, r->src.key, r->src.key_len,
								r->src.nlanes)
					  : 0;
	bool failed = false;
	size_t i;

	for (i = 0; i < r->nevs; i++) {
		const struct wa_event *ev = &r->evs[i];
		int k;

		if (!batch_event(ev) ||
		    (r->src.nlanes > 1 && pipeline_event_lane(ev, home, r->src.nlanes) != r->src.lane))
			continue;
		if ((k = batch_key(p->b, ev->key, false)) < 0)
			continue;
		failed |= p->b->keys[k].failed;
		if (mark)
			p->b->keys[k].failed = true;
	}
	return failed;
}

struct bemit {
	struct batch *b;
	size_t rec;
};

/* Holds an output until the batch's contexts are saved. */
static wb_err_t batch_emit(void *opaque, const struct pipeline_output *o)
{
	struct bemit *be = opaque;
	struct batch *b = be->b;
	struct bout *x;

	if (b->nouts == b->outs_cap) {
		size_t cap = b->outs_cap ? 2 * b->outs_cap : 128;
		struct bout *n = realloc(b->outs, cap * sizeof(*n));

		if (!n)
			return WB_ERR_NOMEM;
		b->outs = n;
		b->outs_cap = cap;
	}
	x = &b->outs[b->nouts];
	x->rec = be->rec;
	x->out = o->out;
	x->reason = o->reason;
	x->key_off = b->blob.len;
	x->key_len = o->key_len;
	if (o->key_len)
		jbuf_raw(&b->blob, o->key, o->key_len);
	jbuf_ch(&b->blob, '\0');
	x->val_off = b->blob.len;
	x->val_len = o->len;
	jbuf_raw(&b->blob, o->value, o->len);
	jbuf_ch(&b->blob, '\0');
	if (b->blob.oom)
		return WB_ERR_NOMEM;
	b->nouts++;
	return WB_OK;
}

/* apply_event on the batch's context of ev's phone (no store call). */
static wb_err_t step_event(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			   const struct wa_event *ev, int64_t now_s, pipeline_emit_fn emit, void *opaque)
{
	struct batch *b = p->b;
	int k = batch_key(b, ev->key, false);
	struct flow_pos pos = {src->partition, src->offset, src->timestamp_ms};
	struct flow_result res;
	struct bkey *bk;
	struct ctx_value *v;
	wb_err_t err;

	if (k < 0)
		return WB_ERR_INVALID; /* not read: cannot happen for a record the batch took */
	bk = &b->keys[k];
	v = &b->gets[k].value;
	if (bk->stepped)
		err = flow_step(p->fs, bk->cur.p, bk->cur.len, true, ev, &pos, now_s, &res);
	else
		err = flow_step(p->fs, v->json, v->len, v->found, ev, &pos, now_s, &res);
	if (err != WB_OK)
		return step_failed(p, src, payload, len, ev, err, emit, opaque);
	count_step(p, ev, &res);
	/* the replies first: they may borrow from the context read, which
	 * bk->cur is about to be overwritten with */
	if ((err = emit_replies(p, src, payload, len, ev, &res, emit, opaque)) != WB_OK)
		return err;
	if (res.ctx_json) {
		jbuf_reset(&bk->cur);
		jbuf_raw(&bk->cur, res.ctx_json, res.ctx_len);
		if (bk->cur.oom)
			return WB_ERR_NOMEM;
		bk->stepped = true;
	}
	return WB_OK;
}

/* The events of a decoded record: the key check, then each event of this
 * lane. */
static wb_err_t apply_events(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			     const struct wa_event *evs, size_t n, int64_t now_s, pipeline_emit_fn emit, void *opaque)
{
	uint32_t nlanes = src ? src->nlanes : 0, lane = src ? src->lane : 0, home = 0;
	size_t i;
	wb_err_t err;

	if (nlanes > 1)
		home = pipeline_home_lane(evs, n, src->key, src->key_len, nlanes);
	if (nlanes <= 1 || lane == home) {
		for (i = 0; i < n && !evs[i].key[0]; i++)
			;
		if (i < n && (!src || !src->key || src->key_len != event_key_len(&evs[i]) ||
			      memcmp(src->key, evs[i].key, src->key_len) != 0))
			p->st.key_mismatch++;
	}
	for (i = 0; i < n; i++) {
		const struct wa_event *ev = &evs[i];

		if (nlanes > 1 && pipeline_event_lane(ev, home, nlanes) != lane)
			continue;
		p->st.events++;
		if (ev->err != EVENT_OK) {
			char line[200];
			struct dlq_info di = {event_err_name(ev->err), "event", line, ev};

			snprintf(line, sizeof(line), "%s%s%s", event_err_str(ev->err), ev->err_field ? ": " : "",
				 ev->err_field ? ev->err_field : "");
			if ((err = emit_dlq(p, src, payload, len, &di, emit, opaque)) != WB_OK)
				return err;
			continue;
		}
		if (ev->kind == WA_KIND_VALIDATION || !ev->key[0]) {
			p->st.ignored++;
			log_at(LOG_INFO, "event needs no conversation step", LOG_STR("kind", wa_kind_name(ev->kind)),
			       LOG_INT("offset", src ? src->offset : -1));
			continue;
		}
		err = p->in_batch ? step_event(p, src, payload, len, ev, now_s, emit, opaque)
				  : apply_event(p, src, payload, len, ev, now_s, emit, opaque);
		if (err != WB_OK)
			return err;
	}
	return WB_OK;
}

wb_err_t pipeline_process(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
			  int64_t now_s, pipeline_emit_fn emit, void *opaque)
{
	const struct wa_event *evs;
	char errstr[200];
	event_err_t de;
	size_t n;

	de = event_decode(p->dec, payload, len, &evs, &n, errstr, sizeof(errstr));
	if (de != EVENT_OK) {
		struct dlq_info di = {event_err_name(de), "decode", errstr, NULL};

		p->st.records++;
		if (src && src->nlanes > 1 && pipeline_home_lane(NULL, 0, src->key, src->key_len, src->nlanes) != src->lane)
			return WB_OK;
		return emit_dlq(p, src, payload, len, &di, emit, opaque);
	}
	return pipeline_process_decoded(p, src, payload, len, evs, n, now_s, emit, opaque);
}

wb_err_t pipeline_process_decoded(pipeline_t *p, const struct pipeline_source *src, const char *payload, size_t len,
				  const struct wa_event *evs, size_t n, int64_t now_s, pipeline_emit_fn emit,
				  void *opaque)
{
	struct pipeline_stats before = p->st;
	wb_err_t err;

	p->st.records++;
	err = apply_events(p, src, payload, len, evs, n, now_s, emit, opaque);
	if (err != WB_OK)
		p->st = before; /* the record is tried again: it counts when it succeeds */
	return err;
}

void pipeline_process_batch(pipeline_t *p, struct pipeline_rec *recs, size_t n, int64_t now_s,
			    pipeline_emit_fn emit)
{
	struct batch *b = batch_begin(p);
	ctx_hold_t *hold = NULL;
	bool full = false;
	size_t i, j, m, o;

	/* the phones, read in one call */
	for (i = 0; i < n; i++) {
		struct pipeline_rec *r = &recs[i];
		uint32_t home;

		r->err = WB_OK;
		r->fallback = !b || full || !r->evs || i >= BATCH_RECS;
		if (r->fallback)
			continue;
		home = r->src.nlanes > 1 ? pipeline_home_lane(r->evs, r->nevs, r->src.key, r->src.key_len,
							      r->src.nlanes)
					 : 0;
		for (j = 0; j < r->nevs && !r->fallback; j++) {
			const struct wa_event *ev = &r->evs[j];

			if (!batch_event(ev) ||
			    (r->src.nlanes > 1 && pipeline_event_lane(ev, home, r->src.nlanes) != r->src.lane))
				continue;
			if (batch_key(b, ev->key, true) < 0)
				full = r->fallback = true; /* this record and every later one */
		}
	}
	if (!b)
		return;
	/* held: the write below is of the same keys (on Redis, under WATCH) */
	if (b->nkeys)
		(void)ctx_store_get_many_held(p->cs, b->gets, b->nkeys, &hold);
	for (i = 0; i < b->nkeys; i++)
		b->keys[i].failed = b->gets[i].err != WB_OK;

	/* the steps, in record order, on those contexts; outputs held */
	p->in_batch = true;
	for (i = 0; i < n; i++) {
		struct pipeline_rec *r = &recs[i];
		struct bemit be = {b, i};
		struct pipeline_stats before = p->st;

		if (r->fallback)
			continue;
		p->st.records++;
		if (!rec_keys(p, r, false))
			r->err = apply_events(p, &r->src, r->payload, r->len, r->evs, r->nevs, now_s, batch_emit, &be);
		stats_diff(&b->counted[i], &p->st, &before);
		if (r->err != WB_OK || rec_keys(p, r, false)) {
			/* not written: later records of its phones wait for it */
			r->fallback = true;
			(void)rec_keys(p, r, true);
			stats_take_back(&p->st, &b->counted[i]);
		}
	}
	p->in_batch = false;

	/* each stepped phone's last context, written in one call */
	for (i = 0, m = 0; i < b->nkeys; i++) {
		struct bkey *bk = &b->keys[i];
		struct ctx_value *v = &b->gets[i].value;

		if (bk->failed || !bk->stepped)
			continue;
		b->puts[m] = (struct ctx_put_item){
			.key = b->gets[i].key,
			.json = bk->cur.p,
			.len = bk->cur.len,
			.expected_version = v->found ? v->version : 0,
			.ttl_ms = p->ttl_ms,
		};
		m++;
	}
	(void)ctx_store_put_many_held(p->cs, hold, b->puts, m); /* m may be 0: releases the hold */
	for (i = 0; i < m; i++)
		if (b->puts[i].err != WB_OK)
			b->keys[batch_key(b, b->puts[i].key, false)].failed = true;

	/* the outputs of every record whose contexts are saved, in order */
	for (i = 0, o = 0; i < n; i++) {
		struct pipeline_rec *r = &recs[i];
		bool counted = !r->fallback; /* phase B counted it and kept it */

		if (!r->fallback && rec_keys(p, r, false))
			r->fallback = true;

		for (; o < b->nouts && b->outs[o].rec == i; o++) {
			const struct bout *x = &b->outs[o];
			struct pipeline_output out = {x->out,     b->blob.p + x->key_off, x->key_len,
						      b->blob.p + x->val_off, x->val_len, x->reason};

			if (r->fallback)
				continue;
			if ((r->err = emit(r->opaque, &out)) != WB_OK)
				r->fallback = true;
		}
		if (r->fallback)
			(void)rec_keys(p, r, true);
		if (r->fallback && counted)
			stats_take_back(&p->st, &b->counted[i]);
	}
}
