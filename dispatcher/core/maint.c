/*
 * maint.c - see maint.h.
 */
#include "core/maint.h"

#include "base/log.h"
#include "obs/health.h"

#define WHAT "maintenance failed"

const char MAINT_SQL[] =
	"SELECT action, object FROM push.run_maintenance()";

static void on_done(void *arg, const struct db_result *res)
{
	struct maint *m = arg;

	m->inflight = false;
	if (!db_result_ok(res)) {
		health_db_result(m->health, WHAT, res);
	} else {
		health_ok(m->health, WHAT);
		for (int r = 0; r < db_result_ntuples(res); r++)
			log_info("maintenance", "action=%s object=%s",
				 db_result_value(res, r, 0),
				 db_result_value(res, r, 1));
	}
	if (m->on_answer != NULL)
		m->on_answer(m->answer_arg);
}

void maint_start(struct maint *m)
{
	if (m->inflight || m->stopped || !db_async_is_up(m->conn))
		return;
	m->inflight = true;
	if (db_async_query(m->conn, MAINT_SQL, 0, NULL, on_done, m) < 0)
		m->inflight = false;
}

static void on_timer(uv_timer_t *t)
{
	maint_start(t->data);
}

void maint_init(struct maint *m, uv_loop_t *loop, struct db_async *conn,
		struct health *health, void (*on_answer)(void *arg),
		void *answer_arg)
{
	m->conn = conn;
	m->health = health;
	m->on_answer = on_answer;
	m->answer_arg = answer_arg;
	m->inflight = false;
	m->stopped = false;
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	uv_timer_start(&m->timer, on_timer, MAINT_EVERY_MS, MAINT_EVERY_MS);
}

void maint_stop(struct maint *m)
{
	m->stopped = true;
}

bool maint_busy(const struct maint *m)
{
	return m->inflight;
}

void maint_close(struct maint *m)
{
	uv_close((uv_handle_t *)&m->timer, NULL);
}
