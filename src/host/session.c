/* session.c - clock + loop + pool, opened from one set of options. See
 * session.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/session.h"
#include "link/link.h"
#include "core/regs.h"
#include "sim/layout.h"
#include "sim/simdev.h"

#define MOD "session"
#define SIM_WARMUP_US 3000000u /* see open_sims */
#define DEFAULT_SETTLE_US 5000000u
/* Virtual devices connect in a few hundred virtual ms; the margin costs
 * nothing in virtual time. */
#define SIM_SETTLE_US 30000000u

struct sim_entry {
	char name[32];
	struct bl_simdev *sim;      /* owned by the pool (its link) */
};

struct bl_session {
	struct bl_vclock vc;
	const struct bl_clock *clock;
	struct bl_loop *loop;
	struct bl_pool *pool;
	bool sim;
	struct sim_entry *sims;
	int nsims;
	bool caught_signals;
	FILE *trace;                /* $BATLAB_TRACE */
	bl_session_port_fn port_fn;
	void *port_ud;
	bl_session_event_fn fn;
	void *ud;
};

/* What an unplugged virtual Batlab does once no host can reach it: the
 * model goes on for LEFT_ALONE_US (beyond the 25.5 s watchdog), and the
 * trace says what each channel is then. The host's last writes cannot
 * tell (its link is gone); the device's own watchdog is what stops it. */
#define LEFT_ALONE_US 30000000u

static void left_alone(struct bl_session *s, struct bl_simdev *sim, const char *port)
{
	if (!s->trace || !bl_simdev_unplugged(sim))
		return;
	bl_simdev_advance(sim, bl_loop_now(s->loop) + LEFT_ALONE_US);
	fprintf(s->trace, "%s: unplugged, left alone for %u s:", port, LEFT_ALONE_US / 1000000u);
	for (int c = 0; c < BL_CELLS; c++)
		fprintf(s->trace, " CELL%d MODE %u %.3f A%s", c, bl_simdev_reg(sim, (uint8_t)c, BL_CELL_MODE),
		        bl_simdev_cell_current(sim, c), c + 1 < BL_CELLS ? "," : "\n");
	fflush(s->trace);
}

static void forget_sim(struct bl_session *s, const char *port)
{
	for (int i = 0; i < s->nsims; i++)
		if (s->sims[i].sim && strcmp(s->sims[i].name, port) == 0) {
			left_alone(s, s->sims[i].sim, port);
			s->sims[i].sim = NULL;
		}
}

static void on_pool(struct bl_pool *p, enum bl_pool_event ev, struct bl_device *d,
                    const char *port, void *ud)
{
	struct bl_session *s = ud;

	(void)p;
	/* The pool frees a device (and so its virtual Batlab) after these. */
	if (ev == BL_POOL_UNPLUG || ev == BL_POOL_FAILED)
		forget_sim(s, port);
	if (ev == BL_POOL_FAILED && s->port_fn)
		s->port_fn(port, NULL, BL_ERR_TIMEOUT, s->port_ud);
	if (s->fn)
		s->fn(s, ev, d, s->ud);
}

static int open_sims(struct bl_session *s, const struct bl_session_opts *o, char *err,
                     size_t errlen)
{
	struct bl_sim_layout layout;
	int rc;

	if (o->layout) {
		/* A layout that does not load is a settings problem. */
		rc = bl_sim_layout_load(o->layout, o->seed, &layout, err, errlen);
		if (rc != BL_OK)
			return BL_ERR_ARG;
	} else {
		rc = bl_sim_layout_default(&layout, o->devices, o->seed);
		if (rc != BL_OK)
			snprintf(err, errlen, "devices must be 1..%d, not %d", BL_SIM_MAX_DEVICES,
			         o->devices);
	}
	if (rc != BL_OK)
		return rc;
	s->sims = calloc((size_t)layout.ndevices, sizeof *s->sims);
	if (!s->sims) {
		bl_sim_layout_free(&layout);
		snprintf(err, errlen, "out of memory");
		return BL_ERR_MEM;
	}
	/* The units are powered up a few seconds before we connect, as a real
	 * unit that sat plugged in: their cells are detected and measured
	 * (the first measurement pass takes 0.6 s). */
	for (int i = 0; i < layout.ndevices && rc == BL_OK; i++) {
		s->sims[i].sim = bl_simdev_new(&layout.devices[i], bl_loop_now(s->loop));
		if (!s->sims[i].sim)
			rc = BL_ERR_MEM;
	}
	if (rc == BL_OK)
		bl_clock_set(s->clock, bl_loop_now(s->loop) + SIM_WARMUP_US);
	/* Hand them to the pool, which owns (and on failure frees) each; the
	 * ones not handed over are freed here. */
	for (int i = 0; i < layout.ndevices; i++) {
		struct sim_entry *e = &s->sims[i];
		struct bl_simdev *sim = e->sim;

		e->sim = NULL;
		if (rc != BL_OK) {
			bl_simdev_free(sim);
			continue;
		}
		snprintf(e->name, sizeof e->name, "sim%d", i);
		rc = bl_pool_add_sim(s->pool, sim, e->name);
		if (rc == BL_OK) {
			e->sim = sim;
			s->nsims++;
		}
	}
	bl_sim_layout_free(&layout);
	if (rc != BL_OK)
		snprintf(err, errlen, "cannot start the virtual Batlabs: %s", bl_strerror(rc));
	return rc;
}

