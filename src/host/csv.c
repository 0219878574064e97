/* csv.c - CSV fields (csv.h). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/csv.h"

void bl_buf_free(struct bl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void bl_buf_grow_add(struct bl_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

char *bl_buf_grow_room(struct bl_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->oom)
		return NULL;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap != b->cap) {
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

void bl_buf_adds(struct bl_buf *b, const char *s)
{
	bl_buf_add(b, s, strlen(s));
}

/* Drop the sign of "-0.000"-style results: no digit 1-9 after the '-'. */
static void unsign_zero(struct bl_buf *b, const char *s, size_t n)
{
	if (n > 1 && s[0] == '-' && strpbrk(s + 1, "123456789") == NULL) {
		bl_buf_add(b, s + 1, n - 1);
		return;
	}
	bl_buf_add(b, s, n);
}

static void add_number(struct bl_buf *b, const char *fmt, double v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof tmp, fmt, v);

	if (n > 0 && (size_t)n < sizeof tmp)
		unsign_zero(b, tmp, (size_t)n);
}

/* "%.Nf" without printf for the usual case (bl_csv_put_fixed_n, csv.h):
 * glibc formats the exact binary value with multiple-precision
 * arithmetic, which was most of the cost of a row. Scaled to an integer,
 * a value prints the same unless it sits within rounding error of a
 * half: those are rounded here on the exact value, and large values (or
 * more than 8 digits) still go to snprintf, so the output is always the
 * same as "%.Nf". */
/* |v| x 10^prec rounded to the nearest integer, ties to even, on the
 * exact binary value of v (|v| < 1e9, prec <= 8): v = m x 2^e with a
 * 53-bit m, so |v| x 10^prec = m x 5^prec x 2^(e + prec), which 128 bits
 * hold exactly (m x 5^8 < 2^72). m and e come from v's bits (no libm). */
static unsigned long long round_exact(double v, int prec)
{
	unsigned long long bits, m;
	int e, sh;
	unsigned __int128 n, k, rem, half;

	memcpy(&bits, &v, sizeof bits);
	m = bits & ((1ull << 52) - 1);
	e = (int)(bits >> 52 & 0x7ff);
	if (e == 0) {               /* subnormal: m x 2^-1074 */
		e = -1074;
	} else {
		m |= 1ull << 52;
		e -= 1075;
	}
	n = m;
	for (int i = 0; i < prec; i++)
		n *= 5;
	sh = -e - prec;              /* |v| x 10^prec = n / 2^sh */
	if (sh <= 0)
		return (unsigned long long)(n << -sh);
	if (sh >= 100)
		return 0;
	k = n >> sh;
	rem = n - (k << sh);
	half = (unsigned __int128)1 << (sh - 1);
	if (rem > half || (rem == half && (k & 1)))
		k++;
	return (unsigned long long)k;
}

const char bl_csv_digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* The rare "%.Nf": |v| >= 1e9 or more than 8 digits after the point. */
static char *put_printf_fixed(char *p, double v, int prec)
{
	int n = snprintf(p, BL_CSV_FIXED_ROOM, "%.*f", prec, v);

	if (n <= 0 || n >= BL_CSV_FIXED_ROOM)
		return p;
	/* "-0.000": no digit 1-9 after the '-' */
	if (p[0] == '-' && strpbrk(p + 1, "123456789") == NULL) {
		memmove(p, p + 1, (size_t)n - 1);
		n--;
	}
	return p + n;
}

/* n / 10^prec with its sign, prec <= 8 a variable. */
static char *put_scaled_any(char *p, bool neg, unsigned long long n, int prec)
{
	if (neg)
		*p++ = '-';
	switch (prec) {
	case 0: return bl_csv_put_scaled(p, n, 0);
	case 1: return bl_csv_put_scaled(p, n, 1);
	case 2: return bl_csv_put_scaled(p, n, 2);
	case 3: return bl_csv_put_scaled(p, n, 3);
	case 4: return bl_csv_put_scaled(p, n, 4);
	case 5: return bl_csv_put_scaled(p, n, 5);
	case 6: return bl_csv_put_scaled(p, n, 6);
	case 7: return bl_csv_put_scaled(p, n, 7);
	default: return bl_csv_put_scaled(p, n, 8);
	}
}

