/*
 * daemon.c - `pgpushd run`.
 *
 * The life of a push:
 *
 *   NOTIFY pgpush_enqueue (listener)      poll timer (about 1 s, jittered)
 *                  \                       /
 *                   kick -> claim: one CLAIM_SQL for every pool that wants
 *                           rows (claim connection, two pipelined at
 *                           most), rows go into pools
 *                                  |
 *                           pool_pump -> sender -> provider
 *                                  |
 *                           finish -> ack buffer + stats counters
 *                                  |
 *           ack timer (5 ms) or 1000 rows -> one ACK_SQL (ack connection)
 *           stats timer (2 s) -> one upsert; heartbeat (stats connection)
 *
 * Configuration (apps, their limits, bans, pauses, credentials) is read on
 * the stats connection at start, on NOTIFY pgpush_config, on SIGHUP and
 * every 30 s.  A pool exists per (app, platform) with an enabled
 * credential whose platform has a sender; a changed credential retires
 * the old pool (it finishes what it has in flight, then is freed) and
 * starts a new one.  A paused app's waiting pushes are given back to the
 * queue; a banned app's are claimed and dropped (counted).
 *
 * Shutdown (SIGTERM, SIGINT): stop claiming, give every waiting push back
 * (RELEASE_SQL), let requests in flight finish for up to
 * --drain-timeout-ms, cancel the rest (they come back as retries), flush
 * outcomes and stats, mark this process stopped in push.dispatchers,
 * close everything and return 0.
 *
 * States: RUNNING -> DRAINING (waiting for in-flight work and the last
 * writes) -> CLOSING (handles closing) -> the loop ends.  Only
 * set_state() changes the state.
 */
#include "core/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "core/ack.h"
#include "core/claim.h"
#include "core/obs_writers.h"
#include "core/release.h"
#include "core/writer.h"
#include "obs/health.h"
#include "db/db.h"
#include "core/faults.h"
#include "net/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "obs/metrics.h"
#include "core/pool.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "db/sqlarr.h"
#include "obs/stats.h"
#include "obs/trace.h"

#define CONFIG_EVERY_MS 30000
#define ACK_BACKLOG_MAX (4 * ACK_BATCH_MAX)   /* claim nothing beyond */
/*
 * Claims in flight on the claim connection at once (pipelined): the
 * second is already with Postgres while the first runs, so Postgres runs
 * claims back to back instead of waiting for this loop to read a result
 * (a loop turn can take milliseconds of HTTP work), fill the pools and
 * ask again.  Measured: with one at a time the claim backend sat idle
 * more than half of a drain, waiting for the loop.
 */
#define CLAIMS_MAX      2
#define TICK_MS         100
/*
 * A claim or ack that took this long is worth a warning (at most one a
 * minute; the metrics count them all).  A 500-row claim takes 5-40 ms on
 * a busy 2-core box, unless something locks the queue or keeps delivered
 * rows in the claim's way: with one transaction holding a snapshot (a
 * long report, a pg_dump) every claim reads past all the rows delivered
 * since it began.  Measured, 1,000,000 queued: claims grew from 20 to
 * 180 ms over the drain, 11,200 pushes/s instead of 26,800.
 */
#define SLOW_SQL_US         100000
#define SLOW_WARN_EVERY_US  60000000

enum daemon_state {
	DAEMON_RUNNING,
	DAEMON_DRAINING,
	DAEMON_CLOSING
};

static const char *const state_names[] = { "running", "draining",
					   "closing" };

struct daemon {
	uv_loop_t loop;
	const struct cli_opts *opts;
	enum daemon_state state;
	char id[192];
	char host[128];
	int64_t started_at_us;
	char lease_seconds[16];

	struct db_async *db_listen;
	struct db_async *db_claim;
	struct db_async *db_ack;
	struct db_async *db_stats;
	struct http *http;
	struct sender_env env;

	struct pool **pools;        /* active: one per (app, platform) */
	size_t npools;
	struct pool **retired;      /* finishing in-flight work, then freed */
	size_t nretired;
	bool config_loaded;
	bool config_busy;
	bool config_again;

	struct claim_slot {
		struct daemon *d;
		bool busy;
		int64_t sent_us;
		struct claim_req req;
	} claim_slots[CLAIMS_MAX];
	int claims_out;             /* slots busy */
	bool claim_again;

	struct pool_gate gate;      /* answers not written yet (pool.h) */
	struct acker ack;           /* outcomes (ack connection) */
	struct release release;     /* rows given back (ack connection) */

	struct stats stats;
	struct writer stats_w;          /* stats connection */
	bool heartbeat_inflight;
	bool final_writes_done;
	struct trace trace;             /* debug pushes' events */
	struct writer trace_w;          /* stats connection */
	bool maint_inflight;
	uv_timer_t maint_timer;         /* push.run_maintenance() */
	struct metrics *metrics;        /* --metrics-listen, or NULL */

	uv_timer_t kick_timer;      /* 0 ms: claim soon */
	uv_timer_t poll_timer;
	uv_timer_t tick_timer;
	uv_timer_t stats_timer;
	uv_timer_t heartbeat_timer;
	uv_timer_t config_timer;
	uv_signal_t sig_term;
	uv_signal_t sig_int;
	uv_signal_t sig_hup;
	int64_t drain_deadline_us;
	bool drain_busy;            /* inside maybe_finish_drain() */
	bool drain_again;           /* ... and called again meanwhile */
	bool drain_cancelled;       /* requests in flight were cancelled */
	bool http_closed;
	int dbs_open;

	uint64_t claims, claimed_rows, acks, acked_rows;
	uint64_t claim_us, ack_us;      /* sent to answered, summed */
	uint64_t slow_sql, slow_unreported;
	int64_t slow_warned_us;
	uint64_t claims_at_last_hb, acked_at_last_hb;
	int64_t last_hb_us;
	struct health health;       /* last error, Postgres up or down */
	struct faults faults;       /* sweeper, auto-ban, retry age */
};

static void daemon_kick(struct daemon *d);
static void maybe_finish_drain(struct daemon *d);
static void config_load(struct daemon *d);
static void heartbeat(struct daemon *d);
static void trace_claimed(struct daemon *d, struct push_item *item,
			  struct pool *p);
static void trace_finished(struct daemon *d, struct push_item *item,
			   const struct push_result *res);

static void set_state(struct daemon *d, enum daemon_state s)
{
	log_debug("daemon state", "from=%s to=%s", state_names[d->state],
		  state_names[s]);
	d->state = s;
}

static void note_error(struct daemon *d, const char *what, const char *err)
{
	health_error(&d->health, what, err);
}

static void note_db_error(struct daemon *d, const char *what,
			  const struct db_result *res)
{
	health_db_result(&d->health, what, res);
}

static void note_ok(struct daemon *d, const char *what)
{
	health_ok(&d->health, what);
}

/* ------------------------------------------------------------------ */
/* Finishing pushes: every outcome goes to the ack buffer and stats.   */

/*
 * `gated`: the push's request is counted in d->gate until its outcome is
 * written (pool_acked() from on_ack_done).
 */
static void finish_item(struct daemon *d, struct push_item *item,
			const struct push_result *res, bool gated)
{
	int64_t now = push_now_us();
	double latency = -1;

	if (item->sent_at_us && item->enqueued_at_us)
		latency = (double)(now - item->enqueued_at_us) / 1000.0;
	ack_add(&d->ack.wait, item, res, now);
	d->ack.wait.rows[d->ack.wait.len - 1].gated = gated;
	stats_add(&d->stats, now, item->app_id, item->platform,
		  item->campaign_id, res->outcome, item->sent_at_us ? 1 : 0,
		  item->sent_at_us && item->payload
			  ? (int64_t)strlen(item->payload) : 0,
		  latency);
	if (item->debug)
		log_info("debug push finished",
			 "push=%" PRId64 " queue=%" PRId64 " outcome=%s "
			 "status=%d reason=%s",
			 item->push_id, item->queue_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason);
	if (item->debug)
		trace_finished(d, item, res);
	push_item_free(item);
	if (d->ack.wait.len >= ACK_BATCH_MAX)
		writer_flush(&d->ack.w);
	else
		writer_flush_soon(&d->ack.w,
				  (uint64_t)d->opts->ack_interval_ms);
}

