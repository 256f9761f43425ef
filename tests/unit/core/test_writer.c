/*
 * test_writer.c - the batched writer (core/writer.c) with a fake exec
 * function instead of Postgres: a written batch is dropped, a failed one
 * goes back ahead of the newer rows, a flush waits while a statement is
 * in flight, the batch cap, a statement that could not be queued, the
 * retry timer, and the four users' differences: the acker's hooks and
 * cap, the release's id lists, the stats' failure count and the trace's
 * drop on a statement error; the error bookkeeping (obs/health.c) on
 * the way.  A libuv loop only for the timers; no database.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/acker.h"
#include "core/obs_writers.h"
#include "core/release.h"
#include "core/writer.h"
#include "obs/health.h"
#include "obs/stats.h"
#include "obs/trace.h"
#include "tap.h"

/* The fake exec: records each statement; answers come from the test. */
static int nexec;
static int exec_rc;
static char last_stmt[32];
static int last_nparams;
static char *last_params[32];

static int fake_exec(void *conn, const char *stmt, int nparams,
		     const char *const *params, struct writer *w)
{
	(void)conn;
	(void)w;
	if (exec_rc < 0)
		return exec_rc;
	nexec++;
	snprintf(last_stmt, sizeof last_stmt, "%s", stmt);
	for (int k = 0; k < last_nparams; k++)
		free(last_params[k]);
	last_nparams = nparams;
	for (int k = 0; k < nparams; k++)
		last_params[k] = strdup(params[k]);
	return 0;
}

static void fake_reset(void)
{
	for (int k = 0; k < last_nparams; k++) {
		free(last_params[k]);
		last_params[k] = NULL;
	}
	last_nparams = 0;
	last_stmt[0] = '\0';
	nexec = 0;
	exec_rc = 0;
}

static int answers;

static void on_answer(void *arg)
{
	(void)arg;
	answers++;
}

/* The acker's hooks: what was written, and when places came free. */
static size_t written_rows;
static int64_t written_first;
static int freed;

static void on_written(void *arg, const struct ack_buf *b, int64_t sent_us)
{
	(void)arg;
	(void)sent_us;
	written_rows += b->len;
	written_first = b->len ? b->rows[0].queue_id : -1;
}

static void on_freed(void *arg)
{
	(void)arg;
	freed++;
}

static void add_outcome(struct acker *a, int64_t queue_id)
{
	struct push_item it;
	struct push_result res;

	memset(&it, 0, sizeof it);
	it.queue_id = queue_id;
	push_result_set(&res, PUSH_OUTCOME_SENT, "ok");
	ack_add(&a->wait, &it, &res, 1000000);
}

