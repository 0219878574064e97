/* test_proto.c - packet codecs and the reframer. */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/proto.h"
#include "core/regs.h"
#include "tap.h"

/* ---- codecs ------------------------------------------------------------ */

static int bytes_eq(const uint8_t *a, const uint8_t *b, size_t n) { return memcmp(a, b, n) == 0; }

/* Field-wise: the structs have padding, so memcmp would compare garbage. */
static int packet_eq(const struct bl_packet *a, const struct bl_packet *b)
{
	return a->ns == b->ns && a->addr == b->addr && a->write == b->write && a->value == b->value;
}

static int stream_eq(const struct bl_stream *a, const struct bl_stream *b)
{
	return a->cell == b->cell && a->mode == b->mode && a->status == b->status &&
	       a->temperature == b->temperature && a->current == b->current && a->voltage == b->voltage;
}

static void test_packets(void)
{
	uint8_t out[BL_PKT_LEN];
	struct bl_packet p, q;

	p = bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER);
	bl_packet_encode(&p, out);
	ok(bytes_eq(out, (const uint8_t[]){0xAA, 0x04, 0x02, 0x00, 0x00}, 5), "read UNIT FIRMWARE_VER is AA 04 02 00 00");
	p = bl_packet_write(BL_NS_CELL0, BL_CELL_MODE, BL_MODE_CHARGE);
	bl_packet_encode(&p, out);
	ok(bytes_eq(out, (const uint8_t[]){0xAA, 0x00, 0x80, 0x03, 0x00}, 5), "write CELL0 MODE=CHARGE is AA 00 80 03 00");
	p = bl_packet_write(BL_NS_CELL3, BL_CELL_CURRENT_SETPOINT, 0x1234);
	bl_packet_encode(&p, out);
	ok(bytes_eq(out, (const uint8_t[]){0xAA, 0x03, 0x83, 0x34, 0x12}, 5), "values are little-endian");
	p = bl_packet_write(BL_NS_COMMS, 0xFF, 0);
	bl_packet_encode(&p, out);
	is_int(out[2], 0xFF, "address 0x7F with the write flag is 0xFF");

	ok(bl_packet_decode((const uint8_t[]){0xAA, 0x00, 0x80, 0x00, 0x00}, &q) == BL_OK &&
	   q.write && q.addr == 0 && q.ns == 0 && q.value == 0, "write echo decodes: write flag, success 0");
	ok(bl_packet_decode((const uint8_t[]){0xAA, 0x04, 0x82, 0x01, 0x01}, &q) == BL_OK &&
	   q.write && q.addr == 2 && q.value == BL_COMMAND_ERROR, "refused write decodes to 257");
	ok(bl_packet_decode((const uint8_t[]){0xAA, 0x05, 0x01, 0x01, 0x01}, &q) == BL_OK &&
	   !q.write && q.ns == 5 && q.addr == 1 && q.value == 257, "namespace-5 probe answer 257 (application runs)");
	ok(bl_packet_decode((const uint8_t[]){0xAA, 0x01, 0x07, 0x9F, 0x77}, &q) == BL_OK &&
	   q.value == 0x779F && !q.write, "read response value");
	is_int(bl_packet_decode((const uint8_t[]){0xAF, 0x01, 0x07, 0x9F, 0x77}, &q), BL_ERR_PROTO, "wrong start byte");

	struct bl_packet req = bl_packet_write(2, BL_CELL_MODE, 3);
	struct bl_packet echo = {.ns = 2, .addr = BL_CELL_MODE, .write = true, .value = 0};
	ok(bl_packet_answers(&req, &echo), "a write echo answers its write");
	echo.write = false;
	ok(!bl_packet_answers(&req, &echo), "a read response does not answer a write");
	echo.write = true;
	echo.ns = 3;
	ok(!bl_packet_answers(&req, &echo), "another namespace does not answer");

	for (unsigned ns = 0; ns < 256; ns++) {
		int want = ns <= 5 || ns == 0xFF;
		if (bl_ns_plausible((uint8_t)ns) != want) {
			ok(0, "plausible namespace %u", ns);
			return;
		}
	}
	ok(1, "plausible namespaces are exactly 0..5 and 0xFF");
}

