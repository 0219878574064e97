/* test_sim_fw_faults.c - virtual Batlab: every fault kind, applied now
 * (bl_simdev_fault) or scheduled in the configuration, and the operator
 * model that puts the next queued cell into an emptied slot. */
#include "core/bl.h"
#include "sim_fw_util.h"
#include "tap.h"

static void test_cell_remove_insert(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 1.0);
	sh_fault(&h, BL_FAULT_CELL_REMOVE, 0, 0, 0);
	sh_fault(&h, BL_FAULT_CELL_REMOVE, 1, 0, 0);
	ok(bl_simdev_cell(h.d, 0) == NULL, "slot 0 is empty");
	sh_wait(&h, 0.7);
	ok(fabs(sh_volts(sh_read(&h, 0, BL_CELL_VOLTAGE))) < 0.01, "VOLTAGE ~0 V without a cell");
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_STOPPED, "discharging channel stopped");
	is_int(sh_read(&h, 0, BL_CELL_ERROR), BL_ERR_VOLTAGE_LIMIT_DCHG, "with ERR_VOLTAGE_LIMIT_DCHG");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_NO_CELL, "idle channel: NO_CELL");

	struct bl_fault f;
	memset(&f, 0, sizeof f);
	f.kind = BL_FAULT_CELL_INSERT;
	f.slot = 1;
	f.cell = *bl_cell_profile("lfp26650");
	bl_simdev_fault(h.d, h.t, &f);
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_IDLE, "inserted LFP cell: IDLE");
	is_num(sh_volts(sh_read(&h, 1, BL_CELL_VOLTAGE)), 3.29, 0.03, "at the LFP plateau");

	/* A slot outside 0..3 is ignored. */
	bl_log_set_level(BL_LOG_ERROR);
	sh_fault(&h, BL_FAULT_CELL_REMOVE, 7, 0, 0);
	ok(bl_simdev_cell(h.d, 2) && bl_simdev_cell(h.d, 3), "bad slot ignored");
	sh_close(&h);
}

static void test_operator(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	cfg.nqueue = 2;
	cfg.queue[0] = *bl_cell_profile("lfp26650");
	cfg.queue[1] = *bl_cell_profile("lipo-pouch");
	cfg.queue[1].soc = 0.8;
	cfg.operator_delay_s = 30.0;
	cfg.nfaults = 3;
	/* Deliberately out of order: they are applied by time. */
	cfg.faults[0] = (struct bl_fault){.kind = BL_FAULT_CELL_REMOVE, .at_us = 100 * SH_S, .slot = 3};
	cfg.faults[1] = (struct bl_fault){.kind = BL_FAULT_CELL_REMOVE, .at_us = 10 * SH_S, .slot = 2};
	cfg.faults[2] = (struct bl_fault){.kind = BL_FAULT_CELL_REMOVE, .at_us = 200 * SH_S, .slot = 0};
	struct simh h;
	sh_open(&h, &cfg);
	sh_wait_until(&h, 11 * SH_S);
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_NO_CELL, "scheduled removal at 10 s: NO_CELL");
	sh_wait_until(&h, 39 * SH_S);
	ok(bl_simdev_cell(h.d, 2) == NULL, "operator not back at 39 s");
	sh_wait_until(&h, 41 * SH_S);
	const struct bl_cell *c = bl_simdev_cell(h.d, 2);
	ok(c && strcmp(c->p.profile, "lfp26650") == 0, "the first queued cell (lfp26650) is in at 40 s");
	is_int(sh_read(&h, 2, BL_CELL_MODE), BL_MODE_IDLE, "and detected: IDLE");
	ok(bl_simdev_cell(h.d, 3) != NULL, "slot 3 still has its cell at 41 s");
	sh_wait_until(&h, 131 * SH_S);
	c = bl_simdev_cell(h.d, 3);
	ok(c && strcmp(c->p.profile, "lipo-pouch") == 0, "slot 3 got the second queued cell (lipo-pouch)");
	is_num(c ? c->soc : 0, 0.8, 0.01, "with its own state of charge");
	sh_wait_until(&h, 300 * SH_S);
	ok(bl_simdev_cell(h.d, 0) == NULL, "queue empty: slot 0 stays empty");
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_NO_CELL, "NO_CELL");
	struct bl_simdev_stats st;
	bl_simdev_stats(h.d, &st);
	is_int((long long)st.faults, 3, "3 faults applied");
	sh_close(&h);
}

