/* device.h - one Batlab on one link: requests with timeouts and retries,
 * stream snapshots, the watchdog, software current regulation, identity,
 * and the multi-request operations (connect, write_verify, charge read,
 * impedance, start/stop a channel, bootload, calibration).
 *
 * Everything is asynchronous on the event loop: a request or an operation
 * takes a completion callback. bl_device_wait() runs the loop until an
 * operation completes, which is how the command line and code outside a Lua
 * task use them; Lua tasks yield instead and are resumed by the callback.
 *
 * One request is in flight at a time by default (the firmware's receive
 * ring is small); replies are matched to the request by namespace and
 * address byte, and a reply that matches nothing pending is dropped.
 */
#ifndef BL_DEVICE_H
#define BL_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/loop.h"
#include "core/proto.h"
#include "core/regs.h"
#include "link/link.h"

struct bl_device;
struct bl_request;
struct bl_op;

enum bl_device_event {
	BL_DEV_CLOSED = 1,   /* the link closed (unplugged); the device is dead */
	BL_DEV_RESET,        /* the device reset behind our back */
	BL_DEV_SILENT,       /* requests keep timing out */
	BL_DEV_RECOVERED,    /* it answers again after being silent */
	BL_DEV_GARBAGE,      /* bytes that were no packet were discarded (stats.dropped_bytes) */
};

struct bl_device_opts {
	uint64_t timeout_us;        /* per attempt; default 250 ms */
	int retries;                /* extra attempts after a timeout; default 3 */
	int window;                 /* requests in flight, 1..4; default 1 */
	uint64_t watchdog_us;       /* refresh period; default 2 s; 0 = leave the watchdog alone */
	uint64_t health_us;         /* reset check period; default 5 s; 0 = off */
	uint64_t regulate_us;       /* min time between setpoint corrections; default 1.3 s */
	/* Refresh the watchdog every watchdog_us (and check health every
	 * health_us) of the device's own time, as its SYSTEM_TIMER counts it,
	 * not of the host's: the virtual Batlab on a pty runs --speed times
	 * faster than the host's clock. Until two reads of the timer give its
	 * rate, every 10 ms. Default false (a real Batlab's clock is the
	 * host's). */
	bool watchdog_by_clock;
	/* Every request sent, one line each ("12.345678 sim0 W CELL0 MODE 3"),
	 * for debugging and for tests that compare what two paths write.
	 * NULL: none. Not owned. */
	FILE *trace;
};

/* Latest stream report of a channel (raw values). */
struct bl_snapshot {
	bool valid;
	uint64_t time_us;        /* when it arrived, loop clock */
	uint32_t seq;            /* counts reports */
	struct bl_stream s;
};

/* What connect learns. */
struct bl_identity {
	bool connected;
	bool bootloader;         /* the measure MCU sits in its bootloader */
	uint32_t serial;         /* SERIAL_NUM + 65536 * DEVICE_ID */
	uint16_t firmware;
	uint16_t settings;       /* SETTINGS after connect */
	uint16_t temp_r[BL_CELLS];
	uint16_t temp_b[BL_CELLS];
};

typedef void (*bl_req_fn)(struct bl_device *d, int status, uint16_t value, void *ud);
typedef void (*bl_op_fn)(struct bl_device *d, struct bl_op *op, int status, void *ud);
typedef void (*bl_stream_fn)(struct bl_device *d, int cell, const struct bl_snapshot *snap, void *ud);
typedef void (*bl_event_fn)(struct bl_device *d, enum bl_device_event ev, void *ud);

void bl_device_opts_default(struct bl_device_opts *o);

/* Take ownership of `link` and watch it on `loop`. NULL on out of memory. */
struct bl_device *bl_device_new(struct bl_loop *loop, struct bl_link *link,
                                const struct bl_device_opts *opts);
/* Fail what is pending (callbacks get BL_ERR_CLOSED), close the link. */
void bl_device_free(struct bl_device *d);

struct bl_loop *bl_device_loop(const struct bl_device *d);
/* Device seconds per host second: 1 for a real Batlab; for one paced by
 * its clock (watchdog_by_clock: the virtual Batlab on a pty at --speed),
 * the average rate its SYSTEM_TIMER has shown (1 until ten seconds of its
 * time were counted, and within 2 % of 1). Quantities the host integrates
 * over its own time (energy) are scaled by it. */
double bl_device_time_rate(const struct bl_device *d);
struct bl_link *bl_device_link(const struct bl_device *d);
const char *bl_device_port(const struct bl_device *d);
const struct bl_identity *bl_device_identity(const struct bl_device *d);
bool bl_device_closed(const struct bl_device *d);
void bl_device_on_stream(struct bl_device *d, bl_stream_fn fn, void *ud);
void bl_device_on_event(struct bl_device *d, bl_event_fn fn, void *ud);
const struct bl_snapshot *bl_device_snapshot(const struct bl_device *d, int cell);
/* Counters for tests and diagnostics. */
struct bl_device_stats {
	uint64_t sent, replies, timeouts, retries, failures, unmatched, streams, dropped_bytes;
	uint64_t watchdog_refreshes;
	uint64_t last_watchdog_us;   /* when the last refresh was answered */
};
void bl_device_stats(const struct bl_device *d, struct bl_device_stats *out);
/* Requests queued or in flight (for leak checks). */
int bl_device_pending(const struct bl_device *d);

/* ---- Requests ----------------------------------------------------------- */

enum {
	BL_REQ_PRIORITY = 1,     /* jump the queue (safety writes, watchdog) */
	BL_REQ_NO_RETRY = 2,     /* one attempt only */
};

