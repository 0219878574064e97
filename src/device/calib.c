/* calib.c - calibration backup and restore (the 49-value file). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "device/calib.h"
#include "device/op.h"

#define MOD "calib"

static const uint8_t cell_order[11] = {
	BL_CELL_CURRENT_CALIB_OFF, BL_CELL_CURRENT_CALIB_SCA, BL_CELL_CURR_LOWV_OFF,
	BL_CELL_CURR_LOWV_SCA, BL_CELL_CURR_LOWV_OFF_SCA, BL_CELL_TEMP_CALIB_R,
	BL_CELL_TEMP_CALIB_B, BL_CELL_CURRENT_CALIB_PP, BL_CELL_VOLTAGE_CALIB_PP,
	BL_CELL_CURR_CALIB_PP_OFF, BL_CELL_VOLT_CALIB_PP_OFF,
};

static const uint8_t unit_order[4] = {
	BL_UNIT_VOLT_CH_CALIB_OFF, BL_UNIT_VOLT_CH_CALIB_SCA,
	BL_UNIT_VOLT_DC_CALIB_OFF, BL_UNIT_VOLT_DC_CALIB_SCA,
};

/* Register (ns, addr) of value i (1..48) of the file. */
static void calib_register(int i, uint8_t *ns, uint8_t *addr)
{
	int k = i - 1;

	if (k < 44) {
		*ns = (uint8_t)(k / 11);
		*addr = cell_order[k % 11];
	} else {
		*ns = BL_NS_UNIT;
		*addr = unit_order[k - 44];
	}
}

char *bl_calib_format(const struct bl_calibration *c)
{
	size_t cap = 16 * BL_CALIB_VALUES, pos = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	pos += (size_t)snprintf(s + pos, cap - pos, "%u\n", c->serial);
	for (int i = 1; i < BL_CALIB_VALUES; i++) {
		uint8_t ns, addr;
		const struct bl_reg *r;

		calib_register(i, &ns, &addr);
		r = bl_reg_by_addr(ns, addr);
		if (r && r->unit == BL_UK_INT16)
			pos += (size_t)snprintf(s + pos, cap - pos, "%d\n", (int16_t)c->reg[i - 1]);
		else
			pos += (size_t)snprintf(s + pos, cap - pos, "%u\n", c->reg[i - 1]);
	}
	return s;
}

int bl_calib_parse(const char *text, const char *name, struct bl_calibration *c,
                   char *err, size_t errlen)
{
	const char *p = text;
	int line = 0, count = 0;

	memset(c, 0, sizeof *c);
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char buf[64], *end;
		long long v;

		line++;
		while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		if (len == 0) {
			p = eol ? eol + 1 : p + len;
			continue;
		}
		if (len >= sizeof buf) {
			snprintf(err, errlen, "%s:%d: not a number", name, line);
			return BL_ERR_ARG;
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		errno = 0;
		v = strtoll(buf, &end, 10);
		if (*end || errno) {
			snprintf(err, errlen, "%s:%d: '%s' is not a whole number", name, line, buf);
			return BL_ERR_ARG;
		}
		if (count >= BL_CALIB_VALUES) {
			snprintf(err, errlen, "%s:%d: more than %d values", name, line, BL_CALIB_VALUES);
			return BL_ERR_ARG;
		}
		if (count == 0) {
			if (v < 0 || v > 0xFFFFFFFFLL) {
				snprintf(err, errlen, "%s:%d: serial number %lld out of range 0..4294967295",
				         name, line, v);
				return BL_ERR_ARG;
			}
			c->serial = (uint32_t)v;
		} else {
			uint8_t ns, addr;
			const struct bl_reg *r;
			bool is_signed;

			calib_register(count, &ns, &addr);
			r = bl_reg_by_addr(ns, addr);
			is_signed = r->unit == BL_UK_INT16;
			if (v < (is_signed ? -32768 : 0) || v > 65535) {
				snprintf(err, errlen, "%s:%d: %s value %lld out of range %s..65535", name, line,
				         r->name, v, is_signed ? "-32768" : "0");
				return BL_ERR_ARG;
			}
			/* The firmware divides by these: 0 would hang the unit. */
			if (v == 0 && strstr(r->name, "SCA")) {
				snprintf(err, errlen, "%s:%d: %s must not be 0", name, line, r->name);
				return BL_ERR_ARG;
			}
			c->reg[count - 1] = (uint16_t)v;
		}
		count++;
		p = eol ? eol + 1 : p + len;
	}
	if (count != BL_CALIB_VALUES) {
		snprintf(err, errlen, "%s: %d values, a calibration file has %d", name, count, BL_CALIB_VALUES);
		return BL_ERR_ARG;
	}
	return BL_OK;
}

/* ---- Backup -------------------------------------------------------------- */

struct calib_state {
	struct bl_calibration *out;     /* backup */
	struct bl_calibration in;       /* restore */
	uint16_t settings;
};

static void backup_next(struct bl_op *op)
{
	uint8_t ns, addr;

	if (op->index == 0) {
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_SERIAL_NUM);
	} else if (op->index == 1) {
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_DEVICE_ID);
	} else {
		calib_register(op->index - 1, &ns, &addr);
		bl_opi_read(op, ns, addr);
	}
}

