/* sim/firmware.h - the measure MCU of a virtual Batlab (firmware v7) and
 * the analogue board around it: registers, EEPROM, flash and bootloader,
 * the mode state machine, the staggered measurement latches, current
 * control, the watchdog and stream packets, plus the four cell slots whose
 * physics (sim/cell.h) the board drives.
 *
 * Internal to src/sim: sim/simdev.c owns one bl_fw per virtual device,
 * routes packets to it (the comms MCU and the USB link live there) and
 * interleaves its events with the rest of the device in time order.
 *
 * Time is in microseconds, absolute, supplied by the caller. The firmware's
 * own clock is the 10 kHz ISR; it is kept as an origin time (isr_t0) plus
 * counts of 100 ms timer ticks and 102.4 ms measurement slices done, so a
 * day of virtual time costs a few events per 100 ms instead of 864 million
 * ISR ticks. A stall that blocks interrupts (EEPROM writes) moves the origin.
 */
#ifndef BL_SIM_FIRMWARE_H
#define BL_SIM_FIRMWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/regs.h"
#include "sim/cell.h"
#include "sim/rng.h"

/* Firmware timing (docs/simulator.md, "Timing constants": the main-loop
 * pass is a model choice). */
#define BL_FW_TICK_US 100               /* TMR2 ISR period */
#define BL_FW_SLICE_US 102400           /* 1024 ticks: one measurement slice */
#define BL_FW_SYSTICK_US 100000         /* 1000 ticks: SYSTEM_TIMER, watchdog */
#define BL_FW_PASS_US 1000              /* one main-loop pass (model choice) */
#define BL_FW_EE_BYTE_US 4000           /* one EEPROM byte, interrupts off */
#define BL_FW_ERASE_US 480000           /* 240 flash rows x 2 ms */
#define BL_FW_BOOT_DECIDE_US 300000     /* bootloader delay after a reset */
#define BL_FW_APP_INIT_US 1200000       /* application start-up busy loop */

#define BL_FW_EEPROM_SIZE 256
#define BL_FW_EE_BOOT_FLAG 0xFF

enum bl_fw_state {
	BL_FW_DOWN,         /* resetting or starting: answers nothing */
	BL_FW_BOOTLOADER,   /* namespace 5 only */
	BL_FW_APP,          /* the application */
};

/* What the measure MCU does to the rest of the device. */
struct bl_fw_hooks {
	void *ud;
	/* A packet (5-byte response or 13-byte stream) leaves the measure MCU
	 * on the UART at time t, towards the host. */
	void (*to_host)(void *ud, uint64_t t, const uint8_t *pkt, size_t n);
	/* Internal LED write (AA FF 8n lo hi) to the comms MCU. */
	void (*led)(void *ud, uint64_t t, int cell, uint16_t value);
	/* Internal PSU poll (AA FF 04): returns the comms PSU register. */
	uint16_t (*psu_poll)(void *ud, uint64_t t);
};

struct bl_fw_chan {
	uint16_t r[BL_CELL_NREGS];   /* the cell namespace */
	/* Current control: the internal ramped duty was `ramp` at
	 * `ramp_t`; from there it moves one count per pass towards the
	 * setpoint. Changed only together with a physics sync. */
	uint16_t ramp;
	uint64_t ramp_t;
	int comp;                    /* TRIM compensation, -99..99 */
	uint16_t trim_last;          /* CURRENT at the last trim decision */
	uint16_t last_sent;          /* SYSTEM_TIMER of the last stream packet */
	int led;                     /* LED code last sent to comms, -1 none */
	uint64_t imp_since;          /* when IMPEDANCE was entered */
	/* The slot. */
	bool present;
	bool therm_open;
	struct bl_cell cell;
	uint64_t phys_t;             /* the cell model is integrated up to here */
	/* Whether the last pass of the mode state machine changed nothing,
	 * and what it decided from: the STATUS it computed, MODE, ERROR, the
	 * LED and SETTINGS. A pass that computes the same STATUS from the
	 * same rest would change nothing either, so it stops there
	 * (firmware.c, flags_hold). */
	bool flags_stable;
	int held_led;
	uint16_t held_status, held_mode, held_error, held_settings;
};

struct bl_fw {
	enum bl_fw_state state;
	uint64_t down_until;         /* DOWN: when the next boot stage runs */
	bool down_to_app;            /* DOWN: that stage starts the application
	                              * (else it is the bootloader's decision) */
	uint64_t busy_until;         /* main loop stalled (EEPROM, erase) */
	uint64_t reset_at;           /* pending reset (after BOOTLOAD), or max */

	uint16_t unit[BL_UNIT_NREGS];
	struct bl_fw_chan ch[BL_CELLS];
	uint8_t ee[BL_FW_EEPROM_SIZE];
	uint8_t flash[BL_FLASH_IMAGE_SIZE];

