/* sim/firmware.c - the measure MCU of a virtual Batlab, firmware v7, with
 * the analogue board and the cell slots: the registers and the commands
 * that reach them, the mode state machine, and the 100 ms tick that drives
 * the watchdog, streams, LEDs and the PSU poll.
 *
 * The model is event driven. The 10 kHz ISR is not stepped: its visible
 * work happens at two kinds of instants, the 100 ms SYSTEM_TIMER tick
 * (watchdog, streams, LED refresh, PSU poll) and the end of each 102.4 ms
 * measurement slice (one channel's V/I/PP/charge, or all temperatures, or
 * VCC). The main loop's visible work happens right after each command and
 * after each of those instants; between them nothing a host can observe
 * changes, so nothing is computed. The duty ramp of one count per pass is
 * kept in closed form (value at a time plus elapsed passes).
 *
 * The other parts: current control and the cells (fw_current.c), the
 * latches and streams (fw_measure.c), power-up, EEPROM and the bootloader
 * (fw_boot.c); docs/simulator.md, "Firmware model", describes them all.
 */
#include <string.h>

#include "core/bl.h"
#include "core/proto.h"
#include "core/regs.h"
#include "sim/firmware.h"
#include "sim/fw_parts.h"

/* Firmware constants: the STATUS voltage bands (raw counts), the LOW_VCC
 * threshold, and the main loop's LED and PSU poll periods (system ticks). */
#define V_BACKWARDS (-73)
#define V_PRESENT_MIN 13107
#define V_PRESENT_MAX 32700
#define VCC_LOW_RAW 31581
#define LED_REFRESH_TICKS 20      /* "more than 20 system ticks" */
#define PSU_POLL_TICKS 10

/* ---- Mode state machine -------------------------------------------------- */

/* The STATUS bits that come from the unit, the same for every slot (a
 * pass over all four works them out once). */
static uint16_t unit_status(const struct bl_fw *fw)
{
	uint16_t st = 0;

	if (!fw->psu_flag)
		st |= BL_STAT_NO_PSU;
	if (UNIT_OF(fw, SERIAL_NUM) == 0xFFFF || UNIT_OF(fw, DEVICE_ID) == 0xFFFF)
		st |= BL_STAT_NOT_INITIALIZED;
	if (UNIT_OF(fw, VOLT_CH_CALIB_SCA) == 0xFFFF)
		st |= BL_STAT_NOT_CALIBRATED;
	if (UNIT_OF(fw, VCC) > VCC_LOW_RAW)
		st |= BL_STAT_LOW_VCC;
	return st;
}

/* STATUS of a slot, given unit_status. */
static uint16_t compute_status(const struct bl_fw_chan *ch, uint16_t unit_st)
{
	const uint16_t *r = ch->r;
	int v = s16(r[BL_CELL_VOLTAGE]);
	int i = s16(r[BL_CELL_CURRENT]);
	uint16_t st = unit_st;

	if (v > s16(r[BL_CELL_VOLTAGE_LIMIT_CHG]))
		st |= BL_STAT_VOLTAGE_LIMIT_CHG;
	if (v < s16(r[BL_CELL_VOLTAGE_LIMIT_DCHG]))
		st |= BL_STAT_VOLTAGE_LIMIT_DCHG;
	if (i > s16(r[BL_CELL_CURRENT_LIMIT_CHG]))
		st |= BL_STAT_CURRENT_LIMIT_CHG;
	if (i > s16(r[BL_CELL_CURRENT_LIMIT_DCHG]))
		st |= BL_STAT_CURRENT_LIMIT_DCHG;
	/* The NTC raw value falls as the temperature rises. */
	if (r[BL_CELL_TEMPERATURE] < r[BL_CELL_TEMP_LIMIT_CHG])
		st |= BL_STAT_TEMP_LIMIT_CHG;
	if (r[BL_CELL_TEMPERATURE] < r[BL_CELL_TEMP_LIMIT_DCHG])
		st |= BL_STAT_TEMP_LIMIT_DCHG;
	if (v < V_BACKWARDS)
		st |= BL_STAT_BACKWARDS;
	if ((v > V_BACKWARDS && v < V_PRESENT_MIN) || v > V_PRESENT_MAX)
		st |= BL_STAT_NO_CELL;
	if (r[BL_CELL_CURRENT_CALIB_SCA] == 0xFFFF)
		st |= BL_STAT_NOT_CALIBRATED;
	return st;
}

