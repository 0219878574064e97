/* sim/fw_boot.c - the firmware model's life cycle: power-up with the
 * EEPROM image and its register defaults, the application start, resets,
 * the boot stages and the bootloader (namespace 5: flash erase, write and
 * read, and the jump to a valid image).
 */
#include <math.h>
#include <string.h>

#include "core/proto.h"
#include "core/regs.h"
#include "sim/fw_parts.h"

static const uint8_t ee_cell_base[BL_CELL_NREGS] = {
	[BL_CELL_CURRENT_CALIB_OFF] = 0x02, [BL_CELL_CURRENT_CALIB_SCA] = 0x0A,
	[BL_CELL_TEMP_CALIB_R] = 0x12, [BL_CELL_TEMP_CALIB_B] = 0x1A,
	[BL_CELL_CURRENT_CALIB_PP] = 0x22, [BL_CELL_VOLTAGE_CALIB_PP] = 0x2A,
	[BL_CELL_CURR_CALIB_PP_OFF] = 0x3C, [BL_CELL_VOLT_CALIB_PP_OFF] = 0x44,
	[BL_CELL_CURR_LOWV_SCA] = 0x4E, [BL_CELL_CURR_LOWV_OFF] = 0x56,
	[BL_CELL_CURR_LOWV_OFF_SCA] = 0x5E,
};

/* Unit EEPROM addresses; 0xFF marks a RAM-only register. */
static const uint8_t ee_unit_addr[BL_UNIT_NREGS] = {
	[BL_UNIT_SERIAL_NUM] = 0x00, [BL_UNIT_DEVICE_ID] = 0x32,
	[BL_UNIT_FIRMWARE_VER] = 0xFF, [BL_UNIT_VCC] = 0xFF, [BL_UNIT_SINE_FREQ] = 0xFF,
	[BL_UNIT_SYSTEM_TIMER] = 0xFF, [BL_UNIT_SETTINGS] = 0xFF,
	[BL_UNIT_SINE_OFFSET] = 0xFF, [BL_UNIT_SINE_MAGDIV] = 0xFF,
	[BL_UNIT_LED_MESSAGE] = 0xFF, [BL_UNIT_BOOTLOAD] = 0xFF,
	[BL_UNIT_VOLT_CH_CALIB_OFF] = 0x34, [BL_UNIT_VOLT_CH_CALIB_SCA] = 0x36,
	[BL_UNIT_VOLT_DC_CALIB_OFF] = 0x38, [BL_UNIT_VOLT_DC_CALIB_SCA] = 0x3A,
	[BL_UNIT_LOCK] = 0xFF, [BL_UNIT_ZERO_AMP_THRESH] = 0x4C,
	[BL_UNIT_WATCHDOG_TIMER] = 0xFF,
};

static bool is_cell_ee(unsigned addr)
{
	return addr >= BL_CELL_CURRENT_CALIB_OFF && addr < BL_CELL_NREGS;
}

int bl_fw_ee_cell_addr(unsigned addr, int c)
{
	return is_cell_ee(addr) ? ee_cell_base[addr] + 2 * c : -1;
}

int bl_fw_ee_unit_addr(unsigned addr)
{
	return addr < BL_UNIT_NREGS && ee_unit_addr[addr] != 0xFF ? ee_unit_addr[addr] : -1;
}

/* ---- Boot and reset -------------------------------------------------------- */

static void load_power_on(struct bl_fw *fw)
{
	for (size_t i = 0; i < bl_regs_count; i++) {
		const struct bl_reg *g = &bl_regs[i];
		if (g->ns_kind == BL_NSK_CELL && g->addr < BL_CELL_NREGS) {
			for (int c = 0; c < BL_CELLS; c++)
				fw->ch[c].r[g->addr] = g->power_on;
		} else if (g->ns_kind == BL_NSK_UNIT && g->addr < BL_UNIT_NREGS) {
			fw->unit[g->addr] = g->power_on;
		}
	}
	for (unsigned a = 0; a < BL_UNIT_NREGS; a++)
		if (ee_unit_addr[a] != 0xFF)
			fw->unit[a] = ee_get16(fw, ee_unit_addr[a]);
	if (UNIT_OF(fw, ZERO_AMP_THRESH) == 0xFFFF)
		UNIT_OF(fw, ZERO_AMP_THRESH) = 2000;
	for (int c = 0; c < BL_CELLS; c++) {
		uint16_t *r = fw->ch[c].r;
		for (unsigned a = BL_CELL_CURRENT_CALIB_OFF; a < BL_CELL_NREGS; a++)
			r[a] = ee_get16(fw, ee_cell_base[a] + 2u * (unsigned)c);
		if (r[BL_CELL_CURR_LOWV_SCA] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_SCA] = 10000;
		if (r[BL_CELL_CURR_LOWV_OFF] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_OFF] = 14500;
		if (r[BL_CELL_CURR_LOWV_OFF_SCA] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_OFF_SCA] = 6500;
	}
}

