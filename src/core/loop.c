/* loop.c - the event loop: the step that ties timers (loop_timer.c),
 * sources and descriptors (loop_io.c) to the clock (real: wait in ppoll;
 * virtual: jump), the runs built on it, the wake-up pipe and signals.
 *
 * Callbacks may start and stop any handle, free the object that embeds one,
 * and even run a nested step. Each dispatch pass therefore works on a
 * snapshot of the handles it is about to call ("frame"), and stopping a
 * handle clears it from every live snapshot, so nothing is called after it
 * was stopped.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/fdio.h"
#include "core/loop.h"
#include "core/loop_parts.h"

#define MOD "loop"

/* ---- Helpers ------------------------------------------------------------- */

int bl_loop_grow(void **arr, size_t *cap, size_t need, size_t elem)
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

int bl_loop_frame_init(struct frame *f, struct bl_loop *loop, size_t n)
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

void bl_loop_frame_done(struct frame *f, struct bl_loop *loop)
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

void bl_loop_frames_forget(struct bl_loop *loop, const void *handle)
{
	for (struct frame *f = loop->frames; f; f = f->up)
		for (size_t i = 0; i < f->n; i++)
			if (f->items[i] == handle)
				f->items[i] = NULL;
}

/* ---- Wake-up pipe and signals -------------------------------------------- */

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
static struct sigaction old_sigint, old_sigterm, old_sighup;
static bool signals_caught;

static void on_signal(int sig)
{
	struct bl_loop *loop = signal_loop;

	if (loop) {
		loop->caught = sig;
		loop->sig_pending = 1;
		bl_loop_stop(loop);
	}
}

/* SIGHUP is a terminal or an SSH session going away: a run ends as on
 * SIGTERM, channels safe and files complete, instead of dying mid-row. */
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
	if (sigaction(SIGHUP, &sa, &old_sighup) < 0) {
		sigaction(SIGINT, &old_sigint, NULL);
		sigaction(SIGTERM, &old_sigterm, NULL);
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
		sigaction(SIGHUP, &old_sighup, NULL);
		signals_caught = false;
	}
	signal_loop = NULL;
}

int bl_loop_caught_signal(const struct bl_loop *loop)
{
	return loop->caught;
}

bool bl_loop_signal_pending(const struct bl_loop *loop)
{
	return loop->sig_pending != 0;
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
	if (bl_fd_pipe(fds) < 0) {
		BL_ERROR(MOD, "pipe: %s", strerror(errno));
		free(loop);
		return NULL;
	}
	loop->wake_r = fds[0];
	loop->wake_w = fds[1];
	if (bl_loop_poll_init(loop) < 0) {
		close(loop->wake_r);
		close(loop->wake_w);
		free(loop);
		return NULL;
	}
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
		loop->ios[i]->active = loop->ios[i]->registered = false;
	for (size_t i = 0; i < loop->nsrcs; i++)
		loop->srcs[i]->active = false;
	bl_loop_poll_done(loop);
	close(loop->wake_r);
	close(loop->wake_w);
	free(loop->heap);
	free(loop->ios);
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
	uint64_t s = bl_loop_sources_next(loop);

	return s < next ? s : next;
}

/* Timers first, then sources: a timeout that falls due together with a
 * device event is seen before it, the same way in both clock modes. */
static int run_due(struct bl_loop *loop, uint64_t now)
{
	int a = bl_loop_run_timers(loop, now), b;

	if (a < 0)
		return a;
	b = bl_loop_run_sources(loop, now);
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
	/* A virtual loop that ran something returns after the poll below:
	 * it needs the next event only when nothing ran (looked up after the
	 * poll, which then changed nothing). */
	next = loop->virt ? BL_NEVER : next_event(loop);
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
	r = bl_loop_poll(loop, wait);
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
	target = next_event(loop);
	if (max_wait_us != BL_NEVER && max_wait_us < BL_NEVER - now && now + max_wait_us < target)
		target = now + max_wait_us;
	if (target == BL_NEVER) {
		if (loop->nios == 0) {
			loop->idle = true;
			return 0;
		}
		/* Only outside input can happen: time stands still meanwhile. */
		return bl_loop_poll(loop, BL_NEVER);
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
				loop->stop = loop->sig_pending = 0;
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
