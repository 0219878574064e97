/* sim/simdev.c - one virtual Batlab as a byte pipe with a clock: the USB
 * link, the comms MCU (namespace 0xFF, LEDs, PSU detection), the UART to
 * the measure MCU (sim/firmware.c), faults and the operator model.
 *
 * Latencies are fixed (no jitter) so that runs are reproducible: a host
 * packet reaches the comms MCU one USB frame after it was written, then the
 * measure MCU after 5 UART byte times; the main loop takes it half a pass
 * later, and the answer needs 5 UART byte times and a USB frame to come
 * back. That is about 2.4 ms for a cell or unit register and 1.1 ms for a
 * COMMS register (PROTOCOL.md §13).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "sim/firmware.h"
#include "sim/rng.h"
#include "sim/simdev.h"

#define USB_US 500            /* one USB frame, either direction (average) */
#define UART_BYTE_US 87       /* 115200 baud 8N1 */
#define PICKUP_US (BL_FW_PASS_US / 2) /* wait for the main loop */
#define COMMS_PROC_US 100
#define RX_RING_PKTS 12       /* the measure MCU's 64-byte RX ring */
#define RX_QUEUE 64           /* packets on their way or in that ring */
#define OUT_MAX 8192          /* packets waiting for a host that never reads */
#define COMMS_MEAS_US 500000  /* PSU_VOLTAGE sampling period */
#define PSU_DIODE_V 0.3       /* assumed; the source does not say */

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

	struct bl_simdev_stats st;
	/* Cells as of view_t (bl_simdev_advance), for inspection only. */
	struct bl_cell view[BL_CELLS];
	bool view_ok[BL_CELLS];
	uint64_t view_t;
};

/* ---- Output queue ------------------------------------------------------ */

static struct out_pkt *out_at(struct bl_simdev *d, size_t i)
{
	return &d->out[(d->out_head + i) & (d->out_cap - 1)];
}

static bool out_grow(struct bl_simdev *d)
{
	size_t cap = d->out_cap ? d->out_cap * 2 : 64;
	struct out_pkt *n = malloc(cap * sizeof *n);
	if (!n)
		return false;
	for (size_t i = 0; i < d->out_n; i++)
		n[i] = *out_at(d, i);
	free(d->out);
	d->out = n;
	d->out_cap = cap;
	d->out_head = 0;
	return true;
}

/* Queue a whole packet; packets are never interleaved (§2.6). Earlier due
 * times go first: a COMMS answer overtakes a measure answer in flight. */
static void out_push(struct bl_simdev *d, uint64_t due, const uint8_t *b, size_t n, bool response)
{
	size_t off = 0;
	while (d->drop_bytes > 0 && off < n) {
		d->drop_bytes--;
		off++;
	}
	if (off == n)
		return;
	if (d->out_n >= OUT_MAX || (d->out_n == d->out_cap && !out_grow(d))) {
		d->st.tx_dropped++;
		return;
	}
	size_t i = d->out_n++;
	while (i > 0 && out_at(d, i - 1)->due > due) {
		*out_at(d, i) = *out_at(d, i - 1);
		i--;
	}
	struct out_pkt *p = out_at(d, i);
	p->due = due;
	p->len = (uint8_t)n;
	p->off = (uint8_t)off;
	p->response = response;
	memcpy(p->b, b, n);
}

/* An answer to a command: subject to the no-reply and late-reply faults. */
static void out_response(struct bl_simdev *d, uint64_t due, const uint8_t b[5])
{
	if (d->no_reply > 0) {
		d->no_reply--;
		return;
	}
	if (d->late_count > 0) {
		d->late_count--;
		due += d->late_us;
	}
	out_push(d, due, b, 5, true);
}

/* ---- Firmware hooks ----------------------------------------------------- */

