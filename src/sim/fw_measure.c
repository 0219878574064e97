/* sim/fw_measure.c - the firmware model's measurements: the staggered
 * 102.4 ms latches (one channel's V/I/PP/charge, then all temperatures,
 * then VCC) and the stream packets of the 100 ms tick.
 *
 * The integer pipeline is kept where a host can see its effect
 * (calibration scale and offset, the 16-bit wrap, the zero threshold that
 * also zeroes >= 4.096 A, ADC saturation, PP granularity); the firmware's
 * low-headroom current correction is bypassed (docs/simulator.md,
 * "Measurement pipeline: what is kept, what is bypassed").
 */
#include <math.h>

#include "core/proto.h"
#include "core/regs.h"
#include "core/units.h"
#include "sim/fw_parts.h"

#define TEMP_RAW_MAX 32736
#define VCC_RAW_MAX 32736
#define CUR_MAX 2046              /* two 10-bit samples summed */
#define VSAMPLE_MIN (-4096)       /* 13-bit signed SPI ADC */
#define VSAMPLE_MAX 4095
#define PP_WINDOW_US 89600        /* ticks 129..1024 of a slice */


/* The board: 1 V/A sense into a 10-bit ADC with a 4.096 V reference, two
 * samples summed per tick: 500 counts per amp. Thermistor divider: 1500 ohm
 * over a 10 k NTC with B 3380 (the values the default limits decode with). */
#define CUR_COUNTS_PER_A 500.0
#define NTC_R_SERIES 1500.0
#define NTC_B 3380.0
#define NTC_R25 10000.0
#define VCC_RAW_VOLTS 134217.728  /* 32 x 1024 x 4.096 */

/* ---- Streams ---------------------------------------------------------------- */

/* The systicks count at which the first stream falls due, right after a
 * pass that sent every due one: channel c's is n + 1 - (now - last_sent)
 * ticks away (REPORT_INTERVAL 0 and 0xFFFF never send). */
static uint64_t stream_due(const struct bl_fw *fw)
{
	uint16_t now = UNIT_OF(fw, SYSTEM_TIMER);
	uint64_t best = UINT64_MAX;
	for (int c = 0; c < BL_CELLS; c++) {
		const struct bl_fw_chan *ch = &fw->ch[c];
		uint16_t n = ch->r[BL_CELL_REPORT_INTERVAL];
		if (n == 0 || n == 0xFFFF)
			continue;
		uint16_t k = (uint16_t)(ch->last_sent + n + 1 - now);
		uint64_t at = fw->systicks + (k ? k : 65536);
		if (at < best)
			best = at;
	}
	return best;
}

void bl_fw_send_due_streams(struct bl_fw *fw, uint64_t t)
{
	uint16_t now = UNIT_OF(fw, SYSTEM_TIMER);
	for (int c = 0; c < BL_CELLS; c++) {
		struct bl_fw_chan *ch = &fw->ch[c];
		uint16_t n = ch->r[BL_CELL_REPORT_INTERVAL];
		if (n == 0 || (uint16_t)(now - ch->last_sent) <= n)
			continue;
		ch->last_sent = now;
		uint8_t p[BL_STREAM_LEN];
		struct bl_stream st = {
			.cell = (uint8_t)c, .mode = ch->r[BL_CELL_MODE], .status = ch->r[BL_CELL_STATUS],
			.temperature = ch->r[BL_CELL_TEMPERATURE], .current = ch->r[BL_CELL_CURRENT],
			.voltage = ch->r[BL_CELL_VOLTAGE],
		};
		bl_stream_encode(&st, p);
		fw->n_streams++;
		if (fw->hooks.to_host)
			fw->hooks.to_host(fw->hooks.ud, t, p, sizeof p);
	}
	fw->stream_due = stream_due(fw);
	fw->stream_due_ok = true;
}

uint64_t bl_fw_next_stream(const struct bl_fw *fw)
{
	if (fw->state != BL_FW_APP)
		return UINT64_MAX;
	/* First SYSTEM_TIMER value with now - last_sent > n (a stream due
	 * but not sent yet counts as 65536 ticks away, as stream_due has it). */
	uint64_t due = fw->stream_due_ok ? fw->stream_due : stream_due(fw);
	if (due == UINT64_MAX)
		return UINT64_MAX;
	return fw->isr_t0 + due * BL_FW_SYSTICK_US + BL_FW_PASS_US / 2;
}

