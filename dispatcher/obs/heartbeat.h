/*
 * heartbeat.h - this process's row in push.dispatchers.
 *
 * Every --heartbeat-interval-ms, and once more when the drain is done
 * (state "stopped"), one upsert (HEARTBEAT_SQL, prepared as "heartbeat"
 * on the stats connection) writes who this process is, its state, CPU
 * time, resident memory, open files, Postgres connections, pools and
 * requests in flight, claim and ack rates since the last heartbeat, each
 * pool's sizes (pool_detail, JSON) and the last error.  One at a time.
 */
#ifndef PGPUSH_HEARTBEAT_H
#define PGPUSH_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct health;
struct obs_snapshot;

#define HEARTBEAT_NPARAMS 18

/* The most pool_detail may hold (about 160 bytes a pool): far more than
 * any configuration has pools; a longer one is replaced by "[]". */
#define HEARTBEAT_DETAIL_MAX (4u << 20)

extern const char HEARTBEAT_SQL[];

struct heartbeat {
	struct db_async *conn;      /* the stats connection */
	struct health *health;
	void (*on_answer)(void *arg);
	void *answer_arg;
	bool inflight;
	bool final;                 /* the one in flight says "stopped" */
	uint64_t claims_at_last, acked_at_last;
	int64_t last_us;
};

/* `on_answer` (may be NULL) runs after each answer. */
void heartbeat_init(struct heartbeat *hb, struct db_async *conn,
		    struct health *health, void (*on_answer)(void *arg),
		    void *answer_arg);

/*
 * Write the row from `s`, unless one is in flight, or (when stopping)
 * the connection is down: a heartbeat queued on a connection that is
 * down would hold the exit until its next attempt (up to 30 s away).
 */
void heartbeat_send(struct heartbeat *hb, const struct obs_snapshot *s);

/* Whether one is in flight. */
bool heartbeat_busy(const struct heartbeat *hb);

/* pool_detail for `s` (a heap string, free()); pure, for tests. */
char *heartbeat_pool_detail(const struct obs_snapshot *s);

#endif
