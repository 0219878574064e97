/* cli/cmd_run.c - `batlab run`, `batlab cycletest`, `batlab dischargetest`.
 *
 * The work is done by lua/batlab/runner.lua (arguments, cell assignment,
 * tasks, results); this file starts the engine, hands it the arguments and
 * turns what it returns into the exit status. A Lua error escaping the
 * runner is an internal failure: its message and traceback go to stderr.
 */
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "lua/engine.h"

/* The device-selection options, parsed as every command parses them, as
 * the runner's third argument: { sim = true | LAYOUT, devices, seed, port,
 * serial }. The other arguments go to the runner as they are. */
static int push_args(lua_State *L, const char *mode, int argc, char **argv)
{
	struct cli_devsel_opts sel;
	const char *ports[64];      /* --port is repeatable here: cells across units */
	int n = 0, np = 0, r;

	memset(&sel, 0, sizeof sel);
	lua_createtable(L, argc - 1, 0);
	for (int i = 1; i < argc; i++) {
		const char *before = sel.port;

		if ((r = cli_select_option(mode, argc, argv, &i, &sel)) < 0)
			return -r;
		if (r > 0 && sel.port != before) {
			if (np == (int)BL_ARRAY_LEN(ports)) {
				cli_error("%s: at most %d --port", mode, (int)BL_ARRAY_LEN(ports));
				return BL_EXIT_USAGE;
			}
			ports[np++] = sel.port;
		}
		if (r > 0)
			continue;
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, ++n);
	}
	if ((r = cli_select_check(mode, &sel)) != BL_EXIT_OK)
		return r;
	lua_createtable(L, 0, 5);
	if (sel.sim) {
		if (sel.layout)
			lua_pushstring(L, sel.layout);
		else
			lua_pushboolean(L, 1);
		lua_setfield(L, -2, "sim");
	}
	if (sel.devices) {
		lua_pushinteger(L, sel.devices);
		lua_setfield(L, -2, "devices");
	}
	if (sel.seed) {
		lua_pushinteger(L, (lua_Integer)sel.seed);
		lua_setfield(L, -2, "seed");
	}
	if (np > 1 && sel.sim) {
		cli_error("%s: with --sim, --port names one virtual unit", mode);
		return BL_EXIT_USAGE;
	}
	if (np > 1) {
		lua_createtable(L, np, 0);
		for (int k = 0; k < np; k++) {
			lua_pushstring(L, ports[k]);
			lua_rawseti(L, -2, k + 1);
		}
		lua_setfield(L, -2, "port");
	} else if (sel.port) {
		lua_pushstring(L, sel.port);
		lua_setfield(L, -2, "port");
	}
	if (sel.have_serial) {
		lua_pushinteger(L, sel.serial);
		lua_setfield(L, -2, "serial");
	}
	return BL_EXIT_OK;
}

/* `run`, `cycletest` and `dischargetest`: argv[0] is the runner's mode.
 * `check` (a dry run on the virtual Batlab) takes the same arguments and
 * is lua/batlab/check.lua, which calls the runner itself. */
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
	lua_pushstring(L, strcmp(mode, "check") == 0 ? "batlab.check" : "batlab.runner");
	st = bl_engine_pcall(e, 1, 1);
	if (st != LUA_OK) {
		cli_error("%s", lua_tostring(L, -1));
		bl_engine_free(e);
		return BL_EXIT_FAILED;
	}
	lua_getfield(L, -1, "main");
	lua_pushstring(L, mode);
	if ((rc = push_args(L, mode, argc, argv)) != BL_EXIT_OK) {
		bl_engine_free(e);
		return rc;
	}
	st = bl_engine_pcall(e, 3, 1);
	if (st != LUA_OK) {
		cli_error("%s: %s", mode, lua_tostring(L, -1));
		rc = BL_EXIT_FAILED;
	} else {
		rc = (int)luaL_optinteger(L, -1, BL_EXIT_FAILED);
	}
	/* A closed standard output (a pipe whose reader left) failed the
	 * writes to it, nothing else: the run went on and wrote its files.
	 * Say so once, where it can still be read. */
	if (fflush(stdout) != 0 || ferror(stdout))
		cli_error("%s: standard output was closed; the run went on and its results are in its "
		          "folder", mode);
	bl_engine_free(e);
	return rc;
}
