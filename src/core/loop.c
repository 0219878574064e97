/* loop.c - the event loop: timer heap, descriptor watchers, sources, and the
 * step that ties them to the clock (real: wait in ppoll; virtual: jump).
 *
 * Callbacks may start and stop any handle, free the object that embeds one,
 * and even run a nested step. Each dispatch pass therefore works on a
 * snapshot of the handles it is about to call ("frame"), and stopping a
 * handle clears it from every live snapshot, so nothing is called after it
 * was stopped.
 */
#define _GNU_SOURCE /* ppoll: microsecond timeouts instead of poll's ms */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/loop.h"

#define MOD "loop"
#define FRAME_INLINE 32

/* A snapshot of handles to call in one dispatch pass. */
struct frame {
	void **items;
	unsigned *events;
	size_t n;
	struct frame *up;
	void *inline_items[FRAME_INLINE];
	unsigned inline_events[FRAME_INLINE];
};

struct bl_loop {
	const struct bl_clock *clock;
	bool virt;

	struct bl_timer **heap;
	size_t nheap, capheap;
	uint64_t next_seq;

	struct bl_io **ios;
	size_t nios, capios;
	struct pollfd *pfds;    /* wake pipe first, then ios[] */
	size_t cappfds;

	struct bl_source **srcs;
	size_t nsrcs, capsrcs;

	struct frame *frames;   /* live dispatch snapshots, innermost first */

	int wake_r, wake_w;
	volatile sig_atomic_t stop;
	int run_depth;              /* nested bl_loop_run_until calls */
	volatile sig_atomic_t caught;
	bool idle;              /* the last step found nothing that could fire */
};

/* ---- helpers ----------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return BL_OK;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return BL_ERR_MEM;
	*arr = p;
	*cap = ncap;
	return BL_OK;
}

static int frame_init(struct frame *f, struct bl_loop *loop, size_t n)
{
	f->n = 0;
	f->items = f->inline_items;
	f->events = f->inline_events;
	if (n > FRAME_INLINE) {
		f->items = malloc(n * sizeof *f->items);
		f->events = malloc(n * sizeof *f->events);
		if (!f->items || !f->events) {
			if (f->items != f->inline_items)
				free(f->items);
			if (f->events != f->inline_events)
				free(f->events);
			return BL_ERR_MEM;
		}
	}
	f->up = loop->frames;
	loop->frames = f;
	return BL_OK;
}

static void frame_done(struct frame *f, struct bl_loop *loop)
{
	struct frame **pp;

	for (pp = &loop->frames; *pp; pp = &(*pp)->up)
		if (*pp == f) {
			*pp = f->up;
			break;
		}
	if (f->items != f->inline_items)
		free(f->items);
	if (f->events != f->inline_events)
		free(f->events);
}

/* A stopped handle must not be called by any pass already under way. */
static void frames_forget(struct bl_loop *loop, const void *handle)
{
	for (struct frame *f = loop->frames; f; f = f->up)
		for (size_t i = 0; i < f->n; i++)
			if (f->items[i] == handle)
				f->items[i] = NULL;
}

/* ---- timer heap: min-heap on (deadline, seq) ---------------------------- */

static bool timer_before(const struct bl_timer *a, const struct bl_timer *b)
{
	if (a->deadline_us != b->deadline_us)
		return a->deadline_us < b->deadline_us;
	return a->seq < b->seq;
}

static void heap_set(struct bl_loop *loop, size_t i, struct bl_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];
	size_t n = loop->nheap;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];
	struct bl_timer *last = loop->heap[--loop->nheap];

	t->heap_index = SIZE_MAX;
	if (i == loop->nheap)
		return;
	heap_set(loop, i, last);
	if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

static int heap_push(struct bl_loop *loop, struct bl_timer *t)
{
	int r = grow((void **)&loop->heap, &loop->capheap, loop->nheap + 1, sizeof *loop->heap);

	if (r < 0)
		return r;
	t->seq = loop->next_seq++;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, loop->nheap - 1);
	return BL_OK;
}

void bl_timer_init(struct bl_timer *t, bl_timer_fn fn, void *ud)
{
	memset(t, 0, sizeof *t);
	t->heap_index = SIZE_MAX;
	t->fn = fn;
	t->ud = ud;
}

bool bl_timer_active(const struct bl_timer *t)
{
	return t->heap_index != SIZE_MAX;
}

int bl_timer_start(struct bl_loop *loop, struct bl_timer *t, uint64_t deadline_us,
                   uint64_t period_us)
{
	if (!t->fn)
		return BL_ERR_ARG;
	bl_timer_stop(loop, t);
	t->deadline_us = deadline_us;
	t->period_us = period_us;
	return heap_push(loop, t);
}

int bl_timer_after(struct bl_loop *loop, struct bl_timer *t, uint64_t delay_us,
                   uint64_t period_us)
{
	uint64_t now = bl_loop_now(loop);
	uint64_t d = delay_us > BL_NEVER - now ? BL_NEVER : now + delay_us;

	return bl_timer_start(loop, t, d, period_us);
}

