/* sim/fw_current.c - current control of the firmware model (the duty
 * ramp, TRIM and VCC compensation, the clamps, the IMPEDANCE sine) and the
 * cell slots it drives, integrated lazily: each slot up to its own latch,
 * and up to "now" before anything changes the current through it. So a day
 * with four busy channels costs about 140 000 cell steps per channel.
 */
#include <math.h>

#include "core/regs.h"
#include "sim/fw_parts.h"

#define DUTY_UNDERFLOW 900
#define TRIM_LIMIT 99

/* ---- The duty ----------------------------------------------------------- */

/* The internal ramped duty at time t (no state change). */
static uint16_t ramp_at(const struct bl_fw_chan *ch, uint64_t t)
{
	uint16_t sp = ch->r[BL_CELL_CURRENT_SETPOINT];
	if (!driving(ch->r[BL_CELL_MODE]) || sp == 0)
		return 0;
	uint64_t n = t > ch->ramp_t ? (t - ch->ramp_t) / BL_FW_PASS_US : 0;
	if (ch->ramp < sp)
		return (uint64_t)(sp - ch->ramp) <= n ? sp : (uint16_t)(ch->ramp + n);
	return (uint64_t)(ch->ramp - sp) <= n ? sp : (uint16_t)(ch->ramp - n);
}

/* When the ramp reaches its target. */
static uint64_t ramp_end(const struct bl_fw_chan *ch)
{
	uint16_t sp = ch->r[BL_CELL_CURRENT_SETPOINT];
	if (!driving(ch->r[BL_CELL_MODE]) || sp == 0)
		return ch->ramp_t;
	unsigned d = ch->ramp < sp ? sp - ch->ramp : ch->ramp - sp;
	return ch->ramp_t + (uint64_t)d * BL_FW_PASS_US;
}

/* SetDuty's compensation and clamps applied to a ramped duty. */
static uint16_t applied_duty(const struct bl_fw *fw, const struct bl_fw_chan *ch, uint16_t d)
{
	uint16_t set = UNIT_OF(fw, SETTINGS);
	int64_t a = d;
	if (set & BL_SET_TRIM_OUTPUT) {
		a = d + ch->comp;
	} else if (set & BL_SET_VCC_COMPENSATION) {
		/* duty x 5.0 V / VCC in the firmware's integers; VCC raw 0 (not
		 * measured yet) really does give duty 0. */
		uint64_t k = ((uint64_t)UNIT_OF(fw, VCC) + 16) >> 5;
		a = (int64_t)((k * d * 625 + (1u << 18)) >> 19);
	}
	/* The firmware's duty is unsigned 16-bit: a negative sum wraps to a
	 * large value, which the underflow clamp turns into 0. */
	uint16_t u = u16(a);
	if (u > DUTY_UNDERFLOW)
		return 0;
	return u > BL_DUTY_MAX ? BL_DUTY_MAX : u;
}

static double imp_mean_duty(const struct bl_fw *fw)
{
	unsigned m = UNIT_OF(fw, SINE_MAGDIV);
	double s = 0;
	if (m < 8)
		s = (UNIT_OF(fw, SINE_FREQ) & 0xFF) ? fw->sine_mean[m] : (double)(fw->sine[0] >> m);
	double d = UNIT_OF(fw, SINE_OFFSET) + s;
	return d > BL_DUTY_MAX ? BL_DUTY_MAX : d;
}

/* Current through slot c at time t, signed (+ charges the cell): the PWM
 * sets the sink reference to duty/640 x VCC and the sense is 1 V/A. */
static double chan_current(const struct bl_fw *fw, int c, uint64_t t)
{
	const struct bl_fw_chan *ch = &fw->ch[c];
	if (fw->state != BL_FW_APP || !ch->present)
		return 0;
	double k = fw->vcc_v / BL_DUTY_MAX;
	switch (ch->r[BL_CELL_MODE]) {
	case BL_MODE_CHARGE:
		return fw->psu_power ? k * applied_duty(fw, ch, ramp_at(ch, t)) : 0;
	case BL_MODE_DISCHARGE:
		return -k * applied_duty(fw, ch, ramp_at(ch, t));
	case BL_MODE_IMPEDANCE:
		return -k * imp_mean_duty(fw);
	default:
		return 0;
	}
}

/* Integrate `cell` (slot c's model or a copy of it) from t0 to t (t > t0)
 * under the conditions in force since slot c's last sync. Returns the
 * current at t, which either segment works out on the way. */
static double integrate(const struct bl_fw *fw, int c, struct bl_cell *cell, uint64_t t0, uint64_t t)
{
	uint64_t te = ramp_end(&fw->ch[c]);
	double i_t = 0;
	if (fw->state == BL_FW_APP && te > t0) {
		/* Ramp segment: the duty climbs one count per pass, so the mean
		 * current is the mean of the two ends. */
		uint64_t t1 = te < t ? te : t;
		double i1 = chan_current(fw, c, t1);
		double i = 0.5 * (chan_current(fw, c, t0) + i1);
		bl_cell_step(cell, i, (double)(t1 - t0) * 1e-6);
		t0 = t1;
		i_t = i1;
	}
	if (t > t0) {
		i_t = chan_current(fw, c, t);
		bl_cell_step(cell, i_t, (double)(t - t0) * 1e-6);
	}
	return i_t;
}

