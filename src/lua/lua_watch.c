/* lua_watch.c - ch:watch(spec): wait for the next report of a channel
 * that a step has to look at, accounting the others in C.
 *
 * A step of batlab.steps looks at every report: has an end condition
 * been reached, did the device stop the channel, is the cell gone, did
 * the voltage jump... Nearly every report answers no to all of them, and
 * resuming the task, building the sample table and walking the step's
 * checks in Lua for it costs ten times what the rest of the sample path
 * does. ch:watch takes the thresholds the step would act on and
 * completes only with a report that crosses one of them (or that is
 * unusual in any way: another mode, an error bit, a device reset), so
 * the step's Lua code still decides everything on the reports that can
 * matter. The reports in between ("quiet" ones) are accounted here into
 * the running sums the step keeps (count, sum of V, sum of |I|,
 * temperatures), added in the same order with the same doubles as the
 * step's Lua would, so a watched step's summary is bit for bit the one a
 * step that looked at every report gets. Thresholds that the step
 * computes from a difference (a pulse phase) are given with a small
 * margin by the step: waking a report early is always safe (the step
 * checks and watches again), waking late never is.
 *
 *   spec = {
 *     timeout = s,           -- no report for this long: nil, "timeout" (a watch
 *                            -- whose thresholds are never crossed waits on)
 *     mode = n,              -- the mode the step expects (others wake)
 *     v_hi = V, v_lo = V,    -- wake at V >= v_hi or V <= v_lo
 *     i_lo = A, i_after = s, -- wake at |I| <= i_lo once step_time >= i_after
 *     i_hi = A,              -- wake at |I| >= i_hi
 *     t_at = s,              -- wake at step_time >= t_at
 *     dur_at = s, t_offset = s, carry_time = s,  -- (step_time - t_offset) + carry_time >= dur_at
 *     ah_at = Ah, carry_ah = Ah,  -- |charge_ah| + carry_ah >= ah_at
 *     wh_at = Wh, carry_wh = Wh,  -- |energy_wh| + carry_wh >= wh_at
 *     temp_at = degC, temp_min = degC, temp_max = degC,  -- T >= temp_at, outside [min, max]
 *     prev_v = V, prev_t = degC, jump_v = V, jump_t = K,  -- a jump from the report before
 *     vcc_lo = V,            -- wake at 0 < VCC < vcc_lo
 *     dvdt = trail, dvdt_below = V/s,  -- wake when the report would bring the
 *                            -- window trail's slope below dvdt_below
 *     tail = trail,          -- a trail the quiet reports are pushed to
 *     capture = series,      -- a batlab.series the quiet reports are added to
 *     reg = 1 | 2, reg_target = W | ohm, reg_amps = A, reg_settle = s,
 *                            -- a regulated step (batlab.steps_more power: 1,
 *                            -- resistance: 2) driving reg_amps: wake when the
 *                            -- current it wants (W / max(V, 0.5), V / ohm) is
 *                            -- 1/256 A or more away; its error (V|I| - W, V/|I| - ohm,
 *                            -- once the duration reaches reg_settle) accounted into
 *     reg_n, reg_se, reg_sae, reg_maxe,  -- count, sum of squares, of |e|, max |e|
 *     mdv_dv = V, mdv_settle = s, mdv_peak = V,  -- -dV: once the duration reaches
 *                            -- mdv_settle, the peak (nil: none yet) follows V; wake
 *                            -- when peak - V >= mdv_dv (mdv_peak written back)
 *                            -- (batlab.trail, lua_watch_trail.c: their times are
 *                            -- the step's duration, (step_time - t_offset) + carry_time)
 *     -- accumulators, read at the start and written back at the end:
 *     sum_v, sum_i,          -- running sums the quiet reports are added to
 *     quiet,                 -- out: how many reports were quiet
 *     temp_first, temp_last, temp_max_seen,  -- out: over the quiet reports (nil: none)
 *     vcc_seen,              -- out: a quiet report had VCC > 0
 *     prev,                  -- out: the last quiet report (a sample table)
 *   }
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_devobj.h"

#define WATCH_MT "batlab.Watch"

struct watch {
	double v_hi, v_lo, i_lo, i_after, i_hi, t_at, dur_at, t_offset, carry_time;
	double ah_at, carry_ah, wh_at, carry_wh, temp_at, temp_min, temp_max;
	double prev_v, prev_t, jump_v, jump_t, vcc_lo, dvdt_below;
	struct bl_trail *dvdt, *tail;   /* anchored by the spec (argument 2) */
	struct bl_series *capture;
	int reg;                     /* 0: none, 1: power, 2: resistance */
	double reg_target, reg_amps, reg_settle, reg_se, reg_sae, reg_maxe;
	lua_Integer reg_n;
	double mdv_dv, mdv_settle, mdv_peak;   /* mdv_dv NaN: no -dV; peak NaN: none yet */
	int mode;                    /* -1: any */
	uint64_t timeout_us;         /* 0: none */
	/* the quiet reports */
	long quiet;
	double sum_v, sum_i, temp_first, temp_last, temp_hi;
	bool vcc_seen;
	struct bl_sample prev;
};

