/* test_sim_fw_regs.c - virtual Batlab: register map, power-on values, the
 * response rules and every case the firmware answers 257, EEPROM-backed
 * registers, side effects of writes. Bytes only, virtual time only. */
#include "sim_fw_util.h"
#include "tap.h"

static uint16_t power_on(enum bl_ns_kind k, uint8_t addr)
{
	for (size_t i = 0; i < bl_regs_count; i++)
		if (bl_regs[i].ns_kind == k && bl_regs[i].addr == addr)
			return bl_regs[i].power_on;
	return 0xDEAD;
}

static void test_power_on(void)
{
	struct simh h;
	sh_open_default(&h);
	/* Cell 3 is latched last (409.6 ms): read it before that. */
	int bad = 0;
	for (uint8_t a = 0; a < BL_CELL_NREGS; a++) {
		long v = sh_read(&h, 3, a);
		long want = power_on(BL_NSK_CELL, a);
		if (a == BL_CELL_MODE)
			want = BL_MODE_IDLE;   /* the placeholder 2.8 V reads as a cell */
		if (v != want) {
			diag("cell reg 0x%02x = %ld, want %ld", a, v, want);
			bad++;
		}
	}
	ok(h.t < 102400, "cell registers read before the first latch (t=%llu us)", (unsigned long long)h.t);
	is_int(bad, 0, "every cell register has its power-on value (placeholders, limits, calibration)");

	sh_close(&h);
	sh_open_default(&h);
	bad = 0;
	for (uint8_t a = 0; a < BL_UNIT_NREGS; a++) {
		long v = sh_read(&h, BL_NS_UNIT, a);
		long want = a == BL_UNIT_SERIAL_NUM ? 1000 : a == BL_UNIT_DEVICE_ID ? 0 : power_on(BL_NSK_UNIT, a);
		if (v != want) {
			diag("unit reg 0x%02x = %ld, want %ld", a, v, want);
			bad++;
		}
	}
	is_int(bad, 0, "every unit register has its power-on value (FIRMWARE_VER 7, VCC 0, WDT 255, ...)");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_LOW), 523, "COMMS PSU_CUTOFF_LOW 523");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HIGH), 630, "COMMS PSU_CUTOFF_HIGH 630");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HYST), 5, "COMMS PSU_CUTOFF_HYST 5");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 1, "COMMS PSU 1 with a supply");
	long pv = sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_VOLTAGE);
	ok(pv > 523 + 5 && pv < 630 - 5, "COMMS PSU_VOLTAGE %ld inside the detection window", pv);

	/* After the first full cycle the placeholders are gone. */
	sh_wait(&h, 1.0);
	is_num(sh_volts(sh_read(&h, 0, BL_CELL_VOLTAGE)), 4.08, 0.02, "VOLTAGE measured (90 %% nmc18650)");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT), 0, "CURRENT 0 in IDLE");
	long t = sh_read(&h, 0, BL_CELL_TEMPERATURE);
	ok(labs(t - 28494) < 40, "TEMPERATURE %ld ~ 28494 (25 degC)", t);
	long vcc = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	ok(labs(vcc - 26844) < 20, "VCC %ld ~ 26844 (5.00 V)", vcc);
	sh_close(&h);
}