char *bl_csv_put_fixed_rare(char *p, double v, int prec)
{
	unsigned long long n;

	if (!isfinite(v))
		return p;
	if (prec > 8 || !(fabs(v) < 1e9))
		return put_printf_fixed(p, v, prec);
	n = round_exact(fabs(v), prec);
	/* a negative value that rounds to zero is written without its sign */
	return put_scaled_any(p, v < 0 && n != 0, n, prec);
}

char *bl_csv_put_fixed(char *p, double v, int prec)
{
	if (prec < 0)
		prec = 0;
	switch (prec) {
	case 0: return bl_csv_put_fixed_n(p, v, 0);
	case 1: return bl_csv_put_fixed_n(p, v, 1);
	case 2: return bl_csv_put_fixed_n(p, v, 2);
	case 3: return bl_csv_put_fixed_n(p, v, 3);
	case 4: return bl_csv_put_fixed_n(p, v, 4);
	case 5: return bl_csv_put_fixed_n(p, v, 5);
	case 6: return bl_csv_put_fixed_n(p, v, 6);
	case 7: return bl_csv_put_fixed_n(p, v, 7);
	case 8: return bl_csv_put_fixed_n(p, v, 8);
	default: return bl_csv_put_fixed_rare(p, v, prec > 15 ? 15 : prec);
	}
}

void bl_csv_fixed(struct bl_buf *b, double v, int prec)
{
	char *p = bl_buf_room(b, BL_CSV_FIXED_ROOM);

	if (p)
		bl_buf_done(b, bl_csv_put_fixed(p, v, prec));
}

/* A whole number within +/-1e15 prints the same under "%.0f" and
 * "%.10g" (up to ten digits) as its digits: no printf needed. */
static bool add_integral(struct bl_buf *b, double v, int max_digits)
{
	long long n;
	unsigned long long u;
	char *p;

	if (!(fabs(v) < 1e15))
		return false;
	n = (long long)v;
	if ((double)n != v)
		return false;
	u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
	if (bl_csv_digit_count(u) > max_digits)
		return false;
	p = bl_buf_room(b, BL_CSV_UINT_ROOM);
	if (!p)
		return true;             /* out of memory: the buffer says so */
	if (n < 0)
		*p++ = '-';
	bl_buf_done(b, bl_csv_put_uint(p, u));
	return true;
}

/* A plain decimal number: [+-]digits[.digits][e[+-]digits]. */
static bool is_number_text(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			exp++;
		if (exp == 0)
			return false;
	}
	return i == n;
}

/* Text a spreadsheet would run as a formula (OWASP "CSV injection"): it
 * starts with = + - @ TAB or CR and is not a number. */
static bool is_formula_text(const char *s, size_t n)
{
	return n > 0 && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL && !is_number_text(s, n);
}

void bl_csv_text(struct bl_buf *b, const char *s, size_t n)
{
	bool formula = is_formula_text(s, n);
	bool quote = formula || (n > 0 && (s[0] == ' ' || s[n - 1] == ' '));

	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote) {
		bl_buf_add(b, s, n);
		return;
	}
	bl_buf_addc(b, '"');
	if (formula)
		bl_buf_addc(b, '\'');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			bl_buf_addc(b, '"');
		bl_buf_addc(b, s[i]);
	}
	bl_buf_addc(b, '"');
}

/* The date and hour of a second, as "YYYY-mm-ddTHH:" (ISO UTC) or
 * "YYYY-mm-dd HH:" (local, or UTC in Lexcelon's log), kept for the hour
 * it starts: rows come every second or faster, and localtime_r (the time
 * zone's rules) costs more than the rest of a row. The hour's start is
 * where the clock showed HH:00:00, so the zone's offset (a whole number
 * of minutes) holds throughout, and minutes and seconds within it are
 * arithmetic. */