static int led_for_mode(uint16_t mode)
{
	static const uint8_t led[BL_MODE_COUNT] = {
		[BL_MODE_NO_CELL] = BL_LED_OFF, [BL_MODE_BACKWARDS] = BL_LED_FLASH_FAST,
		[BL_MODE_IDLE] = BL_LED_BLIP, [BL_MODE_CHARGE] = BL_LED_RAMP_UP,
		[BL_MODE_DISCHARGE] = BL_LED_RAMP_DOWN, [BL_MODE_IMPEDANCE] = BL_LED_SINE,
		[BL_MODE_STOPPED] = BL_LED_ON,
	};
	return mode < BL_MODE_COUNT ? led[mode] : -1;
}

/* set_flags decides from the STATUS it computes, MODE, ERROR, SETTINGS
 * and the LED alone. When its last pass changed none of its outputs
 * (MODE, ERROR, STATUS, the LED), a pass that finds the same five values
 * changes nothing either: it stops after computing STATUS. */
static bool flags_hold(const struct bl_fw *fw, const struct bl_fw_chan *ch, uint16_t st)
{
	const uint16_t *r = ch->r;
	return ch->flags_stable && st == ch->held_status && r[BL_CELL_STATUS] == st &&
	       r[BL_CELL_MODE] == ch->held_mode && r[BL_CELL_ERROR] == ch->held_error &&
	       ch->led == ch->held_led && UNIT_OF(fw, SETTINGS) == ch->held_settings;
}

static void set_flags(struct bl_fw *fw, int c, uint64_t t, uint16_t st);

/* The rest of a pass that may change something, noting whether it did.
 * Out of line: most passes stop at flags_hold and need none of it. */
__attribute__((noinline))
static void flags_change(struct bl_fw *fw, int c, uint64_t t, uint16_t st)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t mode = ch->r[BL_CELL_MODE], error = ch->r[BL_CELL_ERROR];
	uint16_t status = ch->r[BL_CELL_STATUS];
	int led = ch->led;

	set_flags(fw, c, t, st);
	ch->flags_stable = mode == ch->r[BL_CELL_MODE] && error == ch->r[BL_CELL_ERROR] &&
	                   status == ch->r[BL_CELL_STATUS] && led == ch->led;
	ch->held_status = st;
	ch->held_mode = mode;
	ch->held_error = error;
	ch->held_led = led;
	ch->held_settings = UNIT_OF(fw, SETTINGS);
}

/* One pass of the mode state machine for slot c. Nothing a pass does
 * moves unit_st's inputs, so one value serves a pass over all slots. */
static inline void flags_pass(struct bl_fw *fw, int c, uint64_t t, uint16_t unit_st)
{
	uint16_t st = compute_status(&fw->ch[c], unit_st);
	if (!flags_hold(fw, &fw->ch[c], st))
		flags_change(fw, c, t, st);
}

void bl_fw_set_flags(struct bl_fw *fw, int c, uint64_t t)
{
	flags_pass(fw, c, t, unit_status(fw));
	/* Slot c's inputs were the only ones that could have moved. */
	if (!fw->ch[c].flags_stable)
		fw->flags_settled = false;
}

