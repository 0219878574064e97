/* pool.c - the connected Batlabs. See pool.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "device/pool.h"
#include "link/link.h"

#define MOD "pool"

enum member_state { CONNECTING, READY, DEAD };

struct member {
	struct bl_pool *pool;
	struct bl_device *dev;
	char port[128];
	enum member_state state;
};

struct message {
	struct message *next;
	char text[];
};

struct bl_pool {
	struct bl_loop *loop;
	struct bl_pool_opts opts;
	struct member **m;        /* READY members sorted by serial, others after */
	size_t n, cap;
	struct bl_device *active;
	struct bl_timer scan;
	struct bl_timer reap;
	bl_pool_fn fn;
	void *ud;
	struct message *msg_head, *msg_tail;
	bl_pool_message_fn msg_fn;
	void *msg_ud;
};

void bl_pool_opts_default(struct bl_pool_opts *o)
{
	o->scan = false;
	o->scan_us = 500000;
	bl_device_opts_default(&o->dev);
}

static void say(struct bl_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct bl_pool *p, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	struct message *m;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	BL_INFO(MOD, "%s", buf);
	m = malloc(sizeof *m + strlen(buf) + 1);
	if (!m)
		return;
	m->next = NULL;
	strcpy(m->text, buf);
	if (p->msg_tail)
		p->msg_tail->next = m;
	else
		p->msg_head = m;
	p->msg_tail = m;
	if (p->msg_fn)
		p->msg_fn(p, p->msg_ud);
}

void bl_pool_on_message(struct bl_pool *p, bl_pool_message_fn fn, void *ud)
{
	p->msg_fn = fn;
	p->msg_ud = ud;
}

bool bl_pool_has_message(const struct bl_pool *p)
{
	return p->msg_head != NULL;
}

char *bl_pool_next_message(struct bl_pool *p)
{
	struct message *m = p->msg_head;
	char *s;

	if (!m)
		return NULL;
	p->msg_head = m->next;
	if (!p->msg_head)
		p->msg_tail = NULL;
	s = strdup(m->text);
	free(m);
	return s;
}

static void emit(struct bl_pool *p, enum bl_pool_event ev, struct member *m)
{
	if (p->fn)
		p->fn(p, ev, m->dev, m->port, p->ud);
}

static uint32_t serial_of(const struct member *m)
{
	return bl_device_identity(m->dev)->serial;
}

/* READY members first, by serial number, then the rest in arrival order. */
static int member_cmp(const void *a, const void *b)
{
	const struct member *x = *(struct member *const *)a, *y = *(struct member *const *)b;

	if ((x->state == READY) != (y->state == READY))
		return x->state == READY ? -1 : 1;
	if (x->state == READY && serial_of(x) != serial_of(y))
		return serial_of(x) < serial_of(y) ? -1 : 1;
	return 0;
}

static void resort(struct bl_pool *p)
{
	/* qsort is not stable; the arrays are tiny, so insertion sort keeps
	 * arrival order among equals. */
	for (size_t i = 1; i < p->n; i++)
		for (size_t j = i; j > 0 && member_cmp(&p->m[j - 1], &p->m[j]) > 0; j--) {
			struct member *t = p->m[j];
			p->m[j] = p->m[j - 1];
			p->m[j - 1] = t;
		}
}

static void on_reap(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_pool *p = ud;
	size_t k = 0;

	(void)loop;
	(void)t;
	for (size_t i = 0; i < p->n; i++) {
		struct member *m = p->m[i];
		if (m->state == DEAD) {
			bl_device_free(m->dev);
			free(m);
		} else {
			p->m[k++] = m;
		}
	}
	p->n = k;
}

/* Devices are freed from a timer, never inside their own callbacks. */
static void kill_member(struct bl_pool *p, struct member *m)
{
	bool was_ready = m->state == READY;

	m->state = DEAD;
	if (was_ready) {
		say(p, "Batlab %u on %s disconnected", serial_of(m), m->port);
		emit(p, BL_POOL_UNPLUG, m);
	}
	if (p->active == m->dev) {
		p->active = NULL;
		resort(p);
		for (size_t i = 0; i < p->n; i++)
			if (p->m[i]->state == READY) {
				p->active = p->m[i]->dev;
				say(p, "Batlab %u on %s set as the active Batlab", serial_of(p->m[i]),
				    p->m[i]->port);
				emit(p, BL_POOL_ACTIVE, p->m[i]);
				break;
			}
	}
	resort(p);
	bl_timer_after(p->loop, &p->reap, 0, 0);
}

