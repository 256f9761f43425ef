/*
 * health.h - what went wrong last, and whether Postgres is reachable.
 *
 * last_error (the heartbeat writes it to push.dispatchers) says what went
 * wrong last, for as long as it applies: each error is noted under the
 * name of the operation it came from ("ack failed"), and health_ok()
 * clears it once that same operation works again, so a stopped process
 * whose last writes all succeeded does not show an error that was
 * overcome long ago.
 *
 * The Postgres connections report going down here (health_pg_down) and
 * coming back (health_pg_up): the log says once that Postgres is
 * unreachable, then at most once per reconnect backoff step, and once
 * that it is back.
 *
 * Every function takes a NULL `h` as "nothing to note" (tests).
 */
#ifndef PGPUSH_HEALTH_H
#define PGPUSH_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct health {
	char last_error[256];           /* "" when none */
	const char *last_error_what;    /* the operation it came from */
	bool pg_down;                   /* a connection is down, said so */
	uint64_t pg_said_step_ms;       /* the backoff step when last said */
	int64_t pg_said_us;
	int64_t pg_down_since_us;
	const char *pg_said_hint;
};

/* Remember `err` as the last error, from the operation `what`. */
void health_set(struct health *h, const char *what, const char *err);

/* The same, and log it as a warning (message `what`, field error=). */
void health_error(struct health *h, const char *what, const char *err);

/*
 * A statement failed.  One that was never sent (DB_ERR_NOT_SENT: its
 * connection is down) is no news: the connection's state is reported
 * once (health_pg_down), and the statement is tried again after the
 * reconnect; it is logged at debug level only.
 */
void health_db_error(struct health *h, const char *what,
		     enum db_status status, const char *err);

/* health_db_error() for a failed result. */
void health_db_result(struct health *h, const char *what,
		      const struct db_result *res);

/* `what` worked again: its error, if it is the last one, is over. */
void health_ok(struct health *h, const char *what);

/* The last error, or "" when it came from `except` (the heartbeat's own
 * failures are over once a heartbeat is written). */
const char *health_last_error(const struct health *h, const char *except);

/*
 * A connection went down or an attempt failed (`step_ms`: the largest
 * reconnect backoff step now).  Logged when Postgres becomes unreachable
 * or the cause changes, then at most once per backoff step, with a hint
 * for the common causes.  `closing`: only remember the error.
 */
void health_pg_down(struct health *h, const char *error, uint64_t step_ms,
		    bool closing);

/* Every connection is up: clear the error; say once that it is back. */
void health_pg_up(struct health *h);

#endif
