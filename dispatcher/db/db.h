/*
 * db.h - the one place that talks to PostgreSQL (libpq).
 *
 * No other file calls PQ* functions or sees a PGconn or a PGresult: only
 * db.c (blocking helpers), db_conn.c and db_async.c (connections on the
 * event loop) include libpq-fe.h.  There are two kinds of connection:
 *
 *   struct db_conn   blocking, for use before the event loop starts
 *                    (`pgpushd migrate`); rows come through a callback.
 *   struct db_async  non-blocking, driven by a libuv loop (`pgpushd run`):
 *                    a FIFO of queries, LISTEN/NOTIFY, automatic
 *                    reconnection with backoff, statements re-prepared
 *                    after a reconnect.  See "Async connections" below.
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
#include <stdint.h>

#include <uv.h>

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

/*
 * ---------------------------------------------------------------------
 * Async connections (db_conn.c: connection life; db_async.c: queries)
 *
 * A struct db_async is one PostgreSQL session that never blocks the loop
 * it lives on (one caveat: libpq resolves a host *name* with a blocking
 * getaddrinfo() at each connection attempt, so give the daemon a Unix
 * socket directory or an IP address (hostaddr) when that matters).
 *
 * A connection belongs to its loop's thread: call db_async_* only there.
 * Queries run in the order they were submitted, one at a time unless
 * opts.pipeline allows more.  Every submitted query gets exactly one
 * callback, and no callback (query, on_ready, on_notify, on_down, closed)
 * is ever called from inside a db_async_* call: they all run from the
 * loop, so a caller may submit queries or close the connection from any
 * callback.
 *
 * When the connection is lost (server restart, network error, the backend
 * killed by an admin) or a connection attempt fails, the query in flight and
 * every queued query fail (see enum db_status for what each failure means),
 * then on_down runs, then a new attempt starts after an exponential backoff
 * with jitter (100 ms doubling to 30 s, each delay between half and all of
 * its step; reset after a session that stayed up 10 s), and on_ready runs
 * again when it is up.  An attempt times out after the conninfo's
 * connect_timeout (at least 2 s), or 10 s when it has none.  A session's
 * state (LISTEN, SET, temporary tables, an open transaction) does not
 * survive: re-establish it from on_ready.  Statements registered with
 * db_async_prepare_once() are the exception: they are prepared again on the
 * new session before their first use.  Queries submitted while the
 * connection is down wait for the next attempt (and fail "not sent" if it
 * fails too).
 * ---------------------------------------------------------------------
 */

/* An async connection; owned by its opener, freed by db_async_close(). */
struct db_async;

/*
 * The outcome of a query.  Only valid during the result callback: copy
 * what you need.  Callers never see libpq's PGresult.
 */
struct db_result;

enum db_status {
	/* The statement (all of them, for a multi-statement string) ran. */
	DB_OK,
	/*
	 * The server (or libpq, before sending) rejected it: a definite
	 * failure, nothing of it committed (unless an explicit COMMIT came
	 * earlier in a multi-statement string).  db_result_sqlstate() says
	 * which error.  The connection is still up.
	 */
	DB_ERR_QUERY,
	/*
	 * The query was sent and the connection was lost (or closed) before
	 * its outcome arrived: it may or may not have run, and may or may not
	 * have committed.  Only an idempotent statement can be retried
	 * blindly.  The error text starts "connection lost" or "connection
	 * closed".
	 */
	DB_ERR_LOST,
	/*
	 * The query was never sent: the connection was down, was lost while
	 * the query waited in the queue, or was closed.  Safe to retry.  The
	 * error text starts "not sent".
	 */
	DB_ERR_NOT_SENT
};

/*
 * Called once per submitted query, from the loop, with its result.  `res`
 * is never NULL and is freed when the callback returns.
 */
typedef void (*db_result_fn)(void *arg, const struct db_result *res);

/* Called from the loop once db_async_close() has finished. */
typedef void (*db_closed_fn)(void *arg);

