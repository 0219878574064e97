/* sim/ptyserve.c - virtual Batlabs on pseudo-terminals (see ptyserve.h). */
#define _GNU_SOURCE /* posix_openpt, ptsname_r */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/fdio.h"
#include "core/loop.h"
#include "sim/ptyserve.h"

#define MOD "sim"
/* Device output is dropped, as a real Batlab's is when no host reads its
 * port, once this much waits unread in the pty (no client, or one that does
 * not read): a client that opens later must not get minutes of stale
 * streams. Enough for a host that was off the CPU for a second at --speed
 * 100 (four channels stream about 5 kB/s then): a reply dropped there
 * would hold its next watchdog refresh back for a request timeout, a
 * quarter of a second, which at that speed is the whole 25.5 s watchdog. */
#define UNREAD_LIMIT (16 * 1024)
/* Our own queue for a master that is momentarily not writable. */
#define OUT_LIMIT (64 * 1024)

struct pty_dev {
	struct bl_ptyserve *srv;
	struct bl_simdev *dev;
	int master;
	int slave;              /* kept open: raw settings, no hang-ups */
	char path[64];
	struct bl_io io;
	struct bl_timer timer;
	uint64_t due;           /* loop time the timer is armed for; 0: not armed */
	uint8_t *out;
	size_t out_len, out_cap;
	bool broken;            /* the master failed; stop serving it */
};

struct bl_ptyserve {
	struct bl_loop *loop;
	double speed;
	uint64_t t0;            /* loop time at model time 0 */
	int n;
	struct pty_dev *devs;
};

/* A server woken more than this after its timer was due was starved of
 * the CPU (a loaded machine), not idle: the model does not jump over the
 * rest of that gap. Otherwise, at a high --speed, the bytes the host sent
 * meanwhile (its watchdog refreshes) would all be read after a jump of
 * many model seconds, and the model's watchdog would trip although the
 * host refreshed it in time. */
#define STALL_US 20000u

/* Late by more than STALL_US for d's timer: model time stands still for
 * the excess (the start moves forward). */
static void catch_up(struct pty_dev *d)
{
	struct bl_ptyserve *s = d->srv;
	uint64_t now = bl_loop_now(s->loop);

	if (d->due && now > d->due + STALL_US) {
		uint64_t shift = now - d->due - STALL_US;

		s->t0 += shift;
		/* the other devices' timers were armed on the old start */
		for (int i = 0; i < s->n; i++)
			if (s->devs[i].due)
				s->devs[i].due += shift;
	}
	d->due = 0;
}

/* Current model time (microseconds since start, scaled by speed). */
static uint64_t model_now(const struct bl_ptyserve *s)
{
	uint64_t now = bl_loop_now(s->loop);
	uint64_t el = now > s->t0 ? now - s->t0 : 0;

	if (s->speed == 1.0)
		return el;
	return (uint64_t)((double)el * s->speed);
}

/* The loop time at which model time reaches m (rounded up, so the device
 * really has its bytes when the timer fires). */
static uint64_t loop_time_of(const struct bl_ptyserve *s, uint64_t m)
{
	if (s->speed == 1.0)
		return s->t0 + m;
	return s->t0 + (uint64_t)ceil((double)m / s->speed) + 1;
}

static void dev_rewatch(struct pty_dev *d);

static void dev_flush(struct pty_dev *d)
{
	if (bl_fd_drain(d->master, d->out, &d->out_len) < 0) {
		BL_WARN(MOD, "%s: write to pty master: %s", d->path, strerror(errno));
		d->broken = true;
	}
}

static void dev_queue(struct pty_dev *d, const uint8_t *data, size_t n)
{
	int unread = 0;

	if (ioctl(d->slave, FIONREAD, &unread) == 0 && unread > UNREAD_LIMIT)
		return;
	if (d->out_len + n > OUT_LIMIT) {
		BL_DEBUG(MOD, "%s: client not reading, %zu bytes dropped", d->path, n);
		return;
	}
	if (d->out_len + n > d->out_cap) {
		size_t cap = d->out_cap ? d->out_cap : 512;
		uint8_t *p;
		while (cap < d->out_len + n)
			cap *= 2;
		p = realloc(d->out, cap);
		if (!p)
			return;
		d->out = p;
		d->out_cap = cap;
	}
	memcpy(d->out + d->out_len, data, n);
	d->out_len += n;
}

/* Move every device byte due by now to the master, then arm the timer for
 * the device's next event. */
static void dev_pump(struct pty_dev *d)
{
	struct bl_ptyserve *s = d->srv;
	uint64_t m = model_now(s), next, at, now;
	uint8_t buf[512];
	size_t n;

	while ((n = bl_simdev_host_read(d->dev, m, buf, sizeof buf)) > 0)
		dev_queue(d, buf, n);
	if (d->out_len > 0)
		dev_flush(d);
	next = bl_simdev_next_event_us(d->dev);
	if (next == BL_NEVER || d->broken) {
		bl_timer_stop(s->loop, &d->timer);
		d->due = 0;
	} else {
		at = loop_time_of(s, next);
		now = bl_loop_now(s->loop);
		/* Rounding must never re-arm in the past and spin. */
		if (next <= m && at <= now)
			at = now + 1;
		bl_timer_start(s->loop, &d->timer, at, 0);
		d->due = at;
	}
	dev_rewatch(d);
}

