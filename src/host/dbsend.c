/* dbsend.c - a COPY spool sent over one PostgreSQL connection, batch by
 * batch, without blocking (db_parts.h): the sink drives it from the
 * event loop, `batlab db push` and the sink's close from poll(). */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "host/db.h"
#include "host/db_parts.h"

#define UNIQUE_VIOLATION "23505"
/* A batch is one transaction: large enough that the server's cost per
 * transaction (a commit waits for the WAL to reach the disk) and the
 * round trips vanish beside the rows, small enough that a batch sent
 * again (a lost acknowledgement) costs little and that its rows, held in
 * memory while it goes, stay a few megabytes. Its rows go to libpq a
 * chunk at a time, as the socket takes them. */
#define BATCH_ROWS 20000
#define BATCH_BYTES (4u << 20)
#define CHUNK_BYTES (64u << 10)
#define SAMPLES_ROOM (2 * BATCH_BYTES)
/* db-spool.sent is rewritten after a batch at most this often (a virtual
 * run sends a batch every few milliseconds; a rewrite costs an open, a
 * truncation, a write and a close), and when the sending stops. */
#define MARK_US 250000u

static void keep_error(struct bl_dbsend *sd, const char *e)
{
	size_t n;

	snprintf(sd->error, sizeof sd->error, "%s", e ? e : "?");
	n = strlen(sd->error);
	while (n > 0 && (sd->error[n - 1] == '\n' || sd->error[n - 1] == ' '))
		sd->error[--n] = '\0';
}

static int lost(struct bl_dbsend *sd)
{
	keep_error(sd, PQerrorMessage(sd->conn));
	return BL_DBSEND_LOST;
}

/* Out of memory gathering a batch is not the row's fault: dropped like a
 * lost connection, the rows go again from the last batch the server has. */
static int no_memory(struct bl_dbsend *sd)
{
	keep_error(sd, "out of memory gathering a batch");
	return BL_DBSEND_LOST;
}

void bl_dbsend_init(struct bl_dbsend *sd, PGconn *conn, struct bl_dbspool *rd, const char *dir,
                    uint64_t sent)
{
	struct bl_dbbatch bt[2];                  /* buffers kept across connections */
	struct bl_buf sql = sd->sql;

	memcpy(bt, sd->bt, sizeof bt);
	memset(sd, 0, sizeof *sd);
	memcpy(sd->bt, bt, sizeof bt);
	sd->bt[0].ready = sd->bt[1].ready = false;
	sd->sql = sql;
	sd->conn = conn;
	sd->rd = rd;
	sd->dir = dir;
	sd->sent = sd->marked = sent;
	bl_dbspool_seek(rd, sent);
}

int bl_dbsend_mark(struct bl_dbsend *sd)
{
	if (sd->sent == sd->marked)
		return BL_OK;
	sd->marked = sd->sent;
	sd->marked_us = bl_clock_monotonic_us();
	return bl_dbspool_mark(sd->dir, sd->sent);
}

void bl_dbsend_free(struct bl_dbsend *sd)
{
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < BL_DBSEND_TABLES; i++)
			bl_buf_free(&sd->bt[k].seg[i].data);
	bl_buf_free(&sd->sql);
}

/* The statements of a batch: a COPY into each of its tables, or (rows of
 * it may be there already) for each a COPY into a temporary table of its
 * shape and an INSERT of the rows not there yet; one simple query, so
 * one transaction. */
static void batch_sql(struct bl_dbsend *sd)
{
	const struct bl_dbbatch *bt = &sd->bt[sd->b];
	char sql[1024];

	sd->sql.len = 0;
	sd->sql.oom = false;
	for (int i = 0; i < bt->nseg; i++) {
		const char *t = bt->seg[i].table;
		if (strcmp(t, "samples") == 0)   /* an older batlab's spool */
			snprintf(sql, sizeof sql, "%s", BL_DB_STAGE_SAMPLES
			         " COPY pg_temp.batlab_stage_samples FROM STDIN;" BL_DB_FROM_STAGE_SAMPLES);
		else if (sd->staging)
			snprintf(sql, sizeof sql,
			         "CREATE TEMP TABLE IF NOT EXISTS batlab_stage_%s (LIKE batlab.%s) ON COMMIT DELETE ROWS;"
			         " COPY pg_temp.batlab_stage_%s FROM STDIN%s;"
			         " INSERT INTO batlab.%s SELECT * FROM pg_temp.batlab_stage_%s ON CONFLICT DO NOTHING;",
			         t, t, t, bt->seg[i].binary ? " WITH (FORMAT binary)" : "", t, t);
		else
			snprintf(sql, sizeof sql, "COPY batlab.%s FROM STDIN%s;", t,
			         bt->seg[i].binary ? " WITH (FORMAT binary)" : "");
		bl_buf_adds(&sd->sql, sql);
	}
	bl_buf_addc(&sd->sql, '\0');
}

/* The batch's buffer for rows of `table` (tl bytes) in the binary
 * format or in text, NULL when the batch has as many as it can hold. */
