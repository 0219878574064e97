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
 * Signals: our handler takes SIGINT, SIGTERM, SIGHUP and SIGWINCH for the
 * whole session (the scheduler's own catching is turned off) and sets
 * flags and writes to a pipe; at the prompt that clears the line (Ctrl-C)
 * or ends the shell the clean way (SIGTERM, or SIGHUP when the terminal
 * goes away: running tasks are cancelled, their channels made safe).
 * While a line runs it also stops the loop, so that a waiting call returns
 * through the scheduler's interrupt (every task cancelled, every channel
 * made safe, as in `batlab run`), and sets a Lua hook that raises
 * "interrupted" in the line's own code, as lua(1) does. readline's
 * handlers stay off (rl_catch_signals = 0): in callback mode they would
 * only be installed inside rl_callback_read_char anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli/cli.h"
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
#define NOTICE_US   200000u          /* notices above a waiting prompt: 5 checks a second */
#define SETTLE_ROUNDS 64             /* task resumes at one virtual instant, at most */
#define HISTORY_FILE ".batlab_history"
#define HISTORY_MAX 1000

enum line_status { LINE_NONE, LINE_READY, LINE_EOF, LINE_INTR, LINE_TERM };

static struct repl {
	struct bl_engine *e;
	lua_State *L;
	struct bl_sched *sched;
	struct bl_loop *loop;
	bool virt;
	struct bl_io in_io, sig_io;
	struct bl_timer notice_timer;
	struct bl_wait *prompt_w;   /* real time: the prompt's wait while it lasts */
	enum line_status st;        /* what the reader got */
	char *line;                 /* LINE_READY: malloc'd, ours */
	bool on_screen;             /* a prompt is displayed and input is being edited */
	bool tty_out;               /* standard output is a terminal */
	bool exit_req;              /* os.exit was called */
	int exit_code;
	char *history;              /* the history file, NULL without HOME */
} R;

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_int, got_term, got_winch, in_command;
static struct sigaction old_int, old_term, old_hup, old_winch;

/* Registry key of the batlab.shell module (its address). */
static const char module_key = 0;

/* ---- Line reader: readline's callback interface ------------------------ */

static void on_line(char *line)
{
	/* Down at once: readline would otherwise prepare the terminal and print
	 * the next prompt as soon as we return, before the line has run. */
	rl_callback_handler_remove();
	R.on_screen = false;
	if (!line) {
		R.st = LINE_EOF;
		return;
	}
	R.line = line;
	R.st = LINE_READY;
}

static void lr_init(void)
{
	rl_readline_name = "batlab";
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	using_history();
	stifle_history(HISTORY_MAX);
	if (R.history)
		read_history(R.history);   /* a missing file is the normal first time */
}

static void lr_start(const char *prompt)
{
	R.on_screen = true;
	rl_callback_handler_install(prompt, on_line);
}

static void lr_feed(void)
{
	rl_callback_read_char();
}

/* Around text written while the prompt is on screen. */
static void lr_hide(void)
{
	if (R.on_screen)
		rl_clear_visible_line();
}

static void lr_show(void)
{
	if (R.on_screen)
		rl_forced_update_display();
}

/* Ctrl-C: drop what was typed (and any search or argument in progress). */
static void lr_interrupt(void)
{
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_callback_handler_remove();
	R.on_screen = false;
	fputs("\n", stdout);
	fflush(stdout);
}

static void lr_stop(void)
{
	if (!R.on_screen)
		return;
	rl_callback_handler_remove();
	R.on_screen = false;
	fputs("\n", stdout);
	fflush(stdout);
}

static void lr_resize(void)
{
	if (R.on_screen)
		rl_resize_terminal();
	else
		rl_reset_screen_size();
}

static void lr_add_history(const char *s)
{
	HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;

	if (!last || strcmp(last->line, s) != 0)
		add_history(s);
}

static void lr_done(void)
{
	if (R.history)
		write_history(R.history);   /* an unwritable home only loses the history */
	clear_history();
}

/* ---- Output ---------------------------------------------------------------- */

/* Everything the shell or the loop writes goes through here, so that a
 * prompt on screen is put back below the text. */
static void say(FILE *f, const char *text, size_t len)
{
	lr_hide();
	fwrite(text, 1, len, f);
	fflush(f);
	lr_show();
}

