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

/* Take every complete frame at the head of the buffer. A byte that cannot
 * start a frame is dropped; a head that could still become a frame waits
 * for more bytes. */
static void scan(struct bl_reframer *r)
{
	struct bl_frame f;

	while (r->len > 0) {
		uint8_t head = r->buf[0];

		if (head == BL_START_PKT) {
			/* Without an owner's check, only namespaces a device
			 * normally answers are taken. With one, the owner
			 * decides: the firmware does echo 0x06..0xFE when it
			 * answers 257 to a request there. */
			if (r->len >= 2 && !r->accept && !bl_ns_plausible(r->buf[1])) {
				drop_one(r);
				continue;
			}
			if (r->len < BL_PKT_LEN)
				return;
			f.kind = BL_FRAME_PACKET;
			bl_packet_decode(r->buf, &f.u.packet);
			if (r->accept && !r->accept(r->ud, &f.u.packet)) {
				drop_one(r);
				continue;
			}
			consume(r, BL_PKT_LEN);
			r->packets++;
			if (r->on_frame)
				r->on_frame(r->ud, &f);
		} else if (head == BL_START_STREAM) {
			if ((r->len >= 2 && r->buf[1] > 3) || (r->len >= 3 && r->buf[2] != 0)) {
				drop_one(r);
				continue;
			}
			if (r->len < BL_STREAM_LEN)
				return;
			f.kind = BL_FRAME_STREAM;
			bl_stream_decode(r->buf, &f.u.stream);
			consume(r, BL_STREAM_LEN);
			r->streams++;
			if (r->on_frame)
				r->on_frame(r->ud, &f);
		} else {
			drop_one(r);
		}
	}
}

void bl_reframer_feed(struct bl_reframer *r, const uint8_t *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* scan() leaves at most BL_STREAM_LEN - 1 bytes, so this never
		 * fills; the check keeps the bound local and obvious. */
		if (r->len == sizeof r->buf)
			drop_one(r);
		r->buf[r->len++] = data[i];
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
