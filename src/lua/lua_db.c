/* lua_db.c - the PostgreSQL results sink in Lua (host/db.h).
 *
 *   local db = batlab.db_open("postgresql://lab/batlab", run_dir)  -- nil, err
 *   db:row("steps", { run_id, "A1", 1, ... }, n)    -- n values, nil = NULL;
 *        -- a value { ts = epoch } is a timestamp, { json = text } jsonb
 *   local feed = db:feed(ch, run_id, "A1", t0, epoch [, rows])  -- its samples
 *        -- (rows: a resumed cell's rows before, its seq goes on after them)
 *   feed:carry{ step_time = 60, charge_ah = -0.01, energy_wh = -0.04 }  -- a resumed step
 *   feed:label{ step = 1, step_name = "CHARGE", cycle = 1, cycle_kind = "cycle" }
 *   feed:close()
 *   db:stats()  -- { rows, connected, error, unsent }
 *   db:close(wait_s)  -- bytes left unsent, why
 *   batlab.db_check(url)  -- true | nil, why (not a URL libpq reads)
 *   batlab.db_init(url)  -- version found before, version now | nil, err
 *   batlab.db_push(url, run_dir [, wait_s])  -- batches sent | nil, err
 *   batlab.db_series(run_id, cell)  -- the cell's number in batlab.sample_data
 *   batlab.db_spool_scan(path [, fn])  -- { [series] = its last seq } of the spool's
 *        -- samples; fn(table, text) for each other row (COPY text) | nil, err
 *   batlab.db_query(url, sql [, { params } [, n]])  -- the rows as text (a tab between
 *        -- fields, a newline after each) | nil, err
 *   local c = batlab.db_connect(url [, wait_s])  -- nil, err
 *   c:query(sql [, { params } [, n]])  -- { {v1, v2, ...}, ... } (nil for NULL) | nil, err
 *   c:close()
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "host/db.h"
#include "lua/lua_db.h"
#include "lua/lua_devobj.h"

#define BL_LUA_DB "batlab.Db"
#define BL_LUA_DBFEED "batlab.DbFeed"
#define BL_LUA_DBCONN "batlab.DbConn"

struct lfeed;

struct ldb {
	struct bl_dbsink *s;        /* NULL once closed */
	struct lfeed *feeds;        /* open feeds, closed with the sink */
	struct bl_buf row;
};

struct lfeed {
	struct bl_dbfeed *f;        /* NULL once closed */
	struct ldb *db;
	struct lfeed *next, **prev;
};

static void feed_close(struct lfeed *lf)
{
	if (!lf->f)
		return;
	bl_dbfeed_close(lf->f);
	lf->f = NULL;
	*lf->prev = lf->next;
	if (lf->next)
		lf->next->prev = lf->prev;
}

static struct ldb *open_db(lua_State *L)
{
	struct ldb *d = luaL_checkudata(L, 1, BL_LUA_DB);

	if (!d->s)
		luaL_error(L, "the database sink is closed");
	return d;
}

static int l_db_open(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1), *dir = luaL_checkstring(L, 2);
	struct bl_loop *loop = bl_sched_loop(bl_sched_get(L));
	struct ldb *d = lua_newuserdatauv(L, sizeof *d, 0);
	char err[600];

	memset(d, 0, sizeof *d);
	luaL_setmetatable(L, BL_LUA_DB);
	d->s = bl_dbsink_open(loop, url, dir, err, sizeof err);
	if (!d->s)
		return bl_lua_fail(L, BL_ERR_IO, "%s", err);
	return 1;
}

/* One field of a row, in COPY text format. */
static void add_value(lua_State *L, struct bl_buf *b, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		bl_copy_null(b);
		break;
	case LUA_TBOOLEAN:
		bl_buf_adds(b, lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER: {
		double v = lua_tonumber(L, idx);
		/* a whole float too (1000.0 from JSON): COPY takes no decimals
		 * in an integer column */
		if (lua_isinteger(L, idx))
			bl_copy_int(b, (long long)lua_tointeger(L, idx));
		else if (v == floor(v) && fabs(v) < 9e15)
			bl_copy_int(b, (long long)v);
		else
			bl_copy_fixed(b, v, 6);
		break;
	}
	case LUA_TTABLE:
		if (lua_getfield(L, idx, "ts") == LUA_TNUMBER) {
			bl_copy_time(b, lua_tonumber(L, -1));
		} else if (lua_getfield(L, idx, "json") == LUA_TSTRING) {
			bl_copy_text(b, lua_tostring(L, -1));  /* the column is jsonb: the server parses it */
			lua_pop(L, 1);
		} else {
			luaL_error(L, "db:row: a table value is { ts = N } or { json = TEXT }");
		}
		lua_pop(L, 1);
		break;
	default:
		bl_copy_text(b, luaL_tolstring(L, idx, NULL));
		lua_pop(L, 1);
	}
}

