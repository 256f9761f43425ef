/*
 * db.h - the one place that talks to PostgreSQL (libpq).
 *
 * No other file calls PQ* functions or sees a PGconn: they hold a struct
 * db_conn and get rows as arrays of strings through a callback.  For now
 * every call is blocking, for use before the event loop starts (migrate);
 * non-blocking use on the loop comes later.
 *
 * Errors are returned as negative codes with a one-line message in a
 * caller-supplied buffer.  A server error reads like
 *
 *   ERROR 42P01: relation "x" does not exist (line 3, position 45);
 *   DETAIL: ...; HINT: ...; CONTEXT: ...
 *
 * where the line is counted in the SQL text that was sent.  Server
 * notices (NOTICE, WARNING) are written to the log, never to raw stderr.
 * The conninfo may hold a password: it is never logged.
 */
#ifndef PGPUSH_DB_H
#define PGPUSH_DB_H

#include <stddef.h>

/* A connection; owned by whoever opened it, freed by db_close_conn(). */
struct db_conn;

/*
 * Called once per result row with the row's `ncols` values as text (NULL
 * for SQL NULL); the strings are only valid during the call.  Return 0 to
 * go on, or a negative code to stop: db_query_rows() then returns it.
 */
typedef int (*db_row_fn)(void *arg, int ncols, const char *const *values);

/*
 * Connect, blocking, using `conninfo` (a libpq keyword/value string or a
 * URI; "" means libpq's PG* environment variables and defaults).  The
 * session uses client_encoding UTF8 unless conninfo says otherwise.
 * On success *out is a new connection and 0 is returned; on failure *out
 * is NULL, -ECONNREFUSED is returned and `err` holds libpq's reason.
 */
int db_open_conn(struct db_conn **out, const char *conninfo, char *err,
		 size_t errlen);

/*
 * Close the connection and free it.  NULL is a no-op.  `conn` is invalid
 * after this call.
 */
void db_close_conn(struct db_conn *conn);

/*
 * Run `sql`, which may hold several statements separated by semicolons,
 * with the simple query protocol, blocking, discarding any rows.  Returns
 * 0, or -EIO with the server's error in `err` (see the header comment).
 * Note that without an explicit BEGIN the server runs a multi-statement
 * string as one implicit transaction.
 */
int db_exec_script(struct db_conn *conn, const char *sql, char *err,
		   size_t errlen);

/*
 * Whether the session is inside an open transaction block (after BEGIN,
 * before COMMIT/ROLLBACK) and idle.
 */
int db_in_transaction(struct db_conn *conn);

/*
 * Run one statement with `nparams` text parameters ($1, $2, ...; a NULL
 * entry is SQL NULL), blocking, and call `fn` (if not NULL) for each row.
 * Returns 0, -EIO with the server's error in `err`, or the first negative
 * code `fn` returned.
 */
int db_query_rows(struct db_conn *conn, const char *sql, int nparams,
		  const char *const *params, db_row_fn fn, void *arg,
		  char *err, size_t errlen);

#endif
