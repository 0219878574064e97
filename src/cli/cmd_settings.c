/* cli/cmd_settings.c - `batlab settings view FILE [--set KEY=VALUE]...`:
 * the seed's `view settings` for a file, without a device. The file is
 * read and checked by lua/batlab/settings.lua, the same code the stock
 * tests use: every setting is printed with its unit and where it came from
 * (the file, a default, --set); warnings go to stderr; a bad file gets
 * every problem on stderr and exit 2, like `batlab cycletest` would.
 */
#include <stdio.h>
#include <string.h>

#include <lua.h>

#include "cli/cli.h"
#include "lua/engine.h"

#define MAX_SETS 64

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: batlab settings view FILE [--set KEY=VALUE]...\n"
	        "\n"
	        "Read a Lexcelon settings file (the Python library's flat JSON or the GUI's\n"
	        "cell playlist) and print every setting: its value with its unit, what it\n"
	        "does, and '(default)' or '(--set)' when the file did not give it. No\n"
	        "device is opened.\n"
	        "\n"
	        "  --set KEY=VALUE  override a setting, as for 'batlab cycletest'; repeatable\n"
	        "\n"
	        "Warnings go to standard error. Exit status: 0 the file is good, 2 usage\n"
	        "error or a file that would be refused (every problem is listed).\n");
}

/* settings.load(file, sets) then settings.view(s, info): the text to print
 * and the warnings, or the error. Lua stack: the results. */
static int view(struct bl_engine *e, const char *file, const char **sets, int nsets)
{
	lua_State *L = bl_engine_state(e);
	int st;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "batlab.settings");
	if ((st = bl_engine_pcall(e, 1, 1)) != LUA_OK)
		return cli_lua_report(e, st);
	lua_getfield(L, -1, "load");
	lua_pushstring(L, file);
	lua_createtable(L, nsets, 0);
	for (int i = 0; i < nsets; i++) {
		lua_pushstring(L, sets[i]);
		lua_rawseti(L, -2, i + 1);
	}
	if ((st = bl_engine_pcall(e, 2, 3)) != LUA_OK)
		return cli_lua_report(e, st);
	if (lua_isnil(L, -3)) {
		/* One line per problem, each naming the file and the key. */
		const char *err = lua_tostring(L, -2);
		for (const char *p = err ? err : "refused"; *p;) {
			const char *nl = strchr(p, '\n');
			int len = nl ? (int)(nl - p) : (int)strlen(p);
			cli_error("settings view: %.*s", len, p);
			p += len + (nl ? 1 : 0);
		}
		return BL_EXIT_USAGE;
	}
	for (lua_Integer i = 1; lua_rawgeti(L, -2, i) == LUA_TSTRING; i++) {
		cli_error("warning: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getfield(L, -4, "view");
	lua_pushvalue(L, -4);   /* s */
	lua_pushvalue(L, -3);   /* info */
	if ((st = bl_engine_pcall(e, 2, 1)) != LUA_OK)
		return cli_lua_report(e, st);
	fputs(lua_tostring(L, -1), stdout);
	return BL_EXIT_OK;
}

int cmd_settings(int argc, char **argv)
{
	const char *sets[MAX_SETS], *file = NULL;
	int nsets = 0, npos = 0, rc;
	struct bl_engine *e;

	for (int i = 1; i < argc; i++) {
		const char *v;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return BL_EXIT_OK;
		}
		if (cli_opt_match(argv[i], "--set", true)) {
			if (!(v = cli_opt_value("settings view", argc, argv, &i, "--set")))
				return BL_EXIT_USAGE;
			if (nsets == MAX_SETS) {
				cli_error("settings view: at most %d --set", MAX_SETS);
				return BL_EXIT_USAGE;
			}
			sets[nsets++] = v;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			cli_error("settings: unknown option '%s' (try 'batlab settings --help')", argv[i]);
			return BL_EXIT_USAGE;
		} else if (npos++ == 0) {
			if (strcmp(argv[i], "view") != 0) {
				cli_error("settings: unknown subcommand '%s' (the one there is: view)", argv[i]);
				return BL_EXIT_USAGE;
			}
		} else if (npos == 2) {
			file = argv[i];
		} else {
			cli_error("settings view: one FILE only ('%s' is one too many)", argv[i]);
			return BL_EXIT_USAGE;
		}
	}
	if (!file) {
		cli_error(npos ? "settings view: FILE missing" : "settings: a subcommand is needed (view FILE)");
		usage(stderr);
		return BL_EXIT_USAGE;
	}
	if (!(e = bl_engine_new(NULL))) {
		cli_error("settings: cannot start the Lua engine");
		return BL_EXIT_FAILED;
	}
	rc = view(e, file, sets, nsets);
	bl_engine_free(e);
	return rc;
}