static void app_start(struct bl_fw *fw, uint64_t t)
{
	bl_fw_sync(fw, t);   /* the outputs were off until now */
	load_power_on(fw);
	for (int c = 0; c < BL_CELLS; c++) {
		struct bl_fw_chan *ch = &fw->ch[c];
		ch->ramp = 0;
		ch->ramp_t = t;
		ch->comp = 0;
		ch->trim_last = 0;
		ch->last_sent = 0;
		ch->led = -1;
		ch->imp_since = 0;
	}
	fw->state = BL_FW_APP;
	fw->busy_until = t;
	fw->isr_t0 = t;
	fw->systicks = 0;
	fw->slices = 0;
	fw->tick_at = t + BL_FW_SYSTICK_US;
	fw->slice_at = t + BL_FW_SLICE_US;
	fw->slice_idx = 0;
	fw->last_led = 0;
	fw->last_psu = 0;
	fw->stream_due_ok = false;   /* SYSTEM_TIMER, last_sent and intervals restart */
	/* The comms MCU reports PSU = 1 after its start-up sweep; the first
	 * real poll comes 1.1 s later. */
	fw->psu_flag = true;
	bl_fw_set_flags_all(fw, t);
}

static bool image_valid(const struct bl_fw *fw)
{
	unsigned sum = 0;
	for (size_t i = 0; i + 1 < BL_FLASH_IMAGE_SIZE; i++)
		sum += fw->flash[i];
	return (uint8_t)sum == fw->flash[BL_FLASH_IMAGE_SIZE - 1];
}

static void go_down(struct bl_fw *fw, uint64_t t, uint64_t delay, bool to_app)
{
	bl_fw_sync(fw, t);   /* currents stop now */
	fw->state = BL_FW_DOWN;
	fw->down_until = t + delay;
	fw->down_to_app = to_app;
	fw->reset_at = UINT64_MAX;
}

void bl_fw_reset(struct bl_fw *fw, uint64_t t)
{
	go_down(fw, t, BL_FW_BOOT_DECIDE_US, false);
}

void bl_fw_boot_stage(struct bl_fw *fw, uint64_t t)
{
	if (fw->down_to_app) {
		app_start(fw, t);
		return;
	}
	if (fw->ee[BL_FW_EE_BOOT_FLAG] != 0 || !image_valid(fw)) {
		fw->state = BL_FW_BOOTLOADER;
		fw->ee[BL_FW_EE_BOOT_FLAG] = 0;
		fw->bl_erased = false;
		fw->bl_addr = BL_FLASH_BASE;
		fw->busy_until = t;
		return;
	}
	fw->down_until = t + BL_FW_APP_INIT_US;
	fw->down_to_app = true;
}

void bl_fw_boot_command(struct bl_fw *fw, uint64_t t, const uint8_t pkt[5], uint8_t resp[5],
                        uint64_t *delay)
{
	bool wr = pkt[2] & 0x80;
	unsigned addr = pkt[2] & 0x7F;
	uint16_t v = bl_le16_get(pkt + 3);
	bool ok = false;
	uint16_t out = 0;

	switch (addr) {
	case BL_BOOT_BOOTLOAD:
		if (wr && image_valid(fw)) {
			ok = true;
			go_down(fw, t, BL_FW_APP_INIT_US, true);
		}
		break;
	case BL_BOOT_ADDR:
		if (!wr) {
			ok = true;
			out = fw->bl_addr;
		} else if (v < BL_FLASH_BASE) {
			fw->bl_addr = BL_FLASH_BASE;
		} else {
			ok = true;
			fw->bl_addr = v;
		}
		break;
	case BL_BOOT_DATA: {
		unsigned off = (unsigned)fw->bl_addr - BL_FLASH_BASE;
		bool in = off < BL_FLASH_IMAGE_SIZE;
		ok = true;
		if (!wr) {
			out = in ? fw->flash[off] : 0;
			break;
		}
		if (!fw->bl_erased) {
			memset(fw->flash, 0xFF, sizeof fw->flash);
			fw->bl_erased = true;
			*delay += BL_FW_ERASE_US;
		}
		if (in)
			fw->flash[off] = (uint8_t)(v & 0xFF);
		break;
	}
	default:
		/* Other addresses get the bootloader's odd answers: 257 to a
		 * read with its address byte, 257 to a write with 0x82. */
		if (wr)
			resp[2] = 0x82;
		break;
	}
	if (ok)
		bl_le16_put(resp + 3, wr ? 0 : out);
}