static void test_unplug(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	cfg.nfaults = 1;
	cfg.faults[0] = (struct bl_fault){.kind = BL_FAULT_UNPLUG, .at_us = 5 * SH_S, .slot = -1};
	struct simh h;
	sh_open(&h, &cfg);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "answers before the unplug");
	is_int((long long)bl_simdev_next_event_us(h.d), (long long)(5 * SH_S), "the unplug is announced as an event");
	sh_write(&h, 0, BL_CELL_REPORT_INTERVAL, 0);
	uint8_t buf[8];
	bl_simdev_host_read(h.d, 5 * SH_S, buf, sizeof buf);
	h.t = 5 * SH_S;
	ok(bl_simdev_unplugged(h.d), "unplugged at 5 s");
	is_int((long long)bl_simdev_next_event_us(h.d), (long long)UINT64_MAX, "no more events");
	ok(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU) < 0, "nothing answers, not even COMMS");
	is_int((long long)bl_simdev_host_read(h.d, h.t + SH_S, buf, sizeof buf), 0, "reads return nothing");
	sh_close(&h);
}

static void test_replies(void)
{
	struct simh h;
	sh_open_default(&h);
	h.keep_raw = true;
	sh_wait(&h, 1.0);

	sh_fault(&h, BL_FAULT_NO_REPLY, -1, 2, 0);
	ok(sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 100) < 0, "NO_REPLY: first command unanswered");
	ok(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU) < 0, "second (COMMS) unanswered");
	is_int(sh_read(&h, 0, BL_CELL_CURRENT_SETPOINT), 100, "third answered, and the write had happened");

	sh_fault(&h, BL_FAULT_LATE_REPLY, -1, 1, 0.3);
	h.timeout_us = 1 * SH_S;
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "LATE_REPLY: answered");
	ok(h.last_rtt > 300000 && h.last_rtt < 305000, "0.3 s late (%.1f ms)", h.last_rtt / 1e3);
	sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER);
	ok(h.last_rtt < 3000, "the next one is on time again");

	size_t raw0 = h.nraw;
	uint64_t junk0 = h.junk;
	sh_fault(&h, BL_FAULT_GARBAGE, -1, 20, 0);
	ok(bl_simdev_next_event_us(h.d) <= h.t, "garbage is due at once");
	sh_wait(&h, 0.01);
	is_int((long long)(h.nraw - raw0), 20, "GARBAGE: 20 bytes arrived");
	ok(h.junk > junk0 || h.plen > 0 || h.nresp > 0, "the framer saw junk");
	h.plen = 0;   /* a host would resync here */

	raw0 = h.nraw;
	sh_fault(&h, BL_FAULT_DROP_BYTES, -1, 2, 0);
	ok(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER) < 0, "DROP_BYTES: the answer is mangled");
	is_int((long long)(h.nraw - raw0), 3, "only 3 of its 5 bytes arrived");
	ok(h.nraw >= 3 && memcmp(h.raw + h.nraw - 3, (const uint8_t[]){0x02, 0x07, 0x00}, 3) == 0,
	   "the first two were lost (02 07 00 left)");
	h.plen = 0;
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "the next answer is whole");
	sh_close(&h);
}

