/* core/loop_io.c - the loop's descriptor watchers and sources, and the
 * poll that waits on the descriptors (and on the wake-up pipe) and calls
 * the watchers that are ready.
 */
#define _GNU_SOURCE /* ppoll: microsecond timeouts instead of poll's ms */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/loop_parts.h"

#define MOD "loop"

/* ---- Descriptor watchers ------------------------------------------------- */

void bl_io_init(struct bl_io *io, int fd, bl_io_fn fn, void *ud)
{
	memset(io, 0, sizeof *io);
	io->fd = fd;
	io->fn = fn;
	io->ud = ud;
}

int bl_io_start(struct bl_loop *loop, struct bl_io *io, unsigned events)
{
	int r;

	if (io->fd < 0 || !io->fn)
		return BL_ERR_ARG;
	io->events = events;
	if (io->active)
		return BL_OK;
	r = bl_loop_grow((void **)&loop->ios, &loop->capios, loop->nios + 1, sizeof *loop->ios);
	if (r < 0)
		return r;
	r = bl_loop_grow((void **)&loop->pfds, &loop->cappfds, loop->nios + 2, sizeof *loop->pfds);
	if (r < 0)
		return r;
	loop->ios[loop->nios++] = io;
	io->active = true;
	return BL_OK;
}

void bl_io_stop(struct bl_loop *loop, struct bl_io *io)
{
	if (!io->active)
		return;
	for (size_t i = 0; i < loop->nios; i++)
		if (loop->ios[i] == io) {
			memmove(&loop->ios[i], &loop->ios[i + 1], (loop->nios - i - 1) * sizeof *loop->ios);
			loop->nios--;
			break;
		}
	io->active = false;
	bl_loop_frames_forget(loop, io);
}

void bl_loop_poll_gap(struct bl_loop *loop, uint64_t us)
{
	loop->poll_gap_us = us;
}

/* ---- Sources ------------------------------------------------------------- */

void bl_source_init(struct bl_source *s, bl_source_next_fn next, bl_source_fn fn, void *ud)
{
	memset(s, 0, sizeof *s);
	s->next = next;
	s->fn = fn;
	s->ud = ud;
}

int bl_source_start(struct bl_loop *loop, struct bl_source *s)
{
	int r;

	if (!s->next || !s->fn)
		return BL_ERR_ARG;
	if (s->active)
		return BL_OK;
	r = bl_loop_grow((void **)&loop->srcs, &loop->capsrcs, loop->nsrcs + 1, sizeof *loop->srcs);
	if (r < 0)
		return r;
	loop->srcs[loop->nsrcs++] = s;
	s->active = true;
	return BL_OK;
}

void bl_source_stop(struct bl_loop *loop, struct bl_source *s)
{
	if (!s->active)
		return;
	for (size_t i = 0; i < loop->nsrcs; i++)
		if (loop->srcs[i] == s) {
			memmove(&loop->srcs[i], &loop->srcs[i + 1], (loop->nsrcs - i - 1) * sizeof *loop->srcs);
			loop->nsrcs--;
			break;
		}
	s->active = false;
	bl_loop_frames_forget(loop, s);
}

uint64_t bl_loop_sources_next(const struct bl_loop *loop)
{
	uint64_t next = BL_NEVER;

	for (size_t i = 0; i < loop->nsrcs; i++) {
		uint64_t t = loop->srcs[i]->next(loop->srcs[i]->ud);
		if (t < next)
			next = t;
	}
	return next;
}

int bl_loop_run_sources(struct bl_loop *loop, uint64_t now)
{
	struct frame f;
	size_t first = 0;
	int n = 0, r;

	/* Most passes find nothing due: look before taking a snapshot. */
	while (first < loop->nsrcs && loop->srcs[first]->next(loop->srcs[first]->ud) > now)
		first++;
	if (first == loop->nsrcs)
		return 0;
	r = bl_loop_frame_init(&f, loop, loop->nsrcs - first);
	if (r < 0)
		return r;
	f.items[f.n++] = loop->srcs[first];
	for (size_t i = first + 1; i < loop->nsrcs; i++)
		if (loop->srcs[i]->next(loop->srcs[i]->ud) <= now)
			f.items[f.n++] = loop->srcs[i];
	for (size_t i = 0; i < f.n; i++) {
		struct bl_source *s = f.items[i];
		if (!s)
			continue; /* stopped by an earlier callback */
		n++;
		s->fn(loop, s, now, s->ud);
	}
	bl_loop_frame_done(&f, loop);
	return n;
}

