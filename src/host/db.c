/* db.c - the PostgreSQL sink's blocking side (db.h): connecting, the
 * schema and its migrations, `batlab db push`, queries for the CLI, and
 * the SQL literals the rows are written with. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "host/db.h"
#include "host/db_parts.h"
#include "host/resolve.h"

/* The schema's versions (docs/database.md documents every column): entry
 * k brings a database from version k to k + 1. A new version appends its
 * statements as a new entry; `batlab db init` applies the ones a database
 * has not seen, in one transaction each. */
static const char *const MIGRATIONS[] = {
	"CREATE SCHEMA IF NOT EXISTS batlab;"
	"CREATE TABLE IF NOT EXISTS batlab.schema_version (version integer PRIMARY KEY,"
	" applied_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE batlab.runs (run_id text PRIMARY KEY, host text NOT NULL, mode text,"
	" procedure text, script text, started_at timestamptz, virtual_time boolean,"
	" run_dir text, batlab_version text);"
	"CREATE TABLE batlab.run_ends (run_id text PRIMARY KEY, ended_at timestamptz, outcome text);"
	"CREATE TABLE batlab.cells (run_id text, cell text, serial integer, channel integer,"
	" PRIMARY KEY (run_id, cell));"
	"CREATE TABLE batlab.steps (run_id text, cell text, step integer, cycle integer,"
	" cycle_kind text, step_name text, kind text, start_s double precision,"
	" duration_s double precision, end_reason text, charge_ah double precision,"
	" energy_wh double precision, avg_v double precision, avg_i double precision,"
	" temp_start double precision, temp_end double precision, impedance_ohm double precision,"
	" PRIMARY KEY (run_id, cell, step));"
	"CREATE TABLE batlab.samples (run_id text, cell text, seq bigint, at timestamptz,"
	" t_s double precision, step_time_s double precision, cycle integer, cycle_kind text,"
	" step integer, step_name text, mode text, voltage double precision,"
	" current double precision, temp_c double precision, charge_ah double precision,"
	" energy_wh double precision, vcc double precision, errors integer,"
	" PRIMARY KEY (run_id, cell, seq));"
	"CREATE TABLE batlab.events (run_id text, seq integer, cell text, at timestamptz,"
	" t_s double precision, message text, PRIMARY KEY (run_id, seq));"
	"CREATE TABLE batlab.summaries (run_id text, cell text, verdict text, reason text,"
	" capacity_ah double precision, energy_wh double precision, impedance_ohm double precision,"
	" summary jsonb, PRIMARY KEY (run_id, cell));"
	"CREATE INDEX samples_at ON batlab.samples (at);"
	"CREATE INDEX runs_started ON batlab.runs (started_at);"
	"CREATE VIEW batlab.cycles AS SELECT run_id, cell, cycle, min(cycle_kind) AS cycle_kind,"
	" sum(abs(charge_ah)) FILTER (WHERE kind = 'charge') AS charge_ah,"
	" sum(abs(charge_ah)) FILTER (WHERE kind = 'discharge') AS discharge_ah,"
	" sum(abs(energy_wh)) FILTER (WHERE kind = 'discharge') AS discharge_wh,"
	" avg(impedance_ohm) AS impedance_ohm, min(start_s) AS start_s"
	" FROM batlab.steps WHERE cycle > 0 GROUP BY run_id, cell, cycle;",
	/* 2: what `batlab report --db` needs to render a run as from its
	 * directory: run.json as the run began (settings, devices, warnings),
	 * the cells' order in it; events.cell NULL marks the run's own lines
	 * of events.log, which version 1 did not send. */
	"ALTER TABLE batlab.runs ADD COLUMN run_json jsonb;"
	"ALTER TABLE batlab.cells ADD COLUMN ordinal integer;"
	"CREATE INDEX events_run_time ON batlab.events (run_id, t_s);",
	/* 3: samples.at indexed by a BRIN index instead of a B-tree. Samples
	 * come in time order, so block ranges of times find a time window as
	 * well, and it costs next to nothing per row, where the B-tree cost a
	 * sixth of the server's time storing a sample. */
	"DROP INDEX batlab.samples_at;"
	"CREATE INDEX samples_at ON batlab.samples USING brin (at);",
	/* 4: the samples stored narrow. A sample's row named its run and
	 * cell in two texts, and its key (run_id, cell, seq) compared them
	 * for every row stored: two thirds of the server's time for a
	 * sample went to the texts and that key. batlab.sample_data keeps a
	 * cell of a run as one number, batlab.series(run_id, cell) (MD5, as
	 * batlab computes it: host/dbseries.c), keyed (series, seq); the
	 * view batlab.samples gives the rows as before, the run and cell
	 * joined back from batlab.cells. */
	"CREATE FUNCTION batlab.series(run_id text, cell text) RETURNS bigint LANGUAGE sql IMMUTABLE"
	" PARALLEL SAFE AS $$SELECT ('x' || left(md5($1 || E'\\n' || $2), 16))::bit(64)::bigint$$;"
	"CREATE TABLE batlab.sample_data (series bigint, seq bigint, at timestamptz,"
	" t_s double precision, step_time_s double precision, cycle integer, cycle_kind text,"
	" step integer, step_name text, mode text, voltage double precision,"
	" current double precision, temp_c double precision, charge_ah double precision,"
	" energy_wh double precision, vcc double precision, errors integer,"
	" PRIMARY KEY (series, seq));"
	"INSERT INTO batlab.sample_data SELECT batlab.series(run_id, cell), seq, at, t_s, step_time_s,"
	" cycle, cycle_kind, step, step_name, mode, voltage, current, temp_c, charge_ah, energy_wh,"
	" vcc, errors FROM batlab.samples;"
	"INSERT INTO batlab.cells (run_id, cell) SELECT DISTINCT run_id, cell FROM batlab.samples"
	" ON CONFLICT DO NOTHING;"
	"DROP TABLE batlab.samples;"
	"CREATE INDEX sample_data_at ON batlab.sample_data USING brin (at);"
	"CREATE INDEX cells_series ON batlab.cells (batlab.series(run_id, cell));"
	"CREATE VIEW batlab.samples AS SELECT c.run_id, c.cell, d.seq, d.at, d.t_s, d.step_time_s,"
	" d.cycle, d.cycle_kind, d.step, d.step_name, d.mode, d.voltage, d.current, d.temp_c,"
	" d.charge_ah, d.energy_wh, d.vcc, d.errors"
	" FROM batlab.sample_data d JOIN batlab.cells c ON batlab.series(c.run_id, c.cell) = d.series;",
};
#define NMIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))
_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == BL_DB_SCHEMA_VERSION,
               "one migration per schema version");

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A postgresql:// URL or a key=value string libpq can read; the message
 * does not repeat it (it may hold a password). */
