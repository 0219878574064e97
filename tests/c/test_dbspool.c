/* test_dbspool.c - the database sink's spool read back (host/dbspool.c):
 * lines of COPY text and binary samples in one file, in order, each
 * whole (a binary tuple may hold newlines), a row still being written
 * read once it is all there, a row given back, a torn last row told
 * from a damaged one, the spool of the format before, and the scan a
 * resumed run makes (each cell's last sample number).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/db.h"
#include "host/db_parts.h"
#include "tap.h"

static char path[64];

/* A binary sample record: \1, the table, a tab, 17 fields. */
static void sample(struct bl_buf *out, int64_t series, int64_t seq, const char *name)
{
	struct bl_buf t = {0};

	bl_dbbin_fields(&t, 17);
	bl_dbbin_int8(&t, series);
	bl_dbbin_int8(&t, seq);
	bl_dbbin_time(&t, 946684800.5);
	for (int i = 0; i < 14; i++) {
		if (i == 5)
			bl_dbbin_text(&t, name);
		else
			bl_dbbin_fixed(&t, i * 0.5, 3);
	}
	bl_buf_addc(out, BL_DBSPOOL_BINARY);
	bl_buf_adds(out, "sample_data\t");
	bl_buf_add(out, t.p, t.len);
	bl_buf_free(&t);
}

static void write_file_at(const char *where, const char *data, size_t n)
{
	FILE *f = fopen(where, "w");

	fwrite(data, 1, n, f);
	fclose(f);
}

static void write_file(const char *data, size_t n, const char *mode)
{
	FILE *f = fopen(path, mode);

	fwrite(data, 1, n, f);
	fclose(f);
}

/* The next row as "table:binary:n" (or the return value when none). */
static const char *next(struct bl_dbspool *sp, char *out, size_t len)
{
	const char *table, *data;
	size_t tl, n;
	bool binary;
	int r = bl_dbspool_next(sp, &table, &tl, &data, &n, &binary);

	if (r <= 0)
		snprintf(out, len, "%d", r);
	else
		snprintf(out, len, "%.*s:%d:%zu", (int)tl, table, binary, n);
	return out;
}

static int keep_max(void *ud, const char *table, size_t tl, const char *data, size_t n, bool binary)
{
	int64_t *last = ud, series, seq;

	if (tl == 11 && memcmp(table, "sample_data", 11) == 0 && bl_db_sample_key(data, n, binary, &series, &seq) &&
	    series == 77 && seq > *last)
		*last = seq;
	return 0;
}

static void mixed(void)
{
	struct bl_buf f = {0}, one = {0};
	struct bl_dbspool sp;
	char got[80], want[80];
	size_t whole, torn_at;
	uint64_t end;
	bool torn;
	int64_t last = 0;

	bl_buf_adds(&f, BL_DBSPOOL_HEADER);
	bl_buf_adds(&f, "runs\tr1\th\n");
	sample(&f, 77, 1, "line\nbreak");        /* a newline inside: not a line */
	bl_buf_adds(&f, "sample_data\t77\t2\t\\N\n"); /* a text sample (a resumed run's) */
	sample(&one, 77, 3, "x");
	whole = f.len + one.len;
	torn_at = f.len;
	bl_buf_add(&f, one.p, one.len - 5);      /* the last still being written */
	write_file(f.p, f.len, "w");

	ok(bl_dbspool_open(&sp, path) == 0 && sp.format == BL_DBSPOOL_COPY, "the header: a spool of COPY data");
	is_int((long long)sp.start, (long long)strlen(BL_DBSPOOL_HEADER), "its rows start after the header");
	is_str(next(&sp, got, sizeof got), "runs:0:5", "a line of text: the run's row, its data with the newline");
	snprintf(want, sizeof want, "sample_data:1:%zu", (size_t)bl_dbbin_tuple_len(f.p + strlen(BL_DBSPOOL_HEADER) + 10 + 13, 4096));
	is_str(next(&sp, got, sizeof got), want, "a binary sample, whole, a newline in it");
	is_str(next(&sp, got, sizeof got), "sample_data:0:8", "a sample in text (its 8 bytes with the newline)");
	is_str(next(&sp, got, sizeof got), "0", "the last, cut short: not there yet");
	write_file(one.p + one.len - 5, 5, "a");
	snprintf(want, sizeof want, "sample_data:1:%zu", one.len - 13);
	is_str(next(&sp, got, sizeof got), want, "once its end is written: read");
	is_int((long long)sp.off, (long long)whole, "the offset: after it");
	bl_dbspool_unread(&sp);
	is_str(next(&sp, got, sizeof got), want, "given back: read again");
	bl_dbspool_seek(&sp, torn_at);
	is_str(next(&sp, got, sizeof got), want, "a seek to a row: read from there");
	bl_dbspool_close(&sp);

	ok(bl_dbspool_scan(path, keep_max, &last) == BL_OK && last == 3,
	   "the scan: cell 77's last sample number, binary or text (3)");

	/* torn: the complete rows' end, and that what follows is a torn row */
	write_file(f.p, f.len, "w");
	bl_dbspool_open(&sp, path);
	end = bl_dbspool_complete(&sp, &torn);
	ok(end == torn_at && torn, "a torn last row: the complete rows end before it, it is said torn");
	bl_dbspool_close(&sp);
	last = 0;
	ok(bl_dbspool_scan(path, keep_max, &last) == BL_OK && last == 2, "the scan stops before a torn row");

	/* damaged: a binary row whose field count is 0 */
	f.len = torn_at;
	bl_buf_add(&f, "\1sample_data\t\0\0\0\0", 17);
	bl_buf_adds(&f, "runs\tr2\th\n");
	write_file(f.p, f.len, "w");
	bl_dbspool_open(&sp, path);
	bl_dbspool_seek(&sp, torn_at);
	is_str(next(&sp, got, sizeof got), "-1", "a damaged row: -1");
	bl_dbspool_seek(&sp, torn_at);
	end = bl_dbspool_complete(&sp, &torn);
	ok(end == torn_at && !torn, "a damaged row is not a torn one (not cut off)");
	bl_dbspool_close(&sp);
	ok(bl_dbspool_scan(path, keep_max, &last) == BL_ERR_PROTO, "the scan of a damaged spool: an error");
	bl_buf_free(&f);
	bl_buf_free(&one);
}