/* What the owner of an async connection hears about it. */
struct db_async_opts {
	/* A short name for the log ("listener", "claim"); copied. */
	const char *name;
	/*
	 * The session is up: after the first connection and again after
	 * every reconnection.  Issue LISTEN and session settings from here.
	 * May be NULL.
	 */
	void (*on_ready)(void *arg);
	/*
	 * A notification arrived on a channel this session listens to.  The
	 * strings are only valid during the call.  May be NULL.
	 */
	void (*on_notify)(void *arg, const char *channel, const char *payload);
	/*
	 * The session went down or a connection attempt failed; `error` says
	 * why (only valid during the call).  A new attempt is already
	 * scheduled.  Called after the failed queries' callbacks.  May be
	 * NULL.
	 */
	void (*on_down)(void *arg, const char *error);
	/* Passed to the three callbacks above. */
	void *arg;
	/*
	 * Steps in flight at once (0 or 1: one at a time).  Above 1 the
	 * session runs in libpq's pipeline mode: the next queued queries go
	 * out before the results of the earlier ones are in, each ending
	 * its own implicit transaction, so the server runs them back to
	 * back without waiting for this loop.  Results still come, and
	 * callbacks still run, in order; a query's callback runs once its
	 * transaction has committed.  A statement's first use on a session
	 * (its PREPARE) goes alone.  On such a session a query with no
	 * parameters must be one statement (pipeline mode has no simple
	 * query protocol).
	 */
	int pipeline;
};

/*
 * Create an async connection on `loop` and start connecting (the first
 * attempt starts on the next loop iteration).  `conninfo` is as for
 * db_open_conn() (keyword/value string or URI; "" means the PG*
 * variables) and is kept, never logged, and wiped when freed.  Set
 * application_name in it to find the session in pg_stat_activity.
 * Returns 0 and *out, or -EINVAL with the reason in `err` when conninfo
 * cannot be parsed (*out is NULL then; the reason is withheld when the
 * conninfo may hold a password).  A server that cannot be reached is not
 * an error here: on_down reports it and attempts go on with backoff until
 * db_async_close().  `opts` is copied (NULL: no callbacks).  TCP
 * keepalives (30 s idle, 10 s x 3) and tcp_user_timeout (60 s) are on
 * unless the conninfo says otherwise, so a silent network cut is noticed
 * within about a minute.
 */
int db_async_open(struct db_async **out, uv_loop_t *loop,
		  const char *conninfo, const struct db_async_opts *opts,
		  char *err, size_t errlen);

/*
 * Queue `sql` with `nparams` text parameters ($1, $2, ...; a NULL entry is
 * SQL NULL; the strings are copied) and text results.  With nparams == 0
 * (and no pipeline, see db_async_opts) the simple query protocol is used,
 * so `sql` may hold several statements
 * separated by semicolons (run as one implicit transaction): the result
 * is the last statement's, or the first error.  COPY is not supported
 * (the session is dropped and reconnected).  `cb` runs exactly once, from
 * the loop.  Returns 0, -EINVAL for a bad nparams, or -ESHUTDOWN after
 * db_async_close() (then `cb` is never called).
 */
int db_async_query(struct db_async *conn, const char *sql, int nparams,
		   const char *const *values, db_result_fn cb, void *arg);

/*
 * Register the statement `name` (`sql` with `nparams` parameters) for
 * db_async_exec_prepared().  Nothing is sent now: the statement is
 * prepared on the current session right before its first use, and again
 * on each new session after a reconnect.  Registering the same name with
 * the same sql and nparams again is a no-op.  Returns 0, -EEXIST if the
 * name is registered with another definition, -EINVAL for an empty name
 * or a bad nparams, or -ESHUTDOWN after db_async_close().  Sending
 * DEALLOCATE or DISCARD yourself breaks this bookkeeping: don't.
 */
int db_async_prepare_once(struct db_async *conn, const char *name,
			  const char *sql, int nparams);

