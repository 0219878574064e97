/* ops.c - the operation engine (see op.h) and the operations on registers
 * and identity: read, write, write_verify, connect, the charge counter.
 * The operations that change a channel's mode are in ops_channel.c. */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/device.h"
#include "device/device_impl.h"
#include "device/op.h"

#define MOD BL_DEVICE_MOD
#define CONNECT_PROBES 3        /* a timed-out probe is retried, never "bootloader" */

/* ---- The engine ------------------------------------------------------------ */

static void op_on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud);

/* Finished ops kept for reuse: a sample costs one or two, and calloc and
 * free were a visible part of that. Not the device's list: an op's
 * callback may free its device. (The program is single-threaded.) */
#define MAX_SPARE_OPS 16
static struct bl_op *spare_ops;
static int nspare_ops;

static struct bl_op *op_alloc(void)
{
	struct bl_op *op = spare_ops;

	if (!op)
		return calloc(1, sizeof *op);
	spare_ops = op->next;
	nspare_ops--;
	memset(op, 0, sizeof *op);
	return op;
}

static void op_release(struct bl_op *op)
{
	if (nspare_ops >= MAX_SPARE_OPS) {
		free(op);
		return;
	}
	op->next = spare_ops;
	spare_ops = op;
	nspare_ops++;
}

struct bl_op *bl_opi_new(struct bl_device *d, op_step_fn step, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (d->closed)
		return NULL;
	op = op_alloc();
	if (!op)
		return NULL;
	op->d = d;
	op->step = step;
	op->fn = fn;
	op->ud = ud;
	op->status = BL_OK;
	bl_timer_init(&op->timer, op_on_timer, op);
	op->next = d->ops;
	d->ops = op;
	return op;
}

struct bl_op *bl_opi_new_cell(struct bl_device *d, int cell, op_step_fn step, bl_op_fn fn,
                              void *ud)
{
	struct bl_op *op;

	if (!bl_valid_cell(cell))
		return NULL;
	op = bl_opi_new(d, step, fn, ud);
	if (op)
		op->cell = cell;
	return op;
}

static void op_unlink(struct bl_op *op)
{
	for (struct bl_op **p = &op->d->ops; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			return;
		}
}

void bl_opi_finish(struct bl_op *op, int status)
{
	struct bl_device *d = op->d;

	if (op->status == BL_OK)
		op->status = status;
	bl_timer_stop(d->loop, &op->timer);
	op_unlink(op);
	if (op->waiter) {
		op->waiter->done = true;
		op->waiter->status = op->status;
		op->waiter->value = op->value;
		op->waiter->number = op->number;
	} else if (!op->cancelled && op->fn) {
		op->fn(d, op, op->status, op->ud);
	}
	free(op->ext);
	op_release(op);
}

static void op_on_reply(struct bl_device *d, int status, uint16_t value, void *ud)
{
	struct bl_op *op = ud;

	(void)d;
	op->step(op, status, value);
}

/* Send one request on behalf of an op; a refused submit (closed device)
 * finishes the op at once. */
void bl_opi_req(struct bl_op *op, struct bl_packet p, unsigned flags)
{
	bl_opi_req_timeout(op, p, flags, 0);
}

void bl_opi_req_timeout(struct bl_op *op, struct bl_packet p, unsigned flags, uint64_t timeout_us)
{
	int rc = bl_device_submit(op->d, &p, flags, timeout_us, op_on_reply, op, NULL);
	if (rc != BL_OK)
		bl_opi_finish(op, rc);
}

void bl_opi_read(struct bl_op *op, uint8_t ns, uint8_t addr)
{
	bl_opi_req(op, bl_packet_read(ns, addr), 0);
}

void bl_opi_write(struct bl_op *op, uint8_t ns, uint8_t addr, uint16_t v, unsigned flags)
{
	bl_opi_req(op, bl_packet_write(ns, addr, v), flags);
}

static void op_on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_op *op = ud;

	(void)loop;
	(void)t;
	op->step(op, BL_OK, 0);
}

void bl_opi_sleep(struct bl_op *op, uint64_t us)
{
	bl_timer_after(op->d->loop, &op->timer, us, 0);
}

/* Remember the first failure; later cleanup steps keep running. */
void bl_opi_note(struct bl_op *op, int status)
{
	if (op->status == BL_OK && status != BL_OK)
		op->status = status;
}

bool bl_opi_failed(struct bl_op *op, int status)
{
	if (status == BL_OK)
		return false;
	bl_opi_finish(op, status);
	return true;
}

