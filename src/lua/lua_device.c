/* lua_device.c - batlab.Device and batlab.Channel: registers, operations
 * and the per-channel report ticks that ch:wait() returns.
 *
 * Every I/O method starts a device operation (batlab.h) and waits for it
 * through the scheduler (sched.h): it yields inside a task and runs the
 * loop outside one. An operation's callback reaches its wait through a
 * small heap "holder"; when a wait is abandoned (task cancelled, failed,
 * interrupted) the holder is cut loose and the operation runs to its end
 * on its own (operations always finish their mandatory steps, like the
 * LOCK release), then the holder is freed - and if the operation drove a
 * channel, that channel is made safe once more, because the operation may
 * have changed its mode after the failure path made it safe.
 *
 * Report ticks: the device's stream listener updates each channel's step
 * energy at every report. When tasks wait on a channel, its report also
 * starts the tick reads (charge H,L,H, ERROR and VCC - VCC is shared by
 * the channels of a device for half a second, the device latching it only
 * every 0.6 s anyway); when they complete, every wait of that tick gets a
 * copy of the sample.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"
#include "device/calib.h"
#include "device/device.h"
#include "device/flash.h"
#include "device/op.h"   /* bl_opi_identity: R/B written through dev:write */
#include "host/session.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

#define MOD "lua"
#define STEP_SETTLE_US 920000u /* one 614.4 ms measurement cycle + the duty ramp */
#define VCC_FRESH_US 500000u
#define DEFAULT_INTERVAL_S 1.0

enum step_kind { STEP_NONE = 0, STEP_CHARGE, STEP_DISCHARGE, STEP_IDLE };

struct lchan {
	struct bl_lua_device *ld;
	int cell;
	struct bl_wait_list waiters;   /* want the next report */
	struct bl_wait_list batch;     /* served by the tick reads in flight */
	struct bl_op *tick_op;
	unsigned tick_gen;             /* bumped by each tick callback */
	int tick_stage;
	struct bl_sample tick;         /* being filled */
	struct bl_sample last;
	bool has_last;
	/* the step */
	enum step_kind step;
	bool step_on;
	uint64_t step_us;
	double energy_wh;
	bool have_p;
	double last_p;
	uint64_t last_us;
	bool interval_set;
	double interval_s;
	uint64_t bound_task;           /* id of the task last bound (cache) */
};

struct bl_lua_device {
	struct bl_device *d;           /* NULL once detached */
	struct bl_session *session;
	struct bl_sched *sched;
	char port[64];
	uint32_t serial;
	uint16_t firmware;
	double vcc;
	uint64_t vcc_us;
	bool have_vcc;
	struct lchan ch[BL_CELLS];
};

struct lchannel {
	struct bl_lua_device *ld;
	int cell;
};

/* ---- Small helpers ---------------------------------------------------------- */

static struct bl_lua_device *check_device(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_DEVICE);
}

static struct lchannel *check_channel(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_CHANNEL);
}

static int check_cell(lua_State *L, int arg)
{
	lua_Integer c = luaL_checkinteger(L, arg);

	luaL_argcheck(L, c >= 0 && c < BL_CELLS, arg, "cell must be 0..3");
	return (int)c;
}

static double check_amps(lua_State *L, int arg, bool zero_ok)
{
	lua_Number a = luaL_checknumber(L, arg);
	double max = BL_SETPOINT_MAX / 128.0;

	if (!(a >= 0 && a <= max) || (!zero_ok && a == 0))
		luaL_argerror(L, arg, lua_pushfstring(L, "current must be %s0 and at most %f A",
		                                      zero_ok ? ">= " : "> ", max));
	return a;
}

static void cell_rb(const struct bl_lua_device *ld, int cell, double *r, double *b)
{
	*r = BL_TEMP_R_NOMINAL;
	*b = BL_TEMP_B_NOMINAL;
	if (ld->d && cell >= 0 && cell < BL_CELLS) {
		const struct bl_identity *id = bl_device_identity(ld->d);
		*r = id->temp_r[cell];
		*b = id->temp_b[cell];
	}
}

static int fail_detached(lua_State *L, const struct bl_lua_device *ld)
{
	return bl_lua_fail(L, BL_ERR_CLOSED, "Batlab %d on %s: device detached", (int)ld->serial,
	                   ld->port);
}

static const char *reg_text(uint8_t ns, uint8_t addr, char *buf, size_t n)
{
	char nsb[16];
	const struct bl_reg *r = bl_reg_by_addr(ns, addr);

	bl_ns_name(ns, nsb, sizeof nsb);
	if (r)
		snprintf(buf, n, "%s %s", nsb, r->name);
	else
		snprintf(buf, n, "%s 0x%02X", nsb, addr);
	return buf;
}

static int fail_reg(lua_State *L, int status, const char *verb, uint8_t ns, uint8_t addr)
{
	char buf[48];

	return bl_lua_fail(L, status, "%s %s: %s", verb, reg_text(ns, addr, buf, sizeof buf),
	                   bl_strerror(status));
}

static int fail_chan(lua_State *L, int status, const struct lchan *c, const char *what)
{
	return bl_lua_fail(L, status, "Batlab %d cell %d: %s: %s", (int)c->ld->serial, c->cell,
	                   what, bl_strerror(status));
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

/* Bind the channel at idx to the task w belongs to (once per task). */
static void bind_task(lua_State *L, struct bl_wait *w, struct lchan *c, int idx)
{
	if (!w->task || c->bound_task == bl_task_id(w->task))
		return;
	bl_task_bind(L, w->task, idx);
	c->bound_task = bl_task_id(w->task);
}

/* ---- Operation holders -------------------------------------------------------- */

struct holder {
	struct bl_wait *w;             /* NULL once abandoned */
	struct bl_sched *s;
	int resafe_cell;               /* >= 0: safe again if it ends abandoned */
	int progress_ref;
	bool want_cal;
	struct bl_calibration cal;
};

static struct holder *holder_new(struct bl_wait *w, int resafe_cell)
{
	struct holder *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->w = w;
	h->s = w->sched;
	h->resafe_cell = resafe_cell;
	h->progress_ref = LUA_NOREF;
	return h;
}

static void holder_free(struct holder *h)
{
	if (h->progress_ref != LUA_NOREF)
		luaL_unref(bl_sched_lua(h->s), LUA_REGISTRYINDEX, h->progress_ref);
	free(h);
}

static void holder_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct holder *h = ud;
	struct bl_wait *w = h->w;

	if (w) {
		w->value = bl_op_value(op);
		w->number = bl_op_number(op);
		w->raw32 = bl_op_raw32(op);
		if (h->want_cal)
			memcpy(w->payload.bytes, &h->cal, sizeof h->cal);
		bl_wait_complete(w, status);
	} else if (h->resafe_cell >= 0 && !bl_device_closed(d)) {
		bl_op_safe(d, h->resafe_cell, NULL, NULL);
	}
	holder_free(h);
}

