/*
 * args.h - a subcommand's own flags (replay's --input, lag's --json ...),
 * taken out of argv before config_load sees the rest, which are the
 * configuration flags every subcommand shares.
 * Owns nothing: values point into argv.
 */
#ifndef WB_ARGS_H
#define WB_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One flag: "--name value" or "--name=value" when takes_value, else a
 * switch ("--name"), whose slot is set to "1". */
struct args_flag {
	const char *name;   /* with the dashes: "--input" */
	bool takes_value;
	const char **slot;  /* receives the value (borrowed from argv); left as
	                       it was when the flag is absent */
};

/*
 * Removes every flag of flags[0..n) from argv[0..*argc) into its slot,
 * keeping the other arguments in order, and lowers *argc to match. Returns
 * false, with errstr naming the flag, when one that takes a value has none
 * or a switch is given one ("--json=x").
 */
bool args_take(int *argc, char **argv, const struct args_flag *flags, size_t n, char *errstr, size_t errstr_size);

/* A flag's whole-number value: true with *out set when s is a decimal
 * integer in min..max (nothing else around it), else false. */
bool args_i64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif /* WB_ARGS_H */
