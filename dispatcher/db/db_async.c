/*
 * db_async.c - the queries of a struct db_async (see db.h): the FIFO,
 * prepared statements, pipelining, sending, reading results and
 * notifications, and the accessors of struct db_result.  The connection
 * they travel on is db_conn.c's (see db_int.h for the split).
 *
 * One struct db_async is one libpq connection in non-blocking mode.
 * Queries wait in a FIFO; one is in flight at a time, or up to opts.pipeline in
 * libpq's pipeline mode (each followed by a Sync: its own transaction;
 * it is done when its PGRES_PIPELINE_SYNC comes).
 *
 * In UP the poll always waits for readable (results, notifications, EOF)
 * and for writable while libpq has unsent output (PQflush() == 1) or a
 * newly submitted query wants sending ("kick": queries are never sent
 * from inside db_async_query(), so no callback can run there).
 *
 * Prepared statements are registered once per connection object and
 * carry the "generation" (a counter bumped on every successful connect)
 * of the session they were last prepared on; an execution whose
 * statement is from an older generation first sends PQsendPrepare().
 *
 * Re-entrancy: user callbacks may submit queries or close the connection;
 * after every user callback the code checks the state and stops when it
 * is no longer the one it was working in.
 */
#include "db/db_int.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

/* ---- queries ---------------------------------------------------------- */

static struct db_query *query_new(const char *sql, struct db_stmt *stmt,
				  int nparams, const char *const *values,
				  db_result_fn cb, void *arg)
{
	struct db_query *q = mem_alloc_zero(1, sizeof(*q));
	int i;

	q->sql = sql ? mem_strdup(sql) : NULL;
	q->stmt = stmt;
	q->nparams = nparams;
	if (nparams > 0) {
		q->values = mem_alloc_zero((size_t)nparams, sizeof(char *));
		for (i = 0; i < nparams; i++)
			q->values[i] = values && values[i] ?
				mem_strdup(values[i]) : NULL;
	}
	q->cb = cb;
	q->arg = arg;
	return q;
}

