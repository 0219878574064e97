/* test_shell_repl.c - the interactive `batlab shell`, driven through a
 * pseudo-terminal as a user would: the child's standard input, output and
 * error are the pty's slave (its controlling terminal, so Ctrl-C is a real
 * SIGINT from the line discipline); we write keystrokes to the master and
 * read until the prompt comes back.
 *
 * A virtual session (--sim) checks the prompt itself: values printed like
 * lua(1), errors, continuation lines, tasks(), spawn + batlab.run(),
 * notices, virtual time standing still at the prompt, line editing and
 * history, Ctrl-C, Ctrl-D, os.exit and SIGTERM. A
 * real-time session against `batlab sim --pty` checks what the virtual one
 * cannot: a task keeps running while the prompt waits for input, and
 * Ctrl-C interrupts a call that waits.
 *
 * Every read is a poll with a 5 s guard: a hung shell fails the test, it
 * never hangs it. Nothing asserts on timing.
 */
#define _GNU_SOURCE /* posix_openpt, ptsname_r */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "support/child.h"
#include "tap.h"

#define GUARD_MS 5000
#define PROMPT "batlab> "
#define PROMPT_MORE "batlab>> "

struct term {
	int fd;             /* the pty master */
	pid_t pid;
	char out[1 << 16];
	size_t len;         /* bytes in out */
	size_t pos;         /* bytes consumed by expect() */
	bool eof;
};

static char home[64];

static bool term_open(struct term *t, char *const argv[])
{
	char name[128];
	struct winsize ws = {.ws_row = 24, .ws_col = 250};

	memset(t, 0, sizeof *t);
	t->fd = posix_openpt(O_RDWR | O_NOCTTY);
	if (t->fd < 0 || grantpt(t->fd) < 0 || unlockpt(t->fd) < 0 ||
	    ptsname_r(t->fd, name, sizeof name) != 0)
		return false;
	/* Wide: readline would scroll a long line sideways on a dumb terminal. */
	ioctl(t->fd, TIOCSWINSZ, &ws);
	t->pid = fork();
	if (t->pid < 0)
		return false;
	if (t->pid == 0) {
		int s;

		setsid();
		s = open(name, O_RDWR);   /* the first tty opened: the controlling one */
		if (s < 0)
			_exit(127);
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2)
			close(s);
		close(t->fd);
		/* A terminal without escape sequences, no user key bindings, and
		 * the history in our own directory. */
		setenv("TERM", "dumb", 1);
		setenv("INPUTRC", "/dev/null", 1);
		setenv("HOME", home, 1);
		execv(batlab, argv);
		_exit(127);
	}
	return true;
}

