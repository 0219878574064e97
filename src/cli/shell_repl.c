/* cli/shell_repl.c - the interactive `batlab shell`: a Lua prompt read
 * through the event loop, so that tasks started at the prompt keep running
 * in the background while it waits for input.
 *
 * How the prompt meets the loop:
 *   - Real time: waiting for a line is a blocking scheduler wait on the main
 *     thread (the bl_wait of sched.h, as dev:read outside a task). Watchers
 *     on standard input and on a signal pipe feed GNU readline's callback
 *     interface (rl_callback_read_char) and complete the wait once a line
 *     is there. Meanwhile the loop resumes tasks, regulates currents and
 *     refreshes watchdogs; a timer prints notices (plugs, tasks that ended)
 *     above the prompt. Being a scheduler wait, Lua that the loop calls
 *     (task_log functions) cannot block and so cannot re-enter the prompt.
 *   - Virtual time (--sim): a loop step with nothing due jumps the clock,
 *     so the prompt does not run the loop: it polls standard input and the
 *     signal pipe only, and time stands still. Before each prompt the tasks
 *     queued at the current instant get their turn (no time passes), so a
 *     task spawned at the prompt has started when tasks() looks at it.
 *   - A line runs on the main thread: a call that waits runs the loop until
 *     it is done, as in `batlab shell -e`.
 *
 * The parts: reading a line and the output around the prompt are
 * shell_prompt.c, signals shell_signals.c (Ctrl-C clears the line at the
 * prompt and interrupts a line that runs; SIGTERM and SIGHUP end the shell
 * the clean way: running tasks are cancelled, their channels made safe).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/cli.h"
#include "cli/shell_parts.h"
#include "cli/shell_repl.h"
#include "core/bl.h"
#include "core/loop.h"
#include "host/session.h"
#include "lua/engine.h"
#include "lua/sched.h"

#define PROMPT      "batlab> "
#define PROMPT_MORE "batlab>> "
#define CHUNKNAME   "=stdin"
#define EOFMARK     "<eof>"          /* how Lua's parser ends "more input needed" */
#define SETTLE_ROUNDS 64             /* task resumes at one virtual instant, at most */
#define HISTORY_FILE ".batlab_history"

struct shell_state shell;

/* Registry key of the batlab.shell module (its address). */
static const char module_key = 0;

/* ---- Lua helpers (all run protected) ------------------------------------------- */

/* os.exit in the shell: leave through the clean path (tasks cancelled,
 * history saved) instead of exit(3) under everybody's feet. */
static int l_exit(lua_State *L)
{
	int code;

	if (lua_isboolean(L, 1))
		code = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
	else
		code = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
	shell.exit_req = true;
	shell.exit_code = code;
	if (shell.prompt_w)
		shell_prompt_finish();    /* a task called it while the prompt waits */
	return luaL_error(L, "os.exit: leaving the shell");
}

static int l_setup(lua_State *L)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "batlab.shell");
	lua_call(L, 1, 1);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &module_key);
	lua_getfield(L, -1, "install");
	lua_pushglobaltable(L);        /* tasks() and help() become globals */
	lua_getglobal(L, "pool");
	lua_call(L, 2, 0);
	if (lua_getglobal(L, "os") == LUA_TTABLE) {
		lua_pushcfunction(L, l_exit);
		lua_setfield(L, -2, "exit");
	}
	return 0;
}

/* The notices as one string (empty when none). */
static int l_notices(lua_State *L)
{
	luaL_Buffer b;
	lua_Integer n;
	int list;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key);
	lua_getfield(L, -1, "notices");
	lua_call(L, 0, 1);
	luaL_checktype(L, -1, LUA_TTABLE);
	list = lua_gettop(L);     /* the buffer moves the top */
	n = (lua_Integer)lua_rawlen(L, list);
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, list, i) != LUA_TSTRING) {
			lua_pop(L, 1);
			continue;
		}
		luaL_addvalue(&b);
		luaL_addchar(&b, '\n');
	}
	luaL_pushresult(&b);
	return 1;
}

/* print(...) with a line's results (lua.c's l_print), each first made
 * text by the module's show(): a sample or a table reads as its contents,
 * not as "table: 0x...". */
