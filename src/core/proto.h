/* proto.h - Batlab wire packets and the reframer.
 *
 * Command and response packets are 5 bytes: AA ns addr|write lo hi.
 * Stream packets are 13 bytes: AF cell 00 mode status temp current voltage.
 * There is no checksum: the reframer recovers alignment from the start
 * bytes and plausible namespace/cell bytes, and by asking its owner whether a response is the one it waits for.
 */
#ifndef BL_PROTO_H
#define BL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BL_PKT_LEN 5
#define BL_STREAM_LEN 13
#define BL_START_PKT 0xAA
#define BL_START_STREAM 0xAF
#define BL_WRITE_FLAG 0x80
#define BL_ADDR_MASK 0x7F

/* A command (host -> device) or response (device -> host). */
struct bl_packet {
	uint8_t ns;       /* namespace byte */
	uint8_t addr;     /* register address, 0..127, without the write flag */
	bool write;       /* the write flag (echoed in responses) */
	uint16_t value;   /* write value, read value, or 0 / 257 write status */
};

/* An unsolicited stream report. */
struct bl_stream {
	uint8_t cell;          /* 0..3 */
	uint16_t mode;
	uint16_t status;       /* STATUS, not ERROR */
	uint16_t temperature;  /* raw */
	uint16_t current;      /* raw */
	uint16_t voltage;      /* raw (int16 on the wire) */
};

/* 16-bit little-endian, the wire's (and the firmware EEPROM's) byte order. */
static inline uint16_t bl_le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void bl_le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xFF);
	p[1] = (uint8_t)(v >> 8);
}

void bl_packet_encode(const struct bl_packet *p, uint8_t out[BL_PKT_LEN]);
/* BL_ERR_PROTO if the start byte is not 0xAA. */
int bl_packet_decode(const uint8_t in[BL_PKT_LEN], struct bl_packet *p);
/* Build a read / write request. */
struct bl_packet bl_packet_read(uint8_t ns, uint8_t addr);
struct bl_packet bl_packet_write(uint8_t ns, uint8_t addr, uint16_t value);
/* True if `resp` answers `req`: same namespace, same address byte (write
 * flag included). The bootloader's odd case (a write to an unknown address
 * is answered with address 0x82) is handled by the device layer. */
bool bl_packet_answers(const struct bl_packet *req, const struct bl_packet *resp);

void bl_stream_encode(const struct bl_stream *s, uint8_t out[BL_STREAM_LEN]);
/* BL_ERR_PROTO unless AF, cell <= 3 and byte 2 == 0. */
int bl_stream_decode(const uint8_t in[BL_STREAM_LEN], struct bl_stream *s);

/* ---- Reframer --------------------------------------------------------- */

enum bl_frame_kind {
	BL_FRAME_PACKET = 1,
	BL_FRAME_STREAM = 2,
};

struct bl_frame {
	enum bl_frame_kind kind;
	union {
		struct bl_packet packet;
		struct bl_stream stream;
	} u;
};

/* Asked before a 0xAA frame is taken: return false to reject it (it does
 * not answer the pending request), and the reframer drops one byte and
 * rescans. NULL accepts every frame whose namespace is plausible (0..5,
 * 0xFF); with a hook, the hook alone decides. */
typedef bool (*bl_reframer_accept_fn)(void *ud, const struct bl_packet *p);
/* Called for each complete frame. */
typedef void (*bl_reframer_frame_fn)(void *ud, const struct bl_frame *f);

#define BL_REFRAMER_BUF 32

struct bl_reframer {
	uint8_t buf[BL_REFRAMER_BUF];
	size_t len;
	uint64_t dropped;        /* bytes skipped while resynchronising */
	uint64_t packets;        /* 0xAA frames delivered */
	uint64_t streams;        /* 0xAF frames delivered */
	bl_reframer_accept_fn accept;
	bl_reframer_frame_fn on_frame;
	void *ud;
};

void bl_reframer_init(struct bl_reframer *r, bl_reframer_frame_fn on_frame,
                      bl_reframer_accept_fn accept, void *ud);
/* Feed bytes in any chunking; complete frames are delivered through
 * on_frame in order. Never reads or writes out of bounds. */
void bl_reframer_feed(struct bl_reframer *r, const uint8_t *data, size_t n);
/* Forget buffered bytes (counted as dropped), e.g. after a timeout. */
void bl_reframer_reset(struct bl_reframer *r);
/* Bytes waiting for the rest of a frame. */
size_t bl_reframer_pending(const struct bl_reframer *r);

/* True if a namespace byte is one a device ever answers with (0..5, 0xFF). */
bool bl_ns_plausible(uint8_t ns);

#endif
