/*
 * test_db_async.c - struct db_async against a real PostgreSQL server.
 *
 * Needs a database: the PG* variables that tests/harness/run.sh sets.
 * Without PGHOST/PGPORT/PGUSER it skips everything.  The tests drive one
 * libuv loop step by step (run_until) so they read top to bottom:
 * connect, parameterised queries, NULLs, prepared statements, many rows,
 * SQL errors with SQLSTATE, multi-statement strings, LISTEN/NOTIFY from a
 * second connection, 1000 queued queries in order, 8 MiB each way, a
 * session killed and reconnected (with a canary password that must never
 * reach the log; a query submitted while it is down runs after the
 * reconnect), close with queries queued and in flight, an unreachable
 * server, a server that never answers (connect timeout), and finally that
 * the loop has no handle left.
 *
 * With --reconnect-scenario it runs the fault scenario that
 * tests/integration/db_async.t drives: that script terminates this
 * process's backend (application_name pgpush_db_async_reconnect) twice,
 * once while a query is in flight and once while the session is idle, and
 * this side checks the failure reports, the reconnection, the re-LISTEN
 * and the re-prepared statement.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "db/db.h"
#include "base/log.h"
#include "tap.h"

#define WAIT_MS 15000

static uv_loop_t loop;
static int timed_out;

static void on_guard(uv_timer_t *t)
{
	timed_out = 1;
}

/*
 * Run the loop until *flag >= want or `ms` pass.  Returns 1 when the
 * flag got there.
 */
static int run_until(const int *flag, int want, int ms)
{
	uv_timer_t guard;

	timed_out = 0;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, on_guard, (uint64_t)ms, 0);
	while (*flag < want && !timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag >= want;
}

/* What a test keeps of a result (which dies with its callback). */
struct cap {
	int done;
	enum db_status status;
	char err[1024];
	char sqlstate[8];
	int ntuples, nfields;
	long affected;
	char first_name[64];
	char text[8192];	/* rows by '\n', fields by '|', NULL as ~ */
};

static void on_result(void *arg, const struct db_result *r)
{
	struct cap *c = arg;
	size_t n = 0;
	int row, col;

	memset(c, 0, sizeof(*c));
	c->done = 1;
	c->status = db_result_status(r);
	snprintf(c->err, sizeof(c->err), "%s", db_result_error(r));
	if (db_result_sqlstate(r))
		snprintf(c->sqlstate, sizeof(c->sqlstate), "%s",
			 db_result_sqlstate(r));
	c->ntuples = db_result_ntuples(r);
	c->nfields = db_result_nfields(r);
	c->affected = db_result_affected(r);
	if (db_result_field_name(r, 0))
		snprintf(c->first_name, sizeof(c->first_name), "%s",
			 db_result_field_name(r, 0));
	for (row = 0; row < c->ntuples; row++) {
		for (col = 0; col < c->nfields; col++) {
			const char *v = db_result_value(r, row, col);

			if (n < sizeof(c->text))
				n += (size_t)snprintf(c->text + n,
					sizeof(c->text) - n, "%s%s",
					col ? "|" : (row ? "\n" : ""),
					v ? v : "~");
		}
	}
}

/* Run one query and wait for it; NULL-terminated list of parameters. */
static struct cap *query(struct db_async *db, const char *sql, int n,
			 const char *const *vals)
{
	static struct cap c;

	memset(&c, 0, sizeof(c));
	if (db_async_query(db, sql, n, vals, on_result, &c) != 0) {
		snprintf(c.err, sizeof(c.err), "not queued");
		c.status = DB_ERR_NOT_SENT;
		return &c;
	}
	if (!run_until(&c.done, 1, WAIT_MS))
		snprintf(c.err, sizeof(c.err), "timed out");
	return &c;
}

static struct cap *exec_prepared(struct db_async *db, const char *name,
				 int n, const char *const *vals)
{
	static struct cap c;

	memset(&c, 0, sizeof(c));
	if (db_async_exec_prepared(db, name, n, vals, on_result, &c) != 0) {
		snprintf(c.err, sizeof(c.err), "not queued");
		c.status = DB_ERR_NOT_SENT;
		return &c;
	}
	if (!run_until(&c.done, 1, WAIT_MS))
		snprintf(c.err, sizeof(c.err), "timed out");
	return &c;
}

