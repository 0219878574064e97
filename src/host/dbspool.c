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

#define READ_CHUNK (64u << 10)

/* The format, from the first line (complete or not: the sink may be
 * writing it). */
static void detect(struct bl_dbspool *sp)
{
	static const char hdr[] = BL_DBSPOOL_HEADER, hdr2[] = BL_DBSPOOL_HEADER_2;
	char head[sizeof hdr];
	size_t n, tl;

	rewind(sp->f);
	n = fread(head, 1, sizeof head - 1, sp->f);
	sp->format = BL_DBSPOOL_EMPTY;
	if (n == 0)
		return;
	if (n >= sizeof hdr - 1 && (memcmp(head, hdr, sizeof hdr - 1) == 0 || memcmp(head, hdr2, sizeof hdr2 - 1) == 0)) {
		sp->format = BL_DBSPOOL_COPY;
		sp->version = memcmp(head, hdr, sizeof hdr - 1) == 0 ? 3 : 2;
		sp->start = sizeof hdr - 1;
		return;
	}
	tl = table_len(head, n);
	sp->format = tl > 0 && head[tl + 1] == '(' ? BL_DBSPOOL_INSERT : BL_DBSPOOL_UNKNOWN;
	/* a header still being written reads as not there yet */
	if (sp->format == BL_DBSPOOL_UNKNOWN && memchr(head, '\n', n) == NULL &&
	    (memcmp(head, hdr, n) == 0 || memcmp(head, hdr2, n) == 0))
		sp->format = BL_DBSPOOL_EMPTY;
}

int bl_dbspool_open(struct bl_dbspool *sp, const char *path)
{
	memset(sp, 0, sizeof *sp);
	sp->f = fopen(path, "r");
	if (!sp->f)
		return -1;
	setvbuf(sp->f, NULL, _IONBF, 0);   /* read in chunks into buf: no second copy */
	detect(sp);
	bl_dbspool_seek(sp, 0);
	return 0;
}

void bl_dbspool_close(struct bl_dbspool *sp)
{
	if (sp->f)
		fclose(sp->f);
	free(sp->buf);
	memset(sp, 0, sizeof *sp);
}

void bl_dbspool_seek(struct bl_dbspool *sp, uint64_t off)
{
	if (sp->format == BL_DBSPOOL_EMPTY && sp->f)
		detect(sp);  /* the sink writes the header first: look again */
	sp->off = off < sp->start ? sp->start : off;
	sp->pos = sp->len = sp->last = 0;
	if (sp->f)
		fseeko(sp->f, (off_t)sp->off, SEEK_SET);
}

/* More of the file into buf, after what is there: the bytes read, 0 at
 * its end (for now: the sink appends), -1 out of memory. */
static ssize_t fill(struct bl_dbspool *sp)
{
	size_t n;

	if (sp->pos > 0) {
		memmove(sp->buf, sp->buf + sp->pos, sp->len - sp->pos);
		sp->len -= sp->pos;
		sp->pos = 0;
	}
	if (sp->cap - sp->len < READ_CHUNK) {
		size_t cap = sp->cap ? sp->cap * 2 : 2 * READ_CHUNK;
		char *p = realloc(sp->buf, cap);
		if (!p)
			return -1;
		sp->buf = p;
		sp->cap = cap;
	}
	clearerr(sp->f);
	n = fread(sp->buf + sp->len, 1, sp->cap - sp->len, sp->f);
	sp->len += n;
	return (ssize_t)n;
}

/* The length of the row at p (avail bytes there): 0 when it is not all
 * there, -1 when it is not one. */
static ssize_t row_len(const char *p, size_t avail, bool *binary)
{
	const char *nl;
	size_t tl;
	ssize_t n;

	*binary = avail > 0 && p[0] == BL_DBSPOOL_BINARY;
	if (avail == 0)
		return 0;   /* (p may be NULL: no buffer yet) */
	if (!*binary) {
		nl = memchr(p, '\n', avail);
		return nl ? nl - p + 1 : 0;
	}
	for (tl = 1; tl < avail && tl <= 64 && p[tl] != '\t'; tl++)
		;
	if (tl == avail)
		return 0;
	if (p[tl] != '\t')
		return -1;
	n = bl_dbbin_tuple_len(p + tl + 1, avail - tl - 1);
	return n <= 0 ? n : (ssize_t)(tl + 1) + n;
}

