/* loop.h - the one event loop: poll(2) over descriptors, a timer heap, and
 * "sources" (in-process virtual devices that know when they next have
 * something to say), all read against an injectable clock.
 *
 * Real mode: a step waits in poll(2) until the next timer or source event,
 * or until a descriptor is ready. Virtual mode (the clock is a bl_vclock):
 * a step never sleeps; when nothing is ready, time jumps to the next timer
 * deadline or source event and the due callbacks run at once.
 *
 * Handles (bl_timer, bl_io, bl_source) are embedded by their owners: the
 * loop keeps pointers, never allocates per handle, and stopping a handle
 * (also from inside any callback) is always safe. Callback order is a pure
 * function of the inputs: timers by (deadline, start order), then due
 * sources, then ready descriptors, each in registration order.
 *
 * Single-threaded. Only bl_loop_wake and bl_loop_stop may be called from a
 * signal handler.
 */
#ifndef BL_LOOP_H
#define BL_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

#define BL_NEVER UINT64_MAX

struct bl_loop;

/* ---- Timers ------------------------------------------------------------ */

struct bl_timer;
typedef void (*bl_timer_fn)(struct bl_loop *loop, struct bl_timer *t, void *ud);

struct bl_timer {
	uint64_t deadline_us;
	uint64_t period_us;     /* 0: one-shot */
	uint64_t seq;           /* start order; breaks deadline ties */
	size_t heap_index;      /* position in the heap; SIZE_MAX when inactive */
	bl_timer_fn fn;
	void *ud;
};

void bl_timer_init(struct bl_timer *t, bl_timer_fn fn, void *ud);
/* Arm (or re-arm) at an absolute deadline. A periodic timer is re-armed at
 * deadline + period before its callback runs. O(log n). */
int bl_timer_start(struct bl_loop *loop, struct bl_timer *t, uint64_t deadline_us,
                   uint64_t period_us);
/* Arm `delay_us` from now. */
int bl_timer_after(struct bl_loop *loop, struct bl_timer *t, uint64_t delay_us,
                   uint64_t period_us);
/* Disarm. A timer that already fired (or was never started) is left
 * alone. O(log n). */
void bl_timer_stop(struct bl_loop *loop, struct bl_timer *t);
bool bl_timer_active(const struct bl_timer *t);

/* ---- Descriptor watchers ---------------------------------------------- */

enum {
	BL_IO_READ  = 1,  /* readable, or hung up / in error: a read will tell */
	BL_IO_WRITE = 2,
};

struct bl_io;
typedef void (*bl_io_fn)(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud);

struct bl_io {
	int fd;
	unsigned events;        /* BL_IO_READ | BL_IO_WRITE wanted */
	bool active;
	bool foreign;           /* bl_io_foreign: looked at by number at every poll */
	bool registered;        /* in the loop's epoll set */
	int reg_fd;             /* the descriptor registered there */
	uint64_t token;         /* its registration there */
	bl_io_fn fn;
	void *ud;
};

void bl_io_init(struct bl_io *io, int fd, bl_io_fn fn, void *ud);
/* The descriptor belongs to a library that may close it, or open another
 * under the same number, behind the watcher's back (libpq, libmosquitto):
 * it is polled by number at every wait instead of being registered once.
 * Every other watcher is stopped before its descriptor is closed. Call
 * after bl_io_init, before bl_io_start. */
void bl_io_foreign(struct bl_io *io);
/* Watch for `events`; calling it again on an active watcher changes them. */
/* A virtual loop steps from event to event far faster than any
 * descriptor it watches (a database's socket, a broker's) needs looking
 * at: with a gap, it polls them between events at most once per `us` of
 * real time (and whenever it has nothing else to do) instead of at every
 * step. 0 (the default): every step. Results in virtual time do not
 * depend on when sockets are read. */
void bl_loop_poll_gap(struct bl_loop *loop, uint64_t us);
int bl_io_start(struct bl_loop *loop, struct bl_io *io, unsigned events);
void bl_io_stop(struct bl_loop *loop, struct bl_io *io);