static void start_connect(struct member *m);

static void on_device_event(struct bl_device *d, enum bl_device_event ev, void *ud)
{
	struct member *m = ud;
	struct bl_pool *p = m->pool;

	(void)d;
	if (ev == BL_DEV_CLOSED && m->state != DEAD) {
		kill_member(p, m);
	} else if (ev == BL_DEV_RESET && m->state == READY) {
		say(p, "Batlab %u on %s reset; reconnecting", serial_of(m), m->port);
		emit(p, BL_POOL_RESET, m);
		start_connect(m);
	} else if (ev == BL_DEV_SILENT && m->state == READY) {
		say(p, "Batlab %u on %s does not answer", serial_of(m), m->port);
	} else if (ev == BL_DEV_RECOVERED && m->state == READY) {
		say(p, "Batlab %u on %s answers again", serial_of(m), m->port);
	} else if (ev == BL_DEV_GARBAGE && m->state == READY) {
		struct bl_device_stats st;
		bl_device_stats(d, &st);
		say(p, "Batlab %u on %s: bytes that were no packet discarded (%llu in all)", serial_of(m),
		    m->port, (unsigned long long)st.dropped_bytes);
	}
}

static void on_connected(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct member *m = ud;
	struct bl_pool *p = m->pool;
	bool first = m->state == CONNECTING;

	(void)d;
	(void)op;
	if (m->state == DEAD)
		return;
	if (status != BL_OK && !first) {
		/* a reconnect after a reset failed: the device leaves the pool
		 * the ordinary way (unplug event, a new active device) */
		BL_WARN(MOD, "%s: reconnect failed: %s", m->port, bl_strerror(status));
		kill_member(p, m);
		return;
	}
	if (status != BL_OK) {
		BL_WARN(MOD, "%s: connect failed: %s", m->port, bl_strerror(status));
		say(p, "Batlab on %s did not connect: %s", m->port, bl_strerror(status));
		emit(p, BL_POOL_FAILED, m);
		m->state = DEAD;
		resort(p);
		bl_timer_after(p->loop, &p->reap, 0, 0);
		return;
	}
	m->state = READY;
	resort(p);
	if (!first)
		return; /* a reconnect after a reset */
	say(p, "Batlab %u on %s connected%s", serial_of(m), m->port,
	    bl_device_identity(m->dev)->bootloader ? " (in its bootloader)" : "");
	emit(p, BL_POOL_PLUG, m);
	if (!p->active) {
		p->active = m->dev;
		say(p, "Batlab %u on %s set as the active Batlab", serial_of(m), m->port);
		emit(p, BL_POOL_ACTIVE, m);
	}
}

static void start_connect(struct member *m)
{
	if (!bl_op_connect(m->dev, on_connected, m))
		kill_member(m->pool, m);
}

static int add_link(struct bl_pool *p, struct bl_link *link, const char *port)
{
	struct member *m;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct member **nm = realloc(p->m, cap * sizeof *nm);
		if (!nm) {
			bl_link_close(link);
			return BL_ERR_MEM;
		}
		p->m = nm;
		p->cap = cap;
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		bl_link_close(link);
		return BL_ERR_MEM;
	}
	m->pool = p;
	snprintf(m->port, sizeof m->port, "%s", port);
	m->state = CONNECTING;
	m->dev = bl_device_new(p->loop, link, &p->opts.dev);
	if (!m->dev) {
		free(m);
		bl_link_close(link);
		return BL_ERR_MEM;
	}
	bl_device_on_event(m->dev, on_device_event, m);
	p->m[p->n++] = m;
	start_connect(m);
	return BL_OK;
}

static bool has_port(const struct bl_pool *p, const char *port)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->m[i]->state != DEAD && strcmp(p->m[i]->port, port) == 0)
			return true;
	return false;
}

