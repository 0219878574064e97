/* cli/cmd_shell.c - `batlab shell`: Lua with the API, the pool and the
 * active device. -e chunks, a FILE, or standard input when it is not a
 * terminal run non-interactively; with none of them and a terminal on
 * standard input, the interactive prompt of shell_repl.c runs.
 *
 * Exit status: 0 ok, 1 a chunk raised an error (message on stderr) or a
 * stock test (ch:start_test) was cut short, 2 usage error or a FILE that
 * does not load, 3 no device could be opened, 130 interrupted.
 * Interactive: 0 on Ctrl-D, n for os.exit(n), 130 on SIGTERM or SIGHUP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "cli/shell_repl.h"
#include "core/bl.h"
#include "host/session.h"
#include "lua/engine.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

#define MAX_CHUNKS 64

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: batlab shell [-e CHUNK]... [--sim[=LAYOUT]] [--devices N] [--seed S]\n"
	        "                    [--port PATH] [--serial N] [FILE [ARGS...]]\n"
	        "\n"
	        "Run Lua with the batlab API, the global 'pool' (the connected Batlabs) and\n"
	        "'dev' (the active one). Chunks run in order, then FILE ('-' reads standard\n"
	        "input); with neither, standard input is read when it is not a terminal,\n"
	        "and an interactive prompt runs when it is (help() there for a guide).\n"
	        "\n"
	        "  -e CHUNK        run CHUNK\n"
	        "  --sim[=LAYOUT]  virtual Batlabs (the default layout, or a JSON layout)\n"
	        "                  in virtual time\n"
	        "  --devices N     with --sim: N default units (1..64)\n"
	        "  --seed S        with --sim: the noise seed (default 0)\n"
	        "  --port PATH     open this port only (default: scan USB 04D8:000A)\n"
	        "  --serial N      make the Batlab with serial number N the active one\n"
	        "\n"
	        "Exit status: 0 ok, 1 a Lua error, 2 usage error, 3 no device could be\n"
	        "opened, 130 interrupted; at the prompt, Ctrl-D exits 0 and os.exit(n) n.\n"
	        "Channels are left as the code left them; a task that fails, or is still\n"
	        "running at the end, has its channels made safe. A stock test\n"
	        "(ch:start_test) still running at the end is cut short: its channel made\n"
	        "safe, a notice, its logs closed, and the exit status is 1 instead of 0.\n");
}



/* The globals pool and dev (protected: it allocates). */
static int set_globals(lua_State *L)
{
	struct bl_session *s = lua_touserdata(L, 1);

	bl_lua_push_pool(L, s);
	lua_pushvalue(L, -1);
	lua_setglobal(L, "pool");
	lua_getfield(L, -1, "active");
	lua_insert(L, -2);
	lua_call(L, 1, 1);
	lua_setglobal(L, "dev");
	return 0;
}

/* The command line, parsed. */
struct shell_args {
	struct cli_devsel_opts sel;   /* the device options, as every command has them */
	struct bl_session_opts so;
	const char *chunks[MAX_CHUNKS];
	int nchunks;
	const char *file;        /* FILE, "-" for standard input, or NULL */
	int nargs;               /* its ARGS... */
	char **args;
	bool interactive;
};

/* The options up to FILE: i is left at FILE (or argc). BL_EXIT_OK, or
 * -1 after --help, or an exit code after a message. */
static int parse_options(int argc, char **argv, int *i, struct shell_args *sa)
{
	int r;

	for (*i = 1; *i < argc; ++*i) {
		const char *a = argv[*i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return -1;
		}
		if (strcmp(a, "--") == 0) {
			++*i;
			break;
		}
		if (strcmp(a, "-e") == 0) {
			if (*i + 1 >= argc) {
				cli_error("shell: -e needs a chunk of Lua");
				return BL_EXIT_USAGE;
			}
			if (sa->nchunks == MAX_CHUNKS) {
				cli_error("shell: at most %d -e chunks", MAX_CHUNKS);
				return BL_EXIT_USAGE;
			}
			sa->chunks[sa->nchunks++] = argv[++*i];
			continue;
		}
		if ((r = cli_select_option("shell", argc, argv, i, &sa->sel)) < 0)
			return -r;
		if (r > 0)
			continue;
		if (a[0] == '-' && a[1] != '\0') {
			cli_error("shell: unknown option '%s' (try 'batlab shell --help')", a);
			return BL_EXIT_USAGE;
		}
		break;
	}
	return BL_EXIT_OK;
}

