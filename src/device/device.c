/* batlab.c - one Batlab: the request engine, streams, watchdog, current
 * regulation and the multi-request operations. See batlab.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/device.h"
#include "device/op.h"

#define MOD "device"
#define MAX_WINDOW 4
#define SILENT_AFTER 2          /* consecutive failed requests */
#define RELAY_SETTLE_US 10000   /* hosts wait 10 ms after MODE = CHARGE */
#define IMPEDANCE_SETTLE_US 2000000
#define CONNECT_PROBES 3        /* a timed-out probe is retried, never "bootloader" */
#define REG_STEP_MAX 32         /* largest correction per report, counts (0.25 A) */
#define REG_FLOOR 8             /* keep a trickle flowing: 62.5 mA */
#define REG_OVERCURRENT 4.02    /* back off above this, amps */

struct bl_request {
	struct bl_request *next;
	struct bl_packet pkt;
	unsigned flags;
	uint64_t timeout_us;
	int attempts;
	bool cancelled;
	bl_req_fn fn;
	void *ud;
};

struct channel {
	struct bl_snapshot snap;
	uint16_t target_raw;         /* user's target; 0 = not regulating */
	uint16_t op_raw;             /* setpoint we last wrote */
	uint64_t last_change_us;
	/* Bumped whenever the channel is started or made safe: an operation
	 * that began before (an impedance measurement) must not put back a
	 * mode that is no longer wanted. */
	unsigned gen;
};

struct bl_device {
	struct bl_loop *loop;
	struct bl_link *link;
	struct bl_device_opts opts;
	struct bl_reframer rf;
	struct bl_identity id;
	struct channel ch[BL_CELLS];

	struct bl_request *queue_head, *queue_tail;
	struct bl_request *flight_head, *flight_tail;
	int in_flight;
	struct bl_timer timeout;
	struct bl_op *ops;

	struct bl_timer watchdog;
	struct bl_timer health;
	bool watchdog_on;
	uint16_t last_timer;
	bool have_timer;
	uint16_t settings;

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

static void pump(struct bl_device *d);

/* ---- Small helpers ------------------------------------------------------ */

static bool valid_cell(int cell) { return cell >= 0 && cell < BL_CELLS; }

static void emit(struct bl_device *d, enum bl_device_event ev)
{
	if (d->event_fn)
		d->event_fn(d, ev, d->event_ud);
}

void bl_device_opts_default(struct bl_device_opts *o)
{
	o->timeout_us = 250000;
	o->retries = 3;
	o->window = 1;
	o->watchdog_us = 2000000;
	o->health_us = 5000000;
	o->regulate_us = 1300000;
}

/* ---- Request engine ----------------------------------------------------- */

static void send_head_attempt(struct bl_device *d, struct bl_request *r)
{
	uint8_t bytes[BL_PKT_LEN];

	bl_packet_encode(&r->pkt, bytes);
	r->attempts++;
	d->stats.sent++;
	/* One write per packet: the device's parser merges partial packets
	 * with the next one, so a packet must never go out in pieces. */
	if (bl_link_write(d->link, bytes, sizeof bytes) != (int)sizeof bytes)
		BL_DEBUG(MOD, "%s: write failed: %s", bl_link_name(d->link), bl_link_error(d->link));
}

static void arm_timeout(struct bl_device *d)
{
	if (d->flight_head)
		bl_timer_after(d->loop, &d->timeout, d->flight_head->timeout_us, 0);
	else
		bl_timer_stop(d->loop, &d->timeout);
}

static struct bl_request *flight_pop(struct bl_device *d)
{
	struct bl_request *r = d->flight_head;

