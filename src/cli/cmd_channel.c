/* cli/cmd_channel.c - commands that drive a channel: `batlab impedance`,
 * `charge`, `discharge`, `sinewave`, `stop` and `reset`.
 *
 * Safety: these connect with the device watchdog enabled (it is refreshed
 * while batlab runs). A channel left charging, discharging or in impedance
 * mode is therefore stopped by the device about 25.5 s after batlab exits,
 * unless a test keeps it alive; `--for S` keeps batlab running (regulating
 * the current) for S seconds and then stops the channel itself. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"

#define WATCHDOG_NOTE "note: the channel keeps going; the watchdog stops it about 25 s after " \
	"batlab exits unless a test keeps it alive (use --for S to run for S seconds)\n"

static bool no_cell(uint16_t mode)
{
	return mode == BL_MODE_NO_CELL || mode == BL_MODE_BACKWARDS;
}

static bool active(uint16_t mode)
{
	return mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE || mode == BL_MODE_IMPEDANCE;
}

static void error_names(uint16_t err, char *buf, size_t n)
{
	if (err)
		bl_bits_format(BL_UK_ERROR, err, ",", buf, n);
	else
		snprintf(buf, n, "no error bit");
}

/* After a mode write the firmware checks the limits in the same pass: a
 * channel that cannot run reads STOPPED at once. BL_OK and *stopped. */
static int check_started(struct bl_device *d, int cell, bool *stopped, char *why, size_t n)
{
	uint16_t mode, err = 0;
	int st = cli_read(d, (uint8_t)cell, BL_CELL_MODE, &mode);

	*stopped = false;
	if (st != BL_OK)
		return st;
	if (active(mode))
		return BL_OK;
	*stopped = true;
	if (mode == BL_MODE_STOPPED && (st = cli_read(d, (uint8_t)cell, BL_CELL_ERROR, &err)) != BL_OK)
		return st;
	if (mode == BL_MODE_STOPPED)
		error_names(err, why, n);
	else
		snprintf(why, n, "MODE is %s", bl_mode_name(mode) ? bl_mode_name(mode) : "unknown");
	return BL_OK;
}

/* ---- impedance --------------------------------------------------------------- */

static const struct cli_cmd impedance_cmd = {
	"impedance", "CELL",
	"Measure the cell's impedance with the 39 Hz sine (about 2 s): IMPEDANCE\n"
	"mode, settle, read the peak-to-peak voltage and current, then the\n"
	"channel's previous mode again. Prints ohms.\n",
	1, 1, true,
};

int cmd_impedance(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r, st, cell;
	uint16_t mode;
	double ohms = 0;

	if ((r = cli_parse(&impedance_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_parse_cell("impedance", pos[0], false, &cell)) != BL_EXIT_OK)
		return r;
	o.watchdog = true;
	if ((r = cli_devsel_open(&s, &o, "impedance", 0)) != BL_EXIT_OK)
		return r;
	if ((st = cli_read(s.dev, (uint8_t)cell, BL_CELL_MODE, &mode)) != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "reading CELL%d MODE", cell);
	} else if (no_cell(mode)) {
		cli_error("impedance: CELL%d: no cell to measure (MODE %s)", cell, bl_mode_name(mode));
		r = BL_EXIT_FAILED;
	} else if ((st = cli_chan_impedance(&s, cell, &ohms)) != BL_OK) {
		r = cli_chan_error(&s, st, "impedance", cell);
	} else {
		printf("CELL%d: %.5f ohm (%.2f mohm)\n", cell, ohms, ohms * 1000.0);
	}
	cli_devsel_close(&s);
	return r;
}

/* ---- charge and discharge ------------------------------------------------- */

/* What charge and discharge say alike about --for. */
#define FOR_HELP \
	"\n" \
	"  --for S          stay S seconds (virtual seconds with --sim), regulating\n" \
	"                   and refreshing the watchdog, then stop the channel\n" \
	"                   safely (STOPPED, then IDLE) and print a summary; the\n" \
	"                   charge counter starts from 0\n" \
	"\n" \
	"Without --for, batlab exits at once and the watchdog stops the channel\n" \
	"about 25 s later unless a test keeps it alive.\n"

static const struct cli_cmd charge_cmd = {
	"charge", "CELL|all [A] [--for S]",
	"Charge at A amps (default: the channel's present setpoint): set the\n"
	"target, clear ERROR and the charge counter, setpoint 0, MODE CHARGE, wait\n"
	"10 ms for the relay, then the setpoint. batlab regulates the current in\n"
	"software while it runs. Slots without a cell are skipped with 'all'.\n" FOR_HELP,
	1, 2, true,
};

