/* dbbinary.c - rows in COPY's binary format (db_parts.h): a sample as
 * the feed spools it (bl_dbbin_fields and the fields after it), and a
 * spool row of COPY text re-encoded for the sender (an older spool's, or
 * one a resumed run sends again from its files). The server then reads
 * each number as its 8 bytes instead of parsing its digits: for
 * batlab.sample_data that was about a third of the server's time storing
 * a sample; and batlab no longer prints the digits only to read them
 * back.
 *
 * A number is the double the server would have parsed from the text
 * batlab writes of it (bl_copy_fixed, bl_copy_time): digits with a
 * decimal point are an integer divided by a power of ten, which IEEE
 * division rounds to the nearest double as strtod does; any other
 * spelling goes through strtod itself. So the database has the CSV's
 * numbers, whichever way a row came. A text field that does not read as
 * its column's type makes the row not convertible (the caller sends it
 * as text). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/csv.h"
#include "host/db.h"
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

/* ---- a row built field by field ---- */

void bl_dbbin_fields(struct bl_buf *b, unsigned n)
{
	char *p = bl_buf_room(b, 2);

	if (p)
		bl_buf_done(b, be16(p, n));
}

void bl_dbbin_null(struct bl_buf *b)
{
	char *p = bl_buf_room(b, 4);

	if (p)
		bl_buf_done(b, be32(p, 0xffffffffu));
}

void bl_dbbin_int4(struct bl_buf *b, int32_t v)
{
	char *p = bl_buf_room(b, 8);

	if (p)
		bl_buf_done(b, be32(be32(p, 4), (uint32_t)v));
}

/* A field of 8 bytes (bigint, double precision, timestamptz). */
static void put8(struct bl_buf *b, uint64_t v)
{
	char *p = bl_buf_room(b, 12);

	if (p)
		bl_buf_done(b, be64(be32(p, 8), v));
}

void bl_dbbin_int8(struct bl_buf *b, int64_t v)
{
	put8(b, (uint64_t)v);
}

static void put_float8(struct bl_buf *b, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof bits);
	put8(b, bits);
}

/* As bl_copy_fixed writes v and the server reads it back (strtod's
 * double; bl_dbbin_row's for up to 15 digits). Most values: the digits'
 * integer over 10^prec, the division correctly rounded, with at most 15
 * digits (|v| < 1e9, prec <= 6); the rest through their text. */
void bl_dbbin_fixed(struct bl_buf *b, double v, int prec)
{
	char text[BL_CSV_FIXED_ROOM], *end;
	unsigned long long n;
	double x;

	if (!isfinite(v)) {
		bl_dbbin_null(b);
		return;
	}
	if (prec >= 0 && prec <= 6 && bl_csv_fixed_units(fabs(v), prec, &n)) {
		x = (double)n / POW10[prec];
		/* a negative value that rounds to zero is written without its sign */
		if (v < 0 && n != 0)
			x = -x;
	} else {
		/* (as the server reads its text: strtod's double, however long) */
		end = bl_csv_put_fixed(text, v, prec);
		*end = '\0';
		x = strtod(text, NULL);
	}
	put_float8(b, x);
}

/* As bl_copy_time writes the time (to the millisecond) and parse_time
 * reads it; NULL where bl_copy_time writes none. */
void bl_dbbin_time(struct bl_buf *b, double epoch)
{
	char text[BL_CSV_TIME_ROOM], *end;
	int64_t us;

	if (!(fabs(epoch) < 1e11)) {
		bl_dbbin_null(b);
		return;
	}
	if (epoch >= 0) {
		/* a date from 1970 on: the text's milliseconds, from 2000 */
		us = bl_csv_round_units(epoch, 1e3) * 1000 - (int64_t)PG_EPOCH_DAYS * 86400 * 1000000;
	} else {
		end = bl_csv_put_time(text, epoch, BL_CSV_ISO_UTC);
		if (!parse_time(text, (size_t)(end - text), &us)) {
			bl_dbbin_null(b);
			return;
		}
	}
	put8(b, (uint64_t)us);
}

void bl_dbbin_text(struct bl_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *p;

	if (!s) {
		bl_dbbin_null(b);
		return;
	}
	if ((p = bl_buf_room(b, 4 + n))) {
		p = be32(p, (uint32_t)n);
		memcpy(p, s, n);
		bl_buf_done(b, p + n);
	}
}

/* ---- reading a tuple back ---- */

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ssize_t bl_dbbin_tuple_len(const char *p, size_t avail)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t at = 2, nf;

	if (avail < 2)
		return 0;
	nf = (size_t)u[0] << 8 | u[1];
	if (nf == 0 || nf > BL_DBBIN_MAX_FIELDS)
		return -1;
	for (size_t f = 0; f < nf; f++) {
		uint32_t len;
		if (avail - at < 4)
			return 0;
		len = get32(u + at);
		at += 4;
		if (len == 0xffffffffu)
			continue;
		if (len > BL_DBBIN_MAX_FIELD)
			return -1;
		if (avail - at < len)
			return 0;
		at += len;
	}
	return (ssize_t)at;
}

/* A binary tuple's first two fields as bigints: false when they are not. */
static bool binary_key(const char *p, size_t n, int64_t *a, int64_t *b)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n < 26 || (u[0] << 8 | u[1]) < 2 || get32(u + 2) != 8 || get32(u + 14) != 8)
		return false;
	*a = (int64_t)((uint64_t)get32(u + 6) << 32 | get32(u + 10));
	*b = (int64_t)((uint64_t)get32(u + 18) << 32 | get32(u + 22));
	return true;
}

/* A text row's first two fields, each [-]digits within a bigint. */
static bool text_key(const char *row, size_t n, int64_t *a, int64_t *b)
{
	const char *t1 = memchr(row, '\t', n), *t2;
	long long x, y;

	if (!t1 || !(t2 = memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - row))))
		t2 = row + n;
	if (!t1 || !parse_int(row, (size_t)(t1 - row), &x) || !parse_int(t1 + 1, (size_t)(t2 - t1 - 1), &y))
		return false;
	*a = x;
	*b = y;
	return true;
}

bool bl_db_sample_key(const char *data, size_t n, bool binary, int64_t *series, int64_t *seq)
{
	return binary ? binary_key(data, n, series, seq) : text_key(data, n, series, seq);
}
