/* proto.c - packet codecs and the reframer. */
#include <string.h>

#include "core/bl.h"
#include "core/proto.h"

void bl_packet_encode(const struct bl_packet *p, uint8_t out[BL_PKT_LEN])
{
	out[0] = BL_START_PKT;
	out[1] = p->ns;
	out[2] = (uint8_t)((p->addr & BL_ADDR_MASK) | (p->write ? BL_WRITE_FLAG : 0));
	bl_le16_put(out + 3, p->value);
}

int bl_packet_decode(const uint8_t in[BL_PKT_LEN], struct bl_packet *p)
{
	if (in[0] != BL_START_PKT)
		return BL_ERR_PROTO;
	p->ns = in[1];
	p->addr = in[2] & BL_ADDR_MASK;
	p->write = (in[2] & BL_WRITE_FLAG) != 0;
	p->value = bl_le16_get(in + 3);
	return BL_OK;
}

struct bl_packet bl_packet_read(uint8_t ns, uint8_t addr)
{
	struct bl_packet p = {.ns = ns, .addr = addr & BL_ADDR_MASK, .write = false, .value = 0};
	return p;
}

struct bl_packet bl_packet_write(uint8_t ns, uint8_t addr, uint16_t value)
{
	struct bl_packet p = {.ns = ns, .addr = addr & BL_ADDR_MASK, .write = true, .value = value};
	return p;
}

bool bl_packet_answers(const struct bl_packet *req, const struct bl_packet *resp)
{
	return req->ns == resp->ns && req->addr == resp->addr && req->write == resp->write;
}

void bl_stream_encode(const struct bl_stream *s, uint8_t out[BL_STREAM_LEN])
{
	out[0] = BL_START_STREAM;
	out[1] = s->cell;
	out[2] = 0;
	bl_le16_put(out + 3, s->mode);
	bl_le16_put(out + 5, s->status);
	bl_le16_put(out + 7, s->temperature);
	bl_le16_put(out + 9, s->current);
	bl_le16_put(out + 11, s->voltage);
}

int bl_stream_decode(const uint8_t in[BL_STREAM_LEN], struct bl_stream *s)
{
	if (in[0] != BL_START_STREAM || in[1] > 3 || in[2] != 0)
		return BL_ERR_PROTO;
	s->cell = in[1];
	s->mode = bl_le16_get(in + 3);
	s->status = bl_le16_get(in + 5);
	s->temperature = bl_le16_get(in + 7);
	s->current = bl_le16_get(in + 9);
	s->voltage = bl_le16_get(in + 11);
	return BL_OK;
}

bool bl_ns_plausible(uint8_t ns)
{
	return ns <= 0x05 || ns == 0xFF;
}

/* ---- Reframer --------------------------------------------------------- */

void bl_reframer_init(struct bl_reframer *r, bl_reframer_frame_fn on_frame,
                      bl_reframer_accept_fn accept, void *ud)
{
	memset(r, 0, sizeof *r);
	r->on_frame = on_frame;
	r->accept = accept;
	r->ud = ud;
}

static void consume(struct bl_reframer *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

static void drop_one(struct bl_reframer *r)
{
	consume(r, 1);
	r->dropped++;
}

enum { HEAD_WAIT = -1, HEAD_DROP = -2 };

/* What the bytes p[0..n) start with: a complete frame (its length, *f
 * filled), HEAD_DROP for a byte that cannot start a frame, or HEAD_WAIT
 * for a head that could still become a frame. A decision never changes
 * as more bytes come, so chunking does not matter. */
static int head(struct bl_reframer *r, const uint8_t *p, size_t n, struct bl_frame *f)
{
	if (p[0] == BL_START_PKT) {
		/* Without an owner's check, only namespaces a device normally
		 * answers are taken. With one, the owner decides: the firmware
		 * does echo 0x06..0xFE when it answers 257 to a request there. */
		if (n >= 2 && !r->accept && !bl_ns_plausible(p[1]))
			return HEAD_DROP;
		if (n < BL_PKT_LEN)
			return HEAD_WAIT;
		f->kind = BL_FRAME_PACKET;
		bl_packet_decode(p, &f->u.packet);
		if (r->accept && !r->accept(r->ud, &f->u.packet))
			return HEAD_DROP;
		return BL_PKT_LEN;
	}
	if (p[0] == BL_START_STREAM) {
		if ((n >= 2 && p[1] > 3) || (n >= 3 && p[2] != 0))
			return HEAD_DROP;
		if (n < BL_STREAM_LEN)
			return HEAD_WAIT;
		f->kind = BL_FRAME_STREAM;
		bl_stream_decode(p, &f->u.stream);
		return BL_STREAM_LEN;
	}
	return HEAD_DROP;
}

static void deliver(struct bl_reframer *r, const struct bl_frame *f)
{
	if (f->kind == BL_FRAME_PACKET)
		r->packets++;
	else
		r->streams++;
	if (r->on_frame)
		r->on_frame(r->ud, f);
}

/* Take every complete frame at the head of the buffer. A byte that cannot
 * start a frame is dropped; a head that could still become a frame waits
 * for more bytes. A frame leaves the buffer before it is delivered. */
static void scan(struct bl_reframer *r)
{
	struct bl_frame f;

	while (r->len > 0) {
		int k = head(r, r->buf, r->len, &f);
		if (k == HEAD_WAIT)
			return;
		if (k == HEAD_DROP) {
			drop_one(r);
			continue;
		}
		consume(r, (size_t)k);
		deliver(r, &f);
	}
}

/* The same on the caller's bytes while the buffer is empty, which is
 * nearly always (a read returns whole frames): no copy, no memmove, no
 * rescan per byte. Stops where a frame needs more bytes, or if a callback
 * fed the reframer meanwhile; returns the bytes used up. */
static size_t scan_direct(struct bl_reframer *r, const uint8_t *p, size_t n)
{
	struct bl_frame f;
	size_t i = 0;

	while (i < n && r->len == 0) {
		int k = head(r, p + i, n - i, &f);
		if (k == HEAD_WAIT)
			break;
		if (k == HEAD_DROP) {
			r->dropped++;
			i++;
			continue;
		}
		i += (size_t)k;
		deliver(r, &f);
	}
	return i;
}

void bl_reframer_feed(struct bl_reframer *r, const uint8_t *data, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (r->len == 0) {
			i += scan_direct(r, data + i, n - i);
			if (i == n)
				break;
		}
		/* scan() leaves at most BL_STREAM_LEN - 1 bytes, so this never
		 * fills; the check keeps the bound local and obvious. */
		if (r->len == sizeof r->buf)
			drop_one(r);
		r->buf[r->len++] = data[i++];
		scan(r);
	}
}

void bl_reframer_reset(struct bl_reframer *r)
{
	r->dropped += r->len;
	r->len = 0;
}

size_t bl_reframer_pending(const struct bl_reframer *r)
{
	return r->len;
}