static void term_send(struct term *t, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(t->fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Read until `needle` appears in what expect() has not consumed yet; the
 * text before it, without carriage returns, goes to `before`. */
static bool expect(struct term *t, const char *needle, char *before, size_t bsz)
{
	for (;;) {
		char *hit;
		struct pollfd p = {t->fd, POLLIN, 0};
		ssize_t n;

		t->out[t->len] = '\0';
		hit = strstr(t->out + t->pos, needle);
		if (hit) {
			size_t k = 0;
			for (char *c = t->out + t->pos; c < hit; c++)
				if (*c != '\r' && before && k + 1 < bsz)
					before[k++] = *c;
			if (before && bsz)
				before[k] = '\0';
			t->pos = (size_t)(hit - t->out) + strlen(needle);
			/* Keep the buffer small: drop what was consumed. */
			memmove(t->out, t->out + t->pos, t->len - t->pos);
			t->len -= t->pos;
			t->pos = 0;
			return true;
		}
		if (t->eof || t->len + 1 >= sizeof t->out)
			break;
		if (poll(&p, 1, GUARD_MS) <= 0)
			break;
		n = read(t->fd, t->out + t->len, sizeof t->out - 1 - t->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			t->eof = true;   /* EIO: the child closed the terminal */
		else
			t->len += (size_t)n;
	}
	t->out[t->len] = '\0';
	diag("expected '%s' after: '%s'", needle, t->out + t->pos);
	if (before && bsz)
		before[0] = '\0';
	return false;
}

/* Run one line at the prompt: its output, without the echoed line and the
 * final newline. */
static const char *cmd(struct term *t, const char *line)
{
	static char buf[8192];
	char *nl;
	size_t n;

	term_send(t, line);
	term_send(t, "\n");
	if (!expect(t, PROMPT, buf, sizeof buf))
		return "(no prompt)";
	nl = strchr(buf, '\n');
	if (!nl)
		return "";
	n = strlen(nl + 1);
	if (n > 0 && nl[n] == '\n')
		nl[n] = '\0';
	return nl + 1;
}

/* After the shell was told to leave: EOF on the terminal, then its status. */
static int term_exit_status(struct term *t)
{
	int st;

	while (!t->eof) {
		struct pollfd p = {t->fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, GUARD_MS) <= 0)
			break;
		n = read(t->fd, t->out, sizeof t->out);
		if (n < 0 && errno == EINTR)
			continue;
		t->eof = n <= 0;   /* EIO once the child closed the terminal */
	}
	if (!t->eof) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		close(t->fd);
		return -1;
	}
	waitpid(t->pid, &st, 0);
	close(t->fd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- a virtual session ------------------------------------------------------ */

/* Expressions, statements, errors and lines that ask for more. */
static void vs_lines(struct term *t)
{
	is_str(cmd(t, "1+1"), "2", "an expression prints its value");
	is_str(cmd(t, "dev.sn"), "1000", "dev is the active Batlab");
	is_str(cmd(t, "=2^10"), "1024.0", "=expr prints too");
	is_str(cmd(t, "x = 5"), "", "a statement prints nothing");
	is_str(cmd(t, "x, #pool:devices()"), "5\t1", "several values, tab-separated; pool is there");
	ok(strncmp(cmd(t, "error('boom')"), "stdin:1: boom", 13) == 0,
	   "an error prints its message, and the prompt comes back");
	term_send(t, "y = 1 +\n");
	ok(expect(t, PROMPT_MORE, NULL, 0), "an unfinished statement asks for more");
	is_str(cmd(t, "2"), "", "a continuation line completes it");
	is_str(cmd(t, "y"), "3", "and it ran");
	term_send(t, "for i = 1, 2 do\n");
	ok(expect(t, PROMPT_MORE, NULL, 0), "a block asks for more");
	is_str(cmd(t, "print(i * 10) end"), "10\n20", "and runs once it is complete");
}

/* Values a person reads: a sample, a packet and a table as their contents,
 * never "table: 0x...". Virtual time makes the sample repeatable. */
static void vs_values(struct term *t)
{
	is_str(cmd(t, "ch = dev:channel(2); ch:discharge(1)"), "", "discharging a channel");
	is_str(cmd(t, "= ch:wait()"),
	       "1000 CELL2 at 4.002 s: 3.7145 V, -0.9989 A, 25.0 degC, -0.000341 Ah, -0.000977 Wh, "
	       "DISCHARGE (step 0.948 s, VCC 5.000 V)",
	       "= ch:wait() prints the sample in its units");
	ok(strncmp(cmd(t, "ch.last"), "1000 CELL2 at 4.002 s: 3.7145 V", 31) == 0,
	   "so does a sample typed as an expression");
	is_str(cmd(t, "ch:idle()"), "true", "the channel idle again");
	is_str(cmd(t, "batlab.Packet{namespace = 'CELL2', addr = 'VOLTAGE', value = 30583}"),
	       "CELL2 VOLTAGE = 30583 (4.1999 V)", "a packet prints its display line");
	is_str(cmd(t, "{1, 'two', x = {y = true}, batlab.Packet{namespace = 2, addr = 7, value = 1}}"),
	       "{ 1, \"two\", <CELL2 VOLTAGE = 1 (0.0001 V)>, x = { y = true } }",
	       "a table prints its contents, nested ones too");
	ok(!strstr(cmd(t, "{{}, {}}"), "table: 0x"), "never an address");
}

/* Tasks at the prompt; virtual time moves only while a command runs. */
static void vs_tasks(struct term *t)
{
	/* A background task, started and waiting for virtual time to pass. */
	is_str(cmd(t, "t = batlab.spawn(function() batlab.sleep(1e6) end)"), "",
	       "spawning a task at the prompt");
	{
		const char *o = cmd(t, "tasks()");
		ok(strstr(o, "waiting") && strstr(o, "sleep() at stdin:1"),
		   "tasks() lists it, waiting in batlab.sleep");
		if (!strstr(o, "waiting"))
			diag("tasks(): '%s'", o);
	}
	is_str(cmd(t, "t.status"), "waiting", "the task started before the prompt came back");
	is_str(cmd(t, "t:cancel()"), "true\n[task 1 cancelled]", "cancelling it, with a notice");
	is_str(cmd(t, "tasks()"), "no tasks running", "tasks() with none");

	/* Virtual time only moves while a command runs. */
	is_str(cmd(t, "flag = false; batlab.spawn(function() batlab.sleep(1); flag = true end)"), "",
	       "a task that needs a second");
	is_str(cmd(t, "flag"), "false", "the prompt does not move virtual time");
	is_str(cmd(t, "batlab.sleep(1)"), "true\n[task 2 done]", "batlab.sleep at the prompt does");
	is_str(cmd(t, "flag"), "true", "and the task ran");

	is_str(cmd(t, "r = 0; batlab.spawn(function() batlab.sleep(2); r = 42; return 'ok' end)"), "",
	       "spawn at the prompt");
	is_str(cmd(t, "batlab.run()"), "true\n[task 3 done: ok]", "batlab.run() runs it, with a notice");
	is_str(cmd(t, "r"), "42", "its effect is there");
	ok(strncmp(cmd(t, "local _ = batlab.spawn(function() error('bad') end)"),
	           "[task 4 failed: stdin:1: bad]", 29) == 0,
	   "a failing task is reported in one line before the prompt");
}

/* readline's editing keys, history, and Ctrl-C at the prompt. */
static void vs_editing(struct term *t)
{
	/* Line editing and history (readline's emacs keys). */
	is_str(cmd(t, "30+4\x02\x02\x7f"), "7", "line editing: back two, delete one");
	is_str(cmd(t, "\x10"), "7", "history: Ctrl-P brings the line back");

	/* Ctrl-C clears the line being typed. */
	term_send(t, "garbage(");
	ok(expect(t, "garbage(", NULL, 0), "typing");
	term_send(t, "\x03");
	ok(expect(t, PROMPT, NULL, 0), "Ctrl-C gives a new prompt");
	is_str(cmd(t, "1+2"), "3", "without what was typed before");
}

static void virtual_session(void)
{
	char *argv[] = {batlab, "shell", "--sim", NULL};
	char head[4096], hist[4096], path[128];
	struct term t;
	FILE *f;
	size_t n;

	if (!ok(term_open(&t, argv), "shell --sim on a pseudo-terminal"))
		return;
	ok(expect(&t, PROMPT, head, sizeof head), "the prompt appears");
	ok(strstr(head, "Batlab 1000 on sim0 connected") != NULL,
	   "plug messages are printed before the first prompt");
	ok(strstr(head, "help()") != NULL, "the banner points to help()");
	vs_lines(&t);
	vs_values(&t);
	vs_tasks(&t);
	vs_editing(&t);

	/* Ctrl-D leaves, status 0. */
	term_send(&t, "\x04");
	is_int(term_exit_status(&t), 0, "Ctrl-D exits 0");

	snprintf(path, sizeof path, "%s/.batlab_history", home);
	n = 0;
	if ((f = fopen(path, "r"))) {
		n = fread(hist, 1, sizeof hist - 1, f);
		fclose(f);
	}
	hist[n] = '\0';
	ok(strstr(hist, "dev.sn\n") && strstr(hist, "for i = 1, 2 do\nprint(i * 10) end"),
	   "the history is saved in ~/.batlab_history");
	unlink(path);
}

/* os.exit(n) and SIGTERM leave through the same path as Ctrl-D. */
static void exit_session(void)
{
	char *argv[] = {batlab, "shell", "--sim", NULL};
	char path[128];
	struct term t;

	if (!ok(term_open(&t, argv), "another shell --sim"))
		return;
	ok(expect(&t, PROMPT, NULL, 0), "its prompt");
	is_str(cmd(&t, "t = batlab.spawn(function() batlab.sleep(1e6) end)"), "", "a task left running");
	term_send(&t, "os.exit(3)\n");
	ok(expect(&t, "cancelling 1 running task", NULL, 0), "leaving cancels it");
	is_int(term_exit_status(&t), 3, "os.exit(3) exits 3");

	/* SIGTERM at the prompt: the same clean path, status 130. */
	if (!ok(term_open(&t, argv), "a third shell --sim"))
		return;
	ok(expect(&t, PROMPT, NULL, 0), "its prompt");
	is_str(cmd(&t, "t = batlab.spawn(function() batlab.sleep(1e6) end)"), "", "a task left running");
	kill(t.pid, SIGTERM);
	ok(expect(&t, "cancelling 1 running task", NULL, 0), "SIGTERM cancels it");
	is_int(term_exit_status(&t), 130, "and exits 130");
	snprintf(path, sizeof path, "%s/.batlab_history", home);
	unlink(path);
}

/* ---- a real-time session against batlab sim --pty --------------------------------- */

static void realtime_session(void)
{
	char *sim_argv[] = {batlab, "sim", "--pty", NULL};
	char port[256], path[128], buf[4096];
	struct child sim;
	struct term t;
	size_t n;

	if (!ok(spawn(&sim, sim_argv) == 0, "batlab sim --pty"))
		return;
	n = read_lines(sim.out, port, sizeof port, 1, GUARD_MS);
	if (!ok(n > 1 && port[n - 1] == '\n', "it prints its pty")) {
		kill(sim.pid, SIGKILL);
		reap(&sim, GUARD_MS);
		return;
	}
	port[n - 1] = '\0';

	{
		char *argv[] = {batlab, "shell", "--port", port, NULL};
		if (!ok(term_open(&t, argv), "shell --port PTY (real time)"))
			goto out;
	}
	ok(expect(&t, PROMPT, buf, sizeof buf), "the prompt appears");
	ok(strstr(buf, "connected") != NULL, "the Batlab connected");

	is_str(cmd(&t, "local _ = batlab.spawn(function() batlab.sleep(0.2); print('tick from the background') end)"),
	       "", "a task spawned; the prompt is back at once");
	/* Nothing typed from here: the loop runs while the prompt waits. */
	ok(expect(&t, "tick from the background", NULL, 0), "the task runs while the prompt waits");
	ok(expect(&t, "[task 1 done]", NULL, 0), "and its end is reported at the prompt");
	ok(expect(&t, PROMPT, NULL, 0), "the prompt is shown again below");

	/* Ctrl-C during a call that waits: the scheduler's interrupt, as in
	 * `batlab run` (every task cancelled, every channel made safe). The
	 * task that prints can only run while the command waits in the loop,
	 * so the Ctrl-C surely lands there. */
	is_str(cmd(&t, "t2 = batlab.spawn(function() batlab.sleep(1e6) end)"), "", "a long task");
	term_send(&t, "local _ = batlab.spawn(function() batlab.sleep(0.05); print('in the wait') end); "
	              "batlab.sleep(1e6)\n");
	ok(expect(&t, "in the wait\r\n", NULL, 0), "a command that waits");
	term_send(&t, "\x03");
	ok(expect(&t, PROMPT, buf, sizeof buf), "Ctrl-C brings the prompt back");
	ok(strstr(buf, "interrupted") != NULL, "saying it was interrupted");
	ok(strstr(buf, "[task 2 cancelled]") != NULL, "and that the background task was cancelled");
	if (!strstr(buf, "[task 2 cancelled]"))
		diag("after Ctrl-C: '%s'", buf);
	/* A Ctrl-C in Lua that does not wait stops just that line. */
	is_str(cmd(&t, "t3 = batlab.spawn(function() batlab.sleep(1e6) end)"), "", "another long task");
	term_send(&t, "print('counting'); for i = 1, 1e15 do end\n");
	ok(expect(&t, "counting\r\n", NULL, 0), "a command that computes");
	term_send(&t, "\x03");
	ok(expect(&t, PROMPT, buf, sizeof buf), "Ctrl-C brings the prompt back");
	ok(strstr(buf, "interrupted") != NULL, "saying it was interrupted");
	is_str(cmd(&t, "t3.status"), "waiting", "the background task carries on");
	is_str(cmd(&t, "t2.status"), "cancelled", "it was");

	term_send(&t, "\x04");
	is_int(term_exit_status(&t), 0, "Ctrl-D exits 0");
	snprintf(path, sizeof path, "%s/.batlab_history", home);
	unlink(path);
out:
	kill(sim.pid, SIGTERM);
	reap(&sim, GUARD_MS);
}

int main(void)
{
	plan_lazy();
	if (!find_batlab()) {
		ok(0, "batlab binary found (set BATLAB)");
		return done_testing();
	}
	snprintf(home, sizeof home, "/tmp/batlab-shell-XXXXXX");
	if (!ok(mkdtemp(home) != NULL, "a home directory for the history"))
		return done_testing();
	virtual_session();
	exit_session();
	realtime_session();
	rmdir(home);
	return done_testing();
}