/* ---- Measurement latches ----------------------------------------------------- */

static uint16_t voltage_raw(const struct bl_fw *fw, const struct bl_fw_chan *ch, double volts)
{
	double s = volts / 4.5 * 4096.0;
	if (s < VSAMPLE_MIN)
		s = VSAMPLE_MIN;
	if (s > VSAMPLE_MAX)
		s = VSAMPLE_MAX;
	int64_t vsum = round_half_away(s * 1024.0);
	bool chg = ch->r[BL_CELL_MODE] == BL_MODE_CHARGE;
	uint16_t sca = chg ? UNIT_OF(fw, VOLT_CH_CALIB_SCA) : UNIT_OF(fw, VOLT_DC_CALIB_SCA);
	uint16_t off = chg ? UNIT_OF(fw, VOLT_CH_CALIB_OFF) : UNIT_OF(fw, VOLT_DC_CALIB_OFF);
	if (sca == 0)
		return 0x7FFF;   /* the PIC would divide by zero; "no reading" */
	uint16_t raw = u16(vsum * 128 / sca - s16(off));
	if (raw >= 0x8000 && raw <= 0x8E37)
		raw = 0x7FFF;
	return raw;
}

static uint16_t current_raw(const struct bl_fw *fw, const struct bl_fw_chan *ch, double amps)
{
	double cur = amps * CUR_COUNTS_PER_A;
	if (cur < 0)
		cur = 0;
	if (cur > CUR_MAX)
		cur = CUR_MAX;
	int64_t csum = round_half_away(cur * 1024.0);
	uint16_t sca = ch->r[BL_CELL_CURRENT_CALIB_SCA];
	uint16_t c = sca ? u16(csum * 256 / sca - s16(ch->r[BL_CELL_CURRENT_CALIB_OFF])) : 0xFFFF;
	/* The int16 comparison also zeroes anything >= 32768 (>= 4.096 A). */
	if (s16(c) < s16(UNIT_OF(fw, ZERO_AMP_THRESH)))
		c = 0;
	return c;
}

static void latch_pp(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	double ipp = 0, vpp = 0;
	if (ch->r[BL_CELL_MODE] == BL_MODE_IMPEDANCE && ch->present) {
		unsigned m = UNIT_OF(fw, SINE_MAGDIV);
		unsigned f = UNIT_OF(fw, SINE_FREQ) & 0xFF;
		double dpp = (m < 8 && f) ? (double)(255u >> m) : 0.0;
		/* Entered during the peak window: the window saw the step up
		 * from zero as well. */
		if (ch->imp_since + PP_WINDOW_US > t)
			dpp = UNIT_OF(fw, SINE_OFFSET) + (m < 8 ? (double)(255u >> m) : 0.0);
		if (dpp > BL_DUTY_MAX)
			dpp = BL_DUTY_MAX;
		ipp = dpp / BL_DUTY_MAX * fw->vcc_v;
		vpp = ipp * bl_cell_impedance(&ch->cell, f * 39.0625);
	}
	/* Max minus min of noisy samples always exceeds the true swing. */
	if (fw->noise_a > 0)
		ipp += fw->noise_a * (1.0 + 0.5 * fabs(bl_rng_gauss(&fw->rng)));
	if (fw->noise_v > 0)
		vpp += fw->noise_v * (1.0 + 0.5 * fabs(bl_rng_gauss(&fw->rng)));
	long cd = round_half_away(ipp * CUR_COUNTS_PER_A);
	long vd = round_half_away(vpp / 4.5 * 4096.0);
	cd = cd < 0 ? 0 : cd > CUR_MAX ? CUR_MAX : cd;
	vd = vd < 0 ? 0 : vd > 8191 ? 8191 : vd;
	uint16_t ccal = ch->r[BL_CELL_CURRENT_CALIB_PP], vcal = ch->r[BL_CELL_VOLTAGE_CALIB_PP];
	ch->r[BL_CELL_CURRENT_PP] = ccal ? u16(((int64_t)cd << 18) / ccal
	                                       - s16(ch->r[BL_CELL_CURR_CALIB_PP_OFF])) : 0xFFFF;
	ch->r[BL_CELL_VOLTAGE_PP] = vcal ? u16(((int64_t)vd << 17) / vcal
	                                       - s16(ch->r[BL_CELL_VOLT_CALIB_PP_OFF])) : 0xFFFF;
}

