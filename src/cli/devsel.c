/* cli/devsel.c - opening the session and choosing the target device for
 * the device commands, and blocking helpers on it. See devsel.h; the
 * command line itself is parsed in cliargs.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"
#include "host/session.h"

#define US(s) ((uint64_t)((s) * 1e6))

/* ---- The session ----------------------------------------------------------- */

static void log_drop(void *ud, enum bl_log_level level, const char *module, const char *msg)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)msg;
}

static void set_logging(int verbose)
{
	if (verbose <= 0) {
		/* Failures come back as status codes and get one line of our own;
		 * library chatter would break "one line per error". */
		bl_log_set_handler(log_drop, NULL);
		return;
	}
	bl_log_set_handler(NULL, NULL);
	bl_log_set_level(verbose == 1 ? BL_LOG_INFO : BL_LOG_DEBUG);
}

static void add_failed(struct cli_devsel *s, const char *path, const char *reason, int status)
{
	struct cli_failed_port *f;

	for (int i = 0; i < s->nfailed; i++)
		if (strcmp(s->failed[i].path, path) == 0)
			return;
	if (s->nfailed >= CLI_MAX_FAILED)
		return;
	f = &s->failed[s->nfailed++];
	snprintf(f->path, sizeof f->path, "%s", path);
	snprintf(f->reason, sizeof f->reason, "%s", reason);
	f->status = status;
}

/* Strip the "PATH: " a link error starts with: we keep the path apart. */
static const char *reason_of(const char *err, const char *path)
{
	size_t n = strlen(path);

	if (strncmp(err, path, n) == 0 && err[n] == ':' && err[n + 1] == ' ')
		return err + n + 2;
	return err;
}

static void on_port_failed(const char *path, const char *why, int status, void *ud)
{
	if (why)
		add_failed(ud, path, reason_of(why, path), status);
	else
		add_failed(ud, path, "no answer from a Batlab (is it one? is it powered?)", BL_ERR_TIMEOUT);
}

/* Why nothing is there, in one line. */
static int report_none(struct cli_devsel *s)
{
	if (s->nfailed > 0) {
		const struct cli_failed_port *f = &s->failed[0];
		bool perm = strstr(f->reason, "ermission") != NULL;
		cli_error("%s: %s%s", f->path, f->reason,
		          perm ? " (see README: serial-port permissions)" : "");
	} else {
		cli_error("no Batlab found (is it plugged in? see README: serial-port permissions)");
	}
	return BL_EXIT_DEVICE;
}

static void list_serials(const struct cli_devsel *s, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < bl_pool_count(s->pool) && len < n; i++) {
		struct bl_device *d = bl_pool_device(s->pool, i);
		len += (size_t)snprintf(buf + len, n - len, "%s%u on %s", i ? ", " : "",
		                        bl_device_identity(d)->serial, bl_device_port(d));
	}
}

static int pick_target(struct cli_devsel *s, unsigned flags)
{
	const struct cli_devsel_opts *o = &s->opts;
	char found[512];

	s->selected = o->port || o->have_serial;
	if (o->port) {
		s->dev = bl_pool_find_port(s->pool, o->port);
		if (!s->dev && o->sim) {
			cli_error("%s: no virtual Batlab named '%s' (they are sim0..sim%zu)", s->cmd, o->port,
			          bl_pool_count(s->pool) - 1);
			return BL_EXIT_DEVICE;
		}
		if (!s->dev && (flags & CLI_SEL_ALL) && s->nfailed)
			return BL_EXIT_OK; /* list shows why the port did not open */
		if (!s->dev)
			return report_none(s);
	}
	if (o->have_serial) {
		struct bl_device *d = bl_pool_find_serial(s->pool, o->serial);
		if (!d || (s->dev && d != s->dev)) {
			list_serials(s, found, sizeof found);
			cli_error("%s: no Batlab with serial %u%s (found: %s)", s->cmd, o->serial,
			          o->port ? " on that port" : "", found);
			return BL_EXIT_DEVICE;
		}
		s->dev = d;
	}
	if (!s->dev && !(flags & CLI_SEL_ALL))
		s->dev = bl_pool_device(s->pool, 0);
	if (s->dev) {
		const struct bl_identity *id = bl_device_identity(s->dev);
		bl_pool_set_active(s->pool, s->dev);
		if (id->bootloader && !(flags & CLI_SEL_BOOTLOADER)) {
			cli_error("%s: the Batlab on %s is in its bootloader (load firmware with "
			          "'batlab firmware load FILE')", s->cmd, bl_device_port(s->dev));
			return BL_EXIT_DEVICE;
		}
	}
	return BL_EXIT_OK;
}

