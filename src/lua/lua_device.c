/* lua_device.c - batlab.Device: registers, operations, firmware and
 * calibration, and the Device object's life (its channel set is made and
 * freed with it). The Channel class is lua_channel.c; how calls wait for
 * operations is lua_await.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"
#include "device/flash.h"
#include "host/session.h"
#include "lua/lua_devobj.h"

#define MOD "lua"

static void cell_rb(const struct bl_lua_device *ld, int cell, double *r, double *b)
{
	*r = BL_TEMP_R_NOMINAL;
	*b = BL_TEMP_B_NOMINAL;
	if (ld->d && cell >= 0 && cell < BL_CELLS) {
		const struct bl_identity *id = bl_device_identity(ld->d);
		*r = id->temp_r[cell];
		*b = id->temp_b[cell];
	}
}

static const char *reg_text(uint8_t ns, uint8_t addr, char *buf, size_t n)
{
	char nsb[16];
	const struct bl_reg *r = bl_reg_by_addr(ns, addr);

	bl_ns_name(ns, nsb, sizeof nsb);
	if (r)
		snprintf(buf, n, "%s %s", nsb, r->name);
	else
		snprintf(buf, n, "%s 0x%02X", nsb, addr);
	return buf;
}

static int fail_reg(lua_State *L, int status, const char *verb, uint8_t ns, uint8_t addr)
{
	char buf[48];

	return bl_lua_fail(L, status, "%s %s: %s", verb, reg_text(ns, addr, buf, sizeof buf),
	                   bl_strerror(status));
}

/* ---- The Device object's life ------------------------------------------------------- */

struct bl_lua_device *bl_lua_push_device(lua_State *L, struct bl_device *d,
                                         struct bl_session *s)
{
	struct bl_lua_device *ld = lua_newuserdatauv(L, sizeof *ld, 2);
	const struct bl_identity *id = bl_device_identity(d);

	memset(ld, 0, sizeof *ld);
	luaL_setmetatable(L, BL_LUA_DEVICE);
	ld->cs = bl_chanset_new(d);
	if (!ld->cs)
		luaL_error(L, "out of memory");
	ld->d = d;
	ld->session = s;
	ld->sched = bl_sched_get(L);
	snprintf(ld->port, sizeof ld->port, "%s", bl_device_port(d));
	ld->serial = id->serial;
	ld->firmware = id->firmware;
	for (int c = 0; c < BL_CELLS; c++) {
		ld->ch[c].ld = ld;
		ld->ch[c].cell = c;
		ld->ch[c].c = bl_chanset_channel(ld->cs, c);
	}
	return ld;
}

struct bl_device *bl_lua_device_ptr(const struct bl_lua_device *ld)
{
	return ld->d;
}


void bl_lua_device_detach(struct bl_lua_device *ld)
{
	if (!ld->d)
		return;
	/* Listeners (waiting tasks, recorders) hear BL_ERR_CLOSED. */
	bl_chanset_free(ld->cs);
	ld->cs = NULL;
	for (int i = 0; i < BL_CELLS; i++) {
		struct lchan *c = &ld->ch[i];

		c->c = NULL;
		while (c->batch.head)
			bl_wait_complete(c->batch.head, BL_ERR_CLOSED);
		while (c->waiters.head)
			bl_wait_complete(c->waiters.head, BL_ERR_CLOSED);
	}
	ld->d = NULL;
}

void bl_lua_device_safe_all(struct bl_lua_device *ld)
{
	if (!ld->d || bl_device_closed(ld->d))
		return;
	for (int c = 0; c < BL_CELLS; c++)
		bl_channel_safe(ld->ch[c].c, NULL, NULL);
}

void bl_lua_device_reset(struct bl_lua_device *ld)
{
	if (ld->d)
		bl_chanset_device_reset(ld->cs);
}

