/* test_device.c - the device layer against the virtual Batlab, in virtual
 * time, through real protocol bytes: connect, registers, 257, timeouts and
 * retries, write_verify, charge read, regulation, watchdog, events,
 * impedance, channel start/stop, the safe state and its read back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/regs.h"
#include "core/units.h"
#include "device/channel.h"
#include "device/device.h"
#include "link/link.h"
#include "sim/simdev.h"
#include "tap.h"

#define S(x) ((uint64_t)((x) * 1e6))

struct rig {
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_simdev *sim;
	struct bl_device *dev;
	int events[8];
};

static void on_event(struct bl_device *d, enum bl_device_event ev, void *ud)
{
	struct rig *r = ud;
	(void)d;
	if ((int)ev < 8)
		r->events[ev]++;
}

/* Options for the next rig_open's device (NULL: the defaults). */
static const struct bl_device_opts *rig_dev_opts;

static void rig_open(struct rig *r, const struct bl_simdev_config *cfg)
{
	struct bl_simdev_config def;
	struct bl_link *link;

	memset(r, 0, sizeof *r);
	bl_vclock_init(&r->vc, S(1000));
	r->loop = bl_loop_new(&r->vc.clock);
	if (!cfg) {
		bl_simdev_config_default(&def, 0);
		cfg = &def;
	}
	r->sim = bl_simdev_new(cfg, bl_loop_now(r->loop));
	if (bl_link_open_sim(r->sim, false, &r->vc.clock, "sim0", &link) != BL_OK)
		abort();
	r->dev = bl_device_new(r->loop, link, rig_dev_opts);
	rig_dev_opts = NULL;
	bl_device_on_event(r->dev, on_event, r);
}

static void rig_close(struct rig *r)
{
	bl_device_free(r->dev);
	bl_simdev_free(r->sim);
	bl_loop_free(r->loop);
}

/* Run the loop for `s` virtual seconds. */
static void run_for(struct rig *r, double s)
{
	bl_loop_run_until(r->loop, NULL, NULL, bl_loop_now(r->loop) + S(s));
}

static int rd(struct rig *r, uint8_t ns, uint8_t addr, uint16_t *v)
{
	return bl_device_wait(r->dev, bl_op_read(r->dev, ns, addr, NULL, NULL), v, NULL);
}

static int wr(struct rig *r, uint8_t ns, uint8_t addr, uint16_t v)
{
	return bl_device_wait(r->dev, bl_op_write(r->dev, ns, addr, v, NULL, NULL), NULL, NULL);
}

static void fault(struct rig *r, enum bl_fault_kind kind, int count, double value)
{
	struct bl_fault f;

	memset(&f, 0, sizeof f);
	f.kind = kind;
	f.slot = -1;
	f.count = count;
	f.value = value;
	bl_simdev_fault(r->sim, bl_loop_now(r->loop), &f);
}