static void test_257(void)
{
	struct simh h;
	sh_open_default(&h);

	/* Reads and writes beyond each namespace. */
	is_int(sh_read(&h, 0, 0x1F), 257, "cell read 0x1F -> 257");
	is_int(sh_read(&h, 2, 0x7F), 257, "cell read 0x7F -> 257");
	is_int(sh_write(&h, 1, 0x1F, 5), 257, "cell write 0x1F -> 257");
	is_int(sh_read(&h, BL_NS_UNIT, 0x12), 257, "unit read 0x12 -> 257");
	is_int(sh_write(&h, BL_NS_UNIT, 0x12, 1), 257, "unit write 0x12 -> 257");
	is_int(sh_read(&h, BL_NS_COMMS, 0x09), 257, "comms read 0x09 -> 257");
	is_int(sh_write(&h, BL_NS_COMMS, 0x09, 1), 257, "comms write 0x09 -> 257");
	is_int(sh_write(&h, BL_NS_COMMS, 0x7F, 1), 257, "comms write 0x7F -> 257");

	/* Refused unit writes leave the value alone. */
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, 9), 257, "FIRMWARE_VER write refused");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "FIRMWARE_VER unchanged");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_VCC, 1), 257, "VCC write refused");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER, 0), 257, "SYSTEM_TIMER write refused");

	/* SERIAL_NUM / DEVICE_ID guard. */
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, 4242), 257, "SERIAL_NUM write refused (not blank, no DEBUG)");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_DEVICE_ID, 7), 257, "DEVICE_ID write refused");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM), 1000, "SERIAL_NUM unchanged");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_DEBUG), 0, "SETTINGS.DEBUG set");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, 4242), 0, "SERIAL_NUM writable with DEBUG");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_DEVICE_ID, 7), 0, "DEVICE_ID writable with DEBUG");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM), 4242, "SERIAL_NUM now 4242");

	/* Namespace 5 in the application, and 0x06..0xFE. */
	is_int(sh_read(&h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 257, "(5,1) read -> 257: the application runs");
	is_int(sh_write(&h, BL_NS_BOOTLOADER, BL_BOOT_DATA, 1), 257, "(5,0x82) write -> 257 in the application");
	is_int(sh_read(&h, BL_NS_BOOTLOADER, 0), 257, "(5,0) read -> 257");
	const uint8_t odd[] = {0x06, 0x07, 0x10, 0x7F, 0x80, 0xAA, 0xFE};
	for (size_t i = 0; i < sizeof odd; i++) {
		is_int(sh_read(&h, odd[i], 0), 257, "namespace 0x%02x read -> 257", odd[i]);
		is_int(sh_write(&h, odd[i], 3, 1), 257, "namespace 0x%02x write -> 257", odd[i]);
	}

	/* Python's recovery: AA AA AA AA AA is a read in namespace 0xAA. */
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, 5);
	ok(sh_run(&h, h.t + 50 * SH_MS, 0xAA, 0xAA), "AA AA AA AA AA is answered");
	ok(h.nresp == 1 && memcmp(h.resp[0], (const uint8_t[]){0xAA, 0xAA, 0xAA, 0x01, 0x01}, 5) == 0,
	   "... with AA AA AA 01 01");
	sh_close(&h);
}

static void test_echo_and_writes(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);

	/* The address byte is echoed with its write flag; the value is not. */
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0x00, 0x83, 0x34, 0x12}, 5);
	sh_run(&h, h.t + 50 * SH_MS, 0, 0x83);
	ok(h.nresp == 1 && memcmp(h.resp[0], (const uint8_t[]){0xAA, 0x00, 0x83, 0x00, 0x00}, 5) == 0,
	   "write answered AA 00 83 00 00 (flag echoed, value not)");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT_SETPOINT), 0x1234, "value stored little-endian");
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0x04, 0x02, 0x00, 0x00}, 5);
	sh_run(&h, h.t + 50 * SH_MS, 4, 0x02);
	ok(h.nresp == 1 && memcmp(h.resp[0], (const uint8_t[]){0xAA, 0x04, 0x02, 0x07, 0x00}, 5) == 0,
	   "read answered AA 04 02 07 00");

	/* Every cell address below 0x1F accepts a write. */
	int bad = 0;
	for (uint8_t a = 0; a < BL_CELL_NREGS; a++) {
		uint16_t v = a == BL_CELL_MODE ? BL_MODE_IDLE : a == BL_CELL_CURRENT_CALIB_SCA ? 16384 : 100 + a;
		if (sh_write(&h, 3, a, v) != 0)
			bad++;
	}
	is_int(bad, 0, "all 31 cell registers accept writes (measured ones too)");
	is_int(sh_read(&h, 3, BL_CELL_REPORT_INTERVAL), 104, "REPORT_INTERVAL holds the written value");
	is_int(sh_read(&h, 3, BL_CELL_TEMP_CALIB_R), 100 + 0x16, "TEMP_CALIB_R holds the written value");
	sh_write(&h, 3, BL_CELL_REPORT_INTERVAL, 0);

	/* A written measurement is used until the next latch overwrites it. */
	is_int(sh_write(&h, 1, BL_CELL_VOLTAGE, 0), 0, "write VOLTAGE = 0 on cell 1 (IDLE)");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_NO_CELL, "the same pass sees no cell: NO_CELL");
	sh_wait(&h, 0.7);
	ok(sh_volts(sh_read(&h, 1, BL_CELL_VOLTAGE)) > 4.0, "the next latch measured the cell again");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_IDLE, "and it is IDLE again");

	/* STATUS is recomputed in the pass of the write. */
	is_int(sh_write(&h, 1, BL_CELL_STATUS, 0xFFFF), 0, "STATUS write accepted");
	is_int(sh_read(&h, 1, BL_CELL_STATUS), 0, "STATUS recomputed at once");

	/* CHARGEL/CHARGEH: a write clears both, then stores. */
	sh_write(&h, 2, BL_CELL_CHARGEH, 0x0102);
	sh_write(&h, 2, BL_CELL_CHARGEL, 0x0304);
	is_int(sh_read(&h, 2, BL_CELL_CHARGEH), 0, "CHARGEL write cleared CHARGEH");
	is_int(sh_read(&h, 2, BL_CELL_CHARGEL), 0x0304, "CHARGEL stored");
	sh_write(&h, 2, BL_CELL_CHARGEH, 0x0005);
	is_int(sh_read(&h, 2, BL_CELL_CHARGEL), 0, "CHARGEH write cleared CHARGEL");
	is_int(sh_read(&h, 2, BL_CELL_CHARGEH), 5, "CHARGEH stored");

	/* COMMS: writes below 9 answer 0 and stick (PSU is refreshed on read). */
	is_int(sh_write(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HYST, 9), 0, "COMMS write answers 0");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HYST), 9, "COMMS register stored");
	is_int(sh_write(&h, BL_NS_COMMS, BL_COMMS_PSU, 0), 0, "COMMS PSU write accepted");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 1, "... and meaningless: a read refreshes it");

	/* Modes >= 7 are stored as written. */
	is_int(sh_write(&h, 2, BL_CELL_MODE, 9), 0, "MODE 9 accepted");
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, 2, BL_CELL_MODE), 9, "MODE 9 stays");
	is_int(sh_read(&h, 2, BL_CELL_CURRENT), 0, "no current in MODE 9");
	sh_close(&h);
}

