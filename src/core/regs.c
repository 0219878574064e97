/* regs.c - the register table, the named constants and name lookups. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bl.h"
#include "core/regs.h"

#define CELL(addr, name, acc, unit, pon, doc) {name, BL_NSK_CELL, addr, acc, unit, pon, doc}
#define UNIT(addr, name, acc, unit, pon, doc) {name, BL_NSK_UNIT, addr, acc, unit, pon, doc}
#define BOOT(addr, name, acc, unit, pon, doc) {name, BL_NSK_BOOTLOADER, addr, acc, unit, pon, doc}
#define COMMS(addr, name, acc, unit, pon, doc) {name, BL_NSK_COMMS, addr, acc, unit, pon, doc}

/* Power-on values of EEPROM-backed registers are the nominal calibration
 * (zero offsets, unity scales); a real unit has its own. */
const struct bl_reg bl_regs[] = {
	CELL(0x00, "MODE", BL_ACC_RW, BL_UK_MODE, BL_MODE_NO_CELL, "cell mode (state machine)"),
	CELL(0x01, "ERROR", BL_ACC_RW, BL_UK_ERROR, 0, "latched error bits; cleared while IDLE"),
	CELL(0x02, "STATUS", BL_ACC_R | BL_ACC_MEASURED, BL_UK_STATUS, 0, "status bits, recomputed every pass"),
	CELL(0x03, "CURRENT_SETPOINT", BL_ACC_RW, BL_UK_SETPOINT, 256, "operating current setpoint, A = raw/128"),
	CELL(0x04, "REPORT_INTERVAL", BL_ACC_RW, BL_UK_INTERVAL, 0, "stream period (N+1) x 0.1 s, 0 = off"),
	CELL(0x05, "TEMPERATURE", BL_ACC_R | BL_ACC_MEASURED, BL_UK_TEMPERATURE, 25093, "thermistor reading"),
	CELL(0x06, "CURRENT", BL_ACC_R | BL_ACC_MEASURED, BL_UK_CURRENT, 31999, "measured current magnitude"),
	CELL(0x07, "VOLTAGE", BL_ACC_R | BL_ACC_MEASURED, BL_UK_VOLTAGE, 20390, "measured cell voltage"),
	CELL(0x08, "CHARGEL", BL_ACC_RW, BL_UK_CHARGEL, 0, "charge counter, low 16 bits; a write clears it"),
	CELL(0x09, "CHARGEH", BL_ACC_RW, BL_UK_CHARGEH, 0, "charge counter, high 16 bits; a write clears it"),
	CELL(0x0A, "VOLTAGE_LIMIT_CHG", BL_ACC_RW, BL_UK_VOLTAGE, 30584, "over-voltage limit (4.2 V)"),
	CELL(0x0B, "VOLTAGE_LIMIT_DCHG", BL_ACC_RW, BL_UK_VOLTAGE, 20389, "under-voltage limit (2.8 V)"),
	CELL(0x0C, "CURRENT_LIMIT_CHG", BL_ACC_RW, BL_UK_CURRENT, 32000, "charge current limit (4.0 A)"),
	CELL(0x0D, "CURRENT_LIMIT_DCHG", BL_ACC_RW, BL_UK_CURRENT, 32000, "discharge current limit (4.0 A)"),
	CELL(0x0E, "TEMP_LIMIT_CHG", BL_ACC_RW, BL_UK_TEMPERATURE, 25092, "charge temperature limit (45 degC)"),
	CELL(0x0F, "TEMP_LIMIT_DCHG", BL_ACC_RW, BL_UK_TEMPERATURE, 20825, "discharge temperature limit (65 degC)"),
	CELL(0x10, "DUTY", BL_ACC_R | BL_ACC_MEASURED, BL_UK_DUTY, 0, "applied PWM duty, 640 = 100 %"),
	CELL(0x11, "COMPENSATION", BL_ACC_R | BL_ACC_MEASURED, BL_UK_COMPENSATION, 0, "firmware duty trim"),
	CELL(0x12, "CURRENT_PP", BL_ACC_R | BL_ACC_MEASURED, BL_UK_CURRENT, 0, "current peak-to-peak"),
	CELL(0x13, "VOLTAGE_PP", BL_ACC_R | BL_ACC_MEASURED, BL_UK_VOLTAGE, 0, "voltage peak-to-peak"),
	CELL(0x14, "CURRENT_CALIB_OFF", BL_ACC_EE, BL_UK_INT16, 0, "current offset calibration"),
	CELL(0x15, "CURRENT_CALIB_SCA", BL_ACC_EE, BL_UK_RAW, 16384, "current scale calibration (never 0)"),
	CELL(0x16, "TEMP_CALIB_R", BL_ACC_EE, BL_UK_OHMS, 1500, "thermistor divider resistor, ohms"),
	CELL(0x17, "TEMP_CALIB_B", BL_ACC_EE, BL_UK_KELVIN, 3380, "thermistor beta, kelvin"),
	CELL(0x18, "CURRENT_CALIB_PP", BL_ACC_EE, BL_UK_RAW, 16384, "current peak-to-peak scale"),
	CELL(0x19, "VOLTAGE_CALIB_PP", BL_ACC_EE, BL_UK_RAW, 16384, "voltage peak-to-peak scale"),
	CELL(0x1A, "CURR_CALIB_PP_OFF", BL_ACC_EE, BL_UK_INT16, 0, "current peak-to-peak offset"),
	CELL(0x1B, "VOLT_CALIB_PP_OFF", BL_ACC_EE, BL_UK_INT16, 0, "voltage peak-to-peak offset"),
	CELL(0x1C, "CURR_LOWV_SCA", BL_ACC_EE, BL_UK_RAW, 10000, "low-headroom current correction scale"),
	CELL(0x1D, "CURR_LOWV_OFF", BL_ACC_EE, BL_UK_VOLTAGE, 14500, "low-headroom correction threshold"),
	CELL(0x1E, "CURR_LOWV_OFF_SCA", BL_ACC_EE, BL_UK_RAW, 6500, "low-headroom correction slope"),

	UNIT(0x00, "SERIAL_NUM", BL_ACC_EE | BL_ACC_GUARDED, BL_UK_RAW, 0, "serial number, low word"),
	UNIT(0x01, "DEVICE_ID", BL_ACC_EE | BL_ACC_GUARDED, BL_UK_RAW, 0, "serial number, high word"),
	UNIT(0x02, "FIRMWARE_VER", BL_ACC_R | BL_ACC_REFUSED, BL_UK_RAW, BL_FIRMWARE_VERSION, "firmware version"),
	UNIT(0x03, "VCC", BL_ACC_R | BL_ACC_REFUSED | BL_ACC_MEASURED, BL_UK_VCC, 0, "USB supply voltage"),
	UNIT(0x04, "SINE_FREQ", BL_ACC_RW, BL_UK_FREQ, 1, "impedance sine frequency; a write resets the phase"),
	UNIT(0x05, "SYSTEM_TIMER", BL_ACC_R | BL_ACC_REFUSED | BL_ACC_MEASURED, BL_UK_TICKS, 0, "0.1 s ticks since reset"),
	UNIT(0x06, "SETTINGS", BL_ACC_RW, BL_UK_SETTINGS, 0, "settings bits; 0 after a reset"),
	UNIT(0x07, "SINE_OFFSET", BL_ACC_RW, BL_UK_SETPOINT, 16, "impedance DC floor, A = raw/128"),
	UNIT(0x08, "SINE_MAGDIV", BL_ACC_RW, BL_UK_MAGDIV, 2, "impedance sine divider, App = 2/2^raw"),
	UNIT(0x09, "LED_MESSAGE", BL_ACC_RW, BL_UK_LED, 0, "message LED code"),
	UNIT(0x0A, "BOOTLOAD", BL_ACC_W, BL_UK_RAW, 0, "any write resets into the bootloader"),
	UNIT(0x0B, "VOLT_CH_CALIB_OFF", BL_ACC_EE, BL_UK_INT16, 0, "voltage offset in CHARGE mode"),
	UNIT(0x0C, "VOLT_CH_CALIB_SCA", BL_ACC_EE, BL_UK_RAW, 16384, "voltage scale in CHARGE mode (never 0)"),
	UNIT(0x0D, "VOLT_DC_CALIB_OFF", BL_ACC_EE, BL_UK_INT16, 0, "voltage offset in other modes"),
	UNIT(0x0E, "VOLT_DC_CALIB_SCA", BL_ACC_EE, BL_UK_RAW, 16384, "voltage scale in other modes (never 0)"),
	UNIT(0x0F, "LOCK", BL_ACC_RW, BL_UK_LOCK, BL_LOCK_UNLOCKED, "freeze PP, temperature and VCC latching"),
	UNIT(0x10, "ZERO_AMP_THRESH", BL_ACC_EE, BL_UK_CURRENT, 2000, "currents below this read 0"),
	UNIT(0x11, "WATCHDOG_TIMER", BL_ACC_RW, BL_UK_TICKS, BL_WDT_RESET, "watchdog countdown, 0.1 s ticks"),

	BOOT(0x00, "BL_BOOTLOAD", BL_ACC_W, BL_UK_RAW, 0, "bootloader: check the image and start it"),
	BOOT(0x01, "BL_ADDR", BL_ACC_RW, BL_UK_RAW, BL_FLASH_BASE, "bootloader: flash address pointer"),
	BOOT(0x02, "BL_DATA", BL_ACC_RW, BL_UK_RAW, 0, "bootloader: flash byte at the pointer"),

	COMMS(0x00, "LED0", BL_ACC_RW, BL_UK_LED, 0, "cell 0 LED (rewritten by the device)"),
	COMMS(0x01, "LED1", BL_ACC_RW, BL_UK_LED, 0, "cell 1 LED (rewritten by the device)"),
	COMMS(0x02, "LED2", BL_ACC_RW, BL_UK_LED, 0, "cell 2 LED (rewritten by the device)"),
	COMMS(0x03, "LED3", BL_ACC_RW, BL_UK_LED, 0, "cell 3 LED (rewritten by the device)"),
	COMMS(0x04, "PSU", BL_ACC_R | BL_ACC_MEASURED, BL_UK_BOOL, 1, "external supply detected"),
	COMMS(0x05, "PSU_VOLTAGE", BL_ACC_R | BL_ACC_MEASURED, BL_UK_PSU_VOLTAGE, 0, "external supply ADC reading"),
	COMMS(0x06, "PSU_CUTOFF_LOW", BL_ACC_RW, BL_UK_RAW, 523, "supply detection lower bound, ADC counts"),
	COMMS(0x07, "PSU_CUTOFF_HIGH", BL_ACC_RW, BL_UK_RAW, 630, "supply detection upper bound, ADC counts"),
	COMMS(0x08, "PSU_CUTOFF_HYST", BL_ACC_RW, BL_UK_RAW, 5, "supply detection hysteresis, ADC counts"),
};
const size_t bl_regs_count = BL_ARRAY_LEN(bl_regs);

