/* link/tty.c - descriptor links: POSIX termios for any tty path (notably
 * pseudo-terminals, which libserialport 0.1.1 refuses), the descriptor core
 * that serial.c reuses, and the kind-independent link functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include "core/bl.h"
#include "link/link.h"

#define MOD "link"
/* Output waiting for a device that does not read: far more than any
 * request window needs, small enough to notice a dead device. */
#define TX_LIMIT (64 * 1024)

/* ---- kind-independent parts -------------------------------------------- */

void bl_link_base_init(struct bl_link *l, const struct bl_link_ops *ops, const char *kind,
                       const char *name)
{
	memset(l, 0, sizeof *l);
	l->ops = ops;
	l->kind = kind;
	snprintf(l->name, sizeof l->name, "%s", name ? name : kind);
}

void bl_link_set_error(struct bl_link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->error, sizeof l->error, fmt, ap);
	va_end(ap);
	BL_DEBUG(MOD, "%s", l->error);
}

bool bl_link_notify(struct bl_link *l)
{
	bool alive = true;
	bool *outer = l->alive;

	if (!l->on_data)
		return true;
	l->alive = &alive;
	l->on_data(l, l->ud);
	if (!alive) {
		/* Freed inside the callback: tell any enclosing notify too. */
		if (outer)
			*outer = false;
		return false;
	}
	l->alive = outer;
	return true;
}

static const struct bl_link_ops fd_ops;

int bl_link_read(struct bl_link *l, uint8_t *buf, size_t max)
{
	if (max == 0)
		return 0;
	if (l->rx_len > 0) {
		bool was_full = l->rx_len == sizeof l->rx;
		size_t n = l->rx_len < max ? l->rx_len : max;
		if (n > (size_t)INT32_MAX)
			n = INT32_MAX;
		memcpy(buf, l->rx, n);
		memmove(l->rx, l->rx + n, l->rx_len - n);
		l->rx_len -= n;
		if (was_full)
			l->ops->rewatch(l); /* room again: resume reading */
		return (int)n;
	}
	if (l->closed)
		return BL_ERR_CLOSED;
	/* A descriptor the loop watches is read by its watcher, which fills
	 * rx and notifies; asking the kernel again here would only return
	 * EAGAIN (half the reads of a lab of ptys). */
	if (l->ops == &fd_ops && l->loop)
		return 0;
	return l->ops->read(l, buf, max);
}

int bl_link_watch(struct bl_link *l, struct bl_loop *loop, bl_link_fn on_data, void *ud)
{
	int r;

	if (l->loop && (loop != l->loop || !on_data)) {
		l->on_data = NULL;
		l->ops->rewatch(l);
		l->loop = NULL;
	}
	if (!on_data)
		return BL_OK;
	l->loop = loop;
	l->on_data = on_data;
	l->ud = ud;
	r = l->ops->rewatch(l);
	if (r < 0) {
		l->on_data = NULL;
		l->loop = NULL;
	}
	return r;
}

void bl_link_close(struct bl_link *l)
{
	if (!l)
		return;
	if (l->alive)
		*l->alive = false;
	if (l->loop) {
		l->on_data = NULL;
		l->ops->rewatch(l);
	}
	l->ops->destroy(l);
}

/* ---- the descriptor link ------------------------------------------------- */

struct fd_link {
	struct bl_link base;
	int fd;
	struct bl_io io;
	void (*release)(int fd, void *ctx);
	void *ctx;
	uint8_t *tx;
	size_t tx_len, tx_cap;
};

static int fd_rewatch(struct bl_link *l);

static bool gone_errno(int e)
{
	/* What a vanished USB device or a closed pty looks like. */
	return e == EIO || e == ENXIO || e == ENODEV || e == EBADF || e == EPIPE;
}

static void fd_mark_closed(struct fd_link *f, const char *why)
{
	if (f->base.closed)
		return;
	f->base.closed = true;
	bl_link_set_error(&f->base, "%s: %s", f->base.name, why);
	BL_INFO(MOD, "%s: closed (%s)", f->base.name, why);
	f->tx_len = 0;
	fd_rewatch(&f->base);
}