bool bl_db_conninfo_ok(const char *conninfo, char *msg, size_t msglen)
{
	PQconninfoOption *opts;
	char *e = NULL;

	if (strncmp(conninfo, "postgresql://", 13) != 0 && strncmp(conninfo, "postgres://", 11) != 0 &&
	    !strchr(conninfo, '=')) {
		snprintf(msg, msglen, "the database is given as a postgresql:// URL or a key=value string");
		return false;
	}
	opts = PQconninfoParse(conninfo, &e);
	if (!opts) {
		snprintf(msg, msglen, "the database URL: %s", e ? e : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		PQfreemem(e);
		return false;
	}
	PQconninfoFree(opts);
	return true;
}

/* The one host a conninfo names, when it is a name to look up: true with
 * it in host. A hostaddr already given, a socket directory, a number or a
 * list of hosts ("a,b": libpq looks those up itself) is left to libpq. */
static bool host_to_look_up(const char *conninfo, char *host, size_t hostlen)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *h = NULL;
	bool has_addr = false;

	if (!opts)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0)
			h = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && o->val && o->val[0])
			has_addr = true;
	}
	/* (libpq's defaults from the environment, which the parse leaves out) */
	if (!h || !h[0])
		h = getenv("PGHOST");
	has_addr = has_addr || (getenv("PGHOSTADDR") && getenv("PGHOSTADDR")[0]);
	bool look = !has_addr && h && !strchr(h, ',') && strlen(h) < hostlen && bl_host_needs_lookup(h);
	if (look)
		snprintf(host, hostlen, "%s", h);
	PQconninfoFree(opts);
	return look;
}

/* PQconnectStartParams / PQconnectdbParams on the conninfo (dbname is
 * expanded); with addrs, host and hostaddr come after it and override
 * it: libpq connects to each address in turn without looking a name up,
 * and still checks a TLS certificate and finds ~/.pgpass by the name
 * (libpq's documented way: "host" and "hostaddr" together). */
