/* fdio.c - see fdio.h. */
#include <errno.h>
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

int bl_fd_drain(int fd, uint8_t *buf, size_t *len)
{
	size_t off = 0;
	int rc = 0;

	while (off < *len) {
		ssize_t w = write(fd, buf + off, *len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w == 0)
			errno = EPIPE;
		rc = -1;
		break;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	return rc;
}
