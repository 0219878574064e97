/* dbsink.c - the spool and the non-blocking sender of the PostgreSQL
 * results sink (db.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/bl.h"
#include "core/clock.h"
#include "host/db.h"
#include "host/db_parts.h"

#define MOD "db"
#define RETRY_US 1000000u

enum state { DOWN, CONNECTING, IDLE, BUSY, STOPPED };

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
	uint64_t last_try_us;
	uint64_t batch_end;         /* spool offset the batch in flight ends at */
	bool batch_ok;
	struct bl_buf sql;
	struct bl_dbsink_stats stats;
	bool told_down;
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
	/* whatever was in flight is sent again: the keys make it land once */
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
	if (bl_io_start(s->loop, &s->io, events) < 0)
		drop(s, "cannot watch the socket");
}

static void kick(struct bl_dbsink *s);

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
		s->st = IDLE;
		s->stats.connected = true;
		if (s->stats.error[0])
			BL_INFO(MOD, "connected to the database again");
		s->stats.error[0] = '\0';
		watch(s, BL_IO_READ);
		kick(s);
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

static void send_batch(struct bl_dbsink *s)
{
	int r;

	if (fflush(s->fa) != 0) {
		set_error(s, "spool", strerror(errno));
		return;
	}
	r = bl_dbspool_batch(&s->rd, &s->sql, &s->batch_end);
	if (r <= 0) {
		if (r < 0)
			set_error(s, "spool", "cannot read it back");
		return;
	}
	if (!PQsendQuery(s->conn, s->sql.p)) {
		drop(s, NULL);
		return;
	}
	s->st = BUSY;
	s->batch_ok = false;
	r = PQflush(s->conn);
	if (r < 0)
		drop(s, NULL);
	else
		watch(s, r ? BL_IO_READ | BL_IO_WRITE : BL_IO_READ);
}

/* A batch's answer: the offset moves past it, or a statement the server
 * refused stops the sending (the rows stay in the spool). */
static void batch_done(struct bl_dbsink *s)
{
	if (!s->batch_ok) {
		s->st = STOPPED;
		return;
	}
	s->stats.sent_bytes = s->batch_end;
	bl_dbspool_mark(s->dir, s->stats.sent_bytes);
	s->st = IDLE;
	kick(s);
}

static void read_results(struct bl_dbsink *s)
{
	PGresult *res;

	/* the server went away between batches: its goodbye reads fine */
	if (!PQconsumeInput(s->conn) || PQstatus(s->conn) == CONNECTION_BAD) {
		drop(s, NULL);
		return;
	}
	while (s->conn && !PQisBusy(s->conn)) {
		res = PQgetResult(s->conn);
		if (!res) {
			if (s->st == BUSY)
				batch_done(s);
			return;
		}
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			s->batch_ok = true;
		} else if (PQstatus(s->conn) == CONNECTION_BAD) {
			PQclear(res);
			drop(s, NULL);
			return;
		} else {
			set_error(s, "the database refused rows (see docs/database.md: batlab db init)",
			          PQresultErrorMessage(res));
			s->batch_ok = false;
		}
		PQclear(res);
	}
}

static void on_io(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct bl_dbsink *s = ud;

	(void)loop;
	(void)io;
	if (s->st == CONNECTING) {
		connect_step(s);
		return;
	}
	if (events & BL_IO_WRITE) {
		int r = PQflush(s->conn);
		if (r < 0) {
			drop(s, NULL);
			return;
		}
		if (r == 0)
			watch(s, BL_IO_READ);
	}
	if (s->conn && (events & BL_IO_READ))
		read_results(s);
}

static void kick(struct bl_dbsink *s)
{
	if (s->st == DOWN && bl_clock_monotonic_us() - s->last_try_us >= RETRY_US)
		try_connect(s);
	if (s->st == IDLE && s->stats.sent_bytes < s->stats.spool_bytes)
		send_batch(s);
}

int bl_dbsink_row(struct bl_dbsink *s, const char *table, const char *values, size_t n)
{
	size_t tl = strlen(table);

	if (fwrite(table, 1, tl, s->fa) != tl || fputc('\t', s->fa) == EOF ||
	    fwrite(values, 1, n, s->fa) != n || fputc('\n', s->fa) == EOF) {
		set_error(s, "spool", strerror(errno));
		return BL_ERR_IO;
	}
	s->stats.rows++;
	s->stats.spool_bytes += tl + n + 2;
	kick(s);
	return BL_OK;
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
	s->fa = fopen(path, "a");
	if (!s->fa || bl_dbspool_open(&s->rd, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (s->fa)
			fclose(s->fa);
		free(s->conninfo);
		free(s);
		return NULL;
	}
	fseeko(s->fa, 0, SEEK_END);
	s->stats.spool_bytes = (uint64_t)ftello(s->fa);
	s->stats.sent_bytes = bl_dbspool_marked(dir);
	if (s->stats.sent_bytes > s->stats.spool_bytes)
		s->stats.sent_bytes = 0;
	bl_dbspool_seek(&s->rd, s->stats.sent_bytes);
	bl_io_init(&s->io, -1, on_io, s);
	s->last_try_us = bl_clock_monotonic_us() - RETRY_US;
	kick(s);
	return s;
}

void bl_dbsink_stats(const struct bl_dbsink *s, struct bl_dbsink_stats *out)
{
	*out = s->stats;
}

uint64_t bl_dbsink_close(struct bl_dbsink *s, double wait_s, char *msg, size_t msglen)
{
	uint64_t left;
	long r;

	if (!s)
		return 0;
	if (s->io.active)
		bl_io_stop(s->loop, &s->io);
	bl_db_dial_cancel(s->dial);
	fflush(s->fa);
	fclose(s->fa);
	bl_dbspool_close(&s->rd);
	if (s->conn)
		PQfinish(s->conn);  /* a batch in flight is simply sent again */
	s->conn = NULL;
	msg[0] = '\0';
	if (s->st == STOPPED)
		snprintf(msg, msglen, "%s", s->stats.error);
	else if (s->stats.sent_bytes < s->stats.spool_bytes) {
		r = bl_db_push(s->conninfo, s->dir, wait_s, msg, msglen);
		(void)r;
	}
	left = s->stats.spool_bytes - bl_dbspool_marked(s->dir);
	if (bl_dbspool_marked(s->dir) > s->stats.spool_bytes)
		left = 0;
	bl_buf_free(&s->sql);
	free(s->conninfo);
	free(s);
	return left;
}
