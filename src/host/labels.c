/* labels.c - the labels of a cell's rows (labels.h). */
#include <stdio.h>
#include <string.h>

#include "host/labels.h"

void bl_labels_init(struct bl_labels *l)
{
	memset(l, 0, sizeof *l);
	snprintf(l->cycle_kind, sizeof l->cycle_kind, "other");
}

void bl_carry_set(struct bl_carry *c, double time, double ah, double wh)
{
	c->time = time;
	c->ah = ah;
	c->wh = wh;
	c->seq = c->last_seq;
}

void bl_carry_apply(struct bl_carry *c, unsigned step_seq, double *time, double *ah, double *wh)
{
	if (step_seq != c->seq) {
		*time += c->time;
		*ah += c->ah;
		*wh += c->wh;
	}
	c->last_seq = step_seq;
}

bool bl_labels_set(struct bl_labels *l, int step, const char *step_name, int cycle,
                   const char *cycle_kind)
{
	bool changed = step >= 0 && step != l->step;

	if (step >= 0)
		l->step = step;
	if (cycle >= 0)
		l->cycle = cycle;
	if (step_name)
		snprintf(l->step_name, sizeof l->step_name, "%s", step_name);
	if (cycle_kind)
		snprintf(l->cycle_kind, sizeof l->cycle_kind, "%s", cycle_kind);
	return changed;
}
