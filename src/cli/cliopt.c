/* cli/cliopt.c - long options shared by the subcommands: "--name",
 * "--name=value" and "--name value". */
#include <string.h>

#include "cli/cli.h"

bool cli_opt_match(const char *arg, const char *name, bool may_have_value)
{
	size_t n = strlen(name);

	return strncmp(arg, name, n) == 0 &&
	       (arg[n] == '\0' || (may_have_value && arg[n] == '='));
}

const char *cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (a[n] == '=')
		return a + n + 1;
	if (*i + 1 >= argc) {
		cli_error("%s: %s needs a value", cmd, name);
		return NULL;
	}
	return argv[++*i];
}
