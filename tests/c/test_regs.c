/* test_regs.c - the register table against the firmware's register map,
 * lookups, codes. */
#include <string.h>
#include <strings.h>

#include "core/bl.h"
#include "core/proto.h"
#include "core/regs.h"
#include "tap.h"

/* An independent transcription of the firmware's register map: namespace
 * kind, address, name. The table in src/core/regs.c must hold exactly
 * these. */
static const struct { int nsk; int addr; const char *name; } spec[] = {
	{BL_NSK_CELL, 0x00, "MODE"}, {BL_NSK_CELL, 0x01, "ERROR"}, {BL_NSK_CELL, 0x02, "STATUS"},
	{BL_NSK_CELL, 0x03, "CURRENT_SETPOINT"}, {BL_NSK_CELL, 0x04, "REPORT_INTERVAL"},
	{BL_NSK_CELL, 0x05, "TEMPERATURE"}, {BL_NSK_CELL, 0x06, "CURRENT"}, {BL_NSK_CELL, 0x07, "VOLTAGE"},
	{BL_NSK_CELL, 0x08, "CHARGEL"}, {BL_NSK_CELL, 0x09, "CHARGEH"},
	{BL_NSK_CELL, 0x0A, "VOLTAGE_LIMIT_CHG"}, {BL_NSK_CELL, 0x0B, "VOLTAGE_LIMIT_DCHG"},
	{BL_NSK_CELL, 0x0C, "CURRENT_LIMIT_CHG"}, {BL_NSK_CELL, 0x0D, "CURRENT_LIMIT_DCHG"},
	{BL_NSK_CELL, 0x0E, "TEMP_LIMIT_CHG"}, {BL_NSK_CELL, 0x0F, "TEMP_LIMIT_DCHG"},
	{BL_NSK_CELL, 0x10, "DUTY"}, {BL_NSK_CELL, 0x11, "COMPENSATION"},
	{BL_NSK_CELL, 0x12, "CURRENT_PP"}, {BL_NSK_CELL, 0x13, "VOLTAGE_PP"},
	{BL_NSK_CELL, 0x14, "CURRENT_CALIB_OFF"}, {BL_NSK_CELL, 0x15, "CURRENT_CALIB_SCA"},
	{BL_NSK_CELL, 0x16, "TEMP_CALIB_R"}, {BL_NSK_CELL, 0x17, "TEMP_CALIB_B"},
	{BL_NSK_CELL, 0x18, "CURRENT_CALIB_PP"}, {BL_NSK_CELL, 0x19, "VOLTAGE_CALIB_PP"},
	{BL_NSK_CELL, 0x1A, "CURR_CALIB_PP_OFF"}, {BL_NSK_CELL, 0x1B, "VOLT_CALIB_PP_OFF"},
	{BL_NSK_CELL, 0x1C, "CURR_LOWV_SCA"}, {BL_NSK_CELL, 0x1D, "CURR_LOWV_OFF"},
	{BL_NSK_CELL, 0x1E, "CURR_LOWV_OFF_SCA"},
	{BL_NSK_UNIT, 0x00, "SERIAL_NUM"}, {BL_NSK_UNIT, 0x01, "DEVICE_ID"},
	{BL_NSK_UNIT, 0x02, "FIRMWARE_VER"}, {BL_NSK_UNIT, 0x03, "VCC"}, {BL_NSK_UNIT, 0x04, "SINE_FREQ"},
	{BL_NSK_UNIT, 0x05, "SYSTEM_TIMER"}, {BL_NSK_UNIT, 0x06, "SETTINGS"}, {BL_NSK_UNIT, 0x07, "SINE_OFFSET"},
	{BL_NSK_UNIT, 0x08, "SINE_MAGDIV"}, {BL_NSK_UNIT, 0x09, "LED_MESSAGE"}, {BL_NSK_UNIT, 0x0A, "BOOTLOAD"},
	{BL_NSK_UNIT, 0x0B, "VOLT_CH_CALIB_OFF"}, {BL_NSK_UNIT, 0x0C, "VOLT_CH_CALIB_SCA"},
	{BL_NSK_UNIT, 0x0D, "VOLT_DC_CALIB_OFF"}, {BL_NSK_UNIT, 0x0E, "VOLT_DC_CALIB_SCA"},
	{BL_NSK_UNIT, 0x0F, "LOCK"}, {BL_NSK_UNIT, 0x10, "ZERO_AMP_THRESH"}, {BL_NSK_UNIT, 0x11, "WATCHDOG_TIMER"},
	{BL_NSK_BOOTLOADER, 0x00, "BL_BOOTLOAD"}, {BL_NSK_BOOTLOADER, 0x01, "BL_ADDR"},
	{BL_NSK_BOOTLOADER, 0x02, "BL_DATA"},
	{BL_NSK_COMMS, 0x00, "LED0"}, {BL_NSK_COMMS, 0x01, "LED1"}, {BL_NSK_COMMS, 0x02, "LED2"},
	{BL_NSK_COMMS, 0x03, "LED3"}, {BL_NSK_COMMS, 0x04, "PSU"}, {BL_NSK_COMMS, 0x05, "PSU_VOLTAGE"},
	{BL_NSK_COMMS, 0x06, "PSU_CUTOFF_LOW"}, {BL_NSK_COMMS, 0x07, "PSU_CUTOFF_HIGH"},
	{BL_NSK_COMMS, 0x08, "PSU_CUTOFF_HYST"},
};

