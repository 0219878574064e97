/* lua/engine_sandbox.c - the environment a procedure runs in (see
 * docs/lua-api.md, "The procedure environment"): a fresh _ENV per
 * procedure whose __index is a whitelist of the standard library plus
 * `batlab`, with copies of the library tables, stubs that say why a
 * denied function is denied, and require/load/loadfile/dofile that keep
 * what they load inside the sandbox.
 */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/engine.h"
#include "lua/engine_parts.h"

/* Registry key (its address): the whitelist every sandbox reads. */
static const char sandbox_key = 0;

/* Globals a procedure sees as they are. */
static const char *const safe_globals[] = {
	"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
	"rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable",
	"tonumber", "tostring", "type", "xpcall", "collectgarbage", "_VERSION",
	NULL,
};

/* Libraries a procedure gets a copy of (so that patching one does not
 * reach the engine's own; sandbox_new copies them again per procedure). */
static const char *const safe_libs[] = {
	"string", "table", "math", "utf8", "coroutine", NULL,
};

/* Library tables copied into each procedure's environment. */
static const char *const sandbox_libs[] = {
	"string", "table", "math", "utf8", "coroutine", "os", "io", NULL,
};

/* What a procedure keeps of os and io: no wall clock (it would break
 * virtual time), no leaving the process, no child processes or stdin
 * (they would stall the event loop). Files are fine. */
static const char *const safe_os[] = {
	"getenv", "difftime", "remove", "rename", "tmpname", NULL,
};
static const char *const safe_io[] = {
	"open", "lines", "type", NULL,
};

struct denied {
	const char *lib, *name, *why;
};

static const struct denied denied[] = {
	{"os", "exit", "a procedure cannot end the program (return a verdict from run instead)"},
	{"os", "time", "a procedure has no wall clock: use batlab.now() (virtual time under the simulator)"},
	{"os", "clock", "a procedure has no CPU clock: use batlab.now() (virtual time under the simulator)"},
	{"os", "date", "a procedure has no wall clock: use batlab.now() (virtual time under the simulator)"},
	{"os", "execute", "a procedure cannot run programs"},
	{"os", "setlocale", "a procedure cannot change the locale"},
	{"io", "popen", "a procedure cannot run programs"},
	{"io", "read", "a procedure cannot read standard input"},
	{"io", "input", "a procedure cannot read standard input"},
	{"io", "write", "a procedure writes with print (or to a file from io.open)"},
	{"io", "output", "a procedure writes with print (or to a file from io.open)"},
	{"math", "randomseed", NULL}, /* replaced, not denied: see below */
	{NULL, NULL, NULL},
};

/* A denied function: raise "os.exit is not available in a procedure: ..."
 * at the caller's line. */
static int l_sandbox_denied(lua_State *L)
{
	luaL_where(L, 1);
	lua_pushfstring(L, "%s is not available in a procedure: %s",
	                lua_tostring(L, lua_upvalueindex(1)), lua_tostring(L, lua_upvalueindex(2)));
	lua_concat(L, 2);
	return lua_error(L);
}

/* math.randomseed(x): a seed is required, since without one Lua seeds from
 * the wall clock and runs stop repeating. */
