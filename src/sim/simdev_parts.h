/* sim/simdev_parts.h - what the parts of one virtual Batlab share;
 * internal to simdev.c (the USB link, the UART to the measure MCU, the
 * output queue, the event loop), simdev_comms.c (the comms MCU),
 * simdev_faults.c (faults and the operator) and simdev_inspect.c. Everything
 * else uses sim/simdev.h.
 */
#ifndef BL_SIM_SIMDEV_PARTS_H
#define BL_SIM_SIMDEV_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/regs.h"
#include "sim/firmware.h"
#include "sim/rng.h"
#include "sim/simdev.h"

#define USB_US 500            /* one USB frame, either direction (average) */
#define UART_BYTE_US 87       /* 115200 baud 8N1 */
#define RX_QUEUE 64           /* packets on their way or in the RX ring */

struct out_pkt {
	uint64_t due;
	uint8_t len, off;
	bool response;
	uint8_t b[13];
};

struct rx_pkt {
	uint64_t arrive;
	uint8_t b[5];
};

struct bl_simdev {
	struct bl_simdev_config cfg;
	struct bl_fw fw;
	uint64_t now;
	bool unplugged;

	/* host -> comms USB parser */
	uint8_t hb[5];
	size_t hlen;
	/* comms -> measure UART */
	struct rx_pkt rx[RX_QUEUE];
	unsigned rx_head, rx_n;
	uint64_t mcu_free;
	uint64_t down_free;           /* comms -> measure UART busy until */
	uint64_t up_free;             /* measure -> comms UART busy until */
	/* -> host, sorted by due time */
	struct out_pkt *out;
	size_t out_cap, out_head, out_n;

	/* comms MCU */
	uint16_t comms[BL_COMMS_NREGS];
	bool psu_det;
	int psu_out;
	uint64_t comms_next;

	/* faults, sorted by time */
	struct bl_fault *faults;
	int nfaults, next_fault;
	int no_reply;
	int late_count;
	uint64_t late_us;
	int drop_bytes;
	struct bl_rng line_rng;

	/* operator */
	int queue_next;
	uint64_t op_at[BL_CELLS];
	int op_idx[BL_CELLS];
	bool op_any;                  /* some op_at was ever set: worth a look */

	/* bl_simdev_next_event_us, computed once after each change: an event
	 * loop asks several times per step, and only the mutating calls
	 * (host_write, host_read, fault, advance) can move it. */
	uint64_t next_ev;
	bool next_ok;
	/* The earliest event inside the device (run_until's loop), valid
	 * until a packet or a fault comes from outside: most calls find
	 * nothing due and only move the clock. */
	uint64_t due;
	bool due_ok;

	struct bl_simdev_stats st;
	/* Cells as of view_t (bl_simdev_advance), for inspection only. */
	struct bl_cell view[BL_CELLS];
	bool view_ok[BL_CELLS];
	uint64_t view_t;
};

/* ---- simdev.c ------------------------------------------------------------ */

/* Queue a whole packet for the host, due at `due` (after the DROP_BYTES
 * fault has taken its bytes). */
void bl_simdev_out_push(struct bl_simdev *d, uint64_t due, const uint8_t *b, size_t n,
                        bool response);
/* An answer to a command: subject to the NO_REPLY and LATE_REPLY faults. */
void bl_simdev_out_response(struct bl_simdev *d, uint64_t due, const uint8_t b[5]);

/* ---- simdev_comms.c -------------------------------------------------------- */

/* Power-on registers and the PSU detection state of the comms MCU; its
 * first PSU measurement is due one period after now. */
void bl_simdev_comms_init(struct bl_simdev *d, uint64_t now);
/* PSU_VOLTAGE as the comms ADC reads the external supply now. */
uint16_t bl_simdev_psu_raw(const struct bl_simdev *d);
/* The periodic PSU measurement and detection, due at d->comms_next. */
void bl_simdev_comms_measure(struct bl_simdev *d);
/* A namespace 0xFF packet that reached the comms MCU at t. */
void bl_simdev_comms_command(struct bl_simdev *d, uint64_t t, const uint8_t p[5]);
/* How the measure MCU reaches the host and the comms MCU. */
struct bl_fw_hooks bl_simdev_fw_hooks(struct bl_simdev *d);

/* ---- simdev_faults.c ------------------------------------------------------- */

void bl_simdev_apply_fault(struct bl_simdev *d, uint64_t t, const struct bl_fault *f);
/* The operator puts the next queued cell into slot at t. */
void bl_simdev_operator_insert(struct bl_simdev *d, int slot, uint64_t t);
/* p, or the default nmc18650 when p has no capacity or OCV table. */
const struct bl_cell_params *bl_simdev_cell_or_default(const struct bl_cell_params *p);

#endif
