/* test_cli_util.c - the utility subcommands of the built `batlab` binary
 * ($BATLAB): every command against the in-process virtual Batlab (--sim,
 * virtual time, so `charge --for 60` is instant), the main ones over a
 * pseudo-terminal served by `batlab sim --pty`, exit codes, and every bad
 * argument giving exactly one line on stderr and exit 2.
 *
 * Children are read with poll(2); the guard times only fail a hung child,
 * nothing asserts on timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/regs.h"
#include "link/link.h"
#include "sim/simdev.h"
#include "tap.h"

#define GUARD_MS 30000
#define OUT_MAX 65536

static char cu_bin[PATH_MAX];
static char cu_tmp[256];

struct cu_result {
	int code;                 /* exit code; -1 killed or failed */
	char out[OUT_MAX];
	char err[OUT_MAX];
};

static struct cu_result res;

static void cu_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void cu_bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

struct cu_child {
	pid_t pid;
	int out, err;
	size_t nout, nerr;
};

/* ---- running the binary ------------------------------------------------- */

static bool cu_find_binary(void)
{
	const char *env = getenv("BATLAB");

	if (env && *env)
		snprintf(cu_bin, sizeof cu_bin, "%s", env);
	else
		snprintf(cu_bin, sizeof cu_bin, "./batlab");
	return access(cu_bin, X_OK) == 0;
}

static int cu_spawn(struct cu_child *c, char *const args[])
{
	int po[2], pe[2];
	char *argv[64];
	int n = 0;

	argv[n++] = cu_bin;
	for (int i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(po) < 0 || pipe(pe) < 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		execv(cu_bin, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	c->out = po[0];
	c->err = pe[0];
	c->nout = c->nerr = 0;
	return 0;
}

/* Read what is there within the guard; false on EOF of both or timeout. */
static bool cu_pump(struct cu_child *c, struct cu_result *r, int guard_ms)
{
	struct pollfd p[2] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}};
	int n;

	if (c->out < 0 && c->err < 0)
		return false;
	n = poll(p, 2, guard_ms);
	if (n <= 0)
		return false;
	for (int i = 0; i < 2; i++) {
		int *fd = i ? &c->err : &c->out;
		char *buf = i ? r->err : r->out;
		size_t *len = i ? &c->nerr : &c->nout;
		ssize_t k;
		if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		k = read(*fd, buf + *len, OUT_MAX - 1 - *len);
		if (k <= 0) {
			close(*fd);
			*fd = -1;
			p[i].fd = -1;
			continue;
		}
		*len += (size_t)k;
		buf[*len] = '\0';
	}
	return true;
}

static int cu_finish(struct cu_child *c, struct cu_result *r)
{
	int st;

	while (c->out >= 0 || c->err >= 0)
		if (!cu_pump(c, r, GUARD_MS)) {
			if (c->out >= 0 || c->err >= 0) {
				kill(c->pid, SIGKILL);
				break;
			}
		}
	if (c->out >= 0)
		close(c->out);
	if (c->err >= 0)
		close(c->err);
	waitpid(c->pid, &st, 0);
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return r->code;
}

/* Run `batlab ARGS...` (a NULL-terminated list) into res. */
static int run_argv(char *const args[])
{
	struct cu_child c;

	memset(&res, 0, sizeof res);
	if (cu_spawn(&c, args) < 0)
		return res.code = -1;
	return cu_finish(&c, &res);
}

/* Run a command given as one string split on spaces (no quoting needed
 * by the tests). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char line[2048], *args[64], *tok, *save = NULL;
	int n = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (tok = strtok_r(line, " ", &save); tok && n < 63; tok = strtok_r(NULL, " ", &save))
		args[n++] = tok;
	args[n] = NULL;
	return run_argv(args);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static void show_failure(void)
{
	diag("exit %d", res.code);
	diag("stdout: %s", res.out);
	diag("stderr: %s", res.err);
}

/* Exit code, one stderr line starting "batlab: ", nothing on stdout. */
static void usage_error(const char *cmd, const char *needle)
{
	int code = run("%s", cmd);
	bool good = code == 2 && count_lines(res.err) == 1 && strncmp(res.err, "batlab: ", 8) == 0 &&
	            res.out[0] == '\0' && (!needle || has(res.err, needle));

	if (!ok(good, "'%s': one-line error, exit 2", cmd))
		show_failure();
}