static void test_parser(void)
{
	struct simh h;
	sh_open_default(&h);
	/* Garbage before a packet is skipped once 5 bytes are buffered. */
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0x13, 0x37, 0xAA, 0x04, 0x02, 0x00, 0x00}, 7);
	ok(sh_run(&h, h.t + 50 * SH_MS, 4, 2), "junk before AA is skipped");
	/* A partial packet waits and merges with the next bytes. */
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0x04}, 2);
	ok(!sh_run(&h, h.t + 50 * SH_MS, 4, 2), "a 2-byte fragment gets no answer");
	sh_send(&h, (const uint8_t[]){0x02, 0x00, 0x00}, 3);
	ok(sh_run(&h, h.t + 50 * SH_MS, 4, 2), "the rest completes it");
	is_int(h.resp[0][3], 7, "answer is FIRMWARE_VER");
	/* Two packets in one write: two answers. */
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0x04, 0x02, 0, 0, 0xAA, 0x04, 0x11, 0, 0}, 10);
	sh_run(&h, h.t + 50 * SH_MS, 4, 0x11);
	is_int(h.nresp, 2, "two packets in one write, two answers");
	ok(h.resp_t[1] - h.resp_t[0] >= 1000, "one command per main-loop pass (%llu us apart)",
	   (unsigned long long)(h.resp_t[1] - h.resp_t[0]));
	sh_close(&h);
}

