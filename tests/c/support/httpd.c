/* support/httpd.c - a tiny HTTP/1.0 server for the firmware tests (see
 * httpd.h). One connection at a time, in a forked child. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/httpd.h"

static int bound_socket(int *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void answer(int fd, int status, const char *extra, const char *body, size_t n)
{
	char head[512];
	int len = snprintf(head, sizeof head,
	                   "HTTP/1.0 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                   status, n, extra);

	send_all(fd, head, (size_t)len);
	send_all(fd, body, n);
}

/* A file of dir, whole or (truncate) the headers for all of it and half
 * of its bytes. */
static void serve_file(int fd, const char *dir, const char *name, int truncate)
{
	char path[4096], *buf;
	struct stat st;
	ssize_t n;
	int f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (strstr(name, "..") || (f = open(path, O_RDONLY)) < 0) {
		answer(fd, 404, "", "no such file\n", 13);
		return;
	}
	if (fstat(f, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		close(f);
		answer(fd, 500, "", "", 0);
		return;
	}
	n = read(f, buf, (size_t)st.st_size);
	close(f);
	if (n < 0)
		n = 0;
	if (truncate) {
		char head[256];
		int len = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zd\r\n\r\n", n);

		send_all(fd, head, (size_t)len);
		send_all(fd, buf, (size_t)n / 2);
	} else {
		answer(fd, 200, "", buf, (size_t)n);
	}
	free(buf);
}

static void log_request(const char *dir, const char *path, const char *req)
{
	char file[4096], line[1024];
	const char *ua = strstr(req, "User-Agent: ");
	int f, len;

	ua = ua ? ua + 12 : "-";
	len = snprintf(line, sizeof line, "%s %.*s\n", path, (int)strcspn(ua, "\r\n"), ua);
	snprintf(file, sizeof file, "%s/requests.log", dir);
	if ((f = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644)) >= 0) {
		send_all(f, line, (size_t)len);
		close(f);
	}
}

static void serve_one(int fd, const char *dir)
{
	char req[8192], path[1024], extra[1200];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof req - 1 && (n = read(fd, req + got, sizeof req - 1 - got)) > 0) {
		got += (size_t)n;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[got] = 0;
	if (sscanf(req, "GET %1023s ", path) != 1) {
		answer(fd, 400, "", "", 0);
		return;
	}
	log_request(dir, path, req);
	if (strncmp(path, "/status/", 8) == 0) {
		answer(fd, atoi(path + 8), "", "", 0);
	} else if (strncmp(path, "/redirect/", 10) == 0) {
		snprintf(extra, sizeof extra, "Location: /%s\r\n", path + 10);
		answer(fd, 302, extra, "", 0);
	} else if (strncmp(path, "/truncate/", 10) == 0) {
		serve_file(fd, dir, path + 10, 1);
	} else {
		serve_file(fd, dir, path + 1, 0);
	}
}

int httpd_start(struct httpd *h, const char *dir)
{
	int lfd = bound_socket(&h->port);

	h->closed_fd = bound_socket(&h->closed_port);
	if (lfd < 0 || h->closed_fd < 0 || listen(lfd, 16) < 0)
		return -1;
	fflush(stdout);
	h->pid = fork();
	if (h->pid < 0)
		return -1;
	if (h->pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		/* Never outlive the test, never hold its TAP output open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int c = accept(lfd, NULL, NULL);

			if (c < 0) {
				if (errno == EINTR)
					continue;
				_exit(1);
			}
			serve_one(c, dir);
			close(c);
		}
	}
	close(lfd);
	return 0;
}

void httpd_stop(struct httpd *h)
{
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
	}
	if (h->closed_fd >= 0)
		close(h->closed_fd);
	h->closed_fd = -1;
}