static void set_flags(struct bl_fw *fw, int c, uint64_t t, uint16_t st)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t mode = ch->r[BL_CELL_MODE];
	uint16_t stop = 0;
	bool safety = !(UNIT_OF(fw, SETTINGS) & BL_SET_SAFETY_DISABLE);
	const uint16_t common = BL_STAT_VOLTAGE_LIMIT_CHG | BL_STAT_VOLTAGE_LIMIT_DCHG | BL_STAT_LOW_VCC;

	switch (mode) {
	case BL_MODE_NO_CELL:
		if (!(st & BL_STAT_NO_CELL))
			mode = BL_MODE_IDLE;
		if (st & BL_STAT_BACKWARDS)
			mode = BL_MODE_BACKWARDS;
		break;
	case BL_MODE_BACKWARDS:
		if (!(st & BL_STAT_BACKWARDS))
			mode = BL_MODE_IDLE;
		break;
	case BL_MODE_IDLE:
		ch->r[BL_CELL_ERROR] = 0;
		if (st & BL_STAT_NO_CELL)
			mode = BL_MODE_NO_CELL;
		if (st & BL_STAT_BACKWARDS)
			mode = BL_MODE_BACKWARDS;
		break;
	case BL_MODE_CHARGE:
		if (safety)
			stop = st & (common | BL_STAT_CURRENT_LIMIT_CHG | BL_STAT_TEMP_LIMIT_CHG | BL_STAT_NO_PSU);
		break;
	case BL_MODE_DISCHARGE:
		if (safety) {
			uint16_t m = common | BL_STAT_CURRENT_LIMIT_DCHG | BL_STAT_TEMP_LIMIT_DCHG;
			if (!(UNIT_OF(fw, SETTINGS) & BL_SET_NO_PSU_DCHG_ENABLE))
				m |= BL_STAT_NO_PSU;
			stop = st & m;
		}
		break;
	case BL_MODE_IMPEDANCE:
		if (safety)
			stop = st & (common | BL_STAT_CURRENT_LIMIT_DCHG | BL_STAT_TEMP_LIMIT_DCHG);
		break;
	default:
		break;   /* STOPPED is sticky; values >= 7 are left alone */
	}
	if (stop) {
		ch->r[BL_CELL_ERROR] |= stop;
		mode = BL_MODE_STOPPED;
	}
	if (mode != ch->r[BL_CELL_MODE])
		bl_fw_set_mode(fw, c, t, mode);
	ch->r[BL_CELL_STATUS] = st;

	int led = led_for_mode(ch->r[BL_CELL_MODE]);
	if (led >= 0 && led != ch->led) {
		ch->led = led;
		if (fw->hooks.led)
			fw->hooks.led(fw->hooks.ud, t, c, (uint16_t)led);
	}
}

void bl_fw_set_flags_all(struct bl_fw *fw, uint64_t t)
{
	bool settled = true;
	uint16_t unit_st = unit_status(fw);
	for (int c = 0; c < BL_CELLS; c++) {
		flags_pass(fw, c, t, unit_st);
		settled = settled && fw->ch[c].flags_stable;
	}
	fw->flags_settled = settled;
}

/* ---- 100 ms tick: SYSTEM_TIMER, watchdog, and the main loop's timers ---- */

