/*
 * demo.h - the embedded demo: plays a recorded donations conversation of
 * three interleaved users through the context store, the way the Django bot
 * used its Redis context (get, decide from conversation_step, update_context).
 *
 * Until the conversation engine and the Kafka worker land, this is the
 * README's "main job": it shows the store at work on embedded defaults
 * (memory) or against Redis when REDIS_URL / AZURE_REDIS_CONNECTIONSTRING is
 * set. Owns nothing beyond one call. Thread: the caller's.
 */
#ifndef WB_DEMO_H
#define WB_DEMO_H

#include <stdio.h>

#include "ctx_store.h"

/* Plays the conversation, writing one JSON line per message to out:
 * {"phone":..., "user_says":..., "conversation_step":..., "context":{...}}.
 * Returns WB_OK, or the first store error (the line says which step). */
wb_err_t demo_run(ctx_store_t *cs, FILE *out);

#endif /* WB_DEMO_H */
