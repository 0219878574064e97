/* channel.h - the four channels of one Batlab as the host sees them: the
 * report tick, the sample, steps, limits and sample listeners.
 *
 * A report (stream packet) of a channel is a sample once the tick reads
 * that the stream does not carry are done: the charge counter (H, L, H),
 * ERROR when the firmware stopped the channel, and VCC (shared by the
 * four channels for half a second; the device latches it only every
 * 0.6 s). The tick runs for a channel only while something listens to it:
 * a recorder for every report of a cell in a run, a task waiting for its
 * next report. Energy is integrated from V x I at every report whether or
 * not anything listens, so a step's energy is whole.
 *
 * Steps start and stop here and nowhere else: the command line, the Lua
 * bindings and the stock tests all call bl_channel_start / bl_channel_safe,
 * so the same registers are written in the same order whoever asks.
 *
 * Everything is asynchronous on the device's loop; a completion callback
 * gets the status (and a number: ohms for impedance).
 */
#ifndef BL_CHANNEL_H
#define BL_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/regs.h"
#include "device/device.h"

struct bl_chanset;
struct bl_channel;

enum bl_step_kind {
	BL_STEP_NONE = 0,       /* no step of ours (stopped, or never started) */
	BL_STEP_CHARGE,
	BL_STEP_DISCHARGE,
	BL_STEP_IDLE,           /* a rest: IDLE with the counter cleared */
	BL_STEP_STOP,           /* MODE = STOPPED only (start) */
};

/* One report of one channel, converted. Current is signed: + charging,
 * - discharging (IMPEDANCE draws from the cell). charge_ah and energy_wh
 * count since the step began, signed like the current. temp_c is NaN
 * when the thermistor reading cannot be converted. */
struct bl_sample {
	double time, step_time;      /* loop seconds; seconds since the step began */
	uint16_t mode, status, error;
	double voltage, current, temp_c, charge_ah, energy_wh, vcc;
	int cell;
	uint32_t serial;
	bool device_reset;           /* the device reset since the step began: it is over */
	unsigned step_seq;           /* the channel's steps begun when it was taken: a report
	                              * between a step's label and its start is the step before's */
	uint16_t op_raw, sp_raw;     /* the setpoint written (the regulation's) and the target, raw */
	uint16_t duty;               /* DUTY, read while driving a current when someone wants it */
	bool have_duty;
};

/* A sample listener. fn gets every sample of the channel (status BL_OK),
 * or s NULL and the error when a tick's reads failed (BL_ERR_CLOSED when
 * the channel set goes). tick, if set, is called when a report starts the
 * tick reads whose sample fn will get. The struct belongs to the listener;
 * it may unlisten itself (or others) from inside fn. */
struct bl_chan_listener {
	void (*fn)(struct bl_chan_listener *l, const struct bl_sample *s, int status);
	void (*tick)(struct bl_chan_listener *l);
	struct bl_channel *ch;           /* set while listening */
	struct bl_chan_listener *next;
};

/* A channel operation's completion: status, the result number (ohms for
 * impedance, 0 otherwise) and, on a failure, what failed (NULL when the
 * status says it all). */
typedef void (*bl_chan_fn)(struct bl_channel *ch, int status, double number, const char *what,
                           void *ud);

/* ---- the channel set of a device -------------------------------------- */

/* Take over d's stream reports (the device has one stream listener). NULL
 * on out of memory. */
struct bl_chanset *bl_chanset_new(struct bl_device *d);
/* Listeners get BL_ERR_CLOSED, tick reads in flight are abandoned, the
 * stream listener is removed. Operations in flight complete as usual.
 * NULL ok. */
void bl_chanset_free(struct bl_chanset *cs);
struct bl_channel *bl_chanset_channel(struct bl_chanset *cs, int cell);
/* The device reset: steps are over (the samples of a channel whose step
 * it ended say so until the next step starts), report intervals are asked
 * again. */
