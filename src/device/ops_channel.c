/* ops_channel.c - the operations that change a channel's mode: impedance,
 * start charging or discharging, and making a channel safe (with the
 * read-back that proves it). See device.h. */
#include "core/bl.h"
#include "core/units.h"
#include "device/device.h"
#include "device/device_impl.h"
#include "device/op.h"

#define MOD BL_DEVICE_MOD
#define IMPEDANCE_SETTLE_US 2000000
/* IDLE written again when MODE still reads an active mode after it. */
#define SAFE_IDLE_RETRIES 2

static void op_abort_safe(struct bl_op *op, int status);

/* ---- Safe state ------------------------------------------------------------ */

enum { SAFE_STOPPED, SAFE_IDLE, SAFE_CHECK };

/* What MODE may read once IDLE took: IDLE, or the slot's own verdict at
 * once (an empty slot reads NO_CELL, a reversed cell BACKWARDS). */
static bool mode_is_rest(uint16_t mode)
{
	return mode == BL_MODE_IDLE || mode == BL_MODE_NO_CELL || mode == BL_MODE_BACKWARDS;
}

static void step_safe(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;

	switch (op->state) {
	case SAFE_STOPPED:
		/* STOPPED first cuts the current whatever the mode was; IDLE
		 * then clears ERROR and restarts cell detection. */
		op->state = SAFE_IDLE;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
		return;
	case SAFE_IDLE:
		/* Whatever the write's answer (a lost reply does not mean a lost
		 * write), the mode read back decides. */
		op->state = SAFE_CHECK;
		bl_opi_req(op, bl_packet_read(cell, BL_CELL_MODE), BL_REQ_PRIORITY);
		return;
	case SAFE_CHECK:
		if (status != BL_OK || mode_is_rest(value)) {
			bl_opi_finish(op, status);
			return;
		}
		if (op->tries++ < SAFE_IDLE_RETRIES) {
			op->state = SAFE_IDLE;
			bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
			return;
		}
		BL_WARN(MOD, "%s: cell %u: MODE reads %u after IDLE was written %d times",
		        bl_link_name(op->d->link), cell, value, 1 + SAFE_IDLE_RETRIES);
		bl_opi_finish(op, BL_ERR_VERIFY);
		return;
	}
}

/* Start the safe sequence on `op` (regulation off, STOPPED, IDLE, read
 * back). An op that failed on the way keeps its first error. */
static void safe_begin(struct bl_op *op)
{
	struct bl_channel_state *c = &op->d->ch[op->cell];

	c->target_raw = 0;
	c->gen++;
	op->step = step_safe;
	op->state = SAFE_STOPPED;
	op->tries = 0;
	bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_STOPPED, BL_REQ_PRIORITY);
}

struct bl_op *bl_op_safe(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!bl_valid_cell(cell))
		return NULL;
	op = bl_opi_new_cell(d, cell, step_safe, fn, ud);
	if (!op) {
		/* Regulation stops even when nothing can be sent. */
		d->ch[cell].target_raw = 0;
		d->ch[cell].gen++;
		return NULL;
	}
	safe_begin(op);
	return op;
}

/* Failure while starting current (or restoring it): whatever was already
 * written may have taken effect, so end in the safe state and report the
 * first error. */
static void op_abort_safe(struct bl_op *op, int status)
{
	bl_opi_note(op, status);
	safe_begin(op);
}

/* ---- Impedance ------------------------------------------------------------- */

enum {
	IMP_READ_MODE, IMP_SET_MODE, IMP_SETTLED, IMP_LOCKED, IMP_GOT_IPP, IMP_GOT_VPP,
	IMP_GOT_MODE, IMP_GOT_ERROR, IMP_UNLOCKED, IMP_RESTORE_MODE, IMP_RESTORE_SETTLE, IMP_RESTORE_SETPOINT, IMP_RESTORED,
};

static void step_impedance_restore(struct bl_op *op, int status, uint16_t value);

