/* device.c - one Batlab on its link: the request engine (queue, window,
 * timeouts, retries, reply matching), stream snapshots, the watchdog,
 * reset and silence detection, and the accessors. Regulation is in
 * regulate.c, the operations in ops.c and ops_channel.c. See device.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/units.h"
#include "device/device.h"
#include "device/device_impl.h"
#include "device/op.h"

#define MOD BL_DEVICE_MOD
#define MAX_WINDOW 4
#define SILENT_AFTER 2          /* consecutive failed requests */
#define MAX_SPARE 8             /* finished requests kept for reuse */

struct bl_request {
	struct bl_request *next;
	struct bl_packet pkt;
	unsigned flags;
	uint64_t timeout_us;
	uint64_t deadline_us;        /* in flight at the head: when it times out */
	int attempts;
	bool cancelled;
	bl_req_fn fn;
	void *ud;
};

static void pump(struct bl_device *d);

/* ---- Small helpers ------------------------------------------------------ */

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
	o->watchdog_by_clock = false;
	o->trace = NULL;
}

/* ---- Request engine ----------------------------------------------------- */

static void trace(struct bl_device *d, const struct bl_packet *p)
{
	const struct bl_reg *reg = bl_reg_by_addr(p->ns, p->addr);
	char ns[16], addr[8];

	bl_ns_name(p->ns, ns, sizeof ns);
	snprintf(addr, sizeof addr, "0x%02X", p->addr);
	fprintf(d->opts.trace, "%.6f %s %c %s %s", (double)bl_loop_now(d->loop) / 1e6,
	        bl_link_name(d->link), p->write ? 'W' : 'R', ns, reg ? reg->name : addr);
	if (p->write)
		fprintf(d->opts.trace, " %u", (unsigned)p->value);
	fputc('\n', d->opts.trace);
	fflush(d->opts.trace);
}

static void send_head_attempt(struct bl_device *d, struct bl_request *r)
{
	uint8_t bytes[BL_PKT_LEN];

	if (d->opts.trace)
		trace(d, &r->pkt);
	bl_packet_encode(&r->pkt, bytes);
	r->attempts++;
	d->stats.sent++;
	/* One write per packet: the device's parser merges partial packets
	 * with the next one, so a packet must never go out in pieces. */
	if (bl_link_write(d->link, bytes, sizeof bytes) != (int)sizeof bytes)
		BL_DEBUG(MOD, "%s: write failed: %s", bl_link_name(d->link), bl_link_error(d->link));
}

/* The head's time limit starts now. In virtual time the timer is not
 * moved for every request (a report costs two or three, and moving it was
 * a few percent of a virtual run): it stays armed no later than the
 * head's deadline, and one that fires before it (or with nothing in
 * flight) is set again for the head, or left. In real time it stops when
 * nothing is in flight: a timer left armed is a wake-up for nothing, and
 * a lab of 64 devices made a hundred a second. */