/* Queue a request. fn gets BL_OK and the value (reads) or the write
 * status, BL_ERR_DEVICE for a refused write (257), BL_ERR_TIMEOUT after the
 * retries, BL_ERR_CLOSED if the link goes. timeout_us 0 = the default.
 * *out (may be NULL) is a handle for bl_request_cancel, valid until fn runs. */
int bl_device_submit(struct bl_device *d, const struct bl_packet *req, unsigned flags,
                     uint64_t timeout_us, bl_req_fn fn, void *ud, struct bl_request **out);
int bl_device_write_async(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                          bl_req_fn fn, void *ud, struct bl_request **out);
/* The callback will not be called; the request still completes on the wire
 * (so replies stay matched). */
void bl_request_cancel(struct bl_request *r);

/* ---- Operations ----------------------------------------------------------
 * Each starts an operation and returns it (NULL on out of memory or a
 * closed device). `fn` runs once when it completes; the op is freed after
 * fn returns. Results are read inside fn with bl_op_* accessors. */

/* Run the loop until `op` completes; returns its status (the op is
 * freed). For code outside Lua tasks. Create the op with fn NULL and wait
 * before anything else runs the loop: an op nobody waits for is freed when
 * it completes. */
int bl_device_wait(struct bl_device *d, struct bl_op *op, uint16_t *value, double *number);
/* Abandon: fn is not called; what was sent stays sent, but steps that
 * must always happen (LOCK release, mode restore) still run. */
void bl_op_cancel(struct bl_op *op);
uint16_t bl_op_value(const struct bl_op *op);   /* a read's value */
double bl_op_number(const struct bl_op *op);    /* ohms, coulombs... */
uint32_t bl_op_raw32(const struct bl_op *op);   /* charge counter */

struct bl_op *bl_op_read(struct bl_device *d, uint8_t ns, uint8_t addr, bl_op_fn fn, void *ud);
struct bl_op *bl_op_write(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                          bl_op_fn fn, void *ud);
/* Write, read back, retry (3 times) on a mismatch: BL_ERR_VERIFY at last. */
struct bl_op *bl_op_write_verify(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                                 bl_op_fn fn, void *ud);
/* The connect sequence (without mode writes): application or bootloader
 * (namespace 5 address 1 answers 257 in the application), serial,
 * firmware, SETTINGS, calibration R/B, the setpoints, and on firmware >= 4
 * the watchdog enabled by read-modify-write of SETTINGS. */
struct bl_op *bl_op_connect(struct bl_device *d, bl_op_fn fn, void *ud);
/* Charge counter read H, L, H (L again if H changed); number = coulombs
 * with the right multiplier for the channel, raw32 = the counter. */
struct bl_op *bl_op_charge(struct bl_device *d, int cell, bl_op_fn fn, void *ud);
/* Impedance: IMPEDANCE mode (a 39 Hz sine), settle 2 s, LOCK, read the
 * peak-to-peak current and voltage, unlock (always), restore the mode.
 * number = ohms. */
struct bl_op *bl_op_impedance(struct bl_device *d, int cell, bl_op_fn fn, void *ud);
/* Start charging / discharging at `amps` with software regulation. A
 * charge first sets the setpoint 0, then CHARGE, waits 10 ms for the relay,
 * then the setpoint. */
struct bl_op *bl_op_charge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud);
struct bl_op *bl_op_discharge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud);
/* Put a channel safe: regulation off, MODE = STOPPED, then IDLE, then MODE
 * read back (all priority requests). IDLE is written again (twice at most)
 * while MODE reads anything but IDLE, NO_CELL or BACKWARDS (what an empty
 * or reversed slot shows at once). BL_ERR_VERIFY when it never does; a
 * failed read ends the op with its error. */
struct bl_op *bl_op_safe(struct bl_device *d, int cell, bl_op_fn fn, void *ud);

/* ---- Regulation and reporting ------------------------------------------- */

/* The user's target for a channel (0 = regulation off). The setpoint the
 * device holds is corrected at each report of that channel while it is in
 * CHARGE or DISCHARGE, in proportional steps. */
void bl_device_set_target(struct bl_device *d, int cell, double amps);
double bl_device_target(const struct bl_device *d, int cell);
/* Change the current of a channel that is charging or discharging: a new
 * target, and the setpoint written now (scaled by the correction the
 * regulation has found, so the VCC error does not come back). 0 A stops
 * the current but leaves the mode. */
int bl_device_set_current(struct bl_device *d, int cell, double amps);
/* The setpoint last written by us (raw), for diagnostics. */
uint16_t bl_device_operating_setpoint(const struct bl_device *d, int cell);
/* The target the regulation holds (raw, 128 per A; 0: none). */
uint16_t bl_device_target_raw(const struct bl_device *d, int cell);
/* Ask for stream reports every `seconds` (0 = off): writes REPORT_INTERVAL. */
int bl_device_set_report_interval(struct bl_device *d, int cell, double seconds);

/* A write of TEMP_CALIB_R or TEMP_CALIB_B to `cell` went out by another
 * way (a raw register write): from now on temperatures of that cell decode
 * with `value`. Other addresses, and 0 or 0xFFFF (no calibration), change
 * nothing. */
void bl_device_note_temp_calib(struct bl_device *d, int cell, uint8_t addr, uint16_t value);

/* The charge multiplier for a cell given the SETTINGS last seen. */
int bl_device_charge_multiplier(const struct bl_device *d, int cell);

/* One regulation step, pure (exposed for tests): the new operating
 * setpoint given the target, the current one and the measured current. */
uint16_t bl_regulate_step(uint16_t target_raw, uint16_t op_raw, double measured_a);

#endif
