/*
 * faults.c - see faults.h.
 */
#include "core/faults.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "db/sqlarr.h"

/*
 * One sweeper at a time: the transaction-scoped advisory lock is held for
 * this statement only.  The first row says whether we got the lock; each
 * process marked dead adds a row with its id.
 */
const char FAULTS_SWEEP_SQL[] =
	"WITH lock AS MATERIALIZED ("
	" SELECT pg_try_advisory_xact_lock(hashtext('pgpush.lease_sweep'))"
	"  AS got"
	"), dead AS ("
	" UPDATE push.dispatchers x"
	" SET state = 'dead', stopped_at = now(),"
	"  last_error = 'no heartbeat since ' || x.heartbeat_at::text ||"
	"   '; marked dead by ' || $1"
	" WHERE (SELECT got FROM lock)"
	"   AND x.state IN ('running', 'draining') AND x.id <> $1"
	"   AND x.heartbeat_at < now() - make_interval(secs => $2::float8)"
	" RETURNING x.id"
	")"
	" SELECT (SELECT got FROM lock), NULL::text"
	" UNION ALL SELECT true, id FROM dead";

/* Free the lapsed leases of processes just marked dead (one scan of the
 * queue per death, never per sweep: lease_owner has no index). */
const char FAULTS_RESCUE_SQL[] =
	"WITH u AS ("
	" UPDATE push.queue q SET lease_owner = NULL, lease_expires_at = NULL"
	" WHERE q.id IN (SELECT k.id FROM push.queue k"
	"  WHERE k.lease_owner = ANY ($1::text[])"
	"    AND k.lease_expires_at < now()"
	"  FOR UPDATE SKIP LOCKED)"
	" RETURNING 1"
	") SELECT count(*) FROM u";

/* The policy is re-checked here: an admin may have switched auto-ban off
 * or raised the tier since the last reload; an app already banned keeps
 * the admin's ban. */
const char FAULTS_BAN_SQL[] =
	"UPDATE push.apps"
	" SET banned_until = now() + autoban_duration, ban_reason = $2,"
	"  banned_by = 'pgpushd'"
	" WHERE id = $1::int AND autoban_enabled AND tier <> 'critical'"
	"   AND (banned_until IS NULL OR banned_until < now())"
	" RETURNING (extract(epoch FROM banned_until) * 1e6)::bigint";

const char FAULTS_POLICY_SQL[] =
	"SELECT id, autoban_enabled, tier = 'critical',"
	" overflow_policy = 'drop', autoban_threshold,"
	" (extract(epoch FROM autoban_window) * 1e6)::bigint,"
	" (extract(epoch FROM autoban_duration) * 1e6)::bigint,"
	" (extract(epoch FROM max_retry_age) * 1e6)::bigint,"
	" coalesce(banned_until > now(), false)"
	" FROM push.apps";

void faults_init(struct faults *f, struct db_async *db, const char *id,
		 int lease_seconds, int heartbeat_ms,
		 const struct faults_hooks *hooks)
{
	memset(f, 0, sizeof *f);
	f->db = db;
	snprintf(f->id, sizeof f->id, "%s", id);
	f->stale_us = (int64_t)lease_seconds * 1000000;
	if (f->stale_us < (int64_t)heartbeat_ms * 5000)
		f->stale_us = (int64_t)heartbeat_ms * 5000;
	f->sweep_every_us = f->stale_us / 4;
	if (f->sweep_every_us < 1000000)
		f->sweep_every_us = 1000000;
	if (f->sweep_every_us > 30000000)
		f->sweep_every_us = 30000000;
	if (hooks)
		f->hooks = *hooks;
}

void faults_prepare(struct faults *f)
{
	db_async_prepare_once(f->db, "faults_sweep", FAULTS_SWEEP_SQL, 2);
	db_async_prepare_once(f->db, "faults_rescue", FAULTS_RESCUE_SQL, 1);
	db_async_prepare_once(f->db, "faults_ban", FAULTS_BAN_SQL, 2);
}

/* ------------------------------------------------------------------ */
/* Policy.                                                              */

static int64_t i64(const struct db_result *res, int r, int c)
{
	return db_result_isnull(res, r, c)
		? 0 : strtoll(db_result_value(res, r, c), NULL, 10);
}

static bool tf(const struct db_result *res, int r, int c)
{
	return !db_result_isnull(res, r, c) &&
	       db_result_value(res, r, c)[0] == 't';
}