static const uint8_t ns_of_kind[] = {
	[BL_NSK_CELL] = BL_NS_CELL0, [BL_NSK_UNIT] = BL_NS_UNIT,
	[BL_NSK_BOOTLOADER] = BL_NS_BOOTLOADER, [BL_NSK_COMMS] = BL_NS_COMMS,
};

static void test_table(void)
{
	int missing = 0, extra = 0, dup_name = 0, dup_addr = 0;

	is_int((long long)bl_regs_count, (long long)(sizeof spec / sizeof spec[0]), "the table has as many registers as the register map");
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
		int found = 0;
		for (size_t j = 0; j < bl_regs_count; j++)
			if (bl_regs[j].ns_kind == spec[i].nsk && bl_regs[j].addr == spec[i].addr &&
			    strcmp(bl_regs[j].name, spec[i].name) == 0)
				found++;
		if (found != 1) {
			diag("%s at 0x%02X found %d times", spec[i].name, spec[i].addr, found);
			missing++;
		}
	}
	is_int(missing, 0, "every register of the map is present exactly once, with its address");
	for (size_t j = 0; j < bl_regs_count; j++) {
		int in_spec = 0;
		for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
			if (bl_regs[j].ns_kind == spec[i].nsk && bl_regs[j].addr == spec[i].addr)
				in_spec = 1;
		extra += !in_spec;
		for (size_t k = j + 1; k < bl_regs_count; k++) {
			if (bl_regs[j].ns_kind != bl_regs[k].ns_kind)
				continue;
			dup_name += strcasecmp(bl_regs[j].name, bl_regs[k].name) == 0;
			dup_addr += bl_regs[j].addr == bl_regs[k].addr;
		}
	}
	is_int(extra, 0, "no register outside the map");
	is_int(dup_name, 0, "no duplicate names within a namespace");
	is_int(dup_addr, 0, "no duplicate addresses within a namespace");

	/* names are unique across the whole flat constant space (batlab.X) */
	int clashes = 0;
	for (size_t j = 0; j < bl_regs_count; j++) {
		for (size_t k = j + 1; k < bl_regs_count; k++)
			clashes += strcasecmp(bl_regs[j].name, bl_regs[k].name) == 0;
		for (size_t c = 0; c < bl_consts_count; c++)
			clashes += strcasecmp(bl_regs[j].name, bl_consts[c].name) == 0;
	}
	for (size_t c = 0; c < bl_consts_count; c++)
		for (size_t d = c + 1; d < bl_consts_count; d++)
			clashes += strcasecmp(bl_consts[c].name, bl_consts[d].name) == 0;
	is_int(clashes, 0, "register and constant names are unique across namespaces");

	int outside = 0;
	for (size_t j = 0; j < bl_regs_count; j++)
		outside += bl_regs[j].addr >= bl_ns_size(ns_of_kind[bl_regs[j].ns_kind]);
	is_int(outside, 0, "every address lies below its namespace's size");
	int undocumented = 0;
	for (size_t j = 0; j < bl_regs_count; j++)
		undocumented += !bl_regs[j].doc || !*bl_regs[j].doc || bl_regs[j].unit >= BL_UK_COUNT;
	is_int(undocumented, 0, "every register has a doc line and a unit kind");
}