/* The owner of a connection, as the daemon's modules will be. */
struct owner {
	int ready;
	int downs;
	char down[1024];
	int notifies;
	char channel[128];
	char payload[256];
	int closed;
	const char *listen_sql;	/* sent from on_ready when set */
	struct db_async *db;
	struct cap listen;
};

static void owner_ready(void *arg)
{
	struct owner *o = arg;

	o->ready++;
	if (o->listen_sql)
		db_async_query(o->db, o->listen_sql, 0, NULL, on_result,
			       &o->listen);
}

static void owner_notify(void *arg, const char *channel, const char *payload)
{
	struct owner *o = arg;

	o->notifies++;
	snprintf(o->channel, sizeof(o->channel), "%s", channel);
	snprintf(o->payload, sizeof(o->payload), "%s", payload);
}

static void owner_down(void *arg, const char *error)
{
	struct owner *o = arg;

	o->downs++;
	snprintf(o->down, sizeof(o->down), "%s", error);
}

static void owner_closed(void *arg)
{
	((struct owner *)arg)->closed++;
}

static struct db_async *open_owner_piped(struct owner *o, const char *name,
					 const char *conninfo, int pipeline)
{
	struct db_async_opts opts = {
		name, owner_ready, owner_notify, owner_down, o, pipeline
	};
	char err[256] = "";
	int rc;

	rc = db_async_open(&o->db, &loop, conninfo, &opts, err, sizeof(err));
	if (rc != 0)
		diag("db_async_open: %d %s", rc, err);
	return o->db;
}

static struct db_async *open_owner(struct owner *o, const char *name,
				   const char *conninfo)
{
	return open_owner_piped(o, name, conninfo, 0);
}

/* ---- the 1000-query queue ---------------------------------------------- */

#define NQUEUE 1000

static int queue_next;		/* the index the next callback must carry */
static int queue_bad;
static uint64_t queue_last_ns, queue_gap_ns;	/* the slowest step */

static void on_queued(void *arg, const struct db_result *r)
{
	int i = *(const int *)arg;
	char want[16];

	snprintf(want, sizeof(want), "%d", i);
	if (i != queue_next || !db_result_ok(r) ||
	    db_result_value(r, 0, 0) == NULL ||
	    strcmp(db_result_value(r, 0, 0), want) != 0) {
		if (queue_bad++ < 3)
			diag("queue: callback %d for query %d: %s", queue_next,
			     i, db_result_error(r));
	}
	queue_next++;
	if (uv_hrtime() - queue_last_ns > queue_gap_ns)
		queue_gap_ns = uv_hrtime() - queue_last_ns;
	queue_last_ns = uv_hrtime();
}

static void test_queue(struct db_async *db)
{
	static int idx[NQUEUE];
	char val[16];
	const char *vals[1] = { val };
	int i, rc = 0;
	uint64_t start;

	queue_next = 0;
	queue_bad = 0;
	for (i = 0; i < NQUEUE && rc == 0; i++) {
		idx[i] = i;
		snprintf(val, sizeof(val), "%d", i);
		if (i % 2)
			rc = db_async_query(db, "SELECT $1::int", 1, vals,
					    on_queued, &idx[i]);
		else
			rc = db_async_exec_prepared(db, "echo", 1, vals,
						    on_queued, &idx[i]);
	}
	is_int(rc, 0, "1000 queries queued (plain and prepared mixed)");
	is_int(db_async_pending(db), NQUEUE, "all 1000 are pending");
	queue_last_ns = uv_hrtime();
	queue_gap_ns = 0;
	start = uv_hrtime();
	run_until(&queue_next, NQUEUE, 120000);
	is_int(queue_next, NQUEUE, "all 1000 callbacks ran");
	diag("1000 queries in %llu ms, slowest step %llu ms",
	     (unsigned long long)(uv_hrtime() - start) / 1000000,
	     (unsigned long long)queue_gap_ns / 1000000);
	is_int(queue_bad, 0, "each in submission order with its own result");
	is_int(db_async_pending(db), 0, "nothing pending afterwards");
}