static void query_free(struct db_query *q)
{
	int i;

	for (i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	PQclear(q->last);
	PQclear(q->error);
	free(q->sql);
	free(q);
}

/* The text that was sent, for error positions. */
static const char *query_sql(const struct db_query *q)
{
	return q->stmt ? q->stmt->sql : q->sql;
}

/* Run q's callback with a failure that has no server result, free q. */
void db__query_fail(struct db_query *q, enum db_status status,
		    const char *msg)
{
	struct db_result r = { status, NULL, msg, NULL };

	q->cb(q->arg, &r);
	query_free(q);
}

/* A FIFO of queries linked by next: c->queue (waiting) and c->sent. */
static void list_push(struct query_list *l, struct db_query *q)
{
	q->next = NULL;
	*l->tail = q;
	l->tail = &q->next;
	l->n++;
}

static void list_push_front(struct query_list *l, struct db_query *q)
{
	q->next = l->head;
	l->head = q;
	if (l->tail == &l->head)
		l->tail = &q->next;
	l->n++;
}

static struct db_query *list_pop(struct query_list *l)
{
	struct db_query *q = l->head;

	if (q == NULL)
		return NULL;
	l->head = q->next;
	if (l->head == NULL)
		l->tail = &l->head;
	l->n--;
	q->next = NULL;
	return q;
}

/* Remove the newest query. */
static void list_drop_last(struct query_list *l)
{
	struct db_query **pp = &l->head;

	while ((*pp)->next != NULL)
		pp = &(*pp)->next;
	*pp = NULL;
	l->tail = pp;
	l->n--;
}

/* Take every query out of l, oldest first (new ones start a fresh list). */
struct db_query *db__list_detach(struct query_list *l)
{
	struct db_query *all = l->head;

	l->head = NULL;
	l->tail = &l->head;
	l->n = 0;
	return all;
}

/* Fail every query of a detached list with NOT_SENT. */
void db__fail_list(struct db_query *list, const char *msg)
{
	struct db_query *q;

	while ((q = list) != NULL) {
		list = q->next;
		db__query_fail(q, DB_ERR_NOT_SENT, msg);
	}
}

void db__fail_sent(struct db_query *list, const char *lost,
		   const char *not_sent)
{
	struct db_query *q;

	while ((q = list) != NULL) {
		list = q->next;
		if (q->phase == DB_QUERY_RUNNING)
			db__query_fail(q, DB_ERR_LOST, lost);
		else
			db__query_fail(q, DB_ERR_NOT_SENT, not_sent);
	}
}

/* ---- sending and receiving -------------------------------------------- */

/*
 * Send q (already the newest of c->sent): its statement's PREPARE when
 * this session lacks it, else the query.  Returns 0 when sent (or failed
 * at once and reported), -1 when the connection went down.
 */
static int send_query(struct db_async *c, struct db_query *q)
{
	const char *const *vals = (const char *const *)q->values;
	char err[DB_ASYNC_ERR_MAX];
	int ok, rc;

	q->got_result = 0;
	q->ended = 0;
	if (q->stmt && q->stmt->gen != c->gen) {
		q->phase = DB_QUERY_PREPARING;
		ok = PQsendPrepare(c->pg, q->stmt->name, q->stmt->sql,
				   q->stmt->nparams, NULL);
	} else if (q->stmt) {
		q->phase = DB_QUERY_RUNNING;
		ok = PQsendQueryPrepared(c->pg, q->stmt->name, q->nparams,
					 vals, NULL, NULL, 0);
	} else if (q->nparams == 0 && !c->piped) {
		q->phase = DB_QUERY_RUNNING;
		ok = PQsendQuery(c->pg, q->sql);
	} else {
		q->phase = DB_QUERY_RUNNING;
		ok = PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, vals,
				       NULL, NULL, 0);
	}
	/* Piped, every step ends its own implicit transaction: one
	 * failing does not abort the next, and its effects are committed
	 * when its Sync's result comes (which is when it is done). */
	if (ok && c->piped)
		ok = PQpipelineSync(c->pg);
	if (!ok) {
		/* q is the newest sent: nothing was sent behind it. */
		list_drop_last(&c->sent);
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			/* Nothing went out: it fails as "not sent". */
			q->phase = DB_QUERY_QUEUED;
			list_push_front(&c->queue, q);
			db__conn_down(c, PQerrorMessage(c->pg));
			return -1;
		}
		db__copy_msg(err, sizeof(err), PQerrorMessage(c->pg));
		db__query_fail(q, DB_ERR_QUERY, err);
		return 0;
	}
	rc = PQflush(c->pg);
	if (rc < 0) {
		db__conn_down(c, PQerrorMessage(c->pg));
		return -1;
	}
	c->flushing = rc == 1;
	db__poll_update(c);
	return 0;
}

/*
 * Whether q (the head of the queue) may go out now: when nothing is in
 * flight, or, piped, behind fewer than opts.pipeline others.  A step
 * that must first PREPARE its statement goes alone, and nothing follows
 * it until it runs, so a PREPARE never fails under anyone's feet.
 */
static int may_send(const struct db_async *c, const struct db_query *q)
{
	if (c->state != DB_ASYNC_UP || q == NULL)
		return 0;
	if (c->sent.head == NULL)
		return 1;
	if (!c->piped || c->sent.n >= (size_t)c->opts.pipeline)
		return 0;
	if (c->sent.head->phase == DB_QUERY_PREPARING)
		return 0;
	return q->stmt == NULL || q->stmt->gen == c->gen;
}

/* Send queued queries while the session can take them. */
void db__pump(struct db_async *c)
{
	struct db_query *q;

	while (may_send(c, c->queue.head)) {
		q = list_pop(&c->queue);
		list_push(&c->sent, q);
		if (send_query(c, q) < 0)
			return;
	}
}

static int is_error_status(ExecStatusType st)
{
	return st == PGRES_BAD_RESPONSE || st == PGRES_FATAL_ERROR ||
	       st == PGRES_NONFATAL_ERROR || st == PGRES_PIPELINE_ABORTED;
}