static void device_error(const char *cmd, const char *needle)
{
	int code = run("%s", cmd);
	bool good = code == 3 && count_lines(res.err) == 1 && strncmp(res.err, "batlab: ", 8) == 0 &&
	            (!needle || has(res.err, needle));

	if (!ok(good, "'%s': one-line device error, exit 3", cmd))
		show_failure();
}

/* Run, expect exit 0, and each needle on stdout. */
static bool expect_ok(const char *cmd, ...)
{
	va_list ap;
	const char *needle;
	bool good = run("%s", cmd) == 0;

	va_start(ap, cmd);
	while ((needle = va_arg(ap, const char *)))
		if (!has(res.out, needle)) {
			diag("missing on stdout: '%s'", needle);
			good = false;
		}
	va_end(ap);
	if (!ok(good, "'%s'", cmd))
		show_failure();
	return good;
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
		cu_bail("cannot write %s", path);
}

static char *tmp_path(const char *name)
{
	static char buf[8][PATH_MAX];
	static int k;
	char *p = buf[k++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", cu_tmp, name);
	return p;
}

/* ---- --help and usage ------------------------------------------------------ */

static const char *const commands[] = {
	"list", "info", "measure", "setpoints", "read", "write", "impedance", "charge",
	"discharge", "sinewave", "stop", "reset", "lowcurrent", "firmware load",
	"calibration backup", "calibration restore",
};

static void test_help(void)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char want[64];
		snprintf(want, sizeof want, "usage: batlab %s", commands[i]);
		bool good = run("%s --help", commands[i]) == 0 && has(res.out, want) &&
		            has(res.out, "--sim") && res.err[0] == '\0';
		if (!ok(good, "batlab %s --help", commands[i]))
			show_failure();
	}
	expect_ok("--help", "measure", "calibration", "lowcurrent", "sinewave", (char *)NULL);
	expect_ok("--version", "batlab ", (char *)NULL);
	expect_ok("read --list", "CELL       0x07 VOLTAGE", "UNIT       0x02 FIRMWARE_VER",
	          "COMMS      0x04 PSU", (char *)NULL);
	expect_ok("firmware --help", "firmware load FILE", (char *)NULL);
	expect_ok("calibration --help", "backup|restore", (char *)NULL);
}