static void on_pool_finish(void *arg, struct pool *pool,
			   struct push_item *item,
			   const struct push_result *res)
{
	struct daemon *d = arg;

	if (res == NULL) {
		/* waited too long: back, unsent */
		release_add(&d->release, item);
		release_flush(&d->release);
	} else {
		struct push_result r = *res;

		faults_on_finish(&d->faults, item, &r, item->sent_at_us != 0,
				 pool->cred == NULL,
				 d->state == DAEMON_RUNNING, push_now_us());
		/* A request went out (pool.c's on_sent counted it in the
		 * gate): it stays counted until this outcome is written. */
		finish_item(d, item, &r, item->sent_at_us != 0);
	}
	/* Room in a ring: more work may be claimed. */
	if (d->state == DAEMON_RUNNING)
		daemon_kick(d);
	else
		maybe_finish_drain(d);
}

static void finish_unsent(struct daemon *d, struct push_item *item,
			  enum push_outcome outcome, const char *reason)
{
	struct push_result res;

	push_result_set(&res, outcome, reason);
	finish_item(d, item, &res, false);
}

/* ------------------------------------------------------------------ */
/* Claim and ack times: summed for the metrics, slow ones reported.     */

/*
 * Who holds back the cleanup of delivered rows: the session (not this
 * daemon's) with the oldest snapshot.  Asked only after a slow-statement
 * warning.  Other roles' sessions show their xmin only to a role with
 * pg_read_all_stats.  Never the query text: it may hold a secret.
 */
static const char OLDEST_XACT_SQL[] =
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

/* A claim or ack answered: add its time; warn when it was slow. */
static void note_sql_time(struct daemon *d, const char *what,
			  int64_t sent_us, size_t rows, uint64_t *total_us)
{
	int64_t now = push_now_us(), us = now - sent_us;

	if (us < 0)
		us = 0;
	*total_us += (uint64_t)us;
	if (us < SLOW_SQL_US)
		return;
	d->slow_sql++;
	d->slow_unreported++;
	if (d->slow_warned_us != 0 &&
	    now - d->slow_warned_us < SLOW_WARN_EVERY_US)
		return;
	log_warn("slow claim or ack", "statement=%s ms=%lld rows=%zu "
		 "slow_since_last_warning=%" PRIu64 " hint=\"look in "
		 "pg_stat_activity for a long-open transaction (xact_start, "
		 "backend_xmin) or a lock on push.queue\"", what,
		 (long long)(us / 1000), rows, d->slow_unreported);
	d->slow_warned_us = now;
	d->slow_unreported = 0;
	if (d->state == DAEMON_RUNNING && db_async_is_up(d->db_stats))
		db_async_query(d->db_stats, OLDEST_XACT_SQL, 0, NULL,
			       on_oldest_xact, d);
}

/* ------------------------------------------------------------------ */
/* Ack: one statement for a batch of outcomes.                          */

/*
 * The outcomes in `b` are written: their sends leave the gate.  No pool
 * pumps here: a pump may finish pushes into the ack buffers while `b` is
 * read.
 */
static void pools_acked(struct daemon *d, const struct ack_buf *b)
{
	int n = 0;

	for (size_t i = 0; i < b->len; i++)
		n += b->rows[i].gated;
	pool_acked(&d->gate, n);
}

/* An ack batch is written (struct ack_hooks). */
static void on_acked(void *arg, const struct ack_buf *b, int64_t sent_us)
{
	struct daemon *d = arg;

	d->acks++;
	d->acked_rows += b->len;
	note_sql_time(d, "ack", sent_us, b->len, &d->ack_us);
	if (d->trace.nwait > 0) {
		int64_t *ids = mem_alloc((b->len + 1) * sizeof *ids);
		for (size_t i = 0; i < b->len; i++)
			ids[i] = b->rows[i].queue_id;
		trace_ack_done(&d->trace, ids, b->len);
		free(ids);
	}
	pools_acked(d, b);
}

/* ... and dropped: places in the windows came free. */
static void on_ack_freed(void *arg)
{
	struct daemon *d = arg;
	int64_t now = push_now_us();

	for (size_t i = 0; i < d->npools; i++)
		pool_pump(d->pools[i], now);
	daemon_kick(d);     /* a claim may have waited for this */
}

static void on_write_answer(void *arg)
{
	maybe_finish_drain(arg);
}

static void pool_give_back(struct daemon *d, struct pool *p)
{
	if (p->len == 0)
		return;
	struct push_item **items = mem_alloc(p->len * sizeof *items);
	size_t n = pool_take_unsent(p, items);

	for (size_t i = 0; i < n; i++)
		release_add(&d->release, items[i]);
	free(items);
	release_flush(&d->release);
}

/* ------------------------------------------------------------------ */
/* Claim.                                                               */

static struct pool *find_pool(struct daemon *d, int32_t app_id,
			      enum push_platform platform)
{
	for (size_t i = 0; i < d->npools; i++) {
		if (d->pools[i]->app_id == app_id &&
		    d->pools[i]->platform == platform)
			return d->pools[i];
	}
	return NULL;
}

static struct pool *find_pool_serial(struct daemon *d, uint64_t serial)
{
	for (size_t i = 0; i < d->npools; i++) {
		if (d->pools[i]->serial == serial)
			return d->pools[i];
	}
	return NULL;
}

/* The claim in `s` has its answer: its rows are no longer pending. */
static void claim_slot_free(struct daemon *d, struct claim_slot *s)
{
	for (int i = 0; i < s->req.pools; i++) {
		struct pool *p = find_pool_serial(d, s->req.asks[i].pool_serial);

		if (p == NULL)
			continue;   /* retired by a reload since */
		p->claim_pending -= s->req.asks[i].rows;
		if (p->claim_pending < 0)
			p->claim_pending = 0;
	}
	s->busy = false;
	d->claims_out--;
}

static void on_claim_done(void *arg, const struct db_result *res)
{
	struct claim_slot *s = arg;
	struct daemon *d = s->d;
	int got_full = 0;

	claim_slot_free(d, s);
	if (!db_result_ok(res)) {
		note_db_error(d, "claim failed", res);
		return;     /* the poll timer tries again */
	}
	note_ok(d, "claim failed");
	int n = db_result_ntuples(res);
	int64_t now_claimed = push_now_us();
	int64_t lease_us = (int64_t)d->opts->lease_seconds * 1000000;
	d->claims++;
	d->claimed_rows += (uint64_t)n;
	note_sql_time(d, "claim", s->sent_us, (size_t)n, &d->claim_us);
	for (int r = 0; r < n; r++) {
		const char *v[CLAIM_NCOLS];
		struct push_item *item;
		bool gone;
		enum push_outcome fault_outcome;
		char fault_reason[256];

		for (int c = 0; c < CLAIM_NCOLS; c++)
			v[c] = db_result_isnull(res, r, c)
				? NULL : db_result_value(res, r, c);
		if (claim_parse_row(v, &item, &gone) < 0) {
			note_error(d, "claim row unreadable", v[0] ? v[0] : "");
			continue;
		}
		struct pool *p = find_pool(d, item->app_id, item->platform);
		if (item->debug)
			trace_claimed(d, item, p);
		if (gone) {
			finish_unsent(d, item, PUSH_OUTCOME_INVALID_TOKEN,
				      "device invalidated since it was queued");
		} else if (item->payload == NULL) {
			finish_unsent(d, item, PUSH_OUTCOME_FAILED,
				      "the push row is gone (purged?)");
		} else if (item->token == NULL) {
			finish_unsent(d, item, PUSH_OUTCOME_FAILED,
				      "the device row is gone");
		} else if (p == NULL || d->state != DAEMON_RUNNING ||
			   p->lim.paused) {
			release_add(&d->release, item);
		} else if (faults_on_claim(&d->faults, item,
					   p->lim.max_attempts,
					   p->len >= p->cap &&
					   p->lim.banned_until_us <= now_claimed,
					   now_claimed, &fault_outcome,
					   fault_reason, sizeof fault_reason) ==
			   FAULTS_FINISH) {
			finish_unsent(d, item, fault_outcome, fault_reason);
		} else {
			/* Leave the request time plus a margin before the
			 * lease lapses; later it goes back unsent. */
			item->send_by_us = now_claimed + lease_us -
				(int64_t)d->opts->request_timeout_ms * 1000 -
				5000000;
			if (item->send_by_us <= now_claimed)
				item->send_by_us = now_claimed + lease_us / 2;
			pool_add(p, item, now_claimed);
		}
	}
	release_flush(&d->release);
	int64_t now = push_now_us();
	for (size_t i = 0; i < d->npools; i++)
		pool_pump(d->pools[i], now);
	/* A claim that got everything it asked for probably left more
	 * behind: go again at once rather than wait for the poll. */
	if (n > 0 && n >= s->req.rows)
		got_full = 1;
	if (got_full || d->claim_again) {
		d->claim_again = false;
		daemon_kick(d);
	}
}

