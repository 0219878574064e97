/* lua_firmware.c - dev:firmware_check([download [, from]]) and
 * dev:firmware_update([{force=, from=}]): the newest released firmware
 * (host/fwrelease.h), as the seed's firmware_check / firmware_update.
 *
 * The release list and the image are fetched while the call blocks (the
 * loop does not run meanwhile: seconds on a slow network), and the image
 * is checked before anything is sent to the device. Added to the Device
 * class by bl_lua_open_firmware, called from bl_lua_open_device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "device/flash.h"
#include "host/fwrelease.h"
#include "lua/lua_devobj.h"
#include "lua/lua_util.h"

/* Save a checked image; a message on failure. */
static int save_image(const char *path, const uint8_t *image, size_t len, char *err, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(image, 1, len, f) != len || fclose(f) != 0) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		if (f) {
			fclose(f);
			remove(path);
		}
		return BL_ERR_IO;
	}
	return BL_OK;
}

/* dev:firmware_check([download [, from]]) -> version [, file]: download
 * true saves the checked image as the release's asset name in the current
 * directory (as the seed does), a string saves it there. */
static int l_firmware_check(lua_State *L)
{
	const char *from = luaL_optstring(L, 3, NULL);
	struct bl_fw_release rel;
	uint8_t *image;
	size_t len;
	char err[1024];
	const char *path = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
	bool download = lua_toboolean(L, 2);
	int rc;

	bl_lua_check_device(L, 1);
	if (!lua_isnoneornil(L, 2) && !lua_isboolean(L, 2) && lua_type(L, 2) != LUA_TSTRING)
		return luaL_typeerror(L, 2, "boolean or file name");
	rc = bl_fw_latest(bl_fw_releases_url(from), &rel, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "firmware check: %s", err);
	lua_pushinteger(L, rel.version);
	if (!download)
		return 1;
	if (!path && strchr(rel.asset, '/'))
		return bl_lua_fail(L, BL_ERR_ARG, "firmware check: asset name %s is not a file name",
		                   rel.asset);
	if (!path)
		path = rel.asset;
	rc = bl_fw_download(&rel, &image, &len, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "firmware check: %s", err);
	rc = save_image(path, image, len, err, sizeof err);
	free(image);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "firmware check: %s", err);
	lua_pushstring(L, path);
	return 2;
}

/* After the flash (stage 0) the device is connected again (stage 1). */
static int k_update(lua_State *L, int status, lua_KContext ctx)
{
	int r = bl_lua_after_flash(L, ctx, "firmware update: flashing",
	                           "firmware update: reconnecting after the flash", k_update);

	(void)status;
	if (r >= 0)
		return r;
	lua_pushboolean(L, 1);
	lua_pushinteger(L, bl_wait_ctx(L, ctx)->arg[0]);
	return 2;
}

/* opts.force / opts.from of dev:firmware_update's optional table. */
static void update_opts(lua_State *L, bool *force, const char **from)
{
	*force = false;
	*from = NULL;
	if (lua_isnoneornil(L, 2))
		return;
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_getfield(L, 2, "force");
	*force = lua_toboolean(L, -1);
	lua_getfield(L, 2, "from");
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "firmware_update: opts.from must be a URL string");
	*from = lua_tostring(L, -1);   /* stays alive: opts holds it */
	lua_pop(L, 2);
}

/* dev:firmware_update([opts]) -> true, version (flashed) or false,
 * version (the unit is not older), or nil, message, code. */
static int l_firmware_update(lua_State *L)
{
	struct bl_lua_device *ld = bl_lua_check_device(L, 1);
	const struct bl_identity *id;
	struct bl_wait local, *w;
	struct bl_fw_release rel;
	struct holder *h;
	struct bl_op *op;
	const char *from;
	uint8_t *image = NULL;
	size_t len = 0;
	char err[1024];
	bool force;
	int rc;

	update_opts(L, &force, &from);
	w = bl_wait_begin(L, &local, "dev:firmware_update");
	if (!ld->d)
		return bl_lua_fail_detached(L, ld);
	if ((rc = bl_fw_latest(bl_fw_releases_url(from), &rel, err, sizeof err)) != BL_OK ||
	    (rc = bl_fw_download(&rel, &image, &len, err, sizeof err)) != BL_OK)
		return bl_lua_fail(L, rc, "firmware update: %s", err);
	id = bl_device_identity(ld->d);
	if (!force && !id->bootloader && id->firmware >= rel.version) {
		free(image);
		lua_pushboolean(L, 0);
		lua_pushinteger(L, rel.version);
		return 2;
	}
	w->obj = ld;
	w->arg[0] = rel.version;
	if (!(h = bl_holder_new(w, NULL))) {
		free(image);
		return luaL_error(L, "out of memory");
	}
	op = bl_op_firmware_load(ld->d, image, len, NULL, NULL, bl_holder_op_done, h);
	free(image);
	if (!op && !w->done) {
		bl_holder_free(h);
		return bl_lua_fail(L, BL_ERR_CLOSED, "the device is closed");
	}
	return bl_await_op(L, w, h, op, k_update);
}

static const luaL_Reg firmware_methods[] = {
	{"firmware_check", l_firmware_check},
	{"firmware_update", l_firmware_update},
	{NULL, NULL},
};

void bl_lua_open_firmware(lua_State *L)
{
	/* bl_lua_newclass closed the Device's __index over its methods table:
	 * the methods go there. */
	luaL_getmetatable(L, BL_LUA_DEVICE);
	lua_getfield(L, -1, "__index");
	if (!lua_getupvalue(L, -1, 1))
		luaL_error(L, "batlab.Device has no methods table");
	luaL_setfuncs(L, firmware_methods, 0);
	lua_pop(L, 3);
}
