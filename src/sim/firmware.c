/* sim/firmware.c - the measure MCU of a virtual Batlab, firmware v7
 * (PROTOCOL.md §4, §6-§11), with the analogue board and the cell slots.
 *
 * The model is event driven. The 10 kHz ISR is not stepped: its visible
 * work happens at two kinds of instants, the 100 ms SYSTEM_TIMER tick
 * (watchdog, streams, LED refresh, PSU poll) and the end of each 102.4 ms
 * measurement slice (one channel's V/I/PP/charge, or all temperatures, or
 * VCC). The main loop's visible work happens right after each command and
 * after each of those instants; between them nothing a host can observe
 * changes, so nothing is computed. The duty ramp of one count per pass is
 * kept in closed form (value at a time plus elapsed passes).
 *
 * The cell models are integrated lazily: each slot up to its own latch, and
 * up to "now" before anything changes the current through it. So a day with
 * four busy channels costs about 140 000 cell steps per channel.
 *
 * The integer measurement pipeline is kept where a host can see its effect
 * (calibration scale and offset, the 16-bit wrap, the zero threshold that
 * also zeroes >= 4.096 A, ADC saturation, PP granularity); the low-headroom
 * correction of §7.3 steps 2-4 is bypassed (see docs/sim-firmware-notes.md).
 */
#include <math.h>
#include <string.h>

#include "core/bl.h"
#include "core/proto.h"
#include "core/regs.h"
#include "core/units.h"
#include "sim/firmware.h"

#define UNIT_OF(fw, a) ((fw)->unit[BL_UNIT_##a])

/* Firmware constants (§4.6, §5, §10). */
#define V_BACKWARDS (-73)
#define V_PRESENT_MIN 13107
#define V_PRESENT_MAX 32700
#define VCC_LOW_RAW 31581
#define TEMP_RAW_MAX 32736
#define VCC_RAW_MAX 32736
#define CUR_MAX 2046              /* two 10-bit samples summed */
#define VSAMPLE_MIN (-4096)       /* 13-bit signed SPI ADC */
#define VSAMPLE_MAX 4095
#define DUTY_UNDERFLOW 900
#define PP_WINDOW_US 89600        /* ticks 129..1024 of a slice */
#define LED_REFRESH_TICKS 20      /* "more than 20 system ticks" */
#define PSU_POLL_TICKS 10
#define TRIM_LIMIT 99

/* The board: 1 V/A sense into a 10-bit ADC with a 4.096 V reference, two
 * samples summed per tick: 500 counts per amp. Thermistor divider: 1500 ohm
 * over a 10 k NTC with B 3380 (the values the default limits decode with). */
#define CUR_COUNTS_PER_A 500.0
#define NTC_R_SERIES 1500.0
#define NTC_B 3380.0
#define NTC_R25 10000.0
#define VCC_RAW_VOLTS 134217.728  /* 32 x 1024 x 4.096 */

static const uint8_t ee_cell_base[BL_CELL_NREGS] = {
	[BL_CELL_CURRENT_CALIB_OFF] = 0x02, [BL_CELL_CURRENT_CALIB_SCA] = 0x0A,
	[BL_CELL_TEMP_CALIB_R] = 0x12, [BL_CELL_TEMP_CALIB_B] = 0x1A,
	[BL_CELL_CURRENT_CALIB_PP] = 0x22, [BL_CELL_VOLTAGE_CALIB_PP] = 0x2A,
	[BL_CELL_CURR_CALIB_PP_OFF] = 0x3C, [BL_CELL_VOLT_CALIB_PP_OFF] = 0x44,
	[BL_CELL_CURR_LOWV_SCA] = 0x4E, [BL_CELL_CURR_LOWV_OFF] = 0x56,
	[BL_CELL_CURR_LOWV_OFF_SCA] = 0x5E,
};

/* Unit EEPROM addresses; 0xFF marks a RAM-only register. */
static const uint8_t ee_unit_addr[BL_UNIT_NREGS] = {
	[BL_UNIT_SERIAL_NUM] = 0x00, [BL_UNIT_DEVICE_ID] = 0x32,
	[BL_UNIT_FIRMWARE_VER] = 0xFF, [BL_UNIT_VCC] = 0xFF, [BL_UNIT_SINE_FREQ] = 0xFF,
	[BL_UNIT_SYSTEM_TIMER] = 0xFF, [BL_UNIT_SETTINGS] = 0xFF,
	[BL_UNIT_SINE_OFFSET] = 0xFF, [BL_UNIT_SINE_MAGDIV] = 0xFF,
	[BL_UNIT_LED_MESSAGE] = 0xFF, [BL_UNIT_BOOTLOAD] = 0xFF,
	[BL_UNIT_VOLT_CH_CALIB_OFF] = 0x34, [BL_UNIT_VOLT_CH_CALIB_SCA] = 0x36,
	[BL_UNIT_VOLT_DC_CALIB_OFF] = 0x38, [BL_UNIT_VOLT_DC_CALIB_SCA] = 0x3A,
	[BL_UNIT_LOCK] = 0xFF, [BL_UNIT_ZERO_AMP_THRESH] = 0x4C,
	[BL_UNIT_WATCHDOG_TIMER] = 0xFF,
};

static bool is_cell_ee(unsigned addr)
{
	return addr >= BL_CELL_CURRENT_CALIB_OFF && addr < BL_CELL_NREGS;
}

static int s16(uint16_t v)
{
	return v < 0x8000 ? (int)v : (int)v - 65536;
}

static uint16_t u16(int64_t v)
{
	return (uint16_t)((uint64_t)v & 0xFFFF);
}

