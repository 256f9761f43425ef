/*
 * maint.h - maintenance: rollup, partitions, retention.
 *
 * push.run_maintenance() every MAINT_EVERY_MS on the stats connection,
 * and once at start before anything is claimed (it makes today's
 * deliveries partition when there is none).  One dispatcher at a time
 * does the work: the function takes an advisory lock or skips.  Each
 * action it reports is logged.
 */
#ifndef PGPUSH_MAINT_H
#define PGPUSH_MAINT_H

#include <stdbool.h>
#include <uv.h>

#include "db/db.h"

#define MAINT_EVERY_MS 300000

struct health;

struct maint {
	struct db_async *conn;      /* the stats connection */
	struct health *health;
	void (*on_answer)(void *arg);
	void *answer_arg;
	uv_timer_t timer;
	bool inflight;
	bool stopped;               /* maint_stop(): no more runs */
};

/* Set up `m` and start its timer.  `on_answer` (may be NULL) runs after
 * each answer. */
void maint_init(struct maint *m, uv_loop_t *loop, struct db_async *conn,
		struct health *health, void (*on_answer)(void *arg),
		void *answer_arg);

/* Run now, unless running, stopped, or the connection is down. */
void maint_start(struct maint *m);

/* No more runs (shutdown); one in flight still answers. */
void maint_stop(struct maint *m);

bool maint_busy(const struct maint *m);

/* Close the timer (a handle on the loop). */
void maint_close(struct maint *m);

extern const char MAINT_SQL[];

#endif
