/* cli/cliargs.c - the command line of the device commands: options
 * anywhere, the device-selection options every command shares, and the
 * values they take (cells, numbers). See devsel.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "sim/layout.h"

#define DEFAULT_TIMEOUT_S 10.0


/* ---- Argument parsing ------------------------------------------------------ */

static void print_usage(const struct cli_cmd *c, FILE *out)
{
	fprintf(out, "usage: batlab %s %s%s\n", c->name, c->usage,
	        c->device ? " [--port PATH | --serial N | --sim[=LAYOUT]]" : "");
}

/* Help text for the device-selection options. */
static void print_devsel_help(FILE *out)
{
	fprintf(out,
	        "\n"
	        "Device selection (default: every Batlab found by USB ID 04D8:000A; single-\n"
	        "device commands use the one with the lowest serial number):\n"
	        "  --port PATH      only the Batlab on PATH (with --sim: a virtual unit's\n"
	        "                   name, sim0, sim1, ...)\n"
	        "  --serial N       the Batlab with serial number N\n"
	        "  --sim[=LAYOUT]   virtual Batlabs in virtual time instead of hardware:\n"
	        "                   the built-in unit, or a JSON layout file\n"
	        "  --devices N      with --sim: N default virtual units (1..%d)\n"
	        "  --seed S         with --sim: measurement-noise seed (default 0)\n"
	        "  --connect-timeout S\n"
	        "                   give devices S seconds to connect (default %g)\n"
	        "  -v, --verbose    library messages on standard error (-vv: more)\n"
	        "  -h, --help       this text\n",
	        BL_SIM_MAX_DEVICES, DEFAULT_TIMEOUT_S);
}

static void print_help(const struct cli_cmd *c)
{
	print_usage(c, stdout);
	fputc('\n', stdout);
	fputs(c->help, stdout);
	if (c->device)
		print_devsel_help(stdout);
	else
		fputs("  -h, --help       this text\n", stdout);
}

static bool looks_negative_number(const char *a)
{
	return a[0] == '-' && (isdigit((unsigned char)a[1]) || a[1] == '.');
}

static int parse_u64(const struct cli_cmd *c, const char *name, const char *v, uint64_t max,
                     uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *end || !isdigit((unsigned char)v[0]) || n > max) {
		cli_error("%s: %s needs an integer 0..%llu, not '%s'", c->name, name,
		          (unsigned long long)max, v);
		return BL_EXIT_USAGE;
	}
	*out = n;
	return BL_EXIT_OK;
}

int cli_select_option(const char *cmd, int argc, char **argv, int *i,
                      struct cli_devsel_opts *o)
{
	const struct cli_cmd named = {.name = cmd};
	const struct cli_cmd *c = &named;
	const char *a = argv[*i], *v;
	uint64_t n;

	if (cli_opt_match(a, "--sim", true)) {
		o->sim = true;
		if (a[5] == '=') {
			if (!a[6]) {
				cli_error("%s: --sim= needs a layout file", c->name);
				return -BL_EXIT_USAGE;
			}
			o->layout = a + 6;
		}
		return 1;
	}
	if (cli_opt_match(a, "--port", true)) {
		if (!(v = cli_opt_value(c->name, argc, argv, i, "--port")))
			return -BL_EXIT_USAGE;
		o->port = v;
		return 1;
	}
	if (cli_opt_match(a, "--serial", true)) {
		if (!(v = cli_opt_value(c->name, argc, argv, i, "--serial")) ||
		    parse_u64(c, "--serial", v, UINT32_MAX, &n) != BL_EXIT_OK)
			return -BL_EXIT_USAGE;
		o->have_serial = true;
		o->serial = (uint32_t)n;
		return 1;
	}
	if (cli_opt_match(a, "--devices", true)) {
		if (!(v = cli_opt_value(c->name, argc, argv, i, "--devices")) ||
		    parse_u64(c, "--devices", v, BL_SIM_MAX_DEVICES, &n) != BL_EXIT_OK)
			return -BL_EXIT_USAGE;
		if (n < 1) {
			cli_error("%s: --devices must be 1..%d", c->name, BL_SIM_MAX_DEVICES);
			return -BL_EXIT_USAGE;
		}
		o->devices = (int)n;
		return 1;
	}
	if (cli_opt_match(a, "--seed", true)) {
		if (!(v = cli_opt_value(c->name, argc, argv, i, "--seed")) ||
		    parse_u64(c, "--seed", v, UINT64_MAX, &o->seed) != BL_EXIT_OK)
			return -BL_EXIT_USAGE;
		return 1;
	}
	return 0;
}

void cli_select_session(const struct cli_devsel_opts *o, struct bl_session_opts *so)
{
	so->sim = o->sim;
	so->layout = o->layout;
	so->devices = o->devices;
	so->seed = o->seed;
	so->port = o->port;
	so->has_serial = o->have_serial;
	so->serial = o->serial;
}

/* A device-selection option at argv[*i], or --connect-timeout and
 * verbosity: 1 consumed, 0 not one, or -BL_EXIT_USAGE after a message. */
static int devsel_option(const struct cli_cmd *c, int argc, char **argv, int *i,
                         struct cli_devsel_opts *o)
{
	const char *a = argv[*i], *v;
	int r = cli_select_option(c->name, argc, argv, i, o);

