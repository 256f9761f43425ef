/*
 * sqltime.h - how long claims and acks take: summed for the metrics,
 * slow ones reported.
 *
 * A claim or ack that took SQLTIME_SLOW_US or more is counted and worth
 * a warning, at most one every SQLTIME_WARN_EVERY_US (the count says how
 * many there were since).  After a warning the session (not this
 * daemon's) with the oldest snapshot is looked up and named: a
 * transaction holding a snapshot (a long report, a pg_dump) makes every
 * claim read past all the rows delivered since it began, so claims grow
 * slower and slower while it stays open.
 */
#ifndef PGPUSH_SQLTIME_H
#define PGPUSH_SQLTIME_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* A 500-row claim takes a few to a few tens of ms on a busy small box. */
#define SQLTIME_SLOW_US         100000
#define SQLTIME_WARN_EVERY_US   60000000

struct sqltime {
	uint64_t slow;              /* slow statements since start */
	uint64_t unreported;        /* ... since the last warning */
	int64_t warned_us;
};

/*
 * A claim or ack (`what`: "claim", "ack") sent at `sent_us` answered with
 * `rows` rows: add its time to *total_us; count and maybe report it when
 * slow.  `ask` (may be NULL: do not ask) is the connection on which to
 * look up who holds the oldest snapshot after a warning.
 */
void sqltime_note(struct sqltime *st, const char *what, int64_t sent_us,
		  size_t rows, uint64_t *total_us, struct db_async *ask);

extern const char OLDEST_XACT_SQL[];

#endif
