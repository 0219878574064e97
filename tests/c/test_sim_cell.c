/* test_sim_cell.c - physical sanity of the virtual Batlab's cell model,
 * stepped directly in virtual time. */
#include <math.h>
#include <string.h>

#include "core/bl.h"
#include "sim/cell.h"
#include "tap.h"

static struct bl_cell_params prof(const char *name)
{
	const struct bl_cell_params *p = bl_cell_profile(name);
	struct bl_cell_params q;
	memset(&q, 0, sizeof q);
	if (p)
		q = *p;
	return q;
}

static void test_profiles(void)
{
	const char *const *names = bl_cell_profile_names();
	int n = 0;
	for (; names[n]; n++) {
		const struct bl_cell_params *p = bl_cell_profile(names[n]);
		ok(p != NULL, "profile %s resolves", names[n]);
		if (!p)
			continue;
		is_str(p->profile, names[n], "profile %s carries its own name", names[n]);
		char err[128] = "";
		is_int(bl_cell_params_check(p, err, sizeof err), BL_OK, "profile %s is valid %s", names[n], err);
	}
	is_int(n, 6, "six built-in profiles");
	ok(bl_cell_profile("nope") == NULL, "unknown profile is NULL");
	ok(bl_cell_profile(NULL) == NULL, "NULL name is NULL");

	struct bl_cell_params p = prof("nmc18650");
	ok(p.capacity_ah >= 2.4 && p.capacity_ah <= 2.6, "nmc18650 about 2.5 Ah");
	ok(p.r0_ohm >= 0.035 && p.r0_ohm <= 0.05, "nmc18650 R0 35-50 mohm");
	struct bl_cell_params a = prof("nmc18650-aged");
	is_num(a.capacity_ah / p.capacity_ah, 0.8, 0.02, "aged cell has ~80 %% capacity");
	is_num(a.r0_ohm / p.r0_ohm, 3.0, 0.5, "aged cell has ~3x resistance");
	struct bl_cell_params d = prof("nmc18650-damaged");
	ok(d.self_discharge_per_day >= 0.1 && d.self_discharge_per_day <= 0.3, "damaged cell leaks 10-30 %%/day");
	ok(prof("nmc18650-reversed").reversed, "reversed profile is reversed");

	struct bl_cell_params bad = p;
	char err[128] = "";
	bad.soc = 1.5;
	ok(bl_cell_params_check(&bad, err, sizeof err) < 0 && strstr(err, "soc"), "soc 1.5 refused: %s", err);
	bad = p;
	bad.capacity_ah = 0;
	ok(bl_cell_params_check(&bad, err, sizeof err) < 0 && strstr(err, "capacity"), "capacity 0 refused: %s", err);
	bad = p;
	bad.ocv_v[3] = 2.0;
	ok(bl_cell_params_check(&bad, err, sizeof err) < 0 && strstr(err, "ocv"), "decreasing ocv refused: %s", err);
}

