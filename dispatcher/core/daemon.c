/*
 * daemon.c - `pgpushd run`: the loop, its timers, signals and the drain.
 *
 * The life of a push, and the file that handles each step:
 *
 *   NOTIFY pgpush_enqueue (conns.c)      poll timer (about 1 s, jittered)
 *                  \                       /
 *                   kick -> claimer.c: one CLAIM_SQL (claim.c) for every
 *                           pool that wants rows (claim connection, two
 *                           pipelined at most); rows go into their pools
 *                           (pools.c: the set; pool.c: one ring + window)
 *                                  |
 *                           pool_pump -> sender -> provider
 *                                  |
 *                           finish.c -> ack buffer (ack.c) + stats
 *                           counters (obs/stats.c) + debug events
 *                           (obs/trace.c)
 *                                  |
 *           ack timer (5 ms) or 1000 rows -> one ACK_SQL through the
 *           batched writer (writer.c; ack connection); unsent rows go
 *           back with RELEASE_SQL (release.c, the same writer)
 *           stats timer (2 s) -> one stats upsert and one debug-events
 *           insert (obs_writers.c); heartbeat (obs/heartbeat.c) and
 *           maintenance (maint.c) on the stats connection
 *
 * Configuration (apps, their limits, bans, pauses, credentials) is read
 * by pools.c on the stats connection at start, on NOTIFY pgpush_config,
 * on SIGHUP and every 30 s.  Errors and Postgres going away are noted in
 * obs/health.c; the Prometheus page is obs/metrics_page.c, served by
 * obs/metrics.c; both it and the heartbeat print a snapshot
 * (obs/snapshot.h) this file fills.
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

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/push.h"
#include "core/acker.h"
#include "core/claimer.h"
#include "core/conns.h"
#include "core/faults.h"
#include "core/finish.h"
#include "core/maint.h"
#include "core/obs_writers.h"
#include "core/pools.h"
#include "core/release.h"
#include "core/writer.h"
#include "net/http.h"
#include "obs/health.h"
#include "obs/heartbeat.h"
#include "obs/metrics.h"
#include "obs/metrics_page.h"
#include "obs/snapshot.h"
#include "obs/sqltime.h"
#include "obs/stats.h"
#include "obs/trace.h"
#include "platforms/sender.h"

#define CONFIG_EVERY_MS 30000
#define TICK_MS         100
#define HARD_DEADLINE_US 5000000    /* after the drain timeout */

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

	struct conns conns;         /* the four Postgres sessions */
	struct http *http;
	struct sender_env env;
	struct health health;       /* last error, Postgres up or down */

	struct pool_gate gate;      /* answers not written yet (pool.h) */
	struct pools pools;         /* active and retired pools, config */
	struct claimer claimer;
	struct finisher finisher;   /* outcomes -> ack, stats, trace */
	struct acker ack;           /* outcomes (ack connection) */
	struct release release;     /* rows given back (ack connection) */
	struct stats stats;
	struct writer stats_w;      /* stats connection */
	struct trace trace;         /* debug pushes' events */
	struct writer trace_w;      /* stats connection */
	struct heartbeat hb;
	struct maint maint;
	struct faults faults;       /* sweeper, auto-ban, retry age */
	struct metrics *metrics;    /* --metrics-listen, or NULL */
	struct sqltime sqltime;     /* slow claims and acks */

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
	bool final_writes_done;
	bool http_closed;
};

static void maybe_finish_drain(struct daemon *d);

static void set_state(struct daemon *d, enum daemon_state s)
{
	log_debug("daemon state", "from=%s to=%s", state_names[d->state],
		  state_names[s]);
	d->state = s;
}

static void on_kick(uv_timer_t *t)
{
	struct daemon *d = t->data;

	claimer_claim(&d->claimer);
}

/* Claim soon (once, however often asked before it runs). */
static void daemon_kick(void *arg)
{
	struct daemon *d = arg;

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

	claimer_claim(&d->claimer);
	uv_timer_start(&d->poll_timer, on_poll, next, 0);
}

/* A pool finished a push: room in a ring, more work may be claimed. */
static void on_finished(void *arg)
{
	struct daemon *d = arg;

	if (d->state == DAEMON_RUNNING)
		daemon_kick(d);
	else
		maybe_finish_drain(d);
}

