/* test_loop.c - the clock and the event loop: timer heap order and ties,
 * cancel, virtual time jumps, sources, descriptor watchers, stop and
 * signal-safe wake-up. Virtual time throughout, except where the real
 * clock itself is under test. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "tap.h"

/* ---- a log of fired callbacks ------------------------------------------ */

#define LOG_MAX 1024
static int fired[LOG_MAX];
static uint64_t fired_at[LOG_MAX];
static int nfired;
static struct bl_loop *cur_loop;

static void log_fire(int id)
{
	if (nfired < LOG_MAX) {
		fired[nfired] = id;
		fired_at[nfired] = bl_loop_now(cur_loop);
	}
	nfired++;
}

static void reset_log(struct bl_loop *loop)
{
	nfired = 0;
	cur_loop = loop;
}

struct tctx {
	int id;
	struct bl_timer t;
	struct bl_timer *victim;    /* stop this one when fired */
	int stop_after;             /* bl_loop_stop after this many fires */
	int count;
};

static void on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct tctx *c = ud;

	(void)t;
	log_fire(c->id);
	c->count++;
	if (c->victim)
		bl_timer_stop(loop, c->victim);
	if (c->stop_after && c->count >= c->stop_after)
		bl_loop_stop(loop);
}

static void test_clock(void)
{
	struct bl_vclock vc;
	const struct bl_clock *rc = bl_clock_real();
	uint64_t a, b;

	bl_vclock_init(&vc, 1000);
	ok(bl_clock_is_virtual(&vc.clock), "vclock is virtual");
	ok(!bl_clock_is_virtual(rc), "real clock is not virtual");
	is_int((long long)bl_clock_now(&vc.clock), 1000, "vclock starts where told");
	is_int(bl_clock_set(&vc.clock, 5000), BL_OK, "vclock set");
	is_int((long long)bl_clock_now(&vc.clock), 5000, "vclock moved forward");
	bl_clock_set(&vc.clock, 10);
	is_int((long long)bl_clock_now(&vc.clock), 5000, "vclock never goes back");
	is_int(bl_clock_set(rc, 0), BL_ERR_SUPP, "the real clock cannot be set");
	a = bl_clock_now(rc);
	b = bl_clock_now(rc);
	ok(a > 0 && b >= a, "real clock is monotonic (%llu, %llu)", (unsigned long long)a,
	   (unsigned long long)b);
}

static void test_order_and_ties(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct tctx c[6];
	const uint64_t when[6] = {300, 100, 200, 100, 100, 200};
	const int want[6] = {1, 3, 4, 2, 5, 0};
	int r, okorder = 1;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	for (int i = 0; i < 6; i++) {
		c[i] = (struct tctx){.id = i};
		bl_timer_init(&c[i].t, on_timer, &c[i]);
		bl_timer_start(loop, &c[i].t, when[i], 0);
	}
	is_int((long long)bl_loop_timer_count(loop), 6, "six timers armed");
	r = bl_loop_run(loop);
	is_int(r, BL_LOOP_IDLE, "run ends idle when all timers fired");
	is_int(nfired, 6, "all six fired");
	for (int i = 0; i < 6; i++)
		okorder &= fired[i] == want[i];
	ok(okorder, "fired by deadline, ties in start order (%d %d %d %d %d %d)", fired[0],
	   fired[1], fired[2], fired[3], fired[4], fired[5]);
	is_int((long long)fired_at[0], 100, "first fired at virtual 100 us");
	is_int((long long)fired_at[5], 300, "last fired at virtual 300 us");
	is_int((long long)bl_loop_now(loop), 300, "time jumped exactly to the last deadline");
	ok(!bl_timer_active(&c[0].t), "fired one-shot is inactive");

	/* Restarting a timer moves it behind its equals. */
	reset_log(loop);
	bl_timer_start(loop, &c[0].t, 400, 0);
	bl_timer_start(loop, &c[1].t, 400, 0);
	bl_timer_start(loop, &c[0].t, 400, 0);
	bl_loop_run(loop);
	ok(nfired == 2 && fired[0] == 1 && fired[1] == 0, "a restarted timer goes after its ties");
	bl_loop_free(loop);
}