static int l_print_results(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checkstack(L, 2, "too many results to print");
	lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key);
	lua_getfield(L, -1, "show");
	lua_replace(L, -2);
	lua_insert(L, 1);
	lua_call(L, n, n);
	lua_getglobal(L, "print");
	lua_insert(L, 1);
	lua_call(L, n, 0);
	return 0;
}

void shell_print_notices(void)
{
	lua_State *L = shell.L;
	int top = lua_gettop(L);
	size_t len;
	const char *s;

	lua_pushcfunction(L, l_notices);
	if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
		s = lua_tostring(L, -1);
		shell_sayf(stderr, "batlab: shell: %s\n", s ? s : "notices failed");
	} else if ((s = lua_tolstring(L, -1, &len)) && len > 0) {
		shell_say(stdout, s, len);
	}
	lua_settop(L, top);
}

/* ---- Running a line --------------------------------------------------------- */

/* One round of the tasks queued now: a zero-delay wait fires after them. */
static int l_settle(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "the shell");

	bl_wait_after(w, 0, BL_OK);
	return bl_wait_yield(L, w, shell_k_done);
}

/* Virtual time: let tasks run up to what needs time to pass. */
static void settle(void)
{
	lua_State *L = shell.L;

	shell_begin_command(false);
	for (int i = 0; i < SETTLE_ROUNDS; i++) {
		struct bl_sched_stats st;
		int top = lua_gettop(L);

		bl_sched_stats(shell.sched, &st);
		if (st.ready == 0)
			break;
		lua_pushcfunction(L, l_settle);
		if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			shell_sayf(stderr, "batlab: shell: %s\n", m ? m : "running tasks failed");
			lua_settop(L, top);
			break;
		}
		lua_settop(L, top);
	}
	shell_end_command();
}

/* Run the chunk on top of the stack and print what it returns. */
static void run_chunk(void)
{
	lua_State *L = shell.L;
	int base = lua_gettop(L) - 1, st;

	shell_begin_command(true);
	st = bl_engine_pcall(shell.e, 0, LUA_MULTRET);
	if (st == LUA_OK && !shell.exit_req && lua_gettop(L) > base) {
		lua_pushcfunction(L, l_print_results);
		lua_insert(L, base + 1);
		if (lua_pcall(L, lua_gettop(L) - base - 1, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			shell_sayf(stderr, "error calling 'print' (%s)\n", m ? m : "?");
		}
	} else if (st != LUA_OK && !shell.exit_req) {
		const char *m = lua_tostring(L, -1);
		shell_sayf(stderr, "%s\n", m ? m : "(error object is not a string)");
	}
	lua_settop(L, base);
	shell_end_command();
	/* The scheduler said what an interrupt did (its warning); the shell
	 * carries on. */
	bl_sched_clear_interrupted(shell.sched);
}

static char *concat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb);
		memcpy(s + la + lb, c, lc + 1);
	}
	return s;
}

static bool incomplete(lua_State *L, int status)
{
	size_t len;
	const char *msg;

	if (status != LUA_ERRSYNTAX)
		return false;
	msg = lua_tolstring(L, -1, &len);
	return msg && len >= sizeof EOFMARK - 1 &&
	       strcmp(msg + len - (sizeof EOFMARK - 1), EOFMARK) == 0;
}

/* lua(1) 5.4: a first line is tried as "return LINE" (an expression whose
 * value is printed), then as a statement; a statement that is not
 * finished leaves *stmt set and asks for more lines. `=expr` is the 5.1
 * spelling of the first. Takes line. */
static void take_line(char **stmt, char *line)
{
	lua_State *L = shell.L;
	int st;

	if (!*stmt) {
		const char *expr = line[0] == '=' ? line + 1 : line;
		char *ret = concat3("return ", expr, ";");

		if (!ret) {
			free(line);
			shell_sayf(stderr, "batlab: shell: out of memory\n");
			return;
		}
		st = luaL_loadbuffer(L, ret, strlen(ret), CHUNKNAME);
		free(ret);
		if (st == LUA_OK) {
			shell_lr_add_history(line);
			free(line);
			run_chunk();
			return;
		}
		lua_pop(L, 1);
		*stmt = line;
	} else {
		char *s = concat3(*stmt, "\n", line);

		free(line);
		free(*stmt);
		*stmt = s;
		if (!s) {
			shell_sayf(stderr, "batlab: shell: out of memory\n");
			return;
		}
	}
	st = luaL_loadbuffer(L, *stmt, strlen(*stmt), CHUNKNAME);
	if (incomplete(L, st)) {
		lua_pop(L, 1);
		return;
	}
	shell_lr_add_history(*stmt);
	free(*stmt);
	*stmt = NULL;
	if (st != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		shell_sayf(stderr, "%s\n", m ? m : "syntax error");
		lua_pop(L, 1);
		return;
	}
	run_chunk();
}