bool bl_opi_probe_again(struct bl_op *op, int status, int max)
{
	if (status != BL_ERR_TIMEOUT || ++op->tries >= max)
		return false;
	bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
	return true;
}

uint16_t bl_op_value(const struct bl_op *op) { return op->value; }
double bl_op_number(const struct bl_op *op) { return op->number; }
uint32_t bl_op_raw32(const struct bl_op *op) { return op->raw32; }

void bl_op_cancel(struct bl_op *op)
{
	if (op)
		op->cancelled = true;
}

static bool waiter_done(void *ud)
{
	return ((struct op_waiter *)ud)->done;
}

int bl_device_wait(struct bl_device *d, struct bl_op *op, uint16_t *value, double *number)
{
	struct op_waiter w = {0};
	int rc;

	if (!op)
		return d->closed ? BL_ERR_CLOSED : BL_ERR_ARG;
	if (d->dispatching) {
		/* Refuse a nested loop run from this device's own callbacks. */
		op->cancelled = true;
		BL_ERROR(MOD, "%s: bl_device_wait called from a device callback", bl_link_name(d->link));
		return BL_ERR_STATE;
	}
	op->waiter = &w;
	rc = bl_loop_run_until(d->loop, waiter_done, &w, BL_NEVER);
	if (!w.done) {
		/* Stopped (Ctrl-C) or nothing left to run: let the op finish on
		 * its own if the loop runs again, but nobody waits for it. */
		op->waiter = NULL;
		op->cancelled = true;
		return rc < 0 ? rc : BL_ERR_STATE;
	}
	if (value)
		*value = w.value;
	if (number)
		*number = w.number;
	return w.status;
}

/* ---- Single requests and write_verify -------------------------------------- */

static void step_single(struct bl_op *op, int status, uint16_t value)
{
	op->value = value;
	op->number = value;
	bl_opi_finish(op, status);
}

struct bl_op *bl_op_read(struct bl_device *d, uint8_t ns, uint8_t addr, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_single, fn, ud);
	if (op)
		bl_opi_read(op, ns, addr);
	return op;
}

struct bl_op *bl_op_write(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                          bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_single, fn, ud);
	if (op)
		bl_opi_write(op, ns, addr, value, 0);
	return op;
}

#define VERIFY_TRIES 3

static void step_write_verify(struct bl_op *op, int status, uint16_t value)
{
	uint8_t ns = (uint8_t)op->tmp[0], addr = (uint8_t)op->tmp[1];

	switch (op->state) {
	case 0: /* write done */
		if (bl_opi_failed(op, status))
			return;
		op->state = 1;
		bl_opi_read(op, ns, addr);
		return;
	case 1: /* read back */
		if (bl_opi_failed(op, status))
			return;
		op->value = value;
		if (value == op->arg) {
			bl_opi_finish(op, BL_OK);
			return;
		}
		if (++op->tries >= VERIFY_TRIES) {
			BL_WARN(MOD, "%s: ns %u reg 0x%02X: wrote %u, reads %u",
			        bl_link_name(op->d->link), ns, addr, op->arg, value);
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		op->state = 0;
		bl_opi_write(op, ns, addr, op->arg, 0);
		return;
	}
}

struct bl_op *bl_op_write_verify(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                                 bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_write_verify, fn, ud);
	if (!op)
		return NULL;
	op->tmp[0] = ns;
	op->tmp[1] = addr;
	op->arg = value;
	bl_opi_write(op, ns, addr, value, 0);
	return op;
}

/* ---- Connect and identity --------------------------------------------------- */

/* The identity reads, in order, after the application answered. */
struct id_read {
	uint8_t ns, addr;
};

static const struct id_read id_reads[] = {
	{BL_NS_UNIT, BL_UNIT_SERIAL_NUM}, {BL_NS_UNIT, BL_UNIT_DEVICE_ID},
	{BL_NS_UNIT, BL_UNIT_FIRMWARE_VER}, {BL_NS_UNIT, BL_UNIT_SETTINGS},
	{0, BL_CELL_TEMP_CALIB_R}, {0, BL_CELL_TEMP_CALIB_B}, {0, BL_CELL_CURRENT_SETPOINT},
	{1, BL_CELL_TEMP_CALIB_R}, {1, BL_CELL_TEMP_CALIB_B}, {1, BL_CELL_CURRENT_SETPOINT},
	{2, BL_CELL_TEMP_CALIB_R}, {2, BL_CELL_TEMP_CALIB_B}, {2, BL_CELL_CURRENT_SETPOINT},
	{3, BL_CELL_TEMP_CALIB_R}, {3, BL_CELL_TEMP_CALIB_B}, {3, BL_CELL_CURRENT_SETPOINT},
	{BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER},
};

