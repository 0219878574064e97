/* engine_mem.c - the engine's allocator: a memory limit for the whole Lua
 * state, so that a procedure that grows a table without end fails its own
 * task ("not enough memory") instead of taking the machine (and every
 * other cell of the run) with it.
 *
 * Lua runs an emergency collection and retries before it reports an
 * allocation failure, so the limit counts live memory. While the
 * scheduler ends a task that ran out, a reserve above the limit lets the
 * ending (traceback, channels made safe, thread closed) allocate what it
 * needs; then the task's memory is garbage and the reserve is withdrawn.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/bl.h"
#include "lua/engine.h"
#include "lua/engine_parts.h"

#define MB ((size_t)1 << 20)

void *bl_engine_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct bl_engine *e = ud;
	size_t old = ptr ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		e->mem_used -= old;
		return NULL;
	}
	if (e->mem_limit && nsize > old) {
		size_t cap = e->mem_limit + (e->mem_reserve ? e->mem_limit / 16 + 4 * MB : 0);

		if (e->mem_used - old + nsize > cap) {
			e->mem_refusals++;
			if (e->on_refusal)
				e->on_refusal(e->refusal_ud);
			return NULL;
		}
	}
	p = realloc(ptr, nsize);
	if (p)
		e->mem_used = e->mem_used - old + nsize;
	return p;
}

/* opts->memory_mb, else $BATLAB_MEMORY_MB, else the default; in bytes. */
size_t bl_engine_memory_pick(size_t mb)
{
	const char *env = getenv("BATLAB_MEMORY_MB");

	if (mb == 0 && env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);

		if (*end == '\0' && v > 0)
			mb = (size_t)v;
		else
			BL_WARN("engine", "BATLAB_MEMORY_MB=%s is not a number of megabytes; using %d",
			        env, BL_ENGINE_MEMORY_MB);
	}
	if (mb == 0)
		mb = BL_ENGINE_MEMORY_MB;
	return mb > SIZE_MAX / MB ? SIZE_MAX : mb * MB;
}

size_t bl_engine_memory_limit(const struct bl_engine *e) { return e->mem_limit; }
size_t bl_engine_memory_used(const struct bl_engine *e) { return e->mem_used; }
uint64_t bl_engine_memory_refusals(const struct bl_engine *e) { return e->mem_refusals; }
void bl_engine_memory_reserve(struct bl_engine *e, bool on) { e->mem_reserve = on; }

void bl_engine_on_memory_refusal(struct bl_engine *e, void (*fn)(void *ud), void *ud)
{
	e->on_refusal = fn;
	e->refusal_ud = ud;
}