	if (r != 0)
		return r;
	if (cli_opt_match(a, "--connect-timeout", true)) {
		double t;
		if (!(v = cli_opt_value(c->name, argc, argv, i, "--connect-timeout")) ||
		    cli_parse_number(c->name, "--connect-timeout", v, "s", &t) != BL_EXIT_OK)
			return -BL_EXIT_USAGE;
		if (!(t > 0)) {
			cli_error("%s: --connect-timeout must be more than 0 s, not '%s'", c->name, v);
			return -BL_EXIT_USAGE;
		}
		o->timeout_s = t;
		return 1;
	}
	/* --timeout is the discharge timeout of run and dischargetest; here it
	 * once meant the connect timeout, so say where that went. */
	if (cli_opt_match(a, "--timeout", true)) {
		cli_error("%s: unknown option '--timeout' (the time devices may take to connect is "
		          "--connect-timeout S)", c->name);
		return -BL_EXIT_USAGE;
	}
	if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
		o->verbose++;
		return 1;
	}
	if (strcmp(a, "-vv") == 0) {
		o->verbose += 2;
		return 1;
	}
	return 0;
}

/* A command option at argv[*i]: 1 consumed, 0 not one, -BL_EXIT_USAGE. */
static int command_option(const struct cli_cmd *c, int argc, char **argv, int *i,
                          const struct cli_opt *opts)
{
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		if (!cli_opt_match(argv[*i], o->name, o->has_value))
			continue;
		if (o->has_value) {
			const char *v = cli_opt_value(c->name, argc, argv, i, o->name);
			if (!v)
				return -BL_EXIT_USAGE;
			*o->value = v;
		}
		if (o->seen)
			*o->seen = true;
		return 1;
	}
	return 0;
}

int cli_select_check(const char *cmd, const struct cli_devsel_opts *o)
{
	struct stat st;

	/* A port that is not there is a typo, not a device that failed: exit
	 * 2 before anything opens, for every command alike (list would
	 * otherwise show it as one more port that did not open). With --sim
	 * the port names a virtual unit, checked when the units exist. */
	if (o->port && !o->sim && stat(o->port, &st) != 0 && errno == ENOENT) {
		cli_error("%s: %s: no such port (%s)", cmd, o->port,
		          !strchr(o->port, '/') ? "a virtual unit's name needs --sim"
		          : strcmp(cmd, "list") ? "is it plugged in? 'batlab list' shows the Batlabs found"
		          : "is it plugged in?");
		return BL_EXIT_USAGE;
	}
	if (!o->sim && (o->devices || o->seed)) {
		cli_error("%s: --devices and --seed need --sim", cmd);
		return BL_EXIT_USAGE;
	}
	if (o->layout && o->devices) {
		cli_error("%s: --devices and --sim=LAYOUT exclude each other (the layout lists the devices)",
		          cmd);
		return BL_EXIT_USAGE;
	}
	return BL_EXIT_OK;
}

int cli_parse(const struct cli_cmd *c, int argc, char **argv, const struct cli_opt *opts,
              struct cli_devsel_opts *sel, char **pos, int *npos)
{
	bool only_pos = false;

	memset(sel, 0, sizeof *sel);
	sel->timeout_s = DEFAULT_TIMEOUT_S;
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r = 0;

		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1] && !looks_negative_number(a)) {
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				print_help(c);
				return CLI_HELP;
			}
			r = command_option(c, argc, argv, &i, opts);
			if (r == 0 && c->device)
				r = devsel_option(c, argc, argv, &i, sel);
			if (r < 0)
				return -r;
			if (r == 0) {
				cli_error("%s: unknown option '%s' (try 'batlab %s --help')", c->name, a,
				          c->name);
				return BL_EXIT_USAGE;
			}
			continue;
		}
		if (*npos >= c->max_pos || *npos >= CLI_MAX_POS) {
			cli_error("%s: unexpected argument '%s' (usage: batlab %s %s)", c->name, a,
			          c->name, c->usage);
			return BL_EXIT_USAGE;
		}
		pos[(*npos)++] = argv[i];
	}
	if (*npos < c->min_pos) {
		cli_error("%s: missing arguments (usage: batlab %s %s)", c->name, c->name, c->usage);
		return BL_EXIT_USAGE;
	}
	return c->device ? cli_select_check(c->name, sel) : BL_EXIT_OK;
}

/* ---- Values ---------------------------------------------------------------- */

int cli_parse_cell(const char *cmd, const char *text, bool allow_all, int *cell)
{
	/* `read CELL2 VOLTAGE` names a channel as CELL2: every command that
	 * takes a channel accepts the same spelling, so one a user typed for
	 * one command works for the next. */
	const char *num = strncasecmp(text, "cell", 4) == 0 ? text + 4 : text;
	char *end;
	long n;

	if (allow_all && strcasecmp(text, "all") == 0) {
		*cell = CLI_ALL_CELLS;
		return BL_EXIT_OK;
	}
	errno = 0;
	n = strtol(num, &end, 10);
	if (errno || end == num || *end || !(isdigit((unsigned char)*num) || *num == '-')) {
		cli_error("%s: '%s' is not a cell (0..3, CELL0..CELL3%s)", cmd, text,
		          allow_all ? " or all" : "");
		return BL_EXIT_USAGE;
	}
	if (n < 0 || n >= BL_CELLS) {
		cli_error("%s: channel out of range: %s (cells are 0..3)", cmd, text);
		return BL_EXIT_USAGE;
	}
	*cell = (int)n;
	return BL_EXIT_OK;
}

int cli_parse_number(const char *cmd, const char *what, const char *text, const char *unit,
                     double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	/* strtod also takes hex floats, "inf" and "nan": none is a setting. */
	if (end == text || errno || !isfinite(v) || strchr(text, 'x') || strchr(text, 'X') ||
	    (*end && !(unit && strcasecmp(end, unit) == 0))) {
		cli_error("%s: %s must be a number%s%s%s, not '%s'", cmd, what, unit ? " (in " : "",
		          unit ? unit : "", unit ? ")" : "", text);
		return BL_EXIT_USAGE;
	}
	*out = v;
	return BL_EXIT_OK;
}