static void test_connect(void)
{
	struct rig r;
	const struct bl_identity *id;
	uint16_t v = 0;

	rig_open(&r, NULL);
	/* a channel already discharging before we connect */
	run_for(&r, 2);
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_IDLE, "a cell is detected before connect");
	is_int(bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL), BL_OK, "connect succeeds");
	id = bl_device_identity(r.dev);
	ok(id->connected && !id->bootloader, "the application runs (namespace 5 answered 257)");
	is_int(id->serial, 1000, "serial number SERIAL_NUM + 65536 x DEVICE_ID");
	is_int(id->firmware, 7, "firmware version 7");
	ok(id->settings & BL_SET_WATCHDOG_TIMER, "the watchdog is enabled");
	is_int(id->temp_r[2], 1500, "cell 2 R calibration");
	is_int(id->temp_b[3], 3380, "cell 3 B calibration");
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_IDLE, "connect wrote no mode");

	/* read and write registers of every kind */
	ok(rd(&r, 0, BL_CELL_VOLTAGE, &v) == BL_OK && bl_voltage_from_raw(v) > 3.0 && bl_voltage_from_raw(v) < 4.3,
	   "cell voltage reads %.3f V", bl_voltage_from_raw(v));
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_VCC, &v) == BL_OK && fabs(bl_vcc_from_raw(v) - 5.0) < 0.05,
	   "VCC reads %.3f V", bl_vcc_from_raw(v));
	ok(rd(&r, BL_NS_COMMS, BL_COMMS_PSU, &v) == BL_OK && v == 1, "COMMS PSU reads 1");
	is_int(wr(&r, 2, BL_CELL_VOLTAGE_LIMIT_CHG, bl_voltage_to_raw(4.1)), BL_OK, "write a cell limit");
	ok(rd(&r, 2, BL_CELL_VOLTAGE_LIMIT_CHG, &v) == BL_OK && v == bl_voltage_to_raw(4.1), "and read it back");
	is_int(wr(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, 9), BL_ERR_DEVICE, "a refused write is BL_ERR_DEVICE (257)");
	ok(rd(&r, 0, 0x1F, &v) == BL_OK && v == BL_COMMAND_ERROR, "a read beyond the cell namespace answers 257");
	ok(rd(&r, 0x10, 0, &v) == BL_OK && v == BL_COMMAND_ERROR, "namespace 0x10 answers 257");

	/* write_verify: success, and a register the device overwrites */
	is_int(bl_device_wait(r.dev, bl_op_write_verify(r.dev, 1, BL_CELL_TEMP_LIMIT_CHG, 25000, NULL, NULL), NULL, NULL),
	       BL_OK, "write_verify of a limit");
	is_int(bl_device_wait(r.dev, bl_op_write_verify(r.dev, 1, BL_CELL_STATUS, 0x7777, NULL, NULL), &v, NULL),
	       BL_ERR_VERIFY, "write_verify of STATUS (recomputed by the device) fails");

	struct bl_device_stats st;
	bl_device_stats(r.dev, &st);
	is_int((long long)st.timeouts, 0, "no timeouts on a healthy link");
	is_int(bl_device_pending(r.dev), 0, "nothing left pending");
	rig_close(&r);
}

/* R/B written by a raw register write reach the identity through
 * bl_device_note_temp_calib; "no calibration" values do not. */
static void test_note_temp_calib(void)
{
	struct rig r;
	const struct bl_identity *id;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	id = bl_device_identity(r.dev);
	bl_device_note_temp_calib(r.dev, 2, BL_CELL_TEMP_CALIB_R, 1620);
	bl_device_note_temp_calib(r.dev, 2, BL_CELL_TEMP_CALIB_B, 3435);
	ok(id->temp_r[2] == 1620 && id->temp_b[2] == 3435, "a noted R and B are what cell 2 decodes with");
	ok(id->temp_r[1] == 1500 && id->temp_b[1] == 3380, "other cells keep theirs");
	bl_device_note_temp_calib(r.dev, 2, BL_CELL_TEMP_CALIB_R, 0xFFFF);
	bl_device_note_temp_calib(r.dev, 2, BL_CELL_TEMP_CALIB_B, 0);
	ok(id->temp_r[2] == 1620 && id->temp_b[2] == 3435, "0xFFFF and 0 (no calibration) change nothing");
	bl_device_note_temp_calib(r.dev, 2, BL_CELL_VOLTAGE_LIMIT_CHG, 1700);
	bl_device_note_temp_calib(r.dev, 4, BL_CELL_TEMP_CALIB_R, 1700);
	bl_device_note_temp_calib(r.dev, -1, BL_CELL_TEMP_CALIB_R, 1700);
	ok(id->temp_r[2] == 1620 && id->temp_r[3] == 1500, "other registers and cells out of range change nothing");
	rig_close(&r);
}