/* A FATAL or PANIC error: the server ends the session right after. */
static int is_fatal(const PGresult *res)
{
	const char *sev = PQresultErrorField(res,
					     PG_DIAG_SEVERITY_NONLOCALIZED);

	return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* The in-flight step got all its results (PQgetResult() gave NULL). */
static void inflight_done(struct db_async *c)
{
	struct db_query *q = c->sent.head;
	char err[DB_ASYNC_ERR_MAX + 128], desc[DB_ASYNC_ERR_MAX];
	struct db_result r;

	/*
	 * With no error result the query got to its end before any loss
	 * (libpq reports a loss while busy as an error result first), so
	 * only a failed query can be an unknown outcome.
	 */
	if (q->error && (is_fatal(q->error) ||
			 PQstatus(c->pg) == CONNECTION_BAD)) {
		db__describe_error(c->pg, q->error, query_sql(q), desc,
				   sizeof(desc));
		db__conn_down(c, desc);
		return;
	}
	if (q->phase == DB_QUERY_PREPARING && q->error == NULL) {
		/* Still the one in flight: now it runs. */
		q->stmt->gen = c->gen;
		PQclear(q->last);
		q->last = NULL;
		if (send_query(c, q) == 0)
			db__pump(c);	/* in case it failed at once */
		return;
	}
	list_pop(&c->sent);
	r.status = q->error ? DB_ERR_QUERY : DB_OK;
	r.res = q->error ? q->error : q->last;
	r.sqlstate = NULL;
	err[0] = '\0';
	if (q->error) {
		db__describe_error(c->pg, q->error, query_sql(q), desc,
				   sizeof(desc));
		if (q->phase == DB_QUERY_PREPARING)
			snprintf(err, sizeof(err), "cannot prepare statement "
				 "\"%s\": %s", q->stmt->name, desc);
		else
			snprintf(err, sizeof(err), "%s", desc);
		r.sqlstate = PQresultErrorField(q->error, PG_DIAG_SQLSTATE);
	}
	r.error = err;
	q->cb(q->arg, &r);
	query_free(q);
	db__pump(c);
}

/* Collect results of the in-flight step while libpq has them parsed. */
static void read_results(struct db_async *c)
{
	struct db_query *q;
	PGresult *res;
	ExecStatusType st;

	while (c->state == DB_ASYNC_UP && (q = c->sent.head) != NULL &&
	       !PQisBusy(c->pg)) {
		res = PQgetResult(c->pg);
		if (c->piped) {
			/* Piped, a step's results end with NULL and then
			 * its Sync's PGRES_PIPELINE_SYNC. */
			if (res == NULL) {
				if (!q->got_result || q->ended)
					break;	/* nothing more yet */
				q->ended = 1;
				continue;
			}
			if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
				PQclear(res);
				if (q->ended)
					inflight_done(c);
				continue;
			}
			q->got_result = 1;
			if (is_error_status(PQresultStatus(res)) &&
			    is_fatal(res)) {
				/* The server ends the session: no Sync will
				 * come.  inflight_done() takes it down. */
				PQclear(q->error);
				q->error = res;
				inflight_done(c);
				continue;
			}
		} else if (res == NULL) {
			inflight_done(c);
			continue;
		}
		st = PQresultStatus(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH) {
			PQclear(res);
			db__conn_down(c, "COPY is not supported on an "
				      "async connection");
			return;
		}
		if (is_error_status(st) && q->error == NULL) {
			q->error = res;
		} else if (is_error_status(st) || q->error) {
			PQclear(res);
		} else {
			PQclear(q->last);
			q->last = res;
		}
	}
}

