/* chanop.c - what a channel is told to do: start a step, go safe, set the
 * current, measure impedance, write its limits, set its report interval
 * (channel.h). Each is a small job that chains device operations and ends
 * with one callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/chanset.h"

#define MOD "channel"
#define MAX_ITEMS 8

enum job_kind { J_START, J_SAFE, J_IMPEDANCE, J_LIMITS, J_INTERVAL };

struct limit_item {
	uint8_t addr;
	uint8_t lim;
	uint16_t raw;
	double value;
};

struct job {
	struct bl_channel *ch;
	enum job_kind kind;
	enum bl_step_kind step;
	double amps;
	int stage;
	int holds;                   /* >0 while a start call is on the stack */
	bool ended;
	int status;
	double number;
	int n;
	double ohms;                 /* impedance: the measurement */
	unsigned step_seq;           /* impedance: the step it began in */
	struct limit_item item[MAX_ITEMS];
	bl_chan_fn fn;
	void *ud;
	char what[192];
};

static void job_run(struct job *j);
static void name_failure(struct job *j);

static struct job *job_new(struct bl_channel *ch, enum job_kind kind, bl_chan_fn fn, void *ud)
{
	struct job *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	j->ch = ch;
	j->kind = kind;
	j->fn = fn;
	j->ud = ud;
	ch->cs->jobs++;
	return j;
}

static void job_free(struct job *j)
{
	struct bl_chanset *cs = j->ch->cs;

	cs->jobs--;
	free(j);
	bl_chanset_release(cs);
}

static void job_end(struct job *j, int status, const char *what)
{
	if (j->kind == J_IMPEDANCE)
		j->ch->imp_busy = false;
	j->ended = true;
	j->status = status;
	if (status != BL_OK && what)
		snprintf(j->what, sizeof j->what, "%s", what);
	else if (status == BL_OK)
		j->what[0] = 0;
	if (j->fn)
		j->fn(j->ch, status, j->number, status != BL_OK && j->what[0] ? j->what : NULL, j->ud);
	if (j->holds == 0)
		job_free(j);
}

/* Start the job's next device operation, holding the job: an operation
 * may complete (and end the job) before the call returns. */
static void job_next(struct job *j, struct bl_op *(*start)(struct job *j))
{
	struct bl_op *op;

	j->holds++;
	op = start(j);
	j->holds--;
	if (!op && !j->ended)
		job_end(j, BL_ERR_CLOSED, "the device is closed");
	else if (j->ended && j->holds == 0)
		job_free(j);     /* it ended while the call was on the stack */
}

/* The measurement measured nothing: the device stopped the channel (its
 * ERROR bits named), or no current flowed. */
static void impedance_failed(struct job *j, uint16_t errors)
{
	char what[160];
	int n;

	j->number = 0.0;
	if (!errors) {
		job_end(j, BL_ERR_STATE, "impedance: no current flowed (the channel did not measure)");
		return;
	}
	n = snprintf(what, sizeof what, "impedance: the device stopped the channel: ");
	bl_bits_format(BL_UK_ERROR, errors, ",", what + n, sizeof what - (size_t)n);
	job_end(j, BL_ERR_STATE, what);
}

static void job_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct job *j = ud;

	(void)d;
	j->number = bl_op_number(op);
	if (status == BL_ERR_STATE && j->kind == J_IMPEDANCE) {
		impedance_failed(j, (uint16_t)j->number);
		return;
	}
	if (status != BL_OK) {
		name_failure(j);
		job_end(j, status, NULL);
		return;
	}
	j->stage++;
	job_run(j);
}

static const char *step_name(enum bl_step_kind k)
{
	switch (k) {
	case BL_STEP_CHARGE: return "charge";
	case BL_STEP_DISCHARGE: return "discharge";
	case BL_STEP_IDLE: return "idle";
	default: return "stop";
	}
}

/* ---- the steps of each job ------------------------------------------------ */

static struct bl_op *op_clear_error(struct job *j)
{
	return bl_op_write(j->ch->cs->d, (uint8_t)j->ch->cell, BL_CELL_ERROR, 0, job_done, j);
}

static struct bl_op *op_clear_counter(struct job *j)
{
	return bl_op_write(j->ch->cs->d, (uint8_t)j->ch->cell, BL_CELL_CHARGEH, 0, job_done, j);
}