static void test_bad_arguments(void)
{
	usage_error("frob", "unknown command");
	usage_error("measure --frob --sim", "unknown option");
	usage_error("read UNIT FOO --sim", "unknown register 'FOO'");
	usage_error("read cell2 volts --sim", "unknown register");
	usage_error("write cell0 foo 1 --sim", "unknown register");
	usage_error("read CELL9 VOLTAGE --sim", "channel out of range: CELL9");
	usage_error("read CELLS VOLTAGE --sim", "not a cell");
	usage_error("read FOO VOLTAGE --sim", "unknown namespace");
	usage_error("read UNIT --sim", "missing");
	usage_error("write cell0 mode --sim", "missing");
	usage_error("read UNIT VCC extra --sim", "unexpected argument");
	usage_error("measure 4 --sim", "channel out of range");
	usage_error("setpoints 4 --sim", "channel out of range");
	usage_error("impedance 7 --sim", "channel out of range");
	usage_error("charge 9 1 --sim", "channel out of range");
	usage_error("discharge 4 --sim", "channel out of range");
	usage_error("sinewave 4 --sim", "channel out of range");
	usage_error("stop -1 --sim", "channel out of range");
	usage_error("reset 4 --sim", "channel out of range");
	usage_error("measure one --sim", "not a cell (0..3, CELL0..CELL3");
	usage_error("impedance all --sim", "not a cell (0..3, CELL0..CELL3");
	usage_error("impedance --sim", "missing");
	usage_error("charge --sim", "missing");
	usage_error("charge 0 abc --sim", "must be a number");
	usage_error("charge 0 -1 --sim", "more than 0");
	usage_error("charge 0 1 --for x --sim", "--for must be a number");
	usage_error("charge 0 1 --for --sim", NULL);
	usage_error("discharge all 1e400 --sim", "must be a number");
	usage_error("write cell0 voltage_limit_chg abc --sim", "not a number");
	usage_error("write cell0 voltage_limit_chg 4.2 --sim", "give the unit");
	usage_error("write cell0 voltage_limit_chg 2A --sim", "takes V");
	usage_error("write cell0 voltage_limit_chg 4.2furlongs --sim", "unknown unit");
	usage_error("write cell0 voltage_limit_chg 10V --sim", "out of range");
	usage_error("write unit settings 70000 --sim", "out of range");
	usage_error("write unit settings -1 --sim", "out of range");
	usage_error("write cell0 mode sideways --sim", NULL);
	usage_error("lowcurrent abc --sim", "must be a number");
	usage_error("lowcurrent 9 --sim", "0..4 A");
	usage_error("lowcurrent --sim", "missing");
	usage_error("sinewave 0 abc --sim", "must be a number");
	usage_error("sinewave 0 20000 --sim", "frequency");
	usage_error("measure --sim --connect-timeout abc", "--connect-timeout");
	usage_error("measure --serial abc --sim", "--serial");
	usage_error("list --sim --devices 0", "--devices");
	usage_error("list --sim --devices x", "--devices");
	usage_error("list --devices 2", "need --sim");
	usage_error("list --sim=/nonexistent/layout.json", "/nonexistent/layout.json");
	usage_error("firmware load /nonexistent/fw.bin --sim", "/nonexistent/fw.bin");
	usage_error("firmware", "missing subcommand");
	usage_error("firmware frob", "unknown subcommand");
	usage_error("calibration", "missing subcommand");
	usage_error("calibration frob x", "unknown subcommand");
	usage_error("calibration restore /nonexistent/cal.txt --sim", "/nonexistent/cal.txt");
	usage_error("calibration backup --sim", "missing");
}

/* ---- every command against --sim ----------------------------------------- */

static void test_look(void)
{
	expect_ok("list --sim", "SERIAL", "1000     sim0           7   no   yes  5.0",
	          "IDLE      IDLE      IDLE      IDLE", (char *)NULL);
	ok(count_lines(res.out) == 2, "list: a header and one unit");
	expect_ok("list --sim --devices 3", "1000     sim0", "1001     sim1", "1002     sim2",
	          (char *)NULL);
	ok(count_lines(res.out) == 4, "list --devices 3: three units");

	expect_ok("info --sim", "Serial           1000", "Port             sim0",
	          "Firmware         7", "VCC              5.0", "SINE_FREQ        39.0625 Hz",
	          "SETTINGS         0x0000 (none)", "SINE_OFFSET      0.1250 A",
	          "SINE_MAGDIV      0.5000 App", "LOCK             0 (unlocked)",
	          "ZERO_AMP_THRESH  0.2500 A", "PSU              yes", (char *)NULL);
	expect_ok("info --sim --devices 3 --serial 1002", "Serial           1002", "sim2",
	          (char *)NULL);
	expect_ok("info --sim --devices 3 --port sim1", "Serial           1001", (char *)NULL);

	expect_ok("measure --sim", "VCC: 5.0", "CELL0: 3.", "CELL3: 3.", "0.0000 A, 2",
	          " degC, ", " degF, 0.000 C, 0.000000 Ah, IDLE", (char *)NULL);
	ok(count_lines(res.out) == 5, "measure: VCC and four cells");
	expect_ok("measure 2 --sim", "CELL2:", (char *)NULL);
	ok(count_lines(res.out) == 2 && !has(res.out, "CELL1"), "measure 2: VCC and that cell");
	{
		char first[OUT_MAX];
		run("measure --sim --seed 5");
		snprintf(first, sizeof first, "%s", res.out);
		run("measure --sim --seed 5");
		ok(strcmp(first, res.out) == 0, "the same seed gives the same measurement");
	}

	expect_ok("setpoints 1 --sim",
	          "CELL1: setpoint 2.0000 A; voltage limits 4.2001 V charge, 2.8000 V discharge; "
	          "current limits 4.0000 A charge, 4.0000 A discharge; temperature limits "
	          "45.0 degC (113.0 degF) charge, 65.0 degC (149.0 degF) discharge",
	          (char *)NULL);
	ok(count_lines(res.out) == 1, "setpoints 1: one line");
	expect_ok("setpoints --sim", "CELL0:", "CELL3:", (char *)NULL);
}