static void older(void)
{
	static const char v2[] = "# batlab db-spool 2: TABLE<TAB>COPY text row\nevents\tr\t1\n";
	struct bl_dbspool sp;
	char got[80];

	write_file(v2, sizeof v2 - 1, "w");
	ok(bl_dbspool_open(&sp, path) == 0 && sp.format == BL_DBSPOOL_COPY, "the format before (2): read as COPY data");
	is_str(next(&sp, got, sizeof got), "events:0:4", "its rows: lines");
	bl_dbspool_close(&sp);
	write_file("# batlab db-sp", 14, "w");
	ok(bl_dbspool_open(&sp, path) == 0 && sp.format == BL_DBSPOOL_EMPTY, "a header still being written: not there yet");
	bl_dbspool_close(&sp);
	write_file("hello\n", 6, "w");
	ok(bl_dbspool_open(&sp, path) == 0 && sp.format == BL_DBSPOOL_UNKNOWN, "another file: not a spool");
	bl_dbspool_close(&sp);
	ok(bl_dbspool_scan("/nonexistent/db-spool.sql", keep_max, NULL) == BL_ERR_NOTFOUND, "no spool: said");
}

/* A row longer than the memory the reader may have: out of memory, not
 * a damaged row (the sender then drops the batch and goes on, as for a
 * lost connection; a bad row would stop it for good). In a child whose
 * address space is capped (not under ASan or valgrind: they need theirs). */