static void test_streams(void)
{
	struct bl_stream s = {.cell = 2, .mode = BL_MODE_DISCHARGE, .status = 0x0102,
	                      .temperature = 28494, .current = 16000, .voltage = (uint16_t)-5};
	struct bl_stream t;
	uint8_t out[BL_STREAM_LEN];

	bl_stream_encode(&s, out);
	ok(bytes_eq(out, (const uint8_t[]){0xAF, 0x02, 0x00, 0x04, 0x00, 0x02, 0x01, 0x4E, 0x6F,
	                                   0x80, 0x3E, 0xFB, 0xFF}, 13), "stream layout: AF cell 00 mode status temp current voltage");
	ok(bl_stream_decode(out, &t) == BL_OK && stream_eq(&s, &t), "stream round trip");
	out[1] = 4;
	is_int(bl_stream_decode(out, &t), BL_ERR_PROTO, "cell 4 is refused");
	out[1] = 2;
	out[2] = 1;
	is_int(bl_stream_decode(out, &t), BL_ERR_PROTO, "type byte other than 0 is refused");
}

/* ---- reframer ----------------------------------------------------------- */

#define MAXF 256

struct collect {
	struct bl_frame f[MAXF];
	int n;
	/* accept hook: expected (ns, address byte) or -1 for anything */
	int want_ns, want_addr;
};

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct collect *c = ud;
	if (c->n < MAXF)
		c->f[c->n] = *f;
	c->n++;
}

static bool accept_pending(void *ud, const struct bl_packet *p)
{
	struct collect *c = ud;
	return c->want_ns < 0 ||
	       (p->ns == c->want_ns && (p->addr | (p->write ? 0x80 : 0)) == c->want_addr);
}

/* A fresh reframer delivering into c; with want_ns >= 0 it accepts only
 * the reply to that pending request (namespace, address byte). */
static void start(struct bl_reframer *r, struct collect *c, int want_ns, int want_addr)
{
	memset(c, 0, sizeof *c);
	c->want_ns = want_ns;
	c->want_addr = want_addr;
	bl_reframer_init(r, on_frame, want_ns < 0 ? NULL : accept_pending, c);
}

static size_t build(uint8_t *buf, const struct bl_packet *p1, const struct bl_stream *s, const struct bl_packet *p2)
{
	size_t n = 0;
	bl_packet_encode(p1, buf);
	n += 5;
	bl_stream_encode(s, buf + n);
	n += 13;
	bl_packet_encode(p2, buf + n);
	n += 5;
	return n;
}

static int frames_match(const struct collect *c, const struct bl_packet *p1,
                        const struct bl_stream *s, const struct bl_packet *p2)
{
	return c->n == 3 && c->f[0].kind == BL_FRAME_PACKET && packet_eq(&c->f[0].u.packet, p1) &&
	       c->f[1].kind == BL_FRAME_STREAM && stream_eq(&c->f[1].u.stream, s) &&
	       c->f[2].kind == BL_FRAME_PACKET && packet_eq(&c->f[2].u.packet, p2);
}

