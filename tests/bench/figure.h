/* figure.h - one line per figure of `make bench`, for its table
 * (tests/bench/table.sh): what was measured, the value, its target and,
 * where a baseline was measured in the same run, how many times better
 * than the baseline this build is (0: no baseline). The benches' other
 * output is detail for the log. */
#ifndef BL_BENCH_FIGURE_H
#define BL_BENCH_FIGURE_H

#include <stdio.h>

static inline void bench_figure(const char *what, const char *measured, const char *target, double ratio)
{
	if (ratio > 0)
		printf("FIGURE\t%s\t%s\t%s\t%.1fx\n", what, measured, target, ratio);
	else
		printf("FIGURE\t%s\t%s\t%s\t\n", what, measured, target);
	fflush(stdout);
}

#endif
