/* db.h - the PostgreSQL results sink: every row a run records (its run,
 * cells, steps, events, summaries and every sample) also goes to a
 * database, as a second sink beside the files (docs/database.md).
 *
 * Rows are first appended to a spool file in the run directory
 * (db-spool.sql: a header line, then one "table<TAB>row" line per row,
 * the row in COPY text format, or for a sample "\1table<TAB>" and the
 * row as a tuple of COPY's binary format, in the order they were
 * recorded); a
 * sender on the event loop sends the spool in order, a batch at a time
 * (the rows there, up to a limit, gathered by table: a COPY ... FROM
 * STDIN into each table, the batch one transaction), over a non-blocking libpq
 * connection whose socket the loop watches. What the server
 * acknowledged is kept as a byte offset in db-spool.sent. Every table
 * has a natural key (run, cell, sequence number): a batch sent again
 * (the connection dropped before its answer came) fails on a key that
 * is there already, and is then sent through a temporary table and
 * INSERT ... ON CONFLICT DO NOTHING, so it lands once: the rows reach
 * the database in order and exactly once, whether the server was there
 * all along, came back mid-run, or only sees them through `batlab db
 * push RUN_DIR` later (which also sends a spool of an older batlab, of
 * "table<TAB>(SQL values)" lines, as INSERTs).
 *
 * Nothing on the sample path blocks: appending is a buffered write; the
 * connection is retried at most once a second (of real time) while rows
 * arrive. Only bl_dbsink_close, at the end of a run, waits for the rest
 * to be sent (at most a given time without an answer).
 */
#ifndef BL_DB_H
#define BL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "device/channel.h"
#include "host/csv.h"

#define BL_DB_SCHEMA_VERSION 4
#define BL_DB_SPOOL "db-spool.sql"
#define BL_DB_SENT "db-spool.sent"

struct bl_dbsink;

struct bl_dbsink_stats {
	uint64_t rows;          /* appended to the spool */
	uint64_t sent_bytes, spool_bytes;
	bool connected;
	char error[256];        /* the last trouble, "" if none */
};

/* Open (create or append to) the spool in `dir` and start connecting to
 * `conninfo` (a postgresql:// URL or key=value string). A server that is
 * not there is no error: rows wait in the spool. NULL with a message in
 * err when the spool cannot be written. */
struct bl_dbsink *bl_dbsink_open(struct bl_loop *loop, const char *conninfo, const char *dir,
                                 char *err, size_t errlen);
/* Append one row: `values` is its fields in the table's column order,
 * in COPY text format (bl_copy_* below build it). */
int bl_dbsink_row(struct bl_dbsink *s, const char *table, const char *values, size_t n);
/* Append one row as a tuple of COPY's binary format (host/db_parts.h:
 * bl_dbbin_fields and the fields after it). */
int bl_dbsink_binrow(struct bl_dbsink *s, const char *table, const char *tuple, size_t n);
void bl_dbsink_stats(const struct bl_dbsink *s, struct bl_dbsink_stats *out);
/* Send what is left, waiting at most wait_s seconds for the server, and
 * free. Returns the bytes of spool left unsent (0: all in the database);
 * msg says why when not. NULL ok. */
uint64_t bl_dbsink_close(struct bl_dbsink *s, double wait_s, char *msg, size_t msglen);

/* ---- blocking helpers for the CLI (db.c) --------------------------------- */

/* A spool read through once (batlab resume, dbspool.c): fn gets each
 * complete row in order, its table (tl bytes, not terminated) and its
 * data: COPY text without its newline, or (binary) a binary tuple; a
 * non-zero return stops the reading. BL_OK, BL_ERR_NOTFOUND (no spool),
 * BL_ERR_PROTO (not a spool this batlab writes, or a damaged row: what
 * came before it was read), BL_ERR_MEM (no memory for a row). */
typedef int (*bl_dbspool_fn)(void *ud, const char *table, size_t tl, const char *data, size_t n,
                             bool binary);
int bl_dbspool_scan(const char *path, bl_dbspool_fn fn, void *ud);
/* A sample_data row's cell (bl_db_series) and sequence number, its
 * first two fields; false when they are not two integers (dbbinary.c). */
