/* dbfeed.c - one channel's samples as rows of batlab.sample_data (db.h),
 * which the view batlab.samples shows: the same samples, numbers and
 * labels as the cell's CSV time series (recorder.h), each with the cell's
 * number in the run (bl_db_series) and its sequence number in the cell,
 * the row's key. Spooled in COPY's binary format: sent as they are. */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "host/labels.h"
#include "host/db.h"
#include "host/db_parts.h"

#define LABEL_MAX 64

struct bl_dbfeed {
	struct bl_chan_listener listener;   /* first: the listener is the feed */
	struct bl_dbsink *sink;
	long long series;                   /* the run's cell (bl_db_series) */
	double t0, epoch;
	struct bl_labels lb;
	uint64_t seq;
	struct bl_carry carry;              /* a resumed step's, as the CSV's */
	struct bl_buf row;
};

/* The row as a binary tuple: the numbers to the CSV's decimals, as the
 * server would read them from their text (bl_dbbin_fixed). */
static void format_row(struct bl_dbfeed *f, const struct bl_sample *s)
{
	struct bl_buf *b = &f->row;
	const char *mode = bl_mode_name(s->mode);
	double t = s->time - f->t0, step_time = s->step_time, ah = s->charge_ah, wh = s->energy_wh;
	char num[16];

	bl_carry_apply(&f->carry, s->step_seq, &step_time, &ah, &wh);
	if (!mode) {
		snprintf(num, sizeof num, "%u", s->mode);
		mode = num;
	}
	b->len = 0;
	bl_dbbin_fields(b, 17);
	bl_dbbin_int8(b, f->series);
	bl_dbbin_int8(b, (int64_t)++f->seq);
	bl_dbbin_time(b, f->epoch + t);
	bl_dbbin_fixed(b, t, 3);
	bl_dbbin_fixed(b, step_time, 3);
	bl_dbbin_int4(b, f->lb.cycle);
	bl_dbbin_text(b, f->lb.cycle_kind);
	bl_dbbin_int4(b, f->lb.step);
	bl_dbbin_text(b, f->lb.step_name);
	bl_dbbin_text(b, mode);
	bl_dbbin_fixed(b, s->voltage, 4);
	bl_dbbin_fixed(b, s->current, 4);
	bl_dbbin_fixed(b, s->temp_c, 2);
	bl_dbbin_fixed(b, ah, 6);
	bl_dbbin_fixed(b, wh, 6);
	bl_dbbin_fixed(b, s->vcc, 3);
	bl_dbbin_int4(b, (int32_t)s->error);
}

static void on_sample(struct bl_chan_listener *l, const struct bl_sample *s, int status)
{
	struct bl_dbfeed *f = (struct bl_dbfeed *)(void *)l;

	if (status != BL_OK || !s)
		return;
	format_row(f, s);
	if (!f->row.oom)
		bl_dbsink_binrow(f->sink, "sample_data", f->row.p, f->row.len);
}

struct bl_dbfeed *bl_dbfeed_open(struct bl_dbsink *s, struct bl_channel *ch, const char *run_id,
                                 const char *cell, double t0, double epoch)
{
	struct bl_dbfeed *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	f->sink = s;
	/* 0: no digest (out of memory, or an OpenSSL without MD5): no feed,
	 * rather than every cell's samples under one number */
	f->series = bl_db_series(run_id, cell);
	if (f->series == 0) {
		free(f);
		return NULL;
	}
	f->t0 = t0;
	f->epoch = epoch;
	bl_labels_init(&f->lb);
	f->listener.fn = on_sample;
	bl_channel_listen(ch, &f->listener);
	return f;
}

void bl_dbfeed_label(struct bl_dbfeed *f, int step, const char *step_name, int cycle,
                     const char *cycle_kind)
{
	if (bl_labels_set(&f->lb, step, step_name, cycle, cycle_kind))
		bl_carry_set(&f->carry, 0, 0, 0);
}

void bl_dbfeed_carry(struct bl_dbfeed *f, double step_time, double charge_ah, double energy_wh)
{
	bl_carry_set(&f->carry, step_time, charge_ah, energy_wh);
}

void bl_dbfeed_continue(struct bl_dbfeed *f, uint64_t rows)
{
	f->seq = rows;
}

uint64_t bl_dbfeed_rows(const struct bl_dbfeed *f)
{
	return f->seq;
}

void bl_dbfeed_close(struct bl_dbfeed *f)
{
	if (!f)
		return;
	if (f->listener.ch)
		bl_channel_unlisten(&f->listener);
	bl_buf_free(&f->row);
	free(f);
}