static void test_acker(uv_loop_t *loop)
{
	struct acker a;
	struct health h;
	struct ack_hooks hooks = { NULL, on_written, on_freed };

	memset(&h, 0, sizeof h);
	fake_reset();
	acker_init(&a, "me", loop, NULL, &h, &hooks, on_answer, NULL);
	writer_set_exec(&a.w, fake_exec);

	writer_flush(&a.w);
	is_int(nexec, 0, "nothing waiting: no statement");

	for (int64_t i = 1; i <= 3; i++)
		add_outcome(&a, i);
	writer_flush(&a.w);
	is_int(nexec, 1, "one statement for three rows");
	is_str(last_stmt, "ack", "the prepared statement \"ack\"");
	is_int(last_nparams, ACK_NPARAMS, "with ACK_NPARAMS parameters");
	is_str(last_params[0], "me", "$1 is the owner");
	is_str(last_params[1], "{1,2,3}", "$2 the queue ids, in order");
	is_int(a.busy.len, 3, "the rows are in the busy batch");
	ok(writer_busy(&a.w), "a statement is in flight");

	/* A flush while one is in flight waits. */
	add_outcome(&a, 4);
	add_outcome(&a, 5);
	writer_flush(&a.w);
	is_int(nexec, 1, "a flush while one is in flight waits");
	is_int(writer_waiting(&a.w), 2, "two newer rows wait");

	/* A failed statement: the rows go back ahead of the newer ones. */
	answers = 0;
	writer_answered(&a.w, DB_ERR_LOST, "connection lost", "");
	ok(!writer_busy(&a.w), "nothing in flight after the answer");
	is_int(a.busy.len, 0, "the busy batch is empty");
	is_int(a.wait.len, 5, "all five rows wait");
	ok(a.wait.rows[0].queue_id == 1 && a.wait.rows[2].queue_id == 3 &&
	   a.wait.rows[3].queue_id == 4 && a.wait.rows[4].queue_id == 5,
	   "the failed rows first, in order, then the newer ones");
	is_int(nexec, 1, "no statement at once after a failure");
	ok(uv_is_active((uv_handle_t *)&a.w.timer),
	   "the retry timer runs (rows wait)");
	is_int(uv_timer_get_repeat(&a.w.timer), 0, "once");
	is_int(answers, 1, "the owner heard the answer");
	like_str(h.last_error, "ack failed: connection lost",
		 "the error is noted under its operation");
	uv_timer_stop(&a.w.timer);

	/* Success: the busy batch is dropped, the hooks run, and the rows
	 * that came meanwhile go at once. */
	writer_flush(&a.w);
	is_int(nexec, 2, "sent again");
	is_str(last_params[1], "{1,2,3,4,5}", "the five rows, oldest first");
	add_outcome(&a, 6);
	written_rows = 0;
	freed = 0;
	writer_answered(&a.w, DB_OK, "", NULL);
	is_int(written_rows, 5, "the written hook saw the five rows");
	is_int(written_first, 1, "from the oldest");
	is_int(freed, 1, "then the freed hook");
	is_str(h.last_error, "", "a success clears the ack error");
	is_int(nexec, 3, "the waiting row went at once (again_on_success)");
	is_str(last_params[1], "{6}", "the newer row alone");
	writer_answered(&a.w, DB_OK, "", NULL);
	is_int(acker_backlog(&a), 0, "nothing left");

	/* The batch cap. */
	for (int64_t i = 1; i <= ACK_BATCH_MAX + 500; i++)
		add_outcome(&a, i);
	writer_flush(&a.w);
	is_int(a.busy.len, ACK_BATCH_MAX, "at most ACK_BATCH_MAX rows sent");
	is_int(a.wait.len, 500, "the rest waits");
	is_int(a.wait.rows[0].queue_id, ACK_BATCH_MAX + 1,
	       "the oldest of the rest first");
	writer_answered(&a.w, DB_ERR_QUERY, "ERROR: boom", "XX000");
	is_int(a.wait.len, ACK_BATCH_MAX + 500, "a failed capped batch back");
	ok(a.wait.rows[0].queue_id == 1 &&
	   a.wait.rows[ACK_BATCH_MAX].queue_id == ACK_BATCH_MAX + 1,
	   "in order, ahead of the rest");
	uv_timer_stop(&a.w.timer);
	writer_flush(&a.w);
	written_rows = 0;
	writer_answered(&a.w, DB_OK, "", NULL);
	is_int(written_rows + a.busy.len, ACK_BATCH_MAX + 500,
	       "after a success the rest is sent at once");
	writer_answered(&a.w, DB_OK, "", NULL);
	is_int(acker_backlog(&a), 0, "and written");

	/* A statement that could not be queued: rows back, no answer. */
	add_outcome(&a, 7);
	exec_rc = -1;
	answers = 0;
	writer_flush(&a.w);
	ok(!writer_busy(&a.w), "not queued: nothing in flight");
	is_int(a.wait.len, 1, "not queued: the row waits");
	is_int(answers, 0, "not queued: no answer");
	exec_rc = 0;

	/* Not sent (the connection is down): no error of its own. */
	memset(&h, 0, sizeof h);
	writer_flush(&a.w);
	writer_answered(&a.w, DB_ERR_NOT_SENT, "not sent", "");
	is_str(h.last_error, "", "not sent: no last error");
	is_int(a.wait.len, 1, "not sent: the row waits");

	/* Closed: a failure starts no timer. */
	uv_timer_stop(&a.w.timer);
	writer_close(&a.w);
	writer_flush(&a.w);
	writer_answered(&a.w, DB_ERR_LOST, "connection lost", "");
	ok(!uv_is_active((uv_handle_t *)&a.w.timer),
	   "after writer_close() no retry timer");
	writer_flush_soon(&a.w, 5);
	ok(!uv_is_active((uv_handle_t *)&a.w.timer),
	   "nor a flush_soon timer");
	uv_run(loop, UV_RUN_NOWAIT);
	acker_free(&a);
}

static void test_flush_soon(uv_loop_t *loop)
{
	struct acker a;

	fake_reset();
	acker_init(&a, "me", loop, NULL, NULL, NULL, NULL, NULL);
	writer_set_exec(&a.w, fake_exec);
	add_outcome(&a, 1);
	writer_flush_soon(&a.w, 1);
	writer_flush_soon(&a.w, 10000);
	is_int(uv_timer_get_due_in(&a.w.timer) <= 1, 1,
	       "a flush already due is not pushed back");
	uv_run(loop, UV_RUN_DEFAULT);
	is_int(nexec, 1, "the timer flushed");
	writer_answered(&a.w, DB_OK, "", NULL);
	writer_close(&a.w);
	uv_run(loop, UV_RUN_DEFAULT);
	acker_free(&a);
}

