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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/lua_util.h"

/* Drop the sign of "-0.000"-style results: no digit 1-9 after the '-'. */
static void unsign_zero(luaL_Buffer *b, const char *s, size_t n)
{
	if (n > 1 && s[0] == '-' && strpbrk(s + 1, "123456789") == NULL) {
		luaL_addlstring(b, s + 1, n - 1);
		return;
	}
	luaL_addlstring(b, s, n);
}

static void add_number(luaL_Buffer *b, const char *fmt, double v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof tmp, fmt, v);

	if (n > 0 && (size_t)n < sizeof tmp)
		unsign_zero(b, tmp, (size_t)n);
}

/* "%.Nf" without printf for the usual case: glibc formats the exact
 * binary value with multiple-precision arithmetic, which is most of the
 * cost of a row. Scaled to an integer, a value prints the same unless it
 * sits within rounding error of a half: those (and large values) still go
 * to snprintf, so the output is always the same as "%.Nf". */
static void add_fixed(luaL_Buffer *b, double v, int prec)
{
	static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	char tmp[48], *p = tmp + sizeof tmp;
	double x, r;
	long long n;
	bool neg;

	if (prec > 8 || !(fabs(v) < 1e9)) {
		char fmt[16];
		snprintf(fmt, sizeof fmt, "%%.%df", prec);
		add_number(b, fmt, v);
		return;
	}
	x = v * scale[prec];
	r = floor(x + 0.5);
	if (fabs(fabs(x - floor(x)) - 0.5) < 1e-6 * (fabs(x) > 1 ? fabs(x) : 1)) {
		char fmt[16];
		snprintf(fmt, sizeof fmt, "%%.%df", prec);
		add_number(b, fmt, v);
		return;
	}
	n = (long long)r;
	neg = n < 0;
	if (neg)
		n = -n;
	for (int i = 0; i < prec; i++) {
		*--p = (char)('0' + n % 10);
		n /= 10;
	}
	if (prec > 0)
		*--p = '.';
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	/* a negative value that rounds to zero is written without its sign */
	if (neg)
		*--p = '-';
	luaL_addlstring(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* A whole number within +/-1e15 prints the same under "%.0f" and
 * "%.10g" (up to ten digits) as its digits: no printf needed. */
static bool add_integral(luaL_Buffer *b, double v, int max_digits)
{
	char tmp[32], *p = tmp + sizeof tmp;
	long long n;
	bool neg;

	if (!(fabs(v) < 1e15) || v != floor(v))
		return false;
	n = (long long)v;
	neg = n < 0;
	if (neg)
		n = -n;
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	if (tmp + sizeof tmp - p > max_digits)
		return false;
	if (neg)
		*--p = '-';
	luaL_addlstring(b, p, (size_t)(tmp + sizeof tmp - p));
	return true;
}

static void add_text(luaL_Buffer *b, const char *s, size_t n)
{
	bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');

	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote) {
		luaL_addlstring(b, s, n);
		return;
	}
	luaL_addchar(b, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			luaL_addchar(b, '"');
		luaL_addchar(b, s[i]);
	}
	luaL_addchar(b, '"');
}

/* Seconds are formatted once and reused: rows come once a second. */
static void add_time(luaL_Buffer *b, double epoch, bool utc)
{
	static long long last_sec[2] = {-1, -1};
	static char last_text[2][32];
	int k = utc ? 0 : 1;
	long long unit = utc ? 1000 : 1000000;
	long long t = (long long)floor(epoch * (double)unit + 0.5);
	long long sec = t >= 0 ? t / unit : -((-t + unit - 1) / unit);
	long long frac = t - sec * unit;
	char tmp[48];

	if (sec != last_sec[k]) {
		time_t tt = (time_t)sec;
		struct tm tm;
		if (!(utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm)))
			return;
		strftime(last_text[k], sizeof last_text[k], utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
		last_sec[k] = sec;
	}
	if (utc)
		snprintf(tmp, sizeof tmp, "%s.%03lldZ", last_text[k], frac);
	else
		snprintf(tmp, sizeof tmp, "%s.%06lld", last_text[k], frac);
	luaL_addstring(b, tmp);
}

static int l_csv_line(lua_State *L)
{
	size_t speclen;
	const char *spec = luaL_checklstring(L, 1, &speclen);
	const char *p = spec, *end = spec + speclen;
	int arg = 2;
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	while (p < end) {
		char code;
		int prec = 0;
		int t = lua_type(L, arg);
		double v = 0;
		bool num = false;

		if (arg > 2)
			luaL_addchar(&b, ',');
		code = *p++;
		while (p < end && *p >= '0' && *p <= '9')
			prec = prec * 10 + (*p++ - '0');
		if (p < end && *p != ',')
			return luaL_argerror(L, 1, "bad field code");
		if (p < end)
			p++;
		if (t == LUA_TNUMBER) {
			v = lua_tonumber(L, arg);
			num = isfinite(v);
		}
		switch (code) {
		case 'f':
		case 'a':
			if (num)
				add_fixed(&b, code == 'a' ? fabs(v) : v, prec > 15 ? 15 : prec);
			break;
		case 'd':
			if (num && !add_integral(&b, floor(v + 0.5), 30))
				add_number(&b, "%.0f", floor(v + 0.5));
			break;
		case 'g':
			if (num && !add_integral(&b, v, 10))
				add_number(&b, "%.10g", v);
			break;
		case 's':
			if (t == LUA_TNUMBER) {
				if (num && !add_integral(&b, v, 10))
					add_number(&b, "%.10g", v);
			} else if (t == LUA_TBOOLEAN) {
				luaL_addstring(&b, lua_toboolean(L, arg) ? "true" : "false");
			} else if (t == LUA_TSTRING) {
				size_t n;
				const char *s = lua_tolstring(L, arg, &n);
				add_text(&b, s, n);
			} else if (t != LUA_TNIL && t != LUA_TNONE) {
				size_t n;
				const char *s = luaL_tolstring(L, arg, &n);
				add_text(&b, s, n);
				lua_pop(L, 1);
			}
			break;
		case 'r':
			if (t == LUA_TSTRING) {
				size_t n;
				const char *s = lua_tolstring(L, arg, &n);
				luaL_addlstring(&b, s, n);
			}
			break;
		case 'T':
		case 'L':
			if (num)
				add_time(&b, v, code == 'T');
			break;
		case '-':
			break;
		default:
			return luaL_argerror(L, 1, "unknown field code");
		}
		arg++;
	}
	luaL_addchar(&b, '\n');
	luaL_pushresult(&b);
	return 1;
}

void bl_lua_open_csv(lua_State *L)
{
	lua_pushcfunction(L, l_csv_line);
	lua_setfield(L, -2, "csv_line");
}