static void test_eeprom(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);

	/* EEPROM-backed writes take two byte times (~8 ms) more. */
	sh_read(&h, 0, BL_CELL_CURRENT_CALIB_OFF);
	uint64_t rtt_ram = h.last_rtt;
	is_int(sh_write(&h, 0, BL_CELL_CURRENT_CALIB_OFF, 5), 0, "CURRENT_CALIB_OFF write");
	ok(h.last_rtt >= rtt_ram + 7500, "EEPROM write answered ~8 ms later (%llu vs %llu us)",
	   (unsigned long long)h.last_rtt, (unsigned long long)rtt_ram);
	sh_write(&h, 2, BL_CELL_TEMP_CALIB_B, 3950);
	sh_write(&h, 3, BL_CELL_CURR_LOWV_SCA, 0xFFFF);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH, 399);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_VOLT_DC_CALIB_OFF, 3);
	is_int(bl_simdev_eeprom(h.d, 0x4C) | bl_simdev_eeprom(h.d, 0x4D) << 8, 399, "ZERO_AMP_THRESH in EEPROM 0x4C");
	is_int(bl_simdev_eeprom(h.d, 0x1A + 4) | bl_simdev_eeprom(h.d, 0x1B + 4) << 8, 3950, "TEMP_CALIB_B cell 2 in EEPROM 0x1E");

	/* Volatile registers that must come back after a reset. */
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_WATCHDOG_TIMER);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_LOCK, 1);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_OFFSET, 40);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 100);
	sh_write(&h, 1, BL_CELL_VOLTAGE_LIMIT_DCHG, 15000);
	sh_write(&h, 1, BL_CELL_REPORT_INTERVAL, 50);
	sh_write(&h, 1, BL_CELL_CHARGEL, 77);

	sh_fault(&h, BL_FAULT_RESET, -1, 0, 0);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), -1, "no answer while resetting");
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "answers again after the reset");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT_CALIB_OFF), 5, "EEPROM CURRENT_CALIB_OFF survives a reset");
	is_int(sh_read(&h, 2, BL_CELL_TEMP_CALIB_B), 3950, "EEPROM TEMP_CALIB_B survives");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH), 399, "EEPROM ZERO_AMP_THRESH survives");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_VOLT_DC_CALIB_OFF), 3, "EEPROM VOLT_DC_CALIB_OFF survives");
	is_int(sh_read(&h, 3, BL_CELL_CURR_LOWV_SCA), 10000, "blank CURR_LOWV_SCA loads as 10000");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SETTINGS), 0, "SETTINGS 0 after reset");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_LOCK), 0, "LOCK 0 after reset");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SINE_OFFSET), 16, "SINE_OFFSET 16 after reset");
	is_int(sh_read(&h, 1, BL_CELL_CURRENT_SETPOINT), 256, "CURRENT_SETPOINT 256 after reset");
	is_int(sh_read(&h, 1, BL_CELL_VOLTAGE_LIMIT_DCHG), 20389, "limits at defaults after reset");
	is_int(sh_read(&h, 1, BL_CELL_REPORT_INTERVAL), 0, "REPORT_INTERVAL 0 after reset");
	is_int(sh_read(&h, 1, BL_CELL_CHARGEL), 0, "CHARGE 0 after reset");
	long st = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	ok(st >= 0 && st < 12, "SYSTEM_TIMER restarted (%ld)", st);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER), 255, "WATCHDOG_TIMER 255 after reset");
	sh_close(&h);
}

static void test_blank_eeprom(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	cfg.blank_eeprom = true;
	struct simh h;
	sh_open(&h, &cfg);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM), 0xFFFF, "blank SERIAL_NUM reads 0xFFFF");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH), 2000, "blank ZERO_AMP_THRESH -> 2000");
	is_int(sh_read(&h, 0, BL_CELL_CURR_LOWV_SCA), 10000, "blank CURR_LOWV_SCA -> 10000");
	is_int(sh_read(&h, 0, BL_CELL_CURR_LOWV_OFF), 14500, "blank CURR_LOWV_OFF -> 14500");
	is_int(sh_read(&h, 0, BL_CELL_CURR_LOWV_OFF_SCA), 6500, "blank CURR_LOWV_OFF_SCA -> 6500");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT_CALIB_SCA), 0xFFFF, "blank CURRENT_CALIB_SCA stays 0xFFFF");
	long st = sh_read(&h, 0, BL_CELL_STATUS);
	ok(st & BL_STAT_NOT_INITIALIZED, "STATUS NOT_INITIALIZED (0x%lx)", st);
	ok(st & BL_STAT_NOT_CALIBRATED, "STATUS NOT_CALIBRATED");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, 31), 0, "blank SERIAL_NUM is writable without DEBUG");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, 32), 257, "... once");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_DEVICE_ID, 2), 0, "blank DEVICE_ID writable");
	st = sh_read(&h, 0, BL_CELL_STATUS);
	ok(!(st & BL_STAT_NOT_INITIALIZED), "NOT_INITIALIZED cleared");
	sh_close(&h);
}

static void test_unit_side_effects(void)
{
	struct simh h;
	sh_open_default(&h);
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_SINE_FREQ, 5), 0, "SINE_FREQ write");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SINE_FREQ), 5, "SINE_FREQ stored");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_LED_MESSAGE, 3), 0, "LED_MESSAGE write");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_LED_MESSAGE), 3, "LED_MESSAGE stored");
	is_int(sh_write(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, 100), 0, "WATCHDOG_TIMER write");
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER), 100, "WATCHDOG_TIMER does not count with SETTINGS clear");
	long st0 = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	sh_wait(&h, 1.0);
	long st1 = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	is_int(st1 - st0, 10, "SYSTEM_TIMER counts 10 per second");
	sh_close(&h);
}

int main(void)
{
	plan_lazy();
	test_power_on();
	test_257();
	test_echo_and_writes();
	test_parser();
	test_eeprom();
	test_blank_eeprom();
	test_unit_side_effects();
	return done_testing();
}
