/* test_sim_fw_current.c - virtual Batlab: current control, the current
 * pipeline quirks (docs/simulator.md, "Measurement pipeline"), charge
 * counting, IMPEDANCE, LOCK, hi-res, and a full discharge through the
 * firmware as a physical sanity check. */
#include "sim_fw_util.h"
#include "tap.h"

static void open_quiet(struct simh *h, double soc)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	for (int s = 0; s < 4; s++)
		cfg.cells[s].soc = soc;
	sh_open(h, &cfg);
	sh_wait(h, 1.0);
}

static void discharge(struct simh *h, uint8_t c, uint16_t sp)
{
	sh_write(h, c, BL_CELL_CURRENT_SETPOINT, sp);
	sh_write(h, c, BL_CELL_MODE, BL_MODE_DISCHARGE);
}

static void test_ramp(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	discharge(&h, 0, 256);
	uint64_t t0 = h.t - 934;
	sh_wait_until(&h, t0 + 100 * SH_MS);
	long d = sh_read(&h, 0, BL_CELL_DUTY);
	double el = (double)(h.t - 934 - t0) / 1e3;
	ok(labs(d - (long)el) <= 2, "DUTY ramps one count per 1 ms pass (%ld after %.1f ms)", d, el);
	sh_wait_until(&h, t0 + 250 * SH_MS);
	ok(sh_read(&h, 0, BL_CELL_DUTY) < 256, "not there after 250 ms");
	sh_wait_until(&h, t0 + 270 * SH_MS);
	is_int(sh_read(&h, 0, BL_CELL_DUTY), 256, "256 counts (2 A) reached after ~0.26 s");
	is_num(bl_simdev_cell_current(h.d, 0), -2.0, 1e-9, "the cell sees -2.000 A (discharge)");
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 200);
	sh_wait(&h, 0.02);
	d = sh_read(&h, 0, BL_CELL_DUTY);
	ok(d < 256 && d > 200, "ramping down towards a lower setpoint (%ld)", d);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 0);
	is_int(sh_read(&h, 0, BL_CELL_DUTY), 0, "setpoint 0: duty 0 at once");
	ok(bl_simdev_cell_current(h.d, 0) == 0.0, "and no current");

	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 128);
	sh_wait(&h, 1.0);
	is_num(bl_simdev_cell_current(h.d, 1), 1.0, 1e-9, "CHARGE: the relay reverses the current (+1 A)");
	is_int(sh_read(&h, 1, BL_CELL_DUTY), 128, "DUTY 128");
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE);
	is_int(sh_read(&h, 1, BL_CELL_DUTY), 0, "IDLE: DUTY 0 at once");

	sh_write(&h, 2, BL_CELL_CURRENT_SETPOINT, 1000);
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 2, BL_CELL_DUTY), 640, "duty clamped to 640");
	sh_wait(&h, 0.3);
	is_int(sh_read(&h, 2, BL_CELL_DUTY), 0, "the internal duty passed 900: read as an underflow, 0");
	sh_close(&h);
}

static void test_vcc_scaling(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	discharge(&h, 0, 256);
	sh_wait(&h, 2.0);
	is_num(sh_amps(sh_read(&h, 0, BL_CELL_CURRENT)), 2.0, 0.01, "2 A setpoint at VCC 5.00 V reads 2.00 A");

	sh_fault(&h, BL_FAULT_VCC_SAG, -1, 0, 4.75);
	sh_wait(&h, 2.0);
	is_num(sh_amps(sh_read(&h, 0, BL_CELL_CURRENT)), 1.90, 0.01, "at VCC 4.75 V it reads 1.90 A (5 %% low)");
	is_num(bl_simdev_cell_current(h.d, 0), -1.9, 1e-9, "the cell really gets 1.90 A");
	ok(!(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_LOW_VCC), "4.75 V is not LOW_VCC");

	/* The host's current regulation: nudge the setpoint until the
	 * reading is within 10 mA. */
	long sp = 256;
	int passes = 0;
	for (; passes < 40; passes++) {
		double i = sh_amps(sh_read(&h, 0, BL_CELL_CURRENT));
		if (i < 2.0 - 0.01)
			sp++;
		else if (i > 2.0 + 0.01)
			sp--;
		else
			break;
		sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, (uint16_t)sp);
		sh_wait(&h, 0.7);
	}
	ok(passes < 40 && sp >= 268 && sp <= 271, "a host regulation loop reaches 2.00 A at setpoint %ld (%d passes)", sp, passes);

	/* Firmware VCC compensation: duty x 5.0/VCC. */
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_VCC_COMPENSATION);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 2.0);
	long d = sh_read(&h, 1, BL_CELL_DUTY);
	ok(d >= 268 && d <= 271, "VCC_COMPENSATION: DUTY %ld = 256 x 5.0/4.75", d);
	is_num(sh_amps(sh_read(&h, 1, BL_CELL_CURRENT)), 2.0, 0.012, "and the current is 2.00 A");

	/* Firmware trim: one count per change of CURRENT, bounded. */
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_TRIM_OUTPUT);
	sh_wait(&h, 60.0);
	long comp = sh_read(&h, 1, BL_CELL_COMPENSATION);
	ok(comp >= 12 && comp <= 15, "TRIM_OUTPUT: COMPENSATION settles at %ld", comp);
	is_num(sh_amps(sh_read(&h, 1, BL_CELL_CURRENT)), 2.0, 0.02, "and the current is ~2.00 A");
	sh_close(&h);
}