static void test_cancel(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct tctx a = {.id = 1}, b = {.id = 2}, c = {.id = 3};

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	bl_timer_init(&a.t, on_timer, &a);
	bl_timer_init(&b.t, on_timer, &b);
	bl_timer_init(&c.t, on_timer, &c);

	/* a and b are due together; a cancels b from its callback. */
	a.victim = &b.t;
	bl_timer_start(loop, &a.t, 50, 0);
	bl_timer_start(loop, &b.t, 50, 0);
	bl_timer_start(loop, &c.t, 60, 0);
	bl_timer_stop(loop, &c.t);
	ok(!bl_timer_active(&c.t), "stopped timer is inactive");
	bl_loop_run(loop);
	ok(nfired == 1 && fired[0] == 1, "cancel from a callback: the victim did not fire");
	ok(b.count == 0 && c.count == 0, "cancelled timers never ran");

	/* Cancelling a fired or never-started timer is harmless. */
	bl_timer_stop(loop, &a.t);
	bl_timer_stop(loop, &b.t);
	ok(bl_loop_timer_count(loop) == 0, "cancel of fired / idle timers is a no-op");

	/* A periodic timer stopping itself from its callback. */
	reset_log(loop);
	a.victim = &a.t;
	bl_timer_start(loop, &a.t, bl_loop_now(loop) + 10, 10);
	bl_loop_run(loop);
	ok(nfired == 1 && !bl_timer_active(&a.t), "periodic timer stopped from its own callback");
	bl_loop_free(loop);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define MANY 10000
struct many {
	struct bl_timer t;
	uint64_t deadline;
	int idx;
};
static int many_order[MANY];
static int many_n;

static void on_many(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct many *m = ud;

	(void)loop;
	(void)t;
	if (many_n < MANY)
		many_order[many_n] = m->idx;
	many_n++;
}

static void test_many(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct many *m = calloc(MANY, sizeof *m);
	int sorted = 1, cancelled_fired = 0, expect = 0, at_ok = 1;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	for (int i = 0; i < MANY; i++) {
		m[i].idx = i;
		m[i].deadline = 1 + xorshift() % 5000; /* many ties on purpose */
		bl_timer_init(&m[i].t, on_many, &m[i]);
		bl_timer_start(loop, &m[i].t, m[i].deadline, 0);
	}
	/* Cancel every third one, in a scattered order. */
	for (int i = MANY - 1; i >= 0; i--)
		if (i % 3 == 0)
			bl_timer_stop(loop, &m[i].t);
	for (int i = 0; i < MANY; i++)
		expect += i % 3 != 0;
	is_int((long long)bl_loop_timer_count(loop), expect, "heap holds the uncancelled timers");
	many_n = 0;
	bl_loop_run(loop);
	is_int(many_n, expect, "every uncancelled timer fired once");
	for (int i = 1; i < many_n && i < MANY; i++) {
		const struct many *p = &m[many_order[i - 1]], *q = &m[many_order[i]];
		if (p->deadline > q->deadline || (p->deadline == q->deadline && p->idx > q->idx))
			sorted = 0;
	}
	for (int i = 0; i < many_n && i < MANY; i++)
		cancelled_fired += many_order[i] % 3 == 0;
	ok(sorted, "10k random deadlines pop in (deadline, start order) order");
	is_int(cancelled_fired, 0, "no cancelled timer fired");
	(void)at_ok;
	bl_loop_free(loop);
	free(m);
}

static void test_periodic_and_deadline(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct tctx p = {.id = 7};
	int r;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	bl_timer_init(&p.t, on_timer, &p);
	bl_timer_start(loop, &p.t, 100, 100);
	r = bl_loop_run_until(loop, NULL, NULL, 1000);
	is_int(r, BL_ERR_TIMEOUT, "run_until a deadline returns timeout");
	is_int(p.count, 10, "periodic 100 us timer fired 10 times by 1000 us");
	is_int((long long)fired_at[9], 1000, "tenth beat at exactly 1000 us");
	is_int((long long)bl_loop_now(loop), 1000, "clock stopped at the deadline");
	bl_timer_stop(loop, &p.t);

	/* A virtual sleep: nothing scheduled, time jumps to the deadline. */
	r = bl_loop_run_until(loop, NULL, NULL, 3600000000ull);
	is_int(r, BL_ERR_TIMEOUT, "an hour of virtual sleep");
	is_int((long long)bl_loop_now(loop), 3600000000ll, "virtual clock at one hour");
	is_int(bl_loop_run(loop), BL_LOOP_IDLE, "nothing registered: idle, not a hang");

	/* Stop from a callback. */
	p.count = 0;
	p.stop_after = 5;
	bl_timer_after(loop, &p.t, 10, 10);
	r = bl_loop_run(loop);
	is_int(r, BL_LOOP_STOPPED, "bl_loop_stop from a callback ends the run");
	is_int(p.count, 5, "stopped after the fifth beat");
	ok(bl_timer_active(&p.t), "the periodic timer is still armed");
	p.stop_after = 0;
	bl_timer_stop(loop, &p.t);
	bl_loop_free(loop);
}

static bool count_reached(void *ud)
{
	return ((struct tctx *)ud)->count >= 3;
}

static void test_predicate(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct tctx p = {.id = 1};

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	bl_timer_init(&p.t, on_timer, &p);
	bl_timer_start(loop, &p.t, 250, 250);
	is_int(bl_loop_run_until(loop, count_reached, &p, BL_NEVER), BL_OK, "run_until predicate");
	is_int((long long)bl_loop_now(loop), 750, "predicate true after the third beat at 750 us");
	is_int(bl_loop_run_until(loop, count_reached, &p, BL_NEVER), BL_OK,
	       "a true predicate returns at once");
	is_int((long long)bl_loop_now(loop), 750, "without moving time");
	bl_timer_stop(loop, &p.t);
	bl_loop_free(loop);
}

/* ---- sources ------------------------------------------------------------ */

struct fake_src {
	struct bl_source s;
	int id;
	const uint64_t *events;
	int nev, pos;
};

static uint64_t fake_next(void *ud)
{
	struct fake_src *f = ud;

	return f->pos < f->nev ? f->events[f->pos] : BL_NEVER;
}

static void fake_fire(struct bl_loop *loop, struct bl_source *s, uint64_t now, void *ud)
{
	struct fake_src *f = ud;

	(void)loop;
	(void)s;
	while (f->pos < f->nev && f->events[f->pos] <= now)
		f->pos++;
	log_fire(f->id);
}

static void test_sources(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	static const uint64_t ev_a[] = {100, 200, 400};
	static const uint64_t ev_b[] = {150, 400};
	struct fake_src a = {.id = 10, .events = ev_a, .nev = 3};
	struct fake_src b = {.id = 20, .events = ev_b, .nev = 2};
	struct tctx t = {.id = 1};
	const int want[] = {10, 20, 10, 1, 10, 20};
	const uint64_t want_at[] = {100, 150, 200, 400, 400, 400};
	int good = 1;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	bl_source_init(&a.s, fake_next, fake_fire, &a);
	bl_source_init(&b.s, fake_next, fake_fire, &b);
	bl_source_start(loop, &a.s);
	bl_source_start(loop, &b.s);
	bl_timer_init(&t.t, on_timer, &t);
	bl_timer_start(loop, &t.t, 400, 0);
	is_int(bl_loop_run(loop), BL_LOOP_IDLE, "sources drained: idle");
	is_int(nfired, 6, "six dispatches");
	for (int i = 0; i < 6 && i < nfired; i++)
		good &= fired[i] == want[i] && fired_at[i] == want_at[i];
	ok(good, "time jumps to each source event; at a tie the timer goes first, then sources in order");
	bl_source_stop(loop, &a.s);
	bl_source_stop(loop, &b.s);
	is_int((long long)bl_loop_source_count(loop), 0, "sources stopped");
	bl_loop_free(loop);
}

/* ---- descriptor watchers -------------------------------------------------- */

struct pipe_ctx {
	struct bl_io io;
	int fd;
	int calls;
	char buf[64];
	size_t len;
	struct bl_io *victim;
};

static void on_pipe(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct pipe_ctx *p = ud;
	ssize_t r;

	(void)io;
	p->calls++;
	if (events & BL_IO_READ) {
		r = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
		if (r > 0)
			p->len += (size_t)r;
		p->buf[p->len] = 0;
	}
	if (p->victim)
		bl_io_stop(loop, p->victim);
}

/* With a poll gap, a virtual loop steps on without looking at its
 * descriptors until the gap (real time) has passed, but looks at them
 * when it has nothing else to do. */
static void test_poll_gap(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	int p[2];
	struct pipe_ctx a = {0};

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	if (pipe(p) < 0) {
		ok(0, "pipe");
		return;
	}
	a.fd = p[0];
	bl_io_init(&a.io, a.fd, on_pipe, &a);
	bl_io_start(loop, &a.io, BL_IO_READ);
	bl_loop_poll_gap(loop, 3600u * 1000000u);
	is_int(bl_loop_step(loop, 0), 0, "gap: the first step looks, finds nothing");
	if (write(p[1], "hi", 2) != 2)
		ok(0, "write");
	is_int(bl_loop_step(loop, 0), 0, "gap: within it a step does not look again");
	is_int(a.calls, 0, "gap: the watcher waits");
	is_int(bl_loop_step(loop, BL_NEVER), 1, "gap: nothing else to do, so it looks");
	is_str(a.buf, "hi", "gap: the watcher read the bytes");
	bl_loop_poll_gap(loop, 0);
	if (write(p[1], "!", 1) != 1)
		ok(0, "write");
	is_int(bl_loop_step(loop, 0), 1, "no gap: every step looks");
	bl_io_stop(loop, &a.io);
	bl_loop_free(loop);
	close(p[0]);
	close(p[1]);
}

static void test_fd_watchers(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	int p1[2], p2[2];
	struct pipe_ctx a = {0}, b = {0};
	int r;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	if (pipe(p1) < 0 || pipe(p2) < 0) {
		ok(0, "pipe");
		return;
	}
	a.fd = p1[0];
	b.fd = p2[0];
	bl_io_init(&a.io, a.fd, on_pipe, &a);
	bl_io_init(&b.io, b.fd, on_pipe, &b);
	is_int(bl_io_start(loop, &a.io, BL_IO_READ), BL_OK, "watch pipe a");
	is_int(bl_io_start(loop, &b.io, BL_IO_READ), BL_OK, "watch pipe b");
	is_int(bl_loop_step(loop, 0), 0, "nothing readable: step(0) runs nothing");

	if (write(p1[1], "hello", 5) != 5)
		ok(0, "write");
	r = bl_loop_step(loop, 0);
	is_int(r, 1, "one watcher called");
	is_str(a.buf, "hello", "watcher read the bytes");
	is_int(b.calls, 0, "the other watcher was not called");

	/* Both ready; a stops b in the same pass: b must not run. */
	a.victim = &b.io;
	if (write(p1[1], "x", 1) != 1 || write(p2[1], "y", 1) != 1)
		ok(0, "write");
	r = bl_loop_step(loop, 0);
	is_int(r, 1, "stopped watcher skipped in the same pass");
	is_int(b.calls, 0, "b never ran");
	is_int((long long)bl_loop_io_count(loop), 1, "one watcher left");

	/* Hang-up is reported as readable. */
	a.victim = NULL;
	close(p1[1]);
	r = bl_loop_step(loop, 0);
	ok(r == 1 && a.calls == 3, "write end closed: watcher told (read sees EOF)");
	bl_io_stop(loop, &a.io);
	is_int((long long)bl_loop_io_count(loop), 0, "watchers stopped");

	/* Virtual mode with only a descriptor: time stands still while
	 * waiting for outside input. */
	bl_io_start(loop, &b.io, BL_IO_READ);
	if (write(p2[1], "z", 1) != 1)
		ok(0, "write");
	uint64_t before = bl_loop_now(loop);
	r = bl_loop_step(loop, BL_NEVER);
	ok(r == 1 && bl_loop_now(loop) == before, "descriptor-only wait does not move virtual time");
	bl_io_stop(loop, &b.io);
	close(p1[0]);
	close(p2[0]);
	close(p2[1]);
	bl_loop_free(loop);
}

/* ---- stop and wake from a signal handler --------------------------------- */

static struct bl_loop *sig_loop;
static int sig_mode; /* 0: wake, 1: stop */

static void on_usr1(int sig)
{
	(void)sig;
	if (sig_mode)
		bl_loop_stop(sig_loop);
	else
		bl_loop_wake(sig_loop);
}

static void test_signals(void)
{
	struct bl_loop *loop = bl_loop_new(NULL);
	struct sigaction sa = {0}, old;
	int p[2], r;
	struct pipe_ctx a = {0};

	/* A failure here would hang: let SIGALRM kill the test instead. */
	alarm(20);
	sig_loop = loop;
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	if (pipe(p) < 0)
		return;
	a.fd = p[0];
	bl_io_init(&a.io, a.fd, on_pipe, &a);
	bl_io_start(loop, &a.io, BL_IO_READ);

	/* The handler runs inside raise(); the byte it leaves in the wake pipe
	 * must end an otherwise endless real-time wait. */
	sig_mode = 0;
	raise(SIGUSR1);
	r = bl_loop_step(loop, BL_NEVER);
	is_int(r, 0, "wake from a signal handler ends a blocking step");
	is_int(a.calls, 0, "without calling any watcher");

	sig_mode = 1;
	raise(SIGUSR1);
	is_int(bl_loop_run(loop), BL_LOOP_STOPPED, "stop from a signal handler ends a run");

	/* The stock SIGINT/SIGTERM handlers. */
	is_int(bl_loop_catch_signals(loop), BL_OK, "catch SIGINT/SIGTERM");
	raise(SIGTERM);
	is_int(bl_loop_run(loop), BL_LOOP_STOPPED, "SIGTERM stops the run");
	is_int(bl_loop_caught_signal(loop), SIGTERM, "and is recorded");
	bl_loop_release_signals();

	sigaction(SIGUSR1, &old, NULL);
	bl_io_stop(loop, &a.io);
	close(p[0]);
	close(p[1]);
	bl_loop_free(loop);
	alarm(0);
}

static void test_real_time(void)
{
	struct bl_loop *loop = bl_loop_new(NULL);
	struct tctx t = {.id = 1};
	uint64_t t0 = bl_loop_now(loop);
	int r;

	alarm(20);
	reset_log(loop);
	ok(!bl_loop_is_virtual(loop), "NULL clock means real time");
	bl_timer_init(&t.t, on_timer, &t);
	bl_timer_after(loop, &t.t, 2000, 0);
	r = bl_loop_run(loop);
	is_int(r, BL_LOOP_IDLE, "real-time run ends when the timer has fired");
	ok(t.count == 1 && fired_at[0] >= t0 + 2000, "a 2 ms real timer fired no earlier than due");
	bl_loop_free(loop);
	alarm(0);
}

/* A callback may run a nested step (a blocking call made from a callback). */
struct nest {
	struct bl_timer outer, inner;
	int inner_fired, outer_fired;
};

static void on_inner(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	((struct nest *)ud)->inner_fired++;
}

static bool inner_done(void *ud)
{
	return ((struct nest *)ud)->inner_fired > 0;
}

static void on_outer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct nest *n = ud;

	(void)t;
	n->outer_fired++;
	bl_timer_after(loop, &n->inner, 500, 0);
	bl_loop_run_until(loop, inner_done, n, BL_NEVER);
}