static struct bl_op *op_mode(struct job *j)
{
	uint16_t mode = j->step == BL_STEP_IDLE ? BL_MODE_IDLE : BL_MODE_STOPPED;

	bl_device_set_target(j->ch->cs->d, j->ch->cell, 0);
	return bl_op_write(j->ch->cs->d, (uint8_t)j->ch->cell, BL_CELL_MODE, mode, job_done, j);
}

static struct bl_op *op_current(struct job *j)
{
	struct bl_channel *c = j->ch;

	bl_chan_step_begin(c, j->step);
	if (j->step == BL_STEP_CHARGE)
		return bl_op_charge_start(c->cs->d, c->cell, j->amps, job_done, j);
	return bl_op_discharge_start(c->cs->d, c->cell, j->amps, job_done, j);
}

static struct bl_op *op_safe(struct job *j)
{
	return bl_op_safe(j->ch->cs->d, j->ch->cell, job_done, j);
}

static struct bl_op *op_impedance(struct job *j)
{
	return bl_op_impedance(j->ch->cs->d, j->ch->cell, job_done, j);
}

static struct bl_op *op_read_counter(struct job *j)
{
	return bl_op_charge(j->ch->cs->d, j->ch->cell, job_done, j);
}

/* An impedance measurement between two reads of the charge counter: what
 * the counter took meanwhile (the sine's |I|) is the measurement's, which
 * the channel's samples count as charge drawn from the cell, whatever the
 * step (channel.c step_charge_c). */
static bool impedance_done(struct job *j)
{
	struct bl_channel *c = j->ch;

	switch (j->stage) {
	case 0:
		job_next(j, op_read_counter);
		return false;
	case 1:
		c->imp_busy = true;
		c->imp_q0 = j->number;
		j->step_seq = c->step_seq;
		job_next(j, op_impedance);
		return false;
	case 2:
		j->ohms = j->number;
		job_next(j, op_read_counter);
		return false;
	default:
		if (c->step_seq == j->step_seq && j->number >= c->imp_q0)
			c->imp_c += j->number - c->imp_q0;
		c->imp_busy = false;
		j->number = j->ohms;
		return true;
	}
}

static struct bl_op *op_limit(struct job *j)
{
	const struct limit_item *it = &j->item[j->stage];

	return bl_op_write_verify(j->ch->cs->d, (uint8_t)j->ch->cell, it->addr, it->raw, job_done, j);
}

static struct bl_op *op_interval(struct job *j)
{
	return bl_op_write(j->ch->cs->d, (uint8_t)j->ch->cell, BL_CELL_REPORT_INTERVAL,
	                   bl_interval_to_raw(j->amps), job_done, j);
}

/* What failed, for the message: the stage that did not complete (the
 * stage counts only completed ones). */
static void name_failure(struct job *j)
{
	const char *what = "";

	switch (j->kind) {
	case J_START:
		if (j->step == BL_STEP_CHARGE || j->step == BL_STEP_DISCHARGE)
			what = j->stage == 0 ? "clearing ERROR" : j->stage == 1 ? "clearing the charge counter"
			                                                          : "starting the current";
		else
			what = j->stage == 0 ? "writing MODE" : "clearing the charge counter";
		snprintf(j->what, sizeof j->what, "%s (%s)", step_name(j->step), what);
		break;
	case J_LIMITS: {
		const struct limit_item *it = &j->item[j->stage];
		snprintf(j->what, sizeof j->what, "limit %s (%s = %f %s, raw %d): write_verify failed",
		         bl_limit_key(it->lim), bl_reg_by_addr(0, it->addr)->name, it->value,
		         bl_limit_unit(it->lim), (int)it->raw);
		break;
	}
	case J_SAFE: snprintf(j->what, sizeof j->what, "making the channel safe"); break;
	case J_IMPEDANCE: snprintf(j->what, sizeof j->what, "impedance"); break;
	case J_INTERVAL: snprintf(j->what, sizeof j->what, "setting the report interval"); break;
	}
}

