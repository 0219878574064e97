/* sim/cell.c - the physical cell model behind each virtual Batlab slot.
 *
 * State is advanced with closed-form solutions for a constant current over
 * the step (linear charge, exponential RC and thermal relaxation), so the
 * caller may use any step size: a 614.4 ms latch period or an hour of rest
 * give the same kind of answer. Nothing here reads a clock or a random
 * source, so identical inputs give identical doubles.
 */
#include "sim/cell.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/bl.h"

/* Outside the table the OCV keeps going, steeply: an over-discharged cell
 * collapses towards 0 V and an over-charged one climbs, so any cut-off a
 * procedure sets is eventually reached. Slopes in volts per unit of SOC. */
#define OVERDISCHARGE_SLOPE 40.0
#define OVERCHARGE_SLOPE    20.0
#define OVERCHARGE_HEADROOM 1.0    /* V above v_max where the climb stops */
#define EXCESS_MAX_SOC      0.2    /* how far past the ends charge is tracked */

/* Resistance grows as the cell gets cold and as it nears empty. The
 * low-SOC rise stands in for the diffusion overpotential that a single RC
 * pair lacks; without it a 1C discharge would run to the last percent. At
 * 50 % SOC the factor is 1.004, at 20 % 1.16, at empty 3. */
#define R_TEMP_COEF     0.015      /* per kelvin below 25 degC (exponential) */
#define R_TEMP_MIN_C    (-30.0)
#define R_TEMP_MAX_C    80.0
#define R_LOWSOC_GAIN   2.0
#define R_LOWSOC_SCALE  0.08

/* Longer steps are split so that the temperature- and SOC-dependent
 * resistance is re-evaluated; each piece is still solved exactly. */
#define MAX_SUBSTEP_S   30.0

#define SECONDS_PER_DAY 86400.0

/* Curves are OCV after long rest. NMC/graphite: a sharp knee below 5 %, a
 * gentle slope through the middle, 4.19 V at full. LFP/graphite: the long
 * flat plateau around 3.3 V that makes LFP state of charge hard to read
 * from voltage. LiPo (LiCoO2-type): close to NMC, a little higher mid-way. */
#define NMC_OCV \
	.ocv_points = 15, \
	.ocv_soc = { 0.00, 0.02, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50, \
	             0.60, 0.70, 0.80, 0.90, 0.95, 1.00 }, \
	.ocv_v =   { 3.00, 3.12, 3.30, 3.45, 3.53, 3.59, 3.65, 3.70, 3.76, \
	             3.84, 3.93, 4.01, 4.08, 4.13, 4.19 }
#define LFP_OCV \
	.ocv_points = 15, \
	.ocv_soc = { 0.00, 0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, \
	             0.70, 0.80, 0.90, 0.95, 0.98, 1.00 }, \
	.ocv_v =   { 2.50, 2.90, 3.10, 3.20, 3.25, 3.27, 3.28, 3.29, 3.30, \
	             3.31, 3.32, 3.33, 3.34, 3.37, 3.45 }
#define LIPO_OCV \
	.ocv_points = 13, \
	.ocv_soc = { 0.00, 0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, \
	             0.70, 0.80, 0.90, 1.00 }, \
	.ocv_v =   { 3.00, 3.35, 3.50, 3.60, 3.68, 3.73, 3.77, 3.81, 3.86, \
	             3.92, 3.99, 4.07, 4.18 }

/* A healthy NMC 18650: thermal mass ~45 g x ~1 J/(g K), ~0.05 W/K to the
 * air in a holder; fade of ~20 % over ~500 full cycles (~2500 Ah moved). */
#define NMC18650 \
	.capacity_ah = 2.5, .soc = 0.5, .r0_ohm = 0.045, .r1_ohm = 0.025, \
	.c1_farad = 2000.0, .coulombic_eff = 0.995, .temp_c = 25.0, \
	.ambient_c = 25.0, .heat_capacity_j_k = 45.0, .cooling_w_k = 0.050, \
	.fade_per_ah = 8.0e-5, .self_discharge_per_day = 0.0007, \
	.self_heating_w = 0.0, .v_min = 2.5, .v_max = 4.2, NMC_OCV