/*
 * Queue an execution of the registered statement `name` with `nparams`
 * text parameters (copied; must equal the registered count) and text
 * results.  When the statement must be prepared first and preparing
 * fails, `cb` gets that error (DB_ERR_QUERY).  `cb` runs exactly once,
 * from the loop.  Returns 0, -ENOENT for an unregistered name, -EINVAL
 * for a wrong nparams, or -ESHUTDOWN after db_async_close() (then `cb` is
 * never called).
 */
int db_async_exec_prepared(struct db_async *conn, const char *name,
			   int nparams, const char *const *values,
			   db_result_fn cb, void *arg);

/*
 * Whether the session is connected now (between on_ready and on_down).
 */
int db_async_is_up(const struct db_async *conn);

/*
 * The backoff step the connection waits out before its next attempt (the
 * un-jittered delay: 100, 200, 400 ... 30000 ms), or 0 while it is up or
 * before its first failure.  An owner that reports failures once per step
 * logs a handful of lines while the server is away, not one per attempt.
 */
uint64_t db_async_backoff_step_ms(const struct db_async *conn);

/*
 * What to do about a failed connection attempt, from libpq's message
 * (e.g. "create the role, or fix user= in the connection string"), or
 * NULL when the cause is not one of the common ones: no such role
 * (28000), no such database (3D000), password or pg_hba.conf refusals
 * (28P01, 28000), no server on that socket or port.  libpq gives no
 * SQLSTATE for a failed connection, so this reads its (English) text.
 */
const char *db_connect_hint(const char *error);

/*
 * The number of submitted queries whose callback has not run yet (queued
 * plus the one in flight).
 */
size_t db_async_pending(const struct db_async *conn);

/*
 * Close the connection.  No query is sent any more and db_async_query()
 * and friends return -ESHUTDOWN.  Then, from the loop: the session is
 * terminated (the server rolls back an open transaction; a query in
 * flight is not cancelled and may still complete on the server, so wait
 * for your important callbacks before closing), the query in flight gets
 * DB_ERR_LOST ("connection closed ... outcome unknown"), queued queries
 * get DB_ERR_NOT_SENT ("not sent: connection closed"), then `closed_cb`
 * (may be NULL) runs, and then `conn` is freed: it is invalid once
 * closed_cb has been called.  Returns 0, or -EALREADY when already
 * closing (the first closed_cb stays).
 */
int db_async_close(struct db_async *conn, db_closed_fn closed_cb, void *arg);

/* Accessors of a struct db_result. */

/* DB_OK or one of the DB_ERR_* values. */
enum db_status db_result_status(const struct db_result *res);

/* 1 for DB_OK, 0 for any error. */
int db_result_ok(const struct db_result *res);

/*
 * The error in one line ("" for DB_OK).  A server error has the format
 * described at the top, with its SQLSTATE; DB_ERR_LOST starts
 * "connection lost" or "connection closed" and DB_ERR_NOT_SENT "not
 * sent".
 */
const char *db_result_error(const struct db_result *res);

/* The five-character SQLSTATE of a server error, or NULL. */
const char *db_result_sqlstate(const struct db_result *res);

/* Rows and columns of the result (0 when it has none or failed). */
int db_result_ntuples(const struct db_result *res);
int db_result_nfields(const struct db_result *res);

/* The name of column `col`, or NULL when out of range. */
const char *db_result_field_name(const struct db_result *res, int col);

/*
 * The value at (`row`, `col`) as text, or NULL for SQL NULL or when out
 * of range.  Valid only during the result callback.
 */
const char *db_result_value(const struct db_result *res, int row, int col);

/* 1 when the value at (`row`, `col`) is SQL NULL or out of range. */
int db_result_isnull(const struct db_result *res, int row, int col);

/*
 * The number of rows an INSERT/UPDATE/DELETE/SELECT/... affected (the
 * command tag's count), or 0 when there is none.
 */
long db_result_affected(const struct db_result *res);

#endif
