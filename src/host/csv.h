/* csv.h - CSV fields formatted in C, for the time-series recorder and for
 * batlab.csv_line (one set of rules for every CSV file batlab writes).
 *
 *   numbers   fixed ("%.Nf"), whole ("%.0f" of the value rounded half
 *             up) or general ("%.10g"); NaN and infinities give an empty
 *             field; a negative value that prints as zero loses its sign
 *   text      quoted when it holds , " CR or LF or starts or ends with a
 *             space (quotes doubled); text a spreadsheet would run as a
 *             formula (it starts with = + - @ TAB or CR and is not a
 *             decimal number) is quoted with a ' in front: "'=A1"
 *   times     epoch seconds as ISO-8601 UTC with milliseconds
 *             ("2000-01-01T00:00:01.943Z") or local time with
 *             microseconds ("2000-01-01 00:00:01.943000")
 *
 * Fields go into a growable buffer; a failed allocation sets `oom` and
 * later additions do nothing.
 */
#ifndef BL_CSV_H
#define BL_CSV_H

#include <stdbool.h>
#include <stddef.h>

struct bl_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

void bl_buf_free(struct bl_buf *b);
/* Grow b and add: the slow path of bl_buf_add. */
void bl_buf_grow_add(struct bl_buf *b, const char *s, size_t n);
void bl_buf_adds(struct bl_buf *b, const char *s);

/* Rows are built a few bytes at a time (a field, a comma): adding to a
 * buffer with room is inline, and short copies are a loop, not a call. */
static inline void bl_buf_add(struct bl_buf *b, const char *s, size_t n)
{
	if (b->oom || b->len + n + 1 > b->cap) {
		bl_buf_grow_add(b, s, n);
		return;
	}
	if (n <= 16) {
		for (size_t i = 0; i < n; i++)
			b->p[b->len + i] = s[i];
	} else {
		__builtin_memcpy(b->p + b->len, s, n);
	}
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void bl_buf_addc(struct bl_buf *b, char c)
{
	bl_buf_add(b, &c, 1);
}

/* A row written in place: one check for the room of all its fields, then
 * each field at a cursor (the bl_csv_put_* below), then bl_buf_done with
 * where the cursor ended. bl_buf_room: where to write n bytes more, NULL
 * when out of memory. */
char *bl_buf_grow_room(struct bl_buf *b, size_t n);
static inline char *bl_buf_room(struct bl_buf *b, size_t n)
{
	if (b->oom || b->len + n + 1 > b->cap)
		return bl_buf_grow_room(b, n);
	return b->p + b->len;
}

static inline void bl_buf_done(struct bl_buf *b, char *end)
{
	b->len = (size_t)(end - b->p);
	b->p[b->len] = '\0';
}

/* The most a field written at a cursor may take: a fixed number (the
 * "%.15f" of the largest double is 326 bytes), a date-time, a whole
 * number. */
#define BL_CSV_FIXED_ROOM 360
#define BL_CSV_TIME_ROOM 64
#define BL_CSV_UINT_ROOM 24

/* The three kinds of date-time: bl_csv_time's two and the UTC of
 * Lexcelon's log ("YYYY-mm-dd HH:MM:SS.ffffff"). */
enum bl_csv_clock { BL_CSV_ISO_UTC, BL_CSV_LOCAL, BL_CSV_UTC_US };

/* Fields at a cursor p with the room above; each returns the end of what
 * it wrote (p itself for an empty field). */
char *bl_csv_put_fixed(char *p, double v, int prec);
char *bl_csv_put_time(char *p, double epoch, enum bl_csv_clock clock);
/* epoch in units (1e3: milliseconds) to the nearest, as the times are
 * written: half up */
long long bl_csv_round_units(double epoch, double unit);
static inline char *bl_csv_put_uint(char *p, unsigned long long n);
/* bl_csv_put_fixed with a constant prec (0-8), inline: a row's numbers
 * are most of its cost, and most of a number's is what a call, the
 * precision's dispatch and its divisions add. */
static inline char *bl_csv_put_fixed_n(char *p, double v, int prec);

/* ---- inline internals of the number fields ---- */

/* "00" "01" ... "99" */
extern const char bl_csv_digit_pairs[201];
/* Ties, |v| >= 1e9, prec > 8, NaN and infinities. */
char *bl_csv_put_fixed_rare(char *p, double v, int prec);

static inline void bl_csv_pair(char *p, unsigned d)
{
	__builtin_memcpy(p, bl_csv_digit_pairs + 2 * d, 2);
}

/* How many digits u has (at least one). */
static inline int bl_csv_digit_count(unsigned long long u)
{
	int n = 1;

	while (u >= 10000) {
		u /= 10000;
		n += 4;
	}
	return n + (u >= 10) + (u >= 100) + (u >= 1000);
}

/* u's digits, two a step from the end; most whole parts in rows are
 * under 100: those first. */
static inline char *bl_csv_put_uint(char *p, unsigned long long u)
{
	char *end, *q;

	if (u < 10) {
		*p = (char)('0' + u);
		return p + 1;
	}
	if (u < 100) {
		bl_csv_pair(p, (unsigned)u);
		return p + 2;
	}
	end = q = p + bl_csv_digit_count(u);
	while (u >= 100) {
		q -= 2;
		bl_csv_pair(q, (unsigned)(u % 100));
		u /= 100;
	}
	if (u >= 10)
		bl_csv_pair(q - 2, (unsigned)u);
	else
		q[-1] = (char)('0' + u);
	return end;
}

/* n / 10^prec "." its last prec digits; prec is a constant where this
 * is inlined, so the divisions are multiplications. */
static inline __attribute__((always_inline)) char *bl_csv_put_scaled(char *p, unsigned long long n,
                                                                     int prec)
{
	static const unsigned p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
	                                 100000000};
	unsigned long long whole = n / p10[prec];
	unsigned frac = (unsigned)(n - whole * p10[prec]);
	char *q;

	p = bl_csv_put_uint(p, whole);
	if (prec == 0)
		return p;
	*p = '.';
	q = p + 1 + prec;
	for (int k = prec; k >= 2; k -= 2) {
		q -= 2;
		bl_csv_pair(q, frac % 100);
		frac /= 100;
	}
	if (prec & 1)
		q[-1] = (char)('0' + frac);
	return p + 1 + prec;
}