/* The list of names below must stay in the same order (a test checks). */
static const struct bl_cell_params profiles[] = {
	{ .profile = "nmc18650", NMC18650 },
	{ .profile = "lfp26650",
	  .capacity_ah = 3.0, .soc = 0.5, .r0_ohm = 0.025, .r1_ohm = 0.012,
	  .c1_farad = 4000.0, .coulombic_eff = 0.998, .temp_c = 25.0,
	  .ambient_c = 25.0, .heat_capacity_j_k = 85.0, .cooling_w_k = 0.070,
	  .fade_per_ah = 2.5e-5, .self_discharge_per_day = 0.0005,
	  .v_min = 2.0, .v_max = 3.65, LFP_OCV },
	{ .profile = "lipo-pouch",
	  .capacity_ah = 1.0, .soc = 0.5, .r0_ohm = 0.060, .r1_ohm = 0.030,
	  .c1_farad = 800.0, .coulombic_eff = 0.995, .temp_c = 25.0,
	  .ambient_c = 25.0, .heat_capacity_j_k = 20.0, .cooling_w_k = 0.040,
	  .fade_per_ah = 1.5e-4, .self_discharge_per_day = 0.0010,
	  .v_min = 3.0, .v_max = 4.2, LIPO_OCV },
	{ .profile = "nmc18650-aged",
	  .capacity_ah = 2.0, .soc = 0.5, .r0_ohm = 0.135, .r1_ohm = 0.075,
	  .c1_farad = 1500.0, .coulombic_eff = 0.990, .temp_c = 25.0,
	  .ambient_c = 25.0, .heat_capacity_j_k = 45.0, .cooling_w_k = 0.050,
	  .fade_per_ah = 1.5e-4, .self_discharge_per_day = 0.0015,
	  .v_min = 2.5, .v_max = 4.2, NMC_OCV },
	{ .profile = "nmc18650-damaged",
	  .capacity_ah = 2.3, .soc = 0.5, .r0_ohm = 0.060, .r1_ohm = 0.030,
	  .c1_farad = 2000.0, .coulombic_eff = 0.980, .temp_c = 25.0,
	  .ambient_c = 25.0, .heat_capacity_j_k = 45.0, .cooling_w_k = 0.050,
	  .fade_per_ah = 1.0e-4, .self_discharge_per_day = 0.20,
	  .v_min = 2.5, .v_max = 4.2, NMC_OCV },
	{ .profile = "nmc18650-reversed", NMC18650, .reversed = true },
};

#define NPROFILES BL_ARRAY_LEN(profiles)

static const char *const profile_names[NPROFILES + 1] = {
	"nmc18650", "lfp26650", "lipo-pouch", "nmc18650-aged",
	"nmc18650-damaged", "nmc18650-reversed", NULL,
};

const struct bl_cell_params *bl_cell_profile(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NPROFILES; i++)
		if (strcmp(profiles[i].profile, name) == 0)
			return &profiles[i];
	return NULL;
}

const char *const *bl_cell_profile_names(void)
{
	return profile_names;
}

