/* test_units.c - every conversion against the firmware's reference points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/regs.h"
#include "core/units.h"
#include "tap.h"

/* Temperature reference points of the firmware's NTC table, R = 1500,
 * B = 3380. */
static const struct { int c; unsigned raw; } temp_table[] = {
	{0, 31114}, {10, 30277}, {20, 29163}, {25, 28494}, {30, 27750}, {40, 26044},
	{45, 25092}, {50, 24084}, {60, 21940}, {65, 20826}, {80, 17460},
};

static void test_temperature(void)
{
	for (size_t i = 0; i < sizeof temp_table / sizeof temp_table[0]; i++) {
		int c = temp_table[i].c;
		unsigned want = temp_table[i].raw;
		unsigned got = bl_temp_c_to_raw(c, 1500, 3380);
		double back = bl_temp_c_from_raw((uint16_t)want, 1500, 3380);
		/* one raw count is worth this many degrees around that point */
		double per_count = fabs(bl_temp_c_from_raw((uint16_t)(want + 1), 1500, 3380) - back);

		ok(abs((int)got - (int)want) <= 1, "%d degC encodes to %u (table %u)", c, got, want);
		ok(fabs(back - c) <= per_count, "raw %u decodes to %.3f degC (table %d)", want, back, c);
	}
	/* every whole degree 0..80 round-trips within one count */
	int worst = 0;
	for (int c = 0; c <= 80; c++) {
		uint16_t raw = bl_temp_c_to_raw(c, 1500, 3380);
		uint16_t again = bl_temp_c_to_raw(bl_temp_c_from_raw(raw, 1500, 3380), 1500, 3380);
		if (abs((int)again - (int)raw) > worst)
			worst = abs((int)again - (int)raw);
	}
	is_int(worst, 0, "0..80 degC round trip through raw is exact");
	/* another thermistor: round trip stays within 0.05 degC */
	double worst_c = 0;
	for (int c = -20; c <= 90; c++) {
		double back = bl_temp_c_from_raw(bl_temp_c_to_raw(c, 1000, 3950), 1000, 3950);
		if (fabs(back - c) > worst_c)
			worst_c = fabs(back - c);
	}
	ok(worst_c < 0.05, "R=1000 B=3950 round trip within 0.05 degC (worst %.4f)", worst_c);
	is_num(bl_c_to_f(bl_temp_c_from_raw(bl_temp_c_to_raw(25, 1500, 3380), 1500, 3380)), 77.0, 0.01,
	       "25 degC reads 77 degF");
	is_int(bl_temp_f_to_raw(113.0, 1500, 3380), 25092, "113 degF (45 degC) encodes to 25092");
	is_num(bl_c_to_f(-40), -40, 1e-12, "-40 degC = -40 degF");
	is_num(bl_f_to_c(212), 100, 1e-12, "212 degF = 100 degC");
	ok(isnan(bl_temp_c_from_raw(0, 1500, 3380)), "raw 0 has no temperature");
	ok(isnan(bl_temp_c_from_raw(32768, 1500, 3380)), "raw 32768 has no temperature");
	ok(bl_temp_c_from_raw(32736, 1500, 3380) < -60, "open thermistor (32736) reads very cold");
	ok(bl_temp_c_from_raw(25092, 1500, 3380) > bl_temp_c_from_raw(25093, 1500, 3380),
	   "temperature falls as raw rises");
}

static void test_voltage(void)
{
	uint16_t r42 = bl_voltage_to_raw(4.2);
	int bad = -1;

	ok(r42 == 30583 || r42 == 30584, "4.2 V encodes to %u (30583 or 30584)", r42);
	is_int(bl_voltage_to_raw(2.8), 20389, "2.8 V encodes to 20389");
	is_num(bl_voltage_from_raw(30584), 4.2, 1e-4, "30584 decodes to 4.2000 V");
	is_num(bl_voltage_from_raw(20389), 2.8, 1e-4, "20389 decodes to 2.8000 V");
	is_num(bl_voltage_from_raw(13107), 1.8, 1e-4, "13107 is 1.800 V (cell-present floor)");
	is_num(bl_voltage_from_raw(32700), 4.4907, 1e-4, "32700 is 4.4907 V (cell-present ceiling)");
	is_num(bl_voltage_from_raw((uint16_t)-73), -0.0100, 1e-4, "-73 is -0.010 V (backwards threshold)");
	is_num(bl_voltage_from_raw(0x8000), -4.5, 1e-12, "0x8000 is -4.5 V (signed)");
	is_num(bl_voltage_from_raw(0x7FFF), 4.49986, 1e-5, "0x7FFF is +4.49986 V");
	is_int(bl_voltage_to_raw(9.0), 0x7FFF, "9 V clamps to 0x7FFF");
	is_int(bl_voltage_to_raw(-9.0), 0x8000, "-9 V clamps to 0x8000");
	is_int(bl_voltage_to_raw(NAN), 0, "NaN encodes to 0");
	for (unsigned raw = 0; raw <= 0xFFFF; raw++)
		if (bl_voltage_to_raw(bl_voltage_from_raw((uint16_t)raw)) != raw) {
			bad = (int)raw;
			break;
		}
	is_int(bad, -1, "every voltage raw value 0..65535 round-trips");
}

