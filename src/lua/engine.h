/* engine.h - the Lua engine: one lua_State with the batlab API loaded.
 *
 * The state is created and initialised in protected mode (lua.c's pmain):
 * the standard libraries, `batlab` (also a global), package.path with our
 * lua/ directory first, package.cpath able to find cjson and lfs (both
 * with only absolute templates: nothing is loaded relative to the working
 * directory), a memory limit (engine_mem.c), print
 * routed through the engine's output, math.random seeded from the options.
 *
 * Every call into Lua goes through a message handler that appends a
 * traceback. Functions that run Lua return a Lua status (LUA_OK, or
 * LUA_ERRSYNTAX, LUA_ERRFILE, LUA_ERRRUN, LUA_ERRMEM, LUA_ERRERR) and, on
 * failure, leave exactly one value on the stack: the message, a string
 * ("FILE:LINE: message" then "stack traceback:" for runtime errors). The
 * caller reports and pops it.
 *
 * Procedures (bl_engine_load_procedure) run in a sandbox: each gets a
 * fresh _ENV whose __index is a whitelist of the standard library plus
 * `batlab`; see docs/lua-api.md, "The procedure environment".
 *
 * lua/ is searched in this order (the first that holds a batlab/
 * directory wins; failing that, the first that exists; failing that,
 * BL_LUADIR): opts->luadir, $BATLAB_LUA_PATH, then around the binary -
 * <dir>/lua, <dir>/../../lua and <dir>/../share/batlab/lua, where <dir>
 * is first the directory of /proc/self/exe (the symlink target) and then
 * that of argv0 (the symlink's own directory) - then BL_LUADIR (set by the
 * Makefile to PREFIX/share/batlab/lua).
 */
#ifndef BL_ENGINE_H
#define BL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>  /* LUA_ERRFILE */

#include "core/clock.h"

struct bl_engine;

/* Where print() output goes: whole lines, newline included. */
typedef void (*bl_engine_output_fn)(void *ud, const char *text, size_t len);

struct bl_engine_opts {
	const struct bl_clock *clock;   /* batlab.now(); NULL: the real clock */
	const char *luadir;             /* NULL: search (see above) */
	const char *argv0;              /* how batlab was invoked; NULL: from /proc */
	bl_engine_output_fn output;     /* NULL: stdout, flushed per print */
	void *output_ud;
	uint64_t seed;                  /* math.randomseed; runs repeat */
	size_t memory_mb;               /* memory limit of the whole state, MB;
	                                   0: $BATLAB_MEMORY_MB, else
	                                   BL_ENGINE_MEMORY_MB */
};

/* The default memory limit of an engine, in MB. An allocation that would
 * go over the limit fails (after an emergency collection) with Lua's
 * "not enough memory"; the scheduler then ends the task that ran out. */
#define BL_ENGINE_MEMORY_MB 256

/* A new engine (opts may be NULL for the defaults), or NULL when the state
 * cannot be created or initialised (the reason is logged). */
struct bl_engine *bl_engine_new(const struct bl_engine_opts *opts);
/* Close the state (running __gc and __close) and free the engine. NULL ok. */
void bl_engine_free(struct bl_engine *e);

lua_State *bl_engine_state(struct bl_engine *e);
/* The engine that owns L (or one of its threads); NULL for a foreign state. */
struct bl_engine *bl_engine_from_state(lua_State *L);

/* Replace the clock batlab.now() reads (NULL: the real clock). The clock
 * must outlive the engine or be replaced first. */
void bl_engine_set_clock(struct bl_engine *e, const struct bl_clock *clock);
const struct bl_clock *bl_engine_clock(const struct bl_engine *e);
/* The lua/ directory put first in package.path (absolute when it exists). */
const char *bl_engine_luadir(const struct bl_engine *e);

/* Memory: the limit and what is in use (bytes), how many allocations were
 * refused so far; bl_engine_memory_reserve(e, true) lets allocations go a
 * little over the limit while a task that ran out is ended (the scheduler
 * does this), false withdraws it. */
size_t bl_engine_memory_limit(const struct bl_engine *e);
size_t bl_engine_memory_used(const struct bl_engine *e);
uint64_t bl_engine_memory_refusals(const struct bl_engine *e);
void bl_engine_memory_reserve(struct bl_engine *e, bool on);
/* fn(ud) at each refused allocation (NULL: none), from inside the
 * allocator: it may only note the fact (lua_sethook is fine). */
void bl_engine_on_memory_refusal(struct bl_engine *e, void (*fn)(void *ud), void *ud);

/* Write text through the engine's output (what print uses). */
void bl_engine_write(struct bl_engine *e, const char *text, size_t len);

/* lua_pcall of the function below the nargs arguments on top of the
 * stack, with a message handler that appends a traceback to the error. */
int bl_engine_pcall(struct bl_engine *e, int nargs, int nres);

/* Set the global `arg` like lua(1): arg[0] = script, arg[1..argc] = argv.
 * LUA_OK, or LUA_ERRMEM with the message pushed. */
int bl_engine_set_arg(struct bl_engine *e, const char *script, int argc, char **argv);
/* Run a file in the global environment (not sandboxed), with `arg` set and
 * argv passed as `...`. path "-" reads standard input. Results dropped. */
int bl_engine_dofile(struct bl_engine *e, const char *path, int argc, char **argv);
/* Run a chunk of text in the global environment; name is the chunk name
 * for messages (NULL: "=(command line)"). */
int bl_engine_dostring(struct bl_engine *e, const char *chunk, const char *name);

/* Load a procedure file (text only) into a fresh sandbox, run its main
 * chunk, and push what it returns, which must be a table or a function.
 * On failure pushes the message instead: "FILE:LINE: message" for syntax
 * errors, "cannot open FILE: ..." (LUA_ERRFILE), a traceback for errors
 * raised while it runs, "FILE: a procedure must return a table or a
 * function, got nil" (LUA_ERRRUN). */
int bl_engine_load_procedure(struct bl_engine *e, const char *path);

#endif
