/* lua_db.h - the PostgreSQL and MQTT sinks' bindings (lua_db.c,
 * lua_mqtt.c), opened into the batlab module. */
#ifndef BL_LUA_DB_H
#define BL_LUA_DB_H

#include <lua.h>

void bl_lua_open_db(lua_State *L);
void bl_lua_open_mqtt(lua_State *L);

#endif
