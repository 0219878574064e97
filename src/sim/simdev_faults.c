/* sim/simdev_faults.c - faults on a virtual Batlab (scheduled by a layout
 * or injected at once) and the operator who refills emptied slots from the
 * layout's queue of cells.
 */
#include <math.h>

#include "core/bl.h"
#include "sim/simdev_parts.h"

const struct bl_cell_params *bl_simdev_cell_or_default(const struct bl_cell_params *p)
{
	return p->capacity_ah > 0 && p->ocv_points >= 2 ? p : bl_cell_profile("nmc18650");
}

static bool slot_ok(const struct bl_fault *f)
{
	if (f->slot >= 0 && f->slot < BL_CELLS)
		return true;
	bl_log(BL_LOG_WARN, "sim", "fault %d: slot %d out of range, ignored", (int)f->kind, f->slot);
	return false;
}

void bl_simdev_apply_fault(struct bl_simdev *d, uint64_t t, const struct bl_fault *f)
{
	d->st.faults++;
	switch (f->kind) {
	case BL_FAULT_CELL_REMOVE:
		if (!slot_ok(f))
			break;
		bl_fw_cell_remove(&d->fw, t, f->slot);
		if (d->queue_next < d->cfg.nqueue) {
			double s = d->cfg.operator_delay_s > 0 ? d->cfg.operator_delay_s : 0;
			d->op_at[f->slot] = t + (uint64_t)llround(s * 1e6);
			d->op_any = true;
			d->op_idx[f->slot] = d->queue_next++;
		}
		break;
	case BL_FAULT_CELL_INSERT:
		if (slot_ok(f))
			bl_fw_cell_insert(&d->fw, t, f->slot, bl_simdev_cell_or_default(&f->cell));
		break;
	case BL_FAULT_UNPLUG:
		d->unplugged = true;
		d->out_n = 0;
		d->rx_n = 0;
		break;
	case BL_FAULT_RESET:
		d->rx_n = 0;
		bl_fw_reset(&d->fw, t);
		break;
	case BL_FAULT_NO_REPLY:
		d->no_reply += f->count > 0 ? f->count : 1;
		break;
	case BL_FAULT_LATE_REPLY:
		d->late_count += f->count > 0 ? f->count : 1;
		d->late_us = f->value > 0 ? (uint64_t)llround(f->value * 1e6) : 0;
		break;
	case BL_FAULT_GARBAGE: {
		int n = f->count > 0 ? f->count : 1;
		while (n > 0) {
			uint8_t b[13];
			int k = n < 13 ? n : 13;
			for (int i = 0; i < k; i++)
				b[i] = (uint8_t)bl_rng_below(&d->line_rng, 256);
			bl_simdev_out_push(d, t, b, (size_t)k, false);
			n -= k;
		}
		break;
	}
	case BL_FAULT_DROP_BYTES:
		d->drop_bytes += f->count > 0 ? f->count : 1;
		break;
	case BL_FAULT_VCC_SAG:
		bl_fw_set_vcc(&d->fw, t, f->value > 0 ? f->value : 0);
		break;
	case BL_FAULT_PSU_LOST:
		bl_fw_set_psu_power(&d->fw, t, f->value != 0);
		break;
	case BL_FAULT_THERMISTOR_OPEN:
		if (slot_ok(f))
			bl_fw_set_thermistor_open(&d->fw, t, f->slot, f->value == 0);
		break;
	case BL_FAULT_SELF_HEATING:
		if (slot_ok(f))
			bl_fw_set_self_heating(&d->fw, t, f->slot, f->value > 0 ? f->value : 0);
		break;
	default:
		bl_log(BL_LOG_WARN, "sim", "unknown fault kind %d ignored", (int)f->kind);
		d->st.faults--;
		break;
	}
}

void bl_simdev_operator_insert(struct bl_simdev *d, int slot, uint64_t t)
{
	d->op_at[slot] = UINT64_MAX;
	bl_fw_cell_insert(&d->fw, t, slot, bl_simdev_cell_or_default(&d->cfg.queue[d->op_idx[slot]]));
}

void bl_sim_faults_sort(struct bl_fault *f, int n)
{
	/* Stable, so faults at the same instant keep the layout's order. */
	for (int i = 1; i < n; i++) {
		struct bl_fault x = f[i];
		int j = i;
		while (j > 0 && f[j - 1].at_us > x.at_us) {
			f[j] = f[j - 1];
			j--;
		}
		f[j] = x;
	}
}
