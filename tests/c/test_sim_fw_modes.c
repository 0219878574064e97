/* test_sim_fw_modes.c - virtual Batlab: the firmware's mode state
 * machine, each limit stopping a channel with its ERROR bits,
 * IDLE clearing ERROR, STOPPED being sticky, cell detection, LEDs. */
#include "sim_fw_util.h"
#include "tap.h"

static void open_cfg(struct simh *h, void (*tweak)(struct bl_simdev_config *))
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	if (tweak)
		tweak(&cfg);
	sh_open(h, &cfg);
	sh_wait(h, 1.0);
}

static void empty_and_reversed(struct bl_simdev_config *cfg)
{
	cfg->slot_used[1] = false;
	cfg->cells[2] = *bl_cell_profile("nmc18650-reversed");
}

/* Run until MODE leaves `mode` (polling every `step` s); returns seconds. */
static double run_while_mode(struct simh *h, uint8_t cell, long mode, double step, double max)
{
	uint64_t t0 = h->t;
	while (h->t - t0 < (uint64_t)(max * 1e6)) {
		if (sh_read(h, cell, BL_CELL_MODE) != mode)
			return (double)(h->t - t0) / 1e6;
		sh_wait(h, step);
	}
	return -1;
}

static void test_detection(void)
{
	struct simh h;
	open_cfg(&h, empty_and_reversed);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_IDLE, "a cell: IDLE");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_NO_CELL, "empty slot: NO_CELL");
	long st = sh_read(&h, 1, BL_CELL_STATUS);
	ok((st & BL_STAT_NO_CELL) && (st & BL_STAT_VOLTAGE_LIMIT_DCHG), "empty slot STATUS NO_CELL|VOLTAGE_LIMIT_DCHG (0x%lx)", st);
	is_int(sh_read(&h, 1, BL_CELL_ERROR), 0, "STATUS bits are not latched outside active modes");
	is_int(sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE), 0, "write IDLE to the empty slot");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_NO_CELL, "reads back NO_CELL at once");
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_BACKWARDS, "reversed cell: BACKWARDS");
	ok(sh_read(&h, 2, BL_CELL_STATUS) & BL_STAT_BACKWARDS, "STATUS BACKWARDS");
	ok(sh_volts(sh_read(&h, 2, BL_CELL_VOLTAGE)) < -3.5, "reversed cell reads negative");
	is_int(sh_read(&h, BL_NS_COMMS, 0), BL_LED_BLIP, "LED0 BLIP for IDLE");
	is_int(sh_read(&h, BL_NS_COMMS, 1), BL_LED_OFF, "LED1 OFF for NO_CELL");
	is_int(sh_read(&h, BL_NS_COMMS, 2), BL_LED_FLASH_FAST, "LED2 FLASH_FAST for BACKWARDS");

	/* Active modes on an empty slot stop at once (0 V < DCHG limit). */
	is_int(sh_write(&h, 1, BL_CELL_MODE, BL_MODE_CHARGE), 0, "CHARGE written to the empty slot");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_STOPPED, "STOPPED in the same pass");
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG, "ERROR VOLTAGE_LIMIT_DCHG");
	is_int(sh_read(&h, BL_NS_COMMS, 1), BL_LED_ON, "LED ON for STOPPED");

	/* IDLE clears ERROR, and NO_CELL follows. */
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE);
	is_int(sh_read(&h, 1, BL_CELL_ERROR), 0, "IDLE cleared ERROR");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_NO_CELL, "then NO_CELL");

	/* A full reversed cell is below -4.0 V: the firmware shows 0x7FFF,
	 * which reads as no cell at all. */
	struct bl_fault f;
	memset(&f, 0, sizeof f);
	f.kind = BL_FAULT_CELL_INSERT;
	f.slot = 3;
	f.cell = *bl_cell_profile("nmc18650-reversed");
	f.cell.soc = 1.0;
	bl_simdev_fault(h.d, h.t, &f);
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 3, BL_CELL_VOLTAGE), 0x7FFF, "below -4.0 V VOLTAGE reads 0x7FFF");
	is_int(sh_read(&h, 3, BL_CELL_MODE), BL_MODE_NO_CELL, "... and the channel NO_CELL, not BACKWARDS");

	/* IDLE clears a host-written ERROR on the same pass. */
	sh_write(&h, 0, BL_CELL_ERROR, 0x0005);
	is_int(sh_read(&h, 0, BL_CELL_ERROR), 0, "ERROR written in IDLE is cleared at once");

	/* A cell put in an empty slot is detected at its next latch. */
	sh_fault(&h, BL_FAULT_CELL_INSERT, 1, 0, 0);
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_IDLE, "inserted cell detected: IDLE");
	sh_close(&h);
}