int bl_cell_params_check(const struct bl_cell_params *p, char *err, size_t errlen)
{
	const char *bad = NULL;
	char buf[96];

	if (!(p->capacity_ah > 0 && p->capacity_ah <= 1000))
		bad = "capacity_ah must be > 0 and <= 1000";
	else if (!(p->soc >= 0 && p->soc <= 1))
		bad = "soc must be within 0..1";
	else if (!(p->r0_ohm >= 0 && p->r0_ohm <= 100))
		bad = "r0_ohm must be within 0..100";
	else if (!(p->r1_ohm >= 0 && p->r1_ohm <= 100))
		bad = "r1_ohm must be within 0..100";
	else if (!(p->c1_farad > 0 && p->c1_farad < 1e9))
		bad = "c1_farad must be > 0";
	else if (!(p->coulombic_eff > 0 && p->coulombic_eff <= 1))
		bad = "coulombic_eff must be > 0 and <= 1";
	else if (!(p->temp_c >= -60 && p->temp_c <= 200))
		bad = "temp_c must be within -60..200";
	else if (!(p->ambient_c >= -60 && p->ambient_c <= 200))
		bad = "ambient_c must be within -60..200";
	else if (!(p->heat_capacity_j_k > 0 && p->heat_capacity_j_k < 1e9))
		bad = "heat_capacity_j_k must be > 0";
	else if (!(p->cooling_w_k > 0 && p->cooling_w_k < 1e6))
		bad = "cooling_w_k must be > 0";
	else if (!(p->fade_per_ah >= 0 && p->fade_per_ah < 1))
		bad = "fade_per_ah must be within 0..1";
	else if (!(p->self_discharge_per_day >= 0 && p->self_discharge_per_day <= 1))
		bad = "self_discharge_per_day must be within 0..1";
	else if (!(p->self_heating_w >= 0 && p->self_heating_w <= 1000))
		bad = "self_heating_w must be within 0..1000";
	else if (!(p->v_min >= 0 && p->v_max > p->v_min && p->v_max < 10))
		bad = "need 0 <= v_min < v_max < 10";
	else if (p->ocv_points < 2 || p->ocv_points > BL_OCV_MAX_POINTS) {
		snprintf(buf, sizeof buf, "ocv needs 2..%d points", BL_OCV_MAX_POINTS);
		bad = buf;
	} else if (p->ocv_soc[0] != 0.0 || p->ocv_soc[p->ocv_points - 1] != 1.0) {
		bad = "ocv must start at soc 0 and end at soc 1";
	} else {
		for (int i = 0; i < p->ocv_points && !bad; i++) {
			if (!(p->ocv_v[i] >= 0 && p->ocv_v[i] < 10))
				bad = "ocv voltages must be within 0..10";
			else if (i > 0 && !(p->ocv_soc[i] > p->ocv_soc[i - 1]))
				bad = "ocv soc values must increase strictly";
			else if (i > 0 && p->ocv_v[i] < p->ocv_v[i - 1])
				bad = "ocv voltages must not decrease";
		}
	}
	if (!bad)
		return BL_OK;
	if (err && errlen)
		snprintf(err, errlen, "%s", bad);
	return BL_ERR_ARG;
}

void bl_cell_init(struct bl_cell *c, const struct bl_cell_params *p)
{
	memset(c, 0, sizeof *c);
	c->p = *p;
	c->soc = p->soc < 0 ? 0 : p->soc > 1 ? 1 : p->soc;
	c->temp_c = p->temp_c;
	c->capacity_ah = p->capacity_ah;
}

double bl_cell_ocv(const struct bl_cell *c, double soc)
{
	const struct bl_cell_params *p = &c->p;
	int n = p->ocv_points;

	if (n < 2)
		return n == 1 ? p->ocv_v[0] : 0.0;
	if (soc <= p->ocv_soc[0]) {
		double v = p->ocv_v[0] - (p->ocv_soc[0] - soc) * OVERDISCHARGE_SLOPE;
		return v > 0 ? v : 0;
	}
	if (soc >= p->ocv_soc[n - 1]) {
		double v = p->ocv_v[n - 1] + (soc - p->ocv_soc[n - 1]) * OVERCHARGE_SLOPE;
		double top = p->v_max + OVERCHARGE_HEADROOM;
		if (top < p->ocv_v[n - 1])
			top = p->ocv_v[n - 1];
		return v < top ? v : top;
	}
	/* Tables are short (<= 24 points): a linear scan beats bisection. */
	int i = 1;
	while (i < n - 1 && soc > p->ocv_soc[i])
		i++;
	double s0 = p->ocv_soc[i - 1], s1 = p->ocv_soc[i];
	double t = (soc - s0) / (s1 - s0);
	return p->ocv_v[i - 1] + t * (p->ocv_v[i] - p->ocv_v[i - 1]);
}