/* ---- Sources: in-process devices with a next-event time --------------- */

struct bl_source;
/* When the source next needs dispatching (absolute; BL_NEVER: not now). */
typedef uint64_t (*bl_source_next_fn)(void *ud);
typedef void (*bl_source_fn)(struct bl_loop *loop, struct bl_source *s, uint64_t now_us, void *ud);

struct bl_source {
	bl_source_next_fn next;
	bl_source_fn fn;
	void *ud;
	bool active;
};

void bl_source_init(struct bl_source *s, bl_source_next_fn next, bl_source_fn fn, void *ud);
int bl_source_start(struct bl_loop *loop, struct bl_source *s);
void bl_source_stop(struct bl_loop *loop, struct bl_source *s);

/* ---- The loop ------------------------------------------------------- */

/* `clock` must outlive the loop; NULL means the real clock. A clock with
 * set_us (a bl_vclock) puts the loop in virtual mode. NULL on failure. */
struct bl_loop *bl_loop_new(const struct bl_clock *clock);
/* Handles still registered are simply forgotten (their owners free them). */
void bl_loop_free(struct bl_loop *loop);

const struct bl_clock *bl_loop_clock(const struct bl_loop *loop);
uint64_t bl_loop_now(const struct bl_loop *loop);
bool bl_loop_is_virtual(const struct bl_loop *loop);

/* One iteration: run due timers and sources, poll the descriptors (waiting
 * at most max_wait_us, BL_NEVER = as long as needed; 0 = do not wait), run
 * their callbacks. In virtual mode, if nothing was due or ready, jump time to
 * min(next deadline, next source event, now + max_wait_us) and run what is
 * due then. Returns the number of callbacks run (>= 0) or a negative
 * bl_status. */
int bl_loop_step(struct bl_loop *loop, uint64_t max_wait_us);

/* Results of bl_loop_run_until besides BL_OK and negative errors. */
enum {
	BL_LOOP_STOPPED = 1,    /* bl_loop_stop was called */
	BL_LOOP_IDLE    = 2,    /* nothing registered could ever fire */
};

typedef bool (*bl_loop_pred)(void *ud);

/* Step until done(ud) is true (BL_OK), the clock reaches deadline_us
 * (BL_ERR_TIMEOUT; BL_NEVER for none), bl_loop_stop (BL_LOOP_STOPPED) or
 * nothing is left to wait for (BL_LOOP_IDLE). done may be NULL. The
 * predicate is checked before each step. In virtual mode a deadline with
 * nothing else scheduled is a pure time jump: a virtual sleep. */
int bl_loop_run_until(struct bl_loop *loop, bl_loop_pred done, void *ud, uint64_t deadline_us);
/* Run until stopped or idle. */
int bl_loop_run(struct bl_loop *loop);

/* Make the current or next run return BL_LOOP_STOPPED, waking a blocked
 * poll. Async-signal-safe. */
void bl_loop_stop(struct bl_loop *loop);
/* Wake a blocked poll without stopping. Async-signal-safe. */
void bl_loop_wake(struct bl_loop *loop);

/* Install SIGINT, SIGTERM and SIGHUP handlers that stop `loop` (one loop
 * at a time; the previous handlers are kept for bl_loop_release_signals). */
int bl_loop_catch_signals(struct bl_loop *loop);
/* Restore the handlers that bl_loop_catch_signals replaced. */
void bl_loop_release_signals(void);
/* The last signal number caught for this loop, 0 if none. */
int bl_loop_caught_signal(const struct bl_loop *loop);
/* A caught signal has stopped the loop and no run has returned for it
 * yet: code that computes without coming back to the loop (a Lua task in
 * a tight loop) checks this to give up in time. */
bool bl_loop_signal_pending(const struct bl_loop *loop);

/* Number of armed timers / active descriptor watchers / active sources
 * (for leak checks in tests). */
size_t bl_loop_timer_count(const struct bl_loop *loop);
size_t bl_loop_io_count(const struct bl_loop *loop);
size_t bl_loop_source_count(const struct bl_loop *loop);

#endif