static void arm_timeout(struct bl_device *d)
{
	struct bl_request *r = d->flight_head;

	if (!r) {
		if (!bl_loop_is_virtual(d->loop))
			bl_timer_stop(d->loop, &d->timeout);
		return;
	}
	r->deadline_us = bl_loop_now(d->loop) + r->timeout_us;
	if (!bl_timer_active(&d->timeout) || d->timeout.deadline_us > r->deadline_us)
		bl_timer_start(d->loop, &d->timeout, r->deadline_us, 0);
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

static struct bl_request *request_new(struct bl_device *d)
{
	struct bl_request *r = d->spare;

	if (!r)
		return calloc(1, sizeof *r);
	d->spare = r->next;
	d->nspare--;
	memset(r, 0, sizeof *r);
	return r;
}

static void request_free(struct bl_device *d, struct bl_request *r)
{
	if (d->nspare >= MAX_SPARE) {
		free(r);
		return;
	}
	r->next = d->spare;
	d->spare = r;
	d->nspare++;
}

static void complete(struct bl_device *d, struct bl_request *r, int status, uint16_t value)
{
	bl_req_fn fn = r->cancelled ? NULL : r->fn;
	void *ud = r->ud;

	/* Before fn: it may free the device. */
	request_free(d, r);
	if (fn)
		fn(d, status, value, ud);
}

static void on_timeout(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_device *d = ud;
	struct bl_request *r = d->flight_head;

	(void)t;
	if (!r)
		return;
	if (bl_loop_now(loop) < r->deadline_us) {
		bl_timer_start(loop, &d->timeout, r->deadline_us, 0);
		return;
	}
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
	r = request_new(d);
	if (!r)
		return BL_ERR_MEM;
	if (req->write && ((req->ns < BL_CELLS && (req->addr == BL_CELL_CHARGEL || req->addr == BL_CELL_CHARGEH)) ||
	                   (req->ns == BL_NS_UNIT && req->addr == BL_UNIT_SETTINGS))) {
		d->charge_epoch++; /* a counter cleared, or a channel's latch rate changed */
		if (req->ns == BL_NS_UNIT)
			d->settings_writes++;
	}
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

static void read_async(struct bl_device *d, uint8_t ns, uint8_t addr, bl_req_fn fn)
{
	struct bl_packet p = bl_packet_read(ns, addr);

	bl_device_submit(d, &p, 0, 0, fn, NULL, NULL);
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
	 * the address byte of its data register (0x82). */
	return r->pkt.ns == BL_NS_BOOTLOADER && r->pkt.write && r->pkt.addr >= BL_BOOTLOADER_NREGS &&
	       p->ns == BL_NS_BOOTLOADER && p->write && p->addr == BL_BOOT_DATA;
}

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct bl_device *d = ud;

	if (f->kind == BL_FRAME_STREAM) {
		struct bl_channel_state *c = &d->ch[f->u.stream.cell];

		c->snap.valid = true;
		c->snap.time_us = bl_loop_now(d->loop);
		c->snap.seq++;
		c->snap.s = f->u.stream;
		d->stats.streams++;
		bl_devi_regulate(d, f->u.stream.cell);
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
	if (d->rf.dropped > d->stats.dropped_bytes) {
		d->stats.dropped_bytes = d->rf.dropped;
		emit(d, BL_DEV_GARBAGE);
	}
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
	while (d->spare) {
		struct bl_request *r = d->spare;
		d->spare = r->next;
		free(r);
	}
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
	return bl_valid_cell(cell) ? &d->ch[cell].snap : NULL;
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
	d->charge_epoch++;
	emit(d, BL_DEV_RESET);
}

static void on_settings_read(struct bl_device *d, int status, uint16_t value, void *ud)
{
	d->health_pending = false;
	if (status != BL_OK)
		return;
	d->settings = value;
	d->settings_seen = (unsigned)(uintptr_t)ud;
	if (d->watchdog_on && !(value & BL_SET_WATCHDOG_TIMER)) {
		BL_WARN(MOD, "%s: SETTINGS lost the watchdog bit: the device reset",
		        bl_link_name(d->link));
		device_was_reset(d);
	}
}

/* watchdog_by_clock: the periods before the device's clock rate is known,
 * and the shortest ever (10 ms keeps a model running 1000 times faster
 * than real time fed: 10 s of its time between refreshes). */
#define BY_CLOCK_WATCHDOG_MIN_US 10000
#define BY_CLOCK_HEALTH_FIRST_US 250000
#define BY_CLOCK_HEALTH_MIN_US 100000

static uint64_t per_rate(uint64_t base_us, double rate, uint64_t min_us)
{
	double us = (double)base_us / (rate > 1.0 ? rate : 1.0);

	return us < (double)min_us ? min_us : (uint64_t)us;
}

/* The timer periods for the clock rate known now (watchdog_by_clock). */
static void pace_timers(struct bl_device *d)
{
	uint64_t wd = d->clock_rate > 0 ? per_rate(d->opts.watchdog_us, d->clock_rate, BY_CLOCK_WATCHDOG_MIN_US)
	                                : BY_CLOCK_WATCHDOG_MIN_US;
	uint64_t hp = d->clock_rate > 0 ? per_rate(d->opts.health_us, d->clock_rate, BY_CLOCK_HEALTH_MIN_US)
	                                : BY_CLOCK_HEALTH_FIRST_US;

	/* re-armed only on a change of more than a tenth: the estimate
	 * moves by a tick of the timer from read to read */
	if (d->watchdog_on && d->opts.watchdog_us &&
	    (!bl_timer_active(&d->watchdog) || wd * 10 < d->watchdog.period_us * 9 ||
	     wd * 10 > d->watchdog.period_us * 11))
		bl_timer_after(d->loop, &d->watchdog, wd, wd);
	if (d->opts.health_us && !d->id.bootloader &&
	    (!bl_timer_active(&d->health) || hp * 10 < d->health.period_us * 9 ||
	     hp * 10 > d->health.period_us * 11))
		bl_timer_after(d->loop, &d->health, hp, hp);
}

double bl_device_time_rate(const struct bl_device *d)
{
	double host_s, rate;

	if (!d->opts.watchdog_by_clock || !d->timer_read_us || d->timer_read_us <= d->clock_from_us)
		return 1.0;
	host_s = (double)(d->timer_read_us - d->clock_from_us) / 1e6;
	/* ticks counted over less than ten seconds of the device's time are
	 * too coarse to tell a model at --speed 1 from one a few percent off */
	if (d->clock_ticks < 100)
		return 1.0;
	rate = d->clock_ticks * 0.1 / host_s;
	return fabs(rate - 1.0) < 0.02 ? 1.0 : rate;
}

/* Two reads of SYSTEM_TIMER (0.1 s ticks) some host time apart give the
 * device's clock rate. One tick more than counted: the rate is never
 * under-estimated, so the watchdog is never refreshed too late. */
static void follow_clock(struct bl_device *d, uint16_t value)
{
	uint64_t now = bl_loop_now(d->loop);

	if (d->have_timer && d->timer_read_us && now > d->timer_read_us) {
		double ticks = (double)(uint16_t)(value - d->last_timer);

		d->clock_rate = (ticks + 1) * 0.1 / ((double)(now - d->timer_read_us) / 1e6);
		d->clock_ticks += ticks;
		pace_timers(d);
	} else {
		d->clock_from_us = now;
		d->clock_ticks = 0;
	}
	d->timer_read_us = now;
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
	/* only a timer that went on counts towards its rate */
	if (d->opts.watchdog_by_clock)
		follow_clock(d, value);
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
	read_async(d, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER, on_timer_read);
	{
		/* the value read is as of the SETTINGS writes submitted before it */
		struct bl_packet p = bl_packet_read(BL_NS_UNIT, BL_UNIT_SETTINGS);
		bl_device_submit(d, &p, 0, 0, on_settings_read, (void *)(uintptr_t)d->settings_writes, NULL);
	}
}

bool bl_devi_device_time_under(const struct bl_device *d, uint64_t from_us, uint64_t to_us,
                               uint64_t device_us)
{
	double host_us = to_us > from_us ? (double)(to_us - from_us) : 0.0, rate = 1.0;

	if (d->opts.watchdog_by_clock) {
		/* a model on a pty may run many times faster than the host's
		 * clock: until its rate is measured nothing can be said; then
		 * one tick more than counted, never rounded to 1 */
		if (d->clock_ticks < 100 || d->timer_read_us <= d->clock_from_us)
			return false;
		rate = (d->clock_ticks + 1) * 0.1 / ((double)(d->timer_read_us - d->clock_from_us) / 1e6);
		if (rate < 1.0)
			rate = 1.0;
	}
	/* 2 %: a crystal's error, with room to spare */
	return host_us * rate * 1.02 < (double)device_us;
}

void bl_devi_connected(struct bl_device *d)
{
	d->id.connected = true;
	d->charge_epoch++;
	if (d->opts.watchdog_by_clock) {
		/* the connect sequence read SYSTEM_TIMER (and noted when its
		 * answer came): the first health read gives the clock's rate */
		d->timer_read_us = d->have_timer ? d->timer_answer_us : 0;
		d->clock_from_us = d->timer_read_us;
		d->clock_ticks = 0;
		d->clock_rate = 0;
		pace_timers(d);
		return;
	}
	if (d->watchdog_on)
		bl_timer_after(d->loop, &d->watchdog, d->opts.watchdog_us, d->opts.watchdog_us);
	if (d->opts.health_us && !d->id.bootloader)
		bl_timer_after(d->loop, &d->health, d->opts.health_us, d->opts.health_us);
}