	if (!r)
		return NULL;
	d->flight_head = r->next;
	if (!d->flight_head)
		d->flight_tail = NULL;
	d->in_flight--;
	r->next = NULL;
	return r;
}

static void complete(struct bl_device *d, struct bl_request *r, int status, uint16_t value)
{
	bl_req_fn fn = r->cancelled ? NULL : r->fn;
	void *ud = r->ud;

	free(r);
	if (fn)
		fn(d, status, value, ud);
}

static void on_timeout(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_device *d = ud;
	struct bl_request *r = d->flight_head;

	(void)loop;
	(void)t;
	if (!r)
		return;
	d->stats.timeouts++;
	/* Whatever partial frame sits in the reframer belongs to the lost
	 * reply; keeping it would misalign the next one. */
	bl_reframer_reset(&d->rf);
	if (!(r->flags & BL_REQ_NO_RETRY) && r->attempts <= d->opts.retries) {
		d->stats.retries++;
		send_head_attempt(d, r);
		arm_timeout(d);
		return;
	}
	flight_pop(d);
	d->stats.failures++;
	if (++d->consecutive_failures >= SILENT_AFTER && !d->silent) {
		d->silent = true;
		BL_WARN(MOD, "%s: not answering", bl_link_name(d->link));
		emit(d, BL_DEV_SILENT);
	}
	arm_timeout(d);
	pump(d);
	complete(d, r, BL_ERR_TIMEOUT, 0);
}

static void pump(struct bl_device *d)
{
	while (!d->closed && d->queue_head && d->in_flight < d->opts.window) {
		struct bl_request *r = d->queue_head;

		d->queue_head = r->next;
		if (!d->queue_head)
			d->queue_tail = NULL;
		r->next = NULL;
		if (d->flight_tail)
			d->flight_tail->next = r;
		else
			d->flight_head = r;
		d->flight_tail = r;
		d->in_flight++;
		send_head_attempt(d, r);
		if (r == d->flight_head)
			arm_timeout(d);
	}
}

int bl_device_submit(struct bl_device *d, const struct bl_packet *req, unsigned flags,
                     uint64_t timeout_us, bl_req_fn fn, void *ud, struct bl_request **out)
{
	struct bl_request *r;

	if (out)
		*out = NULL;
	if (d->closed)
		return BL_ERR_CLOSED;
	r = calloc(1, sizeof *r);
	if (!r)
		return BL_ERR_MEM;
	r->pkt = *req;
	r->flags = flags;
	r->timeout_us = timeout_us ? timeout_us : d->opts.timeout_us;
	r->fn = fn;
	r->ud = ud;
	if ((flags & BL_REQ_PRIORITY) && d->queue_head) {
		r->next = d->queue_head;
		d->queue_head = r;
	} else if (d->queue_tail) {
		d->queue_tail->next = r;
		d->queue_tail = r;
	} else {
		d->queue_head = d->queue_tail = r;
	}
	if (out)
		*out = r;
	pump(d);
	return BL_OK;
}

int bl_device_read_async(struct bl_device *d, uint8_t ns, uint8_t addr, bl_req_fn fn, void *ud,
                         struct bl_request **out)
{
	struct bl_packet p = bl_packet_read(ns, addr);
	return bl_device_submit(d, &p, 0, 0, fn, ud, out);
}

int bl_device_write_async(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                          bl_req_fn fn, void *ud, struct bl_request **out)
{
	struct bl_packet p = bl_packet_write(ns, addr, value);
	return bl_device_submit(d, &p, 0, 0, fn, ud, out);
}

void bl_request_cancel(struct bl_request *r)
{
	if (r)
		r->cancelled = true;
}

/* The reframer asks before taking a 0xAA frame: only the reply to the
 * oldest request in flight is wanted; anything else is misalignment. */
static bool accept_reply(void *ud, const struct bl_packet *p)
{
	struct bl_device *d = ud;
	struct bl_request *r = d->flight_head;

	if (!r)
		return false;
	if (bl_packet_answers(&r->pkt, p))
		return true;
	/* The bootloader answers a write to an address it does not know with
	 * address byte 0x82 (PROTOCOL §4.4). */
	return r->pkt.ns == BL_NS_BOOTLOADER && r->pkt.write && r->pkt.addr >= BL_BOOTLOADER_NREGS &&
	       p->ns == BL_NS_BOOTLOADER && p->write && p->addr == BL_BOOT_DATA;
}

static void regulate(struct bl_device *d, int cell);

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct bl_device *d = ud;

	if (f->kind == BL_FRAME_STREAM) {
		struct channel *c = &d->ch[f->u.stream.cell];

		c->snap.valid = true;
		c->snap.time_us = bl_loop_now(d->loop);
		c->snap.seq++;
		c->snap.s = f->u.stream;
		d->stats.streams++;
		regulate(d, f->u.stream.cell);
		if (d->stream_fn)
			d->stream_fn(d, f->u.stream.cell, &c->snap, d->stream_ud);
		return;
	}

	struct bl_request *r = flight_pop(d);
	int status = BL_OK;

	if (!r) { /* accept_reply makes this impossible; keep it harmless */
		d->stats.unmatched++;
		return;
	}
	d->stats.replies++;
	d->consecutive_failures = 0;
	if (d->silent) {
		d->silent = false;
		emit(d, BL_DEV_RECOVERED);
	}
	if (r->pkt.write)
		status = f->u.packet.value == 0 ? BL_OK
		       : f->u.packet.value == BL_COMMAND_ERROR ? BL_ERR_DEVICE : BL_ERR_PROTO;
	arm_timeout(d);
	pump(d);
	complete(d, r, status, f->u.packet.value);
}

static void fail_all(struct bl_device *d, int status)
{
	struct bl_request *r;

	bl_timer_stop(d->loop, &d->timeout);
	while ((r = flight_pop(d)))
		complete(d, r, status, 0);
	while ((r = d->queue_head)) {
		d->queue_head = r->next;
		complete(d, r, status, 0);
	}
	d->queue_tail = NULL;
}

static void on_link(struct bl_link *link, void *ud)
{
	struct bl_device *d = ud;
	uint8_t buf[256];
	int n;

	/* Callbacks run from here may not wait on this device (a nested
	 * loop run would feed newer bytes before the rest of this buffer). */
	d->dispatching++;
	while ((n = bl_link_read(link, buf, sizeof buf)) > 0)
		bl_reframer_feed(&d->rf, buf, (size_t)n);
	d->dispatching--;
	d->stats.dropped_bytes = d->rf.dropped;
	if (n == BL_ERR_CLOSED && !d->closed) {
		d->closed = true;
		d->id.connected = false;
		bl_timer_stop(d->loop, &d->watchdog);
		bl_timer_stop(d->loop, &d->health);
		BL_WARN(MOD, "%s: disconnected", bl_link_name(link));
		fail_all(d, BL_ERR_CLOSED);
		emit(d, BL_DEV_CLOSED);
	}
}

/* ---- Lifetime ----------------------------------------------------------- */

static void on_watchdog(struct bl_loop *loop, struct bl_timer *t, void *ud);
static void on_health(struct bl_loop *loop, struct bl_timer *t, void *ud);

