/* engine.c - the Lua state: its initialisation, output, protected calls
 * and running code. Finding lua/ is engine_luadir.c, the procedure
 * sandbox engine_sandbox.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "lua/engine.h"
#include "lua/engine_parts.h"
#include "lua/lua_util.h"

/* Debian puts Lua C modules (cjson.so, lfs.so) in the multiarch directory;
 * a liblua built elsewhere may not search it. */
#if defined(__x86_64__)
#define BL_MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define BL_MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define BL_MULTIARCH "i386-linux-gnu"
#elif defined(__arm__)
#define BL_MULTIARCH "arm-linux-gnueabihf"
#endif

/* Registry key (its address): light userdata, the engine. */
static const char engine_key = 0;

/* ---- Output ------------------------------------------------------------ */

void bl_engine_write(struct bl_engine *e, const char *text, size_t len)
{
	if (e->output) {
		e->output(e->output_ud, text, len);
		return;
	}
	/* The one place engine output meets stdio; flushed like Lua's own
	 * print so that it interleaves sanely with stderr. */
	fwrite(text, 1, len, stdout);
	fflush(stdout);
}

/* print(...): lua's print, but one write per call through the engine. */
static int l_engine_print(lua_State *L)
{
	struct bl_engine *e = lua_touserdata(L, lua_upvalueindex(1));
	int n = lua_gettop(L);
	luaL_Buffer b;
	const char *s;
	size_t len;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_addchar(&b, '\n');
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	bl_engine_write(e, s, len);
	return 0;
}

void bl_engine_push_print(lua_State *L, struct bl_engine *e)
{
	lua_pushlightuserdata(L, e);
	lua_pushcclosure(L, l_engine_print, 1);
}

/* ---- Protected calls ----------------------------------------------------- */

/* The error as a string plus a traceback. */
static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL) {
		/* Not a string: use its __tostring if it has one (lua.c). */
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int bl_engine_pcall(struct bl_engine *e, int nargs, int nres)
{
	lua_State *L = e->L;
	int base = lua_gettop(L) - nargs;
	int st;

	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	st = lua_pcall(L, nargs, nres, base);
	lua_remove(L, base);
	return st;
}

/* ---- Initialisation -------------------------------------------------------- */

/* Keep only the absolute templates of the search path on top of the
 * stack ("./?.lua", "?.so", "lib/?.lua" go): a module file in the working
 * directory must never be loaded in batlab's place (a planted lfs.lua in
 * the folder a test runs from). Replaces the string. */
static void absolute_only(lua_State *L)
{
	const char *p = lua_tostring(L, -1);
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	while (p && *p) {
		size_t n = strcspn(p, ";");

		if (n > 0 && p[0] == '/') {
			if (luaL_bufflen(&b) > 0)
				luaL_addchar(&b, ';');
			luaL_addlstring(&b, p, n);
		}
		p += n + (p[n] == ';');
	}
	luaL_pushresult(&b);
	lua_remove(L, -2);
}

/* Prepend luadir to package.path; make sure package.cpath reaches the
 * system's Lua C modules; nothing relative to the working directory. */
static void set_paths(lua_State *L, const char *luadir)
{
	const char *cpath;

	lua_getglobal(L, "package");
	lua_getfield(L, -1, "path");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", luadir, luadir, lua_tostring(L, -1));
	absolute_only(L);
	lua_setfield(L, -3, "path");
	lua_pop(L, 1);

	lua_getfield(L, -1, "cpath");
	cpath = lua_tostring(L, -1);
#ifdef BL_MULTIARCH
	if (!cpath || !strstr(cpath, "/usr/lib/" BL_MULTIARCH "/lua/5.4/?.so")) {
		lua_pushfstring(L, "%s;/usr/lib/" BL_MULTIARCH "/lua/5.4/?.so", cpath ? cpath : "");
		lua_remove(L, -2);
	}
#else
	(void)cpath;
#endif
	absolute_only(L);
	lua_setfield(L, -2, "cpath");
	lua_pop(L, 1);
}

/* Everything that can fail runs here, under lua_pcall (lua.c's pmain). */
static int engine_init(lua_State *L)
{
	struct bl_engine *e = lua_touserdata(L, 1);

	luaL_checkversion(L);
	lua_gc(L, LUA_GCGEN, 0, 0);
	luaL_openlibs(L);

	lua_pushlightuserdata(L, e);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &engine_key);
	bl_lua_set_clock(L, e->clock);

	bl_engine_push_print(L, e);
	lua_setglobal(L, "print");

	/* Seeded so that two runs with the same options are the same run. */
	lua_getglobal(L, "math");
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, (lua_Integer)e->seed);
	lua_call(L, 1, 0);
	lua_pop(L, 1);

	e->luadir = bl_engine_find_luadir(lua_tostring(L, 2), e->argv0);
	if (!e->luadir)
		return luaL_error(L, "out of memory");
	set_paths(L, e->luadir);

	luaL_requiref(L, "batlab", luaopen_batlab, 1);
	lua_pop(L, 1);
	/* The seed library's interface (batlab.Settings, batlab.Logger,
	 * Channel:start_test ...) is Lua, in lua/batlab/seed.lua; the engine
	 * puts it in place (the module patches nothing itself). An engine
	 * without its lua/ directory still starts; a broken seed.lua fails. */
	if (luaL_dostring(L, "if package.searchpath('batlab.seed', package.path) then "
	                     "local seed, batlab = require 'batlab.seed', require 'batlab' "
	                     "for k, v in pairs(seed.exports) do batlab[k] = v end "
	                     "batlab.extend_channel(seed.channel_methods, seed.channel_fields) "
	                     "batlab.extend_device(seed.device_fields) "
	                     "end") != LUA_OK)
		return lua_error(L);

	bl_engine_build_sandbox(L, e);
	return 0;
}