/* ---- the normal tests -------------------------------------------------- */

static void test_open_errors(void)
{
	struct db_async *db = (struct db_async *)&loop;
	struct db_async_opts opts = { .name = "bad" };
	char err[256] = "";
	int rc;

	rc = db_async_open(&db, &loop, "this is not a conninfo", &opts, err,
			   sizeof(err));
	is_int(rc, -EINVAL, "an unparsable conninfo is refused at open");
	is_ptr(db, NULL, "and no connection is returned");
	ok(err[0] != '\0', "with a reason (%s)", err);
	rc = db_async_open(&db, &loop, "password=sekrit nonsense", &opts, err,
			   sizeof(err));
	is_int(rc, -EINVAL, "a bad conninfo holding a password is refused");
	ok(strstr(err, "sekrit") == NULL, "without quoting it (%s)", err);
}

static size_t big_len;
static int big_done;

static void on_big(void *arg, const struct db_result *r)
{
	const char *v = db_result_value(r, 0, 0);

	big_len = v ? strlen(v) : 0;
	big_done = 1;
}

/* Bigger than any socket buffer: partial writes and reads. */
static void test_big(struct db_async *db)
{
	size_t n = 8u << 20;
	char *big = malloc(n + 1);
	const char *vals[2] = { big, "8388608" };
	struct cap *c;

	memset(big, 'x', n);
	big[n] = '\0';
	c = query(db, "SELECT length($1), $1 = repeat('x', $2::int)", 2,
		  vals);
	is_str(c->text, "8388608|t", "an 8 MiB parameter goes out whole");
	free(big);
	big_done = 0;
	db_async_query(db, "SELECT repeat('y', 8388608)", 0, NULL, on_big,
		       NULL);
	run_until(&big_done, 1, WAIT_MS);
	is_int(big_len, n, "an 8 MiB value comes back whole");
}

static void test_queries(struct db_async *db)
{
	const char *p4[] = { "2", "40", "y", NULL };
	const char *p1[] = { "it's \"quoted\"" };
	struct cap *c;

	c = query(db, "SELECT $1::int + $2::int AS sum, 'x' || $3, "
		  "$4::text IS NULL", 4, p4);
	is_int(c->status, DB_OK, "a parameterised query succeeds (%s)",
	       c->err);
	is_str(c->text, "42|xy|t", "its values come back as text");
	is_str(c->first_name, "sum", "with the column names");
	is_int(c->nfields, 3, "and the column count");

	c = query(db, "SELECT $1::text", 1, p1);
	is_str(c->text, p1[0], "parameters are never interpolated");

	c = query(db, "SELECT NULL::text, ''::text", 0, NULL);
	is_str(c->text, "~|", "SQL NULL is NULL, an empty string is \"\"");

	c = query(db, "SELECT g, g * 2 FROM generate_series(1, 500) g", 0,
		  NULL);
	is_int(c->ntuples, 500, "a multi-row result has every row");
	ok(strstr(c->text, "\n500|1000") != NULL, "including the last one");

	c = query(db, "SELECT * FROM no_such_table", 0, NULL);
	is_int(c->status, DB_ERR_QUERY, "an SQL error is DB_ERR_QUERY");
	is_str(c->sqlstate, "42P01", "with its SQLSTATE");
	like_str(c->err, "ERROR 42P01: relation \"no_such_table\"",
		 "and the SQLSTATE in the message");
	c = query(db, "SELECT 'still up'", 0, NULL);
	is_str(c->text, "still up", "the connection is usable after it");

	c = query(db, "SELECT 1;\nSELECT 2 AS two", 0, NULL);
	is_str(c->text, "2", "a multi-statement string gives the last result");
	c = query(db, "SELECT 1; SELECT 1/0; SELECT 3", 0, NULL);
	is_str(c->sqlstate, "22012", "or its first error");
	c = query(db, "CREATE TEMP TABLE t (x int); "
		  "INSERT INTO t VALUES (1), (2), (3)", 0, NULL);
	is_int(c->status, DB_OK, "DDL and DML run (%s)", c->err);
	c = query(db, "UPDATE t SET x = x + $1 WHERE x > 1", 1, p4);
	is_int(c->affected, 2, "affected rows are reported");
	c = query(db, "", 0, NULL);
	is_int(c->status, DB_OK, "an empty query is fine");
}