static void holder_abandon(struct bl_wait *w)
{
	struct holder *h = w->ctx;

	if (h)
		h->w = NULL;
}

/* Wait for `op`, started with holder_done and h. */
static int await(lua_State *L, struct bl_wait *w, struct holder *h, struct bl_op *op,
                 lua_KFunction k)
{
	if (w->done)   /* it completed at once (h is gone) */
		return bl_wait_yield(L, w, k);
	if (!op) {
		free(h);
		return bl_lua_fail(L, BL_ERR_CLOSED, "the device is closed");
	}
	w->ctx = h;
	w->cancel = holder_abandon;
	return bl_wait_yield(L, w, k);
}

#define NEW_HOLDER(h, w, cell)                                            \
	do {                                                              \
		(h) = holder_new((w), (cell));                            \
		if (!(h))                                                 \
			return luaL_error(L, "out of memory");            \
	} while (0)

/* ---- Samples and report ticks ---------------------------------------------------- */

/* Sample tables are built at every report of every waited channel: the
 * keys are interned once (a registry array) and the bit names looked up
 * once per bit, instead of lua_setfield's string lookups each time. */
static const char sample_keys_key = 0;

enum {
	K_TIME = 1, K_STEP_TIME, K_MODE, K_MODE_NAME, K_STATUS, K_STATUS_NAMES, K_ERROR,
	K_ERROR_NAMES, K_VOLTAGE, K_CURRENT, K_TEMP_C, K_CHARGE_AH, K_ENERGY_WH, K_VCC, K_CELL,
	K_SERIAL, K_COUNT = K_SERIAL,
};

static const char *const sample_keys[K_COUNT + 1] = {
	NULL, "time", "step_time", "mode", "mode_name", "status", "status_names", "error",
	"error_names", "voltage", "current", "temp_c", "charge_ah", "energy_wh", "vcc", "cell",
	"serial",
};

static const char *bit_names[2][16];

static void init_sample_keys(lua_State *L)
{
	lua_createtable(L, K_COUNT, 0);
	for (int i = 1; i <= K_COUNT; i++) {
		lua_pushstring(L, sample_keys[i]);
		lua_rawseti(L, -2, i);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sample_keys_key);
	for (unsigned b = 0; b < 16; b++) {
		bit_names[0][b] = bl_bit_name(BL_UK_STATUS, (uint16_t)(1u << b));
		bit_names[1][b] = bl_bit_name(BL_UK_ERROR, (uint16_t)(1u << b));
	}
}

/* keys at index -2 when called with the value on top: t[keys[k]] = v */
static void put(lua_State *L, int tbl, int keys, int k)
{
	lua_rawgeti(L, keys, k);
	lua_insert(L, -2);
	lua_rawset(L, tbl);
}

/* The names of the set bits, like bl_lua_push_bit_names ("0x1000" for a
 * bit with no name). */
static void push_bits(lua_State *L, int which, uint16_t bits)
{
	lua_Integer n = 0;
	int count = 0;

	for (uint16_t x = bits; x; x &= (uint16_t)(x - 1))
		count++;
	lua_createtable(L, count, 0);
	for (unsigned b = 0; b < 16; b++) {
		char hex[8];

		if (!(bits & (1u << b)))
			continue;
		if (bit_names[which][b]) {
			lua_pushstring(L, bit_names[which][b]);
		} else {
			snprintf(hex, sizeof hex, "0x%04X", 1u << b);
			lua_pushstring(L, hex);
		}
		lua_rawseti(L, -2, ++n);
	}
}

void bl_lua_push_sample(lua_State *L, const struct bl_sample *s)
{
	const char *mode = bl_mode_name(s->mode);
	int keys, t;

	luaL_checkstack(L, 4, NULL);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &sample_keys_key);
	keys = lua_gettop(L);
	lua_createtable(L, 0, K_COUNT);
	t = keys + 1;
	lua_pushnumber(L, s->time);          put(L, t, keys, K_TIME);
	lua_pushnumber(L, s->step_time);     put(L, t, keys, K_STEP_TIME);
	lua_pushinteger(L, s->mode);         put(L, t, keys, K_MODE);
	lua_pushstring(L, mode ? mode : "UNKNOWN"); put(L, t, keys, K_MODE_NAME);
	lua_pushinteger(L, s->status);       put(L, t, keys, K_STATUS);
	push_bits(L, 0, s->status);          put(L, t, keys, K_STATUS_NAMES);
	lua_pushinteger(L, s->error);        put(L, t, keys, K_ERROR);
	push_bits(L, 1, s->error);           put(L, t, keys, K_ERROR_NAMES);
	lua_pushnumber(L, s->voltage);       put(L, t, keys, K_VOLTAGE);
	lua_pushnumber(L, s->current);       put(L, t, keys, K_CURRENT);
	if (!isnan(s->temp_c)) {
		lua_pushnumber(L, s->temp_c);
		put(L, t, keys, K_TEMP_C);
	}
	lua_pushnumber(L, s->charge_ah);     put(L, t, keys, K_CHARGE_AH);
	lua_pushnumber(L, s->energy_wh);     put(L, t, keys, K_ENERGY_WH);
	lua_pushnumber(L, s->vcc);           put(L, t, keys, K_VCC);
	lua_pushinteger(L, s->cell);         put(L, t, keys, K_CELL);
	lua_pushinteger(L, s->serial);       put(L, t, keys, K_SERIAL);
	lua_remove(L, keys);
}

static void tick_fail(struct lchan *c, int status)
{
	while (c->batch.head)
		bl_wait_complete(c->batch.head, status);
}