static void on_policy(void *arg, const struct db_result *res)
{
	struct faults *f = arg;

	if (!db_result_ok(res)) {
		log_warn("fault policy load failed", "error=%s",
			 db_result_error(res));
		return;
	}
	for (int r = 0; r < db_result_ntuples(res); r++) {
		struct autoban_policy pol;

		memset(&pol, 0, sizeof pol);
		pol.enabled = tf(res, r, 1);
		pol.critical = tf(res, r, 2);
		pol.overflow_drop = tf(res, r, 3) && !pol.critical;
		pol.threshold = (int)i64(res, r, 4);
		pol.window_us = i64(res, r, 5);
		pol.duration_us = i64(res, r, 6);
		pol.max_retry_age_us = i64(res, r, 7);
		autoban_set_policy(&f->ab, (int32_t)i64(res, r, 0), &pol);
		if (!tf(res, r, 8))
			autoban_lifted(&f->ab, (int32_t)i64(res, r, 0),
				       push_now_us());
	}
	f->policy_loaded = true;
}

void faults_load_policy(struct faults *f)
{
	db_async_query(f->db, FAULTS_POLICY_SQL, 0, NULL, on_policy, f);
}

/* ------------------------------------------------------------------ */
/* Sweeper.                                                             */

static void on_rescue(void *arg, const struct db_result *res)
{
	struct faults *f = arg;

	f->rescue_inflight = false;
	if (!db_result_ok(res)) {
		log_warn("lease rescue failed", "error=%s",
			 db_result_error(res));
		return;
	}
	uint64_t k = db_result_ntuples(res) > 0 ? (uint64_t)i64(res, 0, 0)
						: 0;
	f->rescued += k;
	log_info("leases of dead dispatchers freed", "rows=%" PRIu64, k);
}

static void on_sweep(void *arg, const struct db_result *res)
{
	struct faults *f = arg;
	struct sqlarr ids = {0};
	int dead = 0;

	f->sweep_inflight = false;
	if (!db_result_ok(res)) {
		log_warn("lease sweep failed", "error=%s",
			 db_result_error(res));
		return;
	}
	sqlarr_reset(&ids);
	for (int r = 0; r < db_result_ntuples(res); r++) {
		if (db_result_isnull(res, r, 1))
			continue;
		const char *id = db_result_value(res, r, 1);
		log_warn("dispatcher marked dead", "dispatcher=%s by=%s", id,
			 f->id);
		sqlarr_add_str(&ids, id);
		dead++;
	}
	f->dead_marked += (uint64_t)dead;
	if (dead > 0 && !f->rescue_inflight) {
		const char *p[1] = { sqlarr_text(&ids) };
		f->rescue_inflight = true;
		if (db_async_exec_prepared(f->db, "faults_rescue", 1, p,
					   on_rescue, f) < 0)
			f->rescue_inflight = false;
	}
	sqlarr_free(&ids);
}

void faults_tick(struct faults *f, int64_t now_us)
{
	char stale[32];

	if (!db_async_is_up(f->db)) {
		f->up_since_us = 0;
		return;
	}
	if (f->up_since_us == 0) {
		/* (Re)connected: peers may be reconnecting too. */
		f->up_since_us = now_us;
		f->next_sweep_us = now_us + f->stale_us;
	}
	if (now_us < f->next_sweep_us || f->sweep_inflight)
		return;
	f->next_sweep_us = now_us + f->sweep_every_us;
	snprintf(stale, sizeof stale, "%.3f", (double)f->stale_us / 1e6);
	const char *p[2] = { f->id, stale };
	f->sweep_inflight = true;
	if (db_async_exec_prepared(f->db, "faults_sweep", 2, p, on_sweep,
				   f) < 0)
		f->sweep_inflight = false;
}

/* ------------------------------------------------------------------ */
/* Bans and holds.                                                      */

struct ban_ctx {
	struct faults *f;
	int32_t app_id;
	char reason[256];
};

static void on_ban(void *arg, const struct db_result *res)
{
	struct ban_ctx *b = arg;
	struct faults *f = b->f;

	if (!db_result_ok(res)) {
		log_error("auto-ban failed", "app=%d error=%s", b->app_id,
			  db_result_error(res));
	} else if (db_result_ntuples(res) == 0) {
		log_info("auto-ban not applied (disabled, critical or already "
			 "banned in push.apps)", "app=%d", b->app_id);
	} else {
		int64_t until = i64(res, 0, 0);
		f->bans++;
		log_warn("app auto-banned", "app=%d until_us=%" PRId64
			 " reason=%s", b->app_id, until, b->reason);
		if (f->hooks.ban)
			f->hooks.ban(f->hooks.arg, b->app_id, until, b->reason);
	}
	free(b);
}

