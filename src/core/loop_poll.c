/* core/loop_poll.c - the loop's wait for its descriptors, and the calls to
 * the watchers that are ready.
 *
 * Watchers are registered once with an epoll set (loop_io.c), so a wait
 * costs what is ready, not what is watched: a lab of 64 Batlabs has 64
 * ports, and poll(2) walked every one of them, a few hundred times a
 * second, for the handful that had bytes. Descriptors that a library may
 * close or replace behind our back (bl_io_foreign), and any the set
 * refuses, are still polled by number, with the epoll set as one more
 * descriptor beside them. Ready watchers are called in the order they were
 * started, as poll(2) did.
 */
#define _GNU_SOURCE /* ppoll, epoll_pwait2: microsecond timeouts */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/loop_parts.h"

#define MOD "loop"
#define WAKE_TOKEN 0

/* The two interfaces report readiness with the same bits on Linux. */
_Static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT && EPOLLERR == POLLERR && EPOLLHUP == POLLHUP,
               "epoll and poll event bits differ");

static bool no_pwait2; /* no epoll_pwait2 here: millisecond waits */

static int add_wake(int epfd, int wake_r)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, wake_r, &ev);
}

int bl_loop_poll_init(struct bl_loop *loop)
{
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0 || add_wake(loop->epfd, loop->wake_r) < 0) {
		BL_ERROR(MOD, "epoll: %s", strerror(errno));
		if (loop->epfd >= 0)
			close(loop->epfd);
		loop->epfd = -1;
		return BL_ERR_IO;
	}
	return BL_OK;
}

void bl_loop_poll_done(struct bl_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop->evs);
	free(loop->pfds);
	free(loop->ready);
}

/* A token no active watcher holds: a registration the kernel kept after
 * its descriptor was closed (the file still open in another process).
 * It cannot be removed by number (the number may be someone else's now):
 * start a new set with the active watchers. */
static void rebuild_set(struct bl_loop *loop)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	BL_DEBUG(MOD, "a descriptor was closed while watched: the epoll set is rebuilt");
	if (fd >= 0 && add_wake(fd, loop->wake_r) < 0) {
		close(fd);
		fd = -1;
	}
	/* Closing the old set drops the stale registration with it. Without
	 * a new one (no descriptors left), every watcher is polled by number
	 * and the wake-up pipe with them (epfd -1: bl_loop_register fails). */
	close(loop->epfd);
	loop->epfd = fd;
	for (size_t i = 0; i < loop->nios; i++)
		if (loop->ios[i]->registered) {
			loop->ios[i]->registered = false;
			bl_loop_register(loop, loop->ios[i], EPOLL_CTL_ADD);
		}
}

static void drain_wake(struct bl_loop *loop)
{
	char buf[64];

	while (read(loop->wake_r, buf, sizeof buf) > 0)
		;
}

/* Mark the watchers of n epoll events ready. */
static void take_events(struct bl_loop *loop, int n)
{
	bool stale = false;

	for (int k = 0; k < n; k++) {
		uint64_t token = loop->evs[k].data.u64;
		size_t i = 0;

		if (token == WAKE_TOKEN) {
			drain_wake(loop);
			continue;
		}
		while (i < loop->nios && !(loop->ios[i]->registered && loop->ios[i]->token == token))
			i++;
		if (i < loop->nios)
			loop->ready[i] |= loop->evs[k].events;
		else
			stale = true;
	}
	if (stale)
		rebuild_set(loop);
}

static int wait_set(struct bl_loop *loop, const struct timespec *tsp, int max)
{
	int ms;

	if (!no_pwait2) {
		int r = epoll_pwait2(loop->epfd, loop->evs, max, tsp, NULL);
		/* ENOSYS: a kernel before 5.11 (or valgrind); EPERM: a container's
		 * seccomp profile that predates the call */
		if (r >= 0 || (errno != ENOSYS && errno != EPERM))
			return r;
		no_pwait2 = true;
	}
	if (!tsp)
		ms = -1;
	else if (tsp->tv_sec > 1000000)
		ms = 1000000000;
	else /* rounded up: waking early would spin until the deadline */
		ms = (int)(tsp->tv_sec * 1000 + (tsp->tv_nsec + 999999) / 1000000);
	return epoll_wait(loop->epfd, loop->evs, max, ms);
}

/* Polled watchers beside the set: one ppoll, then the set if it is ready. */
static int wait_polled(struct bl_loop *loop, const struct timespec *tsp, int max)
{
	size_t n = 1;
	int r;

	/* the set (which holds the wake-up pipe), or the pipe itself when
	 * there is no set */
	loop->pfds[0] = (struct pollfd){.fd = loop->epfd >= 0 ? loop->epfd : loop->wake_r, .events = POLLIN};
	for (size_t i = 0; i < loop->nios; i++) {
		struct bl_io *io = loop->ios[i];
		if (io->registered)
			continue;
		loop->pfds[n++] = (struct pollfd){.fd = io->fd, .events = (short)bl_loop_io_bits(io->events)};
	}
	r = ppoll(loop->pfds, n, tsp, NULL);
	if (r <= 0)
		return r;
	n = 1;
	for (size_t i = 0; i < loop->nios; i++)
		if (!loop->ios[i]->registered)
			loop->ready[i] |= (unsigned)loop->pfds[n++].revents;
	if (loop->pfds[0].revents && loop->epfd < 0) {
		drain_wake(loop);
	} else if (loop->pfds[0].revents) {
		r = epoll_wait(loop->epfd, loop->evs, max, 0);
		if (r > 0)
			take_events(loop, r);
	}
	return r < 0 ? r : 1;
}

static unsigned map_revents(const struct bl_io *io, unsigned re)
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

/* Call the ready watchers, in the order they were started. */
static int dispatch(struct bl_loop *loop)
{
	struct frame f;
	int n = 0;

	if (bl_loop_frame_init(&f, loop, loop->nios) < 0)
		return BL_ERR_MEM;
	for (size_t i = 0; i < loop->nios; i++) {
		unsigned ev = loop->ready[i] ? map_revents(loop->ios[i], loop->ready[i]) : 0;
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

int bl_loop_poll(struct bl_loop *loop, uint64_t wait_us)
{
	struct timespec ts, *tsp = NULL;
	size_t need = loop->nios + 1;
	int r;

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
	if (bl_loop_grow((void **)&loop->evs, &loop->capevs, need, sizeof *loop->evs) < 0 ||
	    bl_loop_grow((void **)&loop->pfds, &loop->cappfds, need, sizeof *loop->pfds) < 0 ||
	    bl_loop_grow((void **)&loop->ready, &loop->capready, need, sizeof *loop->ready) < 0)
		return BL_ERR_MEM;
	memset(loop->ready, 0, loop->nios * sizeof *loop->ready);
	if (wait_us != BL_NEVER) {
		ts.tv_sec = (time_t)(wait_us / 1000000u);
		ts.tv_nsec = (long)(wait_us % 1000000u) * 1000;
		tsp = &ts;
	}
	if (loop->npolled || loop->epfd < 0)
		r = wait_polled(loop, tsp, (int)loop->capevs);
	else if ((r = wait_set(loop, tsp, (int)loop->capevs)) > 0)
		take_events(loop, r);
	if (r < 0) {
		if (errno == EINTR)
			return 0;
		BL_ERROR(MOD, "waiting for the descriptors: %s", strerror(errno));
		return BL_ERR_IO;
	}
	return r == 0 ? 0 : dispatch(loop);
}
