/* channel.c - report ticks, samples, sample listeners and the step state of
 * the four channels of one Batlab (channel.h). Steps and limits are in
 * chanop.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/chanset.h"

#define MOD "channel"
/* A report this soon after a step started may carry values latched before
 * it: one 614.4 ms measurement cycle and the duty ramp. */
#define STEP_SETTLE_US 920000u
#define VCC_FRESH_US 500000u
#define DEFAULT_INTERVAL_S 1.0

/* ---- the set ------------------------------------------------------------- */

static void on_stream(struct bl_device *d, int cell, const struct bl_snapshot *snap, void *ud);

struct bl_chanset *bl_chanset_new(struct bl_device *d)
{
	struct bl_chanset *cs = calloc(1, sizeof *cs);

	if (!cs)
		return NULL;
	cs->d = d;
	cs->serial = bl_device_identity(d)->serial;
	for (int c = 0; c < BL_CELLS; c++) {
		cs->ch[c].cs = cs;
		cs->ch[c].cell = c;
	}
	bl_device_on_stream(d, on_stream, cs);
	return cs;
}

void bl_chanset_release(struct bl_chanset *cs)
{
	if (cs->dead && cs->jobs == 0)
		free(cs);
}

/* (Only the whole set is abandoned, at bl_chanset_free: a reader's
 * waiters are abandoned with it.) */
static void tick_abandon(struct bl_channel *c)
{
	c->vcc_wait = false;
	if (c->cs->vcc_reader == c)
		c->cs->vcc_reader = NULL;
	if (c->tick_op) {
		bl_op_cancel(c->tick_op);
		c->tick_op = NULL;
		c->tick_gen++;
	}
	c->ticking = false;
}

static void deliver(struct bl_channel *c, const struct bl_sample *s, int status);

void bl_chanset_free(struct bl_chanset *cs)
{
	if (!cs)
		return;
	bl_device_on_stream(cs->d, NULL, NULL);
	for (int i = 0; i < BL_CELLS; i++) {
		struct bl_channel *c = &cs->ch[i];

		tick_abandon(c);
		c->step = BL_STEP_NONE;
		c->step_on = false;
		deliver(c, NULL, BL_ERR_CLOSED);
		while (c->listeners)
			bl_channel_unlisten(c->listeners);
	}
	cs->dead = true;
	bl_chanset_release(cs);
}

struct bl_channel *bl_chanset_channel(struct bl_chanset *cs, int cell)
{
	return cell >= 0 && cell < BL_CELLS ? &cs->ch[cell] : NULL;
}

void bl_chanset_device_reset(struct bl_chanset *cs)
{
	/* A reset puts REPORT_INTERVAL back to 0: ask again, or listeners
	 * would never see another report. The request rides out the restart
	 * on the device layer's retries. */
	for (int i = 0; i < BL_CELLS; i++) {
		struct bl_channel *c = &cs->ch[i];

		if (c->step != BL_STEP_NONE)
			c->reset = true;
		c->step = BL_STEP_NONE;
		c->step_on = false;
		if (c->interval_set)
			bl_device_set_report_interval(cs->d, i, c->interval_s);
	}
}

int bl_chanset_busy(const struct bl_chanset *cs)
{
	int n = cs->jobs;

	for (int i = 0; i < BL_CELLS; i++) {
		n += cs->ch[i].tick_op != NULL;
		for (struct bl_chan_listener *l = cs->ch[i].listeners; l; l = l->next)
			n++;
	}
	return n;
}

struct bl_device *bl_channel_device(const struct bl_channel *ch) { return ch->cs->d; }
int bl_channel_cell(const struct bl_channel *ch) { return ch->cell; }
enum bl_step_kind bl_channel_step(const struct bl_channel *ch) { return ch->step; }

const struct bl_sample *bl_channel_last(const struct bl_channel *ch)
{
	return ch->has_last ? &ch->last : NULL;
}

