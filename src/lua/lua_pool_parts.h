/* lua_pool_parts.h - the Pool object's state, shared by the files of its
 * binding: lua_pool.c (the pool, its devices, the simulator hooks) and
 * lua_poolmsg.c (its messages). Internal to src/lua. */
#ifndef BL_LUA_POOL_PARTS_H
#define BL_LUA_POOL_PARTS_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "device/pool.h"
#include "host/session.h"
#include "lua/sched.h"

struct lpool {
	struct bl_session *s;
	bool owned;                 /* batlab.open made it: close frees it */
	bool closed;
	struct bl_sched *sched;
	const struct bl_clock *old_clock;
	struct bl_lua_device **devs;   /* attached Device objects */
	size_t n, cap;
	struct bl_wait_list msg_waiters;  /* tasks in pool:wait_messages */
};

/* The open pool at idx (raises for anything else or a closed one). */
struct lpool *bl_lua_check_pool(lua_State *L, int idx);

/* pool:messages() and pool:wait_messages([timeout]). */
int bl_lua_pool_messages(lua_State *L);
int bl_lua_pool_wait_messages(lua_State *L);
/* The pool's message hook (bl_pool_on_message, ud the lpool): wakes the
 * waiters. */
void bl_lua_pool_message_posted(struct bl_pool *p, void *ud);
/* At close: no hook, and the waiters end with "closed". */
void bl_lua_pool_messages_off(struct lpool *lp);

#endif