static void claim(struct daemon *d)
{
	const char *params[CLAIM_NPARAMS];

	if (d->state != DAEMON_RUNNING || !d->config_loaded)
		return;
	if (d->claims_out == CLAIMS_MAX) {
		d->claim_again = true;
		return;
	}
	if (!db_async_is_up(d->db_claim))
		return;
	/* Outcomes not written yet still hold their rows' leases: claim no
	 * more until the writes catch up (pushes that fail fast, e.g. on a
	 * bad credential, can finish faster than one connection records
	 * them).  This bounds memory and the work left at SIGTERM. */
	if (acker_backlog(&d->ack) >= ACK_BACKLOG_MAX)
		return;
	struct claim_slot *s = &d->claim_slots[0];
	while (s->busy)
		s++;
	claim_req_reset(&s->req);
	for (size_t i = 0; i < d->npools; i++) {
		struct pool *p = d->pools[i];
		int want = faults_claim_want(&d->faults, p->app_id,
			pool_claim_want(p, d->opts->batch_size),
			p->len * 2 > p->cap && !p->lim.paused &&
			p->claim_pending == 0, d->opts->batch_size,
			push_now_us());
		if (want > 0) {
			claim_req_add(&s->req, p->app_id, p->platform,
				      p->serial, want);
			p->claim_pending += want;
		}
	}
	if (s->req.pools == 0)
		return;
	claim_req_params(&s->req, d->id, d->lease_seconds, params);
	s->d = d;
	s->busy = true;
	s->sent_us = push_now_us();
	d->claims_out++;
	if (db_async_exec_prepared(d->db_claim, "claim", CLAIM_NPARAMS, params,
				   on_claim_done, s) < 0)
		claim_slot_free(d, s);
}

static void on_kick(uv_timer_t *t)
{
	claim(t->data);
}

static void daemon_kick(struct daemon *d)
{
	if (d->state != DAEMON_RUNNING)
		return;
	if (!uv_is_active((uv_handle_t *)&d->kick_timer))
		uv_timer_start(&d->kick_timer, on_kick, 0, 0);
}

static void on_poll(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t base = (uint64_t)d->opts->poll_interval_ms;
	/* 80..120 % of the interval, so many dispatchers do not march in
	 * step. */
	uint64_t next = base * 4 / 5 + (uint64_t)rand() % (base * 2 / 5 + 1);

	claim(d);
	uv_timer_start(&d->poll_timer, on_poll, next, 0);
}

/* ------------------------------------------------------------------ */
/* Configuration.                                                       */

static const char CONFIG_SQL[] =
	"SELECT a.id, a.paused,"
	" coalesce((extract(epoch FROM a.banned_until) * 1e6)::bigint, 0),"
	" coalesce(a.ban_reason, ''), a.min_concurrency, a.max_concurrency,"
	" a.max_attempts, c.platform, c.id,"
	" c.updated_at::text || md5(c.row_json), c.row_json"
	" FROM push.apps a"
	" JOIN LATERAL ("
	"  SELECT 'fcm' AS platform, x.id, x.updated_at,"
	"   row_to_json(x)::text AS row_json"
	"  FROM push.fcm_credentials x WHERE x.app_id = a.id AND x.enabled"
	"  UNION ALL SELECT 'apns', x.id, x.updated_at, row_to_json(x)::text"
	"  FROM push.apns_credentials x WHERE x.app_id = a.id AND x.enabled"
	"  UNION ALL SELECT 'wns', x.id, x.updated_at, (to_jsonb(x) ||"
	"   jsonb_build_object('retry_ambiguous', a.retry_ambiguous))::text"
	"  FROM push.wns_credentials x WHERE x.app_id = a.id AND x.enabled"
	"  UNION ALL SELECT 'mpns', x.id, x.updated_at, (to_jsonb(x) ||"
	"   jsonb_build_object('retry_ambiguous', a.retry_ambiguous))::text"
	"  FROM push.mpns_credentials x WHERE x.app_id = a.id AND x.enabled"
	"  UNION ALL SELECT 'webpush', x.id, x.updated_at,"
	"   row_to_json(x)::text"
	"  FROM push.webpush_credentials x"
	"  WHERE x.app_id = a.id AND x.enabled"
	" ) c ON true"
	" ORDER BY a.id, c.platform";

static void retire_pool(struct daemon *d, size_t i)
{
	struct pool *p = d->pools[i];

	pool_give_back(d, p);
	d->pools[i] = d->pools[--d->npools];
	d->retired = mem_realloc(d->retired,
				 (d->nretired + 1) * sizeof *d->retired);
	d->retired[d->nretired++] = p;
}

static void free_idle_retired(struct daemon *d)
{
	for (size_t i = 0; i < d->nretired;) {
		struct pool *p = d->retired[i];
		if (!pool_idle(p)) {
			i++;
			continue;
		}
		pool_close_cred(p);
		pool_free(p);
		d->retired[i] = d->retired[--d->nretired];
	}
}

static int64_t to_i64(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static size_t pool_index(struct daemon *d, struct pool *p)
{
	for (size_t i = 0; i < d->npools; i++)
		if (d->pools[i] == p)
			return i;
	return SIZE_MAX;
}

/*
 * Apply one loaded configuration: update limits of pools that stay,
 * start pools for new (app, platform) credentials, retire pools whose
 * credential changed or went away.
 */
static void on_config(void *arg, const struct db_result *res)
{
	struct daemon *d = arg;

	d->config_busy = false;
	if (!db_result_ok(res)) {
		note_db_error(d, "config load failed", res);
		return;
	}
	note_ok(d, "config load failed");
	/* The pools before this load; those not named again are retired. */
	size_t nold = d->npools;
	struct pool **old = mem_alloc((nold + 1) * sizeof *old);
	bool *keep = mem_alloc_zero(nold + 1, sizeof *keep);
	if (nold > 0)
		memcpy(old, d->pools, nold * sizeof *old);

	int n = db_result_ntuples(res);
	for (int r = 0; r < n; r++) {
		struct pool_limits lim;
		enum push_platform platform;
		int32_t app_id = (int32_t)to_i64(db_result_value(res, r, 0));
		const char *pname = db_result_value(res, r, 7);
		int cred_id = (int)to_i64(db_result_value(res, r, 8));

		if (push_platform_parse(pname, &platform) < 0)
			continue;
		const struct sender_ops *ops = sender_for(platform);
		if (ops == NULL)
			continue;   /* platform not supported yet: held */
		memset(&lim, 0, sizeof lim);
		lim.paused = db_result_value(res, r, 1)[0] == 't';
		lim.banned_until_us = to_i64(db_result_value(res, r, 2));
		snprintf(lim.ban_reason, sizeof lim.ban_reason, "%s",
			 db_result_value(res, r, 3));
		lim.min_window = (int)to_i64(db_result_value(res, r, 4));
		lim.max_window = (int)to_i64(db_result_value(res, r, 5));
		lim.max_attempts = (int)to_i64(db_result_value(res, r, 6));

		/* The credential's identity includes its last update, so an
		 * edited credential gets a fresh pool. */
		unsigned stamp = (unsigned)cred_id;
		for (const char *c = db_result_value(res, r, 9); *c; c++)
			stamp = stamp * 31u + (unsigned char)*c;

		struct pool *p = find_pool(d, app_id, platform);
		if (p != NULL && p->credential_id != (int)stamp) {
			retire_pool(d, pool_index(d, p));
			p = NULL;
		}
		if (p != NULL) {
			bool was_paused = p->lim.paused;
			pool_set_limits(p, &lim);
			for (size_t i = 0; i < nold; i++)
				if (old[i] == p)
					keep[i] = true;
			if (lim.paused && !was_paused)
				pool_give_back(d, p);
			continue;
		}
		struct sender_cred *cred = NULL;
		char err[256] = "";
		if (ops->cred_open(&cred, &d->env, db_result_value(res, r, 10),
				   err, sizeof err) < 0) {
			log_error("credential unusable",
				  "app=%d platform=%s error=%s", app_id,
				  pname, err);
			cred = NULL;
		}
		p = pool_new(app_id, platform, (int)stamp, ops, cred, &lim,
			     on_pool_finish, d);
		p->gate = &d->gate;
		if (cred == NULL)
			snprintf(p->cred_error, sizeof p->cred_error, "%s",
				 err);
		d->pools = mem_realloc(d->pools,
				       (d->npools + 1) * sizeof *d->pools);
		d->pools[d->npools++] = p;
		log_info("pool started", "app=%d platform=%s window=%d..%d",
			 app_id, pname, lim.min_window, lim.max_window);
	}
	/* Pools whose app or credential is gone finish and go. */
	for (size_t i = 0; i < nold; i++) {
		size_t at = pool_index(d, old[i]);
		if (!keep[i] && at != SIZE_MAX)
			retire_pool(d, at);
	}
	free(old);
	free(keep);
	d->config_loaded = true;
	log_debug("config loaded", "pools=%zu retired=%zu", d->npools,
		  d->nretired);
	int64_t now = push_now_us();
	for (size_t i = 0; i < d->npools; i++)
		pool_pump(d->pools[i], now);
	if (d->config_again) {
		d->config_again = false;
		config_load(d);
	}
	daemon_kick(d);
}

static void config_load(struct daemon *d)
{
	if (d->state != DAEMON_RUNNING)
		return;
	if (d->config_busy) {
		d->config_again = true;
		return;
	}
	if (!db_async_is_up(d->db_stats))
		return;     /* loaded when the stats connection is ready */
	d->config_busy = true;
	if (db_async_query(d->db_stats, CONFIG_SQL, 0, NULL, on_config, d) < 0)
		d->config_busy = false;
	else
		faults_load_policy(&d->faults);
}

static void on_config_timer(uv_timer_t *t)
{
	config_load(t->data);
}

/* ------------------------------------------------------------------ */
/* Stats and heartbeat.                                                 */

static void on_stats_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	writer_flush(&d->stats_w);
	writer_flush(&d->trace_w);
}

