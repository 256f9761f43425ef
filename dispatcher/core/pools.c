/*
 * pools.c - see pools.h.
 */
#include "core/pools.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "core/faults.h"
#include "core/release.h"
#include "obs/health.h"
#include "obs/snapshot.h"
#include "platforms/sender.h"

const char CONFIG_SQL[] =
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

void pools_init(struct pools *ps, struct db_async *conn,
		struct sender_env *env, struct pool_gate *gate,
		struct release *release, struct faults *faults,
		struct health *health, const struct pools_hooks *hooks)
{
	memset(ps, 0, sizeof *ps);
	ps->conn = conn;
	ps->env = env;
	ps->gate = gate;
	ps->release = release;
	ps->faults = faults;
	ps->health = health;
	ps->hooks = *hooks;
}

struct pool *pools_find(const struct pools *ps, int32_t app_id,
			enum push_platform platform)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->active[i]->app_id == app_id &&
		    ps->active[i]->platform == platform)
			return ps->active[i];
	}
	return NULL;
}

struct pool *pools_find_serial(const struct pools *ps, uint64_t serial)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->active[i]->serial == serial)
			return ps->active[i];
	}
	return NULL;
}

void pools_give_back(struct pools *ps, struct pool *p)
{
	if (p->len == 0)
		return;
	struct push_item **items = mem_alloc(p->len * sizeof *items);
	size_t n = pool_take_unsent(p, items);

	for (size_t i = 0; i < n; i++)
		release_add(ps->release, items[i]);
	free(items);
	release_flush(ps->release);
}

void pools_give_back_all(struct pools *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		pools_give_back(ps, ps->active[i]);
}

void pools_pump(struct pools *ps, int64_t now_us)
{
	for (size_t i = 0; i < ps->n; i++)
		pool_pump(ps->active[i], now_us);
}

static void retire(struct pools *ps, size_t i)
{
	struct pool *p = ps->active[i];

	pools_give_back(ps, p);
	ps->active[i] = ps->active[--ps->n];
	ps->retired = mem_realloc(ps->retired,
				  (ps->nretired + 1) * sizeof *ps->retired);
	ps->retired[ps->nretired++] = p;
}

static void free_idle_retired(struct pools *ps)
{
	for (size_t i = 0; i < ps->nretired;) {
		struct pool *p = ps->retired[i];
		if (!pool_idle(p)) {
			i++;
			continue;
		}
		pool_close_cred(p);
		pool_free(p);
		ps->retired[i] = ps->retired[--ps->nretired];
	}
}

void pools_tick(struct pools *ps, int64_t now_us)
{
	for (size_t i = 0; i < ps->n; i++) {
		pool_tick(ps->active[i], now_us);
		pool_pump(ps->active[i], now_us);
	}
	free_idle_retired(ps);
}

static int64_t to_i64(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static size_t pool_index(const struct pools *ps, const struct pool *p)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->active[i] == p)
			return i;
	return SIZE_MAX;
}

/* Row `r` of CONFIG_SQL as limits. */
static void row_limits(const struct db_result *res, int r,
		       struct pool_limits *lim)
{
	memset(lim, 0, sizeof *lim);
	lim->paused = db_result_value(res, r, 1)[0] == 't';
	lim->banned_until_us = to_i64(db_result_value(res, r, 2));
	snprintf(lim->ban_reason, sizeof lim->ban_reason, "%s",
		 db_result_value(res, r, 3));
	lim->min_window = (int)to_i64(db_result_value(res, r, 4));
	lim->max_window = (int)to_i64(db_result_value(res, r, 5));
	lim->max_attempts = (int)to_i64(db_result_value(res, r, 6));
}

/* Start a pool for row `r` (its credential opened, or why not). */
static void start_pool(struct pools *ps, const struct db_result *res,
		       int r, int32_t app_id, enum push_platform platform,
		       const struct sender_ops *ops, unsigned stamp,
		       const struct pool_limits *lim)
{
	const char *pname = db_result_value(res, r, 7);
	struct sender_cred *cred = NULL;
	char err[256] = "";

	if (ops->cred_open(&cred, ps->env, db_result_value(res, r, 10),
			   err, sizeof err) < 0) {
		log_error("credential unusable",
			  "app=%d platform=%s error=%s", app_id,
			  pname, err);
		cred = NULL;
	}
	struct pool *p = pool_new(app_id, platform, (int)stamp, ops, cred,
				  lim, ps->hooks.finish,
				  ps->hooks.finish_arg);
	p->gate = ps->gate;
	if (cred == NULL)
		snprintf(p->cred_error, sizeof p->cred_error, "%s", err);
	ps->active = mem_realloc(ps->active,
				 (ps->n + 1) * sizeof *ps->active);
	ps->active[ps->n++] = p;
	log_info("pool started", "app=%d platform=%s window=%d..%d",
		 app_id, pname, lim->min_window, lim->max_window);
}

/*
 * Apply one loaded configuration: update limits of pools that stay,
 * start pools for new (app, platform) credentials, retire pools whose
 * credential changed or went away.
 */