static bool start_done(struct job *j)
{
	bool current = j->step == BL_STEP_CHARGE || j->step == BL_STEP_DISCHARGE;

	if (j->step == BL_STEP_STOP) {
		if (j->stage == 0)
			job_next(j, op_mode);
		else
			bl_chan_step_end(j->ch);
		return j->stage > 0;
	}
	/* A current step: ERROR (a stop latched it; it would be read back as
	 * this step's), the counter, the current. IDLE: MODE, the counter. */
	if (j->stage == 0) {
		job_next(j, current ? op_clear_error : op_mode);
		return false;
	}
	if (j->stage == 1) {
		job_next(j, op_clear_counter);
		return false;
	}
	if (j->stage == 2 && current) {
		job_next(j, op_current);
		return false;
	}
	if (j->step == BL_STEP_IDLE)
		bl_chan_step_begin(j->ch, BL_STEP_IDLE);
	return true;
}

/* Called with each completed stage (and once at the start). */
static void job_run(struct job *j)
{
	bool done = false;

	switch (j->kind) {
	case J_START:
		done = start_done(j);
		break;
	case J_IMPEDANCE:
		done = impedance_done(j);
		break;
	case J_SAFE:
	case J_INTERVAL:
		if (j->stage == 0)
			job_next(j, j->kind == J_SAFE ? op_safe : op_interval);
		done = j->stage > 0;
		break;
	case J_LIMITS:
		done = j->stage >= j->n;
		if (!done)
			job_next(j, op_limit);
		break;
	}
	if (done)
		job_end(j, BL_OK, NULL);
}

static int job_start(struct job *j)
{
	if (!j)
		return BL_ERR_MEM;
	job_run(j);
	return BL_OK;
}

/* ---- the public operations -------------------------------------------------- */

int bl_channel_start(struct bl_channel *ch, enum bl_step_kind kind, double amps,
                     bl_chan_fn fn, void *ud)
{
	struct job *j;

	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	if ((kind == BL_STEP_CHARGE || kind == BL_STEP_DISCHARGE) &&
	    !(amps > 0 && amps <= BL_SETPOINT_MAX / 128.0))
		return BL_ERR_ARG;
	if (kind == BL_STEP_NONE)
		return BL_ERR_ARG;
	j = job_new(ch, J_START, fn, ud);
	if (j) {
		j->step = kind;
		j->amps = amps;
	}
	return job_start(j);
}

int bl_channel_safe(struct bl_channel *ch, bl_chan_fn fn, void *ud)
{
	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	bl_chan_step_end(ch);
	return job_start(job_new(ch, J_SAFE, fn, ud));
}

int bl_channel_set_current(struct bl_channel *ch, double amps)
{
	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	if (!(amps >= 0 && amps <= BL_SETPOINT_MAX / 128.0))
		return BL_ERR_ARG;
	return bl_device_set_current(ch->cs->d, ch->cell, amps);
}

int bl_channel_impedance(struct bl_channel *ch, bl_chan_fn fn, void *ud)
{
	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	return job_start(job_new(ch, J_IMPEDANCE, fn, ud));
}

int bl_channel_set_interval(struct bl_channel *ch, double seconds, bl_chan_fn fn, void *ud)
{
	struct job *j;

	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	if (!(seconds >= 0 && seconds <= 6553.6))
		return BL_ERR_ARG;
	ch->interval_set = true;
	ch->interval_s = seconds;
	j = job_new(ch, J_INTERVAL, fn, ud);
	if (j)
		j->amps = seconds;
	return job_start(j);
}

/* ---- limits ------------------------------------------------------------------ */

enum lim_unit { U_V, U_A, U_T };

static const struct limit_def {
	const char *key;
	enum lim_unit unit;
	uint8_t addr[2];             /* 0xFF: none */
} limit_defs[BL_LIM_COUNT] = {
	[BL_LIM_VMAX] = {"vmax", U_V, {BL_CELL_VOLTAGE_LIMIT_CHG, 0xFF}},
	[BL_LIM_VMIN] = {"vmin", U_V, {BL_CELL_VOLTAGE_LIMIT_DCHG, 0xFF}},
	[BL_LIM_IMAX] = {"imax", U_A, {BL_CELL_CURRENT_LIMIT_CHG, BL_CELL_CURRENT_LIMIT_DCHG}},
	[BL_LIM_IMAX_CHG] = {"imax_chg", U_A, {BL_CELL_CURRENT_LIMIT_CHG, 0xFF}},
	[BL_LIM_IMAX_DCHG] = {"imax_dchg", U_A, {BL_CELL_CURRENT_LIMIT_DCHG, 0xFF}},
	[BL_LIM_TMAX] = {"tmax_c", U_T, {BL_CELL_TEMP_LIMIT_CHG, BL_CELL_TEMP_LIMIT_DCHG}},
	[BL_LIM_TMAX_CHG] = {"tmax_chg_c", U_T, {BL_CELL_TEMP_LIMIT_CHG, 0xFF}},
	[BL_LIM_TMAX_DCHG] = {"tmax_dchg_c", U_T, {BL_CELL_TEMP_LIMIT_DCHG, 0xFF}},
};