int bl_pool_add_port(struct bl_pool *p, const char *path, char *err, size_t errlen)
{
	struct bl_link *link;
	int rc;

	if (has_port(p, path)) {
		snprintf(err, errlen, "%s: already open", path);
		return BL_ERR_BUSY;
	}
	rc = bl_link_open(path, &link, err, errlen);
	if (rc != BL_OK)
		return rc;
	return add_link(p, link, path);
}

int bl_pool_add_link(struct bl_pool *p, struct bl_link *link)
{
	return add_link(p, link, bl_link_name(link));
}

static void on_scan(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_pool *p = ud;
	char **paths = NULL;
	int n = bl_link_list_batlabs(&paths);
	char err[256];

	(void)loop;
	(void)t;
	for (int i = 0; i < n; i++) {
		if (has_port(p, paths[i]))
			continue;
		/* A port another program holds fails with BL_ERR_BUSY; it is
		 * tried again at the next scan. */
		if (bl_pool_add_port(p, paths[i], err, sizeof err) != BL_OK)
			BL_DEBUG(MOD, "%s", err);
	}
	if (n > 0)
		bl_link_list_free(paths, n);
}

struct bl_pool *bl_pool_new(struct bl_loop *loop, const struct bl_pool_opts *opts)
{
	struct bl_pool *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->loop = loop;
	if (opts)
		p->opts = *opts;
	else
		bl_pool_opts_default(&p->opts);
	bl_timer_init(&p->scan, on_scan, p);
	bl_timer_init(&p->reap, on_reap, p);
	if (p->opts.scan) {
		on_scan(loop, &p->scan, p);
		bl_timer_after(loop, &p->scan, p->opts.scan_us, p->opts.scan_us);
	}
	return p;
}

void bl_pool_free(struct bl_pool *p)
{
	char *s;

	if (!p)
		return;
	bl_timer_stop(p->loop, &p->scan);
	bl_timer_stop(p->loop, &p->reap);
	for (size_t i = 0; i < p->n; i++) {
		bl_device_free(p->m[i]->dev);
		free(p->m[i]);
	}
	free(p->m);
	while ((s = bl_pool_next_message(p)))
		free(s);
	free(p);
}

void bl_pool_on_event(struct bl_pool *p, bl_pool_fn fn, void *ud)
{
	p->fn = fn;
	p->ud = ud;
}

static bool none_connecting(void *ud)
{
	struct bl_pool *p = ud;

	for (size_t i = 0; i < p->n; i++)
		if (p->m[i]->state == CONNECTING)
			return false;
	return true;
}

int bl_pool_settle(struct bl_pool *p, uint64_t timeout_us)
{
	uint64_t deadline = timeout_us == BL_NEVER ? BL_NEVER : bl_loop_now(p->loop) + timeout_us;

	bl_loop_run_until(p->loop, none_connecting, p, deadline);
	return (int)bl_pool_count(p);
}

size_t bl_pool_count(const struct bl_pool *p)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n; i++)
		k += p->m[i]->state == READY;
	return k;
}

struct bl_device *bl_pool_device(const struct bl_pool *p, size_t i)
{
	/* READY members sit first, in serial order (resort keeps it so). */
	return i < bl_pool_count(p) ? p->m[i]->dev : NULL;
}

struct bl_device *bl_pool_find_serial(const struct bl_pool *p, uint32_t serial)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->m[i]->state == READY && serial_of(p->m[i]) == serial)
			return p->m[i]->dev;
	return NULL;
}

struct bl_device *bl_pool_find_port(const struct bl_pool *p, const char *port)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->m[i]->state == READY && strcmp(p->m[i]->port, port) == 0)
			return p->m[i]->dev;
	return NULL;
}

struct bl_device *bl_pool_active(const struct bl_pool *p)
{
	return p->active;
}

int bl_pool_set_active(struct bl_pool *p, struct bl_device *d)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->m[i]->state == READY && p->m[i]->dev == d) {
			p->active = d;
			emit(p, BL_POOL_ACTIVE, p->m[i]);
			return BL_OK;
		}
	return BL_ERR_NOTFOUND;
}

struct bl_loop *bl_pool_loop(const struct bl_pool *p)
{
	return p->loop;
}
