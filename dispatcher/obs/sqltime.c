/*
 * sqltime.c - see sqltime.h.
 */
#include "obs/sqltime.h"

#include <inttypes.h>

#include "base/log.h"
#include "base/push.h"

/*
 * Who holds back the cleanup of delivered rows: the session (not this
 * daemon's) with the oldest snapshot.  Asked only after a slow-statement
 * warning.  Other roles' sessions show their xmin only to a role with
 * pg_read_all_stats.  Never the query text: it may hold a secret.
 */
const char OLDEST_XACT_SQL[] =
	"SELECT pid, coalesce(application_name, ''), coalesce(state, ''),"
	" coalesce(backend_type, ''), coalesce(datname, ''),"
	" coalesce(extract(epoch FROM now() - xact_start)::bigint::text, '')"
	" FROM pg_stat_activity"
	" WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()"
	"  AND coalesce(application_name, '') NOT LIKE 'pgpushd %'"
	" ORDER BY age(backend_xmin) DESC LIMIT 1";

static void on_oldest_xact(void *arg, const struct db_result *res)
{
	(void)arg;
	if (!db_result_ok(res))
		return;     /* only a hint: not worth an error of its own */
	if (db_result_ntuples(res) == 0) {
		log_warn("slow claim or ack: no other session holds a "
			 "snapshot", "hint=\"a lock on push.queue, or "
			 "autovacuum behind on it\"");
		return;
	}
	log_warn("slow claim or ack: oldest snapshot held by", "pid=%s "
		 "application=%s state=%s backend_type=%s database=%s "
		 "open_s=%s", db_result_value(res, 0, 0),
		 db_result_value(res, 0, 1), db_result_value(res, 0, 2),
		 db_result_value(res, 0, 3), db_result_value(res, 0, 4),
		 db_result_value(res, 0, 5));
}

void sqltime_note(struct sqltime *st, const char *what, int64_t sent_us,
		  size_t rows, uint64_t *total_us, struct db_async *ask)
{
	int64_t now = push_now_us(), us = now - sent_us;

	if (us < 0)
		us = 0;
	*total_us += (uint64_t)us;
	if (us < SQLTIME_SLOW_US)
		return;
	st->slow++;
	st->unreported++;
	if (st->warned_us != 0 &&
	    now - st->warned_us < SQLTIME_WARN_EVERY_US)
		return;
	log_warn("slow claim or ack", "statement=%s ms=%lld rows=%zu "
		 "slow_since_last_warning=%" PRIu64 " hint=\"look in "
		 "pg_stat_activity for a long-open transaction (xact_start, "
		 "backend_xmin) or a lock on push.queue\"", what,
		 (long long)(us / 1000), rows, st->unreported);
	st->warned_us = now;
	st->unreported = 0;
	if (ask != NULL)
		db_async_query(ask, OLDEST_XACT_SQL, 0, NULL, on_oldest_xact,
			       NULL);
}