/* A port that does not open goes to the caller's callback, or without
 * one fails the open when it was named (`must`), else is only logged. */
static int add_port(struct bl_session *s, const char *path, bool must, char *err, size_t errlen)
{
	char why[256] = "";
	int rc = bl_pool_add_port(s->pool, path, why, sizeof why);

	if (rc == BL_OK)
		return BL_OK;
	if (!why[0])
		snprintf(why, sizeof why, "%s: %s", path, bl_strerror(rc));
	if (s->port_fn) {
		s->port_fn(path, why, rc, s->port_ud);
		return BL_OK;
	}
	if (!must) {
		BL_DEBUG(MOD, "%s", why);
		return BL_OK;
	}
	snprintf(err, errlen, "%s", why);
	return rc;
}

/* Real devices: the named port, or the USB ports listed once (without
 * scan_once the pool watches them instead, from its creation on). */
static int open_real(struct bl_session *s, const struct bl_session_opts *o, char *err,
                     size_t errlen)
{
	char **paths = NULL;
	int n;

	if (o->port) {
		int rc = add_port(s, o->port, true, err, errlen);

		for (int i = 0; rc == BL_OK && i < o->n_more; i++)
			rc = add_port(s, o->more_ports[i], true, err, errlen);
		return rc;
	}
	if (!o->scan_once)
		return BL_OK;
	n = bl_link_list_batlabs(&paths);
	if (n < 0) {
		snprintf(err, errlen, "cannot list the serial ports: %s", bl_strerror(n));
		return n;
	}
	for (int i = 0; i < n; i++)
		add_port(s, paths[i], false, err, errlen);
	if (n > 0)
		bl_link_list_free(paths, n);
	return BL_OK;
}

/* A pseudo-terminal is `batlab sim --pty`, whose model runs --speed times
 * faster than real time, and so does its 25.5 s device watchdog: at
 * --speed 50 it trips after 0.5 s of real time, far within the 2 s
 * refresh a real Batlab gets. Over a pty the watchdog is refreshed every
 * 2 s of the model's own time, as its SYSTEM_TIMER tells the host
 * (watchdog_by_clock): every 2 s at --speed 1, every 10 ms at --speed 200
 * and above. A fixed 10 ms would cost 64 ptys 6,400 round trips a second. */

static bool is_pty(const char *path)
{
	char *real = realpath(path, NULL);
	bool pty = strncmp(real ? real : path, "/dev/pts/", 9) == 0;

	free(real);
	return pty;
}

/* The clock, the loop on it and the empty pool. */
static struct bl_session *session_new(const struct bl_session_opts *o)
{
	struct bl_session *s = calloc(1, sizeof *s);
	struct bl_pool_opts po;

