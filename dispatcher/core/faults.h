/*
 * faults.h - what the dispatcher does when things go wrong, beside the
 * claim/send/ack hot path: the lease sweeper, auto-bans and holds, the
 * per-app retry age and overflow policy.
 *
 * Lease sweeper.  Every few seconds one dispatcher at a time (the sweep
 * statement takes pg_try_advisory_xact_lock; the others skip that round)
 * marks as `dead` in push.dispatchers every running/draining process whose
 * heartbeat is older than the stale time, max(lease, 5 heartbeats): by
 * then every lease it took before its last heartbeat has lapsed.  It then
 * frees the expired leases those dead processes held (lease_owner NULL),
 * which CLAIM_SQL would take anyway once expired: rescue never waits for
 * the sweep, the sweep makes the state visible.  The claim already
 * counted an attempt for every rescued row and the rescue keeps it: a
 * request may or may not have gone out before the crash, and counting it
 * means a push that kills its dispatcher every time ends (failed, after
 * max_attempts claims) instead of killing the fleet forever.  A process
 * wrongly marked dead (it only lost Postgres for a while) sets itself
 * back to running with its next heartbeat, and its late acks for rows
 * taken over are ignored (ACK_SQL is guarded by the lease owner).  The
 * sweeper waits one stale time after its own connection (re)connects, so
 * peers coming back from the same outage are not marked dead.
 *
 * Auto-ban.  faults_on_finish() feeds autoban.h; on BAN one UPDATE of
 * push.apps (on the connection given to faults_init, never a new one)
 * sets banned_until = now() + autoban_duration, ban_reason and banned_by
 * = 'pgpushd', re-checking autoban_enabled and the tier in SQL; the hook
 * `ban` then applies it to the running pools at once (the NOTIFY that
 * the UPDATE sends tells every other dispatcher).  On HOLD (critical
 * tier) the hook `hold` gives the app's waiting pushes back to the queue
 * and faults_claim_want() claims nothing for it until the hold ends.
 *
 * Ownership: struct faults is embedded in its owner; it does not own the
 * connection.  Loop thread only.
 */
#ifndef PGPUSH_FAULTS_H
#define PGPUSH_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/push.h"
#include "core/autoban.h"
#include "db/db.h"

struct faults_hooks {
	void *arg;
	/* Apply a ban now: drop the app's waiting pushes, counted. */
	void (*ban)(void *arg, int32_t app_id, int64_t banned_until_us,
		    const char *reason);
	/* A critical app is held: give its waiting pushes back. */
	void (*hold)(void *arg, int32_t app_id);
};

struct faults {
	struct autoban ab;
	struct db_async *db;
	char id[192];
	int64_t stale_us;
	int64_t sweep_every_us;
	int64_t next_sweep_us;
	int64_t up_since_us;        /* 0: the connection is down */
	bool sweep_inflight;
	bool rescue_inflight;
	bool policy_loaded;
	struct faults_hooks hooks;

	uint64_t dead_marked, rescued, bans, holds;
	uint64_t retry_aged, overload_dropped, lease_exhausted;
};

/* What to do with a freshly claimed row. */
enum faults_verdict {
	FAULTS_SEND,                /* into the pool */
	FAULTS_FINISH               /* finish it unsent: *outcome, reason */
};

void faults_init(struct faults *f, struct db_async *db, const char *id,
		 int lease_seconds, int heartbeat_ms,
		 const struct faults_hooks *hooks);

/* Prepare the statements on the connection (call once, before use). */
void faults_prepare(struct faults *f);

/* Reload the apps' fault policy (with every config load). */
void faults_load_policy(struct faults *f);

/* Call every ~100 ms: runs the sweeper when due. */
void faults_tick(struct faults *f, int64_t now_us);

/*
 * How many rows a pool should claim.  `want` is what the pool asked for
 * (pool_claim_want), `full` whether its ring is past half full, `batch`
 * the claim batch size.  A held app gets 0; a full pool of an app with
 * overflow_policy 'drop' (never critical) gets a batch, whose rows past
 * the ring's room faults_on_claim() drops as dropped_overload.
 */
int faults_claim_want(struct faults *f, int32_t app_id, int want, bool full,
		      int batch, int64_t now_us);

/*
 * The verdict on a claimed row: a retry older than the app's
 * max_retry_age fails; a row claimed more than max_attempts times (its
 * leases lapsed again and again: crashes) fails; a row of an app with
 * overflow 'drop' whose pool has no room (`no_room`) is dropped.
 */
enum faults_verdict faults_on_claim(struct faults *f,
				    const struct push_item *item,
				    int max_attempts, bool no_room,
				    int64_t now_us, enum push_outcome *outcome,
				    char *reason, size_t reason_len);

/*
 * Look at a finished push before it is recorded: a RETRY older than the
 * app's max_retry_age becomes FAILED in `*res`; the result feeds the
 * app's auto-ban window (only when `counting`: not while shutting down).
 * `sent`: a request went out; `cred_unusable`: the pool has no usable
 * credential.
 */
void faults_on_finish(struct faults *f, const struct push_item *item,
		      struct push_result *res, bool sent,
		      bool cred_unusable, bool counting, int64_t now_us);

void faults_free(struct faults *f);

/* The statements, for tests. */
extern const char FAULTS_SWEEP_SQL[];
extern const char FAULTS_RESCUE_SQL[];
extern const char FAULTS_BAN_SQL[];
extern const char FAULTS_POLICY_SQL[];

#endif