/* SOC including charge pushed past either end; drives OCV and resistance. */
static double soc_eff(const struct bl_cell *c)
{
	return c->soc + c->excess_ah / c->capacity_ah;
}

static double r_factor(const struct bl_cell *c)
{
	double t = c->temp_c;
	if (t < R_TEMP_MIN_C)
		t = R_TEMP_MIN_C;
	if (t > R_TEMP_MAX_C)
		t = R_TEMP_MAX_C;
	double f = exp(R_TEMP_COEF * (25.0 - t));
	double s = soc_eff(c);
	f *= 1.0 + R_LOWSOC_GAIN * exp(-(s < 0 ? 0 : s) / R_LOWSOC_SCALE);
	return f;
}

static bool rf_cached(const struct bl_cell *c)
{
	return c->rf_ok && c->rf_temp == c->temp_c && c->rf_soc == c->soc &&
	       c->rf_excess == c->excess_ah && c->rf_cap == c->capacity_ah;
}

/* r_factor of the state now, remembered for the next reader: a step ends
 * here, and the latch's voltage and the next step's start read it. */
static void rf_remember(struct bl_cell *c)
{
	c->rf = r_factor(c);
	c->rf_temp = c->temp_c;
	c->rf_soc = c->soc;
	c->rf_excess = c->excess_ah;
	c->rf_cap = c->capacity_ah;
	c->rf_ok = true;
}

void bl_cell_resistance(const struct bl_cell *c, double *r0, double *r1)
{
	double f = rf_cached(c) ? c->rf : r_factor(c);
	if (r0)
		*r0 = c->p.r0_ohm * f;
	if (r1)
		*r1 = c->p.r1_ohm * f;
}

/* A cell inserted backwards sees the slot's current reversed. */
static double cell_current(const struct bl_cell *c, double slot_current)
{
	return c->p.reversed ? -slot_current : slot_current;
}

double bl_cell_voltage(const struct bl_cell *c, double current_a)
{
	double i = cell_current(c, current_a);
	double r0;
	bl_cell_resistance(c, &r0, NULL);
	double v = bl_cell_ocv(c, soc_eff(c)) + i * r0 + c->v_rc;
	return c->p.reversed ? -v : v;
}

/* Move `dah` amp-hours of stored charge (signed) in or out, spilling into
 * excess_ah past the ends of the SOC range. */
static void move_charge(struct bl_cell *c, double dah)
{
	double cap = c->capacity_ah;
	if (dah > 0) {
		if (c->excess_ah < 0) {
			double take = dah < -c->excess_ah ? dah : -c->excess_ah;
			c->excess_ah += take;
			dah -= take;
		}
		double room = (1.0 - c->soc) * cap;
		if (dah <= room) {
			c->soc += dah / cap;
		} else {
			c->soc = 1.0;
			c->excess_ah += dah - room;
		}
	} else if (dah < 0) {
		double need = -dah;
		if (c->excess_ah > 0) {
			double take = need < c->excess_ah ? need : c->excess_ah;
			c->excess_ah -= take;
			need -= take;
		}
		double have = c->soc * cap;
		if (need <= have) {
			c->soc -= need / cap;
		} else {
			c->soc = 0.0;
			c->excess_ah -= need - have;
		}
	}
	double lim = EXCESS_MAX_SOC * cap;
	if (c->excess_ah > lim)
		c->excess_ah = lim;
	if (c->excess_ah < -lim)
		c->excess_ah = -lim;
	if (c->soc < 0)
		c->soc = 0;
	if (c->soc > 1)
		c->soc = 1;
}

