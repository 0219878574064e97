/* test_engine.c - the engine's C API: clocks and batlab.now(), print
 * routing, protected calls with tracebacks, procedure loading and the
 * procedure sandbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "lua/engine.h"
#include "tap.h"

static char outbuf[4096];
static size_t outlen;

static void capture(void *ud, const char *text, size_t len)
{
	(void)ud;
	if (len > sizeof outbuf - 1 - outlen)
		len = sizeof outbuf - 1 - outlen;
	memcpy(outbuf + outlen, text, len);
	outlen += len;
	outbuf[outlen] = '\0';
}

static char tmpdir[64];
static char paths[64][128];
static int npaths;

/* Write text to a fresh file in tmpdir; returns its path. */
static const char *write_file(const char *name, const char *text)
{
	char *p = paths[npaths++];
	FILE *f;

	snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return p;
}

static char msg[2048];
static struct bl_vclock vc;

/* Load a procedure from text; on success it becomes the global P. Returns
 * the Lua status; the message (if any) is in msg. */
static int proc(struct bl_engine *e, const char *name, const char *text)
{
	lua_State *L = bl_engine_state(e);
	int top = lua_gettop(L);
	int st = bl_engine_load_procedure(e, write_file(name, text));

	msg[0] = '\0';
	if (st != LUA_OK) {
		snprintf(msg, sizeof msg, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	} else {
		lua_setglobal(L, "P");
	}
	if (lua_gettop(L) != top)
		diag("stack changed: %d -> %d", top, lua_gettop(L));
	return st;
}

/* Push the value of `return EXPR`, run in the global environment; false
 * (with a diagnostic, nothing pushed) when it fails. */
static int eval_push(struct bl_engine *e, const char *expr)
{
	lua_State *L = bl_engine_state(e);
	char chunk[1024];

	snprintf(chunk, sizeof chunk, "return %s", expr);
	if (luaL_loadstring(L, chunk) != LUA_OK || bl_engine_pcall(e, 0, 1) != LUA_OK) {
		diag("eval '%s': %s", expr, lua_tostring(L, -1));
		lua_pop(L, 1);
		return 0;
	}
	return 1;
}

/* True if EXPR is true. */
static int eval(struct bl_engine *e, const char *expr)
{
	lua_State *L = bl_engine_state(e);
	int r;

	if (!eval_push(e, expr))
		return 0;
	r = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return r;
}

/* EXPR's value as a number; -1 when it fails. */
static double eval_num(struct bl_engine *e, const char *expr)
{
	lua_State *L = bl_engine_state(e);
	double v;

	if (!eval_push(e, expr))
		return -1;
	v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return v;
}

/* A procedure whose main chunk does `code` must fail with `want` in its
 * message, at line 1 of its file. */
static void denied(struct bl_engine *e, const char *name, const char *code, const char *want)
{
	char where[160];
	int st = proc(e, name, code);

	snprintf(where, sizeof where, "%s/%s:1: ", tmpdir, name);
	ok(st == LUA_ERRRUN && strstr(msg, want) && strstr(msg, where),
	   "sandbox: %s raises '%s'", code, want);
	if (!(st == LUA_ERRRUN && strstr(msg, want) && strstr(msg, where)))
		diag("status %d, message: %s", st, msg);
}

/* batlab.now() and the engine's clock. */
static void test_clocks(struct bl_engine *e)
{
	is_num(eval_num(e, "batlab.now()"), 5.0, 1e-9, "batlab.now() reads the virtual clock");
	bl_clock_set(&vc.clock, 7250000);
	is_num(eval_num(e, "batlab.now()"), 7.25, 1e-9, "batlab.now() follows it");
	ok(bl_engine_clock(e) == &vc.clock, "bl_engine_clock");
	bl_engine_set_clock(e, NULL);
	ok(bl_engine_clock(e) == bl_clock_real(), "set_clock(NULL) is the real clock");
	is_num(eval_num(e, "batlab.now()"), bl_clock_monotonic_us() / 1e6, 1.0,
	       "batlab.now() reads the real clock");
	bl_engine_set_clock(e, &vc.clock);
	is_num(eval_num(e, "batlab.now()"), 7.25, 1e-9, "set_clock back to the virtual clock");
}

/* print goes through the engine's output. */
static void test_print(struct bl_engine *e)
{
	int st;

	outlen = 0;
	st = bl_engine_dostring(e, "print('a', 1, nil, true)", NULL);
	is_int(st, LUA_OK, "dostring ok");
	is_str(outbuf, "a\t1\tnil\ttrue\n", "print goes through opts.output, one line per call");
	outlen = 0;
	bl_engine_write(e, "raw", 3);
	is_str(outbuf, "raw", "bl_engine_write");
}

/* Protected calls: positions and tracebacks. */
static void test_pcall(struct bl_engine *e)
{
	lua_State *L = bl_engine_state(e);
	int st;

	st = bl_engine_dostring(e, "local function f() error('deep') end\nf()", "=chunk");
	is_int(st, LUA_ERRRUN, "a raising chunk gives LUA_ERRRUN");
	ok(strstr(lua_tostring(L, -1), "chunk:1: deep\nstack traceback:") != NULL,
	   "the message has the position, then a traceback");
	ok(strstr(lua_tostring(L, -1), "in local 'f'") != NULL, "the traceback names the function");
	lua_pop(L, 1);
	st = bl_engine_dostring(e, "return +", "=chunk");
	is_int(st, LUA_ERRSYNTAX, "a chunk that does not compile gives LUA_ERRSYNTAX");
	ok(strstr(lua_tostring(L, -1), "chunk:1:") != NULL, "with its position");
	lua_pop(L, 1);
	lua_getglobal(L, "error");
	lua_pushstring(L, "direct");
	st = bl_engine_pcall(e, 1, 0);
	is_int(st, LUA_ERRRUN, "bl_engine_pcall reports errors");
	ok(strstr(lua_tostring(L, -1), "direct\nstack traceback:") != NULL, "bl_engine_pcall adds a traceback");
	lua_pop(L, 1);
	lua_getglobal(L, "tostring");
	lua_pushinteger(L, 42);
	st = bl_engine_pcall(e, 1, 1);
	ok(st == LUA_OK && strcmp(lua_tostring(L, -1), "42") == 0, "bl_engine_pcall returns results");
	lua_pop(L, 1);
	ok(lua_gettop(L) == 0, "the stack is balanced");
}

/* Loading procedures: what a file must return, and its errors. */
static void test_load(struct bl_engine *e)
{
	lua_State *L = bl_engine_state(e);
	int st;

	st = proc(e, "table.lua", "return { name = 'capacity', run = function(cell, p) return true end }\n");
	is_int(st, LUA_OK, "a procedure returning a table loads");
	ok(eval(e, "type(P) == 'table' and P.name == 'capacity' and type(P.run) == 'function'"),
	   "the table is what the file returned");
	st = proc(e, "function.lua", "return function(cell) return cell end\n");
	is_int(st, LUA_OK, "a procedure returning a function loads");
	ok(eval(e, "type(P) == 'function' and P(5) == 5"), "the function is what the file returned");

	st = proc(e, "nothing.lua", "local x = 1\n");
	is_int(st, LUA_ERRRUN, "a procedure returning nothing fails");
	ok(strstr(msg, "nothing.lua: a procedure must return a table or a function, got nil") != NULL,
	   "with a clear message (%s)", msg);
	st = proc(e, "number.lua", "return 42\n");
	ok(st == LUA_ERRRUN && strstr(msg, "got number"), "a procedure returning a number fails");

	st = proc(e, "syntax.lua", "return {\n  a = 1,\n  b = = 2,\n}\n");
	is_int(st, LUA_ERRSYNTAX, "a syntax error gives LUA_ERRSYNTAX");
	{
		char want[160];

		snprintf(want, sizeof want, "%s/syntax.lua:3: unexpected symbol near '='", tmpdir);
		is_str(msg, want, "the message is FILE:LINE: message");
	}
	st = bl_engine_load_procedure(e, "/nonexistent/proc.lua");
	is_int(st, LUA_ERRFILE, "a missing procedure gives LUA_ERRFILE");
	ok(strstr(lua_tostring(L, -1), "cannot open /nonexistent/proc.lua") != NULL, "with a message");
	lua_pop(L, 1);
	st = proc(e, "raises.lua", "local t = {}\nerror('bad settings')\nreturn t\n");
	is_int(st, LUA_ERRRUN, "a procedure raising while it loads gives LUA_ERRRUN");
	ok(strstr(msg, "raises.lua:2: bad settings\nstack traceback:") != NULL, "FILE:LINE and a traceback");
	st = proc(e, "binary.lua", "\x1bLua");
	ok(st == LUA_ERRSYNTAX && strstr(msg, "attempt to load a binary chunk"), "binary chunks are refused");
}

/* The sandbox refuses what would break virtual time or leave it. */
static void test_denied(struct bl_engine *e)
{
	denied(e, "exit.lua", "os.exit(1)", "os.exit is not available in a procedure");
	denied(e, "time.lua", "local t = os.time()", "os.time is not available in a procedure: a procedure has no wall clock: use batlab.now()");
	denied(e, "clock.lua", "local t = os.clock()", "os.clock is not available in a procedure");
	denied(e, "date.lua", "local t = os.date()", "os.date is not available in a procedure");
	denied(e, "execute.lua", "os.execute('true')", "os.execute is not available in a procedure");
	denied(e, "popen.lua", "io.popen('ls')", "io.popen is not available in a procedure");
	denied(e, "read.lua", "io.read()", "io.read is not available in a procedure");
	denied(e, "write.lua", "io.write('x')", "io.write is not available in a procedure");
	denied(e, "require.lua", "require 'socket'",
	       "require 'socket': a procedure can require batlab.*, cjson, cjson.safe and lfs only");
	denied(e, "require_os.lua", "require 'os'", "require 'os': a procedure can require");
	denied(e, "seed.lua", "math.randomseed()", "bad argument #1 to 'randomseed' (number expected, got no value)");
	denied(e, "loadb.lua", "load('return 1', 'x', 'b')", "binary chunks are not allowed in a procedure");
}

/* What a procedure may do, and what stays in its environment. */
static void test_allowed(struct bl_engine *e)
{
	int st;

	st = proc(e, "allowed.lua",
	          "local cjson = require 'cjson'\n"
	          "local safe = require 'cjson.safe'\n"
	          "local lfs = require 'lfs'\n"
	          "local b = require 'batlab'\n"
	          "math.randomseed(7)\n"
	          "print('from a procedure', b.MODE_IDLE)\n"
	          "leaked = 'not in _G'\n"
	          "string.shout = function(s) return s:upper() end\n"
	          "local f = load('return leaked')\n"
	          "return {\n"
	          "  json = cjson.encode({1}), safe = safe ~= nil, lfs = lfs.attributes ~= nil,\n"
	          "  same_batlab = b == batlab, now = batlab.now(),\n"
	          "  g_is_env = _G == _ENV, leaked = leaked, loaded = f(),\n"
	          "  absent = { debug = debug, package = package, loadstring = loadstring,\n"
	          "             exit = rawget(os, 'exit') == nil, dofile = dofile ~= nil },\n"
	          "  os_getenv = os.getenv ~= nil, io_open = io.open ~= nil,\n"
	          "  get = function() return leaked end,\n"
	          "}\n");
	is_int(st, LUA_OK, "allowed things work in a procedure");
	if (st != LUA_OK)
		diag("%s", msg);
	ok(eval(e, "P.json == '[1]' and P.safe and P.lfs"), "cjson, cjson.safe and lfs can be required");
	ok(eval(e, "P.same_batlab and P.now == 7.25"), "batlab is there, batlab.now() reads the engine's clock");
	ok(eval(e, "P.g_is_env"), "_G is the procedure's own environment");
	ok(eval(e, "leaked == nil and P.leaked == 'not in _G'"), "a procedure's globals stay in its environment");
	ok(eval(e, "P.loaded == 'not in _G'"), "load() runs in the procedure's environment");
	ok(eval(e, "P.get() == 'not in _G'"), "functions it returns keep its environment");
	ok(eval(e, "string.shout == nil"), "patching string in a procedure does not reach the engine");
	ok(eval(e, "P.absent.debug == nil and P.absent.package == nil and P.absent.loadstring == nil"),
	   "debug and package are not there");
	ok(eval(e, "P.os_getenv and P.io_open and P.absent.dofile"), "os.getenv, io.open and dofile are");
	ok(strstr(outbuf, "from a procedure\t2\n") != NULL, "print in a procedure goes through the engine");

	st = proc(e, "other.lua", "return { leaked = leaked, shout = string.shout }\n");
	ok(st == LUA_OK && eval(e, "P.leaked == nil"), "another procedure gets a fresh environment");
	ok(eval(e, "P.shout == nil"), "and its own copy of string");
}

/* dofile and loadfile load into the procedure's environment. */
static void test_files(struct bl_engine *e)
{
	char text[512];
	int st;

	write_file("helper.lua", "helper_value = 40 + (...  or 0)\nreturn helper_value + 1\n");
	snprintf(text, sizeof text,
	         "local r = dofile('%s/helper.lua')\n"
	         "local f = loadfile('%s/helper.lua')\n"
	         "return { r = r, hv = helper_value, f = f(1), nofile = select(2, loadfile('/nonexistent')) }\n",
	         tmpdir, tmpdir);
	st = proc(e, "dofile.lua", text);
	if (st != LUA_OK)
		diag("%s", msg);
	ok(st == LUA_OK && eval(e, "P.r == 41 and P.hv == 40 and helper_value == nil"),
	   "dofile runs a file in the procedure's environment");
	ok(eval(e, "P.f == 42"), "loadfile too");
	ok(eval(e, "P.nofile:find('cannot open /nonexistent') ~= nil"), "loadfile of a missing file returns nil, message");
	denied(e, "loadfileb.lua", "loadfile('x', 'b')", "binary chunks are not allowed in a procedure");
}

/* Defaults: the real clock, stdout, lua/ searched. */
static void test_defaults(void)
{
	struct bl_engine *e;

	e = bl_engine_new(NULL);
	ok(e != NULL, "bl_engine_new(NULL) uses the defaults");
	if (e) {
		ok(bl_engine_clock(e) == bl_clock_real(), "the default clock is the real one");
		ok(bl_engine_luadir(e) && bl_engine_luadir(e)[0] != '\0', "a lua directory is chosen (%s)",
		   bl_engine_luadir(e));
		bl_engine_free(e);
	}
	setenv("BATLAB_LUA_PATH", "/opt/elsewhere/lua", 1);
	e = bl_engine_new(NULL);
	ok(e && strcmp(bl_engine_luadir(e), "/opt/elsewhere/lua") == 0, "BATLAB_LUA_PATH is used as it is");
	bl_engine_free(e);
	unsetenv("BATLAB_LUA_PATH");
}

int main(void)
{
	struct bl_engine_opts opts = {0};
	struct bl_engine *e;
	lua_State *L;

	plan_lazy();
	snprintf(tmpdir, sizeof tmpdir, "/tmp/batlab-test-engine-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}

	bl_vclock_init(&vc, 5000000);
	opts.clock = &vc.clock;
	opts.luadir = "lua";
	opts.output = capture;
	e = bl_engine_new(&opts);
	ok(e != NULL, "bl_engine_new");
	if (!e)
		return done_testing();
	L = bl_engine_state(e);
	ok(bl_engine_from_state(L) == e, "bl_engine_from_state finds the engine");
	ok(lua_gettop(L) == 0, "the stack is empty after bl_engine_new");
	ok(strstr(bl_engine_luadir(e), "/lua") != NULL && bl_engine_luadir(e)[0] == '/',
	   "opts.luadir is used, made absolute (%s)", bl_engine_luadir(e));
	ok(eval(e, "package.path:find(require('lfs').currentdir() .. '/lua/?.lua;', 1, true) == 1"),
	   "package.path starts with it");

	test_clocks(e);
	test_print(e);
	test_pcall(e);
	test_load(e);
	test_denied(e);
	test_allowed(e);
	test_files(e);

	ok(lua_gettop(L) == 0, "the stack is balanced after everything");
	bl_engine_free(e);
	bl_engine_free(NULL);
	ok(1, "bl_engine_free(NULL) is fine");
	test_defaults();

	for (int i = 0; i < npaths; i++)
		unlink(paths[i]);
	rmdir(tmpdir);
	return done_testing();
}