static int fd_read(struct bl_link *l, uint8_t *buf, size_t max)
{
	struct fd_link *f = (struct fd_link *)l;

	if (l->closed)
		return BL_ERR_CLOSED;
	if (max > 65536)
		max = 65536;
	for (;;) {
		ssize_t r = read(f->fd, buf, max);
		if (r > 0)
			return (int)r;
		if (r == 0) {
			fd_mark_closed(f, "end of file (device gone)");
			return BL_ERR_CLOSED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		fd_mark_closed(f, strerror(errno));
		return BL_ERR_CLOSED;
	}
}


/* Push queued output; false if the link closed meanwhile. */
static bool fd_flush(struct fd_link *f)
{
	if (bl_fd_drain(f->fd, f->tx, &f->tx_len) < 0) {
		fd_mark_closed(f, strerror(errno));
		return false;
	}
	return true;
}

/* Append to the output queue, which may not outgrow TX_LIMIT. */
static int tx_queue(struct fd_link *f, const uint8_t *data, size_t n)
{
	size_t need = f->tx_len + n;

	if (need > TX_LIMIT) {
		bl_link_set_error(&f->base, "%s: output buffer full (device not reading)", f->base.name);
		return BL_ERR_IO;
	}
	if (need > f->tx_cap) {
		size_t cap = f->tx_cap ? f->tx_cap : 256;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(f->tx, cap);
		if (!p) {
			bl_link_set_error(&f->base, "%s: out of memory", f->base.name);
			return BL_ERR_MEM;
		}
		f->tx = p;
		f->tx_cap = cap;
	}
	memcpy(f->tx + f->tx_len, data, n);
	f->tx_len = need;
	return BL_OK;
}

static int fd_write(struct bl_link *l, const uint8_t *data, size_t n)
{
	struct fd_link *f = (struct fd_link *)l;
	size_t before = f->tx_len;
	int rc;

	if (l->closed)
		return BL_ERR_CLOSED;
	if (n > (size_t)INT32_MAX)
		return BL_ERR_ARG;
	/* Behind whatever waits, so the byte order holds; then push out what
	 * the descriptor takes now. */
	if ((rc = tx_queue(f, data, n)) != BL_OK)
		return rc;
	if (bl_fd_drain(f->fd, f->tx, &f->tx_len) < 0) {
		int e = errno;

		if (before == 0 && f->tx_len == n && !gone_errno(e)) {
			/* Nothing went out and the device is still there: this
			 * write fails, the link stays. */
			f->tx_len = 0;
			bl_link_set_error(l, "%s: write: %s", l->name, strerror(e));
			return BL_ERR_IO;
		}
		/* Gone, or failing after part of the data went out: the device
		 * would merge that part with the next packet into a command
		 * nobody sent, so the link is given up instead. */
		fd_mark_closed(f, strerror(e));
		return BL_ERR_CLOSED;
	}
	if ((before > 0) != (f->tx_len > 0))
		fd_rewatch(l);
	return (int)n;
}

static void fd_on_io(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct fd_link *f = ud;
	struct bl_link *l = &f->base;
	bool was_closed = l->closed, got = false;

	(void)loop;
	(void)io;
	if ((events & BL_IO_WRITE) && f->tx_len > 0)
		fd_flush(f);
	if ((events & BL_IO_READ) && !l->closed) {
		while (l->rx_len < sizeof l->rx) {
			size_t room = sizeof l->rx - l->rx_len;
			int r = fd_read(l, l->rx + l->rx_len, room);
			if (r <= 0)
				break;
			l->rx_len += (size_t)r;
			got = true;
			/* A short read took all there was; the poll is level-
			 * triggered, so bytes arriving now wake it again. Not
			 * reading on to EAGAIN saves a read per wake-up (a lab
			 * of ptys wakes a thousand times a second). */
			if ((size_t)r < room)
				break;
		}
	}
	if ((got || (l->closed && !was_closed)) && !bl_link_notify(l))
		return;
	fd_rewatch(l);
}

static int fd_rewatch(struct bl_link *l)
{
	struct fd_link *f = (struct fd_link *)l;
	unsigned ev = 0;

	if (!l->loop)
		return BL_OK;
	if (!l->closed && l->on_data) {
		if (l->rx_len < sizeof l->rx)
			ev |= BL_IO_READ;
		if (f->tx_len > 0)
			ev |= BL_IO_WRITE;
	}
	if (!ev) {
		bl_io_stop(l->loop, &f->io);
		return BL_OK;
	}
	return bl_io_start(l->loop, &f->io, ev);
}

static int fd_fd(const struct bl_link *l)
{
	const struct fd_link *f = (const struct fd_link *)l;

	return f->fd;
}

static uint64_t fd_next_event(const struct bl_link *l)
{
	(void)l;
	return BL_NEVER;
}

static void fd_destroy(struct bl_link *l)
{
	struct fd_link *f = (struct fd_link *)l;

	/* Closing the descriptor also drops the flock. */
	if (f->release)
		f->release(f->fd, f->ctx);
	else
		close(f->fd);
	free(f->tx);
	free(f);
}

static const struct bl_link_ops fd_ops = {
	.write = fd_write,
	.read = fd_read,
	.rewatch = fd_rewatch,
	.fd = fd_fd,
	.next_event_us = fd_next_event,
	.destroy = fd_destroy,
};

/* flock conflicts between open file descriptions, so it also catches a
 * second open inside one process, and (unlike TIOCEXCL) binds root too. */
static int lock_fd(int fd, const char *path, char *err, size_t errlen)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return BL_OK;
	if (errno == EWOULDBLOCK) {
		snprintf(err, errlen, "%s: in use by another program", path);
		return BL_ERR_BUSY;
	}
	/* No lock support here (unusual for a device node): carry on. */
	BL_DEBUG(MOD, "%s: flock: %s", path, strerror(errno));
	return BL_OK;
}