static void sayf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(FILE *f, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	say(f, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void shell_repl_output(void *ud, const char *text, size_t len)
{
	(void)ud;
	say(stdout, text, len);
}

static void repl_log(void *ud, enum bl_log_level level, const char *module, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug", "spew"};

	(void)ud;
	sayf(stderr, "batlab: %s: %s: %s\n",
	     (unsigned)level < BL_ARRAY_LEN(names) ? names[level] : "?", module, msg);
}

/* ---- Signals ------------------------------------------------------------------ */

static void stop_hook(lua_State *L, lua_Debug *ar)
{
	/* Only in Lua code. C running on this thread meanwhile is the
	 * scheduler answering the same interrupt (ending tasks, making
	 * channels safe): cutting that short would leave tasks half ended. */
	if (!lua_getinfo(L, "S", ar) || ar->what[0] == 'C')
		return;
	lua_sethook(L, NULL, 0, 0);
	lua_pushliteral(L, "interrupted");
	lua_error(L);
}

/* From the signal handler too: bl_loop_stop is async-signal-safe, and
 * lua_sethook only stores fields (lua.c calls it from its handler). */
static void interrupt_command(void)
{
	bl_loop_stop(R.loop);
	lua_sethook(R.L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGINT)
		got_int = 1;
	else if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_term = 1;    /* SIGTERM, or SIGHUP: the terminal went away */
	if (in_command && sig != SIGWINCH) {
		/* A waiting call returns (its run sees the stop); the line's own
		 * Lua raises at its next instruction (lua.c's way). */
		interrupt_command();
		/* The terminal echoed ^C: what is said about it goes below. */
		if (R.tty_out && write(STDOUT_FILENO, "\n", 1) < 0)
			(void)0;
	}
	/* A full pipe already holds a wake-up. */
	if (write(sig_pipe[1], &c, 1) < 0)
		(void)0;
	errno = saved;
}

static int catch_signals(void)
{
	struct sigaction sa;

	if (pipe(sig_pipe) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigaction(SIGWINCH, &sa, &old_winch);
	return 0;
}

static void release_signals(void)
{
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGWINCH, &old_winch, NULL);
	for (int i = 0; i < 2; i++) {
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
		sig_pipe[i] = -1;
	}
}

/* Act on the signals that came: at the prompt, Ctrl-C clears the line and
 * SIGTERM/SIGHUP end the shell; an interrupt that came while a line ran
 * was dealt with then. */
static void handle_signals(void)
{
	char buf[64];

	while (read(sig_pipe[0], buf, sizeof buf) > 0)
		;
	if (got_winch) {
		got_winch = 0;
		lr_resize();
	}
	if (got_term) {
		lr_stop();
		R.st = LINE_TERM;
		return;
	}
	if (got_int) {
		got_int = 0;
		if (R.on_screen) {
			lr_interrupt();
			R.st = LINE_INTR;
		}
	}
}

/* Code runs on the main thread: signals interrupt it. A Ctrl-C that came
 * after a line was entered and before it runs is for that line (`pending`);
 * one before our own work between lines is left for the prompt. */
static void begin_command(bool pending)
{
	in_command = 1;
	if (pending && (got_int || got_term))
		interrupt_command();
}

static void end_command(void)
{
	in_command = 0;
	lua_sethook(R.L, NULL, 0, 0);
	/* A stop the handler made while no run was there to see it must not
	 * interrupt the next wait: a run that finds it returns at once and
	 * clears it, and a deadline already reached ends any other run. */
	bl_loop_run_until(R.loop, NULL, NULL, 0);
	got_int = 0;
}

/* ---- Lua helpers (all run protected) ------------------------------------------- */

/* os.exit in the shell: leave through the clean path (tasks cancelled,
 * history saved) instead of exit(3) under everybody's feet. */
static void prompt_finish(void);

static int l_exit(lua_State *L)
{
	int code;

	if (lua_isboolean(L, 1))
		code = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
	else
		code = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
	R.exit_req = true;
	R.exit_code = code;
	if (R.prompt_w)
		prompt_finish();    /* a task called it while the prompt waits */
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

/* print(...) with a line's results (lua.c's l_print). */
static int l_print_results(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checkstack(L, 1, "too many results to print");
	lua_getglobal(L, "print");
	lua_insert(L, 1);
	lua_call(L, n, 0);
	return 0;
}

static void print_notices(void)
{
	lua_State *L = R.L;
	int top = lua_gettop(L);
	size_t len;
	const char *s;

	lua_pushcfunction(L, l_notices);
	if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
		s = lua_tostring(L, -1);
		sayf(stderr, "batlab: shell: %s\n", s ? s : "notices failed");
	} else if ((s = lua_tolstring(L, -1, &len)) && len > 0) {
		say(stdout, s, len);
	}
	lua_settop(L, top);
}

/* ---- Waiting for a line ------------------------------------------------------- */

static void stop_watchers(void)
{
	bl_io_stop(R.loop, &R.in_io);
	bl_io_stop(R.loop, &R.sig_io);
	bl_timer_stop(R.loop, &R.notice_timer);
}

static void prompt_finish(void)
{
	struct bl_wait *w = R.prompt_w;

	stop_watchers();
	R.prompt_w = NULL;
	if (w)
		bl_wait_complete(w, BL_OK);
}

/* The wait ended another way (the loop was stopped). */
static void prompt_cancel(struct bl_wait *w)
{
	(void)w;
	stop_watchers();
	R.prompt_w = NULL;
}

static void on_input(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	(void)loop;
	(void)io;
	(void)events;
	(void)ud;
	lr_feed();
	if (R.st != LINE_NONE)
		prompt_finish();
}

static void on_sig_pipe(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	(void)loop;
	(void)io;
	(void)events;
	(void)ud;
	handle_signals();
	if (R.st != LINE_NONE)
		prompt_finish();
}

static void on_notice_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	(void)ud;
	print_notices();
}

static int k_prompt(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	bl_wait_ctx(L, ctx);
	return 0;
}

static int l_prompt_wait(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "the shell prompt");

	w->cancel = prompt_cancel;
	R.prompt_w = w;
	if (bl_io_start(R.loop, &R.in_io, BL_IO_READ) < 0 ||
	    bl_io_start(R.loop, &R.sig_io, BL_IO_READ) < 0 ||
	    bl_timer_after(R.loop, &R.notice_timer, NOTICE_US, NOTICE_US) < 0) {
		prompt_cancel(w);
		return luaL_error(L, "the shell prompt: out of memory");
	}
	return bl_wait_yield(L, w, k_prompt);
}