static void test_current(void)
{
	int bad = -1;

	is_num(bl_current_from_raw(8000), 1.0, 1e-12, "8000 is 1.000 A");
	is_num(bl_current_from_raw(32000), 4.0, 1e-12, "32000 is 4.000 A (default limit)");
	is_num(bl_current_from_raw(32736), 4.092, 1e-12, "32736 is 4.092 A (largest reading)");
	is_num(bl_current_from_raw(2000), 0.25, 1e-12, "2000 is 0.25 A (ZERO_AMP_THRESH default)");
	is_num(bl_current_from_raw(31999), 3.999875, 1e-9, "31999 is 3.999875 A (placeholder)");
	is_num(bl_current_from_raw(0x8000), -4.096, 1e-12, "bit 15 decodes as negative (int16)");
	is_int(bl_current_to_raw(4.0), 32000, "4.0 A encodes to 32000");
	is_int(bl_current_to_raw(0.05), 400, "0.05 A encodes to 400");
	is_int(bl_current_to_raw(4.2), 32767, "4.2 A clamps to 32767");
	is_int(bl_current_to_raw(-1.0), 0, "negative current encodes to 0");
	for (unsigned raw = 0; raw <= 0x7FFF; raw++)
		if (bl_current_to_raw(bl_current_from_raw((uint16_t)raw)) != raw) {
			bad = (int)raw;
			break;
		}
	is_int(bad, -1, "every current raw value 0..32767 round-trips");
}

static void test_setpoint(void)
{
	int bad = -1;

	is_num(bl_setpoint_from_raw(256), 2.0, 1e-12, "setpoint 256 is 2.0 A");
	is_num(bl_setpoint_from_raw(575), 4.4921875, 1e-12, "setpoint 575 is 4.49 A");
	is_num(bl_setpoint_from_raw(640), 5.0, 1e-12, "setpoint 640 is 5.0 A (100 %% duty)");
	is_num(bl_setpoint_from_raw(257), 2.0078125, 1e-12, "setpoint 257 is 2.008 A (a real value, not an error)");
	is_num(bl_setpoint_from_raw(16), 0.125, 1e-12, "SINE_OFFSET 16 is 0.125 A");
	is_int(bl_setpoint_to_raw(2.0), 256, "2.0 A encodes to 256");
	is_int(bl_setpoint_to_raw(0.5), 64, "0.5 A encodes to 64");
	is_int(bl_setpoint_to_raw(-1), 0, "negative encodes to 0");
	is_int(bl_setpoint_to_raw(1e9), 65535, "huge clamps to 65535");
	for (unsigned raw = 0; raw <= 640; raw++)
		if (bl_setpoint_to_raw(bl_setpoint_from_raw((uint16_t)raw)) != raw) {
			bad = (int)raw;
			break;
		}
	is_int(bad, -1, "every setpoint 0..640 round-trips");
}

static void test_vcc(void)
{
	is_int(bl_vcc_to_raw(5.00), 26844, "VCC 5.00 V encodes to 26844");
	is_num(bl_vcc_from_raw(26844), 5.00, 0.0005, "26844 decodes to 5.00 V");
	is_int(bl_vcc_to_raw(4.25), 31581, "VCC 4.25 V encodes to 31581");
	is_num(bl_vcc_from_raw(31581), 4.25, 0.0005, "31581 decodes to 4.25 V");
	ok(bl_vcc_from_raw(31582) < 4.25, "31582 is below 4.25 V (LOW_VCC side)");
	is_num(bl_vcc_from_raw(0), 0.0, 0, "raw 0 (not measured yet) is 0 V");
	is_int(bl_vcc_to_raw(0), 0, "0 V encodes to 0");
}

