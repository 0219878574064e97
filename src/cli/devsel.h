/* cli/devsel.h - what every device command of `batlab` shares: argument
 * parsing with the device-selection options (--port, --serial, --sim,
 * --devices, --seed, --connect-timeout), opening the session (host/session.h:
 * clock, loop, pool, connected devices), choosing the target device, and
 * small blocking helpers with one-line error messages.
 *
 * A command fills a struct cli_cmd, calls cli_parse(), then
 * cli_devsel_open(); it talks to s->dev with cli_read()/cli_write() or any
 * operation through cli_wait(), and ends with cli_devsel_close().
 */
#ifndef BL_CLI_DEVSEL_H
#define BL_CLI_DEVSEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/loop.h"
#include "device/channel.h"
#include "device/device.h"
#include "device/pool.h"
#include "host/session.h"

/* ---- Options -------------------------------------------------------------- */

struct cli_devsel_opts {
	const char *port;        /* --port PATH (with --sim: a virtual device's name) */
	bool have_serial;
	uint32_t serial;         /* --serial N */
	bool sim;                /* --sim[=LAYOUT] */
	const char *layout;      /* the LAYOUT of --sim=LAYOUT, NULL: built-in */
	int devices;             /* --devices N (sim), 0: not given */
	uint64_t seed;           /* --seed S (sim) */
	double timeout_s;        /* --connect-timeout S: how long devices may take to connect */
	int verbose;             /* -v: library messages on stderr */
	/* Set by the command, not the user: */
	bool watchdog;           /* enable and refresh the device watchdog */
};

/* The device-selection options every command that opens devices takes
 * (run, shell and the utility commands alike): --sim[=LAYOUT], --port,
 * --serial, --devices, --seed, into o's selection fields. 1 taken, 0 not
 * one, -BL_EXIT_USAGE after a message naming cmd. */
int cli_select_option(const char *cmd, int argc, char **argv, int *i,
                      struct cli_devsel_opts *o);
/* Options that exclude each other: BL_EXIT_OK or BL_EXIT_USAGE after a
 * message. */
int cli_select_check(const char *cmd, const struct cli_devsel_opts *o);
/* The selection into a session's options (other fields untouched). */
void cli_select_session(const struct cli_devsel_opts *o, struct bl_session_opts *so);

/* A command-specific option. */
struct cli_opt {
	const char *name;        /* "--for" */
	bool has_value;          /* takes a value: "--for S" or "--for=S" */
	const char **value;      /* where the value goes (has_value) */
	bool *seen;              /* set true when given (may be NULL) */
};

struct cli_cmd {
	const char *name;        /* for messages: "charge", "firmware load" */
	const char *usage;       /* "CELL|all [A] [--for S]" */
	const char *help;        /* description and command options, ends with \n */
	int min_pos, max_pos;    /* positional arguments accepted */
	bool device;             /* takes the device-selection options */
};

#define CLI_MAX_POS 8
#define CLI_HELP (-1)        /* cli_parse printed --help: exit 0 */

/* Parse argv (argv[0] is the command's name): options anywhere, "--" ends
 * them, a negative number is a positional argument. Returns BL_EXIT_OK,
 * CLI_HELP, or BL_EXIT_USAGE after a one-line message. */
int cli_parse(const struct cli_cmd *c, int argc, char **argv, const struct cli_opt *opts,
              struct cli_devsel_opts *sel, char **pos, int *npos);

/* ---- Value parsing (each prints its one-line error and returns
 * BL_EXIT_USAGE, or BL_EXIT_OK) --------------------------------------------- */

#define CLI_ALL_CELLS (-1)
/* The one parser of a channel argument: "0".."3" or "CELL0".."CELL3" (any
 * case), or "all" (CLI_ALL_CELLS) when allow_all. */
int cli_parse_cell(const char *cmd, const char *text, bool allow_all, int *cell);
/* A finite decimal number, with an optional unit suffix (case-insensitive)
 * that is accepted and ignored when it equals `unit` ("A", "Hz", "s"). */
int cli_parse_number(const char *cmd, const char *what, const char *text, const char *unit,
                     double *out);

/* ---- The session ---------------------------------------------------------- */

enum {
	CLI_SEL_ALL = 1,          /* no single target needed (list) */
	CLI_SEL_BOOTLOADER = 2,   /* a target in its bootloader is fine */
};

#define CLI_MAX_FAILED 16

struct cli_failed_port {
	char path[128];
	char reason[256];
	int status;
};

struct cli_devsel {
	const char *cmd;
	struct cli_devsel_opts opts;
	struct bl_session *session; /* clock, loop and pool */
	struct bl_loop *loop;    /* the session's */
	struct bl_pool *pool;    /* the session's */
	struct bl_device *dev;   /* the target (NULL with CLI_SEL_ALL and none chosen) */
	struct bl_chanset *cs;   /* the target's channels, made on first use */
	char chan_what[192];     /* what the last channel operation said failed */
	bool selected;           /* the user named the device (--serial/--port) */
	bool keep_watchdog;      /* the command set SETTINGS itself: leave it */
	int nfailed;             /* ports that were found but would not open */
	struct cli_failed_port failed[CLI_MAX_FAILED];
};

/* Build everything and pick the target. Returns BL_EXIT_OK, or an exit code
 * after a one-line message (nothing to free then). */
int cli_devsel_open(struct cli_devsel *s, const struct cli_devsel_opts *o, const char *cmd,
                    unsigned flags);
/* With the watchdog enabled by this session: when no channel of a device is
 * left charging, discharging or in impedance mode, turn its watchdog off
 * again, so idle channels are not stopped 25 s after we exit. Then free. */
void cli_devsel_close(struct cli_devsel *s);


/* ---- Blocking helpers on the target -------------------------------------- */

int cli_wait(struct bl_device *d, struct bl_op *op, uint16_t *value, double *number);
/* The target's channels through the channel layer (device/channel.h), the
 * same code path the Lua bindings and the runner use: start a step, make a
 * channel safe, measure impedance; each runs the loop until it is done
 * and returns its status. cli_channel gives the channel itself (NULL on
 * out of memory); the channel set goes with cli_devsel_close. */
struct bl_channel *cli_channel(struct cli_devsel *s, int cell);
int cli_chan_start(struct cli_devsel *s, int cell, enum bl_step_kind kind, double amps);
int cli_chan_safe(struct cli_devsel *s, int cell);
int cli_chan_impedance(struct cli_devsel *s, int cell, double *ohms);
/* Report a failed channel operation (`what` of CELL n) with what the
 * channel layer said failed; returns the exit code. */
int cli_chan_error(struct cli_devsel *s, int status, const char *what, int cell);
int cli_read(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t *value);
int cli_write(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value);
/* Report a failed device operation ("batlab: CMD: PORT: WHAT: timeout") and
 * return the exit code: BL_EXIT_INTERRUPTED after Ctrl-C, else
 * BL_EXIT_DEVICE. */
int cli_device_error(const struct cli_devsel *s, struct bl_device *d, int status,
                     const char *what, ...) __attribute__((format(printf, 4, 5)));
/* True once SIGINT/SIGTERM arrived. */
bool cli_interrupted(const struct cli_devsel *s);
/* Run the loop (regulation, watchdog, streams) for `seconds` of loop time,
 * or until done(ud) or a signal. Returns BL_OK, or BL_ERR_STATE after a
 * signal. */
int cli_run_for(struct cli_devsel *s, double seconds, bool (*done)(void *ud), void *ud);

/* Per-cell temperature decoding with the cell's calibration. */
double cli_temp_c(const struct bl_device *d, int cell, uint16_t raw);

#endif
