/* test_link.c - links: the termios link on a pseudo-terminal pair, the
 * exclusive open, close detection, buffered output, and the in-process
 * virtual Batlab link in virtual time. */
#define _GNU_SOURCE /* posix_openpt, ptsname_r */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/proto.h"
#include "core/regs.h"
#include "link/link.h"
#include "sim/simdev.h"
#include "tap.h"

/* A pty pair: we hold the master, links open the slave by path. */
static int open_master(char *path, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	struct termios t;

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, path, len) != 0)
		return -1;
	tcgetattr(m, &t);
	cfmakeraw(&t);
	tcsetattr(m, TCSANOW, &t);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	return m;
}

struct sink {
	struct bl_link *link;
	uint8_t buf[16384];
	size_t len;
	int calls;
	bool saw_closed;
	bool close_in_cb;
};

static void on_data(struct bl_link *l, void *ud)
{
	struct sink *s = ud;
	int r;

	s->calls++;
	while ((r = bl_link_read(l, s->buf + s->len, sizeof s->buf - s->len)) > 0)
		s->len += (size_t)r;
	if (r == BL_ERR_CLOSED) {
		s->saw_closed = true;
		if (s->close_in_cb) {
			bl_link_close(l);
			s->link = NULL;
		}
	}
}

struct want {
	struct sink *s;
	size_t len;
};

static bool have_len(void *ud)
{
	struct want *w = ud;
	return w->s->len >= w->len;
}

static bool have_closed(void *ud)
{
	return ((struct sink *)ud)->saw_closed;
}

/* Master-side reader inside the same loop. */
struct mreader {
	struct bl_io io;
	int fd;
	uint8_t buf[65536];
	size_t len;
};

static void on_master(struct bl_loop *loop, struct bl_io *io, unsigned ev, void *ud)
{
	struct mreader *m = ud;
	ssize_t r;

	(void)loop;
	(void)io;
	(void)ev;
	while (m->len < sizeof m->buf && (r = read(m->fd, m->buf + m->len, sizeof m->buf - m->len)) > 0)
		m->len += (size_t)r;
}

/* Master -> slave: the bytes arrive unchanged through the loop. */
static void check_master_gets(struct bl_loop *loop, int m, const uint8_t *want, size_t len,
                              const char *what)
{
	static struct mreader mr;
	uint64_t guard = bl_loop_now(loop) + 5000000;

	memset(&mr, 0, sizeof mr);
	mr.fd = m;
	bl_io_init(&mr.io, m, on_master, &mr);
	bl_io_start(loop, &mr.io, BL_IO_READ);
	while (mr.len < len && bl_loop_now(loop) < guard)
		bl_loop_step(loop, guard - bl_loop_now(loop));
	ok(mr.len == len && memcmp(mr.buf, want, len) == 0, "%s (%zu bytes)", what, mr.len);
	bl_io_stop(loop, &mr.io);
}

/* Bytes both ways on an open tty link `l` whose master is `m`. */
static void tty_data(struct bl_loop *loop, struct bl_link *l, int m)
{
	static uint8_t big[20000];
	struct sink s = {0};
	struct want w = {&s, 5};
	int r;

	/* Host -> device. */
	is_int(bl_link_write(l, (const uint8_t *)"\xAA\x04\x02\x00\x00", 5), 5, "write 5 bytes");
	check_master_gets(loop, m, (const uint8_t *)"\xAA\x04\x02\x00\x00", 5,
	                  "the master received them unchanged (raw, no echo)");

	/* Device -> host through the loop. */
	is_int(bl_link_watch(l, loop, on_data, &s), BL_OK, "watch the link");
	if (write(m, "\xAA\x04\x02\x07\x00", 5) != 5)
		ok(0, "master write");
	r = bl_loop_run_until(loop, have_len, &w, bl_loop_now(loop) + 5000000);
	is_int(r, BL_OK, "on_data delivered the bytes");
	ok(s.len == 5 && memcmp(s.buf, "\xAA\x04\x02\x07\x00", 5) == 0, "bytes intact (0x0d/0x0a untouched too)");

	/* Raw mode: CR, LF, ^C, ^S go through as data. */
	s.len = 0;
	w.len = 6;
	if (write(m, "\r\n\x03\x13\x11\x7f", 6) != 6)
		ok(0, "master write");
	r = bl_loop_run_until(loop, have_len, &w, bl_loop_now(loop) + 5000000);
	ok(r == BL_OK && memcmp(s.buf, "\r\n\x03\x13\x11\x7f", 6) == 0, "control bytes pass unchanged");

	/* Output larger than the pty buffer is queued and flushed by the loop,
	 * in order. */
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	is_int(bl_link_write(l, big, sizeof big), (int)sizeof big, "a 20000-byte write is accepted (queued)");
	check_master_gets(loop, m, big, sizeof big, "and arrives complete and in order");
	bl_link_watch(l, loop, NULL, NULL); /* `s` goes out of scope */
}

