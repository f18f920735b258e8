/*
 * worker_proc.h - a `wabot-worker` process running in the background, for
 * integration tests and benchmarks: started with a clean environment plus
 * the given variables, its stderr (JSON log) kept in a file, stopped with
 * SIGTERM (graceful) or SIGKILL (a crash), its exit status collected.
 * Owns the child process (killed on destroy if still running).
 * Not thread-safe: one thread drives a worker_proc.
 */
#ifndef WB_TEST_WORKER_PROC_H
#define WB_TEST_WORKER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct worker_proc;

/*
 * Starts `binary` with argv {binary, args..., NULL} (args NULL-terminated)
 * and an environment of PATH plus env ("NAME=value" strings, NULL-terminated;
 * names such as KAFKA_PROP_session.timeout.ms are fine). stderr goes to
 * log_path (appended; NULL: /dev/null), stdout to /dev/null.
 * NULL when fork fails.
 */
struct worker_proc *worker_proc_start(const char *binary, const char *const *args, const char *const *env,
				      const char *log_path);

pid_t worker_proc_pid(const struct worker_proc *w);

/* Sends sig (SIGTERM, SIGKILL, SIGSTOP ...). */
void worker_proc_signal(struct worker_proc *w, int sig);

/* Waits up to timeout_ms for the exit. Returns the exit code, 128+signal
 * when killed by a signal, or -1 on timeout (still running). */
int worker_proc_wait(struct worker_proc *w, int timeout_ms);

/* true while the process has not exited. */
bool worker_proc_running(struct worker_proc *w);

/* SIGKILL if still running, reap, free. NULL ok. */
void worker_proc_destroy(struct worker_proc *w);

#endif /* WB_TEST_WORKER_PROC_H */
