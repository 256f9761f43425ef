/*
 * db.c - libpq behind struct db_conn (see db.h).
 *
 * With db_conn.c and db_async.c, the only files that call PQ*.  Blocking
 * helpers: open a connection, run a script, run a parameterised query row by
 * row; and the message copying, error formatting and notice receiver that
 * db_conn.c and db_async.c share (db_int.h).  Server errors are flattened
 * into one line with SQLSTATE, message, position (turned into a line number
 * of the SQL we sent), DETAIL, HINT and CONTEXT, because whoever reads a
 * failed migration needs all of them.
 */
#include "db/db_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

struct db_conn {
	PGconn *pg;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void db__copy_msg(char *err, size_t errlen, const char *msg)
{
	size_t n;

	if (errlen == 0)
		return;
	snprintf(err, errlen, "%s", msg && *msg ? msg : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/* Put `prefix` in front of the message in err, cutting its tail. */
static void prefix_err(char *err, size_t errlen, const char *prefix)
{
	size_t n = strlen(prefix), len = strnlen(err, errlen);

	if (errlen <= n)
		return;
	if (len + n >= errlen)
		len = errlen - n - 1;
	memmove(err + n, err, len);
	memcpy(err, prefix, n);
	err[n + len] = '\0';
}

/* Server NOTICE / WARNING messages go to the log, one line each. */
void db__on_notice(void *arg, const PGresult *res)
{
	const char *sev, *msg;
	enum log_level level = LOG_LEVEL_DEBUG;

	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (sev && strcmp(sev, "WARNING") == 0)
		level = LOG_LEVEL_WARN;
	else if (sev && strcmp(sev, "NOTICE") == 0)
		level = LOG_LEVEL_INFO;
	log_emit(level, msg ? msg : "server notice", "severity=%s",
		 sev ? sev : "NOTICE");
}

int db_open_conn(struct db_conn **out, const char *conninfo, char *err,
		 size_t errlen)
{
	/*
	 * Keywords before "dbname" are defaults: with expand_dbname, what the
	 * conninfo string says overrides them.  An empty value is ignored,
	 * so "" leaves everything to the PG* variables.
	 */
	const char *const keys[] = {
		"fallback_application_name", "client_encoding", "dbname", NULL
	};
	const char *const vals[] = { "pgpushd", "UTF8", conninfo, NULL };
	struct db_conn *conn;
	PGconn *pg;

	*out = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL) {
		set_err(err, errlen, "out of memory in libpq");
		return -ENOMEM;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		db__copy_msg(err, errlen, PQerrorMessage(pg));
		prefix_err(err, errlen, "cannot connect to PostgreSQL: ");
		PQfinish(pg);
		return -ECONNREFUSED;
	}
	PQsetNoticeReceiver(pg, db__on_notice, NULL);
	conn = mem_alloc(sizeof(*conn));
	conn->pg = pg;
	*out = conn;
	return 0;
}

void db_close_conn(struct db_conn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn->pg);
	free(conn);
}

/*
 * The 1-based line of `sql` holding character `pos` (1-based, counted in
 * characters as the server does; the text is UTF-8), or 0 if out of range.
 */
static long line_of_position(const char *sql, long pos)
{
	long chars = 0, line = 1;
	const unsigned char *p;

	if (sql == NULL || pos < 1)
		return 0;
	for (p = (const unsigned char *)sql; *p; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;	/* UTF-8 continuation byte */
		if (++chars == pos)
			return line;
		if (*p == '\n')
			line++;
	}
	return 0;
}

/* Append ", more" to err (formatted), keeping it NUL-terminated. */
static void append_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append_err(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = strnlen(err, errlen);
	va_list ap;

	if (n + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

/* See db.h. */
void db__describe_error(const PGconn *pg, const PGresult *res,
			const char *sql, char *err, size_t errlen)
{
	const char *sev, *state, *msg, *detail, *hint, *pos, *ctx;
	long line;

	if (errlen == 0)
		return;
	if (res == NULL) {
		db__copy_msg(err, errlen, PQerrorMessage(pg));
		return;
	}
	sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	if (msg == NULL) {
		/* Not a server error (e.g. the connection was lost). */
		db__copy_msg(err, errlen, PQresultErrorMessage(res));
		if (err[0] == '\0' || strcmp(err, "unknown error") == 0)
			db__copy_msg(err, errlen, PQerrorMessage(pg));
		return;
	}
	set_err(err, errlen, "%s%s%s: %s", sev ? sev : "ERROR",
		state ? " " : "", state ? state : "", msg);
	if (pos) {
		line = line_of_position(sql, atol(pos));
		if (line > 0)
			append_err(err, errlen, " (line %ld, position %s)",
				   line, pos);
		else
			append_err(err, errlen, " (position %s)", pos);
	}
	if (detail)
		append_err(err, errlen, "; DETAIL: %s", detail);
	if (hint)
		append_err(err, errlen, "; HINT: %s", hint);
	if (ctx)
		append_err(err, errlen, "; CONTEXT: %s", ctx);
}

int db_exec_script(struct db_conn *conn, const char *sql, char *err,
		   size_t errlen)
{
	PGresult *res = PQexec(conn->pg, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    st != PGRES_EMPTY_QUERY) {
		db__describe_error(conn->pg, res, sql, err, errlen);
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

int db_in_transaction(struct db_conn *conn)
{
	return PQtransactionStatus(conn->pg) == PQTRANS_INTRANS;
}

int db_query_rows(struct db_conn *conn, const char *sql, int nparams,
		  const char *const *params, db_row_fn fn, void *arg,
		  char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType st;
	const char **vals;
	int rows, cols, r, c, rc = 0;

	res = PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL,
			   0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		db__describe_error(conn->pg, res, sql, err, errlen);
		PQclear(res);
		return -EIO;
	}
	rows = PQntuples(res);
	cols = PQnfields(res);
	if (fn == NULL || rows == 0) {
		PQclear(res);
		return 0;
	}
	vals = mem_alloc_zero((size_t)cols, sizeof(*vals));
	for (r = 0; r < rows && rc == 0; r++) {
		for (c = 0; c < cols; c++)
			vals[c] = PQgetisnull(res, r, c) ?
				NULL : PQgetvalue(res, r, c);
		rc = fn(arg, cols, vals);
	}
	free(vals);
	PQclear(res);
	return rc;
}

const char *db_connect_hint(const char *error)
{
	static const struct {
		const char *a, *b;      /* both in the message (b: or NULL) */
		const char *hint;
	} hints[] = {
		{ "role \"", "does not exist",
		  "no such role (SQLSTATE 28000): create it (CREATE ROLE name "
		  "LOGIN, then GRANT pgpush_dispatcher TO name) or fix user= "
		  "in --db (PGUSER)" },
		{ "database \"", "does not exist",
		  "no such database (SQLSTATE 3D000): create it (createdb "
		  "name; pgpushd migrate) or fix dbname= in --db "
		  "(PGDATABASE)" },
		{ "is not permitted to log in", NULL,
		  "the role lacks LOGIN: ALTER ROLE name LOGIN" },
		{ "password authentication failed", NULL,
		  "wrong password (SQLSTATE 28P01): fix password= in --db, "
		  "PGPASSWORD or ~/.pgpass" },
		{ "no pg_hba.conf entry", NULL,
		  "the server refuses this host, role or database: add a line "
		  "to pg_hba.conf and reload the server" },
		{ "No such file or directory", NULL,
		  "no server at that Unix socket: start Postgres, or point "
		  "host= in --db (PGHOST) at its unix_socket_directories and "
		  "port= (PGPORT) at its port" },
		{ "Connection refused", NULL,
		  "nothing listens at that address and port: start Postgres, "
		  "or fix host= and port= in --db (PGHOST, PGPORT) and the "
		  "server's listen_addresses" },
		{ "could not translate host name", NULL,
		  "the host name does not resolve: fix host= in --db (PGHOST) "
		  "or use hostaddr=" },
		{ "the database system is", NULL,
		  "the server is starting, stopping or recovering: wait" },
	};

	if (error == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
		if (strstr(error, hints[i].a) != NULL &&
		    (hints[i].b == NULL || strstr(error, hints[i].b) != NULL))
			return hints[i].hint;
	return NULL;
}
