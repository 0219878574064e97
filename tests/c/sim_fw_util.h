/* sim_fw_util.h - drive a virtual Batlab through its bytes, in virtual time,
 * for the test_sim_fw_*.c tests. Header-only (static inline), like tap.h.
 *
 * A `struct simh` owns one bl_simdev and a virtual clock. Everything goes
 * through bl_simdev_host_write/host_read with real protocol bytes; time
 * only moves by jumping to bl_simdev_next_event_us() or to a deadline.
 * Incoming bytes are framed (0xAA responses, 0xAF streams), streams are
 * recorded with their arrival time, and every raw byte can be kept.
 */
#ifndef BL_SIM_FW_UTIL_H
#define BL_SIM_FW_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "core/regs.h"
#include "sim/simdev.h"

#define SH_MS 1000ull
#define SH_S 1000000ull

struct sh_stream {
	uint64_t t;
	struct bl_stream s;
};

struct simh {
	struct bl_simdev *d;
	uint64_t t;
	uint64_t timeout_us;      /* per transaction, 100 ms unless changed */
	uint8_t pb[64];
	size_t plen;
	uint8_t resp[32][5];      /* responses since the last command */
	uint64_t resp_t[32];
	int nresp;
	uint64_t last_rtt;        /* latency of the last transaction */
	struct sh_stream *streams;
	size_t nstreams, capstreams;
	bool keep_raw;
	uint8_t *raw;
	size_t nraw, capraw;
	uint64_t junk;            /* bytes the framer skipped */
};

static inline void sh_open(struct simh *h, const struct bl_simdev_config *cfg)
{
	memset(h, 0, sizeof *h);
	h->d = bl_simdev_new(cfg, 0);
	h->timeout_us = 100 * SH_MS;
}

static inline void sh_open_default(struct simh *h)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	sh_open(h, &cfg);
}

static inline void sh_close(struct simh *h)
{
	bl_simdev_free(h->d);
	free(h->streams);
	free(h->raw);
	h->d = NULL;
}

static inline void sh_frame(struct simh *h)
{
	for (;;) {
		if (h->plen == 0)
			return;
		uint8_t b0 = h->pb[0];
		size_t need = b0 == 0xAA ? 5 : b0 == 0xAF ? 13 : 1;
		if (h->plen < need)
			return;
		if (b0 == 0xAA) {
			if (h->nresp < 32) {
				memcpy(h->resp[h->nresp], h->pb, 5);
				h->resp_t[h->nresp++] = h->t;
			}
		} else if (b0 == 0xAF && h->pb[1] <= 3 && h->pb[2] == 0) {
			if (h->nstreams == h->capstreams) {
				h->capstreams = h->capstreams ? 2 * h->capstreams : 256;
				h->streams = realloc(h->streams, h->capstreams * sizeof *h->streams);
			}
			h->streams[h->nstreams].t = h->t;
			bl_stream_decode(h->pb, &h->streams[h->nstreams].s);
			h->nstreams++;
		} else {
			need = 1;
			h->junk++;
		}
		memmove(h->pb, h->pb + need, h->plen - need);
		h->plen -= need;
	}
}

/* Read what is due at h->t; returns the byte count. */
static inline size_t sh_drain(struct simh *h)
{
	size_t total = 0;
	for (;;) {
		uint8_t buf[32];
		size_t room = sizeof h->pb - h->plen;
		size_t n = bl_simdev_host_read(h->d, h->t, buf, room < sizeof buf ? room : sizeof buf);
		if (n == 0)
			return total;
		total += n;
		if (h->keep_raw) {
			if (h->nraw + n > h->capraw) {
				h->capraw = h->capraw ? 2 * h->capraw : 4096;
				while (h->capraw < h->nraw + n)
					h->capraw *= 2;
				h->raw = realloc(h->raw, h->capraw);
			}
			memcpy(h->raw + h->nraw, buf, n);
			h->nraw += n;
		}
		memcpy(h->pb + h->plen, buf, n);
		h->plen += n;
		sh_frame(h);
	}
}

