/* recorder.c - a cell's time series, one row per sample (recorder.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/regs.h"
#include "host/csv.h"
#include "host/labels.h"
#include "host/outfile.h"
#include "host/recorder.h"

#define MOD "recorder"
#define FLUSH_US 1000000u

struct bl_recorder {
	struct bl_chan_listener listener;   /* first: the listener is the recorder */
	struct bl_recorder_opts o;
	struct bl_outfile *f;                /* cells/<name>.csv or .csv.gz */
	char path[512];
	uint64_t last_flush_us;
	bool dirty;
	struct bl_labels lb;
	/* What changes only with a label or a mode, as CSV with the commas
	 * after: the cycle, its kind, the step and its name; the mode. */
	struct bl_buf labels_text, mode_text;
	int mode_of_text;                   /* the mode mode_text is of; -1: none */
	double impedance;                   /* NaN: none pending */
	/* A step resumed after a crash: what it had done before (its step
	 * time, signed charge and energy), added to its rows until the next
	 * step's label. */
	double carry_time, carry_ah, carry_wh;
	unsigned carry_seq, last_seq;       /* the carry applies from a later step_seq */
	struct bl_recorder_stats st;
	bool told_closed;
	/* the recording policy: the last row's values, the sample held back
	 * since (written when its step ends or the policy changes) */
	struct bl_record_policy pol;
	bool thin;                          /* a threshold is on */
	bool want_next;                     /* the next sample is a row */
	bool have_last, have_held;
	double row_t, row_v, row_i;
	uint16_t last_mode, last_error;
	struct bl_sample held;
};

static void fail(struct bl_recorder *r, int status, const char *what)
{
	char msg[600];

	if (r->st.write_status != BL_OK)
		return;
	r->st.write_status = status;
	snprintf(msg, sizeof msg, "%s: %s", r->path, what);
	BL_ERROR(MOD, "%s", msg);
	if (r->o.on_error)
		r->o.on_error(r, status, msg, r->o.ud);
}

int bl_recorder_flush(struct bl_recorder *r)
{
	char err[256];

	if (!r->f)
		return r->st.write_status;
	if (r->dirty && bl_outfile_flush(r->f, err, sizeof err) != 0)
		fail(r, BL_ERR_IO, err);
	r->dirty = false;
	r->last_flush_us = bl_clock_monotonic_us();
	return r->st.write_status;
}

static void labels_text(struct bl_recorder *r)
{
	struct bl_buf *b = &r->labels_text;

	b->len = 0;
	bl_csv_whole(b, r->lb.cycle);                  bl_buf_addc(b, ',');
	bl_csv_text(b, r->lb.cycle_kind, strlen(r->lb.cycle_kind)); bl_buf_addc(b, ',');
	bl_csv_whole(b, r->lb.step);                   bl_buf_addc(b, ',');
	bl_csv_text(b, r->lb.step_name, strlen(r->lb.step_name)); bl_buf_addc(b, ',');
}

static void mode_text(struct bl_recorder *r, uint16_t m)
{
	struct bl_buf *b = &r->mode_text;
	const char *mode = bl_mode_name(m);
	char num[16];

	if (!mode) {
		snprintf(num, sizeof num, "%u", m);
		mode = num;
	}
	b->len = 0;
	bl_csv_text(b, mode, strlen(mode));
	bl_buf_addc(b, ',');
	r->mode_of_text = m;
}

/* The most a row takes: the number fields at their most, the texts as
 * they are, the error names. */
static size_t row_room(const struct bl_recorder *r)
{
	return 10 * BL_CSV_FIXED_ROOM + BL_CSV_TIME_ROOM + r->labels_text.len + r->mode_text.len +
	       256 + 8;
}

/* The row at p, which has row_room(r) bytes; returns its end. */
static char *format_row(struct bl_recorder *r, const struct bl_sample *s, char *p)
{
	bool carry = s->step_seq != r->carry_seq; /* not a report of the step before */
	double t = s->time - r->o.t0;

	p = bl_csv_put_fixed_n(p, t, 3);                 *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->step_time + (carry ? r->carry_time : 0), 3); *p++ = ',';
	memcpy(p, r->labels_text.p, r->labels_text.len);
	p += r->labels_text.len;
	memcpy(p, r->mode_text.p, r->mode_text.len);
	p += r->mode_text.len;
	p = bl_csv_put_fixed_n(p, s->voltage, 4);        *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->current, 4);        *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->temp_c, 2);         *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->charge_ah + (carry ? r->carry_ah : 0), 6); *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->energy_wh + (carry ? r->carry_wh : 0), 6); *p++ = ',';
	p = bl_csv_put_fixed_n(p, r->impedance, 5);      *p++ = ',';
	p = bl_csv_put_fixed_n(p, s->vcc, 3);            *p++ = ',';
	p = bl_csv_put_time(p, r->o.epoch + t, BL_CSV_ISO_UTC); *p++ = ',';
	if (s->error) {
		/* the error bits by name, "|" between them ("0x1000" for a bit
		 * with no name): at most 255 bytes */
		bl_bits_format(BL_UK_ERROR, s->error, "|", p, 256);
		p += strlen(p);
	}
	*p++ = '\n';
	return p;
}

static void account(struct bl_recorder *r, const struct bl_sample *s)
{
	double q = fabs(s->charge_ah + (s->step_seq != r->carry_seq ? r->carry_ah : 0));

	r->st.samples++;
	if (!isfinite(q))
		return;
	if (!r->st.have_charge || q < r->st.charge_min)
		r->st.charge_min = q;
	if (!r->st.have_charge || q > r->st.charge_max)
		r->st.charge_max = q;
	r->st.have_charge = true;
}