/* Put the channel back as it was before the measurement. Current is only
 * restarted the proper way (charge: setpoint 0, CHARGE, relay settle, then
 * the setpoint) and only if nothing changed the channel meanwhile: after
 * it was made safe or restarted, the mode is no longer ours to restore,
 * and an abandoned measurement leaves the channel IDLE. */
static void impedance_restore(struct bl_op *op)
{
	struct bl_channel_state *c = &op->d->ch[op->cell];
	uint8_t cell = (uint8_t)op->cell;

	if ((uint16_t)c->gen != op->tmp[2]) {
		bl_opi_finish(op, op->status);
		return;
	}
	op->step = step_impedance_restore;
	if (op->cancelled) {
		op->state = IMP_RESTORED;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
		return;
	}
	switch (op->arg) {
	case BL_MODE_CHARGE:
		op->state = IMP_RESTORE_MODE;
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, 0, BL_REQ_PRIORITY);
		return;
	case BL_MODE_DISCHARGE:
		op->state = IMP_RESTORE_SETPOINT;
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, c->op_raw, BL_REQ_PRIORITY);
		return;
	default:
		op->state = IMP_RESTORED;
		bl_opi_write(op, cell, BL_CELL_MODE, op->arg, BL_REQ_PRIORITY);
		return;
	}
}

/* Always unlock, whatever failed: a locked unit freezes every
 * temperature and VCC reading. */
static void impedance_unlock(struct bl_op *op)
{
	op->state = IMP_UNLOCKED;
	bl_opi_write(op, BL_NS_UNIT, BL_UNIT_LOCK, BL_LOCK_UNLOCKED, BL_REQ_PRIORITY);
}

static void step_impedance(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;

	switch (op->state) {
	case IMP_READ_MODE:
		if (bl_opi_failed(op, status))
			return;
		op->arg = value; /* mode to restore */
		op->state = IMP_SET_MODE;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IMPEDANCE, 0);
		return;
	case IMP_SET_MODE:
		if (status != BL_OK) {
			/* The write may have taken effect: put the mode back. */
			bl_opi_note(op, status);
			impedance_restore(op);
			return;
		}
		op->state = IMP_SETTLED;
		bl_opi_sleep(op, IMPEDANCE_SETTLE_US);
		return;
	case IMP_SETTLED:
		op->state = IMP_LOCKED;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_LOCK, BL_LOCK_LOCKED, 0);
		return;
	case IMP_LOCKED:
		bl_opi_note(op, status);
		op->state = IMP_GOT_IPP;
		bl_opi_read(op, cell, BL_CELL_CURRENT_PP);
		return;
	case IMP_GOT_IPP:
		bl_opi_note(op, status);
		op->tmp[0] = value;
		op->state = IMP_GOT_VPP;
		bl_opi_read(op, cell, BL_CELL_VOLTAGE_PP);
		return;
	case IMP_GOT_VPP:
		bl_opi_note(op, status);
		op->tmp[1] = value;
		/* Still measuring? A channel the device stopped meanwhile (a
		 * limit) measured nothing: its ERROR says why. */
		op->state = IMP_GOT_MODE;
		bl_opi_read(op, cell, BL_CELL_MODE);
		return;
	case IMP_GOT_MODE:
		bl_opi_note(op, status);
		if (status == BL_OK && value != BL_MODE_IMPEDANCE) {
			op->tmp[3] = 1;
			op->state = IMP_GOT_ERROR;
			bl_opi_read(op, cell, BL_CELL_ERROR);
			return;
		}
		impedance_unlock(op);
		return;
	case IMP_GOT_ERROR:
		bl_opi_note(op, status);
		op->number = status == BL_OK ? value : 0;
		impedance_unlock(op);
		return;
	case IMP_UNLOCKED:
		bl_opi_note(op, status);
		if (op->tmp[3]) {
			/* Left as the device left it (STOPPED, ERROR readable):
			 * restoring the mode would clear the evidence. */
			bl_opi_finish(op, op->status != BL_OK ? op->status : BL_ERR_STATE);
			return;
		}
		impedance_restore(op);
		return;
	}
}

/* The restore after the measurement (see impedance_restore); any failure
 * on the way ends in the safe state. */
