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

#endif /* WB_ARGS_H */
