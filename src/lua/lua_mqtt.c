/* lua_mqtt.c - live telemetry to an MQTT broker in Lua (host/mqtt.h).
 *
 *   local mq = batlab.mqtt_open{ host = "broker", port = 1883, node = "bench3",
 *       prefix = "batlab", username =, password =, cafile =, capath =,
 *       certfile =, keyfile = }                            -- nil, err
 *   mq:publish("1000/0/event", json [, retain])   -- false: dropped; held
 *        -- (in order, bounded) while the broker is away
 *   local feed = mq:feed(ch, "A1", serial, channel, t0) -- its samples
 *   feed:label{ step =, step_name =, cycle =, cycle_kind = }; feed:close()
 *   feed:carry{ step_time =, charge_ah =, energy_wh = }  -- a resumed step (rec:carry)
 *   mq:stats()  -- { published, dropped, connected, error }
 *   mq:close([wait_s])
 */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "host/mqtt.h"
#include "lua/lua_db.h"
#include "lua/lua_devobj.h"

#define BL_LUA_MQTT "batlab.Mqtt"
#define BL_LUA_MQTTFEED "batlab.MqttFeed"

struct lmfeed;

struct lmqtt {
	struct bl_mqtt *m;          /* NULL once closed */
	struct lmfeed *feeds;
};

struct lmfeed {
	struct bl_mqttfeed *f;      /* NULL once closed */
	struct lmfeed *next, **prev;
};

static void feed_close(struct lmfeed *lf)
{
	if (!lf->f)
		return;
	bl_mqttfeed_close(lf->f);
	lf->f = NULL;
	*lf->prev = lf->next;
	if (lf->next)
		lf->next->prev = lf->prev;
}

static const char *opt_string(lua_State *L, const char *key)
{
	const char *s;

	lua_getfield(L, 1, key);
	s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
	lua_pop(L, 1);  /* the table keeps the string alive */
	return s;
}

static int l_mqtt_open(lua_State *L)
{
	struct bl_mqtt_opts o;
	struct lmqtt *lm;
	char err[300];

	luaL_checktype(L, 1, LUA_TTABLE);
	memset(&o, 0, sizeof o);
	o.host = opt_string(L, "host");
	o.node = opt_string(L, "node");
	o.prefix = opt_string(L, "prefix");
	o.username = opt_string(L, "username");
	o.password = opt_string(L, "password");
	o.cafile = opt_string(L, "cafile");
	o.capath = opt_string(L, "capath");
	o.certfile = opt_string(L, "certfile");
	o.keyfile = opt_string(L, "keyfile");
	lua_getfield(L, 1, "port");
	o.port = (int)luaL_optinteger(L, -1, 0);
	lua_pop(L, 1);
	luaL_argcheck(L, o.host && o.node, 1, "host and node are needed");
	lm = lua_newuserdatauv(L, sizeof *lm, 0);
	memset(lm, 0, sizeof *lm);
	luaL_setmetatable(L, BL_LUA_MQTT);
	lm->m = bl_mqtt_open(bl_sched_loop(bl_sched_get(L)), &o, err, sizeof err);
	if (!lm->m)
		return bl_lua_fail(L, BL_ERR_ARG, "%s", err);
	return 1;
}

static struct lmqtt *open_mqtt(lua_State *L)
{
	struct lmqtt *lm = luaL_checkudata(L, 1, BL_LUA_MQTT);

	if (!lm->m)
		luaL_error(L, "the MQTT client is closed");
	return lm;
}

static int l_mqtt_publish(lua_State *L)
{
	struct lmqtt *lm = open_mqtt(L);
	size_t n;
	const char *sub = luaL_checkstring(L, 2), *payload = luaL_checklstring(L, 3, &n);

	lua_pushboolean(L, bl_mqtt_publish(lm->m, sub, payload, n,
	                                   lua_toboolean(L, 4) ? BL_MQTT_RETAINED : BL_MQTT_EVENT));
	return 1;
}

