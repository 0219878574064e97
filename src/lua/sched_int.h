/* sched_int.h - the scheduler's state, shared by sched.c (the ready queue,
 * spawning, resuming, running, hooks), sched_wait.c (wait lists and waits)
 * and sched_end.c (the end of a task). Internal to the scheduler: the
 * bindings use sched.h. */
#ifndef BL_SCHED_INT_H
#define BL_SCHED_INT_H

#include "core/loop.h"
#include "lua/sched.h"

#define BL_SCHED_MOD "task"

struct bl_task {
	struct bl_sched *s;
	lua_State *co;              /* NULL once finished */
	int ref;                    /* in the tasks table while live */
	enum bl_task_state state;
	uint64_t id;
	int nargs;                  /* values on co for the first resume */
	bool queued;
	struct bl_task *ready_next;
	struct bl_task *live_next, *live_prev;
	uint64_t used;              /* instructions since the last resume */
	uint64_t budget;
	unsigned every;             /* count hook period */
	bool killed;
	bool interrupted;            /* killed by a signal while computing */
	bool out_of_memory;          /* an allocation over the engine's limit */
	uint64_t refusals;           /* the engine's refused allocations at resume */
	struct bl_wait wait;
	struct bl_wait_list joiners; /* waits for this task's end */
};

struct bl_sched {
	lua_State *L;               /* main thread */
	lua_State *loop_L;          /* thread running the loop, NULL if none */
	struct bl_loop *loop;       /* a pool's loop */
	struct bl_loop *own_loop;   /* ours when no pool is open */
	struct bl_loop *ready_loop; /* where ready_timer is armed */
	struct bl_timer ready_timer;
	struct bl_task *ready_head, *ready_tail;
	size_t nready;
	struct bl_task *live;
	size_t nlive;
	struct bl_task *running;
	size_t nrefs, nwaits;
	uint64_t next_id, resumes, spawned;
	uint64_t budget;
	int depth;                  /* loop runs of ours in progress */
	bool closing;               /* a task's thread is being closed */
	bool catch_signals, interrupted, freed;
	bl_sched_clock_fn clock_fn;
	bl_sched_safe_fn safe_fn;
	void *safe_ud;
	bl_sched_interrupt_fn intr_fn;
	void *intr_ud;
	bl_sched_log_fn log_fn;
	void *log_ud;
};

/* What every batlab wait yields (its address): nothing in Lua can forge
 * it, so a resume that yields anything else was not ours. */
extern const char bl_schedi_yield_tag;

/* ---- sched.c ---- */

/* The loop in use, never creating one: from callbacks, where something
 * already runs on it. */
struct bl_loop *bl_schedi_cur_loop(const struct bl_sched *s);
/* Queue t to run (once), arming the ready timer. */
void bl_schedi_enqueue(struct bl_sched *s, struct bl_task *t);
void bl_schedi_dequeue(struct bl_sched *s, struct bl_task *t);
/* Run our loop (from thread L, outside tasks) until pred or deadline. */
int bl_schedi_run_loop(struct bl_sched *s, lua_State *L, bl_loop_pred pred, void *ud,
                       uint64_t deadline);
/* A signal or a loop stop: cancel every task, then the interrupt hook. */
void bl_schedi_interrupt(struct bl_sched *s, lua_State *L);
/* Push the registry table that anchors live tasks, or one live task's
 * object. */
void bl_schedi_push_tasks(lua_State *L);
void bl_schedi_push_task(lua_State *L, struct bl_task *t);

/* ---- sched_wait.c ---- */

/* A fresh wait of task t (NULL: a blocking wait) on s. */
void bl_schedi_wait_reset(struct bl_wait *w, struct bl_sched *s, struct bl_task *t);
/* Take w off everything it waits on; the cancel hook undoes the rest. */
void bl_schedi_wait_abort(struct bl_wait *w);

/* ---- sched_end.c ---- */

enum bl_end_kind { BL_END_OK, BL_END_ERROR, BL_END_BAD_YIELD, BL_END_CANCEL };

/* The end of task t, however it came: its wait undone, its channels safe,
 * its outcome kept, its thread closed, its joiners completed. nres: the
 * values a returning task left on its thread. L is the calling thread. */
void bl_schedi_task_end(struct bl_sched *s, lua_State *L, struct bl_task *t,
                        enum bl_end_kind kind, int nres);
/* The end of task t, which ran out of memory (the engine's limit): failed,
 * with a message naming the limit; the engine's reserve lets the ending
 * allocate, and the task's memory is collected before it is withdrawn. */
void bl_schedi_end_out_of_memory(struct bl_sched *s, lua_State *L, struct bl_task *t);

#endif