static void test_ocv(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	bl_cell_init(&c, &p);
	is_num(bl_cell_ocv(&c, 1.0), 4.19, 0.02, "nmc OCV full ~4.2 V");
	ok(bl_cell_ocv(&c, 0.5) > 3.6 && bl_cell_ocv(&c, 0.5) < 3.9, "nmc OCV half %.3f", bl_cell_ocv(&c, 0.5));
	ok(bl_cell_ocv(&c, -0.02) < bl_cell_ocv(&c, 0.0) - 0.5, "OCV collapses past empty");
	ok(bl_cell_ocv(&c, -1.0) >= 0.0, "collapsed OCV floors at 0 V");
	ok(bl_cell_ocv(&c, 1.02) > bl_cell_ocv(&c, 1.0) + 0.2, "OCV climbs past full");
	ok(bl_cell_ocv(&c, 5.0) <= p.v_max + 1.0 + 1e-9, "overcharge climb is bounded");
	int mono = 1;
	for (int i = 1; i <= 100; i++)
		if (bl_cell_ocv(&c, i / 100.0) < bl_cell_ocv(&c, (i - 1) / 100.0))
			mono = 0;
	ok(mono, "nmc OCV monotonic");

	struct bl_cell_params l = prof("lfp26650");
	bl_cell_init(&c, &l);
	double lo = 9, hi = 0;
	for (int i = 20; i <= 90; i++) {
		double v = bl_cell_ocv(&c, i / 100.0);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	ok(lo >= 3.2 && hi <= 3.35, "LFP plateau %.3f..%.3f V over 20-90 %% SOC", lo, hi);
	ok(l.v_min <= 2.0 + 1e-9 && l.v_max >= 3.6, "LFP window 2.0-3.65 V");
}

/* A full nmc18650 at 2.5 A down to 2.8 V: the 55-60 min check. */
static void test_discharge_time(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.soc = 1.0;
	bl_cell_init(&c, &p);
	double t = 0, dt = 0.5, tmax = 0;
	while (bl_cell_voltage(&c, -2.5) > 2.8 && t < 7200) {
		bl_cell_step(&c, -2.5, dt);
		t += dt;
		if (c.temp_c > tmax)
			tmax = c.temp_c;
	}
	double min = t / 60.0;
	ok(min >= 55.0 && min <= 60.0, "2.5 A from full reaches 2.8 V after %.2f min", min);
	is_num(c.charge_out_ah, 2.5 * t / 3600.0, 1e-9, "charge_out_ah = I t");
	ok(tmax > 26.0 && tmax < 40.0, "1C discharge warms the cell to %.2f degC", tmax);
}

static void test_charge_bookkeeping(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.soc = 0.0;
	bl_cell_init(&c, &p);
	double t = 0, dt = 0.1;
	double cap0 = c.capacity_ah, soc0 = c.soc;
	/* Track capacity changes alongside so the SOC check is exact. */
	double stored = 0;
	while (bl_cell_voltage(&c, 1.0) < 4.2 && t < 4 * 3600) {
		double cap = c.capacity_ah;
		bl_cell_step(&c, 1.0, dt);
		stored += 1.0 * dt / 3600.0 * p.coulombic_eff / cap;
		t += dt;
	}
	double ah = 1.0 * t / 3600.0;
	ok(t < 4 * 3600, "1 A charge from empty reaches 4.2 V (%.1f min)", t / 60);
	ok(fabs(c.charge_in_ah - ah) <= 0.005 * ah, "charge_in_ah %.5f vs I*t %.5f", c.charge_in_ah, ah);
	double gain = c.soc - soc0;
	double want = ah * p.coulombic_eff / cap0;
	ok(fabs(gain - want) <= 0.005 * want, "SOC gain %.5f = Q*eff/cap %.5f", gain, want);
	is_num(gain, stored, 2e-4, "SOC gain matches step-by-step Q*eff/cap (fade included)");
	ok(gain < ah / cap0, "coulombic efficiency: stored < put in");
	ok(c.soc > 0.85 && c.soc < 1.0, "CC phase ends at SOC %.3f", c.soc);
	is_num(c.charge_out_ah, 0.0, 0.0, "nothing booked out during a charge");
}

static double steady_rise(double amps)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	/* A huge capacity keeps SOC (and so resistance) still for hours. */
	p.capacity_ah = 1000;
	p.fade_per_ah = 0;
	p.self_discharge_per_day = 0;
	bl_cell_init(&c, &p);
	for (int i = 0; i < 5 * 3600; i++)
		bl_cell_step(&c, -amps, 1.0);
	double r0, r1;
	bl_cell_resistance(&c, &r0, &r1);
	double want = amps * amps * (r0 + r1) / p.cooling_w_k;
	double got = c.temp_c - p.ambient_c;
	ok(fabs(got - want) <= 0.03 * want, "%.1f A: steady rise %.3f K vs I^2R/h %.3f K", amps, got, want);
	return got;
}