static void free_all(struct cli_devsel *s)
{
	bl_session_close(s->session);
	s->session = NULL;
	s->pool = NULL;
	s->loop = NULL;
	s->dev = NULL;
}

/* The session's options for the command line: USB ports listed once, each
 * failure kept for the messages, Ctrl-C caught from the start. */
static void session_opts(struct cli_devsel *s, struct bl_session_opts *so, struct bl_device_opts *dev)
{
	const struct cli_devsel_opts *o = &s->opts;

	bl_device_opts_default(dev);
	/* Commands that only look leave the watchdog as they found it: enabling
	 * it would stop every channel, idle ones too, 25 s after we exit. */
	if (!o->watchdog)
		dev->watchdog_us = 0;
	memset(so, 0, sizeof *so);
	cli_select_session(o, so);
	so->has_serial = false;       /* pick_target chooses, with its messages */
	/* With --sim, --port names a virtual unit: pick_target finds it. */
	so->port = o->sim ? NULL : o->port;
	so->settle_us = US(o->timeout_s);
	so->dev = dev;
	so->catch_signals = true;
	so->scan_once = true;
	so->allow_empty = true;
	so->port_failed = on_port_failed;
	so->port_ud = s;
}

int cli_devsel_open(struct cli_devsel *s, const struct cli_devsel_opts *o, const char *cmd,
                    unsigned flags)
{
	struct bl_session_opts so;
	struct bl_device_opts dev;
	char err[512];
	int rc, code;

	memset(s, 0, sizeof *s);
	s->cmd = cmd;
	s->opts = *o;
	set_logging(o->verbose);
	session_opts(s, &so, &dev);
	rc = bl_session_open(&so, &s->session, err, sizeof err);
	if (rc != BL_OK) {
		cli_error("%s: %s", cmd, err[0] ? err : bl_strerror(rc));
		return rc == BL_ERR_ARG ? BL_EXIT_USAGE : BL_EXIT_DEVICE;
	}
	s->loop = bl_session_loop(s->session);
	s->pool = bl_session_pool(s->session);
	if (cli_interrupted(s))
		code = BL_EXIT_INTERRUPTED;
	else if (bl_pool_count(s->pool) == 0 && !((flags & CLI_SEL_ALL) && s->nfailed))
		code = report_none(s);
	else
		code = pick_target(s, flags);
	if (code != BL_EXIT_OK)
		free_all(s);
	return code;
}

static bool mode_active(uint16_t mode)
{
	return mode == BL_MODE_CHARGE || mode == BL_MODE_DISCHARGE || mode == BL_MODE_IMPEDANCE;
}

static void release_watchdog(struct bl_device *d)
{
	uint16_t mode, settings;

	if (bl_device_closed(d) || !bl_device_identity(d)->connected ||
	    bl_device_identity(d)->bootloader || bl_device_identity(d)->firmware < 4)
		return;
	for (int c = 0; c < BL_CELLS; c++)
		if (cli_read(d, (uint8_t)c, BL_CELL_MODE, &mode) != BL_OK || mode_active(mode))
			return;
	if (cli_read(d, BL_NS_UNIT, BL_UNIT_SETTINGS, &settings) != BL_OK ||
	    !(settings & BL_SET_WATCHDOG_TIMER))
		return;
	cli_wait(d, bl_op_write_verify(d, BL_NS_UNIT, BL_UNIT_SETTINGS,
	                               settings & (uint16_t)~BL_SET_WATCHDOG_TIMER, NULL, NULL),
	         NULL, NULL);
}

void cli_devsel_close(struct cli_devsel *s)
{
	if (!s->loop)
		return;
	bl_chanset_free(s->cs);
	s->cs = NULL;
	if (s->opts.watchdog && !s->keep_watchdog)
		for (size_t i = 0; i < bl_pool_count(s->pool); i++)
			release_watchdog(bl_pool_device(s->pool, i));
	fflush(stdout);
	free_all(s);
}

/* ---- Helpers --------------------------------------------------------------- */

struct bl_channel *cli_channel(struct cli_devsel *s, int cell)
{
	if (!s->cs)
		s->cs = bl_chanset_new(s->dev);
	return s->cs ? bl_chanset_channel(s->cs, cell) : NULL;
}

/* A channel operation's result. On the heap: an interrupted wait leaves
 * it to the operation, which frees it when it ends. */
struct chan_waiter {
	bool done, orphan;
	int status;
	double number;
	char what[192];
};