int bl_lua_device_busy(const struct bl_lua_device *ld)
{
	int n = ld->cs ? bl_chanset_busy(ld->cs) : 0;

	for (int c = 0; c < BL_CELLS; c++)
		n += (int)(ld->ch[c].waiters.n + ld->ch[c].batch.n);
	return n;
}

/* ---- Device methods ---------------------------------------------------------------- */

/* A write of TEMP_CALIB_R/B changes how that cell's temperatures decode
 * from now on; the identity is what every decoder reads. */
static void note_write(struct bl_lua_device *ld, uint8_t ns, uint8_t addr, uint16_t v)
{
	if (ld->d)
		bl_device_note_temp_calib(ld->d, ns, addr, v);
}

/* A reply as the seed's Packet: valid, stamped with the clock, decoding
 * temperatures with its cell's calibration. */
static void push_reply(lua_State *L, struct bl_lua_device *ld, uint8_t ns, uint8_t addr,
                       uint16_t value, bool write)
{
	struct bl_packet p = {.ns = ns, .addr = addr, .value = value, .write = write};
	struct bl_lua_packet_info info = {.valid = true, .status = BL_OK,
	                                  .timestamp = bl_lua_now(L)};

	cell_rb(ld, ns, &info.r, &info.b);
	bl_lua_push_packet(L, &p, &info);
}

/* arg[2]: 1 for dev:read_raw (a bare integer), 0 for dev:read (a Packet). */
static int k_dev_read(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	uint8_t ns = (uint8_t)w->arg[0], addr = (uint8_t)w->arg[1];

	(void)status;
	if (w->status != BL_OK)
		return fail_reg(L, w->status, "read", ns, addr);
	if (w->arg[2])
		lua_pushinteger(L, w->value);
	else
		push_reply(L, w->obj, ns, addr, w->value, false);
	return 1;
}

static int device_read(lua_State *L, bool raw)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	uint8_t ns = bl_lua_check_ns(L, 2);
	uint8_t addr = bl_lua_check_addr(L, 3, ns);
	struct bl_wait local, *w = bl_wait_begin(L, &local, raw ? "dev:read_raw" : "dev:read");
	struct holder *h;

	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = ns;
	w->arg[1] = addr;
	w->arg[2] = raw;
	NEW_HOLDER(h, w, NULL);
	return bl_await_op(L, w, h, bl_op_read(ld->d, ns, addr, bl_holder_op_done, h), k_dev_read);
}

static int l_device_read(lua_State *L) { return device_read(L, false); }
static int l_device_read_raw(lua_State *L) { return device_read(L, true); }

/* dev:write answers the write's Packet, dev:write_verify true. */
static int k_dev_write(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	uint8_t ns = (uint8_t)w->arg[0], addr = (uint8_t)w->arg[1];
	uint16_t v = (uint16_t)w->arg[2];

	(void)status;
	if (w->status != BL_OK)
		return fail_reg(L, w->status, w->arg[3] ? "write_verify" : "write", ns, addr);
	note_write(w->obj, ns, addr, v);
	if (w->arg[3])
		lua_pushboolean(L, 1);
	else
		push_reply(L, w->obj, ns, addr, v, true);
	return 1;
}

/* The value to write: what the caller gave, after what every host does
 * to it (core/regs.c: the CURRENT_SETPOINT clamp, the SETTINGS mask). A
 * negative setpoint is 0, as the seed makes it. */
static uint16_t write_value(lua_State *L, int arg, uint8_t ns, uint8_t addr)
{
	uint16_t v = bl_lua_check_u16(L, arg);

	if (bl_ns_kind(ns) == BL_NSK_CELL && addr == BL_CELL_CURRENT_SETPOINT &&
	    lua_tointeger(L, arg) < 0)
		v = 0;
	return bl_host_write_value(ns, addr, v, NULL);
}

