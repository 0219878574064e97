/* sim/simdev.h - one virtual Batlab: the firmware model (sim/firmware.c)
 * holding four cell slots (sim/cell.h), seen from outside as a byte pipe
 * with a clock.
 *
 * Time is an absolute microsecond count supplied by the caller (virtual or
 * real); the device never reads a clock. Host bytes go in with
 * bl_simdev_host_write(); device bytes (responses, streams) come out of
 * bl_simdev_host_read() once their modelled delivery time has come.
 * bl_simdev_next_event_us() tells an event loop when the next byte will be
 * ready, so virtual time can jump straight there.
 */
#ifndef BL_SIM_SIMDEV_H
#define BL_SIM_SIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cell.h"

/* Faults a layout can schedule or a test can inject at once. */
enum bl_fault_kind {
	BL_FAULT_CELL_REMOVE = 1,   /* slot: the cell is taken out */
	BL_FAULT_CELL_INSERT,       /* slot: a cell (params) is put in */
	BL_FAULT_UNPLUG,            /* the USB link closes */
	BL_FAULT_RESET,             /* the measure MCU resets */
	BL_FAULT_NO_REPLY,          /* the next `count` answers are lost (the
	                             * commands still take effect; COMMS too) */
	BL_FAULT_LATE_REPLY,        /* the next `count` answers come `value` s late */
	BL_FAULT_GARBAGE,           /* `count` random bytes are sent to the host */
	BL_FAULT_DROP_BYTES,        /* the next `count` device->host bytes are lost */
	BL_FAULT_VCC_SAG,           /* USB supply becomes `value` volts */
	BL_FAULT_PSU_LOST,          /* external supply removed (value 0) / back (1) */
	BL_FAULT_THERMISTOR_OPEN,   /* slot: thermistor open (value 0) / mended (1) */
	BL_FAULT_SELF_HEATING,      /* slot: the cell heats itself by `value` W */
};
/* count <= 0 means 1 where a count is used; a CELL_INSERT whose params
 * have no capacity or OCV table inserts a default nmc18650. */

struct bl_fault {
	enum bl_fault_kind kind;
	uint64_t at_us;             /* when (absolute); 0 with _now() */
	int slot;                   /* 0..3 where it applies, else -1 */
	int count;
	double value;
	struct bl_cell_params cell; /* for CELL_INSERT */
};

#define BL_SIM_MAX_FAULTS 32
#define BL_SIM_MAX_QUEUE 64

struct bl_simdev_config {
	uint16_t serial_num;        /* UNIT SERIAL_NUM */
	uint16_t device_id;         /* UNIT DEVICE_ID */
	double vcc_v;               /* USB supply, nominal 5.0 (0 means 5.0) */
	bool psu;                   /* external supply present */
	double psu_v;               /* its voltage (0 means 5.0) */
	double ambient_c;           /* what the thermistor of an empty slot reads */
	bool slot_used[4];          /* false: empty slot */
	struct bl_cell_params cells[4];
	int nfaults;
	struct bl_fault faults[BL_SIM_MAX_FAULTS];
	/* Operator model: after a cell is removed, the next one from this list
	 * is inserted `operator_delay_s` later. */
	int nqueue;
	struct bl_cell_params queue[BL_SIM_MAX_QUEUE];
	double operator_delay_s;
	uint64_t seed;              /* measurement noise */
	double noise_v;             /* RMS voltage noise, volts */
	double noise_a;             /* RMS current noise, amps */
	double noise_temp_c;        /* RMS thermistor noise, kelvin */
	/* An unprogrammed unit: every EEPROM byte 0xFF (serial 0xFFFF, no
	 * calibration; the firmware's blank substitutes apply). */
	bool blank_eeprom;
	/* Flash image (BL_FLASH_IMAGE_SIZE bytes, copied at bl_simdev_new);
	 * NULL gives a synthetic image with a valid checksum. An invalid
	 * image leaves the device in its bootloader. */
	const uint8_t *firmware_image;
};

struct bl_simdev;

