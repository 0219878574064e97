/* db_parts.h - what the PostgreSQL sink's files share (dbsink.c,
 * dbsend.c, dbspool.c, db.c). Internal to src/host. */
#ifndef BL_DB_PARTS_H
#define BL_DB_PARTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "host/csv.h"

/* The first line of a spool of COPY data (db.h): its rows are lines of
 * "TABLE<TAB>COPY text row", or a byte BL_DBSPOOL_BINARY, "TABLE<TAB>"
 * and a tuple of COPY's binary format (its field count says where it
 * ends). A spool of the format before (2) has only the lines; the sink
 * appending to one first rewrites its header to this one, of the same
 * length (so an older batlab refuses the spool instead of reading its
 * binary rows as damaged ones). A spool without either header is of
 * batlab before them: "TABLE<TAB>(SQL values)" lines, which `batlab db
 * push` still sends, as INSERTs. */
#define BL_DBSPOOL_HEADER "# batlab db-spool 3: TABLE<TAB>COPY text|bin\n"
#define BL_DBSPOOL_HEADER_2 "# batlab db-spool 2: TABLE<TAB>COPY text row\n"
_Static_assert(sizeof BL_DBSPOOL_HEADER == sizeof BL_DBSPOOL_HEADER_2, "a format-2 header is rewritten in place");
#define BL_DBSPOOL_BINARY '\1'

/* Rows of batlab.samples, as a spool of a batlab before schema version 4
 * has them (the run and the cell as texts; batlab.samples is a view
 * since): into a temporary table of that shape first (BL_DB_STAGE_SAMPLES),
 * then from it (BL_DB_FROM_STAGE_SAMPLES) into batlab.sample_data, and
 * into batlab.cells the cells the view joins them with, each row once. */
#define BL_DB_STAGE_SAMPLES \
	"CREATE TEMP TABLE IF NOT EXISTS batlab_stage_samples (LIKE batlab.samples) ON COMMIT DELETE ROWS;"
#define BL_DB_FROM_STAGE_SAMPLES \
	" INSERT INTO batlab.cells (run_id, cell) SELECT DISTINCT run_id, cell" \
	" FROM pg_temp.batlab_stage_samples ON CONFLICT DO NOTHING;" \
	" INSERT INTO batlab.sample_data SELECT batlab.series(run_id, cell), seq, at, t_s, step_time_s," \
	" cycle, cycle_kind, step, step_name, mode, voltage, current, temp_c, charge_ah, energy_wh," \
	" vcc, errors FROM pg_temp.batlab_stage_samples ON CONFLICT DO NOTHING;"

enum bl_dbspool_format { BL_DBSPOOL_EMPTY, BL_DBSPOOL_COPY, BL_DBSPOOL_INSERT, BL_DBSPOOL_UNKNOWN };

/* Reading the spool back from an offset, a batch at a time, through a
 * buffer of its own (a binary row may hold any byte: not lines). */
struct bl_dbspool {
	FILE *f;
	enum bl_dbspool_format format;
	int version;                /* of a COPY spool: 2 or 3 (its header) */
	uint64_t start;             /* where the first row starts (after the header) */
	uint64_t off;               /* where the next unread row starts: buf + pos */
	char *buf;
	size_t cap, pos, len;       /* buf[pos, len): read from the file, not taken yet */
	size_t last;                /* the length of the row taken last */
};

/* Open for reading and tell its format from its first line. */
int bl_dbspool_open(struct bl_dbspool *sp, const char *path);
void bl_dbspool_close(struct bl_dbspool *sp);
/* Read on from off (not before the first row). */
void bl_dbspool_seek(struct bl_dbspool *sp, uint64_t off);
/* The next complete row of a COPY spool: its table's name (tl bytes,
 * not terminated) and its data (n bytes): COPY text with its newline,
 * or (binary) a binary tuple; valid until the next call. 1: a row, 0:
 * none complete yet, -1: a bad row, -2: no memory to read it.
 * bl_dbspool_unread gives the row back for the next call. */
int bl_dbspool_next(struct bl_dbspool *sp, const char **table, size_t *tl, const char **data,
                    size_t *n, bool *binary);
void bl_dbspool_unread(struct bl_dbspool *sp);
/* Where the complete rows from off on end: *torn is set when what
 * follows them is a row cut short (a crash while it was written), not
 * a damaged one. */
uint64_t bl_dbspool_complete(struct bl_dbspool *sp, bool *torn);
/* The next batch of a spool of the INSERT format: one multi-row INSERT
 * ... ON CONFLICT DO NOTHING into sql, the offset after it in *end. 1:
 * a batch, 0: nothing complete to send, -1: a bad row. */
int bl_dbspool_insert_batch(struct bl_dbspool *sp, struct bl_buf *sql, uint64_t *end);
/* The offset the server has acknowledged (db-spool.sent), 0 if none. */
uint64_t bl_dbspool_marked(const char *dir);
int bl_dbspool_mark(const char *dir, uint64_t off);

/* The sender: a COPY spool's batches over one connection, in order, one
 * batch in flight. A batch is the rows the spool holds (up to a limit),
 * gathered by table, one COPY into each table, all in one transaction
 * (one simple query): a transaction per batch, not per run of rows of
 * one table, however the tables' rows interleave. A batch the tables
 * already have some rows of (unique violation: they landed before, their
 * acknowledgement was lost) is sent again through temporary tables and
 * INSERT ... ON CONFLICT DO NOTHING. Works on a non-blocking connection:
 * bl_dbsend_step is called when the socket is ready (or rows were added)
 * and says what to wait for. */