static void hook_to_host(void *ud, uint64_t t, const uint8_t *pkt, size_t n)
{
	struct bl_simdev *d = ud;
	/* Packets leave the measure MCU one after the other on the UART. */
	uint64_t start = t > d->up_free ? t : d->up_free;
	d->up_free = start + n * UART_BYTE_US;
	uint64_t due = d->up_free + USB_US;
	if (n == 5)
		out_response(d, due, pkt);
	else
		out_push(d, due, pkt, n, false);
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

/* ---- Comms MCU (§4.3) --------------------------------------------------- */

static uint16_t psu_raw(const struct bl_simdev *d)
{
	if (!d->fw.psu_power)
		return 0;
	/* Through a diode, then halved, into a 10-bit ADC at 4.096 V. */
	double pin = (d->cfg.psu_v - PSU_DIODE_V) / 2.0;
	long raw = lround(pin / 4.096 * 1024.0);
	return (uint16_t)(raw < 0 ? 0 : raw > 1023 ? 1023 : raw);
}

static void comms_measure(struct bl_simdev *d)
{
	uint16_t raw = psu_raw(d);
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

static void comms_command(struct bl_simdev *d, uint64_t t, const uint8_t p[5])
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
	out_response(d, t + USB_US + COMMS_PROC_US + USB_US, r);
}

static uint64_t rx_handle_time(const struct bl_simdev *d)
{
	const struct rx_pkt *q = &d->rx[d->rx_head];
	uint64_t h = q->arrive + PICKUP_US;
	return h > d->mcu_free ? h : d->mcu_free;
}

/* Would the measure MCU's RX ring be full when a packet lands at `at`?
 * The queued packets leave it one per main-loop pass. */
static bool rx_full_at(const struct bl_simdev *d, uint64_t at)
{
	uint64_t free = d->mcu_free;
	unsigned waiting = 0;
	for (unsigned i = 0; i < d->rx_n; i++) {
		const struct rx_pkt *q = &d->rx[(d->rx_head + i) % RX_QUEUE];
		uint64_t h = q->arrive + PICKUP_US > free ? q->arrive + PICKUP_US : free;
		free = h + BL_FW_PASS_US;
		if (h > at)
			waiting++;
	}
	return waiting >= RX_RING_PKTS;
}

/* A complete packet from the host reached the comms MCU at t. */
static void dispatch(struct bl_simdev *d, uint64_t t, const uint8_t p[5])
{
	if (p[1] == BL_NS_COMMS) {
		comms_command(d, t, p);
		return;
	}
	/* Forwarded byte by byte at 115200 baud, behind what is in flight. */
	uint64_t start = t + USB_US > d->down_free ? t + USB_US : d->down_free;
	uint64_t arrive = start + 5 * UART_BYTE_US;
	d->down_free = arrive;
	if (d->rx_n >= RX_QUEUE || rx_full_at(d, arrive)) {
		d->st.rx_overflows++;
		return;
	}
	struct rx_pkt *q = &d->rx[(d->rx_head + d->rx_n++) % RX_QUEUE];
	q->arrive = arrive;
	memcpy(q->b, p, 5);
}

static void rx_handle(struct bl_simdev *d, uint64_t t)
{
	struct rx_pkt q = d->rx[d->rx_head];
	d->rx_head = (d->rx_head + 1) % RX_QUEUE;
	d->rx_n--;
	d->mcu_free = bl_fw_command(&d->fw, t, q.arrive, q.b);
}

/* ---- Faults and the operator ------------------------------------------- */

static const struct bl_cell_params *cell_or_default(const struct bl_cell_params *p)
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

static void apply_fault(struct bl_simdev *d, uint64_t t, const struct bl_fault *f)
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
			d->op_idx[f->slot] = d->queue_next++;
		}
		break;
	case BL_FAULT_CELL_INSERT:
		if (slot_ok(f))
			bl_fw_cell_insert(&d->fw, t, f->slot, cell_or_default(&f->cell));
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
			out_push(d, t, b, (size_t)k, false);
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

static uint64_t next_fault_time(const struct bl_simdev *d)
{
	return d->next_fault < d->nfaults ? d->faults[d->next_fault].at_us : UINT64_MAX;
}

static int next_operator(const struct bl_simdev *d, uint64_t *at)
{
	int best = -1;
	*at = UINT64_MAX;
	for (int s = 0; s < BL_CELLS; s++)
		if (d->op_at[s] < *at) {
			*at = d->op_at[s];
			best = s;
		}
	return best;
}

/* ---- The event loop ---------------------------------------------------- */

static void run_until(struct bl_simdev *d, uint64_t t)
{
	if (t < d->now)
		t = d->now;
	while (!d->unplugged) {
		uint64_t tf = bl_fw_next_event(&d->fw);
		uint64_t tc = d->comms_next;
		uint64_t tr = d->rx_n ? rx_handle_time(d) : UINT64_MAX;
		uint64_t tx = next_fault_time(d);
		uint64_t to;
		int slot = next_operator(d, &to);
		uint64_t m = tf;
		if (tc < m)
			m = tc;
		if (tx < m)
			m = tx;
		if (to < m)
			m = to;
		if (tr < m)
			m = tr;
		if (m > t)
			break;
		/* Ties: the ISR first, then the comms MCU, faults, the operator,
		 * and the command last (it sees everything else at its time). */
		if (tf == m) {
			bl_fw_step(&d->fw);
		} else if (tc == m) {
			comms_measure(d);
		} else if (tx == m) {
			apply_fault(d, m, &d->faults[d->next_fault++]);
		} else if (to == m) {
			d->op_at[slot] = UINT64_MAX;
			bl_fw_cell_insert(&d->fw, m, slot, cell_or_default(&d->cfg.queue[d->op_idx[slot]]));
		} else {
			rx_handle(d, m);
		}
	}
	d->now = t;
}