static void test_registers(void)
{
	expect_ok("read UNIT FIRMWARE_VER --sim", "UNIT FIRMWARE_VER = 7\n", (char *)NULL);
	ok(strcmp(res.out, "UNIT FIRMWARE_VER = 7\n") == 0, "read prints one line");
	expect_ok("read 4 2 --sim", "UNIT FIRMWARE_VER = 7\n", (char *)NULL);
	expect_ok("read cell2 voltage --sim", "CELL2 VOLTAGE = ", " V)\n", (char *)NULL);
	expect_ok("read CELL0 MODE --sim", "CELL0 MODE = 2 (IDLE)", (char *)NULL);
	expect_ok("read cell1 temp_limit_chg --sim", "(45.0", "degC, 113.0", (char *)NULL);
	expect_ok("read unit sine_freq --sim", "UNIT SINE_FREQ = 1 (39.0625 Hz)", (char *)NULL);
	expect_ok("read comms psu --sim", "COMMS PSU = 1 (yes)", (char *)NULL);
	expect_ok("read 0xff 4 --sim", "COMMS PSU = 1", (char *)NULL);
	device_error("read cell0 0x1f --sim", "257");
	device_error("read bootloader bl_addr --sim", "257");

	expect_ok("write CELL0 VOLTAGE_LIMIT_CHG 4.1V --sim",
	          "wrote CELL0 VOLTAGE_LIMIT_CHG = 29855 (4.1000 V)", (char *)NULL);
	expect_ok("write cell0 voltage_limit_chg 29855 --sim", "= 29855 (4.1000 V)", (char *)NULL);
	expect_ok("write cell0 temp_limit_chg 40C --sim", "(40.00 degC, 104.00 degF)", (char *)NULL);
	expect_ok("write cell0 temp_limit_chg 104F --sim", "(40.00 degC", (char *)NULL);
	expect_ok("write cell3 mode stopped --sim", "CELL3 MODE = 6 (STOPPED)", (char *)NULL);
	expect_ok("write cell3 mode MODE_IDLE --sim", "CELL3 MODE = 2 (IDLE)", (char *)NULL);
	expect_ok("write cell0 mode charge --sim", "CELL0 MODE = 3 (CHARGE)", "watchdog",
	          (char *)NULL);
	expect_ok("write unit sine_freq 78.125Hz --sim", "UNIT SINE_FREQ = 2 (78.1250 Hz)",
	          (char *)NULL);
	expect_ok("write unit sine_freq 0x3 --sim", "UNIT SINE_FREQ = 3", (char *)NULL);
	expect_ok("write cell0 report_interval 1s --sim", "= 9 (every 1.0 s)", (char *)NULL);
	expect_ok("write cell0 current_calib_off -5 --sim", "= 65531 (-5)", "EEPROM", (char *)NULL);
	expect_ok("write cell0 voltage --sim 100", "overwrites VOLTAGE", (char *)NULL);

	ok(run("write cell1 CURRENT_SETPOINT 700 --sim") == 0 &&
	   has(res.out, "wrote CELL1 CURRENT_SETPOINT = 575 (4.4922 A)") &&
	   count_lines(res.err) == 1 && has(res.err, "warning") && has(res.err, "clamped to 575"),
	   "CURRENT_SETPOINT is clamped to 575 with a warning");
	ok(run("write cell1 current_setpoint 5A --sim") == 0 && has(res.out, "= 575"),
	   "and in amps too");
	ok(run("write unit settings 0x7 --sim") == 0 && has(res.out, "= 4 (0x0004: WATCHDOG_TIMER)") &&
	   has(res.err, "TRIM_OUTPUT"), "SETTINGS loses TRIM_OUTPUT and VCC_COMPENSATION");
	device_error("write UNIT FIRMWARE_VER 9 --sim", "refused the write (257)");
	device_error("write unit vcc 1 --sim", "257");

	expect_ok("lowcurrent 0.05 --sim", "UNIT ZERO_AMP_THRESH = 400 (0.0500 A)", "EEPROM",
	          (char *)NULL);
	expect_ok("lowcurrent 0.1A --sim", "= 800 (0.1000 A)", (char *)NULL);
}

