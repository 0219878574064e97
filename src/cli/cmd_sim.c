/* cli/cmd_sim.c - `batlab sim`: serve virtual Batlabs on pseudo-terminals
 * for other programs, or print the effective layout. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/cli.h"
#include "core/bl.h"
#include "core/loop.h"
#include "sim/layout.h"
#include "sim/ptyserve.h"

static void sim_usage(FILE *out)
{
	fprintf(out,
	        "usage: batlab sim --pty [--devices N] [--layout FILE] [--seed S] [--speed X]\n"
	        "       batlab sim --describe [--devices N] [--layout FILE] [--seed S]\n"
	        "\n"
	        "Serve virtual Batlabs on pseudo-terminals: one pty per device, whose path\n"
	        "is printed on standard output, one per line. Any program can open a path\n"
	        "at 38400 8N1 raw and talk the Batlab protocol. Serves until SIGINT or\n"
	        "SIGTERM, then exits 0.\n"
	        "\n"
	        "  --pty            serve the devices on pseudo-terminals\n"
	        "  --describe       print the effective layout as JSON and exit\n"
	        "  --devices N      N default devices (1..%d; default 1)\n"
	        "  --layout FILE    devices, cells and faults from a JSON layout\n"
	        "                   (instead of --devices)\n"
	        "  --seed S         measurement-noise seed (default 0)\n"
	        "  --speed X        run the model X times faster than real time\n"
	        "                   (default 1)\n"
	        "  -h, --help       this text\n",
	        BL_SIM_MAX_DEVICES);
}

struct sim_opts {
	bool pty, describe;
	int devices;            /* 0: not given */
	const char *layout;
	uint64_t seed;
	double speed;
};


/* Returns 0 to go on, 1 to exit 0 (help), -1 on a usage error. */
static int parse(int argc, char **argv, struct sim_opts *o)
{
	memset(o, 0, sizeof *o);
	o->speed = 1.0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		char *end;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			sim_usage(stdout);
			return 1;
		} else if (strcmp(a, "--pty") == 0) {
			o->pty = true;
		} else if (strcmp(a, "--describe") == 0) {
			o->describe = true;
		} else if (cli_opt_match(a, "--devices", true)) {
			long n;
			if (!(v = cli_opt_value("sim", argc, argv, &i, "--devices")))
				return -1;
			errno = 0;
			n = strtol(v, &end, 10);
			if (errno || end == v || *end || n < 1 || n > BL_SIM_MAX_DEVICES) {
				cli_error("sim: --devices must be 1..%d, not '%s'", BL_SIM_MAX_DEVICES, v);
				return -1;
			}
			o->devices = (int)n;
		} else if (cli_opt_match(a, "--layout", true)) {
			if (!(v = cli_opt_value("sim", argc, argv, &i, "--layout")))
				return -1;
			o->layout = v;
		} else if (cli_opt_match(a, "--seed", true)) {
			if (!(v = cli_opt_value("sim", argc, argv, &i, "--seed")))
				return -1;
			errno = 0;
			o->seed = strtoull(v, &end, 0);
			if (errno || end == v || *end || *v == '-') {
				cli_error("sim: --seed must be a non-negative integer, not '%s'", v);
				return -1;
			}
		} else if (cli_opt_match(a, "--speed", true)) {
			if (!(v = cli_opt_value("sim", argc, argv, &i, "--speed")))
				return -1;
			errno = 0;
			o->speed = strtod(v, &end);
			if (errno || end == v || *end || !(o->speed > 0) || !isfinite(o->speed)) {
				cli_error("sim: --speed must be a number > 0, not '%s'", v);
				return -1;
			}
		} else {
			cli_error("sim: unknown option '%s' (try 'batlab sim --help')", a);
			return -1;
		}
	}
	if (o->pty == o->describe) {
		cli_error("sim: give one of --pty or --describe (try 'batlab sim --help')");
		return -1;
	}
	if (o->layout && o->devices) {
		cli_error("sim: --devices and --layout exclude each other (the layout lists the devices)");
		return -1;
	}
	return 0;
}

static int load_layout(const struct sim_opts *o, struct bl_sim_layout *l)
{
	char err[512] = "";
	int r;

	if (o->layout) {
		r = bl_sim_layout_load(o->layout, o->seed, l, err, sizeof err);
		if (r < 0) {
			cli_error("sim: %s", err[0] ? err : bl_strerror(r));
			return -1;
		}
		return 0;
	}
	r = bl_sim_layout_default(l, o->devices ? o->devices : 1, o->seed);
	if (r < 0) {
		cli_error("sim: default layout: %s", bl_strerror(r));
		return -1;
	}
	return 0;
}

static int describe(const struct bl_sim_layout *l)
{
	char *json = bl_sim_layout_describe(l);

	if (!json) {
		cli_error("sim: cannot describe the layout");
		return BL_EXIT_USAGE;
	}
	fputs(json, stdout);
	if (json[0] && json[strlen(json) - 1] != '\n')
		fputc('\n', stdout);
	free(json);
	return fflush(stdout) == 0 ? BL_EXIT_OK : BL_EXIT_USAGE;
}

static int serve(const struct sim_opts *o, const struct bl_sim_layout *l)
{
	struct bl_loop *loop = bl_loop_new(NULL);
	struct bl_ptyserve *srv = NULL;
	char err[512] = "";
	int r, code = BL_EXIT_OK;

	if (!loop) {
		cli_error("sim: cannot create the event loop");
		return BL_EXIT_USAGE;
	}
#ifdef PR_SET_TIMERSLACK
	/* Device replies are due a few microseconds apart at high --speed; the
	 * default 50 us timer slack would dominate the modelled timing. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
	r = bl_ptyserve_new(loop, l, o->speed, &srv, err, sizeof err);
	if (r < 0) {
		cli_error("sim: %s", err);
		bl_loop_free(loop);
		return BL_EXIT_USAGE;
	}
	/* Handlers before the paths go out: a client may signal us as soon as
	 * it has read them. */
	if (bl_loop_catch_signals(loop) < 0) {
		cli_error("sim: cannot install signal handlers");
		code = BL_EXIT_USAGE;
		goto out;
	}
	for (int i = 0; i < bl_ptyserve_count(srv); i++)
		printf("%s\n", bl_ptyserve_path(srv, i));
	if (fflush(stdout) != 0) {
		cli_error("sim: cannot write to standard output");
		code = BL_EXIT_USAGE;
		goto out;
	}
	r = bl_loop_run(loop);
	if (r < 0) {
		cli_error("sim: event loop: %s", bl_strerror(r));
		code = BL_EXIT_DEVICE;
	}
	if (bl_loop_caught_signal(loop))
		bl_log(BL_LOG_INFO, "sim", "signal %d: stopping", bl_loop_caught_signal(loop));
out:
	bl_loop_release_signals();
	bl_ptyserve_free(srv);
	bl_loop_free(loop);
	return code;
}

int cmd_sim(int argc, char **argv)
{
	struct sim_opts o;
	struct bl_sim_layout layout;
	int r;

	r = parse(argc, argv, &o);
	if (r != 0)
		return r > 0 ? BL_EXIT_OK : BL_EXIT_USAGE;
	if (load_layout(&o, &layout) < 0)
		return BL_EXIT_USAGE;
	r = o.describe ? describe(&layout) : serve(&o, &layout);
	bl_sim_layout_free(&layout);
	return r;
}