void bl_device_note_temp_calib(struct bl_device *d, int cell, uint8_t addr, uint16_t value)
{
	/* An uncalibrated (blank) EEPROM reads 0xFFFF, and 0 is no value
	 * either: keep what we have then, or every temperature would be
	 * nonsense. */
	if (!bl_valid_cell(cell) || value == 0 || value == 0xFFFF)
		return;
	if (addr == BL_CELL_TEMP_CALIB_R)
		d->id.temp_r[cell] = value;
	else if (addr == BL_CELL_TEMP_CALIB_B)
		d->id.temp_b[cell] = value;
}

static void store_id_value(struct bl_device *d, const struct id_read *r, uint16_t v)
{
	struct bl_identity *id = &d->id;

	if (r->ns == BL_NS_UNIT) {
		switch (r->addr) {
		case BL_UNIT_SERIAL_NUM: id->serial = (id->serial & 0xFFFF0000u) | v; break;
		case BL_UNIT_DEVICE_ID: id->serial = (id->serial & 0xFFFFu) | ((uint32_t)v << 16); break;
		case BL_UNIT_FIRMWARE_VER: id->firmware = v; break;
		case BL_UNIT_SETTINGS: id->settings = d->settings = v; d->settings_seen = d->settings_writes; break;
		case BL_UNIT_SYSTEM_TIMER:
			d->last_timer = v;
			d->have_timer = true;
			d->timer_answer_us = bl_loop_now(d->loop);
			break;
		}
		return;
	}
	if (r->addr == BL_CELL_CURRENT_SETPOINT)
		d->ch[r->ns].op_raw = v;
	else
		bl_device_note_temp_calib(d, r->ns, r->addr, v);
}

enum {
	CONNECT_PROBE, CONNECT_IDENTITY, CONNECT_WDT_FIRST, CONNECT_SETTINGS, CONNECT_VERIFY,
};

static void connect_done(struct bl_op *op)
{
	bl_devi_connected(op->d);
	bl_opi_finish(op, BL_OK);
}

static void step_connect(struct bl_op *op, int status, uint16_t value)
{
	struct bl_device *d = op->d;

	switch (op->state) {
	case CONNECT_PROBE:
		if (bl_opi_probe_again(op, status, CONNECT_PROBES))
			return;
		if (bl_opi_failed(op, status))
			return;
		if (value != BL_COMMAND_ERROR) {
			/* Only the bootloader answers namespace 5: it returns its
			 * flash pointer, never 257. */
			d->id.bootloader = true;
			connect_done(op);
			return;
		}
		d->id.bootloader = false;
		op->state = CONNECT_IDENTITY;
		op->index = 0;
		bl_opi_read(op, id_reads[0].ns, id_reads[0].addr);
		return;
	case CONNECT_IDENTITY:
		if (bl_opi_failed(op, status))
			return;
		store_id_value(d, &id_reads[op->index], value);
		if (++op->index < (int)BL_ARRAY_LEN(id_reads)) {
			bl_opi_read(op, id_reads[op->index].ns, id_reads[op->index].addr);
			return;
		}
		if (d->id.firmware < 4 || d->opts.watchdog_us == 0) {
			connect_done(op);
			return;
		}
		/* Refresh before enabling, so a timer left at 0 by an earlier
		 * session cannot stop every channel the moment it is enabled. */
		op->state = CONNECT_WDT_FIRST;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET, 0);
		return;
	case CONNECT_WDT_FIRST:
		if (bl_opi_failed(op, status))
			return;
		d->stats.watchdog_refreshes++;
		d->stats.last_watchdog_us = bl_loop_now(d->loop);
		op->state = CONNECT_SETTINGS;
		/* Read-modify-write, keeping only what is safe to inherit: no
		 * other program holds the port (it is opened exclusively), so
		 * other bits are leftovers of a session that died. A stale
		 * hi-res bit freezes the temperature and VCC the limits rely on,
		 * SAFETY_DISABLE turns every limit off, and the firmware trim
		 * would fight our current loop. */
		if (d->settings & ~(BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_WATCHDOG_TIMER))
			BL_WARN(MOD, "%s: clearing leftover SETTINGS bits 0x%04X", bl_link_name(d->link),
			        d->settings & ~(BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_WATCHDOG_TIMER));
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_SETTINGS,
		             (d->settings & BL_SET_NO_PSU_DCHG_ENABLE) | BL_SET_WATCHDOG_TIMER, 0);
		return;
	case CONNECT_SETTINGS:
		if (bl_opi_failed(op, status))
			return;
		op->state = CONNECT_VERIFY;
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_SETTINGS);
		return;
	case CONNECT_VERIFY:
		if (bl_opi_failed(op, status))
			return;
		d->id.settings = d->settings = value;
		d->settings_seen = d->settings_writes;
		if (!(value & BL_SET_WATCHDOG_TIMER)) {
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		d->watchdog_on = true;
		connect_done(op);
		return;
	}
}

