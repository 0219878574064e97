/* support/child.c - run the built batlab binary as a child process, for
 * the tests that exercise the command line or `batlab sim --pty`. Every
 * wait is a poll with a guard time: a hung child fails a test, never
 * hangs it. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/child.h"

char batlab[PATH_MAX];

/* $BATLAB (set by make check), else ../batlab beside the tests dir. */
bool find_batlab(void)
{
	const char *env = getenv("BATLAB");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(batlab, sizeof batlab, "%s", env);
		return access(batlab, X_OK) == 0;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return false;
	self[n] = 0;
	for (int i = 0; i < 2 && (slash = strrchr(self, '/')); i++)
		*slash = 0;
	if (strlen(self) + sizeof "/batlab" > sizeof batlab)
		return false;
	memcpy(batlab, self, strlen(self));
	memcpy(batlab + strlen(self), "/batlab", sizeof "/batlab");
	return access(batlab, X_OK) == 0;
}

int spawn(struct child *c, char *const argv[])
{
	int po[2], pe[2];

	if (pipe(po) < 0 || pipe(pe) < 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		execv(batlab, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	c->out = po[0];
	c->err = pe[0];
	return 0;
}

/* Read from fd until `lines` newlines or EOF, within the guard time.
 * Returns the byte count. */
size_t read_lines(int fd, char *buf, size_t size, int lines, int guard_ms)
{
	size_t len = 0;
	int seen = 0;

	while (len + 1 < size && seen < lines) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;
		if (poll(&p, 1, guard_ms) <= 0)
			break;
		r = read(fd, buf + len, size - 1 - len);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			seen += buf[len + (size_t)i] == '\n';
		len += (size_t)r;
	}
	buf[len] = 0;
	return len;
}

/* Wait for the child's exit: its stdout reaching EOF (poll, guarded) then
 * waitpid. Returns the wait status, or -1 if it did not exit in time. */
int reap(struct child *c, int guard_ms)
{
	char buf[256];
	int st = -1;

	for (;;) {
		struct pollfd p = {c->out, POLLIN, 0};
		if (poll(&p, 1, guard_ms) <= 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, 0);
			return -1;
		}
		if (read(c->out, buf, sizeof buf) <= 0)
			break;
	}
	waitpid(c->pid, &st, 0);
	close(c->out);
	close(c->err);
	return st;
}

/* Run a short command, collecting stdout and stderr. */
int run_cmd(char *const argv[], char *out, size_t outsz, char *err, size_t errsz)
{
	struct child c;
	int st;

	if (spawn(&c, argv) < 0)
		return -1;
	read_lines(c.out, out, outsz, INT_MAX, 5000);
	read_lines(c.err, err, errsz, INT_MAX, 5000);
	st = reap(&c, 5000);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

