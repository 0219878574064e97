/* test_sim_fw_streams.c - virtual Batlab: stream packets, the staggered
 * measurement latches, response latency, the
 * event-time contract of bl_simdev_next_event_us, SYSTEM_TIMER. */
#include "sim_fw_util.h"
#include "tap.h"

static void test_latency(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	sh_read(&h, 0, BL_CELL_VOLTAGE);
	ok(h.last_rtt >= 2000 && h.last_rtt <= 3000, "cell register round trip %.2f ms (2-3 ms)", h.last_rtt / 1e3);
	sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
	ok(h.last_rtt >= 2000 && h.last_rtt <= 3000, "unit register round trip %.2f ms", h.last_rtt / 1e3);
	sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU);
	ok(h.last_rtt >= 800 && h.last_rtt <= 1500, "COMMS round trip %.2f ms (~1 ms)", h.last_rtt / 1e3);
	is_int(bl_simdev_next_event_us(h.d), (long long)UINT64_MAX, "idle, no streams: next event is UINT64_MAX");

	/* A reply in flight is announced. */
	sh_send(&h, (const uint8_t[]){0xAA, 0x04, 0x02, 0, 0}, 5);
	uint64_t n = bl_simdev_next_event_us(h.d);
	ok(n > h.t && n <= h.t + 3000, "next event = the pending reply (+%llu us)", (unsigned long long)(n - h.t));
	uint8_t buf[16];
	is_int((long long)bl_simdev_host_read(h.d, n - 1, buf, sizeof buf), 0, "nothing before it is due");
	is_int((long long)bl_simdev_host_read(h.d, n, buf, sizeof buf), 5, "the 5 bytes at its time");
	h.t = n;
	sh_close(&h);
}

static void test_stream_period(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	sh_write(&h, 0, BL_CELL_REPORT_INTERVAL, 9);
	sh_write(&h, 1, BL_CELL_REPORT_INTERVAL, 1);
	sh_write(&h, 3, BL_CELL_REPORT_INTERVAL, 0xFFFF);
	size_t start = h.nstreams;
	sh_wait(&h, 10.0);
	uint64_t t0[4] = {0}, tl[4] = {0};
	int n[4] = {0};
	double maxdev0 = 0, maxdev1 = 0;
	for (size_t i = start; i < h.nstreams; i++) {
		int c = h.streams[i].s.cell;
		if (n[c]) {
			double dt = (double)(h.streams[i].t - tl[c]) / 1e6;
			if (c == 0 && fabs(dt - 1.0) > maxdev0)
				maxdev0 = fabs(dt - 1.0);
			if (c == 1 && fabs(dt - 0.2) > maxdev1)
				maxdev1 = fabs(dt - 0.2);
		} else {
			t0[c] = h.streams[i].t;
		}
		tl[c] = h.streams[i].t;
		n[c]++;
	}
	ok(n[0] >= 10 && n[0] <= 11, "N=9: %d packets in 10 s", n[0]);
	ok(maxdev0 < 0.002, "N=9: period 1.0 s (max deviation %.4f s)", maxdev0);
	ok(n[1] >= 49 && n[1] <= 51, "N=1: %d packets in 10 s", n[1]);
	ok(maxdev1 < 0.002, "N=1: period 200 ms (max deviation %.4f s)", maxdev1);
	is_int(n[2], 0, "N=0: no stream");
	is_int(n[3], 0, "N=65535: never fires");
	(void)t0;

	/* The next event announces the next stream. */
	uint64_t ne = bl_simdev_next_event_us(h.d);
	ok(ne > h.t && ne <= h.t + 200000, "next event is the next stream (+%.1f ms)", (ne - h.t) / 1e3);

	/* Contents are the registers. */
	sh_write(&h, 0, BL_CELL_REPORT_INTERVAL, 0);
	sh_write(&h, 1, BL_CELL_REPORT_INTERVAL, 0);
	sh_wait(&h, 0.5);
	sh_write(&h, 2, BL_CELL_REPORT_INTERVAL, 5);   /* sent in the same pass */
	sh_wait(&h, 0.01);
	ok(h.nstreams > 0 && h.streams[h.nstreams - 1].s.cell == 2, "writing REPORT_INTERVAL sends at once");
	struct bl_stream s = h.streams[h.nstreams - 1].s;
	sh_write(&h, 2, BL_CELL_REPORT_INTERVAL, 0);
	is_int(s.mode, sh_read(&h, 2, BL_CELL_MODE), "stream MODE = register");
	is_int(s.status, sh_read(&h, 2, BL_CELL_STATUS), "stream STATUS = register (not ERROR)");
	is_int(s.temperature, sh_read(&h, 2, BL_CELL_TEMPERATURE), "stream TEMPERATURE = register");
	is_int(s.current, sh_read(&h, 2, BL_CELL_CURRENT), "stream CURRENT = register");
	is_int(s.voltage, sh_read(&h, 2, BL_CELL_VOLTAGE), "stream VOLTAGE = register");
	sh_wait(&h, 1.0);
	is_int(bl_simdev_next_event_us(h.d), (long long)UINT64_MAX, "streams off again: UINT64_MAX");
	sh_close(&h);
}

