/* test_pty.c - `batlab sim --pty` as a child process: read the printed pty
 * paths, talk to the virtual Batlabs through link_tty, close and reopen,
 * then SIGTERM the server and check it exits 0 promptly.
 *
 * This runs in real time against another process. The 5 s limits are
 * failure guards only (a hung server must fail the test, not hang it);
 * nothing here asserts on timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/loop.h"
#include "core/proto.h"
#include "core/regs.h"
#include "link/link.h"
#include "support/child.h"
#include "tap.h"

#define GUARD_US 5000000

/* ---- a tiny blocking register read on the loop ------------------------- */

struct reader {
	struct bl_reframer rf;
	bool have;
	struct bl_packet want, got;
	int streams;
	bool closed;
};

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct reader *r = ud;

	if (f->kind == BL_FRAME_STREAM) {
		r->streams++;
		return;
	}
	if (bl_packet_answers(&r->want, &f->u.packet)) {
		r->got = f->u.packet;
		r->have = true;
	}
}

static void on_data(struct bl_link *l, void *ud)
{
	struct reader *r = ud;
	uint8_t buf[256];
	int n;

	while ((n = bl_link_read(l, buf, sizeof buf)) > 0)
		bl_reframer_feed(&r->rf, buf, (size_t)n);
	if (n == BL_ERR_CLOSED)
		r->closed = true;
}

static bool have_reply(void *ud)
{
	struct reader *r = ud;
	return r->have || r->closed;
}

static int streams_wanted;
static bool have_streams(void *ud)
{
	struct reader *r = ud;
	return r->streams >= streams_wanted || r->closed;
}

/* Returns the value, or a negative status. */
static int transact(struct bl_loop *loop, struct bl_link *l, struct reader *r, struct bl_packet p)
{
	uint8_t b[BL_PKT_LEN];
	int rc;

	r->want = p;
	r->have = false;
	bl_packet_encode(&p, b);
	rc = bl_link_write(l, b, sizeof b);
	if (rc < 0)
		return rc;
	rc = bl_loop_run_until(loop, have_reply, r, bl_loop_now(loop) + GUARD_US);
	if (rc < 0)
		return rc;
	return r->have ? r->got.value : BL_ERR_CLOSED;
}

static struct bl_link *open_watched(struct bl_loop *loop, const char *path, struct reader *r)
{
	struct bl_link *l = NULL;
	char err[256];

	memset(r, 0, sizeof *r);
	bl_reframer_init(&r->rf, on_frame, NULL, r);
	if (bl_link_open(path, &l, err, sizeof err) < 0) {
		diag("%s", err);
		return NULL;
	}
	bl_link_watch(l, loop, on_data, r);
	return l;
}

static void test_cli(void)
{
	char out[65536], err[4096];
	char *describe[] = {batlab, "sim", "--describe", "--devices", "2", "--seed", "7", NULL};
	char *bad[] = {batlab, "sim", "--pty", "--speed", "-1", NULL};
	char *badlayout[] = {batlab, "sim", "--describe", "--layout", "/nonexistent.json", NULL};
	char *help[] = {batlab, "sim", "--help", NULL};
	int rc;

	rc = run_cmd(describe, out, sizeof out, err, sizeof err);
	is_int(rc, 0, "sim --describe exits 0");
	ok(out[0] == '{' && strstr(out, "1000") && strstr(out, "1001"),
	   "and prints the layout JSON with both serial numbers");
	rc = run_cmd(bad, out, sizeof out, err, sizeof err);
	is_int(rc, 2, "a bad --speed exits 2");
	ok(strchr(err, '\n') == err + strlen(err) - 1 && strstr(err, "--speed"),
	   "with one line naming the option: %.*s", (int)strcspn(err, "\n"), err);
	rc = run_cmd(badlayout, out, sizeof out, err, sizeof err);
	is_int(rc, 2, "a missing layout file exits 2");
	ok(strstr(err, "/nonexistent.json") != NULL, "naming the file");
	rc = run_cmd(help, out, sizeof out, err, sizeof err);
	ok(rc == 0 && strstr(out, "--pty"), "sim --help exits 0 with usage");
}

static void test_serve(void)
{
	char *argv[] = {batlab, "sim", "--pty", "--devices", "2", "--seed", "3", "--speed", "50", NULL};
	char out[1024], path[2][256];
	struct child c;
	struct bl_loop *loop = bl_loop_new(NULL);
	struct bl_link *l, *l2;
	struct reader r, r2;
	char err[256];
	int st, v;

	if (spawn(&c, argv) < 0) {
		ok(0, "spawn %s", batlab);
		return;
	}
	read_lines(c.out, out, sizeof out, 2, 5000);
	ok(sscanf(out, "%255s %255s", path[0], path[1]) == 2, "two pty paths printed: %s %s",
	   path[0], path[1]);
	ok(strncmp(path[0], "/dev/", 5) == 0 && strcmp(path[0], path[1]) != 0, "distinct device paths");

	l = open_watched(loop, path[0], &r);
	ok(l != NULL, "open device 0 with the generic open");
	if (!l)
		goto out;
	is_str(bl_link_kind(l), "tty", "a pty is a termios link");
	v = transact(loop, l, &r, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER));
	is_int(v, 7, "UNIT FIRMWARE_VER over the pty is 7");
	v = transact(loop, l, &r, bl_packet_read(BL_NS_UNIT, BL_UNIT_SERIAL_NUM));
	is_int(v, 1000, "device 0 has serial 1000");
	v = transact(loop, l, &r, bl_packet_write(0, BL_CELL_REPORT_INTERVAL, 1));
	is_int(v, 0, "write REPORT_INTERVAL: acknowledged");
	v = transact(loop, l, &r, bl_packet_read(0, BL_CELL_REPORT_INTERVAL));
	is_int(v, 1, "and reads back");
	streams_wanted = 3;
	ok(bl_loop_run_until(loop, have_streams, &r, bl_loop_now(loop) + GUARD_US) == BL_OK &&
	   r.streams >= 3, "stream packets arrive (model at 50x)");

	/* Exclusive while open. */
	is_int(bl_link_open(path[0], &l2, err, sizeof err), BL_ERR_BUSY, "a second opener is refused: %s", err);

	/* Close and reopen: the server keeps serving. */
	bl_link_close(l);
	l = open_watched(loop, path[0], &r);
	ok(l != NULL, "reopen after close");
	if (l) {
		v = transact(loop, l, &r, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER));
		is_int(v, 7, "the reopened link talks");
		bl_link_close(l);
	}

	/* The second device. */
	l2 = open_watched(loop, path[1], &r2);
	if (l2) {
		v = transact(loop, l2, &r2, bl_packet_read(BL_NS_UNIT, BL_UNIT_SERIAL_NUM));
		is_int(v, 1001, "device 1 has serial 1001");
		for (int i = 0; i < 20; i++)
			if ((v = transact(loop, l2, &r2, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER))) != 7)
				break;
		is_int(v, 7, "20 more reads in a row");
		bl_link_close(l2);
	} else {
		ok(0, "open device 1");
	}
out:
	kill(c.pid, SIGTERM);
	st = reap(&c, 5000);
	ok(st != -1, "the server exits promptly on SIGTERM");
	ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "with status 0 (status 0x%x)", st);
	bl_loop_free(loop);
}

int main(void)
{
	plan_lazy();
	signal(SIGPIPE, SIG_IGN);
	alarm(120); /* last-resort guard against a hang */
	if (!find_batlab()) {
		ok(1, "# SKIP no batlab binary (set BATLAB)");
		return done_testing();
	}
	test_cli();
	test_serve();
	return done_testing();
}
