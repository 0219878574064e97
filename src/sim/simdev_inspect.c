/* sim/simdev_inspect.c - the model's truth about a virtual Batlab, for
 * tests and `batlab sim --describe`: cells, registers, MCU state, EEPROM,
 * flash and counters. Looking never changes a run.
 */
#include "core/proto.h"
#include "core/regs.h"
#include "sim/simdev_parts.h"

const struct bl_cell *bl_simdev_cell(const struct bl_simdev *d, int slot)
{
	if (slot < 0 || slot >= BL_CELLS || !d->fw.ch[slot].present)
		return NULL;
	if (d->view_t == d->now && d->view_ok[slot])
		return &d->view[slot];
	return &d->fw.ch[slot].cell;
}

double bl_simdev_cell_current(const struct bl_simdev *d, int slot)
{
	if (slot < 0 || slot >= BL_CELLS)
		return 0;
	return bl_fw_applied_current(&d->fw, slot, d->now);
}

uint16_t bl_simdev_reg(const struct bl_simdev *d, uint8_t ns, uint8_t addr)
{
	switch (bl_ns_kind(ns)) {
	case BL_NSK_CELL:
		if (addr >= BL_CELL_NREGS)
			break;
		if (addr == BL_CELL_DUTY && (d->fw.ch[ns].r[BL_CELL_MODE] == BL_MODE_CHARGE
		                             || d->fw.ch[ns].r[BL_CELL_MODE] == BL_MODE_DISCHARGE))
			return bl_fw_duty_now(&d->fw, ns, d->now);
		return d->fw.ch[ns].r[addr];
	case BL_NSK_UNIT:
		if (addr < BL_UNIT_NREGS)
			return d->fw.unit[addr];
		break;
	case BL_NSK_COMMS:
		if (addr == BL_COMMS_PSU)
			return d->psu_det;
		if (addr < BL_COMMS_NREGS)
			return d->comms[addr];
		break;
	case BL_NSK_BOOTLOADER:
		if (addr == BL_BOOT_ADDR)
			return d->fw.bl_addr;
		if (addr == BL_BOOT_DATA) {
			unsigned off = (unsigned)d->fw.bl_addr - BL_FLASH_BASE;
			return off < BL_FLASH_IMAGE_SIZE ? d->fw.flash[off] : 0;
		}
		break;
	default:
		break;
	}
	return BL_COMMAND_ERROR;
}

enum bl_simdev_mcu bl_simdev_mcu_state(const struct bl_simdev *d)
{
	switch (d->fw.state) {
	case BL_FW_APP:
		return BL_SIMDEV_APP;
	case BL_FW_BOOTLOADER:
		return BL_SIMDEV_BOOTLOADER;
	default:
		return BL_SIMDEV_DOWN;
	}
}

uint8_t bl_simdev_eeprom(const struct bl_simdev *d, uint8_t addr)
{
	return d->fw.ee[addr];
}

const uint8_t *bl_simdev_flash(const struct bl_simdev *d)
{
	return d->fw.flash;
}

void bl_simdev_stats(const struct bl_simdev *d, struct bl_simdev_stats *out)
{
	*out = d->st;
	out->commands = d->fw.n_commands;
	out->streams = d->fw.n_streams;
	out->latches = d->fw.n_latches;
}
