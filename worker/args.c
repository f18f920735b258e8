/*
 * args.c - a subcommand's own flags out of argv (args.h).
 */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The flag argv[*i] names, with its value taken (and *i advanced past a
 * separate value): 1 taken, 0 not one of flags, -1 error. */
static int take_one(int argc, char **argv, int *i, const struct args_flag *f, char *errstr, size_t errstr_size)
{
	size_t nl = strlen(f->name);
	const char *a = argv[*i];

	if (strncmp(a, f->name, nl) != 0 || (a[nl] != '\0' && a[nl] != '='))
		return 0;
	if (!f->takes_value) {
		if (a[nl] == '=') {
			snprintf(errstr, errstr_size, "%s: takes no value", f->name);
			return -1;
		}
		*f->slot = "1";
		return 1;
	}
	if (a[nl] == '=') {
		*f->slot = a + nl + 1;
		return 1;
	}
	if (*i + 1 >= argc) {
		snprintf(errstr, errstr_size, "%s: needs a value", f->name);
		return -1;
	}
	*f->slot = argv[++*i];
	return 1;
}

bool args_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || errno == ERANGE || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool args_take(int *argc, char **argv, const struct args_flag *flags, size_t n, char *errstr, size_t errstr_size)
{
	int i, out = 0;

	for (i = 0; i < *argc; i++) {
		int taken = 0;
		size_t k;

		for (k = 0; k < n && !taken; k++)
			if ((taken = take_one(*argc, argv, &i, &flags[k], errstr, errstr_size)) < 0)
				return false;
		if (!taken)
			argv[out++] = argv[i];
	}
	*argc = out;
	return true;
}