static int device_write(lua_State *L, bool verify)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	uint8_t ns = bl_lua_check_ns(L, 2);
	uint8_t addr = bl_lua_check_addr(L, 3, ns);
	uint16_t v = write_value(L, 4, ns, addr);
	struct bl_wait local, *w = bl_wait_begin(L, &local, verify ? "dev:write_verify" : "dev:write");
	struct holder *h;
	struct bl_op *op;

	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = ns;
	w->arg[1] = addr;
	w->arg[2] = v;
	w->arg[3] = verify;
	NEW_HOLDER(h, w, NULL);
	op = verify ? bl_op_write_verify(ld->d, ns, addr, v, bl_holder_op_done, h)
	            : bl_op_write(ld->d, ns, addr, v, bl_holder_op_done, h);
	return bl_await_op(L, w, h, op, k_dev_write);
}

static int l_device_write(lua_State *L) { return device_write(L, false); }
static int l_device_write_verify(lua_State *L) { return device_write(L, true); }

static int l_device_set_current(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	int cell = bl_lua_check_cell(L, 2);
	double amps = bl_lua_check_amps(L, 3, true);

	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	if (bl_channel_set_current(ld->ch[cell].c, amps) != BL_OK)
		return bl_lua_fail_detached(L, ld);
	lua_pushboolean(L, 1);
	return 1;
}

static int k_number(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d cell %d: %s: %s", (int)ld->serial,
		                   w->arg[0], w->arg[1] ? "impedance" : "charge", bl_strerror(w->status));
	lua_pushnumber(L, w->number);
	if (w->arg[1])
		return 1;
	lua_pushinteger(L, w->raw32);
	return 2;
}

static int device_number_op(lua_State *L, bool impedance)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	int cell = bl_lua_check_cell(L, 2);
	struct bl_wait local, *w = bl_wait_begin(L, &local, impedance ? "dev:impedance" : "dev:charge");
	struct holder *h;
	struct bl_op *op;

	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	w->obj = ld;
	w->arg[0] = cell;
	w->arg[1] = impedance;
	if (impedance) {
		NEW_HOLDER(h, w, ld->ch[cell].c);
		return bl_await_chan(L, w, h, bl_channel_impedance(ld->ch[cell].c, bl_holder_chan_done, h),
		                     k_number);
	}
	NEW_HOLDER(h, w, NULL);
	op = bl_op_charge(ld->d, cell, bl_holder_op_done, h);
	return bl_await_op(L, w, h, op, k_number);
}

static int l_device_impedance(lua_State *L) { return device_number_op(L, true); }
static int l_device_charge(lua_State *L) { return device_number_op(L, false); }

static void flash_progress(struct bl_device *d, size_t done, size_t total, void *ud)
{
	struct holder *h = ud;
	lua_State *L;

	(void)d;
	if (!h->w || h->progress_ref == LUA_NOREF)
		return;
	L = bl_sched_lua(h->s);
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->progress_ref);
	lua_pushinteger(L, (lua_Integer)done);
	lua_pushinteger(L, (lua_Integer)total);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		BL_WARN(MOD, "firmware_bootload progress function: %s",
		        lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
}

int bl_lua_after_flash(lua_State *L, lua_KContext ctx, const char *flashing, const char *reconnecting,
                       lua_KFunction k)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;
	struct holder *h;

	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: %s: %s", (int)ld->serial,
		                   w->stage == 0 ? flashing : reconnecting, bl_strerror(w->status));
	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	if (w->stage == 0) {
		bl_wait_again(w);
		w->stage = 1;
		NEW_HOLDER(h, w, NULL);
		return bl_await_op(L, w, h, bl_op_connect(ld->d, bl_holder_op_done, h), k);
	}
	ld->firmware = bl_device_identity(ld->d)->firmware;
	return -1;
}