static void test_pipeline_quirks(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	/* Identity calibration: the ADC saturates at 4.092 A. */
	sh_write(&h, 0, BL_CELL_CURRENT_LIMIT_DCHG, 32767);
	discharge(&h, 0, 640);
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, 0, BL_CELL_CURRENT), 32736, "5 A with unity calibration: ADC full scale 32736");
	/* With the default 4 A limit that stops the channel. */
	discharge(&h, 3, 575);
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, 3, BL_CELL_MODE), BL_MODE_STOPPED, "4.49 A against the 4.0 A limit: STOPPED");
	is_int(sh_read(&h, 3, BL_CELL_ERROR), BL_ERR_CURRENT_LIMIT_DCHG, "ERR_CURRENT_LIMIT_DCHG");

	/* A gain calibration above unity pushes the computed value past 32767:
	 * the int16 threshold test then zeroes it. */
	sh_write(&h, 1, BL_CELL_CURRENT_CALIB_SCA, 16000);
	discharge(&h, 1, 520);   /* 4.06 A */
	sh_wait(&h, 2.0);
	sh_write(&h, 1, BL_CELL_CHARGEH, 0);
	sh_wait(&h, 3.0);
	is_int(sh_read(&h, 1, BL_CELL_CURRENT), 0, "computed >= 4.096 A reads 0");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_DISCHARGE, "invisible to the current limit");
	is_int(sh_read(&h, 1, BL_CELL_CHARGEL), 0, "and to the charge counter");
	is_num(bl_simdev_cell_current(h.d, 1), -4.0625, 1e-9, "while 4.06 A really flows");

	/* ZERO_AMP_THRESH. */
	discharge(&h, 2, 26);    /* 0.203 A */
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, 2, BL_CELL_CURRENT), 0, "0.20 A is below the 0.25 A threshold: 0");
	sh_write(&h, BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH, 399);
	sh_wait(&h, 1.0);
	is_num(sh_amps(sh_read(&h, 2, BL_CELL_CURRENT)), 0.203, 0.005, "threshold 0.05 A: reads 0.20 A");

	/* CURRENT is 0 outside the active modes, counted in IMPEDANCE. */
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_IDLE);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, 2, BL_CELL_CURRENT), 0, "IDLE: CURRENT 0");
	sh_close(&h);
}

static void test_charge_counter(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	discharge(&h, 0, 256);
	sh_wait(&h, 1.0);
	/* Go to 10 ms after a ch0 latch, clear, then read CURRENT after each
	 * latch: the counter is their sum. */
	uint64_t cyc = 614400;
	uint64_t next = (h.t / cyc + 1) * cyc + 102400 + 10000;
	sh_wait_until(&h, next);
	sh_write(&h, 0, BL_CELL_CHARGEH, 0);
	const struct bl_cell *c = bl_simdev_cell(h.d, 0);
	double ah0 = c->charge_out_ah;
	uint64_t t0 = next;
	long sum = 0;
	int n = 100;
	for (int k = 1; k <= n; k++) {
		sh_wait_until(&h, next + (uint64_t)k * cyc);
		sum += sh_read(&h, 0, BL_CELL_CURRENT);
	}
	long hi = sh_read(&h, 0, BL_CELL_CHARGEH);
	long lo = sh_read(&h, 0, BL_CELL_CHARGEL);
	long q = hi << 16 | lo;
	is_int(q, sum, "CHARGE = sum of CURRENT over %d latches", n);
	double coul = (double)q * 7.68e-5;
	is_num(coul, 2.0 * n * 0.6144, 0.01 * 2.0 * n * 0.6144, "%.2f C = 2 A x %d x 0.6144 s", coul, n);
	bl_simdev_advance(h.d, h.t);
	double model = (c->charge_out_ah - ah0) * 3600.0;
	(void)t0;
	is_num(coul, model, 0.01 * model, "the counter agrees with the cell model (%.2f C)", model);
	sh_close(&h);
}

