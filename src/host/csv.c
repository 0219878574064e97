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

/* "%.Nf" without printf for the usual case: glibc formats the exact
 * binary value with multiple-precision arithmetic, which is most of the
 * cost of a row. Scaled to an integer, a value prints the same unless it
 * sits within rounding error of a half: those (and large values) still go
 * to snprintf, so the output is always the same as "%.Nf". */
/* |v| x 10^prec rounded to the nearest integer, ties to even, on the
 * exact binary value of v (|v| < 1e9, prec <= 8): v = m x 2^e with a
 * 53-bit m, so |v| x 10^prec = m x 5^prec x 2^(e + prec), which 128 bits
 * hold exactly (m x 5^8 < 2^72). */
static long long round_exact(double v, int prec)
{
	int e, sh;
	double f = frexp(fabs(v), &e);
	unsigned __int128 n = (unsigned __int128)(unsigned long long)ldexp(f, 53), k, rem, half;

	for (int i = 0; i < prec; i++)
		n *= 5;
	sh = 53 - e - prec;          /* |v| x 10^prec = n / 2^sh */
	if (sh <= 0)
		return (long long)(n << -sh);
	if (sh >= 100)
		return 0;
	k = n >> sh;
	rem = n - (k << sh);
	half = (unsigned __int128)1 << (sh - 1);
	if (rem > half || (rem == half && (k & 1)))
		k++;
	return (long long)k;
}

static const char two_digits_table[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* n >= 0 as digits ending at p, the last `prec` of them after a point
 * (at least one before it); returns where they start. Two digits a step. */
static char *put_digits(char *p, long long n, int prec)
{
	unsigned long long u = (unsigned long long)n;
	int frac = prec;

	while (frac >= 2) {
		const char *d = two_digits_table + 2 * (u % 100);
		*--p = d[1];
		*--p = d[0];
		u /= 100;
		frac -= 2;
	}
	if (frac == 1) {
		*--p = (char)('0' + u % 10);
		u /= 10;
	}
	if (prec > 0)
		*--p = '.';
	while (u >= 100) {
		const char *d = two_digits_table + 2 * (u % 100);
		*--p = d[1];
		*--p = d[0];
		u /= 100;
	}
	if (u >= 10) {
		*--p = two_digits_table[2 * u + 1];
		*--p = two_digits_table[2 * u];
	} else {
		*--p = (char)('0' + u);
	}
	return p;
}

void bl_csv_fixed(struct bl_buf *b, double v, int prec)
{
	static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	char tmp[48], *p = tmp + sizeof tmp;
	double x;
	long long n;
	bool neg;
	if (!isfinite(v))
		return;
	if (prec > 15)
		prec = 15;

	if (prec > 8 || !(fabs(v) < 1e9)) {
		char fmt[16];
		snprintf(fmt, sizeof fmt, "%%.%df", prec);
		add_number(b, fmt, v);
		return;
	}
	x = v * scale[prec];
	/* The product is off the exact decimal by a few units in its last
	 * place (|x| x 2^-52 each): only a value that close to a half can
	 * round the other way, and those are rounded on the exact binary
	 * value, as printf does (a margin of |x| x 1e-12 is thousands of
	 * times that error). */
	if (fabs(fabs(x - floor(x)) - 0.5) < 1e-12 * (fabs(x) > 1 ? fabs(x) : 1)) {
		n = round_exact(v, prec);
		neg = v < 0 && n != 0;
	} else {
		n = (long long)floor(x + 0.5);
		neg = n < 0;
		if (neg)
			n = -n;
	}
	p = put_digits(p, n, prec);
	/* a negative value that rounds to zero is written without its sign */
	if (neg)
		*--p = '-';
	bl_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* A whole number within +/-1e15 prints the same under "%.0f" and
 * "%.10g" (up to ten digits) as its digits: no printf needed. */
static bool add_integral(struct bl_buf *b, double v, int max_digits)
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
	p = put_digits(p, n, 0);
	if (tmp + sizeof tmp - p > max_digits)
		return false;
	if (neg)
		*--p = '-';
	bl_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
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

/* Seconds are formatted once and reused: rows come once a second. */
/* The date and hour of a second, as "YYYY-mm-ddTHH:" (UTC) or
 * "YYYY-mm-dd HH:" (local), kept for the hour it starts: rows come every
 * second or faster, and localtime_r (the time zone's rules) costs more
 * than the rest of a row. The hour's start is where the clock showed
 * HH:00:00, so the zone's offset (a whole number of minutes) holds
 * throughout, and minutes and seconds within it are arithmetic. */
struct hour_cache {
	bool valid;
	long long start;             /* first second of the hour */
	long long from;              /* the second it was worked out from */
	char prefix[24];
};

static bool hour_of(struct hour_cache *c, long long sec, bool utc)
{
	time_t tt = (time_t)sec;
	struct tm tm;

	/* not before the second it was worked out from: in a zone that
	 * moves by half an hour, the half hour before a change is another
	 * offset's */
	if (c->valid && sec >= c->from && sec - c->start < 3600)
		return true;
	if (!(utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm)))
		return false;
	strftime(c->prefix, sizeof c->prefix, utc ? "%Y-%m-%dT%H:" : "%Y-%m-%d %H:", &tm);
	c->start = sec - (tm.tm_min * 60 + (tm.tm_sec > 59 ? 59 : tm.tm_sec));
	c->from = sec;
	c->valid = true;
	return true;
}

static char *two_digits(char *p, long long v)
{
	*p++ = (char)('0' + v / 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

void bl_csv_time(struct bl_buf *b, double epoch, bool utc)
{
	static struct hour_cache cache[2];
	struct hour_cache *c = &cache[utc ? 0 : 1];
	int digits = utc ? 3 : 6;
	long long unit = utc ? 1000 : 1000000;
	long long t, sec, frac, in_hour;
	char tmp[48], *p;

	if (!(fabs(epoch) < 1e12))   /* NaN, infinite, or no date a row can have */
		return;
	t = (long long)floor(epoch * (double)unit + 0.5);
	sec = t >= 0 ? t / unit : -((-t + unit - 1) / unit);
	frac = t - sec * unit;
	if (!hour_of(c, sec, utc))
		return;
	in_hour = sec - c->start;
	p = two_digits(tmp, in_hour / 60);
	*p++ = ':';
	p = two_digits(p, in_hour % 60);
	*p++ = '.';
	for (int i = digits - 1; i >= 0; i--, frac /= 10)
		p[i] = (char)('0' + frac % 10);
	p += digits;
	if (utc)
		*p++ = 'Z';
	bl_buf_adds(b, c->prefix);
	bl_buf_add(b, tmp, (size_t)(p - tmp));
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
