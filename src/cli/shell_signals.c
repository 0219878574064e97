/* cli/shell_signals.c - signals in `batlab shell`. Our handler takes
 * SIGINT, SIGTERM, SIGHUP and SIGWINCH for the whole session (the
 * scheduler's own catching is turned off), sets flags and writes to a
 * pipe; at the prompt that clears the line (Ctrl-C) or ends the shell the
 * clean way (SIGTERM, or SIGHUP when the terminal goes away). While a line
 * runs it also stops the loop, so that a waiting call returns through the
 * scheduler's interrupt, and sets a Lua hook that raises "interrupted" in
 * the line's own code, as lua(1) does. readline's handlers stay off
 * (rl_catch_signals = 0): in callback mode they would only be installed
 * inside rl_callback_read_char anyway.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>

#include "cli/shell_parts.h"
#include "core/fdio.h"
#include "core/loop.h"

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_int, got_term, got_winch, in_command;
static struct sigaction old_int, old_term, old_hup, old_winch;

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
	bl_loop_stop(shell.loop);
	lua_sethook(shell.L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
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
		if (shell.tty_out && write(STDOUT_FILENO, "\n", 1) < 0)
			(void)0;
	}
	/* A full pipe already holds a wake-up. */
	if (write(sig_pipe[1], &c, 1) < 0)
		(void)0;
	errno = saved;
}

int shell_catch_signals(void)
{
	struct sigaction sa;

	got_int = got_term = got_winch = in_command = 0;
	if (bl_fd_pipe(sig_pipe) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigaction(SIGWINCH, &sa, &old_winch);
	return sig_pipe[0];
}

void shell_release_signals(void)
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
void shell_handle_signals(void)
{
	char buf[64];

	while (read(sig_pipe[0], buf, sizeof buf) > 0)
		;
	if (got_winch) {
		got_winch = 0;
		shell_lr_resize();
	}
	if (got_term) {
		shell_lr_stop();
		shell.st = LINE_TERM;
		return;
	}
	if (got_int) {
		got_int = 0;
		if (shell.on_screen) {
			shell_lr_interrupt();
			shell.st = LINE_INTR;
		}
	}
}

/* Code runs on the main thread: signals interrupt it. A Ctrl-C that came
 * after a line was entered and before it runs is for that line (`pending`);
 * one before our own work between lines is left for the prompt. */
void shell_begin_command(bool pending)
{
	in_command = 1;
	if (pending && (got_int || got_term))
		interrupt_command();
}

void shell_end_command(void)
{
	in_command = 0;
	lua_sethook(shell.L, NULL, 0, 0);
	/* A stop the handler made while no run was there to see it must not
	 * interrupt the next wait: a run that finds it returns at once and
	 * clears it, and a deadline already reached ends any other run. */
	bl_loop_run_until(shell.loop, NULL, NULL, 0);
	got_int = 0;
}

bool shell_term_requested(void)
{
	return got_term;
}
