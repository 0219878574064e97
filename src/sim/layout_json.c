/* sim/layout_json.c - checked reading of decoded JSON (see layout_json.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "sim/layout_json.h"

int bl_jw_fail(struct bl_json_walk *w, const char *where, const char *fmt, ...)
{
	if (w->err && w->errlen) {
		char msg[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		if (where && *where)
			snprintf(w->err, w->errlen, "%s: %s: %s", w->name, where, msg);
		else
			snprintf(w->err, w->errlen, "%s: %s", w->name, msg);
	}
	return BL_ERR_ARG;
}

bool bl_jw_is_null(lua_State *L, int idx)
{
	return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == NULL;
}

enum bl_jw_kind bl_jw_kind(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TLIGHTUSERDATA: return bl_jw_is_null(L, idx) ? BL_JW_NULL : BL_JW_OTHER;
	case LUA_TBOOLEAN: return BL_JW_BOOL;
	case LUA_TNUMBER: return BL_JW_NUM;
	case LUA_TSTRING: return BL_JW_STR;
	case LUA_TTABLE: break;
	default: return BL_JW_OTHER;
	}
	idx = lua_absindex(L, idx);
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx), keys = 0;
	bool strings = false, ints = false;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		keys++;
		if (lua_type(L, -1) == LUA_TSTRING)
			strings = true;
		else
			ints = true;
	}
	if (keys == 0)
		return BL_JW_EMPTY;
	if (strings && !ints)
		return BL_JW_OBJECT;
	if (ints && !strings && keys == n)
		return BL_JW_ARRAY;
	return BL_JW_OTHER;
}

const char *bl_jw_kind_name(enum bl_jw_kind k)
{
	switch (k) {
	case BL_JW_NULL: return "null";
	case BL_JW_BOOL: return "a boolean";
	case BL_JW_NUM: return "a number";
	case BL_JW_STR: return "a string";
	case BL_JW_ARRAY: return "an array";
	case BL_JW_OBJECT: return "an object";
	case BL_JW_EMPTY: return "an empty object/array";
	default: return "something else";
	}
}

bool bl_jw_is_object(lua_State *L, int idx)
{
	enum bl_jw_kind k = bl_jw_kind(L, idx);
	return k == BL_JW_OBJECT || k == BL_JW_EMPTY;
}

static bool is_array(lua_State *L, int idx)
{
	enum bl_jw_kind k = bl_jw_kind(L, idx);
	return k == BL_JW_ARRAY || k == BL_JW_EMPTY;
}

void bl_jw_join(char *buf, size_t n, const char *const *names)
{
	size_t used = 0;
	buf[0] = 0;
	for (int i = 0; names[i] && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
}

int bl_jw_check_keys(struct bl_json_walk *w, int idx, const char *where,
                     const char *const *allowed)
{
	lua_State *L = w->L;
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		size_t klen;
		const char *k = lua_tolstring(L, -1, &klen);
		bool known = false;
		for (int i = 0; allowed[i] && !known; i++)
			known = strlen(allowed[i]) == klen && strcmp(allowed[i], k) == 0;
		if (!known) {
			char list[512];
			bl_jw_join(list, sizeof list, allowed);
			lua_pop(L, 1);
			return bl_jw_fail(w, where, "unknown key \"%.*s\" (known: %s)",
			                  (int)(klen > 64 ? 64 : klen), k, list);
		}
	}
	return BL_OK;
}

bool bl_jw_field(lua_State *L, int idx, const char *key)
{
	lua_pushstring(L, key);
	lua_rawget(L, idx < 0 ? idx - 1 : idx);
	return !lua_isnil(L, -1);
}

int bl_jw_num(struct bl_json_walk *w, int idx, const char *where, const char *key,
              double lo, double hi, double *out, bool *present)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (present)
		*present = false;
	if (bl_jw_field(L, idx, key)) {
		if (lua_type(L, -1) != LUA_TNUMBER) {
			rc = bl_jw_fail(w, where, "\"%s\" must be a number, not %s", key,
			                bl_jw_kind_name(bl_jw_kind(L, -1)));
		} else {
			double v = lua_tonumber(L, -1);
			if (!isfinite(v))
				rc = bl_jw_fail(w, where, "\"%s\" must be a finite number", key);
			else if (v < lo || v > hi)
				rc = bl_jw_fail(w, where, "\"%s\" must be within %.10g..%.10g (got %.10g)",
				                key, lo, hi, v);
			else {
				*out = v;
				if (present)
					*present = true;
			}
		}
	}
	lua_pop(L, 1);
	return rc;
}

int bl_jw_int(struct bl_json_walk *w, int idx, const char *where, const char *key,
              double lo, double hi, long long *out, bool *present)
{
	double v;
	bool have = false;
	int rc = bl_jw_num(w, idx, where, key, lo, hi, &v, &have);
	if (rc < 0)
		return rc;
	if (have && v != floor(v))
		return bl_jw_fail(w, where, "\"%s\" must be a whole number (got %g)", key, v);
	if (have)
		*out = (long long)v;
	if (present)
		*present = have;
	return BL_OK;
}

int bl_jw_bool(struct bl_json_walk *w, int idx, const char *where, const char *key, bool *out)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (bl_jw_field(L, idx, key)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			rc = bl_jw_fail(w, where, "\"%s\" must be true or false, not %s", key,
			                bl_jw_kind_name(bl_jw_kind(L, -1)));
		else
			*out = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return rc;
}

int bl_jw_seed(struct bl_json_walk *w, int idx, const char *where, uint64_t *out)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (bl_jw_field(L, idx, "seed")) {
		if (lua_type(L, -1) == LUA_TNUMBER) {
			double v = lua_tonumber(L, -1);
			if (!(v >= 0 && v <= BL_JW_MAX_EXACT_INT) || v != floor(v))
				rc = bl_jw_fail(w, where, "\"seed\" must be a whole number 0..2^53 "
				                "(or a string of digits)");
			else
				*out = (uint64_t)v;
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			size_t n;
			const char *s = lua_tolstring(L, -1, &n);
			char *end = NULL;
			bool digits = n > 0 && n <= 20;
			for (size_t i = 0; i < n && digits; i++)
				digits = s[i] >= '0' && s[i] <= '9';
			errno = 0;
			unsigned long long v = digits ? strtoull(s, &end, 10) : 0;
			if (!digits || errno || end != s + n)
				rc = bl_jw_fail(w, where, "\"seed\" string must hold a decimal number below 2^64");
			else
				*out = (uint64_t)v;
		} else {
			rc = bl_jw_fail(w, where, "\"seed\" must be a number or a string of digits, not %s",
			                bl_jw_kind_name(bl_jw_kind(L, -1)));
		}
	}
	lua_pop(L, 1);
	return rc;
}

int bl_jw_push_array(struct bl_json_walk *w, int idx, const char *where, const char *key,
                     bool *pushed)
{
	lua_State *L = w->L;
	*pushed = false;
	if (!bl_jw_field(L, idx, key)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!is_array(L, -1)) {
		int rc = bl_jw_fail(w, where, "\"%s\" must be an array, not %s", key,
		                    bl_jw_kind_name(bl_jw_kind(L, -1)));
		lua_pop(L, 1);
		return rc;
	}
	*pushed = true;
	return (int)lua_rawlen(L, -1);
}

/* cjson names its tokens T_OBJ_END etc.; say what a user typed instead. */
static const char *token_words(const char *tok, size_t n)
{
	static const struct { const char *t, *words; } map[] = {
		{ "T_OBJ_BEGIN", "'{'" }, { "T_OBJ_END", "'}'" },
		{ "T_ARR_BEGIN", "'['" }, { "T_ARR_END", "']'" },
		{ "T_STRING", "a string" }, { "T_NUMBER", "a number" },
		{ "T_BOOLEAN", "a boolean" }, { "T_NULL", "null" },
		{ "T_COLON", "':'" }, { "T_COMMA", "','" },
		{ "T_END", "the end of the file" }, { "T_WHITESPACE", "whitespace" },
		{ "T_ERROR", "an error" }, { "T_UNKNOWN", "an unknown token" },
	};
	for (size_t i = 0; i < BL_ARRAY_LEN(map); i++)
		if (strlen(map[i].t) == n && strncmp(map[i].t, tok, n) == 0)
			return map[i].words;
	return NULL;
}