void bl_timer_stop(struct bl_loop *loop, struct bl_timer *t)
{
	size_t i = t->heap_index;

	if (i == SIZE_MAX || i >= loop->nheap || loop->heap[i] != t)
		return;
	heap_remove(loop, i);
}

/* Fire due timers. Timers (re)started during this pass get a seq at or
 * above `limit` and wait for the next step, so a callback that re-arms at
 * "now" cannot keep one step busy forever. */
static int run_timers(struct bl_loop *loop, uint64_t now)
{
	uint64_t limit = loop->next_seq;
	int n = 0;

	while (loop->nheap > 0) {
		struct bl_timer *t = loop->heap[0];
		if (t->deadline_us > now || t->seq >= limit)
			break;
		heap_remove(loop, 0);
		if (t->period_us) {
			uint64_t d = t->deadline_us + t->period_us;
			/* Late in real time: skip the missed beats, no burst. */
			if (d <= now || d < t->deadline_us)
				d = now + t->period_us;
			t->deadline_us = d;
			/* Cannot fail: the heap just shrank by one. */
			heap_push(loop, t);
		}
		n++;
		t->fn(loop, t, t->ud); /* t may be freed from here on */
	}
	return n;
}

/* ---- descriptor watchers ---------------------------------------------- */

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
	r = grow((void **)&loop->ios, &loop->capios, loop->nios + 1, sizeof *loop->ios);
	if (r < 0)
		return r;
	r = grow((void **)&loop->pfds, &loop->cappfds, loop->nios + 2, sizeof *loop->pfds);
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
	frames_forget(loop, io);
}

/* ---- sources ------------------------------------------------------------ */

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
	r = grow((void **)&loop->srcs, &loop->capsrcs, loop->nsrcs + 1, sizeof *loop->srcs);
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
	frames_forget(loop, s);
}

static uint64_t sources_next(const struct bl_loop *loop)
{
	uint64_t next = BL_NEVER;

	for (size_t i = 0; i < loop->nsrcs; i++) {
		uint64_t t = loop->srcs[i]->next(loop->srcs[i]->ud);
		if (t < next)
			next = t;
	}
	return next;
}

static int run_sources(struct bl_loop *loop, uint64_t now)
{
	struct frame f;
	int n = 0, r;

	if (loop->nsrcs == 0)
		return 0;
	r = frame_init(&f, loop, loop->nsrcs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < loop->nsrcs; i++)
		if (loop->srcs[i]->next(loop->srcs[i]->ud) <= now)
			f.items[f.n++] = loop->srcs[i];
	for (size_t i = 0; i < f.n; i++) {
		struct bl_source *s = f.items[i];
		if (!s)
			continue; /* stopped by an earlier callback */
		n++;
		s->fn(loop, s, now, s->ud);
	}
	frame_done(&f, loop);
	return n;
}

/* ---- wake-up pipe and signals --------------------------------------- */

static void drain_wake(struct bl_loop *loop)
{
	char buf[64];

	while (read(loop->wake_r, buf, sizeof buf) > 0)
		;
}

void bl_loop_wake(struct bl_loop *loop)
{
	int saved = errno;
	/* A full pipe already holds a wake-up: EAGAIN is fine. */
	ssize_t w = write(loop->wake_w, "w", 1);

	(void)w;
	errno = saved;
}

void bl_loop_stop(struct bl_loop *loop)
{
	loop->stop = 1;
	bl_loop_wake(loop);
}

static struct bl_loop *volatile signal_loop;
static struct sigaction old_sigint, old_sigterm;
static bool signals_caught;

static void on_signal(int sig)
{
	struct bl_loop *loop = signal_loop;

	if (loop) {
		loop->caught = sig;
		bl_loop_stop(loop);
	}
}

int bl_loop_catch_signals(struct bl_loop *loop)
{
	struct sigaction sa;

	bl_loop_release_signals();
	signal_loop = loop;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, &old_sigint) < 0)
		return BL_ERR_IO;
	if (sigaction(SIGTERM, &sa, &old_sigterm) < 0) {
		sigaction(SIGINT, &old_sigint, NULL);
		return BL_ERR_IO;
	}
	signals_caught = true;
	return BL_OK;
}

void bl_loop_release_signals(void)
{
	if (signals_caught) {
		sigaction(SIGINT, &old_sigint, NULL);
		sigaction(SIGTERM, &old_sigterm, NULL);
		signals_caught = false;
	}
	signal_loop = NULL;
}

int bl_loop_caught_signal(const struct bl_loop *loop)
{
	return loop->caught;
}

/* ---- polling ------------------------------------------------------------- */

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

static int poll_and_dispatch(struct bl_loop *loop, uint64_t wait_us)
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
	if (grow((void **)&loop->pfds, &loop->cappfds, nfds, sizeof *loop->pfds) < 0)
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
	if (frame_init(&f, loop, loop->nios) < 0)
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
	frame_done(&f, loop);
	return n;
}

/* ---- the loop ----------------------------------------------------------- */

struct bl_loop *bl_loop_new(const struct bl_clock *clock)
{
	struct bl_loop *loop = calloc(1, sizeof *loop);
	int fds[2];