static const struct cli_cmd discharge_cmd = {
	"discharge", "CELL|all [A] [--for S]",
	"Discharge at A amps (default: the channel's present setpoint): set the\n"
	"target, clear ERROR and the charge counter, write the setpoint, MODE\n"
	"DISCHARGE. batlab regulates the current in software while it runs.\n"
	"Slots without a cell are skipped with 'all'.\n" FOR_HELP,
	1, 2, true,
};

struct run_state;

/* A started channel's samples (progress, and when the device stopped it). */
struct run_listener {
	struct bl_chan_listener l;       /* first: the listener is this */
	struct run_state *rs;
	int cell;
};

struct run_state {
	struct cli_devsel *s;
	struct run_listener listen[BL_CELLS];
	bool charge;
	bool started[BL_CELLS];
	uint64_t t0, t1;               /* loop time at the start and the end */
	uint64_t ended[BL_CELLS];      /* when the device stopped it; 0: it ran on */
	bool progress;                 /* live line on a terminal */
};

static bool all_ended(void *ud)
{
	struct run_state *rs = ud;

	for (int c = 0; c < BL_CELLS; c++)
		if (rs->started[c] && !rs->ended[c])
			return false;
	return true;
}

static void on_sample(struct bl_chan_listener *l, const struct bl_sample *smp, int status)
{
	struct run_listener *rl = (struct run_listener *)(void *)l;
	struct run_state *rs = rl->rs;
	uint64_t now = bl_loop_now(rs->s->loop);

	if (status != BL_OK)
		return;
	if (!rs->ended[rl->cell] && !active(smp->mode))
		rs->ended[rl->cell] = now;
	if (!rs->progress)
		return;
	printf("\r%6.0f s", (now - rs->t0) / 1e6);
	for (int c = 0; c < BL_CELLS; c++) {
		const struct bl_sample *sn = rs->started[c] ? bl_channel_last(cli_channel(rs->s, c)) : NULL;
		if (!sn)
			continue;
		printf("  CELL%d %.3f V %.3f A %s", c, sn->voltage, fabs(sn->current),
		       bl_mode_name(sn->mode) ? bl_mode_name(sn->mode) : "?");
	}
	printf("\033[K");
	fflush(stdout);
}

/* Summary line of one channel at the end of --for, before it is stopped. */
static int summarize(struct run_state *rs, int c)
{
	struct bl_device *d = rs->s->dev;
	uint16_t mode, v, i, err = 0;
	double q;
	int st;
	uint64_t end = rs->ended[c] ? rs->ended[c] : rs->t1;
	double amps = 0;

	if ((st = cli_read(d, (uint8_t)c, BL_CELL_MODE, &mode)) != BL_OK ||
	    (st = cli_read(d, (uint8_t)c, BL_CELL_VOLTAGE, &v)) != BL_OK ||
	    (st = cli_read(d, (uint8_t)c, BL_CELL_CURRENT, &i)) != BL_OK ||
	    (st = cli_wait(d, bl_op_charge(d, c, NULL, NULL), NULL, &q)) != BL_OK)
		return st;
	if (mode == BL_MODE_STOPPED && (st = cli_read(d, (uint8_t)c, BL_CELL_ERROR, &err)) != BL_OK)
		return st;
	if (active(mode))
		amps = (rs->charge ? 1 : -1) * bl_current_from_raw(i);
	printf("CELL%d: %s %.1f s: %.4f V, %.4f A at the end, %.6f Ah (%.3f C)",
	       c, rs->charge ? "charged" : "discharged", (end - rs->t0) / 1e6,
	       bl_voltage_from_raw(v), amps, q / 3600.0, q);
	if (mode == BL_MODE_STOPPED) {
		char why[200];
		error_names(err, why, sizeof why);
		printf("; the device stopped it: %s", why);
	}
	printf("\n");
	return BL_OK;
}

