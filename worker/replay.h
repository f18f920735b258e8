/*
 * replay.h - `wabot-worker replay`: runs a recorded topic through the same
 * pipeline as the worker (decode -> context store -> flow -> reply) and
 * writes what the worker would produce, one JSON line per output record.
 *
 * Input lines are either what `kcat -C -J` writes (an object with topic,
 * partition, offset, key, payload, ts) or plain event payloads, one per
 * line; both may be mixed. Output lines are
 *   {"topic":"wa.outbound","key":"+57...","value":{reply envelope}}
 *   {"topic":"wa.dlq","key":"...","value":{dead-letter record}}
 * or, with --format text, one readable line per reply. --expect compares
 * the output with a golden file and reports the differences.
 */
#ifndef WB_REPLAY_H
#define WB_REPLAY_H

/* Runs the subcommand; argv holds the flags after "replay". Returns the
 * process exit code (0 ok, 1 failure or difference, 2 usage/config). */
int replay_main(int argc, char **argv, char **envp);

#include <stddef.h>
#include <stdio.h>

#include "pipeline.h"

/* For the demo: calls fn for each record of the sample recording embedded
 * in the binary (tests/data/replay/sample.jsonl), in order, skipping
 * tombstones. key may be NULL. fn returns 0 to go on. Returns the number
 * of records, or -1 when fn stopped it. */
typedef int (*replay_record_fn)(void *opaque, const char *key, size_t key_len, const char *payload, size_t len);
long replay_each_demo_record(replay_record_fn fn, void *opaque);

/* Writes o as one readable line (replay --format text: phone masked, step,
 * reply text; or the dead letter's reason) to f. */
void replay_print_text(FILE *f, const struct pipeline_output *o);

#endif /* WB_REPLAY_H */