const char *bl_limit_key(enum bl_limit l) { return limit_defs[l].key; }

const char *bl_limit_unit(enum bl_limit l)
{
	static const char *const units[] = {"V", "A", "degC"};

	return units[limit_defs[l].unit];
}

int bl_limit_by_key(const char *key)
{
	for (int i = 0; i < BL_LIM_COUNT; i++)
		if (strcmp(key, limit_defs[i].key) == 0)
			return i;
	return -1;
}

static bool limit_in_range(enum lim_unit u, double v)
{
	switch (u) {
	case U_V: return v > 0 && v < BL_VOLTAGE_FULL_SCALE;
	case U_A: return v > 0 && v <= BL_CURRENT_FULL_SCALE;
	default: return v > -40 && v < 150;
	}
}

int bl_limits_check(const struct bl_limits *lim, char *err, size_t errlen)
{
	static const char *const ranges[] = {"0..%g V", "0..%g A", "-40..150 degC"};
	int owner[BL_CELL_NREGS];

	for (size_t i = 0; i < BL_CELL_NREGS; i++)
		owner[i] = -1;
	for (int i = 0; i < BL_LIM_COUNT; i++) {
		const struct limit_def *ld = &limit_defs[i];
		char range[32];

		if (!lim->given[i])
			continue;
		if (!limit_in_range(ld->unit, lim->value[i])) {
			snprintf(range, sizeof range, ranges[ld->unit],
			         ld->unit == U_V ? BL_VOLTAGE_FULL_SCALE : BL_CURRENT_FULL_SCALE);
			snprintf(err, errlen, "%s must be in %s, got %g", ld->key, range, lim->value[i]);
			return BL_ERR_ARG;
		}
		for (int k = 0; k < 2 && ld->addr[k] != 0xFF; k++) {
			uint8_t a = ld->addr[k];
			if (owner[a] >= 0) {
				snprintf(err, errlen, "%s and %s both set %s", limit_defs[owner[a]].key,
				         ld->key, bl_reg_by_addr(0, a)->name);
				return BL_ERR_ARG;
			}
			owner[a] = i;
		}
	}
	return BL_OK;
}

static uint16_t limit_raw(const struct bl_channel *ch, enum lim_unit u, double v)
{
	const struct bl_identity *id = bl_device_identity(ch->cs->d);

	switch (u) {
	case U_V: return bl_voltage_to_raw(v);
	case U_A: return bl_current_to_raw(v);
	default: return bl_temp_c_to_raw(v, id->temp_r[ch->cell], id->temp_b[ch->cell]);
	}
}

int bl_channel_limits(struct bl_channel *ch, const struct bl_limits *lim, bl_chan_fn fn,
                      void *ud)
{
	char err[128];
	struct job *j;

	if (bl_limits_check(lim, err, sizeof err) != BL_OK)
		return BL_ERR_ARG;
	if (ch->cs->dead || bl_device_closed(ch->cs->d))
		return BL_ERR_CLOSED;
	j = job_new(ch, J_LIMITS, fn, ud);
	if (!j)
		return BL_ERR_MEM;
	for (int i = 0; i < BL_LIM_COUNT; i++) {
		const struct limit_def *ld = &limit_defs[i];

		if (!lim->given[i])
			continue;
		for (int k = 0; k < 2 && ld->addr[k] != 0xFF && j->n < MAX_ITEMS; k++) {
			struct limit_item *it = &j->item[j->n++];
			it->addr = ld->addr[k];
			it->lim = (uint8_t)i;
			it->value = lim->value[i];
			it->raw = limit_raw(ch, ld->unit, lim->value[i]);
		}
	}
	return job_start(j);
}