static void tick_finish(struct lchan *c)
{
	c->last = c->tick;
	c->has_last = true;
	while (c->batch.head) {
		struct bl_wait *w = c->batch.head;
		memcpy(w->payload.bytes, &c->tick, sizeof c->tick);
		bl_wait_complete(w, BL_OK);
	}
}

static void tick_done(struct bl_device *d, struct bl_op *op, int status, void *ud);

/* Start the tick read for the current stage; false if it cannot start. */
static void tick_read(struct lchan *c)
{
	struct bl_device *d = c->ld->d;
	unsigned gen = c->tick_gen;
	struct bl_op *op = NULL;

	switch (c->tick_stage) {
	case 0: op = bl_op_charge(d, c->cell, tick_done, c); break;
	case 1: op = bl_op_read(d, (uint8_t)c->cell, BL_CELL_ERROR, tick_done, c); break;
	case 2: op = bl_op_read(d, BL_NS_UNIT, BL_UNIT_VCC, tick_done, c); break;
	}
	if (c->tick_gen != gen)
		return;        /* it already completed */
	c->tick_op = op;
	if (!op)
		tick_fail(c, BL_ERR_CLOSED);
}

/* VCC is shared by the four channels: read it only when the last reading
 * is stale. */
static void tick_done_vcc_or_finish(struct lchan *c)
{
	struct bl_lua_device *ld = c->ld;

	if (ld->have_vcc && bl_loop_now(bl_device_loop(ld->d)) - ld->vcc_us < VCC_FRESH_US) {
		c->tick.vcc = ld->vcc;
		tick_finish(c);
		return;
	}
	c->tick_stage = 2;
	tick_read(c);
}

static void tick_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct lchan *c = ud;
	struct bl_lua_device *ld = c->ld;
	double sign;

	(void)d;
	c->tick_gen++;
	c->tick_op = NULL;
	if (status != BL_OK) {
		tick_fail(c, status);
		return;
	}
	switch (c->tick_stage) {
	case 0:
		/* The counter only counts up; the direction is the step's. */
		sign = c->step == STEP_CHARGE ? 1.0 : c->step == STEP_DISCHARGE ? -1.0
		     : c->tick.mode == BL_MODE_CHARGE ? 1.0 : -1.0;
		c->tick.charge_ah = bl_op_number(op) > 0 ? sign * bl_op_number(op) / 3600.0 : 0.0;
		/* ERROR latches only when the firmware stops a channel and IDLE
		 * clears it, so it is worth a request only in the other modes. */
		if (c->tick.mode == BL_MODE_IDLE || c->tick.mode == BL_MODE_CHARGE ||
		    c->tick.mode == BL_MODE_DISCHARGE || c->tick.mode == BL_MODE_IMPEDANCE) {
			c->tick.error = 0;
			c->tick_stage = 1;
			tick_done_vcc_or_finish(c);
			return;
		}
		c->tick_stage = 1;
		tick_read(c);
		return;
	case 1:
		c->tick.error = bl_op_value(op);
		tick_done_vcc_or_finish(c);
		return;
	case 2:
		ld->vcc = bl_vcc_from_raw(bl_op_value(op));
		ld->vcc_us = bl_loop_now(bl_device_loop(ld->d));
		ld->have_vcc = true;
		c->tick.vcc = ld->vcc;
		tick_finish(c);
		return;
	}
}

static void on_stream(struct bl_device *d, int cell, const struct bl_snapshot *snap, void *ud)
{
	struct bl_lua_device *ld = ud;
	struct lchan *c = &ld->ch[cell];
	double v = bl_voltage_from_raw(snap->s.voltage);
	double i = signed_current(snap->s.mode, snap->s.current);
	double p = v * i, r, b;
	uint64_t t = snap->time_us;

	(void)d;
	/* A report this soon after a step started may carry values latched
	 * before it (the device measures a channel every 614.4 ms and the
	 * duty ramps up for a few hundred ms more): it is not a sample of the
	 * step, so it is neither integrated nor handed to a waiter. */
	if (c->step_on && t >= c->step_us && t - c->step_us < STEP_SETTLE_US)
		return;
	/* Energy from V x I at every report, trapezoids between reports; the
	 * first report of a step counts from the step's start. */
	if (c->step_on && t >= c->step_us) {
		if (c->have_p)
			c->energy_wh += (p + c->last_p) / 2.0 * (double)(t - c->last_us) / 3.6e9;
		else
			c->energy_wh += p * (double)(t - c->step_us) / 3.6e9;
		c->have_p = true;
		c->last_p = p;
		c->last_us = t;
	}
	if (!c->waiters.head || c->tick_op || c->batch.head)
		return;
	bl_wait_list_move(&c->batch, &c->waiters);
	cell_rb(ld, cell, &r, &b);
	memset(&c->tick, 0, sizeof c->tick);
	c->tick.time = (double)t / 1e6;
	c->tick.step_time = c->step_on && t >= c->step_us ? (double)(t - c->step_us) / 1e6 : 0.0;
	c->tick.mode = snap->s.mode;
	c->tick.status = snap->s.status;
	c->tick.voltage = v;
	c->tick.current = i;
	c->tick.temp_c = bl_temp_c_from_raw(snap->s.temperature, r, b);
	c->tick.energy_wh = c->energy_wh;
	c->tick.cell = cell;
	c->tick.serial = ld->serial;
	c->tick_stage = 0;
	tick_read(c);
}

static void step_reset(struct lchan *c, enum step_kind kind)
{
	c->step = kind;
	c->step_on = true;
	c->step_us = bl_loop_now(bl_device_loop(c->ld->d));
	c->energy_wh = 0.0;
	c->have_p = false;
}

/* ---- The Device object's life ------------------------------------------------------- */

struct bl_lua_device *bl_lua_push_device(lua_State *L, struct bl_device *d,
                                         struct bl_session *s)
{
	struct bl_lua_device *ld = lua_newuserdatauv(L, sizeof *ld, 2);
	const struct bl_identity *id = bl_device_identity(d);

