/*
 * pools.h - the set of pools and its life cycle: configuration in, pools
 * started, retired and freed.
 *
 * Configuration (apps, their limits, bans, pauses, credentials) is read
 * with CONFIG_SQL on the stats connection: at start, on NOTIFY
 * pgpush_config, on SIGHUP and every 30 s (the daemon decides when; one
 * load at a time, a load asked for meanwhile runs after it).  A pool
 * exists per (app, platform) with an enabled credential whose platform
 * has a sender.  Applying a load updates the limits of pools that stay,
 * starts pools for new credentials and retires pools whose credential
 * changed or went away: a retired pool gives its waiting pushes back to
 * the queue (release.h), finishes what it has in flight, and is freed by
 * pools_tick() once idle.  A newly paused app's waiting pushes are given
 * back too.
 *
 * Ownership: struct pools owns every pool, active and retired; each pool
 * finishes its pushes through the `finish` hook given to pools_init().
 */
#ifndef PGPUSH_POOLS_H
#define PGPUSH_POOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "core/pool.h"
#include "db/db.h"

struct faults;
struct health;
struct obs_pool;
struct release;
struct sender_env;

/* What the pools need from their owner. */
struct pools_hooks {
	pool_finish_fn finish;      /* every pool's finished pushes */
	void *finish_arg;
	void (*kick)(void *arg);    /* a load was applied: claim soon */
	void *kick_arg;
};

struct pools {
	struct pool **active;       /* one per (app, platform) */
	size_t n;
	struct pool **retired;      /* finishing in-flight work, then freed */
	size_t nretired;
	bool loaded;                /* a configuration was applied */
	bool busy;                  /* a load is in flight */
	bool again;                 /* ... and another was asked for */
	bool stopped;               /* pools_stop(): no more loads */

	struct db_async *conn;      /* the stats connection */
	struct sender_env *env;     /* for the senders' credentials */
	struct pool_gate *gate;     /* shared by every pool */
	struct release *release;    /* where given-back pushes go */
	struct faults *faults;      /* reloads its policy with each load */
	struct health *health;
	struct pools_hooks hooks;
};

void pools_init(struct pools *ps, struct db_async *conn,
		struct sender_env *env, struct pool_gate *gate,
		struct release *release, struct faults *faults,
		struct health *health, const struct pools_hooks *hooks);

/*
 * Load the configuration (CONFIG_SQL) unless stopped or its connection
 * is down (the connection's on_ready loads it then).  A load while one
 * is in flight runs after it.
 */
void pools_load(struct pools *ps);

/* No more loads (shutdown). */
void pools_stop(struct pools *ps);

/* The active pool of (app, platform), or NULL. */
struct pool *pools_find(const struct pools *ps, int32_t app_id,
			enum push_platform platform);

/* The active pool with this serial, or NULL (retired since). */
struct pool *pools_find_serial(const struct pools *ps, uint64_t serial);

/* Give the waiting pushes of `p` back to the queue, and flush. */
void pools_give_back(struct pools *ps, struct pool *p);

/* ... of every active pool (shutdown). */
void pools_give_back_all(struct pools *ps);

/* Pump every active pool (a window or the gate may have room). */
void pools_pump(struct pools *ps, int64_t now_us);

/* Every 100 ms: grow or shrink windows, pump, free idle retired pools. */
void pools_tick(struct pools *ps, int64_t now_us);

/* Whether no pool, active or retired, has a push in flight or waiting. */
bool pools_idle(const struct pools *ps);

/* Requests in flight over the active pools. */
int pools_in_flight(const struct pools *ps);

/* Close every pool's credential (cancels what is in flight). */
void pools_close_creds(struct pools *ps);

/*
 * struct faults_hooks for faults.h (`arg` is the struct pools): an
 * auto-ban written to push.apps applies at once (the NOTIFY reload
 * confirms it); a held critical app gives its waiting pushes back.
 */
void pools_ban(void *arg, int32_t app_id, int64_t until_us,
	       const char *reason);
void pools_hold(void *arg, int32_t app_id);

/*
 * The active pools' sizes for the heartbeat and the metrics page: a
 * heap array (free()) of ps->n entries in *out.
 */
void pools_snapshot(const struct pools *ps, struct obs_pool **out);

/* Close every credential, then free every pool and the arrays (again:
 * a no-op). */
void pools_free(struct pools *ps);

extern const char CONFIG_SQL[];

#endif