/* |v| x 10^prec rounded to an integer as "%.Nf" rounds it (|v| < 1e9,
 * prec <= 8: under 1e17): the product truncated, plus one when the
 * fraction is over a half. The product is off the exact decimal by a
 * few units in its last place (x x 2^-52 each): only a value that close
 * to a half can round the other way, and those are left to be rounded on
 * the exact binary value, as printf does (false: bl_csv_put_fixed_rare;
 * a margin of x x 1e-12 is thousands of times that error; also false for
 * NaN, infinities and |v| >= 1e9). No libm: the conversions are one
 * instruction each way, the fraction exact. Also what the database's
 * binary rows are made of (host/dbbinary.c): the same digits. */
static inline __attribute__((always_inline)) bool bl_csv_fixed_units(double ax, int prec,
                                                                    unsigned long long *units)
{
	static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	double x, d, margin;
	long long n;

	if (!(ax < 1e9))
		return false;
	x = ax * scale[prec];
	n = (long long)x;
	d = (x - (double)n) - 0.5;          /* the fraction, from a half */
	margin = 1e-12 * (x > 1 ? x : 1);
	if (d < margin && d > -margin)
		return false;
	*units = (unsigned long long)n + (d > 0);
	return true;
}

/* "%.Nf" without printf (bl_csv_fixed_units). */
static inline __attribute__((always_inline)) char *bl_csv_put_fixed_n(char *p, double v, int prec)
{
	unsigned long long n;

	if (!bl_csv_fixed_units(__builtin_fabs(v), prec, &n))  /* NaN (an empty field) and infinities too */
		return __builtin_isnan(v) ? p : bl_csv_put_fixed_rare(p, v, prec);
	/* a negative value that rounds to zero is written without its sign */
	if (v < 0 && n != 0)
		*p++ = '-';
	return bl_csv_put_scaled(p, n, prec);
}

void bl_csv_fixed(struct bl_buf *b, double v, int prec);
void bl_csv_whole(struct bl_buf *b, double v);
void bl_csv_general(struct bl_buf *b, double v);
void bl_csv_text(struct bl_buf *b, const char *s, size_t n);
void bl_csv_time(struct bl_buf *b, double epoch, bool utc);

#endif