static void test_reframer_splits(void)
{
	/* data bytes that look like start bytes: 0xAA and 0xAF everywhere */
	struct bl_packet p1 = {.ns = 0, .addr = 7, .write = false, .value = 0xAFAA};
	struct bl_stream s = {.cell = 1, .mode = 0xAA, .status = 0xAFAF, .temperature = 0xAAAA,
	                      .current = 0x00AF, .voltage = 0xAA00};
	struct bl_packet p2 = {.ns = 4, .addr = 0x2F, .write = true, .value = 0xAAAF};
	uint8_t buf[64];
	size_t n = build(buf, &p1, &s, &p2);
	struct bl_reframer r;
	static struct collect c;
	int bad_split = -1, bad_drop = -1;

	for (size_t split = 0; split <= n; split++) {
		start(&r, &c, -1, 0);
		bl_reframer_feed(&r, buf, split);
		bl_reframer_feed(&r, buf + split, n - split);
		if (!frames_match(&c, &p1, &s, &p2) && bad_split < 0)
			bad_split = (int)split;
		if (r.dropped != 0 && bad_drop < 0)
			bad_drop = (int)split;
	}
	is_int(bad_split, -1, "every split point of packet+stream+packet (0xAA/0xAF in data) gives the 3 frames");
	is_int(bad_drop, -1, "and drops nothing");

	/* every pair of split points (three chunks) */
	int bad2 = 0;
	for (size_t a = 0; a <= n; a++)
		for (size_t b = a; b <= n; b++) {
			start(&r, &c, -1, 0);
			bl_reframer_feed(&r, buf, a);
			bl_reframer_feed(&r, buf + a, b - a);
			bl_reframer_feed(&r, buf + b, n - b);
			bad2 += !frames_match(&c, &p1, &s, &p2);
		}
	is_int(bad2, 0, "every pair of split points gives the 3 frames");

	/* one byte at a time */
	start(&r, &c, -1, 0);
	for (size_t i = 0; i < n; i++)
		bl_reframer_feed(&r, buf + i, 1);
	ok(frames_match(&c, &p1, &s, &p2), "byte-by-byte feed gives the 3 frames");
	is_int((long long)r.packets, 2, "two packets counted");
	is_int((long long)r.streams, 1, "one stream counted");
	is_int((long long)bl_reframer_pending(&r), 0, "nothing left over");
}

static void test_reframer_back_to_back(void)
{
	struct bl_reframer r;
	static struct collect c;

	/* 50 frames in one feed */
	uint8_t many[50 * 13];
	size_t m = 0;
	for (int i = 0; i < 50; i++) {
		if (i % 2) {
			struct bl_stream si = {.cell = (uint8_t)(i % 4), .voltage = (uint16_t)i};
			bl_stream_encode(&si, many + m);
			m += 13;
		} else {
			struct bl_packet pi = bl_packet_read((uint8_t)(i % 5), (uint8_t)i);
			bl_packet_encode(&pi, many + m);
			m += 5;
		}
	}
	start(&r, &c, -1, 0);
	bl_reframer_feed(&r, many, m);
	int order_ok = c.n == 50;
	for (int i = 0; i < 50 && order_ok; i++)
		order_ok = (i % 2) ? (c.f[i].kind == BL_FRAME_STREAM && c.f[i].u.stream.voltage == i)
		                   : (c.f[i].kind == BL_FRAME_PACKET && c.f[i].u.packet.addr == i);
	ok(order_ok, "50 back-to-back frames come out in order");
}

static void test_reframer_garbage(void)
{
	struct bl_reframer r;
	static struct collect c;
	struct bl_packet p = bl_packet_write(1, BL_CELL_MODE, 0);
	uint8_t buf[64];

	/* garbage prefix: bytes that cannot start a frame */
	const uint8_t junk[] = {0x00, 0x13, 0xFF, 0x55, 0x80, 0xAB};
	memcpy(buf, junk, sizeof junk);
	bl_packet_encode(&p, buf + sizeof junk);
	start(&r, &c, -1, 0);
	bl_reframer_feed(&r, buf, sizeof junk + 5);
	ok(c.n == 1 && c.f[0].kind == BL_FRAME_PACKET && c.f[0].u.packet.write, "garbage prefix skipped, packet found");
	is_int((long long)r.dropped, (long long)sizeof junk, "the garbage bytes are counted as dropped");

	/* start bytes followed by impossible second bytes are skipped */
	const uint8_t fake[] = {0xAA, 0x10, 0xAF, 0x07, 0xAF, 0x01, 0x05};
	memcpy(buf, fake, sizeof fake);
	bl_packet_encode(&p, buf + sizeof fake);
	start(&r, &c, -1, 0);
	bl_reframer_feed(&r, buf, sizeof fake + 5);
	ok(c.n == 1 && c.f[0].kind == BL_FRAME_PACKET, "AA with a bad namespace and AF with a bad cell/type are skipped");
	is_int((long long)r.dropped, (long long)sizeof fake, "all %zu bytes dropped", sizeof fake);
}

