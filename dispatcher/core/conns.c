/*
 * conns.c - see conns.h.
 */
#include "core/conns.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/ack.h"
#include "core/claim.h"
#include "core/release.h"
#include "obs/health.h"
#include "obs/heartbeat.h"
#include "obs/stats.h"
#include "obs/trace.h"

static const char *const names[CONNS_COUNT] = {
	"listener", "claim", "ack", "stats"
};

/* The largest backoff step among the connections (0: all up). */
static uint64_t backoff_step_ms(const struct conns *cs)
{
	uint64_t step = 0;

	for (int i = 0; i < CONNS_COUNT; i++) {
		uint64_t s = cs->db[i] != NULL
			? db_async_backoff_step_ms(cs->db[i]) : 0;
		if (s > step)
			step = s;
	}
	return step;
}

/*
 * A connection went down or an attempt failed.  All four fail together
 * when the server is away, each attempt of each one ends here:
 * health_pg_down() says it once, then at most once per backoff step.
 */
static void on_down(void *arg, const char *error)
{
	struct conns_one *o = arg;
	struct conns *cs = o->cs;

	health_pg_down(cs->health, error, backoff_step_ms(cs), cs->closing);
}

static void on_listen_done(void *arg, const struct db_result *res)
{
	struct conns *cs = arg;

	if (!db_result_ok(res))
		health_db_result(cs->health, "LISTEN failed", res);
	else
		health_ok(cs->health, "LISTEN failed");
}

static void on_session_set(void *arg, const struct db_result *res)
{
	(void)arg;
	/* Not fatal: the statements run as well with per-call plans. */
	if (db_result_status(res) == DB_ERR_QUERY)
		log_warn("session settings refused", "sql=\"%s\" error=%s",
			 WORK_SESSION_SQL, db_result_error(res));
}

/*
 * A connection is up: once all are, say so (once) and clear the error.
 * The listener listens again; the claim and ack sessions get their
 * settings first, before anything the owner sends from its hook.
 */
static void on_ready(void *arg)
{
	struct conns_one *o = arg;
	struct conns *cs = o->cs;
	struct db_async *db = cs->db[o->which];

	if (conns_up(cs) == CONNS_COUNT)
		health_pg_up(cs->health);
	if (o->which == CONNS_LISTEN)
		db_async_query(db, "LISTEN pgpush_enqueue; "
			       "LISTEN pgpush_config", 0, NULL,
			       on_listen_done, cs);
	else if (o->which == CONNS_CLAIM || o->which == CONNS_ACK)
		db_async_query(db, WORK_SESSION_SQL, 0, NULL, on_session_set,
			       cs);
	if (cs->hooks.ready[o->which] != NULL)
		cs->hooks.ready[o->which](cs->hooks.arg);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct conns_one *o = arg;

	if (o->cs->hooks.notify != NULL)
		o->cs->hooks.notify(o->cs->hooks.arg, channel, payload);
}

static int open_one(struct conns *cs, uv_loop_t *loop, const char *conninfo,
		    enum conns_which which, char *err, size_t errlen)
{
	struct db_async_opts o;
	char ci[8192];

	memset(&o, 0, sizeof o);
	o.name = names[which];
	o.on_ready = on_ready;
	o.on_notify = on_notify;
	o.on_down = on_down;
	o.arg = &cs->one[which];
	if (which == CONNS_CLAIM)
		o.pipeline = cs->claim_pipeline;
	/* A trailing application_name overrides one in the user's string
	 * only when it is a keyword/value string; a URI keeps its own. */
	if (strstr(conninfo, "://") != NULL)
		snprintf(ci, sizeof ci, "%s", conninfo);
	else
		snprintf(ci, sizeof ci, "%s application_name='pgpushd %s'",
			 conninfo, names[which]);
	int rc = db_async_open(&cs->db[which], loop, ci, &o, err, errlen);
	memset(ci, 0, sizeof ci);
	if (rc == 0)
		cs->open++;
	return rc;
}

/* Every statement the sessions prepare (on first use, and again after
 * each reconnect). */
static void prepare_statements(struct conns *cs)
{
	struct db_async *claim = cs->db[CONNS_CLAIM];
	struct db_async *ack = cs->db[CONNS_ACK];
	struct db_async *stats = cs->db[CONNS_STATS];

	db_async_prepare_once(claim, "claim", CLAIM_SQL, CLAIM_NPARAMS);
	db_async_prepare_once(ack, "ack", ACK_SQL, ACK_NPARAMS);
	db_async_prepare_once(ack, "release", RELEASE_SQL, RELEASE_NPARAMS);
	db_async_prepare_once(stats, "stats", STATS_UPSERT_SQL,
			      STATS_NPARAMS);
	db_async_prepare_once(stats, "heartbeat", HEARTBEAT_SQL,
			      HEARTBEAT_NPARAMS);
	db_async_prepare_once(stats, "trace", TRACE_INSERT_SQL,
			      TRACE_NPARAMS);
}

int conns_open(struct conns *cs, uv_loop_t *loop, const char *conninfo,
	       int claim_pipeline, struct health *health,
	       const struct conns_hooks *hooks, char *err, size_t errlen)
{
	memset(cs, 0, sizeof *cs);
	cs->claim_pipeline = claim_pipeline;
	cs->health = health;
	cs->hooks = *hooks;
	for (int i = 0; i < CONNS_COUNT; i++) {
		cs->one[i].cs = cs;
		cs->one[i].which = (enum conns_which)i;
	}
	for (int i = 0; i < CONNS_COUNT; i++)
		if (open_one(cs, loop, conninfo, (enum conns_which)i, err,
			     errlen) < 0)
			return -1;
	prepare_statements(cs);
	return 0;
}

int conns_up(const struct conns *cs)
{
	int n = 0;

	for (int i = 0; i < CONNS_COUNT; i++)
		n += cs->db[i] != NULL && db_async_is_up(cs->db[i]);
	return n;
}

static void on_closed(void *arg)
{
	struct conns_one *o = arg;
	struct conns *cs = o->cs;

	cs->open--;
	if (cs->hooks.closed != NULL)
		cs->hooks.closed(cs->hooks.arg);
}

void conns_close(struct conns *cs, bool notify_closed)
{
	cs->closing = true;
	for (int i = 0; i < CONNS_COUNT; i++)
		if (cs->db[i] != NULL)
			db_async_close(cs->db[i],
				       notify_closed ? on_closed : NULL,
				       notify_closed ? &cs->one[i] : NULL);
}