static void test_prepared(struct db_async *db)
{
	const char *a[] = { "1", "2" }, *b[] = { "10", "20" };
	struct cap *c;

	is_int(db_async_prepare_once(db, "add", "SELECT $1::int + $2::int", 2),
	       0, "a statement registers");
	is_int(db_async_prepare_once(db, "add", "SELECT $1::int + $2::int", 2),
	       0, "registering it again is a no-op");
	is_int(db_async_prepare_once(db, "add", "SELECT $1::int - $2::int", 2),
	       -EEXIST, "another definition under the same name is refused");
	is_int(db_async_exec_prepared(db, "nope", 0, NULL, on_result, NULL),
	       -ENOENT, "an unknown statement is refused");
	is_int(db_async_exec_prepared(db, "add", 1, a, on_result, NULL),
	       -EINVAL, "a wrong parameter count is refused");

	c = exec_prepared(db, "add", 2, a);
	is_str(c->text, "3", "a prepared statement runs (%s)", c->err);
	c = exec_prepared(db, "add", 2, b);
	is_str(c->text, "30", "and runs again with other values");
	c = query(db, "SELECT count(*) FROM pg_prepared_statements "
		  "WHERE name = 'add'", 0, NULL);
	is_str(c->text, "1", "it was prepared once on the session");

	db_async_prepare_once(db, "broken", "SELECT * FROM nope WHERE x = $1",
			      1);
	c = exec_prepared(db, "broken", 1, a);
	is_int(c->status, DB_ERR_QUERY, "a statement that cannot be "
	       "prepared fails its execution");
	like_str(c->err, "cannot prepare statement \"broken\"",
		 "saying so");
	is_str(c->sqlstate, "42P01", "with the server's SQLSTATE");
	db_async_prepare_once(db, "echo", "SELECT $1::int", 1);
}

static void test_notify(struct owner *a, struct owner *b, const char *chan)
{
	char sql[128];
	const char *vals[] = { chan, "hello, world" };
	struct cap *c;

	snprintf(sql, sizeof(sql), "LISTEN %s", chan);
	c = query(a->db, sql, 0, NULL);
	is_int(c->status, DB_OK, "LISTEN is just a query (%s)", c->err);
	c = query(b->db, "SELECT pg_notify($1, $2)", 2, vals);
	is_int(c->status, DB_OK, "NOTIFY from a second connection");
	ok(run_until(&a->notifies, 1, WAIT_MS), "arrives through on_notify");
	is_str(a->channel, chan, "on its channel");
	is_str(a->payload, "hello, world", "with its payload");
}

/*
 * A session killed by an admin comes back, and the debug log tells the
 * story without ever showing the conninfo (here with a canary password;
 * the test server trusts everyone, so it is not checked).
 */