/* Bring slot c's cell up to t. Callers sync before changing anything
 * chan_current reads. */
void bl_fw_phys_sync(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	if (t <= ch->phys_t)
		return;
	if (ch->present)
		integrate(fw, c, &ch->cell, ch->phys_t, t);
	ch->phys_t = t;
}

double bl_fw_latch_sync(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	if (t <= ch->phys_t || !ch->present) {
		bl_fw_phys_sync(fw, c, t);
		return chan_current(fw, c, t);
	}
	double i = integrate(fw, c, &ch->cell, ch->phys_t, t);
	ch->phys_t = t;
	return i;
}

void bl_fw_sync(struct bl_fw *fw, uint64_t t)
{
	for (int c = 0; c < BL_CELLS; c++)
		bl_fw_phys_sync(fw, c, t);
}

/* Restart the closed-form ramp at t from where it is now. */
static void ramp_rebase(struct bl_fw_chan *ch, uint64_t t)
{
	ch->ramp = ramp_at(ch, t);
	ch->ramp_t = t;
}

void bl_fw_set_mode(struct bl_fw *fw, int c, uint64_t t, uint16_t mode)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t old = ch->r[BL_CELL_MODE];
	bl_fw_phys_sync(fw, c, t);
	ramp_rebase(ch, t);
	ch->r[BL_CELL_MODE] = mode;
	if (!driving(mode)) {
		ch->ramp = 0;
		if (driving(old))
			ch->r[BL_CELL_DUTY] = 0;
	}
	if (mode == BL_MODE_IMPEDANCE && old != BL_MODE_IMPEDANCE)
		ch->imp_since = t;
}

void bl_fw_set_setpoint(struct bl_fw *fw, int c, uint64_t t, uint16_t v)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	bl_fw_phys_sync(fw, c, t);
	ramp_rebase(ch, t);
	ch->r[BL_CELL_CURRENT_SETPOINT] = v;
	if (v == 0)
		ch->ramp = 0;
}

uint16_t bl_fw_ramped_duty(const struct bl_fw *fw, int c, uint64_t t)
{
	const struct bl_fw_chan *ch = &fw->ch[c];
	return applied_duty(fw, ch, ramp_at(ch, t));
}

void bl_fw_trim(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t cur = ch->r[BL_CELL_CURRENT];
	if (cur == ch->trim_last)
		return;
	ch->trim_last = cur;
	/* 2 x I_raw = 125 x duty is 8000 counts/A against 128 counts/A. */
	long d = ramp_at(ch, t);
	if (2L * cur > (d + 1) * 125 && ch->comp > -TRIM_LIMIT)
		ch->comp--;
	else if (2L * cur < d * 125 && ch->comp < TRIM_LIMIT)
		ch->comp++;
	ch->r[BL_CELL_COMPENSATION] = u16(ch->comp);
}

/* ---- Board changes ------------------------------------------------------ */

void bl_fw_cell_insert(struct bl_fw *fw, uint64_t t, int slot, const struct bl_cell_params *p)
{
	bl_fw_phys_sync(fw, slot, t);
	bl_cell_init(&fw->ch[slot].cell, p);
	fw->ch[slot].present = true;
	fw->ch[slot].phys_t = t;
}

void bl_fw_cell_remove(struct bl_fw *fw, uint64_t t, int slot)
{
	bl_fw_phys_sync(fw, slot, t);
	fw->ch[slot].present = false;
}

void bl_fw_set_vcc(struct bl_fw *fw, uint64_t t, double volts)
{
	bl_fw_sync(fw, t);
	fw->vcc_v = volts;
}

void bl_fw_set_psu_power(struct bl_fw *fw, uint64_t t, bool present)
{
	bl_fw_sync(fw, t);
	fw->psu_power = present;
}

void bl_fw_set_thermistor_open(struct bl_fw *fw, uint64_t t, int slot, bool open)
{
	(void)t;
	fw->ch[slot].therm_open = open;
}

void bl_fw_set_self_heating(struct bl_fw *fw, uint64_t t, int slot, double watts)
{
	bl_fw_phys_sync(fw, slot, t);
	fw->ch[slot].cell.p.self_heating_w = watts;
}

bool bl_fw_cell_view(const struct bl_fw *fw, int slot, uint64_t t, struct bl_cell *out)
{
	const struct bl_fw_chan *ch = &fw->ch[slot];
	if (!ch->present)
		return false;
	*out = ch->cell;
	if (t > ch->phys_t)
		integrate(fw, slot, out, ch->phys_t, t);
	return true;
}

double bl_fw_applied_current(const struct bl_fw *fw, int slot, uint64_t t)
{
	return chan_current(fw, slot, t);
}

uint16_t bl_fw_duty_now(const struct bl_fw *fw, int slot, uint64_t t)
{
	const struct bl_fw_chan *ch = &fw->ch[slot];
	if (fw->state != BL_FW_APP)
		return 0;
	if (driving(ch->r[BL_CELL_MODE]))
		return bl_fw_ramped_duty(fw, slot, t);
	if (ch->r[BL_CELL_MODE] == BL_MODE_IMPEDANCE)
		return (uint16_t)lround(imp_mean_duty(fw));
	return 0;
}

