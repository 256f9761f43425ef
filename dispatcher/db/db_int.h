/*
 * db_int.h - what db.c, db_conn.c and db_async.c share; no other file
 * includes it.  They are the only files that call PQ*.
 *
 * struct db_async is one libpq connection on the libuv loop: its
 * connection life (states, socket watcher, timer, backoff) is db_conn.c's,
 * its queries (the FIFO, prepared statements, pipelining, results) are
 * db_async.c's.  Both work on the same struct, so it is defined here.
 *
 * Ownership: struct db_async belongs to its opener until
 * db_async_close(); each struct db_poll (one uv_poll_t) is freed in its
 * close callback; queries and their copied parameters belong to the
 * connection until their callback has returned.  The conninfo may hold a
 * password: never logged, wiped on free.
 */
#ifndef PGPUSH_DB_INT_H
#define PGPUSH_DB_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "db/db.h"

#define DB_ASYNC_CONNECT_TIMEOUT_MS 10000	/* unless connect_timeout */
#define DB_ASYNC_BACKOFF_MIN_MS 100
#define DB_ASYNC_BACKOFF_MAX_MS 30000
#define DB_ASYNC_STABLE_MS 10000	/* up this long: backoff starts over */
#define DB_ASYNC_ERR_MAX 1024
#define DB_ASYNC_MAX_PARAMS 65535

enum db_async_state {
	DB_ASYNC_WAITING,
	DB_ASYNC_CONNECTING,
	DB_ASYNC_UP,
	DB_ASYNC_CLOSING
};

/* A statement registered with db_async_prepare_once(). */
struct db_stmt {
	struct db_stmt *next;
	char *name;
	char *sql;
	int nparams;
	unsigned long gen;	/* session it is prepared on; 0: none */
};

enum db_query_phase {
	DB_QUERY_QUEUED,
	DB_QUERY_PREPARING,	/* its statement's PREPARE is in flight */
	DB_QUERY_RUNNING	/* the query itself is in flight */
};

struct db_query {
	struct db_query *next;
	char *sql;		/* NULL for a prepared statement */
	struct db_stmt *stmt;	/* NULL for plain SQL */
	int nparams;
	char **values;
	db_result_fn cb;
	void *arg;
	enum db_query_phase phase;
	int got_result;		/* piped: a result of this step came */
	int ended;		/* piped: its NULL came, its Sync is next */
	PGresult *last;		/* the last good result so far */
	PGresult *error;	/* the first error result */
};

struct query_list {
	struct db_query *head;	/* oldest */
	struct db_query **tail;
	size_t n;
};

/* One uv_poll_t for one socket; freed in its close callback. */
struct db_poll {
	uv_poll_t handle;
	struct db_async *conn;
	int events;		/* what handle watches */
};

struct db_async {
	uv_loop_t *loop;
	char *conninfo;		/* secret: never logged, wiped on free */
	char *name;
	struct db_async_opts opts;
	enum db_async_state state;
	PGconn *pg;		/* NULL in WAITING */
	struct db_poll *poll;	/* NULL when not watching a socket */
	uv_timer_t timer;	/* connect timeout, then backoff */
	int handles_open;	/* the timer and polls not yet closed */
	unsigned long gen;	/* bumped on every successful connect */
	unsigned attempts;	/* failures since the last stable session */
	uint64_t step_ms;	/* the backoff step now waited; 0: none */
	uint64_t up_since;	/* uv_now() when it last came up */
	uint64_t connect_timeout_ms;
	uint64_t rng;
	int flushing;		/* libpq has output left to send */
	int kick;		/* the queue wants pumping */
	int piped;		/* the session is in libpq pipeline mode */
	struct query_list sent;	/* in flight: 1, or opts.pipeline piped */
	struct query_list queue;	/* waiting to be sent */
	struct db_stmt *stmts;
	db_closed_fn closed_cb;
	void *closed_arg;
};

struct db_result {
	enum db_status status;
	const PGresult *res;	/* NULL when there is no server result */
	const char *error;
	const char *sqlstate;
};

/* ---- db.c ------------------------------------------------------------ */

/* Copy libpq's message `msg` into buf without its trailing newlines and
 * spaces ("unknown error" when empty); nothing when len is 0. */
void db__copy_msg(char *buf, size_t len, const char *msg);

/*
 * Describe a failed result `res` (or, when NULL, the connection's last
 * error) in one line as shown at the top of db.h.  `sql` is the text that
 * was sent, for turning a position into a line number; may be NULL.
 */
void db__describe_error(const PGconn *pg, const PGresult *res,
			const char *sql, char *err, size_t errlen);

/* libpq notice receiver: server NOTICE / WARNING lines go to the log. */
void db__on_notice(void *arg, const PGresult *res);

/* ---- db_conn.c: connection life -------------------------------------- */

/*
 * The session is gone or the attempt failed (CONNECTING or UP): drop the
 * PGconn, start the backoff timer, fail the queries, call on_down.  `why`
 * may point into the PGconn; it is copied first.
 */
void db__conn_down(struct db_async *c, const char *why);

/* In UP: watch readable always, writable while there is something to
 * write (c->flushing or c->kick). */
void db__poll_update(struct db_async *c);

/* ---- db_async.c: queries ---------------------------------------------- */

/* Run q's callback with a failure that has no server result, free q. */
void db__query_fail(struct db_query *q, enum db_status status,
		    const char *msg);

/* Take every query out of l, oldest first (new ones start a fresh list). */
struct db_query *db__list_detach(struct query_list *l);

/* Fail every query of a detached list with NOT_SENT. */
void db__fail_list(struct db_query *list, const char *msg);

/*
 * Fail every query of a detached list of sent ones: DB_ERR_LOST with
 * `lost` when the query itself was out (it may have run), DB_ERR_NOT_SENT
 * with `not_sent` when only its PREPARE was.
 */
void db__fail_sent(struct db_query *list, const char *lost,
		   const char *not_sent);

/* Send queued queries while the session can take them. */
void db__pump(struct db_async *c);

/* A socket event in UP: flush, send, read results and notifications. */
void db__up_io(struct db_async *c, int events);

#endif
