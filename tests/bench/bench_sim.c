/* bench_sim.c - CPU cost of the in-process virtual Batlab.
 *
 *   sim_24h   one device, four channels discharging, streams at 1 Hz on
 *             every channel, 24 virtual hours, the host only draining the
 *             stream bytes (target < 0.5 s CPU);
 *   sim_xact  one register transaction: host_write of a read command, jump
 *             to its due time, host_read (target < 2 us).
 *
 * Figures only: nothing here fails on timing. (clock() measures this
 * process's CPU time; the model itself never reads a clock.)
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/regs.h"
#include "sim/simdev.h"
#include "figure.h"

static double cpu_s(void)
{
	return (double)clock() / CLOCKS_PER_SEC;
}

/* Write a command and wait for its answer; returns the answer value. */
static long xact(struct bl_simdev *d, uint64_t *t, uint8_t ns, uint8_t addr, uint16_t v)
{
	uint8_t p[5] = {0xAA, ns, addr, (uint8_t)v, (uint8_t)(v >> 8)};
	bl_simdev_host_write(d, *t, p, 5);
	uint8_t buf[64];
	uint64_t end = *t + 100000;
	while (*t < end) {
		uint64_t n = bl_simdev_next_event_us(d);
		*t = n > *t ? n : *t + 1;
		size_t k = bl_simdev_host_read(d, *t, buf, sizeof buf);
		for (size_t i = 0; i + 5 <= k; i++)
			if (buf[i] == 0xAA && buf[i + 1] == ns && buf[i + 2] == addr)
				return buf[i + 3] | buf[i + 4] << 8;
	}
	return -1;
}

static int bench_24h(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	for (int s = 0; s < 4; s++)
		cfg.cells[s].capacity_ah = 100.0;   /* stays busy for 24 h at 1 A */
	struct bl_simdev *d = bl_simdev_new(&cfg, 0);
	uint64_t t = 0;
	for (uint8_t c = 0; c < 4; c++) {
		xact(d, &t, c, 0x80 | BL_CELL_CURRENT_SETPOINT, 128);
		xact(d, &t, c, 0x80 | BL_CELL_MODE, BL_MODE_DISCHARGE);
		xact(d, &t, c, 0x80 | BL_CELL_REPORT_INTERVAL, 9);
	}
	const uint64_t end = t + 24ull * 3600 * 1000000;
	uint64_t bytes = 0, reads = 0;
	uint8_t buf[256];
	double c0 = cpu_s();
	for (;;) {
		uint64_t n = bl_simdev_next_event_us(d);
		if (n > end)
			break;
		t = n > t ? n : t + 1;
		size_t k;
		while ((k = bl_simdev_host_read(d, t, buf, sizeof buf)) > 0)
			bytes += k;
		reads++;
	}
	bl_simdev_advance(d, end);
	double c1 = cpu_s();
	t = end;
	int busy = 0;
	for (uint8_t c = 0; c < 4; c++)
		busy += xact(d, &t, c, BL_CELL_MODE, 0) == BL_MODE_DISCHARGE;
	struct bl_simdev_stats st;
	bl_simdev_stats(d, &st);
	printf("bench sim_24h: %.3f s CPU (target < 0.5 s)\n", c1 - c0);
	{
		char m[64];
		snprintf(m, sizeof m, "%.3f s CPU", c1 - c0);
		bench_figure("virtual Batlab, 4 channels streaming, 24 virtual hours", m, "< 0.5 s", 0);
	}
	printf("  %llu stream packets, %llu bytes, %llu reads, %llu latches, %d/4 channels still discharging\n",
	       (unsigned long long)st.streams, (unsigned long long)bytes, (unsigned long long)reads,
	       (unsigned long long)st.latches, busy);
	bl_simdev_free(d);
	return busy == 4 ? 0 : 1;
}

static int bench_xact(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	struct bl_simdev *d = bl_simdev_new(&cfg, 0);
	uint64_t t = 0;
	xact(d, &t, 0, 0x80 | BL_CELL_MODE, BL_MODE_DISCHARGE);
	const int n = 2000000;
	const uint8_t cmd[5] = {0xAA, 0x00, BL_CELL_VOLTAGE, 0, 0};
	uint8_t buf[64];
	uint64_t got = 0;
	double c0 = cpu_s();
	for (int i = 0; i < n; i++) {
		bl_simdev_host_write(d, t, cmd, sizeof cmd);
		t = bl_simdev_next_event_us(d);
		got += bl_simdev_host_read(d, t, buf, sizeof buf);
	}
	double c1 = cpu_s();
	printf("bench sim_xact: %.3f us per transaction (target < 2 us)\n", (c1 - c0) * 1e6 / n);
	{
		char m[64];
		snprintf(m, sizeof m, "%.3f us", (c1 - c0) * 1e6 / n);
		bench_figure("register transaction through the in-process model", m, "< 2 us", 0);
	}
	printf("  %d transactions, %.1f virtual s, %llu bytes back\n", n, (double)t / 1e6,
	       (unsigned long long)got);
	bl_simdev_free(d);
	return got == 5ull * n ? 0 : 1;
}

int main(void)
{
	int rc = bench_24h();
	rc |= bench_xact();
	return rc;
}
