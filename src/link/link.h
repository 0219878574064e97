/* link.h - byte links to a Batlab, behind one vtable.
 *
 *   serial  a real port through libserialport (serial.c)
 *   tty     any path libserialport refuses, e.g. a pseudo-terminal, through
 *           POSIX termios (tty.c)
 *   sim     an in-process virtual Batlab on the loop's clock (sim.c)
 *
 * All links are non-blocking. A watched link reads what arrives into a small
 * buffer of its own and calls on_data once per arrival (and once when it
 * closes); the callback reads with bl_link_read until it returns 0. Bytes
 * left unread stay buffered without further calls, and a full buffer pauses
 * reading, so a slow consumer can never make the loop spin.
 *
 * A link that hits end-of-file or an I/O error (unplug, the far end of a
 * pty gone) becomes closed: reads return buffered bytes, then
 * BL_ERR_CLOSED; writes return BL_ERR_CLOSED.
 *
 * Ports are opened exclusively (flock, plus TIOCEXCL on serial ports): a
 * second opener gets BL_ERR_BUSY and a message naming the path.
 */
#ifndef BL_LINK_H
#define BL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bl.h"
#include "core/fdio.h"
#include "core/loop.h"

#define BL_BATLAB_VID 0x04D8
#define BL_BATLAB_PID 0x000A
#define BL_LINK_BAUD 38400

struct bl_link;
struct bl_simdev;

/* New bytes arrived, or the link closed. */
typedef void (*bl_link_fn)(struct bl_link *link, void *ud);

/* ---- Opening ------------------------------------------------------------ */

/* Open a port by path: libserialport first, then termios for paths it
 * refuses. On failure returns a negative status (BL_ERR_BUSY: in use,
 * BL_ERR_NOTFOUND: no such file) and writes "PATH: reason" into err. */
int bl_link_open(const char *path, struct bl_link **out, char *err, size_t errlen);
/* Only through libserialport (38400 8N1 raw, no flow control). */
int bl_link_open_serial(const char *path, struct bl_link **out, char *err, size_t errlen);
/* Only through termios (O_NOCTTY, raw 8N1 38400, no flow control). */
int bl_link_open_tty(const char *path, struct bl_link **out, char *err, size_t errlen);
/* An in-process virtual Batlab read against `clock` (which must outlive the
 * link). With `own`, closing the link frees the device. `name` may be
 * NULL ("sim"). */
int bl_link_open_sim(struct bl_simdev *dev, bool own, const struct bl_clock *clock,
                     const char *name, struct bl_link **out);


/* Paths of the USB serial ports with the Batlab's VID:PID (04D8:000A),
 * sorted. Free with bl_link_list_free. Returns the count or a negative
 * status. */
int bl_link_list_batlabs(char ***paths);
void bl_link_list_free(char **paths, int count);

/* ---- The vtable (for link implementations) ------------------------------ */

#define BL_LINK_RXBUF 1024

struct bl_link_ops {
	/* Queue n bytes for the device: n, or a negative status. */
	int (*write)(struct bl_link *l, const uint8_t *data, size_t n);
	/* Take bytes from the device, bypassing the buffer: count, 0 if none
	 * now, BL_ERR_CLOSED. */
	int (*read)(struct bl_link *l, uint8_t *buf, size_t max);
	/* Bring the loop registration in line with the link's state (watched
	 * or not, buffer full or not, output pending, closed). */
	int (*rewatch)(struct bl_link *l);
	int (*fd)(const struct bl_link *l);             /* -1: none */
	uint64_t (*next_event_us)(const struct bl_link *l); /* BL_NEVER: unknown/none */
	void (*destroy)(struct bl_link *l);             /* release and free */
};

struct bl_link {
	const struct bl_link_ops *ops;
	const char *kind;        /* "serial", "tty", "sim" */
	char name[128];
	char error[256];         /* last error, "" if none */
	bool closed;
	struct bl_loop *loop;    /* set while watched */
	bl_link_fn on_data;
	void *ud;
	bool *alive;             /* cleared by close during a callback */
	size_t rx_len;
	uint8_t rx[BL_LINK_RXBUF];
};

/* ---- Using a link -------------------------------------------------------- */

/* Queue bytes for the device; returns n, or BL_ERR_CLOSED / BL_ERR_IO. */
static inline int bl_link_write(struct bl_link *l, const uint8_t *data, size_t n)
{
	return l->ops->write(l, data, n);
}

/* Read up to max bytes: the count, 0 when nothing is there now, or
 * BL_ERR_CLOSED once closed and drained. Never blocks. */
int bl_link_read(struct bl_link *l, uint8_t *buf, size_t max);

/* Call on_data(link, ud) from `loop` when bytes arrive or the link closes;
 * on_data NULL stops watching. */
int bl_link_watch(struct bl_link *l, struct bl_loop *loop, bl_link_fn on_data, void *ud);

/* Close and free (safe from inside the link's own callback). */
void bl_link_close(struct bl_link *l);

static inline bool bl_link_closed(const struct bl_link *l) { return l->closed; }
static inline const char *bl_link_name(const struct bl_link *l) { return l->name; }
static inline const char *bl_link_kind(const struct bl_link *l) { return l->kind; }
static inline const char *bl_link_error(const struct bl_link *l) { return l->error; }
/* The descriptor a loop polls, or -1 (sim links). */
static inline int bl_link_fd(const struct bl_link *l) { return l->ops->fd(l); }
/* When a sim link next has bytes (absolute, on its clock); BL_NEVER for
 * descriptor links. */
static inline uint64_t bl_link_next_event_us(const struct bl_link *l)
{
	return l->ops->next_event_us(l);
}

/* ---- Helpers for implementations ------------------------------------- */

/* Generic parts live in tty.c: the descriptor link is the base the
 * other kinds are built on. */
void bl_link_base_init(struct bl_link *l, const struct bl_link_ops *ops, const char *kind,
                       const char *name);
/* Record an error message (also logged at debug level). */
void bl_link_set_error(struct bl_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand new data (or the close) to the consumer. Returns false if the
 * callback closed the link: the caller must not touch it any more. */
bool bl_link_notify(struct bl_link *l);

/* The descriptor link core shared by tty and serial: adopt an open,
 * configured descriptor, take the exclusive lock (BL_ERR_BUSY if another
 * process holds it) and set it non-blocking. On close, release(ctx) runs
 * instead of close(fd). */
int bl_link_fd_adopt(int fd, const char *path, const char *kind,
                     void (*release)(int fd, void *ctx), void *ctx,
                     struct bl_link **out, char *err, size_t errlen);

#endif