static void test_sine(void)
{
	is_num(bl_freq_from_raw(1), 39.0625, 1e-12, "SINE_FREQ 1 is 39.0625 Hz");
	is_num(bl_freq_from_raw(27), 1054.6875, 1e-12, "SINE_FREQ 27 is 1054.6875 Hz");
	is_int(bl_freq_to_raw(39.0625), 1, "39.0625 Hz encodes to 1");
	is_int(bl_freq_to_raw(1054.6875), 27, "1054.6875 Hz encodes to 27");
	int bad = -1;
	for (unsigned raw = 0; raw <= 255; raw++)
		if (bl_freq_to_raw(bl_freq_from_raw((uint16_t)raw)) != raw) {
			bad = (int)raw;
			break;
		}
	is_int(bad, -1, "every SINE_FREQ 0..255 round-trips");

	static const double app[] = {2.0, 1.0, 0.5, 0.25};
	for (unsigned raw = 0; raw < 4; raw++) {
		is_num(bl_magdiv_from_raw((uint16_t)raw), app[raw], 1e-12, "SINE_MAGDIV %u is %.2f App", raw, app[raw]);
		is_int(bl_magdiv_to_raw(app[raw]), raw, "%.2f App encodes to SINE_MAGDIV %u", app[raw], raw);
	}
	is_num(bl_magdiv_from_raw(8), 0.0, 0, "SINE_MAGDIV 8 gives no sine");
	is_int(bl_magdiv_to_raw(0), 8, "0 App encodes to 8 (no sine)");
}

static void test_charge(void)
{
	is_num(bl_charge_ah(46875000u, 6), 1.0, 1e-12, "46,875,000 counts is 1 Ah (x6)");
	is_int(bl_charge_from_coulombs(3600.0, 6), 46875000, "1 Ah encodes to 46,875,000 counts (x6)");
	is_num(bl_charge_coulombs(1, 6), 7.68e-5, 1e-15, "one count is 7.68e-5 C (x6)");
	is_num(bl_charge_coulombs(1, 1), 1.28e-5, 1e-15, "one count is 1.28e-5 C (hi-res x1)");
	is_num(bl_charge_ah(281250000u, 1), 1.0, 1e-12, "281,250,000 counts is 1 Ah (hi-res x1)");
	is_num(bl_charge_coulombs(0xFFFFFFFFu, 6), 4294967295.0 * 7.68e-5, 1e-3, "full 32-bit range (no wrap)");
	ok(bl_charge_ah(0xFFFFFFFFu, 6) > 91.6 && bl_charge_ah(0xFFFFFFFFu, 6) < 91.7, "overflow at about 91.6 Ah");
	is_int(bl_charge_join(0x0001, 0x0002), 0x00010002, "join high:low");
	is_int(bl_charge_high(0xABCD1234u), 0xABCD, "high half");
	is_int(bl_charge_low(0xABCD1234u), 0x1234, "low half");
	is_int(bl_charge_multiplier(0, 0), 6, "multiplier 6 without hi-res");
	is_int(bl_charge_multiplier(BL_SET_CH0_HI_RES, 0), 1, "CH0 hi-res: cell 0 x1");
	is_int(bl_charge_multiplier(BL_SET_CH0_HI_RES, 1), 6, "CH0 hi-res: cell 1 stays x6");
	is_int(bl_charge_multiplier(BL_SET_CH2_HI_RES, 2), 1, "CH2 hi-res: cell 2 x1");
	is_int(bl_hires_channel(BL_SET_CH0_HI_RES | BL_SET_CH1_HI_RES), 1, "several hi-res bits: the highest wins");
	is_int(bl_charge_multiplier(BL_SET_CH0_HI_RES | BL_SET_CH1_HI_RES, 0), 6, "cell 0 loses to cell 1");
	is_int(bl_hires_channel(BL_SET_WATCHDOG_TIMER), -1, "no hi-res bit: no channel");
}

static void test_timers(void)
{
	is_num(bl_interval_from_raw(9), 1.0, 1e-12, "REPORT_INTERVAL 9 is a 1.0 s period");
	is_num(bl_interval_from_raw(1), 0.2, 1e-12, "REPORT_INTERVAL 1 is 0.2 s");
	is_num(bl_interval_from_raw(10), 1.1, 1e-12, "REPORT_INTERVAL 10 is 1.1 s");
	is_num(bl_interval_from_raw(0), 0.0, 0, "REPORT_INTERVAL 0 is off");
	is_int(bl_interval_to_raw(1.0), 9, "1.0 s period encodes to 9");
	is_int(bl_interval_to_raw(0.2), 1, "0.2 s period encodes to 1");
	is_int(bl_interval_to_raw(0.05), 1, "periods below 0.2 s encode to the fastest, 1");
	is_int(bl_interval_to_raw(0), 0, "0 s encodes to off");
	is_num(bl_ticks_from_raw(BL_WDT_RESET), 25.5, 1e-12, "watchdog 255 is 25.5 s");
	is_int(bl_ticks_to_raw(25.5), 255, "25.5 s encodes to 255 ticks");
	is_num(bl_ticks_from_raw(65535), 6553.5, 1e-9, "SYSTEM_TIMER wraps after 109 min");
}