static void test_timeouts(void)
{
	struct rig r;
	struct bl_device_stats st;
	uint16_t v = 0;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);

	fault(&r, BL_FAULT_NO_REPLY, 1, 0);
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v) == BL_OK && v == 7, "one lost reply: the retry gets the value");
	bl_device_stats(r.dev, &st);
	is_int((long long)st.retries, 1, "one retry counted");

	fault(&r, BL_FAULT_GARBAGE, 40, 0);
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v) == BL_OK && v == 7, "garbage on the line: the read still succeeds");

	fault(&r, BL_FAULT_DROP_BYTES, 3, 0);
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v) == BL_OK && v == 7, "dropped bytes: the read recovers");

	fault(&r, BL_FAULT_NO_REPLY, 8, 0); /* two requests' worth of attempts */
	uint64_t t0 = bl_loop_now(r.loop);
	is_int(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v), BL_ERR_TIMEOUT, "a silent device gives BL_ERR_TIMEOUT, not a value");
	uint64_t took = bl_loop_now(r.loop) - t0;
	ok(took >= S(0.99) && took <= S(1.01), "after 1 + 3 retries of 250 ms (%.3f s)", took / 1e6);
	rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v);
	is_int(r.events[BL_DEV_SILENT], 1, "two failures in a row raise the silent event once");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v) == BL_OK && v == 7, "the device answers again");
	is_int(r.events[BL_DEV_RECOVERED], 1, "and the recovered event follows");

	fault(&r, BL_FAULT_LATE_REPLY, 1, 0.4);
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER, &v) == BL_OK && v == 7, "a reply late past the timeout: the retry's reply is used");
	run_for(&r, 1);
	ok(rd(&r, 0, BL_CELL_MODE, &v) == BL_OK && v <= BL_MODE_STOPPED, "the stale late reply did not pair with the next request");
	rig_close(&r);
}

static void test_regulation(void)
{
	struct bl_simdev_config cfg;
	struct rig r;
	const struct bl_snapshot *snap;

	bl_simdev_config_default(&cfg, 0);
	cfg.vcc_v = 4.75;
	rig_open(&r, &cfg);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	is_int(bl_device_wait(r.dev, bl_op_discharge_start(r.dev, 0, 2.0, NULL, NULL), NULL, NULL), BL_OK,
	       "discharge at 2.0 A starts");
	bl_device_set_report_interval(r.dev, 0, 1.0);
	run_for(&r, 1.5);
	double first = bl_current_from_raw(bl_device_snapshot(r.dev, 0)->s.current);
	ok(first < 1.95, "at VCC 4.75 V the raw setpoint gives too little (%.3f A)", first);
	run_for(&r, 20);
	snap = bl_device_snapshot(r.dev, 0);
	ok(snap->valid && snap->s.mode == BL_MODE_DISCHARGE, "still discharging");
	double got = bl_current_from_raw(snap->s.current);
	ok(fabs(got - 2.0) <= 0.01, "regulation settles at 2.00 +/- 0.01 A (measured %.4f A, setpoint %u)",
	   got, bl_device_operating_setpoint(r.dev, 0));
	ok(fabs(-bl_simdev_cell_current(r.sim, 0) - 2.0) <= 0.01, "the cell really carries %.4f A",
	   -bl_simdev_cell_current(r.sim, 0));
	run_for(&r, 60);
	got = bl_current_from_raw(bl_device_snapshot(r.dev, 0)->s.current);
	ok(fabs(got - 2.0) <= 0.01, "and stays there a minute later (%.4f A)", got);

	/* the pure step function */
	is_int(bl_regulate_step(256, 256, 2.0), 256, "no change inside the dead band");
	is_int(bl_regulate_step(256, 256, 1.9), 269, "proportional step up");
	is_int(bl_regulate_step(256, 256, 1.0), 288, "a step is at most 32 counts");
	is_int(bl_regulate_step(256, 300, 2.5), 268, "and down");
	is_int(bl_regulate_step(256, 256, 0.0), 256, "a zero reading (below ZERO_AMP_THRESH) changes nothing");
	is_int(bl_regulate_step(512, 520, 4.1), 509, "above 4.02 A it backs off, harder the further above");
	is_int(bl_regulate_step(560, 575, 3.0), 575, "never above 575");
	is_int(bl_regulate_step(100, 200, 0.5), 126, "never more than 25 %% above the target");
	is_int(bl_regulate_step(16, 9, 0.12), 9, "a reading inside the dead band leaves it");
	is_int(bl_regulate_step(16, 8, 0.5), 8, "never below the trickle floor of 8");
	is_int(bl_regulate_step(0, 100, 1.0), 0, "no target: setpoint 0");

	/* safe state */
	is_int(bl_device_wait(r.dev, bl_op_safe(r.dev, 0, NULL, NULL), NULL, NULL), BL_OK, "safe op");
	is_int(bl_simdev_reg(r.sim, 0, BL_CELL_MODE), BL_MODE_IDLE, "the channel is IDLE");
	run_for(&r, 1);
	ok(fabs(bl_simdev_cell_current(r.sim, 0)) < 1e-9, "and no current flows");
	rig_close(&r);
}

