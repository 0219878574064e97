/* dbspool.c - the PostgreSQL sink's spool read back as batches of
 * INSERTs, and the acknowledged offset (db.h, db_parts.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/db.h"
#include "host/db_parts.h"

#define BATCH_ROWS 2000
#define BATCH_BYTES (1u << 20)

int bl_dbspool_open(struct bl_dbspool *sp, const char *path)
{
	memset(sp, 0, sizeof *sp);
	sp->held = -1;
	sp->f = fopen(path, "r");
	return sp->f ? 0 : -1;
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
	sp->off = off;
	sp->held = -1;
	if (sp->f)
		fseeko(sp->f, (off_t)off, SEEK_SET);
}

/* The next complete row ("table\t(values)\n") into sp->line; its length
 * with the newline, 0 at the end (a row still being written counts as
 * not there yet). */
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

static size_t table_len(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'))
		i++;
	return i > 0 && i < n && line[i] == '\t' && line[i + 1] == '(' ? i : 0;
}

int bl_dbspool_batch(struct bl_dbspool *sp, struct bl_buf *sql, uint64_t *end)
{
	char table[64] = "";
	int rows = 0;
	ssize_t n;

	sql->len = 0;
	while (rows < BATCH_ROWS && sql->len < BATCH_BYTES && (n = next_row(sp)) > 0) {
		size_t tl = table_len(sp->line, (size_t)n);
		if (tl == 0 || tl >= sizeof table)
			return -1;
		if (rows == 0) {
			memcpy(table, sp->line, tl);
			table[tl] = '\0';
			bl_buf_adds(sql, "INSERT INTO batlab.");
			bl_buf_adds(sql, table);
			bl_buf_adds(sql, " VALUES ");
		} else if (strncmp(sp->line, table, tl) != 0 || table[tl] != '\0') {
			sp->held = n; /* another table: the next batch's */
			break;
		} else {
			bl_buf_addc(sql, ',');
		}
		bl_buf_add(sql, sp->line + tl + 1, (size_t)n - tl - 2);
		sp->off += (uint64_t)n;
		rows++;
	}
	if (rows == 0)
		return 0;
	bl_buf_adds(sql, " ON CONFLICT DO NOTHING");
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
 * again, and their keys make them land once. */
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
