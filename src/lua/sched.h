/* sched.h - the coroutine scheduler: Lua tasks resumed from the event loop.
 *
 * A task is a Lua coroutine anchored in a registry table while it lives.
 * It runs until it waits: for a timer (batlab.sleep), for a channel's next
 * report (ch:wait), or for a device operation (dev:read...). What it waits
 * for completes from a loop callback, which only queues the task; a
 * zero-delay loop timer then resumes the queued tasks in FIFO order, one
 * resume each, never from inside another task's resume.
 *
 * Bindings wait through a struct bl_wait:
 *
 *     struct bl_wait local, *w = bl_wait_begin(L, &local, "dev:read");
 *     ... start something whose completion calls bl_wait_complete(w, st),
 *         set w->cancel to undo it ...
 *     return bl_wait_yield(L, w, k_read);
 *
 * Inside a task w is the task's own wait and bl_wait_yield yields (the
 * continuation k_read runs when the task is resumed). Outside any task
 * (the shell, a -e chunk) w is `local` and bl_wait_yield runs the loop
 * until w completes, then calls k_read itself. Either way k_read finds the
 * wait with bl_wait_ctx(L, ctx) and pushes the results. A continuation may
 * start another step on the same wait and yield again (bl_wait_again).
 *
 * Calls from where neither is possible raise: from a coroutine nested in a
 * task, across a C-call boundary, or from Lua code a loop callback runs.
 *
 * When a task ends - it returns, fails (an error, a yield that is not
 * ours, the instruction budget) or is cancelled - every channel it drove
 * is made safe through the safe hook, whatever its Lua code did. A failed
 * task's traceback is logged (taken before the thread is closed), its
 * pending wait is undone, and the thread is closed so its <close>
 * variables run. The other tasks carry on.
 */
#ifndef BL_SCHED_H
#define BL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "core/loop.h"

#define BL_TASK_MT "batlab.Task"
#define BL_WAIT_PAYLOAD 192

struct bl_sched;
struct bl_task;
struct bl_wait;

/* A FIFO of waits (completed in the order they were added). */
struct bl_wait_list {
	struct bl_wait *head, *tail;
	size_t n;
};

enum bl_task_state {
	BL_TASK_READY = 0,       /* queued to run */
	BL_TASK_WAITING,         /* yielded in a batlab wait */
	BL_TASK_RUNNING,
	BL_TASK_DONE,
	BL_TASK_FAILED,
	BL_TASK_CANCELLED,
};

/* Undo whatever is pending for w (unlink it, abandon an operation). Runs
 * when a timeout fires first, when the task is cancelled or fails, and
 * when a blocking wait is interrupted. No Lua. */
typedef void (*bl_wait_cancel_fn)(struct bl_wait *w);

struct bl_wait {
	struct bl_sched *sched;
	struct bl_task *task;        /* NULL: a thread blocking outside tasks */
	bool active;                 /* begun and not completed */
	bool done;
	int status;                  /* a bl_status */
	/* results a binding fills in before completing */
	uint16_t value;
	double number;
	uint32_t raw32;
	/* binding state across the steps of one call */
	int stage;
	int arg[4];
	double darg[2];
	void *obj;
	void *ctx;                   /* for the cancel hook */
	bl_wait_cancel_fn cancel;
	/* a timer: a sleep, or a timeout (fires: cancel hook, then complete
	 * with timer_status) */
	struct bl_timer timer;
	int timer_status;
	/* membership of one wait list (a channel's waiters) */
	struct bl_wait_list *list;
	struct bl_wait *next, *prev;
	union {
		double align_;   /* Lua userdata are only 8-byte aligned */
		unsigned char bytes[BL_WAIT_PAYLOAD];
	} payload;
};

/* ---- The scheduler ------------------------------------------------------ */

/* The state's scheduler. bl_sched_open creates it (luaopen_batlab calls
 * it), stored in the registry and freed with the state; it sets the main
 * thread's extra space to NULL (no task). */
void bl_sched_open(lua_State *L);
struct bl_sched *bl_sched_get(lua_State *L);

/* The loop tasks run on. NULL (the default) means a private loop on the
 * clock batlab.now() reads, created when first needed. A pool sets its
 * loop while it is open. Changing it while tasks live is the caller's
 * problem: cancel them first (bl_sched_cancel_all). */
void bl_sched_set_loop(struct bl_sched *s, struct bl_loop *loop);
/* Where the private loop's clock comes from: the clock batlab.now()
 * reads, which the bindings keep and a pool changes while it is open, so
 * it is asked again each time the loop is needed. NULL (the default): the
 * real clock. */
typedef const struct bl_clock *(*bl_sched_clock_fn)(lua_State *L);
void bl_sched_set_clock(struct bl_sched *s, bl_sched_clock_fn fn);
/* The current loop, creating the private one if needed (NULL on OOM). */
struct bl_loop *bl_sched_loop(struct bl_sched *s);
/* The thread that runs the loop right now (for Lua called from loop
 * callbacks), or the main thread. */
lua_State *bl_sched_lua(struct bl_sched *s);

/* The task whose main coroutine is L, or NULL. */
struct bl_task *bl_sched_current(lua_State *L);
/* The task being resumed right now, or NULL. */
struct bl_task *bl_sched_running(const struct bl_sched *s);

/* Spawn: pops a function and nargs arguments from L, pushes the new Task
 * (queued to run). Raises on bad arguments or memory. */
struct bl_task *bl_sched_spawn(lua_State *L, int nargs);
/* Record that task t drives the object at idx (a channel): it is made
 * safe through the safe hook if t fails or is cancelled. */
