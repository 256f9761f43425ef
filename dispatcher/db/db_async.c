/*
 * db_async.c - PostgreSQL sessions on the libuv loop (see db.h).
 *
 * With db.c, the only file that calls PQ*.  One struct db_async is one
 * libpq connection in non-blocking mode, watched by a uv_poll_t, plus a
 * uv_timer_t for the connect timeout and the reconnect backoff.  Queries
 * wait in a FIFO; one is in flight at a time, or up to opts.pipeline in
 * libpq's pipeline mode (each followed by a Sync: its own transaction;
 * it is done when its PGRES_PIPELINE_SYNC comes).
 *
 * State machine (changed only by set_state(), which logs at debug level):
 *
 *        open           timer fires             PQconnectPoll() OK
 *   --> WAITING ------------------> CONNECTING ------------------> UP
 *         ^                            |  fails / times out         |
 *         |  backoff timer started     |                            |
 *         +----------------------------+----------------------------+
 *               conn_down(): lost, read/write error, FATAL result
 *
 *   any state --db_async_close()--> CLOSING --last handle closed--> freed
 *
 *   WAITING     no PGconn; the timer starts the next attempt (0 ms the
 *               first time, then the backoff: 100 ms doubling to 30 s,
 *               half of it random; it starts over only after a session
 *               that stayed up for 10 s).
 *   CONNECTING  PQconnectStartParams() then PQconnectPoll() on every
 *               socket event; the timer is the connect timeout.  libpq
 *               may close its socket and open another inside
 *               PQconnectPoll() (next host, SSL/GSS fallback), possibly
 *               under the same number, so the uv_poll_t is re-created
 *               after every PQconnectPoll() call: a libuv watcher never
 *               outlives the socket it was made for.
 *   UP          PQsetnonblocking(); on_ready; queries are sent from the
 *               queue.  The poll always waits for readable (results,
 *               notifications, EOF) and for writable while libpq has
 *               unsent output (PQflush() == 1) or a newly submitted query
 *               wants sending ("kick": queries are never sent from inside
 *               db_async_query(), so no callback can run there).
 *   CLOSING     nothing is sent; the poll and the timer are closed, and
 *               from the last close callback the PGconn is finished, the
 *               remaining queries fail, closed_cb runs and the struct is
 *               freed.
 *
 * conn_down() is the one way out of CONNECTING and UP other than close:
 * it stops the poll (before PQfinish() closes the socket), finishes the
 * PGconn, starts the backoff timer, fails the query in flight (LOST, or
 * NOT_SENT when only its PREPARE was out) and the queued ones (NOT_SENT),
 * then calls on_down.  A FATAL error result (e.g. 57P01 after
 * pg_terminate_backend()) counts as a lost connection, because the server
 * closes the session right after it.
 *
 * Re-entrancy: user callbacks may submit queries or close the connection.
 * The struct stays allocated until the last handle's close callback (a
 * later loop iteration), so after every user callback the code checks the
 * state and stops when it is no longer the one it was working in.
 *
 * Prepared statements are registered once per connection object and
 * carry the "generation" (a counter bumped on every successful connect)
 * of the session they were last prepared on; an execution whose
 * statement is from an older generation first sends PQsendPrepare().
 *
 * Ownership: struct db_async belongs to its opener until
 * db_async_close(); each struct db_poll (one uv_poll_t) is freed in its
 * close callback; queries and their copied parameters belong to the
 * connection until their callback has returned.  The conninfo may hold a
 * password: never logged, wiped on free.
 */
#include "db/db.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "base/log.h"
#include "base/mem.h"

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
	int got_result;		/* pipelined: a result of this step came */
	int ended;		/* pipelined: its NULL came, its Sync is next */
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
	struct query_list sent;	/* in flight: one, or opts.pipeline piped */
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

static void on_timer(uv_timer_t *t);
static void on_poll(uv_poll_t *h, int status, int events);
static void pump(struct db_async *c);