enum bl_dbsend_state { BL_DBSEND_IDLE, BL_DBSEND_START, BL_DBSEND_DATA, BL_DBSEND_END };

#define BL_DBSEND_TABLES 12

/* A batch's rows of one table in one format: its COPY's data. */
struct bl_dbseg {
	char table[64];
	bool binary;                /* in COPY's binary format (dbbinary.c) */
	struct bl_buf data;
	size_t put;                 /* how much of data libpq has taken */
};

/* A batch: its rows by table, from the spool's offset start to end. */
struct bl_dbbatch {
	int nseg, rows;
	size_t bytes;
	bool ready;                 /* rows gathered, not sent yet */
	bool full;                  /* takes no more rows */
	uint64_t start, end;
	struct bl_dbseg seg[BL_DBSEND_TABLES];
};

struct bl_dbsend {
	PGconn *conn;
	struct bl_dbspool *rd;
	const char *dir;            /* where db-spool.sent is written */
	enum bl_dbsend_state st;
	bool hold;                  /* idle: no new batch yet (the sink gathers rows) */
	bool staging;               /* this batch goes through the temporary tables */
	bool failed;                /* a statement of the batch was refused */
	bool dup;                   /* ... with a unique violation */
	uint64_t sent;
	uint64_t marked, marked_us;  /* the offset in db-spool.sent, and when it was written */
	long batches;
	/* the batch going (bt[b]), and the next, gathered while the server
	 * works on the one going: the spool's rows are read and re-encoded
	 * then, not between two batches while the server waits */
	struct bl_dbbatch bt[2];
	int b, cur;                 /* cur: the table whose COPY is going */
	struct bl_buf sql;          /* the batch's statements */
	char error[256];
};

enum {
	BL_DBSEND_LOST = -1,        /* the connection is gone */
	BL_DBSEND_REFUSED = -2,     /* the server refused a batch (error says why) */
	BL_DBSEND_BADROW = -3,      /* the spool holds a row that is not one */
};

/* Start on conn (non-blocking) from rd's offset, which `sent` is. */
void bl_dbsend_init(struct bl_dbsend *sd, PGconn *conn, struct bl_dbspool *rd, const char *dir,
                    uint64_t sent);
/* Go on: `events` (BL_IO_READ | BL_IO_WRITE) are what the socket is
 * ready for (0 when rows were added). Returns the events to wait for
 * (BL_IO_READ at least; idle when st is BL_DBSEND_IDLE: no rows to send,
 * or `hold` set) or a negative BL_DBSEND_*. */
int bl_dbsend_step(struct bl_dbsend *sd, unsigned events);
/* Send the whole spool, waiting on the socket; at most wait_s seconds
 * without the server answering. BL_OK, or a BL_DBSEND_* (timeout:
 * BL_DBSEND_LOST). */
int bl_dbsend_drain(struct bl_dbsend *sd, double wait_s);
/* Write what was sent to db-spool.sent (after each batch it is written
 * at most every MARK_US: it is for a later run of batlab, which sends
 * again whatever came after it). */
int bl_dbsend_mark(struct bl_dbsend *sd);
void bl_dbsend_free(struct bl_dbsend *sd);

/* COPY's binary format (dbbinary.c): the header and trailer of the data,
 * and a spool row (COPY text, its newline or not) as a binary tuple of
 * the column types in `types` ('4' integer, '8' bigint, 'f' double
 * precision, 'T' timestamptz as bl_copy_time writes it, 't' text). 0,
 * or -1 when a field does not read as its type (b as it was). */
void bl_dbbin_header(struct bl_buf *b);
void bl_dbbin_trailer(struct bl_buf *b);
int bl_dbbin_row(struct bl_buf *b, const char *types, const char *row, size_t n);
/* The types of batlab.sample_data's columns. */
#define BL_DB_SAMPLE_TYPES "88Tff4t4ttffffff4"
/* A row built in the binary format: its number of fields, then each
 * field in order. The numbers are those of the text bl_copy_fixed and
 * bl_copy_time write (the CSV's): bl_dbbin_fixed(v, 4) is the double
 * that v's four decimals read as; NaN and infinities are NULL. */
void bl_dbbin_fields(struct bl_buf *b, unsigned n);
void bl_dbbin_null(struct bl_buf *b);
void bl_dbbin_int4(struct bl_buf *b, int32_t v);
void bl_dbbin_int8(struct bl_buf *b, int64_t v);
void bl_dbbin_fixed(struct bl_buf *b, double v, int prec);
void bl_dbbin_time(struct bl_buf *b, double epoch);
void bl_dbbin_text(struct bl_buf *b, const char *s);   /* NULL: NULL */
/* A binary tuple's length (from its field count), 0 when avail bytes do
 * not hold all of it yet, -1 when it is not one (more fields than a
 * table can have, a field longer than a spool row can be). */
#define BL_DBBIN_MAX_FIELDS 1600
#define BL_DBBIN_MAX_FIELD (1u << 24)
ssize_t bl_dbbin_tuple_len(const char *p, size_t avail);

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