static int l_db_row(lua_State *L)
{
	struct ldb *d = open_db(L);
	const char *table = luaL_checkstring(L, 2);
	lua_Integer n = luaL_checkinteger(L, 4);

	luaL_checktype(L, 3, LUA_TTABLE);
	for (const char *p = table; *p; p++)
		luaL_argcheck(L, (*p >= 'a' && *p <= 'z') || *p == '_', 2, "a table name");
	d->row.len = 0;
	for (lua_Integer i = 1; i <= n; i++) {
		if (i > 1)
			bl_buf_addc(&d->row, '\t');
		lua_rawgeti(L, 3, i);
		add_value(L, &d->row, lua_gettop(L));
		lua_pop(L, 1);
	}
	if (d->row.oom)
		return bl_lua_fail(L, BL_ERR_MEM, "out of memory");
	if (bl_dbsink_row(d->s, table, d->row.p, d->row.len) != BL_OK)
		return bl_lua_fail(L, BL_ERR_IO, "the database spool cannot be written");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_db_feed(lua_State *L)
{
	struct ldb *d = open_db(L);
	struct bl_channel *ch = bl_lua_check_chan(L, 2);
	const char *run = luaL_checkstring(L, 3), *cell = luaL_checkstring(L, 4);
	double t0 = luaL_checknumber(L, 5), epoch = luaL_optnumber(L, 6, 0);
	lua_Integer rows = luaL_optinteger(L, 7, 0);
	struct lfeed *lf;

	luaL_argcheck(L, rows >= 0, 7, "rows before must be >= 0");

	if (!ch)
		return bl_lua_fail(L, BL_ERR_CLOSED, "db:feed: the channel's device is detached");
	lf = lua_newuserdatauv(L, sizeof *lf, 1);
	memset(lf, 0, sizeof *lf);
	luaL_setmetatable(L, BL_LUA_DBFEED);
	lua_pushvalue(L, 1);            /* the sink lives as long as its feeds */
	lua_setiuservalue(L, -2, 1);
	lf->f = bl_dbfeed_open(d->s, ch, run, cell, t0, epoch);
	if (!lf->f)
		return bl_lua_fail(L, BL_ERR_MEM, "db:feed: no memory, or no MD5 in this OpenSSL for the cell's number");
	bl_dbfeed_continue(lf->f, (uint64_t)rows);
	lf->db = d;
	lf->next = d->feeds;
	if (lf->next)
		lf->next->prev = &lf->next;
	lf->prev = &d->feeds;
	d->feeds = lf;
	return 1;
}

static int l_db_stats(lua_State *L)
{
	struct ldb *d = luaL_checkudata(L, 1, BL_LUA_DB);
	struct bl_dbsink_stats st;

	if (!d->s) {
		lua_pushnil(L);
		return 1;
	}
	bl_dbsink_stats(d->s, &st);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)st.rows);
	lua_setfield(L, -2, "rows");
	lua_pushboolean(L, st.connected);
	lua_setfield(L, -2, "connected");
	lua_pushinteger(L, (lua_Integer)(st.spool_bytes - st.sent_bytes));
	lua_setfield(L, -2, "unsent");
	if (st.error[0]) {
		lua_pushstring(L, st.error);
		lua_setfield(L, -2, "error");
	}
	return 1;
}

static uint64_t db_close(struct ldb *d, double wait_s, char *msg, size_t msglen)
{
	uint64_t left;

	while (d->feeds)
		feed_close(d->feeds);
	left = bl_dbsink_close(d->s, wait_s, msg, msglen);
	d->s = NULL;
	bl_buf_free(&d->row);
	return left;
}

static int l_db_close(lua_State *L)
{
	struct ldb *d = luaL_checkudata(L, 1, BL_LUA_DB);
	double wait_s = luaL_optnumber(L, 2, 10);
	char msg[600] = "";
	uint64_t left;

	if (!d->s) {
		lua_pushinteger(L, 0);
		return 1;
	}
	left = db_close(d, wait_s, msg, sizeof msg);
	lua_pushinteger(L, (lua_Integer)left);
	if (left == 0)
		return 1;
	lua_pushstring(L, msg);
	return 2;
}

static int l_db_gc(lua_State *L)
{
	struct ldb *d = luaL_checkudata(L, 1, BL_LUA_DB);
	char msg[600];

	if (d->s)
		db_close(d, 1, msg, sizeof msg);
	return 0;
}