static PGconn *connect_params(const char *conninfo, double wait_s, bool async, const char *host,
                              const struct bl_addrs *addrs)
{
	char timeout[32], hosts[BL_RESOLVE_MAX * 257], hostaddrs[BL_RESOLVE_MAX * (BL_ADDR_LEN + 1)];
	const char *keys[] = {"dbname", "connect_timeout", "application_name", "host", "hostaddr", NULL};
	const char *vals[] = {conninfo, timeout, "batlab", hosts, hostaddrs, NULL};
	PGconn *c;

	snprintf(timeout, sizeof timeout, "%d", wait_s < 1 ? 1 : (int)ceil(wait_s));
	hosts[0] = hostaddrs[0] = '\0';
	for (int i = 0; addrs && i < addrs->n; i++) {
		size_t hn = strlen(hosts), an = strlen(hostaddrs);
		snprintf(hosts + hn, sizeof hosts - hn, "%s%s", i ? "," : "", host);
		snprintf(hostaddrs + an, sizeof hostaddrs - an, "%s%s", i ? "," : "", addrs->a[i]);
	}
	if (!addrs)
		keys[3] = vals[3] = NULL;
	c = async ? PQconnectStartParams(keys, vals, 1) : PQconnectdbParams(keys, vals, 1);
	if (c)
		PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

/* Connecting from the loop: the name looked up first (host/resolve.h),
 * then PQconnectStartParams on its addresses, whose socket the caller
 * watches through PQconnectPoll. */
struct bl_dbdial {
	struct bl_resolve *r;
	char *conninfo;
	char host[256];
	bl_dbdial_fn fn;
	void *ud;
};

static void dial_free(struct bl_dbdial *d)
{
	free(d->conninfo);
	free(d);
}

static void looked_up(void *ud, const struct bl_addrs *addrs)
{
	struct bl_dbdial *d = ud;
	PGconn *c = addrs->n ? connect_params(d->conninfo, 10, true, d->host, addrs) : NULL;

	d->fn(d->ud, c, addrs->n ? "out of memory" : addrs->error);
	dial_free(d);
}

struct bl_dbdial *bl_db_dial(struct bl_loop *loop, const char *conninfo, bl_dbdial_fn fn, void *ud)
{
	char host[256], err[200];
	struct bl_dbdial *d;

	if (!host_to_look_up(conninfo, host, sizeof host)) {
		fn(ud, connect_params(conninfo, 10, true, NULL, NULL), "out of memory");
		return NULL;
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->conninfo = strdup(conninfo))) {
		free(d);
		fn(ud, NULL, "out of memory");
		return NULL;
	}
	snprintf(d->host, sizeof d->host, "%s", host);
	d->fn = fn;
	d->ud = ud;
	d->r = bl_resolve_start(loop, host, looked_up, d, err, sizeof err);
	if (!d->r) {
		dial_free(d);
		fn(ud, NULL, err);
		return NULL;
	}
	return d;
}

void bl_db_dial_cancel(struct bl_dbdial *d)
{
	if (!d)
		return;
	bl_resolve_cancel(d->r);
	dial_free(d);
}

PGconn *bl_db_connect(const char *conninfo, double wait_s, char *msg, size_t msglen)
{
	char host[256];
	struct bl_addrs addrs;

	if (!host_to_look_up(conninfo, host, sizeof host))
		return connect_params(conninfo, wait_s, false, NULL, NULL);
	if (bl_resolve_wait(host, wait_s, &addrs) == 0) {
		snprintf(msg, msglen, "cannot connect to the database: %s", addrs.error);
		return NULL;
	}
	return connect_params(conninfo, wait_s, false, host, &addrs);
}

static int fail_conn(PGconn *c, const char *what, char *msg, size_t msglen)
{
	const char *e = c ? PQerrorMessage(c) : "out of memory";
	size_t n;

	snprintf(msg, msglen, "%s: %s", what, e);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	PQfinish(c);
	return BL_ERR_IO;
}

static PGconn *open_conn(const char *conninfo, double wait_s, char *msg, size_t msglen)
{
	PGconn *c;

	if (!bl_db_conninfo_ok(conninfo, msg, msglen))
		return NULL;
	msg[0] = '\0';
	c = bl_db_connect(conninfo, wait_s, msg, msglen);
	if (!c && msg[0])
		return NULL; /* the name did not resolve: msg says so */
	if (!c || PQstatus(c) != CONNECTION_OK) {
		fail_conn(c, "cannot connect to the database", msg, msglen);
		return NULL;
	}
	return c;
}

