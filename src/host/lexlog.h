/* lexlog.h - a cell's level-1 rows in a Lexcelon log (the Python
 * library's batlab-log_<playlist>.csv, docs/results.md).
 *
 * lua/batlab/lexcelon_log.lua opens the log and writes its header and the
 * level-2 rows (one per finished step); the level-1 rows come with the
 * samples, one every reporting period for every cell, and are written
 * here in C from the sample path, so that a sample needs no Lua. They go
 * into the log's own stdio FILE (the Lua file's), in the order they are
 * written with what Lua writes there.
 *
 * Which samples give a row (what batlab.recording did in Lua before):
 * none before step 1; then one every `period` s of sample time on a grid
 * from the first row (with reports every second and a period of 2.5 s
 * rows come 3, 2, 3, 2 s apart), the grid starting again after a gap; and
 * the first sample after an impedance measurement, which carries it.
 *
 * The fields follow lexcelon_log.lua's L1_SPEC with the rules of
 * host/csv.h (those of batlab.csv_line): cell, serial and channel (given
 * already formatted), timestamp, V, |A|, degC, ohms, J and C (magnitudes
 * since the step began, plus what a resumed step had done before), the
 * test state (the step's name, "IDLE" before any), 8 empty level-2
 * fields, VCC, the operating and software setpoints and the duty (raw).
 */
#ifndef BL_LEXLOG_H
#define BL_LEXLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "device/channel.h"

struct bl_lexlog;

struct bl_lexlog_opts {
	const char *prefix;          /* the first three fields as CSV, without a comma after */
	const char *path;            /* the log's, for messages */
	double period;               /* s between rows (> 0) */
	double t0;                   /* loop seconds of Test Time 0 */
	/* The timestamp of a sample at loop time t: (epoch + t) - t0 with
	 * the run's start epoch, else start_time + (t - t0) with the log's;
	 * the additions in Lua's order, for the same last digit. */
	bool have_epoch;
	double epoch, start_time;
	bool utc;                    /* the date in UTC, else local time */
	bool flush_every_row;        /* else the log's writer flushes (at step ends) */
	/* The log's FILE now, NULL once the log was closed: it belongs to
	 * the log's writer, which may close it under us. */
	FILE *(*file)(void *ud);
	void *ud;
};

/* NULL when out of memory. */
struct bl_lexlog *bl_lexlog_new(const struct bl_lexlog_opts *o);
void bl_lexlog_free(struct bl_lexlog *x);
/* The step the rows are in (a negative number leaves it) and its name,
 * the test state (NULL leaves it). */
void bl_lexlog_state(struct bl_lexlog *x, int step, const char *name);
/* On the next row, which is written at the next sample from step 1 on. */
void bl_lexlog_impedance(struct bl_lexlog *x, double ohms);
/* What a step resumed after a crash had done before (|Ah|, |Wh|), added
 * to its rows; 0, 0 when the step ends. */
void bl_lexlog_carry(struct bl_lexlog *x, double ah, double wh);
/* A sample: its row if one is due. BL_OK, or the error with "path: what"
 * in err (the row is lost; the next ones are tried all the same). */
int bl_lexlog_sample(struct bl_lexlog *x, const struct bl_sample *s, char *err, size_t errlen);
/* Rows written (tried) so far. */
uint64_t bl_lexlog_rows(const struct bl_lexlog *x);

#endif
