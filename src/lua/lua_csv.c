/* lua_csv.c - batlab.csv_line(spec, ...): one CSV line formatted in C.
 *
 * A run writes a row per cell per report into two files; formatting those
 * field by field in Lua cost more than the rest of the engine together.
 * The rules are those of lua/batlab/csv.lua, byte for byte:
 *
 *   spec      a string of field codes separated by commas, one per value:
 *             fN  number with N decimals ("%.Nf")
 *             aN  the same of the absolute value
 *             d   whole number, rounded half up
 *             g   number as "%.10g"
 *             s   text: a string is quoted when it holds , " CR or LF or
 *                 starts or ends with a space (quotes doubled); a number
 *                 is written as with g; a boolean as true/false
 *             r   text already in CSV form, written as it is
 *             T   epoch seconds as ISO-8601 UTC with milliseconds
 *                 ("2000-01-01T00:00:01.943Z")
 *             L   epoch seconds as local "YYYY-mm-dd HH:MM:SS.ffffff"
 *             -   always empty (the value is ignored)
 *   values    nil, NaN and infinities give an empty field (no value is
 *             never written as a number); a negative value that prints as
 *             zero loses its sign.
 *
 * Returns the line with "\n".
 */
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <lua.h>

#include "host/csv.h"
#include "lua/lua_util.h"

/* One field of code `code` (precision prec) for the value at arg. */
static int add_field(lua_State *L, struct bl_buf *b, char code, int prec, int arg)
{
	int t = lua_type(L, arg);
	double v = t == LUA_TNUMBER ? lua_tonumber(L, arg) : NAN;
	size_t n;
	const char *s;

	switch (code) {
	case 'f': bl_csv_fixed(b, v, prec); break;
	case 'a': bl_csv_fixed(b, fabs(v), prec); break;
	case 'd': bl_csv_whole(b, v); break;
	case 'g': bl_csv_general(b, v); break;
	case 'T':
	case 'L': bl_csv_time(b, v, code == 'T'); break;
	case '-': break;
	case 'r':
		if (t == LUA_TSTRING) {
			s = lua_tolstring(L, arg, &n);
			bl_buf_add(b, s, n);
		}
		break;
	case 's':
		if (t == LUA_TNUMBER) {
			bl_csv_general(b, v);
		} else if (t == LUA_TBOOLEAN) {
			bl_buf_adds(b, lua_toboolean(L, arg) ? "true" : "false");
		} else if (t != LUA_TNIL && t != LUA_TNONE) {
			/* __tostring may run Lua: the line is a C buffer, not a
			 * luaL_Buffer on the stack, so that is safe. */
			s = luaL_tolstring(L, arg, &n);
			bl_csv_text(b, s, n);
			lua_pop(L, 1);
		}
		break;
	default:
		return -1;
	}
	return 0;
}

static int csv_line(lua_State *L, struct bl_buf *b)
{
	size_t speclen;
	const char *spec = luaL_checklstring(L, 1, &speclen);
	const char *p = spec, *end = spec + speclen;

	for (int arg = 2; p < end; arg++) {
		char code;
		int prec = 0;

		if (arg > 2)
			bl_buf_addc(b, ',');
		code = *p++;
		while (p < end && *p >= '0' && *p <= '9' && prec < 1000)
			prec = prec * 10 + (*p++ - '0');
		if (p < end && *p != ',')
			return luaL_argerror(L, 1, "bad field code");
		if (p < end)
			p++;
		if (add_field(L, b, code, prec, arg) < 0)
			return luaL_argerror(L, 1, "unknown field code");
	}
	bl_buf_addc(b, '\n');
	if (b->oom)
		return luaL_error(L, "out of memory");
	lua_pushlstring(L, b->p, b->len);
	return 1;
}

/* The buffer is freed even when an error is raised part-way: it lives in
 * a to-be-closed userdata. */
static int buf_close(lua_State *L)
{
	bl_buf_free(lua_touserdata(L, 1));
	return 0;
}

/* Rows come by the hundred thousand: one buffer serves every call, except
 * a call made while another is building its line (a __tostring that calls
 * csv_line), which gets a buffer of its own. An error raised part-way
 * leaves the shared buffer marked busy: later calls then take their own
 * buffers, slower but right. */
static struct bl_buf shared_buf;
static bool shared_busy;

static int l_csv_line(lua_State *L)
{
	struct bl_buf *b;
	int n;

	if (!shared_busy) {
		shared_busy = true;
		shared_buf.len = 0;
		n = csv_line(L, &shared_buf);
		shared_busy = false;
		return n;
	}
	b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	if (luaL_newmetatable(L, "batlab.csvbuf")) {
		lua_pushcfunction(L, buf_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, buf_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return csv_line(L, b);
}

/* batlab.open_file(path, mode) -> a Lua file (io's own kind) | nil, err:
 * io.open with a 64 kB buffer. Rows of a virtual run come far faster than
 * a 4 kB stdio buffer empties (a write(2) per 40 rows), and glibc's
 * setvbuf keeps its own size unless it is given the buffer, which
 * file:setvbuf never does. The buffer lives with the stream. */
#define FILE_BUFFER (64 * 1024)

struct bigfile {
	luaL_Stream s;
	char buf[FILE_BUFFER];
};

static int close_bigfile(lua_State *L)
{
	luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
	int ok = fclose(p->f) == 0;

	p->closef = NULL;        /* closed: io's own methods say so */
	return luaL_fileresult(L, ok, NULL);
}

static int l_open_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	const char *mode = luaL_optstring(L, 2, "r");
	struct bigfile *b;

	luaL_argcheck(L, mode[0] && strchr("rwa", mode[0]) && strspn(mode + 1, "+b") == strlen(mode + 1), 2,
	              "invalid mode");
	b = lua_newuserdatauv(L, sizeof *b, 0);
	b->s.closef = NULL;      /* not open yet: a failure below leaves a closed file */
	luaL_setmetatable(L, LUA_FILEHANDLE);
	b->s.f = fopen(path, mode);
	if (!b->s.f)
		return luaL_fileresult(L, 0, path);
	setvbuf(b->s.f, b->buf, _IOFBF, sizeof b->buf);
	b->s.closef = close_bigfile;
	return 1;
}

void bl_lua_open_csv(lua_State *L)
{
	lua_pushcfunction(L, l_csv_line);
	lua_setfield(L, -2, "csv_line");
	lua_pushcfunction(L, l_open_file);
	lua_setfield(L, -2, "open_file");
}