/* ------------------------------------------------------------------ */
/* Tracing of debug pushes (push.debug_events), written in batches on    */
/* the stats connection with the stats.  Only items with debug = true   */
/* get here.                                                            */

/* A sender's hook (sender_env.trace): request built, response... */
static void on_sender_trace(void *arg, const struct push_item *item,
			    const char *step, const char *detail_json)
{
	struct daemon *d = arg;

	if (item != NULL && item->debug)
		trace_event(&d->trace, 0, item, step, detail_json);
}

static void trace_claimed(struct daemon *d, struct push_item *item,
			  struct pool *p)
{
	struct trace_json j;
	int64_t now = push_now_us();

	trace_json_begin(&j);
	trace_json_str(&j, "by", d->id);
	trace_json_int(&j, "attempt", item->attempts);
	trace_json_int(&j, "device_id", item->device_id);
	trace_json_str(&j, "priority", push_priority_name(item->priority));
	if (item->enqueued_at_us)
		trace_json_int(&j, "queued_ms",
			       (now - item->enqueued_at_us) / 1000);
	char *detail = trace_json_end(&j);
	trace_event(&d->trace, now, item, "claimed", detail);
	free(detail);

	trace_json_begin(&j);
	trace_json_int(&j, "app_id", item->app_id);
	trace_json_str(&j, "platform", push_platform_name(item->platform));
	if (p != NULL) {
		trace_json_bool(&j, "found", true);
		trace_json_int(&j, "ring", (int64_t)p->len);
		trace_json_int(&j, "fill_percent", pool_fill_percent(p));
		trace_json_int(&j, "window", p->window);
		trace_json_int(&j, "in_flight", p->in_flight);
		trace_json_bool(&j, "paused", p->lim.paused);
	} else {
		trace_json_bool(&j, "found", false);
	}
	detail = trace_json_end(&j);
	trace_event(&d->trace, now, item, "pool", detail);
	free(detail);
}

static void trace_finished(struct daemon *d, struct push_item *item,
			   const struct push_result *res)
{
	struct trace_json j;
	int64_t now = push_now_us();
	char *detail;

	if (item->sent_at_us) {
		trace_json_begin(&j);
		trace_json_int(&j, "status", res->http_status);
		trace_json_str(&j, "reason", res->reason);
		if (res->message_id[0])
			trace_json_str(&j, "message_id", res->message_id);
		trace_json_int(&j, "sent_ms_after_enqueue",
			       item->enqueued_at_us ? (item->sent_at_us -
			       item->enqueued_at_us) / 1000 : 0);
		trace_json_int(&j, "response_ms",
			       (now - item->sent_at_us) / 1000);
		detail = trace_json_end(&j);
		trace_event(&d->trace, now, item, "response", detail);
		free(detail);
	}

	trace_json_begin(&j);
	trace_json_str(&j, "outcome", push_outcome_name(res->outcome));
	trace_json_str(&j, "reason", res->reason);
	trace_json_bool(&j, "sent", item->sent_at_us != 0);
	trace_json_bool(&j, "throttled", res->throttled);
	trace_json_bool(&j, "auth_failure", res->auth_failure);
	detail = trace_json_end(&j);
	trace_event(&d->trace, now, item, "classified", detail);
	free(detail);

	trace_json_begin(&j);
	trace_json_bool(&j, "retry", res->outcome == PUSH_OUTCOME_RETRY);
	trace_json_int(&j, "attempt", item->attempts);
	if (res->outcome == PUSH_OUTCOME_RETRY && res->retry_at_us)
		trace_json_int(&j, "retry_in_ms",
			       (res->retry_at_us - now) / 1000);
	detail = trace_json_end(&j);
	trace_event(&d->trace, now, item, "retry_decision", detail);
	free(detail);
	trace_ack_wait(&d->trace, item, res->outcome);
}

/* ------------------------------------------------------------------ */
/* Maintenance: rollup, partitions, retention - push.run_maintenance(), */
/* one dispatcher at a time (it takes an advisory lock or skips).       */

#define MAINT_EVERY_MS 300000

static const char MAINT_SQL[] =
	"SELECT action, object FROM push.run_maintenance()";

static void on_maint_done(void *arg, const struct db_result *res)
{
	struct daemon *d = arg;

	d->maint_inflight = false;
	if (!db_result_ok(res)) {
		note_db_error(d, "maintenance failed", res);
	} else {
		note_ok(d, "maintenance failed");
		for (int r = 0; r < db_result_ntuples(res); r++)
			log_info("maintenance", "action=%s object=%s",
				 db_result_value(res, r, 0),
				 db_result_value(res, r, 1));
	}
	maybe_finish_drain(d);
}

static void maint_start(struct daemon *d)
{
	if (d->maint_inflight || d->state != DAEMON_RUNNING ||
	    !db_async_is_up(d->db_stats))
		return;
	d->maint_inflight = true;
	if (db_async_query(d->db_stats, MAINT_SQL, 0, NULL, on_maint_done,
			   d) < 0)
		d->maint_inflight = false;
}

static void on_maint_timer(uv_timer_t *t)
{
	maint_start(t->data);
}

/* ------------------------------------------------------------------ */
/* The Prometheus endpoint's page, rendered on each scrape.             */

