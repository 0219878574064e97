/* lua_devobj.h - what the Device, Channel and Recorder bindings share
 * (lua_device.c, lua_channel.c, lua_record.c, lua_await.c): the Device
 * object's C side and the way a Lua call waits for a device or channel
 * operation. Internal to src/lua.
 *
 * A call starts an operation and waits for it through the scheduler: it
 * yields inside a task and runs the loop outside one. The operation's
 * callback reaches the wait through a small heap "holder"; when a wait is
 * abandoned (task cancelled, failed, interrupted) the holder is cut loose
 * and the operation runs to its end on its own (operations always finish
 * their mandatory steps, like the LOCK release), then the holder is freed -
 * and if the operation drove a channel, that channel is made safe once
 * more, because the operation may have changed its mode after the failure
 * path made it safe.
 */
#ifndef BL_LUA_DEVOBJ_H
#define BL_LUA_DEVOBJ_H

#include <stdbool.h>
#include <stdint.h>

#include <lua.h>

#include "device/calib.h"
#include "device/channel.h"
#include "device/device.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

/* The Lua side of one channel: the tasks waiting for its next sample. */
struct lchan {
	struct bl_lua_device *ld;
	int cell;
	struct bl_channel *c;              /* NULL once detached */
	struct bl_chan_listener listener;  /* while tasks wait */
	struct bl_wait_list waiters;       /* want the next report */
	struct bl_wait_list batch;         /* served by the tick in flight */
	uint64_t bound_task;               /* id of the task last bound (cache) */
};

struct bl_lua_device {
	struct bl_device *d;               /* NULL once detached */
	struct bl_chanset *cs;
	struct bl_session *session;
	struct bl_sched *sched;
	char port[64];
	uint32_t serial;
	uint16_t firmware;
	struct lchan ch[BL_CELLS];
};

/* The userdata of a batlab.Channel. */
struct lchannel {
	struct bl_lua_device *ld;
	int cell;
};

/* ---- waiting for operations (lua_await.c) ---------------------------------- */

struct holder {
	struct bl_wait *w;                 /* NULL once abandoned */
	struct bl_sched *s;
	struct bl_channel *resafe;         /* safe again if it ends abandoned */
	int progress_ref;
	bool want_cal;
	struct bl_calibration cal;
};

struct holder *bl_holder_new(struct bl_wait *w, struct bl_channel *resafe);
void bl_holder_free(struct holder *h);
/* Completion callbacks for device operations / channel operations started
 * with the holder as their user data. A channel operation's failure text
 * goes to the wait's payload (bl_holder_what). */
void bl_holder_op_done(struct bl_device *d, struct bl_op *op, int status, void *ud);
void bl_holder_chan_done(struct bl_channel *ch, int status, double number, const char *what,
                         void *ud);
const char *bl_holder_what(const struct bl_wait *w);
/* Wait for a device operation started with bl_holder_op_done and h. */
int bl_await_op(lua_State *L, struct bl_wait *w, struct holder *h, struct bl_op *op,
                lua_KFunction k);
/* Wait for a channel operation whose start returned `started`. */
int bl_await_chan(lua_State *L, struct bl_wait *w, struct holder *h, int started,
                  lua_KFunction k);

#define NEW_HOLDER(h, w, resafe)                                          \
	do {                                                              \
		(h) = bl_holder_new((w), (resafe));                       \
		if (!(h))                                                 \
			return luaL_error(L, "out of memory");            \
	} while (0)

/* ---- checks and failures ---------------------------------------------------- */

struct bl_lua_device *bl_lua_check_device(lua_State *L, int idx);
int bl_lua_check_cell(lua_State *L, int arg);
double bl_lua_check_amps(lua_State *L, int arg, bool zero_ok);
int bl_lua_fail_detached(lua_State *L, const struct bl_lua_device *ld);
/* The continuation after a flash (dev:firmware_bootload, dev:firmware_update):
 * the device connected again (continuing at k), its firmware version noted.
 * -1 once that is done (the caller pushes its results); otherwise what the
 * continuation returns (a failure named flashing / reconnecting). */
int bl_lua_after_flash(lua_State *L, lua_KContext ctx, const char *flashing, const char *reconnecting,
                       lua_KFunction k);
int bl_lua_fail_chan(lua_State *L, int status, const struct lchan *c, const char *what);
/* Put w on c's waiters for its next report (w->obj = c), listening to
 * the channel while anyone waits. */
void bl_lua_chan_wait(struct lchan *c, struct bl_wait *w);
/* What a channel wait w that completed returns: the sample, or nil,
 * "timeout" / the failure. */
int bl_lua_chan_report(lua_State *L, struct bl_wait *w);
/* ch:watch (lua_watch.c): a wait whose arg[1] is BL_LUA_WATCH lets the
 * reports bl_lua_watch_quiet calls quiet pass without completing. */
#define BL_LUA_WATCH 0x57
int bl_lua_channel_watch(lua_State *L);
bool bl_lua_watch_quiet(struct bl_wait *w, const struct bl_sample *s);
/* batlab.trail (lua_watch_trail.c): a step's recent (time, voltage) pairs,
 * a window of seconds (dV/dt) or the last `keep` of them. */
struct bl_trail {
	double window;               /* seconds; < 0: keep the last `keep` */
	size_t keep;
	double *t, *v;               /* a ring of cap pairs, n of them from head */
	size_t cap, head, n;
};
struct bl_trail *bl_trail_check(lua_State *L, int idx);
struct bl_trail *bl_trail_test(lua_State *L, int idx);
/* The slope a push of (t, v) would give (false: the window not yet
 * spanned, or a keep trail), without pushing. */
bool bl_trail_slope_if(const struct bl_trail *tr, double t, double v, double *slope);
bool bl_trail_push(struct bl_trail *tr, double t, double v);   /* false: out of memory */
bool bl_trail_room(struct bl_trail *tr);   /* room for one more push (false: out of memory) */
void bl_lua_open_trail(lua_State *L);
/* batlab.series (lua_watch_series.c): chosen numbers of every report. */
#define BL_SERIES_FIELDS 8
struct bl_series {
	int nf;
	unsigned char field[BL_SERIES_FIELDS];
	double *data;                /* n rows of nf, room for cap */
	size_t n, cap;
};
struct bl_series *bl_series_test(lua_State *L, int idx);
bool bl_series_room(struct bl_series *sr);   /* room for one more row */
bool bl_series_add(struct bl_series *sr, const struct bl_sample *s);
void bl_lua_open_series(lua_State *L);
/* Bind the channel at idx to the task w belongs to (once per task). */
void bl_lua_bind_task(lua_State *L, struct bl_wait *w, struct lchan *c, int idx);
/* Push the Channel for `cell` of the Device at dev_idx (one per channel). */
void bl_lua_push_channel(lua_State *L, int dev_idx, int cell);
void bl_lua_open_channel(lua_State *L);
/* The channel layer's channel of the batlab.Channel at idx (raises if it
 * is not one; NULL once its device is detached). */
struct bl_channel *bl_lua_check_chan(lua_State *L, int idx);
void bl_lua_open_recorder(lua_State *L);
void bl_lua_open_firmware(lua_State *L);   /* lua_firmware.c: adds to the Device methods */

#endif