static void test_reconnect_log(struct owner *b)
{
	char app[64], conninfo[160], kill[256], *logbuf = NULL;
	size_t loglen = 0;
	FILE *mem = open_memstream(&logbuf, &loglen);
	struct owner k;
	struct cap *c;

	snprintf(app, sizeof(app), "pgpush_test_kill_%ld", (long)getpid());
	snprintf(conninfo, sizeof(conninfo),
		 "application_name=%s password=sekrit-canary", app);
	snprintf(kill, sizeof(kill), "SELECT count(*) FILTER (WHERE t) FROM "
		 "(SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity"
		 " WHERE application_name = '%s') s", app);
	memset(&k, 0, sizeof(k));
	log_set_output(mem);
	log_set_level(LOG_LEVEL_DEBUG);
	open_owner(&k, "canary", conninfo);
	ok(run_until(&k.ready, 1, WAIT_MS), "a third connection is ready");
	c = query(b->db, kill, 0, NULL);
	is_str(c->text, "1", "its backend is terminated from another one");
	ok(run_until(&k.downs, 1, WAIT_MS), "the loss is noticed while idle");
	is_int(db_async_is_up(k.db), 0, "it is down");
	c = query(k.db, "SELECT 'queued while down'", 0, NULL);
	is_str(c->text, "queued while down", "a query submitted while down "
	       "runs once it is back (%s)", c->err);
	is_int(k.ready, 2, "it reconnected and on_ready ran again");
	c = query(k.db, "SELECT 'back'", 0, NULL);
	is_str(c->text, "back", "and runs queries");
	db_async_close(k.db, owner_closed, &k);
	run_until(&k.closed, 1, WAIT_MS);
	log_set_output(NULL);
	log_set_level(LOG_LEVEL_ERROR);
	fclose(mem);
	like_str(logbuf, "from=up to=waiting why=lost",
		 "state changes are logged at debug level");
	like_str(logbuf, "database connection lost", "the loss as a warning");
	ok(strstr(logbuf, "sekrit") == NULL,
	   "the conninfo's password never reaches the log");
	free(logbuf);
}

static void test_close(struct owner *a, struct owner *b)
{
	struct cap queued, inflight;
	int sent = 0;

	/* a: close with a query queued but never sent. */
	memset(&queued, 0, sizeof(queued));
	db_async_query(a->db, "SELECT 1", 0, NULL, on_result, &queued);
	is_int(db_async_close(a->db, owner_closed, a), 0, "close starts");
	is_int(db_async_query(a->db, "SELECT 1", 0, NULL, on_result, NULL),
	       -ESHUTDOWN, "no query is accepted after close");
	is_int(db_async_close(a->db, owner_closed, a), -EALREADY,
	       "a second close is refused");
	is_int(queued.done, 0, "no callback runs inside close");
	ok(run_until(&a->closed, 1, WAIT_MS), "closed_cb runs");
	is_int(queued.done, 1, "the queued query's callback ran before it");
	is_int(queued.status, DB_ERR_NOT_SENT, "as not sent");
	is_str(queued.err, "not sent: connection closed", "saying why");

	/* b: close with a query in flight. */
	memset(&inflight, 0, sizeof(inflight));
	db_async_query(b->db, "SELECT pg_sleep(1)", 0, NULL, on_result,
		       &inflight);
	run_until(&sent, 1, 200);	/* let it go out */
	db_async_close(b->db, owner_closed, b);
	ok(run_until(&b->closed, 1, WAIT_MS), "close with a query in flight");
	is_int(inflight.status, DB_ERR_LOST, "that query's outcome is unknown");
	like_str(inflight.err, "connection closed while the query was in "
		 "flight; outcome unknown", "and its error says so");
}

/* ---- a pipelined session ------------------------------------------------ */

static struct timespec slow_cb_end;

/* A callback that keeps the loop busy for 300 ms, as a loop turn full of
 * HTTP work would. */
static void on_result_slow(void *arg, const struct db_result *r)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };

	on_result(arg, r);
	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_REALTIME, &slow_cb_end);
}

