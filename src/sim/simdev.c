/* sim/simdev.c - one virtual Batlab as a byte pipe with a clock: the USB
 * link, the UART to the measure MCU (sim/firmware.c), the queue of bytes
 * for the host, and the event loop that interleaves the measure MCU, the
 * comms MCU (simdev_comms.c), faults and the operator (simdev_faults.c).
 *
 * Latencies are fixed (no jitter) so that runs are reproducible: a host
 * packet reaches the comms MCU one USB frame after it was written, then the
 * measure MCU after 5 UART byte times; the main loop takes it half a pass
 * later, and the answer needs 5 UART byte times and a USB frame to come
 * back. That is about 2.4 ms for a cell or unit register and 1.1 ms for a
 * COMMS register (docs/simulator.md, "Timing constants").
 */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "sim/firmware.h"
#include "sim/rng.h"
#include "sim/simdev.h"
#include "sim/simdev_parts.h"

#define PICKUP_US (BL_FW_PASS_US / 2) /* wait for the main loop */
#define RX_RING_PKTS 12       /* the measure MCU's 64-byte RX ring */
#define OUT_MAX 8192          /* packets waiting for a host that never reads */

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

/* Queue a whole packet; packets are never interleaved. Earlier due
 * times go first: a COMMS answer overtakes a measure answer in flight. */
void bl_simdev_out_push(struct bl_simdev *d, uint64_t due, const uint8_t *b, size_t n, bool response)
{
	size_t off = 0;
	if (d->unplugged) /* no host to read it */
		return;
	/* The usual case: room, no fault, due no earlier than the last. */
	if (d->drop_bytes == 0 && d->out_n < d->out_cap && d->out_n < OUT_MAX &&
	    (d->out_n == 0 || out_at(d, d->out_n - 1)->due <= due)) {
		struct out_pkt *p = out_at(d, d->out_n++);
		p->due = due;
		p->len = (uint8_t)n;
		p->off = 0;
		p->response = response;
		if (n == 5)
			memcpy(p->b, b, 5);
		else
			memcpy(p->b, b, n);
		return;
	}
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
	/* Fixed sizes copy inline; packets are 5 or 13 bytes. */
	if (n == 5)
		memcpy(p->b, b, 5);
	else
		memcpy(p->b, b, n);
}

/* An answer to a command: subject to the no-reply and late-reply faults. */
void bl_simdev_out_response(struct bl_simdev *d, uint64_t due, const uint8_t b[5])
{
	if (d->no_reply > 0) {
		d->no_reply--;
		return;
	}
	if (d->late_count > 0) {
		d->late_count--;
		due += d->late_us;
	}
	bl_simdev_out_push(d, due, b, 5, true);
}

/* ---- UART to the measure MCU ------------------------------------------- */

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
		bl_simdev_comms_command(d, t, p);
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

/* ---- The event loop ---------------------------------------------------- */

static uint64_t next_fault_time(const struct bl_simdev *d)
{
	return d->next_fault < d->nfaults ? d->faults[d->next_fault].at_us : UINT64_MAX;
}

static int next_operator(const struct bl_simdev *d, uint64_t *at)
{
	int best = -1;
	*at = UINT64_MAX;
	if (!d->op_any)
		return best;
	for (int s = 0; s < BL_CELLS; s++)
		if (d->op_at[s] < *at) {
			*at = d->op_at[s];
			best = s;
		}
	return best;
}