static bool driving(uint16_t mode)
{
	return mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE;
}

static bool active(uint16_t mode)
{
	return driving(mode) || mode == BL_MODE_IMPEDANCE;
}

static double gauss(struct bl_fw *fw, double sigma)
{
	/* No draw when the noise is off: a silent board costs nothing. */
	return sigma > 0 ? sigma * bl_rng_gauss(&fw->rng) : 0.0;
}

static uint16_t ee_get16(const struct bl_fw *fw, unsigned a)
{
	return bl_le16_get(&fw->ee[a]);
}

static void ee_put16(struct bl_fw *fw, unsigned a, uint16_t v)
{
	bl_le16_put(&fw->ee[a], v);
}

/* ---- Current control (§8) --------------------------------------------- */

/* The internal ramped duty at time t (no state change). */
static uint16_t ramp_at(const struct bl_fw_chan *ch, uint64_t t)
{
	uint16_t sp = ch->r[BL_CELL_CURRENT_SETPOINT];
	if (!driving(ch->r[BL_CELL_MODE]) || sp == 0)
		return 0;
	uint64_t n = t > ch->ramp_t ? (t - ch->ramp_t) / BL_FW_PASS_US : 0;
	if (ch->ramp < sp)
		return (uint64_t)(sp - ch->ramp) <= n ? sp : (uint16_t)(ch->ramp + n);
	return (uint64_t)(ch->ramp - sp) <= n ? sp : (uint16_t)(ch->ramp - n);
}

/* When the ramp reaches its target. */
static uint64_t ramp_end(const struct bl_fw_chan *ch)
{
	uint16_t sp = ch->r[BL_CELL_CURRENT_SETPOINT];
	if (!driving(ch->r[BL_CELL_MODE]) || sp == 0)
		return ch->ramp_t;
	unsigned d = ch->ramp < sp ? sp - ch->ramp : ch->ramp - sp;
	return ch->ramp_t + (uint64_t)d * BL_FW_PASS_US;
}

/* SetDuty's compensation and clamps applied to a ramped duty. */
static uint16_t applied_duty(const struct bl_fw *fw, const struct bl_fw_chan *ch, uint16_t d)
{
	uint16_t set = UNIT_OF(fw, SETTINGS);
	int64_t a = d;
	if (set & BL_SET_TRIM_OUTPUT) {
		a = d + ch->comp;
	} else if (set & BL_SET_VCC_COMPENSATION) {
		/* duty x 5.0 V / VCC in the firmware's integers; VCC raw 0 (not
		 * measured yet) really does give duty 0. */
		uint64_t k = ((uint64_t)UNIT_OF(fw, VCC) + 16) >> 5;
		a = (int64_t)((k * d * 625 + (1u << 18)) >> 19);
	}
	/* The firmware's duty is unsigned 16-bit: a negative sum wraps to a
	 * large value, which the underflow clamp turns into 0. */
	uint16_t u = u16(a);
	if (u > DUTY_UNDERFLOW)
		return 0;
	return u > BL_DUTY_MAX ? BL_DUTY_MAX : u;
}

static double imp_mean_duty(const struct bl_fw *fw)
{
	unsigned m = UNIT_OF(fw, SINE_MAGDIV);
	double s = 0;
	if (m < 8)
		s = (UNIT_OF(fw, SINE_FREQ) & 0xFF) ? fw->sine_mean[m] : (double)(fw->sine[0] >> m);
	double d = UNIT_OF(fw, SINE_OFFSET) + s;
	return d > BL_DUTY_MAX ? BL_DUTY_MAX : d;
}

/* Current through slot c at time t, signed (+ charges the cell): the PWM
 * sets the sink reference to duty/640 x VCC and the sense is 1 V/A. */
static double chan_current(const struct bl_fw *fw, int c, uint64_t t)
{
	const struct bl_fw_chan *ch = &fw->ch[c];
	if (fw->state != BL_FW_APP || !ch->present)
		return 0;
	double k = fw->vcc_v / BL_DUTY_MAX;
	switch (ch->r[BL_CELL_MODE]) {
	case BL_MODE_CHARGE:
		return fw->psu_power ? k * applied_duty(fw, ch, ramp_at(ch, t)) : 0;
	case BL_MODE_DISCHARGE:
		return -k * applied_duty(fw, ch, ramp_at(ch, t));
	case BL_MODE_IMPEDANCE:
		return -k * imp_mean_duty(fw);
	default:
		return 0;
	}
}

/* Integrate `cell` (slot c's model or a copy of it) from t0 to t under
 * the conditions in force since slot c's last sync. */
static void integrate(const struct bl_fw *fw, int c, struct bl_cell *cell, uint64_t t0, uint64_t t)
{
	uint64_t te = ramp_end(&fw->ch[c]);
	if (fw->state == BL_FW_APP && te > t0) {
		/* Ramp segment: the duty climbs one count per pass, so the mean
		 * current is the mean of the two ends. */
		uint64_t t1 = te < t ? te : t;
		double i = 0.5 * (chan_current(fw, c, t0) + chan_current(fw, c, t1));
		bl_cell_step(cell, i, (double)(t1 - t0) * 1e-6);
		t0 = t1;
	}
	if (t > t0)
		bl_cell_step(cell, chan_current(fw, c, t), (double)(t - t0) * 1e-6);
}

/* Bring slot c's cell up to t. Callers sync before changing anything
 * chan_current reads. */
static void phys_sync(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	if (t <= ch->phys_t)
		return;
	if (ch->present)
		integrate(fw, c, &ch->cell, ch->phys_t, t);
	ch->phys_t = t;
}

