/* units.c - raw <-> engineering-unit conversions (see units.h). */
#include <math.h>

#include "core/units.h"

#define V_FULL BL_VOLTAGE_FULL_SCALE   /* volts at raw 32768 */
#define I_FULL BL_CURRENT_FULL_SCALE   /* amps at raw 32768 */
#define SETPOINT_PER_A 128.0  /* duty counts per amp at VCC 5 V */
#define VCC_NUM 134217.728    /* 2^15 * 4.096 */
#define FREQ_STEP 39.0625     /* Hz per SINE_FREQ count: 10000 / 256 */
#define NTC_R0 10000.0        /* thermistor ohms at 25 degC */
#define NTC_T0 298.15         /* 25 degC in kelvin */
#define KELVIN 273.15
/* Coulombs per charge count with multiplier 1: 4.096/32768 A x 0.1024 s,
 * the firmware's 1024-tick slice (9.765625 Hz). */
#define COULOMB_PER_COUNT (4.096 / 32768.0 / 9.765625)

static uint16_t clamp_u16(double v)
{
	if (!(v > 0.0)) /* also catches NaN */
		return 0;
	if (v >= 65535.0)
		return 65535;
	return (uint16_t)v;
}

double bl_voltage_from_raw(uint16_t raw)
{
	return (int16_t)raw * V_FULL / 32768.0;
}

uint16_t bl_voltage_to_raw(double volts)
{
	double r = round(volts * 32768.0 / V_FULL);

	if (isnan(r))
		return 0;
	if (r > 32767.0)
		r = 32767.0;
	if (r < -32768.0)
		r = -32768.0;
	return (uint16_t)(int16_t)r;
}

double bl_current_from_raw(uint16_t raw)
{
	return (int16_t)raw * I_FULL / 32768.0;
}

uint16_t bl_current_to_raw(double amps)
{
	double r = round(amps * 32768.0 / I_FULL);

	if (!(r > 0.0))
		return 0;
	return r > 32767.0 ? 32767 : (uint16_t)r;
}

double bl_setpoint_from_raw(uint16_t raw)
{
	return raw / SETPOINT_PER_A;
}

uint16_t bl_setpoint_to_raw(double amps)
{
	return clamp_u16(round(amps * SETPOINT_PER_A));
}

double bl_vcc_from_raw(uint16_t raw)
{
	return raw ? VCC_NUM / raw : 0.0;
}

uint16_t bl_vcc_to_raw(double volts)
{
	if (!(volts > 0.0))
		return 0;
	return clamp_u16(round(VCC_NUM / volts));
}

double bl_freq_from_raw(uint16_t raw)
{
	return raw * FREQ_STEP;
}

uint16_t bl_freq_to_raw(double hz)
{
	return clamp_u16(round(hz / FREQ_STEP));
}

double bl_magdiv_from_raw(uint16_t raw)
{
	return raw >= 8 ? 0.0 : 2.0 / (double)(1u << raw);
}

uint16_t bl_magdiv_to_raw(double amps_pp)
{
	if (!(amps_pp > 0.0))
		return 8; /* no sine */
	return clamp_u16(round(1.0 - log2(amps_pp)));
}

double bl_temp_c_from_raw(uint16_t raw, double r, double b)
{
	double rt, inv_t;

	if (raw == 0 || raw >= 32768 || !(r > 0.0) || !(b > 0.0))
		return NAN;
	rt = r / (32768.0 / raw - 1.0);
	inv_t = 1.0 / NTC_T0 + log(rt / NTC_R0) / b;
	return 1.0 / inv_t - KELVIN;
}

double bl_c_to_f(double celsius) { return celsius * 1.8 + 32.0; }
double bl_f_to_c(double fahrenheit) { return (fahrenheit - 32.0) / 1.8; }

uint16_t bl_temp_c_to_raw(double celsius, double r, double b)
{
	double rt, raw;

	if (!(r > 0.0) || !(b > 0.0) || isnan(celsius))
		return 0;
	rt = NTC_R0 * exp(b * (1.0 / (celsius + KELVIN) - 1.0 / NTC_T0));
	raw = round(32768.0 / (r / rt + 1.0));
	return raw > 32767.0 ? 32767 : clamp_u16(raw);
}

uint16_t bl_temp_f_to_raw(double fahrenheit, double r, double b)
{
	return bl_temp_c_to_raw(bl_f_to_c(fahrenheit), r, b);
}

double bl_charge_coulombs(uint32_t raw, int multiplier)
{
	return raw * (double)multiplier * COULOMB_PER_COUNT;
}

double bl_charge_ah(uint32_t raw, int multiplier)
{
	return bl_charge_coulombs(raw, multiplier) / 3600.0;
}

uint32_t bl_charge_from_coulombs(double coulombs, int multiplier)
{
	double r;

	if (multiplier <= 0 || !(coulombs > 0.0))
		return 0;
	r = round(coulombs / (multiplier * COULOMB_PER_COUNT));
	return r >= 4294967295.0 ? UINT32_MAX : (uint32_t)r;
}