static void metrics_render(void *arg, struct buf *b)
{
	struct daemon *d = arg;
	int in_flight = 0;

	for (size_t i = 0; i < d->npools; i++)
		in_flight += d->pools[i]->in_flight;
	metrics_printf(b, "# HELP pgpush_info This dispatcher.\n"
		       "# TYPE pgpush_info gauge\npgpush_info{id=\"");
	metrics_label_value(b, d->id);
	metrics_printf(b, "\",version=\"%s\"} 1\n", PGPUSH_VERSION);
	metrics_printf(b, "# HELP pgpush_start_time_seconds Process start, "
		       "Unix time.\n# TYPE pgpush_start_time_seconds gauge\n"
		       "pgpush_start_time_seconds %.3f\n",
		       (double)d->started_at_us / 1e6);
	metrics_printf(b, "# HELP pgpush_claims_total Claim statements.\n"
		       "# TYPE pgpush_claims_total counter\n"
		       "pgpush_claims_total %" PRIu64 "\n", d->claims);
	metrics_printf(b, "# HELP pgpush_claimed_rows_total Queue rows "
		       "claimed.\n# TYPE pgpush_claimed_rows_total counter\n"
		       "pgpush_claimed_rows_total %" PRIu64 "\n",
		       d->claimed_rows);
	metrics_printf(b, "# HELP pgpush_acks_total Ack statements "
		       "written.\n# TYPE pgpush_acks_total counter\n"
		       "pgpush_acks_total %" PRIu64 "\n", d->acks);
	metrics_printf(b, "# HELP pgpush_acked_rows_total Outcomes written "
		       "to push.deliveries.\n"
		       "# TYPE pgpush_acked_rows_total counter\n"
		       "pgpush_acked_rows_total %" PRIu64 "\n", d->acked_rows);
	metrics_printf(b, "# HELP pgpush_claim_seconds_total Time from "
		       "sending claims to their answers.\n"
		       "# TYPE pgpush_claim_seconds_total counter\n"
		       "pgpush_claim_seconds_total %.6f\n",
		       (double)d->claim_us / 1e6);
	metrics_printf(b, "# HELP pgpush_ack_seconds_total Time from "
		       "sending acks to their answers.\n"
		       "# TYPE pgpush_ack_seconds_total counter\n"
		       "pgpush_ack_seconds_total %.6f\n",
		       (double)d->ack_us / 1e6);
	metrics_printf(b, "# HELP pgpush_slow_statements_total Claims and "
		       "acks that took %d ms or more.\n"
		       "# TYPE pgpush_slow_statements_total counter\n"
		       "pgpush_slow_statements_total %" PRIu64 "\n",
		       SLOW_SQL_US / 1000, d->slow_sql);
	metrics_printf(b, "# HELP pgpush_ack_backlog Outcomes waiting to be "
		       "written.\n# TYPE pgpush_ack_backlog gauge\n"
		       "pgpush_ack_backlog %zu\n",
		       acker_backlog(&d->ack));
	metrics_printf(b, "# HELP pgpush_in_flight Provider requests in "
		       "flight.\n# TYPE pgpush_in_flight gauge\n"
		       "pgpush_in_flight %d\n", in_flight);
	metrics_printf(b, "# HELP pgpush_pools Active pools.\n"
		       "# TYPE pgpush_pools gauge\npgpush_pools %zu\n",
		       d->npools);
	metrics_printf(b, "# HELP pgpush_pg_connections Postgres connections "
		       "up.\n# TYPE pgpush_pg_connections gauge\n"
		       "pgpush_pg_connections %d\n",
		       db_async_is_up(d->db_listen) +
		       db_async_is_up(d->db_claim) +
		       db_async_is_up(d->db_ack) + db_async_is_up(d->db_stats));
	metrics_printf(b, "# HELP pgpush_pool_ring Pushes waiting in a pool's "
		       "ring.\n# TYPE pgpush_pool_ring gauge\n");
	for (size_t i = 0; i < d->npools; i++)
		metrics_printf(b, "pgpush_pool_ring{app_id=\"%d\","
			       "platform=\"%s\"} %zu\n", d->pools[i]->app_id,
			       push_platform_name(d->pools[i]->platform),
			       d->pools[i]->len);
	metrics_printf(b, "# HELP pgpush_pool_fill_percent Ring fill.\n"
		       "# TYPE pgpush_pool_fill_percent gauge\n");
	for (size_t i = 0; i < d->npools; i++)
		metrics_printf(b, "pgpush_pool_fill_percent{app_id=\"%d\","
			       "platform=\"%s\"} %d\n", d->pools[i]->app_id,
			       push_platform_name(d->pools[i]->platform),
			       pool_fill_percent(d->pools[i]));
	metrics_printf(b, "# HELP pgpush_pool_in_flight Requests in flight "
		       "per pool.\n# TYPE pgpush_pool_in_flight gauge\n");
	for (size_t i = 0; i < d->npools; i++)
		metrics_printf(b, "pgpush_pool_in_flight{app_id=\"%d\","
			       "platform=\"%s\"} %d\n", d->pools[i]->app_id,
			       push_platform_name(d->pools[i]->platform),
			       d->pools[i]->in_flight);
	metrics_printf(b, "# HELP pgpush_debug_events_total Trace events of "
		       "debug pushes, by fate.\n"
		       "# TYPE pgpush_debug_events_total counter\n"
		       "pgpush_debug_events_total{state=\"recorded\"} %" PRIu64
		       "\npgpush_debug_events_total{state=\"written\"} %" PRIu64
		       "\npgpush_debug_events_total{state=\"dropped\"} %" PRIu64
		       "\n", d->trace.events, d->trace.written,
		       d->trace.dropped);
	if (d->http != NULL) {
		struct http_stats hs;

		http_get_stats(d->http, &hs);
		metrics_printf(b, "# HELP pgpush_http_requests_total Provider "
			       "requests finished (answered or not).\n"
			       "# TYPE pgpush_http_requests_total counter\n"
			       "pgpush_http_requests_total %" PRIu64 "\n",
			       hs.completed);
		metrics_printf(b, "# HELP pgpush_http_connects_total Provider "
			       "connections opened.\n"
			       "# TYPE pgpush_http_connects_total counter\n"
			       "pgpush_http_connects_total %" PRIu64 "\n",
			       hs.connects);
		metrics_printf(b, "# HELP pgpush_http_turned_back_total "
			       "Requests held back from a connection that had "
			       "not answered yet (APNs token auth).\n"
			       "# TYPE pgpush_http_turned_back_total counter\n"
			       "pgpush_http_turned_back_total %" PRIu64 "\n",
			       hs.turned_back);
		metrics_printf(b, "# HELP pgpush_http_requeued_total "
			       "Requests that waited past the connect timeout "
			       "for a free stream and were queued again (not "
			       "failed).\n"
			       "# TYPE pgpush_http_requeued_total counter\n"
			       "pgpush_http_requeued_total %" PRIu64 "\n",
			       hs.requeued);
		metrics_printf(b, "# HELP pgpush_http_rebuilds_total Times a "
			       "provider only failed and its connections were "
			       "rebuilt.\n"
			       "# TYPE pgpush_http_rebuilds_total counter\n"
			       "pgpush_http_rebuilds_total %" PRIu64 "\n",
			       hs.rebuilds);
	}
	stats_render_metrics(&d->stats, b);
}

#define HEARTBEAT_NPARAMS 18

static const char HEARTBEAT_SQL[] =
	"INSERT INTO push.dispatchers AS x (id, host, pid, version, state,"
	" started_at, heartbeat_at, stopped_at, cpu_user_seconds,"
	" cpu_system_seconds, rss_bytes, open_fds, pg_connections, pools,"
	" in_flight, queue_depth, claims_per_second, acks_per_second,"
	" pool_detail, last_error, heartbeat_interval_ms)"
	" VALUES ($1, $2, $3::int, $4, $5, to_timestamp($6::bigint / 1e6),"
	"  now(), CASE WHEN $5 = 'stopped' THEN now() END, $7::float8,"
	"  $8::float8, $9::bigint, $10::int, $11::int, $12::int, $13::int,"
	"  (SELECT greatest(reltuples, 0)::bigint FROM pg_class"
	"   WHERE oid = 'push.queue'::regclass),"
	"  $14::float8, $15::float8, $16::jsonb, nullif($17, ''), $18::int)"
	" ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,"
	"  heartbeat_at = now(), stopped_at = EXCLUDED.stopped_at,"
	"  cpu_user_seconds = EXCLUDED.cpu_user_seconds,"
	"  cpu_system_seconds = EXCLUDED.cpu_system_seconds,"
	"  rss_bytes = EXCLUDED.rss_bytes, open_fds = EXCLUDED.open_fds,"
	"  pg_connections = EXCLUDED.pg_connections, pools = EXCLUDED.pools,"
	"  in_flight = EXCLUDED.in_flight, queue_depth = EXCLUDED.queue_depth,"
	"  claims_per_second = EXCLUDED.claims_per_second,"
	"  acks_per_second = EXCLUDED.acks_per_second,"
	"  pool_detail = EXCLUDED.pool_detail,"
	"  last_error = EXCLUDED.last_error,"
	"  heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms";