static int l_sandbox_randomseed(lua_State *L)
{
	luaL_checkinteger(L, 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static int allowed_module(const char *name)
{
	return strcmp(name, "batlab") == 0 || strncmp(name, "batlab.", 7) == 0 ||
	       strcmp(name, "cjson") == 0 || strcmp(name, "cjson.safe") == 0 ||
	       strcmp(name, "lfs") == 0;
}

/* require(name) for batlab.*, cjson, cjson.safe and lfs only: the modules
 * run in the global environment (they are ours), the procedure in its own. */
static int l_sandbox_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	if (!allowed_module(name))
		return luaL_error(L, "require '%s': a procedure can require batlab.*, cjson, "
		                  "cjson.safe and lfs only", name);
	lua_settop(L, 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* load(chunk [, name [, mode [, env]]]): text only, in the procedure's
 * environment unless another is given. Upvalues: real load, env. */
static int l_sandbox_load(lua_State *L)
{
	const char *mode = luaL_optstring(L, 3, "t");

	luaL_argcheck(L, strchr(mode, 'b') == NULL, 3, "binary chunks are not allowed in a procedure");
	lua_settop(L, 4);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (lua_isnil(L, 4))
		lua_pushvalue(L, lua_upvalueindex(2));
	else
		lua_pushvalue(L, 4);
	lua_call(L, 4, LUA_MULTRET);
	return lua_gettop(L) - 4;
}

/* Load a text file into the procedure's environment (upvalue 1). */
static int load_into_env(lua_State *L, int envidx)
{
	const char *path = luaL_checkstring(L, 1);
	int st = luaL_loadfilex(L, path, "t");

	if (st != LUA_OK)
		return st;
	lua_pushvalue(L, envidx);
	lua_setupvalue(L, -2, 1);  /* a main chunk's only upvalue is _ENV */
	return LUA_OK;
}

/* loadfile(path [, mode [, env]]) */
static int l_sandbox_loadfile(lua_State *L)
{
	const char *mode = luaL_optstring(L, 2, "t");
	int st;

	luaL_argcheck(L, strchr(mode, 'b') == NULL, 2, "binary chunks are not allowed in a procedure");
	lua_settop(L, 3);
	st = load_into_env(L, lua_isnil(L, 3) ? lua_upvalueindex(1) : 3);
	if (st != LUA_OK) {
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	return 1;
}

static int dofile_cont(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	(void)ctx;
	return lua_gettop(L) - 1;
}

/* dofile(path): yieldable, like the standard one. */
static int l_sandbox_dofile(lua_State *L)
{
	lua_settop(L, 1);
	if (load_into_env(L, lua_upvalueindex(1)) != LUA_OK)
		return lua_error(L);
	lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
	return dofile_cont(L, LUA_OK, 0);
}

/* Copy the fields named in `names` of global library `lib` into a new
 * table, then add the denied stubs for it. Leaves the table on the stack. */
static void copy_lib(lua_State *L, const char *lib, const char *const *names)
{
	lua_newtable(L);
	lua_getglobal(L, lib);
	if (names) {
		for (int i = 0; names[i]; i++) {
			lua_getfield(L, -1, names[i]);
			lua_setfield(L, -3, names[i]);
		}
	} else {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -5);
		}
	}
	for (const struct denied *d = denied; d->lib; d++) {
		if (strcmp(d->lib, lib) != 0)
			continue;
		if (!d->why) {
			lua_getfield(L, -1, d->name);   /* the real one */
			lua_pushcclosure(L, l_sandbox_randomseed, 1);
		} else {
			lua_pushfstring(L, "%s.%s", d->lib, d->name);
			lua_pushstring(L, d->why);
			lua_pushcclosure(L, l_sandbox_denied, 2);
		}
		lua_setfield(L, -3, d->name);
	}
	lua_pop(L, 1);
}

/* The whitelist table every sandbox env reads through __index. */
void bl_engine_build_sandbox(lua_State *L, struct bl_engine *e)
{
	lua_newtable(L);
	for (int i = 0; safe_globals[i]; i++) {
		lua_getglobal(L, safe_globals[i]);
		lua_setfield(L, -2, safe_globals[i]);
	}
	for (int i = 0; safe_libs[i]; i++) {
		copy_lib(L, safe_libs[i], NULL);
		lua_setfield(L, -2, safe_libs[i]);
	}
	copy_lib(L, "os", safe_os);
	lua_setfield(L, -2, "os");
	copy_lib(L, "io", safe_io);
	lua_setfield(L, -2, "io");

	bl_engine_push_print(L, e);
	lua_setfield(L, -2, "print");
	lua_getglobal(L, "require");
	lua_pushcclosure(L, l_sandbox_require, 1);
	lua_setfield(L, -2, "require");
	lua_getglobal(L, "batlab");
	lua_setfield(L, -2, "batlab");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key);
}

/* Build a fresh env on top of the stack (runs protected: it allocates). */
static int sandbox_new(lua_State *L)
{
	int env;

	lua_createtable(L, 0, 4);
	env = lua_gettop(L);
	lua_pushvalue(L, env);
	lua_setfield(L, env, "_G");
	/* load, loadfile and dofile default to this env, so code they load
	 * stays in the sandbox. */
	lua_getglobal(L, "load");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_sandbox_load, 2);
	lua_setfield(L, env, "load");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_sandbox_loadfile, 1);
	lua_setfield(L, env, "loadfile");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_sandbox_dofile, 1);
	lua_setfield(L, env, "dofile");

	lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key);
	/* Each procedure gets its own copy of the library tables, so one
	 * that patches string or math does not change the others. */
	for (int i = 0; sandbox_libs[i]; i++) {
		lua_newtable(L);
		lua_getfield(L, -2, sandbox_libs[i]);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -5);
		}
		lua_pop(L, 1);
		lua_setfield(L, env, sandbox_libs[i]);
	}
	lua_createtable(L, 0, 1);
	lua_insert(L, -2);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, env);
	return 1;
}

/* Push a fresh sandbox environment (a new table; see docs/lua-api.md).
 * LUA_OK, or LUA_ERRMEM with the message pushed instead. */
static int push_sandbox(struct bl_engine *e)
{
	lua_pushcfunction(e->L, sandbox_new);
	return lua_pcall(e->L, 0, 1, 0);
}

int bl_engine_load_procedure(struct bl_engine *e, const char *path)
{
	lua_State *L = e->L;
	int st, t;

	st = luaL_loadfilex(L, path, "t");
	if (st != LUA_OK)
		return st;
	st = push_sandbox(e);
	if (st != LUA_OK) {
		lua_remove(L, -2);
		return st;
	}
	lua_setupvalue(L, -2, 1);
	st = bl_engine_pcall(e, 0, 1);
	if (st != LUA_OK)
		return st;
	t = lua_type(L, -1);
	if (t != LUA_TTABLE && t != LUA_TFUNCTION) {
		lua_pushfstring(L, "%s: a procedure must return a table or a function, got %s",
		                path, luaL_typename(L, -1));
		lua_remove(L, -2);
		return LUA_ERRRUN;
	}
	return LUA_OK;
}