/* ---- Power-up ----------------------------------------------------------- */

static void default_eeprom(struct bl_fw *fw, const struct bl_fw_setup *s)
{
	memset(fw->ee, 0xFF, sizeof fw->ee);
	/* Even an uncalibrated unit was flashed through its bootloader, which
	 * cleared the boot flag on entry. */
	fw->ee[BL_FW_EE_BOOT_FLAG] = 0;
	if (s->blank_eeprom)
		return;
	/* Nominal identity calibration: zero offsets, unity scales, the
	 * board's thermistor values. */
	ee_put16(fw, 0x00, s->serial_num);
	ee_put16(fw, 0x32, s->device_id);
	for (unsigned c = 0; c < BL_CELLS; c++) {
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_SCA] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_TEMP_CALIB_R] + 2 * c, 1500);
		ee_put16(fw, ee_cell_base[BL_CELL_TEMP_CALIB_B] + 2 * c, 3380);
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_PP] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_VOLTAGE_CALIB_PP] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_CALIB_PP_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_VOLT_CALIB_PP_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_SCA] + 2 * c, 10000);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_OFF] + 2 * c, 14500);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_OFF_SCA] + 2 * c, 6500);
	}
	ee_put16(fw, 0x34, 0);
	ee_put16(fw, 0x36, 16384);
	ee_put16(fw, 0x38, 0);
	ee_put16(fw, 0x3A, 16384);
	ee_put16(fw, 0x4C, 2000);
}

void bl_fw_init(struct bl_fw *fw, const struct bl_fw_setup *s,
                const struct bl_fw_hooks *h, uint64_t now)
{
	memset(fw, 0, sizeof *fw);
	fw->hooks = *h;
	fw->vcc_v = s->vcc_v;
	fw->psu_power = s->psu_power;
	fw->ambient_c = s->ambient_c;
	fw->noise_v = s->noise_v;
	fw->noise_a = s->noise_a;
	fw->noise_temp_c = s->noise_temp_c;
	fw->reset_at = UINT64_MAX;
	bl_rng_seed(&fw->rng, s->seed);

	double sum[8] = {0};
	for (int i = 0; i < 256; i++) {
		long v = lround(127.5 + 127.5 * sin(2.0 * 3.14159265358979323846 * i / 256.0));
		fw->sine[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		for (int m = 0; m < 8; m++)
			sum[m] += fw->sine[i] >> m;
	}
	for (int m = 0; m < 8; m++)
		fw->sine_mean[m] = sum[m] / 256.0;

	for (int c = 0; c < BL_CELLS; c++) {
		fw->ch[c].phys_t = now;
		fw->ch[c].led = -1;
		if (s->slot_used[c]) {
			bl_cell_init(&fw->ch[c].cell, &s->cells[c]);
			fw->ch[c].present = true;
		}
	}
	default_eeprom(fw, s);
	if (s->image)
		memcpy(fw->flash, s->image, sizeof fw->flash);
	else
		memset(fw->flash, 0xFF, sizeof fw->flash);

	/* Plugged in long enough ago that the boot is over. */
	fw->state = BL_FW_DOWN;
	fw->down_to_app = false;
	bl_fw_boot_stage(fw, now);
	if (fw->state == BL_FW_DOWN) {
		app_start(fw, now);
		/* The comms MCU has been polled long ago: start with its truth. */
		if (fw->hooks.psu_poll) {
			fw->psu_flag = fw->hooks.psu_poll(fw->hooks.ud, now) != 0;
			bl_fw_set_flags_all(fw, now);
		}
	}
}