static void test_pipeline(struct owner *killer)
{
	struct owner p;
	struct cap c[6], *one;
	int all = 0;
	const char *v1[] = { "1" }, *v2[] = { "2" };
	char kill[256];

	memset(&p, 0, sizeof(p));
	open_owner_piped(&p, "piped", "application_name=pgpush_test_piped", 3);
	ok(run_until(&p.ready, 1, WAIT_MS), "a pipelined session is ready");

	/* The second query reaches the server while the first's callback
	 * still holds the loop. */
	memset(c, 0, sizeof(c));
	db_async_query(p.db, "SELECT 'first'", 0, NULL, on_result_slow, &c[0]);
	db_async_query(p.db, "SELECT extract(epoch FROM clock_timestamp())"
		       "::numeric(20,6)::text", 0, NULL, on_result, &c[1]);
	is_int((int)db_async_pending(p.db), 2, "both are pending");
	run_until(&c[1].done, 1, WAIT_MS);
	is_str(c[0].text, "first", "the first query's result");
	double started = atof(c[1].text);
	double cb_end = (double)slow_cb_end.tv_sec +
			(double)slow_cb_end.tv_nsec / 1e9;
	ok(c[1].done && started < cb_end - 0.1,
	   "the second ran while the first's callback held the loop "
	   "(%.3f s before it returned)", cb_end - started);

	/* In order, each its own transaction; an error stays its own; a
	 * statement's first use goes alone and the rest follow. */
	db_async_prepare_once(p.db, "piped_echo", "SELECT $1::int * 10", 1);
	memset(c, 0, sizeof(c));
	db_async_query(p.db, "SELECT txid_current()::text", 0, NULL, on_result,
		       &c[0]);
	db_async_query(p.db, "SELECT 1/0", 0, NULL, on_result, &c[1]);
	db_async_exec_prepared(p.db, "piped_echo", 1, v1, on_result, &c[2]);
	db_async_exec_prepared(p.db, "piped_echo", 1, v2, on_result, &c[3]);
	db_async_query(p.db, "SELECT txid_current()::text", 0, NULL, on_result,
		       &c[4]);
	db_async_query(p.db, "SELECT 1; SELECT 2", 0, NULL, on_result, &c[5]);
	run_until(&c[5].done, 1, WAIT_MS);
	for (int i = 0; i < 6; i++)
		all += c[i].done;
	is_int(all, 6, "six callbacks ran");
	is_int(c[1].status, DB_ERR_QUERY, "a failing query fails");
	is_str(c[1].sqlstate, "22012", "with its own error");
	is_str(c[2].text, "10", "the prepared statement ran after its PREPARE "
	       "(%s)", c[2].err);
	is_str(c[3].text, "20", "and again, pipelined");
	ok(c[0].status == DB_OK && c[4].status == DB_OK &&
	   strcmp(c[0].text, c[4].text) != 0,
	   "queries around the failure ran, in transactions of their own");
	is_int(c[5].status, DB_ERR_QUERY,
	       "several statements in one string are refused when pipelined");
	one = query(p.db, "SELECT 'still up'", 0, NULL);
	is_str(one->text, "still up", "the session is usable after them");

	/* Lost with two in flight: both outcomes unknown; then back. */
	snprintf(kill, sizeof(kill), "SELECT count(*) FILTER (WHERE t) FROM "
		 "(SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity"
		 " WHERE application_name = 'pgpush_test_piped') s");
	memset(c, 0, sizeof(c));
	db_async_query(p.db, "SELECT pg_sleep(30)", 0, NULL, on_result, &c[0]);
	db_async_query(p.db, "SELECT 'behind'", 0, NULL, on_result, &c[1]);
	run_until(&c[0].done, 1, 300);	/* let them go out */
	one = query(killer->db, kill, 0, NULL);
	is_str(one->text, "1", "the pipelined backend is terminated");
	run_until(&c[1].done, 1, WAIT_MS);
	ok(c[0].status == DB_ERR_LOST && c[1].status == DB_ERR_LOST,
	   "both queries in flight are reported lost (%d, %d)", c[0].status,
	   c[1].status);
	one = query(p.db, "SELECT 'back'", 0, NULL);
	is_str(one->text, "back", "it reconnects and runs queries (%s)",
	       one->err);
	is_int(p.ready, 2, "on_ready ran again");
	db_async_close(p.db, owner_closed, &p);
	run_until(&p.closed, 1, WAIT_MS);
}

static void test_unreachable(void)
{
	struct owner o;
	struct cap c;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	open_owner(&o, "nowhere", "host=/nonexistent-pgpush port=1 "
		   "connect_timeout=1");
	db_async_query(o.db, "SELECT 1", 0, NULL, on_result, &c);
	run_until(&o.downs, 2, WAIT_MS);
	is_int(o.downs, 2, "an unreachable server: on_down per attempt");
	like_str(o.down, "cannot connect", "saying it cannot connect");
	is_int(o.ready, 0, "never ready");
	is_int(c.status, DB_ERR_NOT_SENT, "a waiting query fails as not sent");
	like_str(c.err, "not sent: cannot connect", "saying why");
	db_async_close(o.db, owner_closed, &o);
	ok(run_until(&o.closed, 1, WAIT_MS), "closing while backing off");
}

