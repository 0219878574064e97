/* cli/cmd_report.c - `batlab report RUN_DIR [--out FILE]` and
 * `batlab report --compare RUN_DIR...`: a run directory as an HTML page
 * with plots.
 *
 * The work is done by lua/batlab/report/ (reading the run, the plots, the
 * page); this file starts the engine, hands it the arguments and returns
 * the exit status it gives. No device is opened. `batlab analyze RUN_DIR`
 * and `batlab match RUN_DIR...` are the same with lua/batlab/analyze.lua
 * and lua/batlab/match.lua.
 */
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "cli/cli.h"
#include "lua/engine.h"

int cmd_report(int argc, char **argv)
{
	struct bl_engine *e = bl_engine_new(NULL);
	const char *cmd = strcmp(argv[0], "analyze") == 0 || strcmp(argv[0], "match") == 0 ? argv[0] : "report";
	lua_State *L;
	int st, rc;

	if (!e) {
		cli_error("%s: cannot start the Lua engine", cmd);
		return BL_EXIT_FAILED;
	}
	L = bl_engine_state(e);
	lua_getglobal(L, "require");
	lua_pushfstring(L, "batlab.%s", cmd);
	st = bl_engine_pcall(e, 1, 1);
	if (st != LUA_OK) {
		cli_error("%s: %s", cmd, lua_tostring(L, -1));
		bl_engine_free(e);
		return BL_EXIT_FAILED;
	}
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc - 1, 0);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	st = bl_engine_pcall(e, 1, 1);
	if (st != LUA_OK) {
		cli_error("%s: %s", cmd, lua_tostring(L, -1));
		rc = BL_EXIT_FAILED;
	} else {
		rc = (int)luaL_optinteger(L, -1, BL_EXIT_FAILED);
	}
	bl_engine_free(e);
	return rc;
}