struct hour_cache {
	bool valid;
	long long start;             /* first second of the hour */
	long long from;              /* the second it was worked out from */
	size_t len;
	char prefix[32];
	/* and the last second's text, the prefix and "MM:SS.": a row's
	 * cells are sampled within the same second */
	bool have_second;
	long long second;
	size_t second_len;
	char second_text[32];
};

static bool hour_of(struct hour_cache *c, long long sec, enum bl_csv_clock clock)
{
	time_t tt = (time_t)sec;
	struct tm tm;
	bool local = clock == BL_CSV_LOCAL;

	/* not before the second it was worked out from: in a zone that
	 * moves by half an hour, the half hour before a change is another
	 * offset's */
	if (c->valid && sec >= c->from && sec - c->start < 3600)
		return true;
	c->valid = false;
	if (!(local ? localtime_r(&tt, &tm) : gmtime_r(&tt, &tm)))
		return false;
	c->len = strftime(c->prefix, sizeof c->prefix,
	                  clock == BL_CSV_ISO_UTC ? "%Y-%m-%dT%H:" : "%Y-%m-%d %H:", &tm);
	if (c->len == 0)
		return false;
	c->start = sec - (tm.tm_min * 60 + (tm.tm_sec > 59 ? 59 : tm.tm_sec));
	c->from = sec;
	c->valid = true;
	return true;
}

/* epoch x unit rounded half up, as floor(epoch x unit + 0.5) (|epoch| <
 * 1e12: the product fits), without libm for dates after 1970. */
long long bl_csv_round_units(double epoch, double unit)
{
	double y = epoch * unit + 0.5;

	return y >= 0 ? (long long)y : (long long)floor(y);
}

char *bl_csv_put_time(char *p, double epoch, enum bl_csv_clock clock)
{
	static struct hour_cache cache[3];
	struct hour_cache *c = &cache[clock];
	bool iso = clock == BL_CSV_ISO_UTC;
	long long t, sec, frac;
	unsigned in_hour;

	if (!(fabs(epoch) < 1e12))   /* NaN, infinite, or no date a row can have */
		return p;
	if (iso) {
		t = bl_csv_round_units(epoch, 1e3);
		sec = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
		frac = t - sec * 1000;
	} else {
		t = bl_csv_round_units(epoch, 1e6);
		sec = t >= 0 ? t / 1000000 : -((-t + 999999) / 1000000);
		frac = t - sec * 1000000;
	}
	if (!c->have_second || sec != c->second) {
		char *q = c->second_text;
		c->have_second = false;
		if (!hour_of(c, sec, clock))
			return p;
		memcpy(q, c->prefix, c->len);
		q += c->len;
		in_hour = (unsigned)(sec - c->start);
		bl_csv_pair(q, in_hour / 60);
		q[2] = ':';
		bl_csv_pair(q + 3, in_hour % 60);
		q[5] = '.';
		c->second_len = c->len + 6;
		c->second = sec;
		c->have_second = true;
	}
	memcpy(p, c->second_text, sizeof c->second_text);
	p += c->second_len;
	if (iso) {
		p[0] = (char)('0' + frac / 100);
		bl_csv_pair(p + 1, (unsigned)(frac % 100));
		p[3] = 'Z';
		return p + 4;
	}
	bl_csv_pair(p, (unsigned)(frac / 10000));
	bl_csv_pair(p + 2, (unsigned)(frac / 100 % 100));
	bl_csv_pair(p + 4, (unsigned)(frac % 100));
	return p + 6;
}

void bl_csv_time(struct bl_buf *b, double epoch, bool utc)
{
	char *p = bl_buf_room(b, BL_CSV_TIME_ROOM);

	if (p)
		bl_buf_done(b, bl_csv_put_time(p, epoch, utc ? BL_CSV_ISO_UTC : BL_CSV_LOCAL));
}

void bl_csv_whole(struct bl_buf *b, double v)
{
	if (!isfinite(v))
		return;
	v = floor(v + 0.5);
	if (!add_integral(b, v, 30))
		add_number(b, "%.0f", v);
}

void bl_csv_general(struct bl_buf *b, double v)
{
	if (isfinite(v) && !add_integral(b, v, 10))
		add_number(b, "%.10g", v);
}
