/* test_outfile.c - bl_outfile keeps its own buffer: rows formatted in
 * place (room, commit) and copied in (write), plain and gzip, reach the
 * file in order at a flush and at close, appended to what was there;
 * nothing before the flush when the buffer has room; a failed write
 * (a full disk) and a request larger than the buffer are errors with a
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "host/outfile.h"
#include "tap.h"

static char dir[] = "/tmp/bl_outfile_XXXXXX";

static size_t file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fclose(f);
	return n < 0 ? 0 : (size_t)n;
}

/* Everything in path, gunzipped when gz (every member). */
static char *slurp(const char *path, size_t *len)
{
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	gzFile gz = gzopen(path, "rb");
	int n;

	*len = 0;
	while (gz && (n = gzread(gz, buf + *len, (unsigned)(cap - *len))) > 0)
		*len += (size_t)n;
	if (gz)
		gzclose(gz);
	return buf;
}

/* 3000 rows of about 30 bytes, every other one in place, and one write
 * of 40 kB (more than the buffer) in the middle: what the file holds. */
static void write_rows(struct bl_outfile *o, char *want, size_t *wlen)
{
	char err[256], row[64], *big = malloc(40000);

	memset(big, 'x', 40000);
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(row, sizeof row, "row %d,%d.%04d\n", i, i * 7, i % 10000);
		if (i == 1500) {
			ok(bl_outfile_write(o, big, 40000, err, sizeof err) == 0, "a write larger than the buffer");
			memcpy(want + *wlen, big, 40000);
			*wlen += 40000;
		}
		if (i % 2) {
			char *p = bl_outfile_room(o, 200, err, sizeof err);
			if (!p)
				break;
			memcpy(p, row, (size_t)n);
			bl_outfile_commit(o, p + n);
		} else if (bl_outfile_write(o, row, (size_t)n, err, sizeof err) != 0) {
			break;
		}
		memcpy(want + *wlen, row, (size_t)n);
		*wlen += (size_t)n;
	}
	free(big);
}

static void roundtrip(const char *name)
{
	char path[256], err[256];
	size_t wlen = 0, glen;
	char *want = malloc(1 << 20), *got;
	struct bl_outfile *o;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	o = bl_outfile_open(path, err, sizeof err);
	ok(o != NULL, "%s: opened", name);
	if (!o)
		return;
	ok(bl_outfile_write(o, "header\n", 7, err, sizeof err) == 0, "%s: a line in the buffer", name);
	is_int((long long)file_size(path), 0, "%s: nothing on the disk before a flush", name);
	ok(bl_outfile_flush(o, err, sizeof err) == 0, "%s: flushed", name);
	got = slurp(path, &glen);
	ok(glen == 7 && memcmp(got, "header\n", 7) == 0, "%s: the line after the flush", name);
	free(got);
	memcpy(want, "header\n", 7);
	wlen = 7;
	write_rows(o, want, &wlen);
	ok(bl_outfile_close(o, err, sizeof err) == 0, "%s: closed", name);
	/* opened again: appended (a gzip file: a second member) */
	o = bl_outfile_open(path, err, sizeof err);
	ok(o && bl_outfile_write(o, "more\n", 5, err, sizeof err) == 0 &&
	   bl_outfile_close(o, err, sizeof err) == 0, "%s: reopened, appended to", name);
	memcpy(want + wlen, "more\n", 5);
	wlen += 5;
	got = slurp(path, &glen);
	is_int((long long)glen, (long long)wlen, "%s: every byte", name);
	ok(glen == wlen && memcmp(got, want, wlen) == 0, "%s: in order", name);
	free(got);
	free(want);
}

int main(void)
{
	char err[256] = "";
	struct bl_outfile *o;
	char *p;

	plan_lazy();
	if (!mkdtemp(dir))
		return 1;
	roundtrip("plain.csv");
	roundtrip("rows.csv.gz");

	o = bl_outfile_open("/dev/full", err, sizeof err);
	ok(o != NULL, "/dev/full opens");
	if (o) {
		p = bl_outfile_room(o, BL_OUTFILE_BUFFER + 1, err, sizeof err);
		ok(p == NULL && strstr(err, "more than the buffer"), "more room than the buffer: refused (%s)", err);
		p = bl_outfile_room(o, 100, err, sizeof err);
		ok(p != NULL, "room for a row");
		memcpy(p, "a row\n", 6);
		bl_outfile_commit(o, p + 6);
		err[0] = '\0';
		ok(bl_outfile_flush(o, err, sizeof err) != 0 && strstr(err, "No space left"),
		   "a full disk: the flush fails (%s)", err);
		ok(bl_outfile_close(o, err, sizeof err) == 0, "and the close after it is clean");
	}
	o = bl_outfile_open("/nonexistent/dir/x.csv", err, sizeof err);
	ok(o == NULL && strstr(err, "/nonexistent/dir/x.csv: No such file"), "a path that cannot be opened: %s",
	   err);
	{
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
	}
	return done_testing();
}