struct bl_device *bl_device_new(struct bl_loop *loop, struct bl_link *link,
                                const struct bl_device_opts *opts)
{
	struct bl_device *d = calloc(1, sizeof *d);

	if (!d)
		return NULL;
	d->loop = loop;
	d->link = link;
	if (opts)
		d->opts = *opts;
	else
		bl_device_opts_default(&d->opts);
	if (d->opts.window < 1)
		d->opts.window = 1;
	if (d->opts.window > MAX_WINDOW)
		d->opts.window = MAX_WINDOW;
	if (d->opts.retries < 0)
		d->opts.retries = 0;
	bl_reframer_init(&d->rf, on_frame, accept_reply, d);
	bl_timer_init(&d->timeout, on_timeout, d);
	bl_timer_init(&d->watchdog, on_watchdog, d);
	bl_timer_init(&d->health, on_health, d);
	for (int c = 0; c < BL_CELLS; c++) {
		d->id.temp_r[c] = (uint16_t)BL_TEMP_R_NOMINAL;
		d->id.temp_b[c] = (uint16_t)BL_TEMP_B_NOMINAL;
	}
	if (bl_link_watch(link, loop, on_link, d) != BL_OK) {
		free(d);
		return NULL;
	}
	d->closed = bl_link_closed(link);
	return d;
}

void bl_device_free(struct bl_device *d)
{
	if (!d)
		return;
	bl_timer_stop(d->loop, &d->watchdog);
	bl_timer_stop(d->loop, &d->health);
	d->closed = true;
	fail_all(d, BL_ERR_CLOSED);
	/* Ops still alive were waiting on requests that just failed; those
	 * failures finished them. Any left were sleeping: they finish now,
	 * and their owners hear BL_ERR_CLOSED like everyone else. */
	while (d->ops)
		bl_opi_finish(d->ops, BL_ERR_CLOSED);
	bl_link_close(d->link);
	free(d);
}

struct bl_loop *bl_device_loop(const struct bl_device *d) { return d->loop; }
struct bl_link *bl_device_link(const struct bl_device *d) { return d->link; }
const char *bl_device_port(const struct bl_device *d) { return bl_link_name(d->link); }
const struct bl_identity *bl_device_identity(const struct bl_device *d) { return &d->id; }
bool bl_device_closed(const struct bl_device *d) { return d->closed; }

void bl_device_on_stream(struct bl_device *d, bl_stream_fn fn, void *ud)
{
	d->stream_fn = fn;
	d->stream_ud = ud;
}

void bl_device_on_event(struct bl_device *d, bl_event_fn fn, void *ud)
{
	d->event_fn = fn;
	d->event_ud = ud;
}

const struct bl_snapshot *bl_device_snapshot(const struct bl_device *d, int cell)
{
	return valid_cell(cell) ? &d->ch[cell].snap : NULL;
}

void bl_device_stats(const struct bl_device *d, struct bl_device_stats *out)
{
	*out = d->stats;
	out->dropped_bytes = d->rf.dropped;
}

int bl_device_pending(const struct bl_device *d)
{
	int n = d->in_flight;
	for (struct bl_request *r = d->queue_head; r; r = r->next)
		n++;
	return n;
}

int bl_device_charge_multiplier(const struct bl_device *d, int cell)
{
	return bl_charge_multiplier(d->settings, (unsigned)cell);
}

/* ---- Watchdog and health ------------------------------------------------ */

static void ignore_reply(struct bl_device *d, int status, uint16_t value, void *ud)
{
	(void)d;
	(void)status;
	(void)value;
	(void)ud;
}

static void on_watchdog_done(struct bl_device *d, int status, uint16_t value, void *ud)
{
	(void)value;
	(void)ud;
	d->watchdog_pending = false;
	if (status != BL_OK)
		return;
	d->stats.watchdog_refreshes++;
	d->stats.last_watchdog_us = bl_loop_now(d->loop);
}

static void on_watchdog(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_device *d = ud;
	struct bl_packet p = bl_packet_write(BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET);

	(void)loop;
	(void)t;
	/* The bootloader answers namespace 5 only; and while one refresh is
	 * still trying to get through a silent device, stacking more behind
	 * it would only have stale writes go out later. */
	if (d->id.bootloader || d->watchdog_pending)
		return;
	d->watchdog_pending = true;
	/* The one place the watchdog is refreshed. Priority, so a long queue
	 * of procedure traffic can never starve it. */
	bl_device_submit(d, &p, BL_REQ_PRIORITY, 0, on_watchdog_done, NULL, NULL);
}

/* One event per reset: both signs of it (timer, settings) are disarmed
 * until the owner connects again, which re-enables the watchdog. The
 * channels lost their modes and limits, so regulation stops too. */
static void device_was_reset(struct bl_device *d)
{
	d->watchdog_on = false;
	d->have_timer = false;
	d->id.connected = false;
	bl_timer_stop(d->loop, &d->watchdog);
	bl_timer_stop(d->loop, &d->health);
	for (int c = 0; c < BL_CELLS; c++)
		d->ch[c].target_raw = 0;
	emit(d, BL_DEV_RESET);
}

static void on_settings_read(struct bl_device *d, int status, uint16_t value, void *ud)
{
	(void)ud;
	d->health_pending = false;
	if (status != BL_OK)
		return;
	d->settings = value;
	if (d->watchdog_on && !(value & BL_SET_WATCHDOG_TIMER)) {
		BL_WARN(MOD, "%s: SETTINGS lost the watchdog bit: the device reset",
		        bl_link_name(d->link));
		device_was_reset(d);
	}
}

static void on_timer_read(struct bl_device *d, int status, uint16_t value, void *ud)
{
	(void)ud;
	if (status != BL_OK)
		return;
	/* SYSTEM_TIMER counts 0.1 s and wraps after 109 min. Going backwards
	 * by more than a wrap could explain means the device restarted. */
	if (d->have_timer && value < d->last_timer &&
	    !(d->last_timer > 60000 && value < 5000)) {
		BL_WARN(MOD, "%s: SYSTEM_TIMER went back from %u to %u: the device reset",
		        bl_link_name(d->link), d->last_timer, value);
		device_was_reset(d);
		return;
	}
	d->last_timer = value;
	d->have_timer = true;
}