static double num_field(lua_State *L, int t, const char *k, double dflt)
{
	double v = dflt;

	if (lua_getfield(L, t, k) != LUA_TNIL) {
		if (!lua_isnumber(L, -1))
			luaL_error(L, "ch:watch: spec.%s must be a number", k);
		v = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

static struct bl_trail *trail_field(lua_State *L, int t, const char *k)
{
	struct bl_trail *tr = NULL;

	if (lua_getfield(L, t, k) != LUA_TNIL && !(tr = bl_trail_test(L, -1)))
		luaL_error(L, "ch:watch: spec.%s must be a batlab.trail", k);
	lua_pop(L, 1);
	return tr;
}

static void read_spec(lua_State *L, int t, struct watch *x)
{
	double timeout = num_field(L, t, "timeout", -1);
	double mode = num_field(L, t, "mode", -1);

	x->v_hi = num_field(L, t, "v_hi", HUGE_VAL);
	x->v_lo = num_field(L, t, "v_lo", -HUGE_VAL);
	x->i_lo = num_field(L, t, "i_lo", -1);
	x->i_after = num_field(L, t, "i_after", 0);
	x->i_hi = num_field(L, t, "i_hi", HUGE_VAL);
	x->t_at = num_field(L, t, "t_at", HUGE_VAL);
	x->dur_at = num_field(L, t, "dur_at", HUGE_VAL);
	x->t_offset = num_field(L, t, "t_offset", 0);
	x->carry_time = num_field(L, t, "carry_time", 0);
	x->ah_at = num_field(L, t, "ah_at", HUGE_VAL);
	x->carry_ah = num_field(L, t, "carry_ah", 0);
	x->wh_at = num_field(L, t, "wh_at", HUGE_VAL);
	x->carry_wh = num_field(L, t, "carry_wh", 0);
	x->temp_at = num_field(L, t, "temp_at", HUGE_VAL);
	x->temp_min = num_field(L, t, "temp_min", -HUGE_VAL);
	x->temp_max = num_field(L, t, "temp_max", HUGE_VAL);
	x->prev_v = num_field(L, t, "prev_v", NAN);
	x->prev_t = num_field(L, t, "prev_t", NAN);
	x->jump_v = num_field(L, t, "jump_v", HUGE_VAL);
	x->jump_t = num_field(L, t, "jump_t", HUGE_VAL);
	x->vcc_lo = num_field(L, t, "vcc_lo", 0);
	x->dvdt = trail_field(L, t, "dvdt");
	x->dvdt_below = num_field(L, t, "dvdt_below", -HUGE_VAL);
	x->tail = trail_field(L, t, "tail");
	x->capture = NULL;
	x->mdv_dv = num_field(L, t, "mdv_dv", NAN);
	x->mdv_settle = num_field(L, t, "mdv_settle", 0);
	x->mdv_peak = num_field(L, t, "mdv_peak", NAN);
	x->reg = (int)num_field(L, t, "reg", 0);
	luaL_argcheck(L, x->reg >= 0 && x->reg <= 2, 2, "spec.reg must be 1 (power) or 2 (resistance)");
	if (x->reg) {
		x->reg_target = num_field(L, t, "reg_target", NAN);
		x->reg_amps = num_field(L, t, "reg_amps", NAN);
		x->reg_settle = num_field(L, t, "reg_settle", 0);
		x->reg_n = (lua_Integer)num_field(L, t, "reg_n", 0);
		x->reg_se = num_field(L, t, "reg_se", 0);
		x->reg_sae = num_field(L, t, "reg_sae", 0);
		x->reg_maxe = num_field(L, t, "reg_maxe", 0);
	}
	if (lua_getfield(L, t, "capture") != LUA_TNIL && !(x->capture = bl_series_test(L, -1)))
		luaL_error(L, "ch:watch: spec.capture must be a batlab.series");
	lua_pop(L, 1);
	luaL_argcheck(L, mode == -1 || (mode >= 0 && mode <= 65535 && mode == floor(mode)), 2,
	              "spec.mode must be a MODE value");
	x->mode = (int)mode;
	x->sum_v = num_field(L, t, "sum_v", 0);
	x->sum_i = num_field(L, t, "sum_i", 0);
	luaL_argcheck(L, timeout == -1 || (timeout >= 0 && timeout < 1e12), 2,
	              "spec.timeout must be seconds >= 0");
	/* given: at least a microsecond (0 means none inside) */
	x->timeout_us = timeout < 0 ? 0 : (uint64_t)llround(timeout * 1e6);
	if (timeout >= 0 && x->timeout_us == 0)
		x->timeout_us = 1;
	x->quiet = 0;
	x->temp_first = x->temp_last = x->temp_hi = NAN;
	x->vcc_seen = false;
}

/* The current a regulated step wants at voltage v (as steps_more's
 * control.next works it out, before its clamps). */
static double reg_wants(const struct watch *x, double v)
{
	return x->reg == 1 ? x->reg_target / (v > 0.5 ? v : 0.5) : v / x->reg_target;
}

/* Its error at s, accounted as steps_more's track() does (the same
 * doubles in the same order); none before reg_settle. */
static void reg_track(struct watch *x, const struct bl_sample *s, double dur)
{
	double i = fabs(s->current), e, ae;

	if (dur < x->reg_settle || (x->reg == 2 && !(i > 0.01)))
		return;
	e = x->reg == 1 ? s->voltage * i - x->reg_target : s->voltage / i - x->reg_target;
	ae = fabs(e);
	x->reg_n++;
	x->reg_se = x->reg_se + e * e;
	x->reg_sae = x->reg_sae + ae;
	if (ae > x->reg_maxe)
		x->reg_maxe = ae;
}

/* The -dV peak after a report at voltage v (as math.max(peak or v, v)). */
static double mdv_peak_after(const struct watch *x, double v)
{
	return (isnan(x->mdv_peak) || x->mdv_peak < v) ? v : x->mdv_peak;
}

/* Whether the step would act on s: any threshold crossed, or anything
 * unusual. Written as the step's own conditions are, so that a report
 * this calls quiet is one the step would have let pass. */
static bool wakes(const struct watch *x, const struct bl_sample *s)
{
	double v = s->voltage, t = s->temp_c, st = s->step_time, slope;
	/* the step's duration as batlab.steps works it out */
	double dur = (st - x->t_offset) + x->carry_time;

	if (s->device_reset || s->error || (x->mode >= 0 && s->mode != x->mode))
		return true;
	if (v >= x->v_hi || v <= x->v_lo || st >= x->t_at)
		return true;
	if ((x->i_lo >= 0 && st >= x->i_after && fabs(s->current) <= x->i_lo) || fabs(s->current) >= x->i_hi)
		return true;
	if (dur >= x->dur_at)
		return true;
	/* a current change the step would make (its clamps only make it
	 * smaller: reg_amps is within them); NaN wakes */
	if (x->reg && !(fabs(reg_wants(x, v) - x->reg_amps) < 1.0 / 256))
		return true;
	if (x->dvdt && bl_trail_slope_if(x->dvdt, dur, v, &slope) && slope < x->dvdt_below)
		return true;
	if (!isnan(x->mdv_dv) && dur >= x->mdv_settle && mdv_peak_after(x, v) - v >= x->mdv_dv)
		return true;
	/* a trail that cannot take the report: Lua's push raises */
	if ((x->dvdt && !bl_trail_room(x->dvdt)) || (x->tail && !bl_trail_room(x->tail)) ||
	    (x->capture && !bl_series_room(x->capture)))
		return true;
	if (fabs(s->charge_ah) + x->carry_ah >= x->ah_at || fabs(s->energy_wh) + x->carry_wh >= x->wh_at)
		return true;
	if (!isnan(t) && (t >= x->temp_at || t < x->temp_min || t > x->temp_max ||
	                  (!isnan(x->prev_t) && fabs(t - x->prev_t) > x->jump_t)))
		return true;
	if (!isnan(x->prev_v) && fabs(v - x->prev_v) > x->jump_v)
		return true;
	return s->vcc > 0 && s->vcc < x->vcc_lo;
}

static void account(struct watch *x, const struct bl_sample *s)
{
	double t = s->temp_c;

	x->quiet++;
	x->sum_v = x->sum_v + s->voltage;
	x->sum_i = x->sum_i + fabs(s->current);
	if (!isnan(t)) {
		if (isnan(x->temp_first))
			x->temp_first = t;
		x->temp_last = t;
		if (isnan(x->temp_hi) || t > x->temp_hi)
			x->temp_hi = t;
	}
	if (s->vcc > 0)
		x->vcc_seen = true;
	x->prev = *s;
	x->prev_v = s->voltage;
	x->prev_t = t;
	if (x->dvdt || x->tail) {
		double dur = (s->step_time - x->t_offset) + x->carry_time;

		if (x->dvdt)
			bl_trail_push(x->dvdt, dur, s->voltage);   /* room made by wakes */
		if (x->tail)
			bl_trail_push(x->tail, dur, s->voltage);
	}
	if (x->capture)
		bl_series_add(x->capture, s);
	if (x->reg || !isnan(x->mdv_dv)) {
		double dur = (s->step_time - x->t_offset) + x->carry_time;

		if (x->reg)
			reg_track(x, s, dur);
		if (!isnan(x->mdv_dv) && dur >= x->mdv_settle)
			x->mdv_peak = mdv_peak_after(x, s->voltage);
	}
}

/* Called by the channel's sample listener for a watch wait: true when the
 * report was quiet (accounted; w waits on), false when w is to complete. */
bool bl_lua_watch_quiet(struct bl_wait *w, const struct bl_sample *s)
{
	struct watch *x = w->ctx;

	if (wakes(x, s))
		return false;
	account(x, s);
	if (x->timeout_us) {
		/* the timeout is for a silence: it counts from the last report */
		bl_timer_stop(bl_sched_loop(w->sched), &w->timer);
		bl_wait_after(w, x->timeout_us, BL_ERR_TIMEOUT);
	}
	return true;
}

static void set_num(lua_State *L, int t, const char *k, double v)
{
	if (isnan(v))
		lua_pushnil(L);
	else
		lua_pushnumber(L, v);
	lua_setfield(L, t, k);
}

/* Write the quiet reports' accounting back into the spec (index 2). */
static void write_back(lua_State *L, const struct watch *x)
{
	lua_pushinteger(L, x->quiet);
	lua_setfield(L, 2, "quiet");
	if (!x->quiet)
		return;
	set_num(L, 2, "sum_v", x->sum_v);
	set_num(L, 2, "sum_i", x->sum_i);
	set_num(L, 2, "temp_first", x->temp_first);
	set_num(L, 2, "temp_last", x->temp_last);
	set_num(L, 2, "temp_max_seen", x->temp_hi);
	lua_pushboolean(L, x->vcc_seen);
	lua_setfield(L, 2, "vcc_seen");
	bl_lua_push_sample(L, &x->prev);
	lua_setfield(L, 2, "prev");
	if (!isnan(x->mdv_dv))
		set_num(L, 2, "mdv_peak", x->mdv_peak);
	if (x->reg) {
		lua_pushinteger(L, x->reg_n);
		lua_setfield(L, 2, "reg_n");
		set_num(L, 2, "reg_se", x->reg_se);
		set_num(L, 2, "reg_sae", x->reg_sae);
		set_num(L, 2, "reg_maxe", x->reg_maxe);
	}
}

static int k_ch_watch(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct watch *x = lua_touserdata(L, 3);

	(void)status;
	write_back(L, x);
	return bl_lua_chan_report(L, w);
}

int bl_lua_channel_watch(lua_State *L)
{
	struct lchannel *ch = luaL_checkudata(L, 1, BL_LUA_CHANNEL);
	struct lchan *c = &ch->ld->ch[ch->cell];
	struct bl_wait local, *w;
	struct watch *x;

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	x = lua_newuserdatauv(L, sizeof *x, 0);   /* 3: lives on the stack across the wait */
	read_spec(L, 2, x);
	w = bl_wait_begin(L, &local, "ch:watch");
	if (!ch->ld->d)
		return bl_lua_fail_detached(L, ch->ld);
	bl_lua_bind_task(L, w, c, 1);
	w->ctx = x;
	w->arg[1] = BL_LUA_WATCH;
	bl_lua_chan_wait(c, w);
	if (x->timeout_us)
		bl_wait_after(w, x->timeout_us, BL_ERR_TIMEOUT);
	return bl_wait_yield(L, w, k_ch_watch);
}