/* The next complete row at buf + pos: its length, 0 when none is
 * complete yet, -1 a bad row, -2 no memory to read it (not the row's
 * fault: the sender tries again, dbsend.c). */
static ssize_t next_row(struct bl_dbspool *sp, bool *binary)
{
	ssize_t n, got;

	for (;;) {
		n = row_len(sp->buf + sp->pos, sp->len - sp->pos, binary);
		if (n != 0)
			return n;
		if ((got = fill(sp)) <= 0)
			return got < 0 ? -2 : 0;
	}
}

/* The row taken: the reader moves past it. */
static void take(struct bl_dbspool *sp, size_t n)
{
	sp->pos += n;
	sp->off += n;
	sp->last = n;
}

/* The next row of the batch in `table` (set by the first): its table
 * name's length, 0 at the end of the batch, -1 a bad row. The row is at
 * buf + pos, not taken. */
static ssize_t batch_row(struct bl_dbspool *sp, char *table, int rows, ssize_t *len)
{
	bool binary;
	ssize_t n = next_row(sp, &binary);
	const char *line = sp->buf + sp->pos;
	size_t tl;

	if (n <= 0)
		return n;
	tl = binary ? 0 : table_len(line, (size_t)n);
	if (tl == 0 || tl >= 64)
		return -1;
	if (rows == 0) {
		memcpy(table, line, tl);
		table[tl] = '\0';
	} else if (strncmp(line, table, tl) != 0 || table[tl] != '\0') {
		return 0; /* another table: the next batch's */
	}
	*len = n;
	return (ssize_t)tl;
}

int bl_dbspool_next(struct bl_dbspool *sp, const char **table, size_t *tl, const char **data,
                    size_t *n, bool *binary)
{
	ssize_t len;
	const char *p;
	size_t t;

	if (sp->format != BL_DBSPOOL_COPY)
		return sp->format == BL_DBSPOOL_EMPTY ? 0 : -1;
	if ((len = next_row(sp, binary)) <= 0)
		return (int)len;
	p = sp->buf + sp->pos + *binary;
	t = table_len(p, (size_t)len - *binary);
	if (t == 0 || t >= 64)
		return -1;
	*table = p;
	*tl = t;
	*data = p + t + 1;
	*n = (size_t)len - *binary - t - 1;
	take(sp, (size_t)len);
	return 1;
}

void bl_dbspool_unread(struct bl_dbspool *sp)
{
	sp->pos -= sp->last;
	sp->off -= sp->last;
	sp->last = 0;
}

uint64_t bl_dbspool_complete(struct bl_dbspool *sp, bool *torn)
{
	const char *table, *data;
	size_t tl, n;
	bool binary;
	int r;

	while ((r = bl_dbspool_next(sp, &table, &tl, &data, &n, &binary)) > 0)
		;
	*torn = r == 0 && sp->len > sp->pos;
	return sp->off;
}

int bl_dbspool_scan(const char *path, bl_dbspool_fn fn, void *ud)
{
	struct bl_dbspool sp;
	const char *table, *data;
	size_t tl, n;
	bool binary;
	int r = 0;

	if (bl_dbspool_open(&sp, path) < 0)
		return BL_ERR_NOTFOUND;
	if (sp.format == BL_DBSPOOL_COPY)
		while ((r = bl_dbspool_next(&sp, &table, &tl, &data, &n, &binary)) > 0 &&
		       fn(ud, table, tl, data, binary ? n : n - 1, binary) == 0)
			;
	else if (sp.format != BL_DBSPOOL_EMPTY)
		r = -1;
	bl_dbspool_close(&sp);
	return r == -2 ? BL_ERR_MEM : r < 0 ? BL_ERR_PROTO : BL_OK;
}

int bl_dbspool_insert_batch(struct bl_dbspool *sp, struct bl_buf *sql, uint64_t *end)
{
	char table[64] = "";
	int rows = 0;
	ssize_t tl, n;

	sql->len = 0;
	while (rows < INSERT_ROWS && sql->len < INSERT_BYTES && (tl = batch_row(sp, table, rows, &n)) != 0) {
		const char *line = sp->buf + sp->pos;
		if (tl < 0 || line[tl + 1] != '(' || n < tl + 3 || line[n - 2] != ')')
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
		bl_buf_add(sql, sp->buf + sp->pos + tl + 1, (size_t)(n - tl - 2));
		take(sp, (size_t)n);
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