bool bl_db_sample_key(const char *data, size_t n, bool binary, int64_t *series, int64_t *seq);

/* conninfo is a postgresql:// URL or key=value string libpq can read;
 * false with a message (not repeating it: it may hold a password). */
bool bl_db_conninfo_ok(const char *conninfo, char *msg, size_t msglen);

/* Send the unsent part of dir's spool (the `batlab db push` command).
 * Returns the rows sent (>= 0) or a negative bl_status with msg. */
long bl_db_push(const char *conninfo, const char *dir, double wait_s, char *msg, size_t msglen);
/* Create or upgrade the schema (docs/database.md). BL_OK or an error with
 * msg; *from gets the version found (0: none). */
int bl_db_init(const char *conninfo, int *from, char *msg, size_t msglen);
/* Run one query; each row's fields joined by tabs, rows by newlines, into
 * out. BL_OK or an error with msg. */
int bl_db_query(const char *conninfo, const char *sql, int nparams, const char *const *params,
                struct bl_buf *out, char *msg, size_t msglen);

/* A connection for reading (`batlab report --db`): opened blocking, each
 * query's rows handed to fn one at a time (values[j] NULL for SQL NULL),
 * so a caller can read a long table through a cursor in bounded memory. */
struct bl_dbconn;
typedef void (*bl_dbrow_fn)(void *arg, int nfields, const char *const *values);
struct bl_dbconn *bl_dbconn_open(const char *conninfo, double wait_s, char *msg, size_t msglen);
/* BL_OK (rows given to fn, which may be NULL for a command) or an error
 * with the server's message in msg. */
int bl_dbconn_query(struct bl_dbconn *c, const char *sql, int nparams, const char *const *params,
                    bl_dbrow_fn fn, void *arg, char *msg, size_t msglen);
void bl_dbconn_close(struct bl_dbconn *c);

/* ---- rows: COPY text fields ----------------------------------------------- */

/* A row is its fields in the table's column order, a tab between them. */
void bl_copy_text(struct bl_buf *b, const char *s);   /* escaped; NULL: \N */
void bl_copy_null(struct bl_buf *b);
void bl_copy_fixed(struct bl_buf *b, double v, int prec); /* as the CSV writes it; NaN: \N */
void bl_copy_int(struct bl_buf *b, long long v);
void bl_copy_time(struct bl_buf *b, double epoch);     /* a timestamptz, to the millisecond */

/* ---- a cell's number in batlab.sample_data (dbseries.c) ------------------- */

/* The first 8 bytes of MD5("RUN_ID\nCELL"), big-endian: what the
 * database's batlab.series(run_id, cell) gives (docs/database.md); 0
 * when it cannot be computed. */
int64_t bl_db_series(const char *run_id, const char *cell);
/* 0, or -1 when OpenSSL gives no MD5 (a FIPS-only configuration). */
int bl_md5(const void *data, size_t n, unsigned char out[16]);

/* ---- the samples of one channel (dbfeed.c) -------------------------------- */

struct bl_dbfeed;
/* Every sample of ch from now on becomes a row of batlab.sample_data for
 * (run_id, cell), with the labels last set, t0 and epoch as the
 * recorder's (recorder.h). */
struct bl_dbfeed *bl_dbfeed_open(struct bl_dbsink *s, struct bl_channel *ch, const char *run_id,
                                 const char *cell, double t0, double epoch);
void bl_dbfeed_label(struct bl_dbfeed *f, int step, const char *step_name, int cycle,
                     const char *cycle_kind);
uint64_t bl_dbfeed_rows(const struct bl_dbfeed *f);
/* A resumed run: the cell's rows go on after the `rows` it had, and the
 * step a crash cut short from what it had done (bl_recorder_carry). */
void bl_dbfeed_continue(struct bl_dbfeed *f, uint64_t rows);
void bl_dbfeed_carry(struct bl_dbfeed *f, double step_time, double charge_ah, double energy_wh);
void bl_dbfeed_close(struct bl_dbfeed *f);

#endif