#define K(name, value, group) {name, value, group}

/* Register addresses are added to the constants by name (see
 * bl_const_by_name); this table holds everything else. Names follow the
 * seed Python library so its users find them. */
const struct bl_const bl_consts[] = {
	K("CELL0", BL_NS_CELL0, "namespace"), K("CELL1", BL_NS_CELL1, "namespace"),
	K("CELL2", BL_NS_CELL2, "namespace"), K("CELL3", BL_NS_CELL3, "namespace"),
	K("UNIT", BL_NS_UNIT, "namespace"), K("BOOTLOADER", BL_NS_BOOTLOADER, "namespace"),
	K("COMMS", BL_NS_COMMS, "namespace"),

	K("MODE_NO_CELL", BL_MODE_NO_CELL, "mode"), K("MODE_BACKWARDS", BL_MODE_BACKWARDS, "mode"),
	K("MODE_IDLE", BL_MODE_IDLE, "mode"), K("MODE_CHARGE", BL_MODE_CHARGE, "mode"),
	K("MODE_DISCHARGE", BL_MODE_DISCHARGE, "mode"), K("MODE_IMPEDANCE", BL_MODE_IMPEDANCE, "mode"),
	K("MODE_STOPPED", BL_MODE_STOPPED, "mode"),

	K("ERR_VOLTAGE_LIMIT_CHG", BL_ERR_VOLTAGE_LIMIT_CHG, "error"),
	K("ERR_VOLTAGE_LIMIT_DCHG", BL_ERR_VOLTAGE_LIMIT_DCHG, "error"),
	K("ERR_CURRENT_LIMIT_CHG", BL_ERR_CURRENT_LIMIT_CHG, "error"),
	K("ERR_CURRENT_LIMIT_DCHG", BL_ERR_CURRENT_LIMIT_DCHG, "error"),
	K("ERR_TEMP_LIMIT_CHG", BL_ERR_TEMP_LIMIT_CHG, "error"),
	K("ERR_TEMP_LIMIT_DCHG", BL_ERR_TEMP_LIMIT_DCHG, "error"),
	K("ERR_BACKWARDS", BL_ERR_BACKWARDS, "error"), K("ERR_NO_CELL", BL_ERR_NO_CELL, "error"),
	K("ERR_NO_PSU", BL_ERR_NO_PSU, "error"),
	K("ERR_HW_CURRENT_LIMIT", BL_ERR_HW_CURRENT_LIMIT, "error"),
	K("ERR_LOW_VCC", BL_ERR_LOW_VCC, "error"),

	K("STAT_VOLTAGE_LIMIT_CHG", BL_STAT_VOLTAGE_LIMIT_CHG, "status"),
	K("STAT_VOLTAGE_LIMIT_DCHG", BL_STAT_VOLTAGE_LIMIT_DCHG, "status"),
	K("STAT_CURRENT_LIMIT_CHG", BL_STAT_CURRENT_LIMIT_CHG, "status"),
	K("STAT_CURRENT_LIMIT_DCHG", BL_STAT_CURRENT_LIMIT_DCHG, "status"),
	K("STAT_TEMP_LIMIT_CHG", BL_STAT_TEMP_LIMIT_CHG, "status"),
	K("STAT_TEMP_LIMIT_DCHG", BL_STAT_TEMP_LIMIT_DCHG, "status"),
	K("STAT_BACKWARDS", BL_STAT_BACKWARDS, "status"), K("STAT_NO_CELL", BL_STAT_NO_CELL, "status"),
	K("STAT_NO_PSU", BL_STAT_NO_PSU, "status"),
	K("STAT_NOT_INITIALIZED", BL_STAT_NOT_INITIALIZED, "status"),
	K("STAT_NOT_CALIBRATED", BL_STAT_NOT_CALIBRATED, "status"),
	K("STAT_LOW_VCC", BL_STAT_LOW_VCC, "status"),

	K("SET_TRIM_OUTPUT", BL_SET_TRIM_OUTPUT, "settings"),
	K("SET_VCC_COMPENSATION", BL_SET_VCC_COMPENSATION, "settings"),
	K("SET_WATCHDOG_TIMER", BL_SET_WATCHDOG_TIMER, "settings"),
	K("SET_NO_PSU_DCHG_ENABLE", BL_SET_NO_PSU_DCHG_ENABLE, "settings"),
	K("SET_CH0_HI_RES", BL_SET_CH0_HI_RES, "settings"), K("SET_CH1_HI_RES", BL_SET_CH1_HI_RES, "settings"),
	K("SET_CH2_HI_RES", BL_SET_CH2_HI_RES, "settings"), K("SET_CH3_HI_RES", BL_SET_CH3_HI_RES, "settings"),
	K("SET_SAFETY_DISABLE", BL_SET_SAFETY_DISABLE, "settings"),
	K("SET_DEBUG", BL_SET_DEBUG, "settings"),

	K("LED_OFF", BL_LED_OFF, "led"), K("LED_BLIP", BL_LED_BLIP, "led"),
	K("LED_FLASH_SLOW", BL_LED_FLASH_SLOW, "led"), K("LED_FLASH_FAST", BL_LED_FLASH_FAST, "led"),
	K("LED_ON", BL_LED_ON, "led"), K("LED_PWM", BL_LED_PWM, "led"),
	K("LED_RAMP_UP", BL_LED_RAMP_UP, "led"), K("LED_RAMP_DOWN", BL_LED_RAMP_DOWN, "led"),
	K("LED_SINE", BL_LED_SINE, "led"),

	K("LOCK_UNLOCKED", BL_LOCK_UNLOCKED, "lock"), K("LOCK_LOCKED", BL_LOCK_LOCKED, "lock"),
	K("WDT_RESET", BL_WDT_RESET, "code"), K("COMMAND_ERROR", BL_COMMAND_ERROR, "code"),
};
const size_t bl_consts_count = BL_ARRAY_LEN(bl_consts);

