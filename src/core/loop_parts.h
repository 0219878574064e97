/* core/loop_parts.h - what the parts of the event loop share; internal to
 * loop.c (the loop, its step, the wake-up pipe and signals), loop_timer.c
 * (the timer heap) and loop_io.c (descriptor watchers, sources, polling).
 * Everything else uses core/loop.h.
 */
#ifndef BL_LOOP_PARTS_H
#define BL_LOOP_PARTS_H

#include <poll.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

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

	struct bl_io **ios;     /* in the order they were started */
	size_t nios, capios;
	int epfd;               /* the registered watchers and the wake-up pipe */
	uint64_t next_token;    /* the last registration's token (0: the wake-up pipe) */
	size_t npolled;         /* active watchers not in the set (foreign, refused) */
	struct epoll_event *evs;
	size_t capevs;
	struct pollfd *pfds;    /* the set, then the polled watchers */
	size_t cappfds;
	unsigned *ready;        /* per ios[] index: the events a wait found */
	size_t capready;

	struct bl_source **srcs;
	size_t nsrcs, capsrcs;

	struct frame *frames;   /* live dispatch snapshots, innermost first */

	int wake_r, wake_w;
	volatile sig_atomic_t stop;
	volatile sig_atomic_t sig_pending;  /* a caught signal's stop, not yet taken */
	int run_depth;              /* nested bl_loop_run_until calls */
	volatile sig_atomic_t caught;
	bool idle;              /* the last step found nothing that could fire */
	uint64_t poll_gap_us;   /* virtual loop: real time between zero-wait polls (0: every step) */
	uint64_t polled_us;     /* virtual loop: real time of its last zero-wait poll */
};

/* ---- loop.c ---------------------------------------------------------------- */

/* Grow *arr (of elem-sized items) to hold at least `need`; BL_ERR_MEM. */
int bl_loop_grow(void **arr, size_t *cap, size_t need, size_t elem);
/* A dispatch pass's snapshot of at most n handles, registered with the
 * loop until bl_loop_frame_done; BL_ERR_MEM. */
int bl_loop_frame_init(struct frame *f, struct bl_loop *loop, size_t n);
void bl_loop_frame_done(struct frame *f, struct bl_loop *loop);
/* A stopped handle must not be called by any pass already under way. */
void bl_loop_frames_forget(struct bl_loop *loop, const void *handle);

/* ---- loop_timer.c ------------------------------------------------------------ */

/* Fire the timers due at now; the number fired. */
int bl_loop_run_timers(struct bl_loop *loop, uint64_t now);

/* ---- loop_io.c --------------------------------------------------------------- */

/* The earliest next-event time of the active sources (BL_NEVER: none). */
uint64_t bl_loop_sources_next(const struct bl_loop *loop);
/* Dispatch the sources due at now; the number called or a bl_status. */
int bl_loop_run_sources(struct bl_loop *loop, uint64_t now);
/* A watcher's BL_IO_* as poll(2) and epoll(7) bits (the same on Linux:
 * loop_poll.c asserts it). */
static inline unsigned bl_loop_io_bits(unsigned events)
{
	return ((events & BL_IO_READ) ? POLLIN : 0u) | ((events & BL_IO_WRITE) ? POLLOUT : 0u);
}
/* Register an active watcher with the epoll set (op: EPOLL_CTL_ADD, or
 * _MOD for new events), or have it polled when the set refuses it. */
void bl_loop_register(struct bl_loop *loop, struct bl_io *io, int op);

/* ---- loop_poll.c ------------------------------------------------------------- */

/* The epoll set with the wake-up pipe in it; BL_OK or BL_ERR_IO. */
int bl_loop_poll_init(struct bl_loop *loop);
void bl_loop_poll_done(struct bl_loop *loop);
/* Poll the descriptors for at most wait_us (BL_NEVER: no limit) and call
 * the ready watchers; the number called or a bl_status. */
int bl_loop_poll(struct bl_loop *loop, uint64_t wait_us);

#endif