static void on_health(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_device *d = ud;

	(void)loop;
	(void)t;
	if (d->id.bootloader || d->health_pending)
		return;
	d->health_pending = true;
	bl_device_read_async(d, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER, on_timer_read, NULL, NULL);
	bl_device_read_async(d, BL_NS_UNIT, BL_UNIT_SETTINGS, on_settings_read, NULL, NULL);
}

/* ---- Regulation ------------------------------------------------------------ */

uint16_t bl_regulate_step(uint16_t target_raw, uint16_t op_raw, double measured_a)
{
	double sp = bl_setpoint_from_raw(target_raw);
	long op = op_raw;

	if (target_raw == 0)
		return 0;
	if (measured_a > REG_OVERCURRENT) {
		op -= 1 + (long)((measured_a - REG_OVERCURRENT) * 128.0);
	} else if (measured_a > 0.0 && fabs(measured_a - sp) > 0.01) {
		/* The current is proportional to the duty (I = duty/640 x VCC),
		 * so scale the setpoint by the ratio: one step lands close,
		 * where the seed's +/-1 count per second took a minute. */
		long want = lround(op * sp / measured_a);
		long step = want - op;
		if (step == 0)
			step = measured_a < sp ? 1 : -1;
		if (step > REG_STEP_MAX)
			step = REG_STEP_MAX;
		if (step < -REG_STEP_MAX)
			step = -REG_STEP_MAX;
		op += step;
	}
	/* No more than 25 % above the target: enough for VCC down to 4.0 V,
	 * and a bound whatever garbage the measurement holds. */
	long ceiling = target_raw + target_raw / 4 + 1;
	if (ceiling > BL_SETPOINT_MAX)
		ceiling = BL_SETPOINT_MAX;
	if (op > ceiling)
		op = ceiling;
	/* Keep a trickle flowing so the current stays measurable, but never
	 * more than was asked for. */
	long floor = target_raw < REG_FLOOR ? target_raw : REG_FLOOR;
	if (op < floor)
		op = floor;
	return (uint16_t)op;
}

static void regulate(struct bl_device *d, int cell)
{
	struct channel *c = &d->ch[cell];
	uint64_t now = bl_loop_now(d->loop);
	uint16_t mode = c->snap.s.mode;
	uint16_t next;

	if (c->target_raw == 0 || (mode != BL_MODE_CHARGE && mode != BL_MODE_DISCHARGE))
		return;
	/* A measurement is latched every 614.4 ms: wait for two after a
	 * change so the correction sees its own effect. */
	if (now - c->last_change_us < d->opts.regulate_us)
		return;
	next = bl_regulate_step(c->target_raw, c->op_raw, bl_current_from_raw(c->snap.s.current));
	if (next == c->op_raw)
		return;
	c->op_raw = next;
	c->last_change_us = now;
	bl_device_write_async(d, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, next, ignore_reply, NULL, NULL);
}

void bl_device_set_target(struct bl_device *d, int cell, double amps)
{
	uint16_t raw;

	if (!valid_cell(cell))
		return;
	raw = bl_setpoint_to_raw(amps);
	d->ch[cell].target_raw = raw > BL_SETPOINT_MAX ? BL_SETPOINT_MAX : raw;
}

int bl_device_set_current(struct bl_device *d, int cell, double amps)
{
	struct channel *c;
	uint16_t old, raw;
	long op;

	if (!valid_cell(cell))
		return BL_ERR_ARG;
	c = &d->ch[cell];
	old = c->target_raw;
	bl_device_set_target(d, cell, amps);
	raw = c->target_raw;
	/* Keep the correction the regulation has learnt (the VCC ratio) when
	 * the target moves: the new current is right at once, not a minute
	 * of corrections later. */
	op = raw;
	if (old > 0 && raw > 0 && c->op_raw > 0) {
		op = lround((double)c->op_raw * raw / old);
		if (op > raw + raw / 4 + 1)
			op = raw + raw / 4 + 1;
		if (op > BL_SETPOINT_MAX)
			op = BL_SETPOINT_MAX;
	}
	c->op_raw = (uint16_t)op;
	c->last_change_us = bl_loop_now(d->loop);
	return bl_device_write_async(d, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, c->op_raw,
	                             ignore_reply, NULL, NULL);
}

double bl_device_target(const struct bl_device *d, int cell)
{
	return valid_cell(cell) ? bl_setpoint_from_raw(d->ch[cell].target_raw) : 0.0;
}

uint16_t bl_device_operating_setpoint(const struct bl_device *d, int cell)
{
	return valid_cell(cell) ? d->ch[cell].op_raw : 0;
}

int bl_device_set_report_interval(struct bl_device *d, int cell, double seconds)
{
	if (!valid_cell(cell))
		return BL_ERR_ARG;
	return bl_device_write_async(d, (uint8_t)cell, BL_CELL_REPORT_INTERVAL,
	                             bl_interval_to_raw(seconds), ignore_reply, NULL, NULL);
}

/* ---- Operations: the engine --------------------------------------------- */

static void op_on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud);

struct bl_op *bl_opi_new(struct bl_device *d, op_step_fn step, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (d->closed)
		return NULL;
	op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->d = d;
	op->step = step;
	op->fn = fn;
	op->ud = ud;
	op->status = BL_OK;
	bl_timer_init(&op->timer, op_on_timer, op);
	op->next = d->ops;
	d->ops = op;
	return op;
}

static void op_unlink(struct bl_op *op)
{
	for (struct bl_op **p = &op->d->ops; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			return;
		}
}

void bl_opi_finish(struct bl_op *op, int status)
{
	struct bl_device *d = op->d;

	if (op->status == BL_OK)
		op->status = status;
	bl_timer_stop(d->loop, &op->timer);
	op_unlink(op);
	if (op->waiter) {
		op->waiter->done = true;
		op->waiter->status = op->status;
		op->waiter->value = op->value;
		op->waiter->number = op->number;
	} else if (!op->cancelled && op->fn) {
		op->fn(d, op, op->status, op->ud);
	}
	free(op->ext);
	free(op);
}