struct bl_op *bl_op_connect(struct bl_device *d, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_connect, fn, ud);
	if (op)
		bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
	return op;
}

/* ---- Charge counter --------------------------------------------------------- */

/* Firmware 5 to 7 add a current's raw value, at most 32767 (a larger one
 * reads 0), to the counter once per 614.4 ms on a normal channel. Two
 * reads less than two of those periods apart, in the device's time, are
 * at most two additions apart: under 65536, so the low half alone gives
 * the new value. One request instead of three for a report's counter. */
#define CHARGE_LOW_ONLY_US 1228800u
#define CHARGE_STATE_LOW 4

static bool charge_low_only(const struct bl_op *op, uint64_t to_us)
{
	const struct bl_device *d = op->d;
	const struct bl_channel_state *cs = &d->ch[op->cell];

	/* (SETTINGS as read after its last write: which channel is hi-res) */
	return cs->charge_known && cs->charge_epoch == op->epoch && d->id.firmware >= 5 &&
	       d->id.firmware <= 7 && d->settings_seen == d->settings_writes &&
	       bl_device_charge_multiplier(d, op->cell) == BL_CHARGE_MULT_NORMAL &&
	       bl_devi_device_time_under(d, cs->charge_read_us, to_us, CHARGE_LOW_ONLY_US);
}

static void charge_read_full(struct bl_op *op)
{
	op->state = 0;
	op->epoch = op->d->charge_epoch;
	op->started_us = bl_loop_now(op->d->loop);
	bl_opi_read(op, (uint8_t)op->cell, BL_CELL_CHARGEH);
}

static void charge_done(struct bl_op *op, uint32_t raw32)
{
	struct bl_channel_state *cs = &op->d->ch[op->cell];

	cs->charge_raw = raw32;
	cs->charge_read_us = op->started_us;
	cs->charge_epoch = op->epoch;
	cs->charge_known = true;
	op->raw32 = raw32;
	op->number = bl_charge_coulombs(raw32, bl_device_charge_multiplier(op->d, op->cell));
	bl_opi_finish(op, BL_OK);
}

static void step_charge(struct bl_op *op, int status, uint16_t value)
{
	struct bl_channel_state *cs = &op->d->ch[op->cell];
	uint8_t cell = (uint8_t)op->cell;

	if (status != BL_OK)
		cs->charge_known = false;
	if (bl_opi_failed(op, status))
		return;
	if (op->state == CHARGE_STATE_LOW) {
		/* still true now that the answer is here (the device read its
		 * counter before that); a write queued since was done after */
		if (!charge_low_only(op, bl_loop_now(op->d->loop))) {
			charge_read_full(op);
			return;
		}
		charge_done(op, cs->charge_raw + (uint16_t)(value - (uint16_t)cs->charge_raw));
		return;
	}
	op->tmp[op->state] = value;
	switch (op->state++) {
	case 0: bl_opi_read(op, cell, BL_CELL_CHARGEL); return;
	case 1: bl_opi_read(op, cell, BL_CELL_CHARGEH); return;
	case 2:
		if (op->tmp[2] != op->tmp[0]) {
			/* The low half rolled over between the reads: the second
			 * high half goes with a fresh low half. */
			bl_opi_read(op, cell, BL_CELL_CHARGEL);
			return;
		}
		charge_done(op, bl_charge_join(op->tmp[0], op->tmp[1]));
		return;
	default:
		charge_done(op, bl_charge_join(op->tmp[2], op->tmp[3]));
		return;
	}
}

struct bl_op *bl_op_charge(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new_cell(d, cell, step_charge, fn, ud);

	if (!op)
		return NULL;
	op->epoch = d->charge_epoch;
	if (charge_low_only(op, bl_loop_now(d->loop))) {
		op->state = CHARGE_STATE_LOW;
		op->started_us = bl_loop_now(d->loop);
		bl_opi_read(op, (uint8_t)cell, BL_CELL_CHARGEL);
	} else {
		charge_read_full(op);
	}
	return op;
}

struct bl_identity *bl_opi_identity(struct bl_device *d)
{
	return &d->id;
}
