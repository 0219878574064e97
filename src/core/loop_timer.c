/* core/loop_timer.c - the loop's timers: a min-heap on (deadline, start
 * order), so that timers due at the same instant fire in the order they
 * were started, whatever the heap did with them.
 */
#include <string.h>

#include "core/bl.h"
#include "core/loop.h"
#include "core/loop_parts.h"

static bool timer_before(const struct bl_timer *a, const struct bl_timer *b)
{
	if (a->deadline_us != b->deadline_us)
		return a->deadline_us < b->deadline_us;
	return a->seq < b->seq;
}

static void heap_set(struct bl_loop *loop, size_t i, struct bl_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];
	size_t n = loop->nheap;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct bl_loop *loop, size_t i)
{
	struct bl_timer *t = loop->heap[i];
	struct bl_timer *last = loop->heap[--loop->nheap];

	t->heap_index = SIZE_MAX;
	if (i == loop->nheap)
		return;
	heap_set(loop, i, last);
	if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

static int heap_push(struct bl_loop *loop, struct bl_timer *t)
{
	int r = bl_loop_grow((void **)&loop->heap, &loop->capheap, loop->nheap + 1, sizeof *loop->heap);

	if (r < 0)
		return r;
	t->seq = loop->next_seq++;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, loop->nheap - 1);
	return BL_OK;
}

void bl_timer_init(struct bl_timer *t, bl_timer_fn fn, void *ud)
{
	memset(t, 0, sizeof *t);
	t->heap_index = SIZE_MAX;
	t->fn = fn;
	t->ud = ud;
}

bool bl_timer_active(const struct bl_timer *t)
{
	return t->heap_index != SIZE_MAX;
}

int bl_timer_start(struct bl_loop *loop, struct bl_timer *t, uint64_t deadline_us,
                   uint64_t period_us)
{
	if (!t->fn)
		return BL_ERR_ARG;
	bl_timer_stop(loop, t);
	t->deadline_us = deadline_us;
	t->period_us = period_us;
	return heap_push(loop, t);
}

int bl_timer_after(struct bl_loop *loop, struct bl_timer *t, uint64_t delay_us,
                   uint64_t period_us)
{
	uint64_t now = bl_loop_now(loop);
	uint64_t d = delay_us > BL_NEVER - now ? BL_NEVER : now + delay_us;

	return bl_timer_start(loop, t, d, period_us);
}

void bl_timer_stop(struct bl_loop *loop, struct bl_timer *t)
{
	size_t i = t->heap_index;

	if (i == SIZE_MAX || i >= loop->nheap || loop->heap[i] != t)
		return;
	heap_remove(loop, i);
}

/* Fire due timers. Timers (re)started during this pass get a seq at or
 * above `limit` and wait for the next step, so a callback that re-arms at
 * "now" cannot keep one step busy forever. */
int bl_loop_run_timers(struct bl_loop *loop, uint64_t now)
{
	uint64_t limit = loop->next_seq;
	int n = 0;

	while (loop->nheap > 0) {
		struct bl_timer *t = loop->heap[0];
		if (t->deadline_us > now || t->seq >= limit)
			break;
		heap_remove(loop, 0);
		if (t->period_us) {
			uint64_t d = t->deadline_us + t->period_us;
			/* Late in real time: skip the missed beats, no burst. */
			if (d <= now || d < t->deadline_us)
				d = now + t->period_us;
			t->deadline_us = d;
			/* Cannot fail: the heap just shrank by one. */
			heap_push(loop, t);
		}
		n++;
		t->fn(loop, t, t->ud); /* t may be freed from here on */
	}
	return n;
}
