/*
 * log_capture.h - tests that read what the code under test logged: the log
 * goes to an unlinked temporary file between log_capture_start() and
 * log_capture_stop(), and log_capture_text() returns all of it so far.
 * One capture per process at a time; owns the file's descriptor.
 */
#ifndef WB_TEST_LOG_CAPTURE_H
#define WB_TEST_LOG_CAPTURE_H

#include <stdbool.h>

/* Sends log lines of level info and above to a fresh file. false when the
 * file cannot be made (the log stays where it was). */
bool log_capture_start(void);

/* The log back to stderr; the file is closed. Safe without a start. */
void log_capture_stop(void);

/* Everything logged since the start, NUL-terminated (free it), or NULL. */
char *log_capture_text(void);

#endif /* WB_TEST_LOG_CAPTURE_H */