void bl_fw_sync(struct bl_fw *fw, uint64_t t)
{
	for (int c = 0; c < BL_CELLS; c++)
		phys_sync(fw, c, t);
}

/* Restart the closed-form ramp at t from where it is now. */
static void ramp_rebase(struct bl_fw_chan *ch, uint64_t t)
{
	ch->ramp = ramp_at(ch, t);
	ch->ramp_t = t;
}

static void set_mode(struct bl_fw *fw, int c, uint64_t t, uint16_t mode)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t old = ch->r[BL_CELL_MODE];
	phys_sync(fw, c, t);
	ramp_rebase(ch, t);
	ch->r[BL_CELL_MODE] = mode;
	if (!driving(mode)) {
		ch->ramp = 0;
		if (driving(old))
			ch->r[BL_CELL_DUTY] = 0;
	}
	if (mode == BL_MODE_IMPEDANCE && old != BL_MODE_IMPEDANCE)
		ch->imp_since = t;
}

/* ---- State machine (§6.1) --------------------------------------------- */

static uint16_t compute_status(const struct bl_fw *fw, const struct bl_fw_chan *ch)
{
	const uint16_t *r = ch->r;
	int v = s16(r[BL_CELL_VOLTAGE]);
	int i = s16(r[BL_CELL_CURRENT]);
	uint16_t st = 0;

	if (v > s16(r[BL_CELL_VOLTAGE_LIMIT_CHG]))
		st |= BL_STAT_VOLTAGE_LIMIT_CHG;
	if (v < s16(r[BL_CELL_VOLTAGE_LIMIT_DCHG]))
		st |= BL_STAT_VOLTAGE_LIMIT_DCHG;
	if (i > s16(r[BL_CELL_CURRENT_LIMIT_CHG]))
		st |= BL_STAT_CURRENT_LIMIT_CHG;
	if (i > s16(r[BL_CELL_CURRENT_LIMIT_DCHG]))
		st |= BL_STAT_CURRENT_LIMIT_DCHG;
	/* The NTC raw value falls as the temperature rises. */
	if (r[BL_CELL_TEMPERATURE] < r[BL_CELL_TEMP_LIMIT_CHG])
		st |= BL_STAT_TEMP_LIMIT_CHG;
	if (r[BL_CELL_TEMPERATURE] < r[BL_CELL_TEMP_LIMIT_DCHG])
		st |= BL_STAT_TEMP_LIMIT_DCHG;
	if (v < V_BACKWARDS)
		st |= BL_STAT_BACKWARDS;
	if ((v > V_BACKWARDS && v < V_PRESENT_MIN) || v > V_PRESENT_MAX)
		st |= BL_STAT_NO_CELL;
	if (!fw->psu_flag)
		st |= BL_STAT_NO_PSU;
	if (UNIT_OF(fw, SERIAL_NUM) == 0xFFFF || UNIT_OF(fw, DEVICE_ID) == 0xFFFF)
		st |= BL_STAT_NOT_INITIALIZED;
	if (UNIT_OF(fw, VOLT_CH_CALIB_SCA) == 0xFFFF || r[BL_CELL_CURRENT_CALIB_SCA] == 0xFFFF)
		st |= BL_STAT_NOT_CALIBRATED;
	if (UNIT_OF(fw, VCC) > VCC_LOW_RAW)
		st |= BL_STAT_LOW_VCC;
	return st;
}

static int led_for_mode(uint16_t mode)
{
	static const uint8_t led[BL_MODE_COUNT] = {
		[BL_MODE_NO_CELL] = BL_LED_OFF, [BL_MODE_BACKWARDS] = BL_LED_FLASH_FAST,
		[BL_MODE_IDLE] = BL_LED_BLIP, [BL_MODE_CHARGE] = BL_LED_RAMP_UP,
		[BL_MODE_DISCHARGE] = BL_LED_RAMP_DOWN, [BL_MODE_IMPEDANCE] = BL_LED_SINE,
		[BL_MODE_STOPPED] = BL_LED_ON,
	};
	return mode < BL_MODE_COUNT ? led[mode] : -1;
}

static void set_flags(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t st = compute_status(fw, ch);
	uint16_t mode = ch->r[BL_CELL_MODE];
	uint16_t stop = 0;
	bool safety = !(UNIT_OF(fw, SETTINGS) & BL_SET_SAFETY_DISABLE);
	const uint16_t common = BL_STAT_VOLTAGE_LIMIT_CHG | BL_STAT_VOLTAGE_LIMIT_DCHG | BL_STAT_LOW_VCC;

	switch (mode) {
	case BL_MODE_NO_CELL:
		if (!(st & BL_STAT_NO_CELL))
			mode = BL_MODE_IDLE;
		if (st & BL_STAT_BACKWARDS)
			mode = BL_MODE_BACKWARDS;
		break;
	case BL_MODE_BACKWARDS:
		if (!(st & BL_STAT_BACKWARDS))
			mode = BL_MODE_IDLE;
		break;
	case BL_MODE_IDLE:
		ch->r[BL_CELL_ERROR] = 0;
		if (st & BL_STAT_NO_CELL)
			mode = BL_MODE_NO_CELL;
		if (st & BL_STAT_BACKWARDS)
			mode = BL_MODE_BACKWARDS;
		break;
	case BL_MODE_CHARGE:
		if (safety)
			stop = st & (common | BL_STAT_CURRENT_LIMIT_CHG | BL_STAT_TEMP_LIMIT_CHG | BL_STAT_NO_PSU);
		break;
	case BL_MODE_DISCHARGE:
		if (safety) {
			uint16_t m = common | BL_STAT_CURRENT_LIMIT_DCHG | BL_STAT_TEMP_LIMIT_DCHG;
			if (!(UNIT_OF(fw, SETTINGS) & BL_SET_NO_PSU_DCHG_ENABLE))
				m |= BL_STAT_NO_PSU;
			stop = st & m;
		}
		break;
	case BL_MODE_IMPEDANCE:
		if (safety)
			stop = st & (common | BL_STAT_CURRENT_LIMIT_DCHG | BL_STAT_TEMP_LIMIT_DCHG);
		break;
	default:
		break;   /* STOPPED is sticky; values >= 7 are left alone */
	}
	if (stop) {
		ch->r[BL_CELL_ERROR] |= stop;
		mode = BL_MODE_STOPPED;
	}
	if (mode != ch->r[BL_CELL_MODE])
		set_mode(fw, c, t, mode);
	ch->r[BL_CELL_STATUS] = st;

	int led = led_for_mode(ch->r[BL_CELL_MODE]);
	if (led >= 0 && led != ch->led) {
		ch->led = led;
		if (fw->hooks.led)
			fw->hooks.led(fw->hooks.ud, t, c, (uint16_t)led);
	}
}

