/* cli/cmd_run.c - `batlab run`, `batlab cycletest`, `batlab dischargetest`.
 *
 * The work is done by lua/batlab/runner.lua (arguments, cell assignment,
 * tasks, results); this file starts the engine, hands it the arguments and
 * turns what it returns into the exit status. A Lua error escaping the
 * runner is an internal failure: its message and traceback go to stderr.
 */
#include <stdio.h>

#include <lua.h>
#include <lauxlib.h>

#include "cli/cli.h"
#include "lua/engine.h"

/* `run`, `cycletest` and `dischargetest`: argv[0] is the runner's mode. */
int cmd_run(int argc, char **argv)
{
	const char *mode = argv[0];
	struct bl_engine *e = bl_engine_new(NULL);
	lua_State *L;
	int st, rc;

	if (!e) {
		cli_error("%s: cannot start the Lua engine", mode);
		return BL_EXIT_FAILED;
	}
	L = bl_engine_state(e);
	lua_getglobal(L, "require");
	lua_pushstring(L, "batlab.runner");
	st = bl_engine_pcall(e, 1, 1);
	if (st != LUA_OK) {
		cli_error("%s", lua_tostring(L, -1));
		bl_engine_free(e);
		return BL_EXIT_FAILED;
	}
	lua_getfield(L, -1, "main");
	lua_pushstring(L, mode);
	lua_createtable(L, argc - 1, 0);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	st = bl_engine_pcall(e, 2, 1);
	if (st != LUA_OK) {
		cli_error("%s: %s", mode, lua_tostring(L, -1));
		rc = BL_EXIT_FAILED;
	} else {
		rc = (int)luaL_optinteger(L, -1, BL_EXIT_FAILED);
	}
	fflush(stdout);
	bl_engine_free(e);
	return rc;
}