static void test_watchdog(void)
{
	struct rig r;
	struct bl_device_stats st;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	bl_device_wait(r.dev, bl_op_charge_start(r.dev, 1, 1.0, NULL, NULL), NULL, NULL);
	run_for(&r, 120);
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_CHARGE, "two minutes on, the watchdog kept the channel charging");
	bl_device_stats(r.dev, &st);
	ok(st.watchdog_refreshes >= 60, "refreshed every 2 s (%llu times)", (unsigned long long)st.watchdog_refreshes);
	uint64_t last = st.last_watchdog_us;

	/* the host goes away without a word */
	bl_device_free(r.dev);
	r.dev = NULL;
	bl_simdev_advance(r.sim, last + S(25.3));
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_CHARGE, "25.3 s after the last refresh: still charging");
	bl_simdev_advance(r.sim, last + S(25.7));
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_STOPPED, "25.7 s after: the watchdog stopped it");
	is_int(bl_simdev_reg(r.sim, 0, BL_CELL_MODE), BL_MODE_STOPPED, "every channel is stopped");
	bl_simdev_free(r.sim);
	bl_loop_free(r.loop);
}

static void test_charge_and_impedance(void)
{
	struct rig r;
	double coulombs = 0, ohms = 0;
	uint16_t v = 0;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	bl_device_wait(r.dev, bl_op_discharge_start(r.dev, 2, 2.0, NULL, NULL), NULL, NULL);
	wr(&r, 2, BL_CELL_CHARGEH, 0);
	run_for(&r, 60);
	uint32_t truth = bl_charge_join(bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEH), bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEL));
	is_int(bl_device_wait(r.dev, bl_op_charge(r.dev, 2, NULL, NULL), NULL, &coulombs), BL_OK, "charge read");
	ok(fabs(coulombs - bl_charge_coulombs(truth, 6)) < 2 * 16000 * 7.68e-5,
	   "charge %.2f C matches the counter (%.2f C)", coulombs, bl_charge_coulombs(truth, 6));
	ok(fabs(coulombs - 120.0) < 3.0, "about 2 A x 60 s = 120 C (%.2f)", coulombs);

	/* rollover: put the counter just below a 16-bit boundary, then read
	 * at every phase around the channel's latch until a read spans it */
	int spans = 0, good = 0;
	for (int k = 0; k < 40; k++) {
		wr(&r, 2, BL_CELL_CHARGEL, 0xFFFF);
		run_for(&r, 0.0005 * k + 0.3);
		struct bl_op *op = bl_op_charge(r.dev, 2, NULL, NULL);
		uint16_t h0 = bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEH);
		bl_device_wait(r.dev, op, NULL, &coulombs);
		uint32_t after = bl_charge_join(bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEH), bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEL));
		double c_after = bl_charge_coulombs(after, 6);
		if (h0 != bl_simdev_reg(r.sim, 2, BL_CELL_CHARGEH))
			spans++;
		good += fabs(coulombs - c_after) < 1e-9 ||
		        fabs(coulombs - bl_charge_coulombs(0xFFFF, 6)) < 1e-9;
	}
	is_int(good, 40, "every charge read is a consistent value, before or after the latch");
	ok(spans > 0, "some reads spanned a rollover of the low half (%d)", spans);

	bl_device_wait(r.dev, bl_op_safe(r.dev, 2, NULL, NULL), NULL, NULL);
	run_for(&r, 2);
	uint64_t t0 = bl_loop_now(r.loop);
	is_int(bl_device_wait(r.dev, bl_op_impedance(r.dev, 1, NULL, NULL), NULL, &ohms), BL_OK, "impedance measurement");
	double want = bl_cell_impedance(bl_simdev_cell(r.sim, 1), 39.0625);
	ok(ohms > 0 && fabs(ohms - want) / want < 0.15, "impedance %.4f ohm (model %.4f ohm)", ohms, want);
	ok(bl_loop_now(r.loop) - t0 >= S(2.0), "it settled 2 s in IMPEDANCE mode");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_LOCK, &v) == BL_OK && v == 0, "LOCK is released");
	ok(rd(&r, 1, BL_CELL_MODE, &v) == BL_OK && v == BL_MODE_IDLE, "the mode is restored to IDLE");

	/* impedance with the reads failing still unlocks */
	struct bl_op *op = bl_op_impedance(r.dev, 1, NULL, NULL);
	run_for(&r, 1.0); /* inside the 2 s settle: the op is still alive */
	fault(&r, BL_FAULT_NO_REPLY, 8, 0);
	int rc = bl_device_wait(r.dev, op, NULL, &ohms);
	fault(&r, BL_FAULT_NO_REPLY, 0, 0);
	is_int(rc, BL_ERR_TIMEOUT, "impedance with lost replies fails");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_LOCK, &v) == BL_OK && v == 0, "but LOCK was still released");
	rig_close(&r);
}