static struct lfeed *check_feed(lua_State *L)
{
	return luaL_checkudata(L, 1, BL_LUA_DBFEED);
}

static int l_feed_label(lua_State *L)
{
	struct lfeed *lf = check_feed(L);
	struct bl_lua_labels lb;

	bl_lua_check_labels(L, 2, &lb);
	if (lf->f)
		bl_dbfeed_label(lf->f, lb.step, lb.step_name, lb.cycle, lb.cycle_kind);
	return 0;
}

/* feed:carry{step_time =, charge_ah =, energy_wh =}: a resumed step's
 * rows go on from what it had done, as its CSV rows (rec:carry). */
static int l_feed_carry(lua_State *L)
{
	struct lfeed *lf = check_feed(L);
	double v[3];

	bl_lua_check_carry(L, 2, v);
	if (lf->f)
		bl_dbfeed_carry(lf->f, v[0], v[1], v[2]);
	return 0;
}

static int l_feed_rows(lua_State *L)
{
	struct lfeed *lf = check_feed(L);

	lua_pushinteger(L, lf->f ? (lua_Integer)bl_dbfeed_rows(lf->f) : 0);
	return 1;
}

static int l_feed_close(lua_State *L)
{
	feed_close(check_feed(L));
	return 0;
}

/* ---- blocking calls for the CLI ------------------------------------------- */

static int l_db_check(lua_State *L)
{
	char msg[300];

	if (!bl_db_conninfo_ok(luaL_checkstring(L, 1), msg, sizeof msg))
		return bl_lua_fail(L, BL_ERR_ARG, "%s", msg);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_db_init(lua_State *L)
{
	char msg[600];
	int from = 0;

	if (bl_db_init(luaL_checkstring(L, 1), &from, msg, sizeof msg) != BL_OK)
		return bl_lua_fail(L, BL_ERR_IO, "%s", msg);
	lua_pushinteger(L, from);
	lua_pushinteger(L, BL_DB_SCHEMA_VERSION);
	return 2;
}

static int l_db_series(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)bl_db_series(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
	return 1;
}

struct scan {
	lua_State *L;
	bool fn, failed;
};

/* A sample's number kept if it is its cell's highest so far (the table
 * at 3); any other row to the function at 2 (an error in it stops the
 * reading, the spool closed, and is raised after). */
static int scan_row(void *ud, const char *table, size_t tl, const char *data, size_t n, bool binary)
{
	struct scan *sc = ud;
	lua_State *L = sc->L;
	int64_t series, seq;

	if (tl == 11 && memcmp(table, "sample_data", 11) == 0) {
		if (bl_db_sample_key(data, n, binary, &series, &seq)) {
			if (lua_rawgeti(L, 3, (lua_Integer)series) != LUA_TNUMBER || lua_tointeger(L, -1) < seq) {
				lua_pushinteger(L, (lua_Integer)seq);
				lua_rawseti(L, 3, (lua_Integer)series);
			}
			lua_pop(L, 1);
		}
		return 0;
	}
	if (!sc->fn || binary)
		return 0;
	lua_pushvalue(L, 2);
	lua_pushlstring(L, table, tl);
	lua_pushlstring(L, data, n);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		sc->failed = true;
		return 1;
	}
	return 0;
}

static int l_db_spool_scan(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct scan sc = {L, !lua_isnoneornil(L, 2), false};
	int r;

	if (sc.fn)
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	lua_newtable(L);
	r = bl_dbspool_scan(path, scan_row, &sc);
	if (sc.failed)
		return lua_error(L);
	if (r != BL_OK)
		return bl_lua_fail(L, r, "%s: %s", path, r == BL_ERR_NOTFOUND ? "no such spool"
		                   : r == BL_ERR_MEM ? "out of memory"
		                   : "not a spool of this batlab, or a damaged row in it");
	lua_settop(L, 3);
	return 1;
}

static int l_db_push(lua_State *L)
{
	char msg[600];
	long r = bl_db_push(luaL_checkstring(L, 1), luaL_checkstring(L, 2), luaL_optnumber(L, 3, 10),
	                    msg, sizeof msg);

	if (r < 0)
		return bl_lua_fail(L, (int)r, "%s", msg);
	lua_pushinteger(L, r);
	return 1;
}

/* The parameters { ... } at idx (n of them, or its length; nil for NULL)
 * into params[16]; the strings stay on the stack. Returns their count. */
