/* test_sim_fw_determinism.c - virtual Batlab: the same seed and the same
 * host traffic give byte-identical output, however the host paces its
 * reads or inspects the model; another seed gives other noise. */
#include "sim_fw_util.h"
#include "tap.h"

enum pace {
	PACE_EVENTS,   /* read at every announced event */
	PACE_LAZY,     /* read only when a transaction needs it, in 7-byte bites */
	PACE_PEEK,     /* like EVENTS, plus bl_simdev_advance every 0.37 s */
};

static void lazy_wait_until(struct simh *h, uint64_t t)
{
	h->t = t;
	for (;;) {
		uint8_t b[7];
		size_t n = bl_simdev_host_read(h->d, h->t, b, sizeof b);
		if (!n)
			break;
		if (h->nraw + n > h->capraw) {
			h->capraw = h->capraw ? 2 * h->capraw : 4096;
			h->raw = realloc(h->raw, h->capraw);
		}
		memcpy(h->raw + h->nraw, b, n);
		h->nraw += n;
	}
}

static void wait_until(struct simh *h, uint64_t t, enum pace pace)
{
	if (pace == PACE_LAZY) {
		lazy_wait_until(h, t);
		return;
	}
	if (pace == PACE_PEEK) {
		while (h->t + 370000 < t) {
			sh_wait_until(h, h->t + 370000);
			bl_simdev_advance(h->d, h->t);
			const struct bl_cell *c = bl_simdev_cell(h->d, 0);
			(void)c;
		}
	}
	sh_wait_until(h, t);
}

/* Ten virtual minutes: streams on every cell, four modes, polls, faults,
 * the operator. Returns the raw bytes (caller frees) and their count. */
static uint8_t *session(uint64_t seed, bool noise, bool garbage, enum pace pace, size_t *n)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	cfg.seed = seed;
	if (!noise)
		cfg.noise_v = cfg.noise_a = cfg.noise_temp_c = 0;
	cfg.nqueue = 1;
	cfg.queue[0] = *bl_cell_profile("nmc18650-aged");
	cfg.operator_delay_s = 20;
	int k = 0;
	if (garbage)
		cfg.faults[k++] = (struct bl_fault){.kind = BL_FAULT_GARBAGE, .at_us = 100 * SH_S, .slot = -1, .count = 7};
	cfg.faults[k++] = (struct bl_fault){.kind = BL_FAULT_VCC_SAG, .at_us = 200 * SH_S, .slot = -1, .value = 4.8};
	cfg.faults[k++] = (struct bl_fault){.kind = BL_FAULT_CELL_REMOVE, .at_us = 300 * SH_S, .slot = 3};
	cfg.nfaults = k;

	struct simh h;
	sh_open(&h, &cfg);
	h.keep_raw = true;
	for (uint8_t c = 0; c < 4; c++)
		sh_write(&h, c, BL_CELL_REPORT_INTERVAL, 4);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 0);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_CHARGE);
	sh_write(&h, 1, BL_CELL_CURRENT_SETPOINT, 128);
	sh_write(&h, 2, BL_CELL_MODE, BL_MODE_IMPEDANCE);
	for (uint64_t t = 5 * SH_S; t <= 600 * SH_S; t += 5 * SH_S) {
		wait_until(&h, t, pace);
		h.plen = 0;   /* resync after garbage */
		sh_read(&h, 0, BL_CELL_VOLTAGE);
		sh_read(&h, 1, BL_CELL_CURRENT);
		sh_read(&h, 2, BL_CELL_VOLTAGE_PP);
		sh_read(&h, 3, BL_CELL_MODE);
		sh_read(&h, 0, BL_CELL_CHARGEH);
		sh_read(&h, 0, BL_CELL_CHARGEL);
		sh_read(&h, BL_NS_UNIT, BL_UNIT_VCC);
		sh_read(&h, BL_NS_COMMS, BL_COMMS_LED0 + 3);
		if (t == 400 * SH_S)
			sh_write(&h, 3, BL_CELL_MODE, BL_MODE_IDLE);
	}
	wait_until(&h, 601 * SH_S, pace);
	uint8_t *raw = h.raw;
	*n = h.nraw;
	h.raw = NULL;
	sh_close(&h);
	return raw;
}

int main(void)
{
	plan_lazy();
	size_t na, nb, nc, nd, ne;
	uint8_t *a = session(42, true, true, PACE_EVENTS, &na);
	uint8_t *b = session(42, true, true, PACE_EVENTS, &nb);
	ok(na > 50000, "10 virtual minutes gave %zu bytes", na);
	ok(na == nb && memcmp(a, b, na) == 0, "same seed: byte-identical output");
	uint8_t *c = session(42, true, true, PACE_LAZY, &nc);
	ok(na == nc && memcmp(a, c, na) == 0, "identical when the host reads lazily in 7-byte bites");
	uint8_t *d = session(42, true, true, PACE_PEEK, &nd);
	ok(na == nd && memcmp(a, d, na) == 0, "identical when the model is inspected along the way");
	uint8_t *e = session(43, true, true, PACE_EVENTS, &ne);
	ok(na != ne || memcmp(a, e, na) != 0, "another seed: different bytes (noise)");
	size_t diff = 0;
	for (size_t i = 0; i < na && i < ne; i++)
		diff += a[i] != e[i];
	ok(diff > 1000, "%zu bytes differ", diff);
	free(b);
	free(c);
	free(d);
	free(e);
	free(a);

	a = session(1, false, false, PACE_EVENTS, &na);
	e = session(2, false, false, PACE_EVENTS, &ne);
	ok(na == ne && memcmp(a, e, na) == 0, "without noise the seed does not matter");
	free(a);
	free(e);
	return done_testing();
}