static double field_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtod(p + strlen(key), NULL) : -1.0;
}

static const char empty_slots_layout[] =
	"{\"devices\": [{\"serial\": 1000, \"cells\": [null, {\"profile\": \"nmc18650\", \"soc\": 0.5},"
	" {\"empty\": true}, {\"profile\": \"nmc18650\", \"soc\": 0.5}]}]}\n";

static void test_channels(void)
{
	const char *layout = tmp_path("layout.json");
	double ohms, ah;

	write_file(layout, empty_slots_layout, strlen(empty_slots_layout));

	expect_ok("impedance 0 --sim", "CELL0: 0.0", " ohm (", "mohm)", (char *)NULL);
	ohms = field_after(res.out, "CELL0: ");
	ok(ohms > 0.01 && ohms < 0.2, "impedance of an 18650: %.4f ohm", ohms);

	expect_ok("charge 0 1.0 --sim", "CELL0: charging at 1.0000 A", "25 s after batlab exits",
	          (char *)NULL);
	expect_ok("charge 0 1.0 --for 60 --sim", "CELL0: charging at 1.0000 A",
	          "CELL0: charged 60.0 s: ", (char *)NULL);
	ah = field_after(res.out, "at the end, ");
	ok(ah > 0.015 && ah < 0.018, "60 s at 1 A moved %.6f Ah", ah);
	ok(!has(res.out, "note:"), "--for needs no watchdog note");
	expect_ok("discharge all 2 --for 30 --sim", "CELL0: discharging at 2.0000 A",
	          "CELL3: discharging at 2.0000 A", "CELL3: discharged 30.0 s", (char *)NULL);
	expect_ok("discharge 1 2 --for 7200 --sim", "the device stopped it: VOLTAGE_LIMIT_DCHG",
	          (char *)NULL);
	ok(field_after(res.out, "discharged ") < 7200, "a discharge ends early at the limit");
	expect_ok("discharge 2 --sim", "CELL2: discharging at 2.0000 A", (char *)NULL);
	ok(run("charge 0 5 --sim") == 0 && has(res.out, "charging at 4.4922 A") &&
	   count_lines(res.err) == 1 && has(res.err, "clamped"), "charge: 5 A is clamped to 4.49 A");

	ok(run("charge all 1 --sim=%s", layout) == 0 && has(res.out, "CELL0: skipped (NO_CELL)") &&
	   has(res.out, "CELL1: charging") && has(res.out, "CELL2: skipped") &&
	   has(res.out, "CELL3: charging"), "charge all skips empty slots");
	ok(run("charge 0 1 --sim=%s", layout) == 1 && count_lines(res.err) == 1 &&
	   has(res.err, "no cell"), "charge of an empty slot: exit 1");
	ok(run("impedance 2 --sim=%s", layout) == 1 && has(res.err, "no cell"),
	   "impedance of an empty slot: exit 1");
	ok(run("sinewave 0 --sim=%s", layout) == 1 && has(res.err, "no cell"),
	   "sinewave on an empty slot: exit 1");

	expect_ok("sinewave 2 78.125 --sim", "CELL2: sine at 78.1250 Hz (MODE IMPEDANCE)", "watchdog",
	          (char *)NULL);
	expect_ok("sinewave 1 --sim", "CELL1: sine at 39.0625 Hz", (char *)NULL);

	expect_ok("stop --sim", "CELL0: STOPPED\nCELL1: STOPPED\nCELL2: STOPPED\nCELL3: STOPPED\n",
	          (char *)NULL);
	expect_ok("stop 1 --sim", "CELL1: STOPPED", (char *)NULL);
	ok(count_lines(res.out) == 1, "stop 1 stops one channel");
	expect_ok("stop --sim --devices 2", "Batlab 1000 CELL3: STOPPED", "Batlab 1001 CELL0: STOPPED",
	          (char *)NULL);
	expect_ok("stop --sim --devices 2 --serial 1001", "CELL0: STOPPED", (char *)NULL);
	ok(count_lines(res.out) == 4 && !has(res.out, "1000"), "stop --serial stops that unit only");
	expect_ok("reset --sim", "CELL0: IDLE\nCELL1: IDLE\nCELL2: IDLE\nCELL3: IDLE\n", (char *)NULL);
	expect_ok("reset 3 --sim", "CELL3: IDLE", (char *)NULL);
	ok(run("reset 0 --sim=%s", layout) == 0 && has(res.out, "CELL0: NO_CELL"),
	   "reset of an empty slot shows NO_CELL");
}