	if (!s)
		return NULL;
	s->sim = o->sim;
	s->port_fn = o->port_failed;
	s->port_ud = o->port_ud;
	if (o->sim) {
		/* Virtual time starts at 0: batlab.now() reads seconds since
		 * the session opened. */
		bl_vclock_init(&s->vc, 0);
		s->clock = &s->vc.clock;
	} else {
		s->clock = bl_clock_real();
	}
	s->loop = bl_loop_new(s->clock);
	/* a poll per virtual step tripled a virtual run with a database */
	if (o->sim && s->loop)
		bl_loop_poll_gap(s->loop, 1000);
	bl_pool_opts_default(&po);
	po.scan = !o->sim && !o->port && !o->scan_once;
	if (o->dev)
		po.dev = *o->dev;
	/* a model on a pty keeps its own clock (--speed): the host paces
	 * itself by it, whoever chose the other options */
	if (o->port && (is_pty(o->port) || (o->n_more > 0 && is_pty(o->more_ports[0]))))
		po.dev.watchdog_by_clock = true;
	/* BATLAB_TRACE=FILE: every request to every device, appended. */
	if (getenv("BATLAB_TRACE") && *getenv("BATLAB_TRACE")) {
		s->trace = fopen(getenv("BATLAB_TRACE"), "a");
		if (!s->trace)
			BL_WARN(MOD, "BATLAB_TRACE=%s: %s", getenv("BATLAB_TRACE"), strerror(errno));
		po.dev.trace = s->trace;
	}
	s->pool = s->loop ? bl_pool_new(s->loop, &po) : NULL;
	if (!s->pool) {
		bl_session_close(s);
		return NULL;
	}
	bl_pool_on_event(s->pool, on_pool, s);
	if (o->catch_signals)
		s->caught_signals = bl_loop_catch_signals(s->loop) == BL_OK;
	return s;
}

static void say_none(const struct bl_session_opts *o, char *err, size_t errlen)
{
	if (o->sim)
		snprintf(err, errlen, "no virtual Batlab connected");
	else if (o->port)
		snprintf(err, errlen, "%s: no Batlab answered", o->port);
	else
		snprintf(err, errlen, "no Batlab found (USB %04X:%04X)", BL_BATLAB_VID, BL_BATLAB_PID);
}

int bl_session_open(const struct bl_session_opts *o, struct bl_session **out,
                    char *err, size_t errlen)
{
	struct bl_session *s;
	uint64_t settle;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (o->sim && o->port) {
		snprintf(err, errlen, "a port and the simulator exclude each other");
		return BL_ERR_ARG;
	}
	s = session_new(o);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return BL_ERR_MEM;
	}
	rc = o->sim ? open_sims(s, o, err, errlen) : open_real(s, o, err, errlen);
	if (rc != BL_OK) {
		bl_session_close(s);
		return rc;
	}
	settle = o->settle_us ? o->settle_us : o->sim ? SIM_SETTLE_US : DEFAULT_SETTLE_US;
	if (bl_pool_settle(s->pool, settle) == 0 && !o->allow_empty) {
		say_none(o, err, errlen);
		bl_session_close(s);
		return BL_ERR_NOTFOUND;
	}
	if (o->has_serial) {
		struct bl_device *d = bl_pool_find_serial(s->pool, o->serial);

		if (!d) {
			snprintf(err, errlen, "no Batlab with serial number %u", o->serial);
			bl_session_close(s);
			return BL_ERR_NOTFOUND;
		}
		bl_pool_set_active(s->pool, d);
	}
	*out = s;
	return BL_OK;
}

void bl_session_close(struct bl_session *s)
{
	if (!s)
		return;
	if (s->caught_signals)
		bl_loop_release_signals();
	bl_pool_free(s->pool);
	bl_loop_free(s->loop);
	if (s->trace)
		fclose(s->trace);
	free(s->sims);
	free(s);
}

struct bl_loop *bl_session_loop(const struct bl_session *s) { return s->loop; }
struct bl_pool *bl_session_pool(const struct bl_session *s) { return s->pool; }
const struct bl_clock *bl_session_clock(const struct bl_session *s) { return s->clock; }
bool bl_session_is_sim(const struct bl_session *s) { return s->sim; }

void bl_session_on_event(struct bl_session *s, bl_session_event_fn fn, void *ud)
{
	s->fn = fn;
	s->ud = ud;
}

struct bl_simdev *bl_session_simdev(const struct bl_session *s, const struct bl_device *d)
{
	const char *port = bl_device_port(d);

	for (int i = 0; i < s->nsims; i++)
		if (s->sims[i].sim && strcmp(s->sims[i].name, port) == 0)
			return s->sims[i].sim;
	return NULL;
}

int bl_pool_add_sim(struct bl_pool *p, struct bl_simdev *sim, const char *name)
{
	struct bl_link *link;
	int rc = bl_link_open_sim(sim, true, bl_loop_clock(bl_pool_loop(p)), name, &link);

	if (rc != BL_OK) {
		bl_simdev_free(sim);
		return rc;
	}
	return bl_pool_add_link(p, link);
}