static void test_stopped_sticky(void)
{
	struct simh h;
	open_cfg(&h, NULL);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 128);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 1.0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_STOPPED);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "STOPPED stays");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT), 0, "no current in STOPPED");
	is_int(sh_read(&h, 0, BL_CELL_DUTY), 0, "DUTY 0 in STOPPED");
	sh_fault(&h, BL_FAULT_CELL_REMOVE, 0, 0, 0);
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "STOPPED even with the cell removed");
	ok(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_NO_CELL, "while STATUS says NO_CELL");
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_IDLE);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_NO_CELL, "IDLE re-runs detection: NO_CELL");
	sh_close(&h);
}

static void full_cell(struct bl_simdev_config *cfg)
{
	cfg->cells[0].soc = 0.90;
	cfg->cells[1].soc = 0.03;
}

static void test_voltage_limits(void)
{
	struct simh h;
	open_cfg(&h, full_cell);
	/* Charge a nearly full cell at 1 A: over-voltage stop. */
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 128);
	double s = run_while_mode(&h, 0, BL_MODE_CHARGE, 1.0, 3600);
	ok(s > 60, "1 A charge of a 90 %% cell stopped after %.0f s", s);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "STOPPED");
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_CHG, "ERROR VOLTAGE_LIMIT_CHG");
	const struct bl_cell *c0 = bl_simdev_cell(h.d, 0);
	ok(c0 && c0->soc > 0.93, "the cell took charge (soc 0.90 -> %.3f)", c0 ? c0->soc : 0);

	/* Discharge an almost empty cell at 2 A: under-voltage stop. */
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	s = run_while_mode(&h, 1, BL_MODE_DISCHARGE, 1.0, 3600);
	ok(s > 0, "discharge of an empty cell stopped after %.0f s", s);
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG, "ERROR VOLTAGE_LIMIT_DCHG");

	/* CHARGE also stops at the under-voltage limit. */
	sh_write(&h, 2, BL_CELL_VOLTAGE_LIMIT_DCHG, 30000);   /* 4.12 V, above the cell */
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_CHARGE);
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_STOPPED, "CHARGE below the DCHG limit stops at once");
	is_int(sh_read(&h, 2, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG, "with ERR_VOLTAGE_LIMIT_DCHG");
	/* DISCHARGE also stops at the over-voltage limit. */
	sh_write(&h, 3, BL_CELL_VOLTAGE_LIMIT_CHG, 25000);    /* 3.43 V, below the cell */
	sh_write(&h, 3, BL_CELL_MODE, BL_MODE_DISCHARGE);
	is_int(sh_read(&h, 3, BL_CELL_MODE), BL_MODE_STOPPED, "DISCHARGE above the CHG limit stops at once");
	is_int(sh_read(&h, 3, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_CHG, "with ERR_VOLTAGE_LIMIT_CHG");

	/* Two causes in one pass: both bits. */
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_IDLE);
	sh_write(&h, 2, BL_CELL_TEMP_LIMIT_CHG, 30000);       /* ~12 degC: it is warmer */
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_CHARGE);
	is_int(sh_read(&h, 2, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG | BL_ERR_TEMP_LIMIT_CHG,
	       "two conditions in one pass latch both ERROR bits");
	sh_close(&h);
}