static const char *const mode_names[BL_MODE_COUNT] = {
	"NO_CELL", "BACKWARDS", "IDLE", "CHARGE", "DISCHARGE", "IMPEDANCE", "STOPPED",
};

static const char *const led_names[] = {
	"OFF", "BLIP", "FLASH_SLOW", "FLASH_FAST", "ON", "PWM", "RAMP_UP", "RAMP_DOWN", "SINE",
};

enum bl_ns_kind bl_ns_kind(uint8_t ns)
{
	if (ns <= BL_NS_CELL3)
		return BL_NSK_CELL;
	if (ns == BL_NS_UNIT)
		return BL_NSK_UNIT;
	if (ns == BL_NS_BOOTLOADER)
		return BL_NSK_BOOTLOADER;
	if (ns == BL_NS_COMMS)
		return BL_NSK_COMMS;
	return BL_NSK_NONE;
}

unsigned bl_ns_size(uint8_t ns)
{
	switch (bl_ns_kind(ns)) {
	case BL_NSK_CELL: return BL_CELL_NREGS;
	case BL_NSK_UNIT: return BL_UNIT_NREGS;
	case BL_NSK_BOOTLOADER: return BL_BOOTLOADER_NREGS;
	case BL_NSK_COMMS: return BL_COMMS_NREGS;
	default: return 0;
	}
}