static void test_files(void)
{
	static uint8_t image[BL_FLASH_IMAGE_SIZE];
	const char *fw = tmp_path("fw.bin"), *bad = tmp_path("bad.bin"), *cal = tmp_path("cal.txt");
	char text[4096];
	FILE *f;
	size_t n;

	bl_sim_firmware_image(image, 42);
	write_file(fw, image, sizeof image);
	image[100] ^= 1;
	write_file(bad, image, sizeof image);

	ok(run("firmware load %s --sim", fw) == 0 && has(res.out, "flashing: 10 %") &&
	   has(res.out, "flashing: 100 % (15360/15360 bytes)") &&
	   has(res.out, "firmware version 7 (was 7)"), "firmware load: progress per 10 %%, new version");
	ok(count_lines(res.out) == 12, "one line per 10 %% when not a terminal");
	ok(run("firmware load %s --sim", bad) == 2 && count_lines(res.err) == 1 &&
	   has(res.err, "checksum") && res.out[0] == '\0', "a bad image is refused before flashing");

	remove(cal);
	ok(run("calibration backup %s --sim", cal) == 0 && has(res.out, "49 values"),
	   "calibration backup");
	f = fopen(cal, "r");
	n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = '\0';
	ok(count_lines(text) == 49 && strncmp(text, "1000\n", 5) == 0, "49 lines, the serial first");
	ok(run("calibration backup %s --sim", cal) == 2 && has(res.err, "--force") &&
	   count_lines(res.err) == 1, "an existing backup is kept");
	ok(run("calibration backup %s --force --sim", cal) == 0, "unless --force");
	ok(run("calibration restore %s --sim", cal) == 0 && has(res.out, "restored") &&
	   !has(res.out, "serial number changed"), "calibration restore");
	memcpy(text, "1234", 4);
	write_file(cal, text, strlen(text));
	ok(run("calibration restore %s --sim", cal) == 0 &&
	   has(res.out, "serial number changed: 1000 -> 1234"), "restore with another serial");
	{
		char *third = strchr(strchr(text, '\n') + 1, '\n') + 1;
		memcpy(third, "x", 1);
		write_file(cal, text, strlen(text));
	}
	usage_error("calibration restore --sim /nonexistent/x", "No such file");
	ok(run("calibration restore %s --sim", cal) == 2 && count_lines(res.err) == 1 &&
	   has(res.err, ":3:"), "a bad value is reported with file:line");
	write_file(cal, "1000\n1\n", 7);
	ok(run("calibration restore %s --sim", cal) == 2 && count_lines(res.err) == 1,
	   "a short file is refused");
}