static void step_backup(struct bl_op *op, int status, uint16_t value)
{
	struct calib_state *cs = op->ext;

	if (bl_opi_failed(op, status))
		return;
	if (op->index == 0)
		cs->out->serial = value;
	else if (op->index == 1)
		cs->out->serial |= (uint32_t)value << 16;
	else
		cs->out->reg[op->index - 2] = value;
	if (++op->index < BL_CALIB_VALUES + 1) {
		backup_next(op);
		return;
	}
	bl_opi_finish(op, BL_OK);
}

struct bl_op *bl_op_calib_backup(struct bl_device *d, struct bl_calibration *out,
                                 bl_op_fn fn, void *ud)
{
	struct calib_state *cs = calloc(1, sizeof *cs);
	struct bl_op *op;

	if (!cs)
		return NULL;
	op = bl_opi_new(d, step_backup, fn, ud);
	if (!op) {
		free(cs);
		return NULL;
	}
	cs->out = out;
	op->ext = cs;
	backup_next(op);
	return op;
}

/* ---- Restore ------------------------------------------------------------- */

enum {
	RS_READ_SN, RS_READ_ID, RS_READ_SETTINGS, RS_DEBUG_ON, RS_WRITE_SN, RS_WRITE_ID,
	RS_DEBUG_OFF, RS_WRITE, RS_VERIFY,
};

static void restore_reg(struct bl_op *op)
{
	struct calib_state *cs = op->ext;
	uint8_t ns, addr;

	calib_register(op->index, &ns, &addr);
	op->state = RS_WRITE;
	bl_opi_write(op, ns, addr, cs->in.reg[op->index - 1], 0);
}

static void step_restore_regs(struct bl_op *op, int status, uint16_t value);

static void restore_regs_begin(struct bl_op *op)
{
	op->step = step_restore_regs;
	op->index = 1;
	op->tries = 0;
	restore_reg(op);
}

/* First the serial number, only when it differs: it can only be
 * rewritten with SETTINGS.DEBUG set, and SETTINGS is put back after. */
static void step_restore_serial(struct bl_op *op, int status, uint16_t value)
{
	struct calib_state *cs = op->ext;

	switch (op->state) {
	case RS_READ_SN:
		if (status != BL_OK)
			break;
		op->tmp[0] = value;
		op->state = RS_READ_ID;
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_DEVICE_ID);
		return;
	case RS_READ_ID:
		if (status != BL_OK)
			break;
		if (((uint32_t)value << 16 | op->tmp[0]) == cs->in.serial) {
			restore_regs_begin(op);
			return;
		}
		op->state = RS_READ_SETTINGS;
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_SETTINGS);
		return;
	case RS_READ_SETTINGS:
		if (status != BL_OK)
			break;
		cs->settings = value;
		op->state = RS_DEBUG_ON;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_SETTINGS, value | BL_SET_DEBUG, 0);
		return;
	case RS_DEBUG_ON:
		if (status != BL_OK)
			break;
		op->state = RS_WRITE_SN;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, (uint16_t)(cs->in.serial & 0xFFFF), 0);
		return;
	case RS_WRITE_SN:
		bl_opi_note(op, status);
		op->state = RS_WRITE_ID;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_DEVICE_ID, (uint16_t)(cs->in.serial >> 16), 0);
		return;
	case RS_WRITE_ID:
		bl_opi_note(op, status);
		op->state = RS_DEBUG_OFF;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_SETTINGS, cs->settings, BL_REQ_PRIORITY);
		return;
	case RS_DEBUG_OFF:
		bl_opi_note(op, status);
		if (op->status != BL_OK)
			break;
		bl_opi_identity(op->d)->serial = cs->in.serial;
		restore_regs_begin(op);
		return;
	}
	bl_opi_finish(op, status != BL_OK ? status : op->status);
}

/* Then every register, written and read back (3 tries each). */
static void step_restore_regs(struct bl_op *op, int status, uint16_t value)
{
	struct calib_state *cs = op->ext;
	uint8_t ns, addr;

	if (status != BL_OK) {
		bl_opi_finish(op, status);
		return;
	}
	calib_register(op->index, &ns, &addr);
	if (op->state == RS_WRITE) {
		op->state = RS_VERIFY;
		bl_opi_read(op, ns, addr);
		return;
	}
	if (value != cs->in.reg[op->index - 1]) {
		if (++op->tries >= 3) {
			BL_ERROR(MOD, "%s: ns %u reg 0x%02X reads %u after writing %u",
			         bl_device_port(op->d), ns, addr, value, cs->in.reg[op->index - 1]);
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		restore_reg(op);
		return;
	}
	op->tries = 0;
	if (++op->index < BL_CALIB_VALUES) {
		restore_reg(op);
		return;
	}
	/* Temperatures are decoded with these from now on. */
	for (int c = 0; c < BL_CELLS; c++) {
		bl_opi_identity(op->d)->temp_r[c] = cs->in.reg[c * 11 + 5];
		bl_opi_identity(op->d)->temp_b[c] = cs->in.reg[c * 11 + 6];
	}
	bl_opi_finish(op, BL_OK);
}

struct bl_op *bl_op_calib_restore(struct bl_device *d, const struct bl_calibration *c,
                                  bl_op_fn fn, void *ud)
{
	struct calib_state *cs = calloc(1, sizeof *cs);
	struct bl_op *op;

	if (!cs)
		return NULL;
	op = bl_opi_new(d, step_restore_serial, fn, ud);
	if (!op) {
		free(cs);
		return NULL;
	}
	cs->in = *c;
	op->ext = cs;
	op->state = RS_READ_SN;
	bl_opi_read(op, BL_NS_UNIT, BL_UNIT_SERIAL_NUM);
	return op;
}