static void op_on_reply(struct bl_device *d, int status, uint16_t value, void *ud)
{
	struct bl_op *op = ud;

	(void)d;
	op->step(op, status, value);
}

/* Send one request on behalf of an op; a refused submit (closed device)
 * finishes the op at once. */
void bl_opi_req(struct bl_op *op, struct bl_packet p, unsigned flags)
{
	bl_opi_req_timeout(op, p, flags, 0);
}

void bl_opi_req_timeout(struct bl_op *op, struct bl_packet p, unsigned flags, uint64_t timeout_us)
{
	int rc = bl_device_submit(op->d, &p, flags, timeout_us, op_on_reply, op, NULL);
	if (rc != BL_OK)
		bl_opi_finish(op, rc);
}

void bl_opi_read(struct bl_op *op, uint8_t ns, uint8_t addr)
{
	bl_opi_req(op, bl_packet_read(ns, addr), 0);
}

void bl_opi_write(struct bl_op *op, uint8_t ns, uint8_t addr, uint16_t v, unsigned flags)
{
	bl_opi_req(op, bl_packet_write(ns, addr, v), flags);
}

static void op_on_timer(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_op *op = ud;

	(void)loop;
	(void)t;
	op->step(op, BL_OK, 0);
}

void bl_opi_sleep(struct bl_op *op, uint64_t us)
{
	bl_timer_after(op->d->loop, &op->timer, us, 0);
}

/* Remember the first failure; later cleanup steps keep running. */
void bl_opi_note(struct bl_op *op, int status)
{
	if (op->status == BL_OK && status != BL_OK)
		op->status = status;
}

bool bl_opi_failed(struct bl_op *op, int status)
{
	if (status == BL_OK)
		return false;
	bl_opi_finish(op, status);
	return true;
}

bool bl_opi_probe_again(struct bl_op *op, int status, int max)
{
	if (status != BL_ERR_TIMEOUT || ++op->tries >= max)
		return false;
	bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
	return true;
}

/* Failure while starting current (or restoring it): whatever was already
 * written may have taken effect, so end in the safe state (regulation off,
 * STOPPED, then IDLE) and report the first error. */
static void step_abort_safe(struct bl_op *op, int status, uint16_t value)
{
	(void)status;
	(void)value;
	if (op->state++ == 0) {
		bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
		return;
	}
	bl_opi_finish(op, op->status);
}

static void op_abort_safe(struct bl_op *op, int status)
{
	struct channel *c = &op->d->ch[op->cell];

	bl_opi_note(op, status);
	c->target_raw = 0;
	c->gen++;
	op->step = step_abort_safe;
	op->state = 0;
	bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_STOPPED, BL_REQ_PRIORITY);
}

int bl_op_status(const struct bl_op *op) { return op->status; }
uint16_t bl_op_value(const struct bl_op *op) { return op->value; }
double bl_op_number(const struct bl_op *op) { return op->number; }
uint32_t bl_op_raw32(const struct bl_op *op) { return op->raw32; }

void bl_op_cancel(struct bl_op *op)
{
	if (op)
		op->cancelled = true;
}

static bool waiter_done(void *ud)
{
	return ((struct op_waiter *)ud)->done;
}

int bl_device_wait(struct bl_device *d, struct bl_op *op, uint16_t *value, double *number)
{
	struct op_waiter w = {0};
	int rc;

	if (!op)
		return d->closed ? BL_ERR_CLOSED : BL_ERR_ARG;
	if (d->dispatching) {
		/* Refuse a nested loop run from this device's own callbacks. */
		op->cancelled = true;
		BL_ERROR(MOD, "%s: bl_device_wait called from a device callback", bl_link_name(d->link));
		return BL_ERR_STATE;
	}
	op->waiter = &w;
	rc = bl_loop_run_until(d->loop, waiter_done, &w, BL_NEVER);
	if (!w.done) {
		/* Stopped (Ctrl-C) or nothing left to run: let the op finish on
		 * its own if the loop runs again, but nobody waits for it. */
		op->waiter = NULL;
		op->cancelled = true;
		return rc < 0 ? rc : BL_ERR_STATE;
	}
	if (value)
		*value = w.value;
	if (number)
		*number = w.number;
	return w.status;
}

/* ---- Operations: single requests and write_verify ------------------------- */

static void step_single(struct bl_op *op, int status, uint16_t value)
{
	op->value = value;
	op->number = value;
	bl_opi_finish(op, status);
}

struct bl_op *bl_op_read(struct bl_device *d, uint8_t ns, uint8_t addr, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_single, fn, ud);
	if (op)
		bl_opi_read(op, ns, addr);
	return op;
}

struct bl_op *bl_op_write(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                          bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_single, fn, ud);
	if (op)
		bl_opi_write(op, ns, addr, value, 0);
	return op;
}

#define VERIFY_TRIES 3

static void step_write_verify(struct bl_op *op, int status, uint16_t value)
{
	uint8_t ns = (uint8_t)op->tmp[0], addr = (uint8_t)op->tmp[1];

	switch (op->state) {
	case 0: /* write done */
		if (bl_opi_failed(op, status))
			return;
		op->state = 1;
		bl_opi_read(op, ns, addr);
		return;
	case 1: /* read back */
		if (bl_opi_failed(op, status))
			return;
		op->value = value;
		if (value == op->arg) {
			bl_opi_finish(op, BL_OK);
			return;
		}
		if (++op->tries >= VERIFY_TRIES) {
			BL_WARN(MOD, "%s: ns %u reg 0x%02X: wrote %u, reads %u",
			        bl_link_name(op->d->link), ns, addr, op->arg, value);
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		op->state = 0;
		bl_opi_write(op, ns, addr, op->arg, 0);
		return;
	}
}

struct bl_op *bl_op_write_verify(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value,
                                 bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_write_verify, fn, ud);
	if (!op)
		return NULL;
	op->tmp[0] = ns;
	op->tmp[1] = addr;
	op->arg = value;
	bl_opi_write(op, ns, addr, value, 0);
	return op;
}

