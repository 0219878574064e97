/* cli/cmd_lua.c - `batlab lua FILE [ARGS]`: run a Lua file with the engine
 * loaded (placeholder until the engine lands). */
#include "cli/cli.h"

int cmd_lua(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("lua: not implemented yet");
	return BL_EXIT_USAGE;
}