static void test_thermal(void)
{
	double r1 = steady_rise(1.0), r2 = steady_rise(2.0), r3 = steady_rise(3.0);
	ok(r1 < r2 && r2 < r3, "higher current, larger rise (%.2f < %.2f < %.2f)", r1, r2, r3);
	ok(r2 / r1 > 3.0, "rise grows ~ I^2 (x%.2f for 2x current)", r2 / r1);

	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.temp_c = 45;
	bl_cell_init(&c, &p);
	bl_cell_step(&c, 0, 4 * 3600);
	is_num(c.temp_c, 25.0, 0.01, "a warm cell cools to ambient at rest");

	p = prof("nmc18650");
	p.self_heating_w = 1.0;
	bl_cell_init(&c, &p);
	bl_cell_step(&c, 0, 6 * 3600);
	is_num(c.temp_c - 25.0, 1.0 / p.cooling_w_k, 0.01, "self-heating 1 W: rise = P/h");
}

static void test_relaxation(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.capacity_ah = 1000; /* keep OCV still */
	p.fade_per_ah = 0;
	p.self_discharge_per_day = 0;
	bl_cell_init(&c, &p);
	double ocv = bl_cell_ocv(&c, c.soc);
	double v0 = bl_cell_voltage(&c, -2.0);
	double r0;
	bl_cell_resistance(&c, &r0, NULL);
	is_num(ocv - v0, 2.0 * r0, 1e-12, "instant drop = I*R0 at a current step");
	for (int i = 0; i < 600; i++)
		bl_cell_step(&c, -2.0, 1.0);
	double vload = bl_cell_voltage(&c, -2.0);
	ok(vload < v0 - 0.02, "voltage sags further as the RC pair charges (%.4f -> %.4f)", v0, vload);
	double vrest = bl_cell_voltage(&c, 0);
	ok(vrest > vload, "current off: immediate R0 recovery");
	double prev = vrest;
	int rising = 1;
	for (int i = 0; i < 600; i++) {
		bl_cell_step(&c, 0, 1.0);
		double v = bl_cell_voltage(&c, 0);
		if (v < prev - 1e-12)
			rising = 0;
		prev = v;
	}
	ok(rising, "rest: voltage recovers monotonically");
	ocv = bl_cell_ocv(&c, c.soc);
	ok(fabs(prev - ocv) < 0.001, "after 10 min rest within 1 mV of OCV (%.5f vs %.5f)", prev, ocv);

	/* One exact step equals many small ones for the RC pair. */
	struct bl_cell a, b;
	bl_cell_init(&a, &p);
	bl_cell_init(&b, &p);
	bl_cell_step(&a, -1.0, 20.0);
	for (int i = 0; i < 200; i++)
		bl_cell_step(&b, -1.0, 0.1);
	is_num(a.v_rc, b.v_rc, 1e-5, "RC: one 20 s step = 200 x 0.1 s");
}

static void test_fade(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.soc = 1.0;
	bl_cell_init(&c, &p);
	for (int cyc = 0; cyc < 200; cyc++) {
		while (bl_cell_voltage(&c, -2.5) > 2.8)
			bl_cell_step(&c, -2.5, 5.0);
		while (bl_cell_voltage(&c, 2.5) < 4.2)
			bl_cell_step(&c, 2.5, 5.0);
		bl_cell_step(&c, 0, 600);
	}
	double lost = 1.0 - c.capacity_ah / p.capacity_ah;
	ok(lost > 0.03 && lost < 0.2, "200 cycles lose %.1f %% capacity", 100 * lost);
	is_num(lost, p.fade_per_ah * c.throughput_ah, 1e-9, "fade = fade_per_ah x throughput");
	ok(c.throughput_ah > 200 * 2 * 2.0, "throughput counted both ways (%.0f Ah)", c.throughput_ah);
}