/* ---- Operations: connect -------------------------------------------------- */

/* The identity reads, in order, after the application answered. */
struct id_read {
	uint8_t ns, addr;
};

static const struct id_read id_reads[] = {
	{BL_NS_UNIT, BL_UNIT_SERIAL_NUM}, {BL_NS_UNIT, BL_UNIT_DEVICE_ID},
	{BL_NS_UNIT, BL_UNIT_FIRMWARE_VER}, {BL_NS_UNIT, BL_UNIT_SETTINGS},
	{0, BL_CELL_TEMP_CALIB_R}, {0, BL_CELL_TEMP_CALIB_B}, {0, BL_CELL_CURRENT_SETPOINT},
	{1, BL_CELL_TEMP_CALIB_R}, {1, BL_CELL_TEMP_CALIB_B}, {1, BL_CELL_CURRENT_SETPOINT},
	{2, BL_CELL_TEMP_CALIB_R}, {2, BL_CELL_TEMP_CALIB_B}, {2, BL_CELL_CURRENT_SETPOINT},
	{3, BL_CELL_TEMP_CALIB_R}, {3, BL_CELL_TEMP_CALIB_B}, {3, BL_CELL_CURRENT_SETPOINT},
	{BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER},
};

static void store_id_value(struct bl_device *d, const struct id_read *r, uint16_t v)
{
	struct bl_identity *id = &d->id;

	if (r->ns == BL_NS_UNIT) {
		switch (r->addr) {
		case BL_UNIT_SERIAL_NUM: id->serial = (id->serial & 0xFFFF0000u) | v; break;
		case BL_UNIT_DEVICE_ID: id->serial = (id->serial & 0xFFFFu) | ((uint32_t)v << 16); break;
		case BL_UNIT_FIRMWARE_VER: id->firmware = v; break;
		case BL_UNIT_SETTINGS: id->settings = d->settings = v; break;
		case BL_UNIT_SYSTEM_TIMER: d->last_timer = v; d->have_timer = true; break;
		}
		return;
	}
	switch (r->addr) {
	/* An uncalibrated (blank) EEPROM reads 0xFFFF: keep the nominal
	 * values then, or every temperature would be nonsense. */
	case BL_CELL_TEMP_CALIB_R: if (v && v != 0xFFFF) id->temp_r[r->ns] = v; break;
	case BL_CELL_TEMP_CALIB_B: if (v && v != 0xFFFF) id->temp_b[r->ns] = v; break;
	case BL_CELL_CURRENT_SETPOINT: d->ch[r->ns].op_raw = v; break;
	}
}

enum {
	CONNECT_PROBE, CONNECT_IDENTITY, CONNECT_WDT_FIRST, CONNECT_SETTINGS, CONNECT_VERIFY,
};

static void connect_done(struct bl_op *op)
{
	struct bl_device *d = op->d;

	d->id.connected = true;
	if (d->watchdog_on)
		bl_timer_after(d->loop, &d->watchdog, d->opts.watchdog_us, d->opts.watchdog_us);
	if (d->opts.health_us && !d->id.bootloader)
		bl_timer_after(d->loop, &d->health, d->opts.health_us, d->opts.health_us);
	bl_opi_finish(op, BL_OK);
}

static void step_connect(struct bl_op *op, int status, uint16_t value)
{
	struct bl_device *d = op->d;

	switch (op->state) {
	case CONNECT_PROBE:
		if (bl_opi_probe_again(op, status, CONNECT_PROBES))
			return;
		if (bl_opi_failed(op, status))
			return;
		if (value != BL_COMMAND_ERROR) {
			/* Only the bootloader answers namespace 5: it returns its
			 * flash pointer, never 257. */
			d->id.bootloader = true;
			connect_done(op);
			return;
		}
		d->id.bootloader = false;
		op->state = CONNECT_IDENTITY;
		op->index = 0;
		bl_opi_read(op, id_reads[0].ns, id_reads[0].addr);
		return;
	case CONNECT_IDENTITY:
		if (bl_opi_failed(op, status))
			return;
		store_id_value(d, &id_reads[op->index], value);
		if (++op->index < (int)BL_ARRAY_LEN(id_reads)) {
			bl_opi_read(op, id_reads[op->index].ns, id_reads[op->index].addr);
			return;
		}
		if (d->id.firmware < 4 || d->opts.watchdog_us == 0) {
			connect_done(op);
			return;
		}
		/* Refresh before enabling, so a timer left at 0 by an earlier
		 * session cannot stop every channel the moment it is enabled. */
		op->state = CONNECT_WDT_FIRST;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET, 0);
		return;
	case CONNECT_WDT_FIRST:
		if (bl_opi_failed(op, status))
			return;
		d->stats.watchdog_refreshes++;
		d->stats.last_watchdog_us = bl_loop_now(d->loop);
		op->state = CONNECT_SETTINGS;
		/* Read-modify-write, keeping only what is safe to inherit: no
		 * other program holds the port (it is opened exclusively), so
		 * other bits are leftovers of a session that died. A stale
		 * hi-res bit freezes the temperature and VCC the limits rely on,
		 * SAFETY_DISABLE turns every limit off, and the firmware trim
		 * would fight our current loop. */
		if (d->settings & ~(BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_WATCHDOG_TIMER))
			BL_WARN(MOD, "%s: clearing leftover SETTINGS bits 0x%04X", bl_link_name(d->link),
			        d->settings & ~(BL_SET_NO_PSU_DCHG_ENABLE | BL_SET_WATCHDOG_TIMER));
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_SETTINGS,
		             (d->settings & BL_SET_NO_PSU_DCHG_ENABLE) | BL_SET_WATCHDOG_TIMER, 0);
		return;
	case CONNECT_SETTINGS:
		if (bl_opi_failed(op, status))
			return;
		op->state = CONNECT_VERIFY;
		bl_opi_read(op, BL_NS_UNIT, BL_UNIT_SETTINGS);
		return;
	case CONNECT_VERIFY:
		if (bl_opi_failed(op, status))
			return;
		d->id.settings = d->settings = value;
		if (!(value & BL_SET_WATCHDOG_TIMER)) {
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		d->watchdog_on = true;
		connect_done(op);
		return;
	}
}