static inline int sh_find(const struct simh *h, uint8_t ns, uint8_t addr_byte)
{
	for (int i = 0; i < h->nresp; i++)
		if (h->resp[i][1] == ns && h->resp[i][2] == addr_byte)
			return i;
	return -1;
}

/* Run the device up to `until`, stopping early when a response with this
 * namespace and address byte arrives (ns < 0: never). True if it did. */
static inline bool sh_run(struct simh *h, uint64_t until, int ns, int addr_byte)
{
	for (;;) {
		if (ns >= 0 && sh_find(h, (uint8_t)ns, (uint8_t)addr_byte) >= 0)
			return true;
		uint64_t n = bl_simdev_next_event_us(h->d);
		if (n <= h->t) {
			if (sh_drain(h))
				continue;
			n = h->t + 1;   /* an early hint: nothing came yet */
		}
		if (n > until)
			break;
		h->t = n;
		sh_drain(h);
	}
	if (until > h->t)
		h->t = until;
	sh_drain(h);
	return ns >= 0 && sh_find(h, (uint8_t)ns, (uint8_t)addr_byte) >= 0;
}

static inline void sh_wait(struct simh *h, double seconds)
{
	sh_run(h, h->t + (uint64_t)(seconds * 1e6 + 0.5), -1, 0);
}

static inline void sh_wait_until(struct simh *h, uint64_t t)
{
	if (t > h->t)
		sh_run(h, t, -1, 0);
}

static inline void sh_send(struct simh *h, const uint8_t *b, size_t n)
{
	bl_simdev_host_write(h->d, h->t, b, n);
}

/* One transaction; the answer is expected with `expect` as address byte.
 * Returns the 16-bit answer, or -1 on timeout. */
static inline long sh_xact_expect(struct simh *h, uint8_t ns, uint8_t addr_byte, uint16_t v,
                                  uint8_t expect)
{
	uint8_t p[5] = {0xAA, ns, addr_byte, (uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
	h->nresp = 0;
	uint64_t t0 = h->t;
	sh_send(h, p, 5);
	if (!sh_run(h, t0 + h->timeout_us, ns, expect))
		return -1;
	int i = sh_find(h, ns, expect);
	h->last_rtt = h->resp_t[i] - t0;
	return h->resp[i][3] | h->resp[i][4] << 8;
}

static inline long sh_read(struct simh *h, uint8_t ns, uint8_t addr)
{
	return sh_xact_expect(h, ns, addr, 0, addr);
}

static inline long sh_write(struct simh *h, uint8_t ns, uint8_t addr, uint16_t v)
{
	return sh_xact_expect(h, ns, (uint8_t)(addr | 0x80), v, (uint8_t)(addr | 0x80));
}

static inline void sh_fault(struct simh *h, enum bl_fault_kind kind, int slot, int count, double value)
{
	struct bl_fault f;
	memset(&f, 0, sizeof f);
	f.kind = kind;
	f.slot = slot;
	f.count = count;
	f.value = value;
	bl_simdev_fault(h->d, h->t, &f);
}

static inline double sh_volts(long raw)
{
	return (int16_t)(uint16_t)raw * 4.5 / 32768.0;
}

static inline double sh_amps(long raw)
{
	return (double)raw / 8000.0;
}

/* Poll a register every `step` seconds until it equals `want` or `max`
 * seconds pass. Returns the virtual time it was first seen, or 0. */
static inline uint64_t sh_poll_until(struct simh *h, uint8_t ns, uint8_t addr, long want,
                                     double step, double max)
{
	uint64_t end = h->t + (uint64_t)(max * 1e6);
	while (h->t < end) {
		if (sh_read(h, ns, addr) == want)
			return h->t;
		sh_wait(h, step);
	}
	return 0;
}

#endif