static long rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (dir == NULL)
		return 0;
	while (readdir(dir) != NULL)
		n++;
	closedir(dir);
	return n > 3 ? n - 3 : 0;   /* ., .. and the directory's own fd */
}

static void on_heartbeat_done(void *arg, const struct db_result *res)
{
	struct daemon *d = arg;

	d->heartbeat_inflight = false;
	if (!db_result_ok(res)) {
		note_db_error(d, "heartbeat failed", res);
	} else {
		note_ok(d, "heartbeat failed");
		if (d->state != DAEMON_RUNNING && d->final_writes_done)
			log_debug("final heartbeat written", NULL);
	}
	maybe_finish_drain(d);
}

static void heartbeat(struct daemon *d)
{
	struct rusage ru;
	char v[HEARTBEAT_NPARAMS][64];
	const char *params[HEARTBEAT_NPARAMS];
	int in_flight = 0, conns = 0;
	int64_t now = push_now_us();
	double secs = d->last_hb_us ? (double)(now - d->last_hb_us) / 1e6 : 0;
	struct sqlarr detail = {0};

	if (d->heartbeat_inflight)
		return;
	/* Stopping: a heartbeat queued on a connection that is down would
	 * hold the exit until its next attempt (up to 30 s away). */
	if (d->state != DAEMON_RUNNING && !db_async_is_up(d->db_stats))
		return;
	getrusage(RUSAGE_SELF, &ru);
	for (size_t i = 0; i < d->npools; i++)
		in_flight += d->pools[i]->in_flight;
	conns = db_async_is_up(d->db_listen) + db_async_is_up(d->db_claim) +
		db_async_is_up(d->db_ack) + db_async_is_up(d->db_stats);

	/* Per-pool sizes as a JSON array (built by hand: numbers only). */
	size_t cap = 64 + d->npools * 160;
	char *json = mem_alloc(cap);
	size_t off = (size_t)snprintf(json, cap, "[");
	for (size_t i = 0; i < d->npools; i++) {
		struct pool *p = d->pools[i];
		off += (size_t)snprintf(json + off, cap - off,
			"%s{\"app_id\":%d,\"platform\":\"%s\",\"ring\":%zu,"
			"\"fill_percent\":%d,\"window\":%d,\"in_flight\":%d,"
			"\"paused\":%s}", i ? "," : "", p->app_id,
			push_platform_name(p->platform), p->len,
			pool_fill_percent(p), p->window, p->in_flight,
			p->lim.paused ? "true" : "false");
	}
	snprintf(json + off, cap - off, "]");
	(void)detail;

	snprintf(v[2], 64, "%d", (int)getpid());
	snprintf(v[5], 64, "%" PRId64, d->started_at_us);
	snprintf(v[6], 64, "%.3f", (double)ru.ru_utime.tv_sec +
		 (double)ru.ru_utime.tv_usec / 1e6);
	snprintf(v[7], 64, "%.3f", (double)ru.ru_stime.tv_sec +
		 (double)ru.ru_stime.tv_usec / 1e6);
	snprintf(v[8], 64, "%ld", rss_bytes());
	snprintf(v[9], 64, "%d", open_fds());
	snprintf(v[10], 64, "%d", conns);
	snprintf(v[11], 64, "%zu", d->npools);
	snprintf(v[12], 64, "%d", in_flight);
	snprintf(v[13], 64, "%.1f", secs > 0
		 ? (double)(d->claimed_rows - d->claims_at_last_hb) / secs : 0);
	snprintf(v[14], 64, "%.1f", secs > 0
		 ? (double)(d->acked_rows - d->acked_at_last_hb) / secs : 0);
	params[0] = d->id;
	params[1] = d->host;
	params[2] = v[2];
	params[3] = PGPUSH_VERSION;
	params[4] = d->state == DAEMON_RUNNING ? "running"
		    : d->final_writes_done ? "stopped" : "draining";
	params[5] = v[5];
	for (int k = 6; k <= 14; k++)
		params[k] = v[k];
	params[15] = json;
	/* Written means heartbeats work again: not its own error. */
	params[16] = health_last_error(&d->health, "heartbeat failed");
	snprintf(v[17], 64, "%d", d->opts->heartbeat_interval_ms);
	params[17] = v[17];
	d->claims_at_last_hb = d->claimed_rows;
	d->acked_at_last_hb = d->acked_rows;
	d->last_hb_us = now;
	d->heartbeat_inflight = true;
	if (db_async_exec_prepared(d->db_stats, "heartbeat", HEARTBEAT_NPARAMS,
				   params,
				   on_heartbeat_done, d) < 0)
		d->heartbeat_inflight = false;
	free(json);
}

static void on_heartbeat_timer(uv_timer_t *t)
{
	heartbeat(t->data);
}

/* ------------------------------------------------------------------ */
/* Postgres connections.                                                */

static void on_listen_done(void *arg, const struct db_result *res)
{
	if (!db_result_ok(res))
		note_db_error(arg, "LISTEN failed", res);
	else
		note_ok(arg, "LISTEN failed");
}

static void pg_maybe_back(struct daemon *d);

static void on_listen_ready(void *arg)
{
	struct daemon *d = arg;

	pg_maybe_back(d);
	db_async_query(d->db_listen,
		       "LISTEN pgpush_enqueue; LISTEN pgpush_config", 0, NULL,
		       on_listen_done, d);
	/* Anything enqueued while we were not listening: look now. */
	config_load(d);
	daemon_kick(d);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct daemon *d = arg;

	(void)payload;
	if (strcmp(channel, "pgpush_config") == 0)
		config_load(d);
	else
		daemon_kick(d);
}

static void on_session_set(void *arg, const struct db_result *res)
{
	(void)arg;
	/* Not fatal: the statements run as well with per-call plans. */
	if (db_result_status(res) == DB_ERR_QUERY)
		log_warn("session settings refused", "sql=\"%s\" error=%s",
			 WORK_SESSION_SQL, db_result_error(res));
}

static void on_work_ready(struct daemon *d, struct db_async *conn)
{
	pg_maybe_back(d);
	/* First on the new session, before the flushes below. */
	db_async_query(conn, WORK_SESSION_SQL, 0, NULL, on_session_set, d);
	/* Buffered outcomes survive a reconnect: write them now. */
	writer_flush(&d->ack.w);
	release_flush(&d->release);
	daemon_kick(d);
}

static void on_claim_ready(void *arg)
{
	struct daemon *d = arg;

	on_work_ready(d, d->db_claim);
}

static void on_ack_ready(void *arg)
{
	struct daemon *d = arg;

	on_work_ready(d, d->db_ack);
}

static void on_stats_ready(void *arg)
{
	struct daemon *d = arg;

	pg_maybe_back(d);
	if (!d->config_loaded) {
		/*
		 * Maintenance first: it makes today's deliveries partition
		 * when there is none (a new database, a long stop), and doing
		 * that while an ack inserts into the default partition fails
		 * the ack once.  Queries on a connection run in order, and
		 * nothing is claimed before the configuration is loaded.
		 */
		maint_start(d);
		config_load(d);
	}
	heartbeat(d);
}

/* The largest backoff step among the connections (0: all up). */
static uint64_t pg_backoff_step_ms(struct daemon *d)
{
	struct db_async *c[] = { d->db_listen, d->db_claim, d->db_ack,
				 d->db_stats };
	uint64_t step = 0;

	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		uint64_t s = c[i] != NULL ? db_async_backoff_step_ms(c[i]) : 0;
		if (s > step)
			step = s;
	}
	return step;
}

/*
 * A connection went down or an attempt failed.  All four connections
 * fail together when the server is away, each attempt of each one ends
 * here, so this says it once when Postgres becomes unreachable (or the
 * cause changes), then at most once per backoff step (100 ms doubling to
 * 30 s), with what to do about the common causes.
 */