static int k_flash(lua_State *L, int status, lua_KContext ctx)
{
	int r = bl_lua_after_flash(L, ctx, "firmware load", "reconnect after the firmware load", k_flash);

	(void)status;
	if (r >= 0)
		return r;
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_firmware_bootload(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct bl_wait local, *w;
	struct holder *h;
	struct bl_op *op;
	uint8_t *image = NULL;
	size_t len = 0;
	char err[256];
	int rc;

	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TFUNCTION);
	w = bl_wait_begin(L, &local, "dev:firmware_bootload");
	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	rc = bl_firmware_read_file(path, &image, &len, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "%s", err);
	w->obj = ld;
	h = bl_holder_new(w, NULL);
	if (!h) {
		free(image);
		return luaL_error(L, "out of memory");
	}
	if (!lua_isnoneornil(L, 3)) {
		lua_pushvalue(L, 3);
		h->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	op = bl_op_firmware_load(ld->d, image, len, flash_progress, h, bl_holder_op_done, h);
	free(image);
	if (!op && !w->done) {
		bl_holder_free(h);
		return bl_lua_fail(L, BL_ERR_CLOSED, "the device is closed");
	}
	return bl_await_op(L, w, h, op, k_flash);
}

static int k_cal_backup(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;
	struct bl_calibration cal;
	const char *path = lua_tostring(L, 2);
	char *text;
	FILE *f;
	bool ok;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: calibration backup: %s", (int)ld->serial,
		                   bl_strerror(w->status));
	memcpy(&cal, w->payload.bytes, sizeof cal);
	text = bl_calib_format(&cal);
	if (!text)
		return luaL_error(L, "out of memory");
	f = fopen(path, "w");
	if (!f) {
		free(text);
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", path, strerror(errno));
	}
	ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	free(text);
	if (!ok)
		return bl_lua_fail(L, BL_ERR_IO, "%s: %s", path, strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_calibration_backup(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	struct bl_wait local, *w;
	struct holder *h;

	luaL_checkstring(L, 2);
	lua_settop(L, 2);
	w = bl_wait_begin(L, &local, "dev:calibration_backup");
	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	w->obj = ld;
	NEW_HOLDER(h, w, NULL);
	h->want_cal = true;
	return bl_await_op(L, w, h, bl_op_calib_backup(ld->d, &h->cal, bl_holder_op_done, h), k_cal_backup);
}

static int k_cal_restore(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);
	struct bl_lua_device *ld = w->obj;

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail(L, w->status, "Batlab %d: calibration restore: %s", (int)ld->serial,
		                   bl_strerror(w->status));
	if (ld->d)
		ld->serial = bl_device_identity(ld->d)->serial;
	lua_pushboolean(L, 1);
	return 1;
}

static int l_device_calibration_restore(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct bl_calibration cal;
	struct bl_wait local, *w;
	struct holder *h;
	char err[256], buf[4096];
	size_t n;
	FILE *f;
	int rc;

	w = bl_wait_begin(L, &local, "dev:calibration_restore");
	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	f = fopen(path, "r");
	if (!f)
		return bl_lua_fail(L, BL_ERR_NOTFOUND, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	rc = bl_calib_parse(buf, path, &cal, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "%s", err);
	w->obj = ld;
	NEW_HOLDER(h, w, NULL);
	return bl_await_op(L, w, h, bl_op_calib_restore(ld->d, &cal, bl_holder_op_done, h), k_cal_restore);
}


static int l_device_channel(lua_State *L)
{
	bl_lua_check_device(L, 1);
	bl_lua_push_channel(L, 1, bl_lua_check_cell(L, 2));
	return 1;
}

static void push_rb_list(lua_State *L, const struct bl_lua_device *ld, bool r)
{
	lua_createtable(L, BL_CELLS, 0);
	for (int c = 0; c < BL_CELLS; c++) {
		double rv, bv;
		cell_rb(ld, c, &rv, &bv);
		lua_pushnumber(L, r ? rv : bv);
		lua_rawseti(L, -2, c + 1);
	}
}

/* Fields computed in Lua (batlab.extend_device), looked up after the
 * class's own. */
static const char ext_fields_key = 0;

static bool is_own_field(const char *k)
{
	static const char *const own[] = {"port", "sn", "serial", "ver", "firmware", "R", "B",
	                                  "connected", "bootloader", "detached"};

	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
		if (strcmp(k, own[i]) == 0)
			return true;
	return false;
}

static int l_device_index(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "port") == 0)
		lua_pushstring(L, ld->port);
	else if (strcmp(k, "sn") == 0 || strcmp(k, "serial") == 0)
		lua_pushinteger(L, ld->serial);
	else if (strcmp(k, "ver") == 0 || strcmp(k, "firmware") == 0)
		lua_pushinteger(L, ld->firmware);
	else if (strcmp(k, "R") == 0)
		push_rb_list(L, ld, true);
	else if (strcmp(k, "B") == 0)
		push_rb_list(L, ld, false);
	else if (strcmp(k, "connected") == 0)
		lua_pushboolean(L, ld->d && bl_device_identity(ld->d)->connected);
	else if (strcmp(k, "bootloader") == 0)
		lua_pushboolean(L, ld->d && bl_device_identity(ld->d)->bootloader);
	else if (strcmp(k, "detached") == 0)
		lua_pushboolean(L, ld->d == NULL);
	else if (lua_getfield(L, lua_upvalueindex(1), k) == LUA_TNIL) {
		lua_rawgetp(L, LUA_REGISTRYINDEX, &ext_fields_key);
		if (lua_getfield(L, -1, k) == LUA_TFUNCTION) {
			lua_pushvalue(L, 1);
			lua_call(L, 1, 1);
		}
	}
	return 1;
}