/*
 * A server that accepts the connection and never answers: the attempt
 * times out after connect_timeout (libpq does not do it for us).
 */
static void test_connect_timeout(void)
{
	char dir[] = "/tmp/pgpush-test-silent.XXXXXX", path[96], ci[192];
	struct sockaddr_un sa;
	struct owner o;
	uint64_t start;
	int fd;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(255);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(path, sizeof(path), "%s/.s.PGSQL.5999", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0) {
		perror("silent server");
		exit(255);
	}
	snprintf(ci, sizeof(ci), "host=%s port=5999 connect_timeout=2", dir);
	memset(&o, 0, sizeof(o));
	open_owner(&o, "silent", ci);
	start = uv_hrtime();
	ok(run_until(&o.downs, 1, WAIT_MS), "a silent server: the attempt "
	   "fails");
	like_str(o.down, "timeout while connecting", "as a timeout");
	ok((uv_hrtime() - start) / 1000000 >= 1900,
	   "after connect_timeout (%llu ms)",
	   (unsigned long long)(uv_hrtime() - start) / 1000000);
	db_async_close(o.db, owner_closed, &o);
	run_until(&o.closed, 1, WAIT_MS);
	close(fd);
	unlink(path);
	rmdir(dir);
}

static int run_tests(void)
{
	struct owner a, b;
	char chan[64];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	snprintf(chan, sizeof(chan), "pgpush_test_%ld", (long)getpid());
	plan(99);

	test_open_errors();
	ok(open_owner(&a, "a", "application_name=pgpush_test_db_async") !=
	   NULL, "a connection opens");
	is_int(db_async_is_up(a.db), 0, "not up inside open");
	is_int(a.ready, 0, "on_ready does not run inside open");
	ok(run_until(&a.ready, 1, WAIT_MS), "on_ready runs once connected");
	is_int(db_async_is_up(a.db), 1, "and it is up");

	test_queries(a.db);
	test_prepared(a.db);
	test_queue(a.db);
	/*
	 * After the queue: libpq keeps its grown 8 MiB buffers, and
	 * valgrind checks all of a recv() buffer on every call.
	 */
	test_big(a.db);

	open_owner(&b, "b", "application_name=pgpush_test_db_async");
	ok(run_until(&b.ready, 1, WAIT_MS), "a second connection is ready");
	test_notify(&a, &b, chan);
	test_reconnect_log(&b);
	test_pipeline(&b);

	test_close(&a, &b);
	test_unreachable();
	test_connect_timeout();
	is_int(a.downs + b.downs, 0, "no connection went down by itself");
	is_int(uv_loop_close(&loop), 0, "no handle is left on the loop");
	return done_testing();
}

/* ---- the reconnect scenario (driven by tests/integration/db_async.t) --- */

#define APP_RECONNECT "pgpush_db_async_reconnect"