/* "Expected X but found T_OBJ_END at character 13" becomes
 * "line 2, column 5: expected X but found '}'". */
int bl_jw_syntax_error(struct bl_json_walk *w, const char *msg, const char *json, size_t len)
{
	char text[256];
	snprintf(text, sizeof text, "%s", msg ? msg : "invalid JSON");
	long long at = -1;
	char *mark = strstr(text, " at character ");
	if (mark) {
		at = strtoll(mark + 14, NULL, 10);
		*mark = 0;
	}
	char *tok = strstr(text, "found T_");
	if (tok) {
		tok += 6;
		size_t n = strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		const char *words = token_words(tok, n);
		if (words && strlen(words) <= n + 16) {
			char rest[256];
			snprintf(rest, sizeof rest, "%s", tok + n);
			snprintf(tok, sizeof text - (size_t)(tok - text), "%s%s", words, rest);
		}
	}
	if (text[0] >= 'A' && text[0] <= 'Z')
		text[0] = (char)(text[0] - 'A' + 'a');
	if (at < 1)
		return bl_jw_fail(w, "", "invalid JSON: %s", text);
	size_t upto = (size_t)at - 1 < len ? (size_t)at - 1 : len;
	long line = 1, col = 1;
	for (size_t i = 0; i < upto; i++) {
		if (json[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	return bl_jw_fail(w, "", "line %ld, column %ld: invalid JSON: %s", line, col, text);
}

