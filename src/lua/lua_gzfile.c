/* lua_gzfile.c - batlab.gzopen(path [, mode]): a file read or written
 * through zlib, for the compressed time series (cells/<name>.csv.gz,
 * docs/results.md) and whoever reads them.
 *
 *   local f = assert(batlab.gzopen("run/cells/A.csv.gz"))   -- mode "r"
 *   for line in f:lines() do ... end      -- lines without their "\n"
 *   f:read("l") / f:read("a") / f:read(65536)  -- nil at the end
 *   f:close()
 *   local w = assert(batlab.gzopen(path, "w"))  -- or "a": a new member
 *   w:write(text, ...); w:flush(); w:close()
 *
 * Reading takes a gzip file of one or more members (what `cat a.gz b.gz`
 * makes) or a plain file as it is. A gzip stream cut short (a run killed
 * before it closed its file) reads as far as it was flushed and then
 * ends, as zcat shows it; other damage (bad data, a read error) is
 * nil, message, code. Failures return nil, message, code; misuse raises.
 */
#include <errno.h>
#include <string.h>

#include <lauxlib.h>
#include <zlib.h>

#include "core/bl.h"
#include "host/outfile.h"
#include "lua/lua_gzfile.h"
#include "lua/lua_util.h"

#define BL_LUA_GZFILE "batlab.GzFile"
#define CHUNK 65536

struct lgz {
	gzFile gz;           /* NULL once closed */
	bool writing;
	char path[256];
};

static struct lgz *check_open(lua_State *L)
{
	struct lgz *z = luaL_checkudata(L, 1, BL_LUA_GZFILE);

	if (!z->gz)
		luaL_error(L, "batlab.gzopen: %s: the file is closed", z->path);
	return z;
}

/* nil, "PATH: what zlib said", code. A cut-short stream is no failure
 * for a reader: the caller treats it as the end. */
static int gz_fail(lua_State *L, struct lgz *z)
{
	int zerr = Z_OK;
	const char *msg = gzerror(z->gz, &zerr);

	if (zerr == Z_ERRNO)
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", z->path, strerror(errno));
	return bl_lua_fail(L, BL_ERR_IO, "%s", msg);  /* zlib's: "PATH: what" */
}

/* Read error other than a cut-short end? */
static bool read_failed(struct lgz *z)
{
	int zerr = Z_OK;

	gzerror(z->gz, &zerr);
	return zerr != Z_OK && zerr != Z_BUF_ERROR;
}

static int l_gzopen(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	const char *mode = luaL_optstring(L, 2, "r");
	const char *zmode = strcmp(mode, "r") == 0 ? "rb"
	                    : strcmp(mode, "w") == 0 ? "wb" BL_OUTFILE_GZ_LEVEL
	                    : strcmp(mode, "a") == 0 ? "ab" BL_OUTFILE_GZ_LEVEL : NULL;
	struct lgz *z;

	luaL_argcheck(L, zmode != NULL, 2, "mode must be \"r\", \"w\" or \"a\"");
	z = lua_newuserdatauv(L, sizeof *z, 0);
	memset(z, 0, sizeof *z);
	luaL_setmetatable(L, BL_LUA_GZFILE);
	snprintf(z->path, sizeof z->path, "%s", path);
	z->writing = mode[0] != 'r';
	errno = 0;
	z->gz = gzopen(path, zmode);
	if (!z->gz)
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", path, errno ? strerror(errno) : "out of memory");
	gzbuffer(z->gz, CHUNK);
	return 1;
}

/* One line (without its "\n") onto the stack; false at the end. */
static bool read_line(lua_State *L, struct lgz *z)
{
	luaL_Buffer b;
	bool any = false;

	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffer(&b);
		size_t n;
		if (!gzgets(z->gz, p, LUAL_BUFFERSIZE))
			break;
		n = strlen(p);
		any = true;
		if (n > 0 && p[n - 1] == '\n') {
			luaL_addsize(&b, n - 1);
			luaL_pushresult(&b);
			return true;
		}
		luaL_addsize(&b, n);
	}
	luaL_pushresult(&b);
	return any;
}

/* Up to n bytes (all that is left when n is SIZE_MAX) onto the stack;
 * false: nothing was left. */