static const char *state_name(enum db_async_state s)
{
	switch (s) {
	case DB_ASYNC_WAITING:
		return "waiting";
	case DB_ASYNC_CONNECTING:
		return "connecting";
	case DB_ASYNC_UP:
		return "up";
	case DB_ASYNC_CLOSING:
		return "closing";
	}
	return "unknown";
}

/* The one place the state changes. */
static void set_state(struct db_async *c, enum db_async_state s,
		      const char *why)
{
	log_debug("db state", "db=%s from=%s to=%s why=%s", c->name,
		  state_name(c->state), state_name(s), why);
	c->state = s;
}

/* Copy a libpq message into buf without trailing newlines. */
static void copy_msg(char *buf, size_t len, const char *msg)
{
	size_t n;

	snprintf(buf, len, "%s", msg && *msg ? msg : "unknown error");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
}

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
static void query_fail(struct db_query *q, enum db_status status,
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
static struct db_query *list_detach(struct query_list *l)
{
	struct db_query *all = l->head;

	l->head = NULL;
	l->tail = &l->head;
	l->n = 0;
	return all;
}

/* Fail every query of a detached list with NOT_SENT. */
static void fail_list(struct db_query *list, const char *msg)
{
	struct db_query *q;

	while ((q = list) != NULL) {
		list = q->next;
		query_fail(q, DB_ERR_NOT_SENT, msg);
	}
}

/* ---- handles ---------------------------------------------------------- */

static void finish_close(struct db_async *c);

static void handle_closed(struct db_async *c)
{
	assert(c->handles_open > 0);
	if (--c->handles_open == 0 && c->state == DB_ASYNC_CLOSING)
		finish_close(c);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct db_poll *p = h->data;
	struct db_async *c = p->conn;

	free(p);
	handle_closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

/* Stop watching the socket (at once) and free the handle (later). */
static void poll_close(struct db_async *c)
{
	if (c->poll == NULL)
		return;
	uv_close((uv_handle_t *)&c->poll->handle, on_poll_closed);
	c->poll = NULL;
}

/*
 * Watch libpq's current socket for `events` with a new uv_poll_t (see the
 * header for why a new one).  Returns 0 or a negative libuv error.
 */
static int poll_reset(struct db_async *c, int events)
{
	struct db_poll *p;
	int fd, rc;

	poll_close(c);
	fd = PQsocket(c->pg);
	if (fd < 0)
		return UV_EBADF;
	p = mem_alloc_zero(1, sizeof(*p));
	rc = uv_poll_init(c->loop, &p->handle, fd);
	if (rc < 0) {
		free(p);	/* never initialised: no close needed */
		return rc;
	}
	p->handle.data = p;
	p->conn = c;
	p->events = events;
	c->handles_open++;
	c->poll = p;
	return uv_poll_start(&p->handle, events, on_poll);
}

/* In UP: readable always, writable while there is something to write. */
static void poll_update(struct db_async *c)
{
	int events = UV_READABLE;

	if (c->state != DB_ASYNC_UP || c->poll == NULL)
		return;
	if (c->flushing || c->kick)
		events |= UV_WRITABLE;
	/* Called after every socket event: restarting the watcher with
	 * the same events would cost two epoll_ctl() calls each time. */
	if (events == c->poll->events)
		return;
	c->poll->events = events;
	uv_poll_start(&c->poll->handle, events, on_poll);
}

/* ---- connection life -------------------------------------------------- */

/* The next backoff delay: base doubling to the cap, half of it random. */
static uint64_t backoff_next(struct db_async *c)
{
	uint64_t base = DB_ASYNC_BACKOFF_MIN_MS, half;

	if (c->attempts < 16)
		base <<= c->attempts;
	if (base > DB_ASYNC_BACKOFF_MAX_MS)
		base = DB_ASYNC_BACKOFF_MAX_MS;
	else
		c->attempts++;
	c->step_ms = base;
	/* xorshift64: only jitter, no need for quality. */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	half = base / 2;
	return half + c->rng % (half + 1);
}

/*
 * The session is gone or the attempt failed: drop the PGconn, schedule
 * the next attempt, fail the queries, tell the owner.  `why` may point
 * into the PGconn, so it is copied first.
 */
static void conn_down(struct db_async *c, const char *why)
{
	char reason[DB_ASYNC_ERR_MAX], msg[DB_ASYNC_ERR_MAX + 128];
	int was_up = c->state == DB_ASYNC_UP;
	struct db_query *q, *list;
	uint64_t delay;

	assert(c->state == DB_ASYNC_UP || c->state == DB_ASYNC_CONNECTING);
	copy_msg(reason, sizeof(reason), why);
	poll_close(c);		/* before PQfinish() closes the socket */
	PQfinish(c->pg);
	c->pg = NULL;
	c->flushing = 0;
	c->kick = 0;
	c->piped = 0;
	q = list_detach(&c->sent);
	list = list_detach(&c->queue);
	set_state(c, DB_ASYNC_WAITING, was_up ? "lost" : "connect failed");
	/*
	 * Only a session that stayed up a while resets the backoff: a
	 * server that accepts and then drops every session at once must
	 * not get a reconnection every 100 ms.
	 */
	if (was_up && uv_now(c->loop) - c->up_since >= DB_ASYNC_STABLE_MS)
		c->attempts = 0;
	delay = backoff_next(c);
	uv_timer_start(&c->timer, on_timer, delay, 0);
	/* Debug only: on_down tells the owner, who says it once for all
	 * its connections (an unreachable server fails every one). */
	log_debug(was_up ? "database connection lost" :
		  "cannot connect to the database",
		  "db=%s error=%s retry_in_ms=%llu", c->name, reason,
		  (unsigned long long)delay);

	while (q != NULL) {
		struct db_query *next = q->next;

		if (q->phase == DB_QUERY_RUNNING) {
			snprintf(msg, sizeof(msg), "connection lost while the "
				 "query was in flight; outcome unknown (it may "
				 "have run and committed): %s", reason);
			query_fail(q, DB_ERR_LOST, msg);
		} else {
			snprintf(msg, sizeof(msg), "not sent: connection lost "
				 "while preparing its statement: %s", reason);
			query_fail(q, DB_ERR_NOT_SENT, msg);
		}
		q = next;
	}
	snprintf(msg, sizeof(msg), "not sent: %s: %s",
		 was_up ? "connection lost" : "cannot connect", reason);
	fail_list(list, msg);
	if (c->state == DB_ASYNC_CLOSING || c->opts.on_down == NULL)
		return;
	snprintf(msg, sizeof(msg), "%s: %s",
		 was_up ? "connection lost" : "cannot connect", reason);
	c->opts.on_down(c->opts.arg, msg);
}

/* Start a connection attempt (from the timer, in WAITING). */
static void start_connect(struct db_async *c)
{
	/*
	 * Keywords before "dbname" are defaults that the conninfo overrides
	 * (expand_dbname).  Keepalives find a silent dead peer on TCP within
	 * about a minute instead of the kernel's two hours, and
	 * tcp_user_timeout bounds how long sent data may stay unacknowledged
	 * (a network cut mid-query).
	 */
	static const char *const keys[] = {
		"fallback_application_name", "client_encoding", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "dbname", NULL
	};
	const char *vals[] = {
		"pgpushd", "UTF8", "1", "30", "10", "3", "60000", c->conninfo,
		NULL
	};
	int rc;

	c->pg = PQconnectStartParams(keys, vals, 1);
	if (c->pg == NULL) {
		fprintf(stderr, "pgpushd: out of memory in libpq\n");
		abort();
	}
	set_state(c, DB_ASYNC_CONNECTING, "attempt");
	uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	/* libpq: before the first PQconnectPoll(), wait for writable. */
	rc = poll_reset(c, UV_WRITABLE);
	if (rc < 0)
		conn_down(c, uv_strerror(rc));
}

static void connected(struct db_async *c)
{
	int rc;

	if (PQsetnonblocking(c->pg, 1) != 0) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeReceiver(c->pg, db__on_notice, NULL);
	if (c->opts.pipeline > 1) {
		if (PQenterPipelineMode(c->pg) != 1) {
			conn_down(c, PQerrorMessage(c->pg));
			return;
		}
		c->piped = 1;
	}
	uv_timer_stop(&c->timer);
	c->step_ms = 0;
	c->gen++;
	c->up_since = uv_now(c->loop);
	set_state(c, DB_ASYNC_UP, "connected");
	rc = poll_reset(c, UV_READABLE);
	if (rc < 0) {
		conn_down(c, uv_strerror(rc));
		return;
	}
	log_info("database connected", "db=%s server_version=%d pid=%d",
		 c->name, PQserverVersion(c->pg), PQbackendPID(c->pg));
	if (c->opts.on_ready)
		c->opts.on_ready(c->opts.arg);
	if (c->state != DB_ASYNC_UP)
		return;
	pump(c);
}

/* One PQconnectPoll() step, on a socket event in CONNECTING. */
static void connect_step(struct db_async *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->pg);
	int rc;

	switch (st) {
	case PGRES_POLLING_OK:
		connected(c);
		return;
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		rc = poll_reset(c, st == PGRES_POLLING_READING ?
				UV_READABLE : UV_WRITABLE);
		if (rc < 0)
			conn_down(c, uv_strerror(rc));
		return;
	default:
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct db_async *c = t->data;

	if (c->state == DB_ASYNC_WAITING)
		start_connect(c);
	else if (c->state == DB_ASYNC_CONNECTING)
		conn_down(c, "timeout while connecting");
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
			conn_down(c, PQerrorMessage(c->pg));
			return -1;
		}
		copy_msg(err, sizeof(err), PQerrorMessage(c->pg));
		query_fail(q, DB_ERR_QUERY, err);
		return 0;
	}
	rc = PQflush(c->pg);
	if (rc < 0) {
		conn_down(c, PQerrorMessage(c->pg));
		return -1;
	}
	c->flushing = rc == 1;
	poll_update(c);
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
static void pump(struct db_async *c)
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
		conn_down(c, desc);
		return;
	}
	if (q->phase == DB_QUERY_PREPARING && q->error == NULL) {
		/* Still the one in flight: now it runs. */
		q->stmt->gen = c->gen;
		PQclear(q->last);
		q->last = NULL;
		if (send_query(c, q) == 0)
			pump(c);	/* in case it failed at once */
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
	pump(c);
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
			conn_down(c, "COPY is not supported on an async "
				  "connection");
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
static void up_io(struct db_async *c, int events)
{
	int rc, read_ok = 1;

	if (events & UV_WRITABLE) {
		if (c->flushing) {
			rc = PQflush(c->pg);
			if (rc < 0) {
				conn_down(c, PQerrorMessage(c->pg));
				return;
			}
			c->flushing = rc == 1;
		}
		if (c->kick) {
			c->kick = 0;
			pump(c);
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
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	poll_update(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct db_poll *p = h->data;
	struct db_async *c = p->conn;

	if (p != c->poll)
		return;		/* a handle being replaced */
	if (status < 0) {
		if (c->state == DB_ASYNC_CONNECTING ||
		    c->state == DB_ASYNC_UP)
			conn_down(c, uv_strerror(status));
		return;
	}
	if (c->state == DB_ASYNC_CONNECTING)
		connect_step(c);
	else if (c->state == DB_ASYNC_UP)
		up_io(c, events);
}

/* ---- the public API --------------------------------------------------- */

int db_async_open(struct db_async **out, uv_loop_t *loop,
		  const char *conninfo, const struct db_async_opts *opts,
		  char *err, size_t errlen)
{
	PQconninfoOption *parsed, *o;
	uint64_t timeout_ms = DB_ASYNC_CONNECT_TIMEOUT_MS;
	char *msg = NULL;
	struct db_async *c;
	long secs;

	*out = NULL;
	/* Refuse what can never connect, once, instead of retrying. */
	if (conninfo == NULL)
		conninfo = "";
	parsed = PQconninfoParse(conninfo, &msg);
	if (parsed == NULL) {
		/*
		 * libpq's message may quote a piece of the conninfo, which
		 * could be the password: withhold it when one may be there.
		 */
		if (errlen > 0 && (strstr(conninfo, "password") ||
				   strchr(conninfo, '@')))
			snprintf(err, errlen, "invalid conninfo (details "
				 "withheld: it may hold a password)");
		else if (errlen > 0)
			copy_msg(err, errlen, msg ? msg : "out of memory");
		PQfreemem(msg);
		return -EINVAL;
	}
	/*
	 * libpq enforces connect_timeout only in blocking connects: do it
	 * here (2 s at least, as libpq does; 0 or none: the default).
	 */
	for (o = parsed; o->keyword; o++) {
		if (strcmp(o->keyword, "connect_timeout") != 0 || !o->val)
			continue;
		secs = atol(o->val);
		if (secs > 0)
			timeout_ms = (uint64_t)(secs < 2 ? 2 : secs) * 1000;
	}
	PQconninfoFree(parsed);

	c = mem_alloc_zero(1, sizeof(*c));
	c->loop = loop;
	c->conninfo = mem_strdup(conninfo);
	if (opts)
		c->opts = *opts;
	c->name = mem_strdup(c->opts.name ? c->opts.name : "db");
	c->opts.name = c->name;
	c->queue.tail = &c->queue.head;
	c->sent.tail = &c->sent.head;
	if (c->opts.pipeline < 1)
		c->opts.pipeline = 1;
	c->connect_timeout_ms = timeout_ms;
	c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c;
	if (c->rng == 0)
		c->rng = 1;
	c->state = DB_ASYNC_WAITING;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 1;
	/* The first attempt runs from the loop, never inside this call. */
	uv_timer_start(&c->timer, on_timer, 0, 0);
	*out = c;
	return 0;
}

/* Queue q and make sure the loop will send it. */
static void enqueue(struct db_async *c, struct db_query *q)
{
	list_push(&c->queue, q);
	if (!c->kick && may_send(c, c->queue.head)) {
		c->kick = 1;
		poll_update(c);
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

int db_async_is_up(const struct db_async *conn)
{
	return conn->state == DB_ASYNC_UP;
}

uint64_t db_async_backoff_step_ms(const struct db_async *conn)
{
	return conn->state == DB_ASYNC_UP ? 0 : conn->step_ms;
}

size_t db_async_pending(const struct db_async *conn)
{
	return conn->queue.n + conn->sent.n;
}

int db_async_close(struct db_async *conn, db_closed_fn closed_cb, void *arg)
{
	if (conn->state == DB_ASYNC_CLOSING)
		return -EALREADY;
	set_state(conn, DB_ASYNC_CLOSING, "close");
	conn->closed_cb = closed_cb;
	conn->closed_arg = arg;
	conn->kick = 0;
	poll_close(conn);	/* before PQfinish() closes the socket */
	uv_close((uv_handle_t *)&conn->timer, on_timer_closed);
	return 0;
}

/* From the last handle's close callback: fail what is left, free. */
static void finish_close(struct db_async *c)
{
	struct db_query *q, *list;
	struct db_stmt *s;

	PQfinish(c->pg);
	c->pg = NULL;
	q = list_detach(&c->sent);
	list = list_detach(&c->queue);
	while (q != NULL) {
		struct db_query *next = q->next;

		if (q->phase == DB_QUERY_RUNNING)
			query_fail(q, DB_ERR_LOST, "connection closed while "
				   "the query was in flight; outcome unknown "
				   "(it may have run and committed)");
		else
			query_fail(q, DB_ERR_NOT_SENT,
				   "not sent: connection closed");
		q = next;
	}
	fail_list(list, "not sent: connection closed");
	/* Callbacks above cannot queue more: CLOSING refuses. */
	assert(c->queue.head == NULL);
	log_debug("db closed", "db=%s", c->name);
	if (c->closed_cb)
		c->closed_cb(c->closed_arg);
	while ((s = c->stmts) != NULL) {
		c->stmts = s->next;
		free(s->name);
		free(s->sql);
		free(s);
	}
	explicit_bzero(c->conninfo, strlen(c->conninfo));
	free(c->conninfo);
	free(c->name);
	free(c);
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