/* --for: run, summarize, stop every started channel whatever happened. */
static int run_for(struct run_state *rs, double seconds)
{
	struct cli_devsel *s = rs->s;
	int r = BL_EXIT_OK, st;

	rs->progress = isatty(STDOUT_FILENO) && !bl_loop_is_virtual(s->loop);
	fflush(stdout); /* a script watching a pipe sees the start now */
	rs->t0 = bl_loop_now(s->loop);
	for (int c = 0; c < BL_CELLS; c++) {
		if (!rs->started[c])
			continue;
		rs->listen[c].rs = rs;
		rs->listen[c].cell = c;
		rs->listen[c].l.fn = on_sample;
		bl_channel_listen(cli_channel(s, c), &rs->listen[c].l);   /* reports every second */
	}
	st = cli_run_for(s, seconds, all_ended, rs);
	rs->t1 = bl_loop_now(s->loop);
	if (rs->progress)
		printf("\n");
	if (st != BL_OK)
		r = BL_EXIT_INTERRUPTED;
	for (int c = 0; c < BL_CELLS; c++) {
		if (!rs->started[c])
			continue;
		if (r == BL_EXIT_OK && (st = summarize(rs, c)) != BL_OK)
			r = cli_device_error(s, s->dev, st, "reading CELL%d", c);
		bl_channel_unlisten(&rs->listen[c].l);
		st = cli_chan_safe(s, c);
		if (st != BL_OK && r == BL_EXIT_OK)
			r = cli_device_error(s, s->dev, st, "stopping CELL%d", c);
		bl_device_set_report_interval(s->dev, c, 0);
	}
	if (r == BL_EXIT_INTERRUPTED)
		cli_error("%s: interrupted: the channels were stopped", rs->charge ? "charge" : "discharge");
	return r;
}

/* Start one channel. BL_EXIT_OK, BL_EXIT_FAILED (it did not start; said
 * why), or a device error's exit code. */
static int start_cell(struct run_state *rs, int c, double amps, bool skip_empty)
{
	struct cli_devsel *s = rs->s;
	const char *cmd = rs->charge ? "charge" : "discharge";
	uint16_t mode;
	bool stopped;
	char why[200];
	int st;

	if ((st = cli_read(s->dev, (uint8_t)c, BL_CELL_MODE, &mode)) != BL_OK)
		return cli_device_error(s, s->dev, st, "reading CELL%d MODE", c);
	if (no_cell(mode)) {
		if (skip_empty) {
			printf("CELL%d: skipped (%s)\n", c, bl_mode_name(mode));
			return BL_EXIT_OK;
		}
		cli_error("%s: CELL%d: no cell (MODE %s): not started", cmd, c, bl_mode_name(mode));
		return BL_EXIT_FAILED;
	}
	/* The channel layer's step start, as a Lua step or the runner does it:
	 * ERROR and the charge counter cleared, then the current. */
	st = cli_chan_start(s, c, rs->charge ? BL_STEP_CHARGE : BL_STEP_DISCHARGE, amps);
	if (st != BL_OK)
		return cli_device_error(s, s->dev, st, "starting CELL%d", c);
	if ((st = check_started(s->dev, c, &stopped, why, sizeof why)) != BL_OK)
		return cli_device_error(s, s->dev, st, "reading CELL%d", c);
	if (stopped) {
		cli_error("%s: CELL%d: the device stopped it at once: %s", cmd, c, why);
		return BL_EXIT_FAILED;
	}
	rs->started[c] = true;
	printf("CELL%d: %s at %.4f A\n", c, rs->charge ? "charging" : "discharging",
	       bl_device_target(s->dev, c));
	return BL_EXIT_OK;
}