static void set_flags_all(struct bl_fw *fw, uint64_t t)
{
	for (int c = 0; c < BL_CELLS; c++)
		set_flags(fw, c, t);
}

/* ---- Streams (§2.6) ---------------------------------------------------- */

static void send_streams(struct bl_fw *fw, uint64_t t)
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
}

uint64_t bl_fw_next_stream(const struct bl_fw *fw)
{
	if (fw->state != BL_FW_APP)
		return UINT64_MAX;
	uint16_t now = UNIT_OF(fw, SYSTEM_TIMER);
	uint64_t best = UINT64_MAX;
	for (int c = 0; c < BL_CELLS; c++) {
		const struct bl_fw_chan *ch = &fw->ch[c];
		uint16_t n = ch->r[BL_CELL_REPORT_INTERVAL];
		if (n == 0 || n == 0xFFFF)
			continue;
		/* First SYSTEM_TIMER value with now - last_sent > n. */
		uint16_t k = (uint16_t)(ch->last_sent + n + 1 - now);
		uint64_t ticks = k ? k : 65536;
		uint64_t at = fw->isr_t0 + (fw->systicks + ticks) * BL_FW_SYSTICK_US + BL_FW_PASS_US / 2;
		if (at < best)
			best = at;
	}
	return best;
}

/* ---- Measurement latches (§7) ------------------------------------------ */

static uint16_t voltage_raw(const struct bl_fw *fw, const struct bl_fw_chan *ch, double volts)
{
	double s = volts / 4.5 * 4096.0;
	if (s < VSAMPLE_MIN)
		s = VSAMPLE_MIN;
	if (s > VSAMPLE_MAX)
		s = VSAMPLE_MAX;
	int64_t vsum = llround(s * 1024.0);
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
	int64_t csum = llround(cur * 1024.0);
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
	long cd = lround(ipp * CUR_COUNTS_PER_A);
	long vd = lround(vpp / 4.5 * 4096.0);
	cd = cd < 0 ? 0 : cd > CUR_MAX ? CUR_MAX : cd;
	vd = vd < 0 ? 0 : vd > 8191 ? 8191 : vd;
	uint16_t ccal = ch->r[BL_CELL_CURRENT_CALIB_PP], vcal = ch->r[BL_CELL_VOLTAGE_CALIB_PP];
	ch->r[BL_CELL_CURRENT_PP] = ccal ? u16(((int64_t)cd << 18) / ccal
	                                       - s16(ch->r[BL_CELL_CURR_CALIB_PP_OFF])) : 0xFFFF;
	ch->r[BL_CELL_VOLTAGE_PP] = vcal ? u16(((int64_t)vd << 17) / vcal
	                                       - s16(ch->r[BL_CELL_VOLT_CALIB_PP_OFF])) : 0xFFFF;
}

static void trim(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t cur = ch->r[BL_CELL_CURRENT];
	if (cur == ch->trim_last)
		return;
	ch->trim_last = cur;
	/* 2 x I_raw = 125 x duty is 8000 counts/A against 128 counts/A. */
	long d = ramp_at(ch, t);
	if (2L * cur > (d + 1) * 125 && ch->comp > -TRIM_LIMIT)
		ch->comp--;
	else if (2L * cur < d * 125 && ch->comp < TRIM_LIMIT)
		ch->comp++;
	ch->r[BL_CELL_COMPENSATION] = u16(ch->comp);
}

static void latch_channel(struct bl_fw *fw, int c, uint64_t t)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	uint16_t mode = ch->r[BL_CELL_MODE];

	phys_sync(fw, c, t);
	fw->n_latches++;
	double i = chan_current(fw, c, t);
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
		trim(fw, c, t);
}

static uint16_t temperature_raw(struct bl_fw *fw, const struct bl_fw_chan *ch)
{
	if (ch->therm_open)
		return TEMP_RAW_MAX;
	double tc = (ch->present ? ch->cell.temp_c : fw->ambient_c) + gauss(fw, fw->noise_temp_c);
	double rt = NTC_R25 * exp(NTC_B * (1.0 / (tc + 273.15) - 1.0 / 298.15));
	long raw = lround(32768.0 * rt / (NTC_R_SERIES + rt));
	return (uint16_t)(raw < 0 ? 0 : raw > TEMP_RAW_MAX ? TEMP_RAW_MAX : raw);
}