	memset(ld, 0, sizeof *ld);
	luaL_setmetatable(L, BL_LUA_DEVICE);
	ld->d = d;
	ld->session = s;
	ld->sched = bl_sched_get(L);
	snprintf(ld->port, sizeof ld->port, "%s", bl_device_port(d));
	ld->serial = id->serial;
	ld->firmware = id->firmware;
	for (int c = 0; c < BL_CELLS; c++) {
		ld->ch[c].ld = ld;
		ld->ch[c].cell = c;
	}
	bl_device_on_stream(d, on_stream, ld);
	return ld;
}

struct bl_device *bl_lua_device_ptr(const struct bl_lua_device *ld)
{
	return ld->d;
}

void bl_lua_device_detach(struct bl_lua_device *ld)
{
	if (!ld->d)
		return;
	bl_device_on_stream(ld->d, NULL, NULL);
	for (int i = 0; i < BL_CELLS; i++) {
		struct lchan *c = &ld->ch[i];

		if (c->tick_op) {
			bl_op_cancel(c->tick_op);
			c->tick_op = NULL;
			c->tick_gen++;
		}
		tick_fail(c, BL_ERR_CLOSED);
		while (c->waiters.head)
			bl_wait_complete(c->waiters.head, BL_ERR_CLOSED);
		c->step_on = false;
	}
	ld->d = NULL;
}

void bl_lua_device_safe_all(struct bl_lua_device *ld)
{
	if (!ld->d || bl_device_closed(ld->d))
		return;
	for (int c = 0; c < BL_CELLS; c++) {
		bl_op_safe(ld->d, c, NULL, NULL);
		ld->ch[c].step_on = false;
		ld->ch[c].step = STEP_NONE;
	}
}

void bl_lua_device_reset(struct bl_lua_device *ld)
{
	if (!ld->d)
		return;
	/* A reset puts REPORT_INTERVAL back to 0: ask again, or waits would
	 * never see another report. The request rides out the restart on the
	 * device layer's retries. */
	for (int c = 0; c < BL_CELLS; c++) {
		ld->ch[c].step_on = false;
		ld->ch[c].step = STEP_NONE;
		if (ld->ch[c].interval_set)
			bl_device_set_report_interval(ld->d, c, ld->ch[c].interval_s);
	}
}

int bl_lua_device_busy(const struct bl_lua_device *ld)
{
	int n = 0;

	for (int c = 0; c < BL_CELLS; c++)
		n += (int)(ld->ch[c].waiters.n + ld->ch[c].batch.n) + (ld->ch[c].tick_op != NULL);
	return n;
}

/* ---- Device methods ---------------------------------------------------------------- */

/* A write of TEMP_CALIB_R/B changes how that cell's temperatures decode
 * from now on; the identity is what every decoder reads. */
static void note_write(struct bl_lua_device *ld, uint8_t ns, uint8_t addr, uint16_t v)
{
	struct bl_identity *id;

	if (!ld->d || ns >= BL_CELLS || v == 0 || v == 0xFFFF)
		return;
	id = bl_opi_identity(ld->d);
	if (addr == BL_CELL_TEMP_CALIB_R)
		id->temp_r[ns] = v;
	else if (addr == BL_CELL_TEMP_CALIB_B)
		id->temp_b[ns] = v;
}

static int k_dev_read(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	uint8_t ns = (uint8_t)w->arg[0], addr = (uint8_t)w->arg[1];

	(void)status;
	if (w->status != BL_OK)
		return fail_reg(L, w->status, "read", ns, addr);
	lua_pushinteger(L, w->value);
	return 1;
}

static int l_device_read(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	uint8_t ns = bl_lua_check_ns(L, 2);
	uint8_t addr = bl_lua_check_addr(L, 3, ns);
	struct bl_wait local, *w = bl_wait_begin(L, &local, "dev:read");
	struct holder *h;

	if (!ld->d)
		return fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = ns;
	w->arg[1] = addr;
	NEW_HOLDER(h, w, -1);
	return await(L, w, h, bl_op_read(ld->d, ns, addr, holder_done, h), k_dev_read);
}

static int k_dev_write(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	uint8_t ns = (uint8_t)w->arg[0], addr = (uint8_t)w->arg[1];

	(void)status;
	if (w->status != BL_OK)
		return fail_reg(L, w->status, w->arg[3] ? "write_verify" : "write", ns, addr);
	note_write(w->obj, ns, addr, (uint16_t)w->arg[2]);
	lua_pushboolean(L, 1);
	return 1;
}

static int device_write(lua_State *L, bool verify)
{
	struct bl_lua_device *ld = check_device(L, 1);
	uint8_t ns = bl_lua_check_ns(L, 2);
	uint8_t addr = bl_lua_check_addr(L, 3, ns);
	uint16_t v = bl_lua_check_u16(L, 4);
	struct bl_wait local, *w = bl_wait_begin(L, &local, verify ? "dev:write_verify" : "dev:write");
	struct holder *h;
	struct bl_op *op;

	if (!ld->d)
		return fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = ns;
	w->arg[1] = addr;
	w->arg[2] = v;
	w->arg[3] = verify;
	NEW_HOLDER(h, w, -1);
	op = verify ? bl_op_write_verify(ld->d, ns, addr, v, holder_done, h)
	            : bl_op_write(ld->d, ns, addr, v, holder_done, h);
	return await(L, w, h, op, k_dev_write);
}

static int l_device_write(lua_State *L) { return device_write(L, false); }
static int l_device_write_verify(lua_State *L) { return device_write(L, true); }

static int l_device_set_current(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	int cell = check_cell(L, 2);
	double amps = check_amps(L, 3, true);

	if (!ld->d)
		return fail_detached(L, ld);
	if (bl_device_set_current(ld->d, cell, amps) != BL_OK)
		return fail_detached(L, ld);
	lua_pushboolean(L, 1);
	return 1;
}

static int k_number(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d cell %d: %s: %s", (int)ld->serial,
		                   w->arg[0], w->arg[1] ? "impedance" : "charge", bl_strerror(w->status));
	lua_pushnumber(L, w->number);
	if (w->arg[1])
		return 1;
	lua_pushinteger(L, w->raw32);
	return 2;
}