static bool exec_ok(PGconn *c, const char *sql, char *msg, size_t msglen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		size_t n;
		snprintf(msg, msglen, "%s", PQresultErrorMessage(r));
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
	}
	PQclear(r);
	return ok;
}

static int schema_version(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM batlab.schema_version");
	int v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;

	PQclear(r);
	return v;
}

int bl_db_init(const char *conninfo, int *from, char *msg, size_t msglen)
{
	PGconn *c = open_conn(conninfo, 10, msg, msglen);
	char sql[96];
	int v;

	if (!c)
		return BL_ERR_IO;
	v = *from = schema_version(c);
	if (v > NMIGRATIONS) {
		snprintf(msg, msglen, "the database has schema version %d, newer than this batlab's %d", v,
		         NMIGRATIONS);
		PQfinish(c);
		return BL_ERR_STATE;
	}
	for (; v < NMIGRATIONS; v++) {
		snprintf(sql, sizeof sql, "INSERT INTO batlab.schema_version (version) VALUES (%d)", v + 1);
		if (!exec_ok(c, "BEGIN", msg, msglen) || !exec_ok(c, MIGRATIONS[v], msg, msglen) ||
		    !exec_ok(c, sql, msg, msglen) || !exec_ok(c, "COMMIT", msg, msglen)) {
			PQfinish(c);
			return BL_ERR_IO;
		}
	}
	PQfinish(c);
	return BL_OK;
}

/* A spool of batlab before COPY: its INSERTs, blocking. */
static long push_inserts(PGconn *c, struct bl_dbspool *sp, const char *dir, char *msg, size_t msglen)
{
	struct bl_buf sql = {0};
	uint64_t end;
	long batches = 0;
	int r;

	while ((r = bl_dbspool_insert_batch(sp, &sql, &end)) > 0) {
		if (!exec_ok(c, sql.p, msg, msglen)) {
			bl_buf_free(&sql);
			return BL_ERR_IO;
		}
		bl_dbspool_mark(dir, end);
		batches++;
	}
	bl_buf_free(&sql);
	return r < 0 ? BL_ERR_ARG : batches;
}

static long push_copy(PGconn *c, struct bl_dbspool *sp, const char *dir, double wait_s, char *msg,
                      size_t msglen)
{
	struct bl_dbsend sd = {0};
	long r;

	if (PQsetnonblocking(c, 1) != 0) {
		snprintf(msg, msglen, "cannot make the connection non-blocking");
		return BL_ERR_IO;
	}
	bl_dbsend_init(&sd, c, sp, dir, sp->off);
	switch (bl_dbsend_drain(&sd, wait_s)) {
	case BL_OK:
		r = sd.batches;
		break;
	case BL_DBSEND_BADROW:
		r = BL_ERR_ARG;
		break;
	case BL_DBSEND_REFUSED:
		snprintf(msg, msglen, "the database refused rows: %s", sd.error);
		r = BL_ERR_IO;
		break;
	default:
		snprintf(msg, msglen, "%s", sd.error);
		r = BL_ERR_IO;
	}
	bl_dbsend_free(&sd);
	return r;
}

long bl_db_push(const char *conninfo, const char *dir, double wait_s, char *msg, size_t msglen)
{
	struct bl_dbspool sp;
	char path[600];
	long r;
	PGconn *c;

	snprintf(path, sizeof path, "%s/" BL_DB_SPOOL, dir);
	if (bl_dbspool_open(&sp, path) < 0) {
		snprintf(msg, msglen, "%s: no database spool (" BL_DB_SPOOL "): not a run directory, or a run"
		         " made without --db", dir);
		return BL_ERR_ARG;
	}
	if (sp.format == BL_DBSPOOL_UNKNOWN) {
		snprintf(msg, msglen, "%s: not a batlab database spool", path);
		bl_dbspool_close(&sp);
		return BL_ERR_ARG;
	}
	if (!(c = open_conn(conninfo, wait_s, msg, msglen))) {
		bl_dbspool_close(&sp);
		return BL_ERR_IO;
	}
	bl_dbspool_seek(&sp, bl_dbspool_marked(dir));
	if (sp.format == BL_DBSPOOL_INSERT)
		r = push_inserts(c, &sp, dir, msg, msglen);
	else
		r = push_copy(c, &sp, dir, wait_s, msg, msglen);
	if (r == BL_ERR_ARG)
		snprintf(msg, msglen, "%s: a damaged row at byte %llu", path, (unsigned long long)sp.off);
	PQfinish(c);
	bl_dbspool_close(&sp);
	return r;
}

