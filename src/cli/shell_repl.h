/* cli/shell_repl.h - the interactive prompt of `batlab shell`. */
#ifndef BL_SHELL_REPL_H
#define BL_SHELL_REPL_H

#include <stddef.h>

struct bl_engine;
struct bl_session;

/* The engine's output (bl_engine_opts.output, ud unused) for an engine the
 * prompt will run: text printed while the prompt is on screen (by a task
 * in the background) is written above it, and the line being edited is
 * redrawn below. */
void shell_repl_output(void *ud, const char *text, size_t len);

/* Run the prompt on the terminal on standard input until Ctrl-D (0),
 * os.exit(n) (n) or SIGTERM (130). The engine has the globals batlab, pool
 * (the session's) and dev. Tasks still running at the end are cancelled
 * (their channels made safe); the caller then frees the engine and the
 * session. */
int shell_repl_run(struct bl_engine *e, struct bl_session *s);

#endif