void bl_task_bind(lua_State *L, struct bl_task *t, int idx);
/* Complete w when t has ended (at once if it has). BL_ERR_STATE when w
 * is t's own wait. */
int bl_task_join(struct bl_task *t, struct bl_wait *w);
/* Push the Task object of t (it exists as long as t does). */
void bl_task_push(lua_State *L, struct bl_task *t);
enum bl_task_state bl_task_state(const struct bl_task *t);
uint64_t bl_task_id(const struct bl_task *t);
struct bl_task *bl_task_check(lua_State *L, int idx);
const char *bl_task_state_name(enum bl_task_state st);

/* Cancel: cleanup, channels safe, thread closed. BL_ERR_STATE if t is
 * running (a task cannot cancel itself) ; finished tasks are left alone
 * (BL_OK). L is the calling thread. */
int bl_sched_cancel(lua_State *L, struct bl_task *t);
void bl_sched_cancel_all(lua_State *L, struct bl_sched *s);

/* Run the loop until no task lives (BL_OK), the loop clock reaches
 * deadline_us (BL_ERR_TIMEOUT; BL_NEVER for none), the loop is stopped or
 * a signal arrives (BL_LOOP_STOPPED: every channel was made safe through
 * the interrupt hook and every task cancelled), or nothing can happen any
 * more (BL_LOOP_IDLE). L is the calling thread (not a task). */
int bl_sched_run(struct bl_sched *s, lua_State *L, uint64_t deadline_us);
/* Run the loop until the clock reaches deadline_us (tasks progress). */
int bl_sched_run_for(struct bl_sched *s, lua_State *L, uint64_t deadline_us);

/* Tasks not finished. */
size_t bl_sched_live(const struct bl_sched *s);

struct bl_sched_stats {
	size_t tasks;                /* live tasks */
	size_t refs;                 /* registry references the scheduler holds */
	size_t waits;                /* waits begun and not completed */
	size_t ready;                /* tasks queued to run */
	uint64_t resumes;            /* total resumes */
	uint64_t spawned;
};
void bl_sched_stats(const struct bl_sched *s, struct bl_sched_stats *out);

/* ---- Hooks ---------------------------------------------------------------- */

/* Make the object at idx (bound with bl_task_bind) safe. */
typedef void (*bl_sched_safe_fn)(lua_State *L, int idx, void *ud);
/* Interrupted (signal or loop stop during a run or a blocking wait): make
 * every channel of every device safe and let the commands go out. Called
 * after the tasks were cancelled. */
typedef void (*bl_sched_interrupt_fn)(struct bl_sched *s, void *ud);
/* A task failed: one message (with the traceback). */
typedef void (*bl_sched_log_fn)(void *ud, struct bl_task *t, const char *msg);

void bl_sched_set_safe_hook(struct bl_sched *s, bl_sched_safe_fn fn, void *ud);
void bl_sched_set_interrupt_hook(struct bl_sched *s, bl_sched_interrupt_fn fn, void *ud);
/* NULL restores the default: bl_log at error level, module "task". */
void bl_sched_set_log(struct bl_sched *s, bl_sched_log_fn fn, void *ud);
/* Instructions a task may run without yielding before it is stopped
 * (default 1e8; 0 = no limit). Applies to tasks spawned afterwards. */
void bl_sched_set_budget(struct bl_sched *s, uint64_t instructions);
uint64_t bl_sched_budget(const struct bl_sched *s);
/* Whether runs catch SIGINT/SIGTERM themselves (default true). A program
 * that catches them on the loop itself turns this off. */
void bl_sched_set_catch_signals(struct bl_sched *s, bool on);
/* True once a run or a wait was interrupted (until cleared). */
bool bl_sched_interrupted(const struct bl_sched *s);
void bl_sched_clear_interrupted(struct bl_sched *s);

/* ---- Waits ----------------------------------------------------------------- */

/* Begin a wait for the API call `what` made on thread L: the running
 * task's wait, or `local` when L may block in the loop. Raises with a
 * clear message from anywhere else. */
struct bl_wait *bl_wait_begin(lua_State *L, struct bl_wait *local, const char *what);
/* Reset the completion state for a next step of the same call (payload,
 * stage, arg and obj are kept). */
void bl_wait_again(struct bl_wait *w);
/* Yield (task) or block (otherwise) until w completes, then k. When a
 * blocking wait is interrupted, returns nil, "interrupted", "EINTR"
 * without calling k. */
int bl_wait_yield(lua_State *L, struct bl_wait *w, lua_KFunction k);
/* The wait a continuation was given (raises if it did not complete: a
 * task thread resumed by someone else). */
struct bl_wait *bl_wait_ctx(lua_State *L, lua_KContext ctx);
/* Complete w (from a callback): the task is queued, a blocking wait
 * returns. The cancel hook is dropped; the timer stopped. */
void bl_wait_complete(struct bl_wait *w, int status);
/* Arm w's timer: after `us`, the cancel hook runs and w completes with
 * `status` (BL_OK for a sleep, BL_ERR_TIMEOUT for a timeout). */
void bl_wait_after(struct bl_wait *w, uint64_t us, int status);

/* Wait lists: a wait is on at most one; completing or undoing a wait
 * takes it off. */
void bl_wait_list_add(struct bl_wait_list *l, struct bl_wait *w);
void bl_wait_unlink(struct bl_wait *w);
/* Move every wait of `from` to the end of `to`. */
void bl_wait_list_move(struct bl_wait_list *to, struct bl_wait_list *from);

#endif