static void test_impedance(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	sh_wait(&h, 2.0);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 1);
	long ipp = sh_read(&h, 0, BL_CELL_CURRENT_PP);
	long vpp = sh_read(&h, 0, BL_CELL_VOLTAGE_PP);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 0);
	long idc = sh_read(&h, 0, BL_CELL_CURRENT);
	is_num(sh_amps(ipp), 0.492, 0.01, "CURRENT_PP %.3f A = 63/640 x 5 V (MAGDIV 2)", sh_amps(ipp));
	is_num(sh_amps(idc), 0.37, 0.01, "CURRENT reads the DC mean %.3f A", sh_amps(idc));
	is_int(sh_read(&h, 0, BL_CELL_DUTY), 0, "DUTY not updated in IMPEDANCE");
	const struct bl_cell *c = bl_simdev_cell(h.d, 0);
	double z = bl_cell_impedance(c, 39.0625);
	double zm = sh_volts(vpp) / sh_amps(ipp);
	is_num(zm, z, 0.1 * z, "|Z| = Vpp/Ipp = %.1f mohm (model %.1f)", zm * 1e3, z * 1e3);
	ok(bl_simdev_cell_current(h.d, 0) < -0.3, "IMPEDANCE discharges the cell");

	sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_MAGDIV, 0);
	sh_wait(&h, 1.5);
	is_num(sh_amps(sh_read(&h, 0, BL_CELL_CURRENT_PP)), 1.99, 0.02, "MAGDIV 0: ~2 A pp");
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_MAGDIV, 8);
	sh_wait(&h, 1.5);
	ok(sh_read(&h, 0, BL_CELL_CURRENT_PP) < 100, "MAGDIV 8: no sine");
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_MAGDIV, 2);

	/* An aged cell shows a larger impedance. */
	struct bl_fault f;
	memset(&f, 0, sizeof f);
	f.kind = BL_FAULT_CELL_INSERT;
	f.slot = 1;
	f.cell = *bl_cell_profile("nmc18650-aged");
	bl_simdev_fault(h.d, h.t, &f);
	sh_wait(&h, 1.0);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	sh_wait(&h, 2.0);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 1);
	double z1 = sh_volts(sh_read(&h, 1, BL_CELL_VOLTAGE_PP)) / sh_amps(sh_read(&h, 1, BL_CELL_CURRENT_PP));
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 0);
	ok(z1 > 2.0 * zm, "aged cell |Z| %.1f mohm > 2 x healthy", z1 * 1e3);
	sh_close(&h);
}

static void test_lock(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	discharge(&h, 1, 256);
	sh_wait(&h, 2.0);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 1);
	long pp = sh_read(&h, 0, BL_CELL_CURRENT_PP);
	long vcc = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	long t1 = sh_read(&h, 1, BL_CELL_TEMPERATURE);
	long q1 = sh_read(&h, 1, BL_CELL_CHARGEL);
	long v1 = sh_read(&h, 1, BL_CELL_VOLTAGE);
	sh_fault(&h, BL_FAULT_VCC_SAG, -1, 0, 4.6);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_MAGDIV, 1);
	sh_fault(&h, BL_FAULT_SELF_HEATING, 1, 0, 20.0);
	sh_wait(&h, 5.0);
	is_int(sh_read(&h, 0, BL_CELL_CURRENT_PP), pp, "LOCK freezes CURRENT_PP");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC), vcc, "LOCK freezes VCC");
	is_int(sh_read(&h, 1, BL_CELL_TEMPERATURE), t1, "LOCK freezes TEMPERATURE");
	ok(sh_read(&h, 1, BL_CELL_CHARGEL) != q1, "CHARGE keeps counting");
	ok(sh_read(&h, 1, BL_CELL_VOLTAGE) != v1, "VOLTAGE keeps updating");
	is_num(sh_amps(sh_read(&h, 1, BL_CELL_CURRENT)), 2.0 * 4.6 / 5.0, 0.01, "CURRENT keeps updating (1.84 A at 4.6 V)");
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 0);
	sh_wait(&h, 1.0);
	ok(sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC) > vcc + 1000, "unlocked: VCC follows (4.6 V)");
	ok(sh_read(&h, 1, BL_CELL_TEMPERATURE) < t1, "unlocked: TEMPERATURE follows (warmer)");
	ok(sh_read(&h, 0, BL_CELL_CURRENT_PP) > pp + 1000, "unlocked: PP follows (MAGDIV 1)");
	sh_close(&h);
}

