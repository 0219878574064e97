/* engine.c - the Lua state, its initialisation, the procedure sandbox. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "lua/engine.h"
#include "lua/lua_util.h"

#ifndef BL_LUADIR
#define BL_LUADIR "/usr/local/share/batlab/lua"
#endif

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

struct bl_engine {
	lua_State *L;
	const struct bl_clock *clock;
	char *luadir;
	bl_engine_output_fn output;
	void *output_ud;
	uint64_t seed;
	const char *argv0;   /* only during bl_engine_new */
};

/* Registry keys (their addresses). */
static const char engine_key = 0;   /* light userdata: the engine */
static const char sandbox_key = 0;  /* the whitelist every sandbox reads */

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

/* ---- Finding lua/ -------------------------------------------------------- */

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_batlab_dir(const char *dir)
{
	char p[PATH_MAX];

	if ((size_t)snprintf(p, sizeof p, "%s/batlab", dir) >= sizeof p)
		return 0;
	return is_dir(p);
}

#define MAX_CANDIDATES 10

struct candidates {
	char path[MAX_CANDIDATES][PATH_MAX];
	int n;
};

static void add_candidate(struct candidates *c, const char *dir, const char *suffix)
{
	if (c->n >= MAX_CANDIDATES || !dir || !*dir)
		return;
	if ((size_t)snprintf(c->path[c->n], PATH_MAX, "%s%s", dir, suffix) >= PATH_MAX)
		return;
	c->n++;
}

/* The three places lua/ can be relative to a binary's directory: the
 * source tree (dir/lua, or build/rel/../../lua), and an install
 * (bin/../share/batlab/lua). */
static void add_around(struct candidates *c, const char *file)
{
	char dir[PATH_MAX];
	char *slash;

	if (!file || (size_t)snprintf(dir, sizeof dir, "%s", file) >= sizeof dir)
		return;
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	add_candidate(c, dir, "/lua");
	add_candidate(c, dir, "/../../lua");
	add_candidate(c, dir, "/../share/batlab/lua");
}

/* The program's argv[0] as it was invoked (a symlink keeps its own
 * name there), from /proc/self/cmdline. */
static int read_argv0(char *buf, size_t n)
{
	FILE *f = fopen("/proc/self/cmdline", "r");
	size_t len;

	if (!f)
		return -1;
	len = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

/* Pick lua/ (see engine.h for the order); returns a malloc'd path. */
static char *find_luadir(const char *explicit, const char *argv0)
{
	struct candidates *c = calloc(1, sizeof *c);
	char exe[PATH_MAX], real[PATH_MAX], a0[PATH_MAX];
	const char *pick = NULL, *env = getenv("BATLAB_LUA_PATH");
	ssize_t n;
	char *out;

	if (!c)
		return NULL;
	if (explicit && *explicit)
		add_candidate(c, explicit, "");
	else if (env && *env)
		add_candidate(c, env, "");
	if (c->n) {
		/* Told where: trust it, whether it exists yet or not. */
		pick = c->path[0];
	} else {
		n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n > 0) {
			exe[n] = '\0';
			add_around(c, exe);
		}
		if (!argv0 && read_argv0(a0, sizeof a0) == 0)
			argv0 = a0;
		if (argv0 && strchr(argv0, '/'))
			add_around(c, argv0);
		add_candidate(c, BL_LUADIR, "");
		for (int i = 0; i < c->n && !pick; i++)
			if (has_batlab_dir(c->path[i]))
				pick = c->path[i];
		for (int i = 0; i < c->n && !pick; i++)
			if (is_dir(c->path[i]))
				pick = c->path[i];
		if (!pick)
			pick = BL_LUADIR;
	}
	/* Absolute, so that a script that changes directory keeps it. */
	if (realpath(pick, real))
		out = strdup(real);
	else if (pick[0] != '/' && getcwd(exe, sizeof exe) &&
	         (size_t)snprintf(real, sizeof real, "%s/%s", exe, pick) < sizeof real)
		out = strdup(real);
	else
		out = strdup(pick);
	free(c);
	return out;
}

/* ---- The sandbox ----------------------------------------------------------- */

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
static void build_sandbox_base(lua_State *L, struct bl_engine *e)
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

	lua_pushlightuserdata(L, e);
	lua_pushcclosure(L, l_engine_print, 1);
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

/* ---- Initialisation -------------------------------------------------------- */

/* Prepend luadir to package.path; make sure package.cpath reaches the
 * system's Lua C modules. */
static void set_paths(lua_State *L, const char *luadir)
{
	const char *cpath;

	lua_getglobal(L, "package");
	lua_getfield(L, -1, "path");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", luadir, luadir, lua_tostring(L, -1));
	lua_setfield(L, -3, "path");
	lua_pop(L, 1);

	lua_getfield(L, -1, "cpath");
	cpath = lua_tostring(L, -1);
#ifdef BL_MULTIARCH
	if (!cpath || !strstr(cpath, "/usr/lib/" BL_MULTIARCH "/lua/5.4/?.so")) {
		lua_pushfstring(L, "%s;/usr/lib/" BL_MULTIARCH "/lua/5.4/?.so", cpath ? cpath : "");
		lua_setfield(L, -3, "cpath");
	}
#else
	(void)cpath;
#endif
	lua_pop(L, 2);
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

	lua_pushlightuserdata(L, e);
	lua_pushcclosure(L, l_engine_print, 1);
	lua_setglobal(L, "print");

	/* Seeded so that two runs with the same options are the same run. */
	lua_getglobal(L, "math");
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, (lua_Integer)e->seed);
	lua_call(L, 1, 0);
	lua_pop(L, 1);

	e->luadir = find_luadir(lua_tostring(L, 2), e->argv0);
	if (!e->luadir)
		return luaL_error(L, "out of memory");
	set_paths(L, e->luadir);

	luaL_requiref(L, "batlab", luaopen_batlab, 1);
	lua_pop(L, 1);
	/* The seed library's interface (batlab.Settings, batlab.Logger,
	 * Channel:start_test ...) is Lua, in lua/batlab/seed.lua. An engine
	 * without its lua/ directory still starts; a broken seed.lua fails. */
	if (luaL_dostring(L, "if package.searchpath('batlab.seed', package.path) then "
	                     "require 'batlab.seed' end") != LUA_OK)
		return lua_error(L);

	build_sandbox_base(L, e);
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
	e->L = luaL_newstate();
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
