/* dbsink.c - the spool and the non-blocking sender of the PostgreSQL
 * results sink (db.h): the connection on the event loop, the sending in
 * dbsend.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/bl.h"
#include "core/clock.h"
#include "host/db.h"
#include "host/db_parts.h"

#define MOD "db"
#define RETRY_US 1000000u
/* In real time rows come a few at a time (one per channel per reporting
 * period): a batch starts once this much is waiting, or this long after
 * the first row came, not for every row (each batch costs round trips
 * and a commit). A virtual run's rows come far faster: no waiting. */
#define GATHER_BYTES (64u << 10)
#define GATHER_US 100000u
#define SPOOL_BUF (64u << 10)
/* The most a row cut short by a crash can be (a sample's is about 200
 * bytes, a run's row with its run.json some kilobytes) */
#define TORN_MAX (1u << 20)

enum state { DOWN, CONNECTING, UP, STOPPED };

struct bl_dbsink {
	struct bl_loop *loop;
	char *conninfo;
	char dir[512];
	FILE *fa;                   /* the spool, appending */
	struct bl_dbspool rd;       /* the spool, reading from what was sent */
	enum state st;
	PGconn *conn;
	struct bl_dbdial *dial;     /* the server's name being looked up (CONNECTING) */
	struct bl_io io;
	struct bl_timer gather;     /* real time: the rows waiting go when it fires */
	bool gathered;
	uint64_t last_try_us;
	struct bl_dbsend sd;        /* UP: the sending */
	struct bl_dbsink_stats stats;
	char spool_buf[SPOOL_BUF];  /* fa's (stdio sizes its own at 4 KiB, whatever it is asked) */
};