static void test_hires(void)
{
	struct simh h;
	open_quiet(&h, 0.6);
	discharge(&h, 0, 256);
	discharge(&h, 1, 256);
	sh_wait(&h, 2.0);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_CH0_HI_RES | BL_SET_CH1_HI_RES);
	sh_wait(&h, 0.3);
	long v0 = sh_read(&h, 0, BL_CELL_VOLTAGE);
	long t0 = sh_read(&h, 0, BL_CELL_TEMPERATURE);
	long vcc = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	sh_write(&h, 1, BL_CELL_CHARGEH, 0);
	int changes = 0;
	long prev = sh_read(&h, 1, BL_CELL_VOLTAGE);
	for (int i = 0; i < 100; i++) {   /* ~1 s of back-to-back reads */
		sh_wait(&h, 0.0076);
		long v = sh_read(&h, 1, BL_CELL_VOLTAGE);
		if (v != prev)
			changes++;
		prev = v;
	}
	ok(changes >= 9 && changes <= 11, "hi-res ch1 (highest bit wins): %d latches in ~1 s", changes);
	is_int(sh_read(&h, 0, BL_CELL_VOLTAGE), v0, "ch0 frozen");
	is_int(sh_read(&h, 0, BL_CELL_TEMPERATURE), t0, "temperatures frozen");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC), vcc, "VCC frozen");
	sh_write(&h, 1, BL_CELL_CHARGEH, 0);
	sh_wait(&h, 6.144);
	long q = sh_read(&h, 1, BL_CELL_CHARGEH) << 16 | sh_read(&h, 1, BL_CELL_CHARGEL);
	double c = (double)q * 1.28e-5;
	is_num(c, 2.0 * 6.144, 0.3, "hi-res charge: %.2f C with multiplier 1 (60 latches)", c);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, 0);
	sh_wait(&h, 1.0);
	ok(sh_read(&h, 0, BL_CELL_VOLTAGE) != v0, "hi-res off: ch0 measured again");
	sh_close(&h);
}

static void test_full_discharge(void)
{
	struct simh h;
	open_quiet(&h, 1.0);
	sh_write(&h, 0, BL_CELL_CHARGEH, 0);
	discharge(&h, 0, 320);
	uint64_t t0 = h.t;
	uint64_t stop = sh_poll_until(&h, 0, BL_CELL_MODE, BL_MODE_STOPPED, 10.0, 7200);
	double min = (double)(stop - t0) / 60e6;
	ok(stop && min > 55 && min < 60, "full nmc18650 at 2.5 A stopped after %.1f min (55-60)", min);
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG, "on VOLTAGE_LIMIT_DCHG");
	long q = sh_read(&h, 0, BL_CELL_CHARGEH) << 16 | sh_read(&h, 0, BL_CELL_CHARGEL);
	double ah = (double)q * 7.68e-5 / 3600.0;
	ok(ah > 2.25 && ah < 2.5, "counted %.3f Ah", ah);
	const struct bl_cell *c = bl_simdev_cell(h.d, 0);
	ok(c->temp_c > 26.0, "the cell warmed up under load (%.1f degC)", c->temp_c);
	sh_close(&h);
}

int main(void)
{
	plan_lazy();
	test_ramp();
	test_vcc_scaling();
	test_pipeline_quirks();
	test_charge_counter();
	test_impedance();
	test_lock();
	test_hires();
	test_full_discharge();
	return done_testing();
}