static void latch_temperatures(struct bl_fw *fw, uint64_t t)
{
	if (UNIT_OF(fw, LOCK))
		return;
	for (int c = 0; c < BL_CELLS; c++)
		fw->ch[c].r[BL_CELL_TEMPERATURE] = temperature_raw(fw, &fw->ch[c]);
	set_flags_all(fw, t);
}

static void latch_vcc(struct bl_fw *fw, uint64_t t)
{
	if (UNIT_OF(fw, LOCK))
		return;
	uint16_t set = UNIT_OF(fw, SETTINGS);
	if ((set & BL_SET_VCC_COMPENSATION) && !(set & BL_SET_TRIM_OUTPUT))
		bl_fw_sync(fw, t);   /* the compensated duty changes with VCC */
	double v = fw->vcc_v + gauss(fw, fw->noise_v);
	long raw = v > 0 ? lround(VCC_RAW_VOLTS / v) : VCC_RAW_MAX;
	UNIT_OF(fw, VCC) = (uint16_t)(raw > VCC_RAW_MAX ? VCC_RAW_MAX : raw);
	set_flags_all(fw, t);
}

static void slice_end(struct bl_fw *fw, uint64_t t)
{
	int hr = bl_hires_channel(UNIT_OF(fw, SETTINGS));
	int idx = hr >= 0 ? hr : fw->slice_idx;
	if (idx < BL_CELLS) {
		latch_channel(fw, idx, t);
		set_flags(fw, idx, t);
	} else if (idx == 4) {
		latch_temperatures(fw, t);
	} else {
		latch_vcc(fw, t);
	}
	fw->slice_idx = (idx + 1) % 6;
	fw->slices++;
}

/* ---- 100 ms tick: SYSTEM_TIMER, watchdog, and the main loop's timers ---- */

static void systick(struct bl_fw *fw, uint64_t t)
{
	fw->systicks++;
	uint16_t now = ++UNIT_OF(fw, SYSTEM_TIMER);

	if (UNIT_OF(fw, SETTINGS) & BL_SET_WATCHDOG_TIMER) {
		if (UNIT_OF(fw, WATCHDOG_TIMER) > 0) {
			UNIT_OF(fw, WATCHDOG_TIMER)--;
		} else {
			/* Every 100 ms while it stays 0, no ERROR bit (§6.4). */
			for (int c = 0; c < BL_CELLS; c++)
				set_mode(fw, c, t, BL_MODE_STOPPED);
			set_flags_all(fw, t);
		}
	}

	/* The main loop sees the new tick on its next pass. */
	uint64_t tp = t + BL_FW_PASS_US / 2;
	send_streams(fw, tp);
	if ((uint16_t)(now - fw->last_led) > LED_REFRESH_TICKS) {
		fw->last_led = now;
		for (int c = 0; c < BL_CELLS; c++)
			if (fw->ch[c].led >= 0 && fw->hooks.led)
				fw->hooks.led(fw->hooks.ud, tp, c, (uint16_t)fw->ch[c].led);
	}
	if ((uint16_t)(now - fw->last_psu) > PSU_POLL_TICKS) {
		fw->last_psu = now;
		bool flag = fw->hooks.psu_poll ? fw->hooks.psu_poll(fw->hooks.ud, tp) != 0 : true;
		if (flag != fw->psu_flag) {
			fw->psu_flag = flag;
			set_flags_all(fw, tp);
		}
	}
}

/* ---- Boot, reset (§6.5, §11.1) ------------------------------------------ */

static void load_power_on(struct bl_fw *fw)
{
	for (size_t i = 0; i < bl_regs_count; i++) {
		const struct bl_reg *g = &bl_regs[i];
		if (g->ns_kind == BL_NSK_CELL && g->addr < BL_CELL_NREGS) {
			for (int c = 0; c < BL_CELLS; c++)
				fw->ch[c].r[g->addr] = g->power_on;
		} else if (g->ns_kind == BL_NSK_UNIT && g->addr < BL_UNIT_NREGS) {
			fw->unit[g->addr] = g->power_on;
		}
	}
	for (unsigned a = 0; a < BL_UNIT_NREGS; a++)
		if (ee_unit_addr[a] != 0xFF)
			fw->unit[a] = ee_get16(fw, ee_unit_addr[a]);
	if (UNIT_OF(fw, ZERO_AMP_THRESH) == 0xFFFF)
		UNIT_OF(fw, ZERO_AMP_THRESH) = 2000;
	for (int c = 0; c < BL_CELLS; c++) {
		uint16_t *r = fw->ch[c].r;
		for (unsigned a = BL_CELL_CURRENT_CALIB_OFF; a < BL_CELL_NREGS; a++)
			r[a] = ee_get16(fw, ee_cell_base[a] + 2u * (unsigned)c);
		if (r[BL_CELL_CURR_LOWV_SCA] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_SCA] = 10000;
		if (r[BL_CELL_CURR_LOWV_OFF] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_OFF] = 14500;
		if (r[BL_CELL_CURR_LOWV_OFF_SCA] == 0xFFFF)
			r[BL_CELL_CURR_LOWV_OFF_SCA] = 6500;
	}
}

static void app_start(struct bl_fw *fw, uint64_t t)
{
	bl_fw_sync(fw, t);   /* the outputs were off until now */
	load_power_on(fw);
	for (int c = 0; c < BL_CELLS; c++) {
		struct bl_fw_chan *ch = &fw->ch[c];
		ch->ramp = 0;
		ch->ramp_t = t;
		ch->comp = 0;
		ch->trim_last = 0;
		ch->last_sent = 0;
		ch->led = -1;
		ch->imp_since = 0;
	}
	fw->state = BL_FW_APP;
	fw->busy_until = t;
	fw->isr_t0 = t;
	fw->systicks = 0;
	fw->slices = 0;
	fw->slice_idx = 0;
	fw->last_led = 0;
	fw->last_psu = 0;
	/* The comms MCU reports PSU = 1 after its start-up sweep; the first
	 * real poll comes 1.1 s later. */
	fw->psu_flag = true;
	set_flags_all(fw, t);
}

