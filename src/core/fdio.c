/* fdio.c - see fdio.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/fdio.h"

int bl_tty_set_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -1;
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
	t.c_cflag |= CS8 | CLOCAL | CREAD;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	/* VMIN 1 with O_NONBLOCK: an empty read is EAGAIN, so 0 can only mean
	 * end of file (with VMIN 0 Linux returns 0 for "nothing yet"). */
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B38400);
	cfsetospeed(&t, B38400);
	return tcsetattr(fd, TCSANOW, &t);
}

/* Write buf[*off..n) until all of it went out or the descriptor would
 * block (EINTR is retried); *off advances by what was written. 0, or -1
 * with errno on an error (EPIPE for a write of 0 bytes). */
static int write_some(int fd, const uint8_t *buf, size_t n, size_t *off)
{
	while (*off < n) {
		ssize_t w = write(fd, buf + *off, n - *off);
		if (w > 0) {
			*off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w == 0)
			errno = EPIPE;
		return -1;
	}
	return 0;
}

int bl_fd_drain(int fd, uint8_t *buf, size_t *len)
{
	size_t off = 0;
	int rc = write_some(fd, buf, *len, &off);

	memmove(buf, buf + off, *len - off);
	*len -= off;
	return rc;
}

int bl_fd_pipe(int fds[2])
{
	if (pipe(fds) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	return 0;
}