int bl_link_fd_adopt(int fd, const char *path, const char *kind,
                     void (*release)(int fd, void *ctx), void *ctx,
                     struct bl_link **out, char *err, size_t errlen)
{
	struct fd_link *f;
	struct termios t;
	int r, fl;

	r = lock_fd(fd, path, err, errlen);
	if (r == BL_OK && tcgetattr(fd, &t) == 0 && (t.c_cc[VMIN] != 1 || t.c_cc[VTIME] != 0)) {
		/* libserialport leaves VMIN 0; see bl_tty_set_raw for why 1. */
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(fd, TCSANOW, &t);
	}
	if (r == BL_OK) {
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			r = BL_ERR_IO;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	f = r == BL_OK ? calloc(1, sizeof *f) : NULL;
	if (r == BL_OK && !f) {
		snprintf(err, errlen, "%s: out of memory", path);
		r = BL_ERR_MEM;
	}
	if (r < 0) {
		if (release)
			release(fd, ctx);
		else
			close(fd);
		return r;
	}
	bl_link_base_init(&f->base, &fd_ops, kind, path);
	f->fd = fd;
	f->release = release;
	f->ctx = ctx;
	bl_io_init(&f->io, fd, fd_on_io, f);
	*out = &f->base;
	return BL_OK;
}

/* ---- opening a tty with termios ---------------------------------------- */

static int open_status(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return BL_ERR_NOTFOUND;
	case EBUSY:
		return BL_ERR_BUSY;
	default:
		return BL_ERR_IO;
	}
}


int bl_link_open_tty(const char *path, struct bl_link **out, char *err, size_t errlen)
{
	int fd, r;

	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == EBUSY)
			snprintf(err, errlen, "%s: in use by another program", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return open_status(e);
	}
	if (!isatty(fd)) {
		snprintf(err, errlen, "%s: not a serial port or terminal", path);
		close(fd);
		return BL_ERR_ARG;
	}
	/* Lock before touching the settings of a port someone else uses. */
	r = lock_fd(fd, path, err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	/* Bytes from before we came are not ours to interpret: flushed. */
	if (bl_tty_set_raw(fd) < 0 || tcflush(fd, TCIOFLUSH) < 0) {
		snprintf(err, errlen, "%s: cannot set 38400 8N1 raw: %s", path, strerror(errno));
		close(fd);
		return BL_ERR_IO;
	}
	return bl_link_fd_adopt(fd, path, "tty", NULL, NULL, out, err, errlen);
}