double bl_channel_step_time(const struct bl_channel *ch)
{
	if (!ch->step_on || ch->cs->dead)
		return -1.0;
	return (double)(bl_loop_now(bl_device_loop(ch->cs->d)) - ch->step_us) / 1e6;
}

/* ---- listeners ----------------------------------------------------------- */

void bl_channel_listen(struct bl_channel *ch, struct bl_chan_listener *l)
{
	struct bl_chan_listener **p = &ch->listeners;

	if (l->ch)
		bl_channel_unlisten(l);
	while (*p)            /* at the end: listeners hear in the order they came */
		p = &(*p)->next;
	l->next = NULL;
	l->ch = ch;
	*p = l;
	bl_channel_want_reports(ch);
}

void bl_channel_unlisten(struct bl_chan_listener *l)
{
	struct bl_channel *ch = l->ch;
	struct bl_chan_listener **p;

	if (!ch)
		return;
	/* A delivery in progress must not step onto a listener that left. */
	if (ch->iter_next == l)
		ch->iter_next = l->next;
	for (p = &ch->listeners; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	l->ch = NULL;
	l->next = NULL;
}

static void deliver(struct bl_channel *c, const struct bl_sample *s, int status)
{
	struct bl_chan_listener *l = c->listeners;

	while (l) {
		c->iter_next = l->next;
		l->fn(l, s, status);
		l = c->iter_next;
	}
	c->iter_next = NULL;
}

void bl_channel_want_reports(struct bl_channel *ch)
{
	if (ch->interval_set || ch->cs->dead)
		return;
	ch->interval_set = true;
	ch->interval_s = DEFAULT_INTERVAL_S;
	bl_device_set_report_interval(ch->cs->d, ch->cell, ch->interval_s);
}

/* ---- the report tick --------------------------------------------------------- */

static void tick_done(struct bl_device *d, struct bl_op *op, int status, void *ud);
static void vcc_read_done(struct bl_chanset *cs, bool ok);

/* The tick ends without a sample; the channels waiting for its VCC read
 * read it themselves. The set is held while the news goes out: a
 * listener may let it go. */
static void tick_failed(struct bl_channel *c, int status)
{
	struct bl_chanset *cs = c->cs;
	bool reader = cs->vcc_reader == c;

	c->ticking = false;
	cs->jobs++;
	deliver(c, NULL, status);
	if (reader)
		vcc_read_done(cs, false);
	cs->jobs--;
	bl_chanset_release(cs);
}

static void tick_read(struct bl_channel *c)
{
	struct bl_device *d = c->cs->d;
	unsigned gen = c->tick_gen;
	struct bl_op *op = NULL;

	switch (c->tick_stage) {
	case 0: op = bl_op_charge(d, c->cell, tick_done, c); break;
	case 1: op = bl_op_read(d, (uint8_t)c->cell, BL_CELL_ERROR, tick_done, c); break;
	case 2: op = bl_op_read(d, BL_NS_UNIT, BL_UNIT_VCC, tick_done, c); break;
	case 3: op = bl_op_read(d, (uint8_t)c->cell, BL_CELL_DUTY, tick_done, c); break;
	}
	if (c->tick_gen != gen)
		return;        /* it already completed */
	c->tick_op = op;
	if (!op)
		tick_failed(c, BL_ERR_CLOSED);
}

static void tick_finish(struct bl_channel *c)
{
	c->ticking = false;
	c->last = c->tick;
	c->has_last = true;
	deliver(c, &c->last, BL_OK);
}

/* DUTY when it is wanted and means something (a current is driven), then
 * VCC. */
static void tick_vcc_or_finish(struct bl_channel *c);
static void tick_duty_or_on(struct bl_channel *c)
{
	uint16_t mode = c->tick.mode;

	if (c->want_duty > 0 && (mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE)) {
		c->tick_stage = 3;
		tick_read(c);
		return;
	}
	tick_vcc_or_finish(c);
}

/* VCC is shared by the four channels: read it only when the last reading
 * is stale, and once for the channels whose reports came together (the
 * others wait for that read: four reads a second per device were one
 * request in three). */
static void tick_vcc_or_finish(struct bl_channel *c)
{
	struct bl_chanset *cs = c->cs;

	if (cs->have_vcc && bl_loop_now(bl_device_loop(cs->d)) - cs->vcc_us < VCC_FRESH_US) {
		c->tick.vcc = cs->vcc;
		tick_finish(c);
		return;
	}
	if (cs->vcc_reader && cs->vcc_reader != c) {
		c->vcc_wait = true;
		return;
	}
	cs->vcc_reader = c;
	c->tick_stage = 2;
	tick_read(c);
}

/* The VCC read of `reader` ended: the channels waiting for it finish with
 * its value, or (it failed) go on to read it themselves. */
static void vcc_read_done(struct bl_chanset *cs, bool ok)
{
	bool waiting[BL_CELLS];

	cs->vcc_reader = NULL;
	for (int i = 0; i < BL_CELLS; i++) {
		waiting[i] = cs->ch[i].vcc_wait;
		cs->ch[i].vcc_wait = false;
	}
	for (int i = 0; i < BL_CELLS; i++) {
		struct bl_channel *w = &cs->ch[i];
		if (!waiting[i] || !w->ticking)
			continue;
		if (ok) {
			w->tick.vcc = cs->vcc;
			tick_finish(w);
		} else {
			tick_vcc_or_finish(w);
		}
	}
}

/* The counter only counts up; the direction is the step's. */
static double charge_sign(const struct bl_channel *c)
{
	if (c->step == BL_STEP_CHARGE)
		return 1.0;
	if (c->step == BL_STEP_DISCHARGE)
		return -1.0;
	return c->tick.mode == BL_MODE_CHARGE ? 1.0 : -1.0;
}

/* The step's charge in coulombs, signed, from the counter. The counter
 * adds |I| whatever the direction, and in IMPEDANCE mode the sine's mean
 * (about 0.37 A) is drawn from the cell: what the measurements counted
 * (imp_c) is charge out of the cell, also in a charge step, where the
 * counter took it for charge in. While a measurement runs, the charge
 * stays where it was when it began. */
static double step_charge_c(const struct bl_channel *c, double counter)
{
	double q = (c->imp_busy ? c->imp_q0 : counter) - c->imp_c;

	if (q < 0)
		q = 0;
	return charge_sign(c) * q - c->imp_c;
}

static void tick_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct bl_channel *c = ud;
	struct bl_chanset *cs = c->cs;
	uint16_t mode = c->tick.mode;

	(void)d;
	c->tick_gen++;
	c->tick_op = NULL;
	if (status != BL_OK) {
		tick_failed(c, status);
		return;
	}
	switch (c->tick_stage) {
	case 0:
		c->tick.charge_ah = step_charge_c(c, bl_op_number(op)) / 3600.0;
		/* ERROR latches only when the firmware stops a channel and IDLE
		 * clears it, so it is worth a request only in the other modes. */
		c->tick_stage = 1;
		if (mode == BL_MODE_IDLE || mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE ||
		    mode == BL_MODE_IMPEDANCE) {
			c->tick.error = 0;
			tick_duty_or_on(c);
		} else {
			tick_read(c);
		}
		return;
	case 1:
		c->tick.error = bl_op_value(op);
		tick_duty_or_on(c);
		return;
	case 3:
		c->tick.duty = bl_op_value(op);
		c->tick.have_duty = true;
		tick_vcc_or_finish(c);
		return;
	default:
		cs->vcc = bl_vcc_from_raw(bl_op_value(op));
		cs->vcc_us = bl_loop_now(bl_device_loop(cs->d));
		cs->have_vcc = true;
		c->tick.vcc = cs->vcc;
		cs->jobs++; /* held while the samples go out, as in tick_failed */
		tick_finish(c);
		vcc_read_done(cs, true);
		cs->jobs--;
		bl_chanset_release(cs);
		return;
	}
}