bool bl_fw_image_valid(const struct bl_fw *fw)
{
	unsigned sum = 0;
	for (size_t i = 0; i + 1 < BL_FLASH_IMAGE_SIZE; i++)
		sum += fw->flash[i];
	return (uint8_t)sum == fw->flash[BL_FLASH_IMAGE_SIZE - 1];
}

static void go_down(struct bl_fw *fw, uint64_t t, uint64_t delay, bool to_app)
{
	bl_fw_sync(fw, t);   /* currents stop now */
	fw->state = BL_FW_DOWN;
	fw->down_until = t + delay;
	fw->down_to_app = to_app;
	fw->reset_at = UINT64_MAX;
}

void bl_fw_reset(struct bl_fw *fw, uint64_t t)
{
	go_down(fw, t, BL_FW_BOOT_DECIDE_US, false);
}

static void boot_stage(struct bl_fw *fw, uint64_t t)
{
	if (fw->down_to_app) {
		app_start(fw, t);
		return;
	}
	if (fw->ee[BL_FW_EE_BOOT_FLAG] != 0 || !bl_fw_image_valid(fw)) {
		fw->state = BL_FW_BOOTLOADER;
		fw->ee[BL_FW_EE_BOOT_FLAG] = 0;
		fw->bl_erased = false;
		fw->bl_addr = BL_FLASH_BASE;
		fw->busy_until = t;
		return;
	}
	fw->down_until = t + BL_FW_APP_INIT_US;
	fw->down_to_app = true;
}

/* ---- Events ------------------------------------------------------------ */

uint64_t bl_fw_next_event(const struct bl_fw *fw)
{
	switch (fw->state) {
	case BL_FW_DOWN:
		return fw->down_until;
	case BL_FW_BOOTLOADER:
		return UINT64_MAX;
	case BL_FW_APP:
		break;
	}
	uint64_t tick = fw->isr_t0 + (fw->systicks + 1) * BL_FW_SYSTICK_US;
	uint64_t slice = fw->isr_t0 + (fw->slices + 1) * BL_FW_SLICE_US;
	uint64_t t = tick < slice ? tick : slice;
	return fw->reset_at < t ? fw->reset_at : t;
}

void bl_fw_step(struct bl_fw *fw)
{
	uint64_t t = bl_fw_next_event(fw);
	if (t == UINT64_MAX)
		return;
	if (fw->state == BL_FW_DOWN) {
		boot_stage(fw, t);
		return;
	}
	if (fw->reset_at <= t) {
		bl_fw_reset(fw, fw->reset_at);
		return;
	}
	/* Within one ISR tick SYSTEM_TIMER moves before the slice handler. */
	if (t == fw->isr_t0 + (fw->systicks + 1) * BL_FW_SYSTICK_US)
		systick(fw, t);
	else
		slice_end(fw, t);
}

/* ---- Commands (§2.4, §2.5, §4) ------------------------------------------ */

/* Writes that block interrupts stretch the ISR's timeline. */
static void stall(struct bl_fw *fw, uint64_t *delay, uint64_t us)
{
	*delay += us;
	fw->isr_t0 += us;
}

static bool cell_write(struct bl_fw *fw, int c, unsigned addr, uint16_t v, uint64_t t, uint64_t *delay)
{
	struct bl_fw_chan *ch = &fw->ch[c];
	switch (addr) {
	case BL_CELL_MODE:
		set_mode(fw, c, t, v);
		break;
	case BL_CELL_CURRENT_SETPOINT:
		phys_sync(fw, c, t);
		ramp_rebase(ch, t);
		ch->r[addr] = v;
		if (v == 0)
			ch->ramp = 0;
		break;
	case BL_CELL_CHARGEL:
	case BL_CELL_CHARGEH:
		ch->r[BL_CELL_CHARGEL] = 0;
		ch->r[BL_CELL_CHARGEH] = 0;
		ch->r[addr] = v;
		break;
	default:
		ch->r[addr] = v;
		if (is_cell_ee(addr)) {
			ee_put16(fw, ee_cell_base[addr] + 2u * (unsigned)c, v);
			stall(fw, delay, 2 * BL_FW_EE_BYTE_US);
		}
		break;
	}
	return true;
}

static bool unit_write(struct bl_fw *fw, unsigned addr, uint16_t v, uint64_t t, uint64_t *delay)
{
	switch (addr) {
	case BL_UNIT_FIRMWARE_VER:
	case BL_UNIT_VCC:
	case BL_UNIT_SYSTEM_TIMER:
		return false;
	case BL_UNIT_SERIAL_NUM:
	case BL_UNIT_DEVICE_ID:
		if (fw->unit[addr] != 0xFFFF && !(UNIT_OF(fw, SETTINGS) & BL_SET_DEBUG))
			return false;
		break;
	case BL_UNIT_SINE_FREQ:
	case BL_UNIT_SETTINGS:
	case BL_UNIT_SINE_OFFSET:
	case BL_UNIT_SINE_MAGDIV:
		/* These change the current some channel may be drawing. (The
		 * sine phase reset of SINE_FREQ has no other visible effect in
		 * a model that takes the whole peak window.) */
		bl_fw_sync(fw, t);
		break;
	case BL_UNIT_BOOTLOAD:
		fw->ee[BL_FW_EE_BOOT_FLAG] = 0xFE;
		stall(fw, delay, BL_FW_EE_BYTE_US);
		fw->reset_at = t + *delay + BL_FW_PASS_US;
		return true;   /* BOOTLOAD keeps reading 0 */
	default:
		break;
	}
	fw->unit[addr] = v;
	if (ee_unit_addr[addr] != 0xFF) {
		ee_put16(fw, ee_unit_addr[addr], v);
		stall(fw, delay, 2 * BL_FW_EE_BYTE_US);
	}
	return true;
}