static void test_reframer_truncated(void)
{
	struct bl_reframer r;
	static struct collect c;
	uint8_t buf[64];

	/* truncated frame: the reply lost 3 bytes, then the real answer comes.
	 * With the pending-request check, the stale head is rejected and the
	 * stream resynchronises on the right frame. */
	struct bl_packet want = bl_packet_read(4, BL_UNIT_VCC);
	want.value = 26844;
	buf[0] = 0xAA;
	buf[1] = 0x04;
	bl_packet_encode(&want, buf + 2);
	start(&r, &c, 4, BL_UNIT_VCC);
	bl_reframer_feed(&r, buf, 7);
	ok(c.n == 1 && c.f[0].u.packet.value == 26844, "truncated frame + full reply: the reply is recovered");
	is_int((long long)r.dropped, 2, "the two stale bytes are dropped");

	/* truncated stream followed by a packet */
	struct bl_stream s = {.cell = 0, .mode = 3, .voltage = 30000};
	uint8_t st[13];
	bl_stream_encode(&s, st);
	memcpy(buf, st, 6);
	struct bl_packet ans = bl_packet_read(0, BL_CELL_CURRENT);
	ans.value = 16000;
	bl_packet_encode(&ans, buf + 6);
	bl_stream_encode(&s, buf + 11);
	bl_stream_encode(&s, buf + 24);
	start(&r, &c, 0, BL_CELL_CURRENT);
	bl_reframer_feed(&r, buf, 37);
	/* With no checksum the half stream swallows the packet and the head of
	 * the next stream as its own; what matters is that framing is regained
	 * for the stream after that. */
	ok(c.n >= 1 && c.f[c.n - 1].kind == BL_FRAME_STREAM && c.f[c.n - 1].u.stream.voltage == 30000,
	   "after a truncated stream, framing is regained (%d frames)", c.n);
}

static void test_reframer_resync_partial(void)
{
	struct bl_reframer r;
	static struct collect c;
	uint8_t buf[5];

	/* the resync answer AA AA AA 01 01 is never taken as a reply */
	const uint8_t resync[] = {0xAA, 0xAA, 0xAA, 0x01, 0x01};
	start(&r, &c, 0, BL_CELL_MODE);
	bl_reframer_feed(&r, resync, sizeof resync);
	struct bl_packet mode = bl_packet_read(0, BL_CELL_MODE);
	mode.value = 2;
	bl_packet_encode(&mode, buf);
	bl_reframer_feed(&r, buf, 5);
	ok(c.n == 1 && c.f[0].u.packet.value == 2, "AA AA AA 01 01 is ignored, the real reply accepted");

	/* a partial frame waits; reset forgets it */
	start(&r, &c, -1, 0);
	bl_reframer_feed(&r, (const uint8_t[]){0xAA, 0x04, 0x02}, 3);
	is_int((long long)bl_reframer_pending(&r), 3, "partial frame waits for more bytes");
	is_int(c.n, 0, "no frame yet");
	bl_reframer_reset(&r);
	is_int((long long)bl_reframer_pending(&r), 0, "reset clears it");
	is_int((long long)r.dropped, 3, "and counts the bytes as dropped");
}

/* Random bytes in random chunks: no crash, no out-of-bounds access (the
 * sanitizer build checks), and every frame delivered is well formed. */
static void test_reframer_random(void)
{
	struct bl_reframer r;
	static struct collect c;
	uint32_t x = 12345;
	uint8_t chunk[97];
	long malformed = 0;
	size_t total = 0;

	start(&r, &c, -1, 0);
	for (int round = 0; round < 20000; round++) {
		size_t len;
		x = x * 1103515245u + 12345u;
		len = (x >> 16) % sizeof chunk;
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			/* bias towards start bytes so frames do occur */
			uint8_t b = (uint8_t)(x >> 24);
			chunk[i] = (b & 7) == 0 ? 0xAA : (b & 7) == 1 ? 0xAF : (b & 7) == 2 ? 0 : b;
		}
		int before = c.n;
		bl_reframer_feed(&r, chunk, len);
		total += len;
		for (int i = before; i < c.n && i < MAXF; i++) {
			if (c.f[i].kind == BL_FRAME_PACKET && !bl_ns_plausible(c.f[i].u.packet.ns))
				malformed++;
			if (c.f[i].kind == BL_FRAME_STREAM && c.f[i].u.stream.cell > 3)
				malformed++;
		}
		if (c.n >= MAXF)
			c.n = 0;
		if (bl_reframer_pending(&r) >= BL_STREAM_LEN)
			malformed++;
	}
	is_int(malformed, 0, "random input (%zu bytes) yields only well-formed frames", total);
	ok(r.dropped + 5 * r.packets + 13 * r.streams + bl_reframer_pending(&r) == total,
	   "every byte is accounted for: dropped + framed + pending");
}

