/* cli/cmd_regs.c - raw register access: `batlab read`, `write` and
 * `lowcurrent`. Names and numbers come from the one register table
 * (regs.h); values are parsed, never evaluated. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"

/* ---- Names and decoded values ---------------------------------------------- */

static int parse_ns(const char *cmd, const char *text, uint8_t *ns)
{
	int cell;

	/* A channel is parsed as every command parses one, with its messages
	 * ("channel out of range: CELL7"). */
	if (strncasecmp(text, "cell", 4) == 0) {
		if (cli_parse_cell(cmd, text, false, &cell) != BL_EXIT_OK)
			return BL_EXIT_USAGE;
		*ns = (uint8_t)cell;
		return BL_EXIT_OK;
	}
	if (bl_ns_parse(text, ns) != BL_OK) {
		cli_error("%s: unknown namespace '%s' (CELL0..CELL3, UNIT, BOOTLOADER, COMMS or 0..255)",
		          cmd, text);
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

static int parse_reg(const char *cmd, uint8_t ns, const char *text, uint8_t *addr)
{
	char nsname[16];

	if (bl_reg_parse(ns, text, addr) != BL_OK) {
		cli_error("%s: unknown register '%s' in %s (see 'batlab read --list')", cmd, text,
		          bl_ns_name(ns, nsname, sizeof nsname));
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

/* "CELL2 VOLTAGE", or "CELL0 0x1F" for an address the table lacks. */
static void reg_label(uint8_t ns, uint8_t addr, char *buf, size_t n)
{
	const struct bl_reg *r = bl_reg_by_addr(ns, addr);
	char nsname[16];

	bl_ns_name(ns, nsname, sizeof nsname);
	if (r)
		snprintf(buf, n, "%s %s", nsname, r->name);
	else
		snprintf(buf, n, "%s 0x%02X", nsname, addr);
}

/* The decoded value in parentheses, "" when the raw number says it all. */
static void decode(struct bl_device *d, uint8_t ns, const struct bl_reg *r, uint16_t v,
                   char *buf, size_t n)
{
	enum bl_unit_kind k = r ? (enum bl_unit_kind)r->unit : BL_UK_RAW;
	int cell = ns < BL_CELLS ? ns : 0;
	const char *name;
	char bits[200];
	double x;

	buf[0] = '\0';
	switch (k) {
	case BL_UK_MODE:
		name = bl_mode_name(v);
		snprintf(buf, n, " (%s)", name ? name : "unknown mode");
		break;
	case BL_UK_ERROR:
	case BL_UK_STATUS:
	case BL_UK_SETTINGS:
		bl_bits_format(k, v, " ", bits, sizeof bits);
		snprintf(buf, n, " (0x%04X: %s)", v, bits[0] ? bits : "none");
		break;
	case BL_UK_LED:
		name = bl_led_name(v);
		snprintf(buf, n, " (%s)", name ? name : "unknown LED code");
		break;
	case BL_UK_TEMPERATURE:
		x = cli_temp_c(d, cell, v);
		if (isnan(x))
			snprintf(buf, n, " (no temperature: thermistor open or shorted)");
		else
			snprintf(buf, n, " (%.2f degC, %.2f degF)", x, bl_c_to_f(x));
		break;
	case BL_UK_INTERVAL:
		if (v == 0)
			snprintf(buf, n, " (off)");
		else
			snprintf(buf, n, " (every %.1f s)", bl_interval_from_raw(v));
		break;
	case BL_UK_DUTY:
		snprintf(buf, n, " (%.1f %%)", v * 100.0 / BL_DUTY_MAX);
		break;
	case BL_UK_LOCK:
		snprintf(buf, n, " (%s)", v ? "locked" : "unlocked");
		break;
	case BL_UK_BOOL:
		snprintf(buf, n, " (%s)", v ? "yes" : "no");
		break;
	case BL_UK_INT16:
	case BL_UK_COMPENSATION:
		x = bl_unit_from_raw(k, v, 0, 0);
		if (x < 0)
			snprintf(buf, n, " (%.0f)", x);
		break;
	case BL_UK_RAW:
	case BL_UK_CHARGEL:
	case BL_UK_CHARGEH:
	case BL_UK_OHMS:
	case BL_UK_KELVIN:
	case BL_UK_COUNT:
		break;
	default:
		x = bl_unit_from_raw(k, v, 0, 0);
		snprintf(buf, n, " (%.4f %s)", x, bl_unit_symbol(k));
		break;
	}
}

/* A 257 that means "refused", not a value: the address is beyond the
 * table, or namespace 5 while the application runs. */
static bool refused_read(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t v)
{
	enum bl_ns_kind k = bl_ns_kind(ns);

	if (v != BL_COMMAND_ERROR)
		return false;
	return !bl_reg_by_addr(ns, addr) || k == BL_NSK_NONE ||
	       (k == BL_NSK_BOOTLOADER && !bl_device_identity(d)->bootloader);
}

/* ---- read ------------------------------------------------------------------ */

static const struct cli_cmd read_cmd = {
	"read", "NS REG | --list",
	"Read one register and print 'NS REG = RAW (decoded value)'. NS is CELL0..\n"
	"CELL3, UNIT, BOOTLOADER, COMMS or a number; REG a name or a number; both\n"
	"any case (read UNIT FIRMWARE_VER, read cell2 voltage, read 4 2).\n"
	"\n"
	"  --list           print the register table (no device needed)\n",
	0, 2, true,
};

static const char *kind_ns(uint8_t k)
{
	switch (k) {
	case BL_NSK_CELL: return "CELL";
	case BL_NSK_UNIT: return "UNIT";
	case BL_NSK_BOOTLOADER: return "BOOTLOADER";
	default: return "COMMS";
	}
}

static void print_access(uint8_t acc, char *buf)
{
	size_t n = 0;

	buf[n++] = acc & BL_ACC_R ? 'R' : '-';
	buf[n++] = acc & BL_ACC_REFUSED ? '-' : acc & BL_ACC_W ? 'W' : '-';
	if (acc & BL_ACC_EEPROM)
		buf[n++] = 'E';
	if (acc & BL_ACC_MEASURED)
		buf[n++] = 'M';
	buf[n] = '\0';
}

static void print_table(void)
{
	printf("%-10s %-4s %-18s %-6s %-5s %s\n", "NS", "ADDR", "REGISTER", "ACCESS", "UNIT",
	       "DESCRIPTION");
	for (size_t i = 0; i < bl_regs_count; i++) {
		const struct bl_reg *r = &bl_regs[i];
		const char *sym = bl_unit_symbol((enum bl_unit_kind)r->unit);
		char acc[8];
		print_access(r->access, acc);
		printf("%-10s 0x%02X %-18s %-6s %-5s %s\n", kind_ns(r->ns_kind), r->addr, r->name, acc,
		       sym[0] ? sym : "-", r->doc);
	}
	printf("\nACCESS: R readable, W writable, E kept in EEPROM, M measured (the device\n"
	       "overwrites it). CELL means each of CELL0..CELL3.\n");
}

int cmd_read(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS], label[64], dec[256];
	bool list = false;
	const struct cli_opt opts[] = {{"--list", false, NULL, &list}, {NULL, false, NULL, NULL}};
	int npos, r, st;
	uint8_t ns, addr;
	uint16_t v;

	if ((r = cli_parse(&read_cmd, argc, argv, opts, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (list) {
		if (npos) {
			cli_error("read: --list takes no arguments");
			return BL_EXIT_USAGE;
		}
		print_table();
		return BL_EXIT_OK;
	}
	if (npos < 2) {
		cli_error("read: missing arguments (usage: batlab read %s)", read_cmd.usage);
		return BL_EXIT_USAGE;
	}
	if ((r = parse_ns("read", pos[0], &ns)) != BL_EXIT_OK ||
	    (r = parse_reg("read", ns, pos[1], &addr)) != BL_EXIT_OK)
		return r;
	if ((r = cli_devsel_open(&s, &o, "read", CLI_SEL_BOOTLOADER)) != BL_EXIT_OK)
		return r;
	reg_label(ns, addr, label, sizeof label);
	st = cli_read(s.dev, ns, addr, &v);
	if (st != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "reading %s", label);
	} else if (refused_read(s.dev, ns, addr, v)) {
		cli_error("read: %s: the device refused (257): no such register here", label);
		r = BL_EXIT_DEVICE;
	} else {
		decode(s.dev, ns, bl_reg_by_addr(ns, addr), v, dec, sizeof dec);
		printf("%s = %u%s\n", label, v, dec);
	}
	cli_devsel_close(&s);
	return r;
}

/* ---- write ----------------------------------------------------------------- */

static const struct cli_cmd write_cmd = {
	"write", "NS REG VALUE",
	"Write one register. VALUE is a raw integer (decimal or 0x hex; negative\n"
	"for signed registers), a MODE name for MODE (idle, charge, ...), or a\n"
	"number with a unit suffix in engineering units, encoded for that register:\n"
	"4.2V (voltages), 2A (currents, setpoints), 45C or 113F (temperatures, with\n"
	"the cell's calibration), 78.125Hz (SINE_FREQ), 0.5App (SINE_MAGDIV), 1s\n"
	"(REPORT_INTERVAL, timers). CURRENT_SETPOINT is clamped to 575 (4.49 A);\n"
	"SETTINGS bits TRIM_OUTPUT and VCC_COMPENSATION are cleared, as every host\n"
	"does. A write the device refuses (answer 257) exits 3.\n"
	"The watchdog is enabled while batlab runs; a channel left charging,\n"
	"discharging or in impedance mode stops about 25 s after batlab exits.\n",
	3, 3, true,
};

/* A value as typed: a raw integer, or a number in some unit. */
struct typed_value {
	bool raw;
	long integer;
	double number;
	const char *unit;     /* canonical: "V", "A", "C", "F", "Hz", "App", "s" */
};

struct unit_alias {
	const char *text, *unit;
};

static const struct unit_alias unit_aliases[] = {
	{"v", "V"}, {"a", "A"}, {"app", "App"}, {"c", "C"}, {"degc", "C"}, {"f", "F"},
	{"degf", "F"}, {"hz", "Hz"}, {"s", "s"},
};

static bool unit_fits(const char *unit, enum bl_unit_kind k)
{
	switch (k) {
	case BL_UK_VOLTAGE: return strcmp(unit, "V") == 0;
	case BL_UK_CURRENT:
	case BL_UK_SETPOINT: return strcmp(unit, "A") == 0;
	case BL_UK_TEMPERATURE: return strcmp(unit, "C") == 0 || strcmp(unit, "F") == 0;
	case BL_UK_FREQ: return strcmp(unit, "Hz") == 0;
	case BL_UK_MAGDIV: return strcmp(unit, "App") == 0;
	case BL_UK_INTERVAL:
	case BL_UK_TICKS: return strcmp(unit, "s") == 0;
	default: return false;
	}
}

static bool signed_kind(enum bl_unit_kind k)
{
	return k == BL_UK_INT16 || k == BL_UK_VOLTAGE || k == BL_UK_CURRENT;
}

/* Check VALUE's syntax against the register before any device is opened. */
static int parse_value(const char *text, const struct bl_reg *r, struct typed_value *tv)
{
	enum bl_unit_kind k = r ? (enum bl_unit_kind)r->unit : BL_UK_RAW;
	char *end;
	long n;

	memset(tv, 0, sizeof *tv);
	if (k == BL_UK_MODE) {
		const char *name = strncasecmp(text, "MODE_", 5) == 0 ? text + 5 : text;
		for (uint16_t m = 0; m < BL_MODE_COUNT; m++)
			if (strcasecmp(name, bl_mode_name(m)) == 0) {
				tv->raw = true;
				tv->integer = m;
				return BL_EXIT_OK;
			}
	}
	errno = 0;
	n = strtol(text, &end, 0);
	if (!errno && end != text && *end == '\0') {
		if (n > 65535 || n < (signed_kind(k) ? -32768 : 0)) {
			cli_error("write: %s is out of range for this register (0..65535%s)", text,
			          signed_kind(k) ? ", or -32768..-1" : "");
			return BL_EXIT_USAGE;
		}
		tv->raw = true;
		tv->integer = n;
		return BL_EXIT_OK;
	}
	errno = 0;
	tv->number = strtod(text, &end);
	if (errno || end == text || !isfinite(tv->number) || strchr(text, 'x') || strchr(text, 'X')) {
		cli_error("write: '%s' is not a number (raw integer, or a value with a unit: 4.2V, 2A, 45C)",
		          text);
		return BL_EXIT_USAGE;
	}
	for (size_t i = 0; i < BL_ARRAY_LEN(unit_aliases); i++)
		if (strcasecmp(end, unit_aliases[i].text) == 0)
			tv->unit = unit_aliases[i].unit;
	if (!*end) {
		cli_error("write: '%s' is not an integer: give the unit for an engineering value (e.g. %s%s)",
		          text, text, r && bl_unit_symbol(k)[0] ? bl_unit_symbol(k) : "V");
		return BL_EXIT_USAGE;
	}
	if (!tv->unit) {
		cli_error("write: unknown unit '%s' in '%s' (V, A, C, F, Hz, App, s)", end, text);
		return BL_EXIT_USAGE;
	}
	if (!unit_fits(tv->unit, k)) {
		cli_error("write: %s takes %s, not %s", r ? r->name : "this register",
		          bl_unit_symbol(k)[0] ? bl_unit_symbol(k) : "a raw integer", tv->unit);
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

/* Engineering units -> raw with the cell's calibration; refuses values the
 * register cannot hold rather than clamping them silently. */
static int encode_value(struct bl_device *d, uint8_t ns, const struct bl_reg *r,
                        const struct typed_value *tv, uint16_t *raw)
{
	const struct bl_identity *id = bl_device_identity(d);
	enum bl_unit_kind k = r ? (enum bl_unit_kind)r->unit : BL_UK_RAW;
	int cell = ns < BL_CELLS ? ns : 0;
	double x = tv->number, back;
	int ok;

	if (tv->raw) {
		*raw = (uint16_t)(tv->integer & 0xFFFF);
		return BL_EXIT_OK;
	}
	if (strcmp(tv->unit, "F") == 0)
		x = bl_f_to_c(x);
	*raw = bl_unit_to_raw(k, x, id->temp_r[cell], id->temp_b[cell], &ok);
	back = bl_unit_from_raw(k, *raw, id->temp_r[cell], id->temp_b[cell]);
	if (!ok || isnan(back) || fabs(back - x) > 0.01 * fabs(x) + 0.05) {
		cli_error("write: %g%s is out of range for %s", tv->number, tv->unit, r->name);
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

/* What every host does before a write (core/regs.c); warnings on stderr. */
static uint16_t adjust_value(uint8_t ns, uint8_t addr, uint16_t raw)
{
	enum bl_write_rule rule;
	uint16_t v = bl_host_write_value(ns, addr, raw, &rule);

	if (rule == BL_WRITE_SETPOINT_CLAMPED)
		cli_error("warning: CURRENT_SETPOINT %u clamped to %d (%.2f A), the most a host commands",
		          raw, BL_SETPOINT_MAX, bl_setpoint_from_raw(BL_SETPOINT_MAX));
	else if (rule == BL_WRITE_SETTINGS_MASKED)
		cli_error("warning: SETTINGS bits TRIM_OUTPUT and VCC_COMPENSATION cleared "
		          "(firmware loops no host uses)");
	return v;
}

static void write_notes(uint8_t ns, const struct bl_reg *r, uint16_t raw)
{
	if (!r)
		return;
	if (r->access & BL_ACC_EEPROM)
		printf("note: %s is kept in EEPROM: the value persists across power cycles\n", r->name);
	if (r->access & BL_ACC_MEASURED)
		printf("note: the device overwrites %s at its next measurement\n", r->name);
	if (bl_ns_kind(ns) == BL_NSK_CELL && r->addr == BL_CELL_MODE &&
	    (raw == BL_MODE_CHARGE || raw == BL_MODE_DISCHARGE || raw == BL_MODE_IMPEDANCE))
		printf("note: the watchdog stops this channel about 25 s after batlab exits, "
		       "unless a test keeps it alive\n");
}

int cmd_write(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS], label[64], dec[256];
	struct typed_value tv;
	const struct bl_reg *reg;
	int npos, r, st;
	uint8_t ns, addr;
	uint16_t raw;

	if ((r = cli_parse(&write_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = parse_ns("write", pos[0], &ns)) != BL_EXIT_OK ||
	    (r = parse_reg("write", ns, pos[1], &addr)) != BL_EXIT_OK)
		return r;
	reg = bl_reg_by_addr(ns, addr);
	if ((r = parse_value(pos[2], reg, &tv)) != BL_EXIT_OK)
		return r;
	o.watchdog = true;
	if ((r = cli_devsel_open(&s, &o, "write", CLI_SEL_BOOTLOADER)) != BL_EXIT_OK)
		return r;
	if ((r = encode_value(s.dev, ns, reg, &tv, &raw)) != BL_EXIT_OK)
		goto out;
	raw = adjust_value(ns, addr, raw);
	if (bl_ns_kind(ns) == BL_NSK_UNIT && addr == BL_UNIT_SETTINGS)
		s.keep_watchdog = true;   /* the user's SETTINGS stand */
	if (bl_ns_kind(ns) == BL_NSK_CELL && addr == BL_CELL_CURRENT_SETPOINT)
		bl_device_set_target(s.dev, ns, 0); /* the user's value, not regulation */
	reg_label(ns, addr, label, sizeof label);
	st = cli_write(s.dev, ns, addr, raw);
	if (st == BL_ERR_DEVICE) {
		cli_error("write: %s: the device refused the write (257)", label);
		r = BL_EXIT_DEVICE;
	} else if (st != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "writing %s", label);
	} else {
		decode(s.dev, ns, reg, raw, dec, sizeof dec);
		printf("wrote %s = %u%s\n", label, raw, dec);
		write_notes(ns, reg, raw);
	}
out:
	cli_devsel_close(&s);
	return r;
}

/* ---- lowcurrent ------------------------------------------------------------ */

static const struct cli_cmd lowcurrent_cmd = {
	"lowcurrent", "A",
	"Set UNIT ZERO_AMP_THRESH: currents below A amps read as 0 and are not\n"
	"counted as charge (default 0.25 A; hosts use 0.05 A for constant-voltage\n"
	"charging). The register is kept in EEPROM: the value persists across\n"
	"power cycles until changed again.\n",
	1, 1, true,
};

int cmd_lowcurrent(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r, st;
	double amps;
	uint16_t raw;

	if ((r = cli_parse(&lowcurrent_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_parse_number("lowcurrent", "the threshold", pos[0], "A", &amps)) != BL_EXIT_OK)
		return r;
	if (amps < 0 || amps > 4.0) {
		cli_error("lowcurrent: the threshold must be 0..4 A, not %g A", amps);
		return BL_EXIT_USAGE;
	}
	raw = bl_current_to_raw(amps);
	if ((r = cli_devsel_open(&s, &o, "lowcurrent", 0)) != BL_EXIT_OK)
		return r;
	st = cli_wait(s.dev, bl_op_write_verify(s.dev, BL_NS_UNIT, BL_UNIT_ZERO_AMP_THRESH, raw, NULL,
	                                        NULL), NULL, NULL);
	if (st != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "writing UNIT ZERO_AMP_THRESH");
	} else {
		printf("UNIT ZERO_AMP_THRESH = %u (%.4f A)\n", raw, bl_current_from_raw(raw));
		printf("note: kept in EEPROM: it persists across power cycles (the default is 0.25 A)\n");
	}
	cli_devsel_close(&s);
	return r;
}