/* ---- Public API -------------------------------------------------------- */

void bl_sim_firmware_image(uint8_t *out, uint32_t seed)
{
	static const char tag[] = "batlab virtual measure firmware v7";
	struct bl_rng r;
	bl_rng_seed(&r, 0xF1A5000000000000ull | seed);
	unsigned sum = 0;
	for (size_t i = 0; i + 1 < BL_FLASH_IMAGE_SIZE; i++) {
		/* A recognisable tag at the start, code-like bytes after it, and
		 * the erased-flash look (0xFF) over the last quarter. */
		uint8_t b;
		if (i < sizeof tag - 1)
			b = (uint8_t)tag[i];
		else if (i < BL_FLASH_IMAGE_SIZE * 3 / 4)
			b = (uint8_t)bl_rng_below(&r, 256);
		else
			b = 0xFF;
		out[i] = b;
		sum += b;
	}
	out[BL_FLASH_IMAGE_SIZE - 1] = (uint8_t)sum;
}

void bl_simdev_config_default(struct bl_simdev_config *cfg, unsigned index)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->serial_num = (uint16_t)(1000 + index);
	cfg->device_id = 0;
	cfg->vcc_v = 5.0;
	cfg->psu = true;
	cfg->psu_v = 5.0;
	cfg->ambient_c = 25.0;
	const struct bl_cell_params *p = bl_cell_profile("nmc18650");
	for (int s = 0; s < BL_CELLS; s++) {
		cfg->slot_used[s] = p != NULL;
		if (p) {
			cfg->cells[s] = *p;
			cfg->cells[s].soc = 0.9;
		}
	}
	cfg->operator_delay_s = 30.0;
	cfg->seed = index + 1;
	cfg->noise_v = 0.0005;
	cfg->noise_a = 0.001;
	cfg->noise_temp_c = 0.05;
}

struct bl_simdev *bl_simdev_new(const struct bl_simdev_config *cfg, uint64_t now_us)
{
	struct bl_simdev *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->cfg = *cfg;
	if (!(d->cfg.vcc_v > 0))
		d->cfg.vcc_v = 5.0;
	if (!(d->cfg.psu_v > 0))
		d->cfg.psu_v = 5.0;
	if (d->cfg.nqueue > BL_SIM_MAX_QUEUE)
		d->cfg.nqueue = BL_SIM_MAX_QUEUE;
	if (d->cfg.nqueue < 0)
		d->cfg.nqueue = 0;
	d->now = now_us;

	/* Scheduled faults in time order (stable: same-time faults keep the
	 * layout's order). */
	int nf = cfg->nfaults < 0 ? 0 : cfg->nfaults > BL_SIM_MAX_FAULTS ? BL_SIM_MAX_FAULTS : cfg->nfaults;
	if (nf) {
		d->faults = malloc((size_t)nf * sizeof *d->faults);
		if (!d->faults) {
			free(d);
			return NULL;
		}
		for (int i = 0; i < nf; i++) {
			struct bl_fault f = cfg->faults[i];
			int j = i;
			while (j > 0 && d->faults[j - 1].at_us > f.at_us) {
				d->faults[j] = d->faults[j - 1];
				j--;
			}
			d->faults[j] = f;
		}
		d->nfaults = nf;
	}
	for (int s = 0; s < BL_CELLS; s++)
		d->op_at[s] = UINT64_MAX;
	bl_rng_seed(&d->line_rng, cfg->seed ^ 0x6A09E667F3BCC908ull);

	for (size_t i = 0; i < bl_regs_count; i++)
		if (bl_regs[i].ns_kind == BL_NSK_COMMS && bl_regs[i].addr < BL_COMMS_NREGS)
			d->comms[bl_regs[i].addr] = bl_regs[i].power_on;
	d->psu_det = cfg->psu;
	d->comms[BL_COMMS_PSU] = cfg->psu;
	d->comms_next = now_us + COMMS_MEAS_US;

