/* cli/cmd_shell.c - `batlab shell` (placeholder until it lands). */
#include "cli/cli.h"

int cmd_shell(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("shell: not implemented yet");
	return BL_EXIT_USAGE;
}