int bl_db_query(const char *conninfo, const char *sql, int nparams, const char *const *params,
                struct bl_buf *out, char *msg, size_t msglen)
{
	PGconn *c = open_conn(conninfo, 10, msg, msglen);
	PGresult *r;

	if (!c)
		return BL_ERR_IO;
	r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(msg, msglen, "%s", PQresultErrorMessage(r));
		msg[strcspn(msg, "\n")] = '\0';
		PQclear(r);
		PQfinish(c);
		return BL_ERR_IO;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		for (int j = 0; j < PQnfields(r); j++) {
			if (j)
				bl_buf_addc(out, '\t');
			bl_buf_adds(out, PQgetvalue(r, i, j));
		}
		bl_buf_addc(out, '\n');
	}
	PQclear(r);
	PQfinish(c);
	return out->oom ? BL_ERR_MEM : BL_OK;
}

/* ---- reading, row by row ---------------------------------------------------- */

struct bl_dbconn {
	PGconn *c;
};

struct bl_dbconn *bl_dbconn_open(const char *conninfo, double wait_s, char *msg, size_t msglen)
{
	struct bl_dbconn *d;
	PGconn *c = open_conn(conninfo, wait_s, msg, msglen);

	if (!c)
		return NULL;
	if (!(d = malloc(sizeof *d))) {
		PQfinish(c);
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	d->c = c;
	return d;
}

int bl_dbconn_query(struct bl_dbconn *d, const char *sql, int nparams, const char *const *params,
                    bl_dbrow_fn fn, void *arg, char *msg, size_t msglen)
{
	PGresult *r = PQexecParams(d->c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	const char *vals[64];
	int nf = PQnfields(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		snprintf(msg, msglen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(d->c));
		msg[strcspn(msg, "\n")] = '\0';
		PQclear(r);
		return BL_ERR_IO;
	}
	if (nf > (int)(sizeof vals / sizeof vals[0])) {
		snprintf(msg, msglen, "a query of %d columns (at most 64)", nf);
		PQclear(r);
		return BL_ERR_ARG;
	}
	for (int i = 0; fn && i < PQntuples(r); i++) {
		for (int j = 0; j < nf; j++)
			vals[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
		fn(arg, nf, vals);
	}
	PQclear(r);
	return BL_OK;
}

void bl_dbconn_close(struct bl_dbconn *d)
{
	if (!d)
		return;
	PQfinish(d->c);
	free(d);
}

/* ---- COPY text fields ------------------------------------------------------- */

/* Backslash escapes for what COPY's text format gives a meaning to (the
 * field and row separators, the backslash) and every other control
 * character, so a row is one line of the spool. */
void bl_copy_text(struct bl_buf *b, const char *s)
{
	if (!s) {
		bl_copy_null(b);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\\') {
			bl_buf_add(b, "\\\\", 2);
		} else if (ch == '\n') {
			bl_buf_add(b, "\\n", 2);
		} else if (ch == '\t') {
			bl_buf_add(b, "\\t", 2);
		} else if (ch < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\x%02x", ch);
			bl_buf_adds(b, esc);
		} else {
			bl_buf_addc(b, (char)ch);
		}
	}
}

void bl_copy_null(struct bl_buf *b)
{
	bl_buf_add(b, "\\N", 2);
}

void bl_copy_fixed(struct bl_buf *b, double v, int prec)
{
	if (!isfinite(v))
		bl_copy_null(b);
	else
		bl_csv_fixed(b, v, prec);
}

/* (without printf: a sample's row has five, its cell's number 19 digits) */
void bl_copy_int(struct bl_buf *b, long long v)
{
	char *p = bl_buf_room(b, BL_CSV_UINT_ROOM + 1);

	if (!p)
		return;
	if (v < 0)
		*p++ = '-';
	bl_buf_done(b, bl_csv_put_uint(p, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v));
}

/* ISO 8601 in UTC to the millisecond, as the CSV's UTC column. */
void bl_copy_time(struct bl_buf *b, double epoch)
{
	if (!(fabs(epoch) < 1e11))
		bl_copy_null(b);
	else
		bl_csv_time(b, epoch, true);
}