static void no_memory(void)
{
	static const char row[] = "events\t";
	const char *vg = getenv("LD_PRELOAD");
	size_t big = 256u << 20;
	long pages = 0;
	int status = -1;
	FILE *f;
	pid_t pid;

#if defined(__SANITIZE_ADDRESS__)
	vg = "asan";
#endif
	if (vg && *vg) {
		ok(1, "# SKIP out of memory: not under ASan or valgrind");
		return;
	}
	f = fopen(path, "w");
	fputs(BL_DBSPOOL_HEADER, f);
	fputs(row, f);
	fflush(f);
	/* a line of zero bytes (a sparse file), its newline at the end */
	if (ftruncate(fileno(f), (off_t)(strlen(BL_DBSPOOL_HEADER) + strlen(row) + big)) != 0)
		big = 0;
	fseeko(f, 0, SEEK_END);
	fputc('\n', f);
	fclose(f);
	f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld", &pages) != 1)
		pages = 0;
	if (f)
		fclose(f);
	if (!big || !pages) {
		ok(1, "# SKIP out of memory: no sparse file or no /proc");
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct rlimit lim;
		struct bl_dbspool sp;
		const char *table, *data;
		size_t tl, n;
		bool binary;
		int r;

		lim.rlim_cur = lim.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (64u << 20);
		if (setrlimit(RLIMIT_AS, &lim) != 0 || bl_dbspool_open(&sp, path) != 0)
			_exit(9);
		r = bl_dbspool_next(&sp, &table, &tl, &data, &n, &binary);
		bl_dbspool_close(&sp);
		_exit(r + 3);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	is_int(WIFEXITED(status) ? WEXITSTATUS(status) - 3 : 99, -2,
	       "a row the reader has no memory for: out of memory (-2), not a bad row (-1)");
}

/* The sink opening a spool a crash left: a row cut short at its end is
 * cut off before anything is appended; what only looks cut short because
 * a damaged length word claims more than any row can be, with good rows
 * after it, is left for the sender to report. */
static void opened_again(void)
{
	char dir[64], spool[96], err[200], msg[300];
	struct bl_buf f = {0}, one = {0};
	struct bl_loop *loop = bl_loop_new(NULL);
	struct bl_dbsink *s;
	size_t good, n;
	FILE *fp;

	snprintf(dir, sizeof dir, "/tmp/test_dbsink.XXXXXX");
	if (!mkdtemp(dir) || !loop) {
		ok(0, "a temporary directory and a loop");
		return;
	}
	snprintf(spool, sizeof spool, "%s/" BL_DB_SPOOL, dir);
	bl_buf_adds(&f, BL_DBSPOOL_HEADER);
	sample(&f, 77, 1, "a");
	good = f.len;
	sample(&one, 77, 2, "b");
	bl_buf_add(&f, one.p, one.len / 2);
	write_file_at(spool, f.p, f.len);
	/* no server on port 1: the rows stay in the spool */
	s = bl_dbsink_open(loop, "postgresql://batlab@127.0.0.1:1/x?connect_timeout=1", dir, err, sizeof err);
	ok(s != NULL, "the sink opens the torn spool %s", s ? "" : err);
	fp = fopen(spool, "rb");
	fseek(fp, 0, SEEK_END);
	n = (size_t)ftell(fp);
	fclose(fp);
	is_int((long long)n, (long long)good, "the torn last row cut off: the spool ends after the last whole row");
	bl_dbsink_close(s, 0, msg, sizeof msg);

	/* a damaged length word (2 MiB) with 1.5 MiB of good rows after it */
	f.len = good;
	bl_buf_add(&f, "\1sample_data\t\0\1\0\x20\0\0", 19);
	while (f.len < good + (3u << 19))
		sample(&f, 77, 3, "c");
	write_file_at(spool, f.p, f.len);
	s = bl_dbsink_open(loop, "postgresql://batlab@127.0.0.1:1/x?connect_timeout=1", dir, err, sizeof err);
	fp = fopen(spool, "rb");
	fseek(fp, 0, SEEK_END);
	n = (size_t)ftell(fp);
	fclose(fp);
	is_int((long long)n, (long long)f.len, "a damaged length word with good rows after it: nothing cut");
	bl_dbsink_close(s, 0, msg, sizeof msg);

	/* a spool of format 2 goes on as format 3: its header rewritten in place */
	f.len = 0;
	bl_buf_adds(&f, BL_DBSPOOL_HEADER_2);
	bl_buf_adds(&f, "events\tr\t1\n");
	write_file_at(spool, f.p, f.len);
	s = bl_dbsink_open(loop, "postgresql://batlab@127.0.0.1:1/x?connect_timeout=1", dir, err, sizeof err);
	bl_dbsink_close(s, 0, msg, sizeof msg);
	fp = fopen(spool, "rb");
	n = fread(one.p, 1, f.len + 1, fp);
	fclose(fp);
	ok(n == f.len && memcmp(one.p, BL_DBSPOOL_HEADER, strlen(BL_DBSPOOL_HEADER)) == 0 &&
	       memcmp(one.p + strlen(BL_DBSPOOL_HEADER), "events\tr\t1\n", 12) == 0,
	   "a spool of format 2 appended to: its header now format 3's, its rows as they were");
	unlink(spool);
	snprintf(spool, sizeof spool, "%s/" BL_DB_SENT, dir);
	unlink(spool);
	rmdir(dir);
	bl_loop_free(loop);
	bl_buf_free(&f);
	bl_buf_free(&one);
}

int main(void)
{
	int fd;

	plan_lazy();
	snprintf(path, sizeof path, "/tmp/test_dbspool.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	mixed();
	older();
	no_memory();
	opened_again();
	unlink(path);
	return done_testing();
}
