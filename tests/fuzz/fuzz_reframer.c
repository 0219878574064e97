/* fuzz_reframer.c - libFuzzer target for the reframer.
 *
 * The input is split into chunks by its own bytes (so the fuzzer explores
 * chunking too) and fed twice: once accepting every plausible reply, once
 * with a pending-request check that rejects most. Invariants checked:
 * frames are well formed, every byte is accounted for, and the buffer never
 * holds a whole frame's worth of undelivered bytes.
 */
#include <stdlib.h>

#include "core/proto.h"

static bool accept_some(void *ud, const struct bl_packet *p)
{
	(void)ud;
	return p->ns == 4 && p->addr == 2 && !p->write;
}

static void check_frame(void *ud, const struct bl_frame *f)
{
	(void)ud;
	if (f->kind == BL_FRAME_PACKET && !bl_ns_plausible(f->u.packet.ns))
		abort();
	if (f->kind == BL_FRAME_STREAM && f->u.stream.cell > 3)
		abort();
	if (f->kind != BL_FRAME_PACKET && f->kind != BL_FRAME_STREAM)
		abort();
}

static void run(const uint8_t *data, size_t size, bl_reframer_accept_fn accept)
{
	struct bl_reframer r;
	size_t pos = 0;

	bl_reframer_init(&r, check_frame, accept, NULL);
	while (pos < size) {
		size_t len = 1 + data[pos] % 17;
		if (len > size - pos)
			len = size - pos;
		bl_reframer_feed(&r, data + pos, len);
		pos += len;
		if (bl_reframer_pending(&r) >= BL_STREAM_LEN)
			abort();
	}
	if (r.dropped + 5 * r.packets + 13 * r.streams + bl_reframer_pending(&r) != size)
		abort();
	bl_reframer_reset(&r);
	if (bl_reframer_pending(&r) != 0 || r.dropped + 5 * r.packets + 13 * r.streams != size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, NULL);
	run(data, size, accept_some);
	return 0;
}
