/* sim/simdev_comms.c - the comms MCU of a virtual Batlab: namespace 0xFF,
 * the LED registers the measure MCU writes, the external supply's ADC and
 * its detection with hysteresis, and the hooks through which the measure
 * MCU's packets reach the host.
 */
#include <math.h>

#include "core/regs.h"
#include "sim/simdev_parts.h"

#define COMMS_PROC_US 100
#define COMMS_MEAS_US 500000  /* PSU_VOLTAGE sampling period */
#define PSU_DIODE_V 0.3       /* assumed; the source does not say */

/* ---- Firmware hooks ----------------------------------------------------- */

static void hook_to_host(void *ud, uint64_t t, const uint8_t *pkt, size_t n)
{
	struct bl_simdev *d = ud;
	/* Packets leave the measure MCU one after the other on the UART. */
	uint64_t start = t > d->up_free ? t : d->up_free;
	d->up_free = start + n * UART_BYTE_US;
	uint64_t due = d->up_free + USB_US;
	if (n == 5)
		bl_simdev_out_response(d, due, pkt);
	else
		bl_simdev_out_push(d, due, pkt, n, false);
}

static void hook_led(void *ud, uint64_t t, int cell, uint16_t value)
{
	struct bl_simdev *d = ud;
	(void)t;
	d->comms[BL_COMMS_LED0 + cell] = value;
}

static uint16_t hook_psu_poll(void *ud, uint64_t t)
{
	struct bl_simdev *d = ud;
	(void)t;
	d->comms[BL_COMMS_PSU] = d->psu_det;
	return d->comms[BL_COMMS_PSU];
}

/* ---- Comms MCU: PSU detection and namespace 0xFF ---------------------------- */

uint16_t bl_simdev_psu_raw(const struct bl_simdev *d)
{
	if (!d->fw.psu_power)
		return 0;
	/* Through a diode, then halved, into a 10-bit ADC at 4.096 V. */
	double pin = (d->cfg.psu_v - PSU_DIODE_V) / 2.0;
	long raw = lround(pin / 4.096 * 1024.0);
	return (uint16_t)(raw < 0 ? 0 : raw > 1023 ? 1023 : raw);
}

void bl_simdev_comms_measure(struct bl_simdev *d)
{
	uint16_t raw = bl_simdev_psu_raw(d);
	uint16_t lo = d->comms[BL_COMMS_PSU_CUTOFF_LOW];
	uint16_t hi = d->comms[BL_COMMS_PSU_CUTOFF_HIGH];
	uint16_t hy = d->comms[BL_COMMS_PSU_CUTOFF_HYST];
	d->comms[BL_COMMS_PSU_VOLTAGE] = raw;
	if (d->psu_det) {
		/* Lost only on the second out-of-range reading in a row. */
		if (raw < lo || raw > hi) {
			if (++d->psu_out >= 2)
				d->psu_det = false;
		} else {
			d->psu_out = 0;
		}
	} else if (raw > lo + hy && raw + hy < hi) {
		d->psu_det = true;
		d->psu_out = 0;
	}
	d->comms_next += COMMS_MEAS_US;
}

void bl_simdev_comms_command(struct bl_simdev *d, uint64_t t, const uint8_t p[5])
{
	uint8_t r[5] = {0xAA, 0xFF, p[2], 0x01, 0x01};
	unsigned addr = p[2] & 0x7F;
	d->st.comms_commands++;
	if (addr < BL_COMMS_NREGS) {
		uint16_t v = 0;
		if (p[2] & 0x80) {
			d->comms[addr] = (uint16_t)(p[3] | p[4] << 8);
		} else {
			d->comms[BL_COMMS_PSU] = d->psu_det;   /* reads refresh PSU */
			v = d->comms[addr];
		}
		r[3] = (uint8_t)(v & 0xFF);
		r[4] = (uint8_t)(v >> 8);
	}
	bl_simdev_out_response(d, t + USB_US + COMMS_PROC_US + USB_US, r);
}

void bl_simdev_comms_init(struct bl_simdev *d, uint64_t now)
{
	for (size_t i = 0; i < bl_regs_count; i++)
		if (bl_regs[i].ns_kind == BL_NSK_COMMS && bl_regs[i].addr < BL_COMMS_NREGS)
			d->comms[bl_regs[i].addr] = bl_regs[i].power_on;
	d->psu_det = d->cfg.psu;
	d->comms[BL_COMMS_PSU] = d->cfg.psu;
	d->comms_next = now + COMMS_MEAS_US;
	/* Read from the board once the measure MCU has it (bl_fw_init). */
	d->comms[BL_COMMS_PSU_VOLTAGE] = 0;
}

struct bl_fw_hooks bl_simdev_fw_hooks(struct bl_simdev *d)
{
	struct bl_fw_hooks h = {
		.ud = d, .to_host = hook_to_host, .led = hook_led, .psu_poll = hook_psu_poll,
	};
	return h;
}