static int parse_args(int argc, char **argv, struct shell_args *sa)
{
	int i, r;

	memset(sa, 0, sizeof *sa);
	if ((r = parse_options(argc, argv, &i, sa)) != BL_EXIT_OK)
		return r;
	if (i < argc) {
		sa->file = argv[i];
		sa->nargs = argc - i - 1;
		sa->args = argv + i + 1;
	}
	if (sa->sel.sim && sa->sel.port) {
		cli_error("shell: --sim and --port exclude each other");
		return BL_EXIT_USAGE;
	}
	if ((r = cli_select_check("shell", &sa->sel)) != BL_EXIT_OK)
		return r;
	cli_select_session(&sa->sel, &sa->so);
	if (!sa->file && sa->nchunks == 0) {
		if (isatty(STDIN_FILENO))
			sa->interactive = true;
		else
			sa->file = "-";
	}
	return BL_EXIT_OK;
}

/* The globals, then the chunks, FILE and the prompt, in that order; the
 * first error ends it. */
static int run_lua(struct bl_engine *e, struct bl_session *s, const struct shell_args *sa)
{
	lua_State *L = bl_engine_state(e);
	int st;

	lua_pushcfunction(L, set_globals);
	lua_pushlightuserdata(L, s);
	st = bl_engine_pcall(e, 1, 0);
	if (st == LUA_OK)
		st = bl_engine_set_arg(e, sa->file, sa->nargs, sa->args);
	if (st != LUA_OK)
		return cli_lua_report(e, st);
	for (int j = 0; j < sa->nchunks; j++) {
		st = bl_engine_dostring(e, sa->chunks[j], "=(command line)");
		if (st != LUA_OK)
			return cli_lua_report(e, st);
	}
	if (sa->file) {
		st = bl_engine_dofile(e, sa->file, sa->nargs, sa->args);
		if (st != LUA_OK)
			return cli_lua_report(e, st);
	}
	if (sa->interactive)
		return shell_repl_run(e, s);
	return bl_sched_interrupted(bl_sched_get(L)) ? BL_EXIT_INTERRUPTED : BL_EXIT_OK;
}

int cmd_shell(int argc, char **argv)
{
	struct shell_args sa;
	struct bl_session *s = NULL;
	struct bl_engine *e;
	char err[512];
	int rc, st;

	if ((rc = parse_args(argc, argv, &sa)) != BL_EXIT_OK)
		return rc < 0 ? BL_EXIT_OK : rc;
	st = bl_session_open(&sa.so, &s, err, sizeof err);
	if (st != BL_OK) {
		cli_error("shell: %s", err[0] ? err : bl_strerror(st));
		return st == BL_ERR_ARG ? BL_EXIT_USAGE : BL_EXIT_DEVICE;
	}
	e = bl_engine_new(&(struct bl_engine_opts){
		.clock = bl_session_clock(s),
		.seed = sa.so.seed,
		/* At the prompt, text from background tasks goes above it. */
		.output = sa.interactive ? shell_repl_output : NULL,
	});
	if (!e) {
		cli_error("shell: cannot start the Lua engine");
		bl_session_close(s);
		return BL_EXIT_FAILED;
	}
	rc = run_lua(e, s, &sa);
	/* A stock test still running is cut short: exit 1 (not after 130). */
	if (cli_lua_end_tests(e, "shell", "the shell is exiting") > 0 && rc == BL_EXIT_OK)
		rc = BL_EXIT_FAILED;
	/* Closing the state ends unfinished tasks (their channels go safe)
	 * and lets the commands out before the devices are freed. */
	bl_engine_free(e);
	bl_session_close(s);
	return rc;
}
