/* lua_poolmsg.c - a pool's messages (a Batlab connected, unplugged,
 * reset, silent): taken when asked, or waited for. A run's watcher task
 * waits for the next one instead of looking every second, which in a
 * virtual run was a wake-up per virtual second for nothing. */
#include <stdlib.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_pool_parts.h"
#include "lua/lua_util.h"

/* pool:messages() -> the messages queued since the last call, oldest
 * first (an empty table when there are none). */
int bl_lua_pool_messages(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	char *m;
	lua_Integer i = 0;

	lua_newtable(L);
	while ((m = bl_pool_next_message(bl_session_pool(lp->s)))) {
		lua_pushstring(L, m);
		free(m);
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static int k_wait_messages(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status == BL_ERR_CLOSED)
		return bl_lua_fail(L, BL_ERR_CLOSED, "pool:wait_messages: the pool was closed");
	return bl_lua_pool_messages(L);
}

/* pool:wait_messages([timeout]) -> as pool:messages(), once there is at
 * least one or after timeout seconds (default: no limit). */
int bl_lua_pool_wait_messages(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	double timeout = luaL_optnumber(L, 2, -1);
	struct bl_wait local, *w;

	if (!lua_isnoneornil(L, 2) && !(timeout >= 0 && timeout < 1e9))
		return luaL_argerror(L, 2, "a timeout in seconds, 0 or more");
	if (bl_pool_has_message(bl_session_pool(lp->s)))
		return bl_lua_pool_messages(L);
	w = bl_wait_begin(L, &local, "pool:wait_messages");
	bl_wait_list_add(&lp->msg_waiters, w);
	if (timeout >= 0)
		bl_wait_after(w, (uint64_t)(timeout * 1e6 + 0.5), BL_OK);
	return bl_wait_yield(L, w, k_wait_messages);
}

static void wake_all(struct lpool *lp, int status)
{
	while (lp->msg_waiters.head)
		bl_wait_complete(lp->msg_waiters.head, status);
}

void bl_lua_pool_message_posted(struct bl_pool *p, void *ud)
{
	(void)p;
	wake_all(ud, BL_OK);
}

void bl_lua_pool_messages_off(struct lpool *lp)
{
	bl_pool_on_message(bl_session_pool(lp->s), NULL, NULL);
	wake_all(lp, BL_ERR_CLOSED);
}
