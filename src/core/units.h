/* units.h - raw register values <-> engineering units.
 *
 * Decoders take the 16-bit register value exactly as it came off the wire.
 * Encoders round to the nearest raw count (the seed hosts truncate, which
 * is up to one count off: 2.8 V gives 20388 there, where the firmware's own
 * default is 20389) and clamp to what fits the register. Current encodes
 * with the decoder's exact inverse, 8000 counts/A (the seed used 32767/4.096,
 * one count low: 4.0 A gave 31999 where the firmware default is 32000).
 */
#ifndef BL_UNITS_H
#define BL_UNITS_H

#include <stdint.h>

#include "core/regs.h"

/* Nominal thermistor divider values until a cell's calibration is read. */
#define BL_TEMP_R_NOMINAL 1500.0
#define BL_TEMP_B_NOMINAL 3380.0

/* Full scale of the voltage and current registers (int16 32768 counts). */
#define BL_VOLTAGE_FULL_SCALE 4.5
#define BL_CURRENT_FULL_SCALE 4.096

/* Voltage: VOLTAGE, VOLTAGE_LIMIT_*, VOLTAGE_PP. V = int16(raw) * 4.5 / 32768. */
double bl_voltage_from_raw(uint16_t raw);
uint16_t bl_voltage_to_raw(double volts);          /* clamped to int16 */

/* Current: CURRENT, CURRENT_LIMIT_*, CURRENT_PP, ZERO_AMP_THRESH.
 * A = int16(raw) * 4.096 / 32768. */
double bl_current_from_raw(uint16_t raw);
uint16_t bl_current_to_raw(double amps);           /* A * 8000, 0..32767 */

/* Setpoint: CURRENT_SETPOINT, SINE_OFFSET. A = raw / 128. */
double bl_setpoint_from_raw(uint16_t raw);
uint16_t bl_setpoint_to_raw(double amps);          /* A * 128, 0..65535 */

/* VCC (UNIT 0x03): V = 134217.728 / raw; raw 0 (not measured yet) -> 0 V. */
double bl_vcc_from_raw(uint16_t raw);
uint16_t bl_vcc_to_raw(double volts);

/* Sine frequency: Hz = raw * 10000 / 256. */
double bl_freq_from_raw(uint16_t raw);
uint16_t bl_freq_to_raw(double hz);

/* Sine magnitude divider: A pp = 2 / 2^raw; raw >= 8 gives no sine. */
double bl_magdiv_from_raw(uint16_t raw);
uint16_t bl_magdiv_to_raw(double amps_pp);         /* round(1 - log2(App)), >= 0 */

/* Temperature: NTC (10 kOhm at 25 degC, beta B) on the low side of a
 * divider with resistor R, read ratiometrically as raw/32768.
 * Raw 0 or >= 32768 has no temperature: NAN. */
double bl_temp_c_from_raw(uint16_t raw, double r, double b);
uint16_t bl_temp_c_to_raw(double celsius, double r, double b);
uint16_t bl_temp_f_to_raw(double fahrenheit, double r, double b);
double bl_c_to_f(double celsius);
double bl_f_to_c(double fahrenheit);

/* Charge counter (CHARGEH:CHARGEL). The multiplier is 6 normally and 1 for
 * the channel that is in hi-res mode. */
#define BL_CHARGE_MULT_NORMAL 6
#define BL_CHARGE_MULT_HIRES 1
double bl_charge_coulombs(uint32_t raw, int multiplier);
double bl_charge_ah(uint32_t raw, int multiplier);
uint32_t bl_charge_from_coulombs(double coulombs, int multiplier); /* rounded */
uint16_t bl_charge_low(uint32_t raw);
uint16_t bl_charge_high(uint32_t raw);
uint32_t bl_charge_join(uint16_t high, uint16_t low);
/* Which multiplier applies to `cell` given the UNIT SETTINGS value: 1 only
 * for the one hi-res channel (the highest set hi-res bit wins). */
int bl_charge_multiplier(uint16_t settings, unsigned cell);
/* The hi-res channel of a SETTINGS value, or -1 for none. */
int bl_hires_channel(uint16_t settings);

/* Report interval: stream period (raw + 1) * 0.1 s; raw 0 = streams off. */
double bl_interval_from_raw(uint16_t raw);         /* seconds, 0 = off */
uint16_t bl_interval_to_raw(double seconds);       /* nearest period, >= 1; 0 s -> 0 (off) */

/* Timers (SYSTEM_TIMER, WATCHDOG_TIMER): 0.1 s per count. */
double bl_ticks_from_raw(uint16_t raw);
uint16_t bl_ticks_to_raw(double seconds);          /* rounded, 0..65535 */

/* COMMS PSU_VOLTAGE: pin volts = raw * 4.096 / 1024. */
double bl_psu_pin_from_raw(uint16_t raw);

/* COMPENSATION: int8 sign-extended. */
int bl_compensation_from_raw(uint16_t raw);

/* Generic: a raw value of a register kind in engineering units. Kinds with
 * no scale (codes, bit fields, raw counts) return the integer (signed for
 * BL_UK_INT16). Temperature uses r and b. */
double bl_unit_from_raw(enum bl_unit_kind kind, uint16_t raw, double r, double b);
/* Engineering units -> raw for a register kind; BL_ERR_ARG through *ok = 0
 * for kinds that cannot be encoded (charge halves, bit fields accept the
 * integer). */
uint16_t bl_unit_to_raw(enum bl_unit_kind kind, double value, double r, double b, int *ok);
/* The SI-ish unit symbol of a kind ("V", "A", "degC", "Hz", "s", "") */
const char *bl_unit_symbol(enum bl_unit_kind kind);

#endif
