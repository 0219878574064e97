/* cli/cmd_info.c - the commands that only look: `batlab list`, `info`,
 * `measure` and `setpoints`. None of them writes to the device (not even
 * the watchdog), so they are safe while cells sit in the slots. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"

/* ---- list -------------------------------------------------------------------- */

static const struct cli_cmd list_cmd = {
	"list", "", 
	"Every connected Batlab, one line each: serial number, port, firmware\n"
	"version, whether it sits in its bootloader, external power (COMMS PSU),\n"
	"USB supply VCC, and each channel's MODE. A port that was found but could\n"
	"not be opened (another program holds it: a test in another batlab, say)\n"
	"is listed with the reason.\n",
	0, 0, true,
};

static void list_device(struct bl_device *d)
{
	const struct bl_identity *id = bl_device_identity(d);
	uint16_t psu = 0, vcc = 0, mode;

	printf("%-8u %-14s ", id->serial, bl_device_port(d));
	if (id->bootloader) {
		/* The bootloader answers namespace 5 only: nothing else to show. */
		printf("%-3s %-4s %-4s %-6s %s\n", "-", "yes", "-", "-", "(bootloader: load firmware)");
		return;
	}
	printf("%-3u %-4s ", id->firmware, "no");
	if (cli_read(d, BL_NS_COMMS, BL_COMMS_PSU, &psu) == BL_OK)
		printf("%-4s ", psu ? "yes" : "no");
	else
		printf("%-4s ", "?");
	if (cli_read(d, BL_NS_UNIT, BL_UNIT_VCC, &vcc) != BL_OK)
		printf("%-6s", "?");
	else if (vcc == 0)
		printf("%-6s", "--");  /* not measured yet: the unit just started */
	else
		printf("%-6.3f", bl_vcc_from_raw(vcc));
	for (int c = 0; c < BL_CELLS; c++) {
		const char *name = NULL;
		if (cli_read(d, (uint8_t)c, BL_CELL_MODE, &mode) == BL_OK)
			name = bl_mode_name(mode);
		printf(c + 1 < BL_CELLS ? " %-9s" : " %s", name ? name : "?");
	}
	printf("\n");
}

