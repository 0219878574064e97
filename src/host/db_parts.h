/* db_parts.h - what the PostgreSQL sink's files share (dbsink.c,
 * dbspool.c, db.c). Internal to src/host. */
#ifndef BL_DB_PARTS_H
#define BL_DB_PARTS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "host/csv.h"

/* Reading the spool back from an offset, a batch at a time. */
struct bl_dbspool {
	FILE *f;
	uint64_t off;               /* where the next unread row starts */
	char *line;
	size_t cap;
	ssize_t held;               /* a row read but kept for the next batch (-1: none) */
};

int bl_dbspool_open(struct bl_dbspool *sp, const char *path);
void bl_dbspool_close(struct bl_dbspool *sp);
void bl_dbspool_seek(struct bl_dbspool *sp, uint64_t off);
/* The next batch: one INSERT of consecutive rows of one table into sql,
 * the offset after them in *end. 1: a batch, 0: nothing complete to
 * send, -1: a bad row. */
int bl_dbspool_batch(struct bl_dbspool *sp, struct bl_buf *sql, uint64_t *end);
/* The offset the server has acknowledged (db-spool.sent), 0 if none. */
uint64_t bl_dbspool_marked(const char *dir);
int bl_dbspool_mark(const char *dir, uint64_t off);

/* Connecting without blocking the loop (a host name is looked up off it,
 * host/resolve.h): fn gets the PGconn from PQconnectStartParams on the
 * name's addresses, to drive with PQconnectPoll, or NULL and why (the
 * name did not resolve: err names it). NULL when fn already ran (a number
 * or a socket: nothing to look up), else a dial to cancel (fn not run). */
struct bl_loop;
struct bl_dbdial;
typedef void (*bl_dbdial_fn)(void *ud, PGconn *c, const char *err);
struct bl_dbdial *bl_db_dial(struct bl_loop *loop, const char *conninfo, bl_dbdial_fn fn, void *ud);
void bl_db_dial_cancel(struct bl_dbdial *d);
/* PQconnectdbParams, the name looked up in at most wait_s: NULL with msg
 * when it did not resolve. Notices are kept off stderr. */
PGconn *bl_db_connect(const char *conninfo, double wait_s, char *msg, size_t msglen);

#endif