static void write_row(struct bl_recorder *r, const struct bl_sample *s)
{
	char err[256], *p;

	if (s->mode != r->mode_of_text)
		mode_text(r, s->mode);
	if (r->labels_text.oom || r->mode_text.oom) {
		r->impedance = NAN;
		fail(r, BL_ERR_MEM, "out of memory formatting a row");
		return;
	}
	/* formatted where it goes: in the file's buffer */
	p = bl_outfile_room(r->f, row_room(r), err, sizeof err);
	if (p)
		bl_outfile_commit(r->f, format_row(r, s, p));
	r->impedance = NAN;             /* on this row, or lost with it */
	if (!p) {
		fail(r, BL_ERR_IO, err);
		return;
	}
	r->st.rows++;
	r->row_t = s->time;
	r->row_v = s->voltage;
	r->row_i = s->current;
	r->dirty = true;
	if (r->o.flush_every_row || bl_clock_monotonic_us() - r->last_flush_us >= FLUSH_US)
		bl_recorder_flush(r);
}

/* Under the policy: is this sample a row? (r->have_last: a sample was
 * seen before it.) */
static bool is_row(struct bl_recorder *r, const struct bl_sample *s)
{
	const struct bl_record_policy *p = &r->pol;

	if (!r->thin || r->want_next || !r->have_last || !isnan(r->impedance))
		return true;
	if (s->mode != r->last_mode || s->error != r->last_error)
		return true;
	return (p->every > 0 && s->time - r->row_t >= p->every - 1e-9) ||
	       (p->dv > 0 && fabs(s->voltage - r->row_v) >= p->dv) ||
	       (p->di > 0 && fabs(s->current - r->row_i) >= p->di);
}

/* The sample held back, written: its step ends (a label, a policy,
 * the close). */
static void write_held(struct bl_recorder *r)
{
	if (!r->have_held)
		return;
	r->have_held = false;
	if (r->f && r->st.write_status == BL_OK)
		write_row(r, &r->held);
}

static void take(struct bl_recorder *r, const struct bl_sample *s)
{
	bool row = is_row(r, s);

	account(r, s);
	r->want_next = false;
	r->have_last = true;
	r->last_mode = s->mode;
	r->last_error = s->error;
	if (row) {
		r->have_held = false;
		if (r->f && r->st.write_status == BL_OK)
			write_row(r, s);
	} else {
		r->held = *s;
		r->have_held = true;
	}
}

static void on_sample(struct bl_chan_listener *l, const struct bl_sample *s, int status)
{
	struct bl_recorder *r = (struct bl_recorder *)(void *)l;

	if (status != BL_OK) {
		if (status == BL_ERR_CLOSED && !r->told_closed) {
			r->told_closed = true;
			bl_recorder_flush(r);
			if (r->o.on_error)
				r->o.on_error(r, status, "the device went away", r->o.ud);
		}
		return;
	}
	take(r, s);
	r->last_seq = s->step_seq;
	if (r->o.on_sample)
		r->o.on_sample(r, s, r->o.ud);
}

struct bl_recorder *bl_recorder_open(struct bl_channel *ch, const char *path,
                                     const struct bl_recorder_opts *o, char *err, size_t errlen)
{
	struct bl_recorder *r = calloc(1, sizeof *r);

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->f = path ? bl_outfile_open(path, err, errlen) : NULL;
	if (path && !r->f) {
		free(r);
		return NULL;
	}
	r->o = *o;
	snprintf(r->path, sizeof r->path, "%s", path ? path : "(no file)");
	r->impedance = NAN;
	r->mode_of_text = -1;
	labels_text(r);
	r->st.write_status = BL_OK;
	r->last_flush_us = bl_clock_monotonic_us();
	r->listener.fn = on_sample;
	bl_recorder_policy(r, &o->policy);
	bl_channel_listen(ch, &r->listener);
	return r;
}

int bl_recorder_close(struct bl_recorder *r)
{
	char err[256];
	int st;

	if (!r)
		return BL_OK;
	bl_channel_unlisten(&r->listener);
	write_held(r);
	bl_recorder_flush(r);
	if (r->f && bl_outfile_close(r->f, err, sizeof err) != 0)
		fail(r, BL_ERR_IO, err);
	st = r->st.write_status;
	bl_buf_free(&r->labels_text);
	bl_buf_free(&r->mode_text);
	free(r);
	return st;
}

void bl_recorder_label(struct bl_recorder *r, int step, const char *step_name, int cycle,
                       const char *cycle_kind)
{
	/* the last sample under the old labels is a row, and the first
	 * under the new ones */
	write_held(r);
	r->want_next = true;
	bl_recorder_flush(r);
	if (bl_labels_set(&r->lb, step, step_name, cycle, cycle_kind))
		r->carry_time = r->carry_ah = r->carry_wh = 0.0;
	labels_text(r);
}

void bl_recorder_carry(struct bl_recorder *r, double step_time, double charge_ah, double energy_wh)
{
	r->carry_time = step_time;
	r->carry_ah = charge_ah;
	r->carry_wh = energy_wh;
	r->carry_seq = r->last_seq;
}

void bl_recorder_policy(struct bl_recorder *r, const struct bl_record_policy *p)
{
	write_held(r);
	r->pol = *p;
	r->thin = p->every > 0 || p->dv > 0 || p->di > 0;
}

void bl_recorder_impedance(struct bl_recorder *r, double ohms)
{
	r->impedance = ohms;
}

void bl_recorder_stats(const struct bl_recorder *r, struct bl_recorder_stats *out)
{
	*out = r->st;
}

bool bl_recorder_listening(const struct bl_recorder *r)
{
	return r->listener.ch != NULL;
}
