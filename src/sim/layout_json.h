/* sim/layout_json.h - checked reading of JSON that lua-cjson decoded into
 * Lua tables, for the layout parser (sim/layout_parse.c).
 *
 * Every reader checks the type and range of what it reads and, when it is
 * wrong, writes "NAME: WHERE: what is wrong" into the walk's error buffer
 * and returns BL_ERR_ARG, so a typo in a file is an error that names the
 * spot rather than a silently ignored setting. Readers of a key take the
 * table at stack index idx and leave the stack as they found it.
 */
#ifndef BL_SIM_LAYOUT_JSON_H
#define BL_SIM_LAYOUT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Whole numbers up to 2^53 survive a JSON number; larger seeds are
 * written as strings of digits. */
#define BL_JW_MAX_EXACT_INT 9007199254740992.0

struct bl_json_walk {
	lua_State *L;
	const char *name;   /* the file (or text) being read, for messages */
	char *err;          /* NULL: no message wanted */
	size_t errlen;
};

/* Write the message (see above) and return BL_ERR_ARG. An empty `where`
 * is the top level. */
int bl_jw_fail(struct bl_json_walk *w, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* cjson's message for text that is not JSON, with its character offset
 * turned into a line and column and its token names into what a user
 * typed. Returns BL_ERR_ARG. */
int bl_jw_syntax_error(struct bl_json_walk *w, const char *msg, const char *json, size_t len);

/* cjson gives both arrays and objects as tables: an array has exactly the
 * keys 1..n, an object only string keys; {} and [] are indistinguishable
 * (BL_JW_EMPTY, which passes for either). */
enum bl_jw_kind {
	BL_JW_NULL, BL_JW_BOOL, BL_JW_NUM, BL_JW_STR, BL_JW_ARRAY, BL_JW_OBJECT,
	BL_JW_EMPTY, BL_JW_OTHER,
};
enum bl_jw_kind bl_jw_kind(lua_State *L, int idx);
/* "a number", "an object" ... for messages. */
const char *bl_jw_kind_name(enum bl_jw_kind k);
bool bl_jw_is_null(lua_State *L, int idx);
bool bl_jw_is_object(lua_State *L, int idx);

/* Join a NULL-terminated list of names with ", " into buf. */
void bl_jw_join(char *buf, size_t n, const char *const *names);
/* Unknown keys are errors: the message lists the `allowed` ones. */
int bl_jw_check_keys(struct bl_json_walk *w, int idx, const char *where,
                     const char *const *allowed);
/* Push t[key] (raw); false when it is absent (nil pushed). */
bool bl_jw_field(lua_State *L, int idx, const char *key);

/* Optional fields: an absent key leaves *out alone and sets *present
 * (when not NULL) to false. Numbers must be finite and within lo..hi;
 * integers also whole. */
int bl_jw_num(struct bl_json_walk *w, int idx, const char *where, const char *key,
              double lo, double hi, double *out, bool *present);
int bl_jw_int(struct bl_json_walk *w, int idx, const char *where, const char *key,
              double lo, double hi, long long *out, bool *present);
int bl_jw_bool(struct bl_json_walk *w, int idx, const char *where, const char *key, bool *out);
/* "seed": a whole number up to 2^53, or a string of digits below 2^64. */
int bl_jw_seed(struct bl_json_walk *w, int idx, const char *where, uint64_t *out);
/* Push t[key] if it is an array and set *pushed; returns its length (0
 * when absent, with nothing pushed) or a negative status. */
int bl_jw_push_array(struct bl_json_walk *w, int idx, const char *where, const char *key,
                     bool *pushed);

#endif