static void latch_channel(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t mode = ch->r[BL_CELL_MODE];

	double i = bl_fw_latch_sync(fw, c, t);
	fw->n_latches++;
	double v = ch->present ? bl_cell_voltage(&ch->cell, i) : 0.0;
	ch->r[BL_CELL_VOLTAGE] = voltage_raw(fw, ch, v + gauss(fw, fw->noise_v));

	uint16_t cur = 0;
	if (active(mode))
		cur = current_raw(fw, ch, fabs(i) + gauss(fw, fw->noise_a));
	ch->r[BL_CELL_CURRENT] = cur;

	if (!UNIT_OF(fw, LOCK))
		latch_pp(fw, c, t);

	uint32_t q = ((uint32_t)ch->r[BL_CELL_CHARGEH] << 16 | ch->r[BL_CELL_CHARGEL]) + cur;
	ch->r[BL_CELL_CHARGEL] = (uint16_t)(q & 0xFFFF);
	ch->r[BL_CELL_CHARGEH] = (uint16_t)(q >> 16);

	if ((UNIT_OF(fw, SETTINGS) & BL_SET_TRIM_OUTPUT) && driving(mode))
		bl_fw_trim(fw, c, t);
}

static uint16_t temperature_raw(struct bl_fw *fw, const struct bl_fw_chan *ch)
{
	if (ch->therm_open)
		return TEMP_RAW_MAX;
	double tc = (ch->present ? ch->cell.temp_c : fw->ambient_c) + gauss(fw, fw->noise_temp_c);
	double rt = NTC_R25 * exp(NTC_B * (1.0 / (tc + 273.15) - 1.0 / 298.15));
	long raw = round_half_away(32768.0 * rt / (NTC_R_SERIES + rt));
	return (uint16_t)(raw < 0 ? 0 : raw > TEMP_RAW_MAX ? TEMP_RAW_MAX : raw);
}

static void latch_temperatures(struct bl_fw *fw, uint64_t t)
{
	if (UNIT_OF(fw, LOCK))
		return;
	for (int c = 0; c < BL_CELLS; c++)
		fw->ch[c].r[BL_CELL_TEMPERATURE] = temperature_raw(fw, &fw->ch[c]);
	bl_fw_set_flags_all(fw, t);
}

static void latch_vcc(struct bl_fw *fw, uint64_t t)
{
	if (UNIT_OF(fw, LOCK))
		return;
	uint16_t set = UNIT_OF(fw, SETTINGS);
	if ((set & BL_SET_VCC_COMPENSATION) && !(set & BL_SET_TRIM_OUTPUT))
		bl_fw_sync(fw, t);   /* the compensated duty changes with VCC */
	double v = fw->vcc_v + gauss(fw, fw->noise_v);
	long raw = v > 0 ? round_half_away(VCC_RAW_VOLTS / v) : VCC_RAW_MAX;
	UNIT_OF(fw, VCC) = (uint16_t)(raw > VCC_RAW_MAX ? VCC_RAW_MAX : raw);
	bl_fw_set_flags_all(fw, t);
}

void bl_fw_slice_end(struct bl_fw *fw, uint64_t t)
{
	int hr = bl_hires_channel(UNIT_OF(fw, SETTINGS));
	int idx = hr >= 0 ? hr : fw->slice_idx;
	if (idx < BL_CELLS) {
		latch_channel(fw, idx, t);
		bl_fw_set_flags(fw, idx, t);
	} else if (idx == 4) {
		latch_temperatures(fw, t);
	} else {
		latch_vcc(fw, t);
	}
	fw->slice_idx = (idx + 1) % 6;
	fw->slices++;
	fw->slice_at += BL_FW_SLICE_US;
}
