/* bench_pty.c - host-side costs over pseudo-terminals to `batlab sim --pty`:
 *
 *   pty_roundtrip          register read round trip (median of 2000), with
 *                          the model at --speed 1000 so the modelled device
 *                          latency (~2.4 ms at speed 1) shrinks to ~2 us and
 *                          what is left is our link, loop and the ptys;
 *   pty_roundtrip_speed1   the same in real time, for reference, with the
 *                          modelled latency measured in-process and
 *                          subtracted;
 *   pty_streams_64x4       64 devices x 4 channels streaming at 1 Hz for
 *                          60 s from one `batlab sim --pty --devices 64`;
 *                          CPU and RSS of this (host) process reading and
 *                          reframing them all (the link and loop a run
 *                          uses, without the procedure and recorder).
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
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/proto.h"
#include "core/regs.h"
#include "link/link.h"
#include "sim/simdev.h"
#include "figure.h"
#include "ptyserver.h"

#define GUARD_US 5000000
#define NREADS 2000
#define NDEV 64
#define STREAM_S 60

static char batlab[PATH_MAX];

static bool find_batlab(void)
{
	const char *env = getenv("BATLAB");
	char self[PATH_MAX];
	char *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(batlab, sizeof batlab, "%s", env);
		return access(batlab, X_OK) == 0;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		for (int i = 0; i < 2 && (slash = strrchr(self, '/')); i++)
			*slash = 0;
		if (strlen(self) + sizeof "/batlab" <= sizeof batlab) {
			memcpy(batlab, self, strlen(self));
			memcpy(batlab + strlen(self), "/batlab", sizeof "/batlab");
			if (access(batlab, X_OK) == 0)
				return true;
		}
	}
	snprintf(batlab, sizeof batlab, "./batlab");
	return access(batlab, X_OK) == 0;
}

/* ---- one client connection ---------------------------------------------- */

struct conn {
	struct bl_link *link;
	struct bl_reframer rf;
	struct bl_packet want;
	bool have;
	uint16_t value;
	uint64_t streams;
	bool closed;
};

static void on_frame(void *ud, const struct bl_frame *f)
{
	struct conn *c = ud;

	if (f->kind == BL_FRAME_STREAM) {
		c->streams++;
	} else if (bl_packet_answers(&c->want, &f->u.packet)) {
		c->have = true;
		c->value = f->u.packet.value;
	}
}

static void on_data(struct bl_link *l, void *ud)
{
	struct conn *c = ud;
	uint8_t buf[512];
	int n;

	while ((n = bl_link_read(l, buf, sizeof buf)) > 0)
		bl_reframer_feed(&c->rf, buf, (size_t)n);
	if (n == BL_ERR_CLOSED)
		c->closed = true;
}

static bool have_reply(void *ud)
{
	struct conn *c = ud;
	return c->have || c->closed;
}

static int conn_open(struct conn *c, struct bl_loop *loop, const char *path)
{
	char err[256];

	memset(c, 0, sizeof *c);
	bl_reframer_init(&c->rf, on_frame, NULL, c);
	if (bl_link_open(path, &c->link, err, sizeof err) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	return bl_link_watch(c->link, loop, on_data, c);
}

static int transact(struct bl_loop *loop, struct conn *c, struct bl_packet p)
{
	uint8_t b[BL_PKT_LEN];
	int r;

	c->want = p;
	c->have = false;
	bl_packet_encode(&p, b);
	if ((r = bl_link_write(c->link, b, sizeof b)) < 0)
		return r;
	r = bl_loop_run_until(loop, have_reply, c, bl_loop_now(loop) + GUARD_US);
	if (r < 0)
		return r;
	return c->have ? c->value : BL_ERR_CLOSED;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median round trip in microseconds, or 0 on failure. */
static uint64_t roundtrip(const char *speed, int n)
{
	char *argv[] = {batlab, "sim", "--pty", "--speed", (char *)speed, NULL};
	struct server s;
	struct bl_loop *loop = bl_loop_new(NULL);
	struct conn c;
	uint64_t *t = calloc((size_t)n, sizeof *t), med = 0;

	if (start_server(&s, batlab, argv, 1) < 0 || conn_open(&c, loop, s.paths[0]) < 0) {
		fprintf(stderr, "bench: cannot start %s sim --pty\n", batlab);
		goto out;
	}
	/* Warm up: the device boots and the pages are hot. */
	for (int i = 0; i < 20; i++)
		transact(loop, &c, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER));
	for (int i = 0; i < n; i++) {
		uint64_t t0 = bl_clock_monotonic_us();
		int v = transact(loop, &c, bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER));
		t[i] = bl_clock_monotonic_us() - t0;
		if (v != 7) {
			fprintf(stderr, "bench: read %d returned %d\n", i, v);
			n = i;
			break;
		}
	}
	if (n > 0) {
		qsort(t, (size_t)n, sizeof *t, cmp_u64);
		med = t[n / 2];
	}
	bl_link_close(c.link);
	stop_server(&s);
out:
	free(t);
	bl_loop_free(loop);
	return med;
}

/* The modelled device latency of one read, measured in virtual time. */
static bool got_it(void *ud) { return ((struct conn *)ud)->have; }

