/* lua_util.h - helpers shared by the Lua bindings (src/lua_*.c).
 *
 * Conventions every binding follows (docs/lua-api.md, "Errors"):
 * - programming errors (wrong argument types or ranges, unknown names)
 *   raise, through luaL_check* / luaL_argerror / the checkers below;
 * - runtime failures (device, I/O, timeouts, values with no meaning)
 *   return three values, luv style: nil, a message, and the stable code of
 *   bl_strcode ("ETIMEDOUT"); bl_lua_fail pushes them.
 *
 * Classes are full userdata whose metatable is registered under
 * "batlab.<Class>" (lua 5.4 sets __name, so type errors read
 * "batlab.Packet expected, got number").
 */
#ifndef BL_LUA_UTIL_H
#define BL_LUA_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#include "core/clock.h"
#include "core/proto.h"
#include "core/regs.h"

/* ---- Errors -------------------------------------------------------------- */

/* Push nil, the formatted message and bl_strcode(status); returns 3 so a
 * binding can `return bl_lua_fail(L, st, "read %s: %s", ...)`. */
int bl_lua_fail(lua_State *L, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A wait that timed out: push nil, "timeout", "ETIMEDOUT"; returns 3. */
int bl_lua_timed_out(lua_State *L);

/* ---- Classes ------------------------------------------------------------- */

/* liolib's createmeta: create the metatable `name` from `meta` (metamethods;
 * an "__index" entry set to NULL is a placeholder) and `methods`. When meta
 * has no __index function, __index becomes the methods table; when it has
 * one, that function gets the methods table as its first upvalue, so field
 * lookups can fall back to methods. Leaves the stack unchanged. */
void bl_lua_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                     const luaL_Reg *methods);

/* ---- Argument checkers ---------------------------------------------------- */

/* Parse the value at idx as a namespace / register address / 16-bit
 * value. NULL on success; otherwise the reason, also pushed on the stack,
 * for callers that word their own error (a table field, say). */
const char *bl_lua_to_ns(lua_State *L, int idx, uint8_t *ns);
const char *bl_lua_to_addr(lua_State *L, int idx, uint8_t ns, uint8_t *addr);
const char *bl_lua_to_u16(lua_State *L, int idx, uint16_t *v);

/* A namespace: a name ("CELL2", "unit", any case) or a number 0..255.
 * Raises on anything else. */
uint8_t bl_lua_check_ns(lua_State *L, int arg);
/* A register address in namespace ns: a name from the register table (any
 * case) or a number 0..127 (unknown addresses are allowed: the device
 * answers 257 for them, which is worth seeing). Raises otherwise. */
uint8_t bl_lua_check_addr(lua_State *L, int arg, uint8_t ns);
/* A 16-bit register value: an integer 0..65535, or -32768..-1 for signed
 * registers (stored as its two's complement). Raises otherwise. */
uint16_t bl_lua_check_u16(lua_State *L, int arg);

/* Push an array of the names of every bit set in a bit field of kind
 * BL_UK_ERROR / BL_UK_STATUS / BL_UK_SETTINGS, low bit first, each
 * prefixed with `prefix` ("ERR_" gives the constants' names, "" the short
 * ones); a bit with no name appears as "0x1000". */
void bl_lua_push_bit_names(lua_State *L, enum bl_unit_kind kind, uint16_t bits,
                           const char *prefix);

/* ---- The clock -------------------------------------------------------------- */

/* The clock batlab.now() reads: stored in the registry by the engine. The
 * clock must outlive the state (or be replaced first). NULL means the real
 * clock. */
void bl_lua_set_clock(lua_State *L, const struct bl_clock *clock);
const struct bl_clock *bl_lua_get_clock(lua_State *L);
/* Now, in seconds, on the batlab.now() scale. */
double bl_lua_now(lua_State *L);

/* ---- Packets (src/lua_packet.c) ------------------------------------------ */