/* + charging, - discharging (IMPEDANCE draws from the cell), 0 otherwise. */
static double signed_current(uint16_t mode, uint16_t raw)
{
	double a = fabs(bl_current_from_raw(raw));

	switch (mode) {
	case BL_MODE_CHARGE: return a;
	case BL_MODE_DISCHARGE:
	case BL_MODE_IMPEDANCE: return -a;
	default: return 0.0;
	}
}

/* Energy from V x I at every report, trapezoids between reports; the
 * first report of a step counts from the step's start. */
static void integrate(struct bl_channel *c, double p, uint64_t t)
{
	if (c->have_p)
		c->energy_wh += (p + c->last_p) / 2.0 * (double)(t - c->last_us) / 3.6e9;
	else
		c->energy_wh += p * (double)(t - c->step_us) / 3.6e9;
	c->have_p = true;
	c->last_p = p;
	c->last_us = t;
}

static void tick_begin(struct bl_channel *c, const struct bl_snapshot *snap, double v, double i)
{
	const struct bl_identity *id = bl_device_identity(c->cs->d);
	uint64_t t = snap->time_us;

	c->ticking = true;
	for (struct bl_chan_listener *l = c->listeners; l; l = l->next)
		if (l->tick)
			l->tick(l);
	memset(&c->tick, 0, sizeof c->tick);
	c->tick.time = (double)t / 1e6;
	c->tick.step_time = c->step_on && t >= c->step_us ? (double)(t - c->step_us) / 1e6 : 0.0;
	c->tick.mode = snap->s.mode;
	c->tick.status = snap->s.status;
	c->tick.voltage = v;
	c->tick.current = i;
	c->tick.temp_c = bl_temp_c_from_raw(snap->s.temperature, id->temp_r[c->cell],
	                                    id->temp_b[c->cell]);
	/* Integrated over the host's time; reported over the device's: a
	 * virtual Batlab on a pty runs --speed times faster than the host's
	 * clock (and so does its charge counter). The rate is constant, so
	 * scaling the whole integral by the latest estimate is right even for
	 * what was integrated before the rate was known. */
	c->tick.energy_wh = c->energy_wh * bl_device_time_rate(c->cs->d);
	c->tick.cell = c->cell;
	c->tick.serial = c->cs->serial;
	c->tick.step_seq = c->step_seq;
	c->tick.op_raw = bl_device_operating_setpoint(c->cs->d, c->cell);
	c->tick.sp_raw = bl_device_target_raw(c->cs->d, c->cell);
	c->tick.device_reset = c->reset;
	c->tick_stage = 0;
	tick_read(c);
}