static void test_sizes_and_access(void)
{
	is_int(bl_ns_size(BL_NS_CELL3), 0x1F, "cell namespace size 0x1F");
	is_int(bl_ns_size(BL_NS_UNIT), 0x12, "unit namespace size 0x12");
	is_int(bl_ns_size(BL_NS_COMMS), 0x09, "comms namespace size 0x09");
	is_int(bl_ns_size(BL_NS_BOOTLOADER), 3, "bootloader has 3 registers");
	is_int(bl_ns_size(0x06), 0, "namespace 0x06 has none");
	is_int(bl_ns_kind(0x06), BL_NSK_NONE, "0x06 is no namespace");
	is_int(bl_ns_kind(0xFE), BL_NSK_NONE, "0xFE is no namespace");

	/* The EEPROM-backed set: cell 0x14-0x1E; unit 0x00, 0x01, 0x0B-0x0E, 0x10 */
	int wrong = 0;
	for (size_t j = 0; j < bl_regs_count; j++) {
		const struct bl_reg *r = &bl_regs[j];
		int want = (r->ns_kind == BL_NSK_CELL && r->addr >= 0x14) ||
		           (r->ns_kind == BL_NSK_UNIT && (r->addr <= 0x01 || (r->addr >= 0x0B && r->addr <= 0x0E) || r->addr == 0x10));
		if (!!(r->access & BL_ACC_EEPROM) != want) {
			diag("%s EEPROM flag wrong", r->name);
			wrong++;
		}
	}
	is_int(wrong, 0, "EEPROM-backed flags match the firmware");
	const char *refused[] = {"FIRMWARE_VER", "VCC", "SYSTEM_TIMER"};
	for (size_t i = 0; i < 3; i++) {
		const struct bl_reg *r = bl_reg_by_name(BL_NS_UNIT, refused[i]);
		ok(r && (r->access & BL_ACC_REFUSED), "UNIT %s refuses writes", refused[i]);
	}
	ok(bl_reg_by_name(BL_NS_UNIT, "SERIAL_NUM")->access & BL_ACC_GUARDED, "SERIAL_NUM is guarded");
	ok(bl_reg_by_name(BL_NS_UNIT, "DEVICE_ID")->access & BL_ACC_GUARDED, "DEVICE_ID is guarded");
	int cell_refused = 0;
	for (size_t j = 0; j < bl_regs_count; j++)
		cell_refused += bl_regs[j].ns_kind == BL_NSK_CELL && (bl_regs[j].access & BL_ACC_REFUSED);
	is_int(cell_refused, 0, "no cell register refuses writes");
}

static void test_power_on(void)
{
	struct { uint8_t ns; const char *name; unsigned v; } pon[] = {
		{0, "MODE", BL_MODE_NO_CELL}, {0, "CURRENT_SETPOINT", 256}, {0, "REPORT_INTERVAL", 0},
		{0, "TEMPERATURE", 25093}, {0, "CURRENT", 31999}, {0, "VOLTAGE", 20390},
		{0, "VOLTAGE_LIMIT_CHG", 30584}, {0, "VOLTAGE_LIMIT_DCHG", 20389},
		{0, "CURRENT_LIMIT_CHG", 32000}, {0, "CURRENT_LIMIT_DCHG", 32000},
		{0, "TEMP_LIMIT_CHG", 25092}, {0, "TEMP_LIMIT_DCHG", 20825},
		{0, "TEMP_CALIB_R", 1500}, {0, "TEMP_CALIB_B", 3380},
		{0, "CURR_LOWV_SCA", 10000}, {0, "CURR_LOWV_OFF", 14500}, {0, "CURR_LOWV_OFF_SCA", 6500},
		{4, "FIRMWARE_VER", 7}, {4, "SINE_FREQ", 1}, {4, "SETTINGS", 0}, {4, "SINE_OFFSET", 16},
		{4, "SINE_MAGDIV", 2}, {4, "LOCK", 0}, {4, "ZERO_AMP_THRESH", 2000}, {4, "WATCHDOG_TIMER", 255},
		{0xFF, "PSU_CUTOFF_LOW", 523}, {0xFF, "PSU_CUTOFF_HIGH", 630}, {0xFF, "PSU_CUTOFF_HYST", 5},
	};
	for (size_t i = 0; i < sizeof pon / sizeof pon[0]; i++) {
		const struct bl_reg *r = bl_reg_by_name(pon[i].ns, pon[i].name);
		ok(r && r->power_on == pon[i].v, "%s powers on as %u", pon[i].name, pon[i].v);
	}
}