	/* ISR timeline of the running application. */
	uint64_t isr_t0;             /* time of ISR tick 0, moved by stalls */
	uint64_t systicks;           /* SYSTEM_TIMER increments since start */
	uint64_t slices;             /* slices completed since start */
	/* isr_t0 + (systicks + 1) x BL_FW_SYSTICK_US and the same for slices:
	 * the next tick and slice end, kept with the three (the event loop
	 * asks for them before every step). */
	uint64_t tick_at, slice_at;
	int slice_idx;               /* slice being measured, 0..5 */
	uint16_t last_led;           /* SYSTEM_TIMER at the last LED refresh */
	uint16_t last_psu;           /* SYSTEM_TIMER at the last PSU poll */
	bool psu_flag;               /* the measure MCU's copy of COMMS PSU */
	/* The systicks count at which the first stream packet falls due
	 * (UINT64_MAX: none), valid while stream_due_ok: the 100 ms tick and
	 * every command would otherwise scan the four channels for nothing.
	 * Cleared by REPORT_INTERVAL writes and the application's start. */
	uint64_t stream_due;
	bool stream_due_ok;
	/* Every channel's flags are stable and their inputs unchanged since
	 * (firmware.c, bl_fw_set_flags): a read command needs no pass. */
	bool flags_settled;

	/* Bootloader. */
	uint16_t bl_addr;
	bool bl_erased;              /* the first BL_DATA write erased already */

	/* The board: what the ADCs and the current sinks see. */
	double vcc_v;                /* true USB supply */
	bool psu_power;              /* true external supply present */
	double ambient_c;            /* thermistor of an empty slot */
	double noise_v, noise_a, noise_temp_c;
	struct bl_rng rng;
	uint8_t sine[256];           /* SINETABLE, 0..255 */
	double sine_mean[8];         /* mean of sine[i] >> m */

	struct bl_fw_hooks hooks;

	/* Counters for tests and the notes. */
	uint64_t n_commands, n_streams, n_latches;
};

/* Board and calibration the firmware starts from. */
struct bl_fw_setup {
	uint16_t serial_num, device_id;
	bool blank_eeprom;           /* every EEPROM byte 0xFF (an unprogrammed unit) */
	const uint8_t *image;        /* BL_FLASH_IMAGE_SIZE bytes, or NULL */
	double vcc_v;
	bool psu_power;
	double ambient_c;
	bool slot_used[BL_CELLS];
	const struct bl_cell_params *cells;   /* BL_CELLS entries */
	uint64_t seed;
	double noise_v, noise_a, noise_temp_c;
};

/* Power the measure MCU up at `now`. A valid image with a clear boot flag
 * starts the application at once (the device was plugged in earlier);
 * otherwise it sits in the bootloader. */
void bl_fw_init(struct bl_fw *fw, const struct bl_fw_setup *s,
                const struct bl_fw_hooks *h, uint64_t now);

/* Time of the next internal event (timer tick, slice end, boot stage);
 * UINT64_MAX if none. */
static inline uint64_t bl_fw_next_event(const struct bl_fw *fw)
{
	/* Inline: the device's event loop asks before every step. */
	switch (fw->state) {
	case BL_FW_DOWN:
		return fw->down_until;
	case BL_FW_BOOTLOADER:
		return UINT64_MAX;
	case BL_FW_APP:
		break;
	}
	uint64_t t = fw->tick_at < fw->slice_at ? fw->tick_at : fw->slice_at;
	return fw->reset_at < t ? fw->reset_at : t;
}
/* Process the next internal event, due at t: what bl_fw_next_event just
 * said (the caller has it already; UINT64_MAX does nothing). */
void bl_fw_step(struct bl_fw *fw, uint64_t t);

/* Handle one command packet, which reached the measure MCU at `arrived`,
 * in the main-loop pass at `t` (the caller has already run every internal
 * event due before t). Returns the time the main loop is free for the next
 * packet. Responses leave through hooks.to_host. Packets for a namespace
 * the current state ignores, packets while DOWN, and packets that reached
 * the bootloader while it was erasing, are dropped. */
uint64_t bl_fw_command(struct bl_fw *fw, uint64_t t, uint64_t arrived, const uint8_t pkt[5]);

/* Time at which the next stream packet will be generated if nothing else
 * happens before; UINT64_MAX when no stream is enabled. */
uint64_t bl_fw_next_stream(const struct bl_fw *fw);

/* A reset (button, brown-out, hardware WDT): outputs off, boot again. */
void bl_fw_reset(struct bl_fw *fw, uint64_t t);

/* Board changes (faults, operator). Each integrates the cells up to t
 * with the old conditions before applying the change. */
void bl_fw_cell_insert(struct bl_fw *fw, uint64_t t, int slot, const struct bl_cell_params *p);
void bl_fw_cell_remove(struct bl_fw *fw, uint64_t t, int slot);
void bl_fw_set_vcc(struct bl_fw *fw, uint64_t t, double volts);
void bl_fw_set_psu_power(struct bl_fw *fw, uint64_t t, bool present);
void bl_fw_set_thermistor_open(struct bl_fw *fw, uint64_t t, int slot, bool open);
void bl_fw_set_self_heating(struct bl_fw *fw, uint64_t t, int slot, double watts);
/* A copy of slot's cell integrated up to t, leaving the model alone (so
 * that inspecting never changes a run); false for an empty slot. */
bool bl_fw_cell_view(const struct bl_fw *fw, int slot, uint64_t t, struct bl_cell *out);

/* Inspection. */
double bl_fw_applied_current(const struct bl_fw *fw, int slot, uint64_t t); /* signed A, + charges */
uint16_t bl_fw_duty_now(const struct bl_fw *fw, int slot, uint64_t t);      /* applied PWM duty */

#endif