static int device_number_op(lua_State *L, bool impedance)
{
	struct bl_lua_device *ld = check_device(L, 1);
	int cell = check_cell(L, 2);
	struct bl_wait local, *w = bl_wait_begin(L, &local, impedance ? "dev:impedance" : "dev:charge");
	struct holder *h;
	struct bl_op *op;

	if (!ld->d)
		return fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = cell;
	w->arg[1] = impedance;
	NEW_HOLDER(h, w, impedance ? cell : -1);
	op = impedance ? bl_op_impedance(ld->d, cell, holder_done, h)
	               : bl_op_charge(ld->d, cell, holder_done, h);
	return await(L, w, h, op, k_number);
}

static int l_device_impedance(lua_State *L) { return device_number_op(L, true); }
static int l_device_charge(lua_State *L) { return device_number_op(L, false); }

static void flash_progress(struct bl_device *d, size_t done, size_t total, void *ud)
{
	struct holder *h = ud;
	lua_State *L;

	(void)d;
	if (!h->w || h->progress_ref == LUA_NOREF)
		return;
	L = bl_sched_lua(h->s);
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->progress_ref);
	lua_pushinteger(L, (lua_Integer)done);
	lua_pushinteger(L, (lua_Integer)total);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		BL_WARN(MOD, "firmware_bootload progress function: %s",
		        lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
}

static int k_flash(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;
	struct holder *h;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: %s: %s", (int)ld->serial,
		                   w->stage == 0 ? "firmware load" : "reconnect after the firmware load",
		                   bl_strerror(w->status));
	if (!ld->d)
		return fail_detached(L, ld);
	if (w->stage == 0) {
		bl_wait_again(w);
		w->stage = 1;
		NEW_HOLDER(h, w, -1);
		return await(L, w, h, bl_op_connect(ld->d, holder_done, h), k_flash);
	}
	ld->firmware = bl_device_identity(ld->d)->firmware;
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_firmware_bootload(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct bl_wait local, *w;
	struct holder *h;
	struct bl_op *op;
	uint8_t *image = NULL;
	size_t len = 0;
	char err[256];
	int rc;

	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TFUNCTION);
	w = bl_wait_begin(L, &local, "dev:firmware_bootload");
	if (!ld->d)
		return fail_detached(L, ld);
	rc = bl_firmware_read_file(path, &image, &len, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "%s", err);
	w->obj = ld;
	h = holder_new(w, -1);
	if (!h) {
		free(image);
		return luaL_error(L, "out of memory");
	}
	if (!lua_isnoneornil(L, 3)) {
		lua_pushvalue(L, 3);
		h->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	op = bl_op_firmware_load(ld->d, image, len, flash_progress, h, holder_done, h);
	free(image);
	if (!op && !w->done) {
		holder_free(h);
		return bl_lua_fail(L, BL_ERR_CLOSED, "the device is closed");
	}
	return await(L, w, h, op, k_flash);
}

static int k_cal_backup(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;
	struct bl_calibration cal;
	const char *path = lua_tostring(L, 2);
	char *text;
	FILE *f;
	bool ok;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: calibration backup: %s", (int)ld->serial,
		                   bl_strerror(w->status));
	memcpy(&cal, w->payload.bytes, sizeof cal);
	text = bl_calib_format(&cal);
	if (!text)
		return luaL_error(L, "out of memory");
	f = fopen(path, "w");
	if (!f) {
		free(text);
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", path, strerror(errno));
	}
	ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	free(text);
	if (!ok)
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", path, strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_calibration_backup(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	struct bl_wait local, *w;
	struct holder *h;

	luaL_checkstring(L, 2);
	lua_settop(L, 2);
	w = bl_wait_begin(L, &local, "dev:calibration_backup");
	if (!ld->d)
		return fail_detached(L, ld);
	w->obj = ld;
	NEW_HOLDER(h, w, -1);
	h->want_cal = true;
	return await(L, w, h, bl_op_calib_backup(ld->d, &h->cal, holder_done, h), k_cal_backup);
}

static int k_cal_restore(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: calibration restore: %s", (int)ld->serial,
		                   bl_strerror(w->status));
	if (ld->d)
		ld->serial = bl_device_identity(ld->d)->serial;
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_calibration_restore(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct bl_calibration cal;
	struct bl_wait local, *w;
	struct holder *h;
	char err[256], buf[4096];
	size_t n;
	FILE *f;
	int rc;

	w = bl_wait_begin(L, &local, "dev:calibration_restore");
	if (!ld->d)
		return fail_detached(L, ld);
	f = fopen(path, "r");
	if (!f)
		return bl_lua_fail(L, BL_ERR_NOTFOUND, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	rc = bl_calib_parse(buf, path, &cal, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "%s", err);
	w->obj = ld;
	NEW_HOLDER(h, w, -1);
	return await(L, w, h, bl_op_calib_restore(ld->d, &cal, holder_done, h), k_cal_restore);
}

static void push_channel(lua_State *L, int dev_idx, int cell);

static int l_device_channel(lua_State *L)
{
	check_device(L, 1);
	push_channel(L, 1, check_cell(L, 2));
	return 1;
}

static void push_rb_list(lua_State *L, const struct bl_lua_device *ld, bool r)
{
	lua_createtable(L, BL_CELLS, 0);
	for (int c = 0; c < BL_CELLS; c++) {
		double rv, bv;
		cell_rb(ld, c, &rv, &bv);
		lua_pushnumber(L, r ? rv : bv);
		lua_rawseti(L, -2, c + 1);
	}
}

static int l_device_index(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "port") == 0)
		lua_pushstring(L, ld->port);
	else if (strcmp(k, "sn") == 0 || strcmp(k, "serial") == 0)
		lua_pushinteger(L, ld->serial);
	else if (strcmp(k, "ver") == 0 || strcmp(k, "firmware") == 0)
		lua_pushinteger(L, ld->firmware);
	else if (strcmp(k, "R") == 0)
		push_rb_list(L, ld, true);
	else if (strcmp(k, "B") == 0)
		push_rb_list(L, ld, false);
	else if (strcmp(k, "connected") == 0)
		lua_pushboolean(L, ld->d && bl_device_identity(ld->d)->connected);
	else if (strcmp(k, "bootloader") == 0)
		lua_pushboolean(L, ld->d && bl_device_identity(ld->d)->bootloader);
	else if (strcmp(k, "detached") == 0)
		lua_pushboolean(L, ld->d == NULL);
	else
		lua_getfield(L, lua_upvalueindex(1), k);
	return 1;
}