void bl_chanset_device_reset(struct bl_chanset *cs);
/* Listeners and tick reads in flight, for leak checks. */
int bl_chanset_busy(const struct bl_chanset *cs);

struct bl_device *bl_channel_device(const struct bl_channel *ch);
int bl_channel_cell(const struct bl_channel *ch);

/* ---- samples ---------------------------------------------------------- */

/* Listening also asks for reports (1 s) if nobody chose an interval. */
void bl_channel_listen(struct bl_channel *ch, struct bl_chan_listener *l);
void bl_channel_unlisten(struct bl_chan_listener *l);
/* The latest sample (NULL before the first). */
const struct bl_sample *bl_channel_last(const struct bl_channel *ch);
/* Seconds since the current step began, or a negative number if none. */
double bl_channel_step_time(const struct bl_channel *ch);
enum bl_step_kind bl_channel_step(const struct bl_channel *ch);

/* REPORT_INTERVAL (0 = off). fn may be NULL. */
int bl_channel_set_interval(struct bl_channel *ch, double seconds, bl_chan_fn fn, void *ud);
/* Ask for 1 s reports unless an interval was chosen. */
void bl_channel_want_reports(struct bl_channel *ch);
/* Samples taken while the channel drives a current carry DUTY (one more
 * read per report) while at least one want_duty(true) is not undone
 * (Lexcelon's log has the column). */
void bl_channel_want_duty(struct bl_channel *ch, bool on);

/* ---- steps ------------------------------------------------------------- */

/* Start a step. CHARGE/DISCHARGE: clear ERROR and the charge counter, then
 * start the current (the relay sequence and regulation of
 * bl_op_charge_start);
 * IDLE: MODE = IDLE, then clear the counter; STOP: MODE = STOPPED. The
 * step's time, charge and energy count from here. If the start fails
 * part-way, the channel is made safe. */
int bl_channel_start(struct bl_channel *ch, enum bl_step_kind kind, double amps,
                     bl_chan_fn fn, void *ud);
/* End whatever runs: regulation off, MODE STOPPED then IDLE, read back
 * (bl_op_safe). The step is over from now on. */
int bl_channel_safe(struct bl_channel *ch, bl_chan_fn fn, void *ud);
/* Change the current of the running charge or discharge. */
int bl_channel_set_current(struct bl_channel *ch, double amps);
/* One impedance measurement (number = ohms). */
int bl_channel_impedance(struct bl_channel *ch, bl_chan_fn fn, void *ud);

/* ---- limits ------------------------------------------------------------- */

enum bl_limit {
	BL_LIM_VMAX, BL_LIM_VMIN, BL_LIM_IMAX, BL_LIM_IMAX_CHG, BL_LIM_IMAX_DCHG,
	BL_LIM_TMAX, BL_LIM_TMAX_CHG, BL_LIM_TMAX_DCHG, BL_LIM_COUNT,
};

struct bl_limits {
	bool given[BL_LIM_COUNT];
	double value[BL_LIM_COUNT];      /* V, A, degC */
};

/* The key of a limit ("vmax", "imax_chg", "tmax_c"...), its unit ("V",
 * "A", "degC"); bl_limit_by_key returns -1 for an unknown key. */
const char *bl_limit_key(enum bl_limit l);
const char *bl_limit_unit(enum bl_limit l);
int bl_limit_by_key(const char *key);
/* Check the values and that no register is set twice: BL_OK, or
 * BL_ERR_ARG with a message. */
int bl_limits_check(const struct bl_limits *lim, char *err, size_t errlen);
/* Write and verify each given limit (temperatures in this cell's own
 * thermistor calibration). Check them first: BL_ERR_ARG if they do not
 * pass bl_limits_check. On a failure `what` names the limit, register,
 * value and raw count. */
int bl_channel_limits(struct bl_channel *ch, const struct bl_limits *lim, bl_chan_fn fn,
                      void *ud);

#endif