static struct bl_dbseg *segment(struct bl_dbbatch *bt, const char *table, size_t tl, bool binary)
{
	struct bl_dbseg *g;

	for (int i = 0; i < bt->nseg; i++)
		if (bt->seg[i].binary == binary && strncmp(bt->seg[i].table, table, tl) == 0 &&
		    bt->seg[i].table[tl] == '\0')
			return &bt->seg[i];
	if (bt->nseg == BL_DBSEND_TABLES)
		return NULL;
	g = &bt->seg[bt->nseg++];
	memcpy(g->table, table, tl);
	g->table[tl] = '\0';
	g->data.len = 0;
	g->data.oom = false; /* a failed growth left the block as it was */
	g->put = 0;
	g->binary = binary;
	/* the samples' block reserved whole at once: grown as the rows came,
	 * it cost about a tenth more of batlab's time in a virtual run
	 * (measured) */
	if (binary && g->data.cap < SAMPLES_ROOM)
		bl_buf_room(&g->data, SAMPLES_ROOM - 1); /* with its NUL: 8 MiB, not doubled to 16 */
	if (binary)
		bl_dbbin_header(&g->data);
	return g;
}

/* A row into the batch: a binary one as it is; a text sample (an older
 * spool's, or one a resumed run sent again from its files) re-encoded
 * in binary, or as text where binary cannot say it; any other as it
 * is. false: the batch has no room for another table. */
static bool add_row(struct bl_dbbatch *bt, const char *table, size_t tl, const char *data, size_t n,
                    bool binary)
{
	struct bl_dbseg *g;

	if (!binary && tl == 11 && memcmp(table, "sample_data", 11) == 0) {
		g = segment(bt, table, tl, true);
		if (g && bl_dbbin_row(&g->data, BL_DB_SAMPLE_TYPES, data, n) == 0)
			return true;
	}
	if (!(g = segment(bt, table, tl, binary)))
		return false;
	bl_buf_add(&g->data, data, n);
	return true;
}

/* More of the rows the spool has into bt (up to a batch's worth), by
 * table: a batch is gathered a little at a time while the one before it
 * is with the server. The rows added, -1 a bad row, or -2 out of memory. */
static int gather(struct bl_dbsend *sd, struct bl_dbbatch *bt)
{
	const char *table, *data;
	size_t tl, n;
	bool binary;
	int added = 0, r;

	if (!bt->ready) {
		bt->nseg = bt->rows = 0;
		bt->bytes = 0;
		bt->full = false;
		bt->start = sd->rd->off;
	}
	while (!bt->full && bt->rows < BATCH_ROWS && bt->bytes < BATCH_BYTES &&
	       (r = bl_dbspool_next(sd->rd, &table, &tl, &data, &n, &binary)) != 0) {
		if (r < 0)
			return r;               /* -1 a bad row, -2 no memory to read it */
		if (!add_row(bt, table, tl, data, n, binary)) {
			bl_dbspool_unread(sd->rd);
			bt->full = true;            /* the row starts the next batch */
			break;
		}
		bt->bytes += n;
		bt->rows++;
		added++;
	}
	for (int i = 0; i < bt->nseg; i++)
		if (bt->seg[i].data.oom)
			return -2;
	bt->end = sd->rd->off;
	bt->ready = bt->rows > 0;
	return added;
}

/* 1: a batch is on its way, 0: nothing to send, or a BL_DBSEND_*. */
static int start_batch(struct bl_dbsend *sd)
{
	struct bl_dbbatch *bt = &sd->bt[!sd->b];
	int g = gather(sd, bt);

	if (g == -2)
		return no_memory(sd);
	if (g < 0)
		return BL_DBSEND_BADROW;
	if (!bt->ready)
		return 0;
	for (int i = 0; i < bt->nseg; i++)
		if (bt->seg[i].binary)
			bl_dbbin_trailer(&bt->seg[i].data);
	sd->b = !sd->b;
	bt->ready = false;
	sd->cur = 0;
	batch_sql(sd);
	for (int i = 0; i < bt->nseg; i++)
		if (bt->seg[i].data.oom) /* a trailer that did not fit */
			return lost(sd);
	if (sd->sql.oom || !PQsendQuery(sd->conn, sd->sql.p))
		return lost(sd);
	sd->st = BL_DBSEND_START;
	sd->failed = sd->dup = false;
	return 1;
}

/* The server ended the COPY early (it refused a row): its results say why. */
static int copy_ended(struct bl_dbsend *sd)
{
	if (PQstatus(sd->conn) == CONNECTION_BAD)
		return lost(sd);
	sd->failed = true;
	keep_error(sd, PQerrorMessage(sd->conn));
	sd->st = BL_DBSEND_END;
	return 1;
}

/* The current table's rows, a chunk at a time, as long as the socket
 * takes them (0: wait until it takes more), then its COPY's end. */