/* ---- The session ------------------------------------------------------------ */

static void banner(void)
{
	printf("batlab %s shell (%s). help() for a guide, tasks() for running tasks,\n"
	       "Ctrl-D to leave.\n", BL_VERSION, LUA_RELEASE);
	if (shell.virt)
		printf("Virtual time: it moves only while a command runs (batlab.run(), batlab.sleep(s)).\n");
	fflush(stdout);
}

static char *history_path(void)
{
	const char *home = getenv("HOME");

	return home && *home ? concat3(home, "/", HISTORY_FILE) : NULL;
}

/* Lines until Ctrl-D, os.exit or SIGTERM/SIGHUP; the exit code. */
static int prompt_loop(void)
{
	char *stmt = NULL, *line;
	int rc = BL_EXIT_OK;

	for (;;) {
		enum line_status st;

		if (!stmt) {
			if (shell.virt)
				settle();
			shell_print_notices();
		}
		if (shell.exit_req)
			break;
		st = shell_read_line(stmt ? PROMPT_MORE : PROMPT, &line);
		if (st == LINE_EOF) {
			/* Ctrl-D: end the prompt's line, as lua(1) does. */
			fputs("\n", stdout);
			break;
		}
		if (st == LINE_TERM) {
			rc = BL_EXIT_INTERRUPTED;
			break;
		}
		if (st != LINE_READY) {
			/* Ctrl-C drops a statement in progress; os.exit from a task
			 * ends the prompt without a line. */
			free(stmt);
			stmt = NULL;
			continue;
		}
		if (!stmt && line[strspn(line, " \t")] == '\0') {
			free(line);
			continue;
		}
		take_line(&stmt, line);
		if (shell_term_requested()) {
			rc = BL_EXIT_INTERRUPTED;
			break;
		}
	}
	free(stmt);
	return shell.exit_req ? shell.exit_code : rc;
}

int shell_repl_run(struct bl_engine *e, struct bl_session *s)
{
	lua_State *L = bl_engine_state(e);
	int rc, sig_fd;

	memset(&shell, 0, sizeof shell);
	shell.e = e;
	shell.L = L;
	shell.sched = bl_sched_get(L);
	shell.loop = bl_session_loop(s);
	shell.virt = bl_loop_is_virtual(shell.loop);
	shell.tty_out = isatty(STDOUT_FILENO);
	shell.history = history_path();
	if ((sig_fd = shell_catch_signals()) < 0) {
		cli_error("shell: cannot create a pipe: %s", strerror(errno));
		free(shell.history);
		return BL_EXIT_FAILED;
	}
	shell_prompt_init(sig_fd);
	bl_sched_set_catch_signals(shell.sched, false);
	bl_log_set_handler(shell_log, NULL);

	lua_pushcfunction(L, l_setup);
	if (bl_engine_pcall(e, 0, 0) != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		cli_error("shell: %s", m ? m : "cannot load batlab.shell");
		lua_pop(L, 1);
		rc = BL_EXIT_FAILED;
	} else {
		shell_lr_init();
		banner();
		rc = prompt_loop();
		if (bl_sched_live(shell.sched) > 0) {
			printf("cancelling %zu running task%s (their channels are made safe)\n",
			       bl_sched_live(shell.sched), bl_sched_live(shell.sched) == 1 ? "" : "s");
			fflush(stdout);
			bl_sched_cancel_all(L, shell.sched);
		}
		shell_lr_done();
	}
	shell_stop_watchers();
	bl_log_set_handler(NULL, NULL);
	bl_sched_set_catch_signals(shell.sched, true);
	shell_release_signals();
	free(shell.history);
	shell.history = NULL;
	return rc;
}