static void on_config(void *arg, const struct db_result *res)
{
	struct pools *ps = arg;

	ps->busy = false;
	if (!db_result_ok(res)) {
		health_db_result(ps->health, "config load failed", res);
		return;
	}
	health_ok(ps->health, "config load failed");
	/* The pools before this load; those not named again are retired. */
	size_t nold = ps->n;
	struct pool **old = mem_alloc((nold + 1) * sizeof *old);
	bool *keep = mem_alloc_zero(nold + 1, sizeof *keep);
	if (nold > 0)
		memcpy(old, ps->active, nold * sizeof *old);

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
		row_limits(res, r, &lim);

		/* The credential's identity includes its last update, so an
		 * edited credential gets a fresh pool. */
		unsigned stamp = (unsigned)cred_id;
		for (const char *c = db_result_value(res, r, 9); *c; c++)
			stamp = stamp * 31u + (unsigned char)*c;

		struct pool *p = pools_find(ps, app_id, platform);
		if (p != NULL && p->credential_id != (int)stamp) {
			retire(ps, pool_index(ps, p));
			p = NULL;
		}
		if (p != NULL) {
			bool was_paused = p->lim.paused;
			pool_set_limits(p, &lim);
			for (size_t i = 0; i < nold; i++)
				if (old[i] == p)
					keep[i] = true;
			if (lim.paused && !was_paused)
				pools_give_back(ps, p);
			continue;
		}
		start_pool(ps, res, r, app_id, platform, ops, stamp, &lim);
	}
	/* Pools whose app or credential is gone finish and go. */
	for (size_t i = 0; i < nold; i++) {
		size_t at = pool_index(ps, old[i]);
		if (!keep[i] && at != SIZE_MAX)
			retire(ps, at);
	}
	free(old);
	free(keep);
	ps->loaded = true;
	log_debug("config loaded", "pools=%zu retired=%zu", ps->n,
		  ps->nretired);
	pools_pump(ps, push_now_us());
	if (ps->again) {
		ps->again = false;
		pools_load(ps);
	}
	if (ps->hooks.kick != NULL)
		ps->hooks.kick(ps->hooks.kick_arg);
}

void pools_load(struct pools *ps)
{
	if (ps->stopped)
		return;
	if (ps->busy) {
		ps->again = true;
		return;
	}
	if (!db_async_is_up(ps->conn))
		return;     /* loaded when the stats connection is ready */
	ps->busy = true;
	if (db_async_query(ps->conn, CONFIG_SQL, 0, NULL, on_config, ps) < 0)
		ps->busy = false;
	else
		faults_load_policy(ps->faults);
}

void pools_stop(struct pools *ps)
{
	ps->stopped = true;
}

bool pools_idle(const struct pools *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!pool_idle(ps->active[i]))
			return false;
	for (size_t i = 0; i < ps->nretired; i++)
		if (!pool_idle(ps->retired[i]))
			return false;
	return true;
}

int pools_in_flight(const struct pools *ps)
{
	int n = 0;

	for (size_t i = 0; i < ps->n; i++)
		n += ps->active[i]->in_flight;
	return n;
}

void pools_close_creds(struct pools *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		pool_close_cred(ps->active[i]);
	for (size_t i = 0; i < ps->nretired; i++)
		pool_close_cred(ps->retired[i]);
}

void pools_ban(void *arg, int32_t app_id, int64_t until_us,
	       const char *reason)
{
	struct pools *ps = arg;

	for (size_t i = 0; i < ps->n; i++) {
		struct pool *p = ps->active[i];
		if (p->app_id != app_id)
			continue;
		p->lim.banned_until_us = until_us;
		snprintf(p->lim.ban_reason, sizeof p->lim.ban_reason, "%s",
			 reason);
		pool_pump(p, push_now_us());
	}
}

void pools_hold(void *arg, int32_t app_id)
{
	struct pools *ps = arg;

	for (size_t i = 0; i < ps->n; i++)
		if (ps->active[i]->app_id == app_id)
			pools_give_back(ps, ps->active[i]);
}

void pools_snapshot(const struct pools *ps, struct obs_pool **out)
{
	struct obs_pool *v = mem_alloc((ps->n + 1) * sizeof *v);

	for (size_t i = 0; i < ps->n; i++) {
		const struct pool *p = ps->active[i];

		v[i].app_id = p->app_id;
		v[i].platform = p->platform;
		v[i].ring = p->len;
		v[i].fill_percent = pool_fill_percent(p);
		v[i].window = p->window;
		v[i].in_flight = p->in_flight;
		v[i].paused = p->lim.paused;
	}
	*out = v;
}

void pools_free(struct pools *ps)
{
	/* Close every credential before freeing any pool: a cancelled
	 * send's result goes through the finish hook, which may look at
	 * the pools. */
	pools_close_creds(ps);
	for (size_t i = 0; i < ps->n; i++)
		pool_free(ps->active[i]);
	ps->n = 0;
	for (size_t i = 0; i < ps->nretired; i++)
		pool_free(ps->retired[i]);
	ps->nretired = 0;
	free(ps->active);
	free(ps->retired);
	ps->active = ps->retired = NULL;
}