/* The far end of `l` goes away; the path opens again; closing from the
 * callback is safe. */
static void tty_close(struct bl_loop *loop, struct bl_link *l, int m, char *path, size_t pathlen)
{
	struct sink s = {0};
	uint8_t buf[64];
	char err[256];
	int r;

	bl_link_watch(l, loop, on_data, &s);
	close(m);
	r = bl_loop_run_until(loop, have_closed, &s, bl_loop_now(loop) + 5000000);
	is_int(r, BL_OK, "closing the master is seen as closed");
	ok(bl_link_closed(l), "link reports closed");
	is_int(bl_link_read(l, buf, sizeof buf), BL_ERR_CLOSED, "read: BL_ERR_CLOSED");
	is_int(bl_link_write(l, buf, 5), BL_ERR_CLOSED, "write: BL_ERR_CLOSED");
	ok(bl_link_error(l)[0] != 0, "an error message is kept: '%s'", bl_link_error(l));
	is_int((long long)bl_loop_io_count(loop), 0, "a closed link leaves the loop");
	bl_link_close(l);

	/* After close, the path can be opened again. */
	m = open_master(path, pathlen);
	r = bl_link_open_tty(path, &l, err, sizeof err);
	is_int(r, BL_OK, "open, close, open again");
	bl_link_close(l);
	r = bl_link_open_tty(path, &l, err, sizeof err);
	is_int(r, BL_OK, "the lock went with the close");

	memset(&s, 0, sizeof s);
	s.close_in_cb = true;
	s.link = l;
	bl_link_watch(l, loop, on_data, &s);
	close(m);
	r = bl_loop_run_until(loop, have_closed, &s, bl_loop_now(loop) + 5000000);
	ok(r == BL_OK && s.link == NULL, "link closed and freed inside its own callback");
	is_int((long long)bl_loop_io_count(loop), 0, "no watcher left behind");
}

static void test_tty(void)
{
	char path[64], err[256];
	struct bl_link *l = NULL, *l2 = NULL;
	struct bl_loop *loop = bl_loop_new(NULL);
	int m, r;

	m = open_master(path, sizeof path);
	ok(m >= 0, "pseudo-terminal pair (%s)", path);
	r = bl_link_open(path, &l, err, sizeof err);
	is_int(r, BL_OK, "bl_link_open on a pty slave falls back to termios");
	if (r < 0) {
		diag("%s", err);
		return;
	}
	is_str(bl_link_kind(l), "tty", "it is a tty link");
	is_str(bl_link_name(l), path, "named by its path");
	ok(bl_link_fd(l) >= 0, "it has a descriptor to poll");
	ok(bl_link_next_event_us(l) == BL_NEVER, "and no next-event time");

	/* Exclusive open: a second opener (a separate open file description,
	 * as another process would have) is refused with a clear message. */
	err[0] = 0;
	r = bl_link_open_tty(path, &l2, err, sizeof err);
	is_int(r, BL_ERR_BUSY, "second open of the same port: BL_ERR_BUSY");
	ok(strstr(err, path) && strstr(err, "in use"), "message names the path: '%s'", err);
	r = bl_link_open(path, &l2, err, sizeof err);
	is_int(r, BL_ERR_BUSY, "also through the generic open");

	tty_data(loop, l, m);
	tty_close(loop, l, m, path, sizeof path);

	/* Errors. */
	r = bl_link_open("/nonexistent/ttyACM9", &l, err, sizeof err);
	is_int(r, BL_ERR_NOTFOUND, "missing path: BL_ERR_NOTFOUND (%s)", err);
	r = bl_link_open("/dev/null", &l, err, sizeof err);
	ok(r < 0, "/dev/null is not a port (%s)", err);
	r = bl_link_open_serial(path, &l, err, sizeof err);
	ok(r < 0, "libserialport refuses a pty path (%s)", err);
	bl_loop_free(loop);
}

static void test_list(void)
{
	char **paths = NULL;
	int n = bl_link_list_batlabs(&paths);

	ok(n >= 0, "enumeration by VID:PID works (%d Batlabs here)", n);
	for (int i = 0; i < n; i++)
		diag("found %s", paths[i]);
	if (n >= 0)
		bl_link_list_free(paths, n);
}

/* ---- the sim link ------------------------------------------------------ */

struct frames {
	struct bl_reframer rf;
	int packets, streams[4];
	struct bl_packet last;
	uint64_t last_at;
	struct bl_loop *loop;
	bool closed;
};

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct frames *fr = ud;

	if (f->kind == BL_FRAME_PACKET) {
		fr->packets++;
		fr->last = f->u.packet;
		fr->last_at = bl_loop_now(fr->loop);
	} else if (f->u.stream.cell < 4) {
		fr->streams[f->u.stream.cell]++;
	}
}