static int put_data(struct bl_dbsend *sd)
{
	struct bl_dbseg *g = &sd->bt[sd->b].seg[sd->cur];
	int r;

	while (g->put < g->data.len) {
		size_t n = g->data.len - g->put;
		if (n > CHUNK_BYTES)
			n = CHUNK_BYTES;
		r = PQputCopyData(sd->conn, g->data.p + g->put, (int)n);
		if (r == 0)
			return 0;
		if (r < 0)
			return copy_ended(sd);
		g->put += n;
		if ((r = PQflush(sd->conn)) != 0)
			return r < 0 ? lost(sd) : 0;
	}
	r = PQputCopyEnd(sd->conn, NULL);
	if (r == 0)
		return 0;
	if (r < 0)
		return copy_ended(sd);
	sd->cur++;
	sd->st = BL_DBSEND_END;
	return 1;
}

/* The whole batch answered: on to the next, again through the temporary
 * table, or stop. */
static int batch_over(struct bl_dbsend *sd)
{
	sd->st = BL_DBSEND_IDLE;
	if (!sd->failed) {
		sd->sent = sd->bt[sd->b].end;
		sd->staging = false;
		sd->batches++;
		if (bl_clock_monotonic_us() - sd->marked_us >= MARK_US)
			bl_dbsend_mark(sd);
		return 1;
	}
	sd->bt[!sd->b].ready = false;    /* the spool is read again, from the batch or what was sent */
	if (sd->dup && !sd->staging) {
		sd->staging = true;
		bl_dbspool_seek(sd->rd, sd->bt[sd->b].start);
		return 1;
	}
	bl_dbspool_seek(sd->rd, sd->sent);
	return BL_DBSEND_REFUSED;
}

/* The results come in: 1 when the state moved on, 0 to wait for more. */
static int results(struct bl_dbsend *sd)
{
	PGresult *res;

	while (!PQisBusy(sd->conn)) {
		if (!(res = PQgetResult(sd->conn)))
			return batch_over(sd);
		switch (PQresultStatus(res)) {
		case PGRES_COPY_IN:
			PQclear(res);
			if (sd->cur >= sd->bt[sd->b].nseg) {         /* not a COPY of ours: cannot be */
				PQputCopyEnd(sd->conn, "unexpected COPY");
				sd->failed = true;
				keep_error(sd, "the server asked for more COPY data than the batch has");
				return 1;
			}
			sd->st = BL_DBSEND_DATA;
			return 1;
		case PGRES_COMMAND_OK:
			break;
		default:
			if (PQstatus(sd->conn) == CONNECTION_BAD) {
				PQclear(res);
				return lost(sd);
			}
			{
				const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				sd->dup = state && strcmp(state, UNIQUE_VIOLATION) == 0;
			}
			sd->failed = true;
			keep_error(sd, PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	return 0;
}

static int wanted(struct bl_dbsend *sd)
{
	int r = PQflush(sd->conn);

	if (r < 0)
		return lost(sd);
	return r ? BL_IO_READ | BL_IO_WRITE : BL_IO_READ;
}

int bl_dbsend_step(struct bl_dbsend *sd, unsigned events)
{
	int r = 0;

	if ((events & BL_IO_WRITE) && PQflush(sd->conn) < 0)
		return lost(sd);
	if ((events & BL_IO_READ) && (!PQconsumeInput(sd->conn) || PQstatus(sd->conn) == CONNECTION_BAD))
		return lost(sd);
	for (;;) {
		switch (sd->st) {
		case BL_DBSEND_IDLE:
			r = sd->hold ? 0 : start_batch(sd);
			break;
		case BL_DBSEND_DATA:
			r = put_data(sd);
			break;
		default:
			r = results(sd);
			/* the server has the batch: the next one meanwhile */
			if (r == 0 && sd->st == BL_DBSEND_END && !sd->hold && !sd->staging) {
				int g = gather(sd, &sd->bt[!sd->b]);
				r = g == -2 ? no_memory(sd) : g < 0 ? BL_DBSEND_BADROW : 0;
			}
		}
		if (r < 0)
			return r;
		if (r == 0)
			return wanted(sd);
	}
}

int bl_dbsend_drain(struct bl_dbsend *sd, double wait_s)
{
	int want, ms = (int)fmin(wait_s * 1000, 1e9), r;
	struct pollfd p;

	sd->hold = false;
	want = bl_dbsend_step(sd, 0);
	while (want >= 0 && sd->st != BL_DBSEND_IDLE) {
		p.fd = PQsocket(sd->conn);
		p.events = (short)(((want & BL_IO_READ) ? POLLIN : 0) | ((want & BL_IO_WRITE) ? POLLOUT : 0));
		p.revents = 0;
		r = poll(&p, 1, ms < 0 ? 0 : ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(sd->error, sizeof sd->error, "no answer from the server in %g s", wait_s);
			want = BL_DBSEND_LOST;
			break;
		}
		want = bl_dbsend_step(sd, ((p.revents & (POLLIN | POLLHUP | POLLERR)) ? BL_IO_READ : 0u) |
		                              ((p.revents & POLLOUT) ? BL_IO_WRITE : 0u));
	}
	bl_dbsend_mark(sd);
	return want < 0 ? want : BL_OK;
}