static void chan_done(struct bl_channel *ch, int status, double number, const char *what,
                      void *ud)
{
	struct chan_waiter *w = ud;

	(void)ch;
	if (w->orphan) {
		free(w);
		return;
	}
	w->done = true;
	w->status = status;
	w->number = number;
	snprintf(w->what, sizeof w->what, "%s", what ? what : "");
}

static bool chan_waited(void *ud)
{
	return ((struct chan_waiter *)ud)->done;
}

enum chan_op { OP_START, OP_SAFE, OP_IMPEDANCE };

static int chan_run(struct cli_devsel *s, int cell, enum chan_op op, enum bl_step_kind kind,
                    double amps, double *number)
{
	struct bl_channel *ch = cli_channel(s, cell);
	struct chan_waiter *w = calloc(1, sizeof *w);
	int st;

	if (!ch || !w) {
		free(w);
		return BL_ERR_MEM;
	}
	st = op == OP_START ? bl_channel_start(ch, kind, amps, chan_done, w)
	   : op == OP_SAFE ? bl_channel_safe(ch, chan_done, w)
	   : bl_channel_impedance(ch, chan_done, w);
	if (st != BL_OK) {
		free(w);
		return st;
	}
	bl_loop_run_until(s->loop, chan_waited, w, BL_NEVER);
	if (!w->done) {          /* interrupted: the operation goes on */
		w->orphan = true;
		return BL_ERR_STATE;
	}
	st = w->status;
	if (number)
		*number = w->number;
	snprintf(s->chan_what, sizeof s->chan_what, "%s", w->what);
	free(w);
	return st;
}

int cli_chan_start(struct cli_devsel *s, int cell, enum bl_step_kind kind, double amps)
{
	return chan_run(s, cell, OP_START, kind, amps, NULL);
}

int cli_chan_safe(struct cli_devsel *s, int cell)
{
	return chan_run(s, cell, OP_SAFE, BL_STEP_NONE, 0, NULL);
}

int cli_chan_impedance(struct cli_devsel *s, int cell, double *ohms)
{
	return chan_run(s, cell, OP_IMPEDANCE, BL_STEP_NONE, 0, ohms);
}

int cli_wait(struct bl_device *d, struct bl_op *op, uint16_t *value, double *number)
{
	return bl_device_wait(d, op, value, number);
}

int cli_read(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t *value)
{
	return bl_device_wait(d, bl_op_read(d, ns, addr, NULL, NULL), value, NULL);
}

int cli_write(struct bl_device *d, uint8_t ns, uint8_t addr, uint16_t value)
{
	return bl_device_wait(d, bl_op_write(d, ns, addr, value, NULL, NULL), NULL, NULL);
}

bool cli_interrupted(const struct cli_devsel *s)
{
	return s->loop && bl_loop_caught_signal(s->loop) != 0;
}

int cli_device_error(const struct cli_devsel *s, struct bl_device *d, int status,
                     const char *what, ...)
{
	char msg[256];
	va_list ap;

	if (cli_interrupted(s)) {
		cli_error("%s: interrupted", s->cmd);
		return BL_EXIT_INTERRUPTED;
	}
	va_start(ap, what);
	vsnprintf(msg, sizeof msg, what, ap);
	va_end(ap);
	cli_error("%s: %s: %s: %s", s->cmd, d ? bl_device_port(d) : "?", msg, bl_strerror(status));
	return BL_EXIT_DEVICE;
}

int cli_chan_error(struct cli_devsel *s, int status, const char *what, int cell)
{
	char msg[320];

	if (!s->chan_what[0])
		return cli_device_error(s, s->dev, status, "%s of CELL%d", what, cell);
	/* The channel layer names what failed (and the error bits a stop
	 * latched): say that, not only the status. */
	snprintf(msg, sizeof msg, "CELL%d: %s", cell, s->chan_what);
	return cli_device_error(s, s->dev, status, "%s", msg);
}

int cli_run_for(struct cli_devsel *s, double seconds, bool (*done)(void *ud), void *ud)
{
	uint64_t deadline = bl_loop_now(s->loop) + US(seconds);
	int rc = bl_loop_run_until(s->loop, done, ud, deadline);

	return rc == BL_LOOP_STOPPED || cli_interrupted(s) ? BL_ERR_STATE : BL_OK;
}

double cli_temp_c(const struct bl_device *d, int cell, uint16_t raw)
{
	const struct bl_identity *id = bl_device_identity(d);

	return bl_temp_c_from_raw(raw, id->temp_r[cell], id->temp_b[cell]);
}
