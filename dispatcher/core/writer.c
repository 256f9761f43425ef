/*
 * writer.c - see writer.h.  One statement in flight per writer; the
 * answer goes to the module (written / put back / dropped), then the
 * writer decides whether to go again now, later or at the next flush.
 */
#include "core/writer.h"

#include <stdlib.h>

#include "base/push.h"
#include "obs/health.h"

/* Cap on any writer's parameter count (ACK_NPARAMS is the largest). */
#define WRITER_MAX_PARAMS 32

static void on_db_answer(void *arg, const struct db_result *res)
{
	writer_answered(arg, db_result_status(res), db_result_error(res),
			db_result_sqlstate(res));
}

static int exec_db(void *conn, const char *stmt, int nparams,
		   const char *const *params, struct writer *w)
{
	return db_async_exec_prepared(conn, stmt, nparams, params,
				      on_db_answer, w);
}

static void on_timer(uv_timer_t *t)
{
	writer_flush(t->data);
}

void writer_init(struct writer *w, const struct writer_cfg *cfg,
		 const struct writer_ops *ops, void *mod, uv_loop_t *loop,
		 void *conn, struct health *health,
		 void (*on_answer)(void *arg), void *answer_arg)
{
	*w = (struct writer){0};
	w->cfg = *cfg;
	w->ops = ops;
	w->mod = mod;
	w->conn = conn;
	w->exec = exec_db;
	w->health = health;
	w->on_answer = on_answer;
	w->answer_arg = answer_arg;
	if (loop != NULL) {
		uv_timer_init(loop, &w->timer);
		w->timer.data = w;
		w->has_timer = true;
	}
}

void writer_set_exec(struct writer *w, writer_exec_fn exec)
{
	w->exec = exec;
}

void writer_flush(struct writer *w)
{
	char *params[WRITER_MAX_PARAMS];
	int n = w->cfg.nparams;

	if (w->inflight || w->ops->waiting(w->mod) == 0)
		return;
	if (n < 1 || n > WRITER_MAX_PARAMS)
		abort();        /* a programming error, caught by any test */
	w->ops->take(w->mod, w->cfg.batch_max, params);
	w->inflight = true;
	w->sent_us = push_now_us();
	int rc = w->exec(w->conn, w->cfg.stmt, n,
			 (const char *const *)params, w);
	for (int k = 0; k < n; k++)
		free(params[k]);
	if (rc < 0) {
		w->inflight = false;
		w->ops->put_back(w->mod);
	}
}

void writer_flush_soon(struct writer *w, uint64_t ms)
{
	if (!w->has_timer || w->closed)
		return;
	if (!uv_is_active((uv_handle_t *)&w->timer))
		uv_timer_start(&w->timer, on_timer, ms, 0);
}

void writer_answered(struct writer *w, enum db_status status,
		     const char *error, const char *sqlstate)
{
	bool ok = status == DB_OK;

	w->inflight = false;
	if (ok) {
		health_ok(w->health, w->cfg.what);
		w->ops->written(w->mod, w->sent_us);
	} else {
		if (w->ops->failed != NULL)
			w->ops->failed(w->mod);
		health_db_error(w->health, w->cfg.what, status, error);
		if (w->ops->drop_failed == NULL ||
		    !w->ops->drop_failed(w->mod, status, sqlstate))
			w->ops->put_back(w->mod);
	}
	if (w->ops->waiting(w->mod) > 0) {
		if (ok && w->cfg.again_on_success)
			writer_flush(w);
		else if (!ok && w->cfg.retry_ms > 0 && w->has_timer &&
			 !w->closed)
			uv_timer_start(&w->timer, on_timer, w->cfg.retry_ms,
				       0);
	}
	if (w->on_answer != NULL)
		w->on_answer(w->answer_arg);
}

bool writer_busy(const struct writer *w)
{
	return w->inflight;
}

size_t writer_waiting(const struct writer *w)
{
	return w->ops->waiting(w->mod);
}

void writer_close(struct writer *w)
{
	if (w->has_timer && !w->closed)
		uv_close((uv_handle_t *)&w->timer, NULL);
	w->closed = true;
}