static int l_device_tostring(lua_State *L)
{
	struct bl_lua_device *ld = check_device(L, 1);

	lua_pushfstring(L, "batlab.Device %d on %s%s", (int)ld->serial, ld->port,
	                ld->d ? "" : " (detached)");
	return 1;
}

static const luaL_Reg device_meta[] = {
	{"__index", l_device_index},
	{"__tostring", l_device_tostring},
	{NULL, NULL},
};

static const luaL_Reg device_methods[] = {
	{"read", l_device_read},
	{"write", l_device_write},
	{"write_verify", l_device_write_verify},
	{"set_current", l_device_set_current},
	{"impedance", l_device_impedance},
	{"charge", l_device_charge},
	{"firmware_bootload", l_device_firmware_bootload},
	{"calibration_backup", l_device_calibration_backup},
	{"calibration_restore", l_device_calibration_restore},
	{"channel", l_device_channel},
	{NULL, NULL},
};

/* ---- Channels ------------------------------------------------------------------------ */

/* The Channel for cell of the Device at dev_idx: one object per channel,
 * kept in the device's uservalue, each holding its device. */
static void push_channel(lua_State *L, int dev_idx, int cell)
{
	struct bl_lua_device *ld = lua_touserdata(L, dev_idx);
	struct lchannel *ch;

	dev_idx = lua_absindex(L, dev_idx);
	if (lua_getiuservalue(L, dev_idx, 1) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, BL_CELLS, 0);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, dev_idx, 1);
	}
	if (lua_rawgeti(L, -1, cell + 1) == LUA_TUSERDATA) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	ch = lua_newuserdatauv(L, sizeof *ch, 1);
	ch->ld = ld;
	ch->cell = cell;
	luaL_setmetatable(L, BL_LUA_CHANNEL);
	lua_pushvalue(L, dev_idx);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, cell + 1);
	lua_remove(L, -2);
}

static struct lchan *chan_of(const struct lchannel *ch)
{
	return &ch->ld->ch[ch->cell];
}

static int k_ch_wait(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status == BL_ERR_TIMEOUT) {
		lua_pushnil(L);
		lua_pushliteral(L, "timeout");
		lua_pushliteral(L, "ETIMEDOUT");
		return 3;
	}
	if (w->status != BL_OK)
		return fail_chan(L, w->status, w->obj, "waiting for a report");
	bl_lua_push_sample(L, (const struct bl_sample *)(const void *)w->payload.bytes);
	return 1;
}

static int l_channel_wait(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	struct bl_wait local, *w;
	uint64_t timeout = 0;

	if (!lua_isnoneornil(L, 2)) {
		lua_Number s = luaL_checknumber(L, 2);
		luaL_argcheck(L, s >= 0 && s < 1e12, 2, "timeout must be a number of seconds >= 0");
		timeout = (uint64_t)llround(s * 1e6);
	}
	w = bl_wait_begin(L, &local, "ch:wait");
	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	bind_task(L, w, c, 1);
	if (!c->interval_set) {
		c->interval_set = true;
		c->interval_s = DEFAULT_INTERVAL_S;
		bl_device_set_report_interval(ch->ld->d, ch->cell, c->interval_s);
	}
	w->obj = c;
	bl_wait_list_add(&c->waiters, w);
	if (!lua_isnoneornil(L, 2))
		bl_wait_after(w, timeout, BL_ERR_TIMEOUT);
	return bl_wait_yield(L, w, k_ch_wait);
}

static int k_true(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status != BL_OK)
		return fail_chan(L, w->status, w->obj, "setting the report interval");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_channel_report_interval(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	lua_Number s = luaL_checknumber(L, 2);
	struct bl_wait local, *w;
	struct holder *h;
	uint16_t raw;

	luaL_argcheck(L, s >= 0 && s <= 6553.6, 2, "report interval must be 0 (off) or 0.1..6553.6 s");
	raw = bl_interval_to_raw(s);
	w = bl_wait_begin(L, &local, "ch:report_interval");
	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	c->interval_set = true;
	c->interval_s = s;
	w->obj = c;
	NEW_HOLDER(h, w, -1);
	return await(L, w, h, bl_op_write(ch->ld->d, (uint8_t)ch->cell, BL_CELL_REPORT_INTERVAL,
	                                  raw, holder_done, h), k_true);
}

/* ch:charge / ch:discharge / ch:idle / ch:stop share one continuation:
 * stage 0 then 1, arg[0] the kind (STEP_*, or -1 for stop). */
static int k_step(lua_State *L, int status, lua_KContext ctx)
{
	static const char *const what[] = {"stop", "charge", "discharge", "idle"};
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct lchan *c = w->obj;
	struct bl_lua_device *ld = c->ld;
	int kind = w->arg[0];
	struct holder *h;
	struct bl_op *op;

	(void)status;
	if (w->status != BL_OK) {
		char buf[64];
		snprintf(buf, sizeof buf, "%s (%s)", what[kind < 0 ? 0 : kind],
		         w->stage == 0 ? (kind == STEP_CHARGE || kind == STEP_DISCHARGE ?
		                          "clearing the charge counter" : "writing MODE")
		                       : kind == STEP_IDLE ? "clearing the charge counter"
		                                           : "starting the current");
		return fail_chan(L, w->status, c, buf);
	}
	if (!ld->d)
		return fail_detached(L, ld);
	if (w->stage == 1 || kind < 0) {
		if (kind < 0) {
			c->step_on = false;
			c->step = STEP_NONE;
		} else if (kind == STEP_IDLE) {
			step_reset(c, STEP_IDLE);
		}
		lua_pushboolean(L, 1);
		return 1;
	}
	bl_wait_again(w);
	w->stage = 1;
	NEW_HOLDER(h, w, c->cell);
	switch (kind) {
	case STEP_CHARGE:
		step_reset(c, STEP_CHARGE);
		op = bl_op_charge_start(ld->d, c->cell, w->darg[0], holder_done, h);
		break;
	case STEP_DISCHARGE:
		step_reset(c, STEP_DISCHARGE);
		op = bl_op_discharge_start(ld->d, c->cell, w->darg[0], holder_done, h);
		break;
	default: /* idle: MODE written, now the counter */
		op = bl_op_write(ld->d, (uint8_t)c->cell, BL_CELL_CHARGEH, 0, holder_done, h);
		break;
	}
	return await(L, w, h, op, k_step);
}