static void run_until(struct bl_simdev *d, uint64_t t)
{
	if (t < d->now)
		t = d->now;
	if (d->due_ok && d->due > t) {
		d->now = t;
		return;
	}
	/* Faults and the operator move only when one of them runs. */
	uint64_t tx = next_fault_time(d), to;
	int slot = next_operator(d, &to);
	/* Unplugged from the host, the device goes on (its watchdog too);
	 * only what it sends is lost. */
	for (;;) {
		uint64_t tc = d->comms_next;
		uint64_t tr = d->rx_n ? rx_handle_time(d) : UINT64_MAX;
		uint64_t other = tc;
		if (tx < other)
			other = tx;
		if (to < other)
			other = to;
		if (tr < other)
			other = tr;
		/* Ties: the ISR first, then the comms MCU, faults, the operator,
		 * and the command last (it sees everything else at its time).
		 * The ISR's own events move none of the others' times, so its
		 * run up to the next of them needs no second look at those. */
		uint64_t tf = bl_fw_next_event(&d->fw);
		if (tf <= other && tf <= t) {
			d->next_ok = false;
			do {
				bl_fw_step(&d->fw, tf);
				tf = bl_fw_next_event(&d->fw);
			} while (tf <= other && tf <= t);
		}
		uint64_t m = tf < other ? tf : other;
		if (m > t) {
			d->due = m;
			d->due_ok = true;
			break;
		}
		d->next_ok = false;
		if (tc == m) {
			bl_simdev_comms_measure(d);
		} else if (tx == m) {
			bl_simdev_apply_fault(d, m, &d->faults[d->next_fault++]);
			tx = next_fault_time(d);
			slot = next_operator(d, &to);
		} else if (to == m) {
			bl_simdev_operator_insert(d, slot, m);
			slot = next_operator(d, &to);
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

/* Scheduled faults in time order (stable: same-time faults keep the
 * layout's order). */
static bool copy_faults(struct bl_simdev *d, const struct bl_simdev_config *cfg)
{
	int nf = cfg->nfaults < 0 ? 0 : cfg->nfaults > BL_SIM_MAX_FAULTS ? BL_SIM_MAX_FAULTS : cfg->nfaults;
	if (!nf)
		return true;
	d->faults = malloc((size_t)nf * sizeof *d->faults);
	if (!d->faults)
		return false;
	memcpy(d->faults, cfg->faults, (size_t)nf * sizeof *d->faults);
	bl_sim_faults_sort(d->faults, nf);
	d->nfaults = nf;
	return true;
}

/* Power the measure MCU up with the board, cells and image of d->cfg. */
static bool start_firmware(struct bl_simdev *d, uint64_t now_us)
{
	const struct bl_simdev_config *cfg = &d->cfg;
	struct bl_cell_params cells[BL_CELLS];
	struct bl_fw_setup s = {
		.serial_num = cfg->serial_num, .device_id = cfg->device_id,
		.blank_eeprom = cfg->blank_eeprom, .vcc_v = cfg->vcc_v,
		.psu_power = cfg->psu, .ambient_c = cfg->ambient_c,
		.cells = cells, .seed = cfg->seed, .noise_v = cfg->noise_v,
		.noise_a = cfg->noise_a, .noise_temp_c = cfg->noise_temp_c,
		.image = cfg->firmware_image,
	};
	for (int c = 0; c < BL_CELLS; c++) {
		s.slot_used[c] = cfg->slot_used[c];
		cells[c] = *bl_simdev_cell_or_default(&cfg->cells[c]);
	}
	uint8_t *image = NULL;
	if (!s.image) {
		image = malloc(BL_FLASH_IMAGE_SIZE);
		if (!image)
			return false;
		bl_sim_firmware_image(image, cfg->serial_num);
		s.image = image;
	}
	struct bl_fw_hooks h = bl_simdev_fw_hooks(d);
	bl_fw_init(&d->fw, &s, &h, now_us);
	free(image);
	return true;
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
	for (int s = 0; s < BL_CELLS; s++)
		d->op_at[s] = UINT64_MAX;
	bl_rng_seed(&d->line_rng, cfg->seed ^ 0x6A09E667F3BCC908ull);
	bl_simdev_comms_init(d, now_us);
	if (!copy_faults(d, cfg) || !start_firmware(d, now_us)) {
		bl_simdev_free(d);
		return NULL;
	}
	d->comms[BL_COMMS_PSU_VOLTAGE] = bl_simdev_psu_raw(d);
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
	/* One whole packet with nothing buffered (the host's usual write):
	 * the parser below would take it as it is. */
	if (d->hlen == 0 && n == 5 && data[0] == 0xAA) {
		dispatch(d, d->now, data);
		d->due_ok = d->next_ok = false;
		return;
	}
	/* The comms MCU's USB parser: while 5 bytes are buffered, skip
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
			d->due_ok = d->next_ok = false;
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
		if (k == 5)
			memcpy(buf + n, p->b + p->off, 5);
		else
			memcpy(buf + n, p->b + p->off, k);
		n += k;
		p->off = (uint8_t)(p->off + k);
		if (p->off == p->len) {
			d->out_head = (d->out_head + 1) & (d->out_cap - 1);
			d->out_n--;
		}
	}
	if (n > 0)
		d->next_ok = false;
	return n;
}

static uint64_t next_event(const struct bl_simdev *d)
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

uint64_t bl_simdev_next_event_us(struct bl_simdev *d)
{
	if (!d->next_ok) {
		d->next_ev = next_event(d);
		d->next_ok = true;
	}
	return d->next_ev;
}

bool bl_simdev_unplugged(const struct bl_simdev *d)
{
	return d->unplugged;
}

void bl_simdev_fault(struct bl_simdev *d, uint64_t now_us, const struct bl_fault *f)
{
	run_until(d, now_us);
	if (!d->unplugged)
		bl_simdev_apply_fault(d, d->now, f);
	d->due_ok = d->next_ok = false;
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