static void deliver_notifies(struct db_async *c)
{
	PGnotify *n;

	while (c->state == DB_ASYNC_UP && (n = PQnotifies(c->pg)) != NULL) {
		if (c->opts.on_notify)
			c->opts.on_notify(c->opts.arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

/* A socket event in UP. */
void db__up_io(struct db_async *c, int events)
{
	int rc, read_ok = 1;

	if (events & UV_WRITABLE) {
		if (c->flushing) {
			rc = PQflush(c->pg);
			if (rc < 0) {
				db__conn_down(c, PQerrorMessage(c->pg));
				return;
			}
			c->flushing = rc == 1;
		}
		if (c->kick) {
			c->kick = 0;
			db__pump(c);
			if (c->state != DB_ASYNC_UP)
				return;
		}
	}
	if (events & (UV_READABLE | UV_DISCONNECT)) {
		/*
		 * Even when this fails, parse what did arrive: results and
		 * notifications before the EOF still count.
		 */
		read_ok = PQconsumeInput(c->pg);
		if (read_ok && c->flushing) {
			rc = PQflush(c->pg);
			c->flushing = rc == 1;
			if (rc < 0)
				read_ok = 0;
		}
		deliver_notifies(c);
		if (c->state != DB_ASYNC_UP)
			return;
		read_results(c);
		if (c->state != DB_ASYNC_UP)
			return;
		deliver_notifies(c);	/* parsed along with the results */
		if (c->state != DB_ASYNC_UP)
			return;
	}
	if (!read_ok || PQstatus(c->pg) == CONNECTION_BAD) {
		db__conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	db__poll_update(c);
}

/* ---- the public API --------------------------------------------------- */

/* Queue q and make sure the loop will send it. */
static void enqueue(struct db_async *c, struct db_query *q)
{
	list_push(&c->queue, q);
	if (!c->kick && may_send(c, c->queue.head)) {
		c->kick = 1;
		db__poll_update(c);
	}
}

int db_async_query(struct db_async *conn, const char *sql, int nparams,
		   const char *const *values, db_result_fn cb, void *arg)
{
	assert(sql != NULL && cb != NULL);
	if (conn->state == DB_ASYNC_CLOSING)
		return -ESHUTDOWN;
	if (nparams < 0 || nparams > DB_ASYNC_MAX_PARAMS)
		return -EINVAL;
	enqueue(conn, query_new(sql, NULL, nparams, values, cb, arg));
	return 0;
}

static struct db_stmt *find_stmt(struct db_async *c, const char *name)
{
	struct db_stmt *s;

	for (s = c->stmts; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

int db_async_prepare_once(struct db_async *conn, const char *name,
			  const char *sql, int nparams)
{
	struct db_stmt *s;

	assert(name != NULL && sql != NULL);
	if (conn->state == DB_ASYNC_CLOSING)
		return -ESHUTDOWN;
	if (name[0] == '\0' || nparams < 0 || nparams > DB_ASYNC_MAX_PARAMS)
		return -EINVAL;
	s = find_stmt(conn, name);
	if (s)
		return strcmp(s->sql, sql) == 0 && s->nparams == nparams ?
			0 : -EEXIST;
	s = mem_alloc_zero(1, sizeof(*s));
	s->name = mem_strdup(name);
	s->sql = mem_strdup(sql);
	s->nparams = nparams;
	s->next = conn->stmts;
	conn->stmts = s;
	return 0;
}

int db_async_exec_prepared(struct db_async *conn, const char *name,
			   int nparams, const char *const *values,
			   db_result_fn cb, void *arg)
{
	struct db_stmt *s;

	assert(name != NULL && cb != NULL);
	if (conn->state == DB_ASYNC_CLOSING)
		return -ESHUTDOWN;
	s = find_stmt(conn, name);
	if (s == NULL)
		return -ENOENT;
	if (nparams != s->nparams)
		return -EINVAL;
	enqueue(conn, query_new(NULL, s, nparams, values, cb, arg));
	return 0;
}

size_t db_async_pending(const struct db_async *conn)
{
	return conn->queue.n + conn->sent.n;
}

/* ---- results ---------------------------------------------------------- */

enum db_status db_result_status(const struct db_result *res)
{
	return res->status;
}

int db_result_ok(const struct db_result *res)
{
	return res->status == DB_OK;
}

const char *db_result_error(const struct db_result *res)
{
	return res->status == DB_OK || res->error == NULL ? "" : res->error;
}

const char *db_result_sqlstate(const struct db_result *res)
{
	return res->status == DB_ERR_QUERY ? res->sqlstate : NULL;
}

int db_result_ntuples(const struct db_result *res)
{
	return res->status == DB_OK && res->res ? PQntuples(res->res) : 0;
}

int db_result_nfields(const struct db_result *res)
{
	return res->status == DB_OK && res->res ? PQnfields(res->res) : 0;
}

const char *db_result_field_name(const struct db_result *res, int col)
{
	if (col < 0 || col >= db_result_nfields(res))
		return NULL;
	return PQfname(res->res, col);
}

int db_result_isnull(const struct db_result *res, int row, int col)
{
	if (row < 0 || row >= db_result_ntuples(res) || col < 0 ||
	    col >= db_result_nfields(res))
		return 1;
	return PQgetisnull(res->res, row, col);
}

const char *db_result_value(const struct db_result *res, int row, int col)
{
	if (db_result_isnull(res, row, col))
		return NULL;
	return PQgetvalue(res->res, row, col);
}

long db_result_affected(const struct db_result *res)
{
	const char *n;

	if (res->status != DB_OK || res->res == NULL)
		return 0;
	n = PQcmdTuples((PGresult *)res->res);
	return n && *n ? atol(n) : 0;
}