static void give_back(struct release *r, int64_t queue_id)
{
	struct push_item *it = calloc(1, sizeof *it);

	it->queue_id = queue_id;
	release_add(r, it);
}

static void test_release(void)
{
	struct release r;

	fake_reset();
	release_init(&r, "me", NULL, NULL, NULL, NULL);
	writer_set_exec(&r.w, fake_exec);
	give_back(&r, 10);
	give_back(&r, 11);
	release_flush(&r);
	is_str(last_stmt, "release", "the prepared statement \"release\"");
	is_int(last_nparams, RELEASE_NPARAMS, "RELEASE_NPARAMS parameters");
	is_str(last_params[1], "{10,11}", "the ids");
	give_back(&r, 12);
	release_flush(&r);
	is_int(nexec, 1, "waits for the one in flight");
	writer_answered(&r.w, DB_ERR_LOST, "connection lost", "");
	is_int(nexec, 1, "no retry at once after a failure");
	is_int(release_backlog(&r), 3, "all three ids wait");
	release_flush(&r);
	is_str(last_params[1], "{10,11,12}", "the failed ones first");
	give_back(&r, 13);
	writer_answered(&r.w, DB_OK, "", NULL);
	is_int(nexec, 3, "after a success the waiting id goes at once");
	is_str(last_params[1], "{13}", "alone");
	writer_answered(&r.w, DB_OK, "", NULL);
	is_int(release_backlog(&r), 0, "nothing left");
	release_free(&r);
}

static void test_stats_trace(void)
{
	struct stats s;
	struct trace t;
	struct writer sw, tw;
	struct push_item it;

	fake_reset();
	memset(&s, 0, sizeof s);
	stats_writer_init(&sw, &s, NULL, NULL, NULL, NULL);
	writer_set_exec(&sw, fake_exec);
	stats_add(&s, 60000000, 7, PUSH_PLATFORM_FCM, 0, PUSH_OUTCOME_SENT,
		  1, 100, 15);
	writer_flush(&sw);
	is_str(last_stmt, "stats", "the prepared statement \"stats\"");
	is_int(last_nparams, STATS_NPARAMS, "STATS_NPARAMS parameters");
	writer_answered(&sw, DB_ERR_QUERY, "ERROR: x", "XX000");
	is_int(s.flush_failures, 1, "a failed upsert is counted");
	is_int(s.len, 1, "and its row merged back");
	writer_flush(&sw);
	writer_answered(&sw, DB_OK, "", NULL);
	ok(s.flushes == 1 && s.len == 0 && s.busy == NULL,
	   "a written upsert is counted and dropped");
	stats_free(&s);

	fake_reset();
	memset(&t, 0, sizeof t);
	memset(&it, 0, sizeof it);
	it.push_id = 42;
	t.owner = "me";
	trace_writer_init(&tw, &t, NULL, NULL, NULL, NULL);
	writer_set_exec(&tw, fake_exec);
	trace_event(&t, 1000, &it, "claimed", NULL);
	writer_flush(&tw);
	is_str(last_stmt, "trace", "the prepared statement \"trace\"");
	is_int(last_nparams, TRACE_NPARAMS, "TRACE_NPARAMS parameters");
	is_str(last_params[3], "me", "$4 is the dispatcher");
	writer_answered(&tw, DB_ERR_LOST, "connection lost", "08006");
	ok(t.len == 1 && t.dropped == 0, "a connection error keeps events");
	writer_flush(&tw);
	writer_answered(&tw, DB_ERR_QUERY, "ERROR: bad", "22P02");
	ok(t.len == 0 && t.dropped == 1 && t.write_failures == 2,
	   "a statement error drops them (it would fail again)");
	trace_event(&t, 1000, &it, "claimed", NULL);
	writer_flush(&tw);
	writer_answered(&tw, DB_OK, "", NULL);
	ok(t.written == 1 && t.len == 0 && t.busy == NULL,
	   "written events are counted");
	trace_free(&t);
	fake_reset();
}

int main(void)
{
	uv_loop_t loop;

	uv_loop_init(&loop);
	test_acker(&loop);
	test_flush_soon(&loop);
	test_release();
	test_stats_trace();
	is_int(uv_loop_close(&loop), 0, "no handle left on the loop");
	return done_testing();
}