/* The current to use: the argument, else the channel's setpoint now. */
static int pick_amps(struct cli_devsel *s, const char *cmd, int c, bool given, double arg,
                     double *amps)
{
	if (given) {
		*amps = arg;
		return BL_EXIT_OK;
	}
	*amps = bl_setpoint_from_raw(bl_device_operating_setpoint(s->dev, c));
	if (*amps <= 0) {
		cli_error("%s: CELL%d: its setpoint is 0 A: give the current (batlab %s %d 1.0)", cmd, c,
		          cmd, c);
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

static int parse_amps(const char *cmd, const char *text, double *amps)
{
	double max = bl_setpoint_from_raw(BL_SETPOINT_MAX);
	int r = cli_parse_number(cmd, "the current", text, "A", amps);

	if (r != BL_EXIT_OK)
		return r;
	if (!(*amps > 0)) {
		cli_error("%s: the current must be more than 0 A, not %s", cmd, text);
		return BL_EXIT_USAGE;
	}
	if (*amps > max) {
		cli_error("warning: %s: %g A clamped to %.2f A, the most a host commands", cmd, *amps, max);
		*amps = max;
	}
	return BL_EXIT_OK;
}

/* `charge` and `discharge`: argv[0] says which. */
int cmd_current(int argc, char **argv)
{
	bool charge = strcmp(argv[0], discharge_cmd.name) != 0;
	const struct cli_cmd *cmd = charge ? &charge_cmd : &discharge_cmd;
	const char *name = cmd->name, *for_text = NULL;
	const struct cli_opt opts[] = {{"--for", true, &for_text, NULL}, {NULL, false, NULL, NULL}};
	struct cli_devsel_opts o;
	struct cli_devsel s;
	struct run_state rs;
	char *pos[CLI_MAX_POS];
	int npos, r, cell, nstarted = 0, failed = 0;
	double arg = 0, seconds = 0;

	if ((r = cli_parse(cmd, argc, argv, opts, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_parse_cell(name, pos[0], true, &cell)) != BL_EXIT_OK ||
	    (npos > 1 && (r = parse_amps(name, pos[1], &arg)) != BL_EXIT_OK))
		return r;
	if (for_text && ((r = cli_parse_number(name, "--for", for_text, "s", &seconds)) != BL_EXIT_OK ||
	                 !(seconds > 0))) {
		if (r == BL_EXIT_OK)
			cli_error("%s: --for must be more than 0 s, not %s", name, for_text);
		return BL_EXIT_USAGE;
	}
	o.watchdog = true;
	if ((r = cli_devsel_open(&s, &o, name, 0)) != BL_EXIT_OK)
		return r;
	memset(&rs, 0, sizeof rs);
	rs.s = &s;
	rs.charge = charge;
	for (int c = 0; c < BL_CELLS && r == BL_EXIT_OK; c++) {
		double amps;
		if (cell != CLI_ALL_CELLS && c != cell)
			continue;
		if ((r = pick_amps(&s, name, c, npos > 1, arg, &amps)) != BL_EXIT_OK)
			break;
		r = start_cell(&rs, c, amps, cell == CLI_ALL_CELLS);
		if (r == BL_EXIT_FAILED) {
			failed++;
			r = BL_EXIT_OK;
		}
		nstarted += rs.started[c];
	}
	if (r == BL_EXIT_OK && nstarted && for_text)
		r = run_for(&rs, seconds);
	else if (r == BL_EXIT_OK && nstarted)
		fputs(WATCHDOG_NOTE, stdout);
	else if (r != BL_EXIT_OK && nstarted)
		/* A later channel failed: do not leave the earlier ones running
		 * unattended after an error. */
		for (int c = 0; c < BL_CELLS; c++)
			if (rs.started[c])
				cli_chan_safe(&s, c);
	if (r == BL_EXIT_OK && (failed || !nstarted)) {
		if (!nstarted && !failed)
			cli_error("%s: no cell to %s", name, name);
		r = BL_EXIT_FAILED;
	}
	cli_devsel_close(&s);
	return r;
}

/* ---- sinewave ---------------------------------------------------------------- */

static const struct cli_cmd sinewave_cmd = {
	"sinewave", "CELL [HZ]",
	"Drive a continuous impedance sine through the cell: UNIT SINE_FREQ (when\n"
	"HZ is given; multiples of 39.0625 Hz, 39.0625..9960.9375), clear ERROR,\n"
	"MODE IMPEDANCE. The frequency is shared by all four channels. The\n"
	"watchdog stops the channel about 25 s after batlab exits.\n",
	1, 2, true,
};

int cmd_sinewave(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS], why[200];
	int npos, r, st, cell;
	double hz = 0;
	uint16_t raw = 0, mode;
	bool stopped;

	if ((r = cli_parse(&sinewave_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if ((r = cli_parse_cell("sinewave", pos[0], false, &cell)) != BL_EXIT_OK)
		return r;
	if (npos > 1) {
		if ((r = cli_parse_number("sinewave", "the frequency", pos[1], "Hz", &hz)) != BL_EXIT_OK)
			return r;
		raw = bl_freq_to_raw(hz);
		/* Only the low 8 bits of SINE_FREQ step the sine's phase. */
		if (hz <= 0 || raw < 1 || raw > 255) {
			cli_error("sinewave: the frequency must be 39.0625..9960.9375 Hz, not %s", pos[1]);
			return BL_EXIT_USAGE;
		}
	}
	o.watchdog = true;
	if ((r = cli_devsel_open(&s, &o, "sinewave", 0)) != BL_EXIT_OK)
		return r;
	if ((st = cli_read(s.dev, (uint8_t)cell, BL_CELL_MODE, &mode)) != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "reading CELL%d MODE", cell);
		goto out;
	}
	if (no_cell(mode)) {
		cli_error("sinewave: CELL%d: no cell (MODE %s): not started", cell, bl_mode_name(mode));
		r = BL_EXIT_FAILED;
		goto out;
	}
	if ((raw && (st = cli_write(s.dev, BL_NS_UNIT, BL_UNIT_SINE_FREQ, raw)) != BL_OK) ||
	    (st = cli_read(s.dev, BL_NS_UNIT, BL_UNIT_SINE_FREQ, &raw)) != BL_OK ||
	    (st = cli_write(s.dev, (uint8_t)cell, BL_CELL_ERROR, 0)) != BL_OK ||
	    (st = cli_write(s.dev, (uint8_t)cell, BL_CELL_MODE, BL_MODE_IMPEDANCE)) != BL_OK ||
	    (st = check_started(s.dev, cell, &stopped, why, sizeof why)) != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "starting the sine on CELL%d", cell);
		goto out;
	}
	if (stopped) {
		cli_error("sinewave: CELL%d: the device stopped it at once: %s", cell, why);
		r = BL_EXIT_FAILED;
		goto out;
	}
	printf("CELL%d: sine at %.4f Hz (MODE IMPEDANCE)\n", cell, bl_freq_from_raw(raw));
	fputs(WATCHDOG_NOTE, stdout);
out:
	cli_devsel_close(&s);
	return r;
}

/* ---- stop and reset ----------------------------------------------------------- */

static const struct cli_cmd stop_cmd = {
	"stop", "[CELL]",
	"MODE STOPPED: the current stops at once. Without CELL, all four channels,\n"
	"and, when no --port or --serial names a Batlab, on every connected\n"
	"Batlab. ERROR is kept (see 'batlab measure'); 'batlab reset' clears it.\n",
	0, 1, true,
};

static const struct cli_cmd reset_cmd = {
	"reset", "[CELL]",
	"MODE IDLE (all four channels without CELL): clears ERROR and restarts\n"
	"cell detection. The watchdog is refreshed first, so a channel it stopped\n"
	"comes back; when nothing is left running, batlab turns the watchdog off\n"
	"again so idle channels stay idle.\n",
	0, 1, true,
};

/* Write `mode` to the chosen cells of one device and print what they read. */
static int set_mode(struct cli_devsel *s, struct bl_device *d, int cell, uint16_t mode,
                    bool prefix)
{
	for (int c = 0; c < BL_CELLS; c++) {
		uint16_t now;
		int st;
		if (cell != CLI_ALL_CELLS && c != cell)
			continue;
		bl_device_set_target(d, c, 0);
		if ((st = cli_write(d, (uint8_t)c, BL_CELL_MODE, mode)) != BL_OK ||
		    (st = cli_read(d, (uint8_t)c, BL_CELL_MODE, &now)) != BL_OK)
			return cli_device_error(s, d, st, "CELL%d", c);
		if (prefix)
			printf("Batlab %u ", bl_device_identity(d)->serial);
		printf("CELL%d: %s\n", c, bl_mode_name(now) ? bl_mode_name(now) : "?");
	}
	return BL_EXIT_OK;
}

/* `stop` and `reset`: argv[0] says which. */
int cmd_mode(int argc, char **argv)
{
	bool stop = strcmp(argv[0], reset_cmd.name) != 0;
	const struct cli_cmd *cmd = stop ? &stop_cmd : &reset_cmd;
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS];
	int npos, r, cell = CLI_ALL_CELLS;

	if ((r = cli_parse(cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (npos && (r = cli_parse_cell(cmd->name, pos[0], true, &cell)) != BL_EXIT_OK)
		return r;
	/* IDLE does not hold while an expired watchdog keeps forcing STOPPED:
	 * reset refreshes it (and lets it go again at the end). */
	o.watchdog = !stop;
	if ((r = cli_devsel_open(&s, &o, cmd->name, 0)) != BL_EXIT_OK)
		return r;
	if (stop && cell == CLI_ALL_CELLS && !s.selected) {
		size_t n = bl_pool_count(s.pool);
		for (size_t i = 0; i < n && r == BL_EXIT_OK; i++) {
			struct bl_device *d = bl_pool_device(s.pool, i);
			if (!bl_device_identity(d)->bootloader) /* no channels run there */
				r = set_mode(&s, d, cell, BL_MODE_STOPPED, n > 1);
		}
	} else {
		r = set_mode(&s, s.dev, cell, stop ? BL_MODE_STOPPED : BL_MODE_IDLE, false);
	}
	cli_devsel_close(&s);
	return r;
}