static void test_device_errors(void)
{
	char **paths = NULL;
	int n = bl_link_list_batlabs(&paths);

	if (n > 0)
		bl_link_list_free(paths, n);
	if (n == 0) {
		device_error("list", "no Batlab found (is it plugged in? see README: serial-port permissions)");
		device_error("measure", "no Batlab found");
	} else {
		ok(1, "# skip a real Batlab is plugged in");
		ok(1, "# skip a real Batlab is plugged in");
	}
	usage_error("read --port /nonexistent/ttyACM7 UNIT VCC", "/nonexistent/ttyACM7: no such port");
	device_error("read --port /dev/null UNIT VCC", "/dev/null: not a serial port");
	device_error("info --sim --devices 3 --serial 5", "no Batlab with serial 5");
	device_error("info --sim --port sim4", "sim4");
}

/* ---- over a pseudo-terminal ------------------------------------------------ */

static bool read_line(struct cu_child *c, struct cu_result *r, char *line, size_t n)
{
	char *nl;

	while (!(nl = strchr(r->out, '\n')))
		if (!cu_pump(c, r, 10000))
			return false;
	snprintf(line, n, "%.*s", (int)(nl - r->out), r->out);
	return true;
}

static void test_interrupt(const char *pty)
{
	struct cu_child c;
	struct cu_result *r = calloc(1, sizeof *r);
	char *args[] = {"charge", "0", "1", "--for", "600", "--port", (char *)pty, NULL};
	char line[256];

	if (!r || cu_spawn(&c, args) < 0)
		cu_bail("spawn");
	ok(read_line(&c, r, line, sizeof line) && has(line, "CELL0: charging"), "charging for 600 s");
	kill(c.pid, SIGINT);
	ok(cu_finish(&c, r) == 130, "SIGINT: exit 130");
	ok(has(r->err, "interrupted") && count_lines(r->err) == 1, "one line says so");
	free(r);
	run("read cell0 mode --port %s", pty);
	ok(has(res.out, "CELL0 MODE = 2 (IDLE)"), "the channel was put safe (IDLE)");
	run("read unit settings --port %s", pty);
	ok(has(res.out, "(0x0000: none)"), "and the watchdog released");
}

