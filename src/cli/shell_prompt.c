/* cli/shell_prompt.c - reading a line for `batlab shell`: GNU readline's
 * callback interface fed from the event loop (real time) or from poll(2)
 * on standard input and the signal pipe (virtual time, where the clock
 * stands still at the prompt), and output that keeps a prompt on screen
 * below whatever is written meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli/shell_parts.h"
#include "cli/shell_repl.h"
#include "core/bl.h"
#include "core/loop.h"
#include "lua/sched.h"

#define NOTICE_US   200000u          /* notices above a waiting prompt: 5 checks a second */
#define HISTORY_MAX 1000

/* ---- Line reader: readline's callback interface ------------------------ */

static void on_line(char *line)
{
	/* Down at once: readline would otherwise prepare the terminal and print
	 * the next prompt as soon as we return, before the line has run. */
	rl_callback_handler_remove();
	shell.on_screen = false;
	if (!line) {
		shell.st = LINE_EOF;
		return;
	}
	shell.line = line;
	shell.st = LINE_READY;
}

void shell_lr_init(void)
{
	rl_readline_name = "batlab";
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	using_history();
	stifle_history(HISTORY_MAX);
	if (shell.history)
		read_history(shell.history);   /* a missing file is the normal first time */
}

static void lr_start(const char *prompt)
{
	shell.on_screen = true;
	rl_callback_handler_install(prompt, on_line);
}

static void lr_feed(void)
{
	rl_callback_read_char();
}

/* Around text written while the prompt is on screen. */
static void lr_hide(void)
{
	if (shell.on_screen)
		rl_clear_visible_line();
}

static void lr_show(void)
{
	if (shell.on_screen)
		rl_forced_update_display();
}

/* Ctrl-C: drop what was typed (and any search or argument in progress). */
void shell_lr_interrupt(void)
{
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_callback_handler_remove();
	shell.on_screen = false;
	fputs("\n", stdout);
	fflush(stdout);
}

void shell_lr_stop(void)
{
	if (!shell.on_screen)
		return;
	rl_callback_handler_remove();
	shell.on_screen = false;
	fputs("\n", stdout);
	fflush(stdout);
}

void shell_lr_resize(void)
{
	if (shell.on_screen)
		rl_resize_terminal();
	else
		rl_reset_screen_size();
}

void shell_lr_add_history(const char *s)
{
	HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;

	if (!last || strcmp(last->line, s) != 0)
		add_history(s);
}

void shell_lr_done(void)
{
	if (shell.history)
		write_history(shell.history);   /* an unwritable home only loses the history */
	clear_history();
}

/* ---- Output ---------------------------------------------------------------- */

/* Everything the shell or the loop writes goes through here, so that a
 * prompt on screen is put back below the text. */
void shell_say(FILE *f, const char *text, size_t len)
{
	lr_hide();
	fwrite(text, 1, len, f);
	fflush(f);
	lr_show();
}

void shell_sayf(FILE *f, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	shell_say(f, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void shell_repl_output(void *ud, const char *text, size_t len)
{
	(void)ud;
	shell_say(stdout, text, len);
}

void shell_log(void *ud, enum bl_log_level level, const char *module, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug", "spew"};

	(void)ud;
	shell_sayf(stderr, "batlab: %s: %s: %s\n",
	     (unsigned)level < BL_ARRAY_LEN(names) ? names[level] : "?", module, msg);
}

/* ---- Waiting for a line ------------------------------------------------------- */

void shell_stop_watchers(void)
{
	bl_io_stop(shell.loop, &shell.in_io);
	bl_io_stop(shell.loop, &shell.sig_io);
	bl_timer_stop(shell.loop, &shell.notice_timer);
}

void shell_prompt_finish(void)
{
	struct bl_wait *w = shell.prompt_w;

	shell_stop_watchers();
	shell.prompt_w = NULL;
	if (w)
		bl_wait_complete(w, BL_OK);
}

/* The wait ended another way (the loop was stopped). */
static void prompt_cancel(struct bl_wait *w)
{
	(void)w;
	shell_stop_watchers();
	shell.prompt_w = NULL;
}

static void on_input(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	(void)loop;
	(void)io;
	(void)events;
	(void)ud;
	lr_feed();
	if (shell.st != LINE_NONE)
		shell_prompt_finish();
}

static void on_sig_pipe(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	(void)loop;
	(void)io;
	(void)events;
	(void)ud;
	shell_handle_signals();
	if (shell.st != LINE_NONE)
		shell_prompt_finish();
}

static void on_notice_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	(void)ud;
	shell_print_notices();
}

void shell_prompt_init(int sig_fd)
{
	bl_io_init(&shell.in_io, STDIN_FILENO, on_input, NULL);
	bl_io_init(&shell.sig_io, sig_fd, on_sig_pipe, NULL);
	bl_timer_init(&shell.notice_timer, on_notice_timer, NULL);
}

int shell_k_done(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	bl_wait_ctx(L, ctx);
	return 0;
}

static int l_prompt_wait(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "the shell prompt");

	w->cancel = prompt_cancel;
	shell.prompt_w = w;
	if (bl_io_start(shell.loop, &shell.in_io, BL_IO_READ) < 0 ||
	    bl_io_start(shell.loop, &shell.sig_io, BL_IO_READ) < 0 ||
	    bl_timer_after(shell.loop, &shell.notice_timer, NOTICE_US, NOTICE_US) < 0) {
		prompt_cancel(w);
		return luaL_error(L, "the shell prompt: out of memory");
	}
	return bl_wait_yield(L, w, shell_k_done);
}

/* Real time: run the loop until a line (or EOF, Ctrl-C, SIGTERM, os.exit). */
static void wait_real(void)
{
	lua_State *L = shell.L;

	while (shell.st == LINE_NONE && !shell.exit_req) {
		int top = lua_gettop(L);

		lua_pushcfunction(L, l_prompt_wait);
		if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
			const char *m = lua_tostring(L, -1);
			shell_lr_stop();
			shell_sayf(stderr, "batlab: shell: %s\n", m ? m : "the prompt failed");
			shell.st = LINE_EOF;
		}
		lua_settop(L, top);
	}
}

/* Virtual time: standard input and signals only; the clock stands still. */
static void wait_virtual(void)
{
	while (shell.st == LINE_NONE && !shell.exit_req) {
		struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {shell.sig_io.fd, POLLIN, 0}};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			shell_lr_stop();
			shell.st = LINE_EOF;
			break;
		}
		if (p[1].revents)
			shell_handle_signals();
		if (shell.st == LINE_NONE && p[0].revents)
			lr_feed();
	}
}

enum line_status shell_read_line(const char *prompt, char **line)
{
	shell.st = LINE_NONE;
	shell.line = NULL;
	shell_handle_signals();
	if (shell.st == LINE_NONE) {
		lr_start(prompt);
		if (shell.st == LINE_NONE) {
			if (shell.virt)
				wait_virtual();
			else
				wait_real();
		}
	}
	shell_lr_stop();
	*line = shell.line;
	shell.line = NULL;
	return shell.st;
}