static void test_lookup(void)
{
	uint8_t ns = 0, addr = 0;
	char buf[16];

	ok(bl_ns_parse("UNIT", &ns) == BL_OK && ns == 4, "namespace UNIT is 4");
	ok(bl_ns_parse("cell2", &ns) == BL_OK && ns == 2, "namespace cell2 is 2 (any case)");
	ok(bl_ns_parse("Comms", &ns) == BL_OK && ns == 0xFF, "namespace Comms is 0xFF");
	ok(bl_ns_parse("bootloader", &ns) == BL_OK && ns == 5, "namespace bootloader is 5");
	ok(bl_ns_parse("0x03", &ns) == BL_OK && ns == 3, "namespace 0x03 by number");
	ok(bl_ns_parse("255", &ns) == BL_OK && ns == 255, "namespace 255 by number");
	is_int(bl_ns_parse("CELL9", &ns), BL_ERR_NOTFOUND, "CELL9 is not a namespace");
	is_int(bl_ns_parse("256", &ns), BL_ERR_NOTFOUND, "256 is out of range");
	is_int(bl_ns_parse("4x", &ns), BL_ERR_NOTFOUND, "trailing junk is refused");
	is_int(bl_ns_parse("", &ns), BL_ERR_NOTFOUND, "empty is refused");
	is_int(bl_ns_parse("-1", &ns), BL_ERR_NOTFOUND, "negative is refused");
	is_str(bl_ns_name(2, buf, sizeof buf), "CELL2", "name of namespace 2");
	is_str(bl_ns_name(0xFF, buf, sizeof buf), "COMMS", "name of namespace 0xFF");
	is_str(bl_ns_name(0x06, buf, sizeof buf), "NS_0x06", "name of an unknown namespace");

	ok(bl_reg_parse(4, "FIRMWARE_VER", &addr) == BL_OK && addr == 2, "UNIT FIRMWARE_VER is 2");
	ok(bl_reg_parse(4, "firmware_ver", &addr) == BL_OK && addr == 2, "lookup ignores case");
	ok(bl_reg_parse(1, "voltage", &addr) == BL_OK && addr == 7, "CELL1 VOLTAGE is 7");
	ok(bl_reg_parse(0xFF, "PSU", &addr) == BL_OK && addr == 4, "COMMS PSU is 4");
	ok(bl_reg_parse(4, "0x0a", &addr) == BL_OK && addr == 0x0A, "a number is accepted");
	ok(bl_reg_parse(0, "100", &addr) == BL_OK && addr == 100, "an unknown address below 128 is accepted (answers 257)");
	is_int(bl_reg_parse(0, "128", &addr), BL_ERR_NOTFOUND, "128 does not fit the address field");
	is_int(bl_reg_parse(0, "FIRMWARE_VER", &addr), BL_ERR_NOTFOUND, "a UNIT name is not a CELL register");
	is_int(bl_reg_parse(4, "NOPE", &addr), BL_ERR_NOTFOUND, "unknown name");

	const struct bl_reg *r = bl_reg_by_addr(3, 0x07);
	ok(r && strcmp(r->name, "VOLTAGE") == 0, "CELL3 0x07 is VOLTAGE");
	ok(bl_reg_by_addr(0, 0x1F) == NULL, "CELL 0x1F does not exist");
	ok(bl_reg_by_addr(0x10, 0) == NULL, "namespace 0x10 has no registers");
	ok(bl_reg_by_name(4, NULL) == NULL, "NULL name");
}