static void test_pty(void)
{
	struct cu_child srv;
	struct cu_result *sr = calloc(1, sizeof *sr);
	char *args[] = {"sim", "--pty", NULL};
	char pty[256];
	int fd;

	if (!sr || cu_spawn(&srv, args) < 0)
		cu_bail("cannot start batlab sim --pty");
	if (!ok(read_line(&srv, sr, pty, sizeof pty) && strncmp(pty, "/dev/", 5) == 0,
	        "sim --pty prints its path (%s)", pty)) {
		kill(srv.pid, SIGKILL);
		cu_finish(&srv, sr);
		free(sr);
		return;
	}

	/* The server's unit has just powered up: its first measurement pass
	 * (0.6 s) detects the cells. Wait for it, so that what follows does
	 * not depend on how fast this machine runs the commands. */
	{
		int tries = 0;
		while (tries++ < 500 && !(run("read cell0 mode --port %s", pty) == 0 &&
		                          has(res.out, "(IDLE)")))
			;
		ok(has(res.out, "(IDLE)"), "the virtual unit detected its cells");
	}
	ok(run("read --port %s UNIT FIRMWARE_VER", pty) == 0 &&
	   strcmp(res.out, "UNIT FIRMWARE_VER = 7\n") == 0, "read over the pty");
	ok(run("write --port %s cell0 voltage_limit_chg 4.1V", pty) == 0 &&
	   has(res.out, "= 29855 (4.1000 V)"), "write over the pty");
	ok(run("read --port %s cell0 voltage_limit_chg", pty) == 0 &&
	   has(res.out, "CELL0 VOLTAGE_LIMIT_CHG = 29855 (4.1000 V)"), "the write stuck");
	ok(run("measure --port %s", pty) == 0 && count_lines(res.out) == 5 &&
	   has(res.out, "CELL3: "), "measure over the pty");
	ok(run("list --port %s", pty) == 0 && has(res.out, pty) && has(res.out, "1000 "),
	   "list over the pty");
	ok(run("info --port %s", pty) == 0 && has(res.out, "Serial           1000"), "info over the pty");
	ok(run("setpoints 0 --port %s", pty) == 0 && has(res.out, "4.1000 V charge"),
	   "setpoints over the pty");
	run("read unit settings --port %s", pty);
	ok(has(res.out, "(0x0000: none)"), "looking leaves the watchdog off");

	ok(run("charge 0 1 --port %s", pty) == 0 && has(res.out, "charging"), "charge over the pty");
	run("read unit settings --port %s", pty);
	ok(has(res.out, "WATCHDOG_TIMER"), "a running channel keeps the watchdog on");
	ok(run("measure 0 --port %s", pty) == 0 && has(res.out, "CHARGE"), "and it is charging");
	ok(run("stop 0 --port %s", pty) == 0 && has(res.out, "CELL0: STOPPED"), "stop over the pty");
	ok(run("reset --port %s", pty) == 0 && has(res.out, "CELL0: IDLE"), "reset over the pty");
	run("read unit settings --port %s", pty);
	ok(has(res.out, "(0x0000: none)"), "reset with nothing running turns the watchdog off");
	ok(run("charge 0 1 --for 0.5 --port %s", pty) == 0 && has(res.out, "charged 0."),
	   "charge --for in real time");
	run("read cell0 mode --port %s", pty);
	ok(has(res.out, "(IDLE)"), "--for ends with the channel IDLE");

	test_interrupt(pty);

	/* Another program holds the port. */
	fd = open(pty, O_RDWR | O_NOCTTY);
	ok(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "the test holds the port");
	{
		char cmd[512];
		snprintf(cmd, sizeof cmd, "read --port %s UNIT VCC", pty);
		device_error(cmd, "in use by another program");
		ok(has(res.err, pty), "the error names the port");
	}
	ok(run("list --port %s", pty) == 0 && has(res.out, "(in use by another program)"),
	   "list shows a busy port");
	if (fd >= 0)
		close(fd);

	kill(srv.pid, SIGTERM);
	ok(cu_finish(&srv, sr) == 0, "sim --pty exits 0 on SIGTERM");
	free(sr);
}

int main(void)
{
	char tmpl[] = "/tmp/batlab-cli-XXXXXX";

	plan_lazy();
	if (!cu_find_binary())
		cu_bail("no batlab binary (set BATLAB)");
	if (!mkdtemp(tmpl))
		cu_bail("mkdtemp");
	snprintf(cu_tmp, sizeof cu_tmp, "%s", tmpl);

	test_help();
	test_bad_arguments();
	test_look();
	test_registers();
	test_channels();
	test_files();
	test_device_errors();
	test_pty();

	remove(tmp_path("layout.json"));
	remove(tmp_path("fw.bin"));
	remove(tmp_path("bad.bin"));
	remove(tmp_path("cal.txt"));
	rmdir(cu_tmp);
	return done_testing();
}