/* batlab.extend_device(fields): Device fields whose value a function(dev)
 * computes in Lua (the seed library's dev.settings and dev.logger, from
 * lua/batlab/seed.lua). The class's own names cannot be replaced. */
static int l_extend_device(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	luaL_getmetatable(L, BL_LUA_DEVICE);
	lua_getfield(L, 2, "__index");
	lua_getupvalue(L, 3, 1);                 /* 4: the class's methods */
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ext_fields_key);
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		if (!k || !lua_isfunction(L, -1))
			return luaL_error(L, "batlab.extend_device: a table of name = function expected");
		if (lua_getfield(L, 4, k) != LUA_TNIL || is_own_field(k))
			return luaL_error(L, "batlab.extend_device: batlab.Device already has '%s'", k);
		lua_pop(L, 1);
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, 5);
	}
	return 0;
}

static int l_device_tostring(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);

	lua_pushfstring(L, "batlab.Device %d on %s%s", (int)ld->serial, ld->port,
	                ld->d ? "" : " (detached)");
	return 1;
}

static const luaL_Reg device_meta[] = {
	{"__index", l_device_index},
	{"__tostring", l_device_tostring},
	{NULL, NULL},
};

static const luaL_Reg device_methods[] = {
	{"read", l_device_read},
	{"read_raw", l_device_read_raw},
	{"write", l_device_write},
	{"write_verify", l_device_write_verify},
	{"set_current", l_device_set_current},
	{"impedance", l_device_impedance},
	{"charge", l_device_charge},
	{"firmware_bootload", l_device_firmware_bootload},
	{"calibration_backup", l_device_calibration_backup},
	{"calibration_restore", l_device_calibration_restore},
	{"channel", l_device_channel},
	{NULL, NULL},
};

void bl_lua_open_device(lua_State *L)
{
	_Static_assert(sizeof(struct bl_calibration) <= BL_WAIT_PAYLOAD, "calibration fits a wait");
	bl_lua_newclass(L, BL_LUA_DEVICE, device_meta, device_methods);
	bl_lua_open_firmware(L);      /* dev:firmware_check, dev:firmware_update (lua_firmware.c) */
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ext_fields_key);
	lua_pushcfunction(L, l_extend_device);
	lua_setfield(L, -2, "extend_device");
	bl_lua_open_channel(L);
}