static void test_codes(void)
{
	struct { const char *name; long v; } codes[] = {
		{"MODE_NO_CELL", 0}, {"MODE_BACKWARDS", 1}, {"MODE_IDLE", 2}, {"MODE_CHARGE", 3},
		{"MODE_DISCHARGE", 4}, {"MODE_IMPEDANCE", 5}, {"MODE_STOPPED", 6},
		{"ERR_VOLTAGE_LIMIT_CHG", 0x1}, {"ERR_VOLTAGE_LIMIT_DCHG", 0x2}, {"ERR_CURRENT_LIMIT_CHG", 0x4},
		{"ERR_CURRENT_LIMIT_DCHG", 0x8}, {"ERR_TEMP_LIMIT_CHG", 0x10}, {"ERR_TEMP_LIMIT_DCHG", 0x20},
		{"ERR_BACKWARDS", 0x40}, {"ERR_NO_CELL", 0x80}, {"ERR_NO_PSU", 0x100},
		{"ERR_HW_CURRENT_LIMIT", 0x200}, {"ERR_LOW_VCC", 0x800},
		{"STAT_VOLTAGE_LIMIT_CHG", 0x1}, {"STAT_VOLTAGE_LIMIT_DCHG", 0x2}, {"STAT_CURRENT_LIMIT_CHG", 0x4},
		{"STAT_CURRENT_LIMIT_DCHG", 0x8}, {"STAT_TEMP_LIMIT_CHG", 0x10}, {"STAT_TEMP_LIMIT_DCHG", 0x20},
		{"STAT_BACKWARDS", 0x40}, {"STAT_NO_CELL", 0x80}, {"STAT_NO_PSU", 0x100},
		{"STAT_NOT_INITIALIZED", 0x200}, {"STAT_NOT_CALIBRATED", 0x400}, {"STAT_LOW_VCC", 0x800},
		{"SET_TRIM_OUTPUT", 0x1}, {"SET_VCC_COMPENSATION", 0x2}, {"SET_WATCHDOG_TIMER", 0x4},
		{"SET_NO_PSU_DCHG_ENABLE", 0x8}, {"SET_CH0_HI_RES", 0x10}, {"SET_CH1_HI_RES", 0x20},
		{"SET_CH2_HI_RES", 0x40}, {"SET_CH3_HI_RES", 0x80}, {"SET_SAFETY_DISABLE", 0x4000},
		{"SET_DEBUG", 0x8000},
		{"LED_OFF", 0}, {"LED_BLIP", 1}, {"LED_FLASH_SLOW", 2}, {"LED_FLASH_FAST", 3}, {"LED_ON", 4},
		{"LED_PWM", 5}, {"LED_RAMP_UP", 6}, {"LED_RAMP_DOWN", 7}, {"LED_SINE", 8},
		{"LOCK_UNLOCKED", 0}, {"LOCK_LOCKED", 1}, {"WDT_RESET", 255}, {"COMMAND_ERROR", 257},
		{"CELL0", 0}, {"CELL3", 3}, {"UNIT", 4}, {"BOOTLOADER", 5}, {"COMMS", 0xFF},
	};
	int wrong = 0;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		const struct bl_const *c = bl_const_by_name(codes[i].name);
		if (!c || c->value != codes[i].v) {
			diag("%s wrong or missing", codes[i].name);
			wrong++;
		}
	}
	is_int(wrong, 0, "every code has its value (%zu checked)", sizeof codes / sizeof codes[0]);
	ok(bl_const_by_name("mode_charge") != NULL, "constants are found in any case");
	ok(bl_const_by_name("NOPE") == NULL, "unknown constant");
	is_int(BL_COMMAND_ERROR, 0x0101, "COMMAND_ERROR is 0x0101");
	is_int(BL_FLASH_IMAGE_SIZE, 15360, "firmware images are 15360 bytes");
}

int main(void)
{
	plan_lazy();
	test_table();
	test_sizes_and_access();
	test_power_on();
	test_lookup();
	test_codes();
	is_str(bl_strerror(BL_ERR_TIMEOUT), "timeout", "status text");
	is_str(bl_strcode(BL_ERR_BUSY), "EBUSY", "status code");
	is_str(bl_strerror(-999), "unknown error", "unknown status");
	return done_testing();
}
