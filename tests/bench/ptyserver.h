/* ptyserver.h - `batlab sim --pty` as a child for the benchmarks: started
 * with its arguments, its pty paths read from its standard output (one a
 * line), stopped with SIGTERM and its CPU time taken. */
#ifndef BL_BENCH_PTYSERVER_H
#define BL_BENCH_PTYSERVER_H

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PTYSERVER_MAX 64

struct server {
	pid_t pid;
	int out;
	char paths[PTYSERVER_MAX][128];
	int n;
};

static int start_server(struct server *s, const char *bin, char *const argv[], int ndev)
{
	int p[2];
	char buf[4096];
	size_t len = 0;
	int lines = 0;

	if (pipe(p) < 0)
		return -1;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(bin, argv);
		_exit(127);
	}
	close(p[1]);
	s->out = p[0];
	while (lines < ndev && len + 1 < sizeof buf) {
		struct pollfd pf = {s->out, POLLIN, 0};
		ssize_t r;
		if (poll(&pf, 1, 5000) <= 0)
			return -1;
		r = read(s->out, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			return -1;
		for (ssize_t i = 0; i < r; i++)
			lines += buf[len + (size_t)i] == '\n';
		len += (size_t)r;
	}
	buf[len] = 0;
	s->n = 0;
	for (char *line = strtok(buf, "\n"); line && s->n < ndev; line = strtok(NULL, "\n"))
		snprintf(s->paths[s->n++], sizeof s->paths[0], "%s", line);
	return s->n == ndev ? 0 : -1;
}

/* SIGTERM, wait; returns the server's CPU seconds (from RUSAGE_CHILDREN). */
static double stop_server(struct server *s)
{
	struct rusage ru;
	char buf[256];

	kill(s->pid, SIGTERM);
	for (;;) {
		struct pollfd pf = {s->out, POLLIN, 0};
		if (poll(&pf, 1, 5000) <= 0) {
			kill(s->pid, SIGKILL);
			break;
		}
		if (read(s->out, buf, sizeof buf) <= 0)
			break;
	}
	waitpid(s->pid, NULL, 0);
	close(s->out);
	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

#endif