static int channel_step(lua_State *L, int kind)
{
	static const char *const names[] = {"ch:stop", "ch:charge", "ch:discharge", "ch:idle"};
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	double amps = 0;
	struct bl_wait local, *w;
	struct holder *h;
	struct bl_op *op;

	if (kind == STEP_CHARGE || kind == STEP_DISCHARGE)
		amps = check_amps(L, 2, false);
	w = bl_wait_begin(L, &local, names[kind < 0 ? 0 : kind]);
	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	bind_task(L, w, c, 1);
	w->obj = c;
	w->arg[0] = kind;
	w->darg[0] = amps;
	NEW_HOLDER(h, w, ch->cell);
	if (kind == STEP_CHARGE || kind == STEP_DISCHARGE) {
		/* A new step counts from zero: clear the counter first. */
		op = bl_op_write(ch->ld->d, (uint8_t)ch->cell, BL_CELL_CHARGEH, 0, holder_done, h);
	} else {
		bl_device_set_target(ch->ld->d, ch->cell, 0);
		op = bl_op_write(ch->ld->d, (uint8_t)ch->cell, BL_CELL_MODE,
		                 kind < 0 ? BL_MODE_STOPPED : BL_MODE_IDLE, holder_done, h);
	}
	return await(L, w, h, op, k_step);
}

static int l_channel_charge(lua_State *L) { return channel_step(L, STEP_CHARGE); }
static int l_channel_discharge(lua_State *L) { return channel_step(L, STEP_DISCHARGE); }
static int l_channel_idle(lua_State *L) { return channel_step(L, STEP_IDLE); }
static int l_channel_stop(lua_State *L) { return channel_step(L, -1); }

static int l_channel_set_current(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	double amps = check_amps(L, 2, true);
	struct bl_task *t = bl_sched_current(L);

	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	if (t && chan_of(ch)->bound_task != bl_task_id(t)) {
		bl_task_bind(L, t, 1);
		chan_of(ch)->bound_task = bl_task_id(t);
	}
	if (bl_device_set_current(ch->ld->d, ch->cell, amps) != BL_OK)
		return fail_detached(L, ch->ld);
	lua_pushboolean(L, 1);
	return 1;
}

static int k_ch_impedance(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status != BL_OK)
		return fail_chan(L, w->status, w->obj, "impedance");
	lua_pushnumber(L, w->number);
	return 1;
}

static int l_channel_impedance(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	struct bl_wait local, *w = bl_wait_begin(L, &local, "ch:impedance");
	struct holder *h;

	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	bind_task(L, w, c, 1);
	w->obj = c;
	NEW_HOLDER(h, w, ch->cell);
	return await(L, w, h, bl_op_impedance(ch->ld->d, ch->cell, holder_done, h), k_ch_impedance);
}

/* ch:limits{...} */

enum limit_unit { LIM_V, LIM_A, LIM_T };

static const struct limit_key {
	const char *key;
	enum limit_unit unit;
	uint8_t addr[2];             /* 0xFF: none */
	const char *unit_name;
} limit_keys[] = {
	{"vmax", LIM_V, {BL_CELL_VOLTAGE_LIMIT_CHG, 0xFF}, "V"},
	{"vmin", LIM_V, {BL_CELL_VOLTAGE_LIMIT_DCHG, 0xFF}, "V"},
	{"imax", LIM_A, {BL_CELL_CURRENT_LIMIT_CHG, BL_CELL_CURRENT_LIMIT_DCHG}, "A"},
	{"imax_chg", LIM_A, {BL_CELL_CURRENT_LIMIT_CHG, 0xFF}, "A"},
	{"imax_dchg", LIM_A, {BL_CELL_CURRENT_LIMIT_DCHG, 0xFF}, "A"},
	{"tmax_c", LIM_T, {BL_CELL_TEMP_LIMIT_CHG, BL_CELL_TEMP_LIMIT_DCHG}, "degC"},
	{"tmax_chg_c", LIM_T, {BL_CELL_TEMP_LIMIT_CHG, 0xFF}, "degC"},
	{"tmax_dchg_c", LIM_T, {BL_CELL_TEMP_LIMIT_DCHG, 0xFF}, "degC"},
};

#define MAX_LIMITS 6

struct limit_item {
	uint8_t addr;
	uint8_t key;
	uint16_t raw;
	double value;
};

struct limit_plan {
	int n;
	struct limit_item item[MAX_LIMITS];
};

static void plan_limits(lua_State *L, struct lchan *c, struct limit_plan *plan)
{
	double value[BL_ARRAY_LEN(limit_keys)];
	bool given[BL_ARRAY_LEN(limit_keys)] = {false};
	int owner[BL_CELL_NREGS];
	double r, b;

	luaL_checktype(L, 2, LUA_TTABLE);
	for (size_t i = 0; i < BL_CELL_NREGS; i++)
		owner[i] = -1;
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		size_t i;
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		for (i = 0; k && i < BL_ARRAY_LEN(limit_keys); i++)
			if (strcmp(k, limit_keys[i].key) == 0)
				break;
		if (!k || i == BL_ARRAY_LEN(limit_keys))
			luaL_error(L, "ch:limits: unknown limit %s (vmax, vmin, imax, imax_chg, "
			           "imax_dchg, tmax_c, tmax_chg_c, tmax_dchg_c)",
			           k ? lua_pushfstring(L, "'%s'", k) : luaL_typename(L, -2));
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "ch:limits: %s must be a number, got %s", k, luaL_typename(L, -1));
		value[i] = lua_tonumber(L, -1);
		given[i] = true;
		lua_pop(L, 1);
	}
	cell_rb(c->ld, c->cell, &r, &b);
	plan->n = 0;
	for (size_t i = 0; i < BL_ARRAY_LEN(limit_keys); i++) {
		const struct limit_key *lk = &limit_keys[i];
		double v = value[i];
		uint16_t raw = 0;

		if (!given[i])
			continue;
		switch (lk->unit) {
		case LIM_V:
			if (!(v > 0 && v < 4.5))
				luaL_error(L, "ch:limits: %s must be in 0..4.5 V, got %f", lk->key, v);
			raw = bl_voltage_to_raw(v);
			break;
		case LIM_A:
			if (!(v > 0 && v <= 4.096))
				luaL_error(L, "ch:limits: %s must be in 0..4.096 A, got %f", lk->key, v);
			raw = bl_current_to_raw(v);
			break;
		case LIM_T:
			if (!(v > -40 && v < 150))
				luaL_error(L, "ch:limits: %s must be in -40..150 degC, got %f", lk->key, v);
			/* This cell's own thermistor calibration. */
			raw = bl_temp_c_to_raw(v, r, b);
			break;
		}
		for (int j = 0; j < 2 && lk->addr[j] != 0xFF; j++) {
			uint8_t a = lk->addr[j];
			if (owner[a] >= 0)
				luaL_error(L, "ch:limits: %s and %s both set %s", limit_keys[owner[a]].key,
				           lk->key, bl_reg_by_addr(0, a)->name);
			owner[a] = (int)i;
			plan->item[plan->n].addr = a;
			plan->item[plan->n].key = (uint8_t)i;
			plan->item[plan->n].raw = raw;
			plan->item[plan->n].value = v;
			plan->n++;
		}
	}
}

