/* bl.h - status codes and logging shared by every batlab module.
 *
 * Functions that can fail return a bl_status: BL_OK (0) or a negative code.
 * Functions that count return the count (>= 0) or a negative code. Library
 * code never prints; it logs through bl_log, whose handler the program sets.
 */
#ifndef BL_BL_H
#define BL_BL_H

#include <stdint.h>

enum bl_status {
	BL_OK          =  0,
	BL_ERR_ARG     = -1,  /* caller passed something invalid */
	BL_ERR_IO      = -2,  /* operating-system I/O failure */
	BL_ERR_TIMEOUT = -3,  /* the device did not answer in time */
	BL_ERR_PROTO   = -4,  /* malformed or unexpected bytes */
	BL_ERR_MEM     = -5,  /* out of memory */
	BL_ERR_DEVICE  = -6,  /* the device answered 257 (COMMAND_ERROR) */
	BL_ERR_BUSY    = -7,  /* port in use by another process */
	BL_ERR_CLOSED  = -8,  /* link closed / device unplugged */
	BL_ERR_VERIFY  = -9,  /* a read-back did not match what was written */
	BL_ERR_NOTFOUND = -10, /* no such name, file or device */
	BL_ERR_STATE   = -11, /* not possible in the current state */
	BL_ERR_SUPP    = -12, /* not supported (e.g. by this firmware) */
};

/* Short human text for a status code ("timeout", "device refused (257)"). */
const char *bl_strerror(int status);
/* Stable upper-case identifier for a status code ("ETIMEDOUT", ...), for
 * scripts that compare error codes. */
const char *bl_strcode(int status);

/* The program's exit codes (README.md, docs/batlab.1); the Lua runner
 * has them as batlab.EXIT_OK... */
enum bl_exit {
	BL_EXIT_OK = 0,          /* done; every cell passed */
	BL_EXIT_FAILED = 1,      /* a cell failed its verdict */
	BL_EXIT_USAGE = 2,       /* bad arguments, settings or files */
	BL_EXIT_DEVICE = 3,      /* device or communication error */
	BL_EXIT_INTERRUPTED = 130,
};

enum bl_log_level {
	BL_LOG_ERROR = 0,
	BL_LOG_WARN  = 1,
	BL_LOG_INFO  = 2,
	BL_LOG_DEBUG = 3,
	BL_LOG_SPEW  = 4,
};

typedef void (*bl_log_handler)(void *ud, enum bl_log_level level,
                               const char *module, const char *msg);

/* Replace the log handler (NULL restores the default: stderr, level <= WARN). */
void bl_log_set_handler(bl_log_handler fn, void *ud);
void bl_log_set_level(enum bl_log_level level);
void bl_log(enum bl_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define BL_ERROR(mod, ...) bl_log(BL_LOG_ERROR, mod, __VA_ARGS__)
#define BL_WARN(mod, ...)  bl_log(BL_LOG_WARN, mod, __VA_ARGS__)
#define BL_INFO(mod, ...)  bl_log(BL_LOG_INFO, mod, __VA_ARGS__)
#define BL_DEBUG(mod, ...) bl_log(BL_LOG_DEBUG, mod, __VA_ARGS__)

#define BL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