static void test_thermistor_and_heat(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	sh_fault(&h, BL_FAULT_THERMISTOR_OPEN, 0, 0, 0);
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 0, BL_CELL_TEMPERATURE), 32736, "open thermistor reads 32736 (very cold)");
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 64);
	sh_wait(&h, 10.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_CHARGE, "it never trips a temperature limit");
	ok(!(sh_read(&h, 0, BL_CELL_STATUS) & (BL_STAT_TEMP_LIMIT_CHG | BL_STAT_TEMP_LIMIT_DCHG)), "no TEMP status bit");
	sh_fault(&h, BL_FAULT_THERMISTOR_OPEN, 0, 0, 1);
	sh_wait(&h, 0.7);
	long t = sh_read(&h, 0, BL_CELL_TEMPERATURE);
	ok(t > 28000 && t < 28700, "repaired (value 1): reads %ld again", t);

	long t1 = sh_read(&h, 3, BL_CELL_TEMPERATURE);
	sh_fault(&h, BL_FAULT_SELF_HEATING, 3, 0, 2.0);
	sh_wait(&h, 1200.0);
	long t2 = sh_read(&h, 3, BL_CELL_TEMPERATURE);
	ok(t2 < t1 - 2000, "SELF_HEATING 2 W: an idle cell warms (raw %ld -> %ld)", t1, t2);
	ok(sh_read(&h, 3, BL_CELL_STATUS) & BL_STAT_TEMP_LIMIT_CHG, "past the 45 degC charge limit");
	sh_close(&h);
}

static void test_vcc_and_psu(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	cfg.nfaults = 2;
	cfg.faults[0] = (struct bl_fault){.kind = BL_FAULT_VCC_SAG, .at_us = 3 * SH_S, .slot = -1, .value = 4.2};
	cfg.faults[1] = (struct bl_fault){.kind = BL_FAULT_PSU_LOST, .at_us = 3 * SH_S, .slot = -1, .value = 0};
	struct simh h;
	sh_open(&h, &cfg);
	sh_wait(&h, 1.0);
	long v0 = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	sh_wait_until(&h, 6 * SH_S);
	long v1 = sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	is_num(134217.728 / (double)v1, 4.2, 0.01, "VCC_SAG: VCC reads %.3f V", 134217.728 / (double)v1);
	ok(v1 > v0, "raw grew (%ld -> %ld)", v0, v1);
	ok(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_LOW_VCC, "STATUS LOW_VCC");
	ok(sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_NO_PSU, "STATUS NO_PSU");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 0, "COMMS PSU 0");
	sh_fault(&h, BL_FAULT_VCC_SAG, -1, 0, 3.8);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC), 32736, "below 4.096 V the VCC ADC saturates (32736)");
	sh_close(&h);
}

static void test_psu_detection(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.2);
	long raw = sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU_VOLTAGE);
	ok(raw == 588, "PSU_VOLTAGE %ld for 5.0 V through a 0.3 V diode, halved", raw);
	/* Move the window below the reading: lost on the 2nd reading. */
	sh_write(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HIGH, 580);
	uint64_t t0 = h.t;
	uint64_t lost = sh_poll_until(&h, BL_NS_COMMS, BL_COMMS_PSU, 0, 0.02, 2.0);
	double s = (double)(lost - t0) / 1e6;
	ok(lost && s > 0.5 && s <= 1.0, "detection lost on the second out-of-range reading (%.2f s)", s);
	uint64_t stat = 0;
	while (h.t - t0 < 3 * SH_S && !stat) {
		if (sh_read(&h, 0, BL_CELL_STATUS) & BL_STAT_NO_PSU)
			stat = h.t;
		sh_wait(&h, 0.05);
	}
	ok(stat && stat - lost <= 1200000, "the measure MCU's poll (every 1.1 s) reports NO_PSU");
	/* Back inside LOW+HYST < raw < HIGH-HYST: detected at the next reading. */
	sh_write(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HIGH, 592);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 0, "588 is not below 592 - 5: still lost");
	sh_write(&h, BL_NS_COMMS, BL_COMMS_PSU_CUTOFF_HIGH, 630);
	sh_wait(&h, 0.55);
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 1, "window restored: detected again");
	sh_close(&h);
}

int main(void)
{
	plan_lazy();
	test_cell_remove_insert();
	test_operator();
	test_unplug();
	test_replies();
	test_thermistor_and_heat();
	test_vcc_and_psu();
	test_psu_detection();
	return done_testing();
}