/* ---- bl_op_safe reads MODE back ------------------------------------------ */

/* A test-only wrapper over the sim link: the next `ignore_idle` writes of
 * MODE = IDLE reach the device as MODE = STOPPED, as if the unit kept its
 * mode (it still answers "written"); with `drop_mode_reads`, reads of MODE
 * are lost on the way. */
static struct bl_link_ops tamper_ops;
static int (*tamper_inner_write)(struct bl_link *l, const uint8_t *data, size_t n);
static int ignore_idle, idle_writes;
static bool drop_mode_reads;

static int tamper_write(struct bl_link *l, const uint8_t *data, size_t n)
{
	struct bl_packet p;
	uint8_t out[BL_PKT_LEN];

	if (n != BL_PKT_LEN || bl_packet_decode(data, &p) != BL_OK || p.ns >= BL_CELLS ||
	    p.addr != BL_CELL_MODE)
		return tamper_inner_write(l, data, n);
	if (!p.write && drop_mode_reads)
		return (int)n;
	if (p.write && p.value == BL_MODE_IDLE) {
		idle_writes++;
		if (ignore_idle > 0) {
			ignore_idle--;
			p.value = BL_MODE_STOPPED;
			bl_packet_encode(&p, out);
			return tamper_inner_write(l, out, n) == (int)n ? (int)n : BL_ERR_IO;
		}
	}
	return tamper_inner_write(l, data, n);
}

static void tamper(struct rig *r)
{
	struct bl_link *link = bl_device_link(r->dev);

	tamper_ops = *link->ops;
	tamper_inner_write = link->ops->write;
	tamper_ops.write = tamper_write;
	link->ops = &tamper_ops;
}

struct safe_result {
	int status;
	int idle_writes;        /* MODE = IDLE writes that went out */
	long long sent;         /* requests sent */
};

/* Discharge `cell` for 2 s, then make it safe with the next `ignore` IDLE
 * writes taken as STOPPED. */
static struct safe_result safe_after_discharge(struct rig *r, int cell, int ignore)
{
	struct bl_device_stats before, after;
	struct safe_result res;

	bl_device_wait(r->dev, bl_op_discharge_start(r->dev, cell, 1.0, NULL, NULL), NULL, NULL);
	run_for(r, 2);
	bl_device_stats(r->dev, &before);
	idle_writes = 0;
	ignore_idle = ignore;
	res.status = bl_device_wait(r->dev, bl_op_safe(r->dev, cell, NULL, NULL), NULL, NULL);
	ignore_idle = 0;
	bl_device_stats(r->dev, &after);
	res.idle_writes = idle_writes;
	res.sent = (long long)(after.sent - before.sent);
	return res;
}

