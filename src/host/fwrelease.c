/* fwrelease.c - released Batlab firmware (see fwrelease.h). The release
 * list is decoded by lua-cjson in a private, short-lived Lua state (as the
 * simulator's layouts are) and walked with the same checked readers. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "device/flash.h"
#include "host/fwrelease.h"
#include "host/http.h"
#include "sim/layout_json.h"

#define LIST_MAX (4u << 20)   /* GitHub's list with release notes: well below */
#define IMAGE_MAX (1u << 20)  /* an image is 15360 bytes; the check says so */

const char *bl_fw_releases_url(const char *from)
{
	const char *env = getenv(BL_FW_URL_ENV);

	if (from && *from)
		return from;
	return env && *env ? env : BL_FW_RELEASES_URL;
}

/* "v8", "8", "v8.0", "V12.3.1" -> 8, 8, 8, 12; -1 for anything else. */
static int tag_version(const char *tag)
{
	const char *p = tag;
	long v = 0;

	if (*p == 'v' || *p == 'V')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > 65535)
			return -1;
	}
	while (*p == '.' && isdigit((unsigned char)p[1]))
		for (p++; isdigit((unsigned char)*p); p++)
			;
	return *p ? -1 : (int)v;
}

/* t[key] as a string into out, or false (nothing pushed either way). */
static bool string_field(lua_State *L, int idx, const char *key, char *out, size_t n)
{
	bool ok = bl_jw_field(L, idx, key) && lua_type(L, -1) == LUA_TSTRING;

	if (ok)
		snprintf(out, n, "%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	return ok;
}

static bool true_field(lua_State *L, int idx, const char *key)
{
	bool yes = bl_jw_field(L, idx, key) && lua_toboolean(L, -1);

	lua_pop(L, 1);
	return yes;
}

/* The release at idx: its tag and version (-1: not a candidate). */
static int release_version(struct bl_json_walk *w, int idx, const char *where, char *tag, size_t n,
                           int *version)
{
	*version = -1;
	if (!bl_jw_is_object(w->L, idx))
		return bl_jw_fail(w, where, "a release must be an object, not %s",
		                  bl_jw_kind_name(bl_jw_kind(w->L, idx)));
	if (!string_field(w->L, idx, "tag_name", tag, n))
		return bl_jw_fail(w, where, "\"tag_name\" (a string) is missing");
	if (true_field(w->L, idx, "draft") || true_field(w->L, idx, "prerelease"))
		return BL_OK;
	*version = tag_version(tag);
	return BL_OK;
}

/* The first asset named *.bin of the release at idx into out. */
static int bin_asset(struct bl_json_walk *w, int idx, const char *where, struct bl_fw_release *out)
{
	lua_State *L = w->L;
	char names[512] = "";
	bool pushed = false;
	int n = bl_jw_push_array(w, idx, where, "assets", &pushed);

	for (int i = 1; i <= n; i++) {
		char name[256];
		size_t len, used = strlen(names);

		lua_rawgeti(L, -1, i);
		if (bl_jw_is_object(L, -1) && string_field(L, -1, "name", name, sizeof name)) {
			len = strlen(name);
			if (len > 4 && strcasecmp(name + len - 4, ".bin") == 0 &&
			    string_field(L, -1, "browser_download_url", out->url, sizeof out->url)) {
				snprintf(out->asset, sizeof out->asset, "%s", name);
				lua_pop(L, 2);
				return BL_OK;
			}
			snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", name);
		}
		lua_pop(L, 1);
	}
	if (pushed)
		lua_pop(L, 1);
	if (n < 0)
		return n;
	bl_jw_fail(w, "", "release %s has no .bin asset (%s%s)", out->tag,
	           names[0] ? "its assets: " : "it has no assets", names);
	return BL_ERR_NOTFOUND;
}

/* Walk the decoded list (stack top) for the newest release. */
static int walk(struct bl_json_walk *w, struct bl_fw_release *out)
{
	lua_State *L = w->L;
	enum bl_jw_kind k = bl_jw_kind(L, -1);
	int top = lua_gettop(L), best = 0, n;
	char where[32], tag[64];

	if (k == BL_JW_OBJECT) {     /* one release: .../releases/latest */
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, top);
		lua_rawseti(L, -2, 1);
		lua_replace(L, top);
	} else if (k != BL_JW_ARRAY && k != BL_JW_EMPTY) {
		return bl_jw_fail(w, "", "a release list must be a JSON array of releases, not %s",
		                  bl_jw_kind_name(k));
	}
	n = (int)lua_rawlen(L, top);
	out->version = -1;
	for (int i = 1; i <= n; i++) {
		int v, rc;

		snprintf(where, sizeof where, "release %d", i);
		lua_rawgeti(L, top, i);
		rc = release_version(w, -1, where, tag, sizeof tag, &v);
		lua_pop(L, 1);
		if (rc != BL_OK)
			return rc;
		if (v > out->version) {
			out->version = v;
			best = i;
			snprintf(out->tag, sizeof out->tag, "%s", tag);
		}
	}
	if (!best) {
		bl_jw_fail(w, "", "no release with a version tag (vN) among %d release%s", n,
		           n == 1 ? "" : "s");
		return BL_ERR_NOTFOUND;
	}
	lua_rawgeti(L, top, best);
	snprintf(where, sizeof where, "release %d", best);
	return bin_asset(w, lua_gettop(L), where, out);
}