/* Real time: run the loop until a line (or EOF, Ctrl-C, SIGTERM, os.exit). */
static void wait_real(void)
{
	lua_State *L = R.L;

	while (R.st == LINE_NONE && !R.exit_req) {
		int top = lua_gettop(L);

		lua_pushcfunction(L, l_prompt_wait);
		if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			lr_stop();
			sayf(stderr, "batlab: shell: %s\n", m ? m : "the prompt failed");
			R.st = LINE_EOF;
		}
		lua_settop(L, top);
	}
}

/* Virtual time: standard input and signals only; the clock stands still. */
static void wait_virtual(void)
{
	while (R.st == LINE_NONE && !R.exit_req) {
		struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			lr_stop();
			R.st = LINE_EOF;
			break;
		}
		if (p[1].revents)
			handle_signals();
		if (R.st == LINE_NONE && p[0].revents)
			lr_feed();
	}
}

static enum line_status read_line(const char *prompt, char **line)
{
	R.st = LINE_NONE;
	R.line = NULL;
	handle_signals();
	if (R.st == LINE_NONE) {
		lr_start(prompt);
		if (R.st == LINE_NONE) {
			if (R.virt)
				wait_virtual();
			else
				wait_real();
		}
	}
	lr_stop();
	*line = R.line;
	R.line = NULL;
	return R.st;
}

/* ---- Running a line --------------------------------------------------------- */

static int k_settle(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	bl_wait_ctx(L, ctx);
	return 0;
}

/* One round of the tasks queued now: a zero-delay wait fires after them. */
static int l_settle(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "the shell");

	bl_wait_after(w, 0, BL_OK);
	return bl_wait_yield(L, w, k_settle);
}

/* Virtual time: let tasks run up to what needs time to pass. */
static void settle(void)
{
	lua_State *L = R.L;

	begin_command(false);
	for (int i = 0; i < SETTLE_ROUNDS; i++) {
		struct bl_sched_stats st;
		int top = lua_gettop(L);

		bl_sched_stats(R.sched, &st);
		if (st.ready == 0)
			break;
		lua_pushcfunction(L, l_settle);
		if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			sayf(stderr, "batlab: shell: %s\n", m ? m : "running tasks failed");
			lua_settop(L, top);
			break;
		}
		lua_settop(L, top);
	}
	end_command();
}

