/* dbbinary.c - spool rows (COPY text) re-encoded in COPY's binary format
 * for the sender (db_parts.h). The server then reads each number as its
 * 8 bytes instead of parsing its digits: for batlab.sample_data that was
 * about a third of the server's time storing a sample. The spool itself
 * stays text (readable, and what an older batlab's spools are).
 *
 * A number is the double the server would have parsed from its text:
 * digits with a decimal point are an integer divided by a power of ten,
 * which IEEE division rounds to the nearest double as strtod does; any
 * other spelling goes through strtod itself. A field that does not read
 * as its column's type makes the row not convertible (the caller sends
 * it as text). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/db_parts.h"

#define PG_EPOCH_DAYS 10957            /* 1970-01-01 to 2000-01-01 */

static char *be16(char *p, unsigned v)
{
	p[0] = (char)(v >> 8);
	p[1] = (char)v;
	return p + 2;
}

static char *be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
	return p + 4;
}

static char *be64(char *p, uint64_t v)
{
	return be32(be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

void bl_dbbin_header(struct bl_buf *b)
{
	/* the signature, no flags, no header extension */
	bl_buf_add(b, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
}

void bl_dbbin_trailer(struct bl_buf *b)
{
	bl_buf_add(b, "\377\377", 2);
}

/* [-]digits within a bigint */
static bool parse_int(const char *s, size_t n, long long *v)
{
	size_t i = n > 0 && s[0] == '-';
	unsigned long long k = 0, max = i ? 9223372036854775808ull : 9223372036854775807ull;

	if (n == i || n - i > 19)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		k = k * 10 + (unsigned)(s[i] - '0');   /* 19 digits: no wrap */
	}
	if (k > max)
		return false;
	*v = s[0] == '-' ? (long long)(0ull - k) : (long long)k;
	return true;
}

static const double POW10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                               1e13, 1e14, 1e15};

static bool parse_double(const char *s, size_t n, double *v)
{
	char tmp[64], *end;
	unsigned long long k = 0;
	size_t i = 0, digits = 0, frac = 0;
	bool neg = n > 0 && s[0] == '-', point = false;

	/* [-]digits[.digits], 15 digits at most: k / 10^frac, exactly rounded */
	for (i = neg; i < n; i++) {
		if (s[i] == '.' && !point) {
			point = true;
		} else if (s[i] >= '0' && s[i] <= '9' && digits < 15) {
			k = k * 10 + (unsigned)(s[i] - '0');
			digits++;
			frac += point;
		} else {
			break;
		}
	}
	if (i == n && digits > 0) {
		*v = (double)k / POW10[frac];
		if (neg)
			*v = -*v;
		return true;
	}
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*v = strtod(tmp, &end);
	return *end == '\0';
}

static int digits_at(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 of a date of the proleptic Gregorian calendar. */
static long days_from_civil(long y, int m, int d)
{
	long era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (bl_copy_time) as microseconds from
 * 2000-01-01 UTC, PostgreSQL's timestamptz. */
static bool parse_time(const char *s, size_t n, int64_t *us)
{
	int y, mo, d, h, mi, se, ms;

	if (n != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    s[19] != '.' || s[23] != 'Z')
		return false;
	y = digits_at(s, 4), mo = digits_at(s + 5, 2), d = digits_at(s + 8, 2);
	h = digits_at(s + 11, 2), mi = digits_at(s + 14, 2), se = digits_at(s + 17, 2);
	ms = digits_at(s + 20, 3);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60 || ms < 0)
		return false;
	*us = ((((int64_t)(days_from_civil(y, mo, d) - PG_EPOCH_DAYS) * 24 + h) * 60 + mi) * 60 + se) *
	      1000000 + (int64_t)ms * 1000;
	return true;
}

/* A text field's COPY escapes undone (bl_copy_text writes \\, \n, \t,
 * \xHH): never longer than the field. NULL when it is not one. */
static char *put_text(char *p, const char *s, size_t n)
{
	char *len = p, *q = p + 4;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\\') {
			if (++i == n)
				return NULL;
			switch (s[i]) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '\\': c = '\\'; break;
			case 'x': {
				char hex[3] = {0, 0, 0}, *end;
				if (i + 2 >= n)
					return NULL;
				hex[0] = s[i + 1];
				hex[1] = s[i + 2];
				c = (char)strtol(hex, &end, 16);
				if (*end != '\0')
					return NULL;
				i += 2;
				break;
			}
			default:
				return NULL;
			}
		}
		*q++ = c;
	}
	be32(len, (uint32_t)(q - p - 4));
	return q;
}

/* One field of type t at p: '4' int4, '8' int8, 'f' float8, 'T'
 * timestamptz, 't' text; where it ends, NULL when it is not one. */
static char *put_field(char *p, char t, const char *s, size_t n)
{
	long long i;
	double f;
	int64_t us;
	uint64_t bits;

	if (n == 2 && s[0] == '\\' && s[1] == 'N')
		return be32(p, 0xffffffffu);   /* NULL */
	switch (t) {
	case '4':
		if (!parse_int(s, n, &i) || i < INT32_MIN || i > INT32_MAX)
			return NULL;
		return be32(be32(p, 4), (uint32_t)(int32_t)i);
	case '8':
		if (!parse_int(s, n, &i))
			return NULL;
		return be64(be32(p, 8), (uint64_t)i);
	case 'f':
		if (!parse_double(s, n, &f))
			return NULL;
		memcpy(&bits, &f, sizeof bits);
		return be64(be32(p, 8), bits);
	case 'T':
		if (!parse_time(s, n, &us))
			return NULL;
		return be64(be32(p, 8), (uint64_t)us);
	default:
		return put_text(p, s, n);
	}
}

int bl_dbbin_row(struct bl_buf *b, const char *types, const char *row, size_t n)
{
	size_t nf = strlen(types), start = 0;
	/* each field at most its length word, 8 bytes or its text */
	char *p = bl_buf_room(b, 2 + nf * 12 + n), *q;

	if (!p)
		return -1;
	if (n > 0 && row[n - 1] == '\n')
		n--;
	q = be16(p, (unsigned)nf);
	for (size_t f = 0; f < nf; f++) {
		const char *tab = memchr(row + start, '\t', n - start);
		size_t end = tab ? (size_t)(tab - row) : n;
		if ((f + 1 < nf) != (tab != NULL) || !(q = put_field(q, types[f], row + start, end - start)))
			return -1;
		start = end + 1;
	}
	bl_buf_done(b, q);
	return 0;
}
