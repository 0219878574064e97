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
char *bl_csv_put_uint(char *p, unsigned long long n);

void bl_csv_fixed(struct bl_buf *b, double v, int prec);
void bl_csv_whole(struct bl_buf *b, double v);
void bl_csv_general(struct bl_buf *b, double v);
void bl_csv_text(struct bl_buf *b, const char *s, size_t n);
void bl_csv_time(struct bl_buf *b, double epoch, bool utc);

#endif