static void ban(struct faults *f, int32_t app_id, const char *why)
{
	struct ban_ctx *b = mem_alloc_zero(1, sizeof *b);
	char app[16];

	b->f = f;
	b->app_id = app_id;
	snprintf(b->reason, sizeof b->reason, "%s", why);
	snprintf(app, sizeof app, "%d", (int)app_id);
	const char *p[2] = { app, b->reason };
	if (db_async_exec_prepared(f->db, "faults_ban", 2, p, on_ban, b) < 0)
		free(b);
}

int faults_claim_want(struct faults *f, int32_t app_id, int want, bool full,
		      int batch, int64_t now_us)
{
	if (autoban_held(&f->ab, app_id, now_us))
		return 0;
	if (want == 0 && full) {
		const struct autoban_policy *pol =
			autoban_policy_of(&f->ab, app_id);
		if (pol != NULL && pol->overflow_drop)
			return batch;
	}
	return want;
}

enum faults_verdict faults_on_claim(struct faults *f,
				    const struct push_item *item,
				    int max_attempts, bool no_room,
				    int64_t now_us, enum push_outcome *outcome,
				    char *reason, size_t reason_len)
{
	const struct autoban_policy *pol =
		autoban_policy_of(&f->ab, item->app_id);

	if (max_attempts > 0 && item->attempts > max_attempts) {
		f->lease_exhausted++;
		*outcome = PUSH_OUTCOME_FAILED;
		snprintf(reason, reason_len, "claimed %d times without an "
			 "outcome (max_attempts %d): its dispatchers died or "
			 "lost their leases", item->attempts, max_attempts);
		return FAULTS_FINISH;
	}
	if (pol != NULL && item->attempts > 1 &&
	    backoff_retry_too_old(item->enqueued_at_us, pol->max_retry_age_us,
				  now_us)) {
		f->retry_aged++;
		*outcome = PUSH_OUTCOME_FAILED;
		snprintf(reason, reason_len, "gave up retrying: queued longer "
			 "than max_retry_age");
		return FAULTS_FINISH;
	}
	if (no_room && pol != NULL && pol->overflow_drop) {
		f->overload_dropped++;
		*outcome = PUSH_OUTCOME_DROPPED_OVERLOAD;
		snprintf(reason, reason_len, "overflow policy drop: the app's "
			 "pool is full");
		return FAULTS_FINISH;
	}
	return FAULTS_SEND;
}

void faults_on_finish(struct faults *f, const struct push_item *item,
		      struct push_result *res, bool sent,
		      bool cred_unusable, bool counting, int64_t now_us)
{
	const struct autoban_policy *pol =
		autoban_policy_of(&f->ab, item->app_id);
	char why[256];

	if (res->outcome == PUSH_OUTCOME_RETRY && pol != NULL &&
	    backoff_retry_too_old(item->enqueued_at_us, pol->max_retry_age_us,
				  now_us)) {
		char last[160];
		snprintf(last, sizeof last, "%.150s", res->reason);
		f->retry_aged++;
		res->outcome = PUSH_OUTCOME_FAILED;
		res->retry_at_us = 0;
		snprintf(res->reason, sizeof res->reason, "gave up retrying: "
			 "queued longer than max_retry_age (last: %.150s)",
			 last[0] ? last : "no reason");
	}
	if (!counting)
		return;
	enum autoban_signal sig = autoban_signal_of(res, sent, cred_unusable);
	if (sig == AUTOBAN_SIGNAL_NONE)
		return;
	switch (autoban_note(&f->ab, item->app_id, sig, now_us, res->reason,
			     why, sizeof why)) {
	case AUTOBAN_BAN:
		ban(f, item->app_id, why);
		break;
	case AUTOBAN_HOLD:
		f->holds++;
		log_warn("critical app held instead of banned", "app=%d "
			 "reason=%s", item->app_id, why);
		if (f->hooks.hold)
			f->hooks.hold(f->hooks.arg, item->app_id);
		break;
	case AUTOBAN_NOTHING:
		break;
	}
}

void faults_free(struct faults *f)
{
	autoban_free(&f->ab);
}
