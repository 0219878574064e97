/* cli/cmd_db.c - `batlab db init|push` and `batlab runs`: the lab's
 * PostgreSQL database from the command line (docs/database.md). The work
 * is done by lua/batlab/labcli.lua on the bindings of src/lua/lua_db.c;
 * this file starts the engine and hands it the arguments. */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/cli.h"
#include "lua/engine.h"

int cmd_db(int argc, char **argv)
{
	struct bl_engine *e = bl_engine_new(NULL);
	lua_State *L;
	int rc;

	if (!e) {
		cli_error("%s: cannot start the Lua engine", argv[0]);
		return BL_EXIT_FAILED;
	}
	L = bl_engine_state(e);
	lua_getglobal(L, "require");
	lua_pushstring(L, "batlab.labcli");
	if (bl_engine_pcall(e, 1, 1) != LUA_OK) {
		cli_error("%s", lua_tostring(L, -1));
		bl_engine_free(e);
		return BL_EXIT_FAILED;
	}
	lua_getfield(L, -1, "main");
	lua_pushstring(L, argv[0]);
	lua_createtable(L, argc - 1, 0);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	if (bl_engine_pcall(e, 2, 1) != LUA_OK) {
		cli_error("%s: %s", argv[0], lua_tostring(L, -1));
		rc = BL_EXIT_FAILED;
	} else {
		rc = (int)luaL_optinteger(L, -1, BL_EXIT_FAILED);
	}
	bl_engine_free(e);
	return rc;
}