static void substep(struct bl_cell *c, double i, double dt)
{
	const struct bl_cell_params *p = &c->p;
	double r0, r1;
	bl_cell_resistance(c, &r0, &r1);

	/* RC pair: dv/dt = i/C1 - v/(R1 C1), solved exactly for constant i. */
	double v_inf = i * r1;
	double tau = r1 * p->c1_farad;
	if (tau > 0)
		c->v_rc = v_inf + (c->v_rc - v_inf) * exp(-dt / tau);
	else
		c->v_rc = v_inf;

	/* Lumped thermal: C dT/dt = P - h (T - Ta), exact for constant P. */
	double heat = i * i * (r0 + r1) + p->self_heating_w;
	double t_inf = p->ambient_c + heat / p->cooling_w_k;
	/* Steps come in a few lengths (mostly the latch period). */
	double x = -dt * p->cooling_w_k / p->heat_capacity_j_k;
	if (!c->heat_ok || c->heat_x != x) {
		c->heat_x = x;
		c->heat_decay = exp(x);
		c->heat_ok = true;
	}
	c->temp_c = t_inf + (c->temp_c - t_inf) * c->heat_decay;

	/* Charge: the host's amp-hours are booked in full, but only
	 * coulombic_eff of a charge ends up stored. */
	double ah = i * dt / 3600.0;
	if (ah > 0) {
		c->charge_in_ah += ah;
		move_charge(c, ah * p->coulombic_eff);
	} else if (ah < 0) {
		c->charge_out_ah -= ah;
		move_charge(c, ah);
	}
	double moved = fabs(ah);
	c->throughput_ah += moved;

	/* Fade: a fraction of the *nominal* capacity per Ah moved. SOC stays
	 * a fraction, so the stored charge shrinks with the capacity. */
	if (p->fade_per_ah > 0 && moved > 0) {
		c->capacity_ah -= p->fade_per_ah * p->capacity_ah * moved;
		double floor_ah = 0.05 * p->capacity_ah;
		if (c->capacity_ah < floor_ah)
			c->capacity_ah = floor_ah;
	}

	/* Self-discharge: a leak of a fixed fraction of capacity per day. It
	 * drains an overcharge first and never drives the cell past empty. */
	if (p->self_discharge_per_day > 0) {
		double leak = p->self_discharge_per_day * c->capacity_ah * dt / SECONDS_PER_DAY;
		if (c->excess_ah > 0) {
			double take = leak < c->excess_ah ? leak : c->excess_ah;
			c->excess_ah -= take;
			leak -= take;
		}
		if (c->excess_ah >= 0) {
			c->soc -= leak / c->capacity_ah;
			if (c->soc < 0)
				c->soc = 0;
		}
	}
}

void bl_cell_step(struct bl_cell *c, double current_a, double dt_s)
{
	if (!(dt_s > 0))
		return;
	double i = cell_current(c, current_a);
	/* A latch period is one piece (dt / 30 <= 1 rounds up to 1). */
	int n = dt_s <= MAX_SUBSTEP_S ? 1 : (int)ceil(dt_s / MAX_SUBSTEP_S);
	if (n < 1)
		n = 1;
	if (n > 100000)
		n = 100000;
	double h = dt_s / n;
	for (int k = 0; k < n; k++)
		substep(c, i, h);
	rf_remember(c);
}

double bl_cell_impedance(const struct bl_cell *c, double hz)
{
	double r0, r1;
	bl_cell_resistance(c, &r0, &r1);
	double wrc = 2.0 * 3.14159265358979323846 * hz * r1 * c->p.c1_farad;
	/* R1 / (1 + j w R1 C1) = R1 (1 - j wRC) / (1 + (wRC)^2) */
	double d = 1.0 + wrc * wrc;
	double re = r0 + r1 / d;
	double im = -r1 * wrc / d;
	return sqrt(re * re + im * im);
}
