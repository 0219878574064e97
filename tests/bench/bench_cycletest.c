/* bench_cycletest.c - the stock cycle test on four virtual channels:
 * 2 warm-up + 3 measurement cycles, 60 s rests, 2 A, 1 s reporting, 2.5 Ah
 * cells, every sample recorded. Runs the real `batlab cycletest` as a
 * child, best of 3: wall time (monotonic clock; benchmarks may read it,
 * the program never does) and the child's CPU per sample (the rows of the
 * time series: one per sample). With BATLAB_BASELINE (a binary of the
 * commit before, `make bench` builds it) the same runs of the baseline,
 * alternated with ours so both see the same load, and the ratio. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "figure.h"

#define RUNS 3

struct result {
	double wall, cpu;        /* best of the runs */
	long samples;
	double hours;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double children_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Rows of the four time series, and the last row's test time (s). */
static void count_rows(const char *out, struct result *r)
{
	char cmd[1400];
	FILE *f;

	snprintf(cmd, sizeof cmd, "cat %s/cells/*.csv | grep -c '^[0-9]'; tail -n 1 %s/cells/A.csv | cut -d, -f1",
	         out, out);
	f = popen(cmd, "r");
	if (!f)
		return;
	if (fscanf(f, "%ld %lf", &r->samples, &r->hours) != 2)
		r->samples = 0;
	r->hours /= 3600.0;
	pclose(f);
}

/* Whether `bin run --help` lists the option (cycletest takes run's). */
static bool has_option(const char *bin, const char *opt)
{
	char cmd[1024], line[512];
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof cmd, "%s run --help 2>&1", bin);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f))
		if (strstr(line, opt))
			found = true;
	pclose(f);
	return found;
}

static int run_once(const char *bin, const char *dir, const char *tag, int run, struct result *r)
{
	char out[600], cmd[2048];
	double t0, c0, wall, cpu;

	snprintf(out, sizeof out, "%s/%s%d", dir, tag, run);
	/* the HTML report is not the sample path: left out where the build
	 * has the option (the baseline may not) */
	snprintf(cmd, sizeof cmd, "%s cycletest --settings %s/bench.json --sim --quiet%s --out %s A B C D > %s.log 2>&1",
	         bin, dir, has_option(bin, "--no-report") ? " --no-report" : "", out, out);
	c0 = children_cpu();
	t0 = now_s();
	if (system(cmd) != 0) {
		fprintf(stderr, "bench cycletest: %s failed (see %s.log)\n", bin, out);
		return -1;
	}
	wall = now_s() - t0;
	cpu = children_cpu() - c0;
	if (run == 0 || wall < r->wall)
		r->wall = wall;
	if (run == 0 || cpu < r->cpu)
		r->cpu = cpu;
	if (run == 0)
		count_rows(out, r);
	return 0;
}

static int write_settings(const char *dir)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof path, "%s/bench.json", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("{ \"cellPlaylistName\": \"bench\", \"numWarmupCycles\": 2, \"numMeasurementCycles\": 3,\n"
	      "  \"restPeriod\": 60, \"reportingPeriod\": 1, \"impedanceReportingPeriod\": 0,\n"
	      "  \"storageDischarge\": false, \"highVoltageCutoff\": 4.2, \"lowVoltageCutoff\": 2.8,\n"
	      "  \"chargeRate\": 2.0, \"dischargeRate\": 2.0, \"prechargeRate\": 2.0 }\n", f);
	return fclose(f);
}

int main(void)
{
	const char *bin = getenv("BATLAB") ? getenv("BATLAB") : "./batlab";
	const char *base = getenv("BATLAB_BASELINE");
	char dir[] = "/tmp/batlab-bench-XXXXXX";
	char cmd[600], measured[200], target[100];
	struct result now = {0}, old = {0};
	double us_now, us_old = 0;

	if (base && !*base)
		base = NULL;
	if (!mkdtemp(dir) || write_settings(dir) != 0)
		return 1;
	for (int run = 0; run < RUNS; run++) {
		if (run_once(bin, dir, "out", run, &now) != 0)
			return 1;
		if (base && run_once(base, dir, "base", run, &old) != 0)
			return 1;
	}
	us_now = now.samples ? now.cpu * 1e6 / (double)now.samples : 0;
	printf("bench cycletest_4ch: %.2f s wall, %.2f s CPU, %ld samples (%.1f virtual hours x 4 channels), "
	       "%.2f us CPU per sample, best of %d\n", now.wall, now.cpu, now.samples, now.hours, us_now, RUNS);
	if (base) {
		us_old = old.samples ? old.cpu * 1e6 / (double)old.samples : 0;
		printf("bench cycletest_4ch baseline (%s): %.2f s wall, %.2f s CPU, %ld samples, %.2f us per sample\n",
		       base, old.wall, old.cpu, old.samples, us_old);
	}
	snprintf(measured, sizeof measured, "%.2f s wall, %.1f us CPU per sample", now.wall, us_now);
	snprintf(target, sizeof target, "< 2 us per sample, 6x the baseline");
	bench_figure("stock cycle test, 4 virtual channels, 2+3 cycles at 2 A, 1 s reports, every sample recorded, "
	             "--no-report (CPU of the whole run: start, simulator and all)",
	             measured, target, base && us_now > 0 ? us_old / us_now : 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