static void systick(struct bl_fw *fw, uint64_t t)
{
	fw->systicks++;
	fw->tick_at += BL_FW_SYSTICK_US;
	uint16_t now = ++UNIT_OF(fw, SYSTEM_TIMER);

	if (UNIT_OF(fw, SETTINGS) & BL_SET_WATCHDOG_TIMER) {
		if (UNIT_OF(fw, WATCHDOG_TIMER) > 0) {
			UNIT_OF(fw, WATCHDOG_TIMER)--;
		} else {
			/* Every 100 ms while it stays 0, no ERROR bit. */
			for (int c = 0; c < BL_CELLS; c++)
				bl_fw_set_mode(fw, c, t, BL_MODE_STOPPED);
			bl_fw_set_flags_all(fw, t);
		}
	}

	/* The main loop sees the new tick on its next pass. */
	uint64_t tp = t + BL_FW_PASS_US / 2;
	bl_fw_send_streams(fw, tp);
	if ((uint16_t)(now - fw->last_led) > LED_REFRESH_TICKS) {
		fw->last_led = now;
		for (int c = 0; c < BL_CELLS; c++)
			if (fw->ch[c].led >= 0 && fw->hooks.led)
				fw->hooks.led(fw->hooks.ud, tp, c, (uint16_t)fw->ch[c].led);
	}
	if ((uint16_t)(now - fw->last_psu) > PSU_POLL_TICKS) {
		fw->last_psu = now;
		bool flag = fw->hooks.psu_poll ? fw->hooks.psu_poll(fw->hooks.ud, tp) != 0 : true;
		if (flag != fw->psu_flag) {
			fw->psu_flag = flag;
			bl_fw_set_flags_all(fw, tp);
		}
	}
}

/* ---- Events ------------------------------------------------------------ */

void bl_fw_step(struct bl_fw *fw, uint64_t t)
{
	if (t == UINT64_MAX)
		return;
	if (fw->state == BL_FW_DOWN) {
		bl_fw_boot_stage(fw, t);
		return;
	}
	if (fw->reset_at <= t) {
		bl_fw_reset(fw, fw->reset_at);
		return;
	}
	/* Within one ISR tick SYSTEM_TIMER moves before the slice handler. */
	if (t == fw->tick_at)
		systick(fw, t);
	else
		bl_fw_slice_end(fw, t);
}

/* ---- Commands: register reads and writes --------------------------------- */

/* Writes that block interrupts stretch the ISR's timeline. */
static void stall(struct bl_fw *fw, uint64_t *delay, uint64_t us)
{
	*delay += us;
	fw->isr_t0 += us;
	fw->tick_at += us;
	fw->slice_at += us;
}

static bool cell_write(struct bl_fw *fw, int c, unsigned addr, uint16_t v, uint64_t t, uint64_t *delay)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	int ee;

	switch (addr) {
	case BL_CELL_MODE:
		bl_fw_set_mode(fw, c, t, v);
		break;
	case BL_CELL_CURRENT_SETPOINT:
		bl_fw_set_setpoint(fw, c, t, v);
		break;
	case BL_CELL_CHARGEL:
	case BL_CELL_CHARGEH:
		ch->r[BL_CELL_CHARGEL] = 0;
		ch->r[BL_CELL_CHARGEH] = 0;
		ch->r[addr] = v;
		break;
	default:
		ch->r[addr] = v;
		if (addr == BL_CELL_REPORT_INTERVAL)
			fw->stream_due_ok = false;
		if ((ee = bl_fw_ee_cell_addr(addr, c)) >= 0) {
			ee_put16(fw, (unsigned)ee, v);
			stall(fw, delay, 2 * BL_FW_EE_BYTE_US);
		}
		break;
	}
	return true;
}

static bool unit_write(struct bl_fw *fw, unsigned addr, uint16_t v, uint64_t t, uint64_t *delay)
{
	int ee;

	switch (addr) {
	case BL_UNIT_FIRMWARE_VER:
	case BL_UNIT_VCC:
	case BL_UNIT_SYSTEM_TIMER:
		return false;
	case BL_UNIT_SERIAL_NUM:
	case BL_UNIT_DEVICE_ID:
		if (fw->unit[addr] != 0xFFFF && !(UNIT_OF(fw, SETTINGS) & BL_SET_DEBUG))
			return false;
		break;
	case BL_UNIT_SINE_FREQ:
	case BL_UNIT_SETTINGS:
	case BL_UNIT_SINE_OFFSET:
	case BL_UNIT_SINE_MAGDIV:
		/* These change the current some channel may be drawing. (The
		 * sine phase reset of SINE_FREQ has no other visible effect in
		 * a model that takes the whole peak window.) */
		bl_fw_sync(fw, t);
		break;
	case BL_UNIT_BOOTLOAD:
		fw->ee[BL_FW_EE_BOOT_FLAG] = 0xFE;
		stall(fw, delay, BL_FW_EE_BYTE_US);
		fw->reset_at = t + *delay + BL_FW_PASS_US;
		return true;   /* BOOTLOAD keeps reading 0 */
	default:
		break;
	}
	fw->unit[addr] = v;
	if ((ee = bl_fw_ee_unit_addr(addr)) >= 0) {
		ee_put16(fw, (unsigned)ee, v);
		stall(fw, delay, 2 * BL_FW_EE_BYTE_US);
	}
	return true;
}

