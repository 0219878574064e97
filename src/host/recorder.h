/* recorder.h - the time series of a cell: every sample of its channel
 * becomes one row of its CSV file, whatever the procedure does.
 *
 * A recorder listens to one channel (device/channel.h) from open to close
 * and writes each sample with the labels it holds at that moment (step
 * number and name, cycle and its kind) and, on the first row after one was
 * measured, the impedance. Procedures and the step library only change
 * the labels; they never write rows.
 *
 * Columns (docs/results.md): Test Time / s, Step Time / s, Cycle, Cycle
 * Kind, Step, Step Name, Mode, Voltage / V, Current / A, Temperature /
 * degC, Charge / Ah, Energy / Wh, Impedance / Ohm, VCC / V, Date Time,
 * Errors.
 *
 * Which samples become rows is the recording policy (struct
 * bl_record_policy): every sample by default; with thresholds, a sample
 * whose time, voltage or current moved at least that far from the last
 * row's, plus always the first and last sample of each label (a step) and
 * every sample whose mode or error bits changed, and the one after an
 * impedance measurement. The stats count every sample, written or not.
 *
 * Rows are buffered and flushed at every label change (a step's start and
 * end), at close, and otherwise at least once a second of real time (in
 * real-time runs at every row): a crash loses at most about a second.
 * A path ending in ".gz" is written gzip-compressed (host/outfile.h), the
 * same rows, each flush a zlib sync flush.
 */
#ifndef BL_RECORDER_H
#define BL_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/channel.h"

struct bl_recorder;

/* Thresholds since the last row written; 0 turns one off, all 0: every
 * sample is a row. */
struct bl_record_policy {
	double every;                /* s of test time */
	double dv;                   /* |delta V| */
	double di;                   /* |delta A| */
};

struct bl_recorder_opts {
	double t0;                   /* loop seconds of the run's start (Test Time 0) */
	double epoch;                /* wall-clock epoch seconds at t0 (Date Time) */
	bool flush_every_row;        /* real-time runs */
	struct bl_record_policy policy;
	/* Every sample after its row is written (may be NULL). */
	void (*on_sample)(struct bl_recorder *r, const struct bl_sample *s, void *ud);
	/* A write failed, or the channel went away: once per kind. */
	void (*on_error)(struct bl_recorder *r, int status, const char *msg, void *ud);
	void *ud;
};

struct bl_recorder_stats {
	uint64_t rows;                   /* written */
	uint64_t samples;                /* seen */
	bool have_charge;
	double charge_min, charge_max;   /* |Ah| over every sample */
	int write_status;                /* BL_OK, or the first write error */
};

/* Open `path` for appending (the header is the caller's; ".gz": a new
 * gzip member) and listen to
 * ch; a NULL path writes no file (on_sample still sees every sample).
 * NULL with a message in err. */
struct bl_recorder *bl_recorder_open(struct bl_channel *ch, const char *path,
                                     const struct bl_recorder_opts *o, char *err, size_t errlen);
/* Stop listening, flush, close the file. Returns BL_OK or the first write
 * error. NULL ok. */
int bl_recorder_close(struct bl_recorder *r);

/* Labels for the rows from now on; NULL text leaves that label alone,
 * a negative number too. A change flushes what was written before it. */
void bl_recorder_label(struct bl_recorder *r, int step, const char *step_name, int cycle,
                       const char *cycle_kind);
/* The current step was resumed after a crash: its rows carry on from
 * what it had done (step time in s, signed Ah and Wh added to theirs)
 * until a label with another step number. */
void bl_recorder_carry(struct bl_recorder *r, double step_time, double charge_ah, double energy_wh);
/* The policy for the samples from now on (the last sample held back
 * under the old one is written first). */
void bl_recorder_policy(struct bl_recorder *r, const struct bl_record_policy *p);
/* The next row carries this impedance (ohms). */
void bl_recorder_impedance(struct bl_recorder *r, double ohms);
int bl_recorder_flush(struct bl_recorder *r);
void bl_recorder_stats(const struct bl_recorder *r, struct bl_recorder_stats *out);
/* Still listening (false once the channel went away or closed). */
bool bl_recorder_listening(const struct bl_recorder *r);

#endif