static int l_mqtt_feed(lua_State *L)
{
	struct lmqtt *lm = open_mqtt(L);
	struct bl_channel *ch = bl_lua_check_chan(L, 2);
	const char *cell = luaL_checkstring(L, 3);
	lua_Integer serial = luaL_checkinteger(L, 4), channel = luaL_checkinteger(L, 5);
	double t0 = luaL_checknumber(L, 6);
	struct lmfeed *lf;

	if (!ch)
		return bl_lua_fail(L, BL_ERR_CLOSED, "mqtt:feed: the channel's device is detached");
	lf = lua_newuserdatauv(L, sizeof *lf, 1);
	memset(lf, 0, sizeof *lf);
	luaL_setmetatable(L, BL_LUA_MQTTFEED);
	lua_pushvalue(L, 1);            /* the client lives as long as its feeds */
	lua_setiuservalue(L, -2, 1);
	lf->f = bl_mqttfeed_open(lm->m, ch, cell, (uint32_t)serial, (int)channel, t0);
	if (!lf->f)
		return bl_lua_fail(L, BL_ERR_MEM, "out of memory");
	lf->next = lm->feeds;
	if (lf->next)
		lf->next->prev = &lf->next;
	lf->prev = &lm->feeds;
	lm->feeds = lf;
	return 1;
}

static int l_mqtt_stats(lua_State *L)
{
	struct lmqtt *lm = open_mqtt(L);
	struct bl_mqtt_stats st;

	bl_mqtt_stats(lm->m, &st);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)st.published);
	lua_setfield(L, -2, "published");
	lua_pushinteger(L, (lua_Integer)st.dropped);
	lua_setfield(L, -2, "dropped");
	lua_pushboolean(L, st.connected);
	lua_setfield(L, -2, "connected");
	if (st.error[0]) {
		lua_pushstring(L, st.error);
		lua_setfield(L, -2, "error");
	}
	return 1;
}

static int l_mqtt_close(lua_State *L)
{
	struct lmqtt *lm = luaL_checkudata(L, 1, BL_LUA_MQTT);
	double wait_s = luaL_optnumber(L, 2, 2);

	if (!lm->m)
		return 0;
	while (lm->feeds)
		feed_close(lm->feeds);
	bl_mqtt_close(lm->m, wait_s);
	lm->m = NULL;
	return 0;
}

static int l_feed_label(lua_State *L)
{
	struct lmfeed *lf = luaL_checkudata(L, 1, BL_LUA_MQTTFEED);
	struct bl_lua_labels lb;

	bl_lua_check_labels(L, 2, &lb);
	if (lf->f)
		bl_mqttfeed_label(lf->f, lb.step, lb.step_name, lb.cycle, lb.cycle_kind);
	return 0;
}

/* feed:carry{step_time =, charge_ah =, energy_wh =}: a resumed step's
 * samples go on from what it had done, as its CSV rows (rec:carry). */
static int l_feed_carry(lua_State *L)
{
	struct lmfeed *lf = luaL_checkudata(L, 1, BL_LUA_MQTTFEED);
	double v[3];

	bl_lua_check_carry(L, 2, v);
	if (lf->f)
		bl_mqttfeed_carry(lf->f, v[0], v[1], v[2]);
	return 0;
}

static int l_feed_close(lua_State *L)
{
	feed_close(luaL_checkudata(L, 1, BL_LUA_MQTTFEED));
	return 0;
}

static const luaL_Reg mqtt_meta[] = {{"__gc", l_mqtt_close}, {NULL, NULL}};
static const luaL_Reg mqtt_methods[] = {
	{"publish", l_mqtt_publish}, {"feed", l_mqtt_feed}, {"stats", l_mqtt_stats},
	{"close", l_mqtt_close}, {NULL, NULL},
};
static const luaL_Reg feed_meta[] = {{"__gc", l_feed_close}, {NULL, NULL}};
static const luaL_Reg feed_methods[] = {
	{"label", l_feed_label}, {"carry", l_feed_carry}, {"close", l_feed_close}, {NULL, NULL},
};

void bl_lua_open_mqtt(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_MQTT, mqtt_meta, mqtt_methods);
	bl_lua_newclass(L, BL_LUA_MQTTFEED, feed_meta, feed_methods);
	lua_pushcfunction(L, l_mqtt_open);
	lua_setfield(L, -2, "mqtt_open");
}
