/*
 * conns.h - the daemon's four Postgres sessions and whether they are up.
 *
 * "listener" (LISTEN pgpush_enqueue, pgpush_config), "claim" (claims,
 * pipelined: CLAIMS_MAX at once), "ack" (outcomes and releases) and
 * "stats" (configuration, stats, debug events, heartbeat, maintenance).
 * Each reconnects by itself (db.h); this file names them to the server
 * (application_name 'pgpushd NAME', unless the connection string is a
 * URI), reports going down and coming back to obs/health.h (once all
 * four are up again), and counts them for the heartbeat and metrics.
 * Each new session is set up before its owner hears of it: the listener
 * LISTENs on pgpush_enqueue and pgpush_config; the claim and ack
 * sessions get WORK_SESSION_SQL (claim.h; refused settings only warn).
 * The prepared statements of every module are registered here: "claim"
 * (claim.h); "ack", "release" (ack.h, release.h); "stats", "heartbeat",
 * "trace" (obs/stats.h, obs/heartbeat.h, obs/trace.h).
 */
#ifndef PGPUSH_CONNS_H
#define PGPUSH_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "db/db.h"

enum conns_which {
	CONNS_LISTEN,
	CONNS_CLAIM,
	CONNS_ACK,
	CONNS_STATS,
	CONNS_COUNT
};

struct conns;

/* What the owner hears; `arg` is the owner's. */
struct conns_hooks {
	void *arg;
	/* A session is up (first time or after a reconnect) and set up. */
	void (*ready[CONNS_COUNT])(void *arg);
	/* A NOTIFY on the listener. */
	void (*notify)(void *arg, const char *channel, const char *payload);
	/* A session finished closing (conns_close()). */
	void (*closed)(void *arg);
};

struct conns_one {
	struct conns *cs;
	enum conns_which which;
};

struct conns {
	struct db_async *db[CONNS_COUNT];
	struct conns_one one[CONNS_COUNT];
	int open;                   /* opened and not closed yet */
	int claim_pipeline;         /* claims in flight at once */
	bool closing;
	struct health *health;
	struct conns_hooks hooks;
};

/*
 * Open the four sessions on `loop` with `conninfo` and register their
 * prepared statements (nothing is sent yet).  0, or a negative
 * code with the reason in `err` (a bad connection string); what was
 * opened stays in cs->db for conns_close().
 */
int conns_open(struct conns *cs, uv_loop_t *loop, const char *conninfo,
	       int claim_pipeline, struct health *health,
	       const struct conns_hooks *hooks, char *err, size_t errlen);

/* Sessions up now (0..CONNS_COUNT). */
int conns_up(const struct conns *cs);

/* Close every session; hooks.closed runs for each (`notify_closed`
 * false: none, e.g. when the loop is only run to drain). */
void conns_close(struct conns *cs, bool notify_closed);

#endif
