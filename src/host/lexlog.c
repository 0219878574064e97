/* lexlog.c - a cell's level-1 rows in a Lexcelon log (lexlog.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bl.h"
#include "host/csv.h"
#include "host/lexlog.h"

/* A sample this close before the due time is on time: report times are
 * sums of doubles (lexcelon_log's Lua had the same slack). */
#define DUE_SLACK 1e-6

struct bl_lexlog {
	struct bl_lexlog_opts o;
	char *prefix, *path, *state;   /* copies; state NULL: "IDLE" */
	size_t prefix_len;
	struct bl_buf state_text;      /* the state as CSV and the commas after the
	                                * level-2 fields: it changes with a step */
	int step;
	bool have_due, have_z;
	double due, z;
	double carry_ah, carry_wh;
	uint64_t rows;
	struct bl_buf row;
};

static char *dup_text(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void state_text(struct bl_lexlog *x)
{
	const char *state = x->state ? x->state : "IDLE";

	x->state_text.len = 0;
	bl_csv_text(&x->state_text, state, strlen(state));
	bl_buf_adds(&x->state_text, ",,,,,,,,,");       /* the 8 level-2 fields */
}

struct bl_lexlog *bl_lexlog_new(const struct bl_lexlog_opts *o)
{
	struct bl_lexlog *x = calloc(1, sizeof *x);

	if (!x)
		return NULL;
	x->o = *o;
	x->prefix = dup_text(o->prefix ? o->prefix : "");
	x->path = dup_text(o->path ? o->path : "(Lexcelon log)");
	if (!x->prefix || !x->path) {
		bl_lexlog_free(x);
		return NULL;
	}
	x->o.prefix = x->prefix;
	x->o.path = x->path;
	x->prefix_len = strlen(x->prefix);
	state_text(x);
	return x;
}

void bl_lexlog_free(struct bl_lexlog *x)
{
	if (!x)
		return;
	free(x->prefix);
	free(x->path);
	free(x->state);
	bl_buf_free(&x->row);
	bl_buf_free(&x->state_text);
	free(x);
}

void bl_lexlog_state(struct bl_lexlog *x, int step, const char *name)
{
	if (step >= 0)
		x->step = step;
	if (name) {
		char *s = dup_text(name);
		if (s) {            /* out of memory: the old name stays */
			free(x->state);
			x->state = s;
			state_text(x);
		}
	}
}

void bl_lexlog_impedance(struct bl_lexlog *x, double ohms)
{
	x->z = ohms;
	x->have_z = true;
}

void bl_lexlog_carry(struct bl_lexlog *x, double ah, double wh)
{
	x->carry_ah = ah;
	x->carry_wh = wh;
}

uint64_t bl_lexlog_rows(const struct bl_lexlog *x)
{
	return x->rows;
}

/* "YYYY-mm-dd HH:MM:SS.ffffff" in UTC, as lexcelon_log.timestamp(epoch,
 * true) makes it (bl_csv_time's UTC form is ISO 8601 with milliseconds):
 * the hour cache's for dates from 1970 to 5138 (four digits of year, no
 * sign, nothing to quote), strftime's otherwise. */
static void utc_stamp(struct bl_buf *b, double epoch)
{
	long long us = (long long)floor(epoch * 1e6 + 0.5);
	long long sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	time_t tt = (time_t)sec;
	struct tm tm;
	char text[64], *p;
	size_t n;

	if (epoch >= 0 && epoch < 1e11) {
		p = bl_buf_room(b, BL_CSV_TIME_ROOM);
		if (p)
			bl_buf_done(b, bl_csv_put_time(p, epoch, BL_CSV_UTC_US));
		return;
	}
	if (!isfinite(epoch) || !gmtime_r(&tt, &tm))
		return;
	n = strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(text + n, sizeof text - n, ".%06lld", us - sec * 1000000);
	bl_csv_text(b, text, strlen(text));
}

/* The row: the prefix and the timestamp, then the rest in place after
 * one check for room. */
static void format_row(struct bl_lexlog *x, const struct bl_sample *s)
{
	struct bl_buf *b = &x->row;
	double stamp = x->o.have_epoch ? x->o.epoch + s->time - x->o.t0
	                               : x->o.start_time + (s->time - x->o.t0);
	char *p;

	b->len = 0;
	bl_buf_add(b, x->prefix, x->prefix_len);            bl_buf_addc(b, ',');
	if (x->o.utc)
		utc_stamp(b, stamp);
	p = bl_buf_room(b, BL_CSV_TIME_ROOM + 7 * BL_CSV_FIXED_ROOM + x->state_text.len +
	                   3 * BL_CSV_UINT_ROOM + 8);
	if (!p || x->state_text.oom) {
		b->oom = true;
		return;
	}
	if (!x->o.utc)
		p = bl_csv_put_time(p, stamp, BL_CSV_LOCAL);
	*p++ = ',';
	p = bl_csv_put_fixed_n(p, s->voltage, 4);             *p++ = ',';
	p = bl_csv_put_fixed_n(p, fabs(s->current), 4);       *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->temp_c, 4);              *p++ = ',';
	p = bl_csv_put_fixed_n(p, x->have_z ? x->z : NAN, 4); *p++ = ',';
	/* joules and coulombs, from Wh and Ah as the Lua did it */
	p = bl_csv_put_fixed_n(p, (fabs(s->energy_wh) + x->carry_wh) * 3600, 4); *p++ = ',';
	p = bl_csv_put_fixed_n(p, (fabs(s->charge_ah) + x->carry_ah) * 3600, 4); *p++ = ',';
	memcpy(p, x->state_text.p, x->state_text.len);
	p += x->state_text.len;
	p = bl_csv_put_fixed_n(p, s->vcc, 4);                 *p++ = ',';
	p = bl_csv_put_uint(p, s->op_raw);                  *p++ = ',';
	p = bl_csv_put_uint(p, s->sp_raw);                  *p++ = ',';
	if (s->have_duty)
		p = bl_csv_put_uint(p, s->duty);
	*p++ = '\n';
	bl_buf_done(b, p);
}

/* Is this sample a row? Moves the grid on when it is on time. */
static bool due(struct bl_lexlog *x, const struct bl_sample *s)
{
	bool on_time = !x->have_due || s->time >= x->due - DUE_SLACK;
	double next;

	if (x->step == 0 || !(on_time || x->have_z))
		return false;
	if (on_time) {
		next = (x->have_due ? x->due : s->time) + x->o.period;
		/* a gap (a stalled channel) starts the grid again */
		x->due = next > s->time + DUE_SLACK ? next : s->time + x->o.period;
		x->have_due = true;
	}
	return true;
}

int bl_lexlog_sample(struct bl_lexlog *x, const struct bl_sample *s, char *err, size_t errlen)
{
	FILE *f;

	if (!due(x, s))
		return BL_OK;
	format_row(x, s);
	x->have_z = false;
	x->rows++;
	f = x->o.file(x->o.ud);
	if (!f) {
		snprintf(err, errlen, "%s: log is closed", x->path);
		return BL_ERR_STATE;
	}
	if (x->row.oom) {
		snprintf(err, errlen, "%s: out of memory formatting a row", x->path);
		return BL_ERR_MEM;
	}
	/* unlocked: the log's FILE is only used from the loop's thread */
	if (fwrite_unlocked(x->row.p, 1, x->row.len, f) != x->row.len ||
	    (x->o.flush_every_row && fflush(f) != 0)) {
		snprintf(err, errlen, "%s: %s", x->path, strerror(errno));
		return BL_ERR_IO;
	}
	return BL_OK;
}