static void on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	catch_up(ud);
	dev_pump(ud);
}

static void on_master(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct pty_dev *d = ud;
	uint8_t buf[4096];

	(void)loop;
	(void)io;
	catch_up(d);
	if (events & BL_IO_WRITE)
		dev_flush(d);
	if (events & BL_IO_READ) {
		for (;;) {
			ssize_t r = read(d->master, buf, sizeof buf);
			if (r > 0) {
				bl_simdev_host_write(d->dev, model_now(d->srv), buf, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			/* Cannot happen while we hold the slave open; do not spin. */
			BL_WARN(MOD, "%s: read from pty master: %s", d->path,
			        r < 0 ? strerror(errno) : "end of file");
			d->broken = true;
			break;
		}
	}
	dev_pump(d);
}

static void dev_rewatch(struct pty_dev *d)
{
	if (d->broken) {
		bl_io_stop(d->srv->loop, &d->io);
		bl_timer_stop(d->srv->loop, &d->timer);
		return;
	}
	bl_io_start(d->srv->loop, &d->io, BL_IO_READ | (d->out_len ? BL_IO_WRITE : 0));
}

static int open_pty(struct pty_dev *d, char *err, size_t errlen)
{
	const char *step;

	d->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (d->master < 0) {
		step = "posix_openpt";
		goto fail;
	}
	step = "grantpt";
	if (grantpt(d->master) < 0)
		goto fail;
	step = "unlockpt";
	if (unlockpt(d->master) < 0)
		goto fail;
	step = "ptsname";
	if (ptsname_r(d->master, d->path, sizeof d->path) != 0)
		goto fail;
	step = "set master raw";
	if (bl_tty_set_raw(d->master) < 0)
		goto fail;
	step = "fcntl";
	if (fcntl(d->master, F_SETFL, fcntl(d->master, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	step = "open slave";
	d->slave = open(d->path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (d->slave < 0)
		goto fail;
	step = "set slave raw";
	if (bl_tty_set_raw(d->slave) < 0)
		goto fail;
	return BL_OK;
fail:
	snprintf(err, errlen, "pseudo-terminal: %s: %s", step, strerror(errno));
	return BL_ERR_IO;
}

int bl_ptyserve_new(struct bl_loop *loop, const struct bl_sim_layout *layout, double speed,
                    struct bl_ptyserve **out, char *err, size_t errlen)
{
	struct bl_ptyserve *s;
	int r;

	if (!(speed > 0) || !isfinite(speed) || layout->ndevices <= 0) {
		snprintf(err, errlen, "invalid speed or empty layout");
		return BL_ERR_ARG;
	}
	s = calloc(1, sizeof *s);
	if (s)
		s->devs = calloc((size_t)layout->ndevices, sizeof *s->devs);
	if (!s || !s->devs) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return BL_ERR_MEM;
	}
	s->loop = loop;
	s->speed = speed;
	s->t0 = bl_loop_now(loop);
	for (int i = 0; i < layout->ndevices; i++) {
		s->devs[i].master = -1;
		s->devs[i].slave = -1;
		bl_timer_init(&s->devs[i].timer, on_timer, &s->devs[i]);
	}
	for (int i = 0; i < layout->ndevices; i++) {
		struct pty_dev *d = &s->devs[i];
		d->srv = s;
		s->n = i + 1;
		r = open_pty(d, err, errlen);
		if (r < 0)
			goto fail;
		d->dev = bl_simdev_new(&layout->devices[i], 0);
		if (!d->dev) {
			snprintf(err, errlen, "cannot create virtual device %d", i);
			r = BL_ERR_MEM;
			goto fail;
		}
		bl_io_init(&d->io, d->master, on_master, d);
		dev_pump(d);
		BL_INFO(MOD, "device %d (serial %u) on %s", i, layout->devices[i].serial_num, d->path);
	}
	*out = s;
	return BL_OK;
fail:
	bl_ptyserve_free(s);
	return r;
}

void bl_ptyserve_free(struct bl_ptyserve *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		struct pty_dev *d = &s->devs[i];
		if (d->io.active)
			bl_io_stop(s->loop, &d->io);
		bl_timer_stop(s->loop, &d->timer);
		if (d->dev)
			bl_simdev_free(d->dev);
		if (d->master >= 0)
			close(d->master);
		if (d->slave >= 0)
			close(d->slave);
		free(d->out);
	}
	free(s->devs);
	free(s);
}

int bl_ptyserve_count(const struct bl_ptyserve *s) { return s->n; }

const char *bl_ptyserve_path(const struct bl_ptyserve *s, int i)
{
	return i >= 0 && i < s->n ? s->devs[i].path : NULL;
}
