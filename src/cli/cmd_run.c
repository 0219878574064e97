/* cli/cmd_run.c - `batlab run` (placeholder until it lands). */
#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("run: not implemented yet");
	return BL_EXIT_USAGE;
}