static uint64_t model_latency(void)
{
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_simdev_config cfg;
	struct conn c;
	uint8_t b[BL_PKT_LEN];
	uint64_t t0, dt;
	struct bl_packet p = bl_packet_read(BL_NS_UNIT, BL_UNIT_FIRMWARE_VER);

	bl_vclock_init(&vc, 0);
	loop = bl_loop_new(&vc.clock);
	bl_simdev_config_default(&cfg, 0);
	memset(&c, 0, sizeof c);
	bl_reframer_init(&c.rf, on_frame, NULL, &c);
	bl_link_open_sim(bl_simdev_new(&cfg, 0), true, &vc.clock, "sim", &c.link);
	bl_link_watch(c.link, loop, on_data, &c);
	bl_loop_run_until(loop, NULL, NULL, 3000000);
	c.want = p;
	bl_packet_encode(&p, b);
	t0 = bl_loop_now(loop);
	bl_link_write(c.link, b, sizeof b);
	bl_loop_run_until(loop, got_it, &c, t0 + 1000000);
	dt = bl_loop_now(loop) - t0;
	bl_link_close(c.link);
	bl_loop_free(loop);
	return dt;
}

static double maxrss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024.0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int streams64(void)
{
	char *argv[] = {batlab, "sim", "--pty", "--devices", "64", NULL};
	char m[128];
	struct server s;
	struct bl_loop *loop = bl_loop_new(NULL);
	static struct conn c[NDEV];
	uint64_t t0, t1, total = 0;
	double cpu0, cpu1, srv_cpu, pct;
	int rc = 1;

	if (start_server(&s, batlab, argv, NDEV) < 0) {
		fprintf(stderr, "bench: cannot start %s sim --pty --devices 64\n", batlab);
		bl_loop_free(loop);
		return 1;
	}
	for (int d = 0; d < NDEV; d++) {
		if (conn_open(&c[d], loop, s.paths[d]) < 0)
			goto out;
		for (int ch = 0; ch < 4; ch++)
			if (transact(loop, &c[d], bl_packet_write((uint8_t)ch, BL_CELL_REPORT_INTERVAL, 9)) != 0) {
				fprintf(stderr, "bench: REPORT_INTERVAL write failed on %s\n", s.paths[d]);
				goto out;
			}
	}
	for (int d = 0; d < NDEV; d++)
		c[d].streams = 0;
	t0 = bl_clock_monotonic_us();
	cpu0 = cpu_seconds();
	bl_loop_run_until(loop, NULL, NULL, bl_loop_now(loop) + STREAM_S * 1000000ull);
	cpu1 = cpu_seconds();
	t1 = bl_clock_monotonic_us();
	for (int d = 0; d < NDEV; d++)
		total += c[d].streams;
	pct = 100.0 * (cpu1 - cpu0) / ((double)(t1 - t0) / 1e6);
	printf("bench pty_streams_64x4: host CPU %.3f %% of one core over %.1f s, %llu stream packets"
	       " (expected ~%d), RSS %.1f MB (target < 1 %%, < 64 MB)\n",
	       pct, (double)(t1 - t0) / 1e6, (unsigned long long)total, NDEV * 4 * STREAM_S,
	       maxrss_mb());
	if (pct >= 1.0 || total < NDEV * 4 * (STREAM_S - 1))
		printf("bench pty_streams_64x4: TARGET MISSED\n");
	snprintf(m, sizeof m, "%.3f %% of a core, %.1f MB RSS", pct, maxrss_mb());
	bench_figure("64 virtual Batlabs on ptys, 4 channels at 1 Hz, host reading them all", m,
	             "< 1 %, < 64 MB", 0);
	rc = 0;
out:
	for (int d = 0; d < NDEV; d++)
		if (c[d].link)
			bl_link_close(c[d].link);
	srv_cpu = stop_server(&s);
	printf("bench pty_streams_64x4: sim server (64 devices, real time) used %.2f s CPU in total\n",
	       srv_cpu);
	bl_loop_free(loop);
	return rc;
}

int main(void)
{
	uint64_t med, med1, lat;
	int fail = 0;

	signal(SIGPIPE, SIG_IGN);
	if (!find_batlab()) {
		fprintf(stderr, "bench_pty: no batlab binary (set BATLAB)\n");
		return 1;
	}
	med = roundtrip("1000", NREADS);
	printf("bench pty_roundtrip: median %llu us over %d reads, model at --speed 1000"
	       " (target < 100 us)\n", (unsigned long long)med, NREADS);
	{
		char m[64];
		snprintf(m, sizeof m, "%llu us median", (unsigned long long)med);
		bench_figure("register round trip over a pty to `batlab sim --speed 1000`", m, "< 100 us", 0);
	}
	if (med == 0)
		fail = 1;
	else if (med >= 100)
		printf("bench pty_roundtrip: TARGET MISSED\n");

	lat = model_latency();
	med1 = roundtrip("1", 200);
	printf("bench pty_roundtrip_speed1: median %llu us in real time = modelled device latency"
	       " %llu us + %lld us link/pty/loop\n", (unsigned long long)med1,
	       (unsigned long long)lat, (long long)med1 - (long long)lat);

	fail |= streams64();
	return fail ? 1 : 0;
}