int cmd_list(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r;

	if ((r = cli_parse(&list_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_devsel_open(&s, &o, "list", CLI_SEL_ALL | CLI_SEL_BOOTLOADER)) != BL_EXIT_OK)
		return r;
	printf("%-8s %-14s %-3s %-4s %-4s %-6s %-9s %-9s %-9s %s\n", "SERIAL", "PORT", "FW", "BOOT",
	       "PSU", "VCC/V", "CELL0", "CELL1", "CELL2", "CELL3");
	if (!o.port && !o.have_serial)
		for (size_t i = 0; i < bl_pool_count(s.pool); i++)
			list_device(bl_pool_device(s.pool, i));
	else if (s.dev)
		list_device(s.dev);
	for (int i = 0; i < s.nfailed; i++)
		printf("%-8s %-14s (%s)\n", "-", s.failed[i].path, s.failed[i].reason);
	r = cli_interrupted(&s) ? BL_EXIT_INTERRUPTED : BL_EXIT_OK;
	cli_devsel_close(&s);
	return r;
}

/* ---- info -------------------------------------------------------------------- */

static const struct cli_cmd info_cmd = {
	"info", "",
	"The unit: serial number, port, firmware version, VCC, impedance sine\n"
	"settings (SINE_FREQ, SINE_OFFSET, SINE_MAGDIV), SETTINGS with the names\n"
	"of its set bits, LOCK, ZERO_AMP_THRESH and external power (PSU).\n",
	0, 0, true,
};

struct info_reg {
	const char *label;
	uint8_t ns, addr;
};

static const struct info_reg info_regs[] = {
	{"VCC", BL_NS_UNIT, BL_UNIT_VCC},
	{"SINE_FREQ", BL_NS_UNIT, BL_UNIT_SINE_FREQ},
	{"SETTINGS", BL_NS_UNIT, BL_UNIT_SETTINGS},
	{"SINE_OFFSET", BL_NS_UNIT, BL_UNIT_SINE_OFFSET},
	{"SINE_MAGDIV", BL_NS_UNIT, BL_UNIT_SINE_MAGDIV},
	{"LOCK", BL_NS_UNIT, BL_UNIT_LOCK},
	{"ZERO_AMP_THRESH", BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH},
	{"PSU", BL_NS_COMMS, BL_COMMS_PSU},
};

static void info_value(const struct info_reg *ir, uint16_t v)
{
	char bits[160];

	printf("%-16s ", ir->label);
	switch (ir->addr | (ir->ns == BL_NS_COMMS ? 0x100 : 0)) {
	case BL_UNIT_VCC:
		if (v == 0)
			printf("-- (not measured yet)\n");
		else
			printf("%.3f V\n", bl_vcc_from_raw(v));
		break;
	case BL_UNIT_SINE_FREQ: printf("%.4f Hz\n", bl_freq_from_raw(v)); break;
	case BL_UNIT_SETTINGS:
		bl_bits_format(BL_UK_SETTINGS, v, " ", bits, sizeof bits);
		printf("0x%04X %s\n", v, bits[0] ? bits : "(none)");
		break;
	case BL_UNIT_SINE_OFFSET: printf("%.4f A\n", bl_setpoint_from_raw(v)); break;
	case BL_UNIT_SINE_MAGDIV: printf("%.4f App\n", bl_magdiv_from_raw(v)); break;
	case BL_UNIT_LOCK: printf("%u (%s)\n", v, v ? "locked" : "unlocked"); break;
	case BL_UNIT_ZERO_AMP_THRESH: printf("%.4f A\n", bl_current_from_raw(v)); break;
	default: printf("%s\n", v ? "yes (external power connected)" : "no (no external power)"); break;
	}
}

int cmd_info(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r = BL_EXIT_OK;
	const struct bl_identity *id;

	if ((r = cli_parse(&info_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_devsel_open(&s, &o, "info", 0)) != BL_EXIT_OK)
		return r;
	id = bl_device_identity(s.dev);
	printf("%-16s %u\n", "Serial", id->serial);
	printf("%-16s %s\n", "Port", bl_device_port(s.dev));
	printf("%-16s %u\n", "Firmware", id->firmware);
	for (size_t i = 0; i < BL_ARRAY_LEN(info_regs); i++) {
		uint16_t v;
		int st = cli_read(s.dev, info_regs[i].ns, info_regs[i].addr, &v);
		if (st != BL_OK) {
			r = cli_device_error(&s, s.dev, st, "reading %s", info_regs[i].label);
			break;
		}
		info_value(&info_regs[i], v);
	}
	cli_devsel_close(&s);
	return r;
}

/* ---- measure ----------------------------------------------------------------- */

static const struct cli_cmd measure_cmd = {
	"measure", "[CELL]",
	"VCC, then per cell (all four without CELL): voltage, current (+ charging,\n"
	"- discharging or impedance, 0 when no current flows), temperature in degC\n"
	"and degF, the charge counter in coulombs and Ah, and MODE; a STOPPED\n"
	"channel shows every ERROR bit that stopped it. Every connected Batlab in\n"
	"serial-number order, each after a line 'Batlab SERIAL on PORT:' when\n"
	"there are several; --port or --serial: that one only. Nothing is\n"
	"written: the channels keep their modes.\n",
	0, 1, true,
};

struct cell_reading {
	uint16_t mode, voltage, current, temp, error;
	double coulombs;
};

static int read_cell(struct bl_device *d, int c, struct cell_reading *m)
{
	int st;

	memset(m, 0, sizeof *m);
	if ((st = cli_read(d, (uint8_t)c, BL_CELL_MODE, &m->mode)) != BL_OK ||
	    (st = cli_read(d, (uint8_t)c, BL_CELL_VOLTAGE, &m->voltage)) != BL_OK ||
	    (st = cli_read(d, (uint8_t)c, BL_CELL_CURRENT, &m->current)) != BL_OK ||
	    (st = cli_read(d, (uint8_t)c, BL_CELL_TEMPERATURE, &m->temp)) != BL_OK ||
	    (st = cli_wait(d, bl_op_charge(d, c, NULL, NULL), NULL, &m->coulombs)) != BL_OK)
		return st;
	if (m->mode == BL_MODE_STOPPED)
		st = cli_read(d, (uint8_t)c, BL_CELL_ERROR, &m->error);
	return st;
}

/* The register holds a magnitude; the mode gives the direction. */
static double signed_current(const struct cell_reading *m)
{
	double a = fabs(bl_current_from_raw(m->current));

	switch (m->mode) {
	case BL_MODE_CHARGE: return a;
	case BL_MODE_DISCHARGE:
	case BL_MODE_IMPEDANCE: return -a;
	default: return 0.0; /* every other mode drives duty 0 at once */
	}
}

static void print_temp(double c)
{
	if (isnan(c))
		printf("-- degC, -- degF");
	else
		printf("%.1f degC, %.1f degF", c, bl_c_to_f(c));
}

/* "45.0 degC (113.0 degF)" */
static void print_limit(double c)
{
	if (isnan(c))
		printf("-- degC (-- degF)");
	else
		printf("%.1f degC (%.1f degF)", c, bl_c_to_f(c));
}

static void print_mode(const struct cell_reading *m)
{
	const char *name = bl_mode_name(m->mode);
	char bits[200];

	if (name)
		printf("%s", name);
	else
		printf("MODE_%u", m->mode);
	if (m->mode != BL_MODE_STOPPED)
		return;
	if (m->error) {
		bl_bits_format(BL_UK_ERROR, m->error, ",", bits, sizeof bits);
		printf(" - %s", bits);
	} else {
		/* The watchdog and the host stop a channel without an ERROR bit. */
		printf(" - no error bit (stopped by a host or the watchdog)");
	}
}

static void print_cell(struct bl_device *d, int c, const struct cell_reading *m)
{
	double q = m->coulombs;

	double a = signed_current(m);

	/* A sign only on a current that flows: "+1.0000 A", "-2.0000 A", "0.0000 A". */
	printf(a != 0.0 ? "CELL%d: %.4f V, %+.4f A, " : "CELL%d: %.4f V, %.4f A, ", c,
	       bl_voltage_from_raw(m->voltage), a);
	print_temp(cli_temp_c(d, c, m->temp));
	printf(", %.3f C, %.6f Ah, ", q, q / 3600.0);
	print_mode(m);
	printf("\n");
}

/* VCC, then each cell (or the one asked for) of one unit. */
static int measure_device(struct cli_devsel *s, struct bl_device *d, int cell)
{
	uint16_t vcc;
	int st = cli_read(d, BL_NS_UNIT, BL_UNIT_VCC, &vcc);

	if (st != BL_OK)
		return cli_device_error(s, d, st, "reading VCC");
	if (vcc == 0)
		printf("VCC: -- (not measured yet)\n");
	else
		printf("VCC: %.3f V\n", bl_vcc_from_raw(vcc));
	for (int c = 0; c < BL_CELLS; c++) {
		struct cell_reading m;
		if (cell != CLI_ALL_CELLS && c != cell)
			continue;
		st = read_cell(d, c, &m);
		if (st != BL_OK)
			return cli_device_error(s, d, st, "reading cell %d", c);
		print_cell(d, c, &m);
	}
	return BL_EXIT_OK;
}

/* Every connected Batlab, in serial-number order (the seed's `global
 * measure`), unless --port or --serial chose one; with more than one, a
 * line naming each before its readings. */
int cmd_measure(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r, cell = CLI_ALL_CELLS;
	size_t n;

	if ((r = cli_parse(&measure_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (npos && (r = cli_parse_cell("measure", pos[0], true, &cell)) != BL_EXIT_OK)
		return r;
	if ((r = cli_devsel_open(&s, &o, "measure", 0)) != BL_EXIT_OK)
		return r;
	n = s.selected ? 1 : bl_pool_count(s.pool);
	for (size_t i = 0; i < n && r == BL_EXIT_OK; i++) {
		struct bl_device *d = s.selected ? s.dev : bl_pool_device(s.pool, i);
		const struct bl_identity *id = bl_device_identity(d);
		if (n > 1)
			printf("%sBatlab %u on %s%s\n", i ? "\n" : "", id->serial, bl_device_port(d),
			       id->bootloader ? ": in its bootloader (load firmware with 'batlab firmware load FILE')"
			                      : ":");
		if (!id->bootloader)
			r = measure_device(&s, d, cell);
	}
	cli_devsel_close(&s);
	return r;
}

/* ---- setpoints --------------------------------------------------------------- */

static const struct cli_cmd setpoints_cmd = {
	"setpoints", "[CELL]",
	"Per cell (all four without CELL): the operating current setpoint, and the\n"
	"voltage, current and temperature limits for charge and discharge (the\n"
	"temperatures with that cell's thermistor calibration, in degC and degF).\n",
	0, 1, true,
};

static const uint8_t setpoint_regs[] = {
	BL_CELL_CURRENT_SETPOINT, BL_CELL_VOLTAGE_LIMIT_CHG, BL_CELL_VOLTAGE_LIMIT_DCHG,
	BL_CELL_CURRENT_LIMIT_CHG, BL_CELL_CURRENT_LIMIT_DCHG, BL_CELL_TEMP_LIMIT_CHG,
	BL_CELL_TEMP_LIMIT_DCHG,
};

static void print_setpoints(struct bl_device *d, int c, const uint16_t *v)
{
	printf("CELL%d: setpoint %.4f A; voltage limits %.4f V charge, %.4f V discharge; "
	       "current limits %.4f A charge, %.4f A discharge; temperature limits ",
	       c, bl_setpoint_from_raw(v[0]), bl_voltage_from_raw(v[1]), bl_voltage_from_raw(v[2]),
	       bl_current_from_raw(v[3]), bl_current_from_raw(v[4]));
	print_limit(cli_temp_c(d, c, v[5]));
	printf(" charge, ");
	print_limit(cli_temp_c(d, c, v[6]));
	printf(" discharge\n");
}

int cmd_setpoints(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r, cell = CLI_ALL_CELLS;

	if ((r = cli_parse(&setpoints_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (npos && (r = cli_parse_cell("setpoints", pos[0], true, &cell)) != BL_EXIT_OK)
		return r;
	if ((r = cli_devsel_open(&s, &o, "setpoints", 0)) != BL_EXIT_OK)
		return r;
	for (int c = 0; c < BL_CELLS && r == BL_EXIT_OK; c++) {
		uint16_t v[BL_ARRAY_LEN(setpoint_regs)];
		if (cell != CLI_ALL_CELLS && c != cell)
			continue;
		for (size_t i = 0; i < BL_ARRAY_LEN(setpoint_regs); i++) {
			int st = cli_read(s.dev, (uint8_t)c, setpoint_regs[i], &v[i]);
			if (st != BL_OK) {
				r = cli_device_error(&s, s.dev, st, "reading cell %d", c);
				break;
			}
		}
		if (r == BL_EXIT_OK)
			print_setpoints(s.dev, c, v);
	}
	cli_devsel_close(&s);
	return r;
}