static void test_nested(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct nest n = {0};

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	bl_timer_init(&n.outer, on_outer, &n);
	bl_timer_init(&n.inner, on_inner, &n);
	bl_timer_start(loop, &n.outer, 100, 0);
	is_int(bl_loop_run(loop), BL_LOOP_IDLE, "run with a nested run inside a callback");
	ok(n.outer_fired == 1 && n.inner_fired == 1, "both fired once");
	is_int((long long)bl_loop_now(loop), 600, "nested wait advanced virtual time");
	bl_loop_free(loop);
}

/* Same inputs, same callback order: a random mix run twice. */
static uint64_t run_mix(uint64_t seed)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct tctx c[40];
	uint64_t h = 1469598103934665603ull;

	rng_state = seed;
	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	reset_log(loop);
	for (int i = 0; i < 40; i++) {
		c[i] = (struct tctx){.id = i};
		bl_timer_init(&c[i].t, on_timer, &c[i]);
		bl_timer_start(loop, &c[i].t, xorshift() % 50, (i % 4 == 0) ? 7 : 0);
		if (i % 5 == 0)
			c[i].victim = &c[(i + 3) % 40].t;
	}
	bl_loop_run_until(loop, NULL, NULL, 200);
	for (int i = 0; i < nfired && i < LOG_MAX; i++)
		h = (h ^ (uint64_t)fired[i] ^ (fired_at[i] << 8)) * 1099511628211ull;
	h ^= (uint64_t)nfired;
	for (int i = 0; i < 40; i++)
		bl_timer_stop(loop, &c[i].t);
	bl_loop_free(loop);
	return h;
}

