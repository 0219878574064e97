/* sim/fw_parts.h - what the parts of the firmware model share; internal
 * to firmware.c (registers, commands, the mode state machine, the 100 ms
 * tick), fw_current.c (current control and the cell physics), fw_measure.c
 * (measurement latches and streams) and fw_boot.c (power-up, EEPROM,
 * reset and bootloader). Everything else uses sim/firmware.h.
 */
#ifndef BL_SIM_FW_PARTS_H
#define BL_SIM_FW_PARTS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/proto.h"
#include "core/regs.h"
#include "sim/firmware.h"
#include "sim/rng.h"

#define UNIT_OF(fw, a) ((fw)->unit[BL_UNIT_##a])

/* Register values as the firmware's int16 arithmetic sees them. */
static inline int s16(uint16_t v)
{
	return (int16_t)v;   /* two's complement: GCC and Clang define it so */
}

static inline uint16_t u16(int64_t v)
{
	return (uint16_t)((uint64_t)v & 0xFFFF);
}

/* lround/llround (halves away from zero) without the library call: the
 * readings are far inside 2^52, where x minus its truncation is exact. */
static inline long round_half_away(double x)
{
	if (!(fabs(x) < 4503599627370496.0))
		return lround(x);   /* NaN, infinities, huge: the library's answer */
	long i = (long)x;
	double f = x - (double)i;
	if (f >= 0.5)
		i++;
	else if (f <= -0.5)
		i--;
	return i;
}

static inline bool driving(uint16_t mode)
{
	return mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE;
}

static inline bool active(uint16_t mode)
{
	return driving(mode) || mode == BL_MODE_IMPEDANCE;
}

static inline double gauss(struct bl_fw *fw, double sigma)
{
	/* No draw when the noise is off: a silent board costs nothing. */
	return sigma > 0 ? sigma * bl_rng_gauss(&fw->rng) : 0.0;
}

static inline uint16_t ee_get16(const struct bl_fw *fw, unsigned a)
{
	return bl_le16_get(&fw->ee[a]);
}

static inline void ee_put16(struct bl_fw *fw, unsigned a, uint16_t v)
{
	bl_le16_put(&fw->ee[a], v);
}

/* ---- fw_current.c: current control and the cells ------------------------ */

/* Integrate every cell (bl_fw_phys_sync: slot c's) up to t. Callers sync
 * before changing anything the applied current depends on. */
void bl_fw_sync(struct bl_fw *fw, uint64_t t);
void bl_fw_phys_sync(struct bl_fw *fw, int c, uint64_t t);
/* bl_fw_phys_sync for a latch, which reads the current at t as well:
 * returns it (the integration has it on the way). */
double bl_fw_latch_sync(struct bl_fw *fw, int c, uint64_t t);
/* MODE and CURRENT_SETPOINT writes, which restart the duty ramp. */
void bl_fw_set_mode(struct bl_fw *fw, int c, uint64_t t, uint16_t mode);
void bl_fw_set_setpoint(struct bl_fw *fw, int c, uint64_t t, uint16_t v);
/* The duty applied in CHARGE/DISCHARGE now: ramp, compensation, clamps. */
uint16_t bl_fw_ramped_duty(const struct bl_fw *fw, int c, uint64_t t);
/* TRIM_OUTPUT: one compensation step after a CURRENT latch. */
void bl_fw_trim(struct bl_fw *fw, int c, uint64_t t);

/* ---- firmware.c: the mode state machine ---------------------------------- */

/* STATUS from the latest readings, MODE changes and the LED of slot c. */
void bl_fw_set_flags(struct bl_fw *fw, int c, uint64_t t);
void bl_fw_set_flags_all(struct bl_fw *fw, uint64_t t);

/* ---- fw_measure.c: latches and streams ------------------------------------ */

/* The end of a 102.4 ms slice at t: one channel, the temperatures or VCC. */
void bl_fw_slice_end(struct bl_fw *fw, uint64_t t);
/* Stream packets due by SYSTEM_TIMER, leaving at t. SYSTEM_TIMER moves
 * only with systicks, so before stream_due nothing is (the 100 ms tick and
 * every command ask). */
void bl_fw_send_due_streams(struct bl_fw *fw, uint64_t t);

static inline void bl_fw_send_streams(struct bl_fw *fw, uint64_t t)
{
	if (!fw->stream_due_ok || fw->systicks >= fw->stream_due)
		bl_fw_send_due_streams(fw, t);
}

/* ---- fw_boot.c: boot stages, EEPROM, bootloader ----------------------------- */

/* The DOWN state's next stage, due at t. */
void bl_fw_boot_stage(struct bl_fw *fw, uint64_t t);
/* One namespace-5 packet in the bootloader; fills resp and adds the time
 * it blocks to *delay. */
void bl_fw_boot_command(struct bl_fw *fw, uint64_t t, const uint8_t pkt[5], uint8_t resp[5],
                        uint64_t *delay);
/* EEPROM address of cell register addr of slot c, or of unit register
 * addr; -1 for a register kept in RAM only. */
int bl_fw_ee_cell_addr(unsigned addr, int c);
int bl_fw_ee_unit_addr(unsigned addr);

#endif
