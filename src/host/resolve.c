/* resolve.c - host names looked up off the event loop (resolve.h). */
#define _GNU_SOURCE /* getaddrinfo_a */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "core/bl.h"
#include "host/resolve.h"

/* Owned twice: by its caller until the answer is taken or the lookup
 * cancelled, and by the lookup until its notification has written the
 * pipe (glibc's thread holds the gaicb until then). The last to let go
 * frees it, so a caller may walk away from a lookup still running. */
struct bl_resolve {
	atomic_int refs;
	struct bl_loop *loop;
	struct bl_io io;
	int fds[2];                  /* the notification writes [1], the loop reads [0] */
	struct gaicb cb;
	struct gaicb *list[1];
	struct addrinfo hints;
	struct sigevent sev;
	bl_resolve_fn fn;
	void *ud;
	char host[256];
};

bool bl_host_needs_lookup(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (!host || !host[0] || host[0] == '/' || host[0] == '@')
		return false;
	return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

static void unref(struct bl_resolve *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	close(r->fds[0]);
	close(r->fds[1]);
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	free(r);
}

/* On glibc's thread: the lookup is over. */
static void notified(union sigval v)
{
	struct bl_resolve *r = v.sival_ptr;
	char b = 1;

	if (write(r->fds[1], &b, 1) < 0) {
		/* a full pipe already says it */
	}
	unref(r);
}

/* The answer of a finished lookup. */
static void collect(struct bl_resolve *r, struct bl_addrs *out)
{
	int rc = gai_error(&r->cb);

	memset(out, 0, sizeof *out);
	if (rc != 0) {
		snprintf(out->error, sizeof out->error, "cannot resolve the host name '%.80s': %s", r->host,
		         gai_strerror(rc));
		return;
	}
	for (struct addrinfo *ai = r->cb.ar_result; ai && out->n < BL_RESOLVE_MAX; ai = ai->ai_next) {
		char *a = out->a[out->n];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, a, BL_ADDR_LEN, NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		bool seen = false;
		for (int i = 0; i < out->n; i++)
			seen = seen || strcmp(out->a[i], a) == 0;
		if (!seen)
			out->n++;
	}
	if (out->n == 0)
		snprintf(out->error, sizeof out->error, "the host name '%.80s' has no address", r->host);
}

static struct bl_resolve *start(const char *host, char *err, size_t errlen)
{
	struct bl_resolve *r = calloc(1, sizeof *r);
	int rc;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (pipe2(r->fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "cannot look '%.80s' up: %s", host, strerror(errno));
		free(r);
		return NULL;
	}
	snprintf(r->host, sizeof r->host, "%s", host);
	r->hints.ai_socktype = SOCK_STREAM;
	r->hints.ai_flags = AI_ADDRCONFIG;
	r->cb.ar_name = r->host;
	r->cb.ar_request = &r->hints;
	r->list[0] = &r->cb;
	r->sev.sigev_notify = SIGEV_THREAD;
	r->sev.sigev_notify_function = notified;
	r->sev.sigev_value.sival_ptr = r;
	atomic_init(&r->refs, 2);
	rc = getaddrinfo_a(GAI_NOWAIT, r->list, 1, &r->sev);
	if (rc != 0) {
		snprintf(err, errlen, "cannot look '%.80s' up: %s", host, gai_strerror(rc));
		atomic_store(&r->refs, 1);
		unref(r);
		return NULL;
	}
	return r;
}

static void on_io(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct bl_resolve *r = ud;
	struct bl_addrs out;
	char b;

	(void)io;
	(void)events;
	if (read(r->fds[0], &b, 1) != 1)
		return; /* not yet */
	bl_io_stop(loop, &r->io);
	collect(r, &out);
	r->fn(r->ud, &out);
	unref(r);
}

struct bl_resolve *bl_resolve_start(struct bl_loop *loop, const char *host, bl_resolve_fn fn, void *ud,
                                    char *err, size_t errlen)
{
	struct bl_resolve *r = start(host, err, errlen);

	if (!r)
		return NULL;
	r->loop = loop;
	r->fn = fn;
	r->ud = ud;
	bl_io_init(&r->io, r->fds[0], on_io, r);
	if (bl_io_start(loop, &r->io, BL_IO_READ) < 0) {
		snprintf(err, errlen, "cannot look '%.80s' up: the loop cannot watch it", host);
		unref(r);  /* the lookup's own reference frees it when it ends */
		return NULL;
	}
	return r;
}

void bl_resolve_cancel(struct bl_resolve *r)
{
	if (!r)
		return;
	if (r->io.active)
		bl_io_stop(r->loop, &r->io);
	unref(r);
}

bool bl_resolve_finish(struct bl_resolve *r, double wait_s)
{
	struct pollfd p = {.fd = r->fds[0], .events = POLLIN};

	if (poll(&p, 1, wait_s <= 0 ? 0 : (int)(wait_s * 1000) + 1) != 1)
		return false;
	on_io(r->loop, &r->io, BL_IO_READ, r);
	return true;
}

int bl_resolve_wait(const char *host, double wait_s, struct bl_addrs *out)
{
	struct bl_resolve *r = start(host, out->error, sizeof out->error);
	struct pollfd p;

	if (!r) {
		out->n = 0;
		return 0;
	}
	p.fd = r->fds[0];
	p.events = POLLIN;
	if (poll(&p, 1, wait_s <= 0 ? 0 : (int)(wait_s * 1000) + 1) == 1) {
		collect(r, out);
	} else {
		memset(out, 0, sizeof *out);
		snprintf(out->error, sizeof out->error, "no answer in %.0f s looking the host name '%.80s' up",
		         wait_s, host);
	}
	unref(r);
	return out->n;
}