#define BL_LUA_PACKET "batlab.Packet"
#define BL_LUA_ENCODER "batlab.Encoder"

/* What the device layer knows about a reply, for bl_lua_push_packet. */
struct bl_lua_packet_info {
	bool valid;          /* false: no trustworthy value (timeout, 257, ...) */
	int status;          /* why it is invalid (a bl_status); BL_OK if valid */
	double timestamp;    /* seconds on the batlab.now() scale; NAN if none */
	double r, b;         /* thermistor calibration of the packet's cell */
};

/* Push a new batlab.Packet for p. info may be NULL: a valid packet, no
 * timestamp, nominal R and B. */
void bl_lua_push_packet(lua_State *L, const struct bl_packet *p,
                        const struct bl_lua_packet_info *info);

/* Add Packet, Encoder, ascharge and ascharge_ah to the table on top of the
 * stack (the batlab module) and register their metatables. */
void bl_lua_open_packet(lua_State *L);
/* batlab.Encoder (lua_encoder.c), added by bl_lua_open_packet. */
void bl_lua_open_encoder(lua_State *L);
/* batlab.csv_line (lua_csv.c) */
void bl_lua_open_csv(lua_State *L);

/* ---- Tasks, devices, channels, pools (src/lua_sched.c, src/lua_device.c,
 * src/lua_pool.c) ------------------------------------------------------------ */

#define BL_LUA_DEVICE "batlab.Device"
#define BL_LUA_CHANNEL "batlab.Channel"
#define BL_LUA_POOL "batlab.Pool"

struct bl_device;
struct bl_session;
struct bl_lua_device;

/* A sample (device/channel.h) as the table ch:wait() returns. */
struct bl_sample;
void bl_lua_push_sample(lua_State *L, const struct bl_sample *s);

/* Push a Device object bound to d, a device of session s (the pool
 * binding anchors it while d lives). */
struct bl_lua_device *bl_lua_push_device(lua_State *L, struct bl_device *d,
                                         struct bl_session *s);
struct bl_device *bl_lua_device_ptr(const struct bl_lua_device *ld);
/* d is going away: fail what waits on it, stop listening. No Lua. */
void bl_lua_device_detach(struct bl_lua_device *ld);
/* Start making every channel safe (STOPPED, then IDLE). No Lua. */
void bl_lua_device_safe_all(struct bl_lua_device *ld);
/* The device was reset: its channels' report intervals are asked again. */
void bl_lua_device_reset(struct bl_lua_device *ld);
/* Waits on channels and tick reads in flight, for leak checks. */
int bl_lua_device_busy(const struct bl_lua_device *ld);

/* Push a Pool object for a session the program owns (it closes the
 * session after the engine); sets the scheduler's loop and the clock. */
void bl_lua_push_pool(lua_State *L, struct bl_session *s);

void bl_lua_open_sched(lua_State *L);
void bl_lua_open_device(lua_State *L);
void bl_lua_open_pool(lua_State *L);

/* ---- The module ----------------------------------------------------------- */

/* The `batlab` module (src/lua_batlab.c): constants, registers, lookups,
 * now(), Packet and Encoder. Device and Pool add themselves here when they
 * land, each through a bl_lua_open_<class>(L) called from luaopen_batlab. */
int luaopen_batlab(lua_State *L);

/* The labels table at idx ({step =, step_name =, cycle =, cycle_kind =},
 * each optional) of rec:label and the lab feeds' label: -1 and NULL for
 * what it does not give (the texts stay on the stack). Raises on a bad
 * value. */
struct bl_lua_labels {
	int step, cycle;
	const char *step_name, *cycle_kind;
};
void bl_lua_check_labels(lua_State *L, int idx, struct bl_lua_labels *out);
/* {step_time =, charge_ah =, energy_wh =} at idx (a resumed step's carry,
 * each 0 when absent) into v[0..2]. */
void bl_lua_check_carry(lua_State *L, int idx, double v[3]);

#endif
