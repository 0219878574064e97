/* labels.c - the labels of a cell's rows (labels.h). */
#include <stdio.h>
#include <string.h>

#include "host/labels.h"

void bl_labels_init(struct bl_labels *l)
{
	memset(l, 0, sizeof *l);
	snprintf(l->cycle_kind, sizeof l->cycle_kind, "other");
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