static void test_self_discharge(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650-damaged");
	p.soc = 0.8;
	bl_cell_init(&c, &p);
	bl_cell_step(&c, 0, 86400);
	is_num(c.soc, 0.8 - p.self_discharge_per_day, 1e-9, "damaged cell: one day at rest loses %.0f %%", 100 * p.self_discharge_per_day);
	for (int i = 0; i < 10; i++)
		bl_cell_step(&c, 0, 86400);
	is_num(c.soc, 0.0, 0.0, "self-discharge stops at empty");
	ok(bl_cell_voltage(&c, 0) > 2.9, "a leak does not drive the cell past empty");

	p = prof("nmc18650");
	p.soc = 0.5;
	bl_cell_init(&c, &p);
	for (int i = 0; i < 30 * 24; i++)
		bl_cell_step(&c, 0, 3600);
	is_num(c.soc, 0.5 - 30 * p.self_discharge_per_day, 1e-9, "healthy cell: a month at rest");
}

static void test_reversed(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650-reversed");
	p.soc = 0.5;
	bl_cell_init(&c, &p);
	double v = bl_cell_voltage(&c, 0);
	ok(v < -3.0, "reversed cell reads %.3f V", v);
	is_num(v, -bl_cell_ocv(&c, 0.5), 1e-12, "reversed: terminal = -OCV at rest");
	/* A "charge" in slot terms discharges a backwards cell. */
	bl_cell_step(&c, 1.0, 360);
	ok(c.soc < 0.5, "slot charge current discharges a reversed cell (soc %.3f)", c.soc);
}

static void test_limits(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	p.soc = 0.05;
	bl_cell_init(&c, &p);
	/* Deep discharge: any cut-off is reached. */
	double t = 0;
	while (bl_cell_voltage(&c, -0.1) > 1.0 && t < 48 * 3600) {
		bl_cell_step(&c, -0.1, 1.0);
		t += 1.0;
	}
	ok(bl_cell_voltage(&c, -0.1) <= 1.0, "C/25 discharge reaches a 1.0 V cut-off (%.0f s)", t);
	is_num(c.soc, 0.0, 0.0, "SOC clamps at 0");
	ok(c.excess_ah < 0, "over-discharge tracked (%.4f Ah)", c.excess_ah);
	/* Recharging first refills the over-discharge. */
	bl_cell_step(&c, 1.0, 3.6 * 5);
	ok(c.soc >= 0.0 && c.soc < 0.01, "recharge starts from empty");

	p.soc = 0.98;
	bl_cell_init(&c, &p);
	t = 0;
	while (bl_cell_voltage(&c, 0.1) < 4.6 && t < 48 * 3600) {
		bl_cell_step(&c, 0.1, 1.0);
		t += 1.0;
	}
	ok(bl_cell_voltage(&c, 0.1) >= 4.6, "overcharge reaches 4.6 V (%.0f s)", t);
	is_num(c.soc, 1.0, 0.0, "SOC clamps at 1");
}

static void test_huge_step(void)
{
	struct bl_cell a, b;
	struct bl_cell_params p = prof("nmc18650");
	p.soc = 0.2;
	bl_cell_init(&a, &p);
	bl_cell_init(&b, &p);
	bl_cell_step(&a, 1.0, 3600.0);
	for (int i = 0; i < 36000; i++)
		bl_cell_step(&b, 1.0, 0.1);
	ok(isfinite(a.soc) && isfinite(a.v_rc) && isfinite(a.temp_c), "3600 s step stays finite");
	is_num(a.soc, b.soc, 1e-4, "3600 s step: SOC as fine stepping");
	is_num(a.v_rc, b.v_rc, 1e-4, "3600 s step: RC voltage as fine stepping");
	is_num(a.temp_c, b.temp_c, 0.05, "3600 s step: temperature as fine stepping");
	is_num(bl_cell_voltage(&a, 1.0), bl_cell_voltage(&b, 1.0), 0.002, "3600 s step: terminal voltage");

	/* A discharge far past empty in one step: bounded, not NaN. */
	bl_cell_init(&a, &p);
	bl_cell_step(&a, -4.0, 10 * 3600.0);
	double v = bl_cell_voltage(&a, -4.0);
	ok(isfinite(v) && a.soc == 0.0, "10 h at 4 A in one step: soc 0, V %.3f", v);
	bl_cell_init(&a, &p);
	bl_cell_step(&a, 0.0, 1e7);
	ok(isfinite(a.soc) && a.soc >= 0, "1e7 s rest in one step is finite");
}

