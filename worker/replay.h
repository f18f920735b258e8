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

/* `wabot-worker demo`: replays the sample recording embedded in the binary
 * (tests/data/replay/sample.jsonl) in text format. Same exit codes. */
int replay_demo(int argc, char **argv, char **envp);

#endif /* WB_REPLAY_H */
