/*
 * run_binary.c - see run_binary.h. stderr goes to a temporary file while
 * stdout is read through the pipe, so neither can fill up and block.
 */
#include "run_binary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads all of f into a new NUL-terminated buffer. */
static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int run_binary(struct run_result *r, const char *binary, const char *env, const char *args)
{
	char errfile[] = "/tmp/wb_run_binary_XXXXXX";
	char *cmd;
	size_t cmd_len = strlen(env) + strlen(binary) + strlen(args) + sizeof(errfile) + 32;
	FILE *p, *e;
	int fd = mkstemp(errfile), st;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	cmd = malloc(cmd_len);
	if (!cmd) {
		close(fd);
		unlink(errfile);
		return -1;
	}
	snprintf(cmd, cmd_len, "env -i %s %s %s 2>%s", env, binary, args, errfile);
	p = popen(cmd, "r");
	free(cmd);
	if (!p) {
		close(fd);
		unlink(errfile);
		return -1;
	}
	r->out = slurp(p, &r->out_len);
	st = pclose(p);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	e = fdopen(fd, "r");
	r->err = e ? slurp(e, &r->err_len) : NULL;
	if (e)
		fclose(e);
	else
		close(fd);
	unlink(errfile);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	return 0;
}

void run_result_fini(struct run_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}
