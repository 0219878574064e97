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

/* PQconnectStartParams / PQconnectdbParams on a URL or key=value string,
 * with a connect timeout, and notices kept off stderr. */
PGconn *bl_db_connect_start(const char *conninfo);
PGconn *bl_db_connect(const char *conninfo, double wait_s);

#endif
