/* core/loop_io.c - the loop's descriptor watchers (registered with the
 * loop's epoll set, see loop_poll.c) and its sources.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

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

void bl_io_foreign(struct bl_io *io)
{
	io->foreign = true;
}

/* Take io's registration out of the set, unless its number now belongs
 * to another watcher's registration, made after it: then the descriptor
 * io watched was closed while watched (the set forgot it with the close)
 * and the number reused, and a DEL would take the other's away. */
static void unregister(struct bl_loop *loop, struct bl_io *io)
{
	for (size_t i = 0; i < loop->nios; i++) {
		const struct bl_io *o = loop->ios[i];
		if (o != io && o->registered && o->reg_fd == io->reg_fd && o->token > io->token) {
			io->registered = false;
			return;
		}
	}
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->reg_fd, NULL);
	io->registered = false;
}

/* A descriptor the set refuses (one another watcher already holds, a
 * regular file) is looked at by number instead, like a foreign one. */
void bl_loop_register(struct bl_loop *loop, struct bl_io *io, int op)
{
	struct epoll_event ev = {.events = bl_loop_io_bits(io->events)};

	if (op == EPOLL_CTL_ADD)
		io->token = ++loop->next_token;
	ev.data.u64 = io->token;
	if (epoll_ctl(loop->epfd, op, io->fd, &ev) == 0) {
		io->registered = true;
		io->reg_fd = io->fd;
		return;
	}
	if (io->registered)
		unregister(loop, io);
	loop->npolled++;
}

int bl_io_start(struct bl_loop *loop, struct bl_io *io, unsigned events)
{
	unsigned was = io->events;
	int r;

	if (io->fd < 0 || !io->fn)
		return BL_ERR_ARG;
	io->events = events;
	if (io->active) {
		if (io->registered && io->fd != io->reg_fd) {
			/* another descriptor under the same watcher: register that one */
			unregister(loop, io);
			bl_loop_register(loop, io, EPOLL_CTL_ADD);
		} else if (io->registered && events != was) {
			bl_loop_register(loop, io, EPOLL_CTL_MOD);
		}
		return BL_OK;
	}
	r = bl_loop_grow((void **)&loop->ios, &loop->capios, loop->nios + 1, sizeof *loop->ios);
	if (r < 0)
		return r;
	loop->ios[loop->nios++] = io;
	io->active = true;
	io->registered = false;
	if (io->foreign)
		loop->npolled++;
	else
		bl_loop_register(loop, io, EPOLL_CTL_ADD);
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
	/* Before the owner closes the descriptor: closed first, the set
	 * forgets it by itself unless another process holds it too (then
	 * loop_poll.c notices the stale token and rebuilds the set). io is
	 * out of ios already: unregister compares it with the others. */
	if (io->registered)
		unregister(loop, io);
	else
		loop->npolled--;
	io->active = io->registered = false;
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