static void test_determinism(void)
{
	struct bl_cell a, b;
	struct bl_cell_params p = prof("lipo-pouch");
	bl_cell_init(&a, &p);
	bl_cell_init(&b, &p);
	double pattern[] = { 1.0, -2.0, 0.0, 0.5, -0.3 };
	for (int i = 0; i < 5000; i++) {
		double I = pattern[i % 5];
		double dt = 0.1 + (i % 7) * 0.37;
		bl_cell_step(&a, I, dt);
		bl_cell_step(&b, I, dt);
	}
	ok(memcmp(&a, &b, sizeof a) == 0, "same inputs give identical state (bitwise)");
	ok(bl_cell_voltage(&a, 0.7) == bl_cell_voltage(&b, 0.7), "identical voltages");
}

static void test_impedance(void)
{
	struct bl_cell c;
	struct bl_cell_params p = prof("nmc18650");
	bl_cell_init(&c, &p);
	double r0, r1;
	bl_cell_resistance(&c, &r0, &r1);
	is_num(bl_cell_impedance(&c, 0.0), r0 + r1, 1e-12, "|Z(0)| = R0 + R1");
	double z39 = bl_cell_impedance(&c, 39.0625);
	ok(z39 >= r0 && z39 < r0 * 1.01, "|Z(39 Hz)| = %.5f ~ R0 %.5f", z39, r0);
	double w = 2 * 3.14159265358979323846 * 0.001;
	double tau = r1 * p.c1_farad;
	double re = r0 + r1 / (1 + w * w * tau * tau), im = r1 * w * tau / (1 + w * w * tau * tau);
	is_num(bl_cell_impedance(&c, 0.001), sqrt(re * re + im * im), 1e-12, "|Z(1 mHz)| formula");
	struct bl_cell_params cold = p;
	cold.temp_c = 0;
	bl_cell_init(&c, &cold);
	ok(bl_cell_impedance(&c, 39.0625) > z39 * 1.2, "cold cell has higher impedance");
}

/* The remembered resistance factor and thermal decay are answers for
 * exactly the state and step they were worked out for: a state changed
 * behind the model's back, or another step length, gets fresh ones, bit
 * for bit what a cell without the caches computes. */
static void test_caches(void)
{
	struct bl_cell c, fresh;
	struct bl_cell_params p = prof("nmc18650");
	bl_cell_init(&c, &p);
	bl_cell_step(&c, -2.5, 0.6144);
	double r0, r1, f0, f1;
	c.temp_c = 5.0;    /* as an inspector or a test might */
	fresh = c;
	fresh.rf_ok = fresh.heat_ok = false;
	bl_cell_resistance(&c, &r0, &r1);
	bl_cell_resistance(&fresh, &f0, &f1);
	ok(r0 == f0 && r1 == f1, "a changed temperature is not answered from the cache (%.6f, %.6f)", r0, f0);
	ok(r0 > p.r0_ohm * 1.3, "cold: R0 %.4f ohm is well above its 25 degC value", r0);
	bl_cell_step(&c, -2.5, 0.6144);
	bl_cell_step(&fresh, -2.5, 0.6144);
	fresh.rf_ok = fresh.heat_ok = false;
	bl_cell_step(&c, -2.5, 1.5);
	bl_cell_step(&fresh, -2.5, 1.5);
	ok(c.temp_c == fresh.temp_c && c.v_rc == fresh.v_rc && c.soc == fresh.soc,
	   "a new step length gets its own decay: temperature %.9f, v_rc %.9f", c.temp_c, c.v_rc);
	ok(bl_cell_voltage(&c, -2.5) == bl_cell_voltage(&fresh, -2.5), "same terminal voltage");
}

int main(void)
{
	plan_lazy();
	test_profiles();
	test_ocv();
	test_discharge_time();
	test_charge_bookkeeping();
	test_thermal();
	test_relaxation();
	test_fade();
	test_self_discharge();
	test_reversed();
	test_limits();
	test_huge_step();
	test_determinism();
	test_impedance();
	test_caches();
	return done_testing();
}