static void test_safe_verify(void)
{
	struct bl_simdev_config cfg;
	struct safe_result res;
	struct rig r;
	uint16_t v = 0;

	bl_simdev_config_default(&cfg, 0);
	cfg.slot_used[2] = false;
	rig_open(&r, &cfg);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	tamper(&r);

	res = safe_after_discharge(&r, 0, 0);
	is_int(res.status, BL_OK, "safe: MODE reads IDLE after the IDLE write");
	is_int(res.sent, 3, "STOPPED, IDLE, and one read back");
	is_int(res.idle_writes, 1, "IDLE written once");

	is_int(bl_device_wait(r.dev, bl_op_safe(r.dev, 2, NULL, NULL), NULL, NULL), BL_OK,
	       "safe on an empty slot: NO_CELL is accepted");
	is_int(bl_simdev_reg(r.sim, 2, BL_CELL_MODE), BL_MODE_NO_CELL, "the empty slot reads NO_CELL");

	/* IDLE does not take once: written again, then it reads IDLE */
	res = safe_after_discharge(&r, 1, 1);
	is_int(res.status, BL_OK, "safe: MODE still STOPPED after IDLE, IDLE again takes");
	is_int(res.idle_writes, 2, "IDLE was written twice");
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_IDLE, "the channel is IDLE");

	/* IDLE never takes: BL_ERR_VERIFY after three writes */
	res = safe_after_discharge(&r, 3, 100);
	is_int(res.status, BL_ERR_VERIFY, "safe: MODE never leaves STOPPED: BL_ERR_VERIFY");
	is_int(res.idle_writes, 3, "after IDLE was written three times");
	ok(rd(&r, 3, BL_CELL_MODE, &v) == BL_OK && v == BL_MODE_STOPPED, "the mode did not change (STOPPED)");
	ok(fabs(bl_simdev_cell_current(r.sim, 3)) < 1e-9, "STOPPED still cut the current");

	/* a reversed cell reads BACKWARDS once IDLE: that is a rest too */
	struct bl_fault f = {.kind = BL_FAULT_CELL_INSERT, .slot = 2};
	f.cell = *bl_cell_profile("nmc18650-reversed");
	f.cell.soc = 0.2;
	bl_simdev_fault(r.sim, bl_loop_now(r.loop), &f);
	run_for(&r, 2);
	is_int(bl_device_wait(r.dev, bl_op_safe(r.dev, 2, NULL, NULL), NULL, NULL), BL_OK,
	       "safe on a reversed cell: BACKWARDS is accepted");
	is_int(bl_simdev_reg(r.sim, 2, BL_CELL_MODE), BL_MODE_BACKWARDS, "the slot reads BACKWARDS");

	/* a read back that times out ends the op with the timeout */
	bl_device_wait(r.dev, bl_op_discharge_start(r.dev, 0, 1.0, NULL, NULL), NULL, NULL);
	drop_mode_reads = true;
	idle_writes = 0;
	is_int(bl_device_wait(r.dev, bl_op_safe(r.dev, 0, NULL, NULL), NULL, NULL), BL_ERR_TIMEOUT,
	       "a lost read back: BL_ERR_TIMEOUT");
	drop_mode_reads = false;
	is_int(idle_writes, 1, "and IDLE is not written again");
	is_int(bl_simdev_reg(r.sim, 0, BL_CELL_MODE), BL_MODE_IDLE, "though the channel is IDLE");
	is_int(bl_device_pending(r.dev), 0, "nothing left pending");
	rig_close(&r);
}

static int closed_calls;

static void on_op_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	(void)d;
	(void)op;
	(void)ud;
	closed_calls += status == BL_ERR_CLOSED;
}

/* A read soon after a full one asks for the counter's low half only
 * (firmware 5-7 add at most 32767 a latch, one latch per 614.4 ms): at
 * 3 A three latches pass 65536, and whatever the gap every
 * read is the counter's value, before or after the latch in flight. */
static void test_charge_low_half(void)
{
	static const double gaps[] = {0.3, 1.0, 0.05, 1.2, 0.61, 2.0, 1.0, 1.3, 0.9, 5.0};
	struct rig r;
	int good = 0, low_only = 0, low_when_long = 0, n = 0;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	bl_device_wait(r.dev, bl_op_discharge_start(r.dev, 1, 3.0, NULL, NULL), NULL, NULL);
	wr(&r, 1, BL_CELL_CHARGEH, 0);
	for (int k = 0; k < 120; k++, n++) {
		struct bl_device_stats s0, s1;
		double coulombs = -1, gap = gaps[k % 10];
		if (k == 60)
			wr(&r, 1, BL_CELL_CHARGEH, 0); /* cleared: the next read is whole again */
		run_for(&r, gap);
		uint32_t before = bl_charge_join(bl_simdev_reg(r.sim, 1, BL_CELL_CHARGEH), bl_simdev_reg(r.sim, 1, BL_CELL_CHARGEL));
		bl_device_stats(r.dev, &s0);
		bl_device_wait(r.dev, bl_op_charge(r.dev, 1, NULL, NULL), NULL, &coulombs);
		bl_device_stats(r.dev, &s1);
		uint32_t after = bl_charge_join(bl_simdev_reg(r.sim, 1, BL_CELL_CHARGEH), bl_simdev_reg(r.sim, 1, BL_CELL_CHARGEL));
		good += fabs(coulombs - bl_charge_coulombs(before, 6)) < 1e-9 ||
		        fabs(coulombs - bl_charge_coulombs(after, 6)) < 1e-9;
		low_only += s1.sent - s0.sent == 1;
		low_when_long += s1.sent - s0.sent == 1 && (gap > 1.22 || k == 60);
	}
	is_int(good, n, "every read is the counter's value (3 A: 72,000 counts in three latches)");
	ok(low_only > 40, "reads soon after one another ask for the low half only (%d of %d)", low_only, n);
	is_int(low_when_long, 0, "never after 1.22 s or more, nor after the counter was cleared");
	bl_device_wait(r.dev, bl_op_safe(r.dev, 1, NULL, NULL), NULL, NULL);
	rig_close(&r);
}