/* Parse a whole string as an unsigned integer (decimal or 0x hex). */
static int parse_uint(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!text || !*text || !(isdigit((unsigned char)text[0])))
		return BL_ERR_NOTFOUND;
	v = strtoul(text, &end, 0);
	if (*end != '\0' || v > max)
		return BL_ERR_NOTFOUND;
	*out = v;
	return BL_OK;
}

int bl_ns_parse(const char *text, uint8_t *ns)
{
	unsigned long v;

	if (!text)
		return BL_ERR_NOTFOUND;
	for (size_t i = 0; i < bl_consts_count; i++) {
		if (strcmp(bl_consts[i].group, "namespace") == 0 &&
		    strcasecmp(bl_consts[i].name, text) == 0) {
			*ns = (uint8_t)bl_consts[i].value;
			return BL_OK;
		}
	}
	if (parse_uint(text, 0xFF, &v) == BL_OK) {
		*ns = (uint8_t)v;
		return BL_OK;
	}
	return BL_ERR_NOTFOUND;
}

const char *bl_ns_name(uint8_t ns, char *buf, size_t n)
{
	switch (bl_ns_kind(ns)) {
	case BL_NSK_CELL: snprintf(buf, n, "CELL%u", ns); break;
	case BL_NSK_UNIT: snprintf(buf, n, "UNIT"); break;
	case BL_NSK_BOOTLOADER: snprintf(buf, n, "BOOTLOADER"); break;
	case BL_NSK_COMMS: snprintf(buf, n, "COMMS"); break;
	default: snprintf(buf, n, "NS_0x%02X", ns); break;
	}
	return buf;
}