static void test_current_limits(void)
{
	struct simh h;
	open_cfg(&h, NULL);
	sh_write(&h, 0, BL_CELL_CURRENT_LIMIT_CHG, 8000);     /* 1.0 A */
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 256);
	double s = run_while_mode(&h, 0, BL_MODE_CHARGE, 0.1, 10);
	ok(s > 0 && s < 1.5, "2 A charge against a 1 A limit stopped after %.1f s", s);
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_CURRENT_LIMIT_CHG, "ERROR CURRENT_LIMIT_CHG");

	sh_write(&h, 1, BL_CELL_CURRENT_LIMIT_DCHG, 8000);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	s = run_while_mode(&h, 1, BL_MODE_DISCHARGE, 0.1, 10);
	ok(s > 0 && s < 1.5, "2 A discharge against a 1 A limit stopped after %.1f s", s);
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_CURRENT_LIMIT_DCHG, "ERROR CURRENT_LIMIT_DCHG");

	/* The charge limit does not apply to DISCHARGE. */
	sh_write(&h, 2, BL_CELL_CURRENT_LIMIT_CHG, 8000);
	sh_write(&h, 2, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 3.0);
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_DISCHARGE, "DISCHARGE ignores CURRENT_LIMIT_CHG");
	ok(sh_read(&h, 2, BL_CELL_STATUS) & BL_STAT_CURRENT_LIMIT_CHG, "though STATUS shows it");

	/* SAFETY_DISABLE skips every stop. */
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_SAFETY_DISABLE);
	sh_write(&h, 3, BL_CELL_CURRENT_LIMIT_DCHG, 8000);
	sh_write(&h, 3, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, 3, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 3.0);
	is_int(sh_read(&h, 3, BL_CELL_MODE), BL_MODE_DISCHARGE, "SAFETY_DISABLE: no stop");
	ok(sh_read(&h, 3, BL_CELL_STATUS) & BL_STAT_CURRENT_LIMIT_DCHG, "STATUS still shows the limit");
	is_int(sh_read(&h, 3, BL_CELL_ERROR), 0, "ERROR stays 0");
	sh_close(&h);
}

static void test_temperature_limits(void)
{
	struct simh h;
	open_cfg(&h, NULL);
	/* A lowered charge limit (raw falls as temperature rises). */
	sh_write(&h, 0, BL_CELL_TEMP_LIMIT_CHG, 28700);       /* ~24 degC */
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "CHARGE above TEMP_LIMIT_CHG stops");
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_TEMP_LIMIT_CHG, "ERROR TEMP_LIMIT_CHG");

	/* A cell heating itself while discharging: the 65 degC limit. */
	sh_fault(&h, BL_FAULT_SELF_HEATING, 1, 0, 5.0);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 64);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	double s = run_while_mode(&h, 1, BL_MODE_DISCHARGE, 5.0, 3600);
	ok(s > 60, "self-heating cell stopped after %.0f s", s);
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_TEMP_LIMIT_DCHG, "ERROR TEMP_LIMIT_DCHG");
	long raw = sh_read(&h, 1, BL_CELL_TEMPERATURE);
	ok(raw < 20825 && raw > 19000, "TEMPERATURE %ld just past 65 degC", raw);
	const struct bl_cell *c = bl_simdev_cell(h.d, 1);
	ok(c && c->temp_c > 64.0, "the cell model is hot (%.1f degC)", c ? c->temp_c : 0);
	sh_close(&h);
}

