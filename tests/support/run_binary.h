/*
 * run_binary.h - runs a program the way a user would (through sh, with a
 * clean environment) and captures its exit code, stdout and stderr whole.
 * Owns the captured text until run_result_fini().
 */
#ifndef WB_RUN_BINARY_H
#define WB_RUN_BINARY_H

#include <stddef.h>

struct run_result {
	int status;  /* exit code, or -1 when it did not exit normally */
	char *out;   /* stdout, NUL-terminated; never NULL after run_binary */
	size_t out_len;
	char *err;   /* stderr, NUL-terminated */
	size_t err_len;
};

/* Runs "env -i <env> <binary> <args>" (env and args are shell text).
 * Returns 0, or -1 when the command could not be started. */
int run_binary(struct run_result *r, const char *binary, const char *env, const char *args);
void run_result_fini(struct run_result *r);

#endif /* WB_RUN_BINARY_H */