static void on_db_down(void *arg, const char *error)
{
	struct daemon *d = arg;

	health_pg_down(&d->health, error, pg_backoff_step_ms(d),
		       d->state == DAEMON_CLOSING);
}

/* A connection is up: once all are, say so (once) and clear the error. */
static void pg_maybe_back(struct daemon *d)
{
	if (!db_async_is_up(d->db_listen) || !db_async_is_up(d->db_claim) ||
	    !db_async_is_up(d->db_ack) || !db_async_is_up(d->db_stats))
		return;
	health_pg_up(&d->health);
}

static int open_db(struct daemon *d, struct db_async **out, const char *name,
		   void (*on_ready)(void *), char *err, size_t errlen)
{
	struct db_async_opts o;
	char conninfo[8192];

	memset(&o, 0, sizeof o);
	o.name = name;
	o.on_ready = on_ready;
	o.on_notify = on_notify;
	o.on_down = on_db_down;
	o.arg = d;
	if (strcmp(name, "claim") == 0)
		o.pipeline = CLAIMS_MAX;
	/* A trailing application_name overrides one in the user's string
	 * only when it is a keyword/value string; a URI keeps its own. */
	if (strstr(d->opts->conninfo, "://") != NULL)
		snprintf(conninfo, sizeof conninfo, "%s", d->opts->conninfo);
	else
		snprintf(conninfo, sizeof conninfo,
			 "%s application_name='pgpushd %s'",
			 d->opts->conninfo, name);
	int rc = db_async_open(out, &d->loop, conninfo, &o, err, errlen);
	memset(conninfo, 0, sizeof conninfo);
	if (rc == 0)
		d->dbs_open++;
	return rc;
}

static void on_db_closed(void *arg)
{
	struct daemon *d = arg;

	d->dbs_open--;
}

/* ------------------------------------------------------------------ */
/* Ticks, signals, shutdown.                                            */

static bool all_pools_idle(struct daemon *d)
{
	for (size_t i = 0; i < d->npools; i++)
		if (!pool_idle(d->pools[i]))
			return false;
	for (size_t i = 0; i < d->nretired; i++)
		if (!pool_idle(d->retired[i]))
			return false;
	return true;
}

static void close_handles(struct daemon *d);

/*
 * One pass of the drain: cancel what outlived --drain-timeout-ms, start
 * the last writes, and close everything once they are done.  Cancelling
 * finishes sends from inside this function (their results come back
 * through on_pool_finish, which calls maybe_finish_drain()): those calls
 * only ask for another pass.
 */
static void drain_step(struct daemon *d)
{
	if (!all_pools_idle(d)) {
		if (push_now_us() < d->drain_deadline_us || d->http_closed)
			return;
		if (!d->drain_cancelled) {
			/* Out of patience: cancel what is in flight.  The
			 * senders finish each as a retry "cancelled", which
			 * the ack below returns to the queue. */
			d->drain_cancelled = true;
			log_warn("drain timeout: cancelling requests in flight",
				 NULL);
			for (size_t i = 0; i < d->npools; i++)
				pool_close_cred(d->pools[i]);
			for (size_t i = 0; i < d->nretired; i++)
				pool_close_cred(d->retired[i]);
		}
		/* Cancelling finishes every send before it returns; should
		 * one still be out, stop waiting at the hard deadline. */
		if (!all_pools_idle(d) &&
		    push_now_us() < d->drain_deadline_us + 5000000)
			return;
	}
	/* The order matters: debug pushes' "acked" events come with their
	 * acks, so the events go last. */
	struct writer *w[] = { &d->ack.w, &d->release.w, &d->stats_w };
	bool writing = d->heartbeat_inflight || d->maint_inflight;
	for (size_t i = 0; i < sizeof w / sizeof *w; i++)
		writer_flush(w[i]);
	if (!writer_busy(&d->ack.w) && writer_waiting(&d->ack.w) == 0)
		writer_flush(&d->trace_w);
	for (size_t i = 0; i < sizeof w / sizeof *w; i++)
		writing |= writer_busy(w[i]) || writer_waiting(w[i]) > 0;
	writing |= writer_busy(&d->trace_w) ||
		   writer_waiting(&d->trace_w) > 0;
	if (writing) {
		/* Still writing; if Postgres is gone, give up at the hard
		 * deadline (leases expire and another dispatcher retries). */
		if (push_now_us() < d->drain_deadline_us + 5000000)
			return;
		log_error("exiting with unwritten outcomes",
			  "acks=%zu releases=%zu", acker_backlog(&d->ack),
			  release_backlog(&d->release));
	} else if (!d->final_writes_done) {
		d->final_writes_done = true;
		heartbeat(d);   /* state stopped */
		return;
	}
	close_handles(d);
}

static void maybe_finish_drain(struct daemon *d)
{
	if (d->state != DAEMON_DRAINING)
		return;
	if (d->drain_busy) {
		d->drain_again = true;
		return;
	}
	d->drain_busy = true;
	do {
		d->drain_again = false;
		drain_step(d);
	} while (d->drain_again && d->state == DAEMON_DRAINING);
	d->drain_busy = false;
}

static void on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	int64_t now = push_now_us();

	for (size_t i = 0; i < d->npools; i++) {
		pool_tick(d->pools[i], now);
		pool_pump(d->pools[i], now);
	}
	free_idle_retired(d);
	if (d->state == DAEMON_RUNNING)
		faults_tick(&d->faults, now);
	maybe_finish_drain(d);
}

static void start_drain(struct daemon *d, const char *why)
{
	if (d->state != DAEMON_RUNNING)
		return;
	log_info("shutting down", "signal=%s", why);
	set_state(d, DAEMON_DRAINING);
	d->drain_deadline_us = push_now_us() +
			       (int64_t)d->opts->drain_timeout_ms * 1000;
	uv_timer_stop(&d->poll_timer);
	uv_timer_stop(&d->kick_timer);
	uv_timer_stop(&d->config_timer);
	for (size_t i = 0; i < d->npools; i++)
		pool_give_back(d, d->pools[i]);
	maybe_finish_drain(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (signum == SIGHUP) {
		log_info("reloading configuration", "signal=HUP");
		config_load(d);
		return;
	}
	start_drain(d, signum == SIGTERM ? "TERM" : "INT");
}

static void on_http_closed(void *arg)
{
	(void)arg;
}

static void close_handles(struct daemon *d)
{
	if (d->state == DAEMON_CLOSING)
		return;
	set_state(d, DAEMON_CLOSING);
	/* Close every credential before freeing any pool: a cancelled
	 * send's result goes through on_pool_finish, which may look at the
	 * pools. */
	for (size_t i = 0; i < d->npools; i++)
		pool_close_cred(d->pools[i]);
	for (size_t i = 0; i < d->nretired; i++)
		pool_close_cred(d->retired[i]);
	for (size_t i = 0; i < d->npools; i++)
		pool_free(d->pools[i]);
	d->npools = 0;
	for (size_t i = 0; i < d->nretired; i++)
		pool_free(d->retired[i]);
	d->nretired = 0;
	uv_timer_t *timers[] = { &d->kick_timer, &d->poll_timer,
				 &d->tick_timer, &d->stats_timer,
				 &d->heartbeat_timer, &d->config_timer };
	for (size_t i = 0; i < sizeof timers / sizeof *timers; i++)
		uv_close((uv_handle_t *)timers[i], NULL);
	writer_close(&d->ack.w);
	uv_close((uv_handle_t *)&d->maint_timer, NULL);
	metrics_close(d->metrics);
	d->metrics = NULL;
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	db_async_close(d->db_listen, on_db_closed, d);
	db_async_close(d->db_claim, on_db_closed, d);
	db_async_close(d->db_ack, on_db_closed, d);
	db_async_close(d->db_stats, on_db_closed, d);
	http_close(d->http, on_http_closed, d);
	d->http_closed = true;
}

/* faults.h hooks: an auto-ban written to push.apps applies at once (the
 * NOTIFY reload confirms it); a held critical app gives its waiting
 * pushes back. */
static void on_fault_ban(void *arg, int32_t app_id, int64_t until_us,
			 const char *reason)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->npools; i++) {
		struct pool *p = d->pools[i];
		if (p->app_id != app_id)
			continue;
		p->lim.banned_until_us = until_us;
		snprintf(p->lim.ban_reason, sizeof p->lim.ban_reason, "%s",
			 reason);
		pool_pump(p, push_now_us());
	}
}

