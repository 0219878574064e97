/* test_device_pty.c - the device layer over a real pseudo-terminal served by
 * `batlab sim --pty` in another process, in real time: connect, reads,
 * writes, a refused write, streams, then the server goes away and the
 * device reports it closed. Time limits are failure guards only. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/loop.h"
#include "core/regs.h"
#include "core/units.h"
#include "device/device.h"
#include "link/link.h"
#include "support/child.h"
#include "tap.h"

static int closed_events;

static void on_event(struct bl_device *d, enum bl_device_event ev, void *ud)
{
	(void)d;
	(void)ud;
	closed_events += ev == BL_DEV_CLOSED;
}

static bool is_closed(void *ud)
{
	return bl_device_closed(ud);
}

int main(void)
{
	struct child server;
	char path[256], err[256];
	struct bl_loop *loop;
	struct bl_link *link;
	struct bl_device *dev;
	uint16_t v = 0;

	plan_lazy();
	bl_log_set_level(BL_LOG_ERROR);
	if (!find_batlab()) {
		ok(0, "the batlab binary is built");
		return done_testing();
	}
	char *argv[] = {batlab, "sim", "--pty", "--speed", "50", NULL};
	ok(spawn(&server, argv) == 0, "batlab sim --pty starts");
	read_lines(server.out, path, sizeof path, 1, 5000);
	path[strcspn(path, "\n")] = 0;
	ok(strncmp(path, "/dev/pts/", 9) == 0, "it prints a pty path (%s)", path);

	loop = bl_loop_new(NULL);
	is_int(bl_link_open(path, &link, err, sizeof err), BL_OK, "the generic open takes the pty (termios)");
	dev = bl_device_new(loop, link, NULL);
	bl_device_on_event(dev, on_event, NULL);
	is_int(bl_device_wait(dev, bl_op_connect(dev, NULL, NULL), NULL, NULL), BL_OK, "connect over the pty");
	is_int(bl_device_identity(dev)->serial, 1000, "serial 1000");
	is_int(bl_device_identity(dev)->firmware, 7, "firmware 7");
	ok(bl_device_wait(dev, bl_op_read(dev, 1, BL_CELL_TEMP_CALIB_R, NULL, NULL), &v, NULL) == BL_OK && v == 1500,
	   "a register read (cell 1 TEMP_CALIB_R = %u)", v);
	is_int(bl_device_wait(dev, bl_op_write_verify(dev, 3, BL_CELL_VOLTAGE_LIMIT_DCHG, 20000, NULL, NULL), NULL, NULL),
	       BL_OK, "write_verify over the pty");
	is_int(bl_device_wait(dev, bl_op_write(dev, BL_NS_UNIT, BL_UNIT_VCC, 1, NULL, NULL), NULL, NULL),
	       BL_ERR_DEVICE, "a refused write comes back as 257");

	struct bl_link *second;
	is_int(bl_link_open(path, &second, err, sizeof err), BL_ERR_BUSY, "a second open of the same pty is refused");
	ok(strstr(err, "in use") != NULL, "saying it is in use (%s)", err);

	kill(server.pid, SIGTERM);
	bl_loop_run_until(loop, is_closed, dev, bl_loop_now(loop) + 5000000);
	ok(bl_device_closed(dev), "the device notices the server is gone");
	is_int(closed_events, 1, "one closed event");
	ok(reap(&server, 5000) == 0, "the server exits 0");
	bl_device_free(dev);
	bl_loop_free(loop);
	return done_testing();
}