static int k_limits(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct lchan *c = w->obj;
	struct limit_plan *plan = (struct limit_plan *)(void *)w->payload.bytes;
	struct holder *h;

	(void)status;
	if (w->stage > 0 && w->status != BL_OK) {
		const struct limit_item *it = &plan->item[w->stage - 1];
		const struct limit_key *lk = &limit_keys[it->key];
		return bl_lua_fail(L, w->status, "Batlab %d cell %d: limit %s (%s = %f %s, raw %d): "
		                   "write_verify failed: %s", (int)c->ld->serial, c->cell, lk->key,
		                   bl_reg_by_addr(0, it->addr)->name, it->value, lk->unit_name,
		                   (int)it->raw, bl_strerror(w->status));
	}
	if (w->stage >= plan->n) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (!c->ld->d)
		return fail_detached(L, c->ld);
	bl_wait_again(w);
	NEW_HOLDER(h, w, -1);
	w->stage++;
	return await(L, w, h, bl_op_write_verify(c->ld->d, (uint8_t)c->cell,
	                                         plan->item[w->stage - 1].addr,
	                                         plan->item[w->stage - 1].raw, holder_done, h),
	             k_limits);
}

static int l_channel_limits(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	struct limit_plan plan;
	struct bl_wait local, *w;

	_Static_assert(sizeof(struct limit_plan) <= BL_WAIT_PAYLOAD, "limit plan fits a wait");
	plan_limits(L, c, &plan);
	w = bl_wait_begin(L, &local, "ch:limits");
	if (!ch->ld->d)
		return fail_detached(L, ch->ld);
	bind_task(L, w, c, 1);
	w->obj = c;
	memcpy(w->payload.bytes, &plan, sizeof plan);
	w->stage = 0;
	w->done = true;      /* enter the continuation for the first write */
	w->status = BL_OK;
	return k_limits(L, LUA_YIELD, (lua_KContext)w);
}

static int l_channel_index(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	const char *k = luaL_checkstring(L, 2);
	struct lchan *c = chan_of(ch);

	if (strcmp(k, "index") == 0 || strcmp(k, "cell") == 0) {
		lua_pushinteger(L, ch->cell);
	} else if (strcmp(k, "device") == 0) {
		lua_getiuservalue(L, 1, 1);
	} else if (strcmp(k, "last") == 0) {
		if (c->has_last)
			bl_lua_push_sample(L, &c->last);
		else
			lua_pushnil(L);
	} else if (strcmp(k, "step_time") == 0) {
		if (c->step_on && ch->ld->d)
			lua_pushnumber(L, (double)(bl_loop_now(bl_device_loop(ch->ld->d)) - c->step_us) / 1e6);
		else
			lua_pushnil(L);
	} else {
		lua_getfield(L, lua_upvalueindex(1), k);
	}
	return 1;
}

static int l_channel_tostring(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);

	lua_pushfstring(L, "batlab.Channel %d of Batlab %d%s", ch->cell, (int)ch->ld->serial,
	                ch->ld->d ? "" : " (detached)");
	return 1;
}

static const luaL_Reg channel_meta[] = {
	{"__index", l_channel_index},
	{"__tostring", l_channel_tostring},
	{NULL, NULL},
};

static const luaL_Reg channel_methods[] = {
	{"wait", l_channel_wait},
	{"report_interval", l_channel_report_interval},
	{"charge", l_channel_charge},
	{"discharge", l_channel_discharge},
	{"idle", l_channel_idle},
	{"stop", l_channel_stop},
	{"set_current", l_channel_set_current},
	{"impedance", l_channel_impedance},
	{"limits", l_channel_limits},
	{NULL, NULL},
};

/* The scheduler's safe hook: a failed or cancelled task's channel. */
static void channel_safe(lua_State *L, int idx, void *ud)
{
	struct lchannel *ch = luaL_testudata(L, idx, BL_LUA_CHANNEL);
	struct lchan *c;

	(void)ud;
	if (!ch || !ch->ld->d || bl_device_closed(ch->ld->d))
		return;
	c = chan_of(ch);
	c->step_on = false;
	c->step = STEP_NONE;
	if (!bl_op_safe(ch->ld->d, ch->cell, NULL, NULL))
		BL_WARN(MOD, "Batlab %u cell %d: cannot start the safe sequence", ch->ld->serial,
		        ch->cell);
}

void bl_lua_open_device(lua_State *L)
{
	_Static_assert(sizeof(struct bl_sample) <= BL_WAIT_PAYLOAD, "a sample fits a wait");
	_Static_assert(sizeof(struct bl_calibration) <= BL_WAIT_PAYLOAD, "calibration fits a wait");
	init_sample_keys(L);
	bl_lua_newclass(L, BL_LUA_DEVICE, device_meta, device_methods);
	bl_lua_newclass(L, BL_LUA_CHANNEL, channel_meta, channel_methods);
	bl_sched_set_safe_hook(bl_sched_get(L), channel_safe, NULL);
}
