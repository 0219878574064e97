/* resolve.h - a host name looked up without blocking the event loop.
 *
 * libpq and libmosquitto look a server's name up with getaddrinfo, which
 * blocks until the DNS answers (seconds when it is slow or away), and the
 * sinks connect from the loop that reads the Batlabs. So the sinks look
 * the name up first, here: glibc's getaddrinfo_a runs the lookup on its
 * own thread, its completion (a SIGEV_THREAD notification) writes a byte
 * to a pipe the loop watches, and the callback then runs on the loop with
 * the numeric addresses, which the sinks hand to their libraries (libpq's
 * hostaddr; libmosquitto's connect), so that nothing looks a name up
 * again. Numbers and socket paths need no lookup (bl_host_needs_lookup).
 */
#ifndef BL_RESOLVE_H
#define BL_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/loop.h"

#define BL_RESOLVE_MAX 8     /* addresses kept, in getaddrinfo's order */
#define BL_ADDR_LEN 46       /* INET6_ADDRSTRLEN */

struct bl_addrs {
	int n;                                   /* 0: the lookup failed */
	char a[BL_RESOLVE_MAX][BL_ADDR_LEN];
	char error[160];                         /* why, naming the host */
};

/* false for "", a path ("/run/postgresql"), an abstract socket ("@x")
 * and a numeric IPv4 or IPv6 address: what getaddrinfo answers at once. */
bool bl_host_needs_lookup(const char *host);

struct bl_resolve;
typedef void (*bl_resolve_fn)(void *ud, const struct bl_addrs *addrs);

/* Start looking host up (TCP addresses); fn runs on the loop when the
 * answer is there, once. NULL with a message in err when the lookup
 * cannot even start. */
struct bl_resolve *bl_resolve_start(struct bl_loop *loop, const char *host, bl_resolve_fn fn, void *ud,
                                    char *err, size_t errlen);
/* fn will not run; the lookup's thread finishes on its own. NULL ok. */
void bl_resolve_cancel(struct bl_resolve *r);

/* Wait at most wait_s for the answer and run fn with it (true), for a
 * sink that closes before its lookup answered and should still say why
 * it never connected. false: no answer yet (r still to cancel). */
bool bl_resolve_finish(struct bl_resolve *r, double wait_s);

/* For the CLI's blocking connects: the lookup, waiting at most wait_s.
 * Returns out->n (0 with out->error on failure or when time ran out). */
int bl_resolve_wait(const char *host, double wait_s, struct bl_addrs *out);

#endif
