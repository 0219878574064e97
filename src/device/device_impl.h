/* device_impl.h - what is behind struct bl_device, for the files that make
 * up one device: device.c (requests, link, watchdog, health), regulate.c
 * (current regulation), ops.c and ops_channel.c (operations). Modules that
 * only add operations (flash.c, calib.c) use op.h and stay out of here.
 */
#ifndef BL_DEVICE_IMPL_H
#define BL_DEVICE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/proto.h"
#include "device/device.h"

#define BL_DEVICE_MOD "device"      /* log module name */
#define BL_RELAY_SETTLE_US 10000    /* hosts wait 10 ms after MODE = CHARGE */

struct bl_channel_state {
	struct bl_snapshot snap;
	uint16_t target_raw;         /* user's target; 0 = not regulating */
	uint16_t op_raw;             /* setpoint we last wrote */
	uint64_t last_change_us;
	/* Bumped whenever the channel is started or made safe: an operation
	 * that began before (an impedance measurement) must not put back a
	 * mode that is no longer wanted. */
	unsigned gen;
	/* The charge counter as last read in full (ops.c, bl_op_charge): a
	 * read soon after needs only its low half. charge_epoch counts the
	 * writes that could change it otherwise (CHARGEL/H, SETTINGS). */
	uint32_t charge_raw;
	uint64_t charge_read_us;     /* host time the read was sent */
	unsigned charge_epoch;       /* charge_epoch when it was read */
	bool charge_known;
};

struct bl_device {
	struct bl_loop *loop;
	struct bl_link *link;
	struct bl_device_opts opts;
	struct bl_reframer rf;
	struct bl_identity id;
	struct bl_channel_state ch[BL_CELLS];

	struct bl_request *queue_head, *queue_tail;
	struct bl_request *flight_head, *flight_tail;
	/* Finished requests kept for the next submit: a sample costs three
	 * or four requests, and malloc/free was a visible part of that. */
	struct bl_request *spare;
	int nspare;
	int in_flight;
	struct bl_timer timeout;
	struct bl_op *ops;

	struct bl_timer watchdog;
	struct bl_timer health;
	bool watchdog_on;
	uint16_t last_timer;
	bool have_timer;
	uint64_t timer_read_us;      /* host time of the last SYSTEM_TIMER read (health); 0: none */
	uint64_t timer_answer_us;    /* host time the connect sequence's SYSTEM_TIMER read was answered */
	double clock_rate;           /* device seconds per host second, never under (watchdog_by_clock); 0: unknown */
	uint64_t clock_from_us;      /* host time of the first SYSTEM_TIMER read the average counts from */
	double clock_ticks;          /* SYSTEM_TIMER ticks since then */
	uint16_t settings;
	unsigned settings_writes;    /* SETTINGS writes submitted */
	unsigned settings_seen;      /* settings_writes when `settings` was last read */
	unsigned charge_epoch;       /* bumped by a write that may change a counter */

	int consecutive_failures;
	bool silent;
	bool closed;
	bool watchdog_pending;       /* a refresh is queued or in flight */
	bool health_pending;
	int dispatching;             /* inside a callback of this device */

	bl_stream_fn stream_fn;
	void *stream_ud;
	bl_event_fn event_fn;
	void *event_ud;
	struct bl_device_stats stats;
};

static inline bool bl_valid_cell(int cell) { return cell >= 0 && cell < BL_CELLS; }

/* regulate.c: one correction of a channel's setpoint, at its report. */
void bl_devi_regulate(struct bl_device *d, int cell);
/* device.c: true when at most `device_us` of the device's own time can
 * have passed between the host times from_us and to_us (its clock rate
 * known, margin included); false when that cannot be told. */
bool bl_devi_device_time_under(const struct bl_device *d, uint64_t from_us, uint64_t to_us,
                               uint64_t device_us);
/* device.c: connect has succeeded; start the watchdog and health timers. */
void bl_devi_connected(struct bl_device *d);

#endif