static void on_sim_data(struct bl_link *l, void *ud)
{
	struct frames *fr = ud;
	uint8_t buf[256];
	int r;

	while ((r = bl_link_read(l, buf, sizeof buf)) > 0)
		bl_reframer_feed(&fr->rf, buf, (size_t)r);
	if (r == BL_ERR_CLOSED)
		fr->closed = true;
}

static int want_packets;
static bool got_packets(void *ud)
{
	return ((struct frames *)ud)->packets >= want_packets;
}

static bool got_streams(void *ud)
{
	return ((struct frames *)ud)->streams[0] >= 3;
}

static bool sim_closed(void *ud)
{
	return ((struct frames *)ud)->closed;
}

static void send(struct bl_link *l, struct bl_packet p)
{
	uint8_t b[BL_PKT_LEN];

	bl_packet_encode(&p, b);
	if (bl_link_write(l, b, sizeof b) != (int)sizeof b)
		ok(0, "sim write");
}

static void test_sim(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_simdev_config cfg;
	struct bl_simdev *dev;
	struct bl_link *l;
	struct frames fr = {0};
	uint64_t t0;
	int r;

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	fr.loop = loop;
	bl_reframer_init(&fr.rf, on_frame, NULL, &fr);
	bl_simdev_config_default(&cfg, 0);
	dev = bl_simdev_new(&cfg, 0);
	r = bl_link_open_sim(dev, true, &vc.clock, "sim0", &l);
	is_int(r, BL_OK, "open a sim link");
	is_str(bl_link_kind(l), "sim", "kind sim");
	is_int(bl_link_fd(l), -1, "no descriptor");
	bl_link_watch(l, loop, on_sim_data, &fr);

	/* Let the device boot: run a virtual second. */
	bl_loop_run_until(loop, NULL, NULL, 2000000);
	t0 = bl_loop_now(loop);
	send(l, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER));
	want_packets = 1;
	r = bl_loop_run_until(loop, got_packets, &fr, t0 + 1000000);
	is_int(r, BL_OK, "the reply to a FIRMWARE_VER read arrives");
	ok(fr.last.ns == BL_NS_UNIT && fr.last.addr == BL_UNIT_FIRMWARE_VER && !fr.last.write,
	   "it answers UNIT FIRMWARE_VER");
	is_int(fr.last.value, 7, "firmware version 7");
	ok(fr.last_at > t0 && fr.last_at < t0 + 100000,
	   "virtual time jumped to the reply (%llu us later)", (unsigned long long)(fr.last_at - t0));
	is_int((long long)bl_loop_now(loop), (long long)fr.last_at, "and not past it");

	/* Streams: REPORT_INTERVAL 9 on cell 0 -> one report a second. */
	send(l, bl_packet_write(0, BL_CELL_REPORT_INTERVAL, 9));
	t0 = bl_loop_now(loop);
	r = bl_loop_run_until(loop, got_streams, &fr, t0 + 10000000);
	is_int(r, BL_OK, "three stream reports arrive");
	ok(bl_loop_now(loop) - t0 >= 1500000 && bl_loop_now(loop) - t0 <= 3500000,
	   "about one a second (3 in %.2f virtual s)", (double)(bl_loop_now(loop) - t0) / 1e6);
	is_int(fr.packets, 2, "the write was acknowledged");
	is_int(fr.last.value, 0, "with 0 (success)");

	/* Polling without the loop works too. */
	bl_link_watch(l, NULL, NULL, NULL);
	is_int((long long)bl_loop_source_count(loop), 0, "unwatched: no source left");
	send(l, bl_packet_write(0, BL_CELL_REPORT_INTERVAL, 0));

	/* Unplug: the link closes and the consumer hears of it. */
	bl_link_watch(l, loop, on_sim_data, &fr);
	{
		struct bl_fault f = {.kind = BL_FAULT_UNPLUG, .slot = -1};
		bl_simdev_fault(dev, bl_loop_now(loop), &f);
	}
	r = bl_loop_run_until(loop, sim_closed, &fr, bl_loop_now(loop) + 1000000);
	is_int(r, BL_OK, "unplug is reported through on_data");
	ok(bl_link_closed(l), "sim link closed");
	{
		uint8_t b[8];
		is_int(bl_link_write(l, b, 5), BL_ERR_CLOSED, "write after unplug: BL_ERR_CLOSED");
		while (bl_link_read(l, b, sizeof b) > 0)
			;
		is_int(bl_link_read(l, b, sizeof b), BL_ERR_CLOSED, "read after unplug: BL_ERR_CLOSED");
	}
	is_int(bl_loop_run(loop), BL_LOOP_IDLE, "a closed sim link does not keep the loop busy");
	bl_link_close(l);
	bl_loop_free(loop);
}

int main(void)
{
	plan_lazy();
	signal(SIGPIPE, SIG_IGN);
	alarm(60);
	test_tty();
	test_list();
	test_sim();
	return done_testing();
}
