/* lua_gzfile.h - batlab.gzopen: files read and written through zlib. */
#ifndef BL_LUA_GZFILE_H
#define BL_LUA_GZFILE_H

#include <lua.h>

/* Add gzopen to the table on top of the stack (the batlab module). */
void bl_lua_open_gzfile(lua_State *L);

#endif