static void set_error(struct bl_dbsink *s, const char *what, const char *detail)
{
	char msg[sizeof s->stats.error];
	size_t n;

	snprintf(msg, sizeof msg, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (strcmp(msg, s->stats.error) != 0)
		BL_WARN(MOD, "%s (rows wait in %s/" BL_DB_SPOOL ")", msg, s->dir);
	snprintf(s->stats.error, sizeof s->stats.error, "%s", msg);
}

static void drop(struct bl_dbsink *s, const char *why)
{
	if (s->io.active)
		bl_io_stop(s->loop, &s->io);
	if (s->conn) {
		set_error(s, "database connection lost", why ? why : PQerrorMessage(s->conn));
		PQfinish(s->conn);
	}
	s->conn = NULL;
	s->st = DOWN;
	s->stats.connected = false;
	bl_dbsend_mark(&s->sd);
	/* whatever was in flight is sent again: the sender makes it land once */
	bl_dbspool_seek(&s->rd, s->stats.sent_bytes);
}

static void watch(struct bl_dbsink *s, unsigned events)
{
	int fd = PQsocket(s->conn);

	if (fd < 0) {
		drop(s, "no socket");
		return;
	}
	if (s->io.active && s->io.fd != fd)
		bl_io_stop(s->loop, &s->io);
	if (!s->io.active)
		s->io.fd = fd;
	if ((!s->io.active || s->io.events != events) && bl_io_start(s->loop, &s->io, events) < 0)
		drop(s, "cannot watch the socket");
}

/* The sender goes on (events: what the socket is ready for, 0 when rows
 * were added); what it read back from the spool is on disk first. */
static void pump(struct bl_dbsink *s, unsigned events)
{
	int r;

	if (fflush(s->fa) != 0) {
		set_error(s, "spool", strerror(errno));
		return;
	}
	s->sd.hold = !s->gathered && !bl_loop_is_virtual(s->loop) &&
	             s->stats.spool_bytes - s->sd.sent < GATHER_BYTES;
	r = bl_dbsend_step(&s->sd, events);
	s->stats.sent_bytes = s->sd.sent;
	if (r >= 0) {
		watch(s, (unsigned)r);
		if (s->st == UP && s->sd.st == BL_DBSEND_IDLE && s->sd.hold && !bl_timer_active(&s->gather) &&
		    s->stats.spool_bytes > s->sd.sent)
			bl_timer_after(s->loop, &s->gather, GATHER_US, 0);
	} else if (r == BL_DBSEND_LOST) {
		drop(s, s->sd.error);
	} else {
		/* a batch the server refused stops the sending: the rows stay in the spool */
		if (r == BL_DBSEND_BADROW)
			set_error(s, "spool", "a damaged row");
		else
			set_error(s, "the database refused rows (see docs/database.md: batlab db init)", s->sd.error);
		s->st = STOPPED;
		if (s->io.active)
			bl_io_stop(s->loop, &s->io);
	}
}

static void on_gathered(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_dbsink *s = ud;

	(void)loop;
	(void)t;
	if (s->st != UP || s->sd.st != BL_DBSEND_IDLE)
		return;
	s->gathered = true;
	pump(s, 0);
	s->gathered = false;
}

static void dialed(void *ud, PGconn *c, const char *err)
{
	struct bl_dbsink *s = ud;

	s->dial = NULL;
	s->conn = c;
	if (!c || PQstatus(c) == CONNECTION_BAD) {
		set_error(s, "cannot connect to the database", c ? PQerrorMessage(c) : err);
		PQfinish(c);
		s->conn = NULL;
		s->st = DOWN;
		return;
	}
	watch(s, BL_IO_WRITE);
}

static void try_connect(struct bl_dbsink *s)
{
	s->last_try_us = bl_clock_monotonic_us();
	s->st = CONNECTING; /* from the name's lookup on (db.c: bl_db_dial) */
	s->dial = bl_db_dial(s->loop, s->conninfo, dialed, s);
}

static void connect_step(struct bl_dbsink *s)
{
	switch (PQconnectPoll(s->conn)) {
	case PGRES_POLLING_READING:
		watch(s, BL_IO_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch(s, BL_IO_WRITE);
		break;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(s->conn, 1) != 0) {
			drop(s, "cannot make the connection non-blocking");
			return;
		}
		s->st = UP;
		s->stats.connected = true;
		if (s->stats.error[0])
			BL_INFO(MOD, "connected to the database again");
		s->stats.error[0] = '\0';
		bl_dbsend_init(&s->sd, s->conn, &s->rd, s->dir, s->stats.sent_bytes);
		pump(s, 0);
		break;
	default:
		set_error(s, "cannot connect to the database", PQerrorMessage(s->conn));
		PQfinish(s->conn);
		s->conn = NULL;
		s->st = DOWN;
		bl_io_stop(s->loop, &s->io);
		break;
	}
}

static void on_io(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct bl_dbsink *s = ud;

	(void)loop;
	(void)io;
	if (s->st == CONNECTING)
		connect_step(s);
	else if (s->st == UP)
		pump(s, events);
}

static void kick(struct bl_dbsink *s)
{
	if (s->st == DOWN && bl_clock_monotonic_us() - s->last_try_us >= RETRY_US)
		try_connect(s);
	/* a batch in flight, or the gathering, takes the rows that came
	 * meanwhile when it is done */
	if (s->st == UP && s->sd.st == BL_DBSEND_IDLE && !bl_timer_active(&s->gather))
		pump(s, 0);
}

/* lead (0: none), the table, a tab, the data and trail (0: none). */
static int append(struct bl_dbsink *s, char lead, const char *table, const char *data, size_t n,
                  char trail)
{
	size_t tl = strlen(table);

	if ((lead && fputc(lead, s->fa) == EOF) || fwrite(table, 1, tl, s->fa) != tl ||
	    fputc('\t', s->fa) == EOF || fwrite(data, 1, n, s->fa) != n || (trail && fputc(trail, s->fa) == EOF)) {
		set_error(s, "spool", strerror(errno));
		return BL_ERR_IO;
	}
	s->stats.rows++;
	s->stats.spool_bytes += (lead != 0) + tl + 1 + n + (trail != 0);
	kick(s);
	return BL_OK;
}

int bl_dbsink_row(struct bl_dbsink *s, const char *table, const char *values, size_t n)
{
	return append(s, 0, table, values, n, '\n');
}

int bl_dbsink_binrow(struct bl_dbsink *s, const char *table, const char *tuple, size_t n)
{
	return append(s, BL_DBSPOOL_BINARY, table, tuple, n, 0);
}

/* A spool of format 2 (text lines only) goes on as format 3: its first
 * line rewritten, in place (the same length), through a descriptor of its
 * own (pwrite on the appending one would append, on Linux). */
static bool upgrade_header(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 &&
	          pwrite(fd, BL_DBSPOOL_HEADER, sizeof BL_DBSPOOL_HEADER - 1, 0) == sizeof BL_DBSPOOL_HEADER - 1;

	if (fd >= 0 && close(fd) != 0)
		ok = false;
	return ok;
}

/* The spool to append to: a new one starts with its format's header; one
 * of an older batlab's format is not added to. */
static FILE *open_spool(struct bl_dbsink *s, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "a");

	/* a virtual run appends megabytes in a fraction of a second: the
	 * buffer given, before anything else is done with the stream (a
	 * size alone, or too late, and stdio keeps its own of 4 KiB: a
	 * write for every twenty samples) */
	if (f)
		setvbuf(f, s->spool_buf, _IOFBF, sizeof s->spool_buf);
	if (!f || fseeko(f, 0, SEEK_END) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return NULL;
	}
	if (ftello(f) == 0 && (fputs(BL_DBSPOOL_HEADER, f) == EOF || fflush(f) != 0)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	if (bl_dbspool_open(&s->rd, path) < 0 || s->rd.format != BL_DBSPOOL_COPY) {
		snprintf(err, errlen, "%s: %s", path, s->rd.f ? "written by an older batlab (send it with"
		         " `batlab db push`, then move it away)" : strerror(errno));
		bl_dbspool_close(&s->rd);
		fclose(f);
		return NULL;
	}
	if (s->rd.version == 2 && !upgrade_header(path)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		bl_dbspool_close(&s->rd);
		fclose(f);
		return NULL;
	}
	return f;
}

/* A row the spool ends in that a crash cut short would run into the
 * first row appended after it: cut off. Not a warning: a resumed run
 * sends again from its files whatever the spool lacks (batlab.labresume),
 * and a kill between two of the spool's buffered writes leaves one. (A
 * damaged row before the end is left for the sender to report.) */
static void cut_torn_row(struct bl_dbsink *s)
{
	bool torn;
	uint64_t end = bl_dbspool_complete(&s->rd, &torn);

	/* a crash leaves part of one row: more than any row's length after
	 * the last complete one is a damaged row's length word (the sender
	 * will say so), with good rows after it, not to be cut */
	if (torn && end < s->stats.spool_bytes && s->stats.spool_bytes - end <= TORN_MAX &&
	    ftruncate(fileno(s->fa), (off_t)end) == 0) {
		BL_INFO(MOD, "%s/" BL_DB_SPOOL ": its last row was cut short (%" PRIu64 " bytes): dropped; the"
		        " run's files have it", s->dir, s->stats.spool_bytes - end);
		s->stats.spool_bytes = end;
	}
	bl_dbspool_seek(&s->rd, s->stats.sent_bytes);
}

struct bl_dbsink *bl_dbsink_open(struct bl_loop *loop, const char *conninfo, const char *dir,
                                 char *err, size_t errlen)
{
	struct bl_dbsink *s;
	char path[600];

	if (!bl_db_conninfo_ok(conninfo, err, errlen))
		return NULL;
	s = calloc(1, sizeof *s);
	if (!s || !(s->conninfo = strdup(conninfo))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	snprintf(path, sizeof path, "%s/" BL_DB_SPOOL, dir);
	if (!(s->fa = open_spool(s, path, err, errlen))) {
		free(s->conninfo);
		free(s);
		return NULL;
	}
	s->stats.spool_bytes = (uint64_t)ftello(s->fa);
	s->stats.sent_bytes = bl_dbspool_marked(dir);
	if (s->stats.sent_bytes > s->stats.spool_bytes || s->stats.sent_bytes < s->rd.start)
		s->stats.sent_bytes = s->rd.start;
	bl_dbspool_seek(&s->rd, s->stats.sent_bytes);
	cut_torn_row(s);
	bl_io_init(&s->io, -1, on_io, s);
	bl_io_foreign(&s->io); /* libpq may reconnect on the same number */
	bl_timer_init(&s->gather, on_gathered, s);
	s->last_try_us = bl_clock_monotonic_us() - RETRY_US;
	kick(s);
	return s;
}

void bl_dbsink_stats(const struct bl_dbsink *s, struct bl_dbsink_stats *out)
{
	*out = s->stats;
}

/* At the end: the connection there is driven until the spool is sent
 * (the run waits now, and only now); a server that is away, or goes
 * away now, is waited for by a `batlab db push` of the rest. */
uint64_t bl_dbsink_close(struct bl_dbsink *s, double wait_s, char *msg, size_t msglen)
{
	uint64_t left, marked, start = s ? s->rd.start : 0;
	int r;

	if (!s)
		return 0;
	if (s->io.active)
		bl_io_stop(s->loop, &s->io);
	bl_timer_stop(s->loop, &s->gather);
	bl_db_dial_cancel(s->dial);
	fflush(s->fa);
	fclose(s->fa);
	msg[0] = '\0';
	if (s->st == UP) {
		r = bl_dbsend_drain(&s->sd, wait_s);
		s->stats.sent_bytes = s->sd.sent;
		if (r != BL_OK && r != BL_DBSEND_LOST) {
			s->st = STOPPED;
			snprintf(s->stats.error, sizeof s->stats.error, "%s",
			         r == BL_DBSEND_BADROW ? "a damaged row in the spool" : s->sd.error);
		}
	}
	bl_dbsend_mark(&s->sd);
	bl_dbspool_close(&s->rd);
	if (s->conn)
		PQfinish(s->conn);  /* a batch in flight is simply sent again */
	s->conn = NULL;
	if (s->st == STOPPED)
		snprintf(msg, msglen, "%s", s->stats.error);
	else if (s->stats.sent_bytes < s->stats.spool_bytes)
		(void)bl_db_push(s->conninfo, s->dir, wait_s, msg, msglen);
	marked = bl_dbspool_marked(s->dir);
	if (marked < start)
		marked = start;    /* nothing sent, nothing to send: the header alone */
	left = marked > s->stats.spool_bytes ? 0 : s->stats.spool_bytes - marked;
	bl_dbsend_free(&s->sd);
	free(s->conninfo);
	free(s);
	return left;
}
