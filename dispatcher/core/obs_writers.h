/*
 * obs_writers.h - the statistics (obs/stats.h) and the debug pushes'
 * events (obs/trace.h) on the batched writer (writer.h).
 *
 * Both modules own their statement and their batch; this file only
 * plugs their batch steps into a struct writer, so obs/ needs nothing
 * from core/.  Both write on the stats connection, with no timer of
 * their own (the daemon's stats timer flushes them) and no retry timer:
 * a failed batch waits for the next flush.  The statistics count failed
 * upserts; the events are dropped when the statement itself failed.
 */
#ifndef PGPUSH_OBS_WRITERS_H
#define PGPUSH_OBS_WRITERS_H

#include "core/writer.h"
#include "obs/stats.h"
#include "obs/trace.h"

/* Write `s` with the prepared statement "stats" (STATS_UPSERT_SQL). */
void stats_writer_init(struct writer *w, struct stats *s,
		       struct db_async *conn, struct health *health,
		       void (*on_answer)(void *arg), void *answer_arg);

/* Write `t` with the prepared statement "trace" (TRACE_INSERT_SQL). */
void trace_writer_init(struct writer *w, struct trace *t,
		       struct db_async *conn, struct health *health,
		       void (*on_answer)(void *arg), void *answer_arg);

#endif