static void on_stream(struct bl_device *d, int cell, const struct bl_snapshot *snap, void *ud)
{
	struct bl_chanset *cs = ud;
	struct bl_channel *c = &cs->ch[cell];
	double v = bl_voltage_from_raw(snap->s.voltage);
	double i = signed_current(snap->s.mode, snap->s.current);
	uint64_t t = snap->time_us;

	(void)d;
	/* Not a sample of the step: neither integrated nor handed on. */
	if (c->step_on && t >= c->step_us && t - c->step_us < STEP_SETTLE_US)
		return;
	if (c->step_on && t >= c->step_us)
		integrate(c, v * i, t);
	if (!c->listeners || c->ticking)
		return;
	tick_begin(c, snap, v, i);
}

void bl_channel_want_duty(struct bl_channel *ch, bool on)
{
	ch->want_duty += on ? 1 : -1;
	if (ch->want_duty < 0)
		ch->want_duty = 0;
}

void bl_chan_step_begin(struct bl_channel *c, enum bl_step_kind kind)
{
	c->step = kind;
	c->step_on = true;
	c->step_us = bl_loop_now(bl_device_loop(c->cs->d));
	c->energy_wh = 0.0;
	c->have_p = false;
	c->step_seq++;
	c->reset = false;
	c->imp_c = 0.0;
}

void bl_chan_step_end(struct bl_channel *c)
{
	c->step = BL_STEP_NONE;
	c->step_on = false;
}