static void test_psu_and_vcc(void)
{
	struct simh h;
	open_cfg(&h, NULL);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 128);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 128);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	sh_wait(&h, 2.0);
	ok(sh_read(&h, 0, BL_CELL_CURRENT) > 7000, "charging at 1 A");

	sh_fault(&h, BL_FAULT_PSU_LOST, -1, 0, 0);
	uint64_t t0 = h.t;
	uint64_t seen = sh_poll_until(&h, 0, BL_CELL_MODE, BL_MODE_STOPPED, 0.05, 5.0);
	ok(seen, "CHARGE stopped after the supply went");
	double dt = (double)(seen - t0) / 1e6;
	ok(dt > 0.4 && dt < 2.7, "within the detection + poll delay (%.2f s)", dt);
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_NO_PSU, "ERROR NO_PSU");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_STOPPED, "DISCHARGE stopped too");
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_NO_PSU, "with ERROR NO_PSU");
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_IMPEDANCE, "IMPEDANCE does not check NO_PSU");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 0, "COMMS PSU reads 0");
	ok(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_VOLTAGE) < 523, "PSU_VOLTAGE below the cut-off");

	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_NO_PSU_DCHG_ENABLE);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 3.0);
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_DISCHARGE, "NO_PSU_DCHG_ENABLE: discharge without PSU");
	ok(sh_read(&h, 1, BL_CELL_CURRENT) > 7000, "and current flows");
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_IDLE);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "CHARGE without PSU stops at once");

	sh_fault(&h, BL_FAULT_PSU_LOST, -1, 0, 1);
	sh_wait(&h, 2.5);
	ok(!(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_NO_PSU), "supply back: NO_PSU clears");

	/* VCC sag: LOW_VCC stops every active mode, not IDLE. */
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_IDLE);
	sh_fault(&h, BL_FAULT_VCC_SAG, -1, 0, 4.1);
	t0 = h.t;
	seen = sh_poll_until(&h, 1, BL_CELL_MODE, BL_MODE_STOPPED, 0.05, 2.0);
	ok(seen && seen - t0 <= 700000, "DISCHARGE stopped within one VCC latch of the sag");
	is_int(sh_read(&h, 1, BL_CELL_ERROR), BL_ERR_LOW_VCC, "ERROR LOW_VCC");
	is_int(sh_read(&h, 2, BL_CELL_ERROR), BL_ERR_LOW_VCC, "IMPEDANCE stopped with LOW_VCC");
	long vcc = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	ok(vcc > 31581, "VCC raw %ld > 31581", vcc);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_IDLE, "IDLE is not stopped");
	ok(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_LOW_VCC, "but shows STATUS LOW_VCC");
	sh_write(&h, 3, BL_CELL_MODE, BL_MODE_CHARGE);
	is_int(sh_read(&h, 3, BL_CELL_ERROR), BL_ERR_LOW_VCC, "CHARGE refused with LOW_VCC");
	sh_close(&h);
}

static void test_leds(void)
{
	struct simh h;
	open_cfg(&h, NULL);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	sh_write(&h, 3, BL_CELL_MODE, BL_MODE_STOPPED);
	is_int(sh_read(&h, BL_NS_COMMS, 0), BL_LED_RAMP_UP, "LED RAMP_UP for CHARGE");
	is_int(sh_read(&h, BL_NS_COMMS, 1), BL_LED_RAMP_DOWN, "LED RAMP_DOWN for DISCHARGE");
	is_int(sh_read(&h, BL_NS_COMMS, 2), BL_LED_SINE, "LED SINE for IMPEDANCE");
	is_int(sh_read(&h, BL_NS_COMMS, 3), BL_LED_ON, "LED ON for STOPPED");
	/* A host LED write lasts until the next refresh (<= 2.1 s). */
	sh_write(&h, BL_NS_COMMS, 3, BL_LED_FLASH_SLOW);
	is_int(sh_read(&h, BL_NS_COMMS, 3), BL_LED_FLASH_SLOW, "host LED write visible");
	uint64_t t0 = h.t;
	uint64_t back = sh_poll_until(&h, BL_NS_COMMS, 3, BL_LED_ON, 0.05, 3.0);
	ok(back && back - t0 <= 2200000, "reverted by the measure MCU within 2.1 s (%.2f s)",
	   (double)(back - t0) / 1e6);
	sh_close(&h);
}

int main(void)
{
	plan_lazy();
	test_detection();
	test_stopped_sticky();
	test_voltage_limits();
	test_current_limits();
	test_temperature_limits();
	test_psu_and_vcc();
	test_leds();
	return done_testing();
}