static void test_misc(void)
{
	is_num(bl_psu_pin_from_raw(1024), 4.096, 1e-12, "PSU_VOLTAGE 1024 is 4.096 V at the pin");
	is_int(bl_compensation_from_raw(0x00FF), -1, "COMPENSATION 0xFF is -1");
	is_int(bl_compensation_from_raw(99), 99, "COMPENSATION 99 is +99");
	is_int(bl_compensation_from_raw(0xFF9D), -99, "COMPENSATION sign-extended -99");

	int okk;
	is_int(bl_unit_to_raw(BL_UK_VOLTAGE, 4.2, 0, 0, &okk), bl_voltage_to_raw(4.2), "generic voltage encoder");
	is_int(okk, 1, "generic encoder succeeds");
	is_int(bl_unit_to_raw(BL_UK_TEMPERATURE, 45, 1500, 3380, &okk), 25092, "generic temperature encoder");
	bl_unit_to_raw(BL_UK_CHARGEL, 1, 0, 0, &okk);
	is_int(okk, 0, "charge halves cannot be encoded from units");
	bl_unit_to_raw(BL_UK_RAW, 70000, 0, 0, &okk);
	is_int(okk, 0, "a raw value above 65535 is refused");
	bl_unit_to_raw(BL_UK_RAW, 1.5, 0, 0, &okk);
	is_int(okk, 0, "a fractional raw value is refused");
	is_int(bl_unit_to_raw(BL_UK_INT16, -5, 0, 0, &okk), 0xFFFB, "INT16 -5 encodes two's complement");
	is_num(bl_unit_from_raw(BL_UK_INT16, 0xFFFB, 0, 0), -5, 0, "INT16 decodes signed");
	is_num(bl_unit_from_raw(BL_UK_CURRENT, 8000, 0, 0), 1.0, 1e-12, "generic current decoder");
	is_num(bl_unit_from_raw(BL_UK_TEMPERATURE, 28494, 1500, 3380), 25.0, 0.01, "generic temperature decoder");
	is_str(bl_unit_symbol(BL_UK_VOLTAGE), "V", "voltage symbol");
	is_str(bl_unit_symbol(BL_UK_TEMPERATURE), "degC", "temperature symbol");
}

static void test_names(void)
{
	char buf[160];

	is_str(bl_mode_name(BL_MODE_CHARGE), "CHARGE", "mode 3 is CHARGE");
	is_str(bl_mode_name(BL_MODE_STOPPED), "STOPPED", "mode 6 is STOPPED");
	is_str(bl_mode_name(BL_MODE_NO_CELL), "NO_CELL", "mode 0 is NO_CELL");
	ok(bl_mode_name(7) == NULL, "mode 7 has no name");
	is_str(bl_led_name(BL_LED_SINE), "SINE", "LED 8 is SINE");
	is_str(bl_led_name(0x0C05), "PWM", "LED code ignores the PWM level byte");

	bl_bits_format(BL_UK_ERROR, 0x0103, "|", buf, sizeof buf);
	is_str(buf, "VOLTAGE_LIMIT_CHG|VOLTAGE_LIMIT_DCHG|NO_PSU", "every set ERROR bit is named, not just the lowest");
	bl_bits_format(BL_UK_ERROR, 0x0A00, ",", buf, sizeof buf);
	is_str(buf, "HW_CURRENT_LIMIT,LOW_VCC", "ERROR 0x200 is HW_CURRENT_LIMIT");
	bl_bits_format(BL_UK_STATUS, 0x0E80, "|", buf, sizeof buf);
	is_str(buf, "NO_CELL|NOT_INITIALIZED|NOT_CALIBRATED|LOW_VCC", "STATUS bits 0x200/0x400 are INIT/CALIB");
	bl_bits_format(BL_UK_STATUS, 0x1000, "|", buf, sizeof buf);
	is_str(buf, "0x1000", "an unnamed bit prints as hex");
	bl_bits_format(BL_UK_ERROR, 0, "|", buf, sizeof buf);
	is_str(buf, "", "no bits, empty string");
	bl_bits_format(BL_UK_SETTINGS, 0xC084, "|", buf, sizeof buf);
	is_str(buf, "WATCHDOG_TIMER|CH3_HI_RES|SAFETY_DISABLE|DEBUG", "SETTINGS bits");
	int need = bl_bits_format(BL_UK_ERROR, 0x0FFF, "|", buf, 8);
	ok(need > 8 && strlen(buf) == 7, "a short buffer truncates and reports the full length (%d)", need);
	char all[400];
	bl_bits_format(BL_UK_ERROR, 0xFFFF, "|", all, sizeof all);
	is_int(bl_bits_format(BL_UK_ERROR, 0xFFFF, "|", NULL, 0), (long long)strlen(all), "length query with no buffer");
}

int main(void)
{
	plan_lazy();
	test_temperature();
	test_voltage();
	test_current();
	test_setpoint();
	test_vcc();
	test_sine();
	test_charge();
	test_timers();
	test_misc();
	test_names();
	return done_testing();
}
