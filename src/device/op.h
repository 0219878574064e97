/* op.h - the operation engine behind device.h, for the modules that add
 * operations (ops.c, ops_channel.c, flash.c, calib.c). Internal: not for
 * users of the API.
 *
 * An operation is a small state machine: each step submits one request (or
 * sleeps) and is called again with the result. The first error is kept in
 * op->status while cleanup steps still run; bl_opi_finish ends it.
 */
#ifndef BL_DEVICE_OP_H
#define BL_DEVICE_OP_H

#include "device/device.h"

struct op_waiter {
	bool done;
	int status;
	uint16_t value;
	double number;
};

/* Called with each request's result (or BL_OK when a sleep ends). */
typedef void (*op_step_fn)(struct bl_op *op, int status, uint16_t value);

struct bl_op {
	struct bl_device *d;
	struct bl_op *next;          /* live ops of the device */
	op_step_fn step;
	int state;
	int status;                  /* first error, kept while cleanup steps run */
	int cell;
	int tries;
	int index;
	uint16_t arg;
	uint16_t value;
	uint16_t tmp[4];
	double number;
	uint32_t raw32;
	uint64_t started_us;         /* bl_op_charge: when its first read was sent */
	unsigned epoch;              /* bl_op_charge: the device's charge_epoch then */
	bool cancelled;
	struct bl_timer timer;
	bl_op_fn fn;
	void *ud;
	struct op_waiter *waiter;
	void *ext;                   /* op-specific state, freed with the op */
};

struct bl_op *bl_opi_new(struct bl_device *d, op_step_fn step, bl_op_fn fn, void *ud);
/* The same for an operation on one channel (op->cell set); NULL for a cell
 * outside 0..3 too. */
struct bl_op *bl_opi_new_cell(struct bl_device *d, int cell, op_step_fn step, bl_op_fn fn,
                              void *ud);
void bl_opi_finish(struct bl_op *op, int status);
void bl_opi_req(struct bl_op *op, struct bl_packet p, unsigned flags);
void bl_opi_req_timeout(struct bl_op *op, struct bl_packet p, unsigned flags, uint64_t timeout_us);
void bl_opi_read(struct bl_op *op, uint8_t ns, uint8_t addr);
void bl_opi_write(struct bl_op *op, uint8_t ns, uint8_t addr, uint16_t v, unsigned flags);
void bl_opi_sleep(struct bl_op *op, uint64_t us);
void bl_opi_note(struct bl_op *op, int status);
/* Finish the op if `status` is an error; true when it did (the op is gone). */
bool bl_opi_failed(struct bl_op *op, int status);
/* The application-or-bootloader probe (read namespace 5, address 1) timed
 * out: send it again, up to `max` attempts in all; true when it did. A
 * timeout is never taken for an answer. */
bool bl_opi_probe_again(struct bl_op *op, int status, int max);
/* The device's identity, writable by operations that change it. */
struct bl_identity *bl_opi_identity(struct bl_device *d);

#endif