static void on_fault_hold(void *arg, int32_t app_id)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->npools; i++)
		if (d->pools[i]->app_id == app_id)
			pool_give_back(d, d->pools[i]);
}

static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("could not raise the open files limit", NULL);
	}
}

int daemon_run(const struct cli_opts *opts)
{
	struct daemon *d = mem_alloc_zero(1, sizeof *d);
	char err[512];
	int rc = CLI_EXIT_FAILURE;

	d->opts = opts;
	d->state = DAEMON_RUNNING;
	/*
	 * Sends stop while one ack statement's worth of answers waits to be
	 * written: a crash then re-sends at most the windows in flight plus
	 * ACK_BATCH_MAX.  Normally far fewer wait (one --ack-interval-ms of
	 * answers); slow acks pause the sends rather than pile them up.
	 */
	d->gate.max = ACK_BATCH_MAX;
	d->started_at_us = push_now_us();
	if (gethostname(d->host, sizeof d->host) != 0)
		snprintf(d->host, sizeof d->host, "unknown");
	d->host[sizeof d->host - 1] = '\0';
	snprintf(d->id, sizeof d->id, "%s:%d:%" PRId64, d->host, (int)getpid(),
		 d->started_at_us / 1000000);
	snprintf(d->lease_seconds, sizeof d->lease_seconds, "%d",
		 opts->lease_seconds);
	srand((unsigned)(d->started_at_us ^ getpid()));
	raise_nofile_limit();

	if (uv_loop_init(&d->loop) != 0) {
		log_error("cannot start the event loop", NULL);
		free(d);
		return CLI_EXIT_FAILURE;
	}
	struct http_opts ho;
	memset(&ho, 0, sizeof ho);
	ho.max_host_connections = opts->max_host_connections;
	/* Keep an easy handle for every request a full window may have in
	 * flight: a new handle costs libcurl its buffers and options anew
	 * for every request over the free list's size. */
	ho.free_handles = 1024;
	ho.connect_timeout_ms = opts->connect_timeout_ms;
	ho.request_timeout_ms = opts->request_timeout_ms;
	ho.rebuild_after_ms = opts->rebuild_after_ms;
	ho.threads = (unsigned)opts->http_threads;
	ho.h2_direct = opts->h2_direct != 0;
	if (http_new(&d->http, &d->loop, &ho) < 0) {
		log_error("cannot start the HTTP client", NULL);
		goto out_loop;
	}
	d->env.loop = &d->loop;
	d->env.http = d->http;
	d->env.connect_timeout_ms = opts->connect_timeout_ms;
	d->env.request_timeout_ms = opts->request_timeout_ms;
	d->env.max_attempts = 8;
	d->env.trace = on_sender_trace;
	d->env.trace_arg = d;

	if (open_db(d, &d->db_listen, "listener", on_listen_ready, err,
		    sizeof err) < 0 ||
	    open_db(d, &d->db_claim, "claim", on_claim_ready, err,
		    sizeof err) < 0 ||
	    open_db(d, &d->db_ack, "ack", on_ack_ready, err, sizeof err) < 0 ||
	    open_db(d, &d->db_stats, "stats", on_stats_ready, err,
		    sizeof err) < 0) {
		log_error("bad connection string", "error=%s", err);
		goto out_close;
	}
	db_async_prepare_once(d->db_claim, "claim", CLAIM_SQL, CLAIM_NPARAMS);
	db_async_prepare_once(d->db_ack, "ack", ACK_SQL, ACK_NPARAMS);
	db_async_prepare_once(d->db_ack, "release", RELEASE_SQL,
			      RELEASE_NPARAMS);
	db_async_prepare_once(d->db_stats, "stats", STATS_UPSERT_SQL,
			      STATS_NPARAMS);
	db_async_prepare_once(d->db_stats, "heartbeat", HEARTBEAT_SQL,
			      HEARTBEAT_NPARAMS);
	db_async_prepare_once(d->db_stats, "trace", TRACE_INSERT_SQL,
			      TRACE_NPARAMS);
	if (opts->metrics_listen && opts->metrics_listen[0]) {
		if (metrics_start(&d->metrics, &d->loop, opts->metrics_listen,
				  metrics_render, d, err, sizeof err) < 0) {
			log_error("cannot serve metrics", "error=%s", err);
			goto out_close;
		}
		log_info("serving metrics", "listen=%s", opts->metrics_listen);
	}
	struct faults_hooks fh = { d, on_fault_ban, on_fault_hold };
	faults_init(&d->faults, d->db_stats, d->id, opts->lease_seconds,
		    opts->heartbeat_interval_ms, &fh);
	faults_prepare(&d->faults);

	struct ack_hooks ah = { d, on_acked, on_ack_freed };
	acker_init(&d->ack, d->id, &d->loop, d->db_ack, &d->health, &ah,
		   on_write_answer, d);
	release_init(&d->release, d->id, d->db_ack, &d->health,
		     on_write_answer, d);
	stats_writer_init(&d->stats_w, &d->stats, d->db_stats, &d->health,
			  on_write_answer, d);
	d->trace.owner = d->id;
	trace_writer_init(&d->trace_w, &d->trace, d->db_stats, &d->health,
			  on_write_answer, d);

	uv_timer_t *timers[] = { &d->kick_timer, &d->poll_timer,
				 &d->tick_timer, &d->stats_timer,
				 &d->heartbeat_timer, &d->config_timer };
	for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
		uv_timer_init(&d->loop, timers[i]);
		timers[i]->data = d;
	}
	uv_timer_start(&d->poll_timer, on_poll,
		       (uint64_t)opts->poll_interval_ms, 0);
	uv_timer_start(&d->tick_timer, on_tick, TICK_MS, TICK_MS);
	/* --stats-interval-ms 0: no stats; the timer still writes the
	 * debug events, every second. */
	d->stats.off = opts->stats_interval_ms == 0;
	uint64_t stats_ms = opts->stats_interval_ms > 0
		? (uint64_t)opts->stats_interval_ms : 1000;
	uv_timer_start(&d->stats_timer, on_stats_timer, stats_ms, stats_ms);
	uv_timer_init(&d->loop, &d->maint_timer);
	d->maint_timer.data = d;
	uv_timer_start(&d->maint_timer, on_maint_timer, MAINT_EVERY_MS,
		       MAINT_EVERY_MS);

	uv_timer_start(&d->heartbeat_timer, on_heartbeat_timer,
		       (uint64_t)opts->heartbeat_interval_ms,
		       (uint64_t)opts->heartbeat_interval_ms);
	uv_timer_start(&d->config_timer, on_config_timer, CONFIG_EVERY_MS,
		       CONFIG_EVERY_MS);
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);

	log_info("pgpushd running", "id=%s version=%s libcurl=%s "
		 "http_threads=%d h2_direct=%d", d->id, PGPUSH_VERSION,
		 http_lib_version(), opts->http_threads, opts->h2_direct);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	log_info("pgpushd stopped", "id=%s claims=%" PRIu64 " claimed=%"
		 PRIu64 " acks=%" PRIu64 " acked=%" PRIu64, d->id, d->claims,
		 d->claimed_rows, d->acks, d->acked_rows);
	rc = CLI_EXIT_OK;
	goto out_loop;

out_close:
	if (d->db_listen)
		db_async_close(d->db_listen, NULL, NULL);
	if (d->db_claim)
		db_async_close(d->db_claim, NULL, NULL);
	if (d->db_ack)
		db_async_close(d->db_ack, NULL, NULL);
	if (d->db_stats)
		db_async_close(d->db_stats, NULL, NULL);
	http_close(d->http, NULL, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
out_loop:
	if (uv_loop_close(&d->loop) != 0)
		log_warn("event loop closed with handles open", NULL);
	for (int i = 0; i < CLAIMS_MAX; i++)
		claim_req_free(&d->claim_slots[i].req);
	acker_free(&d->ack);
	release_free(&d->release);
	stats_free(&d->stats);
	trace_free(&d->trace);
	faults_free(&d->faults);
	free(d->pools);
	free(d->retired);
	free(d);
	return rc;
}