static bool read_bytes(lua_State *L, struct lgz *z, size_t n)
{
	luaL_Buffer b;
	size_t got = 0;

	luaL_buffinit(L, &b);
	while (got < n) {
		size_t want = n - got < LUAL_BUFFERSIZE ? n - got : LUAL_BUFFERSIZE;
		int r = gzread(z->gz, luaL_prepbuffer(&b), (unsigned)want);
		if (r <= 0)
			break;
		luaL_addsize(&b, (size_t)r);
		got += (size_t)r;
	}
	luaL_pushresult(&b);
	return got > 0 || n == 0;
}

static int l_read(lua_State *L)
{
	struct lgz *z = check_open(L);
	bool got;

	if (z->writing)
		return luaL_error(L, "batlab.gzopen: %s: opened for writing", z->path);
	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer n = luaL_checkinteger(L, 2);
		luaL_argcheck(L, n >= 0, 2, "a count of bytes must be >= 0");
		got = read_bytes(L, z, (size_t)n);
	} else {
		const char *fmt = luaL_optstring(L, 2, "l");
		if (fmt[0] == '*')
			fmt++;
		if (fmt[0] == 'a') {
			read_bytes(L, z, SIZE_MAX);
			got = true;     /* "a" at the end is "", as io.read has it */
		} else if (fmt[0] == 'l') {
			got = read_line(L, z);
		} else {
			return luaL_argerror(L, 2, "format must be \"l\", \"a\" or a number");
		}
	}
	if (read_failed(z))
		return gz_fail(L, z);
	if (!got)
		lua_pushnil(L);
	return 1;
}

static int lines_next(lua_State *L)
{
	struct lgz *z = luaL_checkudata(L, lua_upvalueindex(1), BL_LUA_GZFILE);

	if (!z->gz)
		return luaL_error(L, "batlab.gzopen: %s: the file is closed", z->path);
	if (read_line(L, z))
		return 1;
	if (read_failed(z)) {
		int zerr;
		return luaL_error(L, "%s", gzerror(z->gz, &zerr));  /* "PATH: what" */
	}
	lua_pushnil(L);
	return 1;
}

/* for line in f:lines() (a read error raises, as io.lines does) */
static int l_lines(lua_State *L)
{
	struct lgz *z = check_open(L);

	if (z->writing)
		return luaL_error(L, "batlab.gzopen: %s: opened for writing", z->path);
	lua_settop(L, 1);
	lua_pushcclosure(L, lines_next, 1);
	return 1;
}

static int l_write(lua_State *L)
{
	struct lgz *z = check_open(L);
	int top = lua_gettop(L);

	if (!z->writing)
		return luaL_error(L, "batlab.gzopen: %s: opened for reading", z->path);
	for (int i = 2; i <= top; i++) {
		size_t len;
		const char *s = luaL_checklstring(L, i, &len);
		if (len > 0 && gzwrite(z->gz, s, (unsigned)len) == 0)
			return gz_fail(L, z);
	}
	lua_settop(L, 1);
	return 1;
}

/* A sync flush: everything written so far is readable from the file. */
static int l_flush(lua_State *L)
{
	struct lgz *z = check_open(L);

	if (z->writing && gzflush(z->gz, Z_SYNC_FLUSH) != Z_OK)
		return gz_fail(L, z);
	lua_settop(L, 1);
	return 1;
}

static int l_close(lua_State *L)
{
	struct lgz *z = check_open(L);
	int rc = gzclose(z->gz);

	z->gz = NULL;
	if (rc != Z_OK && (z->writing || rc != Z_BUF_ERROR))
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", z->path,
		                   rc == Z_ERRNO ? strerror(errno) : "zlib error on close");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_gc(lua_State *L)
{
	struct lgz *z = luaL_checkudata(L, 1, BL_LUA_GZFILE);

	if (z->gz)
		gzclose(z->gz);
	z->gz = NULL;
	return 0;
}

static const luaL_Reg gz_meta[] = {
	{"__index", NULL},
	{"__gc", l_gc},
	{"__close", l_gc},
	{NULL, NULL},
};

static const luaL_Reg gz_methods[] = {
	{"read", l_read},
	{"lines", l_lines},
	{"write", l_write},
	{"flush", l_flush},
	{"close", l_close},
	{NULL, NULL},
};

void bl_lua_open_gzfile(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_GZFILE, gz_meta, gz_methods);
	lua_pushcfunction(L, l_gzopen);
	lua_setfield(L, -2, "gzopen");
}
