/*
 * claimer.h - claiming: one CLAIM_SQL (claim.h) for every pool that
 * wants rows, on the claim connection, and the claimed rows into the
 * pools.
 *
 * Up to CLAIMS_MAX claims are in flight at once (pipelined on the claim
 * connection): the second is already with Postgres while the first
 * runs, so Postgres runs claims back to back instead of waiting for the
 * loop to read a result (a loop turn can take milliseconds of HTTP
 * work), fill the pools and ask again.  A claim asked for while all are
 * out runs when one answers.  Nothing is claimed before the
 * configuration is loaded, after claimer_stop(), while the claim
 * connection is down, or while ACK_BACKLOG_MAX outcomes wait to be
 * written (they still hold their rows' leases).
 *
 * A claimed row becomes, in this order: a finished push (device
 * invalidated, push or device row gone, or a fault's verdict: faults.h),
 * a push given back unsent (no pool, stopping, app paused), or a push
 * in its pool's ring, due before its lease lapses.
 */
#ifndef PGPUSH_CLAIMER_H
#define PGPUSH_CLAIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/acker.h"
#include "core/claim.h"
#include "db/db.h"

#define CLAIMS_MAX      2
#define ACK_BACKLOG_MAX (4 * ACK_BATCH_MAX)   /* claim nothing beyond */

struct claimer;
struct faults;
struct finisher;
struct health;
struct pools;
struct release;
struct sqltime;

struct claim_slot {
	struct claimer *c;
	bool busy;
	int64_t sent_us;
	struct claim_req req;
};

/* What the claimer works with; every pointer outlives it. */
struct claimer_deps {
	const char *id;             /* this dispatcher: the lease owner */
	int lease_seconds;
	int request_timeout_ms;
	int batch_size;             /* --batch-size */
	struct db_async *conn;      /* the claim connection */
	struct db_async *ask;       /* the stats connection (sqltime.h) */
	struct pools *pools;
	struct faults *faults;
	struct release *release;
	struct acker *ack;
	struct finisher *finisher;
	struct health *health;
	struct sqltime *sqltime;
	void (*kick)(void *arg);    /* claim again soon */
	void *kick_arg;
};

struct claimer {
	struct claimer_deps deps;
	char lease_seconds[16];     /* as text, for the statement */
	struct claim_slot slots[CLAIMS_MAX];
	int out;                    /* slots busy */
	bool again;                 /* asked for while all were out */
	bool stopped;
	uint64_t claims, claimed_rows;  /* statements answered, rows */
	uint64_t claim_us;              /* sent to answered, summed */
};

void claimer_init(struct claimer *c, const struct claimer_deps *deps);

/* Claim for every pool that wants rows, if anything allows it. */
void claimer_claim(struct claimer *c);

/* Claim no more; rows of claims in flight are given back. */
void claimer_stop(struct claimer *c);

void claimer_free(struct claimer *c);

#endif
