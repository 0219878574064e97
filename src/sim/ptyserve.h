/* sim/ptyserve.h - serve virtual Batlabs on pseudo-terminals, so that any
 * program (ours through link_tty, or a pyserial script) can talk to them as
 * if they were /dev/ttyACM* devices. This is `batlab sim --pty`.
 *
 * One pty per device. Bytes a client writes to the slave reach the device
 * at the current model time; the device's replies and stream packets are
 * written to the master when they fall due, on a loop timer. Model time is
 * speed x (loop time since the server started), from 0.
 *
 * The server keeps a slave descriptor of each pty open, in raw mode, so a
 * client sees a raw line from its first byte and can close and reopen the
 * path at will (the master never sees a hang-up).
 */
#ifndef BL_SIM_PTYSERVE_H
#define BL_SIM_PTYSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "sim/layout.h"
#include "sim/simdev.h"

struct bl_ptyserve;

/* Create the devices of `layout` and their ptys and start serving on
 * `loop`. speed > 0. On failure returns a negative status and writes a
 * message into err. */
int bl_ptyserve_new(struct bl_loop *loop, const struct bl_sim_layout *layout, double speed,
                    struct bl_ptyserve **out, char *err, size_t errlen);
/* Stop serving, close the ptys and free the devices. */
void bl_ptyserve_free(struct bl_ptyserve *s);

int bl_ptyserve_count(const struct bl_ptyserve *s);
/* The slave path of device i ("/dev/pts/N"). */
const char *bl_ptyserve_path(const struct bl_ptyserve *s, int i);

#endif