struct decode_args {
	struct bl_json_walk *w;
	const char *json;
	size_t len;
	struct bl_fw_release *out;
	int status;
};

/* Runs under lua_pcall, so a memory error in Lua cannot escape. */
static int decode_and_walk(lua_State *L)
{
	struct decode_args *a = lua_touserdata(L, 1);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson.safe");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		a->status = bl_jw_fail(a->w, "", "lua-cjson is not available (%s)", lua_tostring(L, -1));
		return 0;
	}
	lua_getfield(L, -1, "decode");
	lua_pushlstring(L, a->json, a->len);
	lua_call(L, 1, 2);
	if (lua_isnil(L, -2)) {
		a->status = bl_jw_syntax_error(a->w, lua_tostring(L, -1), a->json, a->len);
		return 0;
	}
	lua_pop(L, 1);
	a->status = walk(a->w, a->out);
	return 0;
}

int bl_fw_release_parse(const char *json, size_t len, const char *where,
                        struct bl_fw_release *out, char *err, size_t errlen)
{
	struct bl_json_walk w = { NULL, where, err, errlen };
	struct decode_args a = { &w, json, len, out, BL_OK };
	lua_State *L;
	int prc;

	memset(out, 0, sizeof *out);
	if (!(L = luaL_newstate()))
		return BL_ERR_MEM;
	luaL_openlibs(L);
	w.L = L;
	lua_pushcfunction(L, decode_and_walk);
	lua_pushlightuserdata(L, &a);
	prc = lua_pcall(L, 1, 0, 0);
	if (prc != LUA_OK && a.status == BL_OK)
		a.status = prc == LUA_ERRMEM ? BL_ERR_MEM : bl_jw_fail(&w, "", "%s", lua_tostring(L, -1));
	lua_close(L);
	return a.status;
}

int bl_fw_latest(const char *url, struct bl_fw_release *out, char *err, size_t errlen)
{
	char *body;
	size_t len;
	int rc;

	memset(out, 0, sizeof *out);
	rc = bl_http_get(url, "application/vnd.github+json", LIST_MAX, &body, &len, err, errlen);
	if (rc != BL_OK)
		return rc;
	rc = bl_fw_release_parse(body, len, url, out, err, errlen);
	free(body);
	return rc;
}

int bl_fw_download(const struct bl_fw_release *rel, uint8_t **image, size_t *len,
                   char *err, size_t errlen)
{
	char *body, why[256];
	int rc;

	*image = NULL;
	*len = 0;
	rc = bl_http_get(rel->url, "application/octet-stream", IMAGE_MAX, &body, len, err, errlen);
	if (rc != BL_OK)
		return rc;
	rc = bl_firmware_check((const uint8_t *)body, *len, why, sizeof why);
	if (rc != BL_OK) {
		snprintf(err, errlen, "%s: not a valid image: %s", rel->url, why);
		free(body);
		*len = 0;
		return rc;
	}
	*image = (uint8_t *)body;
	return BL_OK;
}
