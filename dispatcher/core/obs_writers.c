/*
 * obs_writers.c - see obs_writers.h: one-line adapters from the writer's
 * `void *` steps to stats.c's and trace.c's typed ones.
 */
#include "core/obs_writers.h"

static size_t stats_waiting(void *mod)
{
	return ((struct stats *)mod)->len;
}

static void stats_take_(void *mod, size_t max, char **params)
{
	(void)max;
	stats_batch_take(mod, params);
}

static void stats_written(void *mod, int64_t sent_us)
{
	(void)sent_us;
	stats_batch_written(mod);
}

static void stats_failed(void *mod)
{
	stats_batch_failed(mod);
}

static void stats_put_back(void *mod)
{
	stats_batch_put_back(mod);
}

static const struct writer_ops stats_ops = {
	.waiting = stats_waiting,
	.take = stats_take_,
	.written = stats_written,
	.put_back = stats_put_back,
	.failed = stats_failed,
};

void stats_writer_init(struct writer *w, struct stats *s,
		       struct db_async *conn, struct health *health,
		       void (*on_answer)(void *arg), void *answer_arg)
{
	static const struct writer_cfg cfg = {
		.stmt = "stats", .nparams = STATS_NPARAMS,
		.what = "stats flush failed",
	};

	writer_init(w, &cfg, &stats_ops, s, NULL, conn, health, on_answer,
		    answer_arg);
}

static size_t trace_waiting(void *mod)
{
	return ((struct trace *)mod)->len;
}

static void trace_take_(void *mod, size_t max, char **params)
{
	(void)max;
	trace_batch_take(mod, params);
}

static void trace_written(void *mod, int64_t sent_us)
{
	(void)sent_us;
	trace_batch_written(mod);
}

static void trace_failed(void *mod)
{
	trace_batch_failed(mod);
}

static void trace_put_back_(void *mod)
{
	trace_batch_put_back(mod);
}

static bool trace_drop_failed(void *mod, enum db_status status,
			      const char *sqlstate)
{
	(void)status;
	return trace_batch_drop_failed(mod, sqlstate);
}

static const struct writer_ops trace_ops = {
	.waiting = trace_waiting,
	.take = trace_take_,
	.written = trace_written,
	.put_back = trace_put_back_,
	.failed = trace_failed,
	.drop_failed = trace_drop_failed,
};

void trace_writer_init(struct writer *w, struct trace *t,
		       struct db_async *conn, struct health *health,
		       void (*on_answer)(void *arg), void *answer_arg)
{
	static const struct writer_cfg cfg = {
		.stmt = "trace", .nparams = TRACE_NPARAMS,
		.what = "debug events write failed",
	};

	writer_init(w, &cfg, &trace_ops, t, NULL, conn, health, on_answer,
		    answer_arg);
}
