/*
 * log_capture.c - see log_capture.h.
 */
#include "log_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

static int capture_fd = -1;

bool log_capture_start(void)
{
	char path[] = "/tmp/wb-test-log-XXXXXX";

	log_capture_stop();
	capture_fd = mkstemp(path);
	if (capture_fd < 0)
		return false;
	unlink(path);
	log_set_fd(capture_fd);
	log_set_level(LOG_INFO);
	return true;
}

void log_capture_stop(void)
{
	log_set_fd(2);
	if (capture_fd >= 0)
		close(capture_fd);
	capture_fd = -1;
}

char *log_capture_text(void)
{
	off_t end;
	char *buf;

	if (capture_fd < 0 || (end = lseek(capture_fd, 0, SEEK_END)) < 0)
		return NULL;
	buf = calloc(1, (size_t)end + 1);
	if (buf && pread(capture_fd, buf, (size_t)end, 0) != (ssize_t)end) {
		free(buf);
		buf = NULL;
	}
	return buf;
}