static void test_determinism(void)
{
	uint64_t a = run_mix(12345), b = run_mix(12345), c = run_mix(999);

	ok(a == b, "same inputs: same callback order and times");
	ok(a != c, "different inputs differ (sanity)");
}

/* A stop raised inside a nested run (a Ctrl-C during a blocking wait
 * inside a callback) must end the outer run too. */
static int inner_result;

static void stop_now(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)t;
	(void)ud;
	bl_loop_stop(loop);
}

static void run_nested(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_timer *stopper = ud;
	(void)t;
	bl_timer_after(loop, stopper, 1000, 0);
	inner_result = bl_loop_run_until(loop, NULL, NULL, bl_loop_now(loop) + 60000000);
}

static void test_nested_stop(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_timer outer, stopper, later;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	bl_timer_init(&stopper, stop_now, NULL);
	bl_timer_init(&outer, run_nested, &stopper);
	bl_timer_init(&later, stop_now, NULL);
	bl_timer_after(loop, &outer, 1000, 0);
	bl_timer_after(loop, &later, 30000000, 0); /* would end it anyway, much later */
	int r = bl_loop_run_until(loop, NULL, NULL, BL_NEVER);
	is_int(inner_result, BL_LOOP_STOPPED, "a stop inside a nested run ends the nested run");
	is_int(r, BL_LOOP_STOPPED, "and the outer run too");
	ok(bl_loop_now(loop) < 1000000, "at once, not at the next stop (%llu us)", (unsigned long long)bl_loop_now(loop));
	r = bl_loop_run_until(loop, NULL, NULL, bl_loop_now(loop) + 1000);
	is_int(r, BL_ERR_TIMEOUT, "the outermost run cleared the stop");
	bl_timer_stop(loop, &later);
	bl_loop_free(loop);
}

int main(void)
{
	plan_lazy();
	test_nested_stop();
	test_clock();
	test_order_and_ties();
	test_cancel();
	test_many();
	test_periodic_and_deadline();
	test_predicate();
	test_sources();
	test_fd_watchers();
	test_poll_gap();
	test_signals();
	test_real_time();
	test_nested();
	test_determinism();
	return done_testing();
}