	if (!loop)
		return NULL;
	loop->clock = clock ? clock : bl_clock_real();
	loop->virt = bl_clock_is_virtual(loop->clock);
	if (pipe(fds) < 0) {
		BL_ERROR(MOD, "pipe: %s", strerror(errno));
		free(loop);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	loop->wake_r = fds[0];
	loop->wake_w = fds[1];
	return loop;
}

void bl_loop_free(struct bl_loop *loop)
{
	if (!loop)
		return;
	if (signal_loop == loop)
		bl_loop_release_signals();
	for (size_t i = 0; i < loop->nheap; i++)
		loop->heap[i]->heap_index = SIZE_MAX;
	for (size_t i = 0; i < loop->nios; i++)
		loop->ios[i]->active = false;
	for (size_t i = 0; i < loop->nsrcs; i++)
		loop->srcs[i]->active = false;
	close(loop->wake_r);
	close(loop->wake_w);
	free(loop->heap);
	free(loop->ios);
	free(loop->pfds);
	free(loop->srcs);
	free(loop);
}

const struct bl_clock *bl_loop_clock(const struct bl_loop *loop) { return loop->clock; }
uint64_t bl_loop_now(const struct bl_loop *loop) { return bl_clock_now(loop->clock); }
bool bl_loop_is_virtual(const struct bl_loop *loop) { return loop->virt; }
size_t bl_loop_timer_count(const struct bl_loop *loop) { return loop->nheap; }
size_t bl_loop_io_count(const struct bl_loop *loop) { return loop->nios; }
size_t bl_loop_source_count(const struct bl_loop *loop) { return loop->nsrcs; }

static uint64_t next_event(const struct bl_loop *loop)
{
	uint64_t next = loop->nheap ? loop->heap[0]->deadline_us : BL_NEVER;
	uint64_t s = sources_next(loop);

	return s < next ? s : next;
}

/* Timers first, then sources: a timeout that falls due together with a
 * device event is seen before it, the same way in both clock modes. */
static int run_due(struct bl_loop *loop, uint64_t now)
{
	int a = run_timers(loop, now), b;

	if (a < 0)
		return a;
	b = run_sources(loop, now);
	return b < 0 ? b : a + b;
}

int bl_loop_step(struct bl_loop *loop, uint64_t max_wait_us)
{
	uint64_t now = bl_loop_now(loop), next, wait, target;
	int n, r;

	loop->idle = false;
	n = run_due(loop, now);
	if (n < 0)
		return n;
	next = next_event(loop);
	if (n > 0 || loop->stop || loop->virt)
		wait = 0;
	else if (next == BL_NEVER)
		wait = max_wait_us;
	else
		wait = next > now ? next - now : 0;
	if (wait > max_wait_us)
		wait = max_wait_us;
	if (wait == BL_NEVER && loop->nios == 0) {
		/* Nothing could ever wake us but a signal: report idle. */
		loop->idle = true;
		return n;
	}
	r = poll_and_dispatch(loop, wait);
	if (r < 0)
		return r;
	n += r;
	if (n > 0 || loop->stop)
		return n;

	if (!loop->virt) {
		r = run_due(loop, bl_loop_now(loop));
		return r < 0 ? r : n + r;
	}

	/* Virtual mode, nothing ready: jump to the next thing that happens. */
	target = next;
	if (max_wait_us != BL_NEVER && max_wait_us < BL_NEVER - now && now + max_wait_us < target)
		target = now + max_wait_us;
	if (target == BL_NEVER) {
		if (loop->nios == 0) {
			loop->idle = true;
			return 0;
		}
		/* Only outside input can happen: time stands still meanwhile. */
		return poll_and_dispatch(loop, BL_NEVER);
	}
	if (target > now)
		bl_clock_set(loop->clock, target);
	return run_due(loop, bl_loop_now(loop));
}

static int run_until(struct bl_loop *loop, bl_loop_pred done, void *ud, uint64_t deadline_us)
{
	for (;;) {
		uint64_t now, wait;
		int r;

		if (done && done(ud))
			return BL_OK;
		if (loop->stop) {
			/* A stop (Ctrl-C) ends every nested run up to the outermost,
			 * which alone clears it: an inner wait must not swallow it. */
			if (loop->run_depth == 1)
				loop->stop = 0;
			return BL_LOOP_STOPPED;
		}
		now = bl_loop_now(loop);
		if (deadline_us != BL_NEVER && now >= deadline_us)
			return BL_ERR_TIMEOUT;
		wait = deadline_us == BL_NEVER ? BL_NEVER : deadline_us - now;
		r = bl_loop_step(loop, wait);
		if (r < 0)
			return r;
		if (r == 0 && loop->idle)
			return BL_LOOP_IDLE;
	}
}

int bl_loop_run_until(struct bl_loop *loop, bl_loop_pred done, void *ud, uint64_t deadline_us)
{
	int r;

	loop->run_depth++;
	r = run_until(loop, done, ud, deadline_us);
	loop->run_depth--;
	return r;
}

int bl_loop_run(struct bl_loop *loop)
{
	return bl_loop_run_until(loop, NULL, NULL, BL_NEVER);
}
