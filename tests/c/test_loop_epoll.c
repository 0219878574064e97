/* test_loop_epoll.c - the loop's descriptor wait (core/loop_poll.c): ready
 * watchers called in the order they were started, interest changes, two
 * watchers on one descriptor, a foreign descriptor reopened under the same
 * number, a descriptor closed while still registered (kept alive by a
 * duplicate) that must neither call its stopped watcher nor spin, and a
 * watcher stopped after its number went to another's descriptor.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "tap.h"

static void bail(const char *what)
{
	printf("Bail out! %s\n", what);
	exit(1);
}

#define NW 40

struct w {
	struct bl_io io;
	int id, calls;
	unsigned last;
};

static int order[NW * 2];
static int norder;

static void on_ready(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct w *w = ud;
	char buf[64];

	(void)loop;
	w->calls++;
	w->last = events;
	if (norder < NW * 2)
		order[norder++] = w->id;
	if (events & BL_IO_READ)
		(void)!read(io->fd, buf, sizeof buf);
}

static void test_order(struct bl_loop *loop)
{
	struct w ws[NW];
	int p[NW][2];
	bool in_order = true;

	for (int i = 0; i < NW; i++) {
		if (pipe(p[i]) < 0)
			bail("pipe");
		memset(&ws[i], 0, sizeof ws[i]);
		ws[i].id = i;
		bl_io_init(&ws[i].io, p[i][0], on_ready, &ws[i]);
		bl_io_start(loop, &ws[i].io, BL_IO_READ);
	}
	/* made ready last to first: the set reports them in that order */
	for (int i = NW - 1; i >= 0; i--)
		(void)!write(p[i][1], "x", 1);
	norder = 0;
	is_int(bl_loop_step(loop, 0), NW, "every ready watcher called in one pass");
	for (int i = 0; i < NW; i++)
		in_order = in_order && order[i] == i;
	ok(norder == NW && in_order, "in the order they were started, not the order they became ready");
	is_int(bl_loop_step(loop, 0), 0, "read empty: nothing more");
	for (int i = 0; i < NW; i++) {
		bl_io_stop(loop, &ws[i].io);
		close(p[i][0]);
		close(p[i][1]);
	}
	is_int((long long)bl_loop_io_count(loop), 0, "all stopped");
}

static void test_interest_and_sharing(struct bl_loop *loop)
{
	struct w a = {.id = 1}, b = {.id = 2};
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		bail("socketpair");
	bl_io_init(&a.io, sv[0], on_ready, &a);
	bl_io_start(loop, &a.io, BL_IO_READ);
	is_int(bl_loop_step(loop, 0), 0, "reader of a quiet socket: not called");
	bl_io_start(loop, &a.io, BL_IO_READ | BL_IO_WRITE);
	ok(bl_loop_step(loop, 0) == 1 && a.last == BL_IO_WRITE, "interest widened to writing: called writable");
	bl_io_start(loop, &a.io, BL_IO_READ);
	is_int(bl_loop_step(loop, 0), 0, "narrowed again: not called");

	/* a second watcher on the same descriptor: both hear it */
	bl_io_init(&b.io, sv[0], on_ready, &b);
	bl_io_start(loop, &b.io, BL_IO_READ);
	(void)!write(sv[1], "y", 1);
	norder = 0;
	is_int(bl_loop_step(loop, 0), 2, "two watchers of one descriptor: both called");
	ok(norder == 2 && order[0] == 1 && order[1] == 2, "the first started first");
	bl_io_stop(loop, &a.io);
	bl_io_stop(loop, &b.io);
	close(sv[0]);
	close(sv[1]);
}

/* A library closes its socket and opens another, which gets the same
 * number: a foreign watcher is looked at by number and hears the new one. */