static void step_impedance_restore(struct bl_op *op, int status, uint16_t value)
{
	struct bl_channel_state *c = &op->d->ch[op->cell];
	uint8_t cell = (uint8_t)op->cell;

	(void)value;
	if (op->state != IMP_RESTORED && status != BL_OK) {
		op_abort_safe(op, status);
		return;
	}
	switch (op->state) {
	case IMP_RESTORE_MODE: /* charge: setpoint 0 is written */
		op->state = IMP_RESTORE_SETTLE;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_CHARGE, BL_REQ_PRIORITY);
		return;
	case IMP_RESTORE_SETTLE:
		op->state = IMP_RESTORE_SETPOINT;
		op->arg = BL_MODE_NO_CELL; /* from here on: the last setpoint write */
		bl_opi_sleep(op, BL_RELAY_SETTLE_US);
		return;
	case IMP_RESTORE_SETPOINT:
		op->state = IMP_RESTORED;
		if (op->arg == BL_MODE_DISCHARGE) {
			bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_DISCHARGE, BL_REQ_PRIORITY);
			return;
		}
		c->last_change_us = bl_loop_now(op->d->loop);
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, c->op_raw, BL_REQ_PRIORITY);
		return;
	case IMP_RESTORED:
		bl_opi_note(op, status);
		if (op->status == BL_OK) {
			double ipp = bl_current_from_raw(op->tmp[0]);
			double vpp = bl_voltage_from_raw(op->tmp[1]);
			op->number = ipp < 1e-6 ? 0.0 : vpp / ipp;
			if (ipp < 1e-6) {   /* no sine: 0 ohm would pass any threshold */
				bl_opi_finish(op, BL_ERR_STATE);
				return;
			}
		}
		bl_opi_finish(op, op->status);
		return;
	}
}

struct bl_op *bl_op_impedance(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new_cell(d, cell, step_impedance, fn, ud);

	if (op) {
		op->tmp[2] = (uint16_t)d->ch[cell].gen;
		bl_opi_read(op, (uint8_t)cell, BL_CELL_MODE);
	}
	return op;
}

/* ---- Start charging or discharging ----------------------------------------- */

static void step_charge_start(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;
	struct bl_channel_state *c = &op->d->ch[op->cell];

	(void)value;
	if (status != BL_OK) {
		op_abort_safe(op, status);
		return;
	}
	switch (op->state++) {
	case 0: /* setpoint 0 written */
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_CHARGE, 0);
		return;
	case 1: /* CHARGE written: let the relay settle before current flows */
		bl_opi_sleep(op, BL_RELAY_SETTLE_US);
		return;
	case 2:
		c->op_raw = c->target_raw;
		c->last_change_us = bl_loop_now(op->d->loop);
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, c->target_raw, 0);
		return;
	default:
		bl_opi_finish(op, BL_OK);
	}
}

static void step_discharge_start(struct bl_op *op, int status, uint16_t value)
{
	(void)value;
	if (status != BL_OK) {
		op_abort_safe(op, status);
		return;
	}
	if (op->state++ > 0) {
		bl_opi_finish(op, BL_OK);
		return;
	}
	bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_DISCHARGE, 0);
}

/* Both starts: the new target, no regulation step until the first
 * setpoint has taken effect, and the setpoint written first. A charge
 * starts from setpoint 0 and gets its setpoint once the relay settled. */
static struct bl_op *start_op(struct bl_device *d, int cell, double amps, bool charge,
                              op_step_fn step, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new_cell(d, cell, step, fn, ud);
	struct bl_channel_state *c;

	if (!op)
		return NULL;
	c = &d->ch[cell];
	bl_device_set_target(d, cell, amps);
	c->op_raw = charge ? 0 : c->target_raw;
	c->gen++;
	c->last_change_us = bl_loop_now(d->loop);
	bl_opi_write(op, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, c->op_raw, 0);
	return op;
}

struct bl_op *bl_op_charge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud)
{
	return start_op(d, cell, amps, true, step_charge_start, fn, ud);
}

struct bl_op *bl_op_discharge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud)
{
	return start_op(d, cell, amps, false, step_discharge_start, fn, ud);
}
