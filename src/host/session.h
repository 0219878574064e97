/* session.h - what a command or a script works with: a clock, the event
 * loop on it, and a pool of connected Batlabs (virtual or real).
 *
 * `batlab.open{...}` in Lua, the `shell`, `run` and `lua` commands and the
 * device commands (cli/devsel.c) all open one the same way, so `--sim`,
 * `--devices`, `--seed`, `--port` and `--serial` mean the same thing
 * everywhere:
 *
 *   sim      virtual Batlabs (the default layout, or the JSON layout file
 *            given) on a virtual clock: time jumps whenever nothing is due
 *   devices  with sim and no layout file: how many default units (1..64)
 *   seed     the simulator's noise seed
 *   port     real hardware: open only this port (no USB scan)
 *   serial   the device with this serial number becomes the active one
 *            (BL_ERR_NOTFOUND when none has it)
 *
 * Without sim or port, real USB ports (04D8:000A) are scanned. Opening
 * connects every device (pool settle) before it returns.
 */
#ifndef BL_SESSION_H
#define BL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/loop.h"
#include "device/pool.h"
#include "sim/simdev.h"

/* A port that was found (or named) but gave no Batlab: `why` is the
 * reason it would not open ("PATH: reason"), or NULL when it opened but
 * no Batlab connected on it. */
typedef void (*bl_session_port_fn)(const char *path, const char *why, int status, void *ud);

struct bl_session_opts {
	bool sim;
	const char *layout;         /* sim: a layout file; NULL: the default layout */
	int devices;                /* sim without layout: units (0 = 1) */
	uint64_t seed;
	const char *port;           /* real: this port only */
	const char *const *more_ports; /* real, with port: these too (n_more of them) */
	int n_more;
	bool has_serial;
	uint32_t serial;            /* with has_serial: the active device */
	uint64_t settle_us;         /* connect timeout (clock time); 0 = 5 s, 30 s with sim */
	/* For the command line (all optional, 0/NULL = off): */
	const struct bl_device_opts *dev; /* every device's options; NULL: the defaults */
	bool catch_signals;         /* SIGINT/SIGTERM stop the loop from the start,
	                             * the connect included (released at close) */
	bool scan_once;             /* USB: list the ports once, no watching for plugs */
	bool allow_empty;           /* no Batlab is no error: the caller says why */
	bl_session_port_fn port_failed; /* ports without a Batlab; with it, a port
	                             * that does not open is no error either */
	void *port_ud;
};

struct bl_session;

/* Pool events after the session's own bookkeeping (one listener). */
typedef void (*bl_session_event_fn)(struct bl_session *s, enum bl_pool_event ev,
                                    struct bl_device *d, void *ud);

/* Open a session. On failure returns a negative status and a message in
 * err: BL_ERR_ARG (bad options or layout), BL_ERR_NOTFOUND (no Batlab
 * found, or none with that serial), BL_ERR_BUSY, BL_ERR_MEM... */
int bl_session_open(const struct bl_session_opts *o, struct bl_session **out,
                    char *err, size_t errlen);
/* Free the pool (devices are not stopped: that is the caller's business),
 * the loop and the clock. NULL ok. */
void bl_session_close(struct bl_session *s);

struct bl_loop *bl_session_loop(const struct bl_session *s);
struct bl_pool *bl_session_pool(const struct bl_session *s);
const struct bl_clock *bl_session_clock(const struct bl_session *s);
bool bl_session_is_sim(const struct bl_session *s);
void bl_session_on_event(struct bl_session *s, bl_session_event_fn fn, void *ud);

/* The virtual Batlab behind a device of a sim session (NULL for real ones
 * and for devices that left): for inspection and fault injection. */
struct bl_simdev *bl_session_simdev(const struct bl_session *s, const struct bl_device *d);

/* Add an in-process virtual Batlab to a pool (the pool owns it from now
 * on, and frees it if it cannot be added). */
int bl_pool_add_sim(struct bl_pool *p, struct bl_simdev *sim, const char *name);

#endif