static void test_foreign_reopened(struct bl_loop *loop)
{
	struct w f = {.id = 3};
	int p1[2], p2[2];

	if (pipe(p1) < 0)
		bail("pipe");
	bl_io_init(&f.io, p1[0], on_ready, &f);
	bl_io_foreign(&f.io);
	bl_io_start(loop, &f.io, BL_IO_READ);
	close(p1[0]);
	if (pipe(p2) < 0)
		bail("pipe");
	is_int(p2[0], p1[0], "the new descriptor has the old number");
	(void)!write(p2[1], "z", 1);
	ok(bl_loop_step(loop, 0) == 1 && f.calls == 1, "the foreign watcher hears the new descriptor");
	bl_io_stop(loop, &f.io);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static int rebuilds;

static void count_rebuilds(void *ud, enum bl_log_level level, const char *module, const char *msg)
{
	(void)ud;
	(void)level;
	if (strcmp(module, "loop") == 0 && strstr(msg, "rebuilt"))
		rebuilds++;
}

/* A registration the kernel keeps: `gone` watches p[0], which is closed
 * before the watcher stops while a duplicate (*dup_fd) keeps the pipe
 * open, and p has a byte to read; `live` watches q[0]. */
static void make_stale(struct bl_loop *loop, struct w *gone, struct w *live, int p[2], int q[2], int *dup_fd)
{
	if (pipe2(p, O_NONBLOCK) < 0 || pipe2(q, O_NONBLOCK) < 0)
		bail("pipe");
	bl_io_init(&gone->io, p[0], on_ready, gone);
	bl_io_init(&live->io, q[0], on_ready, live);
	bl_io_start(loop, &gone->io, BL_IO_READ);
	bl_io_start(loop, &live->io, BL_IO_READ);
	*dup_fd = dup(p[0]);
	close(p[0]);
	bl_io_stop(loop, &gone->io); /* too late: the number is gone */
	(void)!write(p[1], "w", 1);
}

static void drop_stale(struct bl_loop *loop, struct w *live, int p[2], int q[2], int dup_fd)
{
	bl_io_stop(loop, &live->io);
	close(dup_fd);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* Three steps; the rebuilds of the epoll set they logged. */
static int steps_rebuilding(struct bl_loop *loop)
{
	rebuilds = 0;
	bl_log_set_level(BL_LOG_DEBUG);
	bl_log_set_handler(count_rebuilds, NULL);
	for (int i = 0; i < 3; i++)
		bl_loop_step(loop, 0);
	bl_log_set_handler(NULL, NULL);
	bl_log_set_level(BL_LOG_WARN);
	return rebuilds;
}

/* Closed before it was stopped while a duplicate keeps the pipe open: the
 * kernel keeps the registration, and its events name no watcher. */
static void test_closed_while_watched(struct bl_loop *loop)
{
	struct w gone = {.id = 4}, live = {.id = 5};
	int p[2], q[2], dup_fd;

	make_stale(loop, &gone, &live, p, q, &dup_fd);
	is_int(steps_rebuilding(loop), 1, "the stale registration is dropped once (the set rebuilt), not met at every wait");
	is_int(gone.calls, 0, "the stopped watcher is not called");
	(void)!write(q[1], "v", 1);
	ok(bl_loop_step(loop, 0) == 1 && live.calls == 1, "the other watcher still hears its descriptor");
	drop_stale(loop, &live, p, q, dup_fd);
}

/* A watcher given another descriptor while active hears the new one. */
static void test_fd_changed(struct bl_loop *loop)
{
	struct w w = {.id = 6};
	int p[2], q[2];

	if (pipe2(p, O_NONBLOCK) < 0 || pipe2(q, O_NONBLOCK) < 0)
		bail("pipe");
	bl_io_init(&w.io, p[0], on_ready, &w);
	bl_io_start(loop, &w.io, BL_IO_READ);
	w.io.fd = q[0];
	bl_io_start(loop, &w.io, BL_IO_READ);
	(void)!write(p[1], "a", 1);
	is_int(bl_loop_step(loop, 0), 0, "the old descriptor is no longer heard");
	(void)!write(q[1], "b", 1);
	ok(bl_loop_step(loop, 0) == 1 && w.calls == 1, "the new one is");
	bl_io_stop(loop, &w.io);
	for (int i = 0; i < 2; i++) {
		close(p[i]);
		close(q[i]);
	}
}

/* No descriptor left for a new set when a stale registration is met:
 * the old set goes, every watcher is polled by number, the wake-up pipe
 * with them. */
static void test_rebuild_without_descriptors(struct bl_loop *loop)
{
	struct w gone = {.id = 7}, live = {.id = 8};
	struct rlimit old, low;
	int p[2], q[2], dup_fd, lowest, n;

	make_stale(loop, &gone, &live, p, q, &dup_fd);
	/* the lowest free number becomes the limit: no new descriptor */
	lowest = dup(0);
	close(lowest);
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		bail("setrlimit");
	n = steps_rebuilding(loop);
	setrlimit(RLIMIT_NOFILE, &old);
	is_int(n, 1, "no set: the stale registration went with the old set (not met at every wait)");
	is_int(gone.calls, 0, "no set: the stopped watcher is not called");
	(void)!write(q[1], "v", 1);
	ok(bl_loop_step(loop, 0) == 1 && live.calls == 1, "no set: the other watcher is polled and heard");
	drop_stale(loop, &live, p, q, dup_fd);
}

/* A watcher stopped only after its descriptor was closed and the number
 * given to another watcher's new descriptor: the other's registration
 * stays (the set had already forgotten the old one with the close). */
static void test_number_reused(void)
{
	struct w old = {.id = 9}, fresh = {.id = 10};
	struct bl_vclock vc;
	struct bl_loop *loop;
	int p[2], q[2];

	/* a loop of its own: the one before has given up its set (above) */
	bl_vclock_init(&vc, 0);
	if (!(loop = bl_loop_new(&vc.clock)))
		bail("loop");
	if (pipe2(p, O_NONBLOCK) < 0)
		bail("pipe");
	bl_io_init(&old.io, p[0], on_ready, &old);
	bl_io_start(loop, &old.io, BL_IO_READ);
	close(p[0]);                            /* closed while still watched */
	if (pipe2(q, O_NONBLOCK) < 0)
		bail("pipe");
	if (q[0] != p[0]) {
		ok(1, "# SKIP the number was not reused");
		ok(1, "# SKIP the number was not reused");
	} else {
		bl_io_init(&fresh.io, q[0], on_ready, &fresh);
		bl_io_start(loop, &fresh.io, BL_IO_READ);
		bl_io_stop(loop, &old.io);
		(void)!write(q[1], "n", 1);
		ok(bl_loop_step(loop, 0) == 1 && fresh.calls == 1,
		   "the new descriptor under the old number is heard after the old watcher stops");
		is_int(old.calls, 0, "the old watcher is not called");
		bl_io_stop(loop, &fresh.io);
	}
	close(p[1]);
	close(q[0]);
	close(q[1]);
	bl_loop_free(loop);
}

int main(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;

	plan_lazy();
	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	if (!loop)
		bail("loop");
	test_order(loop);
	test_interest_and_sharing(loop);
	test_foreign_reopened(loop);
	test_closed_while_watched(loop);
	test_fd_changed(loop);
	test_rebuild_without_descriptors(loop);
	bl_loop_free(loop);
	test_number_reused();
	return done_testing();
}