struct bl_op *bl_op_connect(struct bl_device *d, bl_op_fn fn, void *ud)
{
	struct bl_op *op = bl_opi_new(d, step_connect, fn, ud);
	if (op)
		bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
	return op;
}

/* ---- Operations: charge counter ------------------------------------------ */

static void step_charge(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;

	if (bl_opi_failed(op, status))
		return;
	op->tmp[op->state] = value;
	switch (op->state++) {
	case 0: bl_opi_read(op, cell, BL_CELL_CHARGEL); return;
	case 1: bl_opi_read(op, cell, BL_CELL_CHARGEH); return;
	case 2:
		if (op->tmp[2] != op->tmp[0]) {
			/* The low half rolled over between the reads: the second
			 * high half goes with a fresh low half. */
			bl_opi_read(op, cell, BL_CELL_CHARGEL);
			return;
		}
		op->raw32 = bl_charge_join(op->tmp[0], op->tmp[1]);
		break;
	case 3:
		op->raw32 = bl_charge_join(op->tmp[2], op->tmp[3]);
		break;
	}
	op->number = bl_charge_coulombs(op->raw32, bl_device_charge_multiplier(op->d, op->cell));
	bl_opi_finish(op, BL_OK);
}

struct bl_op *bl_op_charge(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!valid_cell(cell))
		return NULL;
	op = bl_opi_new(d, step_charge, fn, ud);
	if (op) {
		op->cell = cell;
		bl_opi_read(op, (uint8_t)cell, BL_CELL_CHARGEH);
	}
	return op;
}

/* ---- Operations: impedance ------------------------------------------------ */

enum {
	IMP_READ_MODE, IMP_SET_MODE, IMP_SETTLED, IMP_LOCKED, IMP_GOT_IPP, IMP_GOT_VPP,
	IMP_UNLOCKED, IMP_RESTORE_MODE, IMP_RESTORE_SETTLE, IMP_RESTORE_SETPOINT, IMP_RESTORED,
};

/* Put the channel back as it was before the measurement. Current is only
 * restarted the proper way (charge: setpoint 0, CHARGE, relay settle, then
 * the setpoint) and only if nothing changed the channel meanwhile: after
 * it was made safe or restarted, the mode is no longer ours to restore,
 * and an abandoned measurement leaves the channel IDLE. */
static void impedance_restore(struct bl_op *op)
{
	struct channel *c = &op->d->ch[op->cell];
	uint8_t cell = (uint8_t)op->cell;

	if ((uint16_t)c->gen != op->tmp[2]) {
		bl_opi_finish(op, op->status);
		return;
	}
	if (op->cancelled) {
		op->state = IMP_RESTORED;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
		return;
	}
	switch (op->arg) {
	case BL_MODE_CHARGE:
		op->state = IMP_RESTORE_MODE;
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, 0, BL_REQ_PRIORITY);
		return;
	case BL_MODE_DISCHARGE:
		op->state = IMP_RESTORE_SETPOINT;
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, c->op_raw, BL_REQ_PRIORITY);
		return;
	default:
		op->state = IMP_RESTORED;
		bl_opi_write(op, cell, BL_CELL_MODE, op->arg, BL_REQ_PRIORITY);
		return;
	}
}

