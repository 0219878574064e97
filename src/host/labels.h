/* labels.h - what a cell's rows are labelled with (step number and name,
 * cycle and its kind), for every sink of its samples: the time series
 * (recorder.c), the database (dbfeed.c) and the telemetry (mqttfeed.c). */
#ifndef BL_LABELS_H
#define BL_LABELS_H

#include <stdbool.h>

#define BL_LABEL_MAX 64

struct bl_labels {
	int step, cycle;
	char step_name[BL_LABEL_MAX], cycle_kind[BL_LABEL_MAX];
};

/* Step 0, cycle 0 of kind "other", no step name. */
void bl_labels_init(struct bl_labels *l);
/* Change what is given: a negative number or a NULL text leaves that
 * label as it is. Returns whether the step number changed. */
bool bl_labels_set(struct bl_labels *l, int step, const char *step_name, int cycle,
                   const char *cycle_kind);

/* A step resumed after a crash goes on from what it had done before it
 * (its step time, charge and energy, signed as the rows): every sink adds
 * it to the samples of that step, not to the reports of the step before
 * that may still come (recorder.h, bl_recorder_carry). */
struct bl_carry {
	double time, ah, wh;
	unsigned seq, last_seq;     /* the carry applies from a later step_seq */
};

void bl_carry_set(struct bl_carry *c, double time, double ah, double wh);
/* The sample's step time, charge and energy with the carry; remembers
 * its step_seq. */
void bl_carry_apply(struct bl_carry *c, unsigned step_seq, double *time, double *ah, double *wh);

#endif