/* The four channels report together: one VCC read serves the reports of
 * a device that come together (each sample's VCC is at most 0.5 s old),
 * not one read per report. */
struct vcc_count {
	struct bl_chan_listener l;
	int samples, bad;
};

static void vcc_sample(struct bl_chan_listener *l, const struct bl_sample *s, int status)
{
	struct vcc_count *c = (struct vcc_count *)(void *)l;

	if (status != BL_OK || !s)
		return;
	c->samples++;
	c->bad += !(s->vcc > 4.5 && s->vcc < 5.5);
}

static void test_vcc_shared(void)
{
	struct bl_device_opts o;
	struct vcc_count cnt[BL_CELLS];
	struct rig r;
	char line[256];
	int reads = 0, samples = 0, bad = 0;
	FILE *tr = tmpfile();

	bl_device_opts_default(&o);
	o.trace = tr;
	rig_dev_opts = &o;
	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	struct bl_chanset *cs = bl_chanset_new(r.dev);
	memset(cnt, 0, sizeof cnt);
	for (int i = 0; i < BL_CELLS; i++) {
		cnt[i].l.fn = vcc_sample;
		bl_channel_listen(bl_chanset_channel(cs, i), &cnt[i].l);
		bl_channel_want_reports(bl_chanset_channel(cs, i));
	}
	run_for(&r, 30);
	rewind(tr);
	while (fgets(line, sizeof line, tr))
		reads += strstr(line, " UNIT VCC") != NULL;
	for (int i = 0; i < BL_CELLS; i++) {
		samples += cnt[i].samples;
		bad += cnt[i].bad;
	}
	ok(samples > 100, "four channels reported (%d samples)", samples);
	is_int(bad, 0, "every sample has its VCC");
	ok(reads > 0 && reads * 3 < samples, "VCC read once for reports that come together (%d reads)", reads);
	bl_chanset_free(cs);
	rig_close(&r);
	fclose(tr);
}