static void step_impedance(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;

	switch (op->state) {
	case IMP_READ_MODE:
		if (bl_opi_failed(op, status))
			return;
		op->arg = value; /* mode to restore */
		op->state = IMP_SET_MODE;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_IMPEDANCE, 0);
		return;
	case IMP_SET_MODE:
		if (status != BL_OK) {
			/* The write may have taken effect: put the mode back. */
			bl_opi_note(op, status);
			impedance_restore(op);
			return;
		}
		op->state = IMP_SETTLED;
		bl_opi_sleep(op, IMPEDANCE_SETTLE_US);
		return;
	case IMP_SETTLED:
		op->state = IMP_LOCKED;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_LOCK, BL_LOCK_LOCKED, 0);
		return;
	case IMP_LOCKED:
		bl_opi_note(op, status);
		op->state = IMP_GOT_IPP;
		bl_opi_read(op, cell, BL_CELL_CURRENT_PP);
		return;
	case IMP_GOT_IPP:
		bl_opi_note(op, status);
		op->tmp[0] = value;
		op->state = IMP_GOT_VPP;
		bl_opi_read(op, cell, BL_CELL_VOLTAGE_PP);
		return;
	case IMP_GOT_VPP:
		bl_opi_note(op, status);
		op->tmp[1] = value;
		/* Always unlock, whatever failed: a locked unit freezes every
		 * temperature and VCC reading. */
		op->state = IMP_UNLOCKED;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_LOCK, BL_LOCK_UNLOCKED, BL_REQ_PRIORITY);
		return;
	case IMP_UNLOCKED:
		bl_opi_note(op, status);
		impedance_restore(op);
		return;
	case IMP_RESTORE_MODE: /* charge: setpoint 0 is written */
		if (status != BL_OK) {
			op_abort_safe(op, status);
			return;
		}
		op->state = IMP_RESTORE_SETTLE;
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_CHARGE, BL_REQ_PRIORITY);
		return;
	case IMP_RESTORE_SETTLE:
		if (status != BL_OK) {
			op_abort_safe(op, status);
			return;
		}
		op->state = IMP_RESTORE_SETPOINT;
		op->arg = BL_MODE_NO_CELL; /* from here on: the last setpoint write */
		bl_opi_sleep(op, RELAY_SETTLE_US);
		return;
	case IMP_RESTORE_SETPOINT:
		if (status != BL_OK) {
			op_abort_safe(op, status);
			return;
		}
		if (op->arg == BL_MODE_DISCHARGE) {
			op->state = IMP_RESTORED;
			bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_DISCHARGE, BL_REQ_PRIORITY);
			return;
		}
		op->state = IMP_RESTORED;
		op->d->ch[op->cell].last_change_us = bl_loop_now(op->d->loop);
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, op->d->ch[op->cell].op_raw, BL_REQ_PRIORITY);
		return;
	case IMP_RESTORED:
		bl_opi_note(op, status);
		if (op->status == BL_OK) {
			double ipp = bl_current_from_raw(op->tmp[0]);
			double vpp = bl_voltage_from_raw(op->tmp[1]);
			op->number = ipp < 1e-6 ? 0.0 : vpp / ipp;
		}
		bl_opi_finish(op, op->status);
		return;
	}
}

struct bl_op *bl_op_impedance(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!valid_cell(cell))
		return NULL;
	op = bl_opi_new(d, step_impedance, fn, ud);
	if (op) {
		op->cell = cell;
		op->tmp[2] = (uint16_t)d->ch[cell].gen;
		bl_opi_read(op, (uint8_t)cell, BL_CELL_MODE);
	}
	return op;
}

/* ---- Operations: start and stop a channel --------------------------------- */

static void step_charge_start(struct bl_op *op, int status, uint16_t value)
{
	uint8_t cell = (uint8_t)op->cell;
	struct channel *c = &op->d->ch[op->cell];

	(void)value;
	if (status != BL_OK) {
		op_abort_safe(op, status);
		return;
	}
	switch (op->state++) {
	case 0: /* setpoint 0 written */
		bl_opi_write(op, cell, BL_CELL_MODE, BL_MODE_CHARGE, 0);
		return;
	case 1: /* CHARGE written: let the relay settle before current flows */
		bl_opi_sleep(op, RELAY_SETTLE_US);
		return;
	case 2:
		c->op_raw = c->target_raw;
		c->last_change_us = bl_loop_now(op->d->loop);
		bl_opi_write(op, cell, BL_CELL_CURRENT_SETPOINT, c->target_raw, 0);
		return;
	default:
		bl_opi_finish(op, BL_OK);
	}
}

struct bl_op *bl_op_charge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!valid_cell(cell))
		return NULL;
	op = bl_opi_new(d, step_charge_start, fn, ud);
	if (op) {
		struct channel *c = &d->ch[cell];
		op->cell = cell;
		bl_device_set_target(d, cell, amps);
		c->op_raw = 0;
		c->gen++;
		/* no regulation step while the relay settles */
		c->last_change_us = bl_loop_now(d->loop);
		bl_opi_write(op, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, 0, 0);
	}
	return op;
}

static void step_discharge_start(struct bl_op *op, int status, uint16_t value)
{
	(void)value;
	if (status != BL_OK) {
		op_abort_safe(op, status);
		return;
	}
	if (op->state++ > 0) {
		bl_opi_finish(op, BL_OK);
		return;
	}
	bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_DISCHARGE, 0);
}

struct bl_op *bl_op_discharge_start(struct bl_device *d, int cell, double amps, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!valid_cell(cell))
		return NULL;
	op = bl_opi_new(d, step_discharge_start, fn, ud);
	if (op) {
		struct channel *c = &d->ch[cell];
		op->cell = cell;
		bl_device_set_target(d, cell, amps);
		c->op_raw = c->target_raw;
		c->gen++;
		c->last_change_us = bl_loop_now(d->loop);
		bl_opi_write(op, (uint8_t)cell, BL_CELL_CURRENT_SETPOINT, c->target_raw, 0);
	}
	return op;
}

static void step_safe(struct bl_op *op, int status, uint16_t value)
{
	(void)value;
	bl_opi_note(op, status);
	if (op->state++ == 0) {
		/* STOPPED first cuts the current whatever the mode was; IDLE
		 * then clears ERROR and restarts cell detection. */
		bl_opi_write(op, (uint8_t)op->cell, BL_CELL_MODE, BL_MODE_IDLE, BL_REQ_PRIORITY);
		return;
	}
	bl_opi_finish(op, op->status);
}

struct bl_op *bl_op_safe(struct bl_device *d, int cell, bl_op_fn fn, void *ud)
{
	struct bl_op *op;

	if (!valid_cell(cell))
		return NULL;
	d->ch[cell].target_raw = 0;
	d->ch[cell].gen++;
	op = bl_opi_new(d, step_safe, fn, ud);
	if (op) {
		op->cell = cell;
		bl_opi_write(op, (uint8_t)cell, BL_CELL_MODE, BL_MODE_STOPPED, BL_REQ_PRIORITY);
	}
	return op;
}

struct bl_identity *bl_opi_identity(struct bl_device *d)
{
	return &d->id;
}
