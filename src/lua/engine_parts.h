/* lua/engine_parts.h - what the parts of the engine share; internal to
 * engine.c (the state, output, protected calls, running code),
 * engine_luadir.c (finding lua/) and engine_sandbox.c (the procedure
 * environment). Everything else uses lua/engine.h.
 */
#ifndef BL_ENGINE_PARTS_H
#define BL_ENGINE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "lua/engine.h"

struct bl_engine {
	lua_State *L;
	const struct bl_clock *clock;
	char *luadir;
	bl_engine_output_fn output;
	void *output_ud;
	uint64_t seed;
	const char *argv0;   /* only during bl_engine_new */
	size_t mem_used, mem_limit;  /* bytes; limit 0: none */
	uint64_t mem_refusals;       /* allocations refused over the limit */
	bool mem_reserve;            /* a task that ran out is being ended */
	void (*on_refusal)(void *ud); /* the scheduler's, at each refusal */
	void *refusal_ud;
};

/* engine_mem.c: the lua_Alloc of every engine (ud: the engine), and the
 * limit in bytes for opts->memory_mb (0: $BATLAB_MEMORY_MB or the
 * default). */
void *bl_engine_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
size_t bl_engine_memory_pick(size_t mb);

/* Push print(...) for engine e: lua's print, one write per call through
 * bl_engine_write. */
void bl_engine_push_print(lua_State *L, struct bl_engine *e);
/* Pick lua/ (see engine.h for the order); a malloc'd absolute path when it
 * exists, NULL when out of memory. */
char *bl_engine_find_luadir(const char *explicit, const char *argv0);
/* Build the whitelist every procedure environment reads (in the registry);
 * runs protected, inside the engine's initialisation. */
void bl_engine_build_sandbox(lua_State *L, struct bl_engine *e);

#endif