static int check_params(lua_State *L, int idx, const char **params)
{
	int n = 0;

	if (!lua_isnoneornil(L, idx)) {
		luaL_checktype(L, idx, LUA_TTABLE);
		n = (int)luaL_optinteger(L, idx + 1, luaL_len(L, idx));
		luaL_argcheck(L, n <= 16, idx, "at most 16 parameters");
		luaL_argcheck(L, n >= 0, idx + 1, "a parameter count");
		for (int i = 0; i < n; i++) {
			lua_rawgeti(L, idx, i + 1);
			params[i] = lua_isnil(L, -1) ? NULL : luaL_tolstring(L, -1, NULL);
		}
	}
	return n;
}

static int l_db_query(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1), *sql = luaL_checkstring(L, 2);
	const char *params[16];
	int n = check_params(L, 3, params);
	struct bl_buf out = {0};
	char msg[600];

	if (bl_db_query(url, sql, n, params, &out, msg, sizeof msg) != BL_OK) {
		bl_buf_free(&out);
		return bl_lua_fail(L, BL_ERR_IO, "%s", msg);
	}
	lua_pushlstring(L, out.p ? out.p : "", out.len);
	bl_buf_free(&out);
	return 1;
}

/* ---- a connection for reading (`batlab report --db`) ------------------------ */

struct lconn {
	struct bl_dbconn *c;        /* NULL once closed */
};

static int l_db_connect(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1);
	double wait_s = luaL_optnumber(L, 2, 10);
	struct lconn *lc = lua_newuserdatauv(L, sizeof *lc, 0);
	char msg[600];

	lc->c = NULL;
	luaL_setmetatable(L, BL_LUA_DBCONN);
	if (!(lc->c = bl_dbconn_open(url, wait_s, msg, sizeof msg)))
		return bl_lua_fail(L, BL_ERR_IO, "%s", msg);
	return 1;
}

/* Each row a table at the top of the stack, appended to the rows below. */
static void push_row(void *arg, int nfields, const char *const *values)
{
	lua_State *L = arg;

	lua_createtable(L, nfields, 0);
	for (int j = 0; j < nfields; j++) {
		if (values[j]) {
			lua_pushstring(L, values[j]);
			lua_rawseti(L, -2, j + 1);
		}
	}
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_conn_query(lua_State *L)
{
	struct lconn *lc = luaL_checkudata(L, 1, BL_LUA_DBCONN);
	const char *sql = luaL_checkstring(L, 2);
	const char *params[16];
	int n = check_params(L, 3, params);
	char msg[600];

	if (!lc->c)
		return luaL_error(L, "the database connection is closed");
	lua_newtable(L);
	if (bl_dbconn_query(lc->c, sql, n, params, push_row, L, msg, sizeof msg) != BL_OK)
		return bl_lua_fail(L, BL_ERR_IO, "%s", msg);
	return 1;
}

static int l_conn_close(lua_State *L)
{
	struct lconn *lc = luaL_checkudata(L, 1, BL_LUA_DBCONN);

	bl_dbconn_close(lc->c);
	lc->c = NULL;
	return 0;
}

static const luaL_Reg conn_meta[] = {{"__gc", l_conn_close}, {"__close", l_conn_close}, {NULL, NULL}};
static const luaL_Reg conn_methods[] = {{"query", l_conn_query}, {"close", l_conn_close}, {NULL, NULL}};

static const luaL_Reg db_meta[] = {{"__gc", l_db_gc}, {"__close", l_db_gc}, {NULL, NULL}};
static const luaL_Reg db_methods[] = {
	{"row", l_db_row}, {"feed", l_db_feed}, {"stats", l_db_stats}, {"close", l_db_close},
	{NULL, NULL},
};
static const luaL_Reg feed_meta[] = {{"__gc", l_feed_close}, {NULL, NULL}};
static const luaL_Reg feed_methods[] = {
	{"label", l_feed_label}, {"carry", l_feed_carry}, {"rows", l_feed_rows}, {"close", l_feed_close},
	{NULL, NULL},
};

void bl_lua_open_db(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"db_open", l_db_open}, {"db_check", l_db_check}, {"db_init", l_db_init}, {"db_push", l_db_push},
		{"db_query", l_db_query}, {"db_connect", l_db_connect}, {"db_series", l_db_series},
		{"db_spool_scan", l_db_spool_scan}, {NULL, NULL},
	};

	bl_lua_newclass(L, BL_LUA_DB, db_meta, db_methods);
	bl_lua_newclass(L, BL_LUA_DBFEED, feed_meta, feed_methods);
	bl_lua_newclass(L, BL_LUA_DBCONN, conn_meta, conn_methods);
	luaL_setfuncs(L, funcs, 0);
}
