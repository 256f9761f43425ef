/*
 * claimer.c - see claimer.h.
 */
#include "core/claimer.h"

#include <stdio.h>
#include <string.h>

#include "core/faults.h"
#include "core/finish.h"
#include "core/pool.h"
#include "core/pools.h"
#include "core/release.h"
#include "obs/health.h"
#include "obs/sqltime.h"

void claimer_init(struct claimer *c, const struct claimer_deps *deps)
{
	memset(c, 0, sizeof *c);
	c->deps = *deps;
	snprintf(c->lease_seconds, sizeof c->lease_seconds, "%d",
		 deps->lease_seconds);
}

/* The claim in `s` has its answer: its rows are no longer pending. */
static void slot_free(struct claimer *c, struct claim_slot *s)
{
	for (int i = 0; i < s->req.pools; i++) {
		struct pool *p = pools_find_serial(c->deps.pools,
						   s->req.asks[i].pool_serial);

		if (p == NULL)
			continue;   /* retired by a reload since */
		p->claim_pending -= s->req.asks[i].rows;
		if (p->claim_pending < 0)
			p->claim_pending = 0;
	}
	s->busy = false;
	c->out--;
}

/* One claimed row: finished, given back or into its pool. */
static void take_row(struct claimer *c, const struct db_result *res, int r,
		     int64_t now_claimed)
{
	const char *v[CLAIM_NCOLS];
	struct push_item *item;
	bool gone;
	enum push_outcome fault_outcome;
	char fault_reason[256];
	int64_t lease_us = (int64_t)c->deps.lease_seconds * 1000000;
	struct finisher *f = c->deps.finisher;

	for (int col = 0; col < CLAIM_NCOLS; col++)
		v[col] = db_result_isnull(res, r, col)
			? NULL : db_result_value(res, r, col);
	if (claim_parse_row(v, &item, &gone) < 0) {
		health_error(c->deps.health, "claim row unreadable",
			     v[0] ? v[0] : "");
		return;
	}
	struct pool *p = pools_find(c->deps.pools, item->app_id,
				    item->platform);
	if (item->debug)
		finish_trace_claimed(f, item, p);
	if (gone) {
		finish_unsent(f, item, PUSH_OUTCOME_INVALID_TOKEN,
			      "device invalidated since it was queued");
	} else if (item->payload == NULL) {
		finish_unsent(f, item, PUSH_OUTCOME_FAILED,
			      "the push row is gone (purged?)");
	} else if (item->token == NULL) {
		finish_unsent(f, item, PUSH_OUTCOME_FAILED,
			      "the device row is gone");
	} else if (p == NULL || c->stopped || p->lim.paused) {
		release_add(c->deps.release, item);
	} else if (faults_on_claim(c->deps.faults, item, p->lim.max_attempts,
				   p->len >= p->cap &&
				   p->lim.banned_until_us <= now_claimed,
				   now_claimed, &fault_outcome, fault_reason,
				   sizeof fault_reason) == FAULTS_FINISH) {
		finish_unsent(f, item, fault_outcome, fault_reason);
	} else {
		/* Leave the request time plus a margin before the lease
		 * lapses; later it goes back unsent. */
		item->send_by_us = now_claimed + lease_us -
			(int64_t)c->deps.request_timeout_ms * 1000 - 5000000;
		if (item->send_by_us <= now_claimed)
			item->send_by_us = now_claimed + lease_us / 2;
		pool_add(p, item, now_claimed);
	}
}

static void on_claim_done(void *arg, const struct db_result *res)
{
	struct claim_slot *s = arg;
	struct claimer *c = s->c;

	slot_free(c, s);
	if (!db_result_ok(res)) {
		health_db_result(c->deps.health, "claim failed", res);
		return;     /* the poll timer tries again */
	}
	health_ok(c->deps.health, "claim failed");
	int n = db_result_ntuples(res);
	int64_t now_claimed = push_now_us();
	c->claims++;
	c->claimed_rows += (uint64_t)n;
	sqltime_note(c->deps.sqltime, "claim", s->sent_us, (size_t)n,
		     &c->claim_us, !c->stopped &&
		     db_async_is_up(c->deps.ask) ? c->deps.ask : NULL);
	for (int r = 0; r < n; r++)
		take_row(c, res, r, now_claimed);
	release_flush(c->deps.release);
	pools_pump(c->deps.pools, push_now_us());
	/* A claim that got everything it asked for probably left more
	 * behind: go again at once rather than wait for the poll. */
	if ((n > 0 && n >= s->req.rows) || c->again) {
		c->again = false;
		c->deps.kick(c->deps.kick_arg);
	}
}

void claimer_claim(struct claimer *c)
{
	const char *params[CLAIM_NPARAMS];
	struct pools *ps = c->deps.pools;

	if (c->stopped || !ps->loaded)
		return;
	if (c->out == CLAIMS_MAX) {
		c->again = true;
		return;
	}
	if (!db_async_is_up(c->deps.conn))
		return;
	/* Outcomes not written yet still hold their rows' leases: claim no
	 * more until the writes catch up (pushes that fail fast, e.g. on a
	 * bad credential, can finish faster than one connection records
	 * them).  This bounds memory and the work left at SIGTERM. */
	if (acker_backlog(c->deps.ack) >= ACK_BACKLOG_MAX)
		return;
	struct claim_slot *s = &c->slots[0];
	while (s->busy)
		s++;
	claim_req_reset(&s->req);
	for (size_t i = 0; i < ps->n; i++) {
		struct pool *p = ps->active[i];
		int want = faults_claim_want(c->deps.faults, p->app_id,
			pool_claim_want(p, c->deps.batch_size),
			p->len * 2 > p->cap && !p->lim.paused &&
			p->claim_pending == 0, c->deps.batch_size,
			push_now_us());
		if (want > 0) {
			claim_req_add(&s->req, p->app_id, p->platform,
				      p->serial, want);
			p->claim_pending += want;
		}
	}
	if (s->req.pools == 0)
		return;
	claim_req_params(&s->req, c->deps.id, c->lease_seconds, params);
	s->c = c;
	s->busy = true;
	s->sent_us = push_now_us();
	c->out++;
	if (db_async_exec_prepared(c->deps.conn, "claim", CLAIM_NPARAMS,
				   params, on_claim_done, s) < 0)
		slot_free(c, s);
}

void claimer_stop(struct claimer *c)
{
	c->stopped = true;
}

void claimer_free(struct claimer *c)
{
	for (int i = 0; i < CLAIMS_MAX; i++)
		claim_req_free(&c->slots[i].req);
}