static void app_command(struct bl_fw *fw, uint64_t t, const uint8_t pkt[5], uint8_t resp[5],
                        uint64_t *delay)
{
	uint8_t ns = pkt[1];
	bool wr = pkt[2] & 0x80;
	unsigned addr = pkt[2] & 0x7F;
	uint16_t v = bl_le16_get(pkt + 3);
	bool ok = false;
	uint16_t out = 0;

	switch (bl_ns_kind(ns)) {
	case BL_NSK_CELL: {
		struct bl_fw_chan *ch = &fw->ch[ns];
		if (addr >= BL_CELL_NREGS)
			break;
		ok = true;
		if (wr) {
			cell_write(fw, ns, addr, v, t, delay);
		} else {
			if (addr == BL_CELL_DUTY && driving(ch->r[BL_CELL_MODE]))
				ch->r[addr] = applied_duty(fw, ch, ramp_at(ch, t));
			out = ch->r[addr];
		}
		break;
	}
	case BL_NSK_UNIT:
		if (addr >= BL_UNIT_NREGS)
			break;
		if (wr) {
			ok = unit_write(fw, addr, v, t, delay);
		} else {
			ok = true;
			out = fw->unit[addr];
		}
		break;
	default:
		break;   /* namespace 5 and 0x06..0xFE: 257 */
	}
	if (ok)
		bl_le16_put(resp + 3, wr ? 0 : out);
}

static void boot_command(struct bl_fw *fw, uint64_t t, const uint8_t pkt[5], uint8_t resp[5],
                         uint64_t *delay)
{
	bool wr = pkt[2] & 0x80;
	unsigned addr = pkt[2] & 0x7F;
	uint16_t v = bl_le16_get(pkt + 3);
	bool ok = false;
	uint16_t out = 0;

	switch (addr) {
	case BL_BOOT_BOOTLOAD:
		if (wr && bl_fw_image_valid(fw)) {
			ok = true;
			go_down(fw, t, BL_FW_APP_INIT_US, true);
		}
		break;
	case BL_BOOT_ADDR:
		if (!wr) {
			ok = true;
			out = fw->bl_addr;
		} else if (v < BL_FLASH_BASE) {
			fw->bl_addr = BL_FLASH_BASE;
		} else {
			ok = true;
			fw->bl_addr = v;
		}
		break;
	case BL_BOOT_DATA: {
		unsigned off = (unsigned)fw->bl_addr - BL_FLASH_BASE;
		bool in = off < BL_FLASH_IMAGE_SIZE;
		ok = true;
		if (!wr) {
			out = in ? fw->flash[off] : 0;
			break;
		}
		if (!fw->bl_erased) {
			memset(fw->flash, 0xFF, sizeof fw->flash);
			fw->bl_erased = true;
			*delay += BL_FW_ERASE_US;
		}
		if (in)
			fw->flash[off] = (uint8_t)(v & 0xFF);
		break;
	}
	default:
		/* The odd answers of §4.4: reads echo, writes say 0x82. */
		if (wr)
			resp[2] = 0x82;
		break;
	}
	if (ok)
		bl_le16_put(resp + 3, wr ? 0 : out);
}

uint64_t bl_fw_command(struct bl_fw *fw, uint64_t t, uint64_t arrived, const uint8_t pkt[5])
{
	uint8_t resp[5] = {0xAA, pkt[1], pkt[2], 0x01, 0x01};
	uint64_t delay = 0;

	switch (fw->state) {
	case BL_FW_DOWN:
		return t;
	case BL_FW_BOOTLOADER:
		/* A polled UART: bytes that came in during an erase are lost,
		 * and only namespace 5 is parsed. */
		if (pkt[1] != BL_NS_BOOTLOADER || arrived < fw->busy_until)
			return t > fw->busy_until ? t : fw->busy_until;
		fw->n_commands++;
		boot_command(fw, t, pkt, resp, &delay);
		if (fw->hooks.to_host)
			fw->hooks.to_host(fw->hooks.ud, t + delay, resp, sizeof resp);
		fw->busy_until = t + delay;
		return fw->busy_until;
	case BL_FW_APP:
		break;
	}
	if (pkt[1] == BL_NS_COMMS)
		return t;   /* never forwarded by the comms MCU; ignored */
	fw->n_commands++;
	app_command(fw, t, pkt, resp, &delay);
	if (fw->hooks.to_host)
		fw->hooks.to_host(fw->hooks.ud, t + delay, resp, sizeof resp);
	/* The rest of this main-loop pass. */
	set_flags_all(fw, t + delay);
	send_streams(fw, t + delay);
	fw->busy_until = t + delay + BL_FW_PASS_US;
	return fw->busy_until;
}

/* ---- Board changes ------------------------------------------------------ */

void bl_fw_cell_insert(struct bl_fw *fw, uint64_t t, int slot, const struct bl_cell_params *p)
{
	phys_sync(fw, slot, t);
	bl_cell_init(&fw->ch[slot].cell, p);
	fw->ch[slot].present = true;
	fw->ch[slot].phys_t = t;
}

