/* cli/cmd_sim.c - `batlab sim`: serve virtual Batlabs (placeholder until
 * the pty server lands). */
#include "cli/cli.h"

int cmd_sim(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("sim: not implemented yet");
	return BL_EXIT_USAGE;
}