	struct bl_cell_params cells[BL_CELLS];
	struct bl_fw_setup s = {
		.serial_num = cfg->serial_num, .device_id = cfg->device_id,
		.blank_eeprom = cfg->blank_eeprom, .vcc_v = d->cfg.vcc_v,
		.psu_power = cfg->psu, .ambient_c = cfg->ambient_c,
		.cells = cells, .seed = cfg->seed, .noise_v = cfg->noise_v,
		.noise_a = cfg->noise_a, .noise_temp_c = cfg->noise_temp_c,
	};
	for (int c = 0; c < BL_CELLS; c++) {
		s.slot_used[c] = cfg->slot_used[c];
		cells[c] = *cell_or_default(&cfg->cells[c]);
	}
	uint8_t *image = NULL;
	if (cfg->firmware_image) {
		s.image = cfg->firmware_image;
	} else {
		image = malloc(BL_FLASH_IMAGE_SIZE);
		if (!image) {
			free(d->faults);
			free(d);
			return NULL;
		}
		bl_sim_firmware_image(image, cfg->serial_num);
		s.image = image;
	}
	d->comms[BL_COMMS_PSU_VOLTAGE] = 0;
	struct bl_fw_hooks h = {
		.ud = d, .to_host = hook_to_host, .led = hook_led, .psu_poll = hook_psu_poll,
	};
	bl_fw_init(&d->fw, &s, &h, now_us);
	free(image);
	d->comms[BL_COMMS_PSU_VOLTAGE] = psu_raw(d);
	d->mcu_free = now_us;
	return d;
}

void bl_simdev_free(struct bl_simdev *d)
{
	if (!d)
		return;
	free(d->out);
	free(d->faults);
	free(d);
}

void bl_simdev_host_write(struct bl_simdev *d, uint64_t now_us, const uint8_t *data, size_t n)
{
	run_until(d, now_us);
	if (d->unplugged)
		return;
	/* The comms MCU's USB parser (§2.8): while 5 bytes are buffered, skip
	 * to 0xAA and take 5; a partial packet waits for more bytes. */
	for (size_t i = 0; i < n; i++) {
		d->hb[d->hlen++] = data[i];
		while (d->hlen >= 5) {
			if (d->hb[0] != 0xAA) {
				memmove(d->hb, d->hb + 1, --d->hlen);
				continue;
			}
			dispatch(d, d->now, d->hb);
			d->hlen = 0;
		}
	}
}

size_t bl_simdev_host_read(struct bl_simdev *d, uint64_t now_us, uint8_t *buf, size_t max)
{
	run_until(d, now_us);
	size_t n = 0;
	while (n < max && d->out_n > 0) {
		struct out_pkt *p = out_at(d, 0);
		if (p->due > d->now)
			break;
		size_t k = (size_t)(p->len - p->off);
		if (k > max - n)
			k = max - n;
		memcpy(buf + n, p->b + p->off, k);
		n += k;
		p->off = (uint8_t)(p->off + k);
		if (p->off == p->len) {
			d->out_head = (d->out_head + 1) & (d->out_cap - 1);
			d->out_n--;
		}
	}
	return n;
}

uint64_t bl_simdev_next_event_us(const struct bl_simdev *d)
{
	if (d->unplugged)
		return UINT64_MAX;
	uint64_t m = UINT64_MAX;
	if (d->out_n)
		m = d->out[d->out_head].due;
	if (d->rx_n) {
		uint64_t t = rx_handle_time(d) + 5 * UART_BYTE_US + USB_US;
		if (t < m)
			m = t;
	}
	uint64_t s = bl_fw_next_stream(&d->fw);
	if (s != UINT64_MAX && s + 13 * UART_BYTE_US + USB_US < m)
		m = s + 13 * UART_BYTE_US + USB_US;
	for (int i = d->next_fault; i < d->nfaults; i++) {
		const struct bl_fault *f = &d->faults[i];
		if (f->at_us >= m)
			break;
		if (f->kind == BL_FAULT_UNPLUG || f->kind == BL_FAULT_GARBAGE) {
			m = f->at_us;
			break;
		}
	}
	return m;
}

bool bl_simdev_unplugged(const struct bl_simdev *d)
{
	return d->unplugged;
}

void bl_simdev_fault(struct bl_simdev *d, uint64_t now_us, const struct bl_fault *f)
{
	run_until(d, now_us);
	if (!d->unplugged)
		apply_fault(d, d->now, f);
}

void bl_simdev_advance(struct bl_simdev *d, uint64_t now_us)
{
	run_until(d, now_us);
	/* Integrating the real cells here would split their steps where the
	 * caller happens to look, and change the run in the last bits. */
	for (int s = 0; s < BL_CELLS; s++)
		d->view_ok[s] = bl_fw_cell_view(&d->fw, s, d->now, &d->view[s]);
	d->view_t = d->now;
}

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
