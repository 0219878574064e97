/* cli/shell_parts.h - what the parts of the interactive `batlab shell`
 * share; internal to shell_repl.c (the session, running lines),
 * shell_prompt.c (reading a line, output around the prompt) and
 * shell_signals.c. How the prompt meets the loop is told in shell_repl.c.
 */
#ifndef BL_SHELL_PARTS_H
#define BL_SHELL_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <lua.h>

#include "core/bl.h"
#include "core/loop.h"
#include "lua/sched.h"

enum line_status { LINE_NONE, LINE_READY, LINE_EOF, LINE_INTR, LINE_TERM };

/* The one shell of the process (a signal handler reaches it). */
struct shell_state {
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
};
extern struct shell_state shell;

/* ---- shell_prompt.c --------------------------------------------------------- */

/* GNU readline: the history (read from and written to shell.history),
 * and what the signals do to a prompt on screen. */
void shell_lr_init(void);
void shell_lr_add_history(const char *s);
void shell_lr_done(void);
void shell_lr_interrupt(void);   /* Ctrl-C: drop what was typed */
void shell_lr_stop(void);        /* take the prompt down */
void shell_lr_resize(void);

/* Everything the shell or the loop writes goes through here, so that a
 * prompt on screen is put back below the text. */
void shell_say(FILE *f, const char *text, size_t len);
void shell_sayf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The log handler while the shell runs. */
void shell_log(void *ud, enum bl_log_level level, const char *module, const char *msg);

/* The prompt's watchers: standard input and the signal pipe's read end. */
void shell_prompt_init(int sig_fd);
/* Show prompt and wait for a line (*line malloc'd when LINE_READY). */
enum line_status shell_read_line(const char *prompt, char **line);
/* The real-time prompt's wait ends now (a line, a signal, os.exit). */
void shell_prompt_finish(void);
/* Stop the prompt's watchers and timer. */
void shell_stop_watchers(void);
/* A scheduler wait's continuation with no results. */
int shell_k_done(lua_State *L, int status, lua_KContext ctx);

/* ---- shell_signals.c --------------------------------------------------------- */

/* Take SIGINT, SIGTERM, SIGHUP and SIGWINCH for the session; the read end
 * of the pipe their handler writes to, or -1 with errno. */
int shell_catch_signals(void);
void shell_release_signals(void);
/* Act on the signals that came (at the prompt). */
void shell_handle_signals(void);
/* Around code run on the main thread, which signals interrupt. */
void shell_begin_command(bool pending);
void shell_end_command(void);
/* SIGTERM or SIGHUP came: the shell should end. */
bool shell_term_requested(void);

/* ---- shell_repl.c ------------------------------------------------------------ */

/* Print the notices (plugs, tasks that ended) of batlab.shell. */
void shell_print_notices(void);

#endif