static void app_command(struct bl_fw *fw, uint64_t t, const uint8_t pkt[5], uint8_t resp[5],
                        uint64_t *delay)
{
	uint8_t ns = pkt[1];
	bool wr = pkt[2] & 0x80;
	unsigned addr = pkt[2] & 0x7F;
	uint16_t v = bl_le16_get(pkt + 3);
	bool ok = false;
	uint16_t out = 0;

	switch (bl_ns_kind(ns)) {
	case BL_NSK_CELL: {
		struct bl_fw_chan *ch = &fw->ch[ns];
		if (addr >= BL_CELL_NREGS)
			break;
		ok = true;
		if (wr) {
			cell_write(fw, ns, addr, v, t, delay);
		} else {
			if (addr == BL_CELL_DUTY && driving(ch->r[BL_CELL_MODE]))
				ch->r[addr] = bl_fw_ramped_duty(fw, ns, t);
			out = ch->r[addr];
		}
		break;
	}
	case BL_NSK_UNIT:
		if (addr >= BL_UNIT_NREGS)
			break;
		if (wr) {
			ok = unit_write(fw, addr, v, t, delay);
		} else {
			ok = true;
			out = fw->unit[addr];
		}
		break;
	default:
		break;   /* namespace 5 and 0x06..0xFE: 257 */
	}
	if (ok)
		bl_le16_put(resp + 3, wr ? 0 : out);
}

uint64_t bl_fw_command(struct bl_fw *fw, uint64_t t, uint64_t arrived, const uint8_t pkt[5])
{
	uint8_t resp[5] = {0xAA, pkt[1], pkt[2], 0x01, 0x01};
	uint64_t delay = 0;

	switch (fw->state) {
	case BL_FW_DOWN:
		return t;
	case BL_FW_BOOTLOADER:
		/* A polled UART: bytes that came in during an erase are lost,
		 * and only namespace 5 is parsed. */
		if (pkt[1] != BL_NS_BOOTLOADER || arrived < fw->busy_until)
			return t > fw->busy_until ? t : fw->busy_until;
		fw->n_commands++;
		bl_fw_boot_command(fw, t, pkt, resp, &delay);
		if (fw->hooks.to_host)
			fw->hooks.to_host(fw->hooks.ud, t + delay, resp, sizeof resp);
		fw->busy_until = t + delay;
		return fw->busy_until;
	case BL_FW_APP:
		break;
	}
	if (pkt[1] == BL_NS_COMMS)
		return t;   /* never forwarded by the comms MCU; ignored */
	fw->n_commands++;
	app_command(fw, t, pkt, resp, &delay);
	if (fw->hooks.to_host)
		fw->hooks.to_host(fw->hooks.ud, t + delay, resp, sizeof resp);
	/* The rest of this main-loop pass. Everything that moves an input of
	 * set_flags without a pass of its own is a write (reading DUTY stores
	 * a register set_flags does not read): after a read of a settled
	 * board the pass would skip every slot. */
	if ((pkt[2] & 0x80) || !fw->flags_settled)
		bl_fw_set_flags_all(fw, t + delay);
	bl_fw_send_streams(fw, t + delay);
	fw->busy_until = t + delay + BL_FW_PASS_US;
	return fw->busy_until;
}

