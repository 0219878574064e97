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

void bl_buf_add(struct bl_buf *b, const char *s, size_t n)
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

void bl_buf_addc(struct bl_buf *b, char c)
{
	bl_buf_add(b, &c, 1);
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
void bl_csv_fixed(struct bl_buf *b, double v, int prec)
{
	static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	char tmp[48], *p = tmp + sizeof tmp;
	double x, r;
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
	r = floor(x + 0.5);
	/* The product is off the exact decimal by a few units in its last
	 * place (|x| x 2^-52 each): only a value that close to a half can
	 * round the other way. A margin of |x| x 1e-12 is thousands of times
	 * that, and still sends next to nothing to snprintf (a margin
	 * proportional to 1e-6 sent every value over a million there). */
	if (fabs(fabs(x - floor(x)) - 0.5) < 1e-12 * (fabs(x) > 1 ? fabs(x) : 1)) {
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
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
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
void bl_csv_time(struct bl_buf *b, double epoch, bool utc)
{
	static long long last_sec[2] = {-1, -1};
	static char last_text[2][32];
	int k = utc ? 0 : 1;
	long long unit = utc ? 1000 : 1000000;
	long long t = (long long)floor(epoch * (double)unit + 0.5);
	long long sec = t >= 0 ? t / unit : -((-t + unit - 1) / unit);
	long long frac = t - sec * unit;
	char tmp[48];
	if (!isfinite(epoch))
		return;

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
	bl_buf_adds(b, tmp);
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
