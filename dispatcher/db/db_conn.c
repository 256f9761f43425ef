/*
 * db_conn.c - the life of a struct db_async's connection: connect,
 * watch the socket, lose the session, reconnect with backoff, close.
 * Its queries are db_async.c's (see db_int.h for the split).
 *
 * State machine (changed only by set_state(), which logs at debug level):
 *
 *        open           timer fires             PQconnectPoll() OK
 *   --> WAITING ------------------> CONNECTING ------------------> UP
 *         ^                            |  fails / times out         |
 *         |  backoff timer started     |                            |
 *         +----------------------------+----------------------------+
 *               db__conn_down(): lost, read/write error, FATAL result
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
 * db__conn_down() is the one way out of CONNECTING and UP other than close:
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

static void on_timer(uv_timer_t *t);
static void on_poll(uv_poll_t *h, int status, int events);

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
void db__poll_update(struct db_async *c)
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
void db__conn_down(struct db_async *c, const char *why)
{
	char reason[DB_ASYNC_ERR_MAX], msg[DB_ASYNC_ERR_MAX + 128];
	char lost[DB_ASYNC_ERR_MAX + 128];
	int was_up = c->state == DB_ASYNC_UP;
	struct db_query *q, *list;
	uint64_t delay;

	assert(c->state == DB_ASYNC_UP || c->state == DB_ASYNC_CONNECTING);
	db__copy_msg(reason, sizeof(reason), why);
	poll_close(c);		/* before PQfinish() closes the socket */
	PQfinish(c->pg);
	c->pg = NULL;
	c->flushing = 0;
	c->kick = 0;
	c->piped = 0;
	q = db__list_detach(&c->sent);
	list = db__list_detach(&c->queue);
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

	snprintf(lost, sizeof(lost), "connection lost while the query was "
		 "in flight; outcome unknown (it may have run and "
		 "committed): %s", reason);
	snprintf(msg, sizeof(msg), "not sent: connection lost while "
		 "preparing its statement: %s", reason);
	db__fail_sent(q, lost, msg);
	snprintf(msg, sizeof(msg), "not sent: %s: %s",
		 was_up ? "connection lost" : "cannot connect", reason);
	db__fail_list(list, msg);
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
		db__conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	/* libpq: before the first PQconnectPoll(), wait for writable. */
	rc = poll_reset(c, UV_WRITABLE);
	if (rc < 0)
		db__conn_down(c, uv_strerror(rc));
}

static void connected(struct db_async *c)
{
	int rc;

	if (PQsetnonblocking(c->pg, 1) != 0) {
		db__conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeReceiver(c->pg, db__on_notice, NULL);
	if (c->opts.pipeline > 1) {
		if (PQenterPipelineMode(c->pg) != 1) {
			db__conn_down(c, PQerrorMessage(c->pg));
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
		db__conn_down(c, uv_strerror(rc));
		return;
	}
	log_info("database connected", "db=%s server_version=%d pid=%d",
		 c->name, PQserverVersion(c->pg), PQbackendPID(c->pg));
	if (c->opts.on_ready)
		c->opts.on_ready(c->opts.arg);
	if (c->state != DB_ASYNC_UP)
		return;
	db__pump(c);
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
			db__conn_down(c, uv_strerror(rc));
		return;
	default:
		db__conn_down(c, PQerrorMessage(c->pg));
		return;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct db_async *c = t->data;

	if (c->state == DB_ASYNC_WAITING)
		start_connect(c);
	else if (c->state == DB_ASYNC_CONNECTING)
		db__conn_down(c, "timeout while connecting");
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
			db__conn_down(c, uv_strerror(status));
		return;
	}
	if (c->state == DB_ASYNC_CONNECTING)
		connect_step(c);
	else if (c->state == DB_ASYNC_UP)
		db__up_io(c, events);
}

/* ---- opening and closing ---------------------------------------------- */

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
			db__copy_msg(err, errlen, msg ? msg : "out of memory");
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

int db_async_is_up(const struct db_async *conn)
{
	return conn->state == DB_ASYNC_UP;
}

uint64_t db_async_backoff_step_ms(const struct db_async *conn)
{
	return conn->state == DB_ASYNC_UP ? 0 : conn->step_ms;
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
	q = db__list_detach(&c->sent);
	list = db__list_detach(&c->queue);
	db__fail_sent(q, "connection closed while the query was in flight; "
		      "outcome unknown (it may have run and committed)",
		      "not sent: connection closed");
	db__fail_list(list, "not sent: connection closed");
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