/* An error outside any protected call (luaL_newstate's panic). */
static int panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);

	BL_ERROR("engine", "unprotected error in Lua: %s", msg ? msg : "(not a string)");
	return 0;
}

struct bl_engine *bl_engine_new(const struct bl_engine_opts *opts)
{
	static const struct bl_engine_opts defaults;
	struct bl_engine *e;
	int st;

	if (!opts)
		opts = &defaults;
	e = calloc(1, sizeof *e);
	if (!e) {
		BL_ERROR("engine", "out of memory");
		return NULL;
	}
	e->clock = opts->clock ? opts->clock : bl_clock_real();
	e->output = opts->output;
	e->output_ud = opts->output_ud;
	e->seed = opts->seed;
	e->argv0 = opts->argv0;
	e->mem_limit = bl_engine_memory_pick(opts->memory_mb);
	e->L = lua_newstate(bl_engine_alloc, e);
	if (e->L)
		lua_atpanic(e->L, panic);
	if (!e->L) {
		BL_ERROR("engine", "cannot create the Lua state: out of memory");
		free(e);
		return NULL;
	}
	lua_pushcfunction(e->L, engine_init);
	lua_pushlightuserdata(e->L, e);
	if (opts->luadir)
		lua_pushstring(e->L, opts->luadir);
	else
		lua_pushnil(e->L);
	st = bl_engine_pcall(e, 2, 0);
	e->argv0 = NULL;
	if (st != LUA_OK) {
		BL_ERROR("engine", "cannot initialise Lua: %s", lua_tostring(e->L, -1));
		bl_engine_free(e);
		return NULL;
	}
	return e;
}

void bl_engine_free(struct bl_engine *e)
{
	if (!e)
		return;
	if (e->L)
		lua_close(e->L);
	free(e->luadir);
	free(e);
}

lua_State *bl_engine_state(struct bl_engine *e)
{
	return e->L;
}

struct bl_engine *bl_engine_from_state(lua_State *L)
{
	struct bl_engine *e;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &engine_key);
	e = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return e;
}

void bl_engine_set_clock(struct bl_engine *e, const struct bl_clock *clock)
{
	e->clock = clock ? clock : bl_clock_real();
	bl_lua_set_clock(e->L, e->clock);
}

const struct bl_clock *bl_engine_clock(const struct bl_engine *e)
{
	return e->clock;
}

const char *bl_engine_luadir(const struct bl_engine *e)
{
	return e->luadir;
}

/* ---- Running code ------------------------------------------------------------ */

struct script_args {
	const char *script;
	int argc;
	char **argv;
};

/* Set the global arg and push argv (runs protected: it allocates). */
static int push_args(lua_State *L)
{
	const struct script_args *a = lua_touserdata(L, 1);

	lua_createtable(L, a->argc > 0 ? a->argc : 0, 1);
	if (a->script) {
		lua_pushstring(L, a->script);
		lua_rawseti(L, -2, 0);
	}
	for (int i = 0; i < a->argc; i++) {
		lua_pushstring(L, a->argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setglobal(L, "arg");
	luaL_checkstack(L, a->argc, "too many arguments to the script");
	for (int i = 0; i < a->argc; i++)
		lua_pushstring(L, a->argv[i]);
	return a->argc;
}

int bl_engine_set_arg(struct bl_engine *e, const char *script, int argc, char **argv)
{
	struct script_args a = {script, argc, argv};

	lua_pushcfunction(e->L, push_args);
	lua_pushlightuserdata(e->L, &a);
	return lua_pcall(e->L, 1, 0, 0);
}

int bl_engine_dofile(struct bl_engine *e, const char *path, int argc, char **argv)
{
	lua_State *L = e->L;
	struct script_args a = {path, argc > 0 ? argc : 0, argv};
	int st;

	st = luaL_loadfile(L, strcmp(path, "-") == 0 ? NULL : path);
	if (st != LUA_OK)
		return st;
	lua_pushcfunction(L, push_args);
	lua_pushlightuserdata(L, &a);
	st = lua_pcall(L, 1, a.argc, 0);
	if (st != LUA_OK) {
		lua_remove(L, -2);  /* the chunk */
		return st;
	}
	return bl_engine_pcall(e, a.argc, 0);
}

int bl_engine_dostring(struct bl_engine *e, const char *chunk, const char *name)
{
	lua_State *L = e->L;
	int st;

	st = luaL_loadbuffer(L, chunk, strlen(chunk), name ? name : "=(command line)");
	if (st != LUA_OK)
		return st;
	return bl_engine_pcall(e, 0, 0);
}