static int run_reconnect(void)
{
	struct owner a, b;
	char chan[64], listen[96], pid1[32];
	const char *vals[] = { "21" }, *nvals[2];
	struct cap sleeping, behind, *c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	snprintf(chan, sizeof(chan), "pgpush_reconnect_%ld", (long)getpid());
	snprintf(listen, sizeof(listen), "LISTEN %s", chan);
	plan(26);

	a.listen_sql = listen;
	open_owner(&a, "a", "application_name=" APP_RECONNECT);
	ok(run_until(&a.ready, 1, WAIT_MS), "connected");
	db_async_prepare_once(a.db, "twice", "SELECT $1::int * 2", 1);
	c = exec_prepared(a.db, "twice", 1, vals);
	is_str(c->text, "42", "the prepared statement runs");
	is_int(a.listen.status, DB_OK, "LISTEN from on_ready ran");
	c = query(a.db, "SELECT pg_backend_pid()", 0, NULL);
	snprintf(pid1, sizeof(pid1), "%.31s", c->text);

	/* Phase 1: the backend is terminated while a query is in flight. */
	memset(&sleeping, 0, sizeof(sleeping));
	memset(&behind, 0, sizeof(behind));
	db_async_query(a.db, "SELECT pg_sleep(60)", 0, NULL, on_result,
		       &sleeping);
	db_async_query(a.db, "SELECT 'behind'", 0, NULL, on_result, &behind);
	diag("waiting for db_async.t to terminate backend %s", pid1);
	ok(run_until(&sleeping.done, 1, 30000), "the in-flight query ends");
	is_int(sleeping.status, DB_ERR_LOST, "as DB_ERR_LOST");
	like_str(sleeping.err, "connection lost while the query was in "
		 "flight; outcome unknown", "reported as connection lost");
	like_str(sleeping.err, "57P01", "with the server's reason");
	is_int(behind.status, DB_ERR_NOT_SENT, "the queued one as not sent");
	like_str(behind.err, "not sent: connection lost", "saying why");
	is_int(a.downs, 1, "on_down ran once");
	like_str(a.down, "connection lost", "saying the connection was lost");
	ok(run_until(&a.ready, 2, 10000), "it reconnects by itself");
	c = query(a.db, "SELECT pg_backend_pid()", 0, NULL);
	ok(c->status == DB_OK && strcmp(c->text, pid1) != 0,
	   "on a new backend (%s, was %s)", c->text, pid1);
	c = exec_prepared(a.db, "twice", 1, vals);
	is_str(c->text, "42", "the prepared statement runs again (%s)",
	       c->err);
	c = query(a.db, "SELECT count(*) FROM pg_prepared_statements "
		  "WHERE name = 'twice'", 0, NULL);
	is_str(c->text, "1", "re-prepared on the new session");
	is_int(a.listen.status, DB_OK, "LISTEN re-issued from on_ready");

	open_owner(&b, "b", "application_name=pgpush_db_async_notifier");
	run_until(&b.ready, 1, WAIT_MS);
	nvals[0] = chan;
	nvals[1] = "after reconnect";
	query(b.db, "SELECT pg_notify($1, $2)", 2, nvals);
	ok(run_until(&a.notifies, 1, WAIT_MS), "a NOTIFY after the "
	   "reconnect arrives");
	is_str(a.payload, "after reconnect", "with its payload");

	/* Phase 2: terminated while idle (LISTENing). */
	c = query(a.db, "SELECT 'phase2'", 0, NULL);
	is_str(c->text, "phase2", "idle and listening");
	diag("waiting for db_async.t to terminate the idle backend");
	ok(run_until(&a.downs, 2, 30000), "an idle session's loss is "
	   "noticed");
	like_str(a.down, "connection lost", "and reported");
	ok(run_until(&a.ready, 3, 10000), "it reconnects again");
	c = exec_prepared(a.db, "twice", 1, vals);
	is_str(c->text, "42", "the statement is re-prepared again");
	nvals[1] = "after second reconnect";
	query(b.db, "SELECT pg_notify($1, $2)", 2, nvals);
	ok(run_until(&a.notifies, 2, WAIT_MS), "and notifications flow");
	is_str(a.payload, "after second reconnect", "the new one");

	db_async_close(a.db, owner_closed, &a);
	db_async_close(b.db, owner_closed, &b);
	run_until(&a.closed, 1, WAIT_MS);
	run_until(&b.closed, 1, WAIT_MS);
	is_int(uv_loop_close(&loop), 0, "closed cleanly, no handle left");
	return done_testing();
}

int main(int argc, char **argv)
{
	if (!getenv("PGHOST") || !getenv("PGPORT") || !getenv("PGUSER")) {
		printf("1..0 # SKIP no database\n");
		return 0;
	}
	log_set_level(LOG_LEVEL_ERROR);
	if (getenv("PGPUSH_TEST_DEBUG"))
		log_set_level(LOG_LEVEL_DEBUG);
	uv_loop_init(&loop);
	if (argc > 1 && strcmp(argv[1], "--reconnect-scenario") == 0)
		return run_reconnect();
	return run_tests();
}