/* Any write answered: a drain may be done. */
static void on_write_answer(void *arg)
{
	maybe_finish_drain(arg);
}

/* What the heartbeat and the metrics page print; free s->pools. */
static void snapshot(struct daemon *d, struct obs_snapshot *s)
{
	struct obs_pool *pools;

	pools_snapshot(&d->pools, &pools);
	*s = (struct obs_snapshot){
		.id = d->id, .host = d->host, .version = PGPUSH_VERSION,
		.started_at_us = d->started_at_us,
		.running = d->state == DAEMON_RUNNING,
		.stopped = d->final_writes_done,
		.heartbeat_interval_ms = d->opts->heartbeat_interval_ms,
		/* Written means heartbeats work again: not its own error. */
		.last_error = health_last_error(&d->health,
						"heartbeat failed"),
		.claims = d->claimer.claims,
		.claimed_rows = d->claimer.claimed_rows,
		.acks = d->finisher.acks,
		.acked_rows = d->finisher.acked_rows,
		.claim_us = d->claimer.claim_us, .ack_us = d->finisher.ack_us,
		.slow_sql = d->sqltime.slow,
		.ack_backlog = acker_backlog(&d->ack),
		.pg_connections = conns_up(&d->conns),
		.in_flight = pools_in_flight(&d->pools),
		.pools = pools, .npools = d->pools.n,
		.trace = &d->trace, .stats = &d->stats, .http = d->http,
	};
}

static void metrics_render(void *arg, struct buf *b)
{
	struct obs_snapshot s;

	snapshot(arg, &s);
	metrics_page_render(&s, b);
	free((void *)s.pools);
}

static void heartbeat(struct daemon *d)
{
	struct obs_snapshot s;

	snapshot(d, &s);
	heartbeat_send(&d->hb, &s);
	free((void *)s.pools);
}

static void on_heartbeat_timer(uv_timer_t *t)
{
	heartbeat(t->data);
}

static void on_stats_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	writer_flush(&d->stats_w);
	writer_flush(&d->trace_w);
}

static void on_config_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	pools_load(&d->pools);
}

/* ------------------------------------------------------------------ */
/* Postgres sessions coming up (conns.c has set them up), and NOTIFY.   */

static void on_listen_ready(void *arg)
{
	struct daemon *d = arg;

	/* Anything enqueued while we were not listening: look now. */
	pools_load(&d->pools);
	daemon_kick(d);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct daemon *d = arg;

	(void)payload;
	if (strcmp(channel, "pgpush_config") == 0)
		pools_load(&d->pools);
	else
		daemon_kick(d);
}

/* The claim or ack session is (back) up. */
static void on_work_ready(void *arg)
{
	struct daemon *d = arg;

	/* Buffered outcomes survive a reconnect: write them now. */
	writer_flush(&d->ack.w);
	release_flush(&d->release);
	daemon_kick(d);
}

static void on_stats_ready(void *arg)
{
	struct daemon *d = arg;

	if (!d->pools.loaded) {
		/*
		 * Maintenance first: it makes today's deliveries partition
		 * when there is none (a new database, a long stop), and doing
		 * that while an ack inserts into the default partition fails
		 * the ack once.  Queries on a connection run in order, and
		 * nothing is claimed before the configuration is loaded.
		 */
		maint_start(&d->maint);
		pools_load(&d->pools);
	}
	heartbeat(d);
}

/* ------------------------------------------------------------------ */
/* Ticks, signals, shutdown.                                            */

static void close_handles(struct daemon *d);

/* Whether the last writes are still going (or waiting to go). */
static bool still_writing(struct daemon *d)
{
	struct writer *w[] = { &d->ack.w, &d->release.w, &d->stats_w,
			       &d->trace_w };

	for (size_t i = 0; i < sizeof w / sizeof *w; i++)
		if (writer_busy(w[i]) || writer_waiting(w[i]) > 0)
			return true;
	return heartbeat_busy(&d->hb) || maint_busy(&d->maint);
}

/*
 * One pass of the drain: cancel what outlived --drain-timeout-ms, start
 * the last writes, and close everything once they are done.  Cancelling
 * finishes sends from inside this function (their results come back
 * through on_pool_finish, which calls maybe_finish_drain()): those calls
 * only ask for another pass.
 */