void bl_fw_cell_remove(struct bl_fw *fw, uint64_t t, int slot)
{
	phys_sync(fw, slot, t);
	fw->ch[slot].present = false;
}

void bl_fw_set_vcc(struct bl_fw *fw, uint64_t t, double volts)
{
	bl_fw_sync(fw, t);
	fw->vcc_v = volts;
}

void bl_fw_set_psu_power(struct bl_fw *fw, uint64_t t, bool present)
{
	bl_fw_sync(fw, t);
	fw->psu_power = present;
}

void bl_fw_set_thermistor_open(struct bl_fw *fw, uint64_t t, int slot, bool open)
{
	(void)t;
	fw->ch[slot].therm_open = open;
}

void bl_fw_set_self_heating(struct bl_fw *fw, uint64_t t, int slot, double watts)
{
	phys_sync(fw, slot, t);
	fw->ch[slot].cell.p.self_heating_w = watts;
}

bool bl_fw_cell_view(const struct bl_fw *fw, int slot, uint64_t t, struct bl_cell *out)
{
	const struct bl_fw_chan *ch = &fw->ch[slot];
	if (!ch->present)
		return false;
	*out = ch->cell;
	if (t > ch->phys_t)
		integrate(fw, slot, out, ch->phys_t, t);
	return true;
}

double bl_fw_applied_current(const struct bl_fw *fw, int slot, uint64_t t)
{
	return chan_current(fw, slot, t);
}

uint16_t bl_fw_duty_now(const struct bl_fw *fw, int slot, uint64_t t)
{
	const struct bl_fw_chan *ch = &fw->ch[slot];
	if (fw->state != BL_FW_APP)
		return 0;
	if (driving(ch->r[BL_CELL_MODE]))
		return applied_duty(fw, ch, ramp_at(ch, t));
	if (ch->r[BL_CELL_MODE] == BL_MODE_IMPEDANCE)
		return (uint16_t)lround(imp_mean_duty(fw));
	return 0;
}

/* ---- Power-up ----------------------------------------------------------- */

static void default_eeprom(struct bl_fw *fw, const struct bl_fw_setup *s)
{
	memset(fw->ee, 0xFF, sizeof fw->ee);
	/* Even an uncalibrated unit was flashed through its bootloader, which
	 * cleared the boot flag on entry. */
	fw->ee[BL_FW_EE_BOOT_FLAG] = 0;
	if (s->blank_eeprom)
		return;
	/* Nominal identity calibration (PROTOCOL.md §15). */
	ee_put16(fw, 0x00, s->serial_num);
	ee_put16(fw, 0x32, s->device_id);
	for (unsigned c = 0; c < BL_CELLS; c++) {
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_SCA] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_TEMP_CALIB_R] + 2 * c, 1500);
		ee_put16(fw, ee_cell_base[BL_CELL_TEMP_CALIB_B] + 2 * c, 3380);
		ee_put16(fw, ee_cell_base[BL_CELL_CURRENT_CALIB_PP] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_VOLTAGE_CALIB_PP] + 2 * c, 16384);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_CALIB_PP_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_VOLT_CALIB_PP_OFF] + 2 * c, 0);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_SCA] + 2 * c, 10000);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_OFF] + 2 * c, 14500);
		ee_put16(fw, ee_cell_base[BL_CELL_CURR_LOWV_OFF_SCA] + 2 * c, 6500);
	}
	ee_put16(fw, 0x34, 0);
	ee_put16(fw, 0x36, 16384);
	ee_put16(fw, 0x38, 0);
	ee_put16(fw, 0x3A, 16384);
	ee_put16(fw, 0x4C, 2000);
}

void bl_fw_init(struct bl_fw *fw, const struct bl_fw_setup *s,
                const struct bl_fw_hooks *h, uint64_t now)
{
	memset(fw, 0, sizeof *fw);
	fw->hooks = *h;
	fw->vcc_v = s->vcc_v;
	fw->psu_power = s->psu_power;
	fw->ambient_c = s->ambient_c;
	fw->noise_v = s->noise_v;
	fw->noise_a = s->noise_a;
	fw->noise_temp_c = s->noise_temp_c;
	fw->reset_at = UINT64_MAX;
	bl_rng_seed(&fw->rng, s->seed);

	double sum[8] = {0};
	for (int i = 0; i < 256; i++) {
		long v = lround(127.5 + 127.5 * sin(2.0 * 3.14159265358979323846 * i / 256.0));
		fw->sine[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		for (int m = 0; m < 8; m++)
			sum[m] += fw->sine[i] >> m;
	}
	for (int m = 0; m < 8; m++)
		fw->sine_mean[m] = sum[m] / 256.0;

	for (int c = 0; c < BL_CELLS; c++) {
		fw->ch[c].phys_t = now;
		fw->ch[c].led = -1;
		if (s->slot_used[c]) {
			bl_cell_init(&fw->ch[c].cell, &s->cells[c]);
			fw->ch[c].present = true;
		}
	}
	default_eeprom(fw, s);
	if (s->image)
		memcpy(fw->flash, s->image, sizeof fw->flash);
	else
		memset(fw->flash, 0xFF, sizeof fw->flash);

	/* Plugged in long enough ago that the boot is over. */
	fw->state = BL_FW_DOWN;
	fw->down_to_app = false;
	boot_stage(fw, now);
	if (fw->state == BL_FW_DOWN) {
		app_start(fw, now);
		/* The comms MCU has been polled long ago: start with its truth. */
		if (fw->hooks.psu_poll) {
			fw->psu_flag = fw->hooks.psu_poll(fw->hooks.ud, now) != 0;
			set_flags_all(fw, now);
		}
	}
}