/* Run the chunk on top of the stack and print what it returns. */
static void run_chunk(void)
{
	lua_State *L = R.L;
	int base = lua_gettop(L) - 1, st;

	begin_command(true);
	st = bl_engine_pcall(R.e, 0, LUA_MULTRET);
	if (st == LUA_OK && !R.exit_req && lua_gettop(L) > base) {
		lua_pushcfunction(L, l_print_results);
		lua_insert(L, base + 1);
		if (lua_pcall(L, lua_gettop(L) - base - 1, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			sayf(stderr, "error calling 'print' (%s)\n", m ? m : "?");
		}
	} else if (st != LUA_OK && !R.exit_req) {
		const char *m = lua_tostring(L, -1);
		sayf(stderr, "%s\n", m ? m : "(error object is not a string)");
	}
	lua_settop(L, base);
	end_command();
	/* The scheduler said what an interrupt did (its warning); the shell
	 * carries on. */
	bl_sched_clear_interrupted(R.sched);
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
	lua_State *L = R.L;
	int st;

	if (!*stmt) {
		const char *expr = line[0] == '=' ? line + 1 : line;
		char *ret = concat3("return ", expr, ";");

		if (!ret) {
			free(line);
			sayf(stderr, "batlab: shell: out of memory\n");
			return;
		}
		st = luaL_loadbuffer(L, ret, strlen(ret), CHUNKNAME);
		free(ret);
		if (st == LUA_OK) {
			lr_add_history(line);
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
			sayf(stderr, "batlab: shell: out of memory\n");
			return;
		}
	}
	st = luaL_loadbuffer(L, *stmt, strlen(*stmt), CHUNKNAME);
	if (incomplete(L, st)) {
		lua_pop(L, 1);
		return;
	}
	lr_add_history(*stmt);
	free(*stmt);
	*stmt = NULL;
	if (st != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		sayf(stderr, "%s\n", m ? m : "syntax error");
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
	if (R.virt)
		printf("Virtual time: it moves only while a command runs (batlab.run(), batlab.sleep(s)).\n");
	fflush(stdout);
}

static char *history_path(void)
{
	const char *home = getenv("HOME");

	return home && *home ? concat3(home, "/", HISTORY_FILE) : NULL;
}

int shell_repl_run(struct bl_engine *e, struct bl_session *s)
{
	lua_State *L = bl_engine_state(e);
	char *stmt = NULL, *line;
	int rc = BL_EXIT_OK;

	memset(&R, 0, sizeof R);
	R.e = e;
	R.L = L;
	R.sched = bl_sched_get(L);
	R.loop = bl_session_loop(s);
	R.virt = bl_loop_is_virtual(R.loop);
	R.tty_out = isatty(STDOUT_FILENO);
	R.history = history_path();
	got_int = got_term = got_winch = in_command = 0;
	bl_io_init(&R.in_io, STDIN_FILENO, on_input, NULL);
	if (catch_signals() < 0) {
		cli_error("shell: cannot create a pipe: %s", strerror(errno));
		free(R.history);
		return BL_EXIT_FAILED;
	}
	bl_io_init(&R.sig_io, sig_pipe[0], on_sig_pipe, NULL);
	bl_timer_init(&R.notice_timer, on_notice_timer, NULL);
	bl_sched_set_catch_signals(R.sched, false);
	bl_log_set_handler(repl_log, NULL);

	lua_pushcfunction(L, l_setup);
	if (bl_engine_pcall(e, 0, 0) != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		cli_error("shell: %s", m ? m : "cannot load batlab.shell");
		lua_pop(L, 1);
		rc = BL_EXIT_FAILED;
		goto out;
	}
	lr_init();
	banner();

	for (;;) {
		enum line_status st;

		if (!stmt) {
			if (R.virt)
				settle();
			print_notices();
		}
		if (R.exit_req)
			break;
		st = read_line(stmt ? PROMPT_MORE : PROMPT, &line);
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
		if (got_term) {
			rc = BL_EXIT_INTERRUPTED;
			break;
		}
	}
	free(stmt);
	if (R.exit_req)
		rc = R.exit_code;

	if (bl_sched_live(R.sched) > 0) {
		printf("cancelling %zu running task%s (their channels are made safe)\n",
		       bl_sched_live(R.sched), bl_sched_live(R.sched) == 1 ? "" : "s");
		fflush(stdout);
		bl_sched_cancel_all(L, R.sched);
	}
	lr_done();
out:
	stop_watchers();
	bl_log_set_handler(NULL, NULL);
	bl_sched_set_catch_signals(R.sched, true);
	release_signals();
	free(R.history);
	R.history = NULL;
	return rc;
}