const struct bl_reg *bl_reg_by_addr(uint8_t ns, uint8_t addr)
{
	enum bl_ns_kind k = bl_ns_kind(ns);

	for (size_t i = 0; i < bl_regs_count; i++)
		if (bl_regs[i].ns_kind == k && bl_regs[i].addr == addr)
			return &bl_regs[i];
	return NULL;
}

const struct bl_reg *bl_reg_by_name(uint8_t ns, const char *name)
{
	enum bl_ns_kind k = bl_ns_kind(ns);

	if (!name)
		return NULL;
	for (size_t i = 0; i < bl_regs_count; i++)
		if (bl_regs[i].ns_kind == k && strcasecmp(bl_regs[i].name, name) == 0)
			return &bl_regs[i];
	return NULL;
}

int bl_reg_parse(uint8_t ns, const char *text, uint8_t *addr)
{
	const struct bl_reg *r = bl_reg_by_name(ns, text);
	unsigned long v;

	if (r) {
		*addr = r->addr;
		return BL_OK;
	}
	/* Any address 0..127 may be sent, known or not: the device answers
	 * 257 beyond a namespace's size, and that is worth being able to see. */
	if (parse_uint(text, BL_ADDR_MAX, &v) == BL_OK) {
		*addr = (uint8_t)v;
		return BL_OK;
	}
	return BL_ERR_NOTFOUND;
}