static void test_values_change_at_latches(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 256);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 2.0);
	sh_write(&h, 1, BL_CELL_REPORT_INTERVAL, 1);
	size_t start = h.nstreams;
	sh_wait(&h, 6.144 * 2);
	int changes = 0, packets = 0;
	for (size_t i = start + 1; i < h.nstreams; i++) {
		packets++;
		if (h.streams[i].s.voltage != h.streams[i - 1].s.voltage)
			changes++;
	}
	ok(packets > 55, "%d packets at 200 ms", packets);
	ok(changes >= 18 && changes <= 20, "VOLTAGE changed %d times in 12.3 s: once per 614.4 ms latch", changes);
	sh_close(&h);
}

/* Time (relative to the 614.4 ms cycle) at which a register of a busy
 * channel changes, found by back-to-back reads. */
static double change_phase(struct simh *h, uint8_t ns, uint8_t addr)
{
	long prev = sh_read(h, ns, addr);
	uint64_t prev_t = h->t;
	for (int i = 0; i < 400; i++) {
		long v = sh_read(h, ns, addr);
		if (v != prev) {
			/* Handled ~0.93 ms before the answer arrived. */
			double mid = ((double)prev_t + (double)h->t) / 2.0 - 934.0;
			return fmod(mid, 614400.0) / 1e3;
		}
		prev_t = h->t;
	}
	return -1;
}

static void test_stagger(void)
{
	struct simh h;
	sh_open_default(&h);
	for (uint8_t c = 0; c < 4; c++) {
		sh_write(&h, c, BL_CELL_CURRENT_SETPOINT, 200);
		sh_write(&h, c, BL_CELL_MODE, BL_MODE_DISCHARGE);
	}
	sh_wait(&h, 2.0);
	const double want[4] = {102.4, 204.8, 307.2, 409.6};
	for (uint8_t c = 0; c < 4; c++) {
		double p = change_phase(&h, c, BL_CELL_VOLTAGE);
		ok(fabs(p - want[c]) < 3.0, "ch%u VOLTAGE latched at %.1f ms of the cycle (want %.1f)", c, p, want[c]);
	}
	double p = change_phase(&h, 0, BL_CELL_TEMPERATURE);
	ok(fabs(p - 512.0) < 3.0, "TEMPERATURE latched at %.1f ms (want 512.0)", p);
	p = change_phase(&h, BL_NS_UNIT, BL_UNIT_VCC);
	ok(p < 3.0 || p > 611.4, "VCC latched at %.1f ms (want 614.4 = 0)", p);
	p = change_phase(&h, 2, BL_CELL_CHARGEL);
	ok(fabs(p - 307.2) < 3.0, "ch2 CHARGE counted at %.1f ms (with its V/I)", p);
	sh_close(&h);
}

static void test_uart_and_ring(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	/* Four streams due at the same tick share the UART. */
	for (uint8_t c = 0; c < 4; c++)
		sh_write(&h, c, BL_CELL_REPORT_INTERVAL, 9);
	sh_wait(&h, 1.5);
	size_t n = h.nstreams;
	ok(n >= 4, "four streams");
	uint64_t gap = h.streams[n - 1].t - h.streams[n - 2].t;
	ok(h.streams[n - 1].s.cell == 3 && gap >= 1100 && gap <= 1200,
	   "same-tick streams arrive one UART packet time apart (%llu us)", (unsigned long long)gap);
	for (uint8_t c = 0; c < 4; c++)
		sh_write(&h, c, BL_CELL_REPORT_INTERVAL, 0);
	sh_wait(&h, 1.0);

	/* A window of 10 commands is fine; a burst of 40 overruns the
	 * 64-byte RX ring of the measure MCU. */
	uint8_t burst[40 * 5];
	for (int i = 0; i < 40; i++)
		memcpy(burst + 5 * i, (const uint8_t[]){0xAA, 0x04, 0x02, 0, 0}, 5);
	h.nresp = 0;
	sh_send(&h, burst, 10 * 5);
	sh_wait(&h, 0.1);
	is_int(h.nresp, 10, "10 commands in one write: 10 answers");
	struct bl_simdev_stats st;
	bl_simdev_stats(h.d, &st);
	is_int((long long)st.rx_overflows, 0, "no overrun");
	h.nresp = 0;
	sh_send(&h, burst, sizeof burst);
	sh_wait(&h, 0.2);
	bl_simdev_stats(h.d, &st);
	ok(h.nresp >= 20 && h.nresp < 40, "40 commands in one write: %d answers", h.nresp);
	is_int((long long)st.rx_overflows, 40 - h.nresp, "the rest overran the RX ring silently");
	sh_close(&h);
}

static void test_system_timer(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	long a = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	uint64_t ta = h.t;
	/* 50 EEPROM writes block interrupts for ~0.4 s in all. */
	for (int i = 0; i < 50; i++)
		sh_write(&h, 0, BL_CELL_TEMP_CALIB_R, (uint16_t)(1500 + (i & 1)));
	sh_wait_until(&h, ta + 5 * SH_S);
	long b = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	ok(b - a >= 45 && b - a <= 47, "SYSTEM_TIMER ran slow during EEPROM writes: %ld ticks in 5 s", b - a);

	/* 16-bit wrap: 65536 ticks = 109.2 min. */
	sh_wait(&h, 6553.6);
	long c = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	ok(c >= 0 && labs(c - b) <= 1, "SYSTEM_TIMER wrapped at 16 bits (%ld -> %ld)", b, c);
	sh_close(&h);
}

int main(void)
{
	plan_lazy();
	test_latency();
	test_stream_period();
	test_values_change_at_latches();
	test_stagger();
	test_uart_and_ring();
	test_system_timer();
	return done_testing();
}
