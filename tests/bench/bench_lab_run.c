/* bench_lab_run.c - a lab on one host: 64 virtual Batlabs served on
 * pseudo-terminals by one `batlab sim --pty --devices 64`, and one
 * `batlab run PROC --port P1 ... --port P64 NAME x 256` driving all 256
 * channels in real time (1 s reports, every report recorded) for RUN_S
 * seconds. Figures: the run's CPU as a share of one core over its wall
 * time, its largest RSS, and the rows each channel recorded per minute
 * (60 when every report of every channel was read and written).
 *
 * Benchmarks run in real time; they are not tests.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "figure.h"
#include "ptyserver.h"

#define NDEV 64
#define NCELL (NDEV * 4)
#define RUN_S 75

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_proc(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs("local steps = require \"batlab.steps\"\n"
	      "return { name = \"lab\", params = { seconds = 60 },\n"
	      "  run = function(cell, p)\n"
	      "    local d = steps.discharge(cell, { current = 0.2, max_time = p.seconds, until_v = 2.5 })\n"
	      "    return steps.ok(d)\n"
	      "  end }\n", f);
	return fclose(f);
}

/* Rows in the cells' time series (lines starting with a digit). */
static long count_rows(const char *out)
{
	char cmd[700];
	long n = -1;
	FILE *f;

	snprintf(cmd, sizeof cmd, "cat %s/cells/*.csv | grep -c '^[0-9]'", out);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* CPU seconds (user + system) of a live process, from /proc. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof buf, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Wait for the run; meanwhile its CPU over [STEADY_FROM, STEADY_TO] s
 * after its start, when every channel is running. */
#define STEADY_FROM 25.0
#define STEADY_TO 70.0
static int wait_run(pid_t pid, double t0, double *steady)
{
	double c1 = -1, c2 = -1;
	int status = 0;

	*steady = -1;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		double t = now_s() - t0;

		if (c1 < 0 && t >= STEADY_FROM)
			c1 = proc_cpu(pid);
		if (c2 < 0 && t >= STEADY_TO) {
			c2 = proc_cpu(pid);
			if (c1 >= 0 && c2 >= 0)
				*steady = (c2 - c1) / (STEADY_TO - STEADY_FROM);
		}
		usleep(100000);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int run_lab(const char *bin, const char *dir, char paths[][128])
{
	static char args[NDEV * 2 + NCELL + 24][640];
	char *argv[NDEV * 2 + NCELL + 24];
	char out[600], logp[600], proc[600], m[200];
	int argc = 0;
	struct rusage ru;
	double t0, wall, cpu, steady;
	long rows;
	pid_t pid;

	snprintf(proc, sizeof proc, "%s/lab.lua", dir);
	snprintf(out, sizeof out, "%s/run", dir);
	snprintf(logp, sizeof logp, "%s/log", dir);
	if (write_proc(proc) != 0)
		return 1;
#define ARG(...) (snprintf(args[argc], sizeof args[0], __VA_ARGS__), argv[argc] = args[argc], argc++)
	ARG("%s", bin); ARG("run"); ARG("%s", proc);
	for (int i = 0; i < NDEV; i++) {
		ARG("--port");
		ARG("%s", paths[i]);
	}
	ARG("--set"); ARG("seconds=%d", RUN_S);
	ARG("--quiet"); ARG("--no-report"); ARG("--out"); ARG("%s", out);
	for (int i = 0; i < NCELL; i++)
		ARG("C%03d", i + 1);
	argv[argc] = NULL;
#undef ARG
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		if (!freopen(logp, "w", stdout) || !freopen(logp, "a", stderr))
			_exit(127);
		execv(bin, argv);
		_exit(127);
	}
	if (pid < 0 || wait_run(pid, t0, &steady) != 0) {
		fprintf(stderr, "bench lab_run: the run failed (see %s)\n", logp);
		return 1;
	}
	wall = now_s() - t0;
	getrusage(RUSAGE_CHILDREN, &ru);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	      ru.ru_stime.tv_usec / 1e6;
	rows = count_rows(out);
	printf("bench lab_run: %d channels on %d ptys for %.1f s wall: %.2f s CPU in all (%.2f %% of a "
	       "core, the start included), %.2f %% of a core while all ran (%g..%g s), max RSS %.1f MB, "
	       "%ld rows (%.1f per channel-minute of the procedure's %d s)\n",
	       NCELL, NDEV, wall, cpu, 100.0 * cpu / wall, 100.0 * steady, STEADY_FROM, STEADY_TO,
	       ru.ru_maxrss / 1024.0, rows, rows / (double)NCELL / (RUN_S / 60.0), RUN_S);
	snprintf(m, sizeof m, "%.2f %% of a core while running (%.2f %% with the start), RSS %.1f MB, "
	         "%.1f rows per channel-minute", 100.0 * steady, 100.0 * cpu / wall, ru.ru_maxrss / 1024.0,
	         rows / (double)NCELL / (RUN_S / 60.0));
	bench_figure("256 channels on 64 virtual Batlabs over ptys in real time, `batlab run --port` x64, "
	             "1 s reports, every report recorded", m, "< 1 %, < 64 MB, 60", 0);
	return 0;
}

int main(void)
{
	const char *bin = getenv("BATLAB") ? getenv("BATLAB") : "./batlab";
	char dir[] = "/tmp/bench-lab-XXXXXX", cmd[600];
	char *argv[] = {(char *)bin, "sim", "--pty", "--devices", "64", NULL};
	struct server sim;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;
	if (start_server(&sim, bin, argv, NDEV) < 0) {
		fprintf(stderr, "bench lab_run: cannot start %s sim --pty --devices 64\n", bin);
		return 1;
	}
	rc = run_lab(bin, dir, sim.paths);
	stop_server(&sim);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (rc == 0 && system(cmd) != 0)
		rc = 1;
	return rc;
}