/* A default configuration: serial 1000 + index, device id 0, 5.0 V, PSU
 * present, four nmc18650 cells at 90 % state of charge, 25 degC, seed
 * index + 1, noise 0.5 mV / 1 mA / 0.05 K, operator delay 30 s. */
void bl_simdev_config_default(struct bl_simdev_config *cfg, unsigned index);

/* A deterministic synthetic firmware image of BL_FLASH_IMAGE_SIZE bytes
 * whose last byte is the checksum of the others (the firmware's own check of an image).
 * Different seeds give different images. */
void bl_sim_firmware_image(uint8_t *out, uint32_t seed);

/* Sort faults by time; faults at the same time keep their order. */
void bl_sim_faults_sort(struct bl_fault *f, int n);

struct bl_simdev *bl_simdev_new(const struct bl_simdev_config *cfg, uint64_t now_us);
void bl_simdev_free(struct bl_simdev *d);

/* Host -> device bytes, at time now_us (the model first advances to now). */
void bl_simdev_host_write(struct bl_simdev *d, uint64_t now_us, const uint8_t *data, size_t n);
/* Device -> host bytes due at or before now_us (the model advances to now). */
size_t bl_simdev_host_read(struct bl_simdev *d, uint64_t now_us, uint8_t *buf, size_t max);
/* Absolute time at which host_read would next return bytes (possibly in
 * the past if bytes wait unread); UINT64_MAX when nothing is scheduled (no
 * streams enabled, no reply pending, no scheduled UNPLUG or GARBAGE
 * fault). It may be early (a reply that will be dropped), never late.
 * Not const: the answer is cached until the next call that changes the
 * device. */
uint64_t bl_simdev_next_event_us(struct bl_simdev *d);
/* True once an UNPLUG fault has happened: the link reads as closed, writes
 * are ignored, next_event_us is UINT64_MAX and the model stops. */
bool bl_simdev_unplugged(const struct bl_simdev *d);
/* Apply a fault now (slot faults ignore a slot outside 0..3). */
void bl_simdev_fault(struct bl_simdev *d, uint64_t now_us, const struct bl_fault *f);
/* Advance the model without I/O (for benchmarks and tests). Cells are
 * integrated lazily (at their latches and before anything changes their
 * current), so bl_simdev_cell() shows a state up to one latch period old,
 * except right after bl_simdev_advance(), which also takes an up-to-date
 * view of them. Looking never changes the run. */
void bl_simdev_advance(struct bl_simdev *d, uint64_t now_us);

/* Inspection, for tests and `batlab sim --describe`: the model's truth. */
const struct bl_cell *bl_simdev_cell(const struct bl_simdev *d, int slot); /* NULL if empty */
double bl_simdev_cell_current(const struct bl_simdev *d, int slot); /* applied, signed A */
uint16_t bl_simdev_reg(const struct bl_simdev *d, uint8_t ns, uint8_t addr); /* raw peek */

enum bl_simdev_mcu {
	BL_SIMDEV_DOWN,             /* measure MCU resetting / starting */
	BL_SIMDEV_BOOTLOADER,
	BL_SIMDEV_APP,
};
enum bl_simdev_mcu bl_simdev_mcu_state(const struct bl_simdev *d);
uint8_t bl_simdev_eeprom(const struct bl_simdev *d, uint8_t addr);
const uint8_t *bl_simdev_flash(const struct bl_simdev *d);  /* BL_FLASH_IMAGE_SIZE */

struct bl_simdev_stats {
	uint64_t commands;          /* packets the measure MCU handled */
	uint64_t comms_commands;    /* packets the comms MCU answered */
	uint64_t streams;           /* stream packets generated */
	uint64_t latches;           /* channel measurement latches */
	uint64_t rx_overflows;      /* packets lost in the measure RX ring */
	uint64_t tx_dropped;        /* packets lost because the host never read */
	uint64_t faults;            /* faults applied */
};
void bl_simdev_stats(const struct bl_simdev *d, struct bl_simdev_stats *out);

#endif