const struct bl_const *bl_const_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < bl_consts_count; i++)
		if (strcasecmp(bl_consts[i].name, name) == 0)
			return &bl_consts[i];
	return NULL;
}

const char *bl_mode_name(uint16_t mode)
{
	return mode < BL_MODE_COUNT ? mode_names[mode] : NULL;
}

const char *bl_led_name(uint16_t code)
{
	code &= 0xFF;
	return code < BL_ARRAY_LEN(led_names) ? led_names[code] : NULL;
}

const char *bl_bit_name(enum bl_unit_kind kind, uint16_t bit)
{
	const char *prefix;
	size_t plen;

	switch (kind) {
	case BL_UK_ERROR: prefix = "ERR_"; break;
	case BL_UK_STATUS: prefix = "STAT_"; break;
	case BL_UK_SETTINGS: prefix = "SET_"; break;
	default: return NULL;
	}
	plen = strlen(prefix);
	/* Status bits 0x200/0x400 are NOT_INITIALIZED/NOT_CALIBRATED, while
	 * error bit 0x200 is HW_CURRENT_LIMIT: look in the right group. */
	for (size_t i = 0; i < bl_consts_count; i++)
		if (bl_consts[i].value == bit && strncmp(bl_consts[i].name, prefix, plen) == 0)
			return bl_consts[i].name + plen;
	return NULL;
}

int bl_bits_format(enum bl_unit_kind kind, uint16_t bits, const char *sep,
                   char *buf, size_t n)
{
	int total = 0;

	if (n)
		buf[0] = '\0';
	for (unsigned b = 0; b < 16; b++) {
		uint16_t bit = (uint16_t)(1u << b);
		const char *name;
		char hex[8];
		int w;

		if (!(bits & bit))
			continue;
		name = bl_bit_name(kind, bit);
		if (!name) {
			snprintf(hex, sizeof hex, "0x%04X", bit);
			name = hex;
		}
		w = snprintf(n > (size_t)total ? buf + total : NULL,
		             n > (size_t)total ? n - (size_t)total : 0,
		             "%s%s", total ? sep : "", name);
		total += w;
	}
	return total;
}

uint16_t bl_host_write_value(uint8_t ns, uint8_t addr, uint16_t raw, enum bl_write_rule *rule)
{
	enum bl_ns_kind k = bl_ns_kind(ns);
	enum bl_write_rule r = BL_WRITE_AS_IS;
	const uint16_t loops = BL_SET_TRIM_OUTPUT | BL_SET_VCC_COMPENSATION;

	if (k == BL_NSK_CELL && addr == BL_CELL_CURRENT_SETPOINT && raw > BL_SETPOINT_MAX) {
		raw = BL_SETPOINT_MAX;
		r = BL_WRITE_SETPOINT_CLAMPED;
	} else if (k == BL_NSK_UNIT && addr == BL_UNIT_SETTINGS && (raw & loops)) {
		raw &= (uint16_t)~loops;
		r = BL_WRITE_SETTINGS_MASKED;
	}
	if (rule)
		*rule = r;
	return raw;
}
