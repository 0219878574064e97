/* main.c - the `batlab` command: global options and subcommand dispatch. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{"run", cmd_run, "run a test procedure (a Lua file) on the connected cells"},
	{"cycletest", cmd_run, "Lexcelon's stock cycle test with a settings file"},
	{"dischargetest", cmd_run, "Lexcelon's stock discharge test with a settings file"},
	{"check", cmd_run, "dry-run a procedure on the virtual Batlab and report its problems"},
	{"resume", cmd_run, "go on with a run whose host died, from its journal"},
	{"settings", cmd_settings, "settings view FILE: every setting of a settings file, checked"},
	{"report", cmd_report, "a run's results as an HTML page with plots (or several runs compared)"},
	{"db", cmd_db, "db init|push: the lab's PostgreSQL database (docs/database.md)"},
	{"runs", cmd_db, "the runs in the lab's database, from every host"},
	{"analyze", cmd_report, "per-cycle statistics, dQ/dV, dV/dQ and resistances of a run"},
	{"match", cmd_report, "group graded cells of runs into a pack (series x parallel)"},
	{"shell", cmd_shell, "a Lua prompt with the API, the pool and the active device"},
	{"sim", cmd_sim, "serve virtual Batlabs on pseudo-terminals"},
	{"lua", cmd_lua, "run a Lua file with the batlab API loaded (like lua FILE)"},
	{"list", cmd_list, "every connected Batlab: serial, port, firmware, power, modes"},
	{"info", cmd_info, "one unit's identity and settings"},
	{"measure", cmd_measure, "voltage, current, temperature, charge and mode per cell"},
	{"setpoints", cmd_setpoints, "current setpoint and limits per cell"},
	{"read", cmd_read, "read a register: batlab read CELL2 VOLTAGE"},
	{"write", cmd_write, "write a register: batlab write CELL0 VOLTAGE_LIMIT_CHG 4.1V"},
	{"impedance", cmd_impedance, "measure a cell's impedance (ohms)"},
	{"charge", cmd_current, "start charging a cell (or all) at a current"},
	{"discharge", cmd_current, "start discharging a cell (or all) at a current"},
	{"sinewave", cmd_sinewave, "drive the impedance sine through a cell"},
	{"stop", cmd_mode, "stop a channel (or every channel)"},
	{"reset", cmd_mode, "put a channel (or all four) back to IDLE, clearing ERROR"},
	{"lowcurrent", cmd_lowcurrent, "set the zero-current threshold (kept in EEPROM)"},
	{"firmware", cmd_firmware, "firmware load FILE, firmware check|update (the latest release)"},
	{"calibration", cmd_calibration, "calibration backup|restore FILE"},
};

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("batlab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: batlab [--version] [--help] COMMAND [ARGS...]\n"
	        "\n"
	        "Run battery-cell tests on Lexcelon Batlab V1.0 testers, or on virtual ones.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		fprintf(out, "  %-14s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out,
	        "\n"
	        "Run 'batlab COMMAND --help' for a command's options.\n"
	        "Exit codes: 0 ok, 1 a cell failed, 2 usage/settings error,\n"
	        "            3 device/communication error, 130 interrupted.\n");
}

/* A reader that goes away (`batlab cycletest ... | head -1`) must not kill
 * a run between two rows: writes to that stream fail with EPIPE instead,
 * and the run carries on. A handler that does nothing rather than SIG_IGN,
 * because an ignored signal stays ignored in the programs batlab starts
 * (io.popen), a caught one is reset to the default at exec. */
static void on_sigpipe(int sig)
{
	(void)sig;
}

static void catch_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPIPE, &sa, NULL);
}

int main(int argc, char **argv)
{
	catch_sigpipe();
	if (argc < 2) {
		usage(stderr);
		return BL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("batlab %s\n", BL_VERSION);
		return BL_EXIT_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return BL_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try 'batlab --help')", argv[1]);
	return BL_EXIT_USAGE;
}
