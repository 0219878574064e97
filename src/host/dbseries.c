/* dbseries.c - the number that stands for a cell of a run in
 * batlab.sample_data (db.h): the first 8 bytes of the MD5 digest of
 * "RUN_ID\nCELL", big-endian, as a signed 64-bit integer. The database
 * computes the same with batlab.series(run_id, cell) (md5() in SQL), so
 * rows spooled while it was away, samples of older spools and the join
 * of the samples view all agree without asking the server. MD5 here is a
 * label, not a protection: nothing secret is hashed.
 *
 * MD5 as RFC 1321 defines it; its 64 additive constants are the integer
 * parts of 2^32 |sin(i)|, i = 1..64, computed once. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/db.h"

static const unsigned char SHIFT[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void block(uint32_t h[4], const unsigned char *p, const uint32_t k[64])
{
	uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3];

	for (int i = 0; i < 16; i++)
		m[i] = le32(p + 4 * i);
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g, r = i / 16;
		switch (r) {
		case 0: f = (b & c) | (~b & d); g = i; break;
		case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
		case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
		default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
		}
		f += a + k[i] + m[g];
		a = d;
		d = c;
		c = b;
		b += rotl(f, SHIFT[r][i % 4]);
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

void bl_md5(const void *data, size_t n, unsigned char out[16])
{
	static uint32_t k[64];
	uint32_t h[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
	const unsigned char *p = data;
	unsigned char tail[128];
	size_t rest, tn;
	uint64_t bits = (uint64_t)n * 8;

	if (!k[0])
		for (int i = 0; i < 64; i++)
			k[i] = (uint32_t)floor(fabs(sin(i + 1.0)) * 4294967296.0);
	for (; n >= 64; n -= 64, p += 64)
		block(h, p, k);
	/* the last bytes, a 1 bit, zeros, and the length in bits */
	rest = n;
	memcpy(tail, p, rest);
	tail[rest] = 0x80;
	tn = rest + 1 + 8 <= 64 ? 64 : 128;
	memset(tail + rest + 1, 0, tn - rest - 1);
	for (int i = 0; i < 8; i++)
		tail[tn - 8 + i] = (unsigned char)(bits >> (8 * i));
	for (size_t off = 0; off < tn; off += 64)
		block(h, tail + off, k);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (unsigned char)(h[i] >> (8 * j));
}

int64_t bl_db_series(const char *run_id, const char *cell)
{
	unsigned char small[512], md[16], *buf = small;
	size_t rn = strlen(run_id), cn = strlen(cell);
	uint64_t v = 0;

	if (rn + 1 + cn > sizeof small && !(buf = malloc(rn + 1 + cn)))
		return 0;
	memcpy(buf, run_id, rn);
	buf[rn] = '\n';
	memcpy(buf + rn + 1, cell, cn);
	bl_md5(buf, rn + 1 + cn, md);
	if (buf != small)
		free(buf);
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return (int64_t)v;
}