uint16_t bl_charge_low(uint32_t raw) { return (uint16_t)(raw & 0xFFFF); }
uint16_t bl_charge_high(uint32_t raw) { return (uint16_t)(raw >> 16); }
uint32_t bl_charge_join(uint16_t high, uint16_t low) { return ((uint32_t)high << 16) | low; }

int bl_hires_channel(uint16_t settings)
{
	/* The firmware tests the bits in channel order each tick, so the
	 * highest set bit is the one that sticks. */
	for (int ch = BL_CELLS - 1; ch >= 0; ch--)
		if (settings & (BL_SET_CH0_HI_RES << ch))
			return ch;
	return -1;
}

int bl_charge_multiplier(uint16_t settings, unsigned cell)
{
	return bl_hires_channel(settings) == (int)cell ? BL_CHARGE_MULT_HIRES : BL_CHARGE_MULT_NORMAL;
}

double bl_interval_from_raw(uint16_t raw)
{
	return raw ? (raw + 1) * 0.1 : 0.0;
}

uint16_t bl_interval_to_raw(double seconds)
{
	double n;

	if (!(seconds > 0.0))
		return 0;
	n = round(seconds * 10.0) - 1.0;
	return n < 1.0 ? 1 : clamp_u16(n);
}

double bl_ticks_from_raw(uint16_t raw)
{
	return raw * 0.1;
}

uint16_t bl_ticks_to_raw(double seconds)
{
	return clamp_u16(round(seconds * 10.0));
}

double bl_psu_pin_from_raw(uint16_t raw)
{
	return raw * 4.096 / 1024.0;
}

int bl_compensation_from_raw(uint16_t raw)
{
	return (int8_t)(raw & 0xFF);
}

double bl_unit_from_raw(enum bl_unit_kind kind, uint16_t raw, double r, double b)
{
	switch (kind) {
	case BL_UK_INT16: return (int16_t)raw;
	case BL_UK_VOLTAGE: return bl_voltage_from_raw(raw);
	case BL_UK_CURRENT: return bl_current_from_raw(raw);
	case BL_UK_SETPOINT: return bl_setpoint_from_raw(raw);
	case BL_UK_TEMPERATURE: return bl_temp_c_from_raw(raw, r, b);
	case BL_UK_VCC: return bl_vcc_from_raw(raw);
	case BL_UK_FREQ: return bl_freq_from_raw(raw);
	case BL_UK_MAGDIV: return bl_magdiv_from_raw(raw);
	case BL_UK_INTERVAL: return bl_interval_from_raw(raw);
	case BL_UK_TICKS: return bl_ticks_from_raw(raw);
	case BL_UK_COMPENSATION: return bl_compensation_from_raw(raw);
	case BL_UK_PSU_VOLTAGE: return bl_psu_pin_from_raw(raw);
	case BL_UK_CHARGEL:
	case BL_UK_CHARGEH:
	default: return raw;
	}
}

uint16_t bl_unit_to_raw(enum bl_unit_kind kind, double value, double r, double b, int *ok)
{
	*ok = 1;
	switch (kind) {
	case BL_UK_INT16:
		if (value < -32768.0 || value > 32767.0 || value != trunc(value))
			break;
		return (uint16_t)(int16_t)value;
	case BL_UK_VOLTAGE: return bl_voltage_to_raw(value);
	case BL_UK_CURRENT: return bl_current_to_raw(value);
	case BL_UK_SETPOINT: return bl_setpoint_to_raw(value);
	case BL_UK_TEMPERATURE: return bl_temp_c_to_raw(value, r, b);
	case BL_UK_VCC: return bl_vcc_to_raw(value);
	case BL_UK_FREQ: return bl_freq_to_raw(value);
	case BL_UK_MAGDIV: return bl_magdiv_to_raw(value);
	case BL_UK_INTERVAL: return bl_interval_to_raw(value);
	case BL_UK_TICKS: return bl_ticks_to_raw(value);
	case BL_UK_COMPENSATION:
	case BL_UK_PSU_VOLTAGE:
	case BL_UK_CHARGEL:
	case BL_UK_CHARGEH:
		break; /* measured or split values: nothing to encode */
	default:
		if (value < 0.0 || value > 65535.0 || value != trunc(value))
			break;
		return (uint16_t)value;
	}
	*ok = 0;
	return 0;
}

const char *bl_unit_symbol(enum bl_unit_kind kind)
{
	switch (kind) {
	case BL_UK_VOLTAGE:
	case BL_UK_VCC:
	case BL_UK_PSU_VOLTAGE: return "V";
	case BL_UK_CURRENT:
	case BL_UK_SETPOINT: return "A";
	case BL_UK_MAGDIV: return "App";
	case BL_UK_TEMPERATURE: return "degC";
	case BL_UK_FREQ: return "Hz";
	case BL_UK_INTERVAL:
	case BL_UK_TICKS: return "s";
	case BL_UK_OHMS: return "ohm";
	case BL_UK_KELVIN: return "K";
	default: return "";
	}
}
