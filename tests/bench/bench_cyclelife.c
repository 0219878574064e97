/* bench_cyclelife.c - scripts/cycle-life.lua on four virtual cells (1 C /
 * 1 C, 1 s reports, the model's capacity fade), --record every=30: wall
 * time, and the resident memory of the run sampled every half second
 * (the first sample after 2 s against the largest: flat means no growth
 * with the samples). BENCH_CYCLES sets the cycles (default 500). The
 * run has --no-report: report.html of a run this long parses its whole
 * time series at the end, which is the report's cost, not the run's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "figure.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS of pid in kB, 0 when gone. */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(void)
{
	const char *bin = getenv("BATLAB") ? getenv("BATLAB") : "./batlab";
	const char *cyc = getenv("BENCH_CYCLES") ? getenv("BENCH_CYCLES") : "500";
	char dir[] = "/tmp/batlab-bench-XXXXXX";
	char out[600], logp[600], set[64], cmd[800], measured[200];
	long early = 0, peak = 0;
	int status = 0;
	double t0, wall;
	pid_t pid;

	if (!mkdtemp(dir))
		return 1;
	snprintf(out, sizeof out, "%s/run", dir);
	snprintf(logp, sizeof logp, "%s/log", dir);
	snprintf(set, sizeof set, "cycles=%s", cyc);
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		if (!freopen(logp, "w", stdout) || !freopen(logp, "a", stderr))
			_exit(127);
		execl(bin, bin, "run", "scripts/cycle-life.lua", "--sim", "--record", "every=30", "--set", set,
		      "--quiet", "--no-report", "--out", out, "A", "B", "C", "D", (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return 1;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		long kb = rss_kb(pid);
		if (!early && now_s() - t0 >= 2.0)
			early = kb;
		if (kb > peak)
			peak = kb;
		usleep(500000);
	}
	wall = now_s() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		fprintf(stderr, "bench cyclelife: the run failed (see %s)\n", logp);
		return 1;
	}
	printf("bench cyclelife: %s cycles on 4 cells in %.1f s wall; RSS %.1f MB after 2 s, %.1f MB at most\n",
	       cyc, wall, early / 1024.0, peak / 1024.0);
	snprintf(cmd, sizeof cmd, "grep -h 'verdict' %s/events.log | head -n 4", out);
	fflush(stdout);
	if (system(cmd) != 0)
		return 1;
	snprintf(measured, sizeof measured, "%.1f s wall, RSS %.1f MB after 2 s, %.1f MB max", wall,
	         early / 1024.0, peak / 1024.0);
	snprintf(cmd, sizeof cmd, "cycle-life test, %s cycles of 1 C / 1 C on 4 virtual cells, --record every=30 --no-report",
	         cyc);
	bench_figure(cmd, measured, "< 60 s, flat and < 50 MB", 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