/* The review's safety cases: nothing may leave current flowing. */
static void test_safety_paths(void)
{
	struct rig r;
	uint16_t v = 0;
	double ohms = 0;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);

	/* made safe while an impedance measurement is under way: the
	 * measurement must not restart the charge when it finishes */
	bl_device_wait(r.dev, bl_op_charge_start(r.dev, 0, 1.0, NULL, NULL), NULL, NULL);
	run_for(&r, 3);
	struct bl_op *imp = bl_op_impedance(r.dev, 0, NULL, NULL);
	run_for(&r, 1);
	bl_op_cancel(imp);
	bl_device_wait(r.dev, bl_op_safe(r.dev, 0, NULL, NULL), NULL, NULL);
	run_for(&r, 5);
	is_int(bl_simdev_reg(r.sim, 0, BL_CELL_MODE), BL_MODE_IDLE, "safe during impedance: the channel stays IDLE");
	ok(fabs(bl_simdev_cell_current(r.sim, 0)) < 1e-9, "and no current flows");

	/* an impedance measurement in the middle of a charge restarts it
	 * properly and the charge goes on */
	bl_device_wait(r.dev, bl_op_charge_start(r.dev, 1, 1.0, NULL, NULL), NULL, NULL);
	bl_device_set_report_interval(r.dev, 1, 1.0);
	run_for(&r, 5);
	is_int(bl_device_wait(r.dev, bl_op_impedance(r.dev, 1, NULL, NULL), NULL, &ohms), BL_OK, "impedance while charging");
	run_for(&r, 5);
	is_int(bl_simdev_reg(r.sim, 1, BL_CELL_MODE), BL_MODE_CHARGE, "the charge resumed");
	ok(fabs(bl_simdev_cell_current(r.sim, 1) - 1.0) < 0.02, "at 1 A (%.3f A)", bl_simdev_cell_current(r.sim, 1));
	bl_device_wait(r.dev, bl_op_safe(r.dev, 1, NULL, NULL), NULL, NULL);

	/* the reply to the last write of a charge start is lost: the start
	 * fails, and the channel is left safe rather than charging */
	struct bl_op *start = bl_op_charge_start(r.dev, 2, 1.0, NULL, NULL);
	run_for(&r, 0.008); /* setpoint 0 and CHARGE are through; the relay settles */
	struct bl_fault f = {.kind = BL_FAULT_NO_REPLY, .slot = -1, .count = 4};
	bl_simdev_fault(r.sim, bl_loop_now(r.loop), &f); /* every reply to the setpoint write */
	int rc = bl_device_wait(r.dev, start, NULL, NULL);
	ok(rc != BL_OK, "a charge start whose replies are lost fails (%s)", bl_strerror(rc));
	run_for(&r, 30);
	ok(bl_simdev_reg(r.sim, 2, BL_CELL_MODE) != BL_MODE_CHARGE, "the channel is not left charging (mode %u)",
	   bl_simdev_reg(r.sim, 2, BL_CELL_MODE));
	ok(fabs(bl_simdev_cell_current(r.sim, 2)) < 1e-9, "and carries no current");
	is_int(bl_device_target(r.dev, 2) == 0.0, 1, "and regulation is off");

	/* the regulation floor never exceeds a small target */
	ok(bl_regulate_step(4, 4, 0.01) <= 6, "a 31 mA target is not pushed to the 62.5 mA floor");

	/* leftover SETTINGS bits of a dead session are cleared at connect */
	bl_device_wait(r.dev, bl_op_write(r.dev, BL_NS_UNIT, BL_UNIT_SETTINGS,
	               BL_SET_SAFETY_DISABLE | BL_SET_CH1_HI_RES | BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_TRIM_OUTPUT,
	               NULL, NULL), NULL, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_SETTINGS, &v) == BL_OK &&
	   v == (BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_WATCHDOG_TIMER),
	   "connect keeps only NO_PSU_DCHG_ENABLE and sets the watchdog (0x%04X)", v);

	/* freeing the device finishes a sleeping op with BL_ERR_CLOSED */
	closed_calls = 0;
	bl_op_impedance(r.dev, 3, on_op_done, NULL);
	run_for(&r, 0.5);
	bl_device_free(r.dev);
	r.dev = NULL;
	is_int(closed_calls, 1, "an op asleep when the device is freed hears BL_ERR_CLOSED");
	rig_close(&r);
}

static void test_events(void)
{
	struct rig r;
	uint16_t v;

	rig_open(&r, NULL);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	run_for(&r, 10);
	fault(&r, BL_FAULT_RESET, 0, 0);
	run_for(&r, 12);
	is_int(r.events[BL_DEV_RESET], 1, "a device reset is detected and reported");
	fault(&r, BL_FAULT_UNPLUG, 0, 0);
	run_for(&r, 1);
	is_int(r.events[BL_DEV_CLOSED], 1, "unplug is reported");
	ok(bl_device_closed(r.dev), "the device is closed");
	is_int(rd(&r, 0, BL_CELL_MODE, &v), BL_ERR_CLOSED, "a request on it fails with BL_ERR_CLOSED, no hang");
	rig_close(&r);
}

int main(void)
{
	plan_lazy();
	/* the warnings these faults cause are expected; keep the TAP clean */
	bl_log_set_level(BL_LOG_ERROR);
	test_connect();
	test_note_temp_calib();
	test_timeouts();
	test_regulation();
	test_watchdog();
	test_charge_and_impedance();
	test_charge_low_half();
	test_vcc_shared();
	test_events();
	test_safety_paths();
	test_safe_verify();
	return done_testing();
}
