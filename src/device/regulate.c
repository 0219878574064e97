/* regulate.c - host-side current regulation: the setpoint a channel holds
 * is corrected at each of its reports while it charges or discharges, so
 * the current follows the user's target whatever VCC does (the firmware
 * sets the duty from the setpoint and its own idea of VCC). Also the
 * report interval, the other per-channel setting written on the side.
 * See device.h. */
#include <math.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/device.h"
#include "device/device_impl.h"

#define REG_STEP_MAX 32         /* largest correction per report, counts (0.25 A) */
#define REG_FLOOR 8             /* keep a trickle flowing: 62.5 mA */
#define REG_OVERCURRENT 4.02    /* back off above this, amps */

static void ignore_reply(struct bl_device *d, int status, uint16_t value, void *ud)
{
	(void)d;
	(void)status;
	(void)value;
	(void)ud;
}

uint16_t bl_regulate_step(uint16_t target_raw, uint16_t op_raw, double measured_a)
{
	double sp = bl_setpoint_from_raw(target_raw);
	long op = op_raw;

	if (target_raw == 0)
		return 0;
	if (measured_a > REG_OVERCURRENT) {
		op -= 1 + (long)((measured_a - REG_OVERCURRENT) * 128.0);
	} else if (measured_a > 0.0 && fabs(measured_a - sp) > 0.01) {
		/* The current is proportional to the duty (I = duty/640 x VCC),
		 * so scale the setpoint by the ratio: one step lands close,
		 * where one count per report would take a minute. */
		long want = lround(op * sp / measured_a);
		long step = want - op;
		if (step == 0)
			step = measured_a < sp ? 1 : -1;
		if (step > REG_STEP_MAX)
			step = REG_STEP_MAX;
		if (step < -REG_STEP_MAX)
			step = -REG_STEP_MAX;
		op += step;
	}
	/* No more than 25 % above the target: enough for VCC down to 4.0 V,
	 * and a bound whatever garbage the measurement holds. */
	long ceiling = target_raw + target_raw / 4 + 1;
	if (ceiling > BL_SETPOINT_MAX)
		ceiling = BL_SETPOINT_MAX;
	if (op > ceiling)
		op = ceiling;
	/* Keep a trickle flowing so the current stays measurable, but never
	 * more than was asked for. */
	long floor = target_raw < REG_FLOOR ? target_raw : REG_FLOOR;
	if (op < floor)
		op = floor;
	return (uint16_t)op;
}

void bl_devi_regulate(struct bl_device *d, int cell)
{
	struct bl_channel_state *c = &d->ch[cell];
	uint64_t now = bl_loop_now(d->loop);
	uint16_t mode = c->snap.s.mode;
	uint16_t next;

	if (c->target_raw == 0 || (mode != BL_MODE_CHARGE && mode != BL_MODE_DISCHARGE))
		return;
	/* A measurement is latched every 614.4 ms: wait for two after a
	 * change so the correction sees its own effect. */
	if (now - c->last_change_us < d->opts.regulate_us)
		return;
	next = bl_regulate_step(c->target_raw, c->op_raw, bl_current_from_raw(c->snap.s.current));
	if (next == c->op_raw)
		return;
	c->op_raw = next;
	c->last_change_us = now;
	bl_device_write_async(d, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, next, ignore_reply, NULL, NULL);
}

void bl_device_set_target(struct bl_device *d, int cell, double amps)
{
	uint16_t raw;

	if (!bl_valid_cell(cell))
		return;
	raw = bl_setpoint_to_raw(amps);
	d->ch[cell].target_raw = raw > BL_SETPOINT_MAX ? BL_SETPOINT_MAX : raw;
}

int bl_device_set_current(struct bl_device *d, int cell, double amps)
{
	struct bl_channel_state *c;
	uint16_t old, raw;
	long op;

	if (!bl_valid_cell(cell))
		return BL_ERR_ARG;
	c = &d->ch[cell];
	old = c->target_raw;
	bl_device_set_target(d, cell, amps);
	raw = c->target_raw;
	/* Keep the correction the regulation has learnt (the VCC ratio) when
	 * the target moves: the new current is right at once, not a minute
	 * of corrections later. */
	op = raw;
	if (old > 0 && raw > 0 && c->op_raw > 0) {
		op = lround((double)c->op_raw * raw / old);
		if (op > raw + raw / 4 + 1)
			op = raw + raw / 4 + 1;
		if (op > BL_SETPOINT_MAX)
			op = BL_SETPOINT_MAX;
	}
	c->op_raw = (uint16_t)op;
	c->last_change_us = bl_loop_now(d->loop);
	return bl_device_write_async(d, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, c->op_raw,
	                             ignore_reply, NULL, NULL);
}

double bl_device_target(const struct bl_device *d, int cell)
{
	return bl_valid_cell(cell) ? bl_setpoint_from_raw(d->ch[cell].target_raw) : 0.0;
}

uint16_t bl_device_operating_setpoint(const struct bl_device *d, int cell)
{
	return bl_valid_cell(cell) ? d->ch[cell].op_raw : 0;
}

uint16_t bl_device_target_raw(const struct bl_device *d, int cell)
{
	return bl_valid_cell(cell) ? d->ch[cell].target_raw : 0;
}

int bl_device_set_report_interval(struct bl_device *d, int cell, double seconds)
{
	if (!bl_valid_cell(cell))
		return BL_ERR_ARG;
	return bl_device_write_async(d, (uint8_t)cell, BL_CELL_REPORT_INTERVAL,
	                             bl_interval_to_raw(seconds), ignore_reply, NULL, NULL);
}
