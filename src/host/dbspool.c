/* dbspool.c - the PostgreSQL sink's spool read back as batches (COPY
 * data, or the INSERTs of a spool of the older format), and the
 * acknowledged offset (db.h, db_parts.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/db.h"
#include "host/db_parts.h"

#define INSERT_ROWS 2000
#define INSERT_BYTES (1u << 20)

static size_t table_len(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'))
		i++;
	return i > 0 && i + 1 < n && line[i] == '\t' ? i : 0;
}

/* The format, from the first line (complete or not: the sink may be
 * writing it). */
static void detect(struct bl_dbspool *sp)
{
	static const char hdr[] = BL_DBSPOOL_HEADER;
	char head[sizeof hdr];
	size_t n = fread(head, 1, sizeof hdr - 1, sp->f), tl;

	sp->format = BL_DBSPOOL_EMPTY;
	if (n == 0)
		return;
	if (n == sizeof hdr - 1 && memcmp(head, hdr, n) == 0) {
		sp->format = BL_DBSPOOL_COPY;
		sp->start = n;
		return;
	}
	tl = table_len(head, n);
	sp->format = tl > 0 && head[tl + 1] == '(' ? BL_DBSPOOL_INSERT : BL_DBSPOOL_UNKNOWN;
}

int bl_dbspool_open(struct bl_dbspool *sp, const char *path)
{
	memset(sp, 0, sizeof *sp);
	sp->held = -1;
	sp->f = fopen(path, "r");
	if (!sp->f)
		return -1;
	setvbuf(sp->f, NULL, _IOFBF, 64u << 10);   /* read back megabytes: few reads */
	detect(sp);
	bl_dbspool_seek(sp, 0);
	return 0;
}

void bl_dbspool_close(struct bl_dbspool *sp)
{
	if (sp->f)
		fclose(sp->f);
	free(sp->line);
	memset(sp, 0, sizeof *sp);
	sp->held = -1;
}

void bl_dbspool_seek(struct bl_dbspool *sp, uint64_t off)
{
	if (sp->format == BL_DBSPOOL_EMPTY && sp->f) {
		/* the sink writes the header first: look again */
		rewind(sp->f);
		detect(sp);
	}
	sp->off = off < sp->start ? sp->start : off;
	sp->held = -1;
	if (sp->f)
		fseeko(sp->f, (off_t)sp->off, SEEK_SET);
}

/* The next complete row into sp->line; its length with the newline, 0
 * at the end (a row still being written counts as not there yet). */
static ssize_t next_row(struct bl_dbspool *sp)
{
	ssize_t n;

	if (sp->held >= 0) {
		n = sp->held;
		sp->held = -1;
		return n;
	}
	clearerr(sp->f);
	n = getline(&sp->line, &sp->cap, sp->f);
	if (n <= 0)
		return 0;
	if (sp->line[n - 1] != '\n') {
		fseeko(sp->f, (off_t)sp->off, SEEK_SET);
		return 0;
	}
	return n;
}

/* The next row of the batch in `table` (set by the first): its table
 * name's length, 0 at the end of the batch, -1 a bad row. */
static ssize_t batch_row(struct bl_dbspool *sp, char *table, int rows, ssize_t *len)
{
	ssize_t n = next_row(sp);
	size_t tl;

	if (n <= 0)
		return 0;
	tl = table_len(sp->line, (size_t)n);
	if (tl == 0 || tl >= 64)
		return -1;
	if (rows == 0) {
		memcpy(table, sp->line, tl);
		table[tl] = '\0';
	} else if (strncmp(sp->line, table, tl) != 0 || table[tl] != '\0') {
		sp->held = n; /* another table: the next batch's */
		return 0;
	}
	*len = n;
	return (ssize_t)tl;
}

int bl_dbspool_next(struct bl_dbspool *sp, const char **table, size_t *tl, const char **data,
                    size_t *n)
{
	ssize_t len;
	size_t t;

	if (sp->format != BL_DBSPOOL_COPY)
		return sp->format == BL_DBSPOOL_EMPTY ? 0 : -1;
	if ((len = next_row(sp)) <= 0)
		return 0;
	t = table_len(sp->line, (size_t)len);
	if (t == 0 || t >= 64)
		return -1;
	*table = sp->line;
	*tl = t;
	*data = sp->line + t + 1;
	*n = (size_t)len - t - 1;
	sp->last = len;
	sp->off += (uint64_t)len;
	return 1;
}

void bl_dbspool_unread(struct bl_dbspool *sp)
{
	sp->held = sp->last;
	sp->off -= (uint64_t)sp->last;
}

int bl_dbspool_insert_batch(struct bl_dbspool *sp, struct bl_buf *sql, uint64_t *end)
{
	char table[64] = "";
	int rows = 0;
	ssize_t tl, n;

	sql->len = 0;
	while (rows < INSERT_ROWS && sql->len < INSERT_BYTES && (tl = batch_row(sp, table, rows, &n)) != 0) {
		if (tl < 0 || sp->line[tl + 1] != '(' || n < tl + 3 || sp->line[n - 2] != ')')
			return -1;
		if (rows == 0 && strcmp(table, "samples") == 0) {
			bl_buf_adds(sql, BL_DB_STAGE_SAMPLES "INSERT INTO pg_temp.batlab_stage_samples VALUES ");
		} else if (rows == 0) {
			bl_buf_adds(sql, "INSERT INTO batlab.");
			bl_buf_adds(sql, table);
			bl_buf_adds(sql, " VALUES ");
		} else {
			bl_buf_addc(sql, ',');
		}
		bl_buf_add(sql, sp->line + tl + 1, (size_t)(n - tl - 2));
		sp->off += (uint64_t)n;
		rows++;
	}
	if (rows == 0)
		return 0;
	bl_buf_adds(sql, strcmp(table, "samples") == 0 ? ";" BL_DB_FROM_STAGE_SAMPLES : " ON CONFLICT DO NOTHING");
	bl_buf_addc(sql, '\0');
	*end = sp->off;
	return sql->oom ? -1 : 1;
}

uint64_t bl_dbspool_marked(const char *dir)
{
	char path[600];
	uint64_t off = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/" BL_DB_SENT, dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%" SCNu64, &off) != 1)
		off = 0;
	fclose(f);
	return off;
}

/* Rewritten after every batch (no fsync, no rename): a mark lost or
 * torn by a crash reads as a smaller offset, which only sends rows
 * again, and the sender makes them land once. */
int bl_dbspool_mark(const char *dir, uint64_t off)
{
	char path[600];
	FILE *f;
	int r;

	snprintf(path, sizeof path, "%s/" BL_DB_SENT, dir);
	f = fopen(path, "w");
	if (!f)
		return BL_ERR_IO;
	r = fprintf(f, "%020" PRIu64 "\n", off) < 0;
	r |= fclose(f) != 0;
	return r ? BL_ERR_IO : BL_OK;
}