static void drain_step(struct daemon *d)
{
	int64_t hard_deadline = d->drain_deadline_us + HARD_DEADLINE_US;

	if (!pools_idle(&d->pools)) {
		if (push_now_us() < d->drain_deadline_us || d->http_closed)
			return;
		if (!d->drain_cancelled) {
			/* Out of patience: cancel what is in flight.  The
			 * senders finish each as a retry "cancelled", which
			 * the ack below returns to the queue. */
			d->drain_cancelled = true;
			log_warn("drain timeout: cancelling requests in flight",
				 NULL);
			pools_close_creds(&d->pools);
		}
		/* Cancelling finishes every send before it returns; should
		 * one still be out, stop waiting at the hard deadline. */
		if (!pools_idle(&d->pools) && push_now_us() < hard_deadline)
			return;
	}
	writer_flush(&d->ack.w);
	release_flush(&d->release);
	writer_flush(&d->stats_w);
	/* Debug pushes' "acked" events come with their acks: events last. */
	if (!writer_busy(&d->ack.w) && writer_waiting(&d->ack.w) == 0)
		writer_flush(&d->trace_w);
	if (still_writing(d)) {
		/* Still writing; if Postgres is gone, give up at the hard
		 * deadline (leases expire and another dispatcher retries). */
		if (push_now_us() < hard_deadline)
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

	pools_tick(&d->pools, now);
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
	claimer_stop(&d->claimer);
	finish_stop(&d->finisher);
	pools_stop(&d->pools);
	maint_stop(&d->maint);
	d->drain_deadline_us = push_now_us() +
			       (int64_t)d->opts->drain_timeout_ms * 1000;
	uv_timer_stop(&d->poll_timer);
	uv_timer_stop(&d->kick_timer);
	uv_timer_stop(&d->config_timer);
	pools_give_back_all(&d->pools);
	maybe_finish_drain(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (signum == SIGHUP) {
		log_info("reloading configuration", "signal=HUP");
		pools_load(&d->pools);
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
	pools_free(&d->pools);
	uv_timer_t *timers[] = { &d->kick_timer, &d->poll_timer,
				 &d->tick_timer, &d->stats_timer,
				 &d->heartbeat_timer, &d->config_timer };
	for (size_t i = 0; i < sizeof timers / sizeof *timers; i++)
		uv_close((uv_handle_t *)timers[i], NULL);
	writer_close(&d->ack.w);
	maint_close(&d->maint);
	metrics_close(d->metrics);
	d->metrics = NULL;
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	conns_close(&d->conns, true);
	http_close(d->http, on_http_closed, d);
	d->http_closed = true;
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

static int start_http(struct daemon *d)
{
	const struct cli_opts *opts = d->opts;
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
	if (http_new(&d->http, &d->loop, &ho) < 0)
		return -1;
	d->env.loop = &d->loop;
	d->env.http = d->http;
	d->env.connect_timeout_ms = opts->connect_timeout_ms;
	d->env.request_timeout_ms = opts->request_timeout_ms;
	d->env.max_attempts = 8;
	d->env.trace = finish_on_sender_trace;
	d->env.trace_arg = &d->trace;
	return 0;
}

/* The pipeline's modules, wired to each other and to this loop. */
static void wire_modules(struct daemon *d)
{
	const struct cli_opts *opts = d->opts;
	struct db_async *ackc = d->conns.db[CONNS_ACK];
	struct db_async *stats = d->conns.db[CONNS_STATS];
	struct ack_hooks ah = { &d->finisher, finish_on_acked,
				finish_on_ack_freed };
	struct pools_hooks ph = { finish_on_pool, &d->finisher, daemon_kick,
				  d };
	struct faults_hooks fh = { &d->pools, pools_ban, pools_hold };

	acker_init(&d->ack, d->id, &d->loop, ackc, &d->health, &ah,
		   on_write_answer, d);
	release_init(&d->release, d->id, ackc, &d->health, on_write_answer,
		     d);
	stats_writer_init(&d->stats_w, &d->stats, stats, &d->health,
			  on_write_answer, d);
	d->trace.owner = d->id;
	trace_writer_init(&d->trace_w, &d->trace, stats, &d->health,
			  on_write_answer, d);
	heartbeat_init(&d->hb, stats, &d->health, on_write_answer, d);
	maint_init(&d->maint, &d->loop, stats, &d->health, on_write_answer,
		   d);
	d->finisher = (struct finisher){
		.ack = &d->ack, .stats = &d->stats, .trace = &d->trace,
		.release = &d->release, .faults = &d->faults,
		.pools = &d->pools, .gate = &d->gate, .sqltime = &d->sqltime,
		.ask = stats, .id = d->id,
		.ack_interval_ms = (uint64_t)opts->ack_interval_ms,
		.arg = d, .finished = on_finished, .kick = daemon_kick,
	};
	faults_init(&d->faults, stats, d->id, opts->lease_seconds,
		    opts->heartbeat_interval_ms, &fh);
	faults_prepare(&d->faults);
	pools_init(&d->pools, stats, &d->env, &d->gate, &d->release,
		   &d->faults, &d->health, &ph);
	struct claimer_deps cd = {
		.id = d->id, .lease_seconds = opts->lease_seconds,
		.request_timeout_ms = opts->request_timeout_ms,
		.batch_size = opts->batch_size,
		.conn = d->conns.db[CONNS_CLAIM], .ask = stats,
		.pools = &d->pools, .faults = &d->faults,
		.release = &d->release, .ack = &d->ack,
		.finisher = &d->finisher, .health = &d->health,
		.sqltime = &d->sqltime, .kick = daemon_kick, .kick_arg = d,
	};
	claimer_init(&d->claimer, &cd);
}

static void start_timers(struct daemon *d)
{
	const struct cli_opts *opts = d->opts;
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
}

int daemon_run(const struct cli_opts *opts)
{
	struct daemon *d = mem_alloc_zero(1, sizeof *d);
	char err[512];
	int rc = CLI_EXIT_FAILURE;
	struct conns_hooks ch = {
		.arg = d, .notify = on_notify,
		.ready = { on_listen_ready, on_work_ready, on_work_ready,
			   on_stats_ready },
	};

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
	srand((unsigned)(d->started_at_us ^ getpid()));
	raise_nofile_limit();

	if (uv_loop_init(&d->loop) != 0) {
		log_error("cannot start the event loop", NULL);
		free(d);
		return CLI_EXIT_FAILURE;
	}
	if (start_http(d) < 0) {
		log_error("cannot start the HTTP client", NULL);
		goto out_loop;
	}
	if (conns_open(&d->conns, &d->loop, opts->conninfo, CLAIMS_MAX,
		       &d->health, &ch, err, sizeof err) < 0) {
		log_error("bad connection string", "error=%s", err);
		goto out_close;
	}
	if (opts->metrics_listen && opts->metrics_listen[0]) {
		if (metrics_start(&d->metrics, &d->loop, opts->metrics_listen,
				  metrics_render, d, err, sizeof err) < 0) {
			log_error("cannot serve metrics", "error=%s", err);
			goto out_close;
		}
		log_info("serving metrics", "listen=%s", opts->metrics_listen);
	}
	wire_modules(d);
	start_timers(d);

	log_info("pgpushd running", "id=%s version=%s libcurl=%s "
		 "http_threads=%d h2_direct=%d", d->id, PGPUSH_VERSION,
		 http_lib_version(), opts->http_threads, opts->h2_direct);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	log_info("pgpushd stopped", "id=%s claims=%" PRIu64 " claimed=%"
		 PRIu64 " acks=%" PRIu64 " acked=%" PRIu64, d->id,
		 d->claimer.claims, d->claimer.claimed_rows, d->finisher.acks,
		 d->finisher.acked_rows);
	rc = CLI_EXIT_OK;
	goto out_loop;

out_close:
	conns_close(&d->conns, false);
	http_close(d->http, NULL, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
out_loop:
	if (uv_loop_close(&d->loop) != 0)
		log_warn("event loop closed with handles open", NULL);
	claimer_free(&d->claimer);
	acker_free(&d->ack);
	release_free(&d->release);
	stats_free(&d->stats);
	trace_free(&d->trace);
	faults_free(&d->faults);
	pools_free(&d->pools);
	free(d);
	return rc;
}
