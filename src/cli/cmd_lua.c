/* cli/cmd_lua.c - `batlab lua [-e CHUNK]... [FILE [ARGS...]]`: run Lua with
 * the engine loaded, like lua(1). This is also how the Lua tests run, so
 * that they exercise the real bindings.
 *
 * Exit status: 0 when everything ran, 1 when a chunk raised an error or a
 * stock test (ch:start_test) was cut short, 2 for usage errors and for a
 * FILE that is missing, unreadable or does not compile.
 */
#include <stdio.h>
#include <string.h>

#include <lua.h>

#include "cli/cli.h"
#include "lua/engine.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: batlab lua [-e CHUNK]... [FILE [ARGS...]]\n"
	        "\n"
	        "Run Lua with the batlab module loaded (global 'batlab'), like lua(1).\n"
	        "\n"
	        "  -e CHUNK   run CHUNK (in order, before FILE)\n"
	        "  FILE       run FILE with the global 'arg' = {[0]=FILE, ARGS...};\n"
	        "             '-' reads standard input\n"
	        "  --         end of options\n"
	        "\n"
	        "Exit status: 0 ok, 1 a chunk raised an error or a stock test\n"
	        "(ch:start_test) was still running at the end (it is cut short: its\n"
	        "channel made safe), 2 usage error or a FILE that is missing or does not\n"
	        "compile.\n");
}

int cli_lua_report(struct bl_engine *e, int st)
{
	lua_State *L = bl_engine_state(e);
	const char *msg = lua_tostring(L, -1);

	cli_error("%s", msg ? msg : "(error object is not a string)");
	lua_pop(L, 1);
	return st == LUA_ERRSYNTAX || st == LUA_ERRFILE ? BL_EXIT_USAGE : BL_EXIT_FAILED;
}

int cli_lua_end_tests(struct bl_engine *e, const char *cmd, const char *why)
{
	lua_State *L = bl_engine_state(e);
	lua_Integer n = 0;
	int top = lua_gettop(L);

	/* Before the state closes: its collector would close the test logs
	 * before the tasks that write them end. */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "batlab.seed");
	if (bl_engine_pcall(e, 1, 1) == LUA_OK && lua_istable(L, -1)) {
		lua_getfield(L, -1, "end_all");
		lua_pushstring(L, why);
		if (bl_engine_pcall(e, 1, 1) == LUA_OK)
			n = lua_tointeger(L, -1);
		else
			cli_error("%s: ending the tests: %s", cmd, lua_tostring(L, -1));
	}
	lua_settop(L, top);
	if (n > 0)
		cli_error("%s: %lld test%s still running at the end (started with start_test) and cut short: "
		          "%s made safe", cmd, (long long)n, n > 1 ? "s were" : " was",
		          n > 1 ? "their channels were" : "its channel was");
	return (int)n;
}

int cmd_lua(int argc, char **argv)
{
	struct bl_engine_opts opts = {0};
	struct bl_engine *e;
	const char *file = NULL;
	int i, st = LUA_OK, rc = BL_EXIT_OK, nchunks = 0;

	/* First pass: validate the options before creating anything. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return BL_EXIT_OK;
		}
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-e") == 0) {
			if (i + 1 >= argc) {
				cli_error("lua: -e needs a chunk of Lua");
				usage(stderr);
				return BL_EXIT_USAGE;
			}
			i++;
			nchunks++;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			cli_error("lua: unknown option '%s'", argv[i]);
			usage(stderr);
			return BL_EXIT_USAGE;
		}
		break;
	}
	if (i < argc)
		file = argv[i];
	if (!file && nchunks == 0) {
		usage(stderr);
		return BL_EXIT_USAGE;
	}

	e = bl_engine_new(&opts);
	if (!e) {
		cli_error("lua: cannot start the Lua engine");
		return BL_EXIT_FAILED;
	}
	/* `arg` exists before the -e chunks run, as in lua(1). */
	st = bl_engine_set_arg(e, file, file ? argc - i - 1 : 0, file ? argv + i + 1 : NULL);
	if (st != LUA_OK)
		rc = cli_lua_report(e, st);

	for (int j = 1; rc == BL_EXIT_OK && j < argc && argv[j] != file; j++) {
		if (strcmp(argv[j], "--") == 0)
			break;
		if (strcmp(argv[j], "-e") == 0) {
			st = bl_engine_dostring(e, argv[j + 1], "=(command line)");
			if (st != LUA_OK)
				rc = cli_lua_report(e, st);
			j++;
		}
	}
	if (rc == BL_EXIT_OK && file) {
		st = bl_engine_dofile(e, file, argc - i - 1, argv + i + 1);
		if (st != LUA_OK)
			rc = cli_lua_report(e, st);
	}
	if (cli_lua_end_tests(e, "lua", "the program is exiting") > 0 && rc == BL_EXIT_OK)
		rc = BL_EXIT_FAILED;
	bl_engine_free(e);
	return rc;
}