/* ---- Polling ------------------------------------------------------------- */

static void drain_wake(struct bl_loop *loop)
{
	char buf[64];

	while (read(loop->wake_r, buf, sizeof buf) > 0)
		;
}

static unsigned map_revents(const struct bl_io *io, short re)
{
	unsigned ev = 0;

	/* Hang-up and errors are reported as "readable" (or "writable" to a
	 * pure writer): the next read or write returns the actual condition. */
	if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
		ev |= (io->events & BL_IO_READ) ? BL_IO_READ : 0;
	if (re & POLLOUT)
		ev |= BL_IO_WRITE;
	if ((re & (POLLHUP | POLLERR | POLLNVAL)) && !(io->events & BL_IO_READ))
		ev |= io->events & BL_IO_WRITE;
	return ev & io->events;
}

int bl_loop_poll(struct bl_loop *loop, uint64_t wait_us)
{
	struct timespec ts, *tsp = NULL;
	struct frame f;
	size_t nfds = loop->nios + 1;
	int n = 0, r;

	/* Nothing to watch and no time to wait (a virtual loop between
	 * events): a stop from a signal handler is seen through loop->stop
	 * and a wake has nothing to wake, so skip the system call, which
	 * otherwise costs a third of a virtual run. */
	if (wait_us == 0 && loop->nios == 0)
		return 0;
	/* bl_loop_poll_gap: between events, a virtual loop looks at its
	 * descriptors only that often. */
	if (wait_us == 0 && loop->virt && loop->poll_gap_us) {
		uint64_t real = bl_clock_monotonic_us();
		if (real - loop->polled_us < loop->poll_gap_us)
			return 0;
		loop->polled_us = real;
	}
	if (bl_loop_grow((void **)&loop->pfds, &loop->cappfds, nfds, sizeof *loop->pfds) < 0)
		return BL_ERR_MEM;
	loop->pfds[0].fd = loop->wake_r;
	loop->pfds[0].events = POLLIN;
	loop->pfds[0].revents = 0;
	for (size_t i = 0; i < loop->nios; i++) {
		struct bl_io *io = loop->ios[i];
		loop->pfds[i + 1].fd = io->fd;
		loop->pfds[i + 1].events = (short)(((io->events & BL_IO_READ) ? POLLIN : 0) |
		                                   ((io->events & BL_IO_WRITE) ? POLLOUT : 0));
		loop->pfds[i + 1].revents = 0;
	}
	if (wait_us != BL_NEVER) {
		ts.tv_sec = (time_t)(wait_us / 1000000u);
		ts.tv_nsec = (long)(wait_us % 1000000u) * 1000;
		tsp = &ts;
	}
	r = ppoll(loop->pfds, nfds, tsp, NULL);
	if (r < 0) {
		if (errno == EINTR)
			return 0;
		BL_ERROR(MOD, "ppoll: %s", strerror(errno));
		return BL_ERR_IO;
	}
	if (r == 0)
		return 0;
	if (loop->pfds[0].revents)
		drain_wake(loop);
	if (bl_loop_frame_init(&f, loop, loop->nios) < 0)
		return BL_ERR_MEM;
	for (size_t i = 0; i < loop->nios; i++) {
		unsigned ev = map_revents(loop->ios[i], loop->pfds[i + 1].revents);
		if (ev) {
			f.items[f.n] = loop->ios[i];
			f.events[f.n++] = ev;
		}
	}
	for (size_t i = 0; i < f.n; i++) {
		struct bl_io *io = f.items[i];
		unsigned ev;
		if (!io)
			continue;
		/* The watcher may have changed its interest meanwhile. */
		ev = f.events[i] & io->events;
		if (!ev)
			continue;
		n++;
		io->fn(loop, io, ev, io->ud);
	}
	bl_loop_frame_done(&f, loop);
	return n;
}
