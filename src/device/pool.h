/* pool.h - the connected Batlabs: discovery of real ports (USB 04D8:000A),
 * explicit ports, virtual devices, plug and unplug events, lookup, and the
 * "active" device that single-device commands use.
 *
 * A device joins the pool once its connect operation has succeeded; it
 * leaves when its link closes. Devices are kept ordered by serial number
 * (the order Lexcelon's `global` commands and our cell assignment use).
 */
#ifndef BL_POOL_H
#define BL_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/loop.h"
#include "device/device.h"

struct bl_pool;

enum bl_pool_event {
	BL_POOL_PLUG = 1,    /* a device connected and joined */
	BL_POOL_UNPLUG,      /* a device left (it is freed after the callback) */
	BL_POOL_ACTIVE,      /* a device became the active one */
	BL_POOL_FAILED,      /* a port was found but did not connect */
	BL_POOL_RESET,       /* a device reset behind our back (reconnecting) */
};

typedef void (*bl_pool_fn)(struct bl_pool *p, enum bl_pool_event ev, struct bl_device *d,
                           const char *port, void *ud);

struct bl_pool_opts {
	bool scan;                  /* watch real USB ports */
	uint64_t scan_us;           /* rescan period; default 0.5 s */
	struct bl_device_opts dev;  /* for every device */
};

void bl_pool_opts_default(struct bl_pool_opts *o);

struct bl_pool *bl_pool_new(struct bl_loop *loop, const struct bl_pool_opts *opts);
/* Frees every device (without stopping channels: the caller does that). */
void bl_pool_free(struct bl_pool *p);
void bl_pool_on_event(struct bl_pool *p, bl_pool_fn fn, void *ud);

/* Open a port and connect (asynchronously). BL_ERR_BUSY / BL_ERR_NOTFOUND
 * with a message in err when the port cannot be opened. */
int bl_pool_add_port(struct bl_pool *p, const char *path, char *err, size_t errlen);
/* Add an open link (a virtual Batlab's, for one) and connect; the pool
 * owns the link from now on. */
int bl_pool_add_link(struct bl_pool *p, struct bl_link *link);
/* Run the loop until every device added so far has connected or failed
 * (or `timeout_us` passes). Returns the number of devices in the pool. */
int bl_pool_settle(struct bl_pool *p, uint64_t timeout_us);

size_t bl_pool_count(const struct bl_pool *p);
/* i-th device in serial-number order, NULL past the end. */
struct bl_device *bl_pool_device(const struct bl_pool *p, size_t i);
struct bl_device *bl_pool_find_serial(const struct bl_pool *p, uint32_t serial);
struct bl_device *bl_pool_find_port(const struct bl_pool *p, const char *port);
struct bl_device *bl_pool_active(const struct bl_pool *p);
/* Make a device active (it must be in the pool). */
int bl_pool_set_active(struct bl_pool *p, struct bl_device *d);
struct bl_loop *bl_pool_loop(const struct bl_pool *p);

/* Human-readable messages of plugs, unplugs, resets and silences ("Batlab
 * 1000 on sim0 connected"),
 * queued for a prompt to print. Returns a malloc'd string (caller frees)
 * or NULL when none is waiting. */
char *bl_pool_next_message(struct bl_pool *p);
bool bl_pool_has_message(const struct bl_pool *p);
/* fn runs after each message is queued (one at a time; NULL: none). */
typedef void (*bl_pool_message_fn)(struct bl_pool *p, void *ud);
void bl_pool_on_message(struct bl_pool *p, bl_pool_message_fn fn, void *ud);

#endif