static bool frame_eq(const struct bl_frame *a, const struct bl_frame *b)
{
	if (a->kind != b->kind)
		return false;
	return a->kind == BL_FRAME_PACKET ? packet_eq(&a->u.packet, &b->u.packet)
	                                  : stream_eq(&a->u.stream, &b->u.stream);
}

/* Chunking never changes what comes out: the same bytes fed one at a time
 * and in random chunks (whole reads go through the reframer without being
 * buffered) give the same frames, drops and leftovers, with and without
 * an accept hook. */
static void test_reframer_chunking(void)
{
	static uint8_t in[2400];
	static struct collect one, many;
	struct bl_reframer r1, r2;
	uint32_t x = 777;
	size_t n = 0;

	while (n + 13 <= sizeof in) {
		x = x * 1103515245u + 12345u;
		switch ((x >> 16) % 4) {
		case 0: /* the reply the hook waits for, and others */
			bl_packet_encode(&(struct bl_packet){.ns = (uint8_t)((x >> 20) % 2), .addr = 7,
			                                     .value = (uint16_t)x}, in + n);
			n += BL_PKT_LEN;
			break;
		case 1: {
			struct bl_stream s = {.cell = (uint8_t)((x >> 22) % 4), .voltage = (uint16_t)(x >> 8)};
			bl_stream_encode(&s, in + n);
			n += (x >> 24) % 3 ? BL_STREAM_LEN : 4; /* some cut short */
			break;
		}
		default: { /* noise, biased to start bytes */
			uint8_t b = (uint8_t)(x >> 24);
			in[n++] = (b & 3) == 0 ? 0xAA : (b & 3) == 1 ? 0xAF : (b & 3) == 2 ? 0 : b;
			break;
		}
		}
	}
	for (int hook = 0; hook < 2; hook++) {
		int same = 1;
		start(&r1, &one, hook ? 0 : -1, 7);
		start(&r2, &many, hook ? 0 : -1, 7);
		for (size_t i = 0; i < n; i++)
			bl_reframer_feed(&r1, in + i, 1);
		for (size_t i = 0; i < n;) {
			size_t k;
			x = x * 1103515245u + 12345u;
			k = 1 + (x >> 16) % 40;
			if (k > n - i)
				k = n - i;
			bl_reframer_feed(&r2, in + i, k);
			i += k;
		}
		same = one.n == many.n && one.n > 100 && one.n < MAXF;
		for (int i = 0; same && i < one.n; i++)
			same = frame_eq(&one.f[i], &many.f[i]);
		ok(same, "%s: the same %d frames byte by byte and in random chunks",
		   hook ? "accept hook" : "no hook", one.n);
		ok(r1.dropped == r2.dropped && r1.dropped > 0 && r1.packets == r2.packets &&
		   r1.streams == r2.streams && bl_reframer_pending(&r1) == bl_reframer_pending(&r2),
		   "%s: the same drops (%llu), counts and leftovers", hook ? "accept hook" : "no hook",
		   (unsigned long long)r1.dropped);
	}
}

int main(void)
{
	plan_lazy();
	test_packets();
	test_streams();
	test_reframer_splits();
	test_reframer_back_to_back();
	test_reframer_garbage();
	test_reframer_truncated();
	test_reframer_resync_partial();
	test_reframer_random();
	test_reframer_chunking();
	return done_testing();
}
